"""What cogdsl sweep refuses before anything trains (no Ray): a table metric no trial will have, two trials in
one folder, a path set twice; and what it reads the same way from a plan and the command line (1e-3)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cogdsl.cli.command import main
from tests.sweep.test_table import _sweep as _write_sweep
from tests.sweep.test_table import _trial


def _plan(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text("specs: [tiny.yaml]\n" + text)
    return path


def _sweep(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["sweep", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("metric", "says"), [
    ("accuracy", "they will have error@3, loss@3, perfect@3, wrong@3, valid_loss"),
    ("Perfect@3", "did you mean 'perfect@3'?"),
    ("task_1_error@3", "they will have"),  # a bAbI task's score, on a copy task
    ("updates_skipped@3", "they will have"),  # without score: skipped_updates: true
])
def test_a_metric_no_trial_will_have_is_refused_before_training(spec: Path, tmp_path: Path, capsys, metric: str,
                                                                says: str) -> None:
    plan = _plan(tmp_path, f"score: {{lengths: [3], sequences: 20}}\ntable: {{metrics: [perfect@3, {metric}]}}\n")
    code, out, err = _sweep(capsys, "--plan", str(plan), "--out", str(tmp_path / "sweep"))
    assert code == 1 and out == "" and "Traceback" not in err
    assert f"{plan}: table: no trial of this sweep will have the metric '{metric}'" in err and says in err
    assert not (tmp_path / "sweep").exists()  # nothing ran, nothing was written


def test_the_metrics_a_trial_will_have_pass(spec: Path, tmp_path: Path, capsys) -> None:
    plan = _plan(tmp_path, "score: {lengths: [3], sequences: 20}\n"
                 "table: {metrics: [perfect@3, wrong@3, valid_loss], each: loss@3, pick: best_valid_errors}\n")
    code, out, err = _sweep(capsys, "--plan", str(plan), "--dry-run", "--out", str(tmp_path / "sweep"))
    assert code == 0, err
    assert out.strip().endswith("tiny_copy-seed0")


@pytest.mark.parametrize("argv", [
    ["{spec}", "{spec}"],  # a spec given twice
    ["{spec}", "--set", "blocks.mem.slots=8,8"],  # a value given twice
])
def test_two_trials_in_one_folder_are_refused_by_a_dry_run_too(spec: Path, capsys, argv: list[str]) -> None:
    code, out, err = _sweep(capsys, *(a.format(spec=spec) for a in argv), "--dry-run", "--out", "x")
    assert code == 1 and out == ""
    assert "two trials have the id tiny_copy-" in err


def test_a_path_set_twice_on_the_command_line_is_refused(spec: Path, capsys) -> None:
    code, _, err = _sweep(capsys, str(spec), "--set", "blocks.mem.slots=8", "--set", "blocks.mem.slots=16",
                          "--dry-run", "--out", "x")
    assert code == 1
    assert "--set blocks.mem.slots is given twice; give all its values in one" in err


def test_a_plan_reads_1e_3_as_the_command_line_does(spec: Path, tmp_path: Path, capsys) -> None:
    """YAML 1.1 reads 1e-3 (no dot) as a string; a plan's trials are those of --set ...=1e-3."""
    plan = _plan(tmp_path, "set: {train.optimizer.lr: [1e-3, 3.0e-4]}\n")
    _, from_plan, _ = _sweep(capsys, "--plan", str(plan), "--dry-run", "--out", "x")
    _, from_line, _ = _sweep(capsys, str(spec), "--set", "train.optimizer.lr=1e-3,3.0e-4", "--dry-run", "--out", "x")
    assert from_plan == from_line == "x/tiny_copy-lr=0.001-seed0\nx/tiny_copy-lr=0.0003-seed0\n"


@pytest.mark.parametrize(("pick", "seed", "word"), [("perfect", 1, "highest"), ("valid_loss", 0, "lowest")])
def test_pick_takes_the_best_seed_whichever_way_is_better(tmp_path: Path, capsys, pick: str, seed: int,
                                                           word: str) -> None:
    sweep = tmp_path / "sweep"
    trials = [_trial(sweep, "s-0", "s", {}, 0, [(10, 0.1)], metrics={"perfect": 0.2}),
              _trial(sweep, "s-1", "s", {}, 1, [(10, 3.0)], metrics={"perfect": 0.9}),
              _trial(sweep, "s-2", "s", {}, 2, [(10, 2.0)], metrics={"perfect": 0.5})]
    _write_sweep(sweep, trials, {"metrics": ["perfect"], "pick": pick})
    assert main(["table", str(sweep), "--csv", str(tmp_path / "t.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"perfect, the seed of {word} {pick}" in lines[0]
    assert f"(seed {seed})" in lines[2]


def test_sigterm_stops_a_sweep_as_ctrl_c_does() -> None:
    """Inside the fit, SIGTERM arrives as SIGINT: Tune's handler, or here Python's KeyboardInterrupt. In a
    process of its own: signal handlers belong to the main thread, which a test worker may not be."""
    code = ("import os, signal, time\n"
            "from cogdsl.sweep.run import term_as_interrupt\n"
            "before = signal.getsignal(signal.SIGTERM)\n"
            "try:\n"
            "    with term_as_interrupt():\n"
            "        os.kill(os.getpid(), signal.SIGTERM)\n"
            "        time.sleep(5)\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted', signal.getsignal(signal.SIGTERM) is before)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "interrupted True", done.stderr


def test_a_dry_run_says_which_trials_finished_before(spec: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "sweep"
    _write_sweep(out, [_trial(out, "tiny_copy-seed1", "tiny_copy", {}, 1, [(2, 1.0)], metrics={"perfect": 0.5})])
    code, printed, err = _sweep(capsys, str(spec), "--seeds", "2", "--out", str(out), "--resume", "--dry-run")
    assert code == 0 and printed.splitlines() == [str(out / "tiny_copy-seed0"), str(out / "tiny_copy-seed1")]
    assert "2 trials (--dry-run: none run); 1 finished before, not run again with --resume: tiny_copy-seed1" in err
