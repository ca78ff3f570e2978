"""Every model of the paper's tables behind one registry.

``build_model(name, layout, out_features)`` returns a module mapping a raw one-channel
:class:`~dwsnets.WeightSpace` to ``(B, out_features)``. Every model starts with the same
per-tensor :class:`~dwsnets.InputNormalization` (fitted by the trainer), so they differ
only in what they do with the weights. :data:`MODELS` holds, per name, the builder, the
training defaults, a readable label and the paper's published numbers:

* ``dwsnet``: :class:`~dwsnets.DWSNet`, invariant by construction (MLPs and CNNs);
* ``mlp``: an MLP on the flattened weight vector (no symmetry);
* ``mlp-aug``: the same MLP trained with random hidden-neuron permutations;
* ``mlp-align``: the same MLP on weights whose hidden neurons were first aligned to one
  reference network by weight matching (:mod:`dwsnets.baselines.alignment`);
* ``transformer``: a Transformer encoder over per-neuron tokens;
* ``inr2vec``: an inr2vec-style shared encoder on every neuron's weight row, max pooled;
* ``deepsets``: DeepSets over each layer's neurons, exactly invariant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..core.layout import WeightSpaceLayout, as_layout
from ..nn.models import DWSNet
from .common import BaselineError
from .flat import AlignedMLP, FlatMLP
from .neurons import Inr2VecEncoder, NeuronDeepSets, NeuronTransformer

__all__ = [
    "MODELS",
    "AlignedMLP",
    "BaselineError",
    "FlatMLP",
    "Inr2VecEncoder",
    "ModelSpec",
    "NeuronDeepSets",
    "NeuronTransformer",
    "build_model",
    "model_spec",
]


@dataclass(frozen=True)
class ModelSpec:
    """One model of the registry.

    Attributes:
        name: the command-line name.
        label: how tables print it.
        builder: ``builder(layout, out_features, **kwargs) -> nn.Module``.
        lr: default learning rate.
        augment_permute: whether training draws random hidden permutations by default.
        defaults: keyword arguments of the builder used unless overridden.
        paper: published numbers (Navon et al. 2023), per zoo source: test accuracy (%)
            of INR classification under the source's name, other tasks under
            ``"TASK/SOURCE"`` (``"contrastive/sine-ab"``: linear-probe test MSE). MNIST and
            the probe list only the numbers quoted in this project's issues.
        invariant: exactly invariant to hidden permutations by construction.
    """

    name: str
    label: str
    builder: Callable[..., nn.Module]
    lr: float
    augment_permute: bool
    defaults: dict[str, Any] = field(default_factory=dict)
    paper: dict[str, float] = field(default_factory=dict)
    invariant: bool = False


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "dwsnet",
            "DWSNet",
            DWSNet,
            2e-3,
            True,
            {"hidden_channels": 32, "num_layers": 5, "head_hidden": (256,), "dropout": 0.0, "norm": "batch"},
            {"fashion-mnist": 67.06, "mnist": 85.71, "contrastive/sine-ab": 1.39},
            invariant=True,
        ),
        ModelSpec(
            "mlp",
            "MLP",
            FlatMLP,
            1e-3,
            False,
            paper={"fashion-mnist": 19.91, "mnist": 17.55, "contrastive/sine-ab": 7.39},
        ),
        ModelSpec("mlp-aug", "MLP + permutation aug.", FlatMLP, 1e-3, True, paper={"fashion-mnist": 22.76}),
        ModelSpec(
            "mlp-align",
            "MLP + alignment",
            AlignedMLP,
            1e-3,
            False,
            paper={"fashion-mnist": 47.79, "mnist": 58.98, "contrastive/sine-ab": 4.47},
        ),
        ModelSpec("transformer", "Transformer", NeuronTransformer, 5e-4, False, paper={"fashion-mnist": 26.97}),
        ModelSpec(
            "inr2vec",
            "inr2vec-style",
            Inr2VecEncoder,
            1e-3,
            False,
            paper={"fashion-mnist": 22.33, "contrastive/sine-ab": 3.86},
        ),
        ModelSpec("deepsets", "DeepSets (neurons)", NeuronDeepSets, 1e-3, False, invariant=True),
    )
}


def model_spec(name: str) -> ModelSpec:
    """The registry entry of ``name``; a clear error listing the choices otherwise."""
    if name not in MODELS:
        raise BaselineError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]


def build_model(name: str, layout: WeightSpaceLayout | Sequence[int], out_features: int, **kwargs: Any) -> nn.Module:
    """A model of the registry by name, for networks of ``layout`` (or MLP layer sizes)."""
    spec = model_spec(name)
    return spec.builder(as_layout(layout), out_features, **{**spec.defaults, **kwargs})
