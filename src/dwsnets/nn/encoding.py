"""Encodings of every weight value: each scalar of a weight space becomes a short vector of
channels before the equivariant layers see it.

An encoding acts on each entry alone, the same way everywhere, so it commutes with every
rearrangement of entries: hidden-neuron permutations among them. The even variant is in
addition unchanged when any entry changes sign, so a model that reads only its output is
invariant to the sine's sign symmetry (negating a SIREN neuron's incoming weights, bias
and outgoing weights) by construction.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..core.weight_space import WeightSpace

__all__ = ["ENCODINGS", "FourierEncoding"]

ENCODINGS = ("fourier", "fourier-even")


class FourierEncoding(nn.Module):
    """Random Fourier features of every weight value (Tancik et al. 2020; NFN's best
    configuration encodes weights this way).

    Each value ``x`` of each input channel becomes ``[x, sin(2 pi b_k x), cos(2 pi b_k x)]``
    for ``k = 1..features``, with frequencies ``b_k ~ N(0, scale^2)`` drawn once and kept
    fixed (a buffer, saved with the model). With ``even=True`` it becomes ``[|x|,
    cos(2 pi b_k x)]``: every channel is an even function of ``x``, of the form ``f(x) +
    f(-x)``, so the encoding forgets each entry's sign.

    Args:
        in_channels: channels of the input weight space.
        features: number of frequencies ``k``.
        scale: standard deviation of the frequencies, in units of the input's values (the
            models apply it after their input normalisation: one per standard deviation).
        even: the sign-invariant variant.

    Shapes: ``WeightSpace (B, in_channels, ...)`` -> ``WeightSpace (B, out_channels, ...)``
    with ``out_channels = in_channels * (1 + features)`` when ``even`` else
    ``in_channels * (1 + 2 * features)``.
    Symmetry contract: entry-wise, so equivariant to hidden permutations; with ``even``,
    invariant to the sign of every entry.
    """

    def __init__(self, in_channels: int, features: int = 32, scale: float = 1.0, even: bool = False) -> None:
        super().__init__()
        if features < 1:
            raise ValueError(f"a Fourier encoding needs at least one frequency, got features={features}")
        if not scale > 0:
            raise ValueError(f"the frequencies' scale must be positive, got {scale}")
        self.in_channels = in_channels
        self.features = features
        self.scale = scale
        self.even = even
        self.register_buffer("frequencies", torch.empty(features))
        self.reset_parameters()

    @property
    def out_channels(self) -> int:
        return self.in_channels * (1 + (1 if self.even else 2) * self.features)

    def reset_parameters(self) -> None:
        """Draw the frequencies again (from torch's global generator, as layers' weights are)."""
        with torch.no_grad():
            self.frequencies.normal_(0.0, self.scale)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, features={self.features}, scale={self.scale}, even={self.even}"

    def _encode(self, t: Tensor) -> Tensor:
        """``(B, C, *entries)`` -> ``(B, C * per_channel, *entries)``, channel-major."""
        b, _, *entries = t.shape
        angles = (2 * math.pi) * t.unsqueeze(2) * self.frequencies.view(1, 1, -1, *[1] * len(entries))
        parts = (
            [t.abs().unsqueeze(2), torch.cos(angles)]
            if self.even
            else [t.unsqueeze(2), torch.sin(angles), torch.cos(angles)]
        )
        return torch.cat(parts, dim=2).reshape(b, -1, *entries)

    def forward(self, ws: WeightSpace) -> WeightSpace:
        if ws.channels != self.in_channels:
            raise ValueError(f"the Fourier encoding expects {self.in_channels} input channel(s), got {ws.channels}")
        return ws.map(self._encode)
