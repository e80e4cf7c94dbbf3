"""The caption task (:mod:`cogdsl.tasks.caption`): captions against an independent reading of each scene, the
fixed test set, BLEU-4 against hand-computed values, and bad parameters.

The reading of a scene here uses only ``info``'s glyph classes and pixel centres (not the cells the task drew
them in) and the image's pixels, and writes the caption with its own words for counts and plurals."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.tasks import TaskParamError, make_task
from cogdsl.tasks.caption import ROLES, VOCABULARY, WORD_ID, bleu, caption_roles, corpus_bleu, words_of
from cogdsl.training.evaluation import EVAL_SEED
from tests.tiny import write_spec

NUMBER = {1: "a", 2: "two", 3: "three"}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread, as training runs: these small models are many times slower on two threads of a busy
    machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

NAMES = [str(d) for d in range(10)] + ["square", "triangle"]


def read_scene(classes: list[int], centres: list[list[float]]) -> str:
    """The caption of a scene from its glyphs' classes and pixel centres (x, y), by the task's grammar."""
    glyphs = [(c, x, y) for c, (x, y) in zip(classes, centres, strict=True) if c >= 0]
    first, second = sorted({c for c, _, _ in glyphs})
    a = [(x, y) for c, x, y in glyphs if c == first]
    b = [(x, y) for c, x, y in glyphs if c == second]
    if all(ya < yb for _, ya in a for _, yb in b):
        relation = "above"
    elif all(ya > yb for _, ya in a for _, yb in b):
        relation = "below"
    elif all(xa < xb for xa, _ in a for xb, _ in b):
        relation = "left of"
    elif all(xa > xb for xa, _ in a for xb, _ in b):
        relation = "right of"
    else:
        relation = "and"

    def said(cls: int, n: int) -> str:
        return f"{NUMBER[n]} {NAMES[cls]}{'s' if n > 1 else ''}"

    return f"{said(first, len(a))} {relation} {said(second, len(b))}"


def test_captions_say_what_the_scene_shows() -> None:
    task = make_task("caption")
    batch = task.sample(300, torch.Generator().manual_seed(3))
    seen_relations = set()
    images = batch.inputs["image"]
    for n in range(batch.batch_size):
        classes = batch.info["classes"][n].tolist()
        centres = batch.info["centres"][n].tolist()
        caption = " ".join(words_of(batch.targets[n].tolist()))
        assert caption == read_scene(classes, centres), n
        seen_relations.add(caption.split()[2])
        ends = len(caption.split())
        assert batch.mask[n].tolist() == [1.0] * (ends + 1) + [0.0] * (7 - ends - 1)  # the words and one <end>
        assert int(batch.targets[n, ends]) == VOCABULARY.index("<end>")
        for c, (x, y) in zip(classes, centres, strict=True):  # ink around every glyph's centre
            if c >= 0:
                patch = images[n, max(0, int(y) - 3): int(y) + 4, max(0, int(x) - 3): int(x) + 4]
                assert patch.max() > 0.5, (n, c, x, y)
        cells = 24 // 3
        empty = [(r, k) for r in range(3) for k in range(3)
                 if not any(int(y) // cells == r and int(x) // cells == k for c, (x, y) in zip(classes, centres,
                                                                                                strict=True) if c >= 0)]
        for r, k in empty:  # nothing drawn in an empty cell
            assert images[n, r * cells + 1: (r + 1) * cells - 1, k * cells + 1: (k + 1) * cells - 1].max() < 0.05
    assert seen_relations == {"above", "below", "left", "right", "and"}


def test_the_test_set_is_fixed() -> None:
    task = make_task("caption")
    first = list(task.evaluation_batches(150, EVAL_SEED, 100, None))
    again = list(task.evaluation_batches(150, EVAL_SEED, 100, None))
    assert [b.batch_size for b in first] == [100, 50]
    for one, two in zip(first, again, strict=True):
        assert torch.equal(one.inputs["image"], two.inputs["image"])
        assert torch.equal(one.targets, two.targets)
    training = task.sample(100, torch.Generator().manual_seed(0))
    assert not torch.equal(training.inputs["image"], first[0].inputs["image"])


REFERENCE = "a 7 left of two 3s".split()


@pytest.mark.parametrize(("candidate", "expected"), [
    ("a 7 left of two 3s", 1.0),
    # 1-grams 4/6 (a clipped to one), 2-grams 3/5, 3-grams 2/4, 4-grams 1/3; c = r: no brevity penalty
    ("a 7 left of a 3", (4 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25),
    # every n-gram matches, but 5 words against 6: BP = exp(1 - 6/5)
    ("a 7 left of two", math.exp(1 - 6 / 5)),
    # no 3-gram matches: 0, whatever the others
    ("a 7 above two 3s", 0.0),
    # fewer than 4 words: no 4-grams at all
    ("a 7 left", 0.0),
    ("", 0.0),
])
def test_bleu4_by_hand(candidate: str, expected: float) -> None:
    assert bleu(candidate.split(), REFERENCE) == pytest.approx(expected, abs=1e-12)


def test_corpus_bleu4_pools_the_counts() -> None:
    candidates = ["a 7 left of a 3".split(), "two 5s above a square".split()]
    references = [REFERENCE, "two 5s above a square".split()]
    # pooled: 1-grams (4 + 5)/(6 + 5), 2-grams (3 + 4)/(5 + 4), 3-grams (2 + 3)/(4 + 3), 4-grams (1 + 2)/(3 + 2)
    pooled = (9 / 11 * 7 / 9 * 5 / 7 * 3 / 5) ** 0.25
    assert corpus_bleu(candidates, references) == pytest.approx(pooled, abs=1e-12)
    # the brevity penalty of the corpus, not of each sentence: 10 words against 11
    short = ["a 7 left of two".split(), "two 5s above a square".split()]
    assert corpus_bleu(short, references) == pytest.approx(math.exp(1 - 11 / 10), abs=1e-12)


def test_metrics_of_perfect_and_wrong_logits() -> None:
    task = make_task("caption")
    batch = task.sample(8, torch.Generator().manual_seed(1))
    perfect = torch.nn.functional.one_hot(batch.targets, len(VOCABULARY)).float() * 10
    scores = task.metrics(perfect, batch)
    assert scores["exact_caption"].tolist() == [1.0] * 8 and scores["bleu4"].tolist() == [1.0] * 8
    assert task.errors(perfect, batch).tolist() == [0.0] * 8
    wrong = perfect.clone()
    wrong[:, 2] = 0  # the relation's word becomes <end>: the caption stops after its first phrase
    wrong[:, 2, 0] = 10
    scores = task.metrics(wrong, batch)
    assert scores["exact_caption"].tolist() == [0.0] * 8 and scores["bleu4"].tolist() == [0.0] * 8
    # cut after its first phrase: count A and class A still right, the rest missing
    assert [scores[f"{role}_accuracy"].tolist() for role in ROLES] == [[1.0] * 8, [1.0] * 8] + [[0.0] * 8] * 3


@pytest.mark.parametrize(("said", "right"), [
    ("two 3s below a 7", (1, 1, 1, 1, 1)),
    ("two 3s above a 7", (1, 1, 0, 1, 1)),
    ("a 3 below a 7", (0, 0, 1, 1, 1)),          # "a 3" is not "two 3s": the class word has the plural
    ("two 3s below a 9", (1, 1, 1, 1, 0)),
    ("two 3s below 7", (1, 1, 1, 0, 1)),         # no second count: count B missing; 7 is still class B
    ("two 3s left of a 7", (1, 1, 0, 1, 1)),
    ("two 3s", (1, 1, 0, 0, 0)),
])
def test_words_are_scored_by_role(said: str, right: tuple[int, ...]) -> None:
    meant = caption_roles("two 3s below a 7".split())
    assert meant == {"count_a": ("two",), "class_a": ("3s",), "relation": ("below",), "count_b": ("a",),
                     "class_b": ("7",)}
    roles = caption_roles(said.split())
    assert tuple(int(roles[role] == meant[role]) for role in ROLES) == right
    assert caption_roles("a 2 left of three squares".split())["relation"] == ("left", "of")
    # through the metrics: the same caption as logits
    task = make_task("caption")
    batch = task.sample(1, torch.Generator().manual_seed(0))
    ids = [WORD_ID[w] for w in "two 3s below a 7".split()] + [0] * 2
    batch = type(batch)(batch.inputs, torch.tensor([ids]), batch.mask, info=batch.info)
    said_ids = [WORD_ID[w] for w in said.split()] + [0] * (7 - len(said.split()))
    logits = torch.nn.functional.one_hot(torch.tensor([said_ids]), len(VOCABULARY)).float()
    scores = task.metrics(logits, batch)
    assert tuple(int(scores[f"{role}_accuracy"].item()) for role in ROLES) == right


@pytest.mark.parametrize(("params", "param"), [
    ({"size": 16, "grid": 3}, "grid"),  # cells of 5 pixels
    ({"grid": 2, "size": 24, "max_objects": 4, "min_objects": 4}, None),  # fine: 4 cells, 4 glyphs
    ({"min_objects": 4, "max_objects": 3}, "min_objects"),
    ({"max_objects": 5}, "max_objects"),
])
def test_bad_task_parameters(params: dict[str, object], param: str | None) -> None:
    if param is None:
        make_task("caption", **params)
        return
    with pytest.raises(TaskParamError) as info:
        make_task("caption", **params)
    assert info.value.param in (param, "max_objects", "min_objects")


def test_bad_task_parameter_in_a_spec_is_located(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parent.parent / "specs" / "show_attend_tell.cog").read_text()
    bad = text.replace("caption(size=24, grid=3", "caption(size=24, grid=4")
    with pytest.raises(cogdsl.SpecError) as info:
        cogdsl.load(write_spec(tmp_path, bad))
    (diagnostic,) = info.value.diagnostics
    line = next(n for n, row in enumerate(bad.splitlines(), 1) if "grid=4" in row)
    assert diagnostic.span.line == line and "smaller than a glyph" in diagnostic.message
