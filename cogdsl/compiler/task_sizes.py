"""Pass 3½: the sizes a spec leaves to its task.

An input or output written without a size (``input story: sentences``, ``input x``,
``output answer = softmax(reason)``; in YAML ``{kind: sentences}``, ``{from: [...]}``) takes
the size the train section's task gives, matched as the task's shape check matches them:
each input by its kind, the one output by the task's output size. A pointer output
(``output y = pointer(ptr)``) has no size: it has as many values as the source has positions. So one spec trains on the
generated bAbI tasks and on the bAbI files (whose vocabulary is read from the files) by
changing its task alone, and a vocabulary is never counted by hand::

    spec, task = derive_sizes(spec, task)      # every size written; the task that gave them

Sizes a spec writes are left as written and checked against the task by ``infer``. A data-file
task reads its files here (once: the reads are cached); a file that is missing or malformed is
error E604, located at the task in the spec, with the file's own ``path:line`` in the message.
"""

from __future__ import annotations

import dataclasses

from cogdsl.errors import DataFileError, Diagnostic, Span, SpecError
from cogdsl.language.spec import SIZE_KEYS, Spec, Value
from cogdsl.tasks import Task, TaskParamError
from cogdsl.training.config import TrainConfig, build_task, resolve_train


def leaves_sizes(spec: Spec) -> bool:
    """Whether some input or output of ``spec`` has no size written."""
    return any(i.size.data is None for i in spec.inputs) or any(o.size.data is None and not o.points
                                                                for o in spec.outputs)


def task_of(spec: Spec, config: TrainConfig | None = None) -> Task | None:
    """The task the spec's train section names, built (its files not read yet), or None without one.
    ``config``: the train section as validation resolved it (default: resolved here).

    Assumes the spec validated: a bad train section was reported there."""
    from cogdsl.errors import DiagnosticSink

    if config is None:
        config = resolve_train(spec.train, DiagnosticSink())
    if config is None or not config.task:
        return None
    return build_task(config, spec)


def _where_task(spec: Spec) -> Span:
    """Where the train section names its task (the spec's name when it has none)."""
    if spec.train is not None and isinstance(spec.train.data, dict) and "task" in spec.train.data:
        return spec.train.data["task"].span
    return spec.model.span


def data_problem(spec: Spec, err: DataFileError | TaskParamError | ValueError) -> SpecError:
    """A data file the spec's task reads is missing or malformed: E604 at the task, the file in the message."""
    return SpecError([Diagnostic("E604", str(err), _where_task(spec),
                                 "fix the file, or point the task at another (paths are relative to the spec's "
                                 "folder)")], {spec.file: spec.source or ""})


def task_kinds(spec: Spec, task: Task) -> tuple[dict[str, int], int]:
    """The task's input sizes by kind and its output size, reading its data if it must (E604 on a bad file)."""
    try:
        return dict(task.input_kinds), int(task.output_size)
    except DataFileError as err:
        raise data_problem(spec, err) from None


def derive_sizes(spec: Spec, task: Task | None) -> Spec:
    """``spec`` with every size it leaves out taken from ``task`` (see the module docstring).

    Raises:
        SpecError: E007 for a size left out with no task to give it (or a task that feeds no input of
            that kind, or several outputs), E604 for a data file that cannot be read.
    """
    if not leaves_sizes(spec):
        return spec
    problems: list[Diagnostic] = []
    kinds, output_size = task_kinds(spec, task) if task is not None else ({}, None)
    inputs = []
    for item in spec.inputs:
        kind = str(item.kind.data)
        if item.size.data is not None:
            inputs.append(item)
        elif task is not None and kind in kinds:
            inputs.append(dataclasses.replace(item, size=Value(kinds[kind], item.size.span)))
        else:
            what = "size" if item.is_vector else SIZE_KEYS.get(kind, "size")
            if task is None:
                message = f"input '{item.name}' has no {what}, and the spec names no task to take it from"
            else:
                message = (f"input '{item.name}' has no {what}, and task '{task.name}' feeds no {kind} input "
                           f"(it feeds {', '.join(kinds) or 'nothing'})")
            if spec.file.endswith(".cog"):
                example = f"input {item.name}: N" if item.is_vector else f"input {item.name}: {kind}({what}=N)"
            else:
                example = f"{item.name}: N" if item.is_vector else f"{item.name}: {{kind: {kind}, {what}: N}}"
            problems.append(Diagnostic("E007", message, item.span,
                                       f"write it ('{example}'), or name a task in train: whose data gives it"))
            inputs.append(item)
    outputs = []
    for output in spec.outputs:
        if output.size.data is not None or output.points:  # a pointer has as many values as the source positions
            outputs.append(output)
        elif output_size is not None and len(spec.outputs) == 1:
            outputs.append(dataclasses.replace(output, size=Value(output_size, output.size.span)))
        else:
            why = ("and the spec names no task to take it from" if task is None
                   else f"task '{task.name}' gives the size of a spec's only output, and this spec has "
                        f"{len(spec.outputs)}")
            example = (f"'output {output.name}: N = ...'" if spec.file.endswith(".cog")
                       else f"'{output.name}: {{size: N, from: [...]}}'")
            problems.append(Diagnostic("E007", f"output '{output.name}' has no size, {why}", output.span,
                                       f"write it: {example}"))
            outputs.append(output)
    if problems:
        raise SpecError(problems, {spec.file: spec.source or ""})
    return dataclasses.replace(spec, inputs=tuple(inputs), outputs=tuple(outputs))


def sizes_from(spec: Spec, saved_yaml: object, where: object) -> Spec:
    """``spec`` with the sizes it leaves out taken from a checkpoint's saved spec (``spec_yaml``, every size
    written), input by input and output by output name: a model trained on your own data is run again
    without that data.

    Raises:
        CheckpointError: the checkpoint holds no spec, or not the inputs and outputs this spec names.
    """
    from cogdsl.compiler.pipeline import parse_text
    from cogdsl.errors import CheckpointError

    if not isinstance(saved_yaml, str):
        raise CheckpointError(f"{where}: holds no spec to take the sizes {spec.name} leaves out from; write them "
                              "in the spec")
    saved = parse_text(saved_yaml, f"{where}:spec_yaml", "yaml")
    sizes = {**{i.name: i.size for i in saved.inputs}, **{o.name: o.size for o in saved.outputs}}
    missing = [item.name for item in (*spec.inputs, *(o for o in spec.outputs if not o.points))
               if item.size.data is None and (item.name not in sizes or sizes[item.name].data is None)]
    if missing:
        raise CheckpointError(f"{where}: its spec gives no size for {', '.join(missing)}, which {spec.name} leaves "
                              "out; write them in the spec")
    return dataclasses.replace(
        spec,
        inputs=tuple(i if i.size.data is not None else dataclasses.replace(i, size=Value(sizes[i.name].data,
                     i.size.span)) for i in spec.inputs),
        outputs=tuple(o if o.size.data is not None or o.points else dataclasses.replace(
                      o, size=Value(sizes[o.name].data, o.size.span)) for o in spec.outputs))
