"""``cogdsl trace``: PNGs of a checkpoint's memory activity (weightings; a DNC's read modes and usage)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.cli.command import main
from cogdsl.tasks import make_task
from cogdsl.training.checkpoints import save_checkpoint, spec_fingerprint
from cogdsl.viz.trace import record_trace, trace_files
from tests.tiny import tiny_ntm

PNG = b"\x89PNG\r\n\x1a\n"
ALL = ["weightings.png", "modes.png", "usage.png"]

TINY_DNC = """\
cogdsl 1
model tiny_dnc
input  x: 5
output y: 4 = sigmoid(ctrl, r)
lstm       ctrl(hidden=16, clip=20) <- x, r@prev
dnc_memory mem(slots=8, width=6)
write      w on mem by ctrl: content(cosine) + allocate
read       r(heads=2) on mem by ctrl: backward + content(cosine) + forward
train {
  task copy(bits=4, min_len=1, max_len=3)
  optimizer adam(lr=1e-3)
  batch 4; steps 5; seed 0
}
"""


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def make_run(folder: Path, name: str, text: str) -> tuple[Path, Path]:
    """A spec file and a checkpoint of its freshly compiled model (no training needed to plot)."""
    spec_path = folder / name
    spec_path.write_text(text, encoding="utf-8")
    spec = cogdsl.load(spec_path)
    torch.manual_seed(0)
    model = cogdsl.compile(spec)
    checkpoint = save_checkpoint(folder / f"{spec.name}_step_00000001.safetensors", model=model, optimizer=None,
                                 data_generator=None, meta={"model": spec.name, "step": 1,
                                                            "spec_fingerprint": spec_fingerprint(spec)})
    return spec_path, checkpoint


@pytest.fixture
def dnc(tmp_path: Path) -> tuple[Path, Path]:
    return make_run(tmp_path, "dnc.cog", TINY_DNC)


@pytest.fixture
def ntm(tmp_path: Path) -> tuple[Path, Path]:
    return make_run(tmp_path, "ntm.yaml", tiny_ntm(read_heads=2, train={"batch": 4, "steps": 5}))


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("cogdsl trace: error: ") and err.count("\n") == 1, err
    return err


def test_dnc_trace_writes_three_pngs(dnc, tmp_path, monkeypatch, capsys):
    spec, checkpoint = dnc
    monkeypatch.chdir(tmp_path)
    out = checkpoint.parent / "trace"  # the default --out: trace/ beside a checkpoint outside a run folder
    assert main(["trace", str(spec), str(checkpoint), "--len", "3"]) == 0
    assert capsys.readouterr().out.split() == [w for name in ALL for w in ("wrote", str(out / name))]
    sizes = {name: png_size(out / name) for name in ALL}
    assert all(w > 400 and h > 150 for w, h in sizes.values()), sizes
    # weightings: inputs, targets, outputs, 1 write head, 2 read heads; usage: one panel.
    assert sizes["weightings.png"][1] > 2 * sizes["usage.png"][1]
    assert sorted(os.listdir(out)) == sorted(ALL)  # no temporary files left


def test_ntm_trace_has_no_modes_or_usage(ntm, tmp_path):
    spec, checkpoint = ntm
    out = tmp_path / "trace"
    assert main(["trace", str(spec), str(checkpoint), "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["weightings.png"]
    assert png_size(out / "weightings.png")[1] > 400


def test_force(dnc, tmp_path, capsys):
    spec, checkpoint = dnc
    out = tmp_path / "trace"
    out.mkdir()
    (out / "usage.png").write_bytes(b"mine")
    (out / "notes.txt").write_text("keep")
    args = ["trace", str(spec), str(checkpoint), "--out", str(out), "--len", "2"]
    assert main(args) == 1
    err = one_line_error(capsys)
    assert "usage.png" in err and "--force" in err
    assert (out / "usage.png").read_bytes() == b"mine" and not (out / "weightings.png").exists()
    assert main([*args, "--force"]) == 0
    assert png_size(out / "usage.png")[0] > 0 and (out / "notes.txt").read_text() == "keep"


def test_bad_input(dnc, ntm, tmp_path, capsys):
    spec, checkpoint = dnc
    ntm_spec, ntm_checkpoint = ntm
    out = str(tmp_path / "trace")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    no_train = tmp_path / "no_train.yaml"
    no_train.write_text(tiny_ntm(name="no_train"), encoding="utf-8")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = {
        "missing checkpoint": [str(spec), str(tmp_path / "missing.safetensors")],
        "corrupt checkpoint": [str(spec), str(corrupt)],
        "another spec's checkpoint": [str(spec), str(ntm_checkpoint)],
        "the other way round": [str(ntm_spec), str(checkpoint)],
        "no train section": [str(no_train), str(checkpoint)],
        "missing spec": [str(tmp_path / "missing.cog"), str(checkpoint)],
        "out is a file": [str(spec), str(checkpoint), "--out", str(a_file)],
        "out under a file": [str(spec), str(checkpoint), "--out", str(a_file / "trace")],
        "bad length": [str(spec), str(checkpoint), "--len", "0"],
    }
    errors = {}
    for what, args in cases.items():
        assert main(["trace", *args] + ([] if "--out" in args else ["--out", out])) == 1, what
        err = capsys.readouterr().err
        assert "Traceback" not in err and "error" in err, (what, err)
        if what != "missing spec":  # a spec file's problems render as located diagnostics
            assert err.startswith("cogdsl trace: error: ") and err.count("\n") == 1, (what, err)
        errors[what] = err
    assert "different architecture" in errors["another spec's checkpoint"]
    assert "no train section" in errors["no train section"]
    assert "--force" not in errors["out is a file"]
    assert not (tmp_path / "trace").exists()  # nothing is created for bad input


def test_unwritable_out_folder(dnc, tmp_path, monkeypatch, capsys):
    spec, checkpoint = dnc

    def refuse(path: object, data: bytes) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr("cogdsl.viz.curves.atomic_write_bytes", refuse)  # as a read-only folder would, even for root
    assert main(["trace", str(spec), str(checkpoint), "--out", str(tmp_path / "locked"), "--len", "1"]) == 1
    assert "cannot write" in one_line_error(capsys)


def test_record_trace_matches_the_model(dnc, tmp_path):
    spec_path, _ = dnc
    spec = cogdsl.load(spec_path)
    torch.manual_seed(0)
    model = cogdsl.compile(spec)
    model.train()
    task = make_task("copy", bits=4, min_len=1, max_len=3)
    sample = task.sample(1, torch.Generator().manual_seed(3), length=3)
    trace = record_trace(model, sample.inputs, sample.targets)
    assert model.training  # restored
    with torch.no_grad():
        model.eval()
        logits, expected = model(sample.inputs, raw=True, return_weights=True)
    steps = sample.inputs.shape[1]
    assert torch.equal(trace.inputs, sample.inputs[0]) and torch.equal(trace.targets, sample.targets[0])
    torch.testing.assert_close(trace.outputs, torch.sigmoid(logits[0]))
    assert list(trace.usage) == ["mem"] and trace.usage["mem"].shape == (steps, 8)
    torch.testing.assert_close(trace.usage["mem"], expected["mem:usage"][0])
    assert trace.weightings["w"].shape == (steps, 1, 8) and trace.weightings["r"].shape == (steps, 2, 8)
    torch.testing.assert_close(trace.weightings["r"], expected["r"][0])
    assert trace.mode_names == {"r": ("backward", "content", "forward")}
    torch.testing.assert_close(trace.modes["r"], expected["r:modes"][0])
    torch.testing.assert_close(trace.modes["r"].sum(-1), torch.ones(steps, 2))
    [memory] = trace.memories
    assert memory.dnc and memory.writes == (("w", 1),) and memory.reads == (("r", 2),)

    assert trace_files(model) == ALL


def test_record_trace_of_an_ntm(ntm):
    spec_path, _ = ntm
    model = cogdsl.compile(cogdsl.load(spec_path))
    trace = record_trace(model, torch.zeros(4, 5))
    assert trace.targets is None and trace.usage == {} and trace.modes == {}
    assert set(trace.weightings) == {"r", "w"} and trace.weightings["r"].shape == (4, 2, 16)
    assert trace_files(model) == ["weightings.png"]
