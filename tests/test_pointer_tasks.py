"""The tasks of pointer networks: ``sort(answer=positions)`` and ``convex_hull``, against independent
computations (NumPy's stable argsort; a brute-force hull: every point on or left of every hull edge,
and a vertex is exactly a point inside no triangle of three others), their fixed test sets, and the
losses of an output that points and of one that names positions as classes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from cogdsl.tasks import Batch, TaskParamError, make_task
from cogdsl.tasks.convex_hull import convex_hull
from cogdsl.tasks.positions import position_accuracy, position_losses
from cogdsl.training.evaluation import EVAL_SEED


@pytest.mark.parametrize("numbers", [True, False])
def test_sort_positions_are_numpys_stable_argsort(numbers: bool) -> None:
    task = make_task("sort", answer="positions", numbers=numbers, symbols=4, min_len=2, max_len=9)
    batch = task.sample(64, torch.Generator().manual_seed(3))
    source = batch.inputs["sequence"]
    values = source[..., 0].numpy() if numbers else source.argmax(-1).numpy()
    assert source.shape[-1] == (1 if numbers else 4) == task.input_kinds["sequence"]
    if numbers:
        assert ((values >= 0) & (values < 1)).all()
    assert np.array_equal(batch.targets.numpy(), np.argsort(values, axis=1, kind="stable"))
    assert batch.mask.all() and task.points and task.output_size == 9


def test_sort_of_symbols_is_unchanged_by_default() -> None:
    task = make_task("sort", symbols=8, max_len=6)
    assert not task.points and task.output_size == 8 and task.error_unit == "wrong symbols"
    batch = task.sample(5, torch.Generator().manual_seed(0))
    assert torch.equal(batch.targets, batch.inputs["sequence"].argmax(-1).sort(dim=1).values)


def test_numbers_need_position_answers() -> None:
    with pytest.raises(TaskParamError, match="answer=positions"):
        make_task("sort", numbers=True)


def _inside_triangle(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> bool:
    def side(o: np.ndarray, u: np.ndarray, w: np.ndarray) -> float:
        return float((u[0] - o[0]) * (w[1] - o[1]) - (u[1] - o[1]) * (w[0] - o[0]))
    signs = [side(a, b, p), side(b, c, p), side(c, a, p)]
    return all(s >= 0 for s in signs) or all(s <= 0 for s in signs)


def _check_hull(points: np.ndarray, closed: list[int]) -> None:
    """Brute force: the answer is closed, starts at its lowest position, every hull turn is a left turn with
    every other point strictly left of each edge, and its vertices are the points in no triangle of others."""
    n = len(points)
    assert closed[0] == closed[-1] == min(closed[:-1])
    hull = closed[:-1]
    assert len(set(hull)) == len(hull) >= 3
    for a, b in itertools.pairwise(closed):
        for j in range(n):
            if j not in (a, b):
                edge, to = points[b] - points[a], points[j] - points[a]
                assert edge[0] * to[1] - edge[1] * to[0] > 0, (a, b, j)
    extreme = {i for i in range(n) if not any(
        _inside_triangle(points[i], points[a], points[b], points[c])
        for a, b, c in itertools.combinations([j for j in range(n) if j != i], 3))}
    assert extreme == set(hull)


def test_convex_hull_targets_pass_a_brute_force_check() -> None:
    task = make_task("convex_hull", min_len=3, max_len=9)
    generator = torch.Generator().manual_seed(11)
    for _ in range(4):
        batch = task.sample(25, generator)
        points = batch.inputs["sequence"].double().numpy()
        assert batch.targets.shape == batch.mask.shape and points.shape[-1] == 2
        for b in range(len(points)):
            steps = int(batch.mask[b].sum())
            assert batch.mask[b, :steps].all() and not batch.mask[b, steps:].any()
            _check_hull(points[b], batch.targets[b, :steps].tolist())
        assert int(batch.mask.sum(-1).max()) == batch.steps  # a batch runs as long as its longest answer


def test_monotone_chain_on_shapes_with_a_known_hull() -> None:
    square = [(0.0, 0.0), (0.5, 0.5), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0), (0.5, 0.0)]  # (0.5, 0) is on an edge
    assert convex_hull(square) == [0, 3, 2, 4]
    assert convex_hull([(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]) == [0, 1, 2]
    assert convex_hull([(0.0, 1.0), (1.0, 0.0), (0.0, 0.0)]) == [0, 2, 1]


@pytest.mark.parametrize(("name", "params"), [("convex_hull", {}), ("sort", {"answer": "positions", "numbers": True})])
def test_fixed_test_sets_are_the_same_every_time(name: str, params: dict) -> None:
    task = make_task(name, **params)

    def test_set(seed: int) -> list[Batch]:
        return list(task.evaluation_batches(250, seed, 100, 10))

    first, again, other = test_set(EVAL_SEED), test_set(EVAL_SEED), test_set(EVAL_SEED + 1)
    assert [b.batch_size for b in first] == [100, 100, 50]
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a.inputs["sequence"], b.inputs["sequence"]) and torch.equal(a.targets, b.targets)
        assert torch.equal(a.mask, b.mask)
    assert not torch.equal(first[0].inputs["sequence"], other[0].inputs["sequence"])


def test_position_classes_an_output_cannot_name_cost_an_infinite_loss() -> None:
    task = make_task("sort", answer="positions", numbers=True, min_len=2, max_len=4)
    batch = task.sample(6, torch.Generator().manual_seed(0), length=6)  # longer than the 4 classes
    pointed = torch.randn(6, 6, 6)  # a pointer: one logit per source position
    classes = pointed[..., :4]  # position classes 0..3 only
    assert torch.isfinite(position_losses(pointed, batch)).all()
    can_name = (batch.targets < 4).all(-1)
    losses = position_losses(classes, batch)
    assert torch.isinf(losses[~can_name]).all() and torch.isfinite(losses[can_name]).all()
    torch.testing.assert_close(losses[can_name], position_losses(
        torch.cat([classes, torch.full((6, 6, 2), float("-inf"))], -1), batch)[can_name])
    perfect = torch.nn.functional.one_hot(batch.targets, 6).float() * 50
    assert torch.equal(position_accuracy(perfect, batch), torch.ones(6))
    assert (task.errors(perfect, batch) == 0).all()
    assert task.metrics(perfect, batch)["position_accuracy"].tolist() == [1.0] * 6
