"""The ``dnc_memory`` block against an independent oracle of the DNC equations.

The oracle below is plain Python on floats (float64), one batch element at a time, with
explicit loops, written from Graves et al. (2016), "Hybrid computing using a neural network
with dynamic external memory", Nature 538, Methods ("Reading and writing to memory", "Dynamic
memory allocation", "Temporal memory linkage"); several write heads follow DeepMind's
reference code (``addressing.py``: per-head links and precedences, usage from
1 - prod_k(1 - w_k), each head's allocation from a usage that counts the earlier heads as
written). It shares no code with :mod:`cogdsl.blocks.dnc` or :mod:`cogdsl.ops`; it is driven
by the activated interface fields of :meth:`DNCGroup.fields`, whose activations are checked on
their own against the paper's (oneplus, sigmoid, softmax).

Also here: the interface layout (the paper's size W*R + 3W + 5R + 3), ``--explain``, the
invariants of usage, weightings and links over a sequence, gradients (gradcheck, and
``stop_usage_gradient``), that reads see this step's write (unlike an NTM ``memory``), and the
Triton backend under its CPU interpreter.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.blocks.dnc import DNCGroup
from cogdsl.cli.command import main

ROOT = Path(__file__).resolve().parent.parent

PAPER_READ = "backward + content(cosine) + forward"
PAPER_WRITE = "content(cosine) + allocate"


def dnc_spec(read: str = PAPER_READ, write: str = PAPER_WRITE, reads: int = 2, writes: int = 1, slots: int = 10,
             width: int = 8, memory_params: str = "") -> str:
    """A .cog model: an LSTM driving ``reads`` read heads and ``writes`` write heads on a dnc_memory."""
    read_heads = f"(heads={reads})" if reads != 1 else ""
    write_heads = f"(heads={writes})" if writes != 1 else ""
    return f"""\
cogdsl 1
model t
input  x: 6
output y: 4 = sigmoid(ctrl, r)
lstm       ctrl(hidden=32) <- x, r@prev
dnc_memory mem(slots={slots}, width={width}{memory_params})
write      w{write_heads} on mem by ctrl: {write}
read       r{read_heads} on mem by ctrl: {read}
"""


def compile_text(tmp_path: Path, text: str, name: str = "t") -> cogdsl.CompiledModel:
    path = tmp_path / f"{name}.cog"
    path.write_text(text)
    torch.manual_seed(0)
    return cogdsl.compile(cogdsl.load(path))


def dnc_group(tmp_path: Path, text: str) -> tuple[cogdsl.CompiledModel, DNCGroup]:
    model = compile_text(tmp_path, text).double()
    group = model.groups[0]
    assert isinstance(group, DNCGroup)
    return model, group


# ----------------------------------------------------------------------------------------
# The oracle: plain Python floats, one batch element, explicit loops.
# ----------------------------------------------------------------------------------------

def softplus(x: float) -> float:
    """log(1 + e^x), computed without overflow."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def oneplus(x: float) -> float:
    """oneplus(x) = 1 + log(1 + e^x): the paper's activation of the strengths (beta >= 1)."""
    return 1.0 + softplus(x)


def sigmoid(x: float) -> float:
    """sigma(x) = 1 / (1 + e^-x): the gates (free, allocation, write) and the erase vector."""
    return 1.0 / (1.0 + math.exp(-x))


def softmax(xs: list[float]) -> list[float]:
    """softmax: the read modes pi, and the normalisation of content weights."""
    top = max(xs)
    exps = [math.exp(x - top) for x in xs]
    total = sum(exps)
    return [e / total for e in exps]


ACTIVATIONS = {"identity": lambda x: x, "oneplus": oneplus, "sigmoid": sigmoid}


def oracle_fields(layout: list, interface: list[float]) -> dict[str, list]:
    """Slice each field from the (clamped) interface vector and activate it, head by head.

    A field occupies ``heads * size`` entries from its offset, head-major. Size-1 fields give a
    float per head, the others a list per head; ``softmax`` is over one head's entries.
    """
    out: dict[str, list] = {}
    for field in layout:
        per_head = []
        for h in range(field.heads):
            raw = interface[field.offset + h * field.size: field.offset + (h + 1) * field.size]
            if field.activation == "softmax":
                values = softmax(raw)
            else:
                values = [ACTIVATIONS[field.activation](x) for x in raw]
            per_head.append(values[0] if field.size == 1 else values)
        out[field.name] = per_head
    return out


def similarity(key: list[float], row: list[float], kind: str) -> float:
    """D(u, v) = u.v / (|u| |v|), the paper's cosine similarity; or the plain dot product u.v."""
    dot = sum(a * b for a, b in zip(key, row, strict=True))
    if kind == "dot":
        return dot
    norms = math.sqrt(sum(a * a for a in key)) * math.sqrt(sum(b * b for b in row))
    return dot / norms


def usage_update(usage: list[float], previous_writes: list[list[float]], previous_reads: list[list[float]],
                 free_gates: list[float]) -> list[float]:
    """u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} o w^w_{t-1}) o psi_t, psi_t = prod_r (1 - f_r w^r_{t-1,r}).

    With several write heads, w^w_{t-1} is their combined weighting 1 - prod_k (1 - w^w_{t-1,k}).
    """
    new = []
    for i, u in enumerate(usage):
        not_written = 1.0
        for w in previous_writes:
            not_written *= 1.0 - w[i]
        written = 1.0 - not_written
        retention = 1.0
        for f, w in zip(free_gates, previous_reads, strict=True):
            retention *= 1.0 - f * w[i]
        new.append((u + written - u * written) * retention)
    return new


def allocation_weighting(usage: list[float]) -> list[float]:
    """a_t[phi_t[j]] = (1 - u_t[phi_t[j]]) prod_{i<j} u_t[phi_t[i]], phi_t the slots by ascending usage.

    Python's ``sorted`` is stable: equal usages keep the order of their slots.
    """
    order = sorted(range(len(usage)), key=lambda i: usage[i])
    allocation = [0.0] * len(usage)
    product = 1.0
    for slot in order:
        allocation[slot] = (1.0 - usage[slot]) * product
        product *= usage[slot]
    return allocation


def erase_and_add(memory: list[list[float]], writes: list[list[float]], erases: list[list[float]],
                  adds: list[list[float]]) -> list[list[float]]:
    """M_t = M_{t-1} o prod_k (E - w_k e_k^T) + sum_k w_k v_k^T (one write head: the paper's equation)."""
    new = []
    for i, row in enumerate(memory):
        new_row = []
        for j, m in enumerate(row):
            kept = m
            for w, e in zip(writes, erases, strict=True):
                kept *= 1.0 - w[i] * e[j]
            new_row.append(kept + sum(w[i] * v[j] for w, v in zip(writes, adds, strict=True)))
        new.append(new_row)
    return new


def link_update(link: list[list[float]], precedence: list[float], w: list[float]) -> list[list[float]]:
    """L_t[i, j] = (1 - w_i - w_j) L_{t-1}[i, j] + w_i p_{t-1}[j] for i != j; L_t[i, i] = 0."""
    n = len(w)
    return [[0.0 if i == j else (1.0 - w[i] - w[j]) * link[i][j] + w[i] * precedence[j] for j in range(n)]
            for i in range(n)]


def precedence_update(precedence: list[float], w: list[float]) -> list[float]:
    """p_t = (1 - sum_i w_i) p_{t-1} + w."""
    total = sum(w)
    return [(1.0 - total) * p + x for p, x in zip(precedence, w, strict=True)]


def forward_weighting(link: list[list[float]], w: list[float]) -> list[float]:
    """f_t = L_t w^r_{t-1}: f[i] = sum_j L[i, j] w[j]."""
    return [sum(link[i][j] * w[j] for j in range(len(w))) for i in range(len(w))]


def backward_weighting(link: list[list[float]], w: list[float]) -> list[float]:
    """b_t = L_t^T w^r_{t-1}: b[i] = sum_j L[j, i] w[j]."""
    return [sum(link[j][i] * w[j] for j in range(len(w))) for i in range(len(w))]


def read_vector(memory: list[list[float]], w: list[float]) -> list[float]:
    """r = M_t^T w^r: r[j] = sum_i w[i] M[i, j]."""
    return [sum(w[i] * memory[i][j] for i in range(len(w))) for j in range(len(memory[0]))]


def oracle_modes(read_terms: tuple[str, ...], writers: int) -> list[str]:
    """The read modes in the order of the address's terms; backward and forward once per write head."""
    modes = []
    for term in read_terms:
        if term == "content" or writers == 1:
            modes.append(term)
        else:
            modes += [f"{term}:{k}" for k in range(writers)]
    return modes


def oracle_step(f: dict[str, list], memory: list[list[float]], previous_reads: list[list[float]],
                previous_writes: list[list[float]], usage: list[float], links: list[list[list[float]]],
                precedences: list[list[float]], read_terms: tuple[str, ...], write_terms: tuple[str, ...],
                read_similarity: str, write_similarity: str, lru_decays: dict[str, float] | None = None,
                recency: dict[str, list[list[float]]] | None = None) -> dict[str, list]:
    """One DNC step for one batch element, in the paper's order:

    1. usage u_t from u_{t-1}, last step's write weights and the free gates on last step's reads;
    2. write weights w^w_k = g_w (g_a a_k + (1 - g_a) c_k) with c_k = C(M_{t-1}, k^w, beta^w) and
       a_k the allocation weighting of u_t, later heads seeing u <- u + (1 - u) g_w g_a a for each
       earlier head (only ``allocate``: g_a = 1; only ``content``: g_a = 0);
    3. erase and add: M_t;
    4. each write head's link matrix and precedence;
    5. read weights w^r = sum_m pi_m (mode m) over backward b = L_t^T w^r_{t-1}, content
       C(M_t, k^r, beta^r) and forward f = L_t w^r_{t-1} (one of each direction per write head),
       then reads r = M_t^T w^r from the new memory.

    A role ("read", "write") in ``lru_decays`` takes its content weighting as the Dynamic NTM's
    least recently used one, softmax_i(z_i - gamma v_i) with z_i = beta D(k, M[i]) and v the
    head's moving average of its logits from ``recency``, updated to lambda v + (1 - lambda) z.
    """
    writers = len(previous_writes)
    lru_decays = lru_decays or {}
    new_recency: dict[str, list[list[float]]] = {role: [] for role in lru_decays}

    def content_of(role: str, head: int, rows: list[list[float]], kind: str) -> list[float]:
        logits = [f[f"{role}_strength"][head] * similarity(f[f"{role}_key"][head], row, kind) for row in rows]
        if role not in lru_decays:
            return softmax(logits)
        assert recency is not None
        decay, gamma, average = lru_decays[role], f[f"{role}_lru_gamma"][head], recency[role][head]
        new_recency[role].append([decay * v + (1.0 - decay) * z for v, z in zip(average, logits, strict=True)])
        return softmax([z - gamma * v for z, v in zip(logits, average, strict=True)])

    usage = usage_update(usage, previous_writes, previous_reads, f["free_gate"])

    writes = []
    free = list(usage)
    for k in range(writers):
        gate = f["write_gate"][k]
        if "allocate" in write_terms:
            allocation = allocation_weighting(free)
            mix = f["allocation_gate"][k] if "content" in write_terms else 1.0
            free = [u + (1.0 - u) * gate * mix * a for u, a in zip(free, allocation, strict=True)]
        else:
            allocation, mix = [0.0] * len(usage), 0.0
        if "content" in write_terms:
            content = content_of("write", k, memory, write_similarity)
        else:
            content = [0.0] * len(usage)
        writes.append([gate * (mix * a + (1.0 - mix) * c) for a, c in zip(allocation, content, strict=True)])

    new_memory = erase_and_add(memory, writes, f["erase"], f["add"])
    new_links = [link_update(links[k], precedences[k], writes[k]) for k in range(writers)]
    new_precedences = [precedence_update(precedences[k], writes[k]) for k in range(writers)]

    reads, read_weights, all_modes = [], [], []
    for r, previous in enumerate(previous_reads):
        candidates = []
        for term in read_terms:
            if term == "content":
                candidates.append(content_of("read", r, new_memory, read_similarity))
            elif term == "forward":
                candidates += [forward_weighting(new_links[k], previous) for k in range(writers)]
            else:
                candidates += [backward_weighting(new_links[k], previous) for k in range(writers)]
        modes = f["read_mode"][r] if "read_mode" in f else [1.0]
        weights = [sum(pi * c[i] for pi, c in zip(modes, candidates, strict=True)) for i in range(len(usage))]
        read_weights.append(weights)
        reads.append(read_vector(new_memory, weights))
        all_modes.append(modes)
    return {"weights": read_weights + writes, "reads": reads, "memory": new_memory, "usage": usage,
            "link": new_links, "precedence": new_precedences, "modes": all_modes, "lru": new_recency}


# ----------------------------------------------------------------------------------------
# Random inputs
# ----------------------------------------------------------------------------------------

def interface_size(model: cogdsl.CompiledModel) -> int:
    return model.shapes.interface_sizes["ctrl"]


def random_interface(model: cogdsl.CompiledModel, batch: int, g: torch.Generator) -> torch.Tensor:
    """N(0, 1) raw interface values: gates and strengths well inside their unsaturated range."""
    return torch.randn(batch, interface_size(model), generator=g, dtype=torch.float64)


def random_state(group: DNCGroup, batch: int, g: torch.Generator, ties: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Memory, previous weights (distributions) and usage (in (0, 1)), links, precedences.

    Links are non-negative with a zero diagonal and rows and columns summing to less than 1;
    each precedence sums to less than 1. With ``ties``, the previous weights are uniform and the
    usage takes only two values, so the usage after the update has ties among its slots.
    """
    plan = group.plan
    n, heads, writers = group.slots, plan.heads, plan.write_heads
    f64 = torch.float64
    memory = torch.randn(batch, n, group.width, generator=g, dtype=f64)
    if ties:
        previous = torch.full((batch, heads, n), 1.0 / n, dtype=f64)
        usage = torch.tensor([0.3, 0.6] * n, dtype=f64)[:n].repeat(batch, 1)
    else:
        previous = torch.softmax(2 * torch.randn(batch, heads, n, generator=g, dtype=f64), dim=-1)
        usage = 0.05 + 0.9 * torch.rand(batch, n, generator=g, dtype=f64)
    link = torch.rand(batch, writers, n, n, generator=g, dtype=f64) / n
    link = link * (1 - torch.eye(n, dtype=f64))
    precedence = torch.softmax(torch.randn(batch, writers, n, generator=g, dtype=f64), dim=-1)
    precedence = precedence * torch.rand(batch, writers, 1, generator=g, dtype=f64)
    usage_key, link_key, precedence_key = group.state_keys
    state = {usage_key: usage, link_key: link, precedence_key: precedence}
    for role, key in group.lru_keys.items():  # moving averages of logits: any real numbers
        heads_of_role = plan.read_heads if role == "read" else writers
        state[key] = 2 * torch.randn(batch, heads_of_role, n, generator=g, dtype=f64)
    return memory, previous, state


def as_tensor(values: list) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def close(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    # The block's cosine adds 1e-8 to the norms' product (the oracle's has no epsilon): that alone
    # separates them, by at most ~3e-10 here; any error in an equation is orders of magnitude larger.
    torch.testing.assert_close(got, want, atol=1e-8, rtol=1e-7, msg=lambda m: f"{what}: {m}")


# ----------------------------------------------------------------------------------------
# 1, 2. The block against the oracle
# ----------------------------------------------------------------------------------------

CASES = {
    "paper": dict(),
    "paper, usage ties": dict(ties=True),
    "two write heads": dict(writes=2),
    "two write heads, usage ties": dict(writes=2, ties=True),
    "write allocate only": dict(write="allocate"),
    "two write heads, allocate only": dict(writes=2, write="allocate"),
    "write content only": dict(write="content(cosine)"),
    "read content only": dict(read="content(cosine)"),
    "read forward + content(dot)": dict(read="forward + content(dot)"),
    "two write heads, forward + content(dot), one read head": dict(writes=2, reads=1, read="forward + content(dot)"),
    # Dynamic NTM least-recently-used content terms (cogdsl.blocks.dntm), from a random moving average
    "write content | lru": dict(write="content(cosine) | lru(0.3) + allocate"),
    "read and write content | lru": dict(read="backward + content(dot) | lru + forward",
                                         write="content(cosine) | lru(0.5)"),
    "two write heads, content | lru": dict(writes=2, write="content(cosine) | lru + allocate",
                                           read="content(cosine) | lru(0.2)"),
}


def test_fields_are_the_papers_activations(tmp_path: Path) -> None:
    """group.fields slices the layout and applies oneplus / sigmoid / softmax / identity."""
    model, group = dnc_group(tmp_path, dnc_spec(writes=2))
    g = torch.Generator().manual_seed(1)
    interface = 3 * random_interface(model, 3, g)
    fields = group.fields(interface)
    assert set(fields) == {f.name for f in group.layout}
    for b in range(3):
        want = oracle_fields(group.layout, interface[b].tolist())
        for name, values in want.items():
            close(fields[name][b], as_tensor(values), f"field {name}")
    assert (fields["read_strength"] >= 1).all() and (fields["write_strength"] >= 1).all()


@pytest.mark.parametrize("case", list(CASES))
def test_steps_match_the_oracle(tmp_path: Path, case: str) -> None:
    """Three chained steps of group.step from a random state equal the oracle's, in float64."""
    options = dict(CASES[case])
    ties = options.pop("ties", False)
    model, group = dnc_group(tmp_path, dnc_spec(**options))
    plan = group.plan
    reads_n, writers = plan.read_heads, plan.write_heads
    read_terms = tuple(s.name for s in plan.stages if s.name != "lru")
    write_terms = tuple(s.name for s in plan.write_stages if s.name != "lru")
    lru_decays = {role: s.arg("decay") for role, stages in (("read", plan.stages), ("write", plan.write_stages))
                  for s in stages if s.name == "lru"}
    assert set(lru_decays) == set(group.lru_keys)
    read_similarity = next((s.arg("similarity") for s in plan.stages if s.name == "content"), "cosine")
    write_similarity = next((s.arg("similarity") for s in plan.write_stages if s.name == "content"), "cosine")
    assert group.modes == tuple(oracle_modes(read_terms, writers))

    batch = 2
    g = torch.Generator().manual_seed(7)
    memory, previous, state = random_state(group, batch, g, ties=ties)
    usage_key, link_key, precedence_key = group.state_keys
    oracle = [
        {"memory": memory[b].tolist(), "weights": previous[b].tolist(), "usage": state[usage_key][b].tolist(),
         "link": state[link_key][b].tolist(), "precedence": state[precedence_key][b].tolist(),
         "lru": {role: state[key][b].tolist() for role, key in group.lru_keys.items()}}
        for b in range(batch)
    ]
    for step in range(3):
        interface = random_interface(model, batch, g)
        fields = group.fields(interface)
        result = group.step(interface, memory, previous, state)
        weights, reads, memory, state, extras = result.weights, result.reads, result.memory, result.state, result.shown
        previous = weights
        for b in range(batch):
            o = oracle[b]
            for name, values in oracle_fields(group.layout, interface[b].tolist()).items():
                close(fields[name][b], as_tensor(values), f"{case}: field {name}")
            o.update(oracle_step({name: t[b].tolist() for name, t in fields.items()}, o["memory"],
                                 o["weights"][:reads_n], o["weights"][reads_n:], o["usage"], o["link"],
                                 o["precedence"], read_terms, write_terms, read_similarity, write_similarity,
                                 lru_decays, o["lru"]))
            where = f"{case}, step {step}, batch {b}"
            close(weights[b], as_tensor(o["weights"]), f"{where}: weights (reads, then writes)")
            close(reads[b], as_tensor(o["reads"]), f"{where}: reads")
            close(memory[b], as_tensor(o["memory"]), f"{where}: memory")
            close(state[usage_key][b], as_tensor(o["usage"]), f"{where}: usage")
            close(extras["usage"][b], as_tensor(o["usage"]), f"{where}: extras usage")
            close(state[link_key][b], as_tensor(o["link"]), f"{where}: links")
            close(state[precedence_key][b], as_tensor(o["precedence"]), f"{where}: precedences")
            close(extras["modes"][b], as_tensor(o["modes"]), f"{where}: read modes")
            for role, key in group.lru_keys.items():
                close(state[key][b], as_tensor(o["lru"][role]), f"{where}: {role} lru moving average")
            if ties and step == 0:  # the case is only worth its name if the allocation met ties
                assert len(set(o["usage"])) < len(o["usage"])


def test_allocation_of_two_write_heads_takes_two_different_free_slots(tmp_path: Path) -> None:
    """With gates at 1, the second head allocates the second least-used slot, not the first's."""
    model, group = dnc_group(tmp_path, dnc_spec(writes=2, write="allocate"))
    n = group.slots
    usage = torch.full((1, n), 0.9, dtype=torch.float64)
    usage[0, 6], usage[0, 2] = 0.0, 0.05
    memory, previous, state = random_state(group, 1, torch.Generator().manual_seed(3))
    previous = torch.zeros_like(previous)
    state[group.state_keys[0]] = usage
    interface = torch.zeros(1, interface_size(model), dtype=torch.float64)
    gate = next(f for f in group.layout if f.name == "write_gate")
    interface[0, gate.offset:gate.stop] = 30.0
    weights = group.step(interface, memory, previous, state).weights
    writes = weights[0, group.plan.read_heads:]
    assert writes[0].argmax().item() == 6 and writes[0, 6].item() > 0.99
    assert writes[1].argmax().item() == 2 and writes[1, 2].item() > 0.9


# ----------------------------------------------------------------------------------------
# 2. Layout and --explain
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("reads", "width"), [(1, 4), (2, 8), (4, 5)])
def test_interface_size_is_the_papers(tmp_path: Path, reads: int, width: int) -> None:
    """One write head, the paper's mixtures: W*R + 3W + 5R + 3 (Graves et al. 2016, Methods)."""
    model = compile_text(tmp_path, dnc_spec(reads=reads, width=width))
    assert interface_size(model) == width * reads + 3 * width + 5 * reads + 3


LAYOUTS = {
    # (read, write, reads, writes): [(field, heads, size, activation), ...] with W = 8
    (PAPER_READ, PAPER_WRITE, 2, 1): [
        ("read_key", 2, 8, "identity"), ("read_strength", 2, 1, "oneplus"), ("free_gate", 2, 1, "sigmoid"),
        ("read_mode", 2, 3, "softmax"), ("write_key", 1, 8, "identity"), ("write_strength", 1, 1, "oneplus"),
        ("erase", 1, 8, "sigmoid"), ("add", 1, 8, "identity"), ("allocation_gate", 1, 1, "sigmoid"),
        ("write_gate", 1, 1, "sigmoid")],
    (PAPER_READ, PAPER_WRITE, 2, 2): [
        ("read_key", 2, 8, "identity"), ("read_strength", 2, 1, "oneplus"), ("free_gate", 2, 1, "sigmoid"),
        ("read_mode", 2, 5, "softmax"), ("write_key", 2, 8, "identity"), ("write_strength", 2, 1, "oneplus"),
        ("erase", 2, 8, "sigmoid"), ("add", 2, 8, "identity"), ("allocation_gate", 2, 1, "sigmoid"),
        ("write_gate", 2, 1, "sigmoid")],
    (PAPER_READ, "allocate", 2, 1): [
        ("read_key", 2, 8, "identity"), ("read_strength", 2, 1, "oneplus"), ("free_gate", 2, 1, "sigmoid"),
        ("read_mode", 2, 3, "softmax"), ("erase", 1, 8, "sigmoid"), ("add", 1, 8, "identity"),
        ("write_gate", 1, 1, "sigmoid")],
    (PAPER_READ, "content(cosine)", 2, 1): [
        ("read_key", 2, 8, "identity"), ("read_strength", 2, 1, "oneplus"), ("free_gate", 2, 1, "sigmoid"),
        ("read_mode", 2, 3, "softmax"), ("write_key", 1, 8, "identity"), ("write_strength", 1, 1, "oneplus"),
        ("erase", 1, 8, "sigmoid"), ("add", 1, 8, "identity"), ("write_gate", 1, 1, "sigmoid")],
    ("content(cosine)", PAPER_WRITE, 3, 1): [
        ("read_key", 3, 8, "identity"), ("read_strength", 3, 1, "oneplus"), ("free_gate", 3, 1, "sigmoid"),
        ("write_key", 1, 8, "identity"), ("write_strength", 1, 1, "oneplus"), ("erase", 1, 8, "sigmoid"),
        ("add", 1, 8, "identity"), ("allocation_gate", 1, 1, "sigmoid"), ("write_gate", 1, 1, "sigmoid")],
    ("forward + content(dot)", "allocate", 1, 2): [
        ("read_key", 1, 8, "identity"), ("read_strength", 1, 1, "oneplus"), ("free_gate", 1, 1, "sigmoid"),
        ("read_mode", 1, 3, "softmax"), ("erase", 2, 8, "sigmoid"), ("add", 2, 8, "identity"),
        ("write_gate", 2, 1, "sigmoid")],
}


@pytest.mark.parametrize("key", list(LAYOUTS), ids=lambda k: f"{k[0]} / {k[1]} / R={k[2]} K={k[3]}")
def test_layout_of_each_mixture(tmp_path: Path, key: tuple[str, str, int, int]) -> None:
    """Each mixture has exactly the fields it needs, contiguous from offset 0, filling the interface."""
    read, write, reads, writes = key
    model = compile_text(tmp_path, dnc_spec(read=read, write=write, reads=reads, writes=writes))
    layout = model.groups[0].layout
    assert [(f.name, f.heads, f.size, f.activation) for f in layout] == LAYOUTS[key]
    offset = 0
    for f in layout:
        assert f.offset == offset, f.name
        assert f.first_head == (reads if f.name in {"write_key", "write_strength", "erase", "add",
                                                    "allocation_gate", "write_gate"} else 0), f.name
        offset = f.stop
    assert offset == interface_size(model)


def test_explain_lists_every_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.cog"
    path.write_text(dnc_spec())
    assert main(["compile", "--explain", str(path)]) == 0
    text = capsys.readouterr().out
    model = compile_text(tmp_path, dnc_spec())
    assert f"interface {interface_size(model)}" in text
    assert "modes backward, content, forward" in text
    for f in model.groups[0].layout:
        block = "r" if f.first_head == 0 else "w"
        line = rf"^\s*{f.offset}\s+{f.heads}x{f.size}\s+{f.name}\s+{block}\s+{f.activation}\s*$"
        assert re.search(line, text, re.MULTILINE), f"no line for {f.name} in:\n{text}"


# ----------------------------------------------------------------------------------------
# 3. Invariants over a sequence
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("writes", [1, 2])
def test_invariants_over_a_sequence(tmp_path: Path, writes: int) -> None:
    """Usage in [0, 1]; weightings non-negative with sums <= 1; links with zero diagonal and rows and
    columns summing to <= 1; read modes summing to 1; over 12 steps of the whole model."""
    model = compile_text(tmp_path, dnc_spec(writes=writes)).double()
    with torch.no_grad():  # larger interface weights: gates and modes swing over their range
        model.interfaces["ctrl"].weight.mul_(6)
        model.interfaces["ctrl"].bias.normal_(0, 2, generator=torch.Generator().manual_seed(4))
    batch, steps, tol = 3, 12, 1e-6
    x = torch.rand(batch, steps, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        y, trace = model(x, return_weights=True)
        state = model.initial_state(batch, x)
        links, precedences, usages = [], [], []
        for t in range(steps):
            _, state = model.step(x[:, t], state)
            links.append(state["link:mem"])
            precedences.append(state["precedence:mem"])
            usages.append(state["usage:mem"])
    n = 10
    assert y.shape == (batch, steps, 4)
    assert trace["r"].shape == (batch, steps, 2, n) and trace["w"].shape == (batch, steps, writes, n)
    assert trace["mem:usage"].shape == (batch, steps, n)
    assert trace["r:modes"].shape == (batch, steps, 2, 1 + 2 * writes)
    torch.testing.assert_close(trace["mem:usage"], torch.stack(usages, dim=1))

    usage = trace["mem:usage"]
    assert (usage >= 0).all() and (usage <= 1).all()
    for name in ("w", "r"):
        assert (trace[name] >= 0).all(), name
        assert (trace[name].sum(-1) <= 1 + tol).all(), name
    torch.testing.assert_close(trace["r:modes"].sum(-1), torch.ones(batch, steps, 2, dtype=torch.float64))
    link = torch.stack(links, dim=1)  # (B, T, K, N, N)
    assert (link.diagonal(dim1=-2, dim2=-1) == 0).all()
    assert (link >= 0).all()
    assert (link.sum(-1) <= 1 + tol).all() and (link.sum(-2) <= 1 + tol).all()
    precedence = torch.stack(precedences, dim=1)
    assert (precedence >= 0).all() and (precedence.sum(-1) <= 1 + tol).all()
    # not vacuous: the heads wrote, usage grew and links formed
    assert trace["w"].sum(-1).max() > 0.3 and usage.max() > 0.3 and link.amax() > 0.05


# ----------------------------------------------------------------------------------------
# 4. Gradients
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("writes", [1, 2])
def test_gradcheck_of_one_step(tmp_path: Path, writes: int) -> None:
    """float64 gradcheck of every output of group.step: the full Jacobian in the interface and the memory,
    and (fast mode, a random projection) in every input, previous weights and state included."""
    model, group = dnc_group(tmp_path, dnc_spec(reads=1, writes=writes, slots=5, width=3))
    g = torch.Generator().manual_seed(11)
    memory, previous, state = random_state(group, 1, g)
    interface = random_interface(model, 1, g)
    keys = group.state_keys

    def step(interface: torch.Tensor, memory: torch.Tensor, previous: torch.Tensor, usage: torch.Tensor,
             link: torch.Tensor, precedence: torch.Tensor) -> tuple[torch.Tensor, ...]:
        result = group.step(interface, memory, previous, dict(zip(keys, (usage, link, precedence), strict=True)))
        return result.weights, result.reads, result.memory, *(result.state[k] for k in keys)

    values = (interface, memory, previous, *(state[k] for k in keys))
    assert torch.autograd.gradcheck(step, tuple(t.clone().requires_grad_(i < 2) for i, t in enumerate(values)))
    assert torch.autograd.gradcheck(step, tuple(t.clone().requires_grad_() for t in values), fast_mode=True)


def _grad(group: DNCGroup, output: str, wrt: str, interface: torch.Tensor, memory: torch.Tensor,
          previous: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
    """d <output, random> / d wrt, zeros where unused: output "write_weights" or (the new) "usage"; wrt (the
    previous) "usage", "previous_write" (write weights), "previous_read" (read weights) or "interface"."""
    usage_key = group.state_keys[0]
    interface, memory, previous = (t.clone().requires_grad_() for t in (interface, memory, previous))
    state = {k: v.clone().requires_grad_() for k, v in state.items()}
    result = group.step(interface, memory, previous, state)
    weights, new_state = result.weights, result.state
    value = weights[:, group.plan.read_heads:] if output == "write_weights" else new_state[usage_key]
    upstream = torch.rand(value.shape, generator=torch.Generator().manual_seed(2), dtype=value.dtype)
    source = {"usage": state[usage_key], "previous": previous, "interface": interface}[wrt.split("_")[0]]
    (grad,) = torch.autograd.grad((value * upstream).sum(), source, allow_unused=True)
    grad = torch.zeros_like(source) if grad is None else grad
    reads_n = group.plan.read_heads
    if wrt == "previous_write":
        grad = grad[:, reads_n:]
    elif wrt == "previous_read":
        grad = grad[:, :reads_n]
    return grad


def test_stop_usage_gradient(tmp_path: Path) -> None:
    """The flag stops gradient from the usage update into last step's write weights (DeepMind's
    stop-gradient); forward values, the allocation's gradient and the free gates' path are unchanged."""
    model, plain = dnc_group(tmp_path, dnc_spec())
    _, flagged = dnc_group(tmp_path, dnc_spec(memory_params=", stop_usage_gradient=true"))
    assert flagged.stop_usage_gradient and not plain.stop_usage_gradient
    g = torch.Generator().manual_seed(13)
    memory, previous, state = random_state(plain, 2, g)
    interface = random_interface(model, 2, g)
    args = (interface, memory, previous, state)

    def grad(group: DNCGroup, output: str, wrt: str) -> torch.Tensor:
        return _grad(group, output, wrt, *args)

    with torch.no_grad():  # the flag changes no value
        wanted, gotten = plain.step(*args), flagged.step(*args)
        for name in ("weights", "reads", "memory", "state", "shown"):
            want, got = getattr(wanted, name), getattr(gotten, name)
            if isinstance(want, dict):
                assert want.keys() == got.keys()
                for key in want:
                    torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)
            else:
                torch.testing.assert_close(got, want, rtol=0, atol=0)

    # d write weights / d previous usage: through the allocation, which the flag leaves alone
    assert grad(plain, "write_weights", "usage").abs().max() > 1e-3
    torch.testing.assert_close(grad(flagged, "write_weights", "usage"), grad(plain, "write_weights", "usage"))
    # d write weights / d previous write weights: through the usage update, then the allocation
    assert grad(plain, "write_weights", "previous_write").abs().max() > 1e-3
    assert (grad(flagged, "write_weights", "previous_write") == 0).all()
    # d usage / d previous write weights: the usage update
    assert grad(plain, "usage", "previous_write").abs().max() > 1e-3
    assert (grad(flagged, "usage", "previous_write") == 0).all()
    # still differentiable: usage in the previous usage and the freed reads, write weights in the gates
    for group in (plain, flagged):
        assert grad(group, "usage", "usage").abs().min() > 1e-3
        assert grad(group, "usage", "previous_read").abs().max() > 1e-3
        assert grad(group, "write_weights", "interface").abs().max() > 1e-3


# ----------------------------------------------------------------------------------------
# 5. Reads see this step's write
# ----------------------------------------------------------------------------------------

def designed_interface(model: cogdsl.CompiledModel, values: dict[str, list[float] | float]) -> torch.Tensor:
    """A raw interface vector (I,) with ``values`` for each named field (every head alike), 0 elsewhere."""
    interface = torch.zeros(interface_size(model))
    for f in model.groups[0].layout:
        if f.name in values:
            value = torch.as_tensor(values[f.name], dtype=torch.float32).reshape(-1).expand(f.size)
            interface[f.offset:f.stop] = value.repeat(f.heads)
    return interface


def run_constant_interface(model: cogdsl.CompiledModel, interface: torch.Tensor, memory: torch.Tensor,
                           steps: int) -> list[tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, list]]]:
    """Run the model with its controller's interface fixed to ``interface``, from ``memory``:
    (reads (heads, W), new state, trace) per step, batch element 0."""
    with torch.no_grad():
        model.interfaces["ctrl"].weight.zero_()
        model.interfaces["ctrl"].bias.copy_(interface)
        state = model.initial_state(1)
        state["mem"] = memory.unsqueeze(0).clone()
        out = []
        for _ in range(steps):
            trace: dict[str, list] = {}
            _, state = model.step(torch.zeros(1, 6), state, trace=trace)
            out.append((state["prev:r"][0].view(-1, 8), state, trace))
    return out


def orthogonal_rows() -> tuple[torch.Tensor, torch.Tensor]:
    """Six memory rows and a vector v, all mutually orthogonal (W = 8)."""
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(17)))
    return 2 * q[:, :6].T.contiguous(), 2 * q[:, 7].contiguous()


def test_reads_see_this_steps_write(tmp_path: Path) -> None:
    """A read by content for the vector just written finds it on the same step."""
    model = compile_text(tmp_path, dnc_spec(slots=6))
    memory, v = orthogonal_rows()
    big = 19.0  # inside the controller's clip of 20
    interface = designed_interface(model, {
        "write_gate": big, "allocation_gate": big, "erase": big, "add": v.tolist(),
        "read_key": v.tolist(), "read_strength": big, "free_gate": -big, "read_mode": [-big, big, -big],
    })
    [(reads, state, trace)] = run_constant_interface(model, interface, memory, steps=1)
    written = trace["w"][0][0, 0]
    assert written.argmax().item() == 0 and written[0] > 0.99  # usage all 0: stable sort allocates slot 0
    torch.testing.assert_close(state["mem"][0, 0], v, atol=1e-5, rtol=0)
    for head in range(2):
        assert trace["r"][0][0, head].argmax().item() == 0
        torch.testing.assert_close(reads[head], v, atol=1e-4, rtol=0)


def test_ntm_memory_reads_see_the_previous_steps_write(tmp_path: Path) -> None:
    """The contrast: on an NTM ``memory`` the same read finds the vector only one step later."""
    text = """\
cogdsl 1
model n
input  x: 6
output y: 4 = sigmoid(ctrl, r)
lstm       ctrl(hidden=32) <- x, r@prev
memory     mem(slots=6, width=8)
write      w on mem by ctrl: content(cosine)
read       r on mem by ctrl: content(cosine)
"""
    model = compile_text(tmp_path, text, "n")
    memory, v = orthogonal_rows()
    big = 19.0
    # one "key" field for both heads: fill it per head, read head first
    interface = designed_interface(model, {"strength": big, "erase": big, "add": v.tolist()})
    key = next(f for f in model.groups[0].layout if f.name == "key")
    interface[key.offset:key.offset + 8] = v  # read head: look for v
    interface[key.offset + 8:key.stop] = memory[2]  # write head: overwrite slot 2 with v
    (first, state, _), (second, _, _) = run_constant_interface(model, interface, memory, steps=2)
    torch.testing.assert_close(state["mem"][0, 2], v, atol=1e-4, rtol=0)  # written on step 1
    cosine = torch.nn.functional.cosine_similarity(first[0], v, dim=0)
    assert cosine.abs() < 0.05  # step 1 read the memory before the write: nothing like v there
    torch.testing.assert_close(second[0], v, atol=1e-4, rtol=0)  # step 2 finds it


# ----------------------------------------------------------------------------------------
# 6. Torch backend against the Triton kernels on the CPU interpreter
# ----------------------------------------------------------------------------------------

_BACKENDS_SCRIPT = """
import json, sys
import torch
import cogdsl
from cogdsl import kernels, ops
from tests.kernels.helpers import count_launches

assert kernels.interpreting()
torch.manual_seed(0)
model = cogdsl.compile(cogdsl.load(sys.argv[1]))
x = torch.rand(2, 3, 6, generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    with ops.use_backend("torch"):
        y_torch, trace_torch = model(x, return_weights=True)
    with count_launches() as launches, ops.use_backend("triton"):
        y_triton, trace_triton = model(x, return_weights=True)
print(json.dumps({
    "y": (y_torch - y_triton).abs().max().item(),
    "trace": {k: (trace_torch[k] - trace_triton[k]).abs().max().item() for k in trace_torch},
    "kernels": sorted({launch.name for launch in launches}),
}))
"""


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed")
def test_outputs_match_under_the_triton_interpreter(tmp_path: Path) -> None:
    path = tmp_path / "t.cog"
    path.write_text(dnc_spec(writes=2))
    env = {**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("COGDSL_BACKEND", None)
    done = subprocess.run([sys.executable, "-c", _BACKENDS_SCRIPT, str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for op in ("usage", "allocation", "link", "directional", "content", "write", "read"):  # every DNC op ran on Triton
        assert any(op in name for name in result["kernels"]), (op, result)
    assert result["y"] < 1e-5, result
    assert all(diff < 1e-5 for diff in result["trace"].values()), result
