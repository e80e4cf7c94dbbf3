"""Compile Triton kernels ahead of time for an NVIDIA target, with no GPU present.

The interpreter runs a kernel's Python line by line on NumPy and accepts code that the
compiler rejects, so the tests also compile every kernel to PTX and a cubin (Triton ships
ptxas). This must run in a process without ``TRITON_INTERPRET`` (where ``@triton.jit`` gives
compilable functions), so :func:`compile_kernels` runs this module as a child process on a
list of jobs, each a kernel, its dtype, its target architecture and its constexpr values,
and returns one result per job: whether PTX targets the architecture, the cubin's size, and
what ptxas reports (registers, stack frame, bytes spilled to local memory), or the error.

A job compiles the kernel either *plain*, every integer argument a bare ``i32`` and no pointer
known aligned (what a launch sees for integers that are neither 1 nor a multiple of 16, and
for pointers into the middle of an allocation), or *as launched* when it gives ``ints``, the
integer arguments' values: then, as Triton's launcher does (``native_specialize_impl``), an
integer equal to 1 becomes the constant 1, one divisible by 16 carries the attribute
``tt.divisibility = 16``, and every pointer does too (torch's allocations are aligned). The
code ptxas sees differs between the two (constants fold, vector loads appear), and so can
the registers it needs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Launch keywords that are compile options, not the kernel's constexprs.
OPTIONS = ("num_warps", "num_stages", "maxnreg")


def launch_specialisation(value: int) -> tuple[str, object]:
    """How Triton's launcher specialises an integer argument: ("constexpr", 1) for 1, ("i32", "D") (divisible
    by 16) for a multiple of 16, else ("i32", "")."""
    if value == 1:
        return "constexpr", 1
    return "i32", "D" if value % 16 == 0 else ""


def compile_kernels(jobs: list[dict[str, Any]], workers: int = 2) -> list[dict[str, Any]]:
    """Compile each job ({"module", "kernel", "dtype", "arch", "constants"} and, to compile as launched, "ints":
    the integer arguments' values by name) in child processes, ``workers`` of them at once (job i in child
    i mod workers); its result, in the jobs' order, is the job with ``target``, ``cubin``, ``registers``,
    ``stack``, ``spill_stores`` and ``spill_loads`` (or ``error``). Skips the test when this Triton cannot
    compile for CUDA at all."""
    if not jobs:
        return []
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(TRITON_DUMP_PTXAS_LOG="1", TRITON_ALWAYS_COMPILE="1")
    shares = [jobs[i::workers] for i in range(min(workers, len(jobs)))]
    with tempfile.TemporaryDirectory() as scratch:
        children = []
        for index, share in enumerate(shares):  # files, not pipes: every child runs from the start
            (Path(scratch) / f"{index}.json").write_text(json.dumps(share))
            with open(Path(scratch) / f"{index}.json") as given, open(Path(scratch) / f"{index}.out", "w") as out, \
                    open(Path(scratch) / f"{index}.err", "w") as err:
                children.append(subprocess.Popen([sys.executable, "-m", "tests.kernels.compile_check"], stdin=given,
                                                 stdout=out, stderr=err, env=env, cwd=ROOT))
        for child in children:
            child.wait(timeout=300 + 30 * len(shares[0]))
        outputs = [((Path(scratch) / f"{i}.out").read_text(), (Path(scratch) / f"{i}.err").read_text())
                   for i in range(len(shares))]
    parts = [[json.loads(line) for line in out.splitlines() if line.startswith("{")] for out, _ in outputs]
    if any(len(part) != len(share) for part, share in zip(parts, shares, strict=True)):
        errors = "\n".join(err[-3000:] for _, err in outputs)
        pytest.fail(f"the compile script printed {sum(map(len, parts))} of {len(jobs)} results:\n{errors}")
    results = [parts[i % len(shares)][i // len(shares)] for i in range(len(jobs))]
    if all("No module named" in r.get("error", "") or "backend" in r.get("error", "") for r in results):
        pytest.skip(f"this Triton cannot compile for CUDA here: {results[0]['error']}")
    return results


def _compile(job: dict[str, Any]) -> dict[str, Any]:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from cogdsl.kernels.tiles import LAUNCH

    kernel = getattr(import_module("cogdsl.kernels." + job["module"]), job["kernel"])
    # A launcher's block sizes may set num_warps too: an option of the compile, not a constexpr.
    options = {**LAUNCH, **{k: v for k, v in job["constants"].items() if k in OPTIONS}}
    constants = {k: v for k, v in job["constants"].items() if k not in OPTIONS}
    dtype, ints = job["dtype"], job.get("ints")
    divisible = [["tt.divisibility", 16]]
    signature, constexprs, attrs = {}, {}, {}
    for index, arg in enumerate(kernel.arg_names):
        if arg == "order_ptr":  # the DNC's sorted slot order
            signature[arg] = "*i32"
        elif arg == "mask_ptr":  # the hop read's kept slots, bool bytes
            signature[arg] = "*u8"
        elif arg in ("slots_ptr", "chosen_ptr"):  # SAM's chosen slots, the D-NTM's sampled ones: int64
            signature[arg] = "*i64"
        elif arg.endswith("_ptr"):
            signature[arg] = "*" + dtype
        elif arg in constants:
            signature[arg] = "constexpr"
            constexprs[(index,)] = constants[arg]
        elif ints is None:
            signature[arg] = "i32"
        else:
            kind, attribute = launch_specialisation(int(ints[arg]))
            signature[arg] = kind
            if kind == "constexpr":
                constexprs[(index,)] = attribute
            elif attribute:
                attrs[(index,)] = divisible
        if ints is not None and signature[arg].startswith("*"):
            attrs[(index,)] = divisible
    result = dict(job)
    try:
        log = io.StringIO()
        with contextlib.redirect_stdout(log):  # Triton prints its ptxas -v log here
            compiled = triton.compile(ASTSource(fn=kernel, signature=signature, constexprs=constexprs, attrs=attrs),
                                      target=GPUTarget("cuda", job["arch"], 32), options=options)
        ptx = compiled.asm["ptx"]
        result.update(target=f".target sm_{job['arch']}" in ptx, cubin=len(compiled.asm["cubin"]),
                      **resource_usage(log.getvalue()))
    except Exception as error:  # reported per kernel, so one failure does not hide the others
        result["error"] = f"{type(error).__name__}: {error}"[-2000:]
    return result


def resource_usage(report: str) -> dict[str, int]:
    """What ptxas reports for the kernel (``ptxas -v``): registers per thread, stack frame bytes, and the
    bytes of registers spilled to local memory (stores and loads). Spills are decided by ptxas, so they never
    show in the PTX itself: this is the check that can see them.

    ``report`` is the log of the ptxas run that made the cubin: Triton runs it with ``-v`` and its own
    options (``--regAllocOptLevel=2``, ``-lineinfo``, the FMA setting), which change the allocation, and
    prints the log when ``TRITON_DUMP_PTXAS_LOG`` is on (the child process sets it, and
    ``TRITON_ALWAYS_COMPILE`` so that no cached cubin skips ptxas)."""
    import re

    if "Used " not in report:
        raise RuntimeError(f"no ptxas -v report for this kernel: {report[-1000:]!r}")

    def number(pattern: str) -> int:
        found = re.search(pattern, report)
        return int(found.group(1)) if found else 0

    return {"registers": number(r"Used (\d+) registers"), "stack": number(r"(\d+) bytes stack frame"),
            "spill_stores": number(r"(\d+) bytes spill stores"), "spill_loads": number(r"(\d+) bytes spill loads")}


if __name__ == "__main__":
    for job in json.loads(sys.stdin.read()):
        print(json.dumps(_compile(job)), flush=True)
