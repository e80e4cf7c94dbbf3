"""Training on your own data from Python: ``cogdsl.train(spec, data=..., eval_data=...)``
(:mod:`cogdsl.training.user_data`), and ``cogdsl.save`` / ``cogdsl.restore`` with the commands that read a
checkpoint."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

import cogdsl
from cogdsl.cli.command import main
from cogdsl.compiler.pipeline import read_spec_file
from cogdsl.errors import UsageError
from cogdsl.tasks import Batch, make_task
from cogdsl.training.checkpoints import load_checkpoint
from cogdsl.training.loop import EVAL_SEED, TrainResult, evaluate
from cogdsl.training.user_data import DataTask, as_batch, collate
from tests.tiny import tiny_ntm, write_spec

# An LSTM reading 3 bits a step and writing 2 through a sigmoid; the sizes left out or written.
LSTM = """\
cogdsl 1
model tiny_data
input x{input_size}
output y{output_size} = sigmoid(ctrl)
lstm ctrl(hidden=8) <- x
"""
LSTM_YAML = """\
cogdsl: 1
model: tiny_data
inputs:
  x: {kind: vector}
outputs:
  y: {from: [ctrl], activation: sigmoid}
blocks:
  ctrl: {kind: lstm, hidden: 8, from: [x]}
"""
# Two inputs of different kinds: a vector at each step, and a whole sequence an encoder reads.
TWO_INPUTS = """\
cogdsl 1
model two_inputs
input x: 3
input s: sequence(size=2)
output y: 2 = sigmoid(ctrl)
encoder enc(hidden=4) <- s
summary ctx(mode=final) on enc
lstm ctrl(hidden=8) <- x, ctx
"""
# Word ids in, one class id out per step (softmax: the cross-entropy loss).
WORDS = """\
cogdsl 1
model tiny_words
input s: words(vocab=12)
output answer: 12 = softmax(ctrl)
embed e(dim=8, encoding=position) <- s
lstm ctrl(hidden=8) <- e
"""
KINDS = {"x": "vector"}
TWO_KINDS = {"x": "vector", "s": "sequence"}


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Runs set torch's threads from their train section: put them back. Drawing the learning curve takes most
    of a tiny run's second (tests/test_train.py looks at it): skipped."""
    monkeypatch.setattr("cogdsl.viz.curves.plot_learning_curve", lambda *args, **kwargs: None)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def lstm_spec(tmp_path: Path, sized: bool = False) -> Path:
    """The LSTM spec's file. ``cogdsl.train`` takes a path; ``cogdsl.load`` refuses a spec whose sizes are left
    out with no task to give them (see test_load_leaves_sizes_to_the_data)."""
    text = LSTM.format(input_size=": 3" if sized else "", output_size=": 2" if sized else "")
    return write_spec(tmp_path, text, name="sized" if sized else "unsized")


def spec_of(tmp_path: Path, text: str, suffix: str = ".cog", name: str = "spec") -> cogdsl.Spec:
    return cogdsl.load(write_spec(tmp_path, text, suffix, name))


def bits(n: int, steps: int = 4, size: int = 3, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, steps, size, generator=torch.Generator().manual_seed(seed)) < 0.5).float()


class EchoBits(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Sequences of random bits (steps, size); the target at each step is the first ``out`` bits of the input
    at that step: a model learns it in a few dozen steps. Records the items it is asked for."""

    def __init__(self, n: int, steps: int = 4, size: int = 3, out: int = 2, seed: int = 0,
                 lengths: list[int] | None = None) -> None:
        self.x = bits(n, steps, size, seed)
        self.out, self.lengths = out, lengths
        self.taken: list[int] = []

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.taken.append(index)
        steps = self.lengths[index] if self.lengths is not None else self.x.shape[1]
        x = self.x[index, :steps]
        return x, x[:, :self.out]


def echo_batches(sizes: list[int], steps: int = 4, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches (inputs, targets) of EchoBits' problem with ``sizes`` sequences each."""
    out = []
    for number, size in enumerate(sizes):
        x = bits(size, steps, seed=seed + number)
        out.append((x, x[..., :2]))
    return out


def run(spec: Any, out: Path, **kwargs: Any) -> TrainResult:
    """``cogdsl.train`` on the CPU with no progress bar and no TensorBoard, batch 4, 3 steps unless told."""
    settings: dict[str, Any] = {"progress": False, "tensorboard": False, "device": "cpu", "batch": 4, "steps": 3,
                                **kwargs}
    return cogdsl.train(spec, out_dir=out, **settings)


def read_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "log.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def numbers(run_dir: Path) -> list[tuple[str, str, str]]:
    """Each log row's step, sequences and training loss: what two runs on the same data share."""
    return [(row["step"], row["sequences"], row["loss"]) for row in read_rows(run_dir)]


class Items(Dataset[Any]):
    """A map-style Dataset of the items of a list."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.items[index]


def final_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    """The model's tensors in the run's newest checkpoint."""
    checkpoint = load_checkpoint(run_dir)
    return {name: tensor for name, tensor in checkpoint.tensors.items() if name.startswith("model.")}


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a and set(a) == set(b)
    for name in a:
        assert torch.equal(a[name], b[name]), name


# -- a whole run on a Dataset --------------------------------------------------------------------------------


def test_dataset_run_folder_and_learning(tmp_path: Path) -> None:
    # The tiny NTM of tests/tiny.py with no train section (sigmoid output: the BCE loss), on a map-style Dataset.
    spec = spec_of(tmp_path, tiny_ntm(hidden=8), ".yaml")
    train_set, valid = EchoBits(64, size=5, out=4), EchoBits(16, size=5, out=4, seed=1)
    out = tmp_path / "run"
    result = run(spec, out, data=train_set, eval_data=valid, steps=60, batch=8, lr=3e-3, log_every=10,
                 eval_every=30, checkpoint_every=30)

    assert result.step == 60 and result.stopped == "done"
    rows = read_rows(out)
    assert [int(r["step"]) for r in rows] == [10, 20, 30, 40, 50, 60]
    assert [int(r["sequences"]) for r in rows] == [80 * k for k in range(1, 7)]
    assert [bool(r["eval_loss"]) for r in rows] == [False, False, True, False, False, True]
    losses = [float(r["loss"]) for r in rows]
    assert losses[-1] < 0.3 * losses[0], losses  # seed 0: 10.7 -> 0.6 (0.4 at 100 steps)
    assert result.eval is not None and result.eval.sequences == 16 and result.eval.length is None
    assert result.eval.unit == "bit errors"  # the sigmoid output's loss: binary cross-entropy
    assert float(rows[-1]["eval_loss"]) == pytest.approx(result.eval.loss, rel=1e-5)
    assert result.eval.loss < 0.3 * losses[0]
    assert sorted(p.name for p in (out / "checkpoints").glob("step_*.safetensors")) == [
        "step_00000030.safetensors", "step_00000060.safetensors"]
    assert result.checkpoint == out / "checkpoints" / "step_00000060.safetensors"
    assert (out / "spec.yaml").read_text().startswith("cogdsl: 1\nmodel: tiny_copy\n")
    # the checkpoint holds the trained model
    assert_same_tensors(final_tensors(out), {f"model.{k}": v for k, v in result.model.state_dict().items()})
    # one epoch of 64 sequences is 8 batches: each of the first 7 epochs took every sequence once, in a fresh order
    epochs = [train_set.taken[64 * k:64 * (k + 1)] for k in range(7)]
    assert all(sorted(epoch) == list(range(64)) for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) == 7


# -- the forms of a batch ------------------------------------------------------------------------------------


def test_as_batch_forms() -> None:
    x, y = bits(2, 4), bits(2, 4, 2, seed=1)
    mask = torch.tensor([[0.0, 1, 1, 1], [1, 1, 0, 0]])

    plain = as_batch((x, y), KINDS)
    assert torch.equal(plain.inputs, x) and torch.equal(plain.targets, y) and torch.equal(plain.mask, torch.ones(2, 4))
    with_mask = as_batch([x, y, mask], KINDS)
    assert torch.equal(with_mask.mask, mask)
    by_dict = as_batch({"inputs": x, "targets": y, "mask": mask}, KINDS)
    assert torch.equal(by_dict.inputs, x) and torch.equal(by_dict.mask, mask)
    by_lengths = as_batch({"inputs": x, "targets": y, "lengths": torch.tensor([3, 1])}, KINDS)
    assert by_lengths.mask.tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    given = Batch(x, y, mask, info={"task": torch.tensor([1, 2])})
    same = as_batch(given, KINDS)
    assert torch.equal(same.inputs, x) and torch.equal(same.mask, mask) and torch.equal(same.info["task"],
                                                                                        torch.tensor([1, 2]))
    # NumPy and integer inputs become float tensors; boolean targets float bits; integer targets class ids
    converted = as_batch((x.numpy().astype(np.int64), y.bool()), KINDS)
    assert converted.inputs.dtype == torch.float32 and torch.equal(converted.inputs, x)
    assert converted.targets.dtype == torch.float32 and torch.equal(converted.targets, y)
    ids = as_batch((x, np.zeros((2, 4), dtype=np.int32)), KINDS)
    assert ids.targets.dtype == torch.long and ids.targets.shape == (2, 4)

    # inputs by the spec's input names become inputs by kind, as the tasks give them
    s = torch.rand(2, 6, 2)
    two = as_batch(({"x": x, "s": s}, y), TWO_KINDS)
    assert isinstance(two.inputs, dict) and set(two.inputs) == {"vector", "sequence"}
    assert torch.equal(two.inputs["vector"], x) and torch.equal(two.inputs["sequence"], s)
    assert torch.equal(two.mask, torch.ones(2, 4))  # the steps are the targets', not the whole sequence's 6
    by_kind = as_batch({"inputs": {"vector": x, "sequence": s}, "targets": y}, TWO_KINDS)
    assert torch.equal(by_kind.inputs["sequence"], s)


def test_dict_inputs_by_name_train(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, TWO_INPUTS)
    x = bits(4, 4)
    batches = [({"x": x, "s": torch.rand(4, 6, 2)}, x[..., :2]), {"inputs": {"s": torch.rand(4, 3, 2), "x": x},
                                                                 "targets": x[..., :2]}]
    result = run(spec, tmp_path / "list", data=batches, steps=4, log_every=1)
    assert result.step == 4 and [int(r["sequences"]) for r in read_rows(tmp_path / "list")] == [4, 8, 12, 16]

    class Items(Dataset[tuple[dict[str, torch.Tensor], torch.Tensor]]):
        def __len__(self) -> int:
            return 6

        def __getitem__(self, index: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
            steps = 2 + index % 3
            x = bits(1, steps, seed=index)[0]
            return {"x": x, "s": torch.rand(1 + index, 2)}, x[:, :2]

    result = run(spec, tmp_path / "items", data=Items(), eval_data=Items(), steps=3)
    assert result.eval is not None and result.eval.sequences == 6


def test_loader_list_and_iterables_train(tmp_path: Path) -> None:
    spec = lstm_spec(tmp_path, sized=True)
    x = bits(12, 4)
    loader = DataLoader(TensorDataset(x, x[..., :2]), batch_size=5)  # batches of 5, 5, 2
    result = run(spec, tmp_path / "loader", data=loader, steps=4, log_every=1)
    assert [int(r["sequences"]) for r in read_rows(tmp_path / "loader")] == [5, 10, 12, 17]
    assert result.step == 4

    batches = echo_batches([3, 1, 2])  # a plain list: read in its order, and again when it runs out
    run(spec, tmp_path / "list", data=batches, steps=5, log_every=1)
    assert [int(r["sequences"]) for r in read_rows(tmp_path / "list")] == [3, 4, 6, 9, 10]

    class Batches:
        """An iterable whose __iter__ is a generator function: each pass starts afresh."""

        def __init__(self) -> None:
            self.passes = 0

        def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            self.passes += 1
            yield from echo_batches([2, 3])

    iterable = Batches()
    run(spec, tmp_path / "iterable", data=iterable, steps=5, log_every=1)
    assert [int(r["sequences"]) for r in read_rows(tmp_path / "iterable")] == [2, 5, 7, 10, 12]
    assert iterable.passes == 3

    def generator() -> Iterator[dict[str, torch.Tensor]]:  # a generator object is read once: enough batches here
        for batch_x, batch_y in echo_batches([1, 2, 3, 4]):
            yield {"inputs": batch_x, "targets": batch_y}

    run(spec, tmp_path / "generator", data=generator(), steps=4, log_every=1)
    assert [int(r["sequences"]) for r in read_rows(tmp_path / "generator")] == [1, 3, 6, 10]


def test_iterable_dataset_of_sequences_is_batched(tmp_path: Path) -> None:
    class Stream(IterableDataset[tuple[torch.Tensor, torch.Tensor]]):
        def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for index in range(10):
                x = bits(1, 2 + index % 3, seed=index)[0]  # (T, 3), T from 2 to 4
                yield x, x[:, :2]

    run(lstm_spec(tmp_path), tmp_path / "run", data=Stream(), eval_data=Stream(), steps=4, log_every=1,
        eval_every=4)
    rows = read_rows(tmp_path / "run")
    assert [int(r["sequences"]) for r in rows] == [4, 8, 10, 14]  # batches of 4, 4 and the last 2; again
    assert rows[-1]["eval_loss"]


# -- sequences of different lengths -----------------------------------------------------------------------


def test_collate_pads_with_unscored_steps() -> None:
    items = [(torch.ones(2, 3), torch.ones(2, 2)), (2 * torch.ones(4, 3), 2 * torch.ones(4, 2)),
             {"inputs": 3 * torch.ones(3, 3), "targets": 3 * torch.ones(3, 2), "mask": torch.tensor([0.0, 1, 1])},
             {"inputs": 4 * torch.ones(4, 3), "targets": 4 * torch.ones(4, 2), "lengths": 2}]
    batch = collate(items, KINDS)
    assert isinstance(batch.inputs, torch.Tensor) and batch.inputs.shape == (4, 4, 3)
    assert batch.targets.shape == (4, 4, 2)
    assert batch.mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [0, 1, 1, 0], [1, 1, 0, 0]]
    assert batch.inputs[:, :, 0].tolist() == [[1, 1, 0, 0], [2, 2, 2, 2], [3, 3, 3, 0], [4, 4, 4, 4]]
    assert batch.targets[:, :, 1].tolist() == [[1, 1, 0, 0], [2, 2, 2, 2], [3, 3, 3, 0], [4, 4, 4, 4]]

    # class ids (T,) are padded too
    ids = collate([(torch.ones(1, 3), torch.tensor([5])), (torch.ones(3, 3), torch.tensor([1, 2, 3]))], KINDS)
    assert ids.targets.tolist() == [[5, 0, 0], [1, 2, 3]] and ids.mask.tolist() == [[1, 0, 0], [1, 1, 1]]

    # a whole sequence is padded to the longest sequence of the batch, not to the steps
    two = collate([({"x": torch.ones(2, 3), "s": torch.ones(5, 2)}, torch.ones(2, 2)),
                   ({"x": torch.ones(3, 3), "s": torch.ones(1, 2)}, torch.ones(3, 2))], TWO_KINDS)
    assert isinstance(two.inputs, dict)
    assert two.inputs["vector"].shape == (2, 3, 3) and two.inputs["sequence"].shape == (2, 5, 2)
    assert two.inputs["sequence"][:, :, 0].tolist() == [[1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert two.mask.tolist() == [[1, 1, 0], [1, 1, 1]]


def test_padding_is_not_scored(tmp_path: Path) -> None:
    # A sequence's loss in a padded batch is its loss alone: the model's outputs on the padding do not count.
    spec = cogdsl.load(lstm_spec(tmp_path, sized=True))
    data = EchoBits(3, steps=5, lengths=[2, 5, 3])
    torch.manual_seed(0)
    model = cogdsl.compile(spec)
    task = DataTask(spec, data=data)
    batch = collate([data[i] for i in range(3)], KINDS)
    together = task.sequence_losses(model(batch.inputs, raw=True), batch)
    for index in range(3):
        alone = collate([data[index]], KINDS)
        assert torch.allclose(task.sequence_losses(model(alone.inputs, raw=True), alone)[0], together[index])
    # and a run on sequences of different lengths trains
    result = run(spec, tmp_path / "run", data=EchoBits(8, steps=5, lengths=[1, 2, 3, 4, 5, 5, 4, 3]), steps=4)
    assert result.step == 4 and result.loss is not None and result.loss > 0


@pytest.mark.parametrize(("activation", "unit"), [("sigmoid", "bit errors"), ("softmax", "wrong classes"),
                                                  ("tanh", "squared error")])
def test_the_loss_follows_the_output(tmp_path: Path, activation: str, unit: str) -> None:
    spec = cogdsl.load(write_spec(tmp_path, LSTM.format(input_size=": 3", output_size=": 2").replace(
        "sigmoid", activation)))
    task = DataTask(spec, data=echo_batches([2]))
    targets = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    batch, logits = Batch(torch.zeros(1, 2, 3), targets, torch.tensor([[1.0, 0.0]])), torch.full((1, 2, 2), 0.5)
    expected = {"sigmoid": torch.nn.functional.binary_cross_entropy_with_logits(logits[0, 0], targets[0, 0],
                                                                                reduction="sum"),
                "softmax": -torch.log_softmax(logits[0, 0], -1)[0],
                "tanh": ((torch.tanh(logits[0, 0]) - targets[0, 0]) ** 2).sum()}[activation]  # step 0 alone scored
    assert task.error_unit == unit
    torch.testing.assert_close(task.sequence_losses(logits, batch), expected.view(1))


def test_softmax_class_ids_train(tmp_path: Path) -> None:
    # The output's size is written, the targets are class ids: the cross-entropy loss, sizes from the spec.
    spec = spec_of(tmp_path, WORDS)
    generator = torch.Generator().manual_seed(0)
    words, answers = torch.randint(1, 12, (8, 4, 5), generator=generator), torch.randint(0, 12, (8, 4),
                                                                                         generator=generator)
    batches = [{"inputs": {"s": words[:4]}, "targets": answers[:4], "lengths": torch.tensor([4, 2, 3, 1])},
               (words[4:], answers[4:])]
    result = run(spec, tmp_path / "run", data=batches, eval_data=batches, steps=2, eval_every=2)
    assert result.eval is not None and result.eval.unit == "wrong classes" and "accuracy" in result.eval.metrics
    assert 0 <= result.eval.bit_errors <= 4


# -- sizes read off the data -----------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["cog", "yaml"])
def test_sizes_read_off_the_first_batch(tmp_path: Path, form: str) -> None:
    unsized = lstm_spec(tmp_path) if form == "cog" else write_spec(tmp_path, LSTM_YAML, ".yaml")
    spec = read_spec_file(unsized)
    assert spec.inputs[0].size.data is None and spec.outputs[0].size.data is None
    taken: list[int] = []

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # batch n holds n + 1 sequences
        for number, batch in enumerate(echo_batches([1, 2, 3, 4, 5, 6])):
            taken.append(number)
            yield batch

    result = run(unsized, tmp_path / "unsized", data=batches(), steps=3, log_every=1, lr=1e-2)
    assert result.model.shapes.sizes["x"] == 3 and result.model(bits(1, 2)).shape == (1, 2, 2)
    # the batch the sizes were read from is the first one trained on: 1 + 2 + 3 sequences, none skipped
    assert [int(r["sequences"]) for r in read_rows(tmp_path / "unsized")] == [1, 3, 6]
    assert taken == [0, 1, 2]

    # the same run with the sizes written ends with the same parameters
    sized = run(lstm_spec(tmp_path, sized=True), tmp_path / "sized", data=echo_batches([1, 2, 3, 4, 5, 6]),
                steps=3, log_every=1, lr=1e-2)
    assert numbers(tmp_path / "sized") == numbers(tmp_path / "unsized")
    assert_same_tensors(final_tensors(tmp_path / "sized"), final_tensors(tmp_path / "unsized"))
    assert sized.step == 3


def test_sizes_of_a_dataset_keep_its_first_batch(tmp_path: Path) -> None:
    data = EchoBits(10)
    run(lstm_spec(tmp_path), tmp_path / "run", data=data, steps=3)
    # 3 batches of 4, 4 and 2 sequences (one epoch), each item read once: the batch the sizes came from is kept
    assert sorted(data.taken) == list(range(10)) and len(data.taken) == 10


# -- resume ------------------------------------------------------------------------------------------------------


def test_resume_on_a_dataset_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    # 10 sequences in batches of 4: epochs of 3 batches (4, 4, 2); stopped in the middle of the third epoch.
    # The first part ends with an evaluation and, TensorBoard on (the default), a picture of the model at work:
    # neither may take a training batch.
    spec = lstm_spec(tmp_path)
    settings: dict[str, Any] = {"eval_data": EchoBits(4, seed=9), "eval_every": 1000, "log_every": 1, "lr": 1e-2}
    run(spec, tmp_path / "whole", data=EchoBits(10), steps=8, **settings)
    run(spec, tmp_path / "split", data=EchoBits(10), steps=7, tensorboard=True, **settings)
    assert list((tmp_path / "split").glob("events.out.tfevents.*"))
    resumed = run(spec, tmp_path / "split", data=EchoBits(10), steps=8, resume=True, **settings)
    assert resumed.step == 8
    assert_same_tensors(final_tensors(tmp_path / "whole"), final_tensors(tmp_path / "split"))
    assert numbers(tmp_path / "whole") == numbers(tmp_path / "split")


def test_a_picture_takes_no_training_batch(tmp_path: Path) -> None:
    # TensorBoard's picture of the model at work draws a batch with task.sample: not one of the training batches.
    spec = cogdsl.load(lstm_spec(tmp_path, sized=True))
    batches = echo_batches([3, 1, 2])
    for eval_data in (None, echo_batches([5])):
        task = DataTask(spec, data=batches, eval_data=eval_data)
        picture = task.sample(1, torch.Generator())
        assert picture.batch_size == 1
        assert torch.equal(picture.inputs[0], (eval_data or batches)[0][0][0])
        assert task.source is not None and torch.equal(task.source.next().inputs, batches[0][0])


def test_resume_on_a_list_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    spec = lstm_spec(tmp_path, sized=True)
    batches = echo_batches([3, 1, 2])
    run(spec, tmp_path / "whole", data=batches, steps=8, log_every=1, lr=1e-2)
    run(spec, tmp_path / "split", data=batches, steps=4, log_every=1, lr=1e-2)
    run(spec, tmp_path / "split", data=batches, steps=8, log_every=1, lr=1e-2, resume=True)
    assert_same_tensors(final_tensors(tmp_path / "whole"), final_tensors(tmp_path / "split"))
    assert [r["sequences"] for r in read_rows(tmp_path / "split")] == ["3", "4", "6", "9", "10", "12", "15", "16"]


# -- bad data ----------------------------------------------------------------------------------------------------


def _no_targets() -> list[Any]:
    return [{"inputs": bits(2)}]


BAD_DATA: list[tuple[str, Callable[[], dict[str, Any]], str]] = [
    ("a tensor", lambda: {"data": [bits(2)]}, r"data batch 0 is a Tensor; give \(inputs, targets\)"),
    ("a 1-tuple", lambda: {"data": [(bits(2),)]}, r"is a tuple; give \(inputs, targets\)"),
    ("no targets", lambda: {"data": _no_targets()}, "data batch 0 has no 'targets'"),
    ("unknown field", lambda: {"data": [{"inputs": bits(2), "targets": bits(2, size=2), "weights": 1}]},
     r"unknown field\(s\) weights"),
    ("rank 2", lambda: {"data": [(bits(2)[..., 0], bits(2, size=2))]}, r"shape \(2, 4\).*\(B, T, I\)"),
    ("rank 4", lambda: {"data": [(bits(2)[..., None], bits(2, size=2))]}, r"shape \(2, 4, 3, 1\).*\(B, T, I\)"),
    ("items of rank 1", lambda: {"data": TensorDataset(bits(4)[..., 0], bits(4, size=2))}, r"\(B, T, I\)"),
    ("input name", lambda: {"data": [({"z": bits(2)}, bits(2, size=2))]},
     r"input 'z', which the spec does not have \(its inputs: x\)"),
    ("empty Dataset", lambda: {"data": TensorDataset(torch.zeros(0, 4, 3), torch.zeros(0, 4, 2))},
     "data= is an empty Dataset"),
    ("42", lambda: {"data": 42}, "data= must be a torch Dataset, a DataLoader or an iterable of batches, not a int"),
    ("eval 42", lambda: {"data": echo_batches([2]), "eval_data": 42}, "eval_data= must be a torch Dataset"),
    ("empty eval Dataset", lambda: {"data": echo_batches([2]), "eval_data": TensorDataset(torch.zeros(0, 4, 3),
                                                                                           torch.zeros(0, 4, 2))},
     "eval_data= is an empty Dataset"),
    ("steps of items", lambda: {"data": TensorDataset(bits(4), bits(4, steps=3, size=2))},
     "item 0 has 4 steps of inputs but 3 of targets"),
    ("widths of items", lambda: {"data": Items([(torch.ones(2, 3), torch.ones(2, 2)),
                                                (torch.ones(2, 4), torch.ones(2, 2))])},
     r"inputs of item 1 have shape \(2, 4\), item 0's \(2, 3\)"),
    ("no data", lambda: {"eval_data": echo_batches([2])}, "train section|data="),
    ("stepz", lambda: {"data": echo_batches([2]), "stepz": 5}, "unknown setting 'stepz' \\(did you mean 'steps'\\?\\)"),
]


@pytest.mark.parametrize(("arguments", "message"), [pytest.param(arguments, message, id=case)
                                                     for case, arguments, message in BAD_DATA])
def test_bad_data_is_a_usage_error(tmp_path: Path, arguments: Callable[[], dict[str, Any]], message: str) -> None:
    spec = lstm_spec(tmp_path)
    kwargs = arguments()
    with pytest.raises(UsageError, match=message):
        run(spec, tmp_path / "run", **{"steps": 2, **kwargs})
    assert not (tmp_path / "run").exists()  # refused before the run folder is made


def test_bad_data_of_a_spec_with_a_task_is_refused_before_the_folder(tmp_path: Path) -> None:
    # With a task the sizes come from the task, not from the data: the data are still checked before anything is
    # written, so the same command, the data fixed, does not find a half-made run folder.
    spec = spec_of(tmp_path, tiny_ntm(hidden=8, train={"eval_size": 8}), ".yaml")
    with pytest.raises(UsageError, match="has no 'targets'"):
        run(spec, tmp_path / "run", data=[{"inputs": bits(2, size=5)}])
    assert not (tmp_path / "run").exists()


def test_a_generator_that_runs_out(tmp_path: Path) -> None:
    def two() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        yield from echo_batches([2, 2])

    with pytest.raises(UsageError, match="read only once"):
        run(lstm_spec(tmp_path), tmp_path / "run", data=two(), steps=5)


def test_an_eval_generator_read_twice(tmp_path: Path) -> None:
    def once() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        yield from echo_batches([2])

    with pytest.raises(UsageError, match="eval_data= gave no batch"):
        run(lstm_spec(tmp_path), tmp_path / "run", data=echo_batches([2]), eval_data=once(), steps=4, eval_every=2)


# -- what is evaluated -------------------------------------------------------------------------------------------


def task_spec(tmp_path: Path) -> cogdsl.Spec:
    """The tiny NTM on copy (4 bits, lengths 1-3): inputs 5, outputs 4."""
    return spec_of(tmp_path, tiny_ntm(hidden=8, train={"optimizer": "{name: adam, lr: 3.0e-3}", "eval_size": 16}),
                   ".yaml", "copy")


def test_eval_data_alone_with_a_task(tmp_path: Path) -> None:
    # The training batches are the task's; eval_data is only evaluated.
    spec = task_spec(tmp_path)
    valid = EchoBits(6, size=5, out=4)
    with_valid = run(spec, tmp_path / "valid", eval_data=valid, steps=4, eval_every=2, log_every=2)
    plain = run(spec, tmp_path / "plain", steps=4, eval_every=2, log_every=2)
    assert with_valid.eval is not None and with_valid.eval.sequences == 6 and with_valid.eval.length is None
    assert plain.eval is not None and plain.eval.sequences == 16 and plain.eval.length == 3
    assert [r["loss"] for r in read_rows(tmp_path / "valid")] == [r["loss"] for r in read_rows(tmp_path / "plain")]
    assert all(r["eval_loss"] for r in read_rows(tmp_path / "valid"))


def test_eval_data_alone_without_a_task(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="train section"):
        run(lstm_spec(tmp_path), tmp_path / "run", eval_data=EchoBits(4))
    assert not (tmp_path / "run").exists()


def test_data_with_a_task_evaluates_on_the_task(tmp_path: Path) -> None:
    spec = task_spec(tmp_path)
    result = run(spec, tmp_path / "run", data=EchoBits(8, size=5, out=4), steps=2, eval_every=2)
    assert result.eval is not None
    # as a run on the task evaluates: its fresh sequences at its longest length, the task's loss
    expected = evaluate(result.model, make_task("copy", bits=4, min_len=1, max_len=3), sequences=16, seed=EVAL_SEED,
                        split="valid")
    assert result.eval.length == 3 and result.eval.sequences == 16
    assert result.eval.loss == pytest.approx(expected.loss) and result.eval.bit_errors == expected.bit_errors


def test_no_evaluation_without_eval_data_or_task(tmp_path: Path) -> None:
    result = run(lstm_spec(tmp_path), tmp_path / "run", data=EchoBits(8), steps=6, log_every=2, eval_every=2,
                 tensorboard=True)
    assert result.eval is None and result.step == 6
    rows = read_rows(tmp_path / "run")
    assert [r["step"] for r in rows] == ["2", "4", "6"] and not any(r["eval_loss"] for r in rows)
    assert result.checkpoint is not None and result.checkpoint.exists()


# -- cogdsl.save, cogdsl.restore and the commands that read checkpoints ---------------------------------------


def test_save_then_eval_trace_predict_and_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_path = write_spec(tmp_path, tiny_ntm(hidden=8, train={"eval_size": 8}), ".yaml", "copy")
    torch.manual_seed(3)
    model = cogdsl.compile(cogdsl.load(spec_path))
    saved = cogdsl.save(model, tmp_path / "model.safetensors")
    assert saved == tmp_path / "model.safetensors" and saved.is_file()

    assert main(["eval", str(spec_path), str(saved), "--sequences", "8"]) == 0
    assert capsys.readouterr().out.startswith("tiny_copy at length 3: ")
    assert main(["trace", str(spec_path), str(saved), "--out", str(tmp_path / "trace")]) == 0
    assert list((tmp_path / "trace").glob("*.png"))
    x = bits(3, 4, 5, seed=4)
    np.savez(tmp_path / "in.npz", inputs=x.numpy())
    assert main(["predict", str(spec_path), str(saved), "--input", str(tmp_path / "in.npz"), "--output",
                 str(tmp_path / "out.npz")]) == 0
    with torch.no_grad():
        expected = model(x)
    predicted = torch.from_numpy(np.load(tmp_path / "out.npz")["outputs"])
    assert torch.allclose(predicted, expected, atol=1e-6)

    restored = cogdsl.restore(saved)
    with torch.no_grad():
        assert torch.equal(restored(x), expected)


def test_save_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"made by cogdsl\.compile; this is a Linear"):
        cogdsl.save(torch.nn.Linear(2, 2), tmp_path / "linear.safetensors")
    model = cogdsl.compile(lstm_spec(tmp_path, sized=True))
    with pytest.raises(UsageError, match=r"ending in \.safetensors"):
        cogdsl.save(model, tmp_path / "model.pt")
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("linear*"))


def test_a_torch_save_file_is_refused_with_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_path = write_spec(tmp_path, tiny_ntm(hidden=8, train={}), ".yaml", "copy")
    model = cogdsl.compile(cogdsl.load(spec_path))
    torch.save(model.state_dict(), tmp_path / "model.safetensors")
    assert main(["eval", str(spec_path), str(tmp_path / "model.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "cogdsl.save" in err and "torch.save" in err and "Traceback" not in err


def test_a_model_trained_on_data_saves_and_restores(tmp_path: Path) -> None:
    result = run(lstm_spec(tmp_path), tmp_path / "run", data=EchoBits(8), steps=2)
    saved = cogdsl.save(result.model, tmp_path / "model.safetensors", step=result.step)
    x = bits(2, 5)
    with torch.no_grad():
        assert torch.equal(cogdsl.restore(saved)(x), result.model(x))


def test_a_run_on_data_restores_from_its_folder(tmp_path: Path) -> None:
    result = run(lstm_spec(tmp_path), tmp_path / "run", data=EchoBits(8), steps=2)
    x = bits(2, 5)
    with torch.no_grad():
        assert torch.equal(cogdsl.restore(tmp_path / "run")(x), result.model(x))


def test_load_leaves_sizes_to_the_data(tmp_path: Path) -> None:
    spec = cogdsl.load(lstm_spec(tmp_path))
    assert run(spec, tmp_path / "run", data=EchoBits(8), steps=1).step == 1


def test_a_model_trained_on_your_data_predicts_without_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """A spec with no task and its sizes left to the data: predict takes the sizes from the checkpoint."""
    spec = lstm_spec(tmp_path)
    result = run(spec, tmp_path / "run", data=EchoBits(16))
    inputs = bits(5, seed=9)
    np.savez(tmp_path / "new.npz", inputs=inputs.numpy())
    assert main(["predict", str(spec), str(tmp_path / "run"), "--input", str(tmp_path / "new.npz"), "--output",
                 str(tmp_path / "out.npz"), "--device", "cpu"]) == 0, capsys.readouterr().err
    with np.load(tmp_path / "out.npz") as saved:
        outputs = saved["outputs"]
    with torch.no_grad():
        expected = torch.sigmoid(result.model.eval()(inputs, raw=True)).numpy()
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)
    assert main(["eval", str(spec), str(tmp_path / "run")]) == 1  # eval scores a task's data: it says so
    assert "has no train section" in capsys.readouterr().err


def test_under_torchrun_each_process_takes_its_own_batches_of_an_iterable() -> None:
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler

    from cogdsl.training.user_data import _Source

    batches = echo_batches([2] * 6)
    for rank in (0, 1):
        source = _Source(batches, KINDS, 2, 0, rank=rank, world=2)
        for number, got in enumerate([source.next().inputs for _ in range(3)]):
            assert torch.equal(got, batches[2 * number + rank][0])  # batches r, r + 2, r + 4
    data = TensorDataset(bits(8), bits(8)[..., :2])
    shared = DataLoader(data, batch_size=2, sampler=DistributedSampler(data, num_replicas=2, rank=1, shuffle=False))
    first = _Source(shared, KINDS, 2, 0, rank=1, world=2).next().inputs
    assert torch.equal(first, next(iter(shared))[0])  # a DistributedSampler shares the data out itself
