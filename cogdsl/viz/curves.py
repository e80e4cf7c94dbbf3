"""Plots: the learning curve of a run and the weightings of a model's heads over one sequence.

Both draw on a bare :class:`matplotlib.figure.Figure` with the Agg canvas, never through
``pyplot``, so they work without a display and leave the user's matplotlib backend alone.
PNGs are written atomically (a temporary file, then ``os.replace``).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cogdsl.tasks.base import Batch
from cogdsl.training.checkpoints import atomic_write_bytes
from cogdsl.training.loop import model_inputs


def _save(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _float(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_log(csv_path: str | Path) -> list[dict[str, float | None]]:
    """The rows of a run's ``log.csv`` as numbers (None for blank cells)."""
    with open(csv_path, newline="", encoding="utf-8") as handle:
        return [{k: _float(v) for k, v in row.items() if k is not None} for row in csv.DictReader(handle)]


def read_log_by_role(csv_path: str | Path) -> tuple[dict[str, str], list[dict[str, float | None]]]:
    """The column names of a run's ``log.csv`` by role (:data:`cogdsl.training.run_folder.LOG_ROLES`: a QA
    run's ``sequences`` column is ``questions``, its ``bit_errors`` column ``error_rate``) and its rows by role."""
    from cogdsl.training.run_folder import LOG_ROLES

    with open(csv_path, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    names = dict(zip(LOG_ROLES, header, strict=False))
    rows = [{role: row.get(name) for role, name in names.items()} for row in read_log(csv_path)]
    return names, rows


def _label(name: str, items: str) -> str:
    """The axis label of an errors column: ``error rate (%)``, ``bit errors per sequence``."""
    if name == "error_rate":
        return "error rate (%)"
    return f"{name.replace('_', ' ')} per {items.removesuffix('s')}"


def plot_learning_curve(csv_path: str | Path, png_path: str | Path, title: str | None = None) -> Path:
    """Loss (log scale) and errors (bit errors per sequence, or the error rate of questions or images) against
    the sequences (questions, images) seen, training and evaluation.

    Reads the CSV that :func:`cogdsl.training.loop.train` writes, by the role of each column (``sequences``, ``loss``,
    ``bit_errors``, ``eval_loss``, ``eval_bit_errors`` for the algorithmic tasks).
    """
    names, rows = read_log_by_role(csv_path)
    items = names.get("sequences", "sequences")
    rate = names.get("bit_errors") == "error_rate"

    def series(key: str) -> tuple[list[float], list[float]]:
        points = [(r["sequences"], r[key]) for r in rows if r.get("sequences") is not None and r.get(key) is not None]
        scale = 100.0 if rate and key.endswith("bit_errors") else 1.0
        return [p[0] for p in points], [scale * p[1] for p in points]  # type: ignore[misc]

    # Fixed margins: the curve is redrawn during every run, and a constrained layout costs half its time.
    fig = Figure(figsize=(8, 6.5))
    fig.subplots_adjust(left=0.1, right=0.97, top=0.93, bottom=0.08, hspace=0.08)
    ax_loss, ax_bits = fig.subplots(2, 1, sharex=True)
    per = items.removesuffix("s")
    for ax, key, label in ((ax_loss, "loss", f"loss (nats per {per})"),
                           (ax_bits, "bit_errors", _label(names.get("bit_errors", "bit_errors"), items))):
        xs, ys = series(key)
        ax.plot(xs, ys, color="tab:blue", linewidth=1.2, label="training")
        ex, ey = series(f"eval_{key}")
        if ex:
            ax.plot(ex, ey, color="tab:orange", marker="o", markersize=4, linewidth=1.2,
                    label="evaluation (validation)" if rate else "evaluation (max length)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        if xs or ex:
            ax.legend(loc="upper right")
    positive = [y for key in ("loss", "eval_loss") for y in series(key)[1] if y > 0]
    if positive:
        ax_loss.set_yscale("log")
    ax_bits.set_ylim(bottom=0)
    ax_bits.set_xlabel(f"{items} seen")
    fig.suptitle(title or "learning curve")
    return _save(fig, png_path)


def _first_output(y: Any) -> torch.Tensor:
    return next(iter(y.values())) if isinstance(y, dict) else y


@torch.no_grad()
def run_one_sequence(model: torch.nn.Module, inputs: torch.Tensor | dict[str, torch.Tensor]
                     ) -> tuple[torch.Tensor, Any, dict[str, torch.Tensor]]:
    """The first sequence of ``inputs`` ((T, I) or (B, T, I), or a task's inputs by kind, each (B, T, ...))
    as (1, T, I), the model's raw outputs on it and its trace (``return_weights``), run in eval mode and
    the model's mode restored after. Word ids are shown as each step's words (:func:`shown_inputs`)."""
    device = _device_of(model)
    if isinstance(inputs, dict):
        given = {kind: value[:1] for kind, value in inputs.items()}
        with evaluating(model):
            logits, weights = model(model_inputs(model, _to(given, device)), raw=True, return_weights=True)
        return shown_inputs(model, given), _to(logits, "cpu"), _to(weights, "cpu")
    x = (inputs if inputs.dim() == 3 else inputs.unsqueeze(0))[:1]
    with evaluating(model):
        logits, weights = model(_to(x, device), raw=True, return_weights=True)
    return x, _to(logits, "cpu"), _to(weights, "cpu")


def _device_of(model: torch.nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _to(value: Any, device: torch.device | str) -> Any:
    """Tensors in ``value`` (nested in dicts, lists and tuples) on ``device``: a model on a GPU is fed and read
    from the CPU, where the plots are drawn."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {key: _to(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to(item, device) for item in value)
    return value


def shown_inputs(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """A task's per-step inputs by kind, (B, T, ...), as one (B, T, I) float picture: a vector input as it
    is, word ids (``words`` (B, T, L), ``sentences`` (B, T, S, L)) as how often each word of the vocabulary
    occurs at each step (channel i: word id i; padding shown as 0); whole inputs (a sequence, an image)
    are not shown."""
    parts = []
    for name, kind in model.input_kinds.items():
        value = inputs[kind]
        if kind == "vector":
            parts.append(value.float())
        elif kind in ("words", "sentences"):
            counts = torch.nn.functional.one_hot(value.flatten(2), model.shapes.sizes[name]).sum(2).float()
            counts[..., 0] = 0.0  # (B, T, V), channel i word id i, padding left out
            parts.append(counts)
    return torch.cat(parts, dim=-1)


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Run the block with ``model`` in eval mode, its mode restored after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def run_batch(model: torch.nn.Module, batch: Batch) -> tuple[Any, dict[str, torch.Tensor]]:
    """A task batch's raw outputs and its trace (``return_weights``), in eval mode (restored after), for
    the batch's number of steps."""
    with evaluating(model):
        inputs = _to(model_inputs(model, batch.inputs), _device_of(model))
        return _to(model(inputs, raw=True, return_weights=True, steps=batch.steps), "cpu")


@torch.no_grad()
def plot_weightings(model: torch.nn.Module, inputs: torch.Tensor | dict[str, torch.Tensor], png_path: str | Path,
                    targets: torch.Tensor | None = None, title: str | None = None) -> Path:
    """Inputs, targets and outputs of one sequence, then every head block's weighting, slots × time.

    ``inputs`` (T, I) or (1, T, I), or a task's inputs by kind (:func:`run_one_sequence`); ``targets``
    (T, O) or (1, T, O), or class ids (T,) or (1, T) shown one-hot, optional. As in figure 6
    of Graves et al. 2014: time runs left to right, memory slots top to bottom, one panel per
    head (read and write heads alike), brighter is more weight.
    """
    x, logits, weights = run_one_sequence(model, inputs)
    probs = torch.sigmoid(_first_output(logits)[0]).cpu()  # (T, O)
    panels: list[tuple[str, torch.Tensor, str]] = [("inputs", x[0].cpu().T, "channel")]
    if targets is not None:
        if not targets.is_floating_point():  # class ids (T,) or (1, T), shown one-hot
            targets = torch.nn.functional.one_hot(targets.long(), probs.shape[-1]).float()
        t = targets if targets.dim() == 2 else targets[0]
        panels.append(("targets", t.cpu().T, "channel"))
    panels.append(("outputs (sigmoid)", probs.T, "channel"))
    for name, w in weights.items():  # (1, T, heads, N)
        if ":" in name or w.dim() != 4:
            continue  # a dnc_memory's usage and read modes (`cogdsl trace` draws those); an embed block's value
        heads = w.shape[2]
        for h in range(heads):
            label = f"{name} weighting" + (f" (head {h})" if heads > 1 else "")
            panels.append((label, w[0, :, h].cpu().T, "slot"))  # (N, T)
    heights = [max(1.0, min(p[1].shape[0] / 8, 4.0)) * 0.9 for p in panels]  # inches
    steps = x.shape[1]
    width = min(max(6.0, steps * 0.12 + 2.5), 16.0)
    fig = Figure(figsize=(width, _TOP + sum(heights) + len(panels) * _TITLE + _BOTTOM))
    axes = []
    top = _TOP
    for index, (label, image, ylabel) in enumerate(panels):  # placed by hand: a layout engine took seconds
        top += _TITLE
        ax = fig.add_axes(_inches(fig, _LEFT, top + heights[index], width - _LEFT - _RIGHT, heights[index]),
                          sharex=axes[0] if axes else None)
        colorbar = fig.add_axes(_inches(fig, width - _RIGHT + 0.1, top + heights[index], 0.12, heights[index]))
        top += heights[index]
        cmap = "gray" if ylabel == "channel" else "magma"
        im = ax.imshow(image.float().numpy(), aspect="auto", interpolation="nearest", cmap=cmap,
                       vmin=0.0, vmax=1.0 if ylabel == "channel" else max(float(image.max()), 1e-6))
        ax.set_title(label, fontsize=9, loc="left")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7, labelbottom=index == len(panels) - 1)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        fig.colorbar(im, cax=colorbar)  # on every panel, so the time axes line up
        colorbar.tick_params(labelsize=7)
        axes.append(ax)
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel("time step")
    fig.suptitle(title or "head weightings over one sequence", fontsize=11, y=1.0 - 0.1 / fig.get_figheight(),
                 va="top")
    return _save(fig, png_path)


#: The weightings figure's margins and each panel's title band, in inches.
_TOP, _BOTTOM, _LEFT, _RIGHT, _TITLE = 0.4, 0.55, 0.75, 0.7, 0.3


def _inches(fig: Figure, left: float, top: float, width: float, height: float) -> list[float]:
    """A rectangle given in inches, ``top`` measured down to its bottom edge from the figure's top, as the
    figure fractions ``add_axes`` takes."""
    fig_width, fig_height = fig.get_figwidth(), fig.get_figheight()
    return [left / fig_width, 1.0 - top / fig_height, width / fig_width, height / fig_height]
