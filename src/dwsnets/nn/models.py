"""DWSNet models: a stack of equivariant blocks with an invariant or an equivariant output.

* :class:`DWSNet` - weight space -> vector (classification, regression, embeddings);
  invariant to hidden-neuron permutations.
* :class:`EquivariantDWSNet` - weight space -> weight space (editing weights, predicting
  per-weight quantities); equivariant.

Both start with an :class:`~dwsnets.InputNormalization` (fit it on training data with
``model.input_norm.fit(...)``) and share :class:`DWSBackbone`:
``num_layers`` x [``DWSLayer`` -> optional ``WSBatchNorm`` -> activation -> dropout].
Inside the backbone the space stays packed in slots (:class:`~dwsnets.layout.Packing`):
it is converted once on the way in and once on the way out.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..core.layout import WeightSpaceLayout, as_layout
from ..core.weight_space import WeightSpace
from .encoding import ENCODINGS, FourierEncoding
from .equivariant import DWSLayer
from .invariant import STATISTICS, InvariantHead, tensor_statistics
from .norm import InputNormalization, WSBatchNorm, recompute_normalised
from .pointwise import Entrywise, WSDropout, make_activation

__all__ = ["DWSBackbone", "DWSNet", "EquivariantDWSNet", "WeightSpaceModel"]

_NORMS = (None, "none", "batch")


def _is_relu(block: nn.Module) -> bool:
    return isinstance(block, Entrywise) and type(block.fn) is nn.ReLU


class WeightSpaceModel(nn.Module):
    """The contract between a model of networks and the trainer (every registry model keeps it).

    Attributes:
        input_norm: an :class:`~dwsnets.InputNormalization` applied to the raw weights first;
            the trainer fits its per-tensor statistics on the training split before training.

    :meth:`preprocess` maps a whole split once, before any batch is drawn from it (the
    identity here; weight alignment to a reference network overrides it). ``forward`` maps a
    :class:`~dwsnets.WeightSpace` batch to a tensor ``(B, out)`` or to a weight space.
    """

    input_norm: InputNormalization

    @property
    def sign_invariant(self) -> bool:
        """Whether the output stays the same when any hidden neuron is negated (incoming
        weights, bias and outgoing weights): a symmetry of odd activations only, so such a
        model cannot tell a ReLU network from its sign-flipped twin. ``False`` here."""
        return False

    def preprocess(self, ws: WeightSpace) -> WeightSpace:
        """A whole split as the model consumes it (the identity unless a model says otherwise)."""
        return ws


class DWSBackbone(nn.Module):
    """``num_layers`` equivariant blocks from ``in_channels`` to ``hidden_channels``.

    A batch norm followed by a ReLU runs as one fused step (:meth:`WSBatchNorm.forward_packed`);
    the modules, and so the ``state_dict``, are the same either way.

    Shapes: ``WeightSpace (B, in_channels, ...)`` -> ``(B, hidden_channels, ...)``.
    """

    def __init__(
        self,
        layout: WeightSpaceLayout | Sequence[int],
        in_channels: int = 1,
        hidden_channels: int = 32,
        num_layers: int = 4,
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
        self.layout = as_layout(layout)
        blocks: list[nn.Module] = []
        channels = in_channels
        for _ in range(num_layers):
            blocks.append(DWSLayer(self.layout, channels, hidden_channels))
            if norm == "batch":
                blocks.append(WSBatchNorm(self.layout, hidden_channels))
            # in place: every layer and norm returns freshly allocated slots
            blocks.append(Entrywise(make_activation(activation, inplace=True)))
            if dropout > 0:
                blocks.append(WSDropout(dropout))
            channels = hidden_channels
        self.blocks = nn.Sequential(*blocks)
        self.in_channels = in_channels
        self.out_channels = hidden_channels

    def forward_packed(self, ws: WeightSpace) -> list[Tensor]:
        """Run the blocks and return the output still packed in slots. When training, the
        fused batch norms' outputs are rebuilt in the backward pass rather than kept
        (:func:`~dwsnets.nn.norm.recompute_normalised`; the same gradients, bit for bit)."""
        first = self.blocks[0]
        first.check_input(ws.tensors)
        slots = first.packing.pack(ws.tensors)
        if self.training and torch.is_grad_enabled():
            with recompute_normalised():
                return self._run_blocks(slots)
        return self._run_blocks(slots)

    def _run_blocks(self, slots: list[Tensor]) -> list[Tensor]:
        blocks = list(self.blocks)
        i = 0
        while i < len(blocks):
            block = blocks[i]
            if isinstance(block, WSBatchNorm) and i + 1 < len(blocks) and _is_relu(blocks[i + 1]):
                slots = block.forward_packed(slots, relu=True)  # batch norm and ReLU fused
                i += 2
                continue
            slots = block.forward_packed(slots)
            i += 1
        return slots

    def forward(self, ws: WeightSpace) -> WeightSpace:
        slots = self.forward_packed(ws)
        return WeightSpace.from_tensors(self.layout.packing.unpack(slots, self.out_channels))


class DWSNet(WeightSpaceModel):
    """Invariant DWSNet: equivariant backbone, invariant pooling, MLP head.

    Args:
        layer_sizes: sizes ``(d_0, ..., d_M)`` of the input MLPs (or a layout).
        out_features: output size (number of classes, targets or embedding size).
        hidden_channels: width of the equivariant layers.
        num_layers: number of equivariant layers.
        head_hidden: widths of the MLP after invariant pooling.
        dropout: entry-wise dropout in the backbone and dropout in the head.
        norm: ``None`` or ``"batch"`` (per tensor and channel statistics).
        in_channels: channels of the input space (1 for raw networks).
        input_statistics: also give the head the mean, variance and quantiles of every
            (normalised) input tensor, standardised: order-free statistics that the
            backbone's mean pooling would need depth to approximate (StatNN's features).
        input_encoding: ``None``, ``"fourier"`` or ``"fourier-even"``: every normalised
            weight value encoded by :class:`~dwsnets.nn.encoding.FourierEncoding` before the
            first layer (``fourier_features`` frequencies of standard deviation
            ``fourier_scale``). ``"fourier-even"`` forgets every entry's sign, which makes the
            model invariant to the sine's sign symmetry as well.

    Shapes: ``WeightSpace (B, in_channels, ...)`` -> ``(B, out_features)``.
    Symmetry contract: invariant to permutations of every hidden layer's neurons; with
    ``input_encoding="fourier-even"`` (and no ``input_statistics``) also to negating any
    hidden neuron (incoming weights, bias and outgoing weights), and to any other change of
    entries' signs.
    """

    def __init__(
        self,
        layer_sizes: WeightSpaceLayout | Sequence[int],
        out_features: int,
        *,
        hidden_channels: int = 32,
        num_layers: int = 4,
        head_hidden: Sequence[int] = (256,),
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str | None = None,
        in_channels: int = 1,
        input_statistics: bool = False,
        input_encoding: str | None = None,
        fourier_features: int = 32,
        fourier_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.layout = as_layout(layer_sizes)
        # the even encoding reads each value's sign-free size: scaled, not centred
        self.input_norm = InputNormalization(self.layout, in_channels, center=input_encoding != "fourier-even")
        if input_encoding not in (None, *ENCODINGS):
            raise ValueError(f"input_encoding must be None or one of {', '.join(ENCODINGS)}, got {input_encoding!r}")
        self.encoding = (
            None if input_encoding is None
            else FourierEncoding(in_channels, fourier_features, fourier_scale, even=input_encoding == "fourier-even")
        )  # fmt: skip
        backbone_in = in_channels if self.encoding is None else self.encoding.out_channels
        self.backbone = DWSBackbone(
            self.layout, backbone_in, hidden_channels, num_layers, activation=activation, dropout=dropout, norm=norm
        )
        n_stats = len(self.layout.tensors) * in_channels * len(STATISTICS) if input_statistics else 0
        # the input's per-tensor statistics, standardised, beside the pooled features
        self.statistics_norm = nn.BatchNorm1d(n_stats, affine=False) if input_statistics else None
        self.head = InvariantHead(self.layout, hidden_channels, out_features, hidden=head_hidden, activation=activation,
                                  dropout=dropout, extra_features=n_stats)  # fmt: skip

    @property
    def sign_invariant(self) -> bool:
        """True with the even input encoding and no input statistics (every entry's sign
        forgotten before the first layer; the statistics' means would still see it)."""
        return self.encoding is not None and self.encoding.even and self.statistics_norm is None

    def _encoded(self, normed: WeightSpace) -> WeightSpace:
        return normed if self.encoding is None else self.encoding(normed)

    def _statistics(self, normed: WeightSpace) -> Tensor | None:
        if self.statistics_norm is None:
            return None
        return self.statistics_norm(tensor_statistics(normed))

    def embed(self, ws: WeightSpace) -> Tensor:
        """Invariant features before the head's MLP: ``(B, hidden_channels * n_invariant)``
        (feature order of :class:`~dwsnets.InvariantPooling`), then the input statistics
        when the model uses them."""
        normed = self.input_norm(ws)
        return self.head.features_packed(self.backbone.forward_packed(self._encoded(normed)), self._statistics(normed))

    def forward(self, ws: WeightSpace) -> Tensor:
        """``WeightSpace (B, in_channels, ...)`` -> ``(B, out_features)``. The same as
        ``self.head(self.backbone(self.input_norm(ws)))``, without unpacking in between
        (with ``input_statistics``, the input's :func:`~dwsnets.nn.invariant.tensor_statistics`
        join the pooled features)."""
        normed = self.input_norm(ws)
        return self.head.forward_packed(self.backbone.forward_packed(self._encoded(normed)), self._statistics(normed))


class EquivariantDWSNet(WeightSpaceModel):
    """Equivariant DWSNet: weight space in, weight space out (same layer sizes).

    Args:
        layer_sizes: sizes of the input MLPs (or a layout).
        out_channels: channels of the output space (1 gives one network per input).
        residual: add the output to the input (``out_channels`` must equal ``in_channels``),
            so the model learns an edit of the weights. Outputs are mapped back to raw scale
            through the input normalisation's inverse.
        other arguments: as for :class:`DWSNet`.

    Shapes: ``WeightSpace (B, in_channels, ...)`` -> ``WeightSpace (B, out_channels, ...)``.
    Symmetry contract: ``model(ws.permute(p)) == model(ws).permute(p)``.
    """

    def __init__(
        self,
        layer_sizes: WeightSpaceLayout | Sequence[int],
        out_channels: int = 1,
        *,
        hidden_channels: int = 32,
        num_layers: int = 4,
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str | None = None,
        in_channels: int = 1,
        residual: bool = False,
    ) -> None:
        super().__init__()
        if residual and out_channels != in_channels:
            raise ValueError(f"residual output needs out_channels == in_channels, got {out_channels} and {in_channels}")
        self.layout = as_layout(layer_sizes)
        self.residual = residual
        self.input_norm = InputNormalization(self.layout, in_channels)
        self.backbone = DWSBackbone(
            self.layout, in_channels, hidden_channels, num_layers, activation=activation, dropout=dropout, norm=norm
        )
        self.output = DWSLayer(self.layout, hidden_channels, out_channels)
        if residual:
            # start as the identity edit
            for p in self.output.parameters():
                nn.init.zeros_(p)

    def forward(self, ws: WeightSpace) -> WeightSpace:
        normed = self.input_norm(ws)
        slots = self.output.forward_packed(self.backbone.forward_packed(normed))
        out = WeightSpace.from_tensors(self.layout.packing.unpack(slots, self.output.out_channels))
        if self.residual:
            out = normed + out
        return self.input_norm.inverse(out) if self.residual else out
