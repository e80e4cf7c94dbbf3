"""torchrun with 2 processes (gloo, on the CPU) trains like one process with the same global batch.

The reference is computed here, in one process, from the same pieces the loop uses: the same
initial parameters (the seed), each rank's own data stream (its rank seed and its share of the
global batch), the mean over the global batch as the loss, clipping and the optimizer step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.compiler.pipeline import parse_text
from cogdsl.tasks import make_task
from cogdsl.training.checkpoints import load_checkpoint
from cogdsl.training.distributed import Distributed, local_batch
from cogdsl.training.loop import apply_gradients, build_optimizer, config_from_spec
from cogdsl.training.streams import rank_seed
from tests.tiny import tiny_ntm

ROOT = Path(__file__).resolve().parents[2]
#: The tests that read the torchrun fixture run on one xdist worker, so that it trains once, not once per worker.
TORCHRUN = pytest.mark.xdist_group("torchrun")
SETTINGS = {"batch": 7, "steps": 2, "log_every": 1, "eval_every": 2, "eval_size": 4, "checkpoint_every": 1}


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc-per-node 2 -m cogdsl ARGS`` (torch.distributed.run is torchrun)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "cogdsl", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def reference(text: str, steps: int, world: int = 2) -> dict[str, torch.Tensor]:
    """The parameters after ``steps`` steps of one process that averages the ranks' gradients itself."""
    spec = parse_text(text, "tiny.yaml", "yaml")
    config = config_from_spec(spec)
    torch.manual_seed(config.seed)
    model = cogdsl.compile(spec)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(parameters, config)
    task = make_task(config.task, **config.task_params)
    shares = [local_batch(config.batch, Distributed(rank, world)) for rank in range(world)]
    streams = [torch.Generator().manual_seed(rank_seed(config.seed, rank)) for rank in range(world)]
    for _ in range(steps):
        total = torch.zeros(())
        for share, stream in zip(shares, streams, strict=True):
            batch = task.sample(share, stream)
            # Each process's mean loss weighted by its share: their average is the global batch's mean.
            total = total + task.loss_of(model(batch.inputs, raw=True), batch) * share * world / config.batch / world
        total.backward()
        apply_gradients(parameters, optimizer, config)
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("ddp")
    text = tiny_ntm(train=SETTINGS)
    (folder / "tiny.yaml").write_text(text)
    done = torchrun("train", "tiny.yaml", "--out", "run", "--no-progress", "--device", "cpu", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    return folder, text, done


@TORCHRUN
def test_two_processes_take_the_steps_of_one_with_the_global_batch(run):
    folder, text, _ = run
    for step in (1, 2):
        saved = load_checkpoint(folder / "run" / "checkpoints" / f"step_{step:08d}.safetensors").model_state()
        expected = reference(text, step)
        assert saved.keys() == expected.keys()
        for name, value in expected.items():
            torch.testing.assert_close(saved[name], value, rtol=1e-5, atol=1e-6, msg=f"{name} after step {step}")
    # The run would differ from the reference had the processes drawn the same data.
    alone = reference(text, 1, world=1)
    first = load_checkpoint(folder / "run" / "checkpoints" / "step_00000001.safetensors").model_state()
    assert any(not torch.allclose(first[name], alone[name]) for name in alone)


@TORCHRUN
def test_rank_zero_alone_writes_the_run_folder_and_logs_the_global_batch(run):
    folder, _, done = run
    rows = (folder / "run" / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,sequences,")
    assert [row.split(",")[:2] for row in rows[1:]] == [["1", "7"], ["2", "14"]]  # 7 sequences a step, all ranks
    assert done.stdout.count("tiny_copy: step 2 of 2") == 1 and "in 2 processes" in done.stdout
    meta = load_checkpoint(folder / "run" / "checkpoints" / "step_00000002.safetensors")
    assert meta.meta["processes"] == 2
    assert sorted(name for name in meta.tensors if name.startswith("stream.")) == ["stream.0.data", "stream.1.data"]


@TORCHRUN
def test_a_resumed_run_continues_every_process_stream(run):
    folder, text, _ = run
    done = torchrun("train", "tiny.yaml", "--out", "run", "--resume", "--steps", "3", "--no-progress",
                    "--device", "cpu", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fresh stream" not in done.stderr
    saved = load_checkpoint(folder / "run" / "checkpoints" / "step_00000003.safetensors").model_state()
    expected = reference(text.replace("steps: 2", "steps: 3"), 3)
    for name, value in expected.items():
        torch.testing.assert_close(saved[name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_a_fixed_gpu_with_several_processes_is_refused(monkeypatch):
    from cogdsl.errors import UsageError
    from cogdsl.training import distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(UsageError, match="each process takes the GPU of its local rank"):
        distributed.start("cuda:0")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="use --device cpu"):
            distributed.start("cuda")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(UsageError, match="start the processes with torchrun"):
        distributed.start("cpu")


def test_local_batches_share_the_global_batch():
    assert [local_batch(7, Distributed(rank, 2)) for rank in range(2)] == [4, 3]
    assert sum(local_batch(10, Distributed(rank, 4)) for rank in range(4)) == 10
    from cogdsl.errors import UsageError

    with pytest.raises(UsageError, match="raise batch to at least 4"):
        local_batch(3, Distributed(0, 4))
