"""DRAW's selective attention (Gregor et al. 2015, "DRAW: A Recurrent Neural Network For Image
Generation", section 3): an N x N grid of Gaussian filters, placed by the query, reads a patch
of an image or writes a patch onto a canvas::

    input  img: image(size=28)
    output x: 784 = sigmoid(w)                     # the canvas is the picture: no linear layer
    draw_read  r(n=5) on img <- dec@prev
    lstm       enc(hidden=128) <- r, dec@prev
    lstm       dec(hidden=128) <- enc
    draw_write w(n=5, size=28) <- dec

From the query q, a linear layer gives (g~x, g~y, log sigma², log delta~, log gamma) and, for
an A x A image or canvas with pixels 0 .. A - 1 (section 3.2, eq. 19-22 and 25-29)::

    g_x = (A - 1)/2 (g~x + 1),  g_y = (A - 1)/2 (g~y + 1)      grid centre
    delta = (A - 1)/(N - 1) exp(log delta~)                     stride between filters
    mu_x^i = g_x + (i - N/2 + 1/2) delta,  i = 0 .. N - 1         filter centres (likewise y)
    F_X[i, a] = exp(-(a - mu_x^i)² / (2 sigma²)) / Z_X^i          each row sums to 1

    read:   r = gamma F_Y x F_X^T                                  (N x N)
    write:  c_t = c_{t-1} + (1/gamma) F_Y^T w_t F_X,  w_t = W q + b (N x N)

The written canvas c_t (A x A, before a sigmoid) is the block's value and its state; an
output that reads it alone takes it as its logits.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from cogdsl.blocks.base import LookKind, LookModule, Param, register
from cogdsl.blocks.visual import CORNERS


def filterbank(centre: torch.Tensor, stride: torch.Tensor, variance: torch.Tensor, filters: int,
               length: int) -> torch.Tensor:
    """F[i, a] of the module docstring: centre, stride, variance (B,) → (B, filters, length), rows summing to 1."""
    offsets = torch.arange(filters, dtype=centre.dtype, device=centre.device) - filters / 2 + 0.5
    means = centre[:, None] + offsets * stride[:, None]  # (B, filters)
    pixels = torch.arange(length, dtype=centre.dtype, device=centre.device)
    weights = torch.exp(-(pixels - means[:, :, None]).pow(2) / (2 * variance[:, None, None]))
    return weights / weights.sum(-1, keepdim=True).clamp_min(1e-8)


class GaussianGrid(nn.Module):
    """The query's linear layer to (g_x, g_y, sigma², delta, gamma), and the two filterbanks."""

    def __init__(self, query_size: int, side: int, filters: int):
        super().__init__()
        self.side, self.filters = side, filters
        self.place = nn.Linear(query_size, 5)

    def forward(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """query (B, Q) → F_X, F_Y (B, N, A), gamma (B,), and where it looked, (g_x, g_y, delta, sigma, gamma)
        (B, 5)."""
        grid_x, grid_y, log_variance, log_stride, log_intensity = self.place(query).unbind(-1)
        centre_x = (self.side - 1) / 2 * (grid_x + 1)
        centre_y = (self.side - 1) / 2 * (grid_y + 1)
        stride = (self.side - 1) / (self.filters - 1) * torch.exp(log_stride)
        variance = torch.exp(log_variance)
        intensity = torch.exp(log_intensity)
        filter_x = filterbank(centre_x, stride, variance, self.filters, self.side)
        filter_y = filterbank(centre_y, stride, variance, self.filters, self.side)
        where = torch.stack([centre_x, centre_y, stride, variance.sqrt(), intensity], -1)
        return filter_x, filter_y, intensity, where


class DrawRead(LookModule):
    """r = gamma F_Y x F_X^T: query (B, Q), image (B, A, A) → (B, N²), and where it looked (B, 5)."""

    def __init__(self, query_size: int, side: int, filters: int):
        super().__init__()
        self.grid = GaussianGrid(query_size, side, filters)

    def forward(self, query: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        filter_x, filter_y, intensity, where = self.grid(query)
        patch = filter_y @ image @ filter_x.transpose(1, 2)
        return (intensity[:, None, None] * patch).flatten(1), where


class DrawWrite(LookModule):
    """c_t = c_{t-1} + (1/gamma) F_Y^T w_t F_X: query (B, Q), canvas (B, A²) → (B, A²), where (B, 5), the canvas."""

    def __init__(self, query_size: int, side: int, filters: int):
        super().__init__()
        self.side, self.filters = side, filters
        self.grid = GaussianGrid(query_size, side, filters)
        self.patch = nn.Linear(query_size, filters * filters)

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        """c_0 = 0, (B, A²)."""
        return like.new_zeros(batch, self.side * self.side)

    def forward(self, query: torch.Tensor, seen: None, canvas: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        filter_x, filter_y, intensity, where = self.grid(query)
        patch = self.patch(query).view(-1, self.filters, self.filters)
        written = filter_y.transpose(1, 2) @ patch @ filter_x / intensity[:, None, None]
        canvas = canvas + written.flatten(1)
        return canvas, where, canvas


@register
class DrawReadKind(LookKind):
    kind = "draw_read"
    example = (
        "input img: image(size=8)\n"
        "output y: 64 = sigmoid(w)\n"
        "draw_read r({params}) on img <- d@prev\n"
        "lstm d(hidden=6) <- r\n"
        "draw_write w(size=8) <- d\n")
    doc = ("DRAW's read (Gregor et al. 2015) `on` an image: an N x N grid of Gaussian filters, centre, stride, "
           "width and intensity from its sources; value the read patch, (B, N²).")
    params: ClassVar = (Param("n", int, 5, minimum=2, maximum=64, doc="filters per side"),)
    looks_over: ClassVar[tuple[str, ...]] = ("image",)

    @classmethod
    def value_size(cls, params: dict[str, Any], target_size: int | None) -> int:
        return params["n"] ** 2

    @classmethod
    def make(cls, params: dict[str, Any], query_size: int, target_size: int | None) -> nn.Module:
        assert target_size is not None  # the image's side
        return DrawRead(query_size, target_size, params["n"])

    @classmethod
    def trace_places(cls, name: str, seen: Any, side: int, module: Any, trace: dict[str, Any]
                     ) -> dict[str, dict[str, Any]]:
        """The square its filter centres span: (g_x, g_y, delta, sigma, gamma) in pixels."""
        return {"regions": {name: filter_square(seen, module)}}

    @classmethod
    def describe(cls, name: str, params: dict[str, Any], sources: str, target: str | None, size: int) -> str:
        return (f"draw_read {name}: a {params['n']}x{params['n']} grid of Gaussian filters placed by [{sources}] "
                f"reads {target} -> {size}")


@register
class DrawWriteKind(LookKind):
    kind = "draw_write"
    example = (
        "input img: image(size=8)\n"
        "output y: {canvas} = sigmoid(w)\n"
        "draw_read r on img <- d@prev\n"
        "lstm d(hidden=6) <- r\n"
        "draw_write w({params}) <- d\n")
    example_params: ClassVar[dict[str, Any]] = {"size": 8}
    doc = ("DRAW's write (Gregor et al. 2015): its sources write an N x N patch through a grid of Gaussian "
           "filters onto a size x size canvas that accumulates over the steps; value the canvas (B, size²), "
           "an output's logits.")
    params: ClassVar = (Param("n", int, 5, minimum=2, maximum=64, doc="filters per side"),
                        Param("size", int, minimum=2, maximum=512, doc="the canvas side, in pixels"))
    accepts = frozenset({"from"})
    requires = frozenset({"from"})
    stateful = True
    gives_logits = True

    @classmethod
    def value_size(cls, params: dict[str, Any], target_size: int | None) -> int:
        return params["size"] ** 2

    @classmethod
    def make(cls, params: dict[str, Any], query_size: int, target_size: int | None) -> nn.Module:
        return DrawWrite(query_size, params["size"], params["n"])

    @classmethod
    def trace_places(cls, name: str, seen: Any, side: int, module: Any, trace: dict[str, Any]
                     ) -> dict[str, dict[str, Any]]:
        """Its canvas after each step, through a sigmoid: (N, T, A, A)."""
        canvas = torch.sigmoid(trace[f"{name}:state"].float().cpu())
        return {"canvases": {name: canvas.view(*canvas.shape[:2], module.side, -1)}}

    @classmethod
    def describe(cls, name: str, params: dict[str, Any], sources: str, target: str | None, size: int) -> str:
        return (f"draw_write {name}: a {params['n']}x{params['n']} grid of Gaussian filters placed by [{sources}] "
                f"adds a patch to a {params['size']}x{params['size']} canvas (its state) -> {size}")


def filter_square(seen: torch.Tensor, module: Any) -> torch.Tensor:
    """The corners (N, T, 4, 2) of the square a grid of filters' centres span, from its parameters (g_x, g_y,
    delta, sigma, gamma) in pixels, (N, T, 5)."""
    half = seen[..., 2:3] * (module.grid.filters - 1) / 2
    return seen[..., None, :2] + half[..., None] * CORNERS[:, :2]
