"""The planar convex hull, as pointer networks learn it (Vinyals, Fortunato and Jaitly 2015, 4.2).

The source is n points drawn uniformly from the unit square, a whole ``sequence`` input
(B, n, 2) of (x, y) rows. The answer is the positions of the hull's vertices, counter-clockwise,
starting from the lowest position and closed (the first position again at the end, which is how
the model says it has gone round), one position per step::

    source   (0.1, 0.2) (0.9, 0.1) (0.5, 0.5) (0.8, 0.9) (0.2, 0.8)     n = 5
    answer   0 1 3 4 0                                              T = 5 (4 vertices, closed)

Hulls differ in size, so a batch runs as many steps as its largest hull needs (plus the closing
step), and the mask scores each sequence's own steps only. The loss is cross-entropy over the
positions (:mod:`cogdsl.tasks.positions`); an error is a step that points at the wrong position.
The hull is Andrew's monotone chain (:func:`convex_hull`) on the float32 points, computed in
float64; points drawn this way are never collinear in practice, and a point on an edge would not
count as a vertex.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch

from cogdsl.tasks.base import Batch, Task, TaskParam
from cogdsl.tasks.positions import position_accuracy, position_errors, position_losses

MAX_POINTS = 10_000


def cross(o: Sequence[float], a: Sequence[float], b: Sequence[float]) -> float:
    """(a - o) x (b - o): > 0 when o → a → b turns left (counter-clockwise)."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def convex_hull(points: Sequence[Sequence[float]]) -> list[int]:
    """The positions of the convex hull's vertices of ``points`` ((x, y) pairs), counter-clockwise, starting
    from the lowest position, not closed: Andrew's monotone chain, O(n log n). Points on an edge are left out."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    if len(order) < 3:
        return sorted(order)

    def half(indices: list[int]) -> list[int]:
        chain: list[int] = []
        for i in indices:
            while len(chain) >= 2 and cross(points[chain[-2]], points[chain[-1]], points[i]) <= 0:
                chain.pop()
            chain.append(i)
        return chain

    hull = half(order)[:-1] + half(order[::-1])[:-1]  # lower then upper: counter-clockwise from the leftmost
    first = hull.index(min(hull))
    return hull[first:] + hull[:first]


class ConvexHullTask(Task):
    """Point at the convex hull of n points in the unit square, counter-clockwise from the lowest position, closed."""

    name = "convex_hull"
    params: ClassVar[tuple[TaskParam, ...]] = (
        TaskParam("min_len", int, 5, minimum=3, maximum=MAX_POINTS, doc="fewest points drawn in training"),
        TaskParam("max_len", int, 10, minimum=3, maximum=MAX_POINTS, doc="most points drawn in training"),
    )
    constraints: ClassVar[tuple[tuple[str, str], ...]] = (("min_len", "max_len"),)
    length_params: ClassVar[tuple[str, str] | None] = ("min_len", "max_len")
    min_length: ClassVar[int] = 3
    loss = "ce"
    error_unit = "wrong positions"
    points = True
    output_size_exact = False  # position classes: at least max_len
    length_doc: ClassVar[str] = ("n, the number of points; the answer has T = the largest hull's vertices + 1 steps "
                                 "(each sequence scored on its own)")
    sizes_doc: ClassVar[str] = "sequence input of size 2 (x, y), given whole; a pointer output (or max_len classes)"
    min_len: int
    max_len: int

    @property
    def input_size(self) -> int:
        return 2

    @property
    def output_size(self) -> int:
        return self.max_len

    @property
    def input_kinds(self) -> dict[str, int]:
        return {"sequence": 2}

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        points = torch.rand((batch, length, 2), generator=generator, device=generator.device)
        hulls = [convex_hull(rows) for rows in points.double().cpu().tolist()]
        steps = max(len(hull) for hull in hulls) + 1
        targets = torch.zeros((batch, steps), dtype=torch.long)
        mask = torch.zeros((batch, steps))
        for b, hull in enumerate(hulls):
            closed = [*hull, hull[0]]
            targets[b, : len(closed)] = torch.tensor(closed)
            mask[b, : len(closed)] = 1
        return Batch({"sequence": points}, targets.to(points.device), mask.to(points.device))

    def sequence_losses(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return position_losses(logits, batch)

    def errors(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return position_errors(logits, batch)

    def metrics(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """The fraction of each sequence's steps that point at the right position."""
        return {"position_accuracy": position_accuracy(logits, batch)}
