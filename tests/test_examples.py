"""The example scripts run: train_in_python.py as a user runs it, and demo.py made tiny."""

from __future__ import annotations

import csv
import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.tiny import tiny_ntm

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

TINY = tiny_ntm(train={"batch": 4, "steps": 1000, "eval_every": 4, "eval_size": 8, "log_every": 2})


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_train_in_python_runs_the_ntm_copy_spec():
    result = run_script(str(EXAMPLES / "train_in_python.py"), "specs/ntm_copy.yaml", "10")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [result.stdout.strip().splitlines()[0]]
    assert result.stdout.startswith("step 10: loss ") and "bit errors per sequence" in result.stdout


def test_train_in_python_on_another_spec(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    result = run_script(str(EXAMPLES / "train_in_python.py"), str(spec), "25")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["step 10", "step 20", "step 25"]


def test_demo_made_tiny(tmp_path, capsys):
    threads = torch.get_num_threads()
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    demo = runpy.run_path(str(EXAMPLES / "demo.py"), run_name="demo")
    out = tmp_path / "demo"
    argv = ["--spec", str(spec), "--out", str(out), "--steps", "6", "--minutes", "1",
            "--eval-len", "5", "--eval-sequences", "10"]
    try:
        assert demo["main"](argv) == 0
        first = capsys.readouterr().out
        assert "$ cogdsl train" in first and "--force" in first and "$ cogdsl eval" in first
        assert "tiny_copy at length 5: " in first and "bit errors per sequence" in first
        for name in ("weightings.png", "learning_curve.png", "log.csv", "spec.yaml"):
            assert (out / name).is_file(), name
            assert name in first
        assert (out / "weightings.png").read_bytes()[:4] == b"\x89PNG"
        assert (out / "checkpoints" / "step_00000006.safetensors").is_file()
        assert "best.safetensors --len 5" in first  # the best evaluation's weights are the ones tested
        # the demo owns its folder: running it again replaces the run
        (out / "checkpoints" / "step_00000006.safetensors").unlink()
        assert demo["main"](argv) == 0
        assert (out / "checkpoints" / "step_00000006.safetensors").is_file()
    finally:
        torch.set_num_threads(threads)


def test_demo_defaults_are_the_documented_ones():
    demo = runpy.run_path(str(EXAMPLES / "demo.py"), run_name="demo")
    text = (EXAMPLES / "demo.py").read_text()
    assert "specs/ntm_copy.yaml --steps 3000 --threads 1 --device cpu --max-minutes 4 --out runs/demo" in text
    assert "--force --keep-best" in text
    assert demo["ROOT"] == ROOT
    assert (ROOT / "specs" / "ntm_copy.yaml").is_file()


def test_throughput_script_times_both_models() -> None:
    result = run_script("examples/throughput.py", "specs/ntm_copy.yaml", "--len", "2", "--steps", "2",
                        "--rounds", "1", "--batch", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ntm_copy: batch 2, length 2 (T = 5 steps)")
    rates = {line.split()[0]: float(line.split()[1]) for line in lines[1:3]}
    assert set(rates) == {"cogdsl", "hand-written"} and all(rate > 0 for rate in rates.values())
    assert lines[3].split()[0] == "ratio"


def test_babi_table_trains_per_task_and_jointly(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    result = run_script("examples/babi_table.py", "specs/memn2n_babi.cog", "--tasks", "1", "15", "--seeds", "0", "1",
                        "--steps", "3", "--out", str(out), "--json", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "| task | median test error | seed 0 | seed 1 |"
    assert lines[2].startswith("| 1 single supporting fact | ") and lines[3].startswith("| 15 basic deduction | ")
    errors = [float(cell.strip().rstrip("%")) for cell in lines[2].split("|")[2:5]]
    assert sorted(errors[1:])[0] <= errors[0] <= sorted(errors[1:])[-1]  # the median of two lies between them
    assert lines[-1].startswith("memn2n_babi: ") and "of 2 tasks passed" in lines[-1] and "4 runs" in lines[-1]
    assert sorted(p.name for p in (out / "memn2n_babi").iterdir()) == ["15_seed0", "15_seed1", "1_seed0", "1_seed1"]
    joint = run_script("examples/babi_table.py", "specs/memn2n_babi.cog", "--joint", "--seeds", "0", "--steps", "2",
                       "--out", str(out))
    assert joint.returncode == 0, joint.stderr
    rows = [line for line in joint.stdout.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split()[1] for row in rows] == ["1", "2", "3", "6", "15", "16"]
    assert "one joint model per seed" in joint.stdout and (out / "memn2n_babi" / "joint_seed0").is_dir()


def test_babi_table_keeps_the_specs_other_task_settings(tmp_path: Path) -> None:
    """A spec's ``relabel=true`` reaches every run, per task and joint (the table replaces the number and size only)."""
    out = tmp_path / "runs"
    for extra in (["--tasks", "3"], ["--joint"]):
        result = run_script("examples/babi_table.py", "specs/memn2n_babi_relabel.cog", *extra, "--seeds", "0",
                            "--steps", "2", "--out", str(out))
        assert result.returncode == 0, result.stderr
    for folder, task in (("3_seed0", "{name: babi, relabel: true, number: 3, train_size: 1000}"),
                         ("joint_seed0", "{name: babi_joint, relabel: true, train_size: 1000}")):
        saved = (out / "memn2n_babi_relabel" / folder / "spec.yaml").read_text()
        assert f"task: {task}" in saved, saved


def test_attention_table_trains_each_spec_and_seed(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    result = run_script("examples/attention_table.py", "specs/bahdanau_reverse.cog", "specs/encdec_reverse.cog",
                        "--seeds", "0", "1", "--steps", "3", "--lengths", "4", "6", "--out", str(out),
                        "--json", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("| spec | task | perfect at length 4 | wrong symbols at 4 | perfect at length 6 |")
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["`bahdanau_reverse`", "`encdec_reverse`"]
    runs = json.loads((tmp_path / "r.json").read_text())["runs"]
    assert len(runs) == 4 and {run["steps"] for run in runs} == {3}
    wrong = [float(cell) for cell in lines[2].split("|")[4:7:2]]
    assert all(0 <= w <= n for w, n in zip(wrong, (4, 6), strict=True))  # at most every symbol wrong
    assert sorted(p.name for p in (out / "encdec_reverse").iterdir()) == ["seed0", "seed1"]


def test_stack_table_resizes_the_spec_for_each_task(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    result = run_script("examples/stack_table.py", "specs/stack_anbn.cog", "specs/lstm_anbn.cog", "--tasks", "anbncn",
                        "mirror", "--seeds", "0", "--steps", "2", "--lengths", "3", "5", "--out", str(out),
                        "--json", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("| task | spec | perfect at n = 3 | perfect at n = 5 |")
    assert [tuple(cell.strip() for cell in line.split("|")[1:3]) for line in lines[2:]] == [
        ("anbncn", "`stack_anbn`"), ("anbncn", "`lstm_anbn`"), ("mirror", "`stack_anbn`"), ("mirror", "`lstm_anbn`")]
    runs = json.loads((tmp_path / "r.json").read_text())["runs"]
    assert all(0.0 <= run["scores"][n]["perfect"] <= 1.0 for run in runs for n in ("3", "5"))
    # Three symbols for a^n b^n c^n, three (two and the separator) for mirror: the specs were resized.
    spec = (out / "anbncn" / "stack_anbn" / "seed0" / "spec.yaml").read_text()
    assert "x: 3" in spec and "stack_anbn_anbncn" in spec


def test_attention_table_reports_how_often_a_skip_rnn_skipped(tmp_path: Path) -> None:
    result = run_script("examples/attention_table.py", "specs/skip_rnn_adding.cog", "--seeds", "0", "--steps", "2",
                        "--lengths", "12", "--out", str(tmp_path / "runs"), "--json", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    assert "(updates skipped: " in result.stdout.splitlines()[2]
    assert "both markers read: " in result.stdout.splitlines()[2]
    (run,) = json.loads((tmp_path / "r.json").read_text())["runs"]
    skipped = run["scores"]["12"]["skipped"]
    assert 0.0 <= skipped["all"] < 1.0 and 0.0 <= skipped["read_both"] <= 1.0


@pytest.mark.parametrize("bias", [30.0, -30.0])
def test_skipped_updates_counts_skips_and_the_markers_read(bias: float) -> None:
    """An update gate forced open updates at every step and reads both markers; forced shut, the
    skip RNN updates only at step 0 (its first step always updates) and never reads the second marker."""
    import cogdsl
    from cogdsl.tasks import make_task

    table = runpy.run_path(str(EXAMPLES / "attention_table.py"))
    model = cogdsl.compile(cogdsl.load(ROOT / "specs" / "skip_rnn_adding.cog"))
    gate = model.controllers["ctrl"].update_gate
    with torch.no_grad():
        gate.weight.zero_()
        gate.bias.fill_(bias)
    skipped = table["skipped_updates"](model, make_task("adding"), 20)
    if bias > 0:
        assert skipped == {"all": 0.0, "read_both": 1.0}
    else:
        assert skipped["all"] == pytest.approx(19 / 20) and skipped["read_both"] == 0.0


def test_attention_table_trains_at_the_length_it_is_given(tmp_path: Path) -> None:
    result = run_script("examples/attention_table.py", "specs/lstm_adding.cog", "--seeds", "0", "--steps", "2",
                        "--train-len", "13", "--lengths", "13", "--out", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    trained = (tmp_path / "runs" / "lstm_adding" / "seed0" / "spec.yaml").read_text()
    assert "min_len: 13" in trained and "max_len: 13" in trained


def test_attention_table_keeps_the_best_weights_when_asked(tmp_path: Path) -> None:
    spec = tmp_path / "lstm_adding.cog"
    spec.write_text((ROOT / "specs" / "lstm_adding.cog").read_text().replace("eval_every 500; eval_size 1000",
                                                                             "eval_every 1; eval_size 10"))
    result = run_script("examples/attention_table.py", str(spec), "--seeds", "0", "--steps", "2",
                        "--lengths", "13", "--keep-best", "--out", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    run = tmp_path / "runs" / "lstm_adding" / "seed0"
    assert (run / "checkpoints" / "best.safetensors").is_file()
    assert "keep_best: false" not in (run / "spec.yaml").read_text()


def test_attention_table_trains_on_a_curriculum_when_asked(tmp_path: Path) -> None:
    result = run_script("examples/attention_table.py", "specs/lstm_adding.cog", "--seeds", "0", "--steps", "3",
                        "--train-len", "20", "--curriculum", "1", "6", "--lengths", "20",
                        "--out", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    trained = (tmp_path / "runs" / "lstm_adding" / "seed0" / "spec.yaml").read_text()
    assert "min_len: 6" in trained and "max_len: 20" in trained
    assert "curriculum_every: 1" in trained and "curriculum_start: 6" in trained


def test_stack_table_scores_the_best_validation_of_a_spec_that_keeps_it(tmp_path: Path) -> None:
    spec = tmp_path / "stack_best.cog"
    library = Path("specs/stack_anbn.cog").read_text()
    assert "keep_best true" in library  # the paper picks its models on validation; so does the spec
    spec.write_text(re.sub(r"eval_every \d+", "eval_every 2", library).replace("eval_size 200", "eval_size 20"))
    out = tmp_path / "runs"
    result = run_script("examples/stack_table.py", str(spec), "--tasks", "anbn", "--seeds", "0", "--steps", "8",
                        "--lengths", "4", "--out", str(out), "--json", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    (run,) = json.loads((tmp_path / "r.json").read_text())["runs"]
    with (out / "anbn" / "stack_anbn" / "seed0" / "log.csv").open() as f:
        losses = {int(row["step"]): float(row["eval_loss"]) for row in csv.DictReader(f) if row["eval_loss"]}
    assert sorted(losses) == [2, 4, 6, 8]
    assert run["scored_step"] == min(losses, key=losses.__getitem__)
    assert run["valid_loss"] == pytest.approx(losses[run["scored_step"]], rel=1e-5)


def test_stack_table_picks_the_seed_of_lowest_validation_loss() -> None:
    stack_table = runpy.run_path(str(EXAMPLES / "stack_table.py"), run_name="stack_table")

    def run(seed: int, valid_loss: float, perfect: float) -> dict:
        return {"task": "anbn", "spec": "s", "seed": seed, "valid_loss": valid_loss, "cpu_seconds": 1.0,
                "scores": {"60": {"perfect": perfect}}}

    rows = stack_table["table"]([run(0, 0.5, 0.0), run(1, 0.01, 1.0), run(2, 0.2, 0.25)], (60,)).splitlines()
    assert rows[2] == "| anbn | `s` | 25.0% | 0.0%, 100.0%, 25.0% | 100.0% (seed 1) | 1 |"


def test_custom_task_registers_a_task_a_spec_names(tmp_path):
    result = run_script(str(EXAMPLES / "custom_task.py"), "30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("parity at length 8: ")
    shutil_rmtree(ROOT / "runs" / "parity")


def test_your_data_trains_on_a_dataset_with_evaluation():
    result = run_script(str(EXAMPLES / "your_data.py"), "30")
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("echo: ") and "(mean over 200 sequences)" in last
    shutil_rmtree(ROOT / "runs" / "echo")


def test_a_package_publishes_a_task_the_command_line_knows(tmp_path):
    """The entry-point group cogdsl.tasks: an installed package's task works in `cogdsl train` and `eval`, and
    a package whose task does not load is a warning."""
    (tmp_path / "parity_plugin.py").write_text((EXAMPLES / "custom_task.py").read_text().split("SPEC =")[0])
    for name, entry in (("parity_plugin", "running_parity = parity_plugin:RunningParity"),
                        ("broken", "broken = no_such_module:Task")):
        info = tmp_path / f"{name}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[cogdsl.tasks]\n{entry}\n")
    spec = tmp_path / "parity.cog"
    spec.write_text("model p\ninput x\noutput y = sigmoid(c)\ngru c(hidden=4) <- x\n"
                    "train { task running_parity(max_len=4); batch 4; steps 3 }\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    run = [sys.executable, "-m", "cogdsl"]
    done = subprocess.run([*run, "train", str(spec), "--out", str(tmp_path / "run"), "--no-progress"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "task plugin 'broken' (no_such_module:Task) was not loaded" in done.stderr
    done = subprocess.run([*run, "eval", str(spec), str(tmp_path / "run"), "--sequences", "8"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("p at length 4: "), done.stderr


def shutil_rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
