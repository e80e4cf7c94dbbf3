"""The length curriculum of cogdsl/training/curriculum.py: L_t = min(hi, max(lo, start) + floor(t / every)),
the batches it draws, its checks in the train section, and a training run that follows it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.errors import SpecError, UsageError
from cogdsl.tasks import make_task
from cogdsl.training.curriculum import LengthCurriculum, longest_length
from cogdsl.training.loop import config_from_spec, train

SPEC = """
model counter
input  x: 2
output y: 2 = softmax(ctrl)
mlp    ctrl(hidden=8, activation=sigmoid) <- x, s@prev
stack  s(stacks=2, depth=40, top=2) <- ctrl
train {
  task      anbn(min_n=2, max_n=12)
  optimizer adam(lr=0.01)
  batch 4; steps 12; seed 0; eval_every 6; eval_size 8; log_every 3; checkpoint_every 100
  SETTINGS
}
"""


def _spec(tmp_path: Path, settings: str) -> Path:
    path = tmp_path / "counter.cog"
    path.write_text(SPEC.replace("SETTINGS", settings))
    return path


@pytest.mark.parametrize(("step", "start", "every", "expected"), [
    (0, 3, 10, 3), (9, 3, 10, 3), (10, 3, 10, 4), (75, 3, 10, 10), (1000, 3, 10, 12),
    (0, 0, 5, 2),     # a start below the shortest length starts at the shortest
    (7, 1, 5, 3),     # ... and rises from there: 2 + floor(7 / 5)
    (4, 3, 0, 12),    # every = 0: no curriculum, the full range at once
])
def test_the_longest_length_rises_by_one_every_so_many_steps(step: int, start: int, every: int,
                                                             expected: int) -> None:
    assert longest_length(step, start, every, shortest=2, longest=12) == expected


def test_each_step_draws_lengths_up_to_its_longest_and_reaches_the_full_range() -> None:
    task = make_task("anbn", min_n=2, max_n=12)
    curriculum = LengthCurriculum(task, start=3, every=10)
    generator = torch.Generator().manual_seed(0)
    for step, longest in ((0, 3), (25, 5), (200, 12)):
        drawn = {int(n) for _ in range(30) for n in curriculum.task_at(step).sample(16, generator).info["n"].flatten()}
        assert max(drawn) == longest and min(drawn) >= 2
    assert curriculum.reached_at() == 90
    assert curriculum.task_at(90) is task and curriculum.task_at(89).config["max_n"] == 11
    assert curriculum.task_at(12).config["min_n"] == 2  # the other parameters are kept


def test_a_curriculum_on_a_task_without_lengths_is_refused() -> None:
    with pytest.raises(UsageError, match="no lengths"):
        LengthCurriculum(make_task("digits"), start=3, every=10)


def test_the_train_section_locates_a_start_beyond_the_longest_length(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as error:
        cogdsl.load(_spec(tmp_path, "curriculum_every 2; curriculum_start 13"))
    assert "E603" in str(error.value) and "max_n = 12" in str(error.value) and ":11:23:" in str(error.value)


def test_a_training_run_follows_the_curriculum_and_says_when_it_reaches_the_full_range(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = cogdsl.load(_spec(tmp_path, "curriculum_every 1; curriculum_start 4"))
    config = config_from_spec(spec)
    assert (config.curriculum_every, config.curriculum_start) == (1, 4)
    drawn: list[int] = []
    sample = type(make_task("anbn")).sample

    def spy(self: object, batch: int, generator: torch.Generator, length: int | None = None) -> object:
        out = sample(self, batch, generator, length)
        if length is None:  # training batches; evaluation fixes the length
            drawn.append(int(out.info["n"].max()))
        return out

    monkeypatch.setattr(type(make_task("anbn")), "sample", spy)
    train(spec, config, tmp_path / "run", progress=False)
    assert len(drawn) == 12
    assert all(n <= min(12, 4 + step) for step, n in enumerate(drawn))
    assert max(drawn[:2]) <= 5 < max(drawn)
    assert "step 8: curriculum reached the task's full range (longest length 12)" in capsys.readouterr().out


def test_a_curriculum_over_fixed_lengths_is_refused_with_what_to_lower(tmp_path: Path) -> None:
    path = tmp_path / "fixed.cog"
    path.write_text(SPEC.replace("min_n=2, max_n=12", "min_n=12, max_n=12").replace("SETTINGS", "curriculum_every 5"))
    with pytest.raises(SpecError) as error:
        cogdsl.load(path)
    assert "lengths are fixed (min_n = max_n = 12)" in str(error.value) and "lower min_n" in str(error.value)
