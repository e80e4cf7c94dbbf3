"""A memory network hop's read: dot-product scores, masked softmax over the slots and the read, fused.

For batch element b, with the query u (D,), the keys m_i (D,), the values c_i (W,) and the
mask k_i (True for a slot that holds a sentence), i = 1..N (Sukhbaatar et al. 2015, eq. 1-2)::

    s_i = m_i · u                                  (the score)
    p_i = k_i exp(s_i − m) / l,   m = max_{j kept} s_j,   l = Σ_{j kept} exp(s_j − m)
    o   = Σ_i p_i c_i                              (B, W); the weights p are returned too (B, N)

A row with no kept slot has l = 0: its weights and its read are zero, as the reference's
``nan_to_num`` makes them. Reference: :func:`cogdsl.ops.attention.hop_read`.

**Forward**: one program per batch element walks the N slots in tiles of ``BLOCK_N`` with an
online softmax (:func:`~cogdsl.kernels.tiles.online_softmax_tile`, as additive attention):
each tile's scores update the running maximum m, and the running sum l and the unnormalised
read Σ_i exp(s_i − m) c_i are rescaled by exp(m_old − m_new), so one pass over the keys and
values gives the read. The scores are
stored in the weights row on the way, and a second pass over that (N,) row normalises them.

**Backward**, with do = dL/do (W,) and dp = dL/dp (N,) (zero when the weights are not used)::

    g_i  = dp_i + do · c_i                         (dL/dp_i through both outputs)
    z    = Σ_j p_j g_j = Σ_j p_j dp_j + do · o     (no pass over the values needed)
    ds_i = p_i (g_i − z)                           (the softmax's Jacobian; 0 on a slot not kept)
    dm_i = ds_i u;   dc_i = p_i do;   du = Σ_i ds_i m_i

one program per batch element, one pass over the keys and values.

Memory traffic (itemsize x elements) per batch element: forward, the keys and values read once
(N·(D + W)), the mask read twice (N bytes each), the scores written, read and the weights
written (3N), the query and the read (D + W); backward, the keys and values read once and their
gradients written once (2·N·(D + W)), the weights read once (N), or three times with dp (and dp
twice: a first pass sums Σ_j p_j dp_j), the query, read, do and du (2D + 2W).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from cogdsl.kernels import max_tile_slots
from cogdsl.kernels.library import define, launch
from cogdsl.kernels.tiles import LAUNCH, NUM_WARPS, TILE_VALUES, contiguous, online_softmax_tile

__all__ = ["hop_backward", "hop_blocks", "hop_forward", "hop_read"]


def hop_blocks(slots: int, key_width: int, value_width: int) -> dict[str, int]:
    """Block sizes: BLOCK_D ≥ D, BLOCK_W ≥ W, the slot tile BLOCK_N, and ``num_warps``.

    The backward holds a slot tile's keys (BLOCK_N, BLOCK_D) and values (BLOCK_N, BLOCK_W) and
    the tiles of their gradients, of the same shapes (the forward: the values' weighted tile):
    BLOCK_N is the largest power of two with 2 · BLOCK_N · (BLOCK_D + BLOCK_W) ≤ ``TILE_VALUES``,
    16,384 values over 8 warps as in :func:`~cogdsl.kernels.tiles.blocks`. D = W = 20: 128 slots;
    D = W = 50: 64; D = W = 256: 16. :func:`cogdsl.kernels.tiling` caps it further.
    """
    block_d = triton.next_power_of_2(max(key_width, 1))
    block_w = triton.next_power_of_2(max(value_width, 1))
    fits = max(1, TILE_VALUES // (2 * (block_d + block_w)))
    block_n = min(triton.next_power_of_2(max(slots, 1)), 1 << (fits.bit_length() - 1))
    cap = max_tile_slots()
    if cap is not None:
        block_n = min(block_n, cap)
    return {"BLOCK_N": block_n, "BLOCK_D": block_d, "BLOCK_W": block_w, "num_warps": NUM_WARPS}


# -- the kernels ----------------------------------------------------------------------------

@triton.jit
def _hop_read_forward_kernel(query_ptr, keys_ptr, values_ptr, mask_ptr, read_ptr, weights_ptr, N, D, W,
                             BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    dims = tl.arange(0, BLOCK_D)
    dim_mask = dims < D
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    query = tl.load(query_ptr + batch * D + dims, mask=dim_mask, other=0.0)
    keys_ptr += batch * N * D
    values_ptr += batch * N * W
    mask_ptr += batch * N
    weights_ptr += batch * N
    row_max = tl.full((), -1.0e30, query.dtype)
    row_sum = tl.zeros((), query.dtype)
    read = tl.zeros((BLOCK_W,), query.dtype)
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        in_range = slots < N
        kept = tl.load(mask_ptr + slots, mask=in_range, other=0) != 0
        keys = tl.load(keys_ptr + slots[:, None] * D + dims[None, :], mask=kept[:, None] & dim_mask[None, :],
                       other=0.0)
        scores = tl.sum(keys * query[None, :], axis=1)
        tl.store(weights_ptr + slots, scores, mask=in_range)
        values = tl.load(values_ptr + slots[:, None] * W + columns[None, :],
                         mask=kept[:, None] & column_mask[None, :], other=0.0)
        row_max, row_sum, read = online_softmax_tile(row_max, row_sum, read, scores, kept, values)
    row_sum = tl.where(row_sum > 0, row_sum, 1.0)  # no kept slot: a zero read, not 0/0
    tl.store(read_ptr + batch * W + columns, read / row_sum, mask=column_mask)
    tl.debug_barrier()  # the scores were written by other threads of this program
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        in_range = slots < N
        kept = tl.load(mask_ptr + slots, mask=in_range, other=0) != 0
        scores = tl.load(weights_ptr + slots, mask=in_range, other=0.0)
        shifted = tl.where(kept, scores - row_max, -1.0e38)  # exp of a dropped slot's score could overflow
        tl.store(weights_ptr + slots, tl.exp(shifted) / row_sum, mask=in_range)


@triton.jit
def _hop_read_backward_kernel(query_ptr, keys_ptr, values_ptr, read_ptr, weights_ptr, d_read_ptr, d_weights_ptr,
                              d_query_ptr, d_keys_ptr, d_values_ptr, N, D, W, HAS_D_WEIGHTS: tl.constexpr,
                              BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    dims = tl.arange(0, BLOCK_D)
    dim_mask = dims < D
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    query = tl.load(query_ptr + batch * D + dims, mask=dim_mask, other=0.0)
    read = tl.load(read_ptr + batch * W + columns, mask=column_mask, other=0.0)
    d_read = tl.load(d_read_ptr + batch * W + columns, mask=column_mask, other=0.0)
    keys_ptr += batch * N * D
    values_ptr += batch * N * W
    d_keys_ptr += batch * N * D
    d_values_ptr += batch * N * W
    weights_ptr += batch * N
    d_weights_ptr += batch * N
    centre = tl.sum(d_read * read, axis=0)  # z = do · o + Σ_j p_j dp_j
    if HAS_D_WEIGHTS:
        for start in range(0, N, BLOCK_N):
            slots = start + tl.arange(0, BLOCK_N)
            in_range = slots < N
            centre += tl.sum(tl.load(weights_ptr + slots, mask=in_range, other=0.0)
                             * tl.load(d_weights_ptr + slots, mask=in_range, other=0.0), axis=0)
    d_query = query * 0.0
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        in_range = slots < N
        weights = tl.load(weights_ptr + slots, mask=in_range, other=0.0)  # zero on a slot not kept
        key_mask = in_range[:, None] & dim_mask[None, :]
        value_mask = in_range[:, None] & column_mask[None, :]
        keys = tl.load(keys_ptr + slots[:, None] * D + dims[None, :], mask=key_mask, other=0.0)
        values = tl.load(values_ptr + slots[:, None] * W + columns[None, :], mask=value_mask, other=0.0)
        d_weights_total = tl.sum(values * d_read[None, :], axis=1)  # g = dp + do · c_i
        if HAS_D_WEIGHTS:
            d_weights_total += tl.load(d_weights_ptr + slots, mask=in_range, other=0.0)
        d_scores = weights * (d_weights_total - centre)
        tl.store(d_keys_ptr + slots[:, None] * D + dims[None, :], d_scores[:, None] * query[None, :], mask=key_mask)
        tl.store(d_values_ptr + slots[:, None] * W + columns[None, :], weights[:, None] * d_read[None, :],
                 mask=value_mask)
        d_query += tl.sum(d_scores[:, None] * keys, axis=0)
    tl.store(d_query_ptr + batch * D + dims, d_query, mask=dim_mask)


# -- the launcher and the autograd Function ----------------------------------------------------

def hop_forward(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """query (B,D), keys (B,N,D), values (B,N,W), mask (B,N) bool → (read (B,W), weights (B,N))."""
    query, keys, values = contiguous(query, keys, values)
    kept = mask.contiguous().view(torch.uint8)  # the same bytes, as a type Triton loads
    batch, slots, key_width = keys.shape
    value_width = values.shape[2]
    read = values.new_empty(batch, value_width)
    weights = values.new_empty(batch, slots)
    if batch:
        launch(_hop_read_forward_kernel, (batch,), query, keys, values, kept, read, weights, slots, key_width,
               value_width, **LAUNCH, **hop_blocks(slots, key_width, value_width))
    return read, weights


def hop_backward(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                 read: torch.Tensor, weights: torch.Tensor, d_read: torch.Tensor | None,
                 d_weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dq, dK, dV); without a gradient of the weights the kernel skips that part."""
    query, keys, values = contiguous(query, keys, values)
    batch, slots, key_width = keys.shape
    value_width = values.shape[2]
    d_read = torch.zeros_like(read) if d_read is None else d_read
    has_d_weights = d_weights is not None
    d_weights = d_weights if d_weights is not None else weights  # not read without HAS_D_WEIGHTS
    fill = torch.empty_like if batch else torch.zeros_like  # the kernel writes every element it launches for
    d_query, d_keys, d_values = fill(query), fill(keys), fill(values)
    if batch:
        launch(_hop_read_backward_kernel, (batch,), query, keys, values, read, weights, d_read, d_weights, d_query,
               d_keys, d_values, slots, key_width, value_width, HAS_D_WEIGHTS=has_d_weights, **LAUNCH,
               **hop_blocks(slots, key_width, value_width))
    return d_query, d_keys, d_values


_hop_read = define("hop_read", hop_forward, hop_backward, outputs=2, differentiable=(True, True, True, False),
                   materialize=False)


def hop_read(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
             mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The Triton implementation of :func:`cogdsl.ops.hop_read` (shapes checked there)."""
    read, weights = _hop_read(query, keys, values, mask)
    return read, weights
