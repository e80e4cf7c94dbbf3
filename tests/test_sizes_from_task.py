"""Sizes a spec leaves out are the task's: written nowhere by hand, derived like every other size."""

from __future__ import annotations

from pathlib import Path

import pytest

import cogdsl
from cogdsl.cli.command import main
from cogdsl.compiler.pipeline import parse_text
from cogdsl.errors import ShapeError, SpecError
from cogdsl.language.emit import to_cog, to_yaml

ROOT = Path(__file__).resolve().parent.parent

COG = """model t
input  x
output y = sigmoid(ctrl, r)

lstm   ctrl(hidden=8) <- x, r@prev
memory mem(slots=8, width=4)
read   r on mem by ctrl: content(cosine) | gate | shift(1) | sharpen
write  w on mem by ctrl: content(cosine) | gate | shift(1) | sharpen

train {
  task copy(bits=5, min_len=1, max_len=3)
}
"""

QA = (ROOT / "specs" / "memn2n_babi.cog").read_text().replace("sentences(vocab=69)", "sentences").replace(
    "words(vocab=69)", "words").replace("output answer: 69 = ", "output answer = ")


def test_left_out_sizes_parse_as_none_and_round_trip_in_both_forms():
    spec = parse_text(COG, "t.cog", "cog")
    assert spec.inputs[0].size.data is None and spec.inputs[0].kind.data == "vector"
    assert spec.outputs[0].size.data is None
    assert "input  x\n" in to_cog(spec) and "output y = sigmoid(ctrl, r)" in to_cog(spec)
    yaml_text = to_yaml(spec)
    assert "x: {kind: vector}" in yaml_text and "y: {from: [ctrl, r], activation: sigmoid}" in yaml_text
    assert parse_text(yaml_text, "t.yaml", "yaml") == spec
    assert parse_text(to_cog(spec), "t.cog", "cog") == spec
    qa = parse_text(QA, "q.cog", "cog")
    assert [(i.kind.data, i.size.data) for i in qa.inputs] == [("sentences", None), ("words", None)]
    assert parse_text(to_yaml(qa), "q.yaml", "yaml") == qa
    assert "story: {kind: sentences}" in to_yaml(qa)


@pytest.mark.parametrize("written", ["x:\n", "x: null\n", "x: {}\n", "x: {kind: vector}\n"])
def test_yaml_leaves_a_vector_size_out_in_any_of_its_spellings(written):
    text = to_yaml(parse_text(COG, "t.cog", "cog")).replace("x: {kind: vector}\n", written)
    spec = parse_text(text, "t.yaml", "yaml")
    assert spec.inputs[0].size.data is None and spec.inputs[0].kind.data == "vector"


def test_sizes_come_from_the_task():
    model = cogdsl.compile(parse_text(COG, "t.cog", "cog"))
    assert [i.size.data for i in model.spec.inputs] == [6]  # bits + the delimiter
    assert model.spec.outputs[0].size.data == 5
    explicit = cogdsl.compile(parse_text(COG.replace("input  x", "input  x: 6").replace(
        "output y =", "output y: 5 ="), "t.cog", "cog"))
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in explicit.parameters())


def test_a_qa_spec_takes_the_vocabulary_from_its_task():
    model = cogdsl.compile(parse_text(QA, "q.cog", "cog"))
    assert {i.name: i.size.data for i in model.spec.inputs} == {"story": 69, "question": 69}
    assert model.spec.outputs[0].size.data == 69  # the tied answer layer needs the vocabulary's size


def test_without_a_task_a_left_out_size_waits_for_data_and_compiling_without_it_is_a_located_error():
    text = COG.split("train {")[0]
    path = _write(text)
    assert cogdsl.load(path).name == "t"  # valid: the sizes come with the data it is trained on
    with pytest.raises(SpecError) as info:
        cogdsl.compile(path)
    codes = [(d.code, d.span.line, d.span.col) for d in info.value.diagnostics]
    assert codes == [("E007", 2, 8), ("E007", 3, 8)]
    first = info.value.diagnostics[0]
    assert first.message == "input 'x' has no size, and the spec names no task to take it from"
    assert first.hint == "write it ('input x: N'), or name a task in train: whose data gives it"


def test_a_task_that_feeds_no_input_of_that_kind_is_named():
    text = QA.replace("babi(number=1, train_size=1000)", "copy(bits=4)")
    with pytest.raises(SpecError) as info:
        cogdsl.load(_write(text))
    messages = [d.message for d in info.value.diagnostics]
    assert messages[0] == "input 'story' has no vocab, and task 'copy' feeds no sentences input (it feeds vector)"


def test_a_written_size_is_still_checked_and_the_hint_says_it_may_be_left_out():
    text = COG.replace("input  x", "input  x: 7")
    with pytest.raises(ShapeError) as info:
        cogdsl.load(_write(text))
    (problem,) = info.value.diagnostics
    assert problem.code == "E501" and (problem.span.line, problem.span.col) == (2, 11)
    assert problem.hint == "set the size of 'x' to 6, or leave it out to take the task's"


def test_explain_and_validate_show_the_derived_sizes(capsys):
    path = _write(COG)
    assert main(["validate", str(path)]) == 0
    assert main(["compile", str(path), "--explain"]) == 0
    out = capsys.readouterr().out
    assert "controller ctrl: lstm, 10 -> 8" in out  # x (6) + r (4)
    assert "sigmoid(linear 12 -> 5)" in out


_COUNTER = [0]


def _write(text: str) -> Path:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="cogdsl-sizes-"))
    _COUNTER[0] += 1
    path = folder / f"t{_COUNTER[0]}.cog"
    path.write_text(text)
    return path
