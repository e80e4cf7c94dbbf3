"""Compile Triton kernels ahead of time for an NVIDIA target, with no GPU present.

The interpreter runs a kernel's Python line by line on NumPy and accepts code that the
compiler rejects, so the tests also compile every kernel to PTX and a cubin (Triton ships
ptxas). This must run in a process without ``TRITON_INTERPRET`` (where ``@triton.jit`` gives
compilable functions), so :func:`compile_kernels` runs this module as a child process on a
list of jobs, each a kernel, its dtype, its target architecture and its constexpr values,
and returns one result per job: whether PTX targets the architecture, the cubin's size, and
whether registers spill to local memory (or the error).
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
    is the job with ``target``, ``cubin`` and ``spills`` (or ``error``). Skips the test when this Triton
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
                      spills=".local" in ptx)
    except Exception as error:  # reported per kernel, so one failure does not hide the others
        result["error"] = f"{type(error).__name__}: {error}"[-2000:]
    return result


if __name__ == "__main__":
    for job in json.loads(sys.argv[1]):
        print(json.dumps(_compile(job)), flush=True)
