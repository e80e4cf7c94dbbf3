"""NTM addressing fused: content, gate, shift and sharpen (Graves et al. 2014, §3.3) in one kernel.

    w_c = softmax_i(β sim(k, M_i))                      content      (kernels.content)
    w_g = g w_c + (1 − g) w_prev                         gate
    w̃[i] = Σ_k s_k w_g[(i − o_k) mod N],  o_k = k − s    shift
    w[i] = x_i^γ / Σ_j x_j^γ,  x = (w̃ + ε) / max(w̃ + ε)  sharpen

Reference: :func:`cogdsl.ops.ntm.ntm_address`. One program per batch element does every head:

1. a pass over the memory stores sim (H, N) and the softmax maximum and normaliser (online);
2. a pass over the slots gathers w_g at the 2s+1 shifted slots (computed from sim and w_prev,
   never stored), stores w̃, and keeps the sharpening maximum and Σ x^γ online: when the maximum
   grows from t to t', the running sum is rescaled by (t / t')^γ;
3. a pass writes w = x^γ / Σ x^γ.

Passes 2 and 3 read slots another thread of the program wrote, so a barrier separates them.
Memory traffic per batch element (fp32): forward reads M once (4NW bytes) and moves 6 (H, N)
arrays; backward reads M once, writes dM once and moves about 14 (H, N) arrays.

Backward, from g = dL/dw back (p = w; the content stage is kernels.content's):
    sharpen   c = p (g − Σ g p);  dw̃ = γ c / (w̃ + ε);  dγ = Σ c log x
    shift     dw_g[j] = Σ_k s_k dw̃[(j + o_k) mod N];  ds_k = Σ_i dw̃[i] w_g[(i − o_k) mod N]
    gate      dg = Σ dw_g (w_c − w_prev);  dw_prev = (1 − g) dw_g;  dw_c = g dw_g
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from cogdsl.kernels.content import content_at, content_grad_tile, finish_key_grads, load_keys, logits_pass
from cogdsl.kernels.library import define, launch
from cogdsl.kernels.tiles import LAUNCH, SHARPEN_EPS, blocks, contiguous, load_rows, store_rows

__all__ = ["address_backward", "address_forward", "ntm_address"]

#: Per head: softmax maximum, softmax normaliser, sharpening maximum, Σ x^γ.
STATS_PER_HEAD = 4
STATS = tl.constexpr(STATS_PER_HEAD)


# -- tile-level pieces, shared with the fused memory step ------------------------------------

@triton.jit
def load_gate_stage(gate_ptr, gamma_ptr, H, heads):
    head_mask = heads < H
    return (tl.load(gate_ptr + heads, mask=head_mask, other=0.0),
            tl.load(gamma_ptr + heads, mask=head_mask, other=0.0))


@triton.jit
def gated_at(sim_ptr, previous_ptr, heads, slots, mask, strengths, gate, row_max, row_sum, N):
    """w_g = w_prev + g (w_c − w_prev) at ``slots``, with w_c and w_prev there."""
    content, _ = content_at(sim_ptr, heads, slots, mask, strengths, row_max, row_sum, N)
    previous = tl.load(previous_ptr + heads[:, None] * N + slots[None, :], mask=mask, other=0.0)
    return previous + gate[:, None] * (content - previous), content, previous


@triton.jit
def shift_pass(sim_ptr, previous_ptr, shift_ptr, shifted_ptr, strengths, gate, gamma, row_max, row_sum,
               H, N, K, heads, BLOCK_N: tl.constexpr):
    """Store w̃ (H, N); return each head's sharpening maximum max(w̃ + ε) and Σ ((w̃ + ε) / max)^γ."""
    head_mask = heads < H
    half = (K - 1) // 2
    top = gate * 0.0 + SHARPEN_EPS
    power_sum = gate * 0.0
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = head_mask[:, None] & (slots[None, :] < N)
        shifted = tl.zeros((heads.shape[0], BLOCK_N), dtype=gate.dtype)
        for k in range(K):
            source = ((slots - (k - half)) % N + N) % N
            gated, _, _ = gated_at(sim_ptr, previous_ptr, heads, source, mask, strengths, gate,
                                   row_max, row_sum, N)
            shift_k = tl.load(shift_ptr + heads * K + k, mask=head_mask, other=0.0)
            shifted += shift_k[:, None] * gated
        tl.store(shifted_ptr + heads[:, None] * N + slots[None, :], shifted, mask=mask)
        lifted = shifted + SHARPEN_EPS
        new_top = tl.maximum(top, tl.max(tl.where(mask, lifted, 0.0), axis=1))
        powered = tl.where(mask, tl.exp(gamma[:, None] * tl.log(lifted / new_top[:, None])), 0.0)
        power_sum = power_sum * tl.exp(gamma * tl.log(top / new_top)) + tl.sum(powered, axis=1)
        top = new_top
    return top, tl.where(head_mask, power_sum, 1.0)


@triton.jit
def sharpened_tile(shifted_ptr, heads, slots, mask, gamma, top, power_sum, N):
    """w = ((w̃ + ε) / max)^γ / Σ at ``slots``, zero where masked."""
    shifted = tl.load(shifted_ptr + heads[:, None] * N + slots[None, :], mask=mask, other=0.0)
    powered = tl.exp(gamma[:, None] * tl.log((shifted + SHARPEN_EPS) / top[:, None]))
    return tl.where(mask, powered / power_sum[:, None], 0.0)


@triton.jit
def sharpen_grad_pass(weights_ptr, d_weights_ptr, shifted_ptr, d_shifted_ptr, gamma, top, H, N, heads,
                      BLOCK_N: tl.constexpr):
    """Store dw̃ = γ c / (w̃ + ε); return dγ = Σ c log x. Reads the (H, N) arrays twice."""
    head_mask = heads < H
    centre = gamma * 0.0
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = head_mask[:, None] & (slots[None, :] < N)
        offsets = heads[:, None] * N + slots[None, :]
        weights = tl.load(weights_ptr + offsets, mask=mask, other=0.0)
        centre += tl.sum(weights * tl.load(d_weights_ptr + offsets, mask=mask, other=0.0), axis=1)
    d_gamma = centre * 0.0
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = head_mask[:, None] & (slots[None, :] < N)
        offsets = heads[:, None] * N + slots[None, :]
        weights = tl.load(weights_ptr + offsets, mask=mask, other=0.0)
        centred = weights * (tl.load(d_weights_ptr + offsets, mask=mask, other=0.0) - centre[:, None])
        lifted = tl.load(shifted_ptr + offsets, mask=mask, other=0.0) + SHARPEN_EPS
        d_gamma += tl.sum(tl.where(mask, centred * tl.log(lifted / top[:, None]), 0.0), axis=1)
        tl.store(d_shifted_ptr + offsets, gamma[:, None] * centred / lifted, mask=mask)
    return d_gamma


@triton.jit
def shift_gate_grad_pass(sim_ptr, previous_ptr, shift_ptr, d_shifted_ptr, d_previous_ptr, d_content_ptr,
                         strengths, gate, row_max, row_sum, H, N, K, heads,
                         BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """Through the shift and the gate: store dw_prev and dw_c; return ds (H, K), dg and Σ dw_c w_c."""
    head_mask = heads < H
    half = (K - 1) // 2
    offsets_k = tl.arange(0, BLOCK_K)
    d_shift = tl.zeros((heads.shape[0], BLOCK_K), dtype=gate.dtype)
    d_gate = gate * 0.0
    centre = gate * 0.0
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = head_mask[:, None] & (slots[None, :] < N)
        offsets = heads[:, None] * N + slots[None, :]
        d_shifted = tl.load(d_shifted_ptr + offsets, mask=mask, other=0.0)
        d_gated = d_shifted * 0.0
        for k in range(K):
            shift_k = tl.load(shift_ptr + heads * K + k, mask=head_mask, other=0.0)
            ahead = ((slots + (k - half)) % N + N) % N
            d_gated += shift_k[:, None] * tl.load(d_shifted_ptr + heads[:, None] * N + ahead[None, :],
                                                  mask=mask, other=0.0)
            behind = ((slots - (k - half)) % N + N) % N
            gated, _, _ = gated_at(sim_ptr, previous_ptr, heads, behind, mask, strengths, gate,
                                   row_max, row_sum, N)
            d_shift += tl.where(offsets_k[None, :] == k, tl.sum(d_shifted * gated, axis=1)[:, None], 0.0)
        _, content, previous = gated_at(sim_ptr, previous_ptr, heads, slots, mask, strengths, gate,
                                        row_max, row_sum, N)
        d_gate += tl.sum(d_gated * (content - previous), axis=1)
        tl.store(d_previous_ptr + offsets, d_gated * (1.0 - gate[:, None]), mask=mask)
        d_content = d_gated * gate[:, None]
        tl.store(d_content_ptr + offsets, d_content, mask=mask)
        centre += tl.sum(d_content * content, axis=1)
    return d_shift, d_gate, centre


@triton.jit
def store_stats(stats_ptr, heads, H, row_max, row_sum, top, power_sum):
    head_mask = heads < H
    tl.store(stats_ptr + heads * 4, row_max, mask=head_mask)
    tl.store(stats_ptr + heads * 4 + 1, row_sum, mask=head_mask)
    tl.store(stats_ptr + heads * 4 + 2, top, mask=head_mask)
    tl.store(stats_ptr + heads * 4 + 3, power_sum, mask=head_mask)


@triton.jit
def load_stats(stats_ptr, heads, H):
    head_mask = heads < H
    return (tl.load(stats_ptr + heads * 4, mask=head_mask, other=0.0),
            tl.load(stats_ptr + heads * 4 + 1, mask=head_mask, other=1.0),
            tl.load(stats_ptr + heads * 4 + 2, mask=head_mask, other=1.0),
            tl.load(stats_ptr + heads * 4 + 3, mask=head_mask, other=1.0))


@triton.jit
def address_passes(memory_ptr, previous_ptr, keys_ptr, strengths_ptr, gate_ptr, shift_ptr, gamma_ptr,
                   sim_ptr, shifted_ptr, stats_ptr, H, N, W, K, heads, columns, column_mask,
                   COSINE: tl.constexpr, BLOCK_N: tl.constexpr):
    """Passes 1-2 of the forward: sim and w̃ stored, the stats saved; returns what pass 3 needs.

    Returns keys, strengths, key norms, γ, the sharpening maximum and Σ x^γ; on return every
    thread may read what any other wrote.
    """
    keys, strengths, key_norms = load_keys(keys_ptr, strengths_ptr, H, W, heads, columns, column_mask)
    gate, gamma = load_gate_stage(gate_ptr, gamma_ptr, H, heads)
    row_max, row_sum = logits_pass(memory_ptr, keys, strengths, key_norms, sim_ptr, H, N, W, heads, columns,
                                   column_mask, COSINE, BLOCK_N)
    tl.debug_barrier()
    top, power_sum = shift_pass(sim_ptr, previous_ptr, shift_ptr, shifted_ptr, strengths, gate, gamma,
                                row_max, row_sum, H, N, K, heads, BLOCK_N)
    store_stats(stats_ptr, heads, H, row_max, row_sum, top, power_sum)
    tl.debug_barrier()
    return keys, strengths, key_norms, gamma, top, power_sum


@triton.jit
def address_grad_passes(weights_ptr, d_weights_ptr, shifted_ptr, d_shifted_ptr, sim_ptr, previous_ptr, shift_ptr,
                        d_previous_ptr, d_content_ptr, strengths, gate, gamma, row_max, row_sum, top, H, N, K, heads,
                        BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """Back from dw (at d_weights_ptr, complete) through sharpen, shift and gate.

    Stores dw_prev and dw_c; returns dγ, ds, dg and Σ dw_c w_c, with dw_c readable by every thread.
    """
    d_gamma = sharpen_grad_pass(weights_ptr, d_weights_ptr, shifted_ptr, d_shifted_ptr, gamma, top, H, N, heads,
                                BLOCK_N)
    tl.debug_barrier()
    d_shift, d_gate, centre = shift_gate_grad_pass(sim_ptr, previous_ptr, shift_ptr, d_shifted_ptr, d_previous_ptr,
                                                   d_content_ptr, strengths, gate, row_max, row_sum, H, N, K,
                                                   heads, BLOCK_N, BLOCK_K)
    tl.debug_barrier()
    return d_gamma, d_shift, d_gate, centre


@triton.jit
def address_content_grad_tile(memory, sim_ptr, d_content_ptr, heads, slots, mask, keys, key_norms, strengths,
                              row_max, row_sum, centre, N, COSINE: tl.constexpr):
    """content_grad_tile at one memory tile, with w_c recomputed from sim and dw_c loaded."""
    content, sim = content_at(sim_ptr, heads, slots, mask, strengths, row_max, row_sum, N)
    d_content = tl.load(d_content_ptr + heads[:, None] * N + slots[None, :], mask=mask, other=0.0)
    return content_grad_tile(memory, keys, key_norms, strengths, sim, content, d_content, centre, COSINE)


@triton.jit
def store_stage_grads(d_gate_ptr, d_gamma_ptr, d_shift_ptr, d_gate, d_gamma, d_shift, H, K, heads,
                      BLOCK_K: tl.constexpr):
    """Store dg, dγ (H,) and ds (H, K)."""
    head_mask = heads < H
    tl.store(d_gate_ptr + heads, d_gate, mask=head_mask)
    tl.store(d_gamma_ptr + heads, d_gamma, mask=head_mask)
    offsets_k = tl.arange(0, BLOCK_K)
    tl.store(d_shift_ptr + heads[:, None] * K + offsets_k[None, :], d_shift,
             mask=head_mask[:, None] & (offsets_k[None, :] < K))


# -- the kernels ----------------------------------------------------------------------------

@triton.jit
def _address_forward_kernel(memory_ptr, previous_ptr, keys_ptr, strengths_ptr, gate_ptr, shift_ptr, gamma_ptr,
                            weights_ptr, sim_ptr, shifted_ptr, stats_ptr, H, N, W, K,
                            COSINE: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
                            BLOCK_W: tl.constexpr, BLOCK_K: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    memory_ptr += batch * N * W
    keys_ptr += batch * H * W
    per_head = batch * H
    strengths_ptr += per_head
    gate_ptr += per_head
    gamma_ptr += per_head
    shift_ptr += per_head * K
    stats_ptr += per_head * STATS
    previous_ptr += per_head * N
    weights_ptr += per_head * N
    sim_ptr += per_head * N
    shifted_ptr += per_head * N
    heads = tl.arange(0, BLOCK_H)
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    _keys, _strengths, _key_norms, gamma, top, power_sum = address_passes(
        memory_ptr, previous_ptr, keys_ptr, strengths_ptr, gate_ptr, shift_ptr, gamma_ptr, sim_ptr, shifted_ptr,
        stats_ptr, H, N, W, K, heads, columns, column_mask, COSINE, BLOCK_N)
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = (heads[:, None] < H) & (slots[None, :] < N)
        weights = sharpened_tile(shifted_ptr, heads, slots, mask, gamma, top, power_sum, N)
        tl.store(weights_ptr + heads[:, None] * N + slots[None, :], weights, mask=mask)


@triton.jit
def _address_backward_kernel(memory_ptr, previous_ptr, keys_ptr, strengths_ptr, gate_ptr, shift_ptr, gamma_ptr,
                             weights_ptr, sim_ptr, shifted_ptr, stats_ptr, d_weights_ptr, scratch_ptr,
                             d_memory_ptr, d_previous_ptr, d_keys_ptr, d_strengths_ptr, d_gate_ptr, d_shift_ptr,
                             d_gamma_ptr, H, N, W, K,
                             COSINE: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
                             BLOCK_W: tl.constexpr, BLOCK_K: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    memory_ptr += batch * N * W
    d_memory_ptr += batch * N * W
    keys_ptr += batch * H * W
    d_keys_ptr += batch * H * W
    per_head = batch * H
    strengths_ptr += per_head
    gate_ptr += per_head
    gamma_ptr += per_head
    d_strengths_ptr += per_head
    d_gate_ptr += per_head
    d_gamma_ptr += per_head
    shift_ptr += per_head * K
    d_shift_ptr += per_head * K
    stats_ptr += per_head * STATS
    previous_ptr += per_head * N
    d_previous_ptr += per_head * N
    weights_ptr += per_head * N
    d_weights_ptr += per_head * N
    sim_ptr += per_head * N
    shifted_ptr += per_head * N
    d_shifted_ptr = scratch_ptr + per_head * N * 2
    d_content_ptr = d_shifted_ptr + H * N
    heads = tl.arange(0, BLOCK_H)
    head_mask = heads < H
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    keys, strengths, key_norms = load_keys(keys_ptr, strengths_ptr, H, W, heads, columns, column_mask)
    gate, gamma = load_gate_stage(gate_ptr, gamma_ptr, H, heads)
    row_max, row_sum, top, _power_sum = load_stats(stats_ptr, heads, H)

    d_gamma, d_shift, d_gate, centre = address_grad_passes(
        weights_ptr, d_weights_ptr, shifted_ptr, d_shifted_ptr, sim_ptr, previous_ptr, shift_ptr, d_previous_ptr,
        d_content_ptr, strengths, gate, gamma, row_max, row_sum, top, H, N, K, heads, BLOCK_N, BLOCK_K)
    d_keys = keys * 0.0
    d_key_norms = gate * 0.0
    d_strengths = gate * 0.0
    tile_rows = tl.arange(0, BLOCK_N)
    for start in range(0, N, BLOCK_N):
        slots = start + tile_rows
        mask = head_mask[:, None] & (slots[None, :] < N)
        memory = load_rows(memory_ptr + start * W, tile_rows, N - start, W, columns, column_mask)
        d_memory, d_keys_part, d_key_norms_part, d_strengths_part = address_content_grad_tile(
            memory, sim_ptr, d_content_ptr, heads, slots, mask, keys, key_norms, strengths, row_max, row_sum,
            centre, N, COSINE)
        store_rows(d_memory_ptr + start * W, d_memory, tile_rows, N - start, W, columns, column_mask)
        d_keys += d_keys_part
        d_key_norms += d_key_norms_part
        d_strengths += d_strengths_part
    finish_key_grads(d_keys_ptr, d_strengths_ptr, d_keys, d_key_norms, d_strengths, keys, key_norms,
                     H, W, heads, columns, column_mask)
    store_stage_grads(d_gate_ptr, d_gamma_ptr, d_shift_ptr, d_gate, d_gamma, d_shift, H, K, heads, BLOCK_K)


# -- the launchers, as custom ops -----------------------------------------------------------

def address_forward(memory: torch.Tensor, previous: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor,
                    gate: torch.Tensor, shift_weights: torch.Tensor, gamma: torch.Tensor,
                    cosine: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """→ (weights (B,H,N); sim, w̃ (B,H,N) and stats (B,H,4) saved): one program per batch element."""
    inputs = contiguous(memory, previous, keys, strengths, gate, shift_weights, gamma)
    batch, slots, width = memory.shape
    heads, offsets = keys.shape[1], shift_weights.shape[2]
    weights = memory.new_empty(batch, heads, slots)
    sim, shifted = torch.empty_like(weights), torch.empty_like(weights)
    stats = memory.new_empty(batch, heads, STATS_PER_HEAD)
    launch(_address_forward_kernel, (batch,), *inputs, weights, sim, shifted, stats, heads, slots, width, offsets,
           COSINE=cosine, **LAUNCH, **blocks(heads, slots, width, offsets))
    return weights, sim, shifted, stats


def address_backward(memory: torch.Tensor, previous: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor,
                     gate: torch.Tensor, shift_weights: torch.Tensor, gamma: torch.Tensor, weights: torch.Tensor,
                     sim: torch.Tensor, shifted: torch.Tensor, stats: torch.Tensor, d_weights: torch.Tensor,
                     cosine: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                            torch.Tensor, torch.Tensor]:
    """The gradients of the seven inputs: one program per batch element."""
    inputs = contiguous(memory, previous, keys, strengths, gate, shift_weights, gamma)
    batch, slots, width = memory.shape
    heads, offsets = keys.shape[1], shift_weights.shape[2]
    scratch = memory.new_empty(batch, 2, heads, slots)
    grads = [torch.empty_like(t) for t in inputs]
    launch(_address_backward_kernel, (batch,), *inputs, weights, sim, shifted, stats, d_weights, scratch, *grads,
           heads, slots, width, offsets, COSINE=cosine, **LAUNCH, **blocks(heads, slots, width, offsets))
    return grads[0], grads[1], grads[2], grads[3], grads[4], grads[5], grads[6]


_ntm_address = define("ntm_address", address_forward, address_backward, outputs=1)


def ntm_address(memory: torch.Tensor, previous: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor,
                gate: torch.Tensor, shift_weights: torch.Tensor, gamma: torch.Tensor,
                similarity: str = "cosine") -> torch.Tensor:
    """The Triton implementation of :func:`cogdsl.ops.ntm_address` (shapes checked there)."""
    return _ntm_address(memory, previous, keys, strengths, gate, shift_weights, gamma, similarity == "cosine")[0]
