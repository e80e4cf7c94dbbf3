"""Memory networks over stories (``episodic_memory``, ``kv_memory``, ``hops``, ``episodes``) against oracles.

The oracles below are explicit float64 loops (over batch elements, hops, slots and words) written from
the papers' equations and the module docstrings of :mod:`cogdsl.blocks.memnet` and
:mod:`cogdsl.blocks.dmn`; they read the compiled model's parameter tensors but share no code with the
package:

- MemN2N (Sukhbaatar et al. 2015): position encoding ``l_kj = (1 - j/J) - (k/d)(1 - 2j/J)``, temporal
  encoding by recency, only the ``slots`` most recent sentences, softmax over the real slots,
  ``u <- u + o`` (adjacent tying) or ``u <- H u + o`` (layerwise tying), logits ``W u_{K+1} + b``;
- KV-MemNN (Miller et al. 2016): one table for question, keys and values, ``split=none`` or
  ``split=last_word``, ``u <- R_k (u + o)``;
- DMN / DMN+ (Kumar et al. 2016, Xiong et al. 2016): hand-written GRU equations for the question GRU,
  the (optional) fusion layer, the gates (softmax or sigmoid), the attention-gated GRU and the memory GRU.

Also here: linear start (raw scores instead of a softmax), padding invariance, ``random_empty`` slots,
gradients (every parameter that should get one, gradcheck) and ``tie_answer`` (one Parameter, counted
once, E501 when it cannot apply).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch.func import functional_call

import cogdsl
from cogdsl.blocks.memnet import Stored, position_weights

ROOT = Path(__file__).resolve().parent.parent

VOCAB = 11
DIM = 5
WORDS = 5  # L: words per sentence, padding included
SENTENCES = 6  # S: sentences per story, padding included
SLOTS = 4
COUNTS = (6, 3, 1)  # real sentences of each story: one longer than SLOTS, one shorter, one single


# ----------------------------------------------------------------------------------------
# Specs, models and random stories
# ----------------------------------------------------------------------------------------

def qa_spec(memory: str = "episodic_memory", memory_params: str = "", reader: str = "hops",
            reader_params: str = "", output: str = "reason", size: int | None = None, extra: str = "",
            vocab: int = VOCAB, dim: int = DIM) -> str:
    """A .cog question-answering model: a story memory of ``dim``-vectors with SLOTS slots, read by one block."""
    return f"""\
cogdsl 1
model t
input  story: sentences(vocab={vocab})
input  question: words(vocab={vocab})
output answer: {vocab if size is None else size} = softmax({output})
{memory} mem(embedding={dim}, slots={SLOTS}{memory_params}) <- story
{reader} reason({reader_params}) on mem <- question
{extra}"""


@pytest.fixture
def float64_default() -> Iterator[None]:
    """Run with float64 as torch's default dtype: :func:`position_weights` computes in the default dtype
    whatever the model's (see ``test_position_encoding_of_a_double_model_is_float64_accurate``), so the
    oracle comparisons at 1e-10 need it to check the equations rather than float32 rounding."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def compile_text(tmp_path: Path, text: str, name: str = "t", seed: int = 0) -> cogdsl.CompiledModel:
    path = tmp_path / f"{name}.cog"
    path.write_text(text)
    torch.manual_seed(seed)
    return cogdsl.compile(cogdsl.load(path))


def double_model(tmp_path: Path, text: str, seed: int = 0) -> cogdsl.CompiledModel:
    """The compiled model in float64, eval mode, with every parameter redrawn (so biases and temporal
    rows are not small) except the padding row 0 of each word table, which stays zero."""
    model = compile_text(tmp_path, text, seed=seed).double().eval()
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)
            if ".words." in name:
                p[0].zero_()
    return model


def random_sentence(g: torch.Generator, length: int, words: int = WORDS, vocab: int = VOCAB) -> torch.Tensor:
    """``length`` word ids in 1..vocab-1, then zeros up to ``words``."""
    row = torch.zeros(words, dtype=torch.long)
    row[:length] = torch.randint(1, vocab, (length,), generator=g)
    return row


def random_batch(seed: int, counts: tuple[int, ...] = COUNTS, sentences: int = SENTENCES, words: int = WORDS,
                 vocab: int = VOCAB) -> tuple[torch.Tensor, torch.Tensor]:
    """story (B, S, L) with counts[b] real sentences of 1..L words each, then empty rows; question (B, L)."""
    g = torch.Generator().manual_seed(seed)
    story = torch.zeros(len(counts), sentences, words, dtype=torch.long)
    question = torch.zeros(len(counts), words, dtype=torch.long)
    for b, count in enumerate(counts):
        for s in range(count):
            story[b, s] = random_sentence(g, int(torch.randint(1, words + 1, (1,), generator=g)), words, vocab)
        question[b] = random_sentence(g, int(torch.randint(1, words + 1, (1,), generator=g)), words, vocab)
    return story, question


def run(model: cogdsl.CompiledModel, story: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
    """The raw logits (B, V) of a question-answering model."""
    y = model({"story": story[:, None], "question": question[:, None]}, raw=True)
    assert y.shape == (story.shape[0], 1, model.outputs["answer"].out_features)
    return y[:, 0]


def attention(model: cogdsl.CompiledModel, story: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
    """Each hop's (or episode's) attention over the slots, (B, hops, M)."""
    _, weights = model({"story": story[:, None], "question": question[:, None]}, raw=True, return_weights=True)
    return weights["reason"][:, 0]


def answer_loss(logits: torch.Tensor, seed: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(1, logits.shape[-1], (logits.shape[0],), generator=g)
    return torch.nn.functional.cross_entropy(logits, target)


# ----------------------------------------------------------------------------------------
# The oracles: float64 loops, one batch element at a time
# ----------------------------------------------------------------------------------------

def real_words(sentence: torch.Tensor) -> list[int]:
    return [int(w) for w in sentence if int(w) != 0]


def position_weight(j: int, big_j: int, dim: int) -> torch.Tensor:
    """l_j over k = 1..d: (1 - j/J) - (k/d)(1 - 2j/J), j and k 1-based."""
    return torch.tensor([(1 - j / big_j) - (k / dim) * (1 - 2 * j / big_j) for k in range(1, dim + 1)],
                        dtype=torch.float64)


def encode(words: list[int], table: torch.Tensor, position: bool) -> torch.Tensor:
    """sum_j l_j o E[x_j] over a sentence's real words (bag of words: l_j = 1)."""
    dim = table.shape[1]
    total = torch.zeros(dim, dtype=torch.float64)
    for j, word in enumerate(words, start=1):
        weight = position_weight(j, len(words), dim) if position else torch.ones(dim, dtype=torch.float64)
        total = total + weight * table[word].double()
    return total


def softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    return [e / sum(exps) for e in exps]


def kept_sentences(story_b: torch.Tensor, slots: int) -> list[list[int]]:
    """The real sentences (non-empty rows) of one story, the ``slots`` most recent, in story order."""
    return [real_words(row) for row in story_b if bool(row.ne(0).any())][-slots:]


def hops_oracle(model: cogdsl.CompiledModel, story: torch.Tensor, question: torch.Tensor, *, tying: str = "adjacent",
                kv_split: str | None = None, linear: bool = False
                ) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
    """MemN2N (``kv_split=None``) or KV-MemNN hops, from the model's parameters.

    Returns the logits (B, V) and, for each batch element and hop, the attention over its kept slots.
    """
    memory, hops = model.layers["mem"], model.layers["reason"]
    tables = [t.weight.detach().double() for t in memory.words]
    times = None if memory.times is None else [t.detach().double() for t in memory.times]
    position, count, slots, dim = memory.position, hops.count, memory.slots, memory.dim
    out = model.outputs["answer"]
    w, bias = out.weight.detach().double(), out.bias.detach().double()
    if kv_split is not None:
        query_table, key_tables, value_tables = 0, [0] * count, [0] * count
    elif tying == "adjacent":
        query_table, key_tables, value_tables = 0, list(range(count)), list(range(1, count + 1))
    else:
        query_table, key_tables, value_tables = 2, [0] * count, [1] * count
    logits, attentions = [], []
    for b in range(story.shape[0]):
        sentences = kept_sentences(story[b], slots)
        n = len(sentences)
        recency = [n - 1 - i for i in range(n)]
        u = encode(real_words(question[b]), tables[query_table], position)
        per_hop = []
        for k in range(count):
            a, c = tables[key_tables[k]], tables[value_tables[k]]
            keys, values = [], []
            for i, words in enumerate(sentences):
                if kv_split == "last_word":
                    key = encode(words[:-1], a, position)
                    value = a[words[-1]].clone()  # the value is the last word's embedding A[x_J]
                else:
                    key = encode(words, a, position)
                    value = encode(words, c, position)
                if times is not None:
                    key = key + times[key_tables[k]][recency[i]]
                    if kv_split is None:  # MemN2N: C carries its own temporal encoding; KV values none
                        value = value + times[value_tables[k]][recency[i]]
                keys.append(key)
                values.append(value)
            scores = [float(u @ m) for m in keys]
            p = scores if linear else softmax(scores)
            o = torch.zeros(dim, dtype=torch.float64)
            for p_i, c_i in zip(p, values, strict=True):
                o = o + p_i * c_i
            if kv_split is not None:
                u = hops.rotations[k].weight.detach().double() @ (u + o)
            elif tying == "adjacent":
                u = u + o
            else:
                u = hops.mapping.weight.detach().double() @ u + o
            per_hop.append(torch.tensor(p, dtype=torch.float64))
        logits.append(w @ u + bias)
        attentions.append(per_hop)
    return torch.stack(logits), attentions


def gru_cell(x: torch.Tensor, h: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor,
             b_hh: torch.Tensor) -> torch.Tensor:
    """r = s(W_ir x + b_ir + W_hr h + b_hr), z = s(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r o (W_hn h + b_hn)), h' = (1 - z) o n + z o h; weights stacked [r; z; n]."""
    d = h.shape[0]
    w_ir, w_iz, w_in = w_ih[:d], w_ih[d:2 * d], w_ih[2 * d:]
    w_hr, w_hz, w_hn = w_hh[:d], w_hh[d:2 * d], w_hh[2 * d:]
    b_ir, b_iz, b_in = b_ih[:d], b_ih[d:2 * d], b_ih[2 * d:]
    b_hr, b_hz, b_hn = b_hh[:d], b_hh[d:2 * d], b_hh[2 * d:]
    r = torch.sigmoid(w_ir @ x + b_ir + w_hr @ h + b_hr)
    z = torch.sigmoid(w_iz @ x + b_iz + w_hz @ h + b_hz)
    n = torch.tanh(w_in @ x + b_in + r * (w_hn @ h + b_hn))
    return (1 - z) * n + z * h


def cell_weights(module: torch.nn.Module, suffix: str = "") -> tuple[torch.Tensor, ...]:
    """(W_ih, W_hh, b_ih, b_hh) of a GRUCell (suffix "") or one layer/direction of a GRU ("_l0", "_l0_reverse")."""
    return tuple(getattr(module, f"{name}{suffix}").detach().double()
                 for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def episodes_oracle(model: cogdsl.CompiledModel, story: torch.Tensor, question: torch.Tensor, gate: str,
                    fusion: bool, update: str = "gru") -> torch.Tensor:
    """DMN episodes, one batch element at a time; the logits (B, V)."""
    memory, episodes = model.layers["mem"], model.layers["reason"]
    table = memory.words[0].weight.detach().double()
    times = None if memory.times is None else memory.times[0].detach().double()
    dim = memory.dim
    question_gru = cell_weights(episodes.question_gru, "_l0")
    attention_gru = cell_weights(episodes.attention_cell)
    if update == "relu":  # DMN+: one untied layer per episode on [m; e; q]
        memory_layers = [(layer.weight.detach().double(), layer.bias.detach().double())
                         for layer in episodes.memory_layers]
    else:
        memory_gru = cell_weights(episodes.memory_cell)
    w1, b1 = episodes.gate[0].weight.detach().double(), episodes.gate[0].bias.detach().double()
    w2, b2 = episodes.gate[2].weight.detach().double()[0], float(episodes.gate[2].bias.detach().double()[0])
    out = model.outputs["answer"]
    logits = []
    for b in range(story.shape[0]):
        sentences = kept_sentences(story[b], memory.slots)
        n = len(sentences)
        facts = []
        for i, words in enumerate(sentences):
            fact = encode(words, table, memory.position)
            if times is not None:
                fact = fact + times[n - 1 - i]
            facts.append(fact)
        if fusion:
            forward_w, backward_w = cell_weights(episodes.fusion, "_l0"), cell_weights(episodes.fusion, "_l0_reverse")
            h = torch.zeros(dim, dtype=torch.float64)
            forward = []
            for fact in facts:
                h = gru_cell(fact, h, *forward_w)
                forward.append(h)
            h = torch.zeros(dim, dtype=torch.float64)
            backward: list[torch.Tensor] = [h] * n
            for i in reversed(range(n)):
                h = gru_cell(facts[i], h, *backward_w)
                backward[i] = h
            facts = [f + r for f, r in zip(forward, backward, strict=True)]
        q = torch.zeros(dim, dtype=torch.float64)
        for word in real_words(question[b]):
            q = gru_cell(table[word], q, *question_gru)
        m = q
        for episode in range(episodes.count):
            scores = []
            for c in facts:
                z = torch.cat([c * q, c * m, (c - q).abs(), (c - m).abs()])
                scores.append(float(w2 @ torch.tanh(w1 @ z + b1)) + b2)
            gates = softmax(scores) if gate == "softmax" else [1 / (1 + math.exp(-s)) for s in scores]
            h = torch.zeros(dim, dtype=torch.float64)
            for g_t, c in zip(gates, facts, strict=True):
                h = g_t * gru_cell(c, h, *attention_gru) + (1 - g_t) * h
            if update == "relu":
                weight, bias = memory_layers[episode]
                m = torch.clamp(weight @ torch.cat([m, h, q]) + bias, min=0.0)
            else:
                m = gru_cell(h, m, *memory_gru)
        logits.append(out.weight.detach().double() @ m + out.bias.detach().double())
    return torch.stack(logits)


# ----------------------------------------------------------------------------------------
# 1. Position encoding
# ----------------------------------------------------------------------------------------

def test_position_weights_match_the_papers_formula() -> None:
    """l_kj = (1 - j/J) - (k/d)(1 - 2j/J) at every real word, J the sentence's number of non-zero ids."""
    story, _ = random_batch(1, counts=(5, 4), words=7)
    dim = 6
    weights = position_weights(story, dim).double()
    assert weights.shape == (*story.shape, dim)
    checked = 0
    for b in range(story.shape[0]):
        for s in range(story.shape[1]):
            big_j = int(story[b, s].ne(0).sum())
            for j in range(1, big_j + 1):
                for k in range(1, dim + 1):
                    expected = (1 - j / big_j) - (k / dim) * (1 - 2 * j / big_j)
                    assert weights[b, s, j - 1, k - 1].item() == pytest.approx(expected, abs=1e-6)
                    checked += 1
    assert checked > 50
    # A one-word sentence: l_k1 = k/d; the weights depend on J, not on the padded length L.
    one = torch.tensor([[4, 0, 0]])
    assert torch.allclose(position_weights(one, 4)[0, 0], torch.tensor([0.25, 0.5, 0.75, 1.0]))
    padded = torch.cat([story, torch.zeros_like(story)], dim=-1)
    assert torch.equal(position_weights(padded, dim)[..., :story.shape[-1], :], position_weights(story, dim))


def test_position_encoding_of_a_double_model_is_float64_accurate(tmp_path: Path) -> None:
    assert torch.get_default_dtype() == torch.float32
    model = double_model(tmp_path, qa_spec(memory_params=", encoding=position, temporal=false"))
    memory = model.layers["mem"]
    story, _ = random_batch(12)
    with torch.no_grad():
        got = memory.encode(story, 0)
    assert got.dtype == torch.float64
    table = memory.words[0].weight.detach()
    for b in range(story.shape[0]):
        for s in range(story.shape[1]):
            expected = encode(real_words(story[b, s]), table, position=True)
            assert torch.allclose(got[b, s], expected, rtol=0, atol=1e-12), (got[b, s] - expected).abs().max()


# ----------------------------------------------------------------------------------------
# 2. MemN2N against the loop oracle
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
@pytest.mark.parametrize("encoding", ["position", "bag"])
@pytest.mark.parametrize("temporal", [True, False])
def test_memn2n_matches_oracle(tmp_path: Path, float64_default: None, tying: str, encoding: str,
                               temporal: bool) -> None:
    text = qa_spec(memory_params=f", encoding={encoding}, temporal={str(temporal).lower()}",
                   reader_params=f"count=3, tying={tying}")
    model = double_model(tmp_path, text)
    memory = model.layers["mem"]
    assert len(memory.words) == (4 if tying == "adjacent" else 3)
    assert (memory.times is not None) == temporal
    story, question = random_batch(2)
    expected, _ = hops_oracle(model, story, question, tying=tying)
    with torch.no_grad():
        got = run(model, story, question)
    assert torch.allclose(got, expected, rtol=0, atol=1e-10), (got - expected).abs().max()
    # The story longer than SLOTS really is cut: dropping its oldest sentences changes nothing...
    cut = story.clone()
    cut[0, :COUNTS[0] - SLOTS] = 0
    cut[0] = torch.cat([cut[0, COUNTS[0] - SLOTS:], cut[0, :COUNTS[0] - SLOTS]])
    with torch.no_grad():
        assert torch.allclose(run(model, cut, question), got, rtol=0, atol=1e-12)
        # ...while changing a kept sentence does.
        changed = story.clone()
        changed[0, COUNTS[0] - 1, 0] = changed[0, COUNTS[0] - 1, 0] % (VOCAB - 1) + 1
        assert not torch.allclose(run(model, changed, question)[0], got[0], atol=1e-6)


# ----------------------------------------------------------------------------------------
# 3. KV-MemNN against the loop oracle
# ----------------------------------------------------------------------------------------

KV_CASES = [
    pytest.param("sentence", "position", id="sentence-position"),
    pytest.param("sentence", "bag", id="sentence-bag"),
    pytest.param("last_word", "bag", id="last_word-bag"),
    pytest.param("last_word", "position", id="last_word-position"),
]


@pytest.mark.parametrize(("split", "encoding"), KV_CASES)
def test_kv_memnn_matches_oracle(tmp_path: Path, float64_default: None, split: str, encoding: str) -> None:
    text = qa_spec("kv_memory", f', split={split}, encoding={encoding}, temporal=true', reader_params="count=3")
    model = double_model(tmp_path, text)
    assert len(model.layers["mem"].words) == 1  # one table A for questions, keys and values
    assert len(model.layers["reason"].rotations) == 3  # a learned R_k per hop
    story, question = random_batch(3)
    assert bool(story.ne(0).sum(-1).gt(1).any())  # some sentences have a last word after others
    expected, _ = hops_oracle(model, story, question, kv_split=split)
    with torch.no_grad():
        got = run(model, story, question)
    assert torch.allclose(got, expected, rtol=0, atol=1e-10), (got - expected).abs().max()


# ----------------------------------------------------------------------------------------
# 4. Linear start
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("memory", ["episodic_memory", "kv_memory"])
def test_linear_start_gives_raw_scores(tmp_path: Path, float64_default: None, memory: str) -> None:
    model = double_model(tmp_path, qa_spec(memory, reader_params="count=2"))
    kv = "sentence" if memory == "kv_memory" else None
    story, question = random_batch(4)
    kept = [min(c, SLOTS) for c in COUNTS]
    assert model.set_linear_start(True) is True
    with torch.no_grad():
        weights = attention(model, story, question)
        logits = run(model, story, question)
    assert weights.shape == (len(COUNTS), 2, max(kept))
    expected_logits, expected = hops_oracle(model, story, question, kv_split=kv, linear=True)
    assert torch.allclose(logits, expected_logits, rtol=0, atol=1e-10)
    for b, n in enumerate(kept):
        for hop in range(2):
            assert torch.allclose(weights[b, hop, :n], expected[b][hop], rtol=0, atol=1e-10)
            assert torch.all(weights[b, hop, n:] == 0)
    assert not torch.allclose(weights[0].sum(-1), torch.ones(2, dtype=torch.float64), atol=1e-3)  # not a softmax
    assert model.set_linear_start(False) is True
    with torch.no_grad():
        weights = attention(model, story, question)
    _, expected = hops_oracle(model, story, question, kv_split=kv)
    for b, n in enumerate(kept):
        assert torch.allclose(weights[b, :, :n].sum(-1), torch.ones(2, dtype=torch.float64), atol=1e-12)
        assert torch.all(weights[b, :, n:] == 0) and torch.all(weights[b, :, :n] > 0)
        for hop in range(2):
            assert torch.allclose(weights[b, hop, :n], expected[b][hop], rtol=0, atol=1e-10)


def test_linear_start_applies_only_to_hops() -> None:
    ntm = cogdsl.compile(cogdsl.load(ROOT / "specs" / "ntm_copy.yaml"))
    assert ntm.set_linear_start(True) is False
    dmn = cogdsl.compile(cogdsl.load(ROOT / "specs" / "dmn_babi.cog"))
    assert dmn.set_linear_start(True) is False


# ----------------------------------------------------------------------------------------
# 5. Padding invariance
# ----------------------------------------------------------------------------------------

PADDING_CASES = [
    pytest.param("episodic_memory", ", encoding=position", "hops", "count=3, tying=adjacent", id="hops-adjacent"),
    pytest.param("episodic_memory", ", encoding=bag", "hops", "count=2, tying=layerwise", id="hops-layerwise"),
    pytest.param("kv_memory", ", split=last_word", "hops", "count=2", id="hops-kv-last_word"),
    pytest.param("kv_memory", ', split=sentence, encoding=bag', "hops", "count=2", id="hops-kv-sentence"),
    pytest.param("episodic_memory", "", "episodes", "count=2, gate=softmax, fusion=true", id="episodes-fusion"),
    pytest.param("episodic_memory", "", "episodes", "count=2, gate=sigmoid, fusion=false", id="episodes-no-fusion"),
]


@pytest.mark.parametrize(("memory", "memory_params", "reader", "reader_params"), PADDING_CASES)
def test_padding_does_not_change_the_answer(tmp_path: Path, memory: str, memory_params: str, reader: str,
                                            reader_params: str) -> None:
    model = double_model(tmp_path, qa_spec(memory, memory_params, reader, reader_params))
    story, question = random_batch(5)
    with torch.no_grad():
        base = run(model, story, question)
        more_rows = torch.cat([story, torch.zeros(story.shape[0], 3, WORDS, dtype=torch.long)], dim=1)
        more_words = torch.nn.functional.pad(story, (0, 4))
        longer_question = torch.nn.functional.pad(question, (0, 4))
        assert torch.allclose(run(model, more_rows, question), base, rtol=0, atol=1e-12)
        assert torch.allclose(run(model, more_words, longer_question), base, rtol=0, atol=1e-12)
        both = torch.nn.functional.pad(more_rows, (0, 2))
        assert torch.allclose(run(model, both, torch.nn.functional.pad(question, (0, 2))), base, rtol=0, atol=1e-12)
        # Each story is answered on its own: the other stories' lengths do not matter.
        for b in range(story.shape[0]):
            n = COUNTS[b]
            alone = run(model, story[b:b + 1, :n], question[b:b + 1])
            assert torch.allclose(alone, base[b:b + 1], rtol=0, atol=1e-12)
        # The test can fail: a different question does change the answer.
        other = question.clone()
        other[:, 0] = other[:, 0] % (VOCAB - 1) + 1
        assert not torch.allclose(run(model, story, other), base, atol=1e-6)


def test_tied_answer_keeps_the_padding_row_zero(tmp_path: Path) -> None:
    model = compile_text(tmp_path, qa_spec(reader_params="count=2, tie_answer=true")).double()
    story, question = random_batch(6)
    model.train()
    answer_loss(run(model, story, question)).backward()
    torch.optim.SGD(model.parameters(), lr=0.5).step()
    model.eval()
    with torch.no_grad():
        base = run(model, story, question)
        padded = run(model, torch.nn.functional.pad(story, (0, 3)), torch.nn.functional.pad(question, (0, 3)))
    assert torch.allclose(padded, base, rtol=0, atol=1e-12)
    for table in model.layers["mem"].words:
        assert torch.all(table.weight[0] == 0)


# ----------------------------------------------------------------------------------------
# 6. random_empty
# ----------------------------------------------------------------------------------------

def test_random_empty_slots(tmp_path: Path) -> None:
    model = compile_text(tmp_path, qa_spec(memory_params=", random_empty=0.5").replace(f"slots={SLOTS}", "slots=50"))
    memory = model.layers["mem"]
    counts = (7, 5, 4, 3, 1)
    story, _ = random_batch(7, counts=counts, sentences=8)
    memory.train()
    first_positions: set[int] = set()
    for draw in range(30):
        torch.manual_seed(draw)
        stored = memory(story)
        assert isinstance(stored, Stored)
        for b, n in enumerate(counts):
            mask = stored.mask[b]
            rows = stored.rows[b][mask].tolist()
            assert bool(mask[:len(rows)].all()) and not bool(mask[len(rows):].any())  # kept slots first
            assert torch.all(stored.rows[b][~mask] == -1)
            assert [r for r in rows if r != -1] == list(range(n))  # each sentence once, in story order
            assert rows.count(-1) == round(0.5 * n)
            assert stored.recency[b][mask].tolist() == list(range(len(rows) - 1, -1, -1))
            for slot, row in enumerate(rows):
                expected = story[b, row] if row != -1 else torch.zeros(WORDS, dtype=torch.long)
                assert torch.equal(stored.words[b, slot], expected)
            first_positions.add(rows.index(-1) if -1 in rows else -2)
    assert len(first_positions) > 3  # the empty slots go to random places, not always the same one
    memory.eval()
    stored = memory(story)
    for b, n in enumerate(counts):
        assert stored.rows[b][stored.mask[b]].tolist() == list(range(n))
        assert stored.recency[b][stored.mask[b]].tolist() == list(range(n - 1, -1, -1))


# ----------------------------------------------------------------------------------------
# 7. DMN episodes against the loop oracle
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("update", ["gru", "relu"])
@pytest.mark.parametrize("gate", ["softmax", "sigmoid"])
@pytest.mark.parametrize("fusion", [False, True])
def test_episodes_match_oracle(tmp_path: Path, float64_default: None, gate: str, fusion: bool, update: str) -> None:
    text = qa_spec(memory_params=", encoding=position, temporal=true", reader="episodes",
                   reader_params=f"count=3, gate={gate}, fusion={str(fusion).lower()}, update={update}")
    model = double_model(tmp_path, text)
    story, question = random_batch(8)
    expected = episodes_oracle(model, story, question, gate, fusion, update)
    with torch.no_grad():
        got = run(model, story, question)
        gates = attention(model, story, question)
    assert torch.allclose(got, expected, rtol=0, atol=1e-10), (got - expected).abs().max()
    for b, count in enumerate(COUNTS):
        n = min(count, SLOTS)
        assert torch.all(gates[b, :, n:] == 0)
        if gate == "softmax":
            assert torch.allclose(gates[b, :, :n].sum(-1), torch.ones(3, dtype=torch.float64), atol=1e-12)
        else:
            assert torch.all((gates[b, :, :n] > 0) & (gates[b, :, :n] < 1))


@pytest.mark.parametrize(("update", "said"), [
    ("gru", "memory GRU across episodes"),
    ("relu", "memory m <- ReLU(W_i [m; e_i; q] + b_i), one layer per episode"),
])
def test_explain_says_how_the_memory_is_updated(tmp_path: Path, capsys: pytest.CaptureFixture[str], update: str,
                                                said: str) -> None:
    from cogdsl.cli.command import main

    path = tmp_path / "dmn.cog"
    path.write_text(qa_spec(reader="episodes", reader_params=f"count=2, update={update}"))
    assert main(["compile", "--explain", str(path)]) == 0
    assert said in capsys.readouterr().out


# ----------------------------------------------------------------------------------------
# 8. Gradients
# ----------------------------------------------------------------------------------------

def test_every_memn2n_parameter_learns() -> None:
    """memn2n_babi: every parameter gets a finite, non-zero gradient from the answer loss; the padding row
    0 of each untied table gets none (padding_idx); only the temporal rows of recencies that occur do."""
    model = cogdsl.compile(cogdsl.load(ROOT / "specs" / "memn2n_babi.cog")).train()
    story, question = random_batch(9, counts=(6, 4, 2, 1), vocab=69)
    torch.manual_seed(0)
    answer_loss(run(model, story, question)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    memory = model.layers["mem"]
    for table in memory.words:  # the last one is also the answer layer: still no gradient into padding
        assert torch.all(table.weight.grad[0] == 0)
    for times in memory.times:
        assert torch.all(times.grad[10:] == 0)  # at most 6 sentences (+ 1 empty slot): recencies < 10


def test_layerwise_query_table_has_no_temporal_gradient(tmp_path: Path) -> None:
    """Layerwise tying: the question's table B is encoded without time, so its temporal table is the one
    parameter that legitimately gets no gradient; H, A, C, T_A, T_C and the answer layer all do."""
    model = compile_text(tmp_path, qa_spec(reader_params="count=2, tying=layerwise")).train()
    story, question = random_batch(10)
    answer_loss(run(model, story, question)).backward()
    for name, p in model.named_parameters():
        if name == "layers.mem.times.2":
            assert p.grad is None or torch.all(p.grad == 0)
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


GRADCHECK_CASES = [
    pytest.param("episodic_memory", "", "count=2, tying=adjacent, tie_answer=true", id="adjacent-tied"),
    pytest.param("episodic_memory", ", encoding=bag", "count=2, tying=layerwise", id="layerwise"),
    pytest.param("kv_memory", ", split=last_word, encoding=bag", "count=2", id="kv"),
]


@pytest.mark.parametrize(("memory", "memory_params", "reader_params"), GRADCHECK_CASES)
def test_gradcheck_hops(tmp_path: Path, memory: str, memory_params: str, reader_params: str) -> None:
    """gradcheck of the logits in every memory table (rows 1.., row 0 being fixed padding) and hop matrix."""
    text = qa_spec(memory, memory_params, reader_params=reader_params, vocab=6, dim=3)
    model = compile_text(tmp_path, text).double().eval()
    story, question = random_batch(11, counts=(5, 2), sentences=5, words=3, vocab=6)
    names = [n for n, _ in model.named_parameters() if n.startswith("layers.")]
    assert names
    word_tables = {n for n in names if ".words." in n}
    current = dict(model.named_parameters())

    def logits(*values: torch.Tensor) -> torch.Tensor:
        params = {}
        for name, value in zip(names, values, strict=True):
            params[name] = torch.cat([value.new_zeros(1, value.shape[1]), value]) if name in word_tables else value
        y = functional_call(model, params, ({"story": story[:, None], "question": question[:, None]},),
                            {"raw": True})
        return y[:, 0]

    inputs = tuple((current[n].detach()[1:] if n in word_tables else current[n].detach()).clone().requires_grad_()
                   for n in names)
    assert torch.autograd.gradcheck(logits, inputs)


# ----------------------------------------------------------------------------------------
# 9. tie_answer
# ----------------------------------------------------------------------------------------

def test_tied_answer_is_the_last_value_table(tmp_path: Path) -> None:
    model = cogdsl.compile(cogdsl.load(ROOT / "specs" / "memn2n_babi.cog"))
    memory, answer = model.layers["mem"], model.outputs["answer"]
    assert len(memory.words) == 4  # A^1, A^2, A^3, C^3
    assert answer.weight is memory.words[3].weight
    assert all(answer.weight is not table.weight for table in memory.words[:3])
    counts = model.parameter_counts()
    unique = {id(p): p.numel() for p in model.parameters()}
    assert sum(counts.values()) == sum(unique.values())
    assert counts["answer"] == 69  # its bias only
    assert counts["mem"] == 4 * 69 * 20 + 4 * 50 * 20
    # Training the answer layer trains the table: one Parameter, two places.
    with torch.no_grad():
        answer.weight[5, 0] = 3.0
    assert memory.words[3].weight[5, 0].item() == 3.0
    # The untied model has one more (vocab x d) matrix, its own answer weight.
    text = (ROOT / "specs" / "memn2n_babi.cog").read_text().replace(", tie_answer=true", "")
    untied = compile_text(tmp_path, text)
    assert untied.outputs["answer"].weight is not untied.layers["mem"].words[3].weight
    untied_counts = untied.parameter_counts()
    assert untied_counts["answer"] == 69 * 20 + 69 and untied_counts["mem"] == counts["mem"]
    assert sum(p.numel() for p in untied.parameters()) == sum(unique.values()) + 69 * 20


TIE_ERRORS = [
    pytest.param("reason, other", VOCAB, id="two-blocks"),
    pytest.param("reason", VOCAB + 1, id="not-the-vocab"),
]


@pytest.mark.parametrize(("output", "size"), TIE_ERRORS)
def test_tie_answer_that_cannot_apply_is_E501(tmp_path: Path, output: str, size: int) -> None:
    extra = "hops other(count=1) on mem <- question\n" if "other" in output else ""
    text = qa_spec(reader_params="count=2, tie_answer=true", output=output, size=size, extra=extra)
    path = tmp_path / "t.cog"
    path.write_text(text)
    with pytest.raises(cogdsl.ShapeError) as err:
        cogdsl.compile(cogdsl.load(path))
    assert [d.code for d in err.value.diagnostics] == ["E501"]
    assert "tie_answer" in str(err.value)
    # The same spec without tie_answer compiles.
    path.write_text(text.replace(", tie_answer=true", ""))
    assert isinstance(cogdsl.compile(cogdsl.load(path)), cogdsl.CompiledModel)
