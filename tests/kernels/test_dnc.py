"""The DNC memory-management kernels against the plain reference: forward and every gradient.

The oracle is :mod:`cogdsl.ops.dnc` evaluated in float64 on the very inputs the kernel gets, as
in :func:`tests.kernels.helpers.check_op` (whose tolerances, float32 calibration and error
records are reused here): the kernel runs through ``cogdsl.ops`` with the ``"triton"`` backend
forced, and the gradient of every input is taken against a seeded random upstream gradient for
every output.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Sequence

import pytest
import torch
from torch import Tensor

from cogdsl import kernels, ops
from cogdsl.ops import backend, dnc
from tests.kernels.helpers import F32, F64, Tolerance, _compare, count_launches

#: Each op's positional tensor arguments, in order, and its outputs' names.
ARGS: dict[str, tuple[str, ...]] = {
    "dnc_usage": ("usage", "write_weights", "read_weights", "free_gates"),
    "dnc_allocation": ("usage",),
    "dnc_link": ("link", "precedence", "write_weights"),
    "dnc_directional": ("link", "read_weights"),
}
OUTPUTS: dict[str, tuple[str, ...]] = {
    "dnc_usage": ("usage",),
    "dnc_allocation": ("allocation",),
    "dnc_link": ("link", "precedence"),
    "dnc_directional": ("forward", "backward"),
}
DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])


def _tiles(cap: int | None) -> contextlib.AbstractContextManager[object]:
    return kernels.tiling(cap) if cap else contextlib.nullcontext()


def _require_kernel(op: str) -> None:
    """Fail (not skip) with a clear message while the kernels are missing or unregistered."""
    try:
        importlib.import_module("cogdsl.kernels.dnc")
    except ModuleNotFoundError as e:
        if e.name != "cogdsl.kernels.dnc":
            raise
        pytest.fail("cogdsl.kernels.dnc (kernels/dnc.py) does not exist: the DNC kernels are missing", pytrace=False)
    if "triton" not in backend.implementations(op):
        pytest.fail(f"{op} has no 'triton' implementation registered (cogdsl.kernels.OPS)", pytrace=False)


def make_inputs(
    seed: int, *, batch: int = 3, heads: int = 3, slots: int = 37, link_steps: int = 4
) -> dict[str, Tensor]:
    """Float64 CPU inputs in the ranges a DNC produces.

    Usage in [0, 1]; write weights a sub-distribution (softmax × a write gate); read weights
    softmax rows; free gates sigmoids; the link and precedence after ``link_steps`` random
    writes from zero (the link in [0, 1] with a zero diagonal).
    """
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    def write_weights() -> Tensor:
        return torch.softmax(2 * randn(batch, slots), -1) * torch.sigmoid(randn(batch, 1) + 1)

    link = torch.zeros(batch, slots, slots, dtype=torch.float64)
    precedence = torch.zeros(batch, slots, dtype=torch.float64)
    for _ in range(link_steps):
        link, precedence = dnc.dnc_link(link, precedence, write_weights())
    return {
        "usage": torch.rand(batch, slots, generator=g, dtype=torch.float64),
        "write_weights": write_weights(),
        "read_weights": torch.softmax(2 * randn(batch, heads, slots), -1),
        "free_gates": torch.sigmoid(randn(batch, heads)),
        "link": link,
        "precedence": precedence,
    }


def _outputs(out: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


def _forward_backward(
    fn: Callable[..., Tensor | tuple[Tensor, ...]],
    leaves: Sequence[Tensor],
    make_args: Callable[[Sequence[Tensor]], Sequence[Tensor]],
    upstream: Sequence[Tensor],
    used: Sequence[int] | None,
) -> tuple[tuple[Tensor, ...], tuple[Tensor | None, ...]]:
    """Outputs, and the gradient of Σ ⟨upstream, output⟩ (over the outputs ``used``) for each leaf needing one."""
    outs = _outputs(fn(*make_args(leaves)))
    wanted = [leaf for leaf in leaves if leaf.requires_grad]
    pairs = [  # an output that depends on no leaf needing a gradient (the link's new precedence) is left out
        (o, u.to(o))
        for i, (o, u) in enumerate(zip(outs, upstream, strict=True))
        if (used is None or i in used) and o.requires_grad
    ]
    grads: list[Tensor | None] = [None] * len(leaves)
    if wanted:
        found = iter(
            torch.autograd.grad(
                [o for o, _ in pairs], wanted, [u for _, u in pairs], allow_unused=True, materialize_grads=True
            )
        )
        grads = [next(found) if leaf.requires_grad else None for leaf in leaves]
    return tuple(o.detach() for o in outs), tuple(grads)


def check_dnc(
    op: str,
    inputs: dict[str, Tensor],
    *,
    dtype: torch.dtype,
    device: str,
    seed: int = 0,
    grad: Sequence[str] | None = None,
    leaves: dict[str, Tensor] | None = None,
    make_args: Callable[[Sequence[Tensor]], Sequence[Tensor]] | None = None,
    used: Sequence[int] | None = None,
    tol: Tolerance | None = None,
) -> tuple[tuple[Tensor, ...], tuple[Tensor | None, ...]]:
    """The Triton ``op`` (forced through cogdsl.ops) against :mod:`cogdsl.ops.dnc` in float64.

    ``inputs``: float64 CPU tensors by argument name, cast to ``dtype`` on ``device``. ``grad``
    names the leaves that require a gradient (default: all). ``leaves``/``make_args``: tensors to
    differentiate and the views (slices, transposes) made of them for the op, for non-contiguous
    tests. ``used``: the indices of the outputs in the loss (default: all). Returns the kernel's
    outputs and gradients.
    """
    _require_kernel(op)
    if leaves is None:
        leaves = {name: inputs[name] for name in ARGS[op]}
    if make_args is None:

        def make_args(ls: Sequence[Tensor]) -> Sequence[Tensor]:
            return ls

    grad_names = set(leaves) if grad is None else set(grad)
    names = list(leaves)

    def prepare(dt: torch.dtype, dev: str) -> list[Tensor]:
        return [leaves[n].detach().to(dev, dt).clone().requires_grad_(n in grad_names) for n in names]

    kernel_leaves = prepare(dtype, device)
    oracle_leaves = [t.detach().to("cpu", torch.float64).clone().requires_grad_(t.requires_grad) for t in kernel_leaves]
    reference = getattr(dnc, op)
    with torch.no_grad():
        shapes = [o.shape for o in _outputs(reference(*make_args(oracle_leaves)))]
    g = torch.Generator().manual_seed(20_000 + seed)
    upstream = [torch.randn(*s, generator=g, dtype=torch.float64) for s in shapes]

    def kernel(*args: Tensor) -> Tensor | tuple[Tensor, ...]:
        with ops.use_backend("triton"):
            return getattr(ops, op)(*args)

    with count_launches() as launches:
        outs, grads = _forward_backward(kernel, kernel_leaves, make_args, [u.to(device) for u in upstream], used)
    assert launches, f"{op}: use_backend('triton') launched no Triton kernel"
    assert len(outs) == len(shapes), f"{op}: {len(outs)} outputs, expected {len(shapes)}"
    want_outs, want_grads = _forward_backward(reference, oracle_leaves, make_args, upstream, used)

    if tol is None:
        tol = F64 if dtype == torch.float64 else F32
    shape_note = ", ".join(f"{n} {tuple(t.shape)}" for n, t in zip(ARGS[op], make_args(kernel_leaves), strict=True))
    if dtype != torch.float64:
        # Calibrate: the float32 reference must pass the tolerance the kernel is held to.
        ref_outs, ref_grads = _forward_backward(reference, prepare(dtype, "cpu"), make_args, upstream, used)
        calibration = f"CALIBRATION (float32 reference, not the kernel) {op}"
        for name, got, want in zip(OUTPUTS[op], ref_outs, want_outs, strict=True):
            _compare(got, want, tol, f"{calibration} {name} ({shape_note})", dtype)
        for name, got, want in zip(names, ref_grads, want_grads, strict=True):
            if want is not None:
                _compare(got, want, tol, f"{calibration} d/d{name} ({shape_note})", dtype)

    for name, got, want in zip(OUTPUTS[op], outs, want_outs, strict=True):
        assert got.dtype == dtype and got.device.type == torch.device(device).type, (
            f"{op} {name}: {got.dtype} on {got.device}, expected {dtype} on {device}"
        )
        _compare(got, want, tol, f"{op} forward {name} ({shape_note})", dtype)
    for name, got, want in zip(names, grads, want_grads, strict=True):
        if want is None:
            assert got is None
            continue
        assert got is not None and got.dtype == dtype, f"{op} d/d{name}: {got}, expected a {dtype} gradient"
        _compare(got, want, tol, f"{op} gradient d/d{name} ({shape_note})", dtype)
    return outs, grads


# --- every op, every size ------------------------------------------------------------------

# (slots, read heads, slot tile cap): tiles of 4 and 16 make several tiles, the last partial
HEAD_CASES = [(1, 1, None), (5, 3, 4), (37, 3, 16), (37, 1, None), (100, 3, 16), (100, 1, None)]
# (slots, slot tile cap)
SLOT_CASES = [(1, None), (5, 4), (37, 4), (37, None), (100, 16)]


@DTYPES
@pytest.mark.parametrize("op", ["dnc_usage", "dnc_directional"])
@pytest.mark.parametrize(("slots", "heads", "cap"), HEAD_CASES)
def test_head_ops_match_reference(
    device: str, dtype: torch.dtype, op: str, slots: int, heads: int, cap: int | None
) -> None:
    seed = 100 * slots + 10 * heads + (cap or 0)
    x = make_inputs(seed, heads=heads, slots=slots)
    with _tiles(cap):
        check_dnc(op, x, dtype=dtype, device=device, seed=seed)


@DTYPES
@pytest.mark.parametrize("op", ["dnc_allocation", "dnc_link"])
@pytest.mark.parametrize(("slots", "cap"), SLOT_CASES)
def test_slot_ops_match_reference(device: str, dtype: torch.dtype, op: str, slots: int, cap: int | None) -> None:
    seed = 5000 + 100 * slots + (cap or 0)
    x = make_inputs(seed, slots=slots)
    with _tiles(cap):
        check_dnc(op, x, dtype=dtype, device=device, seed=seed)


@DTYPES
def test_link_after_a_long_sequence_of_sharp_writes(device: str, dtype: torch.dtype) -> None:
    """A link built by 30 near one-hot writes: entries near 1 next to near 0, precedence near one-hot."""
    x = make_inputs(61, slots=37, link_steps=30)
    sharp = 8 * torch.randn(3, 37, generator=torch.Generator().manual_seed(62), dtype=torch.float64)
    x["write_weights"] = torch.softmax(sharp, -1)
    with kernels.tiling(16):
        check_dnc("dnc_link", x, dtype=dtype, device=device, seed=61)
        check_dnc("dnc_directional", x, dtype=dtype, device=device, seed=61)


# --- allocation: ties and zeros ------------------------------------------------------------


def _tied_usage(seed: int, slots: int, values: Sequence[float], batch: int = 3) -> Tensor:
    """(B, N) float64 usage drawn from ``values`` (exact in float32), so most slots tie with others."""
    g = torch.Generator().manual_seed(seed)
    choices = torch.tensor(values, dtype=torch.float64)
    return choices[torch.randint(0, len(values), (batch, slots), generator=g)]


@DTYPES
@pytest.mark.parametrize(("slots", "cap"), [(5, 4), (37, 4), (37, None), (100, 16)])
def test_allocation_with_ties_assigns_like_a_stable_sort(
    device: str, dtype: torch.dtype, slots: int, cap: int | None
) -> None:
    """Ties go to the lower slot index first: checked with no absolute tolerance, so a swap anywhere shows.

    Two tied slots u at places j, j+1 get (1 − u) P and (1 − u) u P: exchanging them changes both
    by a factor u, which a purely relative tolerance sees however small P is.
    """
    usage = _tied_usage(70 + slots, slots, [0.25, 0.5, 0.75, 1.0])
    usage[0, -1] = usage[0, 0]  # the first and last slots tie, across tiles
    with _tiles(cap):
        outs, grads = check_dnc("dnc_allocation", {"usage": usage}, dtype=dtype, device=device, seed=70 + slots)
    want = dnc.dnc_allocation(usage.to(dtype).double())
    relative = Tolerance(atol=0.0, rtol=1e-4 if dtype == torch.float32 else 1e-12)
    label = f"dnc_allocation forward, ties, relative only (usage {tuple(usage.shape)})"
    _compare(outs[0], want, relative, label, dtype)
    assert torch.isfinite(grads[0]).all()


@DTYPES
@pytest.mark.parametrize(("slots", "cap"), [(5, 4), (37, 4), (100, 16)])
def test_allocation_with_exact_zeros_and_ones(device: str, dtype: torch.dtype, slots: int, cap: int) -> None:
    """Zero usage: the first empty slot (lowest index) gets exactly 1 and every other slot exactly 0;
    full slots (usage 1) get 0. The gradients are finite: nothing divides by a usage.
    """
    usage = _tied_usage(80 + slots, slots, [0.0, 0.5, 1.0, 0.25, 1.0])
    usage[0, -1] = 0.0  # at least one empty slot, in the last tile
    usage[1] = 1.0  # a full memory: nothing to allocate
    usage[2] = _tied_usage(81 + slots, slots, [0.5, 1.0, 0.75], batch=1)[0]
    usage[2, slots // 2] = 0.0  # exactly one empty slot, mid-row
    with _tiles(cap):
        outs, grads = check_dnc("dnc_allocation", {"usage": usage}, dtype=dtype, device=device, seed=80 + slots)
    got = outs[0].cpu()
    want = dnc.dnc_allocation(usage.to(dtype))
    assert torch.equal(got, want), f"dnc_allocation with exact zeros and ones: got {got}, expected {want}"
    first_empty = int((usage[0] == 0).nonzero()[0])
    assert got[0, first_empty] == 1 and got[0].sum() == 1
    assert torch.all(got[1] == 0)
    assert got[2, slots // 2] == 1 and got[2].sum() == 1
    assert torch.isfinite(grads[0]).all()


@DTYPES
@pytest.mark.parametrize(("slots", "cap"), [(5, 4), (37, 4), (37, None)])
def test_allocation_under_nan_usage_forms_no_out_of_range_index(
    device: str, dtype: torch.dtype, slots: int, cap: int | None
) -> None:
    """A NaN usage (a model gone wrong) compares false with everything: the slot order must still be a
    permutation of the row's slots (several NaN slots sharing a rank would leave places unwritten, and the
    kernel would then store through garbage indices: an illegal address on a GPU). NaN sorts last, as in
    torch.sort, so the allocation equals the reference's, NaN included."""
    _require_kernel("dnc_allocation")
    from cogdsl.kernels.dnc import allocation_launch

    usage = _tied_usage(90 + slots, slots, [0.25, 0.5, 0.75, 1.0]).to(dtype)
    usage[0, 0] = usage[0, 2] = usage[0, -1] = float("nan")  # several NaN slots, across tiles
    usage[1, 1] = float("nan")
    usage[2] = float("nan")  # a whole row
    with _tiles(cap):
        out, order, _ = allocation_launch(usage.to(device))
    expected_order = torch.arange(slots).expand(usage.shape[0], -1)
    assert torch.equal(order.long().cpu().sort(-1).values, expected_order), "the order is not a permutation"
    want = dnc.dnc_allocation(usage.double())
    got = out.cpu().double()
    assert torch.equal(got.isnan(), want.isnan())
    torch.testing.assert_close(got.nan_to_num(), want.nan_to_num(), rtol=1e-4, atol=1e-6)


# --- layouts and partial gradients ---------------------------------------------------------


def test_non_contiguous_inputs(device: str) -> None:
    """Strided slices, transposes and columns of wider tensors for every argument of every op."""
    r, n = 3, 37
    x = make_inputs(90, heads=r, slots=n)
    usage_leaves = {
        "usage_wide": torch.cat([x["usage"], x["precedence"]], -1),  # usage = [:, :N]
        "write_t": x["write_weights"].t().contiguous(),  # (N, B)
        "read_t": x["read_weights"].transpose(1, 2).contiguous(),  # (B, N, R)
        "free_t": x["free_gates"].t().contiguous(),  # (R, B)
    }

    def usage_args(ls: Sequence[Tensor]) -> list[Tensor]:
        args = [ls[0][:, :n], ls[1].t(), ls[2].transpose(1, 2), ls[3].t()]
        assert not any(a.is_contiguous() for a in args)
        return args

    link_leaves = {
        "link_t": x["link"].transpose(1, 2).contiguous(),
        "pair": torch.stack([x["precedence"], x["write_weights"]], -1),  # (B, N, 2)
    }

    def link_args(ls: Sequence[Tensor]) -> list[Tensor]:
        args = [ls[0].transpose(1, 2), ls[1][..., 0], ls[1][..., 1]]
        assert not any(a.is_contiguous() for a in args)
        return args

    def directional_args(ls: Sequence[Tensor]) -> list[Tensor]:
        args = [ls[0].transpose(1, 2), ls[1].transpose(1, 2)]
        assert not any(a.is_contiguous() for a in args)
        return args

    def allocation_args(ls: Sequence[Tensor]) -> list[Tensor]:
        assert not ls[0][:, ::2].is_contiguous()
        return [ls[0][:, ::2]]

    with kernels.tiling(16):
        check_dnc("dnc_usage", x, dtype=torch.float32, device=device, leaves=usage_leaves, make_args=usage_args)
        check_dnc("dnc_link", x, dtype=torch.float32, device=device, leaves=link_leaves, make_args=link_args)
        directional_leaves = {"link_t": link_leaves["link_t"], "read_t": usage_leaves["read_t"]}
        check_dnc(
            "dnc_directional",
            x,
            dtype=torch.float32,
            device=device,
            leaves=directional_leaves,
            make_args=directional_args,
        )
        wide = {"usage_wide": torch.stack([x["usage"], x["write_weights"]], -1).flatten(1)}  # usage = [:, ::2]
        check_dnc("dnc_allocation", x, dtype=torch.float32, device=device, leaves=wide, make_args=allocation_args)


@pytest.mark.parametrize(
    ("op", "grad", "used"),
    [
        ("dnc_usage", ["usage"], None),
        ("dnc_usage", ["read_weights", "free_gates"], None),
        ("dnc_usage", ["write_weights"], None),
        ("dnc_link", ["write_weights"], None),
        ("dnc_link", ["link"], None),
        ("dnc_link", ["precedence", "write_weights"], [1]),  # only the new precedence in the loss
        ("dnc_link", None, [0]),  # only the new link in the loss
        ("dnc_directional", ["read_weights"], None),
        ("dnc_directional", ["link"], [1]),  # only the backward weighting in the loss
        ("dnc_directional", None, [0]),
        ("dnc_allocation", [], None),  # nothing requires a gradient
    ],
)
def test_only_some_inputs_need_grad(device: str, op: str, grad: list[str] | None, used: list[int] | None) -> None:
    x = make_inputs(95, heads=3, slots=37)
    with kernels.tiling(16):
        _, grads = check_dnc(op, x, dtype=torch.float32, device=device, grad=grad, used=used, seed=95)
    wanted = set(ARGS[op]) if grad is None else set(grad)
    assert [g is not None for g in grads] == [name in wanted for name in ARGS[op]]


@pytest.mark.parametrize("op", sorted(ARGS))
def test_no_grad_forward(device: str, op: str) -> None:
    """Under torch.no_grad the kernels run forward only and give the reference's outputs."""
    _require_kernel(op)
    x = make_inputs(97, heads=3, slots=37)
    args = [x[name].float().to(device) for name in ARGS[op]]
    with torch.no_grad(), ops.use_backend("triton"), count_launches() as launches:
        outs = _outputs(getattr(ops, op)(*args))
    assert launches, f"{op}: no Triton kernel was launched"
    want = _outputs(getattr(dnc, op)(*[a.cpu().double() for a in args]))
    for name, got, w in zip(OUTPUTS[op], outs, want, strict=True):
        assert not got.requires_grad
        _compare(got, w, F32, f"{op} forward {name} under no_grad", torch.float32)
