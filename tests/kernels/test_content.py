"""The content-weights kernel against the plain autograd reference: forward and every gradient."""

from __future__ import annotations

import contextlib

import pytest
import torch

from cogdsl import kernels, ops
from cogdsl.ops import ntm
from tests.kernels.helpers import check_op, make_inputs


def _tiles(cap: int | None) -> contextlib.AbstractContextManager[object]:
    return kernels.tiling(cap) if cap else contextlib.nullcontext()


# (batch, heads, slots, width, similarity, slot tile cap)
CASES = [
    (3, 3, 37, 7, "cosine", 16),  # three tiles, the last one partial
    (3, 1, 100, 20, "cosine", 16),  # seven tiles, one head
    (2, 3, 5, 1, "dot", 4),  # width 1, two tiles
    (3, 3, 1, 7, "cosine", None),  # a single slot: every weight is 1
    (2, 3, 37, 20, "dot", None),  # the kernel's own tile choice
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("batch", "heads", "slots", "width", "similarity", "cap"), CASES)
def test_matches_reference(
    device: str, dtype: torch.dtype, batch: int, heads: int, slots: int, width: int, similarity: str, cap: int | None
) -> None:
    seed = batch * 1000 + heads * 100 + slots + width
    x = make_inputs(seed, batch=batch, heads=heads, slots=slots, width=width)
    with _tiles(cap):
        check_op("content_weights", x, dtype=dtype, device=device, similarity=similarity, seed=seed)


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_large_strengths(device: str, similarity: str) -> None:
    """β ≈ 50: a near one-hot softmax, exp must not overflow (the online maximum)."""
    x = make_inputs(7, batch=2, heads=3, slots=37, width=7, large=True)
    if similarity == "dot":
        x["memory"] = x["memory"] * 3  # logits of several hundred: exp overflows without the maximum
    with kernels.tiling(16):
        out, _ = check_op("content_weights", x, dtype=torch.float32, device=device, similarity=similarity, seed=7)
    assert out[0].max() > 0.5  # the case is really sharp


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_all_zero_memory_is_finite_like_the_reference(device: str, dtype: torch.dtype) -> None:
    """Cosine at an all-zero memory: uniform weights and finite (large) gradients, as in the reference."""
    x = make_inputs(11, batch=2, heads=3, slots=5, width=7)
    x["memory"] = torch.zeros_like(x["memory"])
    with kernels.tiling(4):
        (weights,), grads = check_op("content_weights", x, dtype=dtype, device=device, seed=11)
    torch.testing.assert_close(weights.cpu(), torch.full((2, 3, 5), 0.2, dtype=dtype))
    for grad in grads:
        assert grad is not None and torch.isfinite(grad).all()


def test_zero_rows_and_a_zero_key(device: str) -> None:
    """Some zero slots among ordinary ones, and one all-zero key."""
    x = make_inputs(12, batch=2, heads=3, slots=37, width=7)
    x["memory"][:, ::5] = 0.0
    x["keys"][1, 2] = 0.0
    with kernels.tiling(16):
        check_op("content_weights", x, dtype=torch.float64, device=device, seed=12)


def test_non_contiguous_inputs(device: str) -> None:
    """A transposed memory, keys sliced from a wider tensor and strided strengths give the same results."""
    b, h, n, w = 3, 3, 37, 7
    x = make_inputs(13, batch=b, heads=h, slots=n, width=w)
    leaves = {
        "memory_t": x["memory"].transpose(1, 2).contiguous(),  # (B, W, N)
        "keys_wide": torch.cat([x["keys"], x["keys"].flip(-1) * 0.5], -1),  # (B, H, 2W)
        "strengths_cols": torch.stack([x["strengths"], x["strengths"] + 1], -1),  # (B, H, 2)
    }

    def make_args(ls: list[torch.Tensor]) -> list[torch.Tensor]:
        args = [ls[0].transpose(1, 2), ls[1][..., 1::2], ls[2][..., 1]]
        assert not any(a.is_contiguous() for a in args)
        return args

    with kernels.tiling(16):
        check_op("content_weights", x, dtype=torch.float32, device=device, leaves=leaves, make_args=make_args, seed=13)


def test_broadcast_strength(device: str) -> None:
    """A strength expanded from one value (stride 0) gets the summed gradient."""
    x = make_inputs(14, batch=2, heads=3, slots=5, width=7)
    leaves = {"memory": x["memory"], "keys": x["keys"], "strength": torch.tensor([2.5], dtype=torch.float64)}

    def make_args(ls: list[torch.Tensor]) -> list[torch.Tensor]:
        return [ls[0], ls[1], ls[2].expand(2, 3)]

    check_op("content_weights", x, dtype=torch.float64, device=device, leaves=leaves, make_args=make_args, seed=14)


def test_only_some_inputs_require_grad(device: str) -> None:
    """Only the keys require a gradient (a fixed memory): that gradient still matches."""
    x = make_inputs(15, batch=2, heads=3, slots=37, width=7)
    with kernels.tiling(16):
        _, grads = check_op("content_weights", x, dtype=torch.float32, device=device, grad=["keys"], seed=15)
    assert grads[0] is None and grads[1] is not None and grads[2] is None


def test_no_grad_forward(device: str) -> None:
    x = make_inputs(16, batch=2, heads=3, slots=37, width=7)
    args = [x[n].float().to(device) for n in ("memory", "keys", "strengths")]
    with torch.no_grad(), ops.use_backend("triton"), kernels.tiling(16):
        got = ops.content_weights(*args)
    torch.testing.assert_close(got.cpu(), ntm.content_weights(*(a.cpu() for a in args)), atol=2e-6, rtol=1e-5)
    assert got.grad_fn is None
