"""The fused memory-step kernel (addressing, reads, write) against the plain reference.

Every case compares the three outputs (weights, reads, new memory) and the gradient of every
input, with a random upstream gradient on all three outputs.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from cogdsl import kernels
from tests.kernels.helpers import check_op, make_inputs


def _tiles(cap: int | None) -> contextlib.AbstractContextManager[object]:
    return kernels.tiling(cap) if cap else contextlib.nullcontext()


# (batch, heads, write heads, slots, width, offsets, similarity, slot tile cap)
CASES = [
    (3, 3, 1, 37, 7, 3, "cosine", 16),  # two read heads, one write head, three tiles
    (2, 3, 2, 52, 20, 5, "cosine", 16),  # 1 < H_w < H, four tiles (the last of 4 slots), s = 2
    (2, 3, 3, 5, 1, 1, "dot", 4),  # every head writes (reads are (B, 0, W)), K = 1, width 1
    (2, 1, 1, 2, 7, 5, "cosine", 4),  # one head, which writes; K = 5 > N = 2 wraps
    (2, 3, 2, 1, 7, 3, "cosine", None),  # a single slot
    (2, 3, 1, 37, 20, 3, "dot", None),  # the kernel's own tile choice
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    ("batch", "heads", "write_heads", "slots", "width", "offsets", "similarity", "cap"), CASES
)
def test_matches_reference(
    device: str,
    dtype: torch.dtype,
    batch: int,
    heads: int,
    write_heads: int,
    slots: int,
    width: int,
    offsets: int,
    similarity: str,
    cap: int | None,
) -> None:
    seed = 4000 + batch * 1000 + heads * 100 + write_heads * 10 + slots + width * 3 + offsets
    x = make_inputs(seed, batch=batch, heads=heads, slots=slots, width=width, offsets=offsets,
                    write_heads=write_heads)
    with _tiles(cap):
        (weights, reads, memory), _ = check_op(
            "ntm_memory_step", x, dtype=dtype, device=device, similarity=similarity, seed=seed
        )
    assert weights.shape == (batch, heads, slots)
    assert reads.shape == (batch, heads - write_heads, width)
    assert memory.shape == (batch, slots, width)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_large_strengths_and_gamma(device: str, dtype: torch.dtype) -> None:
    x = make_inputs(41, batch=2, heads=3, slots=37, width=7, offsets=3, write_heads=1, large=True)
    with kernels.tiling(16):
        (weights, _, _), _ = check_op("ntm_memory_step", x, dtype=dtype, device=device, seed=41)
    assert weights.max() > 0.5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_all_zero_memory_is_finite_like_the_reference(device: str, dtype: torch.dtype) -> None:
    """The model's first step on a zero-initialised memory: finite outputs and gradients."""
    x = make_inputs(42, batch=2, heads=3, slots=5, width=7, offsets=3, write_heads=2)
    x["memory"] = torch.zeros_like(x["memory"])
    with kernels.tiling(4):
        outs, grads = check_op("ntm_memory_step", x, dtype=dtype, device=device, seed=42)
    for t in (*outs, *grads):
        assert t is not None and torch.isfinite(t).all()


def test_first_step_one_hot_previous_and_saturated_erase(device: str) -> None:
    """w_prev one-hot at slot 0, a nearly closed gate, γ ≈ 20 and erase exactly 1 in places."""
    x = make_inputs(43, batch=2, heads=3, slots=37, width=7, offsets=3, write_heads=2, large=True)
    x["previous"] = torch.zeros_like(x["previous"])
    x["previous"][:, :, 0] = 1.0
    x["gate"] = x["gate"] * 1e-3
    x["erase"][:, :, :3] = 1.0
    with kernels.tiling(16):
        check_op("ntm_memory_step", x, dtype=torch.float64, device=device, seed=43)


@pytest.mark.parametrize(("used", "write_heads"), [((2,), 1), ((1,), 1), ((0, 2), 3)],
                         ids=["memory-only", "reads-only", "weights-and-memory"])
def test_loss_on_some_outputs_only(device: str, used: tuple[int, ...], write_heads: int) -> None:
    """Outputs the loss ignores get no upstream gradient (autograd passes zeros or None)."""
    x = make_inputs(44, batch=2, heads=3, slots=37, width=7, offsets=3, write_heads=write_heads)
    with kernels.tiling(16):
        check_op("ntm_memory_step", x, dtype=torch.float32, device=device, used=used, seed=44)


def test_non_contiguous_inputs(device: str) -> None:
    """Transposed memory and previous weights; keys, shifts, erase, add and per-head scalars sliced."""
    b, h, hw, n, w, k = 3, 3, 2, 37, 7, 3
    x = make_inputs(45, batch=b, heads=h, slots=n, width=w, offsets=k, write_heads=hw)
    scalars = torch.stack([x["strengths"], x["gate"], x["gamma"]], -1)  # (B, H, 3)
    leaves = {
        "memory_t": x["memory"].transpose(1, 2).contiguous(),  # (B, W, N)
        "previous_t": x["previous"].transpose(1, 2).contiguous(),  # (B, N, H)
        "keys_wide": torch.cat([x["keys"], -x["keys"]], -1),  # (B, H, 2W)
        "scalars_t": scalars.transpose(0, 2).contiguous(),  # (3, H, B)
        "shift_wide": torch.cat([x["shift_weights"], x["shift_weights"]], 1),  # (B, 2H, K)
        "vectors": torch.cat([x["erase"], x["add"]], -1),  # (B, H_w, 2W)
    }

    def make_args(ls: list[torch.Tensor]) -> list[torch.Tensor]:
        scal = ls[3].transpose(0, 2)
        args = [ls[0].transpose(1, 2), ls[1].transpose(1, 2), ls[2][..., ::2], scal[..., 0], scal[..., 1],
                ls[4][:, 1::2], scal[..., 2], ls[5][..., :w], ls[5][..., w:]]
        assert not any(a.is_contiguous() for a in args)
        return args

    with kernels.tiling(16):
        check_op("ntm_memory_step", x, dtype=torch.float32, device=device, leaves=leaves, make_args=make_args,
                 seed=45)


def test_only_memory_and_keys_require_grad(device: str) -> None:
    x = make_inputs(46, batch=2, heads=3, slots=37, width=7, offsets=3, write_heads=2)
    with kernels.tiling(16):
        check_op("ntm_memory_step", x, dtype=torch.float32, device=device, grad=["memory", "keys"], seed=46)
