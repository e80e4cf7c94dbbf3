"""Every spec in specs/ validates, compiles, and takes training steps that change its parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.tasks import make_task
from cogdsl.tasks.graph import answer_accuracy
from cogdsl.training.loop import config_from_spec, evaluate, train

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.*"))


@pytest.fixture(autouse=True)
def _keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_spec_trains_a_few_steps(path: Path, tmp_path: Path) -> None:
    spec = cogdsl.load(path)
    config = config_from_spec(spec).with_overrides(steps=2, batch=2)
    before = {name: p.detach().clone() for name, p in cogdsl.compile(spec).named_parameters()}
    torch.manual_seed(0)
    result = train(spec, config, tmp_path / "run", progress=False)
    assert result.step == 2 and result.loss is not None and torch.isfinite(torch.tensor(result.loss))
    after = dict(result.model.named_parameters())
    assert before.keys() == after.keys()
    moved = [name for name in before if not torch.equal(before[name], after[name].detach())]
    assert moved, f"{path.name}: no parameter changed after two training steps"


def test_the_library_has_the_dnc_specs() -> None:
    names = {path.stem for path in SPECS}
    assert {"dnc_repeat_copy", "dnc_graph_traversal", "dnc_shortest_path", "dnc_graph_inference",
            "lstm_shortest_path"} <= names


def test_dnc_and_lstm_baseline_share_their_task() -> None:
    dnc = config_from_spec(cogdsl.load(next(p for p in SPECS if p.stem == "dnc_shortest_path")))
    lstm = config_from_spec(cogdsl.load(next(p for p in SPECS if p.stem == "lstm_shortest_path")))
    assert (dnc.task, dnc.task_params) == (lstm.task, lstm.task_params)
    assert (dnc.optimizer, dnc.optimizer_params, dnc.batch) == (lstm.optimizer, lstm.optimizer_params, lstm.batch)


def test_evaluation_reports_answer_accuracy_for_graph_tasks() -> None:
    spec = cogdsl.load(next(p for p in SPECS if p.stem == "lstm_shortest_path"))
    config = config_from_spec(spec)
    task = make_task(config.task, **config.task_params)
    torch.manual_seed(1)
    model = cogdsl.compile(spec)
    result = evaluate(model, task, sequences=12, batch=5, seed=7)
    # the same sequences, scored directly
    generator = torch.Generator().manual_seed(7)
    direct = []
    with torch.no_grad():
        for n in (5, 5, 2):
            data = task.sample(n, generator, length=result.length)
            direct.append(answer_accuracy(model(data.inputs, raw=True), data))
    assert result.metrics["answer_accuracy"] == pytest.approx(float(torch.cat(direct).mean()))
    assert "answer accuracy" in result.describe("m")


def test_tasks_without_their_own_metrics_report_none() -> None:
    spec = cogdsl.load(next(p for p in SPECS if p.stem == "ntm_copy"))
    config = config_from_spec(spec)
    task = make_task(config.task, **config.task_params)
    result = evaluate(cogdsl.compile(spec), task, sequences=2, batch=2, length=3)
    assert result.metrics == {} and "accuracy" not in result.describe("m")


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_spec_explains_every_block(path: Path) -> None:
    """``cogdsl compile --explain`` has a line for every block and output of every spec in the library."""
    from cogdsl.compiler.explain import explain

    spec = cogdsl.load(path)
    text = explain(cogdsl.compile(spec))
    steps = text.split("one time step:")[1].split("parameters per block")[0]
    for name in [b.name for b in spec.blocks if b.kind not in ("memory",)] + [o.name for o in spec.outputs]:
        assert f" {name}" in steps, f"{path.name}: no line for {name}"
