"""Checkpoints: safetensors only, atomic, checked against the spec, clear errors for bad files."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import cogdsl
from cogdsl.cli.command import main
from cogdsl.errors import CheckpointError, UsageError
from cogdsl.training.checkpoints import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_model_state,
    prune_checkpoints,
    restore_generator,
    restore_optimizer,
    save_checkpoint,
    spec_fingerprint,
)
from cogdsl.training.loop import build_optimizer, config_from_spec
from tests.tiny import tiny_ntm


def write_spec(folder: Path, *, hidden: int = 16, name: str = "tiny_copy", optimizer: str = "rmsprop") -> Path:
    path = folder / f"{name}_{hidden}_{optimizer}.yaml"
    settings = {"optimizer": f"{{name: {optimizer}, lr: 1.0e-3}}", "batch": 4, "steps": 2, "threads": 1,
                "log_every": 1, "eval_every": 2, "eval_size": 8, "checkpoint_every": 2}
    path.write_text(tiny_ntm(name, hidden, train=settings), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def one_step(spec_path: Path):
    """A model and optimizer after one training step (so the optimizer has state)."""
    from cogdsl.tasks import make_task, sequence_loss

    spec = cogdsl.load(spec_path)
    config = config_from_spec(spec)
    torch.manual_seed(0)
    model = cogdsl.compile(spec)
    optimizer = build_optimizer(model.parameters(), config)
    generator = torch.Generator().manual_seed(3)
    batch = make_task("copy", bits=4, max_len=3).sample(4, generator)
    sequence_loss(model(batch.inputs, raw=True), batch).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return spec, model, optimizer, generator


@pytest.fixture
def trained_run(tmp_path) -> tuple[Path, Path]:
    spec_path = write_spec(tmp_path)
    run = tmp_path / "run"
    assert main(["train", str(spec_path), "--out", str(run), "--no-progress"]) == 0
    return spec_path, run


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam", "adamw", "sgd"])
def test_round_trip_restores_model_optimizer_and_generator(tmp_path, optimizer):
    spec, model, opt, generator = one_step(write_spec(tmp_path, optimizer=optimizer))
    path = save_checkpoint(tmp_path / "c" / "step_00000001.safetensors", model=model, optimizer=opt,
                           data_generator=generator, meta={"model": spec.name, "step": 1})
    clone = torch.Generator()
    clone.set_state(generator.get_state())
    expected_next = torch.rand(5, generator=clone)

    _, fresh_model, fresh_opt, fresh_generator = one_step(write_spec(tmp_path, optimizer=optimizer))
    with torch.no_grad():
        for p in fresh_model.parameters():
            p.add_(1.0)
    fresh_generator.manual_seed(99)
    checkpoint = load_checkpoint(path)
    assert checkpoint.step == 1 and checkpoint.model_name == "tiny_copy"
    load_model_state(fresh_model, checkpoint, spec.name)
    restore_optimizer(fresh_opt, checkpoint)
    restore_generator(fresh_generator, checkpoint)

    for (name, a), b in zip(model.state_dict().items(), fresh_model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    saved_state, restored_state = opt.state_dict()["state"], fresh_opt.state_dict()["state"]
    assert saved_state.keys() == restored_state.keys()
    for index in saved_state:
        for key, value in saved_state[index].items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, restored_state[index][key]), (index, key)
            else:
                assert value == restored_state[index][key]
    assert torch.equal(torch.rand(5, generator=fresh_generator), expected_next)


def test_checkpoint_is_safetensors_without_pickle(trained_run, monkeypatch, capsys):
    spec_path, run = trained_run
    path = latest_checkpoint(run)
    assert path is not None
    raw = path.read_bytes()
    (header_size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_size])
    assert "model.controllers.ctrl.weight_ih" in header or any(k.startswith("model.") for k in header)
    assert header["__metadata__"]["format"] == "cogdsl-checkpoint-1"
    assert b"\x80\x04" not in raw[:2] and not raw.startswith(b"PK")  # neither a pickle nor a torch zip

    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint was unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    capsys.readouterr()
    assert main(["eval", str(spec_path), str(path), "--sequences", "8"]) == 0
    assert "bit errors per sequence" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["random", "truncated", "empty", "header_only"])
def test_corrupt_checkpoint_is_one_clear_error(trained_run, damage, capsys):
    spec_path, run = trained_run
    good = latest_checkpoint(run)
    assert good is not None
    bad = run / "bad.safetensors"
    if damage == "random":
        bad.write_bytes(os.urandom(4096))
    elif damage == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "empty":
        bad.write_bytes(b"")
    else:
        bad.write_bytes(good.read_bytes()[:20])
    before = bad.read_bytes()
    with pytest.raises(CheckpointError, match="not a cogdsl checkpoint"):
        load_checkpoint(bad)
    capsys.readouterr()
    assert main(["eval", str(spec_path), str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "not a cogdsl checkpoint (corrupt or truncated)" in lines[0]
    assert "Traceback" not in captured.err
    assert bad.read_bytes() == before  # nothing the user had is changed


def test_checkpoint_from_another_spec_names_the_tensor(trained_run, tmp_path, capsys):
    _, run = trained_run
    other = write_spec(tmp_path, hidden=17, name="wider")
    model = cogdsl.compile(cogdsl.load(other))
    with pytest.raises(CheckpointError) as info:
        load_model_state(model, load_checkpoint(run), "wider")
    message = str(info.value)
    assert "different architecture" in message and "'tiny_copy'" in message
    assert "controllers.ctrl" in message and "(64, 13)" in message and "(68, 13)" in message
    capsys.readouterr()
    assert main(["eval", str(other), str(run)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "controllers.ctrl" in err and "Traceback" not in err
    # resuming the run with the other spec is refused before anything is written
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["train", str(other), "--out", str(run), "--resume", "--steps", "4", "--no-progress"]) == 1
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files


def test_safetensors_file_without_model_tensors(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(CheckpointError, match="holds no model tensors"):
        load_checkpoint(path)


def test_missing_checkpoint_and_empty_folder(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        load_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(UsageError, match="no checkpoints"):
        load_checkpoint(tmp_path)


def test_run_folder_means_its_latest_checkpoint(trained_run):
    _, run = trained_run
    latest = latest_checkpoint(run)
    assert latest is not None and latest.name == "step_00000002.safetensors"
    assert load_checkpoint(run).path == latest
    assert load_checkpoint(run / "checkpoints").path == latest


def test_prune_keeps_the_last_three_and_the_final(tmp_path):
    _, model, opt, generator = one_step(write_spec(tmp_path))
    run = tmp_path / "run"
    for step in (100, 200, 300, 400, 500, 550):
        save_checkpoint(run / "checkpoints" / f"step_{step:08d}.safetensors", model=model, optimizer=opt,
                        data_generator=generator, meta={"step": step})
        prune_checkpoints(run, keep=3, every=100)
    assert [p.name for p in list_checkpoints(run)] == [
        "step_00000300.safetensors", "step_00000400.safetensors", "step_00000500.safetensors",
        "step_00000550.safetensors"]
    assert sorted(p.name for p in (run / "checkpoints").glob("*.json")) == [
        "step_00000300.json", "step_00000400.json", "step_00000500.json", "step_00000550.json"]
    assert not list(run.rglob("*.tmp"))


def test_fingerprint_names_the_architecture_not_the_training(tmp_path):
    a = cogdsl.load(write_spec(tmp_path, optimizer="rmsprop"))
    b = cogdsl.load(write_spec(tmp_path, optimizer="adam"))
    c = cogdsl.load(write_spec(tmp_path, hidden=17))
    assert spec_fingerprint(a) == spec_fingerprint(b)
    assert spec_fingerprint(a) != spec_fingerprint(c)
