"""PyTorch reference of additive (Bahdanau) attention: score, softmax over the sequence, context.

For each batch element b and head h, with the query and the keys already projected
(Bahdanau et al. 2015, appendix A.1.2)::

    e[b, h, i]   = v_h · tanh(qp[b, h] + kp[b, h, i])          (the additive score)
    a[b, h, i]   = exp(e[b, h, i]) / Σ_j exp(e[b, h, j])       (softmax over the S elements)
    ctx[b, h]    = Σ_i a[b, h, i] · k[b, i]                     (the values are the keys)

Shapes: query projection qp = W_h q (B, H, A), key projection kp = U_h k_i (B, H, S, A),
v (H, A), keys k (B, S, D) → context (B, H, D) and weights a (B, H, S). There is no padding
mask: every one of the S elements is attended to.

This is the computation :class:`cogdsl.blocks.attention.Attention` did inline before it
called :func:`cogdsl.ops.additive_attention`, operation for operation, so that the CPU
results are unchanged. It is registered under the ``"torch"`` backend; the public,
shape-checked entry point is :func:`cogdsl.ops.additive_attention`, and the Triton kernel
(:mod:`cogdsl.kernels.additive`) is tested against this function.

Shape letters: B batch, H heads, S sequence elements, A score units per head, D key width.

It also holds the reference of a memory network hop's read (Sukhbaatar et al. 2015, eq. 1-2),
dot-product attention over a story's slots with a mask for the empty ones::

    p[b, i] = exp(m[b, i] · u[b]) / Σ_{j kept} exp(m[b, j] · u[b])   (0 for a slot not kept)
    o[b]    = Σ_i p[b, i] · c[b, i]

the computation :class:`cogdsl.blocks.memnet.Hops` did inline before it called
:func:`cogdsl.ops.hop_read`, operation for operation. Shapes: query u (B, D), keys m (B, N, D),
values c (B, N, W), mask (B, N) → read o (B, W), weights p (B, N); N memory slots, W value width.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cogdsl.ops.backend import register

__all__ = ["additive_attention", "hop_read", "masked_softmax"]


def additive_attention(query_projection: Tensor, key_projection: Tensor, v: Tensor,
                       keys: Tensor) -> tuple[Tensor, Tensor]:
    """softmax_i(v_h · tanh(qp_h + kp_{h,i})), then Σ_i a_i k_i.

    query_projection (B,H,A), key_projection (B,H,S,A), v (H,A), keys (B,S,D) →
    (context (B,H,D), weights (B,H,S)).
    """
    scores = (torch.tanh(query_projection.unsqueeze(2) + key_projection) * v[:, None]).sum(-1)  # (B, H, S)
    weights = scores.softmax(-1)
    return weights @ keys, weights


register("additive_attention", "torch", additive_attention)


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """p_i = exp(s_i) / Σ_{j kept} exp(s_j) over the last axis, 0 where ``mask`` is False (a row with none kept: 0).

    scores (..., N), mask (..., N) bool → (..., N).
    """
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).nan_to_num(0.0)


def hop_read(query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """p_i = exp(m_i · u) / Σ_{j kept} exp(m_j · u) on the kept slots (0 elsewhere), then o = Σ_i p_i c_i.

    query u (B,D), keys m (B,N,D), values c (B,N,W), mask (B,N) bool → (read o (B,W), weights p (B,N));
    a row with no kept slot reads zeros.
    """
    weights = masked_softmax(torch.einsum("bnd,bd->bn", keys, query), mask)
    return torch.einsum("bn,bnw->bw", weights, values), weights


register("hop_read", "torch", hop_read)
