"""Running a batch of networks given as stacked parameters: the batched forwards.

``N`` MLPs of one architecture, parameters ``[W1, b1, W2, b2, ...]`` with
``W_m: (N, d_m, d_{m-1})``, evaluate on shared or per-network inputs as batched matrix
products. SIRENs (:func:`dwsnets.inr.siren_forward`) and ReLU classifiers
(:func:`dwsnets.zoo.classifiers.classifier_forward`) are this with their activation.
``N`` CNNs (convolutions, global average pooling, then linear layers: the layout of
:meth:`~dwsnets.WeightSpaceLayout.cnn`) evaluate as grouped convolutions, one group per
network (:func:`batched_cnn_forward`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, baddbmm

from .weight_space import WeightSpace

__all__ = ["batched_cnn_forward", "batched_mlp_forward"]


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


def batched_cnn_forward(
    x: Tensor,
    params: Sequence[Tensor],
    activation: Callable[[Tensor], Tensor],
    *,
    stride: int = 2,
    padding: int = 0,
    dropout: Callable[[int, Tensor], Tensor] | None = None,
) -> Tensor:
    """Logits of ``N`` CNNs at once: each convolution, then ``activation`` (then
    ``dropout``), global average pooling, then linear layers with ``activation`` between.

    Args:
        x: ``(B, C, H, W)`` images shared by every network, or ``(N, B, C, H, W)`` per
            network.
        params: stacked ``[K1, b1, ..., KL, bL, W1, c1, ...]``: kernels ``(N, c_out, c_in, kh, kw)``
            (PyTorch's order), then linear weights ``(N, d_out, d_in)``; biases ``(N, d)``.
        stride, padding: of every convolution (the Small CNN Zoo's: stride 2 and Keras' default
            padding ``'valid'``, 0; a zoo's manifest records its own, ``Zoo.networks``).
        dropout: ``dropout(layer, h)`` applied to each convolution's activated output
            ``h: (B, N * c, H', W')`` (channels of network ``n`` at ``n*c .. n*c+c-1``).

    Returns ``(N, B, d_out)``, differentiable in ``params``.
    """
    convs = [k for k in range(0, len(params), 2) if params[k].dim() == 5]
    n = params[0].shape[0]
    if x.dim() == 5:  # per-network images: one group of input channels per network
        h = x.transpose(0, 1).reshape(x.shape[1], n * x.shape[2], *x.shape[3:])
    else:
        h = x
    h = h.contiguous(memory_format=torch.channels_last)  # the faster layout for grouped convolutions (measured)
    for layer, k in enumerate(convs):
        kernel, bias = params[k], params[k + 1]
        c_out, c_in = kernel.shape[1], kernel.shape[2]
        # per-network channels: one group per network; shared images: an ordinary convolution
        groups = n if h.shape[1] == n * c_in else 1
        weight = kernel.reshape(n * c_out, c_in, *kernel.shape[3:])
        h = activation(torch.nn.functional.conv2d(h, weight, bias.reshape(-1), stride=stride, padding=padding,
                                                  groups=groups))  # fmt: skip
        if dropout is not None:
            h = dropout(layer, h)
    b = h.shape[0]
    h = h.mean((2, 3)).view(b, n, -1).transpose(0, 1)  # (N, B, c_L)
    linear = list(range(len(convs) * 2, len(params), 2))
    for j, k in enumerate(linear):
        h = baddbmm(params[k + 1].unsqueeze(1), h, params[k].transpose(1, 2))
        if j < len(linear) - 1:
            h = activation(h)
    return h
