"""The sign-equivariant model: invariant to hidden permutations and to the sine's sign flips,
exactly, each with a control; its layer is equivariant to both; rendered SIRENs keep their
function under the flips the model ignores."""

from __future__ import annotations

import pytest
import torch

from dwsnets import WeightSpace
from dwsnets.core.weight_space import WeightSpaceError
from dwsnets.nn.sign_equivariant import SignEquivariantLayer, SignEquivariantNet
from helpers import ARCHITECTURES, non_symmetry

HIDDEN = [s for s in ARCHITECTURES if len(s) > 2]


def _model(sizes, seed=0):
    torch.manual_seed(seed)
    model = SignEquivariantNet(sizes, 3, hidden_channels=6, num_layers=2, head_hidden=(8,))
    ws = WeightSpace.randn(sizes, 8)
    model.input_norm.fit(ws)
    return model.eval(), ws


def _incoming_only(ws: WeightSpace, signs) -> WeightSpace:
    """Negate hidden neurons' incoming weights and biases but not their outgoing weights:
    not a symmetry (the network's function changes)."""
    weights = [w * s[:, None, :, None] for w, s in zip(ws.weights, signs)] + list(ws.weights[len(signs) :])
    biases = [b * s[:, None] for b, s in zip(ws.biases, signs)] + list(ws.biases[len(signs) :])
    return WeightSpace(weights, biases)


@pytest.mark.parametrize("sizes", ARCHITECTURES)
def test_invariant_to_permutations_with_control(sizes):
    model, ws = _model(sizes)
    perms = ws.random_permutations(torch.Generator().manual_seed(2), per_network=True)
    with torch.no_grad():
        assert torch.allclose(model(ws.permute(perms)), model(ws), atol=1e-5)
        assert not torch.allclose(model(non_symmetry(ws)), model(ws), atol=1e-4)


@pytest.mark.parametrize("sizes", HIDDEN)
def test_invariant_to_sign_flips_and_permutations_with_controls(sizes):
    model, ws = _model(sizes)
    gen = torch.Generator().manual_seed(1)
    signs = ws.random_signs(gen, per_network=True)
    perms = ws.random_permutations(gen, per_network=True)
    moved = ws.flip_signs(signs).permute(perms)
    assert not moved.allclose(ws)
    with torch.no_grad():
        out = model(ws)
        assert torch.allclose(model(moved), out, atol=1e-5)
        # controls: negating only the incoming side is no symmetry, and the model sees it
        assert not torch.allclose(model(_incoming_only(ws, signs)), out, atol=1e-4)
        assert not torch.allclose(model(-ws), out, atol=1e-4)  # negating every entry is none either


def test_layer_is_equivariant_to_signs_and_permutations_with_control():
    torch.manual_seed(0)
    sizes, batch, c = (2, 5, 4, 3), 3, 7
    layer = SignEquivariantLayer(sizes, c)
    nodes = [torch.randn(batch, d, c) for d in sizes]
    edges = [torch.randn(batch, sizes[k + 1], sizes[k], c) for k in range(len(sizes) - 1)]
    hidden = range(1, len(sizes) - 1)
    s = {k: torch.randint(0, 2, (sizes[k],)).float() * 2 - 1 for k in hidden}
    p = {k: torch.randperm(sizes[k]) for k in hidden}

    def act(nodes, edges):
        sign = [s.get(k, torch.ones(d)) for k, d in enumerate(sizes)]
        perm = [p.get(k, torch.arange(d)) for k, d in enumerate(sizes)]
        n = [(h * sign[k][:, None])[:, perm[k]] for k, h in enumerate(nodes)]
        e = [(x * sign[k + 1][:, None, None] * sign[k][None, :, None])[:, perm[k + 1]][:, :, perm[k]]
             for k, x in enumerate(edges)]  # fmt: skip
        return n, e

    with torch.no_grad():
        n1, e1 = layer(*act(nodes, edges))
        n2, e2 = act(*layer(nodes, edges))
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(n1 + e1, n2 + e2))
        # control: flipping the nodes alone, not their weights, breaks the relation
        n3, _ = layer([h * -1 if 0 < k < len(sizes) - 1 else h for k, h in enumerate(nodes)], edges)
        n4 = [h * -1 if 0 < k < len(sizes) - 1 else h for k, h in enumerate(layer(nodes, edges)[0])]
        assert not all(torch.allclose(a, b, atol=1e-4) for a, b in zip(n3, n4))


def test_rendered_sirens_keep_their_function_under_the_flips():
    from dwsnets.inr.siren import siren_forward

    torch.manual_seed(0)
    ws = WeightSpace.randn((2, 8, 8, 1), 4)
    signs = ws.random_signs(torch.Generator().manual_seed(3), per_network=True)
    coords = torch.rand(50, 2) * 2 - 1
    same = siren_forward(coords, ws.flip_signs(signs))
    assert torch.allclose(same, siren_forward(coords, ws), atol=1e-5)
    assert not torch.allclose(siren_forward(coords, _incoming_only(ws, signs)), same, atol=1e-3)


def test_errors_name_the_problem():
    from dwsnets import WeightSpaceLayout

    with pytest.raises(WeightSpaceError, match="MLP weights"):
        SignEquivariantNet(WeightSpaceLayout.cnn((1, 4, 4), [(3, 3), (3, 3)], (2,)), 3)
    model, _ = _model((2, 4, 1))
    with pytest.raises(WeightSpaceError, match="built for layer sizes"):
        model(WeightSpace.randn((2, 5, 1), 2))
    with pytest.raises(ValueError, match="num_layers and hidden_channels"):
        SignEquivariantNet((2, 4, 1), 3, num_layers=0)
    assert "hidden_channels=6" in repr(model) and "channels=6" in repr(model.layers[0])


def test_compiled_step_matches_the_eager_one():
    """``compile_kernels(model)`` (``--compile``) fuses each layer's step: outputs and
    gradients agree with eager (float64), and the compiled model keeps the symmetry."""
    import warnings

    from dwsnets.nn import compile_kernels

    torch.manual_seed(0)
    model = SignEquivariantNet((2, 5, 4, 1), 3, hidden_channels=4, num_layers=1, head_hidden=()).double().eval()
    ws = WeightSpace.randn((2, 5, 4, 1), 4).map(lambda t: t.double())
    results = []
    for compiled in (False, True):
        compile_kernels(model, compiled)
        if True:  # (the switch is the model's own: nothing to restore)
            with warnings.catch_warnings():
                warnings.filterwarnings("error", message="dwsnets: compiling")  # no silent eager fallback
                out = model(ws)
                grads = torch.autograd.grad(out.square().sum(), list(model.parameters()))
                signs = ws.random_signs(torch.Generator().manual_seed(4), per_network=True)
                flipped = model(ws.flip_signs(signs))
            results.append((out.detach(), grads, flipped.detach()))
    (out_e, grads_e, _), (out_c, grads_c, flipped_c) = results
    assert torch.allclose(out_e, out_c, atol=1e-10)
    assert all(torch.allclose(a, b, atol=1e-9) for a, b in zip(grads_e, grads_c))
    assert torch.allclose(flipped_c, out_c, atol=1e-10)
