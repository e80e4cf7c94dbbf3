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
