"""Reading zoos: ``Zoo(path).load("train")`` gives a :class:`~dwsnets.zoo.split.ZooSplit`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..core.weight_space import WeightSpace
from .config import ZooConfig, source_of
from .errors import ZooError
from .format import ShardPlan, layout_of, read_manifest, read_record, read_shard, shard_finished
from .split import ZooSplit

__all__ = ["Zoo"]


class Zoo:
    """A zoo directory opened for reading (any layout its manifest records)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        self.zoo_id: str = self.manifest["zoo_id"]
        self.layout = layout_of(self.manifest)
        self.layer_sizes = self.layout.layer_sizes
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
        return source_of(self.config)

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

    @property
    def networks(self) -> dict[str, Any]:
        """How the networks compute (the manifest's ``"networks"``): ``activations`` (``names``
        and whether each network records its own code) and, for networks that run on a data
        set, ``forward`` (kind, stride, padding, data set, input preparation). Zoos made
        before the record are read as what they were made with."""
        if "networks" in self.manifest:
            return self.manifest["networks"]
        from .importers import published_forward
        from .sources import SOURCES, CNNSource

        source = self.source
        if source == "dwsnets-official":
            return {"activations": {"names": ["sine"], "per_network": False}}
        if source == "small-cnn-zoo":
            names = self.manifest.get("imported", {}).get("categories", {}).get("config.activation")
            record: dict[str, Any] = {"forward": published_forward(None)}  # the data set was not recorded
            if names:
                record["activations"] = {"names": names, "per_network": True}
            return record
        if source in SOURCES:
            record = SOURCES[source].network_record()
            if isinstance(SOURCES[source], CNNSource):
                record["forward"]["padding"] = 1  # every CNN zoo made before the record was padded
            return record
        return {}

    @property
    def activation_names(self) -> tuple[str, ...] | None:
        """Every activation the zoo's networks may have on their hidden layers (those
        present, where the zoo knows), or ``None`` when it does not record them."""
        record = self.networks.get("activations")
        if not record:
            return None
        return tuple(record.get("present") or record["names"])

    @property
    def activations(self) -> tuple[str, ...] | None:
        """The vocabulary that the networks' ``activation`` codes index (``None``: unrecorded)."""
        record = self.networks.get("activations")
        return tuple(record["names"]) if record else None

    @property
    def imported(self) -> bool:
        """Whether the networks were imported (``dwsnets import-zoo``) rather than fitted here."""
        return "imported" in self.manifest

    def split_views(self, split: str) -> int:
        """INRs per image in ``split`` (``fit-inrs --views K --views-in``; imported zoos: 1)."""
        return 1 if self.imported else self.zoo_config().views_of(split)

    def zoo_config(self, data_dir: str | None = None) -> ZooConfig:
        """The settings this zoo was built with (``data_dir`` is not stored: pass it)."""
        if self.imported:
            raise ZooError(f"zoo {self.path} was imported from {self.source} files: it has no fitting settings "
                           "to rebuild its sources from")  # fmt: skip
        return ZooConfig.from_identity(self.config, data_dir)

    def shard_parameters(self, tensors: dict[str, Tensor]) -> list[Tensor]:
        """A feed-forward shard's networks as stacked ``[W1, b1, W2, b2, ...]``."""
        m_layers = len(self.layout.tensors) // 2
        return [tensors[f"{kind}{m + 1}"] for m in range(m_layers) for kind in ("weight", "bias")]

    def missing_shards(self, split: str | None = None) -> list[str]:
        return [s.name for s in self.shards if (split is None or s.split == split) and not shard_finished(self.path, s)]

    def records(self, split: str | None = None) -> list[dict[str, Any]]:
        return [
            read_record(self.path, s)
            for s in self.shards
            if (split is None or s.split == split) and shard_finished(self.path, s)
        ]

    def open_shard(self, shard: ShardPlan, verify: bool = True) -> dict[str, Tensor]:
        """Read one shard (:func:`~dwsnets.zoo.format.read_shard`: checked to belong here)."""
        return read_shard(self.path, shard, self.zoo_id, verify)

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
        """What the networks of a split were fitted to, regenerated from the zoo's source:
        coordinates ``(P, d_in)`` and values ``(N, P, d_out)``, in the split's row order
        (``data_dir``: where the source's files are, as given to ``fit-inrs``)."""
        from .build import plan_zoo, shard_targets

        self._check_split(split)
        plan, data = plan_zoo(self.zoo_config(data_dir))
        coords, values = None, []
        for shard in self.shards:
            if shard.split == split:
                coords, targets, _ = shard_targets(plan, data, shard)
                values.append(targets)
        return coords, torch.cat(values)

    def recheck_psnr(self, data_dir: str | None = None, chunk: int = 512) -> dict[str, Any]:
        """Re-evaluate every finished INR from its stored weights against its source data and
        compare with the stored PSNR; returns the largest absolute difference (dB)."""
        from ..inr.fitting import evaluate_sirens, psnr
        from .build import plan_zoo, shard_targets

        if self.quality != "psnr":
            raise ZooError(f"zoo {self.path} holds {self.source} networks, not INRs: there is no PSNR to recheck")
        config = self.zoo_config(data_dir)
        plan, data = plan_zoo(config)
        worst, count = 0.0, 0
        for shard in self.shards:
            if not shard_finished(self.path, shard):
                continue
            tensors = self.open_shard(shard)
            coords, targets, _ = shard_targets(plan, data, shard)
            again = psnr(evaluate_sirens(coords, targets, self.shard_parameters(tensors), w0=config.w0, chunk=chunk))
            worst = max(worst, float((again - tensors["psnr"]).abs().max()))
            count += shard.count
        return {"rechecked": count, "max_abs_psnr_difference_db": worst}

    @property
    def quality(self) -> str | None:
        """The per-network score the zoo stores: ``psnr`` (INRs) or ``accuracy`` (classifiers)."""
        from .sources import get_source

        if "quality" in self.manifest:  # imported zoos record it
            return self.manifest["quality"]
        source = self.source
        return get_source(source).quality if source else "psnr"

    def summary(self, verify: bool = False) -> dict[str, Any]:
        """Statistics of the networks' :attr:`quality` over every finished shard
        (checksums checked with ``verify``): ``psnr_median`` etc. for INR zoos."""
        quality = self.quality
        if quality is None:  # imported INRs: no stored score
            return {"inrs": sum(s.count for s in self.shards if shard_finished(self.path, s)), "quality": None}
        scores, steps = [], 0
        for shard in self.shards:
            if shard_finished(self.path, shard):
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
