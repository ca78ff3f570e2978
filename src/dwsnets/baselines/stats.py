"""StatNN: a network described by the statistics of each of its weight tensors.

Unterthiner et al. (2020, "Predicting Neural Network Accuracy from Weights") summarise
every weight and bias tensor of a network by a few order-free statistics and feed them to
a predictor; the statistics of a tensor's entries do not depend on their order, so the
model is exactly invariant to every hidden permutation, for MLPs and CNNs alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..core.layout import WeightSpaceLayout, as_layout
from ..core.weight_space import WeightSpace
from ..nn.invariant import STATISTICS, tensor_statistics
from ..nn.models import WeightSpaceModel
from ..nn.norm import InputNormalization
from .common import mlp

__all__ = ["STATISTICS", "StatNN", "tensor_statistics"]


class StatNN(WeightSpaceModel):
    """:func:`tensor_statistics` of the (normalised) weights, standardised per feature by a
    batch norm without parameters, then an MLP.

    Shapes: ``WeightSpace (B, 1, ...)`` -> ``(B, out_features)``. Symmetry contract:
    invariant to hidden permutations (any layout), by construction.
    """

    def __init__(
        self,
        layout: WeightSpaceLayout | Sequence[int],
        out_features: int,
        hidden: Sequence[int] = (256, 256),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_norm = InputNormalization(layout)
        n_features = len(as_layout(layout).tensors) * len(STATISTICS)
        self.feature_norm = nn.BatchNorm1d(n_features, affine=False)
        self.mlp = mlp([n_features, *hidden, out_features], dropout)

    def forward(self, ws: WeightSpace) -> Tensor:
        return self.mlp(self.feature_norm(tensor_statistics(self.input_norm(ws))))
