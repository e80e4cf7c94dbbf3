"""The memory step with each batch element's slots split over several programs (kernels/memory_split.py).

Forced with :func:`cogdsl.kernels.splitting` (on a GPU it is chosen for large memories), every addressing
pipeline must give the reference's values and gradients, with the chunk edges inside the shift's reach, and the
partial sums combined across chunks.
"""

from __future__ import annotations

import pytest
import torch

from cogdsl import kernels, ops
from cogdsl.kernels.memory_split import chunk_slots
from cogdsl.kernels.memory_step import SPLIT_MIN_TILES, split_count
from tests.kernels.helpers import check_op, count_launches
from tests.kernels.test_pipelines import PIPELINES, STEP_ARGS, _arguments, _grads, _leaves, _name

FORWARD = ["_split_logits_kernel", "_split_stage_kernel", "_split_write_kernel"]
BACKWARD = ["_split_total_kernel", "_split_sharpen_grad_kernel", "_split_shift_gate_grad_kernel",
            "_split_memory_grad_kernel"]


@pytest.mark.parametrize("flags", PIPELINES, ids=[_name(f) for f in PIPELINES])
def test_every_pipeline_split_matches_the_reference(device: str, flags: tuple[bool, ...]) -> None:
    """11 slots in tiles of 4 over 3 chunks (the last one short): values and every gradient, float64."""
    seed = 900 + sum(f << i for i, f in enumerate(flags))
    with kernels.tiling(4), kernels.splitting(3), count_launches() as launches:
        check_op("memory_step", {}, dtype=torch.float64, device=device, seed=seed, leaves=_leaves(seed, offsets=3),
                 make_args=_arguments(flags, True), grad=_grads(flags, True), arg_names=STEP_ARGS,
                 similarity="dot" if seed % 2 else "cosine")
    names = {launch.name for launch in launches}
    assert names <= set(FORWARD + BACKWARD) and "_split_write_kernel" in names
    assert ("_split_logits_kernel" in names) == flags[0]
    assert ("_split_sharpen_grad_kernel" in names) == flags[3]
    assert all(launch.args["S"] == 3 for launch in launches)  # 3 tiles: a chunk each, the last one short


@pytest.mark.parametrize(("chunks", "dtype"), [(2, torch.float64), (5, torch.float32), (64, torch.float64)],
                         ids=["2-f64", "5-f32", "64-f64"])
def test_ntm_memory_step_split_over_many_chunks(device: str, dtype: torch.dtype, chunks: int) -> None:
    """Every stage, K = 5 offsets reaching across chunk edges (11 slots in 6 tiles of 2: 2 chunks of 3 tiles, 3
    of 2, or 6 of 1 when 64 are asked for), float32 against the calibrated float32 bound."""
    leaves = _leaves(31, offsets=5)
    with kernels.tiling(2), kernels.splitting(chunks), count_launches() as launches:
        check_op("memory_step", {}, dtype=dtype, device=device, seed=31, leaves=leaves,
                 make_args=_arguments((True,) * 4, True), grad=_grads((True,) * 4, True), arg_names=STEP_ARGS)
    assert [launch.name for launch in launches] == FORWARD + BACKWARD
    assert launches[0].args["S"] == {2: 2, 5: 3, 64: 6}[chunks] == chunk_slots(11, 2, chunks)[1]


def test_one_write_head_and_no_read_head(device: str) -> None:
    """R = 0: the partial reads are empty, and the step is still the reference's."""
    from tests.kernels.helpers import make_inputs

    x = make_inputs(40, batch=2, heads=1, slots=13, width=3, write_heads=1)
    args = [x[name].to(device) for name in STEP_ARGS]
    with kernels.tiling(4), kernels.splitting(4), ops.use_backend("triton"):
        got = ops.ntm_memory_step(*args)
    want = ops.ntm_memory_step(*[a.cpu() for a in args])
    assert got[1].shape == (2, 0, 3)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g.cpu(), w, rtol=1e-10, atol=1e-12)


def test_the_step_op_passes_opcheck_split() -> None:
    """The split runs inside the step's own custom op: its fakes and autograd still hold."""
    leaves = [t.float().requires_grad_() for t in _leaves(50, offsets=3).values()]
    args = _arguments((True, False, True, True), True)(leaves)
    args[4] = torch.empty(1)  # the launchers' placeholder for the absent gate
    with kernels.tiling(4), kernels.splitting(3), count_launches() as launches:
        torch.library.opcheck(torch.ops.cogdsl.ntm_memory_step.default, (*args, True, True, False, True, True),
                              test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))
    assert {launch.name for launch in launches} <= set(FORWARD + BACKWARD) and launches


def test_chunks_cover_the_slots_in_whole_tiles() -> None:
    for slots, block, asked in [(11, 4, 3), (65536, 32, 5), (100, 16, 64), (1, 8, 4), (4096, 32, 1)]:
        chunk, count = chunk_slots(slots, block, asked)
        assert chunk % block == 0 and (count - 1) * chunk < slots <= count * chunk
        assert count <= max(1, asked)


def test_the_split_is_chosen_for_large_memories_and_small_batches() -> None:
    assert split_count(64, 2048, 132) == 5  # N = 65,536 in tiles of 32: 320 programs on 132 SMs
    assert split_count(64, 4, 132) == 1  # N = 128: one program per batch element
    assert split_count(256, 2048, 132) == 1  # the batch alone fills the device
    assert split_count(1, SPLIT_MIN_TILES, 132) == SPLIT_MIN_TILES // 8  # every chunk keeps 8 tiles
    assert split_count(4, SPLIT_MIN_TILES - 1, 132) == 1


def test_splitting_refuses_a_bad_count() -> None:
    with pytest.raises(ValueError, match="at least 1"), kernels.splitting(0):
        pass
