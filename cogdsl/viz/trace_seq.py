"""``cogdsl trace`` for sequence-to-sequence models: the alignment matrix of each attention block.

Like Bahdanau et al. 2015, figure 3: one row per output step, one column per source
position, the weight the step gave that position; brighter is more. For reversal a good
model draws the anti-diagonal; for sorting, each row lights the source positions holding the
symbol it writes. ``cogdsl trace SPEC CHECKPOINT [--len L --seed S]`` prints the matrix of
one sequence and draws ``alignment.png``::

    trace = record_alignment(model, task, length=10, seed=0)
    print(alignment_table(trace))
    draw_alignment(trace, "runs/bahdanau_reverse/trace/alignment.png")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from matplotlib.figure import Figure

from cogdsl.tasks.base import Task
from cogdsl.viz.curves import _save, run_batch

ALIGNMENT_PNG = "alignment.png"


@dataclass(frozen=True)
class AlignmentTrace:
    """One source sequence, the answer, and where each output step looked.

    Attributes:
        source, target, predicted: symbol ids, (S,), (T,), (T,).
        weights: by "BLOCK" (one head) or "BLOCK head h", (T, S): the weight step t gave position i.
    """

    source: tuple[int, ...]
    target: tuple[int, ...]
    predicted: tuple[int, ...]
    weights: dict[str, torch.Tensor]


@torch.no_grad()
def record_alignment(model: torch.nn.Module, task: Task, length: int | None = None, seed: int = 0) -> AlignmentTrace:
    """Run ``model`` (in eval mode, restored after) on one sequence of ``task`` drawn with ``seed``."""
    batch = task.sample(1, torch.Generator().manual_seed(seed), length=length)
    logits, trace = run_batch(model, batch)
    assert isinstance(batch.inputs, dict)
    weights: dict[str, torch.Tensor] = {}
    for block in model.attentions:
        if block not in trace:
            continue  # a summary: no weights
        per_head = trace[block][0].float().cpu()  # (T, heads, S)
        for head in range(per_head.shape[1]):
            weights[block if per_head.shape[1] == 1 else f"{block} head {head + 1}"] = per_head[:, head]
    return AlignmentTrace(
        source=tuple(int(i) for i in batch.inputs["sequence"][0].argmax(-1)),
        target=tuple(int(i) for i in batch.targets[0]),
        predicted=tuple(int(i) for i in logits[0].argmax(-1)),
        weights=weights,
    )


def alignment_table(trace: AlignmentTrace) -> str:
    """Each alignment matrix as text: a row per output step (written symbol, right one), a column per
    source symbol, weights to two decimals."""
    lines = []
    for label, matrix in trace.weights.items():
        lines.append(f"{label}: output step (model / target) x source position")
        lines.append("        " + " ".join(f"{s:>4}" for s in trace.source))
        for t, row in enumerate(matrix):
            mark = "" if trace.predicted[t] == trace.target[t] else "  <- wrong"
            cells = " ".join(f"{float(w):4.2f}" for w in row)
            lines.append(f"{t:>2} {trace.predicted[t]:>2}/{trace.target[t]:<2} {cells}{mark}")
        lines.append("")
    right = sum(p == t for p, t in zip(trace.predicted, trace.target, strict=True))
    lines.append(f"source {list(trace.source)}; target {list(trace.target)}; the model writes "
                 f"{list(trace.predicted)} ({right} of {len(trace.target)} right)")
    return "\n".join(lines)


def draw_alignment(trace: AlignmentTrace, path: str | Path, title: str | None = None) -> Path:
    """One heat map per attention block (and head): output steps down, source positions across."""
    panels = list(trace.weights.items())
    steps, length = len(trace.target), len(trace.source)
    fig = Figure(figsize=(1.2 + (0.35 * length + 1.4) * max(len(panels), 1), 1.6 + 0.3 * steps),
                 layout="constrained")
    axes = fig.subplots(1, max(len(panels), 1), squeeze=False)[0]
    for ax, (label, matrix) in zip(axes, panels, strict=False):
        # Attention weights lie in [0, 1]; a Graves window's are unnormalised and may exceed 1, so each
        # of its rows is shown relative to its own peak.
        scaled = bool(matrix.max() > 1.0)
        if scaled:
            matrix = matrix / matrix.max(-1, keepdim=True).values.clamp_min(1e-12)
            label = f"{label} (each row over its peak)"
        ax.imshow(matrix.numpy(), aspect="equal", interpolation="nearest", cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(length), [str(s) for s in trace.source], fontsize=8)
        ax.set_yticks(range(steps), [f"{p}" + ("" if p == t else f" ({t})") for p, t in
                                     zip(trace.predicted, trace.target, strict=True)], fontsize=8)
        ax.set_xlabel("source symbol", fontsize=8)
        ax.set_ylabel("written symbol (right one, where wrong)", fontsize=8)
        ax.set_title(label, fontsize=9)
    fig.suptitle(title or "alignment of each output step over the source", fontsize=10)
    return _save(fig, Path(path))
