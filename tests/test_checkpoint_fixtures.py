"""Checkpoints saved before a change still load and give the same outputs after it.

tests/fixtures/checkpoints holds, for every spec in specs/, a checkpoint written by cogdsl.save and a
sample batch with the outputs the saved model gave (tests/fixtures/make_checkpoints.py made them). The
parameter names inside a checkpoint are a contract: a refactor that renames a module breaks these tests.
"""

from __future__ import annotations

import lzma
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import cogdsl
from cogdsl.errors import CheckpointError

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "checkpoints"
SPECS = sorted((ROOT / "specs").glob("*.*"))


def _stem(path: Path) -> str:
    return f"{path.stem}{path.suffix.replace('.', '_')}"


def _unpacked(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name.removesuffix(".xz")
    target.write_bytes(lzma.decompress((FIXTURES / name).read_bytes()))
    return target


def _sample(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], int]:
    with safe_open(str(path), framework="pt") as stream:
        tensors = {key: stream.get_tensor(key) for key in stream.keys()}
        steps = int((stream.metadata() or {}).get("steps", "0"))
    return tensors, {k: v for k, v in tensors.items() if k.startswith("out")}, steps


def _by_name(prefix: str, tensors: dict[str, torch.Tensor]) -> torch.Tensor | dict[str, torch.Tensor]:
    if prefix in tensors:
        return tensors[prefix]
    return {key.removeprefix(prefix + "."): value for key, value in tensors.items() if key.startswith(prefix + ".")}


@pytest.mark.parametrize("spec_path", SPECS, ids=lambda p: p.name)
def test_saved_checkpoint_gives_the_same_outputs(spec_path: Path, tmp_path: Path) -> None:
    stem = _stem(spec_path)
    assert (FIXTURES / f"{stem}.safetensors.xz").exists(), (
        f"no checkpoint fixture for {spec_path.name}: run python tests/fixtures/make_checkpoints.py "
        f"specs/{spec_path.name} (for a new spec only)")
    model = cogdsl.restore(_unpacked(f"{stem}.safetensors.xz", tmp_path))  # compiled from the spec saved in it
    model.eval()
    tensors, _, steps = _sample(_unpacked(f"{stem}.io.safetensors.xz", tmp_path))
    inputs = _by_name("in", tensors)
    expected = _by_name("out", tensors)
    torch.manual_seed(2)
    with torch.no_grad():
        outputs = model(inputs, raw=True, **({"steps": steps} if steps else {}))
    if isinstance(expected, dict):
        assert isinstance(outputs, dict) and outputs.keys() == expected.keys()
        pairs = [(outputs[name], expected[name]) for name in expected]
    else:
        pairs = [(outputs, expected)]
    for got, want in pairs:
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_a_renamed_parameter_is_refused(tmp_path: Path) -> None:
    """The fixtures would catch a rename: a checkpoint whose names differ from the model's does not load."""
    from safetensors.torch import save_file

    from cogdsl.training.checkpoints import tensor_digest

    path = _unpacked("ntm_copy_yaml.safetensors.xz", tmp_path)
    with safe_open(str(path), framework="pt") as stream:
        tensors = {key: stream.get_tensor(key) for key in stream.keys()}
        meta = stream.metadata()
    renamed = {key.replace("model.controllers.", "model.controller_units."): value for key, value in tensors.items()}
    assert renamed.keys() != tensors.keys()
    save_file(renamed, str(path), metadata={**meta, "sha256": tensor_digest(renamed)})  # a whole file
    with pytest.raises(CheckpointError, match=r"controllers\.ctrl\..* missing from the checkpoint"):
        cogdsl.restore(path)


def test_parameters_keep_their_order() -> None:
    """An optimizer's state is saved by parameter index (optim.<index>.<key>): a run resumed from a checkpoint
    made before a change gives each parameter its own moments only if the order is kept."""
    import json

    orders = json.loads((FIXTURES / "parameter_order.json").read_text())
    assert sorted(orders) == sorted(path.name for path in SPECS)
    for path in SPECS:
        model = cogdsl.compile(cogdsl.load(path))
        assert [name for name, _ in model.named_parameters()] == orders[path.name], path.name
