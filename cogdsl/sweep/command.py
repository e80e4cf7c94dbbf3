"""The ``cogdsl sweep`` command: its options into a plan, the plan's trials checked, then run."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from cogdsl.errors import UsageError
from cogdsl.sweep.plan import Plan, Score, lengths_from, load_plan, merged, parse_seeds
from cogdsl.sweep.settings import parse_set


def plan_from_args(args: Any) -> Plan:
    """The plan the command line gives: ``--plan FILE`` changed by the other options, or specs and options.

    Raises:
        UsageError: neither specs nor a plan, both, or an option with a bad value."""
    if args.plan and args.specs:
        raise UsageError("give spec files or --plan FILE, not both (a plan names its specs)")
    if not args.plan and not args.specs:
        raise UsageError("give the spec files to sweep, or a plan: --plan FILE")
    plan = load_plan(args.plan) if args.plan else Plan(specs=list(args.specs))
    given = [parse_set(text) for text in args.set or []]
    for index, one in enumerate(given):
        twice = next((p for other in given[:index] for p in one.paths if p in other.paths), None)
        if twice:
            raise UsageError(f"--set {twice} is given twice; give all its values in one, e.g. --set {twice}=8,16")
    plan = merged(plan, given)
    if args.seeds is not None:
        plan.seeds = parse_seeds(args.seeds)
    score = plan.score.__dict__.copy()
    if args.lengths:
        score["lengths"] = lengths_from(args.lengths)
    if args.sequences is not None:
        from cogdsl.training.evaluation import check_sequences

        check_sequences("--sequences", args.sequences)
        score["sequences"] = args.sequences
    if args.split is not None:
        score["split"] = args.split
    plan.score = Score(**score)
    if args.max_minutes is not None:
        if not (args.max_minutes > 0 and math.isfinite(args.max_minutes)):
            raise UsageError(f"--max-minutes must be a positive number of minutes, got {args.max_minutes:g}")
        plan.max_minutes = args.max_minutes
    if args.cpus_per_trial is not None:
        if not (args.cpus_per_trial > 0 and math.isfinite(args.cpus_per_trial)):
            raise UsageError(f"--cpus-per-trial must be a positive number, got {args.cpus_per_trial:g}")
        plan.cpus_per_trial = args.cpus_per_trial
    if args.gpus_per_trial is not None:
        if not (args.gpus_per_trial >= 0 and math.isfinite(args.gpus_per_trial)):
            raise UsageError(f"--gpus-per-trial must be a number >= 0 (0.25: four trials share a GPU), got "
                             f"{args.gpus_per_trial:g}")
        plan.gpus_per_trial = args.gpus_per_trial
    if args.no_tensorboard:
        plan.tensorboard = False
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    plan.check_table()
    return plan


def default_out(args: Any, plan: Plan) -> Path:
    """``--out``, or runs/sweeps/<the plan's name, or the first spec's>.

    Raises:
        UsageError: ``--out ''``."""
    if args.out is not None and not args.out.strip():
        raise UsageError("--out is empty; give the sweep's folder, or leave --out out for runs/sweeps/NAME")
    if args.out:
        return Path(args.out)
    name = Path(args.plan).stem if args.plan else Path(plan.specs[0]).stem
    return Path("runs") / "sweeps" / name


def sweep_command(args: Any) -> int:
    """``cogdsl sweep SPEC... | --plan FILE [--set PATH=V1,V2 ...] [--seeds N|S1,S2] [--out DIR] [--resume|--force]
    [--max-minutes M] [--cpus-per-trial C] [--gpus-per-trial G] [--jobs J] [--address ADDR [--no-ship-code]]
    [--dry-run]``:
    0 when every trial finished, 1 when one failed, 130 when interrupted."""
    from cogdsl.sweep.run import check_sweep_dir, import_tune, rescore_sweep, run_sweep
    from cogdsl.sweep.score import check_metrics

    plan = plan_from_args(args)
    out = default_out(args, plan)
    rescore = getattr(args, "rescore", False)
    if rescore:
        if args.resume or args.force:
            raise UsageError("--rescore scores the finished trials again and trains nothing: leave out --resume and "
                             "--force")
        check_sweep_dir(out, resume=True, force=False)
        if not out.is_dir():
            raise UsageError(f"--rescore: {out} is no sweep folder; run the sweep first")
    else:
        check_sweep_dir(out, resume=args.resume, force=args.force)
    trials = plan.trials()
    check_metrics(plan, trials)
    if rescore and not args.dry_run:
        return rescore_sweep(plan, trials, out)
    if args.dry_run:
        from cogdsl.sweep.trial import is_finished

        finished = [t for t in trials if is_finished(out / t.id)]
        for trial in trials:
            print(f"{out / trial.id}")
        before = (f"; {len(finished)} finished before, not run again with --resume: "
                  + ", ".join(t.id for t in finished[:3]) + (" ..." if len(finished) > 3 else "")) if finished else ""
        print(f"{len(trials)} trials (--dry-run: none run){before}", file=sys.stderr)
        return 0
    import_tune()  # before anything is written: without Ray, say so and stop
    return run_sweep(plan, trials, out, resume=args.resume, force=args.force, address=args.address, jobs=args.jobs,
                     ship_code=args.ship_code)
