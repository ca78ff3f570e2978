"""The weight-space container: an immutable batch of MLPs with feature channels.

A batch of ``B`` MLPs with layer sizes ``d_0, ..., d_M`` and ``C`` channels per entry:

    weights[m]: (B, C, d_{m+1}, d_m)      biases[m]: (B, C, d_{m+1})      m = 0..M-1

(``nn.Linear.weight`` layout with batch and channel in front). Raw networks have ``C = 1``.

Symmetry contract: permuting the neurons of hidden layer ``k`` (rows of ``weights[k-1]``
and entries of ``biases[k-1]``, columns of ``weights[k]``) leaves every network's function
unchanged; :meth:`WeightSpace.permute` applies such permutations.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from .layout import WeightSpaceLayout

__all__ = ["WeightSpace", "WeightSpaceError"]


class WeightSpaceError(ValueError):
    """Raised for malformed weight spaces or networks that are not compatible MLPs."""


class WeightSpace:
    """Immutable batch of MLP weights and biases with feature channels.

    Args:
        weights: ``M`` tensors, ``weights[m]`` of shape ``(B, C, d_{m+1}, d_m)``.
        biases: ``M`` tensors, ``biases[m]`` of shape ``(B, C, d_{m+1})``.

    Both are stored as tuples; the object cannot be modified after construction (apply
    :meth:`map`, arithmetic or :meth:`permute` to get new ones). Tensors are not copied.
    """

    __slots__ = ("weights", "biases")
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
    def layout(self) -> WeightSpaceLayout:
        """Axis description of this space (:meth:`WeightSpaceLayout.mlp`)."""
        return WeightSpaceLayout.mlp(self.layer_sizes)

    @property
    def tensors(self) -> tuple[Tensor, ...]:
        """All tensors in layout order: ``weights`` then ``biases``."""
        return self.weights + self.biases

    @classmethod
    def from_tensors(cls, tensors: Sequence[Tensor]) -> "WeightSpace":
        """Inverse of :attr:`tensors`."""
        tensors = tuple(tensors)
        if len(tensors) % 2 or not tensors:
            raise WeightSpaceError(f"expected weights followed by as many biases, got {len(tensors)} tensors")
        half = len(tensors) // 2
        return cls(tensors[:half], tensors[half:])

    def __len__(self) -> int:
        return self.batch_size

    def __repr__(self) -> str:
        return (
            f"WeightSpace(batch_size={self.batch_size}, channels={self.channels}, "
            f"layer_sizes={self.layer_sizes}, dtype={self.dtype}, device={self.device})"
        )

    # ------------------------------------------------------------------ tensor-like ops

    def map(self, fn: Callable[[Tensor], Tensor]) -> "WeightSpace":
        """Apply ``fn`` to every tensor (an entry-wise map keeps equivariance)."""
        return WeightSpace([fn(w) for w in self.weights], [fn(b) for b in self.biases])

    def to(self, *args: Any, **kwargs: Any) -> "WeightSpace":
        """Like :meth:`torch.Tensor.to` on every tensor."""
        return self.map(lambda t: t.to(*args, **kwargs))

    def detach(self) -> "WeightSpace":
        return self.map(Tensor.detach)

    def clone(self) -> "WeightSpace":
        return self.map(Tensor.clone)

    def __getitem__(self, index: int | slice | Tensor | Sequence[int]) -> "WeightSpace":
        """Select networks along the batch dimension. An integer keeps a batch of one."""
        if isinstance(index, int):
            if not -self.batch_size <= index < self.batch_size:
                raise IndexError(f"index {index} out of range for a batch of {self.batch_size}")
            index = slice(index, index + 1 if index != -1 else None)
        return self.map(lambda t: t[index])

    def __iter__(self) -> Iterator["WeightSpace"]:
        for i in range(self.batch_size):
            yield self[i]

    @staticmethod
    def cat(spaces: Sequence["WeightSpace"], dim: str = "batch") -> "WeightSpace":
        """Concatenate along ``"batch"`` (same architecture and channels) or ``"channel"``."""
        spaces = list(spaces)
        if not spaces:
            raise WeightSpaceError("cannot concatenate an empty list of weight spaces")
        if dim not in ("batch", "channel"):
            raise ValueError(f"dim must be 'batch' or 'channel', got {dim!r}")
        first = spaces[0]
        for i, s in enumerate(spaces[1:], 1):
            if s.layer_sizes != first.layer_sizes:
                raise WeightSpaceError(
                    f"cannot concatenate: space 0 has layer sizes {first.layer_sizes}, space {i} has {s.layer_sizes}"
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

    def _binary(self, other: Any, op: Callable[[Tensor, Any], Tensor]) -> "WeightSpace":
        if isinstance(other, WeightSpace):
            if other.layer_sizes != self.layer_sizes:
                raise WeightSpaceError(
                    f"layer sizes differ: {self.layer_sizes} and {other.layer_sizes}"
                )
            return WeightSpace.from_tensors([op(a, b) for a, b in zip(self.tensors, other.tensors)])
        return self.map(lambda t: op(t, other))

    def __add__(self, other: Any) -> "WeightSpace":
        return self._binary(other, torch.add)

    __radd__ = __add__

    def __sub__(self, other: Any) -> "WeightSpace":
        return self._binary(other, torch.sub)

    def __mul__(self, other: Any) -> "WeightSpace":
        return self._binary(other, torch.mul)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> "WeightSpace":
        return self._binary(other, torch.div)

    def __neg__(self) -> "WeightSpace":
        return self.map(torch.neg)

    def allclose(self, other: "WeightSpace", rtol: float = 1e-5, atol: float = 1e-8) -> bool:
        if self.layer_sizes != other.layer_sizes or self.channels != other.channels:
            return False
        return all(torch.allclose(a, b, rtol=rtol, atol=atol) for a, b in zip(self.tensors, other.tensors))

    def is_finite(self) -> bool:
        return all(bool(torch.isfinite(t).all()) for t in self.tensors)

    def check_finite(self, what: str = "weight space") -> "WeightSpace":
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
        return [f"weight{m + 1}" for m in range(self.num_layers)] + [
            f"bias{m + 1}" for m in range(self.num_layers)
        ]

    # ------------------------------------------------------------------ flat vectors

    def flatten(self) -> Tensor:
        """``(B, C * P)`` with ``P`` the parameter count of one network (channel-major)."""
        b, c = self.batch_size, self.channels
        return torch.cat([t.reshape(b, c, -1) for t in self.tensors], dim=2).reshape(b, -1)

    @classmethod
    def from_flat(cls, flat: Tensor, layer_sizes: Sequence[int], channels: int = 1) -> "WeightSpace":
        """Inverse of :meth:`flatten`: ``flat`` of shape ``(B, channels * P)``."""
        layout = WeightSpaceLayout.mlp(layer_sizes)
        if flat.dim() != 2 or flat.shape[1] != channels * layout.numel:
            raise WeightSpaceError(
                f"expected a flat tensor of shape (B, {channels * layout.numel}) for layer sizes "
                f"{tuple(layer_sizes)} and {channels} channel(s), got {tuple(flat.shape)}"
            )
        b = flat.shape[0]
        parts = torch.split(flat.reshape(b, channels, -1), [t.numel for t in layout.tensors], dim=2)
        return cls.from_tensors([p.reshape(b, channels, *t.shape) for p, t in zip(parts, layout.tensors)])

    @classmethod
    def randn(
        cls,
        layer_sizes: Sequence[int],
        batch_size: int,
        channels: int = 1,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> "WeightSpace":
        """Standard-normal entries; handy for tests and benchmarks."""
        layout = WeightSpaceLayout.mlp(layer_sizes)
        return cls.from_tensors(
            [
                torch.randn(batch_size, channels, *t.shape, generator=generator, dtype=dtype, device=device)
                for t in layout.tensors
            ]
        )

    # ------------------------------------------------------------------ the symmetry

    def permute(self, perms: Sequence[Tensor]) -> "WeightSpace":
        """Apply one permutation per hidden layer.

        Args:
            perms: ``M - 1`` index tensors; ``perms[k-1]`` permutes hidden layer ``k`` and has
                shape ``(d_k,)`` (same for the whole batch) or ``(B, d_k)`` (one per network).

        Returns the space with ``W_k[i, :] <- W_k[p[i], :]``, ``b_k[i] <- b_k[p[i]]`` and
        ``W_{k+1}[:, i] <- W_{k+1}[:, p[i]]``, i.e. ``W_m -> P_m W_m P_{m-1}^T``. Every network
        computes the same function afterwards.
        """
        perms = list(perms)
        hidden = self.layer_sizes[1:-1]
        if len(perms) != len(hidden):
            raise WeightSpaceError(
                f"expected {len(hidden)} permutation(s), one per hidden layer of {self.layer_sizes}, got {len(perms)}"
            )
        weights, biases = list(self.weights), list(self.biases)
        for k, (p, d) in enumerate(zip(perms, hidden), start=1):
            p = torch.as_tensor(p, device=self.device)
            _check_permutation(p, d, self.batch_size, k)
            weights[k - 1] = _take(weights[k - 1], p, axis=2)
            biases[k - 1] = _take(biases[k - 1], p, axis=2)
            weights[k] = _take(weights[k], p, axis=3)
        return WeightSpace(weights, biases)

    def random_permutations(
        self, generator: torch.Generator | None = None, per_network: bool = False
    ) -> list[Tensor]:
        """Random permutations of every hidden layer, shaped for :meth:`permute`."""
        return random_hidden_permutations(
            self.layer_sizes, self.batch_size if per_network else None, generator=generator, device=self.device
        )

    # ------------------------------------------------------------------ PyTorch modules

    @classmethod
    def from_modules(
        cls, modules: nn.Module | Sequence[nn.Module], *, dtype: torch.dtype | None = None
    ) -> "WeightSpace":
        """Stack MLPs (``nn.Sequential`` or any module whose parametrised parts are
        ``nn.Linear`` layers, applied in registration order) into a weight space with ``C = 1``.

        Activations and other parameter-free modules in between are allowed and ignored.
        """
        if isinstance(modules, nn.Module):
            modules = [modules]
        state_dicts = []
        for i, module in enumerate(modules):
            if not isinstance(module, nn.Module):
                raise WeightSpaceError(f"network {i} is a {type(module).__name__}, not a torch.nn.Module")
            state_dicts.append(_linear_state(module, i))
        return cls._stack(state_dicts, dtype=dtype, what="network")

    @classmethod
    def from_state_dicts(
        cls,
        state_dicts: Mapping[str, Tensor] | Sequence[Mapping[str, Tensor]],
        *,
        dtype: torch.dtype | None = None,
    ) -> "WeightSpace":
        """Stack MLP ``state_dict``s (2-D ``*.weight`` and 1-D ``*.bias`` entries, in order)."""
        if isinstance(state_dicts, Mapping):
            state_dicts = [state_dicts]
        layers = [_state_dict_layers(sd, i) for i, sd in enumerate(state_dicts)]
        return cls._stack(layers, dtype=dtype, what="state dict")

    @classmethod
    def _stack(
        cls, nets: list[list[tuple[Tensor, Tensor]]], dtype: torch.dtype | None, what: str
    ) -> "WeightSpace":
        if not nets:
            raise WeightSpaceError(f"no {what}s given")
        sizes0 = _chain_sizes(nets[0], 0, what)
        for i, layers in enumerate(nets[1:], 1):
            sizes = _chain_sizes(layers, i, what)
            if sizes != sizes0:
                raise WeightSpaceError(
                    f"mismatched architectures: {what} 0 has layer sizes {sizes0}, {what} {i} has {sizes}"
                )
        n_layers = len(nets[0])
        weights, biases = [], []
        for m in range(n_layers):
            w = torch.stack([layers[m][0].detach() for layers in nets]).unsqueeze(1)
            b = torch.stack([layers[m][1].detach() for layers in nets]).unsqueeze(1)
            if dtype is not None:
                w, b = w.to(dtype), b.to(dtype)
            weights.append(w)
            biases.append(b)
        return cls(weights, biases).check_finite(f"{what}s")

    def to_state_dicts(self, prefix_indices: Sequence[int] | None = None) -> list[dict[str, Tensor]]:
        """One ``state_dict`` per network (requires ``C = 1``).

        Keys are ``"{i}.weight"``/``"{i}.bias"`` with ``i = prefix_indices[m]`` (default
        ``0, 2, 4, ...``: a ``nn.Sequential`` alternating Linear and activation).
        """
        self._require_single_channel()
        idx = list(prefix_indices) if prefix_indices is not None else [2 * m for m in range(self.num_layers)]
        out = []
        for n in range(self.batch_size):
            sd: dict[str, Tensor] = {}
            for m in range(self.num_layers):
                sd[f"{idx[m]}.weight"] = self.weights[m][n, 0].detach().clone()
                sd[f"{idx[m]}.bias"] = self.biases[m][n, 0].detach().clone()
            out.append(sd)
        return out

    def to_modules(
        self,
        activation: Callable[[], nn.Module] | None = nn.ReLU,
        *,
        template: nn.Module | None = None,
    ) -> list[nn.Module]:
        """Rebuild one module per network (requires ``C = 1``).

        With ``template`` (e.g. one of the modules given to :meth:`from_modules`), each network
        is a deep copy of it with its ``nn.Linear`` parameters replaced, so custom activations
        are kept. Otherwise an ``nn.Sequential`` of ``Linear`` layers with ``activation()``
        between them (``activation=None`` for none).
        """
        self._require_single_channel()
        modules: list[nn.Module] = []
        for n in range(self.batch_size):
            if template is not None:
                net = copy.deepcopy(template)
                linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
                if len(linears) != self.num_layers:
                    raise WeightSpaceError(
                        f"template has {len(linears)} Linear layers, the weight space has {self.num_layers}"
                    )
            else:
                parts: list[nn.Module] = []
                sizes = self.layer_sizes
                linears = []
                for m in range(self.num_layers):
                    lin = nn.Linear(sizes[m], sizes[m + 1])
                    linears.append(lin)
                    parts.append(lin)
                    if m < self.num_layers - 1 and activation is not None:
                        parts.append(activation())
                net = nn.Sequential(*parts)
            for m, lin in enumerate(linears):
                w, b = self.weights[m][n, 0], self.biases[m][n, 0]
                if lin.weight.shape != w.shape:
                    raise WeightSpaceError(
                        f"template layer {m} has weight shape {tuple(lin.weight.shape)}, expected {tuple(w.shape)}"
                    )
                if lin.bias is None:
                    raise WeightSpaceError(f"template layer {m} has no bias")
                with torch.no_grad():
                    lin.weight.data = w.detach().clone().to(lin.weight.dtype)
                    lin.bias.data = b.detach().clone().to(lin.bias.dtype)
            net.to(self.device)
            modules.append(net)
        return modules

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
    out = []
    for d in tuple(layer_sizes)[1:-1]:
        if batch_size is None:
            p = torch.randperm(d, generator=generator)
        else:
            p = torch.argsort(torch.rand(batch_size, d, generator=generator), dim=1)
        out.append(p.to(device) if device is not None else p)
    return out


def _validate(weights: tuple[Tensor, ...], biases: tuple[Tensor, ...]) -> None:
    if not weights:
        raise WeightSpaceError("a weight space needs at least one layer")
    if len(weights) != len(biases):
        raise WeightSpaceError(f"got {len(weights)} weight tensors but {len(biases)} bias tensors")
    for m, (w, b) in enumerate(zip(weights, biases)):
        if not isinstance(w, Tensor) or not isinstance(b, Tensor):
            raise WeightSpaceError(f"layer {m}: weights and biases must be torch tensors")
        if w.dim() != 4:
            raise WeightSpaceError(
                f"weights[{m}] must have shape (B, C, d_out, d_in), got {tuple(w.shape)}"
            )
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


def _take(t: Tensor, p: Tensor, axis: int) -> Tensor:
    """Reorder ``t`` along ``axis`` by ``p`` (shared ``(d,)`` or per network ``(B, d)``)."""
    p = p.long()
    if p.dim() == 1:
        return t.index_select(axis, p)
    shape = [1] * t.dim()
    shape[0], shape[axis] = p.shape[0], p.shape[1]
    index = p.reshape(shape).expand(*t.shape[:axis], p.shape[1], *t.shape[axis + 1 :])
    return torch.gather(t, axis, index)


_ALLOWED_PARAMETERISED = (nn.Linear,)


def _linear_state(module: nn.Module, i: int) -> list[tuple[Tensor, Tensor]]:
    layers = []
    for name, sub in module.named_modules():
        own = list(sub.parameters(recurse=False))
        if isinstance(sub, nn.Linear):
            bias = sub.bias if sub.bias is not None else torch.zeros(sub.out_features, dtype=sub.weight.dtype, device=sub.weight.device)
            layers.append((sub.weight, bias))
        elif own:
            raise WeightSpaceError(
                f"network {i} is not an MLP: module '{name or type(module).__name__}' "
                f"({type(sub).__name__}) has parameters; only nn.Linear layers may"
            )
    if not layers:
        raise WeightSpaceError(f"network {i} has no nn.Linear layer")
    return layers


def _state_dict_layers(sd: Mapping[str, Tensor], i: int) -> list[tuple[Tensor, Tensor]]:
    if not isinstance(sd, Mapping):
        raise WeightSpaceError(f"state dict {i} is a {type(sd).__name__}, not a mapping")
    layers = []
    for key, value in sd.items():
        if not isinstance(value, Tensor):
            raise WeightSpaceError(f"state dict {i}: entry '{key}' is not a tensor")
        if key.endswith("weight"):
            if value.dim() != 2:
                raise WeightSpaceError(
                    f"state dict {i} is not an MLP: '{key}' has shape {tuple(value.shape)}, expected a 2-D Linear weight"
                )
            bias_key = key[: -len("weight")] + "bias"
            bias = sd.get(bias_key)
            if bias is None:
                bias = torch.zeros(value.shape[0], dtype=value.dtype, device=value.device)
            elif bias.shape != (value.shape[0],):
                raise WeightSpaceError(
                    f"state dict {i}: '{bias_key}' has shape {tuple(bias.shape)}, expected ({value.shape[0]},)"
                )
            layers.append((value, bias))
        elif key.endswith("bias"):
            if key[: -len("bias")] + "weight" not in sd:
                raise WeightSpaceError(f"state dict {i}: '{key}' has no matching weight")
        else:
            raise WeightSpaceError(f"state dict {i} is not an MLP: unexpected entry '{key}'")
    if not layers:
        raise WeightSpaceError(f"state dict {i} has no weight entries")
    return layers


def _chain_sizes(layers: list[tuple[Tensor, Tensor]], i: int, what: str) -> tuple[int, ...]:
    sizes = [layers[0][0].shape[1]]
    for m, (w, _) in enumerate(layers):
        if w.shape[1] != sizes[-1]:
            raise WeightSpaceError(
                f"{what} {i}: layer {m} takes {w.shape[1]} inputs but the previous layer has {sizes[-1]} outputs"
            )
        sizes.append(w.shape[0])
    return tuple(sizes)
