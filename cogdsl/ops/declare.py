"""How an op of :mod:`cogdsl.ops` is declared: its reference equation and its contract, in one place.

The reference of an op is a plain PyTorch function, the equation with autograd for its backward.
:func:`op` declares it an op, naming each argument's shape in letters (``memory="BNW"``), each
string option's allowed values (``similarity=SIMILARITIES``) and any further checks::

    @op(memory="BNW", weights="BHN", erase="BHW", add="BHW")
    def write(memory, weights, erase, add):
        ...  # its docstring (the equation, the shapes) is cogdsl.ops.write's; its body, the reference

The decorator returns the reference unchanged (``cogdsl.ops.ntm.write`` stays the plain equation,
which the kernel tests and the benchmarks use as the oracle); :func:`public` gives the function
``cogdsl.ops`` exports, which has the reference's name, signature and docstring and

1. checks the arguments: each tensor's rank, then every shared letter agrees (a letter is bound by
   the first argument that has it, and a disagreement names both), then the options, then the
   declared checks; a combination of shapes, dtypes and options that passed once is remembered,
   so a training loop pays for a set lookup, not the checks. Only ``.shape`` and ``.dtype`` are
   read, so this never synchronises with the device;
2. calls the implementation :func:`cogdsl.ops.backend.resolve` picks for the backend in force,
   with every argument positional and defaults filled in.

Shape letters: B batch, H heads, N memory slots (M: the second N of a square (N, N) matrix, shown
as N), W slot width, K = 2s+1 shift offsets, V write heads, R read heads, S sequence elements,
A score units per head, D key width.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor
from torch.compiler import is_compiling

from cogdsl.ops.backend import register, resolve

__all__ = ["DIM_NAMES", "Check", "Op", "check_shapes", "declared", "op", "public"]

F = TypeVar("F", bound=Callable[..., Any])

#: A further check of an op's arguments: (op name, arguments by name) -> None, raising on bad input.
Check = Callable[[str, dict[str, Any]], None]

#: What a shape letter is called in an error message.
DIM_NAMES = {
    "B": "batch size",
    "H": "head count",
    "N": "slot count",
    "W": "width",
    "K": "shift offset count",
    "V": "write head count",
    "R": "read head count",
    "M": "slot count",
    "S": "sequence length",
    "A": "score width",
    "D": "key width",
}

# (op, shapes..., dtypes..., options...) keys that passed their checks; see _remember.
_VALID: set[tuple[object, ...]] = set()


def _remember(key: tuple[object, ...]) -> None:
    if len(_VALID) >= 4096:  # shapes that change every call: keep the set bounded
        _VALID.clear()
    _VALID.add(key)


def _shown(dims: str) -> str:
    """Dimension letters as a message shows them: M is the second N of a square (N, N) matrix."""
    return ", ".join("N" if letter == "M" else letter for letter in dims)


def check_shapes(op_name: str, *args: tuple[str, object, str]) -> None:
    """Check (name, tensor, dims) triples: rank, then every shared letter of ``dims`` agrees.

    A letter is bound by the first argument that has it; a later disagreement names both.
    Only ``.shape`` is read, so this never synchronises with the device.
    """
    bound: dict[str, tuple[int, str]] = {}
    for name, t, dims in args:
        if not isinstance(t, Tensor):
            raise TypeError(
                f"{op_name}: {name} must be a torch.Tensor of shape ({_shown(dims)}), got {type(t).__name__}"
            )
        shape = tuple(t.shape)
        if len(shape) != len(dims):
            raise ValueError(
                f"{op_name}: {name} must have {len(dims)} dimensions ({_shown(dims)}) but has shape {shape}"
            )
        for letter, size in zip(dims, shape, strict=True):
            seen = bound.get(letter)
            if seen is None:
                bound[letter] = (size, name)
            elif seen[0] != size:
                expected = tuple(bound[d][0] if d in bound else s for d, s in zip(dims, shape, strict=True))
                raise ValueError(
                    f"{op_name}: {name} has shape {shape} but {seen[1]} {DIM_NAMES[letter]} is {seen[0]} "
                    f"(expected {expected})"
                )


@dataclass(frozen=True)
class Op:
    """One op's declaration: its reference and the contract its public function checks."""

    name: str
    reference: Callable[..., Any]
    #: Every argument's name, in order.
    params: tuple[str, ...]
    #: Each argument's default, ``inspect.Parameter.empty`` when it has none.
    defaults: tuple[Any, ...]
    #: Tensor argument -> its dimension letters.
    dims: dict[str, str]
    #: String option -> its allowed values.
    choices: dict[str, tuple[str, ...]]
    checks: tuple[Check, ...]
    #: The tensor arguments that may be None (their letters end in ``?`` in the contract).
    optional: frozenset[str] = frozenset()

    def check(self, args: tuple[Any, ...]) -> None:
        """Raise ``TypeError`` or ``ValueError`` for arguments (all positional) that break the contract."""
        named = dict(zip(self.params, args, strict=True))
        check_shapes(self.name, *((name, named[name], dims) for name, dims in self.dims.items()
                                  if not (named[name] is None and name in self.optional)))
        for name, allowed in self.choices.items():
            if named[name] not in allowed:
                listed = ", ".join(repr(a) for a in allowed)
                raise ValueError(f"{self.name}: unknown {name} {named[name]!r}; expected one of {listed}")
        for check in self.checks:
            check(self.name, named)
        check_dtypes(self.name, {name: named[name] for name in self.dims if named[name] is not None})


FLOAT_DTYPES = (torch.float32, torch.float64)


def check_dtypes(op_name: str, tensors: dict[str, Tensor]) -> None:
    """The first tensor argument (the memory, the weights, the query) is float32 or float64, and every other
    floating one has its dtype: a float64 key beside a float32 memory, or an integer memory, is named here, not met
    as a matmul's error. Integer and bool arguments (slot indices, masks) are the op's own checks'."""
    first = next(iter(tensors.values()), None)
    floats = {name: t for name, t in tensors.items() if t.is_floating_point() or t is first}
    if first is not None and (first.dtype not in FLOAT_DTYPES or len({t.dtype for t in floats.values()}) > 1):
        listed = ", ".join(f"{name} {str(t.dtype).removeprefix('torch.')}" for name, t in floats.items())
        raise TypeError(f"{op_name}: the float tensors must all be float32 or all float64, got {listed}")


# op name -> its declaration, and the function cogdsl.ops exports for it
_DECLARED: dict[str, Op] = {}
_PUBLIC: dict[str, Callable[..., Any]] = {}


def op(*, checks: tuple[Check, ...] = (), **contract: str | tuple[str, ...]) -> Callable[[F], F]:
    """Declare the decorated function the reference of the op of its name; returns it unchanged.

    ``contract`` names every argument: a tensor's dimension letters (``memory="BNW"``; a letter
    shared by two arguments must have the same size in both; ``gate="BH?"``: a tensor or None), or a string
    option's allowed values
    (``similarity=("cosine", "dot")``). ``checks`` run after those, in order, on arguments
    whose shapes agree. The reference is registered as the ``"reference"`` backend of the op,
    and :func:`public` then gives the op's checked, dispatching function. Declaring an op again
    (a reloaded module) replaces its reference and contract, and nothing else.
    """

    def declare(reference: F) -> F:
        name = reference.__name__
        params = inspect.signature(reference).parameters.values()
        if any(p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params):
            raise TypeError(f"op {name}: every argument must be positional-or-keyword")
        names = tuple(p.name for p in params)
        if set(contract) != set(names):
            raise TypeError(f"op {name}: the contract names {sorted(contract)} but the arguments are {list(names)}")
        optional = frozenset(n for n, dims in contract.items() if isinstance(dims, str) and dims.endswith("?"))
        letters = {letter for dims in contract.values() if isinstance(dims, str) for letter in dims.rstrip("?")}
        if not letters <= set(DIM_NAMES):
            raise TypeError(f"op {name}: unknown dimension letters {sorted(letters - set(DIM_NAMES))}")
        declaration = Op(
            name=name,
            reference=reference,
            params=names,
            defaults=tuple(p.default for p in params),
            dims={n: d.rstrip("?") for n in names if isinstance(d := contract[n], str)},
            choices={n: c for n in names if isinstance(c := contract[n], tuple)},
            checks=checks,
            optional=optional,
        )
        register(name, "reference", reference)
        _DECLARED[name] = declaration
        _PUBLIC[name] = _public_function(declaration)
        return reference

    return declare


def _shape(t: Any) -> Any:
    """A tensor's shape, or None for None (an optional argument left out)."""
    return None if t is None else t.shape


def _dtype(t: Any) -> Any:
    return None if t is None else t.dtype


def _public_function(declaration: Op) -> Callable[..., Any]:
    """The function cogdsl.ops exports for ``declaration``: check the arguments once, then dispatch."""
    name, reference = declaration.name, declaration.reference
    params, defaults, arity = declaration.params, declaration.defaults, len(declaration.params)
    tensors = tuple(i for i, p in enumerate(params) if p in declaration.dims)
    options = tuple(i for i, p in enumerate(params) if p in declaration.choices)
    required = inspect.Parameter.empty

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """Every argument positional, defaults filled in (a loop over tuples: torch.compile traces it)."""
        if len(args) <= arity:
            values, taken = list(args), 0
            for param, default in zip(params[len(args):], defaults[len(args):], strict=True):
                if param in kwargs:
                    values.append(kwargs[param])
                    taken += 1
                elif default is required:
                    break
                else:
                    values.append(default)
            else:
                if taken == len(kwargs):
                    return tuple(values)
        reference(*args, **kwargs)  # a call that does not fit the signature: Python's own TypeError, named
        raise AssertionError(f"{name}: arguments that bind() refused were accepted")  # pragma: no cover

    def check_once(args: tuple[Any, ...]) -> None:
        """The checks, unless this combination of shapes, dtypes and options passed them before."""
        try:
            key = (name, *[_shape(args[i]) for i in tensors], *[_dtype(args[i]) for i in tensors],
                   *[args[i] for i in options])
        except AttributeError:  # an argument that is not a tensor: the check says which
            declaration.check(args)
            raise
        if key not in _VALID:
            declaration.check(args)
            _remember(key)

    @functools.wraps(reference)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if kwargs or len(args) != arity:
            args = bind(args, kwargs)
        if is_compiling():  # checked while torch.compile traces (shapes are constants there), never again
            declaration.check(args)
        else:
            check_once(args)
        return resolve(name, args[0].is_cuda)(*args)

    checked.__module__ = "cogdsl.ops"  # where it is exported (pickle finds it there), not its reference's module
    return checked


def public(reference: F) -> F:
    """The function ``cogdsl.ops`` exports for the op whose reference is ``reference``."""
    return _PUBLIC[reference.__name__]  # type: ignore[return-value]


def declared() -> dict[str, Op]:
    """Every declared op by name (a copy)."""
    return dict(_DECLARED)
