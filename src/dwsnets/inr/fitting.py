"""Fit thousands of SIRENs at once.

Every INR is one slice of a batched computation. The forward pass and the gradients are
written out by hand with ``torch.bmm`` (no autograd graph), and Adam runs on one flat
parameter buffer. The active set is processed in cache-sized chunks. An INR that
reaches the target PSNR leaves the active set at once: its parameters are recorded
*before* that step's update (so the stored PSNR is exactly the PSNR of the stored
weights), and it costs nothing afterwards.

Per INR the computation depends only on its own seed and target (Adam's step count is
shared, and every INR starts at step 0), so results do not depend on which other INRs
share the batch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.weight_space import WeightSpace
from ..utils import pin_compiled_vector_width
from .siren import siren_forward, siren_init

__all__ = ["FitResult", "default_chunk", "evaluate_sirens", "fit_sirens", "psnr"]


def psnr(mse: Tensor, peak: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB for a signal of range ``peak``."""
    return 10.0 * torch.log10(peak**2 / mse.clamp_min(1e-20))


@dataclass
class FitResult:
    """Fitted parameters ``[W1, b1, W2, b2, ...]`` (``W_m: (N, d_m, d_{m-1})``), the final
    PSNR of each INR (of exactly these parameters), and the optimisation steps taken."""

    params: list[Tensor]
    psnr: Tensor
    steps: Tensor

    def weight_space(self) -> WeightSpace:
        return WeightSpace.from_parameters(self.params)


def _shapes(sizes: Sequence[int]) -> list[tuple[int, ...]]:
    out = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        out += [(b, a), (b,)]
    return out


def _split(flat: Tensor, shapes: list[tuple[int, ...]]) -> list[Tensor]:
    n = flat.shape[0]
    parts = torch.split(flat, [math.prod(s) for s in shapes], dim=1)
    return [p.view(n, *s) if len(s) > 1 else p for p, s in zip(parts, shapes)]


class _Workspace:
    """Activation buffers reused across steps and chunks (fresh multi-MiB allocations
    page-fault on every step with the default allocator)."""

    def __init__(self) -> None:
        self._buffers: dict[str, Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        buf = self._buffers.get(name)
        if (
            buf is None
            or buf.shape[1:] != shape[1:]
            or buf.shape[0] < shape[0]
            or buf.dtype != like.dtype
            or buf.device != like.device
        ):
            buf = torch.empty(shape, dtype=like.dtype, device=like.device)
            self._buffers[name] = buf
        return buf[: shape[0]]


def _forward_backward(
    coords: Tensor,
    target: Tensor,
    params: list[Tensor],
    w0: float,
    grad_out: Tensor | None,
    work: _Workspace | None = None,
) -> Tensor:
    """Per-INR mean squared error; writes the gradient of each INR's own MSE into
    ``grad_out`` (same layout as the flat parameters) when given.

    coords ``(P, d_0)``, target ``(n, P, d_M)``, params ``[W1 (n, d1, d0), b1 (n, d1), ...]``
    (views into the flat buffer). The sine's ``w0`` is folded into the small weight and
    bias tensors, never applied to a full activation.
    """
    work = work or _Workspace()
    n, p_count, d_out = target.shape
    n_layers = len(params) // 2
    h = coords.unsqueeze(0).expand(n, -1, -1)
    inputs, cosines, scaled = [h], [], []
    out = h
    for m in range(n_layers):
        scale = w0 if m < n_layers - 1 else 1.0
        w = params[2 * m] * scale  # contiguous copy of a small tensor
        b = params[2 * m + 1] * scale
        scaled.append(w)
        z = work.get(f"act{m}", (n, p_count, w.shape[1]), target)
        torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2), out=z)
        if m == n_layers - 1:
            out = z
            break
        if grad_out is not None:
            cosines.append(sine_with_cosine_(z, work.get(f"cos{m}", z.shape, target)))
        else:
            z.sin_()
        h = z
        inputs.append(h)
    err = out.sub_(target)
    mse = err.pow(2).mean(dim=(1, 2))
    if grad_out is None:
        return mse
    grads = _split(grad_out, _shapes([coords.shape[1]] + [w.shape[1] for w in params[0::2]]))
    g = err.mul_(2.0 / (p_count * d_out))  # d(mean sq err) / d(output)
    for m in range(n_layers - 1, -1, -1):
        # g is d loss / d z_m, with z_m = w0 (W_m h + b_m) for hidden layers
        scale = w0 if m < n_layers - 1 else 1.0
        h_in = inputs[m]
        if m == 0:
            gw = torch.matmul(h_in[0].t(), g).transpose(1, 2)  # coords are shared by all INRs
        else:
            gw = torch.bmm(g.transpose(1, 2), h_in)
        gb = g.sum(dim=1)
        if scale != 1.0:
            gw.mul_(scale)
            gb.mul_(scale)
        grads[2 * m].copy_(gw)
        grads[2 * m + 1].copy_(gb)
        if m > 0:
            w = scaled[m]  # (n, d_m, d_{m-1}), already times w0 for hidden layers
            nxt = work.get(f"grad{m % 2}", (n, p_count, w.shape[2]), target)
            if w.shape[1] == 1:
                torch.mul(g, w, out=nxt)  # an outer product, not a K=1 GEMM
            else:
                torch.bmm(g, w, out=nxt)
            g = nxt.mul_(cosines[m - 1])  # d sin(z) / dz = cos(z); w0 is inside the weights
    return mse


def _sine_with_cosine_eager(z: Tensor, cos_out: Tensor) -> None:
    torch.cos(z, out=cos_out)
    z.sin_()


_fused_sine: Callable[[Tensor, Tensor], None] | None = None
_fused_failed = False


def sine_with_cosine_(z: Tensor, cos_out: Tensor) -> Tensor:
    """``cos_out <- cos(z)`` and ``z <- sin(z)`` in place; returns ``cos_out``.

    On the CPU both come from one pass over ``z``, a loop fused by torch.compile (2.3x
    faster than torch's separate ``cos`` and ``sin_``, whose ``cos`` alone costs twice its
    ``sin``: ``benchmarks/bench_inr_fitting.py``); where compiling is not possible (no C++
    compiler) the two eager calls do the same to rounding."""
    global _fused_sine, _fused_failed
    if z.device.type == "cpu" and not _fused_failed:
        try:
            if _fused_sine is None:
                pin_compiled_vector_width()
                _fused_sine = torch.compile(_sine_with_cosine_eager, dynamic=True)
            _fused_sine(z, cos_out)
            return cos_out
        except Exception as exc:  # a compiler missing or refusing: the eager pair, once warned
            _fused_failed = True
            warnings.warn(f"the fitter's fused sine and cosine could not be compiled ({type(exc).__name__}); "
                          "using torch's separate kernels (slower, same results to rounding)", stacklevel=2)  # fmt: skip
    _sine_with_cosine_eager(z, cos_out)
    return cos_out


@torch.no_grad()
def evaluate_sirens(
    coords: Tensor, targets: Tensor, params: Sequence[Tensor], w0: float = 30.0, chunk: int = 512
) -> Tensor:
    """Per-INR MSE of SIRENs ``params`` (``[W1, b1, ...]`` stacked) on ``targets (N, P, d)``."""
    out = []
    for s in range(0, targets.shape[0], chunk):
        rendered = siren_forward(coords, [p[s : s + chunk] for p in params], w0)
        out.append((rendered - targets[s : s + chunk]).pow(2).mean(dim=(1, 2)))
    return torch.cat(out)


@torch.no_grad()
def _checked_seeds(coords: Tensor, targets: Tensor, seeds: Sequence[int] | Tensor) -> list[int]:
    """The seeds as integers, once the fitter's inputs are checked (shapes, finite values)."""
    if targets.dim() != 3:
        raise ValueError(f"targets must have shape (N, P, d_out), got {tuple(targets.shape)}")
    if coords.dim() != 2 or coords.shape[0] != targets.shape[1]:
        raise ValueError(f"coords must have shape ({targets.shape[1]}, d_in), got {tuple(coords.shape)}")
    if not torch.isfinite(targets).all():
        raise ValueError("targets hold NaN or Inf values")
    seeds = [int(s) for s in seeds]
    if len(seeds) != targets.shape[0]:
        raise ValueError(f"got {len(seeds)} seeds for {targets.shape[0]} targets")
    return seeds


def _initial_parameters(seeds: list[int], sizes: list[int], w0: float, init: str, dtype: torch.dtype) -> Tensor:
    """``(N, P)``: every INR's initial parameters, flat, each drawn from its own seed alone."""
    per_inr = []
    for s in seeds:
        g = torch.Generator().manual_seed(s)
        params = siren_init(sizes, 1, w0, generator=g, dtype=dtype, recipe=init)
        per_inr.append(torch.cat([p.reshape(1, -1) for p in params], 1))
    if per_inr:
        return torch.cat(per_inr)
    return torch.zeros(0, sum(math.prod(s) for s in _shapes(sizes)), dtype=dtype)


def _adam_step(flat: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, t: int, lr: float,
               betas: tuple[float, float], eps: float) -> None:  # fmt: skip
    """One Adam update in place (as torch.optim.Adam, no weight decay); every row is at step ``t``."""
    beta1, beta2 = betas
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias1 = 1 - beta1**t
    bias2 = 1 - beta2**t
    denom = exp_avg_sq.sqrt().div_(math.sqrt(bias2)).add_(eps)
    flat.addcdiv_(exp_avg, denom, value=-lr / bias1)


def _chunked_mse(coords: Tensor, targets: Tensor, active: Tensor, flat: Tensor, grad: Tensor | None,
                 shapes: list[tuple[int, ...]], w0: float, chunk: int, work: _Workspace) -> Tensor:  # fmt: skip
    """Per-INR MSE of the active INRs (row ``i`` of ``flat`` fits ``targets[active[i]]``),
    ``chunk`` at a time, each chunk's targets gathered on its own; their gradients into
    ``grad`` when given."""
    mse = torch.empty(flat.shape[0], device=flat.device, dtype=flat.dtype)
    for s in range(0, flat.shape[0], chunk):
        e = min(s + chunk, flat.shape[0])
        part = None if grad is None else grad[s:e]
        mse[s:e] = _forward_backward(coords, targets[active[s:e]], _split(flat[s:e], shapes), w0, part, work)
    return mse


def default_chunk(device: torch.device | str) -> int:
    """INRs per batched computation of :func:`fit_sirens` when not given: small on the CPU
    (cache-sized activations; measured in ``benchmarks/bench_inr_fitting.py``), large on a GPU."""
    return 32 if torch.device(device).type == "cpu" else 4096


def fit_sirens(
    coords: Tensor,
    targets: Tensor,
    seeds: Sequence[int] | Tensor,
    *,
    hidden: Sequence[int] = (32, 32),
    w0: float = 30.0,
    lr: float = 5e-4,
    max_steps: int = 1000,
    target_psnr: float | None = 40.0,
    peak: float = 1.0,
    chunk: int | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    progress: Callable[[int, int, int, float], None] | None = None,
    init: str = "siren",
) -> FitResult:
    """Fit one SIREN per target with Adam, all at once.

    Args:
        coords: ``(P, d_in)`` input coordinates shared by every INR.
        targets: ``(N, P, d_out)`` values to fit.
        seeds: ``N`` integers; INR ``i`` is initialised from ``seeds[i]`` alone.
        hidden: hidden layer widths (default 32, 32: the paper's 2-32-32-1 for images).
        w0, lr, max_steps: SIREN frequency, Adam learning rate, step budget.
        target_psnr: an INR stops (and stops costing compute) once its PSNR reaches
            this; ``None`` always runs ``max_steps``.
        peak: signal range for the PSNR (1 for images in [0, 1]).
        chunk: INRs processed together (memory ~ ``chunk * P * width * 16`` bytes); default
            :func:`default_chunk` (32 on the CPU, where a chunk's activations then stay in
            cache: 10,300 INR-steps/s against 8,700 at 128 on the 2-core CPU; 4,096 on a GPU).
        progress: called after each step with ``(finished, active, step, mean_psnr)``.
        init: initialisation recipe, ``"siren"`` or ``"paper"`` (:func:`siren_init`).

    Returns a :class:`FitResult` on the device of ``targets``.
    """
    device, dtype = targets.device, targets.dtype
    chunk = default_chunk(device) if chunk is None else int(chunk)
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    seeds = _checked_seeds(coords, targets, seeds)
    n_total = targets.shape[0]
    sizes = [coords.shape[1], *hidden, targets.shape[2]]
    shapes = _shapes(sizes)
    coords = coords.to(device, dtype)
    flat = _initial_parameters(seeds, sizes, w0, init, dtype).to(device)
    exp_avg = torch.zeros_like(flat)
    exp_avg_sq = torch.zeros_like(flat)
    grad = torch.empty_like(flat)

    final = torch.empty_like(flat)
    final_psnr = torch.full((n_total,), float("nan"), device=device, dtype=dtype)
    steps_taken = torch.zeros(n_total, dtype=torch.long, device=device)
    active = torch.arange(n_total, device=device)
    threshold = math.inf if target_psnr is None else float(target_psnr)
    work = _Workspace()

    for step in range(max_steps + 1):
        if active.numel() == 0:
            break
        last = step == max_steps
        mse = _chunked_mse(coords, targets, active, flat, None if last else grad, shapes, w0, chunk, work)
        current = psnr(mse, peak)
        done = torch.ones_like(current, dtype=torch.bool) if last else current >= threshold
        if bool(done.any()):
            ids = active[done]
            final[ids] = flat[done]
            final_psnr[ids] = current[done]
            steps_taken[ids] = step
            keep = ~done
            active, flat, exp_avg, exp_avg_sq, grad = (t[keep] for t in (active, flat, exp_avg, exp_avg_sq, grad))
            current = current[keep]
        if progress is not None:
            mean = float(current.mean()) if current.numel() else float("nan")
            progress(n_total - active.numel(), active.numel(), step, mean)
        if last or active.numel() == 0:
            break
        _adam_step(flat, grad, exp_avg, exp_avg_sq, step + 1, lr, betas, eps)

    return FitResult(_split(final, shapes), final_psnr, steps_taken)
