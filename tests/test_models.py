"""Full models: invariance/equivariance with controls, training on a small task."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dwsnets import DWSNet, EquivariantDWSNet, WeightSpace
from helpers import ARCHITECTURES, non_symmetry


@pytest.mark.parametrize("sizes", ARCHITECTURES)
@pytest.mark.parametrize("norm", [None, "batch"])
def test_dwsnet_invariance_with_control(sizes, norm):
    model = DWSNet(sizes, 4, hidden_channels=6, num_layers=3, head_hidden=(8,), norm=norm)
    model.eval()
    ws = WeightSpace.randn(sizes, 5)
    perms = ws.random_permutations(per_network=True)
    assert torch.allclose(model(ws.permute(perms)), model(ws), atol=1e-9)
    assert not torch.allclose(model(non_symmetry(ws)), model(ws), atol=1e-6)


@pytest.mark.parametrize("sizes", ARCHITECTURES)
@pytest.mark.parametrize("residual", [False, True])
def test_equivariant_model_with_control(sizes, residual):
    model = EquivariantDWSNet(sizes, 1, hidden_channels=5, num_layers=2, residual=residual, dropout=0.1)
    model.eval()
    if residual:
        for p in model.output.parameters():
            nn.init.normal_(p)
    ws = WeightSpace.randn(sizes, 3)
    perms = ws.random_permutations(per_network=True)
    assert model(ws.permute(perms)).allclose(model(ws).permute(perms), atol=1e-9)
    assert not model(non_symmetry(ws)).allclose(non_symmetry(model(ws)), atol=1e-6)


def test_residual_model_starts_as_identity():
    model = EquivariantDWSNet((2, 6, 1), residual=True)
    model.input_norm.fit(WeightSpace.randn((2, 6, 1), 20).map(lambda t: 3 * t))
    ws = WeightSpace.randn((2, 6, 1), 4)
    assert model(ws).allclose(ws, atol=1e-10)
    with pytest.raises(ValueError, match="residual"):
        EquivariantDWSNet((2, 6, 1), out_channels=2, residual=True)


def test_dropout_respects_eval_and_gradients_reach_all_parameters():
    sizes = (2, 6, 5, 1)
    model = DWSNet(sizes, 3, hidden_channels=4, num_layers=2, dropout=0.3, norm="batch")
    ws = WeightSpace.randn(sizes, 8)
    model.train()
    nn.functional.cross_entropy(model(ws), torch.randint(0, 3, (8,))).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    model.eval()
    assert torch.equal(model(ws), model(ws))


def test_learns_a_symmetric_property():
    """A small DWSNet learns to tell apart two families of MLPs that differ only in the
    scale of the second hidden layer, presented under random hidden permutations."""
    torch.manual_seed(0)
    sizes = (2, 8, 8, 1)
    n = 256
    ws = WeightSpace.randn(sizes, n)
    labels = torch.arange(n) % 2
    scale = 0.5 + labels.to(torch.float64)  # class 1 has larger W_2
    ws = WeightSpace(
        [ws.weights[0], ws.weights[1] * scale[:, None, None, None], ws.weights[2]], list(ws.biases)
    )
    ws = ws.permute(ws.random_permutations(per_network=True))
    model = DWSNet(sizes, 2, hidden_channels=8, num_layers=2, head_hidden=(16,))
    model.input_norm.fit(ws)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(ws), labels)
        loss.backward()
        opt.step()
    accuracy = (model(ws).argmax(1) == labels).double().mean()
    assert accuracy > 0.9
