"""cogdsl sweep's plans without Ray: --set paths checked against the spec with located errors, trial ids,
plan files, and cogdsl train --set."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import cogdsl
from cogdsl.cli.command import main
from cogdsl.errors import UsageError
from cogdsl.sweep.plan import Plan, load_plan, parse_seeds, trial_id
from cogdsl.sweep.settings import parse_set, split_values, with_settings

ROOT = Path(__file__).resolve().parents[2]


def _sweep(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["sweep", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_values_are_split_at_the_top_level_commas_and_read_as_yaml() -> None:
    assert split_values("1,{name: a, b: 2},[3, 4]") == ["1", "{name: a, b: 2}", "[3, 4]"]
    setting = parse_set("train.optimizer.lr=1e-3,3E-4,2")
    assert setting.values == (0.001, 0.0003, 2) and [type(v) for v in setting.values] == [float, float, int]
    assert parse_set("train.task={name: babi_joint, train_size: 1000}").values == (
        {"name": "babi_joint", "train_size": 1000},)
    assert parse_set("inputs.x=null,true,adam").values == (None, True, "adam")


@pytest.mark.parametrize("text, says", [
    ("blocks.mem.slots", "expected PATH=VALUE"),
    ("blocks..slots=3", "is not a dotted path"),
    ("train.seed=1,2", "--seeds N"),
    ("blocks.mem.slots=[1,", "is not a value"),
])
def test_a_bad_set_is_one_message(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=r"^--set ") as caught:
        parse_set(text)
    assert says in str(caught.value)


def test_a_path_missing_from_the_spec_names_the_set_the_key_and_the_keys_there(spec: Path, capsys) -> None:
    code, out, err = _sweep(capsys, str(spec), "--set", "blocks.mum.slots=8,16", "--dry-run")
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.strip() == ("cogdsl sweep: error: --set blocks.mum.slots=8,16: blocks has no 'mum' (did you mean "
                           "'mem'?); it has ctrl, mem, r, w")


def test_a_parameter_the_kind_does_not_take_is_the_validators_error(spec: Path, capsys) -> None:
    code, _, err = _sweep(capsys, str(spec), "--set", "blocks.mem.slotz=8", "--dry-run")
    assert code == 1
    assert f"{spec} with blocks.mem.slotz=8 (--set blocks.mem.slotz=8):" in err
    assert "error[E202]: memory 'mem': unknown parameter 'slotz'" in err and "did you mean 'slots'?" in err


def test_a_value_that_breaks_the_spec_is_reported_with_the_setting(spec: Path, capsys) -> None:
    code, _, err = _sweep(capsys, str(spec), "--set", "blocks.mem.slots=8,-1", "--dry-run")
    assert code == 1 and "with blocks.mem.slots=-1" in err and "error[E205]" in err


def test_a_grid_is_every_combination_with_stable_ids(spec: Path, capsys) -> None:
    code, out, err = _sweep(capsys, str(spec), "--set", "train.optimizer.lr=1e-3,3e-4",
                            "--set", "blocks.mem.slots=8,16", "--seeds", "2", "--out", "sw", "--dry-run")
    assert code == 0, err
    folders = [Path(line).name for line in out.splitlines()]
    assert len(folders) == 8 and len(set(folders)) == 8
    assert folders[:3] == ["tiny_copy-lr=0.001-slots=8-seed0", "tiny_copy-lr=0.001-slots=8-seed1",
                           "tiny_copy-lr=0.001-slots=16-seed0"]
    # the spec names no optimizer: train.optimizer is its default, RMSProp, and the rate is set in it
    plan = Plan(specs=[str(spec)], settings=[parse_set("train.optimizer.lr=1e-3")])
    (trial,) = plan.trials()
    assert "optimizer: {name: rmsprop, lr: 0.001}" in trial.spec_yaml and trial.seed == 0


def test_linked_paths_take_their_values_together(spec: Path, tmp_path: Path, capsys) -> None:
    code, out, err = _sweep(capsys, str(spec), "--set", "blocks.mem.slots,blocks.mem.width=[8,3],[16,5]",
                            "--set", "train.batch=2,3", "--seeds", "1", "--out", "sw", "--dry-run")
    assert code == 0, err
    assert [Path(line).name for line in out.splitlines()] == [
        "tiny_copy-slots=8-width=3-batch=2-seed0", "tiny_copy-slots=8-width=3-batch=3-seed0",
        "tiny_copy-slots=16-width=5-batch=2-seed0", "tiny_copy-slots=16-width=5-batch=3-seed0"]
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "p.yaml").write_text("specs: [../tiny.yaml]\nseeds: 1\nset:\n"
                                  "  blocks.mem.slots, blocks.mem.width: [[8, 3], [16, 5]]\n")
    trials = load_plan(plans / "p.yaml").trials()
    assert [t.settings for t in trials] == [{"blocks.mem.slots": 8, "blocks.mem.width": 3},
                                            {"blocks.mem.slots": 16, "blocks.mem.width": 5}]
    assert "slots: 16, width: 5" in trials[1].spec_yaml
    # the command line's --set of one linked path replaces the plan's link, in its place
    code, out, _ = _sweep(capsys, "--plan", str(plans / "p.yaml"), "--set", "blocks.mem.width=4", "--dry-run",
                          "--out", str(tmp_path / "sw"))
    assert code == 0 and [Path(line).name for line in out.splitlines()] == ["tiny_copy-width=4-seed0"]


@pytest.mark.parametrize("text", ["blocks.mem.slots,blocks.mem.width=8,16", "blocks.mem.slots,blocks.mem.width=[8]",
                                  "blocks.mem.slots,blocks.mem.slots=[8,8]"])
def test_linked_paths_need_a_value_for_each(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--set .*(take a list of 2 values|named twice)"):
        parse_set(text)


def test_trial_ids_depend_on_the_trial_alone() -> None:
    settings = {"train.optimizer.lr": 0.001, "blocks.ctrl.lr": 2}
    assert trial_id("m", settings, 3) == "m-train.optimizer.lr=0.001-blocks.ctrl.lr=2-seed3"
    assert trial_id("m", {"train.task": {"name": "babi_joint", "train_size": 1000}}, 0) == (
        "m-task=name=babi_joint+train_size=1000-seed0")
    long = {"train.task.train": "x" * 200}
    assert trial_id("m", long, 0) == trial_id("m", dict(long), 0) != trial_id("m", {"train.task.train": "y" * 200}, 0)
    assert len(trial_id("m", long, 0)) < 40


def test_seeds_are_a_count_or_a_list() -> None:
    assert parse_seeds("3") == (0, 1, 2)
    assert parse_seeds("3,4,5") == (3, 4, 5) and parse_seeds("7,") == (7,)
    for bad in ("0", "-1", "a", "1,1", ","):
        with pytest.raises(UsageError, match="give a count"):
            parse_seeds(bad)


def test_a_plan_file_is_read_relative_to_its_folder_and_the_command_line_changes_it(tmp_path: Path, spec: Path,
                                                                                    capsys) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    plan = plans / "p.yaml"
    plan.write_text("doc: a test\nspecs: [../tiny.yaml]\nseeds: [4, 5]\nset:\n  blocks.mem.slots: [8, 16]\n"
                    "  train.batch: 3\nscore: {lengths: [2, 3], sequences: 10}\ntable: {metrics: [perfect@3]}\n")
    loaded = load_plan(plan)
    assert loaded.seeds == (4, 5) and loaded.score.lengths == (2, 3) and loaded.table.metrics == ("perfect@3",)
    assert [t.id for t in loaded.trials()][:2] == ["tiny_copy-slots=8-batch=3-seed4", "tiny_copy-slots=8-batch=3-seed5"]
    code, out, _ = _sweep(capsys, "--plan", str(plan), "--set", "blocks.mem.slots=32", "--seeds", "1", "--dry-run",
                          "--out", str(tmp_path / "sw"))
    assert code == 0 and [Path(line).name for line in out.splitlines()] == ["tiny_copy-slots=32-batch=3-seed0"]


@pytest.mark.parametrize("text, where, says", [
    ("specs: [../tiny.yaml]\nseed: 3\n", "p.yaml:2:1", "unknown plan key 'seed'; did you mean 'seeds'?"),
    ("specs: [../tiny.yaml]\nscore:\n  lenghts: [3]\n", "p.yaml:3:3", "unknown score key 'lenghts'"),
    ("specs: [../tiny.yaml]\nscore: {weights: worst}\n", "p.yaml:2:9", "weights is one of auto, best, last"),
    ("specs: [../tiny.yaml]\nmax_minutes: -2\n", "p.yaml:2:1", "max_minutes must be a positive number"),
    ("seeds: 2\n", "p.yaml:1:1", "the plan names no specs"),
    ("specs: [../tiny.yaml]\nset:\n  blocks.mem.slotz: 3\n", "p.yaml:3:3", "unknown parameter 'slotz'"),
    ("specs: [../nothere.yaml]\n", "nothere.yaml", "no such spec file"),
    # a table metric the trials will not have, found before they train
    ("specs: [../tiny.yaml]\nscore: {lengths: [3, 5]}\ntable: {metrics: [perfect@4]}\n", "p.yaml: table",
     "metric 'perfect@4': the trials are scored at lengths 3, 5 (score: lengths, or --lengths); e.g. perfect@3"),
    ("specs: [../tiny.yaml]\nscore: {lengths: [3]}\ntable: {metrics: [valid_loss], each: wrong}\n", "p.yaml: table",
     "metric 'wrong': the trials are scored at lengths 3: name one, e.g. wrong@3"),
    ("specs: [../tiny.yaml]\ntable: {metrics: [valid_loss], pick: loss@10}\n", "p.yaml: table",
     "metric 'loss@10': the trials are scored at the task's own length, so without @"),
])
def test_a_bad_plan_file_is_a_located_message(tmp_path: Path, spec: Path, capsys, text: str, where: str,
                                              says: str) -> None:
    (tmp_path / "plans").mkdir()
    plan = tmp_path / "plans" / "p.yaml"
    plan.write_text(text)
    code, _, err = _sweep(capsys, "--plan", str(plan), "--dry-run", "--out", str(tmp_path / "sw"))
    assert code == 1 and "Traceback" not in err
    assert where in err and says in err, err


def test_the_command_line_lengths_are_the_ones_the_table_is_checked_against(tmp_path: Path, spec: Path,
                                                                             capsys) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text("specs: [tiny.yaml]\nscore: {lengths: [3]}\ntable: {metrics: [perfect@3, valid_loss]}\n")
    assert _sweep(capsys, "--plan", str(plan), "--dry-run", "--out", str(tmp_path / "sw"))[0] == 0
    code, _, err = _sweep(capsys, "--plan", str(plan), "--dry-run", "--lengths", "4", "--out", str(tmp_path / "sw"))
    assert code == 1 and "metric 'perfect@3': the trials are scored at lengths 4" in err


def test_without_ray_the_command_says_how_to_install_it(spec: Path, tmp_path: Path, capsys,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as where it is not installed
    code, _, err = _sweep(capsys, str(spec), "--out", str(tmp_path / "sw"))
    assert code == 1 and "Traceback" not in err
    assert "pip install 'cogdsl[sweep]'" in err and err.startswith("cogdsl sweep: error: ")
    assert not (tmp_path / "sw").exists()  # nothing written


def test_an_existing_sweep_folder_needs_resume_or_force(spec: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "mine.txt").write_text("x")
    code, _, err = _sweep(capsys, str(spec), "--out", str(tmp_path / "sw"), "--dry-run")
    assert code == 1 and "pass --resume to continue the sweep" in err
    for option in ("--force", "--resume"):
        code, _, err = _sweep(capsys, str(spec), "--out", str(tmp_path / "sw"), option, "--dry-run")
        assert code == 1 and "is not a sweep folder" in err and (tmp_path / "sw" / "mine.txt").exists()


def test_train_takes_one_set_per_path(spec: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", str(spec), "--set", "blocks.mem.slots=8", "--set", "train.task.max_len=2",
                 "--out", str(out), "--no-progress", "--no-tensorboard", "--device", "cpu"]) == 0
    trained = cogdsl.load(out / "spec.yaml")
    assert trained.train is not None and "slots: 8" in (out / "spec.yaml").read_text()
    assert f"cogdsl eval {out / 'spec.yaml'} " in capsys.readouterr().out  # the spec trained, not the file
    assert main(["train", str(spec), "--set", "blocks.mem.slots=8,16", "--out", str(tmp_path / "r2")]) == 1
    assert "takes one value per path; cogdsl sweep tries several" in capsys.readouterr().err


def test_settings_keep_the_spec_folder_for_its_data_files(spec: Path) -> None:
    changed, text = with_settings(cogdsl.load(spec), {"blocks.mem.slots": 8}, {"blocks.mem.slots": "--set"})
    assert Path(changed.file).parent == spec.parent and changed.file.endswith("(with settings)")
    assert "slots: 8" in text
