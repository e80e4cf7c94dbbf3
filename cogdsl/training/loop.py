"""Training: the loop behind ``cogdsl train``, ``cogdsl eval`` and ``cogdsl.train``.

    result = cogdsl.train("specs/ntm_copy.yaml", steps=2000, device="auto")   # this module, called
    spec = cogdsl.load("specs/ntm_copy.yaml")
    config = config_from_spec(spec).with_overrides(steps=2000, lr=1e-3)
    result = train(spec, config, "runs/ntm_copy")           # a run folder (cogdsl.training.run_folder)
    print(evaluate(result.model, make_task("copy", bits=8), length=40).describe("ntm_copy"))

One training step: take a batch from the run's stream (the spec's task, or your data;
:mod:`cogdsl.training.streams`), run the model on it (``raw=True``: logits), the task's loss
(BCE with logits summed over the scored bits of a sequence and averaged over the batch, for the
algorithmic tasks), backward, clip every gradient component to ``[-clip, clip]`` (and the total
norm to ``clip_norm``), optimizer step. Loss and errors are summed as tensors and read out only
every ``log_every`` steps, so the loop never waits on ``.item()``.

Seeds: ``torch.manual_seed(seed)`` before compiling fixes the parameters; the training data
come from their own generator seeded with ``seed`` (process r of a torchrun run: its rank
seed); evaluation always uses the same fresh sequences (seed :data:`EVAL_SEED`), or the
validation split of a task with fixed splits, so evaluations compare across steps and runs.

``resume`` continues from the newest whole checkpoint: parameters, optimizer state, every
process's data stream, step count and the CSV log (appended), so a run stopped and resumed
ends where an uninterrupted one would. On a GPU, and under torchrun with DistributedDataParallel,
see docs/gpu.md; on your own data, docs/data.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from cogdsl.errors import DiagnosticSink, SpecError, UsageError
from cogdsl.language.spec import Spec, Value
from cogdsl.reinforce import Decision, reinforce_loss
from cogdsl.tasks import Batch, Task
from cogdsl.training.callbacks import BEST_CHECKPOINT as BEST_CHECKPOINT  # re-exported
from cogdsl.training.callbacks import BestKeeper, LinearStart
from cogdsl.training.checkpoints import (
    CHECKPOINT_DIR,
    Checkpoint,
    atomic_write_text,
    checkpoint_name,
    library_versions,
    load_checkpoint,
    load_model_state,
    load_resumable,
    prune_checkpoints,
    read_checkpoint_meta,
    restore_optimizer,
    restore_torch_rng,
    save_checkpoint,
    set_aside,
    spec_fingerprint,
    stream_states,
)
from cogdsl.training.compiled import compile_mode, compile_model
from cogdsl.training.config import OPTIMIZERS, SETTINGS, TrainConfig, build_task, resolve_train
from cogdsl.training.curriculum import LengthCurriculum
from cogdsl.training.devices import describe_device
from cogdsl.training.evaluation import EVAL_SEED as EVAL_SEED  # re-exported, as are the names below
from cogdsl.training.evaluation import EvalResult as EvalResult
from cogdsl.training.evaluation import _logits, _num, check_sequences, evaluate, rewards, test_length_problem
from cogdsl.training.evaluation import eval_length as eval_length
from cogdsl.training.evaluation import model_inputs as model_inputs
from cogdsl.training.run_folder import LOG_COLUMNS as LOG_COLUMNS  # re-exported: tests and tools read it here
from cogdsl.training.run_folder import RunLog, check_run_dir, log_columns
from cogdsl.training.signals import StopOnSignal
from cogdsl.training.spikes import SpikeClip

KEEP_CHECKPOINTS = 3
CURVE_SECONDS = 30.0  # drawing the curve takes about a second: not after every one of many quick evaluations


# -- results -----------------------------------------------------------------------------------


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
    stopped: str  # "done", "time" (max_minutes), "interrupted" (Ctrl-C, SIGTERM) or "already done"
    best: Path | None = None  # checkpoints/best.safetensors with keep_best
    device: str = "cpu"  # where it trained (rank 0's device under torchrun)
    processes: int = 1  # how many processes trained it (torchrun)
    signal: str | None = None  # what stopped an interrupted run: "SIGINT" (Ctrl-C) or "SIGTERM"
    skipped: int = 0  # steps whose loss or gradient was not finite, never applied
    earlier_cpu_seconds: float | None = 0.0  # CPU time of the attempts before this one, as the checkpoint resumed
    # from says (None: it is older than the key)
    earlier_seconds: float = 0.0  # training time of the attempts before this one, as that checkpoint says

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
        example = ("'train { task copy(bits=8) }'" if spec.file.endswith(".cog")
                   else "'train: {task: {name: copy, bits: 8}}'")
        raise UsageError(f"{what or spec.file} has no train section (spec '{spec.name}'); add one naming a task, "
                         f"e.g. {example}")
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
    if config.task and (base is None or config.task != base.task or config.task_params != base.task_params):
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
    if base is None or (config.schedule, config.schedule_params) != (base.schedule, base.schedule_params):
        if config.schedule != "constant" or config.schedule_params:
            train["schedule"] = {"name": config.schedule, **config.schedule_params}
        else:
            train.pop("schedule", None)
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
                    config: TrainConfig, spikes: SpikeClip | None = None) -> None:
    """The end of a training step: hold the norm to clip_spikes times its running average (``spikes``), clip
    each gradient component to ±clip and the norm to clip_norm (each when > 0), step the optimizer, clear the
    gradients."""
    if spikes is not None:
        spikes(parameters)
    if config.clip > 0:
        torch.nn.utils.clip_grad_value_(parameters, config.clip)
    if config.clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(parameters, config.clip_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def set_learning_rate(optimizer: torch.optim.Optimizer, config: TrainConfig, step: int) -> None:
    """The rate of ``step`` from the run's schedule (:mod:`cogdsl.training.schedule`): warm-up, then constant,
    step, cosine or linear decay; ``lr_decay_every`` > 0 is the step schedule, ``lr = lr_0 * lr_decay ** (step //
    lr_decay_every)`` (MemN2N halves it every 25 epochs). A function of the step alone, so a resumed run gets
    the same rate. A constant schedule with no warm-up leaves the optimizer's rate as it is."""
    from cogdsl.training.schedule import rate_factor

    name, params = config.schedule, config.schedule_params
    if config.lr_decay_every > 0:
        name, params = "step", {"every": config.lr_decay_every, "factor": config.lr_decay}
    if name == "constant" and not params.get("warmup"):
        return
    base = {p.name: p.default for p in OPTIMIZERS[config.optimizer]}.get("lr", 0.0)
    lr = float(config.optimizer_params.get("lr", base)) * rate_factor(name, params, step, config.steps)
    for group in optimizer.param_groups:
        group["lr"] = lr


# -- training -------------------------------------------------------------------------------------------


def _warn_fingerprint(checkpoint_meta: dict[str, Any], spec: Spec, where: Path) -> None:
    saved = checkpoint_meta.get("spec_fingerprint")
    if saved and saved != spec_fingerprint(spec):
        name = checkpoint_meta.get("model", "another spec")
        print(f"warning: {where} was trained on a different definition of '{name}' whose tensors have the "
              f"same shapes as '{spec.name}'; using it anyway", file=sys.stderr)


def _apply_settings(config: TrainConfig, settings: dict[str, Any]) -> TrainConfig:
    """``config`` with the keyword settings of :func:`train` (``steps=``, ``batch=``, ``lr=`` ...) applied."""
    if not settings:
        return config
    known = ["lr", *(p.name for p in SETTINGS)]
    for name in settings:
        if name not in known:
            raise UsageError(f"train(): unknown setting '{name}'{hint_suffix(name, known)}; settings are "
                             f"{', '.join(known)}")
    return config.with_overrides(**settings)


def hint_suffix(name: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def train(spec: Spec | str | Path, config: TrainConfig | None = None, out_dir: str | Path | None = None, *,
          resume: bool = False, force: bool = False, progress: bool = True, max_minutes: float | None = None,
          device: str | torch.device = "auto", data: Any = None, eval_data: Any = None, tensorboard: bool = True,
          detect_anomaly: bool = False, compile: bool | str = False, **settings: Any) -> TrainResult:
    """Train ``spec`` with ``config`` (default: the spec's own ``train:`` section) on its task or on ``data``.

    ``cogdsl.train`` is this function::

        result = cogdsl.train("specs/ntm_copy.yaml", steps=2000, device="cuda", out_dir="runs/copy")
        result = cogdsl.train(spec, data=my_loader, eval_data=my_valid_set, steps=5000, lr=1e-3)

    Writes the run folder ``out_dir`` (default ``runs/<model>``; :mod:`cogdsl.training.run_folder`).
    Stops after ``config.steps`` steps, after ``max_minutes`` of wall time, or on Ctrl-C or SIGTERM
    (after the current step); in every case the last state is checkpointed.

    Args:
        device: ``auto`` (CUDA when there is a GPU, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``; under
            ``torchrun`` each process takes the GPU of its local rank (:mod:`cogdsl.training.distributed`).
        data: your own training data instead of the spec's task: a torch ``Dataset``, a ``DataLoader`` or
            any iterable of batches (:mod:`cogdsl.training.user_data` lists the forms a batch may take).
        eval_data: the data the periodic evaluations score (same forms); without it, a run on ``data``
            evaluates on the spec's task if it names one, else not at all.
        tensorboard: write TensorBoard event files into the run folder.
        detect_anomaly: when a step's loss or gradient is not finite, name the block where the NaN or inf
            started (:mod:`cogdsl.training.anomaly`; slower: for debugging).
        compile: run the time step through ``torch.compile``: True, or a mode such as ``"reduce-overhead"``
            (:mod:`cogdsl.training.compiled`).
        settings: overrides of the train section: ``steps``, ``batch``, ``lr``, ``seed``, ``eval_every`` ...

    Raises:
        UsageError: the output folder exists and neither ``resume`` nor ``force`` is given,
            there is nothing to resume, a bad device or setting.
        CheckpointError: no checkpoint to resume reads whole, or it is from another architecture.
        SpecError: the spec (or its train section) has errors.
    Nothing in the output folder is touched before every check has passed.
    """
    from cogdsl.compiler.pipeline import read_spec_file, validate_spec
    from cogdsl.training import distributed, preload

    preload.load_all()  # one version of the code to the end, whatever happens to the checkout meanwhile
    if not isinstance(spec, Spec):
        spec = read_spec_file(spec)
        validate_spec(spec)  # shapes are checked when the model is compiled for its task or data
    if config is None:
        if spec.train is None and data is None:
            raise UsageError(f"{spec.file} has no train section (spec '{spec.name}'): name a task in one, or pass "
                             "your own data: cogdsl.train(spec, data=...)")
        config = default_config(spec) if spec.train is None else config_from_spec(spec)
    config = _apply_settings(config, settings)
    compile_mode(compile)  # a bad mode is refused before anything starts
    if max_minutes is not None and not max_minutes > 0:
        raise UsageError(f"--max-minutes must be a positive number of minutes, got {max_minutes}")
    place, run_device = distributed.start(str(device) if isinstance(device, torch.device) else device)
    finished = False
    try:
        result = _train(spec, config, out_dir, resume=resume, force=force, progress=progress and place.is_main,
                        max_minutes=max_minutes, device=run_device, place=place, data=data, eval_data=eval_data,
                        tensorboard=tensorboard, detect_anomaly=detect_anomaly, compile=compile)
        finished = True
        return result
    finally:
        distributed.stop(place, clean=finished)


def default_config(spec: Spec) -> TrainConfig:
    """The settings of a run on your own data when the spec has no ``train:`` section: every default."""
    defaults = {p.name: p.default for p in OPTIMIZERS["rmsprop"]}
    return TrainConfig(task="", task_params={}, optimizer="rmsprop", optimizer_params=defaults)


def _train(spec: Spec, config: TrainConfig, out_dir: str | Path | None, *, resume: bool, force: bool,
           progress: bool, max_minutes: float | None, device: torch.device, place: Any, data: Any,
           eval_data: Any, tensorboard: bool, detect_anomaly: bool = False,
           compile: bool | str = False) -> TrainResult:
    from cogdsl.compiler.pipeline import compile_spec
    from cogdsl.language.emit import to_yaml
    from cogdsl.training import distributed
    from cogdsl.training.anomaly import AnomalyWatch
    from cogdsl.training.streams import TaskStream, rank_seed
    from cogdsl.training.tracking import Tracker
    from cogdsl.training.user_data import DataStream, DataTask
    from cogdsl.viz.curves import plot_learning_curve

    main = place.is_main
    out = Path(out_dir) if out_dir is not None else Path("runs") / spec.name
    check_run_dir(out, resume=resume, force=force)
    cpu_started = time.process_time()

    # The checkpoint to resume: rank 0 picks the newest whole one, every process reads that one.
    checkpoint: Checkpoint | None = None
    if resume:
        chosen = None
        if main:
            checkpoint, damaged = load_resumable(out)
            for path, reason in damaged:
                print(f"warning: {path} is damaged ({reason}); it is kept as {set_aside(path).name} and the run "
                      f"resumes from {checkpoint.path.name}", file=sys.stderr)
            chosen = str(checkpoint.path)
        chosen = distributed.from_main(chosen, place)
        if checkpoint is None:
            checkpoint = load_checkpoint(chosen)
    saved_task_state = checkpoint.meta.get("task_state") if checkpoint is not None else None
    share = distributed.local_batch(config.batch, place)
    seed = rank_seed(config.seed, place.rank)

    named = build_task(config, spec, saved_task_state) if config.task else None
    if named is not None and named.reads_files:  # the run folder's spec.yaml reads the same files from anywhere
        config = dataclasses.replace(config, task_params=dict(named.shown_params()))
    task: Task
    if data is not None or eval_data is not None or named is None:
        # One shuffle of a Dataset for every process (the run's seed), each taking its own share of it.
        task = DataTask(spec, data=data, eval_data=eval_data, task=named, batch=share, seed=config.seed,
                        rank=place.rank, world=place.world)
    else:
        task = named
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    model = compile_model(compile_spec(spec, task=task).to(device), compile)
    task.follow_model(model)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(parameters, config)
    stream: Any = DataStream(task, device) if data is not None else TaskStream(named or task, device, seed)

    step, sequences, seconds, skipped = 0, 0, 0.0, 0
    earlier_cpu: float | None = 0.0
    earlier_seconds = 0.0
    window = {"loss_sum": 0.0, "bits_sum": 0.0, "steps": 0, "sequences": 0}
    last_eval: EvalResult | None = None
    if checkpoint is not None:
        load_model_state(model, checkpoint, spec.name)
        restore_optimizer(optimizer, checkpoint)
        restore_torch_rng(checkpoint)
        meta = checkpoint.meta
        step, sequences = int(meta.get("step", 0)), int(meta.get("sequences", 0))
        seconds = earlier_seconds = float(meta.get("seconds", 0.0))
        earlier_cpu = float(meta["cpu_seconds"]) if isinstance(meta.get("cpu_seconds"), (int, float)) else None
        window.update({k: v for k, v in (meta.get("window") or {}).items() if k in window})
        if meta.get("eval"):
            last_eval = EvalResult(**meta["eval"])
        skipped = int(meta.get("skipped_steps", 0) or 0)
        _restore_stream(stream, checkpoint, place, config.seed, step, main)
        if main:
            _warn_fingerprint(meta, model.spec, checkpoint.path)
    linear = LinearStart(model, config.linear_start, checkpoint.meta.get("linear_start") if checkpoint else None)
    # The task batches are drawn from: the named task, unless the run trains on your data.
    drawn_from = named if named is not None and data is None else task
    curriculum = LengthCurriculum(drawn_from, config.curriculum_start, config.curriculum_every)
    best = BestKeeper(out, config.keep_best, checkpoint.meta.get("best") if checkpoint else None)
    spikes = (SpikeClip(config.clip_spikes, checkpoint.meta.get("spikes") if checkpoint else None)
              if config.clip_spikes > 0 else None)
    trained: torch.nn.Module = model
    first: Batch | None = None
    if place.active:
        if place.rank > 0:  # the model's own draws (dropout, sampling blocks) differ between processes
            torch.manual_seed(rank_seed(config.seed, place.rank))
        first = stream.next(curriculum.task_at(step), share) if step < config.steps else None
        trained = _distributed_model(model, device, first, task)
    # Each process's loss is weighted by its share of the global batch, so the gradient DDP averages
    # is the gradient of the mean over the global batch.
    weight = share * place.world / config.batch

    # Every check has passed: from here on the folder is ours (rank 0's).
    distributed.barrier(place)
    # The spec as trained: every size written (those left to the task or data filled in), so that the run
    # folder's spec.yaml and a checkpoint's spec_yaml compile without the data that gave them.
    spec_yaml = to_yaml(spec_with_config(model.spec, config))
    if main:
        try:
            if force and out.exists():
                shutil.rmtree(out)
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(f"cannot create the output folder {out}: {err.strerror or err}") from None
        atomic_write_text(out / "spec.yaml", spec_yaml)
    log = RunLog(out / "log.csv", keep_through=step if checkpoint is not None else None,
                 columns=log_columns(task.items, task.error_name)) if main else None
    tracker = Tracker(out, enabled=tensorboard and main, purge_step=step + 1 if checkpoint is not None else None)
    curve = out / "learning_curve.png"

    loss_sum = torch.tensor(float(window["loss_sum"]), device=device)
    bits_sum = torch.tensor(float(window["bits_sum"]), device=device)
    window_steps, window_seqs = int(window["steps"]), int(window["sequences"])
    window_seconds = 0.0
    last_saved: Path | None = checkpoint.path if checkpoint is not None else None
    last_saved_step = step if checkpoint is not None else -1
    last_loss: float | None = None
    last_bits: float | None = None

    # What every checkpoint of this run says about where it came from.
    identity = {"model": spec.name, "seed": config.seed, "versions": library_versions(),
                "spec_fingerprint": spec_fingerprint(model.spec), "spec_yaml": spec_yaml,
                "task_state": task.data_state(), "processes": place.world}

    def save(states: list[dict[str, torch.Tensor]] | None) -> Path | None:
        """Checkpoint the run (rank 0) with every process's data-stream state."""
        if not main:
            return None
        meta = {
            **identity, "step": step, "sequences": sequences, "seconds": round(seconds, 3),
            "config": dataclasses.asdict(config), "device": str(device),
            "window": {"loss_sum": float(loss_sum), "bits_sum": float(bits_sum), "steps": window_steps,
                       "sequences": window_seqs},
            "eval": dataclasses.asdict(last_eval) if last_eval is not None else None,
            "stopped": stopped, "linear_start": linear.state(), "best": best.state(), "skipped_steps": skipped,
            "spikes": spikes.state() if spikes is not None else None,
            "cpu_seconds": round((earlier_cpu or 0.0) + time.process_time() - cpu_started, 3),
        }
        path = save_checkpoint(out / CHECKPOINT_DIR / checkpoint_name(step), model=model, optimizer=optimizer,
                               meta=meta, streams=states)
        prune_checkpoints(out, keep=KEEP_CHECKPOINTS, every=config.checkpoint_every)
        return path

    stopped = "done" if step < config.steps else "already done"
    bar = tqdm(total=config.steps, initial=min(step, config.steps), disable=not progress, unit="step",
               desc=spec.name, dynamic_ncols=True, file=sys.stderr)
    if main and progress and device.type != "cpu":
        bar.write(f"training on {describe_device(device)}" + (f", {place.world} processes" if place.active else ""))
    started = time.perf_counter()
    deadline = started + 60.0 * max_minutes if max_minutes is not None else None
    mark = started
    drawn = started  # the first curve after CURVE_SECONDS of training; a shorter run draws it once, at its end
    trained.train()
    try:
        with StopOnSignal(escalate=not place.active) as interrupt, \
                (AnomalyWatch(model) if detect_anomaly else contextlib.nullcontext()) as watch:
            try:
                while step < config.steps:
                    batch: Batch = first if first is not None else stream.next(curriculum.task_at(step), share)
                    first = None
                    set_learning_rate(optimizer, config, step)
                    decisions: list[Decision] | None = [] if getattr(model, "stochastic", None) else None
                    penalties: list[torch.Tensor] | None = [] if getattr(model, "penalized", None) else None
                    logits = _logits(trained, batch, decisions, penalties)  # (B, T, O)
                    loss = task.loss_of(logits, batch)
                    objective = loss if not decisions else loss + reinforce_loss(
                        decisions, rewards(task, logits.detach(), batch, decisions))
                    if penalties:  # summed over steps, averaged over the batch, like the task's loss
                        objective = objective + torch.stack(penalties).sum(0).mean()
                    anomaly: RuntimeError | None = None
                    try:
                        (objective * weight if weight != 1 else objective).backward()
                    except RuntimeError as err:  # torch's anomaly mode stops the backward pass at a NaN
                        if watch is None:
                            raise
                        anomaly = err
                    step += 1
                    if anomaly is None and (not config.skip_nonfinite or _finite_step(loss, parameters, place)):
                        apply_gradients(parameters, optimizer, config, spikes)
                        with torch.no_grad():
                            loss_sum += loss.detach()
                            bits_sum += task.errors(logits.detach(), batch).sum()
                        window_steps += 1
                        window_seqs += batch.batch_size
                    else:  # never applied: the weights, the optimizer's state and the checkpoints stay finite
                        optimizer.zero_grad(set_to_none=True)
                        skipped += 1
                        if main and (skipped <= SKIPS_SHOWN or watch is not None):
                            where = f": {watch.report(anomaly)}" if watch is not None else (
                                "; --detect-anomaly names the block where it starts")
                            more = "" if skipped < SKIPS_SHOWN or watch is not None else " (no more of these lines)"
                            bar.write(f"step {step}: the loss or a gradient is not finite (NaN or inf): step skipped, "
                                      f"{skipped} so far{where}{more}", file=sys.stderr)
                    if watch is not None:
                        watch.reset()
                    if linear.active and linear.after_step(step) and main:
                        bar.write(f"step {step}: {linear.ended}")
                    if main and curriculum.active and step == curriculum.reached_at() and step > 0:
                        bar.write(f"step {step}: curriculum reached the task's full range "
                                  f"(longest length {curriculum.longest})")

                    scheduled = (step % config.log_every == 0 or step % config.eval_every == 0
                                 or step % config.checkpoint_every == 0 or step >= config.steps)
                    # One process decides alone; several agree, every few steps, so that all stop together.
                    if not place.active or scheduled or step % AGREE_EVERY == 0:
                        late = deadline is not None and time.perf_counter() >= deadline
                        requested, late = distributed.any_process([interrupt.requested, late], place, device)
                        if requested:
                            stopped = "interrupted"
                        elif late:
                            stopped = "time"
                    final = step >= config.steps or stopped != "done"
                    do_eval = step % config.eval_every == 0 or (final and stopped != "interrupted")
                    do_save = step % config.checkpoint_every == 0 or final
                    do_log = step % config.log_every == 0 or do_eval or do_save
                    if not do_log:
                        continue
                    now = time.perf_counter()
                    seconds += now - mark
                    window_seconds += now - mark
                    totals = distributed.sum_over_processes(torch.stack([
                        loss_sum, bits_sum, torch.tensor(float(window_seqs), device=device)]), place)
                    window_total = round(float(totals[2]))
                    sequences += window_total
                    last_loss = float(totals[0]) / max(window_steps, 1) / place.world
                    last_bits = float(totals[1]) / max(window_total, 1)
                    rate = window_total / window_seconds if window_seconds > 0 else None
                    evaluation = None
                    if do_eval:
                        if main and task.can_evaluate:
                            evaluation = evaluate(model, task, sequences=config.eval_size, seed=EVAL_SEED,
                                                  split="valid")
                            last_eval = evaluation
                        eval_loss = distributed.from_main(evaluation.loss if evaluation else None, place)
                        # Only the scheduled evaluations: a run stopped and resumed must end
                        # linear start where an uninterrupted run would.
                        on_schedule = step % config.eval_every == 0
                        if (linear.active and on_schedule and eval_loss is not None
                                and linear.after_evaluation(eval_loss, step) and main):
                            bar.write(f"step {step}: {linear.ended}")
                        if on_schedule and evaluation is not None:
                            best.after_evaluation(model, evaluation, step, identity)
                    if log is not None:
                        log.row(step=step, sequences=sequences, seconds=seconds, loss=last_loss, bit_errors=last_bits,
                                seq_per_sec=rate, eval_loss=evaluation.loss if evaluation else None,
                                eval_bit_errors=evaluation.bit_errors if evaluation else None, skipped=skipped)
                    _track(tracker, step, task, last_loss, last_bits, rate, optimizer, evaluation, model, skipped)
                    loss_sum.zero_()
                    bits_sum.zero_()
                    window_steps = window_seqs = 0
                    window_seconds = 0.0
                    bar.set_postfix_str(f"loss={last_loss:.3g}, {_short(task)}={last_bits:.3g}", refresh=False)
                    bar.update(step - bar.n)
                    if evaluation is not None:
                        bar.write(f"step {step}: evaluation: {evaluation.describe(spec.name)}")
                        if main and time.perf_counter() - drawn >= CURVE_SECONDS:
                            plot_learning_curve(out / "log.csv", curve, title=f"{spec.name} learning curve")
                            drawn = time.perf_counter()
                    if do_save:
                        states = distributed.gather_to_main(stream.state(), place)
                        last_saved, last_saved_step = save(states) or last_saved, step
                    mark = time.perf_counter()
                    if final:
                        break
            except KeyboardInterrupt:
                # A second signal (or Ctrl-C outside the main thread): keep what the completed steps did.
                # Several processes cannot agree any more: rank 0 saves its own data stream only.
                stopped = "interrupted"
                optimizer.zero_grad(set_to_none=True)
                seconds += time.perf_counter() - mark
                if window_steps and log is not None:
                    last_loss = float(loss_sum) / window_steps
                    last_bits = float(bits_sum) / max(window_seqs, 1)
                    sequences += window_seqs * place.world
                    log.row(step=step, sequences=sequences, seconds=seconds, loss=last_loss, bit_errors=last_bits,
                            skipped=skipped)
                    loss_sum.zero_()
                    bits_sum.zero_()
                    window_steps = window_seqs = 0
                if step != last_saved_step and step > 0:
                    last_saved, last_saved_step = save([stream.state()]) or last_saved, step
    finally:
        bar.close()
        if log is not None:
            log.close()
        tracker.close()
    if main and (stopped != "already done" or not curve.exists()):
        plot_learning_curve(out / "log.csv", curve, title=f"{spec.name} learning curve")
    return TrainResult(out_dir=out, model=model, config=config, step=step, sequences=sequences, seconds=seconds,
                       loss=last_loss, bit_errors=last_bits, eval=last_eval, checkpoint=last_saved, stopped=stopped,
                       best=best.path if best.enabled and best.path.exists() else None, device=str(device),
                       processes=place.world, signal=interrupt.signal_name if stopped == "interrupted" else None,
                       earlier_cpu_seconds=earlier_cpu,
                       earlier_seconds=earlier_seconds,
                       skipped=skipped)


def _distributed_model(model: torch.nn.Module, device: torch.device, batch: Batch | None,
                       task: Task) -> torch.nn.Module:
    """``model`` wrapped in DistributedDataParallel. Whether some parameters get no gradient in a step (which
    DDP must be told, at a cost on every step) is found by one backward pass on the first batch, whose
    gradients are then dropped."""
    from torch.nn.parallel import DistributedDataParallel

    unused = True
    if batch is not None:
        decisions: list[Decision] | None = [] if getattr(model, "stochastic", None) else None
        penalties: list[torch.Tensor] | None = [] if getattr(model, "penalized", None) else None
        logits = _logits(model, batch, decisions, penalties)
        objective = task.loss_of(logits, batch)
        if penalties:
            objective = objective + torch.stack(penalties).sum(0).mean()
        objective.backward()
        unused = any(p.grad is None for p in model.parameters() if p.requires_grad)
        model.zero_grad(set_to_none=True)
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=unused)


SKIPS_SHOWN = 5
"""How many skipped steps a run reports one by one (all of them are counted, in log.csv's skipped_steps)."""


def _finite_step(loss: torch.Tensor, parameters: list[torch.nn.Parameter], place: Any) -> bool:
    """Whether a step's loss and every gradient are finite. Several processes decide on the gradients alone,
    which DistributedDataParallel made the same in every process, so that all skip or none does. One read
    of a flag: on a GPU, the one synchronisation of a step (``skip_nonfinite: false`` has none)."""
    flags = [torch.isfinite(p.grad).all() for p in parameters if p.grad is not None]
    if not place.active:
        flags.append(torch.isfinite(loss.detach()).all())
    return bool(torch.stack(flags).all()) if flags else True


AGREE_EVERY = 10
"""Under torchrun, the processes agree whether to stop (a signal, --max-minutes) at least every this many steps."""


def _short(task: Task) -> str:
    return "error" if task.error_rate else "bits" if task.error_name == "bit_errors" else "errors"


def _restore_stream(stream: Any, checkpoint: Checkpoint, place: Any, seed: int, step: int, main: bool) -> None:
    """Continue this process's data stream from the checkpoint; when that cannot be (another number of
    processes, a stream saved on another kind of device), start a fresh one from the seed and the step."""
    from cogdsl.training.streams import rank_seed

    states = stream_states(checkpoint)
    why = None
    if len(states) != place.world:
        why = f"it was saved by {len(states)} process(es) and this run has {place.world}"
    else:
        try:
            stream.restore(states[place.rank])
        except (RuntimeError, KeyError, ValueError) as err:
            why = f"its data stream cannot continue here ({str(err).splitlines()[0]})"
    if why is None:
        return
    fresh = rank_seed(seed + 7919 * step, place.rank)
    stream.reseed(fresh)
    if main:
        print(f"warning: {checkpoint.path.name}: {why}; the training data continue from a fresh stream "
              f"(seed {seed}, step {step})", file=sys.stderr)


def _track(tracker: Any, step: int, task: Task, loss: float | None, errors: float | None, rate: float | None,
           optimizer: torch.optim.Optimizer, evaluation: EvalResult | None, model: torch.nn.Module,
           skipped: int = 0) -> None:
    """The log row's numbers, and an evaluation's, as TensorBoard scalars; a picture of the model at work."""
    if tracker.writer is None:
        return
    per_second = "seq_per_sec" if task.items == "sequences" else f"{task.items}_per_sec"
    tracker.scalars(step, "train", {"loss": loss, task.error_name: errors, per_second: rate,
                                    "lr": float(optimizer.param_groups[0]["lr"]), "skipped_steps": skipped})
    if evaluation is None:
        return
    valid_errors = 1.0 - evaluation.perfect if task.error_rate else evaluation.bit_errors
    tracker.scalars(step, "valid", {"loss": evaluation.loss, task.error_name: valid_errors,
                                    "perfect": evaluation.perfect, **evaluation.metrics})
    if can_plot_weightings(model, task):
        from cogdsl.viz.curves import plot_weightings

        def draw(path: Path) -> None:
            length = eval_length(task)
            sample = task.sample(1, torch.Generator().manual_seed(EVAL_SEED), length=length)
            plot_weightings(model, sample.inputs, path, targets=sample.targets, title=f"step {step}")

        tracker.picture(step, "valid/weightings", draw)
    tracker.flush()


def asks_for_best(spec: Spec) -> bool:
    """Whether the spec's train section itself writes ``keep_best: true``. The example tables score a run's
    last weights unless the spec (or their ``--keep-best``) asks for the best validation's, as they did when
    their documented numbers were measured, before ``keep_best`` was on by default."""
    entries = spec.train.data if spec.train is not None and isinstance(spec.train.data, dict) else {}
    value = entries.get("keep_best")
    return value is not None and value.data is True


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


def check_seed(value: int | None) -> None:
    """``--seed``: a whole number from 0 to 2**63 - 1 (what torch's generators and the data streams take)."""
    from cogdsl.training.config import MAX_SEED

    if value is not None and not 0 <= value <= MAX_SEED:
        raise UsageError(f"--seed must be from 0 to 2**63 - 1 ({MAX_SEED}), got {value}")


def set_threads(threads: int | None, option: str = "--threads") -> None:
    """``--threads N``: N CPU threads for torch; 0 leaves torch's default (one per core), as in ``train:``."""
    if threads is None:
        return
    _check_positive(option, threads, 0)
    if threads > 0:
        torch.set_num_threads(threads)


def _saved_config(out: Path) -> TrainConfig | None:
    """The config the run in ``out`` was trained with (from its newest readable checkpoint), if there is one."""
    from cogdsl.errors import CheckpointError
    from cogdsl.training.checkpoints import list_checkpoints

    for path in reversed(list_checkpoints(out) if out.is_dir() else []):
        try:
            saved = read_checkpoint_meta(path).get("config")
        except CheckpointError:
            continue  # a damaged checkpoint: train() falls back past it and says so
        if not isinstance(saved, dict):
            return None
        try:
            return TrainConfig(**saved)
        except TypeError:
            return None
    return None


def train_command(args: Any) -> int:
    """``cogdsl train SPEC [--steps N --batch B --lr LR --seed S --threads T --device D --out DIR
    --resume|--force --max-minutes M --no-progress --no-tensorboard]``; 0 when done, 130 when stopped by
    Ctrl-C or SIGTERM.

    With ``--resume`` the run's own settings (from its checkpoint) are the base that the
    command-line overrides change, so ``--resume`` alone continues the run as it was started.
    """
    from cogdsl.compiler.pipeline import read_spec_file, validate_spec

    _check_positive("--steps", args.steps)
    _check_positive("--batch", args.batch)
    check_seed(args.seed)
    _check_positive("--threads", args.threads, 0)
    if args.lr is not None and not (args.lr > 0 and math.isfinite(args.lr)):
        raise UsageError(f"--lr must be a positive number, got {args.lr:g}")
    if args.max_minutes is not None and not (args.max_minutes > 0 and math.isfinite(args.max_minutes)):
        raise UsageError(f"--max-minutes must be a positive number of minutes, got {args.max_minutes:g}")
    spec = read_spec_file(args.spec)
    validate_spec(spec)
    if getattr(args, "set", None):  # --set PATH=VALUE: the spec as a sweep's trial changes it
        from cogdsl.sweep.settings import spec_with_sets

        spec = spec_with_sets(spec, args.set)
    base = config_from_spec(spec, args.spec)
    out = Path(args.out) if args.out else Path("runs") / spec.name
    if getattr(args, "auto_resume", False):
        if args.resume or args.force:
            raise UsageError("--auto-resume decides for itself; leave out --resume and --force")
        from cogdsl.training.checkpoints import list_checkpoints
        from cogdsl.training.run_folder import looks_like_run

        args.resume = bool(list_checkpoints(out))
        # A run killed before its first checkpoint left only its log: start it again.
        args.force = not args.resume and out.is_dir() and looks_like_run(out)
    if args.resume and not args.force:
        base = _saved_config(out) or base
    config = base.with_overrides(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, threads=args.threads,
                                 keep_best=True if getattr(args, "keep_best", False) else None)
    result = train(spec, config, out, resume=args.resume, force=args.force, progress=not args.no_progress,
                   max_minutes=args.max_minutes, device=args.device, tensorboard=not args.no_tensorboard,
                   detect_anomaly=getattr(args, "detect_anomaly", False),
                   compile=getattr(args, "compile", None) or False)
    from cogdsl.training.distributed import from_environment

    if from_environment().is_main:
        # With --set the spec file is not the spec trained: the run folder's spec.yaml is.
        shown = out / "spec.yaml" if getattr(args, "set", None) else args.spec
        print(describe_result(spec.name, result, max_minutes=args.max_minutes, spec_path=shown))
    return 130 if result.interrupted else 0


def describe_result(name: str, result: TrainResult, max_minutes: float | None = None,
                    spec_path: str | Path | None = None) -> str:
    """A few lines for the end of ``cogdsl train``; ``spec_path`` goes into the command that continues the run."""
    config = result.config
    unit = result.eval.unit if result.eval is not None else "bit errors"
    items = result.eval.items if result.eval is not None else "sequences"
    if result.stopped == "already done":
        lines = [f"{name}: the run in {result.out_dir} is already at step {result.step} of {config.steps}; "
                 "pass --steps with a larger number to train further"]
    else:
        rate = f", {result.sequences / result.seconds:,.0f} {items}/s" if result.seconds > 0 else ""
        why = {"done": "", "time": f"; stopped after --max-minutes {max_minutes:g}" if max_minutes else "; time is up",
               "interrupted": f"; stopped by {_SIGNALS.get(result.signal or '', 'a signal')}"}[result.stopped]
        where = f" on {result.device}" if result.device != "cpu" else ""
        where += f" in {result.processes} processes" if result.processes > 1 else ""
        lines = [f"{name}: step {result.step} of {config.steps} ({result.sequences:,} {items} in "
                 f"{result.seconds:,.0f} s{rate}{where}){why}"]
        if result.loss is not None and result.bit_errors is not None:
            if result.eval is not None and result.eval.error_rate:
                errors = f"error rate {100 * result.bit_errors:.1f}%"
            else:
                errors = f"{_num(result.bit_errors)} {unit} per sequence"
            lines.append(f"  last training steps: loss {_num(result.loss)}, {errors}")
    if result.skipped:
        lines.append(f"  {result.skipped} step(s) skipped: their loss or a gradient was not finite (NaN or inf); "
                     "--detect-anomaly names the block where it starts")
    if result.eval is not None:
        lines.append(f"  last evaluation: {result.eval.describe(name)}")
    files = ["log.csv", "learning_curve.png"]
    if result.checkpoint is not None:
        files.append(os.path.relpath(result.checkpoint, result.out_dir))
    if result.best is not None:
        files.append(os.path.relpath(result.best, result.out_dir))
    lines.append(f"  run folder: {result.out_dir} ({', '.join(files)})")
    shown = _quoted(spec_path) if spec_path is not None else "SPEC"
    if result.best is not None:
        best = read_checkpoint_meta(result.best)
        lines.append(f"  best evaluation (kept): step {best.get('step')}, validation loss "
                     f"{_num(float(best['eval']['loss']))}; evaluate it with: cogdsl eval {shown} "
                     f"{_quoted(result.best)}")
    if result.stopped in ("time", "interrupted"):
        again = ("torchrun [the same torchrun options] -m cogdsl train" if result.processes > 1
                 else "cogdsl train")
        lines.append(f"  continue with: {again} {shown} --out {_quoted(result.out_dir)} --resume")
    return "\n".join(lines)


_SIGNALS = {"SIGINT": "Ctrl-C", "SIGTERM": "SIGTERM", "": "Ctrl-C"}


def _quoted(path: str | Path) -> str:
    import shlex

    return shlex.quote(str(path))


def can_plot_weightings(model: torch.nn.Module, task: Task) -> bool:
    """Whether head weightings over one sequence can be drawn (``eval --plot``, TensorBoard): not for QA
    models, sequence-to-sequence models or models that look at images (``cogdsl trace`` draws those)."""
    kinds = task.input_kinds
    return not getattr(model, "read_memory", None) and "sequence" not in kinds and "image" not in kinds


def load_trained(spec_path: str, checkpoint_path: str, length: int | None = None,
                 device: str | torch.device = "cpu", need_task: bool = True, compile: bool | str | None = None
                 ) -> tuple[Spec, Task | None, torch.nn.Module, Checkpoint]:
    """The spec, its training task, the compiled model with the checkpoint's weights on ``device``, and the
    checkpoint.

    The task reads what it derived from data when it trained (a vocabulary) from the checkpoint, so a
    model trained on data files is evaluated with the word ids it learned. With ``need_task`` false (``cogdsl
    predict`` on sequence files) a spec that names no task is fine: the task is None, and sizes the spec
    leaves to the data are the checkpoint's (the spec it saved has every size written). For the commands
    that read a trained run (``eval``, ``trace``, ``predict``): every problem (a bad spec, no task where one
    is needed, ``length`` below the task's minimum, a missing, corrupt or foreign checkpoint) is a user
    error, never a traceback. A checkpoint loads on any device, whatever device it was saved on.
    ``compile``: the model's step compiled (:mod:`cogdsl.training.compiled`).
    """
    from cogdsl.compiler.pipeline import compile_spec, read_spec_file, validate_spec
    from cogdsl.compiler.task_sizes import leaves_sizes, sizes_from
    from cogdsl.training.devices import resolve_device

    run_device = resolve_device(device)
    compile_mode(compile)
    spec = read_spec_file(spec_path)
    validate_spec(spec)
    config = config_from_spec(spec, spec_path) if spec.train is not None or need_task else None
    if need_task and (config is None or not config.task):
        raise UsageError(f"{spec_path} names no task (a model trained on your own data from Python): this command "
                         "scores or draws it on a task's data; name one in its train section, or use cogdsl "
                         "predict on your files")
    checkpoint = load_checkpoint(checkpoint_path)
    task = build_task(config, spec, checkpoint.meta.get("task_state")) if config is not None and config.task else None
    if length is not None:
        problem = test_length_problem(task, length) if task is not None else "no task, so no sequence lengths"
        if problem is not None:
            leave = "; leave --len out" if task is None or task.length_params is None else ""
            raise UsageError(f"--len {length}: {problem}{leave}")
    if task is None and leaves_sizes(spec):
        spec = sizes_from(spec, checkpoint.meta.get("spec_yaml"), checkpoint.path)
    model = compile_spec(spec, task=task)
    load_model_state(model, checkpoint, spec.name)
    _warn_fingerprint(checkpoint.meta, model.spec, checkpoint.path)
    if task is not None:
        task.follow_model(model)
    return spec, task, compile_model(model.to(run_device), compile), checkpoint


def eval_command(args: Any) -> int:
    """``cogdsl eval SPEC CHECKPOINT [--len L --sequences N --seed S --split S --plot PNG --force --device D
    --threads T]``: errors per sequence (or the error rate of questions) on fresh sequences or a split (test)."""

    check_sequences("--sequences", args.sequences)
    check_seed(args.seed)
    set_threads(args.threads)
    plot = Path(args.plot) if args.plot else None
    if plot is not None:
        if plot.suffix.lower() != ".png":
            raise UsageError(f"--plot {plot}: the plot is a PNG; give a file name ending in .png")
        if not plot.parent.is_dir():
            raise UsageError(f"--plot {plot}: no such folder {plot.parent}")
        if plot.exists() and not args.force:
            raise UsageError(f"--plot {plot} exists; pass --force to overwrite it")
    spec, task, model, checkpoint = load_trained(args.spec, args.checkpoint, args.length, args.device,
                                                 compile=getattr(args, "compile", None))
    assert task is not None  # load_trained needs one here
    if plot is not None and getattr(model, "read_memory", None):
        raise UsageError(f"--plot draws head weightings over a sequence; for {spec.name}, a QA model, draw each "
                         "hop's attention with: cogdsl trace SPEC CHECKPOINT --question N")
    if plot is not None and "sequence" in task.input_kinds:
        raise UsageError(f"--plot draws head weightings over a sequence; for {spec.name}, a sequence-to-sequence "
                         "model, draw its alignment with: cogdsl trace SPEC CHECKPOINT --len L")
    if plot is not None and "image" in task.input_kinds:
        raise UsageError(f"--plot draws head weightings over a sequence; for {spec.name}, a model that looks at "
                         "images, draw where it looked with: cogdsl trace SPEC CHECKPOINT")
    split = getattr(args, "split", "test")
    result = evaluate(model, task, length=args.length, sequences=args.sequences, seed=args.seed, split=split)
    described = result.describe(spec.name)
    print(described + (", on the validation split" if split != "test" and f"{split} " not in described else ""))
    if plot is not None:
        from cogdsl.viz.curves import plot_weightings

        sample = task.sample(1, torch.Generator().manual_seed(args.seed), length=result.length)
        at = f" at length {result.length}" if result.length is not None else ""
        try:
            plot_weightings(model, sample.inputs, plot, targets=sample.targets,
                            title=f"{spec.name}{at}, step {checkpoint.step}")
        except OSError as err:
            raise UsageError(f"--plot {plot}: cannot write it: {err.strerror or err}") from None
        print(f"wrote {plot}", file=sys.stderr)
    return 0


class _CallableModule(types.ModuleType):
    """``cogdsl.train`` is this module and, called, :func:`train`: ``cogdsl.train(spec, steps=...)`` trains, and
    ``from cogdsl.training.loop import evaluate`` keeps working."""

    def __call__(self, *args: Any, **kwargs: Any) -> TrainResult:
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
