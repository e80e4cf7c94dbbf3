"""Every kernel family as a pair of ``torch.library`` custom ops, so ``torch.compile`` sees one node per kernel.

A family's launcher is two plain functions:

* ``forward(*inputs, *options) -> (*outputs, *saved)``: allocates and launches; ``outputs`` are what the
  op returns, ``saved`` any further tensors its backward needs (statistics, scratch);
* ``backward(*inputs, *outputs, *saved, *d_outputs, *options) -> grads``: one gradient for each
  differentiable input, in order.

:func:`define` registers them as the custom ops ``cogdsl::NAME`` and ``cogdsl::NAME_backward``, joined by
``register_autograd``. Both are opaque to Dynamo, so a model's time step traces into one graph
(``torch.compile(fullgraph=True)``) on either backend, and Inductor fuses the PyTorch arithmetic around the
kernels. Their fake implementations (what tracing runs, on tensors with shapes and no data) are the same
functions: :func:`launch` skips the kernel when it is handed fake tensors, so a launcher's allocations say
the output shapes, once, for both.

Custom ops are used rather than ``torch.library.triton_op``: under ``TRITON_INTERPRET=1`` (how the tests run
the kernels on a CPU) a ``@triton.jit`` function is an interpreter object that ``wrap_triton`` cannot
trace, and an opaque op works the same on the interpreter and on a GPU. The cost is that Inductor cannot
fuse into the kernels themselves, which are already fused.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch._subclasses.fake_tensor import is_fake

__all__ = ["define", "launch", "launched"]

NAMESPACE = "cogdsl"


#: Kernels launched in this process so far (``cogdsl bench --launches`` reads the difference).
launched = 0


def launch(kernel: Any, grid: Sequence[int], *args: Any, **meta: Any) -> None:
    """``kernel[grid](*args, **meta)``, unless the tensors are fake (tracing: only the shapes exist)."""
    global launched
    if any(isinstance(a, torch.Tensor) and is_fake(a) for a in args[:1]):
        return
    kernel[tuple(grid)](*args, **meta)
    launched += 1


def _tensor_count(fn: Callable[..., Any]) -> int:
    """How many leading parameters of ``fn`` are tensors (the rest are options: bools, ints)."""
    count = 0
    for parameter in inspect.signature(fn, eval_str=True).parameters.values():
        if parameter.annotation is not torch.Tensor:
            break
        count += 1
    return count


def define(name: str, forward: Callable[..., tuple[torch.Tensor, ...]],
           backward: Callable[..., tuple[torch.Tensor, ...]], *, outputs: int,
           differentiable: Sequence[bool] | None = None,
           materialize: bool = True) -> Callable[..., tuple[torch.Tensor, ...]]:
    """Register ``forward`` and ``backward`` as the custom ops ``cogdsl::name`` and ``cogdsl::name_backward``.

    ``outputs`` is how many leading results of ``forward`` the op returns (the rest are saved for the
    backward, not differentiable); ``differentiable`` marks the tensor inputs that take a gradient
    (default: all), in the order ``backward`` returns them. ``materialize=False`` hands ``backward`` None
    for an output no gradient reached (its kernel then skips that part; its annotation must allow None);
    by default such a gradient is zeros. Returns a function of the inputs and options that gives the
    ``outputs`` results, a tuple; it differentiates through ``backward``.
    """
    tensors = _tensor_count(forward)
    takes_grad = tuple(differentiable) if differentiable is not None else (True,) * tensors
    if len(takes_grad) != tensors:
        raise TypeError(f"{name}: differentiable names {len(takes_grad)} inputs, forward takes {tensors} tensors")
    forward_op = torch.library.custom_op(f"{NAMESPACE}::{name}", forward, mutates_args=())
    backward_op = torch.library.custom_op(f"{NAMESPACE}::{name}_backward", backward, mutates_args=())
    forward_op.register_fake(forward)
    backward_op.register_fake(backward)

    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
        ctx.save_for_backward(*inputs[:tensors], *output)
        ctx.options = inputs[tensors:]
        ctx.mark_non_differentiable(*output[outputs:])
        ctx.set_materialize_grads(False)  # None for an output no gradient reached, made zeros below if asked

    def differentiate(ctx: Any, *d_results: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        saved = ctx.saved_tensors
        results = saved[tensors:]
        d_outputs = [(torch.zeros_like(r) if materialize else None) if d is None else d.contiguous()
                     for r, d in zip(results[:outputs], d_results[:outputs], strict=True)]
        grads = iter(backward_op(*saved, *d_outputs, *ctx.options))
        return (*(next(grads) if takes else None for takes in takes_grad), *(None,) * len(ctx.options))

    forward_op.register_autograd(differentiate, setup_context=setup_context)

    def call(*args: Any) -> tuple[torch.Tensor, ...]:
        return tuple(forward_op(*args)[:outputs])

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"The custom op {NAMESPACE}::{name}: {forward.__doc__ or ''}"
    return call
