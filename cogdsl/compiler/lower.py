"""Pass 6: a validated, shape-inferred spec becomes a :class:`CompiledModel` (a ``torch.nn.Module``).

The model is a list of units (:mod:`cogdsl.blocks.runtime`): every block kind builds its own
(:meth:`~cogdsl.blocks.base.BlockKind.build`), a memory's kind builds the unit of each head group on it,
and each output has one. One step runs the units in ``shapes.order``:

1. each controller reads the concatenation of its sources (``x@prev`` values come from
   the state) and emits its output h and its interface vector ``clamp(W h + b, ±clip)``;
2. each head group addresses the memory *as it was after the previous step*, and its
   read heads read it (a ``dnc_memory``'s group runs the memory's whole step here: usage,
   allocation, write, links, then reads of the new memory; see :mod:`cogdsl.blocks.dnc`);
3. story memories, reasoning blocks, encoders and attention blocks run in their place;
4. outputs: ``activation(W [sources] + b)``;
5. each NTM memory applies all of this step's writes at once.

The state is a dict whose keys belong to the units that make them: controller states (``NAME``), each
memory (``NAME``), each head group's weightings (``weights:INDEX``, and ``lru:INDEX``), a whole input
(``seq:NAME``), what encoders and attention keep (``seq:NAME``, ``keys:NAME``, ``look:NAME``), and the
values read with ``@prev`` (``prev:NAME``). A ``sequence`` or ``image`` input, (B, S, size) or (B, H, W),
is given whole and seen by every step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cogdsl.blocks import REGISTRY
from cogdsl.blocks.named import NamedModules
from cogdsl.blocks.runtime import Build, ModuleUnit, State, Step, StepOut, Unit
from cogdsl.compiler.shapes import Shapes
from cogdsl.language.spec import WHOLE_KINDS, Output, Spec
from cogdsl.reinforce import Decision

_OUTPUT_ACTIVATIONS = {
    None: None, "none": None,
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
    "softmax": lambda x: torch.softmax(x, dim=-1),
    "pointer": lambda x: torch.softmax(x, dim=-1),  # over the source positions (a pointer block's scores)
}

# Where modules live, in this order (a checkpoint's parameter names, and the order of the parameters that
# an optimizer's saved state follows): <container>.<block>.<...>, then groups.<index>.<...>, outputs.<name>.
CONTAINERS = ("controllers", "interfaces", "memories", "layers", "encoders", "attentions")


class OutputUnit(ModuleUnit):
    """An output's step: ``activation(W [sources] + b)``, or the value of the one block it reads when that is
    already its logits (a DRAW canvas), or a pointer block's scores over the source positions (``pointer(NAME)``,
    (B, n)). ``raw``: the logits; what ``y@prev`` reads is the output itself."""

    def __init__(self, b: Build, output: Output):
        shapes, name = b.shapes, output.name
        self.name = name
        self.pointer = shapes.pointer_of.get(name)  # pointer(NAME): the scores NAME posts, (B, n), are the logits
        self.layer = b.add("outputs", name, nn.Identity() if name in shapes.logits_of or self.pointer
                           else nn.Linear(shapes.input_sizes[name], output.size.data))
        activation = output.activation.data if output.activation else None
        self.activation = _OUTPUT_ACTIVATIONS[activation]
        self.prev_key = f"prev:{name}" if name in shapes.delayed else None
        self.tied = name in shapes.tied_answers
        shown = activation or "none"
        self.line = (f"output {name}: softmax over the n source positions of the scores of {self.pointer}, (B, n), "
                     "no layer" if self.pointer else
                     f"output {name}: {shown}({shapes.logits_of[name]}), its value as the logits, no layer"
                     if name in shapes.logits_of else
                     f"output {name}: {shown}(linear {shapes.input_sizes[name]} -> {shapes.sizes[name]}) "
                     f"from [{', '.join(str(r) for r in output.sources)}]")

    def step(self, step: Step) -> StepOut:
        y = step.taken("pointer", self.pointer)[-1] if self.pointer else self.layer(step.gather(self.name))
        if self.activation is None:
            return StepOut(y)
        if not step.raw:
            return StepOut(self.activation(y))
        return StepOut(y, state={self.prev_key: self.activation(y)} if self.prev_key else {})

    def parameter_counts(self) -> dict[str, int]:  # a tied weight is the memory's word table, counted there
        return {self.name: sum(p.numel() for key, p in self.layer.named_parameters()
                               if not (self.tied and key == "weight"))}


# An input's shape at one step (CompiledModel.step), by its kind.
STEP_SHAPES = {"vector": (2, "(B, size)"), "words": (2, "(B, words) of word ids"),
               "sentences": (3, "(B, sentences, words) of word ids"),
               "sequence": (3, "(B, S, size), the whole sequence"), "image": (3, "(B, size, size), the whole image")}


class CompiledModel(nn.Module):
    """The model a spec describes.

    ``forward(x)`` runs a batch-first sequence, x (B, T, input size) → y (B, T, output
    size); with several inputs or outputs, dicts by name. ``initial_state(batch)`` and
    ``step(x_t, state)`` run one step at a time.

    It is made of units (:mod:`cogdsl.blocks.runtime`), one per block, head group and output, each built
    by its kind; :attr:`units` holds the ones a step runs, in the order shape inference gave.
    """

    def __init__(self, spec: Spec, shapes: Shapes):
        super().__init__()
        self.spec = spec
        self.shapes = shapes
        self.input_names = tuple(i.name for i in spec.inputs)
        self.output_names = tuple(o.name for o in spec.outputs)
        self.sources = {b.name: tuple((r.name, r.delay) for r in b.sources) for b in spec.blocks}
        self.sources.update({o.name: tuple((r.name, r.delay) for r in o.sources) for o in spec.outputs})
        self.input_kinds = {i.name: str(i.kind.data) for i in spec.inputs}
        for container in CONTAINERS:
            setattr(self, container, NamedModules())
        self.groups = nn.ModuleList()
        self.outputs = NamedModules()

        by_name: dict[str, Unit] = {}
        for block in spec.blocks:
            unit = REGISTRY[block.kind].build(Build(spec, shapes, self, block))
            if unit is not None:
                by_name[block.name] = unit
        group_units: list[Unit] = []
        for index, plan in enumerate(shapes.groups):
            group_units.append(REGISTRY[plan.kind].group_unit(Build(spec, shapes, self), index, plan,
                                                              _group_offset(shapes, index)))
            by_name[f"group:{index}"] = group_units[-1]
        for output in spec.outputs:
            by_name[output.name] = OutputUnit(Build(spec, shapes, self), output)
        for output, block in shapes.tied_answers.items():  # W^T = C^K: one parameter, two places
            by_name[block].tie_answer(self.outputs[output], shapes.read_plans[block].value_tables[-1])
        self.all_units: tuple[Unit, ...] = tuple(by_name.values())
        self.group_units: tuple[Unit, ...] = tuple(group_units)
        self.units: tuple[Unit, ...] = tuple(by_name[f"group:{name}" if kind == "group" else name]
                                             for kind, name in shapes.order)
        self.order = shapes.order

        # Whole inputs (sequences, images): each is kept in the state from the first step on, so encoders
        # run once, and so does the projection of the keys of attention that looks over one.
        self.sequence_keys = tuple((i.name, f"seq:{i.name}") for i in spec.inputs if i.kind.data in WHOLE_KINDS)
        # Readers of an image that take a vector read its pixels: (B, H, W) -> (B, H·W).
        images = {i.name for i in spec.inputs if i.kind.data == "image"}
        blocks = {b.name: b for b in spec.blocks}
        self.flatten = {name: tuple(src in images and not (name in blocks and "image" in REGISTRY[
            blocks[name].kind].takes) for src, _ in refs) for name, refs in self.sources.items()}
        self.delayed = tuple(sorted(shapes.delayed))
        self.prev_keys = tuple((name, f"prev:{name}") for name in self.delayed)
        # Blocks that sample and learn by REINFORCE; blocks whose every step adds a penalty to the loss.
        self.stochastic = frozenset(name for unit in self.all_units if unit.samples for name in unit.blocks())
        self.penalized = frozenset(u.name for u in self.all_units if u.penalizes)
        self.weight_keys = tuple(f"weights:{i}" for i in range(len(self.groups)))

    @property
    def fused(self) -> tuple[bool, ...]:
        """For each head group, whether it runs as one ``ops.memory_step`` call (settable, to compare)."""
        return tuple(bool(getattr(unit, "fused", False)) for unit in self.group_units)

    @fused.setter
    def fused(self, value: tuple[bool, ...]) -> None:
        for unit, fused in zip(self.group_units, value, strict=True):
            unit.fused = fused  # type: ignore[attr-defined]

    @property
    def clips(self) -> dict[str, float]:
        """Each controller's interface clip."""
        return {u.name: u.clip for u in self.all_units if hasattr(u, "clip")}  # type: ignore[attr-defined]

    @property
    def attended(self) -> dict[str, str]:
        """Each block that looks over something (``on``): what it looks over."""
        return {u.name: u.target for u in self.all_units if u.target is not None}

    @property
    def activations(self) -> dict[str, Any]:
        """Each output's activation function (None: none)."""
        return {u.name: u.activation for u in self.all_units if isinstance(u, OutputUnit)}

    @property
    def read_memory(self) -> dict[str, str]:
        """Each reasoning block: the story memory it reads."""
        return {u.name: u.memory for u in self.all_units if hasattr(u, "tie_answer")}  # type: ignore[attr-defined]

    # -- state -------------------------------------------------------------------
    def initial_state(self, batch: int, like: torch.Tensor | None = None) -> State:
        """The state before the first step. ``like`` gives dtype and device (default: the parameters')."""
        if like is None:
            like = next(self.parameters())
        state: State = {}
        initial_values: dict[str, torch.Tensor] = {}
        for unit in self.all_units:
            state.update(unit.initial_state(batch, like))
            initial_values.update(unit.initial_values(batch, like))
        for name, key in self.prev_keys:
            state[key] = initial_values[name] if name in initial_values else like.new_zeros(
                batch, self.shapes.sizes[name])
        return state

    # -- one step ------------------------------------------------------------------
    def step(self, x_t: torch.Tensor | dict[str, torch.Tensor], state: State, *, raw: bool = False,
             trace: dict[str, list[torch.Tensor]] | None = None,
             decisions: list[Decision] | None = None,
             penalties: list[torch.Tensor] | None = None) -> tuple[Any, State]:
        """One time step: x_t (B, input size) or a dict by input name → (y_t, new state).

        ``raw=True`` returns outputs before their activation (logits, for the loss);
        ``trace``, if given, collects each head block's weightings (B, heads, N) by name,
        and for a ``dnc_memory`` its usage (B, N) as ``"MEMORY:usage"`` and each read
        block's read modes (B, heads, modes) as ``"BLOCK:modes"``; for a reasoning block,
        each hop's (or episode's) attention over the slots (B, hops, M) by name, and the
        story row of each slot (B, M), -1 for an empty slot, as ``"MEMORY:rows"``; for an
        attention block, its weights over what it looks over (B, heads, S); for a ``glimpse``, its
        location (B, 2), and for a ``spatial_transformer``, its transform theta (B, 6).
        ``decisions``, if given, collects the :class:`~cogdsl.reinforce.Decision` of each block
        that sampled (training mode only); ``penalties``, if given, each ``latent`` block's KL
        divergence to its prior, (B,).
        """
        values: dict[str, Any] = self._inputs(x_t, state)
        new_state: State = {}
        # A whole input other than the one the state holds: what was computed from it is computed again.
        fresh = any(state.get(key) is not values[name] for name, key in self.sequence_keys)
        for name, key in self.sequence_keys:
            new_state[key] = values[name]
        step = Step(values, state, self._gather, raw=raw, tracing=trace is not None, fresh=fresh)
        for unit in self.units:
            try:
                out = unit.step(step)
            except KeyError as err:
                if err.args and isinstance(err.args[0], str) and err.args[0] not in state and err.args[0] in (
                        self.initial_state(1, torch.zeros(1))):
                    raise ValueError(f"the state has no '{err.args[0]}': start a sequence from "
                                     "model.initial_state(batch) and pass on the state each step returns") from None
                raise
            if out.value is not None:
                values[unit.name] = out.value
            values.update(out.values)
            new_state.update(out.state)
            if trace is not None:
                for key, shown in out.trace.items():
                    trace.setdefault(key, []).append(shown)
            if decisions is not None:
                decisions.extend(out.decisions)
            if penalties is not None:
                penalties.extend(out.penalties)
        for name, key in self.prev_keys:
            if key not in new_state:
                new_state[key] = values[name]
        if len(self.output_names) == 1:
            return values[self.output_names[0]], new_state
        return {name: values[name] for name in self.output_names}, new_state

    def _inputs(self, x_t: torch.Tensor | dict[str, torch.Tensor], state: State) -> dict[str, torch.Tensor]:
        if isinstance(x_t, dict):
            given = dict(x_t)
            for name, key in self.sequence_keys:  # a whole sequence, given at the first step, is in the state
                if name not in given and key in state:
                    given[name] = state[key]
            missing = set(self.input_names) - set(given)
            if missing:
                raise ValueError(f"missing inputs {sorted(missing)}; the model takes {list(self.input_names)}")
        elif len(self.input_names) != 1:
            raise ValueError(f"this model has inputs {list(self.input_names)}: pass a dict by name")
        else:
            given = {self.input_names[0]: x_t}
        for name, value in given.items():
            self._check_step_input(name, value)
        return self._in_dtype(given)

    def _check_step_input(self, name: str, value: Any) -> None:
        """One step's input against its kind: only its rank and last size are read (no device sync)."""
        kind = self.input_kinds.get(name)
        if kind is None:
            raise ValueError(f"unknown input '{name}'; the model takes {list(self.input_names)}")
        dims, shape = STEP_SHAPES[kind]
        if not isinstance(value, torch.Tensor) or value.dim() != dims:
            got = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"input '{name}' at one step: expected {shape}, got {got}")
        expected = self.shapes.sizes.get(name)
        if kind in ("vector", "sequence") and value.shape[-1] != expected:
            raise ValueError(f"input '{name}' has size {value.shape[-1]}, the spec says {expected}")

    def _in_dtype(self, given: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A step's vector inputs in the parameters' dtype (a float64 step of a float32 model is converted, and
        0/1 bits given as integers or bools)."""
        parameter = next(self.parameters(), None)
        if parameter is None or not parameter.is_floating_point():
            return given
        for name, value in given.items():
            if self.input_kinds.get(name) == "vector" and not value.is_complex() and value.dtype != parameter.dtype:
                given[name] = value.to(parameter.dtype)
        return given

    def _gather(self, name: str, step: Step) -> torch.Tensor:
        values, state = step.values, step.state
        parts = [state[f"prev:{src}"] if delay else values[src].flatten(1) if flat else values[src]
                 for (src, delay), flat in zip(self.sources[name], self.flatten[name], strict=True)]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    # -- the step, compiled ---------------------------------------------------------------
    def compile_step(self, mode: str | None = None, *, backend: Any = "inductor",
                     fullgraph: bool = False) -> CompiledModel:
        """Run :meth:`forward`'s time steps through ``torch.compile(self.step)``; returns the model.

        The step is compiled on its first call, once per input shape and mode (training or eval), and
        reused for every sequence length, since a sequence is a loop over the same step. ``mode`` is
        ``torch.compile``'s (``"reduce-overhead"``: CUDA graphs on a GPU); ``backend`` and ``fullgraph``
        too. Every op in :mod:`cogdsl.ops` is a custom op on the Triton backend and a traceable
        ``autograd.Function`` on the torch backend, so the whole step is one graph
        (``tests/compiler/test_compiled_step.py`` counts the graph breaks: none). ``compile_step(None)``
        with ``backend=None`` goes back to the eager step. Dynamo's cache (8 graphs) is shared by every
        model's step in a process: compile a few models per process, or ``torch._dynamo.reset()`` between.
        """
        if backend is None:
            self.__dict__.pop("_compiled_step", None)
            return self
        # Kept out of nn.Module's attributes: state_dict, .to() and pickling never see it.
        self.__dict__["_compiled_step"] = torch.compile(self.step, mode=mode, backend=backend, fullgraph=fullgraph)
        return self

    @property
    def step_compiled(self) -> bool:
        """Whether :meth:`forward` runs a compiled step (:meth:`compile_step`)."""
        return "_compiled_step" in self.__dict__

    @property
    def step_function(self) -> Any:
        """The step :meth:`forward` runs: the compiled one after :meth:`compile_step`, else :meth:`step`."""
        return self.__dict__.get("_compiled_step", self.step)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_compiled_step", None)  # a compiled function does not pickle; compile again after loading
        return state

    # -- a whole sequence -------------------------------------------------------------
    def forward(self, x: torch.Tensor | dict[str, torch.Tensor], state: State | None = None, *,
                raw: bool = False, return_weights: bool = False, steps: int | None = None,
                decisions: list[Decision] | None = None, penalties: list[torch.Tensor] | None = None) -> Any:
        """Run a batch-first sequence, x (B, T, I) → y (B, T, O) (dicts by name for several).

        A ``sequence`` input is given whole, (B, S, size), and seen by every step; a model whose
        inputs are all sequences runs ``steps`` steps (e.g. the length of the output it should
        write). ``raw=True``: outputs before their activation. ``return_weights=True``: also
        return each head block's weightings, (B, T, heads, N), as a dict by block name (with a
        ``dnc_memory``'s usage and read modes, and each attention block's weights over what it
        looks over, see :meth:`step`). An ``image`` input is given whole too, (B, size, size).
        ``decisions``: a list that collects what the sampling blocks chose, for REINFORCE
        (:func:`cogdsl.reinforce.reinforce_loss`); ``penalties``: a list that collects each step's
        penalties (B,) to add to the loss (a ``latent``'s KL divergence, :mod:`cogdsl.blocks.latent`).
        """
        given = self._check_sizes(x)
        per_step = {k: v for k, v in given.items() if self.input_kinds.get(k) not in WHOLE_KINDS}
        whole = {k: v for k, v in given.items() if self.input_kinds.get(k) in WHOLE_KINDS}
        first = next(iter(given.values()))
        if per_step:
            lengths = {int(v.shape[1]) for v in per_step.values()}
            if steps is not None and lengths != {steps}:
                raise ValueError(f"steps={steps}, but the inputs have {sorted(lengths)} time steps")
            steps = next(iter(per_step.values())).shape[1]
            if steps == 0:
                raise ValueError(f"the inputs have 0 time steps (shape {tuple(first.shape)}): a sequence needs at "
                                 "least one")
        elif steps is None or steps < 1:
            raise ValueError("every input of this model is given whole (a sequence or an image): pass steps=T, "
                             "the number of steps to run")
        batch = first.shape[0]
        if state is None:
            floating = next((v for v in given.values() if v.is_floating_point()), None)
            state = self.initial_state(batch, floating)
        trace: dict[str, list[torch.Tensor]] | None = {} if return_weights else None
        step = self.step_function
        # Time first and contiguous, so every step's input has the same strides whatever the length
        # (a compiled step is then reused for every length).
        per_step = {k: v.transpose(0, 1).contiguous() for k, v in per_step.items()}
        ys: list[Any] = []
        for t in range(steps):
            x_t = {**{k: v[t] for k, v in per_step.items()}, **whole} if isinstance(x, dict) else (
                per_step[self.input_names[0]][t] if per_step else first)
            y_t, state = step(x_t, state, raw=raw, trace=trace, decisions=decisions, penalties=penalties)
            ys.append(y_t)
        if isinstance(ys[0], dict):
            y: Any = {name: torch.stack([y_t[name] for y_t in ys], dim=1) for name in self.output_names}
        else:
            y = torch.stack(ys, dim=1)
        if return_weights:
            assert trace is not None
            return y, {name: torch.stack(steps_, dim=1) for name, steps_ in trace.items()}
        return y

    def _check_sizes(self, x: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The inputs by name, each checked against its kind and size; values (vectors, sequences, images) in
        another dtype than the model's parameters (float64 from NumPy, say) are converted to theirs."""
        given = x if isinstance(x, dict) else {self.input_names[0]: x} if len(self.input_names) == 1 else None
        if given is None:
            raise ValueError(f"this model has inputs {list(self.input_names)}: pass a dict by name")
        parameter = next(self.parameters(), None)
        dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else None
        given = dict(given)
        for name, tensor in given.items():
            kind_of = self.input_kinds.get(name)
            if dtype is not None and tensor.dtype != dtype and (
                    (kind_of in ("vector", "sequence") and not tensor.is_complex())
                    or (kind_of == "image" and tensor.is_floating_point())):
                tensor = given[name] = tensor.to(dtype)  # float64 from NumPy, or 0/1 bits as integers or bools
            if name not in self.input_names:
                raise ValueError(f"unknown input '{name}'; the model takes {list(self.input_names)}")
            kind = self.input_kinds[name]
            dims, shape = {"vector": (3, "(B, T, size)"), "words": (3, "(B, T, words) of word ids"),
                           "sentences": (4, "(B, T, sentences, words) of word ids"),
                           "sequence": (3, "(B, S, size), the whole sequence"),
                           "image": (3, "(B, size, size), the whole image")}[kind]
            if tensor.dim() != dims:
                raise ValueError(f"input '{name}': expected a batch-first {shape}, "
                                 f"got shape {tuple(tensor.shape)}")
            if kind == "image":
                side = self.shapes.sides[name]
                if tuple(tensor.shape[1:]) != (side, side) or not tensor.is_floating_point():
                    raise ValueError(f"input '{name}' is an image of side {side}: expected a float tensor "
                                     f"(B, {side}, {side}), got {tensor.dtype} {tuple(tensor.shape)}")
                continue
            expected = self.shapes.sizes.get(name)
            if kind in ("vector", "sequence") and tensor.shape[-1] != expected:
                raise ValueError(f"input '{name}' has size {tensor.shape[-1]}, the spec says {expected}")
            if kind in ("words", "sentences"):
                if tensor.dtype != torch.long:
                    raise ValueError(f"input '{name}' carries word ids: expected a long tensor, got {tensor.dtype}")
                # Checked on the CPU only: reading a GPU tensor's values would make the host wait for it.
                if tensor.device.type == "cpu" and tensor.numel() and (
                        int(tensor.min()) < 0 or int(tensor.max()) >= expected):
                    raise ValueError(f"input '{name}' has word ids outside 0 .. {expected - 1} (its vocab)")
        return given

    # -- training options -----------------------------------------------------------------
    def set_linear_start(self, on: bool) -> bool:
        """Linear start (MemN2N 4.2): remove (``on``) or restore the softmax of every hop.

        Returns whether the model has hops that it applies to.
        """
        hops = [layer for layer in self.layers.values() if hasattr(layer, "linear")]
        for layer in hops:
            layer.linear = on
        return bool(hops)

    # -- introspection ------------------------------------------------------------------
    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per spec block (controllers include their interface layer; a parameter
        shared by two blocks, such as a tied answer layer, counts for the first)."""
        counts: dict[str, int] = {}
        for unit in self.all_units:
            counts.update(unit.parameter_counts())
        return counts


def _group_offset(shapes: Shapes, index: int) -> int:
    plan = shapes.groups[index]
    return min(f.offset for i, f in shapes.interfaces[plan.controller] if i == index)


def lower(spec: Spec, shapes: Shapes) -> CompiledModel:
    """Build the module for a validated spec with inferred shapes."""
    return CompiledModel(spec, shapes)
