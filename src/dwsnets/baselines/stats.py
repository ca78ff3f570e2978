"""StatNN: a network described by the statistics of each of its weight tensors.

Unterthiner et al. (2020, "Predicting Neural Network Accuracy from Weights") summarise
every weight and bias tensor of a network by a few order-free statistics and feed them to
a predictor; the statistics of a tensor's entries do not depend on their order, so the
model is exactly invariant to every hidden permutation, for MLPs and CNNs alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..core.layout import WeightSpaceLayout, as_layout
from ..core.weight_space import WeightSpace
from ..nn.models import WeightSpaceModel
from ..nn.norm import InputNormalization
from .common import mlp

__all__ = ["STATISTICS", "StatNN", "tensor_statistics"]

# per tensor and channel: mean, variance and these quantiles of its entries
QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
STATISTICS = ("mean", "variance", *(f"q{int(q * 100)}" for q in QUANTILES))


def tensor_statistics(ws: WeightSpace) -> Tensor:
    """``(B, T * C * 7)``: for every tensor ``T`` and channel ``C`` of ``ws``, the mean,
    the variance (of the entries, not unbiased) and the 0, 25, 50, 75 and 100th percentiles
    of its entries (:data:`STATISTICS`, in that order)."""
    features = []
    for t in ws.tensors:
        entries = t.flatten(2).float()  # (B, C, entries)
        quantiles = torch.quantile(entries, torch.tensor(QUANTILES, device=entries.device), dim=-1)  # (5, B, C)
        features.append(torch.stack([entries.mean(-1), entries.var(-1, unbiased=False), *quantiles], dim=-1))
    return torch.cat([f.flatten(1) for f in features], dim=1)


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
