"""--device: resolved and refused clearly; batches made on the device; checkpoints load on any device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cogdsl.cli.command import main
from cogdsl.errors import UsageError
from cogdsl.tasks import TASKS, make_task
from cogdsl.training.devices import resolve_device
from cogdsl.training.streams import TaskStream
from tests.test_no_host_sync import conversions_raise
from tests.tiny import tiny_ntm

CUDA = torch.cuda.is_available()
ON_DEVICE = sorted(name for name, cls in TASKS.items() if cls.samples_on_device)


def test_auto_is_cuda_when_there_is_one_else_the_cpu():
    assert resolve_device("auto").type == ("cuda" if CUDA else "cpu")
    assert resolve_device(None).type == ("cuda" if CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cuda:-1", "tpu", "cuda0"])
def test_a_name_that_is_not_a_device_is_refused(name):
    with pytest.raises(UsageError, match="not a device; use auto, cpu, cuda or cuda:N"):
        resolve_device(name)


@pytest.mark.skipif(CUDA, reason="checks the message of a machine without CUDA")
def test_cuda_on_a_machine_without_it_says_so(tmp_path, capsys):
    with pytest.raises(UsageError, match="use --device cpu"):
        resolve_device("cuda")
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 2}))
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--device", "cuda:0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cogdsl train: error: --device cuda:0: ") and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing written


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_a_gpu_index_beyond_the_machine_is_refused():
    with pytest.raises(UsageError, match="this machine has"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


@pytest.mark.parametrize("name", ON_DEVICE)
def test_tasks_that_sample_on_the_device_read_no_tensor_back(name, monkeypatch):
    """What lets a GPU draw their batches without the host waiting: no tensor read into Python."""
    task = make_task(name)
    length = task.draw_length(torch.Generator().manual_seed(0)) if task.length_params is not None else None
    generator = torch.Generator().manual_seed(1)
    with conversions_raise(monkeypatch) as calls:
        batch = task.sample(3, generator, length=length)
    assert calls == []
    assert batch.mask.shape[0] == 3


def test_a_cpu_stream_draws_what_the_generator_alone_draws():
    """On the CPU the stream is the task and one generator seeded with the seed, as before devices."""
    task = make_task("copy", bits=4, min_len=1, max_len=5)
    stream = TaskStream(task, torch.device("cpu"), seed=3)
    alone = torch.Generator().manual_seed(3)
    for _ in range(3):
        ours, theirs = stream.next(task, 4), task.sample(4, alone)
        assert torch.equal(ours.inputs, theirs.inputs) and torch.equal(ours.targets, theirs.targets)
    state = stream.state()
    again = TaskStream(task, torch.device("cpu"), seed=99)
    again.restore(state)
    assert torch.equal(again.next(task, 4).inputs, stream.next(task, 4).inputs)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_a_gpu_stream_draws_on_the_gpu_with_lengths_from_the_host():
    task = make_task("copy", bits=4, min_len=1, max_len=5)
    stream = TaskStream(task, torch.device("cuda"), seed=3)
    assert stream.on_device and stream.lengths is not None and stream.lengths.device.type == "cpu"
    batch = stream.next(task, 4)
    assert batch.inputs.device.type == "cuda" and batch.mask.device.type == "cuda"
    graphs = make_task("graph_traversal")  # a task drawn in Python: on the host, then copied
    host = TaskStream(graphs, torch.device("cuda"), seed=3)
    assert not host.on_device and host.next(graphs, 2).mask.is_cuda


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize(("trained_on", "evaluated_on"), [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_checkpoint_evaluates_on_another_device(trained_on, evaluated_on, tmp_path: Path, capsys):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 4, "steps": 3}))
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run), "--no-progress", "--device", trained_on]) == 0
    capsys.readouterr()
    assert main(["eval", str(spec), str(run), "--sequences", "16", "--device", evaluated_on]) == 0
    theirs = capsys.readouterr().out
    assert main(["eval", str(spec), str(run), "--sequences", "16", "--device", trained_on]) == 0
    ours = capsys.readouterr().out
    assert theirs.split(", loss")[0] == ours.split(", loss")[0]  # the same errors on either device
