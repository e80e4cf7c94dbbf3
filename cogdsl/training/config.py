"""The ``train:`` section: its settings declared as data, checked, and resolved to a dataclass.

    train:
      task: {name: copy, bits: 8, min_len: 1, max_len: 20}
      optimizer: {name: rmsprop, lr: 1.0e-4, momentum: 0.9}
      batch: 16
      steps: 50000
      clip: 10          # gradient components clipped to [-clip, clip] (Graves et al. 2014); 0: off
      seed: 0

Gradient clipping is by value, as in the NTM paper; ``clip_norm`` adds a norm clip, ``clip_spikes`` a norm clip
that follows the gradient's recent norms (:mod:`cogdsl.training.spikes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cogdsl.blocks.base import Param, check_params, recode
from cogdsl.errors import NO_SPAN, DiagnosticSink, Span, UsageError, hint_for
from cogdsl.language.spec import Spec, Value
from cogdsl.tasks import TASKS, Task, TaskParamError, make_task

MAX_SEED = 2**63 - 1
"""The largest seed: torch's generators take 64 bits, and each process's data seed is taken mod 2**63."""

SETTINGS: tuple[Param, ...] = (
    Param("batch", int, 16, minimum=1, maximum=65536, doc="sequences per training step"),
    Param("steps", int, 10000, minimum=1, doc="training steps"),
    Param("clip", float, 10.0, minimum=0.0, doc="clip every gradient component to [-clip, clip]; 0 turns it off"),
    Param("clip_norm", float, 0.0, minimum=0.0, doc="also clip the gradient's total norm; 0 turns it off"),
    Param("clip_spikes", float, 0.0, minimum=0.0, maximum=1e6,
          doc="hold the gradient's norm to this many times its running average (about the last 100 steps), "
              "so that an exploding batch moves the weights no more than an ordinary one "
              "(cogdsl/training/spikes.py); 0 turns it off"),
    Param("seed", int, 0, minimum=0, maximum=MAX_SEED, doc="seed for parameters and data"),
    Param("eval_every", int, 500, minimum=1, doc="steps between evaluations"),
    Param("eval_size", int, 256, minimum=1, doc="fresh sequences per evaluation"),
    Param("checkpoint_every", int, 1000, minimum=1, doc="steps between checkpoints"),
    Param("log_every", int, 50, minimum=1, doc="steps between lines of the CSV log"),
    # One thread by default: a recurrent model's per-step ops are too small to split across
    # cores, and a second OpenMP thread that has to wait for a busy core slows every op.
    Param("threads", int, 1, minimum=0, maximum=1024, doc="CPU threads for torch; 0 leaves torch's default"),
    Param("linear_start", int, 0, minimum=0,
          doc="MemN2N linear start: train hops without their softmax for at most this many steps, until the "
              "validation loss stops decreasing; 0 turns it off"),
    Param("lr_decay_every", int, 0, minimum=0, doc="multiply the learning rate by lr_decay every this many steps; "
                                                   "0 keeps it fixed"),
    Param("lr_decay", float, 0.5, minimum=0.0, maximum=1.0, doc="the factor of each learning-rate decay"),
    Param("curriculum_every", int, 0, minimum=0,
          doc="length curriculum: raise the longest length drawn in training by one every this many steps, "
              "up to the task's own; 0 draws the full range from the start"),
    Param("curriculum_start", int, 0, minimum=0,
          doc="the longest length the curriculum starts from (at least the task's shortest)"),
    Param("keep_best", bool, True,
          doc="also keep checkpoints/best.safetensors, the weights of the evaluation with the lowest validation "
              "loss so far (model selection, as the stack-RNN and MemN2N papers pick their runs), so that a run "
              "that gets worse late never costs its best model"),
    Param("skip_nonfinite", bool, True,
          doc="skip a step whose loss or gradient is not finite (NaN, inf): counted and logged, never applied to "
              "the weights; false: no check (one less GPU synchronisation a step)"),
)

OPTIMIZERS: dict[str, tuple[Param, ...]] = {
    # Graves et al. 2014 train with RMSProp, momentum 0.9, lr 1e-4.
    "rmsprop": (Param("lr", float, 1e-4, minimum=0.0), Param("momentum", float, 0.9, minimum=0.0, maximum=1.0),
                Param("alpha", float, 0.95, minimum=0.0, maximum=1.0), Param("eps", float, 1e-10, minimum=0.0),
                Param("weight_decay", float, 0.0, minimum=0.0)),
    "adam": (Param("lr", float, 1e-3, minimum=0.0), Param("beta1", float, 0.9, minimum=0.0, maximum=1.0),
             Param("beta2", float, 0.999, minimum=0.0, maximum=1.0), Param("eps", float, 1e-8, minimum=0.0),
             Param("weight_decay", float, 0.0, minimum=0.0)),
    # Loshchilov & Hutter 2019: the decay is applied to the weights, not added to the gradient.
    "adamw": (Param("lr", float, 1e-3, minimum=0.0), Param("beta1", float, 0.9, minimum=0.0, maximum=1.0),
              Param("beta2", float, 0.999, minimum=0.0, maximum=1.0), Param("eps", float, 1e-8, minimum=0.0),
              Param("weight_decay", float, 0.01, minimum=0.0)),
    "sgd": (Param("lr", float, 1e-2, minimum=0.0), Param("momentum", float, 0.0, minimum=0.0, maximum=1.0),
            Param("weight_decay", float, 0.0, minimum=0.0)),
}


@dataclass(frozen=True)
class TrainConfig:
    task: str
    task_params: dict[str, Any]
    optimizer: str
    optimizer_params: dict[str, Any]
    batch: int = 16
    steps: int = 10000
    clip: float = 10.0
    clip_norm: float = 0.0
    clip_spikes: float = 0.0
    seed: int = 0
    eval_every: int = 500
    eval_size: int = 256
    checkpoint_every: int = 1000
    log_every: int = 50
    threads: int = 1
    linear_start: int = 0
    lr_decay_every: int = 0
    lr_decay: float = 0.5
    curriculum_every: int = 0
    curriculum_start: int = 0
    keep_best: bool = True
    skip_nonfinite: bool = True
    schedule: str = "constant"
    schedule_params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def with_overrides(self, **overrides: Any) -> TrainConfig:
        """A copy with command-line overrides (``lr`` goes to the optimizer) applied; None means keep.

        Raises:
            UsageError: a value outside its setting's declared range (``--batch 100000000``)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        declared = {param.name: param for param in SETTINGS}
        for name, value in values.items():
            param = declared.get(name)
            if param is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if (param.minimum is not None and value < param.minimum) or (
                    param.maximum is not None and value > param.maximum):
                low = "" if param.minimum is None else f"{param.minimum:g} <= "
                high = "" if param.maximum is None else f" <= {param.maximum:g}"
                raise UsageError(f"{name} must be {low}{name}{high}, got {value:g}" if isinstance(value, float)
                                 else f"{name} must be {low}{name}{high}, got {value}")
        optimizer_params = dict(self.optimizer_params)
        if "lr" in values:
            optimizer_params["lr"] = values.pop("lr")
        current = {f: getattr(self, f) for f in self.__dataclass_fields__}
        current.update(values, optimizer_params=optimizer_params)
        return TrainConfig(**current)


def _named_table(value: Value, what: str, sink: DiagnosticSink) -> tuple[str | None, dict[str, Value]]:
    if isinstance(value.data, str):
        return value.data, {}
    if not isinstance(value.data, dict) or "name" not in value.data:
        sink.error("E603", f"'{what}' must name one, e.g. {{name: ...}}", value.span)
        return None, {}
    name = value.data["name"]
    if not isinstance(name.data, str):
        sink.error("E603", f"'{what}' name must be a name, found {name.data!r}", name.span)
        return None, {}
    return name.data, {k: v for k, v in value.data.items() if k != "name"}


def resolve_train(train: Value | None, sink: DiagnosticSink, spec_span: Span = NO_SPAN) -> TrainConfig | None:
    """Check the ``train:`` section, reporting into ``sink``; the resolved config, or None if absent or bad."""
    if train is None:
        return None
    entries: dict[str, Value] = train.data
    before = len(sink.items)
    task_value = entries.get("task")
    task_name: str | None = None
    task_params: dict[str, Any] = {}
    if task_value is None:
        task_name = ""  # settings only: a run on your own data (cogdsl.train(spec, data=...)) names no task
    else:
        task_name, given = _named_table(task_value, "task", sink)
        if task_name is not None and task_name not in TASKS:
            sink.error("E601", f"unknown task '{task_name}'", task_value.span, hint_for(task_name, TASKS, "the tasks"))
            task_name = None
        if task_name is not None:
            task_params = {k: v.plain() for k, v in given.items()}
            try:
                make_task(task_name, **task_params)
            except TaskParamError as err:
                span = task_value.key_span(err.param) if err.param in given else task_value.span
                sink.error("E602", str(err), span)
    opt_value = entries.get("optimizer", Value({"name": Value("rmsprop")}))
    opt_name, opt_given = _named_table(opt_value, "optimizer", sink)
    opt_params: dict[str, Any] = {}
    if opt_name is not None and opt_name not in OPTIMIZERS:
        sink.error("E603", f"unknown optimizer '{opt_name}'", opt_value.span,
                   hint_for(opt_name, OPTIMIZERS, "optimizers"))
    elif opt_name is not None:
        start = len(sink.items)
        opt_params = check_params(OPTIMIZERS[opt_name], opt_given, opt_value.key_span,
                                  f"optimizer {opt_name}", opt_value.span, sink)
        recode(sink, start, "E603")
    schedule_name, schedule_params = _resolve_schedule(entries, train, sink)
    settings = {k: v for k, v in entries.items() if k not in ("task", "optimizer", "schedule")}
    start = len(sink.items)
    resolved = check_params(SETTINGS, settings, train.key_span, "train", train.span, sink)
    recode(sink, start, "E603")
    if "schedule" in entries and resolved.get("lr_decay_every", 0) > 0:
        sink.error("E603", "both a schedule and lr_decay_every: the older setting is the step schedule",
                   train.key_span("lr_decay_every"), "keep one: e.g. schedule: {name: step, every: 1500, factor: 0.5}")
    if len(sink.items) > before or task_name is None or opt_name is None or schedule_name is None:
        return None
    if task_name:
        _check_curriculum(task_name, task_params, resolved, train, sink)
    if len(sink.items) > before:
        return None
    return TrainConfig(task=task_name, task_params=task_params, optimizer=opt_name, optimizer_params=opt_params,
                       schedule=schedule_name, schedule_params=schedule_params, **resolved)


def _resolve_schedule(entries: dict[str, Value], train: Value, sink: DiagnosticSink
                      ) -> tuple[str | None, dict[str, Any]]:
    """The ``schedule:`` table (:mod:`cogdsl.training.schedule`): its name and parameters as given, or
    ``("constant", {})`` without one; None for the name when it has errors (reported into ``sink``)."""
    from cogdsl.training.schedule import SCHEDULES

    value = entries.get("schedule")
    if value is None:
        return "constant", {}
    name, given = _named_table(value, "schedule", sink)
    if name is None:
        return None, {}
    if name not in SCHEDULES:
        sink.error("E603", f"unknown schedule '{name}'", value.span, hint_for(name, SCHEDULES, "schedules"))
        return None, {}
    start = len(sink.items)
    checked = check_params(SCHEDULES[name], given, value.key_span, f"schedule {name}", value.span, sink)
    recode(sink, start, "E603")
    if len(sink.items) > start:
        return None, {}
    return name, {key: checked[key] for key in given}


def _check_curriculum(task_name: str, task_params: dict[str, Any], resolved: dict[str, Any], train: Value,
                      sink: DiagnosticSink) -> None:
    """A curriculum needs a task with a length range, and a start inside that range."""
    if resolved.get("curriculum_every", 0) <= 0:
        return
    task = make_task(task_name, **task_params)
    if task.length_params is None:
        sink.error("E603", f"curriculum_every: task '{task_name}' has no lengths for a curriculum to raise",
                   train.key_span("curriculum_every"), "remove curriculum_every, or train a task with a length range")
        return
    low, high = task.length_params
    shortest, longest = task.length_range()
    if shortest == longest:
        sink.error("E603", f"curriculum_every: the task's lengths are fixed ({low} = {high} = {longest}), so there "
                           "is nothing to raise", train.key_span("curriculum_every"),
                   f"lower {low} to the length the curriculum should start from")
        return
    if resolved.get("curriculum_start", 0) > longest:
        sink.error("E603", f"curriculum_start {resolved['curriculum_start']} is beyond the task's longest length "
                           f"({high} = {longest})", train.key_span("curriculum_start"),
                   f"start at most at {longest}, or raise {high}")


def build_task(config: TrainConfig, spec: Spec | None = None, data_state: dict[str, Any] | None = None) -> Task:
    """The task ``config`` names, told the activation of ``spec``'s output (for tasks whose loss follows it)
    and, from a checkpoint, the data state (a vocabulary) the model was trained with.

    Building a task reads no data file; its sizes (``input_kinds``, ``output_size``) and its batches do.

    Raises:
        UsageError: the config names no task.
    """
    if not config.task:
        raise UsageError("the spec's train section names no task: name one (task: {name: ...}) or, in Python, pass "
                         "your own data with cogdsl.train(spec, data=...)")
    task = make_task(config.task, **config.task_params)
    if spec is not None:
        task.locate(spec_folder(spec))
    if spec is not None and len(spec.outputs) == 1:
        activation = spec.outputs[0].activation
        task.follow_output(str(activation.data) if activation is not None else "none")
    if data_state:
        task.load_data_state(data_state)
    return task


def spec_folder(spec: Spec) -> Path:
    """The folder of the file a spec was read from (the current folder for a spec written in code)."""
    file = Path(spec.file)
    return file.parent if spec.file and not spec.file.startswith("<") else Path.cwd()
