"""Settings of a spec by dotted path: ``--set train.optimizer.lr=1e-3,3e-4``, ``--set blocks.mem.slots=64``.

A path names a field of the spec's YAML form (``cogdsl fmt --to yaml`` prints it): ``blocks.mem.slots``,
``train.task.number``, ``outputs.y.size``; a list item by its index (``blocks.ctrl.from.1``). Every
part but the last must exist in the spec; the last may be new (``train.keep_best`` in a spec that does not
write it), and the spec with the value set is then checked like any spec, so a name the kind does not take is
the validator's error (``unknown parameter 'slotz'``, with its hint). Every error names the ``--set`` (or the
plan's line) it came from, the key and the keys that are there; nothing is a traceback::

    setting = parse_set("train.optimizer.lr=1e-3,3e-4")      # Setting("train.optimizer.lr", (0.001, 0.0003))
    spec = with_settings(spec, {"train.optimizer.lr": 0.001}, {"train.optimizer.lr": "--set ..."})

Values are YAML scalars (``64``, ``1e-3``, ``true``, ``null``, ``adam``) or flow collections
(``{name: babi_joint, train_size: 1000}``); commas inside brackets and braces do not split values.

Paths joined by commas vary together, each value a list with one item per path:
``--set train.task.number,blocks.reason.hops=[1,1],[3,3]`` is two settings (task 1 with 1 hop, task 3 with 3),
not four.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from cogdsl.errors import SpecError, UsageError, did_you_mean
from cogdsl.language.spec import Spec

RESERVED = {"train.seed": "the seed is the sweep's: --seeds N (seeds 0 .. N-1) or --seeds 3,4,5; a plan's seeds:"}
"""Paths a setting may not name, and what to use instead."""


@dataclass(frozen=True)
class Setting:
    """One dotted path and the values a sweep tries for it; ``source`` says where it was given (for errors).

    A ``path`` of several dotted paths joined by commas is a linked setting: each value is a list of one value
    per path, and the paths take their values together (:meth:`assignments`)."""

    path: str
    values: tuple[Any, ...]
    source: str

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.path.split(","))

    def assignments(self) -> list[dict[str, Any]]:
        """Each value as {path: value}: one path, or the linked paths zipped with the value's items."""
        if len(self.paths) == 1:
            return [{self.path: value} for value in self.values]
        return [dict(zip(self.paths, value, strict=True)) for value in self.values]


def setting(path: str, values: tuple[Any, ...], source: str, reserved: Mapping[str, str] = RESERVED) -> Setting:
    """A checked :class:`Setting`: each path's form (:func:`check_path`) and, for linked paths, a list of one
    value per path in each value.

    Raises:
        UsageError: a path's form or a reserved one, a path twice, or a value of linked paths that is not such
            a list."""
    paths = [p.strip() for p in path.split(",")]
    for one in paths:
        check_path(one, source, reserved)
    if len(set(paths)) != len(paths):
        raise UsageError(f"{source}: a path is named twice in '{path}'")
    if len(paths) > 1:
        for value in values:
            if not isinstance(value, list) or len(value) != len(paths):
                raise UsageError(f"{source}: the {len(paths)} linked paths {', '.join(paths)} take a list of "
                                 f"{len(paths)} values in each value, e.g. [{', '.join(['...'] * len(paths))}]; "
                                 f"got {value_text(value)}")
    return Setting(",".join(paths), tuple(values), source)


def split_values(text: str) -> list[str]:
    """``text`` split at the commas that are outside brackets, braces and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, c in enumerate(text):
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def parse_value(text: str, source: str) -> Any:
    """One value as YAML reads it, except that ``1e-3`` is a number (YAML 1.1 wants ``1.0e-3``).

    Raises:
        UsageError: the text is no YAML value, or one that builds an object (a tag)."""
    if _NUMBER.match(text):
        return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)
    try:
        value = yaml.safe_load(text) if text else None
    except yaml.YAMLError as err:
        reason = str(getattr(err, "problem", None) or err).strip()
        raise UsageError(f"{source}: {text!r} is not a value ({reason})") from None
    if text and value is None and text.lower() not in ("null", "~", "none"):
        raise UsageError(f"{source}: {text!r} is not a value")
    return None if isinstance(value, str) and value.lower() == "none" else value


def yaml_numbers(value: Any) -> Any:
    """``value`` as a plan file's YAML gave it, with each string that :func:`parse_value` reads as a number made
    one: YAML 1.1 reads ``1e-3`` (no dot) as a string, where ``--set ...=1e-3`` gives 0.001, and a plan's
    trials must be the command line's (the same ids, the same values)."""
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return parse_value(value.strip(), "")
    if isinstance(value, list):
        return [yaml_numbers(v) for v in value]
    return value


def parse_set(text: str, reserved: Mapping[str, str] = RESERVED) -> Setting:
    """``PATH=V1,V2,...`` from the command line, as a :class:`Setting`.

    Raises:
        UsageError: no ``=``, an empty path or value, a path that is reserved (``train.seed``)."""
    source = f"--set {text}"
    path, equals, values = text.partition("=")
    path = path.strip()
    if not equals or not path or not values.strip():
        raise UsageError(f"{source}: expected PATH=VALUE[,VALUE...], e.g. --set train.optimizer.lr=1e-3,3e-4")
    return setting(path, tuple(parse_value(v, source) for v in split_values(values)), source, reserved)


def check_path(path: str, source: str, reserved: Mapping[str, str] = RESERVED) -> None:
    """A path's form: dotted names, none empty, not a reserved one.

    Raises:
        UsageError: what is wrong with it."""
    if any(not part.strip() for part in path.split(".")):
        raise UsageError(f"{source}: '{path}' is not a dotted path such as blocks.mem.slots")
    if path in reserved:
        raise UsageError(f"{source}: {path} cannot be set here; {reserved[path]}")


def spec_with_sets(spec: Spec, texts: list[str]) -> Spec:
    """``cogdsl train SPEC --set PATH=VALUE ...``: ``spec`` with one value for each path.

    Raises:
        UsageError: a path twice, several values (a sweep's), or as :func:`with_settings`."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for text in texts:
        given = parse_set(text, {"train.seed": "use --seed"})
        if len(given.values) != 1:
            raise UsageError(f"{given.source}: cogdsl train takes one value per path; cogdsl sweep tries several")
        for path, value in given.assignments()[0].items():
            if path in values:
                raise UsageError(f"{given.source}: {path} is set twice")
            values[path], sources[path] = value, given.source
    changed, _ = with_settings(spec, values, sources)
    return changed


def spec_data(spec: Spec) -> dict[str, Any]:
    """The spec's YAML form as plain data (what ``cogdsl fmt --to yaml`` prints, read back)."""
    from cogdsl.language.emit import to_yaml

    return yaml.safe_load(to_yaml(spec))


def _implied(data: dict[str, Any], parts: list[str]) -> None:
    """Write out the tables of the train section that a spec may leave to their defaults, where a path goes
    through one: ``train.optimizer`` (RMSProp, the default optimizer) and ``train.schedule`` (constant), so
    ``train.optimizer.lr`` can be set in a spec that names no optimizer."""
    train = data.get("train")
    if len(parts) < 3 or parts[0] != "train" or not isinstance(train, dict):
        return
    if parts[1] == "optimizer" and train.get("optimizer") is None:
        train["optimizer"] = {"name": "rmsprop"}
    elif parts[1] == "schedule" and train.get("schedule") is None:
        train["schedule"] = {"name": "constant"}
    elif isinstance(train.get(parts[1]), str) and parts[1] in ("optimizer", "schedule", "task"):
        train[parts[1]] = {"name": train[parts[1]]}  # the short form, optimizer: adam


def set_path(data: dict[str, Any], path: str, value: Any, source: str) -> None:
    """Set ``path`` in ``data`` (a spec's YAML form) to ``value``: every part but the last must be there.

    Raises:
        UsageError: a part is missing (which one, and the keys there are) or is not a mapping or list."""
    parts = path.split(".")
    _implied(data, parts)
    node: Any = data
    for depth, key in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[:depth]) or "the spec"
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise UsageError(f"{source}: {where} is a list of {len(node)}; '{key}' is not an index of it "
                                 f"(0 to {len(node) - 1})")
            if last:
                node[int(key)] = copy.deepcopy(value)
                return
            node = node[int(key)]
            continue
        if not isinstance(node, dict):
            raise UsageError(f"{source}: {where} is {_shown(node)}, not a table with a '{key}'")
        if key not in node:
            if last:
                node[key] = copy.deepcopy(value)  # the validator says whether the kind takes it
                return
            close = did_you_mean(key, [str(k) for k in node])
            hint = f" ({close})" if close else ""
            raise UsageError(f"{source}: {where} has no '{key}'{hint}; it has {_keys(node)}")
        if last:
            node[key] = copy.deepcopy(value)
            return
        if node[key] is None and not last:
            raise UsageError(f"{source}: {'.'.join(parts[:depth + 1])} is empty, not a table with a "
                             f"'{parts[depth + 1]}'")
        node = node[key]


def _keys(node: Mapping[str, Any]) -> str:
    return ", ".join(str(k) for k in node) if node else "no keys"


def _shown(value: Any) -> str:
    text = repr(value)
    return f"the value {text if len(text) <= 40 else text[:37] + '...'}"


def with_settings(spec: Spec, settings: Mapping[str, Any], sources: Mapping[str, str]) -> tuple[Spec, str]:
    """``spec`` with each dotted path of ``settings`` set, read back and checked, and its YAML text.

    Checked as ``cogdsl validate`` does, sizes and memory budget included, unless its task reads data files:
    those are read when the trial trains (on the machine that trains it), and only what needs no data is
    checked here. Its file is the spec's with `` (with settings)`` added, in the same folder, so the files its
    task reads are found as the spec's are, and a message about it never shows the original file's lines for
    the changed text.

    Raises:
        UsageError: a path that is not in the spec, or a spec the settings made wrong: the validator's
            messages, each with the settings that made it (``sources`` says where each was given)."""
    from cogdsl.compiler.pipeline import check, parse_text, validate_spec
    from cogdsl.compiler.task_sizes import task_of

    data = spec_data(spec)
    for path, value in settings.items():
        set_path(data, path, value, sources[path])
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120, allow_unicode=True)
    try:
        changed = parse_text(text, f"{spec.file} (with settings)" if settings else spec.file, "yaml")
        validate_spec(changed)
        task = task_of(changed)
        if task is None or not task.reads_files:
            check(changed)
    except SpecError as err:
        given = ", ".join(f"{path}={value_text(value)}" for path, value in settings.items())
        where = "; ".join(dict.fromkeys(sources[path] for path in settings))
        problems = "\n".join(f"  error[{d.code}]: {d.message}" + (f"\n    hint: {d.hint}" if d.hint else "")
                             for d in err.diagnostics)
        raise UsageError(f"{spec.file} with {given} ({where}):\n{problems}") from None
    return changed, text


def value_text(value: Any) -> str:
    """A setting's value as a person writes it: ``0.001``, ``true``, ``null``, ``{name: babi_joint}``."""
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
