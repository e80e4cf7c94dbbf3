"""Show, Attend and Tell (Xu et al. 2015) in the attention block: the gating scalar, the doubly stochastic
penalty and hard attention's likelihood reward, against loops of the paper's equations (float64, fresh random
inputs); a tiny captioner trains; bad parameters give located errors.

The oracles read the modules' parameter tensors and share no code with the package::

    e_ti = v . tanh(W h_{t-1} + b + U a_i),  α_t = softmax(e_t),  z_t = β_t Σ_i α_ti a_i,  β_t = σ(w . h_{t-1} + c)
    penalty = λ Σ_h Σ_i (1 - Σ_t α_{t,h,i})²       (eq. 14)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.blocks.attention import Attention, AttentionKind
from cogdsl.tasks import make_task
from cogdsl.training.loop import train
from tests.tiny import compile_text, write_spec

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread, as training runs: these small models are many times slower on two threads of a busy
    machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY = """\
model sat_tiny
input  img: image(size=16)
output y: 34 = softmax(dec, look)
conv      feats(channels=4, layers=1, kernel=3, pool=2) <- img
attention look(score=additive, hidden=5, heads=2, gate=true, doubly=0.7) on feats <- dec@prev
lstm      dec(hidden=6) <- y@prev, look
"""

TRAIN = """
train {
  task      caption(size=16, grid=2, min_objects=2, max_objects=3)
  optimizer adam(lr=0.01)
  batch 32; steps 40; clip 0; clip_norm 5; seed 0
  eval_every 40; eval_size 64; log_every 10; checkpoint_every 40
}
"""


def gaussian(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def randomize_(module: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype) * 0.7)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gated_context_against_a_loop(seed: int) -> None:
    heads, query_size, key_size, hidden, batch, regions = 2, 4, 3, 5, 2, 6
    module = Attention("additive", heads, query_size, key_size, hidden, gate=True).double()
    randomize_(module, seed)
    query, keys = gaussian(batch, query_size, seed=10 + seed), gaussian(batch, regions, key_size, seed=20 + seed)
    context, weights = module(query, keys)
    got = module.gated(query, context)

    wq, bq = module.query_proj.weight.tolist(), module.query_proj.bias.tolist()
    wk, v = module.key_proj.weight.tolist(), module.v.tolist()
    wg, bg = module.gate.weight.tolist(), module.gate.bias.tolist()
    q, a = query.tolist(), keys.tolist()
    for b in range(batch):
        for h in range(heads):
            scores = []
            for i in range(regions):
                e = 0.0
                for j in range(hidden):
                    row = h * hidden + j
                    inner = bq[row] + sum(wq[row][k] * q[b][k] for k in range(query_size))
                    inner += sum(wk[row][k] * a[b][i][k] for k in range(key_size))
                    e += v[h][j] * math.tanh(inner)
                scores.append(e)
            top = max(scores)
            alpha = [math.exp(e - top) for e in scores]
            alpha = [x / sum(alpha) for x in alpha]
            beta = sigmoid(bg[h] + sum(wg[h][k] * q[b][k] for k in range(query_size)))
            for d in range(key_size):
                z = beta * sum(alpha[i] * a[b][i][d] for i in range(regions))
                assert got[b, h * key_size + d].item() == pytest.approx(z, abs=1e-12)
            assert weights[b, h].tolist() == pytest.approx(alpha, abs=1e-12)


def test_without_gate_the_context_is_unchanged() -> None:
    module = Attention("additive", 1, 4, 3, 5).double()
    context = gaussian(2, 3, seed=0)
    assert module.gate is None and module.gated(gaussian(2, 4, seed=1), context) is context


def test_a_closed_gate_shuts_the_image_out_of_the_compiled_model(tmp_path: Path) -> None:
    """The compiled step applies β: with β = σ(-60) the decoder writes the same for two different images."""
    model = compile_text(tmp_path, TINY)
    randomize_(model, 3)
    images = gaussian(2, 16, 16, seed=3).abs()
    shown = model({"img": images}, steps=4)  # (2, 4, 34)
    assert (shown[0] - shown[1]).abs().max() > 1e-4
    gate = model.attentions["look"].gate
    with torch.no_grad():
        gate.weight.zero_()
        gate.bias.fill_(-60.0)
    shut = model({"img": images}, steps=4)
    assert torch.allclose(shut[0], shut[1], atol=1e-12, rtol=0)


@pytest.mark.parametrize(("seed", "steps"), [(0, 1), (1, 5), (2, 9)])
def test_doubly_stochastic_penalty_against_a_loop(tmp_path: Path, seed: int, steps: int) -> None:
    model = compile_text(tmp_path, TINY, seed=seed)
    randomize_(model, seed)
    images = gaussian(3, 16, 16, seed=40 + seed)
    penalties: list[torch.Tensor] = []
    _, weights = model({"img": images}, steps=steps, penalties=penalties, return_weights=True)
    assert len(penalties) == steps and all(p.shape == (3,) for p in penalties)
    got = torch.stack(penalties).sum(0)
    alpha = weights["look"].tolist()  # (B, T, heads, L)
    for b in range(3):
        expected = 0.0
        for h in range(2):
            for i in range(64):
                expected += (1.0 - sum(alpha[b][t][h][i] for t in range(steps))) ** 2
        assert got[b].item() == pytest.approx(0.7 * expected, rel=1e-12)


def test_doubly_stochastic_penalty_starts_again_for_each_input(tmp_path: Path) -> None:
    model = compile_text(tmp_path, TINY)
    images = gaussian(2, 16, 16, seed=5)
    first: list[torch.Tensor] = []
    again: list[torch.Tensor] = []
    model({"img": images}, steps=3, penalties=first)
    model({"img": images}, steps=3, penalties=again)
    assert torch.equal(torch.stack(first), torch.stack(again))


def test_the_penalty_has_gradients_into_the_scores(tmp_path: Path) -> None:
    model = compile_text(tmp_path, TINY)
    penalties: list[torch.Tensor] = []
    model({"img": gaussian(2, 16, 16, seed=6)}, steps=3, penalties=penalties)
    torch.stack(penalties).sum().backward()
    assert model.attentions["look"].v.grad.abs().sum() > 0
    assert model.penalized == frozenset({"look"})


def test_hard_attention_learns_from_the_likelihood(tmp_path: Path) -> None:
    text = TINY.replace("heads=2, gate=true, doubly=0.7", "mode=hard, reward=likelihood")
    model = compile_text(tmp_path, text)
    model.train()
    decisions: list = []
    model({"img": gaussian(4, 16, 16, seed=7)}, steps=3, decisions=decisions)
    assert len(decisions) == 3 and {d.reward for d in decisions} == {"likelihood"}
    assert all(d.log_prob.shape == (4,) for d in decisions)


def test_a_tiny_captioner_trains(tmp_path: Path) -> None:
    """40 steps of the tiny spec through the training loop (penalty included): the loss falls."""
    threads = torch.get_num_threads()
    try:
        result = train(write_spec(tmp_path, TINY + TRAIN), None, tmp_path / "run", progress=False)
    finally:
        torch.set_num_threads(threads)
    lines = (tmp_path / "run" / "log.csv").read_text().splitlines()
    header = lines[0].split(",")
    losses = [float(line.split(",")[header.index("loss")]) for line in lines[1:]]
    assert result.step == 40 and len(losses) == 4
    assert losses[-1] < 0.9 * losses[0], losses  # measured: 21.2 -> 18.4
    assert result.eval is not None and set(result.eval.metrics) == {"exact_caption", "bleu4", "count_a_accuracy",
                                                                "class_a_accuracy", "relation_accuracy",
                                                                "count_b_accuracy", "class_b_accuracy"}


@pytest.mark.parametrize(("old", "new", "token"), [
    ("doubly=0.7", "doubly=-1.0", "doubly"),
    ("gate=true", "gate=3", "gate"),
    ("doubly=0.7", "doubly=0.7, reward=likelihood", "reward"),
    ("doubly=0.7", "doubly=0.7, reward=often", "reward"),
])
def test_bad_parameters_give_located_errors(tmp_path: Path, old: str, new: str, token: str) -> None:
    text = TINY.replace(old, new)
    with pytest.raises(cogdsl.SpecError) as info:
        cogdsl.compile(cogdsl.load(write_spec(tmp_path, text)))
    line = text.splitlines()[4]
    name, value = line.index(f"{token}=") + 1, line.index(f"{token}=") + len(token) + 2  # its name or its value
    matching = [d for d in info.value.diagnostics if d.span.line == 5 and d.span.col in (name, value)]
    assert matching, [d.headline() for d in info.value.diagnostics]


def test_a_pointer_has_no_gate(tmp_path: Path) -> None:
    if "output" not in {param.name for param in AttentionKind.params}:
        pytest.skip("attention has no pointers (output=pointer) in this tree")
    text = """\
model p
input  src: sequence(size=1)
output y = pointer(ptr)
encoder   enc(hidden=4) <- src
attention ptr(output=pointer, gate=true) on enc <- dec@prev
gru       dec(hidden=4) <- ptr@prev
"""
    with pytest.raises(cogdsl.SpecError) as info:
        cogdsl.compile(cogdsl.load(write_spec(tmp_path, text)))
    assert any(d.span.line == 5 and "gate" in d.message for d in info.value.diagnostics), [
        d.headline() for d in info.value.diagnostics]


def test_the_specs_run_on_their_task() -> None:
    for name in ("show_attend_tell", "show_attend_tell_hard", "show_attend_tell_baseline"):
        spec = cogdsl.load(ROOT / "specs" / f"{name}.cog")
        model = cogdsl.compile(spec)
        task = make_task("caption")  # the specs' task: the defaults
        batch = task.sample(2, torch.Generator().manual_seed(0))
        model.train()
        penalties: list[torch.Tensor] = []
        logits = model({"img": batch.inputs["image"]}, steps=batch.steps, raw=True, penalties=penalties)
        assert logits.shape == (2, 7, 34)
        loss = task.loss_of(logits, batch) + (torch.stack(penalties).sum(0).mean() if penalties else 0.0)
        loss.backward()
        assert bool(penalties) == (name == "show_attend_tell")


def test_caption_scores_agree_with_the_evaluation(tmp_path: Path) -> None:
    """caption_scores (corpus BLEU-4 for the results page) scores the same test set as ``cogdsl eval``."""
    from cogdsl.tasks.caption import caption_scores, corpus_bleu
    from cogdsl.training.evaluation import evaluate

    model = compile_text(tmp_path, TINY, double=False)
    task = make_task("caption", size=16, grid=2)
    scores = caption_scores(model, task, sequences=40)
    result = evaluate(model, task, sequences=40, batch=40)
    assert scores["exact_caption"] == pytest.approx(result.metrics["exact_caption"], abs=1e-6)
    assert scores["sentence_bleu4"] == pytest.approx(result.metrics["bleu4"], abs=1e-6)
    assert 0.0 <= scores["corpus_bleu4"] <= 1.0 and corpus_bleu([["a"]], [["a"]]) == 0.0  # no 4-grams


def test_a_sweep_trial_scores_corpus_bleu_on_the_test_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cogdsl sweep's scoring adds the task's test-set scores (a caption task's corpus BLEU-4) to a trial's
    metrics, from the trial's checkpoint on the fixed test set. A tiny model's BLEU is 0, so the scores are
    checked through a stand-in that tells which model and how many images it was given."""
    from cogdsl.sweep.plan import Plan, Score
    from cogdsl.sweep.trial import run_trial, trial_config
    from cogdsl.tasks.caption import CaptionTask

    given: list[tuple[float, int]] = []

    def scores(task: CaptionTask, model: torch.nn.Module, sequences: int = 1000) -> dict[str, float]:
        weight = float(next(model.parameters()).detach().flatten()[0])
        given.append((weight, sequences))
        return {"corpus_bleu4": weight}

    monkeypatch.setattr(CaptionTask, "test_set_scores", scores)
    spec = write_spec(tmp_path, TINY + TRAIN.replace("steps 40", "steps 4").replace("checkpoint_every 40",
                                                                                     "checkpoint_every 4"))
    (trial,) = Plan(specs=[str(spec)]).trials()
    folder = tmp_path / "sweep" / trial.id
    marker = run_trial(trial_config(trial, folder, Score(sequences=30), max_minutes=None, device="cpu", gpus=0,
                                    threads=1, tensorboard=False))
    assert marker["status"] == "done", marker.get("error")
    trained = cogdsl.restore(str(folder / marker["scored"]["checkpoint"]))
    weight = float(next(trained.parameters()).detach().flatten()[0])
    assert given == [(pytest.approx(weight, abs=1e-7), 30)]
    assert marker["scored"]["metrics"]["corpus_bleu4"] == pytest.approx(weight, abs=1e-7)
    assert {"exact_caption", "bleu4", "wrong"} <= set(marker["scored"]["metrics"])
