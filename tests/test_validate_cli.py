"""``cogdsl validate``: every error in every file, exit status, JSON output, no tracebacks, no YAML code."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cogdsl
from cogdsl.cli.command import main

ROOT = Path(__file__).resolve().parent.parent
NTM = ROOT / "specs" / "ntm_copy.yaml"

GOOD_COG = """\
model tiny
input x: 9
output y: 8 = sigmoid(ctrl, r)
lstm ctrl(hidden=16) <- x, r@prev
memory mem(slots=8, width=4)
read r on mem by ctrl
write w on mem by ctrl
"""

BAD_KIND_YAML = """\
cogdsl: 1
model: bad_kind
inputs:
  x: 9
outputs:
  y: {size: 8, from: [ctrl]}
blocks:
  ctrl: {kind: lstn, hidden: 16, from: [x]}
"""

BAD_REF_COG = """\
model bad_ref
input x: 9
output y: 8 = ctrl
gru ctrl(hidden=16) <- xx
"""

# Three independent mistakes: an unknown kind, an unknown parameter, an undefined reference.
THREE_ERRORS_YAML = """\
cogdsl: 1
model: three
inputs:
  x: 9
outputs:
  y: {size: 8, from: [ctrl, extra]}
blocks:
  ctrl: {kind: lstm, hidden: 16, from: [x, r@prev]}
  extra: {kind: grru, hidden: 4, from: [x]}
  mem: {kind: memory, slots: 8, width: 4, slot: 3}
  r: {kind: read, memory: mem, by: ctrl}
  w: {kind: write, memory: mem, by: ctlr}
"""


def _validate(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _headlines(out: str) -> list[str]:
    return [line for line in out.splitlines() if ": error[E" in line and not line.startswith(" ")]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """One good spec and two bad ones (a YAML and a .cog), one of them in a subfolder."""
    shutil.copy(NTM, tmp_path / "good.yaml")
    (tmp_path / "bad_kind.yaml").write_text(BAD_KIND_YAML)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad_ref.cog").write_text(BAD_REF_COG)
    (tmp_path / "notes.txt").write_text("not a spec: ignored")
    return tmp_path


# -- good specs ---------------------------------------------------------------------------


def test_spec_library_is_valid(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = _validate(capsys, "specs/")
    assert code == 0, out
    assert out == ""
    assert "no errors" in err
    assert "checked " in err


def test_good_cog_file_is_valid(capsys, tmp_path):
    path = tmp_path / "tiny.cog"
    path.write_text(GOOD_COG)
    code, out, err = _validate(capsys, str(path))
    assert (code, out) == (0, "")
    assert "checked 1 spec file: no errors" in err


def test_good_specs_json(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, _ = _validate(capsys, "--format", "json", "specs/ntm_copy.yaml")
    assert code == 0
    report = json.loads(out)
    assert report == {"files": 1, "failed": 0, "diagnostics": []}


# -- every error in every file ------------------------------------------------------------


def test_folder_reports_both_bad_files(capsys, folder: Path):
    code, out, err = _validate(capsys, str(folder))
    assert code == 1
    heads = _headlines(out)
    assert any(h.startswith(f"{folder / 'bad_kind.yaml'}:8:16: error[E201]: ") for h in heads), out
    assert any(h.startswith(f"{folder / 'sub' / 'bad_ref.cog'}:4:24: error[E301]: ") for h in heads), out
    assert not any("good.yaml" in h for h in heads)
    assert "checked 3 spec files: 2 of 3 files have errors" in err


def test_folder_json_reports_both_bad_files(capsys, folder: Path):
    code, out, _ = _validate(capsys, "--format", "json", str(folder))
    assert code == 1
    report = json.loads(out)
    assert report["files"] == 3
    assert report["failed"] == 2
    by_file = {(Path(d["file"]).name, d["code"]) for d in report["diagnostics"]}
    assert by_file == {("bad_kind.yaml", "E201"), ("bad_ref.cog", "E301")}
    for diagnostic in report["diagnostics"]:
        assert set(diagnostic) == {"file", "line", "col", "severity", "code", "message", "hint"}
        assert diagnostic["severity"] == "error"
        assert diagnostic["line"] >= 1 and diagnostic["col"] >= 1


def test_several_paths(capsys, folder: Path):
    code, out, err = _validate(capsys, str(folder / "good.yaml"), str(folder / "bad_kind.yaml"),
                               str(folder / "sub"))
    assert code == 1
    assert len(_headlines(out)) == 2
    assert "2 of 3 files have errors" in err


def test_three_independent_errors_all_reported(capsys, tmp_path: Path):
    path = tmp_path / "three.yaml"
    path.write_text(THREE_ERRORS_YAML)
    code, out, _ = _validate(capsys, str(path))
    assert code == 1
    heads = _headlines(out)
    assert len(heads) == 3, out
    assert f"{path}:9:17: error[E201]: block 'extra': unknown block kind 'grru'" in heads
    assert f"{path}:10:43: error[E202]: memory 'mem': unknown parameter 'slot'" in heads
    assert f"{path}:12:37: error[E301]: write 'w': 'ctlr' is not defined" in heads
    # each with its source line, caret and hint
    for hint in ("did you mean 'gru'?", "did you mean 'slots'?", "did you mean 'ctrl'?"):
        assert f"  hint: {hint}" in out
    assert out.count("^") == 3

    code, out, _ = _validate(capsys, "--format", "json", str(path))
    codes = sorted(d["code"] for d in json.loads(out)["diagnostics"])
    assert codes == ["E201", "E202", "E301"]


def test_errors_in_source_order_for_one_block(capsys, tmp_path: Path):
    """Several parameter problems in one block are each reported."""
    path = tmp_path / "params.cog"
    path.write_text(GOOD_COG.replace("memory mem(slots=8, width=4)", 'memory mem(slots=0, width="4", init=zeros)'))
    code, out, _ = _validate(capsys, "--format", "json", str(path))
    assert code == 1
    diagnostics = json.loads(out)["diagnostics"]
    assert [d["code"] for d in diagnostics] == ["E205", "E204", "E205"]
    assert [d["col"] for d in diagnostics] == [18, 27, 37]


# -- usage errors ---------------------------------------------------------------------------


def test_missing_path(capsys, tmp_path: Path):
    missing = tmp_path / "nope.yaml"
    code, out, err = _validate(capsys, str(missing))
    assert code == 1
    assert out.strip().splitlines() == [f"{missing}: error[E008]: no such file or folder"]
    assert "Traceback" not in err


def test_missing_path_does_not_hide_other_files(capsys, folder: Path):
    code, out, _ = _validate(capsys, str(folder / "bad_kind.yaml"), str(folder / "nope.yaml"))
    assert code == 1
    assert "error[E201]" in out


def test_missing_path_json(capsys, tmp_path: Path):
    code, out, _ = _validate(capsys, "--format", "json", str(tmp_path / "nope.yaml"))
    assert code == 1
    json.loads(out)


def test_folder_without_specs(capsys, tmp_path: Path):
    (tmp_path / "readme.txt").write_text("hello")
    code, out, err = _validate(capsys, str(tmp_path))
    assert code == 1
    assert out == ""
    assert "no spec files" in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--frobnicate", str(NTM)])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "unrecognized arguments: --frobnicate" in err
    assert "Traceback" not in err


def test_bad_format_choice(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--format", "xml", str(NTM)])
    assert exc.value.code == 1


def test_no_paths(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validate"])
    assert exc.value.code == 1


def test_unreadable_file_is_e008(capsys, tmp_path: Path):
    path = tmp_path / "latin1.cog"
    path.write_bytes(b"model m\ndoc \"caf\xe9\"\n")
    code, out, _ = _validate(capsys, str(path))
    assert code == 1
    assert out.startswith(f"{path}:2:9: error[E008]: the file is not UTF-8 text (byte 0xe9 at offset 16)")


# -- a real process ---------------------------------------------------------------------------


@functools.cache
def _run_cli(seed: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    return subprocess.run(
        [sys.executable, "-m", "cogdsl.cli.command", "validate", "tests/bad_specs/cycle_no_delay.cog",
         "tests/bad_specs/cycle_three_nodes.yaml", "tests/bad_specs/unknown_kind.yaml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_subprocess_no_traceback():
    result = _run_cli("0")
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "tests/bad_specs/unknown_kind.yaml:9:16: error[E201]: block 'ctrl': unknown block kind 'lstn'" \
        in result.stdout
    assert "checked 3 spec files: 3 of 3 files have errors" in result.stderr


def test_output_does_not_depend_on_hash_seed():
    assert _run_cli("0").stdout == _run_cli("5").stdout


# -- YAML tags never construct objects -----------------------------------------------------


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system",
    "!!python/object/new:os.system",
    "!!python/object/apply:subprocess.check_call",
])
def test_yaml_tag_does_not_execute(capsys, tmp_path: Path, tag: str):
    marker = tmp_path / "pwned_cogdsl"
    argument = f'["touch {marker}"]' if "os.system" in tag else f'[["touch", "{marker}"]]'
    spec = tmp_path / "evil.yaml"
    spec.write_text(f"cogdsl: 1\nmodel: {tag} {argument}\ninputs:\n  x: 9\n")
    code, out, _ = _validate(capsys, str(spec))
    assert code == 1
    assert not marker.exists()
    assert f"{spec}:2:8: error[E002]: " in out
    with pytest.raises(cogdsl.SpecError) as exc:
        cogdsl.load(spec)
    assert exc.value.diagnostics[0].code == "E002"
    assert not marker.exists()


def test_yaml_tag_in_nested_value_does_not_execute(capsys, tmp_path: Path):
    marker = tmp_path / "pwned_nested"
    spec = tmp_path / "evil.yaml"
    spec.write_text(NTM.read_text().replace("batch: 16", f'batch: !!python/object/apply:os.system ["touch {marker}"]'))
    code, out, _ = _validate(capsys, str(spec))
    assert code == 1
    assert not marker.exists()
    assert "error[E002]" in out


# -- the Python API -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "code"), [
    ("unknown_kind.yaml", "E201"),
    ("unknown_kind.cog", "E201"),
    ("undefined_ref_from.yaml", "E301"),
    ("version_2.yaml", "E004"),
    ("task_input_size_mismatch.yaml", "E501"),
    ("bad_optimizer.yaml", "E603"),
])
def test_load_raises_spec_error(name: str, code: str):
    with pytest.raises(cogdsl.SpecError) as exc:
        cogdsl.load(ROOT / "tests" / "bad_specs" / name)
    assert exc.value.diagnostics[0].code == code
    assert exc.value.diagnostics[0].span.file.endswith(name)


@pytest.mark.parametrize("name", ["yaml_syntax_unclosed_flow.yaml", "cog_missing_colon.cog"])
def test_load_syntax_error(name: str):
    with pytest.raises(cogdsl.SpecSyntaxError) as exc:
        cogdsl.load(ROOT / "tests" / "bad_specs" / name)
    assert exc.value.diagnostics[0].code == "E001"


def test_spec_error_renders_like_the_cli(monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(cogdsl.SpecError) as exc:
        cogdsl.load("tests/bad_specs/unknown_kind.yaml")
    text = str(exc.value)
    first = Path("tests/bad_specs/unknown_kind.yaml").read_text().splitlines()[0].removeprefix("# expect: ")
    assert text.splitlines()[0] == first
    assert "  hint: did you mean 'lstm'?" in text
    assert json.loads(exc.value.to_json())[0]["code"] == "E201"


def test_load_good_spec():
    spec = cogdsl.load(NTM)
    assert spec.name == "ntm_copy"


@pytest.mark.parametrize("value, shown", [("[1, 2]", "got [1, 2] (list)"), ("[[1], 2]", "got [[1], 2] (list)")])
def test_a_list_where_a_task_wants_a_number_is_shown_as_written(tmp_path: Path, capsys, value: str,
                                                                 shown: str) -> None:
    """Not as the parser's records of its items (``[Value(data=1, span=...``)."""
    path = tmp_path / "t.cog"
    path.write_text(GOOD_COG + f"train {{\n  task copy(bits={value}, min_len=1, max_len=3)\n}}\n")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "error[E602]: task 'copy': parameter 'bits' must be an int" in out and shown in out
    assert "Value(" not in out
