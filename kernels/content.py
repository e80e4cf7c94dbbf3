"""Content weights: a softmax over slots of each key's similarity to every slot.

    sim[h, i] = k_h · M_i / (|k_h| |M_i| + ε)      (cosine; or the plain dot product k_h · M_i)
    w[h, i]   = exp(β_h sim[h, i]) / Σ_j exp(β_h sim[h, j])

with |x| = sqrt(Σ x² + ε²). Reference: :func:`cogdsl.ops.ntm.content_weights`.

One program per batch element walks the slots in tiles. The softmax is online: each tile
updates the running maximum m and the running sum l = Σ exp(β sim − m), so one pass over the
memory gives the logits (kept as ``sim``) and the normaliser, and a second pass over the
small (H, N) array writes the weights.

Memory traffic per batch element (fp32, H heads): forward reads M once (4NW bytes) and moves
3 (H, N) arrays; backward reads M once and writes dM once (8NW bytes) plus 4 (H, N) arrays.

Backward, with p the weights and g = dL/dp:
    dz = p (g − Σ_i g p);   dβ = Σ_i dz sim;   dsim = β dz;   D = |k||M_i| + ε
    ddots = dsim / D;   dD = −ddots sim
    dk = Σ_i ddots M_i + (Σ_i dD |M_i|) k / |k|;   dM_i = Σ_h ddots k_h + (Σ_h dD |k_h|) M_i / |M_i|
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from cogdsl.kernels.library import define, launch
from cogdsl.kernels.tiles import COSINE_EPS, LAUNCH, blocks, contiguous, load_rows, store_rows

__all__ = ["content_backward", "content_forward", "content_weights"]


# -- tile-level pieces, shared with the fused kernels -----------------------------------------

@triton.jit
def load_keys(keys_ptr, strengths_ptr, H, W, heads, columns, column_mask):
    """Keys (BLOCK_H, BLOCK_W), strengths (BLOCK_H,) and key norms sqrt(Σ k² + ε²) (BLOCK_H,)."""
    keys = load_rows(keys_ptr, heads, H, W, columns, column_mask)
    strengths = tl.load(strengths_ptr + heads, mask=heads < H, other=0.0)
    key_norms = tl.sqrt(tl.sum(keys * keys, axis=1) + COSINE_EPS * COSINE_EPS)
    return keys, strengths, key_norms


@triton.jit
def similarity_tile(memory, keys, key_norms, COSINE: tl.constexpr):
    """sim (BLOCK_H, BLOCK_N) of every key to the memory tile (BLOCK_N, BLOCK_W), and the slots' norms."""
    dots = tl.sum(keys[:, None, :] * memory[None, :, :], axis=2)
    memory_norms = tl.sqrt(tl.sum(memory * memory, axis=1) + COSINE_EPS * COSINE_EPS)
    if COSINE:
        dots = dots / (key_norms[:, None] * memory_norms[None, :] + COSINE_EPS)
    return dots, memory_norms


@triton.jit
def logits_pass(memory_ptr, keys, strengths, key_norms, sim_ptr, H, N, W, heads, columns, column_mask,
                COSINE: tl.constexpr, BLOCK_N: tl.constexpr):
    """One pass over the memory: store sim (H, N); return each head's softmax maximum and normaliser.

    Padded heads get maximum 0 and normaliser 1, so that exp(β sim − m) / l is finite there too.
    """
    head_mask = heads < H
    row_max = tl.sum(keys, axis=1) * 0.0 - 1.0e30
    row_sum = row_max * 0.0
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        slot_mask = slots < N
        memory = load_rows(memory_ptr + start * W, tl.arange(0, BLOCK_N), N - start, W, columns, column_mask)
        sim, _ = similarity_tile(memory, keys, key_norms, COSINE)
        mask = head_mask[:, None] & slot_mask[None, :]
        tl.store(sim_ptr + heads[:, None] * N + slots[None, :], sim, mask=mask)
        logits = tl.where(mask, strengths[:, None] * sim, -1.0e38)
        new_max = tl.maximum(row_max, tl.max(logits, axis=1))
        row_sum = row_sum * tl.exp(row_max - new_max) + tl.sum(tl.exp(logits - new_max[:, None]), axis=1)
        row_max = new_max
    return tl.where(head_mask, row_max, 0.0), tl.where(head_mask, row_sum, 1.0)


@triton.jit
def content_at(sim_ptr, heads, slots, mask, strengths, row_max, row_sum, N):
    """The content weights exp(β sim − m) / l at ``slots`` (any indices in [0, N)), zero where masked."""
    sim = tl.load(sim_ptr + heads[:, None] * N + slots[None, :], mask=mask, other=0.0)
    content = tl.exp(strengths[:, None] * sim - row_max[:, None]) / row_sum[:, None]
    return tl.where(mask, content, 0.0), sim


@triton.jit
def content_grad_tile(memory, keys, key_norms, strengths, sim, content, d_content, centre, COSINE: tl.constexpr):
    """One tile's share of the content backward (see the module docstring).

    Returns dM for the tile (BLOCK_N, BLOCK_W) and the tile's parts of dk (BLOCK_H, BLOCK_W),
    of Σ_i dD |M_i| (BLOCK_H,) and of dβ (BLOCK_H,). ``centre`` is Σ_i g p over all slots.
    """
    dz = content * (d_content - centre[:, None])
    return logits_grad_tile(memory, keys, key_norms, strengths, sim, dz, COSINE)


@triton.jit
def logits_grad_tile(memory, keys, key_norms, strengths, sim, dz, COSINE: tl.constexpr):
    """One tile's share of the backward of the logits z = β sim, given dz (BLOCK_H, BLOCK_N), zero on padding.

    Returns what :func:`content_grad_tile` returns; that is this after the softmax's dz = p (g − Σ g p), and
    the D-NTM's LRU addressing (:mod:`cogdsl.kernels.dntm`) calls it with its own dz.
    """
    d_strengths = tl.sum(dz * sim, axis=1)
    d_dots = strengths[:, None] * dz
    memory_norms = tl.sqrt(tl.sum(memory * memory, axis=1) + COSINE_EPS * COSINE_EPS)
    d_key_norms = d_strengths * 0.0
    if COSINE:
        d_dots = d_dots / (key_norms[:, None] * memory_norms[None, :] + COSINE_EPS)
        d_denominator = -d_dots * sim
        d_key_norms = tl.sum(d_denominator * memory_norms[None, :], axis=1)
        d_memory_norms = tl.sum(d_denominator * key_norms[:, None], axis=0)
        d_memory = tl.sum(d_dots[:, :, None] * keys[:, None, :], axis=0)
        d_memory += (d_memory_norms / memory_norms)[:, None] * memory
    else:
        d_memory = tl.sum(d_dots[:, :, None] * keys[:, None, :], axis=0)
    d_keys = tl.sum(d_dots[:, :, None] * memory[None, :, :], axis=1)
    return d_memory, d_keys, d_key_norms, d_strengths


@triton.jit
def finish_key_grads(d_keys_ptr, d_strengths_ptr, d_keys, d_key_norms, d_strengths, keys, key_norms,
                     H, W, heads, columns, column_mask):
    """Add the key norm's share, dk += (Σ_i dD |M_i|) k / |k|, and store dk and dβ."""
    d_keys += (d_key_norms / key_norms)[:, None] * keys
    store_rows(d_keys_ptr, d_keys, heads, H, W, columns, column_mask)
    tl.store(d_strengths_ptr + heads, d_strengths, mask=heads < H)


# -- the kernels ----------------------------------------------------------------------------

@triton.jit
def _content_forward_kernel(memory_ptr, keys_ptr, strengths_ptr, weights_ptr, sim_ptr, stats_ptr, H, N, W,
                            COSINE: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
                            BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    memory_ptr += batch * N * W
    keys_ptr += batch * H * W
    strengths_ptr += batch * H
    weights_ptr += batch * H * N
    sim_ptr += batch * H * N
    stats_ptr += batch * H * 2
    heads = tl.arange(0, BLOCK_H)
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    keys, strengths, key_norms = load_keys(keys_ptr, strengths_ptr, H, W, heads, columns, column_mask)
    row_max, row_sum = logits_pass(memory_ptr, keys, strengths, key_norms, sim_ptr, H, N, W, heads, columns,
                                   column_mask, COSINE, BLOCK_N)
    tl.store(stats_ptr + heads * 2, row_max, mask=heads < H)
    tl.store(stats_ptr + heads * 2 + 1, row_sum, mask=heads < H)
    tl.debug_barrier()  # sim was written by other threads of this program
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = (heads[:, None] < H) & (slots[None, :] < N)
        content, _ = content_at(sim_ptr, heads, slots, mask, strengths, row_max, row_sum, N)
        tl.store(weights_ptr + heads[:, None] * N + slots[None, :], content, mask=mask)


@triton.jit
def _content_backward_kernel(memory_ptr, keys_ptr, strengths_ptr, weights_ptr, sim_ptr, d_weights_ptr,
                             d_memory_ptr, d_keys_ptr, d_strengths_ptr, H, N, W,
                             COSINE: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
                             BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    memory_ptr += batch * N * W
    d_memory_ptr += batch * N * W
    keys_ptr += batch * H * W
    d_keys_ptr += batch * H * W
    strengths_ptr += batch * H
    d_strengths_ptr += batch * H
    weights_ptr += batch * H * N
    sim_ptr += batch * H * N
    d_weights_ptr += batch * H * N
    heads = tl.arange(0, BLOCK_H)
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    keys, strengths, key_norms = load_keys(keys_ptr, strengths_ptr, H, W, heads, columns, column_mask)
    centre = strengths * 0.0
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = (heads[:, None] < H) & (slots[None, :] < N)
        offsets = heads[:, None] * N + slots[None, :]
        content = tl.load(weights_ptr + offsets, mask=mask, other=0.0)
        centre += tl.sum(content * tl.load(d_weights_ptr + offsets, mask=mask, other=0.0), axis=1)
    d_keys = keys * 0.0
    d_key_norms = centre * 0.0
    d_strengths = centre * 0.0
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = (heads[:, None] < H) & (slots[None, :] < N)
        offsets = heads[:, None] * N + slots[None, :]
        tile_rows = tl.arange(0, BLOCK_N)
        memory = load_rows(memory_ptr + start * W, tile_rows, N - start, W, columns, column_mask)
        d_memory, d_keys_part, d_key_norms_part, d_strengths_part = content_grad_tile(
            memory, keys, key_norms, strengths,
            tl.load(sim_ptr + offsets, mask=mask, other=0.0),
            tl.load(weights_ptr + offsets, mask=mask, other=0.0),
            tl.load(d_weights_ptr + offsets, mask=mask, other=0.0),
            centre, COSINE)
        store_rows(d_memory_ptr + start * W, d_memory, tile_rows, N - start, W, columns, column_mask)
        d_keys += d_keys_part
        d_key_norms += d_key_norms_part
        d_strengths += d_strengths_part
    finish_key_grads(d_keys_ptr, d_strengths_ptr, d_keys, d_key_norms, d_strengths, keys, key_norms,
                     H, W, heads, columns, column_mask)


# -- the launchers, as custom ops -----------------------------------------------------------

def content_forward(memory: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor,
                    cosine: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """memory (B,N,W), keys (B,H,W), strengths (B,H) → (weights (B,H,N); sim (B,H,N), stats (B,H,2) saved)."""
    memory, keys, strengths = contiguous(memory, keys, strengths)
    batch, slots, width = memory.shape
    heads = keys.shape[1]
    weights = memory.new_empty(batch, heads, slots)
    sim = torch.empty_like(weights)
    stats = memory.new_empty(batch, heads, 2)
    launch(_content_forward_kernel, (batch,), memory, keys, strengths, weights, sim, stats, heads, slots, width,
           COSINE=cosine, **LAUNCH, **blocks(heads, slots, width))
    return weights, sim, stats


def content_backward(memory: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor, weights: torch.Tensor,
                     sim: torch.Tensor, stats: torch.Tensor, d_weights: torch.Tensor,
                     cosine: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dM, dk, dβ): one program per batch element."""
    memory, keys, strengths = contiguous(memory, keys, strengths)
    batch, slots, width = memory.shape
    heads = keys.shape[1]
    d_memory, d_keys, d_strengths = (torch.empty_like(t) for t in (memory, keys, strengths))
    launch(_content_backward_kernel, (batch,), memory, keys, strengths, weights, sim, d_weights, d_memory, d_keys,
           d_strengths, heads, slots, width, COSINE=cosine, **LAUNCH, **blocks(heads, slots, width))
    return d_memory, d_keys, d_strengths


_content_weights = define("content_weights", content_forward, content_backward, outputs=1)


def content_weights(memory: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor,
                    similarity: str = "cosine") -> torch.Tensor:
    """The Triton implementation of :func:`cogdsl.ops.content_weights` (shapes checked there)."""
    return _content_weights(memory, keys, strengths, similarity == "cosine")[0]
