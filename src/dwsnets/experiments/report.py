"""How experiments are shown: numbers as text, markdown grids, and their plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..baselines import MODELS
from ..tasks import Task

__all__ = ["duration", "grid_rows", "mean_spread", "plain_log_y", "plot_sweep", "plot_table_curves", "plural"]

Runs = list[tuple[float, float]]  # (test metric, training seconds) per seed


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def mean_spread(values: list[float], scale: float, single: str = "") -> str:
    """``mean ± std`` of values (percentages with two decimals, other metrics with four
    significant digits); one value is shown followed by ``single``."""
    t = torch.tensor(values, dtype=torch.float64) * scale
    mean = float(t.mean())
    if len(t) < 2:
        return (f"{mean:.2f}" if scale == 100 else f"{mean:.4g}") + single
    std = float(t.std())
    return f"{mean:.2f} ± {std:.2f}" if scale == 100 else f"{mean:.4g} ± {std:.3g}"


def grid_rows(grid: dict[str, dict[Any, Runs]], columns: list[Any], scale: float) -> list[str]:
    """Markdown rows ``| model | mean ± std | ... |`` of ``{model: {column: [(metric, seconds), ...]}}``."""
    return [
        f"| {MODELS[model].label} | "
        + " | ".join(mean_spread([v for v, _ in per_column[c]], scale) for c in columns)
        + " |"
        for model, per_column in grid.items()
    ]


def plain_log_y(ax: Any) -> None:
    """A logarithmic y axis labelled with plain numbers: minor ticks too (2, 3, 5 times a
    power of ten) while the range is under two decades, every one under half a decade."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        """matplotlib's choice of which log ticks to label, written as plain numbers."""

        def __call__(self, x: float, pos: int | None = None) -> str:
            return f"{x:.3g}" if super().__call__(x, pos) else ""

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PlainLogFormatter())
    ax.yaxis.set_minor_formatter(PlainLogFormatter(minor_thresholds=(2, 0.5)))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curves(out: Path, model: str, seeds: int, key: str, scale: float) -> list[list[float]]:
    curves = []
    for seed in range(seeds):
        metrics = out / f"{model}-seed{seed}" / "metrics.jsonl"
        if metrics.exists():
            curves.append([json.loads(line)[key] * scale for line in metrics.read_text().splitlines()])
    return curves


def plot_table_curves(path: Path, out: Path, models: list[str], seeds: int, task: Task, title: str) -> float | None:
    """Every model's validation metric per epoch (mean over seeds, the spread shaded), and
    the task's chance level as a dashed line when it has one (returned; a task that needs
    its data for it, such as the classes of ``classify``, must have its state loaded)."""
    plt = _pyplot()
    scale = 100 if task.percent else 1
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for model in models:
        curves = _curves(out, model, seeds, f"val_{task.metric}", scale)
        if not curves:
            continue
        length = min(len(c) for c in curves)
        values = torch.tensor([c[:length] for c in curves], dtype=torch.float64)
        epochs = list(range(1, length + 1))
        mean = values.mean(0)
        ax.plot(epochs, mean.tolist(), marker="o" if length <= 30 else None, markersize=3, label=MODELS[model].label)
        if len(curves) > 1:
            spread = values.std(0)
            ax.fill_between(epochs, (mean - spread).tolist(), (mean + spread).tolist(), alpha=0.2)
    chance = task.chance()
    if chance is not None:
        ax.axhline(chance * scale, color="0.5", linestyle="--", linewidth=1, label="chance")
    if not task.higher_is_better:
        plain_log_y(ax)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {task.metric_label()}" + (" (%)" if scale == 100 else ""))
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return chance


def plot_sweep(path: Path, sweep: dict[str, dict[int, Runs]], task: Task, title: str,
               further: dict[str, dict[str, dict[int, Runs]]] | None = None) -> None:  # fmt: skip
    """The test metric against the training-set size, one line per model (mean ± std over
    seeds); each of the task's ``further`` metrics of the same runs dashed, in the model's colour."""
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    plt = _pyplot()
    scale = 100 if task.percent else 1
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, per_size in sweep.items():
        line = _sweep_line(ax, per_size, scale, label=MODELS[model].label, marker="o")
        for metric, grid in (further or {}).items():
            if model in grid:
                _sweep_line(ax, grid[model], scale, label=f"{MODELS[model].label}, {task.metric_label(metric)}",
                            marker="x", linestyle="--", color=line[0].get_color())  # fmt: skip
    ax.set_xscale("log")
    ax.set_xticks(sorted({n for per_size in sweep.values() for n in per_size}))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%d"))  # plain numbers, not powers of ten
    ax.xaxis.set_minor_formatter(NullFormatter())
    if not task.higher_is_better:
        plain_log_y(ax)
    ax.set_xlabel("training networks")
    ax.set_ylabel(f"test {task.metric_label()}" + (" (%)" if scale == 100 else ""))
    ax.set_title(title)
    if further:  # twice the lines: the legend beside the plot, not over it
        fig.set_size_inches(8.5, 4)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    else:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sweep_line(ax: Any, per_size: dict[int, Runs], scale: float, **style: Any) -> Any:
    """One model's mean ± std over seeds at each size, as an error-bar line."""
    sizes = sorted(per_size)
    values = [torch.tensor([v for v, _ in per_size[n]], dtype=torch.float64) * scale for n in sizes]
    means = [float(v.mean()) for v in values]
    spreads = [float(v.std()) if len(v) > 1 else 0.0 for v in values]
    return ax.errorbar(sizes, means, yerr=spreads, capsize=3, **style)


def plot_prediction_scatter(path: Path, points: dict[str, tuple[Any, Any]], title: str) -> None:
    """One panel per model: predicted against true value of every test network, with the
    diagonal and the model's Kendall's tau."""
    from scipy.stats import kendalltau

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(points), figsize=(4 * len(points), 4), squeeze=False)
    for ax, (label, (predicted, true)) in zip(axes[0], points.items()):
        p, t = [float(v) for v in predicted], [float(v) for v in true]
        ax.scatter(t, p, s=6, alpha=0.5)
        low, high = min(min(p), min(t)), max(max(p), max(t))
        ax.plot([low, high], [low, high], color="0.5", linestyle="--", linewidth=1)
        ax.set_xlabel("true test accuracy")
        ax.set_ylabel("predicted")
        ax.set_title(f"{label}\nKendall's tau {kendalltau(p, t).statistic:.3f}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
