"""Attention ops: each one's reference equation and its declaration.

* :func:`additive_attention` -- additive (Bahdanau et al. 2015, appendix A.1.2) attention over a
  sequence: the score, the softmax and the context of every head, the query and keys already
  projected. It is the computation :class:`cogdsl.blocks.attention.Attention` did inline before it
  called :func:`cogdsl.ops.additive_attention`, operation for operation, so that the CPU results
  are unchanged; the Triton kernel (:mod:`cogdsl.kernels.additive`) is tested against it.
* :func:`hop_read` -- a memory network hop's read (Sukhbaatar et al. 2015, eq. 1-2): dot-product
  attention over a story's slots, with a mask for the empty ones, and the weighted sum of the
  values. It is the computation :class:`cogdsl.blocks.memnet.Hops` did inline before it called
  :func:`cogdsl.ops.hop_read`, operation for operation; the Triton kernel
  (:mod:`cogdsl.kernels.hop`) is tested against it.

Each op's function here is its reference (the ``"reference"`` backend, and the ``"torch"`` one
too: neither has a hand-written backward), and its ``@op`` line declares its shape contract:
:mod:`cogdsl.ops` exports the checked, dispatching function of the same name and docstring,
which states the equations.

Shape letters: B batch, H heads, S sequence elements, A score units per head, D key width
(for the hop's read: N memory slots, D the key and query width, W the value width).
"""

from __future__ import annotations

import torch
from torch import Tensor

from cogdsl.ops.declare import op

__all__ = ["additive_attention", "hop_read", "masked_softmax"]


def _dtype_name(t: Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _same_dtype(op_name: str, args: dict[str, Tensor]) -> None:
    if len({t.dtype for t in args.values()}) > 1:
        listed = ", ".join(f"{name} {_dtype_name(t)}" for name, t in args.items())
        raise TypeError(f"{op_name}: every argument must have the same dtype, got {listed}")


@op(query_projection="BHA", key_projection="BHSA", v="HA", keys="BSD", checks=(_same_dtype,))
def additive_attention(query_projection: Tensor, key_projection: Tensor, v: Tensor,
                       keys: Tensor) -> tuple[Tensor, Tensor]:
    """Additive (Bahdanau) attention: the score, the softmax over the sequence and the context, in one op.

        e[b, h, i] = v_h · tanh(qp[b, h] + kp[b, h, i])
        a[b, h, i] = exp(e[b, h, i]) / Σ_j exp(e[b, h, j])
        ctx[b, h]  = Σ_i a[b, h, i] · k[b, i]

    The projections are inputs, not parameters of the op: qp = W_h q changes at every step,
    while kp = U_h k_i depends on the keys alone, so a model computes it once per sequence
    and passes it at every step. There is no padding mask (every element is attended to).

    Args:
      query_projection: (B, H, A) each head's projected query W_h q.
      key_projection: (B, H, S, A) each head's projected keys U_h k_i (a strided view, such
        as a transpose of (B, S, H, A), is read in place by the kernel).
      v: (H, A) each head's score vector v_h.
      keys: (B, S, D) the keys k_i, which are also the values.

    Returns:
      (context (B, H, D), weights (B, H, S)); each (b, h) row of the weights is a
      distribution over the S elements.
    """
    scores = (torch.tanh(query_projection.unsqueeze(2) + key_projection) * v[:, None]).sum(-1)  # (B, H, S)
    weights = scores.softmax(-1)
    return weights @ keys, weights


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """p_i = exp(s_i) / Σ_{j kept} exp(s_j) over the last axis, 0 where ``mask`` is False (a row with none kept: 0).

    scores (..., N), mask (..., N) bool → (..., N).
    """
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).nan_to_num(0.0)


def _hop_dtypes(op_name: str, args: dict[str, Tensor]) -> None:
    """A bool mask; float32 or float64 query, keys and values, all three the same."""
    if args["mask"].dtype != torch.bool:
        raise TypeError(f"{op_name}: mask must be a bool tensor, got {_dtype_name(args['mask'])}")
    floats = {name: args[name] for name in ("query", "keys", "values")}
    if floats["query"].dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{op_name}: query, keys and values must be float32 or float64, got "
                        f"{_dtype_name(floats['query'])}")
    if len({t.dtype for t in floats.values()}) > 1:
        listed = ", ".join(f"{name} {_dtype_name(t)}" for name, t in floats.items())
        raise TypeError(f"{op_name}: query, keys and values must have the same dtype, got {listed}")


@op(query="BD", keys="BND", values="BNW", mask="BN", checks=(_hop_dtypes,))
def hop_read(query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """A memory network hop's read (Sukhbaatar et al. 2015, eq. 1-2): attention over the kept slots, then their sum.

        p[b, i] = exp(m[b, i] · u[b]) / Σ_{j kept} exp(m[b, j] · u[b])    (0 where mask[b, i] is False)
        o[b]    = Σ_i p[b, i] · c[b, i]

    A row with no kept slot (an empty story) gives zero weights and a zero read. The mask is
    not differentiable; every other input is.

    Args:
      query: (B, D) the hop's controller state u.
      keys: (B, N, D) the input memory m_i, one slot per sentence.
      values: (B, N, W) the output memory c_i.
      mask: (B, N) bool, True for a slot that holds a sentence.

    Returns:
      (read o (B, W), weights p (B, N)).
    """
    weights = masked_softmax(torch.einsum("bnd,bd->bn", keys, query), mask)
    return torch.einsum("bn,bnw->bw", weights, values), weights
