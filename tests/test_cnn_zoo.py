"""CNN zoos: the batched forward and trainer, the store's layout, the activations' own
symmetries (exact on real images, with controls), and generalization prediction on them."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from torch import nn

from dwsnets import WeightSpace
from dwsnets.core.augment import activation_symmetry_factors, augment
from dwsnets.core.forward import batched_cnn_forward
from dwsnets.training import TrainConfig, Trainer, TrainingError
from dwsnets.zoo import Zoo, ZooConfig, build_zoo
from dwsnets.zoo.cnns import cnn_layout, draw_settings, train_cnns
from dwsnets.zoo.dataset import InMemoryZoo
from dwsnets.zoo.errors import ZooError
from dwsnets.zoo.sources import load_images


@pytest.fixture(autouse=True)
def _float32():
    torch.set_default_dtype(torch.float32)
    yield


@pytest.fixture(scope="module")
def digits():
    """Real images: the bundled digits (8x8) in [-1, 1], as (N, 1, 8, 8)."""
    data = load_images("digits")
    return torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous() * 2 - 1, torch.from_numpy(data.labels)


def _torch_cnn(params: list[torch.Tensor], n: int, activation: nn.Module) -> nn.Sequential:
    """Network ``n`` of stacked parameters as an ordinary torch.nn CNN."""
    convs = [nn.Conv2d(p.shape[2], p.shape[1], 3, stride=2, padding=1) for p in params[0:6:2]]
    dense = nn.Linear(params[6].shape[2], params[6].shape[1])
    with torch.no_grad():
        for layer, k in zip([*convs, dense], range(0, 8, 2)):
            layer.weight.copy_(params[k][n])
            layer.bias.copy_(params[k + 1][n])
    return nn.Sequential(*[m for c in convs for m in (c, activation)], nn.AdaptiveAvgPool2d(1), nn.Flatten(), dense)


def test_batched_cnn_forward_matches_torch_nn(digits):
    x = digits[0][:20]
    params = [torch.randn(3, *t.shape) * 0.5 for pair in zip(cnn_layout().tensors[:4], cnn_layout().tensors[4:])
              for t in pair]  # fmt: skip
    shared = batched_cnn_forward(x, params, torch.tanh, padding=1)
    own = batched_cnn_forward(x.expand(3, *x.shape), params, torch.tanh, padding=1)  # per-network inputs: grouped
    for n in range(3):
        ref = _torch_cnn(params, n, nn.Tanh())(x)
        torch.testing.assert_close(shared[n], ref, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(own[n], ref, atol=1e-5, rtol=1e-4)


def test_each_network_depends_on_its_seed_alone(digits):
    x, y = digits
    fit_all = train_cnns(x[:600], y[:600], x[600:800], y[600:800], [11, 12, 13, 14], steps=5, chunk=4, padding=1)
    fit_one = train_cnns(x[:600], y[:600], x[600:800], y[600:800], [13], steps=5, chunk=1, padding=1)
    for p_all, p_one in zip(fit_all.params, fit_one.params):
        torch.testing.assert_close(p_all[2], p_one[0], atol=1e-5, rtol=1e-4)
    assert fit_all.accuracy[2] == fit_one.accuracy[0]
    assert fit_all.settings[2] == draw_settings(13)[0]


def test_diverging_network_keeps_its_last_finite_weights(digits):
    x, y = digits
    seeds = [s for s in range(200) if draw_settings(s)[0].activation == "relu"][:2]
    x_big = x[:300] * float("nan")  # the loss is not finite from the first step
    fit = train_cnns(x_big, y[:300], x[300:400], y[300:400], seeds, steps=3, chunk=2, padding=1)
    assert bool(fit.diverged.all())
    assert all(torch.isfinite(p).all() for p in fit.params)
    torch.testing.assert_close(fit.params[0], torch.stack([_initial(s)[0] for s in seeds]))  # never moved


def _initial(seed: int) -> list[torch.Tensor]:
    from dwsnets.zoo.cnns import _initial_weights

    settings, g = draw_settings(seed)
    return _initial_weights(cnn_layout(), settings.init_scale, g)


def test_cnn_zoo_records_its_layout_and_hyperparameters(tmp_path):
    cfg = ZooConfig(source="digits-cnns", count=24, max_steps=4, shard_size=8)
    build_zoo(tmp_path / "z", cfg)
    manifest = json.loads((tmp_path / "z" / "manifest.json").read_text())
    assert manifest["layout"]["kernel_shapes"] == [[3, 3], [3, 3], [3, 3], []]
    zoo = Zoo(tmp_path / "z")
    split = zoo.load("train")
    assert split.weights.layout == cnn_layout()
    for key in ("accuracy", "train_accuracy", "activation", "optimizer", "lr", "dropout", "l2", "train_fraction"):
        assert key in split.info, key
    assert set(split.info["activation"].tolist()) <= {0.0, 1.0}
    assert zoo.split_size("train") + zoo.split_size("val") + zoo.split_size("test") == 24


def _act(code: int) -> nn.Module:
    return nn.ReLU() if code == 0 else nn.Tanh()


def test_activation_symmetries_are_exact_on_real_images_with_controls(digits):
    x = digits[0][:64]
    layout = cnn_layout()
    torch.manual_seed(0)
    params = [torch.randn(4, *t.shape) * 0.4 for pair in zip(layout.tensors[:4], layout.tensors[4:]) for t in pair]
    ws = WeightSpace.from_parameters(params)
    codes = torch.tensor([0, 0, 1, 1])  # two ReLU networks, two tanh networks
    g = torch.Generator().manual_seed(3)
    moved = augment(ws, g, permute=True, activations=codes)
    moved_params = moved.to_parameters()
    for n in range(4):
        act = torch.relu if codes[n] == 0 else torch.tanh
        before = batched_cnn_forward(x, [p[n : n + 1] for p in params], act, padding=1)
        after = batched_cnn_forward(x, [p[n : n + 1] for p in moved_params], act, padding=1)
        torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(moved_params[0][n], params[0][n])  # the weights did move
    # controls: each activation's symmetry applied to the other activation changes the function
    swapped = ws.rescale(activation_symmetry_factors(ws, 1 - codes, torch.Generator().manual_seed(4))).to_parameters()
    for n in range(4):
        act = torch.relu if codes[n] == 0 else torch.tanh
        before = batched_cnn_forward(x, [p[n : n + 1] for p in params], act, padding=1)
        after = batched_cnn_forward(x, [p[n : n + 1] for p in swapped], act, padding=1)
        assert (after - before).abs().max() > 1e-2


def test_rescale_checks_its_factors():
    layout = cnn_layout()
    ws = WeightSpace.from_parameters([torch.randn(2, *t.shape) for pair in zip(layout.tensors[:4], layout.tensors[4:])
                                      for t in pair])  # fmt: skip
    with pytest.raises(Exception, match="nonzero"):
        ws.rescale([torch.zeros(16), torch.ones(16), torch.ones(16)])
    with pytest.raises(Exception, match="one per hidden layer"):
        ws.rescale([torch.ones(16)])


def test_generalization_on_a_cnn_zoo_with_activation_symmetries(tmp_path, capsys):
    from dwsnets.cli import main

    build_zoo(tmp_path / "z", ZooConfig(source="digits-cnns", count=64, max_steps=20, shard_size=64))
    for model in ("dwsnet", "statnn", "mlp-aug"):
        code = main(["train", "generalization", "--zoo", str(tmp_path / "z"), "--model", model, "--epochs", "2",
                     "--activation-symmetries", "--out", str(tmp_path / f"run-{model}")])  # fmt: skip
        assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "Kendall's tau" in out
    assert main(["train", "generalization", "--zoo", str(tmp_path / "z"), "--model", "statnn-gbt", "--out",
                 str(tmp_path / "run-gbt")]) == 0  # fmt: skip
    record = json.loads((tmp_path / "run-gbt" / "test.json").read_text())
    assert -1 <= record["test_kendall_tau"] <= 1 and record["train_seconds"] > 0
    from dwsnets.baselines.gbt import GRID

    chosen = json.loads((tmp_path / "run-gbt" / "config.json").read_text())["fitted"]
    assert len(list(itertools.product(*GRID.values()))) == 32  # the wider search (6 points before)
    assert all(chosen[k] in GRID[k] for k in GRID) and chosen["rounds"] >= 1
    # a classifier zoo records ReLU for every network: their positive scaling is exact, and taken
    build_zoo(tmp_path / "c", ZooConfig(source="digits-classifiers", count=40, max_steps=5, hidden=(8,)))
    assert main(["train", "generalization", "--zoo", str(tmp_path / "c"), "--model", "statnn", "--epochs", "1",
                 "--activation-symmetries", "--out", str(tmp_path / "run-c")]) == 0  # fmt: skip
    # networks whose activations nobody recorded refuse the option in one line
    held = Zoo(tmp_path / "c")
    unknown = InMemoryZoo({s: held.load(s) for s in held.splits})
    with pytest.raises(TrainingError, match="activations are not recorded") as caught:
        Trainer(unknown, tmp_path / "run-u", TrainConfig(model="statnn", task="generalization",
                                                        activation_symmetries=True), progress=False).fit()  # fmt: skip
    assert len(str(caught.value).splitlines()) == 1


def test_cnn_zoo_accuracies_spread(tmp_path):
    """Drawn hyperparameters give networks from chance to good, as the Small CNN Zoo's."""
    build_zoo(tmp_path / "z", ZooConfig(source="digits-cnns", count=32, max_steps=40, shard_size=32))
    acc = torch.cat([Zoo(tmp_path / "z").load(s).info["accuracy"] for s in ("train", "val", "test")]).numpy()
    assert np.quantile(acc, 0.9) - np.quantile(acc, 0.1) > 0.3


def test_fitted_zoos_record_how_their_networks_run_and_recompute_to_their_stored_scores(tmp_path, capsys):
    from dwsnets.cli import main
    from dwsnets.zoo.recompute import largest_difference, recompute
    from dwsnets.zoo.sources import SOURCES

    # the published architecture by default; the padded variant only by name (and for 8x8 digits)
    assert SOURCES["fashion-mnist-cnns"].network_record()["forward"]["padding"] == 0
    assert SOURCES["fashion-mnist-cnns-padded"].network_record()["forward"]["padding"] == 1
    build_zoo(tmp_path / "z", ZooConfig(source="digits-cnns", count=16, max_steps=10, shard_size=16))
    zoo = Zoo(tmp_path / "z")
    assert zoo.networks["forward"]["padding"] == 1 and zoo.activations == ("relu", "tanh")
    unit, found = recompute(zoo, 6)
    assert unit == "points" and len(found) == 6 and largest_difference(found) < 1e-6
    zoo.manifest["networks"]["forward"]["padding"] = 0  # control: 8x8 images cannot even run unpadded
    with pytest.raises(ZooError, match="images of side 8 are too small"):
        recompute(zoo, 6)
    # a zoo made before the record existed is read as what it was made with (padded)
    del zoo.manifest["networks"]
    assert zoo.networks["forward"]["padding"] == 1 and zoo.activation_names == ("relu", "tanh")
    # classifiers and INRs too
    build_zoo(tmp_path / "c", ZooConfig(source="digits-classifiers", count=12, max_steps=5, hidden=(8,)))
    assert largest_difference(recompute(Zoo(tmp_path / "c"), 12)[1]) < 1e-6
    build_zoo(tmp_path / "i", ZooConfig(source="digits", max_per_split=4, max_steps=20, shard_size=4))
    assert main(["zoo-info", str(tmp_path / "i"), "--recompute", "3"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("largest difference: ") and last.endswith(" dB") and float(last.split()[2]) < 0.01


def test_valid_convolutions_train_and_score_in_the_published_conventions(digits):
    """28x28 images (digits enlarged) through the published valid convolutions: 28 -> 13 -> 6 -> 2,
    and the stored accuracy is what a torch.nn CNN with padding 0 computes."""
    from dwsnets.zoo.cnns import feature_sizes

    assert (
        feature_sizes(28, 0) == [13, 6, 2] and feature_sizes(32, 0) == [15, 7, 3] and feature_sizes(8, 1) == [4, 2, 1]
    )
    with pytest.raises(ValueError, match="too small"):
        feature_sizes(8, 0)
    x, y = digits
    big = torch.nn.functional.interpolate(x[:400], size=(28, 28), mode="nearest")
    fit = train_cnns(big[:300], y[:300], big[300:], y[300:400], [3, 4], steps=5, chunk=2)
    for n, (s, _) in enumerate(draw_settings(seed) for seed in (3, 4)):
        act = nn.ReLU() if s.activation == "relu" else nn.Tanh()
        net = _torch_cnn([p.double() for p in fit.params], n, act).double()
        for conv in net[0:6:2]:
            conv.padding = (0, 0)
        pred = net(big[300:].double()).argmax(1)
        assert abs(float((pred == y[300:400]).double().mean()) - float(fit.accuracy[n])) < 1e-6
