"""Which code a trial ran: the versions of cogdsl and torch, and the git commit of a cogdsl checkout.

A results table is only as good as the statement of what produced it; a sweep that was interrupted and resumed
may have run its trials at different commits. Each trial's ``trial.json`` records :func:`code_version`, and
``cogdsl table`` names the commits its trials ran at.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: The folder that holds the ``cogdsl`` package: a git checkout when cogdsl is installed editable from one.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]

#: In a copy of cogdsl a sweep's driver shipped to a cluster (:mod:`cogdsl.sweep.ship`): the driver's
#: :func:`code_version`.
SHIPPED_FILE = "_shipped.json"


#: What a trial does not run: a change there (a results page written while its sweep runs) is not a change of
#: the code, so it does not make a checkout dirty.
NOT_CODE = (":(exclude)docs", ":(exclude)tests", ":(exclude)*.md")


def code_version(root: Path = PACKAGE_ROOT) -> dict[str, Any]:
    """{"cogdsl": version, "torch": version, "commit": the checkout's HEAD or None, "dirty": whether tracked files
    other than the docs and tests (:data:`NOT_CODE`) differ from it, or None}.

    The commit is read only when ``root`` is itself the top of a git work tree (cogdsl installed editable from
    a clone), never from a repository that merely contains an installed copy (a venv inside a project); no
    git, or a git that fails or hangs, gives None. In a copy a sweep's driver shipped (:data:`SHIPPED_FILE`), the
    commit and changes are the driver's, and ``"shipped": True`` is added."""
    from cogdsl.training.checkpoints import library_versions

    libraries = library_versions()
    version: dict[str, Any] = {"cogdsl": libraries["cogdsl"], "torch": libraries["torch"], "commit": None,
                               "dirty": None}
    shipped = _shipped(root / "cogdsl" / SHIPPED_FILE)
    if shipped is not None:
        return {**version, "commit": shipped.get("commit"), "dirty": shipped.get("dirty"), "shipped": True}
    if not (root / ".git").exists():
        return version
    top = _git(root, "rev-parse", "--show-toplevel")
    commit = _git(root, "rev-parse", "HEAD")
    if top is None or commit is None or Path(top).resolve() != root.resolve():
        return version
    status = _git(root, "status", "--porcelain", "--untracked-files=no", "--", ".", *NOT_CODE)
    version.update(commit=commit, dirty=None if status is None else bool(status))
    return version


def _shipped(path: Path) -> dict[str, Any] | None:
    """The driver's code version a shipped copy holds, or None (no such file: an installed cogdsl or a checkout)."""
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return recorded if isinstance(recorded, dict) else None


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def commits_note(codes: Iterable[Any]) -> str | None:
    """"Code: commit 2eb6a94 (28 trials), commit 66fb369 with uncommitted changes (8 trials)." for the trials'
    recorded code (:func:`code_version`, or None where a trial recorded none), most trials first; trials that
    recorded no commit are counted as such; None when no trial recorded its code."""
    counts: Counter[str] = Counter()
    for code in codes:
        if not isinstance(code, dict):
            counts["no record of its code"] += 1
            continue
        commit = code.get("commit")
        if not commit:
            counts[f"cogdsl {code.get('cogdsl', '?')}, no git commit"] += 1
            continue
        counts["commit " + str(commit)[:7] + (" with uncommitted changes" if code.get("dirty") else "")] += 1
    if not counts or set(counts) == {"no record of its code"}:
        return None
    parts = [f"{name} ({count} trial{'s' if count != 1 else ''})" for name, count in counts.most_common()]
    return f"Code: {', '.join(parts)}."
