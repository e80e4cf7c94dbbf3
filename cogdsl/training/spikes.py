"""Gradient-spike clipping: the norm of each step's gradient held to a few times its recent average.

A recurrent network's gradient explodes now and then (Pascanu et al. 2013): on an NTM learning to copy, the
norm of the gradient, 15-25 on ordinary steps, jumps to thousands on a handful of batches, and those batches
knock a model that had learned back to chance (docs/robustness.md). A fixed clip cannot tell a spike from an
ordinary step for the whole of a run, because ordinary norms shrink as the model learns. This clip follows
them:

    n_t = ||g_t||,   limit_t = factor * a_{t-1},   g_t <- g_t * min(1, limit_t / n_t)
    a_t = decay * a_{t-1} + (1 - decay) * min(n_t, limit_t)

with a_0 the first step's norm and no clipping during the first ``warmup`` steps, while a settles. The
average is of the norms after clipping, so a burst of spikes cannot raise the limit it is held to. Every
quantity stays a tensor on the gradients' device: no host synchronisation.
"""

from __future__ import annotations

from typing import Any

import torch

DECAY = 0.99  # the average spans about the last 100 steps
WARMUP = 20


class SpikeClip:
    """``clip_spikes: factor``: hold each step's gradient norm to ``factor`` times its running average."""

    def __init__(self, factor: float, saved: dict[str, Any] | None = None) -> None:
        self.factor = factor
        self.average: torch.Tensor | None = None
        self.steps = 0
        if saved and saved.get("average") is not None:
            self.average = torch.tensor(float(saved["average"]))
            self.steps = int(saved.get("steps", 0))

    def __call__(self, parameters: list[torch.nn.Parameter]) -> None:
        """Scale the gradients of ``parameters`` in place so that their norm is at most factor x average."""
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        if self.average is None:
            self.average = norm.detach().clone()
        self.average = self.average.to(norm.device)
        limit = self.factor * self.average
        if self.steps >= WARMUP:
            scale = torch.clamp(limit / (norm + 1e-12), max=1.0)
            torch._foreach_mul_(grads, scale)
            norm = torch.minimum(norm, limit)
        self.average = DECAY * self.average + (1 - DECAY) * norm.detach()
        self.steps += 1

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps, so that a resumed run clips as the run did."""
        return {"average": float(self.average) if self.average is not None else None, "steps": self.steps}
