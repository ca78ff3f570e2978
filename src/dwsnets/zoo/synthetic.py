"""A small synthetic zoo: ReLU MLPs fitted to sine waves, all trained at once.

Each network ``1 -> h -> h -> 1`` is fitted to ``x -> a * sin(f * x)`` on ``[-pi, pi]`` from
its own random initialisation, so hidden neurons come in an arbitrary order: the zoo
exercises exactly the symmetry DWSNets are built for. The label is the frequency class
``f in {1, ..., n_classes}``; amplitudes ``a`` are drawn in ``[0.5, 1.5]`` so the class
cannot be read off the output scale. Every network is one slice of a batched computation
(``torch.bmm``), so a thousand networks train in seconds on a CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.weight_space import WeightSpace

__all__ = ["SineMLPZoo", "make_sine_mlp_zoo"]


@dataclass(frozen=True)
class SineMLPZoo:
    """Fitted networks, their frequency class and amplitude, and their final fit MSE."""

    weights: WeightSpace
    labels: Tensor  # (N,) frequency class, 0-based
    amplitudes: Tensor  # (N,)
    mse: Tensor  # (N,)


def make_sine_mlp_zoo(
    n: int,
    hidden: int = 16,
    n_classes: int = 4,
    steps: int = 400,
    lr: float = 1e-2,
    points: int = 128,
    seed: int = 0,
) -> SineMLPZoo:
    """Fit ``n`` ReLU MLPs ``1 -> hidden -> hidden -> 1`` to random sine waves.

    Args:
        n: number of networks.
        hidden: width of the two hidden layers.
        n_classes: frequencies ``1..n_classes`` (the label).
        steps, lr: full-batch Adam on ``points`` equally spaced inputs in ``[-pi, pi]``.
        seed: makes the zoo reproducible.
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, n_classes, (n,), generator=g)
    amplitudes = 0.5 + torch.rand(n, generator=g)
    x = torch.linspace(-math.pi, math.pi, points)
    target = amplitudes[:, None] * torch.sin((labels[:, None] + 1).float() * x[None, :])  # (n, P)

    sizes = (1, hidden, hidden, 1)
    params = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(d_in)
        params.append((torch.rand(n, d_out, d_in, generator=g) * 2 - 1) * bound)
        params.append((torch.rand(n, d_out, generator=g) * 2 - 1) * bound)
    params = [p.requires_grad_() for p in params]
    opt = torch.optim.Adam(params, lr=lr)
    inputs = x[None, :, None].expand(n, points, 1)

    def predict() -> Tensor:
        h = inputs
        for m in range(3):
            w, b = params[2 * m], params[2 * m + 1]
            h = torch.baddbmm(b[:, None, :], h, w.transpose(1, 2))
            if m < 2:
                h = torch.relu(h)
        return h[..., 0]

    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = ((predict() - target) ** 2).mean(dim=1)
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        mse = ((predict() - target) ** 2).mean(dim=1)
    weights = WeightSpace.from_parameters([p.detach() for p in params])
    return SineMLPZoo(weights, labels, amplitudes, mse)
