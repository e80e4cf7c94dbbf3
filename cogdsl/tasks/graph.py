"""The graph tasks of Graves et al. 2016, "Hybrid computing using a neural network with
dynamic external memory" (Nature 538), Methods, "Graph tasks": read a random directed graph
as a list of labelled edges, then answer a query about it.

Three registered tasks share one graph generator and one encoding:

- ``graph_traversal`` -- :class:`GraphTraversalTask`: from a start node, follow a given
  sequence of edge labels and write out each edge taken;
- ``graph_shortest_path`` -- :class:`GraphShortestPathTask`: write out the (unique)
  shortest path between two given nodes, edge by edge;
- ``graph_inference`` -- :class:`GraphInferenceTask`: name the node reached from a given
  node by a composite relation (a fixed sequence of edge labels) that is never spelled out.

**The graph.** ``N`` nodes (``sample``'s ``length``; drawn once per batch from
``[min_nodes, max_nodes]``), each named by a random distinct integer in ``[0, 2**id_bits)``,
redrawn per sequence, so the numbering carries no information. Every node has exactly
``out_degree`` outgoing edges, to distinct other nodes (no self-loops), whose labels are
distinct labels drawn from ``0 .. labels-1``; so a (node, label) pair names at most one next
node, and every node has somewhere to go. Edges into a node are unconstrained. The graph is
a ``networkx.DiGraph`` whose edges carry a ``label`` attribute (:func:`random_labelled_digraph`).

**Randomness.** ``sample`` draws ``N``, the batch's path length (path tasks) and one 62-bit
seed from the ``torch.Generator`` it is given; a ``random.Random(seed)`` then drives every
graph, name, edge order and query of the batch. The same generator state gives the same
batch; the global RNGs (``random``, ``torch``, ``numpy``) are never touched.

**Channel layout** (``K = id_bits``, ``L = labels``, ``R = relations``). An id field holds
the id in binary, least significant bit first (channel ``k`` of the field is
``(id >> k) & 1``); a label field is one-hot; an empty field is all zeros::

    inputs   channels               field
             0 .. K-1               source id
             K .. K+L-1             edge label, one-hot
             K+L .. 2K+L-1          destination id
             2K+L                   description phase flag
             2K+L+1                 query phase flag
             2K+L+2                 answer phase flag
             2K+L+3 .. 2K+L+R+2     composite relation, one-hot     (graph_inference only)

    targets  0 .. 2K+L-1            source id | edge label | destination id   (traversal,
                                                                             shortest path)
             0 .. K-1               destination id                    (graph_inference)

Input size ``2K + L + 3`` (``+ R`` for ``graph_inference``); output size ``2K + L``, or
``K`` for ``graph_inference``. Every step has exactly one phase flag set. A blank id field
reads like id 0 (a node may be named 0); which fields a step fills is fixed by its phase
and position, as drawn below, so the encoding is unambiguous.

**Steps.** The description phase is one step per edge, ``E = N * out_degree`` steps, each
holding the triple (source, label, destination), edges in random order. The query phase
follows, then the answer phase; there are no separator steps (the phase flags mark the
phases). Only answer steps are scored (``mask`` is 1 exactly where the answer flag is), and
targets are zero everywhere else.

Example, ``graph_traversal`` on nodes named 5, 2 and 7 with ``out_degree = 1`` and labels
``a``, ``b``: edges ``5 -b-> 2``, ``2 -a-> 7``, ``7 -a-> 5``; query: start at 5, follow
``b`` then ``a``. An id in a row stands for its ``K`` bits, a label for its one-hot, ``.``
for zeros; rows are fields, columns steps::

                            t:   0   1   2  |  3   4   5  |  6   7
    inputs  source id            2   7   5  |  5   .   .  |  .   .
            edge label           a   a   b  |  .   b   a  |  .   .
            destination id       7   5   2  |  .   .   .  |  .   .
            description flag     1   1   1  |  .   .   .  |  .   .
            query flag           .   .   .  |  1   1   1  |  .   .
            answer flag          .   .   .  |  .   .   .  |  1   1
    targets source id            .   .   .  |  .   .   .  |  5   2
            edge label           .   .   .  |  .   .   .  |  b   a
            destination id       .   .   .  |  .   .   .  |  2   7
    mask                         0   0   0  |  0   0   0  |  1   1

``graph_shortest_path`` on the same graph, query "from 5 to 7" (answer ``5 -b-> 2 -a-> 7``)::

                            t:   0   1   2  |  3  |  4   5
    inputs  source id            2   7   5  |  5  |  .   .
            edge label           a   a   b  |  .  |  .   .
            destination id       7   5   2  |  7  |  .   .
            description flag     1   1   1  |  .  |  .   .
            query flag           .   .   .  |  1  |  .   .
            answer flag          .   .   .  |  .  |  1   1
    targets source id            .   .   .  |  .  |  5   2
            edge label           .   .   .  |  .  |  b   a
            destination id       .   .   .  |  .  |  2   7
    mask                         0   0   0  |  0  |  1   1

``graph_inference`` with relation ``r`` defined as the labels ``(b, a)``, query "5 under
relation r" (answer 7); ``e_r`` is the one-hot of ``r``::

                            t:   0   1   2  |  3  |  4
    inputs  source id            2   7   5  |  5  |  .
            edge label           a   a   b  |  .  |  .
            destination id       7   5   2  |  .  |  .
            description flag     1   1   1  |  .  |  .
            query flag           .   .   .  |  1  |  .
            answer flag          .   .   .  |  .  |  1
            relation one-hot     .   .   .  | e_r |  .
    targets destination id       .   .   .  |  .  |  7
    mask                         0   0   0  |  0  |  1

Step counts: traversal ``T = E + 1 + 2P`` (a start step, ``P`` label steps, ``P`` answer
steps); shortest path ``T = E + 1 + P``; inference ``T = E + 2``. ``P`` is drawn once per
batch, so every sequence of a batch has the same ``T``.

Scoring: the metric quoted for these tasks is :func:`answer_accuracy`, the fraction of
answer steps of a sequence whose every output bit is right (the paper reports accuracy per
answer step); :func:`~cogdsl.tasks.base.sequence_accuracy` is stricter (whole sequences).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from typing import ClassVar

import networkx as nx
import torch
import torch.nn.functional as F

from cogdsl.tasks.base import Batch, ParamValue, Task, TaskParam, TaskParamError, _check_logits

#: Graphs drawn per sequence before a query that fits is given up on.
MAX_GRAPH_TRIES = 100

#: Phase flags, as offsets from the first flag channel.
DESCRIPTION, QUERY, ANSWER = 0, 1, 2

#: The marker of an empty id or label field in the integer step tables.
EMPTY = -1

Triple = tuple[int, int, int]  # (source id, edge label, destination id)


def random_labelled_digraph(
    nodes: int, out_degree: int, labels: int, id_bits: int, rng: random.Random
) -> nx.DiGraph:
    """A random directed graph on ``nodes`` randomly named nodes, drawn from ``rng`` only.

    Node names are distinct integers drawn uniformly from ``[0, 2**id_bits)``. Each node gets
    ``out_degree`` edges to distinct other nodes, drawn uniformly, labelled (edge attribute
    ``label``) with distinct labels drawn uniformly from ``0 .. labels-1``. Nodes are added in
    an order drawn from ``rng`` and networkx keeps insertion order, so iteration is
    reproducible.
    """
    names = rng.sample(range(2**id_bits), nodes)
    graph = nx.DiGraph()
    graph.add_nodes_from(names)
    for source in names:
        others = [n for n in names if n != source]
        destinations, edge_labels = rng.sample(others, out_degree), rng.sample(range(labels), out_degree)
        for destination, label in zip(destinations, edge_labels, strict=True):
            graph.add_edge(source, destination, label=label)
    return graph


def successor(graph: nx.DiGraph, node: int, label: int) -> int | None:
    """The node reached from ``node`` by its edge labelled ``label``, or ``None``."""
    for destination, edge_label in graph.succ[node].items():
        if edge_label["label"] == label:
            return destination
    return None


def follow(graph: nx.DiGraph, node: int, labels: Sequence[int]) -> list[Triple] | None:
    """The edges taken from ``node`` following ``labels`` in order, or ``None`` if a label is
    missing on the way."""
    path: list[Triple] = []
    for label in labels:
        nxt = successor(graph, node, label)
        if nxt is None:
            return None
        path.append((node, label, nxt))
        node = nxt
    return path


def answer_accuracy(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The fraction of each sequence's scored steps whose every output bit is right.

    ``acc[b] = sum_t mask[b, t] * [all_o (logits[b, t, o] > 0) == (targets[b, t, o] > 0.5)]
    / sum_t mask[b, t]`` (a logit of exactly 0 reads as bit 0, as in
    :func:`~cogdsl.tasks.base.bit_errors`). For the graph tasks the scored steps are the
    answer steps, so this is the per-answer-step accuracy the DNC paper reports. A sequence
    with no scored step gets 0.

    Args:
        logits: ``(B, T, O)`` raw (pre-sigmoid) model outputs.
        batch: the batch they answer.

    Returns:
        ``(B,)`` float32 fractions in ``[0, 1]``.
    """
    _check_logits(logits, batch)
    step_right = ((logits > 0) == (batch.targets > 0.5)).all(dim=-1).float()  # (B, T)
    scored = batch.mask.float()
    return (step_right * scored).sum(dim=1) / scored.sum(dim=1).clamp_min(1.0)


# Graphs are drawn in Python, O(N²) per graph: up to 1,000 nodes. Labels and relations are one-hot input channels
# (up to 1,024 and 4,096); paths up to 1,000 edges; composite relations of up to 16 labels (labels**compose
# stays an integer Python computes at once).
MAX_LABELS = 1024
MAX_NODES = 1000
MAX_PATH = 1000
MAX_RELATIONS = 4096
MAX_COMPOSE = 16


class GraphTask(Task):
    """Common parameters, checks, graph drawing and encoding of the graph tasks."""

    def metrics(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """``answer_accuracy``: the fraction of answer steps with every bit right, per sequence."""
        return {"answer_accuracy": answer_accuracy(logits, batch)}

    params: ClassVar[tuple[TaskParam, ...]] = (
        TaskParam("id_bits", int, 6, minimum=1, maximum=30, doc="bits of a node id; ids are random in [0, 2**id_bits)"),
        TaskParam("labels", int, 4, minimum=1, maximum=MAX_LABELS, doc="distinct edge labels"),
        TaskParam("out_degree", int, 2, minimum=1, maximum=MAX_LABELS,
                  doc="outgoing edges per node, distinctly labelled (< min_nodes)"),
        TaskParam("min_nodes", int, 5, minimum=2, maximum=MAX_NODES, doc="fewest nodes drawn in training"),
        TaskParam("max_nodes", int, 10, minimum=2, maximum=MAX_NODES,
                  doc="most nodes drawn in training (<= 2**id_bits)"),
    )
    constraints: ClassVar[tuple[tuple[str, str], ...]] = (
        ("min_nodes", "max_nodes"),
        ("out_degree", "labels"),
    )
    length_params: ClassVar[tuple[str, str] | None] = ("min_nodes", "max_nodes")
    min_length: ClassVar[int] = 2

    id_bits: int
    labels: int
    out_degree: int
    min_nodes: int
    max_nodes: int

    @classmethod
    def validate_params(cls, params: Mapping[str, object]) -> dict[str, ParamValue]:
        """:meth:`Task.validate_params`, then the rules that are not ``a <= b`` pairs:
        ``out_degree < min_nodes`` (edges go to distinct other nodes) and
        ``max_nodes <= 2**id_bits`` (nodes have distinct ids), plus each task's own.

        Raises:
            TaskParamError: naming the first parameter of the broken rule that the caller
                gave (or the rule's first parameter if they gave none of them).
        """
        values = super().validate_params(params)
        ints = {key: int(value) for key, value in values.items()}  # every graph parameter is an int
        if ints["out_degree"] >= ints["min_nodes"]:
            cls._broken(params, ("out_degree", "min_nodes"),
                        f"'out_degree' ({ints['out_degree']}) must be < 'min_nodes' ({ints['min_nodes']}): "
                        "a node's edges go to distinct other nodes")
        if ints["max_nodes"] > 2 ** ints["id_bits"]:
            cls._broken(params, ("max_nodes", "id_bits"),
                        f"'max_nodes' ({ints['max_nodes']}) must be <= 2**'id_bits' ({2 ** ints['id_bits']}): "
                        "every node needs its own id")
        cls._check_task_params(ints, params)
        return values

    @classmethod
    def _check_task_params(cls, ints: dict[str, int], params: Mapping[str, object]) -> None:
        """A subclass's own cross-parameter rules (raising through :meth:`_broken`)."""

    @classmethod
    def _broken(cls, params: Mapping[str, object], names: tuple[str, ...], rule: str) -> None:
        """Raise the TaskParamError for ``rule``, naming the first of ``names`` the caller gave."""
        named = next((n for n in names if n in params), names[0])
        raise TaskParamError(f"task '{cls.name}': parameter {rule}", cls.name, named)

    # -- sizes ------------------------------------------------------------------------------

    @property
    def triple_size(self) -> int:
        """``2 * id_bits + labels``: source id, label one-hot, destination id."""
        return 2 * self.id_bits + self.labels

    @property
    def input_size(self) -> int:
        """``2 * id_bits + labels + 3``: the triple fields and three phase flags."""
        return self.triple_size + 3

    @property
    def output_size(self) -> int:
        """``2 * id_bits + labels``: a triple."""
        return self.triple_size

    # -- sampling helpers -------------------------------------------------------------------

    def _check_nodes(self, nodes: int) -> None:
        lo, hi = self.out_degree + 1, 2**self.id_bits
        if not lo <= nodes <= hi:
            raise ValueError(
                f"task '{self.name}': length (the node count) must be in [{lo}, {hi}] for "
                f"out_degree={self.out_degree} and id_bits={self.id_bits}, got {nodes}"
            )

    @staticmethod
    def _rng(generator: torch.Generator) -> random.Random:
        """A ``random.Random`` seeded by one draw from ``generator``."""
        seed = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)
        return random.Random(int(seed))

    def _graph(self, nodes: int, rng: random.Random) -> nx.DiGraph:
        return random_labelled_digraph(nodes, self.out_degree, self.labels, self.id_bits, rng)

    def _description(self, graph: nx.DiGraph, rng: random.Random) -> list[Triple]:
        """The graph's edges as triples, in random order."""
        edges: list[Triple] = [(s, lab, d) for s, d, lab in graph.edges(data="label")]
        rng.shuffle(edges)
        return edges

    def _encode_triples(self, fields: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3)`` long (source, label, destination; ``EMPTY`` = blank) to ``(B, T,
        triple_size)`` float bits."""
        return torch.cat(
            [
                self._encode_ids(fields[..., 0]),
                _one_hot(fields[..., 1], self.labels),
                self._encode_ids(fields[..., 2]),
            ],
            dim=-1,
        )

    def _encode_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` long ids (``EMPTY`` = blank) to ``(B, T, id_bits)`` bits, LSB first."""
        shifts = torch.arange(self.id_bits, device=ids.device)
        bits = (ids.clamp_min(0).unsqueeze(-1) >> shifts) & 1
        return (bits * (ids >= 0).unsqueeze(-1)).float()

    def _batch(
        self,
        input_fields: list[list[Triple]],
        phases: list[int],
        target_fields: list[list[Triple]],
        device: torch.device,
        extra_inputs: torch.Tensor | None = None,
    ) -> Batch:
        """Encode integer step tables (one list of ``T`` triples per sequence) into a Batch.

        ``phases`` is the phase of each of the ``T`` steps (shared by the batch); the mask is
        1 on answer steps. ``extra_inputs`` ``(B, T, X)`` is appended after the flags.
        """
        fields_in = torch.tensor(input_fields, dtype=torch.long, device=device)  # (B, T, 3)
        fields_out = torch.tensor(target_fields, dtype=torch.long, device=device)  # (B, T, 3)
        batch = fields_in.shape[0]
        phase = torch.tensor(phases, dtype=torch.long, device=device)  # (T,)
        flags = F.one_hot(phase, 3).float().unsqueeze(0).expand(batch, -1, -1)  # (B, T, 3)
        parts = [self._encode_triples(fields_in), flags]
        if extra_inputs is not None:
            parts.append(extra_inputs)
        inputs = torch.cat(parts, dim=-1)
        mask = (phase == ANSWER).float().unsqueeze(0).expand(batch, -1).contiguous()  # (B, T)
        return Batch(inputs, self._encode_targets(fields_out), mask)

    def _encode_targets(self, fields: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3)`` target fields to ``(B, T, output_size)`` bits: the whole triple."""
        return self._encode_triples(fields)


def _one_hot(index: torch.Tensor, classes: int) -> torch.Tensor:
    """``(B, T)`` long (``EMPTY`` = blank) to ``(B, T, classes)`` float one-hot."""
    hot = F.one_hot(index.clamp_min(0), classes)
    return (hot * (index >= 0).unsqueeze(-1)).float()


_BLANK: Triple = (EMPTY, EMPTY, EMPTY)


def _path_params(max_path: int) -> tuple[TaskParam, ...]:
    """The graph parameters plus ``min_path`` (default 1) and ``max_path``."""
    return (
        *GraphTask.params,
        TaskParam("min_path", int, 1, minimum=1, maximum=MAX_PATH, doc="fewest path edges drawn in training"),
        TaskParam("max_path", int, max_path, minimum=1, maximum=MAX_PATH, doc="most path edges drawn in training"),
    )


class _PathTask(GraphTask):
    """A graph task whose answer is a path of ``P`` edges, ``P`` drawn once per batch from
    ``[min_path, max_path]``; ``sample``'s extra keyword ``path_len`` fixes it."""

    constraints: ClassVar[tuple[tuple[str, str], ...]] = (*GraphTask.constraints, ("min_path", "max_path"))

    min_path: int
    max_path: int

    def sample(
        self,
        batch: int,
        generator: torch.Generator,
        length: int | None = None,
        path_len: int | None = None,
    ) -> Batch:
        """Like :meth:`Task.sample` (``length`` is the node count ``N``); ``path_len`` (>= 1,
        may exceed ``max_path``) fixes ``P`` for the batch instead of drawing it."""
        batch = self._check_batch(batch)
        nodes = self._resolve_length(length, generator)
        if path_len is not None and (isinstance(path_len, bool) or not isinstance(path_len, int) or path_len < 1):
            raise ValueError(f"task '{self.name}': path_len must be an int >= 1, got {path_len!r}")
        return self._draw(batch, nodes, path_len, generator)

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        return self._draw(batch, length, None, generator)

    def _draw(self, batch: int, nodes: int, path_len: int | None, generator: torch.Generator) -> Batch:
        self._check_nodes(nodes)
        if path_len is None:
            drawn = torch.randint(self.min_path, self.max_path + 1, (1,), generator=generator,
                                  device=generator.device)
            path_len = int(drawn)
        return self._draw_paths(batch, nodes, path_len, self._rng(generator), generator.device)

    def _draw_paths(
        self, batch: int, nodes: int, path_len: int, rng: random.Random, device: torch.device
    ) -> Batch:
        raise NotImplementedError


class GraphTraversalTask(_PathTask):
    """Follow a sequence of edge labels from a start node; write out each edge taken.

    Query: one step with the start node in the source field, then ``P`` steps each with
    one label. Answer: ``P`` steps, the triples (from, label, to) walked, in order. The
    labels are drawn by walking the graph from a uniformly drawn start node, at each node
    picking one of its ``out_degree`` labels uniformly, so the walk always exists (it may
    revisit nodes and edges). ``T = N * out_degree + 1 + 2P``.
    """

    name: ClassVar[str] = "graph_traversal"
    params: ClassVar[tuple[TaskParam, ...]] = _path_params(max_path=4)
    length_doc: ClassVar[str] = (
        "N, the number of nodes (from out_degree + 1 to 2**id_bits); the path length P is still drawn per batch "
        "from [min_path, max_path]; T = N·out_degree + 1 + 2P steps (the edges, the start node and P labels, "
        "P answer steps)"
    )
    sizes_doc: ClassVar[str] = (
        "input 2·id_bits + labels + 3 (source id, label one-hot, destination id, three phase flags); "
        "output 2·id_bits + labels (a source, label, destination triple)"
    )

    def _draw_paths(
        self, batch: int, nodes: int, path_len: int, rng: random.Random, device: torch.device
    ) -> Batch:
        edges = nodes * self.out_degree
        phases = [DESCRIPTION] * edges + [QUERY] * (1 + path_len) + [ANSWER] * path_len
        inputs, targets = [], []
        for _ in range(batch):
            graph = self._graph(nodes, rng)
            node = rng.choice(list(graph.nodes))
            start, walk = node, []
            for _ in range(path_len):
                label = rng.choice(sorted(lab for _, _, lab in graph.out_edges(node, data="label")))
                nxt = successor(graph, node, label)
                assert nxt is not None
                walk.append((node, label, nxt))
                node = nxt
            query = [(start, EMPTY, EMPTY)] + [(EMPTY, label, EMPTY) for _, label, _ in walk]
            inputs.append(self._description(graph, rng) + query + [_BLANK] * path_len)
            targets.append([_BLANK] * (edges + 1 + path_len) + walk)
        return self._batch(inputs, phases, targets, device)


class GraphShortestPathTask(_PathTask):
    """Write out the unique shortest path between two given nodes, one edge per step.

    Query: one step with the start node in the source field and the goal in the
    destination field. Answer: ``P`` steps, the path's triples in order. Per sequence, the
    (start, goal) pair is drawn uniformly among the pairs joined by a shortest path of
    exactly ``P`` edges that is the only shortest path between them (so the target is
    well defined); a graph with no such pair is replaced by a fresh one.

    Such a path needs ``N >= P + out_degree``: its first node's ``out_degree - 1`` other
    edges must leave the path (an edge to a later path node would be a shortcut), and the
    bound is also enough. So ``max_path + out_degree <= min_nodes`` is checked up front, and
    ``sample`` checks it for its ``length`` and ``path_len``. Near that bound few random
    graphs hold such a path (``out_degree = 3``, ``P = 3``, ``N = 6``: almost none), and
    after ``MAX_GRAPH_TRIES`` graphs for one sequence ``sample`` raises ``ValueError``;
    more nodes fix it (the defaults need about 3 graphs for ``N = 5``, ``P = 3``, and one
    from ``N = 7``). ``T = N * out_degree + 1 + P``.
    """

    name: ClassVar[str] = "graph_shortest_path"
    params: ClassVar[tuple[TaskParam, ...]] = _path_params(max_path=3)
    length_doc: ClassVar[str] = (
        "N, the number of nodes (from P + out_degree to 2**id_bits, for the path length P drawn per batch from "
        "[min_path, max_path], so at least max_path + out_degree); T = N·out_degree + 1 + P steps (the edges, "
        "the query, P answer steps)"
    )
    sizes_doc: ClassVar[str] = (
        "input 2·id_bits + labels + 3 (source id, label one-hot, destination id, three phase flags); "
        "output 2·id_bits + labels (a source, label, destination triple)"
    )

    @classmethod
    def _check_task_params(cls, ints: dict[str, int], params: Mapping[str, object]) -> None:
        if ints["max_path"] + ints["out_degree"] > ints["min_nodes"]:
            cls._broken(params, ("max_path", "out_degree", "min_nodes"),
                        f"'max_path' ({ints['max_path']}) + 'out_degree' ({ints['out_degree']}) must be <= "
                        f"'min_nodes' ({ints['min_nodes']}): a unique shortest path of P edges needs "
                        "P + out_degree nodes")

    def _draw_paths(
        self, batch: int, nodes: int, path_len: int, rng: random.Random, device: torch.device
    ) -> Batch:
        if path_len + self.out_degree > nodes:
            raise ValueError(f"task '{self.name}': a unique shortest path of {path_len} edges needs at least "
                             f"{path_len + self.out_degree} nodes (path_len + out_degree), got length={nodes}")
        edges = nodes * self.out_degree
        phases = [DESCRIPTION] * edges + [QUERY] + [ANSWER] * path_len
        inputs, targets = [], []
        for _ in range(batch):
            graph, path = self._graph_with_unique_path(nodes, path_len, rng)
            query = (path[0][0], EMPTY, path[-1][2])
            inputs.append(self._description(graph, rng) + [query] + [_BLANK] * path_len)
            targets.append([_BLANK] * (edges + 1) + path)
        return self._batch(inputs, phases, targets, device)

    def _graph_with_unique_path(
        self, nodes: int, path_len: int, rng: random.Random
    ) -> tuple[nx.DiGraph, list[Triple]]:
        for _ in range(MAX_GRAPH_TRIES):
            graph = self._graph(nodes, rng)
            pairs = sorted(
                (source, goal)
                for source, distances in nx.all_pairs_shortest_path_length(graph)
                for goal, distance in distances.items()
                if distance == path_len
            )
            rng.shuffle(pairs)
            for source, goal in pairs:
                shortest = list(itertools.islice(nx.all_shortest_paths(graph, source, goal), 2))
                if len(shortest) == 1:
                    hops = shortest[0]
                    return graph, [(a, graph.edges[a, b]["label"], b) for a, b in itertools.pairwise(hops)]
        raise ValueError(
            f"task '{self.name}': found no pair of nodes joined by a unique shortest path of "
            f"{path_len} edges in {MAX_GRAPH_TRIES} random graphs of {nodes} nodes with "
            f"out_degree={self.out_degree}; use more nodes, a smaller out_degree or shorter paths"
        )


class GraphInferenceTask(GraphTask):
    """Name the node a composite relation leads to from a given node.

    The task defines ``relations`` composite relations, relation ``r`` being a fixed
    sequence of ``compose`` base labels (:attr:`relation_labels`), fixed by the parameters
    alone: the label tuples of length ``compose`` in lexicographic order (first label
    applied first), of which relation ``r`` is the one at index
    ``r * labels**compose // relations`` -- evenly spread, distinct, the same for every batch.

    Query: one step with the source id in the source field and relation ``r`` one-hot in
    the ``relations`` extra input channels (after the phase flags). Answer: one step, the
    destination id. Per sequence, (source, relation) is drawn uniformly among the pairs
    whose every label exists along the way (with ``out_degree < labels`` not every node has
    every label); a graph with none is replaced, up to ``MAX_GRAPH_TRIES`` graphs.

    Output layout: ``id_bits`` channels, the destination id only. A triple-shaped output
    would have no place for a composite relation in its base-label field and would score
    blank fields as zeros, bits that carry no information but count in the loss; so this
    task's outputs are exactly the answer. ``T = N * out_degree + 2``.
    """

    name: ClassVar[str] = "graph_inference"
    params: ClassVar[tuple[TaskParam, ...]] = (
        *GraphTask.params,
        TaskParam("relations", int, 6, minimum=1, maximum=MAX_RELATIONS,
                  doc="composite relations (<= labels**compose)"),
        TaskParam("compose", int, 2, minimum=1, maximum=MAX_COMPOSE, doc="base labels per composite relation"),
    )
    length_doc: ClassVar[str] = (
        "N, the number of nodes (from out_degree + 1 to 2**id_bits); T = N·out_degree + 2 steps (the edges, "
        "the query, one answer step)"
    )
    sizes_doc: ClassVar[str] = (
        "input 2·id_bits + labels + 3 + relations (source id, label one-hot, destination id, three phase flags, "
        "relation one-hot); output id_bits (the destination id)"
    )

    relations: int
    compose: int

    @classmethod
    def _check_task_params(cls, ints: dict[str, int], params: Mapping[str, object]) -> None:
        available = ints["labels"] ** ints["compose"]
        if ints["relations"] > available:
            cls._broken(params, ("relations", "compose", "labels"),
                        f"'relations' ({ints['relations']}) must be <= 'labels'**'compose' ({available}): "
                        "relations are distinct label sequences")

    @property
    def relation_labels(self) -> tuple[tuple[int, ...], ...]:
        """The base-label sequence of each composite relation, ``relations`` tuples of
        ``compose`` labels."""
        total = self.labels**self.compose
        relations = []
        for r in range(self.relations):
            index, digits = r * total // self.relations, []
            for _ in range(self.compose):
                index, digit = divmod(index, self.labels)
                digits.append(digit)
            relations.append(tuple(reversed(digits)))
        return tuple(relations)

    @property
    def input_size(self) -> int:
        """``2 * id_bits + labels + 3 + relations``: triple fields, phase flags, relation one-hot."""
        return self.triple_size + 3 + self.relations

    @property
    def output_size(self) -> int:
        """``id_bits``: the destination id."""
        return self.id_bits

    def _encode_targets(self, fields: torch.Tensor) -> torch.Tensor:
        return self._encode_ids(fields[..., 2])

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        self._check_nodes(length)
        rng, device = self._rng(generator), generator.device
        edges = length * self.out_degree
        phases = [DESCRIPTION] * edges + [QUERY, ANSWER]
        relation_labels = self.relation_labels
        inputs, targets, relation_of = [], [], []
        for _ in range(batch):
            graph, source, relation, destination = self._graph_with_query(length, relation_labels, rng)
            inputs.append([*self._description(graph, rng), (source, EMPTY, EMPTY), _BLANK])
            targets.append([_BLANK] * (edges + 1) + [(EMPTY, EMPTY, destination)])
            relation_of.append(relation)
        relation_index = torch.full((batch, edges + 2), EMPTY, dtype=torch.long, device=device)
        relation_index[:, edges] = torch.tensor(relation_of, dtype=torch.long, device=device)
        return self._batch(inputs, phases, targets, device, _one_hot(relation_index, self.relations))

    def _graph_with_query(
        self, nodes: int, relation_labels: tuple[tuple[int, ...], ...], rng: random.Random
    ) -> tuple[nx.DiGraph, int, int, int]:
        for _ in range(MAX_GRAPH_TRIES):
            graph = self._graph(nodes, rng)
            valid = []
            for source in graph.nodes:
                for relation, labels in enumerate(relation_labels):
                    path = follow(graph, source, labels)
                    if path is not None:
                        valid.append((source, relation, path[-1][2]))
            if valid:
                source, relation, destination = rng.choice(valid)
                return graph, source, relation, destination
        raise ValueError(
            f"task '{self.name}': no node had a complete path for any relation in {MAX_GRAPH_TRIES} "
            f"random graphs of {nodes} nodes with out_degree={self.out_degree} of labels={self.labels}; "
            "use a larger out_degree or fewer compose steps"
        )
