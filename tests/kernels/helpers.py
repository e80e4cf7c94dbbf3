"""Shared pieces of the kernel tests: seeded NTM inputs, kernel-launch counting, and the check
of a Triton op's forward and every gradient against the plain autograd reference.

The oracle is :mod:`cogdsl.ops.ntm` evaluated in float64 on the very inputs the kernel gets.
A float32 kernel must be within ``F32`` of it, and so must the float32 reference: that second
check calibrates the tolerance (a correct float32 implementation passes it), so a failure of
the first is the kernel's fault. A float64 kernel must be within ``F64``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import cogdsl.kernels
from cogdsl import ops
from cogdsl.ops import attention, ntm

#: Each op's positional tensor arguments, in order.
ARGS: dict[str, tuple[str, ...]] = {
    "content_weights": ("memory", "keys", "strengths"),
    "ntm_address": ("memory", "previous", "keys", "strengths", "gate", "shift_weights", "gamma"),
    "read": ("memory", "weights"),
    "write": ("memory", "weights", "erase", "add"),
    "ntm_memory_step": ("memory", "previous", "keys", "strengths", "gate", "shift_weights", "gamma", "erase", "add"),
    # any stage's tensors may be None (tests/kernels/test_pipelines.py); here, every stage
    "address": ("memory", "previous", "keys", "strengths", "gate", "shift_weights", "gamma"),
    "memory_step": ("memory", "previous", "keys", "strengths", "gate", "shift_weights", "gamma", "erase", "add"),
}
#: The ops that take a ``similarity``.
SIMILARITY_OPS = {"content_weights", "ntm_address", "ntm_memory_step", "address", "memory_step"}
#: The names of the outputs of the ops with more than one.
OUTPUTS: dict[str, tuple[str, ...]] = {"ntm_memory_step": ("weights", "reads", "memory"),
                                       "memory_step": ("weights", "reads", "memory"),
                                       "additive_attention": ("context", "weights"), "hop_read": ("read", "weights")}


@dataclass(frozen=True)
class Tolerance:
    """|kernel − oracle| ≤ atol · scale + rtol · |oracle|, scale = max(1, max |oracle|) per tensor."""

    atol: float
    rtol: float


F32 = Tolerance(atol=2e-5, rtol=1e-4)
F64 = Tolerance(atol=1e-10, rtol=1e-10)


@dataclass(frozen=True)
class ErrorRecord:
    """One compared tensor: where, its dtype, its max |error| and the fraction of the tolerance it used."""

    file: str
    label: str
    dtype: str
    max_abs: float
    used: float


#: Every comparison made in this session (printed by conftest's terminal summary under -v).
ERRORS: list[ErrorRecord] = []


def make_inputs(
    seed: int,
    *,
    batch: int = 3,
    heads: int = 3,
    slots: int = 37,
    width: int = 7,
    offsets: int = 3,
    write_heads: int | None = None,
    large: bool = False,
) -> dict[str, Tensor]:
    """Float64 CPU inputs in the ranges an NTM controller produces, every one random (none zero).

    ``large``: strengths around 50 and gammas around 20 (a sharp softmax and a steep power).
    ``write_heads`` sizes erase and add (default: every head writes).
    """
    g = torch.Generator().manual_seed(seed)
    write_heads = heads if write_heads is None else write_heads

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    if large:
        strengths = 50.0 * (0.8 + 0.4 * rand(batch, heads))
        gamma = 20.0 * (0.8 + 0.4 * rand(batch, heads))
    else:
        strengths = F.softplus(randn(batch, heads)) * 5
        gamma = 1 + F.softplus(randn(batch, heads))
    return {
        "memory": randn(batch, slots, width),
        "previous": torch.softmax(randn(batch, heads, slots), -1),
        "weights": torch.softmax(randn(batch, heads, slots), -1),
        "keys": randn(batch, heads, width),
        "strengths": strengths,
        "gate": torch.sigmoid(randn(batch, heads)),
        "shift_weights": torch.softmax(randn(batch, heads, offsets), -1),
        "gamma": gamma,
        "erase": torch.sigmoid(randn(batch, write_heads, width)),
        "add": randn(batch, write_heads, width),
    }


@dataclass
class Launch:
    """One kernel launch: the kernel's name and its arguments by name."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@contextmanager
def count_launches() -> Iterator[list[Launch]]:
    """Record every Triton kernel launch inside the block (interpreter or compiled)."""
    if cogdsl.kernels.interpreting():
        from triton.runtime.interpreter import InterpretedFunction as kernel_class
    else:
        from triton.runtime.jit import JITFunction as kernel_class
    launches: list[Launch] = []
    original = kernel_class.run

    def run(self: Any, *args: Any, grid: Any, warmup: bool, **kwargs: Any) -> Any:
        if not warmup:
            named = dict(zip(getattr(self, "arg_names", ()), args, strict=False))
            named.update(kwargs)
            launches.append(Launch(getattr(self, "__name__", "?"), named))
        return original(self, *args, grid=grid, warmup=warmup, **kwargs)

    kernel_class.run = run
    try:
        yield launches
    finally:
        kernel_class.run = original


def _as_tuple(out: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


def _call(op: str, backend: str | None, args: Sequence[Tensor], similarity: str | None) -> tuple[Tensor, ...]:
    """The op through cogdsl.ops under ``backend``, or (backend None) the plain reference."""
    extra = (similarity,) if op in SIMILARITY_OPS else ()
    if backend is None:
        reference = getattr(ntm, op) if hasattr(ntm, op) else getattr(attention, op)
        return _as_tuple(reference(*args, *extra))
    with ops.use_backend(backend):
        return _as_tuple(getattr(ops, op)(*args, *extra))


def _forward_backward(
    op: str,
    backend: str | None,
    leaves: Sequence[Tensor],
    make_args: Callable[[Sequence[Tensor]], Sequence[Tensor]],
    similarity: str | None,
    upstream: Sequence[Tensor],
    used: Sequence[int] | None = None,
) -> tuple[tuple[Tensor, ...], tuple[Tensor | None, ...]]:
    """Outputs, and the gradient of Σ_outputs ⟨upstream, output⟩ for each leaf that requires one.

    ``used``: the indices of the outputs the loss depends on (default: all).
    """
    outs = _call(op, backend, make_args(leaves), similarity)
    wanted = [leaf for leaf in leaves if leaf.requires_grad]
    pairs = [
        (o, u.to(o.dtype))
        for i, (o, u) in enumerate(zip(outs, upstream, strict=True))
        if o.numel() > 0 and (used is None or i in used)
    ]
    grads: list[Tensor | None] = [None] * len(leaves)
    if wanted:
        found = torch.autograd.grad(
            [o for o, _ in pairs], wanted, [u for _, u in pairs], allow_unused=True, materialize_grads=True
        )
        it = iter(found)
        grads = [next(it) if leaf.requires_grad else None for leaf in leaves]
    return tuple(o.detach() for o in outs), tuple(grads)


def _compare(got: Tensor, want: Tensor, tol: Tolerance, label: str, dtype: torch.dtype) -> None:
    """assert_close in float64 with ``tol`` (atol scaled by the oracle's largest magnitude); records the error."""
    assert got.shape == want.shape, f"{label}: shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    got64, want64 = got.detach().to("cpu", torch.float64), want.detach().to("cpu", torch.float64)
    scale = max(1.0, want64.abs().max().item()) if want64.numel() else 1.0
    atol = tol.atol * scale
    if want64.numel():
        err = (got64 - want64).abs()
        used = (err / (atol + tol.rtol * want64.abs())).max().item()
        max_abs = err.max().item()
        if not torch.isfinite(got64).all():
            used = max_abs = float("inf")
    else:
        used = max_abs = 0.0
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[0]
    ERRORS.append(ErrorRecord(test, label, str(dtype).removeprefix("torch."), max_abs, used))
    torch.testing.assert_close(
        got64,
        want64,
        atol=atol,
        rtol=tol.rtol,
        msg=lambda m: f"{label} [{str(dtype).removeprefix('torch.')}, max |error| {max_abs:.3g}, "
        f"{used:.3g} of the tolerance]\n{m}",
    )


def check_op(
    op: str,
    inputs: dict[str, Tensor],
    *,
    dtype: torch.dtype,
    device: str,
    similarity: str = "cosine",
    seed: int = 0,
    grad: Sequence[str] | None = None,
    leaves: dict[str, Tensor] | None = None,
    make_args: Callable[[Sequence[Tensor]], Sequence[Tensor]] | None = None,
    tol: Tolerance | None = None,
    used: Sequence[int] | None = None,
    arg_names: Sequence[str] | None = None,
) -> tuple[tuple[Tensor, ...], tuple[Tensor | None, ...]]:
    """Check the Triton ``op`` (forced through cogdsl.ops) against the reference: every output and gradient.

    ``inputs`` holds float64 CPU tensors by argument name (extra names are ignored); they are cast
    to ``dtype`` on ``device``. ``grad`` names the arguments that require a gradient (default: all).
    For a non-contiguous test, ``leaves`` replaces the inputs by the tensors the gradients are taken
    of, and ``make_args`` maps those leaves to the op's arguments (views: slices, transposes).
    The upstream gradient of every output (or of the outputs ``used`` names by index, the others
    not in the loss) is a seeded random tensor. ``arg_names``: the op's arguments, for an op not
    in :data:`ARGS`. Returns the kernel's outputs and gradients.
    """
    names = ARGS[op] if arg_names is None else arg_names
    if leaves is None:
        leaves = {name: inputs[name] for name in names}
    if make_args is None:

        def make_args(ls: Sequence[Tensor]) -> Sequence[Tensor]:
            return ls

    grad_names = set(leaves) if grad is None else set(grad)
    leaf_names = list(leaves)

    def prepare(dt: torch.dtype, dev: str) -> list[Tensor]:
        return [
            leaves[n].detach().to(dev, dt).clone().requires_grad_(n in grad_names) for n in leaf_names
        ]

    kernel_leaves = prepare(dtype, device)
    # The oracle: the reference in float64 on exactly the kernel's (rounded) inputs.
    oracle_leaves = [
        t.detach().to("cpu", torch.float64).clone().requires_grad_(t.requires_grad) for t in kernel_leaves
    ]
    with torch.no_grad():
        shapes = [o.shape for o in _call(op, None, make_args(oracle_leaves), similarity)]
    g = torch.Generator().manual_seed(10_000 + seed)
    upstream = [torch.randn(*s, generator=g, dtype=torch.float64) for s in shapes]

    with count_launches() as launches:
        outs, grads = _forward_backward(
            op, "triton", kernel_leaves, make_args, similarity, [u.to(device) for u in upstream], used
        )
    assert launches, f"{op}: use_backend('triton') launched no Triton kernel"
    assert len(outs) == len(shapes), f"{op}: {len(outs)} outputs, expected {len(shapes)}"
    want_outs, want_grads = _forward_backward(op, None, oracle_leaves, make_args, similarity, upstream, used)

    if tol is None:
        tol = F64 if dtype == torch.float64 else F32
    out_names = OUTPUTS.get(op, ("output",))
    shape_note = ", ".join(f"{n} {tuple(t.shape)}" for n, t in zip(leaf_names, kernel_leaves, strict=True))
    if op in SIMILARITY_OPS:
        shape_note += f", {similarity}"
    if dtype != torch.float64:
        # Calibrate: the float32 reference must pass the tolerance the kernel is held to.
        ref_outs, ref_grads = _forward_backward(
            op, None, prepare(dtype, "cpu"), make_args, similarity, upstream, used
        )
        for name, got, want in zip(out_names, ref_outs, want_outs, strict=True):
            _compare(got, want, tol, f"CALIBRATION (float32 reference, not the kernel) {op} {name}", dtype)
        for name, got, want in zip(leaf_names, ref_grads, want_grads, strict=True):
            if want is not None:
                _compare(got, want, tol, f"CALIBRATION (float32 reference, not the kernel) {op} d/d{name}", dtype)

    for name, got, want in zip(out_names, outs, want_outs, strict=True):
        assert got.dtype == dtype and got.device.type == torch.device(device).type, (
            f"{op} {name}: {got.dtype} on {got.device}, expected {dtype} on {device}"
        )
        _compare(got, want, tol, f"{op} forward {name} ({shape_note})", dtype)
    for name, got, want in zip(leaf_names, grads, want_grads, strict=True):
        assert (got is None) == (name not in grad_names), f"{op} d/d{name}: {got}"
        if want is None:
            continue
        assert got is not None
        assert got.dtype == dtype, f"{op} d/d{name}: {got.dtype}, expected {dtype}"
        _compare(got, want, tol, f"{op} gradient d/d{name} ({shape_note})", dtype)
    return outs, grads
