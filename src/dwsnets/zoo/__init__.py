"""Zoos of trained networks: where they come from, how they are fitted, stored and read.

* :mod:`~dwsnets.zoo.sources`: image sources with no download (digits, Fashion-MNIST from
  Debian, IDX, CIFAR-10);
* :mod:`~dwsnets.zoo.store`: INR zoos on disk (plan, fit, shards, checksums, resume, load);
* :mod:`~dwsnets.zoo.preview`: a picture of a zoo's sources beside their INRs;
* :mod:`~dwsnets.zoo.synthetic`: a small zoo of ReLU MLPs fitted to sine waves.
"""

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
    "plan_zoo",
]
