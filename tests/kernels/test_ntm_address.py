"""The fused NTM addressing kernel (content, gate, shift, sharpen) against the plain reference."""

from __future__ import annotations

import contextlib

import pytest
import torch

from cogdsl import kernels
from tests.kernels.helpers import check_op, make_inputs


def _tiles(cap: int | None) -> contextlib.AbstractContextManager[object]:
    return kernels.tiling(cap) if cap else contextlib.nullcontext()


# (batch, heads, slots, width, offsets, similarity, slot tile cap)
CASES = [
    (3, 3, 37, 7, 3, "cosine", 16),  # three tiles; shifts cross the tile edges
    (3, 1, 52, 20, 5, "cosine", 16),  # four tiles, the last of 4 slots; one head, s = 2
    (2, 3, 2, 7, 5, "cosine", 4),  # K = 5 > N = 2: the offsets wrap around the memory twice
    (2, 3, 5, 1, 1, "dot", 4),  # K = 1 (no shift), width 1, two tiles
    (2, 3, 1, 7, 3, "cosine", None),  # a single slot: every offset lands on it
    (2, 3, 37, 7, 3, "dot", None),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("batch", "heads", "slots", "width", "offsets", "similarity", "cap"), CASES)
def test_matches_reference(
    device: str,
    dtype: torch.dtype,
    batch: int,
    heads: int,
    slots: int,
    width: int,
    offsets: int,
    similarity: str,
    cap: int | None,
) -> None:
    seed = 2000 + batch * 1000 + heads * 100 + slots + width * 3 + offsets
    x = make_inputs(seed, batch=batch, heads=heads, slots=slots, width=width, offsets=offsets)
    with _tiles(cap):
        check_op("ntm_address", x, dtype=dtype, device=device, similarity=similarity, seed=seed)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_large_strengths_and_gamma(device: str, dtype: torch.dtype) -> None:
    """β ≈ 50, γ ≈ 20: a sharp softmax and a steep power; the sum x^γ must not underflow."""
    x = make_inputs(21, batch=2, heads=3, slots=37, width=7, offsets=3, large=True)
    with kernels.tiling(16):
        (weights,), _ = check_op("ntm_address", x, dtype=dtype, device=device, seed=21)
    assert weights.max() > 0.5


def test_one_hot_previous_and_closed_gate(device: str) -> None:
    """The model's first step: w_prev one-hot at slot 0 and a nearly closed gate, so most of w̃ is tiny."""
    x = make_inputs(22, batch=2, heads=3, slots=37, width=7, offsets=3)
    x["previous"] = torch.zeros_like(x["previous"])
    x["previous"][:, :, 0] = 1.0
    x["gate"] = x["gate"] * 1e-3
    with kernels.tiling(16):
        check_op("ntm_address", x, dtype=torch.float64, device=device, seed=22)
        check_op("ntm_address", x, dtype=torch.float32, device=device, seed=22)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_all_zero_memory_is_finite_like_the_reference(device: str, dtype: torch.dtype) -> None:
    x = make_inputs(23, batch=2, heads=3, slots=5, width=7, offsets=3)
    x["memory"] = torch.zeros_like(x["memory"])
    with kernels.tiling(4):
        (weights,), grads = check_op("ntm_address", x, dtype=dtype, device=device, seed=23)
    assert torch.isfinite(weights).all()
    for grad in grads:
        assert grad is not None and torch.isfinite(grad).all()


def test_non_contiguous_inputs(device: str) -> None:
    """Transposed memory and previous weights, keys and shifts sliced, per-head scalars strided."""
    b, h, n, w, k = 3, 3, 37, 7, 3
    x = make_inputs(24, batch=b, heads=h, slots=n, width=w, offsets=k)
    scalars = torch.stack([x["strengths"], x["gate"], x["gamma"]], -1)  # (B, H, 3)
    leaves = {
        "memory_t": x["memory"].transpose(1, 2).contiguous(),  # (B, W, N)
        "previous_t": x["previous"].transpose(1, 2).contiguous(),  # (B, N, H)
        "keys_wide": torch.cat([x["keys"], -x["keys"]], -1),  # (B, H, 2W)
        "scalars_t": scalars.transpose(0, 2).contiguous(),  # (3, H, B)
        "shift_wide": torch.cat([x["shift_weights"], x["shift_weights"]], 1),  # (B, 2H, K)
    }

    def make_args(ls: list[torch.Tensor]) -> list[torch.Tensor]:
        scal = ls[3].transpose(0, 2)  # (B, H, 3), non-contiguous
        args = [ls[0].transpose(1, 2), ls[1].transpose(1, 2), ls[2][..., ::2], scal[..., 0], scal[..., 1],
                ls[4][:, 1::2], scal[..., 2]]
        assert not any(a.is_contiguous() for a in args)
        return args

    with kernels.tiling(16):
        check_op("ntm_address", x, dtype=torch.float32, device=device, leaves=leaves, make_args=make_args, seed=24)


def test_only_memory_and_keys_require_grad(device: str) -> None:
    x = make_inputs(25, batch=2, heads=3, slots=37, width=7, offsets=3)
    with kernels.tiling(16):
        check_op("ntm_address", x, dtype=torch.float32, device=device, grad=["memory", "keys"], seed=25)
