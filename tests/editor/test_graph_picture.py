"""``cogdsl graph``: DOT text without Graphviz, SVG and PNG through matplotlib (always) and Graphviz (where its
``dot`` is installed), and a located error, never a traceback, for any input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cogdsl.cli.command import main
from cogdsl.compiler.pipeline import read_spec_file
from cogdsl.viz.graph_picture import drawn, graphviz, layout, picture_of, to_dot

ROOT = Path(__file__).resolve().parents[2]
NTM = ROOT / "specs" / "ntm_copy.yaml"
DNC = ROOT / "specs" / "dnc_repeat_copy.cog"
PNG = b"\x89PNG\r\n\x1a\n"


def test_the_dot_text_has_blocks_by_family_wires_and_heads_with_their_memory() -> None:
    dot = to_dot(picture_of(read_spec_file(NTM)))
    assert dot.startswith('digraph "ntm_copy" {') and dot.rstrip().endswith("}")
    cluster = dot.split('subgraph "cluster_mem" {', 1)[1].split("}", 1)[0]
    assert '"mem" [' in cluster and '"r" [' in cluster and '"w" [' in cluster and '"ctrl" [' not in cluster
    assert '"mem" [label="mem\\nmemory", shape=cylinder' in dot
    assert '"ctrl" [label="ctrl\\nlstm", shape=box, style="rounded,filled"' in dot
    assert '"x" [label="x", shape=cds' in dot and '"r" [label="r\\nread", shape=parallelogram' in dot
    assert '"r" -> "ctrl" [label="@prev", style=dashed, constraint=false];' in dot  # r@prev
    assert '"w" -> "mem" [label="write", style=dashed, constraint=false];' in dot  # lands for the next step
    assert '"ctrl" -> "r" [label="by"];' in dot and '"x" -> "ctrl";' in dot


def test_sizes_label_the_wires() -> None:
    dot = to_dot(picture_of(read_spec_file(NTM), sizes=True))
    assert '"x" -> "ctrl" [label="9"];' in dot and '"mem" -> "r" [label="128x20"];' in dot
    assert '"ctrl" -> "r" [label="by interface 92"];' in dot and '"r" -> "ctrl" [label="@prev 20"' in dot
    assert '"y" [label="y\\noutput 8"' in dot


def test_the_matplotlib_drawing_needs_no_graphviz() -> None:
    picture = picture_of(read_spec_file(DNC), sizes=True)
    places = layout(picture)
    assert places["x"][0] < places["ctrl"][0] < places["r"][0] < places["y"][0]  # one step reads left to right
    assert places["mem"][0] == places["r"][0] == places["w"][0]  # the memory beside its heads
    png = drawn(picture, "png", "matplotlib")
    assert png.startswith(PNG) and len(png) > 10_000
    svg = drawn(picture, "svg", "matplotlib").decode()
    assert "<svg" in svg and "dnc_memory" in svg


@pytest.mark.skipif(graphviz() is None, reason="Graphviz's dot is not installed")
def test_graphviz_draws_the_dot_text() -> None:
    picture = picture_of(read_spec_file(NTM))
    assert drawn(picture, "png", "graphviz").startswith(PNG)
    assert b"<svg" in drawn(picture, "svg", "auto")


def test_the_command_writes_each_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(NTM)]) == 0
    assert capsys.readouterr().out.startswith('digraph "ntm_copy"')
    for suffix in ("dot", "svg", "png"):
        out = tmp_path / f"ntm.{suffix}"
        assert main(["graph", str(NTM), "-o", str(out), "--renderer", "matplotlib", "--sizes"]) == 0
        assert out.stat().st_size > 500
    assert (tmp_path / "ntm.png").read_bytes().startswith(PNG)
    assert main(["graph", str(NTM), "-o", str(tmp_path / "ntm.png")]) == 1
    assert "exists; pass --force" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "name", "says"), [
    (b"\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe" * 50, "binary.cog", "error[E008]: the file is not UTF-8 text"),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00" * 50, "control.cog", "error[E001]"),
    (b"cogdsl: 1\nmodel: m\n\xff\xfe\x00", "binary.yaml", "error[E008]: the file is not UTF-8 text"),
    (b"model m\ninput x: 3\noutput y: 2 = sigmoid(c)\nlstn c(hidden=4) <- x\n", "bad.cog", "error[E201]"),
    (b"model m\ninput x: 3\nlstm c(hidden=", "half.cog", "error[E001]"),
    (b"cogdsl: 1\nmodel: m\nblocks:\n  c: {kind: lstm, hid", "half.yaml", "error[E001]"),
], ids=["binary", "control", "binary_yaml", "bad", "half", "half_yaml"])
def test_bad_input_is_a_located_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes,
                                      name: str, says: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["graph", str(path), "-o", str(tmp_path / "out.png")]) == 1
    err = capsys.readouterr().err
    assert f"{path}:" in err and says in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(("argv", "says"), [
    (["graph", "no_such.cog"], "no such file"),
    (["graph", str(NTM), "-o", "picture.gif"], "one of .dot, .svg, .png"),
    (["graph", str(NTM), "--format", "png"], "give -o FILE.png"),
    (["graph", "README.md"], "error[E008]"),
])
def test_usage_errors(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    assert says in capsys.readouterr().err


def test_lsp_without_pygls_names_the_extra() -> None:
    """``cogdsl lsp`` where pygls is not installed: one line that says what to install, exit status 1."""
    probe = "import sys\nsys.modules['pygls'] = None\nfrom cogdsl.cli import main\nsys.exit(main(['lsp']))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "pip install 'cogdsl[lsp]'" in done.stderr and done.stdout == ""
