"""The continuous data structures of cogdsl/blocks/stacks.py: Joulin & Mikolov's stack against a loop
of its equations, Grefenstette et al.'s queue and deque against list-based implementations of theirs
(rows that grow at every push, none dropped), discrete pushes and pops behaving as LIFO, FIFO and
both-ended, gradients, and the blocks in compiled models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.blocks.stacks import EMPTY, Deque, Queue, Stack, stack_step
from cogdsl.errors import SpecError
from cogdsl.language.parse_cog import parse_cog
from tests.tiny import compile_text

STRUCTURES = """
model structures
input  x: 3
output y: 3 = softmax(ctrl)
rnn    ctrl(hidden=12) <- x, s@prev, q@prev, d@prev
stack  s(stacks=2, depth=6, top=2) <- ctrl
queue  q(width=4, capacity=10) <- ctrl
deque  d(width=3, capacity=10) <- ctrl
"""


# ----------------------------------------------------------------------------------------
# Oracles: the papers' equations, one element at a time
# ----------------------------------------------------------------------------------------

def oracle_stack_step(contents: list[list[float]], push: float, pop: float, noop: float,
                      value: list[float]) -> list[list[float]]:
    """s_t[0] = push v + pop s[1] + noop s[0]; s_t[i] = push s[i-1] + pop s[i+1] + noop s[i]; -1 below."""
    depth, width = len(contents), len(contents[0])

    def at(i: int, w: int) -> float:
        return contents[i][w] if i < depth else EMPTY

    return [[push * (value[w] if i == 0 else at(i - 1, w)) + pop * at(i + 1, w) + noop * at(i, w)
             for w in range(width)] for i in range(depth)]


def oracle_pop(strengths: list[float], pop: float, from_top: bool) -> list[float]:
    """Grefenstette's pop: each row loses what the pop has left after the rows nearer the end it pops."""
    out = []
    for i, s in enumerate(strengths):
        nearer = strengths[i + 1:] if from_top else strengths[:i]
        out.append(max(0.0, s - max(0.0, pop - sum(nearer))))
    return out


def oracle_read(values: list[list[float]], strengths: list[float], from_top: bool) -> list[float]:
    weights = []
    for i, s in enumerate(strengths):
        nearer = strengths[i + 1:] if from_top else strengths[:i]
        weights.append(min(s, max(0.0, 1.0 - sum(nearer))))
    return [sum(w * v[k] for w, v in zip(weights, values, strict=True)) for k in range(len(values[0]))] if values \
        else []


def test_stack_step_matches_the_papers_equations() -> None:
    generator = torch.Generator().manual_seed(0)
    contents = torch.randn(2, 3, 5, 2, generator=generator, dtype=torch.float64)
    actions = torch.softmax(torch.randn(2, 3, 3, generator=generator, dtype=torch.float64), -1)
    pushed = torch.rand(2, 3, 2, generator=generator, dtype=torch.float64)
    new = stack_step(contents, actions, pushed)
    for b in range(2):
        for k in range(3):
            push, pop, noop = actions[b, k].tolist()
            expected = oracle_stack_step(contents[b, k].tolist(), push, pop, noop, pushed[b, k].tolist())
            torch.testing.assert_close(new[b, k], torch.tensor(expected, dtype=torch.float64))


def _controls(module: torch.nn.Module, query: torch.Tensor, count: int) -> list[float]:
    return torch.sigmoid(module.control(query)[0, :count]).tolist()


def test_queue_matches_growing_rows_over_many_steps() -> None:
    """Eight steps of random controls: the module's fixed-capacity rows read what a list that grows by
    one row per push (Grefenstette et al., eq. for the queue) reads."""
    torch.manual_seed(1)
    module = Queue(query_size=5, width=3, capacity=8).double()
    state = module.initial_state(1, torch.zeros(1, dtype=torch.float64))
    values: list[list[float]] = []
    strengths: list[float] = []
    for _ in range(8):
        query = torch.randn(1, 5, dtype=torch.float64)
        push, pop = _controls(module, query, 2)
        pushed = torch.tanh(module.control(query)[0, 2:]).tolist()
        read, where, state = module(query, None, state)
        strengths = [*oracle_pop(strengths, pop, from_top=False), push]
        values = [*values, pushed]
        torch.testing.assert_close(read[0], torch.tensor(oracle_read(values, strengths, from_top=False),
                                                         dtype=torch.float64))
        torch.testing.assert_close(where[0], torch.tensor([push, pop], dtype=torch.float64))
    torch.testing.assert_close(state[1][0], torch.tensor(strengths, dtype=torch.float64))


def test_deque_matches_rows_growing_at_both_ends() -> None:
    torch.manual_seed(2)
    module = Deque(query_size=4, width=2, capacity=7).double()
    state = module.initial_state(1, torch.zeros(1, dtype=torch.float64))
    values: list[list[float]] = []  # bottom to top
    strengths: list[float] = []
    for _ in range(7):
        query = torch.randn(1, 4, dtype=torch.float64)
        push_top, pop_top, push_bottom, pop_bottom = _controls(module, query, 4)
        pushed = torch.tanh(module.control(query)[0, 4:]).tolist()
        pushed_top, pushed_bottom = pushed[:2], pushed[2:]
        read, _, state = module(query, None, state)
        strengths = oracle_pop(strengths, pop_top, from_top=True)
        strengths = [push_bottom, *oracle_pop(strengths, pop_bottom, from_top=False), push_top]
        values = [pushed_bottom, *values, pushed_top]
        expected = oracle_read(values, strengths, from_top=True) + oracle_read(values, strengths, from_top=False)
        torch.testing.assert_close(read[0], torch.tensor(expected, dtype=torch.float64))
    kept = state[1][0]
    torch.testing.assert_close(kept[kept > 0], torch.tensor([s for s in strengths if s > 0], dtype=torch.float64))


# ----------------------------------------------------------------------------------------
# Discrete actions: the structures behave as their names say
# ----------------------------------------------------------------------------------------

def test_hard_stack_actions_are_last_in_first_out() -> None:
    contents = torch.full((1, 1, 4, 1), EMPTY)
    push = torch.tensor([[[1.0, 0.0, 0.0]]])
    pop = torch.tensor([[[0.0, 1.0, 0.0]]])
    for value in (0.2, 0.5, 0.9):
        contents = stack_step(contents, push, torch.tensor([[[value]]]))
    assert contents[0, 0, :, 0].tolist() == pytest.approx([0.9, 0.5, 0.2, EMPTY])
    contents = stack_step(contents, pop, torch.tensor([[[0.7]]]))
    assert contents[0, 0, :, 0].tolist() == pytest.approx([0.5, 0.2, EMPTY, EMPTY])


def _force(module: torch.nn.Module, controls: list[float], value: list[float]) -> None:
    """Make the module's control layer ignore its query: sigmoid(±20) ≈ 1 or 0, tanh(atanh(v)) = v."""
    with torch.no_grad():
        module.control.weight.zero_()
        gates = [20.0 if c else -20.0 for c in controls]
        module.control.bias.copy_(torch.tensor(gates + [float(torch.atanh(torch.tensor(v))) for v in value]))


def test_hard_queue_is_first_in_first_out() -> None:
    module = Queue(query_size=1, width=1, capacity=6)
    state = module.initial_state(1, torch.zeros(1))
    query = torch.zeros(1, 1)
    for value in (0.1, 0.4, 0.7):
        _force(module, [1, 0], [value])  # push, no pop
        read, _, state = module(query, None, state)
        assert float(read.detach()) == pytest.approx(0.1, abs=1e-6)  # the front stays the first pushed
    _force(module, [0, 1], [0.0])  # pop only
    read, _, state = module(query, None, state)
    assert float(read.detach()) == pytest.approx(0.4, abs=1e-6)


def test_hard_deque_pushes_and_pops_at_both_ends() -> None:
    module = Deque(query_size=1, width=1, capacity=6)
    state = module.initial_state(1, torch.zeros(1))
    query = torch.zeros(1, 1)
    _force(module, [1, 0, 1, 0], [0.3, 0.6])  # push 0.3 on top and 0.6 at the bottom
    read, _, state = module(query, None, state)
    assert read[0].detach().tolist() == pytest.approx([0.3, 0.6], abs=1e-6)
    _force(module, [1, 0, 0, 0], [0.8, 0.0])  # push 0.8 on top only
    read, _, state = module(query, None, state)
    assert read[0].detach().tolist() == pytest.approx([0.8, 0.6], abs=1e-6)
    _force(module, [0, 1, 0, 1], [0.0, 0.0])  # pop both ends
    read, _, state = module(query, None, state)
    assert read[0].detach().tolist() == pytest.approx([0.3, 0.3], abs=1e-6)


def test_a_queue_forgets_only_beyond_its_capacity() -> None:
    module = Queue(query_size=1, width=1, capacity=3)
    state = module.initial_state(1, torch.zeros(1))
    query = torch.zeros(1, 1)
    for step, value in enumerate((0.1, 0.2, 0.3, 0.4)):
        _force(module, [1, 0], [value])
        read, _, state = module(query, None, state)
        assert float(read.detach()) == pytest.approx(0.1 if step < 3 else 0.2, abs=1e-6)


# ----------------------------------------------------------------------------------------
# Gradients and compiled models
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: Stack(4, stacks=2, depth=5, width=2, top=2, noop=True),
                                  lambda: Queue(4, width=2, capacity=5), lambda: Deque(4, width=2, capacity=5)],
                         ids=["stack", "queue", "deque"])
def test_three_steps_match_finite_differences(make: object) -> None:
    torch.manual_seed(3)
    module = make().double()  # type: ignore[operator]
    queries = torch.randn(3, 2, 4, dtype=torch.float64, requires_grad=True)

    def run(queries: torch.Tensor) -> torch.Tensor:
        state = module.initial_state(2, queries)
        reads = []
        for t in range(3):
            read, _, state = module(queries[t], None, state)
            reads.append(read)
        return torch.stack(reads)

    assert torch.autograd.gradcheck(run, (queries,))


def test_compiled_structures_trace_their_actions_and_contents(tmp_path: Path) -> None:
    model = compile_text(tmp_path, STRUCTURES)
    y, trace = model(torch.randn(2, 5, 3, dtype=torch.float64), return_weights=True)
    assert y.shape == (2, 5, 3)
    assert trace["s"].shape == (2, 5, 2, 3)  # push, pop, no-op of each stack
    torch.testing.assert_close(trace["s"].sum(-1), torch.ones(2, 5, 2, dtype=torch.float64))
    assert trace["s:state"].shape == (2, 5, 2, 6, 1)
    assert trace["q:state"].shape == (2, 5, 10) and trace["d:state"].shape == (2, 5, 20)
    assert model.shapes.sizes["s"] == 4 and model.shapes.sizes["q"] == 4 and model.shapes.sizes["d"] == 6


def test_a_stack_without_noop_only_pushes_or_pops(tmp_path: Path) -> None:
    model = compile_text(tmp_path, STRUCTURES.replace("top=2)", "top=2, noop=false)"))
    _, trace = model(torch.randn(2, 4, 3, dtype=torch.float64), return_weights=True)
    assert bool((trace["s"][..., 2] == 0).all())


def test_a_discrete_stack_takes_its_most_probable_action_alone_outside_training(tmp_path: Path) -> None:
    """Joulin & Mikolov's test-time discretisation: in evaluation a = one_hot(argmax softmax(A q)) and
    the contents follow stack_step with those actions; in training the same weights stay soft."""
    torch.manual_seed(3)
    stack = Stack(5, stacks=3, depth=6, width=2, top=2, noop=True, discrete=True).double()
    query = torch.randn(4, 5, dtype=torch.float64)
    contents = torch.rand(4, 3, 6, 2, dtype=torch.float64)
    soft_top, soft_actions, _ = stack(query, None, contents)
    assert bool((soft_actions < 1).all()) and bool((soft_actions > 0).all())
    stack.eval()
    top, actions, new_contents = stack(query, None, contents)
    expected_actions = torch.nn.functional.one_hot(soft_actions.argmax(-1), 3).double()
    torch.testing.assert_close(actions, expected_actions)
    pushed = torch.sigmoid(stack.push(query)).view(4, 3, 2)
    torch.testing.assert_close(new_contents, stack_step(contents, expected_actions, pushed))
    torch.testing.assert_close(top, new_contents[:, :, :2].flatten(1))
    assert not torch.allclose(top, soft_top)


def test_a_discrete_stack_without_noop_never_chooses_it(tmp_path: Path) -> None:
    model = compile_text(tmp_path, STRUCTURES.replace("top=2)", "top=2, noop=false, discrete=true)"))
    model.eval()
    _, trace = model(torch.randn(2, 6, 3, dtype=torch.float64), return_weights=True)
    assert bool((trace["s"][..., 2] == 0).all())
    assert bool((trace["s"].max(-1).values == 1).all())


def test_a_stack_with_an_unknown_parameter_is_refused() -> None:
    with pytest.raises(SpecError, match="E202"):
        cogdsl.compile(parse_cog(STRUCTURES.replace("top=2)", "tops=2)"), "s.cog"))


def test_a_deques_two_pops_commute() -> None:
    """Popping the top then the bottom leaves what popping the bottom then the top leaves, including
    pops that meet in the middle."""
    from cogdsl.blocks.stacks import pop_front

    generator = torch.Generator().manual_seed(4)
    strengths = torch.rand(500, 6, generator=generator) * torch.randint(0, 2, (500, 6), generator=generator)
    pop_top, pop_bottom = torch.rand(500, generator=generator) * 3, torch.rand(500, generator=generator) * 3
    top_first = pop_front(pop_front(strengths.flip(-1), pop_top).flip(-1), pop_bottom)
    bottom_first = pop_front(pop_front(strengths, pop_bottom).flip(-1), pop_top).flip(-1)
    torch.testing.assert_close(top_first, bottom_first)
    assert bool((top_first.sum(-1) <= strengths.sum(-1) + 1e-6).all())
