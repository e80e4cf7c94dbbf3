"""Every kernel compiles for real NVIDIA GPUs (Hopper sm_90, Ampere sm_80), with no GPU present.

The interpreter runs a kernel's Python line by line on NumPy, so it accepts code that the
compiler rejects: a global that is not a constexpr, a loop-carried variable whose type
changes, a dtype mismatch. Triton can compile ahead of time for a target it is not running
on (it ships ptxas), so CI checks here that the kernels reach PTX and a cubin, in float32
and float64, at the block sizes the launchers pick for small and large memories.
"""

from __future__ import annotations

import pytest

from tests.kernels.compile_check import compile_kernels

pytest.importorskip("triton")

KERNELS = {
    "content": ["_content_forward_kernel", "_content_backward_kernel"],
    "ntm_address": ["_address_forward_kernel", "_address_backward_kernel"],
    "read_write": ["_read_forward_kernel", "_read_backward_kernel", "_write_forward_kernel",
                   "_write_backward_kernel"],
    "memory_step": ["_step_forward_kernel", "_step_backward_kernel"],
    "dnc": ["_usage_forward_kernel", "_usage_backward_kernel", "_allocation_forward_kernel",
            "_allocation_backward_kernel", "_link_forward_kernel", "_link_backward_kernel",
            "_directional_forward_kernel", "_directional_backward_kernel"],
}
CASES = [
    ("fp32", (2, 128, 20, 3), 90),     # the NTM copy model: 1 read + 1 write head, W=20
    ("fp32", (5, 65536, 20, 5), 90),   # a large memory: BLOCK_N set by the register budget
    ("fp64", (3, 4096, 7, 3), 80),
]


def _constants(module: str, name: str, heads: int, slots: int, width: int, offsets: int) -> dict[str, object]:
    """The constexprs the kernel's launcher would pick for these sizes."""
    from cogdsl.kernels.dnc import launch_blocks
    from cogdsl.kernels.tiles import blocks

    if module == "dnc":  # its launchers pick their own blocks
        return launch_blocks(heads, slots)[name]
    return {"COSINE": True, **blocks(heads, slots, width, offsets)}


@pytest.fixture(scope="module")
def compiled() -> dict[tuple[str, str, int], dict[str, object]]:
    jobs = [{"module": module, "kernel": name, "dtype": dtype, "arch": arch,
             "constants": _constants(module, name, *sizes)}
            for module, names in KERNELS.items() for name in names for dtype, sizes, arch in CASES]
    return {(r["kernel"], r["dtype"], r["arch"]): r for r in compile_kernels(jobs)}


@pytest.mark.parametrize("name", [name for names in KERNELS.values() for name in names])
@pytest.mark.parametrize(("dtype", "sizes", "arch"), CASES, ids=["ntm-copy", "n65536", "fp64-sm80"])
def test_kernel_compiles_to_a_cubin(compiled: dict, name: str, dtype: str, sizes: tuple, arch: int) -> None:
    result = compiled[(name, dtype, arch)]
    assert "error" not in result, result.get("error")
    assert result["target"] and result["cubin"] > 0
    # Registers spilled to local memory would make a memory-bound kernel slower still.
    assert not result["spills"], f"{name} spills to local memory at {sizes}"
