"""Generalization prediction: a trained classifier's test accuracy from its weights alone.

The benchmark of Unterthiner et al. (2020, the Small CNN Zoo) that every later
weight-space model reports, scored by Kendall's tau between predicted and true
accuracies (how well the predictions rank the networks). Here the networks are a
classifier zoo's (``fit-inrs --source fashion-mnist-classifiers``: each network's test
accuracy is stored with it as ``accuracy``), any layout.

The model has one output, a logit; the loss is the binary cross-entropy between its
sigmoid and the accuracy (a soft target in [0, 1]), as in the NFN experiments. Metrics:
Kendall's tau (scipy), R² and the mean absolute error of the predicted accuracy; the best
checkpoint has the highest validation tau.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..zoo.split import ZooSplit
from .base import SupervisedTask, TaskError, TaskOption, split_quantities

__all__ = ["Generalization"]


class Generalization(SupervisedTask):
    """Predict each network's test accuracy (``target``, default ``accuracy``, in [0, 1]).

    Args:
        target: the key of :attr:`ZooSplit.info` holding each network's accuracy.
    """

    name = "generalization"
    help = "predict a trained classifier's test accuracy from its weights (Kendall's tau)"
    options = (
        TaskOption("target", "accuracy", "the per-network accuracy to predict (a fraction in [0, 1])",
                   flag="--accuracy-key"),
    )  # fmt: skip
    metric = "kendall_tau"
    higher_is_better = True
    table_metrics = ("r2", "mae")
    loss_name = "binary cross-entropy"
    signal_transforms_ok = False  # the networks are classifiers, not signals

    def __init__(self, target: str = "accuracy") -> None:
        self.key = str(target)

    def _accuracies(self, split: ZooSplit) -> Tensor:
        values = split_quantities(split, (self.key,), "to predict")[:, 0]
        if not torch.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise TaskError(f"the networks' {self.key} must be fractions in [0, 1] (found "
                            f"{float(values.min()):.4g} to {float(values.max()):.4g})")  # fmt: skip
        return values

    def prepare(self, train: ZooSplit) -> None:
        values = self._accuracies(train)
        if len(values) < 2 or float(values.std()) == 0.0:
            raise TaskError(f"the training networks' {self.key} does not vary: nothing to predict")

    @property
    def output_size(self) -> int:
        return 1

    def targets(self, split: ZooSplit) -> Tensor:
        return self._accuracies(split).float()

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return nn.functional.binary_cross_entropy_with_logits(output.float()[:, 0], target.float())

    def metrics(self, output: Tensor, target: Tensor) -> dict[str, Any]:
        from scipy.stats import kendalltau

        predicted = torch.sigmoid(output.double()[:, 0]).cpu()
        truth = target.double().cpu()
        tau = kendalltau(predicted.numpy(), truth.numpy()).statistic
        residual = float((predicted - truth).square().sum())
        spread = float((truth - truth.mean()).square().sum())
        return {
            "loss": self._float(self.loss(output, target)),
            "kendall_tau": float(tau) if tau == tau else 0.0,  # NaN (constant predictions): no ranking at all
            "r2": 1.0 - residual / spread if spread > 0 else 0.0,
            "mae": float((predicted - truth).abs().mean()),
            "predicted": predicted.float(),  # per network, for scatter plots (tables keep numbers only)
            "true": truth.float(),
        }

    def describe(self, metrics: dict[str, Any]) -> str:
        return f"Kendall's tau {metrics['kendall_tau']:.4f}, R² {metrics['r2']:.4f}, MAE {metrics['mae']:.4f}"

    def chance(self) -> float | None:
        return 0.0  # a prediction that ignores the weights ranks nothing

    def state_dict(self) -> dict[str, Any]:
        return {"target": self.key}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.key = state["target"]

    def config(self) -> dict[str, Any]:
        return {"task": self.name, "target": self.key}
