"""A run survives its machine: SIGTERM checkpoints and exits, a kill during a save leaves the previous
checkpoint whole, and --resume passes over a damaged newest checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cogdsl.cli.command import main
from cogdsl.training.checkpoints import list_checkpoints, load_checkpoint
from tests.tiny import tiny_ntm

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _wait_for(condition, what: str, process: subprocess.Popen[str] | None = None, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the run ended ({process.returncode}) before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _rows(run: Path) -> list[str]:
    log = run / "log.csv"
    return log.read_text().splitlines()[1:] if log.exists() else []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_checkpoints_and_exits_like_ctrl_c(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 1000000, "log_every": 5, "eval_every": 1000000,
                                    "checkpoint_every": 1000000}))
    run = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "cogdsl", "train", str(spec), "--out", str(run),
                                "--no-progress", "--device", "cpu"], env=ENV, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(lambda: len(_rows(run)) >= 2, "two log rows", process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    assert "SIGTERM: stopping after this step and saving a checkpoint" in err
    assert "stopped by SIGTERM" in out
    assert f"continue with: cogdsl train {spec} --out {run} --resume" in out
    (saved,) = list_checkpoints(run)
    step = load_checkpoint(saved).step
    assert step >= 10 and load_checkpoint(saved).meta["stopped"] == "interrupted"
    assert main(["train", str(spec), "--out", str(run), "--resume", "--steps", str(step + 3), "--no-progress",
                 "--device", "cpu"]) == 0
    assert load_checkpoint(list_checkpoints(run)[-1]).step == step + 3


SLOW_SAVE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import cogdsl.training.checkpoints as checkpoint

    original, marker = checkpoint.save_file, Path(sys.argv[1])
    calls = []

    def slow(tensors, path, metadata=None):
        original(tensors, path, metadata=metadata)  # the temporary file is written ...
        calls.append(path)
        if len(calls) == 2:  # ... and the second save is killed before it is moved into place
            marker.write_text(str(path))
            time.sleep(600)

    checkpoint.save_file = slow
    from cogdsl.cli.command import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_kill_during_a_save_leaves_the_previous_checkpoint_whole(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 8, "log_every": 2, "eval_every": 1000,
                                    "checkpoint_every": 2}))
    run, marker = tmp_path / "run", tmp_path / "saving"
    script = tmp_path / "slow_save.py"
    script.write_text(SLOW_SAVE)
    process = subprocess.Popen([sys.executable, str(script), str(marker), "train", str(spec), "--out", str(run),
                                "--no-progress", "--device", "cpu"], env=ENV, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(marker.exists, "the second save", process)
    process.kill()
    process.communicate(timeout=60)
    folder = run / "checkpoints"
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002.safetensors"]
    assert load_checkpoint(folder / "step_00000002.safetensors").step == 2  # whole
    leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert leftovers and all(name.startswith(".step_00000004.safetensors.") for name in leftovers)
    assert main(["train", str(spec), "--out", str(run), "--resume", "--no-progress", "--device", "cpu"]) == 0
    assert [load_checkpoint(p).step for p in list_checkpoints(run)] == [4, 6, 8]  # the newest 3 are kept
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # the next save removed it


def _four_steps(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny run of 4 steps with checkpoints at 2 and 4: (its spec, its run folder)."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 4, "log_every": 2, "eval_every": 1000,
                                    "checkpoint_every": 2}))
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run), "--no-progress", "--device", "cpu"]) == 0
    return spec, run


def test_resume_passes_over_a_damaged_newest_checkpoint(tmp_path, capsys):
    spec, run = _four_steps(tmp_path)
    newest = run / "checkpoints" / "step_00000004.safetensors"
    whole = newest.read_bytes()
    newest.write_bytes(whole[: len(whole) // 2])  # a copy cut short
    capsys.readouterr()
    assert main(["train", str(spec), "--out", str(run), "--resume", "--steps", "6", "--no-progress",
                 "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "step_00000004.safetensors is damaged" in err and "resumes from step_00000002.safetensors" in err
    assert (run / "checkpoints" / "step_00000004.safetensors.damaged").read_bytes() == whole[: len(whole) // 2]
    assert [load_checkpoint(p).step for p in list_checkpoints(run)] == [2, 4, 6]
    assert [row.split(",")[0] for row in _rows(run)] == ["2", "4", "6"]  # the damaged run's row 4 written again


def test_resume_with_no_whole_checkpoint_is_one_clear_error(tmp_path, capsys):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 2, "checkpoint_every": 2}))
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run), "--no-progress", "--device", "cpu"]) == 0
    (only,) = list_checkpoints(run)
    only.write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert main(["train", str(spec), "--out", str(run), "--resume", "--steps", "4", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no older checkpoint" in err and err.count("\n") == 1
    assert only.read_bytes() == b"not a checkpoint"  # nothing the user had is touched


def test_auto_resume_starts_a_run_then_continues_it(tmp_path, capsys):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 2, "checkpoint_every": 2}))
    run = tmp_path / "run"
    command = ["train", str(spec), "--out", str(run), "--auto-resume", "--no-progress", "--device", "cpu"]
    assert main(command) == 0  # nothing there: a new run
    assert main([*command, "--steps", "4"]) == 0  # a checkpoint there: continued
    assert [load_checkpoint(p).step for p in list_checkpoints(run)] == [2, 4]
    assert main([*command, "--force"]) == 1
    assert "--auto-resume decides for itself" in capsys.readouterr().err


def test_several_processes_do_not_stop_at_once_on_a_second_signal():
    """Under torchrun a cluster's SIGTERM and torchrun's forwarded one arrive together: noted, not escalated."""
    from cogdsl.training.signals import StopOnSignal

    with StopOnSignal(escalate=False) as stop:
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)  # would raise KeyboardInterrupt in a single process
        assert stop.requested and stop.signal_name == "SIGTERM"
    with pytest.raises(KeyboardInterrupt), StopOnSignal() as alone:
        signal.raise_signal(signal.SIGINT)
        assert alone.requested
        signal.raise_signal(signal.SIGINT)


def test_changed_bytes_in_a_checkpoint_are_noticed_and_resume_passes_over_them(tmp_path, capsys):
    from cogdsl.errors import CheckpointError

    spec, run = _four_steps(tmp_path)
    newest = run / "checkpoints" / "step_00000004.safetensors"
    data = bytearray(newest.read_bytes())
    data[-200:-100] = bytes(100)  # tensor bytes overwritten; the header and the length are intact
    newest.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged: its tensors do not match the checksum"):
        load_checkpoint(newest)
    capsys.readouterr()
    assert main(["train", str(spec), "--out", str(run), "--resume", "--steps", "6", "--no-progress",
                 "--device", "cpu"]) == 0
    assert "resumes from step_00000002.safetensors" in capsys.readouterr().err


def test_auto_resume_restarts_a_run_killed_before_its_first_checkpoint(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 2, "checkpoint_every": 2}))
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("step,sequences,seconds,loss,bit_errors,seq_per_sec,eval_loss,eval_bit_errors\n")
    assert main(["train", str(spec), "--out", str(run), "--auto-resume", "--no-progress", "--device", "cpu"]) == 0
    assert [load_checkpoint(p).step for p in list_checkpoints(run)] == [2]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("not a run")
    assert main(["train", str(spec), "--out", str(mine), "--auto-resume", "--no-progress"]) == 1
    assert (mine / "notes.txt").read_text() == "not a run"  # a folder that is not a run is never replaced
