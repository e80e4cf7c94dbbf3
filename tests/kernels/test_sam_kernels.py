"""The Sparse Access Memory kernels (cogdsl.kernels.sam) against the reference: forward, every gradient, dispatch.

Each op runs through ``cogdsl.ops`` with the ``"triton"`` backend forced and is compared with the same op under
``use_backend("reference")`` (:mod:`cogdsl.ops.sam`) in float64 on the very inputs the kernel gets, with the
tolerances of :mod:`tests.kernels.helpers` (float32 calibrated: the float32 reference must pass them too). The
gradient of every floating-point input is taken against seeded random upstream gradients of every output. The
read's slots come from :func:`cogdsl.ops.sam.sam_top_k`, and also with two heads reading the same rows (their
gradients are added into one row of dM); the LRU one-hot from :func:`cogdsl.ops.sam.sam_lru`. Slot tiles are
capped so that a memory spans several tiles, the last one partial.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from cogdsl import kernels, ops
from cogdsl.ops import sam
from tests.kernels.helpers import F32, F64, _compare, count_launches

#: Each op's positional tensor arguments, in order (the dispatch and custom-op tests read these).
ARGS: dict[str, tuple[str, ...]] = {
    "sam_write_weights": ("read_weights", "lru", "alpha", "gamma"),
    "sam_write": ("memory", "write_weights", "add", "lru"),
    "sam_read": ("memory", "keys", "strengths", "slots"),
}
OUTPUTS: dict[str, tuple[str, ...]] = {"sam_read": ("weights", "reads")}
DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])


def make_inputs(seed: int, *, batch: int = 2, heads: int = 3, slots: int = 11, width: int = 5, k: int = 3,
                shared: bool = False) -> dict[str, Tensor]:
    """Float64 inputs of the three ops, none zero, as a SAM step makes them, and the int64 ``slots``.

    ``slots`` are each head's top K (:func:`~cogdsl.ops.sam.sam_top_k`); ``shared``: head 1 reads head 0's
    rows (in reverse order), so two heads' gradients land on the same rows.
    """
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    memory, keys = randn(batch, slots, width), randn(batch, heads, width)
    chosen = sam.sam_top_k(memory, keys, k)
    if shared:
        chosen[:, 1] = chosen[:, 0].flip(-1)
    return {
        "memory": memory,
        "keys": keys,
        "strengths": F.softplus(randn(batch, heads)) * 5 + 0.1,
        "slots": chosen,
        "read_weights": torch.softmax(randn(batch, heads, slots), -1),
        "lru": sam.sam_lru(torch.rand(batch, slots, generator=g, dtype=torch.float64)),
        "alpha": torch.sigmoid(randn(batch)),
        "gamma": torch.sigmoid(randn(batch)),
        "write_weights": torch.rand(batch, slots, generator=g, dtype=torch.float64) + 0.01,
        "add": randn(batch, width),
    }


def _run(op: str, backend: str, args: Sequence[Tensor], upstream: Sequence[Tensor],
         used: Sequence[int]) -> tuple[tuple[Tensor, ...], tuple[Tensor | None, ...]]:
    """The op's outputs under ``backend``, and the gradient of Σ ⟨upstream, output⟩ (the outputs ``used``) of each
    floating-point argument."""
    with ops.use_backend(backend):
        outs = getattr(ops, op)(*args)
    outs = outs if isinstance(outs, tuple) else (outs,)
    leaves = [a for a in args if a.requires_grad]
    loss = sum((o * u.to(o)).sum() for i, (o, u) in enumerate(zip(outs, upstream, strict=True)) if i in used)
    found = iter(torch.autograd.grad(loss, leaves, allow_unused=True, materialize_grads=True))
    return tuple(o.detach() for o in outs), tuple(next(found) if a.requires_grad else None for a in args)


def check_sam(op: str, x: dict[str, Tensor], *, dtype: torch.dtype, device: str, seed: int = 0,
              used: Sequence[int] | None = None) -> tuple[tuple[Tensor, ...], tuple[Tensor | None, ...]]:
    """The Triton op against the float64 reference on the same (rounded) inputs: every output and gradient."""
    names = ARGS[op]

    def prepare(dt: torch.dtype, dev: str) -> list[Tensor]:
        return [x[n].to(dev, dt).clone().requires_grad_() if x[n].is_floating_point() else x[n].to(dev)
                for n in names]

    kernel_args = prepare(dtype, device)
    oracle_args = [a.detach().to("cpu", torch.float64 if a.is_floating_point() else a.dtype).clone()
                   .requires_grad_(a.is_floating_point()) for a in kernel_args]
    with torch.no_grad(), ops.use_backend("reference"):
        shapes = [o.shape for o in (lambda r: r if isinstance(r, tuple) else (r,))(getattr(ops, op)(*oracle_args))]
    used = tuple(range(len(shapes))) if used is None else tuple(used)
    g = torch.Generator().manual_seed(10_000 + seed)
    upstream = [torch.randn(*s, generator=g, dtype=torch.float64) for s in shapes]

    with count_launches() as launches:
        outs, grads = _run(op, "triton", kernel_args, [u.to(device) for u in upstream], used)
    assert [launch for launch in launches if "sam" not in launch.name] == []
    assert len(launches) == 2, f"{op}: expected a forward and a backward launch, got {launches}"
    want_outs, want_grads = _run(op, "reference", oracle_args, upstream, used)
    tol = F64 if dtype == torch.float64 else F32
    shape_note = ", ".join(f"{n} {tuple(a.shape)}" for n, a in zip(names, kernel_args, strict=True))
    out_names = OUTPUTS.get(op, ("output",))
    if dtype != torch.float64:
        ref_outs, ref_grads = _run(op, "reference", prepare(dtype, "cpu"), upstream, used)
        for name, got, want in zip(out_names, ref_outs, want_outs, strict=True):
            _compare(got, want, tol, f"CALIBRATION (float32 reference, not the kernel) {op} {name}", dtype)
        for name, got, want in zip(names, ref_grads, want_grads, strict=True):
            if want is not None:
                _compare(got, want, tol, f"CALIBRATION (float32 reference, not the kernel) {op} d/d{name}", dtype)
    for name, got, want in zip(out_names, outs, want_outs, strict=True):
        assert got.dtype == dtype and got.device.type == torch.device(device).type
        _compare(got, want, tol, f"{op} forward {name} ({shape_note})", dtype)
    for name, got, want in zip(names, grads, want_grads, strict=True):
        assert (got is None) == (name == "slots"), f"{op} d/d{name}: {got}"
        if want is not None:
            assert got is not None and got.dtype == dtype
            _compare(got, want, tol, f"{op} gradient d/d{name} ({shape_note})", dtype)
    return outs, grads


def _tiles(cap: int | None) -> contextlib.AbstractContextManager[object]:
    return kernels.tiling(cap) if cap else contextlib.nullcontext()


# (batch, heads, slots, width, slot tile cap): several tiles with a partial last one, one tile, a single slot
SIZES = [(2, 3, 37, 5, 8), (3, 1, 100, 7, 16), (2, 2, 37, 20, None), (2, 3, 1, 3, None)]


@DTYPES
@pytest.mark.parametrize(("batch", "heads", "slots", "width", "cap"), SIZES)
def test_sam_write_weights_matches_reference(device: str, dtype: torch.dtype, batch: int, heads: int, slots: int,
                                             width: int, cap: int | None) -> None:
    seed = 100 + batch * 10 + heads + slots
    x = make_inputs(seed, batch=batch, heads=heads, slots=slots, width=width, k=1)
    with _tiles(cap), count_launches() as launches:
        check_sam("sam_write_weights", x, dtype=dtype, device=device, seed=seed)
    if cap and slots > cap:
        assert launches[0].args["BLOCK_N"] == cap


@DTYPES
@pytest.mark.parametrize(("batch", "heads", "slots", "width", "cap"), SIZES)
def test_sam_write_matches_reference(device: str, dtype: torch.dtype, batch: int, heads: int, slots: int,
                                     width: int, cap: int | None) -> None:
    seed = 200 + batch * 10 + heads + slots
    x = make_inputs(seed, batch=batch, heads=heads, slots=slots, width=width, k=1)
    with _tiles(cap), count_launches() as launches:
        check_sam("sam_write", x, dtype=dtype, device=device, seed=seed)
    if cap and slots > cap:
        assert launches[0].args["BLOCK_N"] == cap


def test_sam_write_chains_the_write_weights(device: str) -> None:
    """The write weights made by the kernel feed the write kernel: gradients reach the read weights and gates."""
    x = make_inputs(7, slots=37)
    args = [x[n].float().to(device).requires_grad_() for n in ("memory", "read_weights", "lru", "alpha", "gamma")]

    def step(backend: str, memory: Tensor, read_weights: Tensor, lru: Tensor, alpha: Tensor,
             gamma: Tensor) -> Tensor:
        with ops.use_backend(backend):
            weights = ops.sam_write_weights(read_weights, lru, alpha, gamma)
            return ops.sam_write(memory, weights, x["add"].float().to(device), lru)

    got = torch.autograd.grad(step("triton", *args).square().sum(), args)
    want = torch.autograd.grad(step("reference", *args).square().sum(), args)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=2e-5, rtol=1e-4)


# (batch, heads, slots, width, K): K a power of two, not one, one, all the slots
READ_SIZES = [(2, 3, 37, 5, 4), (3, 2, 100, 7, 5), (2, 1, 13, 20, 1), (2, 2, 13, 6, 13)]


@DTYPES
@pytest.mark.parametrize("shared", [False, True], ids=["top_k", "shared_rows"])
@pytest.mark.parametrize(("batch", "heads", "slots", "width", "k"), READ_SIZES)
def test_sam_read_matches_reference(device: str, dtype: torch.dtype, shared: bool, batch: int, heads: int,
                                    slots: int, width: int, k: int) -> None:
    if shared and heads < 2:
        pytest.skip("two heads needed to share rows")
    seed = 300 + batch * 10 + heads + slots + k
    x = make_inputs(seed, batch=batch, heads=heads, slots=slots, width=width, k=k, shared=shared)
    (weights, _), (d_memory, _, _, _) = check_sam("sam_read", x, dtype=dtype, device=device, seed=seed)
    read = torch.zeros(batch, slots, dtype=torch.bool)
    read.scatter_(1, x["slots"].reshape(batch, -1), True)
    assert (weights.cpu() != 0).sum(-1).le(k).all() and (weights.cpu().sum(-1) - 1).abs().max() < 1e-5
    assert d_memory is not None and (d_memory.cpu()[~read] == 0).all()  # a row no head read: exactly zero


@pytest.mark.parametrize("used", [(0,), (1,)], ids=["weights_only", "reads_only"])
def test_sam_read_with_the_loss_on_one_output(device: str, used: tuple[int, ...]) -> None:
    x = make_inputs(9, slots=23, k=4, shared=True)
    check_sam("sam_read", x, dtype=torch.float64, device=device, seed=9, used=used)


@DTYPES
def test_sam_read_with_sharp_strengths(device: str, dtype: torch.dtype) -> None:
    """β ≈ 50: the softmax over K needs its maximum subtracted."""
    x = make_inputs(11, slots=29, k=6)
    x["strengths"] = 50.0 + x["strengths"]
    check_sam("sam_read", x, dtype=dtype, device=device, seed=11)


def test_sam_read_cosine_gradient_is_the_references_at_tiny_norms(device: str) -> None:
    """Rows and a key far below 1 in norm: ε in the norms and the denominator matters, as in ``_cosine``."""
    x = make_inputs(12, slots=17, k=4)
    x["memory"] = x["memory"] * 1e-7
    x["keys"][:, 0] = x["keys"][:, 0] * 1e-8
    check_sam("sam_read", x, dtype=torch.float64, device=device, seed=12)


@pytest.mark.parametrize("op", sorted(ARGS))
def test_opcheck(op: str) -> None:
    x = make_inputs(5, shared=True)
    args = tuple(x[n].float().requires_grad_() if x[n].is_floating_point() else x[n] for n in ARGS[op])
    torch.library.opcheck(getattr(torch.ops.cogdsl, op).default, args,
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


BAD: list[tuple[str, Callable[[dict[str, Tensor]], tuple[Tensor, ...]]]] = [
    ("sam_write_weights", lambda x: (x["read_weights"][:, :, :-1], x["lru"], x["alpha"], x["gamma"])),
    ("sam_write_weights", lambda x: (x["read_weights"], x["lru"], x["alpha"][:1], x["gamma"])),
    ("sam_write", lambda x: (x["memory"], x["write_weights"], x["add"][:, :-1], x["lru"])),
    ("sam_write", lambda x: (x["memory"], x["write_weights"][:, :-1], x["add"], x["lru"])),
    ("sam_read", lambda x: (x["memory"], x["keys"][:, :, :-1], x["strengths"], x["slots"])),
    ("sam_read", lambda x: (x["memory"], x["keys"], x["strengths"], x["slots"][:, :1])),
]


@pytest.mark.parametrize(("op", "make"), BAD)
def test_bad_input_raises_the_references_error(device: str, op: str,
                                               make: Callable[[dict[str, Tensor]], tuple[Tensor, ...]]) -> None:
    x = {k: (v.float() if v.is_floating_point() else v).to(device) for k, v in make_inputs(6).items()}
    args = make(x)
    with ops.use_backend("reference"), pytest.raises(ValueError) as reference:
        getattr(ops, op)(*args)
    with ops.use_backend("triton"), count_launches() as launches, pytest.raises(
            ValueError, match=re.escape(str(reference.value))):
        getattr(ops, op)(*args)
    assert launches == []
