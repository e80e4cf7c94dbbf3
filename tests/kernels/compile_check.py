"""Compile Triton kernels ahead of time for an NVIDIA target, with no GPU present.

The interpreter runs a kernel's Python line by line on NumPy and accepts code that the
compiler rejects, so the tests also compile every kernel to PTX and a cubin (Triton ships
ptxas). This must run in a process without ``TRITON_INTERPRET`` (where ``@triton.jit`` gives
compilable functions), so :func:`compile_kernels` runs this module as a child process on a
list of jobs, each a kernel, its dtype, its target architecture and its constexpr values,
and returns one result per job: whether PTX targets the architecture, the cubin's size, and
what ptxas reports (registers, stack frame, bytes spilled to local memory), or the error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def compile_kernels(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Compile each job ({"module", "kernel", "dtype", "arch", "constants"}) in a child process; its result
    is the job with ``target``, ``cubin``, ``registers``, ``stack``, ``spill_stores`` and ``spill_loads`` (or
    ``error``). Skips the test when this Triton
    cannot compile for CUDA at all."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, "-m", "tests.kernels.compile_check", json.dumps(jobs)],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    if not results:
        pytest.fail(f"the compile script printed nothing; exit {run.returncode}:\n{run.stderr[-3000:]}")
    if all("No module named" in r.get("error", "") or "backend" in r.get("error", "") for r in results):
        pytest.skip(f"this Triton cannot compile for CUDA here: {results[0]['error']}")
    return results


def _compile(job: dict[str, Any]) -> dict[str, Any]:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from cogdsl.kernels.tiles import LAUNCH

    kernel = getattr(import_module("cogdsl.kernels." + job["module"]), job["kernel"])
    constants, dtype = job["constants"], job["dtype"]
    signature, constexprs = {}, {}
    for index, arg in enumerate(kernel.arg_names):
        if arg == "order_ptr":  # the DNC's sorted slot order
            signature[arg] = "*i32"
        elif arg == "mask_ptr":  # the hop read's kept slots, bool bytes
            signature[arg] = "*u8"
        elif arg.endswith("_ptr"):
            signature[arg] = "*" + dtype
        elif arg in constants:
            signature[arg] = "constexpr"
            constexprs[(index,)] = constants[arg]
        else:
            signature[arg] = "i32"
    result = dict(job)
    try:
        compiled = triton.compile(ASTSource(fn=kernel, signature=signature, constexprs=constexprs),
                                  target=GPUTarget("cuda", job["arch"], 32), options=dict(LAUNCH))
        ptx = compiled.asm["ptx"]
        result.update(target=f".target sm_{job['arch']}" in ptx, cubin=len(compiled.asm["cubin"]),
                      **resource_usage(ptx, job["arch"]))
    except Exception as error:  # reported per kernel, so one failure does not hide the others
        result["error"] = f"{type(error).__name__}: {error}"[-2000:]
    return result


def _ptxas(arch: int) -> str:
    """The ptxas Triton itself uses for ``arch`` (the one that made the cubin)."""
    from triton.backends.nvidia.compiler import get_ptxas

    return get_ptxas(arch).path


def resource_usage(ptx: str, arch: int) -> dict[str, int]:
    """What ptxas reports for the kernel (``ptxas -v``): registers per thread, stack frame bytes, and the
    bytes of registers spilled to local memory (stores and loads). Spills are decided by ptxas, so they never
    show in the PTX itself: this is the check that can see them."""
    import re
    import tempfile

    suffix = "a" if arch >= 90 else ""
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "kernel.ptx"
        source.write_text(ptx)
        run = subprocess.run([_ptxas(arch), "-v", f"--gpu-name=sm_{arch}{suffix}", str(source), "-o",
                              str(Path(scratch) / "kernel.cubin")], capture_output=True, text=True, timeout=300)
    report = run.stdout + run.stderr
    if run.returncode != 0:
        raise RuntimeError(f"ptxas failed: {report[-1000:]}")

    def number(pattern: str) -> int:
        found = re.search(pattern, report)
        return int(found.group(1)) if found else 0

    return {"registers": number(r"Used (\d+) registers"), "stack": number(r"(\d+) bytes stack frame"),
            "spill_stores": number(r"(\d+) bytes spill stores"), "spill_loads": number(r"(\d+) bytes spill loads")}


if __name__ == "__main__":
    for job in json.loads(sys.argv[1]):
        print(json.dumps(_compile(job)), flush=True)
