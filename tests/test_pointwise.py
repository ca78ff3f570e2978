"""Entry-wise blocks: activations and dropout."""

from __future__ import annotations

import pytest
import torch

from dwsnets import Entrywise, WeightSpace, WSDropout
from dwsnets.testing import assert_equivariant

SIZES = (2, 5, 4, 3)


def test_entrywise_and_dropout():
    ws = WeightSpace.randn(SIZES, 3, 2)
    assert Entrywise("relu")(ws).allclose(ws.map(torch.relu))
    drop = WSDropout(0.5)
    dropped = drop(ws)
    zeros = sum(int((t == 0).sum()) for t in dropped.tensors)
    assert 0 < zeros < sum(t.numel() for t in ws.tensors)
    # the rate and the scale are the ones asked for: about p of the entries are zero
    # (within 5 binomial standard deviations) and survivors are scaled by exactly 1 / (1 - p)
    for p in (0.1, 0.3):
        big = WeightSpace.randn(SIZES, 2000, 2)
        out = WSDropout(p)(big)
        total = sum(t.numel() for t in big.tensors)
        rate = sum(int((t == 0).sum()) for t in out.tensors) / total
        assert abs(rate - p) < 5 * (p * (1 - p) / total) ** 0.5, (p, rate)
        for before, after in zip(big.tensors, out.tensors):
            kept = after != 0
            assert torch.allclose(after[kept], before[kept] / (1 - p))
    drop.eval()
    assert drop(ws).allclose(ws)
    with pytest.raises(ValueError):
        WSDropout(1.0)
    with pytest.raises(ValueError, match="unknown activation"):
        Entrywise("swishy")


def test_entrywise_is_equivariant():
    assert_equivariant(Entrywise("tanh"), WeightSpace.randn(SIZES, 3, 2), control=False)


def test_mlp_puts_activation_and_dropout_between_layers_only():
    from torch import nn

    from dwsnets.nn.pointwise import mlp

    net = mlp([6, 8, 5, 3], dropout=0.1, activation="tanh")
    kinds = [type(m) for m in net]
    assert kinds == [nn.Linear, nn.Tanh, nn.Dropout, nn.Linear, nn.Tanh, nn.Dropout, nn.Linear]
    assert net(torch.randn(4, 6)).shape == (4, 3)
    assert [type(m) for m in mlp([6, 3])] == [nn.Linear]  # no hidden layer: one map, nothing after it
    with pytest.raises(ValueError, match="unknown activation"):
        mlp([6, 8, 3], activation="sine")
