"""``cogdsl bench`` on the CPU at tiny sizes: the tables, the GB/s arithmetic, the JSON, and bad input.

torch.compile of a whole training step takes 30-40 s to compile on a 2-core CPU, and of the DNC
step about 50 s even at N = 8, so only the memory step's compiled row is tested here (10-27 s
with inductor's cache cold, about 4 s warm); the other runs pass --no-compile.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
from pathlib import Path

import pytest
import torch

from cogdsl import ops
from cogdsl.bench import (
    ADDITIVE_ATTENTION,
    ATTENTION_NEEDS_GPU,
    COMPILED_REFERENCE,
    EAGER,
    HOP_NEEDS_GPU,
    HOP_READ,
    NEEDS_GPU,
    TRITON,
    BenchOptions,
    BenchResult,
    Row,
    Timing,
    add_ratios,
    additive_attention_bytes,
    additive_attention_inputs,
    additive_attention_paths,
    bench,
    bench_additive_attention,
    bench_hop_read,
    dnc_group,
    dnc_step,
    dnc_step_backends,
    dnc_step_inputs,
    hop_read_bytes,
    hop_read_inputs,
    hop_read_paths,
    machine,
    options_from_args,
    render,
    render_table,
)
from cogdsl.cli.command import main
from cogdsl.errors import UsageError
from cogdsl.ops import attention
from tests.tiny import tiny_ntm

BATCH, WIDTH, SLOTS, DNC_SLOTS = 2, 6, (8, 20), (8, 12)
TINY_SLOTS, TINY_WIDTH = 16, 8  # tests/tiny.py's memory
COPY_STEPS = 2 * 3 + 1  # copy task at its max_len 3: 3 inputs, the delimiter, 3 outputs


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Exit status, standard output and standard error of ``cogdsl`` with ``argv``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own errors
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def table_rows(text: str, title: str) -> list[list[str]]:
    """The cells of the table under the line starting with ``title``: N, path, ms fwd, ms fwd+bwd, GB/s x2, ratio."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows = []
    for line in lines[start + 2:]:  # skip the title and the header
        cells = line.split()
        if not cells or not cells[0].isdigit():
            break
        rows.append(cells[:7])
    return rows


def dnc_elements(batch: int, slots: int, width: int) -> int:
    """The DNC step's state that must be read once and written once: 1 link matrix N x N and the memory N x W."""
    return batch * (slots * slots + slots * width)


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(tiny_ntm(train={"batch": 2}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cpu_run(spec_path, tmp_path_factory) -> tuple[int, str, str, dict]:
    """One CPU bench of both sections at two slot counts, without torch.compile."""
    json_path = tmp_path_factory.mktemp("out") / "bench.json"
    argv = ["bench", str(spec_path), "--slots", *map(str, SLOTS), "--dnc-slots", *map(str, DNC_SLOTS),
            "--batch", str(BATCH), "--width", str(WIDTH),
            "--warmup", "1", "--repeats", "2", "--threads", "1", "--no-compile", "--json", str(json_path)]
    code, out, err = run_cli(argv)
    data = json.loads(json_path.read_text(encoding="utf-8")) if json_path.exists() else {}
    return code, out, err, data


def test_cpu_bench_says_triton_needs_a_gpu_and_runs_the_reference_paths(cpu_run):
    code, out, err, _ = cpu_run
    assert code == 0, err
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert NEEDS_GPU in out.splitlines()
    memory = table_rows(out, "memory step:")
    assert [(int(r[0]), r[1]) for r in memory] == [(n, path) for n in SLOTS for path in (EAGER, "eager-reference")]
    dnc = table_rows(out, "dnc step:")
    assert [(int(r[0]), r[1]) for r in dnc] == [(n, EAGER) for n in DNC_SLOTS]
    training = table_rows(out, "training step:")
    assert [(int(r[0]), r[1]) for r in training] == [(TINY_SLOTS, EAGER)]
    assert f"T={COPY_STEPS} time steps" in out
    assert TRITON not in {r[1] for r in memory + dnc + training}
    assert "device: " in out and f"torch {torch.__version__}" in out
    assert "command: cogdsl bench " in out and "--no-compile" in out
    assert "5·B·N·W·4" in out and "5·B·(N² + N·W)·4" in out  # the bytes definitions under the tables


def test_printed_gbps_is_bytes_over_printed_time(cpu_run):
    _, out, _, _ = cpu_run
    for cells in table_rows(out, "memory step:"):
        slots, ms_forward, ms_both, gbps_forward, gbps_both = int(cells[0]), *map(float, cells[2:6])
        elements = BATCH * slots * WIDTH
        # three printed significant digits on each side: agree within 1%
        assert gbps_forward == pytest.approx(2 * elements * 4 / (ms_forward * 1e-3) / 1e9, rel=0.01)
        assert gbps_both == pytest.approx(5 * elements * 4 / (ms_both * 1e-3) / 1e9, rel=0.01)
    for cells in table_rows(out, "dnc step:"):
        elements = dnc_elements(BATCH, int(cells[0]), WIDTH)
        assert float(cells[4]) == pytest.approx(2 * elements * 4 / (float(cells[2]) * 1e-3) / 1e9, rel=0.01)
        assert float(cells[5]) == pytest.approx(5 * elements * 4 / (float(cells[3]) * 1e-3) / 1e9, rel=0.01)
    (cells,) = table_rows(out, "training step:")
    elements = BATCH * TINY_SLOTS * TINY_WIDTH * COPY_STEPS
    assert float(cells[5]) == pytest.approx(5 * elements * 4 / (float(cells[3]) * 1e-3) / 1e9, rel=0.01)


def test_json_holds_the_same_results(cpu_run):
    _, out, _, data = cpu_run
    assert data["command"] in out
    assert data["machine"]["torch"] == torch.__version__
    assert data["spec_name"] == "tiny_copy"
    rows = data["rows"]
    assert len(rows) == 2 * len(SLOTS) + len(DNC_SLOTS) + 1
    assert [(r["slots"], r["path"]) for r in rows if r["section"] == "dnc step"] == [(n, EAGER) for n in DNC_SLOTS]
    for row in rows:
        if row["section"] == "dnc step":
            elements = dnc_elements(row["batch"], row["slots"], row["width"])
        else:
            steps = 1 if row["section"] == "memory step" else COPY_STEPS
            elements = row["batch"] * row["slots"] * row["width"] * steps
        assert (row["bytes_forward"], row["bytes_forward_backward"]) == (2 * elements * 4, 5 * elements * 4)
        assert row["ms_forward"] > 0 and row["ms_forward_backward"] > 0
        assert row["gbps_forward"] == pytest.approx(row["bytes_forward"] / row["ms_forward"] / 1e6)
        assert row["gbps_forward_backward"] == pytest.approx(row["bytes_forward_backward"] / row["ms_forward_backward"]
                                                             / 1e6)
    memory = [r for r in rows if r["section"] == "memory step"]
    for slots in SLOTS:
        eager, reference = (r for r in memory if r["slots"] == slots)
        assert (eager["path"], reference["path"]) == (EAGER, "eager-reference")
        assert (eager["baseline"], reference["baseline"]) == (EAGER, EAGER)
        assert eager["ratio"] == 1.0
        assert reference["ratio"] == pytest.approx(reference["ms_forward_backward"] / eager["ms_forward_backward"])
        assert f"{reference['ratio']:.2f}x" in out


def test_training_step_at_chosen_slot_counts_and_length(spec_path):
    code, out, err = run_cli(["bench", str(spec_path), "--only", "training-step", "--train-slots", "8", "24",
                              "--len", "2", "--batch", "3", "--warmup", "0", "--repeats", "1", "--threads", "1",
                              "--no-compile"])
    assert code == 0, err
    assert "memory step:" not in out
    assert [(int(r[0]), r[1]) for r in table_rows(out, "training step:")] == [(8, EAGER), (24, EAGER)]
    assert "B=3, T=5 time steps" in out  # length 2: 2 inputs, the delimiter, 2 outputs


def test_dnc_step_alone_at_two_sizes(tmp_path):
    json_path = tmp_path / "dnc.json"
    code, out, err = run_cli(["bench", "--only", "dnc-step", "--dnc-slots", "8", "16", "--batch", "2", "--width", "4",
                              "--warmup", "0", "--repeats", "1", "--threads", "1", "--no-compile",
                              "--json", str(json_path)])
    assert code == 0, err
    assert "memory step:" not in out and "training step:" not in out
    assert "dnc step: DNCGroup.step of one dnc_memory, B=2, W=4, 4 read heads" in out
    assert "--dnc-slots 8 16 --width 4" in out and "--only dnc-step" in out  # the command that reruns it
    assert [(int(r[0]), r[1]) for r in table_rows(out, "dnc step:")] == [(8, EAGER), (16, EAGER)]
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert "dnc_bytes_definition" in data
    rows = data["rows"]
    assert [(r["section"], r["slots"], r["path"]) for r in rows] == [("dnc step", 8, EAGER), ("dnc step", 16, EAGER)]
    for row in rows:
        assert (row["batch"], row["width"], row["steps"]) == (2, 4, 1)
        elements = dnc_elements(2, row["slots"], 4)
        assert (row["bytes_forward"], row["bytes_forward_backward"]) == (2 * elements * 4, 5 * elements * 4)
        assert row["ms_forward"] > 0 and row["ms_forward_backward"] > 0 and row["ratio"] == 1.0


def test_the_dnc_step_timed_is_the_model_groups_step():
    group, interface_size = dnc_group(8, 4)
    assert (group.slots, group.width, group.plan.read_heads, group.plan.write_heads) == (8, 4, 4, 1)
    assert dnc_step_backends(torch.device("cpu"), compile=True) == {EAGER: "torch", COMPILED_REFERENCE: "torch"}
    inputs, projections = dnc_step_inputs(group, interface_size, 3, torch.device("cpu"))
    interface, memory, previous, usage, link, precedence = inputs
    # the inputs are a state the DNC can be in
    assert interface.shape == (3, interface_size) and memory.shape == (3, 8, 4) and previous.shape == (3, 5, 8)
    assert torch.allclose(previous.sum(-1), torch.ones(3, 5)) and torch.allclose(precedence.sum(-1), torch.ones(3, 1))
    assert 0 <= usage.min() and usage.max() <= 1
    assert link.shape == (3, 1, 8, 8) and link.min() >= 0 and (link.sum(-1) <= 1 + 1e-6).all()
    assert not link.diagonal(dim1=-2, dim2=-1).any()

    with ops.use_backend("torch"):
        timed = dnc_step(group, *inputs)
        keys = usage_key, link_key, precedence_key = group.state_keys
        result = group.step(
            interface, memory, previous, {usage_key: usage, link_key: link, precedence_key: precedence})
    expected = (result.weights, result.reads, result.memory, *(result.state[key] for key in keys))
    assert [t.shape for t in timed] == [p.shape for p in projections]  # one projection per output
    for got, want in zip(timed, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert not torch.equal(timed[2], memory) and not torch.equal(timed[4], link)  # it wrote and linked


def test_a_path_that_fails_is_a_row_that_says_why(monkeypatch):
    from cogdsl.ops import ntm

    def broken(*args):
        raise RuntimeError("reference is broken\nsecond line")

    monkeypatch.setattr(ntm, "ntm_memory_step", broken)
    code, out, err = run_cli(["bench", "--only", "memory-step", "--slots", "8", "--batch", "2", "--width", "6",
                              "--warmup", "0", "--repeats", "1", "--no-compile"])
    assert code == 0, err
    (line,) = [line for line in out.splitlines() if "eager-reference" in line and "not available" in line]
    assert line.endswith("not available: RuntimeError: reference is broken")
    assert re.search(r"^\s+8\s+eager\s+[\d.]+\s+[\d.]+", out, re.MULTILINE)  # the other path still ran


def test_compiled_reference_row():
    code, out, err = run_cli(["bench", "--only", "memory-step", "--slots", "8", "--batch", "2", "--width", "6",
                              "--warmup", "1", "--repeats", "1", "--threads", "1"])
    assert code == 0, err
    (cells,) = [r for r in table_rows(out, "memory step:") if r[1] == "compiled-reference"]
    assert float(cells[2]) > 0 and float(cells[3]) > 0
    assert re.search(r"compiled-reference .* compiled in \d+\.\d s", out)


def test_ratios_are_against_triton_when_it_ran():
    def row(path: str, ms: float | None) -> Row:
        return Row("memory step", path, 64, 128, 20, 1, 1, 1, ms_forward=ms, ms_forward_backward=ms)

    with_triton = [row(TRITON, 2.0), row(EAGER, 25.0), row("compiled-reference", 7.0)]
    add_ratios(with_triton)
    assert [(r.ratio, r.baseline) for r in with_triton] == [(1.0, TRITON), (12.5, TRITON), (3.5, TRITON)]
    triton_failed = [row(TRITON, None), row(EAGER, 4.0), row("eager-reference", 6.0)]
    add_ratios(triton_failed)
    assert [(r.ratio, r.baseline) for r in triton_failed] == [(None, None), (1.0, EAGER), (1.5, EAGER)]


def test_gbps_as_a_percentage_of_copy_bandwidth():
    # 64 x 65,536 x 20 float32: fwd moves 671 MB, fwd+bwd 1,678 MB
    row = Row("memory step", TRITON, 64, 65536, 20, 1, 2 * 64 * 65536 * 20 * 4, 5 * 64 * 65536 * 20 * 4,
              ms_forward=0.5, ms_forward_backward=1.25)
    (line,) = render_table([row], copy_gbps=2000.0).splitlines()[1:]
    assert "1342 (67%)" in line  # 671.1 MB / 0.5 ms = 1342 GB/s, 67% of 2000


@pytest.mark.parametrize(("argv", "message"), [
    (["missing/nowhere.yaml"], "missing/nowhere.yaml: error[E008]: no such file"),
    (["--slots", "0"], "--slots must be at least 1, got 0"),
    (["--slots", "8", "-4"], "--slots must be at least 1, got -4"),
    (["--dnc-slots", "0"], "--dnc-slots must be at least 1, got 0"),
    (["--only", "dnc-step", "--dnc-slots", "8", "0"], "--dnc-slots must be at least 1, got 0"),
    (["--batch", "-3"], "--batch must be at least 1, got -3"),
    (["--width", "0"], "--width must be at least 1, got 0"),
    (["--repeats", "0"], "--repeats must be at least 1, got 0"),
    (["--len", "0"], "--len must be at least 1, got 0"),
    (["--json", "no/such/folder/out.json"], "no such folder"),
    (["--batch", "many"], "invalid int value: 'many'"),
])
def test_bad_input_is_one_line_and_exit_1(spec_path, argv, message):
    if argv and not argv[0].startswith("-"):
        full = ["bench", *argv]
    else:
        full = ["bench", str(spec_path), "--no-compile", *argv]
    code, out, err = run_cli(full)
    assert code == 1
    assert out == ""  # nothing was timed
    assert "Traceback" not in err
    lines = err.splitlines()
    assert [line for line in lines if "error" in line] == lines[-1:] and message in lines[-1], err
    if "usage:" not in err:  # argparse's own errors come after the usage, as for every cogdsl command
        assert len(lines) == 1, err


def test_spec_without_train_section_exits_1(tmp_path):
    path = tmp_path / "untrained.yaml"
    path.write_text(tiny_ntm(train=None), encoding="utf-8")
    code, out, err = run_cli(["bench", str(path), "--no-compile", "--slots", "8"])
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "has no train section" in err and "Traceback" not in err


# -- additive attention -------------------------------------------------------------------------------


def test_cpu_bench_does_not_run_additive_attention_and_says_so(cpu_run):
    code, out, err, data = cpu_run
    assert code == 0, err
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert ATTENTION_NEEDS_GPU in out.splitlines()
    assert "additive attention:" not in out.replace(ATTENTION_NEEDS_GPU, "")  # no table
    assert data["skipped"] == [ATTENTION_NEEDS_GPU, HOP_NEEDS_GPU]  # the hop read is CUDA only too
    assert ADDITIVE_ATTENTION not in {row["section"] for row in data["rows"]}


def test_additive_attention_paths():
    """Triton first on CUDA (the ratios' baseline), then the torch backend, then torch.compile of the reference."""
    on_gpu = additive_attention_paths(torch.device("cuda"), compile=True)
    assert list(on_gpu) == [TRITON, EAGER, COMPILED_REFERENCE]
    assert on_gpu[TRITON] == (ops.additive_attention, "triton")
    assert on_gpu[EAGER] == (ops.additive_attention, "torch")
    assert on_gpu[COMPILED_REFERENCE] == (attention.additive_attention, None)
    assert list(additive_attention_paths(torch.device("cpu"), compile=False)) == [EAGER]


def test_additive_attention_inputs_are_what_the_block_makes():
    inputs, projections = additive_attention_inputs(3, 2, 7, 5, 4, torch.device("cpu"))
    v = inputs[2]
    assert [tuple(t.shape) for t in inputs] == [(3, 2, 5), (3, 2, 7, 5), (2, 5), (3, 7, 4)]
    assert all(t.requires_grad and t.dtype == torch.float32 for t in inputs)
    assert 0 < v.abs().max() <= 1 / 5 ** 0.5  # the block's initialisation of v
    assert [tuple(p.shape) for p in projections] == [(3, 2, 4), (3, 2, 7)]  # context, weights
    with torch.no_grad():
        _, weights = ops.additive_attention(*inputs)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 2)) and float(weights.std()) > 0


def test_additive_attention_section_on_the_cpu_at_tiny_sizes():
    """Called directly (bench() runs it on CUDA only), the section times every path that runs here: one row per
    (S, A = D, path), with its bytes, and a table with S, A and D columns."""
    options = BenchOptions(attention_lengths=(5, 9), attention_widths=(3, 4), batch=2, compile=False)
    progress: list[str] = []
    rows = bench_additive_attention(options, torch.device("cpu"), timing=Timing(0, 1), progress=progress.append)
    add_ratios(rows)
    assert [(r.slots, r.hidden, r.width, r.path) for r in rows] == [(s, w, w, EAGER) for w in (3, 4) for s in (5, 9)]
    assert progress[0] == "additive attention, S=5, A=D=3: eager"
    for row in rows:
        assert row.section == ADDITIVE_ATTENTION and row.batch == 2 and row.steps == 1
        elements = 2 * (row.slots * row.hidden + row.slots * row.width)  # 1 head: kp (S, A) and the keys (S, D)
        assert (row.bytes_forward, row.bytes_forward_backward) == (elements * 4, 3 * elements * 4)
        assert (row.bytes_forward, row.bytes_forward_backward) == additive_attention_bytes(2, 1, row.slots,
                                                                                           row.hidden, row.width)
        assert row.ms_forward > 0 and row.ms_forward_backward > 0 and not row.note
        assert (row.ratio, row.baseline) == (1.0, EAGER)  # each size is its own group
    result = BenchResult(command="cogdsl bench", machine=machine(torch.device("cpu")), copy_gbps=None, rows=rows)
    text = render(result)
    assert "additive attention: ops.additive_attention, B=2, 1 head" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.split()[:4] == ["S", "A", "D", "path"])
    body = lines[lines.index(header) + 1: lines.index(header) + 5]
    assert [line.split()[:4] for line in body] == [[str(s), str(w), str(w), EAGER] for w in (3, 4) for s in (5, 9)]
    assert "3·B·(H·S·A + S·D)·4" in text and "at the same S, A and D" in text


def test_ratios_of_additive_attention_compare_the_same_s_a_and_d():
    def row(path: str, length: int, width: int, ms: float) -> Row:
        return Row(ADDITIVE_ATTENTION, path, 64, length, width, 1, 1, 1, ms_forward=ms, ms_forward_backward=ms,
                   hidden=width)

    rows = [row(TRITON, 50, 64, 1.0), row(EAGER, 50, 64, 4.0), row(TRITON, 50, 256, 2.0), row(EAGER, 50, 256, 3.0)]
    add_ratios(rows)
    assert [(r.ratio, r.baseline) for r in rows] == [(1.0, TRITON), (4.0, TRITON), (1.0, TRITON), (1.5, TRITON)]


@pytest.mark.parametrize("field", ["attention_lengths", "attention_widths"])
def test_attention_sizes_are_checked(field):
    with pytest.raises(UsageError, match=f"{field} must be at least 1, got 0"):
        BenchOptions(**{field: (50, 0)}).check()
    with pytest.raises(UsageError, match="at least one sequence length and one width"):
        BenchOptions(**{field: ()}).check()
    BenchOptions(**{field: ()}, sections=("memory step",)).check()  # not timed: not needed


# -- a memory network hop's read ---------------------------------------------------------------------------


def test_cpu_bench_does_not_run_the_hop_read_and_says_so(cpu_run):
    code, out, err, data = cpu_run
    assert code == 0, err
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert HOP_NEEDS_GPU in out.splitlines()
    assert "hop read:" not in out.replace(HOP_NEEDS_GPU, "")  # no table
    assert HOP_NEEDS_GPU in data["skipped"]
    assert HOP_READ not in {row["section"] for row in data["rows"]}


def test_the_hop_read_alone_on_the_cpu_only_says_why_it_did_not_run():
    """``--only hop-read`` as the CLI parses it: the section alone, on a CPU no row and the one-line reason."""
    args = argparse.Namespace(spec="unused.yaml", slots=[8], dnc_slots=[8], batch=2, width=4, length=None,
                              train_slots=None, warmup=0, repeats=1, no_compile=True, only="hop-read", threads=1,
                              json=None)
    options = options_from_args(args)
    assert options.sections == (HOP_READ,)
    assert options.command_line().endswith("--only hop-read")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = bench(options)
    assert (result.rows, result.skipped) == ([], [HOP_NEEDS_GPU])
    assert HOP_NEEDS_GPU in render(result).splitlines()


def test_hop_read_paths():
    """Triton first on CUDA (the ratios' baseline), then the torch backend, then torch.compile of the reference."""
    on_gpu = hop_read_paths(torch.device("cuda"), compile=True)
    assert list(on_gpu) == [TRITON, EAGER, COMPILED_REFERENCE]
    assert on_gpu[TRITON] == (ops.hop_read, "triton")
    assert on_gpu[EAGER] == (ops.hop_read, "torch")
    assert on_gpu[COMPILED_REFERENCE] == (attention.hop_read, None)
    assert hop_read_paths(torch.device("cpu"), compile=True) == {EAGER: (ops.hop_read, "torch"),
                                                                  COMPILED_REFERENCE: (attention.hop_read, None)}
    assert list(hop_read_paths(torch.device("cpu"), compile=False)) == [EAGER]


def test_hop_read_inputs_are_what_the_block_makes():
    inputs, projections = hop_read_inputs(6, 50, 5, 4, torch.device("cpu"))
    query, keys, values, mask = inputs
    assert [tuple(t.shape) for t in inputs] == [(6, 5), (6, 50, 5), (6, 50, 4), (6, 50)]
    assert all(t.requires_grad and t.dtype == torch.float32 for t in (query, keys, values))
    assert all(float(t.detach().std()) > 0 for t in (query, keys, values))  # random, not zeros
    assert mask.dtype == torch.bool and not mask.requires_grad
    lengths = mask.sum(-1)
    assert torch.equal(mask, torch.arange(50) < lengths[:, None])  # each row keeps a prefix of its slots
    assert int(lengths.min()) >= 1 and int(lengths.max()) == 50  # no empty story; the longest fills the slots
    assert bool((lengths < 50).any()) and len(set(lengths.tolist())) > 1  # stories of different lengths
    assert [tuple(p.shape) for p in projections] == [(6, 4), (6, 50)]  # read, weights
    with torch.no_grad():
        read, weights = ops.hop_read(*inputs)
    assert torch.allclose(weights.sum(-1), torch.ones(6))  # a distribution over each row's kept slots
    assert not weights[~mask].any() and bool((weights[mask] > 0).all())
    assert read.shape == (6, 4) and float(read.abs().sum()) > 0


def test_hop_read_bytes():
    # keys (B, N, D) and values (B, N, W) read once forward; read again and their gradients written backward
    assert hop_read_bytes(64, 50, 20, 30) == (64 * 50 * 50 * 4, 3 * 64 * 50 * 50 * 4)
    assert hop_read_bytes(2, 3, 4, 5, itemsize=2) == (2 * 3 * 9 * 2, 3 * 2 * 3 * 9 * 2)


def test_hop_read_section_on_the_cpu_at_tiny_sizes():
    """Called directly (bench() runs it on CUDA only), the section times every path that runs here: one row per
    (N, D = W, path), with its bytes, and a table with N, D and W columns."""
    options = BenchOptions(hop_slots=(5, 9), hop_widths=(3, 4), batch=2, compile=False)
    progress: list[str] = []
    rows = bench_hop_read(options, torch.device("cpu"), timing=Timing(0, 1), progress=progress.append)
    add_ratios(rows)
    assert [(r.slots, r.key_width, r.width, r.path) for r in rows] == [(n, w, w, EAGER) for w in (3, 4)
                                                                       for n in (5, 9)]
    assert progress[0] == "hop read, N=5, D=W=3: eager"
    for row in rows:
        assert row.section == HOP_READ and row.batch == 2 and row.steps == 1 and row.hidden is None
        elements = 2 * row.slots * (row.key_width + row.width)  # the keys (N, D) and the values (N, W)
        assert (row.bytes_forward, row.bytes_forward_backward) == (elements * 4, 3 * elements * 4)
        assert (row.bytes_forward, row.bytes_forward_backward) == hop_read_bytes(2, row.slots, row.key_width,
                                                                                 row.width)
        assert row.ms_forward > 0 and row.ms_forward_backward > 0 and not row.note
        assert (row.ratio, row.baseline) == (1.0, EAGER)  # each size is its own group
        assert row.to_json()["key_width"] == row.key_width
    result = BenchResult(command="cogdsl bench", machine=machine(torch.device("cpu")), copy_gbps=None, rows=rows)
    text = render(result)
    assert "hop read: ops.hop_read, B=2, N slots" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.split()[:4] == ["N", "D", "W", "path"])
    body = lines[lines.index(header) + 1: lines.index(header) + 5]
    assert [line.split()[:4] for line in body] == [[str(n), str(w), str(w), EAGER] for w in (3, 4) for n in (5, 9)]
    assert "3·B·N·(D + W)·4" in text and "at the same N, D and W" in text
    assert "eager = cogdsl's torch backend: cogdsl.ops.attention.hop_read" in text


def test_the_hop_read_backward_differentiates_all_but_the_mask():
    """The fwd+bwd time includes the gradients of the query, the keys and the values (the bool mask has none)."""
    options = BenchOptions(hop_slots=(6,), hop_widths=(3,), batch=2, compile=False)
    seen: list[tuple[torch.Size, ...]] = []
    grad = torch.autograd.grad

    def spy(outputs, inputs, *args, **kwargs):
        seen.append(tuple(t.shape for t in inputs))
        return grad(outputs, inputs, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.autograd, "grad", spy)
        (row,) = bench_hop_read(options, torch.device("cpu"), timing=Timing(0, 1), progress=lambda _: None)
    assert not row.note, row.note
    assert set(seen) == {((2, 3), (2, 6, 3), (2, 6, 3))}


def test_ratios_of_the_hop_read_compare_the_same_n_d_and_w():
    def row(path: str, slots: int, key_width: int, width: int, ms: float, section: str = HOP_READ) -> Row:
        return Row(section, path, 64, slots, width, 1, 1, 1, ms_forward=ms, ms_forward_backward=ms,
                   key_width=key_width)

    rows = [row(TRITON, 50, 20, 20, 1.0), row(EAGER, 50, 20, 20, 4.0), row(COMPILED_REFERENCE, 50, 20, 20, 2.0),
            row(TRITON, 50, 50, 20, 2.0), row(EAGER, 50, 50, 20, 3.0),  # another D
            row(TRITON, 50, 20, 50, 4.0), row(EAGER, 50, 20, 50, 6.0),  # another W
            row(TRITON, 500, 20, 20, 8.0), row(EAGER, 500, 20, 20, 10.0)]  # another N
    add_ratios(rows)
    assert [(r.ratio, r.baseline) for r in rows] == [(1.0, TRITON), (4.0, TRITON), (2.0, TRITON), (1.0, TRITON),
                                                     (1.5, TRITON), (1.0, TRITON), (1.5, TRITON), (1.0, TRITON),
                                                     (1.25, TRITON)]
    other = [row(EAGER, 50, 20, 20, 6.0, section=ADDITIVE_ATTENTION)]  # another section at the same sizes
    add_ratios(rows + other)
    assert (other[0].ratio, other[0].baseline) == (1.0, EAGER)
    header, *body = render_table(rows, copy_gbps=None).splitlines()
    assert header.split()[:4] == ["N", "D", "W", "path"]
    assert [line.split()[:3] for line in body[3:7]] == [["50", "50", "20"]] * 2 + [["50", "20", "50"]] * 2


@pytest.mark.parametrize("field", ["hop_slots", "hop_widths"])
def test_hop_sizes_are_checked(field):
    with pytest.raises(UsageError, match=f"{field} must be at least 1, got 0"):
        BenchOptions(**{field: (50, 0)}).check()
    with pytest.raises(UsageError, match="at least one slot count and one width"):
        BenchOptions(**{field: ()}).check()
    BenchOptions(**{field: ()}, sections=("memory step",)).check()  # not timed: not needed


def test_the_cli_offers_every_section_to_only():
    """``cogdsl bench --only`` takes each section's name with dashes, and no other: a new section is reachable."""
    from cogdsl.bench import SECTIONS
    from cogdsl.cli.command import build_parser

    parser = build_parser()
    bench_parser = next(action for action in parser._subparsers._group_actions  # type: ignore[union-attr]
                        if isinstance(action, argparse._SubParsersAction)).choices["bench"]
    only = next(action for action in bench_parser._actions if action.dest == "only")
    assert set(only.choices) == {section.replace(" ", "-") for section in SECTIONS}


# -- kernels per time step (cogdsl bench --launches) ------------------------------------------------------


def test_launch_count_counts_computing_operations_not_views() -> None:
    from cogdsl.bench.launches import count

    x = torch.randn(2, 3)
    assert count(lambda: x.view(3, 2).t().unsqueeze(0)).total == 0  # views launch nothing
    assert count(lambda: torch.relu(x)).total == 1
    counted = count(lambda: (x * 2).sum())
    assert counted.total == 2 and counted.ops == {"mul": 1, "sum": 1}


def test_launches_of_a_spec_step(capsys: pytest.CaptureFixture[str]) -> None:
    from cogdsl.bench.launches import spec_step_input, step_launches

    spec = Path(__file__).resolve().parent.parent / "specs" / "ntm_copy.yaml"
    model, x_t = spec_step_input(spec, batch=2)
    forward, both = step_launches(model, x_t, batch=2)
    assert 20 < forward.total < both.total  # an NTM step is tens of kernels; the backward adds more
    assert forward.ops["addmm"] >= 2  # the controller's and the output's layers at least
    assert main(["bench", "--launches", str(spec)]) == 0
    (row,) = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("ntm_copy.yaml")]
    assert row[1:4] == [str(forward.total), "/", str(both.total)]
    assert main(["bench", "--launches", "missing.cog"]) == 1
    assert "no such file: missing.cog" in capsys.readouterr().err

