"""Normalisation that respects the weight-space symmetry.

Statistics must be shared by every entry that a hidden permutation can move, so both
blocks here use one mean and one scale per tensor and channel:

* :class:`WSBatchNorm` normalises with batch statistics pooled over the batch and every
  entry of the tensor (per-entry statistics would break the symmetry);
* :class:`InputNormalization` standardises raw inputs with per-tensor, per-channel
  statistics measured once on a data set.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ..core.layout import WeightSpaceLayout, as_layout
from ..core.weight_space import WeightSpace, WeightSpaceError
from ..utils import pin_compiled_vector_width, world_size

__all__ = ["InputNormalization", "WSBatchNorm", "recompute_normalised"]


def _entry_dims(t: Tensor) -> list[int]:
    return list(range(2, t.dim()))


def _all_reduce_sum(t: Tensor) -> Tensor:
    import torch.distributed as dist

    dist.all_reduce(t)
    return t


class _SlotGroups:
    """How a slot's ``F`` features fall into statistics groups: one group per (member
    tensor, channel), pooling the member's fixed entries. ``index[f]`` is feature ``f``'s
    group and ``fixed[g]`` the number of features in group ``g`` (entries per row)."""

    def __init__(self, fixed: Sequence[int], channels: int) -> None:
        self.channels = channels
        self.size = len(fixed) * channels
        self.identity = all(f == 1 for f in fixed)
        groups = [m * channels + c for m, f in enumerate(fixed) for _ in range(f) for c in range(channels)]
        self.index = torch.tensor(groups, dtype=torch.long)
        self.fixed = torch.tensor([float(f) for f in fixed for _ in range(channels)], dtype=torch.float64)
        self._cache: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def on(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if device not in self._cache:
            self._cache[device] = (self.index.to(device), self.fixed.to(device))
        return self._cache[device]

    def reduce(self, per_feature: Tensor, index: Tensor) -> Tensor:
        """``(F, ...)`` -> ``(G, ...)``: sums over each group's features."""
        if self.identity:
            return per_feature
        return per_feature.new_zeros((self.size, *per_feature.shape[1:])).index_add_(0, index, per_feature)

    def expand(self, per_group: Tensor, index: Tensor) -> Tensor:
        """``(G,)`` -> ``(F,)``: each group's value on each of its features."""
        return per_group if self.identity else per_group.index_select(0, index)


# ---------------------------------------------------------------------- kernels
#
# Batch norm costs memory bandwidth, not arithmetic: four passes over each activation
# (statistics; normalise and ReLU; gradient sums; input gradient). Each pass has two
# implementations with the same contract: eager PyTorch ops in cache-sized row blocks
# (always available), and the same arithmetic compiled into one fused loop by
# torch.compile (``compile_kernels(model)``; 2-4x faster on the CPU, much more in bf16).
# ``x`` is a slot ``(..., F)``; per-feature vectors are ``(F,)`` in the statistics dtype.

# Rows per block on the CPU: about 2 MiB per tensor, so that a block's temporaries stay in
# cache and every pass over an activation reads it from memory once.
_CHUNK_BYTES = 2**21


def _row_chunks(t: Tensor) -> Sequence[Tensor]:
    """``(R, F)`` -> row blocks (views); one block off the CPU, where launches cost more."""
    if t.device.type != "cpu":
        return (t,)
    return t.split(max(1, _CHUNK_BYTES // max(1, t.shape[1] * t.element_size())))


def _rows(t: Tensor) -> Tensor:
    return t.reshape(-1, t.shape[-1])


def _stats_eager(x: Tensor, stat_dtype: torch.dtype) -> Tensor:
    """``(2, F)``: per-feature sums and sums of squares."""
    sums = x.new_zeros((2, x.shape[-1]), dtype=stat_dtype)
    for xc in _row_chunks(_rows(x)):  # reductions accumulate in float32 or better
        sums[0].add_(xc.sum(dim=0, dtype=stat_dtype))
        sums[1].add_((xc * xc).sum(dim=0, dtype=stat_dtype))
    return sums


def _normalise_eager(x: Tensor, scale: Tensor, shift: Tensor, relu: bool) -> Tensor:
    """``y = x * scale + shift`` (then ReLU), a new base tensor shaped like ``x``."""
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    scale, shift = scale.to(x.dtype), shift.to(x.dtype)
    for xc, yc in zip(_row_chunks(_rows(x)), _row_chunks(_rows(y))):
        torch.addcmul(shift, xc, scale, out=yc)
        if relu:
            yc.clamp_min_(0.0)
    return y


def _masked_eager(gc: Tensor, xc: Tensor, scale: Tensor, shift: Tensor, relu: bool) -> Tensor:
    """The gradient through the ReLU, its mask recomputed from ``x`` exactly as the forward
    computed ``y`` (cheaper than reading ``y`` back from memory)."""
    if not relu:
        return gc
    return torch.ops.aten.threshold_backward(gc, torch.addcmul(shift, xc, scale), 0)


def _grad_sums_eager(g: Tensor, x: Tensor, scale: Tensor, shift: Tensor, relu: bool, stat_dtype: torch.dtype) -> Tensor:
    """``(2, F)``: per-feature sums of ``g'`` and of ``g' * x`` (``g'``: through the ReLU)."""
    scale, shift = scale.to(x.dtype), shift.to(x.dtype)
    sums = x.new_zeros((2, x.shape[-1]), dtype=stat_dtype)
    for gc, xc in zip(_row_chunks(_rows(g)), _row_chunks(_rows(x))):
        gc = _masked_eager(gc, xc, scale, shift, relu)
        sums[0].add_(gc.sum(dim=0, dtype=stat_dtype))
        sums[1].add_((gc * xc).sum(dim=0, dtype=stat_dtype))
    return sums


def _grad_input_eager(
    g: Tensor, x: Tensor, scale: Tensor, shift: Tensor, a: Tensor, b: Tensor, c: Tensor, relu: bool
) -> Tensor:
    """``dx = a * g' + b * x + c``, a new tensor shaped like ``g``."""
    scale, shift = scale.to(x.dtype), shift.to(x.dtype)
    a, b, c = a.to(g.dtype), b.to(g.dtype), c.to(g.dtype)
    dx = torch.empty(g.shape, dtype=g.dtype, device=g.device)
    for gc, xc, dc in zip(_row_chunks(_rows(g)), _row_chunks(_rows(x)), _row_chunks(_rows(dx))):
        torch.addcmul(c, _masked_eager(gc, xc, scale, shift, relu), a, out=dc)
        dc.addcmul_(xc, b)
    return dx


def _stats_fused(x: Tensor, stat_dtype: torch.dtype) -> Tensor:
    xs = _rows(x).to(stat_dtype)
    return torch.stack([xs.sum(dim=0), (xs * xs).sum(dim=0)])


def _normalise_fused(x: Tensor, scale: Tensor, shift: Tensor, relu: bool) -> Tensor:
    y = x.to(scale.dtype) * scale + shift
    return (y.clamp_min(0.0) if relu else y).to(x.dtype)


def _masked_fused(g: Tensor, xs: Tensor, scale: Tensor, shift: Tensor, relu: bool) -> Tensor:
    gs = g.to(scale.dtype)
    return torch.where(xs * scale + shift > 0, gs, 0.0) if relu else gs


def _grad_sums_fused(g: Tensor, x: Tensor, scale: Tensor, shift: Tensor, relu: bool, stat_dtype: torch.dtype) -> Tensor:
    xs = _rows(x).to(stat_dtype)
    gs = _masked_fused(_rows(g), xs, scale, shift, relu)
    return torch.stack([gs.sum(dim=0), (gs * xs).sum(dim=0)])


def _grad_input_fused(
    g: Tensor, x: Tensor, scale: Tensor, shift: Tensor, a: Tensor, b: Tensor, c: Tensor, relu: bool
) -> Tensor:
    xs = x.to(scale.dtype)
    return (a * _masked_fused(g, xs, scale, shift, relu) + b * xs + c).to(g.dtype)


_EAGER = {"stats": _stats_eager, "normalise": _normalise_eager, "grad_sums": _grad_sums_eager,
          "grad_input": _grad_input_eager}  # fmt: skip
_FUSED = {"stats": _stats_fused, "normalise": _normalise_fused, "grad_sums": _grad_sums_fused,
          "grad_input": _grad_input_fused}  # fmt: skip
_compiled: dict[Any, Callable[..., Any]] = {}  # by kernel name or by function
_failed: set[Any] = set()  # kernels whose compilation failed: eager from then on


def compile_kernels(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Run ``model``'s batch norms' four passes as loops fused by ``torch.compile``
    (``enabled``), or as blocked eager ops (the default), and the same for other layers'
    element-wise steps (the sign-equivariant layer's): every submodule with a ``compiled``
    switch gets it. Other models in the process are untouched. Compilation happens on first
    use, a few seconds per slot shape family, cached by torch across processes; it needs a
    C++ compiler on the CPU. A kernel whose compilation fails warns once and stays eager;
    any other error (out of memory among them) is raised. Compiling names the process's vector
    width in torch's compile config (:func:`dwsnets.utils.pin_compiled_vector_width`), so
    cached kernels of one width are never read at another. Returns ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"compile_kernels takes the model whose kernels to compile, compile_kernels(model), not "
                        f"{model!r}: the switch is per model (it was one switch for the whole process)")  # fmt: skip
    for module in model.modules():
        if hasattr(module, "compiled"):
            module.compiled = bool(enabled)
    return model


def _kernel(name: str, compiled: bool) -> Callable[..., Tensor]:
    if not compiled or name in _failed:
        return _EAGER[name]
    if name not in _compiled:
        pin_compiled_vector_width()
        _compiled[name] = _with_fallback(torch.compile(_FUSED[name], dynamic=True), _EAGER[name], name)
    return _compiled[name]


def compiled_if_enabled(fn: Callable[..., Any], enabled: bool) -> Callable[..., Any]:
    """``fn`` compiled by ``torch.compile`` when ``enabled`` (once per function, falling back
    to ``fn`` if compiling fails), else ``fn`` itself: how other layers' element-wise steps
    join the same per-module switch (:func:`compile_kernels`)."""
    if not enabled or fn in _failed:
        return fn
    if fn not in _compiled:
        pin_compiled_vector_width()
        _compiled[fn] = _with_fallback(torch.compile(fn, dynamic=True), fn, fn)
    return _compiled[fn]


def _compile_failures() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "this could not be compiled" (tracing, the backend, the C++
    compiler), not errors of the computation itself."""
    from torch._dynamo.exc import TorchDynamoException
    from torch._inductor.exc import CppCompileError

    return (TorchDynamoException, CppCompileError)


def _with_fallback(compiled: Callable[..., Tensor], eager: Callable[..., Tensor], key: Any) -> Callable[..., Tensor]:
    """``compiled``, or ``eager`` from its first compile failure on (with one warning)."""

    def run(*args: Any) -> Tensor:
        if key in _failed:
            return eager(*args)
        try:
            return compiled(*args)
        except torch.OutOfMemoryError:
            raise
        except _compile_failures() as exc:  # no compiler, unsupported platform: the eager kernels always work
            _failed.add(key)
            warnings.warn(f"dwsnets: compiling the fused kernels failed ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); using the eager kernels", stacklevel=2)  # fmt: skip
            return eager(*args)

    return run


class _SlotBatchNorm(torch.autograd.Function):
    """Training-mode batch norm of one packed slot ``x (..., F)``, optionally followed by
    a ReLU, with one mean and variance per statistics group (member tensor, channel),
    pooled over every leading axis and the member's fixed entries; across processes under
    torch.distributed (synchronised batch norm).

    Returns ``(y, mean, unbiased_var)``, the statistics of shape ``(G,)`` (not
    differentiable; for the running averages), counted over every process's rows.

    Four passes over the activation (see the kernels above): the forward reads ``x`` for
    the statistics, then reads ``x`` and writes ``y``; the backward reads ``(g, x)`` for two
    per-feature reductions, then again to write ``dx = a * g' + b * x + c``, recomputing
    the ReLU's mask from ``x`` rather than storing it. Only ``x`` is saved. Variances are
    ``E[x^2] - mean^2`` from float32 (or float64) sums, accurate to about
    ``1e-7 * mean^2 / var`` relative in float32."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, groups: _SlotGroups, eps: float, relu: bool,  # type: ignore[override]
                compiled: bool = False):  # fmt: skip
        stat_dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        features = x.shape[-1]
        index, fixed = groups.on(x.device)
        sums = _kernel("stats", compiled)(x, stat_dtype)
        rows = float(x.numel() // max(1, features))
        if world_size() > 1:
            count = torch.full((1,), rows, dtype=stat_dtype, device=x.device)
            both = _all_reduce_sum(torch.cat([sums.reshape(-1), count]))
            sums, rows = both[:-1].view(2, features), float(both[-1])
        n = fixed.to(stat_dtype) * rows  # entries per group
        s1, s2 = groups.reduce(sums.t(), index).t()  # sums and sums of squares per group
        mean = s1 / n
        var = (s2 / n - mean * mean).clamp_min(0.0)
        rstd = torch.rsqrt(var + eps)
        scale = weight.to(stat_dtype) * rstd
        shift = bias.to(stat_dtype) - mean * scale
        scale_f, shift_f = groups.expand(scale, index), groups.expand(shift, index)
        y = _kernel("normalise", compiled)(x, scale_f, shift_f, relu)
        if _recipes is not None and y.numel() * y.element_size() >= RECOMPUTE_MIN_BYTES:
            # y can be rebuilt from what this step saves anyway
            _recipes[id(y)] = (weakref.ref(y), y._version, x, scale_f, shift_f, relu, compiled)
        ctx.save_for_backward(x, weight, mean, rstd, n, scale_f, shift_f)
        ctx.groups, ctx.relu, ctx.compiled = groups, relu, compiled
        unbiased = var * (n / (n - 1).clamp_min(1))
        ctx.mark_non_differentiable(mean, unbiased)
        return y, mean, unbiased

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor, _gmean: Tensor, _gvar: Tensor):  # type: ignore[override]
        x, weight, mean, rstd, n, scale_f, shift_f = ctx.saved_tensors
        groups: _SlotGroups = ctx.groups
        index, _ = groups.on(x.device)
        stat_dtype = rstd.dtype
        grad = grad.contiguous()
        sums = _kernel("grad_sums", ctx.compiled)(grad, x, scale_f, shift_f, ctx.relu, stat_dtype)
        g_sum, gx_sum = groups.reduce(sums.t(), index).t()
        g_xhat = rstd * (gx_sum - mean * g_sum)  # sum of g' * xhat per group
        grad_weight = g_xhat.to(weight.dtype) if ctx.needs_input_grad[1] else None
        grad_bias = g_sum.to(weight.dtype) if ctx.needs_input_grad[2] else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            if world_size() > 1:
                both = _all_reduce_sum(torch.stack([g_sum, g_xhat]))
                g_sum, g_xhat = both[0], both[1]
            # dx = a * g' + b * x + c, with xhat = (x - mean) * rstd
            a = weight.to(stat_dtype) * rstd
            b = -a * rstd * g_xhat / n
            c = -a * g_sum / n - b * mean
            a_f, b_f, c_f = (groups.expand(v, index) for v in (a, b, c))
            grad_x = _kernel("grad_input", ctx.compiled)(grad, x, scale_f, shift_f, a_f, b_f, c_f, ctx.relu)
        return grad_x, grad_weight, grad_bias, None, None, None, None


# outputs smaller than this are kept: rebuilding them cost about 5% of a 2-32-32-1 step
# (16 MiB slots), where memory is no constraint; a 2-128-128-128-1 step's 256 MiB slots are
# rebuilt, which cuts its peak memory from 1.7x to 1.24x the bare stack's
RECOMPUTE_MIN_BYTES = 64 << 20
# id(y) -> (weak y, its version, x, scale, shift, relu, compiled) for the outputs of the batch norms that run inside
# recompute_normalised(); None outside it
_recipes: dict[int, tuple[weakref.ref, int, Tensor, Tensor, Tensor, bool, bool]] | None = None


@contextlib.contextmanager
def recompute_normalised() -> Iterator[None]:
    """Within this block, a training-mode batch norm's output ``y = ReLU(x * scale + shift)``
    is never kept for the backward pass: whatever layer saves ``y`` (the next equivariant
    layer, for its weight gradient) keeps a recipe instead, made of the tensors the batch
    norm saves anyway (``x`` and the per-feature scale and shift), and ``y`` is rebuilt by
    the same kernel, bit for bit, when the backward pass needs it. One activation fewer is
    held per block, for one extra elementwise pass per block in the backward pass. Only
    outputs of at least :data:`RECOMPUTE_MIN_BYTES` are rebuilt.
    """
    global _recipes
    outer, _recipes = _recipes, {}
    recipes = _recipes

    def pack(t: Tensor) -> Any:
        recipe = recipes.get(id(t))
        # the very tensor the batch norm wrote, not changed in place since (dropout, other activations)
        if recipe is not None and recipe[0]() is t and t._version == recipe[1]:
            return recipe[2:]
        return t

    def unpack(saved: Any) -> Tensor:
        if isinstance(saved, Tensor):
            return saved
        x, scale, shift, relu, compiled = saved
        return _kernel("normalise", compiled)(x, scale, shift, relu)

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            yield
    finally:
        _recipes = outer


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
        self.compiled = False  # its passes fused by torch.compile (compile_kernels)
        self.weight = nn.Parameter(torch.ones(self.num_tensors, channels))
        self.bias = nn.Parameter(torch.zeros(self.num_tensors, channels))
        self.register_buffer("running_mean", torch.zeros(self.num_tensors, channels))
        self.register_buffer("running_var", torch.ones(self.num_tensors, channels))
        # tensors in slot order, and back (the slots partition the tensors)
        order = [i for slot in self.layout.packing.slots for i in slot.members]
        self.register_buffer("_order", torch.tensor(order, dtype=torch.long), persistent=False)
        self.register_buffer("_inverse", torch.argsort(self._order), persistent=False)
        self._slot_groups = [
            _SlotGroups([self.layout.tensors[i].fixed_size for i in slot.members], self.channels)
            for slot in self.layout.packing.slots
        ]

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

    def forward_packed(self, slots: Sequence[Tensor], relu: bool = False) -> list[Tensor]:
        """Normalise packed slots ``(B, *sizes, F)``; ``relu=True`` also applies a ReLU,
        fused (no pass of its own either way; :class:`~dwsnets.nn.models.DWSBackbone` uses it)."""
        groups, order = self._slot_groups, self._order
        sizes = [len(slot.members) for slot in self.layout.packing.slots]
        weights, biases = self.weight[order].split(sizes), self.bias[order].split(sizes)
        if not self.training:
            running_means, running_vars = self.running_mean[order].split(sizes), self.running_var[order].split(sizes)
        out, means, variances = [], [], []
        for x, g, w, b in zip(slots, groups, weights, biases):
            if self.training:
                y, mean, unbiased = _SlotBatchNorm.apply(x, w.reshape(-1), b.reshape(-1), g, self.eps, relu,
                                                         self.compiled)  # fmt: skip
                means.append(mean)
                variances.append(unbiased)
            else:
                index, _ = g.on(x.device)
                k = len(out)
                scale = w.reshape(-1) * torch.rsqrt(running_vars[k].reshape(-1) + self.eps)
                shift = b.reshape(-1) - running_means[k].reshape(-1) * scale
                # differentiable ops (gradients may flow to the scale in eval mode), not the kernels
                x2 = x.reshape(-1, x.shape[-1])
                y = torch.addcmul(g.expand(shift, index).to(x.dtype), x2, g.expand(scale, index).to(x.dtype))
                y = (y.clamp_min_(0.0) if relu else y).view(x.shape)
            out.append(y)
        if self.training:
            with torch.no_grad():  # running averages, every tensor at once (slots partition them)
                mean = torch.cat(means).view(-1, self.channels)[self._inverse]
                var = torch.cat(variances).view(-1, self.channels)[self._inverse]
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
                self.running_var.lerp_(var.to(self.running_var.dtype), self.momentum)
        return out

    def extra_repr(self) -> str:
        return f"num_tensors={self.num_tensors}, channels={self.channels}, eps={self.eps}, momentum={self.momentum}"


class InputNormalization(nn.Module):
    """Standardise raw weight spaces: ``(x - mean) / std`` per tensor and channel, or only
    ``x / std`` with ``center=False`` (which keeps every entry's sign, for sign-invariant
    encodings).

    The statistics are buffers fitted once on a data set with :meth:`fit` (the identity
    until then), so they travel with the model's ``state_dict``. Equivariant because every
    entry of a tensor shares one mean and one scale.
    """

    def __init__(
        self, layout: WeightSpaceLayout | Sequence[int], channels: int = 1, eps: float = 1e-8, center: bool = True
    ) -> None:
        super().__init__()
        self.layout = as_layout(layout)
        self.channels = int(channels)
        self.eps = float(eps)
        self.center = center
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
            shifted = t - self.mean[i].to(t.dtype).view(shape) if self.center else t
            out.append(shifted / self.std[i].to(t.dtype).view(shape))
        return WeightSpace.from_tensors(out)

    def inverse(self, ws: WeightSpace) -> WeightSpace:
        """Map normalised values back to raw weights (for models that edit weights)."""
        self._check(ws)
        out = []
        for i, t in enumerate(ws.tensors):
            shape = (1, self.channels) + (1,) * (t.dim() - 2)
            scaled = t * self.std[i].to(t.dtype).view(shape)
            out.append(scaled + self.mean[i].to(t.dtype).view(shape) if self.center else scaled)
        return WeightSpace.from_tensors(out)

    def extra_repr(self) -> str:
        centered = "" if self.center else ", center=False"
        return f"tensors={len(self.layout.tensors)}, channels={self.channels}, fitted={bool(self.fitted)}{centered}"
