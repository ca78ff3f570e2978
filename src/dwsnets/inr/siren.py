"""SIREN (Sitzmann et al., 2020): an MLP with sine activations.

``h_{m} = sin(w0 * (W_m h_{m-1} + b_m))`` for every layer but the last, which is linear.
Initialisation follows the SIREN paper: first-layer weights uniform in
``[-1/d_in, 1/d_in]``, later weights uniform in ``[-sqrt(6/d_in)/w0, sqrt(6/d_in)/w0]``,
biases uniform in ``[-1/sqrt(d_in), 1/sqrt(d_in)]`` (PyTorch's ``nn.Linear`` default,
as in the reference implementation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..core.forward import batched_mlp_forward
from ..core.function import coordinate_grid
from ..core.weight_space import WeightSpace

__all__ = ["INIT_RECIPES", "Sine", "Siren", "coordinate_grid", "siren_forward", "siren_init"]


class Sine(nn.Module):
    """``x -> sin(w0 * x)``."""

    def __init__(self, w0: float = 30.0) -> None:
        super().__init__()
        self.w0 = float(w0)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.w0 * x)

    def extra_repr(self) -> str:
        return f"w0={self.w0}"


class Siren(nn.Sequential):
    """A SIREN as ``nn.Sequential(Linear, Sine, Linear, Sine, ..., Linear)``.

    Its ``nn.Linear`` layers are exactly the tensors stored in an INR zoo, so
    ``Siren.from_weight_space(ws[i])`` evaluates a stored INR and
    ``WeightSpace.from_modules`` reads SIRENs back.

    Args:
        layer_sizes: ``(d_in, hidden..., d_out)``; default ``(2, 32, 32, 1)`` for images.
        w0: frequency factor of every sine (30 in the SIREN paper).
        recipe: initialisation, ``"siren"`` or ``"paper"`` (:func:`siren_init`).
    """

    def __init__(
        self,
        layer_sizes: Sequence[int] = (2, 32, 32, 1),
        w0: float = 30.0,
        generator: torch.Generator | None = None,
        recipe: str = "siren",
    ) -> None:
        sizes = tuple(int(s) for s in layer_sizes)
        layers: list[nn.Module] = []
        for m, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if m < len(sizes) - 2:
                layers.append(Sine(w0))
        super().__init__(*layers)
        self.layer_sizes = sizes
        self.w0 = float(w0)
        params = siren_init(sizes, 1, w0, generator=generator, recipe=recipe)
        with torch.no_grad():
            for m, lin in enumerate(self.linears()):
                lin.weight.copy_(params[2 * m][0])
                lin.bias.copy_(params[2 * m + 1][0])

    def linears(self) -> list[nn.Linear]:
        return [m for m in self if isinstance(m, nn.Linear)]

    @classmethod
    def from_weight_space(cls, ws: WeightSpace, index: int = 0, w0: float = 30.0) -> Siren:
        """The SIREN stored at batch ``index`` of a one-channel weight space."""
        net = cls(ws.layer_sizes, w0)
        single = ws[index]
        with torch.no_grad():
            for m, lin in enumerate(net.linears()):
                lin.weight.copy_(single.weights[m][0, 0])
                lin.bias.copy_(single.biases[m][0, 0])
        return net.to(ws.device, ws.dtype)


INIT_RECIPES = ("siren", "paper")


def siren_init(
    layer_sizes: Sequence[int],
    n: int,
    w0: float = 30.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    recipe: str = "siren",
) -> list[Tensor]:
    """Initial parameters for ``n`` networks: ``[W1, b1, W2, b2, ...]`` with
    ``W_m: (n, d_m, d_{m-1})`` and ``b_m: (n, d_m)``.

    ``recipe="siren"``: the SIREN paper's (first layer ``U(+-1/d_in)``, later layers
    ``U(+-sqrt(6/d_in)/w0)``, biases ``U(+-1/sqrt(d_in))``). ``recipe="paper"``: the INRs of
    the DWSNets paper, by its maintainers' account: every layer, the first included,
    ``U(+-sqrt(6/d_in)/w0)``, biases zero, and the output offset by +0.5 (here: the last
    bias starts at 0.5, which computes the same and trains the same). Its first layer
    starts at low frequencies and must move further from its initialisation to fit.
    """
    if recipe not in INIT_RECIPES:
        raise ValueError(f"unknown SIREN initialisation {recipe!r}; choose from {', '.join(INIT_RECIPES)}")
    sizes = tuple(layer_sizes)
    out = []
    layers = len(sizes) - 1
    for m, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = 1.0 / a if m == 0 and recipe == "siren" else math.sqrt(6.0 / a) / w0
        out.append((torch.rand(n, b, a, generator=generator, dtype=dtype) * 2 - 1) * bound)
        if recipe == "siren":
            bias_bound = 1.0 / math.sqrt(a)
            out.append((torch.rand(n, b, generator=generator, dtype=dtype) * 2 - 1) * bias_bound)
        else:
            out.append(torch.full((n, b), 0.5 if m == layers - 1 else 0.0, dtype=dtype))
    return out


def siren_forward(coords: Tensor, params: WeightSpace | Sequence[Tensor], w0: float = 30.0) -> Tensor:
    """Evaluate a batch of SIRENs at once: the one batched SIREN forward of the package.

    Args:
        coords: ``(P, d_0)`` points shared by every INR, or ``(N, P, d_0)`` per INR.
        params: stacked ``[W1, b1, W2, b2, ...]`` (``W_m: (N, d_m, d_{m-1})``) or a
            one-channel :class:`~dwsnets.WeightSpace` of ``N`` INRs.
        w0: the sine's frequency factor.

    Returns ``(N, P, d_M)``. Differentiable in ``params`` (and ``coords``), so a loss on
    what an INR renders can train a model that edits its weights.
    """
    return batched_mlp_forward(coords, params, lambda z: torch.sin(w0 * z))
