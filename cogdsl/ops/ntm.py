"""PyTorch reference implementations of the NTM addressing and read/write ops.

These are the pure equations of Graves et al. (2014), "Neural Turing Machines", §3.1-3.3,
batch first and vectorised over batch and heads. They are registered under the ``"torch"``
backend; the public, shape-checked entry points are in :mod:`cogdsl.ops`, which is where the
equations and shapes are documented. Triton kernels are tested against these functions.

Shape letters: B batch, H heads, N memory slots, W slot width, K = 2s+1 shift offsets.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

from cogdsl.ops.backend import register

__all__ = [
    "COSINE_EPS",
    "SHARPEN_EPS",
    "SIMILARITIES",
    "compose_memory_step",
    "content_logits",
    "content_weights",
    "interpolate",
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


def content_weights(memory: Tensor, keys: Tensor, strengths: Tensor, similarity: str = "cosine") -> Tensor:
    """softmax_N(β · sim(k, M_i)): memory (B,N,W), keys (B,H,W), strengths (B,H) → (B,H,N)."""
    return torch.softmax(content_logits(memory, keys, strengths, similarity), dim=-1)


def interpolate(content: Tensor, previous: Tensor, gate: Tensor) -> Tensor:
    """g · w_c + (1 − g) · w_prev: content (B,H,N), previous (B,H,N), gate (B,H) → (B,H,N)."""
    g = gate.unsqueeze(-1)  # (B, H, 1)
    return g * content + (1 - g) * previous


@functools.lru_cache(maxsize=64)
def _shift_index(n: int, k: int, device: torch.device) -> Tensor:
    """(K·N,) flat gather index: row k holds (i − o_k) mod N for offsets o_k = k − s."""
    s = (k - 1) // 2
    offsets = torch.arange(-s, s + 1, device=device).unsqueeze(1)  # (K, 1)
    slots = torch.arange(n, device=device).unsqueeze(0)  # (1, N)
    return torch.remainder(slots - offsets, n).reshape(-1)  # (K*N,)


def shift(weights: Tensor, shift_weights: Tensor) -> Tensor:
    """Circular convolution out[i] = Σ_k w[(i − o_k) mod N] s[k]: (B,H,N), (B,H,K) → (B,H,N)."""
    b, h, n = weights.shape
    k = shift_weights.shape[-1]
    index = _shift_index(n, k, weights.device)
    # (B, H, K, N): rolled[..., k, i] = w[(i − o_k) mod N]
    rolled = weights.index_select(-1, index).view(b, h, k, n)
    return torch.matmul(shift_weights.unsqueeze(-2), rolled).squeeze(-2)  # (B, H, N)


def sharpen(weights: Tensor, gamma: Tensor) -> Tensor:
    """w^γ / Σ_N w^γ: weights (B,H,N), gamma (B,H) → (B,H,N).

    Computed as x^γ / Σ x^γ with x = (w + ε) / max_N(w + ε): the same value, but max x = 1 so
    the denominator is at least 1 and cannot underflow for large γ. The maximum is detached:
    the result does not depend on it, so its true gradient is exactly zero.
    """
    shifted = weights + SHARPEN_EPS
    x = shifted / shifted.detach().amax(dim=-1, keepdim=True)  # (B, H, N), in (0, 1]
    powered = x.pow(gamma.unsqueeze(-1))
    return powered / powered.sum(dim=-1, keepdim=True)


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
    """sharpen(shift(interpolate(content_weights(M, k, β), w_prev, g), s), γ) → (B,H,N)."""
    content = content_weights(memory, keys, strengths, similarity)
    gated = interpolate(content, previous, gate)
    return sharpen(shift(gated, shift_weights), gamma)


def read(memory: Tensor, weights: Tensor) -> Tensor:
    """r_h = Σ_i w_h[i] M_i: memory (B,N,W), weights (B,H,N) → (B,H,W)."""
    return torch.bmm(weights, memory)


def write(memory: Tensor, weights: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """M ∘ Π_h(1 − w_h e_hᵀ) + Σ_h w_h a_hᵀ: (B,N,W), (B,H,N), (B,H,W), (B,H,W) → (B,N,W)."""
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


ntm_memory_step = compose_memory_step(ntm_address, read, write)


for _fn in (content_weights, interpolate, shift, sharpen, ntm_address, read, write, ntm_memory_step):
    register(_fn.__name__, "torch", _fn)
del _fn
