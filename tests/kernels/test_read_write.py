"""The read and write kernels against the plain reference: forward and every gradient."""

from __future__ import annotations

import contextlib

import pytest
import torch

from cogdsl import kernels, ops
from tests.kernels.helpers import check_op, make_inputs


def _tiles(cap: int | None) -> contextlib.AbstractContextManager[object]:
    return kernels.tiling(cap) if cap else contextlib.nullcontext()


# (batch, heads, slots, width, slot tile cap)
CASES = [
    (3, 3, 37, 7, 16),  # three tiles, the last one partial
    (3, 1, 100, 20, 16),  # seven tiles, one head
    (2, 3, 5, 1, 4),  # width 1, two tiles
    (2, 3, 1, 7, None),  # a single slot
    (2, 3, 37, 20, None),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("op", ["read", "write"])
@pytest.mark.parametrize(("batch", "heads", "slots", "width", "cap"), CASES)
def test_matches_reference(
    device: str, dtype: torch.dtype, op: str, batch: int, heads: int, slots: int, width: int, cap: int | None
) -> None:
    seed = 3000 + batch * 1000 + heads * 100 + slots + width
    x = make_inputs(seed, batch=batch, heads=heads, slots=slots, width=width)
    with _tiles(cap):
        check_op(op, x, dtype=dtype, device=device, seed=seed)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_write_with_a_factor_of_exactly_zero(device: str, dtype: torch.dtype) -> None:
    """A one-hot weight and an erase of exactly 1 make a factor 1 − w e = 0: the product's
    gradient must not divide by it (sigmoid saturates to 1.0 in float32, sharpening to one-hots).
    """
    x = make_inputs(31, batch=2, heads=3, slots=37, width=7)
    x["weights"][:, 1] = 0.0
    x["weights"][:, 1, 20] = 1.0
    x["erase"][:, 1, :4] = 1.0
    x["weights"][0, 2] = 0.0
    x["weights"][0, 2, 20] = 1.0  # two heads erase the same slot completely
    x["erase"][0, 2, 2:6] = 1.0
    with kernels.tiling(16):
        _, grads = check_op("write", x, dtype=dtype, device=device, seed=31)
    assert all(torch.isfinite(g).all() for g in grads if g is not None)


def test_read_with_no_heads(device: str) -> None:
    """Zero heads (a memory step whose heads all write reads nothing): an empty (B, 0, W) result."""
    x = make_inputs(32, batch=2, heads=3, slots=37, width=7)
    memory = x["memory"].float().to(device)
    with ops.use_backend("triton"):
        reads = ops.read(memory, x["weights"][:, :0].float().to(device))
    assert reads.shape == (2, 0, 7)


def test_non_contiguous_inputs(device: str) -> None:
    """A transposed memory, transposed weights, erase and add sliced out of one wider tensor."""
    b, h, n, w = 3, 3, 37, 7
    x = make_inputs(33, batch=b, heads=h, slots=n, width=w)
    leaves = {
        "memory_t": x["memory"].transpose(1, 2).contiguous(),  # (B, W, N)
        "weights_t": x["weights"].transpose(1, 2).contiguous(),  # (B, N, H)
        "vectors": torch.cat([x["erase"], x["add"]], -1),  # (B, H, 2W)
    }

    def read_args(ls: list[torch.Tensor]) -> list[torch.Tensor]:
        return [ls[0].transpose(1, 2), ls[1].transpose(1, 2)]

    def write_args(ls: list[torch.Tensor]) -> list[torch.Tensor]:
        args = [ls[0].transpose(1, 2), ls[1].transpose(1, 2), ls[2][..., :w], ls[2][..., w:]]
        assert not any(a.is_contiguous() for a in args)
        return args

    with kernels.tiling(16):
        check_op("read", x, dtype=torch.float32, device=device, leaves=dict(list(leaves.items())[:2]),
                 make_args=read_args, seed=33)
        check_op("write", x, dtype=torch.float32, device=device, leaves=leaves, make_args=write_args, seed=33)


def test_write_when_only_the_memory_requires_grad(device: str) -> None:
    """Head outputs detached (a frozen controller): the memory's gradient still matches."""
    x = make_inputs(34, batch=2, heads=3, slots=37, width=7)
    with kernels.tiling(16):
        check_op("write", x, dtype=torch.float32, device=device, grad=["memory"], seed=34)
        check_op("read", x, dtype=torch.float32, device=device, grad=["weights"], seed=34)
