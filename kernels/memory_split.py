"""One memory's whole step with each batch element's slots split over several programs (large memories).

The same equations as :mod:`~cogdsl.kernels.memory_step` (reference: :func:`cogdsl.ops.ntm.memory_step`), any
addressing pipeline, with a grid of B × S programs instead of B: program (b, c) owns the chunk of slots
[c · CHUNK, (c + 1) · CHUNK) of batch element b (CHUNK a multiple of BLOCK_N). One program per batch element
leaves most SMs idle when B is small beside the SM count and N is large (at B = 64, N = 65,536: 64 programs
walking 2,048 tiles each); split, the B · S programs fill the device.

What a program cannot see, the slots of other chunks, passes between launches through global memory, and
every sum over all slots is a two-stage combine: each chunk writes its partial, the next launch combines the S
partials in every program (S small: a loop of S loads a head).

forward   1. (content) sim of the chunk; the chunk's softmax maximum m_c and sum l_c = Σ exp(z − m_c)
          2. m = max_c m_c, l = Σ_c l_c exp(m_c − m); w̃ of the chunk (the shift gathers read neighbouring
             chunks' sim and w_prev, complete since launch 1); the chunk's sharpening maximum t_c and
             P_c = Σ ((w̃ + ε) / t_c)^γ
          3. t = max_c t_c, P = Σ_c P_c (t_c / t)^γ; w, the chunk's partial reads Σ_i w_i M_i, and M'
             reads = Σ_c partial reads (one torch reduction)
backward  1. dw from the caller, the reads and the write; the chunk's partial de, da, and Σ w dw (sharpen)
          2. (sharpen) Σ_c of those; dw̃ = γ w (dw − Σ w dw) / (w̃ + ε), the chunk's partial dγ
          3. through shift and gate: dw_prev, dw_c; the chunk's partial ds, dg and Σ dw_c w_c
          4. Σ_c of those; dM of the chunk (content, read and write parts), the chunk's partial dk, Σ dD |M|, dβ
          then the partials are summed by torch, and dk gets its key-norm share.

The launchers are called by :mod:`~cogdsl.kernels.memory_step`'s, inside the same custom op, when
:func:`~cogdsl.kernels.memory_step.split_chunks` says to split (the choice is made at run time, inside the
op, so a compiled step traces the same graph either way). The traffic is the unsplit kernels' plus the
(B, S, H, ·) partials, small beside M; the two reads of M forward and of M and dM' backward stay
(docs/kernels.md says what that costs). Launches: 3 forward (2 without a content stage) and 4 backward (3
without sharpening), plus the reductions.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from cogdsl.kernels.content import load_keys, similarity_tile
from cogdsl.kernels.library import launch
from cogdsl.kernels.memory_step import memory_grad_pass, uses_grad_pass
from cogdsl.kernels.ntm_address import (
    STATS,
    STATS_PER_HEAD,
    load_content_stage,
    load_gate_stage,
    sharpened_tile,
    shift_gate_grad_pass,
    stage_pass,
)
from cogdsl.kernels.read_write import read_tile, write_tile
from cogdsl.kernels.tiles import LAUNCH, SHARPEN_EPS, batch_rows, blocks, contiguous, load_rows, store_rows
from cogdsl.ops.ntm import COSINE_EPS

__all__ = ["chunk_slots", "split_backward", "split_forward"]


@triton.jit
def combine_softmax(part_ptr, heads, H, S):
    """m = max_c m_c and l = Σ_c l_c exp(m_c − m) from the S chunks' (m_c, l_c), stored (S, H, 2)."""
    head_mask = heads < H
    row_max = tl.zeros((heads.shape[0],), dtype=part_ptr.dtype.element_ty) - 1.0e30
    row_sum = row_max * 0.0
    for chunk in range(S):
        chunk_max = tl.load(part_ptr + (chunk * H + heads) * 2, mask=head_mask, other=-1.0e30)
        chunk_sum = tl.load(part_ptr + (chunk * H + heads) * 2 + 1, mask=head_mask, other=0.0)
        new_max = tl.maximum(row_max, chunk_max)
        row_sum = row_sum * tl.exp(row_max - new_max) + chunk_sum * tl.exp(chunk_max - new_max)
        row_max = new_max
    return tl.where(head_mask, row_max, 0.0), tl.where(head_mask, row_sum, 1.0)


@triton.jit
def combine_sharpen(part_ptr, gamma, heads, H, S):
    """t = max_c t_c and P = Σ_c P_c (t_c / t)^γ from the S chunks' (t_c, P_c), stored (S, H, 2)."""
    head_mask = heads < H
    top = gamma * 0.0 + SHARPEN_EPS
    for chunk in range(S):
        top = tl.maximum(top, tl.load(part_ptr + (chunk * H + heads) * 2, mask=head_mask, other=SHARPEN_EPS))
    power_sum = gamma * 0.0
    for chunk in range(S):
        chunk_top = tl.load(part_ptr + (chunk * H + heads) * 2, mask=head_mask, other=SHARPEN_EPS)
        chunk_sum = tl.load(part_ptr + (chunk * H + heads) * 2 + 1, mask=head_mask, other=0.0)
        power_sum += chunk_sum * tl.exp(gamma * tl.log(chunk_top / top))
    return top, tl.where(head_mask, power_sum, 1.0)


@triton.jit
def sum_chunks(part_ptr, heads, H, S, stride, offset):
    """Σ_c of a per-head partial stored at part_ptr + (c · H + h) · stride + offset."""
    head_mask = heads < H
    total = tl.zeros((heads.shape[0],), dtype=part_ptr.dtype.element_ty)
    for chunk in range(S):
        total += tl.load(part_ptr + (chunk * H + heads) * stride + offset, mask=head_mask, other=0.0)
    return total


# -- forward --------------------------------------------------------------------------------------

@triton.jit
def _split_logits_kernel(memory_ptr, keys_ptr, strengths_ptr, sim_ptr, part_ptr, H, N, W, S, CHUNK, key_stride,
                         COSINE: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    chunk = tl.program_id(1)
    memory_ptr += batch * N * W
    keys_ptr += batch * key_stride
    strengths_ptr += batch * H
    sim_ptr += batch * H * N
    part_ptr += (batch * S + chunk) * H * 2
    heads = tl.arange(0, BLOCK_H)
    head_mask = heads < H
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    keys, strengths, key_norms = load_keys(keys_ptr, strengths_ptr, H, W, heads, columns, column_mask)
    row_max = strengths * 0.0 - 1.0e30
    row_sum = strengths * 0.0
    first = chunk * CHUNK
    for start in range(first, tl.minimum(first + CHUNK, N), BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = head_mask[:, None] & (slots[None, :] < N)
        memory = load_rows(memory_ptr + start * W, tl.arange(0, BLOCK_N), N - start, W, columns, column_mask)
        sim, _ = similarity_tile(memory, keys, key_norms, COSINE)
        tl.store(sim_ptr + heads[:, None] * N + slots[None, :], sim, mask=mask)
        logits = tl.where(mask, strengths[:, None] * sim, -1.0e38)
        new_max = tl.maximum(row_max, tl.max(logits, axis=1))
        row_sum = row_sum * tl.exp(row_max - new_max) + tl.sum(tl.exp(logits - new_max[:, None]), axis=1)
        row_max = new_max
    tl.store(part_ptr + heads * 2, row_max, mask=head_mask)
    tl.store(part_ptr + heads * 2 + 1, row_sum, mask=head_mask)


@triton.jit
def _split_stage_kernel(sim_ptr, previous_ptr, strengths_ptr, gate_ptr, shift_ptr, gamma_ptr, part_ptr,
                        stage_ptr, sharpen_part_ptr, stats_ptr, H, N, K, S, CHUNK,
                        CONTENT: tl.constexpr, GATE: tl.constexpr, SHIFT: tl.constexpr, SHARPEN: tl.constexpr,
                        BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    chunk = tl.program_id(1)
    per_head = batch * H
    heads = tl.arange(0, BLOCK_H)
    head_mask = heads < H
    strengths = tl.zeros((BLOCK_H,), dtype=previous_ptr.dtype.element_ty)
    row_max = strengths * 0.0
    row_sum = row_max + 1.0
    if CONTENT:
        sim_ptr += per_head * N
        strengths = tl.load(strengths_ptr + per_head + heads, mask=head_mask, other=0.0)
        row_max, row_sum = combine_softmax(part_ptr + batch * S * H * 2, heads, H, S)
    if GATE:
        gate_ptr += per_head
    if SHARPEN:
        gamma_ptr += per_head
    if SHIFT:
        shift_ptr += per_head * K
    previous_ptr += per_head * N
    stage_ptr += per_head * N
    stats_ptr += per_head * STATS
    gate, gamma = load_gate_stage(gate_ptr, gamma_ptr, H, heads, GATE, SHARPEN)
    first = chunk * CHUNK
    top, power_sum = stage_pass(sim_ptr, previous_ptr, shift_ptr, stage_ptr, strengths, gate, gamma, row_max,
                                row_sum, H, N, K, heads, first, tl.minimum(first + CHUNK, N), CONTENT, GATE, SHIFT,
                                SHARPEN, BLOCK_N, BLOCK_K)
    sharpen_part_ptr += (batch * S + chunk) * H * 2
    tl.store(sharpen_part_ptr + heads * 2, top, mask=head_mask)
    tl.store(sharpen_part_ptr + heads * 2 + 1, power_sum, mask=head_mask)
    first_chunk = head_mask & ((heads * 0 + chunk) == 0)
    tl.store(stats_ptr + heads * 4, row_max, mask=first_chunk)
    tl.store(stats_ptr + heads * 4 + 1, row_sum, mask=first_chunk)


@triton.jit
def _split_write_kernel(memory_ptr, erase_ptr, add_ptr, stage_ptr, gamma_ptr, sharpen_part_ptr, weights_ptr,
                        reads_part_ptr, new_memory_ptr, stats_ptr, H, R, N, W, S, CHUNK, erase_stride, add_stride,
                        SHARPEN: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
                        BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    chunk = tl.program_id(1)
    per_head = batch * H
    memory_ptr += batch * N * W
    new_memory_ptr += batch * N * W
    erase_ptr += batch * erase_stride
    add_ptr += batch * add_stride
    stage_ptr += per_head * N
    weights_ptr += per_head * N
    stats_ptr += per_head * STATS
    heads = tl.arange(0, BLOCK_H)
    head_mask = heads < H
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    tile_rows = tl.arange(0, BLOCK_N)
    gamma = tl.zeros((BLOCK_H,), dtype=memory_ptr.dtype.element_ty)
    top = gamma + 1.0
    power_sum = gamma + 1.0
    if SHARPEN:
        gamma = tl.load(gamma_ptr + per_head + heads, mask=head_mask, other=0.0)
        top, power_sum = combine_sharpen(sharpen_part_ptr + batch * S * H * 2, gamma, heads, H, S)
        first_chunk = head_mask & ((heads * 0 + chunk) == 0)
        tl.store(stats_ptr + heads * 4 + 2, top, mask=first_chunk)
        tl.store(stats_ptr + heads * 4 + 3, power_sum, mask=first_chunk)
    reads = tl.zeros((BLOCK_H, BLOCK_W), dtype=memory_ptr.dtype.element_ty)
    first = chunk * CHUNK
    for start in range(first, tl.minimum(first + CHUNK, N), BLOCK_N):
        slots = start + tile_rows
        mask = head_mask[:, None] & (slots[None, :] < N)
        weights = sharpened_tile(stage_ptr, heads, slots, mask, gamma, top, power_sum, N, SHARPEN)
        if SHARPEN:
            tl.store(weights_ptr + heads[:, None] * N + slots[None, :], weights, mask=mask)
        memory = load_rows(memory_ptr + start * W, tile_rows, N - start, W, columns, column_mask)
        reads += read_tile(tl.where(heads[:, None] < R, weights, 0.0), memory)
        new_memory = write_tile(memory, weights, heads, erase_ptr, add_ptr, R, H - R, W, columns, column_mask)
        store_rows(new_memory_ptr + start * W, new_memory, tile_rows, N - start, W, columns, column_mask)
    store_rows(reads_part_ptr + (batch * S + chunk) * R * W, reads, heads, R, W, columns, column_mask)


# -- backward -------------------------------------------------------------------------------------

@triton.jit
def _split_total_kernel(memory_ptr, grad_ptr, weights_ptr, d_weights_ptr, d_reads_ptr, erase_ptr, add_ptr,
                        d_total_ptr, erase_part_ptr, add_part_ptr, centre_part_ptr, H, R, N, W, S, CHUNK,
                        erase_stride, add_stride, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
                        BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    chunk = tl.program_id(1)
    per_head = batch * H
    memory_ptr += batch * N * W
    grad_ptr += batch * N * W
    weights_ptr += per_head * N
    d_weights_ptr += per_head * N
    d_total_ptr += per_head * N
    d_reads_ptr += batch * R * W
    erase_ptr += batch * erase_stride
    add_ptr += batch * add_stride
    heads = tl.arange(0, BLOCK_H)
    head_mask = heads < H
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    tl.arange(0, BLOCK_N)
    d_reads = load_rows(d_reads_ptr, heads, R, W, columns, column_mask)
    first = chunk * CHUNK
    d_erase, d_add, centre = uses_grad_pass(memory_ptr, grad_ptr, weights_ptr, d_weights_ptr, d_total_ptr, d_reads,
                                            erase_ptr, add_ptr, heads, H, R, N, W, columns, column_mask, first,
                                            tl.minimum(first + CHUNK, N), BLOCK_N)
    part = batch * S + chunk
    store_rows(erase_part_ptr + part * (H - R) * W, d_erase, heads, H - R, W, columns, column_mask)
    store_rows(add_part_ptr + part * (H - R) * W, d_add, heads, H - R, W, columns, column_mask)
    tl.store(centre_part_ptr + part * H + heads, centre, mask=head_mask)


@triton.jit
def _split_sharpen_grad_kernel(weights_ptr, d_total_ptr, shifted_ptr, d_shifted_ptr, gamma_ptr, stats_ptr,
                               centre_part_ptr, gamma_part_ptr, H, N, S, CHUNK,
                               BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    chunk = tl.program_id(1)
    per_head = batch * H
    heads = tl.arange(0, BLOCK_H)
    head_mask = heads < H
    weights_ptr += per_head * N
    d_total_ptr += per_head * N
    shifted_ptr += per_head * N
    d_shifted_ptr += per_head * N
    gamma = tl.load(gamma_ptr + per_head + heads, mask=head_mask, other=0.0)
    top = tl.load(stats_ptr + (per_head + heads) * STATS + 2, mask=head_mask, other=1.0)
    centre = sum_chunks(centre_part_ptr + batch * S * H, heads, H, S, 1, 0)
    d_gamma = gamma * 0.0
    first = chunk * CHUNK
    for start in range(first, tl.minimum(first + CHUNK, N), BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = head_mask[:, None] & (slots[None, :] < N)
        offsets = heads[:, None] * N + slots[None, :]
        weights = tl.load(weights_ptr + offsets, mask=mask, other=0.0)
        centred = weights * (tl.load(d_total_ptr + offsets, mask=mask, other=0.0) - centre[:, None])
        lifted = tl.load(shifted_ptr + offsets, mask=mask, other=0.0) + SHARPEN_EPS
        d_gamma += tl.sum(tl.where(mask, centred * tl.log(lifted / top[:, None]), 0.0), axis=1)
        tl.store(d_shifted_ptr + offsets, gamma[:, None] * centred / lifted, mask=mask)
    tl.store(gamma_part_ptr + (batch * S + chunk) * H + heads, d_gamma, mask=head_mask)


@triton.jit
def _split_shift_gate_grad_kernel(sim_ptr, previous_ptr, strengths_ptr, gate_ptr, shift_ptr, d_stage_ptr,
                                  d_previous_ptr, d_content_ptr, stats_ptr, shift_part_ptr, gate_part_ptr,
                                  centre_part_ptr, H, N, K, S, CHUNK,
                                  CONTENT: tl.constexpr, GATE: tl.constexpr, SHIFT: tl.constexpr,
                                  BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    chunk = tl.program_id(1)
    per_head = batch * H
    heads = tl.arange(0, BLOCK_H)
    head_mask = heads < H
    strengths = tl.zeros((BLOCK_H,), dtype=previous_ptr.dtype.element_ty)
    if CONTENT:
        sim_ptr += per_head * N
        strengths = tl.load(strengths_ptr + per_head + heads, mask=head_mask, other=0.0)
    if GATE:
        gate_ptr += per_head
    if SHIFT:
        shift_ptr += per_head * K
    previous_ptr += per_head * N
    d_stage_ptr += per_head * N
    d_previous_ptr += per_head * N
    d_content_ptr += per_head * N
    stats_ptr += per_head * STATS
    gate, _gamma = load_gate_stage(gate_ptr, gate_ptr, H, heads, GATE, False)
    row_max = tl.load(stats_ptr + heads * 4, mask=head_mask, other=0.0)
    row_sum = tl.load(stats_ptr + heads * 4 + 1, mask=head_mask, other=1.0)
    first = chunk * CHUNK
    d_shift, d_gate, centre = shift_gate_grad_pass(
        sim_ptr, previous_ptr, shift_ptr, d_stage_ptr, d_previous_ptr, d_content_ptr, strengths, gate, row_max,
        row_sum, H, N, K, heads, first, tl.minimum(first + CHUNK, N), CONTENT, GATE, SHIFT, BLOCK_N, BLOCK_K)
    part = batch * S + chunk
    offsets_k = tl.arange(0, BLOCK_K)
    tl.store(shift_part_ptr + (part * H + heads[:, None]) * K + offsets_k[None, :], d_shift,
             mask=head_mask[:, None] & (offsets_k[None, :] < K))
    tl.store(gate_part_ptr + part * H + heads, d_gate, mask=head_mask)
    tl.store(centre_part_ptr + part * H + heads, centre, mask=head_mask)


@triton.jit
def _split_memory_grad_kernel(memory_ptr, grad_ptr, weights_ptr, d_reads_ptr, erase_ptr, keys_ptr, strengths_ptr,
                              sim_ptr, d_content_ptr, stats_ptr, centre_part_ptr, d_memory_ptr, keys_part_ptr,
                              norms_part_ptr, strengths_part_ptr, H, R, N, W, S, CHUNK, key_stride, erase_stride,
                              COSINE: tl.constexpr, CONTENT: tl.constexpr, BLOCK_H: tl.constexpr,
                              BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    chunk = tl.program_id(1)
    per_head = batch * H
    memory_ptr += batch * N * W
    grad_ptr += batch * N * W
    d_memory_ptr += batch * N * W
    weights_ptr += per_head * N
    d_reads_ptr += batch * R * W
    erase_ptr += batch * erase_stride
    stats_ptr += per_head * STATS
    heads = tl.arange(0, BLOCK_H)
    head_mask = heads < H
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    tl.arange(0, BLOCK_N)
    if CONTENT:
        keys_ptr += batch * key_stride
        strengths_ptr += per_head
        sim_ptr += per_head * N
        d_content_ptr += per_head * N
    keys, strengths, key_norms = load_content_stage(keys_ptr, strengths_ptr, H, W, heads, columns, column_mask,
                                                    CONTENT)
    row_max = tl.load(stats_ptr + heads * 4, mask=head_mask, other=0.0)
    row_sum = tl.load(stats_ptr + heads * 4 + 1, mask=head_mask, other=1.0)
    centre = sum_chunks(centre_part_ptr + batch * S * H, heads, H, S, 1, 0)
    d_reads = load_rows(d_reads_ptr, heads, R, W, columns, column_mask)
    first = chunk * CHUNK
    d_keys, d_key_norms, d_strengths = memory_grad_pass(
        memory_ptr, grad_ptr, weights_ptr, d_reads, erase_ptr, sim_ptr, d_content_ptr, d_memory_ptr, keys, key_norms,
        strengths, row_max, row_sum, centre, heads, H, R, N, W, columns, column_mask, first,
        tl.minimum(first + CHUNK, N), COSINE, CONTENT, BLOCK_N)
    if CONTENT:
        part = batch * S + chunk
        store_rows(keys_part_ptr + part * H * W, d_keys, heads, H, W, columns, column_mask)
        tl.store(norms_part_ptr + part * H + heads, d_key_norms, mask=head_mask)
        tl.store(strengths_part_ptr + part * H + heads, d_strengths, mask=head_mask)


# -- the launchers, as custom ops ---------------------------------------------------------------------

def chunk_slots(slots: int, block_n: int, chunks: int) -> tuple[int, int]:
    """(CHUNK, S): the slots a program owns, a multiple of ``block_n``, and how many chunks cover ``slots`` when
    about ``chunks`` are asked for (at least one tile each)."""
    tiles = triton.cdiv(slots, block_n)
    per_chunk = triton.cdiv(tiles, max(1, min(chunks, tiles)))
    chunk = per_chunk * block_n
    return chunk, triton.cdiv(slots, chunk)


def split_forward(memory: torch.Tensor, previous: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor,
                  gate: torch.Tensor, shift_weights: torch.Tensor, gamma: torch.Tensor, erase: torch.Tensor,
                  add: torch.Tensor, cosine: bool, content: bool, gated: bool, shift: bool, sharpen: bool,
                  chunks: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                        torch.Tensor]:
    """→ (weights (B,H,N), reads (B,R,W), new memory (B,N,W); sim, w̃ (B,H,N), stats (B,H,4) saved): a grid of
    B × S programs, S about ``chunks``."""
    keys, key_stride = batch_rows(keys) if content else (keys, 0)
    (erase, erase_stride), (add, add_stride) = batch_rows(erase), batch_rows(add)
    memory, previous, strengths, gate, shift_weights, gamma = contiguous(
        memory, previous, strengths, gate, shift_weights, gamma)
    batch, slots, width = memory.shape
    heads = previous.shape[1]
    offsets = shift_weights.shape[2] if shift else 1
    read_heads = heads - erase.shape[1]
    sizes = blocks(heads, slots, width, offsets)
    chunk, count = chunk_slots(slots, sizes["BLOCK_N"], chunks)
    grid = (batch, count)
    weights = memory.new_empty(batch, heads, slots)
    new_memory = torch.empty_like(memory)
    sim = torch.empty_like(weights) if content else memory.new_empty(0)
    shifted = torch.empty_like(weights) if sharpen else memory.new_empty(0)
    stats = memory.new_empty(batch, heads, STATS_PER_HEAD)
    softmax_part = memory.new_empty(batch, count, heads, 2)
    sharpen_part = memory.new_empty(batch, count, heads, 2)
    reads_part = memory.new_empty(batch, count, read_heads, width)
    stage = shifted if sharpen else weights
    if content:
        launch(_split_logits_kernel, grid, memory, keys, strengths, sim, softmax_part, heads, slots, width, count,
               chunk, key_stride, COSINE=cosine, BLOCK_H=sizes["BLOCK_H"], BLOCK_N=sizes["BLOCK_N"],
               BLOCK_W=sizes["BLOCK_W"], num_warps=sizes["num_warps"], **LAUNCH)
    launch(_split_stage_kernel, grid, sim if content else weights, previous, strengths, gate, shift_weights, gamma,
           softmax_part, stage, sharpen_part, stats, heads, slots, offsets, count, chunk, CONTENT=content,
           GATE=gated, SHIFT=shift, SHARPEN=sharpen, BLOCK_H=sizes["BLOCK_H"], BLOCK_N=sizes["BLOCK_N"],
           BLOCK_K=sizes["BLOCK_K"], num_warps=sizes["num_warps"], **LAUNCH)
    launch(_split_write_kernel, grid, memory, erase, add, stage, gamma, sharpen_part, weights, reads_part, new_memory,
           stats, heads, read_heads, slots, width, count, chunk, erase_stride, add_stride, SHARPEN=sharpen,
           BLOCK_H=sizes["BLOCK_H"], BLOCK_N=sizes["BLOCK_N"], BLOCK_W=sizes["BLOCK_W"],
           num_warps=sizes["num_warps"], **LAUNCH)
    return weights, reads_part.sum(1), new_memory, sim, shifted, stats


def split_backward(memory: torch.Tensor, previous: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor,
                   gate: torch.Tensor, shift_weights: torch.Tensor, gamma: torch.Tensor, erase: torch.Tensor,
                   add: torch.Tensor, weights: torch.Tensor, reads: torch.Tensor, new_memory: torch.Tensor,
                   sim: torch.Tensor, shifted: torch.Tensor, stats: torch.Tensor, d_weights: torch.Tensor,
                   d_reads: torch.Tensor, d_new_memory: torch.Tensor, cosine: bool, content: bool, gated: bool,
                   shift: bool, sharpen: bool, chunks: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                    torch.Tensor, torch.Tensor, torch.Tensor,
                                                                    torch.Tensor, torch.Tensor, torch.Tensor]:
    """The gradients of the nine inputs: a grid of B × S programs, the partials summed by torch."""
    keys, key_stride = batch_rows(keys) if content else (keys, 0)
    (erase, erase_stride), (add, add_stride) = batch_rows(erase), batch_rows(add)
    memory, previous, strengths, gate, shift_weights, gamma = contiguous(
        memory, previous, strengths, gate, shift_weights, gamma)
    batch, slots, width = memory.shape
    heads = previous.shape[1]
    offsets = shift_weights.shape[2] if shift else 1
    writers = erase.shape[1]
    read_heads = heads - writers
    sizes = blocks(heads, slots, width, offsets)
    block = {"BLOCK_H": sizes["BLOCK_H"], "BLOCK_N": sizes["BLOCK_N"], "num_warps": sizes["num_warps"], **LAUNCH}
    chunk, count = chunk_slots(slots, sizes["BLOCK_N"], chunks)
    grid = (batch, count)
    d_total = torch.empty_like(weights)
    d_shifted = torch.empty_like(weights) if sharpen else d_total
    d_previous = torch.empty_like(previous)
    d_content = torch.empty_like(weights) if content else d_total
    d_memory = torch.empty_like(memory)
    erase_part = memory.new_empty(batch, count, writers, width)
    add_part = memory.new_empty(batch, count, writers, width)
    centre_part = memory.new_empty(batch, count, heads)
    gamma_part = memory.new_empty(batch, count, heads)
    shift_part = memory.new_empty(batch, count, heads, offsets)
    gate_part = memory.new_empty(batch, count, heads)
    keys_part = memory.new_empty(batch, count, heads, width)
    norms_part = memory.new_empty(batch, count, heads)
    strengths_part = memory.new_empty(batch, count, heads)
    launch(_split_total_kernel, grid, memory, d_new_memory, weights, d_weights, d_reads, erase, add, d_total,
           erase_part, add_part, centre_part, heads, read_heads, slots, width, count, chunk, erase_stride,
           add_stride, BLOCK_W=sizes["BLOCK_W"], **block)
    if sharpen:
        launch(_split_sharpen_grad_kernel, grid, weights, d_total, shifted, d_shifted, gamma, stats, centre_part,
               gamma_part, heads, slots, count, chunk, **block)
    launch(_split_shift_gate_grad_kernel, grid, sim if content else weights, previous, strengths, gate,
           shift_weights, d_shifted, d_previous, d_content, stats, shift_part, gate_part, centre_part, heads, slots,
           offsets, count, chunk, CONTENT=content, GATE=gated, SHIFT=shift, BLOCK_K=sizes["BLOCK_K"], **block)
    launch(_split_memory_grad_kernel, grid, memory, d_new_memory, weights, d_reads, erase, keys, strengths,
           sim if content else weights, d_content, stats, centre_part, d_memory, keys_part, norms_part,
           strengths_part, heads, read_heads, slots, width, count, chunk, key_stride, erase_stride, COSINE=cosine,
           CONTENT=content, BLOCK_W=sizes["BLOCK_W"], **block)
    d_keys, d_strengths = memory.new_empty(keys.shape), memory.new_empty(strengths.shape)
    if content:
        key_norms = (keys.square().sum(-1) + COSINE_EPS * COSINE_EPS).sqrt()
        d_keys = keys_part.sum(1) + (norms_part.sum(1) / key_norms).unsqueeze(-1) * keys
        d_strengths = strengths_part.sum(1)
    d_gate = gate_part.sum(1) if gated else memory.new_empty(gate.shape)
    d_shift = shift_part.sum(1) if shift else memory.new_empty(shift_weights.shape)
    d_gamma = gamma_part.sum(1) if sharpen else memory.new_empty(gamma.shape)
    return (d_memory, d_previous, d_keys, d_strengths, d_gate, d_shift, d_gamma, erase_part.sum(1),
            add_part.sum(1))


