"""``COGDSL_BACKEND=triton`` runs every spec: each op of a step on the Triton kernels (the interpreter here),
with the torch backend's outputs and gradients.

CI runs one spec per family; ``make compile-check`` (COGDSL_COMPILE_CHECK=1) runs all of specs/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cogdsl import ops
from cogdsl.bench.launches import spec_step_input
from cogdsl.kernels import library
from tests.compiler.test_compiled_step import SPECS


def _step_loss(model: torch.nn.Module, x_t: object) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Two steps from the initial state (the first runs any encoder), a loss on the second's outputs, and
    every parameter's gradient."""
    model.zero_grad()
    _, state = model.step(x_t, model.initial_state(2), raw=True)
    y, _ = model.step(x_t, state, raw=True)
    outputs = y.values() if isinstance(y, dict) else (y,)
    loss = sum((o.double() * torch.linspace(-1, 1, o.numel(), dtype=torch.float64).view_as(o)).sum()
               for o in outputs)
    loss.backward()
    return loss.detach(), [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]


#: Specs whose step calls the memory ops (the others run the same PyTorch on either backend).
MEMORY_FAMILIES = ("ntm", "dnc", "sam", "dntm", "memn2n", "kvmemnn", "bahdanau")


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_a_spec_runs_on_the_triton_kernels(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, x_t = spec_step_input(path, 2)  # eval mode: no sampling, the same operations on both backends
    model.double()
    if isinstance(x_t, dict):
        x_t = {k: v.double() if v.is_floating_point() else v for k, v in x_t.items()}
    elif x_t.is_floating_point():
        x_t = x_t.double()
    with ops.use_backend("torch"):
        want, want_grads = _step_loss(model, x_t)
    monkeypatch.setenv("COGDSL_BACKEND", "triton")
    before = library.launched
    got, got_grads = _step_loss(model, x_t)
    if path.name.startswith(MEMORY_FAMILIES):  # not vacuous: the kernels ran
        assert library.launched > before
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-7, atol=1e-9)
