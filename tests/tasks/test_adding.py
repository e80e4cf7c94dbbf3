"""Tests for the adding problem of :mod:`cogdsl.tasks.adding`.

Each batch is decoded back to python lists (the values, the steps whose marker is 1) and checked
against the setup the module docstring promises: two markers, the first in the first 10% of the
steps (at least step 0) and the second in the last half, values in [0, 1], the target the sum of
the two marked values at the last step and nothing scored before it. Loss and errors are compared
with hand loops and the 0.04 criterion; the constant answer 1 must score about 1/6; a short
training run goes end to end.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.errors import ShapeError
from cogdsl.tasks import TASKS, AddingTask, Batch, TaskParamError, get_task, make_task
from cogdsl.training.loop import config_from_spec, evaluate, train


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def decode(batch: Batch) -> list[tuple[list[float], list[int], float]]:
    """Each sequence's values, its marked steps and the target at its last step, as python data."""
    assert isinstance(batch.inputs, torch.Tensor)
    out = []
    for b in range(batch.batch_size):
        values = batch.inputs[b, :, 0].tolist()
        flags = batch.inputs[b, :, 1].tolist()
        assert all(f in (0.0, 1.0) for f in flags)
        marked = [t for t, f in enumerate(flags) if f == 1.0]
        out.append((values, marked, float(batch.targets[b, -1, 0])))
    return out


# -- the sequences ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [2, 3, 9, 10, 11, 19, 50, 100, 137])
@pytest.mark.parametrize("seed", [0, 1])
def test_two_markers_in_the_promised_windows_and_the_sum_at_the_last_step(length: int, seed: int) -> None:
    task = AddingTask(min_len=2, max_len=200)
    batch = task.sample(64, gen(seed), length=length)
    assert batch.inputs.shape == (64, length, 2)  # type: ignore[union-attr]
    assert batch.targets.shape == (64, length, 1) and batch.targets.dtype == torch.float32
    assert batch.mask.shape == (64, length)
    first_end = max(1, length // 10)  # the first 10% of the steps, at least step 0
    for b, (values, marked, target) in enumerate(decode(batch)):
        assert len(marked) == 2, marked
        first, second = marked
        assert 0 <= first < first_end, (length, marked)
        assert length // 2 <= second < length, (length, marked)
        assert all(0.0 <= v <= 1.0 for v in values)
        assert target == pytest.approx(values[first] + values[second], abs=1e-6)
        assert batch.targets[b, :-1].abs().sum() == 0  # nothing before the last step
        assert batch.mask[b].tolist() == [0.0] * (length - 1) + [1.0]
        assert batch.info["markers"][b].tolist() == [first, second]


def test_markers_cover_their_windows_and_values_look_uniform() -> None:
    batch = AddingTask().sample(4000, gen(5))  # T = 100: first in 0 .. 9, second in 50 .. 99
    rows = decode(batch)
    assert {marked[0] for _, marked, _ in rows} == set(range(10))
    assert {marked[1] for _, marked, _ in rows} == set(range(50, 100))
    values = batch.inputs[..., 0]  # type: ignore[index]
    assert float(values.mean()) == pytest.approx(0.5, abs=0.01)  # 400k draws: s.e. 0.0005
    assert float(values.min()) >= 0.0 and float(values.max()) < 1.0


def test_the_drawing_in_the_docstring() -> None:
    """The module docstring's T = 10 example: first marker at step 0, second in 5 .. 9."""
    rows = decode(AddingTask().sample(500, gen(2), length=10))
    assert {m[0] for _, m, _ in rows} == {0}
    assert {m[1] for _, m, _ in rows} == set(range(5, 10))


def test_length_gives_t_and_training_draws_from_the_range() -> None:
    task = AddingTask()
    assert task.length_range() == (100, 100)
    assert task.sample(3, gen(0)).steps == 100
    assert task.sample(3, gen(0), length=200).steps == 200
    ranged = AddingTask(min_len=5, max_len=8)
    assert {ranged.sample(2, gen(s)).steps for s in range(60)} == {5, 6, 7, 8}


@pytest.mark.parametrize("length", [0, 1, -3, 2.0, True, "10"])
def test_bad_length_raises(length: object) -> None:
    with pytest.raises(ValueError, match="length must be an int >= 2"):
        AddingTask().sample(2, gen(0), length=length)  # type: ignore[arg-type]


def test_same_seed_same_batch_and_another_seed_another() -> None:
    task = AddingTask(min_len=10, max_len=30)
    first, again, other = (task.sample(16, gen(s)) for s in (42, 42, 43))
    assert torch.equal(first.inputs, again.inputs)  # type: ignore[arg-type]
    assert torch.equal(first.targets, again.targets) and torch.equal(first.mask, again.mask)
    assert torch.equal(first.info["markers"], again.info["markers"])
    assert first.steps != other.steps or not torch.equal(first.inputs, other.inputs)  # type: ignore[arg-type]
    fixed = [task.sample(8, gen(7), length=40) for _ in range(2)]
    assert torch.equal(fixed[0].inputs, fixed[1].inputs)  # type: ignore[arg-type]


def test_evaluation_batches_are_fixed_by_the_seed() -> None:
    task = AddingTask(min_len=10, max_len=10)
    first = list(task.evaluation_batches(10, seed=3, batch=4, length=20))
    again = list(task.evaluation_batches(10, seed=3, batch=4, length=20))
    assert [b.batch_size for b in first] == [4, 4, 2] and all(b.steps == 20 for b in first)
    for one, two in zip(first, again, strict=True):
        assert torch.equal(one.inputs, two.inputs)  # type: ignore[arg-type]


# -- parameters and declarations --------------------------------------------------------------------------


def test_declarations() -> None:
    task = make_task("adding")
    assert TASKS["adding"] is get_task("adding") is AddingTask
    assert task.loss == "mse" and task.error_unit == "wrong sums"
    assert task.input_size == 2 and task.output_size == 1
    assert task.input_kinds == {"vector": 2}
    assert task.config == {"min_len": 100, "max_len": 100}
    assert AddingTask.validate_params({}) == AddingTask.defaults()
    assert all(p.doc for p in AddingTask.params)


@pytest.mark.parametrize(("params", "bad"), [
    ({"min_len": 50, "max_len": 40}, "min_len"),
    ({"max_len": 40}, "max_len"),  # min_len keeps its default, 100
    ({"min_len": 1}, "min_len"),
    ({"max_len": 1, "min_len": 1}, "min_len"),
    ({"min_len": True}, "min_len"),
    ({"max_len": 2.5}, "max_len"),
    ({"max_len": "9"}, "max_len"),
    ({"length": 100}, "length"),
    ({"min_length": 10}, "min_length"),
])
def test_bad_parameters_raise_task_param_error(params: dict[str, object], bad: str) -> None:
    with pytest.raises(TaskParamError) as info:
        make_task("adding", **params)
    assert info.value.task == "adding"
    assert info.value.param == bad
    assert f"'{bad}'" in str(info.value)


# -- loss and errors ----------------------------------------------------------------------------------------


def test_loss_is_the_masked_squared_error_averaged_over_the_batch() -> None:
    task = AddingTask(min_len=12, max_len=12)
    batch = task.sample(7, gen(4))
    logits = torch.randn(7, 12, 1, generator=gen(8))
    total = 0.0
    for b in range(7):
        for t in range(12):
            if batch.mask[b, t] == 1.0:
                total += (float(logits[b, t, 0]) - float(batch.targets[b, t, 0])) ** 2
    assert float(task.loss_of(logits, batch)) == pytest.approx(total / 7, rel=1e-5)
    # Only the last step counts: anything written earlier is free.
    noisy = logits.clone()
    noisy[:, :-1] += 100.0
    assert torch.equal(task.loss_of(noisy, batch), task.loss_of(logits, batch))
    exact = batch.targets.clone()
    assert float(task.loss_of(exact, batch)) == 0.0
    logits.requires_grad_(True)
    task.loss_of(logits, batch).backward()
    assert logits.grad is not None and logits.grad[:, :-1].abs().sum() == 0


def test_errors_use_the_004_criterion_at_the_last_step() -> None:
    task = AddingTask(min_len=6, max_len=6)
    batch = task.sample(6, gen(1))
    offsets = torch.tensor([0.0, 0.039, -0.039, 0.041, -0.041, math.nan])
    logits = batch.targets.clone()
    logits[:, -1, 0] += offsets
    logits[:, :-1] = 50.0  # unscored steps: not counted
    assert task.errors(logits, batch).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert task.reward(logits, batch).tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="shape"):
        task.errors(logits[..., :0], batch)


def test_the_constant_answer_one_scores_one_sixth() -> None:
    """E[(X + Y - 1)²] = 1/6 for X, Y uniform in [0, 1]. (X + Y - 1)² has standard deviation
    sqrt(1/15 - 1/36) ≈ 0.197, so over 100 000 sequences the mean has standard error ≈ 0.0006;
    the tolerance, 0.005, is eight of them (and the seed is fixed)."""
    task = AddingTask(min_len=10, max_len=10)
    batch = task.sample(100_000, gen(11))
    ones = torch.ones(batch.batch_size, batch.steps, 1)
    assert float(task.loss_of(ones, batch)) == pytest.approx(1 / 6, abs=0.005)
    # ... and almost every sum is wrong by the 0.04 criterion: |X + Y - 1| < 0.04 has probability
    # 1 - 0.96² = 0.0784.
    wrong = float(task.errors(ones, batch).mean())
    assert wrong == pytest.approx(1 - 0.0784, abs=0.005)


# -- end to end ---------------------------------------------------------------------------------------------

TINY_ADDING = """\
cogdsl: 1
model: tiny_adding
inputs:
  x: 2
outputs:
  y: {size: 1, from: [ctrl]}
blocks:
  ctrl: {kind: lstm, hidden: 16, from: [x]}
train:
  task: {name: adding, min_len: 10, max_len: 10}
  optimizer: {name: adam, lr: 1.0e-2}
  batch: 16
  steps: 20
  clip: 10
  seed: 0
  threads: 1
  log_every: 10
  eval_every: 20
  eval_size: 64
  checkpoint_every: 20
"""


def test_an_lstm_trains_on_adding(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    path = tmp_path / "tiny_adding.yaml"
    path.write_text(TINY_ADDING, encoding="utf-8")
    spec = cogdsl.load(path)
    config = config_from_spec(spec)
    assert config.task == "adding" and config.task_params == {"min_len": 10, "max_len": 10}
    try:
        result = train(spec, config, tmp_path / "run", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert result.step == 20 and result.stopped == "done"
    assert result.loss is not None and math.isfinite(result.loss)
    assert result.eval is not None and result.eval.length == 10 and result.eval.unit == "wrong sums"
    assert math.isfinite(result.eval.loss) and 0.0 <= result.eval.perfect <= 1.0
    assert 0.0 <= result.eval.bit_errors <= 1.0  # one scored sum per sequence
    assert "wrong sums per sequence" in result.eval.describe("tiny_adding")
    longer = evaluate(result.model, make_task("adding", min_len=10, max_len=10), length=30, sequences=16, batch=8)
    assert longer.length == 30 and longer.sequences == 16 and math.isfinite(longer.loss)


def test_an_output_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wrong.yaml"
    path.write_text(TINY_ADDING.replace("y: {size: 1,", "y: {size: 2,"), encoding="utf-8")
    with pytest.raises(ShapeError, match="expects 1 outputs but output 'y' has size 2"):
        cogdsl.compile(cogdsl.load(path))
