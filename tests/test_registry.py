"""A contract over every registered block kind and addressing stage: declared as data, documented, used."""

from __future__ import annotations

from pathlib import Path

import pytest

import cogdsl
from cogdsl.blocks import REGISTRY
from cogdsl.blocks.addressing import STAGES

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.*"))


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_kind_is_declared_completely(kind: str) -> None:
    cls = REGISTRY[kind]
    assert cls.kind == kind
    assert cls.family in {"controller", "memory", "head", "reasoning", "encoder", "attention"}
    assert cls.doc and cls.doc[0].isupper()
    assert cls.requires <= cls.accepts
    names = [p.name for p in cls.params]
    assert len(names) == len(set(names))
    for param in cls.params:
        assert param.type in (int, float, str, bool)
        if not param.required and param.choices is not None:
            assert param.default in param.choices


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_kind_has_a_spec_in_the_library(kind: str) -> None:
    used = {block.kind for path in SPECS for block in cogdsl.load(path).blocks}
    assert kind in used, f"no spec in specs/ uses '{kind}'"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_declares_fields(stage: str) -> None:
    kind = STAGES[stage]
    defaults = {p.name: p.default for p in kind.args}
    memories = {k for k, c in REGISTRY.items() if stage in getattr(c, "stages", ())}  # who takes it
    assert memories and all(REGISTRY[k].family == "memory" for k in memories)
    for memory in memories:
        fields = kind.fields(defaults, 7, memory)
        # hard only samples from the weighting before it: it asks the controller for nothing
        assert (fields or stage == "hard") and all(f.size >= 1 for f in fields)
        assert all(f.activation in {"identity", "softplus", "oneplus", "sigmoid", "softmax"} for f in fields)
