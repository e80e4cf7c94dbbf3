"""``cogdsl trace`` for question-answering models: where each hop looked in one story.

Like the attention tables of the memory-network papers (Sukhbaatar et al. 2015, figure 2;
Kumar et al. 2016, figure 3): one row per story sentence, one column per hop (or episode)
of each reasoning block, the weight that hop gave the sentence, and a mark on the
supporting facts. ``cogdsl trace SPEC CHECKPOINT --question N`` prints the table for test
question N and draws it as ``hops.png``::

    trace = record_hops(model, task, question=0)
    print(hop_table(trace))
    draw_hops(trace, "runs/memn2n_babi/trace/hops.png")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from matplotlib.figure import Figure

from cogdsl.tasks.qa import BabiTask
from cogdsl.viz.curves import _save, run_batch

HOPS_PNG = "hops.png"


@dataclass(frozen=True)
class HopTrace:
    """One question, the story it is about, and each hop's attention over the story's sentences.

    Attributes:
        sentences: the story's sentences as text, in order.
        question, answer, predicted: the question, the right answer, the model's answer.
        supporting: indices into ``sentences`` of the supporting facts.
        attention: by reasoning block, (hops, sentences): the weight hop k gave sentence i
            (0 for a sentence the memory did not keep).
    """

    sentences: tuple[str, ...]
    question: str
    answer: str
    predicted: str
    supporting: frozenset[int]
    attention: dict[str, torch.Tensor]


def _text(task: BabiTask, ids: torch.Tensor) -> str:
    return " ".join(task.answer_word(int(i)) for i in ids if int(i) != 0)


@torch.no_grad()
def record_hops(model: torch.nn.Module, task: BabiTask, question: int = 0, split: str = "test") -> HopTrace:
    """Run ``model`` (in eval mode, restored after) on question ``question`` of ``split``."""
    count = task.split_size(split)
    if not 0 <= question < count:
        raise IndexError(f"question {question} is not in the {split} split (questions 0 .. {count - 1})")
    data = task.question_rows(split, torch.tensor([question]))
    batch = task.batch_of(data, torch.tensor([0]))
    logits, trace = run_batch(model, batch)
    story = data["story"][0]
    sentences = tuple(_text(task, row) for row in story if int(row.ne(0).sum()) > 0)
    attention: dict[str, torch.Tensor] = {}
    for block, memory in model.read_memory.items():
        weights = trace[block][0, 0].float().cpu()  # (hops, M)
        rows = trace[f"{memory}:rows"][0, 0].cpu()  # (M,)
        by_sentence = torch.zeros(weights.shape[0], len(sentences))
        kept = (rows >= 0) & (rows < len(sentences))
        by_sentence[:, rows[kept]] = weights[:, kept]
        attention[block] = by_sentence
    return HopTrace(
        sentences=sentences,
        question=_text(task, data["question"][0]),
        answer=task.answer_word(int(data["answer"][0])),
        predicted=task.answer_word(int(logits[0, 0].argmax())),
        supporting=frozenset(int(i) for i in data["supporting"][0].nonzero().flatten()),
        attention=attention,
    )


def _columns(trace: HopTrace) -> list[tuple[str, torch.Tensor]]:
    columns = []
    for block, weights in trace.attention.items():
        for hop in range(weights.shape[0]):
            label = f"hop {hop + 1}" if len(trace.attention) == 1 else f"{block} {hop + 1}"
            columns.append((label, weights[hop]))
    return columns


def hop_table(trace: HopTrace) -> str:
    """The trace as a Markdown table: sentence, supporting mark, one column per hop."""
    columns = _columns(trace)
    lines = ["| # | story | support | " + " | ".join(label for label, _ in columns) + " |",
             "|---|---|---|" + "---|" * len(columns)]
    for i, sentence in enumerate(trace.sentences):
        cells = " | ".join(f"{float(weights[i]):.2f}" for _, weights in columns)
        lines.append(f"| {i + 1} | {sentence} | {'yes' if i in trace.supporting else ''} | {cells} |")
    lines.append("")
    lines.append(f"question: {trace.question}? answer: {trace.answer}; the model answers: {trace.predicted}")
    return "\n".join(lines)


def draw_hops(trace: HopTrace, path: str | Path, title: str | None = None) -> Path:
    """The trace as a heat map: sentences down, hops across, supporting facts starred."""
    columns = _columns(trace)
    image = torch.stack([weights for _, weights in columns], dim=1) if columns else torch.zeros(len(trace.sentences), 0)
    height = 1.6 + 0.28 * max(len(trace.sentences), 1)
    fig = Figure(figsize=(4.0 + 0.7 * len(columns) + 0.06 * max(map(len, trace.sentences), default=0), height),
                 layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(image.numpy(), aspect="auto", interpolation="nearest", cmap="Blues", vmin=0.0,
                   vmax=max(float(image.max()) if image.numel() else 1.0, 1e-6))
    labels = [f"{'* ' if i in trace.supporting else ''}{i + 1}. {s}" for i, s in enumerate(trace.sentences)]
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xticks(range(len(columns)), [label for label, _ in columns], fontsize=8)
    ax.xaxis.tick_top()
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            ax.text(j, i, f"{float(image[i, j]):.2f}", ha="center", va="center", fontsize=7,
                    color="white" if float(image[i, j]) > 0.6 * float(image.max()) else "black")
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    verdict = "right" if trace.predicted == trace.answer else "wrong"
    ax.set_xlabel(f"{trace.question}?  answer: {trace.answer}; model: {trace.predicted} ({verdict})  "
                  "(* supporting fact)", fontsize=8)
    fig.suptitle(title or "attention of each hop over the story", fontsize=10)
    return _save(fig, Path(path))
