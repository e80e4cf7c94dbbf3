"""The algorithmic tasks of Graves et al. 2014, "Neural Turing Machines", section 4, and the
graph tasks of Graves et al. 2016, "Hybrid computing using a neural network with dynamic
external memory" (DNC), Methods.

A spec's ``train:`` section names a task and its parameters, e.g.
``task: {name: copy, bits: 8, min_len: 1, max_len: 20}``; :func:`make_task` builds it::

    task = make_task("copy", bits=8, max_len=20)
    batch = task.sample(16, torch.Generator().manual_seed(0))   # Batch(inputs, targets, mask)
    loss = sequence_loss(model(batch.inputs), batch)

Registered tasks (:data:`TASKS`), each in its own module with its encoding drawn out:

- ``copy`` -- :class:`CopyTask`, paper section 4.1
- ``repeat_copy`` -- :class:`RepeatCopyTask`, section 4.2
- ``associative_recall`` -- :class:`AssociativeRecallTask`, section 4.3
- ``priority_sort`` -- :class:`PrioritySortTask`, section 4.5
- ``graph_traversal`` -- :class:`GraphTraversalTask`, DNC paper, "Graph tasks"
- ``graph_shortest_path`` -- :class:`GraphShortestPathTask`, DNC paper, "Graph tasks"
- ``graph_inference`` -- :class:`GraphInferenceTask`, DNC paper, "Graph tasks"
- ``babi``, ``babi_joint`` -- :class:`BabiTask`, :class:`BabiJointTask`: question answering
  on generated bAbI-style stories (:mod:`cogdsl.tasks.babi`, :mod:`cogdsl.tasks.qa`)
- ``babi_steps``, ``babi_joint_steps`` -- :class:`BabiStepsTask`, :class:`BabiJointStepsTask`: the same
  questions read one sentence per step, for recurrent models (:mod:`cogdsl.tasks.qa_steps`)
- ``reverse``, ``sort``, ``stutter`` -- :class:`ReverseTask`, :class:`SortTask`,
  :class:`StutterTask`: sequence to sequence, for attention models (:mod:`cogdsl.tasks.seq2seq`);
  ``sort(answer=positions, numbers=true)`` sorts numbers by pointing at them (pointer networks)
- ``convex_hull`` -- :class:`ConvexHullTask`: the planar convex hull of n points as their positions;
  Vinyals et al. 2015, "Pointer Networks" (:mod:`cogdsl.tasks.convex_hull`)
- ``digits`` -- :class:`DigitsTask`: classify a digit in a cluttered image (the project's own
  glyphs), Mnih et al. 2014's cluttered translated MNIST (:mod:`cogdsl.tasks.digits`);
  ``reconstruct_digits`` -- :class:`DigitReconstructionTask`: draw the digit image back (DRAW)
- ``caption`` -- :class:`CaptionTask`: caption a scene of glyphs word by word ("two 5s above a square");
  Xu et al. 2015, "Show, Attend and Tell" (:mod:`cogdsl.tasks.caption`)
- ``anbn``, ``anbncn``, ``anbncndn``, ``anb2n``, ``anbmcnm``, ``mirror`` -- :class:`AnBnTask`,
  :class:`AnBnCnTask`, :class:`AnBnCnDnTask`, :class:`AnB2nTask`, :class:`AnBmCnmTask`,
  :class:`MirrorTask`: predict the next symbol of a stream of aⁿbⁿ, aⁿbⁿcⁿ, aⁿbⁿcⁿdⁿ, aⁿb²ⁿ,
  aⁿbᵐcⁿ⁺ᵐ or mirrored strings, scored on its deterministic part; Joulin & Mikolov 2015,
  "Inferring Algorithmic Patterns with Stack-Augmented Recurrent Nets" (:mod:`cogdsl.tasks.formal`)
- ``adding`` -- :class:`AddingTask`: the adding problem, sum the two marked values of a long
  sequence; Hochreiter & Schmidhuber 1997, as set up by Le et al. 2015 and Campos et al. 2018
  (Skip RNN) (:mod:`cogdsl.tasks.adding`)

Your own data (docs/data.md):

- ``babi_files``, ``babi_files_steps`` -- :class:`BabiFilesTask`, :class:`BabiFilesStepsTask`: the bAbI
  files in the official text format, one task or a folder of them (:mod:`cogdsl.tasks.babi_files`)
- ``sequences`` -- :class:`SequencesTask`: your own sequences from ``.npz`` or ``.safetensors`` files
  (:mod:`cogdsl.tasks.sequences`)

The algorithmic tasks' targets are bits and their ``loss`` is ``"bce"``: the model's raw
outputs are logits for :func:`sequence_loss` (BCE-with-logits) and :func:`bit_errors`. The
QA tasks' targets are answer words (the formal-language tasks', next symbols) and their loss is
``"ce"`` (cross-entropy); the adding problem's target is a real number and its loss is ``"mse"``
(squared error of the model's raw output); every task
scores a batch with :meth:`Task.loss_of` and :meth:`Task.errors`.
"""

from __future__ import annotations

import difflib

from cogdsl.tasks.adding import AddingTask
from cogdsl.tasks.associative_recall import AssociativeRecallTask
from cogdsl.tasks.babi_files import BabiFilesStepsTask, BabiFilesTask
from cogdsl.tasks.base import (
    Batch,
    Task,
    TaskParam,
    TaskParamError,
    bit_errors,
    sequence_accuracy,
    sequence_loss,
)
from cogdsl.tasks.caption import CaptionTask
from cogdsl.tasks.convex_hull import ConvexHullTask
from cogdsl.tasks.copy import CopyTask
from cogdsl.tasks.digits import DigitReconstructionTask, DigitsTask
from cogdsl.tasks.formal import AnB2nTask, AnBmCnmTask, AnBnCnDnTask, AnBnCnTask, AnBnTask, MirrorTask
from cogdsl.tasks.graph import GraphInferenceTask, GraphShortestPathTask, GraphTraversalTask
from cogdsl.tasks.priority_sort import PrioritySortTask
from cogdsl.tasks.qa import BabiJointTask, BabiTask
from cogdsl.tasks.qa_steps import BabiJointStepsTask, BabiStepsTask
from cogdsl.tasks.repeat_copy import RepeatCopyTask
from cogdsl.tasks.seq2seq import ReverseTask, SortTask, StutterTask
from cogdsl.tasks.sequences import SequencesTask


class _Registry(dict):  # type: ignore[type-arg]
    """The task registry: a dict that, the first time it is read, also registers the tasks installed packages
    publish (:data:`PLUGIN_GROUP`). Reading is what waits, not importing cogdsl, so that a plugin may import
    any part of cogdsl without a circular import."""

    _loaded = False

    def _ensure(self) -> None:
        if not self._loaded:
            type(self)._loaded = True
            _load_plugins()

    def __contains__(self, key: object) -> bool:
        self._ensure()
        return super().__contains__(key)

    def __getitem__(self, key: str) -> type[Task]:
        self._ensure()
        return super().__getitem__(key)

    def __iter__(self):  # type: ignore[no-untyped-def]
        self._ensure()
        return super().__iter__()

    def __len__(self) -> int:
        self._ensure()
        return super().__len__()

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self._ensure()
        return super().get(key, default)

    def keys(self):  # type: ignore[no-untyped-def]
        self._ensure()
        return super().keys()

    def values(self):  # type: ignore[no-untyped-def]
        self._ensure()
        return super().values()

    def items(self):  # type: ignore[no-untyped-def]
        self._ensure()
        return super().items()


TASKS: dict[str, type[Task]] = _Registry()


def register_task(cls: type[Task]) -> type[Task]:
    """Add ``cls`` to :data:`TASKS` under ``cls.name`` (usable as a class decorator).

    Raises:
        ValueError: another class is already registered under that name.
    """
    existing = dict.get(TASKS, cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(
            f"task name '{cls.name}' is already taken by {existing.__module__}."
            f"{existing.__qualname__}"
        )
    TASKS[cls.name] = cls
    return cls


for _cls in (
    CopyTask,
    RepeatCopyTask,
    AssociativeRecallTask,
    PrioritySortTask,
    GraphTraversalTask,
    GraphShortestPathTask,
    GraphInferenceTask,
    BabiTask,
    BabiJointTask,
    BabiStepsTask,
    BabiJointStepsTask,
    ReverseTask,
    SortTask,
    StutterTask,
    ConvexHullTask,
    DigitsTask,
    DigitReconstructionTask,
    CaptionTask,
    AnBnTask,
    AnBnCnTask,
    AnBnCnDnTask,
    AnB2nTask,
    AnBmCnmTask,
    MirrorTask,
    AddingTask,
    BabiFilesTask,
    BabiFilesStepsTask,
    SequencesTask,
):
    register_task(_cls)

PLUGIN_GROUP = "cogdsl.tasks"
"""The entry-point group under which a package publishes its tasks, so that the ``cogdsl`` command knows
them: ``[project.entry-points."cogdsl.tasks"] running_parity = "mypackage.tasks:RunningParity"``."""


def _load_plugins() -> None:
    """Register the tasks installed packages publish (:data:`PLUGIN_GROUP`); one that fails to load is a
    warning, never a reason for cogdsl not to start."""
    import warnings
    from importlib.metadata import entry_points

    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            loaded = entry.load()
            if not (isinstance(loaded, type) and issubclass(loaded, Task)):
                raise TypeError(f"{entry.value} is not a cogdsl Task class")
            register_task(loaded)
        except Exception as err:  # a plugin's own error, of any kind
            warnings.warn(f"cogdsl: task plugin '{entry.name}' ({entry.value}) was not loaded: {err}", stacklevel=2)


def get_task(name: str) -> type[Task]:
    """The task class registered under ``name``.

    Raises:
        ValueError: no such task; the message suggests the closest registered name
            (``unknown task 'cpy'; did you mean 'copy'?``) and lists them all.
    """
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        pass
    close = difflib.get_close_matches(str(name), list(TASKS), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ValueError(f"unknown task {name!r}{hint} (known tasks: {', '.join(sorted(TASKS))})")


def make_task(name: str, **params: object) -> Task:
    """Build the task ``name`` with ``params`` (checked against its declarations).

    Raises:
        ValueError: unknown task name, or a :class:`TaskParamError` for a bad parameter.
    """
    return get_task(name)(**params)


__all__ = [
    "TASKS",
    "AddingTask",
    "AnB2nTask",
    "AnBmCnmTask",
    "AnBnCnDnTask",
    "AnBnCnTask",
    "AnBnTask",
    "AssociativeRecallTask",
    "BabiFilesStepsTask",
    "BabiFilesTask",
    "BabiJointStepsTask",
    "BabiJointTask",
    "BabiStepsTask",
    "BabiTask",
    "Batch",
    "CaptionTask",
    "ConvexHullTask",
    "CopyTask",
    "DigitReconstructionTask",
    "DigitsTask",
    "GraphInferenceTask",
    "GraphShortestPathTask",
    "GraphTraversalTask",
    "MirrorTask",
    "PrioritySortTask",
    "RepeatCopyTask",
    "ReverseTask",
    "SequencesTask",
    "SortTask",
    "StutterTask",
    "Task",
    "TaskParam",
    "TaskParamError",
    "bit_errors",
    "get_task",
    "make_task",
    "register_task",
    "sequence_accuracy",
    "sequence_loss",
]
