"""``cogdsl table SWEEP``: a sweep's results, read from its run folders, as Markdown and CSV.

One row per spec and setting: the median over seeds of each metric, one metric's value for each seed, the seeds
finished and failed, and the CPU (or GPU) seconds per trial. Nothing is recomputed: every number is read from
the trials' folders, so the table of a sweep run on a cluster is made anywhere its folder is. The metrics:

- what the trial scored (``trial.json``, :mod:`cogdsl.sweep.score`): ``perfect``, ``error``, ``wrong``,
  ``loss`` (``@L`` for each test length), the task's own (``task_3_error``), ``updates_skipped`` ...
- from the run's ``log.csv``: ``valid_loss`` and ``valid_errors`` (the evaluation of the weights scored: the best
  validation's, or the last), ``best_valid_errors`` and ``last_valid_errors`` (with their steps in
  ``best_step``, ``last_step``), ``reached`` (the step of the first evaluation under the plan's ``target``
  errors; empty if none), ``relapses`` (evaluations more than ``relapse`` errors worse than the best before
  them, once the run had been under 5 x target: a model that learned and lost it), ``skipped_steps``
  (non-finite steps), ``steps`` and ``minutes`` (training time);
- from the marker: ``cpu_seconds`` and ``wall_seconds`` of the whole trial (training and scoring).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cogdsl.errors import UsageError, did_you_mean
from cogdsl.sweep.plan import TableSettings
from cogdsl.sweep.provenance import commits_note
from cogdsl.sweep.settings import value_text
from cogdsl.sweep.trial import FINISHED, TRIAL_FILE, read_marker

PERCENT = ("perfect", "error", "updates_skipped", "both_markers_read", "exact_caption")
WHOLE = ("reached", "relapses", "skipped_steps", "steps", "best_step", "last_step")
LOG_METRICS = ("valid_loss", "valid_errors", "best_valid_errors", "best_step", "last_valid_errors", "last_step",
               "reached", "relapses", "skipped_steps", "steps", "minutes", "cpu_seconds", "wall_seconds")


@dataclass
class TrialResult:
    """One trial as its folder tells it."""

    id: str
    model: str
    settings: dict[str, Any]
    seed: int
    status: str  # done, time, failed, interrupted, "not finished" (no marker) or "trial.json unreadable"
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None  # CPU seconds, or GPU seconds (wall x GPUs) on a GPU
    device: str = "cpu"
    weights: str | None = None  # the checkpoint scored: best or last
    split: str | None = None  # the split scored: test or valid (None: a marker from before it was kept)
    error: str | None = None
    code: dict[str, Any] | None = None  # the versions and git commit it ran (cogdsl.sweep.provenance)
    resumed: bool = False  # continued from a checkpoint of an interrupted attempt
    counts_earlier: bool = False  # its seconds include the earlier attempts' (markers before this was kept lack it)
    damaged: str | None = None  # what of its folder could not be read (a log.csv cut short, a hand-edited file)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def read_sweep(folder: Path) -> tuple[dict[str, Any], list[TrialResult]]:
    """The plan (as sweep.json keeps it) and every trial of the sweep in ``folder``.

    Raises:
        UsageError: ``folder`` is no sweep folder."""
    from cogdsl.sweep.run import SWEEP_FILE

    try:
        data = json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{folder} is not a sweep folder: it has no {SWEEP_FILE} (cogdsl sweep writes one)") from None
    except (OSError, ValueError) as err:
        raise UsageError(f"{folder / SWEEP_FILE}: cannot read it ({err})") from None
    plan, trials = _checked_record(data, folder / SWEEP_FILE)
    table = TableSettings(**{k: v for k, v in plan["table"].items() if k in TableSettings.__dataclass_fields__})
    return plan, [read_trial(folder / t["id"], t, table) for t in trials]


def _checked_record(data: Any, path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """sweep.json's plan (its ``table`` settings checked, ``metrics`` a list) and its trials, each a folder of
    the sweep once.

    Raises:
        UsageError: what of it is not as cogdsl sweep writes it, naming the file."""
    def wrong(what: str) -> UsageError:
        return UsageError(f"{path}: {what}; cogdsl sweep writes this file (run it again, or restore the file)")

    trials = data.get("trials") if isinstance(data, dict) else None
    if not isinstance(trials, list) or not all(isinstance(t, dict) and {"id", "model", "settings", "seed"} <= t.keys()
                                               for t in trials):
        raise UsageError(f"{path}: not a sweep's record (it has no list of trials with their id, "
                         "model, settings and seed); cogdsl sweep writes it")
    if not trials:
        raise wrong("it lists no trials")
    seen: set[str] = set()
    for trial in trials:
        trial_id = trial["id"]
        if not isinstance(trial_id, str) or not trial_id or trial_id in (".", "..") or "/" in trial_id \
                or "\\" in trial_id or "\0" in trial_id:
            raise wrong(f"trial id {trial_id!r} is not the name of a folder in the sweep's folder")
        if trial_id in seen:
            raise wrong(f"trial {trial_id} is listed twice")
        seen.add(trial_id)
        if not isinstance(trial["model"], str):
            raise wrong(f"trial {trial_id}'s model is not a name")
        if not isinstance(trial["settings"], dict):
            raise wrong(f"trial {trial_id}'s settings are not a table")
        if isinstance(trial["seed"], bool) or not isinstance(trial["seed"], int):
            raise wrong(f"trial {trial_id}'s seed is not a whole number")
    plan = data.get("plan")
    plan = {} if plan is None else plan
    if not isinstance(plan, dict):
        raise wrong("its plan is not a table")
    table = plan.get("table")
    table = {} if table is None else table
    if not isinstance(table, dict):
        raise wrong("the plan's table is not a table")
    metrics = table.get("metrics")
    metrics = [] if metrics is None else [metrics] if isinstance(metrics, str) else metrics
    if not isinstance(metrics, list) or not all(isinstance(m, str) and m for m in metrics):
        raise wrong("the table's metrics are not a list of names")
    for key in ("each", "pick"):
        if table.get(key) is not None and not isinstance(table[key], str):
            raise wrong(f"the table's {key} is not a metric's name")
    for key in ("target", "relapse"):
        value = table.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise wrong(f"the table's {key} is not a number")
    if not isinstance(table.get("trials", False), bool):
        raise wrong("the table's trials is not true or false")
    checked = {k: v for k, v in table.items() if v is not None}
    return {**plan, "table": {**checked, "metrics": metrics}}, trials


# What each key of a trial.json may be: a marker whose keys are otherwise was edited or damaged.
MARKER_TYPES: dict[str, tuple[type, ...]] = {
    "status": (str,), "error": (str,), "device": (str,), "gpus": (int, float), "cpu_seconds": (int, float),
    "wall_seconds": (int, float), "scored": (dict,), "resumed": (bool,), "code": (dict,)}
SCORED_TYPES: dict[str, tuple[type, ...]] = {"weights": (str,), "step": (int,), "metrics": (dict,)}


def _marker_problem(marker: dict[str, Any]) -> str | None:
    """The first key of ``marker`` (or of its ``scored``) that is not of its type; None when all are."""
    for types, data, where in ((MARKER_TYPES, marker, ""), (SCORED_TYPES, marker.get("scored") or {}, "scored.")):
        for key, allowed in types.items():
            value = data.get(key)
            if value is not None and ((isinstance(value, bool) and bool not in allowed)
                                      or not isinstance(value, allowed)):
                return f"{where}{key} is {type(value).__name__}"
    return None


def read_trial(folder: Path, trial: dict[str, Any], table: TableSettings) -> TrialResult:
    """One trial's metrics: its marker's scores, and what its log.csv says."""
    marker = read_marker(folder) or {}
    missing = "trial.json unreadable" if (folder / TRIAL_FILE).exists() and not marker else "not finished"
    problem = _marker_problem(marker)
    if problem:  # shown as damaged, as one cut short is
        marker, missing = {}, f"trial.json damaged: {problem}"
    result = TrialResult(trial["id"], trial["model"], trial["settings"], int(trial["seed"]),
                         str(marker.get("status", missing)), error=marker.get("error"), code=marker.get("code"))
    if not marker:
        return result
    scored = marker.get("scored") or {}
    result.weights = scored.get("weights")
    result.split = scored.get("split")
    result.device = str(marker.get("device", "cpu"))
    gpus = float(marker.get("gpus") or 0)
    if gpus > 0 and isinstance(marker.get("wall_seconds"), (int, float)):
        result.seconds = float(marker["wall_seconds"]) * gpus
    elif isinstance(marker.get("cpu_seconds"), (int, float)):
        result.seconds = float(marker["cpu_seconds"])
    for name in ("cpu_seconds", "wall_seconds"):
        if isinstance(marker.get(name), (int, float)):
            result.metrics[name] = float(marker[name])
    problems: list[str] = []
    result.metrics.update(log_metrics(folder / "log.csv", scored.get("step"), table, problems))
    if problems:
        result.damaged = f"log.csv {problems[0]}"
    result.metrics.update({k: float(v) for k, v in (scored.get("metrics") or {}).items()
                           if isinstance(v, (int, float)) and not isinstance(v, bool)})
    result.resumed = bool(marker.get("resumed"))
    result.counts_earlier = "earlier_cpu_seconds" in marker
    return result


def log_metrics(path: Path, scored_step: int | None, table: TableSettings, problems: list[str] | None = None
                ) -> dict[str, float]:
    """The metrics a run's log.csv gives (the module's list); columns are read by position, as
    :data:`cogdsl.training.run_folder.LOG_ROLES` orders them, whatever the task names its errors. What of the
    file is damaged (not CSV text, a row whose step is no step) is added to ``problems`` in words."""
    problems = [] if problems is None else problems
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))[1:]
    except OSError:
        return {}
    except (UnicodeDecodeError, csv.Error) as err:
        problems.append(f"cannot be read ({err})")
        return {}
    out: dict[str, float] = {}
    evaluations: list[tuple[int, float, float]] = []  # (step, eval loss, eval errors)
    for number, row in enumerate(rows, 2):
        step = _whole(row[0]) if row else None
        if len(row) >= 8 and step is None:
            problems.append(f"line {number}'s step is not a whole number")
        if len(row) < 8 or step is None:  # a last line cut short by a kill, too
            continue
        out["steps"] = float(step)
        out["minutes"] = _float(row[2]) / 60 if _float(row[2]) == _float(row[2]) else math.nan
        if len(row) > 8 and row[8].strip():
            out["skipped_steps"] = _float(row[8])
        if row[6].strip() and row[7].strip():
            evaluations.append((step, _float(row[6]), _float(row[7])))
    if not evaluations:
        return out
    at = {step: (loss, errors) for step, loss, errors in evaluations}
    step = scored_step if scored_step in at else evaluations[-1][0]
    out["valid_loss"], out["valid_errors"] = at[step]
    best = min(evaluations, key=lambda e: e[2])
    out["best_valid_errors"], out["best_step"] = best[2], float(best[0])
    out["last_valid_errors"], out["last_step"] = evaluations[-1][2], float(evaluations[-1][0])
    reached = next((s for s, _, errors in evaluations if errors < table.target), None)
    out["reached"] = float(reached) if reached is not None else math.nan
    out["relapses"] = float(len(relapses([(s, e) for s, _, e in evaluations], table.target, table.relapse)))
    return out


def relapses(evaluations: list[tuple[int, float]], target: float, jump: float) -> list[int]:
    """Steps of the evaluations more than ``jump`` errors worse than the best before them, once the run had been
    under 5 x ``target``: a model that had learned and then lost it."""
    best, learned, steps = math.inf, False, []
    for step, errors in evaluations:
        if learned and errors > best + jump:
            steps.append(step)
        best = min(best, errors)
        learned = learned or errors < 5 * target
    return steps


def _whole(text: str) -> int | None:
    """A step of log.csv; None for anything else (a damaged row)."""
    text = text.strip()
    if not text.isdigit() or len(text) > 18:
        return None
    return int(text)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


# -- the table -------------------------------------------------------------------------------------------------


@dataclass
class Table:
    """The rows of a sweep's table and what its columns are."""

    header: list[str]
    rows: list[list[str]]
    csv_header: list[str]
    csv_rows: list[list[Any]]
    notes: list[str]

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines + (["", *self.notes] if self.notes else [])) + "\n"

    def csv(self) -> str:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(self.csv_header)
        writer.writerows(self.csv_rows)
        return text.getvalue()


def make_table(trials: list[TrialResult], metrics: list[str], each: str | None, pick: str | None,
               by_trial: bool = False) -> Table:
    """Group ``trials`` by spec and setting (in the sweep's order) and make the table.

    Raises:
        UsageError: a metric no finished trial has (the message lists those they have)."""
    finished = [t for t in trials if t.finished]
    known = sorted({name for t in finished for name in t.metrics})
    waiting = []  # metrics only trials that have not finished may have (a half-run sweep: a spec not reached yet)
    for name in [*metrics, *(x for x in (each, pick) if x)]:
        if finished and name not in known:
            close = did_you_mean(name, known)
            if len(finished) < len(trials) and not close:
                waiting.append(name)
                continue
            hint = f"{close} " if close else ""
            raise UsageError(f"no finished trial has the metric '{name}'; {hint}the metrics are {', '.join(known)}")
    varying = [p for p in dict.fromkeys(p for t in trials for p in t.settings)
               if len({value_text(t.settings.get(p)) for t in trials}) > 1]
    names = _column_names(varying)
    gpu = any(t.device.startswith("cuda") for t in finished)
    unit = "GPU s/trial" if gpu else "CPU s/trial"
    if by_trial:
        return _by_trial(trials, metrics, varying, names, unit)
    groups: dict[tuple[str, str], list[TrialResult]] = {}
    for t in trials:
        key = (t.model, json.dumps({p: value_text(t.settings.get(p)) for p in t.settings}, sort_keys=True))
        groups.setdefault(key, []).append(t)
    seeds = sorted({t.seed for t in trials})
    picked = each or (metrics[0] if metrics else pick or "")
    header = ["spec", *names, *metrics]
    csv_header = ["spec", *names, *(f"{m} median" for m in metrics)]
    if each:
        header.append(f"{each}, each seed")
        csv_header += [f"{each} seed {s}" for s in seeds]
    if pick:
        header.append(f"{picked}, the seed of {'highest' if higher_is_better(pick) else 'lowest'} {pick}")
        csv_header += ["picked seed", f"picked {picked}"]
    header += ["seeds", unit]
    csv_header += ["seeds finished", "seeds failed", unit.replace(" s/trial", "_seconds_per_trial").lower()]
    rows, csv_rows = [], []
    for (model, _), group in groups.items():
        done = [t for t in group if t.finished]
        cells = [f"`{model}`", *(value_text(group[0].settings.get(p)) for p in varying)]
        raw: list[Any] = [model, *(value_text(group[0].settings.get(p)) for p in varying)]
        for m in metrics:
            median = _median([t.metrics.get(m) for t in done])
            cells.append(shown(m, median))
            raw.append(_raw(median))
        if each:
            by_seed = sorted(group, key=lambda t: t.seed)
            cells.append(", ".join(shown(each, t.metrics.get(each)) if t.finished else t.status for t in by_seed))
            values = {t.seed: t.metrics.get(each) for t in done}
            raw += [_raw(values.get(s)) for s in seeds]
        if pick:
            candidates = [t for t in done if _finite(t.metrics.get(pick))]
            if candidates:
                best = max if higher_is_better(pick) else min
                chosen = best(candidates, key=lambda t: t.metrics[pick])
                cells.append(f"{shown(picked, chosen.metrics.get(picked))} (seed {chosen.seed})")
                raw += [chosen.seed, _raw(chosen.metrics.get(picked))]
            else:
                cells.append("–")
                raw += ["", ""]
        failed = sum(t.status == "failed" for t in group)
        others = len(group) - len(done) - failed
        cells.append(f"{len(done)}" + (f" ({failed} failed)" if failed else "")
                     + (f" ({others} not finished)" if others else ""))
        seconds = _mean([t.seconds for t in done])
        cells.append(f"{seconds:,.0f}" if seconds is not None else "–")
        raw += [len(done), failed, _raw(seconds)]
        rows.append(cells)
        csv_rows.append(raw)
    notes = _notes(trials, seeds)
    if waiting:
        notes.insert(1, f"No finished trial has {', '.join(waiting)} yet.")
    return Table(header, rows, csv_header, csv_rows, notes)


def _by_trial(trials: list[TrialResult], metrics: list[str], varying: list[str], names: list[str],
              unit: str) -> Table:
    header = ["spec", *names, "seed", "status", *metrics, unit]
    rows, csv_rows = [], []
    for t in trials:
        values = [t.metrics.get(m) if t.finished else None for m in metrics]
        settings = [value_text(t.settings.get(p)) for p in varying]
        rows.append([f"`{t.model}`", *settings, str(t.seed), t.status, *(shown(m, v) for m, v in
                                                                          zip(metrics, values, strict=True)),
                     f"{t.seconds:,.0f}" if t.seconds is not None else "–"])
        csv_rows.append([t.model, *settings, t.seed, t.status, *(_raw(v) for v in values), _raw(t.seconds)])
    csv_header = ["spec", *names, "seed", "status", *metrics, unit.replace(" s/trial", "_seconds").lower()]
    return Table(header, rows, csv_header, csv_rows, _notes(trials, sorted({t.seed for t in trials}), by_trial=True))


def _column_names(paths: list[str]) -> list[str]:
    last = [p.split(".")[-1] for p in paths]
    return [p if last.count(p.split(".")[-1]) > 1 else p.split(".")[-1] for p in paths]


def _notes(trials: list[TrialResult], seeds: list[int], by_trial: bool = False) -> list[str]:
    done = [t for t in trials if t.finished]
    weights = {w: sum(t.weights == w for t in done) for w in ("best", "last")}
    scored = " and ".join(f"{n} on the {'best validation' if w == 'best' else 'last'} checkpoint"
                          for w, n in weights.items() if n)
    median = "" if by_trial else f"Median over seeds {', '.join(map(str, seeds))}; "
    notes = [f"{median}{len(done)} of {len(trials)} trials finished" + (f", scored {scored}" if scored else "") + "."]
    on_valid = [t.id for t in done if t.split == "valid"]
    if on_valid:
        notes.append(f"Scored on the validation split, not test: {len(on_valid)} of {len(done)} trials"
                     f"{'' if len(on_valid) == len(done) else ' (' + ', '.join(on_valid) + ')'}.")
    code = commits_note(t.code for t in done)
    if code:
        notes.append(code)
    for counted, said in ((True, "their seconds include the training their checkpoints kept from the earlier "
                                 "attempts"), (False, "their seconds are those of the last part")):
        resumed = [t.id for t in done if t.resumed and t.counts_earlier == counted]
        if resumed:
            notes.append(f"Resumed after an interruption ({said}): {', '.join(resumed)}.")
    timed = [t.id for t in done if t.status == "time"]
    if timed:
        notes.append(f"Stopped at their --max-minutes before their last step: {', '.join(timed)}.")
    for t in trials:
        if t.damaged:
            notes.append(f"Damaged: {t.id}: its {t.damaged}; what it gives is left out.")
        if t.status == "failed":
            first = (t.error or "no message").strip().splitlines()
            notes.append(f"Failed: {t.id}: {first[0] if first else 'no message'}")
        elif not t.finished:
            notes.append(f"Not finished: {t.id} ({t.status}).")
    return notes


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is the better one (``perfect``, an ``*_accuracy``, BLEU), so that
    ``--pick`` takes the seed with the largest; for the others (losses, errors, steps) the smallest."""
    base = metric.split("@")[0]
    return base in ("perfect", "both_markers_read", "exact_caption") or base.endswith("_accuracy") \
        or base.startswith("corpus_bleu")


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _median(values: list[float | None]) -> float | None:
    kept = [v for v in values if _finite(v)]
    return statistics.median(kept) if kept else None


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if _finite(v)]
    return statistics.fmean(kept) if kept else None


def _raw(value: float | None) -> Any:
    return "" if value is None or not math.isfinite(value) else round(value, 6)


def shown(metric: str, value: float | None) -> str:
    """A metric's value as the results pages write it: fractions in percent, BLEU on its usual 0-100 scale,
    counts whole, the rest with two decimals (two significant digits under 0.1)."""
    if value is None or not math.isfinite(value):
        return "–"
    base = metric.split("@")[0]
    if base in PERCENT or base.endswith(("_accuracy", "_error")):
        return f"{100 * value:.1f}%"
    if "bleu" in base:
        return f"{100 * value:.1f}"
    if base in WHOLE:
        return f"{value:,.0f}"
    if value == 0:
        return "0"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.2g}"


def default_metrics(trials: list[TrialResult]) -> list[str]:
    """The columns when neither the plan nor ``--metric`` names any: each test length's ``perfect``, and the
    validation loss of the weights scored."""
    names = dict.fromkeys(n for t in trials if t.finished for n in t.metrics)
    return [n for n in names if n.split("@")[0] == "perfect"] + ["valid_loss"]


def check_outputs(folder: Path, paths: list[str], *, force: bool) -> None:
    """The files ``cogdsl table`` is to write: each new (or ``force``), none a folder or one of the sweep's own
    records (sweep.json, summary.json, a trial's files), and no file given twice.

    Raises:
        UsageError: the first that is not so."""
    from cogdsl.sweep.run import SUMMARY_FILE, SWEEP_FILE

    sweep = folder.resolve()
    seen: dict[Path, str] = {}
    for path in paths:
        resolved = Path(path).resolve()
        if resolved in seen:
            raise UsageError(f"{path}: --markdown and --csv name one file; give each its own")
        seen[resolved] = path
        if resolved.is_dir():
            raise UsageError(f"{path} is a folder; give a file's name, e.g. {Path(path) / 'table.md'}")
        if resolved in (sweep / SWEEP_FILE, sweep / SUMMARY_FILE) or (
                sweep in resolved.parents and resolved.parent != sweep):
            raise UsageError(f"{path} is one of the sweep's own files; write the table beside them (e.g. "
                             f"{folder / 'table.md'}) or elsewhere")
        if resolved.exists() and not force:
            raise UsageError(f"{path} exists; pass --force to overwrite it")
        if not resolved.parent.is_dir():
            raise UsageError(f"{path}: no such folder {Path(path).parent}")


def table_command(args: Any) -> int:
    """``cogdsl table SWEEP [--metric NAME ...] [--each NAME] [--pick NAME] [--trials | --medians] [--markdown F]
    [--csv F] [--force]``: print the table as Markdown, and write it to the files given."""
    folder = Path(args.sweep)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file: cogdsl table reads a sweep's folder (cogdsl sweep --out, default "
                         "runs/sweeps/NAME)")
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such sweep folder")
    plan, trials = read_sweep(folder)
    settings = plan.get("table") or {}
    metrics = list(args.metric or settings.get("metrics") or default_metrics(trials))
    each = args.each if args.each is not None else settings.get("each") or (metrics[0] if metrics else None)
    pick = args.pick if args.pick is not None else settings.get("pick")
    for option, given in (("--markdown", args.markdown), ("--csv", args.csv)):
        if given is not None and not given.strip():
            raise UsageError(f"{option} is empty; give the file to write")
    check_outputs(folder, [p for p in (args.markdown, args.csv) if p], force=args.force)
    by_trial = bool(args.trials or (settings.get("trials") and not getattr(args, "medians", False)))
    table = make_table(trials, metrics, each or None, pick or None, by_trial=by_trial)
    text = table.markdown()
    print(text, end="")
    from cogdsl.training.checkpoints import atomic_write_text

    if args.markdown:
        atomic_write_text(args.markdown, text)
    if args.csv:
        atomic_write_text(args.csv, table.csv())
    return 0
