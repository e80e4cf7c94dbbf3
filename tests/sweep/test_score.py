"""What a trial scores once trained, run here without Ray: the best validation's weights when the spec keeps
them, the last otherwise, numbers that cogdsl eval prints too; and how often a skip RNN skipped."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.cli.command import main
from cogdsl.sweep.plan import Plan, Score
from cogdsl.sweep.score import skipped_updates
from cogdsl.sweep.settings import parse_set
from cogdsl.sweep.trial import run_trial, trial_config
from cogdsl.training.checkpoints import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, spec: Path, score: Score, *sets: str) -> dict:
    (trial,) = Plan(specs=[str(spec)], settings=[parse_set(s) for s in sets]).trials()
    folder = tmp_path / "sweep" / trial.id
    return run_trial(trial_config(trial, folder, score, max_minutes=None, device="cpu", gpus=0, threads=1,
                                  tensorboard=False)) | {"folder": folder}


def test_a_spec_that_keeps_its_best_is_scored_on_it(tmp_path: Path, capsys) -> None:
    library = (ROOT / "specs" / "stack_anbn.cog").read_text()
    assert "keep_best true" in library  # the paper picks its models on validation; so does the spec
    spec = tmp_path / "stack_anbn.cog"
    spec.write_text(re.sub(r"eval_every \d+", "eval_every 2", library).replace("eval_size 200", "eval_size 20"))
    marker = _run(tmp_path, spec, Score(lengths=(4,), sequences=30), "train.steps=8", "train.task=mirror",
                  "inputs.x=null", "outputs.y.size=null")
    assert marker["status"] == "done", marker.get("error")
    folder = marker["folder"]
    with (folder / "log.csv").open() as f:
        losses = {int(row["step"]): float(row["eval_loss"]) for row in csv.DictReader(f) if row["eval_loss"]}
    scored = marker["scored"]
    assert sorted(losses) == [2, 4, 6, 8] and scored["weights"] == "best"
    assert scored["step"] == min(losses, key=losses.__getitem__)
    assert scored["valid_loss"] == pytest.approx(losses[scored["step"]], rel=1e-5)
    assert "x: 3" in (folder / "spec.yaml").read_text()  # sized to mirror's alphabet by the task
    # the numbers cogdsl eval prints for the same checkpoint
    assert main(["eval", str(folder / "spec.yaml"), str(folder / scored["checkpoint"]), "--len", "4",
                 "--sequences", "30"]) == 0
    printed = capsys.readouterr().out
    assert f"{100 * scored['metrics']['perfect@4']:.1f}% sequences perfect" in printed
    assert json.loads((folder / "trial.json").read_text())["scored"] == scored


def test_a_spec_that_does_not_ask_is_scored_on_its_last_weights(tmp_path: Path) -> None:
    spec = tmp_path / "lstm_adding.cog"
    spec.write_text((ROOT / "specs" / "lstm_adding.cog").read_text().replace("eval_every 500; eval_size 1000",
                                                                             "eval_every 1; eval_size 10"))
    marker = _run(tmp_path, spec, Score(lengths=(13,), sequences=10), "train.steps=2", "train.task.max_len=13",
                  "train.task.min_len=13")
    assert marker["status"] == "done", marker.get("error")
    assert (marker["folder"] / "checkpoints" / "best.safetensors").is_file()  # kept (the default) ...
    assert marker["scored"]["weights"] == "last" and marker["scored"]["step"] == 2  # ... but not scored
    assert set(marker["scored"]["metrics"]) == {"perfect@13", "error@13", "wrong@13", "loss@13"}
    assert "min_len: 13" in (marker["folder"] / "spec.yaml").read_text()


@pytest.mark.parametrize("bias", [30.0, -30.0])
def test_skipped_updates_counts_skips_and_the_markers_read(bias: float) -> None:
    """An update gate forced open updates at every step and reads both markers; forced shut, the skip RNN updates
    only at step 0 (its first step always updates) and never reads the second marker."""
    from cogdsl.tasks import make_task

    model = cogdsl.compile(cogdsl.load(ROOT / "specs" / "skip_rnn_adding.cog"))
    gate = model.controllers["ctrl"].update_gate
    with torch.no_grad():
        gate.weight.zero_()
        gate.bias.fill_(bias)
    skipped = skipped_updates(model, make_task("adding"), 20)
    if bias > 0:
        assert skipped == {"updates_skipped": 0.0, "both_markers_read": 1.0}
    else:
        assert skipped is not None
        assert skipped["updates_skipped"] == pytest.approx(19 / 20) and skipped["both_markers_read"] == 0.0
    assert skipped_updates(cogdsl.compile(cogdsl.load(ROOT / "specs" / "lstm_adding.cog")), make_task("adding"),
                           20) is None


def test_a_trial_past_its_minutes_stops_is_scored_and_marked_time(tmp_path: Path) -> None:
    from tests.tiny import tiny_ntm

    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 100000, "eval_every": 100000, "eval_size": 4}))
    (trial,) = Plan(specs=[str(spec)]).trials()
    marker = run_trial(trial_config(trial, tmp_path / "sweep" / trial.id, Score(sequences=10), max_minutes=0.002,
                                    device="cpu", gpus=0, threads=1, tensorboard=False))
    assert marker["status"] == "time" and marker["stopped"] == "time" and 0 < marker["step"] < 100000
    assert marker["scored"]["step"] == marker["step"] and "perfect" in marker["scored"]["metrics"]


def test_rescore_scores_finished_trials_again_without_training(tmp_path: Path, capsys) -> None:
    """--rescore: a plan that gained a test length scores the finished trials at it from their checkpoints; the
    lengths already scored give the same numbers, nothing trains, and a trial that had not finished is left."""
    from tests.tiny import tiny_ntm

    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 2, "eval_every": 2, "eval_size": 4,
                                    "checkpoint_every": 2}))
    plan = Plan(specs=[str(spec)], seeds=(0, 1))
    trials = plan.trials()
    out = tmp_path / "sweep"
    markers = [run_trial(trial_config(trial, out / trial.id, Score(lengths=(2,), sequences=20), max_minutes=None,
                                      device="cpu", gpus=0, threads=1, tensorboard=False)) for trial in trials]
    assert [m["status"] for m in markers] == ["done", "done"]
    (out / "sweep.json").write_text("{}")
    (out / trials[1].id / "trial.json").unlink()  # as if killed before it finished
    log = (out / trials[0].id / "log.csv").read_text()
    code = main(["sweep", str(spec), "--seeds", "2", "--out", str(out), "--rescore", "--lengths", "2", "3",
                 "--sequences", "20"])
    printed, err = capsys.readouterr()
    assert code == 0, err
    assert "1 of 1 finished trials scored again" in printed and "1 trial had not finished and was left" in err
    again = json.loads((out / trials[0].id / "trial.json").read_text())
    assert set(again["scored"]["metrics"]) >= {"perfect@2", "perfect@3", "wrong@3"} and "rescored" in again
    assert again["scored"]["metrics"]["wrong@2"] == pytest.approx(markers[0]["scored"]["metrics"]["wrong@2"])
    assert again["cpu_seconds"] == markers[0]["cpu_seconds"]  # the rest of the marker is the training's
    assert (out / trials[0].id / "log.csv").read_text() == log  # nothing trained
    assert not (out / trials[1].id / "trial.json").exists()
    assert json.loads((out / "sweep.json").read_text())["plan"]["score"]["lengths"] == [2, 3]
    assert main(["sweep", str(spec), "--out", str(tmp_path / "none"), "--rescore"]) == 1
    assert "is no sweep folder" in capsys.readouterr().err


def test_a_resumed_trial_keeps_its_earlier_output_and_the_table_says_it_was_resumed(tmp_path: Path,
                                                                                    capsys) -> None:
    """An attempt that resumes adds its output to the earlier one's, its CPU seconds count the training its
    checkpoint kept from the attempt before, and the table says so."""
    from tests.tiny import tiny_ntm

    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 4, "eval_every": 2, "eval_size": 4,
                                    "checkpoint_every": 2}))
    plan = Plan(specs=[str(spec)], seeds=(0,))
    (trial,) = plan.trials()
    out = tmp_path / "sweep"
    config = trial_config(trial, out / trial.id, Score(sequences=10), max_minutes=None, device="cpu", gpus=0,
                          threads=1, tensorboard=False)
    first = run_trial(config)
    printed = (out / trial.id / "output.txt").read_text()
    assert first["status"] == "done" and not first["resumed"] and "evaluation" in printed
    (out / trial.id / "trial.json").unlink()  # as if killed after its last checkpoint, before its marker
    kept = load_checkpoint(out / trial.id / "checkpoints" / "step_00000004.safetensors").meta["cpu_seconds"]
    assert 0 < kept <= first["cpu_seconds"]
    again = run_trial(config)
    assert again["status"] == "done" and again["resumed"]
    assert again["earlier_cpu_seconds"] == pytest.approx(kept, abs=1e-3)
    assert again["cpu_seconds"] > kept and again["wall_seconds"] > again["earlier_seconds"] > 0
    assert (out / trial.id / "output.txt").read_text().startswith(printed)  # the first attempt's, then more
    (out / "sweep.json").write_text(json.dumps({"plan": plan.to_json(), "trials": [trial.to_json()]}))
    assert main(["table", str(out), "--metric", "perfect"]) == 0
    said = capsys.readouterr().out
    assert f"Resumed after an interruption (their seconds include the training their checkpoints kept from the " \
        f"earlier attempts): {trial.id}." in said
    marker = json.loads((out / trial.id / "trial.json").read_text())
    for key in ("earlier_cpu_seconds", "earlier_seconds"):  # a marker written before they were kept
        del marker[key]
    (out / trial.id / "trial.json").write_text(json.dumps(marker))
    assert main(["table", str(out), "--metric", "perfect"]) == 0
    assert f"Resumed after an interruption (their seconds are those of the last part): {trial.id}." in \
        capsys.readouterr().out
