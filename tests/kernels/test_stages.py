"""The gate, shift and sharpen kernels (cogdsl.kernels.stages) against the plain autograd reference.

Each op runs through ``cogdsl.ops`` with the ``"triton"`` backend forced and is compared, forward and
the gradient of every input, with :mod:`cogdsl.ops.ntm` in float64 on the same inputs, through
:func:`tests.kernels.helpers.check_op` (its tolerances and float32 calibration). Slot tiles are capped
so that a row spans several tiles, the last one partial.
"""

from __future__ import annotations

import contextlib
import re

import pytest
import torch
from torch import Tensor

from cogdsl import kernels, ops
from tests.kernels import helpers
from tests.kernels.helpers import check_op, count_launches

#: Each op's positional tensor arguments, in order (the dispatch and custom-op tests read these).
ARGS: dict[str, tuple[str, ...]] = {
    "interpolate": ("content", "previous", "gate"),
    "shift": ("weights", "shift_weights"),
    "sharpen": ("weights", "gamma"),
}
DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])


def make_inputs(seed: int, *, batch: int = 2, heads: int = 3, slots: int = 37, offsets: int = 3,
                large: bool = False) -> dict[str, Tensor]:
    """Float64 inputs of the three ops, none zero: helpers.make_inputs' plus ``content`` (w_c)."""
    x = helpers.make_inputs(seed, batch=batch, heads=heads, slots=slots, width=2, offsets=offsets, large=large)
    g = torch.Generator().manual_seed(seed + 1)
    x["content"] = torch.softmax(torch.randn(batch, heads, slots, generator=g, dtype=torch.float64), -1)
    return x


def _check(op: str, x: dict[str, Tensor], dtype: torch.dtype, device: str, seed: int,
           cap: int | None = 8) -> tuple[tuple[Tensor, ...], tuple[Tensor | None, ...]]:
    with kernels.tiling(cap) if cap else contextlib.nullcontext(), count_launches() as launches:
        result = check_op(op, x, dtype=dtype, device=device, seed=seed, arg_names=ARGS[op])
    if cap:
        tiles = [launch.args["BLOCK_N"] for launch in launches if "BLOCK_N" in launch.args]
        assert tiles and max(tiles) <= cap
    return result


# (batch, heads, slots, slot tile cap): several tiles with a partial last one, one tile, a single slot
SIZES = [(2, 3, 37, 8), (3, 1, 100, 16), (2, 2, 37, None), (2, 3, 1, None)]


@DTYPES
@pytest.mark.parametrize(("batch", "heads", "slots", "cap"), SIZES)
def test_interpolate_matches_reference(device: str, dtype: torch.dtype, batch: int, heads: int, slots: int,
                                       cap: int | None) -> None:
    seed = 100 + batch * 10 + heads + slots
    _check("interpolate", make_inputs(seed, batch=batch, heads=heads, slots=slots), dtype, device, seed, cap)


@DTYPES
@pytest.mark.parametrize("offsets", [1, 3, 5])
@pytest.mark.parametrize(("batch", "heads", "slots", "cap"), SIZES)
def test_shift_matches_reference(device: str, dtype: torch.dtype, offsets: int, batch: int, heads: int,
                                 slots: int, cap: int | None) -> None:
    seed = 200 + offsets + batch * 10 + heads + slots
    x = make_inputs(seed, batch=batch, heads=heads, slots=slots, offsets=offsets)
    _check("shift", x, dtype, device, seed, cap)


@DTYPES
def test_shift_with_more_offsets_than_slots(device: str, dtype: torch.dtype) -> None:
    """2s+1 > N: the offsets wrap around the memory more than once."""
    _check("shift", make_inputs(7, slots=3, offsets=9), dtype, device, 7, cap=2)


@DTYPES
@pytest.mark.parametrize(("batch", "heads", "slots", "cap"), SIZES)
def test_sharpen_matches_reference(device: str, dtype: torch.dtype, batch: int, heads: int, slots: int,
                                   cap: int | None) -> None:
    seed = 300 + batch * 10 + heads + slots
    _check("sharpen", make_inputs(seed, batch=batch, heads=heads, slots=slots), dtype, device, seed, cap)


@DTYPES
def test_sharpen_with_a_large_gamma(device: str, dtype: torch.dtype) -> None:
    """γ ≈ 20 on weights whose maximum lies in a later tile: the online rescaling of the power sum."""
    x = make_inputs(41, large=True)
    x["weights"][:, :, 30] += 0.5  # the maximum in the last tile of 8
    x["weights"] = x["weights"] / x["weights"].sum(-1, keepdim=True)
    out, _ = _check("sharpen", x, dtype, device, 41)
    assert (out[0].argmax(-1) == 30).all()


@DTYPES
@pytest.mark.parametrize("scale", [1e-12, 1e-20])
def test_sharpen_with_tiny_weights(device: str, dtype: torch.dtype, scale: float) -> None:
    """Weights near or below SHARPEN_EPS: the ε offset must be the reference's."""
    x = make_inputs(42)
    x["weights"] = x["weights"] * scale
    _check("sharpen", x, dtype, device, 42)


@pytest.mark.parametrize("op", sorted(ARGS))
def test_opcheck(op: str) -> None:
    x = make_inputs(5, slots=11)
    args = tuple(x[name].float().requires_grad_() for name in ARGS[op])
    torch.library.opcheck(getattr(torch.ops.cogdsl, op).default, args)


BAD = [
    ("interpolate", lambda x: (x["content"], x["previous"][:, :, :-1], x["gate"])),
    ("interpolate", lambda x: (x["content"], x["previous"], x["gate"][:, :1])),
    ("shift", lambda x: (x["weights"], x["shift_weights"][:1])),
    ("shift", lambda x: (x["weights"], x["shift_weights"][..., :2])),  # an even offset count
    ("sharpen", lambda x: (x["weights"], x["gamma"][:, :, None])),
]


@pytest.mark.parametrize(("op", "make"), BAD)
def test_bad_input_raises_the_references_error(device: str, op: str, make: object) -> None:
    x = {k: v.float().to(device) for k, v in make_inputs(6).items()}
    args = make(x)  # type: ignore[operator]
    with ops.use_backend("reference"), pytest.raises(ValueError) as reference:
        getattr(ops, op)(*args)
    with ops.use_backend("triton"), count_launches() as launches, pytest.raises(
            ValueError, match=re.escape(str(reference.value))):
        getattr(ops, op)(*args)
    assert launches == []
