"""``cogdsl trace``: a model's memory activity over one sequence, as PNGs.

Like the figures of the DNC paper (Graves et al. 2016, Nature 538, figures 1 and 3): time
runs left to right in every panel; brighter is more weight. The PNGs, in the output folder:

``weightings.png``
    The sequence's inputs, targets (class targets one-hot) and outputs (through the output's
    activation), then for each memory (``memory`` and ``dnc_memory`` alike) its write
    weightings and then its read weightings, slots × time, one panel per head. Each panel's
    colour scale runs from 0 to its own largest weight. Then, for each ``stack``, the push and
    pop probabilities of its stacks and the top of the stack that pushes and pops most
    (Joulin & Mikolov 2015, figure 3); for each ``queue`` and ``deque``, its push and pop strengths and the strengths
    of its rows; for each ``clockwork``, ``skip_rnn`` and ``hm_rnn`` controller, when its units
    ran (groups that ran, updates with the fraction skipped, boundaries per layer).
``modes.png`` (models with a ``dnc_memory`` that is read)
    The read modes of each read head over time, modes × time, rows labelled with the mode
    names (``backward``, ``content``, ``forward``; ``backward:k``/``forward:k`` per write
    head when there are several): which of the temporal links or the content lookup the
    head follows at each step. Scale 0 to 1; each column sums to 1.
``usage.png`` (models with a ``dnc_memory``)
    The usage of each ``dnc_memory``'s slots over time, slots × time, scale 0 to 1: slots
    fill as they are written and empty as the free gates release them.

    trace = record_trace(model, inputs, targets)      # the arrays, without drawing
    paths = plot_trace(model, inputs, "runs/dnc_repeat_copy/trace", targets=targets)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cogdsl.blocks import REGISTRY
from cogdsl.blocks.stacks import busiest_stack as busiest_stack  # re-exported
from cogdsl.errors import UsageError
from cogdsl.viz.curves import _first_output, _save, run_one_sequence

WEIGHTINGS_PNG = "weightings.png"
MODES_PNG = "modes.png"
USAGE_PNG = "usage.png"


@dataclass(frozen=True)
class MemoryHeads:
    """One memory and the head blocks on it (write blocks, read blocks, each with its head count)."""

    memory: str
    dnc: bool
    writes: tuple[tuple[str, int], ...]
    reads: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Trace:
    """What a model did over one sequence; every tensor on the CPU, time first.

    Attributes:
        inputs: (T, I); targets: (T, O) or None; outputs: (T, O), sigmoid of the logits.
        memories: every memory with heads, in the order of the model's head groups.
        weightings: by head block, (T, heads, N).
        usage: by ``dnc_memory``, (T, N).
        modes: by read block of a ``dnc_memory``, (T, heads, modes).
        mode_names: by the same read blocks, the mode of each column of ``modes``.
        structures: by panel title, (rows, T) and the rows' labels (or None): the stacks, queues,
            deques and multiscale controllers (see the top of this module).
        output_activation: the name of the output's activation ("none" for raw values).
    """

    inputs: torch.Tensor
    targets: torch.Tensor | None
    outputs: torch.Tensor
    memories: tuple[MemoryHeads, ...]
    weightings: dict[str, torch.Tensor]
    usage: dict[str, torch.Tensor]
    modes: dict[str, torch.Tensor]
    mode_names: dict[str, tuple[str, ...]]
    structures: dict[str, tuple[torch.Tensor, tuple[str, ...] | None]] = dataclasses.field(default_factory=dict)
    output_activation: str = "sigmoid"


def memory_heads(model: torch.nn.Module) -> tuple[MemoryHeads, ...]:
    """The memories of a compiled model with their head blocks (a memory's groups merged)."""
    found: dict[str, MemoryHeads] = {}
    for group in getattr(model, "groups", ()):
        plan = group.plan
        old = found.get(plan.memory, MemoryHeads(plan.memory, bool(group.owns_memory), (), ()))
        found[plan.memory] = MemoryHeads(plan.memory, old.dnc, old.writes + plan.writes, old.reads + plan.reads)
    return tuple(found.values())


def trace_files(model: torch.nn.Module) -> list[str]:
    """The names of the PNGs :func:`plot_trace` writes for ``model``."""
    memories = memory_heads(model)
    names = [WEIGHTINGS_PNG]
    if any(m.dnc and m.reads for m in memories):
        names.append(MODES_PNG)
    if any(m.dnc for m in memories):
        names.append(USAGE_PNG)
    return names


@torch.no_grad()
def record_trace(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> Trace:
    """Run ``model`` on one sequence (in eval mode, restored after) and collect its memory activity.

    ``inputs`` (T, I) or (B, T, I), of which the first sequence is used; ``targets`` likewise,
    optional, only carried along for the plot.
    """
    x, logits, trace = run_one_sequence(model, inputs)
    memories = memory_heads(model)
    mode_names = {block: tuple(group.modes) for group in getattr(model, "groups", ()) if group.owns_memory
                  for block, _ in group.plan.reads}
    raw = _first_output(logits)[0].cpu()
    activation_name, activation = _output_activation(model)
    outputs = raw if activation is None else activation(raw)
    t = None
    if targets is not None:  # (T, O) or (B, T, O) values; (T,) or (B, T) class ids, shown one-hot
        batched = targets.dim() == (3 if targets.is_floating_point() else 2)
        t = (targets[0] if batched else targets).detach().cpu()
        if not t.is_floating_point():
            t = torch.nn.functional.one_hot(t.long(), raw.shape[-1]).float()
    return Trace(
        inputs=x[0].detach().cpu(),
        targets=t,
        outputs=outputs,
        memories=memories,
        weightings={block: trace[block][0].cpu() for m in memories for block, _ in m.writes + m.reads},
        usage={m.memory: trace[f"{m.memory}:usage"][0].cpu() for m in memories if m.dnc},
        modes={block: trace[f"{block}:modes"][0].cpu() for block in mode_names if f"{block}:modes" in trace},
        mode_names=mode_names,
        structures=_structure_panels(model, {name: value[0].float().cpu() for name, value in trace.items()}),
        output_activation=activation_name,
    )


def _output_activation(model: torch.nn.Module) -> tuple[str, Callable[[torch.Tensor], torch.Tensor] | None]:
    """The first output's activation: its name as the spec writes it ("none" for raw values) and the
    function the model applies (None); a module not compiled from a spec is taken to be sigmoid."""
    outputs = getattr(getattr(model, "spec", None), "outputs", ())
    if not outputs:
        return "sigmoid", torch.sigmoid
    return (str(outputs[0].activation.data) if outputs[0].activation else "none"), model.activations[outputs[0].name]


def _structure_panels(model: torch.nn.Module, trace: dict[str, torch.Tensor]
                      ) -> dict[str, tuple[torch.Tensor, tuple[str, ...] | None]]:
    """Panels (rows, T) of the blocks that draw their own (:meth:`BlockKind.trace_panels`: stacks, queues,
    deques, multiscale controllers), from one sequence's trace (time first)."""
    panels: dict[str, tuple[torch.Tensor, tuple[str, ...] | None]] = {}
    for block in getattr(getattr(model, "spec", None), "blocks", ()):
        panels.update(REGISTRY[block.kind].trace_panels(block.name, trace))
    return panels


# A panel: title, image (rows, T), y label, colour map, colour scale maximum, row labels (or None).
_Panel = tuple[str, torch.Tensor, str, str, float, tuple[str, ...] | None]


def _draw(panels: list[_Panel], steps: int, title: str, path: Path) -> Path:
    heights = [max(1.0, min(p[1].shape[0] / 8, 4.0)) for p in panels]
    width = min(max(6.0, steps * 0.12 + 2.5), 16.0)
    fig = Figure(figsize=(width, 1.0 + sum(heights) * 0.9), layout="constrained")
    axes: Any = fig.subplots(len(panels), 1, sharex=True, squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, (label, image, ylabel, cmap, vmax, rows) in zip(axes[:, 0], panels, strict=True):
        im = ax.imshow(image.float().numpy(), aspect="auto", interpolation="nearest", cmap=cmap,
                       vmin=0.0, vmax=max(vmax, 1e-6))
        ax.set_title(label, fontsize=9, loc="left")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        if rows is not None:
            ax.set_yticks(range(len(rows)), rows)
        else:
            ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01)  # on every panel, so the time axes line up
    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1, 0].set_xlabel("time step")
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def _head(label: str, heads: int, h: int) -> str:
    return label + (f" (head {h})" if heads > 1 else "")


def draw_trace(trace: Trace, out_dir: str | Path, title: str | None = None) -> list[Path]:
    """Draw a :class:`Trace` as the PNGs described at the top of this module; returns their paths."""
    out = Path(out_dir)
    title = title or "memory activity over one sequence"
    steps = trace.inputs.shape[0]
    panels: list[_Panel] = [("inputs", trace.inputs.T, "channel", "gray", 1.0, None)]
    if trace.targets is not None:
        panels.append(("targets", trace.targets.T, "channel", "gray", max(1.0, float(trace.targets.max())), None))
    raw = trace.output_activation == "none"
    panels.append((f"outputs ({trace.output_activation})" if not raw else "outputs", trace.outputs.T, "channel",
                   "gray", float(trace.outputs.abs().max()) if raw else 1.0, None))
    for m in trace.memories:
        for verb, blocks in (("write", m.writes), ("read", m.reads)):
            for block, heads in blocks:
                w = trace.weightings[block]  # (T, heads, N)
                for h in range(heads):
                    panels.append((_head(f"{m.memory}: {verb} weighting {block}", heads, h), w[:, h].T, "slot",
                                   "magma", float(w[:, h].max()), None))
    for label, (image, rows) in trace.structures.items():
        panels.append((label, image, "", "magma", max(1.0, float(image.max())), rows))
    paths = [_draw(panels, steps, f"{title}: inputs, outputs and weightings", out / WEIGHTINGS_PNG)]
    modes: list[_Panel] = []
    for m in trace.memories:
        for block, heads in m.reads:
            if block in trace.modes:
                for h in range(heads):
                    modes.append((_head(f"{m.memory}: read modes of {block}", heads, h), trace.modes[block][:, h].T,
                                  "mode", "viridis", 1.0, trace.mode_names[block]))
    if modes:
        paths.append(_draw(modes, steps, f"{title}: read modes", out / MODES_PNG))
    usage: list[_Panel] = [(f"{name}: usage", u.T, "slot", "magma", 1.0, None) for name, u in trace.usage.items()]
    if usage:
        paths.append(_draw(usage, steps, f"{title}: memory usage", out / USAGE_PNG))
    return paths


def plot_trace(model: torch.nn.Module, inputs: torch.Tensor, out_dir: str | Path,
               targets: torch.Tensor | None = None, title: str | None = None) -> list[Path]:
    """Run ``model`` on one sequence and save its memory activity as PNGs in ``out_dir`` (which must exist).

    ``weightings.png`` always; ``modes.png`` and ``usage.png`` when the model has a
    ``dnc_memory`` (see the top of this module). Returns the paths written, in that order.
    """
    return draw_trace(record_trace(model, inputs, targets), out_dir, title)


def _prepare_out(out: Path, names: list[str], force: bool) -> None:
    """Create ``out``; refuse (UsageError) when it is not a folder or, without ``force``, when a PNG exists."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder; choose another --out")
    existing = [name for name in names if (out / name).exists()]
    if existing and not force:
        raise UsageError(f"{out} already has {', '.join(existing)}; pass --force to overwrite")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create the output folder {out}: {err.strerror or err}") from None


def _trace_hops(name: str, task: Any, model: torch.nn.Module, step: int, out: Path, args: Any) -> int:
    """A QA model: print the hop attention table of one test question and draw ``hops.png``."""
    from cogdsl.viz.trace_qa import HOPS_PNG, draw_hops, hop_table, record_hops

    if not hasattr(task, "data"):
        raise UsageError(f"{name} has reasoning blocks but its task {task.name} has no stories to trace")
    count = task.split_size("test")
    if args.question is None or not 0 <= args.question < count:
        raise UsageError(f"--question must be a test question, 0 .. {count - 1}; got {args.question}")
    _prepare_out(out, [HOPS_PNG], args.force)
    trace = record_hops(model, task, args.question)
    return _print_and_draw(hop_table(trace), lambda: draw_hops(
        trace, out / HOPS_PNG, f"{name}, step {step}: test question {args.question}"), out)


def _print_and_draw(table: str, draw: Callable[[], Path], out: Path) -> int:
    """Print a trace's table, then draw its picture into ``out``; a picture that cannot be written is
    a usage error."""
    print(table)
    try:
        path = draw()
    except OSError as err:
        raise UsageError(f"cannot write the plot in {out}: {err.strerror or err}") from None
    print(f"wrote {path}")
    return 0


def _trace_alignment(name: str, task: Any, model: torch.nn.Module, step: int, out: Path, args: Any) -> int:
    """A sequence-to-sequence model: print each attention block's alignment over one sequence and
    draw ``alignment.png``."""
    from cogdsl.viz.trace_seq import ALIGNMENT_PNG, alignment_table, draw_alignment, record_alignment

    _prepare_out(out, [ALIGNMENT_PNG], args.force)
    length = args.length if args.length is not None else task.length_range()[1]
    trace = record_alignment(model, task, length=length, seed=args.seed)
    if not trace.weights:
        raise UsageError(f"{name} has no attention block to trace (a summary has no weights)")
    return _print_and_draw(alignment_table(trace), lambda: draw_alignment(
        trace, out / ALIGNMENT_PNG, f"{name} at length {length}, step {step}"), out)


def _trace_glimpses(name: str, task: Any, model: torch.nn.Module, step: int, out: Path, args: Any) -> int:
    """A model that looks at an image: print where each step looked on four images and draw
    ``glimpses.png``."""
    from cogdsl.viz.trace_visual import (
        GENERATED_PNG,
        GLIMPSES_PNG,
        draw_glimpses,
        glimpse_table,
        record_generated,
        record_glimpses,
    )

    generates = bool(getattr(model, "penalized", None)) and task.output_size == task.input_size ** 2  # an image
    _prepare_out(out, [GLIMPSES_PNG] + ([GENERATED_PNG] if generates else []), args.force)
    trace = record_glimpses(model, task, seed=args.seed)
    if not (trace.paths or trace.regions or trace.weights or trace.canvases):
        raise UsageError(f"{name} has no glimpse, spatial_transformer, draw or attention block to trace")

    def draw() -> Path:
        path = draw_glimpses(trace, out / GLIMPSES_PNG, f"{name}, step {step}: where each step looked")
        if generates:  # images drawn from the prior; the print-and-draw tail reports the first file
            generated = draw_glimpses(record_generated(model, task, seed=args.seed), out / GENERATED_PNG,
                                      f"{name}, step {step}: drawn with each latent from its prior")
            print(f"wrote {generated}")
        return path

    return _print_and_draw(glimpse_table(trace), draw, out)


def run_folder_of(checkpoint: Path) -> Path:
    """The run folder a checkpoint belongs to: the folder above ``checkpoints/``, else the checkpoint's own folder."""
    from cogdsl.training.checkpoints import CHECKPOINT_DIR

    folder = checkpoint.parent
    return folder.parent if folder.name == CHECKPOINT_DIR else folder


def trace_command(args: Any) -> int:
    """``cogdsl trace SPEC CHECKPOINT [--out DIR --len L --seed S --force]``: PNGs of memory activity."""
    from cogdsl.training.loop import check_seed, eval_length, load_trained

    check_seed(args.seed)
    spec, task, model, checkpoint = load_trained(args.spec, args.checkpoint, args.length,
                                                 getattr(args, "device", "cpu"), compile=getattr(args, "compile", None))
    assert task is not None  # load_trained needs one here
    out = Path(args.out) if args.out else run_folder_of(checkpoint.path) / "trace"
    if getattr(model, "read_memory", None):
        return _trace_hops(spec.name, task, model, checkpoint.step, out, args)
    if "sequence" in task.input_kinds:
        return _trace_alignment(spec.name, task, model, checkpoint.step, out, args)
    if "image" in task.input_kinds:
        return _trace_glimpses(spec.name, task, model, checkpoint.step, out, args)
    _prepare_out(out, trace_files(model), args.force)
    length = args.length if args.length is not None else eval_length(task)
    sample = task.sample(1, torch.Generator().manual_seed(args.seed), length=length)
    at = f" at length {length}" if length is not None else ""
    try:
        paths = plot_trace(model, sample.inputs, out, targets=sample.targets,
                           title=f"{spec.name}{at}, step {checkpoint.step}")
    except OSError as err:
        raise UsageError(f"cannot write the plots in {out}: {err.strerror or err}") from None
    for path in paths:
        print(f"wrote {path}")
    return 0
