"""The question-answering tasks of cogdsl.tasks.qa (``babi``, ``babi_joint``): sampling from the training
split, evaluation batches over fixed splits, the answer loss and errors, per-task metrics (also through
``cogdsl.training.loop.evaluate`` with a stub model), parameter checks, and the spec's shape checks against the task.

The generator itself (cogdsl.tasks.babi) is tested in tests/tasks/test_babi.py."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cogdsl
from cogdsl.errors import ShapeError, SpecError
from cogdsl.tasks import Batch, TaskParamError, make_task
from cogdsl.tasks.babi import BABI_TASKS, MAX_WORDS, TEST_SIZE, vocabulary
from cogdsl.tasks.qa import BabiJointTask, BabiTask, answer_loss, wrong_answers
from cogdsl.training.loop import evaluate

ROOT = Path(__file__).resolve().parents[2]
MEMN2N = ROOT / "specs" / "memn2n_babi.cog"
VOCAB = len(vocabulary())
NUMBERS = sorted(BABI_TASKS)


def rows_of(data: dict[str, torch.Tensor]) -> set[tuple[bytes, bytes, int]]:
    """Every (story, question, answer) of a split, as hashable rows."""
    return {(s.numpy().tobytes(), q.numpy().tobytes(), int(a))
            for s, q, a in zip(data["story"], data["question"], data["answer"], strict=True)}


def batch_rows(batch: Batch) -> list[tuple[bytes, bytes, int]]:
    assert isinstance(batch.inputs, dict)
    stories, questions = batch.inputs["sentences"][:, 0], batch.inputs["words"][:, 0]
    return [(s.numpy().tobytes(), q.numpy().tobytes(), int(a))
            for s, q, a in zip(stories, questions, batch.targets[:, 0], strict=True)]


def walk(task: BabiTask, sequences: int, batch: int, split: str = "test") -> list[Batch]:
    return list(task.evaluation_batches(sequences, seed=0, batch=batch, length=None, split=split))


# -- sample -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", NUMBERS)
def test_sample_shapes_and_types(number: int) -> None:
    task = make_task("babi", number=number)
    batch = task.sample(8, torch.Generator().manual_seed(0))
    assert isinstance(batch.inputs, dict) and set(batch.inputs) == {"sentences", "words"}
    sentences = task.data("train")["story"].shape[1]
    assert tuple(batch.inputs["sentences"].shape) == (8, 1, sentences, MAX_WORDS)
    assert tuple(batch.inputs["words"].shape) == (8, 1, MAX_WORDS)
    assert batch.inputs["sentences"].dtype == batch.inputs["words"].dtype == torch.long
    assert tuple(batch.targets.shape) == (8, 1) and batch.targets.dtype == torch.long
    assert tuple(batch.mask.shape) == (8, 1) and batch.mask.dtype == torch.float32
    assert torch.equal(batch.mask, torch.ones(8, 1))
    assert batch.batch_size == 8 and batch.steps == 1
    for tensor in (batch.inputs["sentences"], batch.inputs["words"], batch.targets):
        assert int(tensor.min()) >= 0 and int(tensor.max()) < VOCAB
    assert int(batch.targets.min()) >= 1  # an answer is a word, never padding
    assert torch.equal(batch.info["task"], torch.full((8,), number))
    assert tuple(batch.info["supporting"].shape) == (8, sentences)
    assert task.input_kinds == {"sentences": VOCAB, "words": VOCAB}
    assert task.input_size == task.output_size == VOCAB == 69


def test_sample_is_deterministic_in_the_seed() -> None:
    task = make_task("babi", number=2)
    a = task.sample(16, torch.Generator().manual_seed(5))
    b = task.sample(16, torch.Generator().manual_seed(5))
    c = task.sample(16, torch.Generator().manual_seed(6))
    assert isinstance(a.inputs, dict) and isinstance(b.inputs, dict) and isinstance(c.inputs, dict)
    for key in ("sentences", "words"):
        assert torch.equal(a.inputs[key], b.inputs[key])
    assert torch.equal(a.targets, b.targets) and torch.equal(a.info["supporting"], b.info["supporting"])
    assert batch_rows(a) != batch_rows(c)
    # the length argument is ignored, and draws continue the generator's stream
    generator = torch.Generator().manual_seed(5)
    first = task.sample(16, generator, length=3)
    assert batch_rows(first) == batch_rows(a)
    assert batch_rows(task.sample(16, generator)) != batch_rows(a)


@pytest.mark.parametrize("name, params", [("babi", {"number": 3}), ("babi_joint", {})])
def test_sampled_questions_come_from_the_training_split(name: str, params: dict[str, int]) -> None:
    task = make_task(name, **params)
    train, test = rows_of(task.data("train")), rows_of(task.data("test"))
    batch = task.sample(200, torch.Generator().manual_seed(1))
    sampled = batch_rows(batch)
    assert all(row in train for row in sampled)
    assert len(set(sampled)) > 150  # drawn with replacement from 1000 (6000) questions: few repeats
    # the splits differ: a model scored on the test split has not seen its questions
    assert len(sampled) > 0 and sum(row in test for row in sampled) < len(sampled)
    if name == "babi_joint":
        assert set(batch.info["task"].tolist()) == set(NUMBERS)


def test_sample_checks_the_batch_size() -> None:
    task = make_task("babi")
    with pytest.raises(ValueError, match="batch"):
        task.sample(0, torch.Generator())


# -- evaluation batches -------------------------------------------------------------------------------------


def test_evaluation_batches_walk_the_test_split_in_order() -> None:
    task = make_task("babi", number=2)
    data = task.data("test")
    batches = walk(task, 250, 64)
    assert [b.batch_size for b in batches] == [64, 64, 64, 58]
    assert isinstance(batches[0].inputs, dict)
    story = torch.cat([b.inputs["sentences"][:, 0] for b in batches if isinstance(b.inputs, dict)])
    question = torch.cat([b.inputs["words"][:, 0] for b in batches if isinstance(b.inputs, dict)])
    assert torch.equal(story, data["story"][:250])
    assert torch.equal(question, data["question"][:250])
    assert torch.equal(torch.cat([b.targets[:, 0] for b in batches]), data["answer"][:250])
    # the seed does not matter: the split is fixed
    again = list(task.evaluation_batches(250, seed=99, batch=64, length=None, split="test"))
    assert all(torch.equal(a.targets, b.targets) for a, b in zip(batches, again, strict=True))


def test_evaluation_batches_are_capped_by_the_split() -> None:
    task = make_task("babi", number=1)
    batches = walk(task, 10**6, 300)
    assert sum(b.batch_size for b in batches) == TEST_SIZE == 1000
    rows = [row for b in batches for row in batch_rows(b)]
    assert rows == [row for b in walk(task, 1000, 1000) for row in batch_rows(b)]
    assert len(walk(task, 1, 100)) == 1 and walk(task, 1, 100)[0].batch_size == 1


@pytest.mark.parametrize("train_size", [1000, 10000])
def test_valid_split_has_a_tenth_of_train_size(train_size: int) -> None:
    task = make_task("babi", number=1, train_size=train_size)
    assert sum(b.batch_size for b in walk(task, 10**6, 500, split="valid")) == train_size // 10
    assert task.data("valid")["answer"].shape[0] == train_size // 10
    # the test split is the same whatever the training size
    small = make_task("babi", number=1, train_size=1000)
    assert torch.equal(task.data("test")["answer"], small.data("test")["answer"])


def test_evaluation_splits_differ() -> None:
    task = make_task("babi", number=1)
    valid, test = rows_of(task.data("valid")), rows_of(task.data("test"))
    assert valid != test
    assert task.data("train")["answer"].shape[0] == 1000


def test_babi_joint_covers_six_tasks() -> None:
    task = make_task("babi_joint")
    assert isinstance(task, BabiJointTask)
    assert task.numbers == tuple(NUMBERS) == (1, 2, 3, 6, 15, 16)
    batches = walk(task, 10**6, 1000)
    assert sum(b.batch_size for b in batches) == 6 * TEST_SIZE == 6000
    tasks = torch.cat([b.info["task"] for b in batches])
    assert set(tasks.tolist()) == set(NUMBERS)
    assert [int((tasks == n).sum()) for n in NUMBERS] == [1000] * 6
    assert torch.equal(tasks, torch.tensor(NUMBERS).repeat_interleave(1000))  # task by task, in order
    assert sum(b.batch_size for b in walk(task, 10**6, 1000, split="valid")) == 600
    assert task.data("train")["answer"].shape[0] == 6000
    # each task's part of the joint test split is that task's own test split (padded wider)
    one = make_task("babi", number=6).data("test")
    joint = task.data("test")
    rows = slice(3000, 4000)
    assert torch.equal(joint["question"][rows], one["question"])
    assert torch.equal(joint["answer"][rows], one["answer"])


# -- loss and errors ----------------------------------------------------------------------------------------


def qa_batch(targets: torch.Tensor, mask: torch.Tensor) -> Batch:
    b, t = targets.shape
    return Batch({"words": torch.zeros(b, t, MAX_WORDS, dtype=torch.long)}, targets, mask)


@pytest.mark.parametrize("steps", [1, 3])
def test_answer_loss_is_cross_entropy_over_scored_steps(steps: int) -> None:
    generator = torch.Generator().manual_seed(0)
    b = 6
    logits = torch.randn(b, steps, VOCAB, generator=generator) * 3
    targets = torch.randint(VOCAB, (b, steps), generator=generator)
    some = (torch.arange(b * steps) % 3 != 1).float().view(b, steps)  # zeros in some rows and steps
    assert 0 < some.sum() < b * steps
    for mask in (torch.ones(b, steps), some):
        batch = qa_batch(targets, mask)
        keep = mask.bool()
        expected = F.cross_entropy(logits[keep], targets[keep], reduction="sum") / b
        assert torch.allclose(answer_loss(logits, batch), expected, atol=1e-5)
        assert torch.allclose(make_task("babi").loss_of(logits, batch), expected, atol=1e-5)
    # differentiable
    logits.requires_grad_(True)
    answer_loss(logits, qa_batch(targets, torch.ones(b, steps))).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_answer_loss_of_a_sure_right_answer_is_near_zero() -> None:
    targets = torch.tensor([[4], [7]])
    logits = F.one_hot(targets, VOCAB).float() * 50
    assert float(answer_loss(logits, qa_batch(targets, torch.ones(2, 1)))) < 1e-6
    uniform = torch.zeros(2, 1, VOCAB)
    assert math.isclose(float(answer_loss(uniform, qa_batch(targets, torch.ones(2, 1)))), math.log(VOCAB),
                        rel_tol=1e-5)


def test_wrong_answers_counts_arg_max_mismatches() -> None:
    targets = torch.tensor([[3, 5, 2], [1, 1, 1], [8, 9, 10], [4, 4, 4]])
    chosen = torch.tensor([[3, 6, 2], [2, 2, 1], [8, 9, 10], [5, 5, 5]])
    logits = torch.randn(4, 3, VOCAB, generator=torch.Generator().manual_seed(1))
    logits.scatter_(-1, chosen.unsqueeze(-1), 100.0)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    batch = qa_batch(targets, mask)
    assert wrong_answers(logits, batch).tolist() == [1.0, 2.0, 0.0, 1.0]
    assert make_task("babi").errors(logits, batch).tolist() == [1.0, 2.0, 0.0, 1.0]
    assert wrong_answers(logits, qa_batch(targets, torch.zeros(4, 3))).tolist() == [0.0] * 4


# -- metrics --------------------------------------------------------------------------------------------------


def test_one_task_has_no_extra_metrics() -> None:
    task = make_task("babi", number=15)
    batch = walk(task, 10, 10)[0]
    assert task.metrics(torch.zeros(10, 1, VOCAB), batch) == {}


def test_joint_metrics_are_nan_outside_their_task() -> None:
    task = make_task("babi_joint")
    data = task.data("test")
    rows = torch.tensor([0, 1, 1500, 2999, 3000, 4500, 5999])  # tasks 1, 1, 2, 3, 6, 15, 16
    batch = task.batch_of(data, rows)
    chosen = batch.targets.clone()
    chosen[1, 0] = chosen[1, 0] % (VOCAB - 1) + 1  # a wrong answer to the second question
    logits = F.one_hot(chosen, VOCAB).float()
    metrics = task.metrics(logits, batch)
    assert set(metrics) == {f"task_{n}_accuracy" for n in NUMBERS}
    expected_task = [1, 1, 2, 3, 6, 15, 16]
    assert batch.info["task"].tolist() == expected_task
    for n in NUMBERS:
        values = metrics[f"task_{n}_accuracy"]
        assert values.shape == (7,)
        for i, t in enumerate(expected_task):
            if t != n:
                assert math.isnan(float(values[i])), (n, i)
            else:
                assert float(values[i]) == (0.0 if i == 1 else 1.0), (n, i)


class AnswerStub(nn.Module):
    """A "model" that answers the questions of a split in evaluation order: right where ``right`` says so.

    Its inputs are named unlike the task's kinds, and in another order, so the test also checks that
    ``model_inputs`` matches them by kind. It checks that it is fed the split's questions in order.
    """

    def __init__(self, data: dict[str, torch.Tensor], right: torch.Tensor, order: torch.Tensor | None = None) -> None:
        super().__init__()
        self.input_kinds = {"query": "words", "tale": "sentences"}
        self.scale = nn.Parameter(torch.tensor(5.0))
        self.data, self.right = data, right
        self.order = torch.arange(data["answer"].shape[0]) if order is None else order  # rows, in evaluation order
        self.seen = 0

    def forward(self, x: dict[str, torch.Tensor], raw: bool = False) -> torch.Tensor:
        assert raw and set(x) == {"query", "tale"}
        b = x["query"].shape[0]
        rows = self.order[self.seen:self.seen + b]
        self.seen += b
        assert torch.equal(x["query"][:, 0], self.data["question"][rows])
        assert torch.equal(x["tale"][:, 0], self.data["story"][rows])
        answer = self.data["answer"][rows]
        wrong = answer % (VOCAB - 1) + 1  # another word
        chosen = torch.where(self.right[rows], answer, wrong)
        return (F.one_hot(chosen, VOCAB).float() * self.scale).unsqueeze(1)  # (B, 1, V)


def stub_loss(right: torch.Tensor) -> float:
    """The mean answer loss of the stub's logits: 5 on one word, 0 elsewhere."""
    log_z = math.log(math.exp(5.0) + VOCAB - 1)
    return float(torch.where(right, torch.tensor(log_z - 5.0), torch.tensor(log_z)).mean())


def test_evaluate_averages_each_task_over_its_own_questions() -> None:
    task = make_task("babi_joint")
    data = task.data("test")
    generator = torch.Generator().manual_seed(3)
    # a different rate of right answers in each task
    rate = {1: 0.95, 2: 0.8, 3: 0.1, 6: 0.3, 15: 0.2, 16: 0.65}  # 0.5 over all tasks
    chance = torch.tensor([rate[int(t)] for t in data["task"]])
    right = torch.rand(data["answer"].shape[0], generator=generator) < chance
    model = AnswerStub(data, right)
    result = evaluate(model, task, sequences=6000, batch=64)  # batches straddle the tasks' boundaries
    assert model.seen == 6000
    assert result.sequences == 6000 and result.split == "test" and result.unit == "wrong answers"
    assert set(result.metrics) == {f"task_{n}_accuracy" for n in NUMBERS}
    for n in NUMBERS:
        own = right[data["task"] == n].float().mean()
        assert result.metrics[f"task_{n}_accuracy"] == pytest.approx(float(own), abs=1e-6), n
        # not the accuracy over all 6000 questions
        assert abs(result.metrics[f"task_{n}_accuracy"] - float(right.float().mean())) > 0.05
    assert result.perfect == pytest.approx(float(right.float().mean()), abs=1e-6)
    assert result.bit_errors == pytest.approx(1 - float(right.float().mean()), abs=1e-6)
    assert result.loss == pytest.approx(stub_loss(right), rel=1e-5)
    text = result.describe("stub")
    assert f"{100 * (1 - result.perfect):.1f}% test error (6000 questions)" in text
    assert f"task 16 accuracy {100 * result.metrics['task_16_accuracy']:.1f}%" in text


def test_evaluate_a_part_of_the_joint_split() -> None:
    task = make_task("babi_joint")
    data = task.data("test")
    right = torch.arange(6000) % 3 == 0
    # A part of the split is shared among the tasks: the first ceil(2500 / 6) = 417 of each, cut to 2500.
    order = torch.cat([torch.arange(1000 * t, 1000 * t + 417) for t in range(6)])[:2500]
    result = evaluate(AnswerStub(data, right, order), task, sequences=2500, batch=100)
    assert result.sequences == 2500
    assert result.metrics["task_1_accuracy"] == pytest.approx(float(right[:417].float().mean()))
    assert result.metrics["task_3_accuracy"] == pytest.approx(float(right[2000:2417].float().mean()))
    assert result.metrics["task_16_accuracy"] == pytest.approx(float(right[5000:5415].float().mean()))
    few = evaluate(AnswerStub(data, right, torch.tensor([0, 1000, 2000])), task, sequences=3)
    for n in (6, 15, 16):  # no question of these tasks was asked
        assert math.isnan(few.metrics[f"task_{n}_accuracy"])
        assert f"task {n} accuracy" not in few.describe("stub")


def test_evaluate_one_task_on_the_valid_split() -> None:
    task = make_task("babi", number=16)
    data = task.data("valid")
    right = torch.arange(100) < 37
    result = evaluate(AnswerStub(data, right), task, sequences=10**4, batch=30, split="valid")
    assert (result.sequences, result.split, result.metrics) == (100, "valid", {})
    assert result.perfect == pytest.approx(0.37)
    assert result.length is None
    assert result.describe("stub").startswith("stub: 63.0% valid error (100 questions), loss ")


# -- parameters ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", NUMBERS)
def test_every_generated_task_number_is_accepted(number: int) -> None:
    task = make_task("babi", number=number)
    assert isinstance(task, BabiTask) and task.numbers == (number,)
    assert task.config == {"number": number, "train_size": 1000, "relabel": False}


@pytest.mark.parametrize("number", [0, 4, 5, 7, 20, -1, True, "1", 1.0])
def test_other_task_numbers_are_refused(number: object) -> None:
    with pytest.raises(TaskParamError) as info:
        make_task("babi", number=number)
    assert info.value.param == "number" and info.value.task == "babi"
    assert "'number'" in str(info.value)
    assert "1, 2, 3, 6, 15, 16" in str(info.value)


@pytest.mark.parametrize("name", ["babi", "babi_joint"])
def test_train_size_is_1k_or_10k(name: str) -> None:
    assert make_task(name, train_size=10000).config["train_size"] == 10000
    for size in (100, 999, 5000, 20000):
        with pytest.raises(TaskParamError) as info:
            make_task(name, train_size=size)
        assert info.value.param == "train_size" and "1000, 10000" in str(info.value)


def test_babi_joint_takes_no_number() -> None:
    with pytest.raises(TaskParamError) as info:
        make_task("babi_joint", number=1)
    assert info.value.param == "number" and "unknown parameter" in str(info.value)


def test_bad_task_number_in_a_spec_is_e602(tmp_path: Path) -> None:
    path = tmp_path / "bad.cog"
    path.write_text(MEMN2N.read_text().replace("babi(number=1,", "babi(number=4,"), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        cogdsl.load(path)
    assert [d.code for d in info.value.diagnostics] == ["E602"]
    assert "'number'" in info.value.diagnostics[0].message


# -- the spec against the task ----------------------------------------------------------------------------------


def spec_file(folder: Path, text: str, name: str = "spec.cog") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_spec_fits_the_task() -> None:
    model = cogdsl.compile(MEMN2N)
    assert model.input_kinds == {"story": "sentences", "question": "words"}


def test_story_vocab_must_match_the_task(tmp_path: Path) -> None:
    text = MEMN2N.read_text().replace("story: sentences(vocab=69)", "story: sentences(vocab=68)")
    text = text.replace(", tie_answer=true", "")  # without the tied answer layer, the task check speaks first
    assert "vocab=68" in text and "tie_answer" not in text
    with pytest.raises(ShapeError) as info:
        cogdsl.compile(spec_file(tmp_path, text))
    # every size problem in one report: the task's first, then what follows from it (the question's 69
    # words no longer fit the story's word tables)
    diagnostic, follow_on = info.value.diagnostics
    assert diagnostic.code == "E501"
    assert "'story'" in diagnostic.message and "vocab 68" in diagnostic.message
    assert "69-word vocabulary" in diagnostic.message
    assert diagnostic.hint == "set the vocab of 'story' to 69, or leave it out to take the task's"
    assert follow_on.code == "E501" and "the question 'question' (69 words)" in follow_on.message


def test_story_vocab_mismatch_is_reported_with_a_tied_answer(tmp_path: Path) -> None:
    text = MEMN2N.read_text().replace("story: sentences(vocab=69)", "story: sentences(vocab=68)")
    assert "tie_answer=true" in text
    with pytest.raises(ShapeError) as info:
        cogdsl.compile(spec_file(tmp_path, text))
    assert all(d.code == "E501" for d in info.value.diagnostics)
    assert any("'story'" in d.message and "vocab 68" in d.message for d in info.value.diagnostics)


def test_question_vocab_must_match_the_task(tmp_path: Path) -> None:
    text = MEMN2N.read_text().replace("question: words(vocab=69)", "question: words(vocab=70)")
    with pytest.raises(ShapeError) as info:
        cogdsl.compile(spec_file(tmp_path, text))
    assert [d.code for d in info.value.diagnostics] == ["E501", "E501"]  # the task's, then the story tables'
    assert "'question' has vocab 70" in info.value.diagnostics[0].message
    assert "whose story has 69" in info.value.diagnostics[1].message


def test_a_vector_input_cannot_feed_babi(tmp_path: Path) -> None:
    text = """\
cogdsl 1
model vec_babi
input  x: 69
output y: 69 = sigmoid(ctrl)
lstm ctrl(hidden=8) <- x
train {
  task babi(number=1)
}
"""
    with pytest.raises(ShapeError) as info:
        cogdsl.compile(spec_file(tmp_path, text))
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "E501"
    assert "one sentences input and one words input" in diagnostic.message
    assert diagnostic.hint is not None and "sentences(vocab=69)" in diagnostic.hint
    # and the same model without the QA task compiles
    cogdsl.compile(spec_file(tmp_path, text.replace("train {\n  task babi(number=1)\n}\n", ""), "plain.cog"))
