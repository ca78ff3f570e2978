"""Invariant pooling and head: invariance with controls, completeness."""

from __future__ import annotations

import pytest
import torch

from dwsnets import InvariantHead, InvariantPooling, WeightSpace
from helpers import ARCHITECTURES, fixed_space_dimension, swap_fixed_axis


@pytest.mark.parametrize("sizes", ARCHITECTURES)
def test_head_invariance_with_control(sizes):
    head = InvariantHead(sizes, 3, 5, hidden=(16,))
    ws = WeightSpace.randn(sizes, 4, 3)
    perms = ws.random_permutations(per_network=True)
    assert torch.allclose(head(ws.permute(perms)), head(ws), atol=1e-10)
    assert not torch.allclose(head(swap_fixed_axis(ws)), head(ws), atol=1e-6)


@pytest.mark.parametrize("sizes", [(3, 2), (2, 4, 1), (1, 3, 2), (2, 3, 3, 2), (1, 3, 2, 2, 2)])
def test_pooling_plus_linear_is_complete(sizes):
    """The span of the head's linear functionals (over random parameters) has the
    dimension of the space of invariant functionals, computed from the generators."""
    head = InvariantHead(sizes, 1, 1)
    n = head.pool.layout.numel
    basis = WeightSpace.from_flat(torch.eye(n), sizes)
    zero = WeightSpace.from_flat(torch.zeros(1, n), sizes)
    functionals = []
    expected = fixed_space_dimension(sizes)
    for _ in range(expected + 5):
        torch.nn.init.normal_(head.mlp[0].weight)
        with torch.no_grad():
            functionals.append((head(basis) - head(zero))[:, 0])
    assert head.pool.out_features == expected
    assert int(torch.linalg.matrix_rank(torch.stack(functionals))) == expected


def test_packed_and_unpacked_pooling_agree():
    sizes = (2, 5, 4, 3)
    pool = InvariantPooling(sizes, 2)
    ws = WeightSpace.randn(sizes, 3, 2)
    a = pool(ws)
    b = pool.forward_packed(pool.layout.packing.pack(ws.tensors))
    assert a.shape == b.shape == (3, pool.out_features)
    assert torch.allclose(a, b, atol=1e-12, rtol=0)
