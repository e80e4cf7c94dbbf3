"""Tests for cogdsl.tasks: each task's encoding against a slow Python oracle that reads the
input tensor and recomputes target and mask; determinism; parameter validation; metrics;
the registry."""

from __future__ import annotations

import json
import math

import pytest
import torch

from cogdsl.tasks import (
    TASKS,
    AssociativeRecallTask,
    Batch,
    CopyTask,
    PrioritySortTask,
    RepeatCopyTask,
    Task,
    TaskParam,
    TaskParamError,
    bit_errors,
    get_task,
    make_task,
    sequence_accuracy,
    sequence_loss,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def small(name: str) -> Task:
    """A small instance of each task, for quick oracle checks."""
    return {
        "copy": lambda: CopyTask(bits=5, min_len=1, max_len=7),
        "repeat_copy": lambda: RepeatCopyTask(bits=4, min_len=1, max_len=5, max_repeats=4),
        "associative_recall": lambda: AssociativeRecallTask(bits=4, item_len=2, max_items=5),
        "priority_sort": lambda: PrioritySortTask(bits=5, num_inputs=9, num_outputs=6),
        "graph_traversal": lambda: make_task("graph_traversal", id_bits=4, max_nodes=8),
        "graph_shortest_path": lambda: make_task("graph_shortest_path", id_bits=4, max_nodes=8),
        "graph_inference": lambda: make_task("graph_inference", id_bits=4, max_nodes=8),
    }[name]()


# QA, seq2seq and image tasks have their own files (reconstruct_digits: tests/test_draw.py).
ALL = sorted(name for name, cls in TASKS.items()
             if cls.loss == "bce" and name != "reconstruct_digits" and not cls.reads_files)


# -- oracles: plain Python over lists, reading only the inputs (and declared params) ------


def rows(t: torch.Tensor) -> list[list[float]]:
    return t.tolist()


def copy_oracle(task: CopyTask, inputs: torch.Tensor) -> tuple[list, list]:
    """Targets and mask of one sequence: everything before the delimiter, after it."""
    x = rows(inputs)
    w = task.bits
    d = next(t for t, step in enumerate(x) if step[w] == 1.0)
    seq = [step[:w] for step in x[:d]]
    steps = len(x)
    assert steps == 2 * d + 1
    targets = [[0.0] * w for _ in range(steps)]
    mask = [0.0] * steps
    for i, v in enumerate(seq):
        targets[d + 1 + i] = list(v)
        mask[d + 1 + i] = 1.0
    return targets, mask


def repeat_copy_oracle(
    task: RepeatCopyTask, inputs: torch.Tensor, length: int
) -> tuple[list, list, int]:
    """Targets, mask and decoded count of one sequence of known length."""
    x = rows(inputs)
    w, n_len = task.bits, length
    assert x[0][w] == 1.0 and all(v == 0.0 for v in x[0][:w])
    seq = [step[:w] for step in x[1 : n_len + 1]]
    a, b = task.min_repeats, task.max_repeats
    mean = (a + b) / 2
    var = sum((k - mean) ** 2 for k in range(a, b + 1)) / (b - a + 1)  # computed, not the formula
    std = math.sqrt(var) if var > 0 else 1.0
    n = round(x[n_len + 1][w + 1] * std + mean)
    steps = len(x)
    targets = [[0.0] * (w + 1) for _ in range(steps)]
    out0 = n_len + 2
    for j in range(n * n_len):
        targets[out0 + j][:w] = list(seq[j % n_len])
    targets[out0 + n * n_len][w] = 1.0
    mask = [1.0 if t >= out0 else 0.0 for t in range(steps)]
    return targets, mask, n


def associative_recall_oracle(
    task: AssociativeRecallTask, inputs: torch.Tensor
) -> tuple[list[list], list, int]:
    """Possible targets (successors of every item equal to the query), mask, item count."""
    x = rows(inputs)
    w, k = task.bits, task.item_len
    items: list[list] = []
    t = 0
    while x[t][w + 1] != 1.0:
        assert x[t][w] == 1.0, "every item starts with a delimiter step"
        items.append([step[:w] for step in x[t + 1 : t + 1 + k]])
        t += k + 1
    query = [step[:w] for step in x[t + 1 : t + 1 + k]]
    assert x[t + 1 + k][w + 1] == 1.0, "the query ends with a query delimiter"
    answer_start = t + 2 + k
    steps = len(x)
    assert steps == answer_start + k
    answers = []
    for i, item in enumerate(items[:-1]):
        if item == query:
            answers.append(
                [[0.0] * w for _ in range(answer_start)] + [list(v) for v in items[i + 1]]
            )
    mask = [1.0 if s >= answer_start else 0.0 for s in range(steps)]
    return answers, mask, len(items)


def priority_sort_oracle(
    task: PrioritySortTask, inputs: torch.Tensor, num_outputs: int
) -> tuple[list, list]:
    x = rows(inputs)
    w = task.bits
    d = next(t for t, step in enumerate(x) if step[w + 1] == 1.0)
    tagged = [(step[w], step[:w]) for step in x[:d]]
    ranked = sorted(tagged, key=lambda pv: -pv[0])[:num_outputs]
    steps = len(x)
    assert steps == d + 1 + num_outputs
    targets = [[0.0] * w for _ in range(d + 1)] + [v for _, v in ranked]
    mask = [0.0] * (d + 1) + [1.0] * num_outputs
    return targets, mask


# -- every task: shapes, determinism, dtypes -----------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_shapes_and_sizes(name: str) -> None:
    task = small(name)
    for seed in range(5):
        b = task.sample(3, gen(seed))
        steps = b.inputs.shape[1]
        assert b.inputs.shape == (3, steps, task.input_size)
        assert b.targets.shape == (3, steps, task.output_size)
        assert b.mask.shape == (3, steps)
        for t in (b.inputs, b.targets, b.mask):
            assert t.dtype == torch.float32
        assert set(b.targets.unique().tolist()) <= {0.0, 1.0}
        assert set(b.mask.unique().tolist()) <= {0.0, 1.0}
        # targets are zero wherever the output is not scored
        assert (b.targets * (1 - b.mask).unsqueeze(-1)).abs().sum() == 0


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_batch_different_seed_different(name: str) -> None:
    task = make_task(name)
    a, b, c = task.sample(8, gen(7)), task.sample(8, gen(7)), task.sample(8, gen(8))
    for x, y in ((a.inputs, b.inputs), (a.targets, b.targets), (a.mask, b.mask)):
        assert torch.equal(x, y)
    same_shape = a.inputs.shape == c.inputs.shape
    assert not (same_shape and torch.equal(a.inputs, c.inputs))


def test_global_rng_is_not_used() -> None:
    task = make_task("repeat_copy")
    torch.manual_seed(0)
    a = task.sample(4, gen(3))
    torch.manual_seed(1)
    b = task.sample(4, gen(3))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)


@pytest.mark.parametrize(
    ("name", "kwargs", "steps_of"),
    [
        ("copy", {"min_len": 2, "max_len": 5}, lambda n: 2 * n + 1),
        ("associative_recall", {"item_len": 2, "min_items": 2, "max_items": 5},
         lambda n: n * 3 + 2 * 2 + 2),
    ],
)
def test_length_drawn_uniformly_per_batch(name: str, kwargs: dict, steps_of) -> None:
    task = make_task(name, **kwargs)
    lo, hi = task.length_range()
    seen = {task.sample(2, gen(s)).inputs.shape[1] for s in range(80)}
    assert seen == {steps_of(n) for n in range(lo, hi + 1)}


# -- copy ----------------------------------------------------------------------------------


def test_copy_against_oracle() -> None:
    task = small("copy")
    for seed in range(6):
        b = task.sample(4, gen(seed))
        for i in range(4):
            targets, mask = copy_oracle(task, b.inputs[i])
            assert b.targets[i].tolist() == targets
            assert b.mask[i].tolist() == mask


def test_copy_bits_are_random_and_balanced() -> None:
    b = make_task("copy").sample(64, gen(0), length=20)
    bits = b.inputs[:, :20, :8]
    assert 0.45 < bits.mean().item() < 0.55
    assert b.inputs[:, 20:, :8].abs().sum() == 0  # nothing but the delimiter after the sequence


def test_copy_length_override_beyond_max_len() -> None:
    task = make_task("copy", bits=8, max_len=20)
    b = task.sample(2, gen(0), length=40)
    assert b.inputs.shape == (2, 81, 9)
    assert b.mask.sum(dim=1).tolist() == [40.0, 40.0]
    targets, mask = copy_oracle(task, b.inputs[1])
    assert b.targets[1].tolist() == targets and b.mask[1].tolist() == mask


# -- repeat copy ---------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 3, 5])
def test_repeat_copy_against_oracle(length: int) -> None:
    task = small("repeat_copy")
    counts: set[int] = set()
    for seed in range(4):
        b = task.sample(6, gen(seed), length=length)
        n_max = 0
        for i in range(6):
            targets, mask, n = repeat_copy_oracle(task, b.inputs[i], length)
            assert task.min_repeats <= n <= task.max_repeats
            assert b.targets[i].tolist() == targets
            assert b.mask[i].tolist() == mask
            counts.add(n)
            n_max = max(n_max, n)
        assert b.inputs.shape[1] == length + 3 + n_max * length  # padded to the batch's max
    assert counts == {1, 2, 3, 4}  # counts are drawn per sequence


def test_repeat_copy_count_normalisation() -> None:
    task = RepeatCopyTask(min_repeats=1, max_repeats=10)
    counts = torch.arange(1, 11)
    enc = task.encode_repeats(counts)
    assert enc.mean().abs() < 1e-6
    assert abs(enc.var(unbiased=False).item() - 1.0) < 1e-6
    assert torch.equal(task.decode_repeats(enc), counts)
    single = RepeatCopyTask(min_repeats=3, max_repeats=3)
    assert single.encode_repeats(torch.tensor([3])).item() == 0.0


def test_repeat_copy_overrides_beyond_training_range() -> None:
    task = small("repeat_copy")
    b = task.sample(3, gen(0), length=12, repeats=7)  # max_len=5, max_repeats=4
    assert b.inputs.shape[1] == 12 + 3 + 7 * 12
    for i in range(3):
        targets, mask, n = repeat_copy_oracle(task, b.inputs[i], 12)
        assert n == 7
        assert b.targets[i].tolist() == targets and b.mask[i].tolist() == mask
    with pytest.raises(ValueError, match="repeats"):
        task.sample(3, gen(0), repeats=0)


def test_repeat_copy_scores_silent_tail() -> None:
    task = RepeatCopyTask(bits=3, min_len=2, max_len=2, min_repeats=1, max_repeats=6)
    b = task.sample(32, gen(0))
    ends = b.targets[:, :, 3].argmax(dim=1)  # end-marker step of each sequence
    short = ends < b.inputs.shape[1] - 1
    assert short.any()  # some sequence finished before the padded end...
    assert (b.mask[short, -1] == 1).all()  # ...and its silent tail is still scored


# -- associative recall --------------------------------------------------------------------


def test_associative_recall_against_oracle() -> None:
    task = small("associative_recall")
    for seed in range(8):
        b = task.sample(5, gen(seed))
        for i in range(5):
            answers, mask, n_items = associative_recall_oracle(task, b.inputs[i])
            assert task.min_items <= n_items <= task.max_items
            assert b.targets[i].tolist() in answers
            assert b.mask[i].tolist() == mask


def test_associative_recall_query_is_any_but_last_item() -> None:
    task = AssociativeRecallTask(bits=8, item_len=3, min_items=4, max_items=4)
    b = task.sample(400, gen(0))
    items = b.inputs[:, :16, :8].reshape(400, 4, 4, 8)[:, :, 1:, :]  # (B, N, item_len, bits)
    query = b.inputs[:, 17:20, :8]  # (B, item_len, bits)
    hit = (items == query.unsqueeze(1)).all(dim=(2, 3))  # (B, N)
    positions = hit.float().argmax(dim=1)
    assert set(positions.tolist()) == {0, 1, 2}


def test_associative_recall_length_override() -> None:
    task = small("associative_recall")  # max_items=5
    b = task.sample(2, gen(0), length=40)
    assert b.inputs.shape[1] == 40 * 3 + 2 * 2 + 2
    answers, mask, n_items = associative_recall_oracle(task, b.inputs[0])
    assert n_items == 40 and b.targets[0].tolist() in answers and b.mask[0].tolist() == mask
    with pytest.raises(ValueError, match="length"):
        task.sample(2, gen(0), length=1)


# -- priority sort -------------------------------------------------------------------------


def test_priority_sort_against_oracle() -> None:
    task = small("priority_sort")
    for seed in range(6):
        b = task.sample(4, gen(seed))
        assert b.inputs.shape[1] == 9 + 1 + 6
        for i in range(4):
            targets, mask = priority_sort_oracle(task, b.inputs[i], 6)
            assert b.targets[i].tolist() == targets
            assert b.mask[i].tolist() == mask


def test_priority_sort_priorities_uniform_in_range() -> None:
    b = make_task("priority_sort").sample(64, gen(0))
    p = b.inputs[:, :20, 8]
    assert p.min() >= -1 and p.max() <= 1
    assert p.min() < -0.95 and p.max() > 0.95 and abs(p.mean().item()) < 0.05


@pytest.mark.parametrize(("length", "outputs"), [(40, 16), (5, 5)])
def test_priority_sort_length_means_num_inputs(length: int, outputs: int) -> None:
    task = make_task("priority_sort")  # num_inputs=20, num_outputs=16
    b = task.sample(3, gen(1), length=length)
    assert b.inputs.shape[1] == length + 1 + outputs
    targets, mask = priority_sort_oracle(task, b.inputs[2], outputs)
    assert b.targets[2].tolist() == targets and b.mask[2].tolist() == mask


# -- parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "param", "fragment"),
    [
        ("copy", {"bitz": 8}, "bitz", "did you mean 'bits'"),
        ("copy", {"bits": "8"}, "bits", "an int in [1, 4096]"),
        ("copy", {"bits": 8.0}, "bits", "an int"),
        ("copy", {"bits": True}, "bits", "an int"),
        ("copy", {"bits": 0}, "bits", "in [1, "),
        ("copy", {"min_len": 0}, "min_len", "in [1, "),
        ("copy", {"min_len": 30, "max_len": 20}, "min_len", "'max_len'"),
        ("copy", {"max_len": 0}, "max_len", "in [1, "),
        ("repeat_copy", {"min_repeats": 5, "max_repeats": 2}, "min_repeats", "'max_repeats'"),
        ("repeat_copy", {"max_repeats": -1}, "max_repeats", "in [1, "),
        ("associative_recall", {"min_items": 1}, "min_items", "in [2, "),
        ("associative_recall", {"item_len": "3"}, "item_len", "an int"),
        ("priority_sort", {"num_outputs": 21}, "num_outputs", "'num_inputs'"),
        ("priority_sort", {"num_inputs": 0}, "num_inputs", "in [1, "),
    ],
)
def test_bad_params_raise_naming_the_param(
    name: str, params: dict, param: str, fragment: str
) -> None:
    with pytest.raises(ValueError) as info:
        make_task(name, **params)
    message = str(info.value)
    assert f"'{param}'" in message and fragment in message and name in message
    assert isinstance(info.value, TaskParamError) and info.value.param == param


@pytest.mark.parametrize("name", ALL)
def test_declarations_are_complete_data(name: str) -> None:
    cls = get_task(name)
    assert cls.loss == "bce"
    assert cls.validate_params({}) == cls.defaults()
    names = [p.name for p in cls.params]
    assert len(names) == len(set(names))
    for p in cls.params:
        assert p.type in (int, float, bool, str) and p.doc
    for lo, hi in cls.constraints:
        assert lo in names and hi in names
    described = json.loads(json.dumps(cls.describe()))
    assert [p["name"] for p in described["params"]] == names
    task = cls()
    assert all(getattr(task, n) == v for n, v in cls.defaults().items())


def test_task_param_float_and_choices() -> None:
    rate = TaskParam("rate", float, 0.5, minimum=0.0, maximum=1.0, doc="a rate")
    assert rate.check(1, "t") == 1.0 and isinstance(rate.check(1, "t"), float)
    with pytest.raises(ValueError, match=r"'rate' must be a float in \[0, 1\], got 1.5"):
        rate.check(1.5, "t")
    with pytest.raises(ValueError, match="rate"):
        rate.check(float("nan"), "t")
    mode = TaskParam("mode", str, "a", choices=("a", "b"), doc="a mode")
    assert mode.check("b", "t") == "b"
    with pytest.raises(ValueError, match="one of 'a', 'b'"):
        mode.check("c", "t")


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_sample_rejects_bad_batch_and_length(bad: object) -> None:
    task = make_task("copy")
    with pytest.raises(ValueError, match="batch"):
        task.sample(bad, gen(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="length"):
        task.sample(2, gen(0), length=bad)  # type: ignore[arg-type]


# -- metrics -------------------------------------------------------------------------------


def hand_batch() -> Batch:
    targets = torch.tensor(
        [
            [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]],
            [[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]],
        ]
    )
    mask = torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    return Batch(torch.zeros(2, 3, 1), targets, mask)


def test_bit_errors_counts_exactly_the_flipped_scored_bits() -> None:
    batch = hand_batch()
    perfect = (batch.targets * 2 - 1) * 3.0
    assert bit_errors(perfect, batch).tolist() == [0.0, 0.0]
    assert sequence_accuracy(perfect, batch).item() == 1.0
    logits = perfect.clone()
    logits[0, 1, 0] = -2.0  # scored: wrong
    logits[0, 2, 0] = 0.5  # scored: wrong
    logits[0, 0, 1] = 4.0  # not scored (mask 0): ignored
    logits[1, 2, 1] = 0.0  # scored: logit 0 reads as bit 0, target 0: right
    logits[1, 1, 1] = 0.0  # scored: reads as 0, target 1: wrong
    errors = bit_errors(logits, batch)
    assert errors.dtype == torch.float32 and errors.shape == (2,)
    assert errors.tolist() == [2.0, 1.0]
    assert sequence_accuracy(logits, batch).item() == 0.0


def test_sequence_loss_equals_manual_bce_sum() -> None:
    batch = hand_batch()
    logits = torch.tensor(
        [
            [[0.3, -1.2], [2.0, 0.1], [-0.7, 1.5]],
            [[5.0, -5.0], [0.2, -0.4], [1.1, -2.2]],
        ],
        requires_grad=True,
    )
    total = 0.0
    for b in range(2):
        for t in range(3):
            if batch.mask[b, t] == 0:
                continue
            for o in range(2):
                z, y = logits[b, t, o].item(), batch.targets[b, t, o].item()
                p = 1 / (1 + math.exp(-z))
                total -= y * math.log(p) + (1 - y) * math.log(1 - p)
    loss = sequence_loss(logits, batch)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(total / 2, rel=1e-6)
    loss.backward()
    assert logits.grad is not None and logits.grad[:, 0].abs().sum() == 0  # unscored step


def test_metrics_reject_mismatched_logits() -> None:
    with pytest.raises(ValueError, match="shape"):
        bit_errors(torch.zeros(2, 3, 3), hand_batch())
    with pytest.raises(ValueError, match="shape"):
        sequence_loss(torch.zeros(2, 4, 2), hand_batch())


def test_batch_checks_shapes() -> None:
    with pytest.raises(ValueError, match="agree"):
        Batch(torch.zeros(2, 3, 1), torch.zeros(2, 4, 1), torch.zeros(2, 3))


# -- registry ------------------------------------------------------------------------------


def test_registry() -> None:
    assert set(TASKS) == {
        "copy", "repeat_copy", "associative_recall", "priority_sort",
        "graph_traversal", "graph_shortest_path", "graph_inference", "babi", "babi_joint", "babi_steps",
        "babi_joint_steps", "reverse", "sort", "convex_hull", "caption",
        "stutter", "digits", "reconstruct_digits", "anbn", "anbncn", "anbncndn", "anb2n", "anbmcnm", "mirror",
        "adding", "babi_files", "babi_files_steps", "sequences",
    }
    assert get_task("copy") is CopyTask
    for name, cls in TASKS.items():
        assert cls.name == name
    task = make_task("copy", bits=4)
    assert isinstance(task, CopyTask) and task.input_size == 5 and task.output_size == 4


def test_unknown_task_suggests_closest() -> None:
    with pytest.raises(ValueError, match="did you mean 'copy'"):
        get_task("cpy")
    with pytest.raises(ValueError, match="did you mean 'priority_sort'"):
        make_task("priority-sort")
    with pytest.raises(ValueError, match=r"known tasks: (\w+, )*associative_recall, ") as info:
        get_task("zzzzzz")
    assert "did you mean" not in str(info.value)
