"""Every model of every task behind one registry.

``build_model(name, layout, out_features)`` returns a module mapping a raw one-channel
:class:`~dwsnets.WeightSpace` to ``(B, out_features)`` (classifiers, regressors,
encoders); ``build_editor(name, layout)`` returns the same model's weight-valued form,
mapping networks to networks of the same layout (the editing and adaptation tasks), for
the models that have one. Every model keeps the trainer's contract
(:class:`~dwsnets.nn.WeightSpaceModel`). :func:`check_model_args` validates keyword
arguments (``dwsnets train --model-arg KEY=VALUE``) against a builder's signature. Every model starts with the same
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
* ``deepsets``: DeepSets over each layer's neurons, exactly invariant;
* ``sign-equivariant``: :class:`~dwsnets.nn.sign_equivariant.SignEquivariantNet`, bilinear
  messages between neurons, invariant by construction to hidden permutations and to the
  sine's sign flips (MLPs only);
* ``statnn``: an MLP on the mean, variance and quantiles of every weight tensor
  (Unterthiner et al. 2020), exactly invariant, MLPs and CNNs alike;
* ``statnn-gbt``: the same statistics fed to gradient-boosted trees (scikit-learn), the
  original paper's predictor; fitted in one call (:mod:`dwsnets.baselines.gbt`), for
  generalization prediction.

Models that *query* the networks instead of reading their weights (``protocol
"queries"``, :mod:`dwsnets.nn.probing`); they need to know how the networks run, which the
trainer reads from the zoo (:func:`dwsnets.zoo.network_function`) and passes as ``function``:

* ``probe``: :class:`~dwsnets.nn.probing.ProbeNet`, responses at ``K`` probes made by a
  shared deep linear generator (ProbeGen), then an MLP;
* ``probe-hybrid``: :class:`~dwsnets.nn.probing.ProbeHybrid`, those responses beside the
  sign-equivariant model's (odd activations) or DWSNet's invariant features;
* ``render-linear`` and ``render-cnn``: every INR rendered on its own grid, then logistic
  regression or a small CNN: the reference rows of what the function holds (INR zoos).

``mlp-align``, ``transformer``, ``inr2vec``, ``deepsets`` and ``sign-equivariant`` read MLP
weights neuron by neuron and refuse CNN layouts; :func:`models_for` lists the models a zoo and task can use.

Editors: ``dwsnet`` (an :class:`~dwsnets.EquivariantDWSNet` adding a residual update),
``mlp`` and ``mlp-aug`` (:class:`FlatEditMLP`), ``mlp-align`` (:class:`AlignedEditMLP`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..core.function import NetworkFunction
from ..core.layout import WeightSpaceLayout, as_layout
from ..core.symmetry import SymmetryGroup
from ..nn.models import DWSNet, EquivariantDWSNet
from ..nn.probing import ProbeHybrid, ProbeNet
from ..nn.sign_equivariant import SignEquivariantNet
from .common import BaselineError, mlp_sizes
from .flat import AlignedEditMLP, AlignedMLP, FlatEditMLP, FlatMLP
from .gbt import fit_statnn_gbt
from .neurons import Inr2VecEncoder, NeuronDeepSets, NeuronTransformer
from .stats import StatNN

__all__ = [
    "MODELS",
    "PROTOCOLS",
    "AlignedEditMLP",
    "AlignedMLP",
    "BaselineError",
    "FlatEditMLP",
    "FlatMLP",
    "Inr2VecEncoder",
    "ModelSpec",
    "NeuronDeepSets",
    "NeuronTransformer",
    "StatNN",
    "build_editor",
    "build_model",
    "can_render",
    "check_model_args",
    "default_model",
    "model_spec",
    "models_for",
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
        sign_flips: whether classification on a zoo of SIRENs draws random sign flips of
            hidden neurons by default (the sine's symmetry; chosen where it won on validation).
        sign_invariant: the output does not change when a hidden neuron's incoming weights,
            bias and outgoing weights are negated (exact for odd activations such as a
            SIREN's sine), with the default arguments: what ``models_for`` reads before any model
            is built. The trainer asks the built model itself (``model.sign_invariant``), which
            also knows its arguments (DWSNet with ``input_encoding="fourier-even"``), and refuses
            zoos of ReLU networks, where a flip changes the function.
        editor: ``editor(layout, **kwargs) -> nn.Module`` mapping networks to networks of
            the same layout, or ``None`` when the model has no such form.
    """

    name: str
    label: str
    builder: Callable[..., nn.Module]
    lr: float
    augment_permute: bool
    defaults: dict[str, Any] = field(default_factory=dict)
    paper: dict[str, float] = field(default_factory=dict)
    invariant: bool = False
    sign_flips: bool = False
    sign_invariant: bool = False
    editor: Callable[..., nn.Module] | None = None
    # models fitted in one call instead of trained by gradient steps (scikit-learn):
    # ``fit(train, val, test, task, seed) -> {"val", "test", "seconds", ...}``
    fit: Callable[..., dict[str, Any]] | None = None
    mlp_only: bool = False  # reads MLP weights neuron by neuron: refuses CNN layouts
    # "weights": reads the parameters only; "queries": runs the networks (given ``function``)
    protocol: str = "weights"
    renders: bool = False  # reads INRs on their own grid: needs a function with a grid of coordinates


# what each protocol reads of a network: how tables and run records say it
PROTOCOLS = {"weights": "reads the weights only", "queries": "runs the networks at inputs it chooses"}


def _residual_dwsnet(layout: WeightSpaceLayout, **kwargs: Any) -> nn.Module:
    """The equivariant editor: an :class:`EquivariantDWSNet` adding an update (starts as the identity)."""
    return EquivariantDWSNet(layout, 1, residual=True, **kwargs)


def _fitted_in_one_call(layout: WeightSpaceLayout, out_features: int, **kwargs: Any) -> nn.Module:
    raise BaselineError("statnn-gbt is fitted by scikit-learn in one call, not built as a torch module: use it "
                        "through `dwsnets train` or `dwsnets table`")  # fmt: skip


def _sign_equivariant(layout: WeightSpaceLayout, out_features: int, **kwargs: Any) -> nn.Module:
    mlp_sizes(layout, "sign-equivariant")  # a clear error for CNN layouts
    return SignEquivariantNet(layout, out_features, **kwargs)


def _rendered(head: str, layout: WeightSpaceLayout, out_features: int, function: NetworkFunction,
              **head_args: Any) -> nn.Module:  # fmt: skip
    if not can_render(function):
        raise BaselineError(f"render-{head} reads INRs on the grid they were fitted on; these networks have no "
                            "such grid (image INRs do)")  # fmt: skip
    return ProbeNet(layout, out_features, function=function, probes="grid", head=head, **head_args)


def _render_linear(layout: WeightSpaceLayout, out_features: int, *, function: NetworkFunction,
                   dropout: float = 0.0) -> nn.Module:  # fmt: skip
    """Each INR rendered on its grid, then logistic regression (:class:`ProbeNet`, linear head)."""
    return _rendered("linear", layout, out_features, function, dropout=dropout)


def _render_cnn(layout: WeightSpaceLayout, out_features: int, *, function: NetworkFunction,
                head_hidden: Sequence[int] = (256, 256), dropout: float = 0.0) -> nn.Module:  # fmt: skip
    """Each INR rendered on its grid, then a small CNN (:class:`ProbeNet`, CNN head)."""
    return _rendered("cnn", layout, out_features, function, head_hidden=head_hidden, dropout=dropout)


def can_render(function: NetworkFunction | None) -> bool:
    """Whether the networks are INRs with a grid to be rendered on."""
    return function is not None and function.kind == "mlp" and function.grid is not None


def default_model(layout: WeightSpaceLayout, task: str, group: SymmetryGroup | None) -> str:
    """The model ``dwsnets train`` uses unless told: ``sign-equivariant`` to classify MLPs
    whose symmetry group holds sign flips (every activation odd, as a SIREN's sine), where it
    won on validation accuracy (the Fashion-MNIST proxy, 2 seeds, and the full zoo, 3 seeds:
    docs/results.md) at about twice DWSNet's training time; ``dwsnet`` for every other task,
    layout and zoo, and for networks whose activations are unknown (``group`` ``None``)."""
    if task == "classify" and layout.is_mlp and group is not None and group.sign_flips:
        return "sign-equivariant"
    return "dwsnet"


def models_for(layout: WeightSpaceLayout, task: str, group: SymmetryGroup | None = None,
               function: NetworkFunction | None = None) -> list[str]:  # fmt: skip
    """The registry's models that can learn ``task`` on networks of ``layout``; given the
    networks' symmetry ``group``, only the models whose invariances it holds (the models
    blind to a hidden neuron's sign need every activation odd). The models that query the
    networks are listed only given how they run (``function``), the renderings only for
    INRs with a grid."""
    names = [n for n, m in MODELS.items() if not (m.mlp_only and not layout.is_mlp)]
    names = [n for n in names if MODELS[n].protocol == "weights" or function is not None]
    names = [n for n in names if not MODELS[n].renders or can_render(function)]
    if group is not None:
        names = [n for n in names if not (MODELS[n].sign_invariant and not group.sign_flips)]
    return [n for n in names if MODELS[n].fit is None or task == "generalization"]


# 256 probes and dropout 0.3: the best validation accuracy of 12 settings on the 2,000-image
# Fashion-MNIST zoo (docs/results.md, 2026-12-08); the hybrid takes the same
_PROBE_DEFAULTS = {"num_probes": 256, "dropout": 0.3}


def _queries(name: str, label: str, builder: Callable[..., nn.Module], defaults: dict[str, Any] | None = None, *,
             renders: bool = False) -> ModelSpec:  # fmt: skip
    """A model that queries the networks: invariant by construction to every symmetry of
    their weights, so it draws no permutations (they would change nothing); lr 1e-3."""
    return ModelSpec(name, label, builder, 1e-3, False, dict(defaults or {}), invariant=True, protocol="queries",
                     renders=renders)  # fmt: skip


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
            sign_flips=True,
            editor=_residual_dwsnet,
        ),
        ModelSpec(
            "mlp",
            "MLP",
            FlatMLP,
            1e-3,
            False,
            paper={"fashion-mnist": 19.91, "mnist": 17.55, "contrastive/sine-ab": 7.39},
            editor=FlatEditMLP,
        ),
        ModelSpec(
            "mlp-aug", "MLP + permutation aug.", FlatMLP, 1e-3, True, paper={"fashion-mnist": 22.76}, editor=FlatEditMLP
        ),
        ModelSpec(
            "mlp-align",
            "MLP + alignment",
            AlignedMLP,
            1e-3,
            False,
            paper={"fashion-mnist": 47.79, "mnist": 58.98, "contrastive/sine-ab": 4.47},
            editor=AlignedEditMLP,
            mlp_only=True,
        ),
        ModelSpec(
            "transformer", "Transformer", NeuronTransformer, 5e-4, False, paper={"fashion-mnist": 26.97}, mlp_only=True
        ),
        ModelSpec(
            "inr2vec",
            "inr2vec-style",
            Inr2VecEncoder,
            1e-3,
            False,
            paper={"fashion-mnist": 22.33, "contrastive/sine-ab": 3.86},
            mlp_only=True,
        ),
        ModelSpec("deepsets", "DeepSets (neurons)", NeuronDeepSets, 1e-3, False, invariant=True, mlp_only=True),
        ModelSpec(
            "sign-equivariant",
            "Sign-equivariant messages",
            _sign_equivariant,
            4e-3,  # the best of 1e-3, 2e-3 and 4e-3 on the Fashion-MNIST proxy (validation, docs/results.md)
            False,
            {"hidden_channels": 32, "num_layers": 4, "head_hidden": (256,), "dropout": 0.0},
            invariant=True,
            sign_invariant=True,
            mlp_only=True,
        ),
        ModelSpec("statnn", "StatNN (tensor statistics)", StatNN, 1e-3, False, invariant=True),
        _queries("probe", "Probes (ProbeGen-style generator)", ProbeNet, _PROBE_DEFAULTS),
        _queries("probe-hybrid", "Probes + weight-space features", ProbeHybrid, _PROBE_DEFAULTS),
        _queries("render-linear", "Rendering + logistic regression", _render_linear, renders=True),
        _queries("render-cnn", "Rendering + small CNN", _render_cnn, renders=True),
        ModelSpec(
            "statnn-gbt",
            "StatNN + gradient-boosted trees",
            _fitted_in_one_call,
            1e-3,
            False,
            invariant=True,
            fit=fit_statnn_gbt,
        ),
    )
}


def model_spec(name: str) -> ModelSpec:
    """The registry entry of ``name``; a clear error listing the choices otherwise."""
    if name not in MODELS:
        raise BaselineError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]


def _builder(spec: ModelSpec, editor: bool) -> Callable[..., nn.Module]:
    if not editor:
        return spec.builder
    if spec.editor is None:
        choices = ", ".join(n for n, m in MODELS.items() if m.editor is not None)
        raise BaselineError(f"model {spec.name!r} has no form that outputs networks; choose from {choices}")
    return spec.editor


def check_model_args(name: str, model_args: dict[str, Any], editor: bool = False) -> None:
    """Raise a :class:`BaselineError` naming every key of ``model_args`` that the builder of
    ``name`` (its editor with ``editor``) does not take, and the keys it does take."""
    builder = _builder(model_spec(name), editor)
    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        target = getattr(builder, "__init__", builder)
        target = {_residual_dwsnet: EquivariantDWSNet.__init__, _sign_equivariant: SignEquivariantNet.__init__}.get(
            builder, target
        )
        params = inspect.signature(target).parameters
    fixed = {"self", "layout", "layer_sizes", "num_classes", "out_features", "out_channels", "in_channels", "function"}
    known = sorted(k for k, p in params.items() if k not in fixed and p.kind is not inspect.Parameter.VAR_KEYWORD)
    unknown = sorted(set(model_args) - set(known))
    if unknown:
        raise BaselineError(
            f"model {name!r}{' (editor)' if editor else ''} takes no argument {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(known) or 'none'}"
        )


def build_model(name: str, layout: WeightSpaceLayout | Sequence[int], out_features: int, **kwargs: Any) -> nn.Module:
    """A model of the registry by name, for networks of ``layout`` (or MLP layer sizes)."""
    spec = model_spec(name)
    if spec.protocol == "queries" and not isinstance(kwargs.get("function"), NetworkFunction):
        raise BaselineError(f"model {name!r} queries the networks: it needs function=NetworkFunction(...) saying "
                            "how they run (the trainer reads it from the zoo)")  # fmt: skip
    return spec.builder(as_layout(layout), out_features, **{**spec.defaults, **kwargs})


def build_editor(name: str, layout: WeightSpaceLayout, **kwargs: Any) -> nn.Module:
    """The weight-valued form of a registry model: networks in, networks of ``layout`` out."""
    return _builder(model_spec(name), True)(as_layout(layout), **kwargs)
