"""Checkpoints as safetensors files: plain tensors and a JSON header, never pickle.

A run folder's ``checkpoints/`` holds, for every saved step::

    step_00001000.safetensors   model.*  the model's parameters and buffers (state_dict names)
                                optim.*  the optimizer's per-parameter state, flattened:
                                         optim.<param index>.<key> (e.g. optim.3.square_avg)
                                stream.<rank>.<key>  each process's training-data stream
                                           (cogdsl.training.streams: key "data", the
                                           generator, and "lengths" on a GPU), uint8
                                rng.data   the first stream's generator again (older readers)
                                rng.torch  torch's global generator state (uint8)
                                header metadata "cogdsl": the JSON below, and "sha256":
                                           a checksum of every tensor, checked on reading
    step_00001000.json          the same JSON, for people: step, sequences seen, seed, the
                                resolved config, library versions, the spec fingerprint and
                                the resolved spec as YAML text

Everything that is not a tensor (optimizer hyper-parameters, a ``None`` momentum buffer,
the partial log window, a vocabulary read from data files under ``task_state``) goes in the
JSON. Files are written to a temporary name in the same folder, flushed to the disk
(``fsync``) and moved into place with ``os.replace``, so a kill or a crash during a save
leaves the previous checkpoint whole and at worst a ``.step_*.tmp`` file, which is ignored
and removed by the next save. :func:`load_resumable` skips a damaged newest checkpoint (a
disk that filled up, a copy cut short) for the newest whole one, and says so.

``cogdsl.save(model, path)`` writes the same format from Python (model tensors and the JSON:
model name, spec fingerprint, the spec as YAML), which ``cogdsl eval``, ``trace`` and
``predict`` read like any other checkpoint; docs/checkpoints.md describes the format.

Reading never unpickles: tensors come from :func:`safetensors.safe_open`, metadata from
its JSON header.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from cogdsl.errors import CheckpointError, UsageError
from cogdsl.language.spec import Spec

FORMAT = "cogdsl-checkpoint-1"
MODEL_PREFIX = "model."
OPTIM_PREFIX = "optim."
RNG_DATA = "rng.data"
RNG_TORCH = "rng.torch"
STREAM_PREFIX = "stream."
CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step_(\d{8,})\.safetensors$")


@dataclass
class Checkpoint:
    """A checkpoint read from disk: its tensors by name and its metadata (the JSON)."""

    path: Path
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.meta.get("step", 0))

    @property
    def model_name(self) -> str | None:
        name = self.meta.get("model")
        return str(name) if name is not None else None

    def model_state(self) -> dict[str, torch.Tensor]:
        """The model's tensors, names without the ``model.`` prefix."""
        n = len(MODEL_PREFIX)
        return {k[n:]: v for k, v in self.tensors.items() if k.startswith(MODEL_PREFIX)}


# -- identities ----------------------------------------------------------------------------


def spec_fingerprint(spec: Spec) -> str:
    """sha256 of the spec's YAML without its ``train:`` section: it names the architecture."""
    from cogdsl.language.emit import to_yaml

    text = to_yaml(dataclasses.replace(spec, train=None))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def library_versions() -> dict[str, str]:
    """The versions a checkpoint records: cogdsl, torch, python, safetensors."""
    import safetensors

    import cogdsl

    return {
        "cogdsl": cogdsl.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "safetensors": getattr(safetensors, "__version__", "unknown"),
    }


# -- paths -----------------------------------------------------------------------------------


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}.safetensors"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """The checkpoints of a run folder, oldest step first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name)) and p.is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint of a run folder, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A .safetensors file as given, or a run folder's latest checkpoint; UsageError if there is none."""
    path = Path(path)
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            inner = list_checkpoints(path.parent) if path.name == CHECKPOINT_DIR else []
            if inner:
                return inner[-1]
            raise UsageError(f"{path}: no checkpoints in this folder (expected {CHECKPOINT_DIR}/step_*.safetensors)")
        return latest
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    return path


# -- writing --------------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temporary(path: Path) -> str:
    """A fresh temporary file beside ``path``, with the permissions a plain ``open`` would give."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    return tmp


def _fsync_file(path: str | Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, flushed to the disk, and
    ``os.replace``: a reader sees the old file or the new one, never part of one."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 of every tensor's name, dtype, shape and bytes, in name order: written with a checkpoint and
    checked when it is read, so bytes changed after the save (a bad disk, a copy gone wrong) are noticed."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The optimizer's state dict split into tensors (``optim.<index>.<key>``) and JSON for the rest."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    extra: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{OPTIM_PREFIX}{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                extra.setdefault(str(index), {})[key] = _json_safe(value)
    return tensors, {"param_groups": _json_safe(state["param_groups"]), "state_extra": extra}


def save_checkpoint(path: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    data_generator: torch.Generator | None = None, meta: dict[str, Any],
                    streams: list[dict[str, torch.Tensor]] | None = None) -> Path:
    """Write a checkpoint (and its .json beside it) atomically; returns the .safetensors path.

    ``meta`` must be JSON-serialisable; the optimizer's non-tensor state is added under
    ``meta["optimizer"]``. ``streams`` are the data streams' states by process rank
    (:meth:`cogdsl.training.streams.Stream.state`); ``data_generator`` is the one stream of a
    run that has only a generator.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {MODEL_PREFIX + k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    meta = dict(meta)
    meta.setdefault("format", FORMAT)
    if optimizer is not None:
        optim, optim_meta = optimizer_tensors(optimizer)
        tensors.update({k: v.clone() for k, v in optim.items()})
        meta["optimizer"] = {**meta.get("optimizer", {}), **optim_meta}
    if streams is None and data_generator is not None:
        streams = [{"data": data_generator.get_state()}]
    for rank, state in enumerate(streams or ()):
        for key, tensor in state.items():
            tensors[f"{STREAM_PREFIX}{rank}.{key}"] = tensor.detach().cpu().contiguous().clone()
    if streams and "data" in streams[0]:
        tensors[RNG_DATA] = streams[0]["data"].detach().cpu().clone()
    tensors[RNG_TORCH] = torch.get_rng_state().clone()
    text = json.dumps(_json_safe(meta), indent=2, sort_keys=False)
    for stale in path.parent.glob(".*.tmp"):  # left by a save that was killed (one writer per run folder)
        stale.unlink(missing_ok=True)
    tmp = _temporary(path)
    try:
        save_file(tensors, tmp, metadata={"format": FORMAT, "cogdsl": text, "sha256": tensor_digest(tensors)})
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    atomic_write_text(path.with_suffix(".json"), text + "\n")
    return path


def prune_checkpoints(run_dir: str | Path, keep: int = 3, every: int | None = None) -> list[Path]:
    """Delete old checkpoints: keep the newest ``keep`` periodic ones (step % every == 0) and the newest of all.

    Returns the deleted paths.
    """
    found = list_checkpoints(run_dir)
    if not found:
        return []

    def step_of(p: Path) -> int:
        match = _NAME.match(p.name)
        assert match is not None
        return int(match.group(1))

    periodic = [p for p in found if every is None or step_of(p) % every == 0]
    kept = set(periodic[-keep:]) | {found[-1]}
    deleted = []
    for p in found:
        if p not in kept:
            p.unlink(missing_ok=True)
            p.with_suffix(".json").unlink(missing_ok=True)
            deleted.append(p)
    return deleted


# -- reading ----------------------------------------------------------------------------------


def _refuse_pickle(path: Path) -> None:
    """A ``torch.save`` file (a zip archive or a raw pickle) gets its own message: it is refused because
    unpickling runs code, and the message says how to write a checkpoint cogdsl reads."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError:
        return  # reported by the reader below
    if head[8:9] == b"{":
        return  # a safetensors file: 8 bytes of header length, then the JSON header
    if head.startswith(b"PK\x03\x04") or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
        raise CheckpointError(f"{path}: this looks like a torch.save (pickle) file; cogdsl reads only safetensors "
                              "checkpoints, which cannot run code when loaded: save the model with "
                              "cogdsl.save(model, path)")


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint (a .safetensors file, or a run folder: its latest) without unpickling anything.

    Raises:
        UsageError: no such file, or a folder with no checkpoints.
        CheckpointError: the file is not a valid safetensors file (corrupt, truncated) or
            holds no model tensors.
    """
    path = resolve_checkpoint_path(path)
    _refuse_pickle(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (OSError, MemoryError) as err:
        raise CheckpointError(f"{path}: cannot read the checkpoint: {err}") from None
    except Exception as err:  # safetensors raises its own error types (and ValueError) for bad bytes
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: not a cogdsl checkpoint (corrupt or truncated): {reason}") from None
    if "sha256" in header and header["sha256"] != tensor_digest(tensors):
        raise CheckpointError(f"{path}: damaged: its tensors do not match the checksum written with them (the file "
                              "changed after it was saved)")
    meta: dict[str, Any] = {}
    if "cogdsl" in header:
        try:
            meta = json.loads(header["cogdsl"])
        except json.JSONDecodeError as err:
            raise CheckpointError(f"{path}: not a cogdsl checkpoint (corrupt metadata): {err}") from None
    else:
        sidecar = path.with_suffix(".json")
        if sidecar.is_file():
            try:
                meta = json.loads(sidecar.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                meta = {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: not a cogdsl checkpoint (its metadata is not a JSON object)")
    if not any(name.startswith(MODEL_PREFIX) for name in tensors):
        raise CheckpointError(f"{path}: not a cogdsl checkpoint: it holds no model tensors ('{MODEL_PREFIX}*')")
    return Checkpoint(path, tensors, meta)


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """Only the JSON metadata of a checkpoint (read from its header; cheap). Errors as :func:`load_checkpoint`."""
    path = resolve_checkpoint_path(path)
    _refuse_pickle(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            header = handle.metadata() or {}
    except (OSError, MemoryError) as err:
        raise CheckpointError(f"{path}: cannot read the checkpoint: {err}") from None
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: not a cogdsl checkpoint (corrupt or truncated): {reason}") from None
    try:
        meta = json.loads(header.get("cogdsl", "{}"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not a cogdsl checkpoint (corrupt metadata): {err}") from None
    return meta if isinstance(meta, dict) else {}


def _shape(t: torch.Tensor | tuple[int, ...]) -> str:
    dims = tuple(t.shape) if isinstance(t, torch.Tensor) else tuple(t)
    return "(" + ", ".join(str(d) for d in dims) + (",)" if len(dims) == 1 else ")")


def _first_difference(saved: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> str | None:
    for name, tensor in expected.items():
        if name not in saved:
            return f"tensor '{name}' {_shape(tensor)} of this spec is missing from the checkpoint"
        if tuple(saved[name].shape) != tuple(tensor.shape):
            return (f"tensor '{name}' has shape {_shape(saved[name])} in the checkpoint "
                    f"vs {_shape(tensor)} in this spec")
    for name, tensor in saved.items():
        if name not in expected:
            return f"the checkpoint has tensor '{name}' {_shape(tensor)} that this spec does not"
    return None


def load_model_state(model: torch.nn.Module, checkpoint: Checkpoint, spec_name: str | None = None) -> None:
    """Copy the checkpoint's model tensors into ``model``, checking every name and shape first.

    Raises:
        CheckpointError: names or shapes differ; the message names the spec the checkpoint
            was trained on and the first tensor that differs.
    """
    saved = checkpoint.model_state()
    expected = model.state_dict()
    difference = _first_difference(saved, expected)
    if difference is not None:
        source = f" (spec '{checkpoint.model_name}')" if checkpoint.model_name else ""
        if spec_name:
            difference = difference.replace("this spec", f"spec '{spec_name}'")
        raise CheckpointError(f"{checkpoint.path}: checkpoint was trained on a different architecture{source}: "
                              f"{difference}")
    for name, tensor in saved.items():
        if tensor.dtype != expected[name].dtype:
            raise CheckpointError(f"{checkpoint.path}: tensor '{name}' is {tensor.dtype} in the checkpoint "
                                  f"vs {expected[name].dtype} in this model")
    model.load_state_dict(saved, strict=True)


def restore_optimizer(optimizer: torch.optim.Optimizer, checkpoint: Checkpoint) -> None:
    """Load the optimizer's per-parameter state; its hyper-parameters stay those it was built with."""
    current = optimizer.state_dict()
    extra: dict[str, dict[str, Any]] = checkpoint.meta.get("optimizer", {}).get("state_extra", {})
    n = len(OPTIM_PREFIX)
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in checkpoint.tensors.items():
        if not name.startswith(OPTIM_PREFIX):
            continue
        index, _, key = name[n:].partition(".")
        state.setdefault(int(index), {})[key] = tensor
    for index, entries in extra.items():
        state.setdefault(int(index), {}).update(entries)
    known = {i for group in current["param_groups"] for i in group["params"]}
    unknown = sorted(set(state) - known)
    if unknown:
        raise CheckpointError(f"{checkpoint.path}: optimizer state for parameter {unknown[0]}, "
                              f"but this model's optimizer has {len(known)} parameters")
    try:
        optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})
    except (ValueError, KeyError, RuntimeError) as err:
        raise CheckpointError(f"{checkpoint.path}: optimizer state does not fit this optimizer: {err}") from None


def stream_states(checkpoint: Checkpoint) -> list[dict[str, torch.Tensor]]:
    """The data streams' states by process rank (older checkpoints: ``rng.data`` as rank 0's ``data``)."""
    states: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in checkpoint.tensors.items():
        if name.startswith(STREAM_PREFIX):
            rank, _, key = name[len(STREAM_PREFIX):].partition(".")
            if rank.isdigit() and key:
                states.setdefault(int(rank), {})[key] = tensor
    if not states and RNG_DATA in checkpoint.tensors:
        states[0] = {"data": checkpoint.tensors[RNG_DATA]}
    if sorted(states) != list(range(len(states))):
        raise CheckpointError(f"{checkpoint.path}: data streams for processes {sorted(states)}; expected 0 to "
                              f"{len(states) - 1}")
    return [states[rank] for rank in range(len(states))]


def restore_torch_rng(checkpoint: Checkpoint) -> None:
    """Put torch's global generator back where it was (what dropout and sampling blocks draw from)."""
    if RNG_TORCH in checkpoint.tensors:
        try:
            torch.set_rng_state(checkpoint.tensors[RNG_TORCH].to(torch.uint8))
        except RuntimeError as err:
            raise CheckpointError(f"{checkpoint.path}: bad torch generator state: {err}") from None


def load_resumable(run_dir: str | Path) -> tuple[Checkpoint, list[tuple[Path, str]]]:
    """The newest checkpoint of a run folder that reads whole, and each newer one that did not, with why.

    Raises:
        UsageError: the folder has no checkpoint.
        CheckpointError: no checkpoint in it reads whole (the newest one's problem is reported).
    """
    found = list_checkpoints(run_dir)
    if not found:
        raise UsageError(f"{run_dir}: no checkpoints in this folder (expected {CHECKPOINT_DIR}/step_*.safetensors)")
    damaged: list[tuple[Path, str]] = []
    for path in reversed(found):
        try:
            return load_checkpoint(path), damaged
        except CheckpointError as err:
            damaged.append((path, str(err).removeprefix(f"{path}: ")))
    newest, reason = damaged[0]
    raise CheckpointError(f"{newest}: {reason}; and no older checkpoint in {Path(run_dir) / CHECKPOINT_DIR} reads "
                          "whole either")


def set_aside(path: Path) -> Path:
    """Rename a damaged checkpoint (and its .json) to ``*.damaged`` so that no later save or resume takes it
    for a whole one; nothing is deleted. Returns the new name."""
    target = path.with_name(path.name + ".damaged")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.damaged{counter}")
        counter += 1
    os.replace(path, target)
    sidecar = path.with_suffix(".json")
    if sidecar.exists():
        os.replace(sidecar, target.with_name(target.name.replace(".safetensors", ".json")))
    return target


def restore_generator(generator: torch.Generator, checkpoint: Checkpoint) -> None:
    """Put the training-data generator back where it was; also torch's global generator."""
    if RNG_DATA in checkpoint.tensors:
        try:
            generator.set_state(checkpoint.tensors[RNG_DATA].to(torch.uint8))
        except RuntimeError as err:
            raise CheckpointError(f"{checkpoint.path}: bad data-generator state: {err}") from None
    if RNG_TORCH in checkpoint.tensors:
        try:
            torch.set_rng_state(checkpoint.tensors[RNG_TORCH].to(torch.uint8))
        except RuntimeError as err:
            raise CheckpointError(f"{checkpoint.path}: bad torch generator state: {err}") from None


def checkpoint_steps(paths: Iterable[Path]) -> list[int]:
    """The step of each checkpoint path (by its name)."""
    steps = []
    for p in paths:
        match = _NAME.match(p.name)
        if match:
            steps.append(int(match.group(1)))
    return steps
