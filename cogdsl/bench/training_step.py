"""The training step: a spec compiled by :func:`cogdsl.compile`, trained as ``cogdsl train`` trains it.

The spec's task, loss, gradient clipping and optimizer: the forward over one batch of sequences alone, and one
whole step (forward, loss, backward, clip, optimizer step). Paths: ``triton`` (backend ``auto``, CUDA only),
``eager`` (cogdsl's ``torch`` backend) and ``compiled-reference`` (``torch.compile`` of the model's time step,
``CompiledModel.step``, one graph reused for every step: compiling the whole unrolled sequence takes minutes).

GB/s: the memory step's bytes only, T times the memory step's (:func:`memory_step_bytes`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch

from cogdsl.bench.harness import (
    COMPILED_REFERENCE,
    COMPILED_TRITON,
    EAGER,
    TRITON,
    Row,
    Runner,
    Section,
    Timing,
    fill_row,
    first_call,
    free,
    median_ms,
    quiet_compile,
    record_compile,
)
from cogdsl.bench.memory_step import memory_step_bytes
from cogdsl.errors import UsageError
from cogdsl.language.spec import Block, Spec, Value

if TYPE_CHECKING:
    from cogdsl.bench.command import BenchOptions
    from cogdsl.tasks import Task
    from cogdsl.training.config import TrainConfig

TRAINING_STEP = "training step"


def memory_sizes(spec: Spec) -> list[tuple[int, int]]:
    """(slots, width) of each memory block of the spec (a block with slots and a width)."""
    return [(int(b.params["slots"].data), int(b.params["width"].data)) for b in spec.blocks if _is_memory(b)]


def _is_memory(block: Block) -> bool:
    return "slots" in block.params and "width" in block.params


def spec_with_slots(spec: Spec, slots: int) -> Spec:
    """The spec with every memory block's slot count set to ``slots``."""
    blocks = tuple(
        dataclasses.replace(b, params={**b.params, "slots": Value(slots)}) if _is_memory(b) else b
        for b in spec.blocks
    )
    return dataclasses.replace(spec, blocks=blocks)


@dataclass
class _TrainingSetup:
    """The spec, its train: section and task, and the sequence length to sample (None: the task draws one)."""

    spec: Spec
    config: TrainConfig
    task: Task
    length: int | None


def _training_setup(options: BenchOptions) -> _TrainingSetup:
    """Load the spec and its train: section and build its task; every user error is raised here, before timing."""
    import cogdsl
    from cogdsl.tasks import make_task
    from cogdsl.training.loop import config_from_spec, eval_length

    spec = cogdsl.load(options.spec)
    config = config_from_spec(spec, options.spec)
    task = make_task(config.task, **config.task_params)
    if options.length is not None and options.length < task.min_length:
        raise UsageError(f"--len must be at least {task.min_length} for task {task.name}, got {options.length}")
    if options.train_slots is not None and not memory_sizes(spec):
        raise UsageError(f"{options.spec}: spec '{spec.name}' has no memory block, so --train-slots has no slots "
                         "to set")
    cogdsl.compile(spec)  # a spec that does not compile fails now, not after the memory step's timings
    return _TrainingSetup(spec, config, task, options.length if options.length is not None else eval_length(task))


def _time_training_step(path: str, setup: _TrainingSetup, spec: Spec, row: Row, *, batch: int, timing: Timing,
                        device: torch.device) -> None:
    """Fill ``row`` with one training step's times on ``path`` (as ``cogdsl train`` runs a step)."""
    import cogdsl
    from cogdsl import ops
    from cogdsl.tasks import sequence_loss
    from cogdsl.training.loop import _logits, apply_gradients, build_optimizer

    config = setup.config
    torch.manual_seed(config.seed)
    model = cogdsl.compile(spec).to(device)
    model.train()
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(parameters, config)
    data = setup.task.sample(batch, torch.Generator().manual_seed(config.seed), length=setup.length).to(device)
    if path in (COMPILED_REFERENCE, COMPILED_TRITON):  # what --compile does: one step's graph, reused T times
        model.compile_step()
    run = model
    backend = {TRITON: "auto", EAGER: "torch", COMPILED_REFERENCE: "torch", COMPILED_TRITON: "auto"}[path]

    def forward() -> None:
        with torch.no_grad(), ops.use_backend(backend):
            _logits(run, data)

    def step() -> None:
        with ops.use_backend(backend):
            loss = sequence_loss(_logits(run, data), data)
            loss.backward()
        apply_gradients(parameters, optimizer, config)

    compiled = path in (COMPILED_REFERENCE, COMPILED_TRITON)
    with quiet_compile() if compiled else contextlib.nullcontext():
        if compiled:
            record_compile(row, first_call(forward, device) + first_call(step, device))
        row.ms_forward = median_ms(forward, timing, device)
        row.ms_forward_backward = median_ms(step, timing, device)


def bench_training_step(options: BenchOptions, setup: _TrainingSetup, device: torch.device, *, timing: Timing,
                        progress: Callable[[str], None]) -> list[Row]:
    """One row per (memory size, path): the forward over a batch of sequences and one whole training step."""
    paths = [EAGER] + ([COMPILED_REFERENCE] if options.compile else [])
    if device.type == "cuda":
        paths[:0] = [TRITON] + ([COMPILED_TRITON] if options.compile else [])
    specs = [spec_with_slots(setup.spec, n) for n in options.train_slots] if options.train_slots else [setup.spec]
    steps = setup.task.sample(1, torch.Generator().manual_seed(0), length=setup.length).steps
    rows: list[Row] = []
    for spec in specs:
        sizes = memory_sizes(spec)
        slots = sizes[0][0] if sizes else 0
        width = sizes[0][1] if sizes else 0
        moved = [sum(memory_step_bytes(options.batch, n, w)[i] for n, w in sizes) * steps for i in (0, 1)]
        for path in paths:
            progress(f"training step, N={slots}: {path}")
            row = Row(TRAINING_STEP, path, options.batch, slots, width, steps, *moved)
            fill_row(row, partial(_time_training_step, path, setup, spec, row, batch=options.batch, timing=timing,
                                  device=device))
            rows.append(row)
            free(device)
    return rows


def _prepare(options: BenchOptions) -> tuple[Runner, str]:
    """Load the spec before anything is timed; the section's run with it, and the model's name."""
    setup = _training_setup(options)

    def run(options: BenchOptions, device: torch.device, *, timing: Timing,
            progress: Callable[[str], None]) -> list[Row]:
        return bench_training_step(options, setup, device, timing=timing, progress=progress)

    return run, setup.spec.name


def _run(options: BenchOptions, device: torch.device, *, timing: Timing,
         progress: Callable[[str], None]) -> list[Row]:
    return _prepare(options)[0](options, device, timing=timing, progress=progress)


def _title(first: Row, model: str | None) -> str:
    memory = f"W={first.width}" if first.width else "no memory"
    return f"training step: {model}, B={first.batch}, T={first.steps} time steps, {memory}, float32"


SECTION = Section(
    name=TRAINING_STEP,
    run=_run,
    title=_title,
    times=("ms fwd: forward over the sequence under no_grad; ms fwd+bwd: one whole training step "
           "(forward, loss, backward, clip, optimizer step)"),
    bytes_note=("GB/s: the memory step's bytes only, T x the memory step's (fwd 2·B·N·W·4, fwd+bwd 5·B·N·W·4), "
                "M read once and written once per time step; the controller's traffic is not counted"),
    path_notes={
        TRITON: "backend auto: the Triton kernels where cogdsl has one, the torch backend elsewhere",
        EAGER: "cogdsl's torch backend",
        COMPILED_REFERENCE: "--compile on cogdsl's torch backend: torch.compile of the model's time step",
        COMPILED_TRITON: "--compile with the Triton kernels: the step compiled around the kernels' custom ops",
    },
    prepare=_prepare,
)
