"""Triton kernels for cogdsl's ops, installed as ``cogdsl.kernels``.

One file per family, each with its forward kernel, its backward kernel, their launchers (registered as
``torch.library`` custom ops by :mod:`~cogdsl.kernels.library`, so ``torch.compile`` traces a step that calls
them as one graph) and its memory traffic in a comment:

* :mod:`~cogdsl.kernels.content` -- content weights: cosine (or dot) similarity, strength,
  softmax over slots (online, tiled over slots);
* :mod:`~cogdsl.kernels.ntm_address` -- any pipeline of content, gate, shift and sharpen fused, one
  kernel per pipeline (the stages are ``tl.constexpr`` flags);
* :mod:`~cogdsl.kernels.read_write` -- the read and the write of every head;
* :mod:`~cogdsl.kernels.memory_step` -- one memory's whole step (every head's addressing, any
  pipeline, the reads and the write) in one launch forward and one backward;
* :mod:`~cogdsl.kernels.memory_split` -- the same step with each batch element's slots split over
  several programs, for large memories on a GPU (three launches forward, four backward);
* :mod:`~cogdsl.kernels.dnc` -- the DNC's usage, allocation (sorted on the GPU), temporal
  links and directional weightings;
* :mod:`~cogdsl.kernels.additive` -- additive (Bahdanau) attention over a sequence: score,
  softmax and context fused (online softmax, tiled over the sequence);
* :mod:`~cogdsl.kernels.hop` -- a memory network hop's read: dot-product scores, the softmax
  over the kept slots and the weighted sum of the values fused (online softmax, tiled over slots);
* :mod:`~cogdsl.kernels.sam` -- Sparse Access Memory's write weights, write (elementwise over slot
  tiles) and sparse read (the K chosen rows of each head gathered, cosine, softmax over K).
* :mod:`~cogdsl.kernels.dntm` -- the Dynamic NTM's LRU content weights (content softmax less a moving
  average of the logits, online, tiled over slots) and its slot sampling (inverse CDF with a running
  cumulative sum, or the argmax; the one-hot, log-probability and entropy).

The PyTorch references they are tested against are :mod:`cogdsl.ops.ntm`, :mod:`cogdsl.ops.dnc`
and :mod:`cogdsl.ops.attention`. Programs run one per batch element (the attention forward:
one per batch element and head) and walk the slots, or the sequence, in tiles of ``BLOCK_N``
(``BLOCK_S``), so any slot count works (65,536 and beyond) with the same kernel; shared
tile-level pieces are in :mod:`~cogdsl.kernels.tiles`.

They are registered as the ``"triton"`` backend of :mod:`cogdsl.ops` here: imported at once where they can
run (a CUDA device, or the interpreter), since torch.compile cannot trace an import; elsewhere lazily, so
nothing imports Triton until a Triton op is forced. The backend takes CUDA tensors, or CPU
tensors when ``TRITON_INTERPRET=1`` was set before the first call (Triton's interpreter,
which is how the tests run the kernels without a GPU).
"""

from __future__ import annotations

import contextvars
import importlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from cogdsl.ops.backend import BackendUnavailableError, mark_unavailable, register

__all__ = ["OPS", "available", "forced_split", "interpreting", "max_tile_slots", "splitting", "tiling"]

#: cogdsl.ops function name -> the kernel module that implements it.
OPS: dict[str, str] = {
    "content_weights": "content",
    "ntm_address": "ntm_address",
    "address": "ntm_address",
    "read": "read_write",
    "write": "read_write",
    "ntm_memory_step": "memory_step",
    "memory_step": "memory_step",
    "dnc_usage": "dnc",
    "dnc_allocation": "dnc",
    "dnc_link": "dnc",
    "dnc_directional": "dnc",
    "additive_attention": "additive",
    "hop_read": "hop",
    "interpolate": "stages",
    "shift": "stages",
    "sharpen": "stages",
    "sam_write_weights": "sam",
    "sam_write": "sam",
    "sam_read": "sam",
    "lru_content_weights": "dntm",
    "sample_slots": "dntm",
}

_max_slots: contextvars.ContextVar[int | None] = contextvars.ContextVar("cogdsl_max_tile_slots", default=None)
_split_chunks: contextvars.ContextVar[int | None] = contextvars.ContextVar("cogdsl_split_chunks", default=None)


def available() -> bool:
    """Whether the ``triton`` package can be imported."""
    return importlib.util.find_spec("triton") is not None


def interpreting() -> bool:
    """Whether Triton's interpreter is on (``TRITON_INTERPRET=1``): kernels then run on CPU tensors."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


@contextmanager
def tiling(max_slots: int) -> Iterator[int]:
    """Cap the slot tile (``BLOCK_N``) at ``max_slots`` (a power of two) inside a ``with`` block.

    The kernels pick their tile from the sizes; the tests use this to make a small memory span
    several tiles, so that the code paths a 65,536-slot memory takes run at interpreter speed.
    """
    if max_slots < 1 or max_slots & (max_slots - 1):
        raise ValueError(f"tiling: max_slots must be a power of two, got {max_slots}")
    token = _max_slots.set(max_slots)
    try:
        yield max_slots
    finally:
        _max_slots.reset(token)


def max_tile_slots() -> int | None:
    """The cap :func:`tiling` set, or None."""
    return _max_slots.get()


@contextmanager
def splitting(chunks: int) -> Iterator[int]:
    """Split each batch element's slots over about ``chunks`` programs in the memory step inside a ``with``
    block (1: one program per batch element), whatever the device and sizes.

    Outside, the memory step splits on a GPU where one program per batch element would leave SMs idle over a
    large memory (:func:`cogdsl.kernels.memory_step.split_chunks`); the tests use this to run the split
    kernels on the interpreter.
    """
    if chunks < 1:
        raise ValueError(f"splitting: chunks must be at least 1, got {chunks}")
    token = _split_chunks.set(chunks)
    try:
        yield chunks
    finally:
        _split_chunks.reset(token)


def forced_split() -> int | None:
    """The chunk count :func:`splitting` set, or None."""
    return _split_chunks.get()


def _device_check(op: str, first: Any) -> None:
    if not first.is_cuda and not interpreting():
        raise BackendUnavailableError(
            f"cogdsl.ops.{op}: the 'triton' backend runs on CUDA tensors, and these are on {first.device}; "
            "use the 'torch' backend, or set TRITON_INTERPRET=1 before the first call to run Triton's "
            "interpreter on the CPU"
        )


def _checked(op: str, implementation: Callable[..., Any]) -> Callable[..., Any]:
    """The op's Triton implementation, with the device checked first."""

    def call(*args: Any) -> Any:
        _device_check(op, args[0])
        return implementation(*args)

    call.__name__ = call.__qualname__ = op
    call.__doc__ = implementation.__doc__
    return call


def _lazy(op: str, module: str) -> Callable[..., Any]:
    """The op's Triton implementation, imported on its first call (after the device check)."""
    implementation: Callable[..., Any] | None = None

    def imported(*args: Any) -> Any:
        nonlocal implementation
        if implementation is None:
            implementation = getattr(importlib.import_module(f"cogdsl.kernels.{module}"), op)
        return implementation(*args)

    imported.__doc__ = f"cogdsl.kernels.{module}.{op}, imported on first use."
    return _checked(op, imported)


def _kernels_can_run() -> bool:
    """Whether the kernels can run in this process: a CUDA device, or Triton's interpreter."""
    import torch

    return interpreting() or torch.cuda.is_available()


if available():
    # Where the kernels can run they are imported now, so that torch.compile, which cannot trace an import,
    # finds every op already defined; elsewhere Triton is imported only if an op is forced onto it.
    _now = _kernels_can_run()
    for _op, _module in OPS.items():
        register(_op, "triton", _checked(_op, getattr(importlib.import_module(f"cogdsl.kernels.{_module}"), _op))
                 if _now else _lazy(_op, _module))
    del _op, _module, _now
else:
    mark_unavailable("triton", "the triton package is not installed (pip install triton)")
