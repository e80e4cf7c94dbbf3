"""GPU check, part 5: the memory step replayed from a CUDA graph, and repeated runs that must be bit-identical.

Run by tests/gpu/check.sh on a machine with a CUDA GPU; prints one JSON line per measurement. Not a pytest
file: it times things, and CI has no GPU.

1. ``ntm_memory_step`` at B=64, N=128, W=20 (the bench's size; two heads, one of them writing), forward and
   forward+backward: eager PyTorch (the torch backend), the Triton kernels, and the Triton kernels captured
   in a CUDA graph and replayed (what ``--compile reduce-overhead`` does to a whole step), in microseconds
   per call, the median of 200;
2. the same forward+backward twice on the same inputs, and a compiled ntm_copy training step twice from the
   same seed: every output and gradient must be bit-identical (the DNC's sort and the reductions are
   deterministic; atomics would not be).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch

import cogdsl
from cogdsl import ops

ROOT = Path(__file__).resolve().parents[2]


def _inputs(seed: int) -> list[torch.Tensor]:
    g = torch.Generator(device="cuda").manual_seed(seed)
    batch, heads, slots, width, offsets = 64, 2, 128, 20, 3

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, device="cuda")

    return [t.requires_grad_() for t in (
        randn(batch, slots, width), randn(batch, heads, slots).softmax(-1), randn(batch, heads, width),
        torch.nn.functional.softplus(randn(batch, heads)) * 5, randn(batch, heads).sigmoid(),
        randn(batch, heads, offsets).softmax(-1), 1 + torch.nn.functional.softplus(randn(batch, heads)),
        randn(batch, 1, width).sigmoid(), randn(batch, 1, width))]


def _median_us(fn: Callable[[], object], repeats: int = 200) -> float:
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1000)
    return statistics.median(times)


def _step(args: list[torch.Tensor], backward: bool) -> list[torch.Tensor]:
    weights, reads, memory = ops.ntm_memory_step(*args)
    if not backward:
        return [weights, reads, memory]
    loss = weights.sum() + (reads * reads).sum() + memory.sum()
    return list(torch.autograd.grad(loss, args))


def replay_timings() -> None:
    args = _inputs(0)
    for backward in (False, True):
        row: dict[str, object] = {"check": "memory-step", "pass": "fwd+bwd" if backward else "fwd",
                                  "batch": 64, "slots": 128, "width": 20}
        with ops.use_backend("torch"):
            row["us_eager"] = _median_us(lambda backward=backward: _step(args, backward))
        with ops.use_backend("triton"):
            row["us_triton"] = _median_us(lambda backward=backward: _step(args, backward))
            static = [a.detach().clone().requires_grad_() for a in args]
            _step(static, backward)  # warm-up outside the capture
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                _step(static, backward)
            row["us_triton_graph"] = _median_us(graph.replay)
        row["graph_vs_eager"] = row["us_eager"] / row["us_triton_graph"]  # type: ignore[operator]
        print(json.dumps(row), flush=True)


def bit_identical() -> bool:
    same = True
    for backend in ("torch", "triton"):
        with ops.use_backend(backend):
            first = _step(_inputs(1), True)
            second = _step(_inputs(1), True)
        equal = all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
        print(json.dumps({"check": "bit-identical", "what": f"memory step fwd+bwd, {backend}", "equal": equal}))
        same &= equal

    def trained() -> list[torch.Tensor]:
        spec = cogdsl.load(ROOT / "specs" / "ntm_copy.yaml")
        from cogdsl.tasks import sequence_loss
        from cogdsl.training.config import build_task
        from cogdsl.training.loop import _logits, config_from_spec

        task = build_task(config_from_spec(spec), spec)
        torch.manual_seed(0)
        model = cogdsl.compile(spec, task).cuda().compile_step()
        optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4)
        data = task.sample(16, torch.Generator().manual_seed(0)).to("cuda")
        for _ in range(3):
            optimizer.zero_grad()
            sequence_loss(_logits(model, data), data).backward()
            optimizer.step()
        return [p.detach().clone() for p in model.parameters()]

    equal = all(torch.equal(a, b) for a, b in zip(trained(), trained(), strict=True))
    print(json.dumps({"check": "bit-identical", "what": "3 compiled ntm_copy training steps", "equal": equal}))
    return same and equal


if __name__ == "__main__":
    if not torch.cuda.is_available():
        sys.exit("tests/gpu/replay.py needs a CUDA GPU")
    replay_timings()
    sys.exit(0 if bit_identical() else 1)
