"""The passes, as a list: parse → build graph → validate → sizes from the task → infer → lower.

Each pass is a pure function in its own module. ``COGDSL_DEBUG=1`` prints what each pass
produced, on standard error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import networkx as nx

from cogdsl.errors import Diagnostic, Span, SpecError, UsageError
from cogdsl.footprint import check_footprint
from cogdsl.graph import build_graph
from cogdsl.infer import Shapes, infer
from cogdsl.lower import CompiledModel, lower
from cogdsl.parse_cog import parse_cog
from cogdsl.parse_yaml import parse_yaml
from cogdsl.spec import SPEC_SUFFIXES as SPEC_SUFFIXES  # re-exported
from cogdsl.spec import Spec
from cogdsl.task_sizes import derive_sizes, leaves_sizes, task_of
from cogdsl.tasks import Task
from cogdsl.validate import validate


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

    A UTF-8 byte order mark is read past, in either form. A file that cannot be read as a spec (a wrong suffix,
    not a regular file, over the size budget, not UTF-8) is E008, located at its first line (not UTF-8: at the
    first byte that is not)."""
    from cogdsl.parse_cog import MAX_SPEC_CHARS, too_large

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
        raise UsageError(f"{path}: no such file") from None
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


def validate_spec(spec: Spec) -> nx.MultiDiGraph:
    """Build the graph and validate; raises SpecError with every problem found. Sizes are not checked yet
    (a spec may leave them to its task): :func:`check` does that."""
    graph = build_graph(spec)
    _debug("graph", graph)
    diagnostics = validate(spec, graph)
    if diagnostics:
        raise SpecError(diagnostics, {spec.file: spec.source or ""})
    return graph


def analyse(spec: Spec, task: Task | None = None) -> tuple[Spec, nx.MultiDiGraph, Shapes]:
    """Validate, take the sizes the spec leaves out from ``task`` (default: the task its train section names),
    and infer shapes; the spec with every size written, its graph and its shapes.

    Raises:
        SpecError: every problem found; E604 when a data file the task reads is missing or malformed, E007
            for a size left out with no task to give it.
    """
    graph = validate_spec(spec)
    return _sized(spec, graph, task if task is not None else task_of(spec))


def _sized(spec: Spec, graph: nx.MultiDiGraph, task: Task | None) -> tuple[Spec, nx.MultiDiGraph, Shapes]:
    sized = derive_sizes(spec, task)
    if sized is not spec:
        _debug("sizes", sized)
    shapes = infer(sized, graph, task)
    _debug("infer", shapes)
    return sized, graph, shapes


def check(spec: Spec, task: Task | None = None, max_memory: int | str | None = None
          ) -> tuple[nx.MultiDiGraph, Shapes | None]:
    """Build the graph, validate, infer shapes and check the memory budget (:mod:`cogdsl.footprint`); raises
    SpecError with every problem found.

    A spec that leaves sizes out and names no task is complete only with the data it is trained on
    (``cogdsl.train(spec, data=...)``): it is validated, and its shapes (None) wait for that data."""
    graph = validate_spec(spec)
    if task is None:
        task = task_of(spec)
    if task is None and leaves_sizes(spec):
        return graph, None
    sized, graph, shapes = _sized(spec, graph, task)
    check_footprint(sized, shapes, max_memory)
    return graph, shapes


def compile_spec(spec: Spec | str | Path, task: Task | None = None, max_memory: int | str | None = None
                 ) -> CompiledModel:
    """Spec (or path) → CompiledModel; sizes the spec leaves out come from ``task`` (default: its own).

    A spec whose parameters and training-batch state exceed ``max_memory`` (default ``$COGDSL_MAX_MEMORY``
    or 16 GiB) is refused with E502 before anything is allocated."""
    if not isinstance(spec, Spec):
        spec = read_spec_file(spec)
    sized, _, shapes = analyse(spec, task)
    check_footprint(sized, shapes, max_memory)
    model = lower(sized, shapes)
    _debug("lower", f"{type(model).__name__} with {sum(p.numel() for p in model.parameters())} parameters")
    return model
