"""What a new user tripped over, each fixed: the command's small rough edges."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.cli import command as cli
from cogdsl.cli.command import build_parser, main
from tests.tiny import tiny_ntm

ROOT = Path(__file__).resolve().parent.parent


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"cogdsl {cogdsl.__version__}"


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    for name, command in parser.commands.items():
        for action in command._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"cogdsl {name} {action.option_strings[0]} has no help text"
            if not action.option_strings:
                assert action.help, f"cogdsl {name}'s argument {action.dest} has no help text"


def test_help_and_version_answer_without_importing_torch():
    probe = ("import sys\nfrom cogdsl.cli import main\nfor argv in (['--help'], ['train', '--help'], ['--version']):\n"
             "    try:\n        main(argv)\n    except SystemExit:\n        pass\nprint('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stdout + done.stderr


def test_ctrl_c_during_start_up_exits_130_quietly(monkeypatch, capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_parse", interrupted)  # as if Ctrl-C came while the command starts
    assert main(["train", "x.yaml"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_ctrl_c_while_a_command_imports_exits_130(monkeypatch, capsys):
    def importing(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_validate", importing)
    parser = build_parser()
    parser.commands["validate"].set_defaults(run=importing)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert main(["validate", "specs/"]) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_an_unknown_option_shows_the_subcommands_usage(capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", "specs/ntm_copy.yaml", "--stepz", "3"])
    err = capsys.readouterr().err
    assert done.value.code == 1
    assert err.startswith("usage: cogdsl train ") and "cogdsl train: error: unrecognized arguments: --stepz 3" in err


def test_validate_names_a_missing_folder(capsys):
    assert main(["validate", "nodir/"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("nodir: error[E008]: no such file or folder")


def test_a_kind_in_capitals_suggests_the_kind(tmp_path, capsys):
    path = tmp_path / "t.cog"
    path.write_text("model m\ninput x: 3\noutput y: 2 = sigmoid(c)\nLSTM c(hidden=4) <- x\n")
    assert main(["validate", str(path)]) == 1
    assert "hint: did you mean 'lstm'?" in capsys.readouterr().out


def test_yaml_in_a_cog_file_is_told_it_looks_like_yaml(tmp_path, capsys):
    path = tmp_path / "copy.cog"
    path.write_text((ROOT / "specs" / "ntm_copy.yaml").read_text())
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "this looks like a YAML spec: save it as a .yaml file" in out and "cogdsl fmt --to cog copy.yaml" in out


def test_a_cog_spec_without_train_gets_a_cog_hint(tmp_path, capsys):
    path = tmp_path / "t.cog"
    path.write_text("model m\ninput x: 3\noutput y: 2 = sigmoid(c)\nlstm c(hidden=4) <- x\n")
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "'train { task copy(bits=8) }'" in err and "train: {" not in err  # the .cog form, not YAML's


def test_threads_0_leaves_torchs_default_in_train_and_eval(tmp_path, capsys):
    spec = tmp_path / "t.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 2, "threads": 0}))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--threads", "0", "--no-progress",
                     "--device", "cpu"]) == 0
        assert torch.get_num_threads() == 2
        assert main(["eval", str(spec), str(tmp_path / "run"), "--threads", "0", "--sequences", "4",
                     "--device", "cpu"]) == 0
        assert torch.get_num_threads() == 2
        assert main(["eval", str(spec), str(tmp_path / "run"), "--threads", "-1"]) == 1
        assert main(["train", str(spec), "--out", str(tmp_path / "other"), "--threads", "-1"]) == 1
        assert "--threads must be at least 0, got -1" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


def test_eval_plot_does_not_overwrite_without_force(tmp_path, capsys):
    spec = tmp_path / "t.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 2}))
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--no-progress", "--device", "cpu"]) == 0
    plot = tmp_path / "mine.png"
    plot.write_bytes(b"the user's own picture")
    assert main(["eval", str(spec), str(tmp_path / "run"), "--sequences", "4", "--plot", str(plot)]) == 1
    assert "exists; pass --force to overwrite it" in capsys.readouterr().err
    assert plot.read_bytes() == b"the user's own picture"
    assert main(["eval", str(spec), str(tmp_path / "run"), "--sequences", "4", "--plot", str(plot), "--force",
                 "--device", "cpu"]) == 0
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_float64_inputs_are_taken_in_the_models_dtype():
    torch.manual_seed(0)
    model = cogdsl.compile(ROOT / "specs" / "ntm_copy.yaml")
    x = torch.rand(2, 5, 9)
    torch.testing.assert_close(model(x.double()), model(x))
    state = model.initial_state(2)
    y, _ = model.step(x[:, 0].double(), state)
    assert y.dtype == torch.float32


def test_learning_curve_labels_name_questions_and_an_error_rate(tmp_path):
    from cogdsl.viz.curves import _label, read_log_by_role

    log = tmp_path / "log.csv"
    log.write_text("step,questions,seconds,loss,error_rate,questions_per_sec,eval_loss,eval_error_rate\n"
                   "1,32,0.1,1.5,0.5,320,,\n")
    names, rows = read_log_by_role(log)
    assert names["sequences"] == "questions" and rows[0]["bit_errors"] == 0.5
    assert _label(names["bit_errors"], names["sequences"]) == "error rate (%)"
    assert _label("bit_errors", "sequences") == "bit errors per sequence"


def test_command_line_settings_keep_their_declared_ranges(tmp_path, capsys):
    spec = tmp_path / "t.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 2}))
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--batch", "100000000"]) == 1
    assert "batch must be 1 <= batch <= 65536, got 100000000" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("seed", ["-1", str(2**64)])
def test_a_seed_torch_cannot_take_is_one_message(tmp_path: Path, capsys, seed: str) -> None:
    """2**64 used to reach torch.manual_seed and end as an internal error (an overflow); train, eval and trace
    refuse it, and the spec's train: seed too, before anything is written."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 2}))
    for command in (["train", str(spec), "--out", str(tmp_path / "run")],
                    ["eval", str(spec), str(tmp_path / "run")], ["trace", str(spec), str(tmp_path / "run")]):
        assert main([*command, "--seed", seed]) == 1
        err = capsys.readouterr().err
        assert f"--seed must be from 0 to 2**63 - 1 (9223372036854775807), got {seed}" in err, err
    assert not (tmp_path / "run").exists()
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": 2, "seed": 2**64}))
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "seed" in err and "internal error" not in err, err
    assert not (tmp_path / "run").exists()
