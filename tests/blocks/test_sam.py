"""The ``sam_memory`` block (Sparse Access Memory) against an independent oracle of the paper's equations.

The oracle below is plain Python on floats (float64), one batch element and one head at a time, written
from Rae et al. (2016), "Scaling Memory-Augmented Neural Networks with Sparse Reads and Writes", §3.1-3.2
and supplement A.3, with the choices :mod:`cogdsl.blocks.sam` documents where the paper is silent: one write
head using the mean of the previous read weights, softmax over the K chosen slots, a strength beta per
read head (1 when ``strengths: false``), ties to the lowest index in both the top-K and the least
recently accessed slot. It keeps each slot's *time of last access* (-1: never) and the step number t, as
the paper defines U^(2); the block keeps U^(2) = t - last access itself, and the tests compare the two.
It shares no code with :mod:`cogdsl.blocks.sam` or :mod:`cogdsl.ops.sam`: it is driven by the raw interface
vector, sliced and activated here from the paper's layout.

Also here: the layout and ``--explain``, gradients (gradcheck of each op and of a whole step; rows outside
the top-K and the erased row get exactly zero gradient), refused specs through ``cogdsl validate``, and a
short training run whose loss goes down with the output reading only the memory.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl import ops
from cogdsl.blocks.sam import SAMGroup
from cogdsl.cli import main
from cogdsl.ops.sam import sam_top_k
from cogdsl.tasks import make_task, sequence_loss

EPS = 1e-8  # the library's cosine: q.m / (sqrt(|q|^2 + eps^2) sqrt(|m|^2 + eps^2) + eps)


def sam_spec(reads: int = 1, writes: int = 1, slots: int = 10, width: int = 6, k: int = 3,
             params: str = "", output: str = "ctrl, r") -> str:
    """A .cog model: an LSTM driving ``reads`` read heads (0: none) and ``writes`` write heads on a sam_memory."""
    lines = ["cogdsl 1", "model t", "input  x: 5", f"output y: 4 = sigmoid({output if reads else 'ctrl'})",
             f"lstm       ctrl(hidden=16) <- x{', r@prev' if reads else ''}",
             f"sam_memory mem(slots={slots}, width={width}, k={k}{params})"]
    if writes:
        lines.append("write      w on mem by ctrl")
    if reads:
        lines.append(f"read       r{f'(heads={reads})' if reads != 1 else ''} on mem by ctrl")
    return "\n".join(lines) + "\n"


def compile_text(tmp_path: Path, text: str) -> cogdsl.CompiledModel:
    path = tmp_path / "t.cog"
    path.write_text(text)
    torch.manual_seed(0)
    return cogdsl.compile(cogdsl.load(path))


def sam_group(tmp_path: Path, text: str) -> tuple[cogdsl.CompiledModel, SAMGroup]:
    model = compile_text(tmp_path, text).double()
    (group,) = model.groups
    assert isinstance(group, SAMGroup)
    return model, group


# ----------------------------------------------------------------------------------------
# The oracle: plain Python floats, one batch element, explicit loops.
# ----------------------------------------------------------------------------------------

def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def oneplus(x: float) -> float:
    return 1 + max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def cosine(q: list[float], m: list[float]) -> float:
    dot = sum(a * b for a, b in zip(q, m, strict=True))
    return dot / (math.sqrt(sum(a * a for a in q) + EPS**2) * math.sqrt(sum(b * b for b in m) + EPS**2) + EPS)


def softmax(xs: list[float]) -> list[float]:
    top = max(xs)
    es = [math.exp(x - top) for x in xs]
    return [e / sum(es) for e in es]


def paper_fields(raw: list[float], reads: int, writes: int, width: int, strengths: bool) -> dict[str, object]:
    """The paper's p_t from the raw interface, in the layout [q: R*W | beta: R | a: W | alpha | gamma]."""
    fields: dict[str, object] = {}
    at = 0

    def take(n: int) -> list[float]:
        nonlocal at
        at += n
        return raw[at - n:at]

    if reads:
        fields["key"] = [take(width) for _ in range(reads)]
        fields["strength"] = [oneplus(x) for x in take(reads)] if strengths else [1.0] * reads
    if writes:
        fields["add"] = take(width)
        fields["alpha"] = sigmoid(take(1)[0])
        fields["gamma"] = sigmoid(take(1)[0]) if reads else 0.0
    assert at == len(raw), "the interface is exactly the paper's fields"
    return fields


def oracle_step(f: dict, memory: list[list[float]], read_prev: list[list[float]], last_access: list[float],
                t: int, k: int, delta: float, writes: bool) -> dict:
    """One SAM step (write, then sparse read of the new memory, then last-access times) for one sequence."""
    n = len(memory)
    write = [0.0] * n
    memory = [row[:] for row in memory]
    lru = None
    if writes:
        lru = min(range(n), key=lambda i: (last_access[i], i))          # eq. 6: least recently accessed
        mean_read = [sum(h[i] for h in read_prev) / len(read_prev) if read_prev else 0.0 for i in range(n)]
        for i in range(n):                                                 # eq. 5
            write[i] = f["alpha"] * (f["gamma"] * mean_read[i] + (1 - f["gamma"]) * (1.0 if i == lru else 0.0))
        for i in range(n):                                                 # eq. 3, R_t = I^U 1^T
            keep = 0.0 if i == lru else 1.0
            memory[i] = [keep * m + write[i] * a for m, a in zip(memory[i], f["add"], strict=True)]
    read_weights, reads = [], []
    for key, beta in zip(f.get("key", []), f.get("strength", []), strict=True):   # eq. 4, per head
        sims = [cosine(key, memory[i]) for i in range(n)]
        chosen = sorted(range(n), key=lambda i: (-sims[i], i))[:k]
        w = softmax([beta * sims[i] for i in chosen])
        weights = [0.0] * n
        for i, wi in zip(chosen, w, strict=True):
            weights[i] = wi
        read_weights.append(weights)
        reads.append([sum(wi * memory[i][j] for i, wi in zip(chosen, w, strict=True))
                      for j in range(len(memory[0]))])
    accessed = [write[i] + sum(h[i] for h in read_weights) for i in range(n)]
    last_access = [float(t) if accessed[i] > delta else last_access[i] for i in range(n)]
    return {"memory": memory, "read_weights": read_weights, "write": write, "reads": reads,
            "last_access": last_access, "lru": lru}


# ----------------------------------------------------------------------------------------
# 1. Steps against the oracle
# ----------------------------------------------------------------------------------------

def as_tensor(values: object) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def close(got: torch.Tensor, want: object, what: str) -> None:
    torch.testing.assert_close(got, as_tensor(want), rtol=1e-9, atol=1e-11, msg=lambda m: f"{what}: {m}")


def run_step(group: SAMGroup, interface: torch.Tensor, memory: torch.Tensor, previous: torch.Tensor,
             usage: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """group.step with U^(2) as its state: (weights, reads, the new memory, the new U^(2))."""
    result = group.step(interface, memory, previous, {group.usage_key: usage})
    assert result.memory is not None and result.writes is None and set(result.state) == {group.usage_key}
    usage = result.state[group.usage_key]
    torch.testing.assert_close(result.shown["usage"], 1 / (1 + usage))
    return result.weights, result.reads, result.memory, usage


def random_interface(model: cogdsl.CompiledModel, batch: int, g: torch.Generator) -> torch.Tensor:
    size = model.shapes.interface_sizes["ctrl"]
    return 2 * torch.randn(batch, size, generator=g, dtype=torch.float64)


def random_state(group: SAMGroup, batch: int, g: torch.Generator, start: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A tie-free state before step ``start``: memory (B, N, W), weights (B, R + writers, N) with K non-zeros
    per read head summing to 1, and U^(2) (B, N) a permutation (distinct: no tie for the LRU slot)."""
    n, k, reads = group.slots, group.k, group.plan.read_heads
    memory = torch.randn(batch, n, group.width, generator=g, dtype=torch.float64)
    weights = torch.zeros(batch, group.plan.heads, n, dtype=torch.float64)
    for b in range(batch):
        for h in range(reads):
            chosen = torch.randperm(n, generator=g)[:k]
            weights[b, h, chosen] = torch.softmax(torch.randn(k, generator=g, dtype=torch.float64), 0)
        weights[b, reads:] = torch.rand(group.plan.write_heads, n, generator=g, dtype=torch.float64) / n
    usage = torch.stack([torch.randperm(n, generator=g) for _ in range(batch)]).double()
    assert usage.max() < start  # every last-access time start - 1 - U is a step of the sequence
    return memory, weights, usage


CASES = {
    "one read head": dict(reads=1),
    "two read heads, no strength": dict(reads=2, params=", strengths=false"),
    "three read heads, k = slots (dense)": dict(reads=3, k=10),
    "k = 1, delta 0.2": dict(reads=2, k=1, params=", delta=0.2"),
    "read heads only": dict(reads=2, writes=0),
    "a write head only": dict(reads=0),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.filterwarnings("ignore::cogdsl.errors.SpecWarning")  # a write head only: a memory nothing reads
def test_steps_match_the_oracle(tmp_path: Path, case: str) -> None:
    """Three chained steps of group.step from a random tie-free state equal the oracle's, in float64."""
    model, group = sam_group(tmp_path, sam_spec(**CASES[case]))
    plan = group.plan
    reads_n, writes = plan.read_heads, bool(plan.writes)
    batch, start = 2, 12
    g = torch.Generator().manual_seed(7)
    memory, previous, usage = random_state(group, batch, g, start)
    oracle = [{"memory": memory[b].tolist(), "read_weights": previous[b, :reads_n].tolist(),
               "last_access": [start - 1 - u for u in usage[b].tolist()]} for b in range(batch)]
    for t in range(start, start + 3):
        interface = random_interface(model, batch, g)
        weights, reads, memory, usage = run_step(group, interface, memory, previous, usage)
        previous = weights
        for b in range(batch):
            o = oracle[b]
            f = paper_fields(interface[b].tolist(), reads_n, plan.write_heads, group.width, group.strengths)
            o.update(oracle_step(f, o["memory"], o["read_weights"], o["last_access"], t, group.k, group.delta,
                                 writes))
            where = f"{case}, step {t}, batch {b}"
            close(weights[b], o["read_weights"] + ([o["write"]] if writes else []), f"{where}: weights")
            if reads_n:
                close(reads[b], o["reads"], f"{where}: reads")
            else:
                assert reads is None
            close(memory[b], o["memory"], f"{where}: memory")
            close(usage[b], [t - a for a in o["last_access"]], f"{where}: usage U^(2) = t - last access")
            if writes:  # the erased row holds exactly w^W(lru) a
                close(memory[b, o["lru"]], [o["write"][o["lru"]] * a for a in f["add"]], f"{where}: LRU row")


def test_a_sequence_from_the_initial_state_breaks_ties_by_index(tmp_path: Path) -> None:
    """From the model's own initial state (every row the same constant: all similarities tie, every slot
    never accessed) six steps equal the oracle's, which sends ties to the lowest index."""
    model, group = sam_group(tmp_path, sam_spec(reads=2))
    batch = 2
    state = model.initial_state(batch, torch.zeros(1, dtype=torch.float64))
    memory, previous, usage = state["mem"], state["weights:0"], state["usage:mem"]
    assert (memory == memory[0, 0, 0]).all() and (previous == 0).all() and (usage == 0).all()
    g = torch.Generator().manual_seed(3)
    oracle = [{"memory": memory[b].tolist(), "read_weights": [[0.0] * group.slots] * 2,
               "last_access": [-1.0] * group.slots} for b in range(batch)]
    lrus = []
    for t in range(6):
        interface = random_interface(model, batch, g)
        weights, reads, memory, usage = run_step(group, interface, memory, previous, usage)
        previous = weights
        for b in range(batch):
            o = oracle[b]
            f = paper_fields(interface[b].tolist(), 2, 1, group.width, True)
            o.update(oracle_step(f, o["memory"], o["read_weights"], o["last_access"], t, group.k, group.delta, True))
            close(weights[b], o["read_weights"] + [o["write"]], f"step {t}, batch {b}: weights")
            close(reads[b], o["reads"], f"step {t}, batch {b}: reads")
            close(memory[b], o["memory"], f"step {t}, batch {b}: memory")
            close(usage[b], [t - a for a in o["last_access"]], f"step {t}, batch {b}: usage")
            lrus.append(o["lru"])
    assert lrus[:2] == [0, 0]  # the first write goes to slot 0, the lowest of N tied never-accessed slots
    assert len(set(lrus)) > 2  # and later writes move on to other slots


def test_reads_see_this_steps_write(tmp_path: Path) -> None:
    """A read head whose key is the word written this step finds it at once (unlike an NTM memory)."""
    model, group = sam_group(tmp_path, sam_spec(reads=1, k=2))
    g = torch.Generator().manual_seed(5)
    memory, previous, usage = random_state(group, 1, g, 12)
    word = torch.randn(group.width, generator=g, dtype=torch.float64)
    interface = torch.zeros(1, model.shapes.interface_sizes["ctrl"], dtype=torch.float64)
    layout = {f.name: f for f in group.layout}
    for name, value in (("key", word), ("add", 5 * word), ("strength", 30.0), ("alpha", 30.0), ("gamma", -30.0)):
        interface[0, layout[name].offset:layout[name].stop] = value
    weights, reads, memory, _ = run_step(group, interface, memory, previous, usage)
    lru = int(usage[0].argmax())
    assert weights[0, 0, lru] > 0.99 and weights[0, 1, lru] > 0.99
    torch.testing.assert_close(reads[0, 0], 5 * word, rtol=1e-2, atol=1e-2)


def test_a_sequence_keeps_the_invariants(tmp_path: Path) -> None:
    """Over 12 steps of the whole model: each read head has exactly K non-zero weights summing to 1, the write
    weights lie in [0, 1] with at most R K + 1 non-zeros, and the traced usage is 1 / (1 + U^(2))."""
    model = compile_text(tmp_path, sam_spec(reads=2, k=3)).double()
    x = torch.rand(3, 12, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        _, trace = model(x, return_weights=True)
        state = model.initial_state(3, x)
        usages = []
        for t in range(12):
            _, state = model.step(x[:, t], state)
            usages.append(state["usage:mem"])
    assert trace["r"].shape == (3, 12, 2, 10) and trace["w"].shape == (3, 12, 1, 10)
    assert ((trace["r"] > 0).sum(-1) == 3).all()
    torch.testing.assert_close(trace["r"].sum(-1), torch.ones(3, 12, 2, dtype=torch.float64))
    assert (trace["w"] >= 0).all() and (trace["w"] <= 1).all() and ((trace["w"] > 0).sum(-1) <= 7).all()
    torch.testing.assert_close(trace["mem:usage"], 1 / (1 + torch.stack(usages, dim=1)))
    assert trace["mem:usage"].min() < 0.5  # not vacuous: some slots went unaccessed for a while


# ----------------------------------------------------------------------------------------
# 2. Layout and --explain
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("reads", "width", "strengths"), [(1, 4, True), (2, 6, True), (3, 5, False)])
def test_layout_is_the_papers(tmp_path: Path, reads: int, width: int, strengths: bool) -> None:
    """[q: R*W | beta: R | a: W | alpha | gamma], contiguous from 0: R W + R + W + 2 (no beta: R W + W + 2)."""
    params = "" if strengths else ", strengths=false"
    model = compile_text(tmp_path, sam_spec(reads=reads, width=width, params=params))
    want = [("key", reads, width, "identity", 0), ("strength", reads, 1, "oneplus", 0),
            ("add", 1, width, "identity", reads), ("alpha", 1, 1, "sigmoid", reads),
            ("gamma", 1, 1, "sigmoid", reads)]
    if not strengths:
        del want[1]
    layout = model.groups[0].layout
    assert [(f.name, f.heads, f.size, f.activation, f.first_head) for f in layout] == want
    assert [f.offset for f in layout] == [0, *(f.stop for f in layout[:-1])]
    assert model.shapes.interface_sizes["ctrl"] == reads * width + reads * strengths + width + 2


def test_explain_describes_the_step_and_every_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.cog"
    path.write_text(sam_spec(reads=2, k=3))
    assert main(["compile", "--explain", str(path)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^\s+2\. heads r x2, w x1 on mem by ctrl: write \(lru: .*least recently accessed.*\), then "
                     r"read the new memory sparsely \(content\(cosine\): the 3 most similar slots per head\); "
                     r"usage: .*0\.005", text, re.MULTILINE), text
    for offset, size, name, block, activation in [(0, "2x6", "key", "r", "identity"), (12, "2x1", "strength", "r",
                                                  "oneplus"), (14, "1x6", "add", "w", "identity"),
                                                  (20, "1x1", "alpha", "w", "sigmoid"),
                                                  (21, "1x1", "gamma", "w", "sigmoid")]:
        assert re.search(rf"^\s*{offset}\s+{size}\s+{name}\s+{block}\s+{activation}\s*$", text, re.MULTILINE), name
    assert re.search(r"^\s*mem\s+sam_memory\s+0$", text, re.MULTILINE)


# ----------------------------------------------------------------------------------------
# 3. Gradients
# ----------------------------------------------------------------------------------------

def _randn(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def test_gradcheck_of_each_op() -> None:
    """float64 gradcheck of sam_read (memory, keys, strengths; the slots fixed), sam_write and
    sam_write_weights (every input)."""
    g = torch.Generator().manual_seed(11)
    b, n, w, r, k = 2, 7, 4, 2, 3
    memory, keys = _randn(g, b, n, w), _randn(g, b, r, w)
    strengths = 1 + torch.rand(b, r, generator=g, dtype=torch.float64) * 3
    slots = sam_top_k(memory, keys, k)

    def read(memory: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return ops.sam_read(memory, keys, strengths, slots)

    assert torch.autograd.gradcheck(read, tuple(t.clone().requires_grad_() for t in (memory, keys, strengths)))
    lru = torch.nn.functional.one_hot(torch.tensor([3, 0]), n).double()
    write_weights, add = torch.rand(b, n, generator=g, dtype=torch.float64), _randn(g, b, w)
    assert torch.autograd.gradcheck(ops.sam_write, tuple(t.clone().requires_grad_()
                                                         for t in (memory, write_weights, add, lru)))
    read_weights = torch.softmax(_randn(g, b, r, n), -1)
    alpha, gamma = torch.rand(b, generator=g, dtype=torch.float64), torch.rand(b, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(ops.sam_write_weights, tuple(t.clone().requires_grad_()
                                                                 for t in (read_weights, lru, alpha, gamma)))


def test_rows_outside_the_top_k_get_no_gradient() -> None:
    """d(reads, weights)/d memory is exactly zero on every row no head chose, non-zero on each chosen row."""
    g = torch.Generator().manual_seed(4)
    b, n, w, r, k = 3, 16, 5, 2, 4
    memory = _randn(g, b, n, w).requires_grad_()
    keys, strengths = _randn(g, b, r, w), 1 + torch.rand(b, r, generator=g, dtype=torch.float64)
    slots = sam_top_k(memory, keys, k)
    weights, reads = ops.sam_read(memory, keys, strengths, slots)
    loss = (reads * _randn(g, b, r, w)).sum() + (weights * _randn(g, b, r, n)).sum()
    (grad,) = torch.autograd.grad(loss, memory)
    chosen = torch.zeros(b, n, dtype=torch.bool).scatter(1, slots.reshape(b, -1), True)
    assert (grad[~chosen] == 0).all()
    assert (grad.abs().sum(-1)[chosen] > 0).all()
    assert chosen.sum() < b * n  # not vacuous: some rows were not chosen


def test_a_step_passes_gradient_only_through_the_rows_it_read(tmp_path: Path) -> None:
    """Through a whole step, this step's reads depend on M_{t-1} only at the rows read, less the erased LRU
    row (its old content is gone); gradcheck of the step in the interface, the memory and the previous
    weights, from a tie-free state."""
    model, group = sam_group(tmp_path, sam_spec(reads=1, slots=6, width=3, k=2))
    g = torch.Generator().manual_seed(9)
    memory, previous, usage = random_state(group, 1, g, 12)
    interface = random_interface(model, 1, g)
    memory.requires_grad_()
    weights, reads, new_memory, _ = run_step(group, interface, memory, previous, usage)
    (grad,) = torch.autograd.grad((reads * _randn(g, *reads.shape)).sum(), memory, retain_graph=True)
    read_rows = set(weights[0, 0].nonzero().flatten().tolist())
    lru = int(usage[0].argmax())
    touched = set(grad[0].abs().sum(-1).nonzero().flatten().tolist())
    assert touched == read_rows - {lru} and touched
    # the erased row passes nothing back; every other row passes the identity
    upstream = _randn(g, *new_memory.shape)
    (grad,) = torch.autograd.grad((new_memory * upstream).sum(), memory)
    assert (grad[0, lru] == 0).all()
    rest = [i for i in range(group.slots) if i != lru]
    torch.testing.assert_close(grad[0, rest], upstream[0, rest])

    def step(interface: torch.Tensor, memory: torch.Tensor, previous: torch.Tensor) -> tuple[torch.Tensor, ...]:
        weights, reads, new_memory, _ = run_step(group, interface, memory, previous, usage)
        return weights, reads, new_memory

    assert torch.autograd.gradcheck(step, tuple(t.detach().clone().requires_grad_()
                                                for t in (interface, memory, previous)))


# ----------------------------------------------------------------------------------------
# 4. Refused specs, through `cogdsl validate`
# ----------------------------------------------------------------------------------------

BAD = {
    # name: (the spec's text, the text the caret points at, its code, a part of its message)
    "NTM pipe on a read head": (sam_spec().replace("read       r on mem by ctrl",
                                                   "read       r on mem by ctrl: content(cosine) | shift(1)"),
                                "shift(1)", "E402", "read 'r': 'shift' does not address a sam_memory"),
    "NTM address on a write head": (sam_spec().replace("write      w on mem by ctrl",
                                                       "write      w on mem by ctrl: shift(1) | sharpen"),
                                    "shift(1)", "E402", "write 'w': 'shift' does not address a sam_memory"),
    "DNC mixture on a write head": (sam_spec().replace("write      w on mem by ctrl",
                                                       "write      w on mem by ctrl: lru + allocate"),
                                    "allocate", "E402", "write 'w': 'allocate' does not address a sam_memory"),
    "dot similarity": (sam_spec().replace("read       r on mem by ctrl", "read       r on mem by ctrl: content(dot)"),
                       "content(dot)", "E402", "read 'r': a sam_memory reads by cosine similarity, not 'dot'"),
    "lru with a decay": (sam_spec().replace("write      w on mem by ctrl", "write      w on mem by ctrl: lru(0.5)"),
                         "lru(0.5)", "E403", "write 'w': stage 'lru' takes no argument on a sam_memory"),
    "k over slots": (sam_spec(k=11), "k=11", "E205", "sam_memory 'mem': k is 11 but the memory has 10 slots"),
    "two write heads": (sam_spec().replace("write      w on", "write      w(heads=2) on"),
                        "w(heads=2)", "E309", "sam_memory 'mem': 'w' makes 2 write heads"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_spec_is_refused_where_it_is_wrong(tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
                                                 ) -> None:
    text, token, code, message = BAD[case]
    path = tmp_path / "bad.cog"
    path.write_text(text)
    capsys.readouterr()
    assert main(["validate", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    line_no = next(i for i, line in enumerate(text.splitlines(), start=1) if token in line)
    source = text.splitlines()[line_no - 1]
    column = source.index(token) + 1
    assert lines[0].startswith(f"{path}:{line_no}:{column}: error[{code}]: {message}"), lines[0]
    assert lines[1].strip() == source
    assert lines[2].index("^") == lines[1].index(source) + column - 1
    assert lines[3].lstrip().startswith("hint: ")


def test_the_defaults_and_their_spelled_forms_are_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    text = sam_spec().replace("write      w on mem by ctrl", "write      w on mem by ctrl: lru").replace(
        "read       r on mem by ctrl", "read       r on mem by ctrl: content")
    path = tmp_path / "good.cog"
    path.write_text(text)
    assert main(["validate", str(path)]) == 0, capsys.readouterr().out


# ----------------------------------------------------------------------------------------
# 5. It learns
# ----------------------------------------------------------------------------------------

def test_a_short_training_run_lowers_the_loss(tmp_path: Path) -> None:
    """200 Adam steps on copy (4 bits, lengths 1-4) with the output reading only what the heads read, so
    every bit it gets right went through a write and a sparse read: the loss per bit falls from ln 2 (chance)
    by over 15%."""
    model = compile_text(tmp_path, sam_spec(reads=1, slots=16, width=8, k=2, output="r"))
    task = make_task("copy", bits=4, min_len=1, max_len=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    per_bit = []
    for _ in range(200):
        batch = task.sample(16, g)
        optimizer.zero_grad()
        loss = sequence_loss(model(batch.inputs, raw=True), batch)
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 10.0)
        optimizer.step()
        per_bit.append(loss.item() * 16 / (batch.mask.sum().item() * 4) / math.log(2))
    first, last = sum(per_bit[:20]) / 20, sum(per_bit[-20:]) / 20
    assert first > 0.95, first  # chance: the reads start empty
    assert last < 0.85 * first, (first, last)
