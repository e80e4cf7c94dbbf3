"""The DNC's memory management (Graves et al. 2016, Methods): usage, allocation, temporal links.

    usage        u' = (u + w − u∘w) ∘ ψ,  ψ = Π_r (1 − f_r w_r)                 (B,N)
    allocation   a[φ_j] = (1 − u[φ_j]) Π_{i<j} u[φ_i],  φ = ascending stable sort of u
    link         L'[i,j] = (1 − w_i − w_j) L[i,j] + w_i p[j] (i ≠ j), L'[i,i] = 0
                 p' = (1 − Σ w) p + w
    directional  f_r = L w_r,  b_r = Lᵀ w_r

References: :mod:`cogdsl.ops.dnc`. Backward passes, with g the gradient of the output:

usage        du = g ψ (1 − w);  dw = g ψ (1 − u);  dψ = g (u + w − u∘w)
             dw_r = −f_r dψ Π_{s≠r} (1 − f_s w_s);  df_r = −Σ_i w_r dψ Π_{s≠r} (1 − f_s w_s)
allocation   in sorted order s, with P_k = Π_{i<k} s_i and Q_k = Σ_{j>k} g_j (1 − s_j) Π_{k<i<j} s_i
             (the recurrence Q_k = s_{k+1} Q_{k+1} + g_{k+1} (1 − s_{k+1})):  ds_k = P_k (Q_k − g_k)
link         dL = G (1 − w_i − w_j) off the diagonal;  dp_j = Σ_{i≠j} G_ij w_i + g_p,j (1 − Σ w)
             dw_k = Σ_{j≠k} G_kj (p_j − L_kj) − Σ_{i≠k} G_ik L_ik + g_p,k − Σ_j g_p,j p_j
directional  dL_ij = Σ_r (g_f[r,i] w_r[j] + g_b[r,j] w_r[i]);  dw_r[j] = Σ_i (g_f[r,i] L_ij + g_b[r,i] L_ji)

The allocation has no sort network: the rank of slot i is the number of slots before it in
(usage, index) order, counted in (BLOCK, BLOCK) tiles (O(N²) comparisons, which for the
N ≤ a few thousand of a DNC is less work than the link update). Slots are then scattered
to their sorted places, and the products P and the recurrence Q run as scans over tiles
with a carry, so no step waits on the host and ties break by index exactly as the reference's
stable sort does. Sums over rows of the N×N link arrays run inside a program; sums over
columns are written per row tile and added by one torch reduction (no atomics, so results
are deterministic).

Memory traffic per batch element: the link update reads L and writes L' (8N² bytes in fp32)
and its backward reads L and G, writes dL (12N²); directional reads L twice forward (8N²)
and reads L, writes dL backward. Usage and allocation move O(RN) and O(N) bytes.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from cogdsl.kernels import max_tile_slots
from cogdsl.kernels.library import define, launch
from cogdsl.kernels.tiles import LAUNCH

__all__ = ["allocation_launch", "dnc_allocation", "dnc_directional", "dnc_link",
           "dnc_usage"]


def _block(size: int, most: int) -> int:
    block = min(triton.next_power_of_2(max(size, 1)), most)
    cap = max_tile_slots()
    return min(block, cap) if cap is not None else block


def launch_blocks(heads: int, slots: int) -> dict[str, dict[str, int]]:
    """Each kernel's block sizes and ``num_warps`` for R read heads and N slots: at most ~4,096 values per
    register tile, over 4 warps.

    The temporal links' kernels hold four (BLOCK_N, BLOCK_N) tiles of the link matrix at once (L,
    its gradient, dL and a product): BLOCK_N = 32 keeps them at 4 · 32² = 4,096 values, 32 a
    thread (at 64 the backward spilled in float64).
    """
    block_r = triton.next_power_of_2(max(heads, 1))
    directional = {"BLOCK_R": block_r, "BLOCK_N": _block(slots, max(16, 4096 // (block_r * 64)))}
    sizes = {
        "_usage_forward_kernel": {"BLOCK_N": _block(slots, 1024)},
        "_usage_backward_kernel": {"BLOCK_R": block_r, "BLOCK_N": _block(slots, 1024)},
        "_allocation_forward_kernel": {"BLOCK_N": _block(slots, 64)},
        "_allocation_backward_kernel": {"BLOCK_N": _block(slots, 64)},
        "_link_forward_kernel": {"BLOCK_N": _block(slots, 32)},
        "_link_backward_kernel": {"BLOCK_N": _block(slots, 32)},
        "_directional_forward_kernel": directional,
        "_directional_backward_kernel": directional,
    }
    return {name: {**chosen, "num_warps": 4} for name, chosen in sizes.items()}


# -- usage -----------------------------------------------------------------------------------

@triton.jit
def _retention(read_ptr, free_ptr, R, N, slots, mask, skip):
    """Π_{r ≠ skip} (1 − f_r w_r[slots]) (skip = −1 keeps every head)."""
    retention = tl.where(mask, 1.0, 0.0).to(free_ptr.dtype.element_ty)
    for r in range(R):
        free = tl.load(free_ptr + r)
        weight = tl.load(read_ptr + r * N + slots, mask=mask, other=0.0)
        retention *= tl.where(r == skip, 1.0, 1.0 - free * weight)
    return retention


@triton.jit
def _usage_forward_kernel(usage_ptr, write_ptr, read_ptr, free_ptr, out_ptr, R, N, BLOCK_N: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    slots = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = slots < N
    usage = tl.load(usage_ptr + batch * N + slots, mask=mask, other=0.0)
    write = tl.load(write_ptr + batch * N + slots, mask=mask, other=0.0)
    retention = _retention(read_ptr + batch * R * N, free_ptr + batch * R, R, N, slots, mask, -1)
    tl.store(out_ptr + batch * N + slots, (usage + write - usage * write) * retention, mask=mask)


@triton.jit
def _usage_backward_kernel(usage_ptr, write_ptr, read_ptr, free_ptr, grad_ptr,
                           d_usage_ptr, d_write_ptr, d_read_ptr, d_free_ptr, R, N,
                           BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    usage_ptr += batch * N
    write_ptr += batch * N
    grad_ptr += batch * N
    d_usage_ptr += batch * N
    d_write_ptr += batch * N
    read_ptr += batch * R * N
    d_read_ptr += batch * R * N
    free_ptr += batch * R
    heads = tl.arange(0, BLOCK_R)
    d_free = tl.zeros((BLOCK_R,), dtype=usage_ptr.dtype.element_ty)
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = slots < N
        usage = tl.load(usage_ptr + slots, mask=mask, other=0.0)
        write = tl.load(write_ptr + slots, mask=mask, other=0.0)
        grad = tl.load(grad_ptr + slots, mask=mask, other=0.0)
        retention = _retention(read_ptr, free_ptr, R, N, slots, mask, -1)
        tl.store(d_usage_ptr + slots, grad * retention * (1.0 - write), mask=mask)
        tl.store(d_write_ptr + slots, grad * retention * (1.0 - usage), mask=mask)
        d_retention = grad * (usage + write - usage * write)
        for r in range(R):
            others = _retention(read_ptr, free_ptr, R, N, slots, mask, r)
            free = tl.load(free_ptr + r)
            weight = tl.load(read_ptr + r * N + slots, mask=mask, other=0.0)
            tl.store(d_read_ptr + r * N + slots, -free * d_retention * others, mask=mask)
            d_free += tl.where(heads == r, -tl.sum(weight * d_retention * others, axis=0), 0.0)
    tl.store(d_free_ptr + batch * R + heads, d_free, mask=heads < R)


def usage_forward(usage: torch.Tensor, write_weights: torch.Tensor, read_weights: torch.Tensor,
                  free_gates: torch.Tensor) -> tuple[torch.Tensor]:
    """(B,N), (B,N), (B,R,N), (B,R) → (new usage (B,N),): one program per batch element and slot tile."""
    inputs = [t.contiguous() for t in (usage, write_weights, read_weights, free_gates)]
    batch, slots = usage.shape
    out = torch.empty_like(inputs[0])
    sizes = launch_blocks(read_weights.shape[1], slots)["_usage_forward_kernel"]
    launch(_usage_forward_kernel, (batch, triton.cdiv(slots, sizes["BLOCK_N"])), *inputs, out,
           read_weights.shape[1], slots, **sizes, **LAUNCH)
    return (out,)


def usage_backward(usage: torch.Tensor, write_weights: torch.Tensor, read_weights: torch.Tensor,
                   free_gates: torch.Tensor, new_usage: torch.Tensor, grad: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The gradients of the four inputs: one program per batch element."""
    inputs = [t.contiguous() for t in (usage, write_weights, read_weights, free_gates)]
    batch, slots = usage.shape
    heads = read_weights.shape[1]
    grads = [torch.empty_like(t) for t in inputs]
    launch(_usage_backward_kernel, (batch,), *inputs, grad, *grads, heads, slots,
           **launch_blocks(heads, slots)["_usage_backward_kernel"], **LAUNCH)
    return grads[0], grads[1], grads[2], grads[3]


# -- allocation ------------------------------------------------------------------------------

@triton.jit
def _ranks(usage_ptr, N, slots, mask, BLOCK_N: tl.constexpr):
    """Each slot's place in ascending (usage, index) order: #{j : (u_j, j) < (u_i, i)}, with NaN after every
    number, as torch.sort puts it. The order is total even with NaN (which compares false with everything,
    so without the flag several NaN slots would share a rank and leave places, and their indices, unwritten):
    the ranks are always a permutation of 0 .. N-1."""
    usage = tl.load(usage_ptr + slots, mask=mask, other=0.0)
    nan = usage != usage
    usage = tl.where(nan, 0.0, usage)
    rank = tl.zeros((BLOCK_N,), dtype=tl.int32)
    for start in range(0, N, BLOCK_N):
        others = start + tl.arange(0, BLOCK_N)
        other_usage = tl.load(usage_ptr + others, mask=others < N, other=0.0)
        other_nan = other_usage != other_usage
        other_usage = tl.where(other_nan, 0.0, other_usage)
        same_class = other_nan[None, :] == nan[:, None]
        before = (other_nan[None, :] < nan[:, None]) | (same_class & (
            (other_usage[None, :] < usage[:, None]) | (
                (other_usage[None, :] == usage[:, None]) & (others[None, :] < slots[:, None]))))
        rank += tl.sum((before & (others[None, :] < N)).to(tl.int32), axis=1)
    return rank


@triton.jit
def _sort_into(usage_ptr, order_ptr, sorted_ptr, N, BLOCK_N: tl.constexpr):
    """Scatter each slot's usage to sorted_ptr[rank] and its index to order_ptr[rank]."""
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = slots < N
        rank = _ranks(usage_ptr, N, slots, mask, BLOCK_N)
        tl.store(sorted_ptr + rank, tl.load(usage_ptr + slots, mask=mask, other=0.0), mask=mask)
        tl.store(order_ptr + rank, slots, mask=mask)


@triton.jit
def _multiply(a, b):
    return a * b


@triton.jit
def _compose(a_first, b_first, a_then, b_then):
    """Maps x ↦ a x + b, composed in scan order: x ↦ a_then (a_first x + b_first) + b_then."""
    return a_then * a_first, a_then * b_first + b_then


@triton.jit
def _products_before(sorted_ptr, places, mask, carry, BLOCK_N: tl.constexpr):
    """Π_{i<k} s_i at the sorted places k of one tile, and the carry into the next tile.

    ``carry`` is Π_{i < first place − 1}: the tile's scan starts from s at the place before its
    first, so the next carry is this tile's product at its last place.
    """
    previous = tl.load(sorted_ptr + places - 1, mask=mask & (places > 0), other=1.0)
    before = carry * tl.associative_scan(previous, 0, _multiply)
    return before, tl.sum(tl.where(tl.arange(0, BLOCK_N) == BLOCK_N - 1, before, 0.0), axis=0)


@triton.jit
def _allocation_forward_kernel(usage_ptr, out_ptr, order_ptr, sorted_ptr, N, BLOCK_N: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    usage_ptr += batch * N
    out_ptr += batch * N
    order_ptr += batch * N
    sorted_ptr += batch * N
    _sort_into(usage_ptr, order_ptr, sorted_ptr, N, BLOCK_N)
    tl.debug_barrier()
    carry = tl.load(sorted_ptr) * 0.0 + 1.0  # Π of the sorted usages before this tile
    for start in range(0, N, BLOCK_N):
        places = start + tl.arange(0, BLOCK_N)
        mask = places < N
        before, carry = _products_before(sorted_ptr, places, mask, carry, BLOCK_N)
        usage = tl.load(sorted_ptr + places, mask=mask, other=1.0)
        slots = tl.load(order_ptr + places, mask=mask, other=0)
        tl.store(out_ptr + slots, (1.0 - usage) * before, mask=mask)


@triton.jit
def _allocation_backward_kernel(sorted_ptr, order_ptr, grad_ptr, d_usage_ptr, N, BLOCK_N: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    sorted_ptr += batch * N
    order_ptr += batch * N
    grad_ptr += batch * N
    d_usage_ptr += batch * N
    # Q from the last sorted place back: tiles in reverse, each scanned back to front.
    carry = tl.load(sorted_ptr) * 0.0  # Q just after this tile
    tiles = tl.cdiv(N, BLOCK_N)
    for tile in range(0, tiles):
        start = (tiles - 1 - tile) * BLOCK_N
        backwards = start + BLOCK_N - 1 - tl.arange(0, BLOCK_N)  # places, last first
        mask = backwards < N
        following = backwards + 1
        has_next = following < N
        next_slot = tl.load(order_ptr + following, mask=has_next, other=0)
        next_usage = tl.load(sorted_ptr + following, mask=has_next, other=0.0)
        next_grad = tl.load(grad_ptr + next_slot, mask=has_next, other=0.0)
        scale, shift = tl.associative_scan((next_usage, next_grad * (1.0 - next_usage)), 0, _compose)
        q = scale * carry + shift
        carry = tl.sum(tl.where(tl.arange(0, BLOCK_N) == BLOCK_N - 1, q, 0.0), axis=0)
        slot = tl.load(order_ptr + backwards, mask=mask, other=0)
        grad = tl.load(grad_ptr + slot, mask=mask, other=0.0)
        tl.store(d_usage_ptr + slot, q - grad, mask=mask)  # × P below, once P is known
    tl.debug_barrier()
    product = tl.load(sorted_ptr) * 0.0 + 1.0
    for start in range(0, N, BLOCK_N):
        places = start + tl.arange(0, BLOCK_N)
        mask = places < N
        before, product = _products_before(sorted_ptr, places, mask, product, BLOCK_N)
        slot = tl.load(order_ptr + places, mask=mask, other=0)
        tl.store(d_usage_ptr + slot, tl.load(d_usage_ptr + slot, mask=mask, other=0.0) * before, mask=mask)


def allocation_launch(usage: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The allocation weights (B, N), the slot order (B, N) int32 (a permutation of each row's slots) and the
    sorted usage (B, N), from one launch of the forward kernel."""
    usage = usage.contiguous()
    batch, slots = usage.shape
    out = torch.empty_like(usage)
    order = torch.empty(batch, slots, dtype=torch.int32, device=usage.device)
    sorted_usage = torch.empty_like(usage)
    launch(_allocation_forward_kernel, (batch,), usage, out, order, sorted_usage, slots,
           **launch_blocks(1, slots)["_allocation_forward_kernel"], **LAUNCH)
    return out, order, sorted_usage


def allocation_forward(usage: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B,N) → (allocation (B,N); slot order (B,N) int32 and sorted usage (B,N) saved)."""
    return allocation_launch(usage)


def allocation_backward(usage: torch.Tensor, allocation: torch.Tensor, order: torch.Tensor,
                        sorted_usage: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor]:
    """(du,): one program per batch element, in the slots' sorted order."""
    batch, slots = sorted_usage.shape
    d_usage = torch.empty_like(sorted_usage)
    launch(_allocation_backward_kernel, (batch,), sorted_usage, order, grad, d_usage, slots,
           **launch_blocks(1, slots)["_allocation_backward_kernel"], **LAUNCH)
    return (d_usage,)


# -- temporal links --------------------------------------------------------------------------

@triton.jit
def _link_forward_kernel(link_ptr, precedence_ptr, write_ptr, new_link_ptr, new_precedence_ptr, N,
                         BLOCK_N: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    start = tl.program_id(1) * BLOCK_N
    link_ptr += batch * N * N
    new_link_ptr += batch * N * N
    precedence_ptr += batch * N
    write_ptr += batch * N
    rows = start + tl.arange(0, BLOCK_N)
    row_mask = rows < N
    write_rows = tl.load(write_ptr + rows, mask=row_mask, other=0.0)
    total = write_rows * 0.0
    for column_start in range(0, N, BLOCK_N):
        columns = column_start + tl.arange(0, BLOCK_N)
        column_mask = columns < N
        mask = row_mask[:, None] & column_mask[None, :]
        offsets = rows[:, None] * N + columns[None, :]
        link = tl.load(link_ptr + offsets, mask=mask, other=0.0)
        write_columns = tl.load(write_ptr + columns, mask=column_mask, other=0.0)
        precedence = tl.load(precedence_ptr + columns, mask=column_mask, other=0.0)
        new_link = (1.0 - write_rows[:, None] - write_columns[None, :]) * link
        new_link += write_rows[:, None] * precedence[None, :]
        tl.store(new_link_ptr + offsets, tl.where(rows[:, None] == columns[None, :], 0.0, new_link), mask=mask)
        total += write_columns
    written = tl.sum(total, axis=0)  # Σ_j w_j
    precedence = tl.load(precedence_ptr + rows, mask=row_mask, other=0.0)
    tl.store(new_precedence_ptr + batch * N + rows, (1.0 - written) * precedence + write_rows, mask=row_mask)


@triton.jit
def _link_backward_kernel(link_ptr, precedence_ptr, write_ptr, grad_link_ptr, grad_precedence_ptr,
                          d_link_ptr, d_write_ptr, column_parts_ptr, N, BLOCK_N: tl.constexpr):
    """dL, and per row tile: dw's row sums (complete for these rows) and the column sums' parts.

    column_parts (B, tiles, 2, N): Σ over this tile's rows i of G_ij w_i (→ dp_j) and of G_ij L_ij (→ dw_j).
    """
    batch = tl.program_id(0).to(tl.int64)
    tile = tl.program_id(1)
    start = tile * BLOCK_N
    link_ptr += batch * N * N
    grad_link_ptr += batch * N * N
    d_link_ptr += batch * N * N
    precedence_ptr += batch * N
    write_ptr += batch * N
    grad_precedence_ptr += batch * N
    column_parts_ptr += (batch * tl.num_programs(1) + tile) * 2 * N
    rows = start + tl.arange(0, BLOCK_N)
    row_mask = rows < N
    write_rows = tl.load(write_ptr + rows, mask=row_mask, other=0.0)
    d_write_rows = write_rows * 0.0
    grad_dot_precedence = write_rows * 0.0  # Σ_j g_p,j p_j, built up column tile by column tile
    for column_start in range(0, N, BLOCK_N):
        columns = column_start + tl.arange(0, BLOCK_N)
        column_mask = columns < N
        mask = row_mask[:, None] & column_mask[None, :] & (rows[:, None] != columns[None, :])
        offsets = rows[:, None] * N + columns[None, :]
        link = tl.load(link_ptr + offsets, mask=mask, other=0.0)
        grad = tl.load(grad_link_ptr + offsets, mask=mask, other=0.0)
        write_columns = tl.load(write_ptr + columns, mask=column_mask, other=0.0)
        precedence = tl.load(precedence_ptr + columns, mask=column_mask, other=0.0)
        d_link = grad * (1.0 - write_rows[:, None] - write_columns[None, :])
        tl.store(d_link_ptr + offsets, d_link, mask=row_mask[:, None] & column_mask[None, :])
        d_write_rows += tl.sum(grad * (precedence[None, :] - link), axis=1)
        tl.store(column_parts_ptr + columns, tl.sum(grad * write_rows[:, None], axis=0), mask=column_mask)
        tl.store(column_parts_ptr + N + columns, tl.sum(grad * link, axis=0), mask=column_mask)
        grad_precedence = tl.load(grad_precedence_ptr + columns, mask=column_mask, other=0.0)
        grad_dot_precedence += tl.where(tl.arange(0, BLOCK_N) == 0, tl.sum(grad_precedence * precedence, axis=0),
                                        0.0)
    grad_precedence_rows = tl.load(grad_precedence_ptr + rows, mask=row_mask, other=0.0)
    d_write_rows += grad_precedence_rows - tl.sum(grad_dot_precedence, axis=0)
    tl.store(d_write_ptr + batch * N + rows, d_write_rows, mask=row_mask)


def link_forward(link: torch.Tensor, precedence: torch.Tensor,
                 write_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,N,N), (B,N), (B,N) → (new link (B,N,N), new precedence (B,N)): one program per batch element and row tile."""
    inputs = [t.contiguous() for t in (link, precedence, write_weights)]
    batch, slots = precedence.shape
    new_link, new_precedence = torch.empty_like(inputs[0]), torch.empty_like(inputs[1])
    sizes = launch_blocks(1, slots)["_link_forward_kernel"]
    launch(_link_forward_kernel, (batch, triton.cdiv(slots, sizes["BLOCK_N"])), *inputs, new_link, new_precedence,
           slots, **sizes, **LAUNCH)
    return new_link, new_precedence


def link_backward(link: torch.Tensor, precedence: torch.Tensor, write_weights: torch.Tensor,
                  new_link: torch.Tensor, new_precedence: torch.Tensor, grad_link: torch.Tensor,
                  grad_precedence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dL, dp, dw): the kernel's row tiles, then their column sums."""
    link, precedence, write_weights = (t.contiguous() for t in (link, precedence, write_weights))
    batch, slots = precedence.shape
    sizes = launch_blocks(1, slots)["_link_backward_kernel"]
    tiles = triton.cdiv(slots, sizes["BLOCK_N"])
    d_link, d_write = torch.empty_like(link), torch.empty_like(write_weights)
    column_parts = link.new_empty(batch, tiles, 2, slots)
    launch(_link_backward_kernel, (batch, tiles), link, precedence, write_weights, grad_link, grad_precedence,
           d_link, d_write, column_parts, slots, **sizes, **LAUNCH)
    columns = column_parts.sum(1)  # (B, 2, N)
    written = write_weights.sum(-1, keepdim=True)
    d_precedence = columns[:, 0] + grad_precedence * (1 - written)
    return d_link, d_precedence, d_write - columns[:, 1]


@triton.jit
def _directional_forward_kernel(link_ptr, read_ptr, forward_ptr, backward_ptr, R, N,
                                BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr):
    """f[r, i] = Σ_j L_ij w_r[j] for the slots i of this tile, and b[r, i] = Σ_j L_ji w_r[j]."""
    batch = tl.program_id(0).to(tl.int64)
    start = tl.program_id(1) * BLOCK_N
    link_ptr += batch * N * N
    read_ptr += batch * R * N
    heads = tl.arange(0, BLOCK_R)
    slots = start + tl.arange(0, BLOCK_N)
    slot_mask = slots < N
    forward = tl.zeros((BLOCK_R, BLOCK_N), dtype=link_ptr.dtype.element_ty)
    backward = tl.zeros((BLOCK_R, BLOCK_N), dtype=link_ptr.dtype.element_ty)
    for other_start in range(0, N, BLOCK_N):
        others = other_start + tl.arange(0, BLOCK_N)
        other_mask = others < N
        weights = tl.load(read_ptr + heads[:, None] * N + others[None, :],
                          mask=(heads[:, None] < R) & other_mask[None, :], other=0.0)  # (R, j)
        mask = slot_mask[:, None] & other_mask[None, :]
        out_links = tl.load(link_ptr + slots[:, None] * N + others[None, :], mask=mask, other=0.0)  # L[i, j]
        in_links = tl.load(link_ptr + others[None, :] * N + slots[:, None], mask=mask, other=0.0)  # L[j, i]
        forward += tl.sum(out_links[None, :, :] * weights[:, None, :], axis=2)
        backward += tl.sum(in_links[None, :, :] * weights[:, None, :], axis=2)
    offsets = batch * R * N + heads[:, None] * N + slots[None, :]
    mask = (heads[:, None] < R) & slot_mask[None, :]
    tl.store(forward_ptr + offsets, forward, mask=mask)
    tl.store(backward_ptr + offsets, backward, mask=mask)


@triton.jit
def _directional_backward_kernel(link_ptr, read_ptr, grad_forward_ptr, grad_backward_ptr, d_link_ptr, d_read_ptr,
                                 R, N, BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr):
    """For the slots j of this tile: dw_r[j] = Σ_i g_f[r,i] L_ij + g_b[r,i] L_ji; and dL's rows i of this tile."""
    batch = tl.program_id(0).to(tl.int64)
    start = tl.program_id(1) * BLOCK_N
    link_ptr += batch * N * N
    d_link_ptr += batch * N * N
    read_ptr += batch * R * N
    grad_forward_ptr += batch * R * N
    grad_backward_ptr += batch * R * N
    heads = tl.arange(0, BLOCK_R)
    head_mask = heads < R
    slots = start + tl.arange(0, BLOCK_N)
    slot_mask = slots < N
    own = heads[:, None] * N + slots[None, :]
    own_mask = head_mask[:, None] & slot_mask[None, :]
    weights = tl.load(read_ptr + own, mask=own_mask, other=0.0)  # w_r[i], i in this tile
    grad_forward = tl.load(grad_forward_ptr + own, mask=own_mask, other=0.0)  # g_f[r, i]
    d_read = weights * 0.0
    for other_start in range(0, N, BLOCK_N):
        others = other_start + tl.arange(0, BLOCK_N)
        other_mask = others < N
        other_offsets = heads[:, None] * N + others[None, :]
        other_mask_2d = head_mask[:, None] & other_mask[None, :]
        other_weights = tl.load(read_ptr + other_offsets, mask=other_mask_2d, other=0.0)  # w_r[j]
        other_grad_forward = tl.load(grad_forward_ptr + other_offsets, mask=other_mask_2d, other=0.0)
        other_grad_backward = tl.load(grad_backward_ptr + other_offsets, mask=other_mask_2d, other=0.0)
        mask = slot_mask[:, None] & other_mask[None, :]
        # dL[i, j] for rows i of this tile: Σ_r g_f[r,i] w_r[j] + g_b[r,j] w_r[i]
        d_link = tl.sum(grad_forward[:, :, None] * other_weights[:, None, :]
                        + weights[:, :, None] * other_grad_backward[:, None, :], axis=0)
        tl.store(d_link_ptr + slots[:, None] * N + others[None, :], d_link, mask=mask)
        # dw_r[j] for j in this tile, summing over i = others: g_f[r,i] L[i,j] + g_b[r,i] L[j,i]
        in_links = tl.load(link_ptr + others[None, :] * N + slots[:, None], mask=mask, other=0.0)  # L[i=other, j]
        out_links = tl.load(link_ptr + slots[:, None] * N + others[None, :], mask=mask, other=0.0)  # L[j, i=other]
        d_read += tl.sum(in_links[None, :, :] * other_grad_forward[:, None, :]
                         + out_links[None, :, :] * other_grad_backward[:, None, :], axis=2)
    tl.store(d_read_ptr + batch * R * N + own, d_read, mask=own_mask)


def directional_forward(link: torch.Tensor, read_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,N,N), (B,R,N) → (forward (B,R,N), backward (B,R,N)): one program per batch element and slot tile."""
    link, read_weights = link.contiguous(), read_weights.contiguous()
    batch, heads, slots = read_weights.shape
    forward, backward = torch.empty_like(read_weights), torch.empty_like(read_weights)
    sizes = launch_blocks(heads, slots)["_directional_forward_kernel"]
    launch(_directional_forward_kernel, (batch, triton.cdiv(slots, sizes["BLOCK_N"])), link, read_weights,
           forward, backward, heads, slots, **sizes, **LAUNCH)
    return forward, backward


def directional_backward(link: torch.Tensor, read_weights: torch.Tensor, forward: torch.Tensor,
                         backward: torch.Tensor, grad_forward: torch.Tensor,
                         grad_backward: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dL, dw): one program per batch element and slot tile."""
    link, read_weights = link.contiguous(), read_weights.contiguous()
    batch, heads, slots = read_weights.shape
    d_link, d_read = torch.empty_like(link), torch.empty_like(read_weights)
    sizes = launch_blocks(heads, slots)["_directional_backward_kernel"]
    launch(_directional_backward_kernel, (batch, triton.cdiv(slots, sizes["BLOCK_N"])), link, read_weights,
           grad_forward, grad_backward, d_link, d_read, heads, slots, **sizes, **LAUNCH)
    return d_link, d_read


_usage = define("dnc_usage", usage_forward, usage_backward, outputs=1)
_allocation = define("dnc_allocation", allocation_forward, allocation_backward, outputs=1)
_link = define("dnc_link", link_forward, link_backward, outputs=2)
_directional = define("dnc_directional", directional_forward, directional_backward, outputs=2)


# -- the ops ---------------------------------------------------------------------------------

def dnc_usage(usage: torch.Tensor, write_weights: torch.Tensor, read_weights: torch.Tensor,
              free_gates: torch.Tensor) -> torch.Tensor:
    """The Triton implementation of :func:`cogdsl.ops.dnc_usage` (shapes checked there)."""
    return _usage(usage, write_weights, read_weights, free_gates)[0]


def dnc_allocation(usage: torch.Tensor) -> torch.Tensor:
    """The Triton implementation of :func:`cogdsl.ops.dnc_allocation` (shapes checked there)."""
    return _allocation(usage)[0]


def dnc_link(link: torch.Tensor, precedence: torch.Tensor,
             write_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The Triton implementation of :func:`cogdsl.ops.dnc_link` (shapes checked there)."""
    new_link, new_precedence = _link(link, precedence, write_weights)
    return new_link, new_precedence


def dnc_directional(link: torch.Tensor, read_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The Triton implementation of :func:`cogdsl.ops.dnc_directional` (shapes checked there)."""
    forward, backward = _directional(link, read_weights)
    return forward, backward
