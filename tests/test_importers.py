"""Importing the Small CNN Zoo: a fixture written in the published format, checked against
a reference forward written from that format's own description (Keras kernel order)."""

from __future__ import annotations

import csv
import gzip
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from dwsnets.core.forward import batched_cnn_forward
from dwsnets.zoo import Zoo, ZooError
from dwsnets.zoo.importers import import_small_cnn_zoo


@pytest.fixture(autouse=True)
def _float32():
    torch.set_default_dtype(torch.float32)
    yield


# the published architecture: 3 convolutions of 16 channels (3x3), global pooling, dense to 10
SHAPES = [("sequential/conv2d/kernel:0", (3, 3, 1, 16)), ("sequential/conv2d/bias:0", (16,)),
          ("sequential/conv2d_1/kernel:0", (3, 3, 16, 16)), ("sequential/conv2d_1/bias:0", (16,)),
          ("sequential/conv2d_2/kernel:0", (3, 3, 16, 16)), ("sequential/conv2d_2/bias:0", (16,)),
          ("sequential/dense/kernel:0", (16, 10)), ("sequential/dense/bias:0", (10,))]  # fmt: skip
RUNS, EPOCHS = 20, (0, 1, 86)


def write_fixture(directory: Path, rows_shuffle: int = 0) -> np.ndarray:
    """A small data set in the published format: 20 runs x 3 checkpoints; returns the weights."""
    directory.mkdir(parents=True, exist_ok=True)
    width = sum(int(np.prod(s)) for _, s in SHAPES)
    rng = np.random.default_rng(rows_shuffle)
    weights = (rng.standard_normal((RUNS * len(EPOCHS), width)) * 0.3).astype(np.float32)
    np.save(directory / "weights.npy", weights)
    with open(directory / "layout.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["varname", "start_idx", "end_idx", "size", "shape"])
        start = 0
        for name, shape in SHAPES:
            size = int(np.prod(shape))
            w.writerow([name, start, start + size, size, str(shape)])
            start += size
    with gzip.open(directory / "metrics.csv.gz", "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(["config.activation", "config.optimizer", "config.learning_rate", "config.dropout", "modeldir",
                    "step", "test_accuracy", "train_accuracy"])  # fmt: skip
        for row in range(len(weights)):
            run, epoch = divmod(row, len(EPOCHS))
            w.writerow(["relu" if run % 2 else "tanh", "adam", 10 ** -rng.uniform(2, 4), 0.1, f"runs/{run}",
                        EPOCHS[epoch], round(0.1 + 0.8 * rng.random(), 4), 0.5])  # fmt: skip
    return weights


def keras_reference(image: np.ndarray, flat: np.ndarray, activation) -> np.ndarray:
    """Logits of one network from its flat row, read as the format describes it: tensors in
    layout order, each row-major, kernels (h, w, in, out); 3x3 convolutions of stride 2
    with Keras' default padding 'valid' (none: 28 -> 13 -> 6 -> 2), global average pooling,
    dense (in, out)."""
    tensors, start = [], 0
    for _, shape in SHAPES:
        size = int(np.prod(shape))
        tensors.append(flat[start : start + size].reshape(shape).astype(np.float64))
        start += size
    h = image.astype(np.float64)  # (H, W, C)
    for k in range(3):
        kernel, bias = tensors[2 * k], tensors[2 * k + 1]
        out_size = (h.shape[0] - 3) // 2 + 1
        out = np.zeros((out_size, out_size, kernel.shape[3]))
        for y in range(out_size):
            for x in range(out_size):
                patch = h[2 * y : 2 * y + 3, 2 * x : 2 * x + 3, :]  # (3, 3, in)
                out[y, x] = np.einsum("ijc,ijco->o", patch, kernel) + bias
        h = activation(out)
    pooled = h.mean((0, 1))
    return pooled @ tensors[6] + tensors[7]


def test_imported_network_computes_the_function_the_format_describes(tmp_path):
    weights = write_fixture(tmp_path / "fmnist")
    counts = import_small_cnn_zoo(tmp_path / "fmnist", tmp_path / "zoo")
    assert counts == {"train": 8, "val": 2, "test": 10, "dropped_nonfinite": 0}
    zoo = Zoo(tmp_path / "zoo")
    assert zoo.layout.kernel_shapes == ((3, 3), (3, 3), (3, 3), ())
    split = zoo.load("test")
    params = split.weights.to_parameters()
    rows = split.info["source_row"]
    images = np.random.default_rng(1).uniform(-1, 1, (3, 28, 28, 1))
    ours = batched_cnn_forward(torch.tensor(images, dtype=torch.float32).permute(0, 3, 1, 2), params, torch.relu)
    for n in range(3):
        for i in range(3):
            ref = keras_reference(images[i], weights[int(rows[n])], lambda z: np.maximum(z, 0))
            np.testing.assert_allclose(ours[n, i].double().numpy(), ref, rtol=1e-4, atol=1e-5)
    # control: the first kernel's columns read as (out, in, h, w) without reordering compute something else
    plain = torch.from_numpy(weights[rows.numpy()][:, :144].reshape(-1, 16, 1, 3, 3).copy())
    wrong = [plain, *params[1:]]
    bad = batched_cnn_forward(torch.tensor(images, dtype=torch.float32).permute(0, 3, 1, 2), wrong, torch.relu)
    assert not torch.allclose(bad, ours, atol=1e-3)


def test_default_split_is_by_training_run_and_keeps_the_final_checkpoints(tmp_path):
    write_fixture(tmp_path / "d")
    import_small_cnn_zoo(tmp_path / "d", tmp_path / "zoo", all_checkpoints=True)
    zoo = Zoo(tmp_path / "zoo")
    runs = {s: {int(r) // len(EPOCHS) for r in zoo.load(s).info["source_row"]} for s in zoo.splits}
    assert not runs["train"] & runs["test"] and not runs["train"] & runs["val"] and not runs["val"] & runs["test"]
    assert sum(zoo.split_size(s) for s in zoo.splits) == RUNS * len(EPOCHS)
    import_small_cnn_zoo(tmp_path / "d", tmp_path / "final")
    steps = torch.cat([Zoo(tmp_path / "final").load(s).info["steps"] for s in ("train", "val", "test")])
    assert set(steps.tolist()) == {86}


def test_published_split_file_gives_the_published_protocol(tmp_path):
    write_fixture(tmp_path / "d")
    order = np.random.default_rng(5).permutation(RUNS * len(EPOCHS))
    np.savetxt(tmp_path / "split.csv", order, fmt="%d")
    import_small_cnn_zoo(tmp_path / "d", tmp_path / "zoo", split_file=tmp_path / "split.csv")
    zoo = Zoo(tmp_path / "zoo")
    final = [int(r) for r in order if r % len(EPOCHS) == len(EPOCHS) - 1]  # epoch 86, in the file's order
    first = list(range(len(final) // 2))
    random.Random(0).shuffle(first)
    cut = int(0.8 * len(first))
    expected = {"train": [final[i] for i in first[:cut]], "val": [final[i] for i in first[cut:]],
                "test": final[len(final) // 2 :]}  # fmt: skip
    for split, rows in expected.items():
        assert zoo.load(split).info["source_row"].tolist() == rows


def test_bad_inputs_get_one_line_errors(tmp_path):
    with pytest.raises(ZooError, match="not a Small CNN Zoo directory"):
        import_small_cnn_zoo(tmp_path, tmp_path / "out")  # a directory in another format
    write_fixture(tmp_path / "d")
    blob = (tmp_path / "d" / "weights.npy").read_bytes()
    (tmp_path / "d" / "weights.npy").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ZooError, match="truncated or corrupt"):
        import_small_cnn_zoo(tmp_path / "d", tmp_path / "out")
    write_fixture(tmp_path / "e")
    np.save(tmp_path / "e" / "weights.npy", np.zeros((5, 4970), np.float32))
    with pytest.raises(ZooError, match="mismatched"):
        import_small_cnn_zoo(tmp_path / "e", tmp_path / "out")
    write_fixture(tmp_path / "f")
    import_small_cnn_zoo(tmp_path / "f", tmp_path / "zoo")
    with pytest.raises(ZooError, match="already holds a zoo"):
        import_small_cnn_zoo(tmp_path / "f", tmp_path / "zoo")


def test_nonfinite_checkpoints_are_left_out_and_counted(tmp_path):
    weights = write_fixture(tmp_path / "d")
    weights[len(EPOCHS) - 1, 3] = np.nan  # run 0's final checkpoint crashed
    np.save(tmp_path / "d" / "weights.npy", weights)
    counts = import_small_cnn_zoo(tmp_path / "d", tmp_path / "zoo")
    assert counts["dropped_nonfinite"] == 1
    assert sum(v for k, v in counts.items() if k != "dropped_nonfinite") == RUNS - 1


def test_import_zoo_command_line(tmp_path, capsys):
    from dwsnets.cli import main

    write_fixture(tmp_path / "d")
    assert main(["import-zoo", str(tmp_path / "d"), "--format", "small-cnn-zoo", "--out", str(tmp_path / "zoo")]) == 0
    assert "8 train, 2 val, 10 test networks" in capsys.readouterr().out
    assert main(["import-zoo", str(tmp_path), "--format", "small-cnn-zoo", "--out", str(tmp_path / "other")]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "not a Small CNN Zoo directory" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err


# ---------------------------------------------------------------- the original DWSNets INR data set


def official_render(state: dict[str, torch.Tensor], size: int = 28) -> torch.Tensor:
    """An INR of the original code as it renders, from that code's description: sine layers
    sin(30 (W x + b)), a linear output plus 0.5, on coordinates (column, row) in [-1, 1]
    with the column varying fastest; returns the (size, size) image."""
    axis = torch.linspace(-1, 1, size)
    row, col = torch.meshgrid(axis, axis, indexing="ij")
    h = torch.stack([col.reshape(-1), row.reshape(-1)], 1)
    keys = [k for k in state if k.endswith(".weight")]
    for i, k in enumerate(keys):
        h = h @ state[k].T + state[k.replace("weight", "bias")]
        if i < len(keys) - 1:
            h = torch.sin(30 * h)
    return (h + 0.5).reshape(size, size)


def write_official_fixture(root: Path, per_split: dict[str, int]) -> dict[str, list[dict[str, torch.Tensor]]]:
    """INRs saved as the original code saves them, listed in a splits JSON by absolute paths
    of another machine (as published files are)."""
    import json

    g = torch.Generator().manual_seed(0)
    states, listing = {}, {}
    for split, n in per_split.items():
        states[split], listing[split] = [], {"path": [], "label": []}
        for i in range(n):
            state = {"seq.0.weight": torch.rand(32, 2, generator=g) - 0.5, "seq.0.bias": torch.rand(32, generator=g) * 0.1,
                     "seq.1.weight": (torch.rand(32, 32, generator=g) - 0.5) * 0.08, "seq.1.bias": torch.zeros(32),
                     "seq.2.weight": torch.rand(1, 32, generator=g) * 0.1, "seq.2.bias": torch.zeros(1)}  # fmt: skip
            rel = Path("fmnist_inrs") / f"fmnist_png_{split}" / f"{i % 10}_{i}" / "checkpoints" / "model.pth"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            torch.save(state, root / rel)
            states[split].append(state)
            listing[split]["path"].append(str(Path("/home/someone/dataset") / rel))
            listing[split]["label"].append(str(i % 10))
    (root / "fmnist_splits.json").write_text(json.dumps(listing))
    return states


def test_official_inrs_render_the_same_images_after_import(tmp_path):
    from dwsnets.inr.siren import coordinate_grid, siren_forward
    from dwsnets.zoo.importers import import_dwsnets_official

    states = write_official_fixture(tmp_path / "data", {"train": 4, "val": 2, "test": 3})
    counts = import_dwsnets_official(tmp_path / "data", tmp_path / "zoo")
    assert counts == {"train": 4, "val": 2, "test": 3, "dropped_nonfinite": 0}
    zoo = Zoo(tmp_path / "zoo")
    assert zoo.layer_sizes == (2, 32, 32, 1)
    split = zoo.load("test")
    assert split.labels.tolist() == [0, 1, 2]
    ours = siren_forward(coordinate_grid(28, 28), split.weights.to_parameters(), 30.0).reshape(-1, 28, 28)
    for i, state in enumerate(states["test"]):
        torch.testing.assert_close(ours[i], official_render(state), atol=1e-4, rtol=1e-4)
    # control: without the coordinate swap the image is transposed, not the same
    plain = [p.clone() for p in split.weights.to_parameters()]
    plain[0] = plain[0][:, :, [1, 0]]
    swapped = siren_forward(coordinate_grid(28, 28), plain, 30.0).reshape(-1, 28, 28)
    assert not torch.allclose(swapped[0], official_render(states["test"][0]), atol=1e-3)


def test_official_import_errors(tmp_path):
    from dwsnets.zoo.importers import import_dwsnets_official

    with pytest.raises(ZooError, match="not a DWSNets INR data set"):
        import_dwsnets_official(tmp_path, tmp_path / "zoo")
    write_official_fixture(tmp_path / "d", {"train": 2, "val": 1, "test": 1})
    broken = next((tmp_path / "d").rglob("model.pth"))
    broken.write_bytes(broken.read_bytes()[:40])
    with pytest.raises(ZooError, match="not a readable PyTorch state dict"):
        import_dwsnets_official(tmp_path / "d", tmp_path / "zoo")


# ---------------------------------------------------------------------------------------------
# networks trained in the published conventions by Keras itself (tests/data/make_small_cnn_zoo.py)

PUBLISHED = Path(__file__).parent / "data" / "small_cnn_zoo"


def test_the_real_split_files_first_lines_read_as_nfn_reads_them(tmp_path):
    """NFN's cifar10_split.csv: 270,001 lines for 270,000 checkpoints, beginning with pandas'
    header "0" (then 185633, 89145, 11421, 9173); ``pandas.read_csv(header=None)`` keeps it."""
    from dwsnets.zoo.importers import read_split_file

    rest = np.random.default_rng(0).permutation(270_000)
    head = [185633, 89145, 11421, 9173]
    rest = np.concatenate([head, rest[~np.isin(rest, head)]])
    path = tmp_path / "cifar10_split.csv"
    path.write_text("0\n" + "\n".join(map(str, rest)) + "\n")
    order = read_split_file(path, 270_000)
    assert len(order) == 270_001 and order[:5].tolist() == [0, *head] and (order == 0).sum() == 2
    with pytest.raises(ZooError, match="lists 270001 rows.*holds 269973"):  # another data set's file
        read_split_file(path, 269_973)


def test_a_published_zoo_imports_with_its_split_file_and_recomputes_exactly(tmp_path, capsys):
    from dwsnets.cli import main
    from dwsnets.zoo.recompute import largest_difference, recompute

    assert (PUBLISHED / "fashion_mnist_split.csv").read_text().startswith("0\n")  # the header line, as published
    counts = import_small_cnn_zoo(PUBLISHED, tmp_path / "zoo", split_file=PUBLISHED / "fashion_mnist_split.csv")
    assert counts == {"train": 6, "val": 2, "test": 8, "dropped_nonfinite": 0}
    zoo = Zoo(tmp_path / "zoo")
    forward = zoo.networks["forward"]
    assert (forward["padding"], forward["stride"], forward["dataset"]) == (0, 2, "fashion_mnist")
    assert zoo.activation_names == ("relu", "tanh")
    unit, found = recompute(zoo, 16, str(PUBLISHED / "images"))
    assert unit == "points" and len(found) == 16 and largest_difference(found) < 0.5
    # control: the same networks with padding 1 compute another function (tens of points off)
    zoo.manifest["networks"]["forward"]["padding"] = 1
    assert largest_difference(recompute(zoo, 16, str(PUBLISHED / "images"))[1]) > 20
    # the command a user runs after an import
    assert main(["zoo-info", str(tmp_path / "zoo"), "--recompute", "16", "--data-dir", str(PUBLISHED / "images")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "largest difference: 0.00 points" and len([line for line in out if "test " in line]) == 8


def test_a_mixed_activation_zoo_refuses_sign_operations(tmp_path):
    from dwsnets.training import TrainConfig, Trainer, TrainingError

    import_small_cnn_zoo(PUBLISHED, tmp_path / "zoo", split_file=PUBLISHED / "fashion_mnist_split.csv")
    small = {"hidden_channels": 4, "num_layers": 1, "head_hidden": (8,)}
    refused = (
        TrainConfig(model="dwsnet", task="generalization", sign_flips=True, model_args=small),
        TrainConfig(model="dwsnet", task="generalization", canonical_signs=True, model_args=small),
        TrainConfig(model="dwsnet", task="generalization", model_args={**small, "input_encoding": "fourier-even"}),
    )
    for i, cfg in enumerate(refused):
        with pytest.raises(TrainingError, match=r"odd.*these networks have relu, tanh"):
            Trainer(tmp_path / "zoo", tmp_path / f"r{i}", cfg, progress=False).fit()
    with pytest.raises(TrainingError, match="CNN"):  # the sign-equivariant model: MLPs only
        Trainer(tmp_path / "zoo", tmp_path / "se", TrainConfig(model="sign-equivariant", task="generalization"),
                progress=False).fit()  # fmt: skip
    # control: each network's own symmetry (ReLU scaling, tanh flips) trains
    ok = TrainConfig(model="dwsnet", task="generalization", activation_symmetries=True, epochs=1, batch_size=4,
                     model_args=small)  # fmt: skip
    assert len(Trainer(tmp_path / "zoo", tmp_path / "ok", ok, progress=False).fit()["history"]) == 1


def test_padded_cnn_zoos_made_before_keep_their_identity():
    """fashion-mnist-cnns trained the padded variant before 2026-12-08: such a zoo resumes and
    stays the same data as fashion-mnist-cnns-padded, and the published source is another zoo."""
    from dwsnets.zoo.config import PADDED_CNNS, ZooConfig, source_of

    padded, valid = ZooConfig(source=PADDED_CNNS, count=64), ZooConfig(source="fashion-mnist-cnns", count=64)
    before = {k: v for k, v in valid.identity().items() if k != "conv_padding"}  # what such a zoo stored
    assert padded.identity() == before and padded.zoo_id != valid.zoo_id
    assert source_of(before) == PADDED_CNNS and source_of(valid.identity()) == "fashion-mnist-cnns"
    assert ZooConfig.from_identity(before).source == PADDED_CNNS


def test_empty_and_unknown_inputs_get_one_line_errors(tmp_path, capsys):
    import json

    from dwsnets.cli import main
    from dwsnets.zoo.importers import read_split_file

    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ZooError, match="lists no rows"):
        read_split_file(tmp_path / "empty.csv", 10)
    import_small_cnn_zoo(PUBLISHED, tmp_path / "zoo")
    manifest = json.loads((tmp_path / "zoo" / "manifest.json").read_text())
    manifest["networks"]["activations"]["present"] = ["hard_sigmoid"]
    (tmp_path / "zoo" / "manifest.json").write_text(json.dumps(manifest))
    assert main(["zoo-info", str(tmp_path / "zoo"), "--no-verify"]) == 0  # the rest is still shown
    assert "unknown activation 'hard_sigmoid'" in json.loads(capsys.readouterr().out)["symmetry"]
