"""The plans in sweeps/: one for every results table the old example scripts made, each named by its results
page, each expanding to trials its specs accept (every spec and setting checked, sizes included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cogdsl.sweep.plan import load_plan

ROOT = Path(__file__).resolve().parents[2]

PLANS = sorted((ROOT / "sweeps").glob("*.yaml"))


def test_there_is_a_plan_for_every_results_table() -> None:
    assert len(PLANS) >= 20
    for page in (ROOT / "docs" / "results").glob("*.md"):  # the home-made runners are gone from the commands
        text = page.read_text(encoding="utf-8")
        for script in ("babi_table.py", "attention_table.py", "stack_table.py", "seed_study.py"):
            assert f"python examples/{script}" not in text and f"`examples/{script} " not in text, page.name
    named = {p.name for page in (ROOT / "docs" / "results").glob("*.md")
             for p in PLANS if f"sweeps/{p.name}" in page.read_text(encoding="utf-8")}
    assert named == {p.name for p in PLANS}, "every plan is the command of a results page"


@pytest.mark.parametrize("path", PLANS, ids=lambda p: p.name)
def test_every_plan_expands_to_trials_the_specs_accept(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    plan = load_plan(path.relative_to(ROOT))
    trials = plan.trials()
    assert plan.doc and trials and len({t.id for t in trials}) == len(trials)


def test_the_plans_train_what_the_old_runners_trained(monkeypatch: pytest.MonkeyPatch) -> None:
    """The spec's own task settings reach a joint bAbI model (relabel), the stack specs are sized to each task's
    alphabet, and the adding problem's curriculum starts at T = 10."""
    from cogdsl.compiler.pipeline import analyse, parse_text
    from cogdsl.language.emit import to_yaml

    monkeypatch.chdir(ROOT)
    (joint, *_) = load_plan("sweeps/babi_memn2n_relabel_joint.yaml").trials()
    assert "task: {name: babi_joint, train_size: 1000, relabel: true}" in joint.spec_yaml
    stack = {t.settings["train.task"]: t for t in load_plan("sweeps/stack_languages.yaml").trials() if t.seed == 0
             and t.model == "stack_anbn"}
    for task, size in (("anbn", 2), ("anbncn", 3), ("anbncndn", 4), ("mirror", 3)):
        sized, _, _ = analyse(parse_text(stack[task].spec_yaml, stack[task].spec_name, "yaml"))
        assert f"x: {size}\n" in to_yaml(sized) and f"  task: {task}\n" in stack[task].spec_yaml
    (adding, *_) = load_plan("sweeps/adding_problem.yaml").trials()
    for line in ("task: {name: adding, min_len: 10, max_len: 100}", "curriculum_every: 20", "steps: 12000"):
        assert line in adding.spec_yaml
