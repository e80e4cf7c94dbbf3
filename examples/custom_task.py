"""Your own task, registered, then named by a spec like a built-in one: ``python examples/custom_task.py [STEPS]``.

A task declares its parameters and draws batches: inputs (B, T, I), targets (B, T, O) and a mask (B, T)
of the steps that are scored. To use it from the command line too (``cogdsl train``, ``eval``, ``trace``),
publish it as an entry point of your package: ``[project.entry-points."cogdsl.tasks"]
running_parity = "mypackage.tasks:RunningParity"`` (docs/data.md).
"""

import sys
from typing import ClassVar

import torch

import cogdsl
from cogdsl.tasks import Batch, Task, TaskParam, register_task


@register_task
class RunningParity(Task):
    """At each step, the parity of the bits read so far."""

    name: ClassVar[str] = "running_parity"
    params: ClassVar[tuple[TaskParam, ...]] = (TaskParam("min_len", int, 2, minimum=1),
                                               TaskParam("max_len", int, 8, minimum=1))
    constraints: ClassVar[tuple[tuple[str, str], ...]] = (("min_len", "max_len"),)
    length_params: ClassVar[tuple[str, str] | None] = ("min_len", "max_len")
    samples_on_device: ClassVar[bool] = True  # tensor operations only: a GPU draws its own batches
    input_size, output_size = 1, 1

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        bits = torch.randint(0, 2, (batch, length, 1), generator=generator, device=generator.device).float()
        return Batch(bits, bits.cumsum(1) % 2, torch.ones(batch, length, device=generator.device))


SPEC = """
model parity
input  x
output y = sigmoid(ctrl)
gru    ctrl(hidden=16) <- x
train { task running_parity(max_len=8); optimizer adam(lr=0.01); batch 32; eval_every 100; log_every 50 }
"""

if __name__ == "__main__":
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    result = cogdsl.train(cogdsl.loads(SPEC, "cog", "parity.cog"), out_dir="runs/parity", force=True, steps=steps,
                          progress=False, device="auto")
    print(result.eval.describe("parity"))
