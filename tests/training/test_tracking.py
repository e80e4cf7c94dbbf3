"""TensorBoard event files in the run folder: the log's numbers, the evaluations and a picture."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cogdsl.cli.command import main
from tests.tiny import tiny_ntm

ROOT = Path(__file__).resolve().parents[2]


def events(run: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def test_a_run_writes_scalars_evaluations_and_a_picture(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 6, "log_every": 2, "eval_every": 3, "eval_size": 8}))
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run), "--no-progress", "--device", "cpu"]) == 0
    assert list(run.glob("events.out.tfevents.*"))
    found = events(run)
    tags = found.Tags()
    assert {"train/loss", "train/bit_errors", "train/lr", "train/seq_per_sec", "valid/loss", "valid/bit_errors",
            "valid/perfect"} <= set(tags["scalars"])
    assert [e.step for e in found.Scalars("train/loss")] == [2, 3, 4, 6]  # the log's rows (evaluations log too)
    assert [e.step for e in found.Scalars("valid/loss")] == [3, 6]
    logged = [float(row.split(",")[3]) for row in (run / "log.csv").read_text().splitlines()[1:]]
    for event, value in zip(found.Scalars("train/loss"), logged, strict=True):  # the CSV keeps 6 digits
        assert abs(event.value - value) <= 1e-5 * max(1.0, abs(value))
    assert abs(found.Scalars("train/lr")[0].value - 1e-4) < 1e-9  # the spec's rmsprop rate
    assert tags["images"] == ["valid/weightings"]
    pictures = found.Images("valid/weightings")
    assert [p.step for p in pictures] == [3, 6]  # one at each evaluation
    assert pictures[0].width > 200 and pictures[0].height > 100


def test_a_resumed_run_drops_the_events_after_its_checkpoint(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 4, "log_every": 1, "eval_every": 100,
                                    "checkpoint_every": 2}))
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run), "--no-progress", "--device", "cpu"]) == 0
    (run / "checkpoints" / "step_00000004.safetensors").unlink()  # as if the run had died after step 4's log row
    assert main(["train", str(spec), "--out", str(run), "--resume", "--steps", "5", "--no-progress",
                 "--device", "cpu"]) == 0
    steps = [e.step for e in events(run).Scalars("train/loss")]
    assert steps == [1, 2, 3, 4, 5]  # steps 3 and 4 of the first run were purged, not doubled


def test_qa_runs_name_their_errors_an_error_rate_and_no_tensorboard_writes_none(tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(ROOT / "specs" / "memn2n_babi.cog"), "--out", str(run), "--steps", "2",
                 "--no-progress", "--device", "cpu"]) == 0
    tags = events(run).Tags()
    assert "train/error_rate" in tags["scalars"] and "train/questions_per_sec" in tags["scalars"]
    assert tags["images"] == []  # no weightings over time for a QA model (cogdsl trace draws its hops)
    quiet = tmp_path / "quiet"
    assert main(["train", str(ROOT / "specs" / "memn2n_babi.cog"), "--out", str(quiet), "--steps", "1",
                 "--no-progress", "--no-tensorboard", "--device", "cpu"]) == 0
    assert not list(quiet.glob("events.out.tfevents.*"))
