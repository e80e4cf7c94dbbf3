"""A Gaussian latent variable, as in DRAW (Gregor et al. 2015, section 2, eq. 1-4 and 10-12) and the
variational autoencoder (Kingma & Welling 2014): its sources (DRAW's encoder state) give the
posterior Q(z_t | h_enc) = N(mu_t, sigma_t²), the block's value is a sample of it, and training
adds the KL divergence to the prior N(0, I) to the task's loss::

    input  img: image(size=28)
    output x: 784 = sigmoid(w)
    draw_read  r(n=5) on img <- dec@prev
    lstm       enc(hidden=128) <- r, dec@prev
    latent     z(size=10) <- enc
    lstm       dec(hidden=128) <- z
    draw_write w(n=5, size=28) <- dec

From the query q (B, Q), with eps ~ N(0, I) (the reparameterisation trick)::

    (mu, log sigma²) = W q + b                                   each (B, size)
    z = mu + sigma * eps              (training)      z = mu     (evaluation)
    KL_t = 1/2 sum_j (mu_j² + sigma_j² - log sigma_j² - 1)       (B,), in nats

so that the loss, the reconstruction's cost plus sum_t KL_t, is DRAW's negative variational
bound (eq. 12). Under :func:`from_prior`, z ~ N(0, I) and the query is ignored: the model then
generates, as DRAW does after training (section 2.3).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import nn

from cogdsl.blocks.base import LookKind, LookModule, Param, register


def gaussian_kl(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma²) || N(0, I)) = 1/2 sum_j (mu_j² + sigma_j² - log sigma_j² - 1): (B, size) → (B,)."""
    return 0.5 * (mean.pow(2) + log_variance.exp() - log_variance - 1).sum(-1)


class GaussianLatent(LookModule):
    """query (B, Q) → z (B, size) and where (mu, sigma) (B, 2 size); its KL to the prior is ``penalty`` (B,)."""

    penalizes = True

    def __init__(self, query_size: int, size: int):
        super().__init__()
        self.size = size
        self.posterior = nn.Linear(query_size, 2 * size)
        self.from_prior = False
        self.penalty: torch.Tensor | None = None

    def forward(self, query: torch.Tensor, seen: None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.from_prior:
            self.penalty = None
            sample = torch.randn(query.shape[0], self.size, dtype=query.dtype, device=query.device)
            return sample, torch.cat([torch.zeros_like(sample), torch.ones_like(sample)], -1)
        mean, log_variance = self.posterior(query).chunk(2, -1)
        std = torch.exp(0.5 * log_variance)
        self.penalty = gaussian_kl(mean, log_variance)
        sample = mean + std * torch.randn_like(std) if self.training else mean
        return sample, torch.cat([mean, std], -1)


@contextmanager
def from_prior(model: nn.Module) -> Iterator[None]:
    """Within the block, every ``latent`` of ``model`` draws z ~ N(0, I), ignoring its sources: the model
    generates rather than reconstructs. Restored after."""
    latents = [module for module in model.modules() if isinstance(module, GaussianLatent)]
    for module in latents:
        module.from_prior = True
    try:
        yield
    finally:
        for module in latents:
            module.from_prior = False


@register
class LatentKind(LookKind):
    kind = "latent"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(d)\n"
        "lstm c(hidden=6) <- x\n"
        "latent z({params}) <- c\n"
        "lstm d(hidden=6) <- z\n")
    example_params: ClassVar[dict[str, Any]] = {"size": 3}
    catalogued_as = "latent variable"
    doc = ("A Gaussian latent variable (DRAW, the VAE): its sources give a posterior N(mu, sigma²) whose sample "
           "(reparameterised; the mean in evaluation) is its value, (B, size); training adds its KL divergence "
           "to N(0, I) to the loss.")
    params: ClassVar = (Param("size", int, minimum=1, maximum=4096, doc="dimensions of z"),)
    accepts = frozenset({"from"})
    requires = frozenset({"from"})

    @classmethod
    def value_size(cls, params: dict[str, Any], target_size: int | None) -> int:
        return params["size"]

    @classmethod
    def adds_loss(cls, params: dict[str, Any]) -> bool:
        return True  # its KL to the prior

    @classmethod
    def make(cls, params: dict[str, Any], query_size: int, target_size: int | None) -> nn.Module:
        return GaussianLatent(query_size, params["size"])

    @classmethod
    def describe(cls, name: str, params: dict[str, Any], sources: str, target: str | None, size: int) -> str:
        return (f"latent {name}: z ~ N(mu, sigma²) with (mu, log sigma²) = W [{sources}] + b -> {size}; "
                "its KL to N(0, I) is added to the loss")
