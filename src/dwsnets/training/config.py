"""The settings of one training run, and the record a run directory keeps of them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..baselines import BaselineError, check_model_args, model_spec
from ..core.augment import SignalTransforms
from ..core.weight_space import WeightSpaceError
from ..tasks import TaskError, get_task

__all__ = ["NO_EFFECT", "TrainConfig", "TrainingError", "read_run_record"]


class TrainingError(RuntimeError):
    """A run cannot start or continue (mismatched data, bad settings, missing checkpoint)."""


@dataclass
class TrainConfig:
    """Settings of one training run (stored in the run directory)."""

    # None: the model the networks call for (dwsnets.baselines.default_model of their layout and
    # symmetry group), which the Trainer fills in: the same default as `dwsnets train`
    model: str | None = None
    task: str = "classify"
    task_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 128
    lr: float | None = None  # None: the model's default (dwsnets.baselines.MODELS)
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.05
    clip_grad: float = 10.0
    augment_permute: bool | None = None  # None: the model's default
    # random sign flips of hidden neurons: a symmetry of SIRENs (odd activations). None: the
    # model's default (ModelSpec.sign_flips) for classification on a zoo of SIRENs, else off
    sign_flips: bool | None = None
    # every split in its sign canonical form (dwsnets.core.signs), read once: one twin per network
    canonical_signs: bool = False
    # each network's activation symmetry (ReLU: positive rescaling of hidden neurons; tanh: sign
    # flips), from its recorded activation (CNN zoos): exact, so the accuracy to predict stays
    activation_symmetries: bool = False
    noise: float = 0.0  # Gaussian noise, as a fraction of each tensor's std
    # an exponential moving average of the weights over about this many epochs of steps, which
    # validation, best.pt and the test read instead of the last weights (0: off); its batch-norm
    # statistics are measured for its own weights before each validation, one forward pass over
    # the training networks per epoch (on every rank under torchrun)
    ema_epochs: float = 0.0
    entry_dropout: float = 0.0
    signal: dict[str, Any] = field(default_factory=dict)  # exact signal transforms (SignalTransforms)
    # several INRs per image: "all" of them each epoch, "one" drawn at random, or only each image's "first"
    train_views: str = "all"
    eval_views: str = "first"  # validation and test: each image's "first" INR only, or "all"
    seed: int = 0
    max_train: int | None = None
    # training networks per epoch (None: one pass over the training set). Larger values cycle
    # through a small set several times per epoch, each pass reshuffled, so that training sets of
    # every size get the same optimiser steps and validations (training-set size sweeps)
    epoch_size: int | None = None
    checkpoint_minutes: float = 5.0  # also save mid-epoch this often (never changes the result)
    model_args: dict[str, Any] = field(default_factory=dict)
    amp: bool = True  # bf16 autocast on CUDA
    # bf16 autocast on the CPU as well (with amp): GEMMs 2-4x faster on CPUs with AVX512-BF16 or
    # AMX, half the memory traffic; statistics and the optimiser stay in float32
    amp_cpu: bool = False
    # batch norm's four passes as loops fused by torch.compile (dwsnets.nn.compile_kernels): with
    # amp_cpu about 1.7x faster training steps on the CPU; the same arithmetic, so runs may resume
    # with either setting
    compile: bool = False
    tensorboard: bool = False  # also log every epoch to TensorBoard (run_dir/tensorboard)

    def resolved(self) -> TrainConfig:
        """A copy with the model's defaults filled in; checks every setting, the model's
        arguments against its builder's signature among them."""
        out = TrainConfig(**asdict(self))
        try:
            task = get_task(self.task)
            if self.model is not None:  # None: the Trainer picks it for the data, then resolves again
                spec = model_spec(self.model)
                check_model_args(self.model, self.model_args, editor=task.outputs_networks)
                out.lr = spec.lr if out.lr is None else out.lr
                if out.augment_permute is None:
                    out.augment_permute = spec.augment_permute
        except (BaselineError, TaskError) as exc:
            raise TrainingError(str(exc)) from None
        problems = []
        if out.epochs < 1:
            problems.append(f"epochs must be at least 1, got {out.epochs}")
        if out.batch_size < 1:
            problems.append(f"batch size must be at least 1, got {out.batch_size}")
        if out.lr is not None and not out.lr > 0:
            problems.append(f"learning rate must be positive, got {out.lr}")
        if out.weight_decay < 0:
            problems.append(f"weight decay must not be negative, got {out.weight_decay}")
        if not 0 <= out.warmup_fraction < 1:
            problems.append(f"warm-up fraction must be in [0, 1), got {out.warmup_fraction}")
        if out.noise < 0:
            problems.append(f"noise must not be negative, got {out.noise}")
        if out.ema_epochs < 0:
            problems.append(f"ema_epochs must not be negative, got {out.ema_epochs}")
        if not 0 <= out.entry_dropout < 1:
            problems.append(f"entry dropout must be in [0, 1), got {out.entry_dropout}")
        if not out.checkpoint_minutes > 0:
            problems.append(f"checkpoint interval must be positive, got {out.checkpoint_minutes} minutes")
        if out.max_train is not None and out.max_train < 1:
            problems.append(f"max_train must be at least 1, got {out.max_train}")
        if out.epoch_size is not None and out.epoch_size < 1:
            problems.append(f"epoch_size must be at least 1, got {out.epoch_size}")
        if out.train_views not in ("all", "one", "first"):
            problems.append(f"train_views must be 'all', 'one' or 'first', got {out.train_views!r}")
        if out.eval_views not in ("all", "first"):
            problems.append(f"eval_views must be 'all' or 'first', got {out.eval_views!r}")
        try:
            SignalTransforms.from_dict(out.signal)
        except WeightSpaceError as exc:
            problems.append(str(exc))
        if problems:
            raise TrainingError("; ".join(problems))
        return out


# settings that never change what a run computes: a run may resume with other values, and
# `dwsnets compare` does not list them among the settings in which runs differ
NO_EFFECT = frozenset({"checkpoint_minutes", "compile", "tensorboard"})


def read_run_record(run_dir: str | Path) -> dict[str, Any]:
    """A run directory's ``config.json``, checked to come from this version of dwsnets."""
    path = Path(run_dir) / "config.json"
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        raise TrainingError(f"{run_dir} is not a training run (config.json missing)") from None
    except json.JSONDecodeError as exc:
        raise TrainingError(f"{path} is not valid JSON ({exc}); the run directory is damaged") from None
    if not isinstance(saved, dict) or not {"data_id", "task_state", "config"} <= set(saved):
        raise TrainingError(
            f"{run_dir} was made by an earlier version of dwsnets (before tasks and layouts); this version can "
            "neither resume nor evaluate it: train again into a new --out directory"
        )
    try:
        TrainConfig(**saved["config"])
    except TypeError as exc:
        raise TrainingError(f"{path} holds settings this version does not know ({exc})") from None
    saved["config"] = _with_unrecorded_task_options(saved["config"])
    return saved


def _with_unrecorded_task_options(config: dict[str, Any]) -> dict[str, Any]:
    """Recorded settings with every task option that the record lacks set to the value such
    a run was made with (:attr:`dwsnets.tasks.TaskOption.unrecorded`), so a run made before an
    option existed, or before its default changed, is read as what it was."""
    try:
        options = get_task(config.get("task", "classify")).options
    except TaskError:
        return config  # an unknown task: whoever builds the run reports it
    recorded = config.get("task_options") or {}
    return {**config, "task_options": {**{o.name: o.unrecorded_value for o in options}, **recorded}}
