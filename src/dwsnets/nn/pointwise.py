"""Entry-wise equivariant blocks: activations and dropout (and the plain MLP that heads use).

An entry-wise map commutes with every reordering of entries, so it is equivariant to
hidden-neuron permutations whatever it does to each entry:

* :class:`Entrywise` applies a function (an activation) to every entry;
* :class:`WSDropout` zeroes entries at random (equivariant in distribution), off in eval mode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ..core.weight_space import WeightSpace

__all__ = ["Entrywise", "WSDropout", "make_activation", "mlp"]

_ACTIVATIONS: dict[str, Callable[[bool], nn.Module]] = {
    "relu": lambda inplace: nn.ReLU(inplace=inplace),
    "gelu": lambda inplace: nn.GELU(),
    "silu": lambda inplace: nn.SiLU(inplace=inplace),
    "tanh": lambda inplace: nn.Tanh(),
    "leaky_relu": lambda inplace: nn.LeakyReLU(0.1, inplace=inplace),
}


def make_activation(name: str, inplace: bool = False) -> nn.Module:
    """``"relu"``, ``"gelu"``, ``"silu"``, ``"tanh"`` or ``"leaky_relu"`` as a module
    (in place where the activation supports it and ``inplace`` is set)."""
    try:
        return _ACTIVATIONS[name](inplace)
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}") from None


def mlp(widths: Sequence[int], dropout: float = 0.0, activation: str = "relu") -> nn.Sequential:
    """Linear layers of the given widths, with the activation (and dropout) between them.

    Shapes: ``(..., widths[0])`` -> ``(..., widths[-1])``. Invariant heads and the
    baselines read their pooled features through it.
    """
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class Entrywise(nn.Module):
    """Apply ``fn`` (a module or function of a tensor) to every entry of every tensor.

    Shapes: any ``WeightSpace`` -> the same shape. Equivariant for any entry-wise ``fn``.
    """

    def __init__(self, fn: nn.Module | Callable[[Tensor], Tensor] | str = "relu") -> None:
        super().__init__()
        if isinstance(fn, str):
            fn = make_activation(fn)
        self.fn = fn

    def forward(self, ws: WeightSpace) -> WeightSpace:
        return ws.map(self.fn)

    def forward_packed(self, slots: Sequence[Tensor]) -> list[Tensor]:
        """The same on packed slots (see :class:`~dwsnets.layout.Packing`)."""
        return [self.fn(x) for x in slots]

    def extra_repr(self) -> str:
        return "" if isinstance(self.fn, nn.Module) else getattr(self.fn, "__name__", repr(self.fn))


class WSDropout(nn.Module):
    """Entry-wise dropout on every tensor; the identity in eval mode."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, ws: WeightSpace) -> WeightSpace:
        if not self.training or self.p == 0.0:
            return ws
        return ws.map(lambda t: F.dropout(t, self.p, training=True))

    def forward_packed(self, slots: Sequence[Tensor]) -> list[Tensor]:
        if not self.training or self.p == 0.0:
            return list(slots)
        return [F.dropout(x, self.p, training=True) for x in slots]

    def extra_repr(self) -> str:
        return f"p={self.p}"
