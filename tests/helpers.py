"""Shared test helpers: architectures, explicit group actions, non-symmetries."""

from __future__ import annotations

import torch

from dwsnets import WeightSpace

# (d_0, ..., d_M): M from 1 to 5, d_0 and d_M of 1 and above, hidden sizes from 2
ARCHITECTURES = [
    (3, 2),
    (2, 4, 1),
    (1, 3, 2),
    (2, 3, 3, 2),
    (1, 3, 2, 2, 2),
    (2, 2, 3, 1),
    (3, 2, 4, 3, 2, 2),
]


def non_symmetry(ws: WeightSpace) -> WeightSpace:
    """A change of the weights that is NOT a hidden-neuron permutation.

    Swaps two input columns of W_1 when d_0 >= 2; otherwise permutes hidden layer 1's rows
    of W_1 and b_1 without the matching columns of W_2; for M = 1 swaps two output rows.
    """
    weights, biases = list(ws.weights), list(ws.biases)
    d0 = ws.layer_sizes[0]
    if d0 >= 2:
        weights[0] = weights[0][..., [1, 0] + list(range(2, d0))]
    elif ws.num_layers >= 2:
        d1 = ws.layer_sizes[1]
        rows = [1, 0] + list(range(2, d1))
        weights[0] = weights[0][:, :, rows]
        biases[0] = biases[0][:, :, rows]
    else:
        d1 = ws.layer_sizes[1]
        rows = [1, 0] + list(range(2, d1))
        weights[0] = weights[0][:, :, rows]
        biases[0] = biases[0][:, :, rows]
    return WeightSpace(weights, biases)


def swap_fixed_axis(ws: WeightSpace) -> WeightSpace:
    """Swap two input columns of W_1 (d_0 >= 2) or two output rows of W_M and b_M.

    A non-symmetry that changes pooled statistics, so even the invariant pooling alone
    must see it (a permutation of one tensor's hidden axis alone does not change them)."""
    weights, biases = list(ws.weights), list(ws.biases)
    sizes = ws.layer_sizes
    if sizes[0] >= 2:
        weights[0] = weights[0][..., [1, 0] + list(range(2, sizes[0]))]
    else:
        rows = [1, 0] + list(range(2, sizes[-1]))
        weights[-1] = weights[-1][:, :, rows]
        biases[-1] = biases[-1][:, :, rows]
    return WeightSpace(weights, biases)


def permutation_matrix(layer_sizes: tuple[int, ...], k: int, sigma: list[int]) -> torch.Tensor:
    """Matrix of the action of permuting hidden layer ``k`` by ``sigma`` on the flat vector
    (``WeightSpace.flatten`` order, one channel), built from index arithmetic alone."""
    m_layers = len(layer_sizes) - 1
    positions: list[tuple] = []
    for m in range(1, m_layers + 1):
        positions += [("w", m, i, j) for i in range(layer_sizes[m]) for j in range(layer_sizes[m - 1])]
    for m in range(1, m_layers + 1):
        positions += [("b", m, i) for i in range(layer_sizes[m])]
    index = {p: n for n, p in enumerate(positions)}

    def image(p: tuple) -> tuple:
        if p[0] == "w":
            _, m, i, j = p
            if m == k:
                i = sigma[i]
            if m == k + 1:
                j = sigma[j]
            return ("w", m, i, j)
        _, m, i = p
        return ("b", m, sigma[i] if m == k else i)

    n = len(positions)
    mat = torch.zeros(n, n, dtype=torch.float64)
    for p, col in index.items():
        mat[index[image(p)], col] = 1.0
    return mat


def generators(layer_sizes: tuple[int, ...]) -> list[torch.Tensor]:
    """Two generators (a swap and a full cycle) of S_{d_k} for every hidden layer."""
    gens = []
    for k in range(1, len(layer_sizes) - 1):
        d = layer_sizes[k]
        swap = [1, 0] + list(range(2, d))
        cycle = [(i + 1) % d for i in range(d)]
        gens += [permutation_matrix(layer_sizes, k, swap), permutation_matrix(layer_sizes, k, cycle)]
    return gens


def commutant_dimension(layer_sizes: tuple[int, ...], c_in: int = 1, c_out: int = 1) -> int:
    """dim {L : L P = P L for all generators P}, by solving the linear constraints.

    With channels the representation is P (x) I_c; ``L`` is ``(c_out N) x (c_in N)``."""
    gens = generators(layer_sizes)
    n = sum(layer_sizes[m] * layer_sizes[m - 1] + layer_sizes[m] for m in range(1, len(layer_sizes)))
    if not gens:
        return (n * c_in) * (n * c_out)
    rows = []
    for p in gens:
        p_in = torch.kron(torch.eye(c_in, dtype=torch.float64), p)
        p_out = torch.kron(torch.eye(c_out, dtype=torch.float64), p)
        # L p_in - p_out L = 0, vec(A X B) = (B^T kron A) vec(X) (column-major vec)
        rows.append(
            torch.kron(p_in.T.contiguous(), torch.eye(n * c_out, dtype=torch.float64))
            - torch.kron(torch.eye(n * c_in, dtype=torch.float64), p_out)
        )
    constraints = torch.cat(rows)
    return constraints.shape[1] - int(torch.linalg.matrix_rank(constraints))


def fixed_space_dimension(layer_sizes: tuple[int, ...]) -> int:
    """dim {v : P v = v for all generators}: equivariant biases and invariant functionals."""
    gens = generators(layer_sizes)
    n = sum(layer_sizes[m] * layer_sizes[m - 1] + layer_sizes[m] for m in range(1, len(layer_sizes)))
    if not gens:
        return n
    eye = torch.eye(n, dtype=torch.float64)
    constraints = torch.cat([p - eye for p in gens])
    return n - int(torch.linalg.matrix_rank(constraints))
