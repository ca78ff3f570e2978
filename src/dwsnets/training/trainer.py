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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..baselines import BaselineError, model_spec
from ..core.augment import SignalTransforms, augment
from ..core.layout import describe_layout
from ..core.weight_space import WeightSpace, WeightSpaceError
from ..nn.norm import compile_kernels
from ..tasks import Task, TaskError, make_task
from ..utils import atomic_torch_save, rank_and_world
from ..zoo.dataset import WeightDataset
from ..zoo.store import Zoo, ZooError, ZooSplit
from .checkpoint import load_training_state, save_training_state
from .logging import ProgressFile, plot_curves, write_metrics

__all__ = ["TrainConfig", "Trainer", "TrainingError", "read_run_record"]


class TrainingError(RuntimeError):
    """A run cannot start or continue (mismatched data, bad settings, missing checkpoint)."""


@dataclass
class TrainConfig:
    """Settings of one training run (stored in the run directory)."""

    model: str = "dwsnet"
    task: str = "classify"
    task_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 128
    lr: float | None = None  # None: the model's default (dwsnets.baselines.MODELS)
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.05
    clip_grad: float = 10.0
    augment_permute: bool | None = None  # None: the model's default
    noise: float = 0.0  # Gaussian noise, as a fraction of each tensor's std
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

    def resolved(self) -> TrainConfig:
        """A copy with the model's defaults filled in; checks every setting."""
        try:
            spec = model_spec(self.model)
        except BaselineError as exc:
            raise TrainingError(str(exc)) from None
        out = TrainConfig(**asdict(self))
        if out.lr is None:
            out.lr = spec.lr
        if out.augment_permute is None:
            out.augment_permute = spec.augment_permute
        problems = []
        if out.epochs < 1:
            problems.append(f"epochs must be at least 1, got {out.epochs}")
        if out.batch_size < 1:
            problems.append(f"batch size must be at least 1, got {out.batch_size}")
        if not out.lr > 0:
            problems.append(f"learning rate must be positive, got {out.lr}")
        if out.weight_decay < 0:
            problems.append(f"weight decay must not be negative, got {out.weight_decay}")
        if not 0 <= out.warmup_fraction < 1:
            problems.append(f"warm-up fraction must be in [0, 1), got {out.warmup_fraction}")
        if out.noise < 0:
            problems.append(f"noise must not be negative, got {out.noise}")
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


# settings that never change what a run computes, so a run may resume with other values
_NO_EFFECT = {"checkpoint_minutes", "compile"}


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
    return saved


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
        except ZooError as exc:
            raise TrainingError(str(exc)) from None
        self.run_dir = Path(run_dir)
        self.config = config.resolved()
        try:
            self.task: Task = make_task(self.config.task, **self.config.task_options)
            self.task.bind(self.data)
        except (TaskError, TypeError) as exc:
            raise TrainingError(f"task {self.config.task!r}: {exc}") from None
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
            if views == "first" and "view" in data.info:
                data = data[data.info["view"] == 0]
            if name == "train" and self.config.max_train is not None:
                data = data[: self.config.max_train]
            self._raw[name] = data
        return self._raw[name]

    def inputs(self, name: str) -> tuple[WeightSpace, Tensor]:
        """A split as the built model consumes it: weights after the model's own
        preprocessing (if any) and the task's targets, on the training device."""
        if self.model is None:
            raise TrainingError("build the model first (Trainer.build)")
        if name not in self._inputs:
            split = self.split(name)
            ws = split.weights
            prep = getattr(self.model, "preprocess", None)
            if prep is not None:
                ws = prep(ws)
            try:
                targets = self.task.targets(split)
            except TaskError as exc:
                raise TrainingError(f"{name} split: {exc}") from None
            self._inputs[name] = (ws.to(self.device), targets.to(self.device))
        return self._inputs[name]

    # -------------------------------------------------------------- model

    def build(self, task_state: dict[str, Any] | None = None) -> nn.Module:
        """Prepare the task (from ``task_state``, or by measuring the training split) and
        build a fresh model. Model inputs are (re)made for this model on demand."""
        try:
            if task_state is None or self.task.evaluates_with_training_split:
                self.task.prepare(self.split("train"))
            if task_state is not None:
                self.task.load_state_dict(task_state)  # exactly the statistics the run trained with
            torch.manual_seed(self.config.seed)
            self.model = self.task.build_model(self.config.model, self.data.layout, **self.config.model_args)
        except (TaskError, BaselineError) as exc:
            raise TrainingError(str(exc)) from None
        self._inputs.clear()  # preprocessing depends on the model: never reuse another model's inputs
        return self.model

    def _run_record(self) -> dict[str, Any]:
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
        before = {**defaults, **saved.get("config", {})}  # settings added since the run began: their defaults
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k) and k not in _NO_EFFECT)
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
        cfg, task = self.config, self.task
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._check_run_dir()
        if cfg.compile:
            compile_kernels(True)
        model = self.build()
        train_ws, train_y = self.inputs("train")
        val_ws, val_y = self.inputs("val")
        if hasattr(model, "input_norm"):
            model.input_norm.fit(train_ws.to("cpu"))
        signal = SignalTransforms.from_dict(cfg.signal)
        if signal.active and not task.signal_transforms_ok:
            raise TrainingError(f"the {task.name} task's targets do not follow signal transforms; drop --rotate etc.")
        if signal.active:
            try:  # fail now, not mid-run, if the transforms do not fit these networks
                signal.apply(train_ws[:1].to("cpu"), torch.Generator())
            except WeightSpaceError as exc:
                raise TrainingError(f"signal transforms: {exc}") from None
        views = self._view_groups() if cfg.train_views == "one" else None
        available = len(views) if views is not None else len(train_y)
        per_epoch = available if cfg.epoch_size is None else cfg.epoch_size
        model.to(self.device)
        if self.rank == 0:
            (self.run_dir / "config.json").write_text(json.dumps(self._run_record(), indent=1))

        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        steps_per_epoch = max(1, per_epoch // cfg.batch_size)
        total = steps_per_epoch * cfg.epochs
        warmup = max(1, int(cfg.warmup_fraction * total))

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        gen = torch.Generator().manual_seed(cfg.seed)
        start_epoch, best, history = 0, None, []
        partial: dict[str, Any] | None = None  # an epoch interrupted after a mid-epoch checkpoint
        last = self.run_dir / "last.pt"
        if last.exists():
            state = load_training_state(last, model, opt, sched, gen)
            best, history = state["best"], state["history"]
            partial = state.get("partial")
            start_epoch = state["epoch"] if partial is not None else state["epoch"] + 1
            if self.rank == 0 and self.progress:
                where = (
                    f"in epoch {start_epoch + 1}, after batch {partial['batch'] + 1}"
                    if partial
                    else (f"after epoch {start_epoch}")
                )
                shown = "none yet" if best is None else f"{best:.4g}"
                print(f"resuming {self.run_dir} {where} (best validation {task.metric} {shown})")

        net: nn.Module = model
        if self.world > 1:
            net = nn.parallel.DistributedDataParallel(model)
        scale = [s for s in model.input_norm.std.cpu()] if hasattr(model, "input_norm") else None
        amp_device = "cuda" if self.device.startswith("cuda") else "cpu"
        use_amp = cfg.amp and (amp_device == "cuda" or cfg.amp_cpu)
        report = ProgressFile(self.run_dir / "progress.txt", cfg.epochs, cfg.model, task.metric, self.rank == 0)
        steps_this_call = 0
        stopped = False

        bar = None
        if self.rank == 0 and self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.epochs, initial=start_epoch, desc=f"{cfg.model}", unit="epoch", dynamic_ncols=True)
        for epoch in range(start_epoch, cfg.epochs):
            model.train()
            if partial is not None:
                order, first = partial["order"], partial["batch"] + 1
                total_loss, seen, spent = partial["total_loss"], partial["seen"], partial["seconds"]
                partial = None
            else:
                order = self._epoch_order(available, per_epoch, views, gen)
                first, total_loss, seen, spent = 0, 0.0, 0, 0.0
            t0 = time.perf_counter()
            last_save = t0
            for b in range(first, steps_per_epoch):
                idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size].to(self.device)
                y = train_y[idx]
                # network-valued targets follow the inputs' symmetry and signal transforms
                paired = y if isinstance(y, WeightSpace) else None
                ws = augment(
                    train_ws[idx],
                    gen,
                    permute=bool(cfg.augment_permute),
                    noise=cfg.noise,
                    entry_dropout=cfg.entry_dropout,
                    scale=scale,
                    signal=signal,
                    paired=paired,
                )
                if paired is not None:
                    ws, y = ws
                if self.world > 1:
                    ws, y = ws[self.rank :: self.world], y[self.rank :: self.world]
                with torch.autocast(amp_device, dtype=torch.bfloat16, enabled=use_amp):
                    loss = task.batch_loss(net, ws, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip_grad > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
                opt.step()
                sched.step()
                total_loss += float(loss.detach()) * len(y)
                seen += len(y)
                steps_this_call += 1
                now = time.perf_counter()
                rate = seen * self.world / max(spent + now - t0, 1e-9)
                if bar is not None and b % 10 == 0:
                    bar.set_postfix_str(
                        f"epoch {epoch + 1} batch {b + 1}/{steps_per_epoch} "
                        f"loss {float(loss.detach()):.3f} {rate:,.0f} INRs/s"
                    )
                report.batch(epoch, b, steps_per_epoch, total_loss / max(seen, 1), rate, history, best)
                interrupt = stop_after_step is not None and steps_this_call >= stop_after_step
                if b + 1 < steps_per_epoch and (interrupt or now - last_save >= 60 * cfg.checkpoint_minutes):
                    if self.rank == 0:
                        mid = {"order": order, "batch": b, "total_loss": total_loss, "seen": seen,
                               "seconds": spent + now - t0}  # fmt: skip
                        save_training_state(last, model, opt, sched, gen, epoch=epoch, best=best, history=history,
                                            partial=mid)  # fmt: skip
                    last_save = now
                if interrupt and b + 1 < steps_per_epoch:
                    stopped = True
                    break
            if stopped:
                break
            train_loss = total_loss / max(seen, 1)
            if self.world > 1:
                t = torch.tensor([total_loss, seen], dtype=torch.float64)
                dist.all_reduce(t)
                train_loss = float(t[0] / t[1])
            epoch_time = spent + time.perf_counter() - t0
            val = self._evaluate(model, val_ws, val_y)
            record = {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                **{f"val_{k}": v for k, v in val.items() if isinstance(v, float)},
                "lr": sched.get_last_lr()[0],
                "epoch_seconds": epoch_time,
                "inrs_per_second": per_epoch / epoch_time,
                "world_size": self.world,
                "samples_per_rank": seen,
            }
            history.append(record)
            improved = task.better(val[task.metric], best)
            if improved:
                best = val[task.metric]
            if self.rank == 0:
                if improved:
                    atomic_torch_save(
                        {"model": model.state_dict(), "epoch": epoch + 1, task.metric: best}, self.run_dir / "best.pt"
                    )
                save_training_state(last, model, opt, sched, gen, epoch=epoch, best=best, history=history)
                write_metrics(self.run_dir, history)
            report.epoch(history, best)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(
                    f"epoch {epoch + 1} loss {train_loss:.3f} val {task.describe(val)} "
                    f"{per_epoch / epoch_time:,.0f} INRs/s"
                )
            if self.world > 1:
                dist.barrier()
            if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
                break
            if stop_after_step is not None and steps_this_call >= stop_after_step:
                break
        if bar is not None:
            bar.close()
        if self.rank == 0:
            self.plot(history)
        return {"best": best, "metric": task.metric, "history": history}

    def _view_groups(self) -> Tensor:
        """``(images, K)``: the training rows of each image's ``K`` INRs (zoos fitted with
        ``--views K``), for drawing one view per image per epoch."""
        info = self.split("train").info
        if "image_index" not in info or "view" not in info:
            raise TrainingError("train_views='one' needs a zoo with several INRs per image (fit-inrs --views K)")
        image, view = info["image_index"].long(), info["view"].long()
        k = int(view.max()) + 1
        order = torch.argsort(image * k + view)
        groups = order.reshape(-1, k) if len(order) % k == 0 else None
        if groups is None or not bool((image[groups] == image[groups[:, :1]]).all()):
            raise TrainingError(
                f"the training split does not hold {k} INRs of every image (was max_train cut mid-image?)"
            )
        return groups

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

    def _evaluate(self, model: nn.Module, ws: WeightSpace, y: Any) -> dict[str, Any]:
        return self.task.evaluate(model, ws, y)

    def evaluate(self, split: str = "test", checkpoint: str = "best") -> dict[str, Any]:
        """The task's metrics of the run's ``best`` (or ``last``) model on a split.

        The data may be another data set than the one trained on (a new test set), as long
        as its networks have the same layout.
        """
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
        model = self.build(task_state=saved["task_state"])
        state = torch.load(path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        model.to(self.device)
        ws, y = self.inputs(split)
        return self._evaluate(model, ws, y)

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
