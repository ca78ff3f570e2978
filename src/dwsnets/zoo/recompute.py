"""Running a zoo's stored networks again on their data, to check them against the scores
the zoo stores (``dwsnets zoo-info ZOO --recompute N``).

This is the integrity check after an import or a fit: a classifier zoo's networks run on
their data set's test images as the manifest says they compute (``"networks"``:
convolution stride and padding, input preparation, each network's activation), and their
accuracy is compared with the stored one; an INR zoo's networks are rendered and their
PSNR against the source signals compared with the stored PSNR. A wrong padding, kernel
order or activation shows up as a difference of tens of points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..core.forward import batched_cnn_forward
from ..core.function import ACTIVATION_FUNCTIONS, activation_function
from .cnns import feature_sizes
from .errors import ZooError
from .format import ShardPlan, shard_finished
from .reader import Zoo

__all__ = ["ACTIVATION_FUNCTIONS", "Recomputed", "largest_difference", "recompute"]

# the data sets' names in the Small CNN Zoo's metrics (TFDS names) -> dwsnets' image sources
_IMAGE_SOURCE_OF = {"mnist": "mnist", "fashion_mnist": "fashion-mnist", "fashion-mnist": "fashion-mnist",
                    "cifar10": "cifar10", "digits": "digits"}  # fmt: skip


@dataclass(frozen=True)
class Recomputed:
    """One network: where it is, its stored and its recomputed score."""

    split: str
    row: int
    stored: float
    recomputed: float

    @property
    def difference(self) -> float:
        return abs(self.recomputed - self.stored)


def _first_networks(zoo: Zoo, count: int) -> list[tuple[ShardPlan, dict[str, Tensor]]]:
    """Up to ``count`` finished networks, test split first, as ``(shard, its tensors cut to
    those networks)``, one entry per shard read."""
    order = sorted(zoo.splits, key=lambda s: (s != "test", s != "val"))
    picked, left = [], count
    for split in order:
        for shard in zoo.shards:
            if left <= 0:
                return picked
            if shard.split != split or not shard_finished(zoo.path, shard):
                continue
            tensors = zoo.open_shard(shard)
            take = min(left, shard.count)
            picked.append((shard, {k: v[:take] for k, v in tensors.items()}))
            left -= take
    return picked


def _test_images(zoo: Zoo, forward: dict[str, Any], data_dir: str | None) -> tuple[Tensor, Tensor]:
    """The test images the networks were scored on, ``(P, H, W, C)`` in [0, 1], and labels."""
    from .sources import SOURCES, ClassifierSource, DataNotFoundError, load_images

    source = SOURCES.get(zoo.source)
    if isinstance(source, ClassifierSource):  # fitted here: the source's own test part
        images, labels = source.image_parts(data_dir)["test"]
        return torch.from_numpy(images), torch.from_numpy(labels)
    dataset = forward.get("dataset")
    if dataset is None:
        raise ZooError(f"zoo {zoo.path} does not record which data set its networks were trained on (imported "
                       "before dwsnets recorded it): import it again with `dwsnets import-zoo`")  # fmt: skip
    if dataset not in _IMAGE_SOURCE_OF:
        raise DataNotFoundError(f"the networks were trained on {dataset}, which dwsnets cannot read (it reads "
                                f"{', '.join(sorted(_IMAGE_SOURCE_OF))}): recompute needs that data set's test images")  # fmt: skip
    images = load_images(_IMAGE_SOURCE_OF[dataset], "test", data_dir)
    if not len(images):
        raise ZooError(f"the {dataset} source has no separate test images")
    return torch.from_numpy(images.images), torch.from_numpy(images.labels)


def _cnn_inputs(images: Tensor) -> Tensor:
    """``(P, H, W, C)`` in [0, 1] -> ``(P, 1, H, W)``: scaled to [-1, 1], then colour averaged
    to grey (the Small CNN Zoo's order of operations)."""
    return (images * 2 - 1).mean(-1, keepdim=True).permute(0, 3, 1, 2).contiguous()


def _activation_of(zoo: Zoo, tensors: dict[str, Tensor]) -> list[str]:
    """Each network's activation name (one per network: the zoos here share it across layers)."""
    names = zoo.activations
    if not names:
        raise ZooError(f"zoo {zoo.path} does not record its networks' activations")
    if len(names) == 1:
        return [names[0]] * len(next(iter(tensors.values())))
    codes = tensors["activation"].round().long()
    if codes.dim() != 1:
        raise ZooError("recompute runs networks with one activation on every hidden layer")
    return [names[int(c)] for c in codes]


def _accuracies(zoo: Zoo, params: list[Tensor], activations: list[str], x: Tensor, y: Tensor,
                forward: dict[str, Any], chunk: int) -> Tensor:  # fmt: skip
    """Each network's accuracy on ``(x, y)``, networks of one activation run together."""
    from .classifiers import classifier_forward

    out = torch.empty(len(activations))
    for name in dict.fromkeys(activations):
        try:
            function = activation_function(name)
        except ValueError:
            raise ZooError(f"recompute cannot run the activation {name!r}") from None
        members = torch.tensor([i for i, a in enumerate(activations) if a == name])
        group = [p[members] for p in params]
        correct = torch.zeros(len(members))
        with torch.no_grad():
            for start in range(0, len(y), chunk):
                xb, yb = x[start : start + chunk], y[start : start + chunk]
                if forward["kind"] == "cnn":
                    logits = batched_cnn_forward(xb, group, function, stride=int(forward["stride"]),
                                                 padding=int(forward["padding"]))  # fmt: skip
                else:
                    logits = classifier_forward(xb, group)
                correct += (logits.argmax(-1) == yb).float().sum(1)
        out[members] = correct / len(y)
    return out


def _recompute_classifiers(zoo: Zoo, count: int, data_dir: str | None, chunk: int) -> list[Recomputed]:
    forward = zoo.networks.get("forward")
    if not forward:
        raise ZooError(f"zoo {zoo.path} does not record how its networks run")
    images, labels = _test_images(zoo, forward, data_dir)
    if forward["kind"] == "cnn":
        x = _cnn_inputs(images.float())
        try:  # images too small for the recorded convolutions: say so, not torch
            convolutions = sum(1 for kernel in zoo.layout.kernel_shapes or () if kernel)
            feature_sizes(min(x.shape[-2:]), int(forward["padding"]), convolutions, int(forward["stride"]))
        except ValueError as exc:
            raise ZooError(f"zoo {zoo.path}: {exc}") from None
    else:
        from .classifiers import thumbnails

        x = thumbnails(images.numpy(), int(forward.get("pool", 1))).float()
    y = labels.long()
    found = []
    for shard, tensors in _first_networks(zoo, count):
        params = zoo.shard_parameters(tensors)
        accuracy = _accuracies(zoo, [p.float() for p in params], _activation_of(zoo, tensors), x, y, forward, chunk)
        stored = tensors["accuracy"].double()
        rows = (
            tensors["source_row"] if "source_row" in tensors else torch.arange(shard.start, shard.start + len(accuracy))
        )
        found += [
            Recomputed(shard.split, int(r), 100 * float(s), 100 * float(a)) for r, s, a in zip(rows, stored, accuracy)
        ]
    return found


def _recompute_inrs(zoo: Zoo, count: int, data_dir: str | None, chunk: int) -> list[Recomputed]:
    from ..inr.fitting import evaluate_sirens, psnr
    from .build import plan_zoo, shard_targets

    config = zoo.zoo_config(data_dir)
    plan, data = plan_zoo(config)
    found = []
    for shard, tensors in _first_networks(zoo, count):
        coords, targets, _ = shard_targets(plan, data, shard)
        n = len(tensors["psnr"])
        again = psnr(evaluate_sirens(coords, targets[:n], zoo.shard_parameters(tensors), w0=config.w0, chunk=chunk))
        found += [
            Recomputed(shard.split, shard.start + i, float(s), float(a))
            for i, (s, a) in enumerate(zip(tensors["psnr"], again))
        ]
    return found


def recompute(zoo: Zoo, count: int, data_dir: str | None = None, chunk: int = 500) -> tuple[str, list[Recomputed]]:
    """Run up to ``count`` of the zoo's networks (test split first) again and return the unit
    of their score (``"points"`` of accuracy, or ``"dB"`` of PSNR) and, per network, the
    stored and the recomputed score. ``data_dir``: where the data set's files are, as given
    to ``fit-zoo`` (Fashion-MNIST from Debian's package needs none)."""
    if count < 1:
        raise ZooError("--recompute needs at least one network")
    if zoo.quality == "accuracy":
        return "points", _recompute_classifiers(zoo, count, data_dir, chunk)
    if zoo.quality == "psnr" and not zoo.imported:
        return "dB", _recompute_inrs(zoo, count, data_dir, chunk)
    raise ZooError(f"zoo {zoo.path} stores no score to recompute ({zoo.source} networks, quality {zoo.quality})")


def largest_difference(found: list[Recomputed]) -> float:
    """The largest absolute difference between stored and recomputed scores."""
    return float(np.max([f.difference for f in found])) if found else 0.0
