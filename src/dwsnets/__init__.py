"""dwsnets: learning on the weights of trained neural networks.

Permutation-equivariant architectures for deep weight spaces (Navon et al., ICML 2023),
in the complete form: every affine map that commutes with reordering hidden neurons.
docs/design.md states the mathematics.

Importing dwsnets has no side effects: the names below load their modules (and torch) when
first used. The command line sets a short OpenMP spin before torch loads
(:func:`dwsnets.utils.share_cpu_fairly`); a program of your own may call it first too.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    "TensorLayout": "dwsnets.core",
    "WeightSpace": "dwsnets.core",
    "WeightSpaceError": "dwsnets.core",
    "WeightSpaceLayout": "dwsnets.core",
    "random_hidden_permutations": "dwsnets.core",
    "DWSBackbone": "dwsnets.nn",
    "DWSLayer": "dwsnets.nn",
    "DWSNet": "dwsnets.nn",
    "Entrywise": "dwsnets.nn",
    "EquivariantDWSNet": "dwsnets.nn",
    "InputNormalization": "dwsnets.nn",
    "InvariantHead": "dwsnets.nn",
    "InvariantPooling": "dwsnets.nn",
    "WSBatchNorm": "dwsnets.nn",
    "WSDropout": "dwsnets.nn",
    "WeightSpaceModel": "dwsnets.nn",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dwsnets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
