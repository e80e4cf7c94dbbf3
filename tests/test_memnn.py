"""``memnn`` (Weston, Chopra and Bordes 2015, "Memory Networks") against loops of the paper's equations.

The oracles are float64 loops over questions, memories and words, written from the paper: bag-of-words
features Φ of D = 3|W| dimensions (the question's words, the found memories' words, the candidate's
words), ``s(x, y) = Φ_x(x)ᵀ Uᵀ U Φ_y(y)`` with U assembled from the model's word tables, the time
features' ``s_Ot(x, y, y') = Φ_x(x)ᵀ U_Otᵀ U_Ot (Φ_y(y) - Φ_y(y') + Φ_t(x, y, y'))`` with Φ_t three more
0/1 dimensions, the loop over memories, and the margin ranking loss summed over every negative. They
read the model's parameter tensors but share no code with :mod:`cogdsl.blocks.memnn`.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.blocks.runtime import supervision
from cogdsl.errors import SpecError

VOCAB, DIM, WORDS, SENTENCES = 9, 4, 4, 6


def spec_text(params: str = "", memory: str = "episodic_memory", memory_params: str = "") -> str:
    return f"""\
cogdsl 1
model t
input  story: sentences(vocab={VOCAB})
input  question: words(vocab={VOCAB})
output answer: {VOCAB} = softmax(reason)
{memory} mem(embedding={DIM}, slots=8, encoding=bag, temporal=false{memory_params}) <- story
memnn reason({params}) on mem <- question
"""


def double_model(tmp_path: Path, params: str = "", seed: int = 0) -> cogdsl.CompiledModel:
    """The model in float64 with every parameter redrawn from N(0, 0.5²) (padding rows stay zero)."""
    path = tmp_path / "t.cog"
    path.write_text(spec_text(params))
    model = cogdsl.compile(cogdsl.load(path)).double().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)
            if ".words." in name:
                p[0].zero_()
    return model


def random_batch(seed: int, counts: tuple[int, ...] = (6, 4, 2)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    story = torch.zeros(len(counts), SENTENCES, WORDS, dtype=torch.long)
    question = torch.zeros(len(counts), WORDS, dtype=torch.long)
    for b, count in enumerate(counts):
        for s in range(count):
            n = int(torch.randint(1, WORDS + 1, (1,), generator=g))
            story[b, s, :n] = torch.randint(1, VOCAB, (n,), generator=g)
        question[b, :3] = torch.randint(1, VOCAB, (3,), generator=g)
    return story, question


# -- the oracle ------------------------------------------------------------------------------------------

def bag(words: torch.Tensor) -> torch.Tensor:
    """Φ of one sentence: word counts over the vocabulary (padding id 0 dropped), (|W|,)."""
    out = torch.zeros(VOCAB, dtype=torch.float64)
    for w in words.tolist():
        if w:
            out[w] += 1
    return out


class Paper:
    """The paper's model from the compiled model's tables: U_O = [O_x | O_m | O_y] (d, 3|W|), U_R likewise
    with the output layer as its answer part, the time features as three more columns of U_O."""

    def __init__(self, model: cogdsl.CompiledModel):
        tables = [t.weight.detach().T for t in model.layers["mem"].words]  # (d, |W|) each
        self.U_O = torch.cat(tables[0:3], 1)  # (d, 3|W|)
        self.U_R_x = torch.cat(tables[3:5], 1)  # (d, 2|W|)
        times = model.layers["reason"].times
        self.T = times.detach().T if times is not None else None  # (d, 3)
        self.W, self.bias = model.outputs["answer"].weight.detach(), model.outputs["answer"].bias.detach()

    def phi_x(self, question: torch.Tensor, found: list[torch.Tensor]) -> torch.Tensor:
        """Φ_x([x, m_o1, ...]) (3|W|,): the question's words, the found memories' words, nothing for y."""
        memories = sum((bag(m) for m in found), torch.zeros(VOCAB, dtype=torch.float64))
        return torch.cat([bag(question), memories, torch.zeros(VOCAB, dtype=torch.float64)])

    def phi_y(self, sentence: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros(2 * VOCAB, dtype=torch.float64), bag(sentence)])

    def s_O(self, question: torch.Tensor, found: list[torch.Tensor], y: torch.Tensor) -> float:
        return float(self.phi_x(question, found) @ self.U_O.T @ self.U_O @ self.phi_y(y))

    def s_Ot(self, question: torch.Tensor, found: list[torch.Tensor], x_time: int | None,
             y: tuple[torch.Tensor, int], y2: tuple[torch.Tensor, int]) -> float:
        """Times are story positions (larger = written later); x_time None: the question, after all."""
        assert self.T is not None
        x_t = float("inf") if x_time is None else x_time
        phi_t = torch.tensor([float(x_t < y[1]), float(x_t < y2[1]), float(y[1] < y2[1])], dtype=torch.float64)
        U = torch.cat([self.U_O, self.T], 1)
        left = torch.cat([self.phi_x(question, found), torch.zeros(3, dtype=torch.float64)])
        right = torch.cat([self.phi_y(y[0]) - self.phi_y(y2[0]), phi_t])
        return float(left @ U.T @ U @ right)

    def hop(self, question: torch.Tensor, found: list[torch.Tensor], x_time: int | None,
            memories: list[torch.Tensor]) -> int:
        """The argmax: over s_O, or with time features the loop that keeps the winner y while s_Ot(x, y, m_i) > 0."""
        if self.T is None:
            scores = [self.s_O(question, found, m) for m in memories]
            return max(range(len(memories)), key=lambda i: scores[i])
        winner = 0
        for i in range(1, len(memories)):
            if not self.s_Ot(question, found, x_time, (memories[winner], winner), (memories[i], i)) > 0:
                winner = i
        return winner

    def answer_scores(self, question: torch.Tensor, found: list[torch.Tensor]) -> torch.Tensor:
        """s_R([x, m_o1, ...], w) for every word w (+ the output layer's bias), (|W|,)."""
        memories = sum((bag(m) for m in found), torch.zeros(VOCAB, dtype=torch.float64))
        return self.W @ (self.U_R_x @ torch.cat([bag(question), memories])) + self.bias

    def loss(self, question: torch.Tensor, memories: list[torch.Tensor], facts: list[int], margin: float) -> float:
        """The margin ranking loss of the O module for facts f_1, f_2, ... in this order (teacher forcing)."""
        total, found, x_time = 0.0, [], None
        for f in facts:
            for j in range(len(memories)):
                if j == f:
                    continue
                if self.T is None:
                    total += max(0.0, margin - self.s_O(question, found, memories[f])
                                 + self.s_O(question, found, memories[j]))
                else:
                    y, y2 = (memories[f], f), (memories[j], j)
                    total += max(0.0, margin - self.s_Ot(question, found, x_time, y, y2))
                    total += max(0.0, margin + self.s_Ot(question, found, x_time, y2, y))
            found, x_time = [*found, memories[f]], f
        return total


def sentences_of(story: torch.Tensor) -> list[torch.Tensor]:
    return [row for row in story if bool(row.ne(0).any())]


def forward(model: cogdsl.CompiledModel, story: torch.Tensor, question: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (B, V) and each hop's chosen slot (B, k)."""
    y, trace = model({"story": story[:, None], "question": question[:, None]}, raw=True, return_weights=True)
    return y[:, 0], trace["reason"][:, 0].argmax(-1)


# -- tests -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("time_features", [False, True])
@pytest.mark.parametrize("hops", [1, 2, 3])
def test_argmax_chain_and_answer_match_the_paper(tmp_path: Path, time_features: bool, hops: int) -> None:
    model = double_model(tmp_path, f"hops={hops}, time_features={str(time_features).lower()}", seed=hops)
    paper = Paper(model)
    story, question = random_batch(hops)
    logits, chosen = forward(model, story, question)
    for b in range(story.shape[0]):
        memories = sentences_of(story[b])
        found: list[torch.Tensor] = []
        x_time = None
        for h in range(hops):
            o = paper.hop(question[b], found, x_time, memories)
            assert int(chosen[b, h]) == o, f"question {b}, hop {h + 1}"
            found, x_time = [*found, memories[o]], o
        torch.testing.assert_close(logits[b], paper.answer_scores(question[b], found), rtol=1e-10, atol=1e-10)


def test_time_feature_scores_match_the_paper(tmp_path: Path) -> None:
    from cogdsl.blocks.memnn import pair_scores

    model = double_model(tmp_path, "hops=2")
    paper, memory = Paper(model), model.layers["mem"]
    story, question = random_batch(3)
    stored = memory(story)
    u = memory.query(question, 0) + memory.keys(stored, 1)[:, 1]  # hop 2, with slot 1 found
    pairs = pair_scores(u, memory.keys(stored, 2), stored.recency, model.layers["reason"].times,
                        stored.recency[:, 1])
    for b in range(story.shape[0]):
        memories = sentences_of(story[b])
        for i, j in itertools.product(range(len(memories)), repeat=2):
            expected = paper.s_Ot(question[b], [memories[1]], 1, (memories[i], i), (memories[j], j))
            assert float(pairs[b, i, j].detach()) == pytest.approx(expected, abs=1e-10)


def test_the_loop_prefers_the_newer_of_two_equal_memories_by_the_time_feature(tmp_path: Path) -> None:
    """Two copies of one sentence among others: u · t_3 < 0 picks the later copy, > 0 the earlier."""
    from cogdsl.blocks.memnn import pair_scores, tournament

    model = double_model(tmp_path, "hops=1")
    memory, times = model.layers["mem"], model.layers["reason"].times
    story = torch.zeros(1, SENTENCES, WORDS, dtype=torch.long)
    story[0, :5, 0] = torch.tensor([5, 3, 7, 3, 2])  # slots 1 and 3 hold the same sentence
    stored = memory(story)
    candidates = memory.keys(stored, 2)
    u = candidates[:, 1] * 10  # scores the copies far above the rest
    for sign, expected in ((-1.0, 3), (1.0, 1)):
        with torch.no_grad():
            times.zero_()
            times[2] = sign * u[0] / u[0].dot(u[0])  # u · t_3 = ±1, well under the content margins
        pairs = pair_scores(u, candidates, stored.recency, times, None)
        assert int(tournament(pairs, stored.mask)) == expected


@pytest.mark.parametrize("time_features", [False, True])
def test_margin_ranking_loss_is_the_sum_over_every_negative_with_teacher_forcing(
        tmp_path: Path, time_features: bool) -> None:
    model = double_model(tmp_path, f"hops=2, margin=0.7, time_features={str(time_features).lower()}", seed=4)
    paper, layer, memory = Paper(model), model.layers["reason"], model.layers["mem"]
    story, question = random_batch(5)
    supporting = torch.zeros(3, SENTENCES, dtype=torch.bool)
    supporting[0, [1, 4]] = True
    supporting[1, [0, 3]] = True
    supporting[2, [1]] = True  # fewer facts than hops: the first hop alone is trained
    out = layer(question, memory, memory(story), supporting)
    for b in range(3):
        memories = sentences_of(story[b])
        facts = supporting[b].nonzero().flatten().tolist()
        losses = {order: paper.loss(question[b], memories, list(order), 0.7)
                  for order in itertools.permutations(facts)}
        best = min(losses, key=lambda order: losses[order])
        assert float(out.penalty[b].detach()) == pytest.approx(losses[best], abs=1e-9)
        # The answer is read from the TRUE facts (teacher forcing), in the order the loss chose.
        assert out.chosen[b, :len(best)].tolist() == list(best)
        expected = paper.U_R_x @ torch.cat([bag(question[b]), sum(bag(memories[f]) for f in best)])
        torch.testing.assert_close(out.value[b], expected, rtol=1e-10, atol=1e-10)


def test_the_second_hop_is_conditioned_on_the_true_first_fact(tmp_path: Path) -> None:
    """Teacher forcing: hop 2's loss depends on f_1, whatever hop 1's argmax would choose."""
    model = double_model(tmp_path, "hops=2, time_features=false", seed=6)
    paper, layer, memory = Paper(model), model.layers["reason"], model.layers["mem"]
    story, question = random_batch(6, counts=(6,))
    memories = sentences_of(story[0])
    argmax_first = paper.hop(question[0], [], None, memories)
    f1 = (argmax_first + 2) % len(memories)  # a first fact the model would not pick
    f2 = (argmax_first + 4) % len(memories)
    supporting = torch.zeros(1, SENTENCES, dtype=torch.bool)
    supporting[0, [f1, f2]] = True
    out = layer(question, memory, memory(story), supporting)
    forced = min(paper.loss(question[0], memories, [f1, f2], 0.1), paper.loss(question[0], memories, [f2, f1], 0.1))
    assert float(out.penalty[0].detach()) == pytest.approx(forced, abs=1e-9)
    hop2_after_argmax = sum(max(0.0, 0.1 - paper.s_O(question[0], [memories[argmax_first]], memories[f2])
                                + paper.s_O(question[0], [memories[argmax_first]], memories[j]))
                            for j in range(len(memories)) if j != f2)
    hop2_forced = sum(max(0.0, 0.1 - paper.s_O(question[0], [memories[f1]], memories[f2])
                          + paper.s_O(question[0], [memories[f1]], memories[j]))
                      for j in range(len(memories)) if j != f2)
    assert hop2_after_argmax != pytest.approx(hop2_forced)


def test_training_lowers_the_ranking_loss_on_a_generated_task(tmp_path: Path) -> None:
    from cogdsl.tasks.qa import BabiTask
    from cogdsl.training.evaluation import model_inputs

    started = time.process_time()  # CPU time: the machine may be shared
    path = tmp_path / "m.cog"
    path.write_text(spec_text("hops=1").replace(f"vocab={VOCAB}", "vocab=69").replace(f"answer: {VOCAB}", "answer: 69")
                    .replace(f"embedding={DIM}", "embedding=20").replace("slots=8", "slots=50"))
    torch.manual_seed(0)
    model = cogdsl.compile(cogdsl.load(path)).train()
    task = BabiTask(number=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(50):
        batch = task.sample(16, g)
        penalties: list[torch.Tensor] = []
        with supervision(batch.info):
            logits = model(model_inputs(model, batch.inputs), raw=True, penalties=penalties)
        ranking = torch.stack(penalties).sum(0).mean()
        loss = task.loss_of(logits, batch) + ranking
        optimizer.zero_grad()
        loss.backward()
        for table in (0, 2, 3, 4):  # O_x, O_y by the ranking loss; R_x, R_m by the answer's (O_m: hop 2 only)
            assert model.layers["mem"].words[table].weight.grad.abs().sum() > 0
        optimizer.step()
        losses.append(float(ranking.detach()))
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5])
    assert time.process_time() - started < 15


def test_training_without_supporting_facts_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "t.cog"
    path.write_text(spec_text("hops=2"))
    model = cogdsl.compile(cogdsl.load(path)).train()
    story, question = random_batch(0)
    inputs = {"story": story[:, None], "question": question[:, None]}
    with supervision({"task": torch.zeros(3)}), pytest.raises(SpecError) as err:
        model(inputs, raw=True, penalties=[])
    text = str(err.value)
    assert "E603" in text and f"{path}:7:" in text and "supporting facts" in text
    no_facts = torch.zeros(3, SENTENCES, dtype=torch.bool)
    no_facts[0, 1] = True
    with supervision({"supporting": no_facts}), pytest.raises(SpecError, match="2 of the 3 questions"):
        model(inputs, raw=True, penalties=[])
    # Outside a supervision context, and in evaluation, it answers by the argmax chain.
    assert model(inputs, raw=True).shape == (3, 1, VOCAB)


def test_babi_files_without_supporting_facts_stop_cogdsl_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    from cogdsl.cli.command import main

    lines = "1 mary went to the kitchen.\n2 john went to the garden.\n3 where is mary?\tkitchen\t\n"
    (tmp_path / "qa1_train.txt").write_text(lines * 3)
    (tmp_path / "m.cog").write_text("""\
model m
input  story: sentences
input  question: words
output answer = softmax(reason)
episodic_memory mem(embedding=8, encoding=bag, temporal=false) <- story
memnn reason(hops=1) on mem <- question
train {
  task babi_files(train="qa1_train.txt", valid_fraction=0.34)
  batch 2; steps 1
}
""")
    code = main(["train", str(tmp_path / "m.cog"), "--out", str(tmp_path / "run"), "--no-progress",
                 "--no-tensorboard"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'm.cog'}:6:" in err and "error[E603]" in err and "no supporting facts" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("params", "memory", "code", "where"), [
    ("hops=0", "episodic_memory", "E205", "hops"),
    ("hops=5", "episodic_memory", "E205", "hops"),
    ("margin=-0.1", "episodic_memory", "E205", "margin"),
    ("margin=0", "episodic_memory", "E205", "margin"),
    ("time_features=2", "episodic_memory", "E204", "time_features"),
    ("k=2", "episodic_memory", "E202", "k"),
    ("", "kv_memory", "E303", "another story memory"),
])
def test_bad_specs_are_located_errors(tmp_path: Path, params: str, memory: str, code: str, where: str) -> None:
    path = tmp_path / "bad.cog"
    path.write_text(spec_text(params, memory=memory))
    with pytest.raises(SpecError) as err:
        cogdsl.compile(cogdsl.load(path))
    text = str(err.value)
    assert f"error[{code}]" in text and f"{path}:" in text and where in text
