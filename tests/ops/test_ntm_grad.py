"""The torch backend's hand-derived backward passes against the plain autograd equations."""

from __future__ import annotations

import pytest
import torch

from cogdsl import ops
from cogdsl.ops import ntm as plain
from cogdsl.ops import ntm_grad as fast


def _inputs(dtype: torch.dtype, heads: int, slots: int = 7, width: int = 5, offsets: int = 3, batch: int = 3):
    g = torch.Generator().manual_seed(1000 + heads * 10 + offsets)
    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g, dtype=dtype)
    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=dtype)
    return {
        "memory": randn(batch, slots, width),
        "keys": randn(batch, heads, width),
        "strengths": rand(batch, heads) * 5 + 0.1,
        "weights": torch.softmax(randn(batch, heads, slots), -1),
        "previous": torch.softmax(randn(batch, heads, slots), -1),
        "gate": rand(batch, heads),
        "shift_weights": torch.softmax(randn(batch, heads, offsets), -1),
        "gamma": 1 + rand(batch, heads) * 3,
        "erase": rand(batch, heads, width),
        "add": randn(batch, heads, width),
    }


CASES = {
    "content_cosine": (lambda x: (x["memory"], x["keys"], x["strengths"]),
                       lambda m, k, s: fast.content_weights(m, k, s, "cosine"),
                       lambda m, k, s: plain.content_weights(m, k, s, "cosine")),
    "content_dot": (lambda x: (x["memory"], x["keys"], x["strengths"]),
                    lambda m, k, s: fast.content_weights(m, k, s, "dot"),
                    lambda m, k, s: plain.content_weights(m, k, s, "dot")),
    "shift": (lambda x: (x["weights"], x["shift_weights"]), fast.shift, plain.shift),
    "sharpen": (lambda x: (x["weights"], x["gamma"]), fast.sharpen, plain.sharpen),
    "write": (lambda x: (x["memory"], x["weights"], x["erase"], x["add"]), fast.write, plain.write),
    "ntm_address": (lambda x: (x["memory"], x["previous"], x["keys"], x["strengths"], x["gate"],
                               x["shift_weights"], x["gamma"]), fast.ntm_address, plain.ntm_address),
}


@pytest.mark.parametrize("heads", [1, 3])
@pytest.mark.parametrize("offsets", [3, 9])  # 9 > 7 slots: the shift wraps around more than once
@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_and_gradients_match_plain_equations(case: str, heads: int, offsets: int) -> None:
    pick, fast_fn, plain_fn = CASES[case]
    args = [a.requires_grad_() for a in pick(_inputs(torch.float32, heads, offsets=offsets))]
    out_fast = fast_fn(*args)
    upstream = torch.randn_like(out_fast)
    grads_fast = torch.autograd.grad(out_fast, args, upstream)
    out_plain = plain_fn(*args)
    grads_plain = torch.autograd.grad(out_plain, args, upstream)
    torch.testing.assert_close(out_fast, out_plain, rtol=1e-5, atol=1e-6)
    for name, a, b in zip(range(len(args)), grads_fast, grads_plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=f"{case}: gradient of argument {name}")


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("case", sorted(CASES))
def test_gradcheck_float64(case: str, heads: int) -> None:
    pick, fast_fn, _ = CASES[case]
    args = tuple(a.requires_grad_() for a in pick(_inputs(torch.float64, heads, slots=5, width=4, batch=2)))
    assert torch.autograd.gradcheck(fast_fn, args)


def test_torch_backend_runs_the_hand_derived_ops() -> None:
    x = _inputs(torch.float32, 2)
    x["memory"].requires_grad_()
    with ops.use_backend("torch"):
        out = ops.write(x["memory"], x["weights"], x["erase"], x["add"])
    assert type(out.grad_fn).__name__ == "WriteBackward"


def test_all_zero_memory_gives_finite_weights_and_gradients() -> None:
    x = _inputs(torch.float32, 2)
    memory = torch.zeros_like(x["memory"], requires_grad=True)
    keys = x["keys"].requires_grad_()
    weights = fast.content_weights(memory, keys, x["strengths"])
    weights.sum().backward()
    assert torch.isfinite(weights).all() and torch.isfinite(memory.grad).all() and torch.isfinite(keys.grad).all()


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_reference_cycle_keeps_outputs_alive(case: str) -> None:
    """An op's output must be freed by reference counting alone once the caller drops it.

    Saving tensors as ctx attributes instead of through save_for_backward makes a cycle
    (output -> grad_fn -> ctx -> output) that leaks memory in a training loop until the cyclic
    collector happens to run.
    """
    import gc
    import weakref

    pick, fast_fn, _ = CASES[case]
    args = [a.requires_grad_() for a in pick(_inputs(torch.float32, 2))]
    gc.disable()
    try:
        out = fast_fn(*args)
        alive = weakref.ref(out)
        out.sum().backward()
        del out
        assert alive() is None
        out = fast_fn(*args)  # dropped without a backward pass
        alive = weakref.ref(out)
        del out
        assert alive() is None
    finally:
        gc.enable()
