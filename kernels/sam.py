"""Sparse Access Memory's ops: the write weights, the write and the sparse read (Rae et al. 2016, §3.1-3.2).

    sam_write_weights  w^W = α (γ mean_h w^R_h + (1 − γ) I^U)            (B,R,N), (B,N), (B,), (B,) → (B,N)
    sam_write          M' = (1 − I^U) ∘ M + w^W aᵀ                        (B,N,W), (B,N), (B,W), (B,N) → (B,N,W)
    sam_read           s_k = β K(q, M(i_k)),  p = softmax_k(s),  r = Σ_k p_k M(i_k)
                       (B,N,W), (B,R,W), (B,R), (B,R,K) → weights (B,R,N), reads (B,R,W)

References: :func:`cogdsl.ops.sam.sam_write_weights`, :func:`~cogdsl.ops.sam.sam_write` and
:func:`~cogdsl.ops.sam.sam_read`; the cosine K(q, m) = q·m / (|q| |m| + ε) takes its norms as
sqrt(Σ x² + ε²), ε = :data:`cogdsl.ops.ntm.COSINE_EPS`, exactly as the reference's ``_cosine``.

The write weights and the write are elementwise over slots: one program per (batch element, slot tile of
``BLOCK_N``), forward and backward. Their backward's sums over slots (dα, dγ; da) are written per tile and
added by one torch reduction (no atomics, so results are deterministic). The read runs one program per
(batch element, head): it gathers the head's K rows (a (BLOCK_K, BLOCK_W) tile, K padded to a power of
two), and the weights array, allocated as zeros, gets the K softmax values scattered into it.

The read's backward gives each head's gradient of its K gathered rows in a (B, R, K, W) array, and the
launcher adds them into a zero dM with one ``index_put_(accumulate=True)``: two heads may read the same
row, and this keeps the kernel free of atomics (fp64 atomics included) and the sum deterministic under
``torch.use_deterministic_algorithms``; the array is small (K ≤ 64 rows a head). Every row no head read
gets exactly zero gradient.

Memory traffic (itemsize x elements), per batch element: write weights forward reads R·N + N and writes
N, backward reads N + N (G, lru; the read weights once more) and writes R·N + N; the write forward reads
and writes N·W (M, M'), backward reads M and G and writes dM (3 N·W); the read forward reads R·K·W of
memory and writes R·K weights (the rest of the (R, N) array is the allocation's zeros) and R·W reads,
its backward reads R·K·W again and writes R·K·W parts (added into dM).

Backward, with G = dL/d(output):
    write weights  dw^R_h = α γ G / R;  dI^U = α (1 − γ) G;  dα = Σ_i G_i (γ w̄_i + (1 − γ) I^U_i);
                   dγ = α Σ_i G_i (w̄_i − I^U_i)
    write          dM = (1 − I^U) G;  dw^W_i = Σ_W G_i · a;  da = Σ_i w^W_i G_i;  dI^U_i = −Σ_W G_i · M_i
    read           g_k = dw_{i_k} + dr · M(i_k);  ds_k = p_k (g_k − Σ_j p_j g_j);  dβ = Σ_k ds_k c_k;
                   with D_k = |q| |m_k| + ε and e_k = β ds_k / D_k:
                   dq = Σ_k e_k (m_k − c_k (|m_k| / |q|) q);
                   dM(i_k) += p_k dr + e_k (q − c_k (|q| / |m_k|) m_k)
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from cogdsl.kernels.library import define, launch
from cogdsl.kernels.tiles import COSINE_EPS, LAUNCH, blocks, contiguous, load_rows, store_rows

__all__ = [
    "sam_read",
    "sam_read_backward",
    "sam_read_forward",
    "sam_write",
    "sam_write_backward",
    "sam_write_forward",
    "sam_write_weights",
    "sam_write_weights_backward",
    "sam_write_weights_forward",
]


# -- the write weights: one program per (batch element, slot tile) -------------------------------

@triton.jit
def _sam_write_weights_tile(read_ptr, lru_ptr, R, N, heads, slots, in_range):
    """The tile's read weights (BLOCK_H, BLOCK_N), their mean over heads (BLOCK_N,) and I^U (BLOCK_N,)."""
    mask = (heads[:, None] < R) & in_range[None, :]
    read_weights = tl.load(read_ptr + heads[:, None] * N + slots[None, :], mask=mask, other=0.0)
    lru = tl.load(lru_ptr + slots, mask=in_range, other=0.0)
    return read_weights, tl.sum(read_weights, axis=0) / R, lru


@triton.jit
def _sam_write_weights_forward_kernel(read_ptr, lru_ptr, alpha_ptr, gamma_ptr, out_ptr, R, N,
                                  BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    read_ptr += batch * R * N
    lru_ptr += batch * N
    out_ptr += batch * N
    slots = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    in_range = slots < N
    heads = tl.arange(0, BLOCK_H)
    _, mean, lru = _sam_write_weights_tile(read_ptr, lru_ptr, R, N, heads, slots, in_range)
    alpha = tl.load(alpha_ptr + batch)
    gamma = tl.load(gamma_ptr + batch)
    tl.store(out_ptr + slots, alpha * (gamma * mean + (1.0 - gamma) * lru), mask=in_range)


@triton.jit
def _sam_write_weights_backward_kernel(read_ptr, lru_ptr, alpha_ptr, gamma_ptr, grad_ptr, d_read_ptr, d_lru_ptr,
                                   d_alpha_parts_ptr, d_gamma_parts_ptr, R, N, TILES,
                                   BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    tile = tl.program_id(1)
    read_ptr += batch * R * N
    d_read_ptr += batch * R * N
    lru_ptr += batch * N
    d_lru_ptr += batch * N
    grad_ptr += batch * N
    slots = tile * BLOCK_N + tl.arange(0, BLOCK_N)
    in_range = slots < N
    heads = tl.arange(0, BLOCK_H)
    read_weights, mean, lru = _sam_write_weights_tile(read_ptr, lru_ptr, R, N, heads, slots, in_range)
    alpha = tl.load(alpha_ptr + batch)
    gamma = tl.load(gamma_ptr + batch)
    grad = tl.load(grad_ptr + slots, mask=in_range, other=0.0)
    d_mean = alpha * gamma * grad / R
    tl.store(d_read_ptr + heads[:, None] * N + slots[None, :], read_weights * 0.0 + d_mean[None, :],
             mask=(heads[:, None] < R) & in_range[None, :])
    tl.store(d_lru_ptr + slots, alpha * (1.0 - gamma) * grad, mask=in_range)
    tl.store(d_alpha_parts_ptr + batch * TILES + tile, tl.sum(grad * (gamma * mean + (1.0 - gamma) * lru), axis=0))
    tl.store(d_gamma_parts_ptr + batch * TILES + tile, alpha * tl.sum(grad * (mean - lru), axis=0))


# -- the write: one program per (batch element, slot tile) ---------------------------------------

@triton.jit
def _sam_write_forward_kernel(memory_ptr, weights_ptr, add_ptr, lru_ptr, out_ptr, N, W,
                          BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    start = tl.program_id(1) * BLOCK_N
    memory_ptr += batch * N * W + start * W
    out_ptr += batch * N * W + start * W
    tile_rows = tl.arange(0, BLOCK_N)
    slots = start + tile_rows
    in_range = slots < N
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    memory = load_rows(memory_ptr, tile_rows, N - start, W, columns, column_mask)
    weights = tl.load(weights_ptr + batch * N + slots, mask=in_range, other=0.0)
    lru = tl.load(lru_ptr + batch * N + slots, mask=in_range, other=0.0)
    add = tl.load(add_ptr + batch * W + columns, mask=column_mask, other=0.0)
    new_memory = (1.0 - lru)[:, None] * memory + weights[:, None] * add[None, :]
    store_rows(out_ptr, new_memory, tile_rows, N - start, W, columns, column_mask)


@triton.jit
def _sam_write_backward_kernel(memory_ptr, weights_ptr, add_ptr, lru_ptr, grad_ptr, d_memory_ptr, d_weights_ptr,
                           d_add_parts_ptr, d_lru_ptr, N, W, TILES,
                           BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    tile = tl.program_id(1)
    start = tile * BLOCK_N
    memory_ptr += batch * N * W + start * W
    grad_ptr += batch * N * W + start * W
    d_memory_ptr += batch * N * W + start * W
    tile_rows = tl.arange(0, BLOCK_N)
    slots = start + tile_rows
    in_range = slots < N
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    memory = load_rows(memory_ptr, tile_rows, N - start, W, columns, column_mask)
    grad = load_rows(grad_ptr, tile_rows, N - start, W, columns, column_mask)
    weights = tl.load(weights_ptr + batch * N + slots, mask=in_range, other=0.0)
    lru = tl.load(lru_ptr + batch * N + slots, mask=in_range, other=0.0)
    add = tl.load(add_ptr + batch * W + columns, mask=column_mask, other=0.0)
    store_rows(d_memory_ptr, (1.0 - lru)[:, None] * grad, tile_rows, N - start, W, columns, column_mask)
    tl.store(d_weights_ptr + batch * N + slots, tl.sum(grad * add[None, :], axis=1), mask=in_range)
    tl.store(d_lru_ptr + batch * N + slots, -tl.sum(grad * memory, axis=1), mask=in_range)
    tl.store(d_add_parts_ptr + (batch * TILES + tile) * W + columns, tl.sum(weights[:, None] * grad, axis=0),
             mask=column_mask)


# -- the read: one program per (batch element, head) -----------------------------------------------

@triton.jit
def _sam_read_head(memory_ptr, keys_ptr, strengths_ptr, slots_ptr, R, N, W, K,
               BLOCK_K: tl.constexpr, BLOCK_W: tl.constexpr):
    """One head's gathered rows (BLOCK_K, BLOCK_W), its slots, key, strength, the norms, cosines and softmax."""
    batch = tl.program_id(0).to(tl.int64)
    head = batch * R + tl.program_id(1)
    ks = tl.arange(0, BLOCK_K)
    k_mask = ks < K
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    slots = tl.load(slots_ptr + head * K + ks, mask=k_mask, other=0)
    tile_mask = k_mask[:, None] & column_mask[None, :]
    rows = tl.load(memory_ptr + batch * N * W + slots[:, None] * W + columns[None, :], mask=tile_mask, other=0.0)
    key = tl.load(keys_ptr + head * W + columns, mask=column_mask, other=0.0)
    strength = tl.load(strengths_ptr + head)
    key_norm = tl.sqrt(tl.sum(key * key, axis=0) + COSINE_EPS * COSINE_EPS)
    row_norms = tl.sqrt(tl.sum(rows * rows, axis=1) + COSINE_EPS * COSINE_EPS)
    denominators = key_norm * row_norms + COSINE_EPS
    cosines = tl.sum(rows * key[None, :], axis=1) / denominators
    scores = tl.where(k_mask, strength * cosines, -1.0e38)
    exps = tl.where(k_mask, tl.exp(scores - tl.max(scores, axis=0)), 0.0)
    chosen = exps / tl.sum(exps, axis=0)
    return (head, ks, k_mask, columns, column_mask, tile_mask, slots, rows, key, strength, key_norm, row_norms,
            denominators, cosines, chosen)


@triton.jit
def _sam_read_forward_kernel(memory_ptr, keys_ptr, strengths_ptr, slots_ptr, weights_ptr, reads_ptr, R, N, W, K,
                         BLOCK_K: tl.constexpr, BLOCK_W: tl.constexpr):
    (head, _, k_mask, columns, column_mask, _, slots, rows, _, _, _, _, _, _, chosen) = _sam_read_head(
        memory_ptr, keys_ptr, strengths_ptr, slots_ptr, R, N, W, K, BLOCK_K, BLOCK_W)
    tl.store(weights_ptr + head * N + slots, chosen, mask=k_mask)  # the rest of the row: the allocation's zeros
    tl.store(reads_ptr + head * W + columns, tl.sum(chosen[:, None] * rows, axis=0), mask=column_mask)


@triton.jit
def _sam_read_backward_kernel(memory_ptr, keys_ptr, strengths_ptr, slots_ptr, d_weights_ptr, d_reads_ptr,
                          d_rows_ptr, d_keys_ptr, d_strengths_ptr, R, N, W, K,
                          BLOCK_K: tl.constexpr, BLOCK_W: tl.constexpr):
    (head, ks, k_mask, columns, column_mask, tile_mask, slots, rows, key, strength, key_norm, row_norms,
     denominators, cosines, chosen) = _sam_read_head(memory_ptr, keys_ptr, strengths_ptr, slots_ptr, R, N, W, K,
                                                 BLOCK_K, BLOCK_W)
    d_read = tl.load(d_reads_ptr + head * W + columns, mask=column_mask, other=0.0)
    d_chosen = tl.load(d_weights_ptr + head * N + slots, mask=k_mask, other=0.0) + tl.sum(rows * d_read[None, :],
                                                                                           axis=1)
    d_scores = chosen * (d_chosen - tl.sum(chosen * d_chosen, axis=0))  # zero on a padded lane
    tl.store(d_strengths_ptr + head, tl.sum(d_scores * cosines, axis=0))
    scale = strength * d_scores / denominators  # dL/dc_k / D_k
    d_key = tl.sum(scale[:, None] * (rows - (cosines * row_norms / key_norm)[:, None] * key[None, :]), axis=0)
    tl.store(d_keys_ptr + head * W + columns, d_key, mask=column_mask)
    d_rows = chosen[:, None] * d_read[None, :] + scale[:, None] * (
        key[None, :] - (cosines * key_norm / row_norms)[:, None] * rows)
    tl.store(d_rows_ptr + (head * K + ks[:, None]) * W + columns[None, :], d_rows, mask=tile_mask)


# -- the launchers, as custom ops -----------------------------------------------------------------

def sam_write_weights_forward(read_weights: torch.Tensor, lru: torch.Tensor, alpha: torch.Tensor,
                              gamma: torch.Tensor) -> tuple[torch.Tensor]:
    """(B,R,N), (B,N), (B,), (B,) → (w^W (B,N),): one program per batch element and slot tile."""
    inputs = contiguous(read_weights, lru, alpha, gamma)
    batch, heads, slots = read_weights.shape
    out = torch.empty_like(inputs[1])
    sizes = blocks(heads, slots, 1)
    del sizes["BLOCK_W"]
    tiles = triton.cdiv(slots, sizes["BLOCK_N"])
    if batch and tiles:
        launch(_sam_write_weights_forward_kernel, (batch, tiles), *inputs, out, heads, slots, **LAUNCH, **sizes)
    return (out,)


def sam_write_weights_backward(read_weights: torch.Tensor, lru: torch.Tensor, alpha: torch.Tensor,
                               gamma: torch.Tensor, out: torch.Tensor, d_out: torch.Tensor
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dw^R, dI^U, dα, dγ): one program per batch element and slot tile; dα, dγ summed over tiles after."""
    inputs = contiguous(read_weights, lru, alpha, gamma)
    batch, heads, slots = read_weights.shape
    sizes = blocks(heads, slots, 1)
    del sizes["BLOCK_W"]
    tiles = triton.cdiv(slots, sizes["BLOCK_N"])
    d_read, d_lru = torch.empty_like(inputs[0]), torch.empty_like(inputs[1])
    d_alpha_parts = inputs[2].new_zeros(batch, tiles)
    d_gamma_parts = inputs[3].new_zeros(batch, tiles)
    if batch and tiles:
        launch(_sam_write_weights_backward_kernel, (batch, tiles), *inputs, d_out, d_read, d_lru, d_alpha_parts,
               d_gamma_parts, heads, slots, tiles, **LAUNCH, **sizes)
    return d_read, d_lru, d_alpha_parts.sum(1), d_gamma_parts.sum(1)


def _write_sizes(slots: int, width: int) -> dict[str, int]:
    sizes = blocks(1, slots, width)
    del sizes["BLOCK_H"]
    return sizes


def sam_write_forward(memory: torch.Tensor, write_weights: torch.Tensor, add: torch.Tensor,
                      lru: torch.Tensor) -> tuple[torch.Tensor]:
    """(B,N,W), (B,N), (B,W), (B,N) → (M' (B,N,W),): one program per batch element and slot tile."""
    inputs = contiguous(memory, write_weights, add, lru)
    batch, slots, width = memory.shape
    out = torch.empty_like(inputs[0])
    sizes = _write_sizes(slots, width)
    tiles = triton.cdiv(slots, sizes["BLOCK_N"])
    if batch and tiles and width:
        launch(_sam_write_forward_kernel, (batch, tiles), *inputs, out, slots, width, **LAUNCH, **sizes)
    return (out,)


def sam_write_backward(memory: torch.Tensor, write_weights: torch.Tensor, add: torch.Tensor, lru: torch.Tensor,
                       out: torch.Tensor, d_out: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dM, dw^W, da, dI^U): one program per batch element and slot tile; da summed over tiles after."""
    inputs = contiguous(memory, write_weights, add, lru)
    batch, slots, width = memory.shape
    sizes = _write_sizes(slots, width)
    tiles = triton.cdiv(slots, sizes["BLOCK_N"])
    fill = torch.empty_like if batch and tiles and width else torch.zeros_like
    d_memory, d_weights, d_lru = fill(inputs[0]), fill(inputs[1]), fill(inputs[3])
    d_add_parts = inputs[2].new_zeros(batch, tiles, width)
    if batch and tiles and width:
        launch(_sam_write_backward_kernel, (batch, tiles), *inputs, d_out, d_memory, d_weights, d_add_parts, d_lru,
               slots, width, tiles, **LAUNCH, **sizes)
    return d_memory, d_weights, d_add_parts.sum(1), d_lru


def _read_sizes(offsets: int, width: int) -> dict[str, int]:
    return {"BLOCK_K": triton.next_power_of_2(max(offsets, 1)), "BLOCK_W": triton.next_power_of_2(max(width, 1))}


def sam_read_forward(memory: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor,
                     slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,N,W), (B,R,W), (B,R), (B,R,K) long → (weights (B,R,N), reads (B,R,W)): one program per (batch, head)."""
    memory, keys, strengths, slots = contiguous(memory, keys, strengths, slots)
    batch, count, width = memory.shape
    heads, offsets = slots.shape[1], slots.shape[2]
    weights = memory.new_zeros(batch, heads, count)  # zero but at each head's K slots
    reads = memory.new_zeros(batch, heads, width)
    if batch and heads and offsets:
        launch(_sam_read_forward_kernel, (batch, heads), memory, keys, strengths, slots, weights, reads, heads, count,
               width, offsets, **LAUNCH, **_read_sizes(offsets, width))
    return weights, reads


def sam_read_backward(memory: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor, slots: torch.Tensor,
                      weights: torch.Tensor, reads: torch.Tensor, d_weights: torch.Tensor,
                      d_reads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dM, dq, dβ): one program per (batch, head) writes its K rows' gradients; they are added into dM after."""
    memory, keys, strengths, slots = contiguous(memory, keys, strengths, slots)
    batch, count, width = memory.shape
    heads, offsets = slots.shape[1], slots.shape[2]
    d_rows = memory.new_zeros(batch, heads, offsets, width)
    d_keys, d_strengths = torch.zeros_like(keys), torch.zeros_like(strengths)
    if batch and heads and offsets:
        launch(_sam_read_backward_kernel, (batch, heads), memory, keys, strengths, slots, d_weights, d_reads, d_rows,
               d_keys, d_strengths, heads, count, width, offsets, **LAUNCH, **_read_sizes(offsets, width))
    d_memory = torch.zeros_like(memory)
    which = torch.arange(batch, device=slots.device).view(batch, 1, 1).expand_as(slots)
    d_memory.index_put_((which, slots), d_rows, accumulate=True)  # two heads may read one row: added, no atomics
    return d_memory, d_keys, d_strengths


_sam_write_weights = define("sam_write_weights", sam_write_weights_forward, sam_write_weights_backward, outputs=1)
_sam_write = define("sam_write", sam_write_forward, sam_write_backward, outputs=1)
_sam_read = define("sam_read", sam_read_forward, sam_read_backward, outputs=2,
                   differentiable=(True, True, True, False))


def sam_write_weights(read_weights: torch.Tensor, lru: torch.Tensor, alpha: torch.Tensor,
                      gamma: torch.Tensor) -> torch.Tensor:
    """The Triton implementation of :func:`cogdsl.ops.sam_write_weights` (shapes checked there)."""
    return _sam_write_weights(read_weights, lru, alpha, gamma)[0]


def sam_write(memory: torch.Tensor, write_weights: torch.Tensor, add: torch.Tensor, lru: torch.Tensor) -> torch.Tensor:
    """The Triton implementation of :func:`cogdsl.ops.sam_write` (shapes checked there)."""
    return _sam_write(memory, write_weights, add, lru)[0]


def sam_read(memory: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor,
             slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The Triton implementation of :func:`cogdsl.ops.sam_read` (shapes checked there)."""
    weights, reads = _sam_read(memory, keys, strengths, slots)
    return weights, reads
