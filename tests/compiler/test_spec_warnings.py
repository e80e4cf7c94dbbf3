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

# The suite turns SpecWarning into an error (pyproject.toml); here they are what is tested.
pytestmark = pytest.mark.filterwarnings("default::cogdsl.errors.SpecWarning")

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
    assert f"{path}:6:6: warning[W301]: no output or loss depends on lstm 'spare'" in out
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
    """A second controller whose memory is written but never read: the controller, its write head and the
    memory feed nothing. The input only they read is not judged: a task feeds every input it declares."""
    body = ("input z: 2\nlstm ctrl(hidden=16) <- x\nlstm side(hidden=4) <- z\nmemory mem(slots=8, width=3)\n"
            "write w on mem by side\n")
    found = _warned(_spec(tmp_path, body))
    assert [(code, line) for code, line, _, _ in found] == [("W301", 7), ("W301", 8), ("W301", 9)]
    assert "lstm 'side'" in found[0][3] and "memory 'mem'" in found[1][3] and "write 'w'" in found[2][3]


@pytest.mark.parametrize(("block", "warned"), [
    ("latent z(size=2) <- ctrl", False),  # its KL is in the loss, and sends gradient into ctrl
    ("skip_rnn s(hidden=4, cost=0.01) <- x", False),  # its cost per update is in the loss
    ("skip_rnn s(hidden=4) <- x", True),  # cost 0: nothing
    ("attention a(doubly=1.0) on src <- ctrl", False),  # its doubly stochastic penalty
    ("attention a on src <- ctrl", True),
])
def test_a_block_that_adds_to_the_loss_is_not_dead(tmp_path: Path, block: str, warned: bool) -> None:
    source = "input src: sequence(size=4)\n" if "attention" in block else ""
    path = tmp_path / "w.cog"
    path.write_text(HEAD + source + "lstm ctrl(hidden=16) <- x\n" + block + "\n")
    assert [code for code, *_ in _warned(path)] == (["W301"] if warned else [])


def test_a_memory_read_back_through_a_controller_is_not_dead(tmp_path: Path) -> None:
    assert _warned(_spec(tmp_path, NTM.format(slots=8, read="read r on mem by ctrl"))) == []


@pytest.mark.parametrize(("slots", "shift", "warned"), [(4, 2, False), (4, 3, True), (5, 2, False), (5, 3, True)])
def test_a_shift_past_half_the_memory_is_located_at_the_stage(tmp_path: Path, capsys, slots: int, shift: int,
                                                              warned: bool) -> None:
    """shift(N // 2) is the narrowest that reaches every slot (on 4 slots, -2 and +2 are one slot, but
    shift(1) misses it): only a wider one warns."""
    read = f"read r on mem by ctrl: content(cosine) | shift({shift}) | sharpen"
    path = _spec(tmp_path, NTM.format(slots=slots, read=read))
    found = _warned(path)  # the write head's default shift(1) fits
    assert [(code, line, col) for code, line, col, _ in found] == ([("W401", 7, 42)] if warned else [])
    if warned:
        assert f"shift(3) on a memory of {slots} slots: its offsets -3..3 reach some slots twice" in found[0][3]
        _, out, _ = _validate(capsys, str(path))
        assert f"hint: shift(2) already reaches every slot of {slots}" in out


@pytest.mark.parametrize(("slots", "warned"), [(1, True), (2, False)])
def test_the_default_address_shifts_by_one(tmp_path: Path, capsys, slots: int, warned: bool) -> None:
    """``read r on mem by ctrl`` takes the memory's default pipe, which has shift(1): on one slot, nowhere to go."""
    path = _spec(tmp_path, NTM.format(slots=slots, read="read r on mem by ctrl"))
    found = _warned(path)
    # the read and the write head both take the default; located at each head, which does not write it
    assert [(code, line, col) for code, line, col, _ in found] == ([("W401", 7, 6), ("W401", 8, 7)] if warned else [])
    if warned:
        assert "its memory's default address has shift(1)" in found[0][3]
        assert "give the head an address without 'shift'" in _validate(capsys, str(path))[1]


@pytest.mark.parametrize(("extra", "code"), [
    (", nowhere", "E301"),  # a missing wire, found by validation: blocks would look dead
    ("", "E501"),  # a size mismatch found by a later pass (input x is 8 wide)
])
def test_a_spec_with_errors_gets_no_warnings(tmp_path: Path, capsys, extra: str, code: str) -> None:
    """The errors come alone, from the API, the command line and the editor alike."""
    text = (HEAD + f"lstm ctrl(hidden=16) <- x{extra}\nlstm spare(hidden=4) <- x\n"
            "train {\n  task copy(bits=8, min_len=1, max_len=3)\n}\n")  # copy(bits=8) feeds 9 channels
    path = tmp_path / "w.cog"
    path.write_text(text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SpecWarning)
        with pytest.raises(SpecError, match=code):
            cogdsl.compile(path)
    assert not [w for w in caught if isinstance(w.message, SpecWarning)]
    status, out, _ = _validate(capsys, str(path))
    assert status == 1 and f"error[{code}]" in out and "W301" not in out
    assert {d.code for d in analyse(text, "w.cog", "cog").diagnostics} == {code}


def test_validate_without_data_shows_each_warning_once(tmp_path: Path, capsys) -> None:
    """--no-data validates, then checks the sizes: two runs of the validation pass, one report."""
    path = _spec(tmp_path, "lstm ctrl(hidden=16) <- x\nlstm spare(hidden=4) <- x\n")
    _, out, _ = _validate(capsys, "--no-data", str(path))
    assert out.count("warning[W301]") == 1
    _, out, _ = _validate(capsys, "--no-data", "--format", "json", str(path))
    assert [d["code"] for d in json.loads(out)["diagnostics"]] == ["W301"]


def test_a_warning_names_the_callers_line(tmp_path: Path) -> None:
    """Attributed to the first frame outside cogdsl, so filters by module or line work on it."""
    path = _spec(tmp_path, "lstm ctrl(hidden=16) <- x\nlstm spare(hidden=4) <- x\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SpecWarning)
        cogdsl.load(path)
    [warning] = [w for w in caught if isinstance(w.message, SpecWarning)]
    assert warning.filename == __file__


def test_python_warning_filters_apply(tmp_path: Path) -> None:
    path = _spec(tmp_path, "lstm ctrl(hidden=16) <- x\nlstm spare(hidden=4) <- x\n")
    with pytest.warns(SpecWarning, match=r"warning\[W301\]"):
        model = cogdsl.compile(path)
    assert sum(p.numel() for p in model.parameters()) > 0  # it compiled all the same
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpecWarning)
        with pytest.raises(SpecWarning):
            cogdsl.compile(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)
        cogdsl.compile(path)


def test_the_command_line_honours_python_warning_filters(tmp_path: Path, capsys) -> None:
    """-W error::cogdsl.errors.SpecWarning (or PYTHONWARNINGS) makes compile fail on a warning, located."""
    path = _spec(tmp_path, "lstm ctrl(hidden=16) <- x\nlstm spare(hidden=4) <- x\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpecWarning)
        status = main(["compile", str(path)])
    err = capsys.readouterr().err
    assert status == 1 and "w.cog:6:6: warning[W301]" in err and "Traceback" not in err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)
        assert main(["compile", str(path)]) == 0
    assert "W301" not in capsys.readouterr().err


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
