"""Image sources that need no download.

* ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, values 0..16): the default.
* ``fashion-mnist``: the IDX files of Debian's ``dataset-fashion-mnist`` package
  (``apt-get install dataset-fashion-mnist`` puts them in
  ``/usr/share/datasets/fashion-mnist/``), or any directory holding them.
* ``mnist`` / ``idx``: any directory with ``train-images-idx3-ubyte[.gz]``,
  ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]`` and
  ``t10k-labels-idx1-ubyte[.gz]``.
* ``cifar10``: a directory with CIFAR-10's python batches (``data_batch_1`` ..
  ``data_batch_5``, ``test_batch``).

Every source returns :class:`ImageSet`: images as float32 in ``[0, 1]`` with shape
``(N, H, W, C)`` and integer labels, for its ``train`` and ``test`` parts.
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["FASHION_MNIST_DIR", "SOURCES", "DataNotFoundError", "ImageSet", "load_images"]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
SOURCES = ("digits", "fashion-mnist", "mnist", "idx", "cifar10")


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
    raise ValueError(f"unknown image source {source!r}; choose from {', '.join(SOURCES)}")


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
