"""Building zoos: plan the splits and shards of a source, fit them, write them.

Fitting is deterministic per network (each has its own seed, :func:`item_seed`), so a
resumed build is byte-identical to an uninterrupted one. Running the same build again
skips every shard whose record and checksum agree and refits damaged ones.

Work can be split: ``shard_index/num_shards`` (or one part per torchrun rank) fits every
``num_shards``-th shard. All parts may write into one directory; parts fitted in separate
directories are joined with :func:`dwsnets.zoo.merge.merge_zoos`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..core.layout import WeightSpaceLayout
from .config import ZooConfig
from .errors import ZooError
from .format import FORMAT, ShardPlan, atomic_write_json, shard_state, write_shard
from .sources import Fitted, get_source

__all__ = ["ZooPlan", "build_zoo", "item_seed", "plan_zoo", "shard_targets"]

Progress = Callable[[dict[str, Any]], None]


def item_seed(base: int, part: str, image_index: int, view: int, views: int) -> int:
    """The seed of one network: depends on the zoo seed and the item only."""
    part_code = 0 if part == "train" else 1
    return (base * 1_000_003 + part_code * 10_000_019 + image_index * views + view) % (2**62)


@dataclass
class ZooPlan:
    """What a zoo holds: its splits (``{"part", "image_index", "count", "views"}`` each),
    its shards and the layout of its networks."""

    config: ZooConfig
    splits: dict[str, dict[str, Any]]
    shards: list[ShardPlan]
    layout: WeightSpaceLayout
    image_shape: tuple[int, ...] | None

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return tuple(self.layout.layer_sizes or ())

    def manifest(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "format": FORMAT,
            "zoo_id": cfg.zoo_id,
            "config": cfg.identity(),
            "source": cfg.source,
            "layer_sizes": list(self.layer_sizes),
            "layout": self.layout.to_dict(),
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "splits": {s: {"part": v["part"], "count": v["count"]} for s, v in self.splits.items()},
            "split_order": list(self.splits),
            "shards": [asdict(s) for s in self.shards],
            "psnr_peak": 1.0,
            "networks": get_source(cfg.source).network_record(),
        }


def plan_zoo(config: ZooConfig) -> tuple[ZooPlan, Any]:
    """Work out splits and shards; returns the plan and the loaded source data."""
    source = get_source(config.source)
    data = source.load(config)
    parts = source.splits(data, config.seed)
    shape = source.sizes(data)[2]
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
    return ZooPlan(config, splits, shards, source.layout(data, config), shape), data


def shard_targets(plan: ZooPlan, data: Any, shard: ShardPlan) -> tuple[Tensor, Tensor, dict[str, np.ndarray]]:
    """Coordinates, targets and per-network metadata of one shard."""
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


def _open_or_start(out: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest of a new zoo, or check that ``out`` holds this very zoo."""
    (out / "shards").mkdir(parents=True, exist_ok=True)
    existing = out / "manifest.json"
    if not existing.exists():
        atomic_write_json(existing, manifest)
        return
    try:
        old = json.loads(existing.read_text())
    except json.JSONDecodeError as exc:
        raise ZooError(f"{existing} is not valid JSON ({exc}); remove it to start this zoo again") from exc
    if old.get("zoo_id") != manifest["zoo_id"]:
        raise ZooError(
            f"{out} holds a zoo made with other settings ({_diff(old.get('config', {}), manifest['config'])}); "
            "use another directory, or delete this one to rebuild it"
        )


def _shards_to_fit(out: Path, mine: list[ShardPlan], zoo_id: str, on_progress: Progress | None) -> list[ShardPlan]:
    """This part's shards that are not complete (damaged ones reported)."""
    todo = []
    for shard in mine:
        state = shard_state(out, shard, zoo_id)
        if state == "complete":
            continue
        todo.append(shard)
        if state != "absent" and on_progress:
            on_progress({"event": "damaged", "shard": shard.name, "reason": state})
    return todo


def _shard_tensors(result: Fitted, meta: dict[str, np.ndarray]) -> dict[str, Tensor]:
    """What a shard file stores: the layout's tensors, then per-network information."""
    tensors = {}
    for m in range(len(result.params) // 2):
        tensors[f"weight{m + 1}"] = result.params[2 * m].detach().float().cpu().contiguous()
        tensors[f"bias{m + 1}"] = result.params[2 * m + 1].detach().float().cpu().contiguous()
    for key, value in result.info.items():
        tensors[key] = value.detach().float().cpu().contiguous()
    tensors["steps"] = result.steps.cpu()
    for key, value in meta.items():
        tensors[key] = torch.from_numpy(np.ascontiguousarray(value))
    return tensors


class _StepReporter:
    """Turns the fitter's per-step callbacks into ``step`` events with totals over the build."""

    def __init__(self, on_progress: Progress | None) -> None:
        self.on_progress = on_progress
        self.start = time.perf_counter()
        self.fitted = 0  # networks of finished shards
        self.inr_steps = 0  # their optimisation steps
        self.shard = ""
        self.shard_steps = 0

    def begin(self, shard: ShardPlan) -> None:
        self.shard, self.shard_steps = shard.name, 0

    def __call__(self, finished: int, active: int, step: int, mean_quality: float) -> None:
        self.shard_steps += active
        if self.on_progress:
            self.on_progress({"event": "step", "shard": self.shard, "finished": self.fitted + finished,
                              "active": active, "step": step, "mean_quality": mean_quality,
                              "inr_steps": self.inr_steps + self.shard_steps, "elapsed": self.elapsed})  # fmt: skip

    def end(self, shard: ShardPlan, steps: int) -> None:
        self.inr_steps += steps
        self.fitted += shard.count
        if self.on_progress:
            self.on_progress({"event": "shard_done", "shard": shard.name, "finished": self.fitted,
                              "inr_steps": self.inr_steps, "elapsed": self.elapsed})  # fmt: skip

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def build_zoo(
    out_dir: str | Path,
    config: ZooConfig,
    *,
    shard_index: int = 0,
    num_shards: int = 1,
    device: str | torch.device = "cpu",
    chunk: int | None = None,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Fit (or finish fitting) a zoo in ``out_dir``; returns a summary of this run.

    Only shards ``k`` with ``k % num_shards == shard_index`` are fitted by this call.
    ``on_progress`` receives dicts with ``event`` in ``{"plan", "damaged", "step", "shard_done"}``.
    """
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard index {shard_index} is not in 0..{num_shards - 1}")
    out = Path(out_dir)
    plan, data = plan_zoo(config)
    source = get_source(config.source)
    manifest = plan.manifest()
    _open_or_start(out, manifest)
    mine = [s for k, s in enumerate(plan.shards) if k % num_shards == shard_index]
    todo = _shards_to_fit(out, mine, manifest["zoo_id"], on_progress)
    total = sum(s.count for s in todo)
    if on_progress:
        on_progress({"event": "plan", "shards": len(mine), "todo": len(todo), "inrs": total,
                     "skipped_inrs": sum(s.count for s in mine) - total})  # fmt: skip
    report = _StepReporter(on_progress)
    for shard in todo:
        coords, targets, meta = shard_targets(plan, data, shard)
        report.begin(shard)
        result = source.fit(data, coords, targets, meta["seed"].tolist(), config, device=device, chunk=chunk,
                            progress=report)  # fmt: skip
        write_shard(out, shard, _shard_tensors(result, meta), manifest["zoo_id"], config.target_psnr, source.quality)
        report.end(shard, int(result.steps.sum()))
    return {
        "fitted_inrs": report.fitted,
        "inr_steps": report.inr_steps,
        "seconds": report.elapsed,
        "skipped_shards": len(mine) - len(todo),
        "shards": len(mine),
    }


def _diff(a: dict, b: dict) -> str:
    keys = sorted(set(a) | set(b))
    parts = [f"{k}: {a.get(k)!r} there, {b.get(k)!r} now" for k in keys if a.get(k) != b.get(k)]
    return "; ".join(parts) or "different format"
