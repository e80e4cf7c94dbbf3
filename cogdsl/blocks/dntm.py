"""Dynamic NTM addressing (Gulcehre et al. 2016, "Dynamic Neural Turing Machine with
Continuous and Discrete Addressing Schemes"): the equations of the ``lru`` and ``hard``
stages, and of the learned address vectors a ``memory`` gets with ``address_width``.

Address vectors. Each slot i holds a learned address a_i (A numbers, shared by every
sequence and never written) beside its content c_i (W numbers, written as in an NTM).
Heads address and read the whole slot, M_i = [a_i ; c_i]: keys are A + W wide and a read is
A + W wide, so a head can find a slot by where it is (its address) as well as by what it
holds; erase and add vectors are W wide and touch the content only.

Least recently used (``lru``), on the content logits z = β K(k, M) (one per head)::

    w_t = softmax(z_t − γ_t v_{t−1})          γ_t = sigmoid(·) in [0, 1], from the controller
    v_t = λ v_{t−1} + (1 − λ) z_t              v_0 = 0, λ = the stage's ``decay``

v is a moving average of the head's own recent logits, and γ says how much of it to take
away: with λ = 0.1 and γ = 1, a slot whose logit stays the same keeps a tenth of it, so the
head's focus spreads from the slots it has been using to the rest, and a slot whose logit
rose since (one just written to match the key) wins over one that was already favoured.

Discrete addressing (``hard``): each head samples one slot from the weighting the stages
before it made, i ~ w (training), or takes i = argmax w (evaluation), and reads or writes
that slot alone (the one-hot weighting). The sample has no gradient; the weighting learns by
REINFORCE (:mod:`cogdsl.reinforce`) from the log-likelihood of the targets, standardised over
the batch, as the D-NTM paper trains it.
"""

from __future__ import annotations

import torch

from cogdsl import ops
from cogdsl.reinforce import Decision


def lru_weights(logits: torch.Tensor, average: torch.Tensor, gamma: torch.Tensor,
                decay: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-recently-used addressing, w = softmax(z − γ v_prev) and v = λ v_prev + (1 − λ) z.

    (v is the Dynamic NTM's moving average of the content logits, not the DNC's usage.)

    Args:
        logits: z, (B, H, N), the content logits (up to a constant per row).
        average: v_prev, (B, H, N), the moving average of earlier logits.
        gamma: γ, (B, H), how far to steer away from recently used slots.
        decay: λ in [0, 1).

    Returns:
        the weights (B, H, N) and the new moving average v (B, H, N).
    """
    weights = torch.softmax(logits - gamma.unsqueeze(-1) * average, dim=-1)
    return weights, decay * average + (1.0 - decay) * logits


def lru_address(memory: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor, average: torch.Tensor,
                gamma: torch.Tensor, decay: float, similarity: str = "cosine") -> tuple[torch.Tensor, torch.Tensor]:
    """The ``lru`` stage from the memory: w = softmax(z − γ v_prev), z = β K(k, M), and v = λ v_prev + (1 − λ) z.

    :func:`lru_weights` on :func:`~cogdsl.ops.ntm.content_logits`, in one op
    (:func:`cogdsl.ops.lru_content_weights`, a Triton kernel pair on CUDA) and one elementwise update.

    Args:
        memory: (B, N, W) the memory the heads address.
        keys: (B, H, W) the heads' keys k.
        strengths: (B, H) key strengths β.
        average: v_prev, (B, H, N), the moving average of earlier logits.
        gamma: γ, (B, H), how far to steer away from recently used slots.
        decay: λ in [0, 1).
        similarity: K, ``"cosine"`` or ``"dot"``.

    Returns:
        the weights (B, H, N) and the new moving average v (B, H, N).
    """
    weights, logits = ops.lru_content_weights(memory, keys, strengths, average, gamma, similarity)
    return weights, decay * average + (1.0 - decay) * logits


def sample_slots(weights: torch.Tensor, training: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Discrete addressing: one slot per head, i ~ w when ``training``, else i = argmax w.

    weights (B, H, N) → the one-hot weighting (B, H, N) (no gradient), log pi = sum_h log w_{h, i_h}
    (B,) and the entropy sum_h H(w_h) (B,): :func:`cogdsl.ops.sample_slots`, with uniform noise drawn
    here by ``torch.rand`` (so the global seed decides the samples, on every backend) when training.
    """
    batch, heads, _ = weights.shape
    if training:
        noise = torch.rand(batch, heads, dtype=weights.dtype, device=weights.device)
        return ops.sample_slots(weights, noise, "sample")
    return ops.sample_slots(weights, weights.new_zeros(batch, heads), "argmax")  # the noise is not read


def slot_decision(samples: list[tuple[torch.Tensor, torch.Tensor, float]], baseline: torch.Tensor,
                  like: torch.Tensor) -> Decision:
    """One REINFORCE :class:`~cogdsl.reinforce.Decision` for a step's slot samples, each (log pi (B,),
    entropy (B,), entropy weight): their log-probabilities add and each entropy keeps its weight; the
    baseline is the group's one learned number b (the reward is already centred on the batch), and the
    reward the likelihood of the targets. ``like``: a (B, ...) tensor of the step's dtype."""
    batch = like.shape[0]
    expanded = baseline.to(like.dtype).expand(batch)
    if len(samples) == 1:
        log_prob, entropy, weight = samples[0]
        return Decision(log_prob, expanded, entropy, weight, reward="likelihood")
    log_prob = sum((s[0] for s in samples), like.new_zeros(batch))
    bonus = sum((s[2] * s[1] for s in samples), like.new_zeros(batch))
    return Decision(log_prob, expanded, bonus, 1.0, reward="likelihood")
