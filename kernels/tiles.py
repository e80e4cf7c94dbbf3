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

#: Values a program keeps in registers at once, over all its tiles: 64 a thread on 8 warps (see :func:`blocks`).
TILE_VALUES = 16384
#: The (BLOCK_N, BLOCK_W) tiles :func:`blocks` counts next to the broadcast (BLOCK_H, BLOCK_N, BLOCK_W) one.
SLOT_TILES = 7
#: Warps of a program whose block sizes :func:`blocks` (or hop's, additive's) picks; the DNC's run on 4.
NUM_WARPS = 8
#: ptxas's register ceiling, said explicitly: without it ptxas may aim at 96 or 128 registers a thread, to
#: fit more programs on an SM, and spill to get there (8 to 32 bytes in the address and step backwards).
MAX_REGISTERS = 255
#: Launch options of every kernel; a launcher's block sizes add ``num_warps`` (without, Triton's default: 4).
#: Fused multiply-add on, said explicitly: Triton 3.9 warns when it is left to its default, which is to change.
LAUNCH: dict[str, object] = {"enable_fp_fusion": True, "maxnreg": MAX_REGISTERS}


def blocks(heads: int, slots: int, width: int, offsets: int | None = None) -> dict[str, int]:
    """Block sizes for a launch: BLOCK_H ≥ H, BLOCK_W ≥ W, the slot tile BLOCK_N, BLOCK_K ≥ K if K is
    given, and ``num_warps``.

    BLOCK_N counts every tile a program holds at once, per slot of the tile: the broadcast
    (BLOCK_H, BLOCK_N, BLOCK_W) tile (a read, a similarity) is BLOCK_H · BLOCK_W values, and the
    (BLOCK_N, BLOCK_W) tiles of the memory and its gradients (M, dM', dM, the write's keep and
    its products, and their addresses, 64-bit) are ``SLOT_TILES`` · BLOCK_W more. BLOCK_N is the
    largest power of two with BLOCK_N · BLOCK_W · (BLOCK_H + SLOT_TILES) ≤ ``TILE_VALUES``. The
    (BLOCK_H, BLOCK_N) rows of the weights are small beside them (BLOCK_H ≤ BLOCK_W in every
    spec) and are left in the margin.

    16,384 values over 8 warps are 64 a thread: 128 of the 255 registers in float64, which
    takes two a value, and the rest for indices, masks and scalars. Launches do not say their
    dtype here, so every size fits float64, and float32 has room to spare. Seven is fitted to
    measurements, not derived: it gives the largest BLOCK_N at which the heaviest kernel, the
    memory step's backward, compiles with no spill in float64 at one, two and sixteen heads
    (W = 20, 8 warps; one step larger it spilled 360, 200 and 60 bytes). For W = 20
    (BLOCK_W = 32):

    =====  ===================  =======  ======================
    heads  values per slot      BLOCK_N  before (3-D tile only)
    =====  ===================  =======  ======================
    1      32 · (1 + 7) = 256   64       256
    2      32 · (2 + 7) = 288   32       128
    16     32 · (16 + 7) = 736  16       16
    =====  ===================  =======  ======================

    ``tests/kernels/test_compile_for_gpu.py`` checks the sizes of the specs and of the bench
    with ptxas. :func:`cogdsl.kernels.tiling` caps BLOCK_N further.
    """
    block_h = triton.next_power_of_2(max(heads, 1))
    block_w = triton.next_power_of_2(max(width, 1))
    fits = max(1, TILE_VALUES // (block_w * (block_h + SLOT_TILES)))
    block_n = min(triton.next_power_of_2(max(slots, 1)), 1 << (fits.bit_length() - 1))
    cap = max_tile_slots()
    if cap is not None:
        block_n = min(block_n, cap)
    sizes = {"BLOCK_H": block_h, "BLOCK_N": block_n, "BLOCK_W": block_w}
    if offsets is not None:
        sizes["BLOCK_K"] = triton.next_power_of_2(max(offsets, 1))
    sizes["num_warps"] = NUM_WARPS
    return sizes


def contiguous(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """The kernels index with the shapes' own strides: make every argument contiguous (a no-op when it is)."""
    return [t.contiguous() for t in tensors]


def batch_rows(t: torch.Tensor) -> tuple[torch.Tensor, int]:
    """A (B, H, W) argument and its batch stride, for a kernel that steps batch elements by that stride and
    reads each element's (H, W) rows packed.

    The key, erase and add vectors are views of the controller's interface (B, I), sliced and reshaped:
    their rows are packed and only the batch stride, I, differs from a contiguous tensor's. Such a view is
    passed as it is, saving a copy kernel a step; anything else is made contiguous.
    """
    heads, width = t.shape[-2], t.shape[-1]
    packed = (width == 1 or t.stride(-1) == 1) and (heads == 1 or t.stride(-2) == width)
    if not packed:
        t = t.contiguous()
    return t, (t.stride(0) if t.shape[0] > 1 else heads * width)


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
