"""Training that notices and survives trouble, and a check of many files that survives a bug."""

from __future__ import annotations

import pytest

from cogdsl.cli.command import main
from tests.tiny import tiny_ntm


def test_validate_reports_an_internal_error_per_file_and_goes_on(tmp_path, monkeypatch, capsys):
    import cogdsl.compiler.pipeline

    good = tmp_path / "a_good.yaml"
    good.write_text(tiny_ntm(train={"batch": 2}))
    broken = tmp_path / "b_breaks.yaml"
    broken.write_text(tiny_ntm(name="breaks", train={"batch": 2}))
    later = tmp_path / "c_later.yaml"
    later.write_text("cogdsl: 1\nmodel: m\n")  # a real error, after the file that breaks cogdsl
    original = cogdsl.compiler.pipeline.check

    def check(spec, task=None):
        if spec.name == "breaks":
            raise RuntimeError("a bug\nover two lines")
        return original(spec, task)

    monkeypatch.setattr(cogdsl.compiler.pipeline, "check", check)
    assert main(["validate", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert f"{broken}:1:1: error[E900]: internal error while checking this file: RuntimeError: a bug over two lines" \
        in lines
    assert any(line.startswith(f"{later}:") and "error[E" in line for line in lines)  # the next file was checked
    assert "Traceback" not in out + err and "2 of 3 files have errors" in err


def _nan_at(monkeypatch, steps: set[int]) -> None:
    """The copy task's loss is NaN at the given (1-based) steps, as a blow-up would make it."""
    from cogdsl.tasks.copy import CopyTask

    calls = {"n": 0}
    original = CopyTask.loss_of

    def loss_of(self, logits, batch):
        loss = original(self, logits, batch)
        if logits.requires_grad:  # a training step, not an evaluation
            calls["n"] += 1
            if calls["n"] in steps:
                return loss * float("nan")
        return loss

    monkeypatch.setattr(CopyTask, "loss_of", loss_of)


def test_a_non_finite_step_is_skipped_counted_and_logged(tmp_path, monkeypatch, capsys):
    import csv

    import torch

    from cogdsl.training.checkpoints import load_checkpoint
    from cogdsl.training.loop import train

    _nan_at(monkeypatch, {3, 5})
    spec = tmp_path / "t.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 6, "log_every": 2, "eval_every": 3, "eval_size": 4}))
    result = train(str(spec), out_dir=tmp_path / "run", progress=False, tensorboard=False, device="cpu")
    assert result.skipped == 2 and result.step == 6
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    saved = load_checkpoint(tmp_path / "run")
    assert all(torch.isfinite(t).all() for t in saved.tensors.values() if t.is_floating_point())
    assert saved.meta["skipped_steps"] == 2
    with open(tmp_path / "run" / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["step"], r["skipped_steps"]) for r in rows] == [("2", "0"), ("3", "1"), ("4", "1"), ("6", "2")]
    assert all(r["loss"] != "nan" for r in rows)  # the skipped steps' losses are not averaged in
    err = capsys.readouterr().err
    assert "step 3: the loss or a gradient is not finite (NaN or inf): step skipped, 1 so far" in err


def test_without_the_check_a_nan_reaches_the_weights(tmp_path, monkeypatch):
    import torch

    from cogdsl.training.loop import train

    _nan_at(monkeypatch, {2})
    spec = tmp_path / "t.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 3, "skip_nonfinite": "false"}))
    result = train(str(spec), out_dir=tmp_path / "run", progress=False, tensorboard=False, device="cpu")
    assert result.skipped == 0
    assert not all(torch.isfinite(p).all() for p in result.model.parameters())  # what the check prevents


@pytest.mark.filterwarnings("ignore:Error detected in")  # torch's anomaly mode warns with the forward's traceback
def test_detect_anomaly_names_the_block_where_the_nan_started(tmp_path, monkeypatch, capsys):
    from cogdsl.blocks.controllers import RecurrentController
    from cogdsl.training.loop import train

    calls = {"n": 0}
    original = RecurrentController.forward

    def forward(self, x, state):
        calls["n"] += 1
        h, new = original(self, x, state)
        return (h * float("nan"), new) if calls["n"] == 9 else (h, new)  # step 2 or later of training

    monkeypatch.setattr(RecurrentController, "forward", forward)
    spec = tmp_path / "t.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 4, "eval_every": 100}))
    result = train(str(spec), out_dir=tmp_path / "run", progress=False, tensorboard=False, device="cpu",
                   detect_anomaly=True)
    assert result.skipped == 1
    err = capsys.readouterr().err
    assert "the first non-finite value came out of block 'ctrl' (lstm) in the forward pass" in err


def test_the_schedules_follow_their_equations():
    import math

    from cogdsl.training.schedule import rate_factor

    assert [rate_factor("constant", {"warmup": 4}, t, 100) for t in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert [rate_factor("step", {"every": 10, "factor": 0.5}, t, 100) for t in (0, 9, 10, 25)] == [1, 1, 0.5, 0.25]
    assert rate_factor("cosine", {"warmup": 10, "final": 0.1}, 10, 110) == 1.0
    assert math.isclose(rate_factor("cosine", {"warmup": 10, "final": 0.1}, 60, 110), 0.55)
    assert math.isclose(rate_factor("cosine", {"final": 0.1}, 100, 100), 0.1)
    assert math.isclose(rate_factor("linear", {"final": 0.0}, 25, 100), 0.75)


def test_a_schedule_in_the_spec_sets_each_steps_rate(tmp_path, monkeypatch):
    import torch

    from cogdsl.training.loop import train

    rates: list[float] = []
    original = torch.optim.RMSprop.step

    def step(self, closure=None):
        rates.append(self.param_groups[0]["lr"])
        return original(self, closure)

    monkeypatch.setattr(torch.optim.RMSprop, "step", step)
    spec = tmp_path / "t.cog"
    spec.write_text("model m\ninput x\noutput y = sigmoid(c)\nlstm c(hidden=4) <- x\n"
                    "train { task copy(bits=2, max_len=2); optimizer rmsprop(lr=0.01); batch 2; steps 6; "
                    "schedule linear(warmup=2, final=0.5) }\n")
    train(str(spec), out_dir=tmp_path / "run", progress=False, tensorboard=False, device="cpu")
    expected = [0.005, 0.01, 0.01, 0.00875, 0.0075, 0.00625]
    assert rates == [pytest.approx(r) for r in expected]
    assert "schedule: {name: linear, warmup: 2, final: 0.5}" in (tmp_path / "run" / "spec.yaml").read_text()


@pytest.mark.parametrize(("schedule", "message"), [
    ("schedule cosne(warmup=2)", "unknown schedule 'cosne'"),
    ("schedule cosine(final=2)", "final"),
    ("schedule step(every=10); lr_decay_every 10", "both a schedule and lr_decay_every"),
])
def test_bad_schedules_are_located_errors(tmp_path, capsys, schedule, message):
    spec = tmp_path / "t.cog"
    spec.write_text(f"model m\ninput x\noutput y = sigmoid(c)\nlstm c(hidden=4) <- x\n"
                    f"train {{ task copy(bits=2); {schedule} }}\n")
    assert main(["validate", str(spec)]) == 1
    out = capsys.readouterr().out
    assert "error[E603]" in out and message in out and "Traceback" not in out
