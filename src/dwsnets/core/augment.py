"""Weight-space augmentations drawn per batch on the training device (used by the trainer
and by tasks that make views of their own, such as contrastive learning).

Every draw comes from one CPU ``torch.Generator``, so a run is reproducible, resumes
identically, and every data-parallel rank draws the same augmentation for the global
batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from .transforms import transform_inputs, transform_outputs
from .weight_space import WeightSpace, WeightSpaceError

__all__ = ["ACTIVATIONS", "RESCALE_RANGE", "SignalTransforms", "activation_symmetry_factors", "augment"]


@dataclass(frozen=True)
class SignalTransforms:
    """Random transforms of the signal an INR represents, applied exactly to its weights
    (:mod:`dwsnets.core.transforms`). Each is drawn per network; zero switches it off.

    Attributes:
        rotate: rotation angle drawn uniformly in ``[-rotate, rotate]`` degrees (2-D inputs).
        scale: each input axis scaled by ``exp(u)``, ``u`` uniform in ``[-scale, scale]``
            (anisotropic).
        shear: shear factor uniform in ``[-shear, shear]`` (2-D inputs).
        translate: each input axis shifted uniformly in ``[-translate, translate]``, in
            coordinate units (an image spans ``[-1, 1]``).
        flip: input axes each mirrored with probability 1/2 (``(1,)``: left-right for
            images, whose coordinates are (row, column)).
        intensity_scale: output times ``1 + u``, ``u`` uniform in ``[-s, s]`` (contrast).
        intensity_shift: output plus ``u`` uniform in ``[-c, c]`` (brightness).

    The network then renders ``a f(A x + t) + c``: rendering the augmented INR on the
    original grid equals rendering the original on the transformed grid.
    """

    rotate: float = 0.0
    scale: float = 0.0
    shear: float = 0.0
    translate: float = 0.0
    flip: tuple[int, ...] = field(default_factory=tuple)
    intensity_scale: float = 0.0
    intensity_shift: float = 0.0

    @classmethod
    def from_dict(cls, options: dict[str, Any] | None) -> SignalTransforms:
        """From a settings dict (as stored in a run's config); checks names and ranges."""
        options = dict(options or {})
        unknown = set(options) - set(cls.__dataclass_fields__)
        if unknown:
            raise WeightSpaceError(
                f"unknown signal transform(s) {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}"
            )
        if "flip" in options:
            options["flip"] = tuple(int(a) for a in options["flip"])
        out = cls(**options)
        negative = [k for k, v in asdict(out).items() if k != "flip" and v < 0]
        if negative:
            raise WeightSpaceError(f"signal transform ranges must not be negative: {negative}")
        return out

    @property
    def moves_inputs(self) -> bool:
        return bool(self.rotate or self.scale or self.shear or self.translate or self.flip)

    @property
    def active(self) -> bool:
        return self.moves_inputs or bool(self.intensity_scale or self.intensity_shift)

    def sample(self, batch: int, d_in: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(A, t)``: ``(batch, d_in, d_in)`` and ``(batch, d_in)``, drawn on the CPU."""
        if d_in != 2 and (self.rotate or self.shear):
            raise WeightSpaceError(f"rotation and shear need 2-D inputs; these networks take {d_in}")
        if any(not 0 <= a < d_in for a in self.flip):
            raise WeightSpaceError(f"flip axes {self.flip} do not exist for {d_in}-D inputs")

        def uniform(bound: float, *shape: int) -> Tensor:
            return (torch.rand(*shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound

        a = torch.eye(d_in, dtype=torch.float64).repeat(batch, 1, 1)
        if self.scale:
            a = a * torch.exp(uniform(self.scale, batch, d_in))[:, None, :]
        if self.shear:
            shear = torch.eye(2, dtype=torch.float64).repeat(batch, 1, 1)
            shear[:, 0, 1] = uniform(self.shear, batch)
            a = shear @ a
        if self.rotate:
            angle = uniform(math.radians(self.rotate), batch)
            cos, sin = torch.cos(angle), torch.sin(angle)
            rotation = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
            a = rotation @ a
        for axis in self.flip:
            sign = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0).to(torch.float64)
            a[:, axis, :] = a[:, axis, :] * sign[:, None]
        t = uniform(self.translate, batch, d_in) if self.translate else torch.zeros(batch, d_in, dtype=torch.float64)
        return a, t

    def apply(self, ws: WeightSpace, generator: torch.Generator, *paired: WeightSpace) -> WeightSpace:
        """``ws`` with a freshly drawn transform per network. Networks in ``paired`` (the
        targets of a task whose outputs are networks) get the same transform, and the call
        then returns a tuple: ``(ws, *paired)``."""
        spaces = (ws, *paired)
        if self.moves_inputs:
            a, t = self.sample(ws.batch_size, ws.layer_sizes[0], generator)
            spaces = tuple(transform_inputs(s, a, t) for s in spaces)
        if self.intensity_scale or self.intensity_shift:
            gain = 1 + (torch.rand(ws.batch_size, generator=generator) * 2 - 1) * self.intensity_scale
            bias = (torch.rand(ws.batch_size, generator=generator) * 2 - 1) * self.intensity_shift
            spaces = tuple(transform_outputs(s, gain, bias) for s in spaces)
        return spaces if paired else spaces[0]  # type: ignore[return-value]


def augment(
    ws: WeightSpace,
    generator: torch.Generator,
    *,
    permute: bool,
    sign_flips: bool = False,
    noise: float = 0.0,
    entry_dropout: float = 0.0,
    scale: list[Tensor] | None = None,
    signal: SignalTransforms | None = None,
    paired: WeightSpace | None = None,
    activations: Tensor | None = None,
) -> WeightSpace | tuple[WeightSpace, WeightSpace]:
    """Random hidden permutations (one per network; a symmetry, so they change nothing for
    an invariant model and are the augmentation non-invariant baselines need), plus
    optional Gaussian noise and entry dropout (generic regularisers). ``sign_flips``: an
    independent random sign per hidden neuron as well (:meth:`WeightSpace.flip_signs`, a
    symmetry of networks with odd activations such as SIRENs; it changes a ReLU network).

    ``scale``: one ``(C,)`` spread per tensor for the noise (default 1), so ``noise`` is a
    fraction of each tensor's own spread. ``signal``: exact transforms of the represented
    signal (:class:`SignalTransforms`), applied first.

    ``activations``: each network's exact rescaling kind, ``(B,)`` or per hidden layer
    ``(B, H)`` (:meth:`~dwsnets.core.symmetry.NetworkActivations.factors_kind`: 0 positive
    scaling, 1 sign flips, 2 both, 3 nothing): every hidden neuron of a positively
    homogeneous (ReLU) layer rescaled by a factor log-uniform in
    [1/:data:`RESCALE_RANGE`, :data:`RESCALE_RANGE`] (:meth:`WeightSpace.rescale`), every
    hidden neuron of an odd (tanh) layer negated with probability 1/2 (both, for a linear one).

    ``paired``: networks that must move with the inputs (the targets of a task whose
    outputs are networks, one per input network): they get the same permutations and
    signal transforms, no noise or dropout, and the call returns ``(ws, paired)``.
    """
    if signal is not None and signal.active:
        if paired is None:
            ws = signal.apply(ws, generator)
        else:
            ws, paired = signal.apply(ws, generator, paired)
    if permute and len(ws.layer_sizes) > 2:
        perms = ws.random_permutations(generator, per_network=True)
        ws = ws.permute(perms)
        paired = None if paired is None else paired.permute(perms)
    if sign_flips and len(ws.layer_sizes) > 2:
        signs = ws.random_signs(generator, per_network=True)
        ws = ws.flip_signs(signs)
        paired = None if paired is None else paired.flip_signs(signs)
    if activations is not None and len(ws.layer_sizes) > 2:
        factors = activation_symmetry_factors(ws, activations, generator)
        ws = ws.rescale(factors)
        paired = None if paired is None else paired.rescale(factors)
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
    return ws if paired is None else (ws, paired)


# the first two rescaling kinds keep the codes of the zoos' ACTIVATIONS (0 ReLU, 1 tanh)
ACTIVATIONS = ("relu", "tanh")
RESCALE_RANGE = 2.0


def activation_symmetry_factors(ws: WeightSpace, activations: Tensor, generator: torch.Generator) -> list[Tensor]:
    """Per hidden layer ``(B, d_k)`` factors for :meth:`WeightSpace.rescale`, from each
    network's rescaling kind (``(B,)``, or ``(B, H)`` per hidden layer): log-uniform positive
    factors (kind 0), random signs (kind 1), both (kind 2), ones (kind 3 or anything else)."""
    kinds = torch.as_tensor(activations).cpu()
    kinds = kinds.reshape(-1, 1) if kinds.dim() <= 1 else kinds
    hidden = ws.layer_sizes[1:-1]
    if kinds.shape[0] != ws.batch_size or kinds.shape[1] not in (1, len(hidden)):
        raise WeightSpaceError(f"got activation kinds of shape {tuple(kinds.shape)} for {ws.batch_size} networks "
                               f"with {len(hidden)} hidden layers")  # fmt: skip
    span = math.log(RESCALE_RANGE)
    factors = []
    for k, d in enumerate(hidden):
        kind = kinds[:, min(k, kinds.shape[1] - 1)].reshape(-1, 1)
        positive = torch.exp(torch.empty(ws.batch_size, d).uniform_(-span, span, generator=generator))
        signs = torch.where(torch.rand(ws.batch_size, d, generator=generator) < 0.5, -1.0, 1.0)
        one = torch.ones(())
        q = torch.where(
            kind == 0, positive, torch.where(kind == 1, signs, torch.where(kind == 2, positive * signs, one))
        )
        factors.append(q.to(ws.device))
    return factors
