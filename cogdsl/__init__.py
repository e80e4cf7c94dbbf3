"""cogdsl: a declarative language for memory-augmented and attention networks.

    import cogdsl
    spec = cogdsl.load("specs/ntm_copy.yaml")     # or .cog; raises cogdsl.SpecError
    spec = cogdsl.loads(text, "cog")              # spec text from a string
    model = cogdsl.compile(spec)                  # a torch.nn.Module
    y = model(x)                                  # x (B, T, input size) -> y (B, T, output size)

    result = cogdsl.train(spec, steps=2000, device="auto")        # the spec's task, a run folder
    result = cogdsl.train(spec, data=my_dataset, eval_data=my_valid)   # your own data
    cogdsl.save(model, "model.safetensors")      # a checkpoint that cogdsl eval/trace/predict read
    model = cogdsl.restore("runs/ntm_copy")      # a trained model back, from a checkpoint or run folder

Importing cogdsl does not import torch: the names that need it load on first use, so
``cogdsl --help`` and ``cogdsl validate`` start quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cogdsl.errors import (
    CheckpointError,
    CogdslError,
    DataFileError,
    ShapeError,
    SpecError,
    SpecSyntaxError,
    UsageError,
)

__version__ = "0.1.0"

from cogdsl import moved as _moved
from cogdsl.language.spec import Spec

_moved.install()  # the flat layout's module paths (cogdsl.pipeline, cogdsl.spec ...) still import

if TYPE_CHECKING:
    import torch

    from cogdsl.compiler.lower import CompiledModel
    from cogdsl.tasks import Task


def load(path: str | Path) -> Spec:
    """Read a spec file (.yaml, .yml or .cog) into the IR; raises SpecError with every problem found.

    Sizes the spec leaves out are taken from its task (reading the task's data files, if it has any)."""
    from cogdsl.compiler.pipeline import check, read_spec_file

    spec = read_spec_file(path)
    check(spec)
    return spec


def loads(text: str, form: str = "cog", name: str = "<string>") -> Spec:
    """Read spec text (``form`` "cog" or "yaml") into the IR, checked like :func:`load`; ``name`` is the
    file name its error messages show. Raises SpecError with every problem found.

        spec = cogdsl.loads("model m\\ninput x: 3\\noutput y: 2 = sigmoid(c)\\nlstm c(hidden=8) <- x\\n")
    """
    from cogdsl.compiler.pipeline import check, parse_text

    if form not in ("cog", "yaml"):
        raise UsageError(f"form must be 'cog' or 'yaml', got {form!r}")
    spec = parse_text(text, name, form)
    check(spec)
    return spec


def compile(spec: Spec | str | Path, task: Task | None = None, *, max_memory: int | str | None = None
            ) -> CompiledModel:
    """Compile a spec (or a path to one) into a :class:`CompiledModel`; sizes the spec leaves out come from
    ``task`` (default: the task its train section names). A model whose parameters and training-batch state
    exceed ``max_memory`` (bytes or a size such as ``"80GiB"``; default ``$COGDSL_MAX_MEMORY`` or 16 GiB) is
    refused with SpecError E502 before anything is allocated."""
    from cogdsl.compiler.pipeline import compile_spec

    return compile_spec(spec, task=task, max_memory=max_memory)


def save(model: torch.nn.Module, path: str | Path, *, task: Task | None = None, step: int = 0,
         meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (a compiled cogdsl model) as a checkpoint that ``cogdsl eval``, ``trace`` and ``predict``
    read like one ``cogdsl train`` wrote: the model's tensors, and in the metadata its name, the fingerprint
    of its architecture and the spec as YAML. ``task``: the task it was trained on, when its data gave sizes
    (a vocabulary read from bAbI files), so that they are kept with it. Written atomically; returns the path.

    Raises:
        UsageError: ``model`` is not a compiled cogdsl model, or the path is not a .safetensors file.
    """
    from cogdsl.language.emit import to_yaml
    from cogdsl.training.checkpoints import library_versions, save_checkpoint, spec_fingerprint

    spec = getattr(model, "spec", None)
    if not isinstance(spec, Spec):
        raise UsageError(f"cogdsl.save saves a model made by cogdsl.compile; this is a {type(model).__name__}")
    target = Path(path)
    if target.suffix != ".safetensors":
        raise UsageError(f"{target}: a checkpoint is a .safetensors file; give a path ending in .safetensors")
    if target.is_dir():
        raise UsageError(f"{target} is a folder; give a file path ending in .safetensors")
    info = {"model": spec.name, "step": step, "versions": library_versions(), "spec_fingerprint":
            spec_fingerprint(spec), "spec_yaml": to_yaml(spec), "task_state": task.data_state() if task else {},
            "saved_by": "cogdsl.save", **(meta or {})}
    return save_checkpoint(target, model=model, optimizer=None, meta=info)


def restore(checkpoint: str | Path, spec: Spec | str | Path | None = None, device: str = "cpu") -> CompiledModel:
    """The model a checkpoint (a .safetensors file, or a run folder: its newest) holds, compiled from ``spec``
    (default: the spec saved inside the checkpoint) with its weights, on ``device``.

    Raises:
        CheckpointError: a missing, corrupt or foreign checkpoint; UsageError: no spec in it and none given.
    """
    from cogdsl.compiler.pipeline import compile_spec, parse_text, read_spec_file
    from cogdsl.training.checkpoints import load_checkpoint, load_model_state
    from cogdsl.training.config import build_task, resolve_train
    from cogdsl.training.devices import resolve_device

    saved = load_checkpoint(checkpoint)
    if spec is None:
        text = saved.meta.get("spec_yaml")
        if not isinstance(text, str):
            raise UsageError(f"{saved.path} holds no spec; pass the spec it was trained from: "
                             "cogdsl.restore(checkpoint, spec)")
        spec = parse_text(text, f"{saved.path}:spec_yaml", "yaml")
    elif not isinstance(spec, Spec):
        spec = read_spec_file(spec)
    task = None
    state = saved.meta.get("task_state")
    if state:
        from cogdsl.errors import DiagnosticSink

        config = resolve_train(spec.train, DiagnosticSink())
        if config is not None and config.task:
            task = build_task(config, spec, state)
    model = compile_spec(spec, task=task)
    load_model_state(model, saved, spec.name)
    return model.to(resolve_device(device))


def __getattr__(name: str) -> Any:
    if name == "CompiledModel":
        from cogdsl.compiler.lower import CompiledModel

        return CompiledModel
    if name in ("train", "ops", "tasks", "blocks", "reinforce"):
        import importlib

        return importlib.import_module(f"cogdsl.{name}")
    raise AttributeError(f"module 'cogdsl' has no attribute '{name}'")


__all__ = [
    "CheckpointError",
    "CogdslError",
    "CompiledModel",
    "DataFileError",
    "ShapeError",
    "Spec",
    "SpecError",
    "SpecSyntaxError",
    "UsageError",
    "__version__",
    "compile",
    "load",
    "loads",
    "restore",
    "save",
    "train",
]
