"""Dynamic NTM addressing: learned address vectors, least-recently-used (``lru``) and discrete
(``hard``) addressing, against hand computations of the D-NTM equations."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cogdsl import ops
from cogdsl.blocks.dntm import lru_weights, sample_slots
from cogdsl.ops.ntm import content_logits
from cogdsl.reinforce import Decision, reinforce_loss, standardized
from cogdsl.tasks import make_task
from cogdsl.training.loop import rewards
from tests.tiny import compile_text

SLOTS, WIDTH, ADDRESS = 6, 5, 3


def dntm_text(read: str = "content(cosine) | gate", write: str = "content(cosine) | lru",
              address_width: int = ADDRESS, read_heads: int = 1) -> str:
    return f"""\
model dntm
input x: 4
output y: 3 = sigmoid(ctrl, r)
gru ctrl(hidden=8) <- x, r@prev
memory mem(slots={SLOTS}, width={WIDTH}, address_width={address_width})
read r(heads={read_heads}) on mem by ctrl: {read}
write w on mem by ctrl: {write}
"""


def fields_at_first_step(model, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The activated interface fields of every group at the first step of ``x``, by group index."""
    state = model.initial_state(x.shape[0], x)
    controller_input = torch.cat([x[:, 0], state["prev:r"]], dim=-1)
    h, _ = model.controllers["ctrl"](controller_input, state["ctrl"])
    interface = model.interfaces["ctrl"](h).clamp(-model.clips["ctrl"], model.clips["ctrl"])
    return {i: group.fields(interface) for i, group in enumerate(model.groups)}


# -- the equations ---------------------------------------------------------------------------

def test_lru_weights_are_the_softmax_of_logits_less_gamma_times_usage() -> None:
    torch.manual_seed(0)
    logits, usage = torch.randn(2, 3, 7, dtype=torch.float64), torch.randn(2, 3, 7, dtype=torch.float64)
    gamma = torch.rand(2, 3, dtype=torch.float64)
    weights, new_usage = lru_weights(logits, usage, gamma, decay=0.25)
    for b in range(2):
        for h in range(3):
            shifted = logits[b, h] - gamma[b, h] * usage[b, h]
            expected = shifted.exp() / shifted.exp().sum()
            torch.testing.assert_close(weights[b, h], expected)
    torch.testing.assert_close(new_usage, 0.25 * usage + 0.75 * logits)
    # gamma = 0 is plain content addressing
    plain, _ = lru_weights(logits, usage, torch.zeros_like(gamma), decay=0.25)
    torch.testing.assert_close(plain, logits.softmax(-1))


def test_lru_discounts_the_slots_the_head_just_favoured() -> None:
    logits = torch.tensor([[[4.0, 3.0, 0.0, 0.0]]])
    gamma = torch.ones(1, 1)
    first, usage = lru_weights(logits, torch.zeros_like(logits), gamma, decay=0.1)
    same, _ = lru_weights(logits, usage, gamma, decay=0.1)
    assert first.argmax() == 0
    assert same[0, 0, 0] < first[0, 0, 0]  # the same logits again: the favoured slot loses weight
    risen = torch.tensor([[[4.0, 3.5, 0.0, 0.0]]])
    after, _ = lru_weights(risen, usage, gamma, decay=0.1)
    assert risen.softmax(-1).argmax() == 0 and after.argmax() == 1  # slot 1's logit rose: it wins


def test_lru_weights_gradcheck() -> None:
    torch.manual_seed(1)
    logits = torch.randn(2, 2, 5, dtype=torch.float64, requires_grad=True)
    usage = torch.randn(2, 2, 5, dtype=torch.float64, requires_grad=True)
    gamma = torch.rand(2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, v, g: lru_weights(z, v, g, 0.3), (logits, usage, gamma))


def test_content_logits_are_the_log_of_content_weights_up_to_a_constant() -> None:
    torch.manual_seed(2)
    memory, keys = torch.randn(2, 6, 4), torch.randn(2, 3, 4)
    strengths = torch.rand(2, 3) * 5
    for similarity in ("cosine", "dot"):
        logits = content_logits(memory, keys, strengths, similarity)
        torch.testing.assert_close(logits.softmax(-1), ops.content_weights(memory, keys, strengths, similarity))
    cosine = F.cosine_similarity(keys.unsqueeze(2), memory.unsqueeze(1), dim=-1)
    torch.testing.assert_close(content_logits(memory, keys, strengths), strengths.unsqueeze(-1) * cosine,
                               atol=1e-6, rtol=1e-5)


def test_sample_slots_draws_from_the_weights_in_training_and_takes_the_argmax_in_evaluation() -> None:
    torch.manual_seed(3)
    weights = torch.tensor([[0.1, 0.6, 0.3]]).expand(4000, 1, 3).contiguous()
    one_hot, log_prob, entropy = sample_slots(weights, training=True)
    assert torch.equal(one_hot.sum(-1), torch.ones(4000, 1))
    frequencies = one_hot.mean(0).squeeze(0)
    torch.testing.assert_close(frequencies, weights[0, 0], atol=0.03, rtol=0)
    chosen = one_hot.argmax(-1)
    torch.testing.assert_close(log_prob, weights[0, 0].log()[chosen].squeeze(-1))
    torch.testing.assert_close(entropy, torch.full((4000,), float(-(weights[0, 0] * weights[0, 0].log()).sum())))
    evaluated, _, _ = sample_slots(weights[:2], training=False)
    assert torch.equal(evaluated.argmax(-1), torch.ones(2, 1, dtype=torch.long))


def test_log_prob_of_a_sample_carries_the_gradient_of_the_weights() -> None:
    logits = torch.randn(2, 2, 5, requires_grad=True)
    _, log_prob, _ = sample_slots(logits.softmax(-1), training=True)
    log_prob.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_reinforce_takes_each_decisions_own_reward() -> None:
    log_prob = torch.tensor([-1.0, -2.0], requires_grad=True)
    zero = torch.zeros(2)
    success, likelihood = torch.tensor([1.0, 0.0]), torch.tensor([-0.5, 0.5])
    by_success = reinforce_loss([Decision(log_prob, zero, zero)], {"success": success, "likelihood": likelihood})
    by_likelihood = reinforce_loss([Decision(log_prob, zero, zero, reward="likelihood")],
                                   {"success": success, "likelihood": likelihood})
    # -(R - b) log pi + (R - b)^2, averaged over the batch
    assert by_success.item() == pytest.approx((1.0 * 1.0 + 1.0 + 0.0) / 2)
    assert by_likelihood.item() == pytest.approx((0.5 * -1.0 + 0.25 - 0.5 * -2.0 + 0.25) / 2)


def test_standardized_rewards_have_zero_mean_and_unit_spread() -> None:
    values = torch.tensor([3.0, 1.0, 7.0, 5.0])
    out = standardized(values)
    assert out.mean().abs() < 1e-6 and (out.std() - 1).abs() < 1e-4
    assert torch.equal(standardized(torch.tensor([2.0])), torch.zeros(1))


@pytest.mark.parametrize("spec", [
    {"name": "copy", "bits": 3, "min_len": 1, "max_len": 3},
    {"name": "anbn", "min_n": 1, "max_n": 3},
    {"name": "adding", "min_len": 8, "max_len": 10},
    {"name": "babi", "number": 1},
])
def test_sequence_losses_are_the_loss_per_sequence(spec: dict[str, object]) -> None:
    task = make_task(**spec)
    batch = task.sample(5, torch.Generator().manual_seed(0))
    steps = batch.mask.shape[1]
    torch.manual_seed(0)
    logits = torch.randn(5, steps, task.output_size)
    losses = task.sequence_losses(logits, batch)
    assert losses.shape == (5,)
    assert (losses > 0).all()
    torch.testing.assert_close(task.loss_of(logits, batch), losses.mean())
    # each sequence's loss depends on its own logits only
    changed = logits.clone()
    changed[0] += torch.randn_like(changed[0])
    after = task.sequence_losses(changed, batch)
    assert not torch.equal(after[0], losses[0]) and torch.equal(after[1:], losses[1:])
    likelihood = rewards(task, logits, batch, [Decision(losses, losses, losses, reward="likelihood")])
    torch.testing.assert_close(likelihood["likelihood"], standardized(-losses))


# -- address vectors ---------------------------------------------------------------------------

def test_reads_are_a_whole_slot_and_keys_match_address_and_content(tmp_path: Path) -> None:
    model = compile_text(tmp_path, dntm_text(read_heads=2))
    assert model.shapes.sizes["r"] == 2 * (ADDRESS + WIDTH)
    read_group, write_group = model.groups  # two addressings, two groups
    assert not read_group.plan.writes and write_group.plan.writes
    assert {f.name: f.size for f in read_group.layout}["key"] == ADDRESS + WIDTH
    layout = {f.name: f.size for f in write_group.layout}
    assert layout["key"] == ADDRESS + WIDTH and layout["erase"] == WIDTH and layout["add"] == WIDTH
    addresses = model.memories["mem"].addresses
    assert addresses is not None and addresses.shape == (SLOTS, ADDRESS)

    torch.manual_seed(4)
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    _, trace = model(x, return_weights=True)
    fields = fields_at_first_step(model, x)[0]
    contents = model.initial_state(2, x)["mem"]
    assert contents.shape == (2, SLOTS, WIDTH)  # the state holds content only
    whole = torch.cat([addresses.expand(2, -1, -1), contents], dim=-1)
    logits = content_logits(whole, fields["key"], fields["strength"])
    content = logits.softmax(-1)
    previous = model.initial_state(2, x)["weights:0"]
    gate = fields["gate"].unsqueeze(-1)
    expected = gate * content[:, :2] + (1 - gate) * previous[:, :2]
    torch.testing.assert_close(trace["r"][:, 0], expected)


def test_writes_change_content_only_and_addresses_learn(tmp_path: Path) -> None:
    model = compile_text(tmp_path, dntm_text())
    torch.manual_seed(5)
    x = torch.randn(3, 4, 4, dtype=torch.float64)
    state = model.initial_state(3, x)
    before = model.memories["mem"].addresses.detach().clone()
    for t in range(4):
        y, state = model.step(x[:, t], state)
    assert state["mem"].shape == (3, SLOTS, WIDTH)
    y.sum().backward()
    addresses = model.memories["mem"].addresses
    assert torch.equal(addresses.detach(), before)  # never written
    assert addresses.grad is not None and addresses.grad.abs().sum() > 0


def test_a_memory_with_addresses_is_not_fused_but_one_without_is(tmp_path: Path) -> None:
    ntm = "content(cosine) | gate | shift(1) | sharpen"
    with_addresses = compile_text(tmp_path, dntm_text(read=ntm, write=ntm))
    without = compile_text(tmp_path, dntm_text(read=ntm, write=ntm, address_width=0))
    assert with_addresses.fused == (False,) and without.fused == (True,)
    assert without.memories["mem"].addresses is None


# -- lru in a model ------------------------------------------------------------------------------

def test_lru_group_keeps_the_moving_average_of_its_content_logits(tmp_path: Path) -> None:
    model = compile_text(tmp_path, dntm_text(write="content(cosine) | lru(0.2)"))
    torch.manual_seed(6)
    x = torch.randn(2, 1, 4, dtype=torch.float64)
    state = model.initial_state(2, x)
    write_group = next(i for i, g in enumerate(model.groups) if g.plan.writes)
    key = f"lru:{write_group}"
    assert torch.equal(state[key], torch.zeros(2, 1, SLOTS, dtype=torch.float64))
    _, new_state = model.step(x[:, 0], state)
    fields = fields_at_first_step(model, x)[write_group]
    whole = model.memories["mem"].addressed(state["mem"])
    logits = content_logits(whole, fields["key"], fields["strength"])
    torch.testing.assert_close(new_state[key], 0.8 * logits)
    torch.testing.assert_close(new_state[f"weights:{write_group}"], logits.softmax(-1))  # v_0 = 0


# -- hard addressing in a model --------------------------------------------------------------------

def test_hard_heads_use_one_slot_and_record_decisions_only_while_training(tmp_path: Path) -> None:
    model = compile_text(tmp_path, dntm_text(read="content(cosine) | hard(0.01)"))
    assert model.stochastic == frozenset({"r"})
    torch.manual_seed(7)
    x = torch.randn(3, 5, 4, dtype=torch.float64)
    decisions: list[Decision] = []
    model.train()
    _, trace = model(x, return_weights=True, decisions=decisions)
    assert len(decisions) == 5
    assert all(d.reward == "likelihood" and d.entropy_weight == 0.01 and d.log_prob.shape == (3,)
               for d in decisions)
    weights = trace["r"]
    assert torch.equal(weights.sum(-1), torch.ones_like(weights.sum(-1)))
    assert set(weights.unique().tolist()) == {0.0, 1.0}
    decisions.clear()
    model.eval()
    model(x, decisions=decisions)
    assert decisions == []


def test_hard_addressing_learns_its_keys_by_reinforce_alone(tmp_path: Path) -> None:
    model = compile_text(tmp_path, dntm_text(read="content(cosine) | hard"))
    model.train()
    torch.manual_seed(8)
    x = torch.randn(4, 3, 4, dtype=torch.float64)
    group = model.groups[0]
    key = next(f for f in group.layout if f.name == "key")
    read_key_rows = slice(key.offset, key.offset + key.size)  # the read head's key
    decisions: list[Decision] = []
    with torch.no_grad():
        group.baseline.fill_(0.5)
    y = model(x, decisions=decisions)
    task_loss = (y - 0.5).square().sum()
    task_loss.backward(retain_graph=True)
    weight_grad = model.interfaces["ctrl"].weight.grad
    assert weight_grad is not None
    assert weight_grad[read_key_rows].abs().max() == 0  # a sample passes no gradient to its key
    likelihood = standardized(-(y - 0.5).square().sum((1, 2)).detach())
    reinforce_loss(decisions, {"likelihood": likelihood}).backward()
    assert weight_grad[read_key_rows].abs().max() > 0
    assert group.baseline.grad is not None and group.baseline.grad.abs() > 0


def test_explain_says_what_the_dntm_heads_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cogdsl.cli.command import main
    from tests.tiny import write_spec

    path = write_spec(tmp_path, dntm_text(read="content(cosine) | hard", write="content(cosine) | lru(0.2)"))
    assert main(["compile", "--explain", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"learned address ({ADDRESS}) and content ({WIDTH})" in out
    assert "lru(0.2)" in out and "moving average of its content logits" in out
    assert "one sampled slot per head (REINFORCE)" in out
