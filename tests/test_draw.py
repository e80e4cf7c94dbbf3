"""DRAW's read and write (cogdsl/blocks/draw.py) against loop oracles of Gregor et al. 2015, eq. 19-29;
the canvas as state and as an output's logits; the reconstruction task; and ``cogdsl trace`` of models
that look at images."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl.blocks.draw import DrawRead, DrawWrite, filterbank
from cogdsl.cli.command import main
from cogdsl.errors import ShapeError
from cogdsl.language.parse_cog import parse_cog
from cogdsl.tasks import make_task

DRAW = """
model draw_test
input  img: image(size=12)
output x: 144 = sigmoid(w)
draw_read  r(n=3) on img <- dec@prev
lstm       dec(hidden=16) <- r
draw_write w(n=3, size=12) <- dec
"""


def compiled(text: str) -> cogdsl.CompiledModel:
    return cogdsl.compile(parse_cog(text, "test.cog"))


def oracle_filterbank(centre: float, stride: float, variance: float, filters: int, length: int) -> torch.Tensor:
    rows = []
    for i in range(filters):
        mean = centre + (i - filters / 2 + 0.5) * stride
        row = [math.exp(-((a - mean) ** 2) / (2 * variance)) for a in range(length)]
        total = sum(row)
        rows.append([v / total for v in row])
    return torch.tensor(rows, dtype=torch.float64)


def test_filterbank_matches_the_papers_equations() -> None:
    generator = torch.Generator().manual_seed(0)
    centre = torch.rand(4, generator=generator, dtype=torch.float64) * 10
    stride = torch.rand(4, generator=generator, dtype=torch.float64) * 2 + 0.2
    variance = torch.rand(4, generator=generator, dtype=torch.float64) + 0.3
    bank = filterbank(centre, stride, variance, 5, 11)
    for b in range(4):
        expected = oracle_filterbank(float(centre[b]), float(stride[b]), float(variance[b]), 5, 11)
        torch.testing.assert_close(bank[b], expected)


def _placement(module: torch.nn.Module, query: torch.Tensor, side: int, filters: int) -> tuple[float, ...]:
    """(g_x, g_y, delta, variance, gamma) of eq. 21-25 computed by hand from the module's linear layer."""
    raw = module.grid.place(query)[0].tolist()
    grid_x, grid_y, log_variance, log_stride, log_intensity = raw
    return ((side - 1) / 2 * (grid_x + 1), (side - 1) / 2 * (grid_y + 1),
            (side - 1) / (filters - 1) * math.exp(log_stride), math.exp(log_variance), math.exp(log_intensity))


def test_read_is_gamma_fy_x_fx_transposed() -> None:
    torch.manual_seed(1)
    read = DrawRead(6, 9, 4).double()
    query = torch.randn(1, 6, dtype=torch.float64)
    image = torch.rand(1, 9, 9, dtype=torch.float64)
    patch, where = read(query, image)
    centre_x, centre_y, stride, variance, gamma = _placement(read, query, 9, 4)
    filter_x = oracle_filterbank(centre_x, stride, variance, 4, 9)
    filter_y = oracle_filterbank(centre_y, stride, variance, 4, 9)
    expected = torch.zeros(4, 4, dtype=torch.float64)
    for i in range(4):
        for j in range(4):
            expected[i, j] = gamma * sum(filter_y[i, a] * image[0, a, b] * filter_x[j, b]
                                         for a in range(9) for b in range(9))
    torch.testing.assert_close(patch.view(4, 4), expected)
    torch.testing.assert_close(where[0], torch.tensor([centre_x, centre_y, stride, math.sqrt(variance), gamma],
                                                      dtype=torch.float64))


def test_write_adds_the_transposed_filtered_patch_to_the_canvas() -> None:
    torch.manual_seed(2)
    write = DrawWrite(5, 8, 3).double()
    query = torch.randn(1, 5, dtype=torch.float64)
    before = torch.randn(1, 64, dtype=torch.float64)
    canvas, _, state = write(query, None, before)
    centre_x, centre_y, stride, variance, gamma = _placement(write, query, 8, 3)
    filter_x = oracle_filterbank(centre_x, stride, variance, 3, 8)
    filter_y = oracle_filterbank(centre_y, stride, variance, 3, 8)
    patch = write.patch(query).view(3, 3)
    expected = before.view(8, 8).clone()
    for a in range(8):
        for b in range(8):
            written = sum(filter_y[i, a] * patch[i, j] * filter_x[j, b] for i in range(3) for j in range(3))
            expected[a, b] += written / gamma
    torch.testing.assert_close(canvas.view(8, 8), expected)
    assert state is canvas


def test_read_and_write_pass_gradients_to_the_query_and_the_image() -> None:
    torch.manual_seed(3)
    read = DrawRead(4, 6, 3).double()
    write = DrawWrite(4, 6, 3).double()
    query = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    image = torch.rand(2, 6, 6, dtype=torch.float64, requires_grad=True)
    canvas = torch.randn(2, 36, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda q, x: read(q, x)[0], (query, image))
    assert torch.autograd.gradcheck(lambda q, c: write(q, None, c)[0], (query, canvas))


def test_the_canvas_accumulates_over_steps_and_is_the_outputs_logits() -> None:
    torch.manual_seed(4)
    model = compiled(DRAW)
    assert model.parameter_counts()["x"] == 0  # no layer between the canvas and the output
    image = torch.rand(3, 12, 12)
    logits, trace = model(image, steps=4, raw=True, return_weights=True)
    canvases = trace["w:state"]  # (B, T, 144)
    assert canvases.shape == (3, 4, 144)
    torch.testing.assert_close(logits, canvases)
    assert trace["r"].shape == (3, 4, 5)
    # Step t's canvas is step t-1's plus that step's write: replay the steps by hand.
    state = model.initial_state(3, image)
    for t in range(4):
        y, state = model.step({"img": image}, state, raw=True)
        torch.testing.assert_close(y, canvases[:, t])
    assert not torch.allclose(canvases[:, 0], canvases[:, 3])


def test_an_output_of_a_canvas_must_have_its_size() -> None:
    with pytest.raises(ShapeError) as caught:
        compiled(DRAW.replace("output x: 144", "output x: 100"))
    assert "E501" in str(caught.value.diagnostics[0].code)
    assert "144" in caught.value.diagnostics[0].message


def test_reconstruction_task_targets_the_image_at_the_last_step() -> None:
    task = make_task("reconstruct_digits", size=20, height=10, glimpses=3)
    batch = task.sample(5, torch.Generator().manual_seed(0))
    images = batch.inputs["image"]
    assert images.shape == (5, 20, 20) and task.output_size == 400
    assert batch.targets.shape == (5, 3, 400)
    torch.testing.assert_close(batch.targets[:, -1], images.flatten(1))
    assert batch.mask.tolist() == [[0.0, 0.0, 1.0]] * 5
    perfect = torch.where(batch.targets > 0.5, 10.0, -10.0)
    assert task.errors(perfect, batch).tolist() == [0.0] * 5
    flipped = -perfect
    assert (task.errors(flipped, batch) == (images.flatten(1) >= 0).sum(-1).float()).all()  # every pixel wrong


@pytest.mark.parametrize("spec", ["specs/draw_digits.cog", "specs/ram_digits.cog", "specs/stn_digits.cog",
                                  "specs/soft_attention_digits.cog"])
def test_trace_draws_where_an_image_model_looked(spec: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", spec, "--steps", "2", "--out", str(run), "--threads", "1"]) == 0
    capsys.readouterr()
    out = tmp_path / "trace"
    assert main(["trace", spec, str(run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (out / "glimpses.png").stat().st_size > 1000
    assert printed.count("image ") == 4
    expected = {"draw": "pixels on the wrong side", "ram": "glimpse centres by step", "stn": "step 1 samples x",
                "soft": "strongest region by step"}
    assert next(text for key, text in expected.items() if key in spec) in printed
    # A second trace into the same folder is refused without --force, and leaves the picture alone.
    before = (out / "glimpses.png").read_bytes()
    assert main(["trace", spec, str(run), "--out", str(out)]) != 0
    assert (out / "glimpses.png").read_bytes() == before
