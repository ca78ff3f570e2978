"""Tasks: targets, losses and metrics, checked against hand computations."""

from __future__ import annotations

import pytest
import torch

from dwsnets import WeightSpace
from dwsnets.tasks import Classify, Regress, TaskError, make_task
from dwsnets.zoo.store import ZooSplit


def _split(n: int = 6, labels=None, **info) -> ZooSplit:
    labels = torch.arange(n) % 3 if labels is None else labels
    return ZooSplit(WeightSpace.randn((2, 3, 1), n), labels, {k: torch.as_tensor(v) for k, v in info.items()})


def test_classification_metrics_match_a_hand_count():
    task = Classify()
    task.prepare(_split())
    assert task.output_size == 3
    output = torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [2.0, 0, 0], [0, 0, 2.0]])
    target = torch.tensor([0, 1, 2, 2])
    metrics = task.metrics(output, target)
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["confusion"].tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert metrics["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(output, target)))
    assert task.better(0.8, 0.75) and not task.better(0.7, 0.75)
    with pytest.raises(TaskError, match="no class labels"):
        Classify().prepare(_split(labels=torch.full((6,), -1)))
    with pytest.raises(TaskError, match="more than the 2 classes"):
        Classify(num_classes=2).prepare(_split())


def test_regression_standardises_on_train_and_reports_in_target_units():
    freq = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    task = make_task("regress", targets=["frequency"])
    train = _split(frequency=freq, amplitude=freq * 0)
    task.prepare(train)
    targets = task.targets(train)
    assert torch.allclose(targets.double().mean(0), torch.zeros(1), atol=1e-6)
    assert torch.allclose(targets.double().std(0), torch.ones(1), atol=1e-6)
    # a prediction off by exactly 1 (in frequency units) everywhere
    output = targets + float(1.0 / freq.std())
    metrics = task.metrics(output, targets)
    assert metrics["mse"] == pytest.approx(1.0, rel=1e-5) and metrics["mae"] == pytest.approx(1.0, rel=1e-5)
    assert torch.allclose(task.predictions(targets)[:, 0], freq.double(), atol=1e-5)
    assert task.better(0.5, 1.0) and not task.better(2.0, 1.0)
    again = Regress()
    again.load_state_dict(task.state_dict())
    assert torch.equal(again.targets(train), targets)
    with pytest.raises(TaskError, match="no phase to regress.*available: amplitude, frequency"):
        Regress(["phase"]).prepare(train)
    with pytest.raises(TaskError, match="unknown task"):
        make_task("segment")
