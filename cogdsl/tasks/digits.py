"""Cluttered, translated digits: name the digit in an image that also holds digit-like clutter.

The model sees one whole image, an ``image`` input (B, size, size) of grey levels in [0, 1]
with no time axis, runs ``glimpses`` steps over it, and writes logits over the ten digits at
every step (B, glimpses, 10); only the last step is scored (cross-entropy), and an error is a
wrong digit. A glimpse or attention model learns to find the digit and ignore the clutter;
the reward of a sequence (:meth:`Task.reward`) is 1 for a correct digit, else 0, as in RAM::

    image (size x size, here 40)          targets   7 7 7 7      (the digit at every step)
    +----------------------------------+  mask      0 0 0 1      (only the last step scored)
    |   ::                             |
    |               #####              |  the digit: one glyph, height ``height`` pixels
    |                  #     ..        |  (aspect kept), rotated within +-15 degrees,
    |                 #       :        |  scaled 0.85 .. 1.15, sheared a little, placed
    |                #                 |  at a random centre with all of it on the canvas
    |               #                  |
    |   .#:         #                  |  clutter: ``clutter`` square fragments, each
    |    #          #                  |  about size / 5 pixels wide, cut from a random,
    |                             ##   |  randomly transformed digit glyph and placed
    +----------------------------------+  anywhere (the whole square on the canvas);
                                          combined with the digit by max

``info`` holds each image's ``digit`` (B,) and the digit's ``centre`` (B, 2): x (column) then
y (row), in the normalised [-1, 1] coordinates of ``F.affine_grid`` (``align_corners=False``),
i.e. the centre of pixel column ``j`` is ``(2 j + 1) / size - 1``.

Reference: the cluttered translated MNIST of Mnih et al. 2014, "Recurrent Models of Visual
Attention", section 4.1 (8x8 fragments of random digits scattered over the canvas), and the
cluttered MNIST of Jaderberg et al. 2015, "Spatial Transformer Networks". The digits here are
not MNIST: they are the project's own seven-row pixel font (:data:`GLYPHS`), drawn by
:func:`render` with one ``F.affine_grid`` + ``F.grid_sample`` for the batch's digits and one
per clutter piece, so nothing is downloaded. ``sample``'s ``length`` is the number of steps (``glimpses`` by default).
"""

from __future__ import annotations

import functools
import math
from typing import ClassVar

import torch
import torch.nn.functional as F

from cogdsl.tasks.base import Batch, Task, TaskParam, bce_per_sequence, bit_errors, ce_per_sequence, wrong_classes

GLYPHS: tuple[tuple[str, ...], ...] = (
    (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),  # 0
    ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),  # 1
    (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),  # 2
    ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),  # 3
    ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),  # 4
    ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),  # 5
    ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),  # 6
    ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),  # 7
    (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),  # 8
    (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),  # 9
)
"""The ten digits 0-9, each 7 rows of 5 columns, ``#`` ink and ``.`` background."""

ROWS, COLS = 7, 5
HEIGHT_FRACTION = 0.4
"""A digit's height as a fraction of the canvas side when :func:`render` is given no ``height``."""
MAX_ROTATION = 15.0
"""Largest rotation of a digit or a clutter glyph, in degrees either way."""
SCALE_RANGE = (0.85, 1.15)
"""Range of the random scale of a digit or a clutter glyph (about its height)."""
MAX_SHEAR = 0.1
"""Largest horizontal shear (x += shear * y) of a digit or a clutter glyph, either way."""
FRAGMENT_FRACTION = 0.2
"""A clutter fragment's side as a fraction of the canvas side (8 pixels on a 40 canvas)."""
MARGIN = 1.0
"""Pixels kept between a digit's transformed box and the canvas edge (bilinear blur)."""
_UPSAMPLE = 4  # glyphs are sampled from a 4x nearest-upsampled bitmap: crisper strokes


@functools.lru_cache(maxsize=1)
def _glyphs_cpu() -> torch.Tensor:
    rows = [[[1.0 if ch == "#" else 0.0 for ch in row] for row in glyph] for glyph in GLYPHS]
    return torch.tensor(rows, dtype=torch.float32)


def glyph_tensor() -> torch.Tensor:
    """The ten glyphs as a (10, 7, 5) float32 tensor of 0s and 1s (1 = ink), digit ``d`` at index ``d``."""
    return _glyphs_cpu().clone()


def fragment_size(size: int) -> int:
    """The side in pixels of a clutter fragment on a ``size`` canvas: ``round(size / 5)``, at least 2."""
    return max(2, round(FRAGMENT_FRACTION * size))


@functools.lru_cache(maxsize=8)
def _upsampled(device: torch.device) -> torch.Tensor:
    glyphs = _glyphs_cpu().repeat_interleave(_UPSAMPLE, dim=1).repeat_interleave(_UPSAMPLE, dim=2)
    return glyphs.unsqueeze(1).to(device)  # (10, 1, 28, 20)


def _source(digits: torch.Tensor) -> torch.Tensor:
    """The glyph bitmaps of ``digits`` (B,), upsampled, as grid_sample input (B, 1, 28, 20)."""
    return _upsampled(digits.device)[digits]


def transform(angle: torch.Tensor, scale: torch.Tensor, shear: torch.Tensor) -> torch.Tensor:
    """The forward map, in pixel units, of each glyph, (B, 2, 2): rotate(angle) @ shear @ scale.

    ``angle`` (B,) in radians, ``scale`` (B,), ``shear`` (B,) (x += shear * y before rotating).
    """
    cos, sin = torch.cos(angle), torch.sin(angle)
    a = torch.stack([torch.stack([cos, cos * shear - sin], -1), torch.stack([sin, sin * shear + cos], -1)], -2)
    return a * scale[:, None, None]


def _inverse(angle: torch.Tensor, scale: torch.Tensor, shear: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`transform`: (1 / scale) shear^-1 rotate(-angle), (B, 2, 2)."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    a = torch.stack([torch.stack([cos + shear * sin, sin - shear * cos], -1), torch.stack([-sin, cos], -1)], -2)
    return a / scale[:, None, None]


def draw(digits: torch.Tensor, centre: torch.Tensor, size: int, height: float, angle: torch.Tensor,
         scale: torch.Tensor, shear: torch.Tensor, bitmaps: torch.Tensor | None = None) -> torch.Tensor:
    """Draw each glyph ``digits[b]`` on an empty ``size`` x ``size`` canvas, deterministically.

    Args:
        digits: (B,) long, the glyphs to draw.
        centre: (B, 2), where the middle of each glyph's box goes: x then y in [-1, 1]
            (``affine_grid`` coordinates, ``align_corners=False``).
        size: the canvas side in pixels.
        height: the glyph's height in pixels before ``scale`` (its width is ``height * 5 / 7``).
        angle: (B,) rotation in radians; ``scale`` (B,); ``shear`` (B,): see :func:`transform`.
        bitmaps: (B, 1, h, w), the glyph of each item to draw instead of ``digits``' (another font,
            shapes: :mod:`cogdsl.tasks.caption`); ``None``: the digit glyphs.

    Returns:
        (B, size, size) float32 in [0, 1]: one bilinear ``grid_sample`` of the glyph bitmaps
        (zeros outside them).
    """
    b = digits.shape[0]
    width = height * COLS / ROWS
    to_glyph = torch.tensor([2.0 / width, 2.0 / height], device=digits.device)  # pixels -> glyph [-1, 1]
    linear = to_glyph[None, :, None] * _inverse(angle, scale, shear) * (size / 2.0)  # canvas [-1, 1] -> glyph
    theta = torch.cat([linear, -(linear @ centre.unsqueeze(-1))], dim=-1)  # (B, 2, 3)
    grid = F.affine_grid(theta, [b, 1, size, size], align_corners=False)
    source = _source(digits) if bitmaps is None else bitmaps
    out = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.squeeze(1).clamp(0.0, 1.0)


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator, device=generator.device)


def _jitter(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random (angle in radians, scale, shear), each (n,)."""
    angle = _uniform(n, -math.radians(MAX_ROTATION), math.radians(MAX_ROTATION), generator)
    scale = _uniform(n, SCALE_RANGE[0], SCALE_RANGE[1], generator)
    shear = _uniform(n, -MAX_SHEAR, MAX_SHEAR, generator)
    return angle, scale, shear


def render(digits: torch.Tensor, size: int, clutter: int, generator: torch.Generator,
           height: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw each digit, randomly transformed and placed, among ``clutter`` digit fragments.

    Args:
        digits: (B,) long in 0..9.
        size: the canvas side in pixels.
        clutter: the number of fragments per image (0 for none).
        generator: the only source of randomness; the tensors go on its device.
        height: the digit's height in pixels before its random scale; ``None`` means
            ``round(0.4 * size)``. A digit too large to fit in the canvas is centred (and clipped).

    Returns:
        ``(images, centre)``: images (B, size, size) float32 in [0, 1]; centre (B, 2), the
        middle of each digit's box, x then y in [-1, 1] (``affine_grid`` coordinates).
    """
    dev = generator.device
    digits = digits.to(dev)
    b = digits.shape[0]
    h = float(round(HEIGHT_FRACTION * size) if height is None else height)
    w = h * COLS / ROWS

    angle, scale, shear = _jitter(b, generator)
    a = transform(angle, scale, shear).abs()  # half extents of the transformed box, in pixels:
    half = torch.stack([a[:, 0, 0] * w + a[:, 0, 1] * h, a[:, 1, 0] * w + a[:, 1, 1] * h], -1) / 2 + MARGIN
    lo = half.clamp(max=size / 2.0)  # (B, 2)
    pixel = lo + (size - 2 * lo) * torch.rand(b, 2, generator=generator, device=dev)
    centre = 2.0 * pixel / size - 1.0
    images = draw(digits, centre, size, h, angle, scale, shear)

    side = fragment_size(size)
    cells = torch.arange(size, device=dev, dtype=torch.float32)
    for _ in range(clutter):
        source = torch.randint(0, 10, (b,), generator=generator, device=dev)
        f_angle, f_scale, f_shear = _jitter(b, generator)
        # the fragment's middle: a uniform point of the glyph's box, in glyph pixels before the transform
        offset = (torch.rand(b, 2, generator=generator, device=dev) - 0.5) * torch.tensor([w, h], device=dev)
        corner = torch.randint(0, size - side + 1, (b, 2), generator=generator, device=dev).float()
        moved = (transform(f_angle, f_scale, f_shear) @ offset.unsqueeze(-1)).squeeze(-1)
        glyph_centre = 2.0 * (corner + side / 2.0 - moved) / size - 1.0
        glyph = draw(source, glyph_centre, size, h, f_angle, f_scale, f_shear)
        cols = (cells >= corner[:, :1]) & (cells < corner[:, :1] + side)  # (B, size) x window
        rows = (cells >= corner[:, 1:]) & (cells < corner[:, 1:] + side)  # (B, size) y window
        window = (rows.unsqueeze(-1) & cols.unsqueeze(-2)).float()  # (B, size, size)
        images = torch.maximum(images, glyph * window)
    return images.clamp(0.0, 1.0), centre


class DigitsTask(Task):
    """Classify the digit in a cluttered image (Mnih et al. 2014's cluttered translated MNIST, own glyphs)."""

    name: ClassVar[str] = "digits"
    params: ClassVar[tuple[TaskParam, ...]] = (
        TaskParam("size", int, 40, minimum=16, maximum=128, doc="canvas side in pixels"),
        TaskParam("glimpses", int, 1, minimum=1, maximum=32,
                  doc="steps the model runs over the image; only the last is scored"),
        TaskParam("clutter", int, 4, minimum=0, maximum=64, doc="digit fragments scattered over the canvas"),
        TaskParam("height", int, 16, minimum=6, maximum=128,
                  doc="digit height in pixels before its random scale (at most size)"),
    )
    constraints: ClassVar[tuple[tuple[str, str], ...]] = (("height", "size"),)
    length_params: ClassVar[tuple[str, str] | None] = None
    loss = "ce"
    error_unit = "wrong digits"
    samples_on_device: ClassVar[bool] = True  # tensor operations only: a GPU draws its batches itself
    items: ClassVar[str] = "images"
    error_rate: ClassVar[bool] = True  # one digit per image, right or wrong
    length_doc: ClassVar[str] = (
        "no lengths: the model runs glimpses steps over one image and --len is refused; from Python, sample's "
        "length sets the number of steps instead (only the last is scored)"
    )
    sizes_doc: ClassVar[str] = "image input of side size (pixels); output 10 (one logit per digit)"

    size: int
    glimpses: int
    clutter: int
    height: int

    @property
    def input_size(self) -> int:
        """``size``, the image side."""
        return self.size

    @property
    def output_size(self) -> int:
        """10, one logit per digit."""
        return 10

    @property
    def input_kinds(self) -> dict[str, int]:
        """One whole image, ``size`` x ``size``."""
        return {"image": self.size}

    def length_range(self) -> tuple[int, int]:
        """Always ``(glimpses, glimpses)``: the number of steps is fixed."""
        return self.glimpses, self.glimpses

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        dev = generator.device
        digits = torch.randint(0, 10, (batch,), generator=generator, device=dev)
        images, centre = render(digits, self.size, self.clutter, generator, height=self.height)
        mask = torch.zeros(batch, length, device=dev)
        mask[:, -1] = 1.0
        return Batch({"image": images}, self.targets_of(digits, images, length), mask,
                     info={"digit": digits, "centre": centre})

    def targets_of(self, digits: torch.Tensor, images: torch.Tensor, length: int) -> torch.Tensor:
        """The digit at every step, (B, T) long (only the last step is scored)."""
        return digits.unsqueeze(1).expand(-1, length).contiguous()

    def sequence_losses(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return ce_per_sequence(logits, batch)

    def errors(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return wrong_classes(logits, batch)


class DigitReconstructionTask(DigitsTask):
    """Draw the image back (Gregor et al. 2015's reconstruction task, own glyphs): the model reads the image
    over ``glimpses`` steps and its last output is the picture, size² pixel logits, scored by cross-entropy
    against the pixel intensities; an error is a pixel on the wrong side of 0.5."""

    name: ClassVar[str] = "reconstruct_digits"
    params: ClassVar[tuple[TaskParam, ...]] = (
        TaskParam("size", int, 28, minimum=16, maximum=128, doc="canvas side in pixels"),
        TaskParam("glimpses", int, 8, minimum=1, maximum=64, doc="steps the model runs; the last is scored"),
        TaskParam("clutter", int, 0, minimum=0, maximum=64, doc="digit fragments scattered over the canvas"),
        TaskParam("height", int, 14, minimum=6, maximum=128,
                  doc="digit height in pixels before its random scale (at most size)"),
    )
    loss = "bce"
    error_unit = "wrong pixels"
    error_rate: ClassVar[bool] = False  # pixels per image, not one answer
    length_doc: ClassVar[str] = DigitsTask.length_doc
    sizes_doc: ClassVar[str] = "image input of side size (pixels); output size² (one logit per pixel)"

    @property
    def output_size(self) -> int:
        """size², one logit per pixel."""
        return self.size * self.size

    def targets_of(self, digits: torch.Tensor, images: torch.Tensor, length: int) -> torch.Tensor:
        """The image's pixels at every step, (B, T, size²) (only the last step is scored)."""
        return images.flatten(1).unsqueeze(1).expand(-1, length, -1).contiguous()

    def sequence_losses(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return bce_per_sequence(logits, batch)

    def errors(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return bit_errors(logits, batch)
