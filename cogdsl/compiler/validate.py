"""Pass 3: every check a spec must pass before shapes are inferred. Reports all problems, never raises.

``validate(spec, graph, sink) -> Validated`` checks, in order: the format version;
duplicate names; each input, block and output against the kind registry (kind, fields,
parameters, references, addressing); cycles without a delay; memories no head touches;
heads without a memory or controller; the heads of each memory as a whole (a
``dnc_memory``'s heads share one controller); and the ``train:`` section. What it resolved on the
way (every block's parameters with defaults, the head groups, the train config) it returns, so that no
later pass resolves them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from cogdsl.blocks import REGISTRY
from cogdsl.blocks.addressing import warn_wide_shift
from cogdsl.blocks.base import BlockKind, check_params, spelled
from cogdsl.blocks.heads import GroupPlan
from cogdsl.compiler.graph import immediate_graph
from cogdsl.compiler.groups import plan_groups
from cogdsl.errors import DiagnosticSink, Span, hint_for
from cogdsl.language.parse_cog import parse_address
from cogdsl.language.spec import INPUT_KINDS, SIZE_KEYS, SUPPORTED_VERSIONS, Block, Output, Ref, Spec
from cogdsl.training.config import TrainConfig, resolve_train

ACTIVATIONS = ("none", "sigmoid", "tanh", "relu", "softmax", "pointer")  # pointer(NAME): see _check_pointers
FIELD_SPELLING = {
    "from": "its sources (YAML 'from: [...]', .cog '<- ...')",
    "memory": "a memory (YAML 'memory: NAME', .cog 'on NAME')",
    "by": "a controller (YAML 'by: NAME', .cog 'by NAME')",
    "address": "an addressing expression (YAML 'address: \"...\"', .cog ': ...')",
}


MAX_SIZE = 2**31 - 1
"""The largest input or output size (or vocabulary) a spec may give: a tensor dimension torch indexes with
32-bit integers in places; any larger model is far over the memory budget anyway (:mod:`cogdsl.compiler.footprint`)."""


@dataclass(frozen=True)
class Validated:
    """What validation resolved: each block's parameters (defaults filled in; None for one it refused),
    the head groups (:mod:`cogdsl.compiler.groups`) and the train config (None when absent or refused)."""

    params: dict[str, dict[str, Any]]
    groups: tuple[GroupPlan, ...]
    train: TrainConfig | None


def validate(spec: Spec, graph: nx.MultiDiGraph, sink: DiagnosticSink) -> Validated:
    """Report every problem in ``spec`` into ``sink``, in source order within each check; return what was
    resolved on the way."""
    _check_version(spec, sink)
    roles = _check_names(spec, sink)
    for item in spec.inputs:
        size = item.size.data
        what = "size" if item.is_vector else SIZE_KEYS.get(str(item.kind.data), "vocab")
        if item.kind.data not in INPUT_KINDS[1:] and not item.is_vector:
            sink.error("E205", f"input '{item.name}': unknown input kind {spelled(item.kind.data)}", item.kind.span,
                       hint_for(str(item.kind.data), INPUT_KINDS[1:], "input kinds") + " (a vector input is a size)")
        elif size is None:
            pass  # left to the task (cogdsl.compiler.task_sizes), which reports it when there is no task to give it
        elif not isinstance(size, int) or isinstance(size, bool) or size < 1:
            sink.error("E204", f"input '{item.name}': {what} must be a positive integer, found {spelled(size)}",
                       item.size.span, "e.g. 'x: 9'" if item.is_vector else
                       f"e.g. '{item.name}: {item.kind.data}({what}=10)'")
        elif size > MAX_SIZE:
            sink.error("E205", f"input '{item.name}': {what} {spelled(size)} is too large", item.size.span,
                       f"allowed: 1 to {MAX_SIZE:,} (2**31 - 1)")
    kinds = {b.name: b.kind for b in reversed(spec.blocks)}
    carries: dict[str, object] = {b.name: REGISTRY[b.kind].carries for b in reversed(spec.blocks)
                                  if b.kind in REGISTRY}
    carries.update({i.name: i.kind.data for i in reversed(spec.inputs)})
    params: dict[str, dict[str, Any]] = {}
    for block in spec.blocks:
        resolved = _check_block(block, roles, kinds, sink)
        if resolved is not None:
            params.setdefault(block.name, resolved)
        if block.kind in REGISTRY and REGISTRY[block.kind].family == "attention":
            _check_attended(block, roles, kinds, carries, sink)
        if block.kind in REGISTRY and "from" in REGISTRY[block.kind].accepts:
            _check_carried(block.sources, REGISTRY[block.kind].takes, carries, f"{block.kind} '{block.name}'", sink)
    for output in spec.outputs:
        _check_output(output, roles, kinds, sink)
        _check_carried(output.sources, ("vector",), carries, f"output '{output.name}'", sink)
    _check_pointers(spec, sink)
    if not spec.outputs:
        sink.error("E007", "the spec has no outputs", spec.model.span,
                   "add an output, e.g. 'y: {size: 8, from: [ctrl]}'")
    _check_cycles(graph, sink)
    _check_memories(spec, graph, sink)
    groups = plan_groups(spec, sink)
    train = resolve_train(spec.train, sink)
    if not sink:  # warnings only of a spec without errors: a missing wire would show as work done for nothing
        _warn_dead(spec, graph, params, sink)
        _warn_wide_shifts(spec, kinds, params, sink)
    return Validated(params, groups, train)


def _check_version(spec: Spec, sink: DiagnosticSink) -> None:
    version = spec.version.data
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        sink.error("E004", f"unsupported cogdsl format version {spelled(version)}", spec.version.span,
                   f"this cogdsl reads version {', '.join(map(str, SUPPORTED_VERSIONS))}")


def _check_names(spec: Spec, sink: DiagnosticSink) -> dict[str, str]:
    """Name → family ('input', 'output', or a block family), reporting duplicates."""
    roles: dict[str, str] = {}
    first: dict[str, Span] = {}
    items = [(i.name, "input", i.span) for i in spec.inputs]
    items += [(b.name, REGISTRY[b.kind].family if b.kind in REGISTRY else "unknown", b.span) for b in spec.blocks]
    items += [(o.name, "output", o.span) for o in spec.outputs]
    for name, role, span in sorted(items, key=lambda item: (item[2].line, item[2].col)):
        if name in roles:
            sink.error("E302", f"the name '{name}' is defined twice", span,
                       f"it is first defined at line {first[name].line}; names of inputs, outputs and blocks "
                       "must be unique")
            continue
        roles[name] = role
        first[name] = span
    return roles


def _check_ref(ref: Ref, roles: dict[str, str], owner: str, wanted: tuple[str, ...], what: str,
               sink: DiagnosticSink, delay_ok: bool) -> bool:
    if ref.name not in roles:
        sink.error("E301", f"{owner}: '{ref.name}' is not defined", ref.span,
                   hint_for(ref.name, roles, "the defined names"))
        return False
    role = roles[ref.name]
    if role == "unknown":
        return False  # its kind is unknown; that is reported where the block is defined
    if role not in wanted:
        sink.error("E303", f"{owner}: '{ref.name}' is a {role}, not {what}", ref.span,
                   f"refer to {what} here")
        return False
    if ref.delay and not delay_ok:
        sink.error("E307", f"{owner}: '@prev' is not allowed on '{ref.name}' here", ref.span,
                   "a head addresses its memory and is driven by its controller at the same step")
        return False
    return True


def _value_sources(roles: dict[str, str], ref: Ref, owner: str, sink: DiagnosticSink) -> None:
    """A wire must come from something that carries a value: an input, a controller, a read head, a
    reasoning, encoder or attention block, or an output at the previous step (``y@prev``)."""
    if ref.name in roles and roles[ref.name] == "head":
        return  # read vs write is checked where the kind is known
    ok = _check_ref(ref, roles, owner, ("input", "controller", "head", "reasoning", "encoder", "attention", "output"),
                    "an input, a block with a value, or an output at the previous step", sink, delay_ok=True)
    if ok and roles[ref.name] == "output" and not ref.delay:
        sink.error("E307", f"{owner}: output '{ref.name}' can only be read at the previous step", ref.span,
                   f"write '{ref.name}@prev': a step's output is computed from its blocks, not the other way round")


def _check_attended(block: Block, roles: dict[str, str], kinds: dict[str, str], carries: dict[str, object],
                    sink: DiagnosticSink) -> None:
    """What an attention-family block looks over (its ``on``): an image, or a sequence (a ``sequence``
    input or an encoder), or, where its kind allows, an NTM-style memory, read as it was at the end of
    the previous step."""
    target = block.memory
    if target is None:
        return  # reported as a missing field
    owner = f"{block.kind} '{block.name}'"
    if target.name not in roles:
        sink.error("E301", f"{owner}: '{target.name}' is not defined", target.span,
                   hint_for(target.name, roles, "the defined names"))
        return
    if target.delay:
        sink.error("E307", f"{owner}: '@prev' is not allowed on what attention looks over", target.span,
                   "a sequence is the same at every step, and a memory is read as the previous step left it")
        return
    role, kind = roles[target.name], REGISTRY.get(kinds.get(target.name, ""))
    if role == "unknown":
        return
    if "image" in REGISTRY[block.kind].looks_over:
        if carries.get(target.name) != "image":
            found = (f"an input carrying {_CARRIED.get(str(carries.get(target.name)), 'a vector')}"
                     if role == "input" else _a(role))
            sink.error("E303", f"{owner}: looks at an image, and '{target.name}' is {found}", target.span,
                       "look at an input declared as 'image(size=N)'")
        return
    if REGISTRY[block.kind].check_target(block, kind, sink):
        return
    memory_ok = "memory" in REGISTRY[block.kind].looks_over
    if carries.get(target.name) == "sequence" or (
            memory_ok and role == "memory" and kind is not None and kind.read_by == "head"):
        return
    found = _a(kind.noun()) if role == "memory" and kind else (
        f"an input carrying {_CARRIED.get(str(carries.get(target.name)), 'a vector')}" if role == "input"
        else _a(role))
    looked_over = "a sequence or a memory" if memory_ok else "a sequence"
    sink.error("E303", f"{owner}: looks over {looked_over}, and '{target.name}' is {found}", target.span,
               "look over an encoder, an input declared as 'sequence(size=N)'" + (", or an NTM memory"
                                                                                   if memory_ok else ""))


def _a(noun: str) -> str:
    """'a controller', 'an encoder'."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


_CARRIED = {"vector": "a vector", "words": "word ids (one sentence)", "sentences": "word ids (a story of sentences)",
            "sequence": "a whole sequence (B, S, size)", "image": "a whole image (B, size, size)"}


def _check_carried(sources: tuple[Ref, ...], takes: tuple[str, ...], carries: dict[str, object], owner: str,
                   sink: DiagnosticSink) -> None:
    """Each source carries what its reader takes: word-id inputs feed story memories, reasoning
    blocks and embed blocks, at the step they are given; everything else carries a vector. An
    image is also read as the vector of its pixels."""
    wanted = " or ".join(_CARRIED[t] for t in takes)
    for ref in sources:
        carried = carries.get(ref.name, "vector")
        if carried == "image" and "vector" in takes:
            continue
        if carried in _CARRIED and carried not in takes:
            readers = {"words": "a reasoning block (hops, episodes) or an embed block",
                       "sentences": "a story memory (episodic_memory, kv_memory)",
                       "sequence": "an encoder (encoder, self_attention), or be looked over by attention ('on')",
                       "image": "a conv encoder, be looked at by glimpse or spatial_transformer ('on'), or feed "
                                "a controller as its pixels"}
            hint = (f"read it through an embed block: 'embed e(dim=20) <- {ref.name}', then wire 'e' here"
                    if carried == "words" and "vector" in takes
                    else f"'{ref.name}' can feed {readers[str(carried)]}" if carried in readers
                    else "wire an input declared as " + " or ".join(f"{t}({SIZE_KEYS[t]}=N)" for t in takes))
            sink.error("E310", f"{owner} reads {wanted}, but '{ref.name}' carries {_CARRIED[str(carried)]}",
                       ref.span, hint)
        elif carried in ("words", "sentences") and ref.delay:
            sink.error("E307", f"{owner}: '@prev' is not allowed on '{ref.name}', which carries word ids",
                       ref.span, f"read '{ref.name}' at its own step; a recurrent block remembers earlier "
                       "sentences in its state")
        elif carried in ("sequence", "image") and ref.delay:
            sink.error("E307", f"{owner}: '@prev' is not allowed on '{ref.name}', which carries "
                       f"{_CARRIED[str(carried)]}", ref.span,
                       f"'{ref.name}' is computed once, before the steps, not at each one: read it without "
                       "'@prev'")


def _check_source_count(block: Block, kind: type[BlockKind], sink: DiagnosticSink) -> None:
    """A kind that reads at most ``max_sources`` sources (an embed block: one sentence) gets no more."""
    if kind.max_sources is None or len(block.sources) <= kind.max_sources:
        return
    extra = block.sources[kind.max_sources]
    sink.error("E206", f"{block.kind} '{block.name}' reads {kind.max_sources} source(s), found "
               f"{len(block.sources)}", extra.span,
               f"give each of {', '.join(repr(r.name) for r in block.sources)} its own {block.kind} block")


def _check_block(block: Block, roles: dict[str, str], kinds: dict[str, str], sink: DiagnosticSink
                 ) -> dict[str, Any] | None:
    """Report the block's problems; its parameters resolved (None: an unknown kind)."""
    owner = f"block '{block.name}'"
    kind = REGISTRY.get(block.kind)
    if kind is None:
        sink.error("E201", f"{owner}: unknown block kind '{block.kind}'", block.kind_span,
                   hint_for(block.kind, REGISTRY, "the kinds"))
        return None
    owner = f"{block.kind} '{block.name}'"
    resolved = check_params(kind.params, block.params, block.param_span, owner, block.span, sink)
    if all(value is not None for value in resolved.values()):
        for param, message, hint in kind.conflicts(resolved):
            sink.error("E205", f"{owner}: {message}", block.param_span(param), hint)
    given = {"from": bool(block.sources), "memory": block.memory is not None, "by": block.by is not None,
             "address": block.address is not None}
    for field, present in given.items():
        if present and field not in kind.accepts:
            span = {"from": block.sources[0].span if block.sources else block.span,
                    "memory": block.memory.span if block.memory else block.span,
                    "by": block.by.span if block.by else block.span,
                    "address": block.address.span if block.address else block.span}[field]
            accepted = "; ".join(FIELD_SPELLING[f] for f in sorted(kind.accepts))
            sink.error("E206", f"{owner}: kind '{block.kind}' does not take {FIELD_SPELLING[field]}", span,
                       f"remove it; '{block.kind}' takes {accepted}" if accepted
                       else f"remove it; '{block.kind}' takes no wiring")
    for field in sorted(kind.requires):
        if not given[field]:
            code = "E305" if kind.family == "head" else ("E308" if field == "from" else "E007")
            what = {"from": "sources", "by": "controller"}.get(field, field)
            sink.error(code, f"{owner} has no {what}", block.span,
                       f"give it {FIELD_SPELLING[field]}")
    for ref in block.sources if "from" in kind.accepts else ():
        _value_sources(roles, ref, owner, sink)
        _check_read_source(ref, roles, kinds, owner, sink)
    if "from" in kind.accepts:
        _check_source_count(block, kind, sink)
    if block.memory is not None and "memory" in kind.accepts and kind.family != "attention":
        ok = _check_ref(block.memory, roles, owner, ("memory",), "a memory", sink, delay_ok=False)
        memory_kind = REGISTRY.get(kinds.get(block.memory.name, ""))
        if ok and memory_kind is not None and memory_kind.read_by != kind.family:
            fitting = sorted(k for k, c in REGISTRY.items() if c.family == "memory" and c.read_by == kind.family)
            sink.error("E303", f"{owner}: '{block.memory.name}' is a {memory_kind.kind}, which a {block.kind} "
                       "cannot read", block.memory.span,
                       f"a {block.kind} works on {' or '.join(fitting)}")
            ok = False
        if ok and block.address is not None and "address" in kind.accepts:
            REGISTRY[kinds[block.memory.name]].resolve_address(block.address, owner, sink, kind.writes)
    if block.by is not None and "by" in kind.accepts:
        _check_ref(block.by, roles, owner, ("controller",), "a controller", sink, delay_ok=False)
    return resolved


def _check_read_source(ref: Ref, roles: dict[str, str], kinds: dict[str, str], owner: str,
                       sink: DiagnosticSink) -> None:
    kind = kinds.get(ref.name)
    if roles.get(ref.name) == "head" and kind is not None and not REGISTRY[kind].has_output:
        sink.error("E303", f"{owner}: '{ref.name}' is a {kind} head, which has no value to wire", ref.span,
                   "wire a read head, a controller or an input")


def _check_output(output: Output, roles: dict[str, str], kinds: dict[str, str], sink: DiagnosticSink) -> None:
    owner = f"output '{output.name}'"
    size = output.size.data
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        sink.error("E204", f"{owner}: size must be a positive integer, found {spelled(size)}", output.size.span,
                   "the number of values the output gives at each step, e.g. 8")
    elif size is not None and size > MAX_SIZE:
        sink.error("E205", f"{owner}: size {spelled(size)} is too large", output.size.span,
                   f"allowed: 1 to {MAX_SIZE:,} (2**31 - 1)")
    if output.activation is not None and output.activation.data not in ACTIVATIONS:
        sink.error("E205", f"{owner}: unknown activation '{output.activation.data}'", output.activation.span,
                   hint_for(str(output.activation.data), ACTIVATIONS, "activations"))
    if not output.sources:
        sink.error("E308", f"{owner} has no sources", output.span, "give it sources, e.g. 'from: [ctrl]'")
    for ref in output.sources:
        _value_sources(roles, ref, owner, sink)
        _check_read_source(ref, roles, kinds, owner, sink)


def _check_pointers(spec: Spec, sink: DiagnosticSink) -> None:
    """An output ``pointer(NAME)`` is the distribution of the one pointer block it reads (``attention
    NAME(output=pointer)``) over the source positions, at this step: it has no size of its own (as many values
    as the source has positions, which differ from one sequence to the next), so nothing reads it back."""
    pointers = {o.name for o in spec.outputs if o.points}
    for output in spec.outputs:
        if not output.points:
            continue
        owner = f"output '{output.name}'"
        example = "e.g. 'attention ptr(output=pointer) on enc <- dec', then 'output y = pointer(ptr)'"
        if output.size.data is not None:
            sink.error("E205", f"{owner}: a pointer output has one value per source position, as many as each "
                       "sequence has, so it takes no size", output.size.span,
                       f"leave the size out: 'output {output.name} = pointer(...)'")
        if not output.sources:
            continue  # reported as an output with no sources
        first = output.sources[0]
        if len(output.sources) > 1:
            sink.error("E206", f"{owner}: pointer(...) reads one pointer block, found {len(output.sources)} "
                       "sources", output.sources[1].span, example)
        elif first.delay:
            sink.error("E307", f"{owner}: pointer(...) gives the distribution of this step, not of the previous one",
                       first.span, f"write 'pointer({first.name})'")
        else:
            block = spec.block(first.name)
            if block is not None and block.kind in REGISTRY and not REGISTRY[block.kind].points(block):
                kind = REGISTRY[block.kind]
                sink.error("E303", f"{owner}: pointer(...) reads a pointer block (attention with output=pointer), "
                           f"and '{first.name}' is {_a(kind.noun())} that does not point", first.span,
                           f"make '{first.name}' a pointer: 'output=pointer' in its parameters"
                           if any(p.name == "output" for p in kind.params) else example)
            elif block is None and first.name in {i.name for i in spec.inputs}:
                sink.error("E303", f"{owner}: pointer(...) reads a pointer block (attention with output=pointer), "
                           f"and '{first.name}' is an input", first.span, example)
    readers = [(f"{b.kind} '{b.name}'", b.sources) for b in spec.blocks]
    readers += [(f"output '{o.name}'", o.sources) for o in spec.outputs if not o.points]
    for owner, sources in readers:
        for ref in sources:
            if ref.name in pointers and ref.delay:  # read with no delay: reported as an output read too early
                pointer = next(o for o in spec.outputs if o.name == ref.name).sources
                read = f"'{pointer[0].name}@prev'" if pointer else "its pointer block with '@prev'"
                sink.error("E307", f"{owner}: '{ref.name}' is a pointer output, a distribution over the source "
                           "positions, whose number changes from one sequence to the next: nothing reads it",
                           ref.span, f"read the element it points at instead, {read}")


def _check_cycles(graph: nx.MultiDiGraph, sink: DiagnosticSink) -> None:
    now = immediate_graph(graph)
    position = {node: index for index, node in enumerate(graph.nodes)}  # spec order
    components = [sorted(c, key=position.__getitem__) for c in nx.strongly_connected_components(now)]
    for component in sorted(components, key=lambda c: position[c[0]]):
        start = component[0]
        if len(component) == 1 and not now.has_edge(start, start):
            continue
        sub = nx.DiGraph()
        sub.add_nodes_from(component)
        # successors in spec order, so the cycle found is the same on every run
        for node in component:
            sub.add_edges_from((node, v, now.edges[node, v]) for v in sorted(now.successors(node),
                                                                            key=position.__getitem__)
                               if v in sub)
        cycle = nx.find_cycle(sub, source=start)
        path = [u for u, _ in cycle] + [cycle[0][0]]
        # Point at a wire that could carry the delay: a 'from' source edge in the cycle.
        sources = [(u, v) for u, v in cycle if now.edges[u, v]["role"] == "source"]
        u, v = sources[0] if sources else cycle[0]
        span = now.edges[u, v]["span"]
        hint = (f"delay one wire of the cycle, e.g. '{u}@prev' in the sources of '{v}'" if sources
                else "a cycle must pass through a wire from a source that can take '@prev'")
        sink.error("E304", f"cycle with no delay: {' -> '.join(path)}", span, hint)


def _warn_dead(spec: Spec, graph: nx.MultiDiGraph, params: dict[str, dict[str, Any]], sink: DiagnosticSink) -> None:
    """W301 for each block that neither an output nor a loss term depends on, over wires of either delay, reads
    and writes of memories included: it is computed every step for nothing. A block that adds to the loss
    itself (:meth:`~cogdsl.blocks.base.BlockKind.adds_loss`: a latent's KL, a skip RNN's cost) counts as
    needed, and so do the blocks it reads. Inputs are not judged: a task feeds every input it declares, and
    a spec may leave one unread on purpose (a question-only bAbI baseline)."""
    losses = [b.name for b in spec.blocks if b.kind in REGISTRY and REGISTRY[b.kind].adds_loss(params.get(b.name, {}))]
    ends = [name for name, role in graph.nodes(data="role") if role == "output"] + losses
    needed = set(ends).union(*(nx.ancestors(graph, name) for name in ends))
    for block in spec.blocks:
        if block.name not in needed and graph.nodes[block.name].get("span") is block.span:
            sink.warn("W301", f"no output or loss depends on {block.kind} '{block.name}': it runs every step for "
                      "nothing", block.span,
                      f"wire '{block.name}' into an output or a block that feeds one, or remove it")


def _warn_wide_shifts(spec: Spec, kinds: dict[str, str], params: dict[str, dict[str, Any]],
                      sink: DiagnosticSink) -> None:
    """W401 for each head whose ``shift`` is wider than its memory (:func:`warn_wide_shift`); ``kinds``: each
    block's kind by name."""
    for block in spec.blocks:
        kind = REGISTRY.get(block.kind)
        if kind is None or kind.family != "head" or block.memory is None:
            continue
        slots = params.get(block.memory.name, {}).get("slots")
        memory_kind = REGISTRY.get(kinds.get(block.memory.name, ""))
        if not isinstance(slots, int) or memory_kind is None:
            continue
        owner = f"{block.kind} '{block.name}'"
        if block.address is not None:
            warn_wide_shift(block.address.stages, slots, owner, sink)
        else:
            default = parse_address(memory_kind.default_address(kind.writes), block.span)
            warn_wide_shift(default.stages, slots, owner, sink, default_at=block.span)


def _check_memories(spec: Spec, graph: nx.MultiDiGraph, sink: DiagnosticSink) -> None:
    for block in spec.blocks:
        kind = REGISTRY.get(block.kind)
        if kind is None or kind.family != "memory" or graph.nodes.get(block.name, {}).get("span") is not block.span:
            continue  # unknown kind, or a duplicate definition (reported as such)
        heads = [v for _, v, d in graph.out_edges(block.name, data=True) if d["role"] == "memory"]
        if not heads and kind.read_by == "head":
            sink.error("E306", f"memory '{block.name}' is not read or written by any head", block.span,
                       f"add a read or write head on '{block.name}', or remove it")
        elif not heads:
            sink.error("E306", f"{kind.kind} '{block.name}' is not read by any hops or episodes block", block.span,
                       f"add e.g. 'hops reason on {block.name} <- question', or remove it")
