"""Captions of glyph scenes: write, word by word, a sentence that says what is where in an image.

Xu et al. 2015, "Show, Attend and Tell", caption photographs (Flickr, COCO); this task is the same
problem at the size of a CPU: a scene of two to four glyphs on a coarse grid, and a caption from a
small grammar that the scene determines::

    image (size x size, a grid x grid board)      caption
    +--------+--------+--------+
    |        |   7    |        |                  two 3s below a 7 <end>
    +--------+--------+--------+
    |   3    |        |   3    |                  (3 has the smaller class id: it comes first)
    +--------+--------+--------+
    |        |        |        |
    +--------+--------+--------+

The scene: ``n`` glyphs (``min_objects .. max_objects``), each in its own cell of the ``grid`` x
``grid`` board, of exactly two classes (the digits 0-9 and, with ``shapes``, a square and a
triangle), drawn with :func:`cogdsl.tasks.digits.draw` (the digits' font, a small random rotation,
scale and shear, centred in its cell). The caption names the class with the smaller id first
(``A``), then the other (``B``), each with its count (``a``, ``two``, ``three``; a plural takes
an ``s``: ``two 5s``, ``three squares``), joined by the relation of their cells, the first that
holds of::

    above     every A is in a row above every B
    below     every A is in a row below every B
    left of   every A is in a column left of every B
    right of  every A is in a column right of every B
    and       none of these

so one scene has one caption. Words are ids into :data:`VOCABULARY`; the targets are the caption's
words and ``<end>``, (B, T) with T = 7 (the longest caption and its ``<end>``), padded with
``<end>``; the mask scores each word and the first ``<end>``. The model reads the image whole
(``image`` input) and writes one word per step; an error is a wrong word.

Metrics (:meth:`CaptionTask.metrics`), on each caption cut at its first ``<end>``, the greedy
choice (argmax) at each step: ``exact_caption``, 1 if it is the reference word for word, and
``bleu4``, its sentence BLEU-4 (Papineni et al. 2002) against the reference, :func:`bleu`; and
which words are right by role (:func:`caption_roles`): ``count_a_accuracy``, ``class_a_accuracy``,
``relation_accuracy``, ``count_b_accuracy``, ``class_b_accuracy``. :func:`corpus_bleu` pools the
counts over a test set, as captioning papers report it. The test set is fixed:
:meth:`Task.evaluation_batches` draws it from the evaluation seed.

``info``: ``classes`` (B, max_objects) the class of each glyph (-1: none), ``cells`` (B,
max_objects) its cell (row-major), ``centres`` (B, max_objects, 2) its centre in pixels (x, y),
``relation`` (B,) an index into :data:`RELATIONS`.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch

from cogdsl.tasks.base import (
    Batch,
    ParamValue,
    Task,
    TaskParam,
    TaskParamError,
    ce_per_sequence,
    wrong_classes,
)
from cogdsl.tasks.digits import _UPSAMPLE, GLYPHS, _jitter, draw

SHAPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("square", ("#####", "#...#", "#...#", "#...#", "#...#", "#...#", "#####")),
    ("triangle", ("..#..", "..#..", ".#.#.", ".#.#.", "#...#", "#...#", "#####")),
)
"""Shapes drawn like the digits, 7 rows of 5 columns; class ids 10 and 11."""

CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10)) + tuple(name for name, _ in SHAPES)
COUNTS: tuple[str, ...] = ("a", "two", "three")
RELATIONS: tuple[tuple[str, ...], ...] = (("above",), ("below",), ("left", "of"), ("right", "of"), ("and",))
END = "<end>"
VOCABULARY: tuple[str, ...] = (
    END, *COUNTS, "above", "below", "left", "right", "of", "and",
    *CLASS_NAMES, *(f"{name}s" for name in CLASS_NAMES),
)
"""Every word a caption uses, its id its index: ``<end>`` is 0."""
WORD_ID: dict[str, int] = {word: i for i, word in enumerate(VOCABULARY)}
STEPS = 7
"""Words per caption with its ``<end>``, at most: ``three 5s right of a square <end>``."""
MAX_ROTATION = 8.0
"""Largest rotation of a glyph, degrees either way (smaller than the digits task's: small glyphs)."""


@functools.lru_cache(maxsize=8)
def _bitmaps(device: torch.device) -> torch.Tensor:
    """The 12 glyphs (digits, then shapes) upsampled for ``draw``, (12, 1, 7 x 4, 5 x 4)."""
    rows = [*GLYPHS, *(glyph for _, glyph in SHAPES)]
    table = torch.tensor([[[1.0 if ch == "#" else 0.0 for ch in row] for row in glyph] for glyph in rows])
    table = table.repeat_interleave(_UPSAMPLE, dim=1).repeat_interleave(_UPSAMPLE, dim=2)
    return table.unsqueeze(1).to(device)


def relation_of(rows_a: Sequence[int], cols_a: Sequence[int], rows_b: Sequence[int], cols_b: Sequence[int]) -> int:
    """The index in :data:`RELATIONS` of the first relation that holds of group A to group B (cells' rows and
    columns): above, below, left of, right of, else ``and``."""
    if max(rows_a) < min(rows_b):
        return 0
    if min(rows_a) > max(rows_b):
        return 1
    if max(cols_a) < min(cols_b):
        return 2
    if min(cols_a) > max(cols_b):
        return 3
    return 4


def caption_words(class_a: int, count_a: int, class_b: int, count_b: int, relation: int) -> list[str]:
    """The caption's words (without ``<end>``): ``[count A] [class A] [relation] [count B] [class B]``."""

    def phrase(cls: int, count: int) -> list[str]:
        return [COUNTS[count - 1], CLASS_NAMES[cls] + ("s" if count > 1 else "")]

    return [*phrase(class_a, count_a), *RELATIONS[relation], *phrase(class_b, count_b)]


ROLES: tuple[str, ...] = ("count_a", "class_a", "relation", "count_b", "class_b")
"""The parts of a caption, in order: ``[count A] [class A] [relation] [count B] [class B]``."""
_COUNT_WORDS = frozenset(COUNTS)
_RELATION_WORDS = frozenset(word for relation in RELATIONS for word in relation)


def caption_roles(words: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """A caption's words by role, read by kind of word, so a caption with a word missing or extra still has
    its other roles: the first count word is count A and the second count B, the first class word (``2``,
    ``2s``, ``square``) class A and the second class B, the relation words (``left of``) in order the
    relation. A role with no word is ``()``."""
    counts = [w for w in words if w in _COUNT_WORDS]
    classes = [w for w in words if w not in _COUNT_WORDS and w not in _RELATION_WORDS and w != END]
    relation = tuple(w for w in words if w in _RELATION_WORDS)
    return {"count_a": tuple(counts[:1]), "class_a": tuple(classes[:1]), "relation": relation,
            "count_b": tuple(counts[1:2]), "class_b": tuple(classes[1:2])}


def words_of(ids: Sequence[int]) -> list[str]:
    """Word ids → the words before the first ``<end>``."""
    out = []
    for i in ids:
        if int(i) == 0:
            break
        out.append(VOCABULARY[int(i)])
    return out


def _ngrams(words: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def corpus_bleu(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]], order: int = 4) -> float:
    """BLEU (Papineni et al. 2002) of candidate sentences against one reference each, pooled over the corpus:

        p_n = sum_s sum_g min(count_cand(g), count_ref(g)) / sum_s sum_g count_cand(g)   (n-grams g, n = 1..order)
        BP  = 1 if c > r else exp(1 - r / c)     (c, r: total candidate and reference lengths; 0 if c = 0)
        BLEU = BP exp( (1/order) sum_n log p_n ),    0 when any p_n is 0 (no smoothing)
    """
    matched, total = [0] * order, [0] * order
    c = r = 0
    for candidate, reference in zip(candidates, references, strict=True):
        c, r = c + len(candidate), r + len(reference)
        for n in range(1, order + 1):
            cand, ref = _ngrams(candidate, n), _ngrams(reference, n)
            matched[n - 1] += sum(min(k, ref[g]) for g, k in cand.items())
            total[n - 1] += sum(cand.values())
    if c == 0 or min(matched) == 0:
        return 0.0
    brevity = 1.0 if c > r else math.exp(1.0 - r / c)
    return brevity * math.exp(sum(math.log(m / t) for m, t in zip(matched, total, strict=True)) / order)


def bleu(candidate: Sequence[str], reference: Sequence[str], order: int = 4) -> float:
    """Sentence BLEU: :func:`corpus_bleu` of one sentence."""
    return corpus_bleu([candidate], [reference], order)


class CaptionTask(Task):
    """Caption a scene of two to four glyphs of two classes with their counts and relation (Xu et al. 2015's
    problem, a generated scene and grammar)."""

    name: ClassVar[str] = "caption"
    params: ClassVar[tuple[TaskParam, ...]] = (
        TaskParam("size", int, 24, minimum=16, maximum=128, doc="canvas side in pixels"),
        TaskParam("grid", int, 3, minimum=2, maximum=8, doc="the board is grid x grid cells, a glyph per cell"),
        TaskParam("min_objects", int, 2, minimum=2, maximum=4, doc="fewest glyphs in a scene"),
        TaskParam("max_objects", int, 4, minimum=2, maximum=4, doc="most glyphs in a scene (at most 3 of a class)"),
        TaskParam("shapes", bool, True, doc="a square and a triangle as well as the ten digits"),
    )
    constraints: ClassVar[tuple[tuple[str, str], ...]] = (("min_objects", "max_objects"),)
    length_params: ClassVar[tuple[str, str] | None] = None
    loss = "ce"
    error_unit = "wrong words"
    vocabulary: ClassVar[tuple[str, ...]] = VOCABULARY  # ``cogdsl trace`` titles each step with its word
    items: ClassVar[str] = "images"
    length_doc: ClassVar[str] = (
        "no lengths: the model runs 7 steps, one word each (the longest caption and its end word), and --len is "
        "refused")
    sizes_doc: ClassVar[str] = "image input of side size (pixels); output 34 (one logit per word of the vocabulary)"

    size: int
    grid: int
    min_objects: int
    max_objects: int
    shapes: bool

    @classmethod
    def validate_params(cls, params: Mapping[str, object]) -> dict[str, ParamValue]:
        """The declarations' checks, and: a cell is at least 7 pixels (a glyph's height), and the board has a cell
        for every glyph."""
        values = super().validate_params(params)
        size, grid = int(values["size"]), int(values["grid"])
        if size < 7 * grid:
            raise TaskParamError(f"task 'caption': a {grid} x {grid} board on a {size}-pixel canvas has cells of "
                                 f"{size // grid} pixels, smaller than a glyph (7)", cls.name, "grid")
        if grid * grid < int(values["max_objects"]):
            raise TaskParamError(f"task 'caption': a {grid} x {grid} board has fewer cells than max_objects "
                                 f"{values['max_objects']}", cls.name, "grid")
        return values

    @property
    def input_size(self) -> int:
        """``size``, the image side."""
        return self.size

    @property
    def output_size(self) -> int:
        """34, one logit per word of :data:`VOCABULARY`."""
        return len(VOCABULARY)

    @property
    def input_kinds(self) -> dict[str, int]:
        """One whole image, ``size`` x ``size``."""
        return {"image": self.size}

    @property
    def classes(self) -> int:
        """12 with the shapes, else 10."""
        return len(CLASS_NAMES) if self.shapes else 10

    def length_range(self) -> tuple[int, int]:
        """Always ``(7, 7)``: a word per step, the longest caption and its ``<end>``."""
        return STEPS, STEPS

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        dev = generator.device
        cell = self.size / self.grid
        most = self.max_objects
        counts = torch.randint(self.min_objects, most + 1, (batch,), generator=generator, device=dev).tolist()
        classes = torch.full((batch, most), -1, dtype=torch.long)
        cells = torch.full((batch, most), -1, dtype=torch.long)
        relation = torch.zeros(batch, dtype=torch.long)
        targets = torch.zeros(batch, length, dtype=torch.long)
        mask = torch.zeros(batch, length)
        for b, n in enumerate(counts):
            place = torch.randperm(self.grid * self.grid, generator=generator, device=dev)[:n].tolist()
            pair = sorted(torch.randperm(self.classes, generator=generator, device=dev)[:2].tolist())
            count_a = int(torch.randint(1, n, (1,), generator=generator, device=dev))  # 1 .. n - 1 of class A
            owner = torch.randperm(n, generator=generator, device=dev).tolist()
            group_a = [place[i] for i in owner[:count_a]]
            group_b = [place[i] for i in owner[count_a:]]
            for k, where in enumerate(group_a + group_b):
                classes[b, k] = pair[0] if k < count_a else pair[1]
                cells[b, k] = where
            relation[b] = relation_of([c // self.grid for c in group_a], [c % self.grid for c in group_a],
                                      [c // self.grid for c in group_b], [c % self.grid for c in group_b])
            words = caption_words(pair[0], count_a, pair[1], n - count_a, int(relation[b]))
            ids = [WORD_ID[w] for w in words] + [0]
            targets[b, : len(ids)] = torch.tensor(ids[:length])
            mask[b, : min(len(ids), length)] = 1.0

        present = classes >= 0
        flat_classes, flat_cells = classes[present], cells[present]  # (N,) every glyph of the batch
        rows, cols = flat_cells // self.grid, flat_cells % self.grid
        centre_px = torch.stack([(cols.float() + 0.5) * cell, (rows.float() + 0.5) * cell], -1)  # (N, 2) x, y
        angle, scale, shear = _jitter(flat_classes.numel(), generator)
        angle = angle * (MAX_ROTATION / 15.0)
        glyphs = draw(flat_classes.to(dev), (2.0 * centre_px / self.size - 1.0).to(dev), self.size, 7.0,
                      angle, scale * 0.9, shear, bitmaps=_bitmaps(dev)[flat_classes.to(dev)])  # (N, S, S)
        images = torch.zeros(batch, most, self.size, self.size, device=dev)
        images[present.to(dev)] = glyphs
        centres = torch.full((batch, most, 2), -1.0)
        centres[present] = centre_px
        info = {"classes": classes.to(dev), "cells": cells.to(dev), "centres": centres.to(dev),
                "relation": relation.to(dev)}
        return Batch({"image": images.amax(1)}, targets.to(dev), mask.to(dev), info=info)

    def sequence_losses(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return ce_per_sequence(logits, batch)

    def errors(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return wrong_classes(logits, batch)

    def test_set_scores(self, model: torch.nn.Module, sequences: int = 1000) -> dict[str, float]:
        """``corpus_bleu4`` of the greedy captions of the fixed test set (:func:`caption_scores`)."""
        return {"corpus_bleu4": caption_scores(model, self, sequences)["corpus_bleu4"]}

    def metrics(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """``exact_caption`` and sentence ``bleu4`` of the greedy caption (argmax at each step, cut at its first
        ``<end>``) against the reference, and whether each role's words are the reference's
        (:func:`caption_roles`: ``ROLE_accuracy``), each (B,)."""
        said = [words_of(row) for row in logits.argmax(-1).tolist()]
        meant = [words_of(row) for row in batch.targets.tolist()]
        exact = [float(s == m) for s, m in zip(said, meant, strict=True)]
        scores = [bleu(s, m) for s, m in zip(said, meant, strict=True)]
        said_roles, meant_roles = [caption_roles(s) for s in said], [caption_roles(m) for m in meant]
        roles = {f"{role}_accuracy": torch.tensor([float(s[role] == m[role])
                                                   for s, m in zip(said_roles, meant_roles, strict=True)])
                 for role in ROLES}
        return {"exact_caption": torch.tensor(exact), "bleu4": torch.tensor(scores), **roles}


@torch.no_grad()
def caption_scores(model: torch.nn.Module, task: CaptionTask, sequences: int = 1000, seed: int | None = None
                   ) -> dict[str, float]:
    """Corpus BLEU-4 (:func:`corpus_bleu`), mean sentence BLEU-4 and exact-caption accuracy of ``model``'s greedy
    captions on the fixed test set: the ``sequences`` images :meth:`Task.evaluation_batches` draws from ``seed``
    (default: the evaluation seed of ``cogdsl eval``). The model runs in eval mode (restored after)."""
    from cogdsl.training.evaluation import EVAL_SEED, model_inputs

    was_training = model.training
    model.eval()
    said: list[list[str]] = []
    meant: list[list[str]] = []
    try:
        for batch in task.evaluation_batches(sequences, EVAL_SEED if seed is None else seed, 100, None):
            logits = model(model_inputs(model, batch.inputs), steps=batch.steps, raw=True)
            said += [words_of(row) for row in logits.argmax(-1).tolist()]
            meant += [words_of(row) for row in batch.targets.tolist()]
    finally:
        model.train(was_training)
    return {"corpus_bleu4": corpus_bleu(said, meant),
            "sentence_bleu4": sum(bleu(s, m) for s, m in zip(said, meant, strict=True)) / len(said),
            "exact_caption": sum(s == m for s, m in zip(said, meant, strict=True)) / len(said)}
