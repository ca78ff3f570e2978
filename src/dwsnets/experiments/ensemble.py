"""Ensembles of finished runs: every member's outputs on the same networks, combined by the
task (:meth:`~dwsnets.tasks.base.SupervisedTask.ensemble`) and scored like one model.

An ensemble is several models, not one: report it as such beside single-model numbers,
and choose its members on validation (``split="val"``) before reading the test split.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..tasks.base import SupervisedTask
from ..training import TrainConfig, Trainer, TrainingError
from ..training.config import read_run_record
from ..zoo.store import Zoo

__all__ = ["EnsembleResult", "evaluate_ensemble"]


@dataclass(frozen=True)
class EnsembleResult:
    """Each member's metrics and the ensemble's, on one split of one zoo."""

    task: SupervisedTask
    split: str
    zoo: str
    members: list[tuple[Path, TrainConfig, dict[str, Any]]]
    metrics: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """The numbers as JSON-ready values (tensors such as a confusion matrix left out)."""

        def numbers(metrics: dict[str, Any]) -> dict[str, float]:
            return {k: v for k, v in metrics.items() if isinstance(v, float)}

        return {
            "task": self.task.name,
            "split": self.split,
            "zoo": self.zoo,
            "members": [{"run": str(run), "model": cfg.model, **numbers(m)} for run, cfg, m in self.members],
            "ensemble": numbers(self.metrics),
        }

    def save(self, out: str | Path) -> list[Path]:
        """``ensemble-SPLIT.json`` (:meth:`summary`) under ``out`` and, for classifiers, the
        confusion matrix ``confusion-SPLIT.png``; returns the files written."""
        from ..training.logging import save_confusion_png

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        numbers = out / f"ensemble-{self.split}.json"
        numbers.write_text(json.dumps(self.summary(), indent=1))
        written = [numbers]
        if self.metrics.get("confusion") is not None:
            png = out / f"confusion-{self.split}.png"
            title = f"ensemble of {len(self.members)} on {self.split}: {self.task.describe(self.metrics)}"
            save_confusion_png(self.metrics["confusion"], png, title)
            written.append(png)
        return written


def _zoo_of(runs: Sequence[Path], records: Sequence[dict[str, Any]], zoo: str | None) -> str:
    """The one zoo every member is evaluated on: ``zoo``, or the zoo all of them trained on
    (``records``: their ``config.json``)."""
    if zoo is not None:
        return zoo
    ids = {r["data_id"] for r in records}
    if len(ids) > 1:
        where = ", ".join(f"{run} ({r['data']})" for run, r in zip(runs, records))
        raise TrainingError(
            f"the runs were trained on different zoos ({where}); an ensemble reads the same networks with every "
            "member: name them with --zoo"
        )
    return records[0]["data"]


def evaluate_ensemble(
    runs: Sequence[str | Path], zoo: str | None = None, split: str = "test", checkpoint: str = "best",
    device: str = "cpu",
) -> EnsembleResult:  # fmt: skip
    """Evaluate finished runs of one supervised task on ``split`` of one zoo (``zoo``, or
    the zoo they all trained on) and combine their outputs.

    Raises :class:`TrainingError` when fewer than two runs are given, when a task has no
    per-network outputs to combine (editing, embeddings, adaptation), or when the members
    disagree on the task's settings (classes, targets) or on the split's targets.
    """
    paths = [Path(r) for r in runs]
    if len(paths) < 2:
        raise TrainingError("an ensemble needs at least two runs")
    if len(set(p.resolve() for p in paths)) < len(paths):
        raise TrainingError("a run is named twice in the ensemble")
    records = [read_run_record(run) for run in paths]
    where = _zoo_of(paths, records, zoo)
    data = Zoo(where)
    outputs, members, reference = [], [], None
    for run, record in zip(paths, records):
        config = TrainConfig(**record["config"])
        trainer = Trainer(data, run, config, device, progress=False)
        task = trainer.task
        if not isinstance(task, SupervisedTask):
            raise TrainingError(f"{run}: the {task.name} task has no per-network outputs to average into an ensemble")
        model = trainer.load_model(checkpoint)
        ws, target = trainer.inputs(split)
        if reference is None:
            reference = (task, target)
        elif type(task) is not type(reference[0]) or task.state_dict() != reference[0].state_dict():
            raise TrainingError(
                f"{run} was trained for {task.name} {task.state_dict()}, the first run for "
                f"{reference[0].name} {reference[0].state_dict()}: an ensemble's members share one task"
            )
        elif not torch.equal(target.cpu(), reference[1].cpu()):
            raise TrainingError(f"{run} reads other targets on {split} than the first run (other views or networks)")
        out = task.outputs(model, ws).cpu()
        outputs.append(out)
        members.append((run, config, task.metrics(out, target.cpu())))
    task, target = reference  # type: ignore[misc]
    return EnsembleResult(task, split, where, members, task.metrics(task.ensemble(outputs), target.cpu()))
