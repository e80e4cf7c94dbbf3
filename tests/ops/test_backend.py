"""Backend selection: use_backend, COGDSL_BACKEND, auto dispatch, and the forced-triton error."""

from __future__ import annotations

import re

import pytest
import torch

from cogdsl import ops
from cogdsl.ops import backend

OPS = [
    "content_weights",
    "interpolate",
    "shift",
    "sharpen",
    "ntm_address",
    "read",
    "write",
    "ntm_memory_step",
]


@pytest.fixture(autouse=True)
def _no_env_backend(monkeypatch):
    monkeypatch.delenv("COGDSL_BACKEND", raising=False)


def _content_args():
    torch.manual_seed(0)
    return torch.randn(2, 7, 5), torch.randn(2, 3, 5), torch.rand(2, 3) + 0.5


def test_every_op_has_a_torch_implementation():
    for name in OPS:
        assert "torch" in backend.implementations(name), name
        assert callable(getattr(ops, name))


def test_default_is_auto():
    assert ops.current_backend() == "auto"


def test_use_backend_torch_runs_the_reference_and_restores():
    args = _content_args()
    expected = ops.content_weights(*args)
    with ops.use_backend("torch") as name:
        assert name == "torch"
        assert ops.current_backend() == "torch"
        got = ops.content_weights(*args)
    torch.testing.assert_close(got, expected)
    assert ops.current_backend() == "auto"


def test_use_backend_nests_and_restores_after_an_exception():
    with ops.use_backend("torch"):
        with pytest.raises(RuntimeError), ops.use_backend("triton"):
            assert ops.current_backend() == "triton"
            raise RuntimeError("boom")
        assert ops.current_backend() == "torch"
    assert ops.current_backend() == "auto"


def test_unknown_backend_raises_value_error_listing_allowed():
    with pytest.raises(ValueError, match="'bogus'") as info:
        ops.use_backend("bogus")  # checked at the call, before any `with`
    for allowed in ("'auto'", "'torch'", "'triton'"):
        assert allowed in str(info.value)


def _without_a_kernel(monkeypatch, op):
    """Take ``op``'s Triton implementation out of the registry (every public op has one now)."""
    monkeypatch.setitem(backend._REGISTRY, op, {k: v for k, v in backend._REGISTRY[op].items() if k != "triton"})


def test_forced_triton_without_a_kernel_raises_clear_error(monkeypatch):
    _without_a_kernel(monkeypatch, "shift")
    weights, shift_weights = torch.rand(2, 3, 7), torch.rand(2, 3, 3)
    expected = "cogdsl.ops.shift: no 'triton' implementation is available in this version; use the 'torch' backend"
    error = pytest.raises(ops.BackendUnavailableError, match=re.escape(expected))
    with ops.use_backend("triton"), error as info:
        ops.shift(weights, shift_weights)
    assert isinstance(info.value, NotImplementedError)


def test_forced_triton_on_cpu_tensors_without_the_interpreter_says_what_to_do(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with ops.use_backend("triton"), pytest.raises(ops.BackendUnavailableError) as info:
        ops.content_weights(*_content_args())
    message = str(info.value)
    assert message.startswith("cogdsl.ops.content_weights: the 'triton' backend runs on CUDA tensors")
    assert "TRITON_INTERPRET=1" in message and "'torch' backend" in message


def test_a_backend_marked_unavailable_says_why(monkeypatch):
    monkeypatch.setitem(backend._REGISTRY, "content_weights", {"torch": backend._REGISTRY["content_weights"]["torch"]})
    monkeypatch.setitem(backend._UNAVAILABLE, "triton", "the triton package is not installed (pip install triton)")
    with ops.use_backend("triton"), pytest.raises(ops.BackendUnavailableError, match=re.escape(
            "cogdsl.ops.content_weights: the triton package is not installed (pip install triton); "
            "use the 'torch' backend")):
        ops.content_weights(*_content_args())


def test_env_var_is_honoured_at_call_time(monkeypatch):
    args = _content_args()
    monkeypatch.setenv("COGDSL_BACKEND", "torch")
    assert ops.current_backend() == "torch"
    assert torch.isfinite(ops.content_weights(*args)).all()
    monkeypatch.setenv("COGDSL_BACKEND", "triton")
    assert ops.current_backend() == "triton"
    _without_a_kernel(monkeypatch, "sharpen")
    with pytest.raises(NotImplementedError, match=r"cogdsl.ops.sharpen: no 'triton' implementation"):
        ops.sharpen(torch.rand(2, 3, 7), torch.rand(2, 3) + 1)


def test_use_backend_overrides_env_var(monkeypatch):
    monkeypatch.setenv("COGDSL_BACKEND", "triton")
    with ops.use_backend("torch"):
        assert torch.isfinite(ops.content_weights(*_content_args())).all()


def test_bad_env_var_raises_value_error(monkeypatch):
    monkeypatch.setenv("COGDSL_BACKEND", "cuda")
    with pytest.raises(ValueError, match=r"COGDSL_BACKEND.*'cuda'.*'torch'"):
        ops.read(torch.randn(2, 7, 5), torch.rand(2, 3, 7))


def test_auto_picks_triton_only_for_cuda_tensors(monkeypatch):
    calls = []

    def fake_triton(memory, keys, strengths, similarity):
        calls.append(similarity)
        return torch.zeros(memory.shape[0], keys.shape[1], memory.shape[1])

    impls = {
        "torch": backend._REGISTRY["content_weights"]["torch"],
        "triton": fake_triton,
    }
    monkeypatch.setitem(backend._REGISTRY, "content_weights", impls)

    assert backend.resolve("content_weights", is_cuda=True) is fake_triton
    assert backend.resolve("content_weights", is_cuda=False) is impls["torch"]
    args = _content_args()
    out = ops.content_weights(*args)  # CPU tensors under auto: the reference
    assert calls == []
    torch.testing.assert_close(out.sum(-1), torch.ones(2, 3))
    with ops.use_backend("triton"):  # forced: the kernel, whatever the device
        ops.content_weights(*args, similarity="dot")
    assert calls == ["dot"]
    with ops.use_backend("torch"):
        assert backend.resolve("content_weights", is_cuda=True) is impls["torch"]


def test_register_rejects_unknown_backend_and_non_callables():
    with pytest.raises(ValueError, match="'cuda'"):
        backend.register("read", "cuda", lambda *a: None)
    with pytest.raises(ValueError, match="'auto'"):
        backend.register("read", "auto", lambda *a: None)
    with pytest.raises(TypeError, match="not callable"):
        backend.register("read", "triton", "not a function")
    assert "cuda" not in backend.implementations("read")
    assert set(backend.implementations("read")) <= {"torch", "triton"}
    assert "torch" in backend.implementations("read")


def test_torch_compile_traces_the_dispatch_without_graph_breaks():
    """Dynamo cannot trace ContextVar.get; while compiling, dispatch reads a plain global instead."""
    import torch._dynamo as dynamo

    def memory_step(memory, keys):
        batch, heads = keys.shape[0], keys.shape[1]
        previous = torch.softmax(keys @ memory.transpose(1, 2), dim=-1)
        ones = torch.ones(batch, heads)
        shifts = torch.full((batch, heads, 3), 1 / 3)
        weights, reads, new_memory = ops.ntm_memory_step(memory, previous, keys, ones, ones / 2, shifts, ones + 1,
                                                         keys[:, 1:].sigmoid(), keys[:, 1:])
        return weights.sum() + reads.sum() + new_memory.sum()

    dynamo.reset()
    with ops.use_backend("torch"):
        explained = dynamo.explain(memory_step)(torch.randn(2, 6, 4), torch.randn(2, 2, 4))
    assert explained.graph_break_count == 0, [str(b.reason) for b in explained.break_reasons]
    assert explained.graph_count == 1
