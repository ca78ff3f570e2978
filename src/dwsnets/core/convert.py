"""Conversion between :class:`~dwsnets.WeightSpace` and PyTorch modules or ``state_dict``s.

Supported networks are feed-forward: ``nn.Linear`` layers (an MLP), or ``nn.Conv1d/2d/3d``
layers followed by global average pooling and ``nn.Linear`` layers (a CNN). Parameter-free
modules in between (activations, pooling, flattening) are allowed and ignored. Only the
order of the parametrised layers matters: layer ``m`` must take as many inputs (or input
channels) as layer ``m-1`` has outputs, which is exactly what global average pooling
keeps and flattening a spatial map does not.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from .weight_space import WeightSpace, WeightSpaceError

__all__ = ["from_modules", "from_state_dicts", "to_modules", "to_state_dicts"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_PARAMETRISED = (nn.Linear, *_CONVS)


def from_modules(modules: nn.Module | Sequence[nn.Module], *, dtype: torch.dtype | None = None) -> WeightSpace:
    """Stack networks into a weight space with ``C = 1``.

    Each network is any module whose parametrised parts are ``nn.Linear`` or ``nn.ConvNd``
    layers (groups 1), applied in registration order. Raises :class:`WeightSpaceError` for
    other parametrised modules, for layers that do not chain, and for networks of different
    architectures.
    """
    if isinstance(modules, nn.Module):
        modules = [modules]
    nets = []
    for i, module in enumerate(modules):
        if not isinstance(module, nn.Module):
            raise WeightSpaceError(f"network {i} is a {type(module).__name__}, not a torch.nn.Module")
        nets.append(_module_layers(module, i))
    return _stack(nets, dtype=dtype, what="network")


def from_state_dicts(
    state_dicts: Mapping[str, Tensor] | Sequence[Mapping[str, Tensor]], *, dtype: torch.dtype | None = None
) -> WeightSpace:
    """Stack ``state_dict``s: ``*.weight`` entries (2-D linear or higher-dimensional
    convolution weights) with their optional ``*.bias``, in order."""
    if isinstance(state_dicts, Mapping):
        state_dicts = [state_dicts]
    nets = [_state_dict_layers(sd, i) for i, sd in enumerate(state_dicts)]
    return _stack(nets, dtype=dtype, what="state dict")


def to_state_dicts(ws: WeightSpace, prefix_indices: Sequence[int] | None = None) -> list[dict[str, Tensor]]:
    """One ``state_dict`` per network (requires ``C = 1``).

    Keys are ``"{i}.weight"``/``"{i}.bias"`` with ``i = prefix_indices[m]`` (default
    ``0, 2, 4, ...``: a ``nn.Sequential`` alternating layers and activations).
    """
    params = ws.to_parameters()
    idx = list(prefix_indices) if prefix_indices is not None else [2 * m for m in range(ws.num_layers)]
    out = []
    for n in range(ws.batch_size):
        sd: dict[str, Tensor] = {}
        for m in range(ws.num_layers):
            sd[f"{idx[m]}.weight"] = params[2 * m][n].detach().clone()
            sd[f"{idx[m]}.bias"] = params[2 * m + 1][n].detach().clone()
        out.append(sd)
    return out


def to_modules(
    ws: WeightSpace,
    activation: Callable[[], nn.Module] | None = nn.ReLU,
    *,
    template: nn.Module | None = None,
) -> list[nn.Module]:
    """Rebuild one module per network (requires ``C = 1``).

    With ``template`` (e.g. one of the modules given to :func:`from_modules`), each network
    is a deep copy of it with its parametrised layers' weights replaced, so activations,
    strides and padding are kept. Otherwise an ``nn.Sequential`` with ``activation()``
    between layers (``None`` for none); a CNN gets ``padding="same"`` convolutions and
    global average pooling before its first linear layer.
    """
    params = ws.to_parameters()
    modules: list[nn.Module] = []
    for n in range(ws.batch_size):
        if template is not None:
            net = copy.deepcopy(template)
            layers = [m for m in net.modules() if isinstance(m, _PARAMETRISED)]
            if len(layers) != ws.num_layers:
                raise WeightSpaceError(
                    f"template has {len(layers)} parametrised layers, the weight space has {ws.num_layers}"
                )
        else:
            net, layers = _default_network(ws, activation)
        for m, layer in enumerate(layers):
            w, b = params[2 * m][n], params[2 * m + 1][n]
            if layer.weight.shape != w.shape:
                raise WeightSpaceError(
                    f"template layer {m} has weight shape {tuple(layer.weight.shape)}, expected {tuple(w.shape)}"
                )
            if layer.bias is None:
                raise WeightSpaceError(f"template layer {m} has no bias")
            with torch.no_grad():
                layer.weight.data = w.detach().clone().to(layer.weight.dtype)
                layer.bias.data = b.detach().clone().to(layer.bias.dtype)
        net.to(ws.device)
        modules.append(net)
    return modules


# ---------------------------------------------------------------------- helpers


def _default_network(ws: WeightSpace, activation: Callable[[], nn.Module] | None) -> tuple[nn.Module, list[nn.Module]]:
    sizes, kernels = ws.layer_sizes, ws.kernel_shapes
    parts: list[nn.Module] = []
    layers: list[nn.Module] = []
    for m in range(ws.num_layers):
        kernel = kernels[m]
        if kernel:
            if len(kernel) > 3:
                raise WeightSpaceError(f"layer {m} has a {len(kernel)}-D kernel; PyTorch has convolutions up to 3-D")
            layer: nn.Module = _CONVS[len(kernel) - 1](sizes[m], sizes[m + 1], kernel, padding="same")
        else:
            if m > 0 and kernels[m - 1]:
                parts += [_GLOBAL_POOLS[len(kernels[m - 1]) - 1](1), nn.Flatten()]
            layer = nn.Linear(sizes[m], sizes[m + 1])
        layers.append(layer)
        parts.append(layer)
        if m < ws.num_layers - 1 and activation is not None:
            parts.append(activation())
    return nn.Sequential(*parts), layers


_GLOBAL_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)


def _module_layers(module: nn.Module, i: int) -> list[tuple[Tensor, Tensor]]:
    layers = []
    for name, sub in module.named_modules():
        own = list(sub.parameters(recurse=False))
        if isinstance(sub, _PARAMETRISED):
            if isinstance(sub, _CONVS) and sub.groups != 1:
                raise WeightSpaceError(
                    f"network {i}: convolution '{name}' has groups={sub.groups}; only groups=1 is supported"
                )
            bias = sub.bias
            if bias is None:
                bias = torch.zeros(sub.weight.shape[0], dtype=sub.weight.dtype, device=sub.weight.device)
            layers.append((sub.weight, bias))
        elif own:
            raise WeightSpaceError(
                f"network {i} is not an MLP or CNN: module '{name or type(module).__name__}' "
                f"({type(sub).__name__}) has parameters; only nn.Linear and nn.Conv1d/2d/3d layers may"
            )
    if not layers:
        raise WeightSpaceError(f"network {i} has no nn.Linear or convolution layer")
    return layers


def _state_dict_layers(sd: Mapping[str, Tensor], i: int) -> list[tuple[Tensor, Tensor]]:
    if not isinstance(sd, Mapping):
        raise WeightSpaceError(f"state dict {i} is a {type(sd).__name__}, not a mapping")
    layers = []
    for key, value in sd.items():
        if not isinstance(value, Tensor):
            raise WeightSpaceError(f"state dict {i}: entry '{key}' is not a tensor")
        if key.endswith("weight"):
            if value.dim() < 2:
                raise WeightSpaceError(
                    f"state dict {i} is not an MLP or CNN: '{key}' has shape {tuple(value.shape)}, "
                    "expected a linear or convolution weight"
                )
            bias_key = key[: -len("weight")] + "bias"
            bias = sd.get(bias_key)
            if bias is None:
                bias = torch.zeros(value.shape[0], dtype=value.dtype, device=value.device)
            elif bias.shape != (value.shape[0],):
                raise WeightSpaceError(
                    f"state dict {i}: '{bias_key}' has shape {tuple(bias.shape)}, expected ({value.shape[0]},)"
                )
            layers.append((value, bias))
        elif key.endswith("bias"):
            if key[: -len("bias")] + "weight" not in sd:
                raise WeightSpaceError(f"state dict {i}: '{key}' has no matching weight")
        else:
            raise WeightSpaceError(f"state dict {i} is not an MLP or CNN: unexpected entry '{key}'")
    if not layers:
        raise WeightSpaceError(f"state dict {i} has no weight entries")
    return layers


def _architecture(layers: list[tuple[Tensor, Tensor]], i: int, what: str) -> tuple[tuple[int, ...], tuple]:
    """Layer sizes and kernel shapes of one network; checks that its layers chain and that
    no linear layer comes before a convolution."""
    sizes = [layers[0][0].shape[1]]
    kernels = []
    for m, (w, _) in enumerate(layers):
        if w.shape[1] != sizes[-1]:
            hint = ""
            if m > 0 and layers[m - 1][0].dim() > 2 and w.dim() == 2:
                hint = (
                    " (only CNNs with global average pooling before their linear layers are supported: "
                    "flattening a feature map gives each input of the linear layer its own position)"
                )
            raise WeightSpaceError(
                f"{what} {i}: layer {m} takes {w.shape[1]} inputs but the previous layer has {sizes[-1]} outputs{hint}"
            )
        if m > 0 and w.dim() > 2 and layers[m - 1][0].dim() == 2:
            raise WeightSpaceError(f"{what} {i}: convolution layer {m} follows a linear layer; not a supported CNN")
        sizes.append(w.shape[0])
        kernels.append(tuple(w.shape[2:]))
    return tuple(sizes), tuple(kernels)


def _describe(arch: tuple[tuple[int, ...], tuple]) -> str:
    sizes, kernels = arch
    return str(sizes) if all(k == () for k in kernels) else f"{sizes} with kernels {kernels}"


def _stack(nets: list[list[tuple[Tensor, Tensor]]], dtype: torch.dtype | None, what: str) -> WeightSpace:
    if not nets:
        raise WeightSpaceError(f"no {what}s given")
    arch0 = _architecture(nets[0], 0, what)
    for i, layers in enumerate(nets[1:], 1):
        arch = _architecture(layers, i, what)
        if arch != arch0:
            raise WeightSpaceError(
                f"mismatched architectures: {what} 0 has layer sizes {_describe(arch0)}, "
                f"{what} {i} has {_describe(arch)}"
            )
    params = []
    for m in range(len(nets[0])):
        for j in range(2):
            t = torch.stack([layers[m][j].detach() for layers in nets])
            params.append(t.to(dtype) if dtype is not None else t)
    return WeightSpace.from_parameters(params).check_finite(f"{what}s")
