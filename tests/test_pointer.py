"""Pointer networks (Vinyals, Fortunato and Jaitly 2015): ``attention(output=pointer)`` and ``pointer(NAME)``.

- the pointer against a plain loop of the paper's eq. 3 in float64 (u^i_j = v . tanh(W1 e_j + W2 d_i),
  p = softmax(u^i)), and the element it points at (expected in training, argmax in evaluation);
- gradcheck of the pointer in float64;
- a compiled model: its output is the pointer's scores over the n source positions, for any n; what
  ``ptr@prev`` reads is the learned start element, then the element pointed at;
- bad wirings give located diagnostics (file, line, column, code);
- a tiny pointer spec learns: its loss falls over 50 steps.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.blocks.attention import Attention
from cogdsl.errors import SpecError
from cogdsl.tasks import make_task
from cogdsl.training.evaluation import evaluate
from cogdsl.training.loop import config_from_spec, train
from tests.tiny import compile_text, write_spec

POINTER_TEXT = """\
model m
input  src: sequence(size=2)
output y = pointer(ptr)
encoder   enc(hidden=5, cell=gru, bidirectional=true) <- src
summary   s(mode=final) on enc
lstm      dec(hidden=6) <- ptr@prev, s
attention ptr(output=pointer, hidden=4) on enc <- dec
"""


def _fresh(module: torch.nn.Module, seed: int) -> None:
    """Every parameter drawn afresh (the start element and v are zeros or small at first)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))


def _loop_eq3(query: list, keys: list, w1: list, w2: list, v: list) -> tuple[list, list]:
    """u_j = sum_h v_h tanh(sum_d W1[h][d] e_j[d] + sum_q W2[h][q] d[q]); p_j = exp(u_j) / sum_k exp(u_k)."""
    scores = []
    for key in keys:
        total = 0.0
        for h in range(len(v)):
            inner = sum(w1[h][d] * key[d] for d in range(len(key)))
            inner += sum(w2[h][q] * query[q] for q in range(len(query)))
            total += v[h] * math.tanh(inner)
        scores.append(total)
    top = max(scores)
    exps = [math.exp(u - top) for u in scores]
    return scores, [e / sum(exps) for e in exps]


@pytest.mark.parametrize("seed", [0, 1])
def test_pointer_matches_a_loop_of_the_papers_equations(seed: int) -> None:
    batch, length, query_size, key_size, hidden, element_size = 3, 7, 4, 5, 6, 2
    module = Attention("additive", 1, query_size, key_size, hidden, pointer_size=element_size).double()
    assert module.query_proj.bias is None  # eq. 3: W2 d_i, no bias
    _fresh(module, seed)
    generator = torch.Generator().manual_seed(100 + seed)
    query = torch.randn(batch, query_size, generator=generator, dtype=torch.float64)
    keys = torch.randn(batch, length, key_size, generator=generator, dtype=torch.float64)
    elements = torch.randn(batch, length, element_size, generator=generator, dtype=torch.float64)
    w1, w2 = module.key_proj.weight.tolist(), module.query_proj.weight.tolist()
    v = module.v[0].tolist()

    module.train()
    expected_element, scores, weights = module.point(query, keys, elements)
    module.eval()
    greedy_element, eval_scores, _ = module.point(query, keys, elements)
    assert scores.shape == weights.shape == (batch, length) and expected_element.shape == (batch, element_size)
    torch.testing.assert_close(eval_scores, scores, rtol=0, atol=0)
    for b in range(batch):
        want_scores, want_weights = _loop_eq3(query[b].tolist(), keys[b].tolist(), w1, w2, v)
        assert max(abs(x - y) for x, y in zip(scores[b].tolist(), want_scores, strict=True)) < 1e-10
        assert max(abs(x - y) for x, y in zip(weights[b].tolist(), want_weights, strict=True)) < 1e-10
        for i in range(element_size):
            blended = sum(want_weights[j] * elements[b, j, i].item() for j in range(length))
            assert abs(expected_element[b, i].item() - blended) < 1e-10
        chosen = max(range(length), key=lambda j: want_scores[j])
        assert greedy_element[b].tolist() == elements[b, chosen].tolist()


def test_pointer_gradcheck_float64() -> None:
    module = Attention("additive", 1, 3, 4, 3, pointer_size=2).double().train()
    _fresh(module, 3)
    generator = torch.Generator().manual_seed(4)
    inputs = [torch.randn(*shape, generator=generator, dtype=torch.float64, requires_grad=True)
              for shape in ((2, 3), (2, 4, 4), (2, 4, 2))]
    assert torch.autograd.gradcheck(lambda q, k, x: module.point(q, k, x)[:2], inputs)
    element, scores, _ = module.point(*inputs)
    (element.sum() + scores.square().sum()).backward()
    for name, parameter in module.named_parameters():
        if name != "start":  # read by the model before its first step, not by point()
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_compiled_pointer_outputs_scores_over_every_source_length(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = compile_text(tmp_path, POINTER_TEXT).double()
    for length in (3, 6, 11):  # one model for every n: the output has n values
        source = torch.rand(2, length, 2, dtype=torch.float64)
        logits, weights = model({"src": source}, raw=True, steps=4, return_weights=True)
        assert logits.shape == (2, 4, length)
        torch.testing.assert_close(weights["ptr"][:, :, 0], logits.softmax(-1))
        torch.testing.assert_close(model({"src": source}, steps=4), logits.softmax(-1))


@pytest.mark.parametrize("training", [True, False])
def test_ptr_prev_reads_the_start_element_then_the_element_pointed_at(tmp_path: Path, training: bool) -> None:
    torch.manual_seed(1)
    model = compile_text(tmp_path, POINTER_TEXT).double().train(training)
    start = model.attentions["ptr"].start
    with torch.no_grad():
        start.copy_(torch.tensor([0.25, -0.5]))
    source = torch.rand(3, 5, 2, dtype=torch.float64)
    state = model.initial_state(3, source)
    assert torch.equal(state["prev:ptr"], start.expand(3, -1))
    for _ in range(3):
        logits, state = model.step({"src": source}, state, raw=True)
        if training:
            want = (logits.softmax(-1).unsqueeze(1) @ source).squeeze(1)
        else:
            want = source[torch.arange(3), logits.argmax(-1)]
        torch.testing.assert_close(state["prev:ptr"], want, rtol=0, atol=1e-12)


def test_the_start_element_learns(tmp_path: Path) -> None:
    model = compile_text(tmp_path, POINTER_TEXT)
    logits = model({"src": torch.rand(2, 4, 2, dtype=torch.float64)}, raw=True, steps=2)
    logits.square().sum().backward()
    assert model.attentions["ptr"].start.grad is not None and model.attentions["ptr"].start.grad.abs().sum() > 0


def test_pointer_into_a_sequence_input_directly_and_through_stacked_encoders(tmp_path: Path) -> None:
    direct = POINTER_TEXT.replace("attention ptr(output=pointer, hidden=4) on enc",
                                  "attention ptr(output=pointer) on src")
    stacked = POINTER_TEXT.replace("summary   s(mode=final) on enc",
                                   "self_attention top(size=4) <- enc\nsummary   s(mode=mean) on top").replace(
        "on enc <- dec", "on top <- dec")
    for text in (direct, stacked):
        model = compile_text(tmp_path, text).eval()
        source = torch.rand(2, 5, 2, dtype=torch.float64)
        logits, state = model.step({"src": source}, model.initial_state(2, source), raw=True)
        assert logits.shape == (2, 5)
        assert torch.equal(state["prev:ptr"], source[torch.arange(2), logits.argmax(-1)])


BAD = [  # (text with the bad line, code, line, column)
    (POINTER_TEXT.replace("output y = pointer(ptr)", "output y: 5 = pointer(ptr)"), "E205", 3, 11),
    (POINTER_TEXT.replace("output y = pointer(ptr)", "output y = pointer(dec)"), "E303", 3, 20),
    (POINTER_TEXT.replace("output y = pointer(ptr)", "output y = pointer(ptr, dec)"), "E206", 3, 25),
    (POINTER_TEXT.replace("output y = pointer(ptr)", "output y = pointer(ptr@prev)"), "E307", 3, 20),
    (POINTER_TEXT.replace("<- ptr@prev, s", "<- y@prev, s"), "E307", 6, 28),
    (POINTER_TEXT.replace("output=pointer, hidden=4", "output=pointer, heads=2"), "E205", 7, 31),
    (POINTER_TEXT.replace("output=pointer, hidden=4", "output=pointer, mode=hard"), "E205", 7, 31),
    (POINTER_TEXT.replace("attention ptr(output=pointer, hidden=4)", "attention ptr(output=points)"), "E205", 7, 22),
    ("model m\ninput src: sequence(size=1)\ninput x: 3\noutput y = pointer(ptr)\nlstm dec(hidden=8) <- ptr@prev, x\n"
     "memory mem(slots=4, width=3)\nwrite w on mem by dec: content(cosine)\n"
     "attention ptr(output=pointer) on mem <- dec\n", "E303", 8, 34),
    (POINTER_TEXT.replace("size=2", "size=8") + "train { task sort(symbols=8) }\n", "E501", 3, 12),
]


@pytest.mark.parametrize(("text", "code", "line", "col"), BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_pointer_wiring_gives_a_located_diagnostic(tmp_path: Path, text: str, code: str, line: int,
                                                      col: int) -> None:
    path = write_spec(tmp_path, text, ".cog")
    with pytest.raises(SpecError) as caught:
        cogdsl.compile(cogdsl.load(path))
    first = caught.value.diagnostics[0]
    assert (first.code, first.span.line, first.span.col) == (code, line, col), first.render()
    assert first.hint


def test_a_tiny_pointer_spec_learns_to_sort(tmp_path: Path) -> None:
    # Measured over seeds 0-4: the test loss falls from 8.05 (chance: log 5 per step) to 0.60-0.70 of it, and
    # 46-63% of the steps point right (chance 20%). About 2 s.
    text = POINTER_TEXT.replace("size=2", "size=1") + (
        "train {\n  task sort(answer=positions, numbers=true, min_len=5, max_len=5)\n  optimizer adam(lr=0.02)\n"
        "  batch 32; steps 50; seed 0; eval_every 50; eval_size 200; log_every 10; checkpoint_every 50\n}\n")
    spec = cogdsl.load(write_spec(tmp_path, text, ".cog"))
    task = make_task("sort", answer="positions", numbers=True, min_len=5, max_len=5)
    threads = torch.get_num_threads()
    try:
        torch.manual_seed(0)
        before = evaluate(cogdsl.compile(spec), task, sequences=200)
        result = train(spec, config_from_spec(spec), tmp_path / "run", progress=False)
    finally:
        torch.set_num_threads(threads)  # training sets one thread for the whole process
    assert result.step == 50 and result.eval is not None and result.eval.sequences == before.sequences == 200
    assert result.eval.loss < 0.8 * before.loss, (before.loss, result.eval.loss)
    assert result.eval.metrics["position_accuracy"] > 0.35, result.eval.metrics
