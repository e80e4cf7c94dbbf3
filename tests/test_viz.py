"""Plots: the learning curve from a run's CSV log, and head weightings over one sequence."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import torch

import cogdsl
from cogdsl.training.loop import LOG_COLUMNS
from cogdsl.viz.curves import plot_learning_curve, plot_weightings, read_log
from tests.tiny import tiny_ntm

PNG = b"\x89PNG\r\n\x1a\n"

NTM = tiny_ntm(read_heads=2)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def write_log(path: Path, rows: list[dict[str, object]]) -> Path:
    lines = [",".join(LOG_COLUMNS)]
    lines += [",".join("" if row.get(c) is None else str(row[c]) for c in LOG_COLUMNS) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_learning_curve_png(tmp_path):
    rows = [{"step": s, "sequences": 16 * s, "seconds": s / 10, "loss": 60 / s, "bit_errors": 40 / s,
             "seq_per_sec": 160.0} for s in range(10, 210, 10)]
    for row in rows[4::5]:
        row.update(eval_loss=row["loss"] * 1.5, eval_bit_errors=row["bit_errors"] * 1.5)
    log = write_log(tmp_path / "log.csv", rows)
    parsed = read_log(log)
    assert parsed[0]["eval_loss"] is None and parsed[4]["eval_loss"] == rows[4]["eval_loss"]
    out = plot_learning_curve(log, tmp_path / "curve.png", title="test")
    width, height = png_size(out)
    assert width > 400 and height > 300
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))


def test_learning_curve_with_one_row_or_none(tmp_path):
    one = write_log(tmp_path / "one.csv", [{"step": 1, "sequences": 8, "seconds": 0.1, "loss": 5.0,
                                            "bit_errors": 2.0, "seq_per_sec": 80.0}])
    assert png_size(plot_learning_curve(one, tmp_path / "one.png"))[0] > 0
    empty = write_log(tmp_path / "empty.csv", [])
    assert png_size(plot_learning_curve(empty, tmp_path / "empty.png"))[0] > 0


def test_plot_leaves_the_matplotlib_backend_alone(tmp_path):
    backend = matplotlib.get_backend()
    log = write_log(tmp_path / "log.csv", [{"step": 1, "sequences": 8, "loss": 1.0, "bit_errors": 0.0}])
    plot_learning_curve(log, tmp_path / "curve.png")
    assert matplotlib.get_backend() == backend


def test_weightings_png_has_a_panel_per_head(tmp_path):
    spec_path = tmp_path / "ntm.yaml"
    spec_path.write_text(NTM)
    torch.manual_seed(0)
    model = cogdsl.compile(cogdsl.load(spec_path))
    x = torch.zeros(11, 5)
    x[:5, :4] = torch.randint(0, 2, (5, 4)).float()
    x[5, 4] = 1.0
    targets = torch.zeros(11, 4)
    targets[6:] = x[:5, :4]
    small = plot_weightings(model, x, tmp_path / "w.png", targets=targets)
    _, height_with_heads = png_size(small)
    assert model.training  # plotting does not leave the model in eval mode

    plain = tmp_path / "plain.yaml"
    plain.write_text("cogdsl: 1\nmodel: plain\ninputs:\n  x: 5\noutputs:\n  y: {size: 4, from: [ctrl]}\n"
                     "blocks:\n  ctrl: {kind: lstm, hidden: 8, from: [x]}\n")
    _, height_plain = png_size(plot_weightings(cogdsl.compile(cogdsl.load(plain)), x.unsqueeze(0),
                                               tmp_path / "plain.png"))
    assert height_with_heads > height_plain  # inputs/targets/outputs + 3 head panels vs inputs/outputs


def test_weightings_png_of_a_dnc_draws_head_panels_only(tmp_path):
    spec_path = tmp_path / "dnc.cog"
    spec_path.write_text("model d\ninput x: 5\noutput y: 4 = sigmoid(ctrl, r)\nlstm ctrl(hidden=8) <- x, r@prev\n"
                         "dnc_memory mem(slots=6, width=4)\nwrite w on mem by ctrl\nread r on mem by ctrl\n")
    torch.manual_seed(0)
    model = cogdsl.compile(cogdsl.load(spec_path))
    _, weights = model(torch.rand(1, 7, 5), return_weights=True)
    assert {"mem:usage", "r:modes"} <= weights.keys()  # these are `cogdsl trace`'s to draw
    ntm_path = tmp_path / "ntm.cog"
    ntm_path.write_text(spec_path.read_text().replace("dnc_memory", "memory"))
    ntm = cogdsl.compile(cogdsl.load(ntm_path))
    x = torch.rand(7, 5)
    # the same panels (inputs, outputs, one write and one read head) as the NTM of the same shape
    assert png_size(plot_weightings(model, x, tmp_path / "d.png")) == png_size(
        plot_weightings(ntm, x, tmp_path / "n.png"))
