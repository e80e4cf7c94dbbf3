"""The ``cogdsl`` command: validate, fmt, compile, train, eval, trace, bench.

Every user error (a bad spec, a missing file, a wrong option, a bad checkpoint) prints
one clear message and exits with status 1; there are no tracebacks for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from cogdsl.errors import CogdslError, Diagnostic, Span, SpecError, UsageError
from cogdsl.pipeline import SPEC_SUFFIXES, check, compile_spec, read_spec_file


class _Parser(argparse.ArgumentParser):
    """argparse that exits with status 1 (not 2) on a usage error, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(1)


def _spec_files(paths: Sequence[str]) -> Iterator[Path]:
    """Spec files under the given paths; a missing path is yielded as is (and reported when read)."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file())
        else:
            yield path


def cmd_validate(args: argparse.Namespace) -> int:
    files = list(_spec_files(args.paths))
    if not files:
        raise UsageError(f"no spec files (.yaml, .yml, .cog) in {', '.join(args.paths)}")
    report: list[dict[str, object]] = []
    failed = 0
    for path in files:
        try:
            check(read_spec_file(path))
        except SpecError as err:
            failed += 1
            if args.format == "json":
                report += [d.to_json() for d in err.diagnostics]
            else:
                print(err.render())
        except UsageError:
            failed += 1
            diagnostic = Diagnostic("E008", "no such file or folder", Span(str(path), 0, 0))
            report.append(diagnostic.to_json())
            if args.format != "json":
                print(diagnostic.render())
    if args.format == "json":
        print(json.dumps({"files": len(files), "failed": failed, "diagnostics": report}, indent=2))
    else:
        errors = "no errors" if not failed else f"{failed} of {len(files)} files have errors"
        print(f"checked {len(files)} spec file{'s' if len(files) != 1 else ''}: {errors}", file=sys.stderr)
    return 1 if failed else 0


def cmd_fmt(args: argparse.Namespace) -> int:
    from cogdsl.emit import to_cog, to_yaml

    spec = read_spec_file(args.file)
    check(spec)
    text = to_cog(spec) if args.to == "cog" else to_yaml(spec)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; pass --force to overwrite it")
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from cogdsl.explain import explain

    model = compile_spec(args.spec)
    if args.explain:
        print(explain(model))
    else:
        total = sum(p.numel() for p in model.parameters())
        print(f"{args.spec}: ok, {model.spec.name} compiles to {total:,} parameters")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from cogdsl.train import train_command

    return train_command(args)


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from cogdsl.train import eval_command

    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    return eval_command(args)


def cmd_trace(args: argparse.Namespace) -> int:
    from cogdsl.trace import trace_command

    return trace_command(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from cogdsl.bench import bench_command

    return bench_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cogdsl", description="Validate, compile and train cognitive-architecture specs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("validate", help="check spec files or folders; exit 1 on any error")
    p.add_argument("paths", nargs="+", help="spec files or folders (searched for .yaml, .yml, .cog)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=cmd_validate)

    p = sub.add_parser("fmt", help="convert a spec between .cog and YAML without loss")
    p.add_argument("file")
    p.add_argument("--to", choices=("cog", "yaml"), required=True)
    p.add_argument("-o", "--output", help="write here instead of standard output")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    p.set_defaults(run=cmd_fmt)

    p = sub.add_parser("compile", help="compile a spec; --explain prints its interface layout and step order")
    p.add_argument("spec")
    p.add_argument("--explain", action="store_true")
    p.set_defaults(run=cmd_compile)

    p = sub.add_parser("train", help="train a spec on its task (the spec's train: section)")
    p.add_argument("spec")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--out", help="output folder (default runs/MODEL)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.add_argument("--max-minutes", type=float, help="stop after this much training time")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("eval", help="bit errors per sequence of a checkpoint at a chosen length")
    p.add_argument("spec")
    p.add_argument("checkpoint")
    p.add_argument("--len", dest="length", type=int, help="sequence length (default: the task's max_len)")
    p.add_argument("--sequences", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--plot", help="save a PNG of the head weightings over one sequence")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1)")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("trace", help="PNGs of a checkpoint's memory activity over one sequence: weightings, "
                       "and for a dnc_memory read modes and usage; for a QA model, each hop's attention "
                       "over one story, as a table and hops.png; for a sequence-to-sequence model, each "
                       "attention block's alignment matrix, as a table and alignment.png")
    p.add_argument("spec")
    p.add_argument("checkpoint", help="a .safetensors checkpoint, or a run folder (its latest checkpoint)")
    p.add_argument("--out", help="folder for weightings.png, modes.png, usage.png (default runs/MODEL/trace)")
    p.add_argument("--len", dest="length", type=int, help="sequence length (default: the task's max_len)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the sequence (default 1234)")
    p.add_argument("--question", type=int, default=0,
                   help="QA models: the test question whose hop attention is drawn (default 0)")
    p.add_argument("--force", action="store_true", help="overwrite PNGs that are already in --out")
    p.set_defaults(run=cmd_trace)

    p = sub.add_parser("bench", help="time the memory step, the DNC step and a training step: Triton, eager and "
                       "torch.compile")
    p.add_argument("spec", nargs="?", default="specs/ntm_copy.yaml", help="spec for the training step "
                   "(default specs/ntm_copy.yaml)")
    p.add_argument("--slots", type=int, nargs="+", default=[128, 4096, 65536], metavar="N",
                   help="memory slot counts of the memory step (default 128 4096 65536)")
    p.add_argument("--dnc-slots", type=int, nargs="+", default=[256, 1024], metavar="N",
                   help="memory slot counts of the DNC step (default 256 1024); its link matrix is B x N x N "
                   "floats, 256 MiB at the default batch 64 and N = 1024")
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--width", type=int, default=20, help="slot width of the memory step and the DNC step (default 20)")
    p.add_argument("--len", dest="length", type=int, help="training step's sequence length (default: the task's "
                   "max_len)")
    p.add_argument("--train-slots", type=int, nargs="+", metavar="N",
                   help="slot counts to set in the spec for the training step (default: the spec's own)")
    p.add_argument("--warmup", type=int, help="untimed calls before timing (default 5 on a GPU, 1 on a CPU)")
    p.add_argument("--repeats", type=int, help="timed calls; the median is reported (default 20 on a GPU; on a CPU "
                   "at least 3, more until 1 s has passed)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    p.add_argument("--only", choices=("memory-step", "dnc-step", "training-step", "additive-attention", "hop-read"),
                   help="time one section only")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1, as cogdsl train)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    p.set_defaults(run=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except SpecError as err:
        print(err.render(), file=sys.stderr)
        return 1
    except CogdslError as err:
        print(f"cogdsl {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
