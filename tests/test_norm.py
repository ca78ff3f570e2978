"""Normalisation with per-tensor, per-channel statistics: batch norm and input normalisation."""

from __future__ import annotations

import pytest
import torch

from dwsnets import InputNormalization, WeightSpace, WeightSpaceError, WSBatchNorm

SIZES = (2, 5, 4, 3)


def test_batchnorm_statistics_are_per_tensor_and_channel():
    ws = WeightSpace.randn(SIZES, 6, 3).map(lambda t: 3 * t + 1)
    bn = WSBatchNorm(SIZES, 3)
    out = bn(ws)
    for t in out.tensors:
        dims = [0] + list(range(2, t.dim()))
        assert torch.allclose(t.mean(dim=dims), torch.zeros(3), atol=1e-10)
        assert torch.allclose(t.var(dim=dims, correction=0), torch.ones(3), atol=1e-4)
    # running statistics move towards the batch statistics (momentum 0.1 from 0 and 1)
    for i, t in enumerate(ws.tensors):
        dims = [0] + list(range(2, t.dim()))
        assert torch.allclose(bn.running_mean[i], 0.1 * t.mean(dim=dims), atol=1e-10)
        assert torch.allclose(bn.running_var[i], 0.9 + 0.1 * t.var(dim=dims, correction=1), atol=1e-10)
    # eval mode normalises with the running statistics, not the batch's
    bn.eval()
    out = bn(ws)
    for i, (t, o) in enumerate(zip(ws.tensors, out.tensors)):
        shape = (1, 3) + (1,) * (t.dim() - 2)
        expected = (t - bn.running_mean[i].view(shape)) / torch.sqrt(bn.running_var[i].view(shape) + bn.eps)
        assert torch.allclose(o, expected, atol=1e-10)


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

    # control: the same check catches a normalisation with per-entry statistics, which
    # breaks the symmetry (so the comparison above is able to fail)
    def per_entry(space: WeightSpace) -> WeightSpace:
        return space.map(lambda t: (t - t.mean(0, keepdim=True)) / (t.std(0, keepdim=True) + 1e-5))

    assert not per_entry(ws.permute(perms)).allclose(per_entry(ws).permute(perms), atol=1e-6)


def _reference_batchnorm(ws: WeightSpace, bn: WSBatchNorm, detach_stats: bool = False) -> WeightSpace:
    """Training-mode batch norm written per tensor with plain autograd ops."""
    out = []
    for i, t in enumerate(ws.tensors):
        dims = [0] + list(range(2, t.dim()))
        shape = (1, t.shape[1]) + (1,) * (t.dim() - 2)
        var, mean = torch.var_mean(t, dim=dims, correction=0, keepdim=True)
        if detach_stats:
            var, mean = var.detach(), mean.detach()
        out.append((t - mean) / torch.sqrt(var + bn.eps) * bn.weight[i].view(shape) + bn.bias[i].view(shape))
    return WeightSpace.from_tensors(out)


def test_fused_batchnorm_matches_reference_values_and_gradients():
    torch.manual_seed(0)
    ws = WeightSpace.randn(SIZES, 5, 3).map(lambda t: (2 * t + 0.5).requires_grad_())
    bn = WSBatchNorm(SIZES, 3)
    with torch.no_grad():
        bn.weight.normal_()
        bn.bias.normal_()
    probe = WeightSpace.randn(SIZES, 5, 3)
    outputs = {}
    for name, fn in (
        ("fused", bn),
        ("reference", lambda w: _reference_batchnorm(w, bn)),
        ("detached", lambda w: _reference_batchnorm(w, bn, detach_stats=True)),
    ):
        out = fn(ws)
        loss = sum((o * p).sum() for o, p in zip(out.tensors, probe.tensors))
        grads = torch.autograd.grad(loss, [*ws.tensors, bn.weight, bn.bias])
        outputs[name] = (out, grads)
    (out_f, grads_f), (out_r, grads_r) = outputs["fused"], outputs["reference"]
    assert out_f.allclose(out_r, atol=1e-10)
    for gf, gr in zip(grads_f, grads_r):
        assert torch.allclose(gf, gr, atol=1e-9)
    # control: the comparison catches a wrong gradient (statistics treated as constants)
    assert not torch.allclose(grads_f[0], outputs["detached"][1][0], atol=1e-3)


def test_fused_batchnorm_gradcheck():
    torch.manual_seed(1)
    ws = WeightSpace.randn((2, 3, 2), 3, 2).map(lambda t: t.requires_grad_())
    bn = WSBatchNorm((2, 3, 2), 2)

    def fn(*tensors):
        return bn(WeightSpace.from_tensors(list(tensors))).tensors

    assert torch.autograd.gradcheck(fn, tuple(ws.tensors))


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
