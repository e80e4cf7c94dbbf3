"""The DNC memory-management ops against loop-by-loop oracles, gradchecks, invariants and bad input.

The oracles below are deliberately naive: Python floats, explicit loops over batch, head and
slot, the equations of Graves et al. (2016), Methods, exactly as written there. They share no
code with cogdsl.ops.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from cogdsl import ops

B = 3
DTYPES = [torch.float32, torch.float64]
TOL = {
    torch.float32: {"rtol": 1e-5, "atol": 1e-6},
    torch.float64: {"rtol": 1e-10, "atol": 1e-12},
}
#: How far an invariant may be missed by rounding.
SLACK = {torch.float32: 1e-6, torch.float64: 1e-12}
SIZES = [1, 2, 7, 13]
HEADS = [1, 3]

Vec = list[float]
Mat = list[list[float]]


@pytest.fixture(autouse=True)
def _no_env_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are of the PyTorch reference: a COGDSL_BACKEND in the environment must not change that."""
    monkeypatch.delenv("COGDSL_BACKEND", raising=False)


# --- oracles -------------------------------------------------------------------------------


def oracle_usage(usage: Mat, write_weights: Mat, read_weights: list[Mat], free_gates: Mat) -> Mat:
    """u' = (u + w − u∘w) ∘ Π_r (1 − f_r w_r)."""
    out = []
    for b in range(len(usage)):
        row = []
        for i in range(len(usage[b])):
            u, w = usage[b][i], write_weights[b][i]
            retention = 1.0
            for r in range(len(free_gates[b])):
                retention *= 1 - free_gates[b][r] * read_weights[b][r][i]
            row.append((u + w - u * w) * retention)
        out.append(row)
    return out


def oracle_allocation(usage: Mat) -> Mat:
    """a[φ_j] = (1 − u[φ_j]) Π_{i<j} u[φ_i], φ the slots by ascending usage, ties by slot index."""
    out = []
    for u in usage:
        order = sorted(range(len(u)), key=lambda i: (u[i], i))
        a = [0.0] * len(u)
        before = 1.0
        for slot in order:
            a[slot] = (1 - u[slot]) * before
            before *= u[slot]
        out.append(a)
    return out


def oracle_allocation_jacobian(u: Vec) -> Mat:
    """J[j][k] = ∂a[j]/∂u[k] for one row, the sort order held fixed, every product multiplied out (no division)."""
    n = len(u)
    order = sorted(range(n), key=lambda i: (u[i], i))
    position = {slot: p for p, slot in enumerate(order)}
    jac = [[0.0] * n for _ in range(n)]
    for j in range(n):
        earlier = order[: position[j]]
        for k in range(n):
            if k == j:
                d = -1.0
                for i in earlier:
                    d *= u[i]
            elif position[k] < position[j]:
                d = 1 - u[j]
                for i in earlier:
                    if i != k:
                        d *= u[i]
            else:
                d = 0.0
            jac[j][k] = d
    return jac


def oracle_link(link: list[Mat], precedence: Mat, write_weights: Mat) -> tuple[list[Mat], Mat]:
    """L'[i,j] = (1 − w_i − w_j) L[i,j] + w_i p[j] (i ≠ j), L'[i,i] = 0; p' = (1 − Σ_i w_i) p + w (old p in L')."""
    new_link, new_precedence = [], []
    for b in range(len(link)):
        w, p, n = write_weights[b], precedence[b], len(precedence[b])
        rows = []
        for i in range(n):
            rows.append([0.0 if i == j else (1 - w[i] - w[j]) * link[b][i][j] + w[i] * p[j] for j in range(n)])
        new_link.append(rows)
        written = 0.0
        for i in range(n):
            written += w[i]
        new_precedence.append([(1 - written) * p[j] + w[j] for j in range(n)])
    return new_link, new_precedence


def oracle_directional(link: list[Mat], read_weights: list[Mat]) -> tuple[list[Mat], list[Mat]]:
    """forward f[r,i] = Σ_j L[i,j] w_r[j], backward b[r,i] = Σ_j L[j,i] w_r[j]."""
    forward, backward = [], []
    for b in range(len(link)):
        n = len(link[b])
        f_rows, b_rows = [], []
        for w in read_weights[b]:
            f_row, b_row = [], []
            for i in range(n):
                f, bk = 0.0, 0.0
                for j in range(n):
                    f += link[b][i][j] * w[j]
                    bk += link[b][j][i] * w[j]
                f_row.append(f)
                b_row.append(bk)
            f_rows.append(f_row)
            b_rows.append(b_row)
        forward.append(f_rows)
        backward.append(b_rows)
    return forward, backward


# --- inputs --------------------------------------------------------------------------------


def make_inputs(
    dtype: torch.dtype, seed: int, n: int, r: int = 2, b: int = B, link_steps: int = 4
) -> dict[str, Tensor]:
    """Fresh seeded inputs of the ranges a DNC produces.

    Write weights are a sub-distribution (softmax × a write gate), read weights softmax rows,
    free gates sigmoids, usage in [0, 1]; the link and precedence come from ``link_steps`` writes
    through the oracle, from zero (so the link is in [0, 1] with a zero diagonal).
    """
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    def write_weights() -> Tensor:
        return torch.softmax(2 * randn(b, n), -1) * torch.sigmoid(randn(b, 1))

    link: list[Mat] = [[[0.0] * n for _ in range(n)] for _ in range(b)]
    precedence: Mat = [[0.0] * n for _ in range(b)]
    for _ in range(link_steps):
        link, precedence = oracle_link(link, precedence, write_weights().tolist())
    x = {
        "usage": torch.rand(b, n, generator=g, dtype=torch.float64),
        "write_weights": write_weights(),
        "read_weights": torch.softmax(2 * randn(b, r, n), -1),
        "free_gates": torch.sigmoid(randn(b, r)),
        "link": torch.tensor(link, dtype=torch.float64).reshape(b, n, n),
        "precedence": torch.tensor(precedence, dtype=torch.float64).reshape(b, n),
    }
    return {k: v.to(dtype) for k, v in x.items()}


def distinct_usage(seed: int, n: int, b: int = B) -> Tensor:
    """(B, N) float64 usages without ties, spaced at least 0.9/N apart in (0.05, 0.95) (safe for gradcheck)."""
    g = torch.Generator().manual_seed(seed)
    grid = torch.linspace(0.05, 0.95, n + 2, dtype=torch.float64)[1:-1]
    jitter = (torch.rand(b, n, generator=g, dtype=torch.float64) - 0.5) * (0.3 / (n + 1))
    return torch.stack([grid[torch.randperm(n, generator=g)] for _ in range(b)]) + jitter


def L(t: Tensor) -> list:
    return t.double().tolist()


def assert_matches(actual: Tensor, expected_lists: list, dtype: torch.dtype) -> None:
    expected = torch.tensor(expected_lists, dtype=torch.float64)
    assert actual.dtype == dtype
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual.double(), expected, **TOL[dtype])


# --- against the oracles -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("r", HEADS)
@pytest.mark.parametrize("n", SIZES)
def test_usage_matches_oracle(dtype: torch.dtype, n: int, r: int) -> None:
    x = make_inputs(dtype, 100 + 10 * n + r, n, r)
    got = ops.dnc_usage(x["usage"], x["write_weights"], x["read_weights"], x["free_gates"])
    want = oracle_usage(L(x["usage"]), L(x["write_weights"]), L(x["read_weights"]), L(x["free_gates"]))
    assert_matches(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", SIZES)
def test_allocation_matches_oracle(dtype: torch.dtype, n: int) -> None:
    x = make_inputs(dtype, 200 + n, n)
    got = ops.dnc_allocation(x["usage"])
    assert_matches(got, oracle_allocation(L(x["usage"])), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_allocation_with_ties_and_zeros_matches_oracle(dtype: torch.dtype) -> None:
    """Exact ties (including at 0 and 1) go to the lower slot index first, as in a stable sort."""
    usage = torch.tensor(
        [
            [0.5, 0.25, 0.5, 0.0, 0.25, 0.0, 0.75],
            [1.0, 0.5, 1.0, 0.5, 0.5, 1.0, 0.125],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ],
        dtype=dtype,
    )
    got = ops.dnc_allocation(usage)
    want = oracle_allocation(L(usage))
    assert_matches(got, want, dtype)
    # The first zero-usage slot gets everything; the tied second (and later) zeros nothing.
    assert got[0, 3].item() == 1.0 and got[0, 5].item() == 0.0
    assert got[2].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    # Row 1 by hand: order 6, 1, 3, 4, 0, 2, 5; a[6] = 0.875, a[1] = 0.5·0.125, a[3] = 0.5·0.0625, …, then 0s.
    torch.testing.assert_close(
        got[1].double(),
        torch.tensor([0.0, 0.0625, 0.0, 0.03125, 0.015625, 0.0, 0.875], dtype=torch.float64),
        **TOL[dtype],
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", SIZES)
def test_link_matches_oracle(dtype: torch.dtype, n: int) -> None:
    x = make_inputs(dtype, 300 + n, n)
    link, precedence = ops.dnc_link(x["link"], x["precedence"], x["write_weights"])
    want_link, want_precedence = oracle_link(L(x["link"]), L(x["precedence"]), L(x["write_weights"]))
    assert_matches(link, want_link, dtype)
    assert_matches(precedence, want_precedence, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("r", HEADS)
@pytest.mark.parametrize("n", SIZES)
def test_directional_matches_oracle(dtype: torch.dtype, n: int, r: int) -> None:
    x = make_inputs(dtype, 400 + 10 * n + r, n, r)
    forward, backward = ops.dnc_directional(x["link"], x["read_weights"])
    want_forward, want_backward = oracle_directional(L(x["link"]), L(x["read_weights"]))
    assert_matches(forward, want_forward, dtype)
    assert_matches(backward, want_backward, dtype)


@pytest.mark.parametrize("n", SIZES)
def test_directional_on_an_asymmetric_dense_link(n: int) -> None:
    """A dense random matrix (not a link a DNC would make) tells L w from Lᵀ w apart in every entry."""
    g = torch.Generator().manual_seed(450 + n)
    link = torch.rand(B, n, n, generator=g, dtype=torch.float64)
    weights = torch.rand(B, 3, n, generator=g, dtype=torch.float64)
    forward, backward = ops.dnc_directional(link, weights)
    want_forward, want_backward = oracle_directional(L(link), L(weights))
    assert_matches(forward, want_forward, torch.float64)
    assert_matches(backward, want_backward, torch.float64)


# --- gradients -----------------------------------------------------------------------------


def _leaves(*tensors: Tensor) -> tuple[Tensor, ...]:
    return tuple(t.detach().double().clone().requires_grad_(True) for t in tensors)


@pytest.mark.parametrize("r", HEADS)
@pytest.mark.parametrize("n", [1, 2, 7])
def test_gradcheck_usage(n: int, r: int) -> None:
    x = make_inputs(torch.float64, 500 + 10 * n + r, n, r)
    args = _leaves(x["usage"], x["write_weights"], x["read_weights"], x["free_gates"])
    assert torch.autograd.gradcheck(ops.dnc_usage, args)


@pytest.mark.parametrize("n", [1, 2, 7, 13])
def test_gradcheck_allocation(n: int) -> None:
    (usage,) = _leaves(distinct_usage(600 + n, n))
    assert torch.autograd.gradcheck(ops.dnc_allocation, (usage,))


@pytest.mark.parametrize("n", [1, 2, 7])
def test_gradcheck_link(n: int) -> None:
    x = make_inputs(torch.float64, 700 + n, n)
    args = _leaves(x["link"], x["precedence"], x["write_weights"])
    assert torch.autograd.gradcheck(ops.dnc_link, args)


@pytest.mark.parametrize("r", HEADS)
@pytest.mark.parametrize("n", [1, 2, 7])
def test_gradcheck_directional(n: int, r: int) -> None:
    x = make_inputs(torch.float64, 800 + 10 * n + r, n, r)
    args = _leaves(x["link"], x["read_weights"])
    assert torch.autograd.gradcheck(ops.dnc_directional, args)


ALLOCATION_ROWS = {
    "distinct": [0.3, 0.9, 0.1, 0.6, 0.45, 0.8, 0.2],
    "ties": [0.5, 0.25, 0.5, 0.75, 0.25, 0.5, 0.125],
    "one_zero": [0.3, 0.9, 0.0, 0.6, 0.45, 0.8, 0.2],
    "zeros_and_ones": [0.0, 1.0, 0.5, 0.0, 1.0, 0.25, 0.0],
    "all_zero": [0.0] * 7,
    "all_one": [1.0] * 7,
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", sorted(ALLOCATION_ROWS))
def test_allocation_gradient_matches_oracle_jacobian(dtype: torch.dtype, case: str) -> None:
    """With ties and zeros the gradient is the sort-order-fixed one, finite, and never divides by a usage."""
    row = ALLOCATION_ROWS[case]
    usage = torch.tensor([row, row[::-1], row[3:] + row[:3]], dtype=dtype, requires_grad=True)
    upstream = torch.randn(usage.shape, generator=torch.Generator().manual_seed(900), dtype=dtype)
    (grad,) = torch.autograd.grad(ops.dnc_allocation(usage), usage, upstream)
    assert torch.isfinite(grad).all(), f"{case}: non-finite allocation gradient {grad}"
    want = []
    for u, g in zip(L(usage), L(upstream), strict=True):
        jac = oracle_allocation_jacobian(u)
        want.append([sum(g[j] * jac[j][k] for j in range(len(u))) for k in range(len(u))])
    assert_matches(grad, want, dtype)


# --- invariants ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", SIZES)
def test_allocation_is_a_sub_distribution_with_mass_one_minus_product_of_usage(dtype: torch.dtype, n: int) -> None:
    x = make_inputs(dtype, 1000 + n, n)
    for usage in (x["usage"], x["usage"] ** 0.1, x["usage"] ** 5):  # mostly full, mostly empty
        a = ops.dnc_allocation(usage)
        assert a.dtype == dtype and a.shape == usage.shape
        assert torch.all(a >= 0)
        assert torch.all(a.sum(-1) <= 1 + SLACK[dtype])
        torch.testing.assert_close(a.sum(-1), 1 - torch.prod(usage, -1), **TOL[dtype])


@pytest.mark.parametrize("n", [2, 7, 13])
def test_allocation_of_a_single_empty_slot_is_one_hot_there(n: int) -> None:
    g = torch.Generator().manual_seed(1100 + n)
    usage = 0.01 + 0.99 * torch.rand(B, n, generator=g, dtype=torch.float64)
    empty = torch.randint(0, n, (B,), generator=g)
    usage[torch.arange(B), empty] = 0.0
    a = ops.dnc_allocation(usage)
    torch.testing.assert_close(a, torch.nn.functional.one_hot(empty, n).double(), rtol=0, atol=0)


def test_allocation_of_several_empty_slots_goes_to_the_lowest_index() -> None:
    usage = torch.tensor([[0.5, 0.0, 0.3, 0.0, 0.0], [0.0, 0.2, 0.0, 0.9, 0.1]], dtype=torch.float64)
    a = ops.dnc_allocation(usage)
    assert a.tolist() == [[0.0, 1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", SIZES)
def test_allocation_of_a_full_memory_is_zero(dtype: torch.dtype, n: int) -> None:
    a = ops.dnc_allocation(torch.ones(B, n, dtype=dtype))
    assert a.dtype == dtype and a.shape == (B, n)
    assert torch.all(a == 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("r", HEADS)
@pytest.mark.parametrize("n", SIZES)
def test_usage_stays_in_unit_interval_over_steps(dtype: torch.dtype, n: int, r: int) -> None:
    x = make_inputs(dtype, 1200 + 10 * n + r, n, r)
    g = torch.Generator().manual_seed(1250 + 10 * n + r)
    usage = x["usage"]
    for step in range(8):
        write = torch.softmax(3 * torch.randn(B, n, generator=g, dtype=dtype), -1)
        write = write * torch.rand(B, 1, generator=g, dtype=dtype)
        read = torch.softmax(3 * torch.randn(B, r, n, generator=g, dtype=dtype), -1)
        free = torch.rand(B, r, generator=g, dtype=dtype)
        if step == 3:  # the extremes: a one-hot write, a full free of a one-hot read
            write = torch.nn.functional.one_hot(torch.arange(B) % n, n).to(dtype)
            read = write.unsqueeze(1).expand(B, r, n)
            free = torch.ones(B, r, dtype=dtype)
        usage = ops.dnc_usage(usage, write, read, free)
        assert usage.dtype == dtype
        assert torch.all(usage >= 0) and torch.all(usage <= 1), f"step {step}: usage {usage}"
        if step == 3:
            assert torch.all(usage[torch.arange(B), torch.arange(B) % n] == 0)


def test_usage_with_no_free_and_no_write_is_unchanged() -> None:
    x = make_inputs(torch.float64, 1300, 7, 3)
    zero_w, zero_f = torch.zeros_like(x["write_weights"]), torch.zeros_like(x["free_gates"])
    got = ops.dnc_usage(x["usage"], zero_w, x["read_weights"], zero_f)
    torch.testing.assert_close(got, x["usage"], rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", SIZES)
def test_link_invariants_over_random_steps(dtype: torch.dtype, n: int) -> None:
    """L in [0, 1], zero diagonal, rows and columns sum to ≤ 1; p ≥ 0 sums to ≤ 1 (Graves et al. 2016)."""
    g = torch.Generator().manual_seed(1400 + n)
    link, precedence = torch.zeros(B, n, n, dtype=dtype), torch.zeros(B, n, dtype=dtype)
    slack = 10 * SLACK[dtype]
    for step in range(12):
        write = torch.softmax(4 * torch.randn(B, n, generator=g, dtype=dtype), -1)
        write = write * torch.rand(B, 1, generator=g, dtype=dtype) ** 0.3  # gates mostly near 1
        link, precedence = ops.dnc_link(link, precedence, write)
        assert link.dtype == dtype and precedence.dtype == dtype
        where = f"step {step}"
        assert torch.all(link >= 0) and torch.all(link <= 1), where
        assert torch.all(torch.diagonal(link, dim1=1, dim2=2) == 0), where
        assert torch.all(link.sum(-1) <= 1 + slack), f"{where}: row sums {link.sum(-1)}"
        assert torch.all(link.sum(-2) <= 1 + slack), f"{where}: column sums {link.sum(-2)}"
        assert torch.all(precedence >= 0), where
        assert torch.all(precedence.sum(-1) <= 1 + slack), f"{where}: precedence sums {precedence.sum(-1)}"


def test_link_uses_the_precedence_from_before_the_write() -> None:
    """Writing slot 1 after slot 0 links 1 ← 0, not 1 ← 1 (the new precedence)."""
    link, precedence = torch.zeros(1, 3, 3), torch.tensor([[1.0, 0.0, 0.0]])
    new_link, new_precedence = ops.dnc_link(link, precedence, torch.tensor([[0.0, 1.0, 0.0]]))
    assert new_link[0].tolist() == [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    assert new_precedence.tolist() == [[0.0, 1.0, 0.0]]


def _chain(n: int, dtype: torch.dtype) -> Tensor:
    """The link after writing slots 0, 1, …, n−1 one-hot in sequence, from empty."""
    link, precedence = torch.zeros(B, n, n, dtype=dtype), torch.zeros(B, n, dtype=dtype)
    eye = torch.eye(n, dtype=dtype)
    for slot in range(n):
        link, precedence = ops.dnc_link(link, precedence, eye[slot].expand(B, n))
    return link


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", [2, 7, 13])
def test_directional_weightings_of_a_chain_move_focus_by_one_slot(dtype: torch.dtype, n: int) -> None:
    link = _chain(n, dtype)
    want_link = torch.diag(torch.ones(n - 1, dtype=dtype), -1)  # L[k+1, k] = 1
    torch.testing.assert_close(link, want_link.expand(B, n, n), rtol=0, atol=0)
    eye = torch.eye(n, dtype=dtype)
    reads = eye.expand(B, n, n)  # read head k focuses on slot k
    forward, backward = ops.dnc_directional(link, reads)
    assert forward.dtype == dtype and backward.dtype == dtype
    shifted_on = torch.roll(eye, 1, dims=1)  # row k: one-hot at k+1 (wrapping, fixed below)
    shifted_on[-1] = 0  # the last slot written has no successor
    shifted_back = torch.roll(eye, -1, dims=1)
    shifted_back[0] = 0  # the first has no predecessor
    torch.testing.assert_close(forward, shifted_on.expand(B, n, n), rtol=0, atol=0)
    torch.testing.assert_close(backward, shifted_back.expand(B, n, n), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_directional_with_a_single_slot_is_zero(dtype: torch.dtype) -> None:
    zero = torch.zeros(B, 1, dtype=dtype)
    link, _ = ops.dnc_link(zero.unsqueeze(-1), zero, torch.ones(B, 1, dtype=dtype))
    forward, backward = ops.dnc_directional(link, torch.ones(B, 3, 1, dtype=dtype))
    assert forward.shape == backward.shape == (B, 3, 1)
    assert torch.all(forward == 0) and torch.all(backward == 0)


# --- bad input -----------------------------------------------------------------------------


def _bad_shape_cases() -> list[tuple[str, Callable[[], object]]]:
    u, w, rw, f = torch.rand(3, 7), torch.rand(3, 7), torch.rand(3, 2, 7), torch.rand(3, 2)
    link, p = torch.rand(3, 7, 7), torch.rand(3, 7)
    return [
        ("dnc_usage: usage must have 2 dimensions (B, N) but has shape (7,)", lambda: ops.dnc_usage(u[0], w, rw, f)),
        (
            "dnc_usage: write_weights has shape (3, 6) but usage slot count is 7 (expected (3, 7))",
            lambda: ops.dnc_usage(u, torch.rand(3, 6), rw, f),
        ),
        (
            "dnc_usage: read_weights has shape (3, 2, 8) but usage slot count is 7",
            lambda: ops.dnc_usage(u, w, torch.rand(3, 2, 8), f),
        ),
        (
            "dnc_usage: free_gates has shape (3, 3) but read_weights read head count is 2",
            lambda: ops.dnc_usage(u, w, rw, torch.rand(3, 3)),
        ),
        (
            "dnc_usage: read_weights has shape (2, 2, 7) but usage batch size is 3",
            lambda: ops.dnc_usage(u, w, torch.rand(2, 2, 7), f),
        ),
        (
            "dnc_usage: read_weights must have 3 dimensions (B, R, N) but has shape (3, 7)",
            lambda: ops.dnc_usage(u, w, rw[:, 0], f),
        ),
        (
            "dnc_allocation: usage must have 2 dimensions (B, N) but has shape (3, 1, 7)",
            lambda: ops.dnc_allocation(u.unsqueeze(1)),
        ),
        (
            "dnc_allocation: usage must have 2 dimensions (B, N) but has shape (7,)",
            lambda: ops.dnc_allocation(u[0]),
        ),
        # (the dimension letters the message lists for a link are not asserted: it is square, N × N)
        ("dnc_link: link must have 3 dimensions", lambda: ops.dnc_link(link[0], p, w)),
        ("dnc_directional: link must have 3 dimensions", lambda: ops.dnc_directional(link.unsqueeze(0), rw)),
        ("dnc_link: precedence has shape (3, 6) but link slot count is 7", lambda: ops.dnc_link(link, p[:, :6], w)),
        ("dnc_link: write_weights has shape (3, 6) but link slot count is 7", lambda: ops.dnc_link(link, p, w[:, :6])),
        ("dnc_link: precedence has shape (2, 7) but link batch size is 3", lambda: ops.dnc_link(link, p[:2], w)),
        (
            "dnc_link: link has shape (3, 7, 6) but must be square (B, N, N)",
            lambda: ops.dnc_link(link[..., :6], p, w[:, :6]),
        ),
        (
            "dnc_directional: link has shape (3, 7, 6) but must be square (B, N, N)",
            lambda: ops.dnc_directional(link[..., :6], rw),
        ),
        (
            "dnc_directional: read_weights has shape (3, 2, 6) but link slot count is 7",
            lambda: ops.dnc_directional(link, rw[..., :6]),
        ),
        (
            "dnc_directional: read_weights has shape (2, 2, 7) but link batch size is 3",
            lambda: ops.dnc_directional(link, rw[:2]),
        ),
        (
            "dnc_directional: read_weights must have 3 dimensions (B, R, N) but has shape (3, 7)",
            lambda: ops.dnc_directional(link, w),
        ),
    ]


@pytest.mark.parametrize(
    ("message", "call"),
    _bad_shape_cases(),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_shapes_raise_value_error_naming_the_argument(message: str, call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_non_tensor_arguments_raise_type_error_naming_the_argument() -> None:
    u, w, rw, f = torch.rand(3, 7), torch.rand(3, 7), torch.rand(3, 2, 7), torch.rand(3, 2)
    link, p = torch.rand(3, 7, 7), torch.rand(3, 7)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("dnc_usage: usage", lambda: ops.dnc_usage(u.tolist(), w, rw, f)),
        ("dnc_usage: free_gates", lambda: ops.dnc_usage(u, w, rw, f.numpy())),
        ("dnc_allocation: usage", lambda: ops.dnc_allocation(u.tolist())),
        ("dnc_allocation: usage", lambda: ops.dnc_allocation(None)),
        ("dnc_link: link", lambda: ops.dnc_link(link.tolist(), p, w)),
        ("dnc_link: write_weights", lambda: ops.dnc_link(link, p, 0.5)),
        ("dnc_directional: link", lambda: ops.dnc_directional(None, rw)),
        ("dnc_directional: read_weights", lambda: ops.dnc_directional(link, rw.tolist())),
    ]
    for prefix, call in cases:
        with pytest.raises(TypeError, match=re.escape(f"{prefix} must be a torch.Tensor")):
            call()


def test_shape_checks_still_run_after_valid_calls_are_remembered() -> None:
    x = make_inputs(torch.float32, 1500, 7, 2)
    link, p, w = x["link"], x["precedence"], x["write_weights"]
    first = ops.dnc_link(link, p, w)
    torch.testing.assert_close(ops.dnc_link(link, p, w), first)  # remembered shapes
    with pytest.raises(ValueError, match=r"dnc_link: write_weights has shape \(3, 5\)"):
        ops.dnc_link(link, p, w[:, :5])
    with pytest.raises(TypeError, match=r"dnc_link: precedence must be a torch.Tensor"):
        ops.dnc_link(link, p.tolist(), w)
    ops.dnc_allocation(x["usage"])
    with pytest.raises(ValueError, match=r"dnc_allocation: usage must have 2 dimensions"):
        ops.dnc_allocation(x["usage"][0])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_outputs_keep_the_input_dtype(dtype: torch.dtype) -> None:
    x = make_inputs(dtype, 1600, 7, 3)
    outs = [
        ops.dnc_usage(x["usage"], x["write_weights"], x["read_weights"], x["free_gates"]),
        ops.dnc_allocation(x["usage"]),
        *ops.dnc_link(x["link"], x["precedence"], x["write_weights"]),
        *ops.dnc_directional(x["link"], x["read_weights"]),
    ]
    assert [o.dtype for o in outs] == [dtype] * 6
    assert [tuple(o.shape) for o in outs] == [(B, 7), (B, 7), (B, 7, 7), (B, 7), (B, 3, 7), (B, 3, 7)]
