"""Train a spec on your own data in Python: ``python examples/your_data.py [STEPS]``.

Here the data is a torch Dataset of sequences made up on the spot (echo the bit read two steps ago);
yours can be any Dataset of (inputs (T, I), targets (T, O)) pairs, a DataLoader, or a list of batches.
cogdsl batches it, logs, evaluates on ``eval_data``, checkpoints, and resumes (``resume=True``).
Sizes the spec leaves out are read off the data; the loss follows the output's activation
(sigmoid: binary cross-entropy, softmax: cross-entropy, none: squared error).
"""

import sys

import torch
from torch.utils.data import TensorDataset

import cogdsl

SPEC = """
model echo
input  x
output y = sigmoid(ctrl)
lstm   ctrl(hidden=16) <- x
train { optimizer adam(lr=0.01); batch 32; eval_every 100; log_every 50; checkpoint_every 200 }
"""


def echo_data(count: int, steps: int, seed: int) -> TensorDataset:
    """Bits in, the bit of two steps before out: inputs (N, T, 1), targets (N, T, 1)."""
    bits = torch.randint(0, 2, (count, steps, 1), generator=torch.Generator().manual_seed(seed)).float()
    return TensorDataset(bits, torch.nn.functional.pad(bits, (0, 0, 2, 0))[:, :steps])


if __name__ == "__main__":
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    result = cogdsl.train(cogdsl.loads(SPEC, "cog", "echo.cog"), data=echo_data(2000, 12, seed=0),
                          eval_data=echo_data(200, 12, seed=1), out_dir="runs/echo", force=True, steps=steps,
                          progress=False, device="auto")
    print(result.eval.describe("echo"))
