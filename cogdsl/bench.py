"""``cogdsl bench``: the NTM memory step, the DNC step, additive attention, a memory network hop's read and a whole
training step, timed on every execution path.

Five sections, each a table with one row per (size, path):

* **memory step** -- :func:`cogdsl.ops.ntm_memory_step` with 1 read and 1 write head, shift
  offsets -1..1, float32, at batch B, width W and each slot count N: the forward alone (under
  ``torch.no_grad``) and the forward plus the backward of a fixed random projection of all
  three outputs, ``(weights·gw).sum() + (reads·gr).sum() + (new_memory·gm).sum()``, with
  respect to every input;
* **DNC step** -- :meth:`cogdsl.blocks.dnc.DNCGroup.step`, the whole step of one ``dnc_memory``
  (usage, allocation, write weights, write, temporal links, then the reads of the new memory)
  with 4 read heads (``backward + content(cosine) + forward``) and 1 write head
  (``content(cosine) + allocate``), the DNC paper's setup, float32, at batch B, width W and each
  slot count N: the forward alone and the forward plus the backward of a fixed random
  projection of all six outputs (weightings, reads, memory, usage, links, precedence) with
  respect to every input (interface vector, memory, last weightings, usage, links, precedence);
* **additive attention** -- :func:`cogdsl.ops.additive_attention` (Bahdanau's score
  v·tanh(qp + kp_i), the softmax over the S elements and the context Σ_i a_i k_i), float32, at
  batch B, 1 head and each sequence length S and width A = D: the forward alone and the forward
  plus the backward of a fixed random projection of both outputs (context, weights) with
  respect to all four inputs. CUDA only: it compares the kernel with eager PyTorch and
  ``torch.compile``, and has no Triton row to compare with on a CPU, so there it is not run;
* **hop read** -- :func:`cogdsl.ops.hop_read`, a memory network (MemN2N) hop's read (the scores
  m_i·u, the softmax over a story's kept slots and the read Σ_i p_i c_i), float32, at batch B,
  each slot count N and key width D = value width W: query (B, D), keys (B, N, D), values (B, N, W)
  and a mask (B, N) that keeps a prefix of each row, stories of 1..N sentences, as
  :class:`cogdsl.blocks.memnet.SentenceMemory` stores them; the forward alone and the forward plus
  the backward of a fixed random projection of both outputs (read, weights) with respect to the
  query, the keys and the values. CUDA only, as additive attention, for the same reason;
* **training step** -- a spec compiled by :func:`cogdsl.compile`, trained as ``cogdsl train``
  trains it (the spec's task, loss, gradient clipping and optimizer): the forward over one
  batch of sequences alone, and one whole step (forward, loss, backward, clip, optimizer step).

Paths:

* ``triton`` -- the fused Triton kernels (CUDA only; Triton's interpreter is for testing);
* ``eager`` -- cogdsl's ``torch`` backend (PyTorch ops, backward passes written by hand);
* ``eager-reference`` -- the plain autograd equations, :mod:`cogdsl.ops.ntm` (memory step only);
* ``compiled-reference`` -- ``torch.compile`` of the reference: of
  :func:`cogdsl.ops.ntm.ntm_memory_step`, of the DNC step (:func:`dnc_step`) on the ``torch``
  backend, of :func:`cogdsl.ops.attention.additive_attention`, of :func:`cogdsl.ops.attention.hop_read`,
  and of the model's time step (``CompiledModel.step``, one graph reused for every step:
  compiling the whole unrolled sequence takes minutes) on the ``torch`` backend.

A time is the median of repeated calls after warm-up calls (:class:`Timing`; CUDA events on a GPU).
GB/s divide the bytes that must move -- the memory read once and written once -- by the time:
forward 2·B·N·W·itemsize (M read, M' written), forward + backward 5·B·N·W·itemsize (adding the
backward's reads of M and dM' and its write of dM); for the DNC step the link matrix L (B, N, N) is
counted with M: forward 2·B·(N² + N·W)·itemsize, forward + backward 5·B·(N² + N·W)·itemsize
(:func:`dnc_step_bytes`); for additive attention the key projection kp (B, H, S, A) and the
keys (B, S, D) are read once forward, and read once and their gradients written once backward:
forward B·(H·S·A + S·D)·itemsize, forward + backward 3·B·(H·S·A + S·D)·itemsize
(:func:`additive_attention_bytes`); for the hop read the keys (B, N, D) and the values (B, N, W)
likewise: forward B·N·(D + W)·itemsize, forward + backward 3·B·N·(D + W)·itemsize
(:func:`hop_read_bytes`). On CUDA each GB/s is also given as a
percentage of the device's copy bandwidth, measured by copying a 1 GiB buffer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import platform
import shlex
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from cogdsl.blocks.dnc import DNCGroup
from cogdsl.errors import UsageError
from cogdsl.spec import Spec, Value

if TYPE_CHECKING:
    from cogdsl.tasks import Task
    from cogdsl.train_config import TrainConfig

__all__ = [
    "BenchOptions",
    "BenchResult",
    "Row",
    "additive_attention_bytes",
    "additive_attention_inputs",
    "additive_attention_paths",
    "bench",
    "bench_command",
    "copy_bandwidth_gbps",
    "dnc_group",
    "dnc_step",
    "dnc_step_backends",
    "dnc_step_bytes",
    "dnc_step_inputs",
    "hop_read_bytes",
    "hop_read_inputs",
    "hop_read_paths",
    "median_ms",
    "memory_step_bytes",
]

TRITON, EAGER, EAGER_REFERENCE, COMPILED_REFERENCE = "triton", "eager", "eager-reference", "compiled-reference"
MEMORY_STEP, DNC_STEP, TRAINING_STEP = "memory step", "dnc step", "training step"
ADDITIVE_ATTENTION, HOP_READ = "additive attention", "hop read"
SECTIONS = (MEMORY_STEP, DNC_STEP, ADDITIVE_ATTENTION, HOP_READ, TRAINING_STEP)
DEFAULT_SLOTS = (128, 4096, 65536)
DEFAULT_DNC_SLOTS = (256, 1024)
#: Additive attention's sequence lengths S and widths A = D (score units = key width), each with each.
DEFAULT_ATTENTION_LENGTHS = (50, 100, 200, 400)
DEFAULT_ATTENTION_WIDTHS = (64, 256)
#: The hop read's slot counts N (MemN2N keeps a story's last 50 sentences; the others are longer memories) and
#: widths D = W (MemN2N's embedding d: 20 on bAbI's 1k training set, 50 on 10k), each with each.
DEFAULT_HOP_SLOTS = (50, 500, 5000, 50000)
DEFAULT_HOP_WIDTHS = (20, 50)
DEFAULT_SPEC = "specs/ntm_copy.yaml"

#: The memory step's heads: 1 read and 1 write head with shift offsets -1..1, as the NTM copy model has.
HEADS, WRITE_HEADS, SHIFTS = 2, 1, 3
#: The DNC step's heads: 4 read heads and 1 write head, as in the DNC paper.
DNC_READS, DNC_WRITES = 4, 1
#: Additive attention's heads: 1, as in Bahdanau et al. 2015.
ATTENTION_HEADS = 1
#: The spec the DNC step's group is compiled from (the controller and the output only give it an interface).
DNC_SPEC = """cogdsl 1
model dnc_bench
input  x: 8
output y: 8 = sigmoid(ctrl, r)
lstm       ctrl(hidden=64) <- x, r@prev
dnc_memory mem(slots={slots}, width={width})
write      w(heads={writes}) on mem by ctrl: content(cosine) + allocate
read       r(heads={reads}) on mem by ctrl: backward + content(cosine) + forward
"""
COPY_BYTES = 1 << 30
NEEDS_GPU = "triton: not run: the Triton path needs a CUDA GPU (Triton's interpreter is for testing, not timing)"
BYTES_NOTE = ("GB/s = bytes that must move / time, the memory read once and written once: fwd 2·B·N·W·{size} "
              "(M read, M' written); fwd+bwd 5·B·N·W·{size} (adds the backward's read of M and dM' and write of dM)")
DNC_BYTES_NOTE = ("GB/s = bytes that must move / time, the link matrix L (B, N, N) and the memory M read once and "
                  "written once: fwd 2·B·(N² + N·W)·{size} (L and M read, L' and M' written); fwd+bwd "
                  "5·B·(N² + N·W)·{size} (adds the backward's reads of L, M, dL', dM' and writes of dL, dM); "
                  "usage, precedence and weightings (B·N each) are not counted")
ATTENTION_BYTES_NOTE = ("GB/s = bytes that must move / time, the key projection kp (B, H, S, A) and the keys K "
                        "(B, S, D): fwd B·(H·S·A + S·D)·{size} (kp and K read once); fwd+bwd 3·B·(H·S·A + S·D)·{size} "
                        "(adds the backward's reads of kp and K and writes of dkp and dK); qp, v, the context and the "
                        "weights (B·H·(A + D + S)) are not counted")
ATTENTION_NEEDS_GPU = ("additive attention: not run: it compares the Triton kernel with eager PyTorch and "
                       "torch.compile, and needs a CUDA GPU")
HOP_BYTES_NOTE = ("GB/s = bytes that must move / time, the keys (B, N, D) and the values (B, N, W): fwd "
                  "B·N·(D + W)·{size} (keys and values read once); fwd+bwd 3·B·N·(D + W)·{size} (adds the "
                  "backward's reads of the keys and values and writes of their gradients); the query, the read, "
                  "the mask and the weights (B·(D + W) and B·N) are not counted")
HOP_NEEDS_GPU = ("hop read: not run: it compares the Triton kernel with eager PyTorch and torch.compile, and needs "
                 "a CUDA GPU")
#: What each path runs, per section.
PATH_NOTES = {
    MEMORY_STEP: {
        TRITON: "the fused Triton kernel",
        EAGER: "cogdsl's torch backend (hand-written backward)",
        EAGER_REFERENCE: "cogdsl.ops.ntm.ntm_memory_step, plain autograd",
        COMPILED_REFERENCE: "torch.compile(cogdsl.ops.ntm.ntm_memory_step)",
    },
    DNC_STEP: {
        TRITON: "every op of the step on its Triton kernel",
        EAGER: "cogdsl's torch backend",
        COMPILED_REFERENCE: "torch.compile of the eager step",
    },
    ADDITIVE_ATTENTION: {
        TRITON: "the fused Triton kernel (kernels/additive.py)",
        EAGER: "cogdsl's torch backend: cogdsl.ops.attention.additive_attention, plain autograd",
        COMPILED_REFERENCE: "torch.compile(cogdsl.ops.attention.additive_attention)",
    },
    HOP_READ: {
        TRITON: "the fused Triton kernel (kernels/hop.py)",
        EAGER: "cogdsl's torch backend: cogdsl.ops.attention.hop_read, plain autograd",
        COMPILED_REFERENCE: "torch.compile(cogdsl.ops.attention.hop_read)",
    },
    TRAINING_STEP: {
        TRITON: "backend auto: the Triton kernels where cogdsl has one, the torch backend elsewhere",
        EAGER: "cogdsl's torch backend",
        COMPILED_REFERENCE: "torch.compile of the model's time step on cogdsl's torch backend",
    },
}


# -- options and results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchOptions:
    """What to time: the sizes, the sections, and how many calls.

    ``train_slots`` None times the training step at the spec's own memory size; ``warmup`` and
    ``repeats`` None take :meth:`Timing.default` for the device. Additive attention is timed at
    every (``attention_lengths``, ``attention_widths``) pair, with A = D = the width; the hop read
    at every (``hop_slots``, ``hop_widths``) pair, with D = W = the width.
    """

    spec: str = DEFAULT_SPEC
    slots: tuple[int, ...] = DEFAULT_SLOTS
    dnc_slots: tuple[int, ...] = DEFAULT_DNC_SLOTS
    attention_lengths: tuple[int, ...] = DEFAULT_ATTENTION_LENGTHS
    attention_widths: tuple[int, ...] = DEFAULT_ATTENTION_WIDTHS
    hop_slots: tuple[int, ...] = DEFAULT_HOP_SLOTS
    hop_widths: tuple[int, ...] = DEFAULT_HOP_WIDTHS
    batch: int = 64
    width: int = 20
    length: int | None = None
    train_slots: tuple[int, ...] | None = None
    warmup: int | None = None
    repeats: int | None = None
    compile: bool = True
    sections: tuple[str, ...] = SECTIONS
    #: CPU threads for torch: 1 by default, as ``cogdsl train`` (one core per op, no OpenMP thread left waiting)
    threads: int | None = 1
    json_path: str | None = None

    def check(self) -> None:
        """Raise :class:`UsageError` on a size or count out of range."""
        for name, values in (("--slots", self.slots), ("--dnc-slots", self.dnc_slots),
                             ("--train-slots", self.train_slots or ()), ("attention_lengths", self.attention_lengths),
                             ("attention_widths", self.attention_widths), ("hop_slots", self.hop_slots),
                             ("hop_widths", self.hop_widths)):
            for value in values:
                _check_at_least(name, value, 1)
        if not self.slots and MEMORY_STEP in self.sections:
            raise UsageError("--slots needs at least one slot count")
        if not self.dnc_slots and DNC_STEP in self.sections:
            raise UsageError("--dnc-slots needs at least one slot count")
        if not (self.attention_lengths and self.attention_widths) and ADDITIVE_ATTENTION in self.sections:
            raise UsageError("additive attention needs at least one sequence length and one width")
        if not (self.hop_slots and self.hop_widths) and HOP_READ in self.sections:
            raise UsageError("the hop read needs at least one slot count and one width")
        _check_at_least("--batch", self.batch, 1)
        _check_at_least("--width", self.width, 1)
        _check_at_least("--warmup", self.warmup, 0)
        _check_at_least("--repeats", self.repeats, 1)
        _check_at_least("--threads", self.threads, 1)
        _check_at_least("--len", self.length, 1)
        if self.json_path is not None and not Path(self.json_path).parent.is_dir():
            raise UsageError(f"--json {self.json_path}: no such folder {Path(self.json_path).parent}")

    def command_line(self) -> str:
        """The ``cogdsl bench`` command that reruns these options."""
        words = ["cogdsl", "bench", self.spec]
        if MEMORY_STEP in self.sections:
            words += ["--slots", *map(str, self.slots)]
        if DNC_STEP in self.sections:
            words += ["--dnc-slots", *map(str, self.dnc_slots)]
        if MEMORY_STEP in self.sections or DNC_STEP in self.sections:
            words += ["--width", str(self.width)]
        words += ["--batch", str(self.batch)]
        if self.length is not None:
            words += ["--len", str(self.length)]
        if self.train_slots is not None:
            words += ["--train-slots", *map(str, self.train_slots)]
        for flag, value in (("--warmup", self.warmup), ("--repeats", self.repeats), ("--threads", self.threads)):
            if value is not None:
                words += [flag, str(value)]
        if not self.compile:
            words.append("--no-compile")
        if self.sections != SECTIONS:
            words += ["--only", self.sections[0].replace(" ", "-")]
        if self.json_path is not None:
            words += ["--json", self.json_path]
        return shlex.join(words)


def _check_at_least(name: str, value: int | None, minimum: int) -> None:
    if value is not None and value < minimum:
        raise UsageError(f"{name} must be at least {minimum}, got {value}")


@dataclass
class Row:
    """One path's times at one size; ``note`` says why a path has no time, or how long it compiled.

    For the memory step ``steps`` is 1; for the training step it is the sequence's time steps T,
    ``ms_forward`` the forward over the sequence and ``ms_forward_backward`` the whole step. For
    additive attention ``slots`` is the sequence length S, ``width`` the key width D and
    ``hidden`` the score units A (None in the other sections); for the hop read ``slots`` is N,
    ``width`` the value width W and ``key_width`` the key width D (None in the other sections).
    """

    section: str
    path: str
    batch: int
    slots: int
    width: int
    steps: int
    bytes_forward: int
    bytes_forward_backward: int
    ms_forward: float | None = None
    ms_forward_backward: float | None = None
    compile_seconds: float | None = None
    #: graph breaks torch.compile made (each one a piece left to eager Python), and the first one's reason
    graph_breaks: int | None = None
    graph_break_reason: str | None = None
    note: str = ""
    ratio: float | None = None
    #: the path ``ratio`` divides by
    baseline: str | None = None
    #: additive attention's score units A per head
    hidden: int | None = None
    #: the hop read's key (and query) width D
    key_width: int | None = None

    @property
    def gbps_forward(self) -> float | None:
        """Bytes that must move in the forward, per second, in GB/s (10⁹ bytes)."""
        return _gbps(self.bytes_forward, self.ms_forward)

    @property
    def gbps_forward_backward(self) -> float | None:
        """Bytes that must move in the forward and the backward, per second, in GB/s."""
        return _gbps(self.bytes_forward_backward, self.ms_forward_backward)

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "gbps_forward": self.gbps_forward,
                "gbps_forward_backward": self.gbps_forward_backward}


def _gbps(nbytes: int, ms: float | None) -> float | None:
    return nbytes / (ms * 1e-3) / 1e9 if ms and nbytes else None


@dataclass
class BenchResult:
    """Every row, the machine they were measured on and the command that measured them."""

    command: str
    machine: dict[str, Any]
    copy_gbps: float | None
    rows: list[Row] = field(default_factory=list)
    triton_note: str | None = None
    #: the model the training step trained (None when that section was not run)
    spec_name: str | None = None
    #: sections asked for but not run here, each with why
    skipped: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"command": self.command, "machine": self.machine, "copy_gbps": self.copy_gbps,
                "spec_name": self.spec_name,
                "triton_note": self.triton_note, "skipped": self.skipped,
                "bytes_definition": BYTES_NOTE.format(size="itemsize"),
                "dnc_bytes_definition": DNC_BYTES_NOTE.format(size="itemsize"),
                "attention_bytes_definition": ATTENTION_BYTES_NOTE.format(size="itemsize"),
                "hop_bytes_definition": HOP_BYTES_NOTE.format(size="itemsize"),
                "rows": [row.to_json() for row in self.rows]}


def memory_step_bytes(batch: int, slots: int, width: int, itemsize: int = 4) -> tuple[int, int]:
    """(forward, forward + backward) bytes that must move: 2·B·N·W and 5·B·N·W elements."""
    elements = batch * slots * width
    return 2 * elements * itemsize, 5 * elements * itemsize


def dnc_step_bytes(batch: int, slots: int, width: int, write_heads: int = DNC_WRITES,
                   itemsize: int = 4) -> tuple[int, int]:
    """(forward, forward + backward) bytes that must move in the DNC step: 2·S and 5·S, S = B·(K·N² + N·W) elements.

    The model: each write head's link matrix L (N x N) and the memory M (N x W) are the state that
    must be read once and written once (L and M read, L' and M' written; the directional reads
    and the content reads can use L' and M' as they are made). The backward adds 3 more of each:
    the reads of L, M and of the incoming dL', dM', and the writes of dL, dM. Usage, precedence
    and the weightings are B·N each, small next to B·N² at any N worth timing, and not counted.
    """
    elements = batch * (write_heads * slots * slots + slots * width)
    return 2 * elements * itemsize, 5 * elements * itemsize


def additive_attention_bytes(batch: int, heads: int, length: int, hidden: int, width: int,
                             itemsize: int = 4) -> tuple[int, int]:
    """(forward, forward + backward) bytes that must move in additive attention: E and 3·E, E = B·(H·S·A + S·D).

    The model: the key projection kp (B, H, S, A) and the keys K (B, S, D) are the arrays of
    size S; the forward must read each once (the context and the weights it writes are
    B·H·(D + S), small next to them). The backward reads kp and K once more and writes dkp and
    dK once. qp, v, the context, the weights and their gradients are not counted.
    """
    elements = batch * (heads * length * hidden + length * width)
    return elements * itemsize, 3 * elements * itemsize


def hop_read_bytes(batch: int, slots: int, key_width: int, value_width: int, itemsize: int = 4) -> tuple[int, int]:
    """(forward, forward + backward) bytes that must move in a hop's read: E and 3·E, E = B·N·(D + W).

    The model: the keys (B, N, D) and the values (B, N, W) are the arrays of size N·width; the
    forward must read each once (the scores and the read need every key and every value, and
    the weights it writes are B·N, the read B·W, small next to them). The backward reads the
    keys and the values once more and writes their gradients once. The query (B, D), the mask
    (B, N), the read, the weights and their gradients are not counted.
    """
    elements = batch * slots * (key_width + value_width)
    return elements * itemsize, 3 * elements * itemsize


# -- timing -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """How a time is taken: ``warmup`` untimed calls, then ``repeats`` timed calls, or more (up to
    ``max_repeats``) until ``min_seconds`` have passed; the median of the timed calls."""

    warmup: int
    repeats: int
    min_seconds: float = 0.0
    max_repeats: int = 100

    @staticmethod
    def default(device: torch.device, warmup: int | None = None, repeats: int | None = None) -> Timing:
        """The given counts; without them 5 + 20 calls on a GPU, and 1 + at least 3 calls (for 1 s) on a CPU.

        A CPU takes seconds per call at 65,536 slots and a fraction of a millisecond at 128, so
        there the number of calls follows the time; a count given explicitly is used as is.
        """
        gpu = device.type == "cuda"
        return Timing(warmup=warmup if warmup is not None else 5 if gpu else 1,
                      repeats=repeats if repeats is not None else 20 if gpu else 3,
                      min_seconds=1.0 if repeats is None and not gpu else 0.0)


def median_ms(fn: Callable[[], object], timing: Timing, device: torch.device) -> float:
    """The median time of ``fn()`` in milliseconds, taken as ``timing`` says.

    On CUDA each call is timed with a pair of CUDA events, so the time is the device's.
    """
    for _ in range(timing.warmup):
        fn()
    cuda = device.type == "cuda"
    _sync(device)
    began = time.perf_counter()
    times: list[float] = []
    events = []
    while len(times) + len(events) < timing.repeats or (
            time.perf_counter() - began < timing.min_seconds and len(times) + len(events) < timing.max_repeats):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            events.append((start, end))
        else:
            call = time.perf_counter()
            fn()
            times.append(1e3 * (time.perf_counter() - call))
    if cuda:
        torch.cuda.synchronize(device)
        times = [start.elapsed_time(end) for start, end in events]
    return statistics.median(times)


def copy_bandwidth_gbps(device: torch.device, nbytes: int = COPY_BYTES, repeats: int = 10) -> float:
    """The device's copy bandwidth: 2·nbytes (read and written) / the median time of ``dst.copy_(src)``."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).fill_(1.0)
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), Timing(warmup=2, repeats=repeats), device)
    return 2 * nbytes / (ms * 1e-3) / 1e9


def _first_call(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds the first call of ``fn`` takes (for torch.compile: the compilation)."""
    _sync(device)
    began = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - began


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _quiet_compile() -> Iterator[None]:
    """torch.compile with a fresh cache (so each size compiles, and is timed, on its own) and no lru_cache warning."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*lru_cache.*")
        yield


def _record_compile(row: Row, seconds: float) -> None:
    """Store the compile time and the graph breaks that torch.compile counted since :func:`_quiet_compile`."""
    from torch._dynamo.utils import counters

    row.compile_seconds = seconds
    breaks = counters.get("graph_break", {})
    row.graph_breaks = sum(breaks.values())
    if breaks:
        lines = [line.strip() for line in next(iter(breaks)).splitlines() if line.strip()]
        explained = [line.removeprefix("Explanation:").strip() for line in lines if line.startswith("Explanation:")]
        row.graph_break_reason = (explained or lines or [""])[0]


def _reason(err: BaseException) -> str:
    """One line for a path that could not run."""
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return "out of GPU memory"
    if isinstance(err, MemoryError):
        return "out of memory"
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


# -- the memory step ------------------------------------------------------------------------------------


def memory_step_inputs(batch: int, slots: int, width: int, device: torch.device,
                       seed: int = 0) -> tuple[list[Tensor], list[Tensor]]:
    """Random inputs of ``ntm_memory_step`` in their ranges (requiring grad), and projections of its outputs.

    Returns (memory, previous, keys, strengths, gate, shift_weights, gamma, erase, add) and
    (gw, gr, gm), the tensors the backward's loss projects (weights, reads, new memory) onto.
    """
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator)

    b, n, w, h, hw = batch, slots, width, HEADS, WRITE_HEADS
    inputs = [
        normal(b, n, w),  # memory
        torch.softmax(normal(b, h, n), -1),  # previous weights: distributions over slots
        normal(b, h, w),  # keys
        F.softplus(normal(b, h)) + 0.1,  # strengths > 0
        torch.sigmoid(normal(b, h)),  # gates in [0, 1]
        torch.softmax(normal(b, h, SHIFTS), -1),  # shift weights
        1 + F.softplus(normal(b, h)),  # gamma >= 1
        torch.sigmoid(normal(b, hw, w)),  # erase in [0, 1]
        normal(b, hw, w),  # add
    ]
    projections = [normal(b, h, n), normal(b, h - hw, w), normal(b, n, w)]
    return ([t.to(device).requires_grad_(True) for t in inputs], [t.to(device) for t in projections])


def _memory_step_functions(device: torch.device, compile: bool) -> dict[str, Callable[..., Any]]:
    """Path name -> a function with ``ntm_memory_step``'s arguments, for each path that runs here."""
    from cogdsl import ops
    from cogdsl.ops import ntm

    def on_backend(name: str) -> Callable[..., Any]:
        def step(*args: Tensor) -> Any:
            with ops.use_backend(name):
                return ops.ntm_memory_step(*args)
        return step

    functions: dict[str, Callable[..., Any]] = {}
    if device.type == "cuda":
        functions[TRITON] = on_backend("triton")
    functions[EAGER] = on_backend("torch")
    functions[EAGER_REFERENCE] = ntm.ntm_memory_step
    if compile:
        functions[COMPILED_REFERENCE] = ntm.ntm_memory_step  # compiled in _time_memory_step, one size at a time
    return functions


def _fill_row(row: Row, time: Callable[[], None]) -> None:
    """Run ``time``, which fills ``row``'s times; a path that cannot run here (no triton package,
    a compile failure) is a row whose note says why."""
    from cogdsl import kernels

    if row.path == TRITON and not kernels.available():
        row.note = "not available: the triton package is not installed"
        return
    try:
        time()
    except Exception as err:
        row.ms_forward = row.ms_forward_backward = None
        row.note = f"not available: {_reason(err)}"


def _time_step(path: str, function: Callable[..., Any], inputs: list[Tensor], projections: list[Tensor],
               row: Row, *, timing: Timing, device: torch.device, backend: str | None = None) -> None:
    """Fill ``row`` with the path's forward and forward+backward times (the backward: the gradients of every input
    that requires grad).

    ``backend``, if given, is forced around each call (outside the compiled function, for ``compiled-reference``).
    """
    from cogdsl import ops

    def on_backend() -> contextlib.AbstractContextManager[object]:
        return ops.use_backend(backend) if backend is not None else contextlib.nullcontext()

    differentiable = [t for t in inputs if t.requires_grad]  # not the hop read's bool mask

    def forward() -> None:
        with torch.no_grad(), on_backend():
            function(*inputs)

    def forward_backward() -> None:
        with on_backend():
            outputs = function(*inputs)
            loss = sum((out * proj).sum() for out, proj in zip(outputs, projections, strict=True))
            torch.autograd.grad(loss, differentiable)

    with _quiet_compile() if path == COMPILED_REFERENCE else contextlib.nullcontext():
        if path == COMPILED_REFERENCE:
            function = torch.compile(function, dynamic=False)
            _record_compile(row, _first_call(forward, device) + _first_call(forward_backward, device))
        row.ms_forward = median_ms(forward, timing, device)
        row.ms_forward_backward = median_ms(forward_backward, timing, device)


def bench_memory_step(options: BenchOptions, device: torch.device, *, timing: Timing,
                      progress: Callable[[str], None]) -> list[Row]:
    """One row per (slot count, path): the memory step's forward and forward+backward times."""
    rows: list[Row] = []
    functions = _memory_step_functions(device, options.compile)
    for slots in options.slots:
        inputs, projections = memory_step_inputs(options.batch, slots, options.width, device)
        nbytes = memory_step_bytes(options.batch, slots, options.width, inputs[0].element_size())
        for path, function in functions.items():
            progress(f"memory step, N={slots}: {path}")
            row = Row(MEMORY_STEP, path, options.batch, slots, options.width, 1, *nbytes)
            _fill_row(row, partial(_time_step, path, function, inputs, projections, row, timing=timing,
                                   device=device))
            rows.append(row)
            _free(device)
        del inputs, projections
        _free(device)
    return rows


# -- the DNC step ---------------------------------------------------------------------------------------


def dnc_group(slots: int, width: int) -> tuple[DNCGroup, int]:
    """The group of one ``dnc_memory`` of ``slots`` x ``width`` with 4 read and 1 write head, and its interface size.

    Compiled from :data:`DNC_SPEC` by :func:`cogdsl.compile`, as any spec's group is.
    """
    import cogdsl
    from cogdsl.pipeline import parse_text

    text = DNC_SPEC.format(slots=slots, width=width, reads=DNC_READS, writes=DNC_WRITES)
    model = cogdsl.compile(parse_text(text, "<cogdsl bench: dnc step>", "cog"))
    group = model.groups[0]
    assert isinstance(group, DNCGroup)
    return group, model.shapes.interface_sizes[group.plan.controller]


def dnc_step_inputs(group: DNCGroup, interface_size: int, batch: int, device: torch.device,
                    seed: int = 0) -> tuple[list[Tensor], list[Tensor]]:
    """Random inputs of :func:`dnc_step` in their ranges (requiring grad), and projections of its outputs.

    Returns (interface, memory, previous, usage, link, precedence): a random interface vector
    (B, I) (the step applies each field's activation), memory (B, N, W), last step's read and
    write weightings (B, R + K, N) as distributions over slots, usage (B, N) in [0, 1], links
    (B, K, N, N) non-negative with a zero diagonal and rows summing to at most 1, precedences
    (B, K, N) as distributions; and (gw, gr, gm, gu, gl, gp), the tensors the backward's loss
    projects each output onto.
    """
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator)

    b, n, w = batch, group.slots, group.width
    r, k = group.plan.read_heads, group.plan.write_heads
    link = torch.rand(b, k, n, n, generator=generator)
    link.diagonal(dim1=-2, dim2=-1).zero_()
    link.div_(link.sum(-1, keepdim=True).clamp_min(1e-6)).mul_(torch.rand(b, k, n, 1, generator=generator))
    inputs = [
        normal(b, interface_size),  # interface
        normal(b, n, w),  # memory
        torch.softmax(normal(b, r + k, n), -1),  # previous weightings: distributions over slots
        torch.rand(b, n, generator=generator),  # usage in [0, 1]
        link,
        torch.softmax(normal(b, k, n), -1),  # precedence
    ]
    projections = [normal(b, r + k, n), normal(b, r, w), normal(b, n, w), normal(b, n), normal(b, k, n, n),
                   normal(b, k, n)]
    return ([t.to(device).requires_grad_(True) for t in inputs], [t.to(device) for t in projections])


def dnc_step(group: DNCGroup, interface: Tensor, memory: Tensor, previous: Tensor, usage: Tensor, link: Tensor,
             precedence: Tensor) -> tuple[Tensor, ...]:
    """:meth:`DNCGroup.step` with its state as arguments: (weights, reads, new memory, usage, link, precedence)."""
    state = dict(zip(group.state_keys, (usage, link, precedence), strict=True))
    weights, reads, new_memory, new_state, _ = group.step(interface, memory, previous, state)
    assert reads is not None
    return (weights, reads, new_memory, *(new_state[key] for key in group.state_keys))


def dnc_step_backends(device: torch.device, compile: bool) -> dict[str, str]:
    """Path name -> the backend forced around :func:`dnc_step`, for each path that runs here."""
    backends = {TRITON: "triton"} if device.type == "cuda" else {}
    backends[EAGER] = "torch"
    if compile:
        backends[COMPILED_REFERENCE] = "torch"  # compiled in _time_step, one size at a time
    return backends


def bench_dnc_step(options: BenchOptions, device: torch.device, *, timing: Timing,
                   progress: Callable[[str], None]) -> list[Row]:
    """One row per (slot count, path): the DNC step's forward and forward+backward times."""
    rows: list[Row] = []
    for slots in options.dnc_slots:
        group, interface_size = dnc_group(slots, options.width)
        group.to(device)
        inputs, projections = dnc_step_inputs(group, interface_size, options.batch, device)
        nbytes = dnc_step_bytes(options.batch, slots, options.width, group.plan.write_heads, inputs[1].element_size())
        for path, backend in dnc_step_backends(device, options.compile).items():
            progress(f"dnc step, N={slots}: {path}")
            row = Row(DNC_STEP, path, options.batch, slots, options.width, 1, *nbytes)
            _fill_row(row, partial(_time_step, path, partial(dnc_step, group), inputs, projections, row,
                                   timing=timing, device=device, backend=backend))
            rows.append(row)
            _free(device)
        del inputs, projections
        _free(device)
    return rows


# -- additive attention ----------------------------------------------------------------------------------


def additive_attention_inputs(batch: int, heads: int, length: int, hidden: int, width: int, device: torch.device,
                              seed: int = 0) -> tuple[list[Tensor], list[Tensor]]:
    """Random inputs of :func:`cogdsl.ops.additive_attention` (requiring grad), and projections of its outputs.

    Returns (query_projection (B, H, A), key_projection (B, H, S, A), v (H, A), keys (B, S, D)),
    the projections normal as a linear layer's outputs and v uniform in ±1/sqrt(A) as the block
    initialises it; and (g_context, g_weights), the tensors the backward's loss projects the
    context (B, H, D) and the weights (B, H, S) onto.
    """
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator)

    bound = 1 / math.sqrt(hidden)
    inputs = [
        normal(batch, heads, hidden),
        normal(batch, heads, length, hidden),
        (2 * torch.rand(heads, hidden, generator=generator) - 1) * bound,
        normal(batch, length, width),
    ]
    projections = [normal(batch, heads, width), normal(batch, heads, length)]
    return ([t.to(device).requires_grad_(True) for t in inputs], [t.to(device) for t in projections])


def _op_paths(op: Callable[..., Any], reference: Callable[..., Any], device: torch.device,
              compile: bool) -> dict[str, tuple[Callable[..., Any], str | None]]:
    """Path name -> (function, the backend forced around it) for an op of :mod:`cogdsl.ops` with a Triton kernel.

    ``op`` is the public, shape-checked op (on ``triton`` when ``device`` is CUDA, and on ``torch``);
    ``reference`` its PyTorch reference, compiled in :func:`_time_step` one size at a time.
    """
    functions: dict[str, tuple[Callable[..., Any], str | None]] = {}
    if device.type == "cuda":
        functions[TRITON] = (op, "triton")
    functions[EAGER] = (op, "torch")
    if compile:
        functions[COMPILED_REFERENCE] = (reference, None)
    return functions


def _time_paths(template: Row, functions: dict[str, tuple[Callable[..., Any], str | None]], inputs: list[Tensor],
                projections: list[Tensor], *, label: str, timing: Timing, device: torch.device,
                progress: Callable[[str], None]) -> list[Row]:
    """One row per path of ``functions`` at one size: ``template`` (its path unset) with the path's times."""
    rows: list[Row] = []
    for path, (function, backend) in functions.items():
        progress(f"{label}: {path}")
        row = dataclasses.replace(template, path=path)
        _fill_row(row, partial(_time_step, path, function, inputs, projections, row, timing=timing, device=device,
                               backend=backend))
        rows.append(row)
        _free(device)
    return rows


def additive_attention_paths(device: torch.device, compile: bool) -> dict[str, tuple[Callable[..., Any],
                                                                                          str | None]]:
    """Path name -> (a function with ``additive_attention``'s arguments, the backend forced around it)."""
    from cogdsl import ops
    from cogdsl.ops import attention

    return _op_paths(ops.additive_attention, attention.additive_attention, device, compile)


def bench_additive_attention(options: BenchOptions, device: torch.device, *, timing: Timing,
                             progress: Callable[[str], None]) -> list[Row]:
    """One row per (sequence length S, width A = D, path): additive attention's forward and forward+backward times.

    :func:`bench` runs it on CUDA only (it is there to compare the kernel with the other paths);
    called directly it runs the paths that run on ``device``.
    """
    rows: list[Row] = []
    functions = additive_attention_paths(device, options.compile)
    for width in options.attention_widths:
        for length in options.attention_lengths:
            inputs, projections = additive_attention_inputs(options.batch, ATTENTION_HEADS, length, width, width,
                                                            device)
            nbytes = additive_attention_bytes(options.batch, ATTENTION_HEADS, length, width, width,
                                              inputs[0].element_size())
            template = Row(ADDITIVE_ATTENTION, "", options.batch, length, width, 1, *nbytes, hidden=width)
            rows += _time_paths(template, functions, inputs, projections,
                                label=f"additive attention, S={length}, A=D={width}", timing=timing, device=device,
                                progress=progress)
            del inputs, projections
            _free(device)
    return rows


# -- a memory network hop's read -------------------------------------------------------------------------


def hop_read_inputs(batch: int, slots: int, key_width: int, value_width: int, device: torch.device,
                    seed: int = 0) -> tuple[list[Tensor], list[Tensor]]:
    """Random inputs of :func:`cogdsl.ops.hop_read` as a MemN2N hop gets them, and projections of its outputs.

    Returns (query (B, D), keys (B, N, D), values (B, N, W), mask (B, N) bool): the query, keys and
    values normal and requiring grad; the mask as :class:`cogdsl.blocks.memnet.SentenceMemory`
    stores a batch of stories, the kept slots first: row b keeps its first n_b slots, n_b drawn
    uniformly from 1..N (no story is empty), and the longest story fills all N (the block trims
    the slots to the longest story). The slots not kept hold random keys and values too (the
    block's are zero; no path reads them for its result). And (g_read (B, W), g_weights (B, N)),
    the tensors the backward's loss projects the read and the weights onto.
    """
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator)

    differentiable = [normal(batch, key_width), normal(batch, slots, key_width), normal(batch, slots, value_width)]
    lengths = torch.randint(1, slots + 1, (batch,), generator=generator)
    lengths[lengths.argmax()] = slots
    mask = torch.arange(slots) < lengths[:, None]
    projections = [normal(batch, value_width), normal(batch, slots)]
    return ([*(t.to(device).requires_grad_(True) for t in differentiable), mask.to(device)],
            [t.to(device) for t in projections])


def hop_read_paths(device: torch.device, compile: bool) -> dict[str, tuple[Callable[..., Any], str | None]]:
    """Path name -> (a function with ``hop_read``'s arguments, the backend forced around it)."""
    from cogdsl import ops
    from cogdsl.ops import attention

    return _op_paths(ops.hop_read, attention.hop_read, device, compile)


def bench_hop_read(options: BenchOptions, device: torch.device, *, timing: Timing,
                   progress: Callable[[str], None]) -> list[Row]:
    """One row per (slot count N, width D = W, path): a memory network hop's read, forward and forward+backward times.

    :func:`bench` runs it on CUDA only (it is there to compare the kernel with the other paths);
    called directly it runs the paths that run on ``device``.
    """
    rows: list[Row] = []
    functions = hop_read_paths(device, options.compile)
    for width in options.hop_widths:
        for slots in options.hop_slots:
            inputs, projections = hop_read_inputs(options.batch, slots, width, width, device)
            nbytes = hop_read_bytes(options.batch, slots, width, width, inputs[0].element_size())
            template = Row(HOP_READ, "", options.batch, slots, width, 1, *nbytes, key_width=width)
            rows += _time_paths(template, functions, inputs, projections, label=f"hop read, N={slots}, D=W={width}",
                                timing=timing, device=device, progress=progress)
            del inputs, projections
            _free(device)
    return rows


# -- the training step -----------------------------------------------------------------------------------


def memory_sizes(spec: Spec) -> list[tuple[int, int]]:
    """(slots, width) of each memory block of the spec."""
    return [(int(b.params["slots"].data), int(b.params["width"].data)) for b in spec.blocks if b.kind == "memory"]


def spec_with_slots(spec: Spec, slots: int) -> Spec:
    """The spec with every memory block's slot count set to ``slots``."""
    blocks = tuple(
        dataclasses.replace(b, params={**b.params, "slots": Value(slots)}) if b.kind == "memory" else b
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
    from cogdsl.train import config_from_spec, eval_length

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
    from cogdsl.train import _logits, apply_gradients, build_optimizer

    config = setup.config
    torch.manual_seed(config.seed)
    model = cogdsl.compile(spec).to(device)
    model.train()
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(parameters, config)
    data = setup.task.sample(batch, torch.Generator().manual_seed(config.seed), length=setup.length).to(device)
    if path == COMPILED_REFERENCE:  # one step's graph, reused T times (the instance attribute shadows the method)
        model.step = torch.compile(model.step, dynamic=False)  # type: ignore[method-assign]
    run = model
    backend = {TRITON: "auto", EAGER: "torch", COMPILED_REFERENCE: "torch"}[path]

    def forward() -> None:
        with torch.no_grad(), ops.use_backend(backend):
            _logits(run, data)

    def step() -> None:
        with ops.use_backend(backend):
            loss = sequence_loss(_logits(run, data), data)
            loss.backward()
        apply_gradients(parameters, optimizer, config)

    with _quiet_compile() if path == COMPILED_REFERENCE else contextlib.nullcontext():
        if path == COMPILED_REFERENCE:
            _record_compile(row, _first_call(forward, device) + _first_call(step, device))
        row.ms_forward = median_ms(forward, timing, device)
        row.ms_forward_backward = median_ms(step, timing, device)


def bench_training_step(options: BenchOptions, setup: _TrainingSetup, device: torch.device, *, timing: Timing,
                        progress: Callable[[str], None]) -> list[Row]:
    """One row per (memory size, path): the forward over a batch of sequences and one whole training step."""
    paths = [EAGER] + ([COMPILED_REFERENCE] if options.compile else [])
    if device.type == "cuda":
        paths.insert(0, TRITON)
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
            _fill_row(row, partial(_time_training_step, path, setup, spec, row, batch=options.batch, timing=timing,
                                   device=device))
            rows.append(row)
            _free(device)
    return rows


# -- ratios, the machine and the tables ----------------------------------------------------------------------


def add_ratios(rows: list[Row]) -> None:
    """Set each row's ratio: its fwd+bwd time / triton's at the same section and size (eager's without triton).

    The size is (N, W), or (S, D, A) for additive attention, or (N, D, W) for the hop read.
    """
    groups: dict[tuple[str, int, int, int | None, int | None], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.section, row.slots, row.width, row.hidden, row.key_width), []).append(row)
    for group in groups.values():
        times = {r.path: r.ms_forward_backward for r in group if r.ms_forward_backward}
        baseline = TRITON if TRITON in times else EAGER if EAGER in times else None
        for row in group:
            if baseline is not None and row.ms_forward_backward:
                row.ratio, row.baseline = row.ms_forward_backward / times[baseline], baseline


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what the platform module knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine(device: torch.device) -> dict[str, Any]:
    """The device, library versions and CPU threads, for the header and the JSON."""
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    return {"device": name, "device_type": device.type, "cpu": cpu_model(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "triton": triton_version, "python": platform.python_version()}


def _num(x: float | None) -> str:
    """Three significant digits, no exponent for ordinary times: 0.0503, 2.91, 45.2, 4519; '-' for none."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _gbps_cell(gbps: float | None, copy_gbps: float | None) -> str:
    if gbps is None or copy_gbps is None:
        return _num(gbps)
    return f"{_num(gbps)} ({100 * gbps / copy_gbps:.0f}%)"


def _compile_note(row: Row) -> str:
    if row.compile_seconds is None:
        return ""
    note = f"compiled in {row.compile_seconds:.1f} s"
    if row.graph_breaks:
        note += f", {row.graph_breaks} graph break(s): {row.graph_break_reason}"
    return note


#: The size columns of each section that has more than N.
SIZE_COLUMNS = {ADDITIVE_ATTENTION: ("S", "A", "D"), HOP_READ: ("N", "D", "W")}


def _size_cells(row: Row) -> list[str]:
    """The size columns of a row: S, A, D for additive attention, N, D, W for the hop read, else N ('-' for none)."""
    if row.section == ADDITIVE_ATTENTION:
        return [str(row.slots), str(row.hidden), str(row.width)]
    if row.section == HOP_READ:
        return [str(row.slots), str(row.key_width), str(row.width)]
    return [str(row.slots) if row.slots else "-"]


def render_table(rows: list[Row], copy_gbps: float | None) -> str:
    """A plain-text table: N | path | ms fwd | ms fwd+bwd | GB/s fwd | GB/s fwd+bwd | ratio | note.

    Additive attention's rows have S | A | D and the hop read's N | D | W where the others have N.
    """
    suffix = " (% copy)" if copy_gbps is not None else ""
    sizes = list(SIZE_COLUMNS.get(rows[0].section, ("N",))) if rows else ["N"]
    header = [*sizes, "path", "ms fwd", "ms fwd+bwd", f"GB/s fwd{suffix}", f"GB/s fwd+bwd{suffix}", "ratio", "note"]
    cells = [header]
    for r in rows:
        note = r.note or _compile_note(r)
        cells.append([*_size_cells(r), r.path, _num(r.ms_forward), _num(r.ms_forward_backward),
                      _gbps_cell(r.gbps_forward, copy_gbps), _gbps_cell(r.gbps_forward_backward, copy_gbps),
                      f"{r.ratio:.2f}x" if r.ratio is not None else "-", note])
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    path_column = len(sizes)
    right = set(range(len(header) - 1)) - {path_column}
    lines = []
    for line in cells:
        text = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        lines.append("  " + "  ".join(text).rstrip())
    return "\n".join(lines)


def render(result: BenchResult) -> str:
    """The whole report: machine, command, then a table per section with what its numbers mean."""
    m = result.machine
    device = f"{m['device']} (CUDA)" if m["device_type"] == "cuda" else f"{m['device']} (CPU)"
    triton = m["triton"] or "not installed"
    out = [f"device: {device}, {m['threads']} CPU thread(s); torch {m['torch']}, triton {triton}",
           f"command: {result.command}"]
    if result.copy_gbps is not None:
        out.append(f"copy bandwidth: {result.copy_gbps:.0f} GB/s (dst.copy_(src) of 1 GiB, 2 x bytes / time)")
    if result.triton_note:
        out.append(result.triton_note)
    out += result.skipped
    for section in SECTIONS:
        rows = [r for r in result.rows if r.section == section]
        if not rows:
            continue
        first = rows[0]
        if section == MEMORY_STEP:
            title = (f"memory step: ntm_memory_step, B={first.batch}, W={first.width}, {HEADS - WRITE_HEADS} read + "
                     f"{WRITE_HEADS} write head, {SHIFTS} shifts, float32")
            times = "ms fwd: forward under no_grad; ms fwd+bwd: forward + backward of a projection of all 3 outputs"
            moved = BYTES_NOTE.format(size="4")
        elif section == DNC_STEP:
            title = (f"dnc step: DNCGroup.step of one dnc_memory, B={first.batch}, W={first.width}, {DNC_READS} read "
                     f"heads (backward + content + forward) + {DNC_WRITES} write head (content + allocate), float32")
            times = ("ms fwd: forward under no_grad; ms fwd+bwd: forward + backward of a projection of all 6 outputs "
                     "(weightings, reads, memory, usage, links, precedence)")
            moved = DNC_BYTES_NOTE.format(size="4")
        elif section == ADDITIVE_ATTENTION:
            title = (f"additive attention: ops.additive_attention, B={first.batch}, {ATTENTION_HEADS} head, "
                     "S elements, A score units, D key width, float32")
            times = ("ms fwd: forward under no_grad; ms fwd+bwd: forward + backward of a projection of both outputs "
                     "(context, weights) with respect to all 4 inputs")
            moved = ATTENTION_BYTES_NOTE.format(size="4")
        elif section == HOP_READ:
            title = (f"hop read: ops.hop_read, B={first.batch}, N slots (row b keeps its first 1..N, one row all N), "
                     "D key width, W value width, float32")
            times = ("ms fwd: forward under no_grad; ms fwd+bwd: forward + backward of a projection of both outputs "
                     "(read, weights) with respect to the query, the keys and the values")
            moved = HOP_BYTES_NOTE.format(size="4")
        else:
            memory = f"W={first.width}" if first.width else "no memory"
            title = f"training step: {result.spec_name}, B={first.batch}, T={first.steps} time steps, {memory}, float32"
            times = ("ms fwd: forward over the sequence under no_grad; ms fwd+bwd: one whole training step "
                     "(forward, loss, backward, clip, optimizer step)")
            moved = ("GB/s: the memory step's bytes only, T x the memory step's (fwd 2·B·N·W·4, fwd+bwd 5·B·N·W·4), "
                     "M read once and written once per time step; the controller's traffic is not counted")
        baselines = {r.baseline for r in rows if r.baseline}
        columns = SIZE_COLUMNS.get(section, ("N",))
        size = f"{', '.join(columns[:-1])} and {columns[-1]}" if len(columns) > 1 else columns[0]
        ratio = (f"ratio: ms fwd+bwd / {baselines.pop()}'s at the same {size} (how many times slower)"
                 if len(baselines) == 1 else "ratio: -")
        legend = "; ".join(f"{p} = {PATH_NOTES[section][p]}" for p in dict.fromkeys(r.path for r in rows))
        out += ["", title, render_table(rows, result.copy_gbps), f"  {times}", f"  {moved}", f"  {ratio}",
                f"  {legend}"]
    return "\n".join(out)


# -- the command --------------------------------------------------------------------------------------


def bench(options: BenchOptions, *, progress: Callable[[str], None] | None = None) -> BenchResult:
    """Time every section of ``options`` on this machine's GPU if it has one, else its CPU.

    Raises:
        UsageError: an option is out of range, the spec is missing or has no train: section.
        SpecError: the spec has errors.
    """
    options.check()
    say = progress or (lambda message: None)
    setup = _training_setup(options) if TRAINING_STEP in options.sections else None
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    timing = Timing.default(device, options.warmup, options.repeats)
    threads = torch.get_num_threads()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    try:
        result = BenchResult(command=options.command_line(), machine=machine(device), copy_gbps=None,
                             triton_note=None if device.type == "cuda" else NEEDS_GPU,
                             spec_name=setup.spec.name if setup is not None else None)
        if device.type == "cuda":
            say("copy bandwidth")
            result.copy_gbps = copy_bandwidth_gbps(device)
        if MEMORY_STEP in options.sections:
            result.rows += bench_memory_step(options, device, timing=timing, progress=say)
        if DNC_STEP in options.sections:
            result.rows += bench_dnc_step(options, device, timing=timing, progress=say)
        for section, run, needs_gpu in ((ADDITIVE_ATTENTION, bench_additive_attention, ATTENTION_NEEDS_GPU),
                                        (HOP_READ, bench_hop_read, HOP_NEEDS_GPU)):
            if section not in options.sections:
                continue
            if device.type == "cuda":  # these compare the Triton kernel with the other paths: no kernel, no section
                result.rows += run(options, device, timing=timing, progress=say)
            else:
                result.skipped.append(needs_gpu)
        if setup is not None:
            result.rows += bench_training_step(options, setup, device, timing=timing, progress=say)
    finally:
        torch.set_num_threads(threads)
    add_ratios(result.rows)
    return result


def options_from_args(args: Any) -> BenchOptions:
    """BenchOptions from ``cogdsl bench``'s parsed arguments."""
    sections = SECTIONS if args.only is None else (args.only.replace("-", " "),)
    return BenchOptions(spec=args.spec, slots=tuple(args.slots), dnc_slots=tuple(args.dnc_slots), batch=args.batch,
                        width=args.width,
                        length=args.length, train_slots=tuple(args.train_slots) if args.train_slots else None,
                        warmup=args.warmup, repeats=args.repeats, compile=not args.no_compile, sections=sections,
                        threads=args.threads, json_path=args.json)


def bench_command(args: Any) -> int:
    """``cogdsl bench [SPEC] [--slots N ...] [--dnc-slots N ...] [--batch B] [--width W] [--len T]
    [--train-slots N ...] [--warmup K] [--repeats R] [--no-compile]
    [--only memory-step|dnc-step|additive-attention|hop-read|training-step] [--threads T] [--json PATH]``.

    Prints the tables on standard output and what is being timed on standard error.
    """
    options = options_from_args(args)
    result = bench(options, progress=lambda message: print(f"timing {message}", file=sys.stderr, flush=True))
    print(render(result))
    if options.json_path is not None:
        try:
            Path(options.json_path).write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
        except OSError as err:
            raise UsageError(f"--json {options.json_path}: cannot write it: {err.strerror or err}") from None
        print(f"wrote {options.json_path}", file=sys.stderr)
    return 0

