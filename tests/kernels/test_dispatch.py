"""Which implementation runs: the Triton backend forced, auto, COGDSL_BACKEND, and the errors."""

from __future__ import annotations

import gc
import re
import weakref
from typing import Any

import pytest
import torch

from cogdsl import kernels, ops
from cogdsl.ops import backend, declare, ntm
from tests.kernels.helpers import ARGS, SIMILARITY_OPS, count_launches, make_inputs

#: The NTM ops; the DNC ops' dispatch is checked in test_dnc.py, with their own inputs.
KERNEL_OPS = sorted(op for op in kernels.OPS if op in ARGS)


def test_every_kernel_op_is_covered_here_or_in_test_dnc() -> None:
    from tests.kernels import test_additive, test_dnc, test_dntm_kernels, test_hop, test_sam_kernels, test_stages

    assert set(kernels.OPS) == (set(ARGS) | set(test_dnc.ARGS) | set(test_additive.ARGS) | set(test_hop.ARGS)
                                | set(test_stages.ARGS) | set(test_sam_kernels.ARGS) | set(test_dntm_kernels.ARGS))


def _args(op: str, device: str, seed: int = 0, slots: int = 37) -> list[torch.Tensor]:
    x = make_inputs(seed, batch=2, heads=3, slots=slots, width=5, offsets=3, write_heads=1 if op != "write" else 3)
    return [x[name].float().to(device).requires_grad_() for name in ARGS[op]]


def _call(op: str, args: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    out = getattr(ops, op)(*args)
    return out if isinstance(out, tuple) else (out,)


def _loss(outs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return sum((o * torch.linspace(-1, 2, o.numel(), device=o.device).view_as(o)).sum() for o in outs)


def _forbid(monkeypatch: pytest.MonkeyPatch, name: str, op: str) -> None:
    """Make the ``name`` backend's registered implementation of ``op`` raise if it is called."""

    def refuse(*args: Any) -> Any:
        raise AssertionError(f"the {name!r} implementation of {op} ran")

    monkeypatch.setitem(backend._REGISTRY, op, {**backend._REGISTRY[op], name: refuse})
    if name == "torch":  # nor may the kernel's wrapper fall back on the reference module
        monkeypatch.setattr(ntm, op, refuse)


@pytest.mark.parametrize("op", KERNEL_OPS)
def test_forced_triton_on_cpu_runs_the_kernels(monkeypatch: pytest.MonkeyPatch, device: str, op: str) -> None:
    assert device != "cpu" or kernels.interpreting()
    args = _args(op, device)
    expected = tuple(o.detach() for o in _as_tuple(getattr(ntm, op)(*args)))
    _forbid(monkeypatch, "torch", op)
    with ops.use_backend("triton"), count_launches() as forward:
        outs = _call(op, args)
    assert forward, f"{op}: no Triton kernel was launched forward"
    with count_launches() as backward:
        _loss(outs).backward()
    assert backward, f"{op}: no Triton kernel was launched backward"
    for got, want in zip(outs, expected, strict=True):
        torch.testing.assert_close(got.detach(), want, atol=2e-5, rtol=1e-4)
    assert all(a.grad is not None and torch.isfinite(a.grad).all() for a in args)


def _as_tuple(out: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("op", KERNEL_OPS)
def test_auto_on_cpu_runs_the_torch_backend(monkeypatch: pytest.MonkeyPatch, op: str) -> None:
    args = _args(op, "cpu")
    _forbid(monkeypatch, "triton", op)
    with ops.use_backend("auto"), count_launches() as launches:
        outs = _call(op, args)
        _loss(outs).backward()
    assert launches == []
    for got, want in zip(outs, _as_tuple(getattr(ntm, op)(*args)), strict=True):
        torch.testing.assert_close(got, want)
    with count_launches() as launches:  # nothing forced, no COGDSL_BACKEND: auto as well
        _call(op, args)
    assert launches == []


def test_env_var_forces_triton(monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    args = _args("content_weights", device)
    _forbid(monkeypatch, "torch", "content_weights")
    monkeypatch.setenv("COGDSL_BACKEND", "triton")
    with count_launches() as launches:
        ops.content_weights(*args)
    assert [launch for launch in launches if "content" in launch.name]
    with ops.use_backend("torch"), pytest.raises(AssertionError, match="'torch' implementation"):
        ops.content_weights(*args)  # use_backend still wins over the environment


def test_every_public_op_has_a_triton_implementation() -> None:
    """A forced Triton backend never raises BackendUnavailableError for a public op (on a device it runs on)."""
    declared = set(declare.declared())
    public_ops = {name for name in ops.__all__ if name in declared}
    assert public_ops == declared
    assert {"interpolate", "shift", "sharpen", "sam_write_weights", "sam_write", "sam_read"} <= public_ops
    missing = sorted(name for name in declared if "triton" not in backend.implementations(name))
    assert missing == []
    assert set(kernels.OPS) == declared


@pytest.mark.parametrize("op", KERNEL_OPS)
def test_forced_triton_on_cpu_without_the_interpreter_raises(monkeypatch: pytest.MonkeyPatch, op: str) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert not kernels.interpreting()
    args = _args(op, "cpu")
    with ops.use_backend("triton"), pytest.raises(ops.BackendUnavailableError) as info:
        _call(op, args)
    message = str(info.value)
    assert f"cogdsl.ops.{op}" in message
    assert "CUDA" in message and "TRITON_INTERPRET" in message
    assert isinstance(info.value, NotImplementedError)


def test_tiling_caps_the_slot_tile(device: str) -> None:
    """Inside tiling(4) no launch uses a slot tile above 4, and a 37-slot memory takes several tiles."""
    args = _args("ntm_memory_step", device)
    with ops.use_backend("triton"), kernels.tiling(4) as cap, count_launches() as launches:
        assert cap == 4 and kernels.max_tile_slots() == 4
        _loss(_call("ntm_memory_step", args)).backward()
    assert kernels.max_tile_slots() is None
    tiles = [launch.args["BLOCK_N"] for launch in launches if "BLOCK_N" in launch.args]
    assert tiles, f"no launch had a BLOCK_N argument: {[launch.name for launch in launches]}"
    assert max(tiles) <= 4
    with ops.use_backend("triton"), count_launches() as launches:
        _call("ntm_memory_step", args)
    assert all(launch.args["BLOCK_N"] > 4 for launch in launches if "BLOCK_N" in launch.args)  # no cap: bigger


@pytest.mark.parametrize("bad", [0, 3, 12])
def test_tiling_rejects_a_cap_that_is_not_a_power_of_two(bad: int) -> None:
    with pytest.raises(ValueError, match=re.escape(str(bad))), kernels.tiling(bad):
        pass


@pytest.mark.parametrize("op", KERNEL_OPS)
def test_no_reference_cycle_keeps_outputs_alive(device: str, op: str) -> None:
    """A kernel's outputs must be freed by reference counting alone, with or without a backward pass
    (tensors kept as ctx attributes instead of save_for_backward make a cycle that leaks).
    """
    args = _args(op, device, slots=7)
    gc.disable()
    try:
        with ops.use_backend("triton"):
            outs = _call(op, args)
            alive = [weakref.ref(o) for o in outs]
            _loss(outs).backward()
            del outs
            assert all(ref() is None for ref in alive)
            outs = _call(op, args)  # dropped without a backward pass
            alive = [weakref.ref(o) for o in outs]
            del outs
            assert all(ref() is None for ref in alive)
    finally:
        gc.enable()


@pytest.mark.parametrize("op", sorted(SIMILARITY_OPS))
def test_similarity_reaches_the_kernel(device: str, op: str) -> None:
    """'dot' and 'cosine' give different weights through the kernel, each equal to the reference's."""
    args = [a.detach() for a in _args(op, device)]
    with ops.use_backend("triton"):
        cosine = _call(op, args)[0]
        dot = getattr(ops, op)(*args, similarity="dot")
    dot = _as_tuple(dot)[0]
    assert not torch.allclose(cosine, dot)
    torch.testing.assert_close(dot.cpu(), _as_tuple(getattr(ntm, op)(*(a.cpu() for a in args), "dot"))[0],
                               atol=2e-5, rtol=1e-4)
