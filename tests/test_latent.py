"""The Gaussian ``latent`` block (cogdsl/blocks/latent.py): its KL divergence against the closed form
by loops, the reparameterised sample, the penalties a compiled model collects, training that adds
them to the loss, sampling from the prior, and ``cogdsl trace`` drawing generated digits."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.blocks.latent import GaussianLatent, from_prior, gaussian_kl
from cogdsl.tasks import make_task
from cogdsl.training.loop import config_from_spec, train
from cogdsl.viz.trace_visual import record_generated
from tests.tiny import compile_text, train_then_trace, write_spec

ROOT = Path(__file__).resolve().parent.parent
TRAIN = """
train {
  task reconstruct_digits(size=16, height=8, clutter=0, glimpses=2)
  optimizer adam(lr=0.05)
  batch 8; steps 30; eval_every 30; log_every 30; checkpoint_every 30
}
"""
# The latent's value is read by nothing: the only gradient its posterior gets is its KL term's.
UNREAD_LATENT = """
model unread
input  img: image(size=16)
output x: 256 = sigmoid(dec)
lstm   enc(hidden=8) <- img
latent z(size=3) <- enc
lstm   dec(hidden=8) <- enc
""" + TRAIN
DRAW_VAE = """
model draw_vae_test
input  img: image(size=16)
output x: 256 = sigmoid(w)
draw_read  r(n=3) on img <- dec@prev
lstm       enc(hidden=12) <- r, dec@prev
latent     z(size=4) <- enc
lstm       dec(hidden=12) <- z
draw_write w(n=3, size=16) <- dec
"""


def test_kl_matches_the_closed_form_by_loops() -> None:
    generator = torch.Generator().manual_seed(0)
    mean = torch.randn(4, 5, generator=generator, dtype=torch.float64)
    log_variance = torch.randn(4, 5, generator=generator, dtype=torch.float64)
    kl = gaussian_kl(mean, log_variance)
    for b in range(4):
        expected = sum(0.5 * (m * m + math.exp(v) - v - 1) for m, v in zip(mean[b].tolist(), log_variance[b].tolist(),
                                                                              strict=True))
        assert float(kl[b]) == pytest.approx(expected, rel=1e-12)
    assert torch.equal(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))
    assert (kl > 0).all()


def test_training_samples_the_posterior_and_evaluation_takes_its_mean() -> None:
    torch.manual_seed(3)
    module = GaussianLatent(query_size=4, size=2).double()
    query = torch.randn(1, 4, dtype=torch.float64).expand(20000, -1)
    mean, log_variance = module.posterior(query[:1]).detach().chunk(2, -1)
    samples, where = module(query, None)
    torch.testing.assert_close(samples.mean(0), mean[0], atol=0.03, rtol=0)
    torch.testing.assert_close(samples.std(0), torch.exp(0.5 * log_variance[0]), atol=0.03, rtol=0)
    torch.testing.assert_close(where[0], torch.cat([mean[0], torch.exp(0.5 * log_variance[0])]))
    torch.testing.assert_close(module.penalty, gaussian_kl(mean, log_variance).expand(20000))
    module.eval()
    value, _ = module(query[:3], None)
    torch.testing.assert_close(value, mean.expand(3, -1))


def test_gradients_flow_through_the_sample() -> None:
    """z = mu + sigma * eps with eps fixed by the seed: gradcheck of z and the KL in the query."""
    torch.manual_seed(4)
    module = GaussianLatent(query_size=3, size=2).double()
    query = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)

    def run(query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(7)
        sample, _ = module(query, None)
        assert module.penalty is not None
        return sample, module.penalty

    assert torch.autograd.gradcheck(run, (query,))


def test_from_prior_ignores_the_sources_and_is_restored() -> None:
    torch.manual_seed(5)
    module = GaussianLatent(query_size=3, size=2)
    model = torch.nn.Sequential(module)
    with from_prior(model):
        torch.manual_seed(0)
        first, _ = module(torch.randn(4000, 3) * 100, None)
        assert module.penalty is None
    assert not module.from_prior
    torch.testing.assert_close(first.mean(0), torch.zeros(2), atol=0.06, rtol=0)
    torch.testing.assert_close(first.std(0), torch.ones(2), atol=0.06, rtol=0)
    module(torch.randn(2, 3), None)
    assert module.penalty is not None


def test_compiled_model_collects_one_kl_per_step(tmp_path: Path) -> None:
    """``penalties`` holds each step's KL (B,), equal to the closed form at the traced (mu, sigma)."""
    model = compile_text(tmp_path, DRAW_VAE)
    images = torch.rand(3, 16, 16, dtype=torch.float64)
    penalties: list[torch.Tensor] = []
    model.train()
    _, trace = model({"img": images}, steps=4, raw=True, return_weights=True, penalties=penalties)
    assert model.penalized == {"z"}
    assert len(penalties) == 4 and all(p.shape == (3,) for p in penalties)
    where = trace["z"]  # (B, T, 2 size): mu then sigma
    mean, std = where[..., :4], where[..., 4:]
    for t in range(4):
        torch.testing.assert_close(penalties[t], gaussian_kl(mean[:, t], 2 * std[:, t].log()))


def test_training_adds_the_kl_to_the_loss(tmp_path: Path) -> None:
    """A latent nobody reads gets gradient only from its KL term: training moves its posterior toward
    the prior, so the KL falls; without the term its parameters would not move at all."""
    spec = cogdsl.load(write_spec(tmp_path, UNREAD_LATENT))
    torch.manual_seed(0)
    before = cogdsl.compile(spec)
    result = train(spec, config_from_spec(spec), tmp_path / "run", progress=False)
    task = make_task("reconstruct_digits", size=16, height=8, clutter=0, glimpses=2)
    batch = task.sample(16, torch.Generator().manual_seed(1))
    assert isinstance(batch.inputs, dict)

    def kl(model: cogdsl.CompiledModel) -> float:
        penalties: list[torch.Tensor] = []
        with torch.no_grad():
            model.eval()
            model({"img": batch.inputs["image"]}, steps=batch.steps, penalties=penalties)
        return float(torch.stack(penalties).sum(0).mean())

    trained = result.model
    assert not torch.equal(trained.attentions["z"].posterior.weight, before.attentions["z"].posterior.weight)
    assert kl(trained) < 0.5 * kl(before)


def test_the_draw_vae_spec_trains_and_trace_draws_what_it_generates(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path, DRAW_VAE + TRAIN)
    trace = train_then_trace(tmp_path, spec_path, steps=2)
    for name in ("glimpses.png", "generated.png"):
        assert (trace / name).stat().st_size > 1000


def test_generated_images_come_from_the_prior_not_the_input(tmp_path: Path) -> None:
    """Two generations with one seed agree; another seed differs; the images are the last canvases."""
    model = compile_text(tmp_path, DRAW_VAE, double=False)
    task = make_task("reconstruct_digits", size=16, height=8, clutter=0, glimpses=3)
    state = torch.random.get_rng_state()
    first, again = record_generated(model, task, images=4, seed=0), record_generated(model, task, images=4, seed=0)
    other = record_generated(model, task, images=4, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first.images, again.images) and not torch.equal(first.images, other.images)
    assert first.canvases["w"].shape == (4, 3, 16, 16)
    torch.testing.assert_close(first.canvases["w"][:, -1], first.images)


def test_the_draw_vae_spec_in_the_library_runs() -> None:
    spec = cogdsl.load(ROOT / "specs" / "draw_vae_digits.cog")
    torch.manual_seed(0)
    model = cogdsl.compile(spec)
    penalties: list[torch.Tensor] = []
    out = model({"img": torch.rand(2, 28, 28)}, steps=3, raw=True, penalties=penalties)
    assert out.shape == (2, 3, 784) and len(penalties) == 3
