"""Weight matching: permute each network's hidden neurons to best match a reference.

For one network and a reference, coordinate ascent over hidden layers: with the other
layers' permutations fixed, the best permutation of layer ``k`` maximises

    sum_i < ref W_k[i, :], W_k[p(i), :] > + ref b_k[i] b_k[p(i)] + < ref W_{k+1}[:, i], W_{k+1}[:, p(i)] >,

a linear assignment problem solved exactly with SciPy's Hungarian solver
(``scipy.optimize.linear_sum_assignment``). A first sweep matches layer by layer from the fixed input layer using incoming weights
only (exact for permuted copies); full sweeps then repeat until no layer changes. The
similarity matrices of a whole batch are computed together; the assignments are solved
one network at a time.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.weight_space import WeightSpace, WeightSpaceError

__all__ = ["align_to_reference", "matching_permutations"]


def matching_permutations(ws: WeightSpace, reference: WeightSpace, max_sweeps: int = 10) -> list[Tensor]:
    """Per-network permutations ``(B, d_k)`` for :meth:`WeightSpace.permute` that align
    ``ws`` to ``reference`` (a batch of one, same layer sizes, one channel)."""
    from scipy.optimize import linear_sum_assignment

    if reference.layer_sizes != ws.layer_sizes:
        raise WeightSpaceError(f"reference has layer sizes {reference.layer_sizes}, the networks {ws.layer_sizes}")
    if ws.channels != 1 or reference.channels != 1 or reference.batch_size != 1:
        raise WeightSpaceError("alignment needs one-channel networks and a single reference network")
    hidden = ws.layer_sizes[1:-1]
    b = ws.batch_size
    w = [t[:, 0].double().cpu() for t in ws.weights]
    bias = [t[:, 0].double().cpu() for t in ws.biases]
    rw = [t[0, 0].double().cpu() for t in reference.weights]
    rb = [t[0, 0].double().cpu() for t in reference.biases]
    perms = [torch.arange(d).repeat(b, 1) for d in hidden]

    def permuted_in(m: int) -> Tensor:
        """W_m with its columns (inputs) permuted by the current permutation of layer m-1."""
        if m == 0:
            return w[0]
        p = perms[m - 1]
        return torch.gather(w[m], 2, p[:, None, :].expand(-1, w[m].shape[1], -1))

    def permuted_out(m: int) -> Tensor:
        """W_m with its rows (outputs) permuted by the current permutation of layer m."""
        if m == len(w) - 1:
            return w[m]
        p = perms[m]
        return torch.gather(w[m], 1, p[:, :, None].expand(-1, -1, w[m].shape[2]))

    for sweep in range(max_sweeps + 1):
        changed = False
        for k in range(len(hidden)):
            incoming = permuted_in(k)  # (B, d_k, d_{k-1}) rows still in the network's order
            # the first sweep matches layer by layer from the (fixed) inputs, incoming weights
            # only: exact for permuted copies, and a good start for the full objective
            outgoing = permuted_out(k + 1) if k + 1 < len(w) and sweep > 0 else None
            sim = torch.einsum("ia,bja->bij", rw[k], incoming) + rb[k][None, :, None] * bias[k][:, None, :]
            if outgoing is not None:
                # columns of W_{k+1} (with its rows already aligned) against the reference's
                sim = sim + torch.einsum("ai,baj->bij", rw[k + 1], outgoing)
            sim_np = sim.numpy()
            new = torch.empty_like(perms[k])
            for n in range(b):
                rows, cols = linear_sum_assignment(sim_np[n], maximize=True)
                new[n, torch.from_numpy(rows)] = torch.from_numpy(cols)
            if not torch.equal(new, perms[k]):
                changed = True
                perms[k] = new
        if not changed and sweep > 0:
            break
    return [p.to(ws.device) for p in perms]


def align_to_reference(ws: WeightSpace, reference: WeightSpace, max_sweeps: int = 10) -> WeightSpace:
    """``ws`` with every network's hidden neurons reordered to match ``reference``;
    every network computes the same function as before."""
    return ws.permute(matching_permutations(ws, reference, max_sweeps))
