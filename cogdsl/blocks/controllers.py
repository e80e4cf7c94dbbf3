"""Controllers: the networks that read inputs and drive heads (mlp, rnn, lstm, gru).

Every recurrent controller takes ``zoneout: p`` (Krueger et al. 2017): in training each unit
of the new state (h, and c for an LSTM) keeps its previous value with probability p,
h_t = d * h_{t-1} + (1 - d) * h~_t with d ~ Bernoulli(p); in evaluation it keeps the
expectation, h_t = p h_{t-1} + (1 - p) h~_t.

Each controller kind lowers to a module with one method per time step,
``forward(x_t, state) -> (h_t, state)``, where ``x_t`` (B, input size) is the
concatenation of the controller's sources and ``h_t`` (B, hidden) is its output.
The interface layer that turns ``h_t`` into head parameters, ``clamp(W h_t + b, ±clip)``, is
built here too (:class:`ControllerUnit`), with the size the heads' layout gives it; the unit
posts the interface vector for the head groups the controller drives.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from cogdsl.blocks.base import BlockKind, Param, register
from cogdsl.blocks.runtime import Build, ModuleUnit, Step, StepOut, Unit, count

State = tuple[torch.Tensor, ...]

CLIP = Param("clip", float, 20.0, minimum=0.0,
              doc="interface values are clamped to [-clip, clip] before their activations; 0 turns clipping off")
HIDDEN = Param("hidden", int, minimum=1, maximum=65536, doc="units per layer")
LAYERS = Param("layers", int, 1, minimum=1, maximum=16, doc="stacked layers")
ZONEOUT = Param("zoneout", float, 0.0, minimum=0.0, maximum=1.0,
                doc="probability that a unit keeps its previous state at a step (Krueger et al. 2017); 0: off")


def zone_out(new: torch.Tensor, old: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """h = d * old + (1 - d) * new, d ~ Bernoulli(rate) per unit in training, d = rate in evaluation."""
    if rate == 0.0:
        return new
    if training:
        keep = torch.bernoulli(torch.full_like(new, rate))
        return keep * old + (1 - keep) * new
    return rate * old + (1 - rate) * new


class ControllerKind(BlockKind):
    family = "controller"
    accepts = frozenset({"from"})
    requires = frozenset({"from"})
    has_output = True

    @classmethod
    def make(cls, params: dict[str, Any], input_size: int) -> Controller:
        raise NotImplementedError

    @classmethod
    def build(cls, b: Build) -> Unit:
        return ControllerUnit(b, cls.make(b.params, b.shapes.input_sizes[b.name]))


class Controller(nn.Module):
    """A controller's step. Subclasses define ``cells`` and how a layer steps.

    After each step, ``traced`` holds what ``cogdsl trace`` may show of it (a multiscale controller: which
    units ran), and ``penalty`` a cost (B,) added to the loss, or None (``penalizes``: it has one)."""

    output_size: int
    penalizes: ClassVar[bool] = False
    traced: dict[str, torch.Tensor]
    penalty: torch.Tensor | None = None

    def __init__(self) -> None:
        super().__init__()
        self.traced = {}

    def initial_state(self, batch: int, like: torch.Tensor) -> State:
        return ()


class ControllerUnit(ModuleUnit):
    """A controller's step: h, state = module(sources, state); with heads to drive, it posts
    ``clamp(W h + b, ±clip)`` as topic "interface". Trace: ``NAME:WHAT`` for what the module ``traced``."""

    def __init__(self, b: Build, module: Controller):
        assert b.block is not None
        self.name, self.module = b.name, b.add("controllers", b.name, module)
        interface_size = b.shapes.interface_sizes.get(b.name)
        self.interface = (b.add("interfaces", b.name, nn.Linear(b.params["hidden"], interface_size))
                          if interface_size else None)
        self.clip: float = b.params["clip"]
        self.penalizes = module.penalizes
        self.line = (f"controller {b.name}: {b.block.kind}, {b.shapes.input_sizes[b.name]} -> "
                      f"{b.shapes.sizes[b.name]} from [{b.sources()}]"
                      + (f", interface {interface_size}" if interface_size else ""))

    def initial_state(self, batch: int, like: torch.Tensor) -> dict[str, Any]:
        return {self.name: self.module.initial_state(batch, like)}

    def step(self, step: Step) -> StepOut:
        h, state = self.module(step.gather(self.name), step.state[self.name])
        out = StepOut(h, state={self.name: state})
        for what, shown in self.module.traced.items():
            out.trace[f"{self.name}:{what}"] = shown
        if self.module.penalty is not None:
            out.penalties.append(self.module.penalty)  # a skip_rnn's cost of its updates
        if self.interface is not None:
            interface = self.interface(h)
            step.post("interface", self.name,
                      interface.clamp(-self.clip, self.clip) if self.clip > 0 else interface)
        return out

    def parameter_counts(self) -> dict[str, int]:
        return {self.name: count(self.module) + (count(self.interface) if self.interface is not None else 0)}


class MLPController(Controller):
    """h = act(W_L ... act(W_1 x)); no recurrent state."""

    def __init__(self, input_size: int, hidden: int, layers: int, activation: str):
        super().__init__()
        act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[activation]
        modules: list[nn.Module] = []
        size = input_size
        for _ in range(layers):
            modules += [nn.Linear(size, hidden), act()]
            size = hidden
        self.net = nn.Sequential(*modules)
        self.output_size = hidden

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        return self.net(x), state


class RecurrentController(Controller):
    """A stack of cells of one type; the top layer's hidden state is the output."""

    def __init__(self, cell: type[nn.Module], input_size: int, hidden: int, layers: int, zoneout: float = 0.0,
                 **cell_args: Any):
        super().__init__()
        sizes = [input_size] + [hidden] * (layers - 1)
        self.cells = nn.ModuleList(cell(size, hidden, **cell_args) for size in sizes)
        self.hidden = hidden
        self.is_lstm = cell is nn.LSTMCell
        self.output_size = hidden
        self.zoneout = zoneout

    def initial_state(self, batch: int, like: torch.Tensor) -> State:
        per_layer = 2 if self.is_lstm else 1
        zeros = like.new_zeros(batch, self.hidden)
        return tuple(zeros for _ in range(per_layer * len(self.cells)))

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        new_state: list[torch.Tensor] = []
        if self.is_lstm:
            for layer, cell in enumerate(self.cells):
                old_h, old_c = state[2 * layer], state[2 * layer + 1]
                h, c = cell(x, (old_h, old_c))
                h = zone_out(h, old_h, self.zoneout, self.training)
                c = zone_out(c, old_c, self.zoneout, self.training)
                new_state += [h, c]
                x = h
        else:
            for layer, cell in enumerate(self.cells):
                x = zone_out(cell(x, state[layer]), state[layer], self.zoneout, self.training)
                new_state.append(x)
        return x, tuple(new_state)


@register
class MLPKind(ControllerKind):
    kind = "mlp"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(c)\n"
        "{kind} c({params}) <- x\n")
    example_params: ClassVar[dict[str, Any]] = {"hidden": 6}
    doc = "Feed-forward controller: `layers` dense layers of `hidden` units (no recurrent state)."
    params = (HIDDEN, LAYERS, Param("activation", str, "relu", choices=("relu", "tanh", "sigmoid")), CLIP)

    @classmethod
    def make(cls, params: dict[str, Any], input_size: int) -> Controller:
        return MLPController(input_size, params["hidden"], params["layers"], params["activation"])


@register
class RNNKind(ControllerKind):
    kind = "rnn"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(c)\n"
        "{kind} c({params}) <- x\n")
    example_params: ClassVar[dict[str, Any]] = {"hidden": 6}
    doc = "Elman RNN controller: h_t = act(W x_t + U h_{t-1} + b)."
    params = (HIDDEN, LAYERS, Param("nonlinearity", str, "tanh", choices=("tanh", "relu")), CLIP, ZONEOUT)

    @classmethod
    def make(cls, params: dict[str, Any], input_size: int) -> Controller:
        return RecurrentController(nn.RNNCell, input_size, params["hidden"], params["layers"], params["zoneout"],
                                   nonlinearity=params["nonlinearity"])


@register
class LSTMKind(ControllerKind):
    kind = "lstm"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(c)\n"
        "{kind} c({params}) <- x\n")
    example_params: ClassVar[dict[str, Any]] = {"hidden": 6}
    doc = "LSTM controller (Hochreiter & Schmidhuber 1997), as in the NTM and DNC papers."
    params = (HIDDEN, LAYERS, CLIP, ZONEOUT)

    @classmethod
    def make(cls, params: dict[str, Any], input_size: int) -> Controller:
        return RecurrentController(nn.LSTMCell, input_size, params["hidden"], params["layers"], params["zoneout"])


@register
class GRUKind(ControllerKind):
    kind = "gru"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(c)\n"
        "{kind} c({params}) <- x\n")
    example_params: ClassVar[dict[str, Any]] = {"hidden": 6}
    doc = "GRU controller (Cho et al. 2014)."
    params: ClassVar = (HIDDEN, LAYERS, CLIP, ZONEOUT)

    @classmethod
    def make(cls, params: dict[str, Any], input_size: int) -> Controller:
        return RecurrentController(nn.GRUCell, input_size, params["hidden"], params["layers"], params["zoneout"])
