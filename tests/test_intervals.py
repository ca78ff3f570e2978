"""Bootstrap intervals over the test networks (dwsnets.experiments.intervals), with controls."""

from __future__ import annotations

import pytest
import torch

from dwsnets.experiments.intervals import bootstrap_draws, bootstrap_values, compare, interval


def accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    return float((output.argmax(1) == target).double().mean())


def classifier_outputs(n: int, correct: float, seed: int, mistakes: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of a classifier right on a ``correct`` fraction of ``n`` networks (3 classes):
    the targets from ``seed``, which networks it gets wrong from ``mistakes``."""
    target = torch.randint(0, 3, (n,), generator=torch.Generator().manual_seed(seed))
    right = torch.rand(n, generator=torch.Generator().manual_seed(1000 + mistakes)) < correct
    predicted = torch.where(right, target, (target + 1) % 3)
    return torch.nn.functional.one_hot(predicted, 3).float(), target


def test_intervals_cover_the_estimate_and_narrow_with_more_test_networks():
    widths = []
    for n in (100, 1600):
        out, target = classifier_outputs(n, 0.7, seed=1)
        low, high = interval(bootstrap_values(accuracy, [(out, target)], bootstrap_draws(n, 500)))
        assert low <= accuracy(out, target) <= high
        widths.append(high - low)
    # control: 16 times the networks, about a quarter of the width (binomial: 2 * 1.96 * sqrt(.21 / n))
    assert widths[1] < widths[0] / 2.5
    assert widths[0] == pytest.approx(2 * 1.96 * (0.21 / 100) ** 0.5, rel=0.25)


def test_paired_differences_tell_apart_only_what_the_test_set_can():
    n = 400
    draws = bootstrap_draws(n, 500)
    models = (("good", 0.9, 0), ("close", 0.895, 1), ("bad", 0.5, 2))  # each wrong on its own networks
    runs = {name: [classifier_outputs(n, p, seed=2, mistakes=m)] for name, p, m in models}
    values = {name: bootstrap_values(accuracy, r, draws) for name, r in runs.items()}
    assert compare("good", values["good"], "bad", values["bad"]).separated
    same = compare("good", values["good"], "good", values["good"])
    assert (same.low, same.high) == (0.0, 0.0) and not same.separated  # control: no difference at all
    close = compare("good", values["good"], "close", values["close"])
    assert not close.separated and close.low < 0 < close.high  # half a point on 400 networks: not told apart


def test_seeds_are_averaged_on_the_same_networks_and_mismatches_are_refused():
    n = 200
    a, b = classifier_outputs(n, 0.6, seed=3), classifier_outputs(n, 0.8, seed=3)
    both = bootstrap_values(accuracy, [a, b], bootstrap_draws(n, 50))
    alone = [bootstrap_values(accuracy, [r], bootstrap_draws(n, 50)) for r in (a, b)]
    torch.testing.assert_close(both, (alone[0] + alone[1]) / 2)
    with pytest.raises(ValueError, match="same test networks"):
        bootstrap_values(accuracy, [a, classifier_outputs(n + 1, 0.5, seed=0)], bootstrap_draws(n, 5))
