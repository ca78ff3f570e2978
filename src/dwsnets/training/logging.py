"""What a run leaves for a person to read: metrics files and pictures."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from torch import Tensor

__all__ = ["plot_curves", "save_confusion_png", "write_metrics"]


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
