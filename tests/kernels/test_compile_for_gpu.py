"""Every kernel compiles for real NVIDIA GPUs (Hopper sm_90, Ampere sm_80), with no GPU present, and spills nothing.

The interpreter runs a kernel's Python line by line on NumPy, so it accepts code that the
compiler rejects: a global that is not a constexpr, a loop-carried variable whose type
changes, a dtype mismatch. Triton can compile ahead of time for a target it is not running
on (it ships ptxas), so CI checks here that the kernels reach PTX and a cubin, and reads
ptxas's report of each: no bytes spilled to local memory.

The sizes are those of the specs in ``specs/`` and of ``cogdsl bench``, one-head and many-head
groups among them, each compiled as a launch at those sizes compiles it (``ints``: an integer
argument of 1 is the constant 1, a multiple of 16 is known divisible by 16, pointers are
aligned), in float32 and in float64, one of the two on sm_90 and the other on sm_80; and three
of them also plain (every integer a bare i32), as this check compiled them at first (CI: one). The
block sizes are the launchers' own.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.kernels.compile_check import compile_kernels

pytest.importorskip("triton")

# Every test here reads one module-scoped fixture that compiles all the kernels (two minutes on 2 cores): with
# `pytest -n auto --dist loadgroup` (make test) they all run on one worker, which compiles once, not once per worker.
pytestmark = pytest.mark.xdist_group("compile_for_gpu")

KERNELS = {
    "content": ["_content_forward_kernel", "_content_backward_kernel"],
    "ntm_address": ["_address_forward_kernel", "_address_backward_kernel"],
    "read_write": ["_read_forward_kernel", "_read_backward_kernel", "_write_forward_kernel",
                   "_write_backward_kernel"],
    "memory_step": ["_step_forward_kernel", "_step_backward_kernel"],
    "memory_split": ["_split_logits_kernel", "_split_stage_kernel", "_split_write_kernel", "_split_total_kernel",
                     "_split_sharpen_grad_kernel", "_split_shift_gate_grad_kernel", "_split_memory_grad_kernel"],
    "stages": ["_interpolate_forward_kernel", "_interpolate_backward_kernel", "_shift_forward_kernel",
               "_shift_backward_kernel", "_sharpen_forward_kernel", "_sharpen_backward_kernel"],
    "dnc": ["_usage_forward_kernel", "_usage_backward_kernel", "_allocation_forward_kernel",
            "_allocation_backward_kernel", "_link_forward_kernel", "_link_backward_kernel",
            "_directional_forward_kernel", "_directional_backward_kernel"],
    "sam": ["_sam_write_weights_forward_kernel", "_sam_write_weights_backward_kernel", "_sam_write_forward_kernel",
            "_sam_write_backward_kernel", "_sam_read_forward_kernel", "_sam_read_backward_kernel"],
    "hop": ["_hop_read_forward_kernel", "_hop_read_backward_kernel"],
    "additive": ["_additive_forward_kernel", "_additive_backward_kernel"],
    "dntm": ["_lru_forward_kernel", "_lru_backward_kernel", "_sample_forward_kernel", "_sample_backward_kernel"],
}

#: An NTM memory and the head group on it: H heads, the first R of them read heads, N slots of width W, K shift
#: offsets. The content, address, read/write, step and stage kernels compile at each.
NTM_SIZES = {
    "ntm-copy": dict(H=2, R=1, N=128, W=20, K=3),  # ntm_copy, associative recall, repeat copy; bench N = 128
    "one-head": dict(H=1, R=0, N=128, W=20, K=3),  # a group of one head (here a write head): H = 1 → constant
    "many-head": dict(H=16, R=8, N=128, W=20, K=3),  # ntm_priority_sort: 8 read and 8 write heads
    "small-memory": dict(H=2, R=1, N=32, W=12, K=3),  # ntm_two_memories' notes (its items: N = 64, W = 20)
    "n4096": dict(H=2, R=1, N=4096, W=20, K=3),  # the bench's memory step
    "n65536": dict(H=2, R=1, N=65536, W=20, K=3),  # the bench's largest memory
    "one-head-n65536": dict(H=1, R=0, N=65536, W=20, K=3),  # one head: the largest slot tile
}
#: A DNC memory: R read heads (and one write head), N slots.
DNC_SIZES = {
    "dnc-repeat-copy": dict(R=4, N=16),  # dnc_repeat_copy, dnc_clockwork_repeat_copy
    "dnc-graph": dict(R=2, N=32),  # dnc_graph_inference, dnc_graph_traversal
    "dnc-one-head": dict(R=1, N=24),  # dnc_shortest_path's 24 slots, with one read head
    "dnc-256": dict(R=4, N=256),  # the bench's DNC step
    "dnc-1024": dict(R=4, N=1024),
}
#: A SAM memory: R read heads, N slots of width W, K slots read per head.
SAM_SIZES = {
    "sam-copy": dict(R=1, N=128, W=20, K=4),  # sam_copy
    "sam-n65536": dict(R=4, N=65536, W=20, K=4),  # a large sparse memory, four read heads
}
#: A memory network hop: N slots, keys of width D, values of width W.
HOP_SIZES = {
    "memn2n": dict(N=50, D=20, W=20),  # memn2n_babi, kvmemnn; the bench's N = 50, d = 20
    "memn2n-50": dict(N=50, D=50, W=50),  # memn2n_babi_joint, memn2n_babi_relabel (dmn_babi: d = 40)
    "hop-500": dict(N=500, D=20, W=20),  # the bench's hop read, N = 500 ... 50,000, d = 20 and 50
    "hop-5000": dict(N=5000, D=50, W=50),
    "hop-50000": dict(N=50000, D=20, W=20),
    "hop-50000-50": dict(N=50000, D=50, W=50),
}
#: Additive attention: H heads over S elements, A score units, keys of width D.
ADDITIVE_SIZES = {
    "bahdanau": dict(H=1, S=12, A=32, D=64),  # bahdanau_reverse, bahdanau_stutter
    "additive-50-64": dict(H=1, S=50, A=64, D=64),  # the bench: S = 50 ... 400, A = D = 64 and 256
    "additive-400-64": dict(H=1, S=400, A=64, D=64),
    "additive-200-256": dict(H=1, S=200, A=256, D=256),
    "additive-400-256": dict(H=1, S=400, A=256, D=256),
    "additive-heads": dict(H=4, S=50, A=64, D=64),  # several heads: the backward's (H, S, A) tile
}
#: The addressing kernels' stage flags, and the pipelines they are compiled with: every stage, as every spec in
#: specs/ uses, and content | sharpen.
STAGE_FLAGS = ("CONTENT", "GATE", "SHIFT", "SHARPEN")
PIPELINES = [(True, True, True, True), (True, False, False, True)]
#: Sizes compiled plain too (every integer a bare i32), as this check first compiled them.
PLAIN = {
    "ntm-copy-plain": ("fp32", 90, dict(H=2, R=1, N=128, W=20, K=3), dict(R=2, N=128)),
    "n65536-plain": ("fp32", 90, dict(H=5, R=3, N=65536, W=20, K=5), dict(R=5, N=65536)),
    "fp64-sm80-plain": ("fp64", 80, dict(H=3, R=2, N=4096, W=7, K=3), dict(R=3, N=4096)),
}
#: Each size as launched in two (dtype, arch) pairs, alternating, so that every pair is covered.
TARGETS = [(("fp32", 90), ("fp64", 80)), (("fp32", 80), ("fp64", 90))]

#: Spills ptxas reports, (kernel, case) → bytes of spill stores; empty since issue 23 (see docs/kernels.md).
#: Each would be a strict xfail: a kernel that stops spilling fails the test until its line is removed, and a
#: new spill anywhere else fails it at once.
KNOWN_SPILLS: dict[tuple[str, str], int] = {}


def _family(module: str) -> dict[str, dict[str, int]]:
    return {"dnc": DNC_SIZES, "sam": SAM_SIZES, "hop": HOP_SIZES, "additive": ADDITIVE_SIZES}.get(module, NTM_SIZES)


def _constants(module: str, name: str, sizes: dict[str, int]) -> list[dict[str, Any]]:
    """The constexprs (and num_warps) the kernel's launcher picks for these sizes: one set, or one per
    HAS_D_WEIGHTS for the backwards that take it."""
    import triton

    from cogdsl.kernels.additive import additive_blocks
    from cogdsl.kernels.dnc import launch_blocks
    from cogdsl.kernels.dntm import sample_blocks
    from cogdsl.kernels.hop import hop_blocks
    from cogdsl.kernels.sam import _read_sizes, _write_sizes
    from cogdsl.kernels.stages import _tile
    from cogdsl.kernels.tiles import blocks

    if module == "dnc":
        return [launch_blocks(sizes["R"], sizes["N"])[name]]
    if module == "sam":
        if "_read_" in name:
            return [_read_sizes(sizes["K"], sizes["W"])]
        if "weights" in name:
            return [{k: v for k, v in blocks(sizes["R"], sizes["N"], 1).items() if k != "BLOCK_W"}]
        return [_write_sizes(sizes["N"], sizes["W"])]
    if module == "dntm" and "_sample_" in name:
        chosen = sample_blocks(sizes["H"], sizes["N"])
        return [{**chosen, "ARGMAX": flag} for flag in (False, True)] if "forward" in name else [chosen]
    if module == "stages":
        return [{"BLOCK_N": _tile(sizes["N"]), "BLOCK_K": triton.next_power_of_2(sizes["K"])}]
    if module == "hop":
        chosen = hop_blocks(sizes["N"], sizes["D"], sizes["W"])
        flags = (True, False) if "backward" in name else (None,)
        return [chosen if flag is None else {**chosen, "HAS_D_WEIGHTS": flag} for flag in flags]
    if module == "additive":
        backward = "backward" in name
        chosen = additive_blocks(sizes["H"], sizes["S"], sizes["A"], sizes["D"], every_head=backward)
        return [{**chosen, "HAS_D_WEIGHTS": flag} for flag in ((True, False) if backward else (True,))]
    chosen = {"COSINE": True, **blocks(sizes["H"], sizes["N"], sizes["W"], sizes["K"])}
    if module in ("ntm_address", "memory_step"):  # every stage (every spec), and content | sharpen
        return [{**chosen, **dict(zip(STAGE_FLAGS, stages, strict=True))} for stages in PIPELINES]
    if module == "memory_split":  # every stage; each kernel takes the flags and blocks it has
        return [{**chosen, **dict.fromkeys(STAGE_FLAGS, True)}]
    return [chosen]


def _ints(module: str, name: str, sizes: dict[str, int]) -> dict[str, int]:
    """The integer arguments a launch at these sizes passes (the additive kernels' strides: contiguous; the
    tile counts of the SAM writes' backwards)."""
    if module == "sam":
        tile = _constants(module, name, sizes)[0].get("BLOCK_N", 1)
        return {**sizes, "TILES": -(-sizes["N"] // tile)}
    if module in ("ntm_address", "memory_step", "memory_split"):  # key, erase, add: views of the interface (B, I)
        h, w, writers = sizes["H"], sizes["W"], sizes["H"] - sizes["R"]
        interface = h * (w + 6) + writers * 2 * w  # key, strength, gate, 3 shifts, gamma; erase, add
        strides = {"key_stride": interface, "erase_stride": interface, "add_stride": interface}
        if module == "memory_split":  # the chunks split_chunks picks at B = 64 on 132 SMs (at least 2)
            from cogdsl.kernels.memory_split import chunk_slots
            from cogdsl.kernels.memory_step import split_count

            block_n = _constants(module, name, sizes)[0]["BLOCK_N"]
            tiles = -(-sizes["N"] // block_n)
            chunk, count = chunk_slots(sizes["N"], block_n, max(2, split_count(64, tiles, 132)))
            strides.update(CHUNK=chunk, S=count)
        return {**sizes, **strides}
    if module != "additive":
        return dict(sizes)
    h, s, a, d = sizes["H"], sizes["S"], sizes["A"], sizes["D"]
    return {**sizes, "key_proj_stride_b": h * s * a, "key_proj_stride_h": s * a, "key_proj_stride_s": a,
            "keys_stride_b": s * d, "keys_stride_s": d}


def _suffix(variants: list[dict[str, Any]], constants: dict[str, Any]) -> str:
    """Tells a backward with the weights' gradient from one without, where a kernel compiles both (and the
    sampling forward's argmax from its draw)."""
    if len(variants) == 1:
        return ""
    if "ARGMAX" in constants:
        return "-argmax" if constants["ARGMAX"] else "-sample"
    if "SHIFT" in constants:
        return "" if constants["SHIFT"] else "-content-sharpen"
    return "-dw" if constants["HAS_D_WEIGHTS"] else "-no-dw"


#: The sizes CI compiles (those of specs in specs/; 157 compiles, about 75 s on 2 cores), and of the plain
#: sizes the one with odd sizes (W = 7, H = 3) in float64 on sm_80; make compile-check (COGDSL_COMPILE_CHECK=1)
#: compiles every size above, the bench's included (about 5 minutes).
CI_SIZES = frozenset({"ntm-copy", "one-head", "dnc-repeat-copy", "sam-copy", "memn2n", "bahdanau"})
#: CI sizes compiled in one (dtype, arch) pair a kernel, not two, and with every stage only: a module's kernels
#: alternate float32 on sm_80 and float64 on sm_90, so a forward and its backward cover both.
CI_ONE_PAIR = frozenset({"one-head"})
CI_PLAIN = frozenset({"fp64-sm80-plain"})


def jobs() -> list[dict[str, Any]]:
    """Every (kernel, case) compile: each size as launched in two dtypes, and the plain sizes."""
    found = []
    every_size = bool(os.environ.get("COGDSL_COMPILE_CHECK"))
    for module, names in KERNELS.items():
        family = _family(module)
        for index, (label, sizes) in enumerate(family.items()):
            if not every_size and (label not in CI_SIZES or (module == "memory_split" and label != "ntm-copy")):
                continue
            one_pair = not every_size and label in CI_ONE_PAIR
            for position, name in enumerate(names):
                variants = _constants(module, name, sizes)
                if one_pair:
                    variants = variants[:1]  # every stage, as each spec uses them
                for dtype, arch in (TARGETS[1][position % 2],) if one_pair else TARGETS[index % 2]:
                    for constants in variants:
                        found.append({"module": module, "kernel": name, "dtype": dtype, "arch": arch,
                                      "case": f"{label}-{dtype}-sm{arch}{_suffix(variants, constants)}",
                                      "constants": constants, "ints": _ints(module, name, sizes)})
        if (family is not NTM_SIZES and module != "dnc") or (module == "memory_split" and not every_size):
            continue
        for label, (dtype, arch, ntm, dnc) in PLAIN.items():
            if not every_size and label not in CI_PLAIN:
                continue
            for name in names:
                variants = _constants(module, name, dnc if module == "dnc" else ntm)
                for constants in variants:
                    found.append({"module": module, "kernel": name, "dtype": dtype, "arch": arch,
                                  "case": f"{label}{_suffix(variants, constants)}", "constants": constants})
    return found


#: A compile that must spill: the memory step's backward in float64 at the slot tile the 3-D budget alone
#: gave (BLOCK_N = 128 for two heads, W = 20) over 4 warps; ptxas spills 2,312 bytes there.
TOO_LARGE = {"module": "memory_step", "kernel": "_step_backward_kernel", "dtype": "fp64", "arch": 90,
             "case": "too-large", "ints": {**NTM_SIZES["ntm-copy"], "key_stride": 92, "erase_stride": 92,
                                           "add_stride": 92},
             "constants": {"COSINE": True, "CONTENT": True, "GATE": True, "SHIFT": True, "SHARPEN": True,
                           "BLOCK_H": 2, "BLOCK_N": 128, "BLOCK_W": 32, "BLOCK_K": 4, "num_warps": 4}}


@pytest.fixture(scope="module")
def compiled() -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["kernel"], r["case"]): r for r in compile_kernels([*jobs(), TOO_LARGE])}


def _cases() -> list[object]:
    cases = []
    for job in jobs():
        name, case = job["kernel"], job["case"]
        known = KNOWN_SPILLS.get((name, case))
        marks = [pytest.mark.xfail(strict=True, reason=f"spills {known} bytes (issue 23)")] if known else []
        cases.append(pytest.param(name, case, id=f"{name}-{case}", marks=marks))
    return cases


@pytest.mark.parametrize(("name", "case"), _cases())
def test_kernel_does_not_spill(compiled: dict, name: str, case: str) -> None:
    """No register spills to local memory, as ptxas reports them (a spill makes a memory-bound kernel slower
    still): zero bytes of spill stores and loads at every size the launchers pick here."""
    result = compiled[(name, case)]
    assert "error" not in result, result.get("error")
    assert result["spill_stores"] == 0 and result["spill_loads"] == 0, (
        f"{name} ({case}, {result['constants']}): {result['spill_stores']} bytes spill stores, "
        f"{result['spill_loads']} bytes spill loads, {result['stack']} bytes stack frame, "
        f"{result['registers']} registers")


def test_the_spill_check_sees_spills(compiled: dict) -> None:
    """Not vacuous: ptxas's report is read (registers are counted for every kernel), and a kernel compiled at
    a slot tile too large for its registers shows the spill."""
    assert all(int(r["registers"]) > 0 for r in compiled.values() if "error" not in r)
    too_large = compiled[(TOO_LARGE["kernel"], TOO_LARGE["case"])]
    assert "error" not in too_large, too_large.get("error")
    assert int(too_large["spill_stores"]) > 0 and int(too_large["spill_loads"]) > 0, too_large


@pytest.mark.parametrize(("name", "case"), [(job["kernel"], job["case"]) for job in jobs()],
                         ids=[f"{job['kernel']}-{job['case']}" for job in jobs()])
def test_kernel_compiles_to_a_cubin(compiled: dict, name: str, case: str) -> None:
    result = compiled[(name, case)]
    assert "error" not in result, result.get("error")
    assert result["target"] and result["cubin"] > 0
