"""``cogdsl predict SPEC CHECKPOINT --input FILE --output FILE``: a trained model on new data.

Sequence files end to end (train on a file, eval on the test file, predict the test file, the outputs
checked against the checkpoint's own model), softmax models writing their classes, bAbI text in and one
answer per question out, and every refusal: a clean error, exit 1, and nothing the user had overwritten.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

import cogdsl
from cogdsl.cli.command import main
from cogdsl.tasks.babi import vocabulary
from cogdsl.tasks.babi_format import parse_babi
from cogdsl.training.loop import load_trained

BITS, PAIRS = 3, 2  # copy two 3-bit vectors after a delimiter
T = 2 * PAIRS + 1


def copy_arrays(n: int, seed: int) -> dict[str, np.ndarray]:
    """Copy-like data: PAIRS bit vectors, a delimiter step, then the vectors again as targets (scored there)."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (n, PAIRS, BITS)).astype(np.float32)
    inputs = np.zeros((n, T, BITS + 1), np.float32)
    inputs[:, :PAIRS, :BITS] = bits
    inputs[:, PAIRS, BITS] = 1
    targets = np.zeros((n, T, BITS), np.float32)
    targets[:, PAIRS + 1:] = bits
    mask = np.zeros((n, T), np.float32)
    mask[:, PAIRS + 1:] = 1
    return {"inputs": inputs, "targets": targets, "mask": mask}


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    with path.open("wb") as handle:
        np.savez(handle, **arrays)
    return path


SIGMOID_SPEC = """model copyish

input  x
output y = sigmoid(ctrl)
lstm   ctrl(hidden=8) <- x

train {
  task      sequences(train="train.npz", test="test.npz")
  batch 4; steps 3; eval_every 3; eval_size 4; log_every 3; checkpoint_every 3; seed 0
}
"""

SOFTMAX_SPEC = """model classes

input  x
output y = softmax(ctrl)
lstm   ctrl(hidden=8) <- x

train {
  task      sequences(train="ids.safetensors")
}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny LSTM trained 3 steps with ``cogdsl train`` on a copy-like file: (folder, spec, checkpoint)."""
    folder = tmp_path_factory.mktemp("predict")
    write_npz(folder / "train.npz", **copy_arrays(40, 0))
    write_npz(folder / "test.npz", **copy_arrays(10, 1))
    spec = folder / "copyish.cog"
    spec.write_text(SIGMOID_SPEC)
    assert main(["train", str(spec), "--out", str(folder / "run"), "--no-progress", "--no-tensorboard"]) == 0
    (checkpoint,) = (folder / "run" / "checkpoints").glob("step_*.safetensors")
    return folder, spec, checkpoint


def predict(spec: Path, checkpoint: Path, source: Path, target: Path, *more: str) -> int:
    return main(["predict", str(spec), str(checkpoint), "--input", str(source), "--output", str(target), *more])


def test_eval_scores_the_test_file(trained: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, spec, checkpoint = trained
    assert main(["eval", str(spec), str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "copyish:" in out and "bit errors per sequence (mean over 10 sequences)" in out


def test_predict_writes_the_models_outputs(trained: tuple[Path, Path, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    folder, spec, checkpoint = trained
    assert predict(spec, checkpoint, folder / "test.npz", tmp_path / "out.npz") == 0
    assert "wrote" in capsys.readouterr().err
    with np.load(tmp_path / "out.npz", allow_pickle=False) as archive:
        assert archive.files == ["outputs"]
        outputs = archive["outputs"]
    assert outputs.shape == (10, T, BITS) and outputs.dtype == np.float32
    assert (outputs >= 0).all() and (outputs <= 1).all()
    inputs = torch.from_numpy(copy_arrays(10, 1)["inputs"])
    restored = cogdsl.restore(checkpoint).eval()
    with torch.no_grad():
        expected = torch.sigmoid(restored(inputs, raw=True))
    np.testing.assert_allclose(outputs, expected.numpy(), rtol=1e-5, atol=1e-6)
    _, _, model, _ = load_trained(str(spec), str(checkpoint))
    with torch.no_grad():
        np.testing.assert_allclose(outputs, model.eval()(inputs).numpy(), rtol=1e-5, atol=1e-6)

    assert predict(spec, checkpoint, folder / "test.npz", tmp_path / "out.safetensors", "--batch", "3") == 0
    np.testing.assert_allclose(load_file(str(tmp_path / "out.safetensors"))["outputs"], outputs, rtol=1e-5,
                               atol=1e-6)


def test_predict_reads_inputs_alone_and_lengths(trained: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, spec, checkpoint = trained
    inputs = copy_arrays(4, 2)["inputs"]
    source = tmp_path / "new.safetensors"
    save_file({"inputs": inputs, "lengths": np.array([T, 3, 4, T], dtype=np.int64)}, str(source))
    assert predict(spec, checkpoint, source, tmp_path / "out.npz") == 0
    outputs = np.load(tmp_path / "out.npz")["outputs"]
    model = cogdsl.restore(checkpoint).eval()
    with torch.no_grad():
        expected = torch.sigmoid(model(torch.from_numpy(inputs), raw=True)).numpy()
    assert outputs.shape == (4, T, BITS)
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)


def test_a_softmax_model_also_writes_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    inputs = rng.normal(size=(9, 4, 2)).astype(np.float32)
    save_file({"inputs": inputs, "targets": rng.integers(0, 5, (9, 4)).astype(np.int64)},
              str(tmp_path / "ids.safetensors"))
    spec = tmp_path / "classes.cog"
    spec.write_text(SOFTMAX_SPEC)
    torch.manual_seed(0)
    model = cogdsl.compile(spec)
    assert model.shapes.sizes["y"] == 5
    checkpoint = cogdsl.save(model, tmp_path / "model.safetensors")
    assert predict(spec, checkpoint, tmp_path / "ids.safetensors", tmp_path / "out.npz") == 0
    with np.load(tmp_path / "out.npz") as archive:
        outputs, classes = archive["outputs"], archive["classes"]
    assert outputs.shape == (9, 4, 5) and classes.shape == (9, 4)
    np.testing.assert_allclose(outputs.sum(-1), 1, rtol=1e-5)
    assert (classes == outputs.argmax(-1)).all()
    with torch.no_grad():
        expected = torch.softmax(model.eval()(torch.from_numpy(inputs), raw=True), -1).numpy()
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)


def test_predict_does_not_need_the_training_data(trained: tuple[Path, Path, Path], tmp_path: Path) -> None:
    folder, _, checkpoint = trained
    for name in ("copyish.cog", "test.npz"):  # the spec and its test file; train.npz stays behind
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    (tmp_path / "model.safetensors").write_bytes(checkpoint.read_bytes())
    assert predict(tmp_path / "copyish.cog", tmp_path / "model.safetensors", tmp_path / "test.npz",
                   tmp_path / "out.npz") == 0


# -- refusals ---------------------------------------------------------------------------------------------------


def _refused(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    assert "cogdsl predict: error:" in out.err, text
    for word in words:
        assert word in out.err, (word, out.err)
    return out.err


def test_an_existing_output_needs_force(trained: tuple[Path, Path, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder, spec, checkpoint = trained
    target = tmp_path / "out.npz"
    target.write_bytes(b"the user's own file")
    assert predict(spec, checkpoint, folder / "test.npz", target) == 1
    _refused(capsys, str(target), "exists", "--force")
    assert target.read_bytes() == b"the user's own file"
    assert predict(spec, checkpoint, folder / "test.npz", target, "--force") == 0
    assert np.load(target)["outputs"].shape == (10, T, BITS)


def test_a_wrong_input_size_is_refused(trained: tuple[Path, Path, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    _, spec, checkpoint = trained
    source = write_npz(tmp_path / "wide.npz", inputs=np.zeros((2, T, BITS + 3), np.float32))
    target = tmp_path / "out.npz"
    assert predict(spec, checkpoint, source, target) == 1
    _refused(capsys, str(source), "'inputs'", f"has {BITS + 3} channels", f"takes {BITS + 1}")
    assert not target.exists()


@pytest.mark.parametrize(("source_name", "target_name", "words"), [
    ("in.csv", "out.npz", ["--input", "in.csv", ".npz", ".txt"]),
    ("in.npz", "out.csv", ["--output", "out.csv", ".npz or .safetensors"]),
    ("in.txt", "out.npz", ["--output", "out.npz", ".txt"]),
    ("missing.npz", "out.npz", ["--input", "missing.npz", "no such file"]),
])
def test_bad_file_names_are_refused(trained: tuple[Path, Path, Path], tmp_path: Path, source_name: str,
                                    target_name: str, words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    folder, spec, checkpoint = trained
    source = tmp_path / source_name
    if source_name != "missing.npz":
        source.write_bytes((folder / "test.npz").read_bytes())
    assert predict(spec, checkpoint, source, tmp_path / target_name) == 1
    _refused(capsys, *words)
    assert not (tmp_path / target_name).exists()


def test_the_output_may_not_be_the_input(trained: tuple[Path, Path, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    folder, spec, checkpoint = trained
    source = tmp_path / "data.npz"
    source.write_bytes((folder / "test.npz").read_bytes())
    before = source.read_bytes()
    assert predict(spec, checkpoint, source, source, "--force") == 1
    _refused(capsys, "--output is the --input file")
    assert predict(spec, checkpoint, source, tmp_path / "." / "data.npz", "--force") == 1
    _refused(capsys, "--input")
    assert source.read_bytes() == before


def test_a_bad_input_file_is_refused(trained: tuple[Path, Path, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    _, spec, checkpoint = trained
    source = tmp_path / "broken.npz"
    source.write_bytes(b"not an npz at all" * 10)
    target = tmp_path / "out.npz"
    target.write_bytes(b"kept")
    assert predict(spec, checkpoint, source, target, "--force") == 1
    _refused(capsys, str(source), "cannot read it")
    assert target.read_bytes() == b"kept"


def test_a_sequence_model_does_not_answer_babi(trained: tuple[Path, Path, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _, spec, checkpoint = trained
    source = tmp_path / "q.txt"
    source.write_text(STORY_WITH_ANSWERS)
    assert predict(spec, checkpoint, source, tmp_path / "a.txt") == 1
    _refused(capsys, "sequences", "bAbI")
    assert not (tmp_path / "a.txt").exists()


# -- bAbI text ----------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
BABI_SPEC = ROOT / "specs" / "memn2n_babi.cog"

STORY_WITH_ANSWERS = """\
1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Daniel went back to the hallway.
5 Where is Daniel? \thallway\t4
1 Sandra travelled to the office.
2 Where is Sandra? \toffice\t1
"""
STORY_WITHOUT_ANSWERS = """\
1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary?
4 Daniel went back to the hallway.
5 Where is Daniel?
1 Sandra travelled to the office.
2 Where is Sandra?
"""


@pytest.fixture(scope="module")
def babi_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained memn2n_babi saved with cogdsl.save: enough for the plumbing."""
    torch.manual_seed(0)
    return cogdsl.save(cogdsl.compile(BABI_SPEC), tmp_path_factory.mktemp("babi") / "memn2n.safetensors")


def test_babi_questions_with_and_without_answers(babi_model: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with_answers, without = tmp_path / "with.txt", tmp_path / "without.txt"
    with_answers.write_text(STORY_WITH_ANSWERS)
    without.write_text(STORY_WITHOUT_ANSWERS)
    assert predict(BABI_SPEC, babi_model, with_answers, tmp_path / "a.txt") == 0
    err = capsys.readouterr().err
    assert "% error on the 3 questions" in err and "3 answers" in err
    assert predict(BABI_SPEC, babi_model, without, tmp_path / "b.txt", "--batch", "2") == 0
    err = capsys.readouterr().err
    assert "3 answers" in err and "error on" not in err
    answers = (tmp_path / "a.txt").read_text().splitlines()
    assert len(answers) == 3 and all(word in vocabulary().words for word in answers)
    assert (tmp_path / "b.txt").read_text().splitlines() == answers  # the answers given change nothing


def test_babi_answers_are_the_models(babi_model: Path, tmp_path: Path) -> None:
    source = tmp_path / "q.txt"
    source.write_text("1 Where is Mary?\n")  # a question alone, with no story
    assert predict(BABI_SPEC, babi_model, source, tmp_path / "a.txt") == 0
    _, task, model, _ = load_trained(str(BABI_SPEC), str(babi_model))
    (qa,) = parse_babi(source.read_text(), answers=False)
    batch = task.questions_batch([dataclasses.replace(qa, answer="bathroom")])
    with torch.no_grad():
        logits = model.eval()({name: batch.inputs[kind] for name, kind in model.input_kinds.items()}, raw=True)
    assert (tmp_path / "a.txt").read_text() == task.answer_word(int(logits[0, 0].argmax())) + "\n"


def test_a_word_outside_the_vocabulary_is_a_clean_error(babi_model: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "odd.txt"
    source.write_text("1 Mary moved to the spaceship.\n2 Where is Mary?\n")
    target = tmp_path / "a.txt"
    target.write_text("earlier answers\n")
    assert predict(BABI_SPEC, babi_model, source, target, "--force") == 1
    _refused(capsys, str(source), "spaceship")
    assert target.read_text() == "earlier answers\n"


def test_a_malformed_babi_file_is_a_clean_error(babi_model: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "bad.txt"
    source.write_text("Mary moved to the bathroom.\n")
    assert predict(BABI_SPEC, babi_model, source, tmp_path / "a.txt") == 1
    _refused(capsys, f"{source}:1:")
    assert not (tmp_path / "a.txt").exists()


def test_a_babi_model_does_not_read_sequence_files(babi_model: Path, trained: tuple[Path, Path, Path],
                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = trained[0]
    assert predict(BABI_SPEC, babi_model, folder / "test.npz", tmp_path / "out.npz") == 1
    _refused(capsys, "one vector input")
    assert not (tmp_path / "out.npz").exists()


def test_predict_refuses_a_folder_for_its_output_even_with_force(trained: tuple[Path, Path, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    folder, spec, checkpoint = trained
    (tmp_path / "out.npz").mkdir()
    assert predict(spec, checkpoint, folder / "test.npz", tmp_path / "out.npz", "--force") == 1
    err = capsys.readouterr().err
    assert "is a folder; give a file name" in err and "Traceback" not in err
