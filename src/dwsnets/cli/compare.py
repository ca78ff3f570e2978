"""``dwsnets compare``: finished or running training runs side by side.

Recipe work asks one question again and again: did this change of settings help? The
command reads each run directory (its ``config.json``, ``metrics.jsonl`` and, once
evaluated, ``test.json``), finds the settings in which the runs differ, and prints one
markdown row per run with those settings, the best validation metric and its epoch, the
test metric and the training time; ``--plot`` draws their curves on shared axes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..tasks import TASKS
from ..training.trainer import read_run_record
from .common import DefaultsFormatter, UsageError
from .train import _metric_name, _percent

__all__ = ["add_parsers", "cmd_compare", "differing_settings"]

_IGNORED = {"checkpoint_minutes"}  # settings that do not change what a run learns


def _flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        elif key not in _IGNORED:
            flat[prefix + key] = value
    return flat


def differing_settings(records: list[dict[str, Any]]) -> list[str]:
    """The settings (dotted names, e.g. ``signal.rotate``) whose values are not the same in
    every one of the runs' ``config.json`` records; one absent from a run counts as differing."""
    flats = [_flatten({"data": r.get("data"), **r["config"]}) for r in records]
    names = sorted({name for flat in flats for name in flat})
    return [n for n in names if len({json.dumps(flat.get(n), sort_keys=True) for flat in flats}) > 1]


def _history(run: Path) -> list[dict[str, Any]]:
    path = run / "metrics.jsonl"
    if not path.exists():
        raise UsageError(f"{run} has no finished epoch yet (no metrics.jsonl); compare it once one has finished")
    try:
        history = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON lines ({exc}); the run directory is damaged") from None
    if not history:
        raise UsageError(f"{run} has no finished epoch yet (metrics.jsonl is empty)")
    return history


def _value(flat: dict[str, Any], name: str) -> str:
    if name not in flat:
        return "-"
    value = flat[name]
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def cmd_compare(args: argparse.Namespace) -> int:
    runs = [Path(r) for r in args.runs]
    if len(runs) < 2:
        raise UsageError("compare needs at least two run directories")
    for run in runs:
        inner = sorted(run.glob("*/config.json"))
        if not (run / "config.json").exists() and inner:  # a table's directory, not one run
            names = " ".join(str(p.parent) for p in inner[:3])
            raise UsageError(f"{run} holds several runs (a table's directory); name the runs, e.g. {names}")
    records = [read_run_record(r) for r in runs]
    names = sorted({r["config"]["task"] for r in records})
    if len(names) > 1:
        raise UsageError(f"the runs learn different tasks ({', '.join(names)}); compare runs of one task")
    task = TASKS[names[0]]
    labels = args.labels.split(",") if args.labels else None
    if labels is not None and len(labels) != len(runs):
        raise UsageError(f"--labels names {len(labels)} runs, but {len(runs)} run directories were given")
    histories = [_history(r) for r in runs]
    differ = differing_settings(records)
    flats = [_flatten({"data": r.get("data"), **r["config"]}) for r in records]
    if labels is None:
        labels = [", ".join(f"{n}={_value(f, n)}" for n in differ if n in f) or str(r) for f, r in zip(flats, runs)]

    percent = _percent(task)
    scale = 100 if percent else 1
    metric = _metric_name(task)
    show = (lambda v: f"{v * 100:.2f}") if percent else (lambda v: f"{v:.4g}")
    unit = " (%)" if percent else ""
    differ = [n for n in differ if n != "epochs"]  # the finished-epochs column says "k of n"
    head = [
        "run",
        *differ,
        "epochs",
        f"best validation {metric}{unit} (epoch)",
        f"test {metric}{unit}",
        "training time",
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    pick = max if task.higher_is_better else min
    for run, flat, history in zip(runs, flats, histories):
        key = f"val_{task.metric}"
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
        print("| " + " | ".join([*row, f"{seconds / 60:.1f} min"]) + " |")
    if args.plot:
        _plot(Path(args.plot), histories, labels, task.metric, metric, scale)
        print(f"picture: {args.plot}")
    return 0


def _plot(
    path: Path, histories: list[list[dict[str, Any]]], labels: list[str], key: str, metric: str, scale: float
) -> None:
    """Losses (training solid, validation dashed) and the validation metric, one colour per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (history, label) in enumerate(zip(histories, labels)):
        epochs = [h["epoch"] for h in history]
        colour = f"C{i % 10}"
        a.plot(epochs, [h["train_loss"] for h in history], color=colour, label=f"{label} (train)")
        a.plot(epochs, [h["val_loss"] for h in history], color=colour, linestyle="--", label=f"{label} (validation)")
        b.plot(epochs, [h[f"val_{key}"] * scale for h in history], color=colour, label=label)
    a.set_yscale("log")
    a.set_xlabel("epoch")
    a.set_ylabel("loss (training solid, validation dashed)")
    b.set_xlabel("epoch")
    b.set_ylabel(f"validation {metric}" + (" (%)" if scale == 100 else ""))
    b.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="training runs side by side: the settings they differ in, best validation, test",
        formatter_class=DefaultsFormatter,
    )
    p.add_argument("runs", nargs="+", help="run directories (dwsnets train / table), two or more")
    p.add_argument(
        "--labels", help="comma-separated names for the runs in the plot (default: their differing settings)"
    )
    p.add_argument("--plot", help="write the runs' loss and validation curves to this PNG")
    p.set_defaults(func=cmd_compare)
