"""Zoos on disk, in one import: the names of :mod:`.config`, :mod:`.format`, :mod:`.build`,
:mod:`.reader`, :mod:`.merge` and :mod:`.split`, which each own one job (settings, the file
format, building, reading, merging, the split type)."""

from __future__ import annotations

from .build import ZooPlan, build_zoo, item_seed, plan_zoo
from .config import ZooConfig
from .errors import ZooError
from .format import FORMAT, ShardPlan
from .merge import merge_zoos
from .reader import Zoo
from .split import ZooSplit

__all__ = [
    "FORMAT",
    "ShardPlan",
    "Zoo",
    "ZooConfig",
    "ZooError",
    "ZooPlan",
    "ZooSplit",
    "build_zoo",
    "item_seed",
    "merge_zoos",
    "plan_zoo",
]
