"""The Dynamic NTM's ``lru`` and ``hard`` addressing (Gulcehre et al. 2016): LRU content weights and slot sampling.

    lru_content_weights   z = β sim(k, M_i);  w = softmax_i(z − γ v)          → (w, z), each (B,H,N)
    sample_slots          i_h = first i with w_i > 0 and Σ_{j≤i} w_j > u_h Σ_j w_j  (or argmax_i w_i)
                          log π = Σ_h log max(w[h,i_h], tiny);  H = −Σ_h Σ_i w log max(w, tiny)

References: :func:`cogdsl.ops.dntm.lru_content_weights` and :func:`cogdsl.ops.dntm.sample_slots` (which says
what a head with no positive weight, or a NaN, picks). Every kernel runs one program per batch element with
all its heads, walking the slots in tiles of ``BLOCK_N``.

LRU. The similarity is :mod:`~cogdsl.kernels.content`'s tile (``similarity_tile``), and the softmax is
online as there: one pass over the memory stores sim and z and keeps each head's running maximum and sum
of z − γ v; a second pass over the small (H, N) arrays writes w. Backward, with g = dL/dw and dz_in =
dL/dz (the caller's average update reads z)::

    c = w (g − Σ_i g w)                      the softmax's share, per slot
    dv = −γ c;   dγ = −Σ_i v c;   dz = dz_in + c

and dz goes back through z = β sim to the memory, the keys and the strengths by ``logits_grad_tile``
(the content backward after its softmax) and ``finish_key_grads``.

Sampling. Pass 1 over the weights sums each head's row, its entropy, its last positive slot and, for
argmax, its first maximum; pass 2 (sample) walks the running cumulative sum, ``tl.cumsum`` within a tile
plus the carry of the tiles before, to the first crossing of u Σ w; pass 3 writes the one-hot. The chosen
slot is in [0, N) by construction (a minimum with the last positive slot, and slot 0 for a row with no
positive or a non-finite weight) before the weight there is loaded for log π. The backward is elementwise:
dw = −dH log ŵ + [w ≥ tiny] (−dH w + dlogπ [i = i_h]) / ŵ, ŵ = max(w, tiny), as autograd differentiates the
clamp; the chosen slots are saved (−1 for a head whose weights are not all finite: its log π term is NaN
and passes no gradient, as the reference's ``masked_fill``).

Memory traffic per batch element (fp32, H heads): LRU forward reads M once (4NW bytes), v twice and z once,
and writes sim, z and w (H, N); backward reads M once and writes dM (8NW bytes), reads w and g twice and
dz_in, v and sim once, and writes dv. Sampling reads w three times (twice for argmax) and writes the one-hot, 16HN bytes
(12HN); its backward reads w and writes dw, 8HN.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from cogdsl.kernels.content import finish_key_grads, load_keys, logits_grad_tile, similarity_tile
from cogdsl.kernels.library import define, launch
from cogdsl.kernels.tiles import LAUNCH, blocks, contiguous, load_rows, store_rows

__all__ = [
    "lru_backward",
    "lru_content_weights",
    "lru_forward",
    "sample_backward",
    "sample_forward",
    "sample_slots",
]

_INF = tl.constexpr(float("inf"))
_NAN = tl.constexpr(float("nan"))


# -- LRU content weights: one program per batch element ------------------------------------------

@triton.jit
def _lru_forward_kernel(memory_ptr, keys_ptr, strengths_ptr, average_ptr, gamma_ptr, weights_ptr, logits_ptr,
                        sim_ptr, H, N, W, COSINE: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
                        BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    memory_ptr += batch * N * W
    keys_ptr += batch * H * W
    strengths_ptr += batch * H
    gamma_ptr += batch * H
    average_ptr += batch * H * N
    weights_ptr += batch * H * N
    logits_ptr += batch * H * N
    sim_ptr += batch * H * N
    heads = tl.arange(0, BLOCK_H)
    head_mask = heads < H
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    keys, strengths, key_norms = load_keys(keys_ptr, strengths_ptr, H, W, heads, columns, column_mask)
    gamma = tl.load(gamma_ptr + heads, mask=head_mask, other=0.0)
    row_max = strengths * 0.0 - 1.0e30  # of z − γ v so far
    row_sum = strengths * 0.0  # Σ exp(z − γ v − row_max) so far
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = head_mask[:, None] & (slots[None, :] < N)
        offsets = heads[:, None] * N + slots[None, :]
        memory = load_rows(memory_ptr + start * W, tl.arange(0, BLOCK_N), N - start, W, columns, column_mask)
        sim, _ = similarity_tile(memory, keys, key_norms, COSINE)
        logits = strengths[:, None] * sim
        tl.store(sim_ptr + offsets, sim, mask=mask)
        tl.store(logits_ptr + offsets, logits, mask=mask)
        average = tl.load(average_ptr + offsets, mask=mask, other=0.0)
        shifted = tl.where(mask, logits - gamma[:, None] * average, -1.0e38)
        new_max = tl.maximum(row_max, tl.max(shifted, axis=1))
        row_sum = row_sum * tl.exp(row_max - new_max) + tl.sum(tl.exp(shifted - new_max[:, None]), axis=1)
        row_max = new_max
    row_max = tl.where(head_mask, row_max, 0.0)  # padded heads: finite weights, never stored
    row_sum = tl.where(head_mask, row_sum, 1.0)
    tl.debug_barrier()  # the logits were written by other threads of this program
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = head_mask[:, None] & (slots[None, :] < N)
        offsets = heads[:, None] * N + slots[None, :]
        logits = tl.load(logits_ptr + offsets, mask=mask, other=0.0)
        average = tl.load(average_ptr + offsets, mask=mask, other=0.0)
        weights = tl.exp(logits - gamma[:, None] * average - row_max[:, None]) / row_sum[:, None]
        tl.store(weights_ptr + offsets, weights, mask=mask)


@triton.jit
def _lru_backward_kernel(memory_ptr, keys_ptr, strengths_ptr, average_ptr, gamma_ptr, weights_ptr, sim_ptr,
                         d_weights_ptr, d_logits_ptr, d_memory_ptr, d_keys_ptr, d_strengths_ptr, d_average_ptr,
                         d_gamma_ptr, H, N, W, COSINE: tl.constexpr, BLOCK_H: tl.constexpr,
                         BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    memory_ptr += batch * N * W
    d_memory_ptr += batch * N * W
    keys_ptr += batch * H * W
    d_keys_ptr += batch * H * W
    strengths_ptr += batch * H
    d_strengths_ptr += batch * H
    gamma_ptr += batch * H
    d_gamma_ptr += batch * H
    average_ptr += batch * H * N
    weights_ptr += batch * H * N
    sim_ptr += batch * H * N
    d_weights_ptr += batch * H * N
    d_logits_ptr += batch * H * N
    d_average_ptr += batch * H * N
    heads = tl.arange(0, BLOCK_H)
    head_mask = heads < H
    columns = tl.arange(0, BLOCK_W)
    column_mask = columns < W
    keys, strengths, key_norms = load_keys(keys_ptr, strengths_ptr, H, W, heads, columns, column_mask)
    gamma = tl.load(gamma_ptr + heads, mask=head_mask, other=0.0)
    centre = strengths * 0.0  # Σ_i g w
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = head_mask[:, None] & (slots[None, :] < N)
        offsets = heads[:, None] * N + slots[None, :]
        weights = tl.load(weights_ptr + offsets, mask=mask, other=0.0)
        centre += tl.sum(weights * tl.load(d_weights_ptr + offsets, mask=mask, other=0.0), axis=1)
    d_keys = keys * 0.0
    d_key_norms = centre * 0.0
    d_strengths = centre * 0.0
    d_gamma = centre * 0.0
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = head_mask[:, None] & (slots[None, :] < N)
        offsets = heads[:, None] * N + slots[None, :]
        weights = tl.load(weights_ptr + offsets, mask=mask, other=0.0)
        softmax = weights * (tl.load(d_weights_ptr + offsets, mask=mask, other=0.0) - centre[:, None])  # c
        average = tl.load(average_ptr + offsets, mask=mask, other=0.0)
        tl.store(d_average_ptr + offsets, -gamma[:, None] * softmax, mask=mask)
        d_gamma -= tl.sum(average * softmax, axis=1)
        d_logits = tl.load(d_logits_ptr + offsets, mask=mask, other=0.0) + softmax
        tile_rows = tl.arange(0, BLOCK_N)
        memory = load_rows(memory_ptr + start * W, tile_rows, N - start, W, columns, column_mask)
        d_memory, d_keys_part, d_key_norms_part, d_strengths_part = logits_grad_tile(
            memory, keys, key_norms, strengths, tl.load(sim_ptr + offsets, mask=mask, other=0.0), d_logits, COSINE)
        store_rows(d_memory_ptr + start * W, d_memory, tile_rows, N - start, W, columns, column_mask)
        d_keys += d_keys_part
        d_key_norms += d_key_norms_part
        d_strengths += d_strengths_part
    finish_key_grads(d_keys_ptr, d_strengths_ptr, d_keys, d_key_norms, d_strengths, keys, key_norms,
                     H, W, heads, columns, column_mask)
    tl.store(d_gamma_ptr + heads, d_gamma, mask=head_mask)


# -- slot sampling: one program per batch element ---------------------------------------------------

@triton.jit
def _tiny(weights_ptr):
    """The smallest normal number of the weights' dtype, torch.finfo(dtype).tiny."""
    if weights_ptr.dtype.element_ty == tl.float64:
        tiny = 2.2250738585072014e-308
    else:
        tiny = 1.1754943508222875e-38
    return tiny


@triton.jit
def _sample_forward_kernel(weights_ptr, noise_ptr, one_hot_ptr, log_prob_ptr, entropy_ptr, chosen_ptr, H, N,
                           ARGMAX: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    weights_ptr += batch * H * N
    one_hot_ptr += batch * H * N
    noise_ptr += batch * H
    chosen_ptr += batch * H
    tiny = _tiny(weights_ptr)
    heads = tl.arange(0, BLOCK_H)
    head_mask = heads < H
    zero = tl.zeros((BLOCK_H,), dtype=weights_ptr.dtype.element_ty)
    total = zero  # Σ_i w
    entropy = zero  # −Σ_i w log max(w, tiny)
    best = zero - _INF  # argmax: the largest weight so far, and its first slot
    best_slot = heads * 0
    last = heads * 0 - 1  # the last slot with a positive weight, −1 if none
    bad = heads * 0  # how many weights are not finite
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = head_mask[:, None] & (slots[None, :] < N)
        weights = tl.load(weights_ptr + heads[:, None] * N + slots[None, :], mask=mask, other=0.0)
        total += tl.sum(weights, axis=1)
        log_weights = tl.log(tl.where(weights < tiny, tiny, weights))  # a NaN stays NaN, as clamp_min keeps it
        entropy -= tl.sum(weights * log_weights, axis=1)
        bad += tl.sum(tl.where(mask & ~(tl.abs(weights) < _INF), 1, 0), axis=1)
        last = tl.maximum(last, tl.max(tl.where(mask & (weights > 0), slots[None, :], -1), axis=1))
        if ARGMAX:
            tile_best = tl.max(tl.where(mask, weights, -_INF), axis=1)
            tile_slot = tl.min(tl.where(mask & (weights == tile_best[:, None]), slots[None, :], N), axis=1)
            better = tile_best > best  # strictly: an earlier tile keeps a tie
            best_slot = tl.where(better, tile_slot, best_slot)
            best = tl.where(better, tile_best, best)
    if ARGMAX:
        chosen = best_slot
    else:
        threshold = tl.load(noise_ptr + heads, mask=head_mask, other=0.0) * total  # u Σ w
        carry = zero  # Σ w over the tiles before this one
        first = heads * 0 + N  # the first crossing, N if none
        for start in range(0, N, BLOCK_N):
            slots = start + tl.arange(0, BLOCK_N)
            mask = head_mask[:, None] & (slots[None, :] < N)
            weights = tl.load(weights_ptr + heads[:, None] * N + slots[None, :], mask=mask, other=0.0)
            cumulative = tl.cumsum(weights, axis=1) + carry[:, None]
            crossed = mask & (weights > 0) & (cumulative > threshold[:, None])
            first = tl.minimum(first, tl.min(tl.where(crossed, slots[None, :], N), axis=1))
            carry += tl.sum(weights, axis=1)
        chosen = tl.minimum(first, last)
    chosen = tl.where((bad > 0) | (chosen < 0) | (chosen >= N), 0, chosen)  # in [0, N) whatever the weights
    picked = tl.load(weights_ptr + heads * N + chosen, mask=head_mask, other=1.0)
    log_prob = tl.where(bad > 0, _NAN, tl.log(tl.where(picked < tiny, tiny, picked)))
    tl.store(log_prob_ptr + batch, tl.sum(tl.where(head_mask, log_prob, 0.0), axis=0))
    tl.store(entropy_ptr + batch, tl.sum(tl.where(head_mask, entropy, 0.0), axis=0))
    tl.store(chosen_ptr + heads, tl.where(bad > 0, -1, chosen), mask=head_mask)  # −1: no log π gradient
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = head_mask[:, None] & (slots[None, :] < N)
        tl.store(one_hot_ptr + heads[:, None] * N + slots[None, :],
                 tl.where(slots[None, :] == chosen[:, None], 1.0, 0.0), mask=mask)


@triton.jit
def _sample_backward_kernel(weights_ptr, chosen_ptr, d_log_prob_ptr, d_entropy_ptr, d_weights_ptr, H, N,
                            BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    weights_ptr += batch * H * N
    d_weights_ptr += batch * H * N
    chosen_ptr += batch * H
    tiny = _tiny(weights_ptr)
    heads = tl.arange(0, BLOCK_H)
    head_mask = heads < H
    chosen = tl.load(chosen_ptr + heads, mask=head_mask, other=-1)
    d_log_prob = tl.load(d_log_prob_ptr + batch)
    d_entropy = tl.load(d_entropy_ptr + batch)
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = head_mask[:, None] & (slots[None, :] < N)
        offsets = heads[:, None] * N + slots[None, :]
        weights = tl.load(weights_ptr + offsets, mask=mask, other=1.0)
        clamped = tl.where(weights < tiny, tiny, weights)
        d_log_weights = tl.where(slots[None, :] == chosen[:, None], d_log_prob, 0.0) - d_entropy * weights
        d_weights = -d_entropy * tl.log(clamped) + tl.where(weights >= tiny, d_log_weights / clamped, 0.0)
        tl.store(d_weights_ptr + offsets, d_weights, mask=mask)


# -- the launchers, as custom ops -----------------------------------------------------------------

def lru_forward(memory: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor, average: torch.Tensor,
                gamma: torch.Tensor, cosine: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """memory (B,N,W), keys (B,H,W), strengths (B,H), average (B,H,N), gamma (B,H) → (w, z; sim saved), each
    (B,H,N): one program per batch element."""
    memory, keys, strengths, average, gamma = contiguous(memory, keys, strengths, average, gamma)
    batch, slots, width = memory.shape
    heads = keys.shape[1]
    weights = memory.new_empty(batch, heads, slots)
    logits, sim = torch.empty_like(weights), torch.empty_like(weights)
    launch(_lru_forward_kernel, (batch,), memory, keys, strengths, average, gamma, weights, logits, sim, heads,
           slots, width, COSINE=cosine, **LAUNCH, **blocks(heads, slots, width))
    return weights, logits, sim


def lru_backward(memory: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor, average: torch.Tensor,
                 gamma: torch.Tensor, weights: torch.Tensor, logits: torch.Tensor, sim: torch.Tensor,
                 d_weights: torch.Tensor, d_logits: torch.Tensor, cosine: bool
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dM, dk, dβ, dv, dγ): one program per batch element."""
    memory, keys, strengths, average, gamma = contiguous(memory, keys, strengths, average, gamma)
    batch, slots, width = memory.shape
    heads = keys.shape[1]
    d_memory, d_keys, d_strengths, d_average, d_gamma = (
        torch.empty_like(t) for t in (memory, keys, strengths, average, gamma))
    launch(_lru_backward_kernel, (batch,), memory, keys, strengths, average, gamma, weights, sim, d_weights,
           d_logits, d_memory, d_keys, d_strengths, d_average, d_gamma, heads, slots, width, COSINE=cosine,
           **LAUNCH, **blocks(heads, slots, width))
    return d_memory, d_keys, d_strengths, d_average, d_gamma


#: The most values of one (BLOCK_H, BLOCK_N) tile of the sampling kernels: 8 a thread over 8 warps, with a
#: few such tiles live (the weights, their cumulative sum, masks and slot indices).
PAIR_TILE = 2048


def sample_blocks(heads: int, slots: int) -> dict[str, int]:
    """BLOCK_H, BLOCK_N and num_warps of the sampling kernels: :func:`~cogdsl.kernels.tiles.blocks`' (with its
    :func:`cogdsl.kernels.tiling` cap), BLOCK_N further capped so a tile holds at most :data:`PAIR_TILE`."""
    sizes = {k: v for k, v in blocks(heads, slots, 1).items() if k != "BLOCK_W"}
    sizes["BLOCK_N"] = min(sizes["BLOCK_N"], max(1, PAIR_TILE // sizes["BLOCK_H"]))
    return sizes


def sample_forward(weights: torch.Tensor, noise: torch.Tensor, argmax: bool
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """weights (B,H,N), noise (B,H) → (one-hot (B,H,N), log π (B,), entropy (B,); the chosen slots (B,H) int64
    saved, −1 where the weights are not all finite): one program per batch element."""
    weights, noise = contiguous(weights, noise.to(weights.dtype))
    batch, heads, slots = weights.shape
    one_hot = torch.empty_like(weights)
    log_prob, entropy = weights.new_empty(batch), weights.new_empty(batch)
    chosen = torch.empty(batch, heads, dtype=torch.int64, device=weights.device)
    launch(_sample_forward_kernel, (batch,), weights, noise, one_hot, log_prob, entropy, chosen, heads, slots,
           ARGMAX=argmax, **LAUNCH, **sample_blocks(heads, slots))
    return one_hot, log_prob, entropy, chosen


def sample_backward(weights: torch.Tensor, noise: torch.Tensor, one_hot: torch.Tensor, log_prob: torch.Tensor,
                    entropy: torch.Tensor, chosen: torch.Tensor, d_one_hot: torch.Tensor | None,
                    d_log_prob: torch.Tensor | None, d_entropy: torch.Tensor | None,
                    argmax: bool) -> tuple[torch.Tensor]:
    """(dw,): one program per batch element. The one-hot's gradient is never read (the choice is constant)."""
    weights = weights.contiguous()
    batch, heads, slots = weights.shape
    d_log_prob = log_prob.new_zeros(batch) if d_log_prob is None else d_log_prob
    d_entropy = entropy.new_zeros(batch) if d_entropy is None else d_entropy
    d_weights = torch.empty_like(weights)
    launch(_sample_backward_kernel, (batch,), weights, chosen, d_log_prob, d_entropy, d_weights, heads, slots,
           **LAUNCH, **sample_blocks(heads, slots))
    return (d_weights,)


_lru = define("lru_content_weights", lru_forward, lru_backward, outputs=2)
_sample = define("sample_slots", sample_forward, sample_backward, outputs=3, differentiable=(True, False),
                 materialize=False)


def lru_content_weights(memory: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor, average: torch.Tensor,
                        gamma: torch.Tensor, similarity: str = "cosine") -> tuple[torch.Tensor, torch.Tensor]:
    """The Triton implementation of :func:`cogdsl.ops.lru_content_weights` (shapes checked there)."""
    weights, logits = _lru(memory, keys, strengths, average, gamma, similarity == "cosine")
    return weights, logits


def sample_slots(weights: torch.Tensor, noise: torch.Tensor,
                 mode: str = "sample") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Triton implementation of :func:`cogdsl.ops.sample_slots` (shapes checked there). The one-hot is
    detached: as the reference's, it carries no gradient."""
    one_hot, log_prob, entropy = _sample(weights, noise, mode == "argmax")
    return one_hot.detach(), log_prob, entropy
