"""Tests for the ``babi_files`` and ``babi_files_steps`` tasks (cogdsl.tasks.babi_files): bAbI files in the
official text format, written by hand here or written out from the generator's own splits.

- hand-written files: the vocabulary (padding, unknown, sorted words, a comma answer as one word), the sizes,
  a batch's exact tensors, unknown words at test time, the task number of a test file named otherwise;
- the generator's splits written as files: the same questions give the same batches through both paths
  (word ids mapped through each vocabulary), one task per file and a folder of tasks jointly;
- validation held out of training (never drawn) or read from a file, task by task in a folder;
- the folder form: joint tasks, per-task accuracy, ``number``, and the located errors of bad set-ups;
- a memory with fewer slots than the story keeps its most recent sentences;
- one spec text with its sizes left out trains on the generator and on files by changing the task alone;
- the CLI: train, eval, trace and predict on files, then eval and predict without the training files (the
  vocabulary comes from the checkpoint), and a malformed training file (E604, ``path:line:``, exit 1);
- ``babi_files_steps``: one sentence per step, then the question, scored there (as ``babi_steps``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.cli.command import main
from cogdsl.errors import DataFileError, UsageError
from cogdsl.tasks import Batch, TaskParamError, make_task
from cogdsl.tasks.babi import BABI_TASKS, MAX_WORDS, QA, generate_split, vocabulary
from cogdsl.tasks.babi_files import BabiFilesStepsTask, BabiFilesTask, Split
from cogdsl.tasks.babi_format import parse_babi, write_babi_file
from cogdsl.tasks.qa import BabiTask
from cogdsl.tasks.qa_steps import BabiStepsTask
from cogdsl.training.config import build_task
from cogdsl.training.loop import config_from_spec, model_inputs, train

# Two stories in the official format: names capitalised, punctuation attached, a question interleaved in the
# first story (its line numbers count it; story indices do not), a comma answer in the second. The second
# story repeats a sentence of the first: stories are stored apart all the same.
HAND_TRAIN = (
    "1 Mary moved to the bathroom.\n"
    "2 John went to the hallway.\n"
    "3 Where is Mary? \tbathroom\t1\n"
    "4 Daniel went back to the hallway.\n"
    "5 Sandra picked up the apple there.\n"
    "6 Where is Daniel? \thallway\t4\n"
    "1 Sandra picked up the apple there.\n"
    "2 Sandra took the football there.\n"
    "3 What is Sandra carrying? \tapple,football\t1 2\n"
)

# "Bill", "garden" and "kitchen" never occur in the training file.
HAND_TEST = (
    "1 Bill moved to the garden.\n"
    "2 Mary went to the kitchen.\n"
    "3 Where is Bill? \tgarden\t1\n"
    "4 Where is Mary? \tkitchen\t2\n"
)

HAND_WORDS = (
    "<pad>", "<unk>", "apple", "apple,football", "back", "bathroom", "carrying", "daniel", "football", "hallway",
    "is", "john", "mary", "moved", "picked", "sandra", "the", "there", "to", "took", "up", "went", "what", "where",
)  # fmt: skip


def ids(text: str, width: int) -> list[int]:
    """The ids of the words of ``text`` in :data:`HAND_WORDS`, padded to ``width``."""
    found = [HAND_WORDS.index(w) if w in HAND_WORDS else 1 for w in text.split()]
    return found + [0] * (width - len(found))


def write_hand(folder: Path) -> tuple[Path, Path]:
    train_path, test_path = folder / "train.txt", folder / "test.txt"
    train_path.write_text(HAND_TRAIN, encoding="utf-8")
    test_path.write_text(HAND_TEST, encoding="utf-8")
    return train_path, test_path


def hand_task(folder: Path, name: str = "babi_files") -> BabiFilesTask:
    train_path, test_path = write_hand(folder)
    task = make_task(name, train=str(train_path), test=str(test_path))
    assert isinstance(task, BabiFilesTask)
    return task


def title(number: int) -> str:
    return BABI_TASKS[number].replace("_", "-")


def unique_qas(prefix: str, count: int) -> list[QA]:
    """``count`` one-sentence stories, each with its own place word (``{prefix}{k}``), which is the answer: every
    question can be told apart by its answer."""
    people = ("mary", "john", "sandra", "daniel")
    return [QA(((people[k % 4], "went", "to", "the", f"{prefix}{k}"),), ("where", "is", people[k % 4]),
               f"{prefix}{k}", (0,)) for k in range(count)]


def answers_of(task: BabiFilesTask, batch: Batch) -> list[str]:
    return [task.answer_word(int(i)) for i in batch.targets[:, 0]]


# -- hand-written files -------------------------------------------------------------------------------------------


def test_vocabulary_and_sizes_come_from_the_files(tmp_path: Path) -> None:
    task = hand_task(tmp_path)
    assert task.vocabulary.words == HAND_WORDS
    assert task.vocabulary.id("apple,football") == 3 and task.vocabulary.id("bill") == 1
    assert task.input_kinds == {"sentences": 24, "words": 24}
    assert task.input_size == task.output_size == 24
    assert task.numbers == (0,)  # a file not named qaN_..._train.txt: task 0
    assert task.data_state() == {"vocabulary": list(HAND_WORDS[2:])}


def test_a_batch_of_hand_written_stories(tmp_path: Path) -> None:
    task = hand_task(tmp_path)
    data = task.data("train")
    assert isinstance(data, Split) and len(data) == 3  # 3 questions: a tenth of them rounds to none held out
    # Each story stored once: 4 statements of the first (both its questions share them), 2 of the second.
    assert data.sentences.shape == (6, 6) and data.longest == 4
    assert data.start.tolist() == [0, 0, 4] and data.length.tolist() == [2, 4, 2]
    batch = task.batch_of(data, torch.tensor([1, 2]))
    # Question 1, "Where is Daniel?", after the interleaved "Where is Mary?": 4 statements; line 4 is story[2].
    # Question 2: the second story, 2 statements, padded to the split's longest story (S = 4), L = 6 words.
    story = torch.tensor([
        [ids("mary moved to the bathroom", 6), ids("john went to the hallway", 6),
         ids("daniel went back to the hallway", 6), ids("sandra picked up the apple there", 6)],
        [ids("sandra picked up the apple there", 6), ids("sandra took the football there", 6), [0] * 6, [0] * 6],
    ])
    assert isinstance(batch.inputs, dict) and set(batch.inputs) == {"sentences", "words"}
    assert torch.equal(batch.inputs["sentences"], story.unsqueeze(1))
    assert batch.inputs["words"].tolist() == [[ids("where is daniel", 6)], [ids("what is sandra carrying", 6)]]
    assert batch.targets.tolist() == [[9], [3]]  # hallway; apple,football as one word
    assert batch.mask.tolist() == [[1.0], [1.0]]
    assert batch.info["supporting"].tolist() == [[False, False, True, False], [True, True, False, False]]
    assert batch.info["task"].tolist() == [0, 0]
    dense = task.question_rows("train", torch.tensor([0]))
    assert dense["sentences"].tolist() == [2] and dense["story"][0, 2:].eq(0).all()


def test_unknown_words_at_test_time_are_the_unknown_id(tmp_path: Path) -> None:
    task = hand_task(tmp_path)
    batch = task.batch_of(task.data("test"), torch.tensor([0, 1]))
    assert batch.inputs["sentences"][:, 0].tolist() == [
        [ids("bill moved to the garden", 5), ids("mary went to the kitchen", 5)]] * 2
    assert batch.inputs["sentences"][0, 0, 0, 0] == 1 and batch.inputs["sentences"][0, 0, 0, 4] == 1
    assert batch.inputs["words"][:, 0].tolist() == [ids("where is bill", 5), ids("where is mary", 5)]
    assert batch.targets.tolist() == [[1], [1]]  # garden and kitchen: unknown answers
    # New questions (cogdsl predict): unknown words too, and a question without its answer.
    asked = task.questions_batch(parse_babi("1 Bill went to the hallway.\n2 Where is Bill?\n", answers=False))
    assert asked.inputs["sentences"][0, 0].tolist() == [ids("bill went to the hallway", 5)]
    assert asked.targets.tolist() == [[0]]


def test_a_question_without_a_story_can_be_asked(tmp_path: Path) -> None:
    task = hand_task(tmp_path)
    asked = task.questions_batch(parse_babi("1 Where is Mary?\n", answers=False))
    assert asked.inputs["sentences"].shape == (1, 1, 1, 3) and asked.inputs["sentences"].eq(0).all()
    assert asked.inputs["words"].tolist() == [[ids("where is mary", 3)]]


def test_a_test_file_named_otherwise_is_the_training_files_task(tmp_path: Path) -> None:
    train_path = tmp_path / "qa3_mine_train.txt"
    train_path.write_text(HAND_TRAIN, encoding="utf-8")
    (tmp_path / "heldout.txt").write_text(HAND_TEST, encoding="utf-8")
    task = make_task("babi_files", train=str(train_path), test=str(tmp_path / "heldout.txt"))
    assert task.numbers == (3,)
    assert task.data("test").task.tolist() == [3, 3]
    batches = list(task.evaluation_batches(1000, 0, 1, None))
    assert [b.inputs["words"][0, 0].tolist() for b in batches] == [ids("where is bill", 5), ids("where is mary", 5)]


# -- the generator's splits, written out as files --------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the official files of generated tasks 1 and 2 (1k: train, valid and test)."""
    folder = tmp_path_factory.mktemp("generated")
    for number in (1, 2):
        for split in ("train", "valid", "test"):
            write_babi_file(generate_split(number, "1k", split), folder / f"qa{number}_{title(number)}_{split}.txt")
    return folder


def to_generated_ids(task: BabiFilesTask) -> torch.Tensor:
    """A table from the files' word ids to the generator's (padding to padding; the unknown word to -1)."""
    return torch.tensor([0, -1, *(vocabulary().id(w) for w in task.vocabulary.words[2:])])


def assert_same_questions(table: torch.Tensor, files: dict[str, torch.Tensor], made: dict[str, torch.Tensor]) -> None:
    """Encoded questions (``question_rows``) of the files and of the generator are the same words (the generator's
    columns beyond the files' longest sentence, and its stories' rows beyond theirs, are all padding)."""
    sentences, words = files["story"].shape[1:]
    assert (files["story"] != 1).all() and (files["question"] != 1).all() and (files["answer"] != 1).all()
    assert made["story"][:, sentences:].eq(0).all() and made["story"][..., words:].eq(0).all()
    assert made["question"][:, words:].eq(0).all() and made["supporting"][:, sentences:].eq(0).all()
    assert torch.equal(table[files["story"]], made["story"][:, :sentences, :words])
    assert torch.equal(table[files["question"]], made["question"][:, :words])
    assert torch.equal(table[files["answer"]], made["answer"])
    assert torch.equal(files["supporting"], made["supporting"][:, :sentences])
    assert torch.equal(files["sentences"], made["sentences"])
    assert torch.equal(files["task"], made["task"])


@pytest.mark.parametrize("number", [1, 2])
def test_generated_files_give_the_generated_batches(generated: Path, number: int) -> None:
    name = f"qa{number}_{title(number)}"
    task = make_task("babi_files", train=str(generated / f"{name}_train.txt"),
                     valid=str(generated / f"{name}_valid.txt"), test=str(generated / f"{name}_test.txt"))
    assert isinstance(task, BabiFilesTask) and task.numbers == (number,)
    made_task = BabiTask(number=number)
    table = to_generated_ids(task)
    assert task.vocabulary.words[2:] == tuple(sorted({w for w in task.vocabulary.words[2:]}))
    for split in ("train", "valid", "test"):
        made = made_task.data(split)
        count = task.split_size(split)
        assert count == made_task.split_size(split) == {"train": 1000, "valid": 100, "test": 1000}[split]
        # Whole splits: the same questions in the same order, the same story padding S (the same longest story).
        files = task.question_rows(split, torch.arange(count))
        assert files["story"].shape[1] == made["story"].shape[1], split
        assert files["story"].shape[2] <= MAX_WORDS
        assert_same_questions(table, files, made)
        # Batches, as training and evaluation draw them.
        rows = torch.tensor([0, 7, count - 1, 3])
        got, want = task.batch_of(task.data(split), rows), BabiTask.batch_of(made_task, made, rows)
        words = got.inputs["words"].shape[-1]
        assert torch.equal(table[got.inputs["sentences"]], want.inputs["sentences"][..., :words])
        assert torch.equal(table[got.inputs["words"]], want.inputs["words"][..., :words])
        assert torch.equal(table[got.targets], want.targets) and torch.equal(got.mask, want.mask)
        assert torch.equal(got.info["supporting"], want.info["supporting"])
        assert torch.equal(got.info["task"], want.info["task"])


def test_a_folder_of_generated_files_gives_each_tasks_batches(generated: Path) -> None:
    task = make_task("babi_files", train=str(generated))
    assert isinstance(task, BabiFilesTask) and task.numbers == (1, 2)
    table = to_generated_ids(task)
    for split in ("valid", "test"):
        data = task.data(split)
        for number in (1, 2):
            rows = (data.task == number).nonzero().flatten()
            made = BabiTask(number=number).data(split)
            assert rows.numel() == made["answer"].numel()
            files = task.question_rows(split, rows)
            assert files["story"].shape[1] >= made["story"].shape[1]  # padded to the longest story of both tasks
            kept = made["story"].shape[1]
            assert files["story"][:, kept:].eq(0).all() and files["supporting"][:, kept:].eq(0).all()
            trimmed = {**files, "story": files["story"][:, :kept], "supporting": files["supporting"][:, :kept]}
            assert_same_questions(table, trimmed, made)


# -- validation ---------------------------------------------------------------------------------------------------


def drawn_answers(task: BabiFilesTask, draws: int = 40, batch: int = 50) -> set[str]:
    generator = torch.Generator().manual_seed(0)
    seen: set[str] = set()
    for _ in range(draws):
        seen.update(answers_of(task, task.sample(batch, generator)))
    return seen


def test_the_last_tenth_of_each_task_is_held_out_and_never_drawn(tmp_path: Path) -> None:
    write_babi_file(unique_qas("ra", 20), tmp_path / "qa1_places_train.txt")
    write_babi_file(unique_qas("rb", 30), tmp_path / "qa2_rooms_train.txt")
    task = make_task("babi_files", train=str(tmp_path), valid_fraction=0.2)
    assert isinstance(task, BabiFilesTask)
    held = [f"ra{k}" for k in range(16, 20)] + [f"rb{k}" for k in range(24, 30)]
    trained = {f"ra{k}" for k in range(16)} | {f"rb{k}" for k in range(24)}
    assert task.split_size("train") == 40 and task.split_size("valid") == 10
    valid = task.batch_of(task.data("valid"), torch.arange(10))
    assert answers_of(task, valid) == held and valid.info["task"].tolist() == [1] * 4 + [2] * 6
    assert drawn_answers(task) == trained  # 2000 draws: every training question, no held-out one
    # The vocabulary has the held-out questions' words all the same (it is read from the whole files).
    assert {"ra19", "rb29"} <= set(task.vocabulary.words)
    # valid_fraction 0: nothing held out, the evaluations during training score the training questions.
    everything = make_task("babi_files", train=str(tmp_path), valid_fraction=0.0)
    assert everything.split_size("train") == everything.split_size("valid") == 50


def test_a_valid_file_is_the_validation_split_and_training_keeps_every_question(tmp_path: Path) -> None:
    write_babi_file(unique_qas("ra", 20), tmp_path / "train.txt")
    write_babi_file(unique_qas("va", 5), tmp_path / "valid.txt")
    task = make_task("babi_files", train=str(tmp_path / "train.txt"), valid=str(tmp_path / "valid.txt"))
    assert isinstance(task, BabiFilesTask)
    assert task.split_size("valid") == 5 and task.split_size("train") == 20
    valid = task.batch_of(task.data("valid"), torch.arange(5))
    assert answers_of(task, valid) == [f"va{k}" for k in range(5)]
    assert drawn_answers(task) == {f"ra{k}" for k in range(20)}
    assert "va4" in task.vocabulary.words  # the vocabulary reads the validation file too


def test_a_folder_validates_each_task_by_its_own_file_or_its_held_out_slice(tmp_path: Path) -> None:
    write_babi_file(unique_qas("ra", 10), tmp_path / "qa1_places_train.txt")
    write_babi_file(unique_qas("va", 3), tmp_path / "qa1_places_valid.txt")
    write_babi_file(unique_qas("rb", 10), tmp_path / "qa2_rooms_train.txt")  # no validation file
    task = make_task("babi_files", train=str(tmp_path))
    assert isinstance(task, BabiFilesTask)
    valid = task.batch_of(task.data("valid"), torch.arange(task.split_size("valid")))
    assert answers_of(task, valid) == ["va0", "va1", "va2", "rb9"]
    assert drawn_answers(task) == {f"ra{k}" for k in range(10)} | {f"rb{k}" for k in range(9)}


# -- the folder form ----------------------------------------------------------------------------------------------


def two_task_folder(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    for number, prefix in ((1, "ra"), (2, "rb")):
        write_babi_file(unique_qas(prefix, 12), folder / f"qa{number}_t{number}_train.txt")
        write_babi_file(unique_qas(prefix, 6), folder / f"qa{number}_t{number}_test.txt")
    return folder


def test_a_folder_is_one_joint_task_with_each_tasks_accuracy(tmp_path: Path) -> None:
    task = make_task("babi_files", train=str(two_task_folder(tmp_path)))
    assert isinstance(task, BabiFilesTask) and task.numbers == (1, 2)
    assert {"ra11", "rb11"} <= set(task.vocabulary.words)
    # The evaluation shares its questions among the tasks: the first 2 of each.
    batches = list(task.evaluation_batches(4, 0, 3, None))
    assert [len(answers_of(task, b)) for b in batches] == [3, 1]
    assert [a for b in batches for a in answers_of(task, b)] == ["ra0", "ra1", "rb0", "rb1"]
    batch = task.batch_of(task.data("test"), torch.tensor([0, 1, 6, 7]))  # two of task 1, two of task 2
    assert batch.info["task"].tolist() == [1, 1, 2, 2]
    logits = torch.zeros(4, 1, task.output_size)
    logits[torch.arange(4), 0, batch.targets[:, 0]] = 1.0  # all right...
    logits[3, 0, 0] = 5.0  # ... but the last
    metrics = task.metrics(logits, batch)
    assert set(metrics) == {"task_1_accuracy", "task_2_accuracy"}
    assert metrics["task_1_accuracy"][:2].tolist() == [1.0, 1.0] and metrics["task_1_accuracy"][2:].isnan().all()
    assert metrics["task_2_accuracy"][2:].tolist() == [1.0, 0.0] and metrics["task_2_accuracy"][:2].isnan().all()


def test_number_picks_one_task_of_a_folder(tmp_path: Path) -> None:
    task = make_task("babi_files", train=str(two_task_folder(tmp_path)), number=2)
    assert isinstance(task, BabiFilesTask) and task.numbers == (2,)
    assert "rb0" in task.vocabulary.words and "ra0" not in task.vocabulary.words
    batch = task.batch_of(task.data("test"), torch.arange(6))
    assert batch.info["task"].tolist() == [2] * 6 and task.metrics(torch.zeros(6, 1, task.output_size), batch) == {}


def test_bad_folder_set_ups_are_located_errors(tmp_path: Path) -> None:
    folder = two_task_folder(tmp_path / "en")
    with pytest.raises(DataFileError, match=r"has no files of task 5 \(qa5_\*_train.txt\); it has tasks 1, 2"):
        make_task("babi_files", train=str(folder), number=5).data("train")
    with pytest.raises(DataFileError, match=r"with a folder for train .* the test files are that folder's: leave "
                                            r"'test' out"):
        make_task("babi_files", train=str(folder), test=str(folder / "qa1_t1_test.txt")).data("train")
    write_babi_file(unique_qas("rc", 3), folder / "qa3_t3_test.txt")
    with pytest.raises(DataFileError, match=r"has no training file for task 3 \(qa3_\*_train.txt\)") as info:
        make_task("babi_files", train=str(folder)).vocabulary  # noqa: B018
    assert str(info.value).startswith(str(folder))
    with pytest.raises(DataFileError, match="'number' picks a task of a folder"):
        make_task("babi_files", train=str(folder / "qa1_t1_train.txt"), number=1).data("train")
    with pytest.raises(TaskParamError, match="parameter 'train' is required"):
        make_task("babi_files")
    with pytest.raises(UsageError, match="has no test file"):
        make_task("babi_files", train=str(folder / "qa1_t1_train.txt")).data("test")
    with pytest.raises(DataFileError, match=r"nothere.txt: expected a bAbI file, found no such file"):
        make_task("babi_files", train=str(tmp_path / "nothere.txt")).vocabulary  # noqa: B018


# -- models on the files ------------------------------------------------------------------------------------------

SPEC = """\
model {name}
input  story: sentences
input  question: words
output answer = softmax(reason)
episodic_memory mem(embedding=8, slots={slots}) <- story
hops reason(count=2) on mem <- question
train {{
  task {task}
  optimizer adam(lr=0.01)
  batch 4; steps 2; seed 0; threads 1
  eval_every 1; eval_size 10; log_every 1; checkpoint_every 2
}}
"""

FILES_TASK = 'babi_files(train="train.txt", test="test.txt")'


@pytest.fixture
def no_curve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs here do not draw learning_curve.png (a second or more a drawing; tests/test_viz.py tests it)."""
    monkeypatch.setattr("cogdsl.viz.curves.plot_learning_curve", lambda log, png, **_: Path(png))


def write_spec(folder: Path, task: str = FILES_TASK, slots: int = 6, name: str = "files_memn2n") -> Path:
    path = folder / f"{name}.cog"
    path.write_text(SPEC.format(name=name, slots=slots, task=task), encoding="utf-8")
    return path


def test_a_memory_keeps_the_most_recent_sentences_of_a_longer_story(tmp_path: Path) -> None:
    write_hand(tmp_path)
    spec = cogdsl.load(write_spec(tmp_path, slots=2))
    task = build_task(config_from_spec(spec), spec)
    torch.manual_seed(0)
    model = cogdsl.compile(spec, task=task).eval()
    batch = task.batch_of(task.data("train"), torch.tensor([1]))  # "Where is Daniel?": 4 sentences
    inputs = model_inputs(model, batch.inputs)
    assert isinstance(inputs, dict)
    with torch.no_grad():
        logits, trace = model(inputs, raw=True, return_weights=True)
        assert trace["mem:rows"][0, 0].tolist() == [2, 3]  # the last 2 of the 4 sentences
        assert trace["reason"].shape == (1, 1, 2, 2)
        torch.testing.assert_close(trace["reason"][0, 0].sum(-1), torch.ones(2))
        # The sentences it dropped change nothing; the last one does.
        earlier = inputs["story"].clone()
        earlier[0, 0, :2] = inputs["story"][0, 0, 3]
        torch.testing.assert_close(model({**inputs, "story": earlier}, raw=True), logits, rtol=0, atol=0)
        last = inputs["story"].clone()
        last[0, 0, 3] = inputs["story"][0, 0, 0]
        assert not torch.allclose(model({**inputs, "story": last}, raw=True), logits)


@pytest.mark.usefixtures("no_curve")
def test_one_spec_trains_on_the_generator_and_on_files_by_its_task_alone(tmp_path: Path) -> None:
    write_hand(tmp_path)
    generated_spec = write_spec(tmp_path, task="babi(number=1, train_size=1000)", name="on_generator")
    files_spec = write_spec(tmp_path, name="on_files")
    texts = [p.read_text(encoding="utf-8").replace(p.stem, "NAME") for p in (generated_spec, files_spec)]
    assert texts[0].replace("babi(number=1, train_size=1000)", FILES_TASK) == texts[1]
    for path, vocab in ((generated_spec, len(vocabulary())), (files_spec, len(HAND_WORDS))):
        spec = cogdsl.load(path)
        model = cogdsl.compile(spec)
        assert [(i.name, i.size.data) for i in model.spec.inputs] == [("story", vocab), ("question", vocab)]
        assert model.shapes.sizes["answer"] == vocab
        config = config_from_spec(spec).with_overrides(steps=2)
        result = train(spec, config, tmp_path / f"run_{path.stem}", progress=False, device="cpu", tensorboard=False)
        assert result.step == 2 and result.stopped == "done" and result.loss is not None
        assert result.eval is not None and result.eval.split == "valid"
    assert len(vocabulary()) == 69 != len(HAND_WORDS)


# -- the command line ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_curve")
def test_the_cli_trains_evaluates_traces_and_predicts_on_files(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    train_path, test_path = write_hand(tmp_path)
    spec = str(write_spec(tmp_path))
    run = tmp_path / "run"
    assert main(["train", spec, "--out", str(run), "--no-progress", "--no-tensorboard", "--device", "cpu"]) == 0
    checkpoint = run / "checkpoints" / "step_00000002.safetensors"
    meta = json.loads(checkpoint.with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["task_state"] == {"vocabulary": list(HAND_WORDS[2:])}
    capsys.readouterr()

    assert main(["eval", spec, str(run), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "files_memn2n: " in out and "test error (2 questions)" in out
    assert main(["trace", spec, str(run), "--question", "0", "--out", str(tmp_path / "trace"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "| 1 | <unk> moved to the <unk> | yes |" in out and (tmp_path / "trace" / "hops.png").is_file()
    answers = tmp_path / "answers.txt"
    assert main(["predict", spec, str(run), "--input", str(test_path), "--output", str(answers),
                 "--device", "cpu"]) == 0
    first = answers.read_text(encoding="utf-8").splitlines()
    assert len(first) == 2 and set(first) <= set(HAND_WORDS)
    assert "wrote" in capsys.readouterr().err

    # Without the training file: the vocabulary comes from the checkpoint.
    train_path.unlink()
    assert main(["eval", spec, str(run), "--device", "cpu"]) == 0
    assert "test error (2 questions)" in capsys.readouterr().out
    assert main(["predict", spec, str(run), "--input", str(test_path), "--output", str(answers), "--force",
                 "--device", "cpu"]) == 0
    assert answers.read_text(encoding="utf-8").splitlines() == first
    alone = tmp_path / "alone.txt"
    alone.write_text("1 Where is Mary?\n", encoding="utf-8")
    assert main(["predict", spec, str(run), "--input", str(alone), "--output", str(tmp_path / "a.txt"),
                 "--device", "cpu"]) == 0
    assert len((tmp_path / "a.txt").read_text(encoding="utf-8").splitlines()) == 1
    capsys.readouterr()
    # With neither the file nor a checkpoint, training says which file is missing.
    assert main(["train", spec, "--out", str(tmp_path / "again"), "--no-progress", "--no-tensorboard"]) == 1
    captured = capsys.readouterr()
    assert "error[E604]" in captured.err and f"{train_path}: expected a bAbI file, found no such file" in captured.err


def test_a_malformed_training_file_is_error_e604_at_its_line(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    train_path, _ = write_hand(tmp_path)
    train_path.write_text("1 Mary moved to the bathroom.\n3 Where is Mary? \tbathroom\t1\n", encoding="utf-8")
    spec = str(write_spec(tmp_path))
    assert main(["train", spec, "--out", str(tmp_path / "run"), "--no-progress", "--no-tensorboard"]) == 1
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "error[E604]" in text and f"{train_path}:2: line number 3 follows 1" in text
    assert "Traceback" not in text and not (tmp_path / "run").exists()
    assert main(["validate", spec]) == 1
    assert f"{train_path}:2:" in capsys.readouterr().out


# -- one sentence per step ----------------------------------------------------------------------------------------


def test_steps_batches_read_a_sentence_per_step_then_the_question(tmp_path: Path) -> None:
    task = hand_task(tmp_path, "babi_files_steps")
    assert isinstance(task, BabiFilesStepsTask)
    assert task.input_kinds == {"words": 24} and task.output_size == 24
    batch = task.batch_of(task.data("train"), torch.tensor([1, 2]))
    assert isinstance(batch.inputs, dict) and set(batch.inputs) == {"words"}
    blank = [0] * 6
    assert batch.inputs["words"].tolist() == [
        [ids("mary moved to the bathroom", 6), ids("john went to the hallway", 6),
         ids("daniel went back to the hallway", 6), ids("sandra picked up the apple there", 6),
         ids("where is daniel", 6)],
        [ids("sandra picked up the apple there", 6), ids("sandra took the football there", 6),
         ids("what is sandra carrying", 6), blank, blank],
    ]
    assert batch.mask.tolist() == [[0, 0, 0, 0, 1], [0, 0, 1, 0, 0]]
    assert batch.targets.tolist() == [[0, 0, 0, 0, 9], [0, 0, 3, 0, 0]]
    assert batch.info["supporting"].tolist() == [[False, False, True, False, False], [True, True, False, False, False]]


def test_steps_batches_of_generated_files_are_the_generated_steps_batches(generated: Path) -> None:
    name = f"qa2_{title(2)}"
    task = make_task("babi_files_steps", train=str(generated / f"{name}_train.txt"),
                     test=str(generated / f"{name}_test.txt"))
    assert isinstance(task, BabiFilesStepsTask)
    made_task = BabiStepsTask(number=2)
    table = to_generated_ids(task)
    rows = torch.tensor([5, 0, 999, 42, 17])
    got = task.batch_of(task.data("test"), rows)
    want = made_task.batch_of(made_task.data("test"), rows)
    words = got.inputs["words"].shape[-1]
    assert got.inputs["words"].shape[:2] == want.inputs["words"].shape[:2]  # T = the longest story + 1
    assert want.inputs["words"][..., words:].eq(0).all()
    assert torch.equal(table[got.inputs["words"]], want.inputs["words"][..., :words])
    assert torch.equal(table[got.targets], want.targets) and torch.equal(got.mask, want.mask)
    assert torch.equal(got.info["supporting"], want.info["supporting"])
