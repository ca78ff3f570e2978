"""Shared test helpers: architectures, explicit group actions, non-symmetries."""

from __future__ import annotations

import torch

from dwsnets import WeightSpace
from dwsnets.core.function import NetworkFunction
from dwsnets.testing import non_symmetry

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


# the public non-symmetry: swaps fixed input columns of W_1 (or output rows of W_M), which
# also changes pooled statistics, so even an invariant pooling alone must see it
swap_fixed_axis = non_symmetry


def cnn_zoo(n: int, seed: int = 0) -> tuple[WeightSpace, torch.Tensor]:
    """A tiny zoo of CNNs trained here: conv 1->4 (3x3), ReLU, conv 4->4 (3x3), ReLU,
    global average pooling, linear 4->2. Half learn to tell images with horizontal stripes
    from noise, half vertical stripes (label 0 / 1); each from its own initialisation, so
    hidden channels come in arbitrary order."""
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    stripes = (torch.arange(8) % 2).float() * 2 - 1  # zero mean: brightness tells nothing
    nets, labels = [], []
    for i in range(n):
        label = i % 2
        pattern = stripes[:, None].expand(8, 8) if label == 0 else stripes[None, :].expand(8, 8)
        torch.manual_seed(seed * 1000 + i)
        net = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(4, 4, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, 2),
        ).float()
        opt = torch.optim.Adam(net.parameters(), lr=2e-2)
        for _ in range(25):
            y = torch.randint(0, 2, (32,), generator=gen)
            x = 0.3 * torch.randn(32, 1, 8, 8, generator=gen) + y[:, None, None, None] * pattern
            loss = nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        nets.append(net)
        labels.append(label)
    return WeightSpace.from_modules(nets), torch.tensor(labels)


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


# how the registry's tests run networks for the models that query them: tanh MLPs of 2-D
# coordinates on a 4x4 grid (odd, so a sign flip keeps the function, as for a SIREN)
QUERY_FUNCTION = NetworkFunction("mlp", "tanh", (2,), grid=(4, 4))


def build_registry_model(name: str, layout, out_features: int, **kwargs):
    """``build_model`` of the registry, told how the networks run when the model queries them."""
    from dwsnets.baselines import MODELS, build_model

    if MODELS[name].protocol == "queries":
        kwargs.setdefault("function", QUERY_FUNCTION)
    return build_model(name, layout, out_features, **kwargs)
