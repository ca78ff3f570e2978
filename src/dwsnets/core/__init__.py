"""The objects every other part of dwsnets is built on.

* :mod:`~dwsnets.core.layout`: which axis of which tensor is hidden (permuted) or fixed;
  builds MLP and CNN layouts, packs tensors into slots, draws and applies permutations;
* :mod:`~dwsnets.core.weight_space`: :class:`WeightSpace`, an immutable batch of networks
  that follows its layout;
* :mod:`~dwsnets.core.convert`: to and from PyTorch modules and ``state_dict``s;
* :mod:`~dwsnets.core.signs`: the sign symmetry of odd activations and its canonical form;
* :mod:`~dwsnets.core.function`: :class:`NetworkFunction`, how a batch of networks runs at
  any inputs (what probing models query).
"""

from .convert import from_modules, from_state_dicts, to_modules, to_state_dicts
from .function import NetworkFunction
from .layout import (
    Packing,
    TensorLayout,
    WeightSpaceLayout,
    as_layout,
    describe_layout,
    flip_tensors,
    permute_tensors,
    random_permutations,
    random_signs,
)
from .signs import canonical_signs, sign_canonical_form, sign_tie_margins
from .weight_space import WeightSpace, WeightSpaceError, random_hidden_permutations

__all__ = [
    "NetworkFunction",
    "Packing",
    "TensorLayout",
    "WeightSpace",
    "WeightSpaceError",
    "WeightSpaceLayout",
    "as_layout",
    "canonical_signs",
    "describe_layout",
    "flip_tensors",
    "from_modules",
    "from_state_dicts",
    "permute_tensors",
    "random_hidden_permutations",
    "random_permutations",
    "random_signs",
    "sign_canonical_form",
    "sign_tie_margins",
    "to_modules",
    "to_state_dicts",
]
