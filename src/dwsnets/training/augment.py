"""Weight-space augmentations drawn per batch on the training device.

Every draw comes from one CPU ``torch.Generator``, so a run is reproducible, resumes
identically, and every data-parallel rank draws the same augmentation for the global
batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.weight_space import WeightSpace

__all__ = ["augment"]


def augment(
    ws: WeightSpace,
    generator: torch.Generator,
    *,
    permute: bool,
    noise: float = 0.0,
    entry_dropout: float = 0.0,
    scale: list[Tensor] | None = None,
) -> WeightSpace:
    """Random hidden permutations (one per network; a symmetry, so they change nothing for
    an invariant model and are the augmentation non-invariant baselines need), plus
    optional Gaussian noise and entry dropout (generic regularisers).

    ``scale``: one ``(C,)`` spread per tensor for the noise (default 1), so ``noise`` is a
    fraction of each tensor's own spread.
    """
    if permute and len(ws.layer_sizes) > 2:
        ws = ws.permute(ws.random_permutations(generator, per_network=True))
    if noise > 0 or entry_dropout > 0:
        out = []
        for i, t in enumerate(ws.tensors):
            if noise > 0:
                s = 1.0 if scale is None else scale[i].to(t.device, t.dtype).view(1, -1, *[1] * (t.dim() - 2))
                t = t + noise * s * torch.randn(t.shape, generator=generator).to(t.device, t.dtype)
            if entry_dropout > 0:
                keep = torch.rand(t.shape, generator=generator) >= entry_dropout
                t = t * keep.to(t.device, t.dtype)
            out.append(t)
        ws = WeightSpace.from_tensors(out)
    return ws
