"""What every kernel family shares: block sizes, the numerical constants and small tile helpers.

Every kernel runs one program per batch element and walks the N slots in tiles of
``BLOCK_N``; a head's row of a (B, H, N) array, a memory tile (BLOCK_N, BLOCK_W) and the
heads' vectors (BLOCK_H, BLOCK_W) are the register tiles. Sizes are padded to powers of two
and masked; padded heads and slots are kept at exactly zero so that no sum over heads or
slots picks up a NaN from a lane that does not exist.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from cogdsl.kernels import max_tile_slots
from cogdsl.ops.ntm import COSINE_EPS as _COSINE_EPS
from cogdsl.ops.ntm import SHARPEN_EPS as _SHARPEN_EPS

COSINE_EPS = tl.constexpr(_COSINE_EPS)
SHARPEN_EPS = tl.constexpr(_SHARPEN_EPS)

#: Elements of the largest broadcast tile a kernel forms, (BLOCK_H, BLOCK_N, BLOCK_W). It sets
#: BLOCK_N so that the tile stays in registers: 8192 values over 4 warps is 64 per thread.
TILE_ELEMENTS = 8192
NUM_WARPS = 4
#: Launch options of every kernel. Fused multiply-add on, said explicitly: Triton 3.9 warns when
#: it is left to its default, which is to change.
LAUNCH: dict[str, object] = {"num_warps": NUM_WARPS, "enable_fp_fusion": True}


def blocks(heads: int, slots: int, width: int, offsets: int | None = None) -> dict[str, int]:
    """Block sizes for a launch: BLOCK_H ≥ H, BLOCK_W ≥ W, the slot tile BLOCK_N, and BLOCK_K ≥ K if K is given."""
    block_h = triton.next_power_of_2(max(heads, 1))
    block_w = triton.next_power_of_2(max(width, 1))
    block_n = min(triton.next_power_of_2(max(slots, 1)), max(1, TILE_ELEMENTS // (block_h * block_w)))
    cap = max_tile_slots()
    if cap is not None:
        block_n = min(block_n, cap)
    sizes = {"BLOCK_H": block_h, "BLOCK_N": block_n, "BLOCK_W": block_w}
    if offsets is not None:
        sizes["BLOCK_K"] = triton.next_power_of_2(max(offsets, 1))
    return sizes


def contiguous(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """The kernels index with the shapes' own strides: make every argument contiguous (a no-op when it is)."""
    return [t.contiguous() for t in tensors]


@triton.jit
def row(matrix, rows, index):
    """The row ``index`` of a register tile (R, C) as a (C,) vector; ``rows`` is arange(R)."""
    return tl.sum(tl.where(rows[:, None] == index, matrix, 0.0), axis=0)


@triton.jit
def add_to_row(matrix, rows, index, values):
    """``matrix`` with ``values`` (C,) added to its row ``index``."""
    return matrix + tl.where(rows[:, None] == index, values[None, :], 0.0)


@triton.jit
def load_rows(pointer, rows, row_count, row_length, columns, column_mask):
    """Rows [0, row_count) of a (rows, row_length) array as a padded (R, C) tile, zeros outside."""
    mask = (rows[:, None] < row_count) & column_mask[None, :]
    return tl.load(pointer + rows[:, None] * row_length + columns[None, :], mask=mask, other=0.0)


@triton.jit
def store_rows(pointer, values, rows, row_count, row_length, columns, column_mask):
    mask = (rows[:, None] < row_count) & column_mask[None, :]
    tl.store(pointer + rows[:, None] * row_length + columns[None, :], values, mask=mask)


@triton.jit
def online_softmax_tile(row_max, row_sum, total, scores, valid, values):
    """One tile of an online softmax and the weighted sum it normalises.

    With the running maximum m, sum l = Σ exp(s_j − m) and total t = Σ exp(s_j − m) v_j of the
    tiles so far, and this tile's scores (T,), where ``valid`` (T,) marks the lanes that count,
    and values (T, C): m' = max(m, max s), then l and t are rescaled by exp(m − m') and this
    tile's exp(s − m') added. Returns (m', l', t').
    """
    scores = tl.where(valid, scores, -1.0e38)
    new_max = tl.maximum(row_max, tl.max(scores, axis=0))
    rescale = tl.exp(row_max - new_max)
    exps = tl.where(valid, tl.exp(scores - new_max), 0.0)
    return (new_max, row_sum * rescale + tl.sum(exps, axis=0),
            total * rescale + tl.sum(exps[:, None] * values, axis=0))
