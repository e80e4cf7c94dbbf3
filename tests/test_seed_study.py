"""examples/seed_study.py: reached, relapses and skipped steps read back from run folders' logs."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDY = runpy.run_path(str(ROOT / "examples" / "seed_study.py"), run_name="seed_study")

HEADER = "step,sequences,seconds,loss,bit_errors,seq_per_sec,eval_loss,eval_bit_errors,skipped_steps\n"


def _run(folder: Path, evaluations: list[tuple[int, float]], skipped: int = 0) -> None:
    folder.mkdir(parents=True)
    rows = [f"{step},{step * 16},{step / 10},1.0,1.0,100,0.5,{errors},{skipped}\n" for step, errors in evaluations]
    (folder / "log.csv").write_text(HEADER + "".join(rows))


def test_a_run_that_learns_then_loses_it_is_a_relapse(tmp_path: Path) -> None:
    _run(tmp_path / "seed0", [(500, 60.0), (1000, 3.0), (1500, 70.0), (2000, 0.5)])
    run = STUDY["read_run"](tmp_path / "seed0", 0)
    assert run.reached(1.0) == 2000
    assert run.relapses(1.0, 10.0) == [1500]


def test_noise_before_learning_is_no_relapse(tmp_path: Path) -> None:
    _run(tmp_path / "seed1", [(500, 60.0), (1000, 40.0), (1500, 65.0), (2000, 0.0)], skipped=2)
    run = STUDY["read_run"](tmp_path / "seed1", 1)
    assert run.relapses(1.0, 10.0) == [] and run.skipped == 2


def test_the_table_counts_each_outcome(tmp_path: Path) -> None:
    _run(tmp_path / "seed0", [(500, 0.5), (1000, 0.0)])
    _run(tmp_path / "seed1", [(500, 2.0), (1000, 30.0)], skipped=1)
    runs = [STUDY["read_run"](tmp_path / f"seed{s}", s) for s in (0, 1)]
    text = STUDY["table"]("spec.yaml", runs, 1.0, 10.0)
    assert "| 0 | yes (500) | 0 | 0.00 (1000) | 0.00 (1000) | 0 |" in text
    assert "| 1 | no | 1 (1000) | 2.00 (500) | 30.00 (1000) | 1 |" in text
    assert text.endswith("1 of 2 seeds reached under 1 bit errors per sequence; 1 relapsed (an evaluation more "
                         "than 10 bits worse than an earlier best); 1 met a non-finite step.")
