"""``dwsnets fit-inrs``, ``zoo-info`` and ``merge-zoos``: making and checking zoos."""

from __future__ import annotations

import argparse
import json
import sys

from ..utils import rank_and_world
from ..zoo.dataset import symmetry_group
from ..zoo.errors import ZooError
from ..zoo.recompute import largest_difference, recompute
from ..zoo.sources import SOURCES
from ..zoo.store import Zoo, ZooConfig, build_zoo, merge_zoos
from .common import DefaultsFormatter, UsageError, add_runtime_args, progress, setup_runtime

__all__ = ["FitProgress", "add_parsers"]


class FitProgress:
    """Progress bar for :func:`dwsnets.zoo.store.build_zoo` events (INRs done, INR-steps/s,
    mean PSNR of the INRs still fitting)."""

    def __init__(self, label: str, quality: str = "psnr") -> None:
        self.label, self.bar, self.done = label, None, 0
        self.quality = quality
        self.item = "INR" if quality == "psnr" else "network"  # what the zoo holds, for people

    def __call__(self, event: dict) -> None:
        if event["event"] == "plan":
            print(
                f"{self.label}: {event['shards']} shard(s) for this process, {event['todo']} to fit "
                f"({event['inrs']} INRs; {event['skipped_inrs']} already done)",
                flush=True,
            )
            if event["inrs"]:
                unit, desc = ("INR", "fitting") if self.item == "INR" else ("net", "training")
                self.bar = progress(
                    total=event["inrs"], unit=unit, desc=desc, smoothing=0.05, mininterval=1.0, dynamic_ncols=True
                )
            return
        if event["event"] == "damaged":
            print(f"{self.label}: shard {event['shard']} was finished but {event['reason']}: refitting it", flush=True)
            return
        if self.bar is None:
            return
        if event["finished"] > self.done:
            self.bar.update(event["finished"] - self.done)
            self.done = event["finished"]
        if event["event"] == "step" and event["step"] % 10 == 0 and event["active"] > 0:
            rate = event["inr_steps"] / max(event["elapsed"], 1e-9)
            self.bar.set_postfix_str(
                f"{event['shard']} step {event['step']} active {event['active']} "
                f"{rate:,.0f} {self.item}-steps/s mean "
                f"{'' if self.quality == 'psnr' else self.quality + ' '}"
                f"{_score(self.quality, event['mean_quality'])}"
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _score(quality: str, value: float) -> str:
    """A network's stored score for people: ``31.2 dB`` (PSNR) or ``84.1%`` (accuracy)."""
    return f"{value:.1f} dB" if quality == "psnr" else f"{value * 100:.1f}%"


def _parse_shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return rank_and_world(from_environment=True)  # one part per torchrun rank, else all
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise UsageError(f"--shard {text}: I must be in 0..N-1")
    return i, n


def _parse_hidden(text: str) -> tuple[int, ...]:
    try:
        hidden = tuple(int(h) for h in text.split(","))
    except ValueError:
        raise UsageError(f"--hidden must be comma-separated widths such as 32,32; got {text!r}") from None
    if not hidden or any(h < 1 for h in hidden):
        raise UsageError(f"--hidden widths must be positive integers, got {text!r}")
    return hidden


def cmd_fit_inrs(args: argparse.Namespace) -> int:
    from ..zoo.preview import save_accuracy_histogram, save_reconstruction_grid

    setup_runtime(args)
    index, count = _parse_shard(args.shard)
    for name in ("views", "shard_size", "steps", "chunk", "count"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.max_per_split is not None and args.max_per_split < 1:
        raise UsageError(f"--max-per-split must be at least 1, got {args.max_per_split}")
    if not args.lr > 0:
        raise UsageError(f"--lr must be positive, got {args.lr}")
    if not args.w0 > 0:
        raise UsageError(f"--w0 must be positive, got {args.w0}")
    config = ZooConfig(
        source=args.source,
        hidden=_parse_hidden(args.hidden),
        w0=args.w0,
        lr=args.lr,
        max_steps=args.steps,
        target_psnr=None if args.target_psnr <= 0 else args.target_psnr,
        views=args.views,
        views_in=args.views_in,
        seed=args.seed,
        shard_size=args.shard_size or SOURCES[args.source].default_shard_size,
        max_per_split=args.max_per_split,
        count=args.count,
        init=args.init,
        data_dir=args.data_dir,
    )
    ignored = SOURCES[args.source].ignored_settings(config)
    if ignored:
        names = ", ".join("--" + {"max_steps": "steps"}.get(k, k).replace("_", "-") for k in ignored)
        raise UsageError(f"source {args.source} does not use {names}; drop them (they would change nothing)")
    fit_progress = FitProgress(args.out, SOURCES[args.source].quality)
    try:
        result = build_zoo(
            args.out,
            config,
            shard_index=index,
            num_shards=count,
            device=args.device,
            chunk=args.chunk,
            on_progress=fit_progress,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    finally:
        fit_progress.close()
    zoo = Zoo(args.out)
    summary = zoo.summary()
    rate = result["inr_steps"] / result["seconds"] if result["seconds"] > 0 else float("nan")
    print(
        f"fitted {result['fitted_inrs']} networks in {result['seconds']:.1f}s "
        f"({rate:,.0f} {fit_progress.item}-steps/s); skipped "
        f"{result['skipped_shards']} finished shard(s)"
    )
    if summary["inrs"]:
        target = summary.get("reached_target")
        quality = summary["quality"]
        print(
            f"zoo: {summary['inrs']}/{summary['planned']} networks, {quality.replace('psnr', 'PSNR')} median "
            f"{_score(quality, summary[f'{quality}_median'])}, 5th percentile {_score(quality, summary[f'{quality}_p5'])}"
            + (f", {target * 100:.1f}% reached {config.target_psnr:g} dB" if target is not None else "")
        )
        missing = zoo.missing_shards()
        if missing:
            print(f"{len(missing)} shard(s) still to fit (other --shard parts, or run this command again)")
        if not args.no_preview:  # INRs: reconstructions to show; classifiers: their accuracies
            try:
                if zoo.quality == "psnr":
                    path = save_reconstruction_grid(args.out, data_dir=args.data_dir)
                else:
                    path = save_accuracy_histogram(args.out)
                print(f"picture: {path}")
            except Exception as exc:
                print(f"(no preview picture: {exc})")
    return 0


def cmd_zoo_info(args: argparse.Namespace) -> int:
    zoo = Zoo(args.zoo)
    summary = zoo.summary(verify=not args.no_verify)
    if args.no_verify:
        print(
            "note: checksums not verified (--no-verify); shard sizes were checked, but a damaged shard of the "
            "right size goes unnoticed",
            file=sys.stderr,
        )
    if args.recheck_psnr:
        summary.update(zoo.recheck_psnr(args.data_dir))
    try:
        summary["symmetry"] = symmetry_group(zoo).describe()
    except ZooError as exc:  # an activation dwsnets does not know: say so, and show the rest
        summary["symmetry"] = f"unknown ({exc})"
    summary["networks"] = zoo.networks
    print(
        json.dumps(
            {
                "path": str(zoo.path),
                "zoo_id": zoo.zoo_id,
                "layer_sizes": zoo.layer_sizes,
                "splits": {s: zoo.split_size(s) for s in zoo.splits},
                "missing_shards": zoo.missing_shards(),
                "config": zoo.config,
                **summary,
            },
            indent=1,
        )
    )
    if args.recompute is not None:
        _print_recomputed(zoo, args.recompute, args.data_dir)
    return 0


def _print_recomputed(zoo: Zoo, count: int, data_dir: str | None) -> None:
    """``--recompute N``: stored and recomputed score per network, then the largest difference."""
    unit, found = recompute(zoo, count, data_dir)
    label = "accuracy (%)" if unit == "points" else "PSNR (dB)"
    print(f"\n{'split':<6} {'row':>8}  stored {label:<13} recomputed  difference")
    for f in found:
        print(f"{f.split:<6} {f.row:>8}  {f.stored:>20.2f} {f.recomputed:>10.2f} {f.recomputed - f.stored:>+11.2f}")
    print(f"largest difference: {largest_difference(found):.2f} {unit}")


def cmd_merge_zoos(args: argparse.Namespace) -> int:
    zoo = merge_zoos(args.out, args.parts)
    print(f"{zoo.path}: {len(zoo.shards) - len(zoo.missing_shards())}/{len(zoo.shards)} shards present")
    return 0


def cmd_import_zoo(args: argparse.Namespace) -> int:
    from ..zoo.importers import import_zoo

    options = {"split_file": args.split_file, "progress": print}
    if args.format == "small-cnn-zoo":
        options.update(epoch=args.epoch, all_checkpoints=args.all_checkpoints, seed=args.seed)
    elif args.epoch is not None or args.all_checkpoints:
        raise UsageError(f"--epoch and --all-checkpoints are for checkpoint zoos, not {args.format}")
    counts = import_zoo(args.format, args.directory, args.out, **options)
    dropped = counts.pop("dropped_nonfinite")
    print(f"{args.out}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + " networks"
          + (f"; left out {dropped} checkpoint(s) with non-finite weights or accuracy" if dropped else ""))  # fmt: skip
    summary = Zoo(args.out).summary()
    if summary.get("quality") == "accuracy":
        print(f"test accuracy of the networks: median {summary['accuracy_median'] * 100:.1f}%, 5th percentile "
              f"{summary['accuracy_p5'] * 100:.1f}%")  # fmt: skip
    return 0


def _add_import_parser(sub: argparse._SubParsersAction) -> None:
    imp = sub.add_parser(
        "import-zoo",
        help="read a zoo published elsewhere (the Small CNN Zoo, DWSNets' INRs) into a dwsnets zoo",
        description="Import a downloaded data set of trained networks. small-cnn-zoo: a directory of the Small CNN "
        "Zoo (Unterthiner et al. 2020) holding weights.npy, metrics.csv.gz and layout.csv; with --split-file (e.g. "
        "the NFN repository's predict_gen_data_splits/cifar10_split.csv) the splits are the published benchmark's. "
        "dwsnets-official: the INR data set of the original DWSNets code (a splits JSON and one state dict per INR).",
        formatter_class=DefaultsFormatter,
    )
    imp.add_argument("directory", help="the downloaded data set's directory")
    imp.add_argument("--format", required=True, choices=["small-cnn-zoo", "dwsnets-official"],
                     help="the data set's format")  # fmt: skip
    imp.add_argument("--out", required=True, help="directory of the new zoo")
    imp.add_argument("--split-file", help="small-cnn-zoo: the published split (one row index of weights.npy per "
                     "line); dwsnets-official: the splits JSON, when the directory holds several")  # fmt: skip
    imp.add_argument("--epoch", type=int, help="the checkpoints to import (metrics 'step'; default: the last)")
    imp.add_argument("--all-checkpoints", action="store_true",
                     help="import every checkpoint (splits stay by training run)")  # fmt: skip
    imp.add_argument("--seed", type=int, default=0, help="seed of the split by run when there is no --split-file")
    imp.set_defaults(func=cmd_import_zoo)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    fit = sub.add_parser(
        "fit-inrs",
        aliases=["fit-zoo"],
        help="fit one SIREN per image (or train classifiers, CNNs) into a resumable zoo",
        description="Fit a zoo of SIRENs, or train a zoo of classifiers or CNNs (--source). Interrupt at any time; "
        "the same command resumes.",
        formatter_class=DefaultsFormatter,
    )
    fit.add_argument(
        "--source",
        default="digits",
        choices=list(SOURCES),
        help="what to fit (classifier sources train classifiers: they use --hidden, --lr, --steps, --count, "
        "--seed and ignore --w0, --init and --target-psnr; CNN sources use --steps, --count and --seed)",
    )
    fit.add_argument("--data-dir", help="directory with the source's files (IDX / CIFAR-10 batches)")
    fit.add_argument("--out", required=True, help="zoo directory (created, or resumed if it exists)")
    fit.add_argument("--hidden", default="32,32", help="hidden widths of the SIREN")
    fit.add_argument("--w0", type=float, default=30.0, help="SIREN frequency factor")
    fit.add_argument("--init", default="paper", choices=["paper", "siren"],
                     help="initialisation: the DWSNets paper's INRs' (low-frequency first layer, zero biases, +0.5 "
                          "output offset; far more informative weights), or the SIREN paper's")  # fmt: skip
    fit.add_argument(
        "--lr",
        type=float,
        default=3e-3,
        help="Adam learning rate (3e-3: measured 5x fewer steps to 40 dB than the paper's 5e-4)",
    )
    fit.add_argument("--steps", type=int, default=1000, help="maximum Adam steps per INR")
    fit.add_argument("--target-psnr", type=float, default=40.0, help="early stop at this PSNR in dB (0: never)")
    fit.add_argument("--views", type=int, default=1, help="INRs per image, each from its own seed")
    fit.add_argument("--views-in", default="all", choices=["all", "train"],
                     help="splits fitted with --views INRs per image: all, or train only (validation and test get "
                          "each image's first INR, the one training evaluates on unless --eval-views all)")  # fmt: skip
    fit.add_argument("--seed", type=int, default=0, help="zoo seed (splits and every INR's initialisation)")
    fit.add_argument("--shard-size", type=int, default=None,
                     help="networks per shard file, the unit an interrupted build keeps (default: the source's; "
                          "1,000, and 250 CNNs)")  # fmt: skip
    fit.add_argument("--max-per-split", type=int, help="use at most this many images per split (quick runs)")
    fit.add_argument(
        "--count",
        "--sine-count",
        dest="count",
        type=int,
        default=10000,
        help="networks of a synthetic zoo: sine waves (sine, sine-freq, sine-ab), classifiers "
        "(fashion-mnist-classifiers) or CNNs (fashion-mnist-cnns)",
    )
    fit.add_argument("--shard", help="I/N: fit only every N-th shard starting at I (default: torchrun rank, or all)")
    fit.add_argument("--chunk", type=int, default=None,
                     help="networks per batched computation (default: the source's; for SIRENs 32 on the CPU, "
                          "the fastest measured, and 4,096 on a GPU; 128 classifiers; 32 CNNs)")  # fmt: skip
    fit.add_argument("--no-preview", action="store_true",
                     help="skip the picture (INRs: reconstructions; classifiers and CNNs: a histogram of accuracies)")  # fmt: skip
    add_runtime_args(fit)
    fit.set_defaults(func=cmd_fit_inrs)

    info = sub.add_parser("zoo-info", help="verify a zoo and print its statistics")
    info.add_argument("zoo", help="zoo directory")
    info.add_argument("--no-verify", action="store_true", help="skip checksum verification")
    info.add_argument(
        "--recheck-psnr",
        action="store_true",
        help="re-evaluate every INR from its stored weights and compare with the stored PSNR",
    )
    info.add_argument("--recompute", type=int, metavar="N",
                      help="run N of the zoo's networks (test split first) on their data set's test images (INRs: "
                           "render them against their signals) and print stored and recomputed accuracy (PSNR) per "
                           "network, then 'largest difference: X points': the check to run after any import or fit")  # fmt: skip
    info.add_argument("--data-dir", help="where the zoo's data set is (for --recheck-psnr and --recompute; "
                                         "Fashion-MNIST from Debian's package needs none)")  # fmt: skip
    info.set_defaults(func=cmd_zoo_info)

    _add_import_parser(sub)

    merge = sub.add_parser("merge-zoos", help="join zoo parts fitted in separate directories")
    merge.add_argument("out", help="directory of the merged zoo")
    merge.add_argument("parts", nargs="+", help="zoo directories fitted with the same settings")
    merge.set_defaults(func=cmd_merge_zoos)
