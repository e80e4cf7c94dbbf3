"""Every kernel compiles for real NVIDIA GPUs (Hopper sm_90, Ampere sm_80), with no GPU present.

The interpreter runs a kernel's Python line by line on NumPy, so it accepts code that the
compiler rejects: a global that is not a constexpr, a loop-carried variable whose type
changes, a dtype mismatch. Triton can compile ahead of time for a target it is not running
on (it ships ptxas), so CI checks here that the kernels reach PTX and a cubin, in float32
and float64, at the block sizes the launchers pick for small and large memories.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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

# Run in a child process: the tests' own process imports the kernels under TRITON_INTERPRET=1,
# where @triton.jit gives interpreted functions that cannot be compiled.
COMPILE_ALL = """
import json, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from importlib import import_module
from cogdsl.kernels.tiles import LAUNCH, blocks

kernels, cases = json.loads(sys.argv[1])
for module, names in kernels.items():
    for name in names:
        kernel = getattr(import_module("cogdsl.kernels." + module), name)
        for dtype, (heads, slots, width, offsets), arch in cases:
            if module == "dnc":  # its launchers pick their own blocks
                constants = import_module("cogdsl.kernels.dnc").launch_blocks(heads, slots)[name]
            else:
                constants = {"COSINE": True, **blocks(heads, slots, width, offsets)}
            signature, constexprs = {}, {}
            for index, arg in enumerate(kernel.arg_names):
                if arg == "order_ptr":
                    signature[arg] = "*i32"
                elif arg.endswith("_ptr"):
                    signature[arg] = "*" + dtype
                elif arg in constants:
                    signature[arg] = "constexpr"
                    constexprs[(index,)] = constants[arg]
                else:
                    signature[arg] = "i32"
            result = {"kernel": name, "dtype": dtype, "arch": arch}
            try:
                compiled = triton.compile(ASTSource(fn=kernel, signature=signature, constexprs=constexprs),
                                          target=GPUTarget("cuda", arch, 32), options=dict(LAUNCH))
                ptx = compiled.asm["ptx"]
                result.update(target=f".target sm_{arch}" in ptx, cubin=len(compiled.asm["cubin"]),
                              spills=".local" in ptx)
            except Exception as error:
                result["error"] = f"{type(error).__name__}: {error}"[-2000:]
            print(json.dumps(result), flush=True)
"""


@pytest.fixture(scope="module")
def compiled() -> dict[tuple[str, str, int], dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, "-c", COMPILE_ALL, json.dumps([KERNELS, CASES])], capture_output=True,
                         text=True, env=env, cwd=Path(__file__).resolve().parents[2], timeout=600)
    results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    if not results:
        pytest.fail(f"the compile script printed nothing; exit {run.returncode}:\n{run.stderr[-3000:]}")
    if all("No module named" in r.get("error", "") or "backend" in r.get("error", "") for r in results):
        pytest.skip(f"this Triton cannot compile for CUDA here: {results[0]['error']}")
    return {(r["kernel"], r["dtype"], r["arch"]): r for r in results}


@pytest.mark.parametrize("name", [name for names in KERNELS.values() for name in names])
@pytest.mark.parametrize(("dtype", "sizes", "arch"), CASES, ids=["ntm-copy", "n65536", "fp64-sm80"])
def test_kernel_compiles_to_a_cubin(compiled: dict, name: str, dtype: str, sizes: tuple, arch: int) -> None:
    result = compiled[(name, dtype, arch)]
    assert "error" not in result, result.get("error")
    assert result["target"] and result["cubin"] > 0
    # Registers spilled to local memory would make a memory-bound kernel slower still.
    assert not result["spills"], f"{name} spills to local memory at {sizes}"
