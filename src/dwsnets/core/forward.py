"""Running a batch of MLPs given as stacked parameters: the one batched forward.

``N`` networks of one architecture, parameters ``[W1, b1, W2, b2, ...]`` with
``W_m: (N, d_m, d_{m-1})``, evaluate on shared or per-network inputs as batched matrix
products. SIRENs (:func:`dwsnets.inr.siren_forward`) and ReLU classifiers
(:func:`dwsnets.zoo.classifiers.classifier_forward`) are this with their activation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, baddbmm

from .weight_space import WeightSpace

__all__ = ["batched_mlp_forward"]


def batched_mlp_forward(
    x: Tensor, params: WeightSpace | Sequence[Tensor], activation: Callable[[Tensor], Tensor]
) -> Tensor:
    """Outputs of ``N`` MLPs at once.

    Args:
        x: ``(P, d_0)`` inputs shared by every network, or ``(N, P, d_0)`` per network.
        params: stacked ``[W1, b1, W2, b2, ...]`` or a one-channel
            :class:`~dwsnets.WeightSpace` of ``N`` networks.
        activation: applied after every layer but the last.

    Returns ``(N, P, d_M)``, differentiable in ``params`` and ``x``.
    """
    if isinstance(params, WeightSpace):
        params = params.to_parameters()
    n = params[0].shape[0]
    h = x.unsqueeze(0).expand(n, -1, -1) if x.dim() == 2 else x
    layers = len(params) // 2
    for m in range(layers):
        h = baddbmm(params[2 * m + 1].unsqueeze(1), h, params[2 * m].transpose(1, 2))
        if m < layers - 1:
            h = activation(h)
    return h
