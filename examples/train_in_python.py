"""Train a spec with a loop you write yourself: load -> compile -> sample -> loss -> step.

    python examples/train_in_python.py [SPEC] [STEPS]        # default: specs/ntm_copy.yaml, 50 steps

`cogdsl train` does the same and adds logging, evaluation and checkpoints; copy this when you
want your own loop (a curriculum, another loss, your own logging).
"""

import sys
from pathlib import Path

import torch

import cogdsl
from cogdsl.tasks import bit_errors, make_task, sequence_loss
from cogdsl.train import config_from_spec

spec_path = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent.parent / "specs" / "ntm_copy.yaml"
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 50

torch.set_num_threads(1)                  # small recurrent models step fastest on one CPU thread
spec = cogdsl.load(spec_path)             # raises cogdsl.SpecError listing every problem
config = config_from_spec(spec)           # the spec's train: section: task, batch, clip, seed ...
torch.manual_seed(config.seed)            # same seed, same initial parameters
model = cogdsl.compile(spec)              # a torch.nn.Module
task = make_task(config.task, **config.task_params)
optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4, momentum=0.9, alpha=0.95)  # Graves et al. 2014
data = torch.Generator().manual_seed(config.seed)

for step in range(1, steps + 1):
    batch = task.sample(config.batch, data)       # inputs (B, T, I), targets (B, T, O), mask (B, T)
    logits = model(batch.inputs, raw=True)        # (B, T, O), before the output's sigmoid
    loss = sequence_loss(logits, batch)           # BCE over the scored bits, summed per sequence, batch mean
    loss.backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), config.clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if step % 10 == 0 or step == steps:
        errors = bit_errors(logits.detach(), batch).mean().item()
        print(f"step {step}: loss {loss.item():.2f}, {errors:.2f} bit errors per sequence")
