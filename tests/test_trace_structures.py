"""``cogdsl trace`` on models with stacks, queues, deques and multiscale controllers: the panels
of what they did, outputs through their own activation, and class targets shown one-hot."""

from __future__ import annotations

from pathlib import Path

import torch

from cogdsl.viz.trace import draw_trace, record_trace
from tests.tiny import compile_text, train_then_trace, write_spec

SPEC = """
model structures
input  x: 3
output y: 3 = softmax(ctrl, cw, sk, hm)
rnn       ctrl(hidden=12) <- x, s@prev, q@prev, d@prev
stack     s(stacks=2, depth=6, top=2) <- ctrl
queue     q(width=4, capacity=10) <- ctrl
deque     d(width=3, capacity=10) <- ctrl
clockwork cw(hidden=8, modules=2) <- x
skip_rnn  sk(hidden=6) <- x
hm_rnn    hm(hidden=6, layers=2) <- x
"""


def test_record_trace_has_a_panel_for_each_structure_and_controller(tmp_path: Path) -> None:
    model = compile_text(tmp_path, SPEC, double=False)
    inputs = torch.randn(7, 3)
    targets = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    trace = record_trace(model, inputs, targets)
    assert trace.output_activation == "softmax"
    torch.testing.assert_close(trace.outputs.sum(-1), torch.ones(7))  # a softmax, not a sigmoid
    assert torch.equal(trace.targets, torch.nn.functional.one_hot(targets, 3).float())
    panels = trace.structures
    push = panels["s: push probability of each stack"]
    assert push[0].shape == (2, 7) and push[1] == ("stack 1", "stack 2")
    assert next(label for label in panels if label.startswith("s: stack ")).endswith("first channel")
    assert panels["q: push and pop strengths"][0].shape == (2, 7)
    assert panels["d: push and pop strengths"][1] == ("push top", "pop top", "push bottom", "pop bottom")
    assert panels["d: strength of each row (bottom first)"][0].shape == (20, 7)
    assert panels["cw: groups that ran"][0][1].tolist() == [1, 0, 1, 0, 1, 0, 1]  # group 2: every other step
    updates = next(label for label in panels if label.startswith("sk: updates ("))
    assert panels[updates][0].shape == (1, 7) and "% of steps skipped" in updates
    assert panels["hm: boundaries"][0].shape == (2, 7)
    paths = draw_trace(trace, tmp_path)
    assert paths[0].stat().st_size > 5000


def test_trace_command_draws_a_stack_model(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
model stack_tiny
input  x: 2
output y: 2 = softmax(ctrl)
rnn    ctrl(hidden=8) <- x, s@prev
stack  s(stacks=2, depth=20, top=2) <- ctrl
train {
  task anbn(min_n=1, max_n=4)
  optimizer adam(lr=0.01)
  batch 4; steps 2; eval_every 2; log_every 2; checkpoint_every 2
}
""")
    trace = train_then_trace(tmp_path, spec, "--len", "5")
    assert (trace / "weightings.png").stat().st_size > 5000


def test_the_stack_drawn_is_the_one_that_both_pushes_and_pops_most() -> None:
    from cogdsl.viz.trace import busiest_stack

    push, pop, noop = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]
    # Stack 1 pushes at every step, stack 2 pushes then pops, stack 3 does nothing.
    actions = torch.tensor([[push, push, noop]] * 4 + [[push, pop, noop]] * 4)
    assert busiest_stack(actions) == 1
    assert busiest_stack(actions[:, [0, 2, 1]]) == 2
