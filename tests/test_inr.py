"""SIREN and the batched fitter."""

from __future__ import annotations

import math

import pytest
import torch

from dwsnets import WeightSpace
from dwsnets.inr import Siren, coordinate_grid, fit_sirens, psnr, siren_init
from dwsnets.inr.fitting import _forward_backward, evaluate_sirens


@pytest.fixture(autouse=True)
def _float32():
    torch.set_default_dtype(torch.float32)
    yield


def _digits(n):
    from sklearn.datasets import load_digits

    images = torch.tensor(load_digits().images[:n], dtype=torch.float32) / 16
    return coordinate_grid(8, 8), images.reshape(n, 64, 1)


def test_siren_init_bounds_and_module():
    params = siren_init((2, 32, 32, 1), 50, w0=30.0, generator=torch.Generator().manual_seed(0))
    assert params[0].abs().max() <= 1 / 2 and params[2].abs().max() <= math.sqrt(6 / 32) / 30
    net = Siren((2, 32, 32, 1))
    x = coordinate_grid(4, 4)
    assert net(x).shape == (16, 1)
    ws = WeightSpace.from_modules([net])
    assert torch.allclose(Siren.from_weight_space(ws)(x), net(x))


def test_manual_gradients_match_autograd():
    torch.manual_seed(0)
    coords, target = _digits(3)
    params = [p.double() for p in siren_init((2, 8, 6, 1), 3, generator=torch.Generator().manual_seed(1))]
    grad = torch.empty(3, sum(p[0].numel() for p in params), dtype=torch.float64)
    mse = _forward_backward(coords.double(), target.double(), params, 30.0, grad)
    leaves = [p.clone().requires_grad_() for p in params]
    h = coords.double().unsqueeze(0).expand(3, -1, -1)
    for m in range(3):
        z = torch.baddbmm(leaves[2 * m + 1].unsqueeze(1), h, leaves[2 * m].transpose(1, 2))
        h = torch.sin(30.0 * z) if m < 2 else z
    auto_mse = ((h - target.double()) ** 2).mean(dim=(1, 2))
    assert torch.allclose(mse, auto_mse)
    auto = torch.autograd.grad(auto_mse.sum(), leaves)
    flat_auto = torch.cat([g.reshape(3, -1) for g in auto], dim=1)
    assert torch.allclose(grad, flat_auto, rtol=1e-8, atol=1e-10)


def test_fitting_reaches_target_and_stored_psnr_is_exact():
    coords, target = _digits(6)
    result = fit_sirens(coords, target, seeds=range(6), max_steps=500, target_psnr=35.0, chunk=4)
    assert (result.psnr >= 35.0).all()
    assert (result.steps < 500).all()
    ws = result.weight_space()
    for i in range(6):
        net = Siren.from_weight_space(ws, i)
        with torch.no_grad():
            again = psnr(((net(coords) - target[i]) ** 2).mean())
        assert abs(float(again) - float(result.psnr[i])) < 1e-3
    assert torch.allclose(psnr(evaluate_sirens(coords, target, result.params)), result.psnr, atol=1e-4)


def test_fitting_is_deterministic_per_seed_whatever_the_batch():
    coords, target = _digits(5)
    a = fit_sirens(coords, target, seeds=[10, 11, 12, 13, 14], max_steps=40, target_psnr=None, chunk=2)
    b = fit_sirens(coords[:, :], target[2:4], seeds=[12, 13], max_steps=40, target_psnr=None, chunk=8)
    for pa, pb in zip(a.params, b.params):
        assert torch.equal(pa[2:4], pb)


def test_converged_inrs_stop_and_no_target_runs_all_steps():
    coords, target = _digits(4)
    full = fit_sirens(coords, target, seeds=range(4), max_steps=30, target_psnr=None)
    assert (full.steps == 30).all()
    low = fit_sirens(coords, target, seeds=range(4), max_steps=300, target_psnr=15.0)
    assert (low.steps < 300).all() and (low.psnr >= 15.0).all()


def test_fitter_input_errors():
    coords, target = _digits(2)
    with pytest.raises(ValueError, match="seeds"):
        fit_sirens(coords, target, seeds=[1])
    with pytest.raises(ValueError, match="coords"):
        fit_sirens(coords[:10], target, seeds=[1, 2])
    with pytest.raises(ValueError, match="NaN"):
        fit_sirens(coords, target * float("nan"), seeds=[1, 2])


def test_paper_initialisation_recipe():
    """The DWSNets paper's INR recipe: every layer U(+-sqrt(6/d_in)/w0), zero biases, the
    output offset by 0.5; the SIREN paper's recipe stays the default."""
    params = siren_init((2, 32, 32, 1), 64, 30.0, generator=torch.Generator().manual_seed(0), recipe="paper")
    bound = math.sqrt(6 / 2) / 30
    assert float(params[0].abs().max()) <= bound and float(params[0].abs().max()) > 0.9 * bound
    assert float(params[1].abs().max()) == 0 and float(params[3].abs().max()) == 0
    assert torch.all(params[5] == 0.5)
    default = siren_init((2, 32, 32, 1), 64, 30.0, generator=torch.Generator().manual_seed(0))
    assert float(default[0].abs().max()) > 0.4  # U(+-1/2) for the first layer
    with pytest.raises(ValueError, match="unknown SIREN initialisation"):
        siren_init((2, 4, 1), 1, recipe="xavier")


def test_fused_sine_and_cosine_match_torch_and_fall_back_without_a_compiler(monkeypatch):
    """The fitter's one-pass sine and cosine equal torch's to rounding (control: a shifted
    argument does not); where compiling fails it warns once and uses the eager pair."""
    from dwsnets.inr import fitting

    z = torch.randn(6, 50, 8, dtype=torch.float32) * 20
    expected_sin, expected_cos = torch.sin(z), torch.cos(z)
    fused, cos = z.clone(), torch.empty_like(z)
    assert fitting.sine_with_cosine_(fused, cos) is cos
    assert torch.allclose(fused, expected_sin, atol=1e-6) and torch.allclose(cos, expected_cos, atol=1e-6)
    assert not torch.allclose(torch.sin(z + 1e-3), expected_sin, atol=1e-6)

    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(fitting, "_fused_sine", None)
    monkeypatch.setattr(fitting, "_fused_failed", False)
    monkeypatch.setattr(torch, "compile", no_compiler)
    eager, cos = z.clone(), torch.empty_like(z)
    with pytest.warns(UserWarning, match="could not be compiled"):
        fitting.sine_with_cosine_(eager, cos)
    assert torch.equal(eager, expected_sin) and torch.equal(cos, expected_cos)
