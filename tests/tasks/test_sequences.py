"""The ``sequences`` task: your own supervised sequences from .npz / .safetensors files.

Reading (both formats, the mask and lengths forms, class ids), the three losses against hand-computed
values, the loss following the spec's output, the validation hold-out, paths relative to the spec,
batches trimmed to their longest sequence; every malformed file a DataFileError naming the path and
the array (and E604 through the commands, never a traceback); sizes taken from or checked against the
files (E501 located at the input).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

import cogdsl
from cogdsl.cli.command import main
from cogdsl.errors import DataFileError, UsageError
from cogdsl.tasks.base import Batch
from cogdsl.tasks.sequences import OutputLoss, SequencesTask, loss_for, read_sequences
from cogdsl.training.config import build_task
from cogdsl.training.loop import config_from_spec

N, T, IN, OUT = 12, 6, 4, 3


def write_arrays(path: Path, **arrays: np.ndarray) -> Path:
    """Write named arrays as .npz (numpy.savez) or .safetensors (safetensors.numpy.save_file), by the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))
    else:
        with path.open("wb") as handle:  # np.savez would add .npz to any other suffix
            np.savez(handle, **arrays)
    return path


def random_arrays(seed: int = 0, n: int = N, steps: int = T, bits: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(n, steps, IN)).astype(np.float32)
    targets = (rng.random((n, steps, OUT)) > 0.5).astype(np.float32) if bits else \
        rng.normal(size=(n, steps, OUT)).astype(np.float32)
    return {"inputs": inputs, "targets": targets}


def task_on(tmp_path: Path, **params: object) -> SequencesTask:
    task = SequencesTask(**params)  # type: ignore[arg-type]
    task.locate(tmp_path)
    return task


def spec_text(train: str = "train.npz", activation: str = "sigmoid", extra: str = "", x: int | None = None,
              y: int | None = None) -> str:
    """A tiny LSTM spec on a sequences file (``extra``: more task parameters); sizes written when given."""
    in_size = f": {x}" if x is not None else ""
    out_size = f": {y}" if y is not None else ""
    body = f"{activation}(ctrl)" if activation != "none" else "ctrl"
    return f"""model seqs

input  x{in_size}
output y{out_size} = {body}
lstm   ctrl(hidden=8) <- x

train {{
  task      sequences(train="{train}"{extra})
  batch 4; steps 2; eval_every 2; eval_size 4; log_every 2; checkpoint_every 2
}}
"""


# -- reading -------------------------------------------------------------------------------------------------


def test_npz_and_safetensors_read_the_same_tensors(tmp_path: Path) -> None:
    arrays = random_arrays(1, bits=False)
    arrays["lengths"] = np.array([T, 1, 3, 2, T, 5, 4, 1, 2, 3, T, 6], dtype=np.int64)
    a = read_sequences(write_arrays(tmp_path / "a.npz", **arrays))
    b = read_sequences(write_arrays(tmp_path / "b.safetensors", **arrays))
    for name in ("inputs", "targets", "mask", "lengths"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.inputs.dtype == a.targets.dtype == a.mask.dtype == torch.float32 and a.lengths.dtype == torch.long
    assert torch.equal(a.inputs, torch.from_numpy(arrays["inputs"]))
    assert torch.equal(a.targets, torch.from_numpy(arrays["targets"]))
    assert len(a) == N


def test_lengths_and_mask_forms(tmp_path: Path) -> None:
    arrays = random_arrays(2, n=4)
    lengths = np.array([1, 6, 3, 2], dtype=np.int32)
    by_lengths = read_sequences(write_arrays(tmp_path / "l.npz", **arrays, lengths=lengths))
    expected = (np.arange(T)[None, :] < lengths[:, None]).astype(np.float32)
    assert torch.equal(by_lengths.mask, torch.from_numpy(expected))
    assert by_lengths.lengths.tolist() == [1, 6, 3, 2]

    mask = np.array([[0, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 1]], dtype=bool)
    by_mask = read_sequences(write_arrays(tmp_path / "m.safetensors", **arrays, mask=mask.astype(np.float32)))
    assert torch.equal(by_mask.mask, torch.from_numpy(mask.astype(np.float32)))
    assert by_mask.lengths.tolist() == [2, 6, 1, 6]  # up to the last scored step (at least one step)

    plain = read_sequences(write_arrays(tmp_path / "p.npz", **arrays))
    assert torch.equal(plain.mask, torch.ones(4, T)) and plain.lengths.tolist() == [T] * 4


def test_class_id_targets(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 5, (N, T)).astype(np.int32)
    ids[0, 0] = 6  # the largest id gives the output size
    path = write_arrays(tmp_path / "ids.npz", inputs=random_arrays(3)["inputs"], targets=ids)
    arrays = read_sequences(path)
    assert arrays.targets.dtype == torch.long and arrays.targets.shape == (N, T)
    assert torch.equal(arrays.targets, torch.from_numpy(ids.astype(np.int64)))
    task = task_on(tmp_path, train="ids.npz", loss="ce")
    assert (task.input_size, task.output_size) == (IN, 7)
    assert task.input_kinds == {"vector": IN}


# -- the losses, errors and metrics -----------------------------------------------------------------------


def _batch(tmp_path: Path, targets: np.ndarray, seed: int) -> Batch:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, T + 1, N)
    lengths[0] = T
    path = write_arrays(tmp_path / f"loss{seed}.npz", inputs=random_arrays(seed)["inputs"], targets=targets,
                        lengths=lengths)
    return read_sequences(path).rows(torch.arange(N))


def test_bce_loss_and_bit_errors(tmp_path: Path) -> None:
    batch = _batch(tmp_path, random_arrays(4)["targets"], 4)
    logits = torch.randn(N, T, OUT, generator=torch.Generator().manual_seed(4))
    loss = OutputLoss("bce")
    per_bit = F.binary_cross_entropy_with_logits(logits, batch.targets, reduction="none")
    expected = (per_bit * batch.mask[..., None]).sum((1, 2))
    torch.testing.assert_close(loss.sequence_losses(logits, batch), expected)
    wrong = ((logits > 0).float() != batch.targets).float() * batch.mask[..., None]
    assert torch.equal(loss.errors(logits, batch), wrong.sum((1, 2)))
    assert loss.metrics(logits, batch) == {} and loss.error_unit == "bit errors"
    assert loss.errors(torch.where(batch.targets > 0.5, 5.0, -5.0), batch).sum() == 0


def test_ce_loss_on_class_ids_errors_and_accuracy(tmp_path: Path) -> None:
    ids = np.random.default_rng(5).integers(0, OUT, (N, T))
    batch = _batch(tmp_path, ids, 5)
    logits = torch.randn(N, T, OUT, generator=torch.Generator().manual_seed(5))
    loss = OutputLoss("ce")
    targets = torch.from_numpy(ids)
    per_step = F.cross_entropy(logits.reshape(-1, OUT), targets.reshape(-1), reduction="none").view(N, T)
    torch.testing.assert_close(loss.sequence_losses(logits, batch), (per_step * batch.mask).sum(1))
    wrong = ((logits.argmax(-1) != targets).float() * batch.mask).sum(1)
    assert torch.equal(loss.errors(logits, batch), wrong)
    scored = batch.mask.sum(1)
    torch.testing.assert_close(loss.metrics(logits, batch)["accuracy"], (scored - wrong) / scored)
    assert loss.error_unit == "wrong classes"


def test_ce_loss_on_soft_targets(tmp_path: Path) -> None:
    soft = np.random.default_rng(6).dirichlet(np.ones(OUT), (N, T)).astype(np.float32)
    batch = _batch(tmp_path, soft, 6)
    logits = torch.randn(N, T, OUT, generator=torch.Generator().manual_seed(6))
    per_step = F.cross_entropy(logits.reshape(-1, OUT), torch.from_numpy(soft).reshape(-1, OUT), reduction="none")
    loss = OutputLoss("ce")
    torch.testing.assert_close(loss.sequence_losses(logits, batch), (per_step.view(N, T) * batch.mask).sum(1))
    wrong = ((logits.argmax(-1) != torch.from_numpy(soft).argmax(-1)).float() * batch.mask).sum(1)
    assert torch.equal(loss.errors(logits, batch), wrong)


def test_mse_loss_and_errors(tmp_path: Path) -> None:
    batch = _batch(tmp_path, random_arrays(7, bits=False)["targets"], 7)
    logits = torch.randn(N, T, OUT, generator=torch.Generator().manual_seed(7))
    loss = OutputLoss("mse")
    squared = ((logits - batch.targets) ** 2 * batch.mask[..., None]).sum((1, 2))
    torch.testing.assert_close(loss.sequence_losses(logits, batch), squared)
    torch.testing.assert_close(loss.errors(logits, batch), squared / (batch.mask.sum(1) * OUT))
    mse = F.mse_loss(logits[0], batch.targets[0])  # row 0 has every step scored
    torch.testing.assert_close(loss.errors(logits, batch)[0], mse)
    assert loss.metrics(logits, batch) == {} and loss.error_unit == "squared error"


def test_mse_of_a_tanh_output_is_the_error_of_what_it_outputs(tmp_path: Path) -> None:
    """A tanh (or relu) output is trained on its outputs, the values predict writes, not its pre-activations."""
    batch = _batch(tmp_path, np.tanh(random_arrays(8, bits=False)["targets"]), 8)
    logits = torch.randn(N, T, OUT, generator=torch.Generator().manual_seed(8))
    task = task_on(tmp_path, train="loss8.npz")
    task.follow_output("tanh")
    assert task.kind == "mse"
    squared = ((torch.tanh(logits) - batch.targets) ** 2 * batch.mask[..., None]).sum((1, 2))
    torch.testing.assert_close(task.sequence_losses(logits, batch), squared)
    assert float(task.sequence_losses(torch.atanh(batch.targets.clamp(-0.999, 0.999)), batch).max()) < 1e-4


def test_the_task_loss_is_the_mean_of_the_sequence_losses(tmp_path: Path) -> None:
    write_arrays(tmp_path / "train.npz", **random_arrays(9))
    task = task_on(tmp_path, train="train.npz")
    task.follow_output("sigmoid")
    batch = task.sample(5, torch.Generator().manual_seed(0))
    logits = torch.randn(*batch.targets.shape, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(task.loss_of(logits, batch), OutputLoss("bce").sequence_losses(logits, batch).mean())
    assert torch.equal(task.reward(logits, batch), (task.errors(logits, batch) == 0).float())


def test_user_data_mse_of_a_tanh_output_is_on_its_outputs(tmp_path: Path) -> None:
    """cogdsl.train(spec, data=...) shares OutputLoss: a tanh output is trained on its outputs there too."""
    from cogdsl.training.user_data import DataTask

    text = f"model data_tanh\n\ninput x: {IN}\noutput y: {OUT} = tanh(ctrl)\nlstm ctrl(hidden=8) <- x\n"
    spec = cogdsl.load(_spec_file(tmp_path, text))
    task = DataTask(spec, data=[(torch.zeros(2, T, IN), torch.zeros(2, T, OUT))])
    batch = Batch(torch.zeros(2, T, IN), torch.full((2, T, OUT), 0.5), torch.ones(2, T))
    logits = torch.full((2, T, OUT), 0.5)
    expected = ((torch.tanh(logits) - batch.targets) ** 2).sum((1, 2))
    torch.testing.assert_close(task.sequence_losses(logits, batch), expected)


# -- the loss follows the spec's output -------------------------------------------------------------------


def _spec_file(tmp_path: Path, text: str, name: str = "seqs") -> Path:
    path = tmp_path / f"{name}.cog"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("activation", "kind"), [("sigmoid", "bce"), ("softmax", "ce"), ("none", "mse"),
                                                   ("tanh", "mse")])
def test_loss_auto_follows_the_output_activation(tmp_path: Path, activation: str, kind: str) -> None:
    write_arrays(tmp_path / "train.npz", **random_arrays(10))
    spec = cogdsl.load(_spec_file(tmp_path, spec_text(activation=activation)))
    task = build_task(config_from_spec(spec), spec)
    assert isinstance(task, SequencesTask)
    assert task.kind == kind == loss_for(activation)
    assert task.data_state()["loss"] == kind
    assert task.error_unit == OutputLoss(kind).error_unit


@pytest.mark.parametrize("explicit", ["bce", "ce", "mse"])
def test_an_explicit_loss_wins(tmp_path: Path, explicit: str) -> None:
    write_arrays(tmp_path / "train.npz", **random_arrays(11))
    for activation in ("sigmoid", "softmax", "none"):
        spec = cogdsl.load(_spec_file(tmp_path, spec_text(activation=activation, extra=f', loss="{explicit}"')))
        assert build_task(config_from_spec(spec), spec).kind == explicit


def test_the_loss_a_checkpoint_trained_with_is_restored(tmp_path: Path) -> None:
    task = task_on(tmp_path, train="x.npz")
    task.follow_output("sigmoid")
    task.load_data_state({"loss": "mse"})
    assert task.kind == "mse" and task.loss_fn.kind == "mse"
    task.load_data_state({"loss": "bogus"})
    assert task.kind == "mse"


def test_a_class_id_file_for_a_sigmoid_output_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = np.random.default_rng(12).integers(0, OUT, (N, T))
    path = write_arrays(tmp_path / "train.npz", inputs=random_arrays(12)["inputs"], targets=ids)
    spec = _spec_file(tmp_path, spec_text(activation="sigmoid"))
    assert main(["validate", str(spec)]) == 1
    out = capsys.readouterr()
    assert "error[E604]" in out.out and str(path) in out.out and "'targets'" in out.out and "class ids" in out.out
    assert "Traceback" not in out.out + out.err
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--no-progress", "--no-tensorboard"]) == 1
    assert "error[E604]" in capsys.readouterr().err and not (tmp_path / "run").exists()


# -- splits -------------------------------------------------------------------------------------------------


def _numbered(n: int, lengths: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Arrays whose sequence k has k in every input value (to tell which rows a batch took)."""
    arrays = random_arrays(13, n=n)
    arrays["inputs"] = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None], (n, T, IN)).copy()
    if lengths is not None:
        arrays["lengths"] = lengths
    return arrays


def _rows(batch: Batch) -> list[int]:
    assert isinstance(batch.inputs, torch.Tensor)
    return batch.inputs[:, 0, 0].long().tolist()


def test_the_validation_hold_out_is_the_last_rows_and_never_trained_on(tmp_path: Path) -> None:
    write_arrays(tmp_path / "train.npz", **_numbered(20))
    task = task_on(tmp_path, train="train.npz", valid_fraction=0.25)
    assert _rows(task.split("train").rows(torch.arange(15))) == list(range(15))
    assert len(task.split("train")) == 15 and len(task.split("valid")) == 5
    valid = [row for b in task.evaluation_batches(100, 0, 2, None, split="valid") for row in _rows(b)]
    assert valid == [15, 16, 17, 18, 19]
    generator = torch.Generator().manual_seed(0)
    drawn = {row for _ in range(50) for row in _rows(task.sample(8, generator))}
    assert drawn <= set(range(15)) and len(drawn) > 10

    whole = task_on(tmp_path, train="train.npz", valid_fraction=0.0)
    assert len(whole.split("train")) == len(whole.split("valid")) == 20


def test_a_valid_file_is_the_validation_split(tmp_path: Path) -> None:
    write_arrays(tmp_path / "train.npz", **_numbered(10))
    write_arrays(tmp_path / "valid.npz", **_numbered(30))
    task = task_on(tmp_path, train="train.npz", valid="valid.npz")
    assert len(task.split("train")) == 10  # the whole train file: nothing held out
    assert [r for b in task.evaluation_batches(1000, 0, 7, None, split="valid") for r in _rows(b)] == list(range(30))
    assert [r for b in task.evaluation_batches(4, 0, 3, None, split="valid") for r in _rows(b)] == [0, 1, 2, 3]


def test_a_fraction_holds_out_at_least_one_sequence(tmp_path: Path) -> None:
    write_arrays(tmp_path / "five.npz", **_numbered(5))
    task = task_on(tmp_path, train="five.npz")  # valid_fraction 0.1 of 5: one, not none
    assert len(task.split("train")) == 4 and _rows(task.split("valid").rows(torch.arange(1))) == [4]
    path = write_arrays(tmp_path / "one.npz", **_numbered(1))
    with pytest.raises(DataFileError, match="too few to hold out") as err:
        task_on(tmp_path, train="one.npz").split("valid")
    assert str(err.value).startswith(f"{path}: ")
    assert len(task_on(tmp_path, train="one.npz", valid_fraction=0.0).split("train")) == 1


def test_eval_without_a_test_file_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_arrays(tmp_path / "train.npz", **random_arrays(14))
    spec = _spec_file(tmp_path, spec_text())
    torch.manual_seed(0)
    checkpoint = cogdsl.save(cogdsl.compile(spec), tmp_path / "model.safetensors")
    with pytest.raises(UsageError, match="no test file"):
        task_on(tmp_path, train="train.npz").split("test")
    assert main(["eval", str(spec), str(checkpoint)]) == 1
    err = capsys.readouterr().err
    assert "no test file" in err and "test: PATH" in err and "Traceback" not in err


def test_relative_paths_resolve_from_the_spec_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = write_arrays(tmp_path / "data" / "train.npz", **random_arrays(15))
    write_arrays(tmp_path / "data" / "test.safetensors", **random_arrays(16, n=5))
    (tmp_path / "specs").mkdir()
    text = spec_text(train="../data/train.npz", extra=', test="../data/test.safetensors"')
    spec = _spec_file(tmp_path / "specs", text)
    elsewhere = tmp_path / "elsewhere" / "deeper"  # where ../data is not the data
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    assert main(["validate", str(spec)]) == 0
    assert main(["validate", os.path.relpath(spec, elsewhere)]) == 0
    model = cogdsl.compile(spec)
    assert model.shapes.sizes["x"] == IN and model.shapes.sizes["y"] == OUT
    task = build_task(config_from_spec(cogdsl.load(spec)), cogdsl.load(spec))
    assert task.path("train").resolve() == data.resolve()
    assert task.shown_params()["train"] == str(data.resolve())
    assert len(task.split("test")) == 5
    capsys.readouterr()


def test_batches_are_trimmed_to_their_longest_sequence(tmp_path: Path) -> None:
    lengths = np.array([2, 5, 3, 1, 6, 2, 4, 1], dtype=np.int64)
    write_arrays(tmp_path / "train.npz", **_numbered(8, lengths))
    task = task_on(tmp_path, train="train.npz", valid_fraction=0.0)
    data = task.split("train")
    assert data.rows(torch.tensor([0, 2])).inputs.shape == (2, 3, IN)
    assert data.rows(torch.tensor([3])).targets.shape == (1, 1, OUT)
    evaluated = list(task.evaluation_batches(8, 0, 3, None, split="valid"))
    assert [b.inputs.shape[1] for b in evaluated] == [5, 6, 4]
    assert [b.mask.shape for b in evaluated] == [(3, 5), (3, 6), (2, 4)]
    generator = torch.Generator().manual_seed(1)
    for _ in range(20):
        batch = task.sample(3, generator)
        assert batch.inputs.shape[1] == max(int(lengths[r]) for r in _rows(batch))
        assert torch.equal(batch.mask.sum(1), torch.tensor([float(lengths[r]) for r in _rows(batch)]))


# -- bad files --------------------------------------------------------------------------------------------------

GOOD = random_arrays(17)


def _bad_cases() -> dict[str, tuple[str, dict[str, np.ndarray] | bytes | None, str]]:
    """name -> (file name, what to write (arrays, raw bytes, or None: nothing), the array the message names)."""
    inputs, targets = GOOD["inputs"], GOOD["targets"]
    nan_inputs = inputs.copy()
    nan_inputs[2, 3, 1] = np.nan
    inf_targets = targets.copy()
    inf_targets[1, 0, 0] = np.inf
    ids = np.zeros((N, T), dtype=np.int64)
    ids[4, 2] = -1
    return {
        "missing inputs": ("a.npz", {"targets": targets}, "inputs"),
        "missing targets": ("a.safetensors", {"inputs": inputs}, "targets"),
        "inputs of 2 axes": ("a.npz", {"inputs": inputs[..., 0], "targets": targets}, "inputs"),
        "targets of 4 axes": ("a.npz", {"inputs": inputs, "targets": targets[..., None]}, "targets"),
        "nan inputs": ("a.npz", {"inputs": nan_inputs, "targets": targets}, "inputs"),
        "inf targets": ("a.safetensors", {"inputs": inputs, "targets": inf_targets}, "targets"),
        "nan mask": ("a.npz", {"inputs": inputs, "targets": targets, "mask": np.full((N, T), np.nan)}, "mask"),
        "lengths 0": ("a.npz", {"inputs": inputs, "targets": targets, "lengths": np.arange(N)}, "lengths"),
        "lengths past T": ("a.npz", {"inputs": inputs, "targets": targets, "lengths": np.full(N, T + 1)}, "lengths"),
        "lengths of floats": ("a.npz", {"inputs": inputs, "targets": targets, "lengths": np.ones(N)}, "lengths"),
        "mask and lengths": ("a.npz", {"inputs": inputs, "targets": targets, "mask": np.ones((N, T)),
                                       "lengths": np.ones(N, dtype=np.int64)}, "lengths"),
        "mask of another shape": ("a.npz", {"inputs": inputs, "targets": targets, "mask": np.ones((N, T + 1))},
                                  "mask"),
        "mask of strings": ("a.npz", {"inputs": inputs, "targets": targets, "mask": np.full((N, T), "1")}, "mask"),
        "targets of another N": ("a.npz", {"inputs": inputs, "targets": targets[:-1]}, "targets"),
        "targets of another T": ("a.safetensors", {"inputs": inputs, "targets": targets[:, :-1].copy()}, "targets"),
        "class ids of another N": ("a.npz", {"inputs": inputs, "targets": ids[:0]}, "targets"),
        "negative class ids": ("a.npz", {"inputs": inputs, "targets": ids}, "targets"),
        "empty inputs": ("a.npz", {"inputs": inputs[:0], "targets": targets[:0]}, "inputs"),
        "random bytes npz": ("a.npz", os.urandom(200), ""),
        "random bytes safetensors": ("a.safetensors", os.urandom(200), ""),
        "a .npy named .npz": ("a.npz", b"", ""),
        "wrong suffix": ("a.npy", {"inputs": inputs, "targets": targets}, ""),
        "missing file": ("nothing.npz", None, ""),
    }


BAD = _bad_cases()


def _write_bad(tmp_path: Path, case: str) -> Path:
    name, content, _ = BAD[case]
    path = tmp_path / name
    if case == "a .npy named .npz":
        with path.open("wb") as handle:
            np.save(handle, GOOD["inputs"])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        write_arrays(path, **content)
    return path


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_is_a_data_file_error_naming_path_and_array(tmp_path: Path, case: str) -> None:
    path = _write_bad(tmp_path, case)
    with pytest.raises(DataFileError) as err:
        read_sequences(path)
    message = str(err.value)
    assert message.startswith(f"{path}: "), message
    assert err.value.path == str(path)
    array = BAD[case][2]
    if array:
        assert f"'{array}'" in message, message


def test_a_single_npy_array_named_npz_says_so(tmp_path: Path) -> None:
    path = _write_bad(tmp_path, "a .npy named .npz")
    with pytest.raises(DataFileError, match=r"one \.npy array, not an \.npz archive"):
        read_sequences(path)


def test_a_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "data.npz"
    folder.mkdir()
    with pytest.raises(DataFileError, match="is a folder") as err:
        read_sequences(folder)
    assert str(folder) in str(err.value)


def test_predict_reads_files_without_targets_but_training_needs_them(tmp_path: Path) -> None:
    path = write_arrays(tmp_path / "in.npz", inputs=GOOD["inputs"], lengths=np.full(N, 2))
    arrays = read_sequences(path, targets_required=False)
    assert arrays.targets.shape == (N, T, 0) and arrays.lengths.tolist() == [2] * N
    with pytest.raises(DataFileError, match="'targets'"):
        read_sequences(path)


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = write_arrays(tmp_path / "a.npz", **random_arrays(18))
    first = read_sequences(path)
    assert read_sequences(path) is first  # read once while unchanged
    write_arrays(path, **random_arrays(19, n=3))
    os.utime(path, ns=(1, 1))
    assert len(read_sequences(path)) == 3


@pytest.mark.parametrize("case", ["missing file", "random bytes npz", "nan inputs", "targets of another T",
                                  "mask of strings", "class ids of another N"])
def test_a_bad_file_through_the_commands_is_e604(tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_bad(tmp_path, case)
    spec = _spec_file(tmp_path, spec_text(train=path.name))
    assert main(["validate", str(spec)]) == 1
    out = capsys.readouterr()
    assert "error[E604]" in out.out and str(path) in out.out, out.out
    lines = spec.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "sequences(" in text)
    assert f"{spec}:{line}:{lines[line - 1].index('sequences') + 1}: error[E604]" in out.out
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run), "--no-progress", "--no-tensorboard"]) == 1
    trained = capsys.readouterr()
    assert "error[E604]" in trained.err and str(path) in trained.err
    assert "Traceback" not in out.out + out.err + trained.out + trained.err
    assert not run.exists()


def test_a_bad_test_file_is_e604_even_when_train_is_good(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_arrays(tmp_path / "train.npz", **random_arrays(20))
    write_arrays(tmp_path / "test.npz", inputs=random_arrays(20)["inputs"][..., :2], targets=GOOD["targets"])
    spec = _spec_file(tmp_path, spec_text(extra=', test="test.npz"'))
    assert main(["validate", str(spec)]) == 1
    out = capsys.readouterr().out
    assert "error[E604]" in out and str(tmp_path / "test.npz") in out and "channels" in out


# -- sizes --------------------------------------------------------------------------------------------------


def test_a_spec_leaving_sizes_out_trains_on_the_files_sizes(tmp_path: Path) -> None:
    write_arrays(tmp_path / "train.npz", **random_arrays(21, n=20))
    spec = _spec_file(tmp_path, spec_text())
    result = cogdsl.train(spec, out_dir=tmp_path / "run", progress=False, tensorboard=False, steps=2)
    assert result.step == 2 and result.loss is not None and np.isfinite(result.loss)
    assert result.model.shapes.sizes["x"] == IN and result.model.shapes.sizes["y"] == OUT
    assert result.eval is not None and result.eval.split == "valid" and result.eval.sequences == 2
    y = result.model(torch.zeros(2, T, IN))
    assert y.shape == (2, T, OUT)


def test_a_wrong_input_size_is_e501_at_the_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_arrays(tmp_path / "train.npz", **random_arrays(22))
    spec = _spec_file(tmp_path, spec_text(x=7, y=OUT))
    assert main(["validate", str(spec)]) == 1
    out = capsys.readouterr().out
    lines = spec.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.startswith("input"))
    col = lines[line - 1].index("7") + 1
    headline = out.splitlines()[0]
    assert re.match(rf"^{re.escape(str(spec))}:{line}:{col}: error\[E501\]: size mismatch: .*sequences.* "
                    rf"feeds {IN} channels but input 'x' has size 7$", headline), headline
    assert f"hint: set the size of 'x' to {IN}, or leave it out" in out
    assert "Traceback" not in out


def test_a_wrong_output_size_is_e501_at_the_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_arrays(tmp_path / "train.npz", **random_arrays(23))
    spec = _spec_file(tmp_path, spec_text(x=IN, y=9))
    assert main(["validate", str(spec)]) == 1
    headline = capsys.readouterr().out.splitlines()[0]
    lines = spec.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.startswith("output"))
    assert headline.startswith(f"{spec}:{line}:{lines[line - 1].index('9') + 1}: error[E501]: size mismatch")
    assert f"expects {OUT} outputs but output 'y' has size 9" in headline


def test_a_written_class_count_above_the_largest_id_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    ids = np.random.default_rng(25).integers(0, OUT, (N, T))
    write_arrays(tmp_path / "train.npz", inputs=random_arrays(25)["inputs"], targets=ids)
    spec = _spec_file(tmp_path, spec_text(activation="softmax", x=IN, y=OUT + 2))
    assert main(["validate", str(spec)]) == 0, capsys.readouterr().out


def test_a_spec_writing_the_right_sizes_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_arrays(tmp_path / "train.safetensors", **random_arrays(24))
    spec = _spec_file(tmp_path, spec_text(train="train.safetensors", x=IN, y=OUT))
    assert main(["validate", str(spec)]) == 0
    assert "no errors" in capsys.readouterr().err
    model = cogdsl.compile(spec)
    assert model.shapes.sizes["x"] == IN and model.shapes.sizes["y"] == OUT


def test_eval_files_must_fit_the_trained_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """eval reads its files after training: a file that does not fit the checkpoint's model is a located error,
    not a traceback inside the model."""
    write_arrays(tmp_path / "train.npz", **random_arrays(30))
    write_arrays(tmp_path / "test.npz", **random_arrays(31))
    spec = _spec_file(tmp_path, spec_text(extra=', test="test.npz"'))
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--steps", "2", "--no-progress",
                 "--no-tensorboard", "--device", "cpu"]) == 0
    narrow = random_arrays(32)
    narrow["inputs"] = narrow["inputs"][..., :-1]
    write_arrays(tmp_path / "test.npz", **narrow)  # the test file changed after training
    capsys.readouterr()
    assert main(["eval", str(spec), str(tmp_path / "run"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "test.npz" in err and f"has {IN - 1} channels per step" in err
