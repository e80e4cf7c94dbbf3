"""A sweep's plan: which specs, which settings, which seeds, how each trial is scored and tabled.

From the command line (``cogdsl sweep SPEC... --set PATH=V1,V2 --seeds 3``) or from a plan file
(``cogdsl sweep --plan sweeps/stack_languages.yaml``; the command line's settings change a plan's)::

    # sweeps/stack_languages.yaml: the table of docs/results/stack_languages.md
    doc: Stacks on the stack-RNN paper's languages
    specs: [../specs/stack_anbn.cog, ../specs/lstm_anbn.cog]   # relative to this file's folder
    seeds: 3                                  # 0, 1, 2; or a list [3, 4, 5]
    set:                                      # every combination of these values (one value: no list needed)
      train.task.name: [anbn, anbncn, anbncndn, anb2n, anbmcnm, mirror]
      inputs.x: null                          # the sizes are then the task's
      outputs.y.size: null
    score: {lengths: [10, 20, 40, 60], sequences: 1000}
    table: {metrics: [perfect@10, perfect@20, perfect@40, perfect@60], each: perfect@60, pick: valid_loss}

:func:`Plan.trials` expands it to trials, each with a stable id (the model's name, its settings, its seed),
so a resumed sweep finds the trials it already ran. Every problem (an unknown key, a path that is not in a
spec, a setting that makes a spec wrong) is one located message: the file's line and column, or the
``--set`` it came from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cogdsl.errors import SpecError, UsageError, did_you_mean
from cogdsl.sweep.settings import (
    Setting,
    parse_value,
    setting,
    split_values,
    value_text,
    with_settings,
    yaml_numbers,
)

PLAN_KEYS = ("doc", "specs", "seeds", "set", "score", "table", "max_minutes", "cpus_per_trial", "gpus_per_trial",
             "tensorboard")
SCORE_KEYS = ("lengths", "sequences", "split", "weights", "skipped_updates")
TABLE_KEYS = ("metrics", "each", "pick", "target", "relapse", "trials")
WEIGHTS = ("auto", "best", "last")
SPLITS = ("test", "valid")
# The scores cogdsl.sweep.score names NAME@L at each given test length (the task's own scores too, task_3_error)
SCORED_AT_LENGTH = ("perfect", "error", "wrong", "loss", "updates_skipped", "both_markers_read")
MAX_ID = 120  # characters of a trial's id (a folder name) before its settings are shortened to a hash
MAX_SEEDS = 10_000  # seeds in one sweep: a larger count is a slip (a seed meant as a count), not a plan


@dataclass(frozen=True)
class Score:
    """What a trial measures after training (:mod:`cogdsl.sweep.score`).

    ``lengths``: the test lengths (None: the task's longest training length, or whole examples);
    ``sequences``: fresh sequences per length (QA tasks: the first that many questions of ``split``);
    ``weights``: ``best`` (the best validation's, when kept), ``last``, or ``auto``: best when the spec
    itself writes ``keep_best: true``; ``skipped_updates``: also the fraction of steps a skip RNN skipped."""

    lengths: tuple[int | None, ...] = (None,)
    sequences: int = 1000
    split: str = "test"
    weights: str = "auto"
    skipped_updates: bool = False


@dataclass(frozen=True)
class TableSettings:
    """How ``cogdsl table`` shows a sweep (:mod:`cogdsl.sweep.table`): its metric columns, the metric shown for
    each seed, the metric whose best seed is picked, the thresholds of ``reached`` and ``relapses``, and
    whether it has one row per trial instead of the median over seeds."""

    metrics: tuple[str, ...] = ()
    each: str | None = None
    pick: str | None = None
    target: float = 1.0
    relapse: float = 10.0
    trials: bool = False


@dataclass(frozen=True)
class Trial:
    """One training run of a sweep: a spec, its settings (dotted path -> value) and a seed."""

    id: str
    spec: str  # the spec file as given
    model: str
    settings: dict[str, Any]
    seed: int
    spec_yaml: str  # the spec with the settings applied, in YAML
    spec_name: str  # the name its messages show: the spec file, "(with settings)" when it has any

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "spec": self.spec, "model": self.model, "settings": self.settings, "seed": self.seed,
                "spec_yaml": self.spec_yaml, "spec_name": self.spec_name}

    def absolute(self) -> Trial:
        """The trial with its spec's paths absolute: a worker's current folder is not the sweep's."""
        suffix = " (with settings)" if self.spec_name.endswith(" (with settings)") else ""
        name = str(Path(self.spec_name.removesuffix(suffix)).resolve()) + suffix
        return dataclasses.replace(self, spec=str(Path(self.spec).resolve()), spec_name=name)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trial:
        return cls(**{k: data[k] for k in ("id", "spec", "model", "settings", "seed", "spec_yaml", "spec_name")})


@dataclass
class Plan:
    """A sweep's plan: specs x every combination of the settings' values x seeds, and how to score and table."""

    specs: list[str]
    settings: list[Setting] = field(default_factory=list)
    seeds: tuple[int, ...] | None = None  # None: each spec's own seed
    score: Score = field(default_factory=Score)
    table: TableSettings = field(default_factory=TableSettings)
    max_minutes: float | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None  # None: one where the cluster has GPUs
    tensorboard: bool = True  # TensorBoard event files in each run folder, as cogdsl train writes them
    doc: str = ""
    source: str | None = None  # the plan file

    def combinations(self) -> list[dict[str, Any]]:
        """Every combination of the settings' values, in order (the last setting varies fastest); linked paths
        take their values together."""
        return [{path: value for part in parts for path, value in part.items()}
                for parts in itertools.product(*(s.assignments() for s in self.settings))]

    def trials(self) -> list[Trial]:
        """The trials, every spec and every combination checked (:func:`cogdsl.sweep.settings.with_settings`).

        Raises:
            SpecError: a spec has errors of its own.
            UsageError: a setting is not in a spec or makes it wrong; two specs have one model name."""
        from cogdsl.compiler.pipeline import read_spec_file, validate_spec
        from cogdsl.training.loop import config_from_spec

        sources = {path: s.source for s in self.settings for path in s.paths}
        trials: list[Trial] = []
        models: dict[str, str] = {}
        for path in self.specs:
            if not Path(path).is_file():
                what = "is a folder, not a spec file" if Path(path).is_dir() else "no such spec file"
                raise UsageError(f"{path}: {what}" + (f" (in {self.source})" if self.source else ""))
            try:
                spec = read_spec_file(path)
                validate_spec(spec)
            except SpecError:
                _not_a_plan(path)  # a plan given where a spec goes: say so rather than its spec errors
                raise
            if models.setdefault(spec.name, path) != path:
                raise UsageError(f"{models[spec.name]} and {path} are both model '{spec.name}'; a sweep names its "
                                 "trials by model: give one of them another model name")
            for combination in self.combinations():
                changed, text = with_settings(spec, combination, sources)
                seeds = self.seeds if self.seeds is not None else (config_from_spec(changed, path).seed,)
                for seed in seeds:
                    trials.append(Trial(trial_id(spec.name, combination, seed), path, spec.name, combination, seed,
                                        text, changed.file))
        check_unique(trials)
        return trials

    def check_table(self) -> None:
        """Check that the table's metrics can be among the trials' scores, before anything trains: a scoring
        metric is named ``NAME@L`` for each test length L of ``score: lengths`` (``perfect@60``), and ``NAME``
        alone when the plan gives none (the task's own length).

        Raises:
            UsageError: a metric at a length the trials are not scored at, or a scoring metric without its
                length when they are scored at given lengths."""
        lengths = [length for length in self.score.lengths if length is not None]
        said = ", ".join(map(str, lengths))
        where = f"{self.source}: table" if self.source else "table"
        for name in [*self.table.metrics, *(m for m in (self.table.each, self.table.pick) if m)]:
            base, at, length = name.partition("@")
            if at and not (length.isdigit() and int(length) in lengths):
                scored = f"at lengths {said}" if lengths else "at the task's own length, so without @"
                raise UsageError(f"{where}: metric '{name}': the trials are scored {scored} (score: lengths, or "
                                 f"--lengths){f'; e.g. {base}@{lengths[0]}' if lengths else f'; e.g. {base}'}")
            if not at and base in SCORED_AT_LENGTH and None not in self.score.lengths:
                raise UsageError(f"{where}: metric '{name}': the trials are scored at lengths {said}: name one, "
                                 f"e.g. {name}@{lengths[0]}")

    def to_json(self) -> dict[str, Any]:
        """The plan as sweep.json keeps it (what ``cogdsl table`` reads back)."""
        return {"doc": self.doc, "source": self.source, "specs": self.specs,
                "set": {s.path: list(s.values) for s in self.settings},
                "seeds": list(self.seeds) if self.seeds is not None else None,
                "score": {**self.score.__dict__, "lengths": list(self.score.lengths)},
                "table": {**self.table.__dict__, "metrics": list(self.table.metrics)},
                "max_minutes": self.max_minutes, "cpus_per_trial": self.cpus_per_trial,
                "gpus_per_trial": self.gpus_per_trial, "tensorboard": self.tensorboard}


def check_unique(trials: Sequence[Trial]) -> None:
    """Each trial once: two with one id (a spec given twice, a value given twice) would share a run folder.

    Raises:
        UsageError: the first id given twice."""
    seen: set[str] = set()
    for trial in trials:
        if trial.id in seen:
            raise UsageError(f"two trials have the id {trial.id} (a spec or a setting's value given twice): each "
                             "spec, setting and seed once, please")
        seen.add(trial.id)


def trial_id(model: str, settings: dict[str, Any], seed: int) -> str:
    """A trial's id, a folder name that depends on nothing but the trial: ``stack_anbn-name=anbncn-seed0``.

    A setting is named by its last part (``blocks.mem.slots`` -> ``slots``), or its whole path when two of
    them end alike; a long id keeps its model and seed and gives a hash of the settings."""
    last = [path.split(".")[-1] for path in settings]
    names = [p if last.count(p.split(".")[-1]) > 1 else p.split(".")[-1] for p in settings]
    parts = [f"{name}={_safe(value_text(value))}" for name, value in zip(names, settings.values(), strict=True)]
    text = "-".join([model, *parts, f"seed{seed}"])
    if len(text) <= MAX_ID:
        return text
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{model}-{digest}-seed{seed}"


def _safe(text: str) -> str:
    text = re.sub(r"[{}\[\]'\" ]", "", text).replace(":", "=").replace(",", "+")
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", text)


# -- the command line -------------------------------------------------------------------------------


def parse_seeds(text: str, source: str = "--seeds") -> tuple[int, ...]:
    """``3`` -> seeds 0, 1, 2; ``3,4,5`` (or ``7,`` for seed 7 alone) -> those seeds.

    Raises:
        UsageError: not a count or a list of seeds."""
    from cogdsl.training.config import MAX_SEED

    items = [t.strip() for t in text.split(",")]
    try:
        if len(items) == 1:
            count = int(items[0])
            if count < 1:
                raise ValueError
            if count > MAX_SEEDS:
                raise UsageError(f"{source} {text}: at most {MAX_SEEDS:,} seeds in one sweep (for seed {text} "
                                 f"alone: {text},)")
            return tuple(range(count))
        seeds = tuple(int(t) for t in items if t)
    except ValueError:
        seeds = ()
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise UsageError(f"{source} {text}: give a count (3: seeds 0, 1, 2) or different seeds >= 0 (3,4,5; 7, for "
                         "seed 7 alone)")
    if max(seeds) > MAX_SEED:
        raise UsageError(f"{source} {text}: a seed is at most 2**63 - 1 ({MAX_SEED}); got {max(seeds)}")
    if len(seeds) > MAX_SEEDS:
        raise UsageError(f"{source}: at most {MAX_SEEDS:,} seeds in one sweep, got {len(seeds):,}")
    return seeds


def merged(plan: Plan, settings: Sequence[Setting]) -> Plan:
    """``plan`` with the command line's ``settings``: one for a path the plan sets replaces the plan's setting
    of it (linked paths included), others are added."""
    merged_settings = list(plan.settings)
    for given in settings:
        overlapping = [i for i, s in enumerate(merged_settings) if set(s.paths) & set(given.paths)]
        if overlapping:  # in the place of the first it replaces, so trial ids keep their order
            merged_settings[overlapping[0]] = given
            merged_settings = [s for i, s in enumerate(merged_settings) if i not in overlapping[1:]]
        else:
            merged_settings.append(given)
    plan.settings = merged_settings
    return plan


# -- plan files -------------------------------------------------------------------------------------


class _Marks:
    """Where each key and value of a YAML file is (line and column, 1-based), by its path of keys."""

    def __init__(self, text: str, file: str):
        self.file = file
        self.marks: dict[tuple[Any, ...], tuple[int, int]] = {}
        self.repeated: list[tuple[tuple[Any, ...], tuple[int, int], tuple[int, int]]] = []  # (path, first, again)
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            root = None
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: tuple[Any, ...]) -> None:
        self.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*path, key.value)
                mark = (key.start_mark.line + 1, key.start_mark.column + 1)
                if here in self.marks and isinstance(key, yaml.ScalarNode):
                    self.repeated.append((here, self.marks[here], mark))
                self.marks[here] = mark
                self._walk(value, here)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*path, i))

    def check_repeated(self) -> None:
        """Raises UsageError at the second of a key given twice in one table (YAML takes the last silently)."""
        if self.repeated:
            path, first, again = self.repeated[0]
            raise UsageError(f"{self.file}:{again[0]}:{again[1]}: {path[-1]} is given twice in this table (first at "
                             f"line {first[0]}); give it once")

    def at(self, *path: Any) -> str:
        while path and path not in self.marks:
            path = path[:-1]
        line, col = self.marks.get(path, (1, 1))
        return f"{self.file}:{line}:{col}"


def load_plan(path: str | Path) -> Plan:
    """Read a plan file (YAML, read with the safe loader); spec paths are relative to its folder.

    Raises:
        UsageError: the file cannot be read, is not YAML, or has a key or value that is wrong, located as
            ``file:line:col``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--plan {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--plan {path}: cannot read it ({getattr(err, 'strerror', None) or err})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise UsageError(f"{where}: not YAML ({getattr(err, 'problem', None) or err})") from None
    marks = _Marks(text, str(path))
    marks.check_repeated()
    if not isinstance(data, dict):
        raise UsageError(f"{marks.at()}: a plan is a table of {', '.join(PLAN_KEYS)}")
    _known(data, PLAN_KEYS, marks, (), "plan")
    if "specs" not in data:
        raise UsageError(f"{marks.at()}: the plan names no specs; add e.g. specs: [../specs/ntm_copy.yaml] (paths "
                         "relative to the plan's folder)")
    specs = data["specs"]
    if isinstance(specs, str):
        specs = [specs]
    if not isinstance(specs, list) or not specs or not all(isinstance(s, str) and s for s in specs):
        raise UsageError(f"{marks.at('specs')}: specs is a list of spec files, e.g. [../specs/ntm_copy.yaml]")
    for i, spec_path in enumerate(specs):
        if "\0" in spec_path:
            raise UsageError(f"{marks.at('specs', i)}: a spec's path has a NUL character: {spec_path!r}")
    folder = path.parent
    plan = Plan(specs=[_relative(folder / s) for s in specs], source=str(path), doc=str(data.get("doc") or ""))
    settings = _section(data, "set")
    if not isinstance(settings, dict):
        raise UsageError(f"{marks.at('set')}: set is a table of dotted paths and their values, e.g. "
                         "{train.optimizer.lr: [1.0e-3, 3.0e-4]}")
    for key, values in settings.items():
        source = marks.at("set", key)
        values = [yaml_numbers(v) for v in (values if isinstance(values, list) else [values])]
        if not values:
            raise UsageError(f"{source}: {key} has no values")
        given = setting(str(key), tuple(values), source)
        for earlier in plan.settings:
            twice = set(earlier.paths) & set(given.paths)
            if twice:
                raise UsageError(f"{source}: {sorted(twice)[0]} is set twice (also at {earlier.source}); give all its "
                                 "values in one")
        plan.settings.append(given)
    if "seeds" in data:
        plan.seeds = _seeds(data["seeds"], marks.at("seeds"))
    plan.score = _score(_section(data, "score"), marks)
    plan.table = _table(_section(data, "table"), marks)
    plan.max_minutes = _number(data, "max_minutes", marks, None)
    plan.cpus_per_trial = _number(data, "cpus_per_trial", marks, 1.0) or 1.0
    plan.gpus_per_trial = _number(data, "gpus_per_trial", marks, None, zero=True)
    if not isinstance(data.get("tensorboard", True), bool):
        raise UsageError(f"{marks.at('tensorboard')}: tensorboard is true or false")
    plan.tensorboard = data.get("tensorboard", True)
    return plan


def _not_a_plan(path: str) -> None:
    """Raises UsageError when the spec file ``path`` is a sweep plan (a table with ``specs:`` and no ``blocks:``),
    given where a spec goes."""
    if not path.endswith((".yaml", ".yml")):
        return
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return  # the spec reader says what is wrong with it
    if isinstance(data, dict) and "specs" in data and "blocks" not in data:
        raise UsageError(f"{path} is a sweep plan (it has specs:), not a spec: run cogdsl sweep --plan {path}")


def _section(data: dict[str, Any], key: str) -> Any:
    """A table of the plan: empty when it is not given or left empty (``score:``); anything else as it is, to be
    checked (``score: 0`` is no table)."""
    value = data.get(key)
    return {} if value is None else value


def _relative(path: Path) -> str:
    """``path`` as short as it can be said: relative to the current folder when it is under it."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def _known(data: dict[str, Any], keys: Sequence[str], marks: _Marks, at: tuple[str, ...], what: str) -> None:
    for key in data:
        if key not in keys:
            close = did_you_mean(str(key), keys)
            hint = f"{close} " if close else ""
            raise UsageError(f"{marks.at(*at, key)}: unknown {what} key '{key}'; {hint}the keys are "
                             f"{', '.join(keys)}")


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return parse_seeds(str(value), f"{where}: seeds")
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return parse_seeds(",".join(map(str, value)) + ",", f"{where}: seeds")
    raise UsageError(f"{where}: seeds is a count (3: seeds 0, 1, 2) or a list of seeds ([3, 4, 5])")


def _number(data: dict[str, Any], key: str, marks: _Marks, default: float | None, zero: bool = False,
            at: tuple[str, ...] = ()) -> float | None:
    """``data[key]``, a positive number (or 0 too, with ``zero``), or ``default`` when it is not given."""
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 or (
            value == 0 and not zero):
        raise UsageError(f"{marks.at(*at, key)}: {key} must be a {'' if zero else 'positive '}number"
                         f"{' >= 0' if zero else ''}, got {value!r}")
    return float(value)


def _score(data: Any, marks: _Marks) -> Score:
    if not isinstance(data, dict):
        raise UsageError(f"{marks.at('score')}: score is a table of {', '.join(SCORE_KEYS)}")
    _known(data, SCORE_KEYS, marks, ("score",), "score")
    lengths = data.get("lengths")
    if lengths is None:
        lengths = [None]
    elif isinstance(lengths, int) and not isinstance(lengths, bool):
        lengths = [lengths]
    if not isinstance(lengths, list) or not lengths or not all(
            length is None or (isinstance(length, int) and not isinstance(length, bool) and length > 0)
            for length in lengths):
        raise UsageError(f"{marks.at('score', 'lengths')}: lengths is a list of test lengths, e.g. [10, 20]")
    sequences = data.get("sequences", 1000)
    if isinstance(sequences, bool) or not isinstance(sequences, int) or sequences < 1:
        raise UsageError(f"{marks.at('score', 'sequences')}: sequences must be a whole number >= 1")
    for key, allowed in (("split", SPLITS), ("weights", WEIGHTS)):
        if key in data and data[key] not in allowed:
            raise UsageError(f"{marks.at('score', key)}: {key} is one of {', '.join(allowed)}, got {data[key]!r}")
    skipped = data.get("skipped_updates", False)
    if not isinstance(skipped, bool):
        raise UsageError(f"{marks.at('score', 'skipped_updates')}: skipped_updates is true or false")
    return Score(tuple(lengths), sequences, data.get("split", "test"), data.get("weights", "auto"), skipped)


def _table(data: Any, marks: _Marks) -> TableSettings:
    if not isinstance(data, dict):
        raise UsageError(f"{marks.at('table')}: table is a table of {', '.join(TABLE_KEYS)}")
    _known(data, TABLE_KEYS, marks, ("table",), "table")
    metrics = data.get("metrics", [])
    metrics = [metrics] if isinstance(metrics, str) else metrics
    if not isinstance(metrics, list) or not all(isinstance(m, str) and m for m in metrics):
        raise UsageError(f"{marks.at('table', 'metrics')}: metrics is a list of metric names, e.g. [perfect@10]")
    for key in ("each", "pick"):
        if key in data and not isinstance(data[key], str):
            raise UsageError(f"{marks.at('table', key)}: {key} is a metric's name")
    if not isinstance(data.get("trials", False), bool):
        raise UsageError(f"{marks.at('table', 'trials')}: trials is true or false")
    return TableSettings(tuple(metrics), data.get("each"), data.get("pick"),
                         _number(data, "target", marks, 1.0, at=("table",)) or 1.0,
                         _number(data, "relapse", marks, 10.0, at=("table",)) or 10.0, data.get("trials", False))


def lengths_from(texts: Sequence[str]) -> tuple[int, ...]:
    """``--lengths 10 20`` (or ``10,20``) as whole numbers >= 1.

    Raises:
        UsageError: one is not."""
    values = [v for text in texts for v in split_values(text)]
    numbers = [parse_value(v, "--lengths") for v in values]
    if not numbers or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in numbers):
        raise UsageError(f"--lengths {' '.join(texts)}: give test lengths, whole numbers >= 1")
    return tuple(numbers)
