"""The public symmetry checks must pass symmetric models and fail the others."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dwsnets import DWSLayer, DWSNet, Entrywise, WeightSpace, WeightSpaceLayout
from dwsnets.baselines import FlatMLP
from dwsnets.testing import assert_equivariant, assert_invariant, non_symmetry

SIZES = (2, 5, 4, 3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_symmetric_models_pass_in_both_precisions(dtype):
    torch.set_default_dtype(dtype)
    ws = WeightSpace.randn(SIZES, 4, 2)
    layer = DWSLayer(SIZES, 2, 3)
    for p in layer.parameters():
        nn.init.normal_(p)
    assert_equivariant(layer, ws)
    model = DWSNet(SIZES, 4, hidden_channels=4, num_layers=2, in_channels=2)
    model.eval()
    assert_invariant(model, ws)


def test_non_symmetric_models_fail():
    ws = WeightSpace.randn(SIZES, 4)
    flat = FlatMLP(SIZES, 3, hidden=(16,))
    flat.eval()
    with pytest.raises(AssertionError, match="not invariant"):
        assert_invariant(flat, ws)

    def rows_only(space: WeightSpace) -> WeightSpace:  # permutes W_1's rows alone: not equivariant
        w = list(space.weights)
        w[0] = w[0].flip(2)
        return WeightSpace(w, list(space.biases))

    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(rows_only, ws)


def test_controls_catch_checks_that_cannot_fail():
    ws = WeightSpace.randn(SIZES, 4)
    with pytest.raises(AssertionError, match="control failed"):
        assert_invariant(lambda space: torch.zeros(space.batch_size, 2), ws)
    with pytest.raises(AssertionError, match="control failed"):
        assert_equivariant(Entrywise("relu"), ws)
    assert_equivariant(Entrywise("relu"), ws, control=False)


def test_non_symmetry_changes_what_networks_compute():
    for layout in (
        WeightSpaceLayout.mlp((1, 3, 1)),
        WeightSpaceLayout.mlp(SIZES),
        WeightSpaceLayout.cnn((1, 3, 2), [(3, 3), (3, 3)], (1,)),
    ):
        ws = WeightSpace.randn(layout, 2)
        changed = non_symmetry(ws)
        assert changed.layout == layout and not changed.allclose(ws)
    with pytest.raises(ValueError, match="no non-symmetric swap"):
        non_symmetry(WeightSpace.randn((1, 1), 2))
