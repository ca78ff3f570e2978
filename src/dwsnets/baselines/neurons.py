"""Baselines that read networks neuron by neuron: a Transformer over neuron tokens, an
inr2vec-style shared row encoder, and DeepSets over each layer's neurons."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..core.layout import WeightSpaceLayout
from ..core.weight_space import WeightSpace
from ..nn.models import WeightSpaceModel
from ..nn.norm import InputNormalization
from .common import mlp, mlp_sizes

__all__ = ["Inr2VecEncoder", "NeuronDeepSets", "NeuronTransformer"]


def _neuron_rows(ws: WeightSpace, width: int) -> Tensor:
    """Every neuron of every layer as a token: incoming weights and bias, zero-padded to
    ``width``: ``(B, sum(d_1..d_M), width)``."""
    rows = []
    for w, b in zip(ws.weights, ws.biases):
        r = torch.cat([w[:, 0], b[:, 0, :, None]], dim=2)  # (B, d_m, d_{m-1} + 1)
        rows.append(nn.functional.pad(r, (0, width - r.shape[2])))
    return torch.cat(rows, dim=1)


class NeuronTransformer(WeightSpaceModel):
    """Transformer encoder over neuron tokens, mean pooled (Transformer baseline)."""

    def __init__(
        self,
        layout: WeightSpaceLayout | Sequence[int],
        num_classes: int,
        d_model: int = 64,
        layers: int = 3,
        heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        sizes = mlp_sizes(layout, "transformer")
        self.input_norm = InputNormalization(sizes)
        self.width = max(sizes[:-1]) + 1
        self.embed = nn.Linear(self.width, d_model)
        layer_ids = torch.cat([torch.full((d,), m) for m, d in enumerate(sizes[1:])])
        self.register_buffer("layer_ids", layer_ids, persistent=False)
        self.layer_embedding = nn.Embedding(len(sizes) - 1, d_model)
        block = nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = mlp([d_model, d_model, num_classes])

    def forward(self, ws: WeightSpace) -> Tensor:
        tokens = self.embed(_neuron_rows(self.input_norm(ws), self.width)) + self.layer_embedding(self.layer_ids)
        return self.head(self.encoder(tokens).mean(dim=1))


class _RowBatchNorm(nn.BatchNorm1d):
    """Batch norm over ``(B, rows, C)`` token features (statistics over batch and rows),
    as a kernel-size-1 convolution encoder would normalise them."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


class Inr2VecEncoder(WeightSpaceModel):
    """inr2vec-style encoder: a shared MLP on each neuron's weight row (incoming weights and
    bias, zero-padded, with a one-hot layer index), batch-normalised over rows like
    inr2vec's kernel-size-1 convolutions, then max pooled over all rows."""

    def __init__(
        self,
        layout: WeightSpaceLayout | Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (128, 256, 512),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        sizes = mlp_sizes(layout, "inr2vec")
        self.input_norm = InputNormalization(sizes)
        self.width = max(sizes[:-1]) + 1
        layer_ids = torch.cat([torch.full((d,), m) for m, d in enumerate(sizes[1:])])
        self.register_buffer("layer_onehot", nn.functional.one_hot(layer_ids, len(sizes) - 1).float(), persistent=False)
        layers: list[nn.Module] = []
        widths = [self.width + len(sizes) - 1, *hidden]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), _RowBatchNorm(b), nn.ReLU()]
        self.rows = nn.Sequential(*layers)
        self.head = mlp([widths[-1], 256, num_classes], dropout)

    def forward(self, ws: WeightSpace) -> Tensor:
        rows = _neuron_rows(self.input_norm(ws), self.width)
        onehot = self.layer_onehot.to(rows.dtype).expand(rows.shape[0], -1, -1)
        return self.head(self.rows(torch.cat([rows, onehot], dim=2)).max(dim=1).values)


class NeuronDeepSets(WeightSpaceModel):
    """DeepSets over each layer's neurons, exactly invariant to hidden permutations.

    A neuron of layer ``m`` is described by its bias, its incoming weights and its outgoing
    weights. Weights that connect to another hidden layer are sorted, since their order
    depends on that layer's permutation; weights to the fixed input or output layer keep
    their order. A shared MLP embeds each neuron (with a layer embedding), each layer is
    mean and max pooled, and an MLP classifies the concatenation.
    """

    def __init__(self, layout: WeightSpaceLayout | Sequence[int], num_classes: int, hidden: int = 128) -> None:
        super().__init__()
        sizes = mlp_sizes(layout, "deepsets")
        self.input_norm = InputNormalization(sizes)
        self.sizes = sizes
        m_layers = len(sizes) - 1
        self.width = max(sizes[m] + sizes[m + 2] if m + 2 < len(sizes) else sizes[m] for m in range(m_layers)) + 1
        self.phi = mlp([self.width + m_layers, hidden, hidden, hidden])
        self.rho = mlp([2 * hidden * m_layers, 256, num_classes])

    def forward(self, ws: WeightSpace) -> Tensor:
        ws = self.input_norm(ws)
        m_layers = len(self.sizes) - 1
        pooled = []
        for m in range(m_layers):
            incoming = ws.weights[m][:, 0]  # (B, d_m, d_{m-1})
            if m > 0:
                incoming = incoming.sort(dim=2).values
            parts = [ws.biases[m][:, 0, :, None], incoming]
            if m + 1 < m_layers:
                outgoing = ws.weights[m + 1][:, 0].transpose(1, 2)  # (B, d_m, d_{m+1})
                if m + 1 < m_layers - 1:
                    outgoing = outgoing.sort(dim=2).values
                parts.append(outgoing)
            feats = torch.cat(parts, dim=2)
            feats = nn.functional.pad(feats, (0, self.width - feats.shape[2]))
            onehot = torch.zeros(*feats.shape[:2], m_layers, dtype=feats.dtype, device=feats.device)
            onehot[..., m] = 1
            h = self.phi(torch.cat([feats, onehot], dim=2))
            pooled += [h.mean(dim=1), h.max(dim=1).values]
        return self.rho(torch.cat(pooled, dim=1))
