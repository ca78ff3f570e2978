"""Baselines that see the weights as one flat vector (no symmetry built in): classifiers and
regressors (:class:`FlatMLP`, :class:`AlignedMLP`) and editors that output networks
(:class:`FlatEditMLP`, :class:`AlignedEditMLP`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..core.layout import WeightSpaceLayout
from ..core.weight_space import WeightSpace
from ..nn.models import WeightSpaceModel
from ..nn.norm import InputNormalization
from .alignment import align_to_reference
from .common import mlp, mlp_sizes

__all__ = ["AlignedEditMLP", "AlignedMLP", "AlignsInputs", "FlatEditMLP", "FlatMLP"]


class FlatMLP(WeightSpaceModel):
    """MLP on the flattened (normalised) weights: ``(B, P) -> hidden -> classes``."""

    def __init__(
        self,
        layout: WeightSpaceLayout | Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (512, 512, 512),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.input_norm = InputNormalization(layout)
        n = self.input_norm.layout.numel
        self.mlp = mlp([n, *hidden, num_classes], dropout)

    def forward(self, ws: WeightSpace) -> Tensor:
        return self.mlp(self.input_norm(ws).flatten())


class AlignsInputs(WeightSpaceModel):
    """Mixin for models that see weights aligned to a reference network.

    The trainer calls :meth:`preprocess` on every split once the model is built, the
    training split first; the reference (the first network it sees, i.e. of the training
    split) is stored as buffers so evaluation aligns the same way. Call
    :meth:`_init_alignment` in ``__init__`` once ``input_norm`` exists.
    """

    input_norm: InputNormalization

    def _init_alignment(self, layout: WeightSpaceLayout | Sequence[int]) -> None:
        self.layer_sizes = mlp_sizes(layout, "mlp-align")
        self.register_buffer("reference", torch.zeros(self.input_norm.layout.numel))
        self.register_buffer("has_reference", torch.tensor(False))

    @torch.no_grad()
    def preprocess(self, ws: WeightSpace) -> WeightSpace:
        if not bool(self.has_reference):
            self.reference.copy_(ws[0].flatten()[0].to(self.reference.dtype))
            self.has_reference.fill_(True)
        ref = WeightSpace.from_flat(self.reference[None].to(ws.dtype), self.layer_sizes)
        out = []
        for start in range(0, ws.batch_size, 4096):
            out.append(align_to_reference(ws[start : start + 4096].to("cpu"), ref.to("cpu")))
        return WeightSpace.cat(out).to(ws.device)


class AlignedMLP(AlignsInputs, FlatMLP):
    """:class:`FlatMLP` on weights aligned to a reference network (:class:`AlignsInputs`)."""

    def __init__(self, layout: WeightSpaceLayout | Sequence[int], num_classes: int, **kwargs: Any) -> None:
        FlatMLP.__init__(self, layout, num_classes, **kwargs)
        self._init_alignment(layout)


class FlatEditMLP(WeightSpaceModel):
    """Baseline editor: an MLP on the flattened (normalised) weights predicts an update of
    every weight; the output starts as the identity edit. Not equivariant.

    Shapes: ``WeightSpace (B, 1, ...)`` -> ``WeightSpace (B, 1, ...)`` of the same layout.
    """

    def __init__(self, layout: WeightSpaceLayout, hidden: Sequence[int] = (512, 512), dropout: float = 0.0) -> None:
        super().__init__()
        self.input_norm = InputNormalization(layout)
        n = layout.numel
        self.layout = layout
        self.mlp = mlp([n, *hidden, n], dropout)
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, ws: WeightSpace) -> WeightSpace:
        normed = self.input_norm(ws)
        update = WeightSpace.from_flat(self.mlp(normed.flatten()), self.layout)
        return self.input_norm.inverse(normed + update)


class AlignedEditMLP(AlignsInputs, FlatEditMLP):
    """:class:`FlatEditMLP` on weights aligned to a reference network: the update is
    predicted (and added) in the aligned frame, which computes the same function as the
    original network."""

    def __init__(self, layout: WeightSpaceLayout, **kwargs: Any) -> None:
        FlatEditMLP.__init__(self, layout, **kwargs)
        self._init_alignment(layout)
