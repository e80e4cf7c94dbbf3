"""Dynamic NTM stages on a ``dnc_memory`` (``content | lru | hard`` terms of its mixtures).

``lru`` on a DNC content term is checked against the plain-Python DNC oracle in
``tests/test_dnc_block.py`` (its ``CASES`` with ``| lru``); here: its gradients, ``hard``
against the same group without it (the sampled slot replaces the content term and nothing
else), the sampling frequencies, the decision REINFORCE learns from, a model that trains with
it, and the located errors for terms the stages do not fit.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import cogdsl
from cogdsl import ops
from cogdsl.blocks.dnc import DNCGroup
from cogdsl.cli.command import main
from cogdsl.reinforce import Decision, reinforce_loss, standardized
from cogdsl.training.loop import train
from tests.test_dnc_block import dnc_group, dnc_spec, random_interface, random_state

SOFT_READ = "backward + content(cosine) + forward"
HARD_READ = "backward + content(cosine) | hard(0.02) + forward"
SOFT_WRITE = "content(cosine) + allocate"
HARD_WRITE = "content(cosine) | hard(0.05) + allocate"


def twins(tmp_path: Path, soft: dict[str, str], hard: dict[str, str]
          ) -> tuple[DNCGroup, DNCGroup, cogdsl.CompiledModel]:
    """The same DNC with and without ``hard``: ``hard`` asks for no interface field, so both read
    the same interface vector."""
    model, soft_group = dnc_group(tmp_path, dnc_spec(**soft))
    _, hard_group = dnc_group(tmp_path, dnc_spec(**hard))
    assert soft_group.layout == hard_group.layout
    return soft_group, hard_group, model


def one_step(group: DNCGroup, model: cogdsl.CompiledModel, seed: int, batch: int = 3):
    g = torch.Generator().manual_seed(seed)
    memory, previous, state = random_state(group, batch, g)
    interface = random_interface(model, batch, g)
    return interface, memory, previous, state


def entropy(weights: torch.Tensor) -> torch.Tensor:
    return -(weights * weights.log()).sum(-1)


# -- lru: gradients ---------------------------------------------------------------------------------

def test_gradcheck_of_a_step_with_lru_terms(tmp_path: Path) -> None:
    """float64 gradcheck of group.step in the interface, the memory and both moving averages."""
    model, group = dnc_group(tmp_path, dnc_spec(read="backward + content(cosine) | lru + forward",
                                                write="content(cosine) | lru(0.3) + allocate",
                                                reads=1, slots=5, width=3))
    interface, memory, previous, state = one_step(group, model, 12, batch=1)
    read_key, write_key = group.lru_keys["read"], group.lru_keys["write"]

    def step(interface: torch.Tensor, memory: torch.Tensor, read_average: torch.Tensor,
             write_average: torch.Tensor) -> tuple[torch.Tensor, ...]:
        result = group.step(
            interface, memory, previous, {**state, read_key: read_average, write_key: write_average})
        return result.weights, result.reads, result.memory, result.state[read_key], result.state[write_key]

    values = (interface, memory, state[read_key], state[write_key])
    assert torch.autograd.gradcheck(step, tuple(t.clone().requires_grad_() for t in values))


def test_lru_gamma_gets_a_gradient_and_steers_the_write_away_from_recent_slots(tmp_path: Path) -> None:
    model, group = dnc_group(tmp_path, dnc_spec(write="content(cosine) | lru"))
    interface, memory, previous, state = one_step(group, model, 13)
    average = state[group.lru_keys["write"]]
    gamma = next(f for f in group.layout if f.name == "write_lru_gamma")
    rows = slice(gamma.offset, gamma.offset + gamma.size * gamma.heads)
    interface = interface.clone().requires_grad_()
    weights = group.step(interface, memory, previous, state).weights
    write = weights[:, group.plan.read_heads:]
    # d w_i / d gamma = -w_i (v_i - sum_j w_j v_j) g_w: weight moves from the slots of high average
    (write * average).sum().backward()
    assert interface.grad is not None and (interface.grad[:, rows] < 0).all()


# -- hard: the sampled slot replaces the content term, nothing else ---------------------------------

@pytest.mark.parametrize("training", [False, True])
def test_hard_read_replaces_the_content_mode_by_one_slot(tmp_path: Path, training: bool) -> None:
    soft, hard, model = twins(tmp_path, {"read": SOFT_READ}, {"read": HARD_READ})
    hard.train(training)
    interface, memory, previous, state = one_step(soft, model, 14)
    soft_step, hard_step = soft.step(interface, memory, previous, state), hard.step(interface, memory, previous, state)
    soft_weights, soft_memory, soft_extras = soft_step.weights, soft_step.memory, soft_step.shown
    hard_weights, hard_reads, hard_memory, hard_extras = hard_step.weights, hard_step.reads, hard_step.memory, \
        hard_step.shown
    torch.testing.assert_close(hard_memory, soft_memory)  # the write is the same soft write
    reads_n = soft.plan.read_heads
    f = soft.fields(interface)
    content = ops.content_weights(soft_memory, f["read_key"], f["read_strength"])  # on the new memory
    modes = soft_extras["modes"]
    torch.testing.assert_close(hard_extras["modes"], modes)
    difference = (hard_weights - soft_weights)[:, :reads_n] / modes[:, :, 1:2]  # pi_content
    chosen = difference.argmax(-1)
    torch.testing.assert_close(difference, F.one_hot(chosen, soft.slots).double() - content)
    if not training:
        assert torch.equal(chosen, content.argmax(-1))
        assert hard.decision is None
    torch.testing.assert_close(hard_weights[:, reads_n:], soft_weights[:, reads_n:])
    torch.testing.assert_close(hard_reads, torch.einsum("brn,bnw->brw", hard_weights[:, :reads_n], hard_memory))


def test_hard_write_gates_the_sampled_slot_and_mixes_it_with_allocation(tmp_path: Path) -> None:
    soft, hard, model = twins(tmp_path, {"write": SOFT_WRITE}, {"write": HARD_WRITE})
    hard.eval()
    interface, memory, previous, state = one_step(soft, model, 15)
    soft_weights = soft.step(interface, memory, previous, state).weights
    hard_weights = hard.step(interface, memory, previous, state).weights
    reads_n = soft.plan.read_heads
    f = soft.fields(interface)
    content = ops.content_weights(memory, f["write_key"], f["write_strength"])  # on the memory before the write
    one_hot = F.one_hot(content.argmax(-1), soft.slots).double()
    scale = (f["write_gate"] * (1 - f["allocation_gate"])).unsqueeze(-1)  # g_w (1 - g_a)
    torch.testing.assert_close(hard_weights[:, reads_n:] - soft_weights[:, reads_n:], scale * (one_hot - content))


def test_training_samples_the_content_slot_at_its_weighting(tmp_path: Path) -> None:
    """Frequencies over 4,000 draws of the same step are the content weighting, within 5 sigma."""
    model, group = dnc_group(tmp_path, dnc_spec(read="content(cosine) | hard", reads=1, slots=4, width=3))
    group.train()
    interface, memory, previous, state = one_step(group, model, 16, batch=1)
    f = group.fields(interface)
    draws = 4000
    torch.manual_seed(16)
    result = group.step(interface.expand(draws, -1), memory.expand(draws, -1, -1), previous.expand(draws, -1, -1),
                        {k: v.expand(draws, *v.shape[1:]) for k, v in state.items()})
    weights, new_memory = result.weights, result.memory
    content = ops.content_weights(new_memory[:1], f["read_key"], f["read_strength"])[0, 0]
    assert content.max() < 0.9  # not vacuous: more than one slot is likely
    frequency = weights[:, 0].mean(0)
    sigma = (content * (1 - content) / draws).sqrt()
    assert ((frequency - content).abs() <= 5 * sigma + 1e-12).all(), (frequency, content)


def test_decision_of_hard_reads_and_writes(tmp_path: Path) -> None:
    """One decision per step: log pi = log c^r_{i_r} + log c^w_{i_w}; each entropy keeps its weight."""
    model, group = dnc_group(tmp_path, dnc_spec(read="content(cosine) | hard(0.02)",
                                                write="content(cosine) | hard(0.05)", reads=2))
    group.train()
    interface, memory, previous, state = one_step(group, model, 17)
    result = group.step(interface, memory, previous, state)
    weights, new_memory = result.weights, result.memory
    decision = group.decision
    assert isinstance(decision, Decision) and decision.reward == "likelihood"
    f = group.fields(interface)
    read_content = ops.content_weights(new_memory, f["read_key"], f["read_strength"])
    write_content = ops.content_weights(memory, f["write_key"], f["write_strength"])
    reads_n = group.plan.read_heads
    read_chosen = weights[:, :reads_n].argmax(-1)
    write_chosen = weights[:, reads_n:].argmax(-1)
    assert set(weights[:, :reads_n].unique().tolist()) <= {0.0, 1.0}
    want = (read_content.gather(-1, read_chosen.unsqueeze(-1)).log().sum((1, 2))
            + write_content.gather(-1, write_chosen.unsqueeze(-1)).log().sum((1, 2)))
    torch.testing.assert_close(decision.log_prob, want)
    bonus = 0.02 * entropy(read_content).sum(-1) + 0.05 * entropy(write_content).sum(-1)
    torch.testing.assert_close(decision.entropy_weight * decision.entropy, bonus)
    group.eval()
    group.step(interface, memory, previous, state)
    assert group.decision is None


def test_a_model_collects_a_decision_each_step_and_reinforce_trains_the_read_key(tmp_path: Path) -> None:
    path = tmp_path / "hard.cog"
    path.write_text(dnc_spec(read="content(cosine) | hard(0.01)", reads=1))
    torch.manual_seed(18)
    model = cogdsl.compile(cogdsl.load(path)).double()
    assert model.stochastic == frozenset({"r", "w"})
    model.train()
    x = torch.randn(4, 5, 6, dtype=torch.float64)
    decisions: list[Decision] = []
    y = model(x, decisions=decisions)
    assert len(decisions) == 5 and all(d.log_prob.shape == (4,) and d.entropy_weight == 0.01 for d in decisions)
    group = model.groups[0]
    key = next(f for f in group.layout if f.name == "read_key")
    rows = slice(key.offset, key.offset + key.size)
    task_loss = (y - 0.5).square().sum()
    task_loss.backward(retain_graph=True)
    weight_grad = model.interfaces["ctrl"].weight.grad
    assert weight_grad is not None and weight_grad[rows].abs().max() == 0  # a sample passes no gradient
    likelihood = standardized(-(y - 0.5).square().sum((1, 2)).detach())
    reinforce_loss(decisions, {"likelihood": likelihood}).backward()
    assert weight_grad[rows].abs().max() > 0
    assert group.baseline.grad is not None and group.baseline.grad.abs() > 0
    decisions.clear()
    model.eval()
    model(x, decisions=decisions)
    assert decisions == []


TRAINED = """\
model dnc_dntm
input  x: 5
output y: 4 = sigmoid(ctrl, r)
lstm       ctrl(hidden=24) <- x, r@prev
dnc_memory mem(slots=8, width=6)
write      w on mem by ctrl: content(cosine) | lru + allocate
read       r on mem by ctrl: backward + content(cosine) | lru | hard(0.01) + forward
train {
  task      copy(bits=4, min_len=1, max_len=3)
  optimizer adam(lr=0.003)
  batch 8; steps 6; seed 3; eval_every 3; eval_size 16; log_every 3
}
"""


def test_a_dnc_with_lru_and_hard_trains_and_resumes_its_state(tmp_path: Path) -> None:
    path = tmp_path / "dnc_dntm.cog"
    path.write_text(TRAINED)
    result = train(cogdsl.load(path), out_dir=tmp_path / "run", progress=False)
    assert result.eval is not None and math.isfinite(result.eval.loss)
    model = result.model
    state = model.initial_state(2)
    assert {"lru_read:mem", "lru_write:mem"} <= set(state)
    _, new_state = model.step(torch.randn(2, 5), state)
    assert new_state["lru_read:mem"].abs().sum() > 0 and new_state["lru_write:mem"].abs().sum() > 0


def test_explain_says_what_the_stages_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "dnc_dntm.cog"
    path.write_text(TRAINED)
    assert main(["compile", "--explain", str(path)]) == 0
    out = capsys.readouterr().out
    assert "write (content(cosine) | lru(0.1) + allocate)" in out
    assert "(backward + content(cosine) | lru(0.1) | hard(0.01) + forward; modes backward, content, forward)" in out
    assert "read and write content keep the moving average of their logits" in out
    assert "read content sample one slot per head (REINFORCE)" in out
    assert "read_lru_gamma" in out and "write_lru_gamma" in out


# -- bad input ------------------------------------------------------------------------------------

BAD = {  # (block, address, the stage the error points at, what it says)
    "allocate piped": ("w", "content(cosine) + allocate | hard", "hard",
                       "'allocate | hard': on a dnc_memory a term is one weighting, and only content pipes on"),
    "forward piped": ("r", "backward + content(cosine) + forward | lru", "lru",
                      "'forward | lru': on a dnc_memory a term is one weighting"),
    "hard before lru": ("r", "content(cosine) | hard | lru", "lru", "after content, 'lru' comes first and 'hard' last"),
    "lru twice": ("w", "content(cosine) | lru | lru", "lru", "after content, 'lru' comes first and 'hard' last"),
    "sharpen": ("r", "content(cosine) | sharpen", "sharpen", "'content | sharpen': on a dnc_memory"),
    "hard as a term": ("r", "content(cosine) + hard", "hard", "'hard' is not a read weighting of a dnc_memory; "
                       "it reshapes a content weighting piped into it"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_stages_that_do_not_fit_a_term_are_located_errors(tmp_path: Path, case: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    block, address, pointed, message = BAD[case]
    text = dnc_spec(**{"read" if block == "r" else "write": address})
    path = tmp_path / "bad.cog"
    path.write_text(text)
    line, row = next((i, row) for i, row in enumerate(text.splitlines(), start=1)
                     if row.split()[0] in ("read", "write") and row.split()[1].startswith(block))
    column = row.rindex(pointed) + 1  # the last occurrence: the stage out of place
    assert main(["validate", str(path)]) != 0
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert f"{path}:{line}:{column}: error[E402]" in said and message in said, said
    assert "Traceback" not in said
