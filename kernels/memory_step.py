"""One memory's whole NTM step fused: every head's addressing, the reads and the write.

    w   = address(M, w_prev, k, β, g, s, γ)                             (B, H, N), all H heads
    r_h = Σ_i w_h[i] M_i                           for the R = H − H_w read heads (first)
    M'  = M ∘ Π_h (1 − w_h e_hᵀ) + Σ_h w_h a_hᵀ     for the H_w write heads (last)

References: :func:`cogdsl.ops.ntm.ntm_memory_step` (all four addressing stages) and
:func:`cogdsl.ops.ntm.memory_step` (any of them: the same ``tl.constexpr`` stage flags as
:mod:`~cogdsl.kernels.ntm_address`, so each pipeline a spec uses is its own kernel). One launch forward and
one backward, one program per batch element, built from the tile pieces of :mod:`~cogdsl.kernels.content`,
:mod:`~cogdsl.kernels.ntm_address` and :mod:`~cogdsl.kernels.read_write`:

forward   pass 1 over M: similarities and the online softmax (kernels.content), with a content stage
          pass 2 over the (H, N) arrays: gate, shift, online sharpening (kernels.ntm_address)
          pass 3 over M: the weights, every read and the write, while the tile is in registers
backward  pass 1 over M and dM': dw from the reads, the write and the caller, de, da
          passes 2-3 over the (H, N) arrays: back through sharpen, shift and gate
          pass 4 over M and dM': the content backward and dM, written once

Memory traffic per batch element (fp32): forward reads M twice and writes M' once (12NW
bytes, against the 8NW of reading M once and writing M' once); backward reads M and dM'
twice and writes dM once (20NW bytes, against 12NW). Similarities need all of M before any
weight is known, hence the second read. The (H, N) arrays add about 20HN bytes each way.
The key, erase and add vectors are read through their batch stride, so views of the interface need no copy.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from cogdsl.kernels import forced_split
from cogdsl.kernels.content import finish_key_grads
from cogdsl.kernels.library import define, launch
from cogdsl.kernels.ntm_address import (
    STATS,
    STATS_PER_HEAD,
    address_content_grad_tile,
    address_grad_passes,
    address_passes,
    load_content_stage,
    load_gate_stage,
    load_stats,
    sharpened_tile,
    stage_inputs,
    store_stage_grads,
)
from cogdsl.kernels.read_write import keep_tile, read_grad_tile, read_tile, write_grad_tile, write_tile
from cogdsl.kernels.tiles import LAUNCH, batch_rows, blocks, contiguous, load_rows, store_rows

__all__ = ["memory_step", "ntm_memory_step", "split_chunks", "split_count", "step_backward", "step_forward"]


#: A memory of fewer slot tiles than this runs one program per batch element; a larger one may split.
SPLIT_MIN_TILES = 64
#: Each split program walks at least this many tiles.
SPLIT_TILES_PER_CHUNK = 8


def split_chunks(memory: torch.Tensor, heads: int, offsets: int) -> int:
    """How many programs share one batch element's slots: what :func:`cogdsl.kernels.splitting` forces, else 1
    unless on a GPU where the B programs of one per batch element would leave SMs idle (B < SMs) over a large
    memory (at least ``SPLIT_MIN_TILES`` slot tiles): then about two programs per SM over the grid, each
    walking at least ``SPLIT_TILES_PER_CHUNK`` tiles. ``COGDSL_SPLIT_SLOTS=0`` turns the split off.

    B = 64, N = 65,536, two heads, W = 20 on a 132-SM H100/H200: 2,048 tiles of 32 slots, 5 chunks each, 320
    programs; N = 128: no split.
    """
    forced = forced_split()
    if forced is not None:
        return forced
    if not memory.is_cuda or os.environ.get("COGDSL_SPLIT_SLOTS", "") == "0":
        return 1
    batch, slots, width = memory.shape
    tiles = triton.cdiv(slots, blocks(heads, slots, width, offsets)["BLOCK_N"])
    return split_count(batch, tiles, torch.cuda.get_device_properties(memory.device).multi_processor_count)


def split_count(batch: int, tiles: int, sms: int) -> int:
    """:func:`split_chunks`' rule: B programs of ``tiles`` slot tiles each on ``sms`` SMs → programs per batch
    element."""
    if batch >= sms or tiles < SPLIT_MIN_TILES:
        return 1
    return max(1, min(tiles // SPLIT_TILES_PER_CHUNK, triton.cdiv(2 * sms, batch)))


@triton.jit
def uses_grad_pass(memory_ptr, grad_ptr, weights_ptr, d_weights_ptr, d_total_ptr, d_reads, erase_ptr, add_ptr,
                   heads, H, R, N, W, columns, column_mask, first, last, BLOCK_N: tl.constexpr):
    """Over slots [first, last): store dw = the caller's + the reads' + the write's at d_total_ptr; return the
    write heads' de and da (their rows 0 .. H − R − 1) and each head's Σ w dw there."""
    head_mask = heads < H
    tile_rows = tl.arange(0, BLOCK_N)
    d_erase = d_reads * 0.0
    d_add = d_reads * 0.0
    centre = tl.zeros((heads.shape[0],), dtype=memory_ptr.dtype.element_ty)
    for start in range(first, last, BLOCK_N):
        slots = start + tile_rows
        mask = head_mask[:, None] & (slots[None, :] < N)
        offsets = heads[:, None] * N + slots[None, :]
        memory = load_rows(memory_ptr + start * W, tile_rows, N - start, W, columns, column_mask)
        grad = load_rows(grad_ptr + start * W, tile_rows, N - start, W, columns, column_mask)
        weights = tl.load(weights_ptr + offsets, mask=mask, other=0.0)
        _d_memory_read, d_weights = read_grad_tile(weights, memory, d_reads)
        d_weights += tl.load(d_weights_ptr + offsets, mask=mask, other=0.0)
        _d_memory_write, d_weights, d_erase, d_add = write_grad_tile(
            memory, grad, weights, heads, erase_ptr, add_ptr, R, H - R, W, columns, column_mask,
            d_weights, d_erase, d_add)
        tl.store(d_total_ptr + offsets, d_weights, mask=mask)
        centre += tl.sum(tl.where(mask, weights * d_weights, 0.0), axis=1)
    return d_erase, d_add, centre


@triton.jit
def memory_grad_pass(memory_ptr, grad_ptr, weights_ptr, d_reads, erase_ptr, sim_ptr, d_content_ptr, d_memory_ptr,
                     keys, key_norms, strengths, row_max, row_sum, centre, heads, H, R, N, W, columns, column_mask,
                     first, last, COSINE: tl.constexpr, CONTENT: tl.constexpr, BLOCK_N: tl.constexpr):
    """Over slots [first, last): store dM from every use of M (the reads, the write's keep, and with content the
    similarities); return the slots' shares of dk, Σ dD |M| and dβ."""
    head_mask = heads < H
    tile_rows = tl.arange(0, BLOCK_N)
    d_keys = keys * 0.0
    d_key_norms = strengths * 0.0
    d_strengths = strengths * 0.0
    for start in range(first, last, BLOCK_N):
        slots = start + tile_rows
        mask = head_mask[:, None] & (slots[None, :] < N)
        memory = load_rows(memory_ptr + start * W, tile_rows, N - start, W, columns, column_mask)
        grad = load_rows(grad_ptr + start * W, tile_rows, N - start, W, columns, column_mask)
        weights = tl.load(weights_ptr + heads[:, None] * N + slots[None, :], mask=mask, other=0.0)
        d_memory, _d_weights_read = read_grad_tile(weights, memory, d_reads)
        if CONTENT:
            d_memory_content, d_keys_part, d_key_norms_part, d_strengths_part = address_content_grad_tile(
                memory, sim_ptr, d_content_ptr, heads, slots, mask, keys, key_norms, strengths, row_max, row_sum,
                centre, N, COSINE)
            d_memory += d_memory_content
            d_keys += d_keys_part
            d_key_norms += d_key_norms_part
            d_strengths += d_strengths_part
        d_memory += grad * keep_tile(memory, weights, heads, erase_ptr, R, H - R, W, columns, column_mask)
        store_rows(d_memory_ptr + start * W, d_memory, tile_rows, N - start, W, columns, column_mask)
    return d_keys, d_key_norms, d_strengths


@triton.jit
def _step_forward_kernel(memory_ptr, previous_ptr, keys_ptr, strengths_ptr, gate_ptr, shift_ptr, gamma_ptr,
                         erase_ptr, add_ptr, weights_ptr, reads_ptr, new_memory_ptr, sim_ptr, shifted_ptr, stats_ptr,
                         H, R, N, W, K, key_stride, erase_stride, add_stride,
                         COSINE: tl.constexpr, CONTENT: tl.constexpr, GATE: tl.constexpr, SHIFT: tl.constexpr,
                         SHARPEN: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
                         BLOCK_W: tl.constexpr, BLOCK_K: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    memory_ptr += batch * N * W
    new_memory_ptr += batch * N * W
    erase_ptr += batch * erase_stride
    add_ptr += batch * add_stride
    reads_ptr += batch * R * W
    per_head = batch * H
    if CONTENT:
        keys_ptr += batch * key_stride
        strengths_ptr += per_head
        sim_ptr += per_head * N
    if GATE:
        gate_ptr += per_head
    if SHARPEN:
        gamma_ptr += per_head
        shifted_ptr += per_head * N
    if SHIFT:
        shift_ptr += per_head * K
    stats_ptr += per_head * STATS
    previous_ptr += per_head * N
    weights_ptr += per_head * N
    heads = tl.arange(0, BLOCK_H)
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    if SHARPEN:
        stage_ptr = shifted_ptr
    else:
        stage_ptr = weights_ptr
    keys, _strengths, _key_norms, gamma, top, power_sum = address_passes(
        memory_ptr, previous_ptr, keys_ptr, strengths_ptr, gate_ptr, shift_ptr, gamma_ptr, sim_ptr, stage_ptr,
        stats_ptr, H, N, W, K, heads, columns, column_mask, COSINE, CONTENT, GATE, SHIFT, SHARPEN, BLOCK_N, BLOCK_K)
    reads = keys * 0.0
    tile_rows = tl.arange(0, BLOCK_N)
    for start in range(0, N, BLOCK_N):
        slots = start + tile_rows
        mask = (heads[:, None] < H) & (slots[None, :] < N)
        weights = sharpened_tile(stage_ptr, heads, slots, mask, gamma, top, power_sum, N, SHARPEN)
        if SHARPEN:
            tl.store(weights_ptr + heads[:, None] * N + slots[None, :], weights, mask=mask)
        memory = load_rows(memory_ptr + start * W, tile_rows, N - start, W, columns, column_mask)
        reads += read_tile(tl.where(heads[:, None] < R, weights, 0.0), memory)
        new_memory = write_tile(memory, weights, heads, erase_ptr, add_ptr, R, H - R, W, columns, column_mask)
        store_rows(new_memory_ptr + start * W, new_memory, tile_rows, N - start, W, columns, column_mask)
    store_rows(reads_ptr, reads, heads, R, W, columns, column_mask)


@triton.jit
def _step_backward_kernel(memory_ptr, previous_ptr, keys_ptr, strengths_ptr, gate_ptr, shift_ptr, gamma_ptr,
                          erase_ptr, add_ptr, weights_ptr, sim_ptr, shifted_ptr, stats_ptr,
                          d_weights_ptr, d_reads_ptr, grad_ptr, scratch_ptr,
                          d_memory_ptr, d_previous_ptr, d_keys_ptr, d_strengths_ptr, d_gate_ptr, d_shift_ptr,
                          d_gamma_ptr, d_erase_ptr, d_add_ptr,
                          H, R, N, W, K, key_stride, erase_stride, add_stride,
                          COSINE: tl.constexpr, CONTENT: tl.constexpr, GATE: tl.constexpr, SHIFT: tl.constexpr,
                          SHARPEN: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
                          BLOCK_W: tl.constexpr, BLOCK_K: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    memory_ptr += batch * N * W
    grad_ptr += batch * N * W
    d_memory_ptr += batch * N * W
    erase_ptr += batch * erase_stride
    add_ptr += batch * add_stride
    d_erase_ptr += batch * (H - R) * W
    d_add_ptr += batch * (H - R) * W
    d_reads_ptr += batch * R * W
    per_head = batch * H
    if CONTENT:
        keys_ptr += batch * key_stride
        d_keys_ptr += batch * H * W
        strengths_ptr += per_head
        d_strengths_ptr += per_head
        sim_ptr += per_head * N
    if GATE:
        gate_ptr += per_head
        d_gate_ptr += per_head
    if SHARPEN:
        gamma_ptr += per_head
        d_gamma_ptr += per_head
        shifted_ptr += per_head * N
    if SHIFT:
        shift_ptr += per_head * K
        d_shift_ptr += per_head * K
    stats_ptr += per_head * STATS
    previous_ptr += per_head * N
    d_previous_ptr += per_head * N
    weights_ptr += per_head * N
    d_weights_ptr += per_head * N
    d_total_ptr = scratch_ptr + per_head * N * 2  # dw from every use; with sharpening, then dw_c (pass 3 on)
    d_shifted_ptr = d_total_ptr + H * N
    # Without sharpening, passes 2-3 read dw (at d_total) at slots ahead of the tile they write: dw_c goes apart.
    if SHARPEN:
        d_content_ptr = d_total_ptr
    else:
        d_content_ptr = d_shifted_ptr
    heads = tl.arange(0, BLOCK_H)
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    tl.arange(0, BLOCK_N)
    keys, strengths, key_norms = load_content_stage(keys_ptr, strengths_ptr, H, W, heads, columns, column_mask,
                                                    CONTENT)
    gate, gamma = load_gate_stage(gate_ptr, gamma_ptr, H, heads, GATE, SHARPEN)
    row_max, row_sum, top, _power_sum = load_stats(stats_ptr, heads, H)
    d_reads = load_rows(d_reads_ptr, heads, R, W, columns, column_mask)

    # 1. dw = the caller's + the reads' + the write's; de and da.
    d_erase, d_add, _centre = uses_grad_pass(memory_ptr, grad_ptr, weights_ptr, d_weights_ptr, d_total_ptr, d_reads,
                                             erase_ptr, add_ptr, heads, H, R, N, W, columns, column_mask, 0, N,
                                             BLOCK_N)
    store_rows(d_erase_ptr, d_erase, heads, H - R, W, columns, column_mask)
    store_rows(d_add_ptr, d_add, heads, H - R, W, columns, column_mask)
    tl.debug_barrier()
    # 2-3. Back through sharpen, shift and gate.
    d_gamma, d_shift, d_gate, centre = address_grad_passes(
        weights_ptr, d_total_ptr, shifted_ptr, d_shifted_ptr, sim_ptr, previous_ptr, shift_ptr, d_previous_ptr,
        d_content_ptr, strengths, gate, gamma, row_max, row_sum, top, H, N, K, heads, CONTENT, GATE, SHIFT, SHARPEN,
        BLOCK_N, BLOCK_K)
    # 4. The content backward, and dM from every use of M.
    d_keys, d_key_norms, d_strengths = memory_grad_pass(
        memory_ptr, grad_ptr, weights_ptr, d_reads, erase_ptr, sim_ptr, d_content_ptr, d_memory_ptr, keys, key_norms,
        strengths, row_max, row_sum, centre, heads, H, R, N, W, columns, column_mask, 0, N, COSINE, CONTENT, BLOCK_N)
    if CONTENT:
        finish_key_grads(d_keys_ptr, d_strengths_ptr, d_keys, d_key_norms, d_strengths, keys, key_norms,
                         H, W, heads, columns, column_mask)
    store_stage_grads(d_gate_ptr, d_gamma_ptr, d_shift_ptr, d_gate, d_gamma, d_shift, H, K, heads, GATE, SHIFT,
                      SHARPEN, BLOCK_K)


def step_forward(memory: torch.Tensor, previous: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor,
                 gate: torch.Tensor, shift_weights: torch.Tensor, gamma: torch.Tensor, erase: torch.Tensor,
                 add: torch.Tensor, cosine: bool, content: bool, gated: bool, shift: bool, sharpen: bool
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """→ (weights (B,H,N), reads (B,R,W), new memory (B,N,W); sim, w̃ (B,H,N), stats (B,H,4) saved).

    A stage whose flag is off is skipped and its tensor never read; sim and w̃ are then empty. A large memory
    on a GPU is split over several programs per batch element (:func:`split_chunks`, the same saved arrays)."""
    chunks = split_chunks(memory, previous.shape[1], shift_weights.shape[2] if shift else 1)
    if chunks > 1:
        from cogdsl.kernels.memory_split import split_forward  # it builds on this module's tile passes

        return split_forward(memory, previous, keys, strengths, gate, shift_weights, gamma, erase, add, cosine,
                             content, gated, shift, sharpen, chunks)
    keys, key_stride = batch_rows(keys) if content else (keys, 0)
    (erase, erase_stride), (add, add_stride) = batch_rows(erase), batch_rows(add)
    memory, previous, strengths, gate, shift_weights, gamma = contiguous(
        memory, previous, strengths, gate, shift_weights, gamma)
    batch, slots, width = memory.shape
    heads = previous.shape[1]
    offsets = shift_weights.shape[2] if shift else 1
    read_heads = heads - erase.shape[1]
    weights = memory.new_empty(batch, heads, slots)
    reads = memory.new_empty(batch, read_heads, width)
    new_memory = torch.empty_like(memory)
    sim = torch.empty_like(weights) if content else memory.new_empty(0)
    shifted = torch.empty_like(weights) if sharpen else memory.new_empty(0)
    stats = memory.new_empty(batch, heads, STATS_PER_HEAD)
    launch(_step_forward_kernel, (batch,), memory, previous, keys, strengths, gate, shift_weights, gamma, erase, add,
           weights, reads, new_memory, sim if content else weights, shifted if sharpen else weights, stats,
           heads, read_heads, slots, width, offsets, key_stride, erase_stride, add_stride, COSINE=cosine,
           CONTENT=content, GATE=gated, SHIFT=shift, SHARPEN=sharpen, **LAUNCH,
           **blocks(heads, slots, width, offsets))
    return weights, reads, new_memory, sim, shifted, stats


def step_backward(memory: torch.Tensor, previous: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor,
                  gate: torch.Tensor, shift_weights: torch.Tensor, gamma: torch.Tensor, erase: torch.Tensor,
                  add: torch.Tensor, weights: torch.Tensor, reads: torch.Tensor, new_memory: torch.Tensor,
                  sim: torch.Tensor, shifted: torch.Tensor, stats: torch.Tensor, d_weights: torch.Tensor,
                  d_reads: torch.Tensor, d_new_memory: torch.Tensor, cosine: bool, content: bool, gated: bool,
                  shift: bool, sharpen: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                                       torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                                       torch.Tensor]:
    """The gradients of the nine inputs: one program per batch element, or split as the forward may be."""
    chunks = split_chunks(memory, previous.shape[1], shift_weights.shape[2] if shift else 1)
    if chunks > 1:
        from cogdsl.kernels.memory_split import split_backward

        return split_backward(memory, previous, keys, strengths, gate, shift_weights, gamma, erase, add, weights,
                              reads, new_memory, sim, shifted, stats, d_weights, d_reads, d_new_memory, cosine,
                              content, gated, shift, sharpen, chunks)
    keys, key_stride = batch_rows(keys) if content else (keys, 0)
    (erase, erase_stride), (add, add_stride) = batch_rows(erase), batch_rows(add)
    memory, previous, strengths, gate, shift_weights, gamma = contiguous(
        memory, previous, strengths, gate, shift_weights, gamma)
    batch, slots, width = memory.shape
    heads = previous.shape[1]
    offsets = shift_weights.shape[2] if shift else 1
    read_heads = heads - erase.shape[1]
    scratch = memory.new_empty(batch, 2, heads, slots)
    grads = [memory.new_empty(t.shape) for t in (memory, previous, keys, strengths, gate, shift_weights, gamma,
                                                 erase, add)]
    launch(_step_backward_kernel, (batch,), memory, previous, keys, strengths, gate, shift_weights, gamma, erase, add,
           weights, sim if content else weights, shifted if sharpen else weights, stats, d_weights, d_reads,
           d_new_memory, scratch, *grads, heads, read_heads, slots, width, offsets, key_stride, erase_stride,
           add_stride, COSINE=cosine, CONTENT=content, GATE=gated, SHIFT=shift, SHARPEN=sharpen,
           **LAUNCH, **blocks(heads, slots, width, offsets))
    return grads[0], grads[1], grads[2], grads[3], grads[4], grads[5], grads[6], grads[7], grads[8]


_memory_step = define("ntm_memory_step", step_forward, step_backward, outputs=3)


def ntm_memory_step(memory: torch.Tensor, previous: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor,
                    gate: torch.Tensor, shift_weights: torch.Tensor, gamma: torch.Tensor, erase: torch.Tensor,
                    add: torch.Tensor, similarity: str = "cosine") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Triton implementation of :func:`cogdsl.ops.ntm_memory_step` (shapes checked there)."""
    weights, reads, new_memory = _memory_step(memory, previous, keys, strengths, gate, shift_weights, gamma,
                                              erase, add, similarity == "cosine", True, True, True, True)
    return weights, reads, new_memory


def memory_step(memory: torch.Tensor, previous: torch.Tensor, keys: torch.Tensor | None,
                strengths: torch.Tensor | None, gate: torch.Tensor | None, shift_weights: torch.Tensor | None,
                gamma: torch.Tensor | None, erase: torch.Tensor, add: torch.Tensor,
                similarity: str = "cosine") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Triton implementation of :func:`cogdsl.ops.memory_step` (shapes checked there): one kernel for the
    addressing stages given."""
    tensors, flags = stage_inputs(memory, keys, strengths, gate, shift_weights, gamma)
    weights, reads, new_memory = _memory_step(memory, previous, *tensors, erase, add, similarity == "cosine",
                                              flags["content"], flags["gate"], flags["shift"], flags["sharpen"])
    return weights, reads, new_memory
