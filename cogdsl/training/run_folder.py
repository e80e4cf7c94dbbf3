"""The run folder: what may be done with it, and its ``log.csv``.

A run folder (default ``runs/<model>``) is written by rank 0 of a run alone::

    spec.yaml            the spec as trained: the train section with the overrides applied
    log.csv              one row every log_every steps (columns: :func:`log_columns`)
    learning_curve.png   redrawn after an evaluation (at most every 30 s) and at the end
    events.out.tfevents.*  TensorBoard (cogdsl.training.tracking)
    checkpoints/         step_XXXXXXXX.safetensors + .json (cogdsl.training.checkpoints)

An existing folder is never replaced without ``--force``, and ``--force`` replaces only a
folder that looks like a run (never the current folder, a parent of it or the home folder).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from cogdsl.errors import UsageError
from cogdsl.training.checkpoints import CHECKPOINT_DIR, atomic_write_text, list_checkpoints

LOG_ROLES = ("step", "sequences", "seconds", "loss", "bit_errors", "seq_per_sec", "eval_loss", "eval_bit_errors",
             "skipped")
"""What each column of ``log.csv`` holds, in order; :func:`log_columns` names them for a task. ``skipped``: the
steps skipped so far because their loss or a gradient was not finite."""

LOG_COLUMNS = (*LOG_ROLES[:-1], "skipped_steps")  # the names for tasks scored by bit errors (copy, repeat copy ...)
_RUN_MARKERS = ("spec.yaml", "log.csv", CHECKPOINT_DIR)


def log_columns(items: str = "sequences", errors: str = "bit_errors") -> tuple[str, ...]:
    """The header of ``log.csv`` for a task that counts ``items`` (``sequences``, ``questions``, ``images``)
    and reports ``errors`` (``bit_errors`` per sequence, or ``error_rate``, the fraction answered wrongly):
    ``step, <items>, seconds, loss, <errors>, <items>_per_sec, eval_loss, eval_<errors>``."""
    if (items, errors) == ("sequences", "bit_errors"):
        return LOG_COLUMNS
    per_second = "seq_per_sec" if items == "sequences" else f"{items}_per_sec"
    return ("step", items, "seconds", "loss", errors, per_second, "eval_loss", f"eval_{errors}", "skipped_steps")


def looks_like_run(folder: Path) -> bool:
    """Whether ``folder`` holds a run's files (spec.yaml, log.csv or checkpoints/)."""
    return any((folder / marker).exists() for marker in _RUN_MARKERS)


def check_run_dir(out: Path, *, resume: bool, force: bool) -> Path | None:
    """Check what may be done with the output folder, touching nothing; the newest checkpoint, if resuming
    (:func:`cogdsl.training.checkpoints.load_resumable` falls back from it when it is damaged).

    Raises:
        UsageError: the folder exists (without resume or force), has nothing to resume, or
            is not a run folder that force could replace.
    """
    if resume and force:
        raise UsageError("pass either --resume or --force, not both")
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder; choose another --out")
    nonempty = out.is_dir() and any(out.iterdir())
    if resume:
        if not nonempty:
            raise UsageError(f"{out}: no run to resume there; leave out --resume to start one")
        found = list_checkpoints(out)
        if not found:
            raise UsageError(f"{out} has no checkpoint to resume from; pass --force to start the run again")
        return found[-1]
    if nonempty:
        if not force:
            raise UsageError(f"{out} exists; pass --resume to continue it or --force to replace it")
        resolved = out.resolve()
        if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents or resolved == Path.home():
            raise UsageError(f"{out} is the current folder, one of its parents or the home folder; "
                             "--force will not delete it: choose another --out")
        if not looks_like_run(out):
            raise UsageError(f"{out} is not a cogdsl run folder (it has no spec.yaml, log.csv or {CHECKPOINT_DIR}/); "
                             "--force only replaces run folders: choose another --out")
    return None


class RunLog:
    """log.csv, appended one row at a time (flushed, so a crash loses at most the current row).

    Rows are written by role (:data:`LOG_ROLES`), in column order; a resumed run keeps the header
    the file already has."""

    def __init__(self, path: Path, keep_through: int | None, columns: tuple[str, ...] = LOG_COLUMNS):
        self.path = path
        if keep_through is not None and path.exists():
            self._drop_rows_after(keep_through)
        fresh = not path.exists() or path.stat().st_size == 0
        self.width = len(columns)
        if not fresh:
            with open(path, newline="", encoding="utf-8") as handle:
                self.width = min(len(next(csv.reader(handle), columns)), len(LOG_ROLES)) or len(columns)
        self.handle = open(path, "a", newline="", encoding="utf-8")
        self.writer = csv.writer(self.handle)
        if fresh:
            self.writer.writerow(columns)
            self.handle.flush()

    def _drop_rows_after(self, step: int) -> None:
        """Rows a crashed run wrote after its last checkpoint would repeat on resume: drop them."""
        with open(self.path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        if not rows:
            return
        kept = [rows[0]] + [r for r in rows[1:] if r and r[0].strip().isdigit() and int(r[0]) <= step]
        if len(kept) != len(rows):
            text = io.StringIO()
            csv.writer(text).writerows(kept)
            atomic_write_text(self.path, text.getvalue())

    def row(self, **values: Any) -> None:
        """One row; ``values`` by role (``step=``, ``sequences=``, ``bit_errors=`` ...), None for a blank. A log
        an older cogdsl started keeps its columns (a resumed run writes no more cells than its header has)."""
        self.writer.writerow([_cell(values.get(role)) for role in LOG_ROLES[:self.width]])
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return str(value)
