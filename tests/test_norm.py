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


@pytest.fixture
def small_blocks(monkeypatch):
    """Row blocks of a few rows, so that the blocked passes run over many blocks."""
    import dwsnets.nn.norm as norm_module

    monkeypatch.setattr(norm_module, "_CHUNK_BYTES", 64)


@pytest.mark.parametrize("blocks", ["one", "many"])
def test_batchnorm_with_fused_relu_matches_batchnorm_then_relu(blocks, request):
    if blocks == "many":
        request.getfixturevalue("small_blocks")
    torch.manual_seed(2)
    ws = WeightSpace.randn(SIZES, 6, 3).map(lambda t: (2 * t + 0.3).requires_grad_())
    bn = WSBatchNorm(SIZES, 3)
    with torch.no_grad():
        bn.weight.normal_()  # negative scales too: the ReLU mask must follow their sign
        bn.bias.normal_()
    probe = WeightSpace.randn(SIZES, 6, 3)
    packing = bn.layout.packing
    results = []
    for fused in (True, False):
        slots = packing.pack(ws.tensors)
        out = bn.forward_packed(slots, relu=True) if fused else [torch.relu(y) for y in bn.forward_packed(slots)]
        out = packing.unpack(out, 3)
        loss = sum((o * p).sum() for o, p in zip(out, probe.tensors))
        results.append((out, torch.autograd.grad(loss, [*ws.tensors, bn.weight, bn.bias])))
    (out_f, grads_f), (out_r, grads_r) = results
    for a, b in zip(out_f, out_r):
        assert torch.allclose(a, b, atol=1e-12)
    for a, b in zip(grads_f, grads_r):
        assert torch.allclose(a, b, atol=1e-10)
    # control: dropping the ReLU's mask from the gradient is caught
    loss = sum(
        (o * p).sum() for o, p in zip(packing.unpack(bn.forward_packed(packing.pack(ws.tensors)), 3), probe.tensors)
    )
    unmasked = torch.autograd.grad(loss, ws.tensors[0])[0]
    assert not torch.allclose(unmasked, grads_f[0], atol=1e-3)
    # eval mode: the running statistics, then the ReLU
    bn.eval()
    with torch.no_grad():
        fused_eval = packing.unpack(bn.forward_packed(packing.pack(ws.tensors), relu=True), 3)
        plain_eval = [torch.relu(t) for t in bn(ws).tensors]
    for a, b in zip(fused_eval, plain_eval):
        assert torch.allclose(a, b, atol=1e-12)


def test_blocked_batchnorm_gradcheck(small_blocks):
    torch.manual_seed(3)
    ws = WeightSpace.randn((2, 3, 2), 3, 2).map(lambda t: t.requires_grad_())
    bn = WSBatchNorm((2, 3, 2), 2)
    with torch.no_grad():
        bn.weight.normal_()
        bn.bias.normal_()
    packing = bn.layout.packing

    def fn(*tensors):
        return tuple(packing.unpack(bn.forward_packed(packing.pack(list(tensors)), relu=True), 2))

    assert torch.autograd.gradcheck(fn, tuple(ws.tensors))


def test_batchnorm_in_bfloat16_follows_float32():
    """Under CPU autocast the slots arrive in bf16: statistics still accumulate in float32,
    so outputs and gradients agree with float32 to bf16's resolution."""
    torch.manual_seed(4)
    base = WeightSpace.randn((2, 16, 16, 1), 64, 8).map(lambda t: 3 * t + 1)
    bn = WSBatchNorm((2, 16, 16, 1), 8).float()
    packing = bn.layout.packing
    probe = [torch.randn_like(s) for s in packing.pack([t.float() for t in base.tensors])]
    outs, grads = [], []
    for dtype in (torch.float32, torch.bfloat16):
        slots = [s.to(dtype).requires_grad_() for s in packing.pack([t.float() for t in base.tensors])]
        out = bn.forward_packed(slots, relu=True)
        loss = sum((o.float() * p).sum() for o, p in zip(out, probe))
        grads.append([g.float() for g in torch.autograd.grad(loss, slots)])
        outs.append([o.float() for o in out])
    for a, b in zip(outs[0], outs[1]):
        assert (a - b).abs().max() <= 2e-2 * a.abs().max()
    for a, b in zip(grads[0], grads[1]):
        cosine = torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0)
        assert cosine > 0.999


def test_compiled_kernels_match_the_eager_ones():
    """``compile_kernels(model)`` runs the same arithmetic as fused loops: outputs, gradients
    and running statistics agree with the eager kernels (float64, with and without ReLU)."""
    import warnings

    from dwsnets.nn import compile_kernels

    torch.manual_seed(7)
    ws = WeightSpace.randn(SIZES, 6, 3).map(lambda t: 2 * t + 0.3)
    probe = WeightSpace.randn(SIZES, 6, 3)
    results = []
    for compiled in (False, True):
        if True:  # (the switch is the module's own: nothing to restore)
            bn = compile_kernels(WSBatchNorm(SIZES, 3), compiled)
            with torch.no_grad():
                bn.weight.copy_(torch.linspace(-1.5, 2.0, bn.weight.numel()).view_as(bn.weight))
                bn.bias.copy_(torch.linspace(-0.5, 0.7, bn.bias.numel()).view_as(bn.bias))
            packing = bn.layout.packing
            xs = [t.clone().requires_grad_() for t in ws.tensors]
            with warnings.catch_warnings():
                # a fallback to eager must not pass for a compiled run
                warnings.filterwarnings("error", message="dwsnets: compiling")
                try:
                    out = [
                        *packing.unpack(bn.forward_packed(packing.pack(xs), relu=True), 3),
                        *packing.unpack(bn.forward_packed(packing.pack(xs)), 3),
                    ]
                except UserWarning as exc:
                    pytest.skip(f"torch.compile is not available here: {exc}")
                loss = sum((o * p).sum() for o, p in zip(out, [*probe.tensors, *probe.tensors]))
                grads = torch.autograd.grad(loss, [*xs, bn.weight, bn.bias])
            results.append((out, grads, bn.running_mean.clone(), bn.running_var.clone()))
    (out_e, grads_e, mean_e, var_e), (out_c, grads_c, mean_c, var_c) = results
    for a, b in zip(out_e, out_c):
        assert torch.allclose(a, b, atol=1e-12)
    for a, b in zip(grads_e, grads_c):
        assert torch.allclose(a, b, atol=1e-10)
    assert torch.allclose(mean_e, mean_c, atol=1e-12) and torch.allclose(var_e, var_c, atol=1e-12)
    # control: the comparison tells the kernels' variants apart (with and without the ReLU)
    half = len(out_c) // 2
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(out_c[:half], out_e[half:]))


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_recomputed_batchnorm_outputs_give_the_same_gradients(dropout, monkeypatch):
    """The backbone rebuilds each fused batch norm's output in the backward pass instead of
    keeping it: the gradients are bit for bit those of keeping it. With dropout the output is
    changed in place before the next layer saves it, so it must be kept (control: nothing
    is rebuilt then)."""
    import contextlib

    from dwsnets import DWSNet
    from dwsnets.nn import models, norm

    sizes = (2, 8, 8, 1)
    model = DWSNet(sizes, 3, hidden_channels=6, num_layers=3, norm="batch", dropout=dropout).double()
    ws = WeightSpace.randn(sizes, 5).to(torch.float64)
    monkeypatch.setattr(norm, "RECOMPUTE_MIN_BYTES", 0)  # rebuild even these small outputs
    rebuilt = []
    kernel = norm._kernel
    monkeypatch.setattr(norm, "_kernel", lambda name, compiled: (lambda *a: rebuilt.append(1) or kernel(name, compiled)(*a))
                        if name == "normalise" else kernel(name, compiled))  # fmt: skip

    def gradients(recompute):
        monkeypatch.setattr(models, "recompute_normalised", norm.recompute_normalised if recompute
                            else contextlib.nullcontext)  # fmt: skip
        model.zero_grad()
        torch.manual_seed(0)  # the same dropout masks
        out = model(ws)
        rebuilt.clear()
        out.square().sum().backward()
        return [p.grad.clone() for p in model.parameters()], len(rebuilt)

    (kept, none), (recomputed, count) = gradients(False), gradients(True)
    assert none == 0 and all(torch.equal(a, b) for a, b in zip(kept, recomputed))
    assert count == (0 if dropout else 2)  # the hidden-to-hidden slot of layers 2 and 3


def test_the_compile_switch_is_per_model_and_falls_back_on_compile_failures_only(monkeypatch):
    """``compile_kernels(model)`` switches that model alone; a compile failure warns and
    runs eager, while an error of the computation itself (out of memory) is raised."""
    import torch._dynamo.exc as dynamo_exc

    from dwsnets.nn import compile_kernels, norm

    one, other = WSBatchNorm(SIZES, 2), WSBatchNorm(SIZES, 2)
    compile_kernels(one)
    assert one.compiled and not other.compiled  # the other model keeps eager kernels

    def failing(error):
        def compile_(fn, **kwargs):
            def run(*args):
                raise error

            return run

        return compile_

    ws = WeightSpace.randn(SIZES, 4, 2)
    for error, raised in ((dynamo_exc.BackendCompilerFailed(lambda: None, RuntimeError("no compiler"), None), False),
                          (torch.OutOfMemoryError("out of memory"), True)):  # fmt: skip
        monkeypatch.setattr(norm, "_compiled", {})
        monkeypatch.setattr(norm, "_failed", set())
        monkeypatch.setattr(torch, "compile", failing(error))
        if raised:
            with pytest.raises(torch.OutOfMemoryError):
                one(ws)
        else:
            with pytest.warns(UserWarning, match="compiling the fused kernels failed"):
                out = one(ws)
            torch.testing.assert_close(out.tensors[0], other.train()(ws).tensors[0])
            assert "stats" in norm._failed
