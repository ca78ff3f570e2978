"""StatNN with gradient-boosted trees: the original paper's strongest predictor.

Unterthiner et al. (2020) fed the per-tensor statistics of :func:`tensor_statistics` to
gradient-boosted trees. This is that model through scikit-learn's
``HistGradientBoostingRegressor``, fitted on the training networks' statistics; its
learning rate and tree size are chosen on validation (the task's own metric), the number
of boosting rounds by early stopping on a held-out tenth of the training networks. Trees
need no gradient steps, so the model is fitted in one call rather than trained by the
:class:`~dwsnets.training.Trainer`; it is invariant to hidden permutations as the
statistics are.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from ..zoo.split import ZooSplit
from .common import BaselineError
from .stats import tensor_statistics


class _Task(Protocol):
    """What the fit reads of a task (:class:`dwsnets.tasks.Task`; baselines do not import tasks)."""

    name: str
    metric: str

    def targets(self, split: ZooSplit) -> Any: ...

    def metrics(self, outputs: Tensor, target: Any) -> dict[str, Any]: ...

    def better(self, value: float, best: float | None) -> bool: ...


__all__ = ["GRID", "fit_statnn_gbt"]

# the settings tried, each judged on validation: learning rate x leaves per tree x the fewest
# networks a leaf may hold (32 points; 6 before 2026-12-08, a narrower search than the
# networks' models got)
GRID = {"learning_rate": (0.01, 0.03, 0.1, 0.3), "max_leaf_nodes": (7, 15, 31, 63), "min_samples_leaf": (5, 20)}


def _logits(p: np.ndarray) -> Tensor:
    """Predicted accuracies as the generalization task's outputs (logits of a sigmoid)."""
    q = torch.from_numpy(np.clip(p, 1e-6, 1 - 1e-6)).double()
    return torch.log(q / (1 - q))[:, None]


def fit_statnn_gbt(train: ZooSplit, val: ZooSplit, test: ZooSplit, task: _Task, seed: int) -> dict[str, Any]:
    """Fit on ``train``, choose on ``val``, score ``test``.

    Returns ``{"val": metrics, "test": metrics, "settings": the chosen grid point,
    "seconds": fitting time, "val_outputs"/"test_outputs": logits}``."""
    if task.name != "generalization":
        raise BaselineError(f"statnn-gbt predicts one number per network (task generalization), not {task.name!r}")
    from sklearn.ensemble import HistGradientBoostingRegressor

    t0 = time.perf_counter()
    features = {s.name: tensor_statistics(s.weights).double().numpy() for s in (train, val, test)}
    targets = {s.name: task.targets(s) for s in (train, val, test)}
    best: dict[str, Any] | None = None
    names = list(GRID)
    for values in itertools.product(*(GRID[n] for n in names)):
        setting = dict(zip(names, values))
        model = HistGradientBoostingRegressor(**setting, max_iter=1000, early_stopping=True, validation_fraction=0.1,
                                              n_iter_no_change=30, random_state=seed)  # fmt: skip
        model.fit(features[train.name], targets[train.name].double().numpy())
        out = _logits(model.predict(features[val.name]))
        metrics = task.metrics(out, targets[val.name])
        if best is None or task.better(metrics[task.metric], best["val"][task.metric]):
            best = {"model": model, "val": metrics, "val_outputs": out,
                    "settings": {**setting, "rounds": int(model.n_iter_)}}  # fmt: skip
    assert best is not None
    test_out = _logits(best.pop("model").predict(features[test.name]))
    return {**best, "test": task.metrics(test_out, targets[test.name]), "test_outputs": test_out,
            "seconds": time.perf_counter() - t0}  # fmt: skip
