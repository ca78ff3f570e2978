"""Public checks of the weight-space symmetry, for dwsnets' layers and for your own.

    from dwsnets.testing import assert_equivariant, assert_invariant
    assert_equivariant(my_layer, WeightSpace.randn((2, 8, 8, 1), 4, 3))
    assert_invariant(my_classifier, WeightSpace.randn((2, 8, 8, 1), 4))

Each check draws random hidden permutations (one per network), compares the model's
output on the permuted input with the (permuted) output on the original, and then runs a
**control**: a change of the input that is *not* a symmetry (:func:`non_symmetry`) must
change the output. A check that could not fail proves nothing; the control shows that the
comparison is sensitive for this model and input. Switch it off (``control=False``) only
for maps that commute with every reordering of entries, such as entry-wise activations.

Tolerances scale with the output's magnitude and the dtype: ``1e-9`` relative in float64,
``1e-4`` in float32 (``atol`` overrides). Works for MLP and CNN weight spaces.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .core.weight_space import WeightSpace

__all__ = ["assert_equivariant", "assert_invariant", "non_symmetry"]

_RELATIVE = {torch.float64: 1e-9, torch.float32: 1e-4, torch.bfloat16: 5e-2, torch.float16: 5e-3}


def non_symmetry(ws: WeightSpace) -> WeightSpace:
    """A change of the weights that is NOT a hidden-neuron permutation.

    Swaps the first two input columns of ``W_1`` when ``d_0 >= 2``; else the first two output
    rows of ``W_M`` and ``b_M`` when ``d_M >= 2``; else reorders the first hidden layer's rows
    of ``W_1`` and ``b_1`` without the matching columns of ``W_2``. Each changes what the
    networks compute, so a symmetric model may (and generically does) respond to it.
    """
    weights, biases = list(ws.weights), list(ws.biases)
    sizes = ws.layer_sizes

    def swap(t: Tensor, axis: int) -> Tensor:
        order = [1, 0, *range(2, t.shape[axis])]
        return t.index_select(axis, torch.tensor(order, device=t.device))

    if sizes[0] >= 2:
        weights[0] = swap(weights[0], 3)
    elif sizes[-1] >= 2:
        weights[-1], biases[-1] = swap(weights[-1], 2), swap(biases[-1], 2)
    elif sizes[1] >= 2 and ws.num_layers >= 2:
        weights[0], biases[0] = swap(weights[0], 2), swap(biases[0], 2)
    else:
        raise ValueError(f"layer sizes {sizes} leave no non-symmetric swap (every size is 1)")
    return WeightSpace(weights, biases)


def assert_equivariant(
    model: Callable[[WeightSpace], WeightSpace],
    ws: WeightSpace,
    *,
    trials: int = 2,
    atol: float | None = None,
    control: bool = True,
    generator: torch.Generator | None = None,
) -> None:
    """Assert ``model(ws.permute(p)) == model(ws).permute(p)`` for random per-network
    permutations ``p``, and (``control``) that ``model`` does not commute with
    :func:`non_symmetry`. Put modules with randomness (dropout) in eval mode first."""
    with torch.no_grad():
        out = _as_space(model(ws), "assert_equivariant")
        tol = _tolerance(out.flatten(), atol)
        for _ in range(trials):
            perms = ws.random_permutations(generator=generator, per_network=True)
            got = _as_space(model(ws.permute(perms)), "assert_equivariant")
            error = _max_error(got.flatten(), out.permute(perms).flatten())
            if error > tol:
                raise AssertionError(
                    f"not equivariant: permuting the input's hidden neurons changed the output by {error:.3g} "
                    f"beyond the permuted output (tolerance {tol:.3g})"
                )
        if control:
            changed = _as_space(model(non_symmetry(ws)), "assert_equivariant").flatten()
            if _max_error(changed, non_symmetry(out).flatten()) <= tol:
                raise AssertionError(
                    "control failed: the model also commutes with a non-symmetry (swapping fixed input or output "
                    "axes), so this check cannot tell an equivariant model from one that ignores its input's "
                    "structure; use a richer input or model, or control=False for entry-wise maps"
                )


def assert_invariant(
    model: Callable[[WeightSpace], Tensor],
    ws: WeightSpace,
    *,
    trials: int = 2,
    atol: float | None = None,
    control: bool = True,
    generator: torch.Generator | None = None,
) -> None:
    """Assert ``model(ws.permute(p)) == model(ws)`` for random per-network permutations
    ``p``, and (``control``) that :func:`non_symmetry` does change the output."""
    with torch.no_grad():
        out = model(ws)
        if not isinstance(out, Tensor):
            raise TypeError(f"assert_invariant expects the model to return a tensor, got {type(out).__name__}")
        tol = _tolerance(out, atol)
        for _ in range(trials):
            perms = ws.random_permutations(generator=generator, per_network=True)
            error = _max_error(model(ws.permute(perms)), out)
            if error > tol:
                raise AssertionError(
                    f"not invariant: permuting the input's hidden neurons changed the output by {error:.3g} "
                    f"(tolerance {tol:.3g})"
                )
        if control and _max_error(model(non_symmetry(ws)), out) <= tol:
            raise AssertionError(
                "control failed: a non-symmetry (swapping fixed input or output axes) does not change the output "
                "either, so this check cannot tell an invariant model from a constant one"
            )


def _as_space(out: object, who: str) -> WeightSpace:
    if not isinstance(out, WeightSpace):
        raise TypeError(f"{who} expects the model to return a WeightSpace, got {type(out).__name__}")
    return out


def _tolerance(reference: Tensor, atol: float | None) -> float:
    if atol is not None:
        return float(atol)
    scale = float(reference.detach().abs().max()) if reference.numel() else 0.0
    return _RELATIVE.get(reference.dtype, 1e-4) * max(scale, 1.0)


def _max_error(a: Tensor, b: Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max()) if a.numel() else 0.0
