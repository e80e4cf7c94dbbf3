"""Controllers whose units update at different rates: the clockwork RNN (Koutník et al. 2014), the
skip RNN (Campos et al. 2018) and the hierarchical multiscale LSTM (Chung et al. 2017). Each is a
controller like ``lstm`` (``forward(x_t, state) -> (h_t, state)``), usable under any memory or on
its own, and each shows when it updated: after every step its module's ``traced`` holds a tensor
that ``model(..., return_weights=True)`` returns as ``"NAME:active"``, ``"NAME:updates"`` or
``"NAME:boundaries"``.

**clockwork** (Koutník et al. 2014, section 3). The hidden units are ``modules`` equal groups
with periods T_i = base^i. At step t (from 0) group i updates only when t mod T_i = 0, and
receives from the groups at least as slow as itself (W_H block upper triangular)::

    h_t^i = tanh(W_I^i x_t + sum_{j >= i} W_H^{ij} h_{t-1}^j)    if t mod T_i = 0,  else h_{t-1}^i

**skip_rnn** (Campos et al. 2018, section 3). A cell (lstm, gru or rnn) with a binary update
gate u_t from a probability u~_t that grows while the state is skipped; the rounding passes
its gradient straight through, and each update costs ``cost`` in the loss::

    u_t = round(u~_t)                                 (u~_1 = 1: the first step updates)
    s_t = u_t S(s_{t-1}, x_t) + (1 - u_t) s_{t-1}
    Δu~_t = sigmoid(W_p s_t + b_p)
    u~_{t+1} = u_t Δu~_t + (1 - u_t) (u~_t + min(Δu~_t, 1 - u~_t))
    L_budget = cost · sum_t u_t

**hm_rnn** (Chung et al. 2017, section 3). ``layers`` LSTM layers of hidden/layers units, each
with a boundary detector z. Layer l's gates come from its own previous state, the layer above
when l ended a segment at t-1 (z^l_{t-1} = 1), and the layer below when it ended one now
(z^{l-1}_t = 1; z^0 = 1, the input)::

    s = U_l h^l_{t-1} + z^l_{t-1} U_{l+1} h^{l+1}_{t-1} + z^{l-1}_t W_{l-1} h^{l-1}_t + b
    f, i, o = sigmoid;  g = tanh;  z~ = hard_sigmoid(slope · s_z) = clip((slope · s_z + 1)/2, 0, 1)
    FLUSH  (z^l_{t-1} = 1):                      c = i g
    UPDATE (z^l_{t-1} = 0, z^{l-1}_t = 1):       c = f c_{t-1} + i g
    COPY   (z^l_{t-1} = 0, z^{l-1}_t = 0):       c = c_{t-1},  h = h_{t-1}
    h = o tanh(c) (unless COPY);  z^l_t = round(z~) (straight-through)

Its output is every layer's h, concatenated: (B, hidden).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cogdsl.blocks.base import Param, register
from cogdsl.blocks.controllers import (
    CLIP,
    HIDDEN,
    ZONEOUT,
    Controller,
    ControllerKind,
    RecurrentController,
    State,
    zone_out,
)


def straight_through_round(probability: torch.Tensor) -> torch.Tensor:
    """round(p) forward, the identity backward (Bengio et al. 2013's straight-through estimator)."""
    return probability + (torch.round(probability) - probability).detach()


class ClockworkRNN(Controller):
    """x (B, I), (h (B, hidden), t (B,)) → h_t, (h_t, t + 1); ``traced["active"]``: which groups ran (B, modules)."""

    def __init__(self, input_size: int, hidden: int, modules: int, base: int, zoneout: float):
        super().__init__()
        self.hidden, self.zoneout, self.output_size = hidden, zoneout, hidden
        self.input_layer = nn.Linear(input_size, hidden)
        self.recurrent = nn.Linear(hidden, hidden, bias=False)
        group = torch.arange(hidden) // (hidden // modules)
        self.register_buffer("periods", float(base) ** torch.arange(modules, dtype=torch.float64), persistent=False)
        self.register_buffer("group", group, persistent=False)
        # Unit j feeds unit i when j's group is at least as slow as i's.
        self.register_buffer("feeds", (group[None, :] >= group[:, None]).float(), persistent=False)
        self.traced: dict[str, torch.Tensor] = {}

    def initial_state(self, batch: int, like: torch.Tensor) -> State:
        return like.new_zeros(batch, self.hidden), like.new_zeros(batch)

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h, step = state
        running = torch.remainder(step[:, None].double(), self.periods) == 0  # (B, modules)
        candidate = torch.tanh(self.input_layer(x) + F.linear(h, self.recurrent.weight * self.feeds))
        new = torch.where(running[:, self.group], zone_out(candidate, h, self.zoneout, self.training), h)
        self.traced = {"active": running.to(h.dtype)}
        return new, (new, step + 1)


class SkipRNN(Controller):
    """x (B, I), (cell state ..., u~ (B, 1)) → h_t, the new state; ``penalty`` cost · u_t (B,) and
    ``traced["updates"]`` u_t (B, 1)."""

    penalizes = True

    def __init__(self, input_size: int, hidden: int, cell: str, cost: float, zoneout: float):
        super().__init__()
        cells = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}
        self.cell = RecurrentController(cells[cell], input_size, hidden, 1, zoneout)
        self.update_gate = nn.Linear(hidden, 1)
        self.cost, self.output_size = cost, hidden
        self.penalty: torch.Tensor | None = None
        self.traced: dict[str, torch.Tensor] = {}

    def initial_state(self, batch: int, like: torch.Tensor) -> State:
        return (*self.cell.initial_state(batch, like), like.new_ones(batch, 1))

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        *previous, probability = state
        update = straight_through_round(probability)
        _, computed = self.cell(x, tuple(previous))
        kept = tuple(update * new + (1 - update) * old for new, old in zip(computed, previous, strict=True))
        delta = torch.sigmoid(self.update_gate(kept[0]))
        probability = update * delta + (1 - update) * (probability + torch.minimum(delta, 1 - probability))
        self.penalty = self.cost * update.squeeze(-1) if self.cost else None
        self.traced = {"updates": update}
        return kept[0], (*kept, probability)


def hard_sigmoid(x: torch.Tensor, slope: float) -> torch.Tensor:
    """clip((slope x + 1) / 2, 0, 1)."""
    return torch.clamp((slope * x + 1) / 2, 0.0, 1.0)


class HMRNN(Controller):
    """x (B, I), per layer (h, c, z) → every layer's h (B, hidden), the new state; ``traced["boundaries"]``
    z_t (B, layers)."""

    def __init__(self, input_size: int, hidden: int, layers: int, slope: float, zoneout: float):
        super().__init__()
        self.layers, self.size, self.slope, self.zoneout = layers, hidden // layers, slope, zoneout
        self.output_size = hidden
        gates = 4 * self.size + 1  # f, i, o, g and the boundary
        self.recurrent = nn.ModuleList(nn.Linear(self.size, gates) for _ in range(layers))
        self.bottom_up = nn.ModuleList(nn.Linear(input_size if layer == 0 else self.size, gates, bias=False)
                                       for layer in range(layers))
        self.top_down = nn.ModuleList(nn.Linear(self.size, gates, bias=False) for _ in range(layers - 1))
        self.traced: dict[str, torch.Tensor] = {}

    def initial_state(self, batch: int, like: torch.Tensor) -> State:
        zeros = like.new_zeros(batch, self.size)
        return tuple(t for _ in range(self.layers) for t in (zeros, zeros, like.new_zeros(batch, 1)))

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        below, below_boundary = x, torch.ones_like(x[:, :1])
        outputs, new_state, boundaries = [], [], []
        for layer in range(self.layers):
            h, c, boundary = state[3 * layer], state[3 * layer + 1], state[3 * layer + 2]
            s = self.recurrent[layer](h) + below_boundary * self.bottom_up[layer](below)
            if layer + 1 < self.layers:
                s = s + boundary * self.top_down[layer](state[3 * (layer + 1)])
            forget, write, show, candidate = s[:, :-1].chunk(4, -1)
            forget, write, show, candidate = (torch.sigmoid(forget), torch.sigmoid(write), torch.sigmoid(show),
                                              torch.tanh(candidate))
            copy = (1 - boundary) * (1 - below_boundary)
            flushed = write * candidate
            updated = forget * c + write * candidate
            new_c = boundary * flushed + (1 - boundary) * (below_boundary * updated + (1 - below_boundary) * c)
            new_h = copy * h + (1 - copy) * show * torch.tanh(new_c)
            new_h = zone_out(new_h, h, self.zoneout, self.training)
            new_c = zone_out(new_c, c, self.zoneout, self.training)
            new_boundary = straight_through_round(hard_sigmoid(s[:, -1:], self.slope))
            new_state += [new_h, new_c, new_boundary]
            outputs.append(new_h)
            boundaries.append(new_boundary)
            below, below_boundary = new_h, new_boundary
        self.traced = {"boundaries": torch.cat(boundaries, -1)}
        return torch.cat(outputs, -1), tuple(new_state)


def _splits_hidden(params: dict[str, Any], parts: str) -> list[tuple[str, str, str]]:
    """The conflict when the parameter ``parts`` (modules, layers) does not divide ``hidden`` into equal groups."""
    if params["hidden"] % params[parts]:
        return [(parts, f"{params[parts]} {parts} do not divide hidden={params['hidden']}",
                 f"make hidden a multiple of {parts}")]
    return []


@register
class ClockworkKind(ControllerKind):
    kind = "clockwork"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(c)\n"
        "{kind} c({params}) <- x\n")
    example_params: ClassVar[dict[str, Any]] = {"hidden": 8}
    doc = ("Clockwork RNN (Koutník et al. 2014): `modules` groups of hidden units with periods base^i, each "
           "updated only at its period, fed by the slower groups.")
    params: ClassVar = (HIDDEN, Param("modules", int, 4, minimum=1, maximum=64, doc="groups of hidden units"),
                        Param("base", int, 2, minimum=1, maximum=64, doc="group i runs every base^i steps"),
                        CLIP, ZONEOUT)

    @classmethod
    def conflicts(cls, params: dict[str, Any]) -> list[tuple[str, str, str]]:
        return _splits_hidden(params, "modules")

    @classmethod
    def trace_panels(cls, name: str, trace: dict[str, Any]) -> dict[str, tuple[Any, tuple[str, ...] | None]]:
        if f"{name}:active" not in trace:
            return {}
        active = trace[f"{name}:active"].T
        return {f"{name}: groups that ran": (active, tuple(f"group {g + 1}" for g in range(active.shape[0])))}

    @classmethod
    def make(cls, params: dict[str, Any], input_size: int) -> Controller:
        return ClockworkRNN(input_size, params["hidden"], params["modules"], params["base"], params["zoneout"])


@register
class SkipRNNKind(ControllerKind):
    kind = "skip_rnn"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(c)\n"
        "{kind} c({params}) <- x\n")
    example_params: ClassVar[dict[str, Any]] = {"hidden": 6}
    doc = ("Skip RNN (Campos et al. 2018): a cell with a learned binary update gate (straight-through), "
           "copying its state on skipped steps; `cost` per update is added to the loss.")
    params: ClassVar = (HIDDEN, Param("cell", str, "lstm", choices=("lstm", "gru", "rnn")),
                        Param("cost", float, 0.0, minimum=0.0, doc="loss per update per sequence (lambda)"),
                        CLIP, ZONEOUT)

    @classmethod
    def trace_panels(cls, name: str, trace: dict[str, Any]) -> dict[str, tuple[Any, tuple[str, ...] | None]]:
        if f"{name}:updates" not in trace:
            return {}
        updates = trace[f"{name}:updates"].T
        skipped = 1 - float(updates.mean())
        return {f"{name}: updates ({100 * skipped:.0f}% of steps skipped)": (updates, ("update",))}

    @classmethod
    def adds_loss(cls, params: dict[str, Any]) -> bool:
        return params.get("cost", 0.0) > 0  # cost x updates

    @classmethod
    def make(cls, params: dict[str, Any], input_size: int) -> Controller:
        return SkipRNN(input_size, params["hidden"], params["cell"], params["cost"], params["zoneout"])


@register
class HMRNNKind(ControllerKind):
    kind = "hm_rnn"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(c)\n"
        "{kind} c({params}) <- x\n")
    example_params: ClassVar[dict[str, Any]] = {"hidden": 6, "layers": 2}
    doc = ("Hierarchical multiscale LSTM (Chung et al. 2017): `layers` layers with boundary detectors "
           "choosing UPDATE, COPY or FLUSH; value every layer's h, (B, hidden).")
    params: ClassVar = (HIDDEN, Param("layers", int, 3, minimum=1, maximum=16, doc="layers, hidden/layers units each"),
                        Param("slope", float, 1.0, minimum=0.01, maximum=100.0,
                              doc="slope of the boundary's hard sigmoid (anneal it up to sharpen)"),
                        CLIP, ZONEOUT)

    @classmethod
    def conflicts(cls, params: dict[str, Any]) -> list[tuple[str, str, str]]:
        return _splits_hidden(params, "layers")

    @classmethod
    def trace_panels(cls, name: str, trace: dict[str, Any]) -> dict[str, tuple[Any, tuple[str, ...] | None]]:
        if f"{name}:boundaries" not in trace:
            return {}
        boundaries = trace[f"{name}:boundaries"].T
        return {f"{name}: boundaries": (boundaries, tuple(f"layer {k + 1}" for k in range(boundaries.shape[0])))}

    @classmethod
    def make(cls, params: dict[str, Any], input_size: int) -> Controller:
        return HMRNN(input_size, params["hidden"], params["layers"], params["slope"], params["zoneout"])
