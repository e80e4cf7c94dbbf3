"""A small copy-task NTM spec for tests that need a real model that trains in seconds, and helpers that
compile a spec written in a test."""

from __future__ import annotations

from pathlib import Path

import torch

import cogdsl

ADDRESS = '"content(cosine) | gate | shift(1) | sharpen"'


def tiny_ntm(name: str = "tiny_copy", hidden: int = 16, read_heads: int = 1, train: dict[str, object] | None = None
             ) -> str:
    """YAML for an LSTM(`hidden`) NTM on a 16x8 memory, copy task with 4 bits and lengths 1-3.

    ``train`` holds the train section's settings after the task (values written as given);
    None leaves the section out.
    """
    heads = f"heads: {read_heads}, " if read_heads != 1 else ""
    text = f"""\
cogdsl: 1
model: {name}
inputs:
  x: 5
outputs:
  y: {{size: 4, from: [ctrl, r], activation: sigmoid}}
blocks:
  ctrl: {{kind: lstm, hidden: {hidden}, from: [x, r@prev]}}
  mem:  {{kind: memory, slots: 16, width: 8}}
  r:    {{kind: read,  memory: mem, by: ctrl, {heads}address: {ADDRESS}}}
  w:    {{kind: write, memory: mem, by: ctrl, address: {ADDRESS}}}
"""
    if train is not None:
        text += "train:\n  task: {name: copy, bits: 4, min_len: 1, max_len: 3}\n"
        text += "".join(f"  {key}: {value}\n" for key, value in train.items())
    return text


def write_spec(tmp_path: Path, text: str, suffix: str = ".cog", name: str = "t") -> Path:
    path = tmp_path / f"{name}{suffix}"
    path.write_text(text)
    return path


def compile_text(tmp_path: Path, text: str, seed: int = 0, double: bool = True) -> cogdsl.CompiledModel:
    """Compile a .cog spec from text with a fixed seed; float64 unless asked otherwise."""
    torch.manual_seed(seed)
    model = cogdsl.compile(cogdsl.load(write_spec(tmp_path, text)))
    return model.double() if double else model


def train_then_trace(tmp_path: Path, spec_path: Path, *trace_args: str, steps: int | None = None) -> Path:
    """Train ``spec_path`` from its train section (``steps`` to override) with ``cogdsl train``, then run
    ``cogdsl trace`` on its checkpoint with ``trace_args``; both must exit 0. Returns the trace folder."""
    from cogdsl.cli.command import main

    more = ["--steps", str(steps)] if steps is not None else []
    assert main(["train", str(spec_path), "--out", str(tmp_path / "run"), "--no-progress", *more]) == 0
    checkpoint = next((tmp_path / "run" / "checkpoints").glob("*.safetensors"))
    assert main(["trace", str(spec_path), str(checkpoint), "--out", str(tmp_path / "trace"), *trace_args]) == 0
    return tmp_path / "trace"
