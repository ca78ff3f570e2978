"""INR zoos on disk: sharded safetensors files plus a JSON manifest.

Layout of a zoo directory::

    manifest.json               format, settings, splits and the planned shards
    shards/train-00000.safetensors
    shards/train-00000.json     completion record: sha256, size, PSNR summary
    ...

Every shard holds one split's INRs, items ``start .. start+count`` of that split, with
tensors ``weight1..weightM`` ``(n, d_m, d_{m-1})``, ``bias1..biasM`` ``(n, d_m)`` and per-INR
``label``, ``image_index``, ``view``, ``psnr``, ``seed``, ``steps`` (sine zoos add
``amplitude`` and ``frequency``). Its safetensors metadata names the zoo (``zoo_id``, a
hash of the settings) and the shard, so a file from another zoo is recognised.

Writes are atomic: a shard goes to a temporary file that is fsynced and renamed, and
only then is its completion record written (the same way). An interrupted run
therefore leaves every finished shard intact and loses at most the shard in progress.
Running the same command again skips every shard whose record and checksum agree.
Fitting is deterministic per INR, so a resumed zoo is byte-identical to an
uninterrupted one.

Work can be split: ``shard_index/num_shards`` (or one part per torchrun rank) fits every
``num_shards``-th shard. All parts may write into one directory. Parts fitted in separate
directories are joined with :func:`merge_zoos`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..core.layout import WeightSpaceLayout
from ..core.weight_space import WeightSpace
from ..utils import atomic_write_bytes
from .sources import get_source

__all__ = [
    "Zoo",
    "ZooConfig",
    "ZooError",
    "ZooSplit",
    "build_zoo",
    "merge_zoos",
    "plan_zoo",
]

FORMAT = "dwsnets-inr-zoo/1"


class ZooError(RuntimeError):
    """A zoo on disk is missing, incomplete, corrupt, foreign or inconsistent."""


@dataclass(frozen=True)
class ZooConfig:
    """Everything that determines a zoo's contents (its hash is the ``zoo_id``)."""

    source: str = "digits"
    hidden: tuple[int, ...] = (32, 32)
    w0: float = 30.0
    lr: float = 3e-3
    max_steps: int = 1000
    target_psnr: float | None = 40.0
    views: int = 1
    # which splits get ``views`` INRs per image: "all", or "train" (validation and test get one
    # each, the INR with view 0 of an all-splits zoo: evaluation reads only that one by default)
    views_in: str = "all"
    seed: int = 0
    shard_size: int = 1000
    max_per_split: int | None = None
    sine_count: int = 10000
    # SIREN initialisation (dwsnets.inr.siren.siren_init): "paper", the DWSNets paper's INRs, makes
    # far more informative weights than "siren" (digits: DWSNet 77% against 19%; docs/results.md)
    init: str = "paper"
    data_dir: str | None = field(default=None, compare=False)

    def identity(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("data_dir")  # where the images live does not change the zoo
        if d["init"] == "siren":
            d.pop("init")  # zoos made before the recipe was a setting (all "siren") keep their identity
        if d["views_in"] == "all":
            d.pop("views_in")  # zoos made before the setting keep their identity
        d["hidden"] = list(self.hidden)
        return d

    def views_of(self, split: str) -> int:
        """INRs per image in ``split``."""
        return self.views if self.views_in == "all" or split == "train" else 1

    @property
    def zoo_id(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class ShardPlan:
    name: str
    split: str
    start: int
    count: int


def item_seed(base: int, part: str, image_index: int, view: int, views: int) -> int:
    """The seed of one INR: depends on the zoo seed and the item only."""
    part_code = 0 if part == "train" else 1
    return (base * 1_000_003 + part_code * 10_000_019 + image_index * views + view) % (2**62)


@dataclass
class ZooPlan:
    config: ZooConfig
    splits: dict[str, dict[str, Any]]  # split -> {"part", "image_index" (array), "count"}
    shards: list[ShardPlan]
    layer_sizes: tuple[int, ...]
    image_shape: tuple[int, ...] | None


def plan_zoo(config: ZooConfig) -> tuple[ZooPlan, Any]:
    """Work out splits and shards; returns the plan and the loaded source data."""
    source = get_source(config.source)
    data = source.load(config)
    parts = source.splits(data, config.seed)
    d_in, d_out, shape = source.sizes(data)
    sizes = (d_in, *config.hidden, d_out)
    splits: dict[str, dict[str, Any]] = {}
    shards: list[ShardPlan] = []
    if config.views_in not in ("all", "train"):
        raise ValueError(f"views_in must be 'all' or 'train', got {config.views_in!r}")
    for split, (part, idx) in parts.items():
        if config.max_per_split is not None:
            idx = idx[: config.max_per_split]
        views = config.views_of(split)
        count = len(idx) * views
        splits[split] = {"part": part, "image_index": idx, "count": count, "views": views}
        for k, start in enumerate(range(0, count, config.shard_size)):
            shards.append(ShardPlan(f"{split}-{k:05d}", split, start, min(config.shard_size, count - start)))
    return ZooPlan(config, splits, shards, sizes, shape), data


# ---------------------------------------------------------------------- files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def _manifest(plan: ZooPlan) -> dict[str, Any]:
    cfg = plan.config
    return {
        "format": FORMAT,
        "zoo_id": cfg.zoo_id,
        "config": cfg.identity(),
        "source": cfg.source,
        "layer_sizes": list(plan.layer_sizes),
        "image_shape": list(plan.image_shape) if plan.image_shape else None,
        "splits": {s: {"part": v["part"], "count": v["count"]} for s, v in plan.splits.items()},
        "split_order": list(plan.splits),
        "shards": [asdict(s) for s in plan.shards],
        "psnr_peak": 1.0,
    }


# ---------------------------------------------------------------------- building


def _shard_targets(plan: ZooPlan, data: Any, shard: ShardPlan) -> tuple[Tensor, Tensor, dict[str, np.ndarray]]:
    """Coordinates, targets and per-INR metadata of one shard."""
    cfg = plan.config
    split = plan.splits[shard.split]
    items = np.arange(shard.start, shard.start + shard.count)
    per_image = split["views"]
    image_pos, views = items // per_image, items % per_image
    image_index = split["image_index"][image_pos]
    part = split["part"]
    seeds = np.array([item_seed(cfg.seed, part, int(i), int(v), cfg.views) for i, v in zip(image_index, views)])
    meta = {"image_index": image_index.astype(np.int64), "view": views.astype(np.int64), "seed": seeds.astype(np.int64)}
    coords, targets, extra = get_source(cfg.source).items(data, part, image_index)
    meta.update(extra)
    return coords, targets, meta


def build_zoo(
    out_dir: str | Path,
    config: ZooConfig,
    *,
    shard_index: int = 0,
    num_shards: int = 1,
    device: str | torch.device = "cpu",
    chunk: int = 128,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Fit (or finish fitting) a zoo in ``out_dir``; returns a summary of this run.

    Only shards ``k`` with ``k % num_shards == shard_index`` are fitted by this call.
    ``on_progress`` receives dicts with ``event`` in ``{"plan", "step", "shard_done"}``.
    """
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard index {shard_index} is not in 0..{num_shards - 1}")
    out = Path(out_dir)
    plan, data = plan_zoo(config)
    source = get_source(config.source)
    manifest = _manifest(plan)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    existing = out / "manifest.json"
    if existing.exists():
        try:
            old = json.loads(existing.read_text())
        except json.JSONDecodeError as exc:
            raise ZooError(f"{existing} is not valid JSON ({exc}); remove it to start this zoo again") from exc
        if old.get("zoo_id") != manifest["zoo_id"]:
            raise ZooError(
                f"{out} holds a zoo made with other settings ({_diff(old.get('config', {}), manifest['config'])}); "
                "use another directory, or delete this one to rebuild it"
            )
    else:
        _atomic_write_json(existing, manifest)

    mine = [s for k, s in enumerate(plan.shards) if k % num_shards == shard_index]
    todo = []
    for shard in mine:
        state = _shard_state(out, shard, manifest["zoo_id"])
        if state == "complete":
            continue
        todo.append(shard)
        if state != "absent" and on_progress:
            on_progress({"event": "damaged", "shard": shard.name, "reason": state})
    total_inrs = sum(s.count for s in todo)
    if on_progress:
        on_progress(
            {
                "event": "plan",
                "shards": len(mine),
                "todo": len(todo),
                "inrs": total_inrs,
                "skipped_inrs": sum(s.count for s in mine) - total_inrs,
            }
        )
    t_start = time.perf_counter()
    inr_steps = 0
    fitted = 0
    for shard in todo:
        coords, targets, meta = _shard_targets(plan, data, shard)
        counters = {"steps": 0}

        # the defaults bind this shard's values: the function is used only during this iteration
        def progress(
            finished: int,
            active: int,
            step: int,
            mean_quality: float,
            _shard: ShardPlan = shard,
            counters: dict[str, int] = counters,
            fitted: int = fitted,
            inr_steps: int = inr_steps,
        ) -> None:
            counters["steps"] += active
            if on_progress:
                on_progress(
                    {
                        "event": "step",
                        "shard": _shard.name,
                        "finished": fitted + finished,
                        "active": active,
                        "step": step,
                        "mean_quality": mean_quality,
                        "inr_steps": inr_steps + counters["steps"],
                        "elapsed": time.perf_counter() - t_start,
                    }
                )

        result = source.fit(data, coords, targets, meta["seed"].tolist(), config, device=device, chunk=chunk,
                            progress=progress)  # fmt: skip
        inr_steps += int(result.steps.sum())
        fitted += shard.count
        tensors = {}
        for m in range(len(result.params) // 2):
            tensors[f"weight{m + 1}"] = result.params[2 * m].detach().float().cpu().contiguous()
            tensors[f"bias{m + 1}"] = result.params[2 * m + 1].detach().float().cpu().contiguous()
        for key, value in result.info.items():
            tensors[key] = value.detach().float().cpu().contiguous()
        tensors["steps"] = result.steps.cpu()
        for key, value in meta.items():
            tensors[key] = torch.from_numpy(np.ascontiguousarray(value))
        _write_shard(out, shard, tensors, manifest["zoo_id"], config.target_psnr, source.quality)
        if on_progress:
            on_progress(
                {
                    "event": "shard_done",
                    "shard": shard.name,
                    "finished": fitted,
                    "inr_steps": inr_steps,
                    "elapsed": time.perf_counter() - t_start,
                }
            )
    return {
        "fitted_inrs": fitted,
        "inr_steps": inr_steps,
        "seconds": time.perf_counter() - t_start,
        "skipped_shards": len(mine) - len(todo),
        "shards": len(mine),
    }


def _write_shard(out: Path, shard: ShardPlan, tensors: dict[str, Tensor], zoo_id: str, target: float | None,
                 quality: str = "psnr") -> None:  # fmt: skip
    from safetensors.torch import save

    # one metadata key holding sorted JSON: safetensors writes several keys in random order,
    # which would make identical shards differ byte for byte
    info = json.dumps(
        {
            "format": FORMAT,
            "zoo_id": zoo_id,
            "shard": shard.name,
            "split": shard.split,
            "start": shard.start,
            "count": shard.count,
        },
        sort_keys=True,
    )
    blob = save(tensors, metadata={"dwsnets": info})
    path = out / "shards" / f"{shard.name}.safetensors"
    atomic_write_bytes(path, blob)
    score = tensors[quality].double()
    record = {
        "shard": shard.name,
        "split": shard.split,
        "start": shard.start,
        "count": shard.count,
        "zoo_id": zoo_id,
        "bytes": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        f"{quality}_median": float(score.median()),
        f"{quality}_min": float(score.min()),
        "reached_target": int((score >= target).sum()) if target is not None and quality == "psnr" else None,
        "inr_steps": int(tensors["steps"].sum()),
    }
    _atomic_write_json(out / "shards" / f"{shard.name}.json", record)


def _shard_state(out: Path, shard: ShardPlan, zoo_id: str) -> str:
    """``"complete"``, ``"absent"`` (never finished: nothing to report), or why a finished
    shard cannot be trusted (then it is refitted, and the caller says so)."""
    record_path = out / "shards" / f"{shard.name}.json"
    path = out / "shards" / f"{shard.name}.safetensors"
    if not record_path.exists():
        return "absent"  # a shard without its record was interrupted before it finished
    if not path.exists():
        return "its record is there but its file is missing"
    try:
        record = json.loads(record_path.read_text())
    except json.JSONDecodeError:
        return "its completion record is not valid JSON"
    if record.get("zoo_id") != zoo_id or record.get("count") != shard.count:
        return "it belongs to another zoo"
    if path.stat().st_size != record.get("bytes"):
        return "its size differs from its record"
    if _sha256(path) != record.get("sha256"):
        return "its checksum differs from its record"
    return "complete"


def _diff(a: dict, b: dict) -> str:
    keys = sorted(set(a) | set(b))
    parts = [f"{k}: {a.get(k)!r} there, {b.get(k)!r} now" for k in keys if a.get(k) != b.get(k)]
    return "; ".join(parts) or "different format"


# ---------------------------------------------------------------------- reading


@dataclass
class ZooSplit:
    """One split of a zoo: the networks as a weight space ``(N, 1, ...)``, their labels
    ``(N,)`` (-1 where a zoo has none) and per-network information (``psnr``,
    ``frequency``, ...: tensors with ``N`` rows)."""

    weights: WeightSpace
    labels: Tensor
    info: dict[str, Tensor]
    name: str = ""  # the zoo split these networks come from ("train", "val", "test")

    def __post_init__(self) -> None:
        n = self.weights.batch_size
        for key, value in {"labels": self.labels, **self.info}.items():
            if value.shape[0] != n:
                raise ZooError(f"split information {key!r} has {value.shape[0]} rows for {n} networks")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: slice | Tensor) -> ZooSplit:
        """The networks at ``index`` (a slice or an index tensor), with their information."""
        return ZooSplit(self.weights[index], self.labels[index], {k: v[index] for k, v in self.info.items()}, self.name)


class Zoo:
    """A zoo directory opened for reading: ``Zoo(path).load("train")``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest_path = self.path / "manifest.json"
        if not manifest_path.exists():
            raise ZooError(
                f"no zoo at {self.path} (manifest.json missing); create one with `dwsnets fit-inrs --out {self.path}`"
            )
        try:
            self.manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise ZooError(f"{manifest_path} is not valid JSON ({exc})") from exc
        if self.manifest.get("format") != FORMAT:
            raise ZooError(
                f"{manifest_path} is not a dwsnets INR zoo manifest (format {self.manifest.get('format')!r})"
            )
        self.zoo_id: str = self.manifest["zoo_id"]
        self.layer_sizes = tuple(self.manifest["layer_sizes"])
        self.layout = WeightSpaceLayout.mlp(self.layer_sizes)
        self.shards = [ShardPlan(**s) for s in self.manifest["shards"]]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def data_id(self) -> str:
        """Identity of the contents (the hash of the settings that made them)."""
        return self.zoo_id

    @property
    def source(self) -> str:
        return self.config.get("source", "")

    def shard_parameters(self, tensors: dict[str, Tensor]) -> list[Tensor]:
        """A shard's INRs as stacked ``[W1, b1, W2, b2, ...]``."""
        params: list[Tensor] = []
        for m in range(len(self.layer_sizes) - 1):
            params += [tensors[f"weight{m + 1}"], tensors[f"bias{m + 1}"]]
        return params

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest["config"]

    @property
    def splits(self) -> list[str]:
        return list(self.manifest.get("split_order", self.manifest["splits"]))

    def split_size(self, split: str) -> int:
        self._check_split(split)
        return self.manifest["splits"][split]["count"]

    def _check_split(self, split: str) -> None:
        if split not in self.manifest["splits"]:
            raise ZooError(f"zoo {self.path} has no split {split!r}; it has {', '.join(self.splits)}")

    def split_views(self, split: str) -> int:
        """INRs per image in ``split`` (``fit-inrs --views K --views-in``)."""
        return self.zoo_config().views_of(split)

    def zoo_config(self, data_dir: str | None = None) -> ZooConfig:
        """The settings this zoo was built with (``data_dir`` is not stored: pass it)."""
        cfg = dict(self.config)
        cfg["hidden"] = tuple(cfg["hidden"])
        cfg.setdefault("init", "siren")  # manifests from before the setting existed
        return ZooConfig(**cfg, data_dir=data_dir)

    def _finished(self, shard: ShardPlan) -> bool:
        return (self.path / "shards" / f"{shard.name}.json").exists()

    def missing_shards(self, split: str | None = None) -> list[str]:
        return [s.name for s in self.shards if (split is None or s.split == split) and not self._finished(s)]

    def records(self, split: str | None = None) -> list[dict[str, Any]]:
        return [
            json.loads((self.path / "shards" / f"{s.name}.json").read_text())
            for s in self.shards
            if (split is None or s.split == split) and self._finished(s)
        ]

    def open_shard(self, shard: ShardPlan, verify: bool = True) -> dict[str, Tensor]:
        """Read one shard, checking that it belongs to this zoo, its size and (``verify``) its
        checksum."""
        from safetensors.torch import load

        path = self.path / "shards" / f"{shard.name}.safetensors"
        record_path = path.with_suffix(".json")
        if not path.exists() or not record_path.exists():
            raise ZooError(
                f"shard {shard.name} of zoo {self.path} is not finished; run the same `dwsnets fit-inrs` "
                "command again to complete the zoo"
            )
        record = json.loads(record_path.read_text())
        blob = path.read_bytes()
        # the size is checked always (free); the checksum when asked (a full hash)
        if len(blob) != record.get("bytes") or (verify and hashlib.sha256(blob).hexdigest() != record.get("sha256")):
            raise ZooError(
                f"shard {path} is corrupt (size or checksum differs from its record); run the same "
                "`dwsnets fit-inrs` command again: it finds damaged shards and refits them"
            )
        try:
            tensors = load(blob)
        except Exception as exc:
            raise ZooError(f"shard {path} is not a readable safetensors file ({exc})") from exc
        meta = _safetensors_metadata(blob)
        if meta.get("zoo_id") != self.zoo_id or meta.get("shard") != shard.name:
            raise ZooError(
                f"shard {path} belongs to another zoo or position (zoo_id {meta.get('zoo_id')!r}, shard "
                f"{meta.get('shard')!r}; expected {self.zoo_id!r}, {shard.name!r})"
            )
        if tensors["steps"].shape[0] != shard.count:
            raise ZooError(f"shard {path} holds {tensors['steps'].shape[0]} networks, the manifest plans {shard.count}")
        return tensors

    def iter_shards(self, split: str, verify: bool = True) -> Iterator[tuple[ShardPlan, dict[str, Tensor]]]:
        self._check_split(split)
        for s in self.shards:
            if s.split == split:
                yield s, self.open_shard(s, verify)

    def load(self, split: str, *, verify: bool = True, dtype: torch.dtype = torch.float32) -> ZooSplit:
        """A whole split as one :class:`WeightSpace` ``(N, 1, ...)`` plus labels and info.

        Shards are read one at a time into preallocated tensors, so memory peaks at the
        split plus one shard.
        """
        self._check_split(split)
        missing = self.missing_shards(split)
        if missing:
            raise ZooError(
                f"split {split!r} of zoo {self.path} is incomplete: {len(missing)} shard(s) not fitted "
                f"({', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}); run the same `dwsnets fit-inrs` "
                "command again to finish it"
            )
        n = self.split_size(split)
        layout = self.layout
        buffers = [torch.empty(n, 1, *t.shape, dtype=dtype) for t in layout.tensors]
        names = {t.name for t in layout.tensors}
        info: dict[str, Tensor] = {}
        for shard, tensors in self.iter_shards(split, verify):
            sl = slice(shard.start, shard.start + shard.count)
            for t, buffer in zip(layout.tensors, buffers):
                buffer[sl, 0] = tensors[t.name]
            for key, value in tensors.items():
                if key in names:
                    continue
                if key not in info:
                    info[key] = torch.empty((n, *value.shape[1:]), dtype=value.dtype)
                info[key][sl] = value
        ws = WeightSpace.from_tensors(buffers).check_finite(f"zoo {self.path} split {split!r}")
        info["row"] = torch.arange(n)  # position in the stored split, kept through slicing
        return ZooSplit(ws, info.pop("label"), info, split)

    def signals(self, split: str, data_dir: str | None = None) -> tuple[Tensor, Tensor]:
        """What the INRs of a split were fitted to, regenerated from the zoo's source:
        coordinates ``(P, d_in)`` and values ``(N, P, d_out)``, in the split's row order
        (``data_dir``: where the source's files are, as given to ``fit-inrs``)."""
        self._check_split(split)
        plan, data = plan_zoo(self.zoo_config(data_dir))
        coords, values = None, []
        for shard in self.shards:
            if shard.split == split:
                coords, targets, _ = _shard_targets(plan, data, shard)
                values.append(targets)
        return coords, torch.cat(values)

    def recheck_psnr(self, data_dir: str | None = None, chunk: int = 512) -> dict[str, Any]:
        """Re-evaluate every finished INR from its stored weights against its source data and
        compare with the stored PSNR; returns the largest absolute difference (dB)."""
        from ..inr.fitting import evaluate_sirens, psnr

        if self.quality != "psnr":
            raise ZooError(f"zoo {self.path} holds {self.source} networks, not INRs: there is no PSNR to recheck")
        config = self.zoo_config(data_dir)
        plan, data = plan_zoo(config)
        worst, count = 0.0, 0
        for shard in self.shards:
            if not self._finished(shard):
                continue
            tensors = self.open_shard(shard)
            coords, targets, _ = _shard_targets(plan, data, shard)
            params = self.shard_parameters(tensors)
            again = psnr(evaluate_sirens(coords, targets, params, w0=config.w0, chunk=chunk))
            worst = max(worst, float((again - tensors["psnr"]).abs().max()))
            count += shard.count
        return {"rechecked": count, "max_abs_psnr_difference_db": worst}

    @property
    def quality(self) -> str:
        """The per-network score the zoo stores: ``psnr`` (INRs) or ``accuracy`` (classifiers)."""
        source = self.source
        return get_source(source).quality if source else "psnr"

    def summary(self, verify: bool = False) -> dict[str, Any]:
        """Statistics of the networks' :attr:`quality` over every finished shard
        (checksums checked with ``verify``): ``psnr_median`` etc. for INR zoos."""
        quality = self.quality
        scores, steps = [], 0
        for shard in self.shards:
            if self._finished(shard):
                t = self.open_shard(shard, verify=verify)
                scores.append(t[quality].double())
                steps += int(t["steps"].sum())
        if not scores:
            return {"inrs": 0}
        p = torch.cat(scores)
        target = self.config.get("target_psnr") if quality == "psnr" else None
        return {
            "inrs": int(p.numel()),
            "planned": sum(s.count for s in self.shards),
            "quality": quality,
            f"{quality}_median": float(p.median()),
            f"{quality}_p5": float(torch.quantile(p, 0.05)),
            f"{quality}_mean": float(p.mean()),
            "reached_target": float((p >= target).double().mean()) if target is not None else None,
            "inr_steps": steps,
        }


def _safetensors_metadata(blob: bytes) -> dict[str, str]:
    if len(blob) < 8:
        return {}
    header_len = int.from_bytes(blob[:8], "little")
    try:
        header = json.loads(blob[8 : 8 + header_len])
        return json.loads((header.get("__metadata__") or {}).get("dwsnets", "{}"))
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError):
        return {}


def merge_zoos(out_dir: str | Path, parts: Sequence[str | Path]) -> Zoo:
    """Join zoos fitted in separate directories (same settings, e.g. one per machine)."""
    out = Path(out_dir)
    zoos = [Zoo(p) for p in parts]
    if not zoos:
        raise ZooError("no zoo directories to merge")
    ids = {z.zoo_id for z in zoos}
    if len(ids) != 1:
        raise ZooError(f"cannot merge zoos made with different settings (zoo ids {sorted(ids)})")
    (out / "shards").mkdir(parents=True, exist_ok=True)
    target_manifest = out / "manifest.json"
    if target_manifest.exists() and json.loads(target_manifest.read_text()).get("zoo_id") != zoos[0].zoo_id:
        raise ZooError(f"{out} already holds a different zoo")
    _atomic_write_json(target_manifest, zoos[0].manifest)
    for z in zoos:
        for shard in z.shards:
            src = z.path / "shards" / f"{shard.name}.safetensors"
            rec = src.with_suffix(".json")
            if rec.exists() and src.exists() and not (out / "shards" / rec.name).exists():
                z.open_shard(shard)  # verify before copying
                atomic_write_bytes(out / "shards" / src.name, src.read_bytes())
                atomic_write_bytes(out / "shards" / rec.name, rec.read_bytes())
    return Zoo(out)
