"""Pass 2: the spec as a networkx graph. Blocks, inputs and outputs are nodes; wires are edges.

Each edge has a ``delay`` (0: the value of this step, 1: of the previous step) and a
``role``:

    source  a value wired into a block or output (``from:``), delay 0 or 1 (``@prev``); from
            an output always 1 (``y@prev``)
    memory  a memory to the head that addresses it; the head sees the memory as it was
            at the end of the previous step
    by      a controller to the head it drives
    write   a write head to its memory; delay 1, because writes land for the next step

A cycle made only of delay-0 edges has no order to run in; :mod:`cogdsl.compiler.validate`
reports it. References to undefined names make no edge (the validator reports those too);
a duplicate name keeps its first definition.
"""

from __future__ import annotations

import networkx as nx

from cogdsl.blocks import REGISTRY
from cogdsl.language.spec import Ref, Spec


def build_graph(spec: Spec) -> nx.MultiDiGraph:
    """The graph of ``spec``. Node attributes: role, kind, family, span. Edge attributes: role, delay, span."""
    graph = nx.MultiDiGraph(model=spec.name)
    for item in spec.inputs:
        if item.name not in graph:
            graph.add_node(item.name, role="input", kind="input", family="input", span=item.span)
    for block in spec.blocks:
        if block.name not in graph:
            kind = REGISTRY.get(block.kind)
            graph.add_node(block.name, role="block", kind=block.kind,
                           family=kind.family if kind else "unknown", span=block.span)
    for output in spec.outputs:
        if output.name not in graph:
            graph.add_node(output.name, role="output", kind="output", family="output", span=output.span)

    def wire(ref: Ref | None, target: str, role: str) -> None:
        if ref is not None and ref.name in graph:
            # An output is only ever read at the previous step; reading it now is reported as such
            # (E307), not again as a cycle.
            delay = 1 if graph.nodes[ref.name]["role"] == "output" else ref.delay
            graph.add_edge(ref.name, target, role=role, delay=delay, span=ref.span)

    for block in spec.blocks:
        if graph.nodes[block.name].get("span") is not block.span:
            continue  # a duplicate definition
        for ref in block.sources:
            wire(ref, block.name, "source")
        wire(block.memory, block.name, "memory")
        wire(block.by, block.name, "by")
        kind = REGISTRY.get(block.kind)
        if block.memory is not None and block.memory.name in graph and getattr(kind, "writes", False):
            graph.add_edge(block.name, block.memory.name, role="write", delay=1, span=block.span)
    for output in spec.outputs:
        if graph.nodes[output.name].get("span") is not output.span:
            continue
        for ref in output.sources:
            wire(ref, output.name, "source")
    return graph


def immediate_graph(graph: nx.MultiDiGraph) -> nx.DiGraph:
    """The delay-0 edges only: the dependencies inside one time step."""
    now = nx.DiGraph()
    now.add_nodes_from(graph.nodes(data=True))
    now.add_edges_from((u, v, d) for u, v, d in graph.edges(data=True) if d["delay"] == 0)
    return now
