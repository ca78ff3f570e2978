"""dwsnets: learning on the weights of trained neural networks.

Permutation-equivariant architectures for deep weight spaces (Navon et al., ICML 2023),
in the complete form: every affine map that commutes with reordering hidden neurons.
"""

from .core import TensorLayout, WeightSpace, WeightSpaceError, WeightSpaceLayout, random_hidden_permutations
from .nn import (
    DWSBackbone,
    DWSLayer,
    DWSNet,
    Entrywise,
    EquivariantDWSNet,
    InputNormalization,
    InvariantHead,
    InvariantPooling,
    WSBatchNorm,
    WSDropout,
)

__version__ = "0.2.0"

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
