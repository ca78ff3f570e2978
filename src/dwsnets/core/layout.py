"""Axis bookkeeping for weight spaces: one description drives every layer.

A weight space is a list of tensors (the weights and biases of a network). Each tensor
axis is either

* **hidden**: it indexes the neurons of a hidden layer ``k``, and the symmetry group
  permutes it with ``S_{d_k}``; every tensor axis carrying the same hidden index is permuted
  by the *same* permutation;
* **fixed**: it is never permuted (the input neurons, the output neurons, a convolution
  kernel's spatial axes, ...). Fixed axes behave like extra feature channels.

:class:`WeightSpaceLayout` records this for every tensor. The equivariant layers
(:mod:`dwsnets.equivariant`) and the invariant pooling (:mod:`dwsnets.invariant`) are
built from a layout alone, so supporting a new architecture means writing a new layout
(a tuple of :class:`TensorLayout`, or :meth:`WeightSpaceLayout.feedforward` for MLPs and
CNNs), not a new layer class. :meth:`WeightSpaceLayout.to_dict` and
:meth:`WeightSpaceLayout.from_dict` store a layout as plain JSON (zoo manifests keep it).
docs/design.md states the mathematics.

Internally each tensor is stored *hidden axes first, channels last*: a tensor of public
shape ``(B, C, *axes)`` is viewed as ``(B, *hidden_sizes, prod(fixed_sizes) * C)``. Layers
produce their outputs in that memory order, so moving between the public and the internal
view is free (a ``permute`` plus a ``view``) inside a stack of layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

__all__ = [
    "Packing",
    "Slot",
    "TensorLayout",
    "WeightSpaceLayout",
    "as_layout",
    "describe_layout",
    "flip_tensors",
    "permute_tensors",
    "random_permutations",
    "random_signs",
    "rescale_tensors",
]


@dataclass(frozen=True)
class TensorLayout:
    """Description of one tensor of a weight space.

    Attributes:
        name: a readable name (``"weight1"``, ``"bias3"``) used in error messages and reprs.
        shape: the entry shape, without the batch and channel dimensions.
        hidden: for each axis, the hidden index it carries, or ``None`` for a fixed axis.
    """

    name: str
    shape: tuple[int, ...]
    hidden: tuple[int | None, ...]

    def __post_init__(self) -> None:
        if len(self.shape) != len(self.hidden):
            raise ValueError(f"{self.name}: shape {self.shape} and axis labels {self.hidden} differ in length")
        labels = [h for h in self.hidden if h is not None]
        if len(set(labels)) != len(labels):
            raise ValueError(
                f"{self.name}: a hidden index appears on two axes of one tensor {self.hidden}; "
                "this layout is not supported (each tensor may carry each hidden index at most once)"
            )

    @property
    def hidden_axes(self) -> tuple[int, ...]:
        """Hidden indices carried by this tensor, in axis order."""
        return tuple(h for h in self.hidden if h is not None)

    @property
    def hidden_shape(self) -> tuple[int, ...]:
        return tuple(s for s, h in zip(self.shape, self.hidden) if h is not None)

    @property
    def fixed_shape(self) -> tuple[int, ...]:
        return tuple(s for s, h in zip(self.shape, self.hidden) if h is None)

    @property
    def fixed_size(self) -> int:
        """Product of the fixed axes' sizes (1 if there are none)."""
        return math.prod(self.fixed_shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    # -- moving between the public (B, C, *axes) and internal (B, *hidden, F) views --------

    def _to_internal_order(self) -> list[int]:
        hidden = [2 + i for i, h in enumerate(self.hidden) if h is not None]
        fixed = [2 + i for i, h in enumerate(self.hidden) if h is None]
        return [0, *hidden, *fixed, 1]

    def to_internal(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, *shape)`` -> ``(B, *hidden_shape, fixed_size * C)``.

        Free (a view) when ``x`` was produced by :meth:`to_public`; otherwise one copy.
        """
        b, c = x.shape[0], x.shape[1]
        y = x.permute(self._to_internal_order())
        return y.reshape(b, *self.hidden_shape, self.fixed_size * c)

    def to_public(self, y: torch.Tensor, channels: int) -> torch.Tensor:
        """``(B, *hidden_shape, fixed_size * channels)`` -> ``(B, channels, *shape)`` (a view)."""
        b = y.shape[0]
        order = self._to_internal_order()
        inverse = [0] * len(order)
        for position, axis in enumerate(order):
            inverse[axis] = position
        y = y.reshape(b, *self.hidden_shape, *self.fixed_shape, channels)
        return y.permute(inverse)


@dataclass(frozen=True)
class WeightSpaceLayout:
    """The axes of every tensor of a weight space, and the sizes of the hidden indices.

    Build one with :meth:`mlp`, :meth:`cnn` or :meth:`feedforward`, or list the tensors
    yourself for another architecture. For a feed-forward network with layer sizes
    ``d_0, ..., d_M`` the tensors are ``weight1..weightM`` of shape
    ``(d_m, d_{m-1}, *kernel_m)`` followed by ``bias1..biasM`` of shape ``(d_m,)``; hidden
    index ``k`` (``1 <= k <= M-1``) labels the neurons (or channels) of hidden layer ``k``
    and the group acting is ``S_{d_1} x ... x S_{d_{M-1}}``. Kernel axes are fixed.

    Attributes:
        tensors: one :class:`TensorLayout` per tensor, in storage order.
        layer_sizes: ``(d_0, ..., d_M)`` for feed-forward layouts, else ``None``.
        kernel_shapes: the fixed trailing axes of each weight (``()`` for a linear layer)
            for feed-forward layouts, else ``None``.
    """

    tensors: tuple[TensorLayout, ...]
    layer_sizes: tuple[int, ...] | None = field(default=None, compare=False)
    kernel_shapes: tuple[tuple[int, ...], ...] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        sizes: dict[int, int] = {}
        for t in self.tensors:
            for size, h in zip(t.shape, t.hidden):
                if h is None:
                    continue
                if sizes.setdefault(h, size) != size:
                    raise ValueError(f"hidden index {h} has size {sizes[h]} on one tensor and {size} on {t.name}")
        object.__setattr__(self, "_hidden_sizes", dict(sorted(sizes.items())))
        object.__setattr__(self, "_packing", None)

    @property
    def packing(self) -> Packing:
        """The slot packing of this layout (cached)."""
        if self._packing is None:  # type: ignore[attr-defined]
            object.__setattr__(self, "_packing", Packing(self))
        return self._packing  # type: ignore[attr-defined]

    @property
    def hidden_sizes(self) -> dict[int, int]:
        """Hidden index -> number of neurons it permutes."""
        return dict(self._hidden_sizes)  # type: ignore[attr-defined]

    @property
    def numel(self) -> int:
        """Number of scalar entries per channel (all tensors together)."""
        return sum(t.numel for t in self.tensors)

    @property
    def is_feedforward(self) -> bool:
        """True for layouts built by :meth:`feedforward` (MLPs and CNNs)."""
        return self.layer_sizes is not None

    @property
    def is_mlp(self) -> bool:
        """True for a feed-forward layout without kernel axes."""
        return self.kernel_shapes is not None and all(k == () for k in self.kernel_shapes)

    @classmethod
    def feedforward(
        cls, layer_sizes: Sequence[int], kernel_shapes: Sequence[Sequence[int]] | None = None
    ) -> WeightSpaceLayout:
        """Layout of a feed-forward network with layer sizes ``(d_0, ..., d_M)``.

        ``kernel_shapes[m-1]`` are the fixed trailing axes of ``weight{m}``: ``()`` for a
        linear layer, ``(k, k)`` for a 2-D convolution. Default: an MLP.
        """
        sizes = tuple(int(s) for s in layer_sizes)
        if len(sizes) < 2:
            raise ValueError(f"a network needs at least an input and an output size, got layer sizes {sizes}")
        if any(s < 1 for s in sizes):
            raise ValueError(f"layer sizes must be positive, got {sizes}")
        m_layers = len(sizes) - 1
        kernels = (
            tuple(() for _ in range(m_layers))
            if kernel_shapes is None
            else tuple(tuple(int(k) for k in shape) for shape in kernel_shapes)
        )
        if len(kernels) != m_layers:
            raise ValueError(f"got {len(kernels)} kernel shapes for {m_layers} layers (layer sizes {sizes})")
        if any(k < 1 for shape in kernels for k in shape):
            raise ValueError(f"kernel sizes must be positive, got {kernels}")

        def label(k: int) -> int | None:
            return k if 1 <= k <= m_layers - 1 else None

        weights = tuple(
            TensorLayout(
                f"weight{m}",
                (sizes[m], sizes[m - 1], *kernels[m - 1]),
                (label(m), label(m - 1), *(None,) * len(kernels[m - 1])),
            )
            for m in range(1, m_layers + 1)
        )
        biases = tuple(TensorLayout(f"bias{m}", (sizes[m],), (label(m),)) for m in range(1, m_layers + 1))
        return cls(weights + biases, layer_sizes=sizes, kernel_shapes=kernels)

    @classmethod
    def mlp(cls, layer_sizes: Sequence[int]) -> WeightSpaceLayout:
        """Layout of an MLP with layer sizes ``(d_0, d_1, ..., d_M)``."""
        return cls.feedforward(layer_sizes)

    @classmethod
    def cnn(
        cls,
        channels: Sequence[int],
        kernel_shapes: Sequence[Sequence[int]],
        linear_sizes: Sequence[int] = (),
    ) -> WeightSpaceLayout:
        """Layout of a CNN: convolutions, global average pooling, then linear layers.

        Args:
            channels: ``(c_0, c_1, ..., c_L)``: input channels, then each convolution's
                output channels.
            kernel_shapes: the ``L`` kernel shapes (``(3, 3)`` for a 3x3 2-D convolution).
            linear_sizes: the output sizes of the linear layers after pooling; their first
                input is ``c_L``. Empty: the last convolution is the output.

        Global average pooling keeps the channel order, so the last convolution's output
        channels and the first linear layer's inputs carry the same hidden index; every
        hidden channel and hidden neuron is permuted, the input channels and the outputs
        are not, and kernel positions are fixed axes.
        """
        channels = tuple(channels)
        if len(kernel_shapes) != len(channels) - 1:
            raise ValueError(f"{len(channels) - 1} convolution(s) need as many kernel shapes, got {len(kernel_shapes)}")
        sizes = channels + tuple(linear_sizes)
        kernels = tuple(tuple(k) for k in kernel_shapes) + tuple(() for _ in linear_sizes)
        return cls.feedforward(sizes, kernels)

    def equivariant_dimension(self, in_channels: int = 1, out_channels: int = 1) -> int:
        """Dimension of the space of linear equivariant maps, by the characterisation.

        Counts, for every pair of tensors, ``(fixed_in * c_in) * (fixed_out * c_out)`` times
        ``2 ** (number of shared hidden indices)``. Valid when every hidden size is >= 2
        (with a hidden size of 1, pooling and identity coincide).
        """
        total = 0
        for a in self.tensors:
            for b in self.tensors:
                shared = set(a.hidden_axes) & set(b.hidden_axes)
                total += a.fixed_size * in_channels * b.fixed_size * out_channels * 2 ** len(shared)
        return total

    def invariant_dimension(self, channels: int = 1) -> int:
        """Number of invariant linear functionals (= number of equivariant bias vectors)."""
        return sum(t.fixed_size for t in self.tensors) * channels

    def random_permutations(
        self,
        batch_size: int | None = None,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> list[torch.Tensor]:
        """One random permutation per hidden index, in increasing index order."""
        return random_permutations(list(self.hidden_sizes.values()), batch_size, generator=generator, device=device)

    def random_signs(
        self,
        batch_size: int | None = None,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> list[torch.Tensor]:
        """Random signs for every hidden neuron (:func:`flip_tensors`), in increasing index order."""
        return random_signs(list(self.hidden_sizes.values()), batch_size, generator=generator, device=device)

    def to_dict(self) -> dict:
        """A JSON-serialisable description that :meth:`from_dict` turns back into an equal
        layout: ``{"kind": "feedforward", "layer_sizes": [...], "kernel_shapes": [...]}`` for
        MLPs and CNNs, ``{"kind": "tensors", "tensors": [{"name", "shape", "hidden"}, ...]}``
        for any other architecture."""
        if self.layer_sizes is not None and self.kernel_shapes is not None:
            return {
                "kind": "feedforward",
                "layer_sizes": list(self.layer_sizes),
                "kernel_shapes": [list(k) for k in self.kernel_shapes],
            }
        tensors = [{"name": t.name, "shape": list(t.shape), "hidden": list(t.hidden)} for t in self.tensors]
        return {"kind": "tensors", "tensors": tensors}

    @classmethod
    def from_dict(cls, data: dict) -> WeightSpaceLayout:
        """The layout :meth:`to_dict` described; ``ValueError`` naming the problem otherwise."""
        kind = data.get("kind") if isinstance(data, dict) else None
        try:
            if kind == "feedforward":
                return cls.feedforward(data["layer_sizes"], data["kernel_shapes"])
            if kind == "tensors":
                return cls(
                    tuple(
                        TensorLayout(t["name"], tuple(int(s) for s in t["shape"]), tuple(t["hidden"]))
                        for t in data["tensors"]
                    )
                )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"a {kind} layout description lacks or mistypes {exc}") from None
        raise ValueError(f"not a layout description (kind {kind!r}; expected 'feedforward' or 'tensors')")

    def __repr__(self) -> str:
        parts = []
        for t in self.tensors:
            axes = ",".join(f"{s}" if h is None else f"{s}@h{h}" for s, h in zip(t.shape, t.hidden))
            parts.append(f"{t.name}[{axes}]")
        return f"WeightSpaceLayout({' '.join(parts)})"


@dataclass(frozen=True)
class Slot:
    """Tensors that carry the same set of hidden axes, stored side by side.

    Attributes:
        axes: the hidden indices, in the slot's axis order.
        sizes: their sizes.
        members: indices (into the layout) of the tensors stored here, in feature order.
    """

    axes: tuple[int, ...]
    sizes: tuple[int, ...]
    members: tuple[int, ...]


class Packing:
    """Packs a weight space's tensors into one tensor per *slot* (set of hidden axes).

    Every tensor becomes ``(B, *hidden_sizes, fixed_size * C)`` (:meth:`TensorLayout.to_internal`)
    and tensors with the same hidden axes are concatenated along the last (feature)
    dimension. For an MLP with ``M >= 2`` the slots are ``{h1}: W_1, b_1``,
    ``{h_m, h_{m-1}}: W_m``, ``{h_m}: b_m`` and ``{h_{M-1}}: W_M, b_{M-1}``, ``{}: b_M``.
    Folded fixed axes are just more channels, so a slot is a valid "tensor" for every
    equivariant operation and a stack of layers works on slots from end to end, converting
    only at its input and output.
    """

    def __init__(self, layout: WeightSpaceLayout) -> None:
        self.layout = layout
        hidden_sizes = layout.hidden_sizes
        slots: dict[frozenset[int], list] = {}
        for i, t in enumerate(layout.tensors):
            key = frozenset(t.hidden_axes)
            if key not in slots:
                slots[key] = [t.hidden_axes, []]
            slots[key][1].append(i)
        self.slots: tuple[Slot, ...] = tuple(
            Slot(axes, tuple(hidden_sizes[a] for a in axes), tuple(members)) for axes, members in slots.values()
        )
        self.slot_of = [0] * len(layout.tensors)
        for s, slot in enumerate(self.slots):
            for i in slot.members:
                self.slot_of[i] = s

    def features(self, slot: Slot, channels: int) -> list[int]:
        """Feature widths of the slot's members for ``channels`` channels."""
        return [self.layout.tensors[i].fixed_size * channels for i in slot.members]

    def width(self, slot: Slot, channels: int) -> int:
        return sum(self.features(slot, channels))

    def pack(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Public tensors ``(B, C, *shape)`` in layout order -> one ``(B, *sizes, F)`` per slot."""
        out = []
        for slot in self.slots:
            parts = []
            for i in slot.members:
                t = self.layout.tensors[i]
                y = t.to_internal(xs[i])
                if t.hidden_axes != slot.axes:
                    perm = [0] + [1 + t.hidden_axes.index(a) for a in slot.axes] + [y.dim() - 1]
                    y = y.permute(perm)
                parts.append(y)
            out.append(parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1))
        return out

    def unpack(self, slots: Sequence[torch.Tensor], channels: int) -> list[torch.Tensor]:
        """Inverse of :meth:`pack`: views into the slot tensors, in layout order."""
        out: list[torch.Tensor | None] = [None] * len(self.layout.tensors)
        for slot, value in zip(self.slots, slots):
            widths = self.features(slot, channels)
            parts = [value] if len(widths) == 1 else torch.split(value, widths, dim=-1)
            for i, part in zip(slot.members, parts):
                t = self.layout.tensors[i]
                if t.hidden_axes != slot.axes:
                    perm = [0] + [1 + slot.axes.index(a) for a in t.hidden_axes] + [part.dim() - 1]
                    part = part.permute(perm)
                out[i] = t.to_public(part, channels)
        return out  # type: ignore[return-value]

    def __repr__(self) -> str:
        names = [
            "{" + ",".join(f"h{a}" for a in s.axes) + "}:" + "+".join(self.layout.tensors[i].name for i in s.members)
            for s in self.slots
        ]
        return f"Packing({' '.join(names)})"


# ---------------------------------------------------------------------- helpers


def as_layout(layout: WeightSpaceLayout | Sequence[int]) -> WeightSpaceLayout:
    """Accept a :class:`WeightSpaceLayout` or MLP layer sizes."""
    if isinstance(layout, WeightSpaceLayout):
        return layout
    return WeightSpaceLayout.mlp(layout)


def describe_layout(layout: WeightSpaceLayout) -> str:
    """``layer_sizes=(...)`` (plus kernels, if any) for feed-forward layouts, the full
    layout repr otherwise."""
    if layout.layer_sizes is None:
        return repr(layout)
    if layout.is_mlp:
        return f"layer_sizes={layout.layer_sizes}"
    return f"layer_sizes={layout.layer_sizes}, kernel_shapes={layout.kernel_shapes}"


def random_permutations(
    sizes: Sequence[int],
    batch_size: int | None = None,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> list[torch.Tensor]:
    """One random permutation of ``range(d)`` per size ``d``: ``(d,)`` each, or
    ``(batch_size, d)`` (one per network). Drawn on the CPU from ``generator``, so the
    draw is reproducible and the same on every device."""
    out = []
    for d in sizes:
        if batch_size is None:
            p = torch.randperm(d, generator=generator)
        else:
            p = torch.argsort(torch.rand(batch_size, d, generator=generator), dim=1)
        out.append(p.to(device) if device is not None else p)
    return out


def random_signs(
    sizes: Sequence[int],
    batch_size: int | None = None,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> list[torch.Tensor]:
    """Independent random signs (``+1`` or ``-1``, each with probability 1/2), ``(d,)`` or
    ``(batch_size, d)`` per size ``d``; drawn on the CPU from ``generator``."""
    out = []
    for d in sizes:
        shape = (d,) if batch_size is None else (batch_size, d)
        s = torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0)
        out.append(s.to(device) if device is not None else s)
    return out


def flip_tensors(
    layout: WeightSpaceLayout, xs: Sequence[torch.Tensor], signs: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """Multiply every axis carrying hidden index ``h`` by that index's signs (``(d_h,)``
    shared, or ``(B, d_h)`` per network; one entry per neuron, ``+1`` or ``-1``) in tensors
    ``(B, C, *shape)`` of ``layout``.

    For a feed-forward network this negates a neuron's incoming weights and bias and its
    outgoing weights: the function is unchanged whenever the activation is odd
    (``sin``, ``tanh``), as a SIREN's is. Not a symmetry of ReLU networks."""
    return _scale_hidden_axes(layout, xs, signs, lambda s, axis: s)


def rescale_tensors(
    layout: WeightSpaceLayout, xs: Sequence[torch.Tensor], factors: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """Rescale hidden neurons of a feed-forward layout: neuron ``i`` of hidden layer ``k``
    (factor ``q = factors[k-1][..., i]``, ``(d_k,)`` shared or ``(B, d_k)`` per network) gets
    its incoming weights and bias multiplied by ``q`` and its outgoing weights divided by
    ``q``, in tensors ``(B, C, *shape)`` (kernel axes untouched).

    With ``q > 0`` the function is unchanged for positively homogeneous activations
    (ReLU: ``relu(q z) = q relu(z)``; global average pooling is linear); with ``q = +-1`` this
    is :func:`flip_tensors`, a symmetry of odd activations (tanh, sine)."""
    if not layout.is_feedforward:
        raise ValueError("rescaling neurons needs a feed-forward layout (weights (out, in, ...) and biases)")
    # axis 0: the neuron's own row (times q); axis 1: its outgoing column (divided by q)
    return _scale_hidden_axes(layout, xs, factors, lambda q, axis: q if axis == 0 else q.reciprocal())


def _scale_hidden_axes(
    layout: WeightSpaceLayout,
    xs: Sequence[torch.Tensor],
    values: Sequence[torch.Tensor],
    factor: Callable[[torch.Tensor, int], torch.Tensor],
) -> list[torch.Tensor]:
    """Multiply every axis of tensors ``(B, C, *shape)`` that carries hidden index ``h`` by
    ``factor(values[h], axis)`` (``values[h]``: ``(d_h,)`` shared or ``(B, d_h)`` per network)."""
    index = {h: i for i, h in enumerate(layout.hidden_sizes)}
    out = []
    for t, x in zip(layout.tensors, xs):
        for axis, h in enumerate(t.hidden):
            if h is None:
                continue
            q = factor(values[index[h]].to(x.device, x.dtype), axis)
            shape = [1] * x.dim()
            if q.dim() == 1:
                shape[2 + axis] = q.shape[0]
            else:
                shape[0], shape[2 + axis] = q.shape[0], q.shape[1]
            x = x * q.reshape(shape)
        out.append(x)
    return out


def permute_tensors(
    layout: WeightSpaceLayout, xs: Sequence[torch.Tensor], perms: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """Apply one permutation per hidden index (increasing index order) to tensors
    ``(B, C, *shape)`` of ``layout``: every axis carrying hidden index ``h`` is reordered
    by the permutation of ``h`` (``(d_h,)`` shared, or ``(B, d_h)`` per network)."""
    index = {h: i for i, h in enumerate(layout.hidden_sizes)}
    out = []
    for t, x in zip(layout.tensors, xs):
        for axis, h in enumerate(t.hidden):
            if h is not None:
                x = _take(x, perms[index[h]], 2 + axis)
        out.append(x)
    return out


def _take(t: torch.Tensor, p: torch.Tensor, axis: int) -> torch.Tensor:
    """Reorder ``t`` along ``axis`` by ``p`` (shared ``(d,)`` or per network ``(B, d)``)."""
    p = p.long()
    if p.dim() == 1:
        return t.index_select(axis, p)
    shape = [1] * t.dim()
    shape[0], shape[axis] = p.shape[0], p.shape[1]
    index = p.reshape(shape).expand(*t.shape[:axis], p.shape[1], *t.shape[axis + 1 :])
    return torch.gather(t, axis, index)
