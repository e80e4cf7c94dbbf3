"""clip_spikes: the gradient norm held to a few times its running average (cogdsl/training/spikes.py)."""

from __future__ import annotations

import torch

from cogdsl.training.spikes import DECAY, WARMUP, SpikeClip


def _parameters(*norms: float) -> list[torch.nn.Parameter]:
    """One parameter per norm, each with a random gradient of that norm."""
    parameters = []
    for norm in norms:
        p = torch.nn.Parameter(torch.zeros(7))
        g = torch.randn(7)
        p.grad = g / g.norm() * norm
        parameters.append(p)
    return parameters


def _norm(parameters: list[torch.nn.Parameter]) -> float:
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters])))


def test_a_spike_is_held_to_factor_times_the_average_and_keeps_its_direction() -> None:
    clip = SpikeClip(3.0)
    for _ in range(WARMUP + 30):
        clip(_parameters(0.6, 0.8))  # norm 1
    assert abs(float(clip.average) - 1.0) < 1e-5
    spike = _parameters(600.0, 800.0)
    direction = torch.cat([p.grad for p in spike]) / 1000.0
    clip(spike)
    assert abs(_norm(spike) - 3.0) < 1e-4
    assert torch.allclose(torch.cat([p.grad for p in spike]) / 3.0, direction, atol=1e-6)
    # the average moves by the clipped norm, not the spike's
    assert abs(float(clip.average) - (DECAY * 1.0 + (1 - DECAY) * 3.0)) < 1e-5


def test_ordinary_steps_and_the_warm_up_are_untouched() -> None:
    clip = SpikeClip(3.0)
    early = _parameters(300.0)
    clip(early)  # the first step sets the average: nothing to compare with yet
    assert abs(_norm(early) - 300.0) < 1e-3
    for _ in range(WARMUP):
        clip(_parameters(1.0))
    ordinary = _parameters(2.0)
    before = [p.grad.clone() for p in ordinary]
    clip(ordinary)  # 2 < 3 x the average: as it was
    assert all(torch.equal(b, p.grad) for b, p in zip(before, ordinary, strict=True))


def test_the_state_resumes() -> None:
    clip = SpikeClip(3.0)
    for _ in range(WARMUP + 5):
        clip(_parameters(2.0))
    resumed = SpikeClip(3.0, clip.state())
    assert resumed.steps == clip.steps and abs(float(resumed.average) - float(clip.average)) < 1e-6
    a, b = _parameters(500.0), _parameters(500.0)
    b[0].grad = a[0].grad.clone()
    clip(a)
    resumed(b)
    assert torch.allclose(a[0].grad, b[0].grad)


def test_a_run_with_clip_spikes_keeps_its_average_in_the_checkpoint(tmp_path) -> None:
    from cogdsl.training.checkpoints import load_checkpoint
    from cogdsl.training.loop import train
    from tests.tiny import tiny_ntm

    spec = tmp_path / "t.yaml"
    spec.write_text(tiny_ntm(train={"batch": 2, "steps": WARMUP + 5, "clip_spikes": 3, "eval_every": 100,
                                    "checkpoint_every": 100}))
    result = train(str(spec), out_dir=tmp_path / "run", progress=False, tensorboard=False, device="cpu")
    saved = load_checkpoint(tmp_path / "run").meta["spikes"]
    assert saved["steps"] == WARMUP + 5 and 0 < saved["average"] < 1e6
    assert result.config.clip_spikes == 3
    resumed = train(str(spec), out_dir=tmp_path / "run", progress=False, tensorboard=False, device="cpu",
                    resume=True, steps=WARMUP + 8)
    assert resumed.step == WARMUP + 8
    assert load_checkpoint(tmp_path / "run").meta["spikes"]["steps"] == WARMUP + 8
