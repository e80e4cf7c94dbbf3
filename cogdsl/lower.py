"""Pass 5: a validated, shape-inferred spec becomes a :class:`CompiledModel` (a ``torch.nn.Module``).

One step runs the units of ``shapes.order``:

1. each controller reads the concatenation of its sources (``x@prev`` values come from
   the state) and emits its output h and its interface vector ``clamp(W h + b, ±clip)``;
2. each head group addresses the memory *as it was after the previous step*, and its
   read heads read it;
3. outputs: ``activation(W [sources] + b)``;
4. each memory applies all of this step's writes at once.

A ``dnc_memory`` differs: its one head group runs the memory's whole step in step 2
(usage, allocation, write, links, then reads of the *new* memory; see
:mod:`cogdsl.blocks.dnc`), and its usage, links and precedences are state too.

A story memory (``episodic_memory``, ``kv_memory``) and the reasoning blocks that read it
(``hops``, ``episodes``) are "layer" units: each runs from its sources in its place in the
order, with no state (see :mod:`cogdsl.blocks.memnet`). A question-answering spec runs one
step: its inputs are (B, 1, S, L) stories and (B, 1, L) questions of word ids.

A ``sequence`` input, (B, S, size), is given whole and seen by every step; an encoder
(``encoder``, ``self_attention``) runs over it at the first step only, and both are kept in
the state (``seq:NAME``) for the later ones. ``attention`` runs in its place in the order:
its sources are the query, and it looks over an encoder's states, a sequence input, or an
NTM memory as the previous step left it (see :mod:`cogdsl.blocks.attention`); over a
sequence, its projected keys are kept in the state too (``keys:NAME``). A block may
read an output at the previous step (``y@prev``): the output after its activation.

An ``image`` input, (B, H, W), is also given whole: a ``conv`` encoder reads it once, and
``glimpse`` and ``spatial_transformer`` look at it at every step, in their place in the
order (see :mod:`cogdsl.blocks.visual`); a controller or output that reads it reads its
pixels as one vector. Blocks that sample (``glimpse``, hard ``attention``) record a
:class:`~cogdsl.reinforce.Decision` per step for REINFORCE, when asked to.

A memory whose only writer is one NTM-addressed head group has steps 2 and 4 done by one
``ops.ntm_memory_step`` call (one fused kernel on CUDA); the new memory is computed early but
only becomes the state for the next step, so the order above is unchanged.

The state is a dict: controller states, each memory, each head group's previous
weightings (and an ``lru`` group's moving average of its content logits), and the values read with ``@prev``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cogdsl import ops
from cogdsl.blocks import REGISTRY
from cogdsl.blocks.base import LookKind, looked_at_size
from cogdsl.infer import Shapes
from cogdsl.named import NamedModules
from cogdsl.reinforce import Decision
from cogdsl.spec import WHOLE_KINDS, Spec

State = dict[str, Any]

_OUTPUT_ACTIVATIONS = {
    None: None, "none": None,
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
    "softmax": lambda x: torch.softmax(x, dim=-1),
}


class CompiledModel(nn.Module):
    """The model a spec describes.

    ``forward(x)`` runs a batch-first sequence, x (B, T, input size) → y (B, T, output
    size); with several inputs or outputs, dicts by name. ``initial_state(batch)`` and
    ``step(x_t, state)`` run one step at a time.
    """

    def __init__(self, spec: Spec, shapes: Shapes):
        super().__init__()
        self.spec = spec
        self.shapes = shapes
        self.input_names = tuple(i.name for i in spec.inputs)
        self.output_names = tuple(o.name for o in spec.outputs)
        blocks = {b.name: b for b in spec.blocks}
        self.sources = {b.name: tuple((r.name, r.delay) for r in b.sources) for b in spec.blocks}
        self.sources.update({o.name: tuple((r.name, r.delay) for r in o.sources) for o in spec.outputs})

        self.controllers = NamedModules()
        self.interfaces = NamedModules()
        self.clips: dict[str, float] = {}
        self.memories = NamedModules()
        self.layers = NamedModules()
        self.read_memory: dict[str, str] = {}  # reasoning block -> the story memory it reads
        self.encoders = NamedModules()
        self.attentions = NamedModules()
        self.attended: dict[str, str] = {}  # attention block -> the sequence or memory it looks over
        self.input_kinds = {i.name: str(i.kind.data) for i in spec.inputs}
        for name, block in blocks.items():
            kind = REGISTRY[block.kind]
            params = shapes.params[name]
            if kind.family == "controller":
                self.controllers[name] = kind.build(params, shapes.input_sizes[name])
                if shapes.interface_sizes.get(name):
                    self.interfaces[name] = nn.Linear(params["hidden"], shapes.interface_sizes[name])
                self.clips[name] = params["clip"]
            elif kind.family == "memory" and kind.read_by == "reasoning":
                self.layers[name] = kind.build(params, shapes.vocabs[name], shapes.tables[name])
            elif kind.family == "memory":
                self.memories[name] = kind.build(params)
            elif kind.family == "reasoning":
                assert block.memory is not None
                self.layers[name] = kind.build(params, shapes.read_plans[name],
                                               shapes.params[block.memory.name]["embedding"])
                self.read_memory[name] = block.memory.name
            elif kind.family == "encoder":
                self.encoders[name] = kind.build(params, shapes.input_sizes[name])
            elif kind.kind == "summary":
                assert block.memory is not None
                self.attentions[name] = kind.build(params, shapes.params.get(block.memory.name, {}).get(
                    "bidirectional", False))
                self.attended[name] = block.memory.name
            elif issubclass(kind, LookKind):
                self.attentions[name] = kind.build(params, shapes.input_sizes[name],
                                                   looked_at_size(block, shapes.sizes, shapes.sides))
                if block.memory is not None:
                    self.attended[name] = block.memory.name
            elif kind.family == "attention":
                assert block.memory is not None
                key_size = shapes.sizes[name] // params["heads"]  # its value is heads x D
                self.attentions[name] = kind.build(params, shapes.input_sizes[name], key_size)
                self.attended[name] = block.memory.name
        # Whole sequences: each is kept in the state from the first step on, so encoders run once,
        # and so does the projection of the keys of attention that looks over one (U k_i, additive).
        self.sequence_keys = tuple((i.name, f"seq:{i.name}") for i in spec.inputs if i.kind.data in WHOLE_KINDS)
        # Blocks that look at something (LookKind): name -> the state key of a stateful one, else None.
        self.looks = {name: f"look:{name}" if REGISTRY[block.kind].stateful else None
                      for name, block in blocks.items() if issubclass(REGISTRY[block.kind], LookKind)}
        # Blocks whose every step adds a penalty to the loss (a latent's KL divergence to its prior).
        self.penalized = frozenset(name for name, module in {**self.attentions, **self.controllers}.items()
                                   if getattr(module, "penalizes", False))
        # Readers of an image that take a vector read its pixels: (B, H, W) -> (B, H·W).
        images = {i.name for i in spec.inputs if i.kind.data == "image"}
        self.flatten = {name: tuple(src in images and not (name in blocks and "image" in REGISTRY[
            blocks[name].kind].takes) for src, _ in refs) for name, refs in self.sources.items()}
        sequences = {name for name, _ in self.sequence_keys} | set(self.encoders)
        self.fixed_keys = {name for name, target in self.attended.items() if target in sequences}
        self.groups = nn.ModuleList(
            REGISTRY[plan.kind].group_module(plan, shapes.params[plan.memory], _group_offset(shapes, i))
            for i, plan in enumerate(shapes.groups)
        )
        # Blocks that sample, and learn where to look by REINFORCE (hard attention, glimpses, and the
        # head blocks of a group with hard addressing).
        self.stochastic = frozenset(name for name, module in self.attentions.items()
                                    if getattr(module, "samples", False)) | frozenset(
            block for group in self.groups if getattr(group, "samples", False)
            for block, _ in group.plan.reads + group.plan.writes)
        # An output that reads only a block whose value is already logits (a DRAW canvas) has no layer.
        self.outputs = NamedModules({
            o.name: nn.Identity() if o.name in shapes.logits_of else nn.Linear(shapes.input_sizes[o.name], o.size.data)
            for o in spec.outputs
        })
        self.activations = {o.name: _OUTPUT_ACTIVATIONS[o.activation.data if o.activation else None]
                            for o in spec.outputs}
        for output, block in shapes.tied_answers.items():  # W^T = C^K: one parameter, two places
            table = shapes.read_plans[block].value_tables[-1]
            self.outputs[output].weight = self.layers[self.read_memory[block]].words[table].weight
        self.order = shapes.order
        self.delayed = tuple(sorted(shapes.delayed))
        # Fixed for the model, so the step loop only looks them up: state keys, and each
        # head block's (start, stop) among its group's heads.
        self.weight_keys = tuple(f"weights:{i}" for i in range(len(self.groups)))
        # An lru group's moving average of its content logits (Dynamic NTM), by group index.
        self.usage_keys = {i: f"lru:{i}" for i, group in enumerate(self.groups)
                           if getattr(group, "lru_decay", None) is not None}
        self.prev_keys = tuple((name, f"prev:{name}") for name in self.delayed)
        self.head_slices = tuple(_head_slices(group.plan.reads + group.plan.writes) for group in self.groups)
        writers = [group.plan.memory for group in self.groups if group.plan.writes]
        # A memory's only writer, with NTM addressing, runs addressing, reads and write as one op.
        self.fused = tuple(group.fusable and writers.count(group.plan.memory) == 1 for group in self.groups)
        written = set(writers) | {group.plan.memory for group in self.groups if group.owns_memory}
        self.unwritten = tuple(name for name in self.memories if name not in written)

    # -- state -------------------------------------------------------------------
    def initial_state(self, batch: int, like: torch.Tensor | None = None) -> State:
        """The state before the first step. ``like`` gives dtype and device (default: the parameters')."""
        if like is None:
            like = next(self.parameters())
        state: State = {}
        for name, controller in self.controllers.items():
            state[name] = controller.initial_state(batch, like)
        for name, memory in self.memories.items():
            state[name] = memory.initial_state(batch, like)
        for name, key in self.looks.items():
            if key is not None:
                state[key] = self.attentions[name].initial_state(batch, like)
        for index, (key, group) in enumerate(zip(self.weight_keys, self.groups, strict=True)):
            slots = self.memories[group.plan.memory].slots
            state[key] = group.initial_weights(batch, slots, like)
            if index in self.usage_keys:
                state[self.usage_keys[index]] = group.initial_usage(batch, slots, like)
            if group.owns_memory:
                state.update(group.initial_state(batch, like))
        read_init = {name: p for group in self.groups for name, p in group.read_init.items()}
        for name, key in self.prev_keys:
            if name in read_init:
                state[key] = read_init[name].to(like.dtype).expand(batch, -1)
            else:
                state[key] = like.new_zeros(batch, self.shapes.sizes[name])
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
        values: dict[str, torch.Tensor] = self._inputs(x_t, state)
        new_state: State = {}
        # A sequence other than the one the state holds: its encoders run again.
        fresh = any(state.get(key) is not values[name] for name, key in self.sequence_keys)
        for name, key in self.sequence_keys:
            new_state[key] = values[name]
        fed_back: dict[str, torch.Tensor] = {}
        interfaces: dict[str, torch.Tensor] = {}
        pending_writes: dict[str, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {}
        fused_writes: dict[str, torch.Tensor] = {}
        addressed: dict[str, torch.Tensor] = {}  # each memory as heads see it, [addresses ; contents], once a step
        for unit, name in self.order:
            if unit == "controller":
                controller_input = self._gather(name, values, state)
                controller = self.controllers[name]
                h, new_state[name] = controller(controller_input, state[name])
                values[name] = h
                if trace is not None:  # when a multiscale controller's units ran (clockwork, skip_rnn, hm_rnn)
                    for what, shown in getattr(controller, "traced", {}).items():
                        trace.setdefault(f"{name}:{what}", []).append(shown)
                if penalties is not None and getattr(controller, "penalty", None) is not None:
                    penalties.append(controller.penalty)  # a skip_rnn's cost of its updates
                if name in self.interfaces:
                    interface = self.interfaces[name](h)
                    clip = self.clips[name]
                    interfaces[name] = interface.clamp(-clip, clip) if clip > 0 else interface
            elif unit == "group":
                index = int(name)
                group = self.groups[index]
                plan = group.plan
                key = self.weight_keys[index]
                if group.owns_memory:  # a dnc_memory: usage, write, links, then reads of the new memory
                    weights, reads, new_state[plan.memory], updates, extras = group.step(
                        interfaces[plan.controller], state[plan.memory], state[key], state)
                    new_state.update(updates)
                    writes = None
                    if trace is not None:
                        trace.setdefault(f"{plan.memory}:usage", []).append(extras["usage"])
                        if "modes" in extras:
                            for block, start, stop in self.head_slices[index][:len(plan.reads)]:
                                trace.setdefault(f"{block}:modes", []).append(extras["modes"][:, start:stop])
                elif self.fused[index]:
                    weights, reads, new_memory = group.address_read_write(
                        interfaces[plan.controller], state[plan.memory], state[key])
                    writes = None
                    fused_writes[plan.memory] = new_memory
                else:
                    if plan.memory not in addressed:
                        addressed[plan.memory] = self.memories[plan.memory].addressed(state[plan.memory])
                    usage_key = self.usage_keys.get(index)
                    weights, reads, writes, usage = group(
                        interfaces[plan.controller], addressed[plan.memory], state[key],
                        None if usage_key is None else state[usage_key])
                    if usage_key is not None:
                        new_state[usage_key] = usage
                if decisions is not None and getattr(group, "decision", None) is not None:
                    decisions.append(group.decision)
                new_state[key] = weights
                slices = self.head_slices[index]
                if reads is not None:
                    for block, start, stop in slices[:len(plan.reads)]:
                        values[block] = reads[:, start:stop].reshape(reads.shape[0], -1)
                if writes is not None:
                    pending_writes.setdefault(plan.memory, []).append(writes)
                if trace is not None:
                    for block, start, stop in slices:
                        trace.setdefault(block, []).append(weights[:, start:stop])
            elif unit == "layer":
                source = self.sources[name][0][0]
                if name in self.read_memory:
                    memory = self.read_memory[name]
                    values[name], attention = self.layers[name](values[source], self.layers[memory], values[memory])
                    if trace is not None:
                        trace.setdefault(name, []).append(attention)
                        trace.setdefault(f"{memory}:rows", []).append(values[memory].rows)
                else:
                    values[name] = self.layers[name](values[source])
            elif unit == "encoder":
                key = f"seq:{name}"
                values[name] = (state[key] if key in state and not fresh
                                else self.encoders[name](self._gather(name, values, state)))
                new_state[key] = values[name]
            elif unit == "attention":
                target = self.attended.get(name)
                keys = None if target is None else values[target] if target in values else state[target]
                if name in self.looks:  # a glimpse, a spatial transformer, a window, a DRAW read or write
                    module, query = self.attentions[name], self._gather(name, values, state)
                    key = self.looks[name]
                    if key is not None:
                        values[name], where, new_state[key] = module(query, keys, state[key])
                        if trace is not None:  # a state that is not one tensor says what to show of it
                            shown = getattr(module, "traced_state", None)
                            trace.setdefault(f"{name}:state", []).append(
                                new_state[key] if shown is None else shown(new_state[key]))
                    else:
                        values[name], where = module(query, keys)
                    if trace is not None:
                        trace.setdefault(name, []).append(where)
                    if decisions is not None and getattr(module, "decision", None) is not None:
                        decisions.append(module.decision)
                    if penalties is not None and getattr(module, "penalty", None) is not None:
                        penalties.append(module.penalty)
                    continue
                if not self.sources[name]:  # a summary: no query
                    values[name] = self.attentions[name](keys)
                    continue
                attention = self.attentions[name]
                projected: torch.Tensor | None = None
                if name in self.fixed_keys:
                    cache = f"keys:{name}"
                    projected = state[cache] if cache in state and not fresh else attention.project_keys(keys)
                    if projected is not None:
                        new_state[cache] = projected
                values[name], weights = attention(self._gather(name, values, state), keys, projected,
                                                  with_weights=trace is not None)
                if trace is not None:
                    trace.setdefault(name, []).append(weights)
                if decisions is not None and attention.decision is not None:
                    decisions.append(attention.decision)
            elif unit == "output":
                y = self.outputs[name](self._gather(name, values, state))
                activation = self.activations[name]
                values[name] = y if raw or activation is None else activation(y)
                if raw and activation is not None:  # what y@prev reads is the output itself
                    fed_back[name] = activation(y)
            elif name in fused_writes:  # "write", done already by the memory's only (fused) group
                new_state[name] = fused_writes[name]
            else:  # "write": every write head of this memory, at once
                writes = pending_writes[name]
                if len(writes) == 1:
                    weights, erase, add = writes[0]
                else:
                    weights, erase, add = (torch.cat(parts, dim=1) for parts in zip(*writes, strict=True))
                new_state[name] = ops.write(state[name], weights, erase, add)
        for name in self.unwritten:
            new_state[name] = state[name]
        for name, key in self.prev_keys:
            new_state[key] = fed_back[name] if name in fed_back else values[name]
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
            return self._in_dtype(given)
        if len(self.input_names) != 1:
            raise ValueError(f"this model has inputs {list(self.input_names)}: pass a dict by name")
        return self._in_dtype({self.input_names[0]: x_t})

    def _in_dtype(self, given: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A step's vector inputs in the parameters' dtype (a float64 step of a float32 model is converted)."""
        parameter = next(self.parameters(), None)
        if parameter is None or not parameter.is_floating_point():
            return given
        for name, value in given.items():
            if self.input_kinds.get(name) == "vector" and value.is_floating_point() and value.dtype != parameter.dtype:
                given[name] = value.to(parameter.dtype)
        return given

    def _gather(self, name: str, values: dict[str, torch.Tensor], state: State) -> torch.Tensor:
        parts = [state[f"prev:{src}"] if delay else values[src].flatten(1) if flat else values[src]
                 for (src, delay), flat in zip(self.sources[name], self.flatten[name], strict=True)]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

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
        elif steps is None or steps < 1:
            raise ValueError("every input of this model is given whole (a sequence or an image): pass steps=T, "
                             "the number of steps to run")
        batch = first.shape[0]
        if state is None:
            floating = next((v for v in given.values() if v.is_floating_point()), None)
            state = self.initial_state(batch, floating)
        trace: dict[str, list[torch.Tensor]] | None = {} if return_weights else None
        ys: list[Any] = []
        for t in range(steps):
            x_t = {**{k: v[:, t] for k, v in per_step.items()}, **whole} if isinstance(x, dict) else (
                first[:, t] if per_step else first)
            y_t, state = self.step(x_t, state, raw=raw, trace=trace, decisions=decisions, penalties=penalties)
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
            if (dtype is not None and self.input_kinds.get(name) in ("vector", "sequence", "image")
                    and tensor.is_floating_point() and tensor.dtype != dtype):
                tensor = given[name] = tensor.to(dtype)
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
        layer_parameters = {id(p) for layer in self.layers.values() for p in layer.parameters()}
        for name, controller in self.controllers.items():
            counts[name] = sum(p.numel() for p in controller.parameters())
            if name in self.interfaces:
                counts[name] += sum(p.numel() for p in self.interfaces[name].parameters())
        for name, memory in self.memories.items():
            counts[name] = sum(p.numel() for p in memory.parameters())
        for group in self.groups:
            for block, _ in group.plan.reads + group.plan.writes:
                counts[block] = group.read_init[block].numel() if block in group.read_init else 0
        for modules in (self.layers, self.encoders, self.attentions):
            for name, module in modules.items():
                counts[name] = sum(p.numel() for p in module.parameters())
        for name, layer in self.outputs.items():
            counts[name] = sum(p.numel() for p in layer.parameters() if id(p) not in layer_parameters)
        return counts


def _head_slices(blocks: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int, int], ...]:
    """(block, start, stop) of each head block among its group's heads, in order."""
    slices, start = [], 0
    for block, heads in blocks:
        slices.append((block, start, start + heads))
        start += heads
    return tuple(slices)


def _group_offset(shapes: Shapes, index: int) -> int:
    plan = shapes.groups[index]
    return min(f.offset for i, f in shapes.interfaces[plan.controller] if i == index)


def lower(spec: Spec, shapes: Shapes) -> CompiledModel:
    """Build the module for a validated spec with inferred shapes."""
    return CompiledModel(spec, shapes)
