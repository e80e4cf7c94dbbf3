"""Tests for the formal-language tasks of :mod:`cogdsl.tasks.formal` (Joulin & Mikolov 2015).

Each batch is decoded back to python lists of symbols (the argmax of each one-hot row, up to the
row's last non-zero step) and split into strings by plain python parsers written here; every string
must be in its language with ``n`` in range; the targets must be the inputs shifted by one step;
the mask is compared with an independent rule stated on the symbols (for the counting tasks: a
symbol is scored iff the one before it is not ``a``). Loss and errors, determinism, ``length``,
parameter validation and a short end-to-end training run are checked too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.tasks import (
    TASKS,
    AnB2nTask,
    AnBmCnmTask,
    AnBnCnDnTask,
    AnBnCnTask,
    AnBnTask,
    Batch,
    MirrorTask,
    Task,
    TaskParamError,
    get_task,
    make_task,
)
from cogdsl.tasks.base import class_loss, wrong_classes
from cogdsl.training.loop import config_from_spec, evaluate, train

A, B, C, D = 0, 1, 2, 3
COUNTING = {"anbn": (1, 1), "anbncn": (1, 1, 1), "anbncndn": (1, 1, 1, 1), "anb2n": (1, 2)}  # block multiples
NAMES = (*COUNTING, "anbmcnm", "mirror")
CLASSES = {"anbn": AnBnTask, "anbncn": AnBnCnTask, "anbncndn": AnBnCnDnTask, "anb2n": AnB2nTask,
           "anbmcnm": AnBmCnmTask, "mirror": MirrorTask}
ALPHABET = {"anbn": 2, "anbncn": 3, "anbncndn": 4, "anb2n": 2, "anbmcnm": 3}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def small(name: str, **params: object) -> Task:
    base: dict[str, object] = {"min_n": 2, "max_n": 6} if name == "anbmcnm" else {"min_n": 1, "max_n": 5}
    if name == "mirror":
        base["symbols"] = 3
    return make_task(name, **{**base, **params})


def rows(batch: Batch) -> list[tuple[list[int], int]]:
    """Each row's stream of input symbols (padding cut off) and its last real step's target."""
    assert isinstance(batch.inputs, torch.Tensor)
    one_hot = batch.inputs
    assert ((one_hot == 0) | (one_hot == 1)).all()
    sums = one_hot.sum(-1)
    assert ((sums == 0) | (sums == 1)).all()
    out = []
    for b in range(batch.batch_size):
        steps = int(sums[b].sum())
        # Real steps first, then only padding.
        assert sums[b, :steps].tolist() == [1.0] * steps and sums[b, steps:].sum() == 0
        out.append((one_hot[b, :steps].argmax(-1).tolist(), int(batch.targets[b, steps - 1])))
    return out


# -- parsers: a stream into strings, each with its n (and m) ------------------------------------


def split_counting(stream: list[int], blocks: tuple[int, ...]) -> list[int]:
    """The n of each string of a counting stream; fails unless every string is a^(k1 n) b^(k2 n) ..."""
    ns, i = [], 0
    while i < len(stream):
        n = 0
        while i < len(stream) and stream[i] == A:
            n, i = n + 1, i + 1
        assert n >= 1, f"a string must start with a: {stream}"
        for symbol, times in enumerate(blocks):
            if symbol == A:
                continue
            assert stream[i : i + times * n] == [symbol] * (times * n), f"bad block {symbol} at {i}: {stream}"
            i += times * n
        ns.append(n)
    return ns


def split_anbmcnm(stream: list[int]) -> list[tuple[int, int]]:
    """(n, m) of each string a^n b^m c^(n+m), n, m >= 1."""
    out, i = [], 0
    while i < len(stream):
        counts = []
        for symbol in (A, B):
            start = i
            while i < len(stream) and stream[i] == symbol:
                i += 1
            counts.append(i - start)
        n, m = counts
        assert n >= 1 and m >= 1, stream
        assert stream[i : i + n + m] == [C] * (n + m), stream
        i += n + m
        out.append((n, m))
    return out


def split_mirror(stream: list[int], symbols: int) -> list[list[int]]:
    """The string before the separator of each w = w^R of a mirror stream."""
    out, i = [], 0
    while i < len(stream):
        j = stream.index(symbols, i)
        word = stream[i:j]
        assert len(word) >= 1 and all(0 <= s < symbols for s in word), stream
        assert stream[j + 1 : j + 1 + len(word)] == word[::-1], stream
        i = j + 1 + len(word)
        out.append(word)
    return out


def expected_mask(name: str, stream: list[int], last: int, symbols: int = 0) -> list[float]:
    """Independent rule: is target t (stream[t + 1], or ``last`` for the last step) determined?"""
    full = [*stream, last]
    if name in COUNTING:  # determined iff the symbol read is not an a (after the first b, or a string's end)
        return [float(full[t] != A) for t in range(len(stream))]
    if name == "anbmcnm":  # determined iff the symbol read is a c (the first c fixes n + m)
        return [float(full[t] == C) for t in range(len(stream))]
    mask, t = [], 0  # mirror: the steps that read the separator or the mirrored half, but its last
    for word in split_mirror(stream, symbols):
        mask += [0.0] * len(word) + [1.0] * len(word) + [0.0]
        t += 2 * len(word) + 1
    assert t == len(stream)
    return mask


def decoded_ns(task: Task, stream: list[int]) -> list[int]:
    """What ``length`` fixes, per string: n (n + m for anbmcnm, the word length for mirror)."""
    if task.name in COUNTING:
        return split_counting(stream, COUNTING[task.name])
    if task.name == "anbmcnm":
        return [n + m for n, m in split_anbmcnm(stream)]
    return [len(word) for word in split_mirror(stream, task.config["symbols"])]  # type: ignore[arg-type]


# -- the strings, targets and mask ----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("concat", [1, 3])
def test_strings_are_in_the_language_with_n_in_range(name: str, seed: int, concat: int) -> None:
    task = small(name, concat=concat)
    batch = task.sample(16, gen(seed))
    lo, hi = task.length_range()
    for b, (stream, last) in enumerate(rows(batch)):
        ns = decoded_ns(task, stream)
        assert len(ns) == concat
        assert all(lo <= n <= hi for n in ns), ns
        assert batch.info["n"][b].tolist() == ns
        if name == "mirror":
            assert 0 <= last < 3  # the next string's first symbol, never the separator
        else:
            assert last == A  # the next string's first a
        if name == "anbmcnm":
            assert batch.info["m"][b].tolist() == [m for _, m in split_anbmcnm(stream)]
    assert batch.steps == max(len(stream) for stream, _ in rows(batch))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_targets_are_the_next_symbol_and_padding_is_silent(name: str, seed: int) -> None:
    task = small(name, concat=2)
    batch = task.sample(12, gen(seed))
    assert batch.targets.dtype == torch.long and batch.mask.dtype == torch.float32
    assert batch.inputs.dtype == torch.float32  # type: ignore[union-attr]
    assert batch.inputs.shape == (12, batch.steps, task.input_size)  # type: ignore[union-attr]
    assert batch.targets.shape == batch.mask.shape == (12, batch.steps)
    for b, (stream, last) in enumerate(rows(batch)):
        steps = len(stream)
        assert batch.targets[b, :steps].tolist() == [*stream[1:], last]
        assert batch.targets[b, steps:].tolist() == [0] * (batch.steps - steps)
        assert batch.mask[b, steps:].tolist() == [0.0] * (batch.steps - steps)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("concat", [1, 3])
def test_mask_marks_exactly_the_predictable_steps(name: str, seed: int, concat: int) -> None:
    task = small(name, concat=concat)
    batch = task.sample(16, gen(seed))
    for b, (stream, last) in enumerate(rows(batch)):
        assert batch.mask[b, : len(stream)].tolist() == expected_mask(name, stream, last, symbols=3)


def test_the_paper_examples_by_hand() -> None:
    """Table 1 of the paper, one string each: the scored targets are its bold symbols."""
    cases = {
        "anbn": ([A, A, A, B, B, B], [0, 0, 0, 1, 1, 1]),
        "anbncn": ([A, A, B, B, C, C], [0, 0, 1, 1, 1, 1]),
        "anbncndn": ([A, A, B, B, C, C, D, D], [0, 0, 1, 1, 1, 1, 1, 1]),
        "anb2n": ([A, A, B, B, B, B], [0, 0, 1, 1, 1, 1]),
    }
    for name, (stream, mask) in cases.items():
        batch = make_task(name).sample(1, gen(0), length=stream.count(A))
        assert rows(batch) == [(stream, A)]
        assert batch.mask[0].tolist() == mask
    batch = make_task("anbmcnm").sample(40, gen(0), length=3)
    assert {tuple(stream) for stream, _ in rows(batch)} == {(A, B, B, C, C, C), (A, A, B, C, C, C)}
    assert batch.mask.tolist() == [[0, 0, 0, 1, 1, 1]] * 40
    batch = make_task("mirror", symbols=2).sample(1, gen(0), length=3)
    ((stream, _),) = rows(batch)
    assert stream[3] == 2 and stream[4:] == stream[2::-1]
    assert batch.mask[0].tolist() == [0, 0, 0, 1, 1, 1, 0]


# -- lengths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [2, 7, 25])
def test_length_fixes_n_for_every_string(name: str, length: int) -> None:
    task = small(name, concat=2)
    batch = task.sample(8, gen(length), length=length)
    assert batch.info["n"].tolist() == [[length, length]] * 8
    for stream, _ in rows(batch):
        assert decoded_ns(task, stream) == [length, length]
        # Every row has the same length: no padding.
        assert len(stream) == batch.steps
    if name == "anbmcnm" and length > 2:  # n + m is fixed, the split is still drawn
        assert len({tuple(m) for m in batch.info["m"].tolist()}) > 1


@pytest.mark.parametrize("name", NAMES)
def test_n_is_drawn_per_string_over_the_whole_range(name: str) -> None:
    task = small(name, concat=2)
    lo, hi = task.length_range()
    generator = gen(0)
    seen: set[int] = set()
    mixed = 0
    for _ in range(30):
        batch = task.sample(4, generator)
        ns = batch.info["n"]
        seen.update(ns.flatten().tolist())
        mixed += int(len(set(ns.flatten().tolist())) > 1)
    assert seen == set(range(lo, hi + 1))
    assert mixed > 20  # one batch holds several n, not one n per batch


@pytest.mark.parametrize("name", NAMES)
def test_fixed_n_when_min_n_equals_max_n(name: str) -> None:
    task = small(name, min_n=4, max_n=4)
    batch = task.sample(6, gen(0))
    assert batch.info["n"].flatten().tolist() == [4] * 6


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [0, -1, True, 2.0])
def test_bad_length_raises(name: str, length: object) -> None:
    with pytest.raises(ValueError, match="length"):
        small(name).sample(2, gen(0), length=length)  # type: ignore[arg-type]


def test_anbmcnm_needs_room_for_n_and_m() -> None:
    with pytest.raises(ValueError, match="length must be an int >= 2"):
        make_task("anbmcnm").sample(2, gen(0), length=1)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_batch_and_another_seed_another(name: str) -> None:
    task = small(name, concat=2)
    first, again, other = (task.sample(8, gen(s)) for s in (42, 42, 43))
    assert torch.equal(first.inputs, again.inputs)  # type: ignore[arg-type]
    assert torch.equal(first.targets, again.targets) and torch.equal(first.mask, again.mask)
    assert all(torch.equal(first.info[k], again.info[k]) for k in first.info)
    assert first.steps != other.steps or not torch.equal(first.inputs, other.inputs)  # type: ignore[arg-type]
    fixed = [task.sample(8, gen(s), length=9) for s in (5, 5)]
    assert torch.equal(fixed[0].inputs, fixed[1].inputs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", NAMES)
def test_evaluation_batches_are_fixed_by_the_seed(name: str) -> None:
    task = small(name)
    first = list(task.evaluation_batches(10, seed=3, batch=4, length=8))
    again = list(task.evaluation_batches(10, seed=3, batch=4, length=8))
    assert [b.batch_size for b in first] == [4, 4, 2]
    for one, two in zip(first, again, strict=True):
        assert torch.equal(one.inputs, two.inputs)  # type: ignore[arg-type]
        assert (one.info["n"] == 8).all()


# -- parameters and declarations --------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_declarations(name: str) -> None:
    task = make_task(name)
    assert TASKS[name] is get_task(name) is CLASSES[name]
    assert task.loss == "ce" and task.error_unit == "wrong symbols"
    size = 3 if name == "mirror" else ALPHABET[name]
    assert task.input_kinds == {"vector": size}
    assert task.input_size == task.output_size == size
    expected = {"min_n": 2 if name == "anbmcnm" else 1, "max_n": 19, "concat": 1}
    assert task.config == ({"symbols": 2, **expected} if name == "mirror" else expected)
    assert task.length_range() == (expected["min_n"], 19)


def test_mirror_alphabet_is_the_symbols_and_a_separator() -> None:
    task = make_task("mirror", symbols=5, min_n=3, max_n=3)
    assert task.input_size == task.output_size == 6
    for word in split_mirror(rows(task.sample(20, gen(1)))[0][0], 5):
        assert len(word) == 3


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("params", "bad"), [
    ({"min_n": 5, "max_n": 4}, "min_n"),
    ({"max_n": 3, "min_n": 4}, "min_n"),
    ({"min_n": 0}, "min_n"),
    ({"max_n": 0}, "max_n"),
    ({"min_n": True}, "min_n"),
    ({"max_n": 2.5}, "max_n"),
    ({"max_n": "9"}, "max_n"),
    ({"concat": 0}, "concat"),
    ({"n": 3}, "n"),
])
def test_bad_parameters_raise_task_param_error(name: str, params: dict[str, object], bad: str) -> None:
    with pytest.raises(TaskParamError) as info:
        make_task(name, **params)
    assert info.value.task == name
    assert info.value.param == bad
    assert bad in str(info.value)


@pytest.mark.parametrize(("name", "params", "bad"), [
    ("anbmcnm", {"min_n": 1}, "min_n"),
    ("mirror", {"symbols": 1}, "symbols"),
    ("mirror", {"symbols": 3.0}, "symbols"),
    ("anbn", {"symbols": 3}, "symbols"),
])
def test_task_specific_bad_parameters(name: str, params: dict[str, object], bad: str) -> None:
    with pytest.raises(TaskParamError) as info:
        make_task(name, **params)
    assert info.value.param == bad


# -- loss and errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_loss_and_errors_count_only_scored_symbols(name: str) -> None:
    task = small(name, concat=2)
    batch = task.sample(6, gen(9))
    size = task.output_size
    perfect = torch.nn.functional.one_hot(batch.targets, size).float() * 40  # (B, T, size)
    assert torch.equal(task.loss_of(perfect, batch), class_loss(perfect, batch))
    assert float(task.loss_of(perfect, batch)) < 1e-9
    assert task.errors(perfect, batch).tolist() == [0.0] * 6
    scored = batch.mask.nonzero().tolist()
    unscored = (batch.mask == 0).nonzero().tolist()
    wrong = perfect.clone()
    flipped = {}
    for b, t in scored[::3]:
        wrong[b, t] = torch.roll(wrong[b, t], 1)  # the argmax moves to another symbol
        flipped[b] = flipped.get(b, 0) + 1
    for b, t in unscored[::2]:
        wrong[b, t] = torch.roll(wrong[b, t], 1)  # not scored: not counted
    assert torch.equal(task.errors(wrong, batch), wrong_classes(wrong, batch))
    assert task.errors(wrong, batch).tolist() == [float(flipped.get(b, 0)) for b in range(6)]
    assert float(task.loss_of(wrong, batch)) == pytest.approx(40.0 * len(scored[::3]) / 6, rel=1e-4)


# -- end to end -------------------------------------------------------------------------------------------

TINY_ANBN = """\
cogdsl: 1
model: tiny_anbn
inputs:
  x: 2
outputs:
  y: {size: 2, from: [ctrl], activation: softmax}
blocks:
  ctrl: {kind: lstm, hidden: 16, from: [x]}
train:
  task: {name: anbn, min_n: 1, max_n: 6}
  optimizer: {name: adam, lr: 1.0e-2}
  batch: 8
  steps: 30
  clip: 10
  seed: 0
  threads: 1
  log_every: 10
  eval_every: 30
  eval_size: 32
  checkpoint_every: 30
"""


def test_an_lstm_trains_on_anbn(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    path = tmp_path / "tiny_anbn.yaml"
    path.write_text(TINY_ANBN, encoding="utf-8")
    spec = cogdsl.load(path)
    config = config_from_spec(spec)
    assert config.task == "anbn"
    try:
        result = train(spec, config, tmp_path / "run", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert result.step == 30 and result.stopped == "done"
    assert result.loss is not None and torch.isfinite(torch.tensor(result.loss))
    assert result.eval is not None and result.eval.length == 6 and result.eval.unit == "wrong symbols"
    assert 0.0 <= result.eval.perfect <= 1.0
    longer = evaluate(result.model, make_task("anbn", min_n=1, max_n=6), length=12, sequences=16, batch=8)
    assert longer.length == 12 and longer.sequences == 16 and longer.bit_errors <= 12  # 12 scored steps a row
