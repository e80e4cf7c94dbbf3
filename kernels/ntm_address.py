"""NTM addressing fused: any pipeline of content, gate, shift and sharpen (Graves et al. 2014, §3.3) in one kernel.

    w_c = softmax_i(β sim(k, M_i))                      content      (kernels.content)
    w_g = g w_c + (1 − g) w_prev                         gate
    w̃[i] = Σ_k s_k w_g[(i − o_k) mod N],  o_k = k − s    shift
    w[i] = x_i^γ / Σ_j x_j^γ,  x = (w̃ + ε) / max(w̃ + ε)  sharpen

References: :func:`cogdsl.ops.ntm.ntm_address` (all four stages) and :func:`cogdsl.ops.ntm.address` (any
subset, in this order). The stages a spec uses are ``tl.constexpr`` flags (``CONTENT``, ``GATE``, ``SHIFT``,
``SHARPEN``), so Triton builds one kernel per pipeline actually used and a missing stage costs nothing.
A stage that is absent passes its input on: with no content stage the pipeline starts from w_prev, with
no gate w_g = w_c, with no shift w̃ = w_g, with no sharpening w = w̃.

One program per batch element does every head:

1. (content) a pass over the memory stores sim (H, N) and the softmax maximum and normaliser (online);
2. a pass over the slots gathers w_g at the 2s+1 shifted slots (computed from sim and w_prev, never
   stored; the gathers of a small K are unrolled so they are issued together), stores w̃ (w itself when
   there is no sharpening), and keeps the sharpening maximum and Σ x^γ online: when the maximum grows
   from t to t', the running sum is rescaled by (t / t')^γ;
3. (sharpen) a pass writes w = x^γ / Σ x^γ.

Passes 2 and 3 read slots another thread of the program wrote, so a barrier separates them.
Memory traffic per batch element (fp32), all four stages: forward reads M once (4NW bytes) and moves 6
(H, N) arrays; backward reads M once, writes dM once and moves about 14 (H, N) arrays.

Backward, from g = dL/dw back (p = w; the content stage is kernels.content's):
    sharpen   c = p (g − Σ g p);  dw̃ = γ c / (w̃ + ε);  dγ = Σ c log x
    shift     dw_g[j] = Σ_k s_k dw̃[(j + o_k) mod N];  ds_k = Σ_i dw̃[i] w_g[(i − o_k) mod N]
    gate      dg = Σ dw_g (w_c − w_prev);  dw_prev = (1 − g) dw_g;  dw_c = g dw_g
Without a content stage w_c is w_prev, and dw_c is added to dw_prev.

The key vectors may be a view of the controller's interface: the kernels step batch elements by the
keys' own batch stride (:func:`~cogdsl.kernels.tiles.batch_rows`), so no copy is made.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from cogdsl.kernels.content import content_at, content_grad_tile, finish_key_grads, load_keys, logits_pass
from cogdsl.kernels.library import define, launch
from cogdsl.kernels.tiles import LAUNCH, SHARPEN_EPS, batch_rows, blocks, contiguous, load_rows, store_rows

__all__ = ["STAGES", "address", "address_backward", "address_forward", "ntm_address", "stage_inputs"]

#: Per head: softmax maximum, softmax normaliser, sharpening maximum, Σ x^γ.
STATS_PER_HEAD = 4
STATS = tl.constexpr(STATS_PER_HEAD)
#: The pipeline's stages, in their order; a launch names the ones present as flags.
STAGES = ("content", "gate", "shift", "sharpen")
#: Shift offsets up to this many are gathered in an unrolled loop (issued together); more in a run-time loop.
UNROLLED_OFFSETS = 16
UNROLLED = tl.constexpr(UNROLLED_OFFSETS)


# -- tile-level pieces, shared with the fused memory step ------------------------------------

@triton.jit
def head_zeros(heads, like_ptr):
    """A (BLOCK_H,) vector of zeros of the pointee type of ``like_ptr``."""
    return tl.zeros((heads.shape[0],), dtype=like_ptr.dtype.element_ty)


@triton.jit
def load_content_stage(keys_ptr, strengths_ptr, H, W, heads, columns, column_mask, CONTENT: tl.constexpr):
    """Keys (BLOCK_H, BLOCK_W), strengths and key norms (BLOCK_H,); zeros (norms one) with no content stage."""
    if CONTENT:
        keys, strengths, key_norms = load_keys(keys_ptr, strengths_ptr, H, W, heads, columns, column_mask)
    else:
        keys = tl.zeros((heads.shape[0], columns.shape[0]), dtype=keys_ptr.dtype.element_ty)
        strengths = head_zeros(heads, keys_ptr)
        key_norms = strengths + 1.0
    return keys, strengths, key_norms


@triton.jit
def load_gate_stage(gate_ptr, gamma_ptr, H, heads, GATE: tl.constexpr, SHARPEN: tl.constexpr):
    """g and γ (BLOCK_H,), zeros for a stage that is absent."""
    head_mask = heads < H
    gate = head_zeros(heads, gate_ptr)
    gamma = head_zeros(heads, gamma_ptr)
    if GATE:
        gate = tl.load(gate_ptr + heads, mask=head_mask, other=0.0)
    if SHARPEN:
        gamma = tl.load(gamma_ptr + heads, mask=head_mask, other=0.0)
    return gate, gamma


@triton.jit
def gated_at(sim_ptr, previous_ptr, heads, slots, mask, strengths, gate, row_max, row_sum, N,
             CONTENT: tl.constexpr, GATE: tl.constexpr):
    """w_g at ``slots`` (w_prev + g (w_c − w_prev) with a gate, w_c without), with w_c and w_prev there.

    With no content stage w_c is w_prev."""
    previous = tl.load(previous_ptr + heads[:, None] * N + slots[None, :], mask=mask, other=0.0)
    if CONTENT:
        content, _ = content_at(sim_ptr, heads, slots, mask, strengths, row_max, row_sum, N)
    else:
        content = previous
    if GATE:
        gated = previous + gate[:, None] * (content - previous)
    else:
        gated = content
    return gated, content, previous


@triton.jit
def shift_column(shift_ptr, heads, head_mask, K, k):
    """s_k (BLOCK_H,), zero for k ≥ K."""
    return tl.load(shift_ptr + heads * K + k, mask=head_mask & ((heads * 0 + k) < K), other=0.0)


@triton.jit
def shifted_tile(sim_ptr, previous_ptr, shift_ptr, strengths, gate, row_max, row_sum, H, N, K, heads, slots, mask,
                 CONTENT: tl.constexpr, GATE: tl.constexpr, SHIFT: tl.constexpr, BLOCK_K: tl.constexpr):
    """w̃ at ``slots``: Σ_k s_k w_g[(i − o_k) mod N] with a shift stage, else w_g."""
    if SHIFT:
        head_mask = heads < H
        half = (K - 1) // 2
        shifted = tl.zeros((heads.shape[0], slots.shape[0]), dtype=previous_ptr.dtype.element_ty)
        if BLOCK_K <= UNROLLED:
            for k in tl.static_range(BLOCK_K):
                source = ((slots - (k - half)) % N + N) % N
                taken = mask & ((slots * 0 + k) < K)[None, :]
                gated, _, _ = gated_at(sim_ptr, previous_ptr, heads, source, taken, strengths, gate,
                                       row_max, row_sum, N, CONTENT, GATE)
                shifted += shift_column(shift_ptr, heads, head_mask, K, k)[:, None] * gated
        else:
            for k in range(K):
                source = ((slots - (k - half)) % N + N) % N
                gated, _, _ = gated_at(sim_ptr, previous_ptr, heads, source, mask, strengths, gate,
                                       row_max, row_sum, N, CONTENT, GATE)
                shifted += shift_column(shift_ptr, heads, head_mask, K, k)[:, None] * gated
    else:
        shifted, _, _ = gated_at(sim_ptr, previous_ptr, heads, slots, mask, strengths, gate, row_max, row_sum, N,
                                 CONTENT, GATE)
    return shifted


@triton.jit
def stage_pass(sim_ptr, previous_ptr, shift_ptr, shifted_ptr, strengths, gate, gamma, row_max, row_sum,
               H, N, K, heads, first, last, CONTENT: tl.constexpr, GATE: tl.constexpr, SHIFT: tl.constexpr,
               SHARPEN: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """Store w̃ at slots [first, last) (tiles of BLOCK_N from ``first``); with sharpening, return each head's
    maximum max(w̃ + ε) and Σ ((w̃ + ε) / max)^γ over those slots."""
    head_mask = heads < H
    top = gate * 0.0 + SHARPEN_EPS
    power_sum = gate * 0.0
    for start in range(first, last, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = head_mask[:, None] & (slots[None, :] < N)
        shifted = shifted_tile(sim_ptr, previous_ptr, shift_ptr, strengths, gate, row_max, row_sum, H, N, K,
                               heads, slots, mask, CONTENT, GATE, SHIFT, BLOCK_K)
        tl.store(shifted_ptr + heads[:, None] * N + slots[None, :], shifted, mask=mask)
        if SHARPEN:
            lifted = shifted + SHARPEN_EPS
            new_top = tl.maximum(top, tl.max(tl.where(mask, lifted, 0.0), axis=1))
            powered = tl.where(mask, tl.exp(gamma[:, None] * tl.log(lifted / new_top[:, None])), 0.0)
            power_sum = power_sum * tl.exp(gamma * tl.log(top / new_top)) + tl.sum(powered, axis=1)
            top = new_top
    return top, tl.where(head_mask, power_sum, 1.0)


@triton.jit
def sharpened_tile(shifted_ptr, heads, slots, mask, gamma, top, power_sum, N, SHARPEN: tl.constexpr):
    """w at ``slots``, zero where masked: ((w̃ + ε) / max)^γ / Σ with sharpening, else w̃ as stored."""
    shifted = tl.load(shifted_ptr + heads[:, None] * N + slots[None, :], mask=mask, other=0.0)
    if SHARPEN:
        powered = tl.exp(gamma[:, None] * tl.log((shifted + SHARPEN_EPS) / top[:, None]))
        shifted = tl.where(mask, powered / power_sum[:, None], 0.0)
    return shifted


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
def shift_grad_tile(sim_ptr, previous_ptr, shift_ptr, d_shifted_ptr, d_shift, strengths, gate, row_max, row_sum,
                    H, N, K, heads, slots, mask, CONTENT: tl.constexpr, GATE: tl.constexpr, SHIFT: tl.constexpr,
                    BLOCK_K: tl.constexpr):
    """dw_g at ``slots`` (Σ_k s_k dw̃[(j + o_k) mod N] with a shift stage, else dw̃); adds ds into ``d_shift``."""
    offsets = heads[:, None] * N + slots[None, :]
    d_shifted = tl.load(d_shifted_ptr + offsets, mask=mask, other=0.0)
    if SHIFT:
        head_mask = heads < H
        half = (K - 1) // 2
        offsets_k = tl.arange(0, BLOCK_K)
        d_gated = d_shifted * 0.0
        if BLOCK_K <= UNROLLED:
            for k in tl.static_range(BLOCK_K):
                taken = mask & ((slots * 0 + k) < K)[None, :]
                shift_k = shift_column(shift_ptr, heads, head_mask, K, k)
                ahead = ((slots + (k - half)) % N + N) % N
                d_gated += shift_k[:, None] * tl.load(d_shifted_ptr + heads[:, None] * N + ahead[None, :],
                                                      mask=taken, other=0.0)
                behind = ((slots - (k - half)) % N + N) % N
                gated, _, _ = gated_at(sim_ptr, previous_ptr, heads, behind, taken, strengths, gate,
                                       row_max, row_sum, N, CONTENT, GATE)
                d_shift += tl.where(offsets_k[None, :] == k, tl.sum(d_shifted * gated, axis=1)[:, None], 0.0)
        else:
            for k in range(K):
                shift_k = shift_column(shift_ptr, heads, head_mask, K, k)
                ahead = ((slots + (k - half)) % N + N) % N
                d_gated += shift_k[:, None] * tl.load(d_shifted_ptr + heads[:, None] * N + ahead[None, :],
                                                      mask=mask, other=0.0)
                behind = ((slots - (k - half)) % N + N) % N
                gated, _, _ = gated_at(sim_ptr, previous_ptr, heads, behind, mask, strengths, gate,
                                       row_max, row_sum, N, CONTENT, GATE)
                d_shift += tl.where(offsets_k[None, :] == k, tl.sum(d_shifted * gated, axis=1)[:, None], 0.0)
    else:
        d_gated = d_shifted
    return d_gated, d_shift


@triton.jit
def shift_gate_grad_pass(sim_ptr, previous_ptr, shift_ptr, d_shifted_ptr, d_previous_ptr, d_content_ptr,
                         strengths, gate, row_max, row_sum, H, N, K, heads, first, last,
                         CONTENT: tl.constexpr, GATE: tl.constexpr, SHIFT: tl.constexpr,
                         BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """Through the shift and the gate at slots [first, last): store dw_prev and (with content) dw_c there;
    return their ds (H, K), dg and Σ dw_c w_c."""
    head_mask = heads < H
    d_shift = tl.zeros((heads.shape[0], BLOCK_K), dtype=previous_ptr.dtype.element_ty)
    d_gate = gate * 0.0
    centre = gate * 0.0
    for start in range(first, last, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = head_mask[:, None] & (slots[None, :] < N)
        offsets = heads[:, None] * N + slots[None, :]
        d_gated, d_shift = shift_grad_tile(sim_ptr, previous_ptr, shift_ptr, d_shifted_ptr, d_shift, strengths, gate,
                                           row_max, row_sum, H, N, K, heads, slots, mask, CONTENT, GATE, SHIFT,
                                           BLOCK_K)
        _, content, previous = gated_at(sim_ptr, previous_ptr, heads, slots, mask, strengths, gate,
                                        row_max, row_sum, N, CONTENT, GATE)
        if GATE:
            d_gate += tl.sum(d_gated * (content - previous), axis=1)
            d_previous = d_gated * (1.0 - gate[:, None])
            d_content = d_gated * gate[:, None]
        else:
            d_previous = d_gated * 0.0
            d_content = d_gated
        if CONTENT:
            tl.store(d_content_ptr + offsets, d_content, mask=mask)
            centre += tl.sum(d_content * content, axis=1)
        else:
            d_previous += d_content
        tl.store(d_previous_ptr + offsets, d_previous, mask=mask)
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
                   COSINE: tl.constexpr, CONTENT: tl.constexpr, GATE: tl.constexpr, SHIFT: tl.constexpr,
                   SHARPEN: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """Passes 1-2 of the forward: sim and w̃ stored, the stats saved; returns what pass 3 needs.

    Returns keys, strengths, key norms, γ, the sharpening maximum and Σ x^γ; on return every
    thread may read what any other wrote.
    """
    keys, strengths, key_norms = load_content_stage(keys_ptr, strengths_ptr, H, W, heads, columns, column_mask,
                                                    CONTENT)
    gate, gamma = load_gate_stage(gate_ptr, gamma_ptr, H, heads, GATE, SHARPEN)
    row_max = strengths * 0.0
    row_sum = row_max + 1.0
    if CONTENT:
        row_max, row_sum = logits_pass(memory_ptr, keys, strengths, key_norms, sim_ptr, H, N, W, heads, columns,
                                       column_mask, COSINE, BLOCK_N)
        tl.debug_barrier()
    top, power_sum = stage_pass(sim_ptr, previous_ptr, shift_ptr, shifted_ptr, strengths, gate, gamma,
                                row_max, row_sum, H, N, K, heads, 0, N, CONTENT, GATE, SHIFT, SHARPEN, BLOCK_N,
                                BLOCK_K)
    store_stats(stats_ptr, heads, H, row_max, row_sum, top, power_sum)
    tl.debug_barrier()
    return keys, strengths, key_norms, gamma, top, power_sum


@triton.jit
def address_grad_passes(weights_ptr, d_weights_ptr, shifted_ptr, d_shifted_ptr, sim_ptr, previous_ptr, shift_ptr,
                        d_previous_ptr, d_content_ptr, strengths, gate, gamma, row_max, row_sum, top, H, N, K, heads,
                        CONTENT: tl.constexpr, GATE: tl.constexpr, SHIFT: tl.constexpr, SHARPEN: tl.constexpr,
                        BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """Back from dw (at d_weights_ptr, complete) through sharpen, shift and gate.

    Stores dw_prev and (with content) dw_c; returns dγ, ds, dg and Σ dw_c w_c, with dw_c readable by every
    thread. Without sharpening dw̃ is dw, read where it is; ``d_content_ptr`` must then not be
    ``d_weights_ptr`` (pass 2 reads dw̃ at slots ahead of the tile it writes).
    """
    if SHARPEN:
        d_gamma = sharpen_grad_pass(weights_ptr, d_weights_ptr, shifted_ptr, d_shifted_ptr, gamma, top, H, N,
                                    heads, BLOCK_N)
        tl.debug_barrier()
        d_stage_ptr = d_shifted_ptr
    else:
        d_gamma = gamma * 0.0
        d_stage_ptr = d_weights_ptr
    d_shift, d_gate, centre = shift_gate_grad_pass(sim_ptr, previous_ptr, shift_ptr, d_stage_ptr, d_previous_ptr,
                                                   d_content_ptr, strengths, gate, row_max, row_sum, H, N, K,
                                                   heads, 0, N, CONTENT, GATE, SHIFT, BLOCK_N, BLOCK_K)
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
                      GATE: tl.constexpr, SHIFT: tl.constexpr, SHARPEN: tl.constexpr, BLOCK_K: tl.constexpr):
    """Store dg, dγ (H,) and ds (H, K), each where its stage is present."""
    head_mask = heads < H
    if GATE:
        tl.store(d_gate_ptr + heads, d_gate, mask=head_mask)
    if SHARPEN:
        tl.store(d_gamma_ptr + heads, d_gamma, mask=head_mask)
    if SHIFT:
        offsets_k = tl.arange(0, BLOCK_K)
        tl.store(d_shift_ptr + heads[:, None] * K + offsets_k[None, :], d_shift,
                 mask=head_mask[:, None] & (offsets_k[None, :] < K))


# -- the kernels ----------------------------------------------------------------------------

@triton.jit
def _address_forward_kernel(memory_ptr, previous_ptr, keys_ptr, strengths_ptr, gate_ptr, shift_ptr, gamma_ptr,
                            weights_ptr, sim_ptr, shifted_ptr, stats_ptr, H, N, W, K, key_stride,
                            COSINE: tl.constexpr, CONTENT: tl.constexpr, GATE: tl.constexpr, SHIFT: tl.constexpr,
                            SHARPEN: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
                            BLOCK_W: tl.constexpr, BLOCK_K: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    memory_ptr += batch * N * W
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
    # Without sharpening pass 2 writes the weights themselves.
    if SHARPEN:
        stage_ptr = shifted_ptr
    else:
        stage_ptr = weights_ptr
    _keys, _strengths, _key_norms, gamma, top, power_sum = address_passes(
        memory_ptr, previous_ptr, keys_ptr, strengths_ptr, gate_ptr, shift_ptr, gamma_ptr, sim_ptr, stage_ptr,
        stats_ptr, H, N, W, K, heads, columns, column_mask, COSINE, CONTENT, GATE, SHIFT, SHARPEN, BLOCK_N, BLOCK_K)
    if SHARPEN:
        for start in range(0, N, BLOCK_N):
            slots = start + tl.arange(0, BLOCK_N)
            mask = (heads[:, None] < H) & (slots[None, :] < N)
            weights = sharpened_tile(shifted_ptr, heads, slots, mask, gamma, top, power_sum, N, SHARPEN)
            tl.store(weights_ptr + heads[:, None] * N + slots[None, :], weights, mask=mask)


@triton.jit
def _address_backward_kernel(memory_ptr, previous_ptr, keys_ptr, strengths_ptr, gate_ptr, shift_ptr, gamma_ptr,
                             weights_ptr, sim_ptr, shifted_ptr, stats_ptr, d_weights_ptr, scratch_ptr,
                             d_memory_ptr, d_previous_ptr, d_keys_ptr, d_strengths_ptr, d_gate_ptr, d_shift_ptr,
                             d_gamma_ptr, H, N, W, K, key_stride,
                             COSINE: tl.constexpr, CONTENT: tl.constexpr, GATE: tl.constexpr, SHIFT: tl.constexpr,
                             SHARPEN: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
                             BLOCK_W: tl.constexpr, BLOCK_K: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    per_head = batch * H
    if CONTENT:
        memory_ptr += batch * N * W
        d_memory_ptr += batch * N * W
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
    d_shifted_ptr = scratch_ptr + per_head * N * 2
    d_content_ptr = d_shifted_ptr + H * N
    heads = tl.arange(0, BLOCK_H)
    head_mask = heads < H
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    keys, strengths, key_norms = load_content_stage(keys_ptr, strengths_ptr, H, W, heads, columns, column_mask,
                                                    CONTENT)
    gate, gamma = load_gate_stage(gate_ptr, gamma_ptr, H, heads, GATE, SHARPEN)
    row_max, row_sum, top, _power_sum = load_stats(stats_ptr, heads, H)

    d_gamma, d_shift, d_gate, centre = address_grad_passes(
        weights_ptr, d_weights_ptr, shifted_ptr, d_shifted_ptr, sim_ptr, previous_ptr, shift_ptr, d_previous_ptr,
        d_content_ptr, strengths, gate, gamma, row_max, row_sum, top, H, N, K, heads, CONTENT, GATE, SHIFT, SHARPEN,
        BLOCK_N, BLOCK_K)
    if CONTENT:
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
    store_stage_grads(d_gate_ptr, d_gamma_ptr, d_shift_ptr, d_gate, d_gamma, d_shift, H, K, heads, GATE, SHIFT,
                      SHARPEN, BLOCK_K)


# -- the launchers, as custom ops -----------------------------------------------------------

def stage_inputs(memory: torch.Tensor, keys: torch.Tensor | None, strengths: torch.Tensor | None,
                 gate: torch.Tensor | None, shift_weights: torch.Tensor | None, gamma: torch.Tensor | None
                 ) -> tuple[list[torch.Tensor], dict[str, bool]]:
    """The five stage tensors with a one-element placeholder for each that is None (never read), and the
    flags saying which stages are present, as the custom ops take them."""
    placeholder = memory.new_empty(1)
    tensors = [placeholder if t is None else t for t in (keys, strengths, gate, shift_weights, gamma)]
    flags = {"content": keys is not None, "gate": gate is not None, "shift": shift_weights is not None,
             "sharpen": gamma is not None}
    return tensors, flags


def _sizes(memory: torch.Tensor, previous: torch.Tensor, shift_weights: torch.Tensor, shift: bool) -> dict[str, int]:
    heads, offsets = previous.shape[1], shift_weights.shape[2] if shift else 1
    return blocks(heads, memory.shape[1], memory.shape[2], offsets)


def address_forward(memory: torch.Tensor, previous: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor,
                    gate: torch.Tensor, shift_weights: torch.Tensor, gamma: torch.Tensor, cosine: bool,
                    content: bool, gated: bool, shift: bool, sharpen: bool
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """→ (weights (B,H,N); sim, w̃ (B,H,N) and stats (B,H,4) saved): one program per batch element.

    A stage whose flag is off is skipped and its tensor never read; sim and w̃ are then empty."""
    keys, key_stride = batch_rows(keys) if content else (keys, 0)
    memory, previous, strengths, gate, shift_weights, gamma = contiguous(
        memory, previous, strengths, gate, shift_weights, gamma)
    batch, slots, width = memory.shape
    heads = previous.shape[1]
    offsets = shift_weights.shape[2] if shift else 1
    weights = memory.new_empty(batch, heads, slots)
    sim = torch.empty_like(weights) if content else memory.new_empty(0)
    shifted = torch.empty_like(weights) if sharpen else memory.new_empty(0)
    stats = memory.new_empty(batch, heads, STATS_PER_HEAD)
    launch(_address_forward_kernel, (batch,), memory, previous, keys, strengths, gate, shift_weights, gamma,
           weights, sim if content else weights, shifted if sharpen else weights, stats, heads, slots, width,
           offsets, key_stride, COSINE=cosine, CONTENT=content, GATE=gated, SHIFT=shift, SHARPEN=sharpen,
           **LAUNCH, **_sizes(memory, previous, shift_weights, shift))
    return weights, sim, shifted, stats


def address_backward(memory: torch.Tensor, previous: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor,
                     gate: torch.Tensor, shift_weights: torch.Tensor, gamma: torch.Tensor, weights: torch.Tensor,
                     sim: torch.Tensor, shifted: torch.Tensor, stats: torch.Tensor, d_weights: torch.Tensor,
                     cosine: bool, content: bool, gated: bool, shift: bool, sharpen: bool
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                torch.Tensor, torch.Tensor]:
    """The gradients of the seven inputs (zeros for the memory, and nothing read, with no content stage)."""
    keys, key_stride = batch_rows(keys) if content else (keys, 0)
    memory, previous, strengths, gate, shift_weights, gamma = contiguous(
        memory, previous, strengths, gate, shift_weights, gamma)
    batch, slots, width = memory.shape
    heads = previous.shape[1]
    offsets = shift_weights.shape[2] if shift else 1
    scratch = memory.new_empty(batch, 2, heads, slots)
    d_memory = memory.new_empty(memory.shape) if content else memory.new_zeros(memory.shape)
    grads = [memory.new_empty(t.shape) for t in (previous, keys, strengths, gate, shift_weights, gamma)]
    launch(_address_backward_kernel, (batch,), memory, previous, keys, strengths, gate, shift_weights, gamma,
           weights, sim if content else weights, shifted if sharpen else weights, stats, d_weights, scratch,
           d_memory, *grads, heads, slots, width, offsets, key_stride, COSINE=cosine, CONTENT=content, GATE=gated,
           SHIFT=shift, SHARPEN=sharpen, **LAUNCH, **_sizes(memory, previous, shift_weights, shift))
    return d_memory, grads[0], grads[1], grads[2], grads[3], grads[4], grads[5]


_address = define("ntm_address", address_forward, address_backward, outputs=1)


def ntm_address(memory: torch.Tensor, previous: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor,
                gate: torch.Tensor, shift_weights: torch.Tensor, gamma: torch.Tensor,
                similarity: str = "cosine") -> torch.Tensor:
    """The Triton implementation of :func:`cogdsl.ops.ntm_address` (shapes checked there)."""
    return _address(memory, previous, keys, strengths, gate, shift_weights, gamma, similarity == "cosine",
                    True, True, True, True)[0]


def address(memory: torch.Tensor, previous: torch.Tensor, keys: torch.Tensor | None, strengths: torch.Tensor | None,
            gate: torch.Tensor | None, shift_weights: torch.Tensor | None, gamma: torch.Tensor | None,
            similarity: str = "cosine") -> torch.Tensor:
    """The Triton implementation of :func:`cogdsl.ops.address` (shapes checked there): one kernel for the
    stages given."""
    tensors, flags = stage_inputs(memory, keys, strengths, gate, shift_weights, gamma)
    return _address(memory, previous, *tensors, similarity == "cosine", flags["content"], flags["gate"],
                    flags["shift"], flags["sharpen"])[0]
