"""cogdsl sweep and cogdsl table on bad input: a malformed plan, absurd option values, a hand-edited or damaged
sweep folder. Each is one clear message naming the file (and its line or key) and exit status 1, never an
internal error or a traceback, and nothing the user had is deleted or overwritten. No Ray is started here:
where the driver's decisions matter, Ray is faked (a cluster without a GPU) or the Tune run is."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from cogdsl.cli.command import main
from cogdsl.sweep import run as sweep_run

ROOT = Path(__file__).resolve().parents[2]
HEADER = "step,sequences,seconds,loss,bit_errors,seq_per_sec,eval_loss,eval_bit_errors,skipped_steps\n"
TRIAL = "tiny_copy-seed0"  # the tiny spec's one trial, with its own seed


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _clean(err: str) -> None:
    assert "internal error" not in err and "Traceback" not in err and "out of memory" not in err, err


def _plan(folder: Path, text: str | bytes) -> Path:
    """A plan file beside the tiny spec (its specs: [tiny.yaml])."""
    path = folder / "p.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# -- cogdsl sweep: options and plans ------------------------------------------------------------------------------


def _limit_memory() -> None:
    """4 GiB of address space: a command that builds a billion-item tuple fails at once, not by the OOM killer."""
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


@pytest.mark.parametrize("how", ["option", "plan"])
def test_a_billion_seeds_is_refused_not_run_out_of_memory(spec: Path, tmp_path: Path, how: str) -> None:
    """--seeds 1000000000 is a slip (a seed meant as a count): refused with the value, before the tuple of a billion
    seeds is built (without a memory limit, 36 GB: the OOM killer). In a subprocess with 4 GiB of address space."""
    argv = [str(spec), "--seeds", "1000000000"] if how == "option" else [
        "--plan", str(_plan(tmp_path, "specs: [tiny.yaml]\nseeds: 1000000000\n"))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "cogdsl", "sweep", *argv, "--dry-run", "--out", str(tmp_path / "sw")],
                          capture_output=True, text=True, timeout=300, preexec_fn=_limit_memory, cwd=ROOT, env=env,
                          check=False)
    assert done.returncode == 1 and done.stdout == ""
    _clean(done.stderr)
    assert "1000000000" in done.stderr
    if how == "plan":
        assert "p.yaml:2:" in done.stderr


@pytest.mark.parametrize("how", ["option", "plan"])
def test_a_seed_torch_cannot_take_is_refused_before_anything_trains(spec: Path, tmp_path: Path, capsys, how: str
                                                                    ) -> None:
    """2**64 passes the checks today, and every trial then fails at torch.manual_seed: 'ValueError: Overflow when
    unpacking long long' (cogdsl train --seed 18446744073709551616 says so as an internal error)."""
    argv = [str(spec), "--seeds", "18446744073709551616,"] if how == "option" else [
        "--plan", str(_plan(tmp_path, "specs: [tiny.yaml]\nseeds: [18446744073709551616]\n"))]
    code, out, err = _cli(capsys, "sweep", *argv, "--dry-run", "--out", str(tmp_path / "sw"))
    assert code == 1 and out == "", out
    _clean(err)
    assert "18446744073709551616" in err
    assert ("--seeds" in err) if how == "option" else ("p.yaml:2:" in err)


def test_a_test_length_below_the_tasks_shortest_is_refused_before_anything_trains(tmp_path: Path, capsys) -> None:
    """The adding problem's shortest sequence is 2: scoring at length 1 fails, but only after each trial has trained
    (score.py raises it; check_metrics swallows it, and does not look at all when the table names no metric)."""
    adding = str(ROOT / "specs" / "lstm_adding.cog")
    code, out, err = _cli(capsys, "sweep", adding, "--lengths", "1", "--dry-run", "--out", str(tmp_path / "sw"))
    assert code == 1 and out == ""
    assert "below task adding's shortest, 2" in err
    plan = tmp_path / "p.yaml"
    plan.write_text(f"specs: [{adding}]\nscore: {{lengths: [1], sequences: 10}}\ntable: {{metrics: [perfect@1]}}\n")
    code, out, err = _cli(capsys, "sweep", "--plan", str(plan), "--dry-run", "--out", str(tmp_path / "sw"))
    assert code == 1 and out == ""
    assert "below task adding's shortest, 2" in err


@pytest.mark.parametrize("argv, score, says", [
    (["--lengths", "100001"], "{lengths: [100001]}", "score: lengths: 100,001 is over the longest a task draws, "
                                                      "100,000"),
    (["--sequences", "1000001"], "{sequences: 1000001}", "sequences must be from 1 to 1,000,000, got 1,000,001"),
], ids=["length", "sequences"])
def test_a_test_too_long_or_too_many_is_refused_before_anything_trains(tmp_path: Path, capsys, argv: list[str],
                                                                       score: str, says: str) -> None:
    """An extra digit in a test length or a count of test sequences would show only after every trial had trained,
    as an hours-long scoring or an allocation failure: it is refused first, from the options and from a plan."""
    adding = str(ROOT / "specs" / "lstm_adding.cog")
    code, out, err = _cli(capsys, "sweep", adding, *argv, "--dry-run", "--out", str(tmp_path / "sw"))
    assert code == 1 and out == "" and says in err and "Traceback" not in err
    plan = tmp_path / "p.yaml"
    plan.write_text(f"specs: [{adding}]\nscore: {score}\n")
    code, out, err = _cli(capsys, "sweep", "--plan", str(plan), "--dry-run", "--out", str(tmp_path / "sw"))
    assert code == 1 and out == "" and says in err and "Traceback" not in err
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("text, line", [
    ("specs: [tiny.yaml]\nseeds: 3\nseeds: 5\n", 3),  # today: 5 trials, the first seeds: silently dropped
    ("specs: [tiny.yaml]\nset:\n  blocks.mem.slots: [8]\n  blocks.mem.slots: [16]\n", 4),  # today: slots=16 alone
], ids=["seeds", "set-path"])
def test_a_plan_key_given_twice_is_refused_at_its_line(spec: Path, tmp_path: Path, capsys, text: str, line: int
                                                       ) -> None:
    """A spec's YAML refuses a key given twice (E003); a plan silently took the last."""
    plan = _plan(tmp_path, text)
    code, out, err = _cli(capsys, "sweep", "--plan", str(plan), "--dry-run", "--out", str(tmp_path / "sw"))
    assert code == 1 and out == "", out
    _clean(err)
    assert f"{plan}:{line}:" in err


@pytest.mark.parametrize("text", [
    # the link's values of blocks.mem.slots (8, 16) are silently replaced by 32: two trials, both slots=32
    "specs: [tiny.yaml]\nset:\n  blocks.mem.slots, blocks.mem.width: [[8, 8], [16, 16]]\n  blocks.mem.slots: [32]\n",
    # the same path, once with a space: 'two trials have the id ...', with no line
    "specs: [tiny.yaml]\nset:\n  blocks.mem.slots: [8, 16]\n  'blocks.mem.slots ': [32, 64]\n",
], ids=["in-a-link", "with-a-space"])
def test_a_plan_that_sets_a_path_twice_is_refused_at_its_line(spec: Path, tmp_path: Path, capsys, text: str) -> None:
    """The command line refuses a --set of one path twice; a plan must too, at the second one's line."""
    plan = _plan(tmp_path, text)
    code, out, err = _cli(capsys, "sweep", "--plan", str(plan), "--dry-run", "--out", str(tmp_path / "sw"))
    assert code == 1 and out == "", out
    _clean(err)
    assert f"{plan}:4:3:" in err and "blocks.mem.slots" in err


@pytest.mark.parametrize("text, key", [
    ("specs: [tiny.yaml]\nscore: 0\n", "score"),  # score: 5 is refused; 0 (falsy) is taken as no score: at all
    ("specs: [tiny.yaml]\ntable: false\n", "table"),
    ("specs: [tiny.yaml]\nset: 0\n", "set"),
], ids=["score-0", "table-false", "set-0"])
def test_a_plan_section_of_the_wrong_type_is_refused_even_when_falsy(spec: Path, tmp_path: Path, capsys, text: str,
                                                                     key: str) -> None:
    plan = _plan(tmp_path, text)
    code, out, err = _cli(capsys, "sweep", "--plan", str(plan), "--dry-run", "--out", str(tmp_path / "sw"))
    assert code == 1 and out == "", out
    assert f"{plan}:2:1: {key} is a table" in err


def test_a_spec_path_with_a_nul_byte_is_a_located_message(spec: Path, tmp_path: Path, capsys) -> None:
    """Today: 'internal error: ValueError: embedded null byte'."""
    plan = _plan(tmp_path, 'specs: ["tiny\\0.yaml"]\n')
    code, _, err = _cli(capsys, "sweep", "--plan", str(plan), "--dry-run", "--out", str(tmp_path / "sw"))
    assert code == 1
    _clean(err)
    assert f"{plan}:1:" in err


def test_a_folder_given_as_a_spec_is_said_to_be_a_folder(spec: Path, tmp_path: Path, capsys) -> None:
    """Today: '.: no such spec file' for a folder that is there."""
    code, _, err = _cli(capsys, "sweep", str(tmp_path), "--dry-run", "--out", str(tmp_path / "sw"))
    assert code == 1
    assert "no such spec file" not in err and "folder" in err and str(tmp_path) in err


# -- cogdsl sweep: the sweep folder ---------------------------------------------------------------------------


def _old_sweep(out: Path, status: str = "done") -> str:
    """A sweep folder of the tiny spec's one trial, as an earlier run left it; its sweep.json's text."""
    (out / TRIAL).mkdir(parents=True)
    (out / TRIAL / "trial.json").write_text(json.dumps({"id": TRIAL, "status": status, "error": "E604: gone"}))
    (out / TRIAL / "log.csv").write_text(HEADER + "2,4,0.1,1.0,1.0,100,0.5,2.0,0\n")
    text = json.dumps({"plan": {}, "trials": [{"id": TRIAL, "model": "tiny_copy", "settings": {}, "seed": 0}]})
    (out / "sweep.json").write_text(text)
    return text


@pytest.fixture
def cluster_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ray instance of 2 CPUs and no GPU, as this process's own (ray.init not called)."""
    ray = pytest.importorskip("ray")
    for name, value in (("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1"), ("RAY_AIR_NEW_OUTPUT", "0"),
                        ("RAY_CHDIR_TO_TRIAL_DIR", "0"), ("TUNE_MAX_PENDING_TRIALS_PG", "16")):
        monkeypatch.setenv(name, value)  # what import_tune sets, put back afterwards
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})


@pytest.fixture
def no_tune(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Tune faked: the ids of the trials given to it (it runs none of them)."""
    given: list[str] = []
    monkeypatch.setattr(sweep_run, "import_tune", lambda: None)
    monkeypatch.setattr(sweep_run, "_tune",
                        lambda tune, plan, todo, out, begin, **_: begin() or given.extend(t.id for t in todo) or False)
    return given


@pytest.mark.parametrize("option, says", [
    (["--gpus-per-trial", "0.3"], "--gpus-per-trial 0.3: the Ray cluster has no GPU"),
    (["--cpus-per-trial", "64"], "--cpus-per-trial 64: the Ray cluster has 2 CPUs"),
], ids=["gpus", "cpus"])
def test_force_keeps_the_old_sweep_when_the_cluster_cannot_run_the_new_one(spec: Path, tmp_path: Path, capsys,
                                                                           cluster_without_gpu: None,
                                                                           option: list[str], says: str) -> None:
    """Today the old sweep is deleted (shutil.rmtree) before the cluster's resources are checked: the command is
    refused, and the finished trials are gone."""
    out = tmp_path / "sw"
    record = _old_sweep(out)
    code, _, err = _cli(capsys, "sweep", str(spec), "--out", str(out), "--force", *option)
    assert code == 1 and says in err
    assert (out / TRIAL / "trial.json").is_file() and (out / "sweep.json").read_text() == record


def test_a_refused_sweep_leaves_no_folder_that_refuses_the_next_command(spec: Path, tmp_path: Path, capsys,
                                                                        cluster_without_gpu: None) -> None:
    """Today sweep.json is written before the resources are checked: the same command without --gpus-per-trial is
    then refused with 'exists; pass --resume ...' for a sweep that never ran."""
    out = tmp_path / "sw"
    code, _, err = _cli(capsys, "sweep", str(spec), "--out", str(out), "--gpus-per-trial", "0.3")
    assert code == 1 and "the Ray cluster has no GPU" in err
    assert not (out / "sweep.json").exists()


def test_resume_keeps_sweep_json_when_the_cluster_cannot_run_it(spec: Path, tmp_path: Path, capsys,
                                                                cluster_without_gpu: None) -> None:
    """Today --resume rewrites sweep.json with the new command's plan (here a setting no trial ran) and only then
    finds that the cluster has no GPU."""
    out = tmp_path / "sw"
    record = _old_sweep(out, status="failed")
    code, _, err = _cli(capsys, "sweep", str(spec), "--out", str(out), "--resume", "--gpus-per-trial", "0.3",
                        "--set", "blocks.mem.slots=8")
    assert code == 1 and "the Ray cluster has no GPU" in err
    assert (out / "sweep.json").read_text() == record


def test_force_does_not_delete_the_plan_and_spec_it_reads(spec: Path, tmp_path: Path, capsys, no_tune: list[str]
                                                          ) -> None:
    """A plan kept in its sweep's folder (with its spec): --force deleted both, with the whole folder."""
    out = tmp_path / "sw"
    _old_sweep(out)
    (out / "tiny.yaml").write_text(spec.read_text())
    plan = _plan(out, "specs: [tiny.yaml]\n")
    _, _, err = _cli(capsys, "sweep", "--plan", str(plan), "--out", str(out), "--force")
    _clean(err)
    assert plan.is_file() and (out / "tiny.yaml").read_text() == spec.read_text()


def test_force_on_a_link_to_a_sweep_folder_is_no_internal_error(spec: Path, tmp_path: Path, capsys,
                                                                no_tune: list[str]) -> None:
    """Today: 'internal error: OSError: Cannot call rmtree on a symbolic link'."""
    real = tmp_path / "real"
    _old_sweep(real)
    link = tmp_path / "link"
    link.symlink_to(real)
    code, _, err = _cli(capsys, "sweep", str(spec), "--out", str(link), "--force")
    _clean(err)
    assert "rmtree" not in err
    if code == 1 and not no_tune:  # refused: the message names the link
        assert str(link) in err


def test_a_file_where_a_trials_folder_goes_is_refused_before_ray(spec: Path, tmp_path: Path, capsys,
                                                                 no_tune: list[str]) -> None:
    """Today the trial is given to Ray, cannot make its folder, and the driver ends with 'internal error:
    FileExistsError: ... SWEEP/tiny_copy-seed0' (found by a real run), without its summary."""
    out = tmp_path / "sw"
    _old_sweep(out)
    (out / TRIAL / "trial.json").unlink()
    (out / TRIAL / "log.csv").unlink()
    (out / TRIAL).rmdir()
    (out / TRIAL).write_text("a file where the trial's folder goes\n")
    code, _, err = _cli(capsys, "sweep", str(spec), "--out", str(out), "--resume")
    assert code == 1 and no_tune == []
    assert str(out / TRIAL) in err


def test_a_summary_json_that_is_a_folder_is_a_message(spec: Path, tmp_path: Path, capsys, no_tune: list[str]) -> None:
    """Every trial finished, so nothing runs; today writing the summary ends in 'internal error:
    IsADirectoryError'."""
    out = tmp_path / "sw"
    _old_sweep(out)
    (out / "summary.json").mkdir()
    code, _, err = _cli(capsys, "sweep", str(spec), "--out", str(out), "--resume")
    assert code == 1
    _clean(err)
    assert str(out / "summary.json") in err


# -- cogdsl table: damaged or hand-edited sweep folders -------------------------------------------------------


def _table_sweep(sweep: Path, table: dict | None = None) -> list[dict]:
    """Two finished trials of model m, seeds 0 and 1; their entries of sweep.json, which is written."""
    trials = []
    for seed in (0, 1):
        trial = {"id": f"m-seed{seed}", "model": "m", "settings": {"a.b": seed}, "seed": seed}
        folder = sweep / trial["id"]
        folder.mkdir(parents=True)
        (folder / "log.csv").write_text(HEADER + "10,160,1.0,1.0,1.0,100,0.5,2.0,0\n")
        (folder / "trial.json").write_text(json.dumps({
            "id": trial["id"], "status": "done", "settings": trial["settings"], "seed": seed, "device": "cpu",
            "gpus": 0, "cpu_seconds": 10.0, "wall_seconds": 20.0,
            "scored": {"weights": "last", "step": 10, "metrics": {"perfect": 0.5}}}))
        trials.append(trial)
    (sweep / "sweep.json").write_text(json.dumps({"plan": {"table": table or {"metrics": ["perfect"]}},
                                                  "trials": trials}))
    return trials


def _named_not_crashed(code: int, out: str, err: str, name: str) -> None:
    """Either refused naming ``name``, or tabled with ``name`` shown (as a cut-short trial.json is)."""
    _clean(err)
    if code:
        assert code == 1 and name in err, err
    else:
        assert name in out, out


@pytest.mark.parametrize("content", [
    b"step,sequences\n10,1,\xff,1,1,1,1,1,0\n",  # not UTF-8: UnicodeDecodeError
    (HEADER + "10,1," + "9" * 200_000 + ",1,1,1,1,1,0\n").encode(),  # csv.Error: field larger than field limit
    (HEADER + "1" * 5000 + ",1,1,1,1,1,1,1,0\n").encode(),  # ValueError: Exceeds the limit (4300 digits)
], ids=["not-utf8", "huge-field", "huge-step"])
def test_a_damaged_log_csv_is_named_not_an_internal_error(tmp_path: Path, capsys, content: bytes) -> None:
    sweep = tmp_path / "sweep"
    _table_sweep(sweep)
    (sweep / "m-seed0" / "log.csv").write_bytes(content)
    code, out, err = _cli(capsys, "table", str(sweep))
    _named_not_crashed(code, out, err, "log.csv")


@pytest.mark.parametrize("marker", [
    {"status": "failed", "error": 5},  # AttributeError: 'int' object has no attribute 'strip'
    {"status": "failed", "error": ["E604"]},
    {"status": "done", "gpus": "abc", "wall_seconds": 3},  # ValueError: could not convert string to float
    {"status": "done", "scored": {"metrics": [0.5]}},  # AttributeError: 'list' object has no attribute 'items'
    {"status": "done", "scored": {"step": [10], "metrics": {"perfect": 1.0}}},  # TypeError: unhashable type
], ids=["error-int", "error-list", "gpus-text", "metrics-list", "step-list"])
def test_a_hand_edited_trial_json_is_named_not_an_internal_error(tmp_path: Path, capsys, marker: dict) -> None:
    sweep = tmp_path / "sweep"
    _table_sweep(sweep)
    (sweep / "m-seed0" / "trial.json").write_text(json.dumps(marker))
    code, out, err = _cli(capsys, "table", str(sweep))
    _named_not_crashed(code, out, err, "trial.json")


@pytest.mark.parametrize("edit", [
    lambda d: {**d, "plan": [1]},  # AttributeError: 'list' object has no attribute 'get'
    lambda d: {**d, "plan": {"table": ["perfect"]}},  # AttributeError: ... 'items'
    lambda d: {**d, "plan": {"table": {"metrics": 5}}},  # TypeError: 'int' object is not iterable
    lambda d: {**d, "plan": {"table": {"metrics": ["perfect"], "each": 5}}},
    lambda d: {**d, "plan": {"table": {"metrics": ["perfect"], "target": "x"}}},  # TypeError: '<' not supported
    lambda d: {**d, "trials": [{**d["trials"][0], "id": 5}, d["trials"][1]]},  # TypeError: PosixPath / int
    lambda d: {**d, "trials": [{**d["trials"][0], "seed": "abc"}, d["trials"][1]]},  # ValueError: int('abc')
    lambda d: {**d, "trials": [{**d["trials"][0], "seed": None}, d["trials"][1]]},
    lambda d: {**d, "trials": [{**d["trials"][0], "settings": [1]}, d["trials"][1]]},  # AttributeError: .get
    lambda d: {**d, "trials": [{**d["trials"][0], "settings": None}, d["trials"][1]]},
    lambda d: {**d, "trials": [{**d["trials"][0], "model": ["m"]}, d["trials"][1]]},  # TypeError: unhashable
], ids=["plan-list", "table-list", "metrics-int", "each-int", "target-text", "id-int", "seed-text", "seed-null",
        "settings-list", "settings-null", "model-list"])
def test_a_hand_edited_sweep_json_is_named_not_an_internal_error(tmp_path: Path, capsys, edit) -> None:
    sweep = tmp_path / "sweep"
    _table_sweep(sweep)
    data = json.loads((sweep / "sweep.json").read_text())
    (sweep / "sweep.json").write_text(json.dumps(edit(data)))
    code, _, err = _cli(capsys, "table", str(sweep))
    assert code == 1
    _clean(err)
    assert str(sweep / "sweep.json") in err


def test_table_metrics_written_as_one_name_are_not_split_into_letters(tmp_path: Path, capsys) -> None:
    """Today sweep.json's metrics: "perfect" gives 'no finished trial has the metric 'p''."""
    sweep = tmp_path / "sweep"
    _table_sweep(sweep, {"metrics": "perfect"})
    code, out, err = _cli(capsys, "table", str(sweep))
    assert "'p'" not in err
    if code:
        assert code == 1 and str(sweep / "sweep.json") in err
    else:
        assert out.splitlines()[0].startswith("| spec | b | perfect |")


def test_a_trial_listed_twice_in_sweep_json_is_refused(tmp_path: Path, capsys) -> None:
    """Today it is tabled twice: '2 of 2 trials finished', its seed's value shown twice, exit 0."""
    sweep = tmp_path / "sweep"
    trials = _table_sweep(sweep)
    (sweep / "sweep.json").write_text(json.dumps({"plan": {}, "trials": [trials[0], trials[0]]}))
    code, _, err = _cli(capsys, "table", str(sweep))
    assert code == 1 and str(sweep / "sweep.json") in err and "m-seed0" in err


@pytest.mark.parametrize("trial_id", ["../elsewhere", "/tmp"])
def test_a_trial_id_that_leaves_the_sweep_folder_is_refused(tmp_path: Path, capsys, trial_id: str) -> None:
    """A trial's id is a folder name in the sweep folder; today '../elsewhere' and '/tmp' are read as trials."""
    sweep = tmp_path / "sweep"
    trials = _table_sweep(sweep)
    (sweep / "sweep.json").write_text(json.dumps({"plan": {}, "trials": [{**trials[0], "id": trial_id}, trials[1]]}))
    code, _, err = _cli(capsys, "table", str(sweep))
    assert code == 1 and str(sweep / "sweep.json") in err and trial_id in err


# -- cogdsl table: the files it writes ------------------------------------------------------------------------


def test_markdown_and_csv_to_one_file_is_refused(tmp_path: Path, capsys) -> None:
    """Today the CSV is written over the Markdown just written, exit 0."""
    sweep = tmp_path / "sweep"
    _table_sweep(sweep)
    both = tmp_path / "t.md"
    code, _, err = _cli(capsys, "table", str(sweep), "--markdown", str(both), "--csv", str(both))
    assert code == 1 and str(both) in err
    assert not both.exists()


@pytest.mark.parametrize("target", ["sweep.json", "m-seed0/log.csv"])
def test_table_force_does_not_overwrite_the_files_it_reads(tmp_path: Path, capsys, target: str) -> None:
    """--force overwrites the user's earlier tables, not the sweep's own record: today --markdown SWEEP/sweep.json
    --force replaces the record with the table (the sweep can no longer be tabled or resumed)."""
    sweep = tmp_path / "sweep"
    _table_sweep(sweep)
    before = (sweep / target).read_text()
    code, _, err = _cli(capsys, "table", str(sweep), "--markdown", str(sweep / target), "--force")
    assert code == 1 and str(sweep / target) in err
    assert (sweep / target).read_text() == before


def test_table_output_that_is_a_folder_is_a_message(tmp_path: Path, capsys) -> None:
    """Today: 'internal error: IsADirectoryError' (with --force; without it, '... exists; pass --force')."""
    sweep = tmp_path / "sweep"
    _table_sweep(sweep)
    folder = tmp_path / "out"
    folder.mkdir()
    code, _, err = _cli(capsys, "table", str(sweep), "--markdown", str(folder), "--force")
    assert code == 1
    _clean(err)
    assert f"{folder} is a folder" in err


# -- what already behaves well, kept so ------------------------------------------------------------------------


@pytest.mark.parametrize("argv, says", [
    (["--seeds", "0"], "--seeds 0: give a count (3: seeds 0, 1, 2) or different seeds >= 0 (3,4,5; 7, for seed 7 "
                       "alone)"),
    (["--seeds", "-1"], "--seeds -1: give a count"),
    (["--seeds", "3,3"], "--seeds 3,3: give a count"),
    (["--jobs", "0"], "--jobs must be at least 1, got 0"),
    (["--max-minutes", "-1"], "--max-minutes must be a positive number of minutes, got -1"),
    (["--max-minutes", "nan"], "--max-minutes must be a positive number of minutes, got nan"),
    (["--cpus-per-trial", "0"], "--cpus-per-trial must be a positive number, got 0"),
    (["--gpus-per-trial", "-1"], "--gpus-per-trial must be a number >= 0 (0.25: four trials share a GPU), got -1"),
    (["--sequences", "0"], "--sequences must be from 1 to 1,000,000, got 0"),
    (["--lengths", "1e3"], "--lengths 1e3: give test lengths, whole numbers >= 1"),
    (["--set", "train.seed=1,2"], "--set train.seed=1,2: train.seed cannot be set here; the seed is the sweep's"),
    (["--set", "blocks.mem.slots=8", "--set", "blocks.mem.slots=16"],
     "--set blocks.mem.slots is given twice; give all its values in one, e.g. --set blocks.mem.slots=8,16"),
    (["--set", "blocks.ctrl.from.5=x"], "--set blocks.ctrl.from.5=x: blocks.ctrl.from is a list of 2; '5' is not an "
                                        "index of it (0 to 1)"),
    (["--resume", "--force"], "pass either --resume or --force, not both"),
], ids=["seeds-0", "seeds-negative", "seeds-twice", "jobs-0", "max-minutes-negative", "max-minutes-nan", "cpus-0",
        "gpus-negative", "sequences-0", "lengths-float", "set-seed", "set-twice", "set-index", "resume-force"])
def test_a_bad_option_is_one_message(spec: Path, tmp_path: Path, capsys, argv: list[str], says: str) -> None:
    code, out, err = _cli(capsys, "sweep", str(spec), *argv, "--dry-run", "--out", str(tmp_path / "sw"))
    assert (code, out) == (1, "")
    assert err.startswith(f"cogdsl sweep: error: {says}") and "\n" not in err.strip(), err
    assert not (tmp_path / "sw").exists()


def test_a_spec_twice_and_an_out_that_is_a_file_are_refused(spec: Path, tmp_path: Path, capsys) -> None:
    code, _, err = _cli(capsys, "sweep", str(spec), str(spec), "--dry-run", "--out", str(tmp_path / "sw"))
    assert code == 1 and "two trials have the id tiny_copy-seed0 (a spec or a setting's value given twice)" in err
    code, _, err = _cli(capsys, "sweep", str(spec), "--dry-run", "--out", str(spec))
    assert code == 1 and f"{spec} exists and is not a folder; choose another --out" in err


@pytest.mark.parametrize("text, says", [
    ("", ":1:1: a plan is a table of doc, specs, seeds, set, score, table"),
    ("specs: [tiny.yaml]\nseed: 3\n", ":2:1: unknown plan key 'seed'; did you mean 'seeds'?"),
    ("specs: [tiny.yaml]\nscore: {lenghts: [3]}\n", ":2:9: unknown score key 'lenghts'; did you mean 'lengths'?"),
    ("specs: [tiny.yaml]\nmax_minutes: .nan\n", ":2:1: max_minutes must be a positive number, got nan"),
    ("specs: [tiny.yaml]\nset:\n  blocks.mum.slots: [8, 16]\n",
     ":3:3: blocks has no 'mum' (did you mean 'mem'?); it has ctrl, mem, r, w"),
    ("specs: [tiny.yaml]\nset: {blocks.mem.slots: []}\n", ":2:7: blocks.mem.slots has no values"),
    ("specs: []\n", ":1:1: specs is a list of spec files"),
    ("specs: !!python/object/apply:os.system ['true']\n", ":1:8: not YAML (could not determine a constructor"),
], ids=["empty", "unknown-key", "unknown-score-key", "max-minutes-nan", "bad-path", "no-values", "no-specs",
        "python-tag"])
def test_a_bad_plan_is_one_located_message(spec: Path, tmp_path: Path, capsys, text: str, says: str) -> None:
    plan = _plan(tmp_path, text)
    code, out, err = _cli(capsys, "sweep", "--plan", str(plan), "--dry-run", "--out", str(tmp_path / "sw"))
    assert (code, out) == (1, "")
    assert f"cogdsl sweep: error: {plan}{says}" in err, err


def test_a_plan_that_is_not_utf8_is_named(spec: Path, tmp_path: Path, capsys) -> None:
    plan = _plan(tmp_path, b"specs: [tiny.yaml]\ndoc: \xff\n")
    code, _, err = _cli(capsys, "sweep", "--plan", str(plan), "--dry-run")
    assert code == 1 and f"--plan {plan}: cannot read it ('utf-8' codec can't decode byte 0xff" in err


def test_force_on_a_folder_that_is_no_sweep_deletes_nothing(spec: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    code, _, err = _cli(capsys, "sweep", str(spec), "--out", str(out), "--force")
    assert code == 1 and f"{out} is not a sweep folder (it has no sweep.json); --force only replaces sweep" in err
    assert (out / "notes.txt").read_text() == "mine\n"


def test_table_refuses_damaged_records_and_keeps_existing_files(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    _table_sweep(sweep)
    (sweep / "m-seed1" / "trial.json").write_bytes(b'{"status": "done\xff"}')  # a damaged marker: shown, not fatal
    code, out, _ = _cli(capsys, "table", str(sweep))
    assert code == 0 and "Not finished: m-seed1 (trial.json unreadable)." in out
    mine = tmp_path / "t.md"
    mine.write_text("my table\n")
    code, _, err = _cli(capsys, "table", str(sweep), "--markdown", str(mine))
    assert code == 1 and f"{mine} exists; pass --force to overwrite it" in err
    assert mine.read_text() == "my table\n"
    code, _, err = _cli(capsys, "table", str(sweep), "--csv", str(tmp_path / "no" / "t.csv"))
    assert code == 1 and f"{tmp_path / 'no' / 't.csv'}: no such folder" in err
    (sweep / "sweep.json").write_bytes(b'{"trials": [\xff]}')
    code, _, err = _cli(capsys, "table", str(sweep))
    assert code == 1 and f"{sweep / 'sweep.json'}: cannot read it ('utf-8' codec can't decode" in err


def test_empty_output_options_and_a_plan_given_as_a_spec_are_said(spec: Path, tmp_path: Path, capsys) -> None:
    """--out '' silently used the default folder; a plan given where a spec goes gave six spec errors (E006,
    E007) and no word of --plan; a sweep.json of no trials was tabled as 'Median over seeds ; 0 of 0'."""
    code, _, err = _cli(capsys, "sweep", str(spec), "--out", "", "--dry-run")
    assert code == 1 and "--out is empty" in err
    plan = _plan(tmp_path, "specs: [tiny.yaml]\nseeds: 2\n")
    code, _, err = _cli(capsys, "sweep", str(plan), "--dry-run", "--out", str(tmp_path / "sw"))
    assert code == 1 and f"{plan} is a sweep plan (it has specs:), not a spec: run cogdsl sweep --plan {plan}" in err
    sweep = tmp_path / "sweep"
    _table_sweep(sweep)
    for option in ("--markdown", "--csv"):
        code, _, err = _cli(capsys, "table", str(sweep), option, "")
        assert code == 1 and f"{option} is empty" in err
    (sweep / "sweep.json").write_text(json.dumps({"plan": {}, "trials": []}))
    code, _, err = _cli(capsys, "table", str(sweep))
    assert code == 1 and f"{sweep / 'sweep.json'}: it lists no trials" in err
