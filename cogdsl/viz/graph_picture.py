"""``cogdsl graph SPEC``: a spec's networkx graph (:mod:`cogdsl.compiler.graph`) drawn as a picture.

Blocks are nodes, shaped and coloured by family (an input an arrow, a controller a rounded box, a memory a
cylinder, a head a parallelogram ...); wires are edges, labelled by role (``by``, ``write``), and dashed when
they carry a value to the next step (``r@prev``, and a write, which lands for the next step). A memory and
the heads that address it are drawn together in one frame. With ``--sizes`` each edge is labelled with the
size of what it carries (as shape inference derives it, sizes left to the task taken from the task).

The picture is written as DOT text (Graphviz's language; no Graphviz needed), or as SVG or PNG: through
Graphviz's ``dot`` where it is installed, else drawn with matplotlib (a dependency of cogdsl already).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from cogdsl.errors import UsageError
from cogdsl.language.spec import Spec

# family -> (Graphviz shape, Graphviz style, fill colour, matplotlib box style)
STYLES: dict[str, tuple[str, str, str, str]] = {
    "input": ("cds", "filled", "#e6e6e6", "rarrow,pad=0.35"),
    "output": ("doubleoctagon", "filled", "#d9d2e9", "round4,pad=0.35"),
    "controller": ("box", "rounded,filled", "#cfe2f3", "round,pad=0.4"),
    "memory": ("cylinder", "filled", "#fce5cd", "square,pad=0.4"),
    "head": ("parallelogram", "filled", "#d9ead3", "sawtooth,pad=0.35"),
    "reasoning": ("hexagon", "filled", "#fff2cc", "roundtooth,pad=0.35"),
    "encoder": ("component", "filled", "#d0e0e3", "square,pad=0.35"),
    "attention": ("ellipse", "filled", "#f4cccc", "ellipse,pad=0.2"),
    "unknown": ("box", "dashed", "#ffffff", "square,pad=0.35"),
}

FORMATS = ("dot", "svg", "png")
RENDERERS = ("auto", "graphviz", "matplotlib")


@dataclass
class Picture:
    """What is drawn: nodes with their label and family, the frames (a memory and its heads), the edges."""

    model: str
    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (label, family)
    frames: dict[str, list[str]] = field(default_factory=dict)  # memory -> [memory, its heads ...]
    edges: list[tuple[str, str, str, bool]] = field(default_factory=list)  # (from, to, label, next step)


def picture_of(spec: Spec, sizes: bool = False) -> Picture:
    """The picture of a spec, after checking it (a SpecError with every problem otherwise); with ``sizes``
    the sizes are inferred too (reading the task's data files, if it has any)."""
    from cogdsl.blocks import REGISTRY
    from cogdsl.compiler.pipeline import analyse, validate_spec

    graph = validate_spec(spec)
    shapes = analyse(spec)[2] if sizes else None
    picture = Picture(spec.name)
    for name, data in graph.nodes(data=True):
        kind = REGISTRY.get(data["kind"])
        family = (kind.catalogued_as or kind.family) if kind is not None else data["family"]
        family = family if family in STYLES else "unknown"
        label = name if data["role"] != "block" else f"{name}\n{data['kind']}"
        if shapes is not None and data["role"] in ("input", "output") and name in shapes.sizes:
            label = f"{name}\n{data['role']} {shapes.sizes[name]}"
        picture.nodes[name] = (label, family)
    for block in spec.blocks:
        kind = REGISTRY.get(block.kind)
        if kind is not None and kind.family == "head" and block.memory is not None and block.memory.name in graph:
            picture.frames.setdefault(block.memory.name, [block.memory.name]).append(block.name)
    for source, target, data in graph.edges(data=True):
        picture.edges.append((source, target, _edge_label(source, target, data, shapes), data["delay"] == 1))
    return picture


def _edge_label(source: str, target: str, data: dict[str, object], shapes: object) -> str:
    role = data["role"]
    words = {"by": "by", "write": "write", "memory": "", "source": "@prev" if data["delay"] else ""}
    label = words.get(str(role), "")
    if shapes is None:
        return label
    size = ""
    if role == "memory":
        params = shapes.params.get(source, {})  # type: ignore[attr-defined]
        if "slots" in params and "width" in params:
            size = f"{params['slots']}x{params['width']}"
        elif source in shapes.sizes:  # type: ignore[attr-defined]
            size = str(shapes.sizes[source])  # type: ignore[attr-defined]
    elif role == "by":
        total = shapes.interface_sizes.get(source)  # type: ignore[attr-defined]
        size = f"interface {total}" if total else ""
    elif role == "source" and source in shapes.sizes:  # type: ignore[attr-defined]
        size = str(shapes.sizes[source])  # type: ignore[attr-defined]
    return " ".join(part for part in (label, size) if part)


# -- DOT -------------------------------------------------------------------------------------------------


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(picture: Picture) -> str:
    """The picture in Graphviz's DOT language."""
    lines = [f"digraph {_quoted(picture.model)} {{", "  rankdir=LR;", "  newrank=true;",
             '  node [fontname="Helvetica", fontsize=11];', '  edge [fontname="Helvetica", fontsize=9];']

    def node(name: str, indent: str) -> str:
        label, family = picture.nodes[name]
        shape, style, colour, _ = STYLES[family]
        return (f'{indent}{_quoted(name)} [label={_quoted(label)}, shape={shape}, style="{style}", '
                f'fillcolor="{colour}"];')

    framed = {name for members in picture.frames.values() for name in members}
    for memory, members in picture.frames.items():
        lines.append(f"  subgraph {_quoted('cluster_' + memory)} {{")
        lines.append(f'    label={_quoted(memory)}; style="rounded,dashed"; color="#999999"; fontname="Helvetica";')
        lines += [node(name, "    ") for name in members]
        lines.append("  }")
    lines += [node(name, "  ") for name in picture.nodes if name not in framed]
    for source, target, label, later in picture.edges:
        attributes = [f"label={_quoted(label)}"] if label else []
        if later:  # dashed, and left out of the ranking: a picture of one step reads left to right
            attributes += ["style=dashed", "constraint=false"]
        lines.append(f"  {_quoted(source)} -> {_quoted(target)}" + (f" [{', '.join(attributes)}]" if attributes
                                                                  else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def graphviz() -> str | None:
    """The path of Graphviz's ``dot``, or None where it is not installed."""
    return shutil.which("dot")


def render_graphviz(dot: str, fmt: str) -> bytes:
    """DOT text drawn by Graphviz as ``fmt`` (svg or png)."""
    program = graphviz()
    if program is None:
        raise UsageError("Graphviz's 'dot' is not installed: use --renderer matplotlib (or auto), or write .dot")
    done = subprocess.run([program, f"-T{fmt}"], input=dot.encode(), capture_output=True, timeout=120)
    if done.returncode != 0:
        raise UsageError(f"Graphviz failed: {done.stderr.decode(errors='replace').strip()[:300]}")
    return done.stdout


# -- matplotlib -------------------------------------------------------------------------------------------


def layout(picture: Picture) -> dict[str, tuple[float, float]]:
    """Where each node goes: columns by the order within one time step (the longest path of same-step wires
    into it), a memory in the column of its heads, a memory's frame kept together in its column."""
    now = nx.DiGraph()
    now.add_nodes_from(picture.nodes)
    memories = set(picture.frames)
    now.add_edges_from((s, t) for s, t, _, later in picture.edges if not later and s not in memories)
    if not nx.is_directed_acyclic_graph(now):  # a spec that validated has none; draw one column per node then
        return {name: (float(k), 0.0) for k, name in enumerate(picture.nodes)}
    column: dict[str, int] = {}
    for name in nx.topological_sort(now):
        column[name] = max((column[p] + 1 for p in now.predecessors(name)), default=0)
    for memory, members in picture.frames.items():
        column[memory] = min(column[m] for m in members[1:])
    frame_of = {m: memory for memory, members in picture.frames.items() for m in members}
    order = list(picture.nodes)
    places: dict[str, tuple[float, float]] = {}
    # a memory between its heads: the wires to them stay short and cross nothing
    rank = {}
    for memory, members in picture.frames.items():
        heads = members[1:]
        middle = len(heads) // 2
        rank.update({name: k for k, name in enumerate([*heads[:middle], memory, *heads[middle:]])})
    for c in sorted(set(column.values())):
        names = sorted((n for n in order if column[n] == c),
                       key=lambda n: (frame_of.get(n, n), rank.get(n, 0), order.index(n)))
        for k, name in enumerate(names):
            places[name] = (2.4 * c, (len(names) - 1) / 2 * 1.3 - 1.3 * k)
    return places


def render_matplotlib(picture: Picture, fmt: str) -> bytes:
    """The picture drawn with matplotlib (no Graphviz needed), as ``fmt`` (svg or png)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

    places = layout(picture)
    xs = [x for x, _ in places.values()] or [0.0]
    ys = [y for _, y in places.values()] or [0.0]
    fig = Figure(figsize=(2.0 + 1.2 * (max(xs) - min(xs)), 3.0 + 1.0 * (max(ys) - min(ys))))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.1, 0.96, 0.82))
    ax.set_axis_off()
    ax.set_xlim(min(xs) - 1.3, max(xs) + 1.3)
    top = max(ys)
    ax.set_title(picture.model, fontsize=12)
    for members in picture.frames.values():
        fx = [places[m][0] for m in members]
        fy = [places[m][1] for m in members]
        ax.add_patch(FancyBboxPatch((min(fx) - 0.9, min(fy) - 0.5), max(fx) - min(fx) + 1.8,
                                    max(fy) - min(fy) + 1.0, boxstyle="round,pad=0.05,rounding_size=0.2",
                                    fill=False, linestyle="--", edgecolor="#999999", zorder=0))
    for source, target, label, later in picture.edges:
        (x0, y0), (x1, y1) = places[source], places[target]
        # bent: a wire to the next step (it runs back), one within a column (it would cross the nodes between)
        bend = 0.3 if later or abs(x1 - x0) < 0.1 else 0.0
        between = [y for name, (x, y) in places.items() if min(x0, x1) < x < max(x0, x1) and
                   name not in (source, target)]
        if not bend and between:  # over other columns: arch over the nodes in them
            clear = max(between) + 0.75 - (y0 + y1) / 2  # how far above the chord's middle the curve's must be
            bend = -2 * clear / (x1 - x0)
            top = max(top, (y0 + y1) / 2 + clear)
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=12,
                                     connectionstyle=f"arc3,rad={bend}", shrinkA=24, shrinkB=24,
                                     linestyle="--" if later else "-", color="#444444", zorder=1))
        if label:  # at the middle of the curve (a quadratic Bezier whose control point arc3 puts off the chord)
            mx = (x0 + x1) / 2 + bend * (y1 - y0) / 2
            my = (y0 + y1) / 2 - bend * (x1 - x0) / 2 + (0.0 if bend else 0.12)
            ax.text(mx, my, label, fontsize=7, ha="center", va="center", color="#333333", zorder=3,
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
    ax.set_ylim(min(ys) - 1.0, top + 1.0)
    families = []
    for name, (label, family) in picture.nodes.items():
        _, _, colour, box = STYLES[family]
        x, y = places[name]
        ax.text(x, y, label, ha="center", va="center", fontsize=8, zorder=4,
                bbox={"boxstyle": box, "fc": colour, "ec": "#333333", "lw": 0.8})
        if family not in families:
            families.append(family)
    handles = [Patch(facecolor=STYLES[f][2], edgecolor="#333333", label=f) for f in families]
    handles.append(Line2D([], [], color="#444444", linestyle="--", label="next step (@prev, write)"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=7, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=110)
    return buffer.getvalue()


# -- the command ------------------------------------------------------------------------------------------


def drawn(picture: Picture, fmt: str, renderer: str = "auto") -> bytes:
    """The picture as the bytes of a ``fmt`` file: DOT text, or SVG / PNG by ``renderer`` (auto: Graphviz
    where installed, else matplotlib)."""
    dot = to_dot(picture)
    if fmt == "dot":
        return dot.encode()
    if renderer == "graphviz" or (renderer == "auto" and graphviz() is not None):
        return render_graphviz(dot, fmt)
    return render_matplotlib(picture, fmt)


def graph_command(args: object) -> int:
    """``cogdsl graph SPEC [-o FILE] [--format dot|svg|png] [--sizes] [--renderer R] [--force]``."""
    import sys

    from cogdsl.compiler.pipeline import read_spec_file
    from cogdsl.training.checkpoints import atomic_write_bytes

    output = getattr(args, "output", None)
    fmt = getattr(args, "format", None)
    if fmt is None:
        suffix = Path(output).suffix.lower().lstrip(".") if output else "dot"
        if suffix not in FORMATS:
            raise UsageError(f"{output}: the picture's format comes from its suffix, one of .dot, .svg, .png "
                             "(or give --format)")
        fmt = suffix
    if output is None and fmt != "dot":
        raise UsageError(f"a {fmt.upper()} picture is written to a file: give -o FILE.{fmt}")
    if output is not None:
        out = Path(output)
        if out.is_dir():
            raise UsageError(f"{out} is a folder; give a file name to write")
        if out.exists() and not getattr(args, "force", False):
            raise UsageError(f"{out} exists; pass --force to overwrite it")
    spec = read_spec_file(args.spec)  # type: ignore[attr-defined]
    data = drawn(picture_of(spec, getattr(args, "sizes", False)), fmt, getattr(args, "renderer", "auto"))
    if output is None:
        sys.stdout.write(data.decode())
        return 0
    atomic_write_bytes(Path(output), data)
    print(f"wrote {output}", file=sys.stderr)
    return 0
