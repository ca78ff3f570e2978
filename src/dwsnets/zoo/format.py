"""The zoo format on disk: a JSON manifest and sharded safetensors files.

Layout of a zoo directory::

    manifest.json               format, settings, the layout of the networks, splits and shards
    shards/train-00000.safetensors
    shards/train-00000.json     completion record: sha256, size, quality summary
    ...

Every shard holds one split's networks, items ``start .. start+count`` of that split: one
tensor per tensor of the layout, named as the layout names it (``weight1``, ``bias1``, ...
for feed-forward networks), with a leading network axis, and per-network information
(``label``, ``image_index``, ``view``, ``seed``, ``steps`` and the source's quality score,
``psnr`` or ``accuracy``; sine zoos add ``amplitude`` and ``frequency``). The shard's
safetensors metadata names the zoo (``zoo_id``) and the shard, so a file from another
zoo is recognised.

The manifest records the layout itself (:meth:`WeightSpaceLayout.to_dict`), so any
architecture a layout describes can be stored; manifests written before it was recorded
hold MLPs, rebuilt from their ``layer_sizes``.

Writes are atomic: a shard goes to a temporary file that is fsynced and renamed, and only
then is its completion record written (the same way). An interrupted build leaves every
finished shard intact and loses at most the shard in progress.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from ..core.layout import WeightSpaceLayout
from ..utils import atomic_write_bytes
from .errors import ZooError

__all__ = [
    "FORMAT",
    "ShardPlan",
    "atomic_write_json",
    "layout_of",
    "read_manifest",
    "read_shard",
    "shard_state",
    "write_shard",
]

FORMAT = "dwsnets-inr-zoo/1"


@dataclass(frozen=True)
class ShardPlan:
    """One planned shard: items ``start .. start+count`` of ``split``."""

    name: str
    split: str
    start: int
    count: int


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def read_manifest(directory: Path) -> dict[str, Any]:
    """A zoo directory's manifest, checked to be one; :class:`ZooError` naming the problem."""
    path = directory / "manifest.json"
    if not path.exists():
        raise ZooError(
            f"no zoo at {directory} (manifest.json missing); create one with `dwsnets fit-inrs --out {directory}`"
        )
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ZooError(f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ZooError(f"{path} is not a dwsnets zoo manifest (format {found!r})")
    return manifest


def layout_of(manifest: dict[str, Any]) -> WeightSpaceLayout:
    """The layout a manifest records (older manifests: the MLP of their ``layer_sizes``)."""
    try:
        if "layout" in manifest:
            return WeightSpaceLayout.from_dict(manifest["layout"])
        return WeightSpaceLayout.mlp(manifest["layer_sizes"])
    except (KeyError, ValueError) as exc:
        raise ZooError(f"the zoo manifest describes no valid layout ({exc})") from None


def _record_path(out: Path, shard: ShardPlan) -> Path:
    return out / "shards" / f"{shard.name}.json"


def _data_path(out: Path, shard: ShardPlan) -> Path:
    return out / "shards" / f"{shard.name}.safetensors"


def write_shard(out: Path, shard: ShardPlan, tensors: dict[str, Tensor], zoo_id: str, target: float | None,
                quality: str | None = "psnr") -> None:  # fmt: skip
    """Write one finished shard and then its completion record, each atomically."""
    from safetensors.torch import save

    # one metadata key holding sorted JSON: safetensors writes several keys in random order,
    # which would make identical shards differ byte for byte
    info = {"format": FORMAT, "zoo_id": zoo_id, "shard": shard.name, "split": shard.split,
            "start": shard.start, "count": shard.count}  # fmt: skip
    blob = save(tensors, metadata={"dwsnets": json.dumps(info, sort_keys=True)})
    atomic_write_bytes(_data_path(out, shard), blob)
    record = {
        "shard": shard.name,
        "split": shard.split,
        "start": shard.start,
        "count": shard.count,
        "zoo_id": zoo_id,
        "bytes": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "inr_steps": int(tensors["steps"].sum()),
    }
    if quality is not None:  # (imported INRs come without one)
        score = tensors[quality].double()
        record[f"{quality}_median"], record[f"{quality}_min"] = float(score.median()), float(score.min())
        record["reached_target"] = int((score >= target).sum()) if target is not None and quality == "psnr" else None
    atomic_write_json(_record_path(out, shard), record)


def shard_finished(out: Path, shard: ShardPlan) -> bool:
    """Whether the shard's completion record exists (written only after its data)."""
    return _record_path(out, shard).exists()


def read_record(out: Path, shard: ShardPlan) -> dict[str, Any]:
    return json.loads(_record_path(out, shard).read_text())


def shard_state(out: Path, shard: ShardPlan, zoo_id: str) -> str:
    """``"complete"``, ``"absent"`` (never finished: nothing to report), or why a finished
    shard cannot be trusted (then a build refits it, and says so)."""
    record_path, path = _record_path(out, shard), _data_path(out, shard)
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
    if sha256_file(path) != record.get("sha256"):
        return "its checksum differs from its record"
    return "complete"


def read_shard(out: Path, shard: ShardPlan, zoo_id: str, verify: bool = True) -> dict[str, Tensor]:
    """One shard's tensors, checked to belong to this zoo and position, for its size and
    (``verify``) its checksum; :class:`ZooError` with the fix otherwise."""
    from safetensors.torch import load

    path, record_path = _data_path(out, shard), _record_path(out, shard)
    if not path.exists() or not record_path.exists():
        raise ZooError(
            f"shard {shard.name} of zoo {out} is not finished; run the same `dwsnets fit-inrs` "
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
    if meta.get("zoo_id") != zoo_id or meta.get("shard") != shard.name:
        raise ZooError(
            f"shard {path} belongs to another zoo or position (zoo_id {meta.get('zoo_id')!r}, shard "
            f"{meta.get('shard')!r}; expected {zoo_id!r}, {shard.name!r})"
        )
    if tensors["steps"].shape[0] != shard.count:
        raise ZooError(f"shard {path} holds {tensors['steps'].shape[0]} networks, the manifest plans {shard.count}")
    return tensors


def copy_shard(source: Path, out: Path, shard: ShardPlan) -> None:
    """Copy a finished shard (data, then record) into another zoo directory."""
    for path in (_data_path(source, shard), _record_path(source, shard)):
        atomic_write_bytes(out / "shards" / path.name, path.read_bytes())


def _safetensors_metadata(blob: bytes) -> dict[str, str]:
    if len(blob) < 8:
        return {}
    header_len = int.from_bytes(blob[:8], "little")
    try:
        header = json.loads(blob[8 : 8 + header_len])
        return json.loads((header.get("__metadata__") or {}).get("dwsnets", "{}"))
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError):
        return {}
