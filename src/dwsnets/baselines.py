"""Every model of the INR-classification table behind one interface.

``build_model(name, layer_sizes, num_classes)`` returns a module mapping a raw
:class:`~dwsnets.WeightSpace` (one channel) to logits. Every model starts with the same
per-tensor :class:`~dwsnets.InputNormalization` (fitted by the trainer), so they differ
only in what they do with the weights:

* ``dwsnet``: :class:`~dwsnets.DWSNet`, invariant by construction;
* ``mlp``: an MLP on the flattened weight vector (no symmetry);
* ``mlp-aug``: the same MLP trained with random hidden-neuron permutations;
* ``mlp-align``: the same MLP on weights whose hidden neurons were first aligned to one
  reference network by weight matching (:mod:`dwsnets.alignment`);
* ``transformer``: a Transformer encoder over per-neuron tokens (incoming weights and
  bias, with a learned layer embedding);
* ``inr2vec``: an inr2vec-style encoder: a shared MLP on every neuron's weight row, max
  pooling over all rows;
* ``deepsets``: DeepSets over the neurons of each layer, with neighbouring layers' weights
  sorted so that the model is exactly invariant.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from .blocks import InputNormalization
from .models import DWSNet
from .weight_space import WeightSpace

__all__ = ["MODEL_DEFAULTS", "build_model", "FlatMLP", "AlignedMLP", "NeuronTransformer", "Inr2VecEncoder",
           "NeuronDeepSets"]

# learning rate and whether permutation augmentation is on, per model
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "dwsnet": {"lr": 2e-3, "augment_permute": True},
    "mlp": {"lr": 1e-3, "augment_permute": False},
    "mlp-aug": {"lr": 1e-3, "augment_permute": True},
    "mlp-align": {"lr": 1e-3, "augment_permute": False},
    "transformer": {"lr": 5e-4, "augment_permute": False},
    "inr2vec": {"lr": 1e-3, "augment_permute": False},
    "deepsets": {"lr": 1e-3, "augment_permute": False},
}


def _mlp(widths: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class FlatMLP(nn.Module):
    """MLP on the flattened (normalised) weights: ``(B, P) -> hidden -> classes``."""

    def __init__(self, layer_sizes: Sequence[int], num_classes: int, hidden: Sequence[int] = (512, 512, 512),
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.input_norm = InputNormalization(layer_sizes)
        n = self.input_norm.layout.numel
        self.mlp = _mlp([n, *hidden, num_classes], dropout)

    def forward(self, ws: WeightSpace) -> Tensor:
        return self.mlp(self.input_norm(ws).flatten())


class AlignedMLP(FlatMLP):
    """:class:`FlatMLP` on weights aligned to a reference network.

    The trainer calls :meth:`preprocess` once per split; the reference (the first network
    it sees, i.e. of the training split) is stored as buffers so evaluation aligns the
    same way.
    """

    def __init__(self, layer_sizes: Sequence[int], num_classes: int, **kwargs: Any) -> None:
        super().__init__(layer_sizes, num_classes, **kwargs)
        sizes = tuple(layer_sizes)
        self.register_buffer("reference", torch.zeros(sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))))
        self.register_buffer("has_reference", torch.tensor(False))
        self.layer_sizes = sizes

    @torch.no_grad()
    def preprocess(self, ws: WeightSpace) -> WeightSpace:
        from .alignment import align_to_reference

        if not bool(self.has_reference):
            self.reference.copy_(ws[0].flatten()[0].to(self.reference.dtype))
            self.has_reference.fill_(True)
        ref = WeightSpace.from_flat(self.reference[None].to(ws.dtype), self.layer_sizes)
        out = []
        for start in range(0, ws.batch_size, 4096):
            out.append(align_to_reference(ws[start : start + 4096].to("cpu"), ref.to("cpu")))
        return WeightSpace.cat(out).to(ws.device)


def _neuron_rows(ws: WeightSpace, width: int) -> Tensor:
    """Every neuron of every layer as a token: incoming weights and bias, zero-padded to
    ``width``: ``(B, sum(d_1..d_M), width)``."""
    rows = []
    for w, b in zip(ws.weights, ws.biases):
        r = torch.cat([w[:, 0], b[:, 0, :, None]], dim=2)  # (B, d_m, d_{m-1} + 1)
        rows.append(nn.functional.pad(r, (0, width - r.shape[2])))
    return torch.cat(rows, dim=1)


class NeuronTransformer(nn.Module):
    """Transformer encoder over neuron tokens, mean pooled (Transformer baseline)."""

    def __init__(self, layer_sizes: Sequence[int], num_classes: int, d_model: int = 64, layers: int = 3,
                 heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        sizes = tuple(layer_sizes)
        self.input_norm = InputNormalization(sizes)
        self.width = max(sizes[:-1]) + 1
        self.embed = nn.Linear(self.width, d_model)
        layer_ids = torch.cat([torch.full((d,), m) for m, d in enumerate(sizes[1:])])
        self.register_buffer("layer_ids", layer_ids, persistent=False)
        self.layer_embedding = nn.Embedding(len(sizes) - 1, d_model)
        block = nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = _mlp([d_model, d_model, num_classes])

    def forward(self, ws: WeightSpace) -> Tensor:
        tokens = self.embed(_neuron_rows(self.input_norm(ws), self.width)) + self.layer_embedding(self.layer_ids)
        return self.head(self.encoder(tokens).mean(dim=1))


class _RowBatchNorm(nn.BatchNorm1d):
    """Batch norm over ``(B, rows, C)`` token features (statistics over batch and rows),
    as a kernel-size-1 convolution encoder would normalise them."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


class Inr2VecEncoder(nn.Module):
    """inr2vec-style encoder: a shared MLP on each neuron's weight row (incoming weights and
    bias, zero-padded, with a one-hot layer index), batch-normalised over rows like
    inr2vec's kernel-size-1 convolutions, then max pooled over all rows."""

    def __init__(self, layer_sizes: Sequence[int], num_classes: int, hidden: Sequence[int] = (128, 256, 512),
                 dropout: float = 0.2) -> None:
        super().__init__()
        sizes = tuple(layer_sizes)
        self.input_norm = InputNormalization(sizes)
        self.width = max(sizes[:-1]) + 1
        layer_ids = torch.cat([torch.full((d,), m) for m, d in enumerate(sizes[1:])])
        self.register_buffer("layer_onehot", nn.functional.one_hot(layer_ids, len(sizes) - 1).float(),
                             persistent=False)
        layers: list[nn.Module] = []
        widths = [self.width + len(sizes) - 1, *hidden]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), _RowBatchNorm(b), nn.ReLU()]
        self.rows = nn.Sequential(*layers)
        self.head = _mlp([widths[-1], 256, num_classes], dropout)

    def forward(self, ws: WeightSpace) -> Tensor:
        rows = _neuron_rows(self.input_norm(ws), self.width)
        onehot = self.layer_onehot.to(rows.dtype).expand(rows.shape[0], -1, -1)
        return self.head(self.rows(torch.cat([rows, onehot], dim=2)).max(dim=1).values)


class NeuronDeepSets(nn.Module):
    """DeepSets over each layer's neurons, exactly invariant to hidden permutations.

    A neuron of layer ``m`` is described by its bias, its incoming weights and its outgoing
    weights. Weights that connect to another hidden layer are sorted, since their order
    depends on that layer's permutation; weights to the fixed input or output layer keep
    their order. A shared MLP embeds each neuron (with a layer embedding), each layer is
    mean and max pooled, and an MLP classifies the concatenation.
    """

    def __init__(self, layer_sizes: Sequence[int], num_classes: int, hidden: int = 128) -> None:
        super().__init__()
        sizes = tuple(layer_sizes)
        self.input_norm = InputNormalization(sizes)
        self.sizes = sizes
        m_layers = len(sizes) - 1
        self.width = max(sizes[m] + sizes[m + 2] if m + 2 < len(sizes) else sizes[m] for m in range(m_layers)) + 1
        self.phi = _mlp([self.width + m_layers, hidden, hidden, hidden])
        self.rho = _mlp([2 * hidden * m_layers, 256, num_classes])

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


def build_model(name: str, layer_sizes: Sequence[int], num_classes: int, **kwargs: Any) -> nn.Module:
    """A model of the table by name (see :data:`MODEL_DEFAULTS`)."""
    if name == "dwsnet":
        args = {"hidden_channels": 32, "num_layers": 5, "head_hidden": (256,), "dropout": 0.0, "norm": "batch"}
        args.update(kwargs)
        return DWSNet(layer_sizes, num_classes, **args)
    if name in ("mlp", "mlp-aug"):
        return FlatMLP(layer_sizes, num_classes, **kwargs)
    if name == "mlp-align":
        return AlignedMLP(layer_sizes, num_classes, **kwargs)
    if name == "transformer":
        return NeuronTransformer(layer_sizes, num_classes, **kwargs)
    if name == "inr2vec":
        return Inr2VecEncoder(layer_sizes, num_classes, **kwargs)
    if name == "deepsets":
        return NeuronDeepSets(layer_sizes, num_classes, **kwargs)
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_DEFAULTS)}")
