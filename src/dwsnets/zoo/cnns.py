"""Zoos of small CNNs trained with drawn hyperparameters (the Small CNN Zoo's recipe).

The architecture is the Small CNN Zoo's (Unterthiner et al. 2020; google-research's
``dnn_predict_accuracy/train_network.py``): three 3x3 convolutions of 16 channels with
stride 2 and Keras' default padding ``'valid'`` (28 -> 13 -> 6 -> 2), each followed by the
activation and dropout, global average pooling and a dense layer to the classes; images
scaled to [-1, 1], colour averaged to grey. A padded variant (padding 1 on each side)
serves images too small for that (8x8 digits) and zoos made before 2026-12-08. Each
network draws from its own seed, as the original zoo did:

* activation: ReLU or tanh;
* initialisation: kernels ``N(0, (g / sqrt(fan_in))^2)`` with ``g`` log-uniform in
  [0.1, 4], biases zero;
* L2 weight (on every kernel and dense weight): log-uniform in [1e-8, 1e-2];
* dropout rate: uniform in [0, 0.7] (rounded to a multiple of 1/256);
* optimiser: Adam, SGD with momentum 0.9, or RMSProp (decay 0.9);
* learning rate: log-uniform in [5e-4, 5e-2];
* fraction of the training images it may see: 0.1, 0.25, 0.5 or 1.

Every network takes the same number of steps on its own mini-batches of
:data:`BATCH` images from its own subset. A network whose loss stops being finite, or
whose weights blow up (beyond :data:`MAX_WEIGHT`), keeps its last weights and stops
(``diverged``), as a crashed run would.
Networks of one activation train together as grouped convolutions
(:func:`~dwsnets.core.forward.batched_cnn_forward`); each is a function of its seed alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.augment import ACTIVATIONS
from ..core.forward import batched_cnn_forward
from ..core.layout import WeightSpaceLayout

__all__ = ["BATCH", "CHANNELS", "OPTIMIZERS", "CNNFit", "CNNSettings", "cnn_layout", "draw_settings", "train_cnns"]

BATCH = 32  # images per training step of every network
CHANNELS = 16  # channels of each convolution
OPTIMIZERS = ("adam", "sgd", "rmsprop")
FRACTIONS = (0.1, 0.25, 0.5, 1.0)
STRIDE = 2  # of every convolution (the published cnn_stride)
# the published convolutions take Keras' default padding, 'valid' (28 -> 13 -> 6 -> 2); 1 is the padded variant
PADDING = 0
MAX_WEIGHT = 1e4  # a network with a weight beyond this has blown up: it stops (kept at its last state)
TRAIN_ACCURACY_IMAGES = 2000  # of each network's own training images, for its train accuracy


def feature_sizes(size: int, padding: int = PADDING, layers: int = 3, stride: int = STRIDE) -> list[int]:
    """Side of each convolution's output for square inputs of side ``size`` (3x3 kernels);
    a ``ValueError`` when an image is too small for the convolutions."""
    sizes, side = [], size
    for _ in range(layers):
        size = (size + 2 * padding - 3) // stride + 1
        if size < 1:
            raise ValueError(f"images of side {side} are too small for {layers} 3x3 stride-{stride} "
                             f"convolutions with padding {padding}")  # fmt: skip
        sizes.append(size)
    return sizes


def cnn_layout(in_channels: int = 1, classes: int = 10) -> WeightSpaceLayout:
    """The Small CNN Zoo architecture: 3 convolutions (3x3, 16 channels), pooling, dense."""
    return WeightSpaceLayout.cnn((in_channels, CHANNELS, CHANNELS, CHANNELS), [(3, 3)] * 3, (classes,))


@dataclass(frozen=True)
class CNNSettings:
    """One network's drawn hyperparameters."""

    activation: str
    init_scale: float
    l2: float
    dropout: float
    optimizer: str
    lr: float
    train_fraction: float

    def as_numbers(self) -> dict[str, float]:
        """What the zoo stores: categories as their index in :data:`ACTIVATIONS` / :data:`OPTIMIZERS`."""
        return {"activation": ACTIVATIONS.index(self.activation), "init_scale": self.init_scale, "l2": self.l2,
                "dropout": self.dropout, "optimizer": OPTIMIZERS.index(self.optimizer), "lr": self.lr,
                "train_fraction": self.train_fraction}  # fmt: skip


def _log_uniform(g: torch.Generator, low: float, high: float) -> float:
    return math.exp(float(torch.empty(()).uniform_(math.log(low), math.log(high), generator=g)))


def draw_settings(seed: int) -> tuple[CNNSettings, torch.Generator]:
    """A network's hyperparameters and the generator that then draws its weights and data."""
    g = torch.Generator().manual_seed(int(seed))
    pick = lambda options: options[int(torch.randint(len(options), (), generator=g))]  # noqa: E731
    settings = CNNSettings(
        activation=pick(ACTIVATIONS),
        init_scale=_log_uniform(g, 0.1, 4.0),
        l2=_log_uniform(g, 1e-8, 1e-2),
        dropout=round(float(torch.empty(()).uniform_(0.0, 0.7, generator=g)) * 256) / 256,
        optimizer=pick(OPTIMIZERS),
        lr=_log_uniform(g, 5e-4, 5e-2),
        train_fraction=pick(FRACTIONS),
    )
    return settings, g


def _initial_weights(layout: WeightSpaceLayout, scale: float, g: torch.Generator) -> list[Tensor]:
    params = []
    for weight, bias in zip(layout.tensors[: len(layout.tensors) // 2], layout.tensors[len(layout.tensors) // 2 :]):
        fan_in = math.prod(weight.shape[1:])
        params += [torch.randn(weight.shape, generator=g) * (scale / math.sqrt(fan_in)), torch.zeros(bias.shape)]
    return params


@dataclass
class CNNFit:
    """Trained parameters ``[K1, b1, K2, b2, K3, b3, W4, b4]`` (leading axis: networks), each
    network's test and train accuracy, its settings, and whether it diverged."""

    params: list[Tensor]
    accuracy: Tensor
    train_accuracy: Tensor
    settings: list[CNNSettings]
    diverged: Tensor


class _Optimizers:
    """Adam, SGD with momentum and RMSProp at once, each network with its own kind and
    learning rate (Keras' constants: Adam 0.9 / 0.999, momentum 0.9, RMSProp decay 0.9,
    epsilon 1e-7)."""

    def __init__(self, params: list[Tensor], settings: Sequence[CNNSettings]) -> None:
        self.params = params
        kinds = [s.optimizer for s in settings]
        self.lr = torch.tensor([s.lr for s in settings])
        self.sgd = torch.tensor([k == "sgd" for k in kinds])
        self.adam = torch.tensor([k == "adam" for k in kinds])
        self.rms = torch.tensor([k == "rmsprop" for k in kinds])
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self, live: Tensor) -> None:
        self.t += 1
        c1, c2 = 1 - 0.9**self.t, 1 - 0.999**self.t
        for p, m, v in zip(self.params, self.m, self.v):
            shape = (-1,) + (1,) * (p.dim() - 1)
            sgd, adam, rms = self.sgd.view(shape), self.adam.view(shape), self.rms.view(shape)
            g = p.grad
            m.copy_(torch.where(sgd, 0.9 * m + g, 0.9 * m + 0.1 * g))
            v.copy_(torch.where(rms, 0.9 * v + 0.1 * g * g, 0.999 * v + 0.001 * g * g))
            adam_update = (m / c1) / ((v / c2).sqrt() + 1e-7)
            rms_update = g / (v.sqrt() + 1e-7)
            update = torch.where(sgd, m, torch.where(adam, adam_update, rms_update))
            p.sub_(update * (self.lr * live).view(shape))


def _dropout_masks(generators: list[torch.Generator], rates: Tensor, batch: int, channels: int,
                   size: tuple[int, int]) -> Tensor:  # fmt: skip
    """Inverted-dropout multipliers ``(B, N * channels, H, W)``, each network's from its
    generator: one random byte per unit, dropped below ``rate * 256`` (rates are multiples
    of 1/256; eight bytes per draw, ten times faster than a float per unit, measured)."""
    units = batch * channels * size[0] * size[1]
    words = (units + 7) // 8
    full = (-(2**63), 2**63 - 1)
    drawn = torch.stack([torch.randint(*full, (words,), generator=g, dtype=torch.int64) for g in generators])
    n = len(generators)
    # made in the memory order of the activations (channels last: batch, height, width, network, channel)
    random_bytes = drawn.view(torch.uint8)[:, :units].view(n, batch, *size, channels).permute(1, 2, 3, 0, 4)
    random_bytes = random_bytes.contiguous()
    threshold = (rates * 256).round().to(torch.uint8).view(n, 1)
    scale = (1.0 / (1.0 - rates)).view(n, 1)
    masks = (random_bytes >= threshold) * scale  # (the fastest of the forms measured)
    return masks.view(batch, *size, n * channels).permute(0, 3, 1, 2)


def _accuracy(images: Tensor, labels: Tensor, params: list[Tensor], activation: Callable[[Tensor], Tensor],
              chunk: int = 64, padding: int = PADDING) -> Tensor:  # fmt: skip
    """Per network: the fraction of ``images`` (shared ``(P, C, H, W)`` or per network
    ``(N, P, C, H, W)``) it classifies as ``labels`` (``(P,)`` or ``(N, P)``)."""
    n = params[0].shape[0]
    correct = torch.zeros(n)
    count = images.shape[-4]
    with torch.no_grad():
        for i in range(0, count, chunk):
            x = images[..., i : i + chunk, :, :, :]
            y = labels[..., i : i + chunk]
            pred = batched_cnn_forward(x, params, activation, stride=STRIDE, padding=padding).argmax(-1)
            correct += (pred == y).float().sum(1)
    return correct / count


def _train_group(images: Tensor, labels: Tensor, settings: list[CNNSettings], generators: list[torch.Generator],
                 steps: int, progress: Callable[[int, int, float], None] | None, padding: int = PADDING,
                 ) -> tuple[list[Tensor], Tensor, list[Tensor]]:  # fmt: skip
    """Train networks of one activation together; returns their parameters, which diverged,
    and each one's training images (indices into ``images``)."""
    layout = cnn_layout(images.shape[1], int(labels.max()) + 1)
    drawn = [_initial_weights(layout, s.init_scale, g) for s, g in zip(settings, generators)]
    params = [torch.stack([d[i] for d in drawn]).requires_grad_() for i in range(len(drawn[0]))]
    subsets = [torch.randperm(len(images), generator=g)[: int(len(images) * s.train_fraction)]
               for s, g in zip(settings, generators)]  # fmt: skip
    act = torch.relu if settings[0].activation == "relu" else torch.tanh
    l2 = torch.tensor([s.l2 for s in settings])
    rates = torch.tensor([s.dropout for s in settings])
    opt = _Optimizers(params, settings)
    live = torch.ones(len(settings), dtype=torch.bool)
    sizes = feature_sizes(images.shape[2], padding)
    for step in range(steps):
        idx = torch.stack([s[torch.randint(len(s), (BATCH,), generator=g)] for s, g in zip(subsets, generators)])
        masks = [_dropout_masks(generators, rates, BATCH, CHANNELS, (h, h)) for h in sizes]
        logits = batched_cnn_forward(images[idx], params, act, stride=STRIDE, padding=padding,
                                     dropout=lambda layer, h, masks=masks: h * masks[layer])  # fmt: skip
        y = labels[idx]
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
        penalty = sum(p.square().flatten(1).sum(1) for p in params[0::2])
        per_network = ce.view(len(settings), BATCH).mean(1) + l2 * penalty
        finite = torch.isfinite(per_network.detach())
        for p in params:
            p.grad = None
        per_network.where(finite, 0.0).sum().backward()
        with torch.no_grad():
            before = [p.detach().clone() for p in params]
            live &= finite
            for p in params:
                live &= torch.isfinite(p.grad).flatten(1).all(1)
                p.grad.nan_to_num_(0.0, 0.0, 0.0)
            opt.step(live.float())
            for p in params:
                live &= p.abs().flatten(1).amax(1) <= MAX_WEIGHT  # (NaN compares false: not finite, not live)
            for p, b in zip(params, before):  # a network that stopped being finite keeps its last weights
                p[~live] = b[~live]
        if progress is not None:
            hit = (logits.detach().argmax(-1) == y).float().mean()
            progress(int(live.sum()), step, float(hit))
    return [p.detach() for p in params], ~live, subsets


def train_cnns(
    images: Tensor,
    labels: Tensor,
    test_images: Tensor,
    test_labels: Tensor,
    seeds: Sequence[int],
    *,
    steps: int = 1000,
    chunk: int = 32,
    padding: int = PADDING,
    progress: Callable[[int, int, int, float], None] | None = None,
) -> CNNFit:
    """Train one CNN per seed (its settings: :func:`draw_settings`) for ``steps`` steps.

    Args:
        images, labels: training images ``(N, C, H, W)`` in [-1, 1] and labels ``(N,)``.
        test_images, test_labels: where each network's ``accuracy`` is measured (all of them).
        chunk: networks trained together (of one activation).
        padding: of every convolution: 0 (``'valid'``, the published architecture), or 1
            (the padded variant, for images too small for three valid convolutions).
        progress: ``progress(finished, active, step, mean_batch_accuracy)`` after every step.
    """
    drawn = [draw_settings(s) for s in seeds]
    n = len(seeds)
    layout = cnn_layout(images.shape[1], int(labels.max()) + 1)
    layers = len(layout.tensors) // 2  # weights, then biases: stored as [K1, b1, K2, b2, ...]
    out = [torch.empty(n, *t.shape) for m in range(layers) for t in (layout.tensors[m], layout.tensors[layers + m])]
    accuracy, train_accuracy, diverged = torch.empty(n), torch.empty(n), torch.zeros(n, dtype=torch.bool)
    finished = 0
    for activation in ACTIVATIONS:  # networks of one activation train together
        members = [i for i, (s, _) in enumerate(drawn) if s.activation == activation]
        act = torch.relu if activation == "relu" else torch.tanh
        for start in range(0, len(members), chunk):
            rows = members[start : start + chunk]
            settings, generators = [drawn[i][0] for i in rows], [drawn[i][1] for i in rows]
            report = None if progress is None else (lambda a, s, q, done=finished: progress(done, a, s, q))
            params, gone, subsets = _train_group(images, labels, settings, generators, steps, report, padding)
            seen = min(TRAIN_ACCURACY_IMAGES, *(len(s) for s in subsets))
            own = torch.stack([s[:seen] for s in subsets])  # random members of each one's training images
            index = torch.tensor(rows)
            for o, p in zip(out, params):
                o[index] = p
            accuracy[index] = _accuracy(test_images, test_labels, params, act, padding=padding)
            train_accuracy[index] = _accuracy(images[own], labels[own], params, act, padding=padding)
            diverged[index] = gone
            finished += len(rows)
    return CNNFit(out, accuracy, train_accuracy, [s for s, _ in drawn], diverged)
