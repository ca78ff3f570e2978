"""Invariant maps: from a weight space to a vector that ignores hidden-neuron order.

The complete invariant linear layer (docs/design.md, "The invariant head") mean-pools every tensor
over all of its hidden axes, keeping its fixed axes (the input columns of ``W_1``, the
output rows of ``W_M`` and the entries of ``b_M`` for an MLP), and applies one dense map to
the concatenation. :class:`InvariantPooling` is the pooling; :class:`InvariantHead` adds a
dense map or an MLP on top.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..core.layout import WeightSpaceLayout, as_layout
from ..core.weight_space import WeightSpace, WeightSpaceError
from .pointwise import mlp

__all__ = ["STATISTICS", "InvariantHead", "InvariantPooling", "tensor_statistics"]

# per tensor and channel: mean, variance and these quantiles of its entries
QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
STATISTICS = ("mean", "variance", *(f"q{int(q * 100)}" for q in QUANTILES))


def tensor_statistics(ws: WeightSpace) -> Tensor:
    """``(B, T * C * 7)``: for every tensor ``T`` and channel ``C`` of ``ws``, the mean,
    the variance (of the entries, not unbiased) and the 0, 25, 50, 75 and 100th percentiles
    of its entries (:data:`STATISTICS`, in that order)."""
    features = []
    for t in ws.tensors:
        entries = t.flatten(2)  # (B, C, entries)
        if entries.dtype in (torch.float16, torch.bfloat16):
            entries = entries.float()  # quantiles and variances in full precision
        q = torch.tensor(QUANTILES, device=entries.device, dtype=entries.dtype)
        quantiles = torch.quantile(entries, q, dim=-1)  # (5, B, C)
        features.append(torch.stack([entries.mean(-1), entries.var(-1, unbiased=False), *quantiles], dim=-1))
    return torch.cat([f.flatten(1) for f in features], dim=1)


class InvariantPooling(nn.Module):
    """Mean over every hidden axis of every tensor, fixed axes kept, then concatenated.

    Shapes: ``WeightSpace`` with ``C`` channels -> ``(B, C * n)``, with
    ``n = layout.invariant_dimension()`` (``2M - 3 + d_0 + 2 d_M`` for an MLP with ``M >= 2``).
    Feature order: the slots of the layout's :class:`~dwsnets.core.layout.Packing` in
    order, within a slot its tensors, each tensor's fixed entries, then channels. There is
    one code path: :meth:`forward` packs and calls :meth:`forward_packed`, which models
    that keep their activations packed call directly, so both give identical features.

    Symmetry contract: the output is unchanged by any permutation of hidden neurons, and
    with one dense map after it every invariant linear functional is expressible.
    """

    def __init__(self, layout: WeightSpaceLayout | Sequence[int], channels: int) -> None:
        super().__init__()
        self.layout = as_layout(layout)
        self.channels = int(channels)
        self.out_features = self.layout.invariant_dimension(self.channels)

    def forward(self, ws: WeightSpace) -> Tensor:
        """``WeightSpace (B, C, ...)`` -> ``(B, out_features)``."""
        return self.forward_tensors(ws.tensors)

    def forward_tensors(self, xs: Sequence[Tensor]) -> Tensor:
        """The same on the layout's tensors ``(B, C, *shape)`` in layout order."""
        tensors = self.layout.tensors
        if len(xs) != len(tensors):
            raise WeightSpaceError(f"InvariantPooling expects {len(tensors)} tensors, got {len(xs)}")
        for t, x in zip(tensors, xs):
            if tuple(x.shape[2:]) != t.shape or x.shape[1] != self.channels:
                raise WeightSpaceError(
                    f"InvariantPooling expects {t.name} of shape (B, {self.channels}, "
                    f"{', '.join(map(str, t.shape))}), got {tuple(x.shape)}"
                )
        return self.forward_packed(self.layout.packing.pack(xs))

    def forward_packed(self, slots: Sequence[Tensor]) -> Tensor:
        """The invariant features from packed slots ``(B, *slot_sizes, F)``."""
        pooled = []
        for x in slots:
            if x.dim() > 2:
                # sum, then scale the small result: the backward is a free broadcast view
                n = x.numel() // (x.shape[0] * x.shape[-1])
                x = x.sum(dim=tuple(range(1, x.dim() - 1))) * (1.0 / n)
            pooled.append(x)
        return torch.cat(pooled, dim=1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, out_features={self.out_features}"


class InvariantHead(nn.Module):
    """Invariant pooling followed by a dense map (``hidden=()``) or an MLP.

    Args:
        layout: MLP layer sizes or a :class:`WeightSpaceLayout`.
        in_channels: channels of the incoming weight space.
        out_features: size of the output vector (classes, regression targets, embedding).
        hidden: widths of the MLP's hidden layers after pooling.
        activation, dropout: of the MLP.

    Shapes: ``WeightSpace (B, in_channels, ...)`` -> ``(B, out_features)``; invariant.
    """

    def __init__(
        self,
        layout: WeightSpaceLayout | Sequence[int],
        in_channels: int,
        out_features: int,
        hidden: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        extra_features: int = 0,
    ) -> None:
        super().__init__()
        self.pool = InvariantPooling(layout, in_channels)
        self.extra_features = int(extra_features)
        widths = [self.pool.out_features + self.extra_features, *hidden, out_features]
        self.mlp = mlp(widths, dropout, activation)

    def forward(self, ws: WeightSpace) -> Tensor:
        return self.mlp(self.pool(ws))

    def features_packed(self, slots: Sequence[Tensor], extra: Tensor | None = None) -> Tensor:
        """What the MLP reads: the pooled features of packed slots, then ``extra``
        (``(B, extra_features)`` further invariant features) when given."""
        pooled = self.pool.forward_packed(slots)
        return pooled if extra is None else torch.cat([pooled, extra.to(pooled.dtype)], dim=1)

    def forward_packed(self, slots: Sequence[Tensor], extra: Tensor | None = None) -> Tensor:
        """The same from packed slots (what :class:`~dwsnets.DWSNet` calls), with ``extra``
        features as :meth:`features_packed` takes them."""
        return self.mlp(self.features_packed(slots, extra))
