"""``cogdsl trace`` on sequence-to-sequence models: each attention block's alignment matrix, as a table
and ``alignment.png``; and the commands that refuse what does not apply to them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.cli.command import main
from cogdsl.tasks import make_task
from cogdsl.viz.trace_seq import alignment_table, record_alignment
from tests.test_trace import make_run, png_size

ROOT = Path(__file__).resolve().parent.parent
TRAIN = """
train {
  task reverse(symbols=6, max_len=7)
  optimizer adam(lr=0.01)
  batch 4; steps 2
}
"""
TWO_HEADS = """\
model tiny_align
input  src: sequence(size=6)
output y: 6 = softmax(dec, ctx)
encoder   enc(hidden=5) <- src
attention ctx(score=general, heads=2) on enc <- dec@prev
gru       dec(hidden=5) <- y@prev, ctx
""" + TRAIN
SUMMARY_ONLY = """\
model tiny_summary
input  src: sequence(size=6)
output y: 6 = softmax(dec)
encoder enc(hidden=5) <- src
summary ctx on enc
gru     dec(hidden=5) <- y@prev, ctx
""" + TRAIN


def test_record_alignment_is_the_models_own_weights(tmp_path: Path) -> None:
    spec_path, _ = make_run(tmp_path, "align.cog", TWO_HEADS)
    model = cogdsl.compile(cogdsl.load(spec_path))
    task = make_task("reverse", symbols=6, max_len=7)
    trace = record_alignment(model, task, length=5, seed=3)
    batch = task.sample(1, torch.Generator().manual_seed(3), length=5)
    assert list(trace.source) == batch.inputs["sequence"][0].argmax(-1).tolist()
    assert list(trace.target) == list(reversed(trace.source))
    with torch.no_grad():
        logits, weights = model({"src": batch.inputs["sequence"]}, raw=True, return_weights=True, steps=5)
    assert list(trace.predicted) == logits[0].argmax(-1).tolist()
    assert sorted(trace.weights) == ["ctx head 1", "ctx head 2"]
    for head in range(2):
        matrix = trace.weights[f"ctx head {head + 1}"]
        assert matrix.shape == (5, 5)
        assert torch.allclose(matrix, weights["ctx"][0, :, head].float())
        assert torch.allclose(matrix.sum(-1), torch.ones(5))
    assert model.training  # restored
    table = alignment_table(trace)
    assert table.count("output step (model / target) x source position") == 2
    assert f"source {list(trace.source)}" in table


def test_trace_command_prints_the_alignment_and_draws_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec_path, checkpoint = make_run(tmp_path, "align.cog", TWO_HEADS)
    out = tmp_path / "trace"
    assert main(["trace", str(spec_path), str(checkpoint), "--out", str(out), "--len", "4", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line[:2].strip().isdigit()]
    assert len(rows) == 2 * 4  # two heads, four output steps each
    width, height = png_size(out / "alignment.png")
    assert width > 200 and height > 100
    # an existing picture is kept unless --force
    before = (out / "alignment.png").read_bytes()
    assert main(["trace", str(spec_path), str(checkpoint), "--out", str(out)]) == 1
    assert "already" in capsys.readouterr().err and (out / "alignment.png").read_bytes() == before


def test_trace_of_a_model_without_attention_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec_path, checkpoint = make_run(tmp_path, "summary.cog", SUMMARY_ONLY)
    assert main(["trace", str(spec_path), str(checkpoint), "--out", str(tmp_path / "t")]) == 1
    assert "no attention block" in capsys.readouterr().err


def test_eval_on_a_seq2seq_run_points_plot_to_trace(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec_path, checkpoint = make_run(tmp_path, "align.cog", TWO_HEADS)
    assert main(["eval", str(spec_path), str(checkpoint), "--plot", str(tmp_path / "w.png")]) == 1
    assert "cogdsl trace" in capsys.readouterr().err and not (tmp_path / "w.png").exists()
    assert main(["eval", str(spec_path), str(checkpoint), "--len", "9", "--sequences", "20"]) == 0
    assert "at length 9" in capsys.readouterr().out
