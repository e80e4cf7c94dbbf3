"""The copy of cogdsl a sweep's driver ships to a cluster's workers is whole (the kernels a checkout keeps outside
the package too), is what a worker imports when Ray puts it on its path, and says whose code it is. (A sweep through
--address that ships it is checked in test_sweep.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cogdsl
from cogdsl.sweep.provenance import SHIPPED_FILE, code_version
from cogdsl.sweep.ship import runtime_env, stage_package

WORKER = """
import json, sys
import cogdsl, cogdsl.kernels.content, cogdsl.language
from cogdsl.compiler.pipeline import parse_text
from cogdsl.sweep.provenance import code_version

parse_text(sys.argv[1], "tiny", "yaml")  # the grammar and the block catalogue are in the copy
print(json.dumps({"cogdsl": cogdsl.__file__, "kernels": cogdsl.kernels.content.__file__, "code": code_version()}))
"""


def test_the_copy_is_whole_and_runs_without_an_installed_cogdsl(tmp_path: Path) -> None:
    from tests.tiny import tiny_ntm

    staged = stage_package(tmp_path)
    assert staged == tmp_path / "cogdsl"
    assert (staged / "kernels" / "content.py").is_file() and (staged / "language" / "grammar.lark").is_file()
    assert not list(staged.rglob("__pycache__"))
    assert json.loads((staged / SHIPPED_FILE).read_text()) == code_version()
    assert runtime_env(staged) == {"working_dir": str(tmp_path)} and [p.name for p in tmp_path.iterdir()] == ["cogdsl"]
    # a Python started in the copy's folder with it first on its path, as Ray starts a worker
    done = subprocess.run([sys.executable, "-c", WORKER, tiny_ntm()], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(report["cogdsl"]).parent == staged and Path(report["kernels"]).parent == staged / "kernels"
    assert report["code"] == {**code_version(), "shipped": True}  # the driver's commit, though the copy has no git
    assert Path(cogdsl.__file__).resolve().parent != staged


def test_a_copy_with_a_broken_record_is_no_shipped_copy(tmp_path: Path) -> None:
    staged = stage_package(tmp_path)
    (staged / SHIPPED_FILE).write_text("{not json")
    assert code_version(tmp_path) == {**code_version(), "commit": None, "dirty": None}
    (staged / SHIPPED_FILE).write_text(json.dumps({"commit": "abc", "dirty": False}))
    assert code_version(tmp_path)["commit"] == "abc" and code_version(tmp_path)["shipped"] is True
