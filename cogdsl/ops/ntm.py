"""The NTM's addressing and read/write ops: each one's reference equation and its declaration.

These are the pure equations of Graves et al. (2014), "Neural Turing Machines", §3.1-3.3,
batch first and vectorised over batch and heads. Each function here is an op's reference (the
``"reference"`` backend, autograd for the backward), and its ``@op`` line declares the op's shape
contract: :mod:`cogdsl.ops` exports the checked, dispatching function of the same name and
docstring. The functions here are the plain equations, with no check and no dispatch; the
Triton kernels and the hand-written backwards of :mod:`cogdsl.ops.ntm_grad` are tested against them.

Shape letters: B batch, H heads, N memory slots, W slot width, K = 2s+1 shift offsets,
V write heads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

from cogdsl.ops.declare import op

__all__ = [
    "COSINE_EPS",
    "SHARPEN_EPS",
    "SIMILARITIES",
    "address",
    "apply_stages",
    "compose_memory_step",
    "content_logits",
    "content_weights",
    "interpolate",
    "memory_step",
    "ntm_address",
    "ntm_memory_step",
    "read",
    "sharpen",
    "shift",
    "write",
]

#: Similarity measures accepted by :func:`content_weights`.
SIMILARITIES: tuple[str, ...] = ("cosine", "dot")

#: Cosine similarity is k·M_i / (|k| |M_i| + COSINE_EPS), with each norm computed as
#: sqrt(Σ x² + COSINE_EPS²) so that sqrt is differentiable at an all-zero vector. On ordinary
#: inputs COSINE_EPS² vanishes below float32 rounding of Σ x²; at an all-zero memory row the
#: similarity is 0 and its gradient, though finite, is of order |k| / COSINE_EPS (cosine
#: similarity has no limit at the zero vector).
COSINE_EPS = 1e-8

#: Sharpening raises (w + SHARPEN_EPS) to the power gamma, so that a weight of exactly 0 has a
#: finite log (the gradient with respect to gamma is w^γ log w). 1e-16 is below float32
#: resolution for any weight above ~1e-9, so it changes no result that matters; the remaining
#: float32 error against the exact formula (≈1e-6 relative for gamma up to 10) is pow's rounding.
SHARPEN_EPS = 1e-16


def content_logits(memory: Tensor, keys: Tensor, strengths: Tensor, similarity: str = "cosine") -> Tensor:
    """z_i = β · sim(k, M_i), the logits of content addressing: memory (B,N,W), keys (B,H,W),
    strengths (B,H) → (B,H,N). Stages that shift the logits before the softmax (D-NTM's
    least-recently-used addressing) start from here."""
    dots = torch.bmm(keys, memory.transpose(1, 2))  # (B, H, N)
    if similarity == "cosine":
        eps_sq = COSINE_EPS * COSINE_EPS
        key_norms = torch.sqrt(keys.square().sum(-1) + eps_sq)  # (B, H)
        mem_norms = torch.sqrt(memory.square().sum(-1) + eps_sq)  # (B, N)
        sim = dots / (key_norms.unsqueeze(-1) * mem_norms.unsqueeze(1) + COSINE_EPS)
    elif similarity == "dot":
        sim = dots
    else:
        allowed = ", ".join(repr(s) for s in SIMILARITIES)
        raise ValueError(f"content_weights: unknown similarity {similarity!r}; expected one of {allowed}")
    return strengths.unsqueeze(-1) * sim


def _odd_shift_count(op_name: str, args: dict[str, Tensor]) -> None:
    shift_weights = args["shift_weights"]
    if shift_weights.shape[-1] % 2 == 0:
        raise ValueError(
            f"{op_name}: shift_weights has shape {tuple(shift_weights.shape)} but its last dimension must be "
            "odd (2s+1, for offsets −s..s)"
        )


@op(memory="BNW", keys="BHW", strengths="BH", similarity=SIMILARITIES)
def content_weights(memory: Tensor, keys: Tensor, strengths: Tensor, similarity: str = "cosine") -> Tensor:
    """Content-based addressing: a softmax over slots of each key's similarity to every slot.

        w_c[b, h, i] = exp(β[b,h] K(k[b,h], M[b,i])) / Σ_j exp(β[b,h] K(k[b,h], M[b,j]))

    with K the cosine similarity k·M_i / (|k| |M_i| + ε), ε = 1e-8 (norms computed as
    sqrt(Σ x² + ε²), so an all-zero memory gives finite weights and gradients), or the plain
    dot product k·M_i.

    Args:
      memory: (B, N, W) memory, one slot per row.
      keys: (B, H, W) one lookup key per head.
      strengths: (B, H) key strengths β (positive in the NTM; any sign is accepted).
      similarity: ``"cosine"`` or ``"dot"``.

    Returns:
      (B, H, N) weights; each (b, h) row is a distribution over the N slots.
    """
    return torch.softmax(content_logits(memory, keys, strengths, similarity), dim=-1)


@op(content="BHN", previous="BHN", gate="BH")
def interpolate(content: Tensor, previous: Tensor, gate: Tensor) -> Tensor:
    """Interpolation between the content weights and the previous step's weights.

        w_g = g · w_c + (1 − g) · w_prev

    Args:
      content: (B, H, N) content weights w_c.
      previous: (B, H, N) weights w_prev from the previous time step.
      gate: (B, H) interpolation gate g, in [0, 1].

    Returns:
      (B, H, N) gated weights (a distribution when both inputs are and g ∈ [0, 1]).
    """
    g = gate.unsqueeze(-1)  # (B, H, 1)
    return g * content + (1 - g) * previous


@functools.lru_cache(maxsize=64)
def _shift_index(n: int, k: int, device: torch.device) -> Tensor:
    """(K·N,) flat gather index: row k holds (i − o_k) mod N for offsets o_k = k − s."""
    s = (k - 1) // 2
    offsets = torch.arange(-s, s + 1, device=device).unsqueeze(1)  # (K, 1)
    slots = torch.arange(n, device=device).unsqueeze(0)  # (1, N)
    return torch.remainder(slots - offsets, n).reshape(-1)  # (K*N,)


@op(weights="BHN", shift_weights="BHK", checks=(_odd_shift_count,))
def shift(weights: Tensor, shift_weights: Tensor) -> Tensor:
    """Location-based shift: circular convolution of the weights with a shift distribution.

        w̃[b, h, i] = Σ_{k=0}^{2s} w[b, h, (i − o_k) mod N] · s[b, h, k],   o_k = k − s

    so offset +1 moves focus to the next slot (a one-hot at slot i becomes one at i+1 mod N).
    2s+1 may exceed N: the offsets then wrap around the memory more than once.

    Args:
      weights: (B, H, N) weights w to shift.
      shift_weights: (B, H, 2s+1) distribution over the offsets −s..s.

    Returns:
      (B, H, N) shifted weights.
    """
    b, h, n = weights.shape
    k = shift_weights.shape[-1]
    index = _shift_index(n, k, weights.device)
    # (B, H, K, N): rolled[..., k, i] = w[(i − o_k) mod N]
    rolled = weights.index_select(-1, index).view(b, h, k, n)
    return torch.matmul(shift_weights.unsqueeze(-2), rolled).squeeze(-2)  # (B, H, N)


@op(weights="BHN", gamma="BH")
def sharpen(weights: Tensor, gamma: Tensor) -> Tensor:
    """Sharpening, to undo the blur a fractional shift causes.

        w[b, h, i] = w̃[b,h,i]^γ[b,h] / Σ_j w̃[b,h,j]^γ[b,h]

    A weight is offset by ε = 1e-16 before the power (so a weight of exactly 0 has a finite
    gradient with respect to γ), and the powers are taken of w/max(w), so the denominator
    cannot underflow for large γ.

    Args:
      weights: (B, H, N) non-negative weights w̃.
      gamma: (B, H) sharpening exponent γ (≥ 1 in the NTM).

    Returns:
      (B, H, N) sharpened weights; each (b, h) row is a distribution over the N slots.
    """
    # x = (w + ε) / max_N(w + ε) gives the same x^γ / Σ x^γ with max x = 1 (no underflow); the result
    # does not depend on the maximum (its true gradient is 0), so it is detached.
    shifted = weights + SHARPEN_EPS
    x = shifted / shifted.detach().amax(dim=-1, keepdim=True)  # (B, H, N), in (0, 1]
    powered = x.pow(gamma.unsqueeze(-1))
    return powered / powered.sum(dim=-1, keepdim=True)


@op(memory="BNW", previous="BHN", keys="BHW", strengths="BH", gate="BH", shift_weights="BHK", gamma="BH",
    similarity=SIMILARITIES, checks=(_odd_shift_count,))
def ntm_address(
    memory: Tensor,
    previous: Tensor,
    keys: Tensor,
    strengths: Tensor,
    gate: Tensor,
    shift_weights: Tensor,
    gamma: Tensor,
    similarity: str = "cosine",
) -> Tensor:
    """The full NTM addressing pipeline (Graves et al. 2014, fig. 2), one call for all heads.

        w = sharpen(shift(interpolate(content_weights(M, k, β), w_prev, g), s), γ)

    Args:
      memory: (B, N, W) memory.
      previous: (B, H, N) each head's weights from the previous time step.
      keys: (B, H, W) lookup keys k.
      strengths: (B, H) key strengths β.
      gate: (B, H) interpolation gates g, in [0, 1].
      shift_weights: (B, H, 2s+1) distributions over the shift offsets −s..s.
      gamma: (B, H) sharpening exponents γ ≥ 1.
      similarity: ``"cosine"`` or ``"dot"``.

    Returns:
      (B, H, N) new weights; each (b, h) row is a distribution over the N slots.
    """
    content = content_weights(memory, keys, strengths, similarity)
    gated = interpolate(content, previous, gate)
    return sharpen(shift(gated, shift_weights), gamma)


def _shift_count_if_given(op_name: str, args: dict[str, Tensor]) -> None:
    if args["shift_weights"] is not None:
        _odd_shift_count(op_name, args)


def _content_pair(op_name: str, args: dict[str, Tensor | None]) -> None:
    if (args["keys"] is None) != (args["strengths"] is None):
        given, missing = ("keys", "strengths") if args["strengths"] is None else ("strengths", "keys")
        raise ValueError(f"{op_name}: {given} is given but {missing} is None; the content stage needs both "
                         "(or neither, to leave it out)")


@op(memory="BNW", previous="BHN", keys="BHW?", strengths="BH?", gate="BH?", shift_weights="BHK?", gamma="BH?",
    similarity=SIMILARITIES, checks=(_content_pair, _shift_count_if_given))
def address(
    memory: Tensor,
    previous: Tensor,
    keys: Tensor | None = None,
    strengths: Tensor | None = None,
    gate: Tensor | None = None,
    shift_weights: Tensor | None = None,
    gamma: Tensor | None = None,
    similarity: str = "cosine",
) -> Tensor:
    """Any NTM addressing pipeline: the stages whose arguments are given, in the NTM's order.

        w ← w_prev
        w ← content_weights(M, k, β)     if keys and strengths are given
        w ← interpolate(w, w_prev, g)    if gate is given
        w ← shift(w, s)                  if shift_weights is given
        w ← sharpen(w, γ)                if gamma is given

    With every stage it is :func:`ntm_address`; ``content | sharpen`` is ``address(M, w_prev, k, β,
    gamma=γ)``. On CUDA it is one fused kernel launch forward and one backward, specialised to the
    stages given.

    Args:
      memory: (B, N, W) memory.
      previous: (B, H, N) each head's weights from the previous time step.
      keys: (B, H, W) lookup keys k, or None (no content stage; then strengths is None too).
      strengths: (B, H) key strengths β, or None.
      gate: (B, H) interpolation gates g in [0, 1], or None (no gate).
      shift_weights: (B, H, 2s+1) distributions over the shift offsets −s..s, or None (no shift).
      gamma: (B, H) sharpening exponents γ ≥ 1, or None (no sharpening).
      similarity: ``"cosine"`` or ``"dot"``.

    Returns:
      (B, H, N) new weights; each (b, h) row is a distribution over the N slots when ``previous``'s are
      or a content stage is given.
    """
    return apply_stages((content_weights, interpolate, shift, sharpen), memory, previous, keys, strengths, gate,
                        shift_weights, gamma, similarity)


def apply_stages(stages: tuple[Callable[..., Tensor], ...], memory: Tensor, previous: Tensor, keys: Tensor | None,
                 strengths: Tensor | None, gate: Tensor | None, shift_weights: Tensor | None, gamma: Tensor | None,
                 similarity: str) -> Tensor:
    """:func:`address` with the given implementations of (content_weights, interpolate, shift, sharpen)."""
    content, gated, shifted, sharpened = stages
    weights = previous
    if keys is not None and strengths is not None:
        weights = content(memory, keys, strengths, similarity)
    if gate is not None:
        weights = gated(weights, previous, gate)
    if shift_weights is not None:
        weights = shifted(weights, shift_weights)
    if gamma is not None:
        weights = sharpened(weights, gamma)
    return weights


@op(memory="BNW", weights="BHN")
def read(memory: Tensor, weights: Tensor) -> Tensor:
    """Read: each head's weighted sum of the memory slots.

        r[b, h] = Σ_i w[b, h, i] · M[b, i]

    Args:
      memory: (B, N, W) memory.
      weights: (B, H, N) read weights.

    Returns:
      (B, H, W) one read vector per head.
    """
    return torch.bmm(weights, memory)


@op(memory="BNW", weights="BHN", erase="BHW", add="BHW")
def write(memory: Tensor, weights: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """Write: every head erases, then every head adds (Graves et al. 2014, eq. 3-4).

        M' = M ∘ Π_h (1 − w_h e_hᵀ) + Σ_h w_h a_hᵀ

    The erase is a product over heads, so the heads' order does not matter.

    Args:
      memory: (B, N, W) memory M.
      weights: (B, H, N) write weights w_h.
      erase: (B, H, W) erase vectors e_h, in [0, 1].
      add: (B, H, W) add vectors a_h.

    Returns:
      (B, N, W) the new memory M'.
    """
    # (B, H, N, W) -> product over heads -> (B, N, W)
    keep = torch.prod(1 - weights.unsqueeze(-1) * erase.unsqueeze(-2), dim=1)
    added = torch.bmm(weights.transpose(1, 2), add)  # (B, N, W)
    return memory * keep + added


def compose_memory_step(address: Callable[..., Tensor], read_op: Callable[..., Tensor],
                        write_op: Callable[..., Tensor]) -> Callable[..., tuple[Tensor, Tensor, Tensor]]:
    """ntm_memory_step built from an implementation of ntm_address, read and write."""

    def ntm_memory_step(memory: Tensor, previous: Tensor, keys: Tensor, strengths: Tensor, gate: Tensor,
                        shift_weights: Tensor, gamma: Tensor, erase: Tensor, add: Tensor,
                        similarity: str = "cosine") -> tuple[Tensor, Tensor, Tensor]:
        """Address with every head, read with the first H − H_w, write with the last H_w.

        → weights (B,H,N), reads (B,H−H_w,W), new memory (B,N,W); H_w = erase.shape[1].
        """
        weights = address(memory, previous, keys, strengths, gate, shift_weights, gamma, similarity)
        read_heads = weights.shape[1] - erase.shape[1]
        return weights, read_op(memory, weights[:, :read_heads]), write_op(memory, weights[:, read_heads:], erase, add)

    return ntm_memory_step


_reference_step = compose_memory_step(ntm_address, read, write)


def _write_heads_within(op_name: str, args: dict[str, Tensor]) -> None:
    heads, write_heads = args["previous"].shape[1], args["erase"].shape[1]
    if not 1 <= write_heads <= heads:
        raise ValueError(
            f"{op_name}: erase has shape {tuple(args['erase'].shape)}: its {write_heads} write heads must be "
            f"between 1 and the {heads} heads that address the memory"
        )


@op(memory="BNW", previous="BHN", keys="BHW", strengths="BH", gate="BH", shift_weights="BHK", gamma="BH",
    erase="BVW", add="BVW", similarity=SIMILARITIES, checks=(_odd_shift_count, _write_heads_within))
def ntm_memory_step(
    memory: Tensor,
    previous: Tensor,
    keys: Tensor,
    strengths: Tensor,
    gate: Tensor,
    shift_weights: Tensor,
    gamma: Tensor,
    erase: Tensor,
    add: Tensor,
    similarity: str = "cosine",
) -> tuple[Tensor, Tensor, Tensor]:
    """One memory's whole NTM step: every head addresses, the read heads read, the write heads write.

    The H heads are read heads first, then the H_w = erase.shape[1] write heads (1 ≤ H_w ≤ H).
    Reads see the memory before the write:

        w = ntm_address(M, w_prev, k, β, g, s, γ)                          (B, H, N)
        r_h = Σ_i w_h[i] M_i                     for h < H − H_w           (B, H − H_w, W)
        M' = M ∘ Π_{h ≥ H−H_w} (1 − w_h e_hᵀ) + Σ_{h ≥ H−H_w} w_h a_hᵀ    (B, N, W)

    The same as calling :func:`ntm_address`, :func:`read` and :func:`write` in turn; on CUDA it
    is one fused kernel launch forward and one backward.

    Args:
      memory: (B, N, W) memory M.
      previous, keys, strengths, gate, shift_weights, gamma: as for :func:`ntm_address`, for all H heads.
      erase: (B, H_w, W) erase vectors of the write heads, in [0, 1].
      add: (B, H_w, W) add vectors of the write heads.
      similarity: ``"cosine"`` or ``"dot"``.

    Returns:
      (weights (B, H, N), reads (B, H − H_w, W), new memory (B, N, W)).
    """
    return _reference_step(memory, previous, keys, strengths, gate, shift_weights, gamma, erase, add, similarity)


_reference_any_step = compose_memory_step(address, read, write)


@op(memory="BNW", previous="BHN", keys="BHW?", strengths="BH?", gate="BH?", shift_weights="BHK?", gamma="BH?",
    erase="BVW", add="BVW", similarity=SIMILARITIES,
    checks=(_content_pair, _shift_count_if_given, _write_heads_within))
def memory_step(
    memory: Tensor,
    previous: Tensor,
    keys: Tensor | None,
    strengths: Tensor | None,
    gate: Tensor | None,
    shift_weights: Tensor | None,
    gamma: Tensor | None,
    erase: Tensor,
    add: Tensor,
    similarity: str = "cosine",
) -> tuple[Tensor, Tensor, Tensor]:
    """One memory's whole step with any addressing pipeline: every head addresses, the read heads read,
    the write heads write.

    :func:`ntm_memory_step` with the addressing of :func:`address` (a stage whose arguments are None is
    left out). The H heads are read heads first, then the H_w = erase.shape[1] write heads:

        w = address(M, w_prev, k, β, g, s, γ)                              (B, H, N)
        r_h = Σ_i w_h[i] M_i                     for h < H − H_w           (B, H − H_w, W)
        M' = M ∘ Π_{h ≥ H−H_w} (1 − w_h e_hᵀ) + Σ_{h ≥ H−H_w} w_h a_hᵀ    (B, N, W)

    On CUDA it is one fused kernel launch forward and one backward, specialised to the stages given.

    Args:
      memory: (B, N, W) memory M.
      previous, keys, strengths, gate, shift_weights, gamma: as for :func:`address`, for all H heads.
      erase: (B, H_w, W) erase vectors of the write heads, in [0, 1].
      add: (B, H_w, W) add vectors of the write heads.
      similarity: ``"cosine"`` or ``"dot"``.

    Returns:
      (weights (B, H, N), reads (B, H − H_w, W), new memory (B, N, W)).
    """
    return _reference_any_step(memory, previous, keys, strengths, gate, shift_weights, gamma, erase, add,
                               similarity)
