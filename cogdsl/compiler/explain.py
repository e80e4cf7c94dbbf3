"""What ``cogdsl compile --explain`` prints: step order, interface layouts, parameters per block.

Each step's line is its unit's own :meth:`~cogdsl.blocks.runtime.Unit.describe`: nothing here knows a kind."""

from __future__ import annotations

from cogdsl.compiler.footprint import bytes_text, measure, memory_limit, training_batch
from cogdsl.compiler.lower import CompiledModel


def _table(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def explain(model: CompiledModel) -> str:
    """A human-readable account of a compiled model."""
    spec, shapes = model.spec, model.shapes
    blocks = {b.name: b for b in spec.blocks}
    total = sum(p.numel() for p in model.parameters())
    lines = [f"model {spec.name}: {total:,} parameters", "", "one time step:"]
    described = [text for text in (unit.describe() for unit in model.units) if text is not None]
    lines += [f"  {number}. {text}" for number, text in enumerate(described, start=1)]
    for controller, layout in shapes.interfaces.items():
        lines += ["", f"interface of {controller} ({shapes.sizes[controller]} -> "
                      f"{shapes.interface_sizes[controller]}, clamped to ±{model.clips[controller]:g}):"]
        rows = [("offset", "size", "field", "heads", "activation")]
        for index, field in layout:
            plan = shapes.groups[index]
            names = [b for b, n in plan.reads + plan.writes for _ in range(n)][field.first_head:
                                                                               field.first_head + field.heads]
            rows.append((str(field.offset), f"{field.heads}x{field.size}", field.name, ",".join(dict.fromkeys(names)),
                         field.activation))
        lines += _table(rows)
    lines += ["", "parameters per block:"]
    counts = model.parameter_counts()
    rows = [("block", "kind", "parameters")]
    for name, count in counts.items():
        kind = blocks[name].kind if name in blocks else "output"
        rows.append((name, kind, f"{count:,}"))
    lines += _table(rows)
    return "\n".join([*lines, "", _memory(model)])


def _memory(model: CompiledModel) -> str:
    """The bytes the model holds (:mod:`cogdsl.compiler.footprint`) against the memory limit."""
    measured = measure(model)
    batch = training_batch(model.spec)
    floats = sum(p.numel() for p in model.parameters())
    return (f"memory: parameters {bytes_text(measured.parameters)} ({floats:,} numbers); state "
            f"{bytes_text(measured.state_bytes)} per sequence, {bytes_text(batch * measured.state_bytes)} for a "
            f"batch of {batch}; {bytes_text(measured.total(batch))} of the limit {bytes_text(memory_limit())} "
            "(training adds gradients, optimizer moments and each step's activations)")
