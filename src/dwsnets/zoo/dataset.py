"""What a trainer reads: a data set of networks split into train, validation and test.

:class:`~dwsnets.zoo.store.Zoo` (an INR zoo on disk) is one such data set; :class:`InMemoryZoo`
wraps networks you already hold (for example a zoo of small CNNs you trained yourself), so
they train through the same :class:`~dwsnets.training.Trainer`, checkpoints and tasks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol, runtime_checkable

from ..core.layout import WeightSpaceLayout
from .errors import ZooError
from .split import ZooSplit

__all__ = ["InMemoryZoo", "WeightDataset"]


@runtime_checkable
class WeightDataset(Protocol):
    """The interface the trainer needs from a data set of networks."""

    @property
    def name(self) -> str: ...

    @property
    def data_id(self) -> str:
        """A stable identity of the contents: a run trained on one data set refuses another."""
        ...

    @property
    def layout(self) -> WeightSpaceLayout: ...

    @property
    def source(self) -> str:
        """Where the networks come from (``"fashion-mnist"``, ``"sine"``, ...), or ``""``."""
        ...

    @property
    def splits(self) -> list[str]: ...

    def split_size(self, split: str) -> int: ...

    def load(self, split: str) -> ZooSplit: ...


class InMemoryZoo:
    """Networks held in memory, by split: ``InMemoryZoo({"train": ZooSplit(...), ...})``.

    Every split must share one layout. ``data_id`` hashes the contents, so a run directory
    trained on these networks refuses different ones.
    """

    def __init__(self, splits: Mapping[str, ZooSplit], name: str = "in-memory", source: str = "") -> None:
        if not splits:
            raise ZooError("an in-memory zoo needs at least one split")
        self._splits = {name: replace(data, name=name) for name, data in splits.items()}
        layouts = {split: data.weights.layout for split, data in self._splits.items()}
        first = next(iter(layouts.values()))
        for split, layout in layouts.items():
            if layout != first:
                raise ZooError(f"split {split!r} has layout {layout!r}, another split {first!r}")
        self._layout = first
        self._name, self._source = name, source
        digest = hashlib.sha256()
        for split, data in sorted(self._splits.items()):
            digest.update(split.encode())
            for t in (*data.weights.tensors, data.labels):
                digest.update(t.detach().cpu().contiguous().numpy().tobytes())
        self._data_id = digest.hexdigest()[:16]

    @property
    def name(self) -> str:
        return self._name

    @property
    def data_id(self) -> str:
        return self._data_id

    @property
    def layout(self) -> WeightSpaceLayout:
        return self._layout

    @property
    def source(self) -> str:
        return self._source

    @property
    def splits(self) -> list[str]:
        return list(self._splits)

    def split_size(self, split: str) -> int:
        return len(self.load(split))

    def load(self, split: str) -> ZooSplit:
        if split not in self._splits:
            raise ZooError(f"in-memory zoo {self._name!r} has no split {split!r}; it has {', '.join(self._splits)}")
        return self._splits[split]
