"""Training and evaluation: the loop behind ``cogdsl train`` and ``cogdsl eval``.

    spec = cogdsl.load("specs/ntm_copy.yaml")
    config = config_from_spec(spec).with_overrides(steps=2000, lr=1e-3)
    result = train(spec, config, "runs/ntm_copy")           # a run folder, below
    print(evaluate(result.model, make_task("copy", bits=8), length=40).describe("ntm_copy"))

One training step: draw a batch from the task's data generator, run the model on it
(``raw=True``: logits), ``loss = sequence_loss(logits, batch)`` (BCE with logits, summed
over the scored bits of a sequence, averaged over the batch), backward, clip every
gradient component to ``[-clip, clip]`` (and the total norm to ``clip_norm``), optimizer
step. Loss and bit errors are summed as tensors and read out only every ``log_every``
steps, so the loop never waits on ``.item()``.

A run folder (default ``runs/<model>``)::

    spec.yaml            the spec as trained: the train section with the overrides applied
    log.csv              step, sequences, seconds, loss, bit_errors, seq_per_sec,
                         eval_loss, eval_bit_errors (the last two on evaluation rows)
    learning_curve.png   redrawn after an evaluation (at most every CURVE_SECONDS) and at the end
    checkpoints/         step_XXXXXXXX.safetensors + .json (see cogdsl.checkpoint);
                         the last 3 and the final one are kept

Seeds: ``torch.manual_seed(seed)`` before compiling fixes the parameters; the training data
come from their own generator seeded with ``seed``; evaluation always uses the same fresh
sequences (seed :data:`EVAL_SEED`), so evaluations compare across steps and runs.

``resume`` continues from the latest checkpoint: parameters, optimizer state, data
generator, step count and the CSV log (appended), so a run stopped and resumed ends where
an uninterrupted one would.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from cogdsl.checkpoint import (
    CHECKPOINT_DIR,
    Checkpoint,
    atomic_write_text,
    checkpoint_name,
    latest_checkpoint,
    library_versions,
    load_checkpoint,
    load_model_state,
    prune_checkpoints,
    read_checkpoint_meta,
    restore_generator,
    restore_optimizer,
    save_checkpoint,
    spec_fingerprint,
)
from cogdsl.curriculum import LengthCurriculum
from cogdsl.errors import DiagnosticSink, SpecError, UsageError
from cogdsl.reinforce import Decision, reinforce_loss, standardized
from cogdsl.spec import WHOLE_KINDS, Spec, Value
from cogdsl.tasks import Batch, Task, make_task
from cogdsl.train_config import OPTIMIZERS, SETTINGS, TrainConfig, resolve_train

EVAL_SEED = 1234
LOG_COLUMNS = ("step", "sequences", "seconds", "loss", "bit_errors", "seq_per_sec", "eval_loss", "eval_bit_errors")
KEEP_CHECKPOINTS = 3
CURVE_SECONDS = 30.0  # drawing the curve takes about a second: not after every one of many quick evaluations
_RUN_MARKERS = ("spec.yaml", "log.csv", CHECKPOINT_DIR)


# -- results -----------------------------------------------------------------------------------


def _num(x: float) -> str:
    """0.12, 12.50, 0.0031: two decimals, or two significant digits below 0.1."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    return f"{x:.2f}" if abs(x) >= 0.1 else f"{x:.2g}"


@dataclass(frozen=True)
class EvalResult:
    """Mean bit errors and loss per sequence over fixed fresh sequences, and the fraction with no error."""

    length: int | None
    sequences: int
    bit_errors: float
    loss: float
    perfect: float
    metrics: dict[str, float] = field(default_factory=dict)  # the task's own scores, means over sequences
    unit: str = "bit errors"  # what bit_errors counts: the task's error_unit
    split: str = "test"

    def describe(self, name: str) -> str:
        at = f" at length {self.length}" if self.length is not None else ""
        extra = "".join(f", {metric.replace('_', ' ')} {100 * value:.1f}%" for metric, value in self.metrics.items()
                        if math.isfinite(value))
        if self.unit == "wrong answers":
            return (f"{name}: {100 * (1 - self.perfect):.1f}% {self.split} error ({self.sequences} questions)"
                    f"{extra}, loss {_num(self.loss)}")
        return (f"{name}{at}: {_num(self.bit_errors)} {self.unit} per sequence (mean over {self.sequences} "
                f"sequences), {100 * self.perfect:.1f}% sequences perfect{extra}, loss {_num(self.loss)}")


@dataclass
class TrainResult:
    """What a call of :func:`train` did; ``model`` is the trained module."""

    out_dir: Path
    model: torch.nn.Module
    config: TrainConfig
    step: int
    sequences: int
    seconds: float
    loss: float | None
    bit_errors: float | None
    eval: EvalResult | None
    checkpoint: Path | None
    stopped: str  # "done", "time" (max_minutes), "interrupted" (Ctrl-C) or "already done"
    best: Path | None = None  # checkpoints/best.safetensors with keep_best

    @property
    def interrupted(self) -> bool:
        return self.stopped == "interrupted"


# -- the train: section ---------------------------------------------------------------------------


def config_from_spec(spec: Spec, what: str | None = None) -> TrainConfig:
    """The spec's resolved ``train:`` section.

    Raises:
        UsageError: the spec has no ``train:`` section.
        SpecError: the section has errors (``cogdsl.load`` reports them already).
    """
    if spec.train is None:
        raise UsageError(f"{what or spec.file} has no train: section (spec '{spec.name}'); "
                         "add one naming a task, e.g. 'train: {task: {name: copy}}'")
    sink = DiagnosticSink()
    config = resolve_train(spec.train, sink)
    if sink.items or config is None:
        raise SpecError(sink.items, {spec.file: spec.source or ""})
    return config


def _to_value(data: Any) -> Value:
    if isinstance(data, dict):
        return Value({str(k): _to_value(v) for k, v in data.items()})
    if isinstance(data, (list, tuple)):
        return Value([_to_value(v) for v in data])
    return Value(data)


def spec_with_config(spec: Spec, config: TrainConfig) -> Spec:
    """The spec with its ``train:`` section changed where ``config`` differs (command-line overrides).

    Settings that ``config`` leaves as the spec has them are written as the spec writes
    them, so with no overrides the result equals ``spec``.
    """
    base = config_from_spec(spec) if spec.train is not None else None
    train: dict[str, Any] = dict(spec.train.plain()) if spec.train is not None else {}
    if base is None or config.task != base.task or config.task_params != base.task_params:
        train["task"] = {"name": config.task, **config.task_params}
    if base is None or config.optimizer != base.optimizer:
        defaults = {p.name: p.default for p in OPTIMIZERS.get(config.optimizer, ())}
        train["optimizer"] = {"name": config.optimizer,
                              **{k: v for k, v in config.optimizer_params.items() if defaults.get(k) != v}}
    elif config.optimizer_params != base.optimizer_params:
        given = train.get("optimizer")
        optimizer = dict(given) if isinstance(given, dict) else {"name": config.optimizer}
        for key, value in config.optimizer_params.items():
            if base.optimizer_params.get(key) != value:
                optimizer[key] = value
        train["optimizer"] = optimizer
    for param in SETTINGS:
        value = getattr(config, param.name)
        if base is None or value != getattr(base, param.name):
            train[param.name] = value
    return dataclasses.replace(spec, train=_to_value(train))


def build_optimizer(parameters: Any, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer the config names: rmsprop (Graves et al. 2014), adam, adamw or sgd.

    ``weight_decay`` λ is an L2 penalty (λθ added to the gradient) for rmsprop, adam and sgd,
    and a decoupled decay (θ ← θ − lr·λθ after the Adam step) for adamw."""
    defaults = {p.name: p.default for p in OPTIMIZERS.get(config.optimizer, ())}
    p = {**defaults, **config.optimizer_params}
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=p["lr"], momentum=p["momentum"], alpha=p["alpha"], eps=p["eps"],
                                   weight_decay=p["weight_decay"])
    if config.optimizer in ("adam", "adamw"):
        adam = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
        return adam(parameters, lr=p["lr"], betas=(p["beta1"], p["beta2"]), eps=p["eps"],
                    weight_decay=p["weight_decay"])
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=p["lr"], momentum=p["momentum"], weight_decay=p["weight_decay"])
    raise UsageError(f"unknown optimizer '{config.optimizer}'; optimizers are {', '.join(sorted(OPTIMIZERS))}")


def apply_gradients(parameters: list[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                    config: TrainConfig) -> None:
    """The end of a training step: clip each gradient component to ±clip and the norm to clip_norm
    (each when > 0), step the optimizer, clear the gradients."""
    if config.clip > 0:
        torch.nn.utils.clip_grad_value_(parameters, config.clip)
    if config.clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(parameters, config.clip_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def set_learning_rate(optimizer: torch.optim.Optimizer, config: TrainConfig, step: int) -> None:
    """With ``lr_decay_every`` > 0: ``lr = lr_0 * lr_decay ** (step // lr_decay_every)`` (MemN2N halves
    it every 25 epochs); a function of the step alone, so a resumed run gets the same rate."""
    if config.lr_decay_every <= 0:
        return
    base = {p.name: p.default for p in OPTIMIZERS[config.optimizer]}.get("lr", 0.0)
    lr = float(config.optimizer_params.get("lr", base)) * config.lr_decay ** (step // config.lr_decay_every)
    for group in optimizer.param_groups:
        group["lr"] = lr


class LinearStart:
    """MemN2N's linear start (Sukhbaatar et al. 2015, 4.2): the hops run without their softmax
    until the validation loss stops decreasing (an evaluation that does not improve on the best
    so far), or for ``steps`` steps at most; then the softmax is put back for good."""

    def __init__(self, model: torch.nn.Module, steps: int, saved: dict[str, Any] | None = None):
        self.model, self.steps = model, steps
        self.active = steps > 0 and bool((saved or {}).get("active", True))
        self.best = float((saved or {}).get("best") or math.inf)
        self.ended = ""
        if steps > 0 and not model.set_linear_start(self.active):
            raise UsageError("linear_start: the spec has no hops block whose softmax it could remove")

    def after_evaluation(self, loss: float, step: int) -> bool:
        """Note a validation loss; True when it ends linear start."""
        if loss < self.best:
            self.best = loss
            return False
        self._end(f"linear start ended: validation loss {_num(loss)} did not improve on {_num(self.best)}")
        return True

    def after_step(self, step: int) -> bool:
        """True when ``step`` reaches the limit and so ends linear start."""
        if step < self.steps:
            return False
        self._end(f"linear start ended after its {self.steps} steps")
        return True

    def _end(self, why: str) -> None:
        self.active, self.ended = False, why
        self.model.set_linear_start(False)

    def state(self) -> dict[str, Any]:
        return {"active": self.active, "best": self.best if math.isfinite(self.best) else None}


BEST_CHECKPOINT = "best.safetensors"


class BestKeeper:
    """``keep_best``: after each scheduled evaluation whose validation loss is the lowest so far,
    the model's weights go to ``checkpoints/best.safetensors`` (with the step and the evaluation
    in its metadata), so a run that gets worse later still has its best point."""

    def __init__(self, out: Path, enabled: bool, saved: dict[str, Any] | None = None):
        self.path = out / CHECKPOINT_DIR / BEST_CHECKPOINT
        self.enabled = enabled
        self.loss = float((saved or {}).get("loss") or math.inf)
        self.step = (saved or {}).get("step")

    def after_evaluation(self, model: torch.nn.Module, evaluation: EvalResult, step: int,
                         meta: dict[str, Any]) -> None:
        """Save the weights (with ``meta``, the run's identity) if ``evaluation`` improves on the best."""
        if not self.enabled or not evaluation.loss < self.loss:
            return
        self.loss, self.step = evaluation.loss, step
        save_checkpoint(self.path, model=model, optimizer=None, data_generator=None,
                        meta={**meta, "step": step, "eval": dataclasses.asdict(evaluation), "best": self.state()})

    def state(self) -> dict[str, Any]:
        return {"loss": self.loss if math.isfinite(self.loss) else None, "step": self.step}


# -- evaluation ----------------------------------------------------------------------------------------


def eval_length(task: Task) -> int | None:
    """The longest length the task trains on (``max_len`` for copy), or None if it has no such range."""
    try:
        return int(task.length_range()[1])
    except (AssertionError, NotImplementedError, KeyError, TypeError):
        return None


def model_inputs(model: torch.nn.Module, inputs: torch.Tensor | dict[str, torch.Tensor]
                 ) -> torch.Tensor | dict[str, torch.Tensor]:
    """A batch's inputs as the model takes them: a task's inputs by kind become the spec's inputs by name."""
    if not isinstance(inputs, dict):
        return inputs
    return {name: inputs[kind] for name, kind in model.input_kinds.items()}


def rewards(task: Task, logits: torch.Tensor, batch: Batch, decisions: list[Decision]) -> dict[str, torch.Tensor]:
    """The rewards the ``decisions`` ask for, by name (:class:`cogdsl.reinforce.Decision`), each (B,):
    the task's 0/1 success, and the standardised log-likelihood of the targets, -loss per sequence."""
    wanted = {decision.reward for decision in decisions}
    out = {}
    if "success" in wanted:
        out["success"] = task.reward(logits, batch)
    if "likelihood" in wanted:
        out["likelihood"] = standardized(-task.sequence_losses(logits, batch))
    return out


def _logits(model: torch.nn.Module, batch: Batch, decisions: list[Decision] | None = None,
            penalties: list[torch.Tensor] | None = None) -> torch.Tensor:
    # A whole input (a sequence, an image) has no time axis: the model is told how many steps to run.
    whole = isinstance(batch.inputs, dict) and any(kind in batch.inputs for kind in WHOLE_KINDS)
    steps = {"steps": batch.steps} if whole else {}
    if decisions is not None:
        steps["decisions"] = decisions
    if penalties is not None:
        steps["penalties"] = penalties
    y = model(model_inputs(model, batch.inputs), raw=True, **steps)
    return next(iter(y.values())) if isinstance(y, dict) else y


def evaluate(model: torch.nn.Module, task: Task, *, length: int | None = None, sequences: int = 1000,
             seed: int = EVAL_SEED, batch: int = 100, split: str = "test") -> EvalResult:
    """Mean errors and loss per sequence, and the fraction of perfect sequences, on fresh sequences.

    The sequences come from :meth:`Task.evaluation_batches`: for the algorithmic tasks, a
    generator seeded with ``seed``, drawn ``batch`` at a time, so the same arguments always
    give the same sequences; for the QA tasks, the first ``sequences`` questions of
    ``split``. ``length`` defaults to the task's longest training length. A task metric
    that is NaN for a sequence (a per-task accuracy, for another task's question) is
    averaged over the other sequences.
    """
    if sequences < 1 or batch < 1:
        raise ValueError(f"sequences and batch must be >= 1, got {sequences} and {batch}")
    if length is None:
        length = eval_length(task)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    errors: list[torch.Tensor] = []
    scores: dict[str, list[torch.Tensor]] = {}
    loss_total = torch.zeros((), dtype=torch.float64)
    try:
        with torch.no_grad():
            for data in task.evaluation_batches(sequences, seed, batch, length, split):
                if device.type != "cpu":
                    data = data.to(device)
                logits = _logits(model, data)
                loss_total += task.loss_of(logits, data).double().cpu() * data.batch_size
                errors.append(task.errors(logits, data).cpu())
                for metric, values in task.metrics(logits, data).items():
                    scores.setdefault(metric, []).append(values.cpu())
    finally:
        model.train(was_training)
    per_sequence = torch.cat(errors)
    counted = per_sequence.numel()
    return EvalResult(length=length, sequences=counted, bit_errors=float(per_sequence.mean()),
                      loss=float(loss_total) / counted, perfect=float((per_sequence == 0).float().mean()),
                      metrics={metric: float(torch.cat(values).nanmean()) for metric, values in scores.items()},
                      unit=task.error_unit, split=split)


# -- the run folder ---------------------------------------------------------------------------------------


def _looks_like_run(folder: Path) -> bool:
    return any((folder / marker).exists() for marker in _RUN_MARKERS)


def check_run_dir(out: Path, *, resume: bool, force: bool) -> Path | None:
    """Check what may be done with the output folder, touching nothing; the checkpoint to resume, if resuming.

    Raises:
        UsageError: the folder exists (without resume or force), has nothing to resume, or
            is not a run folder that force could replace.
    """
    if resume and force:
        raise UsageError("pass either --resume or --force, not both")
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder; choose another --out")
    nonempty = out.is_dir() and any(out.iterdir())
    if resume:
        if not nonempty:
            raise UsageError(f"{out}: no run to resume there; leave out --resume to start one")
        latest = latest_checkpoint(out)
        if latest is None:
            raise UsageError(f"{out} has no checkpoint to resume from; pass --force to start the run again")
        return latest
    if nonempty:
        if not force:
            raise UsageError(f"{out} exists; pass --resume to continue it or --force to replace it")
        resolved = out.resolve()
        if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents or resolved == Path.home():
            raise UsageError(f"{out} is the current folder, one of its parents or the home folder; "
                             "--force will not delete it: choose another --out")
        if not _looks_like_run(out):
            raise UsageError(f"{out} is not a cogdsl run folder (it has no spec.yaml, log.csv or {CHECKPOINT_DIR}/); "
                             "--force only replaces run folders: choose another --out")
    return None


class _Log:
    """log.csv, appended one row at a time (flushed, so a crash loses at most the current row)."""

    def __init__(self, path: Path, keep_through: int | None):
        self.path = path
        if keep_through is not None and path.exists():
            self._drop_rows_after(keep_through)
        fresh = not path.exists() or path.stat().st_size == 0
        self.handle = open(path, "a", newline="", encoding="utf-8")
        self.writer = csv.writer(self.handle)
        if fresh:
            self.writer.writerow(LOG_COLUMNS)
            self.handle.flush()

    def _drop_rows_after(self, step: int) -> None:
        """Rows a crashed run wrote after its last checkpoint would repeat on resume: drop them."""
        with open(self.path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        if not rows:
            return
        kept = [rows[0]] + [r for r in rows[1:] if r and r[0].strip().isdigit() and int(r[0]) <= step]
        if len(kept) != len(rows):
            text = io.StringIO()
            csv.writer(text).writerows(kept)
            atomic_write_text(self.path, text.getvalue())

    def row(self, **values: Any) -> None:
        self.writer.writerow([_cell(values.get(column)) for column in LOG_COLUMNS])
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return str(value)


class _StopOnInterrupt:
    """The first Ctrl-C asks the loop to stop after the current step (and save); a second one stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> _StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._restore_target())
        print("\nstopping after this step and saving a checkpoint (Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)

    def _restore_target(self) -> Any:
        return self._previous if self._previous is not None else signal.default_int_handler

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._restore_target())


def _warn_fingerprint(checkpoint_meta: dict[str, Any], spec: Spec, where: Path) -> None:
    saved = checkpoint_meta.get("spec_fingerprint")
    if saved and saved != spec_fingerprint(spec):
        name = checkpoint_meta.get("model", "another spec")
        print(f"warning: {where} was trained on a different definition of '{name}' whose tensors have the "
              f"same shapes as '{spec.name}'; using it anyway", file=sys.stderr)


# -- training -------------------------------------------------------------------------------------------


def train(spec: Spec | str | Path, config: TrainConfig | None = None, out_dir: str | Path | None = None, *,
          resume: bool = False, force: bool = False, progress: bool = True, max_minutes: float | None = None,
          device: str | torch.device = "cpu") -> TrainResult:
    """Train ``spec`` on its task with ``config`` (default: the spec's own ``train:`` section).

    Writes the run folder ``out_dir`` (default ``runs/<model>``), described in the module
    docstring. Stops after ``config.steps`` steps, after ``max_minutes`` of wall time, or
    on Ctrl-C (after the current step); in every case the last state is checkpointed.

    Raises:
        UsageError: the output folder exists and neither ``resume`` nor ``force`` is given,
            or there is nothing to resume.
        CheckpointError: the checkpoint to resume is corrupt or from another architecture.
        SpecError: the spec (or its train section) has errors.
    Nothing in the output folder is touched before every check has passed.
    """
    import cogdsl
    from cogdsl.emit import to_yaml
    from cogdsl.viz import plot_learning_curve

    if not isinstance(spec, Spec):
        spec = cogdsl.load(spec)
    if config is None:
        config = config_from_spec(spec)
    if max_minutes is not None and not max_minutes > 0:
        raise UsageError(f"--max-minutes must be a positive number of minutes, got {max_minutes}")
    out = Path(out_dir) if out_dir is not None else Path("runs") / spec.name
    to_resume = check_run_dir(out, resume=resume, force=force)

    task = make_task(config.task, **config.task_params)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    model = cogdsl.compile(spec).to(device)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(parameters, config)
    data = torch.Generator().manual_seed(config.seed)

    step, sequences, seconds = 0, 0, 0.0
    window = {"loss_sum": 0.0, "bits_sum": 0.0, "steps": 0, "sequences": 0}
    last_eval: EvalResult | None = None
    checkpoint: Checkpoint | None = None
    if to_resume is not None:
        checkpoint = load_checkpoint(to_resume)
        load_model_state(model, checkpoint, spec.name)
        restore_optimizer(optimizer, checkpoint)
        restore_generator(data, checkpoint)
        _warn_fingerprint(checkpoint.meta, spec, to_resume)
        meta = checkpoint.meta
        step, sequences = int(meta.get("step", 0)), int(meta.get("sequences", 0))
        seconds = float(meta.get("seconds", 0.0))
        window.update({k: v for k, v in (meta.get("window") or {}).items() if k in window})
        if meta.get("eval"):
            last_eval = EvalResult(**meta["eval"])
    linear = LinearStart(model, config.linear_start, checkpoint.meta.get("linear_start") if checkpoint else None)
    curriculum = LengthCurriculum(task, config.curriculum_start, config.curriculum_every)
    best = BestKeeper(out, config.keep_best, checkpoint.meta.get("best") if checkpoint else None)

    # Every check has passed: from here on the folder is ours.
    try:
        if force and out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create the output folder {out}: {err.strerror or err}") from None
    resolved = spec_with_config(spec, config)
    spec_yaml = to_yaml(resolved)
    atomic_write_text(out / "spec.yaml", spec_yaml)
    fingerprint = spec_fingerprint(spec)
    versions = library_versions()
    log = _Log(out / "log.csv", keep_through=step if to_resume is not None else None)
    curve = out / "learning_curve.png"

    loss_sum = torch.tensor(float(window["loss_sum"]), device=device)
    bits_sum = torch.tensor(float(window["bits_sum"]), device=device)
    window_steps, window_seqs = int(window["steps"]), int(window["sequences"])
    window_seconds = 0.0
    last_saved: Path | None = to_resume
    last_saved_step = step if to_resume is not None else -1
    last_loss: float | None = None
    last_bits: float | None = None

    # What every checkpoint of this run says about where it came from.
    identity = {"model": spec.name, "seed": config.seed, "versions": versions, "spec_fingerprint": fingerprint,
                "spec_yaml": spec_yaml}

    def save() -> Path:
        meta = {
            **identity, "step": step, "sequences": sequences, "seconds": round(seconds, 3),
            "config": dataclasses.asdict(config), "device": str(device),
            "window": {"loss_sum": float(loss_sum), "bits_sum": float(bits_sum), "steps": window_steps,
                       "sequences": window_seqs},
            "eval": dataclasses.asdict(last_eval) if last_eval is not None else None,
            "stopped": stopped, "linear_start": linear.state(), "best": best.state(),
        }
        path = save_checkpoint(out / CHECKPOINT_DIR / checkpoint_name(step), model=model, optimizer=optimizer,
                               data_generator=data, meta=meta)
        prune_checkpoints(out, keep=KEEP_CHECKPOINTS, every=config.checkpoint_every)
        return path

    stopped = "done" if step < config.steps else "already done"
    bar = tqdm(total=config.steps, initial=min(step, config.steps), disable=not progress, unit="step",
               desc=spec.name, dynamic_ncols=True, file=sys.stderr)
    started = time.perf_counter()
    deadline = started + 60.0 * max_minutes if max_minutes is not None else None
    mark = started
    drawn = -math.inf
    model.train()
    try:
        with _StopOnInterrupt() as interrupt:
            try:
                while step < config.steps:
                    batch: Batch = curriculum.task_at(step).sample(config.batch, data)
                    if batch.mask.device != torch.device(device):
                        batch = batch.to(device)
                    set_learning_rate(optimizer, config, step)
                    decisions: list[Decision] | None = [] if getattr(model, "stochastic", None) else None
                    penalties: list[torch.Tensor] | None = [] if getattr(model, "penalized", None) else None
                    logits = _logits(model, batch, decisions, penalties)  # (B, T, O)
                    loss = task.loss_of(logits, batch)
                    objective = loss if not decisions else loss + reinforce_loss(
                        decisions, rewards(task, logits.detach(), batch, decisions))
                    if penalties:  # summed over steps, averaged over the batch, like the task's loss
                        objective = objective + torch.stack(penalties).sum(0).mean()
                    objective.backward()
                    apply_gradients(parameters, optimizer, config)
                    with torch.no_grad():
                        loss_sum += loss.detach()
                        bits_sum += task.errors(logits.detach(), batch).sum()
                    step += 1
                    if linear.active and linear.after_step(step):
                        bar.write(f"step {step}: {linear.ended}")
                    if curriculum.active and step == curriculum.reached_at() and step > 0:
                        bar.write(f"step {step}: curriculum reached the task's full range "
                                  f"(longest length {curriculum.longest})")
                    sequences += config.batch
                    window_steps += 1
                    window_seqs += config.batch

                    if interrupt.requested:
                        stopped = "interrupted"
                    elif deadline is not None and time.perf_counter() >= deadline:
                        stopped = "time"
                    final = step >= config.steps or stopped != "done"
                    do_eval = step % config.eval_every == 0 or (final and stopped != "interrupted")
                    do_log = step % config.log_every == 0 or do_eval or final
                    do_save = step % config.checkpoint_every == 0 or final
                    if not (do_log or do_save):
                        continue
                    now = time.perf_counter()
                    seconds += now - mark
                    window_seconds += now - mark
                    if do_log:
                        last_loss = float(loss_sum) / max(window_steps, 1)
                        last_bits = float(bits_sum) / max(window_seqs, 1)
                        rate = window_seqs / window_seconds if window_seconds > 0 else None
                        evaluation = None
                        if do_eval:
                            evaluation = evaluate(model, task, sequences=config.eval_size, seed=EVAL_SEED,
                                                  split="valid")
                            last_eval = evaluation
                            # Only the scheduled evaluations: a run stopped and resumed must end
                            # linear start where an uninterrupted run would.
                            scheduled = step % config.eval_every == 0
                            if linear.active and scheduled and linear.after_evaluation(evaluation.loss, step):
                                bar.write(f"step {step}: {linear.ended}")
                            if scheduled:
                                best.after_evaluation(model, evaluation, step, identity)
                        log.row(step=step, sequences=sequences, seconds=seconds, loss=last_loss, bit_errors=last_bits,
                                seq_per_sec=rate, eval_loss=evaluation.loss if evaluation else None,
                                eval_bit_errors=evaluation.bit_errors if evaluation else None)
                        loss_sum.zero_()
                        bits_sum.zero_()
                        window_steps = window_seqs = 0
                        window_seconds = 0.0
                        bar.set_postfix_str(f"loss={last_loss:.3g}, bits={last_bits:.3g}", refresh=False)
                        bar.update(step - bar.n)
                        if evaluation is not None:
                            bar.write(f"step {step}: evaluation: {evaluation.describe(spec.name)}")
                            if time.perf_counter() - drawn >= CURVE_SECONDS:
                                plot_learning_curve(out / "log.csv", curve, title=f"{spec.name} learning curve")
                                drawn = time.perf_counter()
                    if do_save:
                        last_saved, last_saved_step = save(), step
                    mark = time.perf_counter()
                    if final:
                        break
            except KeyboardInterrupt:
                # A second Ctrl-C (or one outside the main thread): keep what the completed steps did.
                stopped = "interrupted"
                optimizer.zero_grad(set_to_none=True)
                seconds += time.perf_counter() - mark
                if window_steps:
                    last_loss = float(loss_sum) / window_steps
                    last_bits = float(bits_sum) / max(window_seqs, 1)
                    log.row(step=step, sequences=sequences, seconds=seconds, loss=last_loss, bit_errors=last_bits)
                    loss_sum.zero_()
                    bits_sum.zero_()
                    window_steps = window_seqs = 0
                if step != last_saved_step and step > 0:
                    last_saved, last_saved_step = save(), step
    finally:
        bar.close()
        log.close()
    if stopped != "already done" or not curve.exists():
        plot_learning_curve(out / "log.csv", curve, title=f"{spec.name} learning curve")
    return TrainResult(out_dir=out, model=model, config=config, step=step, sequences=sequences, seconds=seconds,
                       loss=last_loss, bit_errors=last_bits, eval=last_eval, checkpoint=last_saved, stopped=stopped,
                       best=best.path if best.enabled and best.path.exists() else None)


def use_best_weights(result: TrainResult) -> torch.nn.Module:
    """The model a run is scored with: ``result.model`` with the weights of its best validation
    loaded when it kept them (``keep_best``), else as training left it."""
    if result.best is not None:
        load_model_state(result.model, load_checkpoint(result.best), result.model.spec.name)
    return result.model


# -- the commands ----------------------------------------------------------------------------------------------


def _check_positive(name: str, value: float | None, minimum: float = 1) -> None:
    if value is not None and not value >= minimum:
        raise UsageError(f"{name} must be at least {minimum:g}, got {value:g}")


def _saved_config(out: Path) -> TrainConfig | None:
    """The config the run in ``out`` was trained with (from its latest checkpoint), if there is one."""
    latest = latest_checkpoint(out) if out.is_dir() else None
    if latest is None:
        return None
    saved = read_checkpoint_meta(latest).get("config")
    if not isinstance(saved, dict):
        return None
    try:
        return TrainConfig(**saved)
    except TypeError:
        return None


def train_command(args: Any) -> int:
    """``cogdsl train SPEC [--steps N --batch B --lr LR --seed S --threads T --out DIR --resume|--force
    --max-minutes M --no-progress]``; 0 when done, 130 when stopped by Ctrl-C.

    With ``--resume`` the run's own settings (from its checkpoint) are the base that the
    command-line overrides change, so ``--resume`` alone continues the run as it was started.
    """
    import cogdsl

    _check_positive("--steps", args.steps)
    _check_positive("--batch", args.batch)
    _check_positive("--seed", args.seed, 0)
    _check_positive("--threads", args.threads, 0)
    if args.lr is not None and not (args.lr > 0 and math.isfinite(args.lr)):
        raise UsageError(f"--lr must be a positive number, got {args.lr:g}")
    if args.max_minutes is not None and not (args.max_minutes > 0 and math.isfinite(args.max_minutes)):
        raise UsageError(f"--max-minutes must be a positive number of minutes, got {args.max_minutes:g}")
    spec = cogdsl.load(args.spec)
    base = config_from_spec(spec, args.spec)
    out = Path(args.out) if args.out else Path("runs") / spec.name
    if args.resume and not args.force:
        base = _saved_config(out) or base
    config = base.with_overrides(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, threads=args.threads)
    result = train(spec, config, out, resume=args.resume, force=args.force, progress=not args.no_progress,
                   max_minutes=args.max_minutes)
    print(describe_result(spec.name, result, max_minutes=args.max_minutes))
    return 130 if result.interrupted else 0


def describe_result(name: str, result: TrainResult, max_minutes: float | None = None) -> str:
    """A few lines for the end of ``cogdsl train``."""
    config = result.config
    if result.stopped == "already done":
        lines = [f"{name}: the run in {result.out_dir} is already at step {result.step} of {config.steps}; "
                 "pass --steps with a larger number to train further"]
    else:
        rate = f", {result.sequences / result.seconds:,.0f} sequences/s" if result.seconds > 0 else ""
        why = {"done": "", "time": f"; stopped after --max-minutes {max_minutes:g}" if max_minutes else "; time is up",
               "interrupted": "; stopped by Ctrl-C"}[result.stopped]
        lines = [f"{name}: step {result.step} of {config.steps} ({result.sequences:,} sequences in "
                 f"{result.seconds:,.0f} s{rate}){why}"]
        if result.loss is not None and result.bit_errors is not None:
            unit = result.eval.unit if result.eval is not None else "bit errors"
            lines.append(f"  last training steps: loss {_num(result.loss)}, {_num(result.bit_errors)} "
                         f"{unit} per sequence")
    if result.eval is not None:
        lines.append(f"  last evaluation: {result.eval.describe(name)}")
    files = ["log.csv", "learning_curve.png"]
    if result.checkpoint is not None:
        files.append(os.path.relpath(result.checkpoint, result.out_dir))
    if result.best is not None:
        files.append(os.path.relpath(result.best, result.out_dir))
    lines.append(f"  run folder: {result.out_dir} ({', '.join(files)})")
    if result.best is not None:
        best = read_checkpoint_meta(result.best)
        lines.append(f"  best evaluation (kept): step {best.get('step')}, validation loss "
                     f"{_num(float(best['eval']['loss']))}; evaluate it with: cogdsl eval SPEC {result.best}")
    if result.stopped in ("time", "interrupted"):
        lines.append(f"  continue with: cogdsl train SPEC --out {result.out_dir} --resume")
    return "\n".join(lines)


def load_trained(spec_path: str, checkpoint_path: str, length: int | None = None
                 ) -> tuple[Spec, Task, torch.nn.Module, Checkpoint]:
    """The spec, its training task, the compiled model with the checkpoint's weights, and the checkpoint.

    For the commands that read a trained run (``eval``, ``trace``): every problem (a bad
    spec, no ``train:`` task, ``length`` below the task's minimum, a missing, corrupt or
    foreign checkpoint) is a user error, never a traceback.
    """
    import cogdsl

    spec = cogdsl.load(spec_path)
    config = config_from_spec(spec, spec_path)
    task = make_task(config.task, **config.task_params)
    if length is not None and task.length_params is None:
        raise UsageError(f"--len: task {task.name} has stories, not sequence lengths; leave --len out")
    if length is not None and length < task.min_length:
        raise UsageError(f"--len must be at least {task.min_length} for task {task.name}, got {length}")
    model = cogdsl.compile(spec)
    checkpoint = load_checkpoint(checkpoint_path)
    load_model_state(model, checkpoint, spec.name)
    _warn_fingerprint(checkpoint.meta, spec, checkpoint.path)
    return spec, task, model, checkpoint


def eval_command(args: Any) -> int:
    """``cogdsl eval SPEC CHECKPOINT [--len L --sequences N --seed S --plot PNG]``: bit errors per sequence."""

    _check_positive("--sequences", args.sequences)
    _check_positive("--seed", args.seed, 0)
    plot = Path(args.plot) if args.plot else None
    if plot is not None:
        if plot.suffix.lower() != ".png":
            raise UsageError(f"--plot {plot}: the plot is a PNG; give a file name ending in .png")
        if not plot.parent.is_dir():
            raise UsageError(f"--plot {plot}: no such folder {plot.parent}")
    spec, task, model, checkpoint = load_trained(args.spec, args.checkpoint, args.length)
    if plot is not None and getattr(model, "read_memory", None):
        raise UsageError(f"--plot draws head weightings over a sequence; for {spec.name}, a QA model, draw each "
                         "hop's attention with: cogdsl trace SPEC CHECKPOINT --question N")
    if plot is not None and "sequence" in task.input_kinds:
        raise UsageError(f"--plot draws head weightings over a sequence; for {spec.name}, a sequence-to-sequence "
                         "model, draw its alignment with: cogdsl trace SPEC CHECKPOINT --len L")
    if plot is not None and "image" in task.input_kinds:
        raise UsageError(f"--plot draws head weightings over a sequence; for {spec.name}, a model that looks at "
                         "images, draw where it looked with: cogdsl trace SPEC CHECKPOINT")
    result = evaluate(model, task, length=args.length, sequences=args.sequences, seed=args.seed)
    print(result.describe(spec.name))
    if plot is not None:
        from cogdsl.viz import plot_weightings

        sample = task.sample(1, torch.Generator().manual_seed(args.seed), length=result.length)
        at = f" at length {result.length}" if result.length is not None else ""
        try:
            plot_weightings(model, sample.inputs, plot, targets=sample.targets,
                            title=f"{spec.name}{at}, step {checkpoint.step}")
        except OSError as err:
            raise UsageError(f"--plot {plot}: cannot write it: {err.strerror or err}") from None
        print(f"wrote {plot}", file=sys.stderr)
    return 0
