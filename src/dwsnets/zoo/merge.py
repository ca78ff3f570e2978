"""Joining zoo parts fitted in separate directories (one per machine, for instance)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .errors import ZooError
from .format import atomic_write_json, copy_shard, shard_finished
from .reader import Zoo

__all__ = ["merge_zoos"]


def merge_zoos(out_dir: str | Path, parts: Sequence[str | Path]) -> Zoo:
    """Join zoos fitted in separate directories (same settings); every shard is verified
    before it is copied, and shards already in ``out_dir`` are kept."""
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
    atomic_write_json(target_manifest, zoos[0].manifest)
    for z in zoos:
        for shard in z.shards:
            data = z.path / "shards" / f"{shard.name}.safetensors"
            if shard_finished(z.path, shard) and data.exists() and not shard_finished(out, shard):
                z.open_shard(shard)  # verify before copying
                copy_shard(z.path, out, shard)
    return Zoo(out)
