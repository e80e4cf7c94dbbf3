"""The example scripts run: train_in_python.py as a user runs it, and demo.py made tiny."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

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
