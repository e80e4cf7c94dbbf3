"""A compiled tiny NTM trains the same on the Triton kernels as on the torch backend.

One model object, so both backends see the very same parameters: forward a short random
sequence, a BCE-with-logits loss on the raw outputs, backward; then again on the other backend.
The loss, the outputs and every parameter's gradient must agree to float32 tolerance.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import cogdsl
from cogdsl import ops
from cogdsl.language.parse_yaml import parse_yaml
from tests.kernels.helpers import count_launches
from tests.tiny import tiny_ntm


def _loss_and_grads(
    model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, backend: str
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    with ops.use_backend(backend):
        logits = model(x, raw=True)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), logits.detach(), grads


@pytest.mark.parametrize(("read_heads", "init"), [(1, "constant"), (2, "learned")])
def test_loss_and_every_gradient_match_the_torch_backend(device: str, read_heads: int, init: str) -> None:
    text = tiny_ntm(read_heads=read_heads)
    text = text.replace("slots: 16, width: 8}", f"slots: 16, width: 8, init: {init}}}")
    assert f"init: {init}" in text
    torch.manual_seed(0)
    model = cogdsl.compile(parse_yaml(text, "tiny.yaml")).to(device)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(2, 4, 5, generator=g).to(device)
    target = (torch.rand(2, 4, 4, generator=g) > 0.5).float().to(device)

    loss_torch, logits_torch, grads_torch = _loss_and_grads(model, x, target, "torch")
    with count_launches() as launches:
        loss_triton, logits_triton, grads_triton = _loss_and_grads(model, x, target, "triton")
    assert launches, "the model launched no Triton kernel under use_backend('triton')"

    torch.testing.assert_close(loss_triton, loss_torch, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(logits_triton, logits_torch, atol=2e-5, rtol=1e-4)
    assert grads_triton.keys() == grads_torch.keys()
    assert grads_torch, "no parameter got a gradient"
    if init == "learned":
        assert any("mem" in name for name in grads_torch), sorted(grads_torch)
    for name, want in grads_torch.items():
        got = grads_triton[name]
        scale = max(1.0, want.abs().max().item())
        torch.testing.assert_close(got, want, atol=2e-5 * scale, rtol=1e-4, msg=lambda m, n=name: f"d/d{n}: {m}")
