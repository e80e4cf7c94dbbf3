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


def test_the_flat_layouts_module_paths_still_import() -> None:
    """Code written against the flat layout (``from cogdsl.pipeline import parse_text``, as the examples once
    did) gets the module at its new home, the same object, with a DeprecationWarning naming it."""
    probe = """
import importlib, warnings
import cogdsl
from cogdsl.moved import MOVED
for old, new in MOVED.items():
    if old == "viz":
        continue
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module("cogdsl." + old)
    assert module is importlib.import_module("cogdsl." + new), old
    assert any(issubclass(w.category, DeprecationWarning) and "cogdsl." + new in str(w.message) for w in caught), old
from cogdsl.pipeline import parse_text, compile_spec
from cogdsl.spec import Spec
from cogdsl.viz import plot_learning_curve
text = "model m\\ninput x: 2\\noutput y: 1 = sigmoid(c)\\nmlp c(hidden=3) <- x\\n"
model = compile_spec(parse_text(text, "m.cog", "cog"))
print("ok")
"""
    done = subprocess.run([sys.executable, "-W", "error::DeprecationWarning:__main__", "-c", probe],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_nothing_in_the_repository_imports_an_old_path() -> None:
    import ast
    from pathlib import Path

    from cogdsl.moved import MOVED

    root = Path(__file__).resolve().parent.parent
    old = {f"cogdsl.{name}" for name in MOVED if name != "viz"}
    found = []
    for path in [*root.glob("cogdsl/**/*.py"), *root.glob("tests/**/*.py"), *root.glob("examples/*.py"),
                 *root.glob("kernels/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            found += [f"{path.relative_to(root)}: {name}" for name in names if name in old]
    assert not found, found


def test_loads_reads_spec_text_like_load() -> None:
    import pytest

    import cogdsl
    from cogdsl.errors import SpecError, UsageError

    text = "model m\ninput x: 3\noutput y: 2 = sigmoid(c)\nlstm c(hidden=8) <- x\n"
    spec = cogdsl.loads(text)
    assert spec.name == "m" and [b.kind for b in spec.blocks] == ["lstm"]
    assert cogdsl.compile(spec)(torch_zeros(1, 4, 3)).shape == (1, 4, 2)
    yaml_spec = cogdsl.loads("cogdsl: 1\nmodel: m\ninputs: {x: 3}\nblocks:\n  c: {kind: lstm, hidden: 8, from: [x]}\n"
                             "outputs:\n  y: {size: 2, activation: sigmoid, from: [c]}\n", "yaml")
    assert [b.kind for b in yaml_spec.blocks] == ["lstm"]
    with pytest.raises(SpecError) as caught:
        cogdsl.loads(text.replace("lstm", "lstmm"), name="mine.cog")  # checked, as load checks a file
    assert caught.value.diagnostics[0].code == "E201" and caught.value.diagnostics[0].span.file == "mine.cog"
    with pytest.raises(UsageError, match="form must be"):
        cogdsl.loads(text, "json")


def torch_zeros(*shape: int):  # type: ignore[no-untyped-def]
    import torch

    return torch.zeros(*shape)
