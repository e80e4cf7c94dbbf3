"""The Dynamic NTM's addressing ops: each one's reference equation and its declaration.

The ``lru`` and ``hard`` stages of Gulcehre et al. (2016), "Dynamic Neural Turing Machine with Continuous
and Discrete Addressing Schemes" (arXiv 1607.00036), §3 and §4, batch first. Each ``@op`` function here is
an op's reference (the ``"reference"`` backend, and the ``"torch"`` one too: neither has a hand-written
backward), and its ``@op`` line declares the op's shape contract: :mod:`cogdsl.ops` exports the checked,
dispatching function of the same name. The Triton kernels of :mod:`cogdsl.kernels.dntm` are tested against
these functions. :mod:`cogdsl.blocks.dntm` says what the stages are for and calls these ops.

The moving average's update v' = λ v + (1 − λ) z and the draw of the noise stay with the caller (one
elementwise op each), so that no op takes a float option and seeds keep controlling the samples.

Shape letters: B batch, H heads, N memory slots, W slot width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from cogdsl.ops.declare import op
from cogdsl.ops.ntm import SIMILARITIES, content_logits

__all__ = ["SAMPLE_MODES", "choose_slots", "lru_content_weights", "sample_slots"]

#: How :func:`sample_slots` picks a slot: by inverse CDF with the given noise, or the largest weight.
SAMPLE_MODES: tuple[str, ...] = ("sample", "argmax")


@op(memory="BNW", keys="BHW", strengths="BH", average="BHN", gamma="BH", similarity=SIMILARITIES)
def lru_content_weights(memory: Tensor, keys: Tensor, strengths: Tensor, average: Tensor, gamma: Tensor,
                        similarity: str = "cosine") -> tuple[Tensor, Tensor]:
    """Least-recently-used content addressing: the content softmax less a moving average of its own logits.

        z[b, h, i] = β[b,h] K(k[b,h], M[b,i])
        w[b, h, i] = exp(z[b,h,i] − γ[b,h] v[b,h,i]) / Σ_j exp(z[b,h,j] − γ[b,h] v[b,h,j])

    with K as in :func:`cogdsl.ops.content_weights` (cosine, or the dot product). The logits z are
    returned too: the caller moves its average to v' = λ v + (1 − λ) z, so a slot a head keeps
    favouring is discounted at the next step (Gulcehre et al. 2016, §3.2).

    Args:
      memory: (B, N, W) memory, one slot per row.
      keys: (B, H, W) one lookup key per head.
      strengths: (B, H) key strengths β.
      average: (B, H, N) the moving average v of each head's earlier logits (zeros at t = 0).
      gamma: (B, H) how far each head steers away from recently used slots, γ (in [0, 1] in the D-NTM).
      similarity: ``"cosine"`` or ``"dot"``.

    Returns:
      (weights w (B, H, N), each (b, h) row a distribution over the N slots; logits z (B, H, N)).
    """
    logits = content_logits(memory, keys, strengths, similarity)  # (B, H, N)
    weights = torch.softmax(logits - gamma.unsqueeze(-1) * average, dim=-1)
    return weights, logits


def choose_slots(weights: Tensor, noise: Tensor, mode: str) -> tuple[Tensor, Tensor]:
    """The slot :func:`sample_slots` picks for each head, (B, H) long, and which heads' weights are not all
    finite, (B, H) bool (those pick slot 0). No gradient: see :func:`sample_slots` for the rule."""
    with torch.no_grad():
        slots = weights.shape[-1]
        index = torch.arange(slots, device=weights.device)  # (N,)
        positive = weights > 0  # (B, H, N); False at NaN
        bad = ~torch.isfinite(weights).all(-1)  # (B, H)
        if mode == "argmax":
            chosen = weights.argmax(-1)
        else:
            threshold = noise.to(weights.dtype) * weights.sum(-1)  # u Σ_j w_j, (B, H)
            crossed = positive & (weights.cumsum(-1) > threshold.unsqueeze(-1))
            first = torch.where(crossed, index, slots).amin(-1)  # N where none crossed
            last = torch.where(positive, index, -1).amax(-1)  # −1 where no weight is positive
            chosen = torch.minimum(first, last)
        chosen = torch.where(bad | (chosen < 0), 0, chosen)
    return chosen, bad


@op(weights="BHN", noise="BH", mode=SAMPLE_MODES)
def sample_slots(weights: Tensor, noise: Tensor, mode: str = "sample") -> tuple[Tensor, Tensor, Tensor]:
    """Discrete addressing: one slot per head, drawn from its weights or their argmax, as a one-hot.

        sample:  i_h = min(first i with w_i > 0 and Σ_{j≤i} w_j > u_h Σ_j w_j,  last i with w_i > 0)
        argmax:  i_h = argmax_i w_i (the lowest index among ties; the noise is not read)
        log π = Σ_h log max(w[h, i_h], tiny);   H = −Σ_h Σ_i w[h,i] log max(w[h,i], tiny)

    with tiny the dtype's smallest normal number. With u uniform in [0, 1) and w ≥ 0, slot i is drawn
    with probability w_i / Σ_j w_j (inverse CDF); the ``min`` keeps a rounding of the cumulative sum
    from picking a slot past the last one with positive weight, and w_i > 0 one with zero weight. A
    head with no positive weight picks slot 0. A head whose weights are not all finite (a NaN, an
    infinity) picks slot 0 and its term of log π is NaN, so log π is NaN for that batch element; no
    index is ever formed outside [0, N). The choice has no gradient (the one-hot is constant); log π
    and H are differentiable in the weights, for REINFORCE and its entropy bonus.

    Args:
      weights: (B, H, N) each head's weights over the slots (non-negative).
      noise: (B, H) uniform numbers u in [0, 1), one per head (``torch.rand``); ignored by ``"argmax"``.
      mode: ``"sample"`` or ``"argmax"``.

    Returns:
      (one-hot (B, H, N) in the weights' dtype, no gradient; log π (B,); entropy H (B,)).
    """
    chosen, bad = choose_slots(weights, noise, mode)  # (B, H)
    log_weights = weights.clamp_min(torch.finfo(weights.dtype).tiny).log()  # (B, H, N)
    picked = log_weights.gather(-1, chosen.unsqueeze(-1)).squeeze(-1).masked_fill(bad, float("nan"))  # (B, H)
    entropy = -(weights * log_weights).sum(-1).sum(-1)
    return F.one_hot(chosen, weights.shape[-1]).to(weights.dtype), picked.sum(-1), entropy
