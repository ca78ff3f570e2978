"""Experiments: one run, or every model over seeds (a table), training-set sizes (a sweep) or
views per image side by side, each from a typed :class:`ExperimentConfig`.

Runs live in directories under the experiment's ``out``: a finished run is reused, an
interrupted one resumes, so repeating an experiment only prints its table.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import Tensor

from ..baselines import MODELS, BaselineError, default_model, models_for
from ..tasks import SupervisedTask, Task, TaskError, make_task
from ..training.config import TrainConfig, TrainingError, read_run_record
from ..training.trainer import Trainer
from ..utils import hardware, rank_and_world
from ..zoo.dataset import WeightDataset, symmetry_group
from ..zoo.errors import ZooError
from ..zoo.function import network_function
from ..zoo.reader import Zoo
from .flags import write_run_flags
from .intervals import RESAMPLES, Comparison, bootstrap_draws, bootstrap_values, compare, interval
from .report import (
    Runs,
    duration,
    grid_rows,
    mean_spread,
    plot_prediction_scatter,
    plot_sweep,
    plot_table_curves,
    plural,  # fmt: skip
)
from .tuning import candidates, default_space, write_tuning_record

__all__ = [
    "ExperimentConfig",
    "RunResult",
    "TableIntervals",
    "evaluate_run",
    "markdown_table",
    "run_experiment",
    "run_table",
    "table_intervals",
    "train_and_test",
]


@dataclass
class ExperimentConfig:
    """An experiment: ``train`` (a template whose ``model`` and ``seed`` each run replaces)
    for every model of ``models`` and seeds ``0 .. seeds-1``, on ``zoo``, under ``out``.

    ``train_sizes``: a sweep over the first N training networks; ``train_views``: several
    settings of :attr:`TrainConfig.train_views` side by side (one at a time with the sweep).
    """

    zoo: str
    out: Path
    train: TrainConfig = field(default_factory=TrainConfig)
    models: list[str] | None = None  # None: every model that can learn the task on the zoo's layout
    seeds: int = 3
    train_sizes: list[int] = field(default_factory=list)
    train_views: list[str] = field(default_factory=list)
    device: str = "cpu"
    # tune every model alike first: this many validation-scored configurations each (0: defaults)
    tune: int = 0
    tune_grid: dict[str, dict[str, list[Any]]] | None = None  # per model, its own search space

    def check(self) -> None:
        if self.seeds < 1:
            raise TrainingError(f"seeds must be at least 1, got {self.seeds}")
        if self.models is not None and not self.models:
            raise TrainingError("the experiment names no model")
        if self.train_sizes and len(self.train_views) > 1:
            raise TrainingError("training-set sizes and several train_views settings: run one comparison at a time")
        if any(n < 1 for n in self.train_sizes):
            raise TrainingError(f"training-set sizes must be positive, got {self.train_sizes}")
        if self.tune < 0:
            raise TrainingError(f"tune must not be negative, got {self.tune}")
        if self.tune and (self.train_sizes or len(self.train_views) > 1):
            raise TrainingError("--tune tunes one table; a sweep over sizes or views: run one comparison at a time")

    def runs(self, template: TrainConfig | None = None) -> dict[tuple[str, int], TrainConfig]:
        """Every (model, seed) run's resolved settings (all checked before any trains)."""
        base = template or self.train
        return {
            (m, s): replace(base, model=m, seed=s).resolved() for m in self.model_names() for s in range(self.seeds)
        }

    def model_names(self) -> list[str]:
        """:attr:`models`, or every model that can learn the task on the zoo's layout."""
        if self.models is not None:
            return self.models
        zoo = Zoo(self.zoo)
        try:
            function = network_function(zoo)
        except ZooError:  # networks dwsnets cannot run: the models that read weights only
            function = None
        return models_for(zoo.layout, self.train.task, symmetry_group(zoo), function)


def default_model_for(zoo: str | Path, task: str) -> str:
    """The model ``dwsnets train TASK`` trains on the zoo at ``zoo`` without ``--model``
    (:func:`dwsnets.baselines.default_model` of its layout and symmetry group)."""
    data = Zoo(zoo)
    return default_model(data.layout, task, symmetry_group(data))


def save_test(run: Path, test: dict[str, Any], seconds: float, device: str) -> None:
    """``test.json``: the run's test metrics (best checkpoint), training time and hardware."""

    def plain(value: Any) -> bool:  # numbers, and dicts of them (a task's search grid): not tensors
        if isinstance(value, dict):
            return all(isinstance(v, (int, float)) for v in value.values())
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    record = {f"test_{k}": v for k, v in test.items() if plain(v)}
    (run / "test.json").write_text(
        json.dumps({**record, "train_seconds": seconds, "hardware": hardware(device)}) + "\n"
    )


@dataclass
class RunResult:
    """One finished run: its trainer (model and task built), test metrics, training
    seconds (summed over epochs, so a resumed run reports its real cost) and best
    validation metric."""

    trainer: Trainer
    test: dict[str, Any]
    seconds: float
    best: float
    # per test network: the model's outputs and the targets (tasks with one output per network)
    outputs: tuple[Tensor, Tensor] | None = None


def train_and_test(data: WeightDataset | str, run: Path, config: TrainConfig, device: str,
                   picture: Path | None = None) -> RunResult | None:  # fmt: skip
    """Train (resume, or reuse) one run, then test its best checkpoint: ``test.json`` and
    ``config.toml`` (the flags that reproduce it) in the run directory, and the task's
    picture of the test split at ``picture``. ``None`` on ranks other than 0 under torchrun."""
    if config.model is None:  # the model the networks call for, as the Trainer would pick it
        zoo = Zoo(data) if isinstance(data, (str, Path)) else data
        config = replace(config, model=default_model(zoo.layout, config.task, symmetry_group(zoo))).resolved()
    if MODELS[config.model].fit is not None:
        return _fit_in_one_call(data, run, config, device)
    trainer = Trainer(data, run, config, device)
    fitted = trainer.fit()
    history = fitted["history"]
    if trainer.rank != 0:
        return None
    model = trainer.load_model("best")
    ws, target = trainer.inputs("test")
    outputs = None
    if isinstance(trainer.task, SupervisedTask):  # one output per network: what test intervals resample
        per_network = trainer.task.outputs(model, ws)
        test = trainer.task.metrics(per_network, target)  # what its evaluate computes, from the same pass
        outputs = (per_network.cpu(), target.cpu())
    else:
        test = trainer.task.evaluate(model, ws, target, split="test")
    if picture is not None:
        trainer.task.pictures(trainer.model, *trainer.inputs("test"), picture, split="test")
    seconds = float(sum(h["epoch_seconds"] for h in history))
    save_test(run, test, seconds, device)
    write_run_flags(run / "config.toml", trainer.config, str(getattr(trainer.data, "path", data)), str(run))
    return RunResult(trainer, test, seconds, fitted["best"], outputs)


def _fit_in_one_call(data: WeightDataset | str, run: Path, config: TrainConfig, device: str) -> RunResult | None:
    """A model fitted without gradient steps (:attr:`ModelSpec.fit`, e.g. trees): fit on
    train, choose on validation, test; the run directory gets ``test.json`` and a record."""
    trainer = Trainer(data, run, config, device, progress=False)
    trainer.check_flags()  # before any split is read, as gradient training does
    if trainer.rank != 0:
        return None
    task = trainer.task
    ignored = [flag for flag, on in (("--activation-symmetries", config.activation_symmetries),
               ("--sign-flips", config.sign_flips), ("--noise", config.noise > 0),
               ("--entry-dropout", config.entry_dropout > 0)) if on]  # fmt: skip
    if ignored:
        print(f"note: {config.model} is fitted in one call, without augmentation: {', '.join(ignored)} "
              "apply to the gradient-trained models only")  # fmt: skip
    try:
        task.prepare(trainer.split("train"))
        result = MODELS[config.model].fit(trainer.split("train"), trainer.split("val"), trainer.split("test"), task,
                                          config.seed)  # fmt: skip
    except (TaskError, BaselineError) as exc:
        raise TrainingError(str(exc)) from None
    run.mkdir(parents=True, exist_ok=True)
    record = {**trainer.run_record(), "fitted": result.get("settings"),
              "val": {k: v for k, v in result["val"].items() if isinstance(v, (int, float))}}  # fmt: skip
    (run / "config.json").write_text(json.dumps(record, indent=1))
    save_test(run, result["test"], result["seconds"], device)
    write_run_flags(run / "config.toml", trainer.config, record["data"], str(run))
    outputs = None
    if "test_outputs" in result:
        outputs = (result["test_outputs"].cpu(), task.targets(trainer.split("test")).cpu())
    return RunResult(trainer, result["test"], result["seconds"], result["val"][task.metric], outputs)


def evaluate_run(run: Path, zoo: str | None, split: str, checkpoint: str, device: str) -> dict[str, Any]:
    """A finished run's checkpoint on a split (of its own zoo, or of ``zoo`` with the same
    layout): ``{"task", "config", "metrics", "pictures"}``, the pictures being the task's own
    and, for classifiers, the confusion matrix."""
    from ..training.logging import save_confusion_png

    saved = read_run_record(run)
    config = TrainConfig(**saved["config"])
    trainer = Trainer(zoo or saved["data"], run, config, device, progress=False)
    metrics = trainer.evaluate(split, checkpoint)
    task = trainer.task
    pictures = []
    picture = task.pictures(trainer.model, *trainer.inputs(split), run / f"{task.name}-{split}.png", split=split)
    if picture is not None:
        pictures.append(Path(picture))
    if metrics.get("confusion") is not None:
        png = run / f"confusion-{split}.png"
        save_confusion_png(metrics["confusion"], png, f"{config.model} on {split}: {task.describe(metrics)}")
        pictures.append(png)
    return {"task": task, "config": config, "metrics": metrics, "pictures": pictures}


def run_table(data: WeightDataset | str, configs: dict[tuple[str, int], TrainConfig], out: Path, device: str,
              references: dict[str, list[float]] | None = None, picture: Path | None = None,
              extra: dict[str, dict[str, list[float]]] | None = None,
              predictions: dict[str, tuple[Any, Any]] | None = None,
              outputs: dict[str, list[tuple[Tensor, Tensor]]] | None = None) -> dict[str, Runs]:  # fmt: skip
    """Every (model, seed) run under ``out`` (trained, resumed, or reused when finished);
    returns ``{model: [(test metric, training seconds), ...]}``. ``references`` collects
    the task's model-free reference values (:meth:`Task.references`), ``extra`` its further
    :attr:`Task.table_metrics` (``{metric: {model: values}}``); ``picture``: where the task's
    picture of the first run's best model on the test split goes; ``predictions`` collects
    each model's first seed's per-network test predictions and truths, for tasks that give them;
    ``outputs`` every run's per-network test outputs and targets (``{model: [per seed]}``), for
    the test-set intervals."""
    results: dict[str, Runs] = {}
    for index, ((model, seed), config) in enumerate(configs.items()):
        done = train_and_test(data, out / f"{model}-seed{seed}", config, device, picture if index == 0 else None)
        if done is None:
            continue
        trainer, test, seconds = done.trainer, done.test, done.seconds
        results.setdefault(model, []).append((test[trainer.task.metric], seconds))
        if outputs is not None and done.outputs is not None:
            outputs.setdefault(model, []).append(done.outputs)
        if references is not None:
            for label, ref in trainer.task.references(test).items():
                references.setdefault(label, []).append(ref)
        if predictions is not None and "predicted" in test and model not in predictions:
            predictions[model] = (test["predicted"], test["true"])
        if extra is not None:
            for metric in trainer.task.table_metrics:
                if metric in test:
                    extra.setdefault(metric, {}).setdefault(model, []).append(test[metric])
        print(f"  {model} seed {seed}: test {trainer.task.describe(test)} ({seconds:.0f}s of training)", flush=True)
    return results


def markdown_table(results: dict[str, Runs], task: Task, source: str, note: str, hardware_line: str,
                   references: dict[str, list[float]] | None = None,
                   extra: dict[str, dict[str, list[float]]] | None = None,
                   intervals: TableIntervals | None = None) -> str:  # fmt: skip
    """The table of :func:`run_table`'s results beside the paper's numbers where it has them,
    the task's further :attr:`Task.table_metrics` (``extra``: ``{metric: {model: values}}``)
    and its model-free references (the same for every run: shown once); ``intervals``: each
    model's 95% bootstrap interval over the test networks, and which differences they tell
    apart (:func:`table_intervals`). The ``reads`` column says whether a model reads the
    weights only or queries the networks (:data:`dwsnets.baselines.PROTOCOLS`)."""
    scale = 100 if task.percent else 1
    unit = " (%)" if task.percent else ""
    extra = extra or {}
    extra_head = "".join(f" test {task.metric_label(m)}{unit} |" for m in extra)
    shown = intervals is not None and set(intervals.ranges) == set(results)
    interval_head = " 95% interval over test networks |" if shown else ""
    lines = [
        f"{task.title()} on {source or 'these networks'} ({note}).",
        "",
        f"Hardware: {hardware_line}.",
        "",
        f"| model | reads | test {task.metric_label()}{unit}, mean ± std over seeds |{interval_head}{extra_head} seeds | "
        "training time per run | paper |",
        "|---|---|---|" + "---|" * (len(extra) + shown) + "---|---|---|",
    ]
    # the models that read weights only first, then those that query the networks: two kinds kept apart
    for model, runs in sorted(results.items(), key=lambda item: MODELS[item[0]].protocol != "weights"):
        paper = MODELS[model].paper.get(task.paper_key(source))
        seconds = sum(sec for _, sec in runs) / len(runs)
        cell = mean_spread([v for v, _ in runs], scale, single=" (one seed, no spread)")
        cells = "".join(f" {mean_spread(values[model], scale)} |" for values in extra.values())
        if shown:
            low, high = intervals.ranges[model]
            cells = f" {_number(low, scale)} to {_number(high, scale)} |" + cells
        lines.append(f"| {MODELS[model].label} | {MODELS[model].protocol} | {cell} |{cells} {len(runs)} | {duration(seconds)} | "
                     f"{'-' if paper is None else f'{paper:.2f}'} |")  # fmt: skip
    for label, values in (references or {}).items():
        value = f"{values[0] * 100:.2f}" if task.percent else f"{values[0]:.4g}"
        lines.append(f"| {label} | - | {value} |" + " - |" * (len(extra) + shown) + " - | - | - |")
    if shown:
        lines += ["", intervals.describe(scale)]
    return "\n".join(lines) + "\n"


def _number(value: float, scale: float) -> str:
    return f"{value * scale:.2f}" if scale == 100 else f"{value:.4g}"


@dataclass
class TableIntervals:
    """Each model's 95% bootstrap interval of its seed-averaged test metric over the test
    networks, and the paired comparisons of the best model with every other."""

    ranges: dict[str, tuple[float, float]]
    comparisons: list[Comparison]
    resamples: int
    networks: int

    def describe(self, scale: float) -> str:
        """A paragraph: what the intervals are, and which differences they tell apart."""
        text = (f"Intervals: 2.5th to 97.5th percentile of the seed-averaged test metric over {self.resamples:,} "
                f"resamples of the {self.networks:,} test networks (with replacement, the same draws for every "
                "model); the ± beside them is the spread over training seeds.")  # fmt: skip
        told = [c for c in self.comparisons if c.separated]
        untold = [c for c in self.comparisons if not c.separated]

        def pair(c: Comparison) -> str:
            points = " points" if scale == 100 else ""
            return f"{MODELS[c.a].label} - {MODELS[c.b].label}: {_number(c.low, scale)} to {_number(c.high, scale)}{points}"

        if told:
            text += (" Told apart by this test set (paired interval of the difference excludes 0; training seeds "
                     "held fixed, no correction for several comparisons): " + "; ".join(map(pair, told)) + ".")  # fmt: skip
        if untold:
            text += " Not told apart by this test set: " + "; ".join(map(pair, untold)) + "."
        return text


def table_intervals(task: Task, outputs: dict[str, list[tuple[Tensor, Tensor]]], resamples: int = RESAMPLES,
                    seed: int = 0, best: str | None = None) -> TableIntervals | None:  # fmt: skip
    """:class:`TableIntervals` of every model's runs (``{model: [(outputs, targets) per seed]}``,
    all on the same test networks), or ``None`` when there is nothing to resample."""
    if not outputs or any(not runs for runs in outputs.values()):
        return None
    networks = len(next(iter(outputs.values()))[0][1])
    if any(len(target) != networks for runs in outputs.values() for _, target in runs):
        return None  # the models were tested on different networks: nothing to pair

    def metric(output: Tensor, target: Tensor) -> float:
        return float(task.metrics(output, target)[task.metric])

    draws = bootstrap_draws(networks, resamples, seed)
    values = {model: bootstrap_values(metric, runs, draws) for model, runs in outputs.items()}
    ranges = {model: interval(v) for model, v in values.items()}
    if best is None:
        means = {model: float(v.mean()) for model, v in values.items()}
        best = (max if task.higher_is_better else min)(means, key=means.__getitem__)
    comparisons = [compare(best, values[best], model, values[model]) for model in values if model != best]
    return TableIntervals(ranges, comparisons, resamples, networks)


def _tuned_runs(cfg: ExperimentConfig, zoo: Zoo, task: Task, template: TrainConfig
                ) -> tuple[dict[tuple[str, int], TrainConfig], dict[str, Any]]:  # fmt: skip
    """The tuning protocol (:mod:`dwsnets.experiments.tuning`): per model, ``cfg.tune``
    distinct configurations trained on seed 0 and scored on validation only (every one of
    every model checked before any trains); the best one's settings then train every seed
    afresh (the winning tuning run is not reused as seed 0: its validation score was chosen
    as the best of N, and its test score would be optimistic). Returns the runs' settings and
    the record written to ``tuning.json``."""
    plans: dict[str, Any] = {}
    for model in cfg.model_names():
        base = replace(template, model=model, seed=0)
        if MODELS[model].fit is None:
            space = (cfg.tune_grid or {}).get(model) or default_space(model, base.resolved().lr)
            plans[model] = (space, candidates(base, space, cfg.tune, model))
        else:
            plans[model] = None
    configs: dict[tuple[str, int], TrainConfig] = {}
    record: dict[str, Any] = {}
    for model, plan in plans.items():
        base = replace(template, model=model, seed=0)
        if plan is None:  # fitted in one call, with its own validation-chosen grid
            configs.update({(model, s): replace(base, seed=s).resolved() for s in range(cfg.seeds)})
            record[model] = {"tuned": False, "why": "fitted in one call; chooses on validation with its own grid"}
            continue
        space, tries = plan
        tried = []
        for k, (overrides, config) in enumerate(tries):
            if rank_and_world()[0] == 0:
                print(f"  tuning {model}: configuration {k + 1}/{cfg.tune} {overrides or '(defaults)'}", flush=True)
            fitted = Trainer(zoo, cfg.out / f"{model}-tune{k}", config, cfg.device).fit()
            value = fitted["best"]
            tried.append({"index": k, "overrides": overrides, f"val_{task.metric}": value})
        scored = [t for t in tried if t[f"val_{task.metric}"] == t[f"val_{task.metric}"]]  # NaN: never chosen
        best = scored[0] if scored else tried[0]
        for entry in scored[1:]:
            if task.better(entry[f"val_{task.metric}"], best[f"val_{task.metric}"]):
                best = entry
        chosen = tries[best["index"]][1]
        configs.update({(model, s): replace(chosen, seed=s).resolved() for s in range(cfg.seeds)})
        record[model] = {"tuned": True, "space": space, "tried": tried, "chosen": best}
    if rank_and_world()[0] == 0:
        write_tuning_record(cfg.out / "tuning.json", {"budget": cfg.tune, "metric": task.metric, "models": record})
    return configs, record


def run_experiment(cfg: ExperimentConfig) -> list[Path]:
    """Run the experiment ``cfg`` describes and write its table (and pictures) under
    ``cfg.out``; returns the files written (none on ranks other than 0)."""
    cfg.check()
    zoo = Zoo(cfg.zoo)
    cfg.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    views = cfg.train_views or [cfg.train.train_views]
    template = replace(cfg.train, train_views=views[0])
    task = make_task(template.task, **template.task_options)
    if cfg.train_sizes:
        return _size_sweep(cfg, zoo, task, template, t0)
    if len(views) > 1:
        return _views_table(cfg, zoo, task, views, t0)
    references: dict[str, list[float]] = {}
    extra: dict[str, dict[str, list[float]]] = {}
    picture = cfg.out / f"{task.name}-test.png"
    predictions: dict[str, tuple[Any, Any]] = {}
    outputs: dict[str, list[tuple[Tensor, Tensor]]] = {}
    configs, tuning = cfg.runs(template), None
    if cfg.tune:
        configs, tuning = _tuned_runs(cfg, zoo, task, template)
    results = run_table(zoo, configs, cfg.out, cfg.device, references, picture, extra, predictions, outputs)
    if not results:  # not rank 0 under torchrun
        return []
    n_train = zoo.split_size("train") // (zoo.split_views("train") if template.train_views == "first" else 1)
    n_train = n_train if template.max_train is None else min(template.max_train, n_train)
    n_test = zoo.split_size("test") // (zoo.split_views("test") if template.eval_views == "first" else 1)
    note = (f"{plural(n_train, 'training network')}, {plural(n_test, 'test network')}, "
            f"{plural(template.epochs, 'epoch')}, batch {template.batch_size}, {duration(time.perf_counter() - t0)} "
            f"for this invocation; finished runs found in {cfg.out} are reused")  # fmt: skip
    if tuning is not None:
        one_call = [MODELS[m].label for m, r in tuning.items() if not r["tuned"]]
        note += (f"; every model tuned alike: {plural(cfg.tune, 'configuration')} each, scored on validation only, "
                 "its seeds then trained afresh with the best (batch and learning rate as tuned: tuning.json)")  # fmt: skip
        if one_call:
            note += f"; {', '.join(one_call)} chose on validation with its own grid for each seed"
    extra = {metric: values for metric, values in extra.items() if set(values) == set(results)}  # every model has it
    task.load_state_dict(read_run_record(cfg.out / f"{next(iter(results))}-seed0")["task_state"])
    means = {m: sum(v for v, _ in runs) / len(runs) for m, runs in results.items()}
    best = (max if task.higher_is_better else min)(means, key=means.__getitem__)  # as the table shows them
    intervals = table_intervals(task, outputs, best=best) if set(outputs) == set(results) else None
    md = markdown_table(results, task, zoo.source, note, hardware(cfg.device), references, extra, intervals)
    (cfg.out / "table.md").write_text(md)
    plot_table_curves(cfg.out / "curves.png", cfg.out, list(results), cfg.seeds, task, f"{task.name} on {zoo.name}")
    print("\n" + md)
    written = [cfg.out / "table.md", cfg.out / "curves.png", *([picture] if picture.exists() else [])]
    if tuning is not None:
        written.append(cfg.out / "tuning.json")
    if predictions:
        shown = {MODELS[m].label: predictions[m] for m in ("dwsnet", "statnn", "statnn-gbt") if m in predictions}
        plot_prediction_scatter(cfg.out / "predictions.png", shown or {MODELS[m].label: v for m, v in
                                predictions.items()}, f"test networks of {zoo.name} (seed 0)")  # fmt: skip
        written.append(cfg.out / "predictions.png")
    print("written to " + ", ".join(map(str, written)))
    return written


def _views_table(cfg: ExperimentConfig, zoo: Zoo, task: Task, settings: list[str], t0: float) -> list[Path]:
    """Every model trained on one INR per image and on all ``K`` of them, side by side;
    validation and test as ``eval_views`` says."""
    k = int(zoo.config.get("views", 1))
    if k < 2:
        raise TrainingError(
            f"{zoo.path} holds one INR per image: comparing --train-views needs a zoo fitted with --views K"
        )
    names = {"first": "1 view (each image's first INR)", "all": f"{k} views (all, every epoch)",
             "one": f"{k} views (one drawn per image and epoch)"}  # fmt: skip
    table: dict[str, dict[str, Runs]] = {}
    for setting in settings:
        configs = cfg.runs(replace(cfg.train, train_views=setting))
        for model, values in run_table(zoo, configs, cfg.out / f"views-{setting}", cfg.device).items():
            table.setdefault(model, {})[setting] = values
    if not table:  # not rank 0 under torchrun
        return []
    scale = 100 if task.percent else 1
    if zoo.split_views("test") == 1:
        tested = "the one INR of each test image"
    else:
        tested = f"{'every' if cfg.train.eval_views == 'all' else 'the first'} INR of each test image"
    lines = [
        f"Test {task.metric_label()} by training views on {zoo.source or zoo.name} "
        f"({plural(zoo.split_size('train') // k, 'training image')}, {plural(cfg.train.epochs, 'epoch')}, batch "
        f"{cfg.train.batch_size}, {plural(cfg.seeds, 'seed')}, test on {tested}, "
        f"{duration(time.perf_counter() - t0)} for this invocation). Mean ± std over seeds"
        + (" (%)." if scale == 100 else "."),
        "",
        f"Hardware: {hardware(cfg.device)}.",
        "",
        "| model | " + " | ".join(names[s] for s in settings) + " |",
        "|---|" + "---|" * len(settings),
    ]
    md = "\n".join(lines + grid_rows(table, settings, scale)) + "\n"
    (cfg.out / "table.md").write_text(md)
    print("\n" + md)
    print(f"written to {cfg.out / 'table.md'}")
    return [cfg.out / "table.md"]


def _size_sweep(cfg: ExperimentConfig, zoo: Zoo, task: Task, template: TrainConfig, t0: float) -> list[Path]:
    """Every model at every training-set size (the first N training networks), over seeds:
    a markdown grid and a picture of the test metric against the size."""
    available = zoo.split_size("train")
    sizes = sorted(set(cfg.train_sizes))
    # every size gets the same optimiser steps and validations unless epoch_size says otherwise
    epoch_size = template.epoch_size or min(max(sizes), available)
    sweep: dict[str, dict[int, Runs]] = {}
    # the task's further table metrics, as grids of their own: {metric: {model: {size: runs}}}
    further: dict[str, dict[str, dict[int, Runs]]] = {}
    for size in sizes:
        configs = cfg.runs(replace(template, max_train=size, epoch_size=epoch_size))
        extra: dict[str, dict[str, list[float]]] = {}
        for model, values in run_table(zoo, configs, cfg.out / f"n{size}", cfg.device, extra=extra).items():
            sweep.setdefault(model, {})[min(size, available)] = values
        for metric, per_model in extra.items():
            for model, numbers in per_model.items():
                further.setdefault(metric, {}).setdefault(model, {})[min(size, available)] = [(v, 0.0) for v in numbers]
    if not sweep:  # not rank 0 under torchrun
        return []
    scale = 100 if task.percent else 1
    used = sorted({n for per_size in sweep.values() for n in per_size})
    lines = [
        f"Test {task.metric_label()} by training-set size on {zoo.source or zoo.name} "
        f"({plural(template.epochs, 'epoch')} of {epoch_size:,} networks each, whatever the size, batch "
        f"{template.batch_size}, {plural(cfg.seeds, 'seed')}, {duration(time.perf_counter() - t0)} for this "
        f"invocation). Mean ± std over seeds" + (" (%)." if scale == 100 else "."),
        "",
        f"Hardware: {hardware(cfg.device)}.",
        "",
    ]
    header = ["| model | " + " | ".join(f"n = {n}" for n in used) + " |", "|---|" + "---|" * len(used)]
    rows = lines + header + grid_rows(sweep, used, scale)
    # the further metrics that every run has, in the table and the picture alike
    shown = {m: g for m, g in further.items()
             if set(g) == set(sweep) and all(set(per_size) == set(used) for per_size in g.values())}  # fmt: skip
    for metric, grid in shown.items():
        rows += ["", f"Test {task.metric_label(metric)}, the same runs:", "", *header, *grid_rows(grid, used, scale)]
    md = "\n".join(rows) + "\n"
    (cfg.out / "table.md").write_text(md)
    plot_sweep(cfg.out / "sweep.png", sweep, task, f"{task.name} on {zoo.source or zoo.name}", shown)
    print("\n" + md)
    print(f"written to {cfg.out / 'table.md'} and {cfg.out / 'sweep.png'}")
    return [cfg.out / "table.md", cfg.out / "sweep.png"]
