"""``--device auto|cpu|cuda|cuda:N``: the device a run trains or evaluates on.

The device is a choice of the run, never of the spec: the same spec and the same checkpoint
run on a CPU or on any GPU. ``auto`` is the first CUDA device when torch sees one, else the CPU.
"""

from __future__ import annotations

import re

import torch

from cogdsl.errors import UsageError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_CUDA = re.compile(r"^cuda(?::(\d+))?$")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The torch device ``name`` asks for, checked against what this machine has.

    Raises:
        UsageError: an unknown name, CUDA asked for on a machine without it, or a GPU index
            beyond the GPUs torch sees.
    """
    if isinstance(name, torch.device):
        name = str(name)
    text = (name or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = _CUDA.match(text)
    if match is None:
        raise UsageError(f"--device {name}: not a device; use {DEVICE_CHOICES}")
    if not torch.cuda.is_available():
        build = "this torch is a CPU build" if torch.version.cuda is None else "torch sees no CUDA GPU here"
        raise UsageError(f"--device {name}: {build}; use --device cpu (or auto)")
    index = int(match.group(1)) if match.group(1) is not None else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if index >= count:
        raise UsageError(f"--device {name}: this machine has {count} CUDA device{'s' if count != 1 else ''} "
                         f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})")
    return torch.device("cuda", index)


def describe_device(device: torch.device) -> str:
    """``cuda:0 (NVIDIA H200)`` or ``cpu``, for the start of a run."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)
