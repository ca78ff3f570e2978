"""Exact signal transforms: an augmented INR renders the transformed signal."""

from __future__ import annotations

import math

import pytest
import torch

from dwsnets import WeightSpace, WeightSpaceError, WeightSpaceLayout
from dwsnets.core.augment import SignalTransforms, augment
from dwsnets.core.transforms import transform_inputs, transform_outputs
from dwsnets.inr import Siren, coordinate_grid, siren_forward


def _sirens(n: int = 4) -> WeightSpace:
    torch.manual_seed(0)
    return WeightSpace.from_modules([Siren((2, 16, 16, 1)) for _ in range(n)])


def test_input_and_output_transforms_are_exact():
    ws = _sirens()
    grid = coordinate_grid(12, 12, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(4, 2, 2, generator=gen)
    t = torch.randn(4, 2, generator=gen)
    moved = transform_inputs(ws, a, t)
    transformed_grid = torch.einsum("bij,pj->bpi", a, grid) + t[:, None, :]  # A x + t per network
    assert torch.allclose(siren_forward(grid, moved), siren_forward(transformed_grid, ws), atol=1e-9)
    # control: the transpose of A (an easy mistake) renders something else
    wrong = transform_inputs(ws, a.transpose(1, 2), t)
    assert not torch.allclose(siren_forward(grid, wrong), siren_forward(transformed_grid, ws), atol=1e-3)
    gain, offset = torch.tensor([0.5, 1.0, 2.0, -1.0]), torch.tensor([0.1, 0.0, -0.3, 1.0])
    brighter = transform_outputs(ws, gain, offset)
    expected = gain[:, None, None] * siren_forward(grid, ws) + offset[:, None, None]
    assert torch.allclose(siren_forward(grid, brighter), expected, atol=1e-12)


def test_flips_and_quarter_turns_render_the_transformed_image():
    """On the symmetric pixel grid a mirror or a quarter turn maps pixels onto pixels, so
    the augmented INR must render exactly the flipped or rotated image."""
    ws = _sirens(2)
    grid = coordinate_grid(10, 10, dtype=torch.float64)
    image = siren_forward(grid, ws).reshape(2, 10, 10)
    mirror = torch.tensor([[1.0, 0.0], [0.0, -1.0]])  # column -> -column
    flipped = siren_forward(grid, transform_inputs(ws, mirror)).reshape(2, 10, 10)
    assert torch.allclose(flipped, image.flip(2), atol=1e-9)
    quarter = torch.tensor([[0.0, -1.0], [1.0, 0.0]])  # (row, col) -> (-col, row)
    turned = siren_forward(grid, transform_inputs(ws, quarter)).reshape(2, 10, 10)
    # sampling at (-col, row) turns the picture a quarter clockwise
    assert torch.allclose(turned, torch.rot90(image, k=-1, dims=(1, 2)), atol=1e-9)
    assert not torch.allclose(turned, image, atol=1e-3)


def test_random_signal_transforms_are_exact_and_commute_with_the_symmetry():
    ws = _sirens()
    signal = SignalTransforms(
        rotate=30, scale=0.2, shear=0.2, translate=0.2, flip=(1,), intensity_scale=0.3, intensity_shift=0.1
    )
    gen = torch.Generator().manual_seed(3)
    augmented = signal.apply(ws, gen)
    gen = torch.Generator().manual_seed(3)
    a, t = signal.sample(4, 2, gen)
    gain = 1 + (torch.rand(4, generator=gen) * 2 - 1) * 0.3
    bias = (torch.rand(4, generator=gen) * 2 - 1) * 0.1
    grid = coordinate_grid(9, 9, dtype=torch.float64)
    transformed_grid = torch.einsum("bij,pj->bpi", a, grid) + t[:, None, :]
    expected = gain[:, None, None] * siren_forward(transformed_grid, ws) + bias[:, None, None]
    assert torch.allclose(siren_forward(grid, augmented), expected, atol=1e-9)
    assert all(abs(float(torch.linalg.det(m))) > 0.3 for m in a)  # invertible, moderate changes
    # with permutations, noise and dropout in one call; an invariant model sees only the signal change
    perms = ws.random_permutations(per_network=True)
    again = signal.apply(ws.permute(perms), torch.Generator().manual_seed(3))
    assert again.allclose(augmented.permute(perms), atol=1e-12)
    full = augment(ws, torch.Generator().manual_seed(0), permute=True, noise=0.01, entry_dropout=0.1, signal=signal)
    assert full.layout == ws.layout and not full.allclose(ws)


def test_transform_errors():
    ws = _sirens(2)
    with pytest.raises(WeightSpaceError, match=r"\(2, 2\) or \(B, 2, 2\)"):
        transform_inputs(ws, torch.eye(3))
    with pytest.raises(WeightSpaceError, match="unknown signal transform"):
        SignalTransforms.from_dict({"rotation": 10})
    with pytest.raises(WeightSpaceError, match="must not be negative"):
        SignalTransforms.from_dict({"rotate": -5})
    sine = WeightSpace.randn((1, 4, 1), 2)
    with pytest.raises(WeightSpaceError, match="need 2-D inputs"):
        SignalTransforms(rotate=10).apply(sine, torch.Generator())
    assert SignalTransforms(scale=0.1, translate=0.1, flip=(0,)).apply(sine, torch.Generator()).layout == sine.layout
    cnn = WeightSpace.randn(WeightSpaceLayout.cnn((1, 2, 2), [(3, 3), (3, 3)], (1,)), 2)
    with pytest.raises(WeightSpaceError, match="needs an MLP"):
        transform_inputs(cnn, torch.eye(1))
    assert math.isclose(SignalTransforms.from_dict({"flip": [1]}).flip[0], 1)


def test_noise_and_entry_dropout_have_the_asked_strength():
    """The generic augmentations do what their numbers say: the noise's spread per tensor is
    ``noise`` times that tensor's ``scale``, and ``entry_dropout`` zeroes that fraction of the
    entries, leaving the others untouched (5 standard deviations of their sampling error)."""
    ws = WeightSpace.randn((2, 16, 16, 1), 500)
    scale = [torch.full((1,), 0.5 + i) for i in range(len(ws.tensors))]
    noisy = augment(ws, torch.Generator().manual_seed(1), permute=False, noise=0.1, scale=scale)
    for i, (before, after) in enumerate(zip(ws.tensors, noisy.tensors)):
        spread, n = float((after - before).std()), before.numel()
        expected = 0.1 * (0.5 + i)
        assert abs(spread / expected - 1) < 5 / (2 * n) ** 0.5, (i, spread, expected)
    dropped = augment(ws, torch.Generator().manual_seed(2), permute=False, entry_dropout=0.25)
    total = sum(t.numel() for t in ws.tensors)
    zeroed = sum(int((a == 0).sum()) for a in dropped.tensors)
    assert abs(zeroed / total - 0.25) < 5 * (0.25 * 0.75 / total) ** 0.5
    for before, after in zip(ws.tensors, dropped.tensors):
        kept = after != 0
        assert torch.equal(after[kept], before[kept])


def test_sign_flip_augmentation_keeps_every_inr_and_moves_paired_networks_alike():
    """``augment(sign_flips=True)`` with permutations: every SIREN renders the same image
    (a symmetry); a paired network gets the same flips (its rendering follows); control:
    the weights did change, and without sign flips no weight changes sign beyond the
    permutation."""
    ws = WeightSpace.randn((2, 16, 16, 1), 5)
    grid = coordinate_grid(6, 6).to(ws.dtype)
    out, paired = augment(ws, torch.Generator().manual_seed(0), permute=True, sign_flips=True, paired=ws)
    assert torch.allclose(siren_forward(grid, out, 30.0), siren_forward(grid, ws, 30.0), atol=1e-12)
    assert out.allclose(paired, atol=0)
    permuted_only = augment(ws, torch.Generator().manual_seed(0), permute=True)
    # the same permutations (drawn first), then flips: equal magnitudes, some signs differ
    assert torch.equal(out.tensors[0].abs(), permuted_only.tensors[0].abs())
    assert (out.tensors[0] != permuted_only.tensors[0]).any()


def test_the_sign_canonical_form_is_exactly_invariant_to_sign_flips():
    """Every sign-flipped twin of a network has the same canonical form, which renders the
    same image; the form is idempotent and its leading incoming entries are positive.
    Controls: negating incoming weights alone (not a symmetry) gives another form; the
    tie margins are 0 exactly at a constructed tie."""
    from dwsnets.core.signs import canonical_signs, sign_canonical_form, sign_tie_margins

    ws = WeightSpace.randn((2, 16, 16, 1), 6)
    grid = coordinate_grid(6, 6).to(ws.dtype)
    canonical = sign_canonical_form(ws)
    assert torch.equal(siren_forward(grid, canonical, 30.0), siren_forward(grid, ws, 30.0))
    for seed in range(3):
        twin = ws.flip_signs(ws.random_signs(torch.Generator().manual_seed(seed), per_network=True))
        assert not twin.allclose(ws) and sign_canonical_form(twin).allclose(canonical, atol=0)
    assert sign_canonical_form(canonical).allclose(canonical, atol=0)
    perms = ws.random_permutations(per_network=True)
    assert sign_canonical_form(ws.permute(perms)).allclose(canonical.permute(perms), atol=0)
    assert all(bool((s == 1).all()) for s in canonical_signs(canonical))
    not_a_twin = WeightSpace.from_tensors([-ws.tensors[0], *ws.tensors[1:]])  # first layer's weights only
    assert not sign_canonical_form(not_a_twin).allclose(canonical, atol=1e-6)
    margins = sign_tie_margins(ws)
    assert [m.shape for m in margins] == [(6, 16), (6, 16)] and bool(((margins[0] >= 0) & (margins[0] <= 1)).all())
    weights, biases = [w.clone() for w in ws.weights], [b.clone() for b in ws.biases]
    weights[0][0, 0, 3] = torch.tensor([5.0, -5.0])  # neuron 3 of layer 1: incoming 5 and -5, bias smaller
    biases[0][0, 0, 3] = 0.1
    assert float(sign_tie_margins(WeightSpace.from_tensors([*weights, *biases]))[0][0, 3]) == 0.0
