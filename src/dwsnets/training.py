"""Training harness for models on INR zoos (classification).

One :class:`Trainer` drives every model of :mod:`dwsnets.baselines`:

* data: a zoo's splits, each read when first needed (:class:`~dwsnets.data.zoo.Zoo`) and
  held in memory on the training device; an optional training subset;
* input normalisation fitted on the training split (per tensor, hence equivariant);
* weight-space augmentations: random hidden-neuron permutations (one per network),
  Gaussian noise scaled by each tensor's spread, entry dropout;
* AdamW, linear warm-up then cosine decay, gradient clipping, validation after every
  epoch, the best-on-validation model kept;
* checkpoints after every epoch. A run resumes from its last checkpoint with identical
  results: the model, optimiser, schedule, shuffling generator and global RNG states
  are all restored;
* data-parallel training over processes launched by ``torchrun`` (gloo on CPU, NCCL on
  GPU). Every rank draws the same global batch and augmentation and takes its own slice,
  so the result matches one process up to float rounding;
* metrics to ``metrics.jsonl`` and ``metrics.csv``, curves to ``curves.png``, a progress
  bar with epoch, loss, throughput and validation accuracy.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .data.zoo import Zoo, ZooError
from .weight_space import WeightSpace

__all__ = ["TrainConfig", "Trainer", "augment", "TrainingError"]


class TrainingError(RuntimeError):
    """A run cannot start or continue (mismatched zoo, bad checkpoint, ...)."""


@dataclass
class TrainConfig:
    """Settings of one training run (stored in the run directory)."""

    model: str = "dwsnet"
    epochs: int = 30
    batch_size: int = 128
    lr: float | None = None  # None: the model's default (baselines.MODEL_DEFAULTS)
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.05
    clip_grad: float = 10.0
    augment_permute: bool | None = None  # None: the model's default
    noise: float = 0.0  # Gaussian noise, as a fraction of each tensor's std
    entry_dropout: float = 0.0
    seed: int = 0
    max_train: int | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    amp: bool = True  # bf16 autocast on CUDA

    def resolved(self) -> "TrainConfig":
        from .baselines import MODEL_DEFAULTS

        if self.model not in MODEL_DEFAULTS:
            raise TrainingError(f"unknown model {self.model!r}; choose from {', '.join(MODEL_DEFAULTS)}")
        defaults = MODEL_DEFAULTS[self.model]
        out = TrainConfig(**asdict(self))
        if out.lr is None:
            out.lr = defaults["lr"]
        if out.augment_permute is None:
            out.augment_permute = defaults["augment_permute"]
        return out


def augment(
    ws: WeightSpace,
    generator: torch.Generator,
    *,
    permute: bool,
    noise: float = 0.0,
    entry_dropout: float = 0.0,
    scale: list[Tensor] | None = None,
) -> WeightSpace:
    """Random symmetry-preserving permutations plus optional noise and entry dropout.

    Randomness comes from ``generator`` (on the CPU) only, so a run is reproducible and
    every data-parallel rank can draw the same augmentation for the global batch.
    ``scale``: one ``(C,)`` spread per tensor for the noise (default 1).
    """
    if permute and len(ws.layer_sizes) > 2:
        perms = [
            torch.argsort(torch.rand(ws.batch_size, d, generator=generator), dim=1).to(ws.device)
            for d in ws.layer_sizes[1:-1]
        ]
        ws = ws.permute(perms)
    if noise > 0 or entry_dropout > 0:
        out = []
        for i, t in enumerate(ws.tensors):
            if noise > 0:
                s = 1.0 if scale is None else scale[i].to(t.device, t.dtype).view(1, -1, *[1] * (t.dim() - 2))
                t = t + noise * s * torch.randn(t.shape, generator=generator).to(t.device, t.dtype)
            if entry_dropout > 0:
                keep = torch.rand(t.shape, generator=generator) >= entry_dropout
                t = t * keep.to(t.device, t.dtype)
            out.append(t)
        ws = WeightSpace.from_tensors(out)
    return ws


def _distributed() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str) -> tuple[int, int]:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
    return _distributed()


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    """Train and evaluate a classifier from a zoo into a run directory.

    Args:
        zoo: zoo directory (:func:`dwsnets.data.zoo.build_zoo`).
        run_dir: where checkpoints, metrics and plots go; an existing run is resumed.
        config: :class:`TrainConfig`.
        device: ``"cpu"`` or ``"cuda"``/``"cuda:N"``.
    """

    def __init__(self, zoo: str | Path, run_dir: str | Path, config: TrainConfig, device: str = "cpu",
                 progress: bool = True) -> None:
        self.zoo = Zoo(zoo)
        self.run_dir = Path(run_dir)
        self.config = config.resolved()
        self.device = device
        self.progress = progress
        self.rank, self.world = _distributed()
        if self.device.startswith("cuda") and self.world > 1:
            local = int(os.environ.get("LOCAL_RANK", self.rank))
            self.device = f"cuda:{local}"
            torch.cuda.set_device(self.device)
        self._splits: dict[str, tuple[WeightSpace, Tensor]] = {}
        self.num_classes = self._num_classes()

    # -------------------------------------------------------------- data

    def _num_classes(self) -> int:
        source = self.zoo.config.get("source")
        if source == "sine":
            raise TrainingError(f"zoo {self.zoo.path} holds sine waves, which have no class labels")
        return 10

    def split(self, name: str) -> tuple[WeightSpace, Tensor]:
        """A split on the training device (read from disk on first use)."""
        if name not in self._splits:
            try:
                data = self.zoo.load(name)
            except ZooError as exc:
                raise TrainingError(str(exc)) from exc
            ws, labels = data.weights, data.labels
            if name == "train" and self.config.max_train is not None:
                ws, labels = ws[: self.config.max_train], labels[: self.config.max_train]
            prep = getattr(self.model, "preprocess", None) if hasattr(self, "model") else None
            if prep is not None:
                ws = prep(ws)
            self._splits[name] = (ws.to(self.device), labels.to(self.device))
        return self._splits[name]

    # -------------------------------------------------------------- model

    def build(self) -> nn.Module:
        from .baselines import build_model

        torch.manual_seed(self.config.seed)
        self.model = build_model(self.config.model, self.zoo.layer_sizes, self.num_classes, **self.config.model_args)
        return self.model

    def _check_run_dir(self) -> None:
        """Refuse to continue a run made on another zoo or with other settings."""
        cfg_path = self.run_dir / "config.json"
        if not cfg_path.exists():
            return
        saved = json.loads(cfg_path.read_text())
        if saved.get("zoo_id") != self.zoo.zoo_id:
            raise TrainingError(
                f"run {self.run_dir} was trained on another zoo (id {saved.get('zoo_id')}, this one {self.zoo.zoo_id}); "
                "use a new --out directory"
            )
        if saved.get("config") != json.loads(json.dumps(asdict(self.config))):
            raise TrainingError(
                f"run {self.run_dir} was started with other settings; use a new --out directory or the same settings"
            )

    # -------------------------------------------------------------- training

    def fit(self, stop_after_epoch: int | None = None) -> dict[str, Any]:
        """Train (or resume) to ``config.epochs``; ``stop_after_epoch`` ends this call early,
        as an interruption would (used to test resuming)."""
        cfg = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._check_run_dir()
        model = self.build()
        train_ws, train_y = self.split("train")
        val_ws, val_y = self.split("val")
        if hasattr(model, "input_norm"):
            model.input_norm.fit(train_ws.to("cpu"))
        model.to(self.device)
        if self.rank == 0:
            (self.run_dir / "config.json").write_text(json.dumps(
                {"zoo": str(self.zoo.path), "zoo_id": self.zoo.zoo_id, "layer_sizes": list(self.zoo.layer_sizes),
                 "num_classes": self.num_classes, "config": asdict(cfg)}, indent=1))

        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        steps_per_epoch = max(1, len(train_y) // cfg.batch_size)
        total = steps_per_epoch * cfg.epochs
        warmup = max(1, int(cfg.warmup_fraction * total))

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        gen = torch.Generator().manual_seed(cfg.seed)
        start_epoch, best_acc, history = 0, -1.0, []
        last = self.run_dir / "last.pt"
        if last.exists():
            state = torch.load(last, map_location="cpu", weights_only=False)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            random.setstate(state["python_rng"])
            if torch.cuda.is_available() and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state_all(state["cuda_rng"])
            start_epoch, best_acc, history = state["epoch"] + 1, state["best_acc"], state["history"]
            if self.rank == 0 and self.progress:
                print(f"resuming {self.run_dir} after epoch {start_epoch} (best val accuracy {best_acc:.4f})")

        net: nn.Module = model
        if self.world > 1:
            net = nn.parallel.DistributedDataParallel(model)
        scale = None
        if hasattr(model, "input_norm"):
            scale = [s for s in model.input_norm.std.cpu()]
        use_amp = cfg.amp and self.device.startswith("cuda")
        loss_fn = nn.CrossEntropyLoss()

        bar = None
        if self.rank == 0 and self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.epochs, initial=start_epoch, desc=f"{cfg.model}", unit="epoch", dynamic_ncols=True)
        for epoch in range(start_epoch, cfg.epochs):
            model.train()
            order = torch.randperm(len(train_y), generator=gen)
            t0 = time.perf_counter()
            total_loss, seen = 0.0, 0
            for b in range(steps_per_epoch):
                idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                ws = train_ws[idx.to(self.device)]
                ws = augment(ws, gen, permute=cfg.augment_permute, noise=cfg.noise,
                             entry_dropout=cfg.entry_dropout, scale=scale)
                y = train_y[idx.to(self.device)]
                if self.world > 1:
                    ws, y = ws[self.rank :: self.world], y[self.rank :: self.world]
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                    logits = net(ws)
                loss = loss_fn(logits.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip_grad > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
                opt.step()
                sched.step()
                total_loss += float(loss.detach()) * len(y)
                seen += len(y)
                if bar is not None and b % 10 == 0:
                    rate = seen * self.world / (time.perf_counter() - t0)
                    bar.set_postfix_str(f"epoch {epoch + 1} batch {b + 1}/{steps_per_epoch} loss {float(loss.detach()):.3f} "
                                        f"{rate:,.0f} INRs/s")
            train_loss = total_loss / max(seen, 1)
            if self.world > 1:
                t = torch.tensor([total_loss, seen], dtype=torch.float64)
                dist.all_reduce(t)
                train_loss = float(t[0] / t[1])
            epoch_time = time.perf_counter() - t0
            val = self._evaluate(model, val_ws, val_y)
            record = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val["loss"],
                      "val_accuracy": val["accuracy"], "lr": sched.get_last_lr()[0], "epoch_seconds": epoch_time,
                      "inrs_per_second": len(train_y) / epoch_time, "world_size": self.world,
                      "samples_per_rank": seen}
            history.append(record)
            improved = val["accuracy"] > best_acc
            best_acc = max(best_acc, val["accuracy"])
            if self.rank == 0:
                if improved:
                    _atomic_save({"model": model.state_dict(), "epoch": epoch + 1, "val_accuracy": best_acc},
                                 self.run_dir / "best.pt")
                _atomic_save({
                    "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "generator": gen.get_state(), "torch_rng": torch.get_rng_state(), "python_rng": random.getstate(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                    "epoch": epoch, "best_acc": best_acc, "history": history,
                }, last)
                self._write_metrics(history)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"epoch {epoch + 1} loss {train_loss:.3f} val acc {val['accuracy']:.4f} "
                                    f"(best {best_acc:.4f}) {len(train_y) / epoch_time:,.0f} INRs/s")
            if self.world > 1:
                dist.barrier()
            if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
                break
        if bar is not None:
            bar.close()
        if self.rank == 0:
            self._plot(history)
        return {"best_val_accuracy": best_acc, "history": history}

    # -------------------------------------------------------------- evaluation

    @torch.no_grad()
    def _evaluate(self, model: nn.Module, ws: WeightSpace, y: Tensor, batch: int = 1024) -> dict[str, Any]:
        model.eval()
        logits = torch.cat([model(ws[i : i + batch]).float() for i in range(0, len(y), batch)])
        loss = float(nn.functional.cross_entropy(logits, y))
        pred = logits.argmax(1)
        confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)
        confusion.index_put_((y.cpu(), pred.cpu()), torch.ones(len(y), dtype=torch.long), accumulate=True)
        return {"loss": loss, "accuracy": float((pred == y).float().mean()), "confusion": confusion}

    def evaluate(self, split: str = "test", checkpoint: str = "best") -> dict[str, Any]:
        """Accuracy and confusion matrix of the run's ``best`` (or ``last``) model on a split."""
        path = self.run_dir / f"{checkpoint}.pt"
        if not path.exists():
            raise TrainingError(f"no {checkpoint} checkpoint in {self.run_dir}; train first with `dwsnets train`")
        saved = json.loads((self.run_dir / "config.json").read_text())
        if saved["zoo_id"] != self.zoo.zoo_id or tuple(saved["layer_sizes"]) != self.zoo.layer_sizes:
            raise TrainingError(
                f"run {self.run_dir} was trained on zoo {saved['zoo_id']} with layer sizes {tuple(saved['layer_sizes'])}; "
                f"{self.zoo.path} is zoo {self.zoo.zoo_id} with layer sizes {self.zoo.layer_sizes}"
            )
        model = self.build()
        state = torch.load(path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        model.to(self.device)
        ws, y = self.split(split)
        return self._evaluate(model, ws, y)

    # -------------------------------------------------------------- outputs

    def _write_metrics(self, history: list[dict[str, Any]]) -> None:
        with open(self.run_dir / "metrics.jsonl", "w") as f:
            for rec in history:
                f.write(json.dumps(rec) + "\n")
        with open(self.run_dir / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)

    def _plot(self, history: list[dict[str, Any]]) -> None:
        if not history:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [h["epoch"] for h in history]
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
        a.plot(epochs, [h["train_loss"] for h in history], label="train")
        a.plot(epochs, [h["val_loss"] for h in history], label="validation")
        a.set_xlabel("epoch"), a.set_ylabel("cross-entropy"), a.legend()
        b.plot(epochs, [h["val_accuracy"] for h in history], color="C2")
        b.set_xlabel("epoch"), b.set_ylabel("validation accuracy")
        fig.suptitle(f"{self.config.model} on {self.zoo.path.name}")
        fig.tight_layout()
        fig.savefig(self.run_dir / "curves.png", dpi=110)
        plt.close(fig)


def save_confusion_png(confusion: Tensor, path: str | Path, title: str) -> None:
    """A labelled confusion-matrix heat map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.4))
    im = ax.imshow(confusion.numpy(), cmap="Blues")
    n = confusion.shape[0]
    for i in range(n):
        for j in range(n):
            v = int(confusion[i, j])
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > confusion.max() * 0.6 else "black")
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title(title, fontsize=9)
    ax.set_xticks(range(n)), ax.set_yticks(range(n))
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
