"""Pass 4: the size of every value, each controller's interface layout, and the order of one step.

Sizes are derived, never written by hand:

    input            its declared size
    controller       hidden;        its input is the concatenation of its sources
    read block       heads x W of its memory
    output           its declared size; its input is the concatenation of its sources

A controller's interface vector is laid out from the heads it drives: for each head group
(:mod:`cogdsl.compiler.groups`: on an NTM memory, heads sharing controller and addressing; on a
``dnc_memory``, all of its heads) each field for all heads in turn, see
:mod:`cogdsl.blocks.heads` and :mod:`cogdsl.blocks.dnc`. The step order is a topological
order of the delay-0 wires; each NTM memory's writes come last, so every read sees the
memory of the previous step, while a ``dnc_memory``'s group writes and then reads in its
own place in the order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from cogdsl.blocks import REGISTRY
from cogdsl.blocks.base import WAITING, LookKind, looked_at_size
from cogdsl.blocks.heads import FieldSlice, GroupPlan
from cogdsl.blocks.memnet import ReadPlan
from cogdsl.compiler.graph import immediate_graph
from cogdsl.compiler.task_sizes import task_kinds
from cogdsl.compiler.validate import Validated
from cogdsl.errors import Diagnostic, DiagnosticSink
from cogdsl.language.spec import SIZE_KEYS, Spec
from cogdsl.tasks import Task
from cogdsl.training.config import TrainConfig

Unit = tuple[str, str]  # ("controller", name) | ("group", index) | ("output", name) | ("write", memory)
#                        | ("layer", name): a story memory or a reasoning block, run from its sources
#                        | ("encoder", name): run once, at the first step | ("attention", name)


@dataclass(frozen=True)
class Shapes:
    params: dict[str, dict[str, Any]]
    sizes: dict[str, int]
    input_sizes: dict[str, int]
    groups: tuple[GroupPlan, ...]
    interfaces: dict[str, tuple[tuple[int, FieldSlice], ...]]  # controller -> (group index, field slice)
    interface_sizes: dict[str, int]
    order: tuple[Unit, ...]
    delayed: frozenset[str]
    train: TrainConfig | None
    read_plans: dict[str, ReadPlan] = field(default_factory=dict)  # reasoning block -> its tables and update
    tables: dict[str, int] = field(default_factory=dict)  # story memory -> embedding tables its readers need
    vocabs: dict[str, int] = field(default_factory=dict)  # story memory -> word ids of its story
    tied_answers: dict[str, str] = field(default_factory=dict)  # output -> the hops block whose C^K is its W
    sides: dict[str, int] = field(default_factory=dict)  # image input -> its side in pixels
    logits_of: dict[str, str] = field(default_factory=dict)  # output -> the block whose value is its logits
    input_kinds: dict[str, str] = field(default_factory=dict)  # input -> its kind ("vector", "words", ...)
    pointer_of: dict[str, str] = field(default_factory=dict)  # pointer output -> the pointer block it gives


def infer(spec: Spec, graph: nx.MultiDiGraph, task: Task | None, validated: Validated, sink: DiagnosticSink
          ) -> Shapes:
    """Shapes of a validated spec with every size written (:mod:`cogdsl.compiler.task_sizes`). Where sizes do not fit
    (each kind's own checks, :meth:`BlockKind.check_shapes`, and ``task``'s sizes) E501 is reported into
    ``sink``, every one of them; the shapes returned are then incomplete and must not be lowered."""
    params = validated.params
    kinds = {b.name: REGISTRY[b.kind] for b in spec.blocks}
    sides = {i.name: i.size.data for i in spec.inputs if i.kind.data == "image"}
    # An image read where a vector is taken is its pixels, side² of them.
    sizes: dict[str, int] = {i.name: i.size.data ** 2 if i.name in sides else i.size.data for i in spec.inputs}
    for block in spec.blocks:
        kind = kinds[block.name]
        if kind.family == "controller":
            sizes[block.name] = params[block.name]["hidden"]
        elif kind.family == "head" and kind.has_output:
            assert block.memory is not None
            memory = block.memory.name
            sizes[block.name] = params[block.name]["heads"] * kinds[memory].read_width(params[memory])
        elif kind.family == "reasoning":
            assert block.memory is not None
            sizes[block.name] = params[block.memory.name]["embedding"]
    sizes.update({o.name: o.size.data for o in spec.outputs if not o.points})  # read as y@prev
    _sequence_sizes(spec, params, sizes, sides)
    read_plans: dict[str, ReadPlan] = {}
    tables: dict[str, int] = {}
    for block in spec.blocks:
        if kinds[block.name].family == "reasoning":
            assert block.memory is not None
            memory = block.memory.name
            read_plans[block.name] = kinds[block.name].read_plan(params[block.name], kinds[memory])
            tables[memory] = max(tables.get(memory, 1), read_plans[block.name].tables)
    vocabs = {b.name: sizes[b.sources[0].name] for b in spec.blocks if b.name in tables}
    input_sizes = {b.name: sum(sizes[r.name] for r in b.sources) for b in spec.blocks if b.sources}
    input_sizes.update({o.name: sum(sizes[r.name] for r in o.sources) for o in spec.outputs})

    plans = validated.groups
    interfaces: dict[str, tuple[tuple[int, FieldSlice], ...]] = {}
    interface_sizes: dict[str, int] = {}
    for index, plan in enumerate(plans):
        offset = interface_sizes.get(plan.controller, 0)
        layout = kinds[plan.memory].layout(plan, params[plan.memory], offset)
        interfaces[plan.controller] = interfaces.get(plan.controller, ()) + tuple((index, f) for f in layout)
        interface_sizes[plan.controller] = layout[-1].stop if layout else offset

    shapes = Shapes(
        params=params,
        sizes=sizes,
        input_sizes=input_sizes,
        groups=plans,
        interfaces=interfaces,
        interface_sizes=interface_sizes,
        order=_step_order(spec, graph, plans),
        delayed=frozenset(u for u, _, d in graph.edges(data=True) if d["delay"] == 1 and d["role"] == "source"),
        train=validated.train,
        read_plans=read_plans,
        tables=tables,
        vocabs=vocabs,
        sides=sides,
        logits_of=_logits_of(spec, sizes, sink),
        input_kinds={i.name: str(i.kind.data) for i in spec.inputs},
        pointer_of={o.name: o.sources[0].name for o in spec.outputs if o.points},
    )
    _check_task_shapes(spec, task, validated.train, sink)
    for block in spec.blocks:
        kinds[block.name].check_shapes(block, shapes, sink)
    return dataclasses.replace(shapes, tied_answers=_tied_answers(spec, params, vocabs, sink))


def _logits_of(spec: Spec, sizes: dict[str, int], sink: DiagnosticSink) -> dict[str, str]:
    """Output -> block, for each output that reads only a block that ``gives_logits`` (a canvas); its size
    must be the block's."""
    found: dict[str, str] = {}
    for output in spec.outputs:
        (source, *others) = output.sources or (None,)
        block = spec.block(source.name) if source is not None and not others and not source.delay else None
        if block is None or not REGISTRY[block.kind].gives_logits:
            continue
        if output.size.data != sizes[block.name]:
            sink.error("E501", f"size mismatch: output '{output.name}' is the {block.kind} '{block.name}' itself, "
                       f"{sizes[block.name]} values, but has size {output.size.data}", output.size.span,
                       f"set the size of '{output.name}' to {sizes[block.name]}")
        found[output.name] = block.name
    return found


def _sequence_sizes(spec: Spec, params: dict[str, dict[str, Any]], sizes: dict[str, int],
                    sides: dict[str, int]) -> None:
    """Add the sizes of encoders (from their input's size, in dependency order) and of attention
    blocks (heads x the size of what they look over: a sequence's elements, a memory's width)."""
    pending = [b for b in spec.blocks if REGISTRY[b.kind].family in ("encoder", "attention")]
    while pending:
        waiting = []
        for block in pending:
            kind = REGISTRY[block.kind]
            if kind.family == "encoder" and all(r.name in sizes for r in block.sources):
                sizes[block.name] = kind.output_size(params[block.name], sum(sizes[r.name] for r in block.sources))
            elif issubclass(kind, LookKind) and (target := looked_at_size(block, sizes, sides)) is not WAITING:
                sizes[block.name] = kind.value_size(params[block.name], target)
            elif kind.family == "attention" and (
                    size := kind.attended_value_size(spec, block, params, sizes)) is not None:
                sizes[block.name] = size
            else:
                waiting.append(block)
        if len(waiting) == len(pending):  # only through attention on attention, which validation refuses
            raise AssertionError(f"sizes of {[b.name for b in waiting]} depend on each other")
        pending = waiting


def _tied_answers(spec: Spec, params: dict[str, dict[str, Any]], vocabs: dict[str, int], sink: DiagnosticSink
                  ) -> dict[str, str]:
    """Output -> hops block, for each hops block with ``tie_answer``: the output that reads it alone,
    whose size must be the vocabulary (W is then (vocab, d), the shape of a word table)."""
    tied: dict[str, str] = {}
    for block in spec.blocks:
        if not params[block.name].get("tie_answer"):
            continue
        assert block.memory is not None
        vocab = vocabs[block.memory.name]
        readers = [o for o in spec.outputs if [r.name for r in o.sources] == [block.name]]
        if len(readers) != 1 or readers[0].size.data != vocab:
            sink.error("E501", f"{block.kind} '{block.name}': tie_answer needs one output that reads only "
                       f"'{block.name}' and has the vocabulary's size {vocab}", block.param_span("tie_answer"),
                       f"e.g. 'output answer: {vocab} = softmax({block.name})', or drop tie_answer")
        else:
            tied[readers[0].name] = block.name
    return tied


def _step_order(spec: Spec, graph: nx.MultiDiGraph, plans: tuple[GroupPlan, ...]) -> tuple[Unit, ...]:
    position = {name: i for i, name in enumerate([i.name for i in spec.inputs] + [b.name for b in spec.blocks]
                                                 + [o.name for o in spec.outputs])}
    group_of = {name: index for index, plan in enumerate(plans) for name, _ in plan.reads + plan.writes}
    order: list[Unit] = []
    emitted: set[int] = set()
    for node in nx.lexicographical_topological_sort(immediate_graph(graph), key=lambda n: f"{position[n]:06d}"):
        family = graph.nodes[node]["family"]
        if family == "controller":
            order.append(("controller", node))
        elif family == "head" and group_of[node] not in emitted:
            emitted.add(group_of[node])
            order.append(("group", str(group_of[node])))
        elif family == "output":
            order.append(("output", node))
        elif family == "reasoning" or (family == "memory" and REGISTRY[graph.nodes[node]["kind"]].read_by != "head"):
            order.append(("layer", node))
        elif family in ("encoder", "attention"):
            order.append((family, node))
    # A dnc_memory's group does its memory's whole step; other memories apply their writes last (or, with no
    # writer, carry their contents to the next step).
    order += [("write", b.name) for b in spec.blocks if REGISTRY[b.kind].family == "memory"
              and REGISTRY[b.kind].read_by == "head" and not REGISTRY[b.kind].owns_step]
    return tuple(order)


def _check_task_shapes(spec: Spec, task: Task | None, config: TrainConfig | None, sink: DiagnosticSink) -> None:
    """The model's inputs (matched by kind) and its one output have the sizes the task feeds and expects."""
    if task is None:
        return
    problems = []
    written = config.task_params if config is not None and config.task == task.name else {}
    what = ("your data" if task.name == "data"
            else f"task {task.name}({', '.join(f'{k}={v}' for k, v in written.items())})")
    wanted, output_size = task_kinds(spec, task)
    given = {str(i.kind.data): [j for j in spec.inputs if j.kind.data == i.kind.data] for i in spec.inputs}
    if set(given) != set(wanted) or any(len(items) != 1 for items in given.values()) or len(spec.outputs) != 1:
        feeds = " and ".join(f"one {kind} input" if kind != "vector" else "one input" for kind in wanted)
        declare = " and ".join(f"'input NAME: {kind}({SIZE_KEYS[kind]}={size})'" for kind, size in wanted.items()
                               if kind != "vector")
        problems.append(Diagnostic("E501", f"{what} needs a model with {feeds} and one output; this one has "
                                   f"{_count_inputs(spec)} and {len(spec.outputs)} output(s)", spec.model.span,
                                   None if "vector" in wanted else f"declare {declare}"))
    else:
        for kind, size in wanted.items():
            (source,) = given[kind]
            if source.size.data != size:
                fed = (f"word ids of a {size}-word vocabulary" if kind in ("words", "sentences")
                       else f"images of side {size}" if kind == "image" else f"{size} channels")
                field = SIZE_KEYS.get(kind, "size")
                problems.append(Diagnostic("E501", f"size mismatch: {what} feeds {fed} but input "
                                           f"'{source.name}' has {field} {source.size.data}", source.size.span,
                                           f"set the {field} of '{source.name}' to {size}, or leave it out to "
                                           "take the task's"))
        (target,) = spec.outputs
        exact = task.output_size_exact
        if target.points and not task.points:
            problems.append(Diagnostic(
                "E501", f"size mismatch: {what} answers with {output_size} values at each step, not with positions "
                f"in its source, and output '{target.name}' is a pointer",
                target.activation.span if target.activation is not None else target.span,
                f"give '{target.name}' a size and a layer, e.g. 'output {target.name}: {output_size} = softmax(...)', "
                "or train it on a task that answers with positions (sort(answer=positions), convex_hull)"))
        elif target.points:
            pass  # as many values as the source has positions: it fits every length
        elif target.size.data != output_size and (exact or target.size.data < output_size):
            problems.append(Diagnostic("E501", f"size mismatch: {what} expects {output_size} outputs but output "
                                       f"'{target.name}' has size {target.size.data}", target.size.span,
                                       f"set the size of '{target.name}' to {output_size}, or leave it out to "
                                       "take the task's"))
    sink.items.extend(problems)


def _count_inputs(spec: Spec) -> str:
    kinds = [str(i.kind.data) for i in spec.inputs]
    if all(kind == "vector" for kind in kinds):
        return f"{len(kinds)} input(s)"
    return ", ".join(f"{kinds.count(kind)} {kind}" for kind in dict.fromkeys(kinds)) + " input(s)"
