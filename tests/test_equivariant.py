"""The complete equivariant layer: equivariance (with controls), completeness, gradients."""

from __future__ import annotations

import pytest
import torch

from dwsnets import DWSLayer, Entrywise, TensorLayout, WeightSpace, WeightSpaceError, WeightSpaceLayout
from helpers import ARCHITECTURES, commutant_dimension, fixed_space_dimension, non_symmetry

SMALL = [(3, 2), (2, 4, 1), (1, 3, 2), (2, 3, 3, 2), (1, 3, 2, 2, 2), (2, 2, 3, 1)]


@pytest.mark.parametrize("sizes", ARCHITECTURES)
@pytest.mark.parametrize("per_network", [False, True])
def test_equivariance_with_control(sizes, per_network):
    layer = DWSLayer(sizes, 3, 4)
    _randomise(layer)
    ws = WeightSpace.randn(sizes, 5, 3)
    perms = ws.random_permutations(per_network=per_network)
    assert layer(ws.permute(perms)).allclose(layer(ws).permute(perms), atol=1e-10)
    # control: a non-symmetry must not commute with the layer
    assert not layer(non_symmetry(ws)).allclose(non_symmetry(layer(ws)), atol=1e-6)


@pytest.mark.parametrize("sizes", SMALL)
def test_linear_part_is_complete(sizes):
    """Rank of the span of the layer's linear maps == dimension of the commutant,
    computed independently from the group's generators."""
    layer = DWSLayer(sizes, 1, 1, bias=False)
    expected = commutant_dimension(sizes)
    assert expected == layer.layout.equivariant_dimension()
    assert sum(p.numel() for p in layer.parameters()) == expected  # no redundant parameter
    assert _span_rank(layer, sizes, draws=expected + 10) == expected


def test_completeness_with_channels():
    sizes = (2, 2, 2, 2)
    layer = DWSLayer(sizes, 2, 3, bias=False)
    expected = commutant_dimension(sizes, c_in=2, c_out=3)
    assert expected == 6 * commutant_dimension(sizes)
    assert _span_rank(layer, sizes, draws=expected + 10, c_in=2) == expected


def test_closed_form_dimension():
    # DESIGN.md: (2M - 3 + d0 + 2 dM)^2 + (d0 + 2)^2 + (dM + 2)^2 + 10M - 29 for M >= 3
    def closed(s):
        m, d0, dm = len(s) - 1, s[0], s[-1]
        return (2 * m - 3 + d0 + 2 * dm) ** 2 + (d0 + 2) ** 2 + (dm + 2) ** 2 + 10 * m - 29

    for sizes in [(2, 32, 32, 1), (2, 3, 3, 2), (1, 3, 2, 2, 2), (3, 5, 4, 6, 2, 4)]:
        layout = WeightSpaceLayout.mlp(sizes)
        assert layout.equivariant_dimension() == closed(sizes)
        assert layout.invariant_dimension() == 2 * (len(sizes) - 1) - 3 + sizes[0] + 2 * sizes[-1]
    assert WeightSpaceLayout.mlp((2, 32, 32, 1)).equivariant_dimension() == 75
    assert WeightSpaceLayout.mlp((2, 32, 32, 1)).invariant_dimension() == 7


@pytest.mark.parametrize("sizes", SMALL)
def test_bias_is_complete(sizes):
    layer = DWSLayer(sizes, 1, 1, bias=True)
    zero = WeightSpace.from_flat(torch.zeros(1, layer.layout.numel), sizes)
    vectors = []
    for _ in range(layer.layout.invariant_dimension() + 5):
        torch.nn.init.normal_(layer.bias)
        vectors.append(layer(zero).flatten()[0])
    expected = fixed_space_dimension(sizes)
    assert expected == layer.layout.invariant_dimension() == layer.bias.numel()
    assert int(torch.linalg.matrix_rank(torch.stack(vectors))) == expected


@pytest.mark.parametrize("sizes", [(2, 3, 3, 2), (1, 4, 1), (3, 2)])
def test_gradients_reach_every_parameter(sizes):
    layer = DWSLayer(sizes, 2, 3)
    ws = WeightSpace.randn(sizes, 4, 2).map(lambda t: t.requires_grad_())
    out = layer(ws)
    sum((t**2).sum() for t in out.tensors).backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for t in ws.tensors:
        assert t.grad is not None and t.grad.abs().sum() > 0


def test_backward_matches_finite_differences():
    sizes = (2, 3, 3, 2)
    layer = DWSLayer(sizes, 2, 2)
    _randomise(layer)
    xs = [t.requires_grad_() for t in WeightSpace.randn(sizes, 2, 2).tensors]
    params = list(layer.parameters())

    def fn(*inputs):
        out = layer.forward_tensors(inputs)
        return tuple(out)

    assert torch.autograd.gradcheck(fn, tuple(xs), eps=1e-6, atol=1e-6)

    # and with respect to the weights, through a scalar
    def loss_of(*weights):
        for p, w in zip(params, weights):
            p.data = w.detach()
        return sum((t.sin()).sum() for t in layer.forward_tensors(xs))

    grads = torch.autograd.grad(sum((t.sin()).sum() for t in layer.forward_tensors(xs)), params)
    for p, g in zip(params, grads):
        direction = torch.randn_like(p)
        with torch.no_grad():
            p += 1e-6 * direction
            up = sum((t.sin()).sum() for t in layer.forward_tensors(xs))
            p -= 2e-6 * direction
            down = sum((t.sin()).sum() for t in layer.forward_tensors(xs))
            p += 1e-6 * direction
        assert torch.allclose((up - down) / 2e-6, (g * direction).sum(), rtol=1e-4, atol=1e-6)


def test_deep_stack_keeps_scale():
    """The documented initialisation keeps ReLU activations at a stable scale."""
    torch.manual_seed(1)
    for sizes in [(2, 32, 32, 1), (1, 16, 16, 16, 16, 1)]:
        ws = WeightSpace.randn(sizes, 16)
        channels = 1
        with torch.no_grad():
            for _ in range(12):
                ws = Entrywise("relu")(DWSLayer(sizes, channels, 32)(ws))
                channels = 32
                rms = [float(t.pow(2).mean().sqrt()) for t in ws.tensors]
                assert 0.1 < min(rms) and max(rms) < 3.0, rms


def test_input_validation():
    layer = DWSLayer((2, 3, 1), 2, 4)
    with pytest.raises(WeightSpaceError, match="input channel"):
        layer(WeightSpace.randn((2, 3, 1), 2, 1))
    with pytest.raises(WeightSpaceError, match="built for layer_sizes=\\(2, 3, 1\\)"):
        layer(WeightSpace.randn((2, 4, 1), 2, 2))
    with pytest.raises(TypeError, match="expects a WeightSpace"):
        layer(torch.randn(3, 3))
    with pytest.raises(ValueError, match="positive"):
        DWSLayer((2, 3, 1), 0, 4)


def test_float32_and_repr():
    layer = DWSLayer((2, 8, 8, 1), 1, 4).float()
    out = layer(WeightSpace.randn((2, 8, 8, 1), 3, dtype=torch.float32))
    assert out.dtype == torch.float32 and out.channels == 4
    assert "layer_sizes=(2, 8, 8, 1)" in repr(layer)


def test_generic_layout_conv_like():
    """A layout other than an MLP: a 'conv' weight with two fixed spatial axes, a tensor
    stored with its hidden axes transposed, and a square fixed-only tensor."""
    layout = WeightSpaceLayout(
        (
            TensorLayout("conv1", (4, 2, 3, 3), (1, None, None, None)),
            TensorLayout("conv2", (5, 4, 3, 3), (2, 1, None, None)),
            TensorLayout("convT", (4, 5), (1, 2)),
            TensorLayout("bias1", (4,), (1,)),
            TensorLayout("head", (3, 5), (None, 2)),
            TensorLayout("out", (3,), (None,)),
        )
    )
    layer = DWSLayer(layout, 2, 3)
    _randomise(layer)
    xs = [torch.randn(2, 2, *t.shape) for t in layout.tensors]
    p1, p2 = torch.randperm(4), torch.randperm(5)

    def act(tensors, perm1, perm2):
        out = []
        for t, x in zip(layout.tensors, tensors):
            for axis, h in enumerate(t.hidden):
                if h == 1:
                    x = x.index_select(2 + axis, perm1)
                elif h == 2:
                    x = x.index_select(2 + axis, perm2)
            out.append(x)
        return out

    ys = layer.forward_tensors(xs)
    ys_perm = layer.forward_tensors(act(xs, p1, p2))
    for a, b in zip(ys_perm, act(ys, p1, p2)):
        assert torch.allclose(a, b, atol=1e-10)
    # control: permuting hidden index 1 on conv1 only is not a symmetry
    broken = list(xs)
    broken[0] = xs[0].index_select(2, torch.tensor([1, 0, 2, 3]))
    moved = layer.forward_tensors(broken)
    assert not all(
        torch.allclose(a, b, atol=1e-6) for a, b in zip(moved, act(ys, torch.tensor([1, 0, 2, 3]), torch.arange(5)))
    )
    # completeness on this layout too
    assert sum(p.numel() for p in layer.weight.values()) == layout.equivariant_dimension(2, 3)


# ---------------------------------------------------------------------------- helpers


def _randomise(layer):
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()


def _span_rank(layer, sizes, draws, c_in=1):
    n = layer.layout.numel
    basis = WeightSpace.from_flat(torch.eye(n * c_in), sizes, channels=c_in)
    maps = []
    for _ in range(draws):
        _randomise(layer)
        with torch.no_grad():
            maps.append(layer(basis).flatten().reshape(-1))
    return int(torch.linalg.matrix_rank(torch.stack(maps)))


CNN_LAYOUT = WeightSpaceLayout.cnn((2, 3, 2), [(2, 2), (2, 2)], (3, 2))


def _layout_generators(layout: WeightSpaceLayout) -> list[torch.Tensor]:
    """A swap and a cycle of every hidden index, as matrices on the flat vector, built
    with ``permute_tensors`` on basis vectors (which the CNN function-preservation test
    in test_weight_space checks on real networks)."""
    from dwsnets.core.layout import permute_tensors

    n = layout.numel
    basis = WeightSpace.from_flat(torch.eye(n), layout)
    sizes = list(layout.hidden_sizes.values())
    gens = []
    for k, d in enumerate(sizes):
        for sigma in ([1, 0, *range(2, d)], [(i + 1) % d for i in range(d)]):
            perms = [torch.arange(s) for s in sizes]
            perms[k] = torch.tensor(sigma)
            moved = WeightSpace.from_tensors(permute_tensors(layout, basis.tensors, perms)).flatten()
            gens.append(moved.T.contiguous())  # column j: the image of basis vector j
    return gens


def test_cnn_layer_is_equivariant_and_complete():
    """On a CNN layout (kernel axes fixed, the last convolution's channels shared with the
    first linear layer) the layer is equivariant, with a control, and spans the commutant."""
    from dwsnets.testing import assert_equivariant

    layer = DWSLayer(CNN_LAYOUT, 2, 3)
    _randomise(layer)
    assert_equivariant(layer, WeightSpace.randn(CNN_LAYOUT, 4, 2))
    tiny = WeightSpaceLayout.cnn((1, 2, 2), [(2,), (2,)], (2, 1))  # small enough for the rank computation
    single = DWSLayer(tiny, 1, 1, bias=False)
    gens = _layout_generators(tiny)
    n = tiny.numel
    eye = torch.eye(n)
    constraints = torch.cat([torch.kron(p.T.contiguous(), eye) - torch.kron(eye, p) for p in gens])
    expected = n * n - int(torch.linalg.matrix_rank(constraints))
    assert expected == tiny.equivariant_dimension()
    basis = WeightSpace.from_flat(torch.eye(n), tiny)
    maps = []
    for _ in range(expected + 10):
        _randomise(single)
        with torch.no_grad():
            maps.append(single(basis).flatten().reshape(-1))
    assert int(torch.linalg.matrix_rank(torch.stack(maps))) == expected


def test_terms_table_matches_the_characterisation():
    """The layer's explicit table: every pair of tensors and subset of their shared hidden
    indices, with the per-block parameter counts of DESIGN.md section 3."""
    sizes = (3, 5, 4, 6, 2)  # d_0 = 3, d_M = 2, M = 4
    layer = DWSLayer(sizes, 1, 1)
    table = layer.terms()
    per_pair: dict[tuple[str, str], int] = {}
    for term in table:
        per_pair[(term.source, term.target)] = per_pair.get((term.source, term.target), 0) + term.parameters
        hidden = {t.name: set(t.hidden_axes) for t in layer.layout.tensors}
        assert set(term.kept) <= hidden[term.source] & hidden[term.target]
    assert (
        sum(t.parameters for t in table)
        == layer.layout.equivariant_dimension()
        == sum(p.numel() for p in layer.weight.values())
    )
    assert per_pair[("weight2", "weight2")] == 4  # interior: identity, row, column and full pooling
    assert per_pair[("weight1", "weight1")] == 2 * 3**2
    assert per_pair[("weight4", "weight4")] == 2 * 2**2
    assert per_pair[("weight2", "weight3")] == 2  # one shared index
    assert per_pair[("weight2", "weight4")] == 1 * 2  # no shared index, d_M = 2 fixed outputs
    assert per_pair[("bias2", "bias2")] == 2  # DeepSets
    assert per_pair[("bias4", "bias4")] == 2**2
    assert len(per_pair) == len(layer.layout.tensors) ** 2  # every pair of tensors interacts


def test_blocked_interior_kernel_matches_one_block(monkeypatch):
    """The interior-weight kernel works in blocks of networks on the CPU; any block size
    gives the same outputs and gradients (to rounding)."""
    import dwsnets.nn.equivariant as equivariant

    torch.manual_seed(5)
    sizes = (2, 6, 5, 1)
    layer = DWSLayer(sizes, 3, 4)
    _randomise(layer)
    ws = WeightSpace.randn(sizes, 7, 3)
    results = []
    for block_bytes in (2**40, 1, 3 * 6 * 5 * 4 * 8):
        monkeypatch.setattr(equivariant, "_BLOCK_BYTES", block_bytes)
        xs = [t.clone().requires_grad_() for t in ws.tensors]
        out = layer.forward_tensors(xs)
        loss = sum((t.sin()).sum() for t in out)
        results.append((out, torch.autograd.grad(loss, [*xs, *layer.parameters()])))
    for out, grads in results[1:]:
        for a, b in zip(out, results[0][0]):
            assert torch.allclose(a, b, atol=1e-12)
        for a, b in zip(grads, results[0][1]):
            assert torch.allclose(a, b, atol=1e-12)


def test_blocked_kernel_accumulates_bf16_weight_gradients_in_float32(monkeypatch):
    """Under bf16, the interior kernel's weight gradient is a sum over blocks of networks:
    a bf16 running sum over 1,024 one-network blocks was 3.9% off the float64 sum; a
    float32 one leaves only the inputs' own bf16 rounding (about 0.3%)."""
    import dwsnets.nn.equivariant as equivariant

    monkeypatch.setattr(equivariant, "_BLOCK_BYTES", 1)  # one network per block
    torch.manual_seed(0)
    batch, a, b, fin, fout = 1024, 8, 8, 16, 16
    x = torch.randn(batch, a, b, fin, dtype=torch.float32)
    weight = torch.randn(fin, fout, dtype=torch.float32, requires_grad=True)
    row, col = torch.randn(batch, a, fout).bfloat16(), torch.randn(batch, b, fout).bfloat16()
    out = equivariant._Aligned2.apply(x, weight, row, col)
    grad = torch.randn(out.shape).bfloat16()
    out.backward(grad)
    assert weight.grad.dtype == torch.float32
    exact = x.double().reshape(-1, fin).t() @ grad.double().reshape(-1, fout)
    error = float((weight.grad.double() - exact).norm() / exact.norm())
    assert error < 0.01, error
