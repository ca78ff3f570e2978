"""Zoos made elsewhere, read into the dwsnets store (``dwsnets import-zoo``).

``dwsnets-official``: the INR data sets of the original DWSNets code (Navon et al. 2023),
one state dict per INR and a JSON splits file (:func:`import_dwsnets_official`).

``small-cnn-zoo``: the Small CNN Zoo of Unterthiner et al. (2020), as published (one
directory per data set, e.g. ``cifar10/``):

* ``weights.npy``: float32, one row of flattened parameters per checkpoint (4,970 for the
  published architecture); every tensor flattened in Keras' (row-major) order, kernels
  as (height, width, in, out), dense kernels as (in, out);
* ``layout.csv``: which columns hold which tensor: ``varname`` (ending in ``kernel:0`` or
  ``bias:0``), ``start_idx``, ``end_idx`` and ``shape`` (a Python tuple);
* ``metrics.csv`` or ``metrics.csv.gz``: one row per checkpoint, among its columns
  ``test_accuracy``, ``train_accuracy``, ``step`` (the epoch of the checkpoint; 86 is the
  end of training), ``modeldir`` (the training run) and the run's ``config.*``
  hyperparameters.

Kernels are stored in PyTorch's order (out, in, height, width) after import. With the
split file later papers use (``--split-file``: one row index of ``weights.npy`` per line,
a fixed shuffle of all rows, e.g. the NFN repository's ``predict_gen_data_splits/``), the
splits are theirs exactly: the file read as NFN reads it (``pandas.read_csv(header=None)``,
so the published files' leading ``0`` line, a header pandas wrote, is a row: 270,001 rows
for cifar10's 270,000), the final checkpoints in that order, the second half for test,
and the first half shuffled by Python's ``random.Random(0)`` and divided 80 / 20 into
train and validation. Without one, training runs (never single checkpoints) are divided
the same way with a seeded shuffle.

The manifest records how the networks compute (``"networks"``): the published
architecture (``google-research/dnn_predict_accuracy``, ``build_cnn``) runs Keras
``Conv2D`` with its default padding ``'valid'`` and stride 2 (28 -> 13 -> 6 -> 2), on
pixels scaled to [-1, 1] and, for colour sets, averaged to grey; each network's
activation (``config.activation``) and the data set (``config.dataset``).
``dwsnets zoo-info ZOO --recompute N`` runs imported networks on that data set's test
images to check all of this against the stored accuracies.
"""

from __future__ import annotations

import ast
import csv
import gzip
import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..core.augment import ACTIVATIONS
from ..core.layout import WeightSpaceLayout
from .errors import ZooError
from .format import FORMAT, ShardPlan, atomic_write_json, write_shard

__all__ = ["FORMATS", "import_dwsnets_official", "import_small_cnn_zoo", "import_zoo", "write_imported_zoo"]

# per-run settings kept beside each imported network (numbers, or category codes in order of appearance)
_SETTINGS = ("config.learning_rate", "config.l2reg", "config.dropout", "config.init_std", "config.train_fraction")
_CATEGORIES = ("config.activation", "config.optimizer", "config.w_init", "config.b_init")


def write_imported_zoo(out: str | Path, layout: WeightSpaceLayout, splits: dict[str, dict[str, Tensor]],
                       identity: dict[str, Any], quality: str | None = "accuracy", shard_size: int = 5000,
                       notes: dict[str, Any] | None = None, networks: dict[str, Any] | None = None) -> None:  # fmt: skip
    """Write networks of ``layout`` as a zoo: ``splits[name]`` maps the layout's tensor
    names (leading axis: networks) and per-network information to tensors; ``identity``
    describes the origin (hashed into the ``zoo_id``); ``networks`` how they compute
    (activations, forward: :attr:`dwsnets.zoo.reader.Zoo.networks`)."""
    out = Path(out)
    if (out / "manifest.json").exists():
        raise ZooError(f"{out} already holds a zoo; import into a new directory")
    zoo_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    shards, counts = [], {}
    for split, tensors in splits.items():
        n = len(next(iter(tensors.values())))
        if n == 0:
            raise ZooError(f"the {split} split would hold no networks: too few networks (or training runs) to divide")
        counts[split] = n
        for k, start in enumerate(range(0, n, shard_size)):
            shards.append(ShardPlan(f"{split}-{k:05d}", split, start, min(shard_size, n - start)))
    (out / "shards").mkdir(parents=True, exist_ok=True)
    for shard in shards:
        part = {
            key: value[shard.start : shard.start + shard.count].contiguous()
            for key, value in splits[shard.split].items()
        }
        write_shard(out, shard, part, zoo_id, None, quality)
    manifest = {
        "format": FORMAT,
        "zoo_id": zoo_id,
        "config": identity,
        "source": identity["source"],
        "quality": quality,
        "imported": notes or {},
        "layer_sizes": list(layout.layer_sizes or ()),
        "layout": layout.to_dict(),
        "image_shape": None,
        "splits": {s: {"part": s, "count": n} for s, n in counts.items()},
        "split_order": list(splits),
        "shards": [vars(s) for s in shards],
        "networks": networks or {},
    }
    atomic_write_json(out / "manifest.json", manifest)  # last: a zoo without it is visibly unfinished


def _read_csv(path: Path) -> dict[str, list[str]]:
    """A CSV file (gzip-compressed if its name ends in .gz) as ``{column: values}``."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            rows = list(reader)
    except (OSError, EOFError, StopIteration, csv.Error, UnicodeDecodeError) as exc:
        raise ZooError(f"{path} is not a readable CSV file ({exc or 'empty'})") from None
    if any(len(r) != len(header) for r in rows):
        raise ZooError(f"{path}: some rows do not have the header's {len(header)} columns (truncated?)")
    return {name: [r[i] for r in rows] for i, name in enumerate(header)}


def _read_layout(directory: Path) -> list[dict[str, Any]]:
    path = directory / "layout.csv"
    if not path.exists():
        raise ZooError(f"no layout.csv in {directory}: not a Small CNN Zoo directory (it holds weights.npy, "
                       "metrics.csv.gz and layout.csv)")  # fmt: skip
    table = _read_csv(path)
    try:
        rows = [{"varname": v, "start": int(a), "end": int(b), "shape": tuple(int(x) for x in ast.literal_eval(s))}
                for v, a, b, s in zip(table["varname"], table["start_idx"], table["end_idx"], table["shape"])]  # fmt: skip
    except (KeyError, ValueError, SyntaxError, TypeError) as exc:
        raise ZooError(f"{path} is not a Small CNN Zoo layout file (columns varname, start_idx, end_idx, shape): "
                       f"{exc}") from None  # fmt: skip
    for r in rows:
        if int(np.prod(r["shape"])) != r["end"] - r["start"]:
            raise ZooError(f"{path}: {r['varname']} spans columns {r['start']}..{r['end']} but has shape {r['shape']}")
    return rows


def _kernels_and_biases(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``layout.csv`` rows of the kernels and of the biases, each in file order."""
    kernels = [r for r in rows if r["varname"].endswith("kernel:0")]
    biases = [r for r in rows if r["varname"].endswith("bias:0")]
    return kernels, biases


def _cnn_layout(rows: list[dict[str, Any]], path: Path) -> WeightSpaceLayout:
    """The dwsnets layout of the tensors ``layout.csv`` lists (kernels, then each its bias)."""
    kernels, biases = _kernels_and_biases(rows)
    if len(kernels) + len(biases) != len(rows) or len(kernels) != len(biases) or not kernels:
        raise ZooError(f"{path}: expected pairs of '...kernel:0' and '...bias:0' tensors, got "
                       f"{[r['varname'] for r in rows]}")  # fmt: skip
    convs = [k["shape"] for k in kernels if len(k["shape"]) == 4]
    dense = [k["shape"] for k in kernels if len(k["shape"]) == 2]
    if len(convs) + len(dense) != len(kernels) or any(len(k["shape"]) == 4 for k in kernels[len(convs) :]):
        raise ZooError(f"{path}: expected 2-D convolutions (h, w, in, out) followed by dense layers (in, out)")
    channels = [convs[0][2], *(k[3] for k in convs)] if convs else []
    try:
        if convs:
            return WeightSpaceLayout.cnn(channels, [k[:2] for k in convs], [d[1] for d in dense])
        return WeightSpaceLayout.mlp([dense[0][0], *(d[1] for d in dense)])
    except ValueError as exc:
        raise ZooError(f"{path}: the tensors do not chain into one network ({exc})") from None


def _to_torch_order(flat: np.ndarray, row: dict[str, Any]) -> Tensor:
    """Columns of one tensor for many networks -> ``(N, *torch_shape)``."""
    arr = torch.from_numpy(np.ascontiguousarray(flat[:, row["start"] : row["end"]], dtype=np.float32))
    arr = arr.view(len(flat), *row["shape"])
    if arr.dim() == 5:  # (N, h, w, in, out) -> (N, out, in, h, w)
        arr = arr.permute(0, 4, 3, 1, 2)
    elif arr.dim() == 3:  # (N, in, out) -> (N, out, in)
        arr = arr.transpose(1, 2)
    return arr.contiguous()


def _load_weights(path: Path, width: int) -> np.ndarray:
    try:
        weights = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise ZooError(f"{path} is missing: a Small CNN Zoo directory holds weights.npy, metrics.csv.gz and "
                       "layout.csv") from None  # fmt: skip
    except (ValueError, OSError, EOFError) as exc:
        raise ZooError(f"{path} is not a readable .npy file; it may be truncated or corrupt ({exc})") from None
    if weights.ndim != 2 or weights.shape[1] != width:
        raise ZooError(f"{path} has shape {weights.shape}; layout.csv describes rows of {width} parameters")
    return weights


def _read_metrics(directory: Path) -> dict[str, list[str]]:
    for name in ("metrics.csv.gz", "metrics.csv"):
        if (directory / name).exists():
            metrics = _read_csv(directory / name)
            missing = [c for c in ("test_accuracy", "step") if c not in metrics]
            if missing:
                raise ZooError(f"{directory / name} lacks the column(s) {', '.join(missing)}")
            return metrics
    raise ZooError(f"no metrics.csv.gz in {directory}: not a Small CNN Zoo directory")


def _numbers(values: list[str]) -> np.ndarray:
    """A column as float64 numbers (empty or unreadable entries: NaN)."""
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        try:
            out[i] = float(v)
        except ValueError:
            pass
    return out


def read_split_file(path: Path, total: int) -> np.ndarray:
    """The rows of ``weights.npy`` in the order a split file lists them, read as NFN reads
    it (``pandas.read_csv(path, header=None)``): every line is a row, so the published
    files' first line, the ``0`` that pandas wrote as a column header, is kept as a row
    (the files list ``total + 1`` rows, row 0 twice)."""
    try:
        order = np.loadtxt(path, dtype=np.int64, ndmin=1)
    except (OSError, ValueError) as exc:
        raise ZooError(f"{path} is not a split file (one row index of weights.npy per line): {exc}") from None
    if not len(order):
        raise ZooError(f"{path} lists no rows: an empty split file")
    if len(order) not in (total, total + 1) or order.min() < 0 or order.max() >= total:
        raise ZooError(f"{path} lists {len(order)} rows (indices {order.min()}..{order.max()}); weights.npy holds "
                       f"{total}: another data set's split file?")  # fmt: skip
    return order


def _splits_of(metrics: dict[str, list[str]], rows: np.ndarray, split_file: Path | None,
               seed: int) -> dict[str, np.ndarray]:  # fmt: skip
    """Row indices (into ``weights.npy``) of train, validation and test."""
    if split_file is not None:
        order = read_split_file(split_file, len(metrics["step"]))
        keep = np.zeros(len(metrics["step"]), dtype=bool)
        keep[rows] = True
        ordered = order[keep[order]]  # the kept checkpoints in the file's order (NFN filters after permuting)
        half = len(ordered) // 2
        first = list(range(half))
        random.Random(0).shuffle(first)  # as the published protocol does
        cut = int(0.8 * half)
        return {"train": ordered[first[:cut]], "val": ordered[first[cut:]], "test": ordered[half:]}
    runs = np.asarray(metrics["modeldir"])[rows] if "modeldir" in metrics else rows
    names = np.unique(runs)
    perm = np.random.default_rng(seed).permutation(len(names))
    half = len(names) // 2
    cut = int(0.8 * half)
    parts = {"train": names[perm[:cut]], "val": names[perm[cut:half]], "test": names[perm[half:]]}
    return {s: rows[np.isin(runs, chosen)] for s, chosen in parts.items()}


def published_forward(dataset: str | None) -> dict[str, Any]:
    """How the Small CNN Zoo's networks run (the manifest's ``networks.forward``): valid
    stride-2 convolutions on pixels scaled to [-1, 1] and averaged to grey, on ``dataset``."""
    return {"kind": "cnn", "stride": 2, "padding": 0, "dataset": dataset,
            "input": "pixels scaled to [-1, 1], colour averaged to grey"}  # fmt: skip


def _network_record(metrics: dict[str, list[str]], codes: dict[str, dict[str, int]],
                    rows: np.ndarray) -> dict[str, Any]:  # fmt: skip
    """How the imported networks compute (the manifest's ``"networks"``): the published
    architecture's valid stride-2 convolutions on grey images in [-1, 1], the activations
    the networks have, and the data set they were trained and scored on."""
    datasets = sorted(set(np.asarray(metrics["config.dataset"])[rows].tolist())) if "config.dataset" in metrics else []
    record: dict[str, Any] = {"forward": published_forward(datasets[0] if len(datasets) == 1 else None)}
    if "config.activation" in codes:
        names = list(codes["config.activation"])
        present = sorted(set(np.asarray(metrics["config.activation"])[rows].tolist()), key=names.index)
        record["activations"] = {"names": names, "per_network": True, "present": present}
    return record


def import_small_cnn_zoo(directory: str | Path, out: str | Path, *, split_file: str | Path | None = None,
                         epoch: int | None = None, all_checkpoints: bool = False, seed: int = 0,
                         progress: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Import a Small CNN Zoo data set (see the module docs) into a zoo at ``out``.

    Args:
        epoch: which checkpoints (the ``step`` column); default the last (86 as published).
        all_checkpoints: every checkpoint instead (splits still by training run).
        split_file: the published split (rows of ``weights.npy``, one per line).

    Checkpoints with non-finite weights or accuracy (a few crashed runs, as published) are
    left out and counted. Returns ``{"train": n, "val": n, "test": n, "dropped_nonfinite": n}``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ZooError(f"{directory} is not a directory")
    layout_rows = _read_layout(directory)
    layout = _cnn_layout(layout_rows, directory / "layout.csv")
    width = max(r["end"] for r in layout_rows)
    weights = _load_weights(directory / "weights.npy", width)
    metrics = _read_metrics(directory)
    if len(metrics["step"]) != len(weights):
        raise ZooError(f"weights.npy holds {len(weights)} rows but the metrics file {len(metrics['step'])}: a "
                       "truncated or mismatched download")  # fmt: skip
    # every numeric column read once (the published files hold 270,000 rows)
    numbers = {c: _numbers(metrics[c]) for c in ("step", "test_accuracy", "train_accuracy", *_SETTINGS) if c in metrics}
    steps = numbers["step"].astype(np.int64)
    epoch = int(steps.max()) if epoch is None else int(epoch)
    rows = np.arange(len(steps)) if all_checkpoints else np.flatnonzero(steps == epoch)
    if not len(rows):
        raise ZooError(f"no checkpoint has step {epoch} (steps present: {sorted(set(steps.tolist()))[:12]})")
    splits = _splits_of(metrics, rows, Path(split_file) if split_file else None, seed)
    # categories as codes in order of appearance; activations with dwsnets' own codes first (augment.ACTIVATIONS)
    codes = {c: {v: i for i, v in enumerate(dict.fromkeys([*(ACTIVATIONS if c == "config.activation" else ()),
                                                            *metrics[c]]))} for c in _CATEGORIES if c in metrics}  # fmt: skip
    out_splits, dropped = {}, 0
    for split, index in splits.items():
        if progress:
            progress(f"reading {split}: {len(index)} networks")
        flat = np.asarray(weights[index], dtype=np.float32)
        finite = np.isfinite(flat).all(1) & np.isfinite(numbers["test_accuracy"][index])
        dropped += int((~finite).sum())
        flat, index = flat[finite], index[finite]
        tensors = {}
        for t, row in zip(_pairs(layout), _pairs_rows(layout_rows)):
            tensors[t] = _to_torch_order(flat, row)
        tensors.update(_network_info(numbers, metrics, index, codes))
        out_splits[split] = tensors
    identity = {"source": "small-cnn-zoo", "directory": directory.resolve().name, "rows": len(weights),
                "width": width, "split_file": Path(split_file).name if split_file else None, "seed": seed,
                "epoch": None if all_checkpoints else epoch}  # fmt: skip
    notes = {"categories": {c: list(m) for c, m in codes.items()}, "from": str(directory.resolve())}
    kept = np.concatenate([t["source_row"].numpy() for t in out_splits.values()])
    write_imported_zoo(out, layout, out_splits, identity, notes=notes, networks=_network_record(metrics, codes, kept))
    return {**{s: len(t["accuracy"]) for s, t in out_splits.items()}, "dropped_nonfinite": dropped}


def _pairs(layout: WeightSpaceLayout) -> list[str]:
    """The layout's tensor names in kernel, bias, kernel, bias... order."""
    m = len(layout.tensors) // 2
    return [name for k in range(1, m + 1) for name in (f"weight{k}", f"bias{k}")]


def _pairs_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``layout.csv`` rows in kernel, bias, kernel, bias... order."""
    return [r for pair in zip(*_kernels_and_biases(rows)) for r in pair]


def _network_info(
    numbers: dict[str, np.ndarray], metrics: dict[str, list[str]], index: np.ndarray, codes: dict[str, dict[str, int]]
) -> dict[str, Tensor]:
    """Per-network information: accuracies, the checkpoint's epoch, its row, the run's settings
    (``numbers``: the numeric columns, read; ``metrics``: the categorical ones, as text)."""

    def column(name: str) -> np.ndarray:
        return numbers[name][index]

    info = {
        "accuracy": torch.tensor(column("test_accuracy")),
        "steps": torch.tensor(column("step").astype(np.int64)),
        "source_row": torch.tensor(index.astype(np.int64)),
        "label": torch.full((len(index),), -1, dtype=torch.int64),
    }
    if "train_accuracy" in numbers:
        info["train_accuracy"] = torch.tensor(column("train_accuracy"))
    for name in _SETTINGS:
        if name in numbers:
            info[name.removeprefix("config.")] = torch.tensor(column(name))
    for name, mapping in codes.items():
        values = np.asarray(metrics[name])[index]
        info[name.removeprefix("config.")] = torch.tensor([mapping[v] for v in values], dtype=torch.int64)
    return {k: v.float() if v.is_floating_point() else v for k, v in info.items()}


def _rerooted(paths: list[str], directory: Path) -> Callable[[str], Path]:
    """A map from the paths a splits file lists (absolute paths of the machine that made it)
    to files here: as written when they exist, else under ``directory`` after dropping the
    same number of leading components as the first path needs."""
    first = Path(paths[0])
    if first.exists():
        return Path
    parts = first.parts[1:] if first.is_absolute() else first.parts
    for drop in range(len(parts)):
        if (directory / Path(*parts[drop:])).exists():
            return lambda p, d=drop: (
                directory / Path(*(Path(p).parts[1:] if Path(p).is_absolute() else Path(p).parts)[d:])
            )
    raise ZooError(f"the splits file lists {first}, which is neither there nor under {directory}: pass the directory "
                   "that holds the INR files")  # fmt: skip


def _official_inrs(files: list[Path]) -> list[Tensor]:
    """Stacked ``[W1, b1, ...]`` of INR state dicts (``seq.N.weight``/``seq.N.bias``, same shapes)."""
    stacked: list[list[Tensor]] = []
    shapes = None
    for path in files:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ZooError(f"{path} is not a readable PyTorch state dict ({exc})") from None
        tensors = [state[k].float() for k in state if k.endswith(".weight") or k.endswith(".bias")]
        if shapes is None:
            shapes = [t.shape for t in tensors]
            stacked = [[] for _ in tensors]
        if [t.shape for t in tensors] != shapes:
            raise ZooError(f"{path} holds an INR of another architecture ({[tuple(t.shape) for t in tensors]}; the "
                           f"first had {[tuple(s) for s in shapes]})")  # fmt: skip
        for column, t in zip(stacked, tensors):
            column.append(t)
    return [torch.stack(column) for column in stacked]


def import_dwsnets_official(directory: str | Path, out: str | Path, *, split_file: str | Path | None = None,
                            progress: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Import the INR data set of the original DWSNets code into a zoo at ``out``.

    ``directory`` holds the splits file (JSON ``{"train"|"val"|"test": {"path": [...],
    "label": [...]}}``; ``split_file`` names it when there are several) and the INRs, one
    PyTorch state dict per file (keys ``seq.0.weight``, ``seq.0.bias``, ... of SIRENs with
    ``sin(30 z)`` activations whose output is offset by +0.5). Stored as this package's
    INRs render: the +0.5 moves into the last bias, and the first layer's two input
    columns swap (the original's coordinates are (column, row), this package's (row,
    column)), so :func:`~dwsnets.inr.siren_forward` on :func:`~dwsnets.inr.coordinate_grid`
    draws the same image. The splits are the file's, exactly."""
    directory = Path(directory)
    if split_file is None:
        found = sorted(directory.glob("*.json"))
        if len(found) != 1:
            raise ZooError(f"{directory} holds {len(found)} JSON files; name the splits file with --split-file"
                           if found else f"no splits file (*.json) in {directory}: not a DWSNets INR data set")  # fmt: skip
        split_file = found[0]
    try:
        listing = json.loads(Path(split_file).read_text())
        splits = {
            s: (list(listing[s]["path"]), [int(v) for v in listing[s]["label"]]) for s in ("train", "val", "test")
        }
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ZooError(f"{split_file} is not a DWSNets splits file (train/val/test, each with path and label): "
                       f"{exc}") from None  # fmt: skip
    locate = _rerooted(splits["train"][0], directory)
    out_splits, layout = {}, None
    for split, (paths, labels) in splits.items():
        if progress:
            progress(f"reading {split}: {len(paths)} INRs")
        params = _official_inrs([locate(p) for p in paths])
        params[-1] = params[-1] + 0.5  # the output offset, as this package's INRs hold it
        params[0] = params[0][:, :, [1, 0]] if params[0].shape[2] == 2 else params[0]
        layout = WeightSpaceLayout.mlp([params[0].shape[2], *(w.shape[1] for w in params[0::2])])
        tensors = {name: t for name, t in zip(_pairs(layout), params)}
        n = len(labels)
        tensors.update({"label": torch.tensor(labels, dtype=torch.int64), "view": torch.zeros(n, dtype=torch.int64),
                        "image_index": torch.arange(n), "steps": torch.zeros(n, dtype=torch.int64)})  # fmt: skip
        out_splits[split] = tensors
    identity = {"source": "dwsnets-official", "splits_file": Path(split_file).name,
                "counts": {s: len(v[1]) for s, v in splits.items()}}  # fmt: skip
    write_imported_zoo(out, layout, out_splits, identity, quality=None, notes={"from": str(directory.resolve()),
                       "w0": 30.0}, networks={"activations": {"names": ["sine"], "per_network": False}})  # fmt: skip
    return {**{s: len(v[1]) for s, v in splits.items()}, "dropped_nonfinite": 0}


FORMATS: dict[str, Callable[..., dict[str, Any]]] = {
    "small-cnn-zoo": import_small_cnn_zoo,
    "dwsnets-official": import_dwsnets_official,
}


def import_zoo(fmt: str, directory: str | Path, out: str | Path, **options: Any) -> dict[str, Any]:
    """Import ``directory`` in format ``fmt`` (one of :data:`FORMATS`) into a zoo at ``out``."""
    if fmt not in FORMATS:
        raise ZooError(f"unknown zoo format {fmt!r}; choose from {', '.join(FORMATS)}")
    return FORMATS[fmt](directory, out, **options)
