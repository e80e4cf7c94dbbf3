"""The Dynamic NTM's ops' references (cogdsl.ops.dntm) against the equations, and the block helpers on them.

The kernels are tested against these references in tests/kernels/test_dntm_kernels.py; here the
references are tested against what the D-NTM blocks computed before the ops existed (content logits and
``lru_weights``), the inverse-CDF sampling against the distribution it must draw from, and the cases
the sampling rule defines (zero, NaN and tied weights, the ends of the noise range).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from cogdsl import ops
from cogdsl.blocks.dntm import lru_address, lru_weights, sample_slots
from cogdsl.ops import dntm
from cogdsl.ops.ntm import content_logits


@pytest.fixture(autouse=True)
def _no_env_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COGDSL_BACKEND", raising=False)


def _lru_inputs(seed: int, batch: int = 2, heads: int = 3, slots: int = 7, width: int = 4,
                dtype: torch.dtype = torch.float64) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, slots, width, generator=g, dtype=dtype),
            torch.randn(batch, heads, width, generator=g, dtype=dtype),
            0.5 + 5 * torch.rand(batch, heads, generator=g, dtype=dtype),
            2 * torch.randn(batch, heads, slots, generator=g, dtype=dtype),
            torch.rand(batch, heads, generator=g, dtype=dtype)]


def _distribution(seed: int, batch: int = 2, heads: int = 3, slots: int = 7) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(batch, heads, slots, generator=g, dtype=torch.float64), -1)


# -- lru_content_weights ------------------------------------------------------------------------------

@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_lru_content_weights_is_lru_weights_on_the_content_logits(similarity: str) -> None:
    memory, keys, strengths, average, gamma = _lru_inputs(1)
    weights, logits = ops.lru_content_weights(memory, keys, strengths, average, gamma, similarity)
    want_logits = content_logits(memory, keys, strengths, similarity)
    want_weights, want_average = lru_weights(want_logits, average, gamma, decay=0.3)
    torch.testing.assert_close(logits, want_logits, rtol=0, atol=0)
    torch.testing.assert_close(weights, want_weights, rtol=1e-12, atol=1e-15)
    new_weights, new_average = lru_address(memory, keys, strengths, average, gamma, 0.3, similarity)
    torch.testing.assert_close(new_weights, want_weights, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(new_average, want_average, rtol=1e-12, atol=1e-15)


def test_lru_content_weights_without_gamma_is_content_addressing() -> None:
    memory, keys, strengths, average, gamma = _lru_inputs(2)
    weights, _ = ops.lru_content_weights(memory, keys, strengths, average, torch.zeros_like(gamma))
    torch.testing.assert_close(weights, ops.content_weights(memory, keys, strengths), rtol=1e-12, atol=1e-15)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3, dtype=torch.float64))


def test_lru_content_weights_gradcheck_in_every_input_and_both_outputs() -> None:
    args = tuple(t.requires_grad_() for t in _lru_inputs(3, batch=1, heads=2, slots=4, width=3))
    assert torch.autograd.gradcheck(lambda *a: dntm.lru_content_weights(*a), args)


# -- sample_slots ---------------------------------------------------------------------------------------

def test_sample_draws_each_slot_as_often_as_its_weight_on_a_grid_of_noise() -> None:
    """With u on a grid of K points, slot i takes the u in [c_{i−1}, c_i): w_i K of them, ±1."""
    weights = torch.tensor([0.05, 0.0, 0.3, 0.15, 0.0, 0.1, 0.4, 0.0], dtype=torch.float64)
    draws = 1000
    noise = ((torch.arange(draws, dtype=torch.float64) + 0.5) / draws).view(draws, 1)
    one_hot, _, _ = ops.sample_slots(weights.expand(draws, 1, 8), noise)
    counts = one_hot.sum((0, 1))
    assert ((counts - weights * draws).abs() <= 1).all(), counts
    assert (counts[weights == 0] == 0).all()


def test_sample_scales_the_noise_by_the_sum_of_the_weights() -> None:
    """Weights that do not sum to one: the draw is from w / Σ w (u Σ w against the running sum)."""
    weights = torch.tensor([[[2.0, 6.0, 0.0, 2.0]]], dtype=torch.float64)  # 0.2, 0.6, 0, 0.2
    chosen = [int(ops.sample_slots(weights, torch.tensor([[u]], dtype=torch.float64))[0].argmax())
              for u in (0.0, 0.19, 0.21, 0.79, 0.81, 0.999)]
    assert chosen == [0, 0, 1, 1, 3, 3]


def test_sample_at_the_ends_of_the_noise_range() -> None:
    """u = 0: the first positive slot; u ≥ the last cumulative sum (1, outside the contract, as a float32
    sum that rounds low would make it): the last positive slot, never a trailing zero or N."""
    weights = torch.tensor([[[0.0, 0.5, 0.0, 0.5, 0.0, 0.0]]]).expand(3, 1, 6)
    noise = torch.tensor([[0.0], [1.0], [1.5]])
    chosen, bad = dntm.choose_slots(weights, noise, "sample")
    assert chosen.flatten().tolist() == [1, 3, 3] and not bad.any()


def test_sample_log_prob_and_entropy_are_the_equations() -> None:
    weights, noise = _distribution(4), torch.rand(2, 3, generator=torch.Generator().manual_seed(4),
                                                  dtype=torch.float64)
    one_hot, log_prob, entropy = ops.sample_slots(weights, noise)
    assert torch.equal(one_hot.sum(-1), torch.ones(2, 3, dtype=torch.float64))
    torch.testing.assert_close(log_prob, (one_hot * weights.log()).sum((1, 2)))
    torch.testing.assert_close(entropy, -(weights * weights.log()).sum((1, 2)))
    cdf = weights.cumsum(-1)
    chosen = one_hot.argmax(-1, keepdim=True)
    below = torch.where(chosen > 0, cdf.gather(-1, (chosen - 1).clamp_min(0)), 0.0).squeeze(-1)
    threshold = noise * weights.sum(-1)  # u Σ w
    assert ((below <= threshold) & (threshold < cdf.gather(-1, chosen).squeeze(-1))).all()  # c_{i−1} ≤ u Σ w < c_i


def test_argmax_takes_the_lowest_of_tied_slots_and_ignores_the_noise() -> None:
    weights = torch.tensor([[[0.1, 0.35, 0.2, 0.35], [0.25, 0.25, 0.25, 0.25]]])
    for noise in (torch.zeros(1, 2), torch.full((1, 2), 0.99)):
        one_hot, log_prob, _ = ops.sample_slots(weights, noise, "argmax")
        assert one_hot.argmax(-1).tolist() == [[1, 0]]
        torch.testing.assert_close(log_prob, torch.tensor([0.35]).log() + torch.tensor([0.25]).log())


@pytest.mark.parametrize("mode", ["sample", "argmax"])
def test_weights_that_are_not_finite_pick_slot_zero_with_a_nan_log_prob(mode: str) -> None:
    weights = _distribution(5, batch=4)
    weights[0, 1, 3] = float("nan")
    weights[1, 0, 6] = float("inf")
    weights[2, 2] = 0.0  # no positive weight: slot 0, log tiny
    one_hot, log_prob, entropy = ops.sample_slots(weights, torch.full((4, 3), 0.7, dtype=torch.float64), mode)
    assert one_hot[0, 1].argmax() == one_hot[1, 0].argmax() == one_hot[2, 2].argmax() == 0
    assert torch.equal(one_hot.sum(-1), torch.ones(4, 3, dtype=torch.float64))
    assert log_prob[:2].isnan().all() and log_prob[2:].isfinite().all()
    assert entropy[0].isnan() and entropy[2:].isfinite().all()


def test_sample_gradient_reaches_the_weights_through_log_prob_and_entropy_only() -> None:
    weights = _distribution(6).requires_grad_()
    noise = torch.rand(2, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    one_hot, log_prob, entropy = ops.sample_slots(weights, noise)
    assert not one_hot.requires_grad and log_prob.requires_grad and entropy.requires_grad
    assert torch.autograd.gradcheck(lambda w: dntm.sample_slots(w, noise)[1:], (weights,))


# -- the block helper -------------------------------------------------------------------------------------

def test_block_sample_slots_draws_its_noise_from_the_global_seed() -> None:
    """Training: the noise is torch.rand(B, H) in the weights' dtype, so a seed repeats the draw; evaluation:
    the argmax, no random number drawn."""
    weights = _distribution(7).float().requires_grad_()
    torch.manual_seed(11)
    one_hot, log_prob, entropy = sample_slots(weights, training=True)
    torch.manual_seed(11)
    want = ops.sample_slots(weights, torch.rand(2, 3), "sample")
    for got, expected in zip((one_hot, log_prob, entropy), want, strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert not one_hot.requires_grad and log_prob.grad_fn is not None
    state = torch.get_rng_state()
    evaluated, _, _ = sample_slots(weights, training=False)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(evaluated, F.one_hot(weights.argmax(-1), 7).float())


# -- the contract ---------------------------------------------------------------------------------------

BAD = [
    ("lru_content_weights", lambda m, k, s, v, g: (m, k, s, v[:, :, :-1], g), "average"),
    ("lru_content_weights", lambda m, k, s, v, g: (m, k, s, v[:, :1], g), "average"),
    ("lru_content_weights", lambda m, k, s, v, g: (m, k, s, v, g[0]), "gamma"),
    ("lru_content_weights", lambda m, k, s, v, g: (m, k, s, v, g, "euclid"), "similarity"),
]


@pytest.mark.parametrize(("op", "make", "named"), BAD)
def test_bad_lru_input_names_the_argument(op: str, make: object, named: str) -> None:
    with pytest.raises(ValueError, match=f"lru_content_weights: .*{named}"):
        ops.lru_content_weights(*make(*_lru_inputs(8)))  # type: ignore[operator]


@pytest.mark.parametrize(("noise", "mode", "named"), [((2, 1), "sample", "noise"), ((2, 3, 1), "sample", "noise"),
                                                      ((2, 3), "gumbel", "mode")])
def test_bad_sample_input_names_the_argument(noise: tuple[int, ...], mode: str, named: str) -> None:
    with pytest.raises(ValueError, match=f"sample_slots: .*{named}"):
        ops.sample_slots(_distribution(9), torch.rand(*noise, dtype=torch.float64), mode)
