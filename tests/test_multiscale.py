"""The multiscale controllers of cogdsl/blocks/multiscale.py (clockwork, skip_rnn, hm_rnn) and
zoneout on the recurrent controllers, against loops of their papers' equations; what they trace;
the skip RNN's update cost through training; and their parameters' checks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.blocks.controllers import RecurrentController, zone_out
from cogdsl.blocks.multiscale import HMRNN, ClockworkRNN, SkipRNN, straight_through_round
from cogdsl.errors import SpecError
from cogdsl.language.parse_cog import parse_cog
from cogdsl.training.loop import config_from_spec, train
from tests.tiny import compile_text, write_spec


def test_clockwork_matches_a_loop_over_groups_and_periods() -> None:
    """Group i (periods 1, 3, 9) runs at t % 3^i == 0, from the input and the groups at least as slow."""
    torch.manual_seed(0)
    module = ClockworkRNN(input_size=2, hidden=6, modules=3, base=3, zoneout=0.0).double()
    w_in, b_in = module.input_layer.weight.detach(), module.input_layer.bias.detach()
    w_h = module.recurrent.weight.detach()
    xs = torch.randn(10, 1, 2, dtype=torch.float64)
    state = module.initial_state(1, xs)
    expected = [0.0] * 6
    for t in range(10):
        h, state = module(xs[t], state)
        previous = list(expected)
        for unit in range(6):
            group = unit // 2
            if t % 3 ** group == 0:
                total = float(b_in[unit]) + sum(float(w_in[unit, k]) * float(xs[t, 0, k]) for k in range(2))
                total += sum(float(w_h[unit, j]) * previous[j] for j in range(6) if j // 2 >= group)
                expected[unit] = math.tanh(total)
        torch.testing.assert_close(h[0], torch.tensor(expected, dtype=torch.float64))
        assert module.traced["active"][0].tolist() == [1.0, float(t % 3 == 0), float(t % 9 == 0)]


def test_clockwork_faster_groups_do_not_feed_slower_ones() -> None:
    torch.manual_seed(1)
    module = ClockworkRNN(input_size=2, hidden=4, modules=2, base=2, zoneout=0.0)
    state = module.initial_state(3, torch.zeros(1))
    total = torch.zeros(())
    for _ in range(4):
        h, state = module(torch.randn(3, 2), state)
        total = total + h.sum()
    total.backward()
    grad = module.recurrent.weight.grad
    assert grad is not None
    assert bool((grad[2:, :2] == 0).all())  # slow units (group 1) get nothing from fast ones (group 0)
    assert bool((grad[:2, 2:] != 0).any())


def test_skip_rnn_matches_the_papers_update_rule() -> None:
    """A GRU cell with the update gate u_t = round(u~_t) and u~ growing while skipped, by hand."""
    torch.manual_seed(2)
    module = SkipRNN(input_size=3, hidden=4, cell="gru", cost=0.5, zoneout=0.0).double()
    with torch.no_grad():
        module.update_gate.bias.fill_(-1.5)  # Δu~ ≈ 0.2: a few skipped steps between updates
    cell = module.cell.cells[0]
    xs = torch.randn(12, 1, 3, dtype=torch.float64)
    state = module.initial_state(1, xs)
    h_expected, probability = torch.zeros(1, 4, dtype=torch.float64), 1.0
    updates = []
    for t in range(12):
        h, state = module(xs[t], state)
        update = float(round(probability))
        if update:
            h_expected = cell(xs[t], h_expected).detach()
        delta = float(torch.sigmoid(module.update_gate(h_expected)).detach()[0, 0])
        probability = delta if update else probability + min(delta, 1 - probability)
        updates.append(update)
        torch.testing.assert_close(h.detach(), h_expected)
        assert float(module.traced["updates"].detach()[0, 0]) == update
        assert module.penalty is not None and float(module.penalty.detach()[0]) == pytest.approx(0.5 * update)
    assert 0 < sum(updates) < 12  # it both updated and skipped


def test_straight_through_rounding_passes_the_gradient() -> None:
    probability = torch.tensor([0.3, 0.7], requires_grad=True)
    rounded = straight_through_round(probability)
    assert rounded.tolist() == [0.0, 1.0]
    (rounded * torch.tensor([2.0, 3.0])).sum().backward()
    assert probability.grad is not None and probability.grad.tolist() == [2.0, 3.0]


def oracle_hm_layer(h: list[float], c: list[float], boundary: float, below_boundary: float,
                    gates: list[float], slope: float) -> tuple[list[float], list[float], float]:
    """One layer of Chung et al.'s HM-LSTM from its summed pre-activations, with explicit branches."""
    k = len(h)
    f = [1 / (1 + math.exp(-v)) for v in gates[:k]]
    i = [1 / (1 + math.exp(-v)) for v in gates[k:2 * k]]
    o = [1 / (1 + math.exp(-v)) for v in gates[2 * k:3 * k]]
    g = [math.tanh(v) for v in gates[3 * k:4 * k]]
    if boundary == 1:
        new_c = [i[u] * g[u] for u in range(k)]
        new_h = [o[u] * math.tanh(new_c[u]) for u in range(k)]
    elif below_boundary == 1:
        new_c = [f[u] * c[u] + i[u] * g[u] for u in range(k)]
        new_h = [o[u] * math.tanh(new_c[u]) for u in range(k)]
    else:
        new_c, new_h = list(c), list(h)
    z = float(round(min(1.0, max(0.0, (slope * gates[4 * k] + 1) / 2))))
    return new_h, new_c, z


def test_hm_rnn_matches_flush_update_and_copy_by_hand() -> None:
    torch.manual_seed(3)
    module = HMRNN(input_size=2, hidden=6, layers=2, slope=1.0, zoneout=0.0).double()
    xs = torch.randn(15, 1, 2, dtype=torch.float64) * 2
    state = module.initial_state(1, xs)
    layers = [([0.0] * 3, [0.0] * 3, 0.0) for _ in range(2)]
    seen: set[str] = set()
    for t in range(15):
        out, state = module(xs[t], state)
        below, below_boundary = xs[t], 1.0
        new_layers = []
        for layer in range(2):
            h, c, boundary = layers[layer]
            ht = torch.tensor([h], dtype=torch.float64)
            gates = module.recurrent[layer](ht) + below_boundary * module.bottom_up[layer](below)
            if layer == 0:
                gates = gates + boundary * module.top_down[0](torch.tensor([layers[1][0]], dtype=torch.float64))
            seen.add("flush" if boundary else "update" if below_boundary else "copy")
            new = oracle_hm_layer(h, c, boundary, below_boundary, gates[0].tolist(), 1.0)
            new_layers.append(new)
            below, below_boundary = torch.tensor([new[0]], dtype=torch.float64), new[2]
        layers = new_layers
        torch.testing.assert_close(out[0].detach(), torch.tensor(layers[0][0] + layers[1][0], dtype=torch.float64))
        assert module.traced["boundaries"][0].tolist() == [layers[0][2], layers[1][2]]
    assert seen == {"flush", "update", "copy"}, seen


@pytest.mark.parametrize("lstm", [True, False])
def test_zoneout_keeps_units_in_training_and_averages_in_evaluation(lstm: bool) -> None:
    torch.manual_seed(4)
    controller = RecurrentController(torch.nn.LSTMCell if lstm else torch.nn.GRUCell, 3, 400, 1, zoneout=0.3)
    plain = RecurrentController(torch.nn.LSTMCell if lstm else torch.nn.GRUCell, 3, 400, 1)
    plain.load_state_dict(controller.state_dict())
    x = torch.randn(5, 3)
    old = tuple(torch.randn(5, 400) for _ in controller.initial_state(5, x))
    _, fresh = plain(x, old)
    controller.eval()
    _, averaged = controller(x, old)
    for new, previous, got in zip(fresh, old, averaged, strict=True):
        torch.testing.assert_close(got, 0.3 * previous + 0.7 * new)
    controller.train()
    _, zoned = controller(x, old)
    for new, previous, got in zip(fresh, old, zoned, strict=True):
        kept = torch.isclose(got, previous)
        assert bool((kept | torch.isclose(got, new)).all())
        assert abs(kept.float().mean().item() - 0.3) < 0.03  # 2,000 units
    assert torch.equal(zone_out(fresh[0], old[0], 0.0, True), fresh[0])


def test_models_trace_when_their_units_ran(tmp_path: Path) -> None:
    model = compile_text(tmp_path, """
model ms
input  x: 3
output y: 2 = sigmoid(cw, sk, hm, z)
clockwork cw(hidden=12, modules=3) <- x
skip_rnn  sk(hidden=8, cost=0.01) <- x
hm_rnn    hm(hidden=9, layers=3) <- x
gru       z(hidden=5, zoneout=0.2) <- x
""")
    penalties: list[torch.Tensor] = []
    y, trace = model(torch.randn(2, 9, 3, dtype=torch.float64), return_weights=True, penalties=penalties)
    assert y.shape == (2, 9, 2)
    assert trace["cw:active"].shape == (2, 9, 3)
    assert trace["cw:active"][0, :, 2].tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert trace["sk:updates"].shape == (2, 9, 1) and trace["hm:boundaries"].shape == (2, 9, 3)
    assert model.penalized == {"sk"} and len(penalties) == 9
    torch.testing.assert_close(torch.stack(penalties, 1), 0.01 * trace["sk:updates"][..., 0])


@pytest.mark.parametrize(("text", "message"), [
    ("clockwork c(hidden=10, modules=3) <- x", "3 modules do not divide hidden=10"),
    ("hm_rnn c(hidden=10, layers=4) <- x", "4 layers do not divide hidden=10"),
    ("lstm c(hidden=10, zoneout=1.5) <- x", "parameter 'zoneout' is 1.5, out of range"),
    ("skip_rnn c(hidden=10, cell=clockwork) <- x", "'clockwork' is not an allowed value of 'cell'"),
])
def test_bad_parameters_are_located_errors(text: str, message: str) -> None:
    with pytest.raises(SpecError, match="E205") as raised:
        cogdsl.compile(parse_cog(f"model m\ninput x: 2\noutput y: 2 = sigmoid(c)\n{text}\n", "m.cog"))
    assert message in str(raised.value)


def test_a_costly_update_teaches_the_skip_rnn_to_skip(tmp_path: Path) -> None:
    """With a large cost per update and a task its state does not help with, training drives the
    fraction of updates down; with no cost it stays at every step."""
    text = """
model skip
input  x: 9
output y: 8 = sigmoid(sk)
skip_rnn sk(hidden=8, cost=COST) <- x
train {
  task copy(bits=8, min_len=2, max_len=4)
  optimizer adam(lr=0.05)
  batch 8; steps 40; eval_every 40; log_every 40; checkpoint_every 40
}
"""
    fractions = {}
    for cost in ("0.0", "1.0"):
        spec = cogdsl.load(write_spec(tmp_path, text.replace("COST", cost), name=f"skip{cost}"))
        torch.manual_seed(0)
        result = train(spec, config_from_spec(spec), tmp_path / f"run{cost}", progress=False)
        _, trace = result.model(torch.randn(16, 10, 9), return_weights=True)
        fractions[cost] = float(trace["sk:updates"].detach().mean())
    assert fractions["0.0"] > 0.9
    assert fractions["1.0"] < 0.5, fractions
