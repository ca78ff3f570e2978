"""Building a task's model from the registry: the one place where the training layer
joins tasks (:mod:`dwsnets.tasks`) and models (:mod:`dwsnets.baselines`), so that neither
imports the other."""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from ..baselines import build_editor, build_model
from ..core.layout import WeightSpaceLayout
from ..tasks import Task

__all__ = ["build_task_model"]


def build_task_model(task: Task, name: str, layout: WeightSpaceLayout, **kwargs: Any) -> nn.Module:
    """The registry's model ``name`` as ``task`` trains it (after :meth:`Task.prepare`): its
    editor form when the task outputs networks, else ``task.output_size`` outputs, with the
    task's default arguments unless ``kwargs`` override them, wrapped by the task."""
    legacy = getattr(task, "build_model", None)
    if legacy is not None:  # a task written for the earlier protocol builds its own model
        warnings.warn(f"the {task.name} task defines build_model, which tasks no longer do: give model_defaults "
                      "(and wrap_model) instead; its build_model is used this time", DeprecationWarning, stacklevel=2)  # fmt: skip
        return legacy(name, layout, **kwargs)
    arguments = task.model_arguments(name, **kwargs)
    if task.outputs_networks:
        model = build_editor(name, layout, **arguments)
    else:
        model = build_model(name, layout, task.output_size, **arguments)
    return task.wrap_model(model)
