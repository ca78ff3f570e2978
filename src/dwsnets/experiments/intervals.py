"""How much a table's numbers would move with another draw of test networks: bootstrap
intervals over the test set, and which differences between models they tell apart.

The spread over training seeds says how much a result moves with another training run;
it says nothing about the finite test set (400 networks in a CNN table). Here every
resample draws the test networks anew, with replacement, and scores each model's
seed-averaged metric on them. All models share the same draws, so a difference between two
models is judged on the same resampled networks (a paired bootstrap): the difference is
told apart when its 95% interval excludes zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["RESAMPLES", "Comparison", "bootstrap_draws", "bootstrap_values", "compare", "interval"]

RESAMPLES = 1000  # resamples of the test set per table
LEVEL = 0.95

Metric = Callable[[Tensor, Tensor], float]  # (outputs, targets) of some networks -> the task's metric


def bootstrap_draws(networks: int, resamples: int = RESAMPLES, seed: int = 0) -> Tensor:
    """``(resamples, networks)`` indices drawn with replacement, from a fixed seed: the same
    draws for every model of a table."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, networks, (resamples, networks), generator=generator)


def bootstrap_values(metric: Metric, runs: Sequence[tuple[Tensor, Tensor]], draws: Tensor) -> Tensor:
    """``(resamples,)``: on each draw of test networks, the metric of every run (one per
    training seed: its outputs and targets on the same networks, in the same order),
    averaged over the runs."""
    if not runs:
        raise ValueError("bootstrap values need at least one run")
    count = len(runs[0][1])
    if any(len(target) != count or len(output) != count for output, target in runs):
        raise ValueError("every run must score the same test networks")
    values = torch.empty(len(draws), dtype=torch.float64)
    for r, index in enumerate(draws):
        values[r] = sum(metric(output[index], target[index]) for output, target in runs) / len(runs)
    return values


def interval(values: Tensor, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap values."""
    tail = (1 - level) / 2
    low, high = torch.quantile(values.double(), torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return float(low), float(high)


@dataclass(frozen=True)
class Comparison:
    """The paired bootstrap interval of ``metric(a) - metric(b)``, and whether it excludes zero."""

    a: str
    b: str
    low: float
    high: float

    @property
    def separated(self) -> bool:
        return self.low > 0 or self.high < 0


def compare(a: str, values_a: Tensor, b: str, values_b: Tensor, level: float = LEVEL) -> Comparison:
    """Models ``a`` and ``b`` scored on the same bootstrap draws (:func:`bootstrap_values`)."""
    low, high = interval(values_a - values_b, level)
    return Comparison(a, b, low, high)
