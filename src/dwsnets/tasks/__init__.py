"""Tasks: what a run learns from networks. One module per task, one registry.

* ``classify`` (:class:`Classify`): a class label per network (INR image classes);
* ``regress`` (:class:`Regress`): per-network quantities (a sine INR's frequency);
* ``contrastive`` (:class:`Contrastive`): self-supervised embeddings (InfoNCE between
  augmented views), scored by a linear probe;
* ``edit`` (:class:`Edit`): weights in, weights out: INRs edited to render an edited image;
* ``adapt`` (:class:`Adapt`): weights in, weights out: classifiers updated for a shifted
  input domain.

``make_task(name, **options)`` builds one; a new task subclasses :class:`Task` and adds
itself to :data:`TASKS`.
"""

from __future__ import annotations

from typing import Any

from .adapt import Adapt
from .base import Task, TaskError
from .classify import Classify
from .contrastive import Contrastive
from .edit import Edit
from .regress import Regress

__all__ = ["TASKS", "Adapt", "Classify", "Contrastive", "Edit", "Regress", "Task", "TaskError", "make_task"]

TASKS: dict[str, type[Task]] = {
    "classify": Classify,
    "regress": Regress,
    "contrastive": Contrastive,
    "edit": Edit,
    "adapt": Adapt,
}


def make_task(name: str, **options: Any) -> Task:
    """A task by its command-line name, e.g. ``make_task("regress", targets=["frequency"])``."""
    if name not in TASKS:
        raise TaskError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name](**options)
