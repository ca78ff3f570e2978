"""What a trainer reads: a data set of networks split into train, validation and test.

:class:`~dwsnets.zoo.store.Zoo` (an INR zoo on disk) is one such data set; :class:`InMemoryZoo`
wraps networks you already hold (for example a zoo of small CNNs you trained yourself), so
they train through the same :class:`~dwsnets.training.Trainer`, checkpoints and tasks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

from ..core.function import NetworkFunction
from ..core.layout import WeightSpaceLayout
from ..core.symmetry import NetworkActivations, SymmetryError, SymmetryGroup, activation_properties
from .errors import ZooError
from .split import ZooSplit

__all__ = ["InMemoryZoo", "WeightDataset", "network_activations", "symmetry_group"]


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


def symmetry_group(data: WeightDataset) -> SymmetryGroup:
    """The symmetry group every network of ``data`` shares (:class:`SymmetryGroup`), from its
    layout and the activations it records (``activation_names``; a data set that records
    none gets the permutations alone). Reads no split."""
    names = getattr(data, "activation_names", None)
    try:
        return SymmetryGroup.of(data.layout, names)
    except SymmetryError as exc:
        raise ZooError(f"{data.name}: {exc}") from None


def network_activations(data: WeightDataset, split: ZooSplit) -> NetworkActivations | None:
    """Each network's activations in ``split`` (its ``activation`` codes into the data set's
    vocabulary), or ``None`` when ``data`` records none."""
    names = getattr(data, "activations", None)
    if not names:
        return None
    if len(names) == 1:
        return NetworkActivations(tuple(names))
    if "activation" not in split.info:
        raise ZooError(f"{data.name}: the {split.name or ''} split lacks each network's 'activation' code")
    try:
        return NetworkActivations(tuple(names), split.info["activation"])
    except SymmetryError as exc:
        raise ZooError(f"{data.name}: {exc}") from None


class InMemoryZoo:
    """Networks held in memory, by split: ``InMemoryZoo({"train": ZooSplit(...), ...})``.

    Every split must share one layout. ``data_id`` hashes the contents, so a run directory
    trained on these networks refuses different ones.

    ``activations`` declares the networks' hidden activations, which decide their symmetry
    group (:mod:`dwsnets.core.symmetry`): one name for every network (``"relu"``,
    ``"tanh"``, ``"sine"``), or several, each network then giving its own as an index into
    them (an ``activation`` entry of every split's information, ``(N,)`` or per hidden layer
    ``(N, H)``). Left out, only the permutations are known to hold, and sign operations and
    sign-blind models are refused.

    ``function`` says how the networks run (:class:`~dwsnets.core.function.NetworkFunction`):
    what the probing models (``probe``, ``probe-hybrid``, the renderings) need to query them.
    """

    def __init__(self, splits: Mapping[str, ZooSplit], name: str = "in-memory", source: str = "",
                 activations: str | Sequence[str] | None = None,
                 function: NetworkFunction | None = None) -> None:  # fmt: skip
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
        self._activations, self._present = self._check_activations(activations)
        if function is not None and not isinstance(function, NetworkFunction):
            raise ZooError(f"function must be a dwsnets NetworkFunction, got {type(function).__name__}")
        self.function = function
        digest = hashlib.sha256()
        for split, data in sorted(self._splits.items()):
            digest.update(split.encode())
            for t in (*data.weights.tensors, data.labels):
                digest.update(t.detach().cpu().contiguous().numpy().tobytes())
        self._data_id = digest.hexdigest()[:16]

    def _check_activations(
        self, activations: str | Sequence[str] | None
    ) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
        """The vocabulary and the names present, checked against every split's codes."""
        if activations is None:
            return None, None
        names = (activations,) if isinstance(activations, str) else tuple(activations)
        try:
            for n in names:
                activation_properties(n)
            if len(names) == 1:
                return names, names
            used: set[int] = set()
            for split, data in self._splits.items():
                if "activation" not in data.info:
                    raise ZooError(f"split {split!r} lacks the 'activation' codes that several activations "
                                   f"{list(names)} need")  # fmt: skip
                record = NetworkActivations(names, data.info["activation"])
                used |= set(record.codes.unique().tolist())
        except SymmetryError as exc:
            raise ZooError(str(exc)) from None
        return names, tuple(names[i] for i in sorted(used))

    @property
    def activations(self) -> tuple[str, ...] | None:
        """The declared vocabulary of activations (``None``: not declared)."""
        return self._activations

    @property
    def activation_names(self) -> tuple[str, ...] | None:
        """The activations the networks have (``None``: not declared)."""
        return self._present

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
