"""What a run does around its evaluations: MemN2N's linear start, and keeping the best weights."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch

from cogdsl.errors import UsageError
from cogdsl.training.checkpoints import CHECKPOINT_DIR, save_checkpoint
from cogdsl.training.evaluation import EvalResult, _num


class LinearStart:
    """MemN2N's linear start (Sukhbaatar et al. 2015, 4.2): the hops run without their softmax
    until the validation loss stops decreasing (an evaluation that does not improve on the best
    so far), or for ``steps`` steps at most; then the softmax is put back for good."""

    def __init__(self, model: torch.nn.Module, steps: int, saved: dict[str, Any] | None = None):
        self.model, self.steps = model, steps
        self.active = steps > 0 and bool((saved or {}).get("active", True))
        self.best = float((saved or {}).get("best") or math.inf)
        self.ended = ""
        if steps > 0 and not model.set_linear_start(self.active):
            raise UsageError("linear_start: the spec has no hops block whose softmax it could remove")

    def after_evaluation(self, loss: float, step: int) -> bool:
        """Note a validation loss; True when it ends linear start."""
        if loss < self.best:
            self.best = loss
            return False
        self._end(f"linear start ended: validation loss {_num(loss)} did not improve on {_num(self.best)}")
        return True

    def after_step(self, step: int) -> bool:
        """True when ``step`` reaches the limit and so ends linear start."""
        if step < self.steps:
            return False
        self._end(f"linear start ended after its {self.steps} steps")
        return True

    def _end(self, why: str) -> None:
        self.active, self.ended = False, why
        self.model.set_linear_start(False)

    def state(self) -> dict[str, Any]:
        return {"active": self.active, "best": self.best if math.isfinite(self.best) else None}


BEST_CHECKPOINT = "best.safetensors"


class BestKeeper:
    """``keep_best``: after each scheduled evaluation whose validation loss is the lowest so far,
    the model's weights go to ``checkpoints/best.safetensors`` (with the step and the evaluation
    in its metadata), so a run that gets worse later still has its best point."""

    def __init__(self, out: Path, enabled: bool, saved: dict[str, Any] | None = None):
        self.path = out / CHECKPOINT_DIR / BEST_CHECKPOINT
        self.enabled = enabled
        self.loss = float((saved or {}).get("loss") or math.inf)
        self.step = (saved or {}).get("step")

    def after_evaluation(self, model: torch.nn.Module, evaluation: EvalResult, step: int,
                         meta: dict[str, Any]) -> None:
        """Save the weights (with ``meta``, the run's identity) if ``evaluation`` improves on the best."""
        if not self.enabled or not evaluation.loss < self.loss:
            return
        self.loss, self.step = evaluation.loss, step
        save_checkpoint(self.path, model=model, optimizer=None, data_generator=None,
                        meta={**meta, "step": step, "eval": dataclasses.asdict(evaluation), "best": self.state()})

    def state(self) -> dict[str, Any]:
        return {"loss": self.loss if math.isfinite(self.loss) else None, "step": self.step}
