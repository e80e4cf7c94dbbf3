"""Continuous data structures a controller pushes to and pops from: the stack of stack-augmented
RNNs (Joulin & Mikolov 2015), and the neural queue and deque (Grefenstette et al. 2015).

Each is driven by its sources (the controller) at every step and its value is what it shows
on top, which the controller reads at the next step::

    input  x: 3
    output y: 3 = softmax(ctrl)
    rnn    ctrl(hidden=40) <- x, s@prev
    stack  s(stacks=2, depth=50, top=2) <- ctrl

**stack** (Joulin & Mikolov 2015, section 3.1). For each of the stacks, from the query q, the
action probabilities a = softmax(A q) over (push, pop, no-op) and the pushed value
v = sigmoid(D q), (width,); the contents s (depth, width), top first, start empty (-1, a value
no push writes)::

    s_t[0] = a_push v + a_pop s_{t-1}[1] + a_noop s_{t-1}[0]
    s_t[i] = a_push s_{t-1}[i-1] + a_pop s_{t-1}[i+1] + a_noop s_{t-1}[i]      (below the depth: empty)

The value is the top ``top`` elements of every stack, (B, stacks · top · width). With
``discrete``, outside training each stack takes its most probable action alone (a one-hot a),
as the paper does at test time: small leaks of a soft pop into a push add up over long strings.

**queue** and **deque** (Grefenstette et al. 2015, sections 3.1-3.3). Elements are rows V[i] with
strengths s[i] in [0, 1]; from q, the push strength d = sigmoid, the pop strength u = sigmoid
and the pushed value v = tanh. A pop removes u of strength from the end it pops, a push adds
a row of strength d, and a read takes up to 1 of strength from the end it reads::

    pop from the front (queue):  s'[i] = max(0, s[i] - max(0, u - sum_{j<i} s[j]))
    read the front:              r = sum_i min(s'[i], max(0, 1 - sum_{j<i} s'[j])) V[i]

A ``queue`` pushes at the back and pops and reads the front: value r, (B, width). A ``deque``
pushes, pops and reads at both ends (with sum_{j>i} at the top; the two pops commute, since
each takes from its own end and, where they meet, everything goes), and its value is
[r_top ; r_bottom], (B, 2 width). Rows are kept for the last
``capacity`` pushes at each end; run at most that many steps, or the oldest are forgotten.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cogdsl.blocks.base import LookKind, LookModule, Param, register

EMPTY = -1.0
PUSH, POP, NOOP = 0, 1, 2


def stack_step(contents: torch.Tensor, actions: torch.Tensor, pushed: torch.Tensor) -> torch.Tensor:
    """One soft stack update of the module docstring: contents (B, S, depth, width), actions (B, S, 3)
    (push, pop, no-op; each row sums to 1), pushed (B, S, width) → the new contents."""
    empty = torch.full_like(contents[:, :, :1], EMPTY)
    pushed_down = torch.cat([pushed.unsqueeze(2), contents[:, :, :-1]], dim=2)
    popped_up = torch.cat([contents[:, :, 1:], empty], dim=2)
    push, pop, noop = (actions[..., k, None, None] for k in (PUSH, POP, NOOP))
    return push * pushed_down + pop * popped_up + noop * contents


def pop_front(strengths: torch.Tensor, pop: torch.Tensor) -> torch.Tensor:
    """s'[i] = max(0, s[i] - max(0, u - sum_{j<i} s[j])): strengths (B, R) front first, pop u (B,) → (B, R)."""
    before = strengths.cumsum(-1) - strengths
    return F.relu(strengths - F.relu(pop[:, None] - before))


def read_front(values: torch.Tensor, strengths: torch.Tensor) -> torch.Tensor:
    """r = sum_i min(s[i], max(0, 1 - sum_{j<i} s[j])) V[i]: values (B, R, W), strengths (B, R) → (B, W)."""
    before = strengths.cumsum(-1) - strengths
    weights = torch.minimum(strengths, F.relu(1 - before))
    return torch.bmm(weights.unsqueeze(1), values).squeeze(1)


class Stack(LookModule):
    """Joulin & Mikolov's stacks: query (B, Q), contents (B, S, depth, width) → the top elements
    (B, S · top · width), the action probabilities (B, S, 3), the new contents."""

    def __init__(self, query_size: int, stacks: int, depth: int, width: int, top: int, noop: bool,
                 discrete: bool = False):
        super().__init__()
        self.stacks, self.depth, self.width, self.top, self.noop = stacks, depth, width, top, noop
        self.discrete = discrete
        self.act = nn.Linear(query_size, stacks * 3)
        self.push = nn.Linear(query_size, stacks * width)

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        """Every stack empty: (B, S, depth, width) of -1."""
        return like.new_full((batch, self.stacks, self.depth, self.width), EMPTY)

    def forward(self, query: torch.Tensor, seen: None, contents: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scores = self.act(query).view(-1, self.stacks, 3)
        if not self.noop:  # push or pop only, as in the paper's first variant
            scores = scores.masked_fill(torch.arange(3, device=scores.device) == NOOP, float("-inf"))
        actions = torch.softmax(scores, -1)
        if self.discrete and not self.training:
            actions = F.one_hot(actions.argmax(-1), 3).to(actions.dtype)
        pushed = torch.sigmoid(self.push(query)).view(-1, self.stacks, self.width)
        contents = stack_step(contents, actions, pushed)
        return contents[:, :, :self.top].flatten(1), actions, contents


class Queue(LookModule):
    """Grefenstette et al.'s queue: query (B, Q), (values (B, C, W), strengths (B, C)) front first →
    the read front r (B, W), (push d, pop u) (B, 2), the new rows."""

    def __init__(self, query_size: int, width: int, capacity: int):
        super().__init__()
        self.width, self.capacity = width, capacity
        self.control = nn.Linear(query_size, 2 + width)

    def initial_state(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """No rows yet: capacity rows of strength 0."""
        return like.new_zeros(batch, self.capacity, self.width), like.new_zeros(batch, self.capacity)

    @staticmethod
    def traced_state(state: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """What ``cogdsl trace`` shows of the state: the strengths (B, C)."""
        return state[1]

    def forward(self, query: torch.Tensor, seen: None, state: tuple[torch.Tensor, torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        values, strengths = state
        control = self.control(query)
        push, pop = torch.sigmoid(control[:, 0]), torch.sigmoid(control[:, 1])
        pushed = torch.tanh(control[:, 2:])
        strengths = pop_front(strengths, pop)
        # The newest row goes to the back; the oldest row (empty while fewer than C pushes were made) drops.
        values = torch.cat([values[:, 1:], pushed.unsqueeze(1)], dim=1)
        strengths = torch.cat([strengths[:, 1:], push.unsqueeze(1)], dim=1)
        return read_front(values, strengths), torch.stack([push, pop], -1), (values, strengths)


class Deque(LookModule):
    """Grefenstette et al.'s deque: query (B, Q), (values (B, 2C, W), strengths (B, 2C)) bottom to top →
    [r_top ; r_bottom] (B, 2W), (d_top, u_top, d_bottom, u_bottom) (B, 4), the new rows.

    The rows are the bottom half (its newest push outermost, first) then the top half (newest last);
    each half keeps its last C pushes."""

    def __init__(self, query_size: int, width: int, capacity: int):
        super().__init__()
        self.width, self.capacity = width, capacity
        self.control = nn.Linear(query_size, 4 + 2 * width)

    def initial_state(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return like.new_zeros(batch, 2 * self.capacity, self.width), like.new_zeros(batch, 2 * self.capacity)

    traced_state = staticmethod(Queue.traced_state)

    def forward(self, query: torch.Tensor, seen: None, state: tuple[torch.Tensor, torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        values, strengths = state
        control = self.control(query)
        push_top, pop_top, push_bottom, pop_bottom = torch.sigmoid(control[:, :4]).unbind(-1)
        pushed_top, pushed_bottom = torch.tanh(control[:, 4:]).chunk(2, -1)
        strengths = pop_front(strengths.flip(-1), pop_top).flip(-1)  # the top is the back
        strengths = pop_front(strengths, pop_bottom)
        half = self.capacity
        values = torch.cat([pushed_bottom.unsqueeze(1), values[:, :half - 1], values[:, half + 1:],
                            pushed_top.unsqueeze(1)], dim=1)
        strengths = torch.cat([push_bottom.unsqueeze(1), strengths[:, :half - 1], strengths[:, half + 1:],
                               push_top.unsqueeze(1)], dim=1)
        read_top = read_front(values.flip(1), strengths.flip(-1))
        read_bottom = read_front(values, strengths)
        return (torch.cat([read_top, read_bottom], -1), torch.stack([push_top, pop_top, push_bottom, pop_bottom], -1),
                (values, strengths))


@register
class StackKind(LookKind):
    kind = "stack"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(c)\n"
        "lstm c(hidden=6) <- x, q@prev\n"
        "stack q({params}) <- c\n")
    example_params: ClassVar[dict[str, Any]] = {"depth": 8}
    catalogued_as = "memory"
    doc = ("Stacks of a stack-augmented RNN (Joulin & Mikolov 2015): its sources choose soft push, pop and no-op "
           "and the pushed value for each stack; value the top `top` elements of every stack, "
           "(B, stacks·top·width).")
    params: ClassVar = (Param("stacks", int, 1, minimum=1, maximum=256, doc="stacks, each with its own actions"),
                        Param("depth", int, 50, minimum=2, maximum=100000, doc="elements each stack holds"),
                        Param("width", int, 1, minimum=1, maximum=4096, doc="size of each element"),
                        Param("top", int, 1, minimum=1, maximum=64, doc="elements read from the top of each stack"),
                        Param("noop", bool, True, doc="whether no-op is an action beside push and pop"),
                        Param("discrete", bool, False,
                              doc="outside training, take each stack's most probable action alone"))
    accepts = frozenset({"from"})
    requires = frozenset({"from"})
    stateful = True

    @classmethod
    def value_size(cls, params: dict[str, Any], target_size: int | None) -> int:
        return params["stacks"] * min(params["top"], params["depth"]) * params["width"]

    @classmethod
    def make(cls, params: dict[str, Any], query_size: int, target_size: int | None) -> nn.Module:
        return Stack(query_size, params["stacks"], params["depth"], params["width"],
                     min(params["top"], params["depth"]), params["noop"], params["discrete"])

    @classmethod
    def describe(cls, name: str, params: dict[str, Any], sources: str, target: str | None, size: int) -> str:
        actions = "push, pop or no-op" if params["noop"] else "push or pop"
        if params["discrete"]:
            actions += " (the most probable alone outside training)"
        return (f"stack {name}: [{sources}] choose {actions} for each of {params['stacks']} stack(s) of "
                f"{params['depth']} x {params['width']} (kept in the state) -> the top {params['top']}: {size}")

    @classmethod
    def trace_panels(cls, name: str, trace: dict[str, Any]) -> dict[str, tuple[Any, tuple[str, ...] | None]]:
        """Each stack's push and pop probabilities, and the top of the stack that pushes and pops most."""
        if name not in trace:
            return {}
        actions, contents = trace[name], trace[f"{name}:state"]  # (T, stacks, 3), (T, stacks, depth, width)
        stacks = tuple(f"stack {k + 1}" for k in range(actions.shape[1]))
        busiest = busiest_stack(actions)
        top = contents[:, busiest, :min(16, contents.shape[2]), 0].clamp_min(0)  # the empty value -1 shows as 0
        return {f"{name}: push probability of each stack": (actions[:, :, 0].T, stacks),
                f"{name}: pop probability of each stack": (actions[:, :, 1].T, stacks),
                f"{name}: stack {busiest + 1} (pushes and pops most), its top {top.shape[1]} elements, "
                "first channel": (top.T, None)}


def busiest_stack(actions: torch.Tensor) -> int:
    """The stack that both pushes and pops most: argmax_k min(sum_t push_t[k], sum_t pop_t[k]) of
    actions (T, stacks, 3). A stack that only pushes (a clock) or never acts loses to one that
    rises and falls with what it stores."""
    return int(torch.minimum(actions[:, :, 0].sum(0), actions[:, :, 1].sum(0)).argmax())


_CAPACITY = Param("capacity", int, 64, minimum=1, maximum=100000,
                  doc="pushes kept (per end); older ones are forgotten, so make it at least the steps run")
_WIDTH = Param("width", int, 8, minimum=1, maximum=4096, doc="size of each element")


class StrengthStructureKind(LookKind):
    """Grefenstette et al.'s structures: rows with strengths, a width and a capacity; ``ends`` reads."""

    catalogued_as = "memory"
    params: ClassVar = (_WIDTH, _CAPACITY)
    accepts = frozenset({"from"})
    requires = frozenset({"from"})
    stateful = True
    ends: ClassVar[int]
    module: ClassVar[type[nn.Module]]
    action_labels: ClassVar[tuple[str, ...]]  # the rows of its trace of push and pop strengths
    first_row: ClassVar[str]  # which end its rows are drawn from

    @classmethod
    def value_size(cls, params: dict[str, Any], target_size: int | None) -> int:
        return cls.ends * params["width"]

    @classmethod
    def make(cls, params: dict[str, Any], query_size: int, target_size: int | None) -> nn.Module:
        return cls.module(query_size, params["width"], params["capacity"])

    @classmethod
    def describe(cls, name: str, params: dict[str, Any], sources: str, target: str | None, size: int) -> str:
        return (f"{cls.kind} {name}: [{sources}] push and pop strengths and a value of {params['width']} "
                f"({params['capacity']} rows per end, kept in the state) -> what is read: {size}")

    @classmethod
    def trace_panels(cls, name: str, trace: dict[str, Any]) -> dict[str, tuple[Any, tuple[str, ...] | None]]:
        """Its push and pop strengths, and the strength of each row."""
        if name not in trace:
            return {}
        return {f"{name}: push and pop strengths": (trace[name].T, cls.action_labels),
                f"{name}: strength of each row ({cls.first_row} first)": (trace[f"{name}:state"].T, None)}


@register
class QueueKind(StrengthStructureKind):
    kind = "queue"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(c)\n"
        "lstm c(hidden=6) <- x, q@prev\n"
        "queue q({params}) <- c\n")
    example_params: ClassVar[dict[str, Any]] = {"capacity": 8}
    doc = ("A neural queue (Grefenstette et al. 2015): its sources push a value with a strength at the back and "
           "pop a strength from the front; value what is read from the front, (B, width).")
    ends = 1
    module = Queue
    action_labels = ("push", "pop")
    first_row = "front"


@register
class DequeKind(StrengthStructureKind):
    kind = "deque"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(c)\n"
        "lstm c(hidden=6) <- x, q@prev\n"
        "deque q({params}) <- c\n")
    example_params: ClassVar[dict[str, Any]] = {"capacity": 8}
    doc = ("A neural double-ended queue (Grefenstette et al. 2015): its sources push and pop at both ends; value "
           "what is read from the top and from the bottom, (B, 2·width).")
    ends = 2
    module = Deque
    action_labels = ("push top", "pop top", "push bottom", "pop bottom")
    first_row = "bottom"
