"""The NTM ops against loop-by-loop oracles, gradchecks, invariants and bad input.

The oracles below are deliberately naive: Python floats, explicit loops over batch, head
and slot, the equations exactly as written in DESIGN.md. They share no code with
cogdsl.ops.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from cogdsl import ops

B, H, N, W = 3, 2, 7, 5
DTYPES = [torch.float32, torch.float64]
TOL = {
    torch.float32: {"rtol": 1e-5, "atol": 1e-6},
    torch.float64: {"rtol": 1e-10, "atol": 1e-12},
}

# (N, s): ordinary sizes, and 2s+1 > N (offsets wrap around the memory more than once)
SHIFT_SIZES = [(7, 1), (7, 2), (3, 2), (2, 3), (1, 1)]


# --- oracles -------------------------------------------------------------------------------


def oracle_content(memory, keys, strengths, similarity):
    out = []
    for b in range(len(memory)):
        rows = []
        for h in range(len(keys[b])):
            k = keys[b][h]
            sims = []
            for m in memory[b]:
                dot = sum(x * y for x, y in zip(k, m, strict=True))
                if similarity == "cosine":
                    nk = math.sqrt(sum(x * x for x in k))
                    nm = math.sqrt(sum(x * x for x in m))
                    dot = dot / (nk * nm + 1e-8)
                sims.append(strengths[b][h] * dot)
            top = max(sims)
            exps = [math.exp(x - top) for x in sims]
            rows.append([e / sum(exps) for e in exps])
        out.append(rows)
    return out


def oracle_interpolate(content, previous, gate):
    return [
        [
            [gate[b][h] * c + (1 - gate[b][h]) * p for c, p in zip(content[b][h], previous[b][h], strict=True)]
            for h in range(len(gate[b]))
        ]
        for b in range(len(gate))
    ]


def oracle_shift(weights, shift_weights):
    out = []
    for b in range(len(weights)):
        rows = []
        for h in range(len(weights[b])):
            w, sw = weights[b][h], shift_weights[b][h]
            n, s = len(w), (len(sw) - 1) // 2
            row = []
            for i in range(n):
                total = 0.0
                for k in range(len(sw)):
                    offset = k - s
                    total += w[(i - offset) % n] * sw[k]
                row.append(total)
            rows.append(row)
        out.append(rows)
    return out


def oracle_sharpen(weights, gamma):
    out = []
    for b in range(len(weights)):
        rows = []
        for h in range(len(weights[b])):
            powered = [x ** gamma[b][h] for x in weights[b][h]]
            rows.append([p / sum(powered) for p in powered])
        out.append(rows)
    return out


def oracle_read(memory, weights):
    width = len(memory[0][0])
    return [
        [[sum(w[i] * memory[b][i][j] for i in range(len(w))) for j in range(width)] for w in weights[b]]
        for b in range(len(memory))
    ]


def oracle_write(memory, weights, erase, add):
    out = []
    for b in range(len(memory)):
        slots = []
        for i in range(len(memory[b])):
            row = []
            for j in range(len(memory[b][i])):
                keep, added = 1.0, 0.0
                for h in range(len(weights[b])):
                    keep *= 1 - weights[b][h][i] * erase[b][h][j]
                    added += weights[b][h][i] * add[b][h][j]
                row.append(memory[b][i][j] * keep + added)
            slots.append(row)
        out.append(slots)
    return out


# --- inputs --------------------------------------------------------------------------------


def make_inputs(dtype, b=B, h=H, n=N, w=W, k=3):
    """Fresh random NTM inputs of the ranges the NTM produces (never zeros)."""
    g = {"dtype": dtype}
    return {
        "memory": torch.randn(b, n, w, **g),
        "keys": torch.randn(b, h, w, **g),
        "strengths": F.softplus(torch.randn(b, h, **g)) + 0.5,
        "previous": torch.softmax(torch.randn(b, h, n, **g), -1),
        "weights": torch.softmax(2 * torch.randn(b, h, n, **g), -1),
        "gate": torch.sigmoid(torch.randn(b, h, **g)),
        "shift_weights": torch.softmax(torch.randn(b, h, k, **g), -1),
        "gamma": 1 + F.softplus(torch.randn(b, h, **g)),
        "erase": torch.sigmoid(torch.randn(b, h, w, **g)),
        "add": torch.randn(b, h, w, **g),
    }


def assert_matches(actual: torch.Tensor, expected_lists, dtype) -> None:
    expected = torch.tensor(expected_lists, dtype=torch.float64)
    assert actual.dtype == dtype
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual.double(), expected, **TOL[dtype])


def L(t: torch.Tensor):
    return t.double().tolist()


def assert_distribution(w: torch.Tensor) -> None:
    assert torch.all(w >= 0)
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)))


# --- against the oracles -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_content_weights_matches_oracle(dtype, similarity):
    torch.manual_seed(1)
    x = make_inputs(dtype)
    got = ops.content_weights(x["memory"], x["keys"], x["strengths"], similarity=similarity)
    assert_matches(
        got,
        oracle_content(L(x["memory"]), L(x["keys"]), L(x["strengths"]), similarity),
        dtype,
    )
    assert_distribution(got)


@pytest.mark.parametrize("dtype", DTYPES)
def test_interpolate_matches_oracle(dtype):
    torch.manual_seed(2)
    x = make_inputs(dtype)
    got = ops.interpolate(x["weights"], x["previous"], x["gate"])
    assert_matches(got, oracle_interpolate(L(x["weights"]), L(x["previous"]), L(x["gate"])), dtype)
    assert_distribution(got)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n", "s"), SHIFT_SIZES)
def test_shift_matches_oracle(dtype, n, s):
    torch.manual_seed(3)
    x = make_inputs(dtype, n=n, k=2 * s + 1)
    got = ops.shift(x["weights"], x["shift_weights"])
    assert_matches(got, oracle_shift(L(x["weights"]), L(x["shift_weights"])), dtype)
    assert_distribution(got)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sharpen_matches_oracle(dtype):
    torch.manual_seed(4)
    x = make_inputs(dtype)
    gamma = x["gamma"] * 3  # up to ~10: a real sharpening
    got = ops.sharpen(x["weights"], gamma)
    assert_matches(got, oracle_sharpen(L(x["weights"]), L(gamma)), dtype)
    assert_distribution(got)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("similarity", ["cosine", "dot"])
@pytest.mark.parametrize(("n", "s"), [(7, 1), (7, 2), (3, 2)])
def test_ntm_address_matches_oracle(dtype, similarity, n, s):
    torch.manual_seed(5)
    x = make_inputs(dtype, n=n, k=2 * s + 1)
    got = ops.ntm_address(
        x["memory"],
        x["previous"],
        x["keys"],
        x["strengths"],
        x["gate"],
        x["shift_weights"],
        x["gamma"],
        similarity=similarity,
    )
    expected = oracle_content(L(x["memory"]), L(x["keys"]), L(x["strengths"]), similarity)
    expected = oracle_interpolate(expected, L(x["previous"]), L(x["gate"]))
    expected = oracle_shift(expected, L(x["shift_weights"]))
    expected = oracle_sharpen(expected, L(x["gamma"]))
    assert_matches(got, expected, dtype)
    assert_distribution(got)


@pytest.mark.parametrize("dtype", DTYPES)
def test_read_matches_oracle(dtype):
    torch.manual_seed(6)
    x = make_inputs(dtype)
    got = ops.read(x["memory"], x["weights"])
    assert got.shape == (B, H, W)
    assert_matches(got, oracle_read(L(x["memory"]), L(x["weights"])), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("heads", [1, 2, 3])
def test_write_matches_oracle(dtype, heads):
    torch.manual_seed(7)
    x = make_inputs(dtype, h=heads)
    got = ops.write(x["memory"], x["weights"], x["erase"], x["add"])
    assert got.shape == (B, N, W)
    assert_matches(
        got,
        oracle_write(L(x["memory"]), L(x["weights"]), L(x["erase"]), L(x["add"])),
        dtype,
    )


def test_write_two_heads_equals_formula():
    torch.manual_seed(8)
    x = make_inputs(torch.float64, h=2)
    m, w, e, a = x["memory"], x["weights"], x["erase"], x["add"]
    got = ops.write(m, w, e, a)
    for b in range(B):
        expected = (
            m[b] * (1 - torch.outer(w[b, 0], e[b, 0])) * (1 - torch.outer(w[b, 1], e[b, 1]))
            + torch.outer(w[b, 0], a[b, 0])
            + torch.outer(w[b, 1], a[b, 1])
        )
        torch.testing.assert_close(got[b], expected)


def test_write_worked_example_from_design():
    w = torch.tensor([[[0.1, 0.2, 0.5, 0.1, 0.1]]], dtype=torch.float64)  # (1, 1, 5)
    memory = torch.tensor(
        [
            [
                [5, 11, 3, 4, 3],
                [7, 6, 7, 2, 5],
                [9, 3, 3, 5, 12],
                [2, 1, 10, 9, 8],
                [12, 2, 6, 9, 4],
            ]
        ],
        dtype=torch.float64,
    )  # (1, 5, 5): one slot per row
    erase = torch.tensor([[[1.0, 0.7, 0.2, 0.5, 0.0]]], dtype=torch.float64)
    add = torch.tensor([[[3, 4, -2, 0, 2]]], dtype=torch.float64)
    got = ops.write(memory, w, erase, add)
    torch.testing.assert_close(got[0, 0], torch.tensor([4.8, 10.63, 2.74, 3.8, 3.2], dtype=torch.float64))
    torch.testing.assert_close(got[0, 2], torch.tensor([6.0, 3.95, 1.7, 3.75, 13.0], dtype=torch.float64))


# --- gradients -----------------------------------------------------------------------------


def _grad_inputs(k=3, n=5):
    x = make_inputs(torch.float64, b=2, h=2, n=n, w=3, k=k)
    return {name: t.detach().requires_grad_(True) for name, t in x.items()}


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_gradcheck_content_weights(similarity):
    torch.manual_seed(10)
    x = _grad_inputs()
    assert torch.autograd.gradcheck(
        lambda m, k, s: ops.content_weights(m, k, s, similarity=similarity),
        (x["memory"], x["keys"], x["strengths"]),
    )


def test_gradcheck_interpolate():
    torch.manual_seed(11)
    x = _grad_inputs()
    assert torch.autograd.gradcheck(ops.interpolate, (x["weights"], x["previous"], x["gate"]))


@pytest.mark.parametrize(("n", "s"), [(5, 1), (5, 2), (3, 2)])
def test_gradcheck_shift(n, s):
    torch.manual_seed(12)
    x = _grad_inputs(k=2 * s + 1, n=n)
    assert torch.autograd.gradcheck(ops.shift, (x["weights"], x["shift_weights"]))


def test_gradcheck_sharpen():
    torch.manual_seed(13)
    x = _grad_inputs()
    assert torch.autograd.gradcheck(ops.sharpen, (x["weights"], x["gamma"]))


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_gradcheck_ntm_address(similarity):
    torch.manual_seed(14)
    x = _grad_inputs()
    args = tuple(
        x[k]
        for k in (
            "memory",
            "previous",
            "keys",
            "strengths",
            "gate",
            "shift_weights",
            "gamma",
        )
    )
    assert torch.autograd.gradcheck(lambda *a: ops.ntm_address(*a, similarity=similarity), args)


def test_gradcheck_read():
    torch.manual_seed(15)
    x = _grad_inputs()
    assert torch.autograd.gradcheck(ops.read, (x["memory"], x["weights"]))


def test_gradcheck_write():
    torch.manual_seed(16)
    x = _grad_inputs()
    assert torch.autograd.gradcheck(ops.write, (x["memory"], x["weights"], x["erase"], x["add"]))


# --- invariants ----------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "s"), SHIFT_SIZES)
def test_shift_offset_plus_one_moves_focus_to_next_slot(n, s):
    eye = torch.eye(n, dtype=torch.float64)
    # (N, 1, N): batch element i has all its weight on slot i
    weights = eye.unsqueeze(1)
    shift_weights = torch.zeros(n, 1, 2 * s + 1, dtype=torch.float64)
    shift_weights[..., s + 1] = 1.0  # offset +1
    got = ops.shift(weights, shift_weights)
    torch.testing.assert_close(got, eye.roll(1, dims=-1).unsqueeze(1))
    assert got[0, 0, 1 % n] == 1.0


def test_shift_offset_minus_s_moves_focus_back():
    n, s = 7, 2
    weights = torch.zeros(1, 1, n, dtype=torch.float64)
    weights[0, 0, 1] = 1.0
    shift_weights = torch.zeros(1, 1, 2 * s + 1, dtype=torch.float64)
    shift_weights[..., 0] = 1.0  # offset -2
    got = ops.shift(weights, shift_weights)
    assert got[0, 0].argmax().item() == (1 - 2) % n
    assert got[0, 0].max().item() == 1.0


def test_sharpen_gamma_one_is_identity():
    torch.manual_seed(20)
    x = make_inputs(torch.float64)
    got = ops.sharpen(x["weights"], torch.ones(B, H, dtype=torch.float64))
    torch.testing.assert_close(got, x["weights"])


def test_sharpen_concentrates_weight():
    torch.manual_seed(21)
    x = make_inputs(torch.float64)
    got = ops.sharpen(x["weights"], torch.full((B, H), 3.0, dtype=torch.float64))
    assert torch.all(got.amax(-1) > x["weights"].amax(-1))
    assert torch.equal(got.argmax(-1), x["weights"].argmax(-1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sharpen_with_exact_zeros_and_huge_gamma_is_finite(dtype):
    torch.manual_seed(22)
    weights = torch.softmax(torch.randn(B, H, N, dtype=dtype), -1)
    weights[:, :, :3] = 0.0
    weights = (weights / weights.sum(-1, keepdim=True)).requires_grad_(True)
    gamma = torch.tensor([[1.0, 2.5]] * (B - 1) + [[200.0, 1.0]], dtype=dtype, requires_grad=True)
    out = ops.sharpen(weights, gamma)
    assert torch.isfinite(out).all()
    assert_distribution(out)
    one = torch.tensor(1.0, dtype=dtype)
    torch.testing.assert_close(out[-1, 0].amax(), one)  # γ=200: one-hot
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(weights.grad).all()
    assert torch.isfinite(gamma.grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_zero_memory_gives_finite_weights_and_gradients(dtype, similarity):
    torch.manual_seed(23)
    x = make_inputs(dtype)
    memory = torch.zeros(B, N, W, dtype=dtype, requires_grad=True)
    keys = x["keys"].requires_grad_(True)
    strengths = x["strengths"].requires_grad_(True)
    out = ops.content_weights(memory, keys, strengths, similarity=similarity)
    # nothing to prefer: uniform
    torch.testing.assert_close(out, torch.full_like(out, 1 / N))
    (out * torch.randn_like(out)).sum().backward()
    for t in (memory, keys, strengths):
        assert t.grad is not None
        assert torch.isfinite(t.grad).all()


def test_zero_memory_and_zero_key_through_ntm_address_are_finite():
    torch.manual_seed(24)
    x = make_inputs(torch.float32)
    inputs = {
        "memory": torch.zeros(B, N, W),
        "previous": x["previous"],
        "keys": torch.zeros(B, H, W),
        "strengths": x["strengths"],
        "gate": x["gate"],
        "shift_weights": x["shift_weights"],
        "gamma": x["gamma"],
    }
    inputs = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    out = ops.ntm_address(**inputs)
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    for name, t in inputs.items():
        assert torch.isfinite(t.grad).all(), name


def test_interpolate_gate_extremes():
    torch.manual_seed(25)
    x = make_inputs(torch.float64)
    ones, zeros = (
        torch.ones(B, H, dtype=torch.float64),
        torch.zeros(B, H, dtype=torch.float64),
    )
    torch.testing.assert_close(ops.interpolate(x["weights"], x["previous"], ones), x["weights"])
    torch.testing.assert_close(ops.interpolate(x["weights"], x["previous"], zeros), x["previous"])


def test_read_one_hot_returns_the_slot():
    torch.manual_seed(26)
    memory = torch.randn(B, N, W)
    weights = torch.zeros(B, H, N)
    weights[:, 0, 4] = 1.0
    weights[:, 1, 6] = 1.0
    got = ops.read(memory, weights)
    torch.testing.assert_close(got[:, 0], memory[:, 4])
    torch.testing.assert_close(got[:, 1], memory[:, 6])


# --- bad input -----------------------------------------------------------------------------


def _bad_shape_cases():
    m, k, s = torch.randn(2, 7, 5), torch.randn(2, 3, 5), torch.rand(2, 3)
    w, sw = torch.rand(2, 3, 7), torch.rand(2, 3, 3)
    e, a = torch.rand(2, 3, 5), torch.rand(2, 3, 5)
    return [
        (
            "write: erase has shape (2, 3, 7) but memory width is 5 (expected (2, 3, 5))",
            lambda: ops.write(m, w, torch.rand(2, 3, 7), a),
        ),
        (
            "write: weights has shape (2, 3, 6)",
            lambda: ops.write(m, torch.rand(2, 3, 6), e, a),
        ),
        (
            "write: add has shape (2, 4, 5)",
            lambda: ops.write(m, w, e, torch.rand(2, 4, 5)),
        ),
        (
            "write: memory must have 3 dimensions (B, N, W) but has shape (7, 5)",
            lambda: ops.write(m[0], w, e, a),
        ),
        (
            "content_weights: keys has shape (2, 3, 4)",
            lambda: ops.content_weights(m, torch.randn(2, 3, 4), s),
        ),
        (
            "content_weights: strengths has shape (2, 2)",
            lambda: ops.content_weights(m, k, torch.rand(2, 2)),
        ),
        (
            "content_weights: keys has shape (1, 3, 5) but memory batch size is 2",
            lambda: ops.content_weights(m, torch.randn(1, 3, 5), s),
        ),
        (
            "content_weights: strengths must have 2 dimensions (B, H) but has shape (2, 3, 1)",
            lambda: ops.content_weights(m, k, s.unsqueeze(-1)),
        ),
        (
            "interpolate: previous has shape (2, 3, 6)",
            lambda: ops.interpolate(w, torch.rand(2, 3, 6), s),
        ),
        (
            "interpolate: gate must have 2 dimensions (B, H) but has shape (2,)",
            lambda: ops.interpolate(w, w, s[:, 0]),
        ),
        (
            "shift: shift_weights has shape (2, 2, 3)",
            lambda: ops.shift(w, torch.rand(2, 2, 3)),
        ),
        (
            "shift: shift_weights has shape (2, 3, 4) but its last dimension must be odd",
            lambda: ops.shift(w, torch.rand(2, 3, 4)),
        ),
        ("sharpen: gamma has shape (3, 3)", lambda: ops.sharpen(w, torch.rand(3, 3))),
        (
            "read: weights has shape (2, 3, 8) but memory slot count is 7",
            lambda: ops.read(m, torch.rand(2, 3, 8)),
        ),
        (
            "ntm_address: gamma has shape (2, 4)",
            lambda: ops.ntm_address(m, w, k, s, s, sw, torch.rand(2, 4)),
        ),
        (
            "ntm_address: previous has shape (2, 3, 6)",
            lambda: ops.ntm_address(m, torch.rand(2, 3, 6), k, s, s, sw, s),
        ),
    ]


@pytest.mark.parametrize(
    ("message", "call"),
    _bad_shape_cases(),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_shapes_raise_value_error_naming_the_shapes(message, call):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_unknown_similarity_names_the_allowed_values():
    torch.manual_seed(30)
    x = make_inputs(torch.float32)
    with pytest.raises(ValueError, match=r"'cosine'.*'dot'") as info:
        ops.content_weights(x["memory"], x["keys"], x["strengths"], similarity="euclid")
    assert "euclid" in str(info.value)
    with pytest.raises(ValueError, match=r"'cosine'.*'dot'"):
        ops.ntm_address(
            x["memory"],
            x["previous"],
            x["keys"],
            x["strengths"],
            x["gate"],
            x["shift_weights"],
            x["gamma"],
            similarity="l2",
        )


def test_non_tensor_argument_raises_type_error():
    with pytest.raises(TypeError, match=r"read: weights must be a torch.Tensor"):
        ops.read(torch.randn(2, 7, 5), [[0.5, 0.5]])


def test_shape_checks_still_run_after_valid_calls_are_remembered():
    torch.manual_seed(31)
    x = make_inputs(torch.float32)
    m, w, e, a = x["memory"], x["weights"], x["erase"], x["add"]
    first = ops.write(m, w, e, a)
    torch.testing.assert_close(ops.write(m, w, e, a), first)  # remembered shapes
    with pytest.raises(ValueError, match=r"write: add has shape \(3, 2, 4\)"):
        ops.write(m, w, e, a[..., :4])
    with pytest.raises(TypeError, match=r"write: erase must be a torch.Tensor"):
        ops.write(m, w, e.tolist(), a)
