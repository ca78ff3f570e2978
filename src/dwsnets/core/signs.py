"""The sign symmetry of odd activations, removed by a canonical form.

A hidden neuron of a network with an odd activation (a SIREN's ``sin``, ``tanh``) computes
``f(w.x + b)``; negating its incoming weights and bias negates its output, and negating its
outgoing weights as well undoes that: the network's function is unchanged
(:meth:`WeightSpace.flip_signs`). Besides permutations, every such network has ``2^n``
sign-flipped twins. A *canonical form* picks one of them per network, the same one for
every twin, so that a model sees one representative.

The rule (feed-forward layouts: MLPs and CNNs), layer by layer from the input: every
neuron of hidden layer ``k`` takes the sign that makes the largest-magnitude entry of its
incoming weights and bias positive, the incoming weights being read after layers
``1..k-1`` were made canonical (their flips change layer ``k``'s input columns). Each
neuron's choice is then unchanged by any flip of its own sign, so the form is exactly
invariant to every sign flip.

Near ties it jumps: when the largest incoming entry and the largest one of the opposite
sign have nearly equal magnitudes, a small change of the weights can swap them and so
negate the whole neuron in the canonical form. :func:`sign_tie_margins` measures how close
each neuron is to such a tie. (Exact ties go to the first entry in memory order, a flip of
the neuron does not change that choice.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .weight_space import WeightSpace, WeightSpaceError

__all__ = ["canonical_signs", "sign_canonical_form", "sign_tie_margins"]


def _incoming(ws: WeightSpace, k: int) -> Tensor:
    """``(B, d_k, E)``: every entry of each hidden-layer-``k`` neuron's incoming weights
    (all channels, inputs and kernel entries) and bias."""
    w, b = ws.weights[k - 1], ws.biases[k - 1]  # (B, C, d_k, d_{k-1}, *kernel), (B, C, d_k)
    batch, d = w.shape[0], w.shape[2]
    rows = w.movedim(2, 1).reshape(batch, d, -1)
    return torch.cat([rows, b.movedim(2, 1).reshape(batch, d, -1)], dim=2)


def _check_feedforward(ws: WeightSpace) -> None:
    if ws.layout.layer_sizes is None:
        raise WeightSpaceError("the sign canonical form needs a feed-forward layout (an MLP or a CNN)")


def canonical_signs(ws: WeightSpace) -> list[Tensor]:
    """The signs ``(B, d_k)`` per hidden layer that :func:`sign_canonical_form` applies
    (``ws.flip_signs(canonical_signs(ws))`` is the canonical form)."""
    _check_feedforward(ws)
    hidden = ws.layer_sizes[1:-1]
    ones = [torch.ones(ws.batch_size, d, dtype=ws.dtype, device=ws.device) for d in hidden]
    signs, current = [], ws
    for k in range(1, len(hidden) + 1):
        entries = _incoming(current, k)
        lead = entries.gather(2, entries.abs().argmax(dim=2, keepdim=True)).squeeze(2)
        s = torch.where(lead < 0, -1.0, 1.0).to(ws.dtype)
        signs.append(s)
        step = [*ones[: k - 1], s, *ones[k:]]
        current = current.flip_signs(step)
    return signs


def sign_canonical_form(ws: WeightSpace) -> WeightSpace:
    """The canonical sign-flipped twin of every network (see the module's rule): the same
    function for odd activations, the same weights for any two networks that differ by sign
    flips. Idempotent, and it commutes with hidden permutations (each neuron's choice reads
    the set of its incoming entries, whatever their order), so permutation augmentations
    keep networks canonical."""
    return ws.flip_signs(canonical_signs(ws))


def sign_tie_margins(ws: WeightSpace) -> list[Tensor]:
    """Per hidden layer ``(B, d_k)``: how far each neuron is from a tie of the canonical
    rule, ``1 - |largest entry of the opposite sign| / |largest entry|`` over its incoming
    weights and bias (read as the canonical form reads them). 0 is a tie, where the form
    jumps; 1 means every incoming entry has the leading entry's sign."""
    canonical = sign_canonical_form(ws)
    out = []
    for k in range(1, len(ws.layer_sizes) - 1):
        entries = _incoming(canonical, k)  # the leading entry is positive here
        lead = entries.abs().amax(dim=2)
        opposite = (-entries).clamp_min(0).amax(dim=2)
        out.append(1 - opposite / lead.clamp_min(torch.finfo(lead.dtype).tiny))
    return out
