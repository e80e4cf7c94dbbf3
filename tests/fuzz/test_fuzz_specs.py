"""Fuzzing the front end with Hypothesis (issue 21): any spec text is either refused with located errors, or it
compiles and runs.

The property, checked by :func:`check_text` for every generated text and form (``.cog`` or YAML):

- parsing and validation (:func:`cogdsl.compiler.pipeline.parse_text`, then :func:`cogdsl.compiler.pipeline.check`, what
  ``cogdsl validate`` runs, then :func:`cogdsl.compiler.pipeline.compile_spec`) either raise
  :class:`cogdsl.errors.SpecError` whose every diagnostic points inside the text: the file it was read as, a
  line from 1 to the number of lines (only ``\\n`` ends a line, and the position after a last new line
  counts), and a column from 1 to that line's length + 1; and none is E900, cogdsl's internal error;
- or the spec compiles and runs one forward step, on a batch for each of its inputs, to finite outputs;
- ``cogdsl validate --format json`` on the text saved as a file returns 0 or 1 (1 exactly when the API
  refused the spec), prints no traceback, and reports only located diagnostics, none of them E900;
- nothing else is ever raised: no KeyError, no OverflowError, no RecursionError, no shape error, no NaN.

The texts come from :mod:`tests.fuzz.strategies`, which builds them from the grammar's structure: the small
spec of every block kind, memories with read and write heads and addressing expressions, graphs of any blocks
wired by what they declare, and statement soups; train sections with every task, optimizer, schedule and
setting; names such as ``training``, ``_modules`` and ``keys``; numbers such as 0, -1, 2**63, 4,400 digits,
nan and inf; strings with control characters. They are written as ``.cog`` text (``;`` or CRLF separators,
comments, a byte order mark) and as YAML (tags of every kind, anchors and aliases, merge keys, flow and block
styles, multi-line addresses, a second document, NEL and U+2028 line ends); the library's specs are mutated
(characters, lines, numbers and names changed, the text cut); and short random texts are tried. Every model
is held to a memory budget of 256 MiB (``max_memory``), so a spec that asks for a huge size is refused (E502)
before anything is allocated, and torch runs on one thread.

Profiles (``HYPOTHESIS_PROFILE``):

- ``ci``, the default: 200 examples per test, the same ones on every run (``derandomize``), no example
  database; the whole file takes about 40 seconds on one core::

      .venv/bin/python -m pytest tests/fuzz -p no:cacheprovider

- ``long``: 5,000 new random examples per test, about 15 minutes on one core (``make fuzz`` runs the tests
  side by side on every core); a failure prints a ``@reproduce_failure`` blob to replay it::

      HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/fuzz -p no:cacheprovider

``--hypothesis-show-statistics`` shows how many examples were refused and how many ran. A failure prints
the smallest text Hypothesis found that breaks the property; ``check_text(text, form)`` replays it, and an
``@example`` keeps it in the suite. The bugs it found outside the front end are kept in :data:`FOUND_BUGS`,
each now refused by validation.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from cogdsl.cli.command import main
from cogdsl.compiler.lower import CompiledModel
from cogdsl.compiler.pipeline import check, compile_spec, parse_text
from cogdsl.errors import SpecError
from tests.fuzz.strategies import (
    cog_specs,
    graph_plans,
    kind_plans,
    memory_plans,
    mutated_specs,
    raw_texts,
    to_cog,
    yaml_specs,
)

BUDGET = "256MiB"  # every model the fuzzer compiles stays small: larger ones are refused (E502)
BATCH, STEPS = 2, 2

settings.register_profile(
    "ci", max_examples=200, deadline=None, derandomize=True, database=None, print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
settings.register_profile(
    "long", max_examples=5000, deadline=timedelta(seconds=30), derandomize=False, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One torch thread: the models are tiny, and a second thread waiting for a busy core only slows them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- running a compiled spec (as tests/test_extremes.py does) ------------------------------------------------


def inputs(model: CompiledModel) -> tuple[dict[str, torch.Tensor], int | None]:
    """A batch for every input of ``model``, and the steps to run when every input is given whole. The inputs
    given step by step have one length: 1 step when a story is told (its sentences come at one step). Word ids
    are random, and the last word of each sentence is the largest id (the vocabulary's size - 1)."""
    sizes, kinds = model.shapes.sizes, model.input_kinds
    steps = 1 if "sentences" in kinds.values() else STEPS
    given: dict[str, torch.Tensor] = {}
    for name, kind in kinds.items():
        if kind == "vector":
            given[name] = torch.randn(BATCH, steps, sizes[name])
        elif kind == "sequence":
            given[name] = torch.randn(BATCH, 3, sizes[name])
        elif kind == "image":
            side = model.shapes.sides[name]
            given[name] = torch.rand(BATCH, side, side)
        else:
            shape = (BATCH, steps, 4) if kind == "words" else (BATCH, steps, 3, 4)
            given[name] = torch.randint(0, sizes[name], shape)
            given[name][..., -1] = sizes[name] - 1
    whole = all(kind in ("sequence", "image") for kind in kinds.values())
    return given, STEPS if whole else None


def outputs_of(model: CompiledModel, given: dict[str, torch.Tensor], steps: int | None) -> list[torch.Tensor]:
    y = model(given, steps=steps)
    return list(y.values()) if isinstance(y, dict) else [y]


# -- the property --------------------------------------------------------------------------------------------


def assert_located(diagnostics: list[tuple[str, str, int, int]], text: str, file: str) -> None:
    """Every (code, file, line, col) lies inside ``text`` read as ``file``, and none is E900 (a bug)."""
    lines = text.split("\n")  # only '\n' ends a line; after a last '\n' comes an empty last line
    assert diagnostics, "a SpecError without diagnostics"
    for code, where, line, col in diagnostics:
        assert code != "E900", f"internal error (E900) at {where}:{line}:{col}"
        assert where == file, f"{code} names file {where!r}, not {file!r}"
        assert 1 <= line <= len(lines), f"{code} at line {line}, outside lines 1..{len(lines)}"
        assert 1 <= col <= len(lines[line - 1]) + 1, \
            f"{code} at {line}:{col}, outside columns 1..{len(lines[line - 1]) + 1}"


def _located(err: SpecError, text: str, file: str) -> None:
    assert_located([(d.code, d.span.file, d.span.line, d.span.col) for d in err.diagnostics], text, file)
    json.loads(err.to_json())  # renders, as the CLI's --format json does


def check_text(text: str, form: str) -> str:
    """The property for one text: 'refused' (located SpecError), 'checked' (validates, but compile needs sizes
    from data it does not have) or 'ran' (compiled and ran a forward step to finite outputs). Also runs
    ``cogdsl validate`` on it as a file; any other outcome fails an assertion or raises."""
    file = f"<fuzz>.{form}"
    refused = False
    try:
        spec = parse_text(text, file, form)
        check(spec, max_memory=BUDGET)
    except SpecError as err:
        _located(err, text, file)
        refused = True
    _validate_cli(text, form, refused)
    if refused:
        return "refused"
    try:
        model = compile_spec(spec, max_memory=BUDGET)
    except SpecError as err:  # check passed: only sizes left to data the spec does not name are missing
        _located(err, text, file)
        assert {d.code for d in err.diagnostics} == {"E007"}, f"check passed, compile refused: {err}"
        return "checked"
    torch.manual_seed(0)
    given, steps = inputs(model)
    with torch.no_grad():
        ys = outputs_of(model, given, steps)
    assert ys and all(bool(torch.isfinite(y).all()) for y in ys), "non-finite outputs"
    return "ran"


def _validate_cli(text: str, form: str, refused: bool) -> None:
    """``cogdsl validate --format json`` on ``text`` saved as a spec file: status 0 or 1 as the API decided,
    no traceback, located diagnostics only (on status 0, warnings only)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz.{form}"
        path.write_bytes(text.encode("utf-8"))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(["validate", "--format", "json", "--max-memory", BUDGET, str(path)])
        assert status in (0, 1), f"cogdsl validate returned {status}"
        assert "Traceback" not in out.getvalue() + err.getvalue()
        report = json.loads(out.getvalue())
        found = [(d["code"], d["file"], d["line"], d["col"]) for d in report["diagnostics"]]
        if status:
            assert_located(found, text.removeprefix("\ufeff"), str(path))
        else:  # a spec that passes may have warnings (a block nothing reads), located like errors
            assert all(code.startswith("W") for code, *_ in found), found
            if found:
                assert_located(found, text.removeprefix("\ufeff"), str(path))
        if not text.startswith("\ufeff"):  # the file reader reads past one byte order mark, as the parsers do
            api = "refused" if refused else "passed"
            assert status == int(refused), f"cogdsl validate returned {status}, the API {api} the spec"


# -- the tests ---------------------------------------------------------------------------------------------


def _holds(text: str, form: str) -> None:
    """The property, and its outcome counted (``--hypothesis-show-statistics`` shows the counts)."""
    event(check_text(text, form))


# Random specs may well have blocks nothing reads (W301): the property is about errors.
pytestmark = pytest.mark.filterwarnings("ignore::cogdsl.errors.SpecWarning")


@given(cog_specs())
def test_cog_specs(text: str) -> None:
    _holds(text, "cog")


# an integer past the largest float, for a float parameter: float() of it overflowed in Param.check (found by
# the fuzzer; the YAML reader now refuses it, E005)
@example("cogdsl: 1\nmodel: m\ninputs: {x: 3}\noutputs: {y: {size: 2, from: [c]}}\n"
         f"blocks: {{c: {{kind: lstm, hidden: 4, clip: 1{'0' * 400}, from: [x]}}}}\n")
@given(yaml_specs())
def test_yaml_specs(text: str) -> None:
    _holds(text, "yaml")


@given(mutated_specs())
def test_mutated_library_specs(case: tuple[str, str]) -> None:
    _holds(case[1], case[0])


@given(raw_texts)
def test_any_text(case: tuple[str, str]) -> None:
    _holds(case[1], case[0])


@settings(max_examples=1)
@given(st.data())
def test_a_fair_share_runs(data: st.DataObject) -> None:
    """The generators reach the forward step, not only validation: of 40 specs built from block kinds, memories
    and graphs (no statement soup), a fifth at least compile and run; the property holds for each."""
    structured = st.one_of(kind_plans(), memory_plans(), graph_plans()).map(to_cog)
    outcomes = [check_text(data.draw(structured), "cog") for _ in range(40)]
    assert outcomes.count("ran") >= 8, outcomes


# Bugs the fuzzer found outside the front end: each spec validated, and then crashed (in infer, in the forward
# step or in the embedding) instead of running. Validation now refuses them (E307, E501).
_SEQUENCE = "model m\ninput x: sequence(size=3)\noutput o: 2 = tanh(s)\n"
_STORY = "model m\ninput s: sentences(vocab=6)\ninput q: words(vocab=7)\noutput a: 4 = softmax(h)\n"
FOUND_BUGS = {
    # was: infer.py AssertionError "sizes of ['a', 's'] depend on each other" (cogdsl validate: E900)
    "encoder-reads-itself-at-prev": _SEQUENCE + "encoder a(hidden=4) <- x, a@prev\nsummary s(mode=mean) on a\n",
    "self-attention-reads-itself-at-prev": _SEQUENCE + "self_attention a <- x, a@prev\nsummary s(mode=mean) on a\n",
    # was: lower.py RuntimeError "Tensors must have same number of dimensions: got 3 and 2"
    "self-attention-reads-another-at-prev": _SEQUENCE + "self_attention a <- x\nself_attention b <- x, a@prev\n"
                                            "summary s(mode=mean) on b\n",
    # was: blocks/attention.py IndexError "tuple index out of range"
    "self-attention-reads-only-another-at-prev": _SEQUENCE + "self_attention a <- x\nself_attention b <- a@prev\n"
                                                 "summary s(mode=mean) on b\n",
    # was: RuntimeError "mat1 and mat2 shapes cannot be multiplied (1x2 and 8x2)"
    "encoder-reads-an-encoder-at-prev": _SEQUENCE + "encoder a(hidden=4) <- x\nencoder b(hidden=4) <- a@prev\n"
                                        "summary s(mode=mean) on b\n",
    "encoder-reads-a-conv-at-prev": "model m\ninput i: image(size=15)\noutput o: 2 = tanh(s)\nconv c <- i\n"
                                    "encoder e(hidden=4) <- c@prev\nsummary s(mode=mean) on e\n",
    # was: blocks/memnet.py IndexError "index out of range in self" (the question's word 6)
    "question-vocabulary-larger-than-the-story's-kv": _STORY + "kv_memory m <- s\nhops h on m <- q\n",
    "question-vocabulary-larger-than-the-story's-episodic": _STORY + "episodic_memory m <- s\nepisodes h on m <- q\n",
}


@pytest.mark.parametrize("name", sorted(FOUND_BUGS))
def test_what_the_fuzzer_found_is_refused_by_validation(name: str) -> None:
    assert check_text(FOUND_BUGS[name], "cog") == "refused"



def test_the_property_catches_a_wrong_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    """A front end that raises anything but SpecError fails the property (so a pass means something)."""
    import cogdsl.compiler.pipeline

    def broken(text: str, file: str) -> None:
        raise ValueError("broken on purpose")

    monkeypatch.setattr(cogdsl.compiler.pipeline, "parse_yaml", broken)
    with pytest.raises(ValueError):
        check_text("cogdsl: 1\nmodel: m\n", "yaml")


def test_the_span_check_catches_a_span_outside_the_text() -> None:
    text = "ab\nc\n"
    assert_located([("E001", "f", 1, 3), ("E001", "f", 2, 2), ("E001", "f", 3, 1)], text, "f")
    for line, col in ((0, 1), (1, 0), (1, 4), (2, 3), (3, 2), (4, 1)):
        with pytest.raises(AssertionError):
            assert_located([("E001", "f", line, col)], text, "f")
    with pytest.raises(AssertionError):
        assert_located([("E900", "f", 1, 1)], text, "f")
    with pytest.raises(AssertionError):
        assert_located([("E001", "g", 1, 1)], text, "f")

