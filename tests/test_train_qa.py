"""Training QA specs (specs/memn2n_babi.cog and variants of it): the run folder and the valid-split
evaluations, a short run that learns task 1, linear start (its flag during training, its end by the
step cap or by a validation loss that does not improve, its state across a resume), learning-rate
decay, and ``cogdsl eval`` on a QA checkpoint."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import cogdsl
import cogdsl.training.loop as train_module
from cogdsl.blocks.memnet import Hops
from cogdsl.cli.command import main
from cogdsl.errors import UsageError
from cogdsl.tasks import make_task
from cogdsl.tasks.qa import BabiTask
from cogdsl.training.checkpoints import load_checkpoint
from cogdsl.training.config import TrainConfig
from cogdsl.training.loop import (
    EvalResult,
    LinearStart,
    TrainResult,
    config_from_spec,
    describe_result,
    evaluate,
    set_learning_rate,
    train,
)
from tests.tiny import tiny_ntm

ROOT = Path(__file__).resolve().parent.parent
MEMN2N = ROOT / "specs" / "memn2n_babi.cog"


def qa_spec(folder: Path, train_block: str, name: str = "qa.cog") -> Path:
    """specs/memn2n_babi.cog with its train section replaced by ``train_block`` (the lines inside the braces)."""
    text = MEMN2N.read_text(encoding="utf-8")
    path = folder / name
    path.write_text(text[:text.index("train {")] + "train {\n" + train_block + "\n}\n", encoding="utf-8")
    return path


def small_train(*, steps: int = 4, lr: float = 0.01, linear_start: int = 0, lr_decay_every: int = 0,
                eval_every: int = 2, eval_size: int = 20, log_every: int = 2, checkpoint_every: int = 2) -> str:
    return (f"  task babi(number=1, train_size=1000)\n  optimizer adam(lr={lr})\n"
            f"  batch 32; steps {steps}; clip 0; clip_norm 40; seed 0; threads 1\n"
            f"  linear_start {linear_start}; lr_decay_every {lr_decay_every}; lr_decay 0.5\n"
            f"  eval_every {eval_every}; eval_size {eval_size}; log_every {log_every}; "
            f"checkpoint_every {checkpoint_every}")


def read_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def linear_flags(model: nn.Module) -> list[bool]:
    return [bool(layer.linear) for layer in model.modules() if isinstance(layer, Hops)]


def same_parameters(a: Path, b: Path) -> None:
    first, second = load_checkpoint(a), load_checkpoint(b)
    assert first.step == second.step
    model_a = {k: v for k, v in first.tensors.items() if k.startswith("model.")}
    model_b = {k: v for k, v in second.tensors.items() if k.startswith("model.")}
    assert set(model_a) == set(model_b) and model_a
    for name in model_a:
        assert torch.allclose(model_a[name].float(), model_b[name].float(), atol=1e-6), name


@pytest.fixture(autouse=True)
def _keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def record_linear(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The ``linear`` flag of the hops at every training forward pass (evaluations are left out)."""
    seen: list[bool] = []
    original = Hops.forward

    def forward(self: Hops, *args: Any, **kwargs: Any) -> Any:
        if self.training:
            seen.append(bool(self.linear))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Hops, "forward", forward)
    return seen


# -- the run folder ---------------------------------------------------------------------------------------------


def test_a_few_steps_write_a_run_folder(tmp_path: Path) -> None:
    spec = cogdsl.load(MEMN2N)
    config = config_from_spec(spec).with_overrides(steps=4, eval_every=2, eval_size=20, log_every=2,
                                                   checkpoint_every=2)
    run = tmp_path / "run"
    result = train(spec, config, run, progress=False)
    assert isinstance(result, TrainResult) and result.step == 4 and result.stopped == "done"
    files = sorted(p.name for p in run.iterdir() if not p.name.startswith("events.out.tfevents."))
    assert files == ["checkpoints", "learning_curve.png", "log.csv", "spec.yaml"]
    assert [p.name for p in sorted((run / "checkpoints").glob("step_*.safetensors"))] == [
        "step_00000002.safetensors", "step_00000004.safetensors"]
    rows = read_rows(run)
    assert list(rows[0]) == ["step", "questions", "seconds", "loss", "error_rate", "questions_per_sec", "eval_loss",
                             "eval_error_rate", "skipped_steps"]
    assert [int(r["step"]) for r in rows] == [2, 4] and all(r["eval_loss"] for r in rows)
    assert all(0 <= float(r["error_rate"]) <= 1 and 0 <= float(r["eval_error_rate"]) <= 1 for r in rows)

    assert result.eval is not None
    assert result.eval.unit == "wrong answers" and result.eval.split == "valid"
    assert result.eval.sequences == 20 and result.eval.length is None and result.eval.metrics == {}
    text = result.eval.describe("memn2n_babi")
    assert text.startswith("memn2n_babi: ") and "% valid error (20 questions)" in text
    assert f"{100 * (1 - result.eval.perfect):.1f}% valid error" in text
    summary = describe_result("memn2n_babi", result)
    assert "error rate " in summary and "% valid error" in summary and "per sequence" not in summary
    assert "questions in" in summary and "questions/s" in summary

    meta = json.loads(sorted((run / "checkpoints").glob("*.json"))[-1].read_text())
    assert meta["eval"]["unit"] == "wrong answers" and meta["eval"]["split"] == "valid"
    assert meta["config"]["linear_start"] == config.linear_start > 4  # the spec's linear start (2000 steps)
    # still on unless the evaluation at step 4 did not improve on the one at step 2
    losses = [float(r["eval_loss"]) for r in rows]
    active = losses[1] < losses[0]
    assert meta["linear_start"]["active"] is active and linear_flags(result.model) == [active]
    assert meta["linear_start"]["best"] == pytest.approx(min(losses), rel=1e-5)
    assert config_from_spec(cogdsl.load(run / "spec.yaml")).steps == 4  # the spec as trained


def test_evaluations_are_capped_by_the_valid_split(tmp_path: Path) -> None:
    spec = cogdsl.load(qa_spec(tmp_path, small_train(steps=1, eval_every=1, eval_size=500)))
    result = train(spec, None, tmp_path / "run", progress=False)
    assert result.eval is not None and result.eval.sequences == 100  # the valid split of train_size 1000


def test_a_short_run_learns_task_1(tmp_path: Path) -> None:
    # 300 steps, adam lr 0.01, batch 32, no linear start: seeds 0-5 measured 2.2-5.1% test error (1000
    # questions; seed 0: 3.5%) and 1-3% valid error (chance: one of six places, 83%); with the spec's linear
    # start still on at step 300 (an earlier version of the hops), 10-17%.
    spec = cogdsl.load(qa_spec(tmp_path, small_train(steps=300, eval_every=300, eval_size=100, log_every=100,
                                                     checkpoint_every=300)))
    config = config_from_spec(spec)
    assert (config.optimizer, config.optimizer_params["lr"], config.batch) == ("adam", 0.01, 32)
    result = train(spec, config, tmp_path / "run", progress=False)
    assert result.eval is not None and 1 - result.eval.perfect < 0.25
    test = evaluate(result.model, make_task("babi", number=1), split="test")
    assert test.sequences == 1000 and test.split == "test"
    assert 1 - test.perfect < 0.25, test.describe("memn2n_babi")
    assert test.loss < 0.5 * math.log(6)


# -- linear start ---------------------------------------------------------------------------------------------------


class LinearStub(nn.Module):
    """Records what LinearStart asks of a model."""

    def __init__(self, has_hops: bool = True) -> None:
        super().__init__()
        self.calls: list[bool] = []
        self.has_hops = has_hops

    def set_linear_start(self, on: bool) -> bool:
        self.calls.append(on)
        return self.has_hops


def test_linear_start_ends_when_validation_does_not_improve() -> None:
    model = LinearStub()
    linear = LinearStart(model, 1000)
    assert linear.active and model.calls == [True]
    assert linear.after_evaluation(3.0, 10) is False and linear.active
    assert linear.after_evaluation(2.0, 20) is False and linear.active
    assert linear.state() == {"active": True, "best": 2.0}
    assert linear.after_evaluation(2.5, 30) is True
    assert not linear.active and model.calls == [True, False]
    assert "2.50 did not improve on 2.00" in linear.ended
    assert linear.state() == {"active": False, "best": 2.0}


def test_an_equal_validation_loss_ends_linear_start() -> None:
    linear = LinearStart(LinearStub(), 1000)
    assert not linear.after_evaluation(2.0, 10)
    assert linear.after_evaluation(2.0, 20) and not linear.active


def test_linear_start_ends_at_its_step_cap() -> None:
    model = LinearStub()
    linear = LinearStart(model, 5)
    assert [linear.after_step(step) for step in range(1, 5)] == [False] * 4 and linear.active
    assert linear.after_step(5) is True and not linear.active
    assert model.calls == [True, False] and linear.ended == "linear start ended after its 5 steps"


def test_linear_start_off_and_restored() -> None:
    model = LinearStub()
    off = LinearStart(model, 0)
    assert not off.active and model.calls == []  # 0 turns it off without touching the model
    assert off.state() == {"active": False, "best": None}
    ended = LinearStart(model, 100, {"active": False, "best": 1.5})
    assert not ended.active and model.calls == [False]
    going = LinearStart(model, 100, {"active": True, "best": 1.5})
    assert going.active and model.calls == [False, True]
    assert going.after_evaluation(1.6, 10)  # the restored best counts
    fresh = LinearStart(LinearStub(), 100, {"active": True, "best": None})
    assert fresh.best == math.inf and fresh.state() == {"active": True, "best": None}


def test_linear_start_needs_hops() -> None:
    with pytest.raises(UsageError, match="no hops block"):
        LinearStart(LinearStub(has_hops=False), 10)
    LinearStart(LinearStub(has_hops=False), 0)  # off: fine without hops


def test_linear_start_on_an_ntm_spec_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ntm.yaml"
    path.write_text(tiny_ntm(train={"optimizer": "{name: adam, lr: 3.0e-3}", "batch": 4, "steps": 3,
                                    "linear_start": 5}), encoding="utf-8")
    spec = cogdsl.load(path)
    with pytest.raises(UsageError, match="linear_start"):
        train(spec, None, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # refused before the folder was made
    assert main(["train", str(path), "--out", str(tmp_path / "cli"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "linear_start" in err and "Traceback" not in err


def test_the_hops_are_linear_for_the_first_steps(tmp_path: Path, record_linear: list[bool]) -> None:
    spec = cogdsl.load(qa_spec(tmp_path, small_train(steps=8, linear_start=5, eval_every=1000, log_every=1000,
                                                     checkpoint_every=1000)))
    result = train(spec, None, tmp_path / "run", progress=False)
    assert record_linear == [True] * 5 + [False] * 3
    assert linear_flags(result.model) == [False]
    meta = load_checkpoint(tmp_path / "run").meta
    assert meta["linear_start"]["active"] is False


def test_without_linear_start_the_hops_keep_their_softmax(tmp_path: Path, record_linear: list[bool]) -> None:
    spec = cogdsl.load(qa_spec(tmp_path, small_train(steps=3, eval_every=1000, log_every=1000,
                                                     checkpoint_every=1000)))
    result = train(spec, None, tmp_path / "run", progress=False)
    assert record_linear == [False] * 3 and linear_flags(result.model) == [False]
    assert load_checkpoint(tmp_path / "run").meta["linear_start"] == {"active": False, "best": None}


def test_a_validation_loss_that_does_not_improve_ends_linear_start_in_training(
        tmp_path: Path, record_linear: list[bool], monkeypatch: pytest.MonkeyPatch) -> None:
    losses = iter([3.0, 2.0, 2.5, 2.4, 2.3])
    real = train_module.evaluate

    def scripted(*args: Any, **kwargs: Any) -> EvalResult:
        result = real(*args, **kwargs)
        return dataclasses.replace(result, loss=next(losses))

    monkeypatch.setattr(train_module, "evaluate", scripted)
    spec = cogdsl.load(qa_spec(tmp_path, small_train(steps=10, linear_start=1000, eval_every=2, log_every=2,
                                                     checkpoint_every=1000)))
    result = train(spec, None, tmp_path / "run", progress=False)
    # evaluations after steps 2, 4, 6: the third (2.5) does not improve on 2.0
    assert record_linear == [True] * 6 + [False] * 4
    assert load_checkpoint(tmp_path / "run").meta["linear_start"] == {"active": False, "best": 2.0}
    assert result.step == 10


# -- linear start across a resume ---------------------------------------------------------------------------------


class ScriptedValidation:
    """A validation loss given by the step (counted from the task's training draws), for runs whose linear
    start should end at a known step whatever the model's numbers; the real evaluation runs too."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, losses: dict[int, float]) -> None:
        self.losses, self.step = losses, 0
        self.evaluated: list[int] = []
        real_evaluate, real_sample = train_module.evaluate, BabiTask.sample
        script = self

        def sample(task: BabiTask, *args: Any, **kwargs: Any) -> Any:
            script.step += 1
            return real_sample(task, *args, **kwargs)

        def evaluate_(*args: Any, **kwargs: Any) -> EvalResult:
            result = real_evaluate(*args, **kwargs)
            script.evaluated.append(script.step)
            return dataclasses.replace(result, loss=script.losses[script.step])

        monkeypatch.setattr(BabiTask, "sample", sample)
        monkeypatch.setattr(train_module, "evaluate", evaluate_)


RESUME_TRAIN = small_train(steps=20, lr=0.02, linear_start=1000, lr_decay_every=12, eval_every=5, log_every=5,
                           checkpoint_every=5)
# the validation loss improves at 5 and 10, not at 15: linear start ends after step 15
SCRIPT = {1: 1.0, 5: 3.0, 10: 2.0, 15: 2.5, 20: 1.9}


@pytest.mark.parametrize("split_at", [10, 15])
def test_linear_start_survives_a_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split_at: int) -> None:
    # Stopped at 10 the run must remember the best loss (2.0) to end linear start at 15; stopped at 15 it must
    # remember that linear start is over.
    spec = cogdsl.load(qa_spec(tmp_path, RESUME_TRAIN))
    config = config_from_spec(spec)
    script = ScriptedValidation(monkeypatch, SCRIPT)
    whole = train(spec, config, tmp_path / "whole", progress=False)
    assert script.evaluated == [5, 10, 15, 20]
    whole_state = load_checkpoint(tmp_path / "whole").meta["linear_start"]
    assert whole_state == {"active": False, "best": 2.0} and linear_flags(whole.model) == [False]

    script.step, script.evaluated = 0, []
    first = train(spec, config.with_overrides(steps=split_at), tmp_path / "split", progress=False)
    assert first.step == split_at
    assert load_checkpoint(tmp_path / "split").meta["linear_start"]["active"] is (split_at < 15)
    script.step = split_at
    resumed = train(spec, config, tmp_path / "split", resume=True, progress=False)
    assert resumed.step == 20 and script.evaluated == [5, 10, 15, 20][: split_at // 5] + list(
        range(split_at + 5, 21, 5))
    assert load_checkpoint(tmp_path / "split").meta["linear_start"] == whole_state
    same_parameters(tmp_path / "whole", tmp_path / "split")
    rows_whole, rows_split = read_rows(tmp_path / "whole"), read_rows(tmp_path / "split")
    assert [r["step"] for r in rows_whole] == [r["step"] for r in rows_split]
    assert [r["loss"] for r in rows_whole] == [r["loss"] for r in rows_split]


def test_resume_with_linear_start_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    # The real validation loss decides; stopped at an evaluation step, so both runs see the same evaluations.
    # Linear start is over by step 7 at the latest: the resumed run must not switch it back on.
    spec_path = qa_spec(tmp_path, small_train(steps=20, lr=0.02, linear_start=7, lr_decay_every=12, eval_every=5,
                                              log_every=5, checkpoint_every=5))
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(["train", str(spec_path), "--out", str(whole), "--no-progress"]) == 0
    assert main(["train", str(spec_path), "--out", str(split), "--no-progress", "--steps", "10"]) == 0
    assert main(["train", str(spec_path), "--out", str(split), "--no-progress", "--resume", "--steps", "20"]) == 0
    assert load_checkpoint(split).meta["linear_start"] == load_checkpoint(whole).meta["linear_start"]
    assert load_checkpoint(split).meta["linear_start"]["active"] is False
    same_parameters(whole, split)
    rows_whole, rows_split = read_rows(whole), read_rows(split)
    for a, b in zip(rows_whole, rows_split, strict=True):
        assert (a["step"], a["loss"], a["eval_loss"]) == (b["step"], b["loss"], b["eval_loss"])


def test_a_time_stop_does_not_change_linear_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = cogdsl.load(qa_spec(tmp_path, RESUME_TRAIN))
    script = ScriptedValidation(monkeypatch, SCRIPT)
    train(spec, None, tmp_path / "whole", progress=False)
    script.step = 0
    stopped = train(spec, None, tmp_path / "split", progress=False, max_minutes=1e-6)
    assert stopped.stopped == "time" and stopped.step == 1  # and evaluated at step 1: loss 1.0
    script.step = 1
    train(spec, None, tmp_path / "split", resume=True, progress=False)
    assert load_checkpoint(tmp_path / "split").meta["linear_start"] == load_checkpoint(
        tmp_path / "whole").meta["linear_start"]
    same_parameters(tmp_path / "whole", tmp_path / "split")


# -- learning-rate decay ------------------------------------------------------------------------------------------


def decay_config(**settings: Any) -> TrainConfig:
    return TrainConfig(task="babi", task_params={"number": 1}, optimizer="adam", optimizer_params={"lr": 0.01},
                       **settings)


def lr_of(optimizer: torch.optim.Optimizer) -> list[float]:
    return [group["lr"] for group in optimizer.param_groups]


def test_set_learning_rate_decays_stepwise() -> None:
    weight = nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.Adam([{"params": [weight]}, {"params": [nn.Parameter(torch.zeros(1))]}], lr=0.01)
    config = decay_config(lr_decay_every=10, lr_decay=0.5)
    expected = {0: 0.01, 9: 0.01, 10: 0.005, 19: 0.005, 20: 0.0025, 25: 0.0025, 30: 0.00125}
    for step, lr in expected.items():
        set_learning_rate(optimizer, config, step)
        assert lr_of(optimizer) == pytest.approx([lr, lr]), step
    set_learning_rate(optimizer, config, 0)  # a function of the step alone
    assert lr_of(optimizer) == pytest.approx([0.01, 0.01])
    quarter = decay_config(lr_decay_every=3, lr_decay=0.25)
    set_learning_rate(optimizer, quarter, 7)
    assert lr_of(optimizer) == pytest.approx([0.01 / 16] * 2)


def test_set_learning_rate_uses_the_optimizers_default_lr() -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.5)
    config = TrainConfig(task="babi", task_params={}, optimizer="sgd", optimizer_params={}, lr_decay_every=4)
    set_learning_rate(optimizer, config, 5)
    assert lr_of(optimizer) == pytest.approx([1e-2 * 0.5])  # sgd's default lr 1e-2, halved once


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
def test_weight_decay_reaches_the_optimizer(name: str) -> None:
    from cogdsl.training.loop import build_optimizer

    # With a zero loss gradient, one step moves a weight only through its decay: an L2 penalty
    # (adam, sgd, rmsprop: λθ joins the gradient) or a decoupled decay (adamw: θ ← θ(1 − lr·λ)).
    def one_step(decay: float) -> float:
        weight = nn.Parameter(torch.tensor([2.0]))
        config = TrainConfig(task="babi", task_params={}, optimizer=name,
                             optimizer_params={"lr": 0.1, "weight_decay": decay})
        optimizer = build_optimizer([weight], config)
        weight.grad = torch.zeros(1)
        optimizer.step()
        return float(weight.detach())

    assert one_step(0.0) == 2.0
    moved = one_step(0.5)
    if name == "adamw":
        assert moved == pytest.approx(2.0 * (1 - 0.1 * 0.5))
    else:
        assert moved < 2.0


def test_weight_decay_must_not_be_negative(tmp_path: Path) -> None:
    path = qa_spec(tmp_path, "  task babi(number=1)\n  optimizer adam(lr=0.01, weight_decay=-1)\n  steps 1")
    with pytest.raises(cogdsl.SpecError) as err:
        cogdsl.load(path)
    assert "weight_decay" in str(err.value)


def test_no_decay_leaves_the_learning_rate_alone() -> None:
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=0.123)
    config = decay_config(lr_decay_every=0, lr_decay=0.5)
    for step in (0, 10, 1000):
        set_learning_rate(optimizer, config, step)
        assert lr_of(optimizer) == [0.123]


def test_training_decays_the_learning_rate(tmp_path: Path) -> None:
    spec = cogdsl.load(qa_spec(tmp_path, small_train(steps=25, lr=0.01, lr_decay_every=10, eval_every=1000,
                                                     log_every=1000, checkpoint_every=10)))
    train(spec, None, tmp_path / "run", progress=False)
    lrs = {load_checkpoint(path).step: load_checkpoint(path).meta["optimizer"]["param_groups"][0]["lr"]
           for path in sorted((tmp_path / "run" / "checkpoints").glob("*.safetensors"))}
    # the rate of the last step taken: step index 9 (0.01), 19 (0.005), 24 (0.0025)
    assert lrs == pytest.approx({10: 0.01, 20: 0.005, 25: 0.0025})


# -- cogdsl eval --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qa_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("qa_run")
    spec_path = qa_spec(folder, small_train(steps=30, eval_every=30, log_every=10, checkpoint_every=30))
    assert main(["train", str(spec_path), "--out", str(folder / "run"), "--no-progress"]) == 0
    return spec_path, folder / "run"


def test_eval_command_on_a_qa_checkpoint(qa_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    spec_path, run = qa_run
    capsys.readouterr()
    assert main(["eval", str(spec_path), str(run / "checkpoints" / "step_00000030.safetensors")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("memn2n_babi: ") and "% test error (1000 questions), loss " in out
    assert main(["eval", str(spec_path), str(run), "--sequences", "150"]) == 0
    assert "% test error (150 questions)" in capsys.readouterr().out
    # the same numbers as evaluate() on the test split
    spec, task, model, _ = train_module.load_trained(str(spec_path), str(run))
    expected = evaluate(model, task, sequences=150).describe(spec.name)
    assert main(["eval", str(spec_path), str(run), "--sequences", "150"]) == 0
    assert capsys.readouterr().out.strip() == expected


def test_eval_plot_on_a_qa_checkpoint(qa_run: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    spec_path, run = qa_run
    plot = tmp_path / "w.png"
    code = main(["eval", str(spec_path), str(run), "--sequences", "20", "--plot", str(plot)])
    assert code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "cogdsl trace SPEC CHECKPOINT --question N" in err
    assert not plot.exists()


def test_eval_len_is_refused_for_a_qa_task(qa_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    spec_path, run = qa_run
    assert main(["eval", str(spec_path), str(run), "--len", "5"]) == 1
    assert "task babi has no sequence lengths (its examples come whole)" in capsys.readouterr().err
