"""The NTM's addressing stages one at a time: gate, shift and sharpen (Graves et al. 2014, §3.3).

    interpolate   w_g = g w_c + (1 − g) w_prev                       (B,H,N), (B,H,N), (B,H) → (B,H,N)
    shift         w̃[i] = Σ_k s_k w[(i − o_k) mod N],  o_k = k − s    (B,H,N), (B,H,K) → (B,H,N)
    sharpen       w[i] = x_i^γ / Σ_j x_j^γ,  x = (w̃ + ε) / max(w̃ + ε)  (B,H,N), (B,H) → (B,H,N)

References: :func:`cogdsl.ops.ntm.interpolate`, :func:`~cogdsl.ops.ntm.shift` and
:func:`~cogdsl.ops.ntm.sharpen`; ε is :data:`cogdsl.ops.ntm.SHARPEN_EPS`. :mod:`~cogdsl.kernels.ntm_address`
fuses the three (with the content stage) for the whole addressing; these are the stages on their own, for
a model that composes them differently. Every kernel runs one program per (batch element, head) row and
walks its N slots in tiles of ``BLOCK_N``. Sharpen keeps max(w̃ + ε) and Σ x^γ online (when the maximum
grows from t to t', the running sum is rescaled by (t / t')^γ), then a second pass writes w.

Memory traffic per (B, H) row of N slots (fp32): interpolate forward reads 2 rows and writes 1 (12N
bytes), backward reads 3 and writes 2 (20N); shift forward reads w K times (mostly from cache) and writes
1, backward reads w and dw̃ K times and writes dw; sharpen forward reads w̃ twice and writes 1 (12N),
backward reads w, dw̃ twice and w̃ once and writes dw̃ (24N). The (B, H) and (B, H, K) arrays are small
beside them.

Backward, with G = dL/d(output):
    interpolate   dw_c = g G;  dw_prev = (1 − g) G;  dg = Σ_i G_i (w_c[i] − w_prev[i])
    shift         dw[j] = Σ_k s_k G[(j + o_k) mod N];  ds_k = Σ_i G_i w[(i − o_k) mod N]
    sharpen       c = p (G − Σ G p);  dw̃ = γ c / (w̃ + ε);  dγ = Σ c log x      (p the output)
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from cogdsl.kernels.library import define, launch
from cogdsl.kernels.tiles import LAUNCH, SHARPEN_EPS, blocks, contiguous

__all__ = [
    "interpolate",
    "interpolate_backward",
    "interpolate_forward",
    "sharpen",
    "sharpen_backward",
    "sharpen_forward",
    "shift",
    "shift_backward",
    "shift_forward",
]


# -- the kernels: one program per (batch element, head) row ------------------------------------

@triton.jit
def _interpolate_forward_kernel(content_ptr, previous_ptr, gate_ptr, out_ptr, N, BLOCK_N: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    content_ptr += row * N
    previous_ptr += row * N
    out_ptr += row * N
    gate = tl.load(gate_ptr + row)
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = slots < N
        content = tl.load(content_ptr + slots, mask=mask, other=0.0)
        previous = tl.load(previous_ptr + slots, mask=mask, other=0.0)
        tl.store(out_ptr + slots, gate * content + (1.0 - gate) * previous, mask=mask)


@triton.jit
def _interpolate_backward_kernel(content_ptr, previous_ptr, gate_ptr, grad_ptr, d_content_ptr, d_previous_ptr,
                                 d_gate_ptr, N, BLOCK_N: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    content_ptr += row * N
    previous_ptr += row * N
    grad_ptr += row * N
    d_content_ptr += row * N
    d_previous_ptr += row * N
    gate = tl.load(gate_ptr + row)
    d_gate = gate * 0.0
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = slots < N
        content = tl.load(content_ptr + slots, mask=mask, other=0.0)
        previous = tl.load(previous_ptr + slots, mask=mask, other=0.0)
        grad = tl.load(grad_ptr + slots, mask=mask, other=0.0)
        tl.store(d_content_ptr + slots, gate * grad, mask=mask)
        tl.store(d_previous_ptr + slots, (1.0 - gate) * grad, mask=mask)
        d_gate += tl.sum(grad * (content - previous), axis=0)
    tl.store(d_gate_ptr + row, d_gate)


@triton.jit
def _shift_forward_kernel(weights_ptr, shift_ptr, out_ptr, N, K, BLOCK_N: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    weights_ptr += row * N
    out_ptr += row * N
    shift_ptr += row * K
    half = (K - 1) // 2
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = slots < N
        shifted = tl.zeros((BLOCK_N,), dtype=weights_ptr.dtype.element_ty)
        for k in range(K):
            source = ((slots - (k - half)) % N + N) % N  # (i − o_k) mod N, o_k = k − s
            shifted += tl.load(shift_ptr + k) * tl.load(weights_ptr + source, mask=mask, other=0.0)
        tl.store(out_ptr + slots, shifted, mask=mask)


@triton.jit
def _shift_backward_kernel(weights_ptr, shift_ptr, grad_ptr, d_weights_ptr, d_shift_ptr, N, K,
                           BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    weights_ptr += row * N
    grad_ptr += row * N
    d_weights_ptr += row * N
    shift_ptr += row * K
    d_shift_ptr += row * K
    half = (K - 1) // 2
    offsets_k = tl.arange(0, BLOCK_K)
    d_shift = tl.zeros((BLOCK_K,), dtype=weights_ptr.dtype.element_ty)
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = slots < N
        grad = tl.load(grad_ptr + slots, mask=mask, other=0.0)
        d_weights = grad * 0.0
        for k in range(K):
            ahead = ((slots + (k - half)) % N + N) % N  # (j + o_k) mod N
            d_weights += tl.load(shift_ptr + k) * tl.load(grad_ptr + ahead, mask=mask, other=0.0)
            behind = ((slots - (k - half)) % N + N) % N  # (i − o_k) mod N
            part = tl.sum(grad * tl.load(weights_ptr + behind, mask=mask, other=0.0), axis=0)
            d_shift += tl.where(offsets_k == k, part, 0.0)
        tl.store(d_weights_ptr + slots, d_weights, mask=mask)
    tl.store(d_shift_ptr + offsets_k, d_shift, mask=offsets_k < K)


@triton.jit
def _sharpen_forward_kernel(weights_ptr, gamma_ptr, out_ptr, top_ptr, N, BLOCK_N: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    weights_ptr += row * N
    out_ptr += row * N
    gamma = tl.load(gamma_ptr + row)
    top = gamma * 0.0 + SHARPEN_EPS  # max(w̃ + ε) so far: every lifted weight is at least ε
    power_sum = gamma * 0.0  # Σ ((w̃ + ε) / top)^γ so far
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = slots < N
        lifted = tl.load(weights_ptr + slots, mask=mask, other=0.0) + SHARPEN_EPS
        new_top = tl.maximum(top, tl.max(tl.where(mask, lifted, 0.0), axis=0))
        powered = tl.where(mask, tl.exp(gamma * tl.log(lifted / new_top)), 0.0)
        power_sum = power_sum * tl.exp(gamma * tl.log(top / new_top)) + tl.sum(powered, axis=0)
        top = new_top
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = slots < N
        lifted = tl.load(weights_ptr + slots, mask=mask, other=0.0) + SHARPEN_EPS
        tl.store(out_ptr + slots, tl.exp(gamma * tl.log(lifted / top)) / power_sum, mask=mask)
    tl.store(top_ptr + row, top)


@triton.jit
def _sharpen_backward_kernel(weights_ptr, gamma_ptr, out_ptr, top_ptr, grad_ptr, d_weights_ptr, d_gamma_ptr, N,
                             BLOCK_N: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    weights_ptr += row * N
    out_ptr += row * N
    grad_ptr += row * N
    d_weights_ptr += row * N
    gamma = tl.load(gamma_ptr + row)
    top = tl.load(top_ptr + row)
    centre = gamma * 0.0  # Σ G p
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = slots < N
        out = tl.load(out_ptr + slots, mask=mask, other=0.0)
        centre += tl.sum(out * tl.load(grad_ptr + slots, mask=mask, other=0.0), axis=0)
    d_gamma = gamma * 0.0
    for start in range(0, N, BLOCK_N):
        slots = start + tl.arange(0, BLOCK_N)
        mask = slots < N
        out = tl.load(out_ptr + slots, mask=mask, other=0.0)
        centred = out * (tl.load(grad_ptr + slots, mask=mask, other=0.0) - centre)
        lifted = tl.load(weights_ptr + slots, mask=mask, other=0.0) + SHARPEN_EPS
        d_gamma += tl.sum(tl.where(mask, centred * tl.log(lifted / top), 0.0), axis=0)
        tl.store(d_weights_ptr + slots, gamma * centred / lifted, mask=mask)
    tl.store(d_gamma_ptr + row, d_gamma)


# -- the launchers, as custom ops -----------------------------------------------------------------

def _rows(weights: torch.Tensor) -> int:
    """How many (batch element, head) rows a (B, H, N) array has: one program each."""
    return weights.shape[0] * weights.shape[1]


#: The largest slot tile of a row: 8 values a thread over 4 warps. ptxas spills at 8192 (fp64 and the
#: backwards), with several (BLOCK_N,) rows live; at 1024 no kernel here spills, on sm_90 or sm_80.
ROW_TILE = 1024


def _tile(slots: int) -> int:
    """BLOCK_N for a row of ``slots``: at most :data:`ROW_TILE`, and within :func:`cogdsl.kernels.tiling`'s cap."""
    return min(blocks(1, slots, 1)["BLOCK_N"], ROW_TILE)


def interpolate_forward(content: torch.Tensor, previous: torch.Tensor, gate: torch.Tensor) -> tuple[torch.Tensor]:
    """(B,H,N), (B,H,N), (B,H) → (w_g (B,H,N),): one program per (batch element, head)."""
    content, previous, gate = contiguous(content, previous, gate)
    out = torch.empty_like(content)
    slots = content.shape[2]
    launch(_interpolate_forward_kernel, (_rows(content),), content, previous, gate, out, slots,
           BLOCK_N=_tile(slots), **LAUNCH)
    return (out,)


def interpolate_backward(content: torch.Tensor, previous: torch.Tensor, gate: torch.Tensor, out: torch.Tensor,
                         d_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dw_c, dw_prev, dg): one program per (batch element, head)."""
    content, previous, gate = contiguous(content, previous, gate)
    d_content, d_previous, d_gate = torch.empty_like(content), torch.empty_like(previous), torch.empty_like(gate)
    slots = content.shape[2]
    launch(_interpolate_backward_kernel, (_rows(content),), content, previous, gate, d_out, d_content, d_previous,
           d_gate, slots, BLOCK_N=_tile(slots), **LAUNCH)
    return d_content, d_previous, d_gate


def shift_forward(weights: torch.Tensor, shift_weights: torch.Tensor) -> tuple[torch.Tensor]:
    """(B,H,N), (B,H,K) → (w̃ (B,H,N),): one program per (batch element, head)."""
    weights, shift_weights = contiguous(weights, shift_weights)
    out = torch.empty_like(weights)
    slots, offsets = weights.shape[2], shift_weights.shape[2]
    launch(_shift_forward_kernel, (_rows(weights),), weights, shift_weights, out, slots, offsets,
           BLOCK_N=_tile(slots), **LAUNCH)
    return (out,)


def shift_backward(weights: torch.Tensor, shift_weights: torch.Tensor, out: torch.Tensor,
                   d_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dw, ds): one program per (batch element, head)."""
    weights, shift_weights = contiguous(weights, shift_weights)
    d_weights, d_shift = torch.empty_like(weights), torch.empty_like(shift_weights)
    slots, offsets = weights.shape[2], shift_weights.shape[2]
    launch(_shift_backward_kernel, (_rows(weights),), weights, shift_weights, d_out, d_weights, d_shift, slots,
           offsets, BLOCK_N=_tile(slots), BLOCK_K=triton.next_power_of_2(max(offsets, 1)), **LAUNCH)
    return d_weights, d_shift


def sharpen_forward(weights: torch.Tensor, gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,H,N), (B,H) → (w (B,H,N); max(w̃ + ε) (B,H) saved): one program per (batch element, head)."""
    weights, gamma = contiguous(weights, gamma)
    out, top = torch.empty_like(weights), torch.empty_like(gamma)
    slots = weights.shape[2]
    launch(_sharpen_forward_kernel, (_rows(weights),), weights, gamma, out, top, slots, BLOCK_N=_tile(slots),
           **LAUNCH)
    return out, top


def sharpen_backward(weights: torch.Tensor, gamma: torch.Tensor, out: torch.Tensor, top: torch.Tensor,
                     d_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dw̃, dγ): one program per (batch element, head)."""
    weights, gamma = contiguous(weights, gamma)
    d_weights, d_gamma = torch.empty_like(weights), torch.empty_like(gamma)
    slots = weights.shape[2]
    launch(_sharpen_backward_kernel, (_rows(weights),), weights, gamma, out, top, d_out, d_weights, d_gamma, slots,
           BLOCK_N=_tile(slots), **LAUNCH)
    return d_weights, d_gamma


_interpolate = define("interpolate", interpolate_forward, interpolate_backward, outputs=1)
_shift = define("shift", shift_forward, shift_backward, outputs=1)
_sharpen = define("sharpen", sharpen_forward, sharpen_backward, outputs=1)


def interpolate(content: torch.Tensor, previous: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """The Triton implementation of :func:`cogdsl.ops.interpolate` (shapes checked there)."""
    return _interpolate(content, previous, gate)[0]


def shift(weights: torch.Tensor, shift_weights: torch.Tensor) -> torch.Tensor:
    """The Triton implementation of :func:`cogdsl.ops.shift` (shapes checked there)."""
    return _shift(weights, shift_weights)[0]


def sharpen(weights: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """The Triton implementation of :func:`cogdsl.ops.sharpen` (shapes checked there)."""
    return _sharpen(weights, gamma)[0]
