"""The Task protocol: what a training run optimises and how it is judged.

A task is one module. It declares its command-line options (:class:`TaskOption`), turns
a split of networks into targets, says how many outputs the model needs and which
registry models it can train (and whether they output networks), gives the loss of a
batch and the metrics of a whole split, names the metric that picks the best checkpoint
and how tables show it, and may draw a picture of a model's work. The trainer, the
experiments (:mod:`dwsnets.experiments`) and the command line know nothing else about it:
:func:`dwsnets.tasks.register_task` adds a task, defined anywhere, to all three.

Tasks may hold statistics of the training split (for example the mean and spread of
regression targets): :meth:`Task.prepare` measures them once, :meth:`Task.state_dict`
stores them in every checkpoint, and :meth:`Task.load_state_dict` restores them, so a
resumed or re-evaluated run uses exactly the same targets.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..core.weight_space import WeightSpace
from ..zoo.split import ZooSplit

__all__ = ["SupervisedTask", "Task", "TaskError", "TaskOption", "comma_list", "split_quantities"]


_CURRENT_DEFAULT = object()  # TaskOption.unrecorded not given: the option's default


class TaskError(ValueError):
    """The data cannot serve this task (no labels, a missing target, ...)."""


def comma_list(text: str | Sequence[str]) -> list[str]:
    """``"a, b"`` -> ``["a", "b"]`` (a list passes through): list-valued task options."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return [t.strip() for t in items if t.strip()]


@dataclass(frozen=True)
class TaskOption:
    """One setting of a task: a keyword of its constructor and the flag that sets it.

    Attributes:
        name: the constructor's keyword.
        default: its value when the flag is not given.
        help: one line for ``--help``.
        type: parses the flag's text (``comma_list`` for lists).
        flag: the command-line flag, ``--name`` with dashes unless given (its dashes
            turned to underscores are the key in ``--config`` files).
        choices: the allowed values, if limited.
        unrecorded: the value that a run whose ``config.json`` lacks this option was made
            with: the default of the version that wrote it (runs record every option since
            2026-12-07; before, an option added later, or one at its default, could be
            missing). Unless given, the current default.
    """

    name: str
    default: Any
    help: str
    type: Callable[[str], Any] = str
    flag: str | None = None
    choices: tuple[Any, ...] | None = None
    unrecorded: Any = _CURRENT_DEFAULT

    def parsed(self, value: Any) -> Any:
        """``value`` as the task's constructor takes it: text parsed by :attr:`type` (defaults and
        flags are text where the type is a list), anything else as it is."""
        return self.type(value) if isinstance(value, str) and self.type is not str else value

    @property
    def unrecorded_value(self) -> Any:
        """:attr:`unrecorded`, or the current default where none was given, parsed."""
        return self.parsed(self.default if self.unrecorded is _CURRENT_DEFAULT else self.unrecorded)

    @property
    def option_string(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return self.option_string.lstrip("-").replace("-", "_")


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
        help: one line for ``dwsnets train --help``.
        options: the task's settings, as constructor keywords and flags.
        metric: the metric that selects the best checkpoint (a key of :meth:`evaluate`).
        higher_is_better: whether a larger ``metric`` is better.
        percent: whether ``metric`` reads as a percentage (accuracies).
        table_metrics: further metrics that tables show beside ``metric``.
        loss_name: how plots label the training loss.
        models: the registry models the task trains (``None``: every one).
        outputs_networks: whether models output networks (the registry's editors).
        model_defaults: per model, builder arguments the task uses unless a run overrides them.

    Targets are anything with one row per network that supports indexing, ``len`` and
    ``.to(device)``: a tensor (possibly with no columns) or a :class:`~dwsnets.WeightSpace`.
    """

    name: ClassVar[str]
    help: ClassVar[str] = ""
    options: ClassVar[tuple[TaskOption, ...]] = ()
    metric: ClassVar[str]
    higher_is_better: ClassVar[bool]
    percent: ClassVar[bool] = False
    table_metrics: ClassVar[tuple[str, ...]] = ()
    loss_name: ClassVar[str] = "loss"
    models: ClassVar[tuple[str, ...] | None] = None
    outputs_networks: ClassVar[bool] = False
    model_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
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
    def targets(self, split: ZooSplit) -> Any:
        """The training targets of every network of a split, one row each."""

    @abstractmethod
    def batch_loss(self, model: nn.Module, ws: WeightSpace, target: Any) -> Tensor:
        """The scalar loss of one training batch."""

    @abstractmethod
    def evaluate(self, model: nn.Module, ws: WeightSpace, target: Any, split: str = "test") -> dict[str, Any]:
        """Metrics of a model on a whole split (``split`` names it): floats (``"loss"`` and
        :attr:`metric` among them), and optionally tensors (a confusion matrix) that are
        reported but not logged per epoch."""

    def model_arguments(self, name: str, **kwargs: Any) -> dict[str, Any]:
        """The builder arguments of the registry's model ``name`` for this task: its
        :attr:`model_defaults` unless ``kwargs`` override them; a :class:`TaskError` for a
        model the task does not train. The training layer builds the model
        (:func:`dwsnets.training.build_task_model`: an editor when :attr:`outputs_networks`,
        else :attr:`output_size` outputs) and hands it to :meth:`wrap_model`."""
        if self.models is not None and name not in self.models:
            names = ", ".join(self.models[:-1]) + f" and {self.models[-1]}" if len(self.models) > 1 else self.models[0]
            raise TaskError(f"the {self.name} task has models {names}, not {name!r}")
        return {**self.model_defaults.get(name, {}), **kwargs}

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """The built registry model as the task trains it (default: itself; contrastive
        learning adds a projection head)."""
        return model

    def use_symmetry(self, policy: Any) -> None:
        """Called by the trainer with the run's :class:`~dwsnets.core.symmetry_policy.SymmetryPolicy`,
        for tasks that draw augmented views of their own."""

    def pictures(self, model: nn.Module, ws: WeightSpace, target: Any, path: Any, split: str = "test") -> Any:
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
        """A short human-readable summary of :meth:`evaluate`'s metrics."""
        return f"{self.metric} {metrics[self.metric]:.4g}"

    @classmethod
    def metric_label(cls, metric: str | None = None) -> str:
        """How tables and plots name a metric (``MSE``, ``accuracy``, ``probe MSE``)."""
        name = metric or cls.metric
        return name.replace("_", " ").replace("mse", "MSE").replace("mae", "MAE")

    @classmethod
    def format_metric(cls, value: float) -> str:
        """A value of :attr:`metric` as text (percent with two decimals for accuracies)."""
        return f"{value * 100:.2f}%" if cls.percent else f"{value:.4g}"

    def title(self) -> str:
        """What a table of this task is about, with the settings that change its results."""
        details = [
            ",".join(map(str, v)) if isinstance(v, list) else f"{k} {v}"
            for k, v in self.config().items()
            if k != "task" and v is not None
        ]  # fmt: skip (None: a setting left to the task's own choice)
        return f"{self.name} ({'; '.join(details)})" if details else self.name

    def paper_key(self, source: str) -> str:
        """Under which key :attr:`dwsnets.baselines.ModelSpec.paper` lists this task's numbers."""
        return f"{self.name}/{source}"

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


class SupervisedTask(Task):
    """A task whose model maps a batch of networks to a tensor of outputs, scored against
    per-network targets: subclasses give :meth:`loss` and :meth:`metrics`."""

    @abstractmethod
    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Scalar loss of a batch (``output`` from the model, ``target`` rows of :meth:`targets`)."""

    @abstractmethod
    def metrics(self, output: Tensor, target: Tensor) -> dict[str, Any]:
        """Metrics of a whole split's outputs (see :meth:`Task.evaluate`)."""

    def batch_loss(self, model: nn.Module, ws: WeightSpace, target: Any) -> Tensor:
        return self.loss(model(ws), target)

    @torch.no_grad()
    def outputs(self, model: nn.Module, ws: WeightSpace, batch: int = 1024) -> Tensor:
        """The model's float outputs ``(N, output_size)`` on a whole split, in eval mode and
        slices of ``batch``."""
        model.eval()
        return torch.cat([model(ws[i : i + batch]).float() for i in range(0, len(ws), batch)])

    def evaluate(self, model: nn.Module, ws: WeightSpace, target: Any, split: str = "test",
                 batch: int = 1024) -> dict[str, Any]:  # fmt: skip
        """:meth:`metrics` of a model in eval mode on a whole split, in slices of ``batch``."""
        return self.metrics(self.outputs(model, ws, batch), target)

    def ensemble(self, outputs: Sequence[Tensor]) -> Tensor:
        """One output per network from several models' :meth:`outputs` on the same networks,
        to score with :meth:`metrics`: their mean here (a regressor's predictions, a ranking
        score's logits); classifiers average probabilities instead."""
        return torch.stack([o.float() for o in outputs]).mean(0)
