"""One split of a data set of networks: the type every task and the trainer read.

A :class:`ZooSplit` is the same whatever made it (a zoo on disk, networks held in memory,
an imported published zoo), so a new data source hands the trainer ``ZooSplit`` objects
and nothing else. It also owns the bookkeeping of zoos with several INRs per image
(``view`` and ``image_index`` in its information): keeping each image's first INR, or
grouping the INRs of each image so that a sampler can draw one per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.weight_space import WeightSpace
from .errors import ZooError

__all__ = ["ZooSplit"]


@dataclass
class ZooSplit:
    """One split of a data set: the networks as a weight space ``(N, 1, ...)``, their labels
    ``(N,)`` (-1 where there are none) and per-network information (``psnr``,
    ``frequency``, ``view``, ...: tensors with ``N`` rows)."""

    weights: WeightSpace
    labels: Tensor
    info: dict[str, Tensor]
    name: str = ""  # the split these networks come from ("train", "val", "test")

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

    def first_views(self) -> ZooSplit:
        """Each image's first INR only (the split itself when it has one network per item)."""
        return self[self.info["view"] == 0] if "view" in self.info else self

    def view_groups(self) -> Tensor:
        """``(images, K)``: the rows of each image's ``K`` INRs (zoos fitted with ``--views
        K``), for drawing one view per image; a :class:`ZooError` when the split does not
        hold ``K`` INRs of every image."""
        if "image_index" not in self.info or "view" not in self.info:
            raise ZooError("these networks are not several INRs per image (fit-inrs --views K)")
        image, view = self.info["image_index"].long(), self.info["view"].long()
        k = int(view.max()) + 1
        order = torch.argsort(image * k + view)
        groups = order.reshape(-1, k) if len(order) % k == 0 else None
        if groups is None or not bool((image[groups] == image[groups[:, :1]]).all()):
            raise ZooError(f"the split does not hold {k} INRs of every image (was it cut mid-image?)")
        return groups
