"""Your own sequences from array files: ``task: {name: sequences, train: PATH, ...}``.

A file is ``.npz`` (``numpy.savez``; read with ``allow_pickle=False``) or ``.safetensors``, holding::

    inputs   (N, T, I) float      what the model reads at each of T steps
    targets  (N, T, O) float      what it should output at each step (bits for a sigmoid output, a
                                  one-hot or a distribution for softmax, any values for none)
             or (N, T) integer    class ids, for a softmax output (O = the largest id + 1)
    mask     (N, T), optional     1 where the output is scored, 0 elsewhere (default: every step)
    lengths  (N,), optional       sequence n has lengths[n] steps; the steps after are padding

The loss follows the activation of the spec's output (``loss: auto``), or ``loss`` says it:

    sigmoid -> bce: binary cross-entropy summed over the scored bits, errors = wrong bits per sequence
    softmax -> ce:  cross-entropy summed over the scored steps, errors = wrong classes per sequence,
                    and the accuracy (correct scored steps) as a metric
    none    -> mse: squared error summed over the scored steps, errors = the mean squared error of a
                    sequence (over its scored values); with tanh or relu (or mse asked for with another
                    activation) it is the error of the output after its activation, what the model outputs

Training batches are drawn uniformly with replacement from ``train`` on the host and trimmed to
their longest sequence; the evaluations during training score ``valid`` (without it, the last
``valid_fraction`` of ``train``, which training then never draws), ``cogdsl eval`` scores ``test``.
Paths are relative to the spec's folder; ``~`` and ``$VARIABLES`` are expanded. The spec's sizes
may be left out (``input x``, ``output y = sigmoid(ctrl)``): they are the files'. A file with a
missing array, a wrong shape or dtype, a NaN or an infinity is refused with its path and the array.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from cogdsl.errors import DataFileError, UsageError
from cogdsl.tasks.base import Batch, Task, TaskParam, bce_per_sequence, bit_errors
from cogdsl.tasks.files import FileParams

SUFFIXES = (".npz", ".safetensors")
LOSSES = ("auto", "bce", "ce", "mse")
_BY_ACTIVATION = {"sigmoid": "bce", "softmax": "ce", "none": "mse", "tanh": "mse", "relu": "mse"}


# -- the loss that follows the output --------------------------------------------------------------


def loss_for(activation: str) -> str:
    """The loss a model output with ``activation`` is trained with: sigmoid → bce, softmax → ce, else mse."""
    return _BY_ACTIVATION.get(activation, "mse")


def soft_ce_per_sequence(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Cross-entropy with target distributions (one-hot or soft), summed over the scored steps, per sequence:
    ``sum_t mask[b, t] (-sum_o targets[b, t, o] log softmax(logits[b, t])[o])``, logits (B, T, O) → (B,)."""
    per_step = -(batch.targets * F.log_softmax(logits, dim=-1)).sum(-1)  # (B, T)
    return (per_step * batch.mask).sum(-1)


def _classes(batch: Batch) -> torch.Tensor:
    """Class ids (B, T): the targets themselves, or the arg-max of target distributions."""
    return batch.targets if not batch.targets.is_floating_point() else batch.targets.argmax(-1)


def squared_error_per_sequence(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """``sum_t mask[b, t] sum_o (y[b, t, o] - targets[b, t, o])²``, y (B, T, O) → (B,)."""
    return ((logits - batch.targets) ** 2 * batch.mask.unsqueeze(-1)).sum(dim=(1, 2))


_ACTIVATE = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
             "softmax": lambda x: torch.softmax(x, dim=-1)}


@dataclass(frozen=True)
class OutputLoss:
    """The loss, errors and metrics of one loss kind (``bce``, ``ce`` or ``mse``) on a batch's scored steps.

    The model's raw outputs (logits) come in; ``mse`` compares them after ``activation``, the output's own,
    so that what is trained is what the model outputs (``bce`` and ``ce`` take logits)."""

    kind: str
    activation: str = "none"

    def _outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return _ACTIVATE.get(self.activation, lambda x: x)(logits)

    @property
    def error_unit(self) -> str:
        return {"bce": "bit errors", "ce": "wrong classes", "mse": "squared error"}[self.kind]

    def sequence_losses(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Each sequence's loss (B,)."""
        if self.kind == "bce":
            return bce_per_sequence(logits, batch)
        if self.kind == "ce":
            if batch.targets.is_floating_point():
                return soft_ce_per_sequence(logits, batch)
            per_step = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), reduction="none")
            return (per_step.view(batch.targets.shape) * batch.mask).sum(-1)
        return squared_error_per_sequence(self._outputs(logits), batch)

    def errors(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Errors per sequence (B,): wrong bits, wrong classes, or the mean squared error."""
        if self.kind == "bce":
            return bit_errors(logits, batch)
        if self.kind == "ce":
            return ((logits.argmax(-1) != _classes(batch)).float() * batch.mask).sum(-1)
        scored = batch.mask.sum(-1).clamp(min=1) * logits.shape[-1]
        return squared_error_per_sequence(self._outputs(logits), batch) / scored

    def metrics(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """For ``ce``, the accuracy of each sequence: correct scored steps over scored steps."""
        if self.kind != "ce":
            return {}
        right = ((logits.argmax(-1) == _classes(batch)).float() * batch.mask).sum(-1)
        return {"accuracy": right / batch.mask.sum(-1).clamp(min=1)}


# -- reading the files ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrays:
    """One split's tensors (CPU): inputs (N, T, I) float32, targets (N, T, O) float32 or (N, T) long,
    mask (N, T) float32, lengths (N,) long (the steps up to the last scored or given length)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def rows(self, rows: torch.Tensor) -> Batch:
        """The sequences at ``rows`` as a batch, trimmed to the longest of them."""
        steps = max(int(self.lengths[rows].max()), 1) if rows.numel() else 1
        return Batch(self.inputs[rows, :steps], self.targets[rows, :steps], self.mask[rows, :steps])


def _load_file(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise DataFileError(path, "no such file")
    if path.is_dir():
        raise DataFileError(path, f"is a folder; sequence files are {' or '.join(SUFFIXES)} files")
    if path.suffix not in SUFFIXES:
        raise DataFileError(path, f"'{path.suffix or path.name}' is not a sequence file suffix "
                                  f"({' or '.join(SUFFIXES)})")
    try:
        if path.suffix == ".npz":
            with path.open("rb") as handle:
                magic = handle.read(6)
            if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
                # np.load would take it for a pickle and say so, which is not what is wrong with it
                raise DataFileError(path, "cannot read it as npz: it does not start as an .npz archive (a zip of "
                                          "named arrays)"
                                          + (" (it is empty)" if not magic else "") + "; write it with "
                                          "numpy.savez(path, inputs=..., targets=...)")
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise DataFileError(path, "holds one .npy array, not an .npz archive of named arrays; write it with "
                                          "numpy.savez(path, inputs=..., targets=...)")
            with loaded as archive:
                return {name: archive[name] for name in archive.files}
        from safetensors.numpy import load_file

        return load_file(str(path))
    except DataFileError:
        raise
    except (OSError, ValueError, EOFError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataFileError(path, f"cannot read it as {path.suffix[1:]}: {reason}") from None
    except Exception as err:  # safetensors raises its own error types for bad bytes
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataFileError(path, f"cannot read it as {path.suffix[1:]}: {reason}") from None


def _finite(path: Path, name: str, array: np.ndarray) -> None:
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        where = np.argwhere(~np.isfinite(array))[0]
        raise DataFileError(path, f"array '{name}' has {array[tuple(where)]} at index {tuple(int(i) for i in where)}; "
                                  "values must be finite")


def arrays_from(data: Mapping[str, np.ndarray], path: Path, *, targets_required: bool = True) -> Arrays:
    """Check a file's arrays (see the module docstring) and turn them into tensors.

    Raises:
        DataFileError: a missing array, a wrong shape or dtype, a NaN or an infinity, lengths out of range.
    """
    have = ", ".join(sorted(data)) or "none"
    if "inputs" not in data:
        raise DataFileError(path, f"has no array 'inputs' (it has: {have})")
    if targets_required and "targets" not in data:
        raise DataFileError(path, f"has no array 'targets' (it has: {have})")
    inputs = data["inputs"]
    if inputs.ndim != 3 or not (np.issubdtype(inputs.dtype, np.floating) or np.issubdtype(inputs.dtype, np.integer)
                                or inputs.dtype == np.bool_):
        raise DataFileError(path, f"array 'inputs' must be (N, T, I) numbers, found shape {inputs.shape} of "
                                  f"{inputs.dtype}")
    count, steps = inputs.shape[:2]
    if count == 0 or steps == 0:
        raise DataFileError(path, f"array 'inputs' is empty, shape {inputs.shape}")
    _finite(path, "inputs", inputs)
    targets = data.get("targets")
    if targets is not None:
        if targets.ndim in (2, 3) and targets.shape[:2] != (count, steps):
            raise DataFileError(path, f"array 'targets' has {targets.shape[:2]} sequences and steps, 'inputs' has "
                                      f"{(count, steps)}")
        if targets.ndim == 2 and np.issubdtype(targets.dtype, np.integer):
            if targets.min() < 0:
                raise DataFileError(path, f"array 'targets' holds class ids and has {targets.min()}; ids start at 0")
            target_tensor = torch.from_numpy(targets.astype(np.int64))
        elif targets.ndim == 3 and (np.issubdtype(targets.dtype, np.floating) or targets.dtype == np.bool_
                                    or np.issubdtype(targets.dtype, np.integer)):
            _finite(path, "targets", targets)
            target_tensor = torch.from_numpy(targets.astype(np.float32))
        else:
            raise DataFileError(path, f"array 'targets' must be (N, T, O) numbers or (N, T) integer class ids, "
                                      f"found shape {targets.shape} of {targets.dtype}")
    else:
        target_tensor = torch.zeros(count, steps, 0)
    if "mask" in data and "lengths" in data:
        raise DataFileError(path, "has both 'mask' and 'lengths'; give one")
    if "lengths" in data:
        lengths = data["lengths"]
        if lengths.shape != (count,) or not np.issubdtype(lengths.dtype, np.integer):
            raise DataFileError(path, f"array 'lengths' must be ({count},) integers, found shape {lengths.shape} of "
                                      f"{lengths.dtype}")
        if lengths.min() < 1 or lengths.max() > steps:
            raise DataFileError(path, f"array 'lengths' must be in [1, {steps}], found {lengths.min()} to "
                                      f"{lengths.max()}")
        length_tensor = torch.from_numpy(lengths.astype(np.int64))
        mask = (torch.arange(steps).unsqueeze(0) < length_tensor.unsqueeze(1)).float()
    elif "mask" in data:
        raw = data["mask"]
        if raw.shape != (count, steps):
            raise DataFileError(path, f"array 'mask' must be {(count, steps)} like the sequences, found {raw.shape}")
        if not (np.issubdtype(raw.dtype, np.floating) or np.issubdtype(raw.dtype, np.integer) or raw.dtype == np.bool_):
            raise DataFileError(path, f"array 'mask' must hold numbers (1 scored, 0 not), found {raw.dtype}")
        _finite(path, "mask", raw)
        mask = torch.from_numpy(raw.astype(np.float32))
        scored = mask.ne(0)
        last = torch.where(scored, torch.arange(1, steps + 1).unsqueeze(0), torch.zeros(1, dtype=torch.long))
        length_tensor = last.max(1).values.clamp(min=1)
    else:
        mask = torch.ones(count, steps)
        length_tensor = torch.full((count,), steps, dtype=torch.long)
    return Arrays(torch.from_numpy(inputs.astype(np.float32)), target_tensor, mask, length_tensor)


@functools.lru_cache(maxsize=16)
def _read_cached(path: str, stamp: tuple[int, int], targets_required: bool) -> Arrays:
    return arrays_from(_load_file(Path(path)), Path(path), targets_required=targets_required)


def read_sequences(path: str | Path, *, targets_required: bool = True) -> Arrays:
    """A sequence file's arrays, read once while the file is unchanged (cached by path, size and time)."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return arrays_from(_load_file(path), path, targets_required=targets_required)  # reports the problem
    return _read_cached(str(path.resolve()), (stat.st_mtime_ns, stat.st_size), targets_required)


def write_sequences(path: str | Path, arrays: Mapping[str, torch.Tensor | np.ndarray]) -> None:
    """Write named arrays as ``.npz`` or ``.safetensors`` (by the suffix), through a temporary file."""
    from cogdsl.training.checkpoints import atomic_write_bytes

    path = Path(path)
    plain = {name: (value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value))
             for name, value in arrays.items()}
    if path.suffix == ".npz":
        import io

        buffer = io.BytesIO()
        np.savez(buffer, **plain)
        atomic_write_bytes(path, buffer.getvalue())
    elif path.suffix == ".safetensors":
        from safetensors.numpy import save

        atomic_write_bytes(path, save({k: np.ascontiguousarray(v) for k, v in plain.items()}))
    else:
        raise UsageError(f"{path}: write sequences to a {' or '.join(SUFFIXES)} file")


# -- the task --------------------------------------------------------------------------------------------------


class SequencesTask(FileParams, Task):
    """Your own sequences, from .npz or .safetensors files (inputs, targets, optional mask or lengths)."""

    name: ClassVar[str] = "sequences"
    params: ClassVar[tuple[TaskParam, ...]] = (
        TaskParam("train", str, "", doc="the training file (.npz or .safetensors), relative to the spec's folder"),
        TaskParam("valid", str, "", doc="the validation file; without it, the last valid_fraction of train"),
        TaskParam("test", str, "", doc="the test file that cogdsl eval scores"),
        TaskParam("valid_fraction", float, 0.1, minimum=0.0, maximum=0.5,
                  doc="without a valid file: the fraction of train held out for validation (its last sequences)"),
        TaskParam("loss", str, "auto", choices=LOSSES,
                  doc="bce, ce or mse; auto follows the output's activation (sigmoid, softmax, none)"),
    )
    reads_files: ClassVar[bool] = True
    fixed_splits: ClassVar[bool] = True
    length_doc: ClassVar[str] = "no lengths: sequences come whole from the files; --len is refused"
    sizes_doc: ClassVar[str] = ("input: I, the last axis of the files' inputs (N, T, I); output: O, the last axis "
                                "of targets (N, T, O), or the largest class id + 1 for (N, T) ids")

    error_unit: ClassVar[str] = "bit errors, wrong classes or squared error (by the loss)"

    train: str
    valid: str
    test: str
    valid_fraction: float

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        if not self.train:
            from cogdsl.tasks.base import TaskParamError

            raise TaskParamError("task 'sequences': parameter 'train' is required (a .npz or .safetensors file)",
                                 self.name, "train")
        self.activation = "none"
        self._use(str(self.config["loss"]) if self.config["loss"] != "auto" else "bce")

    def _use(self, kind: str) -> None:
        self.kind = kind
        self.loss_fn = OutputLoss(kind, self.activation)
        self.error_unit = self.loss_fn.error_unit  # type: ignore[misc]  # per instance: it follows the loss

    # -- what the files hold ----------------------------------------------------------------------------
    def follow_output(self, activation: str) -> None:
        self.activation = activation
        self._use(loss_for(activation) if self.config["loss"] == "auto" else self.kind)

    def split(self, which: str) -> Arrays:
        """The ``train``, ``valid`` or ``test`` split (raises DataFileError for a bad file, or one that does not
        fit the sizes a checkpoint's model was trained with; UsageError for a test split the task does not
        have)."""
        if which == "test":
            if not self.test:
                raise UsageError("task sequences has no test file: add 'test: PATH' to the task to evaluate on it, or "
                                 "evaluate the validation split (cogdsl eval --split valid)")
            return self._fitting(read_sequences(self.path("test")), self.path("test"))
        if self.valid:
            file = self.path("train" if which == "train" else "valid")
            return self._fitting(read_sequences(file), file)
        whole = self._fitting(read_sequences(self.path("train")), self.path("train"))
        fraction = float(self.config["valid_fraction"])
        held = max(1, round(len(whole) * fraction)) if fraction > 0 else 0  # a fraction asked for holds out one
        if held == 0:
            return whole  # no validation set asked for: train and validate on the same sequences
        if held >= len(whole):
            raise DataFileError(self.path("train"), f"has {len(whole)} sequence(s): too few to hold out "
                                                    f"{self.config['valid_fraction']:g} for validation; give valid:")
        cut = len(whole) - held
        part = slice(0, cut) if which == "train" else slice(cut, None)
        return Arrays(whole.inputs[part], whole.targets[part], whole.mask[part], whole.lengths[part])

    def _fitting(self, arrays: Arrays, path: Path) -> Arrays:
        """``arrays`` checked against the sizes and the targets of a checkpoint's model (its data state), when the
        task has them: files read after training (eval, --resume) must fit the model they are fed to."""
        saved = getattr(self, "_saved_sizes", None)
        if saved is None:
            return arrays
        inputs, outputs = saved
        if arrays.inputs.shape[-1] != inputs:
            raise DataFileError(path, f"array 'inputs' has {arrays.inputs.shape[-1]} channels per step; the model was "
                                      f"trained on {inputs}")
        class_ids = bool(getattr(self, "_saved_class_ids", False))
        if arrays.targets.is_floating_point() == class_ids:
            found, trained = ("class ids (N, T)", "values (N, T, O)") if not class_ids else (
                "values (N, T, O)", "class ids (N, T)")
            raise DataFileError(path, f"array 'targets' holds {found}; the model was trained on {trained}")
        outputs = getattr(self, "_model_outputs", None) or outputs  # the model may have more classes than ids seen
        if class_ids and len(arrays) and int(arrays.targets.max()) >= outputs:
            raise DataFileError(path, f"array 'targets' has class id {int(arrays.targets.max())}; the model has "
                                      f"{outputs} classes (0 to {outputs - 1})")
        if not class_ids and arrays.targets.shape[-1] != outputs:
            raise DataFileError(path, f"array 'targets' has {arrays.targets.shape[-1]} values per step; the model "
                                      f"outputs {outputs}")
        return arrays

    def _check_splits(self) -> tuple[int, int]:
        """(I, O), the same in every file given."""
        sizes = None
        for which in ("train", "valid", "test"):
            if not self.config[which]:
                continue
            arrays = read_sequences(self.path(which))
            if not arrays.targets.is_floating_point() and self.kind != "ce":
                raise DataFileError(self.path(which), f"array 'targets' holds class ids (N, T), which only loss ce "
                                                      f"(a softmax output) is trained on; this task's loss is "
                                                      f"{self.kind}: give targets (N, T, O), or a softmax output")
            found = (int(arrays.inputs.shape[-1]), self._output_size(arrays))
            if sizes is not None and found[0] != sizes[0]:
                raise DataFileError(self.path(which), f"inputs have {found[0]} channels, but the train file's have "
                                                      f"{sizes[0]}")
            if sizes is not None and arrays.targets.is_floating_point() and found[1] != sizes[1]:
                raise DataFileError(self.path(which), f"targets have {found[1]} values per step, but the train "
                                                      f"file's have {sizes[1]}")
            sizes = found if sizes is None else (sizes[0], max(sizes[1], found[1]))
        assert sizes is not None
        return sizes

    @staticmethod
    def _output_size(arrays: Arrays) -> int:
        if arrays.targets.is_floating_point():
            return int(arrays.targets.shape[-1])
        return int(arrays.targets.max()) + 1

    @property
    def input_size(self) -> int:
        return self._sizes()[0]

    @property
    def output_size(self) -> int:
        return self._sizes()[1]

    def _sizes(self) -> tuple[int, int]:
        """(I, O): from a checkpoint's data state when it has them (no file read), else from the files."""
        saved = getattr(self, "_saved_sizes", None)
        return saved if saved is not None else self._check_splits()

    @property
    def output_size_exact(self) -> bool:  # type: ignore[override]
        """Class ids give the least number of classes (the largest id + 1): a spec may write more."""
        saved = getattr(self, "_saved_class_ids", None)
        if saved is not None:
            return not saved
        return read_sequences(self.path("train")).targets.is_floating_point()

    # -- batches ----------------------------------------------------------------------------------------
    def sample(self, batch: int, generator: torch.Generator, length: int | None = None) -> Batch:
        """``batch`` training sequences drawn uniformly with replacement (``length`` is ignored), on the host."""
        batch = self._check_batch(batch)
        data = self.split("train")
        rows = torch.randint(len(data), (batch,), generator=generator, device=generator.device).cpu()
        return data.rows(rows).to(generator.device)

    def evaluation_batches(self, sequences: int, seed: int, batch: int, length: int | None,
                           split: str = "test") -> Iterator[Batch]:
        """The first ``sequences`` sequences of ``split``, in file order, ``batch`` at a time."""
        data = self.split(split)
        rows = torch.arange(min(sequences, len(data)))
        for start in range(0, rows.numel(), batch):
            yield data.rows(rows[start:start + batch])

    def sequence_losses(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.loss_fn.sequence_losses(logits, batch)

    def errors(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.loss_fn.errors(logits, batch)

    def metrics(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        return self.loss_fn.metrics(logits, batch)

    def reward(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return (self.errors(logits, batch) == 0).to(logits.dtype)

    def follow_model(self, model: Any) -> None:
        self._model_outputs = int(model.spec.outputs[0].size.data)

    def data_state(self) -> dict[str, Any]:
        """The loss it trained with and the sizes it gave the model, so that ``eval`` and ``predict`` need not
        read the training file (the files they read are checked against these sizes)."""
        input_size, output_size = self._sizes()
        return {"loss": self.kind, "input_size": input_size, "output_size": output_size,
                "class_ids": not self.output_size_exact}

    def load_data_state(self, state: Mapping[str, Any]) -> None:
        if state.get("loss") in LOSSES[1:]:
            self._use(str(state["loss"]))
        sizes = (state.get("input_size"), state.get("output_size"))
        if all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in sizes):
            self._saved_sizes: tuple[int, int] | None = (int(sizes[0]), int(sizes[1]))  # type: ignore[arg-type]
            self._saved_class_ids = bool(state.get("class_ids", False))
