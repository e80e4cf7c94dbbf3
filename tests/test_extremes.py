"""Every parameter at its extremes (issue 21): each registered block kind, wired into a small spec, with
one parameter at a time at its minimum, at 1, and at a moderately large value (its maximum, or 512 for a
size whose maximum would allocate gigabytes), each choice and each truth value, and memories of one slot
of width 1 with one head and a controller of hidden size 1. Each case either validates, compiles and runs
a forward step and a backward pass with finite outputs and gradients, or is refused by validation with a
SpecError; nothing else (a KeyError at compile, a shape error in the forward step, NaN outputs).

Also: a non-finite number (NaN, inf) is refused for every float parameter (blocks, addressing stages,
tasks, the optimizer, the train settings); every numeric task parameter declares a maximum; and block
names that are attributes of torch's own modules (``training``, ``_modules``, ``keys``) compile, run and
round-trip through ``state_dict`` and checkpoints, with the names that worked before stored as before.

The whole file runs in well under a minute on one core: batch 2, 2 steps, sizes of a few units.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import cogdsl
from cogdsl.blocks import REGISTRY
from cogdsl.blocks.addressing import STAGES
from cogdsl.blocks.base import Param
from cogdsl.blocks.named import stored_key
from cogdsl.compiler.lower import CompiledModel
from cogdsl.compiler.pipeline import compile_spec, parse_text
from cogdsl.errors import SpecError
from cogdsl.tasks import TASKS
from cogdsl.training.config import OPTIMIZERS, SETTINGS

LARGE = 512  # the moderately large size: far past the small defaults, small enough to allocate at once
LARGE_FLOAT = 1e30  # a float parameter with no declared bound: any finite number is in range
BATCH, STEPS = 2, 2

# Tiny memories take the default address's shift(1) on 1 or 2 slots (W401) on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::cogdsl.errors.SpecWarning")



@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One torch thread, as training uses: these ops are far too small to split, and a second thread waiting
    on a busy core makes each one take milliseconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- a small spec around each kind: each kind declares its own (BlockKind.example, with {params} where the
# kind's parameter list goes, and example_params: small values of the ones it needs) -----------------------

SPECS: dict[str, str] = {kind: REGISTRY[kind].example for kind in REGISTRY}
BASE: dict[str, dict[str, Any]] = {kind: dict(REGISTRY[kind].example_params) for kind in REGISTRY}


def spelled(value: Any) -> str:
    """A value as a .cog file writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def spec_text(kind: str, params: dict[str, Any]) -> str:
    listed = ", ".join(f"{name}={spelled(value)}" for name, value in params.items())
    return "model extremes\n" + SPECS[kind].format(kind=kind, params=listed, canvas=params.get("size", 8) ** 2)


def extremes(param: Param) -> list[Any]:
    """The values one parameter is tried at."""
    if param.choices is not None:
        return list(param.choices)
    if param.type is bool:
        return [True, False]
    if param.type is int:
        low = int(param.minimum) if param.minimum is not None else -LARGE
        high = int(param.maximum) if param.maximum is not None else LARGE
        return sorted({low, max(low, 1), min(high, LARGE)})
    if param.type is float:
        low = param.minimum if param.minimum is not None else -LARGE_FLOAT
        high = param.maximum if param.maximum is not None else LARGE_FLOAT
        return sorted({float(low), float(high)})
    return []  # a name parameter without choices: none here


@dataclass(frozen=True)
class Case:
    kind: str
    param: str | None  # None: the kind's small spec as it is
    value: Any
    text: str


def _cases() -> list[Any]:
    cases = []
    for kind in sorted(REGISTRY):
        base = BASE.get(kind, {})
        cases.append(pytest.param(Case(kind, None, None, spec_text(kind, base)), id=f"{kind}-base"))
        for param in REGISTRY[kind].params:
            for value in extremes(param):
                case = Case(kind, param.name, value, spec_text(kind, {**base, param.name: value}))
                cases.append(pytest.param(case, id=f"{kind}-{param.name}={spelled(value)}"))
    return cases


CASES = _cases()

# -- running one spec -------------------------------------------------------------------------------------


def inputs(model: CompiledModel) -> tuple[dict[str, torch.Tensor], int | None]:
    """A batch for every input of ``model``, and the steps to run when every input is given whole."""
    sizes, kinds = model.shapes.sizes, model.input_kinds
    story = "sentences" in kinds.values()  # a question answered at one step
    given: dict[str, torch.Tensor] = {}
    for name, kind in kinds.items():
        if kind == "vector":
            given[name] = torch.randn(BATCH, STEPS, sizes[name])
        elif kind == "sequence":
            given[name] = torch.randn(BATCH, 3, sizes[name])
        elif kind == "image":
            side = model.shapes.sides[name]
            given[name] = torch.rand(BATCH, side, side)
        elif kind == "words":
            given[name] = torch.randint(0, sizes[name], (BATCH, 1 if story else STEPS, 4))
        else:
            given[name] = torch.randint(0, sizes[name], (BATCH, 1, 3, 4))
    whole = all(kind in ("sequence", "image") for kind in kinds.values())
    return given, STEPS if whole else None


def outputs_of(model: CompiledModel, given: dict[str, torch.Tensor], steps: int | None) -> list[torch.Tensor]:
    y = model(given, steps=steps)
    return list(y.values()) if isinstance(y, dict) else [y]


@cache
def run(text: str) -> str:
    """'refused' for a spec validation refuses; else compile it and run it forward (training mode, then
    evaluation mode) and backward, asserting finite outputs and gradients, and return 'ran'."""
    torch.manual_seed(0)
    try:
        model = compile_spec(parse_text(text, "<extremes>", "cog"))
    except SpecError:
        return "refused"
    given, steps = inputs(model)
    ys = outputs_of(model, given, steps)
    assert all(bool(torch.isfinite(y).all()) for y in ys), "non-finite outputs"
    sum(y.sum() for y in ys).backward()
    bad = [name for name, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients of {bad}"
    model.eval()
    with torch.no_grad():
        assert all(bool(torch.isfinite(y).all()) for y in outputs_of(model, given, steps)), "non-finite in eval"
    return "ran"


# -- every kind, every parameter at its extremes ----------------------------------------------------------


def test_every_kind_has_a_small_spec() -> None:
    assert all(SPECS[kind] for kind in REGISTRY), "give each kind an example spec (BlockKind.example)"


@pytest.mark.parametrize("case", CASES)
def test_parameter_at_its_extreme_runs_or_is_refused(case: Case) -> None:
    outcome = run(case.text)
    if case.param is None:
        assert outcome == "ran", f"the small spec of {case.kind} must run:\n{case.text}"


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_each_parameter_runs_at_some_extreme(kind: str) -> None:
    """Refusal is allowed case by case, but every parameter of every kind runs at one of its extremes at least
    (or the small spec would hide its crashes behind a refusal)."""
    refused_throughout = []
    for param in REGISTRY[kind].params:
        outcomes = {run(spec_text(kind, {**BASE.get(kind, {}), param.name: value})) for value in extremes(param)}
        if outcomes == {"refused"}:
            refused_throughout.append(param.name)
    assert not refused_throughout, f"{kind}: no extreme of {refused_throughout} runs"


# -- memories of one slot of width 1, one head, controllers of hidden size 1, addressing at its extremes ---

_NTM = ("model tiny\ninput x: {x}\noutput y: {y} = sigmoid(c, r)\n{controller} c(hidden={hidden}) <- x, r@prev\n"
        "{memory} mem({params})\nread r(heads={reads}) on mem by c: {read}\n"
        "write w(heads={writes}) on mem by c: {write}\n")
_NTM_ADDRESS = "content(cosine) | gate | shift(1) | sharpen"
_DEFAULTS = {"x": 3, "y": 2, "controller": "lstm", "hidden": 6, "memory": "memory", "params": "slots=4, width=3",
             "reads": 1, "writes": 1, "read": _NTM_ADDRESS, "write": _NTM_ADDRESS}
_DNC = {"memory": "dnc_memory", "read": "backward + content(cosine) + forward", "write": "content(cosine) + allocate"}

TINY = {
    "ntm-one-slot-width-1-hidden-1": {"x": 1, "y": 1, "hidden": 1, "params": "slots=1, width=1"},
    "ntm-width-1": {"params": "slots=4, width=1"},
    "ntm-width-1-address-1": {"params": "slots=1, width=1, address_width=1"},
    "ntm-width-1-64-heads": {"params": "slots=3, width=1", "reads": 64, "writes": 64},
    "ntm-every-stage-at-its-extremes": {
        "params": "slots=1, width=1",
        "read": "content(dot) | lru(0.99) | gate | shift(64) | sharpen | hard(10.0)",
        "write": "content(cosine) | lru(0) | gate | shift(64) | sharpen | hard(0)"},
    "ntm-shift-wider-than-memory": {"params": "slots=2, width=1", "read": "content(cosine) | shift(64)",
                                    "write": "content(cosine) | shift(64)"},
    "ntm-content-only": {"params": "slots=1, width=1", "read": "content(cosine)", "write": "content(dot) | hard"},
    "ntm-gru-mlp-width-1": {"controller": "gru", "params": "slots=2, width=1"},
    "ntm-mlp-width-1": {"controller": "mlp", "params": "slots=2, width=1"},
    "ntm-largest-constant": {"params": "slots=4, width=2, init=constant, init_value=1000000.0"},
    "ntm-smallest-constant": {"params": "slots=4, width=2, init=constant, init_value=-1000000.0"},
    "ntm-random-widest": {"params": "slots=4, width=2, init=random, init_std=1000000.0"},
    "ntm-learned-widest": {"params": "slots=4, width=2, init=learned, init_std=1000000.0"},
    "ntm-learned-zero": {"params": "slots=4, width=2, init=learned, init_std=0.0"},
    "dnc-one-slot-width-1-hidden-1": {**_DNC, "x": 1, "y": 1, "hidden": 1, "params": "slots=1, width=1"},
    "dnc-width-1": {**_DNC, "params": "slots=4, width=1"},
    "dnc-width-1-64-heads": {**_DNC, "params": "slots=1, width=1", "reads": 64, "writes": 64},
    "dnc-every-stage": {**_DNC, "params": "slots=1, width=1",
                        "read": "backward + content(dot) | lru(0.99) | hard(10.0) + forward",
                        "write": "content(cosine) | lru(0) | hard(0) + allocate"},
    "dnc-allocate-only": {**_DNC, "params": "slots=2, width=1", "read": "content(cosine)", "write": "allocate"},
    "dnc-forward-only": {**_DNC, "params": "slots=2, width=1", "read": "forward", "write": "content(cosine)"},
    "dnc-largest-constant": {**_DNC, "params": "slots=4, width=2, init=constant, init_value=1000000.0"},
    "dnc-random-widest": {**_DNC, "params": "slots=4, width=2, init=random, init_std=1000000.0, "
                                            "stop_usage_gradient=true"},
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_memories_run(name: str) -> None:
    assert run(_NTM.format(**{**_DEFAULTS, **TINY[name]})) == "ran"


def test_one_of_everything_small() -> None:
    """Inputs of size 1, sequences of one element, one-word sentences and a one-word vocabulary."""
    assert run("model t\ninput x: 1\noutput y: 1 = sigmoid(c)\nlstm c(hidden=1) <- x\n") == "ran"
    assert run("model t\ninput src: sequence(size=1)\noutput y: 1 = sigmoid(d, a)\n"
               "self_attention e(heads=1) <- src\nattention a on e <- d@prev\ngru d(hidden=1) <- a\n") == "ran"
    assert run("model t\ninput s: words(vocab=1)\noutput y: 1 = sigmoid(c)\nembed e(dim=1) <- s\n"
               "lstm c(hidden=1) <- e\n") == "ran"
    assert run("model t\ninput story: sentences(vocab=1)\ninput q: words(vocab=1)\noutput a: 1 = softmax(h)\n"
               "kv_memory m(embedding=1, slots=1) <- story\nhops h(count=1) on m <- q\n") == "ran"


# -- non-finite numbers are refused -----------------------------------------------------------------------

_YAML_CONTROLLER = """\
cogdsl: 1
model: t
inputs:
  x: 3
outputs:
  y: {{size: 2, from: [c], activation: sigmoid}}
blocks:
  c: {{kind: lstm, hidden: 4, from: [x]{block}}}
train:
  task: {{name: copy, bits: 2{task}}}
  optimizer: {{name: adam{optimizer}}}
{settings}"""


def diagnostics(text: str) -> list[tuple[str, str]]:
    """(code, message) of every problem validation finds in a YAML spec; empty when it passes."""
    try:
        cogdsl.compile(parse_text(text, "<t>.yaml", "yaml"))
    except SpecError as err:
        return [(d.code, d.message) for d in err.diagnostics]
    return []


NON_FINITE = {".nan": "nan", ".inf": "inf", "-.inf": "-inf"}


@pytest.mark.parametrize("spelling", sorted(NON_FINITE))
def test_non_finite_train_settings_optimizer_and_controller_params_are_refused(spelling: str) -> None:
    shown = NON_FINITE[spelling]
    text = _YAML_CONTROLLER.format(block=f", zoneout: {spelling}", task="", optimizer=f", lr: {spelling}",
                                   settings=f"  clip_norm: {spelling}\n")
    assert diagnostics(text) == [
        ("E205", f"lstm 'c': parameter 'zoneout' must be a finite number, found {shown}"),
        ("E603", f"optimizer adam: parameter 'lr' must be a finite number, found {shown}"),
        ("E603", f"train: parameter 'clip_norm' must be a finite number, found {shown}"),
    ]
    assert diagnostics(_YAML_CONTROLLER.format(block="", task="", optimizer="", settings="")) == []


def _float_params() -> list[Any]:
    """Every float parameter of every kind, addressing stage, optimizer and of the train section."""
    found = [pytest.param("block", kind, p, id=f"{kind}.{p.name}") for kind in sorted(REGISTRY)
             for p in REGISTRY[kind].params if p.type is float]
    found += [pytest.param("stage", stage, p, id=f"{stage}({p.name})") for stage in sorted(STAGES)
              for p in STAGES[stage].args if p.type is float]
    found += [pytest.param("optimizer", name, p, id=f"{name}.{p.name}") for name in sorted(OPTIMIZERS)
              for p in OPTIMIZERS[name] if p.type is float]
    found += [pytest.param("train", "train", p, id=f"train.{p.name}") for p in SETTINGS if p.type is float]
    return found


@pytest.mark.parametrize(("where", "owner", "param"), _float_params())
def test_every_float_parameter_refuses_nan_and_inf(where: str, owner: str, param: Param) -> None:
    """Each declaration checks a value through Param.check, whatever the block: NaN and inf never pass
    (a NaN compares false with every bound, so a range alone would let it through)."""
    from cogdsl.errors import DiagnosticSink, Span
    from cogdsl.language.spec import Value

    for value, shown in ((math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")):
        sink = DiagnosticSink()
        assert param.check(Value(value, Span("<t>", 1, 1)), Span("<t>", 1, 1), owner, sink) is None
        assert [(d.code, d.message) for d in sink.items] == [
            ("E205", f"{owner}: parameter '{param.name}' must be a finite number, found {shown}")]
        assert sink.items[0].hint and "allowed" in sink.items[0].hint
    if param.minimum is not None or param.maximum is not None:  # the bounds themselves still pass
        sink = DiagnosticSink()
        for bound in (param.minimum, param.maximum):
            if bound is not None:
                assert param.check(Value(float(bound), Span("<t>", 1, 1)), Span("<t>", 1, 1), owner, sink) == bound
        assert not sink.items


def test_nan_in_a_memory_is_refused_where_it_is_written() -> None:
    text = _YAML_CONTROLLER.format(block="", task="", optimizer="", settings="").replace(
        "  c: {kind: lstm, hidden: 4, from: [x]}",
        "  c: {kind: lstm, hidden: 4, from: [x, r@prev]}\n  mem: {kind: memory, slots: 4, width: 2, init_std: .nan}\n"
        "  r: {kind: read, memory: mem, by: c}\n  w: {kind: write, memory: mem, by: c}")
    assert diagnostics(text) == [("E205", "memory 'mem': parameter 'init_std' must be a finite number, found nan")]
    assert diagnostics(text.replace(".nan", "0.5")) == []


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_number_is_finite_and_bounded(name: str) -> None:
    """Each numeric task parameter declares a maximum (a length of 10**20 would overflow sampling), and NaN or
    inf is refused for each float one."""
    from cogdsl.tasks import TaskParamError

    for param in TASKS[name].params:
        if param.type in (int, float) and param.choices is None:
            assert param.maximum is not None, f"task '{name}': parameter '{param.name}' declares no maximum"
        if param.type is float:
            for value in (math.nan, math.inf, -math.inf):
                with pytest.raises(TaskParamError, match=f"'{param.name}' must be a finite number, found"):
                    param.check(value, name)


@pytest.mark.parametrize(("task", "param"), [("copy", "max_len"), ("repeat_copy", "max_repeats"),
                                             ("adding", "max_len"), ("priority_sort", "num_inputs"),
                                             ("graph_traversal", "max_path"), ("anbn", "concat")])
def test_a_huge_task_length_is_refused_by_validation(task: str, param: str) -> None:
    text = _YAML_CONTROLLER.format(block="", task="", optimizer="", settings="").replace(
        "{name: copy, bits: 2}", f"{{name: {task}, {param}: 99999999999999999999}}")
    found = diagnostics(text)
    assert found and found[0][0] == "E602" and f"parameter '{param}' must be an int in [" in found[0][1], found


def test_an_integer_past_int64_is_refused() -> None:
    """An int setting with no declared maximum still refuses what torch cannot hold (a .cog file could not
    even spell it)."""
    found = diagnostics(_YAML_CONTROLLER.format(block="", task="", optimizer="",
                                                settings="  seed: 9223372036854775808\n"))
    assert found == [("E603", "train: parameter 'seed' is 9223372036854775808, too large for an integer")]
    assert diagnostics(_YAML_CONTROLLER.format(block="", task="", optimizer="",
                                               settings="  seed: 9223372036854775807\n")) == []


# -- names that are torch's own ---------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def torch_names() -> list[str]:
    """Every name the grammar accepts that an nn.ModuleDict or nn.ParameterDict, its class or an instance,
    has as an attribute: ``training``, ``_modules``, ``_parameters``, the hook dictionaries, ``keys``, ...;
    ``__init__`` and its kin too."""
    names: set[str] = set()
    for container in (nn.ModuleDict, nn.ParameterDict):
        names |= set(dir(container)) | set(vars(container()))
    return sorted(name for name in names if _NAME.fullmatch(name) and name not in ("model", "input", "output"))


ROLES = 6  # controller, memory, read head, write head, output, and a second controller's name


def _named_spec(names: tuple[str, ...]) -> str:
    ctrl, mem, read, write, out, other = names
    return (f"model named\ninput x: 3\noutput {out}: 2 = sigmoid({ctrl}, {read})\n"
            f"lstm {ctrl}(hidden=5) <- x, {read}@prev, {out}@prev\nmemory {mem}(slots=3, width=2)\n"
            f"read {read} on {mem} by {ctrl}\nwrite {write} on {mem} by {ctrl}\n"
            f"gru {other}(hidden=2) <- x\noutput plain: 1 = {other}\n")


def _named_specs() -> list[Any]:
    """Specs that give every torch name each role once: the names in groups of ROLES, rotated."""
    names = torch_names()
    names += names[: -len(names) % ROLES]  # whole groups
    specs = []
    for start in range(0, len(names), ROLES):
        group = names[start:start + ROLES]
        for turn in range(ROLES):
            rotated = tuple(group[turn:] + group[:turn])
            specs.append(pytest.param(rotated, id=f"{start // ROLES}-{turn}"))
    return specs


@pytest.mark.parametrize("names", _named_specs())
def test_torch_names_compile_run_and_round_trip(names: tuple[str, ...]) -> None:
    text = _named_spec(names)
    torch.manual_seed(0)
    model = compile_spec(parse_text(text, "<names>", "cog"))
    x = torch.randn(BATCH, STEPS, 3)
    y = model(x)
    assert all(bool(torch.isfinite(v).all()) for v in y.values())
    ctrl, mem, read, _, out, other = names
    assert set(model.controllers) == {ctrl, other} and list(model.memories) == [mem]
    assert set(model.outputs.keys()) == {out, "plain"}
    assert read in model.groups[0].read_init
    torch.manual_seed(1)
    fresh = compile_spec(parse_text(text, "<names>", "cog"))
    fresh.load_state_dict(model.state_dict())  # strict: the same keys
    again = fresh(x)
    assert all(torch.equal(again[k], y[k]) for k in y)


def test_torch_names_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    names = ("training", "_modules", "_parameters", "_keys", "_forward_hooks", "keys")
    text = _named_spec(names)
    spec = parse_text(text, "<names>", "cog")
    torch.manual_seed(0)
    model = compile_spec(spec)
    path = cogdsl.save(model, tmp_path / "named.safetensors")
    restored = cogdsl.restore(path)
    x = torch.randn(BATCH, STEPS, 3)
    assert all(torch.equal(restored(x)[k], model(x)[k]) for k in model(x))
    assert restored.state_dict().keys() == model.state_dict().keys()


def test_names_that_worked_before_keep_their_parameter_names() -> None:
    """Only names that are torch's attributes are stored escaped: checkpoints of every other name still load."""
    text = _named_spec(("ctrl", "mem", "_r", "w", "y", "keys"))
    keys = set(compile_spec(parse_text(text, "<names>", "cog")).state_dict())
    assert {"controllers.ctrl.cells.0.weight_ih", "interfaces.ctrl.weight", "groups.0.read_init._r",
            "outputs.y.weight", "controllers.keys-.cells.0.weight_ih", "outputs.plain.weight"} <= keys
    for name in ("ctrl", "_r", "train_", "_foo", "modules_", "state", "hidden"):
        assert stored_key(name, nn.ModuleDict) == name and stored_key(name, nn.ParameterDict) == name
    for name in ("training", "_modules", "_parameters", "_buffers", "_backward_hooks", "_state_dict_hooks",
                 "keys", "values", "items", "update", "pop", "train"):
        assert stored_key(name, nn.ModuleDict) == f"{name}-"
    assert stored_key("_keys", nn.ParameterDict) == "_keys-"
