"""Task declarations, the ``Batch`` container, the ``Task`` base class and metrics.

A task is an algorithmic problem from Graves et al. 2014, "Neural Turing Machines",
section 4 (copy, repeat copy, associative recall, priority sort). Each task declares its
parameters as data -- a tuple of :class:`TaskParam` plus ``constraints`` pairs -- so that
the spec validator, the JSON Schema and the docs can be generated from the declarations,
and so that :meth:`Task.validate_params` can check a spec's ``train: task:`` section
without building anything.

Every task samples whole batches with tensor operations, draws all of its randomness from
the ``torch.Generator`` it is given (same seed -> identical batches), and puts its tensors
on that generator's device.

Shapes used below: ``B`` batch, ``T`` time steps, ``I`` input size, ``O`` output size.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

ParamValue = int | float | bool | str

WHOLE_INPUTS = {"sequence": "(B, S, size)", "image": "(B, H, W)"}
"""Input kinds a batch gives whole, with no time axis: every step of the model sees all of it."""

_TYPE_NAMES: dict[type, str] = {int: "int", float: "float", bool: "bool", str: "str"}

# The declared maxima the generated tasks share: a sequence of up to MAX_LEN vectors (or steps) of up to
# MAX_BITS bits. Both are far past what a model learns in practice, yet a batch of them is still drawn with
# ordinary tensors (and a larger count no longer overflows the integer arithmetic of sampling).
MAX_LEN = 100_000
MAX_BITS = 4096


def _shown(value: object) -> str:
    """A found value for a message: repr, with a very long number or text cut to its start and its length."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text):,} characters)"


class TaskParamError(ValueError):
    """A task parameter is unknown, of the wrong type, or out of range.

    Attributes:
        task: the task's registered name (``"copy"``).
        param: the offending parameter's name, or ``None`` if the error is not about one.
    """

    def __init__(self, message: str, task: str, param: str | None) -> None:
        super().__init__(message)
        self.task = task
        self.param = param


@dataclass(frozen=True)
class TaskParam:
    """The declaration of one task parameter.

    Attributes:
        name: the key used in a spec (``bits``).
        type: one of ``int``, ``float``, ``bool``, ``str``.
        default: the value used when the spec leaves the parameter out.
        minimum: the smallest allowed value (inclusive); ``None`` = unbounded.
        maximum: the largest allowed value (inclusive); ``None`` = unbounded.
        choices: the allowed values, or ``None`` for any value of ``type`` within range.
        doc: one line for the docs table and error hints.
    """

    name: str
    type: type
    default: ParamValue
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[ParamValue, ...] | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        assert self.type in _TYPE_NAMES, f"TaskParam {self.name}: unsupported type {self.type}"
        assert self._type_ok(self.default), f"TaskParam {self.name}: default has wrong type"
        assert self._range_ok(self.default), f"TaskParam {self.name}: default out of range"

    @property
    def type_name(self) -> str:
        """The type as a word: ``"int"``, ``"float"``, ``"bool"`` or ``"str"``."""
        return _TYPE_NAMES[self.type]

    def describe_allowed(self) -> str:
        """The allowed values in words, e.g. ``"an int >= 1"`` or ``"one of 'a', 'b'"``."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        article = "an" if self.type_name == "int" else "a"
        text = f"{article} {self.type_name}"
        if self.minimum is not None and self.maximum is not None:
            text += f" in [{_fmt(self.minimum)}, {_fmt(self.maximum)}]"
        elif self.minimum is not None:
            text += f" >= {_fmt(self.minimum)}"
        elif self.maximum is not None:
            text += f" <= {_fmt(self.maximum)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (type as a word), for schemas and docs tables."""
        return {
            "name": self.name,
            "type": self.type_name,
            "default": self.default,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": list(self.choices) if self.choices is not None else None,
            "doc": self.doc,
        }

    def check(self, value: object, task: str) -> ParamValue:
        """Return ``value`` (an int is widened to float for a float param) or raise.

        Raises:
            TaskParamError: wrong type (``bits="8"``; ``True`` is not an int) or out of
                range / not among the choices; the message names the task, the parameter,
                what was allowed and what was found.
        """
        if not self._type_ok(value):
            raise TaskParamError(
                f"task '{task}': parameter '{self.name}' must be {self.describe_allowed()}, "
                f"got {_shown(value)} ({type(value).__name__})",
                task,
                self.name,
            )
        if self.type is float:
            value = float(value)  # type: ignore[arg-type]
            if not math.isfinite(value):
                raise TaskParamError(
                    f"task '{task}': parameter '{self.name}' must be a finite number, found {value!r} "
                    f"(allowed: {self.describe_allowed()})",
                    task,
                    self.name,
                )
        if not self._range_ok(value):
            raise TaskParamError(
                f"task '{task}': parameter '{self.name}' must be {self.describe_allowed()}, "
                f"got {_shown(value)}",
                task,
                self.name,
            )
        return value  # type: ignore[return-value]

    def _type_ok(self, value: object) -> bool:
        # bool is a subclass of int in Python; a spec saying `bits: true` is a mistake.
        if isinstance(value, bool):
            return self.type is bool
        if self.type is float:
            return isinstance(value, (int, float))
        return isinstance(value, self.type)

    def _range_ok(self, value: object) -> bool:
        if self.choices is not None and value not in self.choices:
            return False
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and math.isnan(value):
                return False
            if self.minimum is not None and value < self.minimum:
                return False
            if self.maximum is not None and value > self.maximum:
                return False
        return True


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass
class Batch:
    """One batch of sequences of a task.

    Attributes:
        inputs: ``(B, T, I)`` float32, what the model reads at each step; or, for a task
            with several inputs, a dict by input kind (see :attr:`Task.input_kinds`), e.g.
            ``{"sentences": (B, 1, S, L), "words": (B, 1, L)}`` of word ids for QA, or
            ``{"sequence": (B, S, I)}``, a whole sequence with no time axis, for the
            sequence-to-sequence tasks, or ``{"image": (B, H, W)}``, a whole image, for
            the visual tasks (the model then runs T steps, the targets').
        targets: ``(B, T, O)`` float32 bits (0 or 1), what the model should write; or, for
            a task whose loss is ``"ce"``, ``(B, T)`` long class ids (answer words).
        mask: ``(B, T)`` float32, 1 where the output is scored and 0 elsewhere (e.g. while
            the input is still being presented).
        info: per-sequence facts a task's metrics use (e.g. ``"task"``, the bAbI task
            number of each question), each ``(B, ...)``.
    """

    inputs: torch.Tensor | dict[str, torch.Tensor]
    targets: torch.Tensor
    mask: torch.Tensor
    info: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        stepped = ({k: v for k, v in self.inputs.items() if k not in WHOLE_INPUTS} if isinstance(self.inputs, dict)
                   else {"vector": self.inputs})
        for key, shape in WHOLE_INPUTS.items():
            whole = self.inputs.get(key) if isinstance(self.inputs, dict) else None
            if whole is not None and (whole.dim() != 3 or whole.shape[0] != self.mask.shape[0]):
                raise ValueError(f"Batch expects a whole {key} {shape} with B = {self.mask.shape[0]}; "
                                 f"got {tuple(whole.shape)}")
        first = next(iter(stepped.values()), None)
        if first is None:  # only whole inputs: the steps are the targets'
            first = self.mask.unsqueeze(-1)
        class_ids = not self.targets.is_floating_point()
        if first.dim() < 3 or self.targets.dim() != (2 if class_ids else 3) or self.mask.dim() != 2:
            raise ValueError(
                "Batch expects inputs (B, T, ...), targets (B, T, O) or class ids (B, T), mask (B, T); got "
                f"{tuple(first.shape)}, {tuple(self.targets.shape)}, "
                f"{tuple(self.mask.shape)}"
            )
        bt = tuple(first.shape[:2])
        if tuple(self.targets.shape[:2]) != bt or tuple(self.mask.shape) != bt:
            raise ValueError(
                f"Batch: inputs, targets and mask must agree on (B, T) = {bt}; got targets "
                f"{tuple(self.targets.shape)}, mask {tuple(self.mask.shape)}"
            )

    @property
    def batch_size(self) -> int:
        """``B``."""
        return int(self.mask.shape[0])

    @property
    def steps(self) -> int:
        """``T``, the number of time steps."""
        return int(self.mask.shape[1])

    def map(self, function: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        """The same batch with ``function`` applied to every tensor."""
        inputs = ({k: function(v) for k, v in self.inputs.items()} if isinstance(self.inputs, dict)
                  else function(self.inputs))
        info = {k: function(v) for k, v in self.info.items()}
        return Batch(inputs, function(self.targets), function(self.mask), info)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The same batch with all of its tensors on ``device`` (``non_blocking``: from pinned memory,
        without waiting for the copy)."""
        return self.map(lambda tensor: tensor.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """The same batch in page-locked host memory, which a GPU copies from without blocking the host."""
        return self.map(lambda tensor: tensor.pin_memory())


class Task:
    """Base class of the algorithmic tasks.

    A subclass sets ``name``, ``params`` (its declarations), optionally ``constraints``
    (pairs ``(a, b)`` meaning ``a <= b``) and ``length_params`` (the pair of parameters
    that bound the length drawn by :meth:`sample`), and implements ``input_size``,
    ``output_size`` and ``_sample``.

    After ``__init__`` each parameter's validated value is an attribute (``task.bits``)
    and all of them are in ``task.config``.
    """

    name: ClassVar[str]
    params: ClassVar[tuple[TaskParam, ...]]
    constraints: ClassVar[tuple[tuple[str, str], ...]] = ()
    length_params: ClassVar[tuple[str, str] | None] = None
    min_length: ClassVar[int] = 1
    loss: ClassVar[str] = "bce"
    error_unit: ClassVar[str] = "bit errors"  # what :meth:`errors` counts, for reports
    # For the task reference (docs/tasks.md): what ``--len`` / ``sample(length=...)`` means for
    # this task ("" when it has no lengths), and the model sizes it needs, in terms of its parameters.
    length_doc: ClassVar[str] = ""
    sizes_doc: ClassVar[str] = ""
    # True for tasks whose ``_sample`` is tensor operations only, with no tensor read back into Python:
    # on a GPU they draw batches there (:mod:`cogdsl.training.streams`); the others draw on the host.
    samples_on_device: ClassVar[bool] = False
    # What one example is called in reports ("sequences", "questions", "images"), and whether each has one
    # answer, right or wrong, so that errors are reported as an error rate rather than errors per sequence.
    items: ClassVar[str] = "sequences"
    error_rate: ClassVar[bool] = False
    # True for tasks that read data files (their sizes and batches come from the files).
    reads_files: ClassVar[bool] = False
    # True for tasks with fixed splits (bAbI, your files): an evaluation scores a whole split by default.
    fixed_splits: ClassVar[bool] = False
    can_evaluate: ClassVar[bool] = True  # False for your own data with no evaluation set

    def __init__(self, **params: object) -> None:
        self.config: dict[str, ParamValue] = self.validate_params(params)
        for key, value in self.config.items():
            setattr(self, key, value)

    # -- declarations -------------------------------------------------------------------

    @classmethod
    def param(cls, name: str) -> TaskParam:
        """The declaration named ``name``; ``KeyError`` if there is none."""
        for p in cls.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @classmethod
    def defaults(cls) -> dict[str, ParamValue]:
        """Every parameter's default value."""
        return {p.name: p.default for p in cls.params}

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """A JSON-friendly description of the task: name, loss, params, constraints."""
        return {
            "name": cls.name,
            "loss": cls.loss,
            "doc": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
            "params": [p.to_dict() for p in cls.params],
            "constraints": [list(c) for c in cls.constraints],
        }

    @classmethod
    def validate_params(cls, params: Mapping[str, object]) -> dict[str, ParamValue]:
        """Check ``params`` against the declarations and fill in defaults.

        Returns:
            Every declared parameter's value, in declaration order.

        Raises:
            TaskParamError: an unknown name (with a did-you-mean), a wrong type, a value
                out of range, or a violated ``constraints`` pair; the message names the
                parameter(s) and what is allowed.
        """
        known = [p.name for p in cls.params]
        for key in params:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise TaskParamError(
                    f"task '{cls.name}': unknown parameter '{key}'{hint} "
                    f"(known parameters: {', '.join(known)})",
                    cls.name,
                    str(key),
                )
        values = {p.name: p.check(params.get(p.name, p.default), cls.name) for p in cls.params}
        for lo, hi in cls.constraints:
            if values[lo] > values[hi]:  # type: ignore[operator]
                raise TaskParamError(
                    f"task '{cls.name}': parameter '{lo}' ({values[lo]!r}) must be <= "
                    f"'{hi}' ({values[hi]!r})",
                    cls.name,
                    lo if lo in params else hi,
                )
        return values

    output_size_exact: ClassVar[bool] = True  # False: output_size is the least a model may have (class ids)
    # True for tasks whose answers are positions in their source sequence (sort(answer=positions), convex_hull):
    # a pointer output (``output y = pointer(ptr)``, pointer networks) points at them, whatever the source's
    # length; an output of at least ``output_size`` classes (the longest source) names them instead.
    points: ClassVar[bool] = False

    @property
    def error_name(self) -> str:
        """How reports name this task's errors: ``error_rate``, or the error unit per sequence (``bit_errors``)."""
        return "error_rate" if self.error_rate else self.error_unit.replace(" ", "_")

    # -- data the task read (a vocabulary), kept with a checkpoint ----------------------------

    def data_state(self) -> dict[str, Any]:
        """What a model trained on this task depends on that the task derived from its data (a data-file
        task's vocabulary), JSON-able; saved in each checkpoint, so that ``eval`` and ``predict`` map words
        to the ids the model was trained with. Empty for generated tasks."""
        return {}

    def load_data_state(self, state: Mapping[str, Any]) -> None:
        """Use a :meth:`data_state` saved with a checkpoint instead of deriving it again."""

    def locate(self, folder: Path) -> None:
        """Told the folder of the spec that names this task: data-file tasks read relative paths from there."""

    def shown_params(self) -> dict[str, ParamValue]:
        """The parameters as a spec would write them to name this very task anywhere: data-file tasks give
        their paths absolute (the run folder's ``spec.yaml`` and a checkpoint record these)."""
        return dict(self.config)

    def follow_model(self, model: Any) -> None:
        """Told the compiled model it will feed, once it is built (a sequence task checks that class ids in files
        read later fit its outputs)."""

    def follow_output(self, activation: str) -> None:
        """Told the activation of the model's output before training; tasks whose loss follows it (your own
        sequence files: sigmoid → BCE, softmax → cross-entropy, none → squared error) choose it here."""

    # -- loss and errors ---------------------------------------------------------------------

    def loss_of(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The training loss, a scalar: the mean over the batch of :meth:`sequence_losses`."""
        return self.sequence_losses(logits, batch).sum() / batch.batch_size

    def sequence_losses(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Each sequence's loss, ``(B,)``: :func:`bce_per_sequence` for bit targets. Its negative is
        the log-likelihood reward that hard addressing learns from (:mod:`cogdsl.reinforce`)."""
        return bce_per_sequence(logits, batch)

    def errors(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Errors per sequence, ``(B,)``: :func:`bit_errors` for bit targets."""
        return bit_errors(logits, batch)

    def reward(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The reward of each sequence, ``(B,)``, for blocks that sample (hard attention, glimpses) and
        learn by REINFORCE: R = 1 for a sequence with no errors, else 0 (RAM's classification reward)."""
        return (self.errors(logits, batch) == 0).to(logits.dtype)

    def evaluation_batches(self, sequences: int, seed: int, batch: int, length: int | None,
                           split: str = "test") -> Iterator[Batch]:
        """The batches an evaluation scores: ``sequences`` fresh ones drawn ``batch`` at a time
        from a generator seeded with ``seed`` (``split`` only matters to tasks with fixed data sets)."""
        generator = torch.Generator().manual_seed(seed)
        done = 0
        while done < sequences:
            n = min(batch, sequences - done)
            yield self.sample(n, generator, length=length)
            done += n

    @property
    def input_kinds(self) -> dict[str, int]:
        """What the model must read, by input kind: ``{"vector": input_size}`` for these tasks."""
        return {"vector": self.input_size}

    # -- metrics beyond bit errors ----------------------------------------------------------

    def metrics(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """Task-specific scores per sequence, by name, each ``(B,)`` in ``[0, 1]``; none by default.

        ``cogdsl eval`` and the evaluations during training report their means beside the
        bit errors (the graph tasks report :func:`~cogdsl.tasks.graph.answer_accuracy`).
        """
        return {}

    def test_set_scores(self, model: torch.nn.Module, sequences: int = 1000) -> dict[str, float]:
        """Scores of ``model`` over the whole fixed test set (the ``sequences`` examples ``cogdsl eval``
        draws), for scores that pool counts over the set rather than average per sequence, such as corpus
        BLEU; none by default. ``cogdsl sweep`` adds them to a trial's metrics."""
        return {}

    # -- sizes and sampling -------------------------------------------------------------

    @property
    def input_size(self) -> int:
        """``I``, the width of ``Batch.inputs``."""
        raise NotImplementedError

    @property
    def output_size(self) -> int:
        """``O``, the width of ``Batch.targets`` (and of the model's logits)."""
        raise NotImplementedError

    def has_split(self, which: str) -> bool:
        """Whether the task has data for split ``which``: a generated task draws every split; a task reading
        data files overrides this (a test split only where a test file is given)."""
        return True

    def length_range(self) -> tuple[int, int]:
        """The inclusive range ``sample`` draws its length from when none is given."""
        assert self.length_params is not None, f"{type(self).__name__} must override"
        lo, hi = self.length_params
        return int(self.config[lo]), int(self.config[hi])

    def sample(
        self, batch: int, generator: torch.Generator, length: int | None = None
    ) -> Batch:
        """Draw a batch of ``batch`` sequences, all of the same length.

        Args:
            batch: ``B``, the number of sequences (>= 1).
            generator: the only source of randomness; tensors go on its device.
            length: the task's length (see the task's docstring for what it counts). If
                ``None`` one length is drawn uniformly from :meth:`length_range` for the
                whole batch; if given it is used as is and may exceed the training range
                (generalisation tests).

        Returns:
            A :class:`Batch` with inputs ``(B, T, input_size)``, targets
            ``(B, T, output_size)`` and mask ``(B, T)``.
        """
        batch = self._check_batch(batch)
        return self._sample(batch, self._resolve_length(length, generator), generator)

    def draw_length(self, generator: torch.Generator) -> int:
        """A length drawn uniformly from :meth:`length_range` with ``generator`` (a CPU generator, so the
        host never waits for a GPU), for ``sample(..., length=...)``."""
        return self._resolve_length(None, generator)

    def _check_batch(self, batch: object) -> int:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"task '{self.name}': batch must be an int >= 1, got {batch!r}")
        return batch

    def _resolve_length(self, length: object, generator: torch.Generator) -> int:
        """``length`` checked, or one drawn uniformly from :meth:`length_range`."""
        if length is None:
            lo, hi = self.length_range()
            if lo == hi:
                return lo
            drawn = torch.randint(lo, hi + 1, (1,), generator=generator, device=generator.device)
            return int(drawn)
        if isinstance(length, bool) or not isinstance(length, int) or length < self.min_length:
            raise ValueError(
                f"task '{self.name}': length must be an int >= {self.min_length}, "
                f"got {length!r}"
            )
        return length

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


# -- metrics ------------------------------------------------------------------------------


def _check_logits(logits: torch.Tensor, batch: Batch) -> None:
    if tuple(logits.shape) != tuple(batch.targets.shape):
        raise ValueError(
            f"logits have shape {tuple(logits.shape)} but the batch's targets have shape "
            f"{tuple(batch.targets.shape)} (B, T, O)"
        )


def bit_errors(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Wrong output bits per sequence, counted at scored steps only.

    ``errors[b] = sum_{t, o} mask[b, t] * [(logits[b, t, o] > 0) != (targets[b, t, o] > 0.5)]``

    A logit of exactly 0 (probability 0.5) reads as bit 0.

    Args:
        logits: ``(B, T, O)`` raw (pre-sigmoid) model outputs.
        batch: the batch they answer.

    Returns:
        ``(B,)`` float32 counts.
    """
    _check_logits(logits, batch)
    wrong = (logits > 0) != (batch.targets > 0.5)  # (B, T, O)
    return (wrong.float() * batch.mask.unsqueeze(-1)).sum(dim=(1, 2))


def bce_per_sequence(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Binary cross-entropy summed over every output bit of every scored step, per sequence:
    ``sum_t mask[b, t] sum_o BCEWithLogits(logits[b, t, o], targets[b, t, o])``, logits (B, T, O) → (B,)."""
    _check_logits(logits, batch)
    per_bit = F.binary_cross_entropy_with_logits(logits, batch.targets, reduction="none")
    return (per_bit * batch.mask.unsqueeze(-1)).sum(dim=(1, 2))


def sequence_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Binary cross-entropy in "bits of cost per sequence", as the NTM paper plots it.

    ``loss = (1/B) sum_b sum_t mask[b, t] sum_o BCEWithLogits(logits[b, t, o],
    targets[b, t, o])``

    i.e. the BCE (natural log) summed over every output bit of every scored step, averaged
    over the batch. It is not divided by the sequence length or the number of bits, so it
    grows with both; divide by ``ln 2`` to get bits in the information-theoretic sense.

    Args:
        logits: ``(B, T, O)`` raw (pre-sigmoid) model outputs.
        batch: the batch they answer.

    Returns:
        A scalar tensor, differentiable with respect to ``logits``.
    """
    return bce_per_sequence(logits, batch).sum() / batch.batch_size


def sequence_accuracy(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The fraction of sequences with no bit errors, as a scalar float tensor."""
    return (bit_errors(logits, batch) == 0).float().mean()


def ce_per_sequence(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Cross-entropy of the target class summed over the scored steps, per sequence:
    ``sum_t mask[b, t] (-log softmax(logits[b, t])[answer[b, t]])``, logits (B, T, V) → (B,)."""
    per_step = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), reduction="none")
    return (per_step.view(batch.targets.shape) * batch.mask).sum(-1)


def class_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Cross-entropy of the target class (an answer word, a symbol), summed over scored steps, averaged over the batch.

    ``loss = (1/B) sum_b sum_t mask[b, t] (-log softmax(logits[b, t])[answer[b, t]])``;
    logits (B, T, V), targets (B, T) long: the loss of the tasks whose ``loss`` is ``"ce"``.
    """
    return ce_per_sequence(logits, batch).sum() / batch.batch_size


def wrong_classes(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Wrong classes per sequence, (B,): scored steps where ``argmax(logits) != answer``."""
    return ((logits.argmax(-1) != batch.targets).float() * batch.mask).sum(-1)
