"""Equivariant building blocks that sit between :class:`~dwsnets.DWSLayer` s.

Every block here maps a :class:`~dwsnets.WeightSpace` to one of the same shape and commutes
with hidden-neuron permutations:

* :class:`Entrywise` applies a function to every entry (activations);
* :class:`WSDropout` zeroes entries at random (equivariant in distribution), off in eval mode;
* :class:`WSBatchNorm` normalises with statistics per tensor and channel, pooled over the
  batch and every entry of the tensor (per-entry statistics would break the symmetry);
* :class:`InputNormalization` standardises raw inputs with per-tensor, per-channel
  statistics measured once on a data set.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn
import torch.nn.functional as F

from .layout import WeightSpaceLayout
from .weight_space import WeightSpace, WeightSpaceError

__all__ = ["Entrywise", "WSDropout", "WSBatchNorm", "InputNormalization", "make_activation"]

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


def _entry_dims(t: Tensor) -> list[int]:
    return list(range(2, t.dim()))


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _batch_moments(x: Tensor, dims: list[int]) -> tuple[Tensor, Tensor]:
    """Per-feature (variance, mean) over ``dims``; across all processes when training under
    torch.distributed, so data-parallel training normalises like one process would."""
    if _world_size() == 1:
        return torch.var_mean(x, dim=dims, correction=0)
    from torch.distributed.nn.functional import all_reduce

    count = torch.full((1,), float(x.numel() // x.shape[-1]), dtype=x.dtype, device=x.device)
    sums = all_reduce(torch.cat([x.sum(dim=dims), (x * x).sum(dim=dims), count]))
    f = x.shape[-1]
    n = sums[-1]
    mean = sums[:f] / n
    return (sums[f : 2 * f] / n - mean * mean).clamp_min(0.0), mean


class WSBatchNorm(nn.Module):
    """Batch normalisation with one mean and variance per tensor and channel.

    Under torch.distributed the statistics are synchronised across processes.

    Statistics pool the batch and every entry of the tensor (hidden and fixed axes); the
    learnable scale and shift are per tensor and channel. Running averages are used in
    eval mode. Per-entry statistics would break the symmetry; these do not.

    Args:
        layout: MLP layer sizes or a :class:`WeightSpaceLayout`.
        channels: feature channels.
    """

    def __init__(
        self, layout: WeightSpaceLayout | Sequence[int], channels: int, eps: float = 1e-5, momentum: float = 0.1
    ) -> None:
        super().__init__()
        from .equivariant import as_layout

        self.layout = as_layout(layout)
        self.num_tensors, self.channels = len(self.layout.tensors), int(channels)
        self.eps, self.momentum = float(eps), float(momentum)
        self.weight = nn.Parameter(torch.ones(self.num_tensors, channels))
        self.bias = nn.Parameter(torch.zeros(self.num_tensors, channels))
        self.register_buffer("running_mean", torch.zeros(self.num_tensors, channels))
        self.register_buffer("running_var", torch.ones(self.num_tensors, channels))

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)
        self.running_mean.zero_()
        self.running_var.fill_(1.0)

    def forward(self, ws: WeightSpace) -> WeightSpace:
        if len(ws.tensors) != self.num_tensors or ws.channels != self.channels:
            raise WeightSpaceError(
                f"WSBatchNorm was built for {self.num_tensors} tensors with {self.channels} channels, "
                f"got {len(ws.tensors)} tensors with {ws.channels}"
            )
        packing = self.layout.packing
        return WeightSpace.from_tensors(
            packing.unpack(self.forward_packed(packing.pack(ws.tensors)), self.channels)
        )

    def forward_packed(self, slots: Sequence[Tensor]) -> list[Tensor]:
        packing = self.layout.packing
        c = self.channels
        out = []
        for slot, x in zip(packing.slots, slots):
            dims = list(range(x.dim() - 1))
            fixed = [self.layout.tensors[i].fixed_size for i in slot.members]
            idx = list(slot.members)
            if self.training:
                # per feature, then per (tensor, channel) over the tensor's fixed entries
                var_f, mean_f = _batch_moments(x, dims)
                means, variances = [], []
                for f, m_f, v_f in zip(fixed, mean_f.split([k * c for k in fixed]), var_f.split([k * c for k in fixed])):
                    m_f, v_f = m_f.view(f, c), v_f.view(f, c)
                    mean = m_f.mean(0)
                    means.append(mean)
                    variances.append((v_f + m_f * m_f).mean(0) - mean * mean)
                mean, var = torch.stack(means), torch.stack(variances)
                with torch.no_grad():
                    n = torch.tensor([x.numel() // x.shape[-1] * f * _world_size() for f in fixed],
                                     dtype=var.dtype, device=var.device)
                    unbiased = var * (n / (n - 1).clamp_min(1))[:, None]
                    self.running_mean[idx] = torch.lerp(self.running_mean[idx], mean.to(self.running_mean.dtype), self.momentum)
                    self.running_var[idx] = torch.lerp(self.running_var[idx], unbiased.to(self.running_var.dtype), self.momentum)
            else:
                mean, var = self.running_mean[idx], self.running_var[idx]
            scale = self.weight[idx] * torch.rsqrt(var + self.eps)  # (members, C)
            shift = self.bias[idx] - mean * scale
            scale_f = torch.cat([s.repeat(f) for s, f in zip(scale, fixed)])
            shift_f = torch.cat([s.repeat(f) for s, f in zip(shift, fixed)])
            out.append(torch.addcmul(shift_f, x, scale_f))
        return out

    def extra_repr(self) -> str:
        return f"num_tensors={self.num_tensors}, channels={self.channels}, eps={self.eps}, momentum={self.momentum}"


class InputNormalization(nn.Module):
    """Standardise raw weight spaces: ``(x - mean) / std`` per tensor and channel.

    The statistics are buffers fitted once on a data set with :meth:`fit` (the identity
    until then), so they travel with the model's ``state_dict``. Equivariant because every
    entry of a tensor shares one mean and one scale.
    """

    def __init__(self, layout: WeightSpaceLayout | Sequence[int], channels: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        from .equivariant import as_layout

        self.layout = as_layout(layout)
        self.channels = int(channels)
        self.eps = float(eps)
        n = len(self.layout.tensors)
        self.register_buffer("mean", torch.zeros(n, channels))
        self.register_buffer("std", torch.ones(n, channels))
        self.register_buffer("fitted", torch.tensor(False))

    @torch.no_grad()
    def fit(self, data: WeightSpace | Iterable[WeightSpace]) -> "InputNormalization":
        """Measure per-tensor, per-channel mean and std over a weight space or an iterable
        of batches (streamed, in float64)."""
        batches = [data] if isinstance(data, WeightSpace) else data
        n = len(self.layout.tensors)
        count = torch.zeros(n, dtype=torch.float64)
        total = torch.zeros(n, self.channels, dtype=torch.float64)
        total_sq = torch.zeros(n, self.channels, dtype=torch.float64)
        seen = False
        for ws in batches:
            if ws.channels != self.channels or len(ws.tensors) != n:
                raise WeightSpaceError(
                    f"InputNormalization expects {n} tensors with {self.channels} channel(s), got "
                    f"{len(ws.tensors)} with {ws.channels}"
                )
            for i, t in enumerate(ws.tensors):
                t = t.detach().to("cpu", torch.float64)
                dims = [0] + _entry_dims(t)
                count[i] += t.numel() // self.channels
                total[i] += t.sum(dim=dims)
                total_sq[i] += (t * t).sum(dim=dims)
            seen = True
        if not seen:
            raise WeightSpaceError("InputNormalization.fit got no data")
        mean = total / count[:, None]
        var = (total_sq / count[:, None] - mean**2).clamp_min(0.0)
        if not torch.isfinite(mean).all() or not torch.isfinite(var).all():
            raise WeightSpaceError("InputNormalization.fit: the data hold NaN or Inf values")
        self.mean.copy_(mean)
        self.std.copy_(var.sqrt().clamp_min(self.eps))
        self.fitted.fill_(True)
        return self

    def _check(self, ws: WeightSpace) -> None:
        if len(ws.tensors) != len(self.layout.tensors) or ws.channels != self.channels:
            raise WeightSpaceError(
                f"InputNormalization expects {len(self.layout.tensors)} tensors with {self.channels} "
                f"channel(s), got {len(ws.tensors)} with {ws.channels}"
            )

    def forward(self, ws: WeightSpace) -> WeightSpace:
        self._check(ws)
        out = []
        for i, t in enumerate(ws.tensors):
            shape = (1, self.channels) + (1,) * (t.dim() - 2)
            out.append((t - self.mean[i].to(t.dtype).view(shape)) / self.std[i].to(t.dtype).view(shape))
        return WeightSpace.from_tensors(out)

    def inverse(self, ws: WeightSpace) -> WeightSpace:
        """Map normalised values back to raw weights (for models that edit weights)."""
        self._check(ws)
        out = []
        for i, t in enumerate(ws.tensors):
            shape = (1, self.channels) + (1,) * (t.dim() - 2)
            out.append(t * self.std[i].to(t.dtype).view(shape) + self.mean[i].to(t.dtype).view(shape))
        return WeightSpace.from_tensors(out)

    def extra_repr(self) -> str:
        return f"tensors={len(self.layout.tensors)}, channels={self.channels}, fitted={bool(self.fitted)}"
