"""Equivariant blocks: activations, dropout, batch norm, input normalisation."""

from __future__ import annotations

import pytest
import torch

from dwsnets import Entrywise, InputNormalization, WeightSpace, WeightSpaceError, WSBatchNorm, WSDropout
from helpers import non_symmetry

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


def test_batchnorm_statistics_are_per_tensor_and_channel():
    ws = WeightSpace.randn(SIZES, 6, 3).map(lambda t: 3 * t + 1)
    bn = WSBatchNorm(SIZES, 3)
    out = bn(ws)
    for t in out.tensors:
        dims = [0] + list(range(2, t.dim()))
        assert torch.allclose(t.mean(dim=dims), torch.zeros(3), atol=1e-10)
        assert torch.allclose(t.var(dim=dims, correction=0), torch.ones(3), atol=1e-4)
    # running statistics were updated, eval mode uses them
    assert not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
    bn.eval()
    assert bn(ws).allclose(bn(ws))


def test_batchnorm_equivariance_with_control():
    ws = WeightSpace.randn(SIZES, 4, 2)
    bn = WSBatchNorm(SIZES, 2)
    with torch.no_grad():
        bn.weight.normal_()
        bn.bias.normal_()
    perms = ws.random_permutations(per_network=True)
    assert bn(ws.permute(perms)).allclose(bn(ws).permute(perms), atol=1e-10)
    bn.eval()
    bn.running_mean.normal_()
    assert bn(ws.permute(perms)).allclose(bn(ws).permute(perms), atol=1e-10)
    # control: batch norm is entry-wise affine, so it commutes with ANY reordering; the
    # non-symmetry must instead be caught by the layers around it (see test_models)
    assert bn(non_symmetry(ws)).allclose(non_symmetry(bn(ws)))


def test_input_normalization():
    ws = WeightSpace.randn(SIZES, 50, 1).map(lambda t: 5 * t - 2)
    norm = InputNormalization(SIZES)
    assert not bool(norm.fitted)
    norm.fit([ws[:20], ws[20:]])
    out = norm(ws)
    for t in out.tensors:
        assert abs(float(t.mean())) < 1e-8 and abs(float(t.std(correction=0)) - 1) < 1e-6
    assert norm.inverse(out).allclose(ws)
    perms = ws.random_permutations(per_network=True)
    assert norm(ws.permute(perms)).allclose(norm(ws).permute(perms))
    with pytest.raises(WeightSpaceError, match="NaN"):
        InputNormalization(SIZES).fit(ws.map(lambda t: t * float("nan")))
    with pytest.raises(WeightSpaceError, match="channel"):
        norm(WeightSpace.randn(SIZES, 2, 2))
    state = norm.state_dict()
    again = InputNormalization(SIZES)
    again.load_state_dict(state)
    assert again(ws).allclose(out)
