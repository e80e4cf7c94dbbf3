"""``--detect-anomaly``: which block of the spec a non-finite value (NaN, inf) started in.

Forward hooks on every block's module note the first block whose output holds a non-finite value,
and backward hooks the first (in the order the backward pass runs, from the loss back) whose
gradient does; torch's own anomaly mode adds the operation. When a step's loss or gradient is not
finite, the loop reports what these saw (:meth:`AnomalyWatch.report`), e.g.::

    step 812: the loss is not finite: the first non-finite value came out of block 'mem' (memory) in the
    forward pass, at time step 14

Hooks cost time on every step: this is a debugging switch, off by default.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def _finite(value: Any) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in _tensors(value) if t.is_floating_point())


def spec_blocks(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Each module of a compiled model with the spec block it belongs to, described for people:
    ``("block 'ctrl' (lstm)", module)``, ``("the heads r, w on 'mem'", group)``, ``("output 'y'", layer)``."""
    from cogdsl.blocks.named import spec_name

    kinds = {block.name: block.kind for block in model.spec.blocks}
    for family, container in model.named_children():
        if family == "groups":
            for plan, group in zip(model.shapes.groups, container, strict=False):
                heads = ", ".join(name for name, _ in (*plan.reads, *plan.writes))
                yield f"the heads {heads} on '{plan.memory}'", group
        elif isinstance(container, nn.ModuleDict):
            for key, module in container.items():
                name = spec_name(key)
                if family == "outputs":
                    yield f"output '{name}'", module
                elif family == "interfaces":
                    yield f"the interface layer of '{name}'", module
                else:
                    yield f"block '{name}' ({kinds.get(name, family)})", module


class AnomalyWatch:
    """While entered: torch's anomaly mode, and hooks that note the first block with a non-finite output
    (forward) or gradient (backward) since the last :meth:`reset`."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.forward: tuple[str, int] | None = None
        self.backward: str | None = None
        self._calls: dict[str, int] = {}
        self._handles: list[Any] = []
        self._mode: Any = None

    def __enter__(self) -> AnomalyWatch:
        for label, module in spec_blocks(self.model):
            self._handles.append(module.register_forward_hook(self._forward_hook(label)))
            self._handles.append(module.register_full_backward_hook(self._backward_hook(label)))
        self._mode = torch.autograd.set_detect_anomaly(True, check_nan=True)
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        torch.autograd.set_detect_anomaly(False)

    def reset(self) -> None:
        """Forget what was seen: a new training step begins."""
        self.forward, self.backward, self._calls = None, None, {}

    def _forward_hook(self, label: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            self._calls[label] = self._calls.get(label, 0) + 1
            if self.forward is None and not _finite(output):
                self.forward = (label, self._calls[label])
        return hook

    def _backward_hook(self, label: str) -> Any:
        def hook(module: nn.Module, grad_input: Any, grad_output: Any) -> None:
            if self.backward is None and not _finite(grad_input):
                self.backward = label
        return hook

    def report(self, error: BaseException | None = None) -> str:
        """Where the non-finite values were first seen, in words."""
        parts = []
        if self.forward is not None:
            label, call = self.forward
            parts.append(f"the first non-finite value came out of {label} in the forward pass (its call {call} of "
                         "the step: the time step, for a block that runs every step)")
        if self.backward is not None:
            parts.append(f"the first non-finite gradient came out of {self.backward} in the backward pass")
        if error is not None:
            parts.append(f"torch's anomaly mode: {' '.join(str(error).split())[:300]}")
        return "; ".join(parts) or "no block's output or gradient was non-finite: the loss itself was"
