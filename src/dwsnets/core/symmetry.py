"""One description of a network's symmetries: its layout's permutations and what its
activations allow.

A feed-forward network's symmetry group has two parts:

* the **permutations** its structure allows: every hidden index of the
  :class:`~dwsnets.core.layout.WeightSpaceLayout` (hidden neurons, hidden channels) is
  permuted by its own symmetric group;
* what each hidden neuron's **activation** allows besides: multiplying a neuron's incoming
  weights and bias by ``q`` and dividing its outgoing weights by ``q`` keeps the function
  for ``q = -1`` when the activation is *odd* (``sin``, ``tanh``: sign flips) and for every
  ``q > 0`` when it is *positively homogeneous* (ReLU, leaky ReLU: positive scaling).
  Anything else (sigmoid, SELU, GELU) allows nothing more.

:class:`SymmetryGroup` is computed once, from the layout and the activations a zoo records
for its networks, and every consumer reads it: augmentations sample from it, canonical
forms quotient by it, models declare which part of it they are invariant to, and the
trainer refuses a model or flag the group does not support
(:class:`~dwsnets.core.symmetry_policy.SymmetryPolicy`). An activation this module does
not know is refused with an error that says how to declare it
(:func:`register_activation`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .layout import WeightSpaceLayout

__all__ = [
    "ACTIVATION_PROPERTIES",
    "ActivationProperties",
    "NetworkActivations",
    "SymmetryError",
    "SymmetryGroup",
    "activation_properties",
    "register_activation",
]


class SymmetryError(ValueError):
    """A symmetry operation, model or activation that the networks' group does not support."""


@dataclass(frozen=True)
class ActivationProperties:
    """What an activation ``s`` allows: ``odd`` when ``s(-z) = -s(z)`` (sign flips keep the
    function), ``homogeneous`` when ``s(q z) = q s(z)`` for every ``q > 0`` (positive scaling
    keeps it)."""

    name: str
    odd: bool
    homogeneous: bool


ACTIVATION_PROPERTIES: dict[str, ActivationProperties] = {}


def register_activation(name: str, *, odd: bool, homogeneous: bool, aliases: Iterable[str] = ()) -> None:
    """Declare an activation (and other names for it) so that zoos may record it.

    ``odd``: ``s(-z) = -s(z)``; ``homogeneous``: ``s(q z) = q s(z)`` for every ``q > 0``.
    Declare only what holds exactly: a wrong ``True`` lets augmentations change networks'
    functions."""
    props = ActivationProperties(name, bool(odd), bool(homogeneous))
    for key in (name, *aliases):
        ACTIVATION_PROPERTIES[key.lower()] = props


for _name, _odd, _homogeneous, _aliases in (
    ("relu", False, True, ()),
    ("leaky_relu", False, True, ("leakyrelu",)),
    ("tanh", True, False, ()),
    ("sine", True, False, ("sin", "siren")),
    ("identity", True, True, ("linear", "none")),
    ("sigmoid", False, False, ()),
    ("selu", False, False, ()),
    ("elu", False, False, ()),
    ("gelu", False, False, ()),
    ("softplus", False, False, ()),
    ("swish", False, False, ("silu",)),
):
    register_activation(_name, odd=_odd, homogeneous=_homogeneous, aliases=_aliases)


def activation_properties(name: str) -> ActivationProperties:
    """The declared properties of ``name``; a :class:`SymmetryError` saying how to declare
    an unknown one."""
    try:
        return ACTIVATION_PROPERTIES[str(name).lower()]
    except KeyError:
        raise SymmetryError(
            f"unknown activation {name!r}: declare it with dwsnets.core.symmetry.register_activation({name!r}, "
            "odd=..., homogeneous=...) so its symmetries are known"
        ) from None


@dataclass(frozen=True)
class NetworkActivations:
    """The activations of a zoo's networks, per network and hidden layer.

    Attributes:
        names: the vocabulary, every activation a network of the zoo may have.
        codes: ``None`` when every network has ``names[0]`` on every hidden layer; else
            ``(N,)`` (one activation per network, every hidden layer) or ``(N, H)`` (per
            hidden layer, ``H`` the number of hidden indices) indices into ``names``.
    """

    names: tuple[str, ...]
    codes: Tensor | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.names:
            raise SymmetryError("a record of activations needs at least one name")
        for name in self.names:
            activation_properties(name)  # unknown names are refused here, once
        if self.codes is None and len(self.names) != 1:
            raise SymmetryError(f"several activations {list(self.names)} need per-network codes")
        if self.codes is not None:
            codes = torch.as_tensor(self.codes)
            if codes.dim() not in (1, 2) or (codes.is_floating_point() and not bool((codes == codes.round()).all())):
                raise SymmetryError("activation codes must be integers of shape (N,) or (N, hidden layers)")
            codes = codes.round().long()
            if len(codes) and (int(codes.min()) < 0 or int(codes.max()) >= len(self.names)):
                raise SymmetryError(f"activation codes outside 0..{len(self.names) - 1} ({list(self.names)})")
            object.__setattr__(self, "codes", codes)

    def factors_kind(self, rows: Tensor | None = None) -> Tensor:
        """``(n, H)`` or ``(n,)`` codes of each network's exact rescaling: 0 positive scaling,
        1 sign flips, 2 both (identity), 3 nothing; for the networks ``rows`` (all when
        ``None``, which a record without per-network codes cannot count)."""
        kind = []
        for name in self.names:
            p = activation_properties(name)
            kind.append(2 if p.odd and p.homogeneous else 1 if p.odd else 0 if p.homogeneous else 3)
        table = torch.tensor(kind)
        if self.codes is None:  # every network has names[0]
            if rows is None:
                raise SymmetryError("one activation for every network: name the networks (rows) to count them")
            return table[torch.zeros(len(rows), dtype=torch.long)]
        codes = self.codes if rows is None else self.codes[rows.cpu()]
        return table[codes]


@dataclass(frozen=True)
class SymmetryGroup:
    """The symmetry group of every network of a zoo: its layout's hidden permutations, and
    the activation symmetries that hold for all of them.

    Attributes:
        layout: the networks' layout (its hidden indices are the permuted axes).
        activations: per hidden index (in increasing order), the set of activations any
            network of the zoo may have there; ``None`` when unknown (outside data that
            declared none): then only the permutations are known to hold.
    """

    layout: WeightSpaceLayout
    activations: tuple[frozenset[str], ...] | None = None

    @classmethod
    def of(
        cls, layout: WeightSpaceLayout, activations: Sequence[str] | Sequence[Sequence[str]] | None
    ) -> SymmetryGroup:
        """The group of networks of ``layout`` whose hidden activations are among
        ``activations``: names shared by every hidden layer, or one sequence of names per
        hidden index; ``None`` when unknown. Unknown names are refused
        (:func:`activation_properties`)."""
        hidden = len(layout.hidden_sizes)
        if activations is None:
            return cls(layout, None)
        items = list(activations)
        if not items:
            raise SymmetryError("an empty list of activations describes no network")
        if all(isinstance(a, str) for a in items):
            names = frozenset(activation_properties(n).name for n in items)
            return cls(layout, tuple(names for _ in range(hidden)))
        if len(items) != hidden:
            raise SymmetryError(f"activations for {len(items)} hidden layers; the layout has {hidden}")
        return cls(layout, tuple(frozenset(activation_properties(n).name for n in layer) for layer in items))

    def _all(self, prop: str) -> bool:
        if self.activations is None or not self.layout.is_feedforward:
            return False
        return all(getattr(activation_properties(n), prop) for layer in self.activations for n in layer)

    @property
    def permutations(self) -> dict[int, int]:
        """Hidden index -> number of neurons its symmetric group permutes."""
        return self.layout.hidden_sizes

    @property
    def sign_flips(self) -> bool:
        """Negating any hidden neuron keeps every network's function (every activation odd)."""
        return self._all("odd")

    @property
    def positive_scaling(self) -> bool:
        """Rescaling any hidden neuron by ``q > 0`` keeps every network's function (every
        activation positively homogeneous)."""
        return self._all("homogeneous")

    @property
    def mixed(self) -> bool:
        """Some networks (or layers) have activations with different symmetries."""
        if self.activations is None:
            return False
        kinds = {(p.odd, p.homogeneous) for layer in self.activations for p in map(activation_properties, layer)}
        return len(kinds) > 1

    def activation_names(self) -> list[str]:
        """Every activation any network may have, sorted (empty when unknown)."""
        return sorted(set().union(*self.activations)) if self.activations else []

    def require(self, part: str, what: str) -> None:
        """Raise a one-line :class:`SymmetryError` unless the group holds ``part``
        (``"sign_flips"`` or ``"positive_scaling"``); ``what`` names what asked for it."""
        if getattr(self, part):
            return
        need = {"sign_flips": "odd (sine, tanh)", "positive_scaling": "positively homogeneous (ReLU)"}[part]
        if self.activations is None:
            why = ("these networks' activations are not recorded; declare them (InMemoryZoo(..., activations=...), "
                   "or a zoo made by dwsnets)")  # fmt: skip
        else:
            why = f"these networks have {', '.join(self.activation_names())}"
        raise SymmetryError(f"{what} needs every hidden activation {need}, but {why}")

    def describe(self) -> str:
        """One line: the permutations and the activation part."""
        perms = " x ".join(f"S_{d}" for d in self.permutations.values()) or "nothing"
        extra = []
        if self.sign_flips:
            extra.append("sign flips")
        if self.positive_scaling:
            extra.append("positive scaling")
        acts = ", ".join(self.activation_names()) or "activations unknown"
        return f"{perms} (hidden permutations)" + "".join(f" x {e}" for e in extra) + f" [{acts}]"
