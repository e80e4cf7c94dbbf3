"""Tests for the sequence-to-sequence tasks of :mod:`cogdsl.tasks.seq2seq` (``reverse``, ``sort``).

Each batch is decoded back to python lists of symbols (the argmax of each one-hot row) and its targets
are compared with python's ``reversed()`` / ``sorted()``; shapes, lengths, determinism and parameter
validation are checked directly; ``class_loss`` and ``wrong_classes`` of :mod:`cogdsl.tasks.base` are
compared with float64 loops over hand-made logits (math.log / math.exp, no torch ops).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from cogdsl.tasks import TASKS, Batch, ReverseTask, SortTask, TaskParamError, get_task, make_task
from cogdsl.tasks.base import class_loss, wrong_classes

TASK_NAMES = ("reverse", "sort")
ANSWER_OF: dict[str, Callable[[list[int]], list[int]]] = {
    "reverse": lambda symbols: list(reversed(symbols)),
    "sort": lambda symbols: sorted(symbols),
}


def decoded_source(batch: Batch) -> list[list[int]]:
    """The source symbols of each sequence, after checking that every row is exactly one-hot."""
    assert isinstance(batch.inputs, dict)
    one_hot = batch.inputs["sequence"]
    assert ((one_hot == 0) | (one_hot == 1)).all()
    assert (one_hot.sum(-1) == 1).all()
    return one_hot.argmax(-1).tolist()


# ----------------------------------------------------------------------------------------
# Targets and shapes
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", TASK_NAMES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_targets_are_the_reversed_or_sorted_source(name: str, seed: int) -> None:
    task = make_task(name, symbols=5, min_len=3, max_len=9)
    batch = task.sample(16, torch.Generator().manual_seed(seed))
    sources = decoded_source(batch)
    for source, target in zip(sources, batch.targets.tolist(), strict=True):
        assert target == ANSWER_OF[name](source)
    # A sort with repeats keeps them; random sources of 5 symbols at length >= 6 have repeats.
    if name == "sort" and batch.steps > 5:
        assert any(len(set(source)) < len(source) for source in sources)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_batch_shapes_dtypes_and_mask(name: str) -> None:
    symbols, batch_size = 7, 6
    task = make_task(name, symbols=symbols, min_len=2, max_len=8)
    batch = task.sample(batch_size, torch.Generator().manual_seed(3))
    length = batch.steps
    assert isinstance(batch.inputs, dict)
    assert set(batch.inputs) == {"sequence"}
    assert batch.inputs["sequence"].shape == (batch_size, length, symbols)
    assert batch.inputs["sequence"].dtype == torch.float32
    assert batch.targets.shape == (batch_size, length)
    assert batch.targets.dtype == torch.long
    assert int(batch.targets.min()) >= 0 and int(batch.targets.max()) < symbols
    assert batch.mask.shape == (batch_size, length)
    assert torch.equal(batch.mask, torch.ones(batch_size, length))
    assert batch.batch_size == batch_size


@pytest.mark.parametrize("name", TASK_NAMES)
def test_length_is_drawn_from_min_len_to_max_len_once_per_batch(name: str) -> None:
    task = make_task(name, symbols=4, min_len=2, max_len=5)
    generator = torch.Generator().manual_seed(0)
    lengths = []
    for _ in range(200):
        batch = task.sample(3, generator)
        assert isinstance(batch.inputs, dict)
        # One length for the whole batch: inputs, targets and mask all have it.
        assert batch.inputs["sequence"].shape[1] == batch.targets.shape[1] == batch.mask.shape[1]
        lengths.append(batch.steps)
    assert set(lengths) == {2, 3, 4, 5}
    assert task.length_range() == (2, 5)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_fixed_length_when_min_len_equals_max_len(name: str) -> None:
    task = make_task(name, symbols=4, min_len=4, max_len=4)
    generator = torch.Generator().manual_seed(1)
    assert {task.sample(2, generator).steps for _ in range(20)} == {4}


@pytest.mark.parametrize("name", TASK_NAMES)
def test_length_override_goes_beyond_max_len(name: str) -> None:
    task = make_task(name, symbols=6, min_len=1, max_len=3)
    batch = task.sample(5, torch.Generator().manual_seed(0), length=12)
    assert batch.steps == 12
    assert isinstance(batch.inputs, dict)
    assert batch.inputs["sequence"].shape == (5, 12, 6)
    for source, target in zip(decoded_source(batch), batch.targets.tolist(), strict=True):
        assert target == ANSWER_OF[name](source)


@pytest.mark.parametrize("name", TASK_NAMES)
@pytest.mark.parametrize("length", [0, -1, True, 2.0])
def test_bad_length_override_raises(name: str, length: object) -> None:
    task = make_task(name)
    with pytest.raises(ValueError, match="length"):
        task.sample(2, torch.Generator().manual_seed(0), length=length)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", TASK_NAMES)
def test_same_seed_gives_the_same_batch_and_another_seed_another(name: str) -> None:
    task = make_task(name, symbols=8, min_len=1, max_len=10)
    first = task.sample(8, torch.Generator().manual_seed(42))
    again = task.sample(8, torch.Generator().manual_seed(42))
    other = task.sample(8, torch.Generator().manual_seed(43), length=first.steps)
    assert isinstance(first.inputs, dict) and isinstance(again.inputs, dict) and isinstance(other.inputs, dict)
    assert torch.equal(first.inputs["sequence"], again.inputs["sequence"])
    assert torch.equal(first.targets, again.targets)
    assert torch.equal(first.mask, again.mask)
    assert not torch.equal(first.inputs["sequence"], other.inputs["sequence"])


# ----------------------------------------------------------------------------------------
# Parameters and declarations
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", TASK_NAMES)
def test_defaults_and_declarations(name: str) -> None:
    task = make_task(name)
    positions = {"answer": "symbols", "numbers": False} if name == "sort" else {}  # sort can answer with positions
    assert task.config == {"symbols": 8, "min_len": 1, "max_len": 10, **positions}
    assert task.loss == "ce"
    assert task.error_unit == "wrong symbols"
    assert TASKS[name] is get_task(name) is {"reverse": ReverseTask, "sort": SortTask}[name]


@pytest.mark.parametrize("name", TASK_NAMES)
@pytest.mark.parametrize("symbols", [2, 5, 13])
def test_input_kinds_and_sizes_are_the_symbols(name: str, symbols: int) -> None:
    task = make_task(name, symbols=symbols)
    assert task.input_kinds == {"sequence": symbols}
    assert task.input_size == symbols
    assert task.output_size == symbols


@pytest.mark.parametrize("name", TASK_NAMES)
@pytest.mark.parametrize(("params", "bad"), [
    ({"min_len": 5, "max_len": 4}, "min_len"),
    ({"max_len": 3, "min_len": 4}, "min_len"),
    ({"symbols": 1}, "symbols"),
    ({"symbols": 0}, "symbols"),
    ({"min_len": 0}, "min_len"),
    ({"symbols": True}, "symbols"),
    ({"symbols": 4.0}, "symbols"),
    ({"lenght": 3}, "lenght"),
])
def test_bad_parameters_raise_task_param_error(name: str, params: dict[str, object], bad: str) -> None:
    with pytest.raises(TaskParamError) as info:
        make_task(name, **params)
    assert info.value.task == name
    assert info.value.param == bad


# ----------------------------------------------------------------------------------------
# Loss and errors against loops
# ----------------------------------------------------------------------------------------

def hand_made_batch() -> tuple[torch.Tensor, Batch]:
    """Random logits (B=3, T=4, V=5), random class targets, and a mask with some steps left out."""
    generator = torch.Generator().manual_seed(7)
    logits = torch.randn(3, 4, 5, generator=generator, dtype=torch.float64) * 2
    targets = torch.randint(0, 5, (3, 4), generator=generator)
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    sequence = torch.nn.functional.one_hot(torch.randint(0, 5, (3, 4), generator=generator), 5).double()
    return logits, Batch({"sequence": sequence}, targets, mask)


def test_class_loss_against_a_loop() -> None:
    logits, batch = hand_made_batch()
    values, answers, mask = logits.tolist(), batch.targets.tolist(), batch.mask.tolist()
    total = 0.0
    for b in range(len(values)):
        for t in range(len(values[b])):
            row = values[b][t]
            log_normalizer = math.log(sum(math.exp(v) for v in row))
            total += mask[b][t] * (log_normalizer - row[answers[b][t]])
    expected = total / len(values)
    assert float(class_loss(logits, batch)) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_wrong_classes_against_a_loop() -> None:
    logits, batch = hand_made_batch()
    # Make a few steps right, to have both kinds, one of them masked out.
    logits[0, 0, batch.targets[0, 0]] = 50.0
    logits[1, 1, batch.targets[1, 1]] = 50.0
    values, answers, mask = logits.tolist(), batch.targets.tolist(), batch.mask.tolist()
    expected = []
    for b in range(len(values)):
        wrong = 0.0
        for t in range(len(values[b])):
            row = values[b][t]
            guess = max(range(len(row)), key=row.__getitem__)
            wrong += mask[b][t] * (guess != answers[b][t])
        expected.append(wrong)
    got = wrong_classes(logits, batch)
    assert got.shape == (3,)
    assert got.tolist() == expected
    assert 0 < sum(expected) < float(batch.mask.sum())


@pytest.mark.parametrize("name", TASK_NAMES)
def test_task_loss_and_errors_are_class_loss_and_wrong_classes(name: str) -> None:
    task = make_task(name, symbols=5, min_len=4, max_len=4)
    batch = task.sample(3, torch.Generator().manual_seed(5))
    logits = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(6))
    assert torch.equal(task.loss_of(logits, batch), class_loss(logits, batch))
    assert torch.equal(task.errors(logits, batch), wrong_classes(logits, batch))
    # The right answers, as logits, score no errors and almost no loss.
    perfect = torch.nn.functional.one_hot(batch.targets, 5).float() * 30
    assert task.errors(perfect, batch).tolist() == [0.0, 0.0, 0.0]
    assert float(task.loss_of(perfect, batch)) < 1e-9


@pytest.mark.parametrize("name", TASK_NAMES)
def test_evaluation_batches_are_fixed_by_the_seed(name: str) -> None:
    task = make_task(name, symbols=6, min_len=2, max_len=4)
    first = list(task.evaluation_batches(10, seed=3, batch=4, length=6))
    again = list(task.evaluation_batches(10, seed=3, batch=4, length=6))
    assert [b.batch_size for b in first] == [4, 4, 2]
    assert all(b.steps == 6 for b in first)
    for one, two in zip(first, again, strict=True):
        assert isinstance(one.inputs, dict) and isinstance(two.inputs, dict)
        assert torch.equal(one.inputs["sequence"], two.inputs["sequence"])
        assert torch.equal(one.targets, two.targets)
