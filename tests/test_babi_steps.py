"""Reading bAbI-style stories one sentence per step: the ``babi_steps`` tasks' batches, the ``embed``
block against a hand computation, its wiring errors, and an LSTM (specs/lstm_babi_steps.cog) that
learns task 1 beyond chance and goes through ``cogdsl train``, ``eval`` and ``trace``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.cli.command import main
from cogdsl.tasks import make_task
from cogdsl.tasks.babi import BABI_TASKS, MAX_WORDS, generate_split, vocabulary
from cogdsl.tasks.qa_steps import BabiStepsTask
from cogdsl.training.loop import evaluate
from tests.tiny import compile_text, write_spec

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "lstm_babi_steps.cog"

EMBED_TEXT = """\
model embed_only
input  s: words(vocab=12)
output y: 3 = ctrl
embed  e(dim=5, encoding={encoding}) <- s
lstm   ctrl(hidden=4) <- e
"""


@pytest.fixture(autouse=True)
def _keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _ids(words: tuple[str, ...]) -> list[int]:
    return vocabulary().ids(words) + [0] * (MAX_WORDS - len(words))


# -- the task -----------------------------------------------------------------------------------


@pytest.mark.parametrize("number", [1, 2])
def test_each_question_is_the_step_after_its_story(number: int) -> None:
    task = make_task("babi_steps", number=number)
    assert task.input_kinds == {"words": 69} and task.output_size == 69 and task.loss == "ce"
    qas = generate_split(number, "1k", "test")
    rows = torch.arange(6)
    batch = task.batch_of(task.data("test"), rows)
    words = batch.inputs["words"]
    steps = max(len(qas[i].story) for i in range(6)) + 1
    assert set(batch.inputs) == {"words"} and words.dtype == torch.long
    assert words.shape == (6, steps, MAX_WORDS) and batch.targets.shape == batch.mask.shape == (6, steps)
    for b in range(6):
        qa, n = qas[b], len(qas[b].story)
        assert words[b, :n].tolist() == [_ids(s) for s in qa.story]
        assert words[b, n].tolist() == _ids(qa.question)
        assert not words[b, n + 1:].any()  # empty sentences after the question
        assert batch.mask[b].tolist() == [1.0 if t == n else 0.0 for t in range(steps)]
        assert vocabulary().word(int(batch.targets[b, n])) == qa.answer
        assert batch.info["supporting"][b].nonzero().flatten().tolist() == list(qa.supporting)
        assert int(batch.info["task"][b]) == number


def test_training_batches_and_the_joint_task() -> None:
    task = make_task("babi_steps", number=1)
    batch = task.sample(5, torch.Generator().manual_seed(0))
    assert batch.mask.sum(1).tolist() == [1.0] * 5
    assert batch.steps == int(batch.inputs["words"].ne(0).any(-1).sum(1).max())  # the longest story + its question
    joint = make_task("babi_joint_steps")
    assert isinstance(joint, BabiStepsTask) and joint.numbers == tuple(BABI_TASKS)
    shared = next(iter(joint.evaluation_batches(12, 0, 12, None, "test")))
    assert sorted(shared.info["task"].tolist()) == sorted(list(BABI_TASKS) * 2)


def test_padding_after_the_question_leaves_its_answer_alone() -> None:
    """A story's answer is the same alone as in a batch with longer stories: the padding comes after it."""
    torch.manual_seed(0)
    model = cogdsl.compile(cogdsl.load(SPEC)).double().eval()
    task = make_task("babi_steps", number=1)
    data = task.data("test")
    lengths = data["sentences"][:40]
    short, long = int(lengths.argmin()), int(lengths.argmax())
    assert lengths[short] < lengths[long]
    together = task.batch_of(data, torch.tensor([short, long]))
    alone = task.batch_of(data, torch.tensor([short]))
    with torch.no_grad():
        both = model({"s": together.inputs["words"]}, raw=True)
        one = model({"s": alone.inputs["words"]}, raw=True)
    at = int(lengths[short])
    assert alone.steps == at + 1 < together.steps
    assert torch.allclose(both[0, at], one[0, at], atol=1e-12)


# -- the embed block ----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["position", "bag"])
def test_embed_is_the_encoded_bag_of_words(tmp_path: Path, encoding: str) -> None:
    """v = sum_j l_j o E[x_j] over a sentence's words, l_kj = (1 - j/J) - (k/d)(1 - 2j/J) (or 1), computed
    word by word; padding (trailing zeros, as babi.encode pads) adds nothing, an empty sentence is zero."""
    model = compile_text(tmp_path, EMBED_TEXT.format(encoding=encoding))
    table = model.attentions["e"].words.weight.detach()  # (12, 5)
    generator = torch.Generator().manual_seed(3)
    batch, steps, length, dim = 4, 3, 6, 5
    counts = torch.randint(0, length + 1, (batch, steps), generator=generator)
    counts[0, 0] = 0  # an empty sentence
    ids = torch.randint(1, 12, (batch, steps, length), generator=generator)
    ids = ids * (torch.arange(length) < counts.unsqueeze(-1))  # (B, T, L), padded with 0 at the end
    _, trace = model({"s": ids}, return_weights=True)
    expected = torch.zeros(batch, steps, dim, dtype=torch.float64)
    for b in range(batch):
        for t in range(steps):
            words = [int(w) for w in ids[b, t] if w != 0]
            big_j = len(words)
            for j, word in enumerate(words, start=1):
                for k in range(1, dim + 1):
                    weight = (1 - j / big_j) - (k / dim) * (1 - 2 * j / big_j) if encoding == "position" else 1.0
                    expected[b, t, k - 1] += weight * table[word, k - 1]
    assert torch.allclose(trace["e"], expected, atol=1e-12)
    assert not trace["e"][0, 0].any()
    assert float(table[0].abs().sum()) == 0.0


def test_embed_trains_no_padding_row(tmp_path: Path) -> None:
    model = compile_text(tmp_path, EMBED_TEXT.format(encoding="position"))
    ids = torch.tensor([[[3, 4, 0, 0], [0, 0, 0, 0]]])
    model({"s": ids}).sum().backward()
    grad = model.attentions["e"].words.weight.grad
    assert grad is not None and not grad[0].any() and grad[3].any()


# -- wiring errors ------------------------------------------------------------------------------

BAD_WIRING = [  # (id, spec text, code, line, token at the column, words in the message or hint)
    ("embed_reads_a_vector", "model m\ninput x: 9\noutput y: 3 = ctrl\nembed e(dim=4) <- x\nlstm ctrl(hidden=4) <- e\n",
     "E310", 4, "x", ("embed 'e' reads word ids (one sentence), but 'x' carries a vector", "words(vocab=N)")),
    ("embed_reads_a_controller",
     "model m\ninput s: words(vocab=9)\noutput y: 3 = ctrl\nembed e(dim=4) <- c0\nrnn c0(hidden=4) <- e\n"
     "lstm ctrl(hidden=4) <- c0\n", "E310", 4, "c0", ("'c0' carries a vector",)),
    ("lstm_reads_words", "model m\ninput s: words(vocab=9)\noutput y: 3 = ctrl\nlstm ctrl(hidden=4) <- s\n",
     "E310", 4, "s", ("lstm 'ctrl' reads a vector, but 's' carries word ids", "read it through an embed block")),
    ("embed_two_sentences",
     "model m\ninput s: words(vocab=9)\ninput q: words(vocab=9)\noutput y: 3 = ctrl\nembed e(dim=4) <- s, q\n"
     "lstm ctrl(hidden=4) <- e\n", "E206", 5, "q", ("reads 1 source(s), found 2", "its own embed block")),
    ("embed_previous_sentence",
     "model m\ninput s: words(vocab=9)\noutput y: 3 = ctrl\nembed e(dim=4) <- s@prev\nlstm ctrl(hidden=4) <- e\n",
     "E307", 4, "s@prev", ("'@prev' is not allowed on 's'",)),
]


@pytest.mark.parametrize(("text", "code", "line", "token", "words"), [case[1:] for case in BAD_WIRING],
                         ids=[case[0] for case in BAD_WIRING])
def test_wrong_wiring_is_a_located_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, code: str,
                                         line: int, token: str, words: tuple[str, ...]) -> None:
    path = write_spec(tmp_path, text)
    column = text.splitlines()[line - 1].rindex(token) + 1
    capsys.readouterr()
    assert main(["validate", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith(f"{path}:{line}:{column}: error[{code}]: "), out
    assert "Traceback" not in out + err
    for phrase in words:
        assert phrase in out, out


# -- training -----------------------------------------------------------------------------------


def test_an_lstm_learns_task_1_beyond_chance() -> None:
    """400 steps (about 3 s): the validation error falls well below chance (5 of 6 places wrong) and the
    most frequent answer's 82%."""
    torch.set_num_threads(1)
    torch.manual_seed(1)
    model = cogdsl.compile(cogdsl.load(SPEC))
    task = make_task("babi_steps", number=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(1)
    for _ in range(400):
        batch = task.sample(32, generator)
        loss = task.loss_of(model({"s": batch.inputs["words"]}, raw=True), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    result = evaluate(model, task, sequences=100, split="valid")
    assert 1 - result.perfect < 0.75


def test_train_eval_and_trace_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, traced = tmp_path / "run", tmp_path / "trace"
    assert main(["train", str(SPEC), "--steps", "3", "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", str(SPEC), str(run), "--sequences", "50"]) == 0
    assert "test error (50 questions)" in capsys.readouterr().out
    assert main(["trace", str(SPEC), str(run), "--out", str(traced)]) == 0
    assert (traced / "weightings.png").stat().st_size > 0
