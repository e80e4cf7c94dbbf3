"""What ``cogdsl compile --explain`` prints: step order, interface layouts, parameters per block."""

from __future__ import annotations

from cogdsl.blocks import REGISTRY
from cogdsl.blocks.addressing import ResolvedStage
from cogdsl.blocks.base import LookKind
from cogdsl.blocks.dnc import CONTENT_MODIFIERS
from cogdsl.footprint import bytes_text, measure, memory_limit, training_batch
from cogdsl.lower import CompiledModel


def _table(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _stage(stage: ResolvedStage) -> str:
    return stage.name + (f"({', '.join(str(v) for _, v in stage.args)})" if stage.args else "")


def _terms(stages: tuple[ResolvedStage, ...], joiner: str) -> str:
    return joiner.join(_stage(s) for s in stages)


def _mixture(stages: tuple[ResolvedStage, ...]) -> str:
    """A dnc_memory address as written: terms joined by ' + ', and content piped into lru and hard."""
    terms: list[str] = []
    for stage in stages:
        if stage.name in CONTENT_MODIFIERS:
            terms[-1] += " | " + _stage(stage)
        else:
            terms.append(_stage(stage))
    return " + ".join(terms)


_UPDATES = {"add": "u <- u + o", "linear": "u <- H u + o", "rotate": "u <- R_k(u + o)"}


def _layer(model: CompiledModel, name: str) -> str:
    """A story memory or a reasoning block, in one line."""
    block = next(b for b in model.spec.blocks if b.name == name)
    params, shapes = model.shapes.params[name], model.shapes
    source = block.sources[0].name
    if name not in model.read_memory:
        encoding = params["encoding"] + (" + temporal" if params["temporal"] else "")
        empty = f", {params['random_empty']:g} random empty slots while training" if params["random_empty"] else ""
        return (f"{block.kind} {name}: the {params['slots']} most recent sentences of {source}, one slot each, "
                f"{encoding} encoding, {shapes.tables[name]} table(s) of {shapes.vocabs[name]} x "
                f"{params['embedding']}{empty}")
    memory, plan = model.read_memory[name], shapes.read_plans[name]
    if block.kind == "episodes":
        return (f"episodes {name} on {memory}: question {source} through a GRU, {params['count']} episodes of "
                f"{params['gate']} fact gates and an attention GRU, "
                + ("memory GRU across episodes" if params["update"] == "gru"
                   else "memory m <- ReLU(W_i [m; e_i; q] + b_i), one layer per episode"))
    tied = [output for output, reader in shapes.tied_answers.items() if reader == name]
    return (f"hops {name} on {memory}: question {source} by table {plan.query_table}, {params['count']} hops "
            f"(keys by tables {','.join(map(str, plan.key_tables))}, values by tables "
            f"{','.join(map(str, plan.value_tables))}), {_UPDATES[plan.update]}"
            + (f"; output {tied[0]}'s weight is table {plan.value_tables[-1]}" if tied else ""))


_SCORES = {"additive": "v . tanh(W q + U k)", "dot": "q . k", "general": "q^T W k", "scaled_dot": "(W q) . k / sqrt(D)"}


def _sequence_unit(model: CompiledModel, unit: str, name: str) -> str:
    """An encoder or an attention block, in one line."""
    block = next(b for b in model.spec.blocks if b.name == name)
    params, shapes = model.shapes.params[name], model.shapes
    sources = ", ".join(str(r) for r in block.sources)
    if block.kind == "conv":
        return (f"encoder {name}: {params['layers']} x (conv {params['kernel']}x{params['kernel']}, relu"
                + (f", max-pool {params['pool']}" if params["pool"] > 1 else "") + f") over the image {sources}, "
                f"-> (B, regions, {shapes.sizes[name]}), at the first step only (kept in the state)")
    if block.kind == "glimpse":
        return (f"glimpse {name}: location ~ N(tanh(W [{sources}]), {params['std']}²) on {model.attended[name]}, "
                f"{params['scales']} patch(es) of {params['size']}x{params['size']} -> {shapes.sizes[name]}; "
                "learns where to look by REINFORCE")
    if block.kind == "spatial_transformer":
        return (f"spatial_transformer {name}: {params['transform']} transform = W [{sources}] + b (identity at first) "
                f"samples a {params['size']}x{params['size']} patch of {model.attended[name]} -> {shapes.sizes[name]}")
    if block.kind in ("draw_read", "draw_write"):
        grid = f"a {params['n']}x{params['n']} grid of Gaussian filters placed by [{sources}]"
        return (f"draw_read {name}: {grid} reads {model.attended[name]} -> {shapes.sizes[name]}"
                if block.kind == "draw_read" else
                f"draw_write {name}: {grid} adds a patch to a {params['size']}x{params['size']} canvas (its state) "
                f"-> {shapes.sizes[name]}")
    if unit == "encoder":
        what = (f"{params['layers']} self-attention layer(s), {params['heads']} head(s)"
                + (", causal" if params["causal"] else "") if block.kind == "self_attention"
                else f"{'bidirectional ' if params['bidirectional'] else ''}{params['cell']}")
        return (f"encoder {name}: {what} over the whole of {sources}, (B, S, {shapes.input_sizes[name]}) -> "
                f"(B, S, {shapes.sizes[name]}), at the first step only (kept in the state)")
    kind = REGISTRY[block.kind]
    if issubclass(kind, LookKind):
        return kind.describe(name, params, sources, model.attended.get(name), shapes.sizes[name])
    target = model.attended[name]
    over = f"memory {target} as of the previous step" if target in model.memories else target
    if block.kind == "summary":
        how = "its mean" if params["mode"] == "mean" else "its final state"
        return f"summary {name}: {target} as one vector, {how} ({shapes.sizes[name]}), no attention"
    return (f"attention {name}: query [{sources}] ({shapes.input_sizes[name]}) over {over}, "
            f"{params['heads']} head(s), score {_SCORES[params['score']]}, softmax -> "
            + ("one element sampled (REINFORCE)" if params["mode"] == "hard" else "context") + f" {shapes.sizes[name]}")


def explain(model: CompiledModel) -> str:
    """A human-readable account of a compiled model."""
    spec, shapes = model.spec, model.shapes
    blocks = {b.name: b for b in spec.blocks}
    total = sum(p.numel() for p in model.parameters())
    lines = [f"model {spec.name}: {total:,} parameters", "", "one time step:"]
    for number, (unit, name) in enumerate(model.order, start=1):
        if unit == "controller":
            block = blocks[name]
            sources = ", ".join(str(r) for r in block.sources)
            text = (f"controller {name}: {block.kind}, {shapes.input_sizes[name]} -> {shapes.sizes[name]} "
                    f"from [{sources}]")
            if name in shapes.interface_sizes:
                text += f", interface {shapes.interface_sizes[name]}"
        elif unit == "group":
            plan = shapes.groups[int(name)]
            heads = ", ".join(f"{b} x{n}" for b, n in plan.reads + plan.writes)
            group = model.groups[int(name)]
            if group.owns_memory:
                text = f"heads {heads} on {plan.memory} by {plan.controller}: usage"
                if plan.writes:
                    text += f", write ({_mixture(plan.write_stages)}), temporal links"
                if plan.reads:
                    modes = ", ".join(group.modes)
                    text += f", then read the new memory ({_mixture(plan.stages)}; modes {modes})"
                if group.lru_keys:
                    text += f"; {' and '.join(group.lru_keys)} content keep the moving average of their logits"
                if group.entropy_weights:
                    text += f"; {' and '.join(group.entropy_weights)} content sample one slot per head (REINFORCE)"
                lines.append(f"  {number}. {text}")
                continue
            text = f"heads {heads} on {plan.memory} by {plan.controller}: address ({_terms(plan.stages, ' | ')})"
            if group.address_width:
                text += f" over each slot's learned address ({group.address_width}) and content ({group.width})"
            if group.lru_decay is not None:
                text += ", keeping the moving average of its content logits"
            if group.samples:
                text += ", one sampled slot per head (REINFORCE)"
            if plan.reads:
                text += ", read the memory as of the previous step"
            if model.fused[int(name)]:
                text += "; one ntm_memory_step call with the write (a fused kernel on CUDA)"
        elif unit == "layer":
            text = _layer(model, name)
        elif unit in ("encoder", "attention"):
            text = _sequence_unit(model, unit, name)
        elif unit == "output":
            output = next(o for o in spec.outputs if o.name == name)
            activation = output.activation.data if output.activation else "none"
            text = (f"output {name}: {activation}({shapes.logits_of[name]}), its value as the logits, no layer"
                    if name in shapes.logits_of else
                    f"output {name}: {activation}(linear {shapes.input_sizes[name]} -> {shapes.sizes[name]}) "
                    f"from [{', '.join(str(r) for r in output.sources)}]")
        else:
            writers = [b for plan in shapes.groups if plan.memory == name for b, _ in plan.writes]
            text = f"write {name}: erase and add of {', '.join(writers)} (seen by reads from the next step)"
        lines.append(f"  {number}. {text}")
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
    """The bytes the model holds (:mod:`cogdsl.footprint`) against the memory limit."""
    measured = measure(model)
    batch = training_batch(model.spec)
    floats = sum(p.numel() for p in model.parameters())
    return (f"memory: parameters {bytes_text(measured.parameters)} ({floats:,} numbers); state "
            f"{bytes_text(measured.state_bytes)} per sequence, {bytes_text(batch * measured.state_bytes)} for a "
            f"batch of {batch}; {bytes_text(measured.total(batch))} of the limit {bytes_text(memory_limit())} "
            "(training adds gradients, optimizer moments and each step's activations)")
