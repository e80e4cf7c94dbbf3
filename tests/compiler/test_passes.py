"""The passes as a list: their order, one diagnostics sink, every problem of a pass in one report."""

from __future__ import annotations

from pathlib import Path

import pytest

from cogdsl.compiler import pipeline
from cogdsl.compiler.pipeline import PASSES, Compilation, analyse, compile_spec, parse_text, run_passes
from cogdsl.errors import ShapeError

# Four size problems found by three different checks: a dot score's query size (the attention kind's own
# check), a self-attention's heads (its kind's check), and the input and output sizes of the task (the task's).
SIZE_PROBLEMS = """\
model m
input  src: sequence(size=8)
output y: 5 = softmax(dec, ctx)
encoder        enc(hidden=16, bidirectional=true) <- src
self_attention sa(size=10, heads=3) <- src
attention      ctx(score=dot) on enc <- dec
attention      look on sa <- dec
gru            dec(hidden=16) <- y@prev, ctx@prev, look@prev
train {
  task reverse(symbols=6)
}
"""


def test_the_passes_are_a_list_in_pipeline_order() -> None:
    assert [p.name for p in PASSES] == ["graph", "validate", "sizes", "infer", "footprint", "lower"]


def test_every_size_problem_is_reported_in_one_run() -> None:
    spec = parse_text(SIZE_PROBLEMS, "sizes.cog", "cog")
    with pytest.raises(ShapeError) as caught:
        compile_spec(spec)
    messages = [d.message for d in caught.value.diagnostics]
    assert [d.code for d in caught.value.diagnostics] == ["E501"] * 4, messages
    assert any("feeds 6 channels but input 'src' has size 8" in m for m in messages), messages
    assert any("expects 6 outputs but output 'y' has size 5" in m for m in messages), messages
    assert any("attention 'ctx' scores by dot product" in m for m in messages), messages
    assert any("self_attention 'sa' has width 10, which its 3 heads do not divide" in m for m in messages), messages


def test_a_run_stops_after_the_pass_that_reported() -> None:
    spec = parse_text(SIZE_PROBLEMS, "sizes.cog", "cog")
    compilation = Compilation(spec)
    with pytest.raises(ShapeError):
        run_passes(compilation)
    assert compilation.shapes is not None and compilation.footprint is None and compilation.model is None


def test_nothing_is_resolved_twice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Validation's parameters, head groups and train config are the ones the later passes use."""
    import cogdsl.compiler.groups
    import cogdsl.compiler.task_sizes
    import cogdsl.compiler.validate
    import cogdsl.training.config

    calls: dict[str, int] = {"plan_groups": 0, "resolve_train": 0}

    def counted(name: str, function):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls[name] += 1
            return function(*args, **kwargs)
        return wrapper

    groups = cogdsl.compiler.groups.plan_groups
    monkeypatch.setattr(cogdsl.compiler.validate, "plan_groups", counted("plan_groups", groups))
    for module in (cogdsl.compiler.validate, cogdsl.compiler.task_sizes):
        monkeypatch.setattr(module, "resolve_train", counted("resolve_train", cogdsl.training.config.resolve_train))
    spec = pipeline.read_spec_file(Path(__file__).resolve().parents[2] / "specs" / "ntm_copy.yaml")
    analyse(spec)
    assert calls == {"plan_groups": 1, "resolve_train": 1}


def test_run_passes_names_the_passes_on_a_typo() -> None:
    spec = parse_text(SIZE_PROBLEMS, "sizes.cog", "cog")
    with pytest.raises(ValueError, match="no pass 'infr'"):
        run_passes(Compilation(spec), through="infr")
