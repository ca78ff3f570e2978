"""Zoos of trained classifiers, and the shifted domain they are adapted to.

A classifier zoo holds many small ReLU MLPs of one architecture, each trained on
Fashion-MNIST thumbnails (the 28x28 images average-pooled 4x4 to 7x7, 49 inputs) from
its own seed and with its own training settings: a weight decay drawn log-uniformly
from [1e-5, 1e-3] and a step budget drawn uniformly from the upper half of the zoo's
``max_steps`` (each network's own random mini-batches of 128 images, Adam). All networks
of a shard train at once as batched matrix products, as the INR fitter does; each is a
function of its seed alone.

The *target domain* (:class:`Corruption`) is Fashion-MNIST with lowered contrast and
Gaussian pixel noise (a brightness shift optional), drawn with fixed seeds: classifiers trained on
clean images lose accuracy there, and domain adaptation (:mod:`dwsnets.tasks.adapt`)
asks a model to update their weights so that they regain it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..core.forward import batched_mlp_forward
from ..core.weight_space import WeightSpace

__all__ = ["ClassifierFit", "Corruption", "classifier_forward", "thumbnails", "train_classifiers"]

BATCH = 128  # images per training step of every classifier


def thumbnails(images: np.ndarray | Tensor, pool: int = 4) -> Tensor:
    """``(N, H, W, 1)`` images in [0, 1] -> ``(N, (H/pool)*(W/pool))`` float32 classifier
    inputs (average pooling)."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.dim() != 4 or x.shape[-1] != 1 or x.shape[1] % pool or x.shape[2] % pool:
        raise ValueError(f"classifier inputs need grey images (N, H, W, 1) with H, W divisible by {pool}, "
                         f"got {tuple(x.shape)}")  # fmt: skip
    return torch.nn.functional.avg_pool2d(x.permute(0, 3, 1, 2), pool).flatten(1)


@dataclass(frozen=True)
class Corruption:
    """The target domain: ``clip(0.5 + contrast * (x - 0.5) + shift + noise * N(0, 1), 0, 1)``
    per pixel, with the noise drawn from a fixed seed per part of the data set, so every
    run sees the same corrupted images."""

    contrast: float = 0.7
    shift: float = 0.0
    noise: float = 0.2
    seed: int = 0

    def apply(self, images: np.ndarray, part: str) -> np.ndarray:
        """``(N, H, W, C)`` images in [0, 1] -> their target-domain versions."""
        rng = np.random.default_rng([7_000 + self.seed, 0 if part == "train" else 1])
        noise = rng.standard_normal(images.shape, dtype=np.float32) * self.noise
        out = 0.5 + self.contrast * (images.astype(np.float32) - 0.5) + self.shift + noise
        return np.clip(out, 0.0, 1.0)

    def as_dict(self) -> dict[str, float]:
        return {"contrast": self.contrast, "shift": self.shift, "noise": self.noise, "seed": self.seed}


def classifier_forward(x: Tensor, params: WeightSpace | Sequence[Tensor]) -> Tensor:
    """Logits of a batch of ReLU MLP classifiers at once.

    Args:
        x: ``(P, d_0)`` inputs shared by every network, or ``(N, P, d_0)`` per network.
        params: stacked ``[W1, b1, W2, b2, ...]`` (``W_m: (N, d_m, d_{m-1})``) or a
            one-channel :class:`~dwsnets.WeightSpace` of ``N`` networks.

    Returns ``(N, P, d_M)``, differentiable in ``params``: a loss on what the updated
    classifiers predict can train the model that updates them.
    """
    return batched_mlp_forward(x, params, torch.relu)


@dataclass
class ClassifierFit:
    """Trained parameters ``[W1, b1, ...]`` (leading axis: networks), each network's
    accuracy on the held-out images, its settings and its optimisation steps."""

    params: list[Tensor]
    accuracy: Tensor
    weight_decay: Tensor
    steps: Tensor


def _settings(seed: int, sizes: Sequence[int], max_steps: int) -> tuple[list[Tensor], float, int, torch.Generator]:
    g = torch.Generator().manual_seed(int(seed))
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(a)  # torch.nn.Linear's default initialisation
        params += [(torch.rand(b, a, generator=g) * 2 - 1) * bound, (torch.rand(b, generator=g) * 2 - 1) * bound]
    weight_decay = 10 ** float(torch.empty(()).uniform_(-5, -3, generator=g))
    steps = int(torch.randint(max(1, max_steps // 2), max_steps + 1, (), generator=g))
    return params, weight_decay, steps, g


def train_classifiers(
    x: Tensor,
    y: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    seeds: Sequence[int],
    *,
    hidden: Sequence[int] = (32, 32),
    classes: int = 10,
    lr: float = 3e-3,
    max_steps: int = 1000,
    chunk: int = 256,
    progress: Callable[[int, int, int, float], None] | None = None,
) -> ClassifierFit:
    """Train one classifier per seed on ``(x, y)``, ``chunk`` of them at a time.

    Network ``k`` starts from ``seeds[k]`` and takes its own weight decay, step budget and
    mini-batches from it: its result does not depend on which networks train beside it.
    ``progress(finished, active, step, mean_batch_accuracy)`` is called after every step.
    """
    sizes = (x.shape[1], *hidden, classes)
    n = len(seeds)
    out = [torch.empty(n, *p.shape) for p in _settings(0, sizes, max_steps)[0]]
    accuracy, decay, steps_taken = torch.empty(n), torch.empty(n), torch.empty(n, dtype=torch.int64)
    finished = 0
    for start in range(0, n, chunk):
        batch_seeds = seeds[start : start + chunk]
        drawn = [_settings(s, sizes, max_steps) for s in batch_seeds]
        params = [torch.stack([d[0][i] for d in drawn]).requires_grad_() for i in range(len(out))]
        wd = torch.tensor([d[1] for d in drawn])
        stop = torch.tensor([d[2] for d in drawn])
        generators = [d[3] for d in drawn]
        opt = torch.optim.Adam(params, lr=lr)
        k = len(batch_seeds)
        for step in range(int(stop.max())):
            idx = torch.stack([torch.randint(0, len(x), (BATCH,), generator=g) for g in generators])
            logits = classifier_forward(x[idx], params)
            ce = torch.nn.functional.cross_entropy(logits.reshape(-1, classes), y[idx].reshape(-1), reduction="none")
            penalty = sum(p.square().flatten(1).sum(1) for p in params[0::2])
            loss = (ce.view(k, BATCH).mean(1) + wd * penalty).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            live = stop > step  # networks past their budget keep their weights
            for p in params:
                p.grad[~live] = 0
            saved = [p.detach()[~live].clone() for p in params]
            opt.step()
            with torch.no_grad():
                for p, s in zip(params, saved):
                    p[~live] = s
            if progress is not None:
                hit = (logits.detach().argmax(-1) == y[idx]).float().mean()
                progress(finished, int(live.sum()), step, float(hit))
        with torch.no_grad():
            for o, p in zip(out, params):
                o[start : start + k] = p.detach()
            correct = torch.zeros(k)
            for i in range(0, len(x_test), 2000):
                pred = classifier_forward(x_test[i : i + 2000], params).argmax(-1)
                correct += (pred == y_test[i : i + 2000]).float().sum(1)
            accuracy[start : start + k] = correct / len(x_test)
        decay[start : start + k] = wd
        steps_taken[start : start + k] = stop
        finished += k
    return ClassifierFit(out, accuracy, decay, steps_taken)
