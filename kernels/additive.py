"""Additive (Bahdanau) attention: score, softmax over the sequence and context, fused.

For batch element b and head h, with qp = W_h q (A,), kp_i = U_h k_i (A,), v_h (A,) and the
keys k_i (D,), i = 1..S::

    z_i   = qp + kp_i                       t_i = tanh(z_i)
    e_i   = v_h · t_i                       (the additive score)
    a_i   = exp(e_i − m) / l,               m = max_j e_j,   l = Σ_j exp(e_j − m)
    ctx   = Σ_i a_i k_i                     (B, H, D); the weights a are returned too (B, H, S)

Reference: :func:`cogdsl.ops.attention.additive_attention`.

**Forward**: one program per (batch element, head) walks the S elements in tiles of
``BLOCK_S``. The softmax is online: each tile's scores update the running maximum m, and
the running sum l and the unnormalised context Σ_i exp(e_i − m) k_i are rescaled by
exp(m_old − m_new) as m grows, so one pass over kp and the keys gives the context. The scores
are stored in the weights array on the way, and a second pass over that (S,) row turns them
into the weights exp(e − m) / l.

**Backward**, with a the weights, dctx = dL/dctx (D,) and da = dL/da (S,) (zero when the
weights are not used):

    g_i   = da_i + dctx · k_i                          (dL/da_i through both outputs)
    c     = Σ_j a_j g_j = Σ_j a_j da_j + dctx · ctx    (no pass over the keys needed)
    de_i  = a_i (g_i − c)                              (the softmax's Jacobian)
    dv_h  = Σ_b Σ_i de_i t_i
    dz_i  = de_i v_h ∘ (1 − t_i²)                      (tanh' = 1 − tanh²)
    dkp_i = dz_i;   dqp = Σ_i dz_i
    dk_i  = Σ_h a_{h,i} dctx_h

The keys reach the scores only through kp, which is an input of its own: the path
k → U k → kp belongs to the caller's autograd (the block's linear layer), so dk is the
context's share alone. The backward runs one program per batch element holding every head:
dk_i sums over the heads, and a program that has them all reduces that sum in registers,
with no atomics and no (B, H, S, D) array of per-head parts. t is recomputed from qp and kp
(an exp per element) rather than saved, which would cost another (B, H, S, A) array. dv's
sum over the batch is a ``sum(0)`` of per-batch-element parts (deterministic).

Memory traffic (itemsize x elements), with the batch element's H heads:

* forward, per (b, h) program: kp_{b,h} read once (S·A), the keys read once (S·D; each of a
  batch element's H programs reads them, so for H > 1 the later reads can hit L2), qp and v
  (2A), the scores written, read and the weights written (3S), the context written (D);
* backward, per b program: kp and the keys read once (H·S·A + S·D), dkp and dk written once
  (H·S·A + S·D), the weights read once (H·S), or, when the loss uses them, the weights and da
  read twice each (4·H·S: a first pass sums Σ_j a_j da_j), qp, v, ctx, dctx read and dqp and
  dv's part written (O(H·(A + D))).

tanh is computed as sign(x)(1 − e^(−2|x|)) / (1 + e^(−2|x|)), which cannot overflow; Triton's
libdevice tanh has no interpreter implementation, and this way the GPU and the interpreter
run the same arithmetic. Near x = 0 its error is absolute, of the order of one ulp of 1
(1.2e-7 in float32), rather than relative; the scores sum A such terms weighted by v.

The kernels read ``key_projection`` and ``keys`` with their own strides (the last dimension
must have stride 1, else it is copied), because the model's key projection is a transposed
view computed once per sequence and read at every step: a copy per step would double the
bytes a step moves.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from cogdsl.kernels import max_tile_slots
from cogdsl.kernels.library import define, launch
from cogdsl.kernels.tiles import LAUNCH, NUM_WARPS, TILE_VALUES, contiguous, online_softmax_tile

__all__ = ["additive_attention", "additive_backward", "additive_blocks", "additive_forward"]


def additive_blocks(heads: int, length: int, hidden: int, key_width: int, *, every_head: bool) -> dict[str, int]:
    """Block sizes: BLOCK_A ≥ A, BLOCK_D ≥ D, the sequence tile BLOCK_S, ``num_warps`` and, ``every_head``,
    BLOCK_H ≥ H.

    A program holds a sequence tile's key projections (BLOCK_H, BLOCK_S, BLOCK_A) (BLOCK_H = 1
    forward) and keys (BLOCK_S, BLOCK_D), and a tile of the same shape made from each (tanh and
    the weighted keys forward, their gradients backward): BLOCK_S is the largest power of two
    with 2 · BLOCK_S · (BLOCK_H · BLOCK_A + BLOCK_D) ≤ ``TILE_VALUES``, 16,384 values over 8 warps
    as in :func:`~cogdsl.kernels.tiles.blocks`. One head, A = D = 64: 64 elements; A = D = 256:
    16; four heads, A = D = 64: 16. :func:`cogdsl.kernels.tiling` caps it further.
    """
    block_a = triton.next_power_of_2(max(hidden, 1))
    block_d = triton.next_power_of_2(max(key_width, 1))
    block_h = triton.next_power_of_2(max(heads, 1)) if every_head else 1
    fits = max(1, TILE_VALUES // (2 * (block_h * block_a + block_d)))
    block_s = min(triton.next_power_of_2(max(length, 1)), 1 << (fits.bit_length() - 1))
    cap = max_tile_slots()
    if cap is not None:
        block_s = min(block_s, cap)
    sizes = {"BLOCK_S": block_s, "BLOCK_A": block_a, "BLOCK_D": block_d, "num_warps": NUM_WARPS}
    if every_head:
        sizes["BLOCK_H"] = block_h
    return sizes


@triton.jit
def tanh(x):
    """tanh(x) = sign(x) (1 − e^(−2|x|)) / (1 + e^(−2|x|)), finite for every x."""
    decay = tl.exp(-2.0 * tl.abs(x))
    magnitude = (1.0 - decay) / (1.0 + decay)
    return tl.where(x < 0, -magnitude, magnitude)


# -- the kernels ----------------------------------------------------------------------------

@triton.jit
def _additive_forward_kernel(query_ptr, key_proj_ptr, v_ptr, keys_ptr, context_ptr, weights_ptr, H, S, A, D,
                             key_proj_stride_b, key_proj_stride_h, key_proj_stride_s, keys_stride_b,
                             keys_stride_s, BLOCK_S: tl.constexpr, BLOCK_A: tl.constexpr,
                             BLOCK_D: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    head = tl.program_id(1).to(tl.int64)
    row = batch * H + head
    units = tl.arange(0, BLOCK_A)
    unit_mask = units < A
    columns = tl.arange(0, BLOCK_D)
    column_mask = columns < D
    query = tl.load(query_ptr + row * A + units, mask=unit_mask, other=0.0)
    v = tl.load(v_ptr + head * A + units, mask=unit_mask, other=0.0)  # zero on padded units: they add nothing
    key_proj_ptr += batch * key_proj_stride_b + head * key_proj_stride_h
    keys_ptr += batch * keys_stride_b
    weights_ptr += row * S
    row_max = tl.full((), -1.0e30, query.dtype)
    row_sum = tl.zeros((), query.dtype)
    context = tl.zeros((BLOCK_D,), query.dtype)
    for start in range(0, S, BLOCK_S):
        elements = start + tl.arange(0, BLOCK_S)
        element_mask = elements < S
        key_proj = tl.load(key_proj_ptr + elements[:, None] * key_proj_stride_s + units[None, :],
                           mask=element_mask[:, None] & unit_mask[None, :], other=0.0)
        scores = tl.sum(tanh(query[None, :] + key_proj) * v[None, :], axis=1)
        tl.store(weights_ptr + elements, scores, mask=element_mask)
        keys = tl.load(keys_ptr + elements[:, None] * keys_stride_s + columns[None, :],
                       mask=element_mask[:, None] & column_mask[None, :], other=0.0)
        row_max, row_sum, context = online_softmax_tile(row_max, row_sum, context, scores, element_mask, keys)
    row_sum = tl.where(row_sum > 0, row_sum, 1.0)  # S = 0: an all-zero context, not 0/0
    tl.store(context_ptr + row * D + columns, context / row_sum, mask=column_mask)
    tl.debug_barrier()  # the scores were written by other threads of this program
    for start in range(0, S, BLOCK_S):
        elements = start + tl.arange(0, BLOCK_S)
        element_mask = elements < S
        scores = tl.load(weights_ptr + elements, mask=element_mask, other=0.0)
        tl.store(weights_ptr + elements, tl.exp(scores - row_max) / row_sum, mask=element_mask)


@triton.jit
def _additive_backward_kernel(query_ptr, key_proj_ptr, v_ptr, keys_ptr, context_ptr, weights_ptr,
                              d_context_ptr, d_weights_ptr, d_query_ptr, d_key_proj_ptr, d_v_ptr, d_keys_ptr,
                              H, S, A, D, key_proj_stride_b, key_proj_stride_h, key_proj_stride_s,
                              keys_stride_b, keys_stride_s, HAS_D_WEIGHTS: tl.constexpr,
                              BLOCK_H: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_A: tl.constexpr,
                              BLOCK_D: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    heads = tl.arange(0, BLOCK_H)
    head_mask = heads < H
    units = tl.arange(0, BLOCK_A)
    columns = tl.arange(0, BLOCK_D)
    head_unit_mask = head_mask[:, None] & (units < A)[None, :]
    head_column_mask = head_mask[:, None] & (columns < D)[None, :]
    head_units = heads[:, None] * A + units[None, :]
    head_columns = heads[:, None] * D + columns[None, :]
    query = tl.load(query_ptr + batch * H * A + head_units, mask=head_unit_mask, other=0.0)  # (BLOCK_H, BLOCK_A)
    v = tl.load(v_ptr + head_units, mask=head_unit_mask, other=0.0)
    context = tl.load(context_ptr + batch * H * D + head_columns, mask=head_column_mask, other=0.0)
    d_context = tl.load(d_context_ptr + batch * H * D + head_columns, mask=head_column_mask, other=0.0)
    key_proj_ptr += batch * key_proj_stride_b
    keys_ptr += batch * keys_stride_b
    weights_ptr += batch * H * S
    d_weights_ptr += batch * H * S
    d_key_proj_ptr += batch * H * S * A
    d_keys_ptr += batch * S * D
    centre = tl.sum(d_context * context, axis=1)  # c = dctx · ctx + Σ_j a_j da_j, (BLOCK_H,)
    if HAS_D_WEIGHTS:
        for start in range(0, S, BLOCK_S):
            elements = start + tl.arange(0, BLOCK_S)
            offsets = heads[:, None] * S + elements[None, :]
            mask = head_mask[:, None] & (elements < S)[None, :]
            centre += tl.sum(tl.load(weights_ptr + offsets, mask=mask, other=0.0)
                             * tl.load(d_weights_ptr + offsets, mask=mask, other=0.0), axis=1)
    d_query = query * 0.0
    d_v = query * 0.0
    for start in range(0, S, BLOCK_S):
        elements = start + tl.arange(0, BLOCK_S)
        element_mask = elements < S
        offsets = heads[:, None] * S + elements[None, :]
        mask = head_mask[:, None] & element_mask[None, :]
        weights = tl.load(weights_ptr + offsets, mask=mask, other=0.0)  # (BLOCK_H, BLOCK_S), zero when padded
        key_mask = element_mask[:, None] & (columns < D)[None, :]
        keys = tl.load(keys_ptr + elements[:, None] * keys_stride_s + columns[None, :], mask=key_mask, other=0.0)
        d_weights_total = tl.sum(d_context[:, None, :] * keys[None, :, :], axis=2)  # g = da + dctx · k_i
        if HAS_D_WEIGHTS:
            d_weights_total += tl.load(d_weights_ptr + offsets, mask=mask, other=0.0)
        d_scores = weights * (d_weights_total - centre[:, None])
        d_keys = tl.sum(weights[:, :, None] * d_context[:, None, :], axis=0)  # Σ_h a_{h,i} dctx_h
        tl.store(d_keys_ptr + elements[:, None] * D + columns[None, :], d_keys, mask=key_mask)
        proj_mask = mask[:, :, None] & (units < A)[None, None, :]
        key_proj = tl.load(key_proj_ptr + heads[:, None, None] * key_proj_stride_h
                           + elements[None, :, None] * key_proj_stride_s + units[None, None, :],
                           mask=proj_mask, other=0.0)  # (BLOCK_H, BLOCK_S, BLOCK_A)
        t = tanh(query[:, None, :] + key_proj)
        d_v += tl.sum(d_scores[:, :, None] * t, axis=1)
        d_pre = d_scores[:, :, None] * v[:, None, :] * (1.0 - t * t)  # dz = dkp
        tl.store(d_key_proj_ptr + heads[:, None, None] * S * A + elements[None, :, None] * A + units[None, None, :],
                 d_pre, mask=proj_mask)
        d_query += tl.sum(d_pre, axis=1)
    tl.store(d_query_ptr + batch * H * A + head_units, d_query, mask=head_unit_mask)
    tl.store(d_v_ptr + batch * H * A + head_units, d_v, mask=head_unit_mask)


# -- launchers and the autograd Function -----------------------------------------------------

def _unit_stride(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself when its last dimension is contiguous (the kernels take the other strides), else a copy."""
    return t if t.stride(-1) == 1 or t.shape[-1] <= 1 else t.contiguous()


def additive_forward(query_projection: torch.Tensor, key_projection: torch.Tensor, v: torch.Tensor,
                     keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """qp (B,H,A), kp (B,H,S,A), v (H,A), keys (B,S,D) → (context (B,H,D), weights (B,H,S)):
    one program per batch element and head."""
    query_projection, v = contiguous(query_projection, v)
    key_projection, keys = _unit_stride(key_projection), _unit_stride(keys)
    batch, heads, length, hidden = key_projection.shape
    key_width = keys.shape[2]
    context = keys.new_empty(batch, heads, key_width)
    weights = keys.new_empty(batch, heads, length)
    if batch and heads:
        launch(_additive_forward_kernel, (batch, heads), query_projection, key_projection, v, keys, context,
               weights, heads, length, hidden, key_width, *key_projection.stride()[:3], *keys.stride()[:2],
               **LAUNCH, **additive_blocks(heads, length, hidden, key_width, every_head=False))
    return context, weights


def additive_backward(query_projection: torch.Tensor, key_projection: torch.Tensor, v: torch.Tensor,
                      keys: torch.Tensor, context: torch.Tensor, weights: torch.Tensor,
                      d_context: torch.Tensor | None, d_weights: torch.Tensor | None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dqp, dkp, dv, dkeys): one program per batch element; without a gradient of the weights the kernel
    skips that part."""
    query_projection, v = contiguous(query_projection, v)
    key_projection, keys = _unit_stride(key_projection), _unit_stride(keys)
    batch, heads, length, hidden = key_projection.shape
    key_width = keys.shape[2]
    d_context = torch.zeros_like(context) if d_context is None else d_context
    has_d_weights = d_weights is not None
    d_weights = d_weights if d_weights is not None else weights  # not read without HAS_D_WEIGHTS
    fill = torch.empty if batch and heads else torch.zeros  # the kernel writes every element it launches for
    options = {"dtype": keys.dtype, "device": keys.device}
    d_query = fill(query_projection.shape, **options)
    d_key_projection = fill(key_projection.shape, **options)
    d_v_parts = fill((batch, heads, hidden), **options)
    d_keys = fill(keys.shape, **options)
    if batch and heads:
        launch(_additive_backward_kernel, (batch,), query_projection, key_projection, v, keys, context, weights,
               d_context, d_weights, d_query, d_key_projection, d_v_parts, d_keys, heads, length, hidden,
               key_width, *key_projection.stride()[:3], *keys.stride()[:2], HAS_D_WEIGHTS=has_d_weights,
               **LAUNCH, **additive_blocks(heads, length, hidden, key_width, every_head=True))
    return d_query, d_key_projection, d_v_parts.sum(0), d_keys


_additive_attention = define("additive_attention", additive_forward, additive_backward, outputs=2,
                             materialize=False)


def additive_attention(query_projection: torch.Tensor, key_projection: torch.Tensor, v: torch.Tensor,
                       keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The Triton implementation of :func:`cogdsl.ops.additive_attention` (shapes checked there)."""
    context, weights = _additive_attention(query_projection, key_projection, v, keys)
    return context, weights
