"""Any addressing pipeline in one kernel: ``address`` and ``memory_step`` on every subset of the four stages.

Each subset of content, gate, shift and sharpen is its own specialisation of the same kernels (the stages are
``tl.constexpr`` flags). The key and add vectors are handed over as views of an interface vector, as a model
hands them, and the kernels must read them in place.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
from torch import Tensor

from cogdsl import kernels, ops
from cogdsl.ops import ntm
from tests.kernels.helpers import check_op, count_launches, make_inputs
from tests.tiny import compile_text

STAGES = ("content", "gate", "shift", "sharpen")
#: Every subset of the four stages, as flags.
PIPELINES = list(itertools.product((False, True), repeat=4))
BATCH, HEADS, SLOTS, WIDTH, WRITE_HEADS = 2, 3, 11, 5, 1
STEP_ARGS = ("memory", "previous", "keys", "strengths", "gate", "shift_weights", "gamma", "erase", "add")


def _name(flags: Sequence[bool]) -> str:
    return "|".join(s for s, on in zip(STAGES, flags, strict=True) if on) or "none"


def _leaves(seed: int, offsets: int) -> dict[str, Tensor]:
    """The inputs, with the keys and add vectors inside one interface vector (B, I)."""
    x = make_inputs(seed, batch=BATCH, heads=HEADS, slots=SLOTS, width=WIDTH, offsets=offsets,
                    write_heads=WRITE_HEADS)
    g = torch.Generator().manual_seed(seed + 1)
    interface = torch.randn(BATCH, 3 + HEADS * WIDTH + WRITE_HEADS * WIDTH + 4, generator=g, dtype=torch.float64)
    return {"memory": x["memory"], "previous": x["previous"], "interface": interface, "strengths": x["strengths"],
            "gate": x["gate"], "shift_weights": x["shift_weights"], "gamma": x["gamma"], "erase": x["erase"]}


def _arguments(flags: Sequence[bool], step: bool) -> Callable[[Sequence[Tensor]], list[Tensor | None]]:
    """check_op's make_args: the op's arguments from the leaves, None for an absent stage."""
    content, gate, shift, sharpen = flags

    def make_args(leaves: Sequence[Tensor]) -> list[Tensor | None]:
        memory, previous, interface, strengths, gates, shift_weights, gamma, erase = leaves
        keys = interface[:, 3:3 + HEADS * WIDTH].view(BATCH, HEADS, WIDTH)
        add = interface[:, 3 + HEADS * WIDTH:3 + (HEADS + WRITE_HEADS) * WIDTH].view(BATCH, WRITE_HEADS, WIDTH)
        args = [memory, previous, keys if content else None, strengths if content else None,
                gates if gate else None, shift_weights if shift else None, gamma if sharpen else None]
        return [*args, erase, add] if step else args

    return make_args


def _grads(flags: Sequence[bool], step: bool) -> list[str]:
    """The leaves the op's result depends on (the others get no gradient from the reference either)."""
    content, gate, shift, sharpen = flags
    names = ["previous"] if gate or not content else []
    names += ["memory", "interface", "strengths"] if content else []
    names += ["gate"] * gate + ["shift_weights"] * shift + ["gamma"] * sharpen
    if step:
        names += ["memory", "interface", "erase"]
    return sorted(set(names))


#: float32 (against the calibrated float32 bound) on a few pipelines; float64 on every one.
FLOAT32_PIPELINES = [(True, True, True, True), (True, False, False, True), (False, True, True, False)]
CASES = [pytest.param(flags, torch.float64, id=f"{_name(flags)}-f64") for flags in PIPELINES] + [
    pytest.param(flags, torch.float32, id=f"{_name(flags)}-f32") for flags in FLOAT32_PIPELINES]


@pytest.mark.parametrize("step", [False, True], ids=["address", "memory_step"])
@pytest.mark.parametrize(("flags", "dtype"), CASES)
def test_every_pipeline_matches_the_reference(device: str, flags: tuple[bool, ...], step: bool,
                                              dtype: torch.dtype) -> None:
    """Values and every gradient, over three slot tiles, with shifts across the tile edges."""
    seed = 700 + 2 * sum(f << i for i, f in enumerate(flags)) + step
    leaves = _leaves(seed, offsets=3)
    op = "memory_step" if step else "address"
    with kernels.tiling(4):
        check_op(op, {}, dtype=dtype, device=device, seed=seed, leaves=leaves, make_args=_arguments(flags, step),
                 grad=_grads(flags, step), arg_names=STEP_ARGS if step else STEP_ARGS[:7],
                 similarity="cosine" if seed % 3 else "dot")


@pytest.mark.parametrize("flags", [(True, True, True, True), (False, True, True, False)], ids=_name)
def test_many_shift_offsets_take_the_run_time_loop(device: str, flags: tuple[bool, ...]) -> None:
    """K = 17 > 16 offsets (more than N = 11, so they wrap): the gathers run in a loop, not unrolled."""
    leaves = _leaves(91, offsets=17)
    with kernels.tiling(4):
        check_op("memory_step", {}, dtype=torch.float64, device=device, seed=91, leaves=leaves,
                 make_args=_arguments(flags, True), grad=_grads(flags, True), arg_names=STEP_ARGS)


@pytest.mark.parametrize("step", [False, True], ids=["address", "memory_step"])
def test_one_launch_each_way_specialised_to_the_stages_and_no_copies(device: str, step: bool) -> None:
    """``content | sharpen``: one kernel forward and one backward, built with exactly those stages on, reading
    the key and add vectors where they lie in the interface (no copy kernel, no copy of either)."""
    flags = (True, False, False, True)
    leaves = [t.to(device).requires_grad_() for t in _leaves(5, offsets=3).values()]
    args = _arguments(flags, step)(leaves)
    interface = leaves[2]
    with ops.use_backend("triton"), count_launches() as launches:
        out = (ops.memory_step if step else ops.address)(*args)
        outs = out if isinstance(out, tuple) else (out,)
        torch.autograd.grad(sum(o.sum() for o in outs), [leaves[0], interface], allow_unused=True)
    assert [launch.name for launch in launches] == (
        ["_step_forward_kernel", "_step_backward_kernel"] if step else
        ["_address_forward_kernel", "_address_backward_kernel"])
    for launch in launches:
        assert (launch.args["CONTENT"], launch.args["GATE"], launch.args["SHIFT"], launch.args["SHARPEN"]) == flags
        assert launch.args["keys_ptr"].data_ptr() == args[2].data_ptr()  # the view itself, not a copy
        assert launch.args["key_stride"] == interface.shape[1]
        if step:
            assert launch.args["add_ptr"].data_ptr() == args[8].data_ptr()


def test_a_view_with_unpacked_rows_is_copied_first(device: str) -> None:
    """Keys whose heads are not packed rows (a transpose) are made contiguous before the launch: still right."""
    x = make_inputs(8, batch=BATCH, heads=HEADS, slots=SLOTS, width=WIDTH)
    keys = x["keys"].transpose(1, 2).contiguous().transpose(1, 2).to(device)  # (B, H, W) with stride (.., 1, H)
    assert keys.stride(-1) != 1
    args = [x["memory"].to(device), x["previous"].to(device), keys, x["strengths"].to(device), None, None,
            x["gamma"].to(device)]
    with ops.use_backend("triton"):
        got = ops.address(*args)
    torch.testing.assert_close(got.cpu(), ntm.address(*[a.cpu() if a is not None else None for a in args]),
                               rtol=1e-10, atol=1e-12)


def test_bad_pipelines_are_refused_by_name() -> None:
    x = make_inputs(9, batch=BATCH, heads=HEADS, slots=SLOTS, width=WIDTH)
    with pytest.raises(ValueError, match="address: keys is given but strengths is None"):
        ops.address(x["memory"], x["previous"], x["keys"])
    with pytest.raises(ValueError, match="address: strengths is given but keys is None"):
        ops.address(x["memory"], x["previous"], None, x["strengths"])
    with pytest.raises(ValueError, match=r"memory_step: gate has shape \(2, 4\) but"):
        ops.memory_step(x["memory"], x["previous"], None, None, torch.rand(2, 4), None, None,
                        x["erase"][:, :1], x["add"][:, :1])
    with pytest.raises(ValueError, match=r"shift_weights has shape .* last dimension must be odd"):
        ops.address(x["memory"], x["previous"], shift_weights=torch.rand(BATCH, HEADS, 4))
    with pytest.raises(TypeError, match=r"memory_step: erase must be a torch\.Tensor"):
        ops.memory_step(x["memory"], x["previous"], None, None, None, None, None, None, x["add"])


def test_with_every_stage_it_is_ntm_address() -> None:
    x = make_inputs(10, batch=BATCH, heads=HEADS, slots=SLOTS, width=WIDTH)
    args = [x[n] for n in STEP_ARGS[:7]]
    torch.testing.assert_close(ops.address(*args), ops.ntm_address(*args), rtol=0, atol=0)
    torch.testing.assert_close(ntm.address(*args), ntm.ntm_address(*args), rtol=0, atol=0)


PIPELINE_SPEC = """
model pipes
input  x: 5
output y: 4 = sigmoid(ctrl, r)
lstm   ctrl(hidden=12) <- x, r@prev
memory mem(slots=9, width=4)
read   r(heads=2) on mem by ctrl: shift(1) | sharpen
write  w on mem by ctrl: content(dot) | sharpen
"""


def test_a_model_with_other_pipelines_runs_them_fused_and_on_triton(tmp_path: Path, device: str) -> None:
    """A writer with ``content(dot) | sharpen`` is its memory's fused step; a reader with ``shift | sharpen`` is one
    ``address`` call and a read; on the Triton backend the model's loss and every parameter gradient are the
    torch backend's, with one step kernel and one address kernel per time step."""
    model = compile_text(tmp_path, PIPELINE_SPEC).to(device)
    assert model.fused == (False, True)
    x = torch.rand(2, 3, 5, dtype=torch.float64, device=device)

    def loss_and_grads(backend: str) -> list[Tensor]:
        model.zero_grad()
        with ops.use_backend(backend):
            loss = model(x).square().sum()
            loss.backward()
        return [loss.detach()] + [p.grad.clone() for p in model.parameters() if p.grad is not None]

    want = loss_and_grads("torch")
    with count_launches() as launches:
        got = loss_and_grads("triton")
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    names = [launch.name for launch in launches]
    assert names.count("_step_forward_kernel") == names.count("_address_forward_kernel") == 3
    # The last step's new memory and write weights reach no loss: its step needs no backward.
    assert names.count("_step_backward_kernel") == 2 and names.count("_address_backward_kernel") == 3
    assert set(names) == {f"_{kernel}_{way}_kernel" for kernel in ("step", "address", "read")
                          for way in ("forward", "backward")}
