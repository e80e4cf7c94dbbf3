"""Warnings (W codes): a spec that compiles but has a part that does nothing, or less than it says.

They never stop compilation; ``cogdsl validate`` prints them located (``--strict`` fails on them), the
Python API issues them as :class:`~cogdsl.errors.SpecWarning`, the language server as LSP warnings."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest

import cogdsl
from cogdsl.cli.command import main
from cogdsl.editor.analysis import analyse
from cogdsl.errors import CODES, SpecError, SpecWarning

HEAD = "cogdsl 1\nmodel w\ninput x: 8\noutput y: 8 = sigmoid(ctrl)\n"
NTM = "lstm ctrl(hidden=16) <- x, r@prev\nmemory mem(slots={slots}, width=3)\n{read}\nwrite w on mem by ctrl\n"


def _spec(tmp_path: Path, body: str, name: str = "w.cog") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + body)
    return path


def _validate(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _warned(path: Path) -> list[tuple[str, int, int, str]]:
    """(code, line, col, message) of each warning compiling ``path`` issues."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SpecWarning)
        cogdsl.compile(path)
    found = [w.message.diagnostic for w in caught if isinstance(w.message, SpecWarning)]
    return [(d.code, d.span.line, d.span.col, d.message) for d in found]


def test_a_block_no_output_depends_on_is_located(tmp_path: Path, capsys) -> None:
    path = _spec(tmp_path, "lstm ctrl(hidden=16) <- x\nlstm spare(hidden=4) <- x\n")
    code, out, err = _validate(capsys, str(path))
    assert code == 0, out
    assert f"{path}:6:6: warning[W301]: no output depends on lstm 'spare'" in out
    assert "    lstm spare(hidden=4) <- x\n         ^\n  hint: wire 'spare' into an output" in out
    assert "no errors, 1 with warnings" in err
    assert "ctrl'" not in out  # the block the output reads is not warned about


def test_strict_fails_on_warnings_and_json_marks_their_severity(tmp_path: Path, capsys) -> None:
    path = _spec(tmp_path, "lstm ctrl(hidden=16) <- x\nlstm spare(hidden=4) <- x\n")
    code, _, err = _validate(capsys, "--strict", str(path))
    assert code == 1 and "errors or warnings (--strict)" in err
    code, out, _ = _validate(capsys, "--format", "json", str(path))
    report = json.loads(out)
    assert code == 0 and report["failed"] == 0 and report["warned"] == 1
    [diagnostic] = report["diagnostics"]
    assert (diagnostic["severity"], diagnostic["code"], diagnostic["line"]) == ("warning", "W301", 6)


def test_a_chain_nothing_reads_is_warned_block_by_block(tmp_path: Path) -> None:
    """A second controller whose memory is written but never read: the controller, its write head, the
    memory and the input only they read all feed nothing."""
    body = ("input z: 2\nlstm ctrl(hidden=16) <- x\nlstm side(hidden=4) <- z\nmemory mem(slots=8, width=3)\n"
            "write w on mem by side\n")
    found = _warned(_spec(tmp_path, body))
    assert [(code, line) for code, line, _, _ in found] == [("W301", 5), ("W301", 7), ("W301", 8), ("W301", 9)]
    assert "input 'z'" in found[0][3] and "memory 'mem'" in found[2][3] and "write 'w'" in found[3][3]


def test_a_memory_read_back_through_a_controller_is_not_dead(tmp_path: Path) -> None:
    assert _warned(_spec(tmp_path, NTM.format(slots=8, read="read r on mem by ctrl"))) == []


def test_a_shift_wider_than_its_memory_is_located_at_the_stage(tmp_path: Path, capsys) -> None:
    read = "read r on mem by ctrl: content(cosine) | shift(2) | sharpen"
    path = _spec(tmp_path, NTM.format(slots=4, read=read))
    [(code, line, col, message)] = _warned(path)  # the write head's default shift(1) fits 4 slots
    assert (code, line, col) == ("W401", 7, 42)
    assert "shift(2), 5 offsets (-2..2), on a memory of 4 slots" in message
    _, out, _ = _validate(capsys, str(path))
    assert "hint: use shift(1) or less on 4 slots" in out


@pytest.mark.parametrize(("slots", "warned", "hint"),
                         [(2, True, "give the head an address without 'shift'"), (3, False, "")])
def test_the_default_address_shifts_by_one(tmp_path: Path, capsys, slots: int, warned: bool, hint: str) -> None:
    """``read r on mem by ctrl`` takes the memory's default pipe, which has shift(1): 3 offsets."""
    path = _spec(tmp_path, NTM.format(slots=slots, read="read r on mem by ctrl"))
    found = _warned(path)
    # the read and the write head both take the default; located at each head, which does not write it
    assert [(code, line, col) for code, line, col, _ in found] == ([("W401", 7, 6), ("W401", 8, 7)] if warned else [])
    if warned:
        assert "its memory's default address has shift(1)" in found[0][3]
        assert hint in _validate(capsys, str(path))[1]


def test_a_spec_with_errors_gets_no_warnings(tmp_path: Path) -> None:
    """A missing wire makes blocks look dead: the errors come alone."""
    path = _spec(tmp_path, "lstm ctrl(hidden=16) <- x, nowhere\nlstm spare(hidden=4) <- x\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SpecWarning)
        with pytest.raises(SpecError, match="E301"):
            cogdsl.compile(path)
    assert not [w for w in caught if isinstance(w.message, SpecWarning)]


def test_python_warning_filters_apply(tmp_path: Path) -> None:
    path = _spec(tmp_path, "lstm ctrl(hidden=16) <- x\nlstm spare(hidden=4) <- x\n")
    with pytest.warns(SpecWarning, match=r"warning\[W301\]"):
        model = cogdsl.compile(path)
    assert sum(p.numel() for p in model.parameters()) > 0  # it compiled all the same
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpecWarning)
        with pytest.raises(SpecWarning):
            cogdsl.compile(path)


def test_the_editor_shows_warnings_with_their_severity() -> None:
    text = HEAD + "lstm ctrl(hidden=16) <- x\nlstm spare(hidden=4) <- x\n"
    result = analyse(text, "w.cog", "cog")
    assert [(d.code, d.severity, d.span.line) for d in result.diagnostics] == [("W301", "warning", 6)]


def test_train_prints_a_warning_as_its_diagnostic(tmp_path: Path, capsys) -> None:
    """Not as the line of cogdsl that issued it."""
    path = tmp_path / "w.cog"
    path.write_text(HEAD.replace("x: 8", "x: 9") + "lstm ctrl(hidden=16) <- x\nlstm spare(hidden=4) <- x\n"
                    "train {\n  task copy(bits=8, min_len=1, max_len=3)\n  batch 2; steps 1\n}\n")
    code = main(["train", str(path), "--out", str(tmp_path / "run"), "--no-progress", "--no-tensorboard"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert len(re.findall(r"w\.cog:6:6: warning\[W301\]", err)) == 1, err  # once, for all the compilations
    assert "command.py" not in err


def test_every_warning_code_is_shown_here() -> None:
    shown = {"W301", "W401"}
    assert {code for code in CODES if code.startswith("W")} == shown
