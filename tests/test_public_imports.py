"""What users import today keeps working after the package moved into sub-packages (issue 22)."""

from __future__ import annotations

import subprocess
import sys


def test_public_names_import_in_a_fresh_interpreter() -> None:
    probe = """
import cogdsl
assert callable(cogdsl.load) and callable(cogdsl.compile) and callable(cogdsl.save) and callable(cogdsl.restore)
assert callable(cogdsl.train)                     # cogdsl.train(spec, steps=...) trains
from cogdsl.train import config_from_spec, evaluate, train, TrainResult
import cogdsl.train as module
assert module is cogdsl.train and module.train is train
from cogdsl.ops import write, content_weights, use_backend, dnc_usage
from cogdsl.tasks import make_task
from cogdsl.reinforce import Decision
from cogdsl.blocks.latent import from_prior
from cogdsl import CompiledModel, SpecError, ShapeError, CheckpointError
from cogdsl.cli import main
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
