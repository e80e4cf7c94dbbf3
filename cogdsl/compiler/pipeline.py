"""The passes, as a list: parse → graph → validate → sizes → infer → footprint → lower.

Parsing turns text into a :class:`~cogdsl.language.spec.Spec` (:func:`read_spec_file`, :func:`parse_text`); then
every pass in :data:`PASSES` is a function of one shared :class:`Compilation`: it reads what the passes
before it left there, adds its own product, and reports problems into the one diagnostics sink. After a
pass that reported errors the run stops with all of them (every problem of that pass, not the first), as
a :class:`~cogdsl.errors.SpecError` (a :class:`~cogdsl.errors.ShapeError` after ``infer``); warnings never
stop it, and are issued after the last pass through Python's :mod:`warnings`, as
:class:`~cogdsl.errors.SpecWarning`. Nothing is
resolved twice: validation's parameters, head groups and train config are the ones shape inference uses.
``COGDSL_DEBUG=1`` prints what each pass produced, on standard error.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from cogdsl.compiler.footprint import Footprint, check_footprint
from cogdsl.compiler.graph import build_graph
from cogdsl.compiler.lower import CompiledModel, lower
from cogdsl.compiler.shapes import Shapes, infer
from cogdsl.compiler.task_sizes import derive_sizes, leaves_sizes, task_of
from cogdsl.compiler.validate import Validated, validate
from cogdsl.errors import Diagnostic, DiagnosticSink, ShapeError, Span, SpecError, SpecWarning
from cogdsl.language.parse_cog import parse_cog
from cogdsl.language.parse_yaml import parse_yaml
from cogdsl.language.spec import SPEC_SUFFIXES as SPEC_SUFFIXES  # re-exported
from cogdsl.language.spec import Spec
from cogdsl.tasks import Task


def _debug(name: str, value: object) -> None:
    if os.environ.get("COGDSL_DEBUG"):
        if isinstance(value, nx.MultiDiGraph):
            lines = [f"  {u} -> {v} ({d['role']}, delay {d['delay']})" for u, v, d in value.edges(data=True)]
            value = f"graph with {value.number_of_nodes()} nodes:\n" + "\n".join(lines)
        print(f"[cogdsl] after {name}: {value}", file=sys.stderr)


def parse_text(text: str, file: str, form: str) -> Spec:
    """Parse spec text in the given form ('yaml' or 'cog')."""
    spec = parse_yaml(text, file) if form == "yaml" else parse_cog(text, file)
    _debug("parse", spec)
    return spec


def read_spec_file(path: str | Path) -> Spec:
    """Read and parse a spec file; the form comes from the suffix (.yaml, .yml or .cog).

    A UTF-8 byte order mark is read past, in either form. A file that cannot be read as a spec (missing, a wrong suffix,
    not a regular file, over the size budget, not UTF-8) is E008, located at its first line (not UTF-8: at the
    first byte that is not)."""
    from cogdsl.language.parse_cog import MAX_SPEC_CHARS, too_large

    path = Path(path)
    file = str(path)
    form = SPEC_SUFFIXES.get(path.suffix)
    if form is None:
        raise SpecError([Diagnostic("E008", f"'{path.suffix or path.name}' is not a spec file suffix",
                                    Span(file, 1, 1), "spec files end in .yaml, .yml or .cog")])
    limit = 4 * MAX_SPEC_CHARS  # bytes: a character is at most 4 of them in UTF-8
    try:
        if path.exists() and not path.is_file():
            raise SpecError([Diagnostic("E008", "not a regular file", Span(file, 1, 1),
                                        "a spec is a .yaml, .yml or .cog text file")])
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except FileNotFoundError:
        raise SpecError([Diagnostic("E008", "no such file", Span(file, 0, 0))]) from None
    except OSError as err:
        raise SpecError([Diagnostic("E008", f"cannot read the file: {err.strerror}", Span(file, 1, 1))]) from None
    if len(data) > limit:
        raise SpecError([too_large(file, f"more than {limit} bytes")])
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = bom + err.start
        line_start = data.rfind(b"\n", 0, offset) + 1
        col = len(data[max(line_start, bom):offset].decode("utf-8")) + 1
        span = Span(file, data.count(b"\n", 0, offset) + 1, col)
        raise SpecError([Diagnostic("E008", f"the file is not UTF-8 text (byte 0x{data[offset]:02x} at offset "
                                    f"{offset})", span, "save the spec as UTF-8")],
                        {file: data[bom:].decode("utf-8", errors="replace")}) from None
    if len(text) > MAX_SPEC_CHARS:
        raise SpecError([too_large(file, f"{len(text)} characters")])
    return parse_text(text, file, form)


@dataclass
class Compilation:
    """What the passes share: the spec, the task that gives the sizes it leaves out, the memory budget, the
    one diagnostics sink, and each pass's product as it is made."""

    spec: Spec
    task: Task | None = None
    max_memory: int | str | None = None
    # True for a spec checked without data: one that leaves sizes out and names no task stops after
    # validation, complete only with the data it is trained on (cogdsl.train(spec, data=...)).
    sizes_may_wait: bool = False
    sink: DiagnosticSink = field(default_factory=DiagnosticSink)
    graph: nx.MultiDiGraph | None = None
    validated: Validated | None = None
    waiting: bool = False  # sizes left to data not given yet: the passes after "sizes" have nothing to do
    sized: Spec | None = None
    shapes: Shapes | None = None
    footprint: Footprint | None = None
    model: CompiledModel | None = None


def graph_pass(c: Compilation) -> None:
    """The networkx graph: nodes are blocks, edges are wires (with delay 0 or 1)."""
    c.graph = build_graph(c.spec)


def validate_pass(c: Compilation) -> None:
    """Every check that needs no sizes (:mod:`cogdsl.compiler.validate`)."""
    assert c.graph is not None
    c.validated = validate(c.spec, c.graph, c.sink)


def sizes_pass(c: Compilation) -> None:
    """The sizes the spec leaves out, from the task (default: the one its train section names)."""
    if c.task is None:
        assert c.validated is not None
        c.task = task_of(c.spec, c.validated.train)
    if c.task is None and c.sizes_may_wait and leaves_sizes(c.spec):
        c.waiting = True
        return
    c.sized = derive_sizes(c.spec, c.task)


def infer_pass(c: Compilation) -> None:
    """Every value's size, each controller's interface layout, the step order (:mod:`cogdsl.compiler.shapes`)."""
    if c.waiting:
        return
    assert c.sized is not None and c.graph is not None and c.validated is not None
    c.shapes = infer(c.sized, c.graph, c.task, c.validated, c.sink)


def footprint_pass(c: Compilation) -> None:
    """Parameters and state within the memory budget (:mod:`cogdsl.compiler.footprint`), checked before
    anything is allocated."""
    if c.waiting:
        return
    assert c.sized is not None and c.shapes is not None
    c.footprint = check_footprint(c.sized, c.shapes, c.max_memory)


def lower_pass(c: Compilation) -> None:
    """The :class:`~cogdsl.compiler.lower.CompiledModel` (:mod:`cogdsl.compiler.lower`)."""
    assert c.sized is not None and c.shapes is not None
    c.model = lower(c.sized, c.shapes)


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[Compilation], None]
    error: type[SpecError] = SpecError  # what its diagnostics are raised as


PASSES: tuple[Pass, ...] = (
    Pass("graph", graph_pass),
    Pass("validate", validate_pass),
    Pass("sizes", sizes_pass),
    Pass("infer", infer_pass, ShapeError),
    Pass("footprint", footprint_pass),
    Pass("lower", lower_pass),
)


def run_passes(compilation: Compilation, through: str = "lower") -> Compilation:
    """Run :data:`PASSES` in order up to and including ``through``; raise every problem of the first pass that
    reports any. Warnings (W codes) are issued as :class:`~cogdsl.errors.SpecWarning` once every pass ran
    without errors (a spec with errors gets its errors alone)."""
    names = [p.name for p in PASSES]
    if through not in names:
        raise ValueError(f"no pass '{through}'; the passes are {names}")
    sources = {compilation.spec.file: compilation.spec.source or ""}
    for step in PASSES[:names.index(through) + 1]:
        step.run(compilation)
        if compilation.sink:
            raise step.error(compilation.sink.items, sources)
        _debug(step.name, _product(compilation, step.name))
    level = _outside_cogdsl()
    for diagnostic in compilation.sink.warnings:
        warnings.warn(SpecWarning(diagnostic, sources.get(diagnostic.span.file)), stacklevel=level)
    return compilation


def _outside_cogdsl() -> int:
    """The ``stacklevel`` that attributes a warning issued by :func:`run_passes` to the first caller outside the
    cogdsl package (the user's line, so Python's filters by module and line work on it)."""
    package = str(Path(__file__).resolve().parent.parent)
    frame, level = sys._getframe(1), 1  # run_passes, which calls warnings.warn: stacklevel 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _product(c: Compilation, name: str) -> object:
    if name == "lower" and c.model is not None:
        return f"{type(c.model).__name__} with {sum(p.numel() for p in c.model.parameters())} parameters"
    return {"graph": c.graph, "validate": c.validated, "sizes": c.sized if not c.waiting else "left to data",
            "infer": c.shapes, "footprint": c.footprint}.get(name)


def validate_spec(spec: Spec) -> nx.MultiDiGraph:
    """Build the graph and validate; raises SpecError with every problem found. Sizes are not checked yet
    (a spec may leave them to its task): :func:`check` does that."""
    graph = run_passes(Compilation(spec), through="validate").graph
    assert graph is not None
    return graph


def analyse(spec: Spec, task: Task | None = None) -> tuple[Spec, nx.MultiDiGraph, Shapes]:
    """Validate, take the sizes the spec leaves out from ``task`` (default: the task its train section names),
    and infer shapes; the spec with every size written, its graph and its shapes.

    Raises:
        SpecError: every problem found; E604 when a data file the task reads is missing or malformed, E007
            for a size left out with no task to give it.
    """
    c = run_passes(Compilation(spec, task), through="infer")
    assert c.sized is not None and c.graph is not None and c.shapes is not None
    return c.sized, c.graph, c.shapes


def check(spec: Spec, task: Task | None = None, max_memory: int | str | None = None
          ) -> tuple[nx.MultiDiGraph, Shapes | None]:
    """Build the graph, validate, infer shapes and check the memory budget (:mod:`cogdsl.compiler.footprint`); raises
    SpecError with every problem found.

    A spec that leaves sizes out and names no task is complete only with the data it is trained on
    (``cogdsl.train(spec, data=...)``): it is validated, and its shapes (None) wait for that data."""
    c = run_passes(Compilation(spec, task, max_memory, sizes_may_wait=True), through="footprint")
    assert c.graph is not None
    return c.graph, c.shapes


def compile_spec(spec: Spec | str | Path, task: Task | None = None, max_memory: int | str | None = None
                 ) -> CompiledModel:
    """Spec (or path) → CompiledModel; sizes the spec leaves out come from ``task`` (default: its own).

    A spec whose parameters and training-batch state exceed ``max_memory`` (default ``$COGDSL_MAX_MEMORY``
    or 16 GiB) is refused with E502 before anything is allocated."""
    if not isinstance(spec, Spec):
        spec = read_spec_file(spec)
    model = run_passes(Compilation(spec, task, max_memory)).model
    assert model is not None
    return model
