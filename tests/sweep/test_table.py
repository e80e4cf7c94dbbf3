"""cogdsl table on sweep folders written here (no Ray, no training): the metrics read from log.csv (reached,
relapses, the scored evaluation), the seed picked on validation, the columns and the files written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cogdsl.cli.command import main
from cogdsl.sweep.plan import TableSettings
from cogdsl.sweep.table import log_metrics, relapses, shown

HEADER = "step,sequences,seconds,loss,bit_errors,seq_per_sec,eval_loss,eval_bit_errors,skipped_steps\n"


def _trial(sweep: Path, trial_id: str, model: str, settings: dict, seed: int, evaluations: list[tuple[int, float]],
           status: str = "done", metrics: dict | None = None, scored_step: int | None = None,
           skipped: int = 0, gpus: float = 0.0) -> dict:
    folder = sweep / trial_id
    folder.mkdir(parents=True)
    rows = [f"{step},{step * 16},{step / 10},1.0,1.0,100,{errors / 10},{errors},{skipped}\n"
            for step, errors in evaluations]
    (folder / "log.csv").write_text(HEADER + "".join(rows))
    marker = {"id": trial_id, "status": status, "settings": settings, "seed": seed,
              "device": "cuda" if gpus else "cpu", "gpus": gpus, "cpu_seconds": 10.0 + seed, "wall_seconds": 20.0}
    if status == "failed":
        marker["error"] = "E604: no such file\nmore"
    else:
        marker["scored"] = {"weights": "best" if scored_step else "last", "step": scored_step or evaluations[-1][0],
                            "metrics": metrics or {}}
    (folder / "trial.json").write_text(json.dumps(marker))
    return {"id": trial_id, "model": model, "settings": settings, "seed": seed}


def _sweep(sweep: Path, trials: list[dict], table: dict | None = None) -> None:
    (sweep / "sweep.json").write_text(json.dumps({"plan": {"table": table or {}}, "trials": trials}))


def test_reached_and_relapses_are_read_from_the_evaluations(tmp_path: Path) -> None:
    assert relapses([(500, 60.0), (1000, 3.0), (1500, 70.0), (2000, 0.5)], 1.0, 10.0) == [1500]
    assert relapses([(500, 60.0), (1000, 40.0), (1500, 65.0), (2000, 0.0)], 1.0, 10.0) == []  # noise before learning
    _trial(tmp_path, "t", "m", {}, 0, [(500, 60.0), (1000, 3.0), (1500, 70.0), (2000, 0.5)], skipped=2)
    metrics = log_metrics(tmp_path / "t" / "log.csv", 1000, TableSettings())
    assert metrics["reached"] == 2000 and metrics["relapses"] == 1 and metrics["skipped_steps"] == 2
    assert (metrics["valid_errors"], metrics["valid_loss"]) == (3.0, 0.3)  # the evaluation of the scored step
    assert (metrics["best_valid_errors"], metrics["best_step"]) == (0.5, 2000)
    assert (metrics["last_valid_errors"], metrics["last_step"], metrics["steps"]) == (0.5, 2000, 2000)
    assert metrics["minutes"] == pytest.approx(200 / 60)
    assert log_metrics(tmp_path / "t" / "log.csv", None, TableSettings(target=0.1))["reached"] != 2000


def test_the_table_has_medians_each_seed_the_pick_and_the_failures(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    trials = [
        _trial(sweep, "s-a-0", "s", {"train.task.name": "anbn"}, 0, [(10, 2.0)], metrics={"perfect@60": 0.0}),
        _trial(sweep, "s-a-1", "s", {"train.task.name": "anbn"}, 1, [(10, 0.1)], metrics={"perfect@60": 1.0}),
        _trial(sweep, "s-a-2", "s", {"train.task.name": "anbn"}, 2, [(10, 0.5)], metrics={"perfect@60": 0.25}),
        _trial(sweep, "s-b-0", "s", {"train.task.name": "mirror"}, 0, [(10, 1.0)], metrics={"perfect@60": 0.5}),
        _trial(sweep, "s-b-1", "s", {"train.task.name": "mirror"}, 1, [(10, 1.0)], status="failed"),
    ]
    _sweep(sweep, trials, {"metrics": ["perfect@60"], "pick": "valid_loss"})
    assert main(["table", str(sweep), "--markdown", str(tmp_path / "t.md"), "--csv", str(tmp_path / "t.csv")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == ("| spec | name | perfect@60 | perfect@60, each seed | perfect@60, the seed of lowest "
                        "valid_loss | seeds | CPU s/trial |")
    assert lines[2] == "| `s` | anbn | 25.0% | 0.0%, 100.0%, 25.0% | 100.0% (seed 1) | 3 | 11 |"
    assert lines[3] == "| `s` | mirror | 50.0% | 50.0%, failed | 50.0% (seed 0) | 1 (1 failed) | 10 |"
    assert "Failed: s-b-1: E604: no such file" in out and "4 of 5 trials finished" in out
    assert (tmp_path / "t.md").read_text() == out
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert rows[0]["perfect@60 median"] == "0.25" and rows[0]["perfect@60 seed 2"] == "0.25"
    assert rows[1]["seeds failed"] == "1" and rows[1]["perfect@60 seed 1"] == ""
    # the files are not overwritten without --force; an unknown metric is named with those there are
    assert main(["table", str(sweep), "--csv", str(tmp_path / "t.csv")]) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["table", str(sweep), "--metric", "perfect@6"]) == 1
    err = capsys.readouterr().err
    assert "no finished trial has the metric 'perfect@6'; did you mean 'perfect@60'?" in err
    assert main(["table", str(sweep), "--trials", "--metric", "reached"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "| spec | name | seed | status | reached | CPU s/trial |"
    assert rows[2] == "| `s` | anbn | 0 | done | – | 10 |" and rows[3] == "| `s` | anbn | 1 | done | 10 | 11 |"
    # a plan that asks for a row per trial still gives its medians with --medians
    _sweep(sweep, trials, {"metrics": ["perfect@60"], "trials": True})
    assert main(["table", str(sweep)]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("| `s` | anbn | 0 | done | 0.0% |")
    assert main(["table", str(sweep), "--medians"]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("| `s` | anbn | 25.0% |")


def test_not_a_sweep_folder(tmp_path: Path, capsys) -> None:
    assert main(["table", str(tmp_path)]) == 1
    assert "is not a sweep folder: it has no sweep.json" in capsys.readouterr().err
    (tmp_path / "plan.yaml").write_text("specs: [a.cog]\n")  # a plan, given where its sweep's folder goes
    assert main(["table", str(tmp_path / "plan.yaml")]) == 1
    assert "plan.yaml is a file: cogdsl table reads a sweep's folder" in capsys.readouterr().err


def test_a_damaged_record_is_named_not_tabled_as_empty(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "sweep.json").write_text("{}")
    assert main(["table", str(sweep)]) == 1
    assert "sweep.json: not a sweep's record" in capsys.readouterr().err
    trials = [_trial(sweep, "s-0", "s", {}, 0, [(10, 1.0)], metrics={"perfect": 0.5}),
              _trial(sweep, "s-1", "s", {}, 1, [(10, 1.0)], metrics={"perfect": 0.7})]
    _sweep(sweep, trials, {"metrics": ["perfect"]})
    (sweep / "s-1" / "trial.json").write_text('{"status": "do')  # cut short
    assert main(["table", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "| `s` | 50.0% | 50.0%, trial.json unreadable | 1 (1 not finished) |" in out
    assert "Not finished: s-1 (trial.json unreadable)." in out


def test_values_are_shown_as_the_results_pages_write_them() -> None:
    assert shown("perfect@10", 0.886) == "88.6%" and shown("task_3_error", 0.441) == "44.1%"
    assert shown("wrong@10", 0.3512) == "0.35" and shown("loss", 0.0071) == "0.0071"
    assert shown("reached", 2000.0) == "2,000" and shown("valid_loss", None) == "–"
    assert shown("exact_caption", 0.174) == "17.4%" and shown("corpus_bleu4", 0.3603) == "36.0"



def test_on_gpus_the_time_is_gpu_seconds(tmp_path: Path, capsys) -> None:
    """A trial on a quarter of a GPU for 20 s of wall time took 5 GPU seconds."""
    sweep = tmp_path / "sweep"
    _sweep(sweep, [_trial(sweep, f"g-{s}", "g", {}, s, [(10, 1.0)], gpus=0.25) for s in (0, 1)])
    assert main(["table", str(sweep), "--metric", "valid_loss"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("| seeds | GPU s/trial |") and lines[2].endswith("| 2 | 5 |")


def test_a_half_run_sweep_tables_a_metric_only_its_unfinished_trials_will_have(tmp_path: Path, capsys) -> None:
    """The skip RNN's updates_skipped, while only the LSTM has finished: a blank column and a note, not a
    refusal; a name close to one the finished trials have is still taken for a slip."""
    sweep = tmp_path / "sweep"
    trials = [_trial(sweep, "lstm-0", "lstm", {}, 0, [(10, 1.0)], metrics={"perfect@100": 0.4}),
              {"id": "skip-0", "model": "skip", "settings": {}, "seed": 0}]  # no folder yet
    _sweep(sweep, trials, {"metrics": ["perfect@100", "updates_skipped@100"]})
    assert main(["table", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "| `lstm` | 40.0% | – |" in out and "No finished trial has updates_skipped@100 yet." in out
    assert main(["table", str(sweep), "--metric", "perfect@10"]) == 1
    assert "did you mean 'perfect@100'?" in capsys.readouterr().err
