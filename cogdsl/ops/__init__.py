"""The functional ops: memory addressing and read/write as pure, differentiable equations.

Every op takes and returns torch tensors, batch first, float32 or float64, and is
differentiable in every input. Training tricks (stop-gradients and the like) belong to the
block that calls an op, never inside it.

Each public function here checks its arguments' shapes (Python only, no device sync; a
combination of shapes that passed once is remembered, so a training loop pays for a set
lookup, not the check), then calls the implementation chosen by :mod:`cogdsl.ops.backend`: the PyTorch reference in
:mod:`cogdsl.ops.ntm`, or a Triton kernel on CUDA when one is registered. Force one with
``with cogdsl.ops.use_backend("torch"):`` or ``COGDSL_BACKEND=torch``.

Shape letters: B batch, H heads, N memory slots, W slot width, K = 2s+1 shift offsets
(−s..s); for attention over a sequence, S elements, A score units per head, D key width
(for a memory network hop's read, W is the value width and D the key and query width).
"""

from __future__ import annotations

import torch
from torch import Tensor

from cogdsl import kernels as _kernels  # noqa: F401  (registers the "triton" backend, lazily)
from cogdsl.ops import attention as _attention  # noqa: F401  (registers additive_attention and hop_read on "torch")
from cogdsl.ops import dnc as _dnc  # noqa: F401  (registers the DNC ops' "torch" backend)
from cogdsl.ops import ntm as _ntm
from cogdsl.ops import ntm_grad as _ntm_grad  # noqa: F401  (registers the "torch" backend)
from cogdsl.ops.backend import (
    BACKENDS,
    BackendUnavailableError,
    current_backend,
    register,
    use_backend,
)
from cogdsl.ops.backend import resolve as _resolve

__all__ = [
    "BACKENDS",
    "SIMILARITIES",
    "BackendUnavailableError",
    "additive_attention",
    "content_weights",
    "current_backend",
    "dnc_allocation",
    "dnc_directional",
    "dnc_link",
    "dnc_usage",
    "hop_read",
    "interpolate",
    "ntm_address",
    "ntm_memory_step",
    "read",
    "register",
    "sharpen",
    "shift",
    "use_backend",
    "write",
]

SIMILARITIES = _ntm.SIMILARITIES

_DIM_NAMES = {
    "B": "batch size",
    "H": "head count",
    "N": "slot count",
    "W": "width",
    "K": "shift offset count",
    "V": "write head count",
    "R": "read head count",
    "M": "slot count",
    "S": "sequence length",
    "A": "score width",
    "D": "key width",
}

# (op, argument shapes..., options...) keys that passed their checks; see _remember.
_VALID: set[tuple[object, ...]] = set()


def _shape_key(op: str, tensors: tuple[object, ...], *options: object) -> tuple[object, ...] | None:
    """The key under which a call's shapes are remembered: (op, every tensor's shape, options).

    None when an argument is not a tensor: the check then runs and reports it.
    """
    try:
        return (op, *(t.shape for t in tensors), *options)  # type: ignore[attr-defined]
    except AttributeError:
        return None


def _remember(key: tuple[object, ...]) -> None:
    if len(_VALID) >= 4096:  # shapes that change every call: keep the set bounded
        _VALID.clear()
    _VALID.add(key)


def _shown(dims: str) -> str:
    """Dimension letters as a message shows them: M is the second N of a square (N, N) matrix."""
    return ", ".join("N" if letter == "M" else letter for letter in dims)


def _check_shapes(op: str, *args: tuple[str, object, str]) -> None:
    """Check (name, tensor, dims) triples: rank, then every shared letter of ``dims`` agrees.

    A letter is bound by the first argument that has it; a later disagreement names both.
    Only ``.shape`` is read, so this never synchronises with the device.
    """
    bound: dict[str, tuple[int, str]] = {}
    for name, t, dims in args:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor of shape ({_shown(dims)}), got {type(t).__name__}")
        shape = tuple(t.shape)
        if len(shape) != len(dims):
            raise ValueError(f"{op}: {name} must have {len(dims)} dimensions ({_shown(dims)}) but has shape {shape}")
        for letter, size in zip(dims, shape, strict=True):
            seen = bound.get(letter)
            if seen is None:
                bound[letter] = (size, name)
            elif seen[0] != size:
                expected = tuple(bound[d][0] if d in bound else s for d, s in zip(dims, shape, strict=True))
                raise ValueError(
                    f"{op}: {name} has shape {shape} but {seen[1]} {_DIM_NAMES[letter]} is {seen[0]} "
                    f"(expected {expected})"
                )


def _check_similarity(op: str, similarity: str) -> None:
    if similarity not in SIMILARITIES:
        allowed = ", ".join(repr(s) for s in SIMILARITIES)
        raise ValueError(f"{op}: unknown similarity {similarity!r}; expected one of {allowed}")


def _check_shift_count(op: str, shift_weights: Tensor) -> None:
    k = shift_weights.shape[-1]
    if k % 2 == 0:
        raise ValueError(
            f"{op}: shift_weights has shape {tuple(shift_weights.shape)} but its last dimension must be "
            "odd (2s+1, for offsets −s..s)"
        )


def content_weights(memory: Tensor, keys: Tensor, strengths: Tensor, similarity: str = "cosine") -> Tensor:
    """Content-based addressing: a softmax over slots of each key's similarity to every slot.

        w_c[b, h, i] = exp(β[b,h] K(k[b,h], M[b,i])) / Σ_j exp(β[b,h] K(k[b,h], M[b,j]))

    with K the cosine similarity k·M_i / (|k| |M_i| + ε), ε = 1e-8 (norms computed as
    sqrt(Σ x² + ε²), so an all-zero memory gives finite weights and gradients), or the plain
    dot product k·M_i.

    Args:
      memory: (B, N, W) memory, one slot per row.
      keys: (B, H, W) one lookup key per head.
      strengths: (B, H) key strengths β (positive in the NTM; any sign is accepted).
      similarity: ``"cosine"`` or ``"dot"``.

    Returns:
      (B, H, N) weights; each (b, h) row is a distribution over the N slots.
    """
    key = _shape_key("content_weights", (memory, keys, strengths), similarity)
    if key not in _VALID:
        _check_shapes(
            "content_weights",
            ("memory", memory, "BNW"),
            ("keys", keys, "BHW"),
            ("strengths", strengths, "BH"),
        )
        _check_similarity("content_weights", similarity)
        _remember(key)
    return _resolve("content_weights", memory.is_cuda)(memory, keys, strengths, similarity)


def interpolate(content: Tensor, previous: Tensor, gate: Tensor) -> Tensor:
    """Interpolation between the content weights and the previous step's weights.

        w_g = g · w_c + (1 − g) · w_prev

    Args:
      content: (B, H, N) content weights w_c.
      previous: (B, H, N) weights w_prev from the previous time step.
      gate: (B, H) interpolation gate g, in [0, 1].

    Returns:
      (B, H, N) gated weights (a distribution when both inputs are and g ∈ [0, 1]).
    """
    key = _shape_key("interpolate", (content, previous, gate))
    if key not in _VALID:
        _check_shapes(
            "interpolate",
            ("content", content, "BHN"),
            ("previous", previous, "BHN"),
            ("gate", gate, "BH"),
        )
        _remember(key)
    return _resolve("interpolate", content.is_cuda)(content, previous, gate)


def shift(weights: Tensor, shift_weights: Tensor) -> Tensor:
    """Location-based shift: circular convolution of the weights with a shift distribution.

        w̃[b, h, i] = Σ_{k=0}^{2s} w[b, h, (i − o_k) mod N] · s[b, h, k],   o_k = k − s

    so offset +1 moves focus to the next slot (a one-hot at slot i becomes one at i+1 mod N).
    2s+1 may exceed N: the offsets then wrap around the memory more than once.

    Args:
      weights: (B, H, N) weights w to shift.
      shift_weights: (B, H, 2s+1) distribution over the offsets −s..s.

    Returns:
      (B, H, N) shifted weights.
    """
    key = _shape_key("shift", (weights, shift_weights))
    if key not in _VALID:
        _check_shapes(
            "shift",
            ("weights", weights, "BHN"),
            ("shift_weights", shift_weights, "BHK"),
        )
        _check_shift_count("shift", shift_weights)
        _remember(key)
    return _resolve("shift", weights.is_cuda)(weights, shift_weights)


def sharpen(weights: Tensor, gamma: Tensor) -> Tensor:
    """Sharpening, to undo the blur a fractional shift causes.

        w[b, h, i] = w̃[b,h,i]^γ[b,h] / Σ_j w̃[b,h,j]^γ[b,h]

    A weight is offset by ε = 1e-16 before the power (so a weight of exactly 0 has a finite
    gradient with respect to γ), and the powers are taken of w/max(w), so the denominator
    cannot underflow for large γ.

    Args:
      weights: (B, H, N) non-negative weights w̃.
      gamma: (B, H) sharpening exponent γ (≥ 1 in the NTM).

    Returns:
      (B, H, N) sharpened weights; each (b, h) row is a distribution over the N slots.
    """
    key = _shape_key("sharpen", (weights, gamma))
    if key not in _VALID:
        _check_shapes("sharpen", ("weights", weights, "BHN"), ("gamma", gamma, "BH"))
        _remember(key)
    return _resolve("sharpen", weights.is_cuda)(weights, gamma)


def ntm_address(
    memory: Tensor,
    previous: Tensor,
    keys: Tensor,
    strengths: Tensor,
    gate: Tensor,
    shift_weights: Tensor,
    gamma: Tensor,
    similarity: str = "cosine",
) -> Tensor:
    """The full NTM addressing pipeline (Graves et al. 2014, fig. 2), one call for all heads.

        w = sharpen(shift(interpolate(content_weights(M, k, β), w_prev, g), s), γ)

    Args:
      memory: (B, N, W) memory.
      previous: (B, H, N) each head's weights from the previous time step.
      keys: (B, H, W) lookup keys k.
      strengths: (B, H) key strengths β.
      gate: (B, H) interpolation gates g, in [0, 1].
      shift_weights: (B, H, 2s+1) distributions over the shift offsets −s..s.
      gamma: (B, H) sharpening exponents γ ≥ 1.
      similarity: ``"cosine"`` or ``"dot"``.

    Returns:
      (B, H, N) new weights; each (b, h) row is a distribution over the N slots.
    """
    key = _shape_key("ntm_address", (memory, previous, keys, strengths, gate, shift_weights, gamma), similarity)
    if key not in _VALID:
        _check_shapes(
            "ntm_address",
            ("memory", memory, "BNW"),
            ("previous", previous, "BHN"),
            ("keys", keys, "BHW"),
            ("strengths", strengths, "BH"),
            ("gate", gate, "BH"),
            ("shift_weights", shift_weights, "BHK"),
            ("gamma", gamma, "BH"),
        )
        _check_similarity("ntm_address", similarity)
        _check_shift_count("ntm_address", shift_weights)
        _remember(key)
    return _resolve("ntm_address", memory.is_cuda)(
        memory, previous, keys, strengths, gate, shift_weights, gamma, similarity
    )


def read(memory: Tensor, weights: Tensor) -> Tensor:
    """Read: each head's weighted sum of the memory slots.

        r[b, h] = Σ_i w[b, h, i] · M[b, i]

    Args:
      memory: (B, N, W) memory.
      weights: (B, H, N) read weights.

    Returns:
      (B, H, W) one read vector per head.
    """
    key = _shape_key("read", (memory, weights))
    if key not in _VALID:
        _check_shapes("read", ("memory", memory, "BNW"), ("weights", weights, "BHN"))
        _remember(key)
    return _resolve("read", memory.is_cuda)(memory, weights)


def write(memory: Tensor, weights: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """Write: every head erases, then every head adds (Graves et al. 2014, eq. 3-4).

        M' = M ∘ Π_h (1 − w_h e_hᵀ) + Σ_h w_h a_hᵀ

    The erase is a product over heads, so the heads' order does not matter.

    Args:
      memory: (B, N, W) memory M.
      weights: (B, H, N) write weights w_h.
      erase: (B, H, W) erase vectors e_h, in [0, 1].
      add: (B, H, W) add vectors a_h.

    Returns:
      (B, N, W) the new memory M'.
    """
    key = _shape_key("write", (memory, weights, erase, add))
    if key not in _VALID:
        _check_shapes(
            "write",
            ("memory", memory, "BNW"),
            ("weights", weights, "BHN"),
            ("erase", erase, "BHW"),
            ("add", add, "BHW"),
        )
        _remember(key)
    return _resolve("write", memory.is_cuda)(memory, weights, erase, add)


def ntm_memory_step(
    memory: Tensor,
    previous: Tensor,
    keys: Tensor,
    strengths: Tensor,
    gate: Tensor,
    shift_weights: Tensor,
    gamma: Tensor,
    erase: Tensor,
    add: Tensor,
    similarity: str = "cosine",
) -> tuple[Tensor, Tensor, Tensor]:
    """One memory's whole NTM step: every head addresses, the read heads read, the write heads write.

    The H heads are read heads first, then the H_w = erase.shape[1] write heads (1 ≤ H_w ≤ H).
    Reads see the memory before the write:

        w = ntm_address(M, w_prev, k, β, g, s, γ)                          (B, H, N)
        r_h = Σ_i w_h[i] M_i                     for h < H − H_w           (B, H − H_w, W)
        M' = M ∘ Π_{h ≥ H−H_w} (1 − w_h e_hᵀ) + Σ_{h ≥ H−H_w} w_h a_hᵀ    (B, N, W)

    The same as calling :func:`ntm_address`, :func:`read` and :func:`write` in turn; on CUDA it
    is one fused kernel launch forward and one backward.

    Args:
      memory: (B, N, W) memory M.
      previous, keys, strengths, gate, shift_weights, gamma: as for :func:`ntm_address`, for all H heads.
      erase: (B, H_w, W) erase vectors of the write heads, in [0, 1].
      add: (B, H_w, W) add vectors of the write heads.
      similarity: ``"cosine"`` or ``"dot"``.

    Returns:
      (weights (B, H, N), reads (B, H − H_w, W), new memory (B, N, W)).
    """
    key = _shape_key(
        "ntm_memory_step",
        (memory, previous, keys, strengths, gate, shift_weights, gamma, erase, add),
        similarity,
    )
    if key not in _VALID:
        _check_shapes(
            "ntm_memory_step",
            ("memory", memory, "BNW"),
            ("previous", previous, "BHN"),
            ("keys", keys, "BHW"),
            ("strengths", strengths, "BH"),
            ("gate", gate, "BH"),
            ("shift_weights", shift_weights, "BHK"),
            ("gamma", gamma, "BH"),
            ("erase", erase, "BVW"),
            ("add", add, "BVW"),
        )
        _check_similarity("ntm_memory_step", similarity)
        _check_shift_count("ntm_memory_step", shift_weights)
        heads, write_heads = previous.shape[1], erase.shape[1]
        if not 1 <= write_heads <= heads:
            raise ValueError(
                f"ntm_memory_step: erase has shape {tuple(erase.shape)}: its {write_heads} write heads must be "
                f"between 1 and the {heads} heads that address the memory"
            )
        _remember(key)
    return _resolve("ntm_memory_step", memory.is_cuda)(
        memory, previous, keys, strengths, gate, shift_weights, gamma, erase, add, similarity
    )


# -- the DNC's memory management (Graves et al. 2016, Methods) -----------------------------------


def dnc_usage(usage: Tensor, write_weights: Tensor, read_weights: Tensor, free_gates: Tensor) -> Tensor:
    """Usage after the last step's write and this step's free gates.

        u' = (u + w − u ∘ w) ∘ ψ,   ψ = Π_r (1 − f_r w_r)

    A slot's usage rises when it is written and falls when a read head that read it frees it.

    Args:
      usage: (B, N) usage u from the previous step, in [0, 1].
      write_weights: (B, N) the previous step's write weights w.
      read_weights: (B, R, N) the previous step's read weights w_r.
      free_gates: (B, R) free gates f_r, in [0, 1].

    Returns:
      (B, N) the new usage u'.
    """
    key = _shape_key("dnc_usage", (usage, write_weights, read_weights, free_gates))
    if key not in _VALID:
        _check_shapes(
            "dnc_usage",
            ("usage", usage, "BN"),
            ("write_weights", write_weights, "BN"),
            ("read_weights", read_weights, "BRN"),
            ("free_gates", free_gates, "BR"),
        )
        _remember(key)
    return _resolve("dnc_usage", usage.is_cuda)(usage, write_weights, read_weights, free_gates)


def dnc_allocation(usage: Tensor) -> Tensor:
    """Allocation weights: the least used slots first.

        a[φ_j] = (1 − u[φ_j]) Π_{i<j} u[φ_i],   φ = the slots sorted by ascending usage

    Ties are broken by slot index (a stable sort), so the result is deterministic. The sort
    is a permutation: gradients flow through the usage values, not through the order.

    Args:
      usage: (B, N) usage u, in [0, 1].

    Returns:
      (B, N) allocation weights (they sum to at most 1).
    """
    key = _shape_key("dnc_allocation", (usage,))
    if key not in _VALID:
        _check_shapes("dnc_allocation", ("usage", usage, "BN"))
        _remember(key)
    return _resolve("dnc_allocation", usage.is_cuda)(usage)


def dnc_link(link: Tensor, precedence: Tensor, write_weights: Tensor) -> tuple[Tensor, Tensor]:
    """The temporal link matrix and the precedence weights after a write.

        L'[i, j] = (1 − w_i − w_j) L[i, j] + w_i p[j]   (i ≠ j),   L'[i, i] = 0
        p' = (1 − Σ_i w_i) p + w

    L[i, j] is how much slot i was written right after slot j. The link update uses the
    precedence from before this write.

    Args:
      link: (B, N, N) link matrix L.
      precedence: (B, N) precedence weights p.
      write_weights: (B, N) this step's write weights w.

    Returns:
      (new link (B, N, N) with a zero diagonal, new precedence (B, N)).
    """
    key = _shape_key("dnc_link", (link, precedence, write_weights))
    if key not in _VALID:
        _check_shapes(
            "dnc_link",
            ("link", link, "BNM"),
            ("precedence", precedence, "BN"),
            ("write_weights", write_weights, "BM"),
        )
        if link.shape[1] != link.shape[2]:
            raise ValueError(f"dnc_link: link has shape {tuple(link.shape)} but must be square (B, N, N)")
        _remember(key)
    return _resolve("dnc_link", link.is_cuda)(link, precedence, write_weights)


def dnc_directional(link: Tensor, read_weights: Tensor) -> tuple[Tensor, Tensor]:
    """Forward and backward weightings: one step along the links from each read head's weights.

        f_r = L w_r,   b_r = Lᵀ w_r

    Args:
      link: (B, N, N) link matrix L.
      read_weights: (B, R, N) the previous step's read weights w_r.

    Returns:
      (forward (B, R, N), backward (B, R, N)).
    """
    key = _shape_key("dnc_directional", (link, read_weights))
    if key not in _VALID:
        _check_shapes("dnc_directional", ("link", link, "BNM"), ("read_weights", read_weights, "BRN"))
        if link.shape[1] != link.shape[2]:
            raise ValueError(f"dnc_directional: link has shape {tuple(link.shape)} but must be square (B, N, N)")
        _remember(key)
    return _resolve("dnc_directional", link.is_cuda)(link, read_weights)


# -- attention over a sequence -------------------------------------------------------------------


def additive_attention(query_projection: Tensor, key_projection: Tensor, v: Tensor,
                       keys: Tensor) -> tuple[Tensor, Tensor]:
    """Additive (Bahdanau) attention: the score, the softmax over the sequence and the context, in one op.

        e[b, h, i] = v_h · tanh(qp[b, h] + kp[b, h, i])
        a[b, h, i] = exp(e[b, h, i]) / Σ_j exp(e[b, h, j])
        ctx[b, h]  = Σ_i a[b, h, i] · k[b, i]

    The projections are inputs, not parameters of the op: qp = W_h q changes at every step,
    while kp = U_h k_i depends on the keys alone, so a model computes it once per sequence
    and passes it at every step. There is no padding mask (every element is attended to).

    Args:
      query_projection: (B, H, A) each head's projected query W_h q.
      key_projection: (B, H, S, A) each head's projected keys U_h k_i (a strided view, such
        as a transpose of (B, S, H, A), is read in place by the kernel).
      v: (H, A) each head's score vector v_h.
      keys: (B, S, D) the keys k_i, which are also the values.

    Returns:
      (context (B, H, D), weights (B, H, S)); each (b, h) row of the weights is a
      distribution over the S elements.
    """
    arguments = (query_projection, key_projection, v, keys)
    key = _shape_key("additive_attention", arguments, *(getattr(t, "dtype", None) for t in arguments))
    if key not in _VALID:
        _check_shapes(
            "additive_attention",
            ("query_projection", query_projection, "BHA"),
            ("key_projection", key_projection, "BHSA"),
            ("v", v, "HA"),
            ("keys", keys, "BSD"),
        )
        dtypes = {name: t.dtype for name, t in (("query_projection", query_projection),
                                                ("key_projection", key_projection), ("v", v), ("keys", keys))}
        if len(set(dtypes.values())) > 1:
            listed = ", ".join(f"{name} {str(dtype).removeprefix('torch.')}" for name, dtype in dtypes.items())
            raise TypeError(f"additive_attention: every argument must have the same dtype, got {listed}")
        _remember(key)
    return _resolve("additive_attention", query_projection.is_cuda)(query_projection, key_projection, v, keys)


def hop_read(query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """A memory network hop's read (Sukhbaatar et al. 2015, eq. 1-2): attention over the kept slots, then their sum.

        p[b, i] = exp(m[b, i] · u[b]) / Σ_{j kept} exp(m[b, j] · u[b])    (0 where mask[b, i] is False)
        o[b]    = Σ_i p[b, i] · c[b, i]

    A row with no kept slot (an empty story) gives zero weights and a zero read. The mask is
    not differentiable; every other input is.

    Args:
      query: (B, D) the hop's controller state u.
      keys: (B, N, D) the input memory m_i, one slot per sentence.
      values: (B, N, W) the output memory c_i.
      mask: (B, N) bool, True for a slot that holds a sentence.

    Returns:
      (read o (B, W), weights p (B, N)).
    """
    arguments = (query, keys, values, mask)
    key = _shape_key("hop_read", arguments, *(getattr(t, "dtype", None) for t in arguments))
    if key not in _VALID:
        _check_shapes("hop_read", ("query", query, "BD"), ("keys", keys, "BND"), ("values", values, "BNW"),
                      ("mask", mask, "BN"))
        if mask.dtype != torch.bool:
            raise TypeError(f"hop_read: mask must be a bool tensor, got {str(mask.dtype).removeprefix('torch.')}")
        dtypes = {"query": query.dtype, "keys": keys.dtype, "values": values.dtype}
        if query.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"hop_read: query, keys and values must be float32 or float64, got "
                            f"{str(query.dtype).removeprefix('torch.')}")
        if len(set(dtypes.values())) > 1:
            listed = ", ".join(f"{name} {str(dtype).removeprefix('torch.')}" for name, dtype in dtypes.items())
            raise TypeError(f"hop_read: query, keys and values must have the same dtype, got {listed}")
        _remember(key)
    return _resolve("hop_read", query.is_cuda)(query, keys, values, mask)
