"""The corpus of bad specs in tests/bad_specs: each must fail validation with an exact first line.

Every file starts with ``# expect: <the exact first line>`` of what ``cogdsl validate
tests/bad_specs/<file>`` prints when run from the repository root. A file may also carry
``# xfail: reason`` (every check of this file is a known bug) or ``# xfail(aspect, ...): reason``
on the next lines, where an aspect is one of

    first_line   the exit status and the exact first line
    caret        the source line and the caret under the column
    hint         the hint line
    json         the first diagnostic of ``--format json``
    single       the file produces exactly one diagnostic (no follow-on errors)
    order        the output depends on hash order (PYTHONHASHSEED): where it differs from the
                 expect line the check xfails at run time; test_validate_cli checks the
                 determinism itself with fixed seeds, strictly

Such a check is marked ``xfail(strict=True)`` so that it fails loudly once the bug is fixed.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest

from cogdsl.cli.command import main
from cogdsl.errors import CODES

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "bad_specs"
FILES = sorted(p for p in BAD.iterdir() if p.suffix in (".yaml", ".yml", ".cog"))
ASPECTS = {"first_line", "caret", "hint", "json", "single", "order"}

HEADLINE = re.compile(r"^(?P<file>[^:]+?)(?::(?P<line>\d+):(?P<col>\d+))?: error\[(?P<code>E\d{3})\]: (?P<message>.+)$")

# Codes whose diagnostics must carry a hint: the did-you-mean, the allowed values, the cycle.
HINT_REQUIRED = {"E002", "E003", "E004", "E201", "E202", "E203", "E204", "E205", "E206", "E301", "E302",
                 "E303", "E304", "E305", "E306", "E307", "E308", "E309", "E401", "E402", "E403", "E501", "E601"}

# Every code that user input can trigger must be shown by at least one file of the corpus.
USER_CODES = {c for c in CODES if c.startswith("E")} - {"E900"}  # E900: a bug of cogdsl's; W codes: warnings


@dataclass
class Case:
    path: Path
    rel: str
    expect: str
    xfails: dict[str, str]


def _read_case(path: Path) -> Case:
    lines = path.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff").splitlines()
    assert lines and lines[0].startswith("# expect: "), f"{path.name}: the first line must be '# expect: ...'"
    xfails: dict[str, str] = {}
    for line in lines[1:]:
        match = re.match(r"^# xfail(?:\((?P<aspects>[a-z_, ]+)\))?: (?P<reason>.+)$", line)
        if not match:
            break
        aspects = [a.strip() for a in (match["aspects"] or ",".join(sorted(ASPECTS))).split(",")]
        assert set(aspects) <= ASPECTS, f"{path.name}: unknown xfail aspect in {line!r}"
        xfails.update(dict.fromkeys(aspects, match["reason"]))
    return Case(path, f"tests/bad_specs/{path.name}", lines[0].removeprefix("# expect: "), xfails)


CASES = [_read_case(p) for p in FILES]


def _params(aspect: str) -> list:
    params = []
    for case in CASES:
        marks = []
        if aspect in case.xfails:
            marks.append(pytest.mark.xfail(strict=True, reason=case.xfails[aspect]))
        params.append(pytest.param(case, id=case.path.name, marks=marks))
    return params


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def _validate(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _expected(case: Case) -> re.Match:
    match = HEADLINE.match(case.expect)
    assert match, f"{case.path.name}: the expect line is not a diagnostic headline: {case.expect!r}"
    assert match["file"] == case.rel
    return match


def _unless_order(case: Case, ok: bool) -> None:
    """For a file whose output depends on hash order, an output other than the expected one is that known bug."""
    if not ok and "order" in case.xfails:
        pytest.xfail(case.xfails["order"])


def _first_block(out: str) -> list[str]:
    """The lines of the first diagnostic: its headline up to the next headline."""
    lines = out.splitlines()
    block = lines[:1]
    for line in lines[1:]:
        if HEADLINE.match(line):
            break
        block.append(line)
    return block


def _json_diagnostics(capsys, case: Case) -> list[dict]:
    code, out, _ = _validate(capsys, "--format", "json", case.rel)
    assert code == 1
    return json.loads(out)["diagnostics"]


# -- the corpus itself --------------------------------------------------------------------


def test_corpus_size():
    assert len(FILES) >= 40
    assert sum(p.suffix == ".cog" for p in FILES) >= 15
    assert sum(p.suffix in (".yaml", ".yml") for p in FILES) >= 15


def test_corpus_covers_every_code():
    shown = {_expected(case)["code"] for case in CASES}
    missing = USER_CODES - shown
    assert not missing, f"no bad spec shows {sorted(missing)}"


def test_corpus_names_are_unique_problems():
    names = [p.stem for p in FILES]
    for name in names:
        assert re.fullmatch(r"[a-z0-9_]+", name), name


# -- each file -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _params("first_line"))
def test_first_line(case: Case, capsys):
    code, out, err = _validate(capsys, case.rel)
    assert "Traceback" not in out + err
    assert code == 1
    _unless_order(case, out.splitlines()[0] == case.expect)
    assert out.splitlines()[0] == case.expect
    assert "1 of 1 files have errors" in err


@pytest.mark.parametrize("case", _params("caret"))
def test_source_line_and_caret(case: Case, capsys):
    expected = _expected(case)
    code, out, _ = _validate(capsys, case.rel)
    assert code == 1
    if expected["line"] is None:
        pytest.skip("a file-level diagnostic (no line) has no caret")
    line, col = int(expected["line"]), int(expected["col"])
    # only "\n" ends a line (as Lark and the YAML reader count); a CR before it is part of the line end
    source = case.path.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff").split("\n")
    block = _first_block(out)
    if line > len(source) or (line == len(source) and not source[-1]):
        return  # an empty file: there is no line to show
    _unless_order(case, block[0] == case.expect)
    assert len(block) >= 3, f"no source line and caret after the headline:\n{out}"
    text = source[line - 1].removesuffix("\r")
    assert block[1] == "    " + _visible(text)
    assert block[2] == "    " + " " * _columns(_visible(text[: col - 1])) + "^"


def _visible(text: str) -> str:
    """A line as it must be shown: a tab as one blank, other unprintable characters as Python escapes."""
    return "".join(" " if c == "\t" else c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _columns(text: str) -> int:
    """Terminal columns of printable text: two for a wide East Asian character, none for a combining mark."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


@pytest.mark.parametrize("case", _params("hint"))
def test_hint(case: Case, capsys):
    diagnostic = _json_diagnostics(capsys, case)[0]
    _, out, _ = _validate(capsys, case.rel)
    hints = [line for line in _first_block(out) if line.startswith("  hint: ")]
    if diagnostic["hint"]:
        assert hints == [f"  hint: {diagnostic['hint']}"]
    else:
        assert hints == []
    if diagnostic["code"] in HINT_REQUIRED:
        assert diagnostic["hint"], f"{diagnostic['code']} needs a hint"


@pytest.mark.parametrize("case", _params("json"))
def test_json_first_diagnostic(case: Case, capsys):
    expected = _expected(case)
    diagnostic = _json_diagnostics(capsys, case)[0]
    assert diagnostic["file"] == case.rel
    assert diagnostic["code"] == expected["code"]
    assert diagnostic["severity"] == "error"
    if expected["line"] is None:
        assert diagnostic["line"] == 0
    else:
        _unless_order(case, (diagnostic["line"], diagnostic["col"], diagnostic["message"])
                      == (int(expected["line"]), int(expected["col"]), expected["message"]))
        assert (diagnostic["line"], diagnostic["col"]) == (int(expected["line"]), int(expected["col"]))


@pytest.mark.parametrize("case", _params("single"))
def test_one_problem_one_diagnostic(case: Case, capsys):
    diagnostics = _json_diagnostics(capsys, case)
    assert len(diagnostics) == 1, [f"{d['code']}: {d['message']}" for d in diagnostics]


# -- what particular codes must say -------------------------------------------------------


def _cases_with(code: str) -> list:
    return [p for p in _params("first_line") if _expected(p.values[0])["code"] == code]


@pytest.mark.parametrize("case", _cases_with("E304"))
def test_cycle_is_named(case: Case):
    message = _expected(case)["message"]
    path = message.split("cycle with no delay: ", 1)[1].split(" -> ")
    assert len(path) >= 2 and path[0] == path[-1], message


@pytest.mark.parametrize("code", ["E201", "E202", "E401", "E601"])
def test_did_you_mean(code: str, capsys):
    """A near-miss name gets a did-you-mean hint, for every code that names something unknown."""
    found = False
    for param in _cases_with(code):
        case = param.values[0]
        if param.marks:
            continue
        hint = _json_diagnostics(capsys, case)[0]["hint"]
        found = found or hint.startswith("did you mean '")
    assert found, f"no {code} case in the corpus gets a did-you-mean hint"


@pytest.mark.parametrize("code", ["E203", "E205"])
def test_allowed_values_in_hint(code: str, capsys):
    for param in _cases_with(code):
        case = param.values[0]
        hint = _json_diagnostics(capsys, case)[0]["hint"]
        assert "allowed" in hint or "did you mean" in hint or "add '" in hint, hint
