"""What a trial prints reaches disk as it prints it, so an attempt killed outright (SIGKILL, the OOM killer, a
lost machine) leaves its lines, and the attempt that resumes it adds to them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cogdsl.sweep.plan import Plan, Score
from cogdsl.sweep.trial import OUTPUT_FILE, partial_output, run_trial, trial_config
from tests.tiny import tiny_ntm

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, steps: int, max_minutes: float | None = None) -> dict:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": steps, "eval_every": 2, "eval_size": 4,
                                    "checkpoint_every": 2}))
    (trial,) = Plan(specs=[str(spec)], seeds=(0,)).trials()
    return trial_config(trial, tmp_path / "sweep" / trial.id, Score(sequences=4), max_minutes=max_minutes, device="cpu",
                        gpus=0, threads=1, tensorboard=False)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_attempt_leaves_its_output_and_the_next_adds_to_it(tmp_path: Path) -> None:
    config = _config(tmp_path, steps=100_000)
    folder = Path(config["folder"])
    partial = partial_output(folder)
    worker = subprocess.Popen(
        [sys.executable, "-c", "import json, sys; from cogdsl.sweep.trial import run_trial; "
                               "run_trial(json.loads(sys.argv[1]))", json.dumps(config)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            if partial.exists() and partial.read_text().count("evaluation") >= 2:
                break
            time.sleep(0.1)
        assert worker.poll() is None, worker.communicate()[1].decode()
        assert partial.read_text().count("evaluation") >= 2, "no output on disk while the attempt ran"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    killed = partial.read_text()
    assert not (folder / "trial.json").exists() and not (folder / OUTPUT_FILE).exists()

    marker = run_trial(_config(tmp_path, steps=100_000, max_minutes=0.02))  # resumes for a second
    assert marker["status"] == "time" and marker["resumed"], marker.get("error")
    kept = (folder / OUTPUT_FILE).read_text()
    assert kept.startswith(killed)
    assert "the attempt above was killed before it ended" in kept[len(killed):]
    assert "evaluation" in kept[len(killed):]  # the resumed attempt's own lines follow
    assert not partial.exists()


def test_an_attempt_that_ends_moves_its_output_into_the_folder(tmp_path: Path) -> None:
    config = _config(tmp_path, steps=2)
    folder = Path(config["folder"])
    marker = run_trial(config)
    assert marker["status"] == "done", marker.get("error")
    printed = (folder / OUTPUT_FILE).read_text()
    assert "evaluation" in printed and "killed" not in printed
    assert not partial_output(folder).exists()
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]


def test_a_trial_that_failed_in_its_scoring_is_scored_again_not_trained_again(tmp_path: Path, monkeypatch) -> None:
    """Hours of training are not thrown away for an error after them: the resumed trial starts from the last
    checkpoint, trains no step and is scored; one that failed in training starts again."""
    import cogdsl.sweep.score

    config = _config(tmp_path, steps=4)
    folder = Path(config["folder"])

    def broken(*args, **kwargs):
        raise ImportError("cannot import name 'moved' (a checkout changed under the worker)")

    with monkeypatch.context() as patch:
        patch.setattr(cogdsl.sweep.score, "measure", broken)
        failed = run_trial(config)
    assert failed["status"] == "failed" and "ImportError" in failed["error"] and failed["step"] == 4
    log = (folder / "log.csv").read_text()
    checkpoint = folder / "checkpoints" / "step_00000004.safetensors"
    written = checkpoint.stat().st_mtime_ns

    again = run_trial(config)
    assert again["status"] == "done" and again["resumed"] and again["step"] == 4, again.get("error")
    assert again["scored"]["step"] == 4 and "error" in again["scored"]["metrics"]
    assert (folder / "log.csv").read_text() == log and checkpoint.stat().st_mtime_ns == written  # no step retrained

    marker = json.loads((folder / "trial.json").read_text())
    marker.update(status="failed", stopped=None, error="RuntimeError: NaN at step 3")  # failed in training
    (folder / "trial.json").write_text(json.dumps(marker))
    third = run_trial(config)
    assert third["status"] == "done" and not third["resumed"] and checkpoint.stat().st_mtime_ns != written
