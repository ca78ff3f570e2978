"""Baselines that see the weights as one flat vector (no symmetry built in)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..core.layout import WeightSpaceLayout
from ..core.weight_space import WeightSpace
from ..nn.norm import InputNormalization
from .alignment import align_to_reference
from .common import mlp, mlp_sizes

__all__ = ["AlignedMLP", "AlignsInputs", "FlatMLP"]


class FlatMLP(nn.Module):
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


class AlignsInputs(nn.Module):
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
