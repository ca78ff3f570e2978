"""Encodings of weight values: shapes, the permutation symmetry they keep, and the sign
symmetry the even one adds, each with a control."""

from __future__ import annotations

import pytest
import torch

from dwsnets import DWSNet, WeightSpace
from dwsnets.nn.encoding import FourierEncoding
from helpers import ARCHITECTURES, non_symmetry


def _model(sizes, encoding, seed=0):
    torch.manual_seed(seed)
    model = DWSNet(sizes, 3, hidden_channels=6, num_layers=2, head_hidden=(8,), norm="batch", input_encoding=encoding,
                   fourier_features=4)  # fmt: skip
    ws = WeightSpace.randn(sizes, 8)
    model.input_norm.fit(ws)
    model.train()
    model(ws)  # batch statistics
    return model.eval(), ws


def test_fourier_encoding_channels_and_values():
    enc = FourierEncoding(2, features=3, scale=2.0)
    assert enc.out_channels == 2 * 7 and FourierEncoding(2, 3, even=True).out_channels == 2 * 4
    ws = WeightSpace.randn([2, 4, 1], 5, channels=2)
    out = enc(ws)
    assert out.channels == 14 and out.layer_sizes == ws.layer_sizes
    # channel block of input channel 1: [x, sin(2 pi b x), cos(2 pi b x)]
    x, b = ws.weights[0][:, 1], enc.frequencies
    assert torch.equal(out.weights[0][:, 7], x)
    assert torch.allclose(out.weights[0][:, 8 + 2], torch.sin(2 * torch.pi * b[2] * x), atol=1e-6)
    assert torch.allclose(out.weights[0][:, 11], torch.cos(2 * torch.pi * b[0] * x), atol=1e-6)
    assert "features=3" in repr(enc)
    with pytest.raises(ValueError, match="expects 2 input channel"):
        enc(WeightSpace.randn([2, 4, 1], 5))
    with pytest.raises(ValueError, match="input_encoding must be"):
        DWSNet([2, 4, 1], 3, input_encoding="wavelet")


@pytest.mark.parametrize("sizes", ARCHITECTURES)
@pytest.mark.parametrize("encoding", ["fourier", "fourier-even"])
def test_encoded_dwsnet_is_permutation_invariant_with_control(sizes, encoding):
    model, ws = _model(sizes, encoding)
    perms = ws.random_permutations(per_network=True)
    with torch.no_grad():
        assert torch.allclose(model(ws.permute(perms)), model(ws), atol=1e-6)
        assert not torch.allclose(model(non_symmetry(ws)), model(ws), atol=1e-4)


@pytest.mark.parametrize("sizes", [s for s in ARCHITECTURES if len(s) > 2])
def test_even_encoding_makes_dwsnet_invariant_to_sign_flips_with_control(sizes):
    even, ws = _model(sizes, "fourier-even")
    odd, _ = _model(sizes, "fourier")
    signs = ws.random_signs(torch.Generator().manual_seed(1), per_network=True)
    flipped = ws.flip_signs(signs)
    assert not flipped.allclose(ws)  # the flips move the weights
    with torch.no_grad():
        assert torch.allclose(even(flipped), even(ws), atol=1e-6)
        assert not torch.allclose(odd(flipped), odd(ws), atol=1e-4)  # control: the full encoding sees signs
        assert not torch.allclose(even(non_symmetry(ws)), even(ws), atol=1e-4)  # and the even one is not constant
