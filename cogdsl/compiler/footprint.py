"""How much memory a compiled spec holds, measured before anything is allocated, and the budget it must fit.

The model is built once on PyTorch's ``meta`` device, where tensors have shapes and dtypes but no storage, so
the count is exact (every parameter and every piece of recurrent state the blocks declare) and costs no memory
even for a spec that asks for terabytes. Two numbers come out:

- parameter bytes P: the weights of every block, plus their learned initial states;
- state bytes S: the recurrent state one sequence carries from step to step (controller states, memories,
  head weightings, usage and links), so a batch of B holds B * S.

The budget is checked against P + B * S, with B the spec's training batch (1 without a train section). It is a
floor, not the whole bill: training also keeps gradients (P), the optimizer's moments (up to 2P for Adam) and
every step's activations for backpropagation through time. A spec over the budget is refused (E502) by
``cogdsl validate`` and by compile, at the block that holds the most; the user raises the limit with
``--max-memory``, ``COGDSL_MAX_MEMORY`` or ``cogdsl.compile(..., max_memory=...)``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from cogdsl.errors import Diagnostic, SpecError, UsageError

if TYPE_CHECKING:
    from cogdsl.compiler.lower import CompiledModel
    from cogdsl.compiler.shapes import Shapes
    from cogdsl.language.spec import Spec

ENVIRONMENT = "COGDSL_MAX_MEMORY"
DEFAULT_LIMIT = 16 * 2**30
"""16 GiB: far above any spec in the library (the largest holds about 12 MB), below the memory of most GPUs a
model is trained on, and far below what a typo such as ``hidden: 65536`` asks for (64 GiB)."""

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


@dataclass(frozen=True)
class Footprint:
    """Bytes a compiled spec holds: its parameters per block, and its recurrent state per sequence."""

    parameter_bytes: dict[str, int]  # spec block (or output) -> bytes of its trainable parameters
    state_per_block: dict[str, int]  # spec block -> bytes of the recurrent state it keeps for one sequence

    @property
    def parameters(self) -> int:
        return sum(self.parameter_bytes.values())

    @property
    def state_bytes(self) -> int:
        """The recurrent state of one sequence."""
        return sum(self.state_per_block.values())

    def largest(self, batch: int) -> str | None:
        """The block that holds the most at ``batch``: its parameters and its state for the batch."""
        held = {name: self.parameter_bytes.get(name, 0) + batch * self.state_per_block.get(name, 0)
                for name in {*self.parameter_bytes, *self.state_per_block}}
        return max(sorted(held), key=held.__getitem__, default=None)

    def total(self, batch: int) -> int:
        """P + B * S: the parameters and the state of a batch of ``batch`` sequences."""
        return self.parameters + batch * self.state_bytes


def bytes_text(count: float) -> str:
    """``count`` bytes in binary units, three significant digits: ``64.0 GiB``, ``980 KiB``, ``12 B``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "B" or count >= 100 else f"{count:.3g} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def parse_bytes(text: str) -> int:
    """A size such as ``80GiB``, ``500 MB`` or ``1e9``... in bytes; UsageError for anything else.

    Units: B, KB/MB/GB/TB (powers of 1000) and KiB/MiB/GiB/TiB (powers of 1024), any case; no unit is bytes."""
    match = _SIZE.fullmatch(text)
    unit = match and match.group(2).lower()
    if match is None or unit not in _UNITS:
        raise UsageError(f"'{text}' is not a memory size: write a number and a unit, such as 80GiB or 500MB")
    value = float(match.group(1)) * _UNITS[unit]
    if not 0 < value < 2**63:
        raise UsageError(f"'{text}' is not a memory size a machine has: give a positive size such as 80GiB")
    return int(value)


def memory_limit(given: int | str | None = None) -> int:
    """The budget in bytes: ``given`` (bytes, or a size such as ``"80GiB"``), else ``$COGDSL_MAX_MEMORY``, else
    DEFAULT_LIMIT (16 GiB)."""
    if given is None:
        given = os.environ.get(ENVIRONMENT) or DEFAULT_LIMIT
    if isinstance(given, str):
        return parse_bytes(given)
    if isinstance(given, bool) or not isinstance(given, int) or given <= 0:
        raise UsageError(f"max_memory must be a positive number of bytes or a size such as '80GiB', got {given!r}")
    return given


def _tensor_bytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def footprint(spec: Spec, shapes: Shapes) -> Footprint:
    """The parameter bytes per block and the state bytes per sequence of ``spec`` (sized) with ``shapes``,
    from a build on the ``meta`` device: exact, and nothing is allocated."""
    from cogdsl.compiler.lower import lower

    with torch.device("meta"):
        return measure(lower(spec, shapes))


def measure(model: CompiledModel) -> Footprint:
    """The footprint of a built model (on any device, ``meta`` included)."""
    size = max((p.element_size() for p in model.parameters()), default=4)
    per_block = {name: count * size for name, count in model.parameter_counts().items()}
    # parameters no block claims still count
    unclaimed = sum(p.numel() * p.element_size() for p in model.parameters()) - sum(per_block.values())
    if unclaimed > 0:
        per_block["(model)"] = unclaimed
    return Footprint(per_block, _state_per_block(model))


def _state_per_block(model: CompiledModel) -> dict[str, int]:
    """The state of one sequence by the block that keeps it. A state key is a block's name (a controller,
    a memory) or ``what:name`` naming one (``usage:mem``, ``prev:r``); a head group's weightings
    (``weights:0``) belong to its memory."""
    groups = {key: group.plan.memory for key, group in zip(model.weight_keys, model.groups, strict=True)}
    blocks = {b.name for b in model.spec.blocks}
    held: dict[str, int] = {}
    for key, value in model.initial_state(1).items():
        name = groups.get(key) or key.rpartition(":")[2]
        owner = name if name in blocks else "(model)"
        held[owner] = held.get(owner, 0) + _tensor_bytes(value)
    return held


def training_batch(spec: Spec) -> int:
    """The batch the spec trains with (its ``train: batch:``), or 1 when it says none."""
    train = spec.train.data if spec.train is not None and isinstance(spec.train.data, dict) else {}
    batch = train.get("batch")
    data = getattr(batch, "data", None)
    return data if isinstance(data, int) and not isinstance(data, bool) and data >= 1 else 16 if train else 1


def check_footprint(spec: Spec, shapes: Shapes, max_memory: int | str | None = None) -> Footprint:
    """The footprint of ``spec``; SpecError E502 when P + B * S is over the memory limit (:func:`memory_limit`)."""
    limit = memory_limit(max_memory)
    measured = footprint(spec, shapes)
    batch = training_batch(spec)
    total = measured.total(batch)
    if total <= limit:
        return measured
    blocks = {b.name: b for b in spec.blocks}
    largest = measured.largest(batch)
    where = blocks[largest].span if largest in blocks else spec.model.span
    state = f"state {bytes_text(batch * measured.state_bytes)} for a batch of {batch}"
    message = (f"the model needs {bytes_text(total)} (parameters {bytes_text(measured.parameters)}, {state}), "
               f"over the memory limit of {bytes_text(limit)}")
    hint = ""
    if largest in blocks:
        parameters, kept = measured.parameter_bytes.get(largest, 0), measured.state_per_block.get(largest, 0)
        held = [f"{bytes_text(parameters)} of parameters"] if parameters else []
        held += [f"{bytes_text(batch * kept)} of state"] if kept else []
        hint = f"block '{largest}' holds {' and '.join(held)}; "
    hint += ("make it smaller, or raise the limit: --max-memory 80GiB, "
             f"{ENVIRONMENT}=80GiB, or cogdsl.compile(spec, max_memory='80GiB')")
    raise SpecError([Diagnostic("E502", message, where, hint)], {spec.file: spec.source or ""})
