"""A training step never waits on the host: no .item(), .cpu() or tensor-valued branching in the time loop.

On the CPU this is checked by making every tensor-to-Python conversion raise while a
compiled NTM runs forward, backward and an optimizer step; on CUDA (when there is one) by
torch's sync debug mode, which raises on any synchronising call, kernels included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch

import cogdsl
from cogdsl import ops
from cogdsl.compiler.pipeline import parse_text
from cogdsl.tasks import make_task, sequence_loss
from cogdsl.training.loop import build_optimizer, config_from_spec
from tests.tiny import tiny_ntm

CONVERSIONS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


@contextlib.contextmanager
def conversions_raise(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Within the block, any tensor → Python conversion raises (and is recorded)."""
    calls: list[str] = []
    with monkeypatch.context() as patch:
        for name in CONVERSIONS:
            def refuse(self: torch.Tensor, *args: object, _name: str = name, **kwargs: object) -> object:
                calls.append(_name)
                raise AssertionError(f"host sync: Tensor.{_name} called inside a training step")

            patch.setattr(torch.Tensor, name, refuse)
        yield calls


def _train_step(model: cogdsl.CompiledModel, optimizer: torch.optim.Optimizer, batch: object) -> torch.Tensor:
    optimizer.zero_grad(set_to_none=True)
    logits = model(batch.inputs, raw=True)
    loss = sequence_loss(logits, batch)
    loss.backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), 10.0)
    optimizer.step()
    return loss


# A DNC of the same shape: usage, allocation (a sort), links and directional reads in the loop.
TINY_DNC = tiny_ntm(name="tiny_dnc", read_heads=2, train={"batch": 4}).replace(
    "kind: memory", "kind: dnc_memory").replace(
    'address: "content(cosine) | gate | shift(1) | sharpen"}', "}")
MODELS = {"ntm": tiny_ntm(train={"batch": 4}), "dnc": TINY_DNC}


def _setup(device: str, model_name: str = "ntm") -> tuple[cogdsl.CompiledModel, torch.optim.Optimizer, object]:
    spec = parse_text(MODELS[model_name], "tiny.yaml", "yaml")
    torch.manual_seed(0)
    model = cogdsl.compile(spec).to(device)
    config = config_from_spec(spec)
    optimizer = build_optimizer(model.parameters(), config)
    task = make_task(config.task, **config.task_params)
    batch = task.sample(4, torch.Generator().manual_seed(1)).to(device)
    return model, optimizer, batch


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_a_cpu_training_step_converts_no_tensor_to_python(monkeypatch: pytest.MonkeyPatch, model_name: str) -> None:
    model, optimizer, batch = _setup("cpu", model_name)
    assert any(group.owns_memory for group in model.groups) == (model_name == "dnc")
    _train_step(model, optimizer, batch)  # first step: optimizer state, shape checks cached
    before = [p.detach().clone() for p in model.parameters()]
    with ops.use_backend("torch"), conversions_raise(monkeypatch) as calls:
        loss = _train_step(model, optimizer, batch)
    assert calls == []
    assert torch.isfinite(loss.detach()).all()
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True))


def test_the_guard_catches_a_conversion(monkeypatch: pytest.MonkeyPatch) -> None:
    with conversions_raise(monkeypatch) as calls, pytest.raises(AssertionError, match=r"host sync: Tensor\.item"):
        torch.ones(1).item()
    assert calls == ["item"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_a_cuda_training_step_on_the_kernels_never_synchronises(model_name: str) -> None:
    model, optimizer, batch = _setup("cuda", model_name)
    with ops.use_backend("triton"):
        _train_step(model, optimizer, batch)  # compiles the kernels, fills caches
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            loss = _train_step(model, optimizer, batch)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(loss.detach()).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_device_cuda_step_draws_its_batch_on_the_gpu_without_synchronising():
    """What ``cogdsl train --device cuda`` does each step: the stream draws the batch on the GPU (its length
    on the host), then forward, backward and the optimizer step, with no synchronising call."""
    from cogdsl.training.streams import TaskStream

    model, optimizer, _ = _setup("cuda")
    task = make_task("copy", bits=4, min_len=1, max_len=3)
    stream = TaskStream(task, torch.device("cuda"), seed=1)
    with ops.use_backend("triton"):
        _train_step(model, optimizer, stream.next(task, 4))  # compiles the kernels, fills caches
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            loss = _train_step(model, optimizer, stream.next(task, 4))
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(loss.detach()).all()
