"""Tests for cogdsl.tasks.graph: every batch is decoded back into triples by a slow Python
reader of the tensors (which knows only the documented channel layout), the graph is rebuilt
from the description phase with networkx, and the answers are recomputed on that graph."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import networkx as nx
import pytest
import torch

from cogdsl.tasks import (
    TASKS,
    GraphInferenceTask,
    GraphShortestPathTask,
    GraphTraversalTask,
    Task,
    TaskParamError,
    get_task,
    make_task,
)
from cogdsl.tasks import graph as graph_module
from cogdsl.tasks.base import Batch
from cogdsl.tasks.graph import answer_accuracy

GRAPH_TASKS = ("graph_traversal", "graph_shortest_path", "graph_inference")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- a reader of the documented layout ---------------------------------------------------------

Triple = tuple[int, int, int]


def id_of(bits: list[float]) -> int:
    """Bit k of an id field is (id >> k) & 1."""
    assert set(bits) <= {0.0, 1.0}
    return sum(int(b) << k for k, b in enumerate(bits))


def label_of(one_hot: list[float]) -> int | None:
    """The label a one-hot field holds, or None if the field is blank."""
    assert set(one_hot) <= {0.0, 1.0} and sum(one_hot) <= 1
    return one_hot.index(1.0) if 1.0 in one_hot else None


@dataclass
class Step:
    source: int
    label: int | None
    destination: int
    phase: str
    relation: int | None
    source_bits_set: bool
    destination_bits_set: bool


@dataclass
class Decoded:
    graph: nx.DiGraph
    description: list[Triple]
    query: list[Step]
    answer_inputs: list[Step]
    answer_targets: list[list[float]]  # the raw target rows of the answer steps
    mask: list[float]


def read_step(task: Task, row: list[float]) -> Step:
    k, n_labels = task.id_bits, task.labels  # type: ignore[attr-defined]
    flags = row[2 * k + n_labels : 2 * k + n_labels + 3]
    assert sorted(flags) == [0.0, 0.0, 1.0], "exactly one phase flag per step"
    extra = row[2 * k + n_labels + 3 :]
    return Step(
        source=id_of(row[:k]),
        label=label_of(row[k : k + n_labels]),
        destination=id_of(row[k + n_labels : 2 * k + n_labels]),
        phase=("description", "query", "answer")[flags.index(1.0)],
        relation=label_of(extra) if extra else None,
        source_bits_set=any(row[:k]),
        destination_bits_set=any(row[k + n_labels : 2 * k + n_labels]),
    )


def decode(task: Task, batch: Batch, i: int) -> Decoded:
    """Sequence ``i`` of ``batch`` as phases; the graph rebuilt from the description steps."""
    steps = [read_step(task, row) for row in batch.inputs[i].tolist()]
    phases = [s.phase for s in steps]
    # phases come in order, each non-empty: description+, query+, answer+
    assert phases == sorted(phases, key=["description", "query", "answer"].index)
    assert {"description", "query", "answer"} == set(phases)
    description = []
    graph = nx.DiGraph()
    for s in (s for s in steps if s.phase == "description"):
        assert s.label is not None and s.relation in (None,)
        triple = (s.source, s.label, s.destination)
        assert not graph.has_edge(s.source, s.destination), "an edge is described once"
        graph.add_edge(s.source, s.destination, label=s.label)
        description.append(triple)
    answer_rows = [t for t, s in enumerate(steps) if s.phase == "answer"]
    answers = [s for s in steps if s.phase == "answer"]
    for s in answers:  # answer steps carry nothing but their flag
        assert (s.source, s.label, s.destination, s.relation) == (0, None, 0, None)
    targets = batch.targets[i].tolist()
    return Decoded(
        graph=graph,
        description=description,
        query=[s for s in steps if s.phase == "query"],
        answer_inputs=answers,
        answer_targets=[targets[t] for t in answer_rows],
        mask=batch.mask[i].tolist(),
    )


def target_triple(task: Task, row: list[float]) -> Triple:
    k, n_labels = task.id_bits, task.labels  # type: ignore[attr-defined]
    label = label_of(row[k : k + n_labels])
    assert label is not None
    return id_of(row[:k]), label, id_of(row[k + n_labels : 2 * k + n_labels])


def check_graph_rules(task: Task, d: Decoded, nodes: int) -> None:
    """The rebuilt graph has the documented shape: N nodes with random ids below 2**id_bits,
    out_degree edges each to distinct other nodes with distinct labels."""
    g = d.graph
    assert g.number_of_nodes() == nodes
    assert all(0 <= n < 2**task.id_bits for n in g.nodes)  # type: ignore[attr-defined]
    assert len(d.description) == nodes * task.out_degree  # type: ignore[attr-defined]
    for n in g.nodes:
        out = list(g.out_edges(n, data="label"))
        assert len(out) == task.out_degree  # type: ignore[attr-defined]
        assert len({lab for _, _, lab in out}) == len(out), "a node's labels are distinct"
        assert all(0 <= lab < task.labels for _, _, lab in out)  # type: ignore[attr-defined]
        assert all(dst != n for _, dst, _ in out), "no self-loops"


def walk(graph: nx.DiGraph, node: int, labels: list[int]) -> list[Triple]:
    """Follow labels in the rebuilt graph; fails the test if a label is missing."""
    path = []
    for label in labels:
        (nxt,) = [dst for _, dst, lab in graph.out_edges(node, data="label") if lab == label]
        path.append((node, label, nxt))
        node = nxt
    return path


def check_mask_and_blank_targets(batch: Batch, i: int, d: Decoded) -> None:
    steps = batch.steps
    first_answer = steps - len(d.answer_inputs)
    assert d.mask == [0.0] * first_answer + [1.0] * len(d.answer_inputs)
    assert batch.targets[i, :first_answer].abs().sum() == 0


# -- the three tasks against the reader ----------------------------------------------------------


def test_traversal_answers_follow_the_query_labels() -> None:
    task = GraphTraversalTask(id_bits=5, labels=3, out_degree=2, min_nodes=4, max_nodes=9, max_path=5)
    seen_paths = set()
    for seed in range(12):
        batch = task.sample(6, gen(seed))
        for i in range(6):
            d = decode(task, batch, i)
            path_len = len(d.answer_inputs)
            nodes = (batch.steps - 1 - 2 * path_len) // task.out_degree
            check_graph_rules(task, d, nodes)
            check_mask_and_blank_targets(batch, i, d)
            start, *label_steps = d.query
            assert start.label is None and not start.destination_bits_set
            assert start.source in d.graph
            assert len(label_steps) == path_len
            labels = []
            for s in label_steps:
                assert s.label is not None and not s.source_bits_set and not s.destination_bits_set
                labels.append(s.label)
            expected = walk(d.graph, start.source, labels)
            assert [target_triple(task, row) for row in d.answer_targets] == expected
            seen_paths.add(path_len)
    assert seen_paths == {1, 2, 3, 4, 5}


def test_shortest_path_answers_are_the_unique_shortest_path() -> None:
    task = GraphShortestPathTask(id_bits=5, labels=4, out_degree=2, min_nodes=6, max_nodes=9, max_path=4)
    seen_paths = set()
    for seed in range(12):
        batch = task.sample(6, gen(seed))
        for i in range(6):
            d = decode(task, batch, i)
            path_len = len(d.answer_inputs)
            nodes = (batch.steps - 1 - path_len) // task.out_degree
            check_graph_rules(task, d, nodes)
            check_mask_and_blank_targets(batch, i, d)
            (query,) = d.query
            assert query.label is None
            source, goal = query.source, query.destination
            path = [target_triple(task, row) for row in d.answer_targets]
            assert path[0][0] == source and path[-1][2] == goal
            for a, lab, b in path:
                assert d.graph.edges[a, b]["label"] == lab
            for (_, _, reached), (leaving, _, _) in itertools.pairwise(path):
                assert reached == leaving
            assert nx.shortest_path_length(d.graph, source, goal) == path_len
            shortest = list(nx.all_shortest_paths(d.graph, source, goal))
            assert shortest == [[a for a, _, _ in path] + [goal]], "the path is the only shortest one"
            seen_paths.add(path_len)
    assert seen_paths == {1, 2, 3, 4}


def test_inference_answer_follows_the_relation() -> None:
    task = GraphInferenceTask(id_bits=5, labels=3, out_degree=2, min_nodes=4, max_nodes=8, relations=5, compose=3)
    seen_relations = set()
    for seed in range(12):
        batch = task.sample(6, gen(seed))
        assert batch.targets.shape[-1] == task.id_bits
        for i in range(6):
            d = decode(task, batch, i)
            nodes = (batch.steps - 2) // task.out_degree
            check_graph_rules(task, d, nodes)
            check_mask_and_blank_targets(batch, i, d)
            (query,) = d.query
            assert query.label is None and not query.destination_bits_set and query.relation is not None
            assert len(d.answer_inputs) == 1
            labels = list(task.relation_labels[query.relation])
            expected = walk(d.graph, query.source, labels)[-1][2]
            assert id_of(d.answer_targets[0]) == expected
            seen_relations.add(query.relation)
    assert seen_relations == set(range(5))


def test_relations_are_fixed_distinct_and_spread_over_the_label_tuples() -> None:
    task = GraphInferenceTask(labels=4, compose=2, relations=6)
    tuples = list(itertools.product(range(4), repeat=2))  # lexicographic
    assert task.relation_labels == tuple(tuples[r * 16 // 6] for r in range(6))
    assert len(set(task.relation_labels)) == 6
    assert GraphInferenceTask(labels=4, compose=2, relations=6).relation_labels == task.relation_labels
    every = GraphInferenceTask(labels=2, compose=3, relations=8, out_degree=2, min_nodes=3)
    assert every.relation_labels == tuple(itertools.product(range(2), repeat=3))


# -- shared behaviour --------------------------------------------------------------------------


@pytest.mark.parametrize("name", GRAPH_TASKS)
def test_sizes_dtypes_and_bits(name: str) -> None:
    task = make_task(name)
    for seed in range(3):
        batch = task.sample(4, gen(seed))
        assert batch.inputs.shape == (4, batch.steps, task.input_size)
        assert batch.targets.shape == (4, batch.steps, task.output_size)
        assert batch.mask.shape == (4, batch.steps)
        for t in (batch.inputs, batch.targets, batch.mask):
            assert t.dtype == torch.float32
            assert set(t.unique().tolist()) <= {0.0, 1.0}


def test_documented_sizes() -> None:
    assert (make_task("graph_traversal").input_size, make_task("graph_traversal").output_size) == (19, 16)
    assert make_task("graph_shortest_path", id_bits=7, labels=5).input_size == 2 * 7 + 5 + 3
    inference = make_task("graph_inference", id_bits=7, labels=5, relations=9)
    assert (inference.input_size, inference.output_size) == (2 * 7 + 5 + 3 + 9, 7)


@pytest.mark.parametrize("name", GRAPH_TASKS)
def test_same_seed_same_batch_different_seed_different(name: str) -> None:
    task = make_task(name)
    a, b, c = task.sample(8, gen(7)), task.sample(8, gen(7)), task.sample(8, gen(8))
    for x, y in ((a.inputs, b.inputs), (a.targets, b.targets), (a.mask, b.mask)):
        assert torch.equal(x, y)
    assert not (a.inputs.shape == c.inputs.shape and torch.equal(a.inputs, c.inputs))


@pytest.mark.parametrize("name", GRAPH_TASKS)
def test_global_rngs_are_not_used(name: str) -> None:
    task = make_task(name)
    torch.manual_seed(0)
    random.seed(0)
    a = task.sample(4, gen(3))
    torch.manual_seed(1)
    random.seed(1)
    b = task.sample(4, gen(3))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)


@pytest.mark.parametrize("name", GRAPH_TASKS)
def test_node_count_drawn_per_batch_and_names_random(name: str) -> None:
    task = make_task(name, min_nodes=5, max_nodes=8)
    counts, names = set(), set()
    for seed in range(40):
        batch = task.sample(3, gen(seed))
        per_sequence = set()
        for i in range(3):
            graph = decode(task, batch, i).graph
            per_sequence.add(graph.number_of_nodes())
            names.add(tuple(sorted(graph.nodes)))
        assert len(per_sequence) == 1, "one node count per batch"
        counts |= per_sequence
    assert counts == {5, 6, 7, 8}
    assert len(names) > 100 and max(max(n) for n in names) >= 32  # not 0..N-1


def test_overrides_beyond_the_training_range() -> None:
    traversal = make_task("graph_traversal", max_nodes=10, max_path=4)
    batch = traversal.sample(2, gen(0), length=30, path_len=9)
    assert batch.steps == 30 * 2 + 1 + 2 * 9
    d = decode(traversal, batch, 1)
    check_graph_rules(traversal, d, 30)
    labels = [s.label for s in d.query[1:]]
    assert [target_triple(traversal, r) for r in d.answer_targets] == walk(d.graph, d.query[0].source, labels)
    shortest = make_task("graph_shortest_path").sample(2, gen(0), length=20, path_len=5)
    assert shortest.steps == 20 * 2 + 1 + 5 and shortest.mask.sum(dim=1).tolist() == [5.0, 5.0]
    inference = make_task("graph_inference").sample(2, gen(0), length=40)
    assert inference.steps == 40 * 2 + 2


@pytest.mark.parametrize("name", GRAPH_TASKS)
def test_node_count_outside_what_the_ids_and_degree_allow(name: str) -> None:
    task = make_task(name, id_bits=4, out_degree=2, min_nodes=5, max_nodes=8)
    with pytest.raises(ValueError, match=r"length \(the node count\) must be in \[3, 16\]"):
        task.sample(2, gen(0), length=17)
    with pytest.raises(ValueError, match="length"):
        task.sample(2, gen(0), length=2)


def test_bad_path_len_and_impossible_shortest_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="path_len"):
        make_task("graph_traversal").sample(2, gen(0), path_len=0)
    with pytest.raises(ValueError, match=r"needs at least 6 nodes \(path_len \+ out_degree\), got length=5"):
        make_task("graph_shortest_path").sample(2, gen(0), length=5, path_len=4)
    # allowed (3 + 5 <= 8), but about 1 random graph in 10**4 holds such a path: sampling gives up
    monkeypatch.setattr(graph_module, "MAX_GRAPH_TRIES", 5)
    tight = make_task("graph_shortest_path", labels=5, out_degree=5, min_nodes=8, max_nodes=8, max_path=3)
    with pytest.raises(ValueError, match="no pair of nodes joined by a unique shortest path of 3 edges in 5 random"):
        tight.sample(2, gen(0), path_len=3)


@pytest.mark.parametrize(
    ("name", "params", "param", "fragment"),
    [
        ("graph_traversal", {"max_nodes": 65}, "max_nodes", "2**'id_bits'"),
        ("graph_traversal", {"id_bits": 3}, "id_bits", "2**'id_bits' (8)"),
        ("graph_shortest_path", {"id_bits": 3, "max_nodes": 9}, "max_nodes", "every node needs its own id"),
        ("graph_traversal", {"out_degree": 5}, "out_degree", "'labels'"),
        ("graph_inference", {"labels": 1}, "labels", "'labels'"),
        ("graph_traversal", {"out_degree": 5, "labels": 8}, "out_degree", "must be < 'min_nodes'"),
        ("graph_inference", {"min_nodes": 2}, "min_nodes", "must be < 'min_nodes'"),
        ("graph_traversal", {"min_nodes": 9, "max_nodes": 6}, "min_nodes", "'max_nodes'"),
        ("graph_traversal", {"min_path": 5}, "min_path", "'max_path'"),
        ("graph_shortest_path", {"max_path": 4}, "max_path", "needs P + out_degree nodes"),
        ("graph_shortest_path", {"out_degree": 3}, "out_degree", "'max_path' (3) + 'out_degree' (3)"),
        ("graph_shortest_path", {"min_nodes": 4}, "min_nodes", "must be <= 'min_nodes' (4)"),
        ("graph_inference", {"relations": 17}, "relations", "'labels'**'compose' (16)"),
        ("graph_inference", {"compose": 1}, "compose", "'labels'**'compose' (4)"),
        ("graph_inference", {"id_bits": 0}, "id_bits", "an int in [1, 30]"),
        ("graph_traversal", {"path_len": 3}, "path_len", "unknown parameter"),
    ],
)
def test_bad_params_raise_naming_the_param(name: str, params: dict, param: str, fragment: str) -> None:
    with pytest.raises(TaskParamError) as info:
        make_task(name, **params)
    message = str(info.value)
    assert info.value.param == param and f"'{param}'" in message and fragment in message and name in message


def test_registry() -> None:
    assert {"graph_traversal", "graph_shortest_path", "graph_inference"} <= set(TASKS)
    assert get_task("graph_traversal") is GraphTraversalTask
    assert get_task("graph_shortest_path") is GraphShortestPathTask
    assert get_task("graph_inference") is GraphInferenceTask
    task = make_task("graph_traversal", id_bits=4, labels=3, max_nodes=12)
    assert isinstance(task, GraphTraversalTask) and task.input_size == 2 * 4 + 3 + 3
    for name in GRAPH_TASKS:
        cls = get_task(name)
        assert cls.validate_params({}) == cls.defaults() and cls.loss == "bce"
        assert all(p.doc for p in cls.params)
    with pytest.raises(ValueError, match="did you mean 'graph_inference'"):
        get_task("graph_inferance")


# -- answer accuracy -----------------------------------------------------------------------------


def test_answer_accuracy_counts_whole_answer_steps() -> None:
    task = make_task("graph_traversal")
    batch = task.sample(3, gen(0), path_len=4)
    perfect = (batch.targets * 2 - 1) * 5.0
    assert answer_accuracy(perfect, batch).tolist() == [1.0, 1.0, 1.0]
    logits = perfect.clone()
    answer = batch.steps - 4
    logits[0, answer, 0] *= -1  # one wrong bit: that step is wrong
    logits[0, answer, 1] *= -1  # a second wrong bit in the same step: still one step
    logits[1, answer + 1 :, -1] *= -1  # three of four steps wrong
    logits[2, :answer] = 7.0  # unscored steps are ignored
    accuracy = answer_accuracy(logits, batch)
    assert accuracy.dtype == torch.float32 and accuracy.shape == (3,)
    assert accuracy.tolist() == [0.75, 0.25, 1.0]
    zero = logits.clone()
    zero[2, answer] = 0.0  # a logit of 0 reads as bit 0, and an answer triple has a label bit set
    assert answer_accuracy(zero, batch)[2].item() == 0.75
    with pytest.raises(ValueError, match="shape"):
        answer_accuracy(logits[:, :-1], batch)


def test_channel_layout_pins_the_documented_bit_order() -> None:
    # Inputs and targets share one encoder, so the decoding tests cannot tell LSB-first from
    # MSB-first ids; this pins the documented layout on a known triple and a blank field.
    task = make_task("graph_traversal", id_bits=4, labels=3)
    fields = torch.tensor([[[6, 2, 1], [-1, -1, 9]]])  # (B=1, T=2, source/label/destination)
    bits = task._encode_triples(fields)  # type: ignore[attr-defined]
    six, label_2, one, nine = [0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0]
    blank_id, blank_label = [0.0] * 4, [0.0] * 3
    assert bits[0].tolist() == [[*six, *label_2, *one], [*blank_id, *blank_label, *nine]]
