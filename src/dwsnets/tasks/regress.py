"""Regression of a per-network quantity (a sine INR's frequency or amplitude)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..zoo.split import ZooSplit
from .base import SupervisedTask, TaskError, TaskOption, comma_list, split_quantities

__all__ = ["Regress"]


class Regress(SupervisedTask):
    """Mean squared error on standardised targets read from the split's information.

    Args:
        targets: keys of :attr:`ZooSplit.info` to predict (``("frequency",)`` for sine
            zoos), one output each.

    The targets are standardised with the mean and standard deviation of the training
    split (stored with the run), so the loss is scale-free; the reported ``mse`` and
    ``mae`` are in the targets' own units. The best checkpoint has the lowest validation
    ``mse``.

    Predictions are clipped to the range of the training targets before ``mse`` and
    ``mae`` are measured (``mse_unclipped`` is reported beside them): a network whose
    weights lie outside the training distribution can drive a ReLU model's output far
    beyond any target it has seen. On the sine-frequency zoo one test INR of 2,000 (the
    one that needed 929 fitting steps, against a median under 100) was predicted at
    frequency 98 for a true 9.5, and alone made 93% of a DWSNet's test MSE.
    """

    name = "regress"
    help = "regress a per-network quantity (a sine INR's frequency)"
    options = (
        TaskOption(
            "targets",
            "frequency",
            "comma-separated per-network quantities to predict (sine zoos: frequency, amplitude)",
            comma_list,
            flag="--target",
        ),
    )
    metric = "mse"
    higher_is_better = False
    table_metrics = ("mse_unclipped",)
    loss_name = "MSE (standardised)"

    def __init__(self, targets: Sequence[str] = ("frequency",)) -> None:
        if isinstance(targets, str):
            targets = (targets,)
        if not targets:
            raise TaskError("regression needs at least one target")
        self.keys = tuple(targets)
        self.mean: Tensor | None = None
        self.std: Tensor | None = None
        self.low: Tensor | None = None  # range of the training targets (clipping)
        self.high: Tensor | None = None

    def _raw(self, split: ZooSplit) -> Tensor:
        return split_quantities(split, self.keys, "to regress")

    def prepare(self, train: ZooSplit) -> None:
        raw = self._raw(train)
        if raw.shape[0] < 2:
            raise TaskError("regression needs at least two training networks")
        if not torch.isfinite(raw).all():
            raise TaskError(f"the training targets {self.keys} hold NaN or Inf values")
        self.mean = raw.mean(0)
        self.std = raw.std(0).clamp_min(1e-12)
        self.low, self.high = raw.amin(0), raw.amax(0)

    @property
    def output_size(self) -> int:
        return len(self.keys)

    def _stats(self) -> tuple[Tensor, Tensor]:
        if self.mean is None or self.std is None:
            raise TaskError("Regress.prepare() has not seen a training split yet")
        return self.mean, self.std

    def targets(self, split: ZooSplit) -> Tensor:
        mean, std = self._stats()
        return ((self._raw(split) - mean) / std).float()

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return nn.functional.mse_loss(output.float(), target)

    def _clip(self, output: Tensor) -> Tensor:
        """Standardised outputs clipped to the training targets' range (runs made before
        the range was recorded are not clipped)."""
        if self.low is None or self.high is None:
            return output.double()
        mean, std = (t.to(output.device) for t in self._stats())
        low, high = ((t.to(output.device) - mean) / std for t in (self.low, self.high))
        return output.double().clamp(low, high)

    def metrics(self, output: Tensor, target: Tensor) -> dict[str, Any]:
        std = self._stats()[1].to(output.device)
        raw = (output.double() - target.double()) * std
        error = (self._clip(output) - target.double()) * std  # in the targets' own units
        out = {
            "loss": self._float(nn.functional.mse_loss(output.float(), target)),
            "mse": self._float(error.square().mean()),
            "mae": self._float(error.abs().mean()),
            "mse_unclipped": self._float(raw.square().mean()),
        }
        if len(self.keys) > 1:
            for i, key in enumerate(self.keys):
                out[f"mse_{key}"] = self._float(error[:, i].square().mean())
        return out

    def predictions(self, output: Tensor) -> Tensor:
        """Model outputs mapped back to the targets' units (clipped to the training range)."""
        mean, std = self._stats()
        return self._clip(output) * std.to(output.device) + mean.to(output.device)

    def describe(self, metrics: dict[str, Any]) -> str:
        return f"MSE {metrics['mse']:.4g}, MAE {metrics['mae']:.4g}"

    def state_dict(self) -> dict[str, Any]:
        mean, std = self._stats()
        state = {"targets": list(self.keys), "mean": mean.tolist(), "std": std.tolist()}
        if self.low is not None and self.high is not None:
            state.update(low=self.low.tolist(), high=self.high.tolist())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.keys = tuple(state["targets"])
        self.mean = torch.tensor(state["mean"], dtype=torch.float64)
        self.std = torch.tensor(state["std"], dtype=torch.float64)
        bounds = [state.get("low"), state.get("high")]
        self.low, self.high = (None, None) if None in bounds else (torch.tensor(b, dtype=torch.float64) for b in bounds)

    def config(self) -> dict[str, Any]:
        return {"task": self.name, "targets": list(self.keys)}
