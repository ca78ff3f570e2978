"""Zoos of trained networks: where they come from, how they are fitted, stored and read.

* :mod:`~dwsnets.zoo.sources`: image sources with no download (digits, Fashion-MNIST from
  Debian, IDX, CIFAR-10);
* :mod:`~dwsnets.zoo.config` (the settings and their hash), :mod:`~dwsnets.zoo.format`
  (manifest and shards on disk, with the layout recorded), :mod:`~dwsnets.zoo.build` (plan,
  fit, resume), :mod:`~dwsnets.zoo.reader` (:class:`Zoo`), :mod:`~dwsnets.zoo.merge`;
  :mod:`~dwsnets.zoo.store` re-exports them;
* :mod:`~dwsnets.zoo.split`: :class:`ZooSplit`, one split of networks, whatever its source;
* :mod:`~dwsnets.zoo.dataset`: the :class:`WeightDataset` protocol and :class:`InMemoryZoo`;
* :mod:`~dwsnets.zoo.function`: how a zoo's networks run, for the models that query them;
* :mod:`~dwsnets.zoo.preview`: a picture of a zoo's sources beside their INRs;
* :mod:`~dwsnets.zoo.synthetic`: a small zoo of ReLU MLPs fitted to sine waves.
"""

from .function import network_function
from .sources import DataNotFoundError, load_images
from .store import Zoo, ZooConfig, ZooError, ZooSplit, build_zoo, merge_zoos, plan_zoo
from .synthetic import SineMLPZoo, make_sine_mlp_zoo

__all__ = [
    "DataNotFoundError",
    "SineMLPZoo",
    "Zoo",
    "ZooConfig",
    "ZooError",
    "ZooSplit",
    "build_zoo",
    "load_images",
    "make_sine_mlp_zoo",
    "merge_zoos",
    "network_function",
    "plan_zoo",
]
