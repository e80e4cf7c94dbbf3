"""Every kernel is a torch.library custom op: PyTorch's own checks of each, and a model step traced whole.

``torch.library.opcheck`` checks an op's schema, its fake implementation (what torch.compile traces: the
shapes, dtypes and strides of the real outputs), its registered autograd, and that AOTAutograd can trace it.
The fakes are the launchers with the launch skipped (:mod:`cogdsl.kernels.library`), so a launcher whose
allocations disagreed with what its kernel writes would be caught here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch._dynamo as dynamo

from cogdsl import kernels, ops
from cogdsl.bench.launches import spec_step_input
from tests.kernels import test_additive, test_dnc, test_dntm_kernels, test_hop, test_sam_kernels, test_stages
from tests.kernels.helpers import ARGS, make_inputs

ROOT = Path(__file__).resolve().parents[2]
#: opcheck's checks but its dynamic-shape AOT tracing, which reruns the interpreted kernels for minutes; the
#: step-level test below traces the ops through AOTAutograd.
CHECKS = ("test_schema", "test_autograd_registration", "test_faketensor")


#: Public ops whose kernel is another op's custom op with some stages off (their stage flags).
SHARED = {"address": "ntm_address", "memory_step": "ntm_memory_step"}
#: Each custom op once.
CUSTOM_OPS = sorted({SHARED.get(op, op) for op in kernels.OPS})
#: The stage flags (content, gate, shift, sharpen) of the pipelines the addressing ops are checked with.
PIPELINES = [(True, True, True, True), (True, False, False, True), (False, True, True, False),
             (True, True, False, False)]


def _inputs(op: str, seed: int, stages: tuple[bool, ...] = (True,) * 4) -> list[object]:
    """Random float32 inputs of ``op`` (none zero), and its options, as the custom op takes them; for the
    addressing ops, with ``stages`` on (an absent stage's tensor is the launchers' one-element placeholder)."""
    if op in ARGS:
        x = make_inputs(seed, batch=2, heads=3, slots=11, width=5, write_heads=1 if op == "ntm_memory_step" else None)
        args: list[object] = [x[name].float().requires_grad_() for name in ARGS[op]]
        if op == "content_weights":
            return [*args, True]
        if op in ("ntm_address", "ntm_memory_step"):
            used = (stages[0], stages[0], stages[1], stages[2], stages[3])
            for i, on in enumerate(used, start=2):
                if not on:
                    args[i] = torch.empty(1)
            return [*args, True, *stages]
        return args
    for module in (test_dnc, test_additive, test_hop, test_stages, test_sam_kernels, test_dntm_kernels):
        if op in module.ARGS:
            x = module.make_inputs(seed)
            return [x[name].float().requires_grad_() if x[name].is_floating_point() else x[name]
                    for name in module.ARGS[op]] + list(getattr(module, "OPTIONS", {}).get(op, ()))
    raise AssertionError(f"no inputs for {op}")


@pytest.mark.parametrize("op", CUSTOM_OPS)
def test_each_kernel_passes_opcheck(op: str) -> None:
    custom = getattr(torch.ops.cogdsl, op).default
    torch.library.opcheck(custom, tuple(_inputs(op, seed=3)), test_utils=CHECKS)


@pytest.mark.parametrize("stages", PIPELINES[1:])
@pytest.mark.parametrize("op", ["ntm_address", "ntm_memory_step"])
def test_every_pipeline_passes_opcheck(op: str, stages: tuple[bool, ...]) -> None:
    """The addressing kernels with stages off: placeholders for the absent stages' tensors, empty saved arrays."""
    custom = getattr(torch.ops.cogdsl, op).default
    torch.library.opcheck(custom, tuple(_inputs(op, seed=5, stages=stages)), test_utils=CHECKS)


def test_every_public_op_has_a_custom_op() -> None:
    assert set(SHARED) <= set(kernels.OPS)
    for op in CUSTOM_OPS:
        assert hasattr(torch.ops.cogdsl, op), op


@pytest.mark.parametrize("op", CUSTOM_OPS)
def test_opcheck_catches_a_fake_that_lies(op: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: a fake implementation that gives the wrong shape fails opcheck."""
    from torch._library.custom_ops import _maybe_get_opdef

    definition = _maybe_get_opdef(f"cogdsl::{op}")
    honest = definition._abstract_fn

    def lying(*args: object) -> object:
        return tuple(t[..., :1].clone() if t.dim() else t for t in honest(*args))

    monkeypatch.setattr(definition, "_abstract_fn", lying)
    with pytest.raises(Exception):  # noqa: B017 -- opcheck raises OpCheckError, or the fake's own error
        torch.library.opcheck(getattr(torch.ops.cogdsl, op).default, tuple(_inputs(op, seed=4)), test_utils=CHECKS)


#: In CI one NTM, the DNC and SAM; make compile-check (COGDSL_COMPILE_CHECK=1) adds the attention, memory
#: network and two-memory steps (a minute more on 2 cores).
SPECS = ["ntm_copy.yaml", "dnc_repeat_copy.cog", "sam_copy.cog"] + (
    ["bahdanau_reverse.cog", "memn2n_babi.cog", "ntm_two_memories.cog"] if os.environ.get("COGDSL_COMPILE_CHECK")
    else [])


@pytest.mark.parametrize("name", SPECS)
def test_a_step_on_the_triton_backend_is_one_graph(name: str) -> None:
    """With every op forced onto Triton, a spec's whole time step (at steady state: an encoder runs at the first
    step only) traces into one graph (fullgraph=True), and the compiled step (AOTAutograd over the custom ops)
    gives the eager Triton step's outputs and gradients."""
    dynamo.reset()
    model, x_t = spec_step_input(ROOT / "specs" / name, 2)
    with torch.no_grad():
        _, state = model.step(x_t, model.initial_state(2), raw=True)

    def loss(step: object) -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        y, _ = step(x_t, state, raw=True)
        outputs = y.values() if isinstance(y, dict) else (y,)
        total = sum((o.float() * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in outputs)
        total.backward()
        return total.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    with ops.use_backend("triton"):
        explained = dynamo.explain(lambda x, s: model.step(x, s, raw=True))(x_t, state)
        assert explained.graph_break_count == 0, [str(b.reason)[:300] for b in explained.break_reasons]
        eager_total, eager_grads = loss(model.step)
        compiled_total, compiled_grads = loss(torch.compile(model.step, backend="aot_eager", fullgraph=True))
    torch.testing.assert_close(compiled_total, eager_total)
    assert len(compiled_grads) == len(eager_grads) > 0
    for compiled, eager in zip(compiled_grads, eager_grads, strict=True):
        torch.testing.assert_close(compiled, eager)
