"""The time step under torch.compile: one graph, compiled once for every sequence length, the same numbers.

``--compile`` (:mod:`cogdsl.training.compiled`) compiles :meth:`CompiledModel.step`; these tests hold it to
what that promises on the torch backend (the Triton backend's custom ops: tests/kernels/test_custom_ops.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch._dynamo as dynamo
from torch._dynamo.testing import CompileCounterWithBackend

import cogdsl
from cogdsl.bench.launches import spec_step_input
from cogdsl.errors import UsageError
from cogdsl.training.compiled import compile_mode

ROOT = Path(__file__).resolve().parents[2]
#: One spec of each family in CI; every spec in specs/ with COGDSL_COMPILE_CHECK=1 (make compile-check).
FAMILIES = ("ntm_copy.yaml", "ntm_two_memories.cog", "dnc_repeat_copy.cog", "sam_copy.cog", "dntm_hard_babi_steps.cog",
            "memn2n_babi.cog", "kvmemnn_babi.yaml", "bahdanau_reverse.cog", "transformer_sort.yaml", "draw_digits.cog",
            "stack_anbn.cog", "ram_digits.cog", "hm_rnn_adding.cog")
SPECS = sorted((ROOT / "specs").glob("*.*")) if os.environ.get("COGDSL_COMPILE_CHECK") else [
    ROOT / "specs" / name for name in FAMILIES]
#: Specs whose step Dynamo cannot trace whole, and why.
BREAKS = {"dmn_babi.cog": "the episodic memory runs an nn.GRU over packed facts at every step: Dynamo traces "
                          "neither nn.GRU nor pack_padded_sequence (4 graph breaks)"}


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> None:
    dynamo.reset()


def _steady_state(path: Path) -> tuple[torch.nn.Module, object, dict]:
    model, x_t = spec_step_input(path, 2)
    state = model.initial_state(2)
    with torch.no_grad():
        _, state = model.step(x_t, state, raw=True)
    return model, x_t, state


@pytest.mark.parametrize("path", [
    pytest.param(p, marks=[pytest.mark.xfail(strict=True, reason=BREAKS[p.name])] if p.name in BREAKS else [])
    for p in SPECS], ids=[p.name for p in SPECS])
def test_every_spec_steps_in_one_graph(path: Path) -> None:
    """Dynamo traces a whole time step of every spec in specs/ with no graph break (a break leaves a piece of
    the step to eager Python, and Inductor cannot fuse across it)."""
    model, x_t, state = _steady_state(path)
    explained = dynamo.explain(lambda x, s: model.step(x, s, raw=True))(x_t, state)
    reasons = [str(b.reason).splitlines()[0] for b in explained.break_reasons]
    assert explained.graph_break_count == 0, reasons
    assert explained.graph_count == 1


def _lengths_run(model: torch.nn.Module, lengths: range) -> None:
    inputs = model.shapes.sizes[model.input_names[0]]
    for length in lengths:
        y = model(torch.randn(3, length, inputs), raw=True)
        y.sum().backward()


LENGTHS = [("ntm_copy.yaml", 20)] + ([("dnc_repeat_copy.cog", 10)] if os.environ.get("COGDSL_COMPILE_CHECK") else [])


@pytest.mark.parametrize(("name", "longest"), LENGTHS)
def test_compiled_once_for_every_length(name: str, longest: int) -> None:
    """Lengths 1-20 (the DNC: 1-10) reuse the graphs of the first lengths: two (the first step, whose state holds
    no gradient, and every later one), never one more per length."""
    spec = cogdsl.load(ROOT / "specs" / name)
    model = cogdsl.compile(spec, task=_task(spec))
    counter = CompileCounterWithBackend("eager")
    model.compile_step(backend=counter)
    _lengths_run(model, range(1, 4))
    first = counter.frame_count
    _lengths_run(model, range(4, longest + 1))
    assert counter.frame_count == first <= 2


def _task(spec: object) -> object:
    from cogdsl.training.config import build_task
    from cogdsl.training.loop import config_from_spec

    return build_task(config_from_spec(spec), spec)


#: CI: AOTAutograd's graphs run eagerly (its decompositions and functionalisation of every op, the backward
#: it derives), in seconds; make compile-check also Inductor's C++ (45 s of g++ on 2 cores with a cold cache;
#: tests/test_bench.py compiles the reference memory step through Inductor in CI).
BACKENDS = ["aot_eager", "inductor"] if os.environ.get("COGDSL_COMPILE_CHECK") else ["aot_eager"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_compiled_step_gives_the_eager_numbers(backend: str) -> None:
    """The step compiled through AOTAutograd (and by Inductor, C++ on the CPU) gives the eager outputs and
    gradients."""
    spec = cogdsl.load(ROOT / "specs" / "ntm_copy.yaml")
    torch.manual_seed(0)
    model = cogdsl.compile(spec, task=_task(spec)).double()
    x = torch.randn(3, 6, model.shapes.sizes["x"], dtype=torch.float64)

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        y = model(x, raw=True)
        (y.sin().sum()).backward()
        return y.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    eager_y, eager_grads = run()
    model.compile_step(backend=backend)
    assert model.step_compiled
    compiled_y, compiled_grads = run()
    torch.testing.assert_close(compiled_y, eager_y, rtol=1e-9, atol=1e-9)
    for compiled, eager in zip(compiled_grads, eager_grads, strict=True):
        torch.testing.assert_close(compiled, eager, rtol=1e-7, atol=1e-9)
    model.compile_step(backend=None)
    assert not model.step_compiled


def test_a_compiled_model_still_saves_and_pickles(tmp_path: Path) -> None:
    """The compiled step stays out of the module: state_dict and pickling see the model alone."""
    import pickle

    spec = cogdsl.load(ROOT / "specs" / "ntm_copy.yaml")
    model = cogdsl.compile(spec, task=_task(spec))
    keys = set(model.state_dict())
    model.compile_step(backend="eager")
    assert set(model.state_dict()) == keys
    copy = pickle.loads(pickle.dumps(model))
    assert not copy.step_compiled


def test_a_bad_compile_mode_is_refused() -> None:
    assert compile_mode(True) == "default" and compile_mode(None) is None and compile_mode(False) is None
    with pytest.raises(UsageError, match="unknown mode 'fast'"):
        compile_mode("fast")
    with pytest.raises(UsageError, match="unknown mode"):
        cogdsl.train(ROOT / "specs" / "ntm_copy.yaml", steps=1, compile="fast", out_dir="/nonexistent/never")
