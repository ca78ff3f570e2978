"""What a zoo's INRs fit: one plug-in per data source, in one registry.

A :class:`Source` loads its data, divides it into the zoo's splits, and hands out the
coordinates and target values of any items: :data:`SOURCES` maps each ``fit-inrs --source``
name to one. A new data source is one new entry.

Image sources need no download:

* ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, values 0..16): the default.
* ``fashion-mnist``: the IDX files of Debian's ``dataset-fashion-mnist`` package
  (``apt-get install dataset-fashion-mnist`` puts them in
  ``/usr/share/datasets/fashion-mnist/``), or any directory holding them.
* ``mnist`` / ``idx``: any directory with ``train-images-idx3-ubyte[.gz]``,
  ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]`` and
  ``t10k-labels-idx1-ubyte[.gz]``.
* ``cifar10``: a directory with CIFAR-10's python batches (``data_batch_1`` ..
  ``data_batch_5``, ``test_batch``).

Every image source returns :class:`ImageSet`: images as float32 in ``[0, 1]`` with shape
``(N, H, W, C)`` and integer labels, for its ``train`` and ``test`` parts; an INR maps a
pixel's coordinates in ``[-1, 1]^2`` to its value.

Signal sources are synthetic: ``sine`` (``a sin(b x)``, ``a`` in [0.1, 1], ``b`` in [1, 10]),
``sine-freq`` (``sin(b x)``, ``b`` in [0.5, 10]: frequency regression) and ``sine-ab``
(``a``, ``b`` in [0, 10]: the paper's self-supervised data), each on 2,000 points of
``[-pi, pi]``, with ``amplitude`` and ``frequency`` stored per INR.

Classifier sources hold trained classifiers instead of INRs:
``fashion-mnist-classifiers`` trains ``--count`` ReLU MLPs on Fashion-MNIST thumbnails
(28x28 pooled to 7x7; :mod:`dwsnets.zoo.classifiers`), the networks that domain
adaptation updates; ``digits-classifiers`` does the same on the bundled digits (8x8
pooled to 4x4: small, for tests and quick trials). ``fashion-mnist-cnns`` trains small
CNNs with drawn hyperparameters, the Small CNN Zoo's recipe (:mod:`dwsnets.zoo.cnns`), for
generalization prediction; ``digits-cnns`` the same on the digits.
"""

from __future__ import annotations

import gzip
import math
import pickle
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from ..core.augment import ACTIVATIONS
from ..core.layout import WeightSpaceLayout

if TYPE_CHECKING:
    from .config import ZooConfig

__all__ = [
    "FASHION_MNIST_DIR",
    "IMAGE_SOURCES",
    "SOURCES",
    "CNNSource",
    "ClassifierSource",
    "DataNotFoundError",
    "Fitted",
    "ImageSet",
    "ImageSource",
    "SineSource",
    "Source",
    "get_source",
    "load_images",
]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SOURCES = ("digits", "fashion-mnist", "mnist", "idx", "cifar10")
Splits = dict[str, tuple[str, np.ndarray]]  # split name -> (the source's part, item indices into it)


class DataNotFoundError(FileNotFoundError):
    """The data set is not on this machine; the message says how to get it."""


@dataclass(frozen=True)
class ImageSet:
    """Images ``(N, H, W, C)`` float32 in [0, 1] and labels ``(N,)`` int64."""

    name: str
    part: str  # "train" or "test" (the source's own division)
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]


def load_images(source: str, part: str = "train", data_dir: str | Path | None = None) -> ImageSet:
    """Load the ``train`` or ``test`` part of an image source (see the module docs)."""
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    if source == "digits":
        return _digits(part)
    if source == "fashion-mnist":
        root = Path(data_dir) if data_dir else FASHION_MNIST_DIR
        hint = (
            "install it with `apt-get install dataset-fashion-mnist` (files go to "
            f"{FASHION_MNIST_DIR}) or pass --data-dir DIR holding the four IDX files"
        )
        return _idx(root, part, source, hint)
    if source in ("mnist", "idx"):
        if data_dir is None:
            raise DataNotFoundError(
                f"the {source} source reads IDX files from a directory you name: pass --data-dir DIR holding "
                "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
                "t10k-labels-idx1-ubyte[.gz]"
            )
        return _idx(Path(data_dir), part, source, "pass --data-dir DIR holding the four IDX files")
    if source == "cifar10":
        if data_dir is None:
            raise DataNotFoundError(
                "the cifar10 source reads CIFAR-10's python batches from a directory you name: pass --data-dir DIR "
                "holding data_batch_1 .. data_batch_5 and test_batch (the 'python version' of CIFAR-10)"
            )
        return _cifar10(Path(data_dir), part)
    raise ValueError(f"unknown image source {source!r}; choose from {', '.join(IMAGE_SOURCES)}")


def _digits(part: str) -> ImageSet:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        raise DataNotFoundError("the digits source needs scikit-learn: pip install scikit-learn") from exc
    data = load_digits()
    images = (data.images.astype(np.float32) / 16.0)[..., None]
    labels = data.target.astype(np.int64)
    # scikit-learn ships one set; the zoo's own seeded split divides it (see dwsnets.data.zoo)
    if part == "test":
        return ImageSet("digits", "test", images[:0], labels[:0])
    return ImageSet("digits", "train", images, labels)


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    return None


def _read_idx(path: Path, expected_dims: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable IDX file ({exc}); it may be truncated or corrupt") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    dims = raw[3]
    if dims != expected_dims:
        raise ValueError(f"{path} has {dims} dimensions, expected {expected_dims}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    offset = 4 + 4 * dims
    count = int(np.prod(shape))
    if len(raw) - offset != count:
        raise ValueError(
            f"{path} holds {len(raw) - offset} bytes of data, its header promises {count}: truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def _idx(root: Path, part: str, name: str, hint: str) -> ImageSet:
    prefix = "train" if part == "train" else "t10k"
    img_path = _find(root, f"{prefix}-images-idx3-ubyte")
    lbl_path = _find(root, f"{prefix}-labels-idx1-ubyte")
    if img_path is None or lbl_path is None:
        raise DataNotFoundError(f"{name}: no {prefix}-images/{prefix}-labels IDX files in {root}; {hint}")
    images = _read_idx(img_path, 3)
    labels = _read_idx(lbl_path, 1)
    if len(images) != len(labels):
        raise ValueError(f"{name}: {len(images)} images but {len(labels)} labels in {root}")
    return ImageSet(name, part, (images.astype(np.float32) / 255.0)[..., None], labels.astype(np.int64))


def _cifar10(root: Path, part: str) -> ImageSet:
    names = [f"data_batch_{i}" for i in range(1, 6)] if part == "train" else ["test_batch"]
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise DataNotFoundError(
            f"cifar10: {', '.join(missing)} missing in {root}; pass --data-dir DIR holding CIFAR-10's python batches"
        )
    images, labels = [], []
    for n in names:
        try:
            with open(root / n, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            lab = np.asarray(batch[b"labels"], dtype=np.int64)
        except Exception as exc:
            raise ValueError(f"cifar10: {root / n} is not a CIFAR-10 python batch ({exc})") from exc
        images.append(data.transpose(0, 2, 3, 1))
        labels.append(lab)
    return ImageSet("cifar10", part, np.concatenate(images).astype(np.float32) / 255.0, np.concatenate(labels))


# ---------------------------------------------------------------------- plug-ins


@dataclass
class Fitted:
    """What fitting one shard produced: parameters ``[W1, b1, ...]`` (leading axis: the
    networks), per-network information to store beside them (the source's
    :attr:`Source.quality` among it) and the optimisation steps each took."""

    params: list[Tensor]
    info: dict[str, Tensor]
    steps: Tensor


class Source(ABC):
    """What one kind of zoo fits. ``load`` once, then ``splits`` and ``items``; ``fit``
    trains a shard's networks (SIRENs unless a source says otherwise)."""

    name: str
    is_image: bool
    # the per-network score stored with every network and summarised per shard
    quality: str = "psnr"
    # the ZooConfig settings beyond the common ones (source, seed, shard_size, max_per_split,
    # views, views_in) that this source reads; it ignores the others
    settings: tuple[str, ...] = ("hidden", "lr", "max_steps", "w0", "target_psnr", "init")

    # networks per shard file when the user does not say (a shard is the unit a resumed build keeps)
    default_shard_size: int = 1000
    # networks trained together by default (None: the fitter's default for the device)
    default_chunk: int | None = None
    # every activation this source's networks may have on their hidden layers (dwsnets.core.symmetry);
    # several: each network records its own as a code into this tuple (its ``activation`` information)
    activations: tuple[str, ...] = ("sine",)

    def network_record(self) -> dict[str, Any]:
        """What a zoo's manifest records of how its networks compute (``"networks"``): the
        activations they may have (:mod:`dwsnets.core.symmetry`) and, for networks that run
        on a data set, how (``"forward"``)."""
        return {"activations": {"names": list(self.activations), "per_network": len(self.activations) > 1}}

    def layout(self, data: Any, config: ZooConfig) -> WeightSpaceLayout:
        """The layout of this source's networks (default: the MLP ``(d_in, *hidden, d_out)``)."""
        d_in, d_out, _ = self.sizes(data)
        return WeightSpaceLayout.mlp((d_in, *config.hidden, d_out))

    def ignored_settings(self, config: ZooConfig) -> list[str]:
        """The source-specific settings of ``config`` set away from their defaults that this
        source does not read (``fit-inrs`` says so rather than silently ignoring them)."""
        from .config import SOURCE_SETTINGS, ZooConfig

        default = ZooConfig()
        return [k for k in SOURCE_SETTINGS if k not in self.settings and getattr(config, k) != getattr(default, k)]

    def fit(self, data: Any, coords: Tensor, targets: Tensor, seeds: list[int], config: ZooConfig, *,
            device: str | torch.device = "cpu", chunk: int | None = None,
            progress: Any = None) -> Fitted:  # fmt: skip
        """Fit one SIREN per item to ``targets`` at ``coords`` (see :func:`~dwsnets.inr.fit_sirens`;
        ``chunk`` ``None``: its default for the device)."""
        from ..inr.fitting import fit_sirens

        result = fit_sirens(
            coords.to(device),
            targets.to(device),
            seeds,
            hidden=config.hidden,
            w0=config.w0,
            lr=config.lr,
            max_steps=config.max_steps,
            target_psnr=config.target_psnr,
            chunk=chunk,
            progress=progress,
            init=config.init,
        )
        return Fitted(result.params, {"psnr": result.psnr}, result.steps)

    @abstractmethod
    def load(self, config: ZooConfig) -> Any:
        """The source's data (raises :class:`DataNotFoundError` with how to get it)."""

    @abstractmethod
    def splits(self, data: Any, seed: int) -> Splits:
        """Train, validation and test items: seeded and deterministic."""

    @abstractmethod
    def sizes(self, data: Any) -> tuple[int, int, tuple[int, ...] | None]:
        """``(d_in, d_out, image shape or None)`` of the INRs."""

    @abstractmethod
    def items(self, data: Any, part: str, index: np.ndarray) -> tuple[Tensor, Tensor, dict[str, np.ndarray]]:
        """Shared coordinates ``(P, d_in)``, targets ``(n, P, d_out)`` and per-item
        information (``label`` among it; -1 where there is none)."""


def _holdout_splits(n_train: int, n_test: int, seed: int) -> Splits:
    """The source's own test part; validation drawn from its train part."""
    rng = np.random.default_rng(1000 + seed)
    n_val = 5000 if n_train > 20000 else max(1, n_train // 12)
    order = rng.permutation(n_train)
    return {
        "train": ("train", np.sort(order[n_val:])),
        "val": ("train", np.sort(order[:n_val])),
        "test": ("test", np.arange(n_test)),
    }


def _consecutive_splits(n: int, held: int) -> Splits:
    """``n`` generated items in order: the last ``held`` for test, the ``held`` before them
    for validation, the rest for training (the items themselves are drawn at random)."""
    order = np.arange(n)
    return {
        "train": ("train", order[: n - 2 * held]),
        "val": ("train", order[n - 2 * held : n - held]),
        "test": ("train", order[n - held :]),
    }


class ImageSource(Source):
    """Images (:func:`load_images`): one INR per image maps pixel coordinates to values."""

    is_image = True

    def __init__(self, name: str) -> None:
        self.name = name

    def load(self, config: ZooConfig) -> dict[str, ImageSet]:
        return {part: load_images(self.name, part, config.data_dir) for part in ("train", "test")}

    def splits(self, data: dict[str, ImageSet], seed: int) -> Splits:
        if self.name != "digits":
            return _holdout_splits(len(data["train"]), len(data["test"]), seed)
        # scikit-learn ships one set of 1,797 digits: a seeded 1,257 / 180 / 360 division
        order = np.random.default_rng(1000 + seed).permutation(len(data["train"]))
        n_test, n_val = 360, 180
        return {
            "train": ("train", np.sort(order[n_test + n_val :])),
            "val": ("train", np.sort(order[n_test : n_test + n_val])),
            "test": ("train", np.sort(order[:n_test])),
        }

    def sizes(self, data: dict[str, ImageSet]) -> tuple[int, int, tuple[int, ...] | None]:
        shape = data["train"].shape
        return 2, shape[2], shape

    def items(self, data: dict[str, ImageSet], part: str, index: np.ndarray) -> tuple[Tensor, Tensor, dict]:
        from ..inr.siren import coordinate_grid

        images = data[part].images[index]  # (n, H, W, C)
        h, w, c = images.shape[1:]
        meta = {"label": data[part].labels[index].astype(np.int64)}
        return coordinate_grid(h, w), torch.from_numpy(images.reshape(len(index), h * w, c)), meta


class SineSource(Source):
    """``a sin(b x)`` on ``points`` equally spaced ``x`` in ``[-pi, pi]``, with ``a`` and ``b``
    uniform in the given ranges (``--sine-count`` waves, split 80 / 10 / 10)."""

    is_image = False
    settings = (*Source.settings, "count")

    def __init__(self, name: str, amplitude: tuple[float, float], frequency: tuple[float, float],
                 points: int = 2000) -> None:  # fmt: skip
        self.name, self.amplitude, self.frequency, self.points = name, amplitude, frequency, points

    def load(self, config: ZooConfig) -> dict[str, np.ndarray]:
        n = config.count
        rng = np.random.default_rng(2000 + config.seed)
        return {
            "amplitude": rng.uniform(*self.amplitude, n).astype(np.float32),
            "frequency": rng.uniform(*self.frequency, n).astype(np.float32),
        }

    def splits(self, data: dict[str, np.ndarray], seed: int) -> Splits:
        n = len(data["amplitude"])
        return _consecutive_splits(n, n // 10)

    def sizes(self, data: dict[str, np.ndarray]) -> tuple[int, int, tuple[int, ...] | None]:
        return 1, 1, None

    def items(self, data: dict[str, np.ndarray], part: str, index: np.ndarray) -> tuple[Tensor, Tensor, dict]:
        x = torch.linspace(-math.pi, math.pi, self.points)
        amp, freq = data["amplitude"][index], data["frequency"][index]
        targets = torch.from_numpy(amp)[:, None, None] * torch.sin(torch.from_numpy(freq)[:, None] * x)[..., None]
        meta = {"label": np.full(len(index), -1, np.int64), "amplitude": amp, "frequency": freq}
        return x[:, None], targets.float(), meta


class ClassifierSource(Source):
    """Classifiers, not INRs: ReLU MLPs trained on an image source's thumbnails
    (:mod:`dwsnets.zoo.classifiers`); ``--count`` networks split 80 / 10 / 10, each
    scored by its accuracy on the source's test images."""

    is_image = False
    quality = "accuracy"
    settings = ("hidden", "lr", "max_steps", "count")
    default_chunk = 128
    activations = ("relu",)

    def __init__(self, name: str, images: str, pool: int) -> None:
        self.name, self.images, self.pool = name, images, pool

    def image_parts(self, data_dir: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The source's ``train`` and ``test`` images ``(N, H, W, 1)`` and labels. A source
        shipped as one set (digits) is divided with a fixed seed, the last 500 for test."""
        train, test = load_images(self.images, "train", data_dir), load_images(self.images, "test", data_dir)
        if len(test):
            return {"train": (train.images, train.labels), "test": (test.images, test.labels)}
        order = np.random.default_rng(9_000).permutation(len(train))
        keep, held = np.sort(order[:-500]), np.sort(order[-500:])
        return {"train": (train.images[keep], train.labels[keep]), "test": (train.images[held], train.labels[held])}

    def network_record(self) -> dict[str, Any]:
        forward = {"kind": "mlp", "dataset": self.images, "pool": self.pool, "input": "grey thumbnails"}
        return {**super().network_record(), "forward": forward}

    def load(self, config: ZooConfig) -> dict[str, Any]:
        from .classifiers import thumbnails

        data: dict[str, Any] = {"count": config.count}
        for part, (images, labels) in self.image_parts(config.data_dir).items():
            data[part] = (thumbnails(images, self.pool), torch.from_numpy(labels))
        return data

    def splits(self, data: dict[str, Any], seed: int) -> Splits:
        n = data["count"]
        return _consecutive_splits(n, max(1, n // 10))

    def sizes(self, data: dict[str, Any]) -> tuple[int, int, tuple[int, ...] | None]:
        return int(data["train"][0].shape[1]), int(data["train"][1].max()) + 1, None

    def items(self, data: dict[str, Any], part: str, index: np.ndarray) -> tuple[Tensor, Tensor, dict]:
        # every classifier learns from the same images: nothing per item but its seed
        return torch.empty(0), torch.empty(0), {"label": np.full(len(index), -1, np.int64)}

    def fit(self, data: Any, coords: Tensor, targets: Tensor, seeds: list[int], config: ZooConfig, *,
            device: str | torch.device = "cpu", chunk: int | None = None, progress: Any = None) -> Fitted:  # fmt: skip
        from .classifiers import train_classifiers

        chunk = self.default_chunk if chunk is None else chunk
        (x, y), (x_test, y_test) = data["train"], data["test"]
        result = train_classifiers(x.to(device), y.to(device), x_test.to(device), y_test.to(device), seeds,
                                   hidden=config.hidden, classes=int(y.max()) + 1, lr=config.lr,
                                   max_steps=config.max_steps, chunk=chunk, progress=progress)  # fmt: skip
        info = {"accuracy": result.accuracy, "weight_decay": result.weight_decay}
        return Fitted(result.params, info, result.steps)


class CNNSource(ClassifierSource):
    """Small CNNs (the Small CNN Zoo's architecture and hyperparameter draws,
    :mod:`dwsnets.zoo.cnns`) trained on an image source's full-size grey images scaled to
    [-1, 1]: ``--count`` networks of ``--steps`` steps each, split by training run
    (each network is one run) 75 / 12.5 / 12.5, each scored by its accuracy on all of the
    source's test images."""

    settings = ("max_steps", "count")
    activations = ACTIVATIONS  # each network draws ReLU or tanh; its code is its ``activation``
    default_shard_size = 250  # about 4 minutes of the 2-core CPU per shard at 600 steps (measured)
    default_chunk = 32  # the fastest measured on the CPU (docs/benchmarks.md)

    def __init__(self, name: str, images: str, padding: int) -> None:
        super().__init__(name, images, pool=1)
        self.padding = padding

    def network_record(self) -> dict[str, Any]:
        from .cnns import STRIDE

        forward = {"kind": "cnn", "stride": STRIDE, "padding": self.padding, "dataset": self.images,
                   "input": "grey, scaled to [-1, 1]"}  # fmt: skip
        return {**super().network_record(), "forward": forward}

    def load(self, config: ZooConfig) -> dict[str, Any]:
        data: dict[str, Any] = {"count": config.count}
        for part, (images, labels) in self.image_parts(config.data_dir).items():
            if images.shape[-1] != 1:
                raise ValueError(
                    f"{self.name}: the CNNs take grey images, {self.images} has {images.shape[-1]} channels"
                )
            scaled = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous() * 2 - 1
            data[part] = (scaled, torch.from_numpy(labels))
        return data

    def splits(self, data: dict[str, Any], seed: int) -> Splits:
        n = data["count"]
        return _consecutive_splits(n, max(1, n // 8))

    def layout(self, data: Any, config: ZooConfig) -> WeightSpaceLayout:
        from .cnns import cnn_layout

        return cnn_layout(int(data["train"][0].shape[1]), int(data["train"][1].max()) + 1)

    def fit(self, data: Any, coords: Tensor, targets: Tensor, seeds: list[int], config: ZooConfig, *,
            device: str | torch.device = "cpu", chunk: int | None = None, progress: Any = None) -> Fitted:  # fmt: skip
        from .cnns import train_cnns

        (x, y), (x_test, y_test) = data["train"], data["test"]
        result = train_cnns(x.to(device), y.to(device), x_test.to(device), y_test.to(device), seeds,
                            steps=config.max_steps, chunk=self.default_chunk if chunk is None else chunk,
                            padding=self.padding, progress=progress)  # fmt: skip
        info = {"accuracy": result.accuracy, "train_accuracy": result.train_accuracy,
                "diverged": result.diverged.float()}  # fmt: skip
        for key in result.settings[0].as_numbers():
            info[key] = torch.tensor([s.as_numbers()[key] for s in result.settings], dtype=torch.float64)
        return Fitted(result.params, info, torch.full((len(seeds),), config.max_steps, dtype=torch.int64))


SOURCES: dict[str, Source] = {
    **{name: ImageSource(name) for name in IMAGE_SOURCES},
    "sine": SineSource("sine", (0.1, 1.0), (1.0, 10.0)),
    "sine-freq": SineSource("sine-freq", (1.0, 1.0), (0.5, 10.0)),
    "sine-ab": SineSource("sine-ab", (0.0, 10.0), (0.0, 10.0)),
    "fashion-mnist-classifiers": ClassifierSource("fashion-mnist-classifiers", "fashion-mnist", pool=4),
    "digits-classifiers": ClassifierSource("digits-classifiers", "digits", pool=2),
    # the published architecture (valid convolutions), and the padded variant made before 2026-12-08
    "fashion-mnist-cnns": CNNSource("fashion-mnist-cnns", "fashion-mnist", padding=0),
    "fashion-mnist-cnns-padded": CNNSource("fashion-mnist-cnns-padded", "fashion-mnist", padding=1),
    # 8x8 digits are too small for three valid stride-2 convolutions: the padded variant
    "digits-cnns": CNNSource("digits-cnns", "digits", padding=1),
}


def get_source(name: str) -> Source:
    """The registered source ``name``; a clear error listing the choices otherwise."""
    if name not in SOURCES:
        raise ValueError(f"unknown zoo source {name!r}; choose from {', '.join(SOURCES)}")
    return SOURCES[name]
