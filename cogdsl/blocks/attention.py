"""Attention over sequences: encoders that read a whole input sequence once per forward, and
``attention``, a query that looks over a sequence (or an NTM memory) at every step.

A ``sequence`` input, (B, S, size), is shown whole to the model, with no time axis. An
*encoder* turns it into states (B, S, d) once, before the first step (a recurrent
``encoder``, or ``self_attention`` layers as in the Transformer); the compiled model keeps
them in its state, so later steps reuse them. ``attention`` then runs at every step, like a
read head whose weights come from a query instead of an interface layer::

    input  src: sequence(size=10)
    output y: 10 = softmax(dec, ctx)
    encoder   enc(hidden=64, bidirectional=true) <- src
    gru       dec(hidden=64) <- y@prev, ctx
    attention ctx(score=additive) on enc <- dec@prev     # Bahdanau: the query is s_{t-1}

Scores of a query q (B, Q) against the keys k_i (B, S, D), for each head h (Bahdanau et
al. 2015; Luong et al. 2015; Vaswani et al. 2017)::

    additive     e_i = v_h . tanh(W_h q + U_h k_i)
    dot          e_i = q . k_i                     (Q = D, one head)
    general      e_i = q^T W_h k_i
    scaled_dot   e_i = (W_h q) . k_i / sqrt(D)     (through torch's fused attention)

    a = softmax_i(e);   context_h = sum_i a_i k_i   (the values are the keys)

The value of the block is every head's context, concatenated: (B, heads x D). That is
``soft`` attention, the expected glimpse. For the additive score, the score, the softmax
and the context are one op, :func:`cogdsl.ops.additive_attention`: a fused Triton kernel
on a GPU, the PyTorch reference (the same equations) on a CPU. ``hard`` attention (Xu et
al. 2015, 4.1) samples one element per head, i ~ a, and returns k_i; the choice learns by
REINFORCE (see :mod:`cogdsl.reinforce`), with a learned baseline and an entropy bonus.
Evaluation takes the most likely element.

Pointer networks (Vinyals, Fortunato and Jaitly 2015, eq. 3), ``output=pointer``: the weights are
not blended into a context, they *are* the output, a distribution over the n positions of the
source (as many classes as the source has elements, whatever n is)::

    u^i_j = v . tanh(W1 e_j + W2 d_i)          j = 1 .. n   (e_j: what it looks over; d_i: its query;
                                                             the additive score, with no bias; any score works)
    p(C_i | C_1 .. C_{i-1}, P) = softmax(u^i)    (B, n)

An output ``pointer(NAME)`` gives u^i as its logits (``output y = pointer(ptr)``, (B, T, n); the
loss is cross-entropy against the target positions). The block's *value* is the element it
points at, x_{C_i}, the row of the ``sequence`` input under what it looks over (through its
encoders), so the decoder reads it back with ``ptr@prev`` as the paper's decoder reads
P_{C_{i-1}}: during training the expected element sum_j p_j x_j (differentiable; this
language has no teacher forcing, and feeds back its own output as ``y@prev`` does), at
evaluation the element of argmax_j p_j (greedy decoding). Before the first step it is a learned
start element (the paper's ⇒).

Show, Attend and Tell (Xu et al. 2015, 4.2.1 and eq. 14) adds two options to soft or hard attention
over image regions a_i (``on`` a ``conv`` grid) from the decoder's h_{t-1} (the query):
``gate=true``, the gating scalar per head, and ``doubly=λ``, the doubly stochastic penalty added to
the loss, which pushes the attention that each region gets over the T steps toward 1::

    β_t = σ(f_β(h_{t-1}))   (a linear layer, one β per head);   z_t <- β_t z_t
    penalty = λ Σ_h Σ_i (1 - Σ_t α_{t,h,i})²                    (B,)

The penalty is added step by step: step t adds C_t - C_{t-1} with C_t = λ Σ_h Σ_i (1 - Σ_{τ≤t} α_τ)²
and C_0 = 0, so the steps sum to C_T, the paper's term over the steps the model runs.
``reward=likelihood`` has hard attention learn from the log-likelihood of the targets (the paper's
log p(y | s, a), standardised over the batch) rather than the 0/1 success of the answer.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cogdsl import ops
from cogdsl.blocks.base import REGISTRY, BlockKind, Param, attended_size, register
from cogdsl.blocks.runtime import Build, ModuleUnit, Step, StepOut, Unit
from cogdsl.errors import DiagnosticSink
from cogdsl.language.spec import Block, Spec
from cogdsl.reinforce import Decision

if TYPE_CHECKING:
    from cogdsl.compiler.shapes import Shapes

SCORES = ("additive", "dot", "general", "scaled_dot")
OUTPUTS = ("context", "pointer")


# -- encoders --------------------------------------------------------------------------------


class EncoderKind(BlockKind):
    """Blocks that map a whole sequence (B, S, size) to states (B, S, d), once per forward."""

    family = "encoder"
    accepts = frozenset({"from"})
    requires = frozenset({"from"})
    has_output = True
    takes = ("sequence",)
    carries = "sequence"

    @classmethod
    def output_size(cls, params: dict[str, Any], input_size: int) -> int:
        raise NotImplementedError

    @classmethod
    def make(cls, params: dict[str, Any], input_size: int) -> nn.Module:
        """The module: ``module(whole input) -> states (B, S, d)``."""
        raise NotImplementedError

    @classmethod
    def build(cls, b: Build) -> Unit:
        return EncoderUnit(b, cls.make(b.params, b.shapes.input_sizes[b.name]), cls.describe(b))

    @classmethod
    def what(cls, params: dict[str, Any]) -> str:
        """What it runs over the sequence, for ``--explain``."""
        raise NotImplementedError

    @classmethod
    def describe(cls, b: Build) -> str:
        return (f"encoder {b.name}: {cls.what(b.params)} over the whole of {b.sources()}, "
                f"(B, S, {b.shapes.input_sizes[b.name]}) -> (B, S, {b.shapes.sizes[b.name]}), at the first step "
                "only (kept in the state)")


class EncoderUnit(ModuleUnit):
    """An encoder's step: at the first step (or a fresh input) it runs over its whole input; its states are
    kept in the state as ``seq:NAME`` for the later steps."""

    def __init__(self, b: Build, module: nn.Module, line: str):
        self.name, self.module, self.line = b.name, b.add("encoders", b.name, module), line
        self.key = f"seq:{b.name}"

    def step(self, step: Step) -> StepOut:
        kept = step.state.get(self.key)
        value = kept if kept is not None and not step.fresh else self.module(step.gather(self.name))
        return StepOut(value, state={self.key: value})



class RecurrentEncoder(nn.Module):
    """h_1 .. h_S = RNN(x_1 .. x_S); bidirectional: h_i = [->h_i ; <-h_i] (Bahdanau et al. 2015, 3.2)."""

    def __init__(self, cell: str, input_size: int, hidden: int, layers: int, bidirectional: bool):
        super().__init__()
        network = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = network(input_size, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """sequence (B, S, size) → states (B, S, hidden x directions)."""
        states, _ = self.rnn(sequence)
        return states


@register
class RecurrentEncoderKind(EncoderKind):
    kind = "encoder"
    example = (
        "input src: sequence(size=4)\n"
        "output y: 3 = softmax(n)\n"
        "encoder e({params}) <- src\n"
        "summary p(mode=mean) on e\n"
        "mlp n(hidden=6) <- p\n")
    example_params: ClassVar[dict[str, Any]] = {"hidden": 4}
    doc = ("Recurrent encoder over a whole `sequence` input: states (B, S, hidden), or (B, S, 2 hidden) "
           "when bidirectional; run once per forward, for `attention` to look over.")
    params: ClassVar = (Param("hidden", int, minimum=1, maximum=65536, doc="units per direction and layer"),
                        Param("cell", str, "gru", choices=("rnn", "gru", "lstm")),
                        Param("layers", int, 1, minimum=1, maximum=16),
                        Param("bidirectional", bool, True, doc="read the sequence both ways and concatenate"))

    @classmethod
    def output_size(cls, params: dict[str, Any], input_size: int) -> int:
        return params["hidden"] * (2 if params["bidirectional"] else 1)

    @classmethod
    def make(cls, params: dict[str, Any], input_size: int) -> nn.Module:
        return RecurrentEncoder(params["cell"], input_size, params["hidden"], params["layers"],
                                params["bidirectional"])

    @classmethod
    def what(cls, params: dict[str, Any]) -> str:
        return f"{'bidirectional ' if params['bidirectional'] else ''}{params['cell']}"


def sinusoid_positions(length: int, size: int, like: torch.Tensor) -> torch.Tensor:
    """Vaswani et al. 2017, 3.5: P[i, 2j] = sin(i / 10000^(2j/size)), P[i, 2j+1] = cos(...); (S, size)."""
    position = torch.arange(length, dtype=like.dtype, device=like.device).unsqueeze(1)
    rate = torch.exp(torch.arange(0, size, 2, dtype=like.dtype, device=like.device) * (-math.log(10000.0) / size))
    table = like.new_zeros(length, size)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)[:, : size // 2]
    return table


class SelfAttentionLayer(nn.Module):
    """One Transformer encoder layer (Vaswani et al. 2017, 3.1), post-norm:

        x <- LayerNorm(x + MultiHead(x, x, x)),   x <- LayerNorm(x + W_2 relu(W_1 x))

    with MultiHead(Q, K, V) = [head_1 .. head_h] W_O, head_j = softmax(Q W_j^Q (K W_j^K)^T / sqrt(d_h)) V W_j^V
    computed by ``F.scaled_dot_product_attention`` (a causal mask hides later positions).
    Without ``norm`` there is neither the residual nor the layer norm.
    """

    def __init__(self, size: int, heads: int, ffn: int, causal: bool, norm: bool):
        super().__init__()
        self.heads, self.causal, self.norm = heads, causal, norm
        self.keep_weights = False  # also form the weights (B, heads, S, S), for pictures
        self.qkv = nn.Linear(size, 3 * size)
        self.out = nn.Linear(size, size)
        self.ffn = nn.Sequential(nn.Linear(size, ffn), nn.ReLU(), nn.Linear(ffn, size)) if ffn else None
        self.norm1 = nn.LayerNorm(size) if norm else None
        self.norm2 = nn.LayerNorm(size) if norm and ffn else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, S, size) → (B, S, size), and the attention weights (B, heads, S, S) if
        ``keep_weights`` (the fused path does not form them)."""
        batch, length, size = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, size // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        weights = None
        if self.keep_weights:
            scores = q @ k.transpose(-1, -2) / math.sqrt(size // self.heads)
            if self.causal:
                hidden = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
                scores = scores.masked_fill(hidden, float("-inf"))
            weights = scores.softmax(-1)
        y = self.out(attended.transpose(1, 2).reshape(batch, length, size))
        x = self.norm1(x + y) if self.norm1 is not None else y
        if self.ffn is not None:
            y = self.ffn(x)
            x = self.norm2(x + y) if self.norm2 is not None else y
        return x, weights


class SelfAttentionEncoder(nn.Module):
    """An input projection to ``size`` (if the input's size differs), sinusoidal positions, then ``layers``
    :class:`SelfAttentionLayer` s."""

    def __init__(self, input_size: int, size: int, heads: int, layers: int, ffn: int, causal: bool, norm: bool,
                 positions: bool):
        super().__init__()
        self.project = nn.Linear(input_size, size) if input_size != size else None
        self.positions = positions
        self.layers = nn.ModuleList(SelfAttentionLayer(size, heads, ffn, causal, norm) for _ in range(layers))
        self.last_weights: list[torch.Tensor] = []

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """sequence (B, S, input size) → (B, S, size)."""
        x = self.project(sequence) if self.project is not None else sequence
        if self.positions:
            x = x + sinusoid_positions(x.shape[1], x.shape[2], x)
        self.last_weights = []
        for layer in self.layers:
            x, weights = layer(x)
            if weights is not None:
                self.last_weights.append(weights)
        return x


@register
class SelfAttentionKind(EncoderKind):
    kind = "self_attention"
    example = (
        "input src: sequence(size=4)\n"
        "output y: 3 = softmax(n)\n"
        "self_attention e({params}) <- src\n"
        "summary p(mode=mean) on e\n"
        "mlp n(hidden=6) <- p\n")
    doc = ("Transformer encoder layers over a whole `sequence`: multi-head scaled dot-product self-attention "
           "(torch's fused kernel), optional causal mask, residual and layer norm, feed-forward; stackable.")
    params: ClassVar = (
        Param("size", int, 0, minimum=0, maximum=65536,
              doc="model width; the input is projected to it (0: the input's own size)"),
        Param("heads", int, 1, minimum=1, maximum=64, doc="attention heads; they must divide size"),
        Param("layers", int, 1, minimum=1, maximum=48),
        Param("ffn", int, -1, minimum=-1, maximum=262144, doc="feed-forward hidden units (-1: 4 x size, 0: none)"),
        Param("causal", bool, False, doc="each position attends to itself and earlier ones only"),
        Param("norm", bool, True, doc="residual connections and layer norm around each sublayer"),
        Param("positions", bool, True,
              doc="add sinusoidal position encodings first (false: e.g. for a second stacked block)"),
    )

    @classmethod
    def width(cls, params: dict[str, Any], input_size: int) -> int:
        return params["size"] or input_size

    @classmethod
    def output_size(cls, params: dict[str, Any], input_size: int) -> int:
        return cls.width(params, input_size)

    @classmethod
    def check_shapes(cls, block: Block, shapes: Shapes, sink: DiagnosticSink) -> None:
        """Its heads divide its width."""
        width, heads = shapes.sizes[block.name], shapes.params[block.name]["heads"]
        if width % heads:
            sink.error("E501", f"size mismatch: self_attention '{block.name}' has width {width}, which its "
                       f"{heads} heads do not divide", block.param_span("heads"),
                       f"choose heads dividing {width}, or set 'size' to a multiple of {heads}")

    @classmethod
    def what(cls, params: dict[str, Any]) -> str:
        return f"{params['layers']} self-attention layer(s), {params['heads']} head(s)" + (
            ", causal" if params["causal"] else "")

    @classmethod
    def make(cls, params: dict[str, Any], input_size: int) -> nn.Module:
        size = cls.width(params, input_size)
        ffn = 4 * size if params["ffn"] < 0 else params["ffn"]
        return SelfAttentionEncoder(input_size, size, params["heads"], params["layers"], ffn, params["causal"],
                                    params["norm"], params["positions"])


# -- attention at each step ------------------------------------------------------------------


def attend(scores: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """a = softmax over i of the scores, context = sum_i a_i k_i.

    scores (B, H, S), keys (B, S, D) → context (B, H, D), weights (B, H, S).
    """
    weights = scores.softmax(-1)
    return weights @ keys, weights


class Attention(nn.Module):
    """One step of soft attention of a query over a sequence; see the module docstring for the scores."""

    def __init__(self, score: str, heads: int, query_size: int, key_size: int, hidden: int, mode: str = "soft",
                 entropy: float = 0.0, pointer_size: int = 0, gate: bool = False, reward: str = "success"):
        """``pointer_size`` > 0: a pointer (:meth:`point`) at elements of that size, with one head. ``gate``: the
        gating scalar of :meth:`gated`; ``reward``: what hard attention learns from (:class:`Decision`)."""
        super().__init__()
        self.score, self.heads, self.key_size = score, heads, key_size
        self.mode, self.entropy, self.reward = mode, entropy, reward
        self.gate = nn.Linear(query_size, heads) if gate else None  # f_β (Xu et al. 2015, 4.2.1)
        self.samples = mode == "hard"
        self.pointer = pointer_size > 0
        self.baseline = nn.Linear(query_size, 1) if self.samples else None
        self.decision: Decision | None = None  # hard attention's last sample, for REINFORCE
        # The pointer's value before its first step, the paper's start symbol, learned.
        self.start = nn.Parameter(torch.zeros(pointer_size)) if self.pointer else None
        if score == "additive":  # a pointer's W2 d_i has no bias (Vinyals et al. 2015, eq. 3)
            self.query_proj = nn.Linear(query_size, heads * hidden, bias=not self.pointer)
            self.key_proj = nn.Linear(key_size, heads * hidden, bias=False)
            self.v = nn.Parameter(torch.empty(heads, hidden).uniform_(-1 / math.sqrt(hidden), 1 / math.sqrt(hidden)))
        elif score in ("general", "scaled_dot"):
            self.query_proj = nn.Linear(query_size, heads * key_size, bias=score == "scaled_dot")

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor | None:
        """U_h k_i for the additive score, (B, heads, S, hidden); None for the scores that project only
        the query. It depends on the keys alone, so a model computes it once per sequence."""
        if self.score != "additive":
            return None
        batch, length, _ = keys.shape
        return self.key_proj(keys).view(batch, length, self.heads, -1).transpose(1, 2)

    def scores(self, query: torch.Tensor, keys: torch.Tensor, projected_keys: torch.Tensor | None = None
               ) -> torch.Tensor:
        """query (B, Q), keys (B, S, D) → scores e (B, heads, S); ``projected_keys``: :meth:`project_keys`
        of these keys, if already computed."""
        batch = keys.shape[0]
        if self.score == "dot":
            return (keys @ query.unsqueeze(-1)).transpose(1, 2)
        if self.score == "additive":
            projected_query = self.query_proj(query).view(batch, self.heads, 1, -1)
            if projected_keys is None:
                projected_keys = self.project_keys(keys)
            return (torch.tanh(projected_query + projected_keys) * self.v[:, None]).sum(-1)
        projected_query = self.query_proj(query).view(batch, self.heads, self.key_size)
        scores = projected_query @ keys.transpose(1, 2)
        return scores / math.sqrt(self.key_size) if self.score == "scaled_dot" else scores

    def forward(self, query: torch.Tensor, keys: torch.Tensor, projected_keys: torch.Tensor | None = None, *,
                with_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """query (B, Q), keys (B, S, D) → context (B, heads x D) and the weights (B, heads, S).

        ``additive`` goes through :func:`cogdsl.ops.additive_attention` (score, softmax and
        context fused), which returns the weights as well. ``scaled_dot`` without
        ``with_weights`` goes through ``F.scaled_dot_product_attention``, which forms no
        weights: they are then None. Hard attention (:meth:`sample`) takes the scores'
        log-softmax instead, for the log-probability and the entropy.
        """
        batch = keys.shape[0]
        if self.mode == "hard":
            return self.sample(query, keys, projected_keys)
        if self.score == "additive":  # score, softmax and context in one op (one kernel each way on a GPU)
            projected_query = self.query_proj(query).view(batch, self.heads, -1)
            if projected_keys is None:
                projected_keys = self.project_keys(keys)
            assert projected_keys is not None
            context, weights = ops.additive_attention(projected_query, projected_keys, self.v, keys)
            return context.reshape(batch, -1), weights
        if self.score == "scaled_dot" and not with_weights:
            projected_query = self.query_proj(query).view(batch, self.heads, 1, self.key_size)
            expanded = keys.unsqueeze(1).expand(batch, self.heads, *keys.shape[1:])
            context = F.scaled_dot_product_attention(projected_query, expanded, expanded)
            return context.reshape(batch, -1), None
        context, weights = attend(self.scores(query, keys, projected_keys), keys)
        return context.reshape(batch, -1), weights

    def gated(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """The gating scalar (Xu et al. 2015, 4.2.1): z_h <- σ(f_β(q))_h z_h, f_β linear.

        query (B, Q), context (B, heads x D) → (B, heads x D); the context itself without ``gate``.
        """
        if self.gate is None:
            return context
        beta = torch.sigmoid(self.gate(query))  # (B, heads)
        return (context.view(*beta.shape, -1) * beta.unsqueeze(-1)).reshape(context.shape)

    def point(self, query: torch.Tensor, keys: torch.Tensor, elements: torch.Tensor,
              projected_keys: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A pointer (Vinyals et al. 2015, eq. 3): u_j = v . tanh(W1 e_j + W2 d), p = softmax_j(u).

        query d (B, Q), keys e (B, n, D), elements x (B, n, E), the rows pointed at → the element pointed
        at (B, E), the scores u (B, n) (the output's logits) and p (B, n). The element is
        sum_j p_j x_j in training (differentiable) and x_{argmax_j p_j} in evaluation (greedy decoding).
        """
        assert self.pointer and self.heads == 1
        scores = self.scores(query, keys, projected_keys)[:, 0]  # (B, n)
        weights = scores.softmax(-1)
        if self.training:
            element = (weights.unsqueeze(1) @ elements).squeeze(1)  # (B, E)
        else:
            chosen = weights.argmax(-1, keepdim=True)  # (B, 1)
            element = elements.gather(1, chosen.unsqueeze(-1).expand(-1, 1, elements.shape[-1])).squeeze(1)
        return element, scores, weights

    def sample(self, query: torch.Tensor, keys: torch.Tensor, projected_keys: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hard attention: per head, i ~ a (training) or i = argmax a (evaluation); context_h = k_i.

        query (B, Q), keys (B, S, D) → context (B, heads x D), the weights a (B, heads, S). Training
        records log pi = sum_h log a_{h, i_h}, the entropy sum_h H(a_h) and the baseline b = w . q + c
        as :attr:`decision`.
        """
        batch, length, _ = keys.shape
        log_weights = self.scores(query, keys, projected_keys).log_softmax(-1)  # (B, heads, S)
        weights = log_weights.exp()
        self.decision = None
        if self.training:
            chosen = torch.multinomial(weights.detach().reshape(-1, length), 1).view(batch, self.heads)
            log_prob = log_weights.gather(-1, chosen.unsqueeze(-1)).squeeze(-1).sum(-1)
            entropy = -(weights * log_weights).sum(-1).sum(-1)
            assert self.baseline is not None
            self.decision = Decision(log_prob, self.baseline(query.detach()).squeeze(-1), entropy, self.entropy,
                                     reward=self.reward)
        else:
            chosen = weights.argmax(-1)
        one_hot = F.one_hot(chosen, length).to(keys.dtype)  # (B, heads, S)
        return (one_hot @ keys).reshape(batch, -1), weights


@register
class AttentionKind(BlockKind):
    kind = "attention"
    example = (
        "input src: sequence(size=4)\n"
        "output y: 3 = softmax(d, a)\n"
        "encoder e(hidden=4) <- src\n"
        "attention a({params}) on e <- d@prev\n"
        "gru d(hidden=6) <- a\n")
    family = "attention"
    doc = ("Soft attention of a query (its sources) over a sequence (`on` an encoder, a `sequence` input, or "
           "a memory as the previous step left it) at every step: score additive (Bahdanau), dot or general "
           "(Luong) or scaled_dot; "
           "the value is each head's context, (B, heads x D). With `output=pointer` (pointer networks) the "
           "weights are the output, `output y = pointer(NAME)`, and the value is the source element pointed at.")
    params: ClassVar = (
        Param("score", str, "additive", choices=SCORES),
        Param("heads", int, 1, minimum=1, maximum=64, doc="independent attention heads, contexts concatenated"),
        Param("hidden", int, 0, minimum=0, maximum=65536,
              doc="additive score units per head (0: the attended size)"),
        Param("mode", str, "soft", choices=("soft", "hard"),
              doc="soft: the weighted mean; hard: sample one element, learned by REINFORCE"),
        Param("entropy", float, 0.01, minimum=0.0, maximum=10.0, doc="hard mode: weight of the entropy bonus"),
        Param("output", str, "context", choices=OUTPUTS,
              doc="context: the weighted mean; pointer: the weights are an output's distribution over the "
                  "source positions (`output y = pointer(NAME)`), the value the source element pointed at"),
        Param("gate", bool, False, doc="scale each head's context by β = σ(w · query + b) (Show, Attend and Tell)"),
        Param("doubly", float, 0.0, minimum=0.0, maximum=1000.0,
              doc="λ of the doubly stochastic penalty λ Σ_i (1 - Σ_t α_ti)², added to the loss (0: none)"),
        Param("reward", str, "success", choices=("success", "likelihood"),
              doc="hard mode's REINFORCE reward: 1 for a right answer, or the targets' standardised "
                  "log-likelihood (Show, Attend and Tell)"),
    )
    accepts = frozenset({"from", "memory"})
    requires = frozenset({"from", "memory"})
    has_output = True

    @classmethod
    def adds_loss(cls, params: dict[str, Any]) -> bool:
        return params.get("doubly", 0.0) > 0  # the doubly stochastic penalty

    @classmethod
    def conflicts(cls, params: dict[str, Any]) -> list[tuple[str, str, str]]:
        """A pointer is one distribution over the source positions: one head, soft. A reward is for hard mode."""
        found = []
        if params.get("reward", "success") != "success" and params["mode"] != "hard":
            found.append(("reward", "soft attention samples nothing, so it learns from no reward",
                          "use mode=hard, or leave reward out"))
        if params["output"] != "pointer":
            return found
        for name, value, what in (("gate", False, "gate=true"), ("doubly", 0.0, "doubly")):
            if params.get(name, value) != value:
                found.append((name, f"a pointer (output=pointer) gives its weights as the output: {what} "
                              "(Show, Attend and Tell) applies to a context", f"leave {name} out"))
        if params["heads"] != 1:
            found.append(("heads", f"a pointer (output=pointer) is one distribution over the source positions, "
                          f"not {params['heads']} heads", "use heads=1, or one pointer block per distribution"))
        if params["mode"] != "soft":
            found.append(("mode", "a pointer (output=pointer) gives its weights as the output, so it samples "
                          "nothing: mode=hard does not apply", "leave mode out (soft)"))
        return found

    @classmethod
    def points(cls, block: Block) -> bool:
        given = block.params.get("output")
        return given is not None and given.data == "pointer"

    @classmethod
    def check_target(cls, block: Block, target_kind: type[BlockKind] | None, sink: DiagnosticSink) -> bool:
        """A pointer points at positions of a sequence: it looks over a ``sequence`` input or an encoder of one,
        never a memory (whose slots are no source positions) or an image's regions."""
        if not cls.points(block) or target_kind is None:
            return False
        if issubclass(target_kind, EncoderKind) and "sequence" in target_kind.takes:
            return False
        assert block.memory is not None
        sink.error("E303", f"{block.kind} '{block.name}': a pointer (output=pointer) points at the positions of a "
                   f"sequence, and '{block.memory.name}' is {_noun(target_kind)}", block.memory.span,
                   "point over a 'sequence' input or an encoder of one (encoder, self_attention)")
        return True

    @classmethod
    def attended_value_size(cls, spec: Spec, block: Block, params: dict[str, dict[str, Any]],
                            sizes: dict[str, int]) -> int | None:
        """A pointer's value is a row of the sequence input(s) it points into; otherwise heads x D."""
        if params[block.name]["output"] != "pointer":
            return super().attended_value_size(spec, block, params, sizes)
        assert block.memory is not None
        return sum(sizes[name] for name in pointed_inputs(spec, block.memory.name))

    @classmethod
    def check_shapes(cls, block: Block, shapes: Shapes, sink: DiagnosticSink) -> None:
        """A dot score needs a query as wide as the keys, and has one head (it has no parameters)."""
        p = shapes.params[block.name]
        if p["score"] != "dot":
            return
        key_size = attended_size(shapes.params, shapes.sizes, block)
        query_size = shapes.input_sizes[block.name]
        if query_size != key_size:
            sink.error("E501", f"size mismatch: attention '{block.name}' scores by dot product a query of size "
                       f"{query_size} against elements of size {key_size}", block.param_span("score"),
                       "make the query as wide as the elements, or use score=general (q^T W k) or additive")
        elif p["heads"] != 1:
            sink.error("E501", f"attention '{block.name}': a dot score has no parameters, so its {p['heads']} "
                       "heads would all be the same", block.param_span("heads"),
                       "use heads=1, or score=general or scaled_dot")

    @classmethod
    def make(cls, params: dict[str, Any], query_size: int, key_size: int, pointer_size: int = 0) -> nn.Module:
        return Attention(params["score"], params["heads"], query_size, key_size, params["hidden"] or key_size,
                         params["mode"], params["entropy"], pointer_size, params.get("gate", False),
                         params.get("reward", "success"))

    @classmethod
    def trace_places(cls, name: str, seen: Any, side: int, module: Any, trace: dict[str, Any]
                     ) -> dict[str, dict[str, Any]]:
        """Over a feature grid: each head's weights over its regions, (N, T, g, g)."""
        grid = math.isqrt(seen.shape[-1])
        weights = {}
        for head in range(seen.shape[2]):
            label = name if seen.shape[2] == 1 else f"{name} head {head + 1}"
            weights[label] = seen[:, :, head].reshape(*seen.shape[:2], grid, grid)
        return {"weights": weights}

    @classmethod
    def build(cls, b: Build) -> Unit:
        if b.params["output"] == "pointer":
            assert b.block is not None
            key_size = attended_size(b.shapes.params, b.shapes.sizes, b.block)
            assert key_size is not None
            module = cls.make(b.params, b.shapes.input_sizes[b.name], key_size, b.shapes.sizes[b.name])
            return PointerUnit(b, module)
        key_size = b.shapes.sizes[b.name] // b.params["heads"]  # its value is heads x D
        return AttentionUnit(b, cls.make(b.params, b.shapes.input_sizes[b.name], key_size))


def pointed_inputs(spec: Spec, target: str) -> tuple[str, ...]:
    """The ``sequence`` inputs whose rows a pointer over ``target`` points at: ``target`` itself when it is one,
    else the ones under the encoders that make it (an encoder keeps one state per position of what it reads;
    several are concatenated, as an encoder concatenates its sources)."""
    found: list[str] = []
    pending, seen = [target], set()
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        source = spec.input(name)
        if source is not None:
            if source.kind.data == "sequence" and name not in found:
                found.append(name)
            continue
        block = spec.block(name)
        if block is not None and block.kind in REGISTRY and REGISTRY[block.kind].family == "encoder":
            pending[:0] = [ref.name for ref in block.sources]
    return tuple(found)


def _noun(kind: type[BlockKind]) -> str:
    noun = kind.noun()
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _looks_over(b: Build) -> tuple[str, bool, bool]:
    """The name a block looks over (``on``); whether it is whole (a sequence input or an encoder's states,
    fixed for the whole forward); whether it is a memory (read as the previous step left it)."""
    assert b.block is not None and b.block.memory is not None
    target = b.block.memory.name
    looked = b.spec.block(target)
    family = REGISTRY[looked.kind].family if looked is not None and looked.kind in REGISTRY else None
    whole = family == "encoder" or b.shapes.input_kinds.get(target) in ("sequence", "image")
    return target, whole, family == "memory"


class AttentionUnit(ModuleUnit):
    """An attention block's step: its query (its sources) over what it looks over: an encoder's states, a
    sequence input, or a memory as the previous step left it. Over a whole sequence the additive score's
    projected keys are kept in the state (``keys:NAME``). Trace: ``NAME`` the weights (B, heads, S)."""

    def __init__(self, b: Build, module: Attention):
        self.name, self.module = b.name, b.add("attentions", b.name, module)
        self.target, self.whole, over_memory = _looks_over(b)
        self.samples = module.samples
        self.cache = f"keys:{b.name}"
        p = b.params
        over = f"memory {self.target} as of the previous step" if over_memory else self.target
        self.line = (f"attention {b.name}: query [{b.sources()}] ({b.shapes.input_sizes[b.name]}) over {over}, "
                      f"{p['heads']} head(s), score {_SCORE_FORMULAS[p['score']]}, softmax -> "
                      + ("one element sampled (REINFORCE)" if p["mode"] == "hard" else "context")
                      + f" {b.shapes.sizes[b.name]}")
        # Show, Attend and Tell: the gating scalar, and the doubly stochastic penalty (see the module docstring)
        self.doubly = float(p.get("doubly", 0.0))
        self.penalizes = self.doubly > 0
        self.cover, self.cost = f"cover:{b.name}", f"cost:{b.name}"
        if p.get("gate"):
            self.line += ", gated by β = σ(w . query + b)"
        if self.penalizes:
            self.line += f", penalty {self.doubly:g} Σ_i (1 - Σ_t α_ti)² added to the loss"

    def step(self, step: Step) -> StepOut:
        keys = step.values[self.target] if self.target in step.values else step.state[self.target]
        out = StepOut()
        projected: torch.Tensor | None = None
        if self.whole:
            kept = step.state.get(self.cache)
            projected = kept if kept is not None and not step.fresh else self.module.project_keys(keys)
            if projected is not None:
                out.state[self.cache] = projected
        query = step.gather(self.name)
        out.value, weights = self.module(query, keys, projected, with_weights=step.tracing or self.penalizes)
        out.value = self.module.gated(query, out.value)
        out.trace[self.name] = weights
        if self.module.decision is not None:
            out.decisions.append(self.module.decision)
        if self.penalizes:
            assert weights is not None
            out.penalties.append(self.doubly_stochastic(weights, step, out))
        return out

    def doubly_stochastic(self, weights: torch.Tensor, step: Step, out: StepOut) -> torch.Tensor:
        """This step's share of λ Σ_h Σ_i (1 - Σ_t α_{t,h,i})² (Xu et al. 2015, eq. 14): weights α_t (B, heads, S)
        → C_t - C_{t-1}, (B,), with the running sum Σ_{τ≤t} α_τ (``cover:NAME``) and C_t (``cost:NAME``) kept in
        the state (a fresh input starts them again)."""
        cover = step.state.get(self.cover)
        cover = weights if cover is None or step.fresh else cover + weights  # (B, heads, S)
        cost = self.doubly * (1.0 - cover).pow(2).sum((1, 2))  # (B,)
        before = step.state.get(self.cost)
        out.state[self.cover], out.state[self.cost] = cover, cost
        return cost if before is None or step.fresh else cost - before



class PointerUnit(AttentionUnit):
    """A pointer's step (Vinyals et al. 2015): its query over what it looks over gives the scores u (B, n),
    posted as ``("pointer", NAME)`` for the output ``pointer(NAME)``; its value is the element of the source
    sequence pointed at (:meth:`Attention.point`). Trace: ``NAME`` the distribution (B, 1, n)."""

    def __init__(self, b: Build, module: Attention):
        super().__init__(b, module)
        self.pointed = pointed_inputs(b.spec, self.target)
        p = b.params
        self.line = (f"attention {b.name}: pointer, query [{b.sources()}] ({b.shapes.input_sizes[b.name]}) over "
                     f"{self.target}, score {_SCORE_FORMULAS[p['score']]}, softmax over the n positions -> the "
                     f"output pointer({b.name}) (B, n); value: the row of {', '.join(self.pointed)} pointed at "
                     f"({b.shapes.sizes[b.name]}), expected in training, argmax in evaluation")

    def initial_values(self, batch: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """Before the first step, ``NAME@prev`` reads the learned start element."""
        start = self.module.start
        assert start is not None
        return {self.name: start.to(like).expand(batch, -1)}

    def step(self, step: Step) -> StepOut:
        keys = step.values[self.target]
        elements = [step.values[name] for name in self.pointed]
        out = StepOut()
        kept = step.state.get(self.cache)
        projected = kept if kept is not None and not step.fresh else self.module.project_keys(keys)
        if projected is not None:
            out.state[self.cache] = projected
        out.value, scores, weights = self.module.point(
            step.gather(self.name), keys, elements[0] if len(elements) == 1 else torch.cat(elements, -1), projected)
        step.post("pointer", self.name, scores)
        out.trace[self.name] = weights.unsqueeze(1)
        return out


_SCORE_FORMULAS = {"additive": "v . tanh(W q + U k)", "dot": "q . k", "general": "q^T W k",
                   "scaled_dot": "(W q) . k / sqrt(D)"}


class Summary(nn.Module):
    """A whole sequence as one vector: its mean, or a recurrent encoder's final state."""

    def __init__(self, mode: str, bidirectional: bool):
        super().__init__()
        self.mode, self.bidirectional = mode, bidirectional

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """states (B, S, D) → (B, D): mean_i h_i, or h_S ([->h_S ; <-h_1] when bidirectional)."""
        if self.mode == "mean":
            return states.mean(1)
        if not self.bidirectional:
            return states[:, -1]
        half = states.shape[-1] // 2
        return torch.cat([states[:, -1, :half], states[:, 0, half:]], dim=-1)


@register
class SummaryKind(BlockKind):
    kind = "summary"
    example = (
        "input src: sequence(size=4)\n"
        "output y: 3 = softmax(n)\n"
        "encoder e(hidden=4) <- src\n"
        "summary p({params}) on e\n"
        "mlp n(hidden=6) <- p\n")
    family = "attention"
    doc = ("A sequence as one vector at every step, with no attention: the mean of its elements, or a "
           "recurrent encoder's final state (the encoder-decoder of Cho et al. 2014; the baseline for attention).")
    params: ClassVar = (Param("mode", str, "final", choices=("final", "mean"),
                              doc="final: the encoder's last state, both directions' ends when bidirectional"),)
    accepts = frozenset({"memory"})
    requires = frozenset({"memory"})
    has_output = True

    @classmethod
    def make(cls, params: dict[str, Any], bidirectional: bool) -> nn.Module:
        return Summary(params["mode"], bidirectional)

    @classmethod
    def check_target(cls, block: Block, target_kind: type[BlockKind] | None, sink: DiagnosticSink) -> bool:
        """mode=final takes a recurrent encoder's last state: it summarizes an ``encoder`` block only."""
        mode = block.params["mode"].data if "mode" in block.params else "final"
        if mode != "final":
            return False
        assert block.memory is not None
        if target_kind is not RecurrentEncoderKind:
            sink.error("E303", f"{block.kind} '{block.name}': mode=final takes a recurrent encoder's last state, and "
                       f"'{block.memory.name}' is not a recurrent encoder", block.memory.span,
                       f"use mode=mean, or summarize an '{RecurrentEncoderKind.kind}' block")
        return True

    @classmethod
    def build(cls, b: Build) -> Unit:
        assert b.block is not None and b.block.memory is not None
        bidirectional = b.shapes.params.get(b.block.memory.name, {}).get("bidirectional", False)
        return SummaryUnit(b, cls.make(b.params, bidirectional))


class SummaryUnit(ModuleUnit):
    """A summary's step: the sequence it is ``on`` as one vector."""

    def __init__(self, b: Build, module: nn.Module):
        self.name, self.module = b.name, b.add("attentions", b.name, module)
        self.target, _, _ = _looks_over(b)
        how = "its mean" if b.params["mode"] == "mean" else "its final state"
        self.line = f"summary {b.name}: {self.target} as one vector, {how} ({b.shapes.sizes[b.name]}), no attention"

    def step(self, step: Step) -> StepOut:
        keys = step.values[self.target] if self.target in step.values else step.state[self.target]
        return StepOut(self.module(keys))

