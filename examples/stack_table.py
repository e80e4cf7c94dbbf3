"""Train next-symbol specs (a stack-augmented RNN and its LSTM baseline) on each of the stack-RNN
paper's tasks for several seeds and print, as a Markdown table, the fraction of test strings
whose whole predictable part is right at each test n: the median over seeds, each seed's at the
longest n, the seed with the lowest validation loss's (the paper picks its models on a
validation set), and the CPU time.

    python examples/stack_table.py specs/stack_anbn.cog specs/lstm_anbn.cog
    python examples/stack_table.py specs/stack_anbn.cog --tasks anbn anbncn --seeds 0 --steps 300 --lengths 10 40

Each spec's single input and output are resized to the task's alphabet and its task replaced
(the task's own training range, n up to 19); every run is an ordinary training run kept in
``--out``/<task>/<model>/seed<S>; ``--jobs`` runs train side by side, one torch thread each.
Each evaluation scores 1,000 fresh strings with every string's n fixed to the test n; a spec
with ``keep_best`` is scored with the weights of its best validation, not its last.
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

import yaml

import cogdsl
from cogdsl.language.emit import to_yaml
from cogdsl.language.spec import Spec
from cogdsl.tasks import make_task
from cogdsl.train import TrainResult, asks_for_best, config_from_spec, evaluate, train, use_best_weights
from cogdsl.training.checkpoints import read_checkpoint_meta

TASKS = ("anbn", "anbncn", "anbncndn", "anb2n", "anbmcnm", "mirror")


def for_task(spec: Spec, task_name: str) -> Spec:
    """``spec`` with its one input and one output sized to ``task_name``'s alphabet and that task to train on."""
    task = make_task(task_name)
    data = yaml.safe_load(to_yaml(spec))
    (input_name,) = data["inputs"]
    (output_name,) = data["outputs"]
    data["inputs"][input_name] = task.input_size
    output = data["outputs"][output_name]
    if isinstance(output, dict):
        output["size"] = task.output_size
    else:
        data["outputs"][output_name] = task.output_size
    data["train"]["task"] = {"name": task_name}
    data["model"] = f"{data['model']}_{task_name}"
    return cogdsl.loads(yaml.safe_dump(data, sort_keys=False), "yaml", f"{spec.file} ({task_name})")


def run_one(spec_path: str, task_name: str, seed: int, steps: int | None, lengths: tuple[int, ...],
            out: str) -> dict:
    """Train one run; its perfect fraction and wrong symbols per string at each test n, and its CPU seconds."""
    spec = for_task(cogdsl.load(spec_path), task_name)
    config = config_from_spec(spec, spec_path)
    config = dataclasses.replace(config, seed=seed, steps=steps or config.steps, threads=1,
                                 keep_best=asks_for_best(spec))
    started = time.process_time()
    with contextlib.redirect_stdout(sys.stderr):  # the runs' evaluation lines; stdout is the table
        result = train(spec, config, Path(out) / task_name / cogdsl.load(spec_path).name / f"seed{seed}",
                       force=True, progress=False)
    cpu = time.process_time() - started
    use_best_weights(result)  # keep_best: score the weights of the best validation
    task = make_task(task_name)
    scores = {}
    for n in lengths:
        test = evaluate(result.model, task, length=n, sequences=1000)
        scores[str(n)] = {"perfect": test.perfect, "wrong": test.bit_errors}
    step, valid_loss = scored_point(result)
    return {"spec": cogdsl.load(spec_path).name, "task": task_name, "seed": seed, "scores": scores,
            "cpu_seconds": cpu, "scored_step": step, "valid_loss": valid_loss}


def scored_point(result: TrainResult) -> tuple[int, float]:
    """The step whose weights were scored and their validation loss: the best validation's with
    keep_best, else the last step's."""
    if result.best is not None:
        meta = read_checkpoint_meta(result.best)
        return int(meta["step"]), float(meta["eval"]["loss"])
    assert result.eval is not None
    return result.step, result.eval.loss


def table(runs: list[dict], lengths: tuple[int, ...]) -> str:
    """A row per (task, spec): the median perfect fraction at each test n, each seed's at the last n,
    and, as the paper picks its models, the one whose validation loss (at the longest trained n) is lowest."""
    lines = ["| task | spec | " + " | ".join(f"perfect at n = {n}" for n in lengths) + " | at n = "
             f"{lengths[-1]}, each seed | at n = {lengths[-1]}, the seed of lowest validation loss | CPU s/run |",
             "|---|---|" + "---|" * len(lengths) + "---|---|---|"]
    for task in dict.fromkeys(run["task"] for run in runs):
        for spec in dict.fromkeys(run["spec"] for run in runs if run["task"] == task):
            mine = sorted((r for r in runs if r["task"] == task and r["spec"] == spec), key=lambda r: r["seed"])
            cells = [f"{100 * statistics.median(r['scores'][str(n)]['perfect'] for r in mine):.1f}%" for n in lengths]
            each = ", ".join(f"{100 * r['scores'][str(lengths[-1])]['perfect']:.1f}%" for r in mine)
            chosen = min(mine, key=lambda r: r["valid_loss"])
            selected = f"{100 * chosen['scores'][str(lengths[-1])]['perfect']:.1f}% (seed {chosen['seed']})"
            cpu = statistics.mean(r["cpu_seconds"] for r in mine)
            lines.append(f"| {task} | `{spec}` | {' | '.join(cells)} | {each} | {selected} | {cpu:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="override the specs' training steps")
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 40, 60], help="test n")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained side by side")
    parser.add_argument("--out", default="runs/stacks", help="where the runs go")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    lengths = tuple(args.lengths)
    jobs = [(spec, task, seed, args.steps, lengths, args.out)
            for task in args.tasks for spec in args.specs for seed in args.seeds]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(run_one, *zip(*jobs, strict=True)))
    else:
        runs = [run_one(*job) for job in jobs]
    print(table(runs, lengths))
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
