"""The passes, as a list: parse → build graph → validate → infer → lower.

Each pass is a pure function in its own module. ``COGDSL_DEBUG=1`` prints what each pass
produced, on standard error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import networkx as nx

from cogdsl.errors import Diagnostic, Span, SpecError, UsageError
from cogdsl.graph import build_graph
from cogdsl.infer import Shapes, infer
from cogdsl.lower import CompiledModel, lower
from cogdsl.parse_cog import parse_cog
from cogdsl.parse_yaml import parse_yaml
from cogdsl.spec import Spec
from cogdsl.validate import validate

SPEC_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".cog": "cog"}


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
    """Read and parse a spec file; the form comes from the suffix (.yaml, .yml or .cog)."""
    path = Path(path)
    form = SPEC_SUFFIXES.get(path.suffix)
    if form is None:
        raise SpecError([Diagnostic("E008", f"'{path.suffix or path.name}' is not a spec file suffix",
                                    Span(str(path), 0, 0), "spec files end in .yaml, .yml or .cog")])
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except UnicodeDecodeError as err:
        raise SpecError([Diagnostic("E008", f"the file is not UTF-8 text (byte 0x{err.object[err.start]:02x} at "
                                    f"offset {err.start})", Span(str(path), 0, 0),
                                    "save the spec as UTF-8")]) from None
    except OSError as err:
        raise SpecError([Diagnostic("E008", f"cannot read the file: {err.strerror}", Span(str(path), 0, 0))]) from None
    return parse_text(text, str(path), form)


def check(spec: Spec) -> tuple[nx.MultiDiGraph, Shapes]:
    """Build the graph, validate and infer shapes; raises SpecError with every problem found."""
    graph = build_graph(spec)
    _debug("graph", graph)
    diagnostics = validate(spec, graph)
    if diagnostics:
        raise SpecError(diagnostics, {spec.file: spec.source or ""})
    shapes = infer(spec, graph)
    _debug("infer", shapes)
    return graph, shapes


def compile_spec(spec: Spec | str | Path) -> CompiledModel:
    """Spec (or path) → CompiledModel."""
    if not isinstance(spec, Spec):
        spec = read_spec_file(spec)
    _, shapes = check(spec)
    model = lower(spec, shapes)
    _debug("lower", f"{type(model).__name__} with {sum(p.numel() for p in model.parameters())} parameters")
    return model
