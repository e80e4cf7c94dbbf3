"""Training throughput of a compiled spec, beside a hand-written PyTorch NTM of the same size.

    python examples/throughput.py specs/ntm_copy.yaml --batch 16 --len 20

Times full training steps (forward, BCE loss, backward, clip, RMSProp) on copy-task
batches of one fixed length, after a warm-up, and prints sequences per second for the
compiled spec and for `HandWrittenNTM`: the same architecture (LSTM controller, one read
and one write head, content + gate + shift + sharpen addressing) written the way a plain
PyTorch NTM usually is, one autograd op per equation and a linear layer per head.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

import cogdsl
from cogdsl.tasks import make_task, sequence_loss


class HandWrittenNTM(nn.Module):
    """An NTM written directly in PyTorch, as a point of comparison (not used by cogdsl)."""

    def __init__(self, inputs: int, outputs: int, hidden: int = 100, slots: int = 128, width: int = 20):
        super().__init__()
        self.slots, self.width = slots, width
        self.controller = nn.LSTMCell(inputs + width, hidden)
        head_size = width + 1 + 1 + 3 + 1  # key, strength, gate, shift, gamma
        self.read_head = nn.Linear(hidden, head_size)
        self.write_head = nn.Linear(hidden, head_size + 2 * width)
        self.output = nn.Linear(hidden + width, outputs)

    def address(self, params: torch.Tensor, memory: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        w = self.width
        key, strength = params[:, :w], F.softplus(params[:, w])
        gate, shift = torch.sigmoid(params[:, w + 1]), torch.softmax(params[:, w + 2:w + 5], dim=1)
        gamma = 1 + F.softplus(params[:, w + 5])
        similarity = F.cosine_similarity(memory, key.unsqueeze(1), dim=2, eps=1e-8)
        content = torch.softmax(strength.unsqueeze(1) * similarity, dim=1)
        gated = gate.unsqueeze(1) * content + (1 - gate.unsqueeze(1)) * previous
        shifted = (torch.roll(gated, 1, dims=1) * shift[:, 2:3] + gated * shift[:, 1:2]
                   + torch.roll(gated, -1, dims=1) * shift[:, 0:1])
        sharpened = shifted ** gamma.unsqueeze(1)
        return sharpened / (sharpened.sum(dim=1, keepdim=True) + 1e-16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, _ = x.shape
        h = c = x.new_zeros(batch, self.controller.hidden_size)
        memory = x.new_full((batch, self.slots, self.width), 1e-6)
        read = x.new_zeros(batch, self.width)
        read_w = write_w = F.one_hot(torch.zeros(batch, dtype=torch.long), self.slots).to(x.dtype)
        outputs = []
        for t in range(steps):
            h, c = self.controller(torch.cat([x[:, t], read], dim=1), (h, c))
            read_w = self.address(self.read_head(h), memory, read_w)
            write_params = self.write_head(h)
            write_w = self.address(write_params, memory, write_w)
            read = torch.bmm(read_w.unsqueeze(1), memory).squeeze(1)
            erase = torch.sigmoid(write_params[:, -2 * self.width:-self.width])
            add = write_params[:, -self.width:]
            memory = memory * (1 - write_w.unsqueeze(2) * erase.unsqueeze(1)) + write_w.unsqueeze(2) * add.unsqueeze(1)
            outputs.append(self.output(torch.cat([h, read], dim=1)))
        return torch.stack(outputs, dim=1)


def sequences_per_second(model: nn.Module, batches: list, repeats: int, raw: bool) -> float:
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4, momentum=0.9)

    def train_step(batch) -> None:
        logits = model(batch.inputs, raw=True) if raw else model(batch.inputs)
        sequence_loss(logits, batch).backward()
        for parameter in model.parameters():
            parameter.grad.clamp_(-10, 10)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for batch in batches[:3]:
        train_step(batch)
    start = time.perf_counter()
    for i in range(repeats):
        train_step(batches[i % len(batches)])
    return repeats * batches[0].inputs.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default="specs/ntm_copy.yaml")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--len", dest="length", type=int, default=20)
    parser.add_argument("--steps", type=int, default=40, help="timed training steps per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements; the median is printed")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="also print where one training step's time goes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    spec = cogdsl.load(args.spec)
    config = spec.train_config()["task"]
    task = make_task(config.pop("name"), **config)
    generator = torch.Generator().manual_seed(0)
    batches = [task.sample(args.batch, generator, length=args.length) for _ in range(8)]
    compiled = cogdsl.compile(spec)
    hand = HandWrittenNTM(task.input_size, task.output_size)
    results: dict[str, list[float]] = {"cogdsl": [], "hand-written": []}
    for _ in range(args.rounds):
        results["cogdsl"].append(sequences_per_second(compiled, batches, args.steps, raw=True))
        results["hand-written"].append(sequences_per_second(hand, batches, args.steps, raw=False))
    median = {name: sorted(values)[len(values) // 2] for name, values in results.items()}
    print(f"{spec.name}: batch {args.batch}, length {args.length} (T = {batches[0].inputs.shape[1]} steps), "
          f"{args.threads} thread(s), torch {torch.__version__}")
    for name, value in median.items():
        print(f"  {name:13s} {value:7.1f} sequences/s   (rounds: {', '.join(f'{v:.1f}' for v in results[name])})")
    print(f"  ratio          {median['cogdsl'] / median['hand-written']:.2f}x")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            sequences_per_second(compiled, batches, 3, raw=True)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
