"""A sweep over a spec that trains on the user's own data files: the files are found from the spec's folder
whatever the worker's folder, a test split the data does not have is refused before anything trains, and
``--split valid`` scores on the validation split, which the table then says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cogdsl.cli.command import main
from cogdsl.sweep.plan import Plan, Score
from cogdsl.sweep.trial import run_trial, trial_config
from tests.tiny import tiny_ntm

TRAIN = {"batch": 4, "steps": 4, "eval_every": 2, "eval_size": 4, "checkpoint_every": 2}


def _project(folder: Path, test_file: bool) -> Path:
    """A spec in ``folder`` training on data/train.npz (and data/test.npz): 4-bit copies of random bits."""
    rng = np.random.default_rng(0)
    (folder / "data").mkdir(parents=True)
    for split in ("train", "test") if test_file else ("train",):
        inputs = rng.integers(0, 2, (40, 6, 5)).astype(np.float32)
        np.savez(folder / "data" / f"{split}.npz", inputs=inputs, targets=inputs[:, :, :4].copy())
    task = "{name: sequences, train: data/train.npz" + (", test: data/test.npz}" if test_file else "}")
    spec = folder / "mine.yaml"
    spec.write_text(tiny_ntm("mine", train=TRAIN).replace("task: {name: copy, bits: 4, min_len: 1, max_len: 3}",
                                                          f"task: {task}"))
    return spec


def test_a_sweep_without_a_test_file_is_refused_before_training_unless_scored_on_valid(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _project(tmp_path / "project", test_file=False)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "sweep"
    assert main(["sweep", str(spec), "--seeds", "2", "--out", str(out), "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert "score: split: task sequences has no test file to score on: add 'test: PATH'" in captured.err
    assert "--split valid" in captured.err and "Traceback" not in captured.err and not out.exists()
    assert main(["sweep", str(spec), "--seeds", "2", "--out", str(out), "--dry-run", "--split", "valid"]) == 0
    assert "mine-seed1" in capsys.readouterr().out


@pytest.mark.parametrize("split", ["test", "valid"])
def test_a_trial_on_own_data_is_scored_on_the_split_asked_and_the_table_says_which(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, split: str) -> None:
    spec = _project(tmp_path / "project", test_file=split == "test")
    (trial,) = Plan(specs=[str(spec)], seeds=(0,)).trials()
    sweep = tmp_path / "sweep"
    config = trial_config(trial, sweep / trial.id, Score(sequences=8, split=split), max_minutes=None, device="cpu",
                          gpus=0, threads=1, tensorboard=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a worker's folder is not the spec's: the data is found from the spec's
    marker = run_trial(config)
    assert marker["status"] == "done", marker.get("error")
    assert marker["scored"]["split"] == split and 0 <= marker["scored"]["metrics"]["error"]
    (sweep / "sweep.json").write_text(json.dumps({"plan": {"table": {}}, "trials": [
        {"id": trial.id, "model": trial.model, "settings": {}, "seed": 0}]}))
    assert main(["table", str(sweep)]) == 0
    printed = capsys.readouterr().out
    assert ("Scored on the validation split, not test: 1 of 1 trials." in printed) == (split == "valid")


@pytest.mark.parametrize("train, test_file, refused", [
    ("qa1_train.txt", None, True),
    ("qa1_train.txt", "qa1_test.txt", False),
    ("en/", "en/qa1_single_test.txt", False),  # a folder for train: its own test files count
    ("en/", None, True),
    ("gone/", None, False),  # a folder this machine cannot read: left to the trials, which may see it
], ids=["file", "file-and-test", "folder-with-test", "folder-without-test", "unreadable"])
def test_babi_files_need_a_test_file_to_be_scored_on_test(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          train: str, test_file: str | None, refused: bool) -> None:
    story = "1 mary went to the kitchen.\n2 john went to the garden.\n3 where is mary?\tkitchen\t1\n" * 3
    folder = tmp_path / "project"
    folder.mkdir()
    for name in [n for n in (train, test_file) if n and n != "gone/"]:
        path = folder / (name + "qa1_single_train.txt" if name.endswith("/") else name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(story)
    test = f', test="{test_file}"' if test_file and not train.endswith("/") else ""
    spec = folder / "m.cog"
    spec.write_text(f"""\
model m
input  story: sentences
input  question: words
output answer = softmax(reason)
episodic_memory mem(embedding=8, encoding=bag) <- story
memnn reason(hops=1) on mem <- question
train {{
  task babi_files(train="{train}"{test}, valid_fraction=0.34)
  batch 2; steps 1
}}
""")
    code = main(["sweep", str(spec), "--out", str(tmp_path / "sweep"), "--dry-run"])
    err = capsys.readouterr().err
    assert (code, "has no test file to score on" in err) == ((1, True) if refused else (0, False)), err


def test_eval_scores_the_split_asked_and_says_how_to_without_a_test_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _project(tmp_path / "project", test_file=False)
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run), "--no-progress", "--no-tensorboard"]) == 0
    capsys.readouterr()
    assert main(["eval", str(spec), str(run)]) == 1
    err = capsys.readouterr().err
    assert "has no test file" in err and "cogdsl eval --split valid" in err and "Traceback" not in err
    assert main(["eval", str(spec), str(run), "--split", "valid", "--sequences", "8"]) == 0
    printed = capsys.readouterr().out
    assert "(mean over 4 sequences)" in printed and printed.strip().endswith(", on the validation split")  # 10% of 40
