"""The settings that determine a zoo's contents, and their hash (the ``zoo_id``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["PADDED_CNNS", "SOURCE_SETTINGS", "ZooConfig", "source_of"]

# the padded variant of the Small CNN Zoo's architecture, which "fashion-mnist-cnns" trained before 2026-12-08
PADDED_CNNS = "fashion-mnist-cnns-padded"


def source_of(identity: dict[str, Any]) -> str:
    """The source a stored identity was made from: a ``fashion-mnist-cnns`` identity without
    ``conv_padding`` is the padded variant (every such zoo made before 2026-12-08)."""
    source = identity.get("source", "")
    if source == "fashion-mnist-cnns" and "conv_padding" not in identity:
        return PADDED_CNNS
    return source


# the settings that belong to sources (dwsnets.zoo.sources.Source.settings says which each reads)
SOURCE_SETTINGS = ("hidden", "lr", "max_steps", "w0", "target_psnr", "init", "count")

# stored names that differ from the field names (kept so that zoos made earlier keep their id)
_STORED_AS = {"count": "sine_count"}


@dataclass(frozen=True)
class ZooConfig:
    """Everything that determines a zoo's contents (its hash is the ``zoo_id``).

    The settings common to every source come first; the rest belong to the sources that
    read them (:attr:`dwsnets.zoo.sources.Source.settings` says which), and a source
    ignores the others.
    """

    source: str = "digits"
    seed: int = 0
    shard_size: int = 1000
    max_per_split: int | None = None
    views: int = 1
    # which splits get ``views`` INRs per image: "all", or "train" (validation and test get one
    # each, the INR with view 0 of an all-splits zoo: evaluation reads only that one by default)
    views_in: str = "all"
    # the networks: hidden widths and their optimiser (every source)
    hidden: tuple[int, ...] = (32, 32)
    lr: float = 3e-3
    max_steps: int = 1000
    # SIRENs (image and sine sources)
    w0: float = 30.0
    target_psnr: float | None = 40.0
    # SIREN initialisation (dwsnets.inr.siren.siren_init): "paper", the DWSNets paper's INRs, makes
    # far more informative weights than "siren" (digits: DWSNet 77% against 19%; docs/results.md)
    init: str = "paper"
    # networks of a synthetic zoo (sine waves, or classifiers); stored as "sine_count"
    count: int = 10000
    data_dir: str | None = field(default=None, compare=False)

    def identity(self) -> dict[str, Any]:
        """The stored settings: the manifest's ``config`` and what the ``zoo_id`` hashes."""
        d = {_STORED_AS.get(k, k): v for k, v in asdict(self).items()}
        d.pop("data_dir")  # where the images live does not change the zoo
        if d["init"] == "siren":
            d.pop("init")  # zoos made before the recipe was a setting (all "siren") keep their identity
        if d["views_in"] == "all":
            d.pop("views_in")  # zoos made before the setting keep their identity
        d["hidden"] = list(self.hidden)
        if self.source == "fashion-mnist-cnns":
            # the published (valid) convolutions since 2026-12-08: another zoo than the padded ones before
            d["conv_padding"] = "valid"
        elif self.source == PADDED_CNNS:
            d["source"] = "fashion-mnist-cnns"  # what padded zoos were called: they keep their id and resume
        return d

    @classmethod
    def from_identity(cls, stored: dict[str, Any], data_dir: str | None = None) -> ZooConfig:
        """The settings a manifest's ``config`` records (``data_dir`` is not stored: pass it)."""
        names = {v: k for k, v in _STORED_AS.items()}
        cfg = {names.get(k, k): v for k, v in stored.items()}
        cfg["hidden"] = tuple(cfg["hidden"])
        cfg.setdefault("init", "siren")  # manifests from before the setting existed
        cfg["source"] = source_of(stored)
        cfg.pop("conv_padding", None)  # follows from the source
        return cls(**cfg, data_dir=data_dir)

    def views_of(self, split: str) -> int:
        """INRs per image in ``split``."""
        return self.views if self.views_in == "all" or split == "train" else 1

    @property
    def zoo_id(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
