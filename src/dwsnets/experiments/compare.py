"""Training runs side by side: the settings they differ in, best validation, test, curves.

Recipe work asks one question again and again: did this change of settings help? Each
run directory's ``config.json``, ``metrics.jsonl`` and (once tested) ``test.json`` are
read; the settings that differ between the runs become the table's columns, beside the
best validation metric and its epoch, the test metric and the training time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..tasks import Task, get_task
from ..training.config import NO_EFFECT, TrainingError, read_run_record

__all__ = ["compare_runs", "differing_settings", "plot_runs"]


def _flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        elif key not in NO_EFFECT:
            flat[prefix + key] = value
    return flat


def differing_settings(records: list[dict[str, Any]]) -> list[str]:
    """The settings (dotted names, e.g. ``signal.rotate``) whose values are not the same in
    every one of the runs' ``config.json`` records; one absent from a run counts as differing.
    Settings that never change a result (:data:`~dwsnets.training.config.NO_EFFECT`) are left out."""
    flats = [_flatten({"data": r.get("data"), **r["config"]}) for r in records]
    names = sorted({name for flat in flats for name in flat})
    return [n for n in names if len({json.dumps(flat.get(n), sort_keys=True) for flat in flats}) > 1]


def _history(run: Path) -> list[dict[str, Any]]:
    path = run / "metrics.jsonl"
    if not path.exists():
        raise TrainingError(f"{run} has no finished epoch yet (no metrics.jsonl); compare it once one has finished")
    try:
        history = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise TrainingError(f"{path} is not valid JSON lines ({exc}); the run directory is damaged") from None
    if not history:
        raise TrainingError(f"{run} has no finished epoch yet (metrics.jsonl is empty)")
    return history


def _value(flat: dict[str, Any], name: str) -> str:
    if name not in flat:
        return "-"
    value = flat[name]
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _records(runs: list[Path]) -> tuple[list[dict[str, Any]], type[Task]]:
    if len(runs) < 2:
        raise TrainingError("compare needs at least two run directories")
    for run in runs:
        inner = sorted(run.glob("*/config.json"))
        if not (run / "config.json").exists() and inner:  # a table's directory, not one run
            names = " ".join(str(p.parent) for p in inner[:3])
            raise TrainingError(f"{run} holds several runs (a table's directory); name the runs, e.g. {names}")
    records = [read_run_record(r) for r in runs]
    names = sorted({r["config"]["task"] for r in records})
    if len(names) > 1:
        raise TrainingError(f"the runs learn different tasks ({', '.join(names)}); compare runs of one task")
    return records, get_task(names[0])


def compare_runs(runs: list[Path], labels: list[str] | None = None,
                 plot: Path | None = None) -> str:  # fmt: skip
    """The markdown table of the runs (and, with ``plot``, their curves as a PNG)."""
    records, task = _records(runs)
    if labels is not None and len(labels) != len(runs):
        raise TrainingError(f"--labels names {len(labels)} runs, but {len(runs)} run directories were given")
    histories = [_history(r) for r in runs]
    differ = differing_settings(records)
    flats = [_flatten({"data": r.get("data"), **r["config"]}) for r in records]
    if labels is None:
        labels = [", ".join(f"{n}={_value(f, n)}" for n in differ if n in f) or str(r) for f, r in zip(flats, runs)]
    show = (lambda v: f"{v * 100:.2f}") if task.percent else (lambda v: f"{v:.4g}")
    unit = " (%)" if task.percent else ""
    metric = task.metric_label()
    differ = [n for n in differ if n != "epochs"]  # the finished-epochs column says "k of n"
    head = ["run", *differ, "epochs", f"best validation {metric}{unit} (epoch)", f"test {metric}{unit}",
            "training time"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    pick = max if task.higher_is_better else min
    key = f"val_{task.metric}"
    for run, flat, history in zip(runs, flats, histories):
        best = pick(history, key=lambda h: h[key])
        test_path = run / "test.json"
        test = "not evaluated"
        if test_path.exists():
            saved = json.loads(test_path.read_text())
            if f"test_{task.metric}" in saved:
                test = show(saved[f"test_{task.metric}"])
        seconds = sum(h.get("epoch_seconds", 0.0) for h in history)
        done = f"{history[-1]['epoch']} of {flat.get('epochs', '?')}"
        row = [str(run), *(_value(flat, n) for n in differ), done, f"{show(best[key])} ({best['epoch']})", test]
        lines.append("| " + " | ".join([*row, f"{seconds / 60:.1f} min"]) + " |")
    if plot is not None:
        plot_runs(plot, histories, labels, task)
    return "\n".join(lines) + "\n"


def plot_runs(path: Path, histories: list[list[dict[str, Any]]], labels: list[str], task: type[Task]) -> None:
    """Losses (training solid, validation dashed) and the validation metric, one colour per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = 100 if task.percent else 1
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (history, label) in enumerate(zip(histories, labels)):
        epochs = [h["epoch"] for h in history]
        colour = f"C{i % 10}"
        a.plot(epochs, [h["train_loss"] for h in history], color=colour, label=f"{label} (train)")
        a.plot(epochs, [h["val_loss"] for h in history], color=colour, linestyle="--", label=f"{label} (validation)")
        b.plot(epochs, [h[f"val_{task.metric}"] * scale for h in history], color=colour, label=label)
    a.set_yscale("log")
    a.set_xlabel("epoch")
    a.set_ylabel("loss (training solid, validation dashed)")
    b.set_xlabel("epoch")
    b.set_ylabel(f"validation {task.metric_label()}" + (" (%)" if scale == 100 else ""))
    b.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
