"""Graves' Gaussian window (cogdsl/blocks/window.py) against loops of Graves 2013, eq. 46-51; its
position as the model's state, moving only forward; the stutter task it is trained on; the
window specs; and a window that learns to read a sequence forward and keeps doing it on
sequences longer than any it trained on."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.blocks.window import Window, window_weights
from cogdsl.errors import SpecError
from cogdsl.language.parse_cog import parse_cog
from cogdsl.tasks import StutterTask, TaskParamError, make_task
from cogdsl.training.loop import config_from_spec, evaluate, train
from tests.tiny import compile_text, train_then_trace

ROOT = Path(__file__).resolve().parent.parent
WINDOW = """
model window_test
input  src: sequence(size=5)
output y: 5 = softmax(dec, win)
window win(k=3) on src <- dec@prev
lstm   dec(hidden=12) <- y@prev, win
"""


def oracle_window(importance: list[float], width: list[float], position: list[float],
                  sequence: list[list[float]]) -> tuple[list[float], list[float]]:
    """phi(u) = sum_k a_k exp(-b_k (kappa_k - u)²), u = 1 .. U, and w = sum_u phi(u) c_u, by loops."""
    phi = [sum(a * math.exp(-b * (kappa - u) ** 2) for a, b, kappa in zip(importance, width, position, strict=True))
           for u in range(1, len(sequence) + 1)]
    value = [sum(phi[u] * sequence[u][d] for u in range(len(sequence))) for d in range(len(sequence[0]))]
    return phi, value


def test_window_weights_match_the_papers_equation() -> None:
    generator = torch.Generator().manual_seed(0)
    importance = torch.rand(3, 4, generator=generator, dtype=torch.float64) * 2
    width = torch.rand(3, 4, generator=generator, dtype=torch.float64) + 0.1
    position = torch.rand(3, 4, generator=generator, dtype=torch.float64) * 7
    phi = window_weights(importance, width, position, 9)
    assert phi.shape == (3, 9)
    for b in range(3):
        expected, _ = oracle_window(importance[b].tolist(), width[b].tolist(), position[b].tolist(), [[0.0]] * 9)
        torch.testing.assert_close(phi[b], torch.tensor(expected, dtype=torch.float64))


def test_window_steps_match_loops_and_only_move_forward() -> None:
    """Four steps of the module against the loop oracle, its linear layer's outputs exponentiated by hand;
    kappa accumulates exp(k^) from 0."""
    torch.manual_seed(1)
    module = Window(query_size=6, components=2).double()
    sequence = torch.randn(2, 7, 4, dtype=torch.float64)
    position = module.initial_state(2, sequence)
    assert torch.equal(position, torch.zeros(2, 2, dtype=torch.float64))
    for _ in range(4):
        query = torch.randn(2, 6, dtype=torch.float64)
        raw = module.place(query).detach()
        value, where, new_position = module(query, sequence, position)
        assert where.shape == (2, 1, 7) and value.shape == (2, 4)
        for b in range(2):
            a_hat, b_hat, k_hat = raw[b].view(3, 2).tolist()
            kappa = [float(position[b, k]) + math.exp(k_hat[k]) for k in range(2)]
            phi, expected = oracle_window([math.exp(v) for v in a_hat], [math.exp(v) for v in b_hat], kappa,
                                          sequence[b].tolist())
            torch.testing.assert_close(new_position[b], torch.tensor(kappa, dtype=torch.float64))
            torch.testing.assert_close(where[b, 0], torch.tensor(phi, dtype=torch.float64))
            torch.testing.assert_close(value[b], torch.tensor(expected, dtype=torch.float64))
        assert (new_position > position).all()
        position = new_position.detach()


def test_window_gradients_match_finite_differences() -> None:
    torch.manual_seed(2)
    module = Window(query_size=5, components=2).double()
    query = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    sequence = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    position = (torch.rand(2, 2, dtype=torch.float64) * 3).requires_grad_()

    def run(query: torch.Tensor, sequence: torch.Tensor, position: torch.Tensor) -> tuple[torch.Tensor, ...]:
        value, where, new_position = module(query, sequence, position)
        return value, where, new_position

    assert torch.autograd.gradcheck(run, (query, sequence, position))


def test_compiled_window_keeps_its_position_as_state(tmp_path: Path) -> None:
    """In a compiled model the trace's win:state is kappa after every step: rising, and the window's
    weights each step are phi at that kappa over the source."""
    model = compile_text(tmp_path, WINDOW)
    source = torch.randn(3, 6, 5, dtype=torch.float64)
    logits, trace = model({"src": source}, steps=8, raw=True, return_weights=True)
    assert logits.shape == (3, 8, 5)
    positions = trace["win:state"]  # (B, T, K)
    assert positions.shape == (3, 8, 3)
    assert (positions.diff(dim=1) > 0).all()
    assert trace["win"].shape == (3, 8, 1, 6)
    state = model.initial_state(3, source)
    assert torch.equal(state["look:win"], torch.zeros(3, 3, dtype=torch.float64))


def test_window_on_a_memory_or_a_vector_is_refused() -> None:
    text = WINDOW.replace("input  src: sequence(size=5)", "input  src: 5")
    with pytest.raises(SpecError) as raised:
        cogdsl.compile(parse_cog(text, "w.cog"))
    assert "E303" in str(raised.value) and "looks over a sequence, and 'src' is an input carrying a vector" in str(
        raised.value)


# ----------------------------------------------------------------------------------------
# The stutter task
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("times", [1, 2, 3])
def test_stutter_writes_each_symbol_times_times(times: int) -> None:
    task = make_task("stutter", symbols=5, min_len=2, max_len=6, times=times)
    assert isinstance(task, StutterTask)
    batch = task.sample(8, torch.Generator().manual_seed(times))
    assert isinstance(batch.inputs, dict)
    source = batch.inputs["sequence"].argmax(-1).tolist()
    for row, target in zip(source, batch.targets.tolist(), strict=True):
        assert target == [symbol for symbol in row for _ in range(times)]
    assert batch.mask.shape == batch.targets.shape and bool((batch.mask == 1).all())
    assert batch.steps == times * batch.inputs["sequence"].shape[1]


@pytest.mark.parametrize("bad", [{"times": 0}, {"times": 9}, {"times": 1.5}])
def test_stutter_refuses_bad_times(bad: dict[str, object]) -> None:
    with pytest.raises(TaskParamError, match="times"):
        make_task("stutter", **bad)


# ----------------------------------------------------------------------------------------
# Specs and learning
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["window_stutter.cog", "bahdanau_stutter.cog", "encdec_stutter.cog"])
def test_stutter_spec_runs_forward_and_backward(name: str) -> None:
    spec = cogdsl.load(ROOT / "specs" / name)
    torch.manual_seed(0)
    model = cogdsl.compile(spec)
    task = make_task("stutter", symbols=8, max_len=5)
    batch = task.sample(4, torch.Generator().manual_seed(0))
    assert isinstance(batch.inputs, dict)
    logits = model({"src": batch.inputs["sequence"]}, raw=True, steps=batch.steps)
    assert logits.shape == (4, batch.steps, 8)
    loss = task.loss_of(logits, batch)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


def test_window_learns_to_read_forward_and_generalises_to_longer_sequences(tmp_path: Path) -> None:
    """A small window model trained on lengths 1-6 writes almost every symbol right at length 6 and at
    length 12, twice as long as any it saw; its trace advances about half a position per step."""
    spec = parse_cog(WINDOW.replace("size=5", "size=6").replace("y: 5", "y: 6") + """
train {
  task stutter(symbols=6, min_len=1, max_len=6)
  optimizer adam(lr=0.01)
  batch 32; steps 300; seed 0; eval_every 300; log_every 300; checkpoint_every 300
}
""", "w.cog")
    config = config_from_spec(spec)
    result = train(spec, config, tmp_path / "run", progress=False)
    task = make_task("stutter", symbols=6, min_len=1, max_len=6)
    for length in (6, 12):
        score = evaluate(result.model, task, length=length, sequences=200)
        assert score.bit_errors < 0.2, (length, score)
    batch = task.sample(1, torch.Generator().manual_seed(5), length=10)
    assert isinstance(batch.inputs, dict)
    result.model.eval()
    _, trace = result.model({"src": batch.inputs["sequence"]}, steps=batch.steps, raw=True, return_weights=True)
    peaks = trace["win"][0, :, 0].argmax(-1)  # the source position each step weighs most
    assert torch.equal(peaks, torch.arange(20) // 2)


def test_trace_draws_a_windows_alignment(tmp_path: Path) -> None:
    spec_path = tmp_path / "w.cog"
    spec_path.write_text(WINDOW + """
train {
  task stutter(symbols=5, max_len=4)
  optimizer adam(lr=0.01)
  batch 4; steps 2; eval_every 2; log_every 2; checkpoint_every 2
}
""")
    trace = train_then_trace(tmp_path, spec_path, "--len", "3")
    assert (trace / "alignment.png").stat().st_size > 1000
