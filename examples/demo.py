"""``make demo``: train the NTM copy spec on the CPU for a few minutes, then look at what it learned.

It runs, in this process, the two commands you would type:

    cogdsl train specs/ntm_copy.yaml --steps 3000 --threads 1 --device cpu --max-minutes 4 --out runs/demo \
                 --force --keep-best
    cogdsl eval specs/ntm_copy.yaml runs/demo/checkpoints/best.safetensors --len 40 \
                --plot runs/demo/weightings.png

The first shows a progress bar with the loss and the bit errors per sequence falling and an
evaluation line every 500 steps; it stops at 3000 steps or after 4 minutes, whichever comes
first, and keeps the weights of its best evaluation (NTM training is noisy: an evaluation can
jump back up for a while before it settles). The second tests those weights on sequences twice
as long as any it was trained on (length 40, as in figure 4 of Graves et al. 2014) and draws
where its read and write heads look, slot by slot and step by step (like the paper's figure 6).

runs/demo belongs to the demo: each run replaces it. To continue training it:

    cogdsl train specs/ntm_copy.yaml --out runs/demo --resume --steps 10000
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from cogdsl.cli.command import main as cogdsl  # noqa: E402 - after the path is set


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the NTM copy spec for a few minutes and plot its heads.")
    parser.add_argument("--spec", default=str(ROOT / "specs" / "ntm_copy.yaml"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "demo"))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--minutes", type=float, default=4.0, help="time budget for training")
    parser.add_argument("--threads", type=int, default=1, help="small recurrent models step fastest on one thread")
    parser.add_argument("--eval-len", type=int, default=40)
    parser.add_argument("--eval-sequences", type=int, default=1000)
    args = parser.parse_args(argv)

    spec, out = _shown(Path(args.spec)), Path(args.out)
    plot = out / "weightings.png"
    train = ["train", spec, "--steps", str(args.steps), "--threads", str(args.threads), "--device", "cpu",
             "--max-minutes", f"{args.minutes:g}", "--out", _shown(out), "--force", "--keep-best"]
    print(f"Training the Neural Turing Machine of {spec} on the copy task, on the CPU, for at most "
          f"{args.minutes:g} minutes.\n$ cogdsl {' '.join(train)}", flush=True)
    code = cogdsl(train)
    if code != 0:
        return code
    # NTM training is noisy (an evaluation can jump back up for a while): test the weights of the best one.
    best = out / "checkpoints" / "best.safetensors"
    evaluate = ["eval", spec, _shown(best if best.exists() else out), "--len", str(args.eval_len), "--sequences",
                str(args.eval_sequences), "--plot", _shown(plot), "--device", "cpu"]
    print(f"\nTesting its best evaluation's weights on sequences of length {args.eval_len}:\n"
          f"$ cogdsl {' '.join(evaluate)}", flush=True)
    code = cogdsl(evaluate)
    if code != 0:
        return code
    print(f"\nFiles in {_shown(out)}:")
    for name, what in (("learning_curve.png", "loss and bit errors per sequence against sequences seen"),
                       ("weightings.png", f"inputs, outputs and head weightings at length {args.eval_len}"),
                       ("log.csv", "the training log"),
                       ("checkpoints/", "safetensors checkpoints (cogdsl eval and --resume read them)"),
                       ("spec.yaml", "the spec exactly as trained")):
        print(f"  {_shown(out / name):<34} {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
