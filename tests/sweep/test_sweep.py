"""cogdsl sweep on Ray Tune, on the CPU (a local Ray instance of 2 CPUs), one sweep checked several ways: a grid of 2
settings x 2 seeds whose driver is killed after its first trial and resumed without running that trial again, each
trial an ordinary run folder, the table's medians against the run folders' logs, and the failing trials of a second
spec reported while the others finish."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cogdsl.cli.command import main
from cogdsl.sweep.provenance import code_version
from cogdsl.training.checkpoints import read_checkpoint_meta
from tests.tiny import tiny_ntm

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
TRAIN = {"batch": 2, "steps": 4, "eval_every": 2, "eval_size": 4, "log_every": 2, "checkpoint_every": 2}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One Ray instance for the module (its start-up is seconds); its address."""
    from cogdsl.sweep.run import import_tune

    import_tune()
    # one GPU declared, none there: Ray's GPU accounting is real, torch's CUDA is not (see the GPU test below)
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, logging_level=logging.ERROR,
             log_to_driver=False)  # "local": a new instance, even while another test's cluster runs
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _spec(folder: Path, **train: object) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(tiny_ntm(train={**TRAIN, **train}))
    return path


def _log(folder: Path) -> list[dict[str, str]]:
    with (folder / "log.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@dataclass
class Sweep:
    """What the module's sweep did: its folder, the resumed command's exit status and output, and the markers of
    the trials that had finished when its first driver was killed."""

    out: Path
    code: int
    printed: str
    err: str
    finished: dict[str, str]


def _grid(cluster: str, folder: Path) -> Sweep:
    """The sweep the checks below look at: two specs x lr 1e-2, 1e-4 x seeds 0, 1. Its first driver (a process of
    its own, on the module's Ray instance through --address, so shipping its cogdsl to the workers) is killed as
    soon as a trial has finished; the same command with --resume then runs the rest. The second spec trains on a
    data file that is not there (a file a worker cannot see), so its four trials fail; the first's run. (It names
    a test file, missing too: without one the sweep is refused before anything runs, as scoring on test could
    never succeed.)"""
    _spec(folder)
    (folder / "missing.yaml").write_text(tiny_ntm("tiny_files", train=TRAIN).replace(
        "task: {name: copy, bits: 4, min_len: 1, max_len: 3}",
        "task: {name: sequences, train: missing.npz, test: missing_test.npz}"))
    out = folder / "sweep"
    argv = ["sweep", "tiny.yaml", "missing.yaml", "--set", "train.optimizer.lr=1e-2,1e-4", "--seeds", "2",
            "--out", str(out), "--sequences", "20", "--no-tensorboard", "--gpus-per-trial", "0"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    said = folder / "driver.txt"
    with said.open("w") as log:
        driver = subprocess.Popen([sys.executable, "-m", "cogdsl", *argv, "--jobs", "1", "--address", cluster],
                                  cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    first = out / "tiny_copy-lr=0.01-seed0" / "trial.json"
    deadline = time.monotonic() + 120
    while not first.exists() and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if driver.poll() is None:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver, as kill -9 or a lost machine stops it
    driver.wait()
    assert first.exists(), f"the first trial did not finish; the driver said:\n{said.read_text()}"
    finished = {path.parent.name: path.read_text() for path in out.glob("*/trial.json")}
    time.sleep(0.5)  # Ray ends the dead driver's trials
    with pytest.MonkeyPatch.context() as patch, _captured() as (stdout, stderr):
        patch.chdir(folder)
        code = main([*argv, "--resume"])
    return Sweep(out, code, stdout.getvalue(), stderr.getvalue(), finished)


@contextlib.contextmanager
def _captured() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        yield stdout, stderr


def test_a_grid_killed_resumed_tabled_with_failures(cluster: str, tmp_path: Path, capsys) -> None:
    """One test, not one per check: under pytest-xdist each test module's tests may go to different workers, and
    each would then start Ray and run the sweep again."""
    grid = _grid(cluster, tmp_path)
    _a_killed_sweep_resumes_without_running_its_finished_trials(grid)
    _each_trial_is_an_ordinary_run_of_its_settings_and_seed(grid, capsys)
    _the_tables_medians_are_the_run_folders(grid, tmp_path, capsys)
    _a_failing_trial_is_reported_and_the_others_finish(grid)
    _trials_share_a_gpu_and_say_which_it_was(tmp_path, capsys)
    _each_node_says_whether_it_sees_the_sweep_folder(tmp_path)


def _a_killed_sweep_resumes_without_running_its_finished_trials(grid: Sweep) -> None:
    done = len(grid.finished)
    assert done >= 1 and f"{done} of 8 trials finished before; not run again" in grid.err
    assert f"[{8 - done}/{8 - done}]" in grid.err  # the others ran
    for name, text in grid.finished.items():  # not run again: the marker is the one the killed sweep wrote
        assert (grid.out / name / "trial.json").read_text() == text
    assert "8 trials: 4 done, 4 failed" in grid.printed


def _each_trial_is_an_ordinary_run_of_its_settings_and_seed(grid: Sweep, capsys: pytest.CaptureFixture[str]) -> None:
    out = grid.out
    assert grid.code == 1, grid.printed + grid.err  # some trials failed
    trials = json.loads((out / "sweep.json").read_text())["trials"]
    assert [t["id"] for t in trials][:4] == ["tiny_copy-lr=0.01-seed0", "tiny_copy-lr=0.01-seed1",
                                             "tiny_copy-lr=0.0001-seed0", "tiny_copy-lr=0.0001-seed1"]
    for trial in trials[:4]:
        folder = out / trial["id"]
        marker = json.loads((folder / "trial.json").read_text())
        assert marker["status"] == "done" and marker["step"] == 4 and marker["cpu_seconds"] > 0
        # the versions and commit of the code the trial ran: trials of the first driver (--address: a cluster) ran
        # the copy of cogdsl it shipped, with its commit; the resumed sweep's ran on this process's Ray instance
        shipped = {"shipped": True} if trial["id"] in grid.finished else {}
        assert marker["code"] == {**code_version(), **shipped}
        assert f"lr: {trial['settings']['train.optimizer.lr']}" in (folder / "spec.yaml").read_text()
        assert read_checkpoint_meta(folder)["seed"] == trial["seed"]
        assert [row["step"] for row in _log(folder)] == ["2", "4"]
    # cogdsl eval works on a trial's folder, as on any run folder
    folder = out / "tiny_copy-lr=0.01-seed1"
    assert main(["eval", str(folder / "spec.yaml"), str(folder), "--len", "2", "--sequences", "20"]) == 0
    assert capsys.readouterr().out.startswith("tiny_copy at length 2: ")


def _the_tables_medians_are_the_run_folders(grid: Sweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = grid.out
    assert main(["table", str(out), "--metric", "valid_loss", "--metric", "best_valid_errors",
                 "--metric", "perfect", "--csv", str(tmp_path / "t.csv")]) == 0
    table = capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert [(row["spec"], row["lr"]) for row in rows] == [("tiny_copy", "0.01"), ("tiny_copy", "0.0001"),
                                                          ("tiny_files", "0.01"), ("tiny_files", "0.0001")]
    for row in rows[:2]:
        # the last evaluation's loss (no keep_best in the spec: the last weights are scored), the fewest bit
        # errors of an evaluation, and the fraction of perfect test sequences the trial scored
        runs = [out / f"tiny_copy-lr={row['lr']}-seed{seed}" for seed in (0, 1)]
        logs = [_log(run) for run in runs]
        loss = statistics.median(float(log[-1]["eval_loss"]) for log in logs)
        best = statistics.median(min(float(r["eval_bit_errors"]) for r in log) for log in logs)
        perfect = statistics.median(json.loads((run / "trial.json").read_text())["scored"]["metrics"]["perfect"]
                                    for run in runs)
        assert float(row["valid_loss median"]) == pytest.approx(loss, rel=1e-5)
        assert float(row["best_valid_errors median"]) == pytest.approx(best, rel=1e-5)
        assert float(row["perfect median"]) == pytest.approx(perfect, abs=1e-6)
        assert [row[f"valid_loss seed {s}"] for s in (0, 1)] == [f"{float(log[-1]['eval_loss']):g}" for log in logs]
        assert (row["seeds finished"], row["seeds failed"]) == ("2", "0")
    assert (rows[2]["seeds finished"], rows[2]["seeds failed"]) == ("0", "2")
    lines = table.splitlines()
    assert lines[0] == ("| spec | lr | valid_loss | best_valid_errors | perfect | valid_loss, each seed | seeds | "
                        "CPU s/trial |")
    assert lines[4] == "| `tiny_files` | 0.01 | – | – | – | failed, failed | 0 (2 failed) | – |"
    assert "4 of 8 trials finished, scored 4 on the last checkpoint" in table


def _a_failing_trial_is_reported_and_the_others_finish(grid: Sweep) -> None:
    out, printed = grid.out, grid.printed
    assert "Traceback" not in printed + grid.err
    failed = out / "tiny_files-lr=0.01-seed0"
    marker = json.loads((failed / "trial.json").read_text())
    assert marker["status"] == "failed" and "E604" in marker["error"] and "missing.npz" in marker["error"]
    assert f"failed: tiny_files-lr=0.01-seed0 ({failed / 'trial.json'})" in printed
    assert "error[E604]" in printed  # the error itself, in the summary
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"done": 4, "failed": 4} and "missing.npz" in summary["errors"][failed.name]


def _trials_share_a_gpu_and_say_which_it_was(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On a cluster with a GPU, --gpus-per-trial 0.5 gives two trials one GPU: Ray names it to each
    (CUDA_VISIBLE_DEVICES), the trial records it, and where torch cannot see it (this machine has none: the
    module's Ray instance declares one) the trial fails saying which GPU, which machine, and what to do."""
    folder = tmp_path / "gpu"
    folder.mkdir()
    spec = _spec(folder)
    out = folder / "sweep"
    code = main(["sweep", str(spec), "--seeds", "2", "--out", str(out), "--gpus-per-trial", "0.5",
                 "--no-tensorboard"])
    printed, err = capsys.readouterr()
    assert code == 1 and "each on 1 CPU and 0.5 GPU" in err and "Traceback" not in printed + err
    for seed in (0, 1):
        marker = json.loads((out / f"tiny_copy-seed{seed}" / "trial.json").read_text())
        assert (marker["device"], marker["gpus"], marker["cuda_visible_devices"]) == ("cuda", 0.5, "0")
        assert marker["status"] == "failed" and marker["error"].startswith("Ray gave this trial GPU 0 on ")
        assert "--gpus-per-trial 0 to train on CPUs" in marker["error"]


def _each_node_says_whether_it_sees_the_sweep_folder(tmp_path: Path) -> None:
    """The question a sweep on a cluster asks every node first (the killed driver above asked it through
    --address): a file there holding what it should is seen; a file that is not there is not."""
    import socket

    assert f"1 node checked: each runs cogdsl and sees {tmp_path / 'sweep'}" in (tmp_path / "driver.txt").read_text()

    from cogdsl.sweep.run import probe_nodes

    there = tmp_path / "probe"
    there.write_text("probe")
    for path, sees in ((there, True), (tmp_path / "not-there", False)):
        (answer,) = probe_nodes(str(path), "probe", 120).values()
        assert isinstance(answer, dict), answer
        assert (answer["host"], answer["sees"], answer["code"]) == (socket.gethostname(), sees, code_version())
