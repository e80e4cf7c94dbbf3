"""A sweep's worker runs one version of cogdsl from its first trial to its last, and each trial records that
version: a checkout edited or pulled while a sweep runs neither mixes old and new modules in a worker (an
ImportError after hours of training) nor is recorded as the code a trial ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cogdsl.sweep.plan import Plan, Score
from cogdsl.sweep.trial import trial_config
from tests.tiny import tiny_ntm

ROOT = Path(__file__).resolve().parents[2]

WORKER = """
import json, sys
import cogdsl.sweep.trial as trial

config = json.loads(sys.argv[1])
loaded = trial.loaded_code()
before = {name for name in sys.modules if name.startswith("cogdsl")}
trial.code_version = lambda *args: {"commit": "the checkout moved on"}  # a git pull after the worker started
marker = trial.run_trial(config)
print(json.dumps({"loaded": loaded, "marker": marker,
                  "imported_later": sorted({name for name in sys.modules if name.startswith("cogdsl")} - before)}))
"""


def test_a_trial_imports_nothing_its_worker_did_not_load_first_and_records_that_code(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 2, "eval_every": 2, "eval_size": 4,
                                    "checkpoint_every": 2}))
    (trial,) = Plan(specs=[str(spec)], seeds=(0,)).trials()
    config = trial_config(trial, tmp_path / "sweep" / trial.id, Score(sequences=4), max_minutes=None,
                          device="cpu", gpus=0, threads=1, tensorboard=True)
    done = subprocess.run([sys.executable, "-c", WORKER, json.dumps(config)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["marker"]["status"] == "done", report["marker"].get("error")
    assert report["imported_later"] == []  # training, TensorBoard, scoring: all loaded before the trial began
    assert report["marker"]["code"] == report["loaded"] != {"commit": "the checkout moved on"}
    assert report["loaded"]["cogdsl"] and report["loaded"]["torch"]
