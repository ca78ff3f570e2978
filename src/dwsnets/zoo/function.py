"""How a zoo's networks run (:class:`~dwsnets.core.function.NetworkFunction`), read from
what its manifest records: what a probing model needs to query them.

* INR zoos fitted here: SIRENs (``sin(w0 z)``, the zoo's ``w0``) of pixel coordinates on
  the images' grid, or of ``x`` in ``[-pi, pi]`` for the sine zoos.
* DWSNets' published INRs: SIRENs of 2-D coordinates with ``w0 = 30`` (no grid to render
  on unless the import recorded the images' shape).
* Classifier zoos: ReLU MLPs of thumbnails in ``[0, 1]``; CNN zoos: the recorded stride,
  padding and activation on grey images in ``[-1, 1]``.

A zoo whose networks differ in activation from network to network (the Small CNN Zoo's
ReLU and tanh) cannot be queried through one function: :func:`network_function` says so.
"""

from __future__ import annotations

import math
from typing import Any

from ..core.function import NetworkFunction
from .errors import ZooError

__all__ = ["network_function"]

# the images a data set's networks read: (height, width) of one grey input
_IMAGE_SIZES = {"mnist": 28, "fashion-mnist": 28, "fashion_mnist": 28, "cifar10": 32, "svhn_cropped": 32, "svhn": 32,
                "digits": 8}  # fmt: skip


def _one_activation(name: str, networks: dict[str, Any]) -> str:
    record = networks.get("activations") or {}
    names = record.get("present") or record.get("names")
    if not names:
        raise ZooError(f"zoo {name} does not record its networks' activations, so dwsnets cannot run them")
    if len(names) > 1:
        raise ZooError(f"the networks of zoo {name} have different activations ({', '.join(names)}, one per "
                       "network), and a probing model runs every network of a zoo through one function: "
                       "dwsnets cannot query such a zoo yet")  # fmt: skip
    return names[0]


def _inr_function(zoo: Any) -> NetworkFunction:
    config = zoo.config
    d_in = zoo.layout.layer_sizes[0]
    shape = zoo.manifest.get("image_shape")
    if zoo.imported:  # DWSNets' published SIRENs (w0 = 30): a grid only where the import recorded the images' shape
        return NetworkFunction("mlp", "sine", (d_in,), w0=30.0, grid=tuple(shape[:2]) if shape else None)
    if shape is not None:
        return NetworkFunction("mlp", "sine", (d_in,), w0=float(config["w0"]), grid=tuple(shape[:2]))
    return NetworkFunction("mlp", "sine", (d_in,), w0=float(config["w0"]), domain=(-math.pi, math.pi))


def _classifier_function(zoo: Any, networks: dict[str, Any]) -> NetworkFunction:
    forward = networks.get("forward") or {}
    activation = _one_activation(str(zoo.path), networks)
    if forward.get("kind") == "cnn":
        size = _IMAGE_SIZES.get(str(forward.get("dataset")))
        if size is None:
            raise ZooError(f"zoo {zoo.path}: dwsnets does not know the size of the images its CNNs read "
                           f"({forward.get('dataset') or 'no data set recorded'}), so it cannot run them")  # fmt: skip
        return NetworkFunction("cnn", activation, (1, size, size), stride=int(forward["stride"]),
                               padding=int(forward["padding"]), grid=(size, size))  # fmt: skip
    d_in = zoo.layout.layer_sizes[0]
    return NetworkFunction("mlp", activation, (d_in,), domain=(0.0, 1.0))


def zoo_function(zoo: Any) -> NetworkFunction:
    """How the networks of a :class:`~dwsnets.zoo.Zoo` on disk run; a :class:`ZooError`
    naming the reason when dwsnets cannot run them."""
    networks = zoo.networks
    if zoo.quality == "accuracy":
        return _classifier_function(zoo, networks)
    activation = _one_activation(str(zoo.path), networks)
    if activation != "sine" or not zoo.layout.is_mlp:
        raise ZooError(f"zoo {zoo.path}: dwsnets runs INRs that are SIRENs, not {activation} networks")
    return _inr_function(zoo)


def network_function(data: Any) -> NetworkFunction:
    """How the networks of ``data`` (a zoo on disk or an :class:`~dwsnets.zoo.InMemoryZoo`
    given ``function=``) run; a :class:`ZooError` saying why when they cannot be run."""
    given = getattr(data, "function", None)
    if isinstance(given, NetworkFunction):
        return given
    if hasattr(data, "manifest"):
        return zoo_function(data)
    raise ZooError(f"data set {data.name!r} does not say how its networks run: give InMemoryZoo a "
                   "function=NetworkFunction(...) to query them")  # fmt: skip
