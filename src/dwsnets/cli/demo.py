"""``dwsnets demo``: the main job, start to finish on a CPU with no download."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from ..baselines import MODELS
from ..core.function import NetworkFunction
from ..experiments import config_from_flags, run_table
from ..training.config import TrainConfig
from ..zoo.build import build_zoo
from ..zoo.config import ZooConfig
from ..zoo.dataset import InMemoryZoo
from ..zoo.reader import Zoo
from ..zoo.split import ZooSplit
from ..zoo.synthetic import make_sine_mlp_zoo
from .common import DefaultsFormatter, add_runtime_args, setup_runtime
from .train import _parse_models, add_training_args
from .zoo import FitProgress

__all__ = ["add_parsers"]


def _train_config(args: argparse.Namespace, model: str) -> dict[tuple[str, int], TrainConfig]:
    """The demo's run of ``model``: the defaults of ``dwsnets train classify`` (read from that
    command's own parser, so they cannot drift apart) with the demo's epochs, batch size and
    seed, evaluated on every INR of each test image."""
    parser = argparse.ArgumentParser()
    add_training_args(parser)
    flags = {**vars(parser.parse_args(["--zoo", "-"])), "task": "classify", "eval_views": "all", "model": model,
             "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed}  # fmt: skip
    return {(model, args.seed): config_from_flags(flags).resolved()}


def _demo_models(text: str) -> list[str]:
    """The ``--models`` list (names checked as ``table --models`` checks them), each once."""
    return list(dict.fromkeys(_parse_models(text, allow_all=False) or ()))  # never None: all is refused


def _report(title: str, results: dict[str, list[tuple[float, float]]], chance: float, out: str) -> None:
    print(f"\n{title}")
    width = max([22, *(len(MODELS[model].label) for model in results)])
    for model, runs in results.items():
        print(f"  {MODELS[model].label:<{width}} {runs[0][0] * 100:6.2f}%")
    print(f"  {'(chance)':<{width}} {chance * 100:6.2f}%")
    print("Runs (checkpoints, metrics, curves.png) are in", out)


def cmd_demo(args: argparse.Namespace) -> int:
    """Main job: digits zoo -> DWSNet, the MLP baseline and the probe -> comparison."""
    setup_runtime(args)
    if args.synthetic:
        return _demo_synthetic(args)
    t_start = time.perf_counter()
    zoo_dir = Path(args.zoo_dir)
    models = _demo_models(args.models)
    print(
        f"[1/{len(models) + 1}] fitting {args.views} SIREN(s) per image of scikit-learn's digits (each from its own seed) "
        f"into {zoo_dir} (resumes if interrupted)",
        flush=True,
    )
    fit_progress = FitProgress(str(zoo_dir))
    try:
        build_zoo(zoo_dir, ZooConfig(source="digits", views=args.views, max_per_split=args.max_per_split),
                  on_progress=fit_progress)  # fmt: skip
    finally:
        fit_progress.close()
    zoo = Zoo(zoo_dir)
    summary = zoo.summary()
    print(f"      {summary['inrs']} INRs, PSNR median {summary['psnr_median']:.1f} dB", flush=True)
    results = {}
    for step, model in enumerate(models, start=2):
        print(f"[{step}/{len(models) + 1}] training {MODELS[model].label} ({args.epochs} epochs)", flush=True)
        results.update(run_table(zoo, _train_config(args, model), Path(args.out), args.device))
    _report(
        f"Digit classification from INR weights ({zoo.split_size('test')} test INRs), "
        f"total {time.perf_counter() - t_start:.0f}s",
        results,
        0.1,
        args.out,
    )
    return 0


def _demo_synthetic(args: argparse.Namespace) -> int:
    """ReLU MLPs fitted to sine waves of a few frequencies; classify the frequency."""
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    print(
        f"Fitting a zoo of {args.networks} ReLU MLPs 1-{args.hidden}-{args.hidden}-1 to sine waves "
        f"({args.classes} frequency classes)...",
        flush=True,
    )
    made = make_sine_mlp_zoo(args.networks, hidden=args.hidden, n_classes=args.classes, seed=args.seed)
    print(f"  done in {time.perf_counter() - t0:.1f}s, median fit MSE {made.mse.median():.4f}", flush=True)
    everything = ZooSplit(made.weights, made.labels, {"amplitude": made.amplitudes, "mse": made.mse})
    n = len(everything)
    n_test = n // 5
    n_val = n // 10
    data = InMemoryZoo(
        {
            "train": everything[n_test + n_val :],
            "val": everything[n_test : n_test + n_val],
            "test": everything[:n_test],
        },
        name=f"sine-mlps-{n}",
        source="sine-mlp",
        activations="relu",  # what makes their symmetry group (dwsnets.core.symmetry)
        # how they run (what the models that query networks need): x in [-pi, pi], as they were fitted
        function=NetworkFunction("mlp", "relu", (1,), domain=(-math.pi, math.pi)),
    )
    configs = {key: cfg for model in _demo_models(args.models) for key, cfg in _train_config(args, model).items()}
    results = run_table(data, configs, Path(args.out), args.device)
    test_labels = data.load("test").labels
    chance = float(torch.bincount(test_labels).max()) / len(test_labels)
    _report(
        f"Frequency classification from weights ({n - n_test - n_val} train / {n_test} test networks, "
        f"{args.epochs} epochs)",
        results,
        chance,
        args.out,
    )
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo",
        help="main job: digits INR zoo, DWSNet vs MLP vs probing (minutes on a CPU)",
        formatter_class=DefaultsFormatter,
    )
    demo.add_argument("--zoo-dir", default="zoos/digits-demo", help="where the digits zoo is fitted")
    demo.add_argument("--views", type=int, default=8, help="INRs per digit image (more training INRs)")
    demo.add_argument("--out", default="runs/demo-digits", help="directory of the training runs")
    demo.add_argument("--batch-size", type=int, default=64, help="networks per optimiser step")
    demo.add_argument("--epochs", type=int, default=10, help="training epochs per model")
    demo.add_argument("--seed", type=int, default=0, help="seed of the training runs")
    demo.add_argument("--models", default="dwsnet,mlp,probe",
                      help="models to train and compare, comma-separated (probe: queries the networks at learned "
                           "inputs instead of reading their weights, seconds of training); dwsnet,sign-equivariant,mlp "
                           "adds the model "
                           "that train classify uses on SIREN zoos (on this zoo about 11 points above DWSNet at "
                           "2.5 times its training time, docs/results.md)")  # fmt: skip
    demo.add_argument("--max-per-split", type=int, default=None,
                      help="at most this many digit images per split (a quick check; the full demo uses all)")  # fmt: skip
    demo.add_argument(
        "--synthetic",
        action="store_true",
        help="instead: a synthetic zoo of ReLU MLPs fitted to sine waves (no INR fitting)",
    )
    demo.add_argument("--networks", type=int, default=2000, help="networks of the synthetic zoo")
    demo.add_argument("--hidden", type=int, default=16, help="hidden width of the synthetic zoo's MLPs")
    demo.add_argument("--classes", type=int, default=4, help="frequency classes of the synthetic zoo")
    add_runtime_args(demo)
    demo.set_defaults(func=cmd_demo)
