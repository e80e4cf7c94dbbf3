"""Tests for cogdsl.tasks.babi: every answer is re-derived by a small solver written here,
which reads the generated sentences with its own patterns and replays the world (checking
that the story is consistent as it goes), on the whole story and on the supporting sentences
alone; determinism, splits, balance, distractors, the vocabulary and ``encode``."""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter

import pytest
import torch

from cogdsl.tasks.babi import (
    BABI_TASKS,
    MAX_WORDS,
    PAD,
    QA,
    SIZES,
    SPLIT_SEEDS,
    TEST_SIZE,
    encode,
    generate,
    generate_split,
    lengths,
    split_seed,
    vocabulary,
)

TASK_IDS = sorted(BABI_TASKS)
N = 300  # questions per task in the solver checks

# -- an independent solver ---------------------------------------------------------------------

MOVE = re.compile(r"^(\w+) (?:moved|went|journeyed|travelled)(?: back)? to the (\w+)$")
PICK = re.compile(r"^(\w+) (?:picked up|got|grabbed|took) the (\w+)(?: there)?$")
DROP = re.compile(r"^(\w+) (?:dropped|discarded|put down|left) the (\w+)(?: there)?$")
RULE = re.compile(r"^(\w+) are afraid of (\w+)$")
IS_A = re.compile(r"^(\w+) is a (\w+)$")
IS_COLOR = re.compile(r"^(\w+) is (white|gray|yellow|green)$")

Q_PERSON = re.compile(r"^where is (\w+)$")
Q_OBJECT = re.compile(r"^where is the (\w+)$")
Q_BEFORE = re.compile(r"^where was the (\w+) before the (\w+)$")
Q_YES_NO = re.compile(r"^is (\w+) in the (\w+)$")
Q_AFRAID = re.compile(r"^what is (\w+) afraid of$")
Q_COLOR = re.compile(r"^what color is (\w+)$")

SINGULAR = {"mice": "mouse", "sheep": "sheep", "wolves": "wolf", "cats": "cat"}


class Replay:
    """The world as told by a list of sentences; ``None`` answers mean "not known"."""

    def __init__(self, sentences: list[tuple[str, ...]]) -> None:
        self.at: dict[str, str] = {}  # person -> place
        self.held_by: dict[str, str] = {}  # object -> person
        self.lies: dict[str, str] = {}  # object on the floor -> place
        self.trail: dict[str, list[str]] = {}  # object -> places it was in, in order
        self.afraid: dict[str, str] = {}  # plural species -> plural species
        self.kind: dict[str, str] = {}  # name -> species
        self.color: dict[str, str] = {}  # name -> colour
        for s in sentences:
            self.read(" ".join(s))

    def _visit(self, obj: str, place: str) -> None:
        trail = self.trail.setdefault(obj, [])
        if not trail or trail[-1] != place:
            trail.append(place)

    def read(self, text: str) -> None:
        if m := MOVE.match(text):
            who, place = m.groups()
            assert self.at.get(who) != place, f"a move to where one already is: {text!r}"
            self.at[who] = place
            for obj, holder in self.held_by.items():
                if holder == who:
                    self._visit(obj, place)
        elif m := PICK.match(text):
            who, obj = m.groups()
            assert obj not in self.held_by, f"{obj} is already held: {text!r}"
            if obj in self.lies and who in self.at:
                assert self.lies[obj] == self.at[who], f"{who} is not where the {obj} is: {text!r}"
            self.lies.pop(obj, None)
            self.held_by[obj] = who
            if who in self.at:
                self._visit(obj, self.at[who])
        elif m := DROP.match(text):
            who, obj = m.groups()
            if obj in self.held_by:
                assert self.held_by[obj] == who, f"{who} does not hold the {obj}: {text!r}"
                del self.held_by[obj]
            if who in self.at:
                self.lies[obj] = self.at[who]
        elif m := RULE.match(text):
            self.afraid[m.group(1)] = m.group(2)
        elif m := IS_COLOR.match(text):
            self.color[m.group(1)] = m.group(2)
        elif m := IS_A.match(text):
            self.kind[m.group(1)] = m.group(2)
        else:
            raise AssertionError(f"unparsed sentence {text!r}")

    def where(self, obj: str) -> str | None:
        if obj in self.held_by:
            return self.at.get(self.held_by[obj])
        return self.lies.get(obj)

    def answer(self, question: tuple[str, ...]) -> str | None:
        text = " ".join(question)
        if m := Q_OBJECT.match(text):
            return self.where(m.group(1))
        if m := Q_PERSON.match(text):
            return self.at.get(m.group(1))
        if m := Q_BEFORE.match(text):
            obj, place = m.groups()
            trail = self.trail.get(obj, [])
            if trail.count(place) != 1 or trail.index(place) == 0:
                return None  # unknown or ambiguous
            return trail[trail.index(place) - 1]
        if m := Q_YES_NO.match(text):
            who, place = m.groups()
            return None if who not in self.at else ("yes" if self.at[who] == place else "no")
        if m := Q_AFRAID.match(text):
            plural = {v: k for k, v in SINGULAR.items()}
            kind = self.kind.get(m.group(1))
            fear = self.afraid.get(plural[kind]) if kind else None
            return SINGULAR[fear] if fear else None
        if m := Q_COLOR.match(text):
            name = m.group(1)
            if name not in self.kind:
                return None
            seen = {
                self.color[n] for n, k in self.kind.items() if n != name and k == self.kind[name] and n in self.color
            }
            return seen.pop() if len(seen) == 1 else None  # none seen, or no single colour
        raise AssertionError(f"unparsed question {text!r}")


SUPPORT_COUNT = {1: 1, 2: 2, 3: 3, 6: 1, 15: 2, 16: 3}
QUESTION_FORM = {1: Q_PERSON, 2: Q_OBJECT, 3: Q_BEFORE, 6: Q_YES_NO, 15: Q_AFRAID, 16: Q_COLOR}


@pytest.fixture(scope="module")
def data() -> dict[int, list[QA]]:
    return {t: generate(t, N, seed=11) for t in TASK_IDS}


# -- answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASK_IDS)
def test_solver_rederives_every_answer(data: dict[int, list[QA]], task: int) -> None:
    for qa in data[task]:
        assert QUESTION_FORM[task].match(" ".join(qa.question)), qa.question
        assert Replay(list(qa.story)).answer(qa.question) == qa.answer, qa.text()


@pytest.mark.parametrize("task", TASK_IDS)
def test_supporting_sentences_suffice(data: dict[int, list[QA]], task: int) -> None:
    # holds for every task, "no" answers of task 6 included: the one supporting move places
    # the person somewhere else than asked
    for qa in data[task]:
        sup = qa.supporting
        assert list(sup) == sorted(set(sup)) and all(0 <= i < len(qa.story) for i in sup), qa.text()
        assert len(sup) == SUPPORT_COUNT[task], qa.text()
        assert Replay([qa.story[i] for i in sup]).answer(qa.question) == qa.answer, qa.text()


@pytest.mark.parametrize("task", TASK_IDS)
def test_tokens_are_lower_case_words_in_the_vocabulary(data: dict[int, list[QA]], task: int) -> None:
    vocab = vocabulary()
    for qa in data[task]:
        assert qa.answer in vocab and re.fullmatch(r"[a-z]+", qa.answer)
        for sentence in (*qa.story, qa.question):
            assert 1 <= len(sentence) <= MAX_WORDS
            assert all(re.fullmatch(r"[a-z]+", w) and w in vocab for w in sentence), sentence
    assert lengths(data[task])[1] <= MAX_WORDS


# -- determinism and splits ---------------------------------------------------------------------


@pytest.mark.parametrize("task", TASK_IDS)
def test_deterministic_in_the_seed(task: int) -> None:
    a = generate(task, 120, seed=5)
    assert a == generate(task, 120, seed=5)
    assert a != generate(task, 120, seed=6)
    assert generate(task, 37, seed=5) == a[:37]  # a smaller count is a prefix
    assert len(a) == 120 and generate(task, 0, seed=5) == []


def test_generation_leaves_the_global_rng_alone() -> None:
    import random

    random.seed(123)
    state = random.getstate()
    generate(3, 50, seed=1)
    assert random.getstate() == state


def test_splits_have_distinct_seeds_and_differ() -> None:
    seeds = [split_seed(t, s) for t in TASK_IDS for s in SPLIT_SEEDS]
    assert len(set(seeds)) == len(seeds)
    for t in TASK_IDS:
        assert split_seed(t, "train") != split_seed(t, "test") != split_seed(t, "valid")
    test = generate_split(15, "1k", "test")
    train = generate_split(15, "1k", "train")
    valid = generate_split(15, "1k", "valid")
    assert len(test) == TEST_SIZE and len(train) == SIZES["1k"] and len(valid) == SIZES["1k"] // 10
    assert train != test[: len(train)] and valid != test[: len(valid)]
    assert test == generate(15, TEST_SIZE, split_seed(15, "test"))
    # the test set does not depend on the training size
    assert generate_split(16, "10k", "test") == generate_split(16, "1k", "test")
    assert generate_split(1, "1k", "test") != generate_split(1, "1k", "train")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown bAbI task 4"):
        generate(4, 10, seed=0)
    with pytest.raises(ValueError, match="count"):
        generate(1, -1, seed=0)
    with pytest.raises(ValueError, match="split"):
        generate_split(1, "1k", "dev")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size"):
        generate_split(1, "100", "train")


def test_generation_is_fast() -> None:
    for task in TASK_IDS:
        start = time.perf_counter()
        generate(task, 1000, seed=2)
        assert time.perf_counter() - start < 1.0, task


# -- style: distractors, balance, interleaving --------------------------------------------------


@pytest.mark.parametrize("task", TASK_IDS)
def test_stories_have_distractors(data: dict[int, list[QA]], task: int) -> None:
    qas = data[task]
    with_distractors = sum(len(qa.story) > len(qa.supporting) for qa in qas)
    assert with_distractors >= 0.9 * len(qas)
    assert sum(len(qa.story) - len(qa.supporting) for qa in qas) / len(qas) >= 3
    # the answer is not simply in the last sentence
    last = sum(qa.supporting[-1] == len(qa.story) - 1 for qa in qas)
    assert last <= 0.7 * len(qas)


@pytest.mark.parametrize("task", TASK_IDS)
def test_answers_are_balanced(data: dict[int, list[QA]], task: int) -> None:
    counts = Counter(qa.answer for qa in data[task])
    if task == 6:
        assert set(counts) == {"yes", "no"}
        assert 0.35 <= counts["yes"] / len(data[task]) <= 0.65
    else:
        assert len(counts) >= 4
        assert counts.most_common(1)[0][1] <= 0.6 * len(data[task])


@pytest.mark.parametrize("task", [1, 2, 3, 6])
def test_questions_are_interleaved_in_the_story(data: dict[int, list[QA]], task: int) -> None:
    qas = data[task]
    extends = sum(
        len(b.story) > len(a.story) and b.story[: len(a.story)] == a.story for a, b in itertools.pairwise(qas)
    )
    assert extends >= 0.5 * (len(qas) - 1)  # several questions per story, asked as it goes


def test_task3_asks_about_the_latest_arrival(data: dict[int, list[QA]]) -> None:
    # as bAbI's generator does: "before the P" names the place the object is in now
    for qa in data[3]:
        replay = Replay(list(qa.story))
        obj, place = Q_BEFORE.match(" ".join(qa.question)).groups()  # type: ignore[union-attr]
        assert replay.trail[obj][-1] == place, qa.text()
        assert replay.trail[obj][-2] == qa.answer, qa.text()


# -- vocabulary and encode ----------------------------------------------------------------------


def test_vocabulary_is_fixed_and_reserves_zero() -> None:
    vocab = vocabulary()
    assert vocabulary() is vocab
    assert vocab.words[0] == PAD and vocab.word(0) == PAD and PAD not in vocab
    assert len(set(vocab.words)) == len(vocab.words) == len(vocab)
    assert all(vocab.id(w) == i for i, w in enumerate(vocab.words) if i)
    for word in ("mary", "kitchen", "football", "yes", "no", "wolves", "wolf", "swan", "gray", "before"):
        assert word in vocab
    with pytest.raises(ValueError, match="'zebra' is not in the bAbI vocabulary"):
        vocab.id("zebra")
    with pytest.raises(ValueError):
        vocab.id(PAD)


def _decode(ids: torch.Tensor) -> tuple[str, ...]:
    vocab = vocabulary()
    return tuple(vocab.word(int(i)) for i in ids if int(i) != 0)


def test_encode_shapes_and_padding(data: dict[int, list[QA]]) -> None:
    qas = data[2][:40] + data[16][:10]
    s, w = lengths(qas)
    out = encode(qas, vocabulary(), max_sentences=s + 2, max_words=w + 1)
    b = len(qas)
    assert out["story"].shape == (b, s + 2, w + 1) and out["story"].dtype == torch.long
    assert out["question"].shape == (b, w + 1) and out["question"].dtype == torch.long
    assert out["answer"].shape == (b,) and out["answer"].dtype == torch.long
    assert out["supporting"].shape == (b, s + 2) and out["supporting"].dtype == torch.bool
    assert out["sentences"].tolist() == [len(qa.story) for qa in qas]
    for i, qa in enumerate(qas):
        n = len(qa.story)
        assert (out["story"][i, n:] == 0).all() and not out["supporting"][i, n:].any()
        for j, sentence in enumerate(qa.story):
            row = out["story"][i, j]
            assert _decode(row) == sentence and (row[len(sentence) :] == 0).all() and (row[: len(sentence)] != 0).all()
        assert _decode(out["question"][i]) == qa.question
        assert vocabulary().word(int(out["answer"][i])) == qa.answer
        assert out["supporting"][i].nonzero().flatten().tolist() == list(qa.supporting)


def test_encode_keeps_the_last_sentences() -> None:
    story = tuple((p, "went", "to", "the", place) for p, place in [("mary", "garden"), ("john", "office")] * 3)
    qa = QA(story=story, question=("where", "is", "mary"), answer="office", supporting=(1, 4))
    out = encode([qa], vocabulary(), max_sentences=3, max_words=MAX_WORDS)
    assert out["sentences"].tolist() == [3]
    assert [_decode(out["story"][0, j]) for j in range(3)] == list(story[3:])
    assert out["supporting"][0].tolist() == [False, True, False]  # 4 -> 1; 1 is cut off
    short = encode([qa], vocabulary(), max_sentences=8, max_words=MAX_WORDS)
    assert short["supporting"][0].nonzero().flatten().tolist() == [1, 4]


def test_encode_rejects_unknown_and_overlong_words() -> None:
    qa = QA(
        story=(("mary", "went", "to", "the", "attic"),),
        question=("where", "is", "mary"),
        answer="attic",
        supporting=(0,),
    )
    with pytest.raises(ValueError, match="'attic' is not in the bAbI vocabulary"):
        encode([qa], vocabulary(), max_sentences=4, max_words=MAX_WORDS)
    ok = QA(
        story=(("mary", "went", "to", "the", "office"),),
        question=("where", "is", "mary"),
        answer="office",
        supporting=(0,),
    )
    with pytest.raises(ValueError, match="max_words=4"):
        encode([ok], vocabulary(), max_sentences=4, max_words=4)
    with pytest.raises(ValueError, match="max_sentences"):
        encode([ok], vocabulary(), max_sentences=0, max_words=4)
