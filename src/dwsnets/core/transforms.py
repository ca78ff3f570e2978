"""Exact transforms of what a network computes, written as maps of its weights.

For an MLP ``f(x) = g(W_1 x + b_1)`` (any activations; a SIREN's first layer is
``sin(w0 (W_1 x + b_1))``), evaluating on transformed inputs ``A x + t`` is the same
network with

    W_1 <- W_1 A        b_1 <- b_1 + W_1 t

and an output change ``a f(x) + c`` is ``W_M <- a W_M``, ``b_M <- a b_M + c``. For an INR
of an image, ``A`` and ``t`` are rotations, scalings, shears, flips and translations of
the image, and ``a``, ``c`` change its contrast and brightness. Both maps are linear in the
weights and commute with hidden-neuron permutations (they touch only the fixed input
columns of ``W_1`` and the fixed output rows of ``W_M``), so they are augmentations that
change the data exactly as a transform of the underlying signal would.
"""

from __future__ import annotations

from torch import Tensor

from .weight_space import WeightSpace, WeightSpaceError

__all__ = ["transform_inputs", "transform_outputs"]


def _require_mlp(ws: WeightSpace, what: str) -> None:
    if any(k != () for k in ws.kernel_shapes):
        raise WeightSpaceError(f"{what} needs an MLP; a convolution's inputs are images, not coordinates")


def transform_inputs(ws: WeightSpace, matrix: Tensor, shift: Tensor | None = None) -> WeightSpace:
    """The networks that compute ``x -> f(A x + t)``.

    Args:
        ws: MLPs with input size ``d_0`` (any channel count).
        matrix: ``A``, ``(d_0, d_0)`` for every network or ``(B, d_0, d_0)`` one each.
        shift: ``t``, ``(d_0,)`` or ``(B, d_0)``; default zero.
    """
    _require_mlp(ws, "transform_inputs")
    d0 = ws.layer_sizes[0]
    if matrix.shape[-2:] != (d0, d0) or matrix.dim() not in (2, 3):
        raise WeightSpaceError(
            f"the input transform must be ({d0}, {d0}) or (B, {d0}, {d0}), got {tuple(matrix.shape)}"
        )
    w1 = ws.weights[0]  # (B, C, d_1, d_0)
    a = matrix.to(w1.dtype).to(w1.device)
    a = a[:, None] if a.dim() == 3 else a  # (B, 1, d_0, d_0) broadcasts over channels
    weights = [w1 @ a, *ws.weights[1:]]
    biases = list(ws.biases)
    if shift is not None:
        t = shift.to(w1.dtype).to(w1.device)
        t = t[:, None, :, None] if t.dim() == 2 else t[:, None]  # (B, 1, d_0, 1) or (d_0, 1)
        biases[0] = biases[0] + (w1 @ t)[..., 0]
    return WeightSpace(weights, biases)


def transform_outputs(ws: WeightSpace, scale: Tensor | float, offset: Tensor | float = 0.0) -> WeightSpace:
    """The networks that compute ``x -> a f(x) + c``; ``scale`` (``a``) and ``offset``
    (``c``) are numbers or ``(B,)`` tensors (one per network)."""
    _require_mlp(ws, "transform_outputs")
    weights, biases = list(ws.weights), list(ws.biases)
    w, b = weights[-1], biases[-1]

    def per_network(x: Tensor | float, dims: int) -> Tensor | float:
        if isinstance(x, Tensor) and x.dim() == 1:
            return x.to(w.dtype).to(w.device).view(-1, *([1] * dims))
        return x

    weights[-1] = w * per_network(scale, w.dim() - 1)
    biases[-1] = b * per_network(scale, b.dim() - 1) + per_network(offset, b.dim() - 1)
    return WeightSpace(weights, biases)
