"""Full models: invariance/equivariance with controls, training on a small task."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dwsnets import DWSNet, EquivariantDWSNet, WeightSpace
from helpers import ARCHITECTURES, non_symmetry


@pytest.mark.parametrize("sizes", ARCHITECTURES)
@pytest.mark.parametrize("norm", [None, "batch"])
def test_dwsnet_invariance_with_control(sizes, norm):
    model = DWSNet(sizes, 4, hidden_channels=6, num_layers=3, head_hidden=(8,), norm=norm)
    model.eval()
    ws = WeightSpace.randn(sizes, 5)
    perms = ws.random_permutations(per_network=True)
    assert torch.allclose(model(ws.permute(perms)), model(ws), atol=1e-9)
    assert not torch.allclose(model(non_symmetry(ws)), model(ws), atol=1e-6)


@pytest.mark.parametrize("sizes", ARCHITECTURES)
def test_dwsnet_with_input_statistics_is_invariant_with_control(sizes):
    model = DWSNet(sizes, 3, hidden_channels=4, num_layers=2, head_hidden=(8,), norm="batch", input_statistics=True)
    ws = WeightSpace.randn(sizes, 6)
    model.train()
    model(ws)  # batch statistics for the statistics' standardisation
    model.eval()
    perms = ws.random_permutations(per_network=True)
    assert torch.allclose(model(ws.permute(perms)), model(ws), atol=1e-8)
    assert not torch.allclose(model(non_symmetry(ws)), model(ws), atol=1e-6)
    assert model.embed(ws).shape[1] == model.head.pool.out_features + len(ws.tensors) * 7


@pytest.mark.parametrize("sizes", ARCHITECTURES)
@pytest.mark.parametrize("residual", [False, True])
def test_equivariant_model_with_control(sizes, residual):
    model = EquivariantDWSNet(sizes, 1, hidden_channels=5, num_layers=2, residual=residual, dropout=0.1)
    model.eval()
    if residual:
        for p in model.output.parameters():
            nn.init.normal_(p)
    ws = WeightSpace.randn(sizes, 3)
    perms = ws.random_permutations(per_network=True)
    assert model(ws.permute(perms)).allclose(model(ws).permute(perms), atol=1e-9)
    assert not model(non_symmetry(ws)).allclose(non_symmetry(model(ws)), atol=1e-6)


def test_residual_model_starts_as_identity():
    model = EquivariantDWSNet((2, 6, 1), residual=True)
    model.input_norm.fit(WeightSpace.randn((2, 6, 1), 20).map(lambda t: 3 * t))
    ws = WeightSpace.randn((2, 6, 1), 4)
    assert model(ws).allclose(ws, atol=1e-10)
    with pytest.raises(ValueError, match="residual"):
        EquivariantDWSNet((2, 6, 1), out_channels=2, residual=True)


def test_dropout_respects_eval_and_gradients_reach_all_parameters():
    sizes = (2, 6, 5, 1)
    model = DWSNet(sizes, 3, hidden_channels=4, num_layers=2, dropout=0.3, norm="batch")
    ws = WeightSpace.randn(sizes, 8)
    model.train()
    nn.functional.cross_entropy(model(ws), torch.randint(0, 3, (8,))).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    model.eval()
    assert torch.equal(model(ws), model(ws))


def test_learns_a_symmetric_property():
    """A small DWSNet learns to tell apart two families of MLPs that differ only in the
    scale of the second hidden layer, presented under random hidden permutations."""
    torch.manual_seed(0)
    sizes = (2, 8, 8, 1)
    n = 256
    ws = WeightSpace.randn(sizes, n)
    labels = torch.arange(n) % 2
    scale = 0.5 + labels.to(torch.float64)  # class 1 has larger W_2
    ws = WeightSpace([ws.weights[0], ws.weights[1] * scale[:, None, None, None], ws.weights[2]], list(ws.biases))
    ws = ws.permute(ws.random_permutations(per_network=True))
    model = DWSNet(sizes, 2, hidden_channels=8, num_layers=2, head_hidden=(16,))
    model.input_norm.fit(ws)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(ws), labels)
        loss.backward()
        opt.step()
    accuracy = (model(ws).argmax(1) == labels).double().mean()
    assert accuracy > 0.9


def test_head_called_alone_gives_the_model_output():
    """One pooling order and one code path: the head applied to the backbone's unpacked
    output equals the model's own (packed) forward, compared entry by entry, unsorted."""
    sizes = (3, 5, 4, 2)
    model = DWSNet(sizes, 6, hidden_channels=4, num_layers=2, head_hidden=(8,), norm="batch")
    model.input_norm.fit(WeightSpace.randn(sizes, 20).map(lambda t: 2 * t + 1))
    model.eval()
    ws = WeightSpace.randn(sizes, 5)
    hidden = model.backbone(model.input_norm(ws))
    assert torch.allclose(model.head(hidden), model(ws), atol=1e-12, rtol=0)
    assert torch.allclose(model.head.pool(hidden), model.embed(ws), atol=1e-12, rtol=0)


@pytest.mark.parametrize("model_cls", [DWSNet, EquivariantDWSNet])
def test_bf16_autocast_forward_and_backward_match_float32(model_cls):
    """Mixed precision runs (the fused interior-weight path included) and stays within
    bf16 rounding of float32: relative error below 5% of the output's scale."""
    torch.set_default_dtype(torch.float32)
    sizes = (2, 16, 16, 1)
    kwargs = {"hidden_channels": 8, "num_layers": 3, "norm": "batch"}
    model = model_cls(sizes, 4, **kwargs) if model_cls is DWSNet else model_cls(sizes, 1, **kwargs)
    ws = WeightSpace.randn(sizes, 8)

    def run(autocast: bool):
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = model(ws)
        flat = out if isinstance(out, torch.Tensor) else out.flatten()
        flat.float().square().mean().backward()
        return flat.detach().float(), [p.grad.detach().clone() for p in model.parameters()]

    ref, ref_grads = run(False)
    out, grads = run(True)
    assert out.dtype == torch.float32
    assert float((out - ref).abs().max()) <= 0.05 * float(ref.abs().max())
    for g in grads:
        assert g.dtype == torch.float32 and torch.isfinite(g).all()
    total = torch.cat([g.flatten() for g in grads])
    total_ref = torch.cat([g.flatten() for g in ref_grads])
    cosine = torch.nn.functional.cosine_similarity(total, total_ref, dim=0)
    assert cosine > 0.99


def test_models_on_a_cnn_weight_space():
    """DWSNet, EquivariantDWSNet, batch and input normalisation, permutation and
    augmentation all follow a CNN layout (kernel axes fixed), with controls."""
    from dwsnets import WeightSpaceLayout
    from dwsnets.testing import assert_equivariant, assert_invariant
    from dwsnets.training import augment

    layout = WeightSpaceLayout.cnn((3, 4, 5), [(3, 3), (3, 3)], (6, 2))
    ws = WeightSpace.randn(layout, 6)
    classifier = DWSNet(layout, 3, hidden_channels=4, num_layers=2, head_hidden=(8,), norm="batch")
    classifier.input_norm.fit(ws)
    classifier.eval()
    assert_invariant(classifier, ws)
    editor = EquivariantDWSNet(layout, 1, hidden_channels=4, num_layers=2, norm="batch", residual=True)
    for p in editor.output.parameters():
        nn.init.normal_(p)
    editor.input_norm.fit(ws)
    editor.eval()
    assert_equivariant(editor, ws)
    # augmentation keeps the layout and, with permutations only, the invariant output
    augmented = augment(ws, torch.Generator().manual_seed(0), permute=True)
    assert augmented.layout == layout and not augmented.allclose(ws)
    assert torch.allclose(classifier(augmented), classifier(ws), atol=1e-9)
    noisy = augment(ws, torch.Generator().manual_seed(0), permute=False, noise=0.1, entry_dropout=0.1)
    assert noisy.layout == layout and not noisy.allclose(ws)


def test_backbone_fuses_batchnorm_and_relu_without_changing_results():
    """The backbone runs batch norm + ReLU as one fused step; the same modules applied one
    by one give the same outputs and gradients, and the state_dict keys are unchanged."""
    torch.manual_seed(6)
    model = DWSNet((2, 6, 5, 1), 3, hidden_channels=4, num_layers=3, norm="batch")
    ws = WeightSpace.randn((2, 6, 5, 1), 8)
    backbone = model.backbone

    def one_by_one(space):
        slots = backbone.blocks[0].packing.pack(space.tensors)
        for block in backbone.blocks:
            slots = block.forward_packed(slots)
        return slots

    outputs = []
    for run in (backbone.forward_packed, one_by_one):
        xs = [t.clone().requires_grad_() for t in ws.tensors]
        out = run(WeightSpace.from_tensors(xs))
        loss = sum((o.cos()).sum() for o in out)
        outputs.append((out, torch.autograd.grad(loss, [*xs, *backbone.parameters()])))
    for a, b in zip(outputs[0][0], outputs[1][0]):
        assert torch.allclose(a, b, atol=1e-12)
    for a, b in zip(outputs[0][1], outputs[1][1]):
        assert torch.allclose(a, b, atol=1e-10)
    keys = model.state_dict().keys()
    # modules stay where they were: layer, batch norm, activation per block
    assert {"backbone.blocks.1.running_mean", "backbone.blocks.4.running_var", "backbone.blocks.3.bias"} <= keys
