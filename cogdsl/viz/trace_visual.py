"""``cogdsl trace`` for models that look at an image: where each step looked.

Like Mnih et al. 2014, figure 3 (RAM's glimpse paths) and Jaderberg et al. 2015, figure 1
(the region a spatial transformer samples): one row per image; the image, with each
``glimpse`` block's path (a numbered marker per step, and the square of its widest patch)
and each ``spatial_transformer``'s sampled region (the transformed output square); then,
for each ``attention`` block over a ``conv`` feature grid, its weights over the regions at
every step, laid over the image; for DRAW, each ``draw_read``'s grid of filters (the square
its centres span) on the image, and each ``draw_write``'s canvas after every step (Gregor et
al. 2015, figure 2). ``cogdsl trace SPEC CHECKPOINT [--seed S]`` prints the locations and
draws ``glimpses.png``; a model with ``latent`` blocks (DRAW as a generative model) also draws
``generated.png``, images drawn with every latent taken from its prior (Gregor et al. 2015,
figure 7)::

    trace = record_glimpses(model, task, images=4, seed=0)
    print(glimpse_table(trace))
    draw_glimpses(trace, "runs/ram_digits/trace/glimpses.png")
    draw_glimpses(record_generated(model, task), "runs/draw_vae_digits/trace/generated.png")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from cogdsl.blocks import REGISTRY
from cogdsl.blocks.latent import from_prior
from cogdsl.blocks.visual import to_pixels as to_pixels  # re-exported
from cogdsl.tasks.base import Batch, Task
from cogdsl.viz.curves import _save, run_batch

GLIMPSES_PNG = "glimpses.png"
GENERATED_PNG = "generated.png"

@dataclass(frozen=True)
class GlimpseTrace:
    """Images, answers, and where each step of each visual block looked, in pixel coordinates.

    Attributes:
        images: (N, H, W); target, predicted: N class ids (the last step's answer; empty when the
            answer is not a class, as for the reconstruction task).
        paths: by glimpse block, (N, T, 2) centres (x, y), and ``widths[block]`` its widest patch in pixels.
        regions: by spatial_transformer or draw_read block, (N, T, 4, 2): the corners of the region it
            sampled (for DRAW, the square its filter centres span).
        canvases: by draw_write block, (N, T, A, A): the canvas after each step, through a sigmoid.
        weights: by attention block (one head) or "BLOCK head h", (N, T, g, g): its weights over a
            g x g feature grid.
        words: for a task that writes words (``task.vocabulary``, captions), the word each step wrote on
            each image (the greedy choice), N tuples of T; empty otherwise.
        said: the reference words of each image, N tuples of T, when ``words`` is given.
    """

    images: torch.Tensor
    target: tuple[int, ...]
    predicted: tuple[int, ...]
    paths: dict[str, torch.Tensor]
    widths: dict[str, int]
    regions: dict[str, torch.Tensor]
    weights: dict[str, torch.Tensor]
    canvases: dict[str, torch.Tensor]
    words: tuple[tuple[str, ...], ...] = ()
    said: tuple[tuple[str, ...], ...] = ()


@torch.no_grad()
def record_glimpses(model: torch.nn.Module, task: Task, images: int = 4, seed: int = 0) -> GlimpseTrace:
    """Run ``model`` (in eval mode, restored after) on ``images`` images of ``task`` drawn with ``seed``."""
    batch = task.sample(images, torch.Generator().manual_seed(seed))
    logits, trace = run_batch(model, batch)
    assert isinstance(batch.inputs, dict)
    pictures = batch.inputs["image"].float().cpu()
    side = pictures.shape[-1]
    layers: dict[str, dict[str, object]] = {"paths": {}, "widths": {}, "regions": {}, "weights": {}, "canvases": {}}
    for block, module in _looking(model, trace):
        places = REGISTRY[block.kind].trace_places(block.name, trace[block.name].float().cpu(), side, module, trace)
        for layer, shown in places.items():
            layers[layer].update(shown)
    scored = batch.mask[0].nonzero()[-1].item()
    classes = task.loss == "ce"
    target = tuple(int(i) for i in batch.targets[:, scored]) if classes else ()
    predicted = tuple(int(i) for i in logits[:, scored].argmax(-1)) if classes else ()
    vocabulary = getattr(task, "vocabulary", None)  # a task that writes words: what each step wrote
    words = tuple(tuple(vocabulary[i] for i in row) for row in logits.argmax(-1).tolist()) if vocabulary else ()
    said = tuple(tuple(vocabulary[i] for i in row) for row in batch.targets.tolist()) if vocabulary else ()
    return GlimpseTrace(pictures, target, predicted, layers["paths"], layers["widths"],  # type: ignore[arg-type]
                        layers["regions"], layers["weights"], layers["canvases"],  # type: ignore[arg-type]
                        words, said)


def _looking(model: torch.nn.Module, trace: dict[str, torch.Tensor]) -> list[tuple[Any, torch.nn.Module]]:
    """The attention-family blocks of ``model`` that left something in ``trace``, with their modules."""
    return [(block, model.attentions[block.name]) for block in model.spec.blocks
            if block.name in model.attentions and block.name in trace]


@torch.no_grad()
def record_generated(model: torch.nn.Module, task: Task, images: int = 8, seed: int = 0) -> GlimpseTrace:
    """``images`` pictures ``model`` draws (in eval mode) with each ``latent`` sampled from its prior
    N(0, I) under torch seed ``seed`` (the global generator is left as it was), from a blank input image:
    ``images`` holds each final picture, ``canvases`` each draw_write block's canvas over the steps."""
    batch = task.sample(images, torch.Generator().manual_seed(seed))
    assert isinstance(batch.inputs, dict)
    blank = Batch({**batch.inputs, "image": torch.zeros_like(batch.inputs["image"])}, batch.targets, batch.mask)
    with torch.random.fork_rng(devices=[]), from_prior(model):
        torch.manual_seed(seed)
        logits, trace = run_batch(model, blank)
    side = batch.inputs["image"].shape[-1]
    canvases = {name: canvas for block, module in _looking(model, trace)
                for name, canvas in REGISTRY[block.kind].trace_places(
                    block.name, trace[block.name].float().cpu(), side, module, trace).get("canvases", {}).items()}
    pictures = torch.sigmoid(logits[:, -1].float().cpu()).view(images, side, side)
    return GlimpseTrace(pictures, (), (), {}, {}, {}, {}, canvases)


def glimpse_table(trace: GlimpseTrace) -> str:
    """Per image: the answer, and per block and step where it looked (pixels, x then y)."""
    lines = []
    for n in range(trace.images.shape[0]):
        if trace.words:
            written, meant = _sentence(trace.words[n]), _sentence(trace.said[n])
            mark = "right" if written == meant else f"wrong: the caption is '{meant}'"
            lines.append(f"image {n}: the model writes '{written}' ({mark})")
        elif trace.target:
            mark = "right" if trace.target[n] == trace.predicted[n] else "wrong"
            lines.append(f"image {n}: digit {trace.target[n]}, the model says {trace.predicted[n]} ({mark})")
        else:
            lines.append(f"image {n}")
        for name, path in trace.paths.items():
            where = "  ".join(f"({float(x):5.1f}, {float(y):5.1f})" for x, y in path[n])
            lines.append(f"  {name}: glimpse centres by step  {where}")
        for name, corners in trace.regions.items():
            for t, box in enumerate(corners[n]):
                low, high = box.min(0).values, box.max(0).values
                lines.append(f"  {name}: step {t + 1} samples x {float(low[0]):5.1f} .. {float(high[0]):5.1f}, "
                             f"y {float(low[1]):5.1f} .. {float(high[1]):5.1f}")
        for label, grids in trace.weights.items():
            grid = grids.shape[-1]
            peaks = [divmod(int(g.flatten().argmax()), grid) for g in grids[n]]
            where = "  ".join(f"r{r}c{c} {float(grids[n, t, r, c]):.2f}" for t, (r, c) in enumerate(peaks))
            lines.append(f"  {label}: strongest region by step (of a {grid}x{grid} grid)  {where}")
        for name, canvas in trace.canvases.items():
            wrong = int(((canvas[n, -1] > 0.5) != (trace.images[n] > 0.5)).sum())
            lines.append(f"  {name}: after the last step, {wrong} of {canvas[n, -1].numel()} pixels on the wrong side "
                         "of 0.5")
    if trace.words:
        right = sum(_sentence(w) == _sentence(s) for w, s in zip(trace.words, trace.said, strict=True))
        lines.append(f"{right} of {len(trace.words)} captions right")
    elif trace.target:
        right = sum(t == p for t, p in zip(trace.target, trace.predicted, strict=True))
        lines.append(f"{right} of {len(trace.target)} right")
    return "\n".join(lines)


def _sentence(words: tuple[str, ...]) -> str:
    """The words before the first ``<end>``, joined."""
    return " ".join(words[: words.index("<end>")] if "<end>" in words else words)


def draw_glimpses(trace: GlimpseTrace, path: str | Path, title: str | None = None) -> Path:
    """One row per image: the image with glimpse paths and sampled regions, then each attention block's
    weights at every step, over the image."""
    rows = trace.images.shape[0]
    over_time = {**trace.weights, **trace.canvases}
    steps = max((g.shape[1] for g in over_time.values()), default=0)
    columns = 1 + steps * len(over_time)
    fig = Figure(figsize=(1.2 + 2.0 * columns, 0.6 + 2.0 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    colours = ["tab:red", "tab:orange", "gold", "tab:green", "tab:cyan", "tab:blue", "tab:purple", "tab:pink"]
    side = trace.images.shape[-1]
    for n in range(rows):
        ax = axes[n][0]
        ax.imshow(trace.images[n].numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        for name, centres in trace.paths.items():
            xs, ys = centres[n, :, 0].numpy(), centres[n, :, 1].numpy()
            ax.plot(xs, ys, "-", color="white", linewidth=0.8, alpha=0.7)
            half = trace.widths[name] / 2
            for t, (x, y) in enumerate(zip(xs, ys, strict=True)):
                colour = colours[t % len(colours)]
                ax.add_patch(_square(x - half, y - half, 2 * half, colour))
                ax.text(x, y, str(t + 1), color=colour, fontsize=8, ha="center", va="center", fontweight="bold")
        for corners in trace.regions.values():
            for t, box in enumerate(corners[n]):
                closed = torch.cat([box, box[:1]])
                ax.plot(closed[:, 0].numpy(), closed[:, 1].numpy(), "-", color=colours[t % len(colours)],
                        linewidth=1.2)
        ax.set_xlim(-0.5, side - 0.5)
        ax.set_ylim(side - 0.5, -0.5)
        if trace.words:
            written, meant = _sentence(trace.words[n]), _sentence(trace.said[n])
            ax.set_title(f"'{written}'" + ("" if written == meant else f"\n(caption: '{meant}')"), fontsize=8)
        elif trace.target:
            mark = "" if trace.target[n] == trace.predicted[n] else f" (digit {trace.target[n]})"
            ax.set_title(f"says {trace.predicted[n]}{mark}", fontsize=9)
        else:
            ax.set_title("the image", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        column = 1
        for label, grids in trace.weights.items():
            for t in range(grids.shape[1]):
                ax = axes[n][column]
                column += 1
                ax.imshow(trace.images[n].numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
                ax.imshow(grids[n, t].numpy(), cmap="inferno", alpha=0.55, vmin=0.0,
                          extent=(-0.5, side - 0.5, side - 0.5, -0.5), interpolation="nearest")
                shown = f"'{trace.words[n][t]}'" if trace.words else f"step {t + 1}"
                ax.set_title(f"{label}, {shown}", fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
        for label, canvas in trace.canvases.items():
            for t in range(canvas.shape[1]):
                ax = axes[n][column]
                column += 1
                ax.imshow(canvas[n, t].numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
                ax.set_title(f"{label}, step {t + 1}", fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
    fig.suptitle(title or "where each step looked", fontsize=10)
    return _save(fig, Path(path))


def _square(x: float, y: float, width: float, colour: str) -> object:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), width, width, fill=False, edgecolor=colour, linewidth=1.0)
