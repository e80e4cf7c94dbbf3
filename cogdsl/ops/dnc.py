"""The DNC's memory-management ops: each one's reference equation and its declaration.

The equations of Graves et al. (2016), "Hybrid computing using a neural network with dynamic
external memory", Methods, "Dynamic memory allocation" and "Temporal memory linkage", batch
first. Each function here is an op's reference (the ``"reference"`` backend, and the ``"torch"``
one too: no DNC op has a hand-written backward), and its ``@op`` line declares the op's shape
contract: :mod:`cogdsl.ops` exports the checked, dispatching function of the same name and
docstring. The Triton kernels (:mod:`cogdsl.kernels.dnc`) are tested against these functions.

Shape letters: B batch, N memory slots (M: the link matrix's second N), R read heads.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cogdsl.ops.declare import op

__all__ = ["dnc_allocation", "dnc_directional", "dnc_link", "dnc_usage"]


def _square_link(op_name: str, args: dict[str, Tensor]) -> None:
    link = args["link"]
    if link.shape[1] != link.shape[2]:
        raise ValueError(f"{op_name}: link has shape {tuple(link.shape)} but must be square (B, N, N)")


@op(usage="BN", write_weights="BN", read_weights="BRN", free_gates="BR")
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
    retention = torch.prod(1 - free_gates.unsqueeze(-1) * read_weights, dim=1)  # ψ (B, N)
    return (usage + write_weights - usage * write_weights) * retention


@op(usage="BN")
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
    sorted_usage, order = torch.sort(usage, dim=-1, stable=True)  # (B, N)
    ones = torch.ones_like(sorted_usage[..., :1])
    before = torch.cumprod(torch.cat([ones, sorted_usage[..., :-1]], dim=-1), dim=-1)  # Π_{i<j}
    return torch.zeros_like(usage).scatter(-1, order, (1 - sorted_usage) * before)


@op(link="BNM", precedence="BN", write_weights="BM", checks=(_square_link,))
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
    w_i = write_weights.unsqueeze(-1)  # (B, N, 1)
    w_j = write_weights.unsqueeze(-2)  # (B, 1, N)
    new_link = (1 - w_i - w_j) * link + w_i * precedence.unsqueeze(-2)
    off_diagonal = 1 - torch.eye(link.shape[-1], dtype=link.dtype, device=link.device)
    new_precedence = (1 - write_weights.sum(-1, keepdim=True)) * precedence + write_weights
    return new_link * off_diagonal, new_precedence


@op(link="BNM", read_weights="BRN", checks=(_square_link,))
def dnc_directional(link: Tensor, read_weights: Tensor) -> tuple[Tensor, Tensor]:
    """Forward and backward weightings: one step along the links from each read head's weights.

        f_r = L w_r,   b_r = Lᵀ w_r

    Args:
      link: (B, N, N) link matrix L.
      read_weights: (B, R, N) the previous step's read weights w_r.

    Returns:
      (forward (B, R, N), backward (B, R, N)).
    """
    forward = torch.bmm(read_weights, link.transpose(1, 2))  # f[r, i] = Σ_j L[i, j] w_r[j]
    backward = torch.bmm(read_weights, link)  # b[r, i] = Σ_j L[j, i] w_r[j]
    return forward, backward

