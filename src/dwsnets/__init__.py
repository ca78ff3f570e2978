"""dwsnets: learning on the weights of trained neural networks.

Permutation-equivariant architectures for deep weight spaces (Navon et al., ICML 2023),
in the complete form: every affine map that commutes with reordering hidden neurons.
"""

from .blocks import Entrywise, InputNormalization, WSBatchNorm, WSDropout
from .equivariant import DWSLayer
from .invariant import InvariantHead, InvariantPooling
from .layout import TensorLayout, WeightSpaceLayout
from .models import DWSBackbone, DWSNet, EquivariantDWSNet
from .weight_space import WeightSpace, WeightSpaceError, random_hidden_permutations

__version__ = "0.1.0"

__all__ = [
    "DWSBackbone",
    "DWSLayer",
    "DWSNet",
    "Entrywise",
    "EquivariantDWSNet",
    "InputNormalization",
    "InvariantHead",
    "InvariantPooling",
    "TensorLayout",
    "WSBatchNorm",
    "WSDropout",
    "WeightSpace",
    "WeightSpaceError",
    "WeightSpaceLayout",
    "random_hidden_permutations",
]
