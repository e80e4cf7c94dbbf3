"""Train one spec on several seeds and report, as a Markdown table, how many runs reach the result, how many
relapse on the way, and how many meet a non-finite step.

    python examples/seed_study.py specs/ntm_copy.yaml --seeds 0 1 2 3 4 5 6 7 8 9 --jobs 2
    python examples/seed_study.py specs/dnc_repeat_copy.cog --seeds 0 1 2 3 4 --target 1 --max-minutes 10
    make seed-study          # both of the above, the tables in docs/results/

Every run is an ordinary ``cogdsl train`` of the spec (its ``train:`` section, seed replaced, one torch
thread), kept in ``--out``/seed<S>; ``--jobs`` runs that many side by side. Each run is read back from its
``log.csv``: its evaluations (bit errors per sequence on fresh sequences, every ``eval_every`` steps) and its
skipped (non-finite) steps. In the table:

- *reached*: the first evaluation under ``--target`` bit errors per sequence, and its step;
- *relapses*: evaluations that were more than ``--relapse`` bits worse than the best one before them, after
  the run had once been under ``5 x target``: a model that had learned and then lost it;
- *best* and *last*: the best and the last evaluation; with keep_best (the default) the best one's weights
  are the ones ``checkpoints/best.safetensors`` holds;
- *skipped*: steps whose loss or gradient was not finite (never applied to the weights).

On a cluster, run the same ``cogdsl train ... --seed S`` commands under your scheduler (Slurm, Ray) and point
``--read`` at the folder: the table is made from the run folders alone.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    """One seed's run as its log tells it."""

    seed: int
    steps: int
    seconds: float
    evaluations: list[tuple[int, float]]  # (step, eval bit errors per sequence)
    skipped: int
    exit_code: int

    def reached(self, target: float) -> int | None:
        """The step of the first evaluation under ``target``, or None."""
        return next((step for step, errors in self.evaluations if errors < target), None)

    def relapses(self, target: float, jump: float) -> list[int]:
        """Steps of the evaluations more than ``jump`` worse than the best before them, once under 5 x target."""
        best, learned, steps = math.inf, False, []
        for step, errors in self.evaluations:
            if learned and errors > best + jump:
                steps.append(step)
            best = min(best, errors)
            learned = learned or errors < 5 * target
        return steps


def read_run(folder: Path, seed: int, exit_code: int = 0) -> Run:
    """A run folder's evaluations, steps, seconds and skipped steps, from its log.csv."""
    evaluations: list[tuple[int, float]] = []
    steps, seconds, skipped = 0, 0.0, 0
    with (folder / "log.csv").open(newline="") as stream:
        for row in csv.DictReader(stream):
            steps, seconds = int(row["step"]), float(row["seconds"] or 0)
            skipped = int(float(row.get("skipped_steps") or 0))
            if row.get("eval_bit_errors"):
                evaluations.append((steps, float(row["eval_bit_errors"])))
    return Run(seed, steps, seconds, evaluations, skipped, exit_code)


def train_seed(spec: str, seed: int, out: Path, extra: list[str]) -> Run:
    """``cogdsl train`` of ``spec`` with ``seed`` into ``out``/seed<S>, one thread, in its own process."""
    folder = out / f"seed{seed}"
    command = [sys.executable, "-m", "cogdsl", "train", spec, "--seed", str(seed), "--out", str(folder), "--force",
               "--threads", "1", "--device", "cpu", "--no-progress", "--no-tensorboard", *extra]
    with (out / f"seed{seed}.txt").open("w") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}).returncode
    return read_run(folder, seed, code)


def table(spec: str, runs: list[Run], target: float, jump: float) -> str:
    """The Markdown table of ``runs`` and a summary line."""
    lines = [f"| seed | reached < {target:g} bit (step) | relapses (steps) | best (step) | last (step) | "
             "skipped steps | minutes |", "|---|---|---|---|---|---|---|"]
    for run in sorted(runs, key=lambda r: r.seed):
        reached = run.reached(target)
        relapses = run.relapses(target, jump)
        best_step, best = min(run.evaluations, key=lambda e: e[1], default=(0, math.nan))
        last_step, last = run.evaluations[-1] if run.evaluations else (0, math.nan)
        where = f" ({', '.join(map(str, relapses))})" if relapses else ""
        lines.append(f"| {run.seed} | {'no' if reached is None else f'yes ({reached})'} | {len(relapses)}{where} | "
                     f"{best:.2f} ({best_step}) | {last:.2f} ({last_step}) | {run.skipped} | "
                     f"{run.seconds / 60:.1f} |")
    reached = sum(run.reached(target) is not None for run in runs)
    relapsed = sum(bool(run.relapses(target, jump)) for run in runs)
    nonfinite = sum(run.skipped > 0 for run in runs)
    lines += ["", f"{spec}: {reached} of {len(runs)} seeds reached under {target:g} bit errors per sequence; "
                  f"{relapsed} relapsed (an evaluation more than {jump:g} bits worse than an earlier best); "
                  f"{nonfinite} met a non-finite step."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1)))
    parser.add_argument("--out", type=Path, help="folder of the runs (default runs/seeds/<spec name>)")
    parser.add_argument("--target", type=float, default=1.0, help="bit errors per sequence that count as learned")
    parser.add_argument("--relapse", type=float, default=10.0, help="bits worse than the best so far that count "
                        "as a relapse (default 10)")
    parser.add_argument("--steps", type=int, help="training steps (default: the spec's)")
    parser.add_argument("--max-minutes", type=float, help="wall-time budget of each run")
    parser.add_argument("--read", action="store_true", help="make the table from the run folders already there")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)

    out = args.out or ROOT / "runs" / "seeds" / Path(args.spec).stem
    out.mkdir(parents=True, exist_ok=True)
    extra = [*(["--steps", str(args.steps)] if args.steps else []),
             *(["--max-minutes", f"{args.max_minutes:g}"] if args.max_minutes else [])]
    started = time.time()
    if args.read:
        runs = [read_run(out / f"seed{seed}", seed) for seed in args.seeds]
    else:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            runs = list(pool.map(lambda seed: train_seed(args.spec, seed, out, extra), args.seeds))
    text = table(args.spec, runs, args.target, args.relapse)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n")
    print(f"\n{len(runs)} runs in {(time.time() - started) / 60:.1f} minutes; runs in {out}", file=sys.stderr)
    return 0 if all(run.exit_code == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
