"""Graves' Gaussian window (Graves 2013, "Generating Sequences With Recurrent Neural Networks",
section 5.1, eq. 46-51): a soft window over a sequence whose position can only move forward,
as in handwriting synthesis, where the pen reads the text it writes letter by letter::

    input  src: sequence(size=8)
    output y: 8 = softmax(dec, win)
    window win(k=2) on src <- dec@prev
    lstm   dec(hidden=32) <- y@prev, win

From the query q, a linear layer gives K importances, widths and steps, all through exp; the
window's K positions kappa are its state, starting at 0. Over the sequence c_1 .. c_U (the
positions u count from 1, as in the paper, so a first step of exp(0) = 1 lands on c_1)::

    (a^, b^, k^) = W q + b                   each (B, K)
    alpha = exp(a^),  beta = exp(b^),  kappa_t = kappa_{t-1} + exp(k^)
    phi(t, u) = sum_k alpha_k exp(-beta_k (kappa_k - u)²)          (B, U)
    w_t = sum_u phi(t, u) c_u                                      (B, D)

The value is w_t; ``cogdsl trace`` draws phi, one row per step, like an alignment matrix.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from cogdsl.blocks.base import LookKind, LookModule, Param, register


def window_weights(importance: torch.Tensor, width: torch.Tensor, position: torch.Tensor,
                   length: int) -> torch.Tensor:
    """phi(u) = sum_k alpha_k exp(-beta_k (kappa_k - u)²) for u = 1 .. length: each (B, K) → (B, length)."""
    places = torch.arange(1, length + 1, dtype=position.dtype, device=position.device)
    bumps = torch.exp(-width[:, :, None] * (position[:, :, None] - places).pow(2))  # (B, K, U)
    return (importance[:, :, None] * bumps).sum(1)


class Window(LookModule):
    """query (B, Q), sequence (B, U, D), kappa_{t-1} (B, K) → w_t (B, D), phi (B, 1, U), kappa_t (B, K)."""

    def __init__(self, query_size: int, components: int):
        super().__init__()
        self.components = components
        self.place = nn.Linear(query_size, 3 * components)

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        """kappa_0 = 0, (B, K)."""
        return like.new_zeros(batch, self.components)

    def forward(self, query: torch.Tensor, sequence: torch.Tensor, position: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        importance, width, advance = torch.exp(self.place(query)).chunk(3, -1)
        position = position + advance
        weights = window_weights(importance, width, position, sequence.shape[1])
        value = torch.bmm(weights.unsqueeze(1), sequence).squeeze(1)
        return value, weights.unsqueeze(1), position  # one "head", so trace draws it as an alignment


@register
class WindowKind(LookKind):
    kind = "window"
    example = (
        "input src: sequence(size=4)\n"
        "output y: 3 = softmax(d, a)\n"
        "window a({params}) on src <- d@prev\n"
        "gru d(hidden=6) <- a\n")
    doc = ("Graves' Gaussian window (Graves 2013) `on` a sequence: K Gaussians with importance, width and a "
           "position that only moves forward, placed by its sources; value the windowed sum of the elements, "
           "(B, D).")
    params: ClassVar = (Param("k", int, 1, minimum=1, maximum=64, doc="Gaussian components"),)
    looks_over: ClassVar[tuple[str, ...]] = ("sequence",)
    stateful = True

    @classmethod
    def value_size(cls, params: dict[str, Any], target_size: int | None) -> int:
        assert target_size is not None  # the sequence's element size
        return target_size

    @classmethod
    def make(cls, params: dict[str, Any], query_size: int, target_size: int | None) -> nn.Module:
        return Window(query_size, params["k"])

    @classmethod
    def describe(cls, name: str, params: dict[str, Any], sources: str, target: str | None, size: int) -> str:
        return (f"window {name}: {params['k']} Gaussian(s) placed by [{sources}], their positions only moving "
                f"forward (kept in the state), weigh the elements of {target} -> {size}")
