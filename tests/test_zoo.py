"""Zoo storage: resume, corruption, splits, loading, sharded work, the command line."""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pytest
import torch

from dwsnets.cli import main
from dwsnets.inr import Siren, coordinate_grid, psnr
from dwsnets.zoo.sources import DataNotFoundError, get_source, load_images
from dwsnets.zoo.store import Zoo, ZooConfig, ZooError, build_zoo, merge_zoos, plan_zoo

SMALL = dict(source="digits", max_per_split=12, shard_size=5, max_steps=60, target_psnr=30.0)


@pytest.fixture(autouse=True)
def _float32():
    torch.set_default_dtype(torch.float32)
    yield


def _shard_bytes(path):
    return {p.name: p.read_bytes() for p in sorted((path / "shards").glob("*"))}


def test_build_load_and_psnr_matches_weights(tmp_path):
    build_zoo(tmp_path / "z", ZooConfig(**SMALL))
    zoo = Zoo(tmp_path / "z")
    assert zoo.splits == ["train", "val", "test"] and zoo.missing_shards() == []
    train = zoo.load("train")
    assert train.weights.layer_sizes == (2, 32, 32, 1) and len(train) == 12
    images = load_images("digits").images
    coords = coordinate_grid(8, 8)
    for i in range(3):
        net = Siren.from_weight_space(train.weights, i)
        target = torch.from_numpy(images[int(train.info["image_index"][i])].reshape(64, 1))
        assert int(train.labels[i]) == int(load_images("digits").labels[int(train.info["image_index"][i])])
        with torch.no_grad():
            assert abs(float(psnr(((net(coords) - target) ** 2).mean())) - float(train.info["psnr"][i])) < 1e-3


def test_recheck_psnr_from_stored_weights(tmp_path):
    build_zoo(tmp_path / "z", ZooConfig(**SMALL))
    check = Zoo(tmp_path / "z").recheck_psnr()
    assert check["rechecked"] == 36 and check["max_abs_psnr_difference_db"] < 1e-3


def test_resume_after_interruption_is_byte_identical(tmp_path):
    build_zoo(tmp_path / "full", ZooConfig(**SMALL))
    # interrupted run: fit only some shards, and leave a half-written temporary file behind
    partial = tmp_path / "partial"
    build_zoo(partial, ZooConfig(**SMALL), shard_index=0, num_shards=3)
    (partial / "shards" / ".val-00000.safetensors.tmp123").write_bytes(b"half")
    assert Zoo(partial).missing_shards()
    with pytest.raises(ZooError, match="incomplete"):
        Zoo(partial).load("train")
    result = build_zoo(partial, ZooConfig(**SMALL))
    assert result["skipped_shards"] > 0
    full, resumed = _shard_bytes(tmp_path / "full"), _shard_bytes(partial)
    assert {k: v for k, v in resumed.items() if not k.startswith(".")} == full


def test_corrupt_and_foreign_shards_are_detected(tmp_path):
    build_zoo(tmp_path / "a", ZooConfig(**SMALL))
    shard = tmp_path / "a" / "shards" / "train-00000.safetensors"
    blob = bytearray(shard.read_bytes())
    blob[-5] ^= 0xFF
    shard.write_bytes(bytes(blob))
    with pytest.raises(ZooError, match="corrupt"):
        Zoo(tmp_path / "a").load("train")
    # the next run refits the damaged shard
    build_zoo(tmp_path / "a", ZooConfig(**SMALL))
    Zoo(tmp_path / "a").load("train")
    # a shard from a zoo with other settings
    build_zoo(tmp_path / "b", ZooConfig(**{**SMALL, "seed": 1}))
    for suffix in (".safetensors", ".json"):
        shutil.copy(
            tmp_path / "b" / "shards" / f"train-00000{suffix}", tmp_path / "a" / "shards" / f"train-00000{suffix}"
        )
    with pytest.raises(ZooError, match="another zoo"):
        Zoo(tmp_path / "a").load("train", verify=True)
    with pytest.raises(ZooError, match="other settings"):
        build_zoo(tmp_path / "a", ZooConfig(**{**SMALL, "lr": 1e-3}))


def test_splits_are_disjoint_and_deterministic():
    plan_a, _ = plan_zoo(ZooConfig(source="digits"))
    plan_b, _ = plan_zoo(ZooConfig(source="digits"))
    sets = {s: set(v["image_index"].tolist()) for s, v in plan_a.splits.items()}
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
    assert sum(len(v) for v in sets.values()) == 1797
    for s in sets:
        assert np.array_equal(plan_a.splits[s]["image_index"], plan_b.splits[s]["image_index"])
    plan_c, _ = plan_zoo(ZooConfig(source="digits", seed=3))
    assert not np.array_equal(plan_a.splits["test"]["image_index"], plan_c.splits["test"]["image_index"])


def test_fashion_mnist_style_splits(tmp_path):
    _write_idx(tmp_path, n_train=240, n_test=30)
    plan, _ = plan_zoo(ZooConfig(source="mnist", data_dir=str(tmp_path)))
    counts = {s: v["count"] for s, v in plan.splits.items()}
    assert counts == {"train": 220, "val": 20, "test": 30}
    _assert_disjoint_and_complete(get_source("mnist").splits({"train": [0] * 240, "test": [0] * 30}, seed=0), 240, 30)


def _assert_disjoint_and_complete(splits, n_train, n_test):
    """No item is in two splits, and every item of each part is in one."""
    seen = {"train": [], "test": []}
    for part, index in splits.values():
        seen[part].extend(np.asarray(index).tolist())
    for part, n in (("train", n_train), ("test", n_test)):
        assert len(seen[part]) == len(set(seen[part])), f"an item of the {part} part is in two splits"
        assert sorted(seen[part]) == list(range(n))


@pytest.mark.parametrize(
    "name, data, n_train, n_test",
    [
        ("fashion-mnist", {"train": [0] * 60000, "test": [0] * 10000}, 60000, 10000),
        ("digits", {"train": [0] * 1797}, 1797, 0),
        ("sine-freq", {"amplitude": np.ones(200), "frequency": np.ones(200)}, 200, 0),
        ("fashion-mnist-classifiers", {"count": 1000}, 1000, 0),
    ],
)
def test_every_source_splits_into_disjoint_sets(name, data, n_train, n_test):
    """Held-out splits share no item with training (not only the right sizes); control: the
    check catches one shared item."""
    splits = get_source(name).splits(data, seed=3)
    _assert_disjoint_and_complete(splits, n_train, n_test)
    part, val = splits["val"]
    leaked = dict(splits, val=(part, np.concatenate([val, np.asarray(splits["train"][1][:1])])))
    with pytest.raises(AssertionError, match="in two splits"):
        _assert_disjoint_and_complete(leaked, n_train, n_test)


def test_split_work_and_merge(tmp_path):
    for i in range(2):
        build_zoo(tmp_path / f"part{i}", ZooConfig(**SMALL), shard_index=i, num_shards=2)
    merged = merge_zoos(tmp_path / "merged", [tmp_path / "part0", tmp_path / "part1"])
    assert merged.missing_shards() == []
    build_zoo(tmp_path / "single", ZooConfig(**SMALL))
    assert _shard_bytes(tmp_path / "merged") == _shard_bytes(tmp_path / "single")
    build_zoo(tmp_path / "other", ZooConfig(**{**SMALL, "seed": 5}))
    with pytest.raises(ZooError, match="different settings"):
        merge_zoos(tmp_path / "m2", [tmp_path / "part0", tmp_path / "other"])


def test_missing_data_and_bad_files(tmp_path):
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_images("fashion-mnist", data_dir=tmp_path)
    with pytest.raises(DataNotFoundError, match="--data-dir"):
        load_images("mnist")
    with pytest.raises(DataNotFoundError, match="data_batch_1"):
        load_images("cifar10", data_dir=tmp_path)
    _write_idx(tmp_path, 10, 5)
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-7])
    with pytest.raises(ValueError, match="truncated"):
        load_images("idx", data_dir=tmp_path)
    with pytest.raises(ZooError, match="no zoo"):
        Zoo(tmp_path / "nothing")
    build_zoo(tmp_path / "z", ZooConfig(**SMALL))
    with pytest.raises(ZooError, match="no split 'holdout'"):
        Zoo(tmp_path / "z").load("holdout")


def test_sine_zoo(tmp_path):
    build_zoo(tmp_path / "s", ZooConfig(source="sine", count=30, shard_size=8, max_steps=80, target_psnr=30.0))
    split = Zoo(tmp_path / "s").load("test")
    assert split.weights.layer_sizes == (1, 32, 32, 1) and len(split) == 3
    assert {"amplitude", "frequency"} <= set(split.info)


def test_cli_fit_inrs(tmp_path, capsys):
    args = [
        "fit-inrs",
        "--out",
        str(tmp_path / "z"),
        "--max-per-split",
        "6",
        "--shard-size",
        "4",
        "--steps",
        "60",
        "--target-psnr",
        "30",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "PSNR median" in out and (tmp_path / "z" / "reconstructions.png").exists()
    assert main(args) == 0
    assert "skipped" in capsys.readouterr().out
    assert main(["zoo-info", str(tmp_path / "z")]) == 0
    assert json.loads(capsys.readouterr().out)["inrs"] == 18
    assert main(["fit-inrs", "--out", str(tmp_path / "f"), "--source", "mnist"]) == 2
    assert "--data-dir" in capsys.readouterr().err


def test_cli_preview_reads_images_from_data_dir(tmp_path, capsys):
    """The picture needs the source images: for --data-dir sources it must look there."""
    _write_idx(tmp_path, n_train=24, n_test=6)
    args = [
        "fit-inrs",
        "--source",
        "idx",
        "--data-dir",
        str(tmp_path),
        "--out",
        str(tmp_path / "z"),
        "--max-per-split",
        "4",
        "--shard-size",
        "4",
        "--steps",
        "20",
        "--target-psnr",
        "0",
    ]
    assert main(args) == 0
    assert "picture:" in capsys.readouterr().out and (tmp_path / "z" / "reconstructions.png").exists()
    sine = [
        "fit-inrs",
        "--source",
        "sine",
        "--sine-count",
        "20",
        "--out",
        str(tmp_path / "s"),
        "--shard-size",
        "8",
        "--steps",
        "20",
    ]
    assert main(sine) == 0
    assert (tmp_path / "s" / "reconstructions.png").exists()


def _write_idx(root, n_train, n_test):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 6, 6), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        (root / f"{prefix}-images-idx3-ubyte").write_bytes(
            bytes([0, 0, 8, 3]) + b"".join(int(x).to_bytes(4, "big") for x in (n, 6, 6)) + images.tobytes()
        )
        with gzip.open(root / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(bytes([0, 0, 8, 1]) + int(n).to_bytes(4, "big") + labels.tobytes())


def test_initialisation_recipe_is_part_of_the_zoo_identity(tmp_path):
    siren, paper = ZooConfig(init="siren"), ZooConfig()
    assert paper.init == "paper"  # the default: the recipe whose weights carry more of the image
    assert "init" not in siren.identity()  # zoos made before the setting existed (all "siren") keep their id
    assert paper.identity()["init"] == "paper" and paper.zoo_id != siren.zoo_id
    build_zoo(tmp_path / "old", ZooConfig(**{**SMALL, "init": "siren"}))
    manifest = json.loads((tmp_path / "old" / "manifest.json").read_text())
    assert "init" not in manifest["config"]
    assert Zoo(tmp_path / "old").zoo_config().init == "siren"
    assert build_zoo(tmp_path / "old", ZooConfig(**{**SMALL, "init": "siren"}))["skipped_shards"] > 0
    with pytest.raises(ZooError, match="init"):
        build_zoo(tmp_path / "old", ZooConfig(**SMALL))


def test_sources_are_plug_ins(tmp_path):
    """Every data source is one registry entry; the sine families differ only in ranges."""
    from dwsnets.zoo.sources import SOURCES, SineSource, get_source

    assert {"digits", "fashion-mnist", "sine", "sine-freq", "sine-ab"} <= set(SOURCES)
    with pytest.raises(ValueError, match="unknown zoo source 'bogus'"):
        get_source("bogus")
    for name, (a_range, b_range) in {"sine-freq": ((1, 1), (0.5, 10)), "sine-ab": ((0, 10), (0, 10))}.items():
        source = get_source(name)
        assert isinstance(source, SineSource) and not source.is_image
        build_zoo(tmp_path / name, ZooConfig(source=name, count=40, shard_size=40, max_steps=5, target_psnr=None))
        info = Zoo(tmp_path / name).load("train").info
        assert a_range[0] <= float(info["amplitude"].min()) and float(info["amplitude"].max()) <= a_range[1]
        assert b_range[0] <= float(info["frequency"].min()) and float(info["frequency"].max()) <= b_range[1]
        assert (tmp_path / name / "manifest.json").exists()
    assert main(["zoo-info", str(tmp_path / "sine-ab")]) == 0


def test_classifier_zoo(classifier_zoo, tmp_path):
    """Classifier zoos: stored accuracies are what the stored weights compute, each network
    depends on its seed alone, and the target domain is a fixed, real shift."""
    from dwsnets import WeightSpace
    from dwsnets.zoo.classifiers import Corruption, classifier_forward, thumbnails, train_classifiers
    from dwsnets.zoo.sources import SOURCES

    zoo = Zoo(classifier_zoo)
    assert zoo.layout.tensors[0].shape == (8, 16) and zoo.summary()["quality"] == "accuracy"
    test = zoo.load("test")
    parts = SOURCES["digits-classifiers"].image_parts()
    x, y = thumbnails(parts["test"][0], 2), torch.from_numpy(parts["test"][1])
    for i in range(len(test)):  # recount with torch.nn layers built from the stored weights
        w = test.weights[i].to_parameters()
        net = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU(),
                                  torch.nn.Linear(8, 10))  # fmt: skip
        with torch.no_grad():
            for layer, (weight, bias) in zip(net[0::2], zip(w[0::2], w[1::2])):
                layer.weight.copy_(weight[0]), layer.bias.copy_(bias[0])
            accuracy = float((net(x).argmax(1) == y).float().mean())
        assert accuracy == pytest.approx(float(test.info["accuracy"][i]), abs=1e-6)
    assert float(zoo.load("train").info["accuracy"].median()) > 0.5  # they learned (chance: 0.1)
    # a network's result does not depend on the networks trained beside it
    train = parts["train"]
    args = (thumbnails(train[0], 2), torch.from_numpy(train[1]), x, y)
    one = train_classifiers(*args, [5, 6, 7], hidden=(4,), max_steps=30, chunk=3)
    other = train_classifiers(*args, [7, 5], hidden=(4,), max_steps=30, chunk=1)
    assert torch.allclose(one.params[0][2], other.params[0][0], atol=1e-6) and one.steps[0] == other.steps[1]
    assert classifier_forward(x, WeightSpace.from_parameters(one.params)).shape == (3, len(x), 10)
    # the target domain: reproducible, and not the clean images (control)
    shifted = Corruption().apply(parts["test"][0], "test")
    assert np.array_equal(shifted, Corruption().apply(parts["test"][0], "test"))
    assert np.abs(shifted - parts["test"][0]).mean() > 0.05
    with pytest.raises(ZooError, match="not INRs"):
        zoo.recheck_psnr()
    from dwsnets.zoo.preview import save_reconstruction_grid

    with pytest.raises(ValueError, match="not INRs"):
        save_reconstruction_grid(classifier_zoo, out_path=tmp_path / "x.png")


def test_views_in_train_only(tmp_path):
    """``views_in="train"``: K INRs per training image, one per validation and test image, and
    that one is the same INR (same seed, same weights) as view 0 of the all-splits zoo."""
    base = {**SMALL, "max_per_split": 4, "views": 3}
    assert "views_in" not in ZooConfig(**base).identity()  # zoos made before the setting keep their id
    assert ZooConfig(**base).zoo_id != ZooConfig(**base, views_in="train").zoo_id
    with pytest.raises(ValueError, match="views_in"):
        plan_zoo(ZooConfig(**base, views_in="val"))
    build_zoo(tmp_path / "all", ZooConfig(**base))
    build_zoo(tmp_path / "train", ZooConfig(**base, views_in="train"))
    every, lean = Zoo(tmp_path / "all"), Zoo(tmp_path / "train")
    assert [every.split_size(s) for s in every.splits] == [12, 12, 12]
    assert [lean.split_size(s) for s in lean.splits] == [12, 4, 4]
    assert [lean.split_views(s) for s in lean.splits] == [3, 1, 1] and every.split_views("test") == 3
    assert torch.equal(lean.load("train").weights.flatten(), every.load("train").weights.flatten())
    for split in ("val", "test"):
        one, first = lean.load(split), every.load(split)
        keep = first.info["view"] == 0
        assert bool((one.info["view"] == 0).all())
        assert torch.equal(one.info["seed"], first.info["seed"][keep])
        assert torch.allclose(one.weights.flatten(), first.weights.flatten()[keep], atol=1e-6)
        assert not torch.allclose(one.weights.flatten(), first.weights.flatten()[~keep][: len(one)], atol=1e-3)


def test_the_manifest_records_the_layout_and_older_manifests_still_read(digits_zoo, tmp_path):
    from dwsnets.core.layout import WeightSpaceLayout

    manifest = json.loads((digits_zoo / "manifest.json").read_text())
    assert manifest["layout"] == {"kind": "feedforward", "layer_sizes": [2, 32, 32, 1], "kernel_shapes": [[], [], []]}
    old = tmp_path / "old"
    shutil.copytree(digits_zoo, old)
    del manifest["layout"]  # as written before the layout was recorded
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert Zoo(old).layout == Zoo(digits_zoo).layout == WeightSpaceLayout.mlp((2, 32, 32, 1))
    assert torch.equal(Zoo(old).load("val").weights.flatten(), Zoo(digits_zoo).load("val").weights.flatten())
    manifest["layout"] = {"kind": "graph"}
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ZooError, match="describes no valid layout"):
        Zoo(old)


def test_a_zoo_of_cnns_is_stored_and_read_with_its_layout(tmp_path):
    """The store is not MLP-only: a manifest with a CNN layout and shards named by it load
    as a weight space of that layout."""
    from dwsnets.core.layout import WeightSpaceLayout
    from dwsnets.zoo.format import FORMAT, ShardPlan, atomic_write_json, write_shard

    layout = WeightSpaceLayout.cnn((1, 4, 4), [(3, 3), (3, 3)], (10,))
    n = 5
    tensors = {t.name: torch.randn(n, *t.shape) for t in layout.tensors}
    tensors.update(label=torch.arange(n), steps=torch.ones(n, dtype=torch.long), accuracy=torch.rand(n))
    shard = ShardPlan("train-00000", "train", 0, n)
    (tmp_path / "shards").mkdir()
    write_shard(tmp_path, shard, tensors, "cnn-zoo", None, "accuracy")
    atomic_write_json(tmp_path / "manifest.json", {
        "format": FORMAT, "zoo_id": "cnn-zoo", "config": {}, "layout": layout.to_dict(),
        "splits": {"train": {"part": "train", "count": n}}, "shards": [vars(shard)],
    })  # fmt: skip
    split = Zoo(tmp_path).load("train")
    assert split.weights.layout == layout and split.weights.weights[0].shape == (n, 1, 4, 1, 3, 3)
    assert torch.equal(split.weights.weights[1][:, 0], tensors["weight2"]) and split.labels.tolist() == list(range(n))


def test_layouts_round_trip_through_their_description():
    from dwsnets.core.layout import TensorLayout, WeightSpaceLayout

    custom = WeightSpaceLayout((TensorLayout("a", (3, 2), (1, None)), TensorLayout("b", (3, 3), (1, 2))))
    for layout in (WeightSpaceLayout.mlp((2, 8, 1)), WeightSpaceLayout.cnn((3, 8), [(5, 5)], (4, 2)), custom):
        again = WeightSpaceLayout.from_dict(json.loads(json.dumps(layout.to_dict())))
        assert again == layout and repr(again) == repr(layout)
    with pytest.raises(ValueError, match="lacks or mistypes"):
        WeightSpaceLayout.from_dict({"kind": "feedforward", "layer_sizes": [2, 3]})


def test_each_source_owns_its_settings(tmp_path, capsys):
    from dwsnets.zoo.sources import get_source

    assert "count" in get_source("sine").settings and "count" not in get_source("digits").settings
    assert "w0" not in get_source("digits-classifiers").settings
    assert get_source("digits-classifiers").ignored_settings(ZooConfig(source="digits-classifiers", w0=20.0)) == ["w0"]
    for source, flag in (("digits-classifiers", ["--w0", "20"]), ("digits", ["--count", "5"])):
        assert main(["fit-inrs", "--source", source, *flag, "--out", str(tmp_path / source)]) == 2
        err = capsys.readouterr().err
        assert f"source {source} does not use {flag[0]}" in err and err.count("\n") == 1
        assert not (tmp_path / source).exists()  # refused before any work
