"""Tasks: what a run learns from networks. One module per task, one registry.

* ``classify`` (:class:`Classify`): a class label per network (INR image classes);
* ``regress`` (:class:`Regress`): per-network quantities (a sine INR's frequency);
* ``contrastive`` (:class:`Contrastive`): self-supervised embeddings (InfoNCE between
  augmented views), scored by a linear probe;
* ``edit`` (:class:`Edit`): weights in, weights out: INRs edited to render an edited image;
* ``adapt`` (:class:`Adapt`): weights in, weights out: classifiers updated for a shifted
  input domain.

``make_task(name, **options)`` builds one. A new task, defined in any module, subclasses
:class:`Task` (or :class:`SupervisedTask`), declares its :class:`TaskOption` settings and
calls :func:`register_task`: ``dwsnets train NAME``, ``evaluate`` and ``table --task NAME``
then serve it with no other change.
"""

from __future__ import annotations

from typing import Any

from .adapt import Adapt
from .base import SupervisedTask, Task, TaskError, TaskOption, comma_list
from .classify import Classify
from .contrastive import Contrastive
from .edit import Edit
from .generalization import Generalization
from .regress import Regress

__all__ = [
    "TASKS",
    "Adapt",
    "Classify",
    "Contrastive",
    "Edit",
    "Generalization",
    "Regress",
    "SupervisedTask",
    "Task",
    "TaskError",
    "TaskOption",
    "comma_list",
    "get_task",
    "make_task",
    "register_task",
]

TASKS: dict[str, type[Task]] = {}


def register_task(task: type[Task]) -> type[Task]:
    """Add a task class to the registry under its :attr:`Task.name` (usable as a decorator);
    registering another class under a taken name is an error."""
    if not (isinstance(task, type) and issubclass(task, Task)):
        raise TypeError(f"{task!r} is not a Task subclass")
    if TASKS.get(task.name, task) is not task:
        raise TaskError(f"a task named {task.name!r} is already registered ({TASKS[task.name].__qualname__})")
    TASKS[task.name] = task
    return task


for _task in (Classify, Regress, Contrastive, Edit, Adapt, Generalization):
    register_task(_task)


def get_task(name: str) -> type[Task]:
    """The registered task class ``name``; a :class:`TaskError` listing the choices otherwise."""
    if name not in TASKS:
        raise TaskError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]


def make_task(name: str, **options: Any) -> Task:
    """A task by its command-line name, e.g. ``make_task("regress", targets=["frequency"])``."""
    return get_task(name)(**options)
