"""Every model of the registry: it learns, it has exactly the symmetry it claims, and it
runs under bf16 autocast."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dwsnets import WeightSpace, WeightSpaceLayout
from dwsnets.baselines import MODELS, BaselineError, build_model, model_spec
from dwsnets.testing import assert_invariant
from helpers import build_registry_model

SIZES = (2, 8, 8, 1)


@pytest.fixture(autouse=True)
def _float32():
    torch.set_default_dtype(torch.float32)
    yield


def _task(n: int = 64) -> tuple[WeightSpace, torch.Tensor]:
    """Two families of MLPs that differ in the scale of W_2, under random permutations."""
    ws = WeightSpace.randn(SIZES, n)
    labels = torch.arange(n) % 2
    scale = (0.5 + labels.float())[:, None, None, None]
    ws = WeightSpace([ws.weights[0], ws.weights[1] * scale, ws.weights[2]], list(ws.biases))
    return ws.permute(ws.random_permutations(per_network=True)), labels


TORCH_MODELS = [name for name, spec in MODELS.items() if spec.fit is None]  # statnn-gbt: tests/test_cnn_zoo.py


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_every_model_learns_and_has_exactly_its_symmetry(name):
    torch.manual_seed(0)
    ws, labels = _task()
    model = build_registry_model(name, SIZES, 2)
    if hasattr(model, "preprocess"):
        ws = model.preprocess(ws)
    model.input_norm.fit(ws)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    losses = []
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(ws), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    if name == "render-linear":  # a linear map of the rendering cannot read a scale that flips sign: it learns less
        assert losses[-1] < losses[0] - 0.03, losses[::10]
    else:
        assert losses[-1] < 0.7 * losses[0], losses[::10]
    model.eval()
    probe = WeightSpace.randn(SIZES, 6)
    if name == "statnn":
        # statistics of a tensor ignore the order of all its entries, so a swap of fixed axes
        # (the usual control) changes nothing either; the control here changes values instead
        assert_invariant(model, probe, atol=1e-4, control=False)
        scaled = WeightSpace.from_tensors([t * (2.0 if i == 1 else 1.0) for i, t in enumerate(probe.tensors)])
        assert not torch.allclose(model(scaled), model(probe), atol=1e-3)
    elif MODELS[name].invariant:
        # float32 rounding grows with the output's size (the hybrid's outputs reach about 20)
        assert_invariant(model, probe, atol=1e-4 * max(1.0, float(model(probe).abs().max())))
    else:
        with pytest.raises(AssertionError, match="not invariant"):
            assert_invariant(model, probe, atol=1e-4)
    # the model's own claim about sign flips, which the trainer reads, holds both ways; a model
    # that queries the networks is blind to a flip exactly when the flip keeps the function (tanh here)
    queries = MODELS[name].protocol == "queries"
    assert model.sign_invariant is (True if queries else MODELS[name].sign_invariant)
    flipped = probe.flip_signs(probe.random_signs(torch.Generator().manual_seed(1), per_network=True))
    scale = max(1.0, float(model(probe).abs().max()))
    assert torch.allclose(model(flipped), model(probe), atol=1e-4 * scale) is model.sign_invariant


def test_dwsnet_reports_sign_invariance_from_its_encoding():
    """Only the even encoding without input statistics forgets every sign; the trainer
    refuses such a model on ReLU zoos because of this property."""
    torch.manual_seed(0)
    probe = WeightSpace.randn(SIZES, 6)
    flipped = probe.flip_signs(probe.random_signs(torch.Generator().manual_seed(1), per_network=True))
    for args, claim in (({"input_encoding": "fourier-even"}, True), ({"input_encoding": "fourier"}, False),
                        ({"input_encoding": "fourier-even", "input_statistics": True}, False)):  # fmt: skip
        model = build_model("dwsnet", SIZES, 2, **args).eval()
        model.input_norm.fit(WeightSpace.randn(SIZES, 32))
        assert model.sign_invariant is claim, args
        assert torch.allclose(model(flipped), model(probe), atol=1e-4) is claim, args


def test_alignment_makes_the_flat_mlp_invariant_on_permuted_copies():
    torch.manual_seed(0)
    model = build_model("mlp-align", SIZES, 3)
    model.eval()
    reference = WeightSpace.randn(SIZES, 1)
    model.preprocess(reference)  # the first network seen becomes the reference
    copies = WeightSpace.cat([WeightSpace.randn(SIZES, 1)] * 4)
    permuted = copies.permute(copies.random_permutations(per_network=True))
    with torch.no_grad():
        aligned = model(model.preprocess(permuted))
        raw = model(permuted)
    assert torch.allclose(aligned, aligned[:1].expand_as(aligned), atol=1e-5)
    assert not torch.allclose(raw, raw[:1].expand_as(raw), atol=1e-3)  # control: without alignment they differ


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_bf16_autocast_runs_forward_and_backward(name):
    """Mixed precision on CPU for every model: finite outputs within bf16 rounding of
    float32 (5% of the output scale) and finite float32 gradients."""
    torch.manual_seed(0)
    ws, labels = _task(16)
    model = build_registry_model(name, SIZES, 4)
    if hasattr(model, "preprocess"):
        ws = model.preprocess(ws)
    model.eval()
    with torch.no_grad():
        ref = model(ws)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ws)
    assert float((out.float() - ref).abs().max()) <= 0.05 * float(ref.abs().max()) + 1e-3
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = nn.functional.cross_entropy(model(ws).float(), labels)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_registry_errors_and_cnn_support():
    with pytest.raises(BaselineError, match="unknown model 'resnet'.*dwsnet"):
        model_spec("resnet")
    cnn = WeightSpaceLayout.cnn((1, 4, 4), [(3, 3), (3, 3)], (2,))
    for name in ("dwsnet", "mlp", "mlp-aug", "statnn"):
        out = build_model(name, cnn, 3)(WeightSpace.randn(cnn, 2))
        assert out.shape == (2, 3)
    for name in ("mlp-align", "transformer", "inr2vec", "deepsets", "sign-equivariant"):
        with pytest.raises(BaselineError, match="does not support"):
            build_model(name, cnn, 3)


def test_statnn_features_are_the_statistics_of_each_tensor():
    """StatNN's features, recomputed by hand for one network: mean, variance and the 0, 25,
    50, 75, 100th percentiles of each tensor's entries; on a CNN layout too."""
    import numpy as np

    from dwsnets.baselines.stats import STATISTICS, tensor_statistics

    ws = WeightSpace.randn(SIZES, 3)
    features = tensor_statistics(ws)
    assert features.shape == (3, len(ws.tensors) * len(STATISTICS))
    entries = ws.tensors[2][1].flatten().double().numpy()
    expected = [entries.mean(), entries.var(), *np.percentile(entries, [0, 25, 50, 75, 100])]
    got = features[1, 2 * len(STATISTICS) : 3 * len(STATISTICS)].double().numpy()
    assert np.allclose(got, expected, atol=1e-5)
    cnn = WeightSpace.randn(WeightSpaceLayout.cnn((1, 4, 4), [(3, 3), (3, 3)], (5,)), 2)
    model = build_model("statnn", cnn.layout, 5)
    model.eval()
    assert model(cnn).shape == (2, 5)
    assert_invariant(model, cnn, atol=1e-4, control=False)


def test_models_for_leaves_sign_blind_models_out_unless_every_activation_is_odd(digits_zoo, classifier_zoo):
    from dwsnets.baselines import models_for
    from dwsnets.zoo.dataset import InMemoryZoo, symmetry_group
    from dwsnets.zoo.reader import Zoo

    sirens, relus = Zoo(digits_zoo), Zoo(classifier_zoo)
    unknown = InMemoryZoo({"train": relus.load("val")})  # outside networks that declared no activation
    groups = [symmetry_group(z) for z in (sirens, relus, unknown)]
    assert [g.sign_flips for g in groups] == [True, False, False]
    assert [g.positive_scaling for g in groups] == [False, True, False]
    assert "sign-equivariant" in models_for(sirens.layout, "classify", groups[0])
    assert "sign-equivariant" in models_for(sirens.layout, "classify")  # no networks given: every model
    for group in groups[1:]:  # ReLU networks, and networks whose activation nobody knows
        left = models_for(relus.layout, "classify", group)
        assert "sign-equivariant" not in left and "dwsnet" in left


def test_default_model_is_sign_equivariant_for_classifying_sirens_only(digits_zoo, classifier_zoo):
    from dwsnets.baselines import default_model
    from dwsnets.cli.train import _default_model
    from dwsnets.core.symmetry import SymmetryGroup

    mlp, cnn = WeightSpaceLayout.mlp((2, 8, 1)), WeightSpaceLayout.cnn([1, 4, 4], [(3, 3), (3, 3)], [10])
    sine, tanh, relu = (SymmetryGroup.of(mlp, [a]) for a in ("sine", "tanh", "relu"))
    assert default_model(mlp, "classify", sine) == "sign-equivariant"
    assert default_model(mlp, "classify", tanh) == "sign-equivariant"  # any odd activation, not a source's name
    assert default_model(mlp, "regress", sine) == "dwsnet"  # other tasks
    assert default_model(mlp, "classify", None) == "dwsnet"  # outside data: activation unknown
    assert default_model(mlp, "classify", SymmetryGroup.of(mlp, None)) == "dwsnet"
    assert default_model(mlp, "classify", relu) == "dwsnet"  # ReLU networks (control)
    assert default_model(mlp, "classify", SymmetryGroup.of(mlp, ["sine", "relu"])) == "dwsnet"  # mixed
    assert default_model(cnn, "classify", SymmetryGroup.of(cnn, ["tanh"])) == "dwsnet"
    assert _default_model(str(digits_zoo), "classify") == "sign-equivariant"  # what the plain command trains
    assert _default_model(str(classifier_zoo), "classify") == "dwsnet"
    assert _default_model("/no/such/zoo", "classify") == "dwsnet"  # the trainer then names the missing zoo
