"""``cogdsl predict SPEC CHECKPOINT --input FILE --output FILE``: a trained model on new data.

Two kinds of input, told apart by the file's suffix:

- **Sequence files** (``.npz``, ``.safetensors``; :mod:`cogdsl.tasks.sequences`): ``inputs`` (N, T, I)
  and optionally ``mask`` or ``lengths`` (``targets``, if there, are ignored). The output file
  (``.npz`` or ``.safetensors``, by its suffix) holds ``outputs`` (N, T, O), the model's outputs
  through its activation (probabilities for sigmoid and softmax), and for a softmax output also
  ``classes`` (N, T), the arg-max. Padding steps (beyond ``lengths``) are run and written as they
  come; read them with your mask. For a model with one vector input.
- **bAbI text** (``.txt``, the official format; answers may be left out, ``3 Where is Mary?``):
  one answer word per line of the output, in question order. When the file has answers, the
  error rate is printed on standard error.

The model is run ``--batch`` sequences at a time, in eval mode, on ``--device``. An output file
that exists is not overwritten without ``--force``; the file is written atomically.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import torch

from cogdsl.errors import DataFileError, UsageError
from cogdsl.tasks.sequences import SUFFIXES, read_sequences, write_sequences


def _activated(model: torch.nn.Module, logits: torch.Tensor) -> tuple[torch.Tensor, str]:
    output = model.spec.outputs[0]
    activation = str(output.activation.data) if output.activation is not None else "none"
    functions = {"sigmoid": torch.sigmoid, "softmax": lambda x: torch.softmax(x, dim=-1), "tanh": torch.tanh,
                 "relu": torch.relu}
    return functions.get(activation, lambda x: x)(logits), activation


def predict_sequences(model: torch.nn.Module, source: Path, target: Path, batch: int) -> int:
    """Run ``model`` over the sequences of ``source`` and write its outputs to ``target``; the count."""
    vectors = [i for i in model.spec.inputs if i.is_vector]
    if len(model.spec.inputs) != 1 or len(vectors) != 1 or len(model.spec.outputs) != 1:
        raise UsageError(f"predict reads sequence files for models with one vector input and one output; "
                         f"{model.spec.name} has {len(model.spec.inputs)} input(s) and {len(model.spec.outputs)} "
                         "output(s)")
    arrays = read_sequences(source, targets_required=False)
    size = int(model.shapes.sizes[vectors[0].name])
    if arrays.inputs.shape[-1] != size:
        raise DataFileError(source, f"array 'inputs' has {arrays.inputs.shape[-1]} channels per step; "
                                    f"{model.spec.name}'s input '{vectors[0].name}' takes {size}")
    device = next(model.parameters()).device
    outputs = []
    with torch.no_grad():
        for start in range(0, len(arrays), batch):
            x = arrays.inputs[start:start + batch].to(device)
            logits = model(x, raw=True)
            outputs.append(_activated(model, logits)[0].float().cpu())
    result = torch.cat(outputs)
    written: dict[str, Any] = {"outputs": result}
    if _activated(model, result[:0])[1] == "softmax":
        written["classes"] = result.argmax(-1)
    write_sequences(target, written)
    return len(arrays)


def predict_babi(model: torch.nn.Module, task: Any, source: Path, target: Path, batch: int
                 ) -> tuple[int, int, float | None]:
    """Answer the questions of a bAbI file: how many, how many had answers, and the error rate on those."""
    from cogdsl.tasks.babi_format import parse_babi
    from cogdsl.training.checkpoints import atomic_write_text

    if not hasattr(task, "questions_batch"):
        raise UsageError(f"{model.spec.name} was trained on task {task.name}, which does not answer bAbI questions")
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFileError(source, "no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataFileError(source, f"cannot read it: {err}") from None
    qas = parse_babi(text, str(source), answers=False)
    device = next(model.parameters()).device
    answers: list[str] = []
    wrong = given = 0
    with torch.no_grad():
        for start in range(0, len(qas), batch):
            part = qas[start:start + batch]
            # A question given without its answer is encoded with a stand-in (any word the model knows): the
            # answer is what is predicted, and encoding one that is not there would fail as an unknown word ''.
            known = task.answer_word(1)
            encoded = [qa if qa.answer else dataclasses.replace(qa, answer=known) for qa in part]
            try:
                questions = task.questions_batch(encoded).to(device)
            except ValueError as err:
                raise DataFileError(source, f"{err}; this model knows only the words it was trained on") from None
            logits = model({name: questions.inputs[kind] for name, kind in model.input_kinds.items()}, raw=True)
            at = questions.mask.argmax(1)  # the scored step: the question's (0 when a question is one step)
            final = logits[torch.arange(logits.shape[0], device=logits.device), at.to(logits.device)]
            for qa, index in zip(part, final.argmax(-1).tolist(), strict=True):
                word = task.answer_word(int(index))
                answers.append(word)
                if qa.answer:
                    given += 1
                    wrong += word != qa.answer
    atomic_write_text(target, "".join(f"{a}\n" for a in answers))
    return len(qas), given, (wrong / given if given else None)


def predict_command(args: Any) -> int:
    """``cogdsl predict SPEC CHECKPOINT --input FILE --output FILE [--force --batch N --device D --threads T]``."""
    from cogdsl.training.loop import _check_positive, load_trained, set_threads

    _check_positive("--batch", args.batch)
    set_threads(args.threads)
    source, target = Path(args.input), Path(args.output)
    if not source.is_file():
        raise UsageError(f"--input {source}: no such file")
    text_input = source.suffix == ".txt"
    if not text_input and source.suffix not in SUFFIXES:
        raise UsageError(f"--input {source}: give a sequence file ({', '.join(SUFFIXES)}) or a bAbI .txt file")
    wanted = (".txt",) if text_input else SUFFIXES
    if target.suffix not in wanted:
        raise UsageError(f"--output {target}: for {'bAbI questions' if text_input else 'sequences'} write a "
                         f"{' or '.join(wanted)} file")
    if target.is_dir():
        raise UsageError(f"--output {target} is a folder; give a file name")
    if target.exists() and not args.force:
        raise UsageError(f"--output {target} exists; pass --force to overwrite it")
    if not target.parent.is_dir():
        raise UsageError(f"--output {target}: no such folder {target.parent}")
    if target.resolve() == source.resolve():
        raise UsageError("--output is the --input file; write the predictions elsewhere")
    spec, task, model, _ = load_trained(args.spec, args.checkpoint, None, args.device, need_task=text_input,
                                        compile=getattr(args, "compile", None))
    model.eval()
    if text_input:
        count, given, error = predict_babi(model, task, source, target, args.batch)
        if error is not None:
            print(f"{spec.name}: {100 * error:.1f}% error on the {given} questions of {source} that give their "
                  "answer", file=sys.stderr)
        print(f"wrote {target}: {count} answers", file=sys.stderr)
    else:
        count = predict_sequences(model, source, target, args.batch)
        print(f"wrote {target}: outputs of {count} sequences", file=sys.stderr)
    return 0
