"""Grammar-aware Hypothesis strategies for spec text (issue 21): what ``test_fuzz_specs.py`` feeds the front end.

A spec is first drawn as a :class:`Plan` (inputs, outputs, blocks with parameters, addressing expressions and
a train section, each value in both spellings, :class:`V`), then written out as ``.cog`` text
(:func:`to_cog`) or as the dict of a YAML spec (:func:`to_dict`, dumped by ``yaml.safe_dump``); text features
(a byte order mark, CRLF line ends, control characters, YAML tags, anchors and aliases, multi-line strings)
are added on the way. Four kinds of plan (:data:`plans`):

- :func:`kind_plans`: the small spec of each registered block kind (:data:`cogdsl.blocks.REGISTRY`, as in
  ``tests/test_extremes.py``) with some of its parameters drawn;
- :func:`memory_plans`: a controller of each kind, a memory or a dnc_memory, read and write heads with
  addressing expressions (``content(cosine) | gate | shift(1) | sharpen``, ``backward + content + forward``);
- :func:`graph_plans`: blocks of any kinds wired by what they declare they take and look over;
- :func:`soup_plans`: statements of any kind, in any number and order (mostly refused).

Each may have a train section (any task, optimizer, schedule and setting; a task that feeds the spec's inputs
gives the sizes the spec leaves out). Parameters are drawn inside their declared ranges, small or at a bound,
and in "wild" plans also past their bounds, of the wrong type, non-finite, absurdly large (2**63, 4,400
digits), with names that are keywords, torch attributes (``training``, ``_modules``) or no names at all.

The strategies for the tests: :func:`cog_specs`, :func:`yaml_specs`, :func:`mutated_specs` (the library's specs
in ``specs/`` with characters, lines, numbers and names changed) and :data:`raw_texts`. Strategies are built
once (``functools.cache``), and composites take helpers that draw with their ``draw``: a strategy built per
example would cost more than running the example.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml
from hypothesis import strategies as st

from cogdsl.blocks import REGISTRY
from cogdsl.blocks.addressing import NTM_ORDER, STAGES
from cogdsl.blocks.dnc import CONTENT_MODIFIERS, READ_TERMS, WRITE_TERMS
from cogdsl.compiler.validate import ACTIVATIONS
from cogdsl.language.spec import SIZE_KEYS
from cogdsl.tasks import TASKS
from cogdsl.training.config import OPTIMIZERS, SETTINGS
from cogdsl.training.schedule import SCHEDULES
from tests.test_extremes import BASE, SPECS

T = TypeVar("T")
SPEC_DIR = Path(__file__).resolve().parents[2] / "specs"
LIBRARY: tuple[tuple[str, str], ...] = tuple(
    ("cog" if path.suffix == ".cog" else "yaml", path.read_text(encoding="utf-8"))
    for path in sorted(SPEC_DIR.iterdir()) if path.suffix in (".cog", ".yaml", ".yml"))
"""(form, text) of every spec in the library, in file name order."""

KINDS = tuple(sorted(REGISTRY))
CONTROLLERS = tuple(k for k in KINDS if REGISTRY[k].family == "controller")
MEMORIES = tuple(k for k in KINDS if REGISTRY[k].family == "memory" and "from" not in REGISTRY[k].accepts)
TASK_NAMES = tuple(sorted(TASKS))
INPUT_KINDS = tuple(SIZE_KEYS)


class Declared(Protocol):
    """What a block, stage, task, optimizer or setting declares of one parameter."""

    name: str
    type: type
    minimum: float | None
    maximum: float | None
    choices: tuple[Any, ...] | None


def mostly(valid: st.SearchStrategy[T], other: st.SearchStrategy[T], odds: int = 4) -> st.SearchStrategy[T]:
    """``valid`` four times in five (``odds`` in ``odds + 1``), ``other`` otherwise. (Built once, at import:
    inside a composite, :func:`often` does the same without building a strategy per example.)"""
    return st.integers(0, odds).flatmap(lambda k: other if k == odds else valid)


def often(draw: st.DrawFn, odds: int = 4) -> bool:
    """True four times in five (``odds`` in ``odds + 1``)."""
    return draw(st.integers(0, odds)) < odds


def pick(draw: st.DrawFn, options: tuple[T, ...] | list[T]) -> T:
    """One of ``options``."""
    return options[draw(st.integers(0, len(options) - 1))]


# -- values in both spellings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """YAML text written as it is where the value stands (a tag, an anchor, a number PyYAML would not write)."""

    text: str


@dataclass(frozen=True)
class V:
    """One value: as a .cog file writes it, and as the YAML dict holds it (a :class:`Raw` for literal text)."""

    cog: str
    yaml: Any


def _string(text: str) -> V:
    r"""A string: a .cog literal (only '"' and '\' escaped, so a control character stays raw) and YAML's."""
    return V('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"', text)


def _int(value: int) -> V:
    return V(str(value), Raw(str(value)) if len(str(value)) > 4000 else value)


def _float(value: float) -> V:
    if math.isnan(value):
        return V("nan", Raw(".nan"))
    if math.isinf(value):
        return V("1e999" if value > 0 else "-1e999", Raw(".inf" if value > 0 else "-.inf"))
    return V(repr(value), value)


TORCH_NAMES = ("training", "_modules", "_parameters", "_buffers", "keys", "values", "items", "update", "pop",
               "train", "forward", "state_dict", "__init__", "__class__", "_keys", "T_destination", "cuda", "half")
KEYWORDS = ("model", "input", "output", "train", "cogdsl", "doc", "on", "by", "true", "false", "none", "prev",
            "task", "optimizer", "kind", "from", "memory", "address", "inputs", "blocks", "vector", "sentences")
PLAIN_NAMES = ("x", "y", "c", "ctrl", "mem", "r", "w", "a", "z", "src", "img", "story", "q", "enc", "dec", "_",
               "_r", "A1")
BAD_NAMES = ("Ω", "1x", "a-b", "", "é", "x y", "a.b", "x\x07", "na\u0308ive", "a\u202eb", "名前", "-", "@", "x@prev",
             "a\tb", "a\nb", "a\x00b", "\ufeffx", "r@next", "'x'", "x\r")

tame_names = st.one_of(st.sampled_from(PLAIN_NAMES), st.sampled_from(TORCH_NAMES),
                       st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True))
"""Names the grammar reads as NAME, among them torch's attributes."""
names = mostly(tame_names, st.sampled_from((*KEYWORDS, "n" * 300)), odds=5)
"""Names the grammar's NAME matches, keywords and a long one among them."""
any_names = mostly(names, st.one_of(st.sampled_from(BAD_NAMES), st.text(st.characters(exclude_categories=("Cs",)),
                                                                         max_size=6)), odds=3)
"""Names, and one time in four text that is no name."""

NUMBER_TEXTS = ("0", "1", "-1", "2", "+3", "007", "0.0", "-0.0", "0.5", ".5", "1.", "1e-4", "1E3", "1e400", "-1e400",
                "1e-400", "0e-999", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
                "1" + "0" * 30, "4294967296", "65536", "65537", "1048577")
YAML_ONLY_NUMBERS = ("0x10", "0o17", "0b101", "1_000", "1:30", "+.inf", ".NaN", "-.INF", "1e5", "0777", "12e03",
                     "190:20:30", ".5e-3")
LONG_NUMBERS = {"4400 digits": "9" * 4400, "-4400 digits": "-" + "9" * 4400, "5000 decimals": "1." + "0" * 5000,
                "3000 hex digits": "0x" + "f" * 3000, "2100 underscores": "1" + "_0" * 2100}
"""Numbers longer than Python converts (4,300 digits), named so that a strategy's repr stays short."""
long_numbers = st.sampled_from(sorted(LONG_NUMBERS)).map(LONG_NUMBERS.__getitem__)

numbers: st.SearchStrategy[V] = st.one_of(
    st.integers(-3, 70).map(_int),
    st.one_of(st.sampled_from(NUMBER_TEXTS), long_numbers).map(lambda t: V(t, Raw(t))),
    st.sampled_from((0, 1, -1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30)).map(_int),
    st.floats(allow_nan=True, allow_infinity=True).map(_float),
    st.sampled_from((0.0, -0.0, 0.5, 0.99, 1.5, 1e-4, 1e30, 1e308, 5e-324, math.nan, math.inf, -math.inf)).map(_float),
)
"""Numbers at their extremes: 0, 1, -1, past int64, 4,400 digits, floats that overflow or underflow, nan, inf."""

strings: st.SearchStrategy[V] = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12).map(_string),
    st.sampled_from(("", "a\x07b", "\x00", "tab\there", "line\nbreak", "\u2028", "\x85", "\x7f", "\u202e", "\ufeff",
                     "quote\"q", "back\\slash", "\r", "é", "名")).map(_string),
)
"""Strings, with control characters, line and paragraph separators, quotes and backslashes."""

YAML_FEATURES = ("!!int 3", "!!int x", "!!float 1", "!!float .nan", "!!bool yes", "!!bool maybe", "yes", "no", "on",
                 "off", "~", "null", "!!null ''", "!!str 3", "!!timestamp 2001-12-14", "2001-12-14t21:59:43.10-05:00",
                 "!!timestamp x", "!!binary aGVsbG8=", "!!set {a: null}", "!!omap [a: 1]", "!!pairs [a: 1]",
                 "!!map {}", "!!map x", "!!seq []", "!!seq x", "!!python/object/apply:os.system [echo]",
                 "!!python/name:os.system", "!!python/tuple [1, 2]", "!custom 3", "!<tag:yaml.org,2002:int> 3",
                 "!<!> 3", "! 3", "&a 3", "*a", "*nowhere", "&s [*s]", "[[[[[]]]]]", "{a: [b, {c: d}]}", "'single'",
                 '"\\x07"', '"\\u2028"', '"\\U0010ffff"', '"\\ud800"', "|\n  literal\n", ">-\n  folded\n  text\n",
                 "? complex\n  : key", "- dash", "@reserved", "`tick", "%percent", "&a", "!!", "!!int", '"unclosed',
                 "[unclosed", "{a: 1, a: 2}")

yaml_features: st.SearchStrategy[V] = st.sampled_from(YAML_FEATURES).map(lambda t: V(t.split("\n")[0], Raw(t)))
"""Raw YAML values: tags of every kind (standard, Python, custom, verbatim), anchors and aliases, block scalars."""


def nested_lists(depth: int) -> V:
    return V("[" * depth + "]" * depth, Raw("[" * depth + "]" * depth))


values: st.SearchStrategy[V] = mostly(st.recursive(
    st.one_of(numbers, strings, names.map(lambda n: V(n, n)), yaml_features,
              st.sampled_from((V("true", True), V("false", False), V("none", None)))),
    lambda inner: st.lists(inner, max_size=4).map(
        lambda items: V("[" + ", ".join(i.cog for i in items) + "]", [i.yaml for i in items])),
    max_leaves=8,
), st.integers(1, 200).map(nested_lists), odds=9)
"""Any value: numbers, strings, names, truth values, none, lists (nested up to 200 deep), raw YAML."""


@cache
def declared_value(param: Declared, wild: bool = True) -> st.SearchStrategy[V]:
    """A value for a declared parameter: an allowed one, small (so that the spec runs quickly) or at a bound;
    when ``wild``, now and then one past a bound, and sometimes any value at all."""
    if param.choices is not None:
        valid = st.sampled_from(param.choices).map(lambda c: _int(c) if isinstance(c, int) else V(str(c), c))
    elif param.type is bool:
        valid = st.sampled_from((V("true", True), V("false", False)))
    elif param.type is int:
        low = int(param.minimum) if param.minimum is not None else -5
        high = int(param.maximum) if param.maximum is not None else 10**6
        top = min(high, 4096)  # a size past this that fits the memory budget runs for seconds (slots=2**20)
        bounds = [low, top, low - 1, high + 1] if wild else [low, top]
        positive = st.integers(max(low, 1), min(high, 8)) if max(low, 1) <= min(high, 8) else st.just(low)
        small = st.one_of(st.integers(low, min(high, low + 6)), positive)
        valid = mostly(small, st.sampled_from(bounds), odds=2).map(_int)
    elif param.type is float:
        low = param.minimum if param.minimum is not None else -1e6
        high = param.maximum if param.maximum is not None else 1e6
        valid = st.one_of(st.floats(low, min(high, low + 2.0)), st.sampled_from((low, high))).map(_float)
    else:  # a name or a path
        valid = st.one_of(names.map(lambda n: V(n, n)), strings)
    return mostly(valid, values) if wild else valid


@cache
def _some(declared: tuple[Declared, ...]) -> st.SearchStrategy[list[Declared]]:
    return st.lists(st.sampled_from(declared), max_size=len(declared), unique_by=lambda p: p.name)


def draw_params(draw: st.DrawFn, declared: tuple[Declared, ...] | list[Declared],
                base: dict[str, Any] | None = None, wild: bool = True) -> dict[str, V]:
    """Some of the declared parameters with drawn values over ``base`` (parameters given as plain values); when
    ``wild``, now and then an unknown one too. (A helper of the strategies below, which draw with ``draw``:
    strategies built once, not per example, keep the generation fast.)"""
    params = {name: _float(value) if isinstance(value, float) else _int(value) for name, value in (base or {}).items()}
    if declared:
        for param in draw(_some(tuple(declared))):
            params[param.name] = draw(declared_value(param, wild))
    if wild and draw(st.integers(0, 9)) == 0:
        params[draw(names)] = draw(values)
    return params


# -- addressing expressions ----------------------------------------------------------------------------------

STAGE_NAMES = tuple(sorted(STAGES))


@cache
@st.composite
def stages(draw: st.DrawFn) -> str:
    name = pick(draw, STAGE_NAMES) if often(draw) else draw(names)
    declared = STAGES[name].args if name in STAGES else ()
    args = [draw(declared_value(p)).cog for p in declared[: draw(st.integers(0, len(declared)))]]
    if draw(st.integers(0, 9)) == 0:
        args.append(draw(values).cog)
    if not args:
        return name + draw(st.sampled_from(("", "", "()")))
    return f"{name}({', '.join(args)})"


@cache
@st.composite
def _stage(draw: st.DrawFn, name: str) -> str:
    declared = STAGES[name].args
    args = [draw(declared_value(p, wild=False)).cog for p in declared[: draw(st.integers(0, len(declared)))]]
    return f"{name}({', '.join(args)})" if args else name


@cache
@st.composite
def tame_addresses(draw: st.DrawFn, memory: str, role: str) -> str:
    """An addressing expression that fits: on a ``memory``, NTM stages in their order after content; on a
    ``dnc_memory``, a mixture of the weightings of ``role`` (read or write), content piped into lru and hard."""
    if memory != "dnc_memory":
        later = draw(st.lists(st.sampled_from(NTM_ORDER[1:]), unique=True, max_size=5))
        return " | ".join(draw(_stage(name)) for name in ("content", *sorted(later, key=NTM_ORDER.index)))
    terms = draw(st.lists(st.sampled_from(WRITE_TERMS if role == "write" else READ_TERMS), min_size=1, unique=True))
    written = []
    for term in terms:
        modifiers = draw(st.lists(st.sampled_from(CONTENT_MODIFIERS), unique=True)) if term == "content" else []
        written.append(" | ".join(draw(_stage(name)) for name in (term, *sorted(modifiers,
                                                                               key=CONTENT_MODIFIERS.index))))
    return " + ".join(written)


@cache
@st.composite
def addresses(draw: st.DrawFn) -> str:
    """``content(cosine) | gate | shift(1) | sharpen``, ``backward + content(dot) + forward``, and any other
    pipes ('|') of stages mixed ('+') together, of any stage names and arguments, and now and then not an
    expression."""
    pipes = draw(st.lists(st.lists(stages(), min_size=1, max_size=5), min_size=1, max_size=3))
    text = draw(st.sampled_from((" + ", "+"))).join(draw(st.sampled_from((" | ", "|"))).join(p) for p in pipes)
    if often(draw):
        return text
    return pick(draw, (text + " |", "| " + text, text + " +", text + ")", text.replace("(", "", 1), "", "content(",
                       "|"))


NTM_ADDRESS = "content(cosine) | gate | shift(1) | sharpen"

# -- plans ---------------------------------------------------------------------------------------------------


@dataclass
class InputPlan:
    name: str
    kind: str | None  # None: a vector written as `x: 3`
    size: V | None  # None: left to the task


@dataclass
class OutputPlan:
    name: str
    size: V | None
    activation: str | None
    sources: list[str]


@dataclass
class BlockPlan:
    kind: str
    name: str
    params: dict[str, V] = field(default_factory=dict)
    memory: str | None = None
    by: str | None = None
    sources: list[str] = field(default_factory=list)
    address: str | None = None


@dataclass(frozen=True)
class Call:
    """A train entry that names something with parameters: ``task copy(bits=8)``, ``{name: copy, bits: 8}``."""

    name: str
    params: dict[str, V]


@dataclass
class Plan:
    """A spec before it is written out in either form."""

    model: str
    inputs: list[InputPlan]
    outputs: list[OutputPlan]
    blocks: list[BlockPlan]
    version: V | None = None
    doc: V | None = None
    train: dict[str, Any] | None = None  # key -> V, Call or a nested dict

    def names(self) -> list[str]:
        return [i.name for i in self.inputs] + [o.name for o in self.outputs] + [b.name for b in self.blocks]


# The small specs of test_extremes.py, one per block kind, read into plans: the block under test is the one
# whose parameters are '{params}'.
_INPUT = re.compile(r"input (\w+): (?:(\d+)|(\w+)\((\w+)=(\d+)\))$")
_OUTPUT = re.compile(r"output (\w+): (\S+) = (\w+)\((.*)\)$")
_BLOCK = re.compile(r"(\w+) (\w+)(?:\((.*?)\))?(?: on (\w+))?(?: by (\w+))?(?: <- (.*?))?(?:: (.*))?$")
_TARGET, _CANVAS = "@@params@@", "@@canvas@@"


def _literal(text: str) -> V:
    if re.fullmatch(r"-?\d+", text):
        return _int(int(text))
    return V(text, {"true": True, "false": False}.get(text, text))


def _template(kind: str) -> tuple[Plan, int]:
    """The small spec of ``kind`` as a plan, and the index of the block under test."""
    text = SPECS[kind].format(kind=kind, params=_TARGET, canvas=_CANVAS)
    plan, target = Plan("fuzz", [], [], []), -1
    for line in text.strip().split("\n"):
        if match := _INPUT.match(line):
            name, vector, kind_name, _, size = match.groups()
            plan.inputs.append(InputPlan(name, None, _int(int(vector))) if vector else
                               InputPlan(name, kind_name, _int(int(size))))
        elif match := _OUTPUT.match(line):
            name, size, activation, sources = match.groups()
            plan.outputs.append(OutputPlan(name, None if size == _CANVAS else _int(int(size)), activation,
                                           [s.strip() for s in sources.split(",")]))
        else:
            match = _BLOCK.match(line)
            assert match, f"unread template line {line!r}"
            block_kind, name, params, memory, by, sources, address = match.groups()
            block = BlockPlan(block_kind, name, memory=memory, by=by, address=address,
                              sources=[s.strip() for s in sources.split(",")] if sources else [])
            if params == _TARGET:
                target = len(plan.blocks)
            elif params:
                block.params = {k.strip(): _literal(v.strip()) for k, v in (p.split("=") for p in params.split(","))}
            plan.blocks.append(block)
    assert target >= 0, kind
    return plan, target


TEMPLATES = {kind: _template(kind) for kind in KINDS}


def _copy(plan: Plan) -> Plan:
    return replace(plan, inputs=[replace(i) for i in plan.inputs], outputs=[replace(o) for o in plan.outputs],
                   blocks=[replace(b, params=dict(b.params), sources=list(b.sources)) for b in plan.blocks])


def _renamed(plan: Plan, mapping: dict[str, str]) -> Plan:
    """``plan`` with every name, and every reference to it (``x@prev`` too), changed by ``mapping``."""

    def ref(source: str) -> str:
        name, at, delay = source.partition("@")
        return mapping.get(name, name) + at + delay

    return replace(
        plan,
        inputs=[replace(i, name=mapping.get(i.name, i.name)) for i in plan.inputs],
        outputs=[replace(o, name=mapping.get(o.name, o.name), sources=[ref(s) for s in o.sources])
                 for o in plan.outputs],
        blocks=[replace(b, name=mapping.get(b.name, b.name), memory=b.memory and ref(b.memory),
                        by=b.by and ref(b.by), sources=[ref(s) for s in b.sources]) for b in plan.blocks])


def renamed(draw: st.DrawFn, plan: Plan, wild: bool = True) -> Plan:
    """``plan`` as it is, or with its names replaced by drawn ones: distinct names, torch's attributes among
    them, and when ``wild`` keywords, names repeated, and text that is no name."""
    if draw(st.booleans()):
        return plan
    old = list(dict.fromkeys(plan.names()))
    if wild and not often(draw):
        return _renamed(plan, {name: draw(any_names) for name in old})
    new: list[str] = []
    for _ in old:  # distinct: a name drawn twice takes a number
        name = draw(names if wild else tame_names)
        new.append(name if name not in new else f"{name}{len(new)}")
    return _renamed(plan, dict(zip(old, new, strict=True)))


def _task_kinds() -> dict[str, frozenset[str]]:
    """The input kinds each task feeds, for the tasks that read no file."""
    from cogdsl.tasks import TaskParamError, make_task

    kinds = {}
    for name in TASK_NAMES:
        with contextlib.suppress(TaskParamError):
            kinds[name] = frozenset(make_task(name).input_kinds)
    return kinds


TASK_KINDS = _task_kinds()


@cache
@st.composite
def train_sections(draw: st.DrawFn, wild: bool = True, kinds: frozenset[str] | None = None) -> dict[str, Any]:
    """A train section: a task with parameters (when not ``wild``, one that feeds inputs of ``kinds``), an
    optimizer, a schedule, settings; when ``wild``, now and then an unknown key or a nested table."""
    train: dict[str, Any] = {}
    fitting = sorted(name for name, fed in TASK_KINDS.items() if kinds is None or fed == kinds)
    if draw(st.integers(0, 3)) and (wild or fitting):
        name = (pick(draw, TASK_NAMES) if often(draw) else draw(names)) if wild else pick(draw, fitting)
        declared = TASKS[name].params if name in TASKS else ()
        train["task"] = Call(name, draw_params(draw, declared, wild=wild))
    if draw(st.booleans()):
        name = pick(draw, sorted(OPTIMIZERS)) if not wild or often(draw) else draw(names)
        train["optimizer"] = Call(name, draw_params(draw, OPTIMIZERS.get(name, ()), wild=wild))
    if draw(st.integers(0, 4)) == 0:
        name = pick(draw, sorted(SCHEDULES)) if not wild or often(draw) else draw(names)
        train["schedule"] = Call(name, draw_params(draw, SCHEDULES.get(name, ()), wild=wild))
    train.update(draw_params(draw, SETTINGS, wild=wild))
    if wild and draw(st.integers(0, 9)) == 0:
        train[draw(names)] = {draw(names): draw(values)}
    return train


def sized_from_task(draw: st.DrawFn, plan: Plan, wild: bool = True) -> Plan:
    """``plan`` with a train section now and then; when its task feeds the plan's inputs (always when not
    ``wild``), its sizes are now and then left to the task."""
    if draw(st.integers(0, 2)) == 0:
        kinds = frozenset(i.kind or "vector" for i in plan.inputs)
        plan.train = draw(train_sections(wild, None if wild else kinds))
        task = plan.train.get("task")
        fits = isinstance(task, Call) and TASK_KINDS.get(task.name) == kinds and len(plan.outputs) == 1
        if fits and draw(st.integers(0, 3)):
            for item in (*plan.inputs, *plan.outputs):
                item.size = None
    return plan


@cache
@st.composite
def kind_plans(draw: st.DrawFn) -> Plan:
    """The small spec of a block kind (every registered kind in turn), with some of its parameters drawn:
    inside their ranges two times in three (:func:`declared_value`), wild otherwise."""
    wild = not often(draw, 2)
    kind = draw(st.sampled_from(KINDS))
    template, target = TEMPLATES[kind]
    plan = _copy(template)
    block = plan.blocks[target]
    block.params = draw_params(draw, REGISTRY[kind].params, BASE.get(kind, {}), wild)
    for output in plan.outputs:
        if output.size is None:  # draw_write's canvas: its size squared
            size = block.params.get("size", V("8", 8)).yaml
            output.size = _int(size * size) if isinstance(size, int) and 0 <= size <= 512 else V("64", 64)
    kinds = {b.name: b.kind for b in plan.blocks}
    for head in plan.blocks:
        if head.kind in ("read", "write") and draw(st.integers(0, 2)) == 0:
            head.address = draw(addresses() if wild else tame_addresses(kinds.get(head.memory or ""), head.kind))
    return renamed(draw, sized_from_task(draw, plan, wild), wild)


@cache
@st.composite
def memory_plans(draw: st.DrawFn) -> Plan:
    """A controller (each kind), a memory (each kind), read and write heads with drawn addressing; inside
    their ranges two times in three, wild otherwise."""
    wild = not often(draw, 2)
    controller, memory = draw(st.sampled_from(CONTROLLERS)), draw(st.sampled_from(MEMORIES))
    reads, writes = draw(st.integers(1, 2)), draw(st.integers(0, 2))
    size, activation = draw(SMALL if not wild or often(draw) else numbers), pick(draw, ACTIVATIONS)
    if wild and not often(draw):
        activation = draw(names)
    plan = Plan("fuzz", [InputPlan("x", None, draw(SMALL if not wild or often(draw) else numbers))],
                [OutputPlan("y", size, activation, ["c", *(f"r{k}" for k in range(reads))])], [])
    params = draw_params(draw, REGISTRY[controller].params, BASE[controller], wild)
    plan.blocks.append(BlockPlan(controller, "c", params, sources=["x", *(f"r{k}@prev" for k in range(reads))]))
    plan.blocks.append(BlockPlan(memory, "mem", draw_params(draw, REGISTRY[memory].params, BASE[memory], wild)))
    dnc = memory == "dnc_memory"
    for role, count in (("read", reads), ("write", writes)):
        default = ("backward + content(cosine) + forward" if role == "read" else "content(cosine) + allocate"
                   ) if dnc else NTM_ADDRESS
        for k in range(count):
            address = draw(st.one_of(st.just(default), st.none(), addresses() if wild else
                                     tame_addresses(memory, role)))
            plan.blocks.append(BlockPlan(role, f"{role[0]}{k}", draw_params(draw, REGISTRY[role].params, wild=wild),
                                         "mem", "c", address=address))
    plan.blocks = draw(st.permutations(plan.blocks))
    return renamed(draw, sized_from_task(draw, plan, wild), wild)


def _source(draw: st.DrawFn, pool: list[str]) -> str:
    """A wire from a name of ``pool``: ``x``, ``x@prev``, or ``x@name`` with a delay that does not exist."""
    name, how = pick(draw, pool), draw(st.integers(0, 2))
    return name if how == 0 else f"{name}@prev" if how == 1 else f"{name}@{draw(names)}"


SMALL = st.integers(1, 6).map(_int)
KIND_OR_TYPO = mostly(st.sampled_from(KINDS), st.sampled_from(("lstn", "LSTM", "output", "memory_", "model")))


@cache
@st.composite
def soup_plans(draw: st.DrawFn) -> Plan:
    """Statements of every kind in any number and order, wired to a small pool of names: mostly invalid specs,
    for validation's sake."""
    pool = draw(st.lists(names, min_size=1, max_size=6))

    def sources(least: int, most: int) -> list[str]:
        return [_source(draw, pool) for _ in range(draw(st.integers(least, most)))]

    def maybe_source() -> str | None:
        return _source(draw, pool) if draw(st.booleans()) else None

    inputs = [InputPlan(pick(draw, pool), draw(st.one_of(st.none(), st.sampled_from(INPUT_KINDS), names)),
                        draw(st.one_of(st.none(), numbers))) for _ in range(draw(st.integers(0, 3)))]
    outputs = [OutputPlan(pick(draw, pool), draw(st.one_of(st.none(), numbers)),
                          draw(st.one_of(st.none(), st.sampled_from(ACTIVATIONS), names)), sources(1, 3))
               for _ in range(draw(st.integers(0, 2)))]
    blocks = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(KIND_OR_TYPO)
        declared = REGISTRY[kind].params if kind in REGISTRY else ()
        blocks.append(BlockPlan(kind, pick(draw, pool), draw_params(draw, declared), maybe_source(), maybe_source(),
                                sources(0, 3), draw(st.one_of(st.none(), addresses()))))
    plan = Plan(draw(names), inputs, outputs, blocks)
    if draw(st.integers(0, 3)) == 0:
        plan.version = V("1", 1) if often(draw) else draw(numbers)
    if draw(st.integers(0, 3)) == 0:
        plan.doc = draw(strings)
    if draw(st.booleans()):
        plan.train = draw(train_sections())
    return plan


_INPUT_SIZES = {"vector": (1, 6), "sequence": (1, 6), "image": (8, 16), "words": (1, 9), "sentences": (1, 9)}

AVOID_KNOWN_BUGS = False
"""Whether :func:`graph_plans` steers clear of two bugs the fuzzer found outside the front end, whose
reproducers ``FOUND_BUGS`` in test_fuzz_specs.py holds (both are now refused by validation, so it is
False): a block that carries a sequence (encoder, self_attention, conv) read at the previous step
(``b <- a@prev``), which validation passes and which crashes in infer or in the forward step; and a question
(``words``) with a larger vocabulary than the story (``sentences``) its memory holds, which crashes in the
embedding."""


@cache
@st.composite
def graph_plans(draw: st.DrawFn) -> Plan:
    """Blocks of any kinds with parameters inside their ranges, each wired by what it declares: its sources
    from inputs and blocks that carry what it takes (a later block's at the previous step), its memory from a
    block or input it may look over, its controller from a controller, its addressing to fit its memory. Many
    such graphs are refused (a memory no head touches, a cycle), the rest are combinations no library spec
    has, for lowering and the forward step."""
    inputs = []
    for k in range(draw(st.integers(1, 2))):
        kind = pick(draw, INPUT_KINDS)
        low, high = _INPUT_SIZES[kind]
        inputs.append(InputPlan(f"i{k}", None if kind == "vector" and often(draw, 1) else kind,
                                _int(draw(st.integers(low, high)))))
    stories = [i.size.yaml for i in inputs if i.kind == "sentences" and i.size is not None]
    if AVOID_KNOWN_BUGS and stories:
        for item in inputs:
            if item.kind == "words" and item.size is not None:
                item.size = _int(min(item.size.yaml, *stories))
    carried = {i.name: i.kind or "vector" for i in inputs}
    kinds: list[str] = []

    def memories(kind: str) -> list[str]:
        """The blocks so far that a ``kind`` may look over as its memory."""
        return [f"b{k}" for k, other in enumerate(kinds) if REGISTRY[other].family == "memory"
                and REGISTRY[other].read_by == REGISTRY[kind].family and "memory" in REGISTRY[kind].looks_over]

    def fits(kind: str) -> bool:
        """Whether what ``kind`` requires is there: what it takes, what it looks over, a controller."""
        declared = REGISTRY[kind]
        takes = "from" not in declared.requires or set(declared.takes) & set(carried.values())
        looks = "memory" not in declared.requires or set(declared.looks_over) & set(carried.values()) or memories(kind)
        return bool(takes and looks and ("by" not in declared.requires or "controller" in
                                         {REGISTRY[other].family for other in kinds}))

    for _ in range(draw(st.integers(1, 5))):  # each kind fed by the inputs or the blocks before it
        kind = pick(draw, [kind for kind in KINDS if fits(kind)])
        if REGISTRY[kind].has_output:
            carried[f"b{len(kinds)}"] = REGISTRY[kind].carries
        kinds.append(kind)
    names_ = [f"b{k}" for k in range(len(kinds))]
    family = dict(zip(names_, (REGISTRY[kind].family for kind in kinds), strict=True))
    blocks = []
    for index, (name, kind) in enumerate(zip(names_, kinds, strict=True)):
        declared = REGISTRY[kind]
        block = BlockPlan(kind, name, draw_params(draw, declared.params, BASE.get(kind, {}), wild=False))
        if "from" in declared.accepts:
            fitting = [n for n, carries in carried.items() if carries in declared.takes and n != name and not
                       (AVOID_KNOWN_BUGS and carries == "sequence" and n in names_ and names_.index(n) >= index)]
            for source in draw(st.lists(st.sampled_from(fitting), min_size=1, max_size=2, unique=True)) if fitting \
                    else []:
                later = source in names_ and names_.index(source) >= index
                delayed = later or (often(draw, 1) and source in names_)
                if AVOID_KNOWN_BUGS and carried[source] == "sequence":
                    delayed = False
                block.sources.append(source + "@prev" if delayed else source)
        if "memory" in declared.accepts:
            over = [n for n, carries in carried.items() if carries in declared.looks_over and n != name]
            over += [n for n in names_ if n != name and REGISTRY[kinds[names_.index(n)]].family == "memory"
                     and REGISTRY[kinds[names_.index(n)]].read_by == declared.family
                     and "memory" in declared.looks_over]
            block.memory = pick(draw, over) if over else None
        if "by" in declared.accepts:
            controllers = [n for n, f in family.items() if f == "controller"]
            block.by = pick(draw, controllers) if controllers else None
        if "address" in declared.accepts and block.memory is not None and draw(st.booleans()):
            memory_kind = kinds[names_.index(block.memory)] if block.memory in names_ else "memory"
            block.address = draw(tame_addresses(memory_kind, kind))
        blocks.append(block)
    vectors = [n for n in names_ if carried.get(n) == "vector"]
    if not vectors:  # something for the outputs to read: an mlp of a vector, or the mean of a sequence
        given = [n for n, carries in carried.items() if carries == "vector"]
        sequences = [n for n, carries in carried.items() if carries == "sequence"]
        if given or sequences:
            blocks.append(BlockPlan("mlp", "top", {"hidden": _int(4)}, sources=[pick(draw, given)]) if given else
                          BlockPlan("summary", "top", {"mode": V("mean", "mean")}, memory=pick(draw, sequences)))
            vectors = ["top"]
    outputs = [OutputPlan(f"o{k}", _int(draw(st.integers(1, 6))), pick(draw, ACTIVATIONS),
                          draw(st.lists(st.sampled_from(vectors), min_size=1, max_size=2, unique=True)))
               for k in range(draw(st.integers(1, 2)) if vectors else 0)]
    plan = Plan("fuzz", inputs, outputs, blocks)
    return renamed(draw, sized_from_task(draw, plan, wild=False), wild=False)


plans = mostly(st.one_of(kind_plans(), memory_plans(), graph_plans()), soup_plans(), odds=3)
"""Plans of the four kinds: a block kind's small spec, a memory with heads, a graph of any blocks wired by what
they declare, statements of any kind (one in 4)."""

# -- writing a plan as .cog text -----------------------------------------------------------------------------


def _cog_params(params: dict[str, V]) -> str:
    return ", ".join(f"{k}={v.cog}" for k, v in params.items())


def _cog_table(table: dict[str, Any], sep: str) -> str:
    entries = []
    for key, entry in table.items():
        if isinstance(entry, Call):
            entries.append(f"{key} {entry.name}({_cog_params(entry.params)})")
        elif isinstance(entry, dict):
            entries.append(f"{key} {_cog_table(entry, sep)}")
        else:
            entries.append(f"{key} {entry.cog}")
    return "{" + sep + sep.join(entries) + sep + "}"


def to_cog(plan: Plan, sep: str = "\n") -> str:
    """``plan`` as .cog text, statements separated by ``sep`` (a new line, CRLF or ';')."""
    lines = []
    if plan.version is not None:
        lines.append(f"cogdsl {plan.version.cog}")
    lines.append(f"model {plan.model}")
    if plan.doc is not None:
        lines.append(f"doc {plan.doc.cog}")
    for item in plan.inputs:
        if item.kind is None:
            lines.append(f"input {item.name}" + (f": {item.size.cog}" if item.size is not None else ""))
        else:
            size = f"({SIZE_KEYS.get(item.kind, 'size')}={item.size.cog})" if item.size is not None else ""
            lines.append(f"input {item.name}: {item.kind}{size}")
    for out in plan.outputs:
        size = f": {out.size.cog}" if out.size is not None else ""
        sources = ", ".join(out.sources)
        lines.append(f"output {out.name}{size} = " + (f"{out.activation}({sources})" if out.activation else sources))
    for block in plan.blocks:
        line = f"{block.kind} {block.name}"
        if block.params:
            line += f"({_cog_params(block.params)})"
        if block.memory:
            line += f" on {block.memory}"
        if block.by:
            line += f" by {block.by}"
        if block.sources:
            line += " <- " + ", ".join(block.sources)
        if block.address is not None:
            line += f": {block.address}"
        lines.append(line)
    if plan.train is not None:
        lines.append("train " + _cog_table(plan.train, "\n  " if sep == "\n" else sep))
    return sep.join(lines) + sep


@cache
@st.composite
def cog_specs(draw: st.DrawFn) -> str:
    """A plan as .cog text, with text features: ';' or CRLF separators, comments (with control characters), a
    byte order mark, blanks and form feeds."""
    plan = draw(plans)
    text = to_cog(plan, draw(st.sampled_from(("\n", "\n", "\r\n", "; ", "\n\n"))))
    if draw(st.integers(0, 3)) == 0:
        lines = text.split("\n")
        at = draw(st.integers(0, len(lines) - 1))
        comment = draw(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\n"), max_size=8))
        line = lines[at].removesuffix("\r")  # a CRLF's CR stays at the end of the line
        lines[at] = f"{line}  # {comment}" + lines[at][len(line):]
        text = "\n".join(lines)
    if draw(st.integers(0, 3)) == 0:
        text = draw(st.sampled_from(("\ufeff", "\n", " ", "\t", "\f", "# head\n", ";"))) + text
    if draw(st.integers(0, 7)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.characters(exclude_categories=("Cs",))) + text[at:]
    return text


# -- writing a plan as YAML --------------------------------------------------------------------------------


class _Placeholders:
    """Raw YAML text in a dict to dump: each Raw becomes a plain word, written back after yaml.safe_dump."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def word(self, text: str) -> str:
        word = f"rawplaceholder{len(self.texts)}x"
        self.texts[word] = text
        return word

    def plain(self, value: Any) -> Any:
        if isinstance(value, Raw):
            return self.word(value.text)
        if isinstance(value, V):
            return self.plain(value.yaml)
        if isinstance(value, dict):
            return {self.plain(k): self.plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.plain(v) for v in value]
        return value

    def restore(self, text: str) -> str:
        for _ in range(3):  # a raw text may hold placeholders itself (an anchored flow mapping)
            text = re.sub(r"rawplaceholder\d+x", lambda m: self.texts[m.group()], text)
        return text


def _yaml_table(table: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, entry in table.items():
        if isinstance(entry, Call):
            out[key] = {"name": entry.name, **{k: v.yaml for k, v in entry.params.items()}}
        elif isinstance(entry, dict):
            out[key] = _yaml_table(entry)
        else:
            out[key] = entry.yaml
    return out


def to_dict(plan: Plan) -> dict[str, Any]:
    """``plan`` as the dict a YAML spec holds (Raw values still in it)."""
    data: dict[str, Any] = {"cogdsl": plan.version.yaml if plan.version is not None else 1, "model": plan.model}
    if plan.doc is not None:
        data["doc"] = plan.doc.yaml
    inputs: dict[str, Any] = {}
    for item in plan.inputs:
        size = item.size.yaml if item.size is not None else None
        inputs[item.name] = size if item.kind is None else {"kind": item.kind, SIZE_KEYS.get(item.kind, "size"): size}
    outputs: dict[str, Any] = {}
    for out in plan.outputs:
        fields: dict[str, Any] = {"from": list(out.sources)}
        if out.size is not None:
            fields["size"] = out.size.yaml
        if out.activation is not None:
            fields["activation"] = out.activation
        outputs[out.name] = fields
    blocks: dict[str, Any] = {}
    for block in plan.blocks:
        fields = {"kind": block.kind, **{k: v.yaml for k, v in block.params.items()}}
        for key, value in (("memory", block.memory), ("by", block.by), ("address", block.address)):
            if value is not None:
                fields[key] = value
        if block.sources:
            fields["from"] = list(block.sources)
        blocks[block.name] = fields
    data.update(inputs=inputs, outputs=outputs, blocks=blocks)
    if plan.train is not None:
        data["train"] = _yaml_table(plan.train)
    return data


def _multiline(address: str, style: str) -> Raw:
    """An addressing expression as a YAML string over several lines, escaped, or in a block scalar."""
    parts = address.split(" | ")
    indent = "\n" + " " * 8
    if style == "double":
        return Raw('"' + (indent + "| ").join(p.replace("\\", "\\\\").replace('"', '\\"') for p in parts) + '"')
    if style == "escaped":
        return Raw('"' + address.replace("\\", "\\\\").replace('"', '\\"').replace("|", "\\x7c")
                   .replace("(", "\\u0028") + '"')
    if style == "single":
        return Raw("'" + (indent + "| ").join(p.replace("'", "''") for p in parts) + "'")
    if style == "folded":
        return Raw(">-" + indent + (indent + "| ").join(parts))
    if style == "literal":
        return Raw("|" + indent + (indent + "| ").join(parts))
    return Raw((indent + "| ").join(parts))  # plain, over several lines


def _respelled(draw: st.DrawFn, value: Any) -> Any:
    """A block's field in another spelling that YAML reads as the same value: a tagged or hexadecimal integer,
    an anchored value, a tagged string."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return Raw(pick(draw, (f"!!int {value}", hex(value), f"0o{value:o}", f"+{value}", f"&num {value}",
                               f"!<tag:yaml.org,2002:int> {value}")))
    if isinstance(value, str) and value.isidentifier():
        return Raw(pick(draw, (f"!!str {value}", f"'{value}'", f'"{value}"', f"&word {value}")))
    return value


@cache
@st.composite
def yaml_specs(draw: st.DrawFn) -> str:
    """A plan as YAML text: yaml.safe_dump of its dict (block or flow style), with YAML's own features. Half the
    time only those that keep it the same spec (multi-line and escaped addresses, tagged, hexadecimal and
    anchored values, a block repeated by an alias, a byte order mark, document markers, CRLF); otherwise any
    (tags that construct objects or do not fit, merge keys, a billion laughs, a second document, lone CRs,
    NEL and U+2028 line ends, control characters)."""
    wild = draw(st.booleans())
    data = to_dict(draw(plans))
    flow = pick(draw, (False, None, True))
    blocks: dict[str, Any] = data["blocks"]
    for fields in blocks.values():
        if isinstance(fields.get("address"), str) and draw(st.integers(0, 2)) == 0:
            styles = ("double", "escaped", "single", *(("folded", "literal", "plain") if not flow or wild else ()))
            fields["address"] = _multiline(fields["address"], pick(draw, styles))
        if draw(st.integers(0, 4)) == 0:
            key = pick(draw, sorted(fields, key=str))
            fields[key] = Raw(pick(draw, YAML_ONLY_NUMBERS + YAML_FEATURES)) if wild else _respelled(draw, fields[key])
    if blocks and draw(st.integers(0, 5)) == 0:  # one block repeated by an alias, or merged into another
        first = next(iter(blocks))
        holder = _Placeholders()
        written = yaml.safe_dump(holder.plain(blocks[first]), default_flow_style=True, width=2**20).strip()
        blocks[first] = Raw("&blk " + holder.restore(written))
        name, merged = draw(tame_names), wild and often(draw, 1)
        if name not in blocks:
            blocks[name] = {Raw("<<"): Raw("*blk"), "kind": pick(draw, KINDS)} if merged else Raw("*blk")
    if wild and draw(st.integers(0, 9)) == 0:
        depth, width = draw(st.integers(1, 12)), draw(st.integers(1, 10))
        levels = [f"l0: &l0 [{', '.join(['1'] * width)}]"]
        levels += [f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * width)}]" for k in range(1, depth)]
        data[pick(draw, ("train", "blocks", "laughs"))] = Raw("{" + ", ".join(levels) + "}")
    holder = _Placeholders()
    text = yaml.safe_dump(holder.plain(data), sort_keys=False, default_flow_style=flow,
                          allow_unicode=draw(st.booleans()), width=pick(draw, (2**20, 40)))
    text = holder.restore(text)
    if draw(st.integers(0, 3)) == 0:
        wild_heads = ("%YAML 1.2\n---\n", "%TAG ! tag:x,1:\n---\n", "\t", "\ufeff\ufeff") if wild else ()
        text = pick(draw, ("\ufeff", "---\n", "%YAML 1.1\n---\n", "# comment\n", "\n\n", *wild_heads)) + text
    if draw(st.integers(0, 4)) == 0:
        wild_tails = ("---\nmodel: other\n", "\x00", " \t\n", "---") if wild else ()
        text += pick(draw, ("...\n", "# end", " \n", *wild_tails))
    if draw(st.integers(0, 4)) == 0:
        text = text.replace("\n", pick(draw, ("\r\n", *(("\r", "\x85", "\u2028") if wild else ()))))
    if wild and draw(st.integers(0, 2)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.characters(exclude_categories=("Cs",))) + text[at:]
    return text


# -- mutations of the library's specs ---------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE]-?\d+)?(?![\w.])")
_NAME_RE = re.compile(r"\b[A-Za-z_]\w*\b")
_CONTROL = st.sampled_from([chr(c) for c in (*range(0x20), 0x7F, 0x85, 0xA0, 0x2028, 0x2029, 0x202E, 0xFEFF)])


def _replace_nth(pattern: re.Pattern[str], text: str, index: int, new: str) -> str:
    found = list(pattern.finditer(text))
    if not found:
        return text
    match = found[index % len(found)]
    return text[: match.start()] + new + text[match.end():]


_ANY_NUMBER_TEXT = st.one_of(st.sampled_from((*NUMBER_TEXTS, *YAML_ONLY_NUMBERS, "nan")), long_numbers)


def mutation(draw: st.DrawFn, text: str) -> str:
    """One change to ``text``: a character inserted (a control character often), a slice deleted, a line
    duplicated, deleted or swapped, a number swapped for an extreme one, a name for a hostile one, the text cut."""
    op = draw(st.sampled_from(("insert", "control", "delete", "duplicate", "drop", "swap", "number", "name",
                               "truncate", "indent", "crlf")))
    at = draw(st.integers(0, len(text)))
    lines = text.split("\n")
    k, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    if op == "insert":
        return text[:at] + draw(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=4)) + text[at:]
    if op == "control":
        return text[:at] + draw(_CONTROL) + text[at:]
    if op == "delete":
        return text[:at] + text[at + draw(st.integers(1, 20)):]
    if op == "duplicate":
        return "\n".join([*lines[: k + 1], lines[k], *lines[k + 1:]])
    if op == "drop":
        return "\n".join(lines[:k] + lines[k + 1:])
    if op == "swap":
        lines[k], lines[j] = lines[j], lines[k]
        return "\n".join(lines)
    if op == "number":
        new = draw(_ANY_NUMBER_TEXT)
        return _replace_nth(_NUMBER, text, draw(st.integers(0, 200)), new)
    if op == "name":
        return _replace_nth(_NAME_RE, text, draw(st.integers(0, 400)), draw(any_names))
    if op == "truncate":
        return text[:at]
    if op == "indent":
        lines[k] = draw(st.sampled_from(("\t", " ", "  ", ""))) + lines[k].lstrip()
        return "\n".join(lines)
    return text.replace("\n", "\r\n")


@cache
@st.composite
def mutated_specs(draw: st.DrawFn) -> tuple[str, str]:
    """(form, text): a library spec with one to four mutations, read now and then in the other form."""
    form, text = draw(st.sampled_from(LIBRARY))
    for _ in range(draw(st.integers(1, 4))):
        text = mutation(draw, text)
    if draw(st.integers(0, 9)) == 0:
        form = "yaml" if form == "cog" else "cog"
    return form, text


raw_texts = st.tuples(st.sampled_from(("cog", "yaml")),
                      st.text(st.one_of(st.characters(exclude_categories=("Cs",)),
                                        st.sampled_from(list(":{}[](),|+@<-=;#\"'&*!\n\t -.0123456789"))),
                              max_size=80))
"""(form, text): any short text, heavy in the grammar's and YAML's punctuation."""
