"""The ``cogdsl bench`` command: its options, the sections in order, the run, the report and the JSON."""

from __future__ import annotations

import json
import math
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cogdsl.bench import additive_attention, dnc_step, hop_read, memory_step, training_step
from cogdsl.bench.additive_attention import (
    ADDITIVE_ATTENTION,
    DEFAULT_ATTENTION_LENGTHS,
    DEFAULT_ATTENTION_WIDTHS,
)
from cogdsl.bench.dnc_step import DEFAULT_DNC_SLOTS, DNC_STEP
from cogdsl.bench.harness import (
    NEEDS_GPU,
    Row,
    Runner,
    Section,
    Timing,
    add_ratios,
    copy_bandwidth_gbps,
    machine,
    slot_cells,
)
from cogdsl.bench.hop_read import DEFAULT_HOP_SLOTS, DEFAULT_HOP_WIDTHS, HOP_READ
from cogdsl.bench.memory_step import DEFAULT_SLOTS, MEMORY_STEP
from cogdsl.errors import UsageError

#: The sections in the order ``cogdsl bench`` runs and prints them. A new section is a file beside this one and a
#: line here (and, for its sizes, a field of :class:`BenchOptions` and a flag of ``cogdsl bench`` in
#: cogdsl/cli/command.py, whose ``--only`` lists every section).
SECTION_LIST: tuple[Section, ...] = (
    memory_step.SECTION,
    dnc_step.SECTION,
    additive_attention.SECTION,
    hop_read.SECTION,
    training_step.SECTION,
)
SECTIONS = tuple(section.name for section in SECTION_LIST)
_BY_NAME = {section.name: section for section in SECTION_LIST}
#: What each path runs, per section.
PATH_NOTES = {section.name: section.path_notes for section in SECTION_LIST}
#: The size columns of each section that has more than N.
SIZE_COLUMNS = {section.name: section.size_columns for section in SECTION_LIST if section.size_columns != ("N",)}
DEFAULT_SPEC = "specs/ntm_copy.yaml"


# -- options and results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchOptions:
    """What to time: the sizes, the sections, and how many calls.

    ``train_slots`` None times the training step at the spec's own memory size; ``warmup`` and
    ``repeats`` None take :meth:`Timing.default` for the device. Additive attention is timed at
    every (``attention_lengths``, ``attention_widths``) pair, with A = D = the width; the hop read
    at every (``hop_slots``, ``hop_widths``) pair, with D = W = the width.
    """

    spec: str = DEFAULT_SPEC
    slots: tuple[int, ...] = DEFAULT_SLOTS
    dnc_slots: tuple[int, ...] = DEFAULT_DNC_SLOTS
    attention_lengths: tuple[int, ...] = DEFAULT_ATTENTION_LENGTHS
    attention_widths: tuple[int, ...] = DEFAULT_ATTENTION_WIDTHS
    hop_slots: tuple[int, ...] = DEFAULT_HOP_SLOTS
    hop_widths: tuple[int, ...] = DEFAULT_HOP_WIDTHS
    batch: int = 64
    width: int = 20
    length: int | None = None
    train_slots: tuple[int, ...] | None = None
    warmup: int | None = None
    repeats: int | None = None
    compile: bool = True
    sections: tuple[str, ...] = SECTIONS
    #: CPU threads for torch: 1 by default, as ``cogdsl train`` (one core per op, no OpenMP thread left waiting)
    threads: int | None = 1
    json_path: str | None = None

    def check(self) -> None:
        """Raise :class:`UsageError` on a size or count out of range."""
        for name, values in (("--slots", self.slots), ("--dnc-slots", self.dnc_slots),
                             ("--train-slots", self.train_slots or ()), ("attention_lengths", self.attention_lengths),
                             ("attention_widths", self.attention_widths), ("hop_slots", self.hop_slots),
                             ("hop_widths", self.hop_widths)):
            for value in values:
                _check_at_least(name, value, 1)
        if not self.slots and MEMORY_STEP in self.sections:
            raise UsageError("--slots needs at least one slot count")
        if not self.dnc_slots and DNC_STEP in self.sections:
            raise UsageError("--dnc-slots needs at least one slot count")
        if not (self.attention_lengths and self.attention_widths) and ADDITIVE_ATTENTION in self.sections:
            raise UsageError("additive attention needs at least one sequence length and one width")
        if not (self.hop_slots and self.hop_widths) and HOP_READ in self.sections:
            raise UsageError("the hop read needs at least one slot count and one width")
        _check_at_least("--batch", self.batch, 1)
        _check_at_least("--width", self.width, 1)
        _check_at_least("--warmup", self.warmup, 0)
        _check_at_least("--repeats", self.repeats, 1)
        _check_at_least("--threads", self.threads, 1)
        _check_at_least("--len", self.length, 1)
        if self.json_path is not None and not Path(self.json_path).parent.is_dir():
            raise UsageError(f"--json {self.json_path}: no such folder {Path(self.json_path).parent}")

    def command_line(self) -> str:
        """The ``cogdsl bench`` command that reruns these options."""
        words = ["cogdsl", "bench", self.spec]
        if MEMORY_STEP in self.sections:
            words += ["--slots", *map(str, self.slots)]
        if DNC_STEP in self.sections:
            words += ["--dnc-slots", *map(str, self.dnc_slots)]
        if MEMORY_STEP in self.sections or DNC_STEP in self.sections:
            words += ["--width", str(self.width)]
        words += ["--batch", str(self.batch)]
        if self.length is not None:
            words += ["--len", str(self.length)]
        if self.train_slots is not None:
            words += ["--train-slots", *map(str, self.train_slots)]
        for flag, value in (("--warmup", self.warmup), ("--repeats", self.repeats), ("--threads", self.threads)):
            if value is not None:
                words += [flag, str(value)]
        if not self.compile:
            words.append("--no-compile")
        if self.sections != SECTIONS:
            words += ["--only", self.sections[0].replace(" ", "-")]
        if self.json_path is not None:
            words += ["--json", self.json_path]
        return shlex.join(words)


def _check_at_least(name: str, value: int | None, minimum: int) -> None:
    if value is not None and value < minimum:
        raise UsageError(f"{name} must be at least {minimum}, got {value}")


@dataclass
class BenchResult:
    """Every row, the machine they were measured on and the command that measured them."""

    command: str
    machine: dict[str, Any]
    copy_gbps: float | None
    rows: list[Row] = field(default_factory=list)
    triton_note: str | None = None
    #: the model the training step trained (None when that section was not run)
    spec_name: str | None = None
    #: sections asked for but not run here, each with why
    skipped: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"command": self.command, "machine": self.machine, "copy_gbps": self.copy_gbps,
                "spec_name": self.spec_name,
                "triton_note": self.triton_note, "skipped": self.skipped,
                **{section.json_key: section.bytes_note.format(size="itemsize") for section in SECTION_LIST
                   if section.json_key is not None},
                "rows": [row.to_json() for row in self.rows]}


# -- the tables ---------------------------------------------------------------------------------------


def _num(x: float | None) -> str:
    """Three significant digits, no exponent for ordinary times: 0.0503, 2.91, 45.2, 4519; '-' for none."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _gbps_cell(gbps: float | None, copy_gbps: float | None) -> str:
    if gbps is None or copy_gbps is None:
        return _num(gbps)
    return f"{_num(gbps)} ({100 * gbps / copy_gbps:.0f}%)"


def _compile_note(row: Row) -> str:
    if row.compile_seconds is None:
        return ""
    note = f"compiled in {row.compile_seconds:.1f} s"
    if row.graph_breaks:
        note += f", {row.graph_breaks} graph break(s): {row.graph_break_reason}"
    return note


def _size_cells(row: Row) -> list[str]:
    """The size columns of a row: S, A, D for additive attention, N, D, W for the hop read, else N ('-' for none)."""
    section = _BY_NAME.get(row.section)
    return section.size_cells(row) if section is not None else slot_cells(row)


def render_table(rows: list[Row], copy_gbps: float | None) -> str:
    """A plain-text table: N | path | ms fwd | ms fwd+bwd | GB/s fwd | GB/s fwd+bwd | ratio | note.

    Additive attention's rows have S | A | D and the hop read's N | D | W where the others have N.
    """
    suffix = " (% copy)" if copy_gbps is not None else ""
    sizes = list(SIZE_COLUMNS.get(rows[0].section, ("N",))) if rows else ["N"]
    header = [*sizes, "path", "ms fwd", "ms fwd+bwd", f"GB/s fwd{suffix}", f"GB/s fwd+bwd{suffix}", "ratio", "note"]
    cells = [header]
    for r in rows:
        note = r.note or _compile_note(r)
        cells.append([*_size_cells(r), r.path, _num(r.ms_forward), _num(r.ms_forward_backward),
                      _gbps_cell(r.gbps_forward, copy_gbps), _gbps_cell(r.gbps_forward_backward, copy_gbps),
                      f"{r.ratio:.2f}x" if r.ratio is not None else "-", note])
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    path_column = len(sizes)
    right = set(range(len(header) - 1)) - {path_column}
    lines = []
    for line in cells:
        text = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        lines.append("  " + "  ".join(text).rstrip())
    return "\n".join(lines)


def render(result: BenchResult) -> str:
    """The whole report: machine, command, then a table per section with what its numbers mean."""
    m = result.machine
    device = f"{m['device']} (CUDA)" if m["device_type"] == "cuda" else f"{m['device']} (CPU)"
    triton = m["triton"] or "not installed"
    out = [f"device: {device}, {m['threads']} CPU thread(s); torch {m['torch']}, triton {triton}",
           f"command: {result.command}"]
    if result.copy_gbps is not None:
        out.append(f"copy bandwidth: {result.copy_gbps:.0f} GB/s (dst.copy_(src) of 1 GiB, 2 x bytes / time)")
    if result.triton_note:
        out.append(result.triton_note)
    out += result.skipped
    for section in SECTION_LIST:
        rows = [r for r in result.rows if r.section == section.name]
        if not rows:
            continue
        title = section.title(rows[0], result.spec_name)
        moved = section.bytes_note.format(size="4")
        baselines = {r.baseline for r in rows if r.baseline}
        columns = section.size_columns
        size = f"{', '.join(columns[:-1])} and {columns[-1]}" if len(columns) > 1 else columns[0]
        ratio = (f"ratio: ms fwd+bwd / {baselines.pop()}'s at the same {size} (how many times slower)"
                 if len(baselines) == 1 else "ratio: -")
        legend = "; ".join(f"{p} = {section.path_notes[p]}" for p in dict.fromkeys(r.path for r in rows))
        out += ["", title, render_table(rows, result.copy_gbps), f"  {section.times}", f"  {moved}", f"  {ratio}",
                f"  {legend}"]
    return "\n".join(out)


# -- the command --------------------------------------------------------------------------------------


def bench(options: BenchOptions, *, progress: Callable[[str], None] | None = None) -> BenchResult:
    """Time every section of ``options`` on this machine's GPU if it has one, else its CPU.

    Raises:
        UsageError: an option is out of range, the spec is missing or has no train: section.
        SpecError: the spec has errors.
    """
    options.check()
    say = progress or (lambda message: None)
    chosen = [section for section in SECTION_LIST if section.name in options.sections]
    runs: dict[str, Runner] = {}
    spec_name = None
    for section in chosen:  # every user error is raised here, before anything is timed
        if section.prepare is not None:
            runs[section.name], model = section.prepare(options)
            spec_name = spec_name or model
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    timing = Timing.default(device, options.warmup, options.repeats)
    threads = torch.get_num_threads()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    try:
        result = BenchResult(command=options.command_line(), machine=machine(device), copy_gbps=None,
                             triton_note=None if device.type == "cuda" else NEEDS_GPU, spec_name=spec_name)
        if device.type == "cuda":
            say("copy bandwidth")
            result.copy_gbps = copy_bandwidth_gbps(device)
        for section in chosen:
            if section.needs_gpu is not None and device.type != "cuda":
                result.skipped.append(section.needs_gpu)  # it compares the Triton kernel with the other paths
                continue
            result.rows += runs.get(section.name, section.run)(options, device, timing=timing, progress=say)
    finally:
        torch.set_num_threads(threads)
    add_ratios(result.rows)
    return result


def options_from_args(args: Any) -> BenchOptions:
    """BenchOptions from ``cogdsl bench``'s parsed arguments."""
    sections = SECTIONS if args.only is None else (args.only.replace("-", " "),)
    return BenchOptions(spec=args.spec, slots=tuple(args.slots), dnc_slots=tuple(args.dnc_slots), batch=args.batch,
                        width=args.width,
                        length=args.length, train_slots=tuple(args.train_slots) if args.train_slots else None,
                        warmup=args.warmup, repeats=args.repeats, compile=not args.no_compile, sections=sections,
                        threads=args.threads, json_path=args.json)


def bench_command(args: Any) -> int:
    """``cogdsl bench [SPEC] [--slots N ...] [--dnc-slots N ...] [--batch B] [--width W] [--len T]
    [--train-slots N ...] [--warmup K] [--repeats R] [--no-compile]
    [--only memory-step|dnc-step|additive-attention|hop-read|training-step] [--threads T] [--json PATH]``.

    Prints the tables on standard output and what is being timed on standard error. ``--launches [SPEC ...]``
    counts kernels per time step instead (:mod:`cogdsl.bench.launches`).
    """
    if getattr(args, "launches", None) is not None:
        return _launches_command(args.launches, compiled=bool(getattr(args, "compile", False)))
    options = options_from_args(args)
    result = bench(options, progress=lambda message: print(f"timing {message}", file=sys.stderr, flush=True))
    print(render(result))
    if options.json_path is not None:
        try:
            Path(options.json_path).write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
        except OSError as err:
            raise UsageError(f"--json {options.json_path}: cannot write it: {err.strerror or err}") from None
        print(f"wrote {options.json_path}", file=sys.stderr)
    return 0


def _launches_command(given: list[str], *, compiled: bool = False) -> int:
    from cogdsl.bench.launches import launches, render_launches

    paths = [Path(p) for p in given] or sorted(p for p in Path("specs").glob("*.*") if p.suffix in (".cog", ".yaml"))
    if not paths:
        raise UsageError("--launches: no specs given and no specs/ folder here; name the spec files to count")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UsageError(f"--launches: no such file: {', '.join(missing)}")
    print(render_launches(launches(paths, compiled=compiled)))
    return 0
