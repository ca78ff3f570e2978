"""The weight-space container: an immutable batch of feed-forward networks with channels.

A batch of ``B`` networks with layer sizes ``d_0, ..., d_M`` and ``C`` channels per entry:

    weights[m]: (B, C, d_{m+1}, d_m, *kernel_m)      biases[m]: (B, C, d_{m+1})      m = 0..M-1

(PyTorch's ``nn.Linear``/``nn.ConvNd`` weight layout with batch and channel in front).
MLPs have no kernel axes; a CNN's convolutions carry their kernel's spatial axes, which
are fixed (never permuted). Raw networks have ``C = 1``. The container follows the
:class:`~dwsnets.core.layout.WeightSpaceLayout` its shapes describe (:attr:`WeightSpace.layout`),
and every layer of the package is built from that layout.

Symmetry contract: permuting the neurons (channels) of hidden layer ``k`` (rows of
``weights[k-1]`` and entries of ``biases[k-1]``, columns of ``weights[k]``) leaves every
network's function unchanged; :meth:`WeightSpace.permute` applies such permutations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .layout import WeightSpaceLayout, as_layout, flip_tensors, permute_tensors, random_permutations, rescale_tensors

__all__ = ["WeightSpace", "WeightSpaceError", "random_hidden_permutations"]


class WeightSpaceError(ValueError):
    """Raised for malformed weight spaces or networks that are not compatible MLPs."""


class WeightSpace:
    """Immutable batch of network weights and biases with feature channels.

    Args:
        weights: ``M`` tensors, ``weights[m]`` of shape ``(B, C, d_{m+1}, d_m, *kernel_m)``.
        biases: ``M`` tensors, ``biases[m]`` of shape ``(B, C, d_{m+1})``.

    Both are stored as tuples; the object cannot be modified after construction (apply
    :meth:`map`, arithmetic or :meth:`permute` to get new ones). Tensors are not copied.
    """

    __slots__ = ("biases", "weights")
    weights: tuple[Tensor, ...]
    biases: tuple[Tensor, ...]

    def __init__(self, weights: Sequence[Tensor], biases: Sequence[Tensor]) -> None:
        weights = tuple(weights)
        biases = tuple(biases)
        _validate(weights, biases)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "biases", biases)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("WeightSpace is immutable; build a new one instead")

    def __reduce__(self):  # pickling (e.g. DataLoader workers)
        return (WeightSpace, (self.weights, self.biases))

    # ------------------------------------------------------------------ description

    @property
    def num_layers(self) -> int:
        """Number of linear layers ``M``."""
        return len(self.weights)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """``(d_0, d_1, ..., d_M)``."""
        return (self.weights[0].shape[3],) + tuple(w.shape[2] for w in self.weights)

    @property
    def batch_size(self) -> int:
        return self.weights[0].shape[0]

    @property
    def channels(self) -> int:
        return self.weights[0].shape[1]

    @property
    def dtype(self) -> torch.dtype:
        return self.weights[0].dtype

    @property
    def device(self) -> torch.device:
        return self.weights[0].device

    @property
    def kernel_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The fixed trailing axes of each weight (``()`` for linear layers)."""
        return tuple(tuple(w.shape[4:]) for w in self.weights)

    @property
    def layout(self) -> WeightSpaceLayout:
        """Axis description of this space (:meth:`WeightSpaceLayout.feedforward`)."""
        return WeightSpaceLayout.feedforward(self.layer_sizes, self.kernel_shapes)

    @property
    def tensors(self) -> tuple[Tensor, ...]:
        """All tensors in layout order: ``weights`` then ``biases``."""
        return self.weights + self.biases

    @classmethod
    def from_tensors(cls, tensors: Sequence[Tensor]) -> WeightSpace:
        """Inverse of :attr:`tensors`."""
        tensors = tuple(tensors)
        if len(tensors) % 2 or not tensors:
            raise WeightSpaceError(f"expected weights followed by as many biases, got {len(tensors)} tensors")
        half = len(tensors) // 2
        return cls(tensors[:half], tensors[half:])

    def __len__(self) -> int:
        return self.batch_size

    @classmethod
    def from_parameters(cls, params: Sequence[Tensor]) -> WeightSpace:
        """One-channel space from stacked parameters ``[W1, b1, W2, b2, ...]`` with
        ``W_m: (B, d_m, d_{m-1}, *kernel)`` and ``b_m: (B, d_m)`` (the layout batched
        fitters and zoo files use)."""
        params = list(params)
        if len(params) % 2 or not params:
            raise WeightSpaceError(f"expected alternating weights and biases, got {len(params)} tensors")
        return cls([w.unsqueeze(1) for w in params[0::2]], [b.unsqueeze(1) for b in params[1::2]])

    def to_parameters(self) -> list[Tensor]:
        """Inverse of :meth:`from_parameters` (requires ``C = 1``): ``[W1, b1, W2, b2, ...]``."""
        self._require_single_channel()
        out: list[Tensor] = []
        for w, b in zip(self.weights, self.biases):
            out += [w[:, 0], b[:, 0]]
        return out

    def __repr__(self) -> str:
        kernels = "" if all(k == () for k in self.kernel_shapes) else f", kernel_shapes={self.kernel_shapes}"
        return (
            f"WeightSpace(batch_size={self.batch_size}, channels={self.channels}, "
            f"layer_sizes={self.layer_sizes}{kernels}, dtype={self.dtype}, device={self.device})"
        )

    # ------------------------------------------------------------------ tensor-like ops

    def map(self, fn: Callable[[Tensor], Tensor]) -> WeightSpace:
        """Apply ``fn`` to every tensor (an entry-wise map keeps equivariance)."""
        return WeightSpace([fn(w) for w in self.weights], [fn(b) for b in self.biases])

    def to(self, *args: Any, **kwargs: Any) -> WeightSpace:
        """Like :meth:`torch.Tensor.to` on every tensor."""
        return self.map(lambda t: t.to(*args, **kwargs))

    def detach(self) -> WeightSpace:
        return self.map(Tensor.detach)

    def clone(self) -> WeightSpace:
        return self.map(Tensor.clone)

    def __getitem__(self, index: int | slice | Tensor | Sequence[int]) -> WeightSpace:
        """Select networks along the batch dimension. An integer keeps a batch of one."""
        if isinstance(index, int):
            if not -self.batch_size <= index < self.batch_size:
                raise IndexError(f"index {index} out of range for a batch of {self.batch_size}")
            index = slice(index, index + 1 if index != -1 else None)
        return self.map(lambda t: t[index])

    def __iter__(self) -> Iterator[WeightSpace]:
        for i in range(self.batch_size):
            yield self[i]

    @staticmethod
    def cat(spaces: Sequence[WeightSpace], dim: str = "batch") -> WeightSpace:
        """Concatenate along ``"batch"`` (same architecture and channels) or ``"channel"``."""
        spaces = list(spaces)
        if not spaces:
            raise WeightSpaceError("cannot concatenate an empty list of weight spaces")
        if dim not in ("batch", "channel"):
            raise ValueError(f"dim must be 'batch' or 'channel', got {dim!r}")
        first = spaces[0]
        for i, s in enumerate(spaces[1:], 1):
            if s.layout != first.layout:
                raise WeightSpaceError(
                    f"cannot concatenate: space 0 has layer sizes {first.layer_sizes}{_kernels(first)}, "
                    f"space {i} has {s.layer_sizes}{_kernels(s)}"
                )
            if dim == "batch" and s.channels != first.channels:
                raise WeightSpaceError(
                    f"cannot concatenate along the batch: space 0 has {first.channels} channels, space {i} has {s.channels}"
                )
            if dim == "channel" and s.batch_size != first.batch_size:
                raise WeightSpaceError(
                    f"cannot concatenate channels: space 0 has batch {first.batch_size}, space {i} has {s.batch_size}"
                )
        axis = 0 if dim == "batch" else 1
        n = first.num_layers
        return WeightSpace(
            [torch.cat([s.weights[m] for s in spaces], axis) for m in range(n)],
            [torch.cat([s.biases[m] for s in spaces], axis) for m in range(n)],
        )

    def _binary(self, other: Any, op: Callable[[Tensor, Any], Tensor]) -> WeightSpace:
        if isinstance(other, WeightSpace):
            if other.layout != self.layout:
                raise WeightSpaceError(
                    f"layer sizes differ: {self.layer_sizes}{_kernels(self)} and {other.layer_sizes}{_kernels(other)}"
                )
            return WeightSpace.from_tensors([op(a, b) for a, b in zip(self.tensors, other.tensors)])
        return self.map(lambda t: op(t, other))

    def __add__(self, other: Any) -> WeightSpace:
        return self._binary(other, torch.add)

    __radd__ = __add__

    def __sub__(self, other: Any) -> WeightSpace:
        return self._binary(other, torch.sub)

    def __mul__(self, other: Any) -> WeightSpace:
        return self._binary(other, torch.mul)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> WeightSpace:
        return self._binary(other, torch.div)

    def __neg__(self) -> WeightSpace:
        return self.map(torch.neg)

    def allclose(self, other: WeightSpace, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
        if self.layout != other.layout or self.channels != other.channels:
            return False
        return all(torch.allclose(a, b, rtol=rtol, atol=atol) for a, b in zip(self.tensors, other.tensors))

    def is_finite(self) -> bool:
        return all(bool(torch.isfinite(t).all()) for t in self.tensors)

    def check_finite(self, what: str = "weight space") -> WeightSpace:
        """Raise :class:`WeightSpaceError` naming the first tensor and network holding NaN/Inf."""
        for name, t in zip(self.layout_names(), self.tensors):
            bad = ~torch.isfinite(t)
            if bad.any():
                nets = bad.reshape(bad.shape[0], -1).any(1).nonzero().flatten()
                raise WeightSpaceError(
                    f"{what}: {name} holds NaN or Inf values in {len(nets)} network(s), "
                    f"first at batch index {int(nets[0])}"
                )
        return self

    def layout_names(self) -> list[str]:
        """Tensor names in layout order (``weight1``, ..., ``bias1``, ...)."""
        return [t.name for t in self.layout.tensors]

    # ------------------------------------------------------------------ flat vectors

    def flatten(self) -> Tensor:
        """``(B, C * P)`` with ``P`` the parameter count of one network (channel-major)."""
        b, c = self.batch_size, self.channels
        return torch.cat([t.reshape(b, c, -1) for t in self.tensors], dim=2).reshape(b, -1)

    @classmethod
    def from_flat(cls, flat: Tensor, layout: WeightSpaceLayout | Sequence[int], channels: int = 1) -> WeightSpace:
        """Inverse of :meth:`flatten`: ``flat`` of shape ``(B, channels * P)``; ``layout``
        is a feed-forward layout or MLP layer sizes."""
        layout = _feedforward(layout)
        if flat.dim() != 2 or flat.shape[1] != channels * layout.numel:
            raise WeightSpaceError(
                f"expected a flat tensor of shape (B, {channels * layout.numel}) for layer sizes "
                f"{layout.layer_sizes} and {channels} channel(s), got {tuple(flat.shape)}"
            )
        b = flat.shape[0]
        parts = torch.split(flat.reshape(b, channels, -1), [t.numel for t in layout.tensors], dim=2)
        return cls.from_tensors([p.reshape(b, channels, *t.shape) for p, t in zip(parts, layout.tensors)])

    @classmethod
    def randn(
        cls,
        layout: WeightSpaceLayout | Sequence[int],
        batch_size: int,
        channels: int = 1,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> WeightSpace:
        """Standard-normal entries for a feed-forward layout or MLP layer sizes; handy for
        tests and benchmarks."""
        layout = _feedforward(layout)
        return cls.from_tensors(
            [
                torch.randn(batch_size, channels, *t.shape, generator=generator, dtype=dtype, device=device)
                for t in layout.tensors
            ]
        )

    # ------------------------------------------------------------------ the symmetry

    def permute(self, perms: Sequence[Tensor]) -> WeightSpace:
        """Apply one permutation per hidden layer.

        Args:
            perms: ``M - 1`` index tensors; ``perms[k-1]`` permutes hidden layer ``k`` and has
                shape ``(d_k,)`` (same for the whole batch) or ``(B, d_k)`` (one per network).

        Returns the space with ``W_k[i, ...] <- W_k[p[i], ...]``, ``b_k[i] <- b_k[p[i]]`` and
        ``W_{k+1}[:, i, ...] <- W_{k+1}[:, p[i], ...]``, i.e. ``W_m -> P_m W_m P_{m-1}^T``
        (kernel axes untouched). Every network computes the same function afterwards.
        """
        perms, hidden = self._per_hidden_layer(perms, "permutation(s)")
        for k, (p, d) in enumerate(zip(perms, hidden), start=1):
            _check_permutation(p, d, self.batch_size, k)
        return WeightSpace.from_tensors(permute_tensors(self.layout, self.tensors, perms))

    def _per_hidden_layer(self, values: Sequence[Tensor], what: str) -> tuple[list[Tensor], tuple[int, ...]]:
        """``values`` as tensors on this space's device, checked to be one per hidden layer,
        and the hidden layers' sizes."""
        values = [torch.as_tensor(v, device=self.device) for v in values]
        hidden = tuple(self.layer_sizes[1:-1])
        if len(values) != len(hidden):
            raise WeightSpaceError(
                f"expected {len(hidden)} {what}, one per hidden layer of {self.layer_sizes}, got {len(values)}"
            )
        return values, hidden

    def _per_neuron(self, values: Sequence[Tensor], what: str) -> list[Tensor]:
        """One value per hidden neuron: ``values[k-1]`` checked to be ``(d_k,)`` or ``(B, d_k)``."""
        values, hidden = self._per_hidden_layer(values, f"{what[:-1]} vector(s)")
        for k, (v, d) in enumerate(zip(values, hidden), start=1):
            if v.shape not in ((d,), (self.batch_size, d)):
                raise WeightSpaceError(
                    f"{what} of hidden layer {k} must have shape ({d},) or ({self.batch_size}, {d}), got {tuple(v.shape)}"
                )
        return values

    def flip_signs(self, signs: Sequence[Tensor]) -> WeightSpace:
        """Negate chosen hidden neurons: ``signs[k-1]`` (``(d_k,)`` or ``(B, d_k)``, entries
        ``+1`` or ``-1``) multiplies neuron ``i`` of hidden layer ``k``'s incoming weights
        and bias and its outgoing weights (``W_k <- S_k W_k S_{k-1}`` with diagonal sign
        matrices; kernel axes untouched). Every network computes the same function
        afterwards when the activation is odd (a SIREN's ``sin``, ``tanh``)."""
        signs = self._per_neuron(signs, "signs")
        for k, s in enumerate(signs, start=1):
            if not bool(((s == 1) | (s == -1)).all()):
                raise WeightSpaceError(f"signs of hidden layer {k} must be +1 or -1")
        return WeightSpace.from_tensors(flip_tensors(self.layout, self.tensors, signs))

    def rescale(self, factors: Sequence[Tensor]) -> WeightSpace:
        """Rescale hidden neurons: ``factors[k-1]`` (``(d_k,)`` or ``(B, d_k)``, nonzero)
        multiplies neuron ``i`` of hidden layer ``k``'s incoming weights and bias and divides
        its outgoing weights (kernel axes untouched). Every network computes the same function
        afterwards with positive factors and a ReLU activation (positive homogeneity), and
        with factors +-1 and an odd activation (:meth:`flip_signs`)."""
        factors = self._per_neuron(factors, "factors")
        for k, q in enumerate(factors, start=1):
            if not bool((torch.isfinite(q) & (q != 0)).all()):
                raise WeightSpaceError(f"factors of hidden layer {k} must be finite and nonzero")
        return WeightSpace.from_tensors(rescale_tensors(self.layout, self.tensors, factors))

    def random_signs(self, generator: torch.Generator | None = None, per_network: bool = False) -> list[Tensor]:
        """Random signs of every hidden neuron, shaped for :meth:`flip_signs`."""
        return self.layout.random_signs(
            self.batch_size if per_network else None, generator=generator, device=self.device
        )

    def random_permutations(self, generator: torch.Generator | None = None, per_network: bool = False) -> list[Tensor]:
        """Random permutations of every hidden layer, shaped for :meth:`permute`."""
        return self.layout.random_permutations(
            self.batch_size if per_network else None, generator=generator, device=self.device
        )

    # ------------------------------------------------------------------ PyTorch modules

    @classmethod
    def from_modules(cls, modules: nn.Module | Sequence[nn.Module], *, dtype: torch.dtype | None = None) -> WeightSpace:
        """Stack networks whose parametrised parts are ``nn.Linear`` or ``nn.ConvNd`` layers
        (applied in registration order) into a weight space with ``C = 1``; see
        :func:`dwsnets.core.convert.from_modules`."""
        from .convert import from_modules

        return from_modules(modules, dtype=dtype)

    @classmethod
    def from_state_dicts(
        cls,
        state_dicts: Mapping[str, Tensor] | Sequence[Mapping[str, Tensor]],
        *,
        dtype: torch.dtype | None = None,
    ) -> WeightSpace:
        """Stack ``state_dict``s of such networks; see :func:`dwsnets.core.convert.from_state_dicts`."""
        from .convert import from_state_dicts

        return from_state_dicts(state_dicts, dtype=dtype)

    def to_state_dicts(self, prefix_indices: Sequence[int] | None = None) -> list[dict[str, Tensor]]:
        """One ``state_dict`` per network; see :func:`dwsnets.core.convert.to_state_dicts`."""
        from .convert import to_state_dicts

        return to_state_dicts(self, prefix_indices)

    def to_modules(
        self,
        activation: Callable[[], nn.Module] | None = nn.ReLU,
        *,
        template: nn.Module | None = None,
    ) -> list[nn.Module]:
        """One module per network; see :func:`dwsnets.core.convert.to_modules`."""
        from .convert import to_modules

        return to_modules(self, activation, template=template)

    def _require_single_channel(self) -> None:
        if self.channels != 1:
            raise WeightSpaceError(
                f"only a weight space with one channel holds networks; this one has {self.channels} channels"
            )


# ---------------------------------------------------------------------- helpers


def random_hidden_permutations(
    layer_sizes: Sequence[int],
    batch_size: int | None = None,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> list[Tensor]:
    """One random permutation per hidden layer: ``(d_k,)`` each, or ``(batch_size, d_k)``."""
    return random_permutations(tuple(layer_sizes)[1:-1], batch_size, generator=generator, device=device)


def _feedforward(layout: WeightSpaceLayout | Sequence[int]) -> WeightSpaceLayout:
    layout = as_layout(layout)
    if not layout.is_feedforward:
        raise WeightSpaceError(f"a WeightSpace holds feed-forward networks (MLPs, CNNs); got {layout!r}")
    return layout


def _kernels(ws: WeightSpace) -> str:
    kernels = ws.kernel_shapes
    return "" if all(k == () for k in kernels) else f" with kernels {kernels}"


def _validate(weights: tuple[Tensor, ...], biases: tuple[Tensor, ...]) -> None:
    if not weights:
        raise WeightSpaceError("a weight space needs at least one layer")
    if len(weights) != len(biases):
        raise WeightSpaceError(f"got {len(weights)} weight tensors but {len(biases)} bias tensors")
    for m, (w, b) in enumerate(zip(weights, biases)):
        if not isinstance(w, Tensor) or not isinstance(b, Tensor):
            raise WeightSpaceError(f"layer {m}: weights and biases must be torch tensors")
        if w.dim() < 4:
            raise WeightSpaceError(f"weights[{m}] must have shape (B, C, d_out, d_in, *kernel), got {tuple(w.shape)}")
        if b.dim() != 3:
            raise WeightSpaceError(f"biases[{m}] must have shape (B, C, d_out), got {tuple(b.shape)}")
    w0 = weights[0]
    for m, (w, b) in enumerate(zip(weights, biases)):
        for name, t in ((f"weights[{m}]", w), (f"biases[{m}]", b)):
            if not t.is_floating_point():
                raise WeightSpaceError(f"{name} has dtype {t.dtype}; a weight space must be floating point")
            if t.dtype != w0.dtype:
                raise WeightSpaceError(f"{name} has dtype {t.dtype} but weights[0] has {w0.dtype}")
            if t.device != w0.device:
                raise WeightSpaceError(f"{name} is on {t.device} but weights[0] is on {w0.device}")
            if t.shape[0] != w0.shape[0]:
                raise WeightSpaceError(f"{name} has batch size {t.shape[0]} but weights[0] has {w0.shape[0]}")
            if t.shape[1] != w0.shape[1]:
                raise WeightSpaceError(f"{name} has {t.shape[1]} channels but weights[0] has {w0.shape[1]}")
        if b.shape[2] != w.shape[2]:
            raise WeightSpaceError(
                f"biases[{m}] has {b.shape[2]} entries but weights[{m}] has {w.shape[2]} output rows"
            )
        if m > 0 and w.shape[3] != weights[m - 1].shape[2]:
            raise WeightSpaceError(
                f"layer sizes do not chain: weights[{m}] takes {w.shape[3]} inputs but "
                f"weights[{m - 1}] has {weights[m - 1].shape[2]} outputs"
            )


def _check_permutation(p: Tensor, d: int, batch: int, k: int) -> None:
    if p.dtype not in (torch.int64, torch.int32):
        raise WeightSpaceError(f"permutation of hidden layer {k} must be an integer tensor, got {p.dtype}")
    if p.dim() == 1:
        rows = p.unsqueeze(0)
    elif p.dim() == 2 and p.shape[0] == batch:
        rows = p
    else:
        raise WeightSpaceError(
            f"permutation of hidden layer {k} must have shape ({d},) or ({batch}, {d}), got {tuple(p.shape)}"
        )
    if rows.shape[1] != d:
        raise WeightSpaceError(f"permutation of hidden layer {k} has length {rows.shape[1]}, the layer has {d} neurons")
    expected = torch.arange(d, device=p.device)
    if not bool((rows.sort(dim=1).values == expected).all()):
        raise WeightSpaceError(f"the index tensor for hidden layer {k} is not a permutation of 0..{d - 1}")
