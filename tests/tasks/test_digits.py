"""Tests for the cluttered digits task of :mod:`cogdsl.tasks.digits` (``digits``).

The glyphs are checked as bitmaps; :func:`render` is checked for determinism, shapes, range and
devices, for the geometry of a clutter-free digit (its ink sits around the returned centre and
spans ``height`` rows) and for clutter outside the digit's box; the labels are checked against
the pictures by nearest-template classification; the task's batch, mask, loss, errors, reward,
parameters and registration are checked directly.
"""

from __future__ import annotations

import math

import pytest
import torch

from cogdsl.tasks import TASKS, Batch, DigitsTask, TaskParamError, get_task, make_task
from cogdsl.tasks.digits import (
    COLS,
    GLYPHS,
    MAX_ROTATION,
    ROWS,
    SCALE_RANGE,
    draw,
    fragment_size,
    glyph_tensor,
    render,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def pixel_centre(centre: torch.Tensor, size: int) -> torch.Tensor:
    """Normalised [-1, 1] (align_corners=False) -> continuous pixel coordinates (0 .. size)."""
    return (centre + 1.0) * size / 2.0


def ink_mass_centre(images: torch.Tensor) -> torch.Tensor:
    """The ink's centre of mass of each image, (B, 2) x then y, in pixel coordinates (centres at j + 0.5)."""
    size = images.shape[-1]
    cells = torch.arange(size, dtype=torch.float32) + 0.5
    mass = images.sum(dim=(1, 2))
    x = (images.sum(1) * cells).sum(-1) / mass
    y = (images.sum(2) * cells).sum(-1) / mass
    return torch.stack([x, y], -1)


def outside_box(images: torch.Tensor, centre: torch.Tensor, half: float) -> torch.Tensor:
    """(B, size, size) bool: pixels whose centre lies more than ``half`` pixels from ``centre`` in x or y."""
    size = images.shape[-1]
    cells = torch.arange(size, dtype=torch.float32) + 0.5
    pix = pixel_centre(centre, size)
    far_x = (cells[None, :] - pix[:, :1]).abs() > half  # (B, size) columns
    far_y = (cells[None, :] - pix[:, 1:]).abs() > half  # (B, size) rows
    return far_y.unsqueeze(-1) | far_x.unsqueeze(-2)


# ----------------------------------------------------------------------------------------
# Glyphs
# ----------------------------------------------------------------------------------------

def test_glyphs_are_ten_distinct_bitmaps() -> None:
    assert len(GLYPHS) == 10
    for glyph in GLYPHS:
        assert len(glyph) == ROWS and all(len(row) == COLS and set(row) <= {"#", "."} for row in glyph)
    glyphs = glyph_tensor()
    assert glyphs.shape == (10, ROWS, COLS) and glyphs.dtype == torch.float32
    assert ((glyphs == 0) | (glyphs == 1)).all()
    assert (glyphs.sum(dim=(1, 2)) >= 7).all()  # every glyph has ink
    flat = glyphs.flatten(1)
    differing = (flat[:, None, :] != flat[None, :, :]).sum(-1)  # (10, 10) pixels that differ
    off_diagonal = differing[~torch.eye(10, dtype=torch.bool)]
    assert (off_diagonal >= 3).all()
    # the tensor is the strings: digit 1's column 2 is its stem, digit 8 is symmetric left-right
    assert glyphs[1, :, 2].all()
    assert torch.equal(glyphs[8], glyphs[8].flip(-1))


def test_glyph_tensor_is_a_fresh_copy() -> None:
    glyph_tensor().zero_()
    assert glyph_tensor().sum() > 0


# ----------------------------------------------------------------------------------------
# render: determinism, shapes, devices
# ----------------------------------------------------------------------------------------

def test_same_seed_same_images_different_seed_different_images() -> None:
    digits = torch.arange(10).repeat(2)
    a, ca = render(digits, 40, 4, gen(0), height=16)
    b, cb = render(digits, 40, 4, gen(0), height=16)
    c, cc = render(digits, 40, 4, gen(1), height=16)
    assert torch.equal(a, b) and torch.equal(ca, cb)
    assert not torch.allclose(a, c) and not torch.allclose(ca, cc)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("size", "clutter", "height"), [(16, 0, 6), (40, 4, 16), (64, 9, None), (128, 2, 50)])
def test_render_shapes_dtypes_range_device(device: str, size: int, clutter: int, height: int | None) -> None:
    digits = torch.randint(0, 10, (6,), generator=gen(2))
    images, centre = render(digits, size, clutter, gen(3, device), height=height)
    assert images.shape == (6, size, size) and images.dtype == torch.float32
    assert centre.shape == (6, 2) and centre.dtype == torch.float32
    assert images.device.type == device and centre.device.type == device
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert (images.amax(dim=(1, 2)) > 0.5).all()  # every image has a digit
    assert (centre.abs() < 1.0).all()


# ----------------------------------------------------------------------------------------
# render: geometry
# ----------------------------------------------------------------------------------------

def test_clutter_free_ink_is_around_the_centre_and_inside_the_canvas() -> None:
    size, height = 40, 16
    digits = torch.arange(10).repeat(20)
    images, centre = render(digits, size, 0, gen(4), height=height)
    distance = (ink_mass_centre(images) - pixel_centre(centre, size)).norm(dim=-1)
    # the ink's centre of mass is the box centre for the symmetric 0 and 8, within a glyph pixel
    # (16 / 7 canvas pixels) for most digits, and within 4 pixels for the top-heavy 7
    symmetric = (digits == 0) | (digits == 8)
    assert distance[symmetric].max() < 0.6
    assert distance[digits != 7].max() < 2.0
    assert distance.max() < 4.0
    # the transformed box (height 16 * 1.15, rotated 15 degrees) fits in 0.75 * height either way
    assert images[outside_box(images, centre, 0.75 * height)].max() == 0.0
    # the whole digit is on the canvas: nothing on the border
    border = torch.cat([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], -1)
    assert border.max() == 0.0
    # the centres spread over the canvas (translation), not all in the middle
    assert centre.std(0).min() > 0.2


def test_clutter_puts_ink_outside_the_digit_box() -> None:
    size, height = 40, 16
    images, centre = render(torch.arange(10).repeat(10), size, 8, gen(5), height=height)
    outside = (images * outside_box(images, centre, 0.75 * height)).amax(dim=(1, 2))
    assert (outside > 0.5).float().mean() > 0.8


def test_clutter_fragments_are_small_squares() -> None:
    size = 40
    assert fragment_size(size) == 8 and fragment_size(16) == 3
    # one fragment: the same seed draws the same digit, so the difference is the fragment's ink
    digits = torch.arange(10).repeat(5)
    bare, _ = render(digits, size, 0, gen(6), height=16)
    cluttered, _ = render(digits, size, 1, gen(6), height=16)
    extra = (cluttered - bare) > 1e-6  # pixels the fragment added
    assert extra.any(dim=(1, 2)).float().mean() > 0.5
    rows = extra.any(-1).sum(-1)  # (B,) rows the fragment touched
    cols = extra.any(-2).sum(-1)
    assert rows.max() <= fragment_size(size) and cols.max() <= fragment_size(size)


def test_height_is_the_digit_height_in_pixels() -> None:
    size, height = 64, 28
    zero = torch.zeros(1)
    centre = torch.zeros(1, 2)
    eight = draw(torch.tensor([8]), centre, size, height, zero, torch.ones(1), zero)[0]
    rows = (eight.amax(-1) > 0.5).nonzero().flatten()
    cols = (eight.amax(-2) > 0.5).nonzero().flatten()
    assert abs(int(rows[-1] - rows[0]) + 1 - height) <= 2
    assert abs(int(cols[-1] - cols[0]) + 1 - height * COLS / ROWS) <= 2
    # scale 0.5 halves it; a rotation by 90 degrees swaps width and height
    half = draw(torch.tensor([8]), centre, size, height, zero, torch.full((1,), 0.5), zero)[0]
    assert abs(int((half.amax(-1) > 0.5).sum()) - height / 2) <= 2
    turned = draw(torch.tensor([8]), centre, size, height, torch.full((1,), math.pi / 2), torch.ones(1), zero)[0]
    assert abs(int((turned.amax(-2) > 0.5).sum()) - height) <= 2
    assert MAX_ROTATION <= 15.0 and SCALE_RANGE[0] < 1.0 < SCALE_RANGE[1]


def test_labels_match_the_pictures_by_nearest_template() -> None:
    """Each clutter-free image correlates best with its own glyph drawn upright at the same place."""
    size, height, n = 40, 16, 300
    digits = torch.randint(0, 10, (n,), generator=gen(7))
    images, centre = render(digits, size, 0, gen(8), height=height)
    zero, one = torch.zeros(n), torch.ones(n)
    scores = []
    for d in range(10):
        template = draw(torch.full((n,), d), centre, size, height, zero, one, zero)
        a = images.flatten(1) - images.flatten(1).mean(-1, keepdim=True)
        t = template.flatten(1) - template.flatten(1).mean(-1, keepdim=True)
        scores.append((a * t).sum(-1) / (a.norm(dim=-1) * t.norm(dim=-1)))
    predicted = torch.stack(scores, -1).argmax(-1)
    assert (predicted == digits).float().mean() >= 0.95
    # and a wrong label would not pass: shifting the labels by one fails badly
    assert (predicted == (digits + 1) % 10).float().mean() < 0.2


# ----------------------------------------------------------------------------------------
# The task
# ----------------------------------------------------------------------------------------

def test_batch_layout_targets_mask_and_info() -> None:
    task = make_task("digits", size=32, height=12, glimpses=4, clutter=3)
    batch = task.sample(8, gen(9))
    assert isinstance(batch, Batch) and isinstance(batch.inputs, dict)
    assert set(batch.inputs) == {"image"}
    image = batch.inputs["image"]
    assert image.shape == (8, 32, 32) and image.dtype == torch.float32
    assert image.min() >= 0 and image.max() <= 1
    assert batch.steps == 4 and batch.batch_size == 8
    assert batch.targets.dtype == torch.long and batch.targets.shape == (8, 4)
    assert torch.equal(batch.targets, batch.info["digit"].unsqueeze(1).expand(8, 4))
    assert torch.equal(batch.mask, torch.tensor([[0.0, 0.0, 0.0, 1.0]]).expand(8, 4))
    assert batch.info["centre"].shape == (8, 2)
    # an explicit length sets the number of steps, still scoring the last only
    longer = task.sample(3, gen(9), length=6)
    assert longer.steps == 6 and longer.mask.sum().item() == 3 and (longer.mask[:, -1] == 1).all()


def test_task_sample_is_deterministic_and_seeded() -> None:
    task = DigitsTask()
    a, b, c = task.sample(16, gen(10)), task.sample(16, gen(10)), task.sample(16, gen(11))
    assert torch.equal(a.inputs["image"], b.inputs["image"])  # type: ignore[index]
    assert torch.equal(a.targets, b.targets) and torch.equal(a.info["centre"], b.info["centre"])
    assert not torch.equal(a.inputs["image"], c.inputs["image"])  # type: ignore[index]


@pytest.mark.parametrize("device", DEVICES)
def test_task_tensors_follow_the_generator_device(device: str) -> None:
    batch = DigitsTask(glimpses=2).sample(4, gen(12, device))
    tensors = [batch.inputs["image"], batch.targets, batch.mask, *batch.info.values()]  # type: ignore[index]
    assert all(t.device.type == device for t in tensors)


def test_every_class_appears_with_roughly_uniform_frequency() -> None:
    batch = DigitsTask(clutter=0).sample(500, gen(13))
    counts = torch.bincount(batch.info["digit"], minlength=10)
    assert counts.shape == (10,) and (counts > 0).all()
    assert counts.min() >= 25 and counts.max() <= 80  # expected 50 each


def test_sizes_and_declarations() -> None:
    task = DigitsTask()
    assert task.config == {"size": 40, "glimpses": 1, "clutter": 4, "height": 16}
    assert task.input_size == 40 and task.output_size == 10
    assert task.input_kinds == {"image": 40}
    assert task.loss == "ce" and task.error_unit == "wrong digits"
    assert task.length_range() == (1, 1)
    assert make_task("digits", size=64, glimpses=6).input_kinds == {"image": 64}


def test_loss_errors_and_reward_score_the_last_step() -> None:
    task = make_task("digits", size=32, height=12, glimpses=3)
    batch = task.sample(64, gen(14))
    logits = torch.randn(64, 3, 10, generator=gen(15), requires_grad=True)
    loss = task.loss_of(logits, batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert logits.grad is not None
    assert logits.grad[:, :2].abs().max() == 0 and logits.grad[:, 2].abs().max() > 0  # only the last step
    expected = torch.nn.functional.cross_entropy(logits[:, -1], batch.info["digit"])
    assert torch.allclose(loss, expected)

    right = logits[:, -1].argmax(-1) == batch.info["digit"]
    assert 0 < right.sum() < 64
    errors = task.errors(logits, batch)
    assert torch.equal(errors, (~right).float())
    reward = task.reward(logits, batch)
    assert reward.shape == (64,) and torch.equal(reward, right.float())
    # earlier steps do not count: make them all wrong, the last all right
    perfect = torch.nn.functional.one_hot(batch.targets, 10).float()
    perfect[:, :2] = torch.nn.functional.one_hot((batch.targets[:, :2] + 1) % 10, 10).float()
    assert (task.reward(perfect, batch) == 1).all() and (task.errors(perfect, batch) == 0).all()


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"size": 20, "height": 24}, "height"),
        ({"size": 16, "height": 17}, "height"),
        ({"height": 100}, "height"),
        ({"size": 12}, "size"),
        ({"size": 200}, "size"),
        ({"height": 5}, "height"),
        ({"glimpses": 0}, "glimpses"),
        ({"glimpses": 33}, "glimpses"),
        ({"clutter": 65}, "clutter"),
        ({"size": 40.0}, "size"),
        ({"sise": 40}, "sise"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(params: dict[str, object], param: str) -> None:
    with pytest.raises(TaskParamError, match=f"'{param}'") as info:
        make_task("digits", **params)
    assert info.value.param == param and info.value.task == "digits"


def test_height_above_size_names_both() -> None:
    assert DigitsTask(size=16).height == 16  # the default height fits the smallest canvas exactly
    with pytest.raises(TaskParamError, match=r"'height' \(41\) must be <= 'size' \(40\)"):
        DigitsTask(height=41)


def test_registered() -> None:
    assert TASKS["digits"] is get_task("digits") is DigitsTask
    task = make_task("digits", size=32, height=12)
    assert isinstance(task, DigitsTask) and task.size == 32 and task.height == 12
    assert DigitsTask.describe()["name"] == "digits"
    assert [p["name"] for p in DigitsTask.describe()["params"]] == ["size", "glimpses", "clutter", "height"]
