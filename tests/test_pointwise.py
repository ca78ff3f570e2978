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
    drop.eval()
    assert drop(ws).allclose(ws)
    with pytest.raises(ValueError):
        WSDropout(1.0)
    with pytest.raises(ValueError, match="unknown activation"):
        Entrywise("swishy")


def test_entrywise_is_equivariant():
    assert_equivariant(Entrywise("tanh"), WeightSpace.randn(SIZES, 3, 2), control=False)
