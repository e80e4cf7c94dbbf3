"""Your own data in Python: ``cogdsl.train(spec, data=..., eval_data=...)``.

``data`` (and ``eval_data``) may be

- a map-style torch ``Dataset`` of single sequences: cogdsl batches it (``batch`` of the train
  section per step, a fresh shuffle every epoch from the run's seed, each process of a torchrun
  run taking its own share), so ``--resume`` continues exactly where the run stopped;
- a ``DataLoader`` or an ``IterableDataset``, or any iterable of batches (a list, a generator):
  read in its own order and started again when it runs out; a resumed run skips the batches
  already taken in the current pass (a loader that shuffles without a seeded generator gives
  other batches then). Under torchrun process r of K takes batches r, r + K, r + 2K, ... of it,
  unless a DataLoader's sampler is a ``DistributedSampler``, which shares the data out itself.

A sequence (an item of a Dataset) or a batch is any of::

    (inputs, targets)  or  (inputs, targets, mask)
    {"inputs": ..., "targets": ..., "mask": ... or "lengths": ...}
    a cogdsl.tasks.Batch

with inputs (T, I) per sequence or (B, T, I) per batch, or a dict of them by the spec's input
names (``{"story": ..., "question": ...}``); targets (T, O) / (B, T, O) floats or (T,) / (B, T)
class ids; mask (T,) / (B, T), 1 where the output is scored; lengths () / (B,). Sequences of
different lengths are padded to the longest of their batch, unscored. The loss follows the
output's activation as for sequence files (:class:`cogdsl.tasks.sequences.OutputLoss`), unless the
spec names a task, whose loss is used. Sizes the spec leaves out are read off the first batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import torch

from cogdsl.errors import UsageError
from cogdsl.language.spec import WHOLE_KINDS, Spec
from cogdsl.tasks.base import Batch, Task, TaskParam
from cogdsl.tasks.sequences import OutputLoss, loss_for
from cogdsl.training.streams import to_device


def _is_map_dataset(data: Any) -> bool:
    from torch.utils.data import DataLoader, IterableDataset

    return (hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (DataLoader,
            IterableDataset, Sequence, Mapping, torch.Tensor)))


def _kinds_by_name(spec: Spec) -> dict[str, str]:
    return {i.name: str(i.kind.data) for i in spec.inputs}


def _tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise UsageError(f"your data: {what} is {type(value).__name__}, not an array ({err})") from None


def _fields(item: Any, what: str) -> tuple[Any, Any, Any, Any]:
    """(inputs, targets, mask, lengths) of a sequence or batch in any of the accepted forms."""
    if isinstance(item, Batch):
        return item.inputs, item.targets, item.mask, None
    if isinstance(item, Mapping) and "inputs" in item:
        unknown = set(item) - {"inputs", "targets", "mask", "lengths"}
        if unknown:
            raise UsageError(f"your data: {what} has unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                             "a batch has inputs, targets and mask or lengths")
        if "targets" not in item:
            raise UsageError(f"your data: {what} has no 'targets'")
        return item["inputs"], item["targets"], item.get("mask"), item.get("lengths")
    if isinstance(item, (tuple, list)) and len(item) in (2, 3):
        return item[0], item[1], item[2] if len(item) == 3 else None, None
    raise UsageError(f"your data: {what} is a {type(item).__name__}; give (inputs, targets), (inputs, targets, mask), "
                     "a dict with inputs and targets, or a cogdsl Batch")


# A batch's inputs of each kind: how many dimensions they have, and what they are.
_SHAPES = {"vector": (3, "(B, T, I)"), "words": (3, "(B, T, words) of word ids"),
           "sentences": (4, "(B, T, sentences, words) of word ids"), "sequence": (3, "(B, S, I), the whole sequence"),
           "image": (3, "(B, H, W), the whole image")}
_WORD_KINDS = ("words", "sentences")


def _checked(tensor: torch.Tensor, kind: str, what: str) -> torch.Tensor:
    """A batch's input of ``kind``, its rank checked, as the model takes it: word ids long, anything else float."""
    dims, shape = _SHAPES.get(kind, (3, "(B, T, I)"))
    if tensor.dim() != dims:
        raise UsageError(f"your data: {what} have shape {tuple(tensor.shape)}; a batch's are {shape} (a Dataset "
                         "gives one sequence at a time, without B, which cogdsl batches)")
    if kind in _WORD_KINDS:
        return tensor if tensor.dtype == torch.long else tensor.long()
    return tensor if tensor.is_floating_point() else tensor.float()


def _inputs(raw: Any, kinds: dict[str, str], what: str) -> torch.Tensor | dict[str, torch.Tensor]:
    """Inputs by the spec's input names become inputs by kind, as tasks give them; one array for the one input
    of a spec (in a dict by its kind when that is not a vector, as tasks give them)."""
    if not isinstance(raw, Mapping):
        if len(kinds) > 1:
            raise UsageError(f"your data: {what} inputs are one array, but the spec has inputs {', '.join(kinds)}: "
                             "give them as a dict by name")
        name, kind = next(iter(kinds.items()), ("", "vector"))
        if kind == "vector":
            return _checked(_tensor(raw, f"{what} inputs"), kind, f"{what} inputs")
        raw = {name: raw}
    by_kind: dict[str, torch.Tensor] = {}
    named: dict[str, str] = {}
    for name, value in raw.items():
        if name in kinds:
            kind = kinds[name]
        elif name in kinds.values():
            kind = str(name)
        else:
            raise UsageError(f"your data: {what} has input '{name}', which the spec does not have (its inputs: "
                             f"{', '.join(kinds)})")
        if kind in by_kind:
            raise UsageError(f"your data: {what} gives inputs '{named[kind]}' and '{name}', both of kind {kind}; "
                             "your data can feed one input of each kind")
        by_kind[kind], named[kind] = _checked(_tensor(value, f"{what} input '{name}'"), kind, f"{what} input "
                                              f"'{name}'"), str(name)
    missing = [name for name, kind in kinds.items() if kind not in by_kind]
    if missing:
        raise UsageError(f"your data: {what} has no input {', '.join(repr(m) for m in missing)} (the spec's "
                         f"inputs: {', '.join(kinds)})")
    return by_kind


def as_batch(item: Any, kinds: dict[str, str], what: str = "a batch") -> Batch:
    """A batch of your data as a :class:`Batch` (see the module docstring for the forms it may take)."""
    raw_inputs, raw_targets, raw_mask, raw_lengths = _fields(item, what)
    inputs = _inputs(raw_inputs, kinds, what)
    targets = _tensor(raw_targets, f"{what} targets")
    if targets.is_floating_point() or targets.dtype == torch.bool:
        targets = targets.float()
    else:
        targets = targets.long()
    if targets.dim() < 2:
        raise UsageError(f"your data: {what} targets have shape {tuple(targets.shape)}; a batch's are (B, T, O), or "
                         "(B, T) class ids")
    batch, steps = targets.shape[:2]  # the targets': a whole input (a sequence, an image) has no time axis
    if raw_mask is not None:
        mask = _tensor(raw_mask, f"{what} mask").float()
    elif raw_lengths is not None:
        lengths = _tensor(raw_lengths, f"{what} lengths").long().view(-1)
        mask = (torch.arange(steps, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)).float()
    else:
        mask = torch.ones(batch, steps, device=targets.device)
    try:
        return Batch(inputs, targets, mask, dict(item.info) if isinstance(item, Batch) else {})
    except ValueError as err:
        raise UsageError(f"your data: {what}: {err}") from None


def collate(items: list[Any], kinds: dict[str, str]) -> Batch:
    """Single sequences (a Dataset's items) as one batch, padded to the longest with unscored steps.

    A sequence's steps are its targets' (T, O) or (T,); its inputs at each step must have as many. A whole
    sequence input (S, I) is padded to the longest of its batch, word ids (a sentence's words) with 0, the
    padding id; anything else must have the same shape in every item."""
    fields = [_fields(item, f"item {i}") for i, item in enumerate(items)]
    only = next(iter(kinds.values())) if len(kinds) == 1 else "vector"

    def kind_of(name: str) -> str:
        return only if name == "" else kinds.get(name, name)

    def label(name: str) -> str:
        return "inputs" if name == "" else f"input '{name}'"

    def inputs_of(raw: Any, index: int) -> dict[str, torch.Tensor]:
        return ({str(k): _tensor(v, f"item {index} input '{k}'") for k, v in raw.items()} if isinstance(raw, Mapping)
                else {"": _tensor(raw, f"item {index} inputs")})

    def stack(values: list[torch.Tensor], what: str, length: int | None = None, pad_all: bool = False,
              same: bool = False) -> torch.Tensor:
        """``values`` padded with 0 along their first axis to ``length`` (None: the longest), and along the
        others to the largest with ``pad_all``; with ``same`` they must have one shape."""
        first = values[0]
        for index, value in enumerate(values):
            if value.dim() != first.dim() or (value.shape[1:] != first.shape[1:] and not pad_all) or (
                    same and value.shape != first.shape):
                rest = "they must have one shape" if same else "they may differ only in their number of steps"
                raise UsageError(f"your data: {what} of item {index} have shape {tuple(value.shape)}, item 0's "
                                 f"{tuple(first.shape)}; {rest}")
        values = [v.float() if v.dtype == torch.bool else v for v in values]
        if first.dim() == 0 or same:
            return torch.stack(values)
        sizes = [length if length is not None else max(int(v.shape[0]) for v in values)]
        sizes += [max(int(v.shape[d]) for v in values) for d in range(1, first.dim())]
        padded = []
        for value in values:
            pad: list[int] = []
            for d in reversed(range(value.dim())):
                pad += [0, sizes[d] - int(value.shape[d])]
            padded.append(torch.nn.functional.pad(value, pad))
        return torch.stack(padded)

    raw_inputs = [inputs_of(f[0], i) for i, f in enumerate(fields)]
    names = list(raw_inputs[0])
    for index, given in enumerate(raw_inputs):
        if sorted(given) != sorted(names):
            raise UsageError(f"your data: item {index} has {', '.join(map(label, sorted(given)))}, item 0 "
                             f"{', '.join(map(label, sorted(names)))}")
    targets = [_tensor(f[1], f"item {i} targets") for i, f in enumerate(fields)]
    lengths = []
    for index, (given, target) in enumerate(zip(raw_inputs, targets, strict=True)):
        if target.dim() == 0:
            raise UsageError(f"your data: item {index} targets are one number; a sequence's are (T, O), or (T,) "
                             "class ids")
        own = int(target.shape[0])
        for name, value in given.items():
            if kind_of(name) not in WHOLE_KINDS and value.dim() > 0 and int(value.shape[0]) != own:
                raise UsageError(f"your data: item {index} has {value.shape[0]} steps of {label(name)} but {own} of "
                                 "targets")
        lengths.append(own)
    steps = max(lengths)
    masks = []
    for index, ((_, _, mask, length), own) in enumerate(zip(fields, lengths, strict=True)):
        if mask is not None:
            masks.append(_tensor(mask, f"item {index} mask").float())
            if tuple(masks[-1].shape) != (own,):
                raise UsageError(f"your data: item {index} mask has shape {tuple(masks[-1].shape)}; it has {own} "
                                 f"steps, so its mask is ({own},)")
        else:
            scored = int(length) if length is not None else own
            masks.append((torch.arange(own) < scored).float())
    stacked = {}
    for name in names:
        kind, values = kind_of(name), [given[name] for given in raw_inputs]
        if kind in WHOLE_KINDS:
            stacked[name] = stack(values, label(name), same=kind == "image")
        else:
            stacked[name] = stack(values, label(name), steps, pad_all=kind in _WORD_KINDS)
    batch_inputs: Any = stacked[""] if names == [""] else stacked
    return as_batch((batch_inputs, stack(targets, "targets", steps), stack(masks, "masks", steps)), kinds,
                    "a batch of your Dataset")


class _Source:
    """Your data as an endless, resumable series of batches for one process."""

    def __init__(self, data: Any, kinds: dict[str, str], batch: int, seed: int, rank: int = 0, world: int = 1,
                 what: str = "data") -> None:
        self.data, self.kinds, self.batch, self.seed, self.rank, self.world = data, kinds, batch, seed, rank, world
        self.what = what
        self.map_style = _is_map_dataset(data)
        if not self.map_style and not isinstance(data, Iterable):
            raise UsageError(f"{what}= must be a torch Dataset, a DataLoader or an iterable of batches, not a "
                             f"{type(data).__name__}")
        self.epoch, self.position = 0, 0
        self._iterator: Iterator[Batch] | None = None
        self._peeked: list[Batch] = []

    def _epoch_order(self) -> list[int]:
        """This process's share of a fresh shuffle of the Dataset, from (seed, epoch)."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.data), generator=generator).tolist()
        return order[self.rank::self.world]

    def _batches(self) -> Iterator[Batch]:
        if self.map_style:
            order = self._epoch_order()
            if not order:
                raise UsageError(f"{self.what}= is an empty Dataset")
            for start in range(self.position * self.batch, len(order), self.batch):
                yield collate([self.data[i] for i in order[start:start + self.batch]], self.kinds)
            return
        from torch.utils.data import DataLoader, IterableDataset
        from torch.utils.data.distributed import DistributedSampler

        source: Iterable[Any] = self.data
        if isinstance(self.data, IterableDataset):
            source = DataLoader(self.data, batch_size=self.batch, collate_fn=lambda items: collate(items, self.kinds))
        # Under torchrun each process takes every world-th batch (its own share), unless the loader already
        # shares its data out with a DistributedSampler.
        shared = isinstance(self.data, DataLoader) and isinstance(self.data.sampler, DistributedSampler)
        stride, offset = (1, 0) if shared else (self.world, self.rank)
        iterator = itertools.islice(iter(source), offset, None, stride)
        for _ in range(self.position):  # a resumed run: the batches this pass already took
            next(iterator, None)
        for number, item in enumerate(iterator, start=self.position):
            yield as_batch(item, self.kinds, f"{self.what} batch {number * stride + offset}")

    def next(self) -> Batch:
        if self._peeked:
            self.position += 1
            return self._peeked.pop(0)
        for _ in range(2):
            if self._iterator is None:
                self._iterator = self._batches()
            found = next(self._iterator, None)
            if found is not None:
                self.position += 1
                return found
            if self.position == 0:
                break
            self.epoch, self.position, self._iterator = self.epoch + 1, 0, None
        if self.epoch > 0:
            raise UsageError(f"{self.what}= ran out and gave no batch when read again: a generator is read only "
                             "once; pass a list, a DataLoader, or an iterable whose __iter__ starts again (or train "
                             "fewer steps than it has batches)")
        raise UsageError(f"{self.what}= gave no batch at all")

    def peek(self) -> Batch:
        """The next batch, without taking it."""
        if not self._peeked:
            taken = self.next()
            self.position -= 1
            self._peeked.append(taken)
        return self._peeked[0]

    def rewind(self) -> None:
        self._iterator, self._peeked = None, []


class DataTask(Task):
    """Training (and evaluating) on your own data; the loss follows the output, or the spec's task's."""

    name: ClassVar[str] = "data"
    params: ClassVar[tuple[TaskParam, ...]] = ()
    length_doc: ClassVar[str] = "no lengths: your data's batches come as they are"
    sizes_doc: ClassVar[str] = "read off the first batch of your data: inputs (B, T, I), targets (B, T, O)"

    def __init__(self, spec: Spec, data: Any = None, eval_data: Any = None, task: Task | None = None,
                 batch: int = 16, seed: int = 0, rank: int = 0, world: int = 1) -> None:
        super().__init__()
        if data is None and task is None:
            raise UsageError("no training data: pass data= (eval_data= is only evaluated), or name a task in the "
                             "spec's train section")
        self.spec, self.task = spec, task
        self.kinds = _kinds_by_name(spec)
        activation = spec.outputs[0].activation if len(spec.outputs) == 1 else None
        output = str(activation.data) if activation is not None else "none"
        self.loss_fn = OutputLoss(loss_for(output), output)  # mse compares what a tanh or relu output writes
        self.error_unit = task.error_unit if task is not None else self.loss_fn.error_unit  # type: ignore[misc]
        self.items = task.items if task is not None else "sequences"  # type: ignore[misc]
        self.error_rate = task.error_rate if task is not None else False  # type: ignore[misc]
        self.source = _Source(data, self.kinds, batch, seed, rank, world) if data is not None else None
        self.eval_data = eval_data
        self.can_evaluate = eval_data is not None or task is not None  # type: ignore[misc]
        if eval_data is not None and _Source(eval_data, self.kinds, batch, seed, what="eval_data").map_style:
            if len(eval_data) == 0:
                raise UsageError("eval_data= is an empty Dataset")
        if self.source is not None:
            # The first batch is checked now, before anything is written; it is still the first one trained on.
            self.source.peek()

    # -- sizes ------------------------------------------------------------------------------------------------
    def _example(self) -> Batch:
        if self.source is not None:
            return self.source.peek()
        if self.eval_data is not None:
            return next(self._eval_batches(1))
        raise UsageError("no data to read the spec's sizes from: pass data=")

    @property
    def input_kinds(self) -> dict[str, int]:
        if self.task is not None:
            return self.task.input_kinds
        batch = self._example()
        if isinstance(batch.inputs, dict):
            return {kind: self._vocab(kind) if kind in _WORD_KINDS else int(value.shape[-1])
                    for kind, value in batch.inputs.items()}
        return {"vector": int(batch.inputs.shape[-1])}

    def _vocab(self, kind: str) -> int:
        """The vocabulary the spec writes for its input of word ids of ``kind``: one batch cannot tell it."""
        spec_input = next(i for i in self.spec.inputs if str(i.kind.data) == kind)
        if isinstance(spec_input.size.data, int):
            return spec_input.size.data
        raise UsageError(f"your data's input '{spec_input.name}' carries word ids: write its vocabulary in the spec "
                         f"({kind}(vocab=N)), it cannot be read off one batch")

    @property
    def input_size(self) -> int:
        return next(iter(self.input_kinds.values()))

    @property
    def output_size(self) -> int:
        if self.task is not None:
            return self.task.output_size
        targets = self._example().targets
        if targets.is_floating_point():
            return int(targets.shape[-1])
        written = self.spec.outputs[0].size.data if len(self.spec.outputs) == 1 else None
        if isinstance(written, int):
            return written
        raise UsageError("your data's targets are class ids: write the output's size in the spec (the number of "
                         "classes), it cannot be read off one batch")

    # -- batches and scores ---------------------------------------------------------------------------------------
    def _eval_batches(self, batch: int) -> Iterator[Batch]:
        source = _Source(self.eval_data, self.kinds, batch, seed=0, what="eval_data")
        if source.map_style:
            for start in range(0, len(self.eval_data), batch):
                yield collate([self.eval_data[i] for i in range(start, min(start + batch, len(self.eval_data)))],
                              self.kinds)
            return
        yield from source._batches()

    def evaluation_batches(self, sequences: int, seed: int, batch: int, length: int | None,
                           split: str = "test") -> Iterator[Batch]:
        """The first ``sequences`` sequences of ``eval_data`` in its order (or the spec's task's)."""
        if self.eval_data is None:
            if self.task is None:
                raise UsageError("no evaluation data: pass eval_data=")
            yield from self.task.evaluation_batches(sequences, seed, batch, length, split)
            return
        done = 0
        for found in self._eval_batches(batch):
            if done >= sequences:
                break
            keep = min(found.batch_size, sequences - done)
            yield found if keep == found.batch_size else found.map(lambda t, keep=keep: t[:keep])
            done += keep
        if done == 0:
            raise UsageError("eval_data= gave no batch: it is empty, or a generator that an earlier evaluation read "
                             "(eval_data is read again at every evaluation: pass a list, a Dataset or a DataLoader)")

    def sample(self, batch: int, generator: torch.Generator, length: int | None = None) -> Batch:
        """A batch of the spec's task (a run on the task with eval_data trains on these), else one to look at
        (the picture of the model at work that TensorBoard gets): the first of eval_data, else the next training
        batch, left for training to take. Training reads your data through :class:`DataStream`, never here: a
        picture must not take a batch from it."""
        if self.task is not None:
            return self.task.sample(batch, generator, length)
        found = next(self._eval_batches(batch), None) if self.eval_data is not None else None
        if found is None:
            if self.source is None:
                raise UsageError("no training data: pass data=")
            found = self.source.peek()
        keep = min(batch, found.batch_size)
        return found if keep == found.batch_size else found.map(lambda t: t[:keep])

    def sequence_losses(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.task.sequence_losses(logits, batch) if self.task is not None else self.loss_fn.sequence_losses(
            logits, batch)

    def errors(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.task.errors(logits, batch) if self.task is not None else self.loss_fn.errors(logits, batch)

    def metrics(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        return self.task.metrics(logits, batch) if self.task is not None else self.loss_fn.metrics(logits, batch)

    def reward(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.task.reward(logits, batch) if self.task is not None else super().reward(logits, batch)

    def data_state(self) -> dict[str, Any]:
        return self.task.data_state() if self.task is not None else {}

    def length_range(self) -> tuple[int, int]:
        """The spec's task's when the evaluations are on it: at its longest length, as in a run on the task."""
        if self.task is not None and self.eval_data is None:
            return self.task.length_range()
        raise NotImplementedError("your data has no length range")


class DataStream:
    """Training batches from your data (the source of a :class:`DataTask`), for one process, on the device."""

    def __init__(self, task: DataTask, device: torch.device) -> None:
        if task.source is None:
            raise UsageError("no training data: pass data=")
        self.device, self.source = device, task.source

    def next(self, task: Task | None, batch: int) -> Batch:
        return to_device(self.source.next(), self.device)

    def state(self) -> dict[str, torch.Tensor]:
        return {"epoch": torch.tensor([self.source.epoch]), "position": torch.tensor([self.source.position])}

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        self.source.epoch = int(tensors["epoch"].view(-1)[0])
        self.source.position = int(tensors["position"].view(-1)[0])
        self.source.rewind()

    def reseed(self, seed: int) -> None:
        self.source.seed = seed
        self.source.rewind()
