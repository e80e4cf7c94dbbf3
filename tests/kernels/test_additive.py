"""The additive-attention kernel against the plain autograd reference: forward, every gradient, dispatch.

The oracle is :func:`cogdsl.ops.attention.additive_attention` evaluated in float64 on the very
inputs the kernel gets, as in :func:`tests.kernels.helpers.check_op` (whose tolerances, float32
calibration and error records are reused): the kernel runs through ``cogdsl.ops`` with the
``"triton"`` backend forced, and the gradient of all four inputs is taken against seeded random
upstream gradients of both outputs (the context and the weights).
"""

from __future__ import annotations

import contextlib
import gc
import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
from torch import Tensor

import cogdsl
from cogdsl import kernels, ops
from cogdsl.blocks.attention import Attention
from cogdsl.compiler.pipeline import parse_text
from cogdsl.ops import attention, backend
from tests.kernels.compile_check import compile_kernels
from tests.kernels.helpers import F32, Tolerance, _compare, check_op, count_launches

#: The op's positional tensor arguments, in order, and its outputs.
ARGS: dict[str, tuple[str, ...]] = {"additive_attention": ("query_projection", "key_projection", "v", "keys")}
NAMES = ARGS["additive_attention"]
FORWARD, BACKWARD = "_additive_forward_kernel", "_additive_backward_kernel"
DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])


def _tiles(cap: int | None) -> contextlib.AbstractContextManager[object]:
    return kernels.tiling(cap) if cap else contextlib.nullcontext()


def make_inputs(seed: int, *, batch: int = 3, heads: int = 2, length: int = 37, hidden: int = 5, width: int = 7,
                sharpness: float = 1.0) -> dict[str, Tensor]:
    """Float64 CPU inputs as the attention block makes them, every one random (none zero).

    qp and kp are linear layers' outputs (normal); v is normal, so the scores spread over a few
    units and the softmax is far from uniform (``sharpness`` scales v: 40 gives scores of
    hundreds, a near one-hot softmax whose exp overflows without the running maximum).
    """
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    return {
        "query_projection": randn(batch, heads, hidden),
        "key_projection": randn(batch, heads, length, hidden),
        "v": sharpness * randn(heads, hidden),
        "keys": randn(batch, length, width),
    }


def check_additive(
    inputs: dict[str, Tensor],
    *,
    dtype: torch.dtype,
    device: str,
    seed: int = 0,
    grad: Sequence[str] | None = None,
    used: Sequence[int] = (0, 1),
    leaves: dict[str, Tensor] | None = None,
    make_args: Callable[[Sequence[Tensor]], Sequence[Tensor]] | None = None,
    tol: Tolerance | None = None,
) -> tuple[tuple[Tensor, ...], tuple[Tensor | None, ...], list[Any]]:
    """:func:`~tests.kernels.helpers.check_op` on the additive kernel: both outputs and every gradient
    against the float64 reference, the forward kernel launched first. Returns the kernel's outputs,
    its gradients and the launches it made."""
    with count_launches() as launches:
        outs, grads = check_op("additive_attention", inputs, dtype=dtype, device=device, seed=seed, grad=grad,
                               used=used, leaves=leaves, make_args=make_args, tol=tol, arg_names=NAMES)
    assert [launch.name for launch in launches][:1] == [FORWARD], "use_backend('triton') ran no additive kernel"
    return outs, grads, launches


# -- forward and gradients against the reference ------------------------------------------------

# (batch, heads, length S, score units A, key width D, sequence tile cap)
CASES = [
    (3, 1, 37, 5, 7, 16),  # three tiles, the last one partial; one head
    (2, 3, 37, 6, 5, 16),  # several heads (the backward sums dk over them)
    (2, 3, 1, 4, 3, None),  # a single element: every weight is 1
    (2, 2, 5, 1, 1, 4),  # A = D = 1, two tiles
    (2, 4, 50, 16, 12, None),  # the kernel's own tile choice
]


@DTYPES
@pytest.mark.parametrize(("batch", "heads", "length", "hidden", "width", "cap"), CASES)
def test_matches_reference(device: str, dtype: torch.dtype, batch: int, heads: int, length: int, hidden: int,
                           width: int, cap: int | None) -> None:
    seed = batch * 1000 + heads * 100 + length + hidden + width
    x = make_inputs(seed, batch=batch, heads=heads, length=length, hidden=hidden, width=width)
    with _tiles(cap):
        (context, weights), _, launches = check_additive(x, dtype=dtype, device=device, seed=seed)
    assert [launch.name for launch in launches] == [FORWARD, BACKWARD]
    if cap is not None and length > cap:  # the sequence really took several tiles
        assert all(launch.args["BLOCK_S"] <= cap for launch in launches)
    if length == 1:
        torch.testing.assert_close(weights.cpu(), torch.ones(batch, heads, 1, dtype=dtype))
        torch.testing.assert_close(context.cpu(), x["keys"].to(dtype).expand(batch, heads, width), rtol=0, atol=0)
    else:  # a far from uniform softmax: a wrong score or element would show in the comparison
        assert float(weights.max() - weights.min()) > 0.5 / length


def test_sharp_softmax_needs_the_running_maximum(device: str) -> None:
    """Scores of several hundred: exp overflows float32 unless each tile rescales by the running maximum."""
    x = make_inputs(7, batch=2, heads=2, length=37, hidden=8, width=5, sharpness=40.0)
    scores = (torch.tanh(x["query_projection"].unsqueeze(2) + x["key_projection"]) * x["v"][:, None]).sum(-1)
    assert float(scores.abs().max()) > 100  # beyond exp's float32 range (88.7)
    with kernels.tiling(8):
        (_, weights), _, _ = check_additive(x, dtype=torch.float32, device=device, seed=7)
    assert float(weights.max()) > 0.9  # the case is really sharp


@pytest.mark.parametrize(("used", "has_d_weights"), [((0,), False), ((1,), True), ((0, 1), True)],
                         ids=["context-only", "weights-only", "both"])
def test_loss_on_one_output_or_both(device: str, used: tuple[int, ...], has_d_weights: bool) -> None:
    """The backward reads the weights' gradient only when the loss uses the weights (HAS_D_WEIGHTS),
    and takes a zero context gradient when only the weights are used."""
    x = make_inputs(21, batch=2, heads=3, length=19, hidden=4, width=6)
    with kernels.tiling(8):
        _, grads, launches = check_additive(x, dtype=torch.float64, device=device, seed=21, used=used)
    (backward_launch,) = [launch for launch in launches if launch.name == BACKWARD]
    assert backward_launch.args["HAS_D_WEIGHTS"] is has_d_weights
    if used == (1,):  # the keys reach the weights only through kp: dk is the context's share, here zero
        assert grads[3] is not None and not grads[3].any()
    else:
        assert grads[3] is not None and grads[3].abs().max() > 0


def test_only_some_inputs_require_grad(device: str) -> None:
    """A fixed key projection and keys (only qp and v train): those two gradients still match, the others are None."""
    x = make_inputs(23, batch=2, heads=2, length=11, hidden=4, width=3)
    with kernels.tiling(4):
        _, grads, _ = check_additive(x, dtype=torch.float32, device=device, grad=["query_projection", "v"], seed=23)
    assert [g is not None for g in grads] == [True, False, True, False]


def test_strided_inputs_are_read_in_place(device: str) -> None:
    """kp as the block makes it, a transpose of (B, S, H, A), and keys sliced from a wider tensor are read
    with their strides (no copy); a key tensor whose last dimension is strided is copied. All match."""
    b, h, s, a, d = 2, 3, 13, 4, 5
    x = make_inputs(25, batch=b, heads=h, length=s, hidden=a, width=d)
    leaves = {
        "query_projection": x["query_projection"],
        "key_projection_bsha": x["key_projection"].transpose(1, 2).contiguous(),  # (B, S, H, A)
        "v": x["v"],
        "keys_wide": torch.cat([x["keys"], 0.5 * x["keys"]], -1),  # (B, S, 2D)
    }

    def make_args(ls: Sequence[Tensor]) -> list[Tensor]:
        args = [ls[0], ls[1].transpose(1, 2), ls[2], ls[3][..., :d]]
        assert not args[1].is_contiguous() and not args[3].is_contiguous()
        return args

    with kernels.tiling(4):
        _, _, launches = check_additive(x, dtype=torch.float32, device=device, leaves=leaves, make_args=make_args,
                                        seed=25)
    for launch in launches:
        strides = (launch.args["key_proj_stride_b"], launch.args["key_proj_stride_h"],
                   launch.args["key_proj_stride_s"], launch.args["keys_stride_b"], launch.args["keys_stride_s"])
        assert strides == (s * h * a, a, h * a, s * 2 * d, 2 * d)  # the views' own strides: nothing was copied

    transposed = {**leaves, "keys_wide": x["keys"].transpose(1, 2).contiguous()}  # (B, D, S)
    check_additive(x, dtype=torch.float32, device=device, leaves=transposed, seed=26,
                   make_args=lambda ls: [ls[0], ls[1].transpose(1, 2), ls[2], ls[3].transpose(1, 2)])


def test_broadcast_v_gets_the_summed_gradient(device: str) -> None:
    """v expanded from one row (stride 0 over heads): its gradient is the sum over the heads."""
    x = make_inputs(27, batch=2, heads=3, length=9, hidden=4, width=3)
    leaves = {"query_projection": x["query_projection"], "key_projection": x["key_projection"],
              "v_row": x["v"][:1].clone(), "keys": x["keys"]}
    check_additive(x, dtype=torch.float64, device=device, leaves=leaves, seed=27,
                   make_args=lambda ls: [ls[0], ls[1], ls[2].expand(3, 4), ls[3]])


def test_kernel_gradcheck_float64(device: str) -> None:
    """The kernel's backward against finite differences of its own forward (not only against the reference),
    along random directions (fast mode: the full Jacobian would take a forward per input element, each one
    interpreted)."""
    x = make_inputs(29, batch=2, heads=2, length=3, hidden=2, width=2)
    args = tuple(x[name].to(device).requires_grad_() for name in NAMES)

    def both(*a: Tensor) -> tuple[Tensor, Tensor]:
        with ops.use_backend("triton"):
            return ops.additive_attention(*a)

    with kernels.tiling(2), count_launches() as launches:
        assert torch.autograd.gradcheck(both, args, eps=1e-6, atol=1e-7, fast_mode=True)
    assert {launch.name for launch in launches} == {FORWARD, BACKWARD}


def test_reference_gradcheck_float64() -> None:
    """The reference itself (the oracle of every other test) has the gradient of its own equations."""
    x = make_inputs(31, batch=2, heads=2, length=4, hidden=3, width=2)
    args = tuple(x[name].clone().requires_grad_() for name in NAMES)
    assert torch.autograd.gradcheck(attention.additive_attention, args, eps=1e-6, atol=1e-7)


def test_reference_is_the_equation() -> None:
    """The reference against the equation written out with loops: e = v·tanh(qp + kp_i), softmax, Σ a_i k_i."""
    x = make_inputs(33, batch=2, heads=2, length=4, hidden=3, width=2)
    context, weights = attention.additive_attention(*(x[name] for name in NAMES))
    qp, kp, v, k = (x[name].tolist() for name in NAMES)
    for b in range(2):
        for h in range(2):
            e = [sum(v[h][a] * math.tanh(qp[b][h][a] + kp[b][h][i][a]) for a in range(3)) for i in range(4)]
            z = sum(math.exp(s) for s in e)
            a_ = [math.exp(s) / z for s in e]
            assert weights[b, h].tolist() == pytest.approx(a_, rel=1e-12)
            assert context[b, h].tolist() == pytest.approx([sum(a_[i] * k[b][i][n] for i in range(4))
                                                            for n in range(2)], rel=1e-12)


def test_empty_sequence_gives_a_zero_context_like_the_reference(device: str) -> None:
    x = make_inputs(35, batch=2, heads=2, length=0, hidden=3, width=4)
    args = [x[name].float().to(device).requires_grad_() for name in NAMES]
    with ops.use_backend("triton"):
        context, weights = ops.additive_attention(*args)
    assert weights.shape == (2, 2, 0) and context.shape == (2, 2, 4)
    assert not context.any()
    context.sum().backward()
    assert all(a.grad is not None and torch.isfinite(a.grad).all() for a in args)


def test_no_grad_forward(device: str) -> None:
    x = make_inputs(37, batch=2, heads=3, length=37, hidden=5, width=7)
    args = [x[name].float().to(device) for name in NAMES]
    with torch.no_grad(), ops.use_backend("triton"), kernels.tiling(16), count_launches() as launches:
        context, weights = ops.additive_attention(*args)
    assert [launch.name for launch in launches] == [FORWARD]
    assert context.grad_fn is None and weights.grad_fn is None
    want_context, want_weights = attention.additive_attention(*(x[name] for name in NAMES))
    _compare(context, want_context, F32, "additive_attention forward context under no_grad", torch.float32)
    _compare(weights, want_weights, F32, "additive_attention forward weights under no_grad", torch.float32)


def test_no_reference_cycle_keeps_outputs_alive(device: str) -> None:
    """Both outputs are freed by reference counting alone, with or without a backward pass."""
    x = make_inputs(39, batch=2, heads=2, length=7, hidden=3, width=4)
    args = [x[name].float().to(device).requires_grad_() for name in NAMES]
    gc.disable()
    try:
        with ops.use_backend("triton"):
            outs = ops.additive_attention(*args)
            alive = [weakref.ref(o) for o in outs]
            (outs[0].sum() + outs[1][..., 0].sum()).backward()
            del outs
            assert all(ref() is None for ref in alive)
            outs = ops.additive_attention(*args)
            alive = [weakref.ref(o) for o in outs]
            del outs
            assert all(ref() is None for ref in alive)
    finally:
        gc.enable()


# -- bad input ------------------------------------------------------------------------------------

def _bad(x: dict[str, Tensor], **replace: Any) -> list[Any]:
    return [replace.get(name, x[name]) for name in NAMES]


BAD_INPUT = [
    ("wrong score width", {"key_projection": (2, 3, 5, 6)},
     r"key_projection has shape \(2, 3, 5, 6\) but query_projection score width is 4 \(expected \(2, 3, 5, 4\)\)"),
    ("wrong head count of v", {"v": (2, 4)}, r"v has shape \(2, 4\) but query_projection head count is 3"),
    ("wrong batch of the keys", {"keys": (1, 5, 7)},
     r"keys has shape \(1, 5, 7\) but query_projection batch size is 2"),
    ("wrong length of the keys", {"keys": (2, 6, 7)},
     r"keys has shape \(2, 6, 7\) but key_projection sequence length is 5"),
    ("key projection without heads", {"key_projection": (2, 5, 4)},
     r"key_projection must have 4 dimensions \(B, H, S, A\) but has shape \(2, 5, 4\)"),
]


@pytest.mark.parametrize("backend_name", ["torch", "triton"])
@pytest.mark.parametrize(("case", "shapes", "message"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_mismatched_shapes_raise_a_clear_error(device: str, backend_name: str, case: str,
                                               shapes: dict[str, tuple[int, ...]], message: str) -> None:
    x = {name: t.float().to(device) for name, t in make_inputs(41, batch=2, heads=3, length=5, hidden=4,
                                                                 width=7).items()}
    replaced = {name: torch.randn(*shape, device=device) for name, shape in shapes.items()}
    with ops.use_backend(backend_name), pytest.raises(ValueError, match=f"^additive_attention: {message}"):
        ops.additive_attention(*_bad(x, **replaced))


def test_wrong_type_or_dtype_raises(device: str) -> None:
    x = {name: t.float().to(device) for name, t in make_inputs(43, batch=2, heads=3, length=5, hidden=4).items()}
    with pytest.raises(TypeError, match=r"additive_attention: v must be a torch.Tensor of shape \(H, A\), got list"):
        ops.additive_attention(*_bad(x, v=x["v"].tolist()))
    with ops.use_backend("triton"), pytest.raises(
        TypeError, match="additive_attention: every argument must have the same dtype, got query_projection float32, "
        "key_projection float32, v float32, keys float64"
    ):
        ops.additive_attention(*_bad(x, keys=x["keys"].double()))


# -- dispatch -------------------------------------------------------------------------------------

def test_registered_under_both_backends() -> None:
    assert kernels.OPS["additive_attention"] == "additive"
    assert set(backend.implementations("additive_attention")) == {"torch", "triton"}
    assert "additive_attention" in ops.__all__


def _forbid(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make the ``name`` backend's registered additive_attention raise if it is called."""

    def refuse(*args: Any) -> Any:
        raise AssertionError(f"the {name!r} implementation of additive_attention ran")

    monkeypatch.setitem(backend._REGISTRY, "additive_attention",
                        {**backend._REGISTRY["additive_attention"], name: refuse})
    if name == "torch":  # nor may the kernel's wrapper fall back on the reference module
        monkeypatch.setattr(attention, "additive_attention", refuse)


def _args(device: str) -> list[Tensor]:
    x = make_inputs(45, batch=2, heads=2, length=9, hidden=3, width=4)
    return [x[name].float().to(device).requires_grad_() for name in NAMES]


def test_forced_triton_runs_the_kernel_both_ways(monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    assert device != "cpu" or kernels.interpreting()
    args = _args(device)
    _forbid(monkeypatch, "torch")
    with ops.use_backend("triton"), count_launches() as forward:
        context, weights = ops.additive_attention(*args)
    assert [launch.name for launch in forward] == [FORWARD]
    with count_launches() as backward:
        (context.sum() + weights[..., 0].sum()).backward()
    assert [launch.name for launch in backward] == [BACKWARD]
    assert all(a.grad is not None and a.grad.abs().max() > 0 for a in args)


def test_auto_on_cpu_runs_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    args = _args("cpu")
    _forbid(monkeypatch, "triton")
    for forced in ("auto", None):
        with ops.use_backend(forced) if forced else contextlib.nullcontext(), count_launches() as launches:
            context, weights = ops.additive_attention(*args)
            (context.sum() + weights.sum()).backward()
        assert launches == []
    torch.testing.assert_close(context, attention.additive_attention(*args)[0], rtol=0, atol=0)


def test_env_var_forces_triton(monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    args = _args(device)
    monkeypatch.setenv("COGDSL_BACKEND", "triton")
    with count_launches() as launches:
        ops.additive_attention(*args)
    assert [launch.name for launch in launches] == [FORWARD]


def test_forced_triton_on_cpu_without_the_interpreter_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with ops.use_backend("triton"), pytest.raises(ops.BackendUnavailableError) as info:
        ops.additive_attention(*_args("cpu"))
    message = str(info.value)
    assert "cogdsl.ops.additive_attention" in message and "CUDA" in message and "TRITON_INTERPRET" in message


# -- the attention block and a compiled model run the kernel ------------------------------------------

def test_attention_block_runs_the_kernel_and_matches_the_torch_backend(device: str) -> None:
    """Attention(score=additive) routes its soft path through the op: on the triton backend one kernel launch
    each way, and the context, the weights and every parameter's gradient equal the torch backend's."""
    torch.manual_seed(47)
    module = Attention("additive", 3, 6, 5, 4).to(device)
    g = torch.Generator().manual_seed(48)
    query = torch.randn(2, 6, generator=g).to(device)
    keys = torch.randn(2, 11, 5, generator=g).to(device).requires_grad_()
    results = {}
    for name in ("torch", "triton"):
        module.zero_grad(set_to_none=True)
        keys.grad = None
        with ops.use_backend(name), count_launches() as launches:
            context, weights = module(query, keys, module.project_keys(keys), with_weights=True)
            (context * torch.linspace(-1, 1, context.numel(), device=device).view_as(context)).sum().backward()
        assert [launch.name for launch in launches] == ([] if name == "torch" else [FORWARD, BACKWARD])
        grads = {n: p.grad.detach().clone() for n, p in module.named_parameters()}
        results[name] = (context.detach(), weights.detach(), keys.grad.detach().clone(), grads)
    (ctx_t, w_t, dk_t, grads_t), (ctx_k, w_k, dk_k, grads_k) = results["torch"], results["triton"]
    assert w_t.shape == (2, 3, 11) and ctx_t.shape == (2, 15)
    torch.testing.assert_close(ctx_k, ctx_t, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(w_k, w_t, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(dk_k, dk_t, atol=2e-5, rtol=1e-4)
    assert grads_t.keys() == grads_k.keys() == {"query_proj.weight", "query_proj.bias", "key_proj.weight", "v"}
    for name, want in grads_t.items():
        assert want.abs().max() > 0, name
        torch.testing.assert_close(grads_k[name], want, atol=2e-5, rtol=1e-4, msg=lambda m, n=name: f"d/d{n}: {m}")


def test_hard_attention_keeps_its_own_path(device: str) -> None:
    """Hard mode samples from the scores' log-softmax (for log π and the entropy): it launches no kernel."""
    torch.manual_seed(49)
    module = Attention("additive", 2, 6, 5, 4, mode="hard").to(device).eval()
    query, keys = torch.randn(2, 6).to(device), torch.randn(2, 7, 5).to(device)
    with ops.use_backend("triton"), count_launches() as launches:
        context, weights = module(query, keys)
    assert launches == []
    chosen = weights.argmax(-1)  # evaluation: the most likely element, per head
    torch.testing.assert_close(context.view(2, 2, 5), keys[torch.arange(2)[:, None], chosen])


BAHDANAU = """\
model tiny_bahdanau
input  src: sequence(size=5)
output y: 5 = softmax(dec, ctx)
encoder   enc(hidden=3, cell=gru, bidirectional=true) <- src
attention ctx(score=additive, heads=2, hidden=4) on enc <- dec@prev
gru       dec(hidden=4) <- y@prev, ctx
"""


def test_compiled_bahdanau_model_trains_the_same_on_the_kernel(device: str) -> None:
    """A compiled model with additive attention: on the triton backend its attention runs the kernel at every
    step (its key projection computed once per sequence), and the loss, the attention weights and every
    parameter's gradient equal the torch backend's."""
    torch.manual_seed(0)
    model = cogdsl.compile(parse_text(BAHDANAU, "<test_additive>", "cog")).to(device)
    g = torch.Generator().manual_seed(51)
    steps = 4
    src = torch.randn(2, 6, 5, generator=g).to(device)
    target = torch.randint(0, 5, (2, steps), generator=g).to(device)
    results = {}
    for name in ("torch", "triton"):
        model.zero_grad(set_to_none=True)
        with ops.use_backend(name), count_launches() as launches:
            logits, weights = model({"src": src}, steps=steps, raw=True, return_weights=True)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 5), target.reshape(-1))
            loss.backward()
        names = [launch.name for launch in launches]
        assert names == ([] if name == "torch" else [FORWARD] * steps + [BACKWARD] * steps), names
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        results[name] = (loss.detach(), weights["ctx"].detach(), grads)
    (loss_t, weights_t, grads_t), (loss_k, weights_k, grads_k) = results["torch"], results["triton"]
    assert weights_t.shape == (2, steps, 2, 6)
    torch.testing.assert_close(loss_k, loss_t, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(weights_k, weights_t, atol=2e-6, rtol=1e-5)
    assert grads_t.keys() == grads_k.keys()
    assert any(n.startswith("attentions.ctx.") for n in grads_t), sorted(grads_t)
    assert any(n.startswith("encoders.enc.") for n in grads_t), sorted(grads_t)  # dk reaches the encoder
    for name, want in grads_t.items():
        scale = max(1.0, want.abs().max().item())
        torch.testing.assert_close(grads_k[name], want, atol=2e-5 * scale, rtol=1e-4,
                                   msg=lambda m, n=name: f"d/d{n}: {m}")


# -- on a real GPU ----------------------------------------------------------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
@pytest.mark.parametrize(("batch", "heads", "length", "hidden"), [(64, 1, 400, 256), (64, 1, 50, 64), (8, 4, 333, 96)])
def test_cuda_kernel_matches_reference_at_benchmark_sizes(batch: int, heads: int, length: int, hidden: int) -> None:
    """On the GPU itself (compiled, not interpreted), at the sizes ``cogdsl bench`` times."""
    x = make_inputs(53, batch=batch, heads=heads, length=length, hidden=hidden, width=hidden)
    (_, weights), _, launches = check_additive(x, dtype=torch.float32, device="cuda", seed=53)
    assert [launch.name for launch in launches] == [FORWARD, BACKWARD]
    assert weights.is_cuda


@needs_cuda
def test_cuda_auto_backend_picks_the_kernel() -> None:
    args = [t.float().cuda() for t in make_inputs(55, batch=4, heads=2, length=30, hidden=8, width=8).values()]
    with count_launches() as launches:
        ops.additive_attention(*args)
    assert [launch.name for launch in launches] == [FORWARD]


# -- compiled for real GPUs, with no GPU present ---------------------------------------------------------

COMPILE_CASES = [
    ("fp32", (1, 400, 256, 256), 90),  # the benchmark's largest size on an H100
    ("fp32", (4, 50, 64, 64), 90),  # several heads: the backward's (BLOCK_H, BLOCK_S, BLOCK_A) tile
    ("fp64", (2, 37, 7, 5), 80),
]
@pytest.fixture(scope="module")
def compiled() -> list[dict[str, Any]]:
    from cogdsl.kernels.additive import additive_blocks

    jobs = []
    for name in ("_additive_forward_kernel", "_additive_backward_kernel"):
        backward = "backward" in name
        for dtype, (heads, length, hidden, width), arch in COMPILE_CASES:
            for has_d_weights in (True, False) if backward else (True,):
                constants = {"HAS_D_WEIGHTS": has_d_weights,
                             **additive_blocks(heads, length, hidden, width, every_head=backward)}
                jobs.append({"module": "additive", "kernel": name, "dtype": dtype, "arch": arch,
                             "constants": constants})
    return compile_kernels(jobs)


def test_kernels_compile_to_a_cubin_without_spills(compiled: list[dict[str, Any]]) -> None:
    """Both kernels reach PTX and a cubin for sm_90 and sm_80, float32 and float64, with and without the
    weights' gradient; none spills registers to local memory."""
    assert len(compiled) == len(COMPILE_CASES) * 3
    for result in compiled:
        assert "error" not in result, result
        assert result["target"] and result["cubin"] > 0, result
        assert result["spill_stores"] == 0 and result["spill_loads"] == 0, f"{result['kernel']} spills: {result}"
