"""Sparse Access Memory's ops: each one's reference equation and its declaration.

The equations of Rae et al. (2016), "Scaling Memory-Augmented Neural Networks with Sparse Reads and
Writes" (arXiv 1610.09027), §3.1-3.2 and supplement A.3, batch first. Each ``@op`` function here is an
op's reference (the ``"reference"`` backend, and the ``"torch"`` one too: no SAM op has a hand-written
backward; the ``"triton"`` kernels of :mod:`cogdsl.kernels.sam` are tested against these equations), and
its ``@op`` line declares the op's shape contract: :mod:`cogdsl.ops` exports the checked, dispatching
function of the same name.

The choices of the index sets are not ops: which K slots a read head takes (:func:`sam_top_k`), which
slot is the least recently accessed (:func:`sam_lru`) and when a slot counts as accessed
(:func:`sam_usage`) are piecewise constant, so they carry no gradient (the paper keeps them out of the
differentiable graph too, §3.5). The ops take them as given tensors and are differentiable in every
floating-point input; gradient reaches only the rows they name (supplement A.2, eq. 7).

This dense form computes the K best slots of a head from all N similarities (O(N W) a step), where the
paper uses an approximate nearest-neighbour index (O(log N)); the equations, and the gradients, are the
same.

Shape letters: B batch, N memory slots, W slot width, R read heads, K slots read per head (the letter
the NTM ops use for shift offsets; no SAM op has both).
"""

from __future__ import annotations

import torch
from torch import Tensor

from cogdsl.ops.declare import op
from cogdsl.ops.ntm import COSINE_EPS

__all__ = ["sam_lru", "sam_read", "sam_top_k", "sam_usage", "sam_write", "sam_write_weights"]


def _cosine(keys: Tensor, rows: Tensor) -> Tensor:
    """K(q, m) = q·m / (|q| |m| + ε) of each head's key (B, R, W) with its rows (B, R, K, W) → (B, R, K);
    norms as sqrt(Σ x² + ε²), ε = COSINE_EPS, exactly as :func:`cogdsl.ops.content_weights` computes them."""
    eps_sq = COSINE_EPS * COSINE_EPS
    dots = (rows * keys.unsqueeze(2)).sum(-1)  # (B, R, K)
    key_norms = torch.sqrt(keys.square().sum(-1) + eps_sq)  # (B, R)
    row_norms = torch.sqrt(rows.square().sum(-1) + eps_sq)  # (B, R, K)
    return dots / (key_norms.unsqueeze(-1) * row_norms + COSINE_EPS)


def sam_top_k(memory: Tensor, keys: Tensor, k: int) -> Tensor:
    """The K slots each read head reads: the indices of the K largest cosine similarities K(q_h, M(i)).

    Ties go to the lowest index (a stable sort), so a memory of equal rows (the first steps of a
    sequence) is read the same way on every device. An index set: no gradient.

    Args:
      memory: (B, N, W) the memory M_t the heads read.
      keys: (B, R, W) the read keys q_t.
      k: K, at most N.

    Returns:
      (B, R, K) long: each head's slots, the most similar first.
    """
    with torch.no_grad():
        rows = memory.unsqueeze(1)  # (B, 1, N, W): every head sees every row
        similarity = _cosine(keys, rows.expand(-1, keys.shape[1], -1, -1))  # (B, R, N)
        return torch.sort(similarity, dim=-1, descending=True, stable=True).indices[..., :k]


def sam_lru(usage: Tensor) -> Tensor:
    """I^U_t, the one-hot of the least recently accessed slot (§3.2, eq. 6): argmax of U^(2).

    ``usage`` is U^(2), the steps since each slot was last accessed (:func:`sam_usage`), so the least
    recently accessed slot has the largest. (The paper writes argmin, which is right for its discounted
    usage U^(1); for U^(2) its own words, "least recently accessed", and the LRU ring of supplement A.3
    fix the intent.) Ties go to the lowest index. An index: no gradient.

    Args:
      usage: (B, N) U^(2) after the previous step.

    Returns:
      (B, N) the one-hot I^U_t, in usage's dtype.
    """
    with torch.no_grad():
        return torch.nn.functional.one_hot(usage.argmax(dim=-1), usage.shape[-1]).to(usage.dtype)


def sam_usage(usage: Tensor, accessed: Tensor, delta: float) -> Tensor:
    """U^(2) after this step (§3.2): 0 for a slot accessed now, one more step for every other.

        U_t(i) = 0 if w^W_t(i) + Σ_h w^R_t,h(i) > δ, else U_{t-1}(i) + 1

    which is the paper's U^(2)_t(i) = t − max{s ≤ t : slot i accessed at s}. A slot never accessed
    counts from t = −1 (U_0 = 0 before the first step), so it is older than any slot accessed since.
    Thresholds: no gradient.

    Args:
      usage: (B, N) U^(2) after the previous step.
      accessed: (B, N) w^W_t + Σ_h w^R_t,h, this step's write weights and read weights summed.
      delta: δ, the weight above which a slot counts as accessed (the paper: "typically 0.005").

    Returns:
      (B, N) the new U^(2).
    """
    with torch.no_grad():
        return torch.where(accessed > delta, torch.zeros_like(usage), usage + 1)


@op(read_weights="BRN", lru="BN", alpha="B", gamma="B")
def sam_write_weights(read_weights: Tensor, lru: Tensor, alpha: Tensor, gamma: Tensor) -> Tensor:
    """SAM's write weights: the slots read at the previous step and the least recently accessed slot.

        w^W_t = α_t (γ_t w̄^R_{t−1} + (1 − γ_t) I^U_t),   w̄^R_{t−1} = (1/R) Σ_h w^R_{t−1,h}

    (§3.2, eq. 5; supplement A.3, eq. 9). The paper writes one head; with R read heads the one write
    head takes the mean of their previous weights (R = 1 is exactly the paper).

    Args:
      read_weights: (B, R, N) the read weights of the previous step, w^R_{t−1}.
      lru: (B, N) the one-hot I^U_t of the least recently accessed slot (:func:`sam_lru`).
      alpha: (B,) the write gate α_t, in [0, 1].
      gamma: (B,) the interpolation gate γ_t, in [0, 1].

    Returns:
      (B, N) write weights w^W_t (at most R·K + 1 non-zero).
    """
    g = gamma.unsqueeze(-1)  # (B, 1)
    return alpha.unsqueeze(-1) * (g * read_weights.mean(dim=1) + (1 - g) * lru)


@op(memory="BNW", write_weights="BN", add="BW", lru="BN")
def sam_write(memory: Tensor, write_weights: Tensor, add: Tensor, lru: Tensor) -> Tensor:
    """SAM's write: the least recently accessed row is erased whole, then the word is added.

        M_t = (1 − I^U_t 1ᵀ) ∘ M_{t−1} + w^W_t a_tᵀ

    (eq. 3 with R_t = I^U_t 1ᵀ, §3.2; supplement A.3, eq. 8). There is no erase vector: the row to
    be reused "is set to zero before being written to"; every other row is added to. The erased row
    passes no gradient back to M_{t−1}.

    Args:
      memory: (B, N, W) the memory M_{t−1}.
      write_weights: (B, N) w^W_t (:func:`sam_write_weights`).
      add: (B, W) the word written, a_t.
      lru: (B, N) the one-hot I^U_t of the row erased.

    Returns:
      (B, N, W) the memory M_t.
    """
    return (1 - lru).unsqueeze(-1) * memory + write_weights.unsqueeze(-1) * add.unsqueeze(1)


@op(memory="BNW", keys="BRW", strengths="BR", slots="BRK")
def sam_read(memory: Tensor, keys: Tensor, strengths: Tensor, slots: Tensor) -> tuple[Tensor, Tensor]:
    """SAM's sparse read: a content read over the K slots each head chose, zero weight elsewhere.

        s_k = K(q_t, M_t(i_k)) for the K slots i_1..i_K,   K(q, m) = q·m / (|q| |m| + ε)
        w̃^R_t(i_k) = softmax_k(β s_k),   w̃^R_t(i) = 0 for every other slot
        r_t = Σ_k w̃^R_t(i_k) M_t(i_k)

    (§3.1, eq. 4, normalised over the K chosen slots as the K-nearest-neighbour form must be; ε = 1e-8,
    norms as sqrt(Σ x² + ε²), as :func:`cogdsl.ops.content_weights`). Only the K rows are gathered,
    so every other row of the memory gets exactly zero gradient (supplement A.2). β = 1 is the
    paper's p_t, which has no strength; ``slots`` are distinct per head (:func:`sam_top_k`).

    Args:
      memory: (B, N, W) the memory M_t.
      keys: (B, R, W) the read keys q_t, one per head.
      strengths: (B, R) key strengths β (positive).
      slots: (B, R, K) long, the slots each head reads.

    Returns:
      (weights (B, R, N) with K non-zeros per head summing to 1, reads (B, R, W)).
    """
    batch, heads, k = slots.shape
    width = memory.shape[-1]
    index = slots.reshape(batch, heads * k, 1).expand(batch, heads * k, width)
    rows = memory.gather(1, index).view(batch, heads, k, width)  # (B, R, K, W): M_t(i_k)
    chosen = torch.softmax(strengths.unsqueeze(-1) * _cosine(keys, rows), dim=-1)  # (B, R, K)
    weights = memory.new_zeros(batch, heads, memory.shape[1]).scatter(-1, slots, chosen)
    reads = (chosen.unsqueeze(-1) * rows).sum(dim=2)  # (B, R, W)
    return weights, reads
