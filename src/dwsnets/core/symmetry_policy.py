"""What a run does with its networks' symmetry group: which augmentations it draws, which
canonical form it takes, which models it admits (:class:`SymmetryPolicy`).

The policy is made once per run from the :class:`~dwsnets.core.symmetry.SymmetryGroup` of
the data and the run's flags, and every consumer calls it: the trainer for each training
batch and for the splits it evaluates, tasks that draw views of their own (contrastive
learning) for theirs. :meth:`SymmetryPolicy.check` refuses whatever the group does not hold,
with a one-line reason; the trainer calls it before training reads any split (evaluating a
finished run does not, so runs made before a refusal existed can still be read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .augment import SignalTransforms, augment
from .signs import sign_canonical_form
from .symmetry import NetworkActivations, SymmetryError, SymmetryGroup
from .weight_space import WeightSpace

__all__ = ["SymmetryPolicy"]


@dataclass(frozen=True)
class SymmetryPolicy:
    """A run's use of its networks' symmetry group.

    Attributes:
        group: the symmetry group every network of the data shares.
        permute: draw a random hidden permutation per training network.
        sign_flips: draw a random sign per hidden neuron (needs ``group.sign_flips``).
        canonical_signs: show every network in its sign canonical form
            (:mod:`dwsnets.core.signs`), re-taken after every augmentation (needs
            ``group.sign_flips``).
        activation_symmetries: each network's own activation symmetry (positive scaling of
            ReLU neurons, sign flips of tanh neurons), from the per-network record, so that
            mixed zoos get what holds for each network.
    """

    group: SymmetryGroup
    permute: bool = True
    sign_flips: bool = False
    canonical_signs: bool = False
    activation_symmetries: bool = False

    def check(self) -> None:
        """Refuse, in one line, what the group does not hold (a run's flags, before training)."""
        if self.sign_flips and self.canonical_signs:
            raise SymmetryError("--sign-flips would undo --canonical-signs (random flips of canonical networks): "
                                "choose one")  # fmt: skip
        if self.sign_flips:
            self.group.require("sign_flips", "--sign-flips")
        if self.canonical_signs:
            self.group.require("sign_flips", "--canonical-signs")
        if self.activation_symmetries:
            if not self.group.layout.is_feedforward:
                raise SymmetryError("--activation-symmetries needs a feed-forward layout (MLP or CNN)")
            if self.group.activations is None:
                raise SymmetryError("--activation-symmetries needs each network's activation, and these networks' "
                                    "activations are not recorded")  # fmt: skip

    def check_model(self, model: Any, name: str = "this") -> None:
        """Refuse a model whose invariances the group does not hold: a model that gives the
        same output when a hidden neuron's weights are negated (``model.sign_invariant``)
        needs every activation odd."""
        # any part of it: a task may wrap the registry's model (contrastive learning's projection head)
        if any(getattr(m, "sign_invariant", False) for m in model.modules()):
            self.group.require("sign_flips", f"the {name} model (blind to the sign of hidden neurons)")

    def canonical(self, ws: WeightSpace) -> WeightSpace:
        """``ws`` in the policy's canonical form (itself when there is none)."""
        return sign_canonical_form(ws) if self.canonical_signs else ws

    def augment(
        self,
        ws: WeightSpace,
        generator: torch.Generator,
        *,
        activations: NetworkActivations | None = None,
        rows: Tensor | None = None,
        noise: float = 0.0,
        entry_dropout: float = 0.0,
        scale: list[Tensor] | None = None,
        signal: SignalTransforms | None = None,
        paired: WeightSpace | None = None,
    ) -> WeightSpace | tuple[WeightSpace, WeightSpace]:
        """A random draw of the policy's symmetries (and the given signal transforms and
        generic regularisers) applied to ``ws``, then the canonical form taken again, so
        that training inputs stay in the form validation and test are shown.

        ``activations`` and ``rows``: the record of the data set's networks and which of
        them ``ws`` holds, for ``activation_symmetries``. ``paired``: networks that move
        with the inputs (network-valued targets); the call then returns ``(ws, paired)``."""
        kinds = None
        if self.activation_symmetries:
            if activations is None:
                raise SymmetryError("activation symmetries need each network's activation")
            kinds = activations.factors_kind(torch.arange(ws.batch_size) if rows is None else rows)
        out = augment(ws, generator, permute=self.permute, sign_flips=self.sign_flips, noise=noise,
                      entry_dropout=entry_dropout, scale=scale, signal=signal, paired=paired,
                      activations=kinds)  # fmt: skip
        if not self.canonical_signs:
            return out
        if paired is not None:
            raise SymmetryError("--canonical-signs with networks as targets: not supported (the targets would "
                                "need their inputs' signs in every split)")  # fmt: skip
        return self.canonical(out)  # type: ignore[arg-type]
