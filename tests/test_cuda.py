"""The CUDA path gives the same results as the CPU path (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dwsnets import DWSNet, WeightSpace

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("sizes", [(2, 16, 16, 1), (1, 8, 6, 5, 3)])
def test_cuda_matches_cpu(sizes):
    model = DWSNet(sizes, 5, hidden_channels=8, num_layers=3, norm="batch")
    ws = WeightSpace.randn(sizes, 6)
    labels = torch.randint(0, 5, (6,))
    out_cpu = model(ws)
    nn.functional.cross_entropy(out_cpu, labels).backward()
    grads_cpu = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.cuda()
    out_gpu = model(ws.to("cuda"))
    nn.functional.cross_entropy(out_gpu, labels.cuda()).backward()
    assert torch.allclose(out_gpu.cpu(), out_cpu, atol=1e-8)
    for g_cpu, p in zip(grads_cpu, model.parameters()):
        assert torch.allclose(p.grad.cpu(), g_cpu, atol=1e-8)
    perms = ws.random_permutations(per_network=True)
    model.eval()
    permuted = ws.permute(perms).to("cuda")
    assert torch.allclose(model(permuted), model(ws.to("cuda")), atol=1e-8)
