"""``cogdsl trace`` on QA models: each hop's attention over one story, as a table and ``hops.png``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.cli.command import main
from cogdsl.tasks import make_task
from cogdsl.viz.trace_qa import hop_table, record_hops
from tests.test_trace import make_run, png_size

MEMN2N = """\
model tiny_memn2n
input  story: sentences(vocab=69)
input  question: words(vocab=69)
output answer: 69 = softmax(reason)
episodic_memory mem(embedding=8, slots=6) <- story
hops reason(count=2) on mem <- question
train {
  task babi(number=2)
  optimizer adam(lr=0.01)
  batch 4; steps 2
}
"""

DMN = MEMN2N.replace("tiny_memn2n", "tiny_dmn").replace("hops reason(count=2)", "episodes reason(count=2)")


@pytest.mark.parametrize("text", [MEMN2N, DMN], ids=["hops", "episodes"])
def test_record_hops_maps_attention_to_sentences(tmp_path: Path, text: str) -> None:
    spec_path, _ = make_run(tmp_path, "qa.cog", text)
    model = cogdsl.compile(cogdsl.load(spec_path))
    task = make_task("babi", number=2)
    data = task.data("test")
    question = int(torch.argmax((data["story"].ne(0).any(-1)).sum(-1)))  # the longest story: more than 6 sentences
    sentences = int(data["sentences"][question])
    assert sentences > 6
    trace = record_hops(model, task, question)
    assert len(trace.sentences) == sentences
    weights = trace.attention["reason"]
    assert weights.shape == (2, sentences)
    # Only the 6 most recent sentences have slots; each hop's attention over them sums to 1.
    assert torch.all(weights[:, : sentences - 6] == 0)
    torch.testing.assert_close(weights[:, sentences - 6:].sum(-1), torch.ones(2))
    assert trace.supporting and max(trace.supporting) < sentences
    assert trace.answer == cogdsl.tasks.babi.vocabulary().word(int(data["answer"][question]))
    table = hop_table(trace)
    assert table.splitlines()[0] == "| # | story | support | hop 1 | hop 2 |"
    assert len(table.splitlines()) == 2 + sentences + 2
    assert f"answer: {trace.answer}" in table


def test_trace_command_prints_the_table_and_draws_hops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_path, checkpoint = make_run(tmp_path, "qa.cog", MEMN2N)
    out = tmp_path / "trace"
    assert main(["trace", str(spec_path), str(checkpoint), "--out", str(out), "--question", "4"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("| # | story | support | hop 1 | hop 2 |")
    assert f"wrote {out / 'hops.png'}" in printed
    width, height = png_size(out / "hops.png")
    assert width > 300 and height > 150
    # never overwritten without --force
    before = (out / "hops.png").read_bytes()
    assert main(["trace", str(spec_path), str(checkpoint), "--out", str(out)]) == 1
    assert "hops.png" in capsys.readouterr().err and (out / "hops.png").read_bytes() == before
    assert main(["trace", str(spec_path), str(checkpoint), "--out", str(out), "--force", "--question", "0"]) == 0


@pytest.mark.parametrize("question", ["-1", "1000"])
def test_trace_command_refuses_a_question_outside_the_test_set(tmp_path: Path, question: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    spec_path, checkpoint = make_run(tmp_path, "qa.cog", MEMN2N)
    assert main(["trace", str(spec_path), str(checkpoint), "--out", str(tmp_path / "t"), "--question", question]) == 1
    err = capsys.readouterr().err
    assert "--question must be a test question, 0 .. 999" in err and "Traceback" not in err
    assert not (tmp_path / "t").exists()
