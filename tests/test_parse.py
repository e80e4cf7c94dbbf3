"""Parsing both spellings: positions, YAML 1.2 floats, .cog == YAML, comments, strings, expression entry points."""

from __future__ import annotations

from pathlib import Path

import pytest

from cogdsl.errors import Span, SpecError, SpecSyntaxError
from cogdsl.language.emit import quote, to_cog, to_yaml
from cogdsl.language.parse_cog import parse_address, parse_cog, parse_source, unquote
from cogdsl.language.parse_yaml import parse_yaml
from cogdsl.language.spec import Address, Pipe, Ref, Stage, Value

ROOT = Path(__file__).resolve().parent.parent
NTM_PATH = ROOT / "specs" / "ntm_copy.yaml"
NTM_TEXT = NTM_PATH.read_text(encoding="utf-8")

NTM_COG = """\
# Neural Turing Machine, copy task (Graves et al. 2014)
cogdsl 1
model ntm_copy
doc "Neural Turing Machine, copy task (Graves et al. 2014)"

input  x: 9                       # 8 data bits + delimiter
output y: 8 = sigmoid(ctrl, r)

lstm   ctrl(hidden=100) <- x, r@prev     # r@prev: r at the previous step
memory mem(slots=128, width=20)
read   r on mem by ctrl: content(cosine) | gate | shift(1) | sharpen
write  w on mem by ctrl: content(cosine) | gate | shift(1) | sharpen

train {
  task      copy(bits=8, min_len=1, max_len=20)
  optimizer rmsprop(lr=3e-4, momentum=0.9)
  batch 16; steps 50000; clip 10; clip_spikes 3; seed 0
}
"""


@pytest.fixture(scope="module")
def ntm():
    return parse_yaml(NTM_TEXT, "specs/ntm_copy.yaml")


def _at(text: str, span: Span) -> str:
    """The source text from ``span`` to the end of its line."""
    return text.splitlines()[span.line - 1][span.col - 1:]


# -- positions ---------------------------------------------------------------------------------


def test_yaml_positions_exact(ntm):
    f = "specs/ntm_copy.yaml"
    assert ntm.version.span == Span(f, 1, 9)
    assert ntm.model.span == Span(f, 2, 8)
    (x,) = ntm.inputs
    assert (x.span, x.size.span) == (Span(f, 5, 3), Span(f, 5, 6))
    (y,) = ntm.outputs
    assert y.span == Span(f, 7, 3)
    assert [r.span for r in y.sources] == [Span(f, 7, 23), Span(f, 7, 29)]
    assert y.activation.span == Span(f, 7, 45)
    ctrl = ntm.block("ctrl")
    assert (ctrl.span, ctrl.kind_span) == (Span(f, 9, 3), Span(f, 9, 16))
    assert ctrl.param_span("hidden") == Span(f, 9, 22)
    assert ctrl.sources == (Ref("x"), Ref("r", 1))
    assert [r.span for r in ctrl.sources] == [Span(f, 9, 42), Span(f, 9, 45)]
    mem = ntm.block("mem")
    assert mem.param_span("slots") == Span(f, 10, 24)
    assert mem.param_span("width") == Span(f, 10, 36)
    r = ntm.block("r")
    assert (r.memory.span, r.by.span) == (Span(f, 11, 31), Span(f, 11, 40))
    # addressing stages inside the quoted string: columns point inside the string
    assert [s.span.col for s in r.address.stages] == [56, 74, 81, 92]
    assert {s.span.line for s in r.address.stages} == {11}
    assert r.address.stages[2].args[0].span == Span(f, 11, 87)
    assert ntm.train.data["task"].span == Span(f, 14, 9)


def test_yaml_every_position_points_at_its_name(ntm):
    """Every block, parameter, reference and stage span starts at the text it names."""
    checked = 0
    for item in ntm.inputs + ntm.outputs:
        assert _at(NTM_TEXT, item.span).startswith(item.name + ":")
        checked += 1
    for output in ntm.outputs:
        for ref in output.sources:
            assert _at(NTM_TEXT, ref.span).startswith(str(ref))
            checked += 1
    for block in ntm.blocks:
        assert _at(NTM_TEXT, block.span).startswith(block.name + ":")
        assert _at(NTM_TEXT, block.kind_span).startswith(block.kind)
        for name in block.params:
            assert _at(NTM_TEXT, block.param_span(name)).startswith(name + ":")
        for ref in block.sources + tuple(r for r in (block.memory, block.by) if r is not None):
            assert _at(NTM_TEXT, ref.span).startswith(str(ref))
            checked += 1
        for stage in block.address.stages if block.address else ():
            assert _at(NTM_TEXT, stage.span).startswith(str(stage))
            checked += 1
    assert checked >= 15


def test_cog_positions(tmp_path):
    spec = parse_cog(NTM_COG, "ntm.cog")
    f = "ntm.cog"
    assert spec.model.span == Span(f, 3, 7)
    assert spec.inputs[0].span == Span(f, 6, 8)
    assert [r.span for r in spec.outputs[0].sources] == [Span(f, 7, 23), Span(f, 7, 29)]
    ctrl = spec.block("ctrl")
    assert (ctrl.kind_span, ctrl.span) == (Span(f, 9, 1), Span(f, 9, 8))
    assert ctrl.param_span("hidden") == Span(f, 9, 13)
    assert [r.span for r in ctrl.sources] == [Span(f, 9, 28), Span(f, 9, 31)]
    r = spec.block("r")
    assert (r.memory.span, r.by.span) == (Span(f, 11, 13), Span(f, 11, 20))
    assert [s.span.col for s in r.address.stages] == [26, 44, 51, 62]
    for block in spec.blocks:
        for stage in block.address.stages if block.address else ():
            assert _at(NTM_COG, stage.span).startswith(str(stage))
        for ref in block.sources:
            assert _at(NTM_COG, ref.span).startswith(str(ref))


# -- YAML 1.2 floats ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [
    ("1e-4", 1e-4), ("1E-4", 1e-4), ("1e4", 1e4), ("+1e3", 1e3), ("-2.5e-3", -2.5e-3),
    ("1.0e-4", 1e-4), ("1.5E+2", 150.0), ("0.0001", 1e-4),
])
def test_yaml_12_floats(text: str, value: float):
    spec = parse_yaml(f"cogdsl: 1\nmodel: m\ntrain:\n  optimizer: {{name: adam, lr: {text}}}\n")
    lr = spec.train.data["optimizer"].data["lr"].data
    assert type(lr) is float
    assert lr == pytest.approx(value)


def test_yaml_12_float_leading_point():
    spec = parse_yaml("cogdsl: 1\nmodel: m\ntrain:\n  lr: .5e1\n")
    assert spec.train.data["lr"].data == 5.0


@pytest.mark.parametrize(("text", "value"), [("50000", 50000), ('"1e-4"', "1e-4"), ("1e", "1e"), ("e5", "e5")])
def test_yaml_not_floats(text: str, value):
    spec = parse_yaml(f"cogdsl: 1\nmodel: m\ntrain:\n  v: {text}\n")
    data = spec.train.data["v"].data
    assert data == value and type(data) is type(value)


def test_ntm_lr_is_float(ntm):
    lr = ntm.train.data["optimizer"].data["lr"].data
    assert type(lr) is float and lr == pytest.approx(3e-4)


# -- the two spellings give one IR -------------------------------------------------------------


def test_cog_and_yaml_equal_ir(ntm):
    assert parse_cog(NTM_COG, "ntm.cog") == ntm


def test_fmt_round_trips(ntm):
    cog = to_cog(ntm)
    assert parse_cog(cog, "a.cog") == ntm
    assert parse_yaml(to_yaml(ntm), "a.yaml") == ntm
    assert parse_yaml(to_yaml(parse_cog(cog)), "b.yaml") == ntm


def test_different_specs_differ(ntm):
    changed = parse_cog(NTM_COG.replace("hidden=100", "hidden=101"))
    assert changed != ntm
    changed = parse_cog(NTM_COG.replace("x, r@prev", "x, r"))
    assert changed != ntm


def test_equality_ignores_positions():
    a = parse_cog("model m\ninput x: 9\n")
    b = parse_cog("\n\n# moved\nmodel   m\n\n   input x:9\n")
    assert a == b
    assert a.inputs[0].span != b.inputs[0].span


# -- .cog comments and separators ---------------------------------------------------------------


def test_cog_semicolons_and_comments():
    one_line = "model m; input x: 9; output y: 8 = ctrl; lstm ctrl(hidden=4) <- x  # all on one line"
    many = "# header\n\nmodel m   # name\n\ninput x: 9\n# between\noutput y: 8 = ctrl\nlstm ctrl(hidden=4) <- x\n# end"
    a, b = parse_cog(one_line), parse_cog(many)
    assert a == b
    assert a.block("ctrl").params["hidden"] == Value(4)


def test_cog_crlf_and_tabs():
    assert parse_cog("model m\r\ninput\tx: 9\r\n") == parse_cog("model m\ninput x: 9\n")


def test_cog_train_table():
    spec = parse_cog("model m\ntrain {\n  task copy(bits=8); batch 2\n  eval { every 5 }\n}\n")
    assert spec.train.plain() == {"task": {"name": "copy", "bits": 8}, "batch": 2, "eval": {"every": 5}}


def test_cog_values():
    spec = parse_cog('model m\nlstm c(a=1, b=-2.5, c=1e-4, d="s t", e=true, f=false, g=none, h=word, i=[1, "x"])\n')
    params = {k: v.plain() for k, v in spec.block("c").params.items()}
    assert params == {"a": 1, "b": -2.5, "c": 1e-4, "d": "s t", "e": True, "f": False, "g": None, "h": "word",
                      "i": [1, "x"]}
    assert type(params["c"]) is float


def test_cog_comment_inside_string_is_text():
    assert parse_cog('model m\ndoc "a # b"  # c\n').doc.data == "a # b"


# -- strings ----------------------------------------------------------------------------------


STRINGS = ['plain', 'a "quoted" word', "back\\slash", "new\nline", "\\n (two characters)", "tab\there",
           "ends with \\", '\\"', "ünïcödé", "", "# not a comment", "x \\\\ y"]


@pytest.mark.parametrize("text", STRINGS)
def test_quote_unquote_round_trip(text: str):
    assert unquote(quote(text)) == text


@pytest.mark.parametrize("text", STRINGS)
def test_quoted_string_parses_in_cog(text: str):
    spec = parse_cog(f"model m\ndoc {quote(text)}\n")
    assert spec.doc.data == text
    assert parse_cog(to_cog(spec)) == spec


def test_unquote_escapes():
    assert unquote(r'"a\"b"') == 'a"b'
    assert unquote(r'"a\\b"') == "a\\b"
    assert unquote(r'"a\nb"') == "a\nb"
    assert unquote(r'"a\\nb"') == "a\\nb"
    assert unquote(r'"a\qb"') == r"a\qb"  # an unknown escape stays as written


def test_string_params_that_look_like_keywords_round_trip():
    spec = parse_cog('model m\nlstm c(a="on", b="true", c="x y", d="none") <- x\n')
    assert parse_cog(to_cog(spec)) == spec
    assert spec.block("c").params["b"].data == "true"


# -- the address and source entry points -----------------------------------------------------------


def test_parse_address_pipe():
    address = parse_address("content(cosine) | gate | shift(1) | sharpen", Span("f.yaml", 3, 10))
    assert address == Address((Pipe((Stage("content", (Value("cosine"),)), Stage("gate"),
                                     Stage("shift", (Value(1),)), Stage("sharpen"))),))
    assert [s.span for s in address.stages] == [Span("f.yaml", 3, 10), Span("f.yaml", 3, 28),
                                                Span("f.yaml", 3, 35), Span("f.yaml", 3, 46)]
    assert address.stages[2].args[0].span == Span("f.yaml", 3, 41)
    assert str(address) == "content(cosine) | gate | shift(1) | sharpen"


def test_parse_address_mixture():
    address = parse_address("backward + content(cosine) + forward", Span("f", 1, 1))
    assert [str(t) for t in address.terms] == ["backward", "content(cosine)", "forward"]
    assert [t.span.col for t in address.terms] == [1, 12, 30]
    assert str(address) == "backward + content(cosine) + forward"


def test_parse_address_spacing_does_not_matter():
    a = parse_address("content(dot)|shift(2)", Span("f", 1, 1))
    b = parse_address("  content( dot ) |  shift(2)  ", Span("f", 1, 1))
    assert a == b


@pytest.mark.parametrize(("text", "col", "message"), [
    ("content(", 17, "unexpected"),
    ("a || b", 13, "unexpected '|'"),
    ("", 10, "unexpected"),
    ("$", 10, "unexpected character '$'"),
    ("content(cosine) | gate $ sharpen", 33, "unexpected character '$'"),
    ("shift(1,)", 18, "unexpected ')'"),
    ("content(cosine))", 25, "unexpected ')'"),
])
def test_parse_address_errors(text: str, col: int, message: str):
    with pytest.raises(SpecSyntaxError) as exc:
        parse_address(text, Span("f.yaml", 3, 10))
    (diagnostic,) = exc.value.diagnostics
    assert diagnostic.code == "E001"
    assert diagnostic.span == Span("f.yaml", 3, col)
    assert diagnostic.message.startswith("invalid addressing expression: ")
    assert message in diagnostic.message
    assert diagnostic.hint and diagnostic.hint.startswith("expected ")


def test_parse_address_rejects_statement_separators():
    for text in ("content(cosine); sharpen", "content(cosine) <- x"):
        with pytest.raises(SpecSyntaxError):
            parse_address(text, Span("f", 4, 10))


def test_yaml_block_scalar_address():
    text = ("cogdsl: 1\nmodel: m\nblocks:\n  r:\n    kind: read\n    address: >\n"
            "      content(cosine) | gate |\n      shift(1) | sharpen\n")
    address = parse_yaml(text, "f").block("r").address
    assert str(address) == "content(cosine) | gate | shift(1) | sharpen"


def test_parse_address_hint_lists_only_address_tokens():
    with pytest.raises(SpecSyntaxError) as exc:
        parse_address("content(cosine) | gate $ sharpen", Span("f", 1, 1))
    hint = exc.value.diagnostics[0].hint
    assert "';'" not in hint and "new line" not in hint


@pytest.mark.parametrize(("text", "ref"), [("x", Ref("x")), ("r@prev", Ref("r", 1)), ("ctrl_2", Ref("ctrl_2"))])
def test_parse_source(text: str, ref: Ref):
    parsed = parse_source(text, Span("f", 2, 7))
    assert parsed == ref
    assert parsed.span == Span("f", 2, 7)
    assert str(parsed) == text


@pytest.mark.parametrize(("text", "code", "col"), [
    ("r@", "E001", 11),
    ("1x", "E001", 10),
    ("a b", "E001", 12),
    ("r@prev@prev", "E001", 16),
    ("", "E001", 10),
    ("r@next", "E307", 12),
])
def test_parse_source_errors(text: str, code: str, col: int):
    with pytest.raises(SpecError) as exc:
        parse_source(text, Span("f", 3, 10))
    (diagnostic,) = exc.value.diagnostics
    assert (diagnostic.code, diagnostic.span) == (code, Span("f", 3, col))
    if code == "E001":
        assert diagnostic.message.startswith("invalid source: ")


def test_parse_source_leading_blanks_keep_columns():
    assert parse_source("  r@prev", Span("f", 1, 5)).span == Span("f", 1, 7)


def test_parse_source_hint_lists_only_source_tokens():
    with pytest.raises(SpecSyntaxError) as exc:
        parse_source("a b", Span("f", 1, 1))
    hint = exc.value.diagnostics[0].hint
    assert "'<-'" not in hint and "'by'" not in hint


def test_yaml_from_uses_the_source_grammar():
    text = "cogdsl: 1\nmodel: m\nblocks:\n  c: {kind: lstm, from: [x, y@prev]}\n"
    block = parse_yaml(text, "f").block("c")
    assert block.sources == (Ref("x"), Ref("y", 1))
    assert [r.span.col for r in block.sources] == [26, 29]


def test_yaml_quoted_source_in_list_column():
    text = "cogdsl: 1\nmodel: m\nblocks:\n  c: {kind: lstm, from: [x, 'r@prev']}\n"
    block = parse_yaml(text, "f").block("c")
    assert block.sources == (Ref("x"), Ref("r", 1))
    assert [r.span.col for r in block.sources] == [26, 30]


def test_yaml_quoted_single_source_column():
    text = "cogdsl: 1\nmodel: m\nblocks:\n  c: {kind: read, by: 'ctrl', memory: \"mem\"}\n"
    block = parse_yaml(text, "f").block("c")
    assert (block.by.span.col, block.memory.span.col) == (24, 40)


def test_yaml_single_source_string():
    block = parse_yaml("cogdsl: 1\nmodel: m\nblocks:\n  c: {kind: lstm, from: x}\n", "f").block("c")
    assert block.sources == (Ref("x"),)


def test_parse_errors_collect_every_expression_problem():
    """Several bad expressions in one YAML file are each reported (parsing does not stop at the first)."""
    text = ("cogdsl: 1\nmodel: m\nblocks:\n  c: {kind: lstm, from: [x@@prev]}\n"
            "  r: {kind: read, address: 'content(|'}\n  w: {kind: write, by: ctrl@later}\n")
    with pytest.raises(SpecError) as exc:
        parse_yaml(text, "f")
    assert [(d.code, d.span.line) for d in exc.value.diagnostics] == [("E001", 4), ("E001", 5), ("E307", 6)]
