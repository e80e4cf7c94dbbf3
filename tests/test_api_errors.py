"""Bad input to the Python API and the front end that used to surface as another library's error: each is
named here in cogdsl's words (found by a review of the API against DESIGN.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import cogdsl
from cogdsl import ops
from cogdsl.cli.command import main
from cogdsl.errors import DataFileError, SpecError
from cogdsl.tasks.sequences import _load_file
from tests.tiny import tiny_ntm

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model() -> cogdsl.CompiledModel:
    torch.manual_seed(0)
    return cogdsl.compile(cogdsl.loads(tiny_ntm(), form="yaml"))


@pytest.mark.parametrize("call", [cogdsl.load, cogdsl.compile])
def test_a_missing_spec_file_is_a_spec_error_as_the_contract_says(tmp_path: Path, call) -> None:
    with pytest.raises(SpecError) as caught:
        call(tmp_path / "nowhere.cog")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "E008" and diagnostic.message == "no such file"
    assert diagnostic.span.file == str(tmp_path / "nowhere.cog")


def test_a_sequence_needs_a_time_step(model) -> None:
    with pytest.raises(ValueError, match=r"the inputs have 0 time steps \(shape \(2, 0, 5\)\)"):
        model(torch.randn(2, 0, 5))


def test_bits_given_as_integers_or_bools_are_read_as_floats(model) -> None:
    bits = torch.randint(0, 2, (2, 3, 5))
    expected = model(bits.float())
    assert torch.equal(model(bits), expected) and torch.equal(model(bits.bool()), expected)
    state = model.initial_state(2)
    assert torch.equal(model.step(bits[:, 0], state)[0], model.step(bits[:, 0].float(), state)[0])


@pytest.mark.parametrize(("given", "says"), [
    (torch.randn(2, 3, 5), r"input 'x' at one step: expected \(B, size\), got shape \(2, 3, 5\)"),
    (torch.randn(2, 4), "input 'x' has size 4, the spec says 5"),
    ([0.0] * 5, r"input 'x' at one step: expected \(B, size\), got list"),
])
def test_a_step_checks_its_input(model, given, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        model.step(given, model.initial_state(2))


def test_a_step_with_no_state_says_where_a_state_comes_from(model) -> None:
    with pytest.raises(ValueError, match=r"the state has no '.*': start a sequence from model.initial_state"):
        model.step(torch.randn(2, 5), {})
    state = model.initial_state(2)
    del state[next(iter(state))]
    with pytest.raises(ValueError, match="the state has no"):
        model.step(torch.randn(2, 5), state)


def test_a_whole_sequence_input_is_checked_at_a_step_too() -> None:
    attention = cogdsl.compile(ROOT / "specs" / "bahdanau_reverse.cog")
    size = attention.shapes.sizes["src"]
    with pytest.raises(ValueError, match=r"input 'src' at one step: expected \(B, S, size\), the whole sequence"):
        attention.step(torch.randn(2, size), attention.initial_state(2))


@pytest.mark.parametrize(("memory_dtype", "weights_dtype"), [
    (torch.float32, torch.float64), (torch.int64, torch.float32), (torch.float16, torch.float16)])
def test_ops_name_a_dtype_they_do_not_take(memory_dtype, weights_dtype) -> None:
    memory = torch.randn(2, 6, 3).to(memory_dtype)
    weights = torch.softmax(torch.randn(2, 1, 6), -1).to(weights_dtype)
    with pytest.raises(TypeError, match=f"read: the float tensors must all be float32 or all float64, got memory "
                                        f"{str(memory_dtype)[6:]}, weights {str(weights_dtype)[6:]}"):
        ops.read(memory, weights)
    assert ops.read(memory.double(), weights.double()).dtype == torch.float64


def test_an_npz_that_is_not_a_zip_is_not_called_a_pickle(tmp_path: Path) -> None:
    for name, content in (("text.npz", b"not a zip\n"), ("empty.npz", b"")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataFileError, match=r"cannot read it as npz: it does not start as an \.npz") as caught:
            _load_file(tmp_path / name)
        assert "pickle" not in str(caught.value)
    np.savez(tmp_path / "good.npz", inputs=np.ones((2, 3, 4)))
    assert _load_file(tmp_path / "good.npz")["inputs"].shape == (2, 3, 4)


def _validate(capsys, *paths: Path) -> tuple[int, str, str]:
    code = main(["validate", *map(str, paths)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_comma_that_yaml_cut_an_address_at_gets_a_hint(tmp_path: Path, capsys) -> None:
    path = tmp_path / "comma.yaml"
    path.write_text(tiny_ntm().replace('"content(cosine) | gate | shift(1) | sharpen"', "content(cosine, dot)", 1))
    code, out, _ = _validate(capsys, path)
    assert code == 1 and "error[E001]: invalid addressing expression" in out
    assert 'hint: YAML ends an unquoted value at a comma inside { } or [ ]: quote the whole expression' in out
    quoted = tmp_path / "quoted.yaml"  # the same mistake in quotes is the grammar's to explain, with no YAML hint
    quoted.write_text(tiny_ntm().replace("content(cosine)", "content(cosine", 1))
    code, out, _ = _validate(capsys, quoted)
    assert code == 1 and "YAML ends an unquoted value" not in out


def test_a_cog_spec_saved_as_yaml_is_said_to_be_one(tmp_path: Path, capsys) -> None:
    path = tmp_path / "copy.yaml"
    path.write_text((ROOT / "specs" / "ntm_copy.cog").read_text())
    code, out, _ = _validate(capsys, path)
    assert code == 1 and "YAML syntax error" in out
    assert "hint: this looks like a .cog spec: save it as a .cog file" in out and "fmt --to yaml copy.cog" in out


def test_validate_names_the_specs_whose_sizes_wait_for_data(tmp_path: Path, capsys) -> None:
    path = tmp_path / "mine.cog"
    path.write_text("model m\ninput x\noutput y = sigmoid(ctrl)\nlstm ctrl(hidden=8) <- x\n")
    code, _, err = _validate(capsys, path, ROOT / "specs" / "ntm_copy.yaml")
    assert code == 0 and f"no errors; sizes not checked in {path}: left out, with no task" in err
    assert main(["compile", str(path)]) == 1 and "error[E007]" in capsys.readouterr().err
    code, _, err = _validate(capsys, ROOT / "specs" / "ntm_copy.yaml")
    assert code == 0 and "sizes not checked" not in err
    assert main(["validate", "--format", "json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["sizes_left_to_data"] == [str(path)]


def test_a_head_written_by_before_on_gets_the_order(tmp_path: Path, capsys) -> None:
    path = tmp_path / "order.cog"
    path.write_text((ROOT / "specs" / "ntm_copy.cog").read_text().replace("read   r on mem by ctrl",
                                                                         "read   r by ctrl on mem"))
    code, out, _ = _validate(capsys, path)
    assert code == 1 and ":12:18: error[E001]: syntax error: unexpected 'on'" in out
    assert "hint: a head names its memory first, then its controller: 'read r on mem by ctrl'" in out
