"""The algorithmic patterns of Joulin & Mikolov 2015, "Inferring Algorithmic Patterns with
Stack-Augmented Recurrent Nets" (NIPS 28), sections 2 and 5.1: predict the next symbol of a
stream of strings drawn from aⁿbⁿ, aⁿbⁿcⁿ, aⁿbⁿcⁿdⁿ, aⁿb²ⁿ, aⁿbᵐcⁿ⁺ᵐ, or the memorization
language (a string, a separator, the string reversed).

The model reads one symbol per step, one-hot over the task's alphabet (a plain per-step input,
(B, T, alphabet)), and writes logits for the next symbol (B, T, alphabet); the loss is
cross-entropy (:func:`~cogdsl.tasks.base.class_loss`) and an error is a wrong symbol
(:func:`~cogdsl.tasks.base.wrong_classes`). As in the paper (Table 1), only the symbols that
are determined by what came before are scored: the mask is 1 at a step exactly when the
symbol it must predict is determined, so a sequence is "perfect" when its whole deterministic
part is right -- the paper's measure of a correctly predicted sequence (section 5.1).

**Encoding.** A row is ``concat`` generated strings one after another, followed by the first
symbol of one more (the paper's unbroken stream, section 2: the model is never told where a
string ends). Step ``t`` reads stream symbol ``t`` and its target is stream symbol ``t + 1``,
so ``T`` is the rows' total string length; aⁿbⁿ with ``n = 3``, ``concat = 1``::

             t:  0 1 2 3 4 5
    inputs       a a a b b b      one-hot rows: a = 0, b = 1
    targets      a a b b b a      the next symbol; the last is the next string's first a
    mask         0 0 0 1 1 1      scored once the first b has been read

Each string has a *pivot*, the last symbol that cannot be predicted (the first b, the first c
of aⁿbᵐcⁿ⁺ᵐ, the separator of a mirrored string); every symbol after it is scored, and so is
the next string's first symbol for the counting tasks (it is always ``a``) but not for
``mirror`` (a random symbol). Below, one string of each task and the next string's first
symbol after ``|``; ``^`` marks the scored symbols (the paper's bold ones)::

    anbn      n = 3            a a a b b b | a          alphabet a b
                                       ^ ^   ^
    anbncn    n = 2            a a b b c c | a          alphabet a b c
                                     ^ ^ ^   ^
    anbncndn  n = 2            a a b b c c d d | a      alphabet a b c d
                                     ^ ^ ^ ^ ^   ^
    anb2n     n = 2            a a b b b b | a          alphabet a b
                                     ^ ^ ^   ^
    anbmcnm   n = 2, m = 1     a a b c c c | a          alphabet a b c; drawn: n + m = 3
                                       ^ ^   ^
    mirror    n = 3            0 1 1 = 1 1 0 | 1        alphabet 0 .. symbols-1, then = (id symbols)
                                       ^ ^ ^

**Lengths.** ``n`` is drawn per string, uniformly from ``[min_n, max_n]`` (independently for
every string of a row, as the paper's generator does), and shorter rows are padded at the end
to the batch's longest: a padded step reads all zeros, has target 0 and mask 0. Per string
rather than per batch, because the strings concatenated in one row need their own ``n``
anyway, and because every batch then covers the whole training range. ``sample``'s ``length``
fixes ``n`` for every string of the batch, and may exceed ``max_n`` (generalisation tests, as
the paper's test at every ``n`` up to 60). For ``anbmcnm``, ``n`` is the total ``n + m`` (the
length of the c block): the paper bounds ``n + m < 20`` (Table 2), and its released code
(facebook/Stack-RNN, ``task.h``) draws the total and then ``m`` uniformly from ``1 ..
total - 1``; here too, so ``length = 40`` gives varied strings with 40 c's, not 1000 copies
of a²⁰b²⁰c⁴⁰. For ``mirror``, ``n`` is the length of the string before the separator, whose
symbols are uniform over ``0 .. symbols-1``.

The paper trains on ``n`` up to ``N < 20`` (with a curriculum that raises ``N`` every few
epochs, not done here) and tests on ``n`` up to 60; the defaults are ``min_n = 1`` (``2`` for
``anbmcnm``), ``max_n = 19``; the paper's memorization results use a two-symbol alphabet
(``symbols = 2``, Figure 2).

``batch.info["n"]`` holds each string's ``n`` (B, concat); ``anbmcnm`` adds ``info["m"]``.
"""

from __future__ import annotations

import random
from typing import ClassVar

import torch
import torch.nn.functional as F

from cogdsl.tasks.base import Batch, Task, TaskParam, ce_per_sequence, wrong_classes

# Strings are built symbol by symbol in Python: n up to 10,000 (a string of at most 4n + 1 symbols) and up to
# 100 strings a row keep a row under about 4·10**6 symbols.
MAX_N = 10_000
MAX_CONCAT = 100


def _length_params(min_n: int, minimum: int, what: str) -> tuple[TaskParam, ...]:
    return (
        TaskParam("min_n", int, min_n, minimum=minimum, maximum=MAX_N, doc=f"smallest {what} drawn in training"),
        TaskParam("max_n", int, 19, minimum=minimum, maximum=MAX_N,
                  doc=f"largest {what} drawn in training (the paper: < 20)"),
        TaskParam("concat", int, 1, minimum=1, maximum=MAX_CONCAT,
                  doc="strings concatenated into each row, one stream"),
    )


class FormalLanguageTask(Task):
    """Base of the next-symbol prediction tasks: a subclass builds one string and names its pivot."""

    params: ClassVar[tuple[TaskParam, ...]] = _length_params(1, 1, "n")
    constraints: ClassVar[tuple[tuple[str, str], ...]] = (("min_n", "max_n"),)
    length_params: ClassVar[tuple[str, str] | None] = ("min_n", "max_n")
    loss = "ce"
    error_unit = "wrong symbols"
    next_scored: ClassVar[bool] = True  # whether the next string's first symbol is determined
    min_n: int
    max_n: int
    concat: int

    @property
    def alphabet(self) -> int:
        """How many symbols the stream uses (the one-hot width)."""
        raise NotImplementedError

    @property
    def input_size(self) -> int:
        return self.alphabet

    @property
    def output_size(self) -> int:
        return self.alphabet

    def string(self, n: int, rng: random.Random) -> tuple[list[int], int, dict[str, int]]:
        """One string drawn for ``n``: its symbol ids, its pivot (the index of the last symbol that
        cannot be predicted; every later one can) and any other drawn facts for ``Batch.info``."""
        raise NotImplementedError

    def first_symbol(self, rng: random.Random) -> int:
        """The first symbol of one more string, the target of a row's last step."""
        return 0

    def sample(self, batch: int, generator: torch.Generator, length: int | None = None) -> Batch:
        """Draw ``batch`` rows; ``length`` = None draws ``n`` per string, else every string has ``n = length``."""
        batch = self._check_batch(batch)
        return self._rows(batch, None if length is None else self._resolve_length(length, generator), generator)

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        return self._rows(batch, length, generator)

    def _rows(self, batch: int, length: int | None, generator: torch.Generator) -> Batch:
        # One draw from the generator seeds a python RNG that drives every string of the batch.
        rng = random.Random(int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)))
        lo, hi = self.length_range()
        streams: list[list[int]] = []
        scored: list[list[float]] = []
        info: dict[str, list[list[int]]] = {}
        for _ in range(batch):
            stream: list[int] = []
            predictable: list[float] = []
            facts: dict[str, list[int]] = {}
            for _ in range(self.concat):
                n = length if length is not None else rng.randint(lo, hi)
                symbols, pivot, drawn = self.string(n, rng)
                stream += symbols
                # Whether the symbol after each one is determined: after the pivot, yes; after the string's
                # last symbol comes the next string's first (the next in this row, or the one appended below).
                predictable += [float(pivot <= j) for j in range(len(symbols) - 1)] + [float(self.next_scored)]
                for key, value in {"n": n, **drawn}.items():
                    facts.setdefault(key, []).append(value)
            stream.append(self.first_symbol(rng))
            streams.append(stream)
            scored.append(predictable)
            for key, values in facts.items():
                info.setdefault(key, []).append(values)
        return self._batch(streams, scored, info, generator.device)

    def _batch(self, streams: list[list[int]], scored: list[list[float]], info: dict[str, list[list[int]]],
               device: torch.device) -> Batch:
        width = max(len(s) for s in streams)  # T + 1: the longest row's steps and its last target
        ids = torch.tensor([s + [0] * (width - len(s)) for s in streams], device=device)  # (B, T + 1)
        mask = torch.tensor([p + [0.0] * (width - 1 - len(p)) for p in scored], device=device)  # (B, T)
        present = torch.tensor([[1.0] * (len(s) - 1) + [0.0] * (width - len(s)) for s in streams], device=device)
        inputs = F.one_hot(ids[:, :-1], self.alphabet).float() * present.unsqueeze(-1)  # (B, T, alphabet)
        facts = {key: torch.tensor(values, device=device) for key, values in info.items()}  # each (B, concat)
        return Batch(inputs, ids[:, 1:], mask, facts)

    def sequence_losses(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return ce_per_sequence(logits, batch)

    def errors(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return wrong_classes(logits, batch)


class CountingTask(FormalLanguageTask):
    """Base of the tasks aⁿ b^(k₁n) c^(k₂n) …: blocks of consecutive symbols whose lengths are multiples of n."""

    blocks: ClassVar[tuple[int, ...]]  # the multiple of n of each block: (1, 1) is aⁿbⁿ, (1, 2) aⁿb²ⁿ

    @property
    def alphabet(self) -> int:
        return len(self.blocks)

    def string(self, n: int, rng: random.Random) -> tuple[list[int], int, dict[str, int]]:
        symbols = [s for s, times in enumerate(self.blocks) for _ in range(times * n)]
        return symbols, self.blocks[0] * n, {}  # the pivot: the first b


class AnBnTask(CountingTask):
    """aⁿbⁿ: predict the b's and the next string's a once the first b is read."""

    name = "anbn"
    length_doc: ClassVar[str] = (
        "n, the count of every string of the batch (instead of one drawn per string from [min_n, max_n]); "
        "T = concat·2n steps"
    )
    sizes_doc: ClassVar[str] = "input 2 (one-hot a, b); output 2"
    blocks = (1, 1)


class AnBnCnTask(CountingTask):
    """aⁿbⁿcⁿ: predict the rest of the b's, the c's and the next a once the first b is read."""

    name = "anbncn"
    length_doc: ClassVar[str] = (
        "n, the count of every string of the batch (instead of one drawn per string from [min_n, max_n]); "
        "T = concat·3n steps"
    )
    sizes_doc: ClassVar[str] = "input 3 (one-hot a, b, c); output 3"
    blocks = (1, 1, 1)


class AnBnCnDnTask(CountingTask):
    """aⁿbⁿcⁿdⁿ: predict the rest of the b's, the c's, the d's and the next a once the first b is read."""

    name = "anbncndn"
    length_doc: ClassVar[str] = (
        "n, the count of every string of the batch (instead of one drawn per string from [min_n, max_n]); "
        "T = concat·4n steps"
    )
    sizes_doc: ClassVar[str] = "input 4 (one-hot a, b, c, d); output 4"
    blocks = (1, 1, 1, 1)


class AnB2nTask(CountingTask):
    """aⁿb²ⁿ: predict the other 2n - 1 b's and the next a once the first b is read."""

    name = "anb2n"
    length_doc: ClassVar[str] = (
        "n, the count of every string of the batch (instead of one drawn per string from [min_n, max_n]); "
        "T = concat·3n steps"
    )
    sizes_doc: ClassVar[str] = "input 2 (one-hot a, b); output 2"
    blocks = (1, 2)


class AnBmCnmTask(FormalLanguageTask):
    """aⁿbᵐcⁿ⁺ᵐ (unary addition): predict the c's after the first and the next a; ``n`` counts n + m."""

    name = "anbmcnm"
    length_doc: ClassVar[str] = (
        "n + m, the length of the c block of every string of the batch (at least 2; m is still drawn per string "
        "from 1 .. n + m - 1); T = concat·2(n + m) steps"
    )
    sizes_doc: ClassVar[str] = "input 3 (one-hot a, b, c); output 3"
    params: ClassVar[tuple[TaskParam, ...]] = _length_params(2, 2, "n + m")
    min_length: ClassVar[int] = 2

    @property
    def alphabet(self) -> int:
        return 3

    def string(self, n: int, rng: random.Random) -> tuple[list[int], int, dict[str, int]]:
        m = rng.randint(1, n - 1)
        return [0] * (n - m) + [1] * m + [2] * n, n, {"m": m}  # the pivot: the first c, at n


class MirrorTask(FormalLanguageTask):
    """Memorization: a random string, a separator, the string reversed; predict the reversed string."""

    name = "mirror"
    params: ClassVar[tuple[TaskParam, ...]] = (
        TaskParam("symbols", int, 2, minimum=2, maximum=1024, doc="alphabet of the string (the separator is extra)"),
        *_length_params(1, 1, "string length"),
    )
    next_scored = False
    length_doc: ClassVar[str] = (
        "n, the length of every string of the batch before its separator (instead of one drawn per string from "
        "[min_n, max_n]); T = concat·(2n + 1) steps"
    )
    sizes_doc: ClassVar[str] = "input symbols + 1 (one-hot symbols and the separator); output symbols + 1"
    symbols: int

    @property
    def alphabet(self) -> int:
        """``symbols + 1``: the string's symbols and the separator (id ``symbols``)."""
        return self.symbols + 1

    def string(self, n: int, rng: random.Random) -> tuple[list[int], int, dict[str, int]]:
        text = [rng.randrange(self.symbols) for _ in range(n)]
        return [*text, self.symbols, *reversed(text)], n, {}  # the pivot: the separator

    def first_symbol(self, rng: random.Random) -> int:
        return rng.randrange(self.symbols)
