"""Command-line interface: ``dwsnets <command>``.

Commands:
    demo        the main job: fit a digits INR zoo, train DWSNet and the MLP baseline, compare
    train       train a model on a zoo (``dwsnets train classify --zoo Z --model dwsnet``)
    evaluate    test accuracy and confusion matrix of a trained run
    table       every model over several seeds, as a markdown table beside the paper's numbers
    fit-inrs    fit one SIREN per image (or sine wave) into a sharded, resumable zoo
    zoo-info    verify a zoo and print its splits and PSNR statistics
    merge-zoos  join zoo parts fitted in separate directories
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

from .data.images import DataNotFoundError
from .data.zoo import ZooError
from .training import TrainingError
from .weight_space import WeightSpaceError

# errors that mean bad input or state: reported in one line, never as a traceback
USER_ERRORS = (TrainingError, ZooError, WeightSpaceError, DataNotFoundError)

__all__ = ["main"]


def _progress(iterable=None, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


class _FitProgress:
    """Progress bar for :func:`dwsnets.data.zoo.build_zoo` events (INRs done, INR-steps/s,
    mean PSNR of the INRs still fitting)."""

    def __init__(self, label: str) -> None:
        self.label, self.bar, self.done = label, None, 0

    def __call__(self, event: dict) -> None:
        if event["event"] == "plan":
            print(f"{self.label}: {event['shards']} shard(s) for this process, {event['todo']} to fit "
                  f"({event['inrs']} INRs; {event['skipped_inrs']} already done)", flush=True)
            if event["inrs"]:
                self.bar = _progress(total=event["inrs"], unit="INR", desc="fitting", smoothing=0.05,
                                     mininterval=1.0, dynamic_ncols=True)
            return
        if self.bar is None:
            return
        if event["finished"] > self.done:
            self.bar.update(event["finished"] - self.done)
            self.done = event["finished"]
        if event["event"] == "step" and event["step"] % 10 == 0 and event["active"] > 0:
            rate = event["inr_steps"] / max(event["elapsed"], 1e-9)
            self.bar.set_postfix_str(f"{event['shard']} step {event['step']} active {event['active']} "
                                     f"{rate:,.0f} INR-steps/s mean {event['mean_psnr']:.1f} dB")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _train_classifier(model, train_x, train_y, test_x, test_y, epochs, lr, batch, desc, augment=None):
    """Minimal AdamW + one-cycle loop used by the demo; returns test accuracy."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * ((len(train_y) + batch - 1) // batch)
    )
    n = len(train_y)
    bar = _progress(range(epochs), desc=desc, leave=False)
    for _ in bar:
        model.train()
        order = torch.randperm(n)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            x = train_x[idx]
            if augment is not None:
                x = augment(x)
            loss = nn.functional.cross_entropy(model(x), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(test_x[i : i + 512]).argmax(1) for i in range(0, len(test_y), 512)])
    return float((pred == test_y).float().mean())


class _FlatMLP(nn.Module):
    """Baseline: an MLP on the flattened weight vector (no symmetry)."""

    def __init__(self, n_in: int, n_out: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_out)
        )

    def forward(self, ws):
        return self.net(ws.flatten())


def cmd_demo_synthetic(args: argparse.Namespace) -> int:
    from .data.synthetic import make_sine_mlp_zoo
    from .models import DWSNet

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    print(f"Fitting a zoo of {args.networks} ReLU MLPs 1-{args.hidden}-{args.hidden}-1 to sine waves "
          f"({args.classes} frequency classes)...", flush=True)
    zoo = make_sine_mlp_zoo(args.networks, hidden=args.hidden, n_classes=args.classes, seed=args.seed)
    print(f"  done in {time.perf_counter() - t0:.1f}s, median fit MSE {zoo.mse.median():.4f}", flush=True)
    n_test = args.networks // 5
    train, test = zoo.weights[n_test:], zoo.weights[:n_test]
    train_y, test_y = zoo.labels[n_test:], zoo.labels[:n_test]
    sizes = zoo.weights.layer_sizes

    results = {}
    dws = DWSNet(sizes, args.classes, hidden_channels=16, num_layers=3, head_hidden=(64,))
    dws.input_norm.fit(train)
    t0 = time.perf_counter()
    results["DWSNet"] = (_train_classifier(dws, train, train_y, test, test_y, args.epochs, 3e-3, 64, "DWSNet"),
                         time.perf_counter() - t0)
    mlp = _FlatMLP(train.flatten().shape[1], args.classes)
    norm = dws.input_norm  # same per-tensor standardisation for a fair comparison

    class Normed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mlp = mlp

        def forward(self, ws):
            return self.mlp(norm(ws))

    t0 = time.perf_counter()
    results["MLP on flat weights"] = (
        _train_classifier(Normed(), train, train_y, test, test_y, args.epochs, 1e-3, 64, "MLP"),
        time.perf_counter() - t0,
    )
    chance = float(torch.bincount(test_y).max()) / len(test_y)
    print(f"\nFrequency classification from weights ({len(train_y)} train / {len(test_y)} test networks, "
          f"{args.epochs} epochs)")
    print(f"{'model':<22} {'test accuracy':>13} {'train time':>11}")
    for name, (acc, secs) in results.items():
        print(f"{name:<22} {acc * 100:12.1f}% {secs:10.1f}s")
    print(f"{'(majority class)':<22} {chance * 100:12.1f}%")
    return 0


PAPER_TABLE = {
    # Navon et al. 2023, INR classification test accuracy (%); MNIST lists only the numbers
    # quoted in this project's issue
    "fashion-mnist": {"mlp": 19.91, "mlp-aug": 22.76, "mlp-align": 47.79, "inr2vec": 22.33, "transformer": 26.97,
                      "dwsnet": 67.06},
    "mnist": {"mlp": 17.55, "mlp-align": 58.98, "dwsnet": 85.71},
}
MODEL_NAMES = {"dwsnet": "DWSNet", "mlp": "MLP", "mlp-aug": "MLP + permutation aug.", "mlp-align": "MLP + alignment",
               "transformer": "Transformer", "inr2vec": "inr2vec-style", "deepsets": "DeepSets (neurons)"}


def _train_config(args: argparse.Namespace, model: str, seed: int):
    from .training import TrainConfig

    augment = None if args.augment is None else args.augment == "on"
    return TrainConfig(model=model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       weight_decay=args.weight_decay, augment_permute=augment, noise=args.noise,
                       entry_dropout=args.entry_dropout, seed=seed, max_train=args.max_train)


def _setup_device(args: argparse.Namespace) -> str:
    from .training import init_distributed

    if args.threads:
        torch.set_num_threads(args.threads)
    init_distributed(args.device)
    return args.device


def cmd_train(args: argparse.Namespace) -> int:
    from .training import Trainer

    device = _setup_device(args)
    out = args.out or f"runs/{Path(args.zoo).name}-{args.model}-seed{args.seed}"
    try:
        trainer = Trainer(args.zoo, out, _train_config(args, args.model, args.seed), device)
        result = trainer.fit()
        test = trainer.evaluate("test") if trainer.rank == 0 else None
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if test is not None:
        print(f"{args.model}: best validation accuracy {result['best_val_accuracy'] * 100:.2f}%, "
              f"test accuracy {test['accuracy'] * 100:.2f}%  ({out})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json as _json

    from .training import Trainer, TrainConfig, save_confusion_png

    run = Path(args.run)
    cfg_path = run / "config.json"
    if not cfg_path.exists():
        print(f"error: {run} is not a training run (config.json missing)", file=sys.stderr)
        return 2
    saved = _json.loads(cfg_path.read_text())
    try:
        trainer = Trainer(args.zoo or saved["zoo"], run, TrainConfig(**saved["config"]), args.device, progress=False)
        result = trainer.evaluate(args.split, args.checkpoint)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    confusion = result["confusion"]
    print(f"{saved['config']['model']} on {args.split}: accuracy {result['accuracy'] * 100:.2f}% "
          f"({int(confusion.trace())}/{int(confusion.sum())}), loss {result['loss']:.4f}")
    print("confusion matrix (rows: true class, columns: predicted):")
    for row in confusion.tolist():
        print(" ".join(f"{v:5d}" for v in row))
    png = run / f"confusion-{args.split}.png"
    save_confusion_png(confusion, png, f"{saved['config']['model']} on {args.split}: "
                                       f"{result['accuracy'] * 100:.2f}%")
    print(f"picture: {png}")
    return 0


def _hardware(device: str) -> str:
    """A one-line description of where a run happened."""
    import os
    import platform

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(torch.device(device))}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()}-core {cpu} CPU, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def _table(zoo: str, models: list[str], seeds: int, args: argparse.Namespace,
           out: Path) -> dict[str, list[tuple[float, float]]]:
    """Train (or resume, or reuse when finished) every (model, seed) run under ``out``;
    returns ``{model: [(test accuracy, training seconds), ...]}``."""
    import json

    from .training import Trainer

    results: dict[str, list[tuple[float, float]]] = {}
    for model in models:
        for seed in range(seeds):
            run = out / f"{model}-seed{seed}"
            trainer = Trainer(zoo, run, _train_config(args, model, seed), args.device)
            history = trainer.fit()["history"]
            if trainer.rank != 0:
                continue
            acc = trainer.evaluate("test")["accuracy"]
            # training time summed over epochs, so a resumed run reports its real cost
            seconds = float(sum(h["epoch_seconds"] for h in history))
            results.setdefault(model, []).append((acc, seconds))
            (run / "test.json").write_text(json.dumps(
                {"test_accuracy": acc, "train_seconds": seconds, "hardware": _hardware(args.device)}) + "\n")
            print(f"  {model} seed {seed}: test accuracy {acc * 100:.2f}% ({seconds:.0f}s of training)", flush=True)
    return results


def _markdown(results: dict[str, list[tuple[float, float]]], source: str, note: str, hardware: str) -> str:
    paper = PAPER_TABLE.get(source, {})
    lines = [f"INR classification on {source} ({note}).", "", f"Hardware: {hardware}.", "",
             "| model | test accuracy (mean ± std) | seeds | training time per run | paper |",
             "|---|---|---|---|---|"]
    for model, runs in results.items():
        t = torch.tensor([acc for acc, _ in runs], dtype=torch.float64) * 100
        spread = f"± {float(t.std()):.2f}" if len(runs) > 1 else "(one seed, no spread)"
        ref = f"{paper[model]:.2f}" if model in paper else "-"
        minutes = sum(sec for _, sec in runs) / len(runs) / 60
        lines.append(f"| {MODEL_NAMES.get(model, model)} | {float(t.mean()):.2f} {spread} | {len(runs)} | "
                     f"{minutes:.1f} min | {ref} |")
    return "\n".join(lines) + "\n"


def cmd_table(args: argparse.Namespace) -> int:
    from .data.zoo import Zoo

    _setup_device(args)
    zoo = Zoo(args.zoo)
    models = list(MODEL_NAMES) if args.models == "all" else args.models.split(",")
    out = Path(args.out or f"runs/table-{zoo.path.name}")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        results = _table(args.zoo, models, args.seeds, args, out)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not results:  # not rank 0 under torchrun
        return 0
    note = (f"{zoo.split_size('train') if args.max_train is None else min(args.max_train, zoo.split_size('train'))} "
            f"training INRs, {zoo.split_size('test')} test INRs, {args.epochs} epochs, batch {args.batch_size}, "
            f"{time.perf_counter() - t0:.0f}s for this invocation; finished runs found in {out} are reused")
    md = _markdown(results, zoo.config.get("source", ""), note, _hardware(args.device))
    (out / "table.md").write_text(md)
    print("\n" + md)
    print(f"written to {out / 'table.md'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Main job: digits zoo -> DWSNet and MLP baseline -> comparison."""
    from .data.zoo import ZooConfig, build_zoo, Zoo

    if args.synthetic:
        return cmd_demo_synthetic(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    zoo_dir = Path(args.zoo_dir)
    print(f"[1/3] fitting {args.views} SIREN(s) per image of scikit-learn's digits (each from its own seed) "
          f"into {zoo_dir} (resumes if interrupted)", flush=True)
    progress = _FitProgress(str(zoo_dir))
    try:
        build_zoo(zoo_dir, ZooConfig(source="digits", views=args.views), on_progress=progress)
    finally:
        progress.close()
    summary = Zoo(zoo_dir).summary()
    print(f"      {summary['inrs']} INRs, PSNR median {summary['psnr_median']:.1f} dB", flush=True)
    args.max_train, args.lr, args.weight_decay, args.noise, args.entry_dropout = None, None, 5e-4, 0.0, 0.0
    args.augment = None
    results = {}
    for step, model in ((2, "dwsnet"), (3, "mlp")):
        print(f"[{step}/3] training {MODEL_NAMES[model]} ({args.epochs} epochs)", flush=True)
        results[model] = [acc for acc, _ in _table(str(zoo_dir), [model], 1, args, Path(args.out))[model]]
    chance = 0.1
    print(f"\nDigit classification from INR weights ({Zoo(zoo_dir).split_size('test')} test INRs), "
          f"total {time.perf_counter() - t_start:.0f}s")
    for model, accs in results.items():
        print(f"  {MODEL_NAMES[model]:<22} {accs[0] * 100:6.2f}%")
    print(f"  {'(chance)':<22} {chance * 100:6.2f}%")
    print("Runs (checkpoints, metrics, curves.png) are in", args.out)
    return 0


def _parse_shard(text: str | None) -> tuple[int, int]:
    import os

    if text is None:
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # launched by torchrun
            return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise SystemExit(f"--shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise SystemExit(f"--shard {text}: I must be in 0..N-1")
    return i, n


def cmd_fit_inrs(args: argparse.Namespace) -> int:
    from .data.preview import save_reconstruction_grid
    from .data.zoo import Zoo, ZooConfig, build_zoo

    if args.threads:
        torch.set_num_threads(args.threads)
    index, count = _parse_shard(args.shard)
    config = ZooConfig(
        source=args.source, hidden=tuple(int(h) for h in args.hidden.split(",")), w0=args.w0, lr=args.lr,
        max_steps=args.steps, target_psnr=None if args.target_psnr <= 0 else args.target_psnr, views=args.views,
        seed=args.seed, shard_size=args.shard_size, max_per_split=args.max_per_split, sine_count=args.sine_count,
        data_dir=args.data_dir,
    )
    progress = _FitProgress(args.out)
    try:
        result = build_zoo(args.out, config, shard_index=index, num_shards=count, device=args.device,
                           chunk=args.chunk, on_progress=progress)
    except (*USER_ERRORS, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        progress.close()
    zoo = Zoo(args.out)
    summary = zoo.summary()
    rate = result["inr_steps"] / result["seconds"] if result["seconds"] > 0 else float("nan")
    print(f"\nfitted {result['fitted_inrs']} INRs in {result['seconds']:.1f}s "
          f"({rate:,.0f} INR-steps/s); skipped {result['skipped_shards']} finished shard(s)")
    if summary["inrs"]:
        target = summary.get("reached_target")
        print(f"zoo: {summary['inrs']}/{summary['planned']} INRs, PSNR median {summary['psnr_median']:.2f} dB, "
              f"5th percentile {summary['psnr_p5']:.2f} dB"
              + (f", {target * 100:.1f}% reached {config.target_psnr:g} dB" if target is not None else ""))
        missing = zoo.missing_shards()
        if missing:
            print(f"{len(missing)} shard(s) still to fit (other --shard parts, or run this command again)")
        if not args.no_preview:
            try:
                path = save_reconstruction_grid(args.out, data_dir=args.data_dir)
                print(f"picture: {path}")
            except Exception as exc:  # noqa: BLE001 - a failed preview must not fail the fit
                print(f"(no preview picture: {exc})")
    return 0


def cmd_zoo_info(args: argparse.Namespace) -> int:
    import json

    from .data.zoo import Zoo

    try:
        zoo = Zoo(args.zoo)
        summary = zoo.summary(verify=not args.no_verify)
        if args.recheck_psnr:
            summary.update(zoo.recheck_psnr(args.data_dir))
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"path": str(zoo.path), "zoo_id": zoo.zoo_id, "layer_sizes": zoo.layer_sizes,
                      "splits": {s: zoo.split_size(s) for s in zoo.splits},
                      "missing_shards": zoo.missing_shards(), "config": zoo.config, **summary}, indent=1))
    return 0


def cmd_merge_zoos(args: argparse.Namespace) -> int:
    from .data.zoo import ZooError, merge_zoos

    try:
        zoo = merge_zoos(args.out, args.parts)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{zoo.path}: {len(zoo.shards) - len(zoo.missing_shards())}/{len(zoo.shards)} shards present")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dwsnets", description="Learning on the weights of neural networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="main job: digits INR zoo, DWSNet vs MLP (minutes on a CPU)")
    demo.add_argument("--zoo-dir", default="zoos/digits-8views")
    demo.add_argument("--views", type=int, default=8, help="INRs per digit image (more training INRs)")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--batch-size", type=int, default=64)
    demo.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    demo.add_argument("--synthetic", action="store_true",
                      help="instead: a synthetic zoo of ReLU MLPs fitted to sine waves (no INR fitting)")
    demo.add_argument("--networks", type=int, default=2000)
    demo.add_argument("--hidden", type=int, default=16)
    demo.add_argument("--classes", type=int, default=4)
    demo.add_argument("--epochs", type=int, default=10)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    demo.set_defaults(func=cmd_demo)

    fit = sub.add_parser("fit-inrs", help="fit one SIREN per image into a resumable zoo",
                         description="Fit a zoo of SIRENs. Interrupt at any time; the same command resumes.")
    fit.add_argument("--source", default="digits", choices=["digits", "fashion-mnist", "mnist", "idx", "cifar10", "sine"])
    fit.add_argument("--data-dir", help="directory with the source's files (IDX / CIFAR-10 batches)")
    fit.add_argument("--out", required=True, help="zoo directory (created, or resumed if it exists)")
    fit.add_argument("--hidden", default="32,32", help="hidden widths of the SIREN (default 32,32)")
    fit.add_argument("--w0", type=float, default=30.0)
    fit.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 3e-3: measured 5x fewer steps to 40 dB than the paper's 5e-4)")
    fit.add_argument("--steps", type=int, default=1000, help="maximum Adam steps per INR")
    fit.add_argument("--target-psnr", type=float, default=40.0, help="early stop at this PSNR in dB (0: never)")
    fit.add_argument("--views", type=int, default=1, help="INRs per image, each from its own seed")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--shard-size", type=int, default=1000, help="INRs per shard file")
    fit.add_argument("--max-per-split", type=int, help="use at most this many images per split (quick runs)")
    fit.add_argument("--sine-count", type=int, default=10000, help="number of sine waves (--source sine)")
    fit.add_argument("--shard", help="I/N: fit only every N-th shard starting at I (default: torchrun rank, or all)")
    fit.add_argument("--chunk", type=int, default=128, help="INRs per batched computation")
    fit.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    fit.add_argument("--threads", type=int, default=0)
    fit.add_argument("--no-preview", action="store_true", help="skip the reconstruction picture")
    fit.set_defaults(func=cmd_fit_inrs)

    def training_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--zoo", required=True, help="zoo directory (dwsnets fit-inrs)")
        p.add_argument("--epochs", type=int, default=30)
        p.add_argument("--batch-size", type=int, default=128)
        p.add_argument("--lr", type=float, help="default: the model's own (see dwsnets.baselines)")
        p.add_argument("--weight-decay", type=float, default=5e-4)
        p.add_argument("--augment", choices=["on", "off"], help="random hidden permutations (default: per model)")
        p.add_argument("--noise", type=float, default=0.0, help="Gaussian noise, fraction of each tensor's std")
        p.add_argument("--entry-dropout", type=float, default=0.0)
        p.add_argument("--max-train", type=int, help="train on the first N training INRs only")
        p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        p.add_argument("--threads", type=int, default=0)

    train = sub.add_parser("train", help="train a model on a zoo")
    train_sub = train.add_subparsers(dest="task", required=True)
    classify = train_sub.add_parser("classify", help="classify INRs (labels of their images)")
    training_args(classify)
    classify.add_argument("--model", default="dwsnet", choices=list(MODEL_NAMES))
    classify.add_argument("--seed", type=int, default=0)
    classify.add_argument("--out", help="run directory (default runs/ZOO-MODEL-seedN); resumed if it exists")
    classify.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="accuracy and confusion matrix of a trained run")
    evaluate.add_argument("--run", required=True)
    evaluate.add_argument("--zoo", help="default: the zoo the run was trained on")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--checkpoint", default="best", choices=["best", "last"])
    evaluate.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    evaluate.set_defaults(func=cmd_evaluate)

    table = sub.add_parser("table", help="every model over several seeds, markdown beside the paper")
    training_args(table)
    table.add_argument("--models", default="all", help="comma-separated, or all")
    table.add_argument("--seeds", type=int, default=3)
    table.add_argument("--out", help="default runs/table-ZOO")
    table.set_defaults(func=cmd_table)

    info = sub.add_parser("zoo-info", help="verify a zoo and print its statistics")
    info.add_argument("zoo")
    info.add_argument("--no-verify", action="store_true", help="skip checksum verification")
    info.add_argument("--recheck-psnr", action="store_true",
                      help="re-evaluate every INR from its stored weights and compare with the stored PSNR")
    info.add_argument("--data-dir", help="where the zoo's source images are (for --recheck-psnr)")
    info.set_defaults(func=cmd_zoo_info)

    merge = sub.add_parser("merge-zoos", help="join zoo parts fitted in separate directories")
    merge.add_argument("out")
    merge.add_argument("parts", nargs="+")
    merge.set_defaults(func=cmd_merge_zoos)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .utils import tune_cpu_allocator

    args = build_parser().parse_args(argv)
    tune_cpu_allocator()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
