"""Every op declared once: its public function, its contract, and backends that do not depend on import order."""

from __future__ import annotations

import inspect
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor

from cogdsl import ops
from cogdsl.ops import attention, backend, declare, dnc, dntm, ntm, ntm_grad, sam

ROOT = Path(__file__).resolve().parents[2]

#: Each op's family module, where it is declared next to its reference.
FAMILY = {
    **dict.fromkeys(("content_weights", "interpolate", "shift", "sharpen", "ntm_address", "read", "write",
                     "ntm_memory_step", "address", "memory_step"), ntm),
    **dict.fromkeys(("dnc_usage", "dnc_allocation", "dnc_link", "dnc_directional"), dnc),
    **dict.fromkeys(("additive_attention", "hop_read"), attention),
    **dict.fromkeys(("sam_write_weights", "sam_write", "sam_read"), sam),
    **dict.fromkeys(("lru_content_weights", "sample_slots"), dntm),
}
#: The ops whose "torch" backend is a hand-written backward, not the reference.
HAND_WRITTEN = {"content_weights", "shift", "sharpen", "write", "ntm_address", "ntm_memory_step", "address",
                "memory_step"}


@pytest.fixture(autouse=True)
def _no_env_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COGDSL_BACKEND", raising=False)


def test_every_exported_op_is_declared_next_to_its_reference() -> None:
    assert set(declare.declared()) == set(FAMILY)
    for name, module in FAMILY.items():
        public, reference = getattr(ops, name), getattr(module, name)
        assert name in ops.__all__
        assert declare.declared()[name].reference is reference, name
        assert public is not reference and public.__wrapped__ is reference, name
        assert inspect.signature(public) == inspect.signature(reference), name
        assert public.__doc__ == reference.__doc__ and "Args:" in public.__doc__ and "Returns:" in public.__doc__
        assert public.__module__ == "cogdsl.ops" and pickle.loads(pickle.dumps(public)) is public


def _inputs(name: str, seed: int) -> tuple[list[object], list[Tensor]]:
    """Fresh float64 arguments of ``name`` in its domain, and which of them are differentiable."""
    g = torch.Generator().manual_seed(seed)
    b, h, n, w, k, v, r, s, a, d = 2, 3, 6, 4, 3, 2, 2, 5, 4, 3

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()

    def rand(*shape: int, low: float = 0.0, high: float = 1.0) -> Tensor:
        return (low + (high - low) * torch.rand(*shape, generator=g, dtype=torch.float64)).requires_grad_()

    def dist(*shape: int) -> Tensor:
        return torch.softmax(torch.randn(*shape, generator=g, dtype=torch.float64), -1).requires_grad_()

    def one_hot(batch: int, slots: int) -> Tensor:
        return torch.nn.functional.one_hot(torch.randint(slots, (batch,), generator=g), slots).double()

    address = [randn(b, n, w), dist(b, h, n), randn(b, h, w), rand(b, h, low=0.5, high=5), rand(b, h),
               dist(b, h, k), rand(b, h, low=1, high=4)]
    args: list[object] = {
        "content_weights": lambda: [randn(b, n, w), randn(b, h, w), rand(b, h, low=0.5, high=5), "cosine"],
        "interpolate": lambda: [dist(b, h, n), dist(b, h, n), rand(b, h)],
        "shift": lambda: [dist(b, h, n), dist(b, h, k)],
        "sharpen": lambda: [dist(b, h, n), rand(b, h, low=1, high=4)],
        "ntm_address": lambda: [*address, "cosine"],
        "read": lambda: [randn(b, n, w), dist(b, h, n)],
        "write": lambda: [randn(b, n, w), dist(b, h, n), rand(b, h, w), randn(b, h, w)],
        "ntm_memory_step": lambda: [*address, rand(b, v, w), randn(b, v, w), "cosine"],
        # content, gate and sharpen (no shift); gate and shift (no content)
        "address": lambda: [*address[:5], None, address[6], "dot"],
        "memory_step": lambda: [*address[:2], None, None, *address[4:6], None, rand(b, v, w), randn(b, v, w),
                                "cosine"],
        "dnc_usage": lambda: [rand(b, n), rand(b, n) / n, dist(b, r, n), rand(b, r)],
        "dnc_allocation": lambda: [rand(b, n, low=0.05, high=0.95)],
        "dnc_link": lambda: [rand(b, n, n) / n, dist(b, n) / 2, dist(b, n) / 2],
        "dnc_directional": lambda: [rand(b, n, n) / n, dist(b, r, n)],
        "additive_attention": lambda: [randn(b, h, a), randn(b, h, s, a), randn(h, a), randn(b, s, d)],
        "hop_read": lambda: [randn(b, d), randn(b, n, d), randn(b, n, w),
                             torch.rand(b, n, generator=g) < 0.7],
        "sam_write_weights": lambda: [dist(b, r, n), one_hot(b, n), rand(b), rand(b)],
        "sam_write": lambda: [randn(b, n, w), rand(b, n), randn(b, w), one_hot(b, n)],
        "sam_read": lambda: [randn(b, n, w), randn(b, r, w), rand(b, r, low=0.5, high=5),
                             torch.stack([torch.stack([torch.randperm(n, generator=g)[:k] for _ in range(r)])
                                          for _ in range(b)])],
        "lru_content_weights": lambda: [randn(b, n, w), randn(b, h, w), rand(b, h, low=0.5, high=5), randn(b, h, n),
                                        rand(b, h), "cosine"],
        "sample_slots": lambda: [dist(b, h, n), torch.rand(b, h, generator=g, dtype=torch.float64), "sample"],
    }[name]()
    return args, [t for t in args if isinstance(t, Tensor) and t.requires_grad]


def _values_and_gradients(name: str, args: list[object], leaves: list[Tensor], seed: int) -> list[Tensor]:
    out = getattr(ops, name)(*args)
    outs = out if isinstance(out, tuple) else (out,)
    g = torch.Generator().manual_seed(seed)
    upstream = [torch.randn(o.shape, generator=g, dtype=o.dtype) for o in outs]
    taking = [(o, u) for o, u in zip(outs, upstream, strict=True) if o.requires_grad]  # not sample_slots' one-hot
    grads = torch.autograd.grad([o for o, _ in taking], leaves, [u for _, u in taking])
    return [o.detach() for o in outs] + list(grads)


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_reference_and_torch_backends_agree_in_values_and_gradients(name: str) -> None:
    seed = int.from_bytes(os.urandom(4), "little")  # fresh inputs every run; the seed is in the failure
    args, leaves = _inputs(name, seed)
    with ops.use_backend("reference"):
        want = _values_and_gradients(name, args, leaves, seed)
    with ops.use_backend("torch"):
        got = _values_and_gradients(name, args, leaves, seed)
    assert len(got) == len(want) > 1
    for i, (x, y) in enumerate(zip(got, want, strict=True)):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-11, msg=lambda m, i=i: f"{name}, seed {seed}, #{i}: {m}")


def _which(name: str, is_cuda: bool = False) -> Callable[..., object]:
    return backend.resolve(name, is_cuda)


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_each_backend_runs_the_implementation_its_name_says(name: str) -> None:
    reference = getattr(FAMILY[name], name)
    with ops.use_backend("reference"):
        assert _which(name) is reference
        assert _which(name, is_cuda=True) is reference  # forced: no kernel, whatever the device
    with ops.use_backend("torch"):
        assert _which(name) is (getattr(ntm_grad, name) if name in HAND_WRITTEN else reference)
    with ops.use_backend("auto"):
        assert _which(name) is _with("torch", name)  # CPU tensors: the torch backend
    assert set(backend.implementations(name)) <= {"torch", "triton"} and "torch" in backend.implementations(name)


def test_reference_is_accepted_by_use_backend_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "reference" in ops.BACKENDS
    with ops.use_backend("reference") as name:
        assert name == "reference" == ops.current_backend()
    monkeypatch.setenv("COGDSL_BACKEND", "reference")
    assert ops.current_backend() == "reference"
    assert _which("write") is ntm.write


def test_registration_order_does_not_matter_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same op's fast path registered before its declaration and after it: the same backends."""
    monkeypatch.setattr(backend, "_REGISTRY", {})
    monkeypatch.setattr(declare, "_DECLARED", {})
    monkeypatch.setattr(declare, "_PUBLIC", {})

    def scaled(x: Tensor) -> Tensor:
        """y = 2x: x (B, N) → (B, N)."""
        return 2 * x

    def fast(x: Tensor) -> Tensor:
        return x + x

    outcomes = []
    for order in ("declare first", "register first"):
        backend._REGISTRY.clear()
        if order == "register first":
            backend.register("scaled", "torch", fast)
        declare.op(x="BN")(scaled)
        if order == "declare first":
            backend.register("scaled", "torch", fast)
        outcomes.append({name: _with(name, "scaled") for name in ("reference", "torch", "auto")})
    assert outcomes[0] == outcomes[1] == {"reference": scaled, "torch": fast, "auto": fast}


def _with(backend_name: str, op_name: str) -> Callable[..., object]:
    with ops.use_backend(backend_name):
        return _which(op_name)


# Run in a fresh interpreter: import cogdsl.kernels before cogdsl.ops, then reload every module that
# registers an implementation, the hand-written backwards first and the references last (the order
# in which, when both registered "torch", the references won).
ORDER_SCRIPT = """
import importlib, json, sys
import cogdsl.kernels
from cogdsl.ops import attention, backend, declare, dnc, ntm, ntm_grad

def table():
    # Each implementation as the module attribute it is (ntm_grad.write, ntm.read), so a stale
    # function left by a reload would show as the wrong module; a kernel as its wrapper's module.
    rows = {}
    for op in sorted(declare.declared()):
        for name in ("reference", "torch", "triton", "auto"):
            with backend.use_backend(name):
                try:
                    fn = backend.resolve(op, False)
                except backend.BackendUnavailableError:
                    rows[f"{op} {name}"] = None
                    continue
            homes = [m.__name__ for m in (ntm, dnc, attention, ntm_grad) if getattr(m, op, None) is fn]
            rows[f"{op} {name}"] = f"{(homes or [fn.__module__])[0]}.{op}"
    return rows

first = table()
for module in (ntm_grad, sys.modules["cogdsl.kernels"], attention, dnc, ntm):
    importlib.reload(module)
print(json.dumps([first, table()]))
"""


def test_registration_order_does_not_matter_across_imports_and_reloads() -> None:
    env = {name: value for name, value in os.environ.items() if name != "COGDSL_BACKEND"}
    done = subprocess.run([sys.executable, "-c", ORDER_SCRIPT], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    kernels_first, reloaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert kernels_first == reloaded
    for op in FAMILY:
        module = FAMILY[op].__name__
        assert kernels_first[f"{op} reference"] == f"{module}.{op}"
        assert kernels_first[f"{op} torch"] == f"{'cogdsl.ops.ntm_grad' if op in HAND_WRITTEN else module}.{op}"
        assert kernels_first[f"{op} auto"] == kernels_first[f"{op} torch"]  # resolved for CPU tensors


def test_every_kernel_implements_a_declared_op() -> None:
    from cogdsl import kernels

    assert set(kernels.OPS) <= set(declare.declared())


def test_a_contract_must_name_every_argument_with_known_letters() -> None:
    def two(x: Tensor, y: Tensor) -> Tensor:
        return x + y

    with pytest.raises(TypeError, match=r"op two: the contract names \['x'\] but the arguments are \['x', 'y'\]"):
        declare.op(x="BN")(two)
    with pytest.raises(TypeError, match=r"op two: unknown dimension letters \['Q'\]"):
        declare.op(x="BN", y="BQ")(two)
    assert "two" not in declare.declared()


def test_keywords_and_defaults_bind_as_the_signature_says() -> None:
    torch.manual_seed(3)
    m, w, e, a = torch.randn(2, 7, 5), torch.rand(2, 3, 7), torch.rand(2, 3, 5), torch.randn(2, 3, 5)
    want = ops.write(m, w, e, a)
    torch.testing.assert_close(ops.write(m, w, add=a, erase=e), want)
    torch.testing.assert_close(ops.write(memory=m, weights=w, erase=e, add=a), want)
    k, s = torch.randn(2, 3, 5), torch.rand(2, 3) + 0.5
    torch.testing.assert_close(ops.content_weights(m, k, s), ops.content_weights(m, k, s, similarity="cosine"))
    with pytest.raises(TypeError, match=r"write\(\) missing 1 required positional argument: 'add'"):
        ops.write(m, w, e)
    with pytest.raises(TypeError, match=r"write\(\) got an unexpected keyword argument 'scale'"):
        ops.write(m, w, e, a, scale=2)
    with pytest.raises(TypeError, match=r"write\(\) got multiple values for argument 'memory'"):
        ops.write(m, w, e, a, memory=m)
