"""PyTorch reference implementations of the DNC's memory-management ops.

The equations of Graves et al. (2016), "Hybrid computing using a neural network with dynamic
external memory", Methods, "Dynamic memory allocation" and "Temporal memory linkage", batch
first. They are registered under the ``"torch"`` backend; the public, shape-checked entry
points are in :mod:`cogdsl.ops`, which documents them. The Triton kernels
(:mod:`cogdsl.kernels.dnc`) are tested against these functions.

Shape letters: B batch, N memory slots, R read heads.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cogdsl.ops.backend import register

__all__ = ["dnc_allocation", "dnc_directional", "dnc_link", "dnc_usage"]


def dnc_usage(usage: Tensor, write_weights: Tensor, read_weights: Tensor, free_gates: Tensor) -> Tensor:
    """(u + w − u∘w) ∘ Π_r(1 − f_r w_r): (B,N), (B,N), (B,R,N), (B,R) → (B,N)."""
    retention = torch.prod(1 - free_gates.unsqueeze(-1) * read_weights, dim=1)  # ψ (B, N)
    return (usage + write_weights - usage * write_weights) * retention


def dnc_allocation(usage: Tensor) -> Tensor:
    """a[φ_j] = (1 − u[φ_j]) Π_{i<j} u[φ_i], φ the ascending (stable) sort of u: (B,N) → (B,N)."""
    sorted_usage, order = torch.sort(usage, dim=-1, stable=True)  # (B, N)
    ones = torch.ones_like(sorted_usage[..., :1])
    before = torch.cumprod(torch.cat([ones, sorted_usage[..., :-1]], dim=-1), dim=-1)  # Π_{i<j}
    return torch.zeros_like(usage).scatter(-1, order, (1 - sorted_usage) * before)


def dnc_link(link: Tensor, precedence: Tensor, write_weights: Tensor) -> tuple[Tensor, Tensor]:
    """L'[i,j] = (1 − w_i − w_j) L[i,j] + w_i p[j] (zero diagonal); p' = (1 − Σ_i w_i) p + w.

    (B,N,N), (B,N), (B,N) → ((B,N,N), (B,N)).
    """
    w_i = write_weights.unsqueeze(-1)  # (B, N, 1)
    w_j = write_weights.unsqueeze(-2)  # (B, 1, N)
    new_link = (1 - w_i - w_j) * link + w_i * precedence.unsqueeze(-2)
    off_diagonal = 1 - torch.eye(link.shape[-1], dtype=link.dtype, device=link.device)
    new_precedence = (1 - write_weights.sum(-1, keepdim=True)) * precedence + write_weights
    return new_link * off_diagonal, new_precedence


def dnc_directional(link: Tensor, read_weights: Tensor) -> tuple[Tensor, Tensor]:
    """forward f_r = L w_r, backward b_r = Lᵀ w_r: (B,N,N), (B,R,N) → ((B,R,N), (B,R,N))."""
    forward = torch.bmm(read_weights, link.transpose(1, 2))  # f[r, i] = Σ_j L[i, j] w_r[j]
    backward = torch.bmm(read_weights, link)  # b[r, i] = Σ_j L[j, i] w_r[j]
    return forward, backward


for _fn in (dnc_usage, dnc_allocation, dnc_link, dnc_directional):
    register(_fn.__name__, "torch", _fn)
del _fn
