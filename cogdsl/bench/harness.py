"""What every section of ``cogdsl bench`` shares: the paths, the rows, the timing, the ratios and the machine.

A section (one file beside this one) makes its inputs, counts the bytes they must move, says which paths run on
this device, and hands each path's function to :func:`time_step` through :func:`fill_row`. This module times
every path the same way:

* a time is the median of repeated calls after warm-up calls (:class:`Timing`, :func:`median_ms`; CUDA events
  on a GPU); torch.compile's first calls are timed apart, as the compile time, on a fresh cache, with the graph
  breaks it made (:func:`quiet_compile`, :func:`record_compile`);
* a path that cannot run here is a row whose note says why (:func:`fill_row`);
* GB/s divide the bytes that must move by the time (:class:`Row`); on CUDA each is also given as a percentage
  of the device's copy bandwidth (:func:`copy_bandwidth_gbps`);
* each row's ratio is its fwd+bwd time over triton's at the same section and size, or eager's where triton did
  not run (:func:`add_ratios`).

:class:`Section` is what a section declares so that :mod:`cogdsl.bench.command` runs it and prints its table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from cogdsl.bench.command import BenchOptions

TRITON, EAGER, EAGER_REFERENCE, COMPILED_REFERENCE = "triton", "eager", "eager-reference", "compiled-reference"
#: The training step with --compile on the Triton backend (CUDA only).
COMPILED_TRITON = "compiled-triton"
COPY_BYTES = 1 << 30
NEEDS_GPU = "triton: not run: the Triton path needs a CUDA GPU (Triton's interpreter is for testing, not timing)"


# -- rows and sections ----------------------------------------------------------------------------------------


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


#: A section's timing: ``run(options, device, *, timing, progress)`` -> one row per (size, path).
Runner = Callable[..., list[Row]]


def slot_cells(row: Row) -> list[str]:
    """A row's size column: N ('-' for none)."""
    return [str(row.slots) if row.slots else "-"]


@dataclass(frozen=True)
class Section:
    """One table of ``cogdsl bench``: how to time it and how its table reads.

    ``run(options, device, *, timing, progress)`` returns one row per (size, path). ``prepare``, if given, is
    called with the options before anything is timed (so that a user error stops the command at once) and
    returns ``run`` with what it loaded bound, and the name of the model it times. ``needs_gpu``, if given, is
    the line printed instead of the table on a machine without CUDA. ``title(first_row, model_name)`` heads the
    table; ``times`` and ``bytes_note`` (``{size}``: the itemsize) say what its numbers mean, ``path_notes``
    what each path runs; ``json_key`` names ``bytes_note`` in the JSON (None: not written there).
    """

    name: str
    run: Runner
    title: Callable[[Row, str | None], str]
    times: str
    bytes_note: str
    path_notes: dict[str, str]
    size_columns: tuple[str, ...] = ("N",)
    size_cells: Callable[[Row], list[str]] = slot_cells
    json_key: str | None = None
    needs_gpu: str | None = None
    prepare: Callable[[BenchOptions], tuple[Runner, str | None]] | None = None


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


def first_call(fn: Callable[[], object], device: torch.device) -> float:
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
def quiet_compile() -> Iterator[None]:
    """torch.compile with a fresh cache (so each size compiles, and is timed, on its own) and no lru_cache warning."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*lru_cache.*")
        yield


def record_compile(row: Row, seconds: float) -> None:
    """Store the compile time and the graph breaks that torch.compile counted since :func:`quiet_compile`."""
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


def free(device: torch.device) -> None:
    """Give the GPU memory cached by the last size back, so that the next size has it all."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


# -- each path side by side ---------------------------------------------------------------------------


def fill_row(row: Row, time: Callable[[], None]) -> None:
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


def time_step(path: str, function: Callable[..., Any], inputs: list[Tensor], projections: list[Tensor],
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

    with quiet_compile() if path == COMPILED_REFERENCE else contextlib.nullcontext():
        if path == COMPILED_REFERENCE:
            function = torch.compile(function, dynamic=False)
            record_compile(row, first_call(forward, device) + first_call(forward_backward, device))
        row.ms_forward = median_ms(forward, timing, device)
        row.ms_forward_backward = median_ms(forward_backward, timing, device)


def op_paths(op: Callable[..., Any], reference: Callable[..., Any], device: torch.device,
             compile: bool) -> dict[str, tuple[Callable[..., Any], str | None]]:
    """Path name -> (function, the backend forced around it) for an op of :mod:`cogdsl.ops` with a Triton kernel.

    ``op`` is the public, shape-checked op (on ``triton`` when ``device`` is CUDA, and on ``torch``);
    ``reference`` its PyTorch reference, compiled in :func:`time_step` one size at a time.
    """
    functions: dict[str, tuple[Callable[..., Any], str | None]] = {}
    if device.type == "cuda":
        functions[TRITON] = (op, "triton")
    functions[EAGER] = (op, "torch")
    if compile:
        functions[COMPILED_REFERENCE] = (reference, None)
    return functions


def time_paths(template: Row, functions: dict[str, tuple[Callable[..., Any], str | None]], inputs: list[Tensor],
               projections: list[Tensor], *, label: str, timing: Timing, device: torch.device,
               progress: Callable[[str], None]) -> list[Row]:
    """One row per path of ``functions`` at one size: ``template`` (its path unset) with the path's times."""
    rows: list[Row] = []
    for path, (function, backend) in functions.items():
        progress(f"{label}: {path}")
        row = dataclasses.replace(template, path=path)
        fill_row(row, partial(time_step, path, function, inputs, projections, row, timing=timing, device=device,
                              backend=backend))
        rows.append(row)
        free(device)
    return rows


# -- ratios and the machine ---------------------------------------------------------------------------


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

