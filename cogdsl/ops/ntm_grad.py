"""The NTM ops with backward passes derived by hand: the "torch" backend of those ops.

The equations are those of :mod:`cogdsl.ops.ntm` (the plain autograd versions, the
``"reference"`` backend, which the tests use as the oracle); here each op is a
``torch.autograd.Function`` whose backward
is written out, because autograd's generic graph of a dozen small ops per NTM stage is
where a CPU training step spends its time (``prod``'s backward alone re-checks its input
for zeros every step). The derivations, with p the op's output and g = dL/dp:

content   z = beta sim, sim_hi = (k_h . M_i) / (|k_h| |M_i| + eps), p = softmax_i(z)
          dz = p (g - sum_i g p);  dbeta = sum_i dz sim;  dsim = beta dz
          ddots = dsim / D;  dD = -dsim sim / D, with D = |k||M| + eps
          dk = ddots M + (sum_i dD |M_i|) k / |k|;   dM = ddots^T k + (sum_h dD |k_h|) M / |M|
shift     p_i = sum_k w_{(i - o_k) mod N} s_k
          dw = the same convolution of g with the offsets reversed;  ds_k = sum_i g_i w_{(i - o_k) mod N}
sharpen   x = (w + eps) / max(w + eps), p = x^gamma / sum x^gamma
          c = g - sum_i g p;  dw = gamma p c / (w + eps);  dgamma = sum_i p log(x) c
write     F_h = 1 - w_h e_h^T, M' = M o prod_h F_h + sum_h w_h a_h^T
          dM = G o prod F;  da_h = w_h^T G;  dF_h = (G o M) o prod_{j != h} F_j
          dw_h = G a_h - dF_h e_h;  de_h = -dF_h^T w_h
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from cogdsl.ops.backend import register
from cogdsl.ops.ntm import (
    COSINE_EPS,
    SHARPEN_EPS,
    SIMILARITIES,
    _shift_index,
    apply_stages,
    compose_memory_step,
    interpolate,
    read,
)

# Each stage as a forward that returns what its backward needs, and that backward. The
# single-op Functions and the fused ntm_address are compositions of these. What a backward
# needs always goes through ctx.save_for_backward: kept as a plain ctx attribute, a saved
# output would form a cycle (output -> grad_fn -> ctx -> output) that only the cyclic
# garbage collector frees, and a training loop's memory would grow step after step.
_CONTENT_SAVED, _SHIFT_SAVED, _SHARPEN_SAVED = 8, 2, 4

def _content_forward(memory: Tensor, keys: Tensor, strengths: Tensor, cosine: bool) -> tuple[Tensor, tuple]:
    dots = torch.bmm(keys, memory.transpose(1, 2))  # (B, H, N)
    if cosine:
        eps_sq = COSINE_EPS * COSINE_EPS
        key_norms = (keys.square().sum(-1) + eps_sq).sqrt_()  # (B, H)
        mem_norms = (memory.square().sum(-1) + eps_sq).sqrt_()  # (B, N)
        denom = torch.baddbmm(torch.full_like(dots, COSINE_EPS), key_norms.unsqueeze(-1), mem_norms.unsqueeze(1))
        sim = dots / denom
    else:
        key_norms = mem_norms = denom = None
        sim = dots
    weights = torch.softmax(strengths.unsqueeze(-1) * sim, dim=-1)
    return weights, (memory, keys, strengths, sim, weights, key_norms, mem_norms, denom)


def _content_backward(saved: tuple, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    memory, keys, strengths, sim, weights, key_norms, mem_norms, denom = saved
    dz = weights * (grad - (grad * weights).sum(-1, keepdim=True))  # (B, H, N)
    d_strengths = (dz * sim).sum(-1)
    d_sim = dz * strengths.unsqueeze(-1)
    if denom is None:
        return torch.bmm(d_sim.transpose(1, 2), keys), torch.bmm(d_sim, memory), d_strengths
    d_dots = d_sim / denom
    d_denom = -d_dots * sim  # (B, H, N)
    d_key_norms = torch.bmm(d_denom, mem_norms.unsqueeze(-1)).squeeze(-1)  # (B, H)
    d_mem_norms = torch.bmm(key_norms.unsqueeze(1), d_denom).squeeze(1)  # (B, N)
    d_keys = torch.baddbmm((d_key_norms / key_norms).unsqueeze(-1) * keys, d_dots, memory)
    d_memory = torch.baddbmm((d_mem_norms / mem_norms).unsqueeze(-1) * memory, d_dots.transpose(1, 2), keys)
    return d_memory, d_keys, d_strengths


def _windows(weights: Tensor, offsets: int) -> Tensor:
    """(B, H, N, K): windows[..., i, k] = w[(i - o_k) mod N] for offsets o_k = k - s."""
    b, h, n = weights.shape
    s = (offsets - 1) // 2
    if offsets <= n:
        padded = torch.cat([weights[..., n - s:], weights, weights[..., :s]], dim=-1)  # (B, H, N + 2s)
        return padded.unfold(-1, offsets, 1).flip(-1)  # window i holds w[i+s] .. w[i-s]
    rolled = weights.index_select(-1, _shift_index(n, offsets, weights.device)).view(b, h, offsets, n)
    return rolled.transpose(-1, -2)


def _shift_forward(weights: Tensor, shift_weights: Tensor) -> tuple[Tensor, tuple]:
    windows = _windows(weights, shift_weights.shape[-1])  # (B, H, N, K)
    return torch.matmul(windows, shift_weights.unsqueeze(-1)).squeeze(-1), (shift_weights, windows)


def _shift_backward(saved: tuple, grad: Tensor) -> tuple[Tensor, Tensor]:
    shift_weights, windows = saved
    reversed_windows = _windows(grad, shift_weights.shape[-1]).flip(-1)  # g[(i + o_k) mod N]
    d_weights = torch.matmul(reversed_windows, shift_weights.unsqueeze(-1)).squeeze(-1)
    d_shift = torch.matmul(grad.unsqueeze(-2), windows).squeeze(-2)  # (B, H, K)
    return d_weights, d_shift


def _sharpen_forward(weights: Tensor, gamma: Tensor) -> tuple[Tensor, tuple]:
    shifted = weights + SHARPEN_EPS
    log_x = (shifted / shifted.amax(dim=-1, keepdim=True)).log_()  # (B, H, N), <= 0
    powered = (log_x * gamma.unsqueeze(-1)).exp_()
    out = powered / powered.sum(-1, keepdim=True)
    return out, (shifted, log_x, gamma, out)


def _sharpen_backward(saved: tuple, grad: Tensor) -> tuple[Tensor, Tensor]:
    shifted, log_x, gamma, out = saved
    centred = out * (grad - (grad * out).sum(-1, keepdim=True))  # p (g - sum g p)
    return centred * gamma.unsqueeze(-1) / shifted, (centred * log_x).sum(-1)


def _stage_function(name: str, stage_forward: Any, stage_backward: Any, options: int = 0) -> Any:
    """An autograd Function for one stage; ``options`` trailing arguments are not tensors."""

    def forward(ctx: Any, *args: Any) -> Tensor:
        out, saved = stage_forward(*args)
        ctx.save_for_backward(*saved)
        return out

    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        return (*stage_backward(ctx.saved_tensors, grad), *(None,) * options)

    return type(name, (torch.autograd.Function,), {"forward": staticmethod(forward),
                                                   "backward": staticmethod(backward)})


ContentWeights = _stage_function("ContentWeights", _content_forward, _content_backward, options=1)
Shift = _stage_function("Shift", _shift_forward, _shift_backward)
Sharpen = _stage_function("Sharpen", _sharpen_forward, _sharpen_backward)


class NTMAddress(torch.autograd.Function):
    """content | gate | shift | sharpen, forward and backward with no autograd graph in between."""

    @staticmethod
    def forward(ctx: Any, memory: Tensor, previous: Tensor, keys: Tensor, strengths: Tensor, gate: Tensor,
                shift_weights: Tensor, gamma: Tensor, cosine: bool) -> Tensor:
        content, content_saved = _content_forward(memory, keys, strengths, cosine)
        g = gate.unsqueeze(-1)
        gated = previous + g * (content - previous)  # g w_c + (1 - g) w_prev
        shifted, shift_saved = _shift_forward(gated, shift_weights)
        out, sharpen_saved = _sharpen_forward(shifted, gamma)
        ctx.save_for_backward(*content_saved, *shift_saved, *sharpen_saved, content, previous, g)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        saved = ctx.saved_tensors
        shift_at, sharpen_at = _CONTENT_SAVED, _CONTENT_SAVED + _SHIFT_SAVED
        rest_at = sharpen_at + _SHARPEN_SAVED
        content_saved, shift_saved = saved[:shift_at], saved[shift_at:sharpen_at]
        sharpen_saved = saved[sharpen_at:rest_at]
        content, previous, g = saved[rest_at:]
        d_shifted, d_gamma = _sharpen_backward(sharpen_saved, grad)
        d_gated, d_shift = _shift_backward(shift_saved, d_shifted)
        d_gate = (d_gated * (content - previous)).sum(-1)
        d_previous = d_gated * (1 - g)
        d_memory, d_keys, d_strengths = _content_backward(content_saved, d_gated * g)
        return d_memory, d_previous, d_keys, d_strengths, d_gate, d_shift, d_gamma, None


class Write(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, memory: Tensor, weights: Tensor, erase: Tensor, add: Tensor) -> Tensor:
        weights_t = weights.transpose(1, 2)  # (B, N, H)
        if weights.shape[1] == 1:
            factors = None
            keep = 1 - torch.bmm(weights_t, erase)  # (B, N, W)
        else:
            factors = 1 - weights.unsqueeze(-1) * erase.unsqueeze(-2)  # (B, H, N, W)
            keep = factors.prod(dim=1)
        ctx.save_for_backward(memory, weights, erase, add, keep, factors)
        return torch.baddbmm(memory * keep, weights_t, add)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, ...]:
        memory, weights, erase, add, keep, factors = ctx.saved_tensors
        d_memory = grad * keep
        d_add = torch.bmm(weights, grad)  # (B, H, W)
        d_keep = grad * memory  # (B, N, W)
        if factors is None:
            d_weights = torch.bmm(add, grad.transpose(1, 2)) - torch.bmm(erase, d_keep.transpose(1, 2))  # (B, 1, N)
            d_erase = -torch.bmm(weights, d_keep)  # (B, 1, W)
        else:
            ones = torch.ones_like(factors[:, :1])
            before = torch.cat([ones, factors[:, :-1]], dim=1).cumprod(dim=1)  # prod_{j<h} F_j
            after = torch.cat([factors[:, 1:], ones], dim=1).flip(1).cumprod(dim=1).flip(1)  # prod_{j>h} F_j
            d_factors = d_keep.unsqueeze(1) * before * after  # (B, H, N, W)
            d_weights = torch.bmm(add, grad.transpose(1, 2)) - (d_factors * erase.unsqueeze(-2)).sum(-1)
            d_erase = -(d_factors * weights.unsqueeze(-1)).sum(-2)
        return d_memory, d_weights, d_erase, d_add


def content_weights(memory: Tensor, keys: Tensor, strengths: Tensor, similarity: str = "cosine") -> Tensor:
    if similarity not in SIMILARITIES:
        raise ValueError(f"content_weights: unknown similarity {similarity!r}; expected one of {SIMILARITIES}")
    return ContentWeights.apply(memory, keys, strengths, similarity == "cosine")


def shift(weights: Tensor, shift_weights: Tensor) -> Tensor:
    return Shift.apply(weights, shift_weights)


def sharpen(weights: Tensor, gamma: Tensor) -> Tensor:
    return Sharpen.apply(weights, gamma)


def write(memory: Tensor, weights: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    return Write.apply(memory, weights, erase, add)


def ntm_address(memory: Tensor, previous: Tensor, keys: Tensor, strengths: Tensor, gate: Tensor,
                shift_weights: Tensor, gamma: Tensor, similarity: str = "cosine") -> Tensor:
    if similarity not in SIMILARITIES:
        raise ValueError(f"ntm_address: unknown similarity {similarity!r}; expected one of {SIMILARITIES}")
    return NTMAddress.apply(memory, previous, keys, strengths, gate, shift_weights, gamma, similarity == "cosine")


ntm_memory_step = compose_memory_step(ntm_address, read, write)


def address(memory: Tensor, previous: Tensor, keys: Tensor | None = None, strengths: Tensor | None = None,
            gate: Tensor | None = None, shift_weights: Tensor | None = None, gamma: Tensor | None = None,
            similarity: str = "cosine") -> Tensor:
    if keys is not None and strengths is not None and gate is not None and shift_weights is not None \
            and gamma is not None:
        return ntm_address(memory, previous, keys, strengths, gate, shift_weights, gamma, similarity)
    return apply_stages((content_weights, interpolate, shift, sharpen), memory, previous, keys, strengths, gate,
                        shift_weights, gamma, similarity)


memory_step = compose_memory_step(address, read, write)
memory_step.__name__ = memory_step.__qualname__ = "memory_step"

# The "torch" backend of these ops; interpolate and read have no backward worth writing by hand, so
# their "torch" backend is their reference. address and memory_step use the stages' hand-written backwards.
for _fn in (content_weights, shift, sharpen, write, ntm_address, ntm_memory_step, address, memory_step):
    register(_fn.__name__, "torch", _fn)
del _fn
