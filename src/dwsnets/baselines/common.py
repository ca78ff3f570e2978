"""Pieces the baselines share."""

from __future__ import annotations

from collections.abc import Sequence

from ..core.layout import WeightSpaceLayout, as_layout
from ..nn.pointwise import mlp

__all__ = ["BaselineError", "mlp", "mlp_sizes"]


class BaselineError(ValueError):
    """A baseline cannot be built for this architecture."""


def mlp_sizes(layout: WeightSpaceLayout | Sequence[int], model: str) -> tuple[int, ...]:
    """The layer sizes of an MLP layout; a clear error for other architectures."""
    layout = as_layout(layout)
    if not layout.is_mlp:
        raise BaselineError(
            f"the {model} baseline reads MLP weights neuron by neuron and does not support {layout!r}; "
            "use dwsnet, statnn, statnn-gbt, mlp or mlp-aug for CNN weight spaces"
        )
    return layout.layer_sizes  # type: ignore[return-value]
