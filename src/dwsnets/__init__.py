"""dwsnets: learning on the weights of trained neural networks.

Permutation-equivariant architectures for deep weight spaces (Navon et al., ICML 2023),
in the complete form: every affine map that commutes with reordering hidden neurons.

Importing dwsnets before torch sets ``GOMP_SPINCOUNT=1000`` unless ``GOMP_SPINCOUNT`` or
``OMP_WAIT_POLICY`` is already set (see :func:`dwsnets.utils.share_cpu_fairly`).
"""

from .utils import share_cpu_fairly

share_cpu_fairly()  # before torch loads: OpenMP reads its settings then

from .core import TensorLayout, WeightSpace, WeightSpaceError, WeightSpaceLayout, random_hidden_permutations  # noqa: E402
from .nn import (  # noqa: E402
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
