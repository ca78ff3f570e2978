"""``dwsnets train``, ``evaluate`` and ``table``: arguments in, :mod:`dwsnets.experiments` out.

The options of each task come from the task itself (:attr:`dwsnets.tasks.Task.options`),
so a task registered anywhere (:func:`dwsnets.tasks.register_task`) gets ``train NAME``,
``evaluate`` and ``table --task NAME`` with no change here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..baselines import MODELS, model_spec
from ..experiments import (
    ExperimentConfig,
    config_from_flags,
    default_model_for,
    evaluate_ensemble,
    evaluate_run,
    run_experiment,
    train_and_test,
)
from ..experiments.tuning import read_grid_file
from ..tasks import TASKS, TaskOption
from ..training.config import TrainConfig
from ..training.distributed import init_distributed
from .common import DefaultsFormatter, UsageError, add_runtime_args, setup_runtime

__all__ = ["add_parsers", "add_training_args", "train_config"]


def train_config(args: argparse.Namespace, model: str | None = None, seed: int | None = None) -> TrainConfig:
    """The resolved :class:`TrainConfig` of the command line's settings (``model`` and
    ``seed`` replace the arguments' own when given)."""
    flags = {**vars(args), **({"model": model} if model else {}), **({"seed": seed} if seed is not None else {})}
    return config_from_flags(flags).resolved()


def _default_model(zoo: str, task: str) -> str:
    """``--model``'s default for this zoo and task (:func:`dwsnets.experiments.default_model_for`);
    ``dwsnet`` where the zoo cannot be read (the trainer then says why)."""
    from ..zoo.errors import ZooError

    try:
        return default_model_for(zoo, task)
    except ZooError:
        return "dwsnet"


def _parse_models(text: str, *, allow_all: bool = True) -> list[str] | None:
    """Model names, each checked against the registry; ``None`` for ``all`` (every model that
    can learn the task on the zoo's layout) where ``allow_all``."""
    example = "for example dwsnet,sign-equivariant,mlp"
    if text.strip() == "all":
        if not allow_all:
            raise UsageError(f"--models takes model names here, not all; {example}")
        return None
    models = [m.strip() for m in text.split(",") if m.strip()]
    if not models:
        raise UsageError(
            f"--models names no model; give a comma-separated list{' or all' if allow_all else ''}, {example}"
        )
    for m in models:
        model_spec(m)  # raises with the list of choices
    return models


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


def _parse_train_views(text: str) -> list[str]:
    settings = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in settings if v not in ("all", "one", "first")]
    if not settings or bad:
        raise UsageError(f"--train-views takes all, one or first (table: several, comma-separated), got {text!r}")
    return list(dict.fromkeys(settings))


def cmd_train(args: argparse.Namespace) -> int:
    setup_runtime(args)
    init_distributed(args.device)
    if args.model is None:
        args.model = _default_model(args.zoo, args.task)
    config = train_config(args)
    out = Path(args.out or f"runs/{Path(args.zoo).name}-{args.task}-{args.model}-seed{args.seed}")
    done = train_and_test(args.zoo, out, config, args.device)
    if done is not None:
        task = done.trainer.task
        print(f"{args.model}: best validation {task.metric} {task.format_metric(done.best)}, "
              f"test {task.describe(done.test)}  ({out})")  # fmt: skip
    return 0


def _print_confusion(metrics: dict) -> None:
    confusion = metrics.get("confusion")
    if confusion is not None:
        print(f"correct: {int(confusion.trace())}/{int(confusion.sum())}")
        print("confusion matrix (rows: true class, columns: predicted):")
        for row in confusion.tolist():
            print(" ".join(f"{v:5d}" for v in row))


def cmd_evaluate(args: argparse.Namespace) -> int:
    setup_runtime(args)
    if len(args.run) > 1:
        return _evaluate_ensemble(args)
    if args.out is not None:
        raise UsageError("--out is for ensembles (several --run); a single run's pictures go into its directory")
    result = evaluate_run(Path(args.run[0]), args.zoo, args.split, args.checkpoint, args.device)
    task, metrics = result["task"], result["metrics"]
    print(f"{result['config'].model} on {args.split}: {task.describe(metrics)}, loss {metrics['loss']:.4f}")
    _print_confusion(metrics)
    for picture in result["pictures"]:
        print(f"picture: {picture}")
    return 0


def _evaluate_ensemble(args: argparse.Namespace) -> int:
    """Several ``--run``: each member's metrics, then the ensemble's (and its files under ``--out``)."""
    result = evaluate_ensemble(args.run, args.zoo, args.split, args.checkpoint, args.device)
    task = result.task
    print(f"ensemble of {len(result.members)} runs on {args.split} of {result.zoo}:")
    for run, config, metrics in result.members:
        print(f"  {config.model} ({run}): {task.describe(metrics)}")
    print(f"ensemble: {task.describe(result.metrics)}, loss {result.metrics['loss']:.4f}")
    _print_confusion(result.metrics)
    if args.out is not None:
        numbers, *pictures = result.save(args.out)
        print(f"numbers: {numbers}")
        for picture in pictures:
            print(f"picture: {picture}")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    views = _parse_train_views(args.train_views)
    experiment = ExperimentConfig(
        zoo=args.zoo,
        out=Path(args.out or f"runs/table-{Path(args.zoo).name}-{args.task}"),
        train=config_from_flags({**vars(args), "train_views": views[0]}),
        models=_parse_models(args.models),
        seeds=args.seeds,
        train_sizes=_parse_sizes(args.train_sizes),
        train_views=views,
        device=args.device,
        tune=args.tune,
        tune_grid=read_grid_file(args.tune_grid) if args.tune_grid else None,
    )
    if args.tune_grid and not args.tune:
        raise UsageError("--tune-grid gives the search spaces of --tune N: name the budget too")
    if args.seeds < 1:  # named as the flag; ExperimentConfig.check says it for Python callers
        raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
    setup_runtime(args)
    init_distributed(args.device)
    experiment.check()
    experiment.runs()  # every run's settings checked before any trains
    run_experiment(experiment)
    return 0


def add_training_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--zoo", required=True, help="zoo directory (dwsnets fit-inrs)")
    p.add_argument("--epochs", type=int, default=30, help="training epochs")
    p.add_argument("--batch-size", type=int, default=128, help="networks per optimiser step")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the model's own, see dwsnets.baselines)")
    p.add_argument("--weight-decay", type=float, help=f"AdamW weight decay (default {TrainConfig.weight_decay})")
    p.add_argument("--warmup-fraction", type=float,
                   help=f"fraction of the steps with a linear learning-rate warm-up (default {TrainConfig.warmup_fraction})")  # fmt: skip
    p.add_argument("--clip-grad", type=float,
                   help=f"clip the gradient's norm to this (0: off; default {TrainConfig.clip_grad})")  # fmt: skip
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast where it applies (CUDA; the CPU with --bf16); --no-amp trains in float32 "
                        "everywhere (default: on)")  # fmt: skip
    p.add_argument("--augment", choices=["on", "off"], help="random hidden permutations (default: per model)")
    p.add_argument("--sign-flips", action=argparse.BooleanOptionalAction, default=None,
                   help="random sign flips of hidden neurons (incoming weights, bias and outgoing weights): a "
                        "symmetry of SIRENs and other odd activations, refused for ReLU classifier zoos (default: on "
                        "for DWSNet classifying SIRENs, where it won on validation; off otherwise)")  # fmt: skip
    p.add_argument("--canonical-signs", action="store_true",
                   help="every split in its sign canonical form (each neuron's largest incoming entry positive; "
                        "one twin per network of an odd-activation zoo), taken again after every augmentation, "
                        "instead of --sign-flips; refused where an activation is not odd, and for tasks whose "
                        "outputs are networks")  # fmt: skip
    p.add_argument("--activation-symmetries", action="store_true",
                   help="each network's own activation symmetry as augmentation (ReLU: positive rescaling of hidden "
                        "neurons; tanh: sign flips), from the activation a CNN zoo records per network")  # fmt: skip
    p.add_argument("--noise", type=float, default=0.0, help="Gaussian noise, fraction of each tensor's std")
    p.add_argument("--ema-epochs", type=float, default=0.0,
                   help="validate and test an exponential moving average of the weights over about this many "
                        "epochs of steps (0: the last weights)")  # fmt: skip
    p.add_argument("--entry-dropout", type=float, default=0.0, help="probability of zeroing a weight entry")
    p.add_argument("--max-train", type=int, help="train on the first N training networks only")
    p.add_argument(
        "--epoch-size",
        type=int,
        help="training networks per epoch (default: one pass over the training set; more cycles through it, each "
        "pass reshuffled; with --train-sizes: the largest size, so that every size gets the same optimiser steps)",
    )
    p.add_argument("--model-arg", dest="model_args", action="append", metavar="KEY=VALUE",
                   help="a keyword argument of the model's builder, e.g. hidden_channels=64 or head_hidden=(512,); "
                        "repeat for several (checked against the builder's signature)")  # fmt: skip
    exact = p.add_argument_group(
        "exact signal transforms",
        "random per network, applied to the weights so that the INR renders the transformed image exactly",
    )
    exact.add_argument("--rotate", type=float, default=0.0, help="rotation up to this many degrees either way")
    exact.add_argument("--scale", type=float, default=0.0, help="each axis scaled by exp(u), |u| up to this")
    exact.add_argument("--shear", type=float, default=0.0, help="shear factor up to this either way")
    exact.add_argument("--translate", type=float, default=0.0, help="shift up to this (the image spans [-1, 1])")
    exact.add_argument("--flip", default="none",
                       help="mirror left-right (lr), up-down (ud) or both, each with probability 1/2; or input axes "
                            "as numbers, e.g. 0,2")  # fmt: skip
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
                   help="fuse batch norm's passes (and the sign-equivariant model's layer steps) with torch.compile "
                        "(needs a C++ compiler on the CPU; seconds to compile; with --bf16 about 1.7x faster steps "
                        "on this project's CPU)")  # fmt: skip
    p.add_argument("--tensorboard", action="store_true",
                   help="also log every epoch to RUN/tensorboard (needs: pip install 'dwsnets[tensorboard]')")  # fmt: skip
    p.add_argument("--config", metavar="FILE",
                   help="a TOML file of flags (a run's config.toml reproduces it); flags given here win")  # fmt: skip
    add_runtime_args(p)


def _add_task_options(p: argparse.ArgumentParser, options: list[TaskOption], title: str) -> None:
    if not options:
        return
    group = p.add_argument_group(title)
    for opt in options:
        group.add_argument(opt.option_string, dest=opt.dest, default=opt.default, type=opt.type, choices=opt.choices,
                           help=opt.help)  # fmt: skip


def _all_task_options() -> list[TaskOption]:
    """Every registered task's options, once each; two tasks may share a flag only with one default."""
    seen: dict[str, TaskOption] = {}
    for task in TASKS.values():
        for opt in task.options:
            other = seen.setdefault(opt.dest, opt)
            if (other.default, other.option_string) != (opt.default, opt.option_string):
                raise UsageError(f"two tasks declare the option {opt.dest} differently ({other} and {opt})")
    return list(seen.values())


def add_parsers(sub: argparse._SubParsersAction, commands: dict[str, argparse.ArgumentParser]) -> None:
    """``train TASK`` for every registered task, ``evaluate`` and ``table``; ``commands``
    collects each command's parser by its words (``"train classify"``) for ``--config``."""
    fmt = DefaultsFormatter
    train = sub.add_parser("train", help="train a model for a task on a zoo")
    train_sub = train.add_subparsers(dest="task_command", required=True)
    for name, task in TASKS.items():
        p = train_sub.add_parser(name, help=task.help or name, formatter_class=fmt)
        p.set_defaults(task=name)
        add_training_args(p)
        _add_task_options(p, list(task.options), f"the {name} task")
        p.add_argument("--model", choices=list(MODELS),
                       help="model to train (default: sign-equivariant to classify a zoo of SIRENs, dwsnet otherwise)")  # fmt: skip
        p.add_argument("--seed", type=int, default=0, help="seed of the model's initialisation and the data order")
        p.add_argument("--out", help="run directory (default runs/ZOO-TASK-MODEL-seedN); resumed if it exists")
        p.set_defaults(func=cmd_train)
        commands[f"train {name}"] = p

    evaluate = sub.add_parser("evaluate", help="the test metrics of a trained run, or of an ensemble of runs",
                              formatter_class=fmt)  # fmt: skip
    evaluate.add_argument("--run", required=True, action="append",
                          help="run directory; repeat it for an ensemble (the members' outputs averaged: class "
                               "probabilities for classifiers), which every member reads on the same zoo")  # fmt: skip
    evaluate.add_argument("--out", help="with several --run: a directory for the ensemble's numbers (JSON) and, "
                                        "for classifiers, its confusion matrix (PNG)")  # fmt: skip
    evaluate.add_argument("--zoo", help="zoo to evaluate on (default: the one the run was trained on; any zoo whose "
                                        "networks have the same layout works)")  # fmt: skip
    evaluate.add_argument("--split", default="test", help="split to evaluate")
    evaluate.add_argument("--checkpoint", default="best", choices=["best", "last"], help="which checkpoint")
    add_runtime_args(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    table = sub.add_parser("table", help="every model over several seeds, markdown beside the paper",
                           formatter_class=fmt)  # fmt: skip
    add_training_args(table)
    table.add_argument("--task", default="classify", choices=list(TASKS), help="what the models learn")
    _add_task_options(table, _all_task_options(), "task options (each task reads its own)")
    table.add_argument("--models", default="all",
                       help="comma-separated model names, or all (every model that can learn the task on the zoo's "
                            "layout: CNN zoos leave out the MLP-only baselines)")  # fmt: skip
    table.add_argument("--seeds", type=int, default=3, help="seeds per model")
    table.add_argument("--tune", type=int, default=0, metavar="N",
                       help="tune every model alike first: N configurations each (its defaults, then draws from its "
                            "search space), trained once and scored on validation only; the seeds then train the "
                            "best (0: each model's defaults)")  # fmt: skip
    table.add_argument("--tune-grid", metavar="FILE",
                       help="a TOML file of search spaces, one [MODEL] table of lists per model (default: the "
                            "model's learning rate times 1/4 to 4, batch 64 or 128, weight decay 0 to 5e-3)")  # fmt: skip
    table.add_argument("--train-sizes", help="comma-separated training-set sizes: every model at each (the first N "
                                             "training networks), a grid and a plot of the test metric against N")  # fmt: skip
    table.add_argument("--out", help="default runs/table-ZOO-TASK")
    table.set_defaults(func=cmd_table)
    commands["table"] = table
