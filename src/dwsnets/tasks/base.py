"""The Task protocol: what a training run optimises and how it is judged.

A task turns a split of networks into targets, says how many outputs the model needs,
gives the loss of a batch and the metrics of a whole split, and names the metric that
picks the best checkpoint. The :class:`~dwsnets.training.Trainer` knows nothing else
about the task, so a new task (regression, contrastive embeddings, weight editing) is one
new module registered in :mod:`dwsnets.tasks`.

Tasks may hold statistics of the training split (for example the mean and spread of
regression targets): :meth:`Task.prepare` measures them once, :meth:`Task.state_dict`
stores them in every checkpoint, and :meth:`Task.load_state_dict` restores them, so a
resumed or re-evaluated run uses exactly the same targets.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..baselines import build_model
from ..core.layout import WeightSpaceLayout
from ..core.weight_space import WeightSpace
from ..zoo.store import ZooSplit

__all__ = ["Task", "TaskError", "split_quantities"]


class TaskError(ValueError):
    """The data cannot serve this task (no labels, a missing target, ...)."""


def split_quantities(split: ZooSplit, keys: tuple[str, ...], purpose: str) -> Tensor:
    """Per-network quantities ``keys`` of a split's information as ``(N, len(keys))``
    float64, or a :class:`TaskError` naming the missing ones and what the split has."""
    missing = [k for k in keys if k not in split.info]
    if missing:
        available = ", ".join(sorted(k for k in split.info if k != "row")) or "none"
        raise TaskError(f"these networks have no {', '.join(missing)} {purpose} (available: {available})")
    return torch.stack([split.info[k].double().reshape(len(split)) for k in keys], dim=1)


class Task(ABC):
    """One kind of learning problem on networks.

    Class attributes:
        name: the command-line name (``dwsnets train NAME``).
        metric: the metric that selects the best checkpoint (a key of :meth:`metrics`).
        higher_is_better: whether a larger ``metric`` is better.
        loss_name: how plots label the training loss.

    The hooks with defaults (:meth:`build_model`, :meth:`batch_loss`, :meth:`evaluate`,
    :meth:`collate`) serve tasks whose model maps a batch of networks to a tensor;
    a task whose model returns networks (editing: an equivariant model), or whose loss
    needs more than one forward pass (contrastive views), overrides them. Targets are
    anything with one row per network that supports indexing, ``len`` and ``.to(device)``:
    a tensor or a :class:`~dwsnets.WeightSpace`.
    """

    name: ClassVar[str]
    metric: ClassVar[str]
    higher_is_better: ClassVar[bool]
    loss_name: ClassVar[str] = "loss"
    # whether the trainer may transform the represented signals (rotate, flip, ...): a task
    # whose targets are fixed pictures of the original signals says no
    signal_transforms_ok: ClassVar[bool] = True
    # whether evaluation reads training networks (the contrastive probe): the trainer then
    # hands the training split to prepare() even when the task's state comes from a saved run
    evaluates_with_training_split: ClassVar[bool] = False

    def bind(self, data: Any) -> None:
        """Called once with the data set (a :class:`~dwsnets.zoo.dataset.WeightDataset`)
        before anything else, for tasks that need more than the networks (their source
        signals, for instance)."""

    @abstractmethod
    def prepare(self, train: ZooSplit) -> None:
        """Check that the training split serves this task and measure what the task needs
        from it (classes, target statistics). Raises :class:`TaskError`."""

    @property
    @abstractmethod
    def output_size(self) -> int:
        """Outputs per network the model must produce (after :meth:`prepare`)."""

    @abstractmethod
    def targets(self, split: ZooSplit) -> Tensor:
        """The training targets of every network of a split, one row each."""

    @abstractmethod
    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Scalar loss of a batch (``output`` from the model, ``target`` rows of :meth:`targets`)."""

    @abstractmethod
    def metrics(self, output: Tensor, target: Tensor) -> dict[str, Any]:
        """Metrics of a whole split: floats (``"loss"`` and :attr:`metric` among them), and
        optionally tensors (a confusion matrix) that are reported but not logged per epoch."""

    def build_model(self, name: str, layout: WeightSpaceLayout, **kwargs: Any) -> nn.Module:
        """The model for this task (after :meth:`prepare`): by default the registry's
        ``name`` with :attr:`output_size` outputs."""
        return build_model(name, layout, self.output_size, **kwargs)

    def batch_loss(self, model: nn.Module, ws: WeightSpace, target: Any) -> Tensor:
        """The loss of one training batch (by default :meth:`loss` of the model's output)."""
        return self.loss(model(ws), target)

    def collate(self, outputs: list[Any]) -> Any:
        """Join the model's outputs on consecutive slices of a split."""
        return torch.cat([o.float() for o in outputs])

    @torch.no_grad()
    def evaluate(self, model: nn.Module, ws: WeightSpace, target: Any, batch: int = 1024) -> dict[str, Any]:
        """:meth:`metrics` of a model in eval mode on a whole split, in slices of ``batch``."""
        model.eval()
        outputs = [model(ws[i : i + batch]) for i in range(0, len(ws), batch)]
        return self.metrics(self.collate(outputs), target)

    def pictures(self, model: nn.Module, ws: WeightSpace, target: Any, path: Any) -> Any:
        """Write a picture of the model's work on a split to ``path`` (a PNG) and return
        the path, or return ``None`` when the task has none to show."""
        return None

    def references(self, metrics: dict[str, Any]) -> dict[str, float]:
        """Reference values of :attr:`metric` that need no model, read from a split's
        metrics (the unedited INRs of an editing task), for tables to show beside models."""
        return {}

    def chance(self) -> float | None:
        """The metric a model that ignores its input reaches (drawn in plots), if known."""
        return None

    def describe(self, metrics: dict[str, Any]) -> str:
        """A short human-readable summary of :meth:`metrics`."""
        return f"{self.metric} {metrics[self.metric]:.4g}"

    def better(self, value: float, best: float | None) -> bool:
        """Whether ``value`` of :attr:`metric` improves on ``best``."""
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best

    def state_dict(self) -> dict[str, Any]:
        """What :meth:`prepare` measured (JSON-serialisable)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`prepare` measured."""

    def config(self) -> dict[str, Any]:
        """The task's settings, stored with a run (they change the result)."""
        return {"task": self.name}

    @staticmethod
    def _float(x: Tensor) -> float:
        return float(x.detach().double().item()) if isinstance(x, torch.Tensor) else float(x)
