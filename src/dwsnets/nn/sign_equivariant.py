"""A model of MLP weights that respects the sine's sign symmetry as well as the permutations.

The symmetry: give every hidden neuron ``i`` of layer ``l`` a sign ``s^l_i`` (inputs and
outputs keep ``+1``). Negating it multiplies the weight ``W_l[i, j]`` by ``s^l_i s^{l-1}_j``
and the bias ``b_l[i]`` by ``s^l_i``; for an odd activation (a SIREN's sine, tanh) the
network's function stays the same.

DWS layers pool over hidden indices, and a pooled sum ``sum_i x_i`` is not equivariant to
these flips: ``sum_i s_i x_i`` is no function of it. The linear maps that respect both
symmetries only mix a neuron with itself, so these layers are bilinear instead:

* every neuron ``i`` of layer ``l`` holds a feature ``h^l_i`` (``C`` channels) that flips
  with ``s^l_i``; every weight ``W_l[i, j]`` holds one, ``e^l_ij``, that flips with
  ``s^l_i s^{l-1}_j``;
* a message from neuron ``j`` to neuron ``i`` is the channel-wise product of a linear map
  of ``e_ij`` and a linear map of ``h_j``: its sign is ``s_i`` for every ``j``, so the mean
  over ``j`` is equivariant (likewise backwards, from the next layer's neurons); a weight's
  update adds the product of its two neurons' features (sign ``s_i s_j``);
* channel maps have no bias (a bias is even), the nonlinearity is odd (tanh), and the norm
  divides by a tensor's root mean square per network and channel (an even scale);
* the readout multiplies two linear maps of each feature (even), averages over a layer's
  neurons or weights, adds the log of the layer's mean square, and feeds an ordinary MLP.

Every map is odd in each neuron's sign and commutes with reordering neurons, so the model
is invariant to both symmetries, exactly, for every input (tests/test_sign_equivariant.py).
This is message passing over the network's neurons, in the spirit of ScaleGMN (Kalogeropoulos
et al. 2024), written from the symmetry above.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..core.layout import WeightSpaceLayout, as_layout
from ..core.weight_space import WeightSpace, WeightSpaceError
from .models import WeightSpaceModel
from .norm import InputNormalization, compiled_if_enabled
from .pointwise import mlp

__all__ = ["SignEquivariantLayer", "SignEquivariantNet"]


def _rms_normalised(x: Tensor, eps: float = 1e-6) -> Tensor:
    """``x / rms(x)`` per network and channel, the root mean square taken over the entries of
    one tensor (every axis but the first and the last): an even scale shared by the entries,
    so each entry keeps its sign and its size relative to the others."""
    return x * torch.rsqrt(x.pow(2).mean(dim=tuple(range(1, x.dim() - 1)), keepdim=True) + eps)


class SignEquivariantLayer(nn.Module):
    """One residual message-passing step over an MLP's neurons and weights.

    Args:
        layer_sizes: ``(d_0, ..., d_M)``.
        channels: ``C``, the width of every feature.

    Shapes (channels last): ``nodes[l]`` is ``(B, d_l, C)`` for ``l = 0..M``; ``edges[l]`` is
    ``(B, d_{l+1}, d_l, C)`` for ``l = 0..M-1`` (the weights of layer ``l + 1``). The output
    has the same shapes.
    Symmetry contract: equivariant to hidden-neuron permutations and to hidden-neuron sign
    flips (``nodes[l][:, i]`` flips with ``s^l_i``, ``edges[l][:, i, j]`` with
    ``s^{l+1}_i s^l_j``).
    """

    def __init__(self, layer_sizes: Sequence[int], channels: int) -> None:
        super().__init__()
        self.layer_sizes = tuple(int(d) for d in layer_sizes)
        self.channels = int(channels)
        self.compiled = False  # the step fused by torch.compile (dwsnets.nn.compile_kernels)
        n_nodes, n_edges = len(self.layer_sizes), len(self.layer_sizes) - 1
        c = self.channels
        # a neuron's own update, and four views of it: message forwards, message backwards,
        # row and column of the outer product that updates its weights
        self.node_self = nn.ModuleList(nn.Linear(c, c, bias=False) for _ in range(n_nodes))
        self.node_views = nn.ModuleList(nn.Linear(c, 4 * c, bias=False) for _ in range(n_nodes))
        # a weight's own update, and its factors of the forward and backward messages
        self.edge_views = nn.ModuleList(nn.Linear(c, 3 * c, bias=False) for _ in range(n_edges))

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()

    def extra_repr(self) -> str:
        return f"layer_sizes={self.layer_sizes}, channels={self.channels}"

    def forward(self, nodes: Sequence[Tensor], edges: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """One step; fused by ``torch.compile`` after :func:`~dwsnets.nn.compile_kernels`
        (``--compile``: about 1.5x faster training steps)."""
        return compiled_if_enabled(_layer_step, self.compiled)(self, list(nodes), list(edges))

    def _step(self, nodes: list[Tensor], edges: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        c = self.channels
        normed = [_rms_normalised(h) for h in nodes]
        nv = [view(h).split(c, dim=-1) for view, h in zip(self.node_views, normed)]
        ev = [view(_rms_normalised(e)).split(c, dim=-1) for view, e in zip(self.edge_views, edges)]
        updates = [lin(h) for lin, h in zip(self.node_self, normed)]
        new_edges = []
        for k, e in enumerate(edges):
            e_self, e_fwd, e_bwd = ev[k]
            updates[k + 1] = updates[k + 1] + (e_fwd * nv[k][0].unsqueeze(1)).mean(dim=2)  # into layer k+1
            updates[k] = updates[k] + (e_bwd * nv[k + 1][1].unsqueeze(2)).mean(dim=1)  # back into layer k
            outer = nv[k + 1][2].unsqueeze(2) * nv[k][3].unsqueeze(1)
            new_edges.append(e + torch.tanh(e_self + outer))
        new_nodes = [h + torch.tanh(u) for h, u in zip(nodes, updates)]
        return new_nodes, new_edges


def _layer_step(
    layer: SignEquivariantLayer, nodes: list[Tensor], edges: list[Tensor]
) -> tuple[list[Tensor], list[Tensor]]:
    """A module-level function, so that one compiled version serves every layer."""
    return layer._step(nodes, edges)


class SignEquivariantNet(WeightSpaceModel):
    """Invariant classifier/regressor of MLP weights built from :class:`SignEquivariantLayer`.

    Weights and biases enter scaled per tensor, not centred (a shift would break the sign
    symmetry). Input and output neurons, which no symmetry moves, get a learned embedding
    per position.

    Args:
        layer_sizes: sizes ``(d_0, ..., d_M)`` of the input MLPs (or an MLP layout).
        out_features: output size.
        hidden_channels: ``C``.
        num_layers: number of :class:`SignEquivariantLayer` steps.
        head_hidden: widths of the MLP after the invariant readout.
        dropout: dropout in the head.

    Shapes: ``WeightSpace (B, 1, ...)`` -> ``(B, out_features)``.
    Symmetry contract: invariant to permutations of every hidden layer's neurons and to
    negating any hidden neuron (incoming weights, bias and outgoing weights).
    """

    def __init__(
        self,
        layer_sizes: WeightSpaceLayout | Sequence[int],
        out_features: int,
        *,
        hidden_channels: int = 32,
        num_layers: int = 4,
        head_hidden: Sequence[int] = (256,),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.layout = as_layout(layer_sizes)
        if not self.layout.is_mlp:
            raise WeightSpaceError(
                f"the sign-equivariant model reads MLP weights neuron by neuron and does not support {self.layout!r}"
            )
        if num_layers < 1 or hidden_channels < 1:
            raise ValueError(
                f"num_layers and hidden_channels must be at least 1, got {num_layers} and {hidden_channels}"
            )
        sizes = self.layout.layer_sizes
        c = self.hidden_channels = int(hidden_channels)
        self.input_norm = InputNormalization(self.layout, 1, center=False)
        n_weights = len(sizes) - 1
        self.lift_weights = nn.Parameter(torch.empty(n_weights, c))
        self.lift_biases = nn.Parameter(torch.empty(n_weights, c))
        self.input_embedding = nn.Parameter(torch.empty(sizes[0], c))
        self.output_embedding = nn.Parameter(torch.empty(sizes[-1], c))
        self.layers = nn.ModuleList(SignEquivariantLayer(sizes, c) for _ in range(num_layers))
        self.readout_views = nn.ModuleList(nn.Linear(c, 2 * c, bias=False) for _ in range(2 * len(sizes) - 1))
        # per layer of neurons and of weights: mean products and log scale; means of fixed neurons
        n_features = c * (2 * (2 * len(sizes) - 1) + 2)
        widths = [n_features, *head_hidden, out_features]
        self.head = nn.Sequential(nn.LayerNorm(n_features), *mlp(widths, dropout))
        self.reset_parameters()

    @property
    def sign_invariant(self) -> bool:
        """Always: every layer is equivariant to negating a hidden neuron, the readout invariant."""
        return True

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for p in (self.lift_weights, self.lift_biases, self.input_embedding, self.output_embedding):
                p.normal_(0.0, 1.0)
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def extra_repr(self) -> str:
        return f"layer_sizes={self.layout.layer_sizes}, hidden_channels={self.hidden_channels}"

    def _lift(self, ws: WeightSpace) -> tuple[list[Tensor], list[Tensor]]:
        """Raw one-channel weights -> channel-last node and edge features (each channel a
        multiple of the value, so signs carry over)."""
        if ws.channels != 1:
            raise WeightSpaceError(f"the sign-equivariant model reads one-channel weight spaces, got {ws.channels}")
        batch = ws.batch_size
        edges = [w[:, 0, :, :, None] * self.lift_weights[k] for k, w in enumerate(ws.weights)]
        nodes = [self.input_embedding.expand(batch, -1, -1)]
        nodes += [b[:, 0, :, None] * self.lift_biases[k] for k, b in enumerate(ws.biases)]
        nodes[-1] = nodes[-1] + self.output_embedding
        return nodes, edges

    def embed(self, ws: WeightSpace) -> Tensor:
        """Invariant features before the head: ``(B, hidden_channels * (4M + 4))``: the mean
        input and output neuron, then for every layer of neurons and of weights the mean
        product of two views of its normalised features and the log of its mean square."""
        if ws.layer_sizes != self.layout.layer_sizes:
            raise WeightSpaceError(
                f"the model was built for layer sizes {self.layout.layer_sizes}, got {ws.layer_sizes}"
            )
        nodes, edges = self._lift(self.input_norm(ws))
        for layer in self.layers:
            nodes, edges = layer(nodes, edges)
        c = self.hidden_channels
        features = [nodes[0].mean(dim=1), nodes[-1].mean(dim=1)]  # positions no symmetry moves
        for view, x in zip(self.readout_views, [*nodes, *edges]):
            x = x.flatten(1, -2)
            mean_square = x.pow(2).mean(dim=1)
            u, v = view(x * torch.rsqrt(mean_square.unsqueeze(1) + 1e-6)).split(c, dim=-1)
            features += [(u * v).mean(dim=1), torch.log(mean_square + 1e-6)]  # shape, and scale
        return torch.cat(features, dim=1)

    def forward(self, ws: WeightSpace) -> Tensor:
        """``WeightSpace (B, 1, ...)`` -> ``(B, out_features)``."""
        return self.head(self.embed(ws))
