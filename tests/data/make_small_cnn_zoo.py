"""Write tests/data/small_cnn_zoo/: a small zoo in the Small CNN Zoo's published format, of
networks trained in its published conventions by Keras itself (not by dwsnets).

The conventions, from google-research's ``dnn_predict_accuracy/train_network.py``
(``build_cnn`` and ``_preprocess_batch``): three ``Conv2D(16, 3, strides=2)`` with Keras'
default padding ('valid'), the activation in each, ``GlobalAveragePooling2D``, ``Dense(10)``
(logits); pixels ``/ 255``, then scaled to [-1, 1], then averaged over colour channels.
The format, from the released files as NFN's loader reads them: ``weights.npy`` (one row of
4,970 parameters per checkpoint, each layer's bias then kernel, Keras' HWIO kernels
flattened row-major), ``layout.csv`` (``varname, start_idx, end_idx, shape``),
``metrics.csv.gz`` (the published columns; ``step`` 86 marks the final checkpoint) and an
NFN-style split file whose first line is pandas' header ``0``.

The networks train on Fashion-MNIST's training images and are scored by Keras'
``evaluate`` on the first 500 test images, which the fixture ships as IDX files
(``t10k-*``), so that ``dwsnets zoo-info --recompute`` can run them anywhere.

Run once (not in CI; it needs Keras and Debian's ``dataset-fashion-mnist``):

    python3 -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install torch==2.13.0 keras numpy
    KERAS_BACKEND=torch /tmp/kvenv/bin/python tests/data/make_small_cnn_zoo.py
"""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import struct
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras

SOURCE = Path("/usr/share/datasets/fashion-mnist")
OUT = Path(__file__).parent / "small_cnn_zoo"
NETWORKS = 16
TEST_IMAGES = 500
TRAIN_IMAGES = 6000


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def preprocess(images: np.ndarray) -> np.ndarray:
    """As ``_preprocess_batch``: /255, to [-1, 1], then the mean over channels (a no-op for grey)."""
    x = images.astype(np.float32)[..., None] / np.float32(255.0)
    x = np.float32(-1.0) + x * np.float32(2.0)
    return x.mean(-1, keepdims=True)


def build_cnn(activation: str, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((28, 28, 1))]
    layers += [keras.layers.Conv2D(16, kernel_size=3, strides=2, activation=activation) for _ in range(3)]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)]
    return keras.Sequential(layers)


def flat_row(model: keras.Model) -> tuple[np.ndarray, list[tuple[str, tuple[int, ...]]]]:
    """One checkpoint as the zoo stores it: per layer the bias, then the kernel (the TF
    variables' alphabetical order), each flattened row-major."""
    names = ["conv2d", "conv2d_1", "conv2d_2", "dense"]
    parts, layout = [], []
    for name, layer in zip(names, [layer for layer in model.layers if layer.weights]):
        kernel, bias = (np.asarray(w) for w in layer.get_weights())
        for var, value in (("bias", bias), ("kernel", kernel)):
            parts.append(value.astype(np.float32).ravel())
            layout.append((f"sequential/{name}/{var}:0", value.shape))
    return np.concatenate(parts), layout


def main() -> None:
    train_x = preprocess(read_idx(SOURCE / "train-images-idx3-ubyte.gz")[:TRAIN_IMAGES])
    train_y = read_idx(SOURCE / "train-labels-idx1-ubyte.gz")[:TRAIN_IMAGES].astype(np.int64)
    test_raw = read_idx(SOURCE / "t10k-images-idx3-ubyte.gz")[:TEST_IMAGES]
    test_lbl = read_idx(SOURCE / "t10k-labels-idx1-ubyte.gz")[:TEST_IMAGES]
    test_x, test_y = preprocess(test_raw), test_lbl.astype(np.int64)
    rng = np.random.default_rng(0)
    rows, metrics = [], []
    layout = None
    for n in range(NETWORKS):
        activation = ("relu", "tanh")[n % 2]
        optimizer = ("adam", "sgd")[(n // 2) % 2]
        lr = float(10 ** rng.uniform(-3, -1.5)) if optimizer == "adam" else float(10 ** rng.uniform(-2, -0.5))
        epochs = int(rng.integers(1, 3))
        model = build_cnn(activation, seed=1000 + n)
        opt = keras.optimizers.Adam(lr) if optimizer == "adam" else keras.optimizers.SGD(lr, momentum=0.9)
        model.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        for step, fit_epochs in ((0, 0), (86, epochs)):
            if fit_epochs:
                model.fit(train_x, train_y, batch_size=32, epochs=fit_epochs, verbose=0, shuffle=True)
            test_loss, test_acc = model.evaluate(test_x, test_y, batch_size=100, verbose=0)
            train_loss, train_acc = model.evaluate(train_x[:1000], train_y[:1000], batch_size=100, verbose=0)
            row, layout = flat_row(model)
            rows.append(row)
            metrics.append({
                "config.activation": activation, "config.b_init": "zeros", "config.dataset": "fashion_mnist",
                "config.dnn_architecture": "cnn", "config.dropout": 0.0, "config.epochs": 86,
                "config.epochs_between_checkpoints": 20, "config.init_std": 0.05, "config.l2reg": 0.0,
                "config.learning_rate": lr, "config.num_layers": 3, "config.num_units": 16,
                "config.optimizer": optimizer, "config.random_seed": 42, "config.train_fraction": 1.0,
                "config.w_init": "glorot_uniform", "modeldir": f"run-{n:03d}", "step": step,
                "test_accuracy": test_acc, "test_loss": test_loss, "train_accuracy": train_acc, "train_loss": train_loss,
            })  # fmt: skip
            print(f"network {n} ({activation}, {optimizer}, lr {lr:.4f}) step {step}: test accuracy {test_acc:.4f}")
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    np.save(OUT / "weights.npy", np.stack(rows).astype(np.float32))
    with open(OUT / "layout.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["varname", "start_idx", "end_idx", "shape"])
        start = 0
        for name, shape in layout:
            size = int(np.prod(shape))
            writer.writerow([name, start, start + size, str(tuple(int(s) for s in shape))])
            start += size
    with gzip.open(OUT / "metrics.csv.gz", "wt", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(metrics[0]))
        writer.writeheader()
        writer.writerows(metrics)
    # the NFN split files: pandas' header line "0", then a shuffle of every row
    order = np.random.default_rng(1).permutation(len(rows))
    (OUT / "fashion_mnist_split.csv").write_text("0\n" + "".join(f"{i}\n" for i in order))
    images = OUT / "images"
    images.mkdir()
    write_idx(images / "t10k-images-idx3-ubyte.gz", test_raw)
    write_idx(images / "t10k-labels-idx1-ubyte.gz", test_lbl)


if __name__ == "__main__":
    main()
