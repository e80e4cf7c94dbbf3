"""Before a sweep on a cluster writes anything, every node that can run a trial is asked whether it runs cogdsl and
sees the sweep folder; a node that cannot is named and nothing is written. (The nodes' answers are made up here;
a real node answers in test_sweep.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cogdsl.errors import UsageError
from cogdsl.sweep import run
from cogdsl.sweep.provenance import code_version


def _answers(*nodes: tuple[str, dict[str, Any] | str]) -> Any:
    def probe_nodes(path: str, expected: str, timeout: float) -> dict[str, dict[str, Any] | str]:
        assert Path(path).read_text() == expected  # the probe is there while the nodes are asked
        return dict(nodes)
    return probe_nodes


def test_a_node_that_does_not_see_the_folder_or_cannot_run_cogdsl_is_named(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "sweeps" / "new"
    monkeypatch.setattr(run, "probe_nodes", _answers(
        ("node 10.0.0.1", {"host": "head", "sees": True, "code": code_version()}),
        ("node 10.0.0.2", {"host": "gpu7", "sees": False, "code": code_version()}),
        ("node 10.0.0.3", "cannot run cogdsl (ModuleNotFoundError: No module named 'cogdsl')")))
    with pytest.raises(UsageError) as caught:
        run.check_nodes(out, print)
    message = str(caught.value)
    assert f"node 10.0.0.2 (gpu7) does not see {out.resolve()}" in message
    assert "node 10.0.0.3: cannot run cogdsl (ModuleNotFoundError" in message and "10.0.0.1" not in message
    assert "file system they all see" in message
    assert not (tmp_path / "sweeps").exists()  # the folders made for the probe are gone


def test_an_old_sweep_is_left_as_it_was_and_another_version_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.json").write_text("{}")
    other = {**code_version(), "cogdsl": "0.0.9", "commit": "0123456789abcdef"}
    monkeypatch.setattr(run, "probe_nodes", _answers(("node 10.0.0.2", {"host": "old", "sees": True,
                                                                          "code": other})))
    run.check_nodes(out, print)
    said = capsys.readouterr().out
    assert "note: old runs cogdsl 0.0.9 at commit 0123456" in said and "1 node checked" in said
    assert [p.name for p in out.iterdir()] == ["sweep.json"]
    monkeypatch.setattr(run, "probe_nodes", _answers(("node 10.0.0.2", "gave no answer in 120 s")))
    with pytest.raises(UsageError, match=r"node 10\.0\.0\.2: gave no answer"):
        run.check_nodes(out, print)
    assert [p.name for p in out.iterdir()] == ["sweep.json"]
