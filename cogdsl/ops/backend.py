"""Backend selection for the functional ops.

Every op in :mod:`cogdsl.ops` runs under three backends, each filled by one module, so the order
in which they are imported (or reloaded) does not matter:

* ``"reference"`` -- the plain PyTorch equation, autograd for the backward: every op, any device,
  registered by the op's declaration (:func:`cogdsl.ops.declare.op`, in :mod:`cogdsl.ops.ntm`,
  :mod:`cogdsl.ops.dnc` and :mod:`cogdsl.ops.attention`);
* ``"torch"`` -- the PyTorch fast path: a hand-written backward where there is one
  (:mod:`cogdsl.ops.ntm_grad` registers those), otherwise the reference; every op, any device;
* ``"triton"`` -- fused kernels from ``cogdsl.kernels``, CUDA tensors only (or the CPU under
  ``TRITON_INTERPRET=1``), for the ops that have one.

Which one runs is decided per call, in this order:

1. the innermost ``with use_backend(name):`` block, if any;
2. the environment variable ``COGDSL_BACKEND`` (read at call time, so a test can monkeypatch it);
3. ``"auto"``: the Triton implementation for CUDA tensors when one is registered for that op,
   otherwise the ``"torch"`` fast path.

A forced backend is never silently replaced: forcing ``"triton"`` for an op that has no Triton
implementation raises :class:`BackendUnavailableError`.

The ops are called tens of times per time step, so :func:`resolve` is kept to a context-variable
read, an environment read and a dict lookup.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from torch.compiler import is_compiling

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "BackendUnavailableError",
    "current_backend",
    "implementations",
    "mark_unavailable",
    "register",
    "resolve",
    "use_backend",
]

#: The names :func:`use_backend` and ``COGDSL_BACKEND`` accept.
BACKENDS: tuple[str, ...] = ("auto", "reference", "torch", "triton")
#: The backends an op can be registered under.
_IMPL_BACKENDS: tuple[str, ...] = ("reference", "torch", "triton")
#: The environment variable that sets the default backend.
ENV_VAR = "COGDSL_BACKEND"

# op name -> backend name -> implementation
_REGISTRY: dict[str, dict[str, Callable[..., Any]]] = {}

# backend name -> why it cannot run here (e.g. a package that is not installed)
_UNAVAILABLE: dict[str, str] = {}

# None: nothing forced by use_backend, consult the environment.
_forced: contextvars.ContextVar[str | None] = contextvars.ContextVar("cogdsl_backend", default=None)
# The same, as a plain global, for code traced by torch.compile: Dynamo cannot trace
# ContextVar.get (a graph break at every op), but it reads a global and guards on its value.
_forced_while_compiling: str | None = None


class BackendUnavailableError(NotImplementedError):
    """A backend was forced for an op that has no implementation under it."""


def _check_name(name: object, allowed: tuple[str, ...], what: str) -> str:
    if not isinstance(name, str) or name not in allowed:
        names = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"unknown {what} {name!r}; expected one of {names}")
    return name


def register(op_name: str, backend: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register ``fn`` as the ``backend`` implementation of ``op_name``; returns ``fn``.

    Registering again for the same (op, backend) replaces the earlier implementation. An op's
    ``"reference"`` is registered by its declaration; an op with no ``"torch"`` implementation
    runs its reference under ``"torch"``.
    """
    _check_name(backend, _IMPL_BACKENDS, "backend")
    if not callable(fn):
        raise TypeError(f"register: implementation of {op_name!r} for {backend!r} is not callable")
    _REGISTRY.setdefault(op_name, {})[backend] = fn
    return fn


def mark_unavailable(backend: str, reason: str) -> None:
    """Record why ``backend`` has no implementations here; forcing it then says so."""
    _UNAVAILABLE[_check_name(backend, _IMPL_BACKENDS, "backend")] = reason


def implementations(op_name: str) -> tuple[str, ...]:
    """The backends ``"auto"`` picks from for ``op_name``: ``"torch"`` (its own or its reference)
    and ``"triton"`` where registered (empty if the op is unknown).

    Every declared op also runs under ``"reference"``, which ``"auto"`` never picks.
    """
    impls = _REGISTRY.get(op_name, {})
    torch_runs = "torch" in impls or "reference" in impls
    return ("torch",) * torch_runs + ("triton",) * ("triton" in impls)


def current_backend() -> str:
    """The backend in force: the innermost :func:`use_backend`, else ``COGDSL_BACKEND``, else ``"auto"``."""
    name = _forced.get()
    if name is None:
        name = os.environ.get(ENV_VAR) or "auto"
    return name


@contextmanager
def _using(name: str) -> Iterator[str]:
    global _forced_while_compiling
    token = _forced.set(name)
    outer, _forced_while_compiling = _forced_while_compiling, name
    try:
        yield name
    finally:
        _forced.reset(token)
        _forced_while_compiling = outer


def use_backend(name: str) -> AbstractContextManager[str]:
    """Force a backend inside a ``with`` block: ``"reference"``, ``"torch"``, ``"triton"`` or ``"auto"``.

    ``with use_backend("torch"):`` runs every op inside on the PyTorch fast path (``"reference"``:
    on the plain equations, autograd for the backward); blocks nest,
    the innermost wins, and it takes precedence over ``COGDSL_BACKEND``. The name is checked
    at once: an unknown one raises ``ValueError`` listing the allowed names. The ``with``
    target is the backend name.
    """
    return _using(_check_name(name, BACKENDS, "backend"))


def resolve(op_name: str, is_cuda: bool) -> Callable[..., Any]:
    """The implementation of ``op_name`` to call for tensors on CUDA (``is_cuda``) or not."""
    name = _forced_while_compiling if is_compiling() else _forced.get()
    if name is None:
        name = os.environ.get(ENV_VAR) or "auto"
    impls = _REGISTRY[op_name]
    if name == "auto":
        if is_cuda:
            fn = impls.get("triton")
            if fn is not None:
                return fn
        name = "torch"
    fn = impls.get(name)
    if fn is None and name == "torch":  # no hand-written fast path: the reference is the torch backend
        fn = impls.get("reference")
    if fn is None:
        # Slow path: only reached on an error.
        _check_name(
            name,
            BACKENDS,
            f"backend (from {ENV_VAR})" if _forced.get() is None else "backend",
        )
        why = _UNAVAILABLE.get(name, "no {name!r} implementation is available in this version")
        raise BackendUnavailableError(f"cogdsl.ops.{op_name}: {why.format(name=name)}; use the 'torch' backend")
    return fn
