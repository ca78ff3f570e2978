"""The one description of a network's symmetries (dwsnets.core.symmetry) and the policy that
every consumer reads (dwsnets.core.symmetry_policy), with controls."""

from __future__ import annotations

import pytest
import torch

from dwsnets import WeightSpace, WeightSpaceLayout
from dwsnets.core.augment import SignalTransforms
from dwsnets.core.forward import batched_mlp_forward
from dwsnets.core.signs import canonical_signs, sign_canonical_form
from dwsnets.core.symmetry import (
    NetworkActivations,
    SymmetryError,
    SymmetryGroup,
    activation_properties,
    register_activation,
)
from dwsnets.core.symmetry_policy import SymmetryPolicy
from dwsnets.training import TrainConfig, Trainer, TrainingError
from dwsnets.zoo.dataset import InMemoryZoo, symmetry_group
from dwsnets.zoo.errors import ZooError
from dwsnets.zoo.split import ZooSplit

MLP = WeightSpaceLayout.mlp((2, 6, 5, 3))


def test_the_group_follows_the_activations_not_a_name():
    sine, tanh, relu = (SymmetryGroup.of(MLP, [a]) for a in ("sin", "tanh", "relu"))
    assert (sine.sign_flips, sine.positive_scaling) == (True, False)
    assert (tanh.sign_flips, tanh.positive_scaling) == (True, False)
    assert (relu.sign_flips, relu.positive_scaling) == (False, True)
    mixed = SymmetryGroup.of(MLP, ["relu", "tanh"])
    assert not mixed.sign_flips and not mixed.positive_scaling and mixed.mixed
    assert SymmetryGroup.of(MLP, [["sine"], ["tanh"]]).sign_flips  # per hidden layer, both odd
    assert not SymmetryGroup.of(MLP, [["sine"], ["relu"]]).sign_flips  # one ReLU layer breaks it
    unknown = SymmetryGroup.of(MLP, None)
    assert not unknown.sign_flips and not unknown.positive_scaling and unknown.permutations == {1: 6, 2: 5}
    assert SymmetryGroup.of(MLP, ["identity"]).sign_flips and SymmetryGroup.of(MLP, ["identity"]).positive_scaling
    assert "S_6 x S_5" in sine.describe() and "sign flips" in sine.describe()


def test_an_unknown_activation_is_refused_with_how_to_declare_it():
    with pytest.raises(SymmetryError, match=r"unknown activation 'cubic'.*register_activation\('cubic'") as caught:
        SymmetryGroup.of(MLP, ["cubic"])
    assert len(str(caught.value).splitlines()) == 1
    register_activation("cubic", odd=True, homogeneous=False)
    try:
        assert SymmetryGroup.of(MLP, ["cubic"]).sign_flips
    finally:
        from dwsnets.core.symmetry import ACTIVATION_PROPERTIES

        del ACTIVATION_PROPERTIES["cubic"]


@pytest.mark.parametrize("name", ["relu", "tanh", "sine", "sigmoid", "selu", "gelu", "leaky_relu", "identity"])
def test_declared_properties_hold_numerically(name):
    """Each declared property is checked on the function itself, and each undeclared one fails."""
    functions = {"relu": torch.relu, "tanh": torch.tanh, "sine": torch.sin, "sigmoid": torch.sigmoid,
                 "selu": torch.selu, "gelu": torch.nn.functional.gelu, "identity": lambda z: z,
                 "leaky_relu": torch.nn.functional.leaky_relu}  # fmt: skip
    f, z = functions[name], torch.randn(1000, dtype=torch.float64) * 3
    props = activation_properties(name)
    assert bool(torch.allclose(f(-z), -f(z))) == props.odd
    assert bool(torch.allclose(f(2.5 * z), 2.5 * f(z))) == props.homogeneous


def _mlp_function(ws: WeightSpace, activations: list[str]) -> torch.Tensor:
    """Outputs of every network at fixed points, network ``n`` with ``activations[n]``."""
    fns = {"relu": torch.relu, "tanh": torch.tanh}
    x = torch.randn(40, ws.layer_sizes[0], generator=torch.Generator().manual_seed(3), dtype=ws.dtype)
    return torch.cat([batched_mlp_forward(x, ws[n : n + 1], fns[a]) for n, a in enumerate(activations)])


def test_activation_symmetries_keep_each_mixed_network_function_and_sign_flips_do_not():
    torch.manual_seed(0)
    ws = WeightSpace.randn(MLP, 8, dtype=torch.float64)
    names = ["relu", "tanh"] * 4
    record = NetworkActivations(("relu", "tanh"), torch.tensor([0, 1] * 4))
    policy = SymmetryPolicy(SymmetryGroup.of(MLP, ["relu", "tanh"]), permute=True, activation_symmetries=True)
    moved = policy.augment(ws, torch.Generator().manual_seed(1), activations=record, rows=torch.arange(8))
    torch.testing.assert_close(_mlp_function(moved, names), _mlp_function(ws, names))
    assert not torch.allclose(moved.weights[0], ws.weights[0])  # something moved
    # control: the same networks with sign flips (not in their group) change the ReLU networks
    flipped = ws.flip_signs(ws.random_signs(torch.Generator().manual_seed(2), per_network=True))
    changed = (_mlp_function(flipped, names) - _mlp_function(ws, names)).abs().flatten(1).amax(1)
    assert bool((changed[0::2] > 1e-3).all()) and bool((changed[1::2] < 1e-9).all())
    # per hidden layer: codes (N, H) choose each layer's symmetry
    per_layer = NetworkActivations(("relu", "tanh"), torch.tensor([[0, 1]] * 8))
    assert per_layer.factors_kind().tolist() == [[0, 1]] * 8


def test_the_policy_refuses_what_the_group_does_not_hold_in_one_line():
    mixed = SymmetryGroup.of(MLP, ["relu", "tanh"])
    for flags, what in (({"sign_flips": True}, "--sign-flips"), ({"canonical_signs": True}, "--canonical-signs")):
        with pytest.raises(SymmetryError, match=f"{what} needs every hidden activation odd.*relu, tanh") as caught:
            SymmetryPolicy(mixed, **flags).check()
        assert len(str(caught.value).splitlines()) == 1
        SymmetryPolicy(SymmetryGroup.of(MLP, ["tanh"]), **flags).check()  # control: tanh networks hold them

    class Blind(torch.nn.Module):
        sign_invariant = True

    with pytest.raises(SymmetryError, match="the blind model .blind to the sign"):
        SymmetryPolicy(mixed).check_model(Blind(), "blind")
    SymmetryPolicy(SymmetryGroup.of(MLP, ["sine"])).check_model(Blind(), "blind")  # control


def test_the_canonical_form_is_taken_again_after_augmentations():
    """Rotations move a network's first layer out of its canonical form; the policy's
    augmentation returns it to the form validation and test are shown in."""
    torch.manual_seed(0)
    layout = WeightSpaceLayout.mlp((2, 8, 8, 1))
    ws = sign_canonical_form(WeightSpace.randn(layout, 64))
    signal = SignalTransforms(rotate=45.0)
    policy = SymmetryPolicy(SymmetryGroup.of(layout, ["sine"]), permute=True, canonical_signs=True)
    out = policy.augment(ws, torch.Generator().manual_seed(0), signal=signal)
    assert all(bool((s == 1).all()) for s in canonical_signs(out))
    # control: the same draw without the policy leaves many networks out of the form
    plain = SymmetryPolicy(SymmetryGroup.of(layout, ["sine"]), permute=True)
    moved = plain.augment(ws, torch.Generator().manual_seed(0), signal=signal)
    off = sum(int((s == -1).any(1).sum()) for s in canonical_signs(moved)[:1])
    assert off > 16


def _mixed_mlp_zoo(activations: list[str] | str | None, codes: torch.Tensor | None = None) -> InMemoryZoo:
    torch.manual_seed(0)
    ws = WeightSpace.randn((2, 8, 8, 1), 60)
    info = {"size": torch.randn(60)} if codes is None else {"size": torch.randn(60), "activation": codes}
    split = ZooSplit(ws, torch.arange(60) % 3, info)
    return InMemoryZoo({"train": split[:40], "val": split[40:50], "test": split[50:]}, activations=activations)


def test_the_trainer_refuses_sign_operations_on_a_mixed_zoo_before_reading_a_split(tmp_path, monkeypatch):
    mixed = _mixed_mlp_zoo(["relu", "tanh"], torch.arange(60) % 2)
    odd = _mixed_mlp_zoo("tanh")
    read = []
    monkeypatch.setattr(InMemoryZoo, "load", lambda self, split: read.append(split) or self._splits[split])
    small = {"hidden_channels": 4, "num_layers": 1}
    for name, cfg in (
        ("flips", TrainConfig(model="dwsnet", sign_flips=True, epochs=1)),
        ("canonical", TrainConfig(model="dwsnet", canonical_signs=True, epochs=1)),
        ("sign-equivariant", TrainConfig(model="sign-equivariant", model_args=small, epochs=1)),
        ("even", TrainConfig(model="dwsnet", model_args={"hidden_channels": 4, "num_layers": 1,
                                                          "input_encoding": "fourier-even"}, epochs=1)),
    ):  # fmt: skip
        with pytest.raises(TrainingError, match="odd") as caught:
            Trainer(mixed, tmp_path / name, cfg, progress=False).fit()
        assert len(str(caught.value).splitlines()) == 1
        if name in ("flips", "canonical"):
            assert read == []  # refused before any split was read
        # control: on tanh networks every one of them trains
        assert len(Trainer(odd, tmp_path / f"ok-{name}", cfg, progress=False).fit()["history"]) == 1
        read.clear()
    # the plain command's default follows the group too
    assert Trainer(odd, tmp_path / "d1", TrainConfig(), progress=False).config.model == "sign-equivariant"
    assert Trainer(mixed, tmp_path / "d2", TrainConfig(), progress=False).config.model == "dwsnet"


def test_in_memory_zoos_check_declared_activations():
    with pytest.raises(ZooError, match="lacks the 'activation' codes"):
        _mixed_mlp_zoo(["relu", "tanh"])
    with pytest.raises(ZooError, match="unknown activation 'swoosh'"):
        _mixed_mlp_zoo("swoosh")
    with pytest.raises(ZooError, match="outside 0..1"):
        _mixed_mlp_zoo(["relu", "tanh"], torch.arange(60) % 3)
    only_relu = _mixed_mlp_zoo(["relu", "tanh"], torch.zeros(60, dtype=torch.long))
    assert only_relu.activation_names == ("relu",) and symmetry_group(only_relu).positive_scaling


def test_contrastive_views_draw_from_the_runs_group():
    from dwsnets.tasks.contrastive import Contrastive

    layout = WeightSpaceLayout.mlp((2, 8, 8, 1))
    ws = WeightSpace.randn(layout, 16)
    task = Contrastive(noise=0.0, entry_dropout=0.0)
    task.use_symmetry(SymmetryPolicy(SymmetryGroup.of(layout, ["sine"]), permute=False, canonical_signs=True))
    view = task.second_view(ws, torch.Generator().manual_seed(0))
    assert all(bool((s == 1).all()) for s in canonical_signs(view))  # the run's canonical form
    task.use_symmetry(SymmetryPolicy(SymmetryGroup.of(layout, ["sine"]), permute=False))
    assert not all(bool((s == 1).all()) for s in canonical_signs(task.second_view(ws, torch.Generator())))


def test_wrapped_and_evaluated_models_follow_the_group(tmp_path):
    """The contrastive task wraps the registry's model: a sign-blind encoder is still refused
    on ReLU networks. A finished run is still evaluated where its flags are now refused (runs
    made before the refusal stay readable)."""
    relu = _mixed_mlp_zoo("relu")
    small = {"hidden_channels": 4, "num_layers": 1}
    encoder = TrainConfig(model="sign-equivariant", task="contrastive", model_args=small, epochs=1,
                          task_options={"probe": ["size"]})  # fmt: skip
    with pytest.raises(TrainingError, match="blind to the sign"):
        Trainer(relu, tmp_path / "c", encoder, progress=False).fit()
    # a run with canonical signs on tanh networks, then read as networks of both kinds
    cfg = TrainConfig(model="dwsnet", canonical_signs=True, model_args=small, epochs=1, batch_size=8)
    Trainer(_mixed_mlp_zoo("tanh"), tmp_path / "r", cfg, progress=False).fit()
    later = _mixed_mlp_zoo(["relu", "tanh"], torch.arange(60) % 2)
    assert "accuracy" in Trainer(later, tmp_path / "r", cfg, progress=False).evaluate("test")
    with pytest.raises(TrainingError, match="--canonical-signs needs every hidden activation odd"):
        Trainer(later, tmp_path / "r2", cfg, progress=False).fit()  # training is refused


def test_a_task_written_for_the_earlier_protocol_still_builds_its_model(tmp_path):
    from dwsnets.tasks.classify import Classify
    from dwsnets.training.models import build_task_model

    class Old(Classify):
        def build_model(self, name, layout, **kwargs):
            return torch.nn.Identity()

    with pytest.warns(DeprecationWarning, match="defines build_model"):
        assert isinstance(build_task_model(Old(), "dwsnet", MLP), torch.nn.Identity)


def test_models_fitted_in_one_call_check_the_flags_too(tmp_path):
    """statnn-gbt is fitted by scikit-learn without the trainer's steps; a flag the networks'
    group does not hold is refused there as well, before any split is read."""
    from dwsnets.experiments.table import train_and_test

    relu = _mixed_mlp_zoo(["relu", "tanh"], torch.arange(60) % 2)
    cfg = TrainConfig(model="statnn-gbt", task="generalization", canonical_signs=True)
    with pytest.raises(TrainingError, match="--canonical-signs needs every hidden activation odd"):
        train_and_test(relu, tmp_path / "gbt", cfg, "cpu")
