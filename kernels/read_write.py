"""Read and write for every head (Graves et al. 2014, §3.1-3.2).

    read    r_h = Σ_i w_h[i] M_i                                  (B,N,W), (B,H,N) → (B,H,W)
    write   M' = M ∘ Π_h (1 − w_h e_hᵀ) + Σ_h w_h a_hᵀ             → (B,N,W)

References: :func:`cogdsl.ops.ntm.read` and :func:`cogdsl.ops.ntm.write`. A read sums over
slots, so its forward runs one program per batch element over the slot tiles; its backward
and the write's forward touch each slot alone and run one program per (batch element, tile).
The write's backward sums over slots for de and da, one program per batch element.

Memory traffic (fp32): read forward reads M once (4NW bytes per batch element); read
backward reads M, writes dM; write forward reads M, writes M' (8NW); write backward reads M
and dM', writes dM (12NW). The (H, N) weights and (H, W) vectors are small beside them.

Backward of the write, with G = dL/dM' and F_h = 1 − w_h e_hᵀ:
    dM = G ∘ Π_h F_h;   da_h = Σ_i w_h[i] G_i;   dF_h = G ∘ M ∘ Π_{j≠h} F_j
    dw_h[i] = G_i · a_h − dF_h[i] · e_h;   de_h = −Σ_i w_h[i] dF_h[i]
The product over the other heads is formed directly, never as Π F / F_h, which an erase of
exactly 1 at a weight of exactly 1 would turn into 0/0.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from cogdsl.kernels.library import define, launch
from cogdsl.kernels.tiles import LAUNCH, add_to_row, blocks, contiguous, load_rows, row, store_rows

__all__ = ["read", "read_backward", "read_forward", "write", "write_backward", "write_forward"]


# -- tile-level pieces, shared with the fused memory step ------------------------------------

@triton.jit
def read_tile(weights, memory):
    """Σ_i w[h, i] M_i over one tile: weights (BLOCK_H, BLOCK_N), memory (BLOCK_N, BLOCK_W) → (BLOCK_H, BLOCK_W)."""
    return tl.sum(weights[:, :, None] * memory[None, :, :], axis=1)


@triton.jit
def read_grad_tile(weights, memory, d_reads):
    """The read's backward over one tile: dM (BLOCK_N, BLOCK_W) and dw (BLOCK_H, BLOCK_N)."""
    d_memory = tl.sum(weights[:, :, None] * d_reads[:, None, :], axis=0)
    d_weights = tl.sum(d_reads[:, None, :] * memory[None, :, :], axis=2)
    return d_memory, d_weights


@triton.jit
def keep_tile(memory, weights, heads, erase_ptr, first, count, W, columns, column_mask):
    """Π_h (1 − w_h e_hᵀ) over one tile (BLOCK_N, BLOCK_W), for the write heads in rows first .. first+count."""
    keep = memory * 0.0 + 1.0
    for j in range(count):
        weight = row(weights, heads, first + j)
        erase = tl.load(erase_ptr + j * W + columns, mask=column_mask, other=0.0)
        keep *= 1.0 - weight[:, None] * erase[None, :]
    return keep


@triton.jit
def write_tile(memory, weights, heads, erase_ptr, add_ptr, first, count, W, columns, column_mask):
    """M ∘ Π_h F_h + Σ_h w_h a_hᵀ over one tile, for the write heads in rows first .. first+count of ``weights``.

    erase_ptr and add_ptr point at those heads' (count, W) vectors.
    """
    keep = memory * 0.0 + 1.0
    added = memory * 0.0
    for j in range(count):
        weight = row(weights, heads, first + j)
        erase = tl.load(erase_ptr + j * W + columns, mask=column_mask, other=0.0)
        add = tl.load(add_ptr + j * W + columns, mask=column_mask, other=0.0)
        keep *= 1.0 - weight[:, None] * erase[None, :]
        added += weight[:, None] * add[None, :]
    return memory * keep + added


@triton.jit
def write_grad_tile(memory, grad, weights, heads, erase_ptr, add_ptr, first, count, W, columns, column_mask,
                    d_weights, d_erase, d_add):
    """The write's backward over one tile (see the module docstring).

    Returns the tile's G ∘ Π F (BLOCK_N, BLOCK_W); adds each head's dw into row first+j of
    ``d_weights`` (BLOCK_H, BLOCK_N) and its de, da parts into row j of ``d_erase``, ``d_add``.
    """
    keep = keep_tile(memory, weights, heads, erase_ptr, first, count, W, columns, column_mask)
    d_kept = grad * memory
    for j in range(count):
        weight = row(weights, heads, first + j)
        erase = tl.load(erase_ptr + j * W + columns, mask=column_mask, other=0.0)
        add = tl.load(add_ptr + j * W + columns, mask=column_mask, other=0.0)
        others = memory * 0.0 + 1.0
        for i in range(count):
            other_weight = row(weights, heads, first + i)
            other_erase = tl.load(erase_ptr + i * W + columns, mask=column_mask, other=0.0)
            factor = 1.0 - other_weight[:, None] * other_erase[None, :]
            others *= tl.where(i == j, 1.0, factor)
        d_factor = d_kept * others
        d_weight = tl.sum(grad * add[None, :], axis=1) - tl.sum(d_factor * erase[None, :], axis=1)
        d_weights = add_to_row(d_weights, heads, first + j, d_weight)
        d_erase = add_to_row(d_erase, heads, j, -tl.sum(weight[:, None] * d_factor, axis=0))
        d_add = add_to_row(d_add, heads, j, tl.sum(weight[:, None] * grad, axis=0))
    return grad * keep, d_weights, d_erase, d_add


# -- the kernels ----------------------------------------------------------------------------

@triton.jit
def _read_forward_kernel(memory_ptr, weights_ptr, reads_ptr, H, N, W,
                         BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    memory_ptr += batch * N * W
    weights_ptr += batch * H * N
    reads_ptr += batch * H * W
    heads = tl.arange(0, BLOCK_H)
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    tile_rows = tl.arange(0, BLOCK_N)
    reads = tl.zeros((BLOCK_H, BLOCK_W), dtype=memory_ptr.dtype.element_ty)
    for start in range(0, N, BLOCK_N):
        memory = load_rows(memory_ptr + start * W, tile_rows, N - start, W, columns, column_mask)
        slots = start + tile_rows
        weights = tl.load(weights_ptr + heads[:, None] * N + slots[None, :],
                          mask=(heads[:, None] < H) & (slots[None, :] < N), other=0.0)
        reads += read_tile(weights, memory)
    store_rows(reads_ptr, reads, heads, H, W, columns, column_mask)


@triton.jit
def _read_backward_kernel(memory_ptr, weights_ptr, d_reads_ptr, d_memory_ptr, d_weights_ptr, H, N, W,
                          BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    start = tl.program_id(1) * BLOCK_N
    memory_ptr += batch * N * W + start * W
    d_memory_ptr += batch * N * W + start * W
    weights_ptr += batch * H * N
    d_weights_ptr += batch * H * N
    d_reads_ptr += batch * H * W
    heads = tl.arange(0, BLOCK_H)
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    tile_rows = tl.arange(0, BLOCK_N)
    slots = start + tile_rows
    mask = (heads[:, None] < H) & (slots[None, :] < N)
    memory = load_rows(memory_ptr, tile_rows, N - start, W, columns, column_mask)
    weights = tl.load(weights_ptr + heads[:, None] * N + slots[None, :], mask=mask, other=0.0)
    d_reads = load_rows(d_reads_ptr, heads, H, W, columns, column_mask)
    d_memory, d_weights = read_grad_tile(weights, memory, d_reads)
    store_rows(d_memory_ptr, d_memory, tile_rows, N - start, W, columns, column_mask)
    tl.store(d_weights_ptr + heads[:, None] * N + slots[None, :], d_weights, mask=mask)


@triton.jit
def _write_forward_kernel(memory_ptr, weights_ptr, erase_ptr, add_ptr, new_memory_ptr, H, N, W,
                          BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    start = tl.program_id(1) * BLOCK_N
    memory_ptr += batch * N * W + start * W
    new_memory_ptr += batch * N * W + start * W
    weights_ptr += batch * H * N
    erase_ptr += batch * H * W
    add_ptr += batch * H * W
    heads = tl.arange(0, BLOCK_H)
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    tile_rows = tl.arange(0, BLOCK_N)
    slots = start + tile_rows
    memory = load_rows(memory_ptr, tile_rows, N - start, W, columns, column_mask)
    weights = tl.load(weights_ptr + heads[:, None] * N + slots[None, :],
                      mask=(heads[:, None] < H) & (slots[None, :] < N), other=0.0)
    new_memory = write_tile(memory, weights, heads, erase_ptr, add_ptr, 0, H, W, columns, column_mask)
    store_rows(new_memory_ptr, new_memory, tile_rows, N - start, W, columns, column_mask)


@triton.jit
def _write_backward_kernel(memory_ptr, weights_ptr, erase_ptr, add_ptr, grad_ptr,
                           d_memory_ptr, d_weights_ptr, d_erase_ptr, d_add_ptr, H, N, W,
                           BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    memory_ptr += batch * N * W
    grad_ptr += batch * N * W
    d_memory_ptr += batch * N * W
    weights_ptr += batch * H * N
    d_weights_ptr += batch * H * N
    erase_ptr += batch * H * W
    add_ptr += batch * H * W
    d_erase_ptr += batch * H * W
    d_add_ptr += batch * H * W
    heads = tl.arange(0, BLOCK_H)
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    tile_rows = tl.arange(0, BLOCK_N)
    d_erase = tl.zeros((BLOCK_H, BLOCK_W), dtype=memory_ptr.dtype.element_ty)
    d_add = tl.zeros((BLOCK_H, BLOCK_W), dtype=memory_ptr.dtype.element_ty)
    for start in range(0, N, BLOCK_N):
        slots = start + tile_rows
        mask = (heads[:, None] < H) & (slots[None, :] < N)
        memory = load_rows(memory_ptr + start * W, tile_rows, N - start, W, columns, column_mask)
        grad = load_rows(grad_ptr + start * W, tile_rows, N - start, W, columns, column_mask)
        weights = tl.load(weights_ptr + heads[:, None] * N + slots[None, :], mask=mask, other=0.0)
        d_memory, d_weights, d_erase, d_add = write_grad_tile(
            memory, grad, weights, heads, erase_ptr, add_ptr, 0, H, W, columns, column_mask,
            weights * 0.0, d_erase, d_add)
        store_rows(d_memory_ptr + start * W, d_memory, tile_rows, N - start, W, columns, column_mask)
        tl.store(d_weights_ptr + heads[:, None] * N + slots[None, :], d_weights, mask=mask)
    store_rows(d_erase_ptr, d_erase, heads, H, W, columns, column_mask)
    store_rows(d_add_ptr, d_add, heads, H, W, columns, column_mask)


# -- the launchers, as custom ops ---------------------------------------------------------------


def read_forward(memory: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor]:
    """memory (B,N,W), weights (B,H,N) → (reads (B,H,W),): one program per batch element."""
    memory, weights = contiguous(memory, weights)
    batch, slots, width = memory.shape
    heads = weights.shape[1]
    reads = memory.new_empty(batch, heads, width)
    launch(_read_forward_kernel, (batch,), memory, weights, reads, heads, slots, width, **LAUNCH,
           **blocks(heads, slots, width))
    return (reads,)


def read_backward(memory: torch.Tensor, weights: torch.Tensor, reads: torch.Tensor,
                  d_reads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dM, dw): one program per batch element and slot tile."""
    memory, weights = contiguous(memory, weights)
    batch, slots, width = memory.shape
    heads = weights.shape[1]
    d_memory, d_weights = torch.empty_like(memory), torch.empty_like(weights)
    sizes = blocks(heads, slots, width)
    launch(_read_backward_kernel, (batch, triton.cdiv(slots, sizes["BLOCK_N"])), memory, weights, d_reads,
           d_memory, d_weights, heads, slots, width, **LAUNCH, **sizes)
    return d_memory, d_weights


def write_forward(memory: torch.Tensor, weights: torch.Tensor, erase: torch.Tensor,
                  add: torch.Tensor) -> tuple[torch.Tensor]:
    """(B,N,W), (B,H,N), (B,H,W), (B,H,W) → (new memory (B,N,W),): one program per batch element and tile."""
    inputs = contiguous(memory, weights, erase, add)
    batch, slots, width = memory.shape
    heads = weights.shape[1]
    new_memory = torch.empty_like(inputs[0])
    sizes = blocks(heads, slots, width)
    launch(_write_forward_kernel, (batch, triton.cdiv(slots, sizes["BLOCK_N"])), *inputs, new_memory, heads,
           slots, width, **LAUNCH, **sizes)
    return (new_memory,)


def write_backward(memory: torch.Tensor, weights: torch.Tensor, erase: torch.Tensor, add: torch.Tensor,
                   new_memory: torch.Tensor, grad: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dM, dw, de, da): one program per batch element."""
    inputs = contiguous(memory, weights, erase, add)
    batch, slots, width = memory.shape
    heads = weights.shape[1]
    grads = [torch.empty_like(t) for t in inputs]
    launch(_write_backward_kernel, (batch,), *inputs, grad, *grads, heads, slots, width, **LAUNCH,
           **blocks(heads, slots, width))
    return grads[0], grads[1], grads[2], grads[3]


_read = define("read", read_forward, read_backward, outputs=1)
_write = define("write", write_forward, write_backward, outputs=1)


def read(memory: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The Triton implementation of :func:`cogdsl.ops.read` (shapes checked there)."""
    return _read(memory, weights)[0]


def write(memory: torch.Tensor, weights: torch.Tensor, erase: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
    """The Triton implementation of :func:`cogdsl.ops.write` (shapes checked there)."""
    return _write(memory, weights, erase, add)[0]
