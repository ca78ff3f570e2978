"""The complete affine equivariant layer between weight spaces.

Mathematics: docs/design.md, "Every equivariant linear map". Fold every tensor's fixed axes into its
channels, so each tensor carries a set ``H`` of hidden axes. A linear map from tensor ``X``
to tensor ``Y`` is equivariant exactly when it is a sum, over the subsets ``S`` of the hidden
indices both share, of

    mean-pool X over H_X minus S  ->  dense map of the channels  ->  broadcast over H_Y minus S,

entries along ``S`` staying aligned. Nothing else is equivariant, so summing every such term
for every pair of tensors gives the *complete* layer.

Implementation.

* Tensors with the same hidden axes are packed side by side into one *slot*
  (:class:`~dwsnets.core.layout.Packing`). Fixed axes are channels, so a slot is simply a tensor
  with more features and the characterisation applies to slots unchanged.
* Terms are grouped by the kept axes ``S``. The sources and the targets of a group are the
  same slots (those whose axes contain ``S``), so the group is ONE dense map: concatenate
  every source pooled down to ``S`` along the features, multiply by one ``(n_S, m_S)``
  matrix (a single GEMM in the channels-last layout), split the result among the targets.
  The equivariant bias (a constant per tensor and fixed-axis entry, broadcast over hidden
  axes) is the bias of the ``S = {}`` GEMM.
* Pooled statistics are computed once, each from the next larger one, as sums scaled
  afterwards (their backward is then a broadcast view, added in place by autograd).
* Each target is the sum of its terms, broadcast over the axes the term lacks. Small terms
  are folded into each other first; no broadcast copy of an input is ever materialised. For
  a slot with two hidden axes (the interior weight matrices, where the cost lies) a fused
  autograd function writes the two broadcast terms into the output buffer and accumulates
  the aligned GEMM on top (``addmm_``), and its backward computes every gradient with two
  GEMMs and two reductions.

Parameter count: ``sum_S n_S * m_S``, exactly the dimension of the space of equivariant
linear maps (when every hidden size is at least 2), plus the bias.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ..core.layout import Packing, WeightSpaceLayout, as_layout, describe_layout
from ..core.weight_space import WeightSpace, WeightSpaceError

__all__ = ["DWSLayer", "Term"]


@dataclass(frozen=True)
class Term:
    """One block of the characterisation: tensor ``source`` to tensor ``target``, keeping the
    hidden indices ``kept`` aligned (pooling ``source`` over its other hidden axes and
    broadcasting over ``target``'s), with ``parameters`` free weights
    (``fixed_in * c_in * fixed_out * c_out``). Its weights are ``group[rows, cols]`` of the
    layer's parameter ``weight[group]``."""

    source: str
    target: str
    kept: tuple[int, ...]
    group: str
    rows: tuple[int, int]
    cols: tuple[int, int]

    @property
    def parameters(self) -> int:
        return (self.rows[1] - self.rows[0]) * (self.cols[1] - self.cols[0])


@dataclass
class _Group:
    """All terms that keep the hidden axes ``axes`` aligned."""

    axes: tuple[int, ...]  # canonical order of the kept hidden indices
    members: list[int] = field(default_factory=list)  # slots whose axes contain them

    @property
    def key(self) -> str:
        return "pool_all" if not self.axes else "keep_" + "_".join(f"h{a}" for a in self.axes)


class DWSLayer(nn.Module):
    """Complete affine layer, equivariant to permutations of every hidden layer.

    Args:
        layout: MLP layer sizes ``(d_0, ..., d_M)`` or a :class:`WeightSpaceLayout`.
        in_channels, out_channels: feature channels of the input and output spaces.
        bias: add the complete equivariant bias (a learnable constant per tensor, channel
            and fixed-axis entry, broadcast over hidden axes).
        gain: initialisation gain (2 suits ReLU stacks, 1 linear ones).

    Shapes: ``WeightSpace`` with ``weights[m]: (B, in_channels, d_{m+1}, d_m)`` ->
    the same layer sizes with ``out_channels``.

    Symmetry contract: ``layer(ws.permute(p)) == layer(ws).permute(p)`` for every choice of
    hidden permutations ``p``, and the linear part spans every linear map with that property.

    Initialisation (:meth:`reset_parameters`): each term is a dense map with fan-in
    ``n_S`` and an output entry of a slot with ``h`` hidden axes sums ``T = 2^h`` terms.
    Weights are uniform with variance ``gain / (n_S * T)`` and the bias is zero, so an
    output entry's second moment is ``gain`` times the average second moment of its pooled
    inputs. With ReLU (which halves the second moment of centred inputs and keeps the
    pooled means positive) activations keep the same scale through deep stacks; see
    ``tests/test_equivariant.py::test_deep_stack_keeps_scale``.
    """

    def __init__(
        self,
        layout: WeightSpaceLayout | Sequence[int],
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        *,
        gain: float = 2.0,
    ) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"channel counts must be positive, got {in_channels} -> {out_channels}")
        self.layout = as_layout(layout)
        self.packing: Packing = self.layout.packing
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.gain = float(gain)
        slots = self.packing.slots

        groups: dict[frozenset[int], _Group] = {}
        # for each slot: (kept axes in the slot's order, group key), largest first
        self._terms: list[list[tuple[tuple[int, ...], frozenset[int]]]] = []
        for si, slot in enumerate(slots):
            terms = []
            for r in range(len(slot.axes), -1, -1):
                for kept in combinations(slot.axes, r):
                    key = frozenset(kept)
                    groups.setdefault(key, _Group(axes=kept)).members.append(si)
                    terms.append((kept, key))
            self._terms.append(terms)
        self._groups = groups
        self._fin = [self.packing.width(s, self.in_channels) for s in slots]
        self._fout = [self.packing.width(s, self.out_channels) for s in slots]
        # slots with exactly two hidden axes that alone own their aligned group: fused path
        self._fused = [len(slot.axes) == 2 and len(groups[frozenset(slot.axes)].members) == 1 for slot in slots]

        self.weight = nn.ParameterDict()
        for group in groups.values():
            n = sum(self._fin[i] for i in group.members)
            m = sum(self._fout[i] for i in group.members)
            self.weight[group.key] = nn.Parameter(torch.empty(n, m))
        if bias:
            self.bias = nn.Parameter(torch.empty(sum(self._fout[i] for i in groups[frozenset()].members)))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    # ------------------------------------------------------------------ parameters

    def reset_parameters(self) -> None:
        slots = self.packing.slots
        with torch.no_grad():
            for group in self._groups.values():
                w = self.weight[group.key]
                n = w.shape[0]
                bounds = [
                    torch.full((self._fout[i],), math.sqrt(3.0 * self.gain / (n * 2 ** len(slots[i].axes))))
                    for i in group.members
                ]
                w.uniform_(-1.0, 1.0).mul_(torch.cat(bounds).to(w.dtype))
            if self.bias is not None:
                self.bias.zero_()

    def terms(self) -> list[Term]:
        """The layer as an explicit table of the characterisation's blocks: one
        :class:`Term` per pair of tensors and subset of their shared hidden indices, with
        where its weights live. Their parameter counts add up to the layer's linear
        parameters, which equal the dimension of the space of equivariant linear maps."""
        tensors = self.layout.tensors
        table = []
        for kept_set, group in self._groups.items():
            rows = self._spans(group.members, self.in_channels)
            cols = self._spans(group.members, self.out_channels)
            for source, r in rows:
                for target, c in cols:
                    table.append(
                        Term(tensors[source].name, tensors[target].name, tuple(sorted(kept_set)), group.key, r, c)
                    )
        return table

    def _spans(self, members: list[int], channels: int) -> list[tuple[int, tuple[int, int]]]:
        """``(tensor index, (start, stop))`` of each member tensor's features in a group's
        concatenated inputs (or outputs) for ``channels`` channels."""
        slots, spans, start = self.packing.slots, [], 0
        for si in members:
            for ti, width in zip(slots[si].members, self.packing.features(slots[si], channels)):
                spans.append((ti, (start, start + width)))
                start += width
        return spans

    def extra_repr(self) -> str:
        n_params = sum(p.numel() for p in self.weight.values())
        return (
            f"{describe_layout(self.layout)}, in_channels={self.in_channels}, "
            f"out_channels={self.out_channels}, bias={self.bias is not None}, linear_terms={n_params}"
        )

    # ------------------------------------------------------------------ forward

    def forward(self, ws: WeightSpace) -> WeightSpace:
        """``(B, in_channels, ...)`` weight space -> ``(B, out_channels, ...)``, same layer sizes."""
        if not isinstance(ws, WeightSpace):
            raise TypeError(f"{type(self).__name__} expects a WeightSpace, got {type(ws).__name__}")
        return WeightSpace.from_tensors(self.forward_tensors(ws.tensors))

    def forward_tensors(self, xs: Sequence[Tensor]) -> list[Tensor]:
        """Same as :meth:`forward` on the layout's tensors ``(B, C, *shape)`` in layout order
        (use this for layouts other than MLPs)."""
        self.check_input(xs)
        return self.packing.unpack(self.forward_packed(self.packing.pack(xs)), self.out_channels)

    def forward_packed(self, xs: Sequence[Tensor]) -> list[Tensor]:
        """One ``(B, *slot_sizes, F_in)`` tensor per slot -> ``(B, *slot_sizes, F_out)`` per slot.

        Every returned tensor is freshly allocated (never a view), so in-place entry-wise
        operations may follow.
        """
        slots = self.packing.slots

        # pooled statistics of every slot, per kept-axes subset, in the slot's axis order
        feats: dict[frozenset[int], list[Tensor]] = {key: [] for key in self._groups}
        for si, (slot, x) in enumerate(zip(slots, xs)):
            axes = slot.axes
            pools: dict[tuple[int, ...], Tensor] = {axes: x}
            for r in range(len(axes) - 1, -1, -1):
                for kept in combinations(axes, r):
                    parent, dim = _parent(kept, axes, pools)
                    pools[kept] = _mean(pools[parent], dim)
            for kept, value in pools.items():
                if self._fused[si] and kept == axes:
                    continue  # consumed directly by the fused aligned term
                group = self._groups[frozenset(kept)]
                feats[frozenset(kept)].append(_reorder(value, kept, group.axes))

        # one GEMM per group (the fused aligned groups are done per slot below)
        outs: dict[frozenset[int], tuple[Tensor, ...]] = {}
        for key, group in self._groups.items():
            if not feats[key]:
                continue
            inp = feats[key][0] if len(feats[key]) == 1 else torch.cat(feats[key], dim=-1)
            w = self.weight[group.key]
            if not key and self.bias is not None:
                out = torch.addmm(self.bias, inp, w)
            else:
                out = torch.matmul(inp, w)
            if len(group.members) == 1:
                outs[key] = (out,)
            else:
                outs[key] = torch.split(out, [self._fout[i] for i in group.members], dim=-1)
        cursor = {key: 0 for key in self._groups}

        results = []
        for si, slot in enumerate(slots):
            axes = slot.axes
            sizes = dict(zip(axes, slot.sizes))
            terms: dict[tuple[int, ...], Tensor] = {}
            for kept, key in self._terms[si]:
                if key not in outs:
                    continue
                value = outs[key][cursor[key]]
                cursor[key] += 1
                terms[kept] = _reorder(value, self._groups[key].axes, kept)
            if self._fused[si]:
                row = terms[axes[:1]] + terms[()].unsqueeze(1)
                col = terms[axes[1:]]
                weight = self.weight[self._groups[frozenset(axes)].key]
                results.append(_Aligned2.apply(xs[si], weight, row, col))
                continue
            results.append(_assemble(terms, axes, sizes))
        return results

    def check_input(self, xs: Sequence[Tensor]) -> None:
        """Raise :class:`WeightSpaceError` unless ``xs`` fit this layer's layout and channels."""
        tensors = self.layout.tensors
        if len(xs) != len(tensors):
            raise WeightSpaceError(
                f"{type(self).__name__} was built for {describe_layout(self.layout)} "
                f"({len(tensors)} tensors), got {len(xs)} tensors"
            )
        for t, x in zip(tensors, xs):
            if x.dim() != 2 + len(t.shape) or tuple(x.shape[2:]) != t.shape:
                raise WeightSpaceError(
                    f"{type(self).__name__} was built for {describe_layout(self.layout)}; "
                    f"{t.name} should have shape (B, C, {', '.join(map(str, t.shape))}), got {tuple(x.shape)}"
                )
            if x.shape[1] != self.in_channels:
                raise WeightSpaceError(
                    f"{type(self).__name__} expects {self.in_channels} input channel(s), {t.name} has {x.shape[1]}"
                )


# ---------------------------------------------------------------------- fused kernels


class _Aligned2(torch.autograd.Function):
    """``y = x @ W + row[:, :, None] + col[:, None, :]`` for ``x (B, a, b, F_in)``.

    The broadcast sum is written into the output buffer and the GEMM accumulates on top of
    it (``addmm_``); no broadcast copy is kept for backward. On the CPU the work goes in
    cache-sized blocks of networks, so that the output block is still in cache when the
    GEMM adds to it, and the backward reads each block of the incoming gradient from
    memory once for all four of its uses (input and weight GEMMs, row and column sums).

    Mixed precision: the GEMM runs in the dtype of ``row`` and ``col``, which the layer's
    other GEMMs produced, so under ``torch.autocast`` it follows autocast's choice (bf16 or
    fp16) like every other matmul of the layer. Gradients come back in each input's own
    dtype (float32 for the parameters); the weight gradient, a sum over blocks, is
    accumulated in float32."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, row: Tensor, col: Tensor) -> Tensor:  # type: ignore[override]
        fin, fout = weight.shape
        dtype = torch.promote_types(row.dtype, col.dtype)
        batch, a, b = x.shape[:3]
        ctx.in_dtype, ctx.w_dtype, ctx.row_dtype, ctx.col_dtype = x.dtype, weight.dtype, row.dtype, col.dtype
        out = torch.empty((batch, a, b, fout), dtype=dtype, device=x.device)
        x, w, row, col = x.to(dtype), weight.to(dtype), row.to(dtype), col.to(dtype)
        for s, e in _network_blocks(out):
            block = out[s:e]
            torch.add(row[s:e].unsqueeze(2), col[s:e].unsqueeze(1), out=block)
            block.view(-1, fout).addmm_(x[s:e].reshape(-1, fin), w)
        ctx.save_for_backward(x, w)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        fin, fout = weight.shape
        grad = grad.contiguous().to(weight.dtype)
        batch, a, b = grad.shape[:3]
        need_x, need_w, need_row, need_col = ctx.needs_input_grad
        # base tensors (not views) so that autograd may accumulate into them in place
        gx = torch.empty((batch, a, b, fin), dtype=weight.dtype, device=grad.device) if need_x else None
        # the weight gradient sums over every block: accumulate in float32 (bf16/fp16 running
        # sums would lose the small late blocks), each block's GEMM rounded once
        wide = torch.float32 if weight.dtype in (torch.bfloat16, torch.float16) else weight.dtype
        gw = torch.zeros(weight.shape, dtype=wide, device=weight.device) if need_w else None
        grow = torch.empty((batch, a, fout), dtype=grad.dtype, device=grad.device) if need_row else None
        gcol = torch.empty((batch, b, fout), dtype=grad.dtype, device=grad.device) if need_col else None
        for s, e in _network_blocks(grad):
            g = grad[s:e]
            g2 = g.view(-1, fout)
            if gx is not None:
                torch.mm(g2, weight.t(), out=gx[s:e].view(-1, fin))
            if gw is not None:
                if gw.dtype == weight.dtype:
                    gw.addmm_(x[s:e].reshape(-1, fin).t(), g2)
                else:
                    gw += torch.mm(x[s:e].reshape(-1, fin).t(), g2)
            if grow is not None:
                torch.sum(g, dim=2, out=grow[s:e])
            if gcol is not None:
                torch.sum(g, dim=1, out=gcol[s:e])
        return (
            None if gx is None else gx.to(ctx.in_dtype),
            None if gw is None else gw.to(ctx.w_dtype),
            None if grow is None else grow.to(ctx.row_dtype),
            None if gcol is None else gcol.to(ctx.col_dtype),
        )


# Networks per block of the fused kernels on the CPU: about 2 MiB of output per block.
_BLOCK_BYTES = 2**21


def _network_blocks(t: Tensor) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges over the batch of ``t`` (one range off the CPU)."""
    batch = t.shape[0]
    if t.device.type != "cpu":
        return [(0, batch)]
    per = max(1, _BLOCK_BYTES // max(1, t[0].numel() * t.element_size()))
    return [(s, min(s + per, batch)) for s in range(0, batch, per)]


# ---------------------------------------------------------------------- helpers


def _mean(x: Tensor, dim: int) -> Tensor:
    """Mean as a sum and a scale of the small result: the backward of ``sum`` is a free
    broadcast view that autograd adds in place, where ``mean``'s would allocate a full
    tensor for the division."""
    return x.sum(dim=dim) * (1.0 / x.shape[dim])


def _assemble(terms: dict[tuple[int, ...], Tensor], axes: tuple[int, ...], sizes: dict[int, int]) -> Tensor:
    """Sum a slot's terms, folding small ones into larger ones before the full-size add."""
    full = terms.pop(axes)
    merged: dict[tuple[int, ...], Tensor] = {}
    for kept, value in sorted(terms.items(), key=lambda kv: len(kv[0])):
        if kept in merged:
            value = value + merged.pop(kept)
        if len(kept) < len(axes) - 1:
            extra = next(a for a in axes if a not in kept)
            parent = tuple(a for a in axes if a in kept or a == extra)
            expanded = _broadcastable(value, kept, parent, sizes)
            merged[parent] = merged[parent] + expanded if parent in merged else expanded
        else:
            merged[kept] = value
    if not merged:
        # a view into a shared GEMM output: copy so that later in-place ops are safe
        return full.clone() if full._base is not None else full
    owned = full._base is None
    for kept, value in merged.items():
        expanded = _broadcastable(value, kept, axes, sizes)
        if owned:
            full.add_(expanded)
        else:
            full = full + expanded
            owned = True
    return full


def _parent(
    kept: tuple[int, ...], axes: tuple[int, ...], pools: dict[tuple[int, ...], Tensor]
) -> tuple[tuple[int, ...], int]:
    """A computed pool with one more axis than ``kept``, and the dim to average away."""
    for extra in axes:
        if extra in kept:
            continue
        parent = tuple(a for a in axes if a in kept or a == extra)
        if parent in pools:
            return parent, 1 + parent.index(extra)
    raise AssertionError("unreachable: the full tensor is always available")


def _reorder(value: Tensor, order_from: tuple[int, ...], order_to: tuple[int, ...]) -> Tensor:
    """Permute the hidden axes of ``(B, *hidden, F)`` from one index order to another."""
    if order_from == order_to:
        return value
    perm = [0] + [1 + order_from.index(a) for a in order_to] + [value.dim() - 1]
    return value.permute(perm)


def _broadcastable(value: Tensor, kept: tuple[int, ...], target: tuple[int, ...], sizes: dict[int, int]) -> Tensor:
    """View ``(B, *kept, F)`` as ``(B, *target-with-ones, F)`` for broadcasting."""
    shape = [value.shape[0]] + [sizes[a] if a in kept else 1 for a in target] + [value.shape[-1]]
    return value.reshape(shape)
