"""Block and output names that torch's module and parameter dictionaries use themselves (``keys``,
``values``, ``items``, ``update``, ``train``, ...) compile, run, train and round-trip through a
checkpoint like any other name."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import cogdsl
from cogdsl.blocks.named import NamedModules, NamedParameters, spec_name, stored_key
from cogdsl.cli.command import main
from tests.tiny import write_spec

SPEC = """
model names
input  x: 5
output values: 4 = sigmoid(keys, items)
lstm   keys(hidden=8) <- x, items@prev
memory update(slots=8, width=5)
read   items on update by keys
write  train on update by keys
train {
  task copy(bits=4, min_len=1, max_len=3)
  optimizer adam(lr=0.01)
  batch 4; steps 2; eval_every 2; log_every 2; checkpoint_every 2
}
"""


def test_dictionaries_keep_torchs_own_names_apart() -> None:
    modules = NamedModules({"items": nn.Linear(2, 2), "plain": nn.Linear(2, 3)})
    modules["keys"] = nn.Linear(3, 3)
    assert list(modules) == ["items", "plain", "keys"] == modules.keys()
    assert "keys" in modules and "absent" not in modules and modules["items"].out_features == 2
    assert callable(modules.items)  # the method is still the method
    assert [name for name, _ in modules.items()] == ["items", "plain", "keys"]
    assert sorted(modules.state_dict()) == ["items-.bias", "items-.weight", "keys-.bias", "keys-.weight",
                                            "plain.bias", "plain.weight"]
    parameters = NamedParameters({"values": nn.Parameter(torch.ones(2)), "w": nn.Parameter(torch.zeros(1))})
    assert "values" in parameters and torch.equal(parameters["values"], torch.ones(2))
    assert sorted(parameters.state_dict()) == ["values-", "w"]
    assert stored_key("plain", nn.ModuleDict) == "plain" and spec_name("items-") == "items"


def test_a_spec_named_with_torchs_own_names_trains_and_reloads(tmp_path: Path) -> None:
    path = write_spec(tmp_path, SPEC)
    model = cogdsl.compile(cogdsl.load(path))
    assert model(torch.randn(2, 3, 5)).shape == (2, 3, 4)
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    checkpoint = next((tmp_path / "run" / "checkpoints").glob("*.safetensors"))
    assert main(["eval", str(path), str(checkpoint)]) == 0
