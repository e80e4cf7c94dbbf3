"""A training run loads all its code when it starts, so a checkout edited or pulled while it trains (a
researcher's daily life) cannot mix old and new modules in it: nothing cogdsl imports after the start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RUN = """
import json, sys
import cogdsl.training.preload as preload
from cogdsl.cli.command import main

loaded = set()
load_all = preload.load_all

def spy():
    load_all()
    loaded.update(name for name in sys.modules if name.startswith("cogdsl"))

preload.load_all = spy
out = sys.argv[1]
train = main(["train", "specs/ntm_copy.yaml", "--steps", "4", "--out", out, "--no-progress"])
evaluate = main(["eval", "specs/ntm_copy.yaml", out, "--sequences", "4", "--plot", out + "/w.png"])
later = sorted({name for name in sys.modules if name.startswith("cogdsl")} - loaded) if loaded else None
print(json.dumps({"codes": [train, evaluate], "imported_later": later}))
"""


def test_a_run_imports_no_cogdsl_module_after_it_starts(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", RUN, str(tmp_path / "run")], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["codes"] == [0, 0]
    # None: training never called load_all; a list: what it imported after (the evaluations' plots, TensorBoard,
    # the checkpoints, then eval and its plot)
    assert report["imported_later"] == []
