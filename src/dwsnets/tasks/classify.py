"""Classification of networks by a label of what they represent (an INR's image class)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..zoo.split import ZooSplit
from .base import SupervisedTask, TaskError, TaskOption

__all__ = ["Classify"]

LABEL_SMOOTHING = 0.1  # the default: chosen on validation (docs/results.md, "Label smoothing")


class Classify(SupervisedTask):
    """Cross-entropy on the split's labels; metrics: accuracy, loss, confusion matrix.

    The number of classes is read from the training split (largest label + 1) unless
    given, so the same task serves 10-class images and other label sets.
    ``label_smoothing`` mixes that fraction of a uniform distribution into the training
    targets (the reported loss stays the plain cross-entropy). Its default, 0.1, won on
    validation for both of the project's models (docs/results.md); runs recorded without it
    were made with 0.
    """

    name = "classify"
    help = "classify networks by their label (INR image classes)"
    metric = "accuracy"
    higher_is_better = True
    percent = True
    loss_name = "cross-entropy"
    options = (
        TaskOption("label_smoothing", LABEL_SMOOTHING, "training targets mix in this fraction of a uniform "
                   "distribution (0: the plain cross-entropy)", float, unrecorded=0.0),
    )  # fmt: skip

    def __init__(self, num_classes: int | None = None, label_smoothing: float = LABEL_SMOOTHING) -> None:
        if not 0.0 <= label_smoothing < 1.0:
            raise TaskError(f"label smoothing must be in [0, 1), got {label_smoothing}")
        self.num_classes = num_classes
        self.label_smoothing = float(label_smoothing)

    def prepare(self, train: ZooSplit) -> None:
        labels = train.labels
        if labels.numel() == 0:
            raise TaskError("the training split is empty")
        if int(labels.min()) < 0:
            raise TaskError(
                "these networks have no class labels (a sine or classifier zoo, for instance); "
                "use a task that fits them, such as `dwsnets train regress` (sines) or `adapt` (classifiers)"
            )
        found = int(labels.max()) + 1
        if self.num_classes is None:
            self.num_classes = found
        elif found > self.num_classes:
            raise TaskError(f"labels go up to {found - 1}, more than the {self.num_classes} classes this run uses")

    @property
    def output_size(self) -> int:
        if self.num_classes is None:
            raise TaskError("Classify.prepare() has not seen a training split yet")
        return self.num_classes

    def targets(self, split: ZooSplit) -> Tensor:
        return split.labels.long()

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return nn.functional.cross_entropy(output.float(), target, label_smoothing=self.label_smoothing)

    def ensemble(self, outputs: Sequence[Tensor]) -> Tensor:
        """The log of the members' mean class probabilities (a valid input to :meth:`metrics`
        and to cross-entropy, whose softmax leaves log-probabilities unchanged)."""
        logp = torch.stack([o.float().log_softmax(1) for o in outputs])
        return logp.logsumexp(0) - math.log(len(outputs))

    def metrics(self, output: Tensor, target: Tensor) -> dict[str, Any]:
        output = output.float()
        pred = output.argmax(1)
        n = self.output_size
        confusion = torch.zeros(n, n, dtype=torch.long)
        confusion.index_put_((target.cpu(), pred.cpu()), torch.ones(len(target), dtype=torch.long), accumulate=True)
        return {
            "loss": self._float(nn.functional.cross_entropy(output, target)),
            "accuracy": self._float((pred == target).double().mean()),
            "confusion": confusion,
        }

    def describe(self, metrics: dict[str, Any]) -> str:
        return f"accuracy {metrics['accuracy'] * 100:.2f}%"

    def chance(self) -> float | None:
        return 1.0 / self.output_size

    def state_dict(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.num_classes = state["num_classes"]

    def config(self) -> dict[str, Any]:
        # listed only off its default: tables' titles name the settings that change a result
        changed = self.label_smoothing != LABEL_SMOOTHING
        return {"task": self.name, **({"label_smoothing": self.label_smoothing} if changed else {})}

    def title(self) -> str:
        return "INR classification"

    def paper_key(self, source: str) -> str:
        return source  # the paper's main table: INR classification by source
