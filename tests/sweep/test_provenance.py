"""Each trial records the code it ran (versions, the git commit of a cogdsl checkout), and cogdsl table names
the commits of its trials."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.cli.command import main
from cogdsl.sweep.provenance import PACKAGE_ROOT, code_version, commits_note

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="no git on this machine")


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


@needs_git
def test_a_checkout_gives_its_commit_and_whether_its_code_changed(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "commit", "-q", "-m", "one")
    (tmp_path / "new.py").write_text("untracked, not a change of the code that ran\n")
    version = code_version(tmp_path)
    assert version == {"cogdsl": cogdsl.__version__, "torch": torch.__version__,
                       "commit": _git(tmp_path, "rev-parse", "HEAD"), "dirty": False}
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("a table\n")
    (tmp_path / "NOTES.md").write_text("notes\n")
    _git(tmp_path, "add", "docs/page.md", "NOTES.md")
    _git(tmp_path, "commit", "-q", "-m", "two")
    (tmp_path / "docs" / "page.md").write_text("the table, regenerated while the sweep runs\n")
    (tmp_path / "NOTES.md").write_text("more\n")
    assert code_version(tmp_path)["dirty"] is False  # not the code that ran
    (tmp_path / "a.py").write_text("x = 2\n")
    assert code_version(tmp_path)["dirty"] is True


@needs_git
def test_no_commit_outside_a_checkout_or_below_its_top(tmp_path: Path) -> None:
    assert code_version(tmp_path)["commit"] is None  # no git repository at all
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "commit", "-q", "-m", "one")
    installed = tmp_path / "venv" / "site-packages"  # a copy installed inside someone's project
    installed.mkdir(parents=True)
    (installed / ".git").write_text("gitdir: nowhere\n")
    assert code_version(installed) == {"cogdsl": cogdsl.__version__, "torch": torch.__version__, "commit": None,
                                       "dirty": None}


@needs_git
def test_this_checkout_is_read() -> None:
    if not (PACKAGE_ROOT / ".git").exists():
        pytest.skip("cogdsl is not installed from a git checkout here")
    assert code_version()["commit"] == _git(PACKAGE_ROOT, "rev-parse", "HEAD")


def test_the_note_counts_trials_by_commit() -> None:
    codes = [{"commit": "2eb6a94aaaa", "dirty": False}] * 3 + [
        {"commit": "66fb369bbbb", "dirty": True}, {"cogdsl": "0.1.0", "commit": None}, None]
    assert commits_note(codes) == ("Code: commit 2eb6a94 (3 trials), commit 66fb369 with uncommitted changes "
                                     "(1 trial), cogdsl 0.1.0, no git commit (1 trial), no record of its code "
                                     "(1 trial).")
    assert commits_note([None, None]) is None and commits_note([]) is None


def test_the_table_names_the_commits_its_trials_ran(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "sweep"
    trials = []
    for seed, commit in enumerate(["aaaaaaa1", "bbbbbbb2", "aaaaaaa1"]):
        folder = sweep / f"t-seed{seed}"
        folder.mkdir(parents=True)
        (folder / "trial.json").write_text(json.dumps({
            "status": "done", "seed": seed, "cpu_seconds": 1.0, "code": {"commit": commit, "dirty": False},
            "scored": {"weights": "last", "step": 1, "metrics": {"perfect@2": 0.5}}}))
        trials.append({"id": f"t-seed{seed}", "model": "t", "settings": {}, "seed": seed})
    (sweep / "sweep.json").write_text(json.dumps({"plan": {"table": {"metrics": ["perfect@2"]}}, "trials": trials}))
    assert main(["table", str(sweep)]) == 0
    assert "Code: commit aaaaaaa (2 trials), commit bbbbbbb (1 trial)." in capsys.readouterr().out
