"""Normalisation that respects the weight-space symmetry.

Statistics must be shared by every entry that a hidden permutation can move, so both
blocks here use one mean and one scale per tensor and channel:

* :class:`WSBatchNorm` normalises with batch statistics pooled over the batch and every
  entry of the tensor (per-entry statistics would break the symmetry);
* :class:`InputNormalization` standardises raw inputs with per-tensor, per-channel
  statistics measured once on a data set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ..core.layout import WeightSpaceLayout, as_layout
from ..core.weight_space import WeightSpace, WeightSpaceError
from ..utils import world_size

__all__ = ["InputNormalization", "WSBatchNorm"]


def _entry_dims(t: Tensor) -> list[int]:
    return list(range(2, t.dim()))


def _to_groups(per_feature: Tensor, fixed: tuple[int, ...], channels: int, reduce: str = "sum") -> Tensor:
    """``(F,)`` per-feature values of a slot -> ``(members, C)``, reduced over each member's
    fixed entries (the slot's last axis is member-major, then fixed entry, then channel)."""
    parts = per_feature.split([f * channels for f in fixed])
    op = torch.sum if reduce == "sum" else torch.mean
    return torch.stack([op(p.view(f, channels), dim=0) for p, f in zip(parts, fixed)])


def _to_features(per_group: Tensor, fixed: tuple[int, ...]) -> Tensor:
    """``(members, C)`` -> ``(F,)``: each member's values repeated over its fixed entries."""
    return torch.cat([g.repeat(f) for g, f in zip(per_group, fixed)])


def _all_reduce_sum(t: Tensor) -> Tensor:
    import torch.distributed as dist

    dist.all_reduce(t)
    return t


class _SlotBatchNorm(torch.autograd.Function):
    """Training-mode batch norm of one packed slot ``x (..., F)`` with one mean and
    variance per (member tensor, channel), pooled over every leading axis and the member's
    fixed entries; across processes under torch.distributed (synchronised batch norm).

    Returns ``(y, mean, unbiased_var)`` with the statistics of shape ``(members, C)`` (not
    differentiable; for the running averages), counted over every process's rows. Statistics are two-pass (per-feature means, then the centred
    ``d = x - mean_f``, whose per-feature dot products are BLAS reductions). ``d`` is the
    only full-size tensor kept for backward, which writes ``dx = a * dy + b * d + c`` with
    per-feature coefficients after two reductions."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, fixed: tuple[int, ...], eps: float):  # type: ignore[override]
        c = weight.shape[1]
        stat_dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        x2 = x.reshape(-1, x.shape[-1])
        distributed = world_size() > 1
        sums = x2.sum(dim=0, dtype=stat_dtype)
        rows = float(x2.shape[0])
        if distributed:
            count = torch.full((1,), rows, dtype=stat_dtype, device=x.device)
            both = _all_reduce_sum(torch.cat([sums, count]))
            sums, rows = both[:-1], float(both[-1])
        mean_f = sums / rows
        d = x2 - mean_f.to(x.dtype)
        ds = d if d.dtype == stat_dtype else d.to(stat_dtype)
        sq = torch.linalg.vecdot(ds, ds, dim=0)
        if distributed:
            sq = _all_reduce_sum(sq)
        var_f = sq / rows
        mean = _to_groups(mean_f, fixed, c, "mean")
        delta_f = mean_f - _to_features(mean, fixed)  # feature mean - its group's mean
        # total variance = mean of within-feature variances + variance of feature means
        var = _to_groups(var_f + delta_f * delta_f, fixed, c, "mean")
        rstd = torch.rsqrt(var + eps)
        scale_f = _to_features(weight.to(stat_dtype) * rstd, fixed)
        shift_f = _to_features(bias.to(stat_dtype), fixed) + scale_f * delta_f
        # a base tensor, not a view, so that the activation after it may work in place
        y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        torch.addcmul(shift_f.to(x.dtype), d, scale_f.to(x.dtype), out=y.view(d.shape))
        ctx.save_for_backward(d, weight, rstd, delta_f)
        ctx.fixed, ctx.rows = fixed, rows
        n = torch.tensor([f * rows for f in fixed], dtype=stat_dtype, device=x.device)[:, None]
        unbiased = var * (n / (n - 1).clamp_min(1))
        ctx.mark_non_differentiable(mean, unbiased)
        return y, mean, unbiased

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor, _gmean: Tensor, _gvar: Tensor):  # type: ignore[override]
        d, weight, rstd, delta_f = ctx.saved_tensors
        fixed, c = ctx.fixed, weight.shape[1]
        stat_dtype = rstd.dtype
        g2 = grad.reshape(-1, d.shape[1])
        gs = g2 if g2.dtype == stat_dtype else g2.to(stat_dtype)
        ds = d if d.dtype == stat_dtype else d.to(stat_dtype)
        g_sum_f = gs.sum(dim=0)
        g_sum = _to_groups(g_sum_f, fixed, c)  # (members, C)
        # sum of dy * xhat, with xhat = (d + delta_f) * rstd
        g_xhat = rstd * _to_groups(torch.linalg.vecdot(gs, ds, dim=0) + delta_f * g_sum_f, fixed, c)
        grad_weight = g_xhat.to(weight.dtype) if ctx.needs_input_grad[1] else None
        grad_bias = g_sum.to(weight.dtype) if ctx.needs_input_grad[2] else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            if world_size() > 1:
                both = _all_reduce_sum(torch.stack([g_sum, g_xhat]))
                g_sum, g_xhat = both[0], both[1]
            n = torch.tensor([f * ctx.rows for f in fixed], dtype=stat_dtype, device=rstd.device)[:, None]
            a = weight.to(stat_dtype) * rstd
            b_f = _to_features(-a * rstd * g_xhat / n, fixed)
            c_f = _to_features(-a * g_sum / n, fixed) + b_f * delta_f
            dtype = grad.dtype
            grad_x = torch.addcmul(c_f.to(dtype), g2, _to_features(a, fixed).to(dtype))
            grad_x.addcmul_(d, b_f.to(dtype))
            grad_x = grad_x.view(grad.shape)
        return grad_x, grad_weight, grad_bias, None, None


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
        return WeightSpace.from_tensors(packing.unpack(self.forward_packed(packing.pack(ws.tensors)), self.channels))

    def forward_packed(self, slots: Sequence[Tensor]) -> list[Tensor]:
        packing = self.layout.packing
        out = []
        for slot, x in zip(packing.slots, slots):
            fixed = tuple(self.layout.tensors[i].fixed_size for i in slot.members)
            idx = list(slot.members)
            if self.training:
                y, mean, unbiased = _SlotBatchNorm.apply(x, self.weight[idx], self.bias[idx], fixed, self.eps)
                with torch.no_grad():
                    self.running_mean[idx] = torch.lerp(
                        self.running_mean[idx], mean.to(self.running_mean.dtype), self.momentum
                    )
                    self.running_var[idx] = torch.lerp(
                        self.running_var[idx], unbiased.to(self.running_var.dtype), self.momentum
                    )
                out.append(y)
            else:
                scale = self.weight[idx] * torch.rsqrt(self.running_var[idx] + self.eps)  # (members, C)
                shift = self.bias[idx] - self.running_mean[idx] * scale
                out.append(
                    torch.addcmul(_to_features(shift, fixed).to(x.dtype), x, _to_features(scale, fixed).to(x.dtype))
                )
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
        self.layout = as_layout(layout)
        self.channels = int(channels)
        self.eps = float(eps)
        n = len(self.layout.tensors)
        self.register_buffer("mean", torch.zeros(n, channels))
        self.register_buffer("std", torch.ones(n, channels))
        self.register_buffer("fitted", torch.tensor(False))

    @torch.no_grad()
    def fit(self, data: WeightSpace | Iterable[WeightSpace]) -> InputNormalization:
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
