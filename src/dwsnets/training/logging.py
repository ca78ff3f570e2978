"""What a run leaves for a person to read: metrics files and pictures."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

from torch import Tensor

from ..utils import atomic_write_bytes

__all__ = ["ProgressFile", "TensorBoardLog", "plot_curves", "save_confusion_png", "write_metrics"]


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class ProgressFile:
    """``progress.txt`` in a run directory: where a run stands, in words a person reads
    (``cat`` or ``watch cat`` it while the run works in the background). Rewritten
    atomically at most every ``interval`` seconds and after every epoch."""

    def __init__(self, path: Path, epochs: int, model: str, metric: str, enabled: bool, interval: float = 20.0):
        self.path, self.epochs, self.model, self.metric = path, epochs, model, metric
        self.enabled, self.interval = enabled, interval
        self.started = time.perf_counter()
        self.last = self.started
        self.start_done: float | None = None

    def batch(self, epoch: int, batch: int, batches: int, loss: float, rate: float,
              history: list[dict[str, Any]], best: float | None) -> None:  # fmt: skip
        now = time.perf_counter()
        done = epoch + (batch + 1) / batches  # epochs of work finished
        if self.start_done is None:
            self.start_done = done - 1 / batches
        if not self.enabled or now - self.last < self.interval:
            return
        self.last = now
        speed = (done - self.start_done) / max(now - self.started, 1e-9)  # epochs per second in this call
        self._write([
            f"epoch {epoch + 1} of {self.epochs}, batch {batch + 1} of {batches} ({100 * (batch + 1) / batches:.0f}%)",
            f"training loss this epoch so far {loss:.4f}, {rate:,.0f} INRs/s",
            f"about {_clock((self.epochs - done) / max(speed, 1e-12))} to the end of the run (evaluations excluded)",
            *self._best(history, best),
        ])  # fmt: skip

    def epoch(self, history: list[dict[str, Any]], best: float | None) -> None:
        if not self.enabled:
            return
        last = history[-1]
        seconds = sum(h["epoch_seconds"] for h in history)
        mean = seconds / len(history)
        self.last = time.perf_counter()
        self._write([
            f"finished epoch {last['epoch']} of {self.epochs} ({_clock(last['epoch_seconds'])}, "
            f"{last['inrs_per_second']:,.0f} INRs/s)",
            f"training loss {last['train_loss']:.4f}, validation {self.metric} {last[f'val_{self.metric}']:.4g}",
            f"training time so far {_clock(seconds)}; about {_clock(mean * (self.epochs - last['epoch']))} to go",
            *self._best(history, best),
        ])  # fmt: skip

    def _best(self, history: list[dict[str, Any]], best: float | None) -> list[str]:
        if best is None or not history:
            return []
        at = next((h["epoch"] for h in history if h.get(f"val_{self.metric}") == best), None)
        return [f"best validation {self.metric} {best:.4g}" + (f" (epoch {at})" if at else "")]

    def _write(self, lines: list[str]) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        text = "\n".join([f"{self.model} run, updated {stamp}", *lines]) + "\n"
        atomic_write_bytes(self.path, text.encode())


def write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """``metrics.jsonl`` (one record per epoch) and the same as ``metrics.csv``."""
    with open(run_dir / "metrics.jsonl", "w") as f:
        for record in history:
            f.write(json.dumps(record) + "\n")
    fields: list[str] = []
    for record in history:
        fields += [k for k in record if k not in fields]
    with open(run_dir / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(history)


def plot_curves(
    path: Path, history: list[dict[str, Any]], title: str, metric: str, loss_name: str, chance: float | None = None
) -> None:
    """Training and validation loss, and the validation ``metric``, per epoch."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    style = {"marker": "o", "markersize": 3} if len(epochs) <= 30 else {}
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(epochs, [h["train_loss"] for h in history], label="train", **style)
    a.plot(epochs, [h["val_loss"] for h in history], label="validation", **style)
    a.set_xlabel("epoch")
    a.set_ylabel(loss_name)
    a.legend()
    values = [h[f"val_{metric}"] for h in history]
    b.plot(epochs, values, color="C2", label="validation", **style)
    if chance is not None:
        b.axhline(chance, color="0.5", linestyle="--", linewidth=1, label="chance")
        b.set_ylim(0, max(1.0 if max(values) > 0.5 else 0.5, max(values) * 1.1))
        b.legend()
    b.set_xlabel("epoch")
    b.set_ylabel(f"validation {metric}")
    from matplotlib.ticker import MaxNLocator

    for ax in (a, b):
        if len(epochs) <= 15:
            ax.set_xticks(epochs)
            ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.ticklabel_format(axis="y", useOffset=False)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
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
            ax.text(
                j,
                i,
                str(v),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if v > confusion.max() * 0.6 else "black",
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


class TensorBoardLog:
    """Every epoch's record (losses, validation metrics, learning rate, throughput) as
    TensorBoard scalars in ``directory`` (``tensorboard --logdir RUN``). Needs the optional
    ``tensorboard`` package (``pip install 'dwsnets[tensorboard]'``)."""

    def __init__(self, directory: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            from .config import TrainingError

            raise TrainingError(
                "--tensorboard needs the tensorboard package: pip install 'dwsnets[tensorboard]' (or tensorboard)"
            ) from None
        self.writer = SummaryWriter(str(directory))

    def epoch(self, record: dict[str, Any]) -> None:
        step = int(record["epoch"])
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)):
                group = "train" if key.startswith("train_") else "val" if key.startswith("val_") else "run"
                self.writer.add_scalar(f"{group}/{key.removeprefix(group + '_')}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
