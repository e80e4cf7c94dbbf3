"""The ``cogdsl`` command: validate, fmt, compile, train, eval, predict, trace, bench, sweep, table, lsp, schema,
graph.

Every user error (a bad spec, a missing file, a wrong option, a bad checkpoint or data file)
prints one clear message and exits with status 1; there are no tracebacks for bad input.
Ctrl-C exits with status 130, at any moment, start-up included. ``cogdsl --help`` and
``cogdsl --version`` answer without importing torch.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from cogdsl.errors import CogdslError, Diagnostic, Span, SpecError, SpecWarning, UsageError
from cogdsl.language.spec import SPEC_SUFFIXES
from cogdsl.training.compiled import COMPILE_HELP, COMPILE_MODES

DEVICE_HELP = ("where to run: auto (a CUDA GPU when torch sees one, else the CPU; the default), cpu, cuda or "
               "cuda:N; under torchrun each process takes the GPU of its local rank")
THREADS_HELP = "CPU threads for torch; 0 leaves torch's default (one per core)"


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


def _missing(path: Path) -> Diagnostic:
    return Diagnostic("E008", "no such file or folder", Span(str(path), 0, 0))


def _internal(path: Path, err: Exception) -> Diagnostic:
    """An unexpected exception while checking ``path``: cogdsl's fault, said so, with what went wrong
    (``COGDSL_DEBUG=1`` prints the traceback too)."""
    import os
    import traceback

    if os.environ.get("COGDSL_DEBUG"):
        traceback.print_exception(err, file=sys.stderr)
    reason = " ".join(str(err).split())[:200] or "no message"
    return Diagnostic("E900", f"internal error while checking this file: {type(err).__name__}: {reason}",
                      Span(str(path), 1, 1), "this is a bug in cogdsl, not in your spec: please report it with the "
                      "file (COGDSL_DEBUG=1 shows where it happened)")


@contextlib.contextmanager
def _spec_warnings() -> Iterator[list[Diagnostic]]:
    """The W-coded diagnostics (:class:`~cogdsl.errors.SpecWarning`) issued inside the block, each once however
    often the spec is checked, whatever filters are set (reporting them is validate's job); other warnings are
    filtered and shown as usual."""
    found: list[Diagnostic] = []
    show = warnings.showwarning

    def collect(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                file: TextIO | None = None, line: str | None = None) -> None:
        if isinstance(message, SpecWarning):
            if message.diagnostic not in found:
                found.append(message.diagnostic)
        else:
            show(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", SpecWarning)
        warnings.showwarning = collect
        yield found


def cmd_validate(args: argparse.Namespace) -> int:
    from cogdsl.compiler.pipeline import check, read_spec_file, validate_spec
    from cogdsl.compiler.task_sizes import task_of

    files = list(_spec_files(args.paths))
    if not files:
        raise UsageError(f"no spec files (.yaml, .yml, .cog) in {', '.join(args.paths)}")
    report: list[dict[str, object]] = []
    failed = unchecked = 0
    waiting: list[str] = []  # specs whose sizes come from the data they are trained on
    warned = 0  # files with warnings
    for path in files:
        try:
            if not path.exists():
                raise UsageError(f"{path}: no such file or folder")
            spec = read_spec_file(path)
            with _spec_warnings() as found:
                if args.no_data:
                    validate_spec(spec)
                task = task_of(spec) if args.no_data else None
                if task is not None and task.reads_files:
                    unchecked += 1
                elif check(spec)[1] is None:
                    waiting.append(str(path))
            if found:
                warned += 1
                report += [d.to_json() for d in found]
                if args.format != "json":
                    print("\n".join(d.render(spec.source) for d in found))
        except SpecError as err:
            failed += 1
            if args.format == "json":
                report += [d.to_json() for d in err.diagnostics]
            else:
                print(err.render())
        except UsageError:
            failed += 1
            diagnostic = _missing(path)
            report.append(diagnostic.to_json())
            if args.format != "json":
                print(diagnostic.render())
        except Exception as err:  # a bug of cogdsl's: reported for this file, and the next files are checked
            failed += 1
            diagnostic = _internal(path, err)
            report.append(diagnostic.to_json())
            if args.format != "json":
                print(diagnostic.render())
    if args.strict:
        failed += warned
    if args.format == "json":
        summary: dict[str, object] = {"files": len(files), "failed": failed, "diagnostics": report}
        if warned:  # only then, as below
            summary["warned"] = warned
        if args.no_data:
            summary["sizes_not_checked"] = unchecked
        if waiting:  # only then: the report of ordinary specs keeps its keys
            summary["sizes_left_to_data"] = waiting
        print(json.dumps(summary, indent=2))
    else:
        errors = "no errors" if not failed else f"{failed} of {len(files)} files have errors"
        if args.strict and failed:
            errors = f"{failed} of {len(files)} files have errors or warnings (--strict)"
        elif warned:
            errors += f", {warned} with warnings"
        note = (f"; {unchecked} train on data files, whose sizes were not checked (--no-data)" if unchecked else "")
        if waiting:
            shown = ", ".join(waiting[:3]) + (f" and {len(waiting) - 3} more" if len(waiting) > 3 else "")
            note += (f"; sizes not checked in {shown}: left out, with no task to give them, they come from the "
                     "data trained on (cogdsl.train(spec, data=...)); cogdsl compile needs them written")
        print(f"checked {len(files)} spec file{'s' if len(files) != 1 else ''}: {errors}{note}", file=sys.stderr)
    return 1 if failed else 0


def cmd_fmt(args: argparse.Namespace) -> int:
    from cogdsl.compiler.pipeline import read_spec_file, validate_spec
    from cogdsl.language.emit import to_cog, to_yaml

    spec = read_spec_file(args.file)
    validate_spec(spec)  # no data read: a spec's text converts without its task's files
    text = to_cog(spec) if args.to == "cog" else to_yaml(spec)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    if out.is_dir():
        raise UsageError(f"{out} is a folder; give a file name to write")
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; pass --force to overwrite it")
    from cogdsl.training.checkpoints import atomic_write_text

    atomic_write_text(out, text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from cogdsl.compiler.explain import explain
    from cogdsl.compiler.pipeline import compile_spec

    model = compile_spec(args.spec)
    if args.explain:
        print(explain(model))
    else:
        total = sum(p.numel() for p in model.parameters())
        print(f"{args.spec}: ok, {model.spec.name} compiles to {total:,} parameters")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from cogdsl.training.loop import train_command

    return train_command(args)


def cmd_eval(args: argparse.Namespace) -> int:
    from cogdsl.training.loop import eval_command

    return eval_command(args)


def cmd_predict(args: argparse.Namespace) -> int:
    from cogdsl.training.predict import predict_command

    return predict_command(args)


def cmd_trace(args: argparse.Namespace) -> int:
    from cogdsl.viz.trace import trace_command

    return trace_command(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from cogdsl.bench import bench_command

    return bench_command(args)


def cmd_sweep(args: argparse.Namespace) -> int:
    from cogdsl.sweep.command import sweep_command

    return sweep_command(args)


def cmd_table(args: argparse.Namespace) -> int:
    from cogdsl.sweep.table import table_command

    return table_command(args)


def cmd_lsp(args: argparse.Namespace) -> int:
    try:
        import lsprotocol  # noqa: F401
        import pygls  # noqa: F401
    except ImportError:
        raise UsageError("the language server needs pygls, which is not installed: pip install 'cogdsl[lsp]'") from None
    from cogdsl.editor.server import serve

    serve()
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from cogdsl.editor.schema import schema_text

    text = schema_text()
    if args.output is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    if out.is_dir():
        raise UsageError(f"{out} is a folder; give a file name to write")
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; pass --force to overwrite it")
    from cogdsl.training.checkpoints import atomic_write_text

    atomic_write_text(out, text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from cogdsl.viz.graph_picture import graph_command

    return graph_command(args)


def _version() -> str:
    from cogdsl import __version__

    return f"cogdsl {__version__}"


def build_parser() -> argparse.ArgumentParser:
    """The ``cogdsl`` command's parser (its subcommands' parsers by name in ``.commands``)."""
    parser = _Parser(prog="cogdsl", description="Validate, compile and train cognitive-architecture specs.")
    parser.add_argument("--version", action="version", version=_version(), help="print cogdsl's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    commands: dict[str, argparse.ArgumentParser] = {}

    p = commands["validate"] = sub.add_parser("validate", help="check spec files or folders; exit 1 on any error")
    p.add_argument("paths", nargs="+", help="spec files or folders (searched for .yaml, .yml, .cog)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="text for people (default) or json "
                   "for tools")
    p.add_argument("--no-data", action="store_true", help="do not read the data files a spec's task names (bAbI "
                   "files, sequence files); the sizes they give are then not checked")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too (W codes: a block no output "
                   "depends on, a shift wider than its memory)")
    p.set_defaults(run=cmd_validate)

    p = commands["fmt"] = sub.add_parser("fmt", help="convert a spec between .cog and YAML without loss")
    p.add_argument("file", help="the spec to convert")
    p.add_argument("--to", choices=("cog", "yaml"), required=True, help="the form to write")
    p.add_argument("-o", "--output", help="write here instead of standard output")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    p.set_defaults(run=cmd_fmt)

    p = commands["compile"] = sub.add_parser("compile", help="compile a spec; --explain prints its interface "
                                             "layout and step order")
    p.add_argument("spec", help="the spec file")
    p.add_argument("--explain", action="store_true", help="print the step order, each controller's interface "
                   "layout and the parameters per block")
    p.set_defaults(run=cmd_compile)

    p = commands["train"] = sub.add_parser("train", help="train a spec on its task (the spec's train: section); "
                                           "torchrun --nproc-per-node K -m cogdsl train SPEC for K processes")
    p.add_argument("spec", help="the spec file")
    p.add_argument("--steps", type=int, help="training steps (overrides the spec's)")
    p.add_argument("--batch", type=int, help="sequences per step, over all processes (overrides the spec's)")
    p.add_argument("--lr", type=float, help="learning rate (overrides the spec's optimizer's)")
    p.add_argument("--seed", type=int, help="seed of the parameters and the data (overrides the spec's)")
    p.add_argument("--set", action="append", metavar="PATH=VALUE", help="set a field of the spec by its dotted path "
                   "(as cogdsl fmt --to yaml writes it), e.g. blocks.mem.slots=64 or train.task.number=2; repeat "
                   "for several")
    p.add_argument("--threads", type=int, help=THREADS_HELP + " (default: the spec's threads, 1)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES, metavar="MODE", help=COMPILE_HELP)
    p.add_argument("--out", help="the run folder (default runs/MODEL)")
    p.add_argument("--resume", action="store_true", help="continue from the newest whole checkpoint in --out")
    p.add_argument("--auto-resume", action="store_true", help="continue the run in --out if it has a checkpoint, "
                   "else start it: one command for a job that a cluster may requeue")
    p.add_argument("--force", action="store_true", help="replace an existing run folder")
    p.add_argument("--max-minutes", type=float, help="stop after this much training time (and checkpoint)")
    p.add_argument("--keep-best", action="store_true", help="also keep checkpoints/best.safetensors, the weights of "
                   "the evaluation with the lowest validation loss (the train section's keep_best)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard event files in the run folder")
    p.add_argument("--detect-anomaly", action="store_true", help="when a step's loss or gradient is not finite, name "
                   "the block where the NaN or inf started (slower: for debugging)")
    p.set_defaults(run=cmd_train)

    p = commands["eval"] = sub.add_parser("eval", help="errors of a trained checkpoint on fresh sequences or the "
                                          "test split (the error rate, for questions)")
    p.add_argument("spec", help="the spec the checkpoint was trained from")
    p.add_argument("checkpoint", help="a .safetensors checkpoint, or a run folder (its newest)")
    p.add_argument("--len", dest="length", type=int, help="sequence length (default: the task's max_len; "
                   "docs/tasks.md says what it means for each task)")
    p.add_argument("--sequences", type=int, default=1000, help="how many sequences or questions (default 1000)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the fresh sequences (default 1234)")
    p.add_argument("--split", choices=("test", "valid"), default="test", help="tasks with data splits (bAbI, your "
                   "own files): the split scored (default test)")
    p.add_argument("--plot", help="save a PNG of the head weightings over one sequence")
    p.add_argument("--force", action="store_true", help="overwrite --plot if it exists")
    p.add_argument("--threads", type=int, default=1, help=THREADS_HELP + " (default 1)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES, metavar="MODE", help=COMPILE_HELP)
    p.set_defaults(run=cmd_eval)

    p = commands["predict"] = sub.add_parser("predict", help="run a trained model on new data: sequence files "
                                             "(.npz, .safetensors) in and out, or bAbI text in and one answer per "
                                             "question out")
    p.add_argument("spec", help="the spec the checkpoint was trained from")
    p.add_argument("checkpoint", help="a .safetensors checkpoint, or a run folder (its newest)")
    p.add_argument("--input", required=True, help="the data: a .npz or .safetensors file with 'inputs' (N, T, I) "
                   "(and 'mask' or 'lengths'), or a bAbI .txt file")
    p.add_argument("--output", required=True, help="where to write: .npz or .safetensors ('outputs', N x T x O) for "
                   "sequences, a text file (one answer per line) for bAbI")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    p.add_argument("--batch", type=int, default=256, help="sequences or questions per forward pass (default 256)")
    p.add_argument("--threads", type=int, default=1, help=THREADS_HELP + " (default 1)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES, metavar="MODE", help=COMPILE_HELP)
    p.set_defaults(run=cmd_predict)

    p = commands["trace"] = sub.add_parser(
        "trace", help="PNGs of a checkpoint's memory activity over one sequence: weightings, and for a dnc_memory "
        "read modes and usage; for a QA model, each hop's attention over one story, as a table and hops.png; for a "
        "sequence-to-sequence model, each attention block's alignment matrix, as a table and alignment.png")
    p.add_argument("spec", help="the spec the checkpoint was trained from")
    p.add_argument("checkpoint", help="a .safetensors checkpoint, or a run folder (its newest)")
    p.add_argument("--out", help="folder for the PNGs (default: trace/ in the run folder of the checkpoint)")
    p.add_argument("--len", dest="length", type=int, help="sequence length (default: the task's max_len)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the sequence (default 1234)")
    p.add_argument("--question", type=int, default=0,
                   help="QA models: the test question whose hop attention is drawn (default 0)")
    p.add_argument("--force", action="store_true", help="overwrite PNGs that are already in --out")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES, metavar="MODE", help=COMPILE_HELP)
    p.set_defaults(run=cmd_trace)

    p = commands["bench"] = sub.add_parser("bench", help="time the memory step, the DNC step and a training step: "
                                           "Triton, eager and torch.compile")
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
    p.add_argument("--launches", nargs="*", metavar="SPEC",
                   help="instead of timing, count the kernels one time step launches (forward, and "
                   "forward+backward) in eager PyTorch and on the Triton kernels, for each SPEC given or every "
                   "spec in specs/; counted on any device")
    p.add_argument("--compile", action="store_true", help="with --launches: count the compiled step too "
                   "(torch.compile, on each backend; tens of seconds per spec on a CPU)")
    p.set_defaults(run=cmd_bench)

    p = commands["sweep"] = sub.add_parser(
        "sweep", help="train specs over seeds and grids of settings on Ray Tune (this machine's cores and GPUs, or "
        "a Ray cluster), one run folder per trial under one sweep folder; docs/sweeps.md")
    p.add_argument("specs", nargs="*", metavar="SPEC", help="the spec files to sweep (or --plan)")
    p.add_argument("--plan", metavar="FILE", help="a plan file (YAML): specs, settings, seeds, scoring and table "
                   "(sweeps/ has one per results table); the other options change it")
    p.add_argument("--set", action="append", metavar="PATH=V1,V2", help="a dotted path of the spec and the values "
                   "to try (every combination of several --set is tried), e.g. train.optimizer.lr=1e-3,3e-4 or "
                   "blocks.mem.slots=64,128 or train.task.number=1,2,3")
    p.add_argument("--seeds", metavar="N|S1,S2", help="N seeds (0 .. N-1), or a list such as 3,4,5 (7, for seed 7 "
                   "alone); default: each spec's own seed")
    p.add_argument("--out", help="the sweep folder (default runs/sweeps/NAME, NAME the plan's or the first spec's)")
    p.add_argument("--resume", action="store_true", help="continue the sweep in --out: finished trials are not run "
                   "again, trials killed part way continue from their newest checkpoint")
    p.add_argument("--force", action="store_true", help="replace an existing sweep folder")
    p.add_argument("--rescore", action="store_true", help="score the finished trials in --out again, with the "
                   "plan's scoring as it is now (--lengths, --sequences), without training: on this machine, no "
                   "Ray; the other trials are left as they are")
    p.add_argument("--max-minutes", type=float, help="stop each trial's training after this much time (and "
                   "checkpoint and score it; it is marked as stopped by time)")
    p.add_argument("--lengths", nargs="+", metavar="L", help="score each trial at these test lengths (default: the "
                   "plan's, or the task's longest training length)")
    p.add_argument("--sequences", type=int, help="fresh test sequences per length when scoring (default: the "
                   "plan's, or 1000)")
    p.add_argument("--split", choices=("test", "valid"), help="the split each trial is scored on (default: the "
                   "plan's, or test; valid for your own data without a test file)")
    p.add_argument("--cpus-per-trial", type=float, help="CPU cores Ray gives each trial, and its torch threads "
                   "(default 1)")
    p.add_argument("--gpus-per-trial", type=float, help="GPUs each trial takes where the cluster has GPUs (default "
                   "1; a fraction such as 0.25 lets small models share one)")
    p.add_argument("--jobs", type=int, help="at most this many trials at once (default: as many as the cores and "
                   "GPUs allow)")
    p.add_argument("--address", help="the Ray cluster to run on (e.g. HEAD:6379, or auto); default: a Ray instance "
                   "on this machine")
    p.add_argument("--ship-code", action=argparse.BooleanOptionalAction, default=None,
                   help="the workers run this cogdsl, sent with the sweep, not the one installed on their machines "
                   "(default: on a cluster, --address)")
    p.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard event files in the trials' run "
                   "folders (the pictures they hold take seconds per evaluation)")
    p.add_argument("--dry-run", action="store_true", help="check the plan and list the trials' folders; run none")
    p.set_defaults(run=cmd_sweep)

    p = commands["table"] = sub.add_parser("table", help="a sweep's results as Markdown (and CSV): the median over "
                                           "seeds per spec and setting, each seed's value, the CPU or GPU time")
    p.add_argument("sweep", help="the sweep folder (cogdsl sweep --out)")
    p.add_argument("--metric", action="append", metavar="NAME", help="a column: perfect, error, wrong or loss (@L "
                   "for a test length: perfect@60), valid_loss, valid_errors, reached ... (docs/sweeps.md); "
                   "repeat for several (default: the plan's)")
    p.add_argument("--each", metavar="NAME", help="the metric shown for each seed (default: the first column)")
    p.add_argument("--pick", metavar="NAME", help="also show the seed whose NAME is best: lowest (e.g. valid_loss: "
                   "the seed picked on validation), or highest for perfect, an accuracy or BLEU")
    rows = p.add_mutually_exclusive_group()
    rows.add_argument("--trials", action="store_true", help="one row per trial instead of the median over seeds")
    rows.add_argument("--medians", action="store_true", help="the median over seeds, where the plan asks for one "
                      "row per trial (table: trials: true)")
    p.add_argument("--markdown", metavar="FILE", help="also write the Markdown table here")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV here")
    p.add_argument("--force", action="store_true", help="overwrite --markdown and --csv files that exist")
    p.set_defaults(run=cmd_table)

    p = commands["lsp"] = sub.add_parser("lsp", help="the language server (LSP, over standard input and output) for "
                                         ".cog and YAML specs: diagnostics, hover, completion, definitions, "
                                         "formatting; needs pip install 'cogdsl[lsp]' (docs/editor.md)")
    p.set_defaults(run=cmd_lsp)

    p = commands["schema"] = sub.add_parser("schema", help="write the JSON Schema of YAML specs (generated from the "
                                            "registries) for the YAML language server")
    p.add_argument("-o", "--output", help="write here instead of standard output")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    p.set_defaults(run=cmd_schema)

    p = commands["graph"] = sub.add_parser("graph", help="draw a spec's graph: blocks by family, wires, heads with "
                                           "their memory; DOT, SVG or PNG")
    p.add_argument("spec", help="the spec file")
    p.add_argument("-o", "--output", help="the picture's file: .dot, .svg or .png (default: DOT on standard output)")
    p.add_argument("--format", choices=("dot", "svg", "png"), help="the format (default: from the --output suffix)")
    p.add_argument("--sizes", action="store_true", help="label each wire with the size it carries (sizes left to the "
                   "task are the task's)")
    p.add_argument("--renderer", choices=("auto", "graphviz", "matplotlib"), default="auto",
                   help="who draws SVG and PNG: Graphviz's dot, matplotlib, or auto (dot where installed; default)")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    p.set_defaults(run=cmd_graph)
    for name in ("validate", "compile", "train", "eval", "predict", "trace"):
        commands[name].add_argument(
            "--max-memory", metavar="SIZE", help="the memory a model may hold, parameters and the state of a "
            "training batch (default $COGDSL_MAX_MEMORY or 16GiB): a spec over it is refused (E502); e.g. 80GiB")
    parser.commands = commands  # type: ignore[attr-defined]
    return parser


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # the subcommand's own usage, which lists the options it does take
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")  # type: ignore[attr-defined]
    return args


def _unexpected(command: str, err: Exception) -> int:
    """Report an exception no check foresaw: out of memory in words, anything else as a bug of cogdsl's
    (``COGDSL_DEBUG=1`` prints the traceback too). Exit status 1."""
    if os.environ.get("COGDSL_DEBUG"):
        traceback.print_exception(err)
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, (MemoryError, torch_out_of_memory())) or "can't allocate memory" in text:
        print(f"cogdsl {command}: error: out of memory ({type(err).__name__}: {text[:300]})\n"
              "  hint: a smaller batch (--batch) or model, or another device; `cogdsl compile SPEC --explain` "
              "prints what the model holds", file=sys.stderr)
    else:
        print(f"cogdsl {command}: internal error: {type(err).__name__}: {text[:300]}\n"
              "  hint: this is a bug in cogdsl: please report it with the command and the spec "
              "(COGDSL_DEBUG=1 prints the traceback)", file=sys.stderr)
    return 1


def torch_out_of_memory() -> type[BaseException]:
    """torch's out-of-memory exception (CUDA and other accelerators), imported only when needed."""
    import torch

    return torch.OutOfMemoryError


@contextlib.contextmanager
def _memory_limit(args: argparse.Namespace) -> Iterator[None]:
    """``--max-memory`` as ``$COGDSL_MAX_MEMORY`` while the command runs (the workers torchrun starts see it
    too); the variable is as it was afterwards."""
    from cogdsl.compiler.footprint import ENVIRONMENT, parse_bytes

    given = getattr(args, "max_memory", None)
    before = os.environ.get(ENVIRONMENT)
    if given is not None:
        os.environ[ENVIRONMENT] = str(parse_bytes(given))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENVIRONMENT, None)
        else:
            os.environ[ENVIRONMENT] = before


def _show_warning(shown: set[str], show: Callable[..., None], message: Warning | str, category: type[Warning],
                  filename: str, lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
    """A spec's warning as the diagnostic it is (located, with its source line and hint), not as the line of
    cogdsl that issued it, and once however often the spec is compiled (``shown``: those printed so far);
    any other warning as ``show``, the function that showed warnings before, shows it."""
    if isinstance(message, SpecWarning):
        if str(message) not in shown:
            shown.add(str(message))
            print(message, file=file or sys.stderr)
    else:
        show(message, category, filename, lineno, file, line)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parse(argv)
        try:
            with _memory_limit(args), warnings.catch_warnings():
                warnings.showwarning = functools.partial(_show_warning, set(), warnings.showwarning)
                return int(args.run(args))
        except SpecWarning as err:  # -W error::cogdsl.errors.SpecWarning (or PYTHONWARNINGS) made it an error
            print(err, file=sys.stderr)
            return 1
        except SpecError as err:
            print(err.render(), file=sys.stderr)
            return 1
        except CogdslError as err:
            print(f"cogdsl {args.command}: error: {err}", file=sys.stderr)
            return 1
        except Exception as err:  # the last guard: a message and an exit status, not a traceback
            return _unexpected(args.command, err)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
