"""``dwsnets train``, ``evaluate`` and ``table``: runs of any model on any task."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from ..baselines import MODELS, model_spec
from ..tasks import TASKS, Task, TaskError, make_task
from ..training.distributed import init_distributed
from ..training.logging import save_confusion_png
from ..training.trainer import TrainConfig, Trainer, read_run_record
from ..zoo.dataset import WeightDataset
from ..zoo.store import Zoo
from .common import DefaultsFormatter, UsageError, add_runtime_args, hardware, setup_runtime

__all__ = ["add_parsers", "markdown_table", "run_table", "train_config"]


def train_config(args: argparse.Namespace, model: str, seed: int) -> TrainConfig:
    """The :class:`TrainConfig` of one run from the command line's settings."""
    augment = None if args.augment is None else args.augment == "on"
    options: dict[str, Any] = {}
    if args.task == "regress":
        options["targets"] = [t.strip() for t in args.target.split(",") if t.strip()]
    if args.task == "edit":
        options.update(edit=args.edit, size=args.size, data_dir=args.data_dir)
    if args.task == "adapt":
        options.update(shots=args.shots, contrast=args.contrast, shift=args.shift, noise=args.pixel_noise,
                       finetune_steps=args.finetune_steps, data_dir=args.data_dir)  # fmt: skip
    if args.task == "contrastive":
        options.update(probe=[t.strip() for t in args.probe.split(",") if t.strip()], embedding=args.embedding,
                       temperature=args.temperature)  # fmt: skip
    flips = {"none": (), "lr": (1,), "ud": (0,), "both": (0, 1)}[args.flip]
    signal = {
        key: value
        for key, value in {
            "rotate": args.rotate,
            "scale": args.scale,
            "shear": args.shear,
            "translate": args.translate,
            "flip": list(flips),
            "intensity_scale": args.intensity_scale,
            "intensity_shift": args.intensity_shift,
        }.items()
        if value
    }
    return TrainConfig(
        signal=signal,
        train_views=args.train_views,
        eval_views=args.eval_views,
        checkpoint_minutes=args.checkpoint_minutes,
        model=model,
        task=args.task,
        task_options=options,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        augment_permute=augment,
        noise=args.noise,
        entry_dropout=args.entry_dropout,
        seed=seed,
        max_train=args.max_train,
        epoch_size=args.epoch_size,
        amp_cpu=args.bf16,
        compile=args.compile,
    ).resolved()


def _parse_models(text: str) -> list[str]:
    models = list(MODELS) if text.strip() == "all" else [m.strip() for m in text.split(",") if m.strip()]
    if not models:
        raise UsageError("--models names no model; give a comma-separated list or 'all'")
    for m in models:
        model_spec(m)  # raises with the list of choices
    return models


def _setup(args: argparse.Namespace) -> None:
    setup_runtime(args)
    init_distributed(args.device)


def cmd_train(args: argparse.Namespace) -> int:
    _setup(args)
    config = train_config(args, args.model, args.seed)
    out = args.out or f"runs/{Path(args.zoo).name}-{args.task}-{args.model}-seed{args.seed}"
    trainer = Trainer(args.zoo, out, config, args.device)
    result = trainer.fit()
    if trainer.rank == 0:
        test = trainer.evaluate("test")
        _save_test(Path(out), test, float(sum(h["epoch_seconds"] for h in result["history"])), args.device)
        task = trainer.task
        print(
            f"{args.model}: best validation {task.metric} {_format(task, result['best'])}, "
            f"test {task.describe(test)}  ({out})"
        )
    return 0


def _format(task: Task, value: float) -> str:
    return f"{value * 100:.2f}%" if _percent(task) else f"{value:.4g}"


def _percent(task: Task) -> bool:
    """Whether the task's metric reads as a percentage (accuracies)."""
    return task.metric == "accuracy"


def cmd_evaluate(args: argparse.Namespace) -> int:
    run = Path(args.run)
    saved = read_run_record(run)
    config = TrainConfig(**saved["config"])
    setup_runtime(args)
    trainer = Trainer(args.zoo or saved["data"], run, config, args.device, progress=False)
    result = trainer.evaluate(args.split, args.checkpoint)
    task = trainer.task
    print(f"{config.model} on {args.split}: {task.describe(result)}, loss {result['loss']:.4f}")
    ws, target = trainer.inputs(args.split)
    picture = task.pictures(trainer.model, ws, target, run / f"{task.name}-{args.split}.png")
    if picture is not None:
        print(f"picture: {picture}")
    confusion = result.get("confusion")
    if confusion is not None:
        print(f"correct: {int(confusion.trace())}/{int(confusion.sum())}")
        print("confusion matrix (rows: true class, columns: predicted):")
        for row in confusion.tolist():
            print(" ".join(f"{v:5d}" for v in row))
        png = run / f"confusion-{args.split}.png"
        save_confusion_png(confusion, png, f"{config.model} on {args.split}: {task.describe(result)}")
        print(f"picture: {png}")
    return 0


def _save_test(run: Path, test: dict[str, Any], seconds: float, device: str) -> None:
    """``test.json``: the run's test metrics (best checkpoint), training time and hardware."""
    record = {f"test_{k}": v for k, v in test.items() if isinstance(v, float)}
    (run / "test.json").write_text(
        json.dumps({**record, "train_seconds": seconds, "hardware": hardware(device)}) + "\n"
    )


def run_table(
    data: WeightDataset | str,
    models: list[str],
    seeds: int,
    args: argparse.Namespace,
    out: Path,
    references: dict[str, list[float]] | None = None,
    picture: Path | None = None,
) -> dict[str, list[tuple[float, float]]]:
    """Train (or resume, or reuse when finished) every (model, seed) run under ``out``;
    returns ``{model: [(test metric, training seconds), ...]}``. ``references`` collects
    the task's model-free reference values (:meth:`Task.references`) of every run;
    ``picture``: where the task's picture (:meth:`Task.pictures`) of the first run's best
    model on the test split goes (edited renderings, embeddings, adapted accuracies)."""
    configs = {(m, s): train_config(args, m, s) for m in models for s in range(seeds)}  # all checked first
    results: dict[str, list[tuple[float, float]]] = {}
    for index, ((model, seed), config) in enumerate(configs.items()):
        run = out / f"{model}-seed{seed}"
        trainer = Trainer(data, run, config, args.device)
        history = trainer.fit()["history"]
        if trainer.rank != 0:
            continue
        test = trainer.evaluate("test")  # builds the model and loads its best checkpoint
        if picture is not None and index == 0:
            trainer.task.pictures(trainer.model, *trainer.inputs("test"), picture)
        value = test[trainer.task.metric]
        # training time summed over epochs, so a resumed run reports its real cost
        seconds = float(sum(h["epoch_seconds"] for h in history))
        results.setdefault(model, []).append((value, seconds))
        if references is not None:
            for label, ref in trainer.task.references(test).items():
                references.setdefault(label, []).append(ref)
        _save_test(run, test, seconds, args.device)
        print(f"  {model} seed {seed}: test {trainer.task.describe(test)} ({seconds:.0f}s of training)", flush=True)
    return results


def markdown_table(
    results: dict[str, list[tuple[float, float]]],
    task: Task,
    source: str,
    note: str,
    hardware_line: str,
    references: dict[str, list[float]] | None = None,
) -> str:
    """The table of :func:`run_table`'s results, beside the paper's numbers where it has them
    and the task's model-free references (the same for every run: shown once)."""
    percent = _percent(task)
    unit = f"test {_metric_name(task)}" + (" (%)" if percent else "")
    details = [
        ",".join(map(str, v)) if isinstance(v, list) else f"{k} {v}" for k, v in task.config().items() if k != "task"
    ]
    what = "INR classification" if task.name == "classify" else f"{task.name} ({'; '.join(details)})"
    lines = [
        f"{what} on {source or 'these networks'} ({note}).",
        "",
        f"Hardware: {hardware_line}.",
        "",
        f"| model | {unit}, mean ± std | seeds | training time per run | paper |",
        "|---|---|---|---|---|",
    ]
    for model, runs in results.items():
        paper = MODELS[model].paper.get(source if task.name == "classify" else f"{task.name}/{source}")
        ref = "-" if paper is None else f"{paper:.2f}"
        seconds = sum(sec for _, sec in runs) / len(runs)
        cell = _mean_spread(runs, 100 if percent else 1, single=" (one seed, no spread)")
        lines.append(f"| {MODELS[model].label} | {cell} | {len(runs)} | {_duration(seconds)} | {ref} |")
    for label, values in (references or {}).items():
        shown = f"{values[0] * 100:.2f}" if percent else f"{values[0]:.4g}"
        lines.append(f"| {label} | {shown} | - | - | - |")
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def cmd_table(args: argparse.Namespace) -> int:
    models = _parse_models(args.models)
    if args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
    sizes = _parse_sizes(args.train_sizes)
    view_settings = _parse_train_views(args.train_views)
    if sizes and len(view_settings) > 1:
        raise UsageError("--train-sizes and several --train-views settings: run one comparison at a time")
    args = argparse.Namespace(**{**vars(args), "train_views": view_settings[0]})  # one setting per run
    _setup(args)
    zoo = Zoo(args.zoo)
    out = Path(args.out or f"runs/table-{zoo.path.name}-{args.task}")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    task = make_task(args.task, **train_config(args, models[0], 0).task_options)
    if sizes:
        return _size_sweep(zoo, models, sizes, task, args, out, t0)
    if len(view_settings) > 1:
        return _views_table(zoo, models, view_settings, task, args, out, t0)
    references: dict[str, list[float]] = {}
    picture = out / f"{task.name}-test.png"
    results = run_table(zoo, models, args.seeds, args, out, references, picture)
    if not results:  # not rank 0 under torchrun
        return 0
    n_train = zoo.split_size("train") // (zoo.split_views("train") if args.train_views == "first" else 1)
    n_train = n_train if args.max_train is None else min(args.max_train, n_train)
    n_test = zoo.split_size("test") // (zoo.split_views("test") if args.eval_views == "first" else 1)
    note = (
        f"{_plural(n_train, 'training network')}, {_plural(n_test, 'test network')}, "
        f"{_plural(args.epochs, 'epoch')}, batch {args.batch_size}, {_duration(time.perf_counter() - t0)} for this "
        f"invocation; finished runs found in {out} are reused"
    )
    md = markdown_table(results, task, zoo.source, note, hardware(args.device), references)
    (out / "table.md").write_text(md)
    _plot_table_curves(out / "curves.png", out, list(results), args.seeds, task, f"{task.name} on {zoo.name}")
    print("\n" + md)
    written = [out / "table.md", out / "curves.png", *([picture] if picture.exists() else [])]
    print("written to " + ", ".join(map(str, written)))
    return 0


def _plain_log_y(ax: Any) -> None:
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


def _metric_name(task: Task) -> str:
    """How tables and plots name the task's metric (``MSE``, ``accuracy``, ``probe MSE``)."""
    return task.metric.replace("_", " ").replace("mse", "MSE").replace("mae", "MAE")


def _plot_table_curves(path: Path, out: Path, models: list[str], seeds: int, task: Task, title: str) -> None:
    """Every model's validation metric per epoch (mean over seeds, the spread shaded)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = f"val_{task.metric}"
    scale = 100 if _percent(task) else 1
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for model in models:
        curves = []
        for seed in range(seeds):
            metrics = out / f"{model}-seed{seed}" / "metrics.jsonl"
            if metrics.exists():
                curves.append([json.loads(line)[key] * scale for line in metrics.read_text().splitlines()])
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
    try:
        chance = task.chance()
    except TaskError:  # the table's task object never saw the data: read the classes from a run
        task.load_state_dict(read_run_record(out / f"{models[0]}-seed0")["task_state"])
        chance = task.chance()
    if chance is not None:
        ax.axhline(chance * scale, color="0.5", linestyle="--", linewidth=1, label="chance")
    if not task.higher_is_better:
        _plain_log_y(ax)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {_metric_name(task)}" + (" (%)" if scale == 100 else ""))
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mean_spread(runs: list[tuple[float, float]], scale: float, single: str = "") -> str:
    """``mean ± std`` of the runs' metrics (percentages with two decimals, other metrics with
    four significant digits); one run shows its value followed by ``single``."""
    values = torch.tensor([v for v, _ in runs], dtype=torch.float64) * scale
    mean = float(values.mean())
    if len(values) < 2:
        return (f"{mean:.2f}" if scale == 100 else f"{mean:.4g}") + single
    std = float(values.std())
    return f"{mean:.2f} ± {std:.2f}" if scale == 100 else f"{mean:.4g} ± {std:.3g}"


def _grid_rows(grid: dict[str, dict[Any, list[tuple[float, float]]]], columns: list[Any], scale: float) -> list[str]:
    """Markdown rows ``| model | mean ± std | ... |`` of ``{model: {column: [(metric, seconds), ...]}}``."""
    return [
        f"| {MODELS[model].label} | " + " | ".join(_mean_spread(per_column[c], scale) for c in columns) + " |"
        for model, per_column in grid.items()
    ]


def _parse_train_views(text: str) -> list[str]:
    settings = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in settings if v not in ("all", "one", "first")]
    if not settings or bad:
        raise UsageError(f"--train-views takes all, one or first (table: several, comma-separated), got {text!r}")
    return list(dict.fromkeys(settings))


def _views_table(zoo: Zoo, models: list[str], settings: list[str], task: Task, args: argparse.Namespace, out: Path,
                 t0: float) -> int:  # fmt: skip
    """Every model trained on one INR per image and on all ``K`` of them, side by side
    (``--train-views first,all``); validation and test as ``--eval-views`` says."""
    k = int(zoo.config.get("views", 1))
    if k < 2:
        raise UsageError(
            f"{zoo.path} holds one INR per image: comparing --train-views needs a zoo fitted with --views K"
        )
    names = {"first": "1 view (each image's first INR)", "all": f"{k} views (all, every epoch)",
             "one": f"{k} views (one drawn per image and epoch)"}  # fmt: skip
    table: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for setting in settings:
        runs = run_table(zoo, models, args.seeds, argparse.Namespace(**{**vars(args), "train_views": setting}),
                         out / f"views-{setting}")  # fmt: skip
        for model, values in runs.items():
            table.setdefault(model, {})[setting] = values
    if not table:  # not rank 0 under torchrun
        return 0
    scale = 100 if _percent(task) else 1
    if zoo.split_views("test") == 1:
        tested = "the one INR of each test image"
    else:
        tested = f"{'every' if args.eval_views == 'all' else 'the first'} INR of each test image"
    n_images = zoo.split_size("train") // k
    lines = [
        f"Test {_metric_name(task)} by training views on {zoo.source or zoo.name} ({_plural(n_images, 'training image')}, "
        f"{_plural(args.epochs, 'epoch')}, batch {args.batch_size}, {_plural(args.seeds, 'seed')}, test on {tested}, {_duration(time.perf_counter() - t0)} for this invocation). Mean ± std over seeds"
        + (" (%)." if scale == 100 else "."),
        "",
        f"Hardware: {hardware(args.device)}.",
        "",
        "| model | " + " | ".join(names[s] for s in settings) + " |",
        "|---|" + "---|" * len(settings),
    ]
    md = "\n".join(lines + _grid_rows(table, settings, scale)) + "\n"
    (out / "table.md").write_text(md)
    print("\n" + md)
    print(f"written to {out / 'table.md'}")
    return 0


def _parse_sizes(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        sizes = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise UsageError(f"--train-sizes must be comma-separated counts such as 250,1000,4000; got {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise UsageError(f"--train-sizes must be positive counts, got {text!r}")
    return sizes


def _size_sweep(zoo: Zoo, models: list[str], sizes: list[int], task: Task, args: argparse.Namespace, out: Path,
                t0: float) -> int:  # fmt: skip
    """Every model at every training-set size (the first N training networks), over seeds:
    a markdown grid and a picture of the test metric against the size."""
    available = zoo.split_size("train")
    sweep: dict[str, dict[int, list[tuple[float, float]]]] = {}
    # every size gets the same optimiser steps and validations unless --epoch-size says otherwise
    epoch_size = args.epoch_size or min(max(sizes), available)
    for size in sizes:
        runs = run_table(zoo, models, args.seeds,
                         argparse.Namespace(**{**vars(args), "max_train": size, "epoch_size": epoch_size}),
                         out / f"n{size}")  # fmt: skip
        for model, values in runs.items():
            sweep.setdefault(model, {})[min(size, available)] = values
    if not sweep:  # not rank 0 under torchrun
        return 0
    percent = _percent(task)
    scale = 100 if percent else 1
    used = sorted({n for per_size in sweep.values() for n in per_size})
    header = " | ".join(f"n = {n}" for n in used)
    lines = [
        f"Test {_metric_name(task)} by training-set size on {zoo.source or zoo.name} ({_plural(args.epochs, 'epoch')} of "
        f"{epoch_size:,} networks each, whatever the size, batch {args.batch_size}, {_plural(args.seeds, 'seed')}, {_duration(time.perf_counter() - t0)} for this "
        f"invocation). Mean ± std over seeds" + (" (%)." if percent else "."),
        "",
        f"Hardware: {hardware(args.device)}.",
        "",
        f"| model | {header} |",
        "|---|" + "---|" * len(used),
    ]
    md = "\n".join(lines + _grid_rows(sweep, used, scale)) + "\n"
    (out / "table.md").write_text(md)
    _plot_sweep(out / "sweep.png", sweep, task, scale, f"{task.name} on {zoo.source or zoo.name}")
    print("\n" + md)
    print(f"written to {out / 'table.md'} and {out / 'sweep.png'}")
    return 0


def _plot_sweep(path: Path, sweep: dict[str, dict[int, list[tuple[float, float]]]], task: Task, scale: float,
                title: str) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for model, per_size in sweep.items():
        sizes = sorted(per_size)
        values = [torch.tensor([v for v, _ in per_size[n]], dtype=torch.float64) * scale for n in sizes]
        means = [float(v.mean()) for v in values]
        spreads = [float(v.std()) if len(v) > 1 else 0.0 for v in values]
        ax.errorbar(sizes, means, yerr=spreads, marker="o", capsize=3, label=MODELS[model].label)
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    ax.set_xscale("log")
    ax.set_xticks(sorted({n for per_size in sweep.values() for n in per_size}))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%d"))  # plain numbers, not powers of ten
    ax.xaxis.set_minor_formatter(NullFormatter())
    if not task.higher_is_better:
        _plain_log_y(ax)
    ax.set_xlabel("training networks")
    ax.set_ylabel(f"test {_metric_name(task)}" + (" (%)" if scale == 100 else ""))
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_training_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--zoo", required=True, help="zoo directory (dwsnets fit-inrs)")
    p.add_argument("--epochs", type=int, default=30, help="training epochs")
    p.add_argument("--batch-size", type=int, default=128, help="networks per optimiser step")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the model's own, see dwsnets.baselines)")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="AdamW weight decay")
    p.add_argument("--augment", choices=["on", "off"], help="random hidden permutations (default: per model)")
    p.add_argument("--noise", type=float, default=0.0, help="Gaussian noise, fraction of each tensor's std")
    p.add_argument("--entry-dropout", type=float, default=0.0, help="probability of zeroing a weight entry")
    p.add_argument("--max-train", type=int, help="train on the first N training networks only")
    p.add_argument(
        "--epoch-size",
        type=int,
        help="training networks per epoch (default: one pass over the training set; more cycles through it, each "
        "pass reshuffled; with --train-sizes: the largest size, so that every size gets the same optimiser steps)",
    )
    exact = p.add_argument_group(
        "exact signal transforms",
        "random per network, applied to the weights so that the INR renders the transformed image exactly",
    )
    exact.add_argument("--rotate", type=float, default=0.0, help="rotation up to this many degrees either way")
    exact.add_argument("--scale", type=float, default=0.0, help="each axis scaled by exp(u), |u| up to this")
    exact.add_argument("--shear", type=float, default=0.0, help="shear factor up to this either way")
    exact.add_argument("--translate", type=float, default=0.0, help="shift up to this (the image spans [-1, 1])")
    exact.add_argument("--flip", default="none", choices=["none", "lr", "ud", "both"],
                       help="mirror left-right, up-down or both, each with probability 1/2")  # fmt: skip
    exact.add_argument("--intensity-scale", type=float, default=0.0, help="contrast times 1+u, |u| up to this")
    exact.add_argument("--intensity-shift", type=float, default=0.0, help="brightness plus u, |u| up to this")
    views = p.add_argument_group("several INRs per image (zoos fitted with --views K)")
    views.add_argument("--train-views", default="all",
                       help="per epoch, every INR of an image (all), one drawn at random (one) or only each image's "
                            "first (first); table takes several, comma-separated, and puts them side by side")  # fmt: skip
    views.add_argument("--eval-views", default="first", choices=["first", "all"],
                       help="validation and test on each image's first INR, or on all of them")  # fmt: skip
    p.add_argument("--checkpoint-minutes", type=float, default=5.0,
                   help="save mid-epoch at least this often (resuming is exact either way)")  # fmt: skip
    p.add_argument("--bf16", action="store_true",
                   help="bf16 autocast on the CPU too (CUDA always uses it): faster training on CPUs with AVX512-BF16 or "
                        "AMX (with --compile about 1.9x on this project's CPU), same accuracy (docs/benchmarks.md)")  # fmt: skip
    p.add_argument("--compile", action="store_true",
                   help="fuse batch norm's passes with torch.compile (needs a C++ compiler on the CPU; a few seconds "
                        "to compile; with --bf16 about 1.7x faster steps on this project's CPU)")  # fmt: skip
    add_runtime_args(p)


def _add_task_args(p: argparse.ArgumentParser, task: str) -> None:
    p.set_defaults(task=task)
    if task == "regress":
        p.add_argument(
            "--target",
            default="frequency",
            help="comma-separated per-network quantities to predict (sine zoos: frequency, amplitude)",
        )
    if task == "contrastive":
        _add_contrastive_args(p)
    if task == "edit":
        _add_edit_args(p)
    if task == "adapt":
        _add_adapt_args(p)
        p.add_argument("--data-dir", help="where the zoo's source images are")


def _add_edit_args(p: argparse.ArgumentParser) -> None:
    from ..tasks.edit import EDITS

    p.add_argument("--edit", default="dilate", choices=list(EDITS), help="what the edited INR must render")
    p.add_argument("--size", type=int, default=3, help="structuring element of the morphological edits")
    p.add_argument("--data-dir", help="where the zoo's source images are (IDX / CIFAR-10 sources)")


def _add_adapt_args(p: argparse.ArgumentParser) -> None:
    target = p.add_argument_group("domain adaptation (classifier zoos): the target domain and its images")
    target.add_argument("--shots", type=int, default=1000, help="labelled target-domain images the training loss sees")
    target.add_argument("--contrast", type=float, default=0.7, help="target domain: contrast around 0.5")
    target.add_argument("--shift", type=float, default=0.0, help="target domain: brightness shift")
    target.add_argument("--pixel-noise", type=float, default=0.2, help="target domain: Gaussian noise per pixel")
    target.add_argument("--finetune-steps", type=int, default=200,
                        help="Adam steps of the reference that fine-tunes each test classifier on the shots")  # fmt: skip


def _add_contrastive_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--probe",
        default="amplitude,frequency",
        help="comma-separated per-network quantities the linear probe predicts from the embeddings",
    )
    p.add_argument("--embedding", type=int, default=32, help="embedding size")
    p.add_argument("--temperature", type=float, default=0.1, help="InfoNCE temperature")  # fmt: skip


def add_parsers(sub: argparse._SubParsersAction) -> None:
    fmt = DefaultsFormatter
    train = sub.add_parser("train", help="train a model for a task on a zoo")
    train_sub = train.add_subparsers(dest="task_command", required=True)
    helps = {
        "classify": "classify networks by their label (INR image classes)",
        "regress": "regress a per-network quantity (a sine INR's frequency)",
        "contrastive": "self-supervised embeddings, scored by a linear probe",
        "edit": "edit image INRs so that they render an edited image (weights in, weights out)",
        "adapt": "update trained classifiers for a shifted input domain (weights in, weights out)",
    }
    for name in TASKS:
        p = train_sub.add_parser(name, help=helps.get(name, name), formatter_class=fmt)
        add_training_args(p)
        _add_task_args(p, name)
        p.add_argument("--model", default="dwsnet", choices=list(MODELS), help="model to train")
        p.add_argument("--seed", type=int, default=0, help="seed of the model's initialisation and the data order")
        p.add_argument("--out", help="run directory (default runs/ZOO-TASK-MODEL-seedN); resumed if it exists")
        p.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="the test metrics of a trained run", formatter_class=fmt)
    evaluate.add_argument("--run", required=True, help="run directory")
    evaluate.add_argument(
        "--zoo",
        help="zoo to evaluate on (default: the one the run was trained on; "
        "any zoo whose networks have the same layout works)",
    )
    evaluate.add_argument("--split", default="test", help="split to evaluate")
    evaluate.add_argument("--checkpoint", default="best", choices=["best", "last"], help="which checkpoint")
    add_runtime_args(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    table = sub.add_parser(
        "table", help="every model over several seeds, markdown beside the paper", formatter_class=fmt
    )
    add_training_args(table)
    table.add_argument("--task", default="classify", choices=list(TASKS), help="what the models learn")
    table.add_argument("--target", default="frequency", help="regression targets (--task regress)")
    _add_contrastive_args(table)
    _add_edit_args(table)
    _add_adapt_args(table)
    table.add_argument("--models", default="all", help="comma-separated model names, or all")
    table.add_argument("--seeds", type=int, default=3, help="seeds per model")
    table.add_argument(
        "--train-sizes",
        help="comma-separated training-set sizes: every model at each (the first N "
        "training networks), a grid and a plot of the test metric against N",
    )
    table.add_argument("--out", help="default runs/table-ZOO-TASK")
    table.set_defaults(func=cmd_table)
