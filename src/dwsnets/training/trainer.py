"""The trainer: any model of the registry, any task, any data set of networks.

One :class:`Trainer` drives every run:

* data: a :class:`~dwsnets.zoo.dataset.WeightDataset` (an INR zoo on disk, or networks
  held in memory), each split read when first needed; an optional training subset;
* the task (:mod:`dwsnets.tasks`) gives targets, the loss, the metrics and the metric
  that picks the best checkpoint; the model comes from :mod:`dwsnets.baselines`;
* per-tensor input normalisation fitted on the training split (equivariant); models that
  preprocess their input (weight alignment) see every split after they are built;
* weight-space augmentations (:mod:`~dwsnets.core.augment`);
* AdamW, linear warm-up then cosine decay, gradient clipping, validation after every
  epoch, the best-on-validation model kept;
* checkpoints after every epoch (:mod:`~dwsnets.training.checkpoint`): a run resumes
  from its last checkpoint with identical results;
* data-parallel training over processes launched by ``torchrun`` (gloo on CPU, NCCL on
  GPU). Every rank draws the same global batch and augmentation and takes its own slice,
  so the result matches one process up to float rounding;
* bf16 autocast on CUDA (and on the CPU with ``amp_cpu``); metrics to ``metrics.jsonl``/``metrics.csv``, curves to
  ``curves.png``, a progress bar with epoch, loss, throughput and the validation metric.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .. import utils
from ..baselines import BaselineError, default_model, model_spec
from ..core.augment import SignalTransforms
from ..core.layout import describe_layout
from ..core.symmetry import NetworkActivations, SymmetryError
from ..core.symmetry_policy import SymmetryPolicy
from ..core.weight_space import WeightSpace, WeightSpaceError
from ..nn.models import WeightSpaceModel
from ..nn.norm import compile_kernels
from ..tasks import Task, TaskError, get_task, make_task
from ..utils import rank_and_world
from ..zoo.dataset import WeightDataset, network_activations, symmetry_group
from ..zoo.errors import ZooError
from ..zoo.function import network_function
from ..zoo.reader import Zoo
from ..zoo.split import ZooSplit
from .checkpoint import CheckpointError, load_training_state, read_checkpoint, save_training_state
from .config import NO_EFFECT, TrainConfig, TrainingError, read_run_record
from .logging import ProgressFile, TensorBoardLog, plot_curves, write_metrics
from .models import build_task_model

__all__ = ["TrainConfig", "Trainer", "TrainingError", "read_run_record"]


@dataclass
class _Run:
    """What one call of :meth:`Trainer.fit` works with: the model and its data, the
    optimiser and schedule, the sampler's generator and the run's history so far."""

    model: nn.Module
    net: nn.Module  # the model, wrapped for data parallelism when there are several processes
    train: tuple[WeightSpace, Any]
    val: tuple[WeightSpace, Any]
    signal: SignalTransforms
    scale: list[Tensor]  # the input normalisation's per-tensor spread (noise is relative to it)
    views: Tensor | None  # (images, K) rows of each image's INRs, when one is drawn per epoch
    available: int  # training rows (or images) to draw from
    per_epoch: int
    steps_per_epoch: int
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    gen: torch.Generator
    report: ProgressFile
    tensorboard: TensorBoardLog | None = None
    bar: Any = None
    best: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    start_epoch: int = 0
    partial: dict[str, Any] | None = None  # an epoch interrupted after a mid-epoch checkpoint
    steps_this_call: int = 0
    amp_device: str = "cpu"  # autocast's device type, and whether bf16 autocast is on
    use_amp: bool = False
    activations: NetworkActivations | None = None  # the training networks', for activation symmetries
    averaged: AveragedModel | None = None  # the weights' moving average (ema_epochs), when on

    @property
    def evaluated(self) -> nn.Module:
        """The model that validation reads and best.pt keeps: the average when there is one."""
        return self.model if self.averaged is None else self.averaged.module


@dataclass
class _Epoch:
    """The running totals of one epoch (restored from a mid-epoch checkpoint when resuming)."""

    order: Tensor
    first: int = 0
    total_loss: float = 0.0
    seen: int = 0
    spent: float = 0.0
    stopped: bool = False


def _with_every_task_option(config: TrainConfig) -> TrainConfig:
    """``config`` with every option of its task, those not given at their defaults, so that a
    run records exactly what it trains with (a later change of a default cannot change how an
    interrupted run resumes)."""
    defaults = {opt.name: opt.parsed(opt.default) for opt in get_task(config.task).options}
    return replace(config, task_options={**defaults, **config.task_options})


def _usable_precision(config: TrainConfig, device: str) -> TrainConfig:
    """``config``, with bf16 autocast on the CPU turned off (and a warning) when the CPU has
    no bf16 units: there it makes training several times slower, never faster.
    ``DWSNETS_BF16=force`` keeps it (to reproduce a bf16 run's arithmetic exactly)."""
    if not config.amp_cpu or device.startswith("cuda") or os.environ.get("DWSNETS_BF16") == "force":
        return config
    if utils.cpu_bf16_units() is not None:
        return config
    warnings.warn(
        "--bf16: this CPU has no bf16 units (AVX512-BF16 or AMX), where bf16 autocast runs several times slower "
        "than float32 (6.7x measured on an AVX2-only CPU); training in float32 instead (DWSNETS_BF16=force keeps "
        "bf16)",
        stacklevel=3,
    )
    return replace(config, amp_cpu=False)


def _parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """The optimiser's parameter groups: every parameter with ``weight_decay``, except those
    the model names in ``no_weight_decay()`` (a probing model's probes are inputs to the
    networks it queries, not weights: decay would pull them off the networks' domain)."""
    exempt = {id(p) for p in getattr(model, "no_weight_decay", lambda: ())()}
    decayed = [p for p in model.parameters() if id(p) not in exempt]
    groups = [{"params": decayed, "weight_decay": weight_decay}]
    if exempt:
        groups.append({"params": [p for p in model.parameters() if id(p) in exempt], "weight_decay": 0.0})
    return groups


class Trainer:
    """Train and evaluate one model on one task into a run directory.

    Args:
        data: a zoo directory (:func:`dwsnets.zoo.store.build_zoo`) or any
            :class:`~dwsnets.zoo.dataset.WeightDataset` (e.g. an
            :class:`~dwsnets.zoo.dataset.InMemoryZoo`).
        run_dir: where checkpoints, metrics and plots go; an existing run is resumed.
        config: :class:`TrainConfig` (its ``task`` and ``task_options`` choose the task).
        device: ``"cpu"`` or ``"cuda"``/``"cuda:N"``.
        progress: show a progress bar (rank 0 only).
    """

    def __init__(
        self,
        data: WeightDataset | str | Path,
        run_dir: str | Path,
        config: TrainConfig,
        device: str = "cpu",
        progress: bool = True,
    ) -> None:
        try:
            self.data: WeightDataset = Zoo(data) if isinstance(data, (str, Path)) else data
            self.group = symmetry_group(self.data)  # from the layout and recorded activations: no split read
        except ZooError as exc:
            raise TrainingError(str(exc)) from None
        self.run_dir = Path(run_dir)
        if config.model is None:  # the model follows from the networks (dwsnets.baselines.default_model)
            config = replace(config, model=default_model(self.data.layout, config.task, self.group))
        self.config = _usable_precision(config.resolved(), device)
        try:
            self.config = _with_every_task_option(self.config)
            self.task: Task = make_task(self.config.task, **self.config.task_options)
            self.task.bind(self.data)
        except (TaskError, TypeError) as exc:
            raise TrainingError(f"task {self.config.task!r}: {exc}") from None
        if self.config.sign_flips is None:
            self.config = replace(self.config, sign_flips=self._default_sign_flips())
        self.policy = self._make_policy()
        self.task.use_symmetry(self.policy)
        self.device = device
        self.progress = progress
        self.rank, self.world = rank_and_world()
        if self.device.startswith("cuda") and self.world > 1:
            local = int(os.environ.get("LOCAL_RANK", self.rank))
            self.device = f"cuda:{local}"
            torch.cuda.set_device(self.device)
        self.model: nn.Module | None = None
        self._raw: dict[str, ZooSplit] = {}
        self._inputs: dict[str, tuple[WeightSpace, Tensor]] = {}

    # -------------------------------------------------------------- data

    def split(self, name: str) -> ZooSplit:
        """A split as stored (on the CPU, read on first use); ``train`` keeps each image's
        first INR only when ``train_views`` is ``"first"``, then is cut to ``max_train``
        networks when set; other splits keep each image's first INR only unless
        ``eval_views`` is ``"all"``."""
        if name not in self._raw:
            try:
                data = self.data.load(name)
            except ZooError as exc:
                raise TrainingError(str(exc)) from None
            views = self.config.train_views if name == "train" else self.config.eval_views
            if views == "first":
                data = data.first_views()
            if name == "train" and self.config.max_train is not None:
                data = data[: self.config.max_train]
            data = replace(data, weights=self.policy.canonical(data.weights))
            self._raw[name] = data
        return self._raw[name]

    def inputs(self, name: str) -> tuple[WeightSpace, Any]:
        """A split as the built model consumes it (:meth:`WeightSpaceModel.preprocess`) and
        the task's targets, on the training device."""
        if self.model is None:
            raise TrainingError("build the model first (Trainer.build)")
        if name not in self._inputs:
            split = self.split(name)
            ws = self.model.preprocess(split.weights)
            try:
                targets = self.task.targets(split)
            except TaskError as exc:
                raise TrainingError(f"{name} split: {exc}") from None
            self._inputs[name] = (ws.to(self.device), targets.to(self.device))
        return self._inputs[name]

    # -------------------------------------------------------------- model

    def build(self, task_state: dict[str, Any] | None = None) -> WeightSpaceModel:
        """Prepare the task (from ``task_state``, or by measuring the training split) and
        build a fresh model. Model inputs are (re)made for this model on demand."""
        try:
            if task_state is None or self.task.evaluates_with_training_split:
                self.task.prepare(self.split("train"))
            if task_state is not None:
                self.task.load_state_dict(task_state)  # exactly the statistics the run trained with
            torch.manual_seed(self.config.seed)
            model = build_task_model(self.task, self.config.model, self.data.layout, **self._model_args())
        except (TaskError, BaselineError, ZooError) as exc:
            raise TrainingError(str(exc)) from None
        except (TypeError, ValueError) as exc:  # a model argument of the wrong kind or value
            raise TrainingError(f"model {self.config.model!r}: {exc}") from None
        if not isinstance(model, WeightSpaceModel):
            raise TrainingError(
                f"the {self.task.name} task built a {type(model).__name__}, which does not keep the trainer's "
                "model contract (dwsnets.nn.WeightSpaceModel: input_norm and preprocess)"
            )
        self.model = model
        self._inputs.clear()  # preprocessing depends on the model: never reuse another model's inputs
        return model

    def _model_args(self) -> dict[str, Any]:
        """The model's keyword arguments: the configured ones, and for a model that queries
        the networks how they run (:func:`dwsnets.zoo.network_function`, read from the zoo)."""
        args = dict(self.config.model_args)
        if model_spec(self.config.model).protocol == "queries":
            args["function"] = network_function(self.data)
        return args

    def run_record(self) -> dict[str, Any]:
        """What a run directory's ``config.json`` records: the data, the task and its state,
        and the settings."""
        return {
            "data": str(getattr(self.data, "path", self.data.name)),
            "data_id": self.data.data_id,
            "layout": describe_layout(self.data.layout),
            "layer_sizes": list(self.data.layout.layer_sizes or ()),
            "task": self.task.config(),
            "task_state": self.task.state_dict(),
            "config": asdict(self.config),
        }

    def _check_run_dir(self) -> None:
        """Refuse to continue a run made on other data or with other settings.

        A directory with no checkpoint yet (a run that failed before its first epoch) is
        taken over by the new command, so a corrected command can reuse its ``--out``.
        """
        cfg_path = self.run_dir / "config.json"
        if not (self.run_dir / "last.pt").exists() or not cfg_path.exists():
            return
        saved = read_run_record(self.run_dir)
        if saved.get("data_id") != self.data.data_id:
            raise TrainingError(
                f"run {self.run_dir} was trained on other data (id {saved.get('data_id')}, this is "
                f"{self.data.data_id}); use a new --out directory"
            )
        now = json.loads(json.dumps(asdict(self.config)))
        defaults = json.loads(json.dumps(asdict(TrainConfig())))
        # settings added since the run began: their defaults (task options: read_run_record)
        before = {**defaults, **saved.get("config", {})}
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k) and k not in NO_EFFECT)
        if changed == ["epochs"]:
            raise TrainingError(
                f"run {self.run_dir} was set up with --epochs {before['epochs']}, this command asks for "
                f"--epochs {now['epochs']}; its learning rate (warm-up, then cosine decay to zero over the whole run) "
                f"depends on the total, so continuing it could not match a run trained for {now['epochs']} epochs "
                f"from the start: use a new --out directory, or --epochs {before['epochs']} to resume or reuse this one"
            )
        if changed:
            details = "; ".join(f"{k}: {before.get(k)!r} there, {now.get(k)!r} now" for k in changed)
            raise TrainingError(
                f"run {self.run_dir} was started with other settings ({details}); use a new --out directory "
                "or the same settings"
            )

    # -------------------------------------------------------------- training

    def fit(self, stop_after_epoch: int | None = None, stop_after_step: int | None = None) -> dict[str, Any]:
        """Train (or resume) to ``config.epochs``.

        ``stop_after_epoch`` / ``stop_after_step`` end this call early (after that many
        epochs, or optimiser steps of this call, with a checkpoint written), as an
        interruption would; they exist to test resuming.

        Returns ``{"best": best validation metric, "metric": its name, "history": [...]}``.
        """
        run = self._start()
        try:
            for epoch in range(run.start_epoch, self.config.epochs):
                state = self._train_epoch(run, epoch, stop_after_step)
                if state.stopped:
                    break
                self._end_epoch(run, epoch, state)
                if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
                    break
                if stop_after_step is not None and run.steps_this_call >= stop_after_step:
                    break
        finally:
            if run.bar is not None:
                run.bar.close()
            if run.tensorboard is not None:
                run.tensorboard.close()
        if self.rank == 0:
            self.plot(run.history)
        return {"best": run.best, "metric": self.task.metric, "history": run.history}

    # the steps of fit, in order

    def _start(self) -> _Run:
        """Check the run directory, build the model, fit its input normalisation, check the
        signal transforms, set up the optimiser and schedule, and resume from ``last.pt``."""
        cfg = self.config
        self.check_flags()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._check_run_dir()
        model = self.build()
        if cfg.compile:
            compile_kernels(model)  # this model's kernels only
        try:
            self.policy.check_model(model, cfg.model)
        except SymmetryError as exc:
            raise TrainingError(str(exc)) from None
        train, val = self.inputs("train"), self.inputs("val")
        model.input_norm.fit(train[0].to("cpu"))
        signal = self._signal_transforms(train[0])
        views = self._view_groups() if cfg.train_views == "one" else None
        available = len(views) if views is not None else len(train[1])
        per_epoch = available if cfg.epoch_size is None else cfg.epoch_size
        model.to(self.device)
        if self.rank == 0:
            (self.run_dir / "config.json").write_text(json.dumps(self.run_record(), indent=1))
        opt = torch.optim.AdamW(_parameter_groups(model, cfg.weight_decay), lr=cfg.lr)
        steps_per_epoch = max(1, per_epoch // cfg.batch_size)
        run = _Run(
            model=model, net=model, train=train, val=val, signal=signal, scale=[],
            views=views, available=available, per_epoch=per_epoch, steps_per_epoch=steps_per_epoch, opt=opt,
            sched=self._schedule(opt, steps_per_epoch * cfg.epochs), gen=torch.Generator().manual_seed(cfg.seed),
            report=ProgressFile(self.run_dir / "progress.txt", cfg.epochs, cfg.model, self.task.metric, self.rank == 0),
        )  # fmt: skip
        run.averaged = self._moving_average(model, steps_per_epoch)
        self._resume(run)
        run.scale = list(model.input_norm.std.cpu())  # as resumed: noise is relative to each tensor's spread
        run.activations = self._activation_codes()
        run.amp_device = "cuda" if self.device.startswith("cuda") else "cpu"
        run.use_amp = cfg.amp and (run.amp_device == "cuda" or cfg.amp_cpu)
        if self.world > 1:
            run.net = nn.parallel.DistributedDataParallel(model)
        if self.rank == 0 and cfg.tensorboard:
            run.tensorboard = TensorBoardLog(self.run_dir / "tensorboard")
        if self.rank == 0 and self.progress:
            from tqdm.auto import tqdm

            run.bar = tqdm(total=cfg.epochs, initial=run.start_epoch, desc=cfg.model, unit="epoch", dynamic_ncols=True)
        return run

    def _moving_average(self, model: nn.Module, steps_per_epoch: int) -> AveragedModel | None:
        """An exponential moving average of the parameters whose horizon is ``ema_epochs``
        epochs of steps (decay ``1 - 1 / steps``), or ``None`` when off. Its normalisation
        statistics are measured anew for its own weights before every validation
        (:meth:`_refresh_average_statistics`)."""
        if self.config.ema_epochs <= 0:
            return None
        decay = 1.0 - 1.0 / max(1.0, self.config.ema_epochs * steps_per_epoch)
        return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)

    @staticmethod
    def _update_average(run: _Run) -> None:
        if run.averaged is None:
            return
        run.averaged.update_parameters(run.model)
        with torch.no_grad():
            for mine, live in zip(run.averaged.module.buffers(), run.model.buffers()):
                mine.copy_(live)

    @torch.no_grad()
    def _refresh_average_statistics(self, run: _Run) -> None:
        """Normalisation statistics of the averaged weights themselves: every batch norm of
        the average is reset and fed the (unaugmented) training networks in batches, its
        running statistics the batches' weighted by their sizes (so the running means are the
        whole training set's; the live model's statistics belong to other weights)."""
        model = run.averaged.module
        norms = [m for m in model.modules() if hasattr(m, "running_mean") and hasattr(m, "running_var")
                 and getattr(m, "momentum", None) is not None]  # fmt: skip
        if not norms:
            return
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.running_mean.zero_()
            m.running_var.fill_(1.0)
        was_training = model.training
        model.train()
        ws = run.train[0]
        batch = self.config.batch_size
        try:
            for start in range(0, len(ws), batch):
                for m in norms:  # each batch weighted by its networks: the means are the whole set's
                    m.momentum = min(batch, len(ws) - start) / min(start + batch, len(ws))
                with torch.autocast(run.amp_device, dtype=torch.bfloat16, enabled=run.use_amp):
                    model(ws[start : start + batch])
        finally:
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
            model.train(was_training)

    @staticmethod
    def _average_state(run: _Run) -> dict[str, Any]:
        """What a checkpoint keeps of the average: its weights (which :meth:`load_model`
        reads) and how many steps it has averaged."""
        if run.averaged is None:
            return {}
        return {"averaged_model": run.averaged.module.state_dict(), "averaged_steps": int(run.averaged.n_averaged)}

    def _activation_codes(self) -> NetworkActivations | None:
        """The training networks' activations, when activation symmetries are on."""
        if not self.config.activation_symmetries:
            return None
        try:
            return network_activations(self.data, self.split("train"))
        except ZooError as exc:
            raise TrainingError(str(exc)) from None

    def _default_sign_flips(self) -> bool:
        """Sign flips unless asked: on for classification by a model whose default they are
        (:attr:`ModelSpec.sign_flips`; DWSNet: +6.5 points of validation accuracy on the
        2,000-image Fashion-MNIST proxy, +0.9 points of test accuracy on the full zoo,
        docs/results.md) where the networks' group holds them (every activation odd, as a
        SIREN's sine); off for every other zoo, task and model."""
        cfg = self.config
        if cfg.canonical_signs or cfg.task != "classify" or not model_spec(cfg.model).sign_flips:
            return False
        return self.group.sign_flips

    def _make_policy(self) -> SymmetryPolicy:
        """The run's :class:`SymmetryPolicy`, from the data's symmetry group and the flags
        (checked by :meth:`check_flags` when training starts)."""
        cfg = self.config
        return SymmetryPolicy(self.group, permute=bool(cfg.augment_permute), sign_flips=bool(cfg.sign_flips),
                              canonical_signs=cfg.canonical_signs,
                              activation_symmetries=cfg.activation_symmetries)  # fmt: skip

    def check_flags(self) -> None:
        """Refuse the flags the networks' group does not hold, before any split is read: every
        way of training calls it (:meth:`fit`, and models fitted in one call). Evaluating a
        finished run does not, so runs made before a refusal existed stay readable."""
        if self.config.canonical_signs and self.task.outputs_networks:
            raise TrainingError(f"--canonical-signs: the {self.task.name} task's outputs are networks, whose signs "
                                "would have to follow their inputs' canonical form; not supported")  # fmt: skip
        try:
            self.policy.check()
        except SymmetryError as exc:
            raise TrainingError(str(exc)) from None

    def _signal_transforms(self, train_ws: WeightSpace) -> SignalTransforms:
        """The run's exact signal transforms, checked now (not mid-run) against the task and
        the networks."""
        signal = SignalTransforms.from_dict(self.config.signal)
        if signal.active and not self.task.signal_transforms_ok:
            raise TrainingError(
                f"the {self.task.name} task's targets do not follow signal transforms; drop --rotate etc."
            )
        if signal.active:
            try:
                signal.apply(train_ws[:1].to("cpu"), torch.Generator())
            except WeightSpaceError as exc:
                raise TrainingError(f"signal transforms: {exc}") from None
        return signal

    def _schedule(self, opt: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LambdaLR:
        """Linear warm-up over ``warmup_fraction`` of the ``total`` steps, then cosine decay to zero."""
        warmup = max(1, int(self.config.warmup_fraction * total))

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        return torch.optim.lr_scheduler.LambdaLR(opt, schedule)

    def _resume(self, run: _Run) -> None:
        """Continue from ``last.pt`` when there is one (model, optimiser, schedule, sampler),
        or from ``best.pt`` (a full training state too) when ``last.pt`` is damaged: the
        epochs after the best one are then trained again, to the same result."""
        last = self.run_dir / "last.pt"
        if not last.exists():
            return
        state = self._load_resumable(run, last)
        run.best, run.history, run.partial = state["best"], state["history"], state.get("partial")
        if run.averaged is not None:
            if "averaged_model" not in state:
                raise TrainingError(f"{last} holds no moving average of the weights, which ema_epochs asks for")
            run.averaged.module.load_state_dict(state["averaged_model"])
            run.averaged.n_averaged.fill_(state["averaged_steps"])
        run.start_epoch = state["epoch"] if run.partial is not None else state["epoch"] + 1
        if self.rank == 0 and self.progress:
            if run.partial:
                where = f"in epoch {run.start_epoch + 1}, after batch {run.partial['batch'] + 1}"
            else:
                where = f"after epoch {run.start_epoch}"
            shown = "none yet" if run.best is None else f"{run.best:.4g}"
            print(f"resuming {self.run_dir} {where} (best validation {self.task.metric} {shown})")

    def _load_resumable(self, run: _Run, last: Path) -> dict[str, Any]:
        """The training state of ``last``, else of ``best.pt``, or a :class:`TrainingError`
        that names both files and what to do."""
        best = self.run_dir / "best.pt"
        try:
            return load_training_state(last, run.model, run.opt, run.sched, run.gen)
        except CheckpointError as exc:
            damaged = str(exc)
            if not best.exists():
                raise TrainingError(f"{damaged}, and the run has no best.pt to resume from: delete {self.run_dir} "
                                    "(or train into a new --out) to start again") from None  # fmt: skip
            try:
                state = load_training_state(best, run.model, run.opt, run.sched, run.gen)
            except CheckpointError as also:
                raise TrainingError(f"{damaged}; {also}: delete {self.run_dir} (or train into a new --out) to "
                                    "start again") from None  # fmt: skip
        warnings.warn(f"{damaged}; resuming from best.pt (epoch {state['epoch'] + 1}), the epochs after it are "
                      "trained again", stacklevel=2)  # fmt: skip
        state["partial"] = None
        return state

    def _train_epoch(self, run: _Run, epoch: int, stop_after_step: int | None) -> _Epoch:
        """One epoch of optimiser steps (from where a mid-epoch checkpoint left it), saving
        mid-epoch checkpoints every ``checkpoint_minutes``."""
        cfg = self.config
        run.model.train()
        if run.partial is not None:
            p = run.partial
            state = _Epoch(p["order"], p["batch"] + 1, p["total_loss"], p["seen"], p["seconds"])
            run.partial = None
        else:
            state = _Epoch(self._epoch_order(run.available, run.per_epoch, run.views, run.gen))
        t0 = time.perf_counter()
        last_save = t0
        for b in range(state.first, run.steps_per_epoch):
            loss, n = self._step(run, state.order[b * cfg.batch_size : (b + 1) * cfg.batch_size])
            state.total_loss += float(loss.detach()) * n
            state.seen += n
            run.steps_this_call += 1
            now = time.perf_counter()
            rate = state.seen * self.world / max(state.spent + now - t0, 1e-9)
            if run.bar is not None and b % 10 == 0:
                run.bar.set_postfix_str(f"epoch {epoch + 1} batch {b + 1}/{run.steps_per_epoch} "
                                        f"loss {float(loss.detach()):.3f} {rate:,.0f} INRs/s")  # fmt: skip
            run.report.batch(epoch, b, run.steps_per_epoch, state.total_loss / max(state.seen, 1), rate, run.history,
                             run.best)  # fmt: skip
            interrupt = stop_after_step is not None and run.steps_this_call >= stop_after_step
            if b + 1 < run.steps_per_epoch and (interrupt or now - last_save >= 60 * cfg.checkpoint_minutes):
                self._save_mid_epoch(run, epoch, b, state, state.spent + now - t0)
                last_save = now
            if interrupt and b + 1 < run.steps_per_epoch:
                state.stopped = True
                break
        state.spent += time.perf_counter() - t0
        return state

    def _step(self, run: _Run, rows: Tensor) -> tuple[Tensor, int]:
        """One optimiser step on the training rows ``rows`` (the global batch: every process
        draws the same augmentations and takes its own slice); returns the loss and the
        networks this process saw."""
        cfg = self.config
        idx = rows.to(self.device)
        train_ws, train_y = run.train
        y = train_y[idx]
        # network-valued targets follow the inputs' symmetry and signal transforms
        paired = y if isinstance(y, WeightSpace) else None
        ws = self.policy.augment(train_ws[idx], run.gen, activations=run.activations, rows=rows.cpu(),
                                 noise=cfg.noise, entry_dropout=cfg.entry_dropout, scale=run.scale, signal=run.signal,
                                 paired=paired)  # fmt: skip
        if paired is not None:
            ws, y = ws
        if self.world > 1:
            ws, y = ws[self.rank :: self.world], y[self.rank :: self.world]
        with torch.autocast(run.amp_device, dtype=torch.bfloat16, enabled=run.use_amp):
            loss = self.task.batch_loss(run.net, ws, y)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip_grad > 0:
            nn.utils.clip_grad_norm_(run.model.parameters(), cfg.clip_grad)
        run.opt.step()
        run.sched.step()
        self._update_average(run)
        return loss, len(y)

    def _save_mid_epoch(self, run: _Run, epoch: int, batch: int, state: _Epoch, seconds: float) -> None:
        if self.rank == 0:
            mid = {"order": state.order, "batch": batch, "total_loss": state.total_loss, "seen": state.seen,
                   "seconds": seconds}  # fmt: skip
            save_training_state(self.run_dir / "last.pt", run.model, run.opt, run.sched, run.gen, epoch=epoch,
                                best=run.best, history=run.history, partial=mid, **self._average_state(run))  # fmt: skip

    def _end_epoch(self, run: _Run, epoch: int, state: _Epoch) -> None:
        """Validate, record the epoch, keep the best model, checkpoint and report."""
        train_loss = state.total_loss / max(state.seen, 1)
        if self.world > 1:
            t = torch.tensor([state.total_loss, state.seen], dtype=torch.float64)
            dist.all_reduce(t)
            train_loss = float(t[0] / t[1])
        if run.averaged is not None:
            self._refresh_average_statistics(run)
        val = self._evaluate(run.evaluated, *run.val, split="val")
        processed = run.steps_per_epoch * self.config.batch_size  # the last partial batch is dropped
        record = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            **{f"val_{k}": v for k, v in val.items() if isinstance(v, float)},
            "lr": run.sched.get_last_lr()[0],
            "epoch_seconds": state.spent,
            "inrs_per_second": min(processed, run.per_epoch) / state.spent,
            "world_size": self.world,
            "samples_per_rank": state.seen,
        }
        run.history.append(record)
        improved = self.task.better(val[self.task.metric], run.best)
        if improved:
            run.best = val[self.task.metric]
        self._checkpoint(run, epoch, improved)
        self._report(run, epoch, record, val)
        if self.world > 1:
            dist.barrier()

    def _checkpoint(self, run: _Run, epoch: int, improved: bool) -> None:
        """``best.pt`` when validation improved, ``last.pt`` and the metrics files always (rank 0)."""
        if self.rank != 0:
            return
        if improved:  # a full training state: a run whose last.pt is damaged resumes from it
            save_training_state(self.run_dir / "best.pt", run.model, run.opt, run.sched, run.gen, epoch=epoch,
                                best=run.best, history=run.history, **{self.task.metric: run.best},
                                **self._average_state(run))  # fmt: skip
        save_training_state(self.run_dir / "last.pt", run.model, run.opt, run.sched, run.gen, epoch=epoch,
                            best=run.best, history=run.history, **self._average_state(run))  # fmt: skip
        write_metrics(self.run_dir, run.history)

    def _report(self, run: _Run, epoch: int, record: dict[str, Any], val: dict[str, Any]) -> None:
        """The epoch to progress.txt, TensorBoard and the progress bar."""
        run.report.epoch(run.history, run.best)
        if run.tensorboard is not None:
            run.tensorboard.epoch(record)
        if run.bar is not None:
            run.bar.update(1)
            run.bar.set_postfix_str(f"epoch {epoch + 1} loss {record['train_loss']:.3f} val {self.task.describe(val)} "
                                    f"{record['inrs_per_second']:,.0f} INRs/s")  # fmt: skip

    def _view_groups(self) -> Tensor:
        """``(images, K)``: the training rows of each image's ``K`` INRs, for drawing one
        view per image per epoch (:meth:`ZooSplit.view_groups`)."""
        try:
            return self.split("train").view_groups()
        except ZooError as exc:
            raise TrainingError(f"train_views='one' needs a zoo with several INRs per image: {exc}") from None

    @staticmethod
    def _epoch_order(available: int, per_epoch: int, views: Tensor | None, gen: torch.Generator) -> Tensor:
        """The ``per_epoch`` training rows of one epoch: passes over the ``available`` rows (or
        images, of which one random view each), every pass shuffled, the last one cut short."""
        passes = -(-per_epoch // available)
        order = torch.cat([torch.randperm(available, generator=gen) for _ in range(passes)])[:per_epoch]
        if views is None:
            return order
        pick = torch.randint(0, views.shape[1], (passes, views.shape[0]), generator=gen)
        return views[order, pick[torch.arange(per_epoch) // available, order]]

    # -------------------------------------------------------------- evaluation

    def _evaluate(self, model: nn.Module, ws: WeightSpace, y: Any, split: str) -> dict[str, Any]:
        return self.task.evaluate(model, ws, y, split=split)

    def evaluate(self, split: str = "test", checkpoint: str = "best") -> dict[str, Any]:
        """The task's metrics of the run's ``best`` (or ``last``) model on a split.

        The data may be another data set than the one trained on (a new test set), as long
        as its networks have the same layout.
        """
        model = self.load_model(checkpoint)
        ws, y = self.inputs(split)
        return self._evaluate(model, ws, y, split)

    def load_model(self, checkpoint: str = "best") -> WeightSpaceModel:
        """The run's ``best`` (or ``last``) model, built for this trainer's data (whose
        networks must have the run's layout), its task state restored, on the device.
        Raises :class:`TrainingError` naming a missing or damaged checkpoint."""
        path = self.run_dir / f"{checkpoint}.pt"
        cfg_path = self.run_dir / "config.json"
        if not path.exists() or not cfg_path.exists():
            raise TrainingError(f"no {checkpoint} checkpoint in {self.run_dir}; train first with `dwsnets train`")
        saved = read_run_record(self.run_dir)
        here = describe_layout(self.data.layout)
        if saved.get("layout") != here:
            raise TrainingError(
                f"run {self.run_dir} was trained on networks with {saved.get('layout')}; "
                f"{getattr(self.data, 'path', self.data.name)} holds networks with {here}"
            )
        try:
            state = read_checkpoint(path)
        except CheckpointError as exc:
            other = "last" if checkpoint == "best" else "best"
            try:
                read_checkpoint(self.run_dir / f"{other}.pt")
                hint = (f"its {other}.pt is intact: `dwsnets evaluate --run {self.run_dir} --checkpoint {other}` "
                        f"evaluates that model, and resuming the run with its `dwsnets train` command rewrites "
                        f"{checkpoint}.pt")  # fmt: skip
            except (CheckpointError, FileNotFoundError):
                hint = f"no other checkpoint is intact: delete {self.run_dir} and train again"
            raise TrainingError(f"{exc}; {hint}") from None
        model = self.build(task_state=saved["task_state"])
        model.load_state_dict(state.get("averaged_model", state["model"]))  # the average, where the run kept one
        return model.to(self.device)

    # -------------------------------------------------------------- outputs

    def plot(self, history: list[dict[str, Any]]) -> None:
        """``curves.png``: losses and the validation metric per epoch."""
        plot_curves(
            self.run_dir / "curves.png",
            history,
            f"{self.config.model} on {self.data.name}",
            self.task.metric,
            self.task.loss_name,
            self.task.chance(),
        )
