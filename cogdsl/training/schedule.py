"""The learning-rate schedule: ``train: schedule: {name: cosine, warmup: 500}``.

The rate at step t (0-based) of a run of S steps, with lr the optimizer's rate and W the warm-up::

    warm-up   t < W:   lr · (t + 1) / W                       (every schedule; W = 0: none)
    constant           lr
    step               lr · factor^floor((t - W) / every)     (MemN2N halves it every 25 epochs)
    cosine             lr · (final + (1 - final) · (1 + cos(π · p)) / 2)
    linear             lr · (1 - (1 - final) · p)
                       with p = (t - W) / max(1, S - W), the progress after the warm-up, in [0, 1]

It is a function of the step alone, so a resumed run gets the rate an uninterrupted one would.
The older settings ``lr_decay_every: E`` and ``lr_decay: F`` are the ``step`` schedule with
``every: E`` and ``factor: F``.
"""

from __future__ import annotations

import math
from typing import Any

from cogdsl.blocks.base import Param

SCHEDULES: dict[str, tuple[Param, ...]] = {
    "constant": (Param("warmup", int, 0, minimum=0, doc="steps of linear warm-up from 0 to the rate"),),
    "step": (Param("warmup", int, 0, minimum=0, doc="steps of linear warm-up from 0 to the rate"),
             Param("every", int, 1000, minimum=1, doc="steps between two decays"),
             Param("factor", float, 0.5, minimum=0.0, maximum=1.0, doc="what each decay multiplies the rate by")),
    "cosine": (Param("warmup", int, 0, minimum=0, doc="steps of linear warm-up from 0 to the rate"),
               Param("final", float, 0.0, minimum=0.0, maximum=1.0,
                     doc="the rate at the last step, as a fraction of the optimizer's")),
    "linear": (Param("warmup", int, 0, minimum=0, doc="steps of linear warm-up from 0 to the rate"),
               Param("final", float, 0.0, minimum=0.0, maximum=1.0,
                     doc="the rate at the last step, as a fraction of the optimizer's")),
}
"""Each schedule's parameters, declared as data (the validator, the docs and the defaults read them)."""


def schedule_params(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` with the schedule's defaults filled in."""
    return {**{p.name: p.default for p in SCHEDULES[name]}, **given}


def rate_factor(name: str, params: dict[str, Any], step: int, steps: int) -> float:
    """What the optimizer's rate is multiplied by at ``step`` (0-based) of a run of ``steps`` steps."""
    values = schedule_params(name, params)
    warmup = int(values["warmup"])
    if step < warmup:
        return (step + 1) / warmup
    after = step - warmup
    if name == "constant":
        return 1.0
    if name == "step":
        return float(values["factor"]) ** (after // int(values["every"]))
    progress = min(1.0, after / max(1, steps - warmup))
    final = float(values["final"])
    if name == "cosine":
        return final + (1.0 - final) * (1.0 + math.cos(math.pi * progress)) / 2.0
    if name == "linear":
        return 1.0 - (1.0 - final) * progress
    raise ValueError(f"unknown schedule {name!r}")
