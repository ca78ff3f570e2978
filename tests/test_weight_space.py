"""The WeightSpace container: validation, ops, module round trips, the symmetry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dwsnets import WeightSpace, WeightSpaceError, WeightSpaceLayout, random_hidden_permutations


def mlp(sizes, act=nn.Tanh):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def test_shapes_and_properties():
    ws = WeightSpace.randn((2, 5, 4, 1), batch_size=3, channels=2)
    assert ws.layer_sizes == (2, 5, 4, 1)
    assert ws.batch_size == 3 == len(ws) and ws.channels == 2 and ws.num_layers == 3
    assert ws.weights[1].shape == (3, 2, 4, 5) and ws.biases[2].shape == (3, 2, 1)
    assert "layer_sizes=(2, 5, 4, 1)" in repr(ws)


def test_immutable():
    ws = WeightSpace.randn((2, 3, 1), 2)
    with pytest.raises(AttributeError):
        ws.weights = ()
    assert isinstance(ws.weights, tuple)


@pytest.mark.parametrize(
    "weights, biases, message",
    [
        (
            [torch.randn(2, 1, 3, 2), torch.randn(2, 1, 1, 4)],
            [torch.randn(2, 1, 3), torch.randn(2, 1, 1)],
            "do not chain",
        ),
        ([torch.randn(2, 1, 3, 2)], [torch.randn(3, 1, 3)], "batch size"),
        ([torch.randn(2, 1, 3, 2)], [torch.randn(2, 2, 3)], "channels"),
        ([torch.randn(2, 1, 3, 2)], [torch.randn(2, 1, 4)], "entries"),
        ([torch.randn(1, 3, 2)], [torch.randn(1, 3)], r"\(B, C, d_out, d_in, \*kernel\)"),
        ([torch.ones(2, 1, 3, 2, dtype=torch.int64)], [torch.ones(2, 1, 3, dtype=torch.int64)], "floating point"),
        ([torch.randn(2, 1, 3, 2, dtype=torch.float64)], [torch.randn(2, 1, 3, dtype=torch.float32)], "dtype"),
        ([torch.randn(2, 1, 3, 2)], [], "1 weight tensors but 0 bias"),
        ([], [], "at least one layer"),
    ],
)
def test_validation_errors(weights, biases, message):
    with pytest.raises(WeightSpaceError, match=message):
        WeightSpace(weights, biases)


def test_indexing_cat_map_and_arithmetic():
    ws = WeightSpace.randn((2, 3, 1), 5, 2)
    assert ws[1].batch_size == 1 and ws[1:4].batch_size == 3 and ws[torch.tensor([0, 2])].batch_size == 2
    assert torch.equal(ws[-1].weights[0][0], ws.weights[0][4])
    with pytest.raises(IndexError):
        ws[5]
    both = WeightSpace.cat([ws, ws[:2]])
    assert both.batch_size == 7
    assert WeightSpace.cat([ws, ws], dim="channel").channels == 4
    with pytest.raises(WeightSpaceError, match="layer sizes"):
        WeightSpace.cat([ws, WeightSpace.randn((2, 4, 1), 5, 2)])
    doubled = ws + ws
    assert doubled.allclose(ws * 2) and (doubled - ws).allclose(ws) and (-ws).allclose(ws * -1)
    assert ws.map(torch.zeros_like).flatten().abs().sum() == 0
    assert len(list(iter(ws))) == 5


def test_flatten_round_trip():
    ws = WeightSpace.randn((3, 4, 2), 6, 3)
    flat = ws.flatten()
    assert flat.shape == (6, 3 * (12 + 4 + 8 + 2))
    assert WeightSpace.from_flat(flat, (3, 4, 2), channels=3).allclose(ws)
    with pytest.raises(WeightSpaceError, match="flat tensor"):
        WeightSpace.from_flat(flat, (3, 4, 3), channels=3)


def test_modules_round_trip_gives_same_function():
    torch.manual_seed(0)
    nets = [mlp((2, 8, 6, 3)) for _ in range(4)]
    ws = WeightSpace.from_modules(nets)
    assert ws.layer_sizes == (2, 8, 6, 3) and ws.channels == 1
    x = torch.randn(10, 2)
    rebuilt = ws.to_modules(nn.Tanh)
    rebuilt_template = ws.to_modules(template=nets[0])
    for net, a, b in zip(nets, rebuilt, rebuilt_template):
        assert torch.allclose(net(x), a(x)) and torch.allclose(net(x), b(x))


def test_state_dict_round_trip():
    nets = [mlp((3, 5, 2)) for _ in range(3)]
    ws = WeightSpace.from_state_dicts([n.state_dict() for n in nets])
    assert ws.allclose(WeightSpace.from_modules(nets))
    for net, sd in zip(nets, ws.to_state_dicts()):
        fresh = mlp((3, 5, 2))
        fresh.load_state_dict(sd)
        x = torch.randn(4, 3)
        assert torch.allclose(fresh(x), net(x))


def test_module_errors():
    with pytest.raises(WeightSpaceError, match="not an MLP or CNN.*BatchNorm1d"):
        WeightSpace.from_modules([nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))])
    with pytest.raises(WeightSpaceError, match="follows a linear layer"):
        WeightSpace.from_modules([nn.Sequential(nn.Linear(2, 3), nn.Unflatten(1, (3, 1)), nn.Conv1d(3, 2, 1))])
    with pytest.raises(WeightSpaceError, match="global average pooling"):
        WeightSpace.from_modules([nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))])
    with pytest.raises(WeightSpaceError, match="groups=2"):
        WeightSpace.from_modules([nn.Sequential(nn.Conv1d(2, 2, 3, groups=2), nn.Linear(2, 2))])
    with pytest.raises(WeightSpaceError, match="mismatched architectures: network 0 .* network 1"):
        WeightSpace.from_modules([mlp((2, 4, 1)), mlp((2, 5, 1))])
    with pytest.raises(WeightSpaceError, match="takes 3 inputs"):
        WeightSpace.from_modules([nn.Sequential(nn.Linear(2, 4), nn.Linear(3, 1))])
    with pytest.raises(WeightSpaceError, match="not an MLP"):
        WeightSpace.from_state_dicts({"scale.weight": torch.randn(3)})
    with pytest.raises(WeightSpaceError, match="unexpected entry"):
        WeightSpace.from_state_dicts({"0.weight": torch.randn(2, 1), "bn.running_mean": torch.randn(2)})
    bad = mlp((2, 3, 1))
    with torch.no_grad():
        bad[0].weight[0, 0] = float("nan")
    with pytest.raises(WeightSpaceError, match="NaN.*batch index 1"):
        WeightSpace.from_modules([mlp((2, 3, 1)), bad])
    with pytest.raises(WeightSpaceError, match="one channel"):
        WeightSpace.randn((2, 3, 1), 1, 2).to_modules()


@pytest.mark.parametrize("per_network", [False, True])
def test_permute_keeps_function(per_network):
    torch.manual_seed(0)
    nets = [mlp((2, 7, 5, 4, 3)) for _ in range(3)]
    ws = WeightSpace.from_modules(nets)
    perms = ws.random_permutations(per_network=per_network)
    permuted = ws.permute(perms)
    assert not permuted.allclose(ws)
    x = torch.randn(9, 2)
    for net, new in zip(nets, permuted.to_modules(nn.Tanh)):
        assert torch.allclose(net(x), new(x))
    # inverse permutations restore the weights
    inverse = [torch.argsort(p, dim=-1) for p in perms]
    assert permuted.permute(inverse).allclose(ws)


@pytest.mark.parametrize("per_network", [False, True])
def test_sign_flips_keep_an_odd_networks_function(per_network):
    """Negating a hidden neuron's incoming weights, bias and outgoing weights keeps a tanh
    (odd) network's function exactly; controls: flipping the incoming side alone, or a ReLU
    network, changes the function. Flipping twice restores the weights."""
    from dwsnets.inr import coordinate_grid, siren_forward

    torch.manual_seed(0)
    nets = [mlp((2, 7, 5, 4, 3)) for _ in range(3)]
    ws = WeightSpace.from_modules(nets)
    signs = ws.random_signs(torch.Generator().manual_seed(1), per_network=per_network)
    flipped = ws.flip_signs(signs)
    assert not flipped.allclose(ws) and flipped.flip_signs(signs).allclose(ws, atol=0)
    x = torch.randn(9, 2)
    for net, new in zip(nets, flipped.to_modules(nn.Tanh)):
        assert torch.allclose(net(x), new(x))
    relu = ws.to_modules(nn.ReLU)
    assert not all(torch.allclose(a(x), b(x)) for a, b in zip(relu, flipped.to_modules(nn.ReLU)))
    half = WeightSpace.from_tensors([t * (-1 if i == 0 else 1) for i, t in enumerate(ws.tensors)])
    assert not all(torch.allclose(a(x), b(x)) for a, b in zip(ws.to_modules(nn.Tanh), half.to_modules(nn.Tanh)))
    # a SIREN renders the same image, bit for bit (sine is odd in floating point too)
    siren = WeightSpace.randn((2, 16, 16, 1), 4)
    grid = coordinate_grid(6, 6).to(siren.dtype)
    same = siren.flip_signs(siren.random_signs(per_network=True))
    assert torch.equal(siren_forward(grid, same, 30.0), siren_forward(grid, siren, 30.0))


def test_sign_flip_errors():
    ws = WeightSpace.randn((2, 3, 4, 1), 2)
    with pytest.raises(WeightSpaceError, match="expected 2 sign vector"):
        ws.flip_signs([torch.ones(3)])
    with pytest.raises(WeightSpaceError, match=r"shape \(3,\) or \(2, 3\)"):
        ws.flip_signs([torch.ones(4), torch.ones(4)])
    with pytest.raises(WeightSpaceError, match=r"must be \+1 or -1"):
        ws.flip_signs([torch.full((3,), 2.0), torch.ones(4)])


def test_permute_errors():
    ws = WeightSpace.randn((2, 3, 4, 1), 2)
    with pytest.raises(WeightSpaceError, match="expected 2 permutation"):
        ws.permute([torch.arange(3)])
    with pytest.raises(WeightSpaceError, match="not a permutation"):
        ws.permute([torch.tensor([0, 0, 1]), torch.arange(4)])
    with pytest.raises(WeightSpaceError, match="length 4"):
        ws.permute([torch.arange(4), torch.arange(4)])
    with pytest.raises(WeightSpaceError, match="integer"):
        ws.permute([torch.zeros(3), torch.arange(4)])
    perms = random_hidden_permutations((2, 3, 4, 1), batch_size=5)
    assert [p.shape for p in perms] == [(5, 3), (5, 4)]


def test_to_and_detach():
    ws = WeightSpace.randn((2, 3, 1), 2).to(torch.float32)
    assert ws.dtype == torch.float32 and ws.device.type == "cpu"
    assert ws.detach().clone().allclose(ws)


def cnn(channels=(3, 4, 5), linear=(6, 2)):
    layers: list[nn.Module] = []
    for a, b in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv2d(a, b, 3, padding=1), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    widths = (channels[-1], *linear)
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def test_cnn_weight_space_follows_its_layout():
    """A CNN (convolutions, global average pooling, linear layers) is a weight space whose
    kernels are fixed axes; permuting hidden channels keeps every network's function."""
    torch.manual_seed(0)
    nets = [cnn() for _ in range(3)]
    ws = WeightSpace.from_modules(nets)
    assert ws.layer_sizes == (3, 4, 5, 6, 2)
    assert ws.kernel_shapes == ((3, 3), (3, 3), (), ())
    assert ws.weights[0].shape == (3, 1, 4, 3, 3, 3)
    assert ws.layout == WeightSpaceLayout.cnn((3, 4, 5), [(3, 3), (3, 3)], (6, 2))
    assert [t.hidden for t in ws.layout.tensors[:2]] == [(1, None, None, None), (2, 1, None, None)]
    x = torch.randn(2, 3, 7, 7)
    permuted = ws.permute(ws.random_permutations(per_network=True))
    assert not permuted.allclose(ws)
    for net, same, rebuilt in zip(nets, permuted.to_modules(template=nets[0]), ws.to_modules(nn.ReLU)):
        assert torch.allclose(net(x), same(x), atol=1e-5)
        assert rebuilt[0].weight.shape == (4, 3, 3, 3)
    # the default rebuild (ReLU everywhere, 'same' padding) matches a network built that way
    relu = [
        nn.Sequential(
            nn.Conv2d(3, 4, 3, padding="same"),
            nn.ReLU(),
            nn.Conv2d(4, 5, 3, padding="same"),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(5, 6),
            nn.ReLU(),
            nn.Linear(6, 2),
        )
    ]
    again = WeightSpace.from_modules(relu).to_modules(nn.ReLU)[0]
    assert torch.allclose(again(x), relu[0](x), atol=1e-6)
    # state dicts of CNNs, flat vectors and concatenation follow the layout too
    assert WeightSpace.from_state_dicts([n.state_dict() for n in nets]).allclose(ws)
    assert WeightSpace.from_flat(ws.flatten(), ws.layout).allclose(ws)
    with pytest.raises(WeightSpaceError, match="kernels"):
        WeightSpace.cat([ws, WeightSpace.randn((3, 4, 5, 6, 2), 2)])
    with pytest.raises(WeightSpaceError, match="mismatched architectures"):
        WeightSpace.from_modules([cnn(), cnn(channels=(3, 4, 4))])
