"""Models that query networks: how a zoo's networks run, the probes, the invariance that
querying gives for free (with controls), and training through the trainer."""

from __future__ import annotations

import pytest
import torch

from dwsnets import WeightSpace, WeightSpaceLayout
from dwsnets.baselines import BaselineError, build_model, models_for
from dwsnets.core.forward import batched_cnn_forward
from dwsnets.core.function import NetworkFunction, coordinate_grid
from dwsnets.inr import siren_forward
from dwsnets.nn.probing import ProbeHybrid, ProbeNet, ProbeSet
from dwsnets.testing import assert_invariant
from dwsnets.zoo import Zoo, ZooError, network_function
from dwsnets.zoo.dataset import InMemoryZoo, symmetry_group
from dwsnets.zoo.split import ZooSplit

SIREN = NetworkFunction("mlp", "sine", (2,), w0=30.0, grid=(6, 6))
SIZES = (2, 8, 8, 1)


def _sirens(n: int = 6) -> WeightSpace:
    return WeightSpace.randn(SIZES, n) * 0.3


def test_the_function_runs_networks_as_the_package_does():
    ws = _sirens(3)
    coords = coordinate_grid(6, 6, dtype=torch.float64)
    expected = siren_forward(coords, ws, w0=30.0)
    assert torch.allclose(SIREN(ws.to_parameters(), coords), expected)
    assert torch.allclose(SIREN.grid_inputs().double(), coords)
    cnn = WeightSpaceLayout.cnn((1, 4, 4), [(3, 3), (3, 3)], (3,))
    nets = WeightSpace.randn(cnn, 2)
    images = torch.randn(5, 1, 12, 12)
    function = NetworkFunction("cnn", "tanh", (1, 12, 12), stride=2, padding=1)
    expected = batched_cnn_forward(images, nets.to_parameters(), torch.tanh, stride=2, padding=1)
    assert torch.allclose(function(nets.to_parameters(), images), expected)
    with pytest.raises(ValueError, match=r"expected \(K, 2\)"):
        SIREN(ws.to_parameters(), torch.randn(4, 3))
    with pytest.raises(ValueError, match="unknown activation 'swoosh'"):
        NetworkFunction("mlp", "swoosh", (2,))


@pytest.mark.parametrize("kind", ["generated", "learned", "random", "grid"])
def test_probe_net_is_invariant_to_every_symmetry_of_the_function_with_control(kind):
    model = ProbeNet(SIZES, 4, function=SIREN, num_probes=16, probes=kind).eval()
    ws = _sirens()
    assert_invariant(model, ws, atol=1e-6)  # hidden permutations; its control swaps W_1's inputs
    flipped = ws.flip_signs(ws.random_signs(torch.Generator().manual_seed(1), per_network=True))
    assert model.sign_invariant
    assert torch.allclose(model(flipped), model(ws), atol=1e-6)
    # control: a change of a weight that changes the function changes the output
    nudged = WeightSpace(list(ws.weights), [ws.biases[0] + 0.5, *ws.biases[1:]])
    assert not torch.allclose(model(nudged), model(ws), atol=1e-3)


def test_a_sign_flip_changes_a_relu_network_and_so_the_probe_output():
    relu = NetworkFunction("mlp", "relu", (2,), grid=(6, 6))
    model = ProbeNet(SIZES, 4, function=relu, num_probes=16).eval()
    ws = _sirens()
    assert not model.sign_invariant
    flipped = ws.flip_signs(ws.random_signs(torch.Generator().manual_seed(1), per_network=True))
    assert not torch.allclose(model(flipped), model(ws), atol=1e-3)
    assert_invariant(model, ws, atol=1e-6)  # permutations still keep a ReLU network's function


def test_probe_net_on_cnns_is_invariant_to_channel_permutations_with_control():
    cnn = WeightSpaceLayout.cnn((1, 4, 4), [(3, 3), (3, 3)], (3,))
    function = NetworkFunction("cnn", "relu", (1, 12, 12), stride=2, padding=1)
    model = ProbeNet(cnn, 2, function=function, num_probes=8).eval()
    assert_invariant(model, WeightSpace.randn(cnn, 4), atol=1e-6)


def test_probes_start_inside_the_domain_and_the_grid_is_the_networks_own():
    probes = ProbeSet(SIREN, 512)().detach()
    assert probes.shape == (512, 2)
    assert 0.1 < float(probes.std()) < 1.0 and float(probes.mean().abs()) < 0.1
    sine = NetworkFunction("mlp", "sine", (1,), domain=(-3.0, 3.0))
    assert abs(float(ProbeSet(sine, 512, "learned")().detach().std()) - 1.5) < 0.2  # a quarter of the width
    grid = ProbeSet(SIREN, kind="grid")
    assert grid.num_probes == 36 and not list(grid.parameters())
    with pytest.raises(ValueError, match="no grid"):
        ProbeSet(sine, kind="grid")
    with pytest.raises(ValueError, match="probes must be one of"):
        ProbeSet(SIREN, 8, "free")


def test_the_generator_is_deep_and_linear():
    probes = ProbeSet(SIREN, 8, latent_dim=4, depth=3, width=5)
    assert [type(m).__name__ for m in probes.generator] == ["Linear"] * 3
    with torch.no_grad():
        twice = probes.latents.mul_(2.0).clone()
        out_twice = probes()
        probes.latents.copy_(twice / 2)
        out = probes()
    offset = probes.generator(torch.zeros(1, 4))
    assert torch.allclose(out_twice - offset, 2 * (out - offset), atol=1e-10)  # affine in the latent code


def test_render_cnn_needs_a_grid_and_the_hybrid_picks_its_weight_model():
    with pytest.raises(ValueError, match="needs probes='grid'"):
        ProbeNet(SIZES, 3, function=SIREN, head="cnn")
    model = build_model("render-cnn", SIZES, 3, function=SIREN)
    assert model(_sirens()).shape == (6, 3)
    with pytest.raises(BaselineError, match="no such grid"):
        build_model("render-linear", SIZES, 3, function=NetworkFunction("mlp", "sine", (2,)))
    with pytest.raises(BaselineError, match="needs function=NetworkFunction"):
        build_model("probe", SIZES, 3)
    assert ProbeHybrid(SIZES, 3, function=SIREN).weights_kind == "sign-equivariant"
    relu = NetworkFunction("mlp", "relu", (2,))
    assert ProbeHybrid(SIZES, 3, function=relu).weights_kind == "dwsnet"
    with pytest.raises(ValueError, match="blind to sign flips"):
        ProbeHybrid(SIZES, 3, function=relu, weights="sign-equivariant")


def test_hybrid_is_invariant_with_control():
    model = ProbeHybrid(SIZES, 3, function=SIREN, num_probes=8, weight_args={"hidden_channels": 4, "num_layers": 1})
    ws = _sirens(8)
    model.train()
    model(ws)  # batch statistics of the standardisation
    model.eval()
    assert_invariant(model, ws, atol=1e-6)
    flipped = ws.flip_signs(ws.random_signs(torch.Generator().manual_seed(2), per_network=True))
    assert model.sign_invariant and torch.allclose(model(flipped), model(ws), atol=1e-6)


def test_networks_run_in_float32_under_bf16_autocast():
    model = ProbeNet(SIZES, 3, function=SIREN, num_probes=16, probes="grid", head="linear").float().eval()
    ws = _sirens().to(torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        responses = model.responses(ws)
    assert responses.dtype == torch.float32
    assert torch.allclose(responses, model.responses(ws))


def test_zoos_say_how_their_networks_run(digits_zoo, sine_zoo, classifier_zoo):
    digits = network_function(Zoo(digits_zoo))
    assert (digits.kind, digits.activation, digits.w0, digits.grid) == ("mlp", "sine", 30.0, (8, 8))
    sine = network_function(Zoo(sine_zoo))
    assert sine.grid is None and sine.input_shape == (1,) and sine.domain[1] > 3
    classifiers = network_function(Zoo(classifier_zoo))
    assert (classifiers.activation, classifiers.input_shape, classifiers.domain) == ("relu", (16,), (0.0, 1.0))
    zoo = Zoo(digits_zoo)
    layout, group = zoo.layout, symmetry_group(zoo)
    assert {"probe", "render-cnn"} <= set(models_for(layout, "classify", group, digits))
    assert "probe" not in models_for(layout, "classify", group)  # networks that cannot be run: weights only
    assert "render-cnn" not in models_for(Zoo(sine_zoo).layout, "regress", None, sine)  # no grid to render on


def test_in_memory_zoos_need_to_be_told_how_networks_run():
    split = ZooSplit(_sirens(4), torch.zeros(4, dtype=torch.long), {})
    with pytest.raises(ZooError, match="function=NetworkFunction"):
        network_function(InMemoryZoo({"train": split}))
    assert network_function(InMemoryZoo({"train": split}, function=SIREN)) is SIREN
    with pytest.raises(ZooError, match="NetworkFunction"):
        InMemoryZoo({"train": split}, function="sine")


def test_trainer_trains_a_probe_and_records_its_protocol(digits_zoo, tmp_path):
    from dwsnets.experiments.flags import write_run_flags
    from dwsnets.training import TrainConfig, Trainer

    config = TrainConfig(task="classify", model="probe", epochs=2, batch_size=32,
                         model_args={"num_probes": 8})  # fmt: skip
    trainer = Trainer(digits_zoo, tmp_path / "run", config, progress=False)
    result = trainer.fit()
    assert 0.0 <= result["best"] <= 1.0
    assert isinstance(trainer.model, ProbeNet) and trainer.model.function.grid == (8, 8)
    write_run_flags(tmp_path / "config.toml", trainer.config, str(digits_zoo), "out")
    assert "# protocol: queries" in (tmp_path / "config.toml").read_text()


def test_trainer_trains_the_hybrid_and_the_renderings(digits_zoo, tmp_path):
    from dwsnets.training import TrainConfig, Trainer

    for name, args in (("probe-hybrid", {"num_probes": 8, "weight_args": {"hidden_channels": 4, "num_layers": 1}}),
                       ("render-linear", {}), ("render-cnn", {})):  # fmt: skip
        config = TrainConfig(task="classify", model=name, epochs=1, batch_size=32, model_args=args)
        trainer = Trainer(digits_zoo, tmp_path / name, config, progress=False)
        assert 0.0 <= trainer.fit()["best"] <= 1.0, name


def test_query_cost_is_counted_from_the_layout():
    assert SIREN.flops(SIZES) == 2 * (2 * 8 + 8 * 8 + 8 * 1)
    model = ProbeNet(SIZES, 3, function=SIREN, num_probes=10)
    assert model.query_flops() == 10 * SIREN.flops(SIZES)
    cnn = NetworkFunction("cnn", "relu", (1, 28, 28), stride=2, padding=0)
    # 28 -> 13 -> 6 -> 2 (valid stride-2 3x3 convolutions), then a 16 -> 10 linear layer
    expected = 2 * (1 * 9 * 16 * 13 * 13 + 16 * 9 * 16 * 6 * 6 + 16 * 9 * 16 * 2 * 2 + 16 * 10)
    assert cnn.flops((1, 16, 16, 16, 10), [(3, 3), (3, 3), (3, 3), ()]) == expected


def test_the_zoos_function_renders_its_inrs_at_their_stored_psnr(digits_zoo):
    """What a probe reads is what was fitted: the zoo's function on its grid gives back each
    INR's stored PSNR (w0, grid orientation and offset all matter); control: another w0."""
    from dataclasses import replace

    from dwsnets.inr.fitting import psnr
    from dwsnets.zoo.build import plan_zoo, shard_targets

    zoo = Zoo(digits_zoo)
    plan, data = plan_zoo(zoo.zoo_config())
    shard = zoo.shards[0]
    tensors = zoo.open_shard(shard)
    _, targets, _ = shard_targets(plan, data, shard)
    params = [p.float() for p in zoo.shard_parameters(tensors)]
    function = network_function(zoo)
    with torch.no_grad():
        rendered = function(params, function.grid_inputs())
        again = psnr((rendered - targets[: len(rendered)]).square().mean((1, 2)))
        assert torch.allclose(again.double(), tensors["psnr"].double(), atol=1e-3)
        wrong = replace(function, w0=function.w0 * 1.1)(params, function.grid_inputs())
    assert float(psnr((wrong - targets[: len(wrong)]).square().mean((1, 2))).mean()) < float(again.mean()) - 3


def test_zoos_of_mixed_activations_are_refused_with_the_reason(tmp_path):
    import json
    from types import SimpleNamespace

    from dwsnets.zoo.function import zoo_function

    networks = {"activations": {"names": ["relu", "tanh"], "per_network": True},
                "forward": {"kind": "cnn", "stride": 2, "padding": 0, "dataset": "fashion-mnist"}}  # fmt: skip
    mixed = SimpleNamespace(path=tmp_path, quality="accuracy", networks=json.loads(json.dumps(networks)))
    with pytest.raises(ZooError, match="different activations \\(relu, tanh"):
        zoo_function(mixed)
    one = SimpleNamespace(path=tmp_path, quality="accuracy",
                          networks={**networks, "activations": {"names": ["tanh"], "per_network": False}})  # fmt: skip
    function = zoo_function(one)
    assert (function.kind, function.activation, function.input_shape, function.padding) == (
        "cnn",
        "tanh",
        (1, 28, 28),
        0,
    )
    unknown = SimpleNamespace(path=tmp_path, quality="accuracy",
                              networks={**one.networks, "forward": {**networks["forward"], "dataset": "imagenet"}})  # fmt: skip
    with pytest.raises(ZooError, match="imagenet"):
        zoo_function(unknown)


def test_bad_probe_arguments_are_training_errors(digits_zoo, tmp_path):
    from dwsnets.training import TrainConfig, Trainer, TrainingError

    config = TrainConfig(task="classify", model="probe", epochs=1, model_args={"probes": "free"})
    with pytest.raises(TrainingError, match="probes must be one of"):
        Trainer(digits_zoo, tmp_path / "run", config, progress=False).build()


def test_the_trainer_leaves_the_probes_undecayed_and_every_other_parameter_decayed():
    from dwsnets.baselines import build_model
    from dwsnets.training.trainer import _parameter_groups

    model = ProbeNet(SIZES, 3, function=SIREN, num_probes=8)
    decayed, undecayed = _parameter_groups(model, 0.01)
    assert (decayed["weight_decay"], undecayed["weight_decay"]) == (0.01, 0.0)
    assert {id(p) for p in undecayed["params"]} == {id(p) for p in model.probes.parameters()}
    assert len(decayed["params"]) + len(undecayed["params"]) == len(list(model.parameters()))
    hybrid = ProbeHybrid(SIZES, 3, function=SIREN, num_probes=8, weight_args={"hidden_channels": 4, "num_layers": 1})
    assert {id(p) for p in _parameter_groups(hybrid, 0.01)[1]["params"]} == {
        id(p) for p in hybrid.prober.probes.parameters()
    }
    # control: a model that names no such parameters keeps one decayed group
    (only,) = _parameter_groups(build_model("dwsnet", SIZES, 3), 0.01)
    assert only["weight_decay"] == 0.01
