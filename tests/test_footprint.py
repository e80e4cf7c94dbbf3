"""The memory budget (issue 21): parameter and state bytes measured on the meta device, E502 over the limit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.cli.command import main
from cogdsl.compiler.footprint import DEFAULT_LIMIT, ENVIRONMENT, footprint, memory_limit, parse_bytes
from cogdsl.compiler.pipeline import analyse, check, compile_spec, parse_text, read_spec_file
from cogdsl.errors import SpecError, UsageError

ROOT = Path(__file__).resolve().parent.parent
NTM = (ROOT / "specs" / "ntm_copy.yaml").read_text()
HUGE = NTM.replace("hidden: 100", "hidden: 65536")  # an LSTM of 4 x 65536 x 65565 weights: 64 GiB


def _state_bytes(value: object) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_state_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_state_bytes(v) for v in value)
    return 0


@pytest.mark.parametrize("name", ["ntm_copy.yaml", "dnc_repeat_copy.cog", "lstm_adding.cog", "memn2n_babi.cog"])
def test_the_meta_count_is_what_the_real_model_holds(name: str) -> None:
    sized, _, shapes = analyse(read_spec_file(ROOT / "specs" / name))
    measured = footprint(sized, shapes)
    model = compile_spec(read_spec_file(ROOT / "specs" / name))
    assert measured.parameters == sum(p.numel() * p.element_size() for p in model.parameters())
    assert measured.state_bytes == _state_bytes(model.initial_state(1))
    assert measured.total(3) == measured.parameters + 3 * measured.state_bytes


def test_the_lstm_of_the_issue_is_64_gib_and_refused_before_allocating() -> None:
    spec = parse_text(HUGE, "huge.yaml", "yaml")
    with pytest.raises(SpecError) as info:
        compile_spec(spec)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "E502"
    assert (diagnostic.span.line, diagnostic.span.col) == (9, 3)  # the block 'ctrl', which holds the bytes
    assert "64.1 GiB" in diagnostic.message and "16 GiB" in diagnostic.message
    assert "'ctrl'" in diagnostic.hint and "--max-memory" in diagnostic.hint
    sized, _, shapes = analyse(spec)
    lstm_weights = 4 * 65536 * (9 + 20 + 65536 + 1) * 4  # 4 gates x hidden x (input + read + hidden + bias)
    assert footprint(sized, shapes).parameter_bytes["ctrl"] >= lstm_weights


def test_the_limit_can_be_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = parse_text(HUGE, "huge.yaml", "yaml")
    check(spec, max_memory="100GiB")  # validation alone: nothing is allocated
    with pytest.raises(SpecError):
        check(spec)
    monkeypatch.setenv(ENVIRONMENT, "70GiB")
    check(spec)
    monkeypatch.setenv(ENVIRONMENT, "60GiB")
    with pytest.raises(SpecError):
        check(spec)


def test_a_small_limit_refuses_the_library_spec() -> None:
    spec = parse_text(NTM, "ntm.yaml", "yaml")
    with pytest.raises(SpecError) as info:
        cogdsl.compile(spec, max_memory="100KiB")
    assert info.value.diagnostics[0].code == "E502"
    assert isinstance(cogdsl.compile(spec, max_memory="1MiB"), torch.nn.Module)


def test_validate_reports_e502_and_the_flag_raises_the_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENVIRONMENT, raising=False)
    path = tmp_path / "huge.yaml"
    path.write_text(HUGE)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{path}:9:3: error[E502]: the model needs 64.1 GiB")
    assert main(["validate", str(path), "--max-memory", "100GiB"]) == 0
    assert main(["validate", str(path), "--max-memory", "lots"]) == 1
    err = capsys.readouterr().err
    assert "'lots' is not a memory size" in err and "Traceback" not in err


def test_explain_prints_the_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(ROOT / "specs" / "ntm_copy.yaml"), "--explain"]) == 0
    memory = capsys.readouterr().out.splitlines()[-1]
    model = compile_spec(ROOT / "specs" / "ntm_copy.yaml")
    floats = sum(p.numel() for p in model.parameters())
    assert memory.startswith(f"memory: parameters {floats * 4 / 1024:.3g} KiB ({floats:,} numbers); state ")
    assert "for a batch of 16" in memory and "of the limit 16 GiB" in memory


@pytest.mark.parametrize(("text", "expected"), [("80GiB", 80 * 2**30), ("500 MB", 500 * 10**6), ("1024", 1024),
                                                ("1.5kib", 1536), ("2TB", 2 * 10**12)])
def test_sizes_are_read_in_both_units(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "-1GiB", "0", "1e3", "12 parsecs", "99999999999TiB"])
def test_a_size_that_is_not_one_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        parse_bytes(text)


def test_the_default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENVIRONMENT, raising=False)
    assert memory_limit() == DEFAULT_LIMIT == 16 * 2**30
    assert memory_limit(1000) == 1000
    with pytest.raises(UsageError):
        memory_limit(0)
