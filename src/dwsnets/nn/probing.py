"""Models that query networks instead of reading their weights: probing.

A network's weights are one of many descriptions of its function; probing reads the
function itself. :class:`ProbeNet` runs every network of a batch at ``K`` inputs (the
probes) in one batched forward (:class:`~dwsnets.core.function.NetworkFunction`) and
classifies or regresses from the responses. Where the probes come from
(:class:`ProbeSet`):

* ``"generated"``: ProbeGen's recipe (Kahana et al., ICLR 2025): learned latent codes
  mapped to inputs by one shared *deep linear* generator. Its key finding is that probes
  learned freely overfit and do no better than random ones; the shared generator ties
  them together.
* ``"learned"``: the probes themselves are parameters (the ablation).
* ``"random"``: fixed probes drawn once from the input domain (the other ablation).
* ``"grid"``: the grid the networks were fitted on (an INR rendered as its image), fixed.
  With a ``"linear"`` head this is logistic regression on the rendering; with a ``"cnn"``
  head a small image classifier: the reference rows of what the function holds.

:class:`ProbeHybrid` puts the responses beside a weight-space model's invariant features
in one head: does reading the weights add anything once the network can be queried?

Symmetry contract: a network's function does not change under the symmetries of its
weights (hidden-neuron permutations; sign flips of odd activations), so neither do the
responses or the output; up to rounding, since a permuted network sums in another order.
The networks always run in float32 or wider, whatever autocast the trainer uses: a SIREN's
``sin(30 z)`` in bfloat16 would be noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..core.function import NetworkFunction
from ..core.layout import WeightSpaceLayout, as_layout
from ..core.symmetry import activation_properties
from ..core.weight_space import WeightSpace, WeightSpaceError
from .models import DWSNet, WeightSpaceModel
from .norm import InputNormalization
from .pointwise import mlp
from .sign_equivariant import SignEquivariantNet

__all__ = ["PROBE_KINDS", "ProbeHybrid", "ProbeNet", "ProbeSet"]

PROBE_KINDS = ("generated", "learned", "random", "grid")
HEADS = ("mlp", "linear", "cnn", "none")


class ProbeSet(nn.Module):
    """``K`` inputs at which networks are queried.

    Args:
        function: how the networks run (the probes' shape and domain come from it).
        num_probes: ``K`` (ignored for ``"grid"``: the grid's size).
        kind: one of :data:`PROBE_KINDS`.
        latent_dim, depth, width: the generator's latent codes, its number of linear maps
            and their width (``"generated"`` only).

    Shapes: ``()`` -> ``(K, *function.input_shape)``. Probes start spread over the domain
    (about a quarter of its width around its centre, per coordinate).
    """

    def __init__(self, function: NetworkFunction, num_probes: int = 64, kind: str = "generated", *,
                 latent_dim: int = 32, depth: int = 3, width: int = 64) -> None:  # fmt: skip
        super().__init__()
        if kind not in PROBE_KINDS:
            raise ValueError(f"probes must be one of {', '.join(PROBE_KINDS)}, got {kind!r}")
        if kind != "grid" and num_probes < 1:
            raise ValueError(f"num_probes must be at least 1, got {num_probes}")
        if depth < 1:
            raise ValueError(f"the generator needs at least one linear map, got depth {depth}")
        self.function, self.kind = function, kind
        low, high = function.domain
        self.center, self.half_width = (low + high) / 2, (high - low) / 2
        self.generator: nn.Sequential | None = None
        if kind == "grid":
            self.register_buffer("fixed", self._grid())
        elif kind == "random":
            shape = (num_probes, *function.input_shape)  # drawn from torch's seeded generator: one set per run
            self.register_buffer("fixed", low + (high - low) * torch.rand(shape))
        elif kind == "learned":
            self.probes = nn.Parameter(torch.empty(num_probes, *function.input_shape))
        else:
            self.latents = nn.Parameter(torch.empty(num_probes, latent_dim))
            widths = [latent_dim, *[width] * (depth - 1), function.input_size]
            # linear maps with nothing between them: a deep linear generator
            self.generator = nn.Sequential(*(nn.Linear(a, b) for a, b in zip(widths, widths[1:])))
        self.reset_parameters()

    def _grid(self) -> Tensor:
        f = self.function
        if f.kind == "mlp":
            return f.grid_inputs()
        raise ValueError("grid probes read an INR on its own grid; a classifier's inputs are images: use "
                         "generated, learned or random probes")  # fmt: skip

    def reset_parameters(self) -> None:
        with torch.no_grad():
            if self.kind == "learned":
                self.probes.normal_(self.center, self.half_width / 2)
            elif self.generator is not None:
                self.latents.normal_()
                layers = list(self.generator)
                for i, layer in enumerate(layers):
                    gain = self.half_width / 2 if i == len(layers) - 1 else 1.0
                    layer.weight.normal_(0.0, gain / math.sqrt(layer.in_features))
                    layer.bias.zero_()
                layers[-1].bias.fill_(self.center)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, num_probes={self.num_probes}"

    @property
    def num_probes(self) -> int:
        """``K``."""
        if self.kind in ("grid", "random"):
            return len(self.fixed)
        return len(self.probes) if self.kind == "learned" else len(self.latents)

    def forward(self) -> Tensor:
        if self.kind in ("grid", "random"):
            return self.fixed
        if self.kind == "learned":
            return self.probes
        return self.generator(self.latents).view(-1, *self.function.input_shape)


def _responses(function: NetworkFunction, probes: ProbeSet, ws: WeightSpace, layout: WeightSpaceLayout) -> Tensor:
    """``(B, K, d_out)``: every network of ``ws`` at every probe, in float32 (float64
    networks in float64)."""
    if ws.layout != layout:
        raise WeightSpaceError(f"the model was built for networks of {layout!r}, got {ws.layout!r}")
    dtype = torch.float64 if ws.dtype == torch.float64 else torch.float32
    with torch.autocast(ws.device.type, enabled=False):
        params = [p.to(dtype) for p in ws.to_parameters()]
        return function(params, probes().to(dtype))


class _CNNHead(nn.Module):
    """A small image classifier of a rendering ``(B, C, H, W)``: two 3x3 convolutions of
    32 and 64 channels with ReLU and 2x2 max pooling, then an MLP."""

    def __init__(self, channels: int, grid: tuple[int, ...], out_features: int, hidden: Sequence[int],
                 dropout: float) -> None:  # fmt: skip
        super().__init__()
        if len(grid) != 2:
            raise ValueError(f"a CNN head reads 2-D renderings, got a grid {grid}")
        self.grid = tuple(grid)
        self.features = nn.Sequential(
            nn.BatchNorm2d(channels), nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        )  # fmt: skip
        size = 64 * (grid[0] // 4) * (grid[1] // 4)
        self.mlp = mlp([size, *hidden, out_features], dropout)

    def forward(self, responses: Tensor) -> Tensor:
        b, _, c = responses.shape
        image = responses.transpose(1, 2).reshape(b, c, *self.grid)
        return self.mlp(self.features(image))


class ProbeNet(WeightSpaceModel):
    """Classify or regress networks from their outputs at ``K`` probes.

    Args:
        layer_sizes: the networks' layout (what a batch must match).
        out_features: output size.
        function: how the networks run (:func:`dwsnets.zoo.network_function` reads a zoo's).
        num_probes, probes, latent_dim, generator_depth, generator_width: the
            :class:`ProbeSet`.
        head: ``"mlp"`` (standardised responses, then an MLP of ``head_hidden``),
            ``"linear"`` (standardised responses, then one linear map: logistic regression
            for classification), ``"cnn"`` (grid probes only: the rendering as an image) or
            ``"none"`` (the flattened responses are the output: ``out_features`` unused).
        dropout: in the head.

    Shapes: ``WeightSpace (B, 1, ...)`` -> ``(B, out_features)``.
    Symmetry contract: invariant to every change of the weights that keeps the networks'
    function (hidden permutations; sign flips where the activation is odd).
    """

    def __init__(
        self,
        layer_sizes: WeightSpaceLayout | Sequence[int],
        out_features: int,
        *,
        function: NetworkFunction,
        num_probes: int = 64,
        probes: str = "generated",
        latent_dim: int = 32,
        generator_depth: int = 3,
        generator_width: int = 64,
        head: str = "mlp",
        head_hidden: Sequence[int] = (256, 256),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not isinstance(function, NetworkFunction):
            raise TypeError(f"function must be a NetworkFunction, got {type(function).__name__}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
        if head == "cnn" and probes != "grid":
            raise ValueError("a CNN head reads the rendering: it needs probes='grid'")
        self.layout = as_layout(layer_sizes)
        self.function = function
        self.input_norm = InputNormalization(self.layout, 1)  # the trainer's contract; probing reads no weight scale
        self.probes = ProbeSet(function, num_probes, probes, latent_dim=latent_dim, depth=generator_depth,
                               width=generator_width)  # fmt: skip
        d_out = self.layout.layer_sizes[-1] if self.layout.layer_sizes else 1
        self.num_features = self.probes.num_probes * d_out
        if head == "none":
            self.head: nn.Module = nn.Identity()
        elif head == "cnn":
            self.head = _CNNHead(d_out, function.grid or (), out_features, head_hidden, dropout)
        else:
            widths = [self.num_features, *(head_hidden if head == "mlp" else ()), out_features]
            self.head = nn.Sequential(nn.BatchNorm1d(self.num_features), *mlp(widths, dropout))
        self.head_kind = head

    @property
    def sign_invariant(self) -> bool:
        """Whether negating a hidden neuron leaves the output unchanged: exactly when it
        leaves the function unchanged (an odd activation, such as the sine)."""
        return activation_properties(self.function.activation).odd

    def extra_repr(self) -> str:
        return f"function={self.function.kind}/{self.function.activation}, head={self.head_kind!r}"

    def no_weight_decay(self) -> list[nn.Parameter]:
        """The probes' parameters (latent codes, generator, learned probes): inputs to the
        queried networks, which weight decay would pull towards 0 rather than the domain.
        The trainer leaves them undecayed."""
        return list(self.probes.parameters())

    def query_flops(self) -> int:
        """Floating-point operations spent running one network at every probe
        (:meth:`NetworkFunction.flops` times ``K``): the cost of reading a network by querying it."""
        return self.probes.num_probes * self.function.flops(self.layout.layer_sizes, self.layout.kernel_shapes)

    def responses(self, ws: WeightSpace) -> Tensor:
        """``(B, K, d_out)``: every network at every probe."""
        return _responses(self.function, self.probes, ws, self.layout)

    def embed(self, ws: WeightSpace) -> Tensor:
        """``(B, K * d_out)``: the responses, flattened probe by probe."""
        return self.responses(ws).flatten(1)

    def forward(self, ws: WeightSpace) -> Tensor:
        head_parameter = next(self.head.parameters(), None)
        responses = self.responses(ws)
        if head_parameter is not None:  # a float32 zoo under a float64 model, or the reverse
            responses = responses.to(head_parameter.dtype)
        return self.head(responses if self.head_kind == "cnn" else responses.flatten(1))


def _drop_head(model: WeightSpaceModel) -> None:
    """Remove the output MLP that ``model.embed`` does not use (no dead parameters)."""
    if isinstance(model, DWSNet):
        model.head.mlp = nn.Identity()
    elif isinstance(model, SignEquivariantNet):
        model.head = nn.Identity()


@torch.no_grad()
def _embedding_size(model: nn.Module, layout: WeightSpaceLayout) -> int:
    """Features of ``model.embed``, measured on two zero networks in eval mode (no batch
    statistics touched)."""
    model.eval()
    try:
        zero = WeightSpace.from_flat(torch.zeros(2, layout.numel), layout)
        return int(model.embed(zero).shape[1])
    finally:
        model.train()


class ProbeHybrid(WeightSpaceModel):
    """Probe responses beside a weight-space model's invariant features, in one head.

    Args:
        layer_sizes, out_features, function, num_probes, probes, latent_dim,
            generator_depth, generator_width: as for :class:`ProbeNet`.
        weights: the weight-space model: ``"sign-equivariant"`` (MLPs of an odd activation
            only) or ``"dwsnet"``; ``None`` picks the first where it applies.
        weight_args: keyword arguments of that model (its defaults otherwise).
        head_hidden, dropout: the joint head's MLP.

    Shapes: ``WeightSpace (B, 1, ...)`` -> ``(B, out_features)``.
    Symmetry contract: invariant to hidden permutations; to sign flips when both parts are
    (an odd activation and the sign-equivariant model).
    """

    def __init__(
        self,
        layer_sizes: WeightSpaceLayout | Sequence[int],
        out_features: int,
        *,
        function: NetworkFunction,
        weights: str | None = None,
        weight_args: dict | None = None,
        num_probes: int = 64,
        probes: str = "generated",
        latent_dim: int = 32,
        generator_depth: int = 3,
        generator_width: int = 64,
        head_hidden: Sequence[int] = (256, 256),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.layout = as_layout(layer_sizes)
        odd = activation_properties(function.activation).odd
        if weights is None:
            weights = "sign-equivariant" if self.layout.is_mlp and odd else "dwsnet"
        self.weights_kind = weights
        args = dict(weight_args or {})
        if weights == "sign-equivariant":
            if not odd:
                raise ValueError(f"the sign-equivariant model is blind to sign flips, which change "
                                 f"{function.activation} networks: use weights='dwsnet'")  # fmt: skip
            self.weight_model: WeightSpaceModel = SignEquivariantNet(self.layout, 1, **args)
        elif weights == "dwsnet":
            args = {"hidden_channels": 32, "num_layers": 4, "norm": "batch", **args}
            self.weight_model = DWSNet(self.layout, 1, **args)
        else:
            raise ValueError(f"weights must be 'sign-equivariant' or 'dwsnet', got {weights!r}")
        _drop_head(self.weight_model)  # its embedding feeds the joint head below
        self.input_norm = self.weight_model.input_norm  # fitted by the trainer, read by the weight model
        self.prober = ProbeNet(self.layout, 1, function=function, num_probes=num_probes, probes=probes,
                               latent_dim=latent_dim, generator_depth=generator_depth,
                               generator_width=generator_width, head="none")  # fmt: skip
        n_weight = _embedding_size(self.weight_model, self.layout)
        n_probe = self.prober.num_features
        self.norm = nn.ModuleList([nn.LayerNorm(n_weight), nn.BatchNorm1d(n_probe)])
        self.head = nn.Sequential(*mlp([n_weight + n_probe, *head_hidden, out_features], dropout))

    @property
    def sign_invariant(self) -> bool:
        return bool(self.weight_model.sign_invariant and self.prober.sign_invariant)

    def no_weight_decay(self) -> list[nn.Parameter]:
        """The probes' parameters (:meth:`ProbeNet.no_weight_decay`)."""
        return self.prober.no_weight_decay()

    def extra_repr(self) -> str:
        return f"weights={self.weights_kind!r}"

    def forward(self, ws: WeightSpace) -> Tensor:
        from_weights = self.norm[0](self.weight_model.embed(ws))
        probe_norm = self.norm[1]
        from_function = probe_norm(self.prober.embed(ws).to(probe_norm.weight.dtype))
        return self.head(torch.cat([from_weights, from_function.to(from_weights.dtype)], dim=1))
