"""The Dynamic NTM's kernels (cogdsl.kernels.dntm) against the plain autograd reference (cogdsl.ops.dntm).

Each op runs through ``cogdsl.ops`` with the ``"triton"`` backend forced and is compared, forward and the
gradient of every differentiable input, with the reference in float64 on the same (rounded) inputs, with
:mod:`tests.kernels.helpers`' tolerances: ``F64`` (1e-10) in float64, where the two differ only in the
order of their sums; ``F32`` (2e-5 · max(1, max |oracle|) + 1e-4 relative) in float32, calibrated by the
float32 reference, which must pass it too. The slots a sample picks are compared exactly: the kernel's
cumulative sum is summed in another order than torch.cumsum, so the two could part only where u Σ w lies
within rounding of a boundary, which the seeded inputs here never hit. Slot tiles are capped so that a row
spans several tiles, the last one partial.
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
from cogdsl.kernels import dntm as kernel
from tests.kernels import helpers
from tests.kernels.helpers import F32, F64, _compare, count_launches

#: Each op's positional tensor arguments, in order (the dispatch and custom-op tests read these).
ARGS: dict[str, tuple[str, ...]] = {
    "lru_content_weights": ("memory", "keys", "strengths", "average", "gamma"),
    "sample_slots": ("weights", "noise"),
}
#: The options each custom op takes after its tensors (cosine; argmax), for the custom-op tests.
OPTIONS: dict[str, tuple[object, ...]] = {"lru_content_weights": (True,), "sample_slots": (False,)}
OUTPUTS = {"lru_content_weights": ("weights", "logits"), "sample_slots": ("one_hot", "log_prob", "entropy")}
#: The arguments that take no gradient.
CONSTANT = {"noise"}
DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])


def make_inputs(seed: int, *, batch: int = 2, heads: int = 3, slots: int = 37, width: int = 5,
                large: bool = False) -> dict[str, Tensor]:
    """Float64 inputs of both ops, none zero: helpers.make_inputs' plus the LRU average v (logit-sized,
    both signs), its γ in (0, 1), and the noise u in [0, 1)."""
    x = helpers.make_inputs(seed, batch=batch, heads=heads, slots=slots, width=width, large=large)
    g = torch.Generator().manual_seed(seed + 1)
    x["average"] = 2.0 * torch.randn(batch, heads, slots, generator=g, dtype=torch.float64)
    x["gamma"] = torch.sigmoid(torch.randn(batch, heads, generator=g, dtype=torch.float64))
    x["noise"] = torch.rand(batch, heads, generator=g, dtype=torch.float64)
    return x


def _run(op: str, backend: str, args: Sequence[Tensor], options: Sequence[str], upstream: Sequence[Tensor],
         used: Sequence[int]) -> tuple[tuple[Tensor, ...], tuple[Tensor | None, ...]]:
    """The op's outputs under ``backend``, and the gradient of Σ ⟨upstream, output⟩ (the outputs ``used``) of
    each argument that requires one."""
    with ops.use_backend(backend):
        outs = getattr(ops, op)(*args, *options)
    leaves = [a for a in args if a.requires_grad]
    loss = sum((o * u.to(o)).sum() for i, (o, u) in enumerate(zip(outs, upstream, strict=True)) if i in used)
    found = iter(torch.autograd.grad(loss, leaves, allow_unused=True, materialize_grads=True))
    return tuple(o.detach() for o in outs), tuple(next(found) if a.requires_grad else None for a in args)


def check(op: str, x: dict[str, Tensor], *, dtype: torch.dtype, device: str, options: Sequence[str] = (),
          seed: int = 0, used: Sequence[int] | None = None, cap: int | None = 8
          ) -> tuple[tuple[Tensor, ...], tuple[Tensor | None, ...]]:
    """The Triton op against the float64 reference on the same (rounded) inputs: every output and gradient,
    one forward and one backward launch, at slot tiles of at most ``cap``. Returns the kernel's outputs and
    gradients."""
    names = ARGS[op]

    def prepare(dt: torch.dtype, dev: str) -> list[Tensor]:
        return [x[n].to(dev, dt).clone().requires_grad_(n not in CONSTANT) for n in names]

    kernel_args = prepare(dtype, device)
    oracle_args = [a.detach().to("cpu", torch.float64).clone().requires_grad_(a.requires_grad) for a in kernel_args]
    with torch.no_grad(), ops.use_backend("reference"):
        shapes = [o.shape for o in getattr(ops, op)(*oracle_args, *options)]
    differentiable = (0, 1) if op == "lru_content_weights" else (1, 2)  # the one-hot has no gradient
    used = differentiable if used is None else tuple(used)
    g = torch.Generator().manual_seed(10_000 + seed)
    upstream = [torch.randn(*s, generator=g, dtype=torch.float64) for s in shapes]

    with kernels.tiling(cap) if cap else contextlib.nullcontext(), count_launches() as launches:
        outs, grads = _run(op, "triton", kernel_args, options, [u.to(device) for u in upstream], used)
    assert [launch.name for launch in launches] == [f"_{op.split('_')[0]}_forward_kernel",
                                                    f"_{op.split('_')[0]}_backward_kernel"]
    if cap:
        assert max(launch.args["BLOCK_N"] for launch in launches) <= cap
    want_outs, want_grads = _run(op, "reference", oracle_args, options, upstream, used)
    tol = F64 if dtype == torch.float64 else F32
    shape_note = ", ".join(f"{n} {tuple(a.shape)}" for n, a in zip(names, kernel_args, strict=True))
    if dtype != torch.float64:
        ref_outs, ref_grads = _run(op, "reference", prepare(dtype, "cpu"), options, upstream, used)
        for name, got, want in zip(OUTPUTS[op], ref_outs, want_outs, strict=True):
            _compare(got, want, tol, f"CALIBRATION (float32 reference, not the kernel) {op} {name}", dtype)
        for name, got, want in zip(names, ref_grads, want_grads, strict=True):
            if want is not None:
                _compare(got, want, tol, f"CALIBRATION (float32 reference, not the kernel) {op} d/d{name}", dtype)
    for name, got, want in zip(OUTPUTS[op], outs, want_outs, strict=True):
        assert got.dtype == dtype and got.device.type == torch.device(device).type
        _compare(got, want, tol, f"{op} forward {name} ({shape_note}, {options})", dtype)
    for name, got, want in zip(names, grads, want_grads, strict=True):
        assert (got is None) == (name in CONSTANT), f"{op} d/d{name}: {got}"
        if want is not None:
            assert got is not None and got.dtype == dtype
            _compare(got, want, tol, f"{op} gradient d/d{name} ({shape_note}, {options})", dtype)
    return outs, grads


# (batch, heads, slots, width, slot tile cap): several tiles with a partial last one, one head over many
# tiles, one tile, a single slot
SIZES = [(2, 3, 37, 5, 8), (2, 1, 100, 7, 16), (2, 2, 37, 4, None), (2, 3, 1, 5, None)]


# -- lru_content_weights -----------------------------------------------------------------------------

@DTYPES
@pytest.mark.parametrize(("batch", "heads", "slots", "width", "cap"), SIZES)
def test_lru_matches_reference(device: str, dtype: torch.dtype, batch: int, heads: int, slots: int, width: int,
                               cap: int | None) -> None:
    seed = 100 + batch * 10 + heads + slots
    x = make_inputs(seed, batch=batch, heads=heads, slots=slots, width=width)
    check("lru_content_weights", x, dtype=dtype, device=device, seed=seed, cap=cap)


@DTYPES
def test_lru_with_dot_similarity(device: str, dtype: torch.dtype) -> None:
    x = make_inputs(21)
    x["memory"], x["keys"] = x["memory"] / 3, x["keys"] / 3  # dot products of a softmax-friendly size
    check("lru_content_weights", x, dtype=dtype, device=device, options=("dot",), seed=21)


@pytest.mark.parametrize("used", [(0,), (1,)], ids=["weights-only", "logits-only"])
def test_lru_with_the_loss_on_one_output(device: str, used: tuple[int, ...]) -> None:
    """A gradient that reaches only w (the average's update unused: the last step) or only z."""
    check("lru_content_weights", make_inputs(22), dtype=torch.float64, device=device, seed=22, used=used)


@DTYPES
def test_lru_with_sharp_strengths_and_the_maximum_in_a_later_tile(device: str, dtype: torch.dtype) -> None:
    """β ≈ 50: the online softmax must rescale its running sum when a later tile holds the maximum."""
    x = make_inputs(23, large=True)
    x["memory"][:, 30] = x["keys"][:, 0]  # slot 30 (the last tile of 8) is head 0's best match
    x["average"] = x["average"] / 10
    outs, _ = check("lru_content_weights", x, dtype=dtype, device=device, seed=23)
    assert (outs[0][:, 0].argmax(-1) == 30).all()


def test_lru_gradcheck_through_the_kernels(device: str) -> None:
    """torch.autograd.gradcheck of the Triton op itself, in float64: its backward against finite differences."""
    x = make_inputs(24, batch=1, heads=1, slots=4, width=2)
    args = tuple(x[n].to(device).requires_grad_() for n in ARGS["lru_content_weights"])
    with ops.use_backend("triton"), kernels.tiling(2):
        assert torch.autograd.gradcheck(lambda *a: ops.lru_content_weights(*a), args)


# -- sample_slots --------------------------------------------------------------------------------------

MODES = pytest.mark.parametrize("mode", ["sample", "argmax"])


@DTYPES
@MODES
@pytest.mark.parametrize(("batch", "heads", "slots", "width", "cap"), SIZES)
def test_sample_matches_reference(device: str, dtype: torch.dtype, mode: str, batch: int, heads: int, slots: int,
                                  width: int, cap: int | None) -> None:
    seed = 300 + batch * 10 + heads + slots
    x = make_inputs(seed, batch=batch, heads=heads, slots=slots, width=width)
    (one_hot, _, _), _ = check("sample_slots", x, dtype=dtype, device=device, options=(mode,), seed=seed, cap=cap)
    assert torch.equal(one_hot.sum(-1), torch.ones(batch, heads, dtype=dtype, device=device))


def _picks(weights: Tensor, noise: Tensor, mode: str = "sample", cap: int | None = 4) -> tuple[Tensor, ...]:
    """The slots the kernel and the reference pick, (B, H) each, and the kernel's saved choice."""
    with ops.use_backend("triton"), kernels.tiling(cap) if cap else contextlib.nullcontext():
        got = ops.sample_slots(weights, noise, mode)
        saved = kernel.sample_forward(weights, noise, mode == "argmax")[3]
    with ops.use_backend("reference"):
        want = ops.sample_slots(weights, noise, mode)
    for k, r in zip(got, want, strict=True):
        torch.testing.assert_close(k, r, equal_nan=True, atol=0, rtol=1e-6)
    return got[0].argmax(-1), want[0].argmax(-1), saved


def test_sample_picks_the_references_slots_at_every_noise_on_a_grid(device: str) -> None:
    """u = (k + 1/2) / K for K = 64 heads with the same weights over 11 slots (three of them zero, the last
    among them): the kernel picks the reference's slot every time, never a zero-weight one, each slot about
    w K times."""
    weights = torch.tensor([0.1, 0.0, 0.2, 0.05, 0.0, 0.25, 0.1, 0.15, 0.1, 0.05, 0.0], dtype=torch.float64)
    draws = 64
    noise = ((torch.arange(draws, dtype=torch.float64) + 0.5) / draws).view(1, draws).to(device)
    got, want, _ = _picks(weights.to(device).expand(1, draws, -1).contiguous(), noise)
    assert torch.equal(got, want)
    counts = torch.bincount(got.flatten().cpu(), minlength=11).double()
    assert (counts[weights == 0] == 0).all()
    assert ((counts - weights * draws).abs() <= 1).all(), counts


@DTYPES
def test_sample_at_the_ends_of_the_noise_range(device: str, dtype: torch.dtype) -> None:
    """u = 0 picks the first positive slot; u just below 1, or 1 itself (out of the contract: a cumulative sum
    that rounds below u Σ w), the last positive one, never a trailing zero-weight slot nor N."""
    weights = torch.tensor([[0.0, 0.3, 0.0, 0.3, 0.4, 0.0, 0.0]], dtype=dtype, device=device).expand(3, 1, 7)
    noise = torch.tensor([[0.0], [1.0 - torch.finfo(dtype).eps], [1.0]], dtype=dtype, device=device)
    got, want, _ = _picks(weights.contiguous(), noise)
    assert got.flatten().tolist() == want.flatten().tolist() == [1, 4, 4]


@MODES
@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")  # the interpreter's NumPy max of a NaN row
def test_sample_never_forms_an_index_outside_the_slots(device: str, mode: str) -> None:
    """NaN, infinite, all-zero and negative weights: the kernel's choice stays in [0, N) (−1 saved for a head
    whose weights are not all finite), the one-hot has exactly one 1 per head, and the outputs are the
    reference's: slot 0 and a NaN log π for a non-finite head, slot 0 and log tiny for an all-zero one."""
    weights = torch.softmax(torch.randn(6, 2, 13, generator=torch.Generator().manual_seed(25),
                                        dtype=torch.float64), -1).to(device)
    weights[0, 0, 5] = float("nan")
    weights[1, 1] = float("nan")
    weights[2, 0, 12] = float("inf")
    weights[3, 1] = 0.0
    weights[4, 0] = -weights[4, 0]
    weights[5, 1, :12] = 0.0  # only the last slot has weight
    noise = torch.full((6, 2), 0.999, dtype=torch.float64, device=device)
    got, want, saved = _picks(weights, noise, mode)
    assert torch.equal(got, want)
    assert ((saved >= -1) & (saved < 13)).all()
    assert saved[0, 0] == saved[1, 1] == saved[2, 0] == -1 and got[0, 0] == got[1, 1] == got[2, 0] == 0
    assert got[3, 1] == 0 and got[5, 1] == 12
    with ops.use_backend("triton"):
        one_hot, log_prob, _ = ops.sample_slots(weights, noise, mode)
    assert torch.equal(one_hot.sum(-1), torch.ones(6, 2, dtype=torch.float64, device=device))
    assert log_prob[:3].isnan().all() and log_prob[3:].isfinite().all()


@pytest.mark.parametrize("cap", [2, None])
def test_argmax_ties_go_to_the_lowest_slot(device: str, cap: int | None) -> None:
    """Equal largest weights in one tile and in tiles apart: the first, as torch.argmax; the noise is not read."""
    weights = torch.tensor([[[0.1, 0.3, 0.3, 0.1, 0.2], [0.1, 0.2, 0.1, 0.2, 0.2]],
                            [[0.2, 0.1, 0.2, 0.1, 0.4], [0.25, 0.25, 0.25, 0.25, 0.0]]],
                           dtype=torch.float64, device=device)
    for noise in (torch.zeros(2, 2, device=device), torch.full((2, 2), 0.9, device=device)):
        got, want, _ = _picks(weights, noise.double(), "argmax", cap=cap)
        assert torch.equal(got, weights.argmax(-1)) and torch.equal(want, weights.argmax(-1))
        assert got.tolist() == [[1, 1], [4, 0]]


@MODES
def test_sample_gradients_at_weights_below_tiny(device: str, mode: str) -> None:
    """Weights of 0 and on both sides of the dtype's smallest normal number (the clamp's kink, as autograd
    takes it), float64 against the float64 reference."""
    x = make_inputs(26, slots=19)
    tiny = torch.finfo(torch.float64).tiny
    x["weights"][:, :, 3] = 0.0
    x["weights"][:, 0, 7] = tiny / 4
    x["weights"][:, 1, 8] = tiny * 4
    check("sample_slots", x, dtype=torch.float64, device=device, options=(mode,), seed=26)


def test_sample_gradients_at_weights_below_tiny_in_float32(device: str) -> None:
    """The same in float32, against the float32 reference: the clamp is at float32's tiny (a float64 oracle
    clamps elsewhere, so the gradient at a zero weight, −log tiny, is 87 there and 708 here)."""
    x = make_inputs(29, slots=19)
    tiny = torch.finfo(torch.float32).tiny
    x["weights"][:, :, 3] = 0.0
    x["weights"][:, 0, 7] = tiny / 4
    x["weights"][:, 1, 8] = tiny * 4
    upstream = [torch.zeros(2, 3, 19), torch.randn(2), torch.randn(2)]
    results = []
    for backend in ("triton", "reference"):
        args = [x["weights"].float().to(device).requires_grad_(), x["noise"].float().to(device)]
        results.append(_run("sample_slots", backend, args, (), upstream, (1, 2)))
    (outs, grads), (want_outs, want_grads) = results
    for got, want in zip((*outs, grads[0]), (*want_outs, want_grads[0]), strict=True):
        _compare(got, want, F32, "sample_slots float32 kernel against the float32 reference", torch.float32)


def test_sample_gradcheck_through_the_kernels(device: str) -> None:
    """gradcheck of the Triton op's log π and entropy in the weights (the choice is constant nearby)."""
    x = make_inputs(27, batch=1, heads=2, slots=5)
    weights, noise = x["weights"].to(device).requires_grad_(), x["noise"].to(device)
    with ops.use_backend("triton"), kernels.tiling(4):
        assert torch.autograd.gradcheck(lambda w: ops.sample_slots(w, noise, "sample")[1:], (weights,))


def test_sample_one_hot_carries_no_gradient(device: str) -> None:
    x = make_inputs(28)
    weights = x["weights"].float().to(device).requires_grad_()
    with ops.use_backend("triton"):
        one_hot, log_prob, entropy = ops.sample_slots(weights, x["noise"].float().to(device))
    assert not one_hot.requires_grad and log_prob.requires_grad and entropy.requires_grad
    assert torch.equal(one_hot, F.one_hot(one_hot.argmax(-1), 37).float())


# -- both ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", sorted(ARGS))
def test_opcheck(op: str) -> None:
    x = make_inputs(5, slots=11)
    args = tuple(x[n].float().requires_grad_(n not in CONSTANT) for n in ARGS[op])
    torch.library.opcheck(getattr(torch.ops.cogdsl, op).default, (*args, *OPTIONS[op]),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


BAD: list[tuple[str, Callable[[dict[str, Tensor]], tuple[object, ...]], str]] = [
    ("lru_content_weights", lambda x: (x["memory"], x["keys"], x["strengths"], x["average"][:, :, :-1],
                                       x["gamma"]), "average"),
    ("lru_content_weights", lambda x: (x["memory"], x["keys"], x["strengths"], x["average"], x["gamma"][:, :1]),
     "gamma"),
    ("lru_content_weights", lambda x: (x["memory"], x["keys"][:, :, :-1], x["strengths"], x["average"],
                                       x["gamma"]), "keys"),
    ("lru_content_weights", lambda x: (x["memory"], x["keys"], x["strengths"], x["average"], x["gamma"],
                                       "euclid"), "similarity"),
    ("sample_slots", lambda x: (x["weights"], x["noise"][:, :1]), "noise"),
    ("sample_slots", lambda x: (x["weights"], x["noise"][:, :, None]), "noise"),
    ("sample_slots", lambda x: (x["weights"][0], x["noise"]), "weights"),
    ("sample_slots", lambda x: (x["weights"], x["noise"], "multinomial"), "mode"),
]


@pytest.mark.parametrize(("op", "make", "named"), BAD)
def test_bad_input_raises_the_references_error(device: str, op: str, make: Callable[..., tuple[object, ...]],
                                               named: str) -> None:
    x = {k: v.float().to(device) for k, v in make_inputs(6).items()}
    args = make(x)
    with ops.use_backend("reference"), pytest.raises(ValueError, match=named) as reference:
        getattr(ops, op)(*args)
    with ops.use_backend("triton"), count_launches() as launches, pytest.raises(
            ValueError, match=re.escape(str(reference.value))):
        getattr(ops, op)(*args)
    assert launches == []
