"""Many processes, one run: ``torchrun ... -m cogdsl train SPEC`` with DistributedDataParallel.

torchrun starts one process per GPU (or per CPU slot) and tells each its ``RANK``, ``LOCAL_RANK``
and ``WORLD_SIZE`` in the environment; :func:`start` reads them and joins the process group
(NCCL between GPUs, gloo between CPU processes). Then, in :func:`cogdsl.training.loop.train`:

- the model is wrapped in :class:`torch.nn.parallel.DistributedDataParallel`, which averages the
  gradients of all processes in the backward pass, so every process takes the same optimizer step;
- the spec's ``batch`` is the *global* batch: process r draws :func:`local_batch` of it from its
  own data stream (:func:`cogdsl.training.streams.rank_seed`), and its loss is weighted by its
  share, so the averaged gradient is the gradient of the mean over the global batch even when the
  batch does not divide evenly;
- rank 0 alone writes the run folder (log, curve, TensorBoard, checkpoints) and evaluates; the
  training loss it logs is summed over every process; the decisions that must be the same
  everywhere (stop now, linear start ends) are agreed on at the steps that log;
- a checkpoint holds every process's data-stream state, so ``--resume`` with the same number of
  processes continues each stream; with another number, the streams start afresh from the seed and
  the step (and the run says so).

Nothing here runs when ``WORLD_SIZE`` is unset or 1: a single process is an ordinary run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from cogdsl.errors import UsageError


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run: ``rank`` of ``world`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = Distributed()


def _env_int(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None or text.strip() == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"the environment variable {name}={text!r} is not a number (torchrun sets it)") from None


def from_environment() -> Distributed:
    """The run as torchrun describes it in the environment (one process when it does not)."""
    world = _env_int("WORLD_SIZE") or 1
    if world <= 1:
        return SINGLE
    rank, local = _env_int("RANK"), _env_int("LOCAL_RANK")
    if rank is None or not 0 <= rank < world:
        raise UsageError(f"WORLD_SIZE={world} but RANK is {os.environ.get('RANK')!r}; start the processes with "
                         "torchrun, which sets both")
    return Distributed(rank=rank, world=world, local_rank=local if local is not None else rank)


def start(device: str) -> tuple[Distributed, torch.device]:
    """Join the process group if torchrun started this process; the device this process trains on.

    ``device`` is the run's ``--device``: under torchrun ``auto`` and ``cuda`` give each process the
    GPU of its local rank; ``cpu`` runs every process on the CPU (gloo).

    Raises:
        UsageError: a fixed GPU (``cuda:N``) with several processes, CUDA asked for where there is none,
            fewer GPUs than processes on this machine, or a process group that cannot start.
    """
    from cogdsl.training.devices import resolve_device

    place = from_environment()
    if not place.active:
        return place, resolve_device(device)
    import torch.distributed as dist

    text = (device or "auto").strip().lower()
    if text.startswith("cuda:"):
        raise UsageError(f"--device {device}: under torchrun each process takes the GPU of its local rank; "
                         "use --device cuda (or auto), and CUDA_VISIBLE_DEVICES to choose the GPUs")
    chosen = resolve_device(text if text in ("cpu", "auto", "cuda") else device)
    if chosen.type == "cuda":
        count = torch.cuda.device_count()
        if place.local_rank >= count:
            raise UsageError(f"process {place.rank} has local rank {place.local_rank} but this machine has {count} "
                             f"GPU(s); start at most {count} processes per machine (--nproc-per-node {count})")
        chosen = torch.device("cuda", place.local_rank)
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        try:
            dist.init_process_group(backend=backend, **({"device_id": chosen} if chosen.type == "cuda" else {}))
        except (RuntimeError, ValueError) as err:
            raise UsageError(f"cannot join the torchrun process group ({backend}): {err}") from None
    return place, chosen


def barrier(place: Distributed) -> None:
    """Wait until every process is here."""
    if place.active:
        import torch.distributed as dist

        dist.barrier()


def stop(place: Distributed, clean: bool = True) -> None:
    """Leave the process group: after a barrier when the run ended normally (so no process leaves while
    another still needs it), at once when it failed (the others are stopped by torchrun)."""
    if not place.active:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        try:
            if clean:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def local_batch(batch: int, place: Distributed) -> int:
    """This process's share of the global ``batch``: ``batch // world``, one more for the first
    ``batch % world`` ranks. Raises UsageError when a process would get no sequence at all."""
    if batch < place.world:
        raise UsageError(f"batch {batch} is smaller than the {place.world} processes; each needs at least one "
                         f"sequence: raise batch to at least {place.world}")
    return batch // place.world + (1 if place.rank < batch % place.world else 0)


def sum_over_processes(values: torch.Tensor, place: Distributed) -> torch.Tensor:
    """``values`` summed over every process (itself with one process)."""
    if not place.active:
        return values
    import torch.distributed as dist

    total = values.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


def any_process(flags: list[bool], place: Distributed, device: torch.device) -> list[bool]:
    """For each flag, whether it is set in any process (the flags themselves with one process)."""
    if not place.active:
        return flags
    total = sum_over_processes(torch.tensor([float(f) for f in flags], device=device), place)
    return [bool(v > 0) for v in total.tolist()]


def from_main(value: Any, place: Distributed) -> Any:
    """Rank 0's ``value``, in every process."""
    if not place.active:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_to_main(value: Any, place: Distributed) -> list[Any] | None:
    """Every process's ``value`` by rank, on rank 0 (None elsewhere); ``[value]`` with one process."""
    if not place.active:
        return [value]
    import torch.distributed as dist

    out: list[Any] | None = [None] * place.world if place.is_main else None
    dist.gather_object(value, out, dst=0)
    return out
