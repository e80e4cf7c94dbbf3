"""The compiled model: shapes, step semantics, gradients, every controller kind, several inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cogdsl
from cogdsl import ops
from cogdsl.language.parse_cog import parse_cog

SPECS = Path(__file__).resolve().parent.parent / "specs"


def small_ntm(controller: str = "lstm(hidden=12)", heads: int = 1, extra: str = "", init: str = "constant") -> str:
    return f"""
model small
input  x: 5
output y: 4 = sigmoid(ctrl, r)
{controller.split("(")[0]} ctrl({controller.split("(", 1)[1]} <- x, r@prev
memory mem(slots=6, width=3, init={init})
read   r(heads={heads}) on mem by ctrl: content(cosine) | gate | shift(1) | sharpen
write  w on mem by ctrl: content(cosine) | gate | shift(1) | sharpen
{extra}
"""


def compile_text(text: str) -> cogdsl.CompiledModel:
    torch.manual_seed(0)
    return cogdsl.compile(parse_cog(text, "small.cog"))


def test_forward_shapes_and_weights_are_distributions() -> None:
    model = compile_text(small_ntm(heads=2))
    x = torch.rand(3, 7, 5)
    y, weights = model(x, return_weights=True)
    assert y.shape == (3, 7, 4)
    assert ((y > 0) & (y < 1)).all()  # sigmoid output
    assert weights["r"].shape == (3, 7, 2, 6) and weights["w"].shape == (3, 7, 1, 6)
    torch.testing.assert_close(weights["r"].sum(-1), torch.ones(3, 7, 2))


def test_step_by_step_equals_forward() -> None:
    model = compile_text(small_ntm())
    x = torch.rand(2, 5, 5)
    y = model(x)
    state = model.initial_state(2)
    steps = []
    for t in range(5):
        y_t, state = model.step(x[:, t], state)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), y)


def test_reads_see_the_memory_before_this_steps_writes() -> None:
    """r_t must equal read(M_{t-1}, w^r_t): the memory in the state before the step, not after."""
    model = compile_text(small_ntm())
    x = torch.rand(2, 4, 5)
    state = model.initial_state(2)
    for t in range(4):
        before = state["mem"]
        trace: dict[str, list[torch.Tensor]] = {}
        _, new_state = model.step(x[:, t], state, trace=trace)
        expected = ops.read(before, trace["r"][0]).reshape(2, -1)
        torch.testing.assert_close(new_state["prev:r"], expected)
        if t > 0:
            assert not torch.allclose(new_state["mem"], before)  # the write did change the memory
            assert not torch.allclose(ops.read(new_state["mem"], trace["r"][0]).reshape(2, -1), expected)
        state = new_state


def test_raw_outputs_are_the_pre_activation_logits() -> None:
    model = compile_text(small_ntm())
    x = torch.rand(2, 3, 5)
    torch.testing.assert_close(torch.sigmoid(model(x, raw=True)), model(x))


def test_every_parameter_gets_a_finite_gradient() -> None:
    model = compile_text(small_ntm(init="learned"))
    loss = model(torch.rand(2, 6, 5)).square().sum()
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("controller", ["lstm(hidden=8, layers=2)", "gru(hidden=8)", "rnn(hidden=8)",
                                        "mlp(hidden=8, layers=2)"])
def test_every_controller_kind_runs_and_learns_something(controller: str) -> None:
    model = compile_text(small_ntm(controller))
    x, target = torch.rand(4, 6, 5), torch.rand(4, 6, 4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.mse_loss(model(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("init", ["constant", "learned", "random"])
def test_memory_initialisations(init: str) -> None:
    model = compile_text(small_ntm(init=init))
    memory = model.initial_state(2)["mem"]
    assert memory.shape == (2, 6, 3)
    if init == "constant":
        assert torch.all(memory == 1e-6)
    else:
        assert memory.std() > 0.01


def test_float64_model() -> None:
    model = compile_text(small_ntm()).double()
    y = model(torch.rand(2, 3, 5, dtype=torch.float64))
    assert y.dtype == torch.float64


def test_interface_clip_is_applied_and_configurable() -> None:
    model = compile_text(small_ntm("lstm(hidden=6, clip=0.5)"))
    assert model.clips["ctrl"] == 0.5
    with torch.no_grad():
        model.interfaces["ctrl"].bias.fill_(100.0)
    state = model.initial_state(1)
    trace: dict[str, list[torch.Tensor]] = {}
    model.step(torch.rand(1, 5), state, trace=trace)
    # with every pre-activation clamped to 0.5, the content key of each head is all 0.5
    fields = model.groups[0].fields(torch.full((1, model.shapes.interface_sizes["ctrl"]), 0.5))
    assert torch.all(fields["key"] == 0.5)


def test_several_inputs_and_outputs_take_and_give_dicts() -> None:
    model = compile_text("""
model two
input a: 3
input b: 2
output y: 4 = ctrl, r
output z: 1 = tanh(ctrl)
gru    ctrl(hidden=8) <- a, b, r@prev
memory mem(slots=5, width=2)
read   r on mem by ctrl: content(dot) | sharpen
write  w on mem by ctrl: content(cosine)
""")
    out = model({"a": torch.rand(2, 4, 3), "b": torch.rand(2, 4, 2)})
    assert out["y"].shape == (2, 4, 4) and out["z"].shape == (2, 4, 1)
    with pytest.raises(ValueError, match="pass a dict"):
        model(torch.rand(2, 4, 5))


def test_wrong_input_size_is_a_clear_error() -> None:
    model = compile_text(small_ntm())
    with pytest.raises(ValueError, match="input 'x' has size 6, the spec says 5"):
        model(torch.rand(2, 3, 6))


def test_explain_lists_the_interface_layout_and_parameters() -> None:
    from cogdsl.compiler.explain import explain

    model = cogdsl.compile(cogdsl.load(SPECS / "ntm_copy.yaml"))
    text = explain(model)
    assert "interface of ctrl (100 -> 92" in text  # 2 heads x (20 key + 1 + 1 + 3 + 1) + 20 erase + 20 add
    for field in ("key", "strength", "gate", "shift", "gamma", "erase", "add"):
        assert f" {field} " in text
    counts = model.parameter_counts()
    assert sum(counts.values()) == sum(p.numel() for p in model.parameters())
    assert "1. controller ctrl" in text and "4. write mem" in text


def test_interface_size_follows_the_heads() -> None:
    base = compile_text(small_ntm(heads=1)).shapes.interface_sizes["ctrl"]
    more = compile_text(small_ntm(heads=3)).shapes.interface_sizes["ctrl"]
    # each extra read head: key 3 + strength + gate + shift 3 + gamma = 9
    assert more - base == 2 * 9


def test_a_memorys_only_ntm_writer_runs_fused_and_matches_the_unfused_path() -> None:
    model = compile_text(small_ntm(heads=2))
    assert model.fused == (True,)
    x = torch.rand(2, 5, 5)
    y_fused, weights_fused = model(x, return_weights=True)
    model.fused = (False,)  # the same step through ntm_address, read and write, one op each
    y_apart, weights_apart = model(x, return_weights=True)
    torch.testing.assert_close(y_fused, y_apart, rtol=0, atol=0)
    for name in ("r", "w"):
        torch.testing.assert_close(weights_fused[name], weights_apart[name], rtol=0, atol=0)


def test_two_writer_groups_on_one_memory_are_not_fused() -> None:
    text = small_ntm(extra="write  w2 on mem by ctrl: content(cosine)")
    model = compile_text(text)
    assert len(model.groups) == 2 and model.fused == (False, False)
    assert torch.isfinite(model(torch.rand(2, 3, 5))).all()


def test_read_only_groups_are_not_fused() -> None:
    text = small_ntm().replace("write  w on mem by ctrl: content(cosine) | gate | shift(1) | sharpen\n", "")
    model = compile_text(text)
    assert all(not group.plan.writes for group in model.groups) and model.fused == (False,)
