"""Which heads run together: the head groups of a spec, as each memory kind forms them.

Used by the validator (which reports problems with a memory's heads as a whole, such as a
``dnc_memory`` driven by two controllers) and by shape inference (which lays out each group's
interface fields). Heads whose references, parameters or addressing are invalid are left out
here; the validator reports those where the head is defined.
"""

from __future__ import annotations

from cogdsl.blocks import REGISTRY
from cogdsl.blocks.base import check_params
from cogdsl.blocks.heads import GroupPlan, HeadUse
from cogdsl.errors import DiagnosticSink
from cogdsl.language.parse_cog import parse_address
from cogdsl.language.spec import Block, Spec


def _family(block: Block | None) -> str | None:
    kind = REGISTRY.get(block.kind) if block is not None else None
    return kind.family if kind is not None else None


def plan_groups(spec: Spec, sink: DiagnosticSink) -> tuple[GroupPlan, ...]:
    """Every head group of ``spec``, ordered by the position of each group's first head block."""
    blocks: dict[str, Block] = {}
    for block in spec.blocks:
        blocks.setdefault(block.name, block)
    uses: dict[str, list[HeadUse]] = {}
    broken: set[str] = set()  # memories with a head left out: their heads as a whole are not judged
    for block in spec.blocks:
        kind = REGISTRY.get(block.kind)
        if kind is None or kind.family != "head" or block.memory is None or block.by is None:
            continue
        memory, controller = blocks.get(block.memory.name), blocks.get(block.by.name)
        if memory is None or _family(memory) != "memory" or _family(controller) != "controller":
            continue
        if REGISTRY[memory.kind].read_by != "head":
            continue  # reported by the validator: heads cannot address a story memory
        quiet = DiagnosticSink()
        heads = check_params(kind.params, block.params, block.param_span, block.name, block.span, quiet)["heads"]
        memory_kind = REGISTRY[memory.kind]
        address = block.address or parse_address(memory_kind.default_address(kind.writes), block.span)
        stages = memory_kind.resolve_address(address, block.name, quiet, kind.writes)
        if stages is None or heads is None:
            broken.add(memory.name)
            continue
        uses.setdefault(memory.name, []).append(
            HeadUse(block.name, block.by.name, kind.writes, heads, stages, block.span))
    plans: list[GroupPlan] = []
    for memory, heads in uses.items():
        if memory in broken:
            continue
        plans += REGISTRY[blocks[memory].kind].plan_groups(memory, heads, sink)
    position = {block.name: index for index, block in reversed(list(enumerate(spec.blocks)))}
    return tuple(sorted(plans, key=lambda plan: min(position[name] for name, _ in plan.reads + plan.writes)))
