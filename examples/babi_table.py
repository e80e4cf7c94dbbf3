"""Train a QA spec on each generated bAbI-style task (or on all jointly) for several seeds,
and print the test error per task as a Markdown table: the median over seeds, the tasks
passed (under 5% error, bAbI's criterion) and the CPU time.

    python examples/babi_table.py specs/memn2n_babi.cog                    # tasks 1 2 3 6 15 16, seeds 0 1 2
    python examples/babi_table.py specs/memn2n_babi.cog --joint            # one model for all six tasks
    python examples/babi_table.py specs/dmn_babi.cog --tasks 1 15 --seeds 0 --steps 500
    python examples/babi_table.py specs/dntm_babi_steps.cog --tasks 1 2    # stories read a sentence per step

Every run is an ordinary training run from the spec (its ``train:`` section, with the task
number, training size and seed replaced, its other task settings such as ``relabel`` kept),
kept in ``--out``/<model>/<task>_seed<S>; ``--jobs`` runs train side by side, one torch
thread each. A spec with ``keep_best`` is scored with the weights of its best
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

import cogdsl
from cogdsl.tasks import make_task
from cogdsl.tasks.babi import BABI_TASKS
from cogdsl.train import asks_for_best, config_from_spec, evaluate, train, use_best_weights

PASS = 0.05  # bAbI: a task is passed with under 5% test error


def run_one(spec_path: str, joint: bool, number: int, seed: int, steps: int | None, out: str,
            train_size: int | None = None) -> dict:
    """Train one run and return its test error per task (fractions) and its CPU seconds."""
    spec = cogdsl.load(spec_path)
    config = config_from_spec(spec, spec_path)
    size = train_size or config.task_params.get("train_size", 1000)
    # A spec that reads stories a sentence per step (babi_steps) keeps doing so.
    reading = "_steps" if config.task.endswith("_steps") else ""
    # The spec's other task settings (relabel) are kept; the task number and size are the table's.
    kept = {name: value for name, value in config.task_params.items() if name not in ("number", "train_size")}
    task_name, task_params = (f"babi_joint{reading}", {**kept, "train_size": size}) if joint else (
        f"babi{reading}", {**kept, "number": number, "train_size": size})
    config = dataclasses.replace(config, task=task_name, task_params=task_params, seed=seed,
                                 steps=steps or config.steps, threads=1, keep_best=asks_for_best(spec))
    started = time.process_time()
    with contextlib.redirect_stdout(sys.stderr):  # the runs' evaluation lines; stdout is the table
        folder = f"{'joint' if joint else number}_seed{seed}" + ("_10k" if size == 10000 else "")
        result = train(spec, config, Path(out) / spec.name / folder, force=True, progress=False)
    cpu = time.process_time() - started
    use_best_weights(result)  # keep_best: score the weights of the best validation
    task = make_task(task_name, **task_params)
    test = evaluate(result.model, task, sequences=10**9, split="test")
    if joint:
        errors = {n: 1 - test.metrics[f"task_{n}_accuracy"] for n in BABI_TASKS}
    else:
        errors = {number: 1 - test.perfect}
    return {"seed": seed, "errors": errors, "cpu_seconds": cpu, "steps": result.step}


def table(model: str, runs: list[dict], numbers: list[int], joint: bool) -> str:
    """The Markdown table: a row per task with the median error over seeds and each seed's error."""
    seeds = sorted({run["seed"] for run in runs})
    lines = [f"| task | median test error | {' | '.join(f'seed {s}' for s in seeds)} |",
             "|---|---|" + "---|" * len(seeds)]
    passed = 0
    for number in numbers:
        errors = {run["seed"]: run["errors"][number] for run in runs if number in run["errors"]}
        median = statistics.median(errors.values())
        passed += median < PASS
        cells = " | ".join(f"{100 * errors[s]:.1f}%" for s in seeds)
        lines.append(f"| {number} {BABI_TASKS[number].replace('_', ' ')} | {100 * median:.1f}% | {cells} |")
    cpu = sum(run["cpu_seconds"] for run in runs)
    how = "one joint model per seed" if joint else "one model per task and seed"
    lines.append("")
    lines.append(f"{model}: {passed} of {len(numbers)} tasks passed (median error under 5%); {how}, "
                 f"{len(runs)} runs, {cpu:,.0f} s of CPU time in all ({cpu / len(runs):,.0f} s per run)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("--tasks", type=int, nargs="+", default=list(BABI_TASKS), choices=list(BABI_TASKS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--joint", action="store_true", help="train one model on all six tasks per seed")
    parser.add_argument("--steps", type=int, default=None, help="override the spec's training steps")
    parser.add_argument("--train-size", type=int, default=None, choices=[1000, 10000],
                        help="training questions per task (default: the spec's)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained side by side")
    parser.add_argument("--out", default="runs/babi", help="where the runs go")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    model = cogdsl.load(args.spec).name
    jobs = [(args.spec, args.joint, number, seed, args.steps, args.out, args.train_size)
            for number in ([0] if args.joint else args.tasks) for seed in args.seeds]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(run_one, *zip(*jobs, strict=True)))
    else:
        runs = [run_one(*job) for job in jobs]
    numbers = list(BABI_TASKS) if args.joint else args.tasks
    print(table(model, runs, numbers, args.joint))
    if args.json:
        Path(args.json).write_text(json.dumps({"spec": args.spec, "joint": args.joint, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
