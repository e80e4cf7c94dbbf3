"""keep_best: checkpoints/best.safetensors holds the weights of the evaluation with the lowest
validation loss, that choice survives a resumed run, and nothing is kept without the setting."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import cogdsl
from cogdsl.tasks import make_task
from cogdsl.training.checkpoints import load_checkpoint, load_model_state, read_checkpoint_meta
from cogdsl.training.loop import EVAL_SEED, config_from_spec, evaluate, train

SPEC = """
model counter
input  x: 2
output y: 2 = softmax(ctrl)
rnn    ctrl(hidden=8) <- x, s@prev
stack  s(stacks=2, depth=30, top=2) <- ctrl
train {
  task      anbn(min_n=2, max_n=6)
  optimizer adam(lr=0.05)
  batch 8; steps 24; seed 1; eval_every 3; eval_size 40; log_every 3; checkpoint_every 6
  KEEP
}
"""


def _spec(tmp_path: Path, keep: str = "keep_best true") -> cogdsl.Spec:
    path = tmp_path / "counter.cog"
    path.write_text(SPEC.replace("KEEP", keep))
    return cogdsl.load(path)


def _evaluations(run: Path) -> dict[int, float]:
    with (run / "log.csv").open() as f:
        return {int(row["step"]): float(row["eval_loss"]) for row in csv.DictReader(f) if row["eval_loss"]}


def test_the_best_checkpoint_is_the_evaluation_with_the_lowest_validation_loss(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    result = train(spec, out_dir=tmp_path / "run", progress=False)
    evaluations = _evaluations(tmp_path / "run")
    assert len(evaluations) == 8 and len(set(evaluations.values())) > 1
    best_step = min(evaluations, key=evaluations.__getitem__)
    assert result.best == tmp_path / "run" / "checkpoints" / "best.safetensors"
    meta = read_checkpoint_meta(result.best)
    assert meta["step"] == best_step
    assert meta["eval"]["loss"] == pytest.approx(evaluations[best_step], rel=1e-5)
    # The kept weights give that loss again; the final weights are another point of the run.
    config = config_from_spec(spec)
    model = cogdsl.compile(spec)
    load_model_state(model, load_checkpoint(result.best), spec.name)
    task = make_task(config.task, **config.task_params)
    again = evaluate(model, task, sequences=config.eval_size, seed=EVAL_SEED, split="valid")
    assert again.loss == pytest.approx(evaluations[best_step], rel=1e-5)
    if best_step != 24:
        assert result.eval is not None and result.eval.loss != pytest.approx(again.loss, rel=1e-5)


def test_a_resumed_run_keeps_choosing_over_every_evaluation(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    config = config_from_spec(spec)
    train(spec, config.with_overrides(steps=12), tmp_path / "run", progress=False)
    first_half = read_checkpoint_meta(tmp_path / "run" / "checkpoints" / "best.safetensors")
    result = train(spec, config, tmp_path / "run", resume=True, progress=False)
    evaluations = _evaluations(tmp_path / "run")
    assert sorted(evaluations) == [3, 6, 9, 12, 15, 18, 21, 24]
    best_step = min(evaluations, key=evaluations.__getitem__)
    assert result.best is not None and read_checkpoint_meta(result.best)["step"] == best_step
    assert first_half["step"] == min((s for s in evaluations if s <= 12), key=evaluations.__getitem__)


def test_keep_best_is_on_unless_turned_off(tmp_path: Path) -> None:
    result = train(_spec(tmp_path, ""), out_dir=tmp_path / "run", progress=False)
    assert result.best == tmp_path / "run" / "checkpoints" / "best.safetensors" and result.best.is_file()
    result = train(_spec(tmp_path, "keep_best false"), out_dir=tmp_path / "off", progress=False)
    assert result.best is None and not (tmp_path / "off" / "checkpoints" / "best.safetensors").exists()
