"""Addressing stages: the words of an addressing expression and the interface fields each needs.

An NTM head's weighting is built by a pipe of stages (Graves et al. 2014, section 3.3)::

    content(cosine) | gate | shift(1) | sharpen

    content  w^c = softmax_i(beta * K(k, M_i))       needs key k (W, identity), strength beta (1, softplus)
    lru      w^c = softmax_i(z_i - gamma v_i)         z = beta * K(k, M), v its moving average; needs gamma
                                                      (1, sigmoid) (Dynamic NTM, see cogdsl.blocks.dntm)
    gate     w^g = g w^c + (1 - g) w_{t-1}            needs gate g (1, sigmoid)
    shift    w~_i = sum_j w^g_{i-j} s_j               needs shift weights s (2s+1, softmax over offsets -s..s)
    sharpen  w_i = w~_i^gamma / sum_j w~_j^gamma      needs gamma (1, 1 + softplus, so gamma >= 1)
    hard     w = one_hot(i), i ~ w (argmax in eval)   no fields; learns by REINFORCE (Dynamic NTM)

Activations, and why: strengths only need to be positive, softplus keeps the gradient
alive for negative pre-activations (the NTM paper asks for beta > 0); gate and erase are
in [0, 1], so sigmoid; shift weights are a distribution, so softmax; sharpening must not
blur, so gamma = 1 + softplus >= 1 (the "oneplus" of the DNC paper).

A stage is added here, in :data:`STAGES`, with its arguments and fields; the validator,
the interface layout and the docs follow from the declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cogdsl.blocks.base import REGISTRY, Param, recode
from cogdsl.errors import DiagnosticSink, Span, hint_for
from cogdsl.language.spec import Address, Stage


@dataclass(frozen=True)
class Field:
    """One named slice of a controller's interface vector, per head."""

    name: str
    size: int
    activation: str  # identity | softplus | oneplus | sigmoid | softmax
    # One number per head by definition (a strength, a gate), given as (B, heads); other fields are
    # vectors, (B, heads, size), even of size 1 (the key of a memory of width 1).
    scalar: bool = False


@dataclass(frozen=True)
class StageKind:
    """Everything about one addressing stage, in one place: its arguments, the interface fields one head
    needs for it, the memory kinds it works on, and where it may stand: its place in an NTM pipe, its
    place among a dnc_memory's read or write terms, or after a content term (``content | lru | hard``).
    The validators, the interface layouts and the reference tables all read these; which memory kinds
    take it, each memory kind says itself (``MemoryKind.stages``)."""

    name: str
    doc: str
    args: tuple[Param, ...]
    # (arguments, slot width, memory kind) -> the fields one head needs for this stage
    fields: Callable[[dict[str, Any], int, str], tuple[Field, ...]]
    pipe: int | None = None  # its place in an NTM pipe (Graves et al. 2014, figure 2); None: not in one
    dnc_read: int | None = None  # its place among a dnc_memory read's terms (its read modes); None: not one
    dnc_write: int | None = None  # its place among a dnc_memory write's terms
    after_content: int | None = None  # its place after a content term in a dnc_memory mixture


@dataclass(frozen=True)
class ResolvedStage:
    """A stage with its arguments checked and defaulted."""

    name: str
    args: tuple[tuple[str, Any], ...]

    def arg(self, name: str) -> Any:
        return dict(self.args)[name]


STAGES: dict[str, StageKind] = {}


def _stage(kind: StageKind) -> None:
    STAGES[kind.name] = kind




def _content_fields(args: dict[str, Any], width: int, memory: str) -> tuple[Field, ...]:
    # The activation of a strength is the memory kind's (the DNC paper's are oneplus, beta >= 1).
    strength = getattr(REGISTRY.get(memory), "strength", "softplus")
    return (Field("key", width, "identity"), Field("strength", 1, strength, scalar=True))


_stage(StageKind(
    "content", "content addressing: softmax over slots of strength x similarity(key, slot)",
    (Param("similarity", str, "cosine", choices=("cosine", "dot")),),
    _content_fields, pipe=0, dnc_read=1, dnc_write=0,
))
_stage(StageKind(
    "lru", "least recently used (Dynamic NTM): the content softmax taken of beta K(k, M) - gamma v, v the "
    "moving average (decay lambda) of the head's earlier content logits, so the head avoids slots it just used",
    (Param("decay", float, 0.1, minimum=0.0, maximum=0.99),),
    lambda args, width, memory: (Field("lru_gamma", 1, "sigmoid", scalar=True),), pipe=1, after_content=0,
))
_stage(StageKind(
    "gate", "interpolation with the head's previous weighting",
    (), lambda args, width, memory: (Field("gate", 1, "sigmoid", scalar=True),), pipe=2,
))
_stage(StageKind(
    "shift", "circular convolution with a distribution over offsets -s..s",
    (Param("s", int, 1, minimum=1, maximum=64),),
    lambda args, width, memory: (Field("shift", 2 * args["s"] + 1, "softmax"),), pipe=3,
))
_stage(StageKind(
    "sharpen", "w^gamma renormalised, gamma >= 1",
    (), lambda args, width, memory: (Field("gamma", 1, "oneplus", scalar=True),), pipe=4,
))
_stage(StageKind(
    "hard", "discrete addressing (Dynamic NTM): each head samples one slot from the weighting so far (its "
    "argmax in evaluation) and uses it alone; trained by REINFORCE, with an entropy bonus of the given weight",
    (Param("entropy", float, 0.0, minimum=0.0, maximum=10.0),),
    lambda args, width, memory: (), pipe=5, after_content=1,
))
_stage(StageKind(
    "allocate", "DNC write: the least-used slots, from usage sorted ascending; mixed with content by the "
    "allocation gate when both are given",
    (), lambda args, width, memory: (Field("allocation_gate", 1, "sigmoid", scalar=True),), dnc_write=1,
))
_stage(StageKind(
    "forward", "DNC read: one step forward along the temporal links from the head's previous read "
    "weighting (slots written after the ones it read); one read mode per write head",
    (), lambda args, width, memory: (Field("read_mode", 1, "softmax"),), dnc_read=2,
))
_stage(StageKind(
    "backward", "DNC read: one step backward along the temporal links (slots written before the ones it "
    "read); one read mode per write head",
    (), lambda args, width, memory: (Field("read_mode", 1, "softmax"),), dnc_read=0,
))

def _ordered(place: str) -> tuple[str, ...]:
    """The stages that have a ``place`` (a StageKind field), in its order."""
    placed = [(getattr(kind, place), name) for name, kind in STAGES.items() if getattr(kind, place) is not None]
    return tuple(name for _, name in sorted(placed))


# The order NTM stages must come in (Graves et al. 2014, figure 2), and a dnc_memory's terms and the
# stages that may follow its content term: all read from the declarations above.
NTM_ORDER = _ordered("pipe")
DNC_READ_TERMS = _ordered("dnc_read")
DNC_WRITE_TERMS = _ordered("dnc_write")
CONTENT_MODIFIERS = _ordered("after_content")


def resolve_stage(stage: Stage, owner: str, sink: DiagnosticSink) -> ResolvedStage | None:
    kind = STAGES.get(stage.name)
    if kind is None:
        sink.error("E401", f"{owner}: unknown addressing stage '{stage.name}'", stage.span,
                   hint_for(stage.name, STAGES, "the stages"))
        return None
    if len(stage.args) > len(kind.args):
        sink.error("E403", f"{owner}: stage '{stage.name}' takes {len(kind.args)} argument(s), "
                   f"found {len(stage.args)}", stage.span,
                   f"write {stage.name}({', '.join(p.name for p in kind.args)})" if kind.args
                   else f"write {stage.name} without parentheses")
        return None
    args = {}
    for i, param in enumerate(kind.args):
        if i < len(stage.args):
            before = len(sink.items)
            value = param.check(stage.args[i], stage.args[i].span, f"{owner}: stage '{stage.name}'", sink)
            if value is None:
                recode(sink, before, "E403")
                return None
            args[param.name] = value
        else:
            args[param.name] = param.default
    return ResolvedStage(stage.name, tuple(args.items()))


def resolve_ntm_address(address: Address, owner: str, sink: DiagnosticSink) -> tuple[ResolvedStage, ...] | None:
    """Check an address for an NTM ``memory``: one pipe, stages in NTM order, a gate only after content."""
    if len(address.terms) > 1:
        sink.error("E402", f"{owner}: a mixture ('+') of weightings needs a memory that provides several "
                   "weightings (dnc_memory); an NTM memory takes one pipe", address.terms[1].span,
                   "use one pipe such as 'content(cosine) | gate | shift(1) | sharpen'")
        return None
    stages = address.terms[0].stages
    resolved = [resolve_stage(s, owner, sink) for s in stages]
    if any(r is None for r in resolved):
        return None
    position = -1
    seen: set[str] = set()
    for stage, res in zip(stages, resolved, strict=True):
        assert res is not None
        if res.name not in NTM_ORDER:
            sink.error("E402", f"{owner}: stage '{res.name}' does not work on an NTM memory", stage.span,
                       f"NTM stages are {', '.join(NTM_ORDER)}")
            return None
        index = NTM_ORDER.index(res.name)
        if res.name in seen:
            sink.error("E402", f"{owner}: stage '{res.name}' appears twice", stage.span, "use each stage once")
            return None
        if index < position:
            sink.error("E402", f"{owner}: stage '{res.name}' must come before '{NTM_ORDER[position]}'", stage.span,
                       "NTM stages run in the order " + " | ".join(NTM_ORDER))
            return None
        seen.add(res.name)
        position = index
    needs_content = {"gate": "interpolates a content weighting with the previous one",
                     "lru": "shifts the content logits away from recently used slots"}
    for name, what in needs_content.items():
        if name in seen and "content" not in seen:
            span = next(s.span for s in stages if s.name == name)
            sink.error("E402", f"{owner}: '{name}' {what}, but there is no 'content' stage before it", span,
                       "start with content(cosine)")
            return None
    if seen == {"hard"}:
        sink.error("E402", f"{owner}: 'hard' samples a slot from the weighting the stages before it build, "
                   "but there are none", stages[0].span, "write e.g. 'content(cosine) | hard'")
        return None
    return tuple(r for r in resolved if r is not None)


def warn_wide_shift(stages: tuple[Stage, ...], slots: int, owner: str, sink: DiagnosticSink,
                    default_at: Span | None = None) -> None:
    """W401 for a ``shift(s)`` wider than a memory of N ``slots`` needs: the offsets −s..s reach every slot
    once s ≥ ⌊N/2⌋, and past that, offsets o and o − N reach the same slot, so the shift distribution has
    weights for places it already has (still a valid circular convolution, :func:`cogdsl.ops.shift`, but
    rarely what was meant). Located at the stage, or at ``default_at`` (the head) when ``stages`` are the
    memory's default address, which the head does not write."""
    enough = slots // 2
    for stage in stages:
        if stage.name != "shift":
            continue
        resolved = resolve_stage(stage, owner, DiagnosticSink())
        if resolved is None:
            continue  # reported where the address is resolved
        reach = resolved.arg("s")
        if reach > enough:
            given = "" if default_at is None else "its memory's default address has "
            sink.warn("W401", f"{owner}: {given}shift({reach}) on a memory of {slots} slot{'s' if slots > 1 else ''}: "
                      f"its offsets -{reach}..{reach} reach some slots twice", default_at or stage.span,
                      _narrower_shift(enough, slots, default_at is not None))


def _narrower_shift(enough: int, slots: int, default: bool) -> str:
    if enough >= 1:
        return f"shift({enough}) already reaches every slot of {slots}"
    if default:
        return ("give the head an address without 'shift', e.g. 'content(cosine) | gate | sharpen': a memory of "
                "1 slot has nowhere to shift to")
    return "leave 'shift' out: a memory of 1 slot has nowhere to shift to"


def content_similarity(stages: tuple[ResolvedStage, ...]) -> str:
    """The similarity of the content stage among ``stages`` ("cosine" when there is none)."""
    return next((s.arg("similarity") for s in stages if s.name == "content"), "cosine")


def address_fields(stages: tuple[ResolvedStage, ...], width: int) -> tuple[Field, ...]:
    """The interface fields one NTM head needs for its addressing, in stage order."""
    fields: list[Field] = []
    for stage in stages:
        fields.extend(STAGES[stage.name].fields(dict(stage.args), width, "memory"))
    return tuple(fields)


def spelled_stage(stage: ResolvedStage) -> str:
    """A stage as an address writes it: ``shift(1)``, ``sharpen``."""
    return stage.name + (f"({', '.join(str(v) for _, v in stage.args)})" if stage.args else "")


def spelled_pipe(stages: tuple[ResolvedStage, ...]) -> str:
    """An NTM pipe as written: ``content(cosine) | gate | shift(1) | sharpen``."""
    return " | ".join(spelled_stage(s) for s in stages)
