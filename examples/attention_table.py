"""Train attention specs and their baselines without attention for several seeds and print a
Markdown table: the fraction of test sequences answered perfectly and the errors per sequence
(for sequence-to-sequence tasks at the longest training length and at longer ones; for the
digit task, the right digits), as the median over seeds, with the CPU time; for a skip RNN,
also the median fraction of steps it skipped.

    python examples/attention_table.py specs/bahdanau_reverse.cog specs/encdec_reverse.cog
    python examples/attention_table.py specs/luong_sort.cog specs/encdec_sort.cog specs/transformer_sort.yaml
    python examples/attention_table.py specs/mlp_digits.cog specs/stn_digits.cog specs/ram_digits.cog
    python examples/attention_table.py specs/bahdanau_reverse.cog --seeds 0 --steps 300 --lengths 5
    python examples/attention_table.py specs/lstm_adding.cog specs/clockwork_adding.cog specs/skip_rnn_adding.cog
    python examples/attention_table.py specs/lstm_adding.cog --train-len 200 --lengths 200 500 --seeds 0
    python examples/attention_table.py specs/skip_rnn_adding.cog --train-len 500 --curriculum 10 10 --lengths 500
    python examples/attention_table.py specs/skip_rnn_adding.cog --curriculum 20 10 --steps 12000 --keep-best

Every run is an ordinary training run from the spec (its ``train:`` section, with the seed
replaced), kept in ``--out``/<model>/seed<S>; ``--jobs`` runs train side by side, one torch
thread each. Each evaluation scores 1,000 fresh sequences of one length; a spec with
``keep_best`` (or any spec under ``--keep-best``) is scored with the weights of its best
validation, not its last.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

import cogdsl
from cogdsl.tasks import make_task
from cogdsl.tasks.adding import AddingTask
from cogdsl.train import (
    EVAL_SEED,
    asks_for_best,
    config_from_spec,
    eval_length,
    evaluate,
    model_inputs,
    train,
    use_best_weights,
)
from cogdsl.viz.curves import evaluating


def run_one(spec_path: str, seed: int, steps: int | None, lengths: tuple[int, ...], out: str,
            train_length: int | None = None, curriculum: tuple[int, int] | None = None,
            keep_best: bool = False) -> dict:
    """Train one run; its perfect fraction and wrong symbols per sequence at each length, and its CPU seconds.

    ``train_length`` trains on sequences of that one length (the task's min_len and max_len);
    ``curriculum`` (every, start) draws lengths from [start, L_t], L_t rising by one every
    ``every`` steps from ``start`` to max_len (:mod:`cogdsl.training.curriculum`); ``keep_best`` keeps and scores
    the weights of the lowest validation loss, as the spec's ``keep_best: true`` does."""
    spec = cogdsl.load(spec_path)
    config = config_from_spec(spec, spec_path)
    task_params = (config.task_params if train_length is None
                   else {**config.task_params, "min_len": train_length, "max_len": train_length})
    schedule = {}
    if curriculum is not None:
        every, start = curriculum
        task_params = {**task_params, "min_len": start}
        schedule = {"curriculum_every": every, "curriculum_start": start}
    config = dataclasses.replace(config, seed=seed, steps=steps or config.steps, threads=1, task_params=task_params,
                                 keep_best=asks_for_best(spec) or keep_best, **schedule)
    started = time.process_time()
    with contextlib.redirect_stdout(sys.stderr):  # the runs' evaluation lines; stdout is the table
        result = train(spec, config, Path(out) / spec.name / f"seed{seed}", force=True, progress=False)
    cpu = time.process_time() - started
    use_best_weights(result)  # keep_best: score the weights of the best validation
    task = make_task(config.task, **config.task_params)
    scores = {}
    for length in lengths or ((eval_length(task),) if task.length_params else (None,)):  # None: the digits
        test = evaluate(result.model, task, length=length, sequences=1000)
        scores[str(length or "-")] = {"perfect": test.perfect, "wrong": test.bit_errors, "unit": test.unit,
                                      "skipped": skipped_updates(result.model, task, length)}
    return {"spec": spec.name, "task": config.task, "seed": seed, "scores": scores, "cpu_seconds": cpu,
            "steps": result.step}


@torch.no_grad()
def skipped_updates(model: torch.nn.Module, task: object, length: int | None) -> dict[str, float] | None:
    """How a model's skip_rnn controllers updated on 1,000 test sequences (None without one): ``all``, the
    fraction of steps they skipped, and on the adding problem ``read_both``, the fraction of sequences
    whose two marked steps were both updated at (by some unit), the sequences whose sum it could know."""
    batch = task.sample(1000, torch.Generator().manual_seed(EVAL_SEED), length=length)  # type: ignore[attr-defined]
    with evaluating(model):
        _, trace = model(model_inputs(model, batch.inputs), return_weights=True, steps=batch.steps)
    updates = [value for name, value in trace.items() if name.endswith(":updates")]
    if not updates:
        return None
    updated = torch.cat([u.reshape(u.shape[0], u.shape[1], -1) for u in updates], dim=-1)  # (B, T, units)
    fractions = {"all": 1 - float(updated.mean())}
    if isinstance(task, AddingTask):
        read = updated.amax(-1).gather(1, batch.info["markers"])  # (B, 2): 1 where a marked step was updated
        fractions["read_both"] = float(read.amin(-1).mean())
    return fractions


def table(runs: list[dict]) -> str:
    """A row per spec: for each length, the median perfect fraction and wrong symbols per sequence."""
    lengths = list(runs[0]["scores"])
    unit = runs[0]["scores"][lengths[0]]["unit"]
    lines = ["| spec | task | " + " | ".join(f"perfect at length {n} | {unit} at {n}" if n != "-" else
                                            f"perfect | {unit}" for n in lengths)
             + " | perfect, each seed | CPU s/run |",
             "|---|---|" + "---|---|" * len(lengths) + "---|---|"]
    for spec in dict.fromkeys(run["spec"] for run in runs):
        mine = sorted((run for run in runs if run["spec"] == spec), key=lambda run: run["seed"])
        cells = []
        for n in lengths:
            perfect = statistics.median(run["scores"][n]["perfect"] for run in mine)
            wrong = statistics.median(run["scores"][n]["wrong"] for run in mine)
            cells.append(f"{100 * perfect:.1f}% | {wrong:.2f}")
        each = ", ".join(f"{100 * run['scores'][lengths[0]]['perfect']:.1f}%" for run in mine)
        cpu = statistics.mean(run["cpu_seconds"] for run in mine)
        skipped = [run["scores"][lengths[0]].get("skipped") for run in mine]
        if all(fractions is not None for fractions in skipped):  # a skip RNN: how often it did not update
            each += f" (updates skipped: {100 * statistics.median(f['all'] for f in skipped):.0f}%"
            if all("read_both" in f for f in skipped):
                each += f"; both markers read: {100 * statistics.median(f['read_both'] for f in skipped):.1f}%"
            each += ")"
        lines.append(f"| `{spec}` | {mine[0]['task']} | {' | '.join(cells)} | {each} | {cpu:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="override the specs' training steps")
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help="test lengths (default: each task's max_len)")
    parser.add_argument("--train-len", type=int, default=None,
                        help="train on sequences of this one length (tasks with min_len and max_len)")
    parser.add_argument("--curriculum", type=int, nargs=2, default=None, metavar=("EVERY", "START"),
                        help="train on lengths from START up to a longest length that rises by one every EVERY "
                             "steps until the training length")
    parser.add_argument("--keep-best", action="store_true",
                        help="keep the weights of the lowest validation loss and score those (train: keep_best)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained side by side")
    parser.add_argument("--out", default="runs/attention", help="where the runs go")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    lengths = tuple(args.lengths or ())
    curriculum = tuple(args.curriculum) if args.curriculum else None
    jobs = [(spec, seed, args.steps, lengths, args.out, args.train_len, curriculum, args.keep_best)
            for spec in args.specs for seed in args.seeds]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(run_one, *zip(*jobs, strict=True)))
    else:
        runs = [run_one(*job) for job in jobs]
    print(table(runs))
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
