"""How a batch of networks computes: enough to run them at any inputs.

A weight model reads a network's parameters; a probing model runs the network. What it
needs to know is small and lives here, apart from where the networks came from:
:class:`NetworkFunction` says the kind of network (an MLP of stacked ``[W1, b1, ...]`` or a
CNN of the :meth:`~dwsnets.WeightSpaceLayout.cnn` layout), its hidden activation, the shape
of one input, and for CNNs the convolutions' stride and padding. Calling it runs ``N``
networks at ``K`` inputs in one batched forward (:mod:`dwsnets.core.forward`),
differentiable in the inputs, so inputs can be learned.

The activations are named as the symmetry registry names them (:mod:`dwsnets.core.symmetry`,
aliases included) and computed as the frameworks that trained the networks define them
(:func:`activation_function`); ``"sine"`` is a SIREN's ``sin(w0 z)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .forward import batched_cnn_forward, batched_mlp_forward
from .symmetry import SymmetryError, activation_properties

__all__ = ["ACTIVATION_FUNCTIONS", "NetworkFunction", "activation_function", "coordinate_grid"]

# the function of every activation of the symmetry registry (dwsnets.core.symmetry) that
# dwsnets can run, by its canonical name; aliases ("silu", "linear") resolve through that
# registry. Keras' selu, elu and gelu share torch's constants and exact forms. The sine
# needs its frequency: NetworkFunction runs it as sin(w0 z).
ACTIVATION_FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "selu": torch.selu,
    "elu": torch.nn.functional.elu,
    "gelu": torch.nn.functional.gelu,
    "softplus": torch.nn.functional.softplus,
    "swish": torch.nn.functional.silu,
    "identity": lambda x: x,
}


def canonical_activation(name: str) -> str:
    """The symmetry registry's name for ``name`` (an alias resolved); a ``ValueError`` for
    an activation no one declared."""
    try:
        return activation_properties(name).name
    except SymmetryError as exc:
        raise ValueError(str(exc)) from None


def activation_function(name: str) -> Callable[[Tensor], Tensor]:
    """The function of the activation recorded as ``name`` (or an alias of it); a
    ``ValueError`` naming the activations dwsnets can run otherwise."""
    canonical = canonical_activation(name)
    if canonical not in ACTIVATION_FUNCTIONS:
        raise ValueError(f"dwsnets cannot run the activation {name!r}: it runs sine, {', '.join(ACTIVATION_FUNCTIONS)}")
    return ACTIVATION_FUNCTIONS[canonical]


_KINDS = ("mlp", "cnn")


def coordinate_grid(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Grid of ``[-1, 1]^d`` including both ends: ``(prod(shape), d)`` coordinates,
    row-major (the last axis varies fastest), matching ``image.reshape(-1)``."""
    axes = [torch.linspace(-1.0, 1.0, s, dtype=dtype) for s in shape]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=1)


@dataclass(frozen=True)
class NetworkFunction:
    """How every network of a zoo computes.

    Attributes:
        kind: ``"mlp"`` (stacked ``[W1, b1, ...]``, the activation between layers) or
            ``"cnn"`` (convolutions, global average pooling, linear layers).
        activation: the hidden activation's name (:func:`activation_function`, or ``"sine"``).
        input_shape: one input's shape: ``(d_0,)`` for MLPs, ``(C, H, W)`` for CNNs.
        w0: the sine's frequency factor (``"sine"`` only).
        stride, padding: every convolution's (``"cnn"`` only).
        grid: the sizes of the regular grid on which the networks were fitted or scored,
            when there is one: an image INR's pixel grid ``(H, W)`` over ``[-1, 1]^2``, a
            CNN's input image ``(H, W)``. Rendering models read the networks there.
        domain: the interval the inputs were drawn from (every coordinate or pixel).
    """

    kind: str
    activation: str
    input_shape: tuple[int, ...]
    w0: float = 1.0
    stride: int = 1
    padding: int = 0
    grid: tuple[int, ...] | None = None
    domain: tuple[float, float] = (-1.0, 1.0)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"network kind must be one of {', '.join(_KINDS)}, got {self.kind!r}")
        if canonical_activation(self.activation) != "sine":
            activation_function(self.activation)  # a clear error for one dwsnets cannot run
        if self.kind == "cnn" and len(self.input_shape) != 3:
            raise ValueError(f"a CNN's input shape is (C, H, W), got {self.input_shape}")
        if self.kind == "mlp" and len(self.input_shape) != 1:
            raise ValueError(f"an MLP's input shape is (d_0,), got {self.input_shape}")

    @property
    def input_size(self) -> int:
        """Numbers in one input."""
        return math.prod(self.input_shape)

    def activation_fn(self) -> Callable[[Tensor], Tensor]:
        """The hidden activation as a function of a tensor."""
        if canonical_activation(self.activation) == "sine":
            w0 = self.w0
            return lambda z: torch.sin(w0 * z)
        return activation_function(self.activation)

    def grid_inputs(self) -> Tensor:
        """The grid an INR was fitted on, as ``(prod(grid), d_0)`` coordinates in ``[-1, 1]``
        (the order of ``image.reshape(-1)``): defined for MLPs of coordinates only."""
        if self.grid is None:
            raise ValueError("these networks record no grid of inputs")
        if self.kind != "mlp" or len(self.grid) != self.input_shape[0]:
            raise ValueError(f"a grid {self.grid} of coordinates needs an MLP of {len(self.grid)} inputs")
        return coordinate_grid(*self.grid)

    def flops(self, layer_sizes: Sequence[int], kernel_shapes: Sequence[Sequence[int]] | None = None) -> int:
        """Floating-point operations of one network at one input (a multiply-add counts two;
        activations and pooling not counted), the unit ProbeGen reports cost in.

        ``layer_sizes`` and ``kernel_shapes`` as a :class:`~dwsnets.WeightSpaceLayout` holds them."""
        kernels = list(kernel_shapes) if kernel_shapes is not None else [()] * (len(layer_sizes) - 1)
        total, spatial = 0, list(self.input_shape[1:]) if self.kind == "cnn" else []
        for d_in, d_out, kernel in zip(layer_sizes, layer_sizes[1:], kernels):
            if kernel:  # a convolution: every output position of every output channel
                spatial = [(s + 2 * self.padding - k) // self.stride + 1 for s, k in zip(spatial, kernel)]
                total += 2 * d_in * math.prod(kernel) * d_out * math.prod(spatial)
            else:
                total += 2 * d_in * d_out
        return int(total)

    def __call__(self, params: Sequence[Tensor], inputs: Tensor) -> Tensor:
        """Outputs of ``N`` networks at ``K`` inputs.

        Args:
            params: stacked parameters ``[W1, b1, ...]`` (leading axis ``N``).
            inputs: ``(K, *input_shape)`` shared by every network, or ``(N, K, *input_shape)``.

        Returns ``(N, K, d_out)``, differentiable in ``params`` and ``inputs``.
        """
        shape = tuple(inputs.shape[-len(self.input_shape) :])
        if shape != self.input_shape or inputs.dim() not in (len(shape) + 1, len(shape) + 2):
            raise ValueError(f"inputs of shape {tuple(inputs.shape)}: expected (K, {', '.join(map(str, self.input_shape))})"
                             f" or (N, K, ...)")  # fmt: skip
        if self.kind == "mlp":
            return batched_mlp_forward(inputs, params, self.activation_fn())
        return batched_cnn_forward(inputs, params, self.activation_fn(), stride=self.stride, padding=self.padding)
