"""Visual attention: blocks that look at a whole image, (B, H, W), declared as ``image(size=N)``.

``conv`` reads the image once per forward (like an encoder) into a grid of feature vectors
that ``attention`` can look over, region by region (Xu et al. 2015, "Show, Attend and
Tell"). ``spatial_transformer`` and ``glimpse`` run at every step, from a query (their
sources), and return what they saw as one vector::

    input  img: image(size=40)
    output y: 10 = softmax(core)
    glimpse g(size=8, scales=3) on img <- core@prev     # RAM: look where the last step chose
    rnn     core(hidden=128) <- g

Image coordinates are normalised to [-1, 1] on both axes (x along the columns), as in
``F.affine_grid``; a location (0, 0) is the centre of the image.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cogdsl.blocks.attention import EncoderKind
from cogdsl.blocks.base import LookKind, LookModule, Param, register
from cogdsl.blocks.runtime import Build
from cogdsl.errors import DiagnosticSink
from cogdsl.language.spec import Block
from cogdsl.reinforce import Decision

if TYPE_CHECKING:
    from cogdsl.compiler.shapes import Shapes

# -- a feature grid ---------------------------------------------------------------------------


class ConvEncoder(nn.Module):
    """``layers`` times: x <- maxpool_p(relu(conv_k(x))); then the grid (B, C, h, w) as a sequence of
    its h·w regions, row by row, (B, h·w, C). With ``coords`` each region also carries where it is, its
    centre (x, y) in [-1, 1] (as CoordConv, Liu et al. 2018): (B, h·w, C + 2), so that a context
    Σ_i α_i a_i says where it looked as well as what it saw."""

    def __init__(self, channels: int, layers: int, kernel: int, pool: int, coords: bool = False):
        super().__init__()
        self.coords = coords
        modules: list[nn.Module] = []
        width = 1
        for _ in range(layers):
            modules += [nn.Conv2d(width, channels, kernel, padding=kernel // 2), nn.ReLU()]
            if pool > 1:
                modules.append(nn.MaxPool2d(pool))
            width = channels
        self.net = nn.Sequential(*modules)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image (B, H, W) → regions (B, h·w, channels), or (B, h·w, channels + 2) with ``coords``."""
        grid = self.net(image.unsqueeze(1))  # (B, C, h, w)
        regions = grid.flatten(2).transpose(1, 2)
        if not self.coords:
            return regions
        h, w = grid.shape[-2:]
        ys = (2 * torch.arange(h, dtype=regions.dtype, device=regions.device) + 1) / h - 1
        xs = (2 * torch.arange(w, dtype=regions.dtype, device=regions.device) + 1) / w - 1
        where = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(h * w, 2)  # (h·w, 2): x, y
        return torch.cat([regions, where.expand(regions.shape[0], -1, -1)], -1)


@register
class ConvKind(EncoderKind):
    kind = "conv"
    example = (
        "input img: image(size=12)\n"
        "output y: 3 = softmax(n)\n"
        "conv f({params}) <- img\n"
        "summary p(mode=mean) on f\n"
        "mlp n(hidden=6) <- p\n")
    doc = ("Convolutional encoder over a whole `image`: `layers` of conv + relu + max-pool, its feature grid "
           "as a sequence of regions (B, h·w, channels), run once per forward, for `attention` or `summary`.")
    params: ClassVar = (Param("channels", int, 16, minimum=1, maximum=4096, doc="feature maps per layer"),
                        Param("layers", int, 2, minimum=1, maximum=8),
                        Param("kernel", int, 3, minimum=1, maximum=15, doc="square kernel side (odd keeps the size)"),
                        Param("pool", int, 2, minimum=1, maximum=8, doc="max-pool after each layer (1: none)"),
                        Param("coords", bool, False,
                              doc="append each region's centre (x, y) in [-1, 1] to its features (CoordConv)"))
    takes = ("image",)

    @classmethod
    def output_size(cls, params: dict[str, Any], input_size: int) -> int:
        return params["channels"] + (2 if params.get("coords") else 0)

    @classmethod
    def check_shapes(cls, block: Block, shapes: Shapes, sink: DiagnosticSink) -> None:
        """It leaves a grid of at least one region of its image."""
        if not block.sources or block.sources[0].name not in shapes.sides:
            return
        side, p = shapes.sides[block.sources[0].name], shapes.params[block.name]
        if conv_grid_side(p, side) < 1:
            sink.error("E501", f"size mismatch: conv '{block.name}' pools its {side}x{side} image away: "
                       f"{p['layers']} layer(s) of kernel {p['kernel']} and pool {p['pool']} leave no region",
                       block.span, "use fewer layers, a smaller pool, or a larger image")

    @classmethod
    def make(cls, params: dict[str, Any], input_size: int) -> nn.Module:
        return ConvEncoder(params["channels"], params["layers"], params["kernel"], params["pool"],
                           params.get("coords", False))

    @classmethod
    def describe(cls, b: Build) -> str:
        p = b.params
        return (f"encoder {b.name}: {p['layers']} x (conv {p['kernel']}x{p['kernel']}, relu"
                + (f", max-pool {p['pool']}" if p["pool"] > 1 else "") + f") over the image {b.sources()}"
                + (", each region's (x, y) appended, " if p.get("coords") else ", ")
                + f"-> (B, regions, {b.shapes.sizes[b.name]}), at the first step only (kept in the state)")


def conv_grid_side(params: dict[str, Any], side: int) -> int:
    """The side of the feature grid a ``conv`` block makes of an image of ``side`` pixels (0: none left)."""
    for _ in range(params["layers"]):
        side = (side + 2 * (params["kernel"] // 2) - params["kernel"] + 1) // params["pool"]
        if side < 1:
            return 0
    return side


CORNERS = torch.tensor([[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]])
"""The corners of the output square in normalised homogeneous coordinates, for drawing a sampled region."""


def to_pixels(points: torch.Tensor, side: int) -> torch.Tensor:
    """Normalised coordinates in [-1, 1] → pixel coordinates, pixel centres at integers (align_corners=False)."""
    return ((points + 1) * side - 1) / 2


def grid_side(regions: int) -> int:
    """The side of a square feature grid of ``regions`` regions."""
    return math.isqrt(regions)


# -- looking at part of the image, at every step -----------------------------------------------


class VisualKind(LookKind):
    """Blocks that look at an image input (``on``) from a query (their sources), once per step."""

    looks_over: ClassVar[tuple[str, ...]] = ("image",)


def sample_square(image: torch.Tensor, centre: torch.Tensor, half_width: torch.Tensor, points: int) -> torch.Tensor:
    """Bilinear samples of a square window of the image, zero outside it (Jaderberg et al. 2015, 3.3).

    image (B, H, W); centre (B, 2) as (x, y) and half_width (B,) or a number, in normalised
    coordinates → (B, points, points): the window's pixel i, j sits at
    centre + half_width · ((2j + 1) / points - 1, (2i + 1) / points - 1).
    """
    batch = image.shape[0]
    half = torch.as_tensor(half_width, dtype=image.dtype, device=image.device).expand(batch)
    zeros = torch.zeros_like(half)
    theta = torch.stack([torch.stack([half, zeros, centre[:, 0]], -1),
                         torch.stack([zeros, half, centre[:, 1]], -1)], 1)  # (B, 2, 3)
    return transform_image(image, theta, points)


def transform_image(image: torch.Tensor, theta: torch.Tensor, points: int) -> torch.Tensor:
    """Sample the image on the grid theta · (x, y, 1) of a points x points output: image (B, H, W), theta
    (B, 2, 3) → (B, points, points); bilinear, zero outside the image."""
    grid = F.affine_grid(theta, [image.shape[0], 1, points, points], align_corners=False)
    return F.grid_sample(image.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False).squeeze(1)


class SpatialTransformer(LookModule):
    """A spatial transformer (Jaderberg et al. 2015): the query q (B, Q) regresses a transform, which
    samples a size x size patch of the image::

        affine     theta = W q + b                              (6 numbers)
        attention  (s, t_x, t_y) = W q + b,  theta = [[s, 0, t_x], [0, s, t_y]]   (scale and shift)

    W starts at zero and b at the identity, so it starts by looking at the whole image. The
    patch is differentiable in theta, so the query learns where to look from the loss.
    """

    def __init__(self, query_size: int, size: int, transform: str):
        super().__init__()
        self.size, self.transform = size, transform
        self.locate = nn.Linear(query_size, 6 if transform == "affine" else 3)
        nn.init.zeros_(self.locate.weight)
        with torch.no_grad():
            self.locate.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1, 0] if transform == "affine" else [1.0, 0, 0]))

    def theta(self, query: torch.Tensor) -> torch.Tensor:
        """query (B, Q) → theta (B, 2, 3)."""
        raw = self.locate(query)
        if self.transform == "affine":
            return raw.view(-1, 2, 3)
        scale, shift_x, shift_y = raw.unbind(-1)
        zeros = torch.zeros_like(scale)
        return torch.stack([torch.stack([scale, zeros, shift_x], -1), torch.stack([zeros, scale, shift_y], -1)], 1)

    def forward(self, query: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, Q), image (B, H, W) → the patch (B, size²) and theta (B, 6), for pictures."""
        theta = self.theta(query)
        patch = transform_image(image, theta, self.size)
        return patch.flatten(1), theta.flatten(1)


@register
class SpatialTransformerKind(VisualKind):
    kind = "spatial_transformer"
    example = (
        "input img: image(size=12)\n"
        "output y: 3 = softmax(n)\n"
        "mlp l(hidden=6) <- img\n"
        "spatial_transformer t({params}) on img <- l\n"
        "mlp n(hidden=6) <- t\n")
    example_params: ClassVar[dict[str, Any]] = {"size": 5}
    doc = ("Spatial transformer (Jaderberg et al. 2015) `on` an image: its sources regress an affine (or "
           "scale-and-shift) transform that bilinearly samples a size x size patch; value (B, size²).")
    params: ClassVar = (Param("size", int, minimum=1, maximum=512, doc="side of the sampled patch, in pixels"),
                        Param("transform", str, "affine", choices=("affine", "attention"),
                              doc="affine: 6 parameters; attention: scale and shift only"))

    @classmethod
    def value_size(cls, params: dict[str, Any], target_size: int | None) -> int:
        return params["size"] ** 2

    @classmethod
    def make(cls, params: dict[str, Any], query_size: int, target_size: int | None) -> nn.Module:
        return SpatialTransformer(query_size, params["size"], params["transform"])

    @classmethod
    def trace_places(cls, name: str, seen: Any, side: int, module: Any, trace: dict[str, Any]
                     ) -> dict[str, dict[str, Any]]:
        """The region it sampled: the output square's corners through its transform theta."""
        theta = seen.view(*seen.shape[:2], 2, 3)
        return {"regions": {name: to_pixels(torch.einsum("ntij,cj->ntci", theta, CORNERS), side)}}

    @classmethod
    def describe(cls, name: str, params: dict[str, Any], sources: str, target: str | None, size: int) -> str:
        return (f"spatial_transformer {name}: {params['transform']} transform = W [{sources}] + b (identity at "
                f"first) samples a {params['size']}x{params['size']} patch of {target} -> {size}")


class Glimpse(LookModule):
    """RAM's glimpse sensor with a Gaussian location policy (Mnih et al. 2014, 3.1 and 3.3).

    The query q (B, Q) gives the mean location mu = tanh(W q + b), (B, 2); training samples
    l ~ N(mu, std² I) (held fixed: the location learns by REINFORCE only), evaluation takes
    l = mu. The retina rho(x, l) is ``scales`` square patches centred at l, the k-th
    size · 2^k pixels wide and averaged down to size x size. The value is [rho(x, l) ; l],
    (B, scales · size² + 2). Each sample records a :class:`~cogdsl.reinforce.Decision`::

        log pi(l) = sum_d -(l_d - mu_d)² / (2 std²) - log std - log(2 pi) / 2
        b = w . q + c   (q with no gradient)
    """

    samples = True

    def __init__(self, query_size: int, side: int, size: int, scales: int, std: float):
        super().__init__()
        self.side, self.size, self.scales, self.std = side, size, scales, std
        self.locate = nn.Linear(query_size, 2)
        self.baseline = nn.Linear(query_size, 1)
        self.decision: Decision | None = None

    def retina(self, image: torch.Tensor, location: torch.Tensor) -> torch.Tensor:
        """rho(x, l): image (B, H, W), location (B, 2) → (B, scales, size, size)."""
        patches = []
        for k in range(self.scales):
            points = self.size * 2 ** k
            window = sample_square(image, location, points / self.side, points)
            patches.append(F.avg_pool2d(window.unsqueeze(1), 2 ** k).squeeze(1) if k else window)
        return torch.stack(patches, 1)

    def forward(self, query: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, Q), image (B, H, W) → the glimpse (B, scales · size² + 2) and the location (B, 2)."""
        mean = torch.tanh(self.locate(query))
        self.decision = None
        if self.training:
            location = (mean + self.std * torch.randn_like(mean)).detach()
            log_prob = (-(location - mean).pow(2) / (2 * self.std ** 2)
                        - math.log(self.std) - 0.5 * math.log(2 * math.pi)).sum(-1)
            baseline = self.baseline(query.detach()).squeeze(-1)
            self.decision = Decision(log_prob, baseline, torch.zeros_like(log_prob))
        else:
            location = mean.detach()
        seen = self.retina(image, location).flatten(1)
        return torch.cat([seen, location], -1), location


@register
class GlimpseKind(VisualKind):
    kind = "glimpse"
    example = (
        "input img: image(size=12)\n"
        "output y: 3 = softmax(c)\n"
        "glimpse g({params}) on img <- c@prev\n"
        "lstm c(hidden=6) <- g\n")
    doc = ("RAM's glimpse (Mnih et al. 2014) `on` an image: patches at `scales` scales around a location "
           "drawn from a Gaussian policy on its sources, learned by REINFORCE; value (B, scales·size² + 2).")
    params: ClassVar = (Param("size", int, 8, minimum=1, maximum=256, doc="side of each patch, in pixels"),
                        Param("scales", int, 2, minimum=1, maximum=6, doc="patches, each twice as wide as the last"),
                        Param("std", float, 0.15, minimum=1e-4, maximum=2.0,
                              doc="standard deviation of the location policy (image coordinates in [-1, 1])"))

    @classmethod
    def value_size(cls, params: dict[str, Any], target_size: int | None) -> int:
        return params["scales"] * params["size"] ** 2 + 2

    @classmethod
    def make(cls, params: dict[str, Any], query_size: int, target_size: int | None) -> nn.Module:
        assert target_size is not None  # the image's side
        return Glimpse(query_size, target_size, params["size"], params["scales"], params["std"])

    @classmethod
    def describe(cls, name: str, params: dict[str, Any], sources: str, target: str | None, size: int) -> str:
        return (f"glimpse {name}: location ~ N(tanh(W [{sources}]), {params['std']}²) on {target}, "
                f"{params['scales']} patch(es) of {params['size']}x{params['size']} -> {size}; "
                "learns where to look by REINFORCE")

    @classmethod
    def trace_places(cls, name: str, seen: Any, side: int, module: Any, trace: dict[str, Any]
                     ) -> dict[str, dict[str, Any]]:
        """Its path of locations, and the width of its widest patch."""
        return {"paths": {name: to_pixels(seen, side)}, "widths": {name: module.size * 2 ** (module.scales - 1)}}
