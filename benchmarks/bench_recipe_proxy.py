"""A short, fixed training budget for comparing DWSNet recipes (the proxy for recipe work).

    python benchmarks/bench_recipe_proxy.py --zoo ZOO [--epochs 10] [--max-train N] [--seed 0]
        [--variants default,lr-1e-3,...] [--model dwsnet] [--bf16] [--compile] [--out runs/recipe-proxy]

Full schedules take hours on a CPU, so a recipe change (learning rate, width, depth,
normalisation, augmentation) is first compared here: every variant trains a DWSNet
classifier through the package's own ``Trainer`` for the same epochs on the same training
networks, from the same seed, and the script prints one markdown row per variant with its
best and last validation accuracy, the test accuracy of its best checkpoint and its
training time, beside the default recipe's from the same invocation. The winner is then
confirmed at the full schedule (``dwsnets table``). Runs are kept under ``--out``, so an
interrupted comparison resumes and a repeated one only prints.

Variants (``--variants``, comma-separated; default: all; see ``VARIANTS``): ``default`` (the
registry's DWSNet: 5 layers of 32 channels, batch norm, AdamW lr 2e-3, random hidden
permutations, and on SIREN zoos random sign flips; the classification task's label smoothing
0.1), ``no-sign-flips`` (the default before
sign flips became one), ``lr-1e-3``, ``lr-4e-3``, ``no-norm``, ``width-64``, ``depth-3``,
``dropout-0.1``, ``no-permutations``, ``flip-and-intensity`` (exact image
augmentations: left-right flips and intensity scale and shift of up to 10%), ``bf16``
(bf16 autocast on the CPU, ``dwsnets train --bf16``) and ``bf16-compiled`` (also
``--compile``); ``sign-flips`` and ``canonical-signs`` (the sine's sign symmetry, SIREN
zoos only), and ``sign-flips`` with ``width-64``, ``dropout-0.1`` or ``lr-1e-3``;
``fourier`` and ``fourier-even`` (every weight value through random Fourier features, or
their sign-free even half, which makes the model invariant to sign flips), and
``fourier-scale-3`` (frequencies three times higher); ``depth-7``, ``head-512-512``;
regularisers ``dropout-0.2``, ``weight-decay-0.05``, ``noise-0.05`` (Gaussian noise of 5% of
each tensor's std) and ``geometric`` (exact random rotations up to 15 degrees, scales up to
exp(0.1) and shifts up to 0.1 of the INR's input); ``depth-6``, ``depth-8`` and
``width-128-depth-2`` (ScaleGMN-B's width and depth on Fashion-MNIST INRs); ``ema-1`` and
``ema-3`` (validation and test read an exponential moving average of the weights over about
1 or 3 epochs of steps, ``dwsnets train --ema-epochs``); ``label-smoothing-0.1`` (the
default since 2026-12-07), ``label-smoothing-0.2`` and ``no-label-smoothing`` (training
targets mix in 10%, 20% or none of a uniform distribution, ``dwsnets train classify
--label-smoothing``); ``lr-8e-3`` (above the sign-equivariant model's grid), ``batch-64``
(half the batch, twice the steps) and ``weight-decay-0``.

``--model`` starts every variant from another registry model instead (for example
``sign-equivariant``, whose ``default`` has its own learning rate and no augmentation);
``--bf16`` and ``--compile`` apply to every variant.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},  # the registry's DWSNet: 5 layers x 32 channels, batch norm, lr 2e-3, permutations, sign flips
    "no-sign-flips": {"sign_flips": False},
    "lr-1e-3": {"lr": 1e-3},
    "lr-4e-3": {"lr": 4e-3},
    "no-norm": {"model_args": {"norm": None}},
    "width-64": {"model_args": {"hidden_channels": 64}},
    "depth-3": {"model_args": {"num_layers": 3}},
    "dropout-0.1": {"model_args": {"dropout": 0.1}},
    "no-permutations": {"augment_permute": False},
    "flip-and-intensity": {"signal": {"flip": [1], "intensity_scale": 0.1, "intensity_shift": 0.1}},
    "bf16": {"amp_cpu": True},  # bf16 autocast on the CPU (dwsnets train --bf16)
    "bf16-compiled": {"amp_cpu": True, "compile": True},  # and the fused batch-norm kernels (--compile)
    # the sine's sign symmetry (SIREN zoos): random flips as augmentation, or one canonical twin
    "sign-flips": {"sign_flips": True},
    "canonical-signs": {"canonical_signs": True},
    "sign-flips-width-64": {"sign_flips": True, "model_args": {"hidden_channels": 64}},
    "sign-flips-dropout-0.1": {"sign_flips": True, "model_args": {"dropout": 0.1}},
    "sign-flips-lr-1e-3": {"sign_flips": True, "lr": 1e-3},
    # every weight value encoded by random Fourier features (dwsnets.nn.encoding)
    "fourier": {"model_args": {"input_encoding": "fourier"}},
    "fourier-even": {"model_args": {"input_encoding": "fourier-even"}},
    "fourier-scale-3": {"model_args": {"input_encoding": "fourier", "fourier_scale": 3.0}},
    "depth-7": {"model_args": {"num_layers": 7}},
    "head-512-512": {"model_args": {"head_hidden": [512, 512]}},
    # regularisers (the sign-equivariant model overfits the full zoo after about 12 epochs)
    "dropout-0.2": {"model_args": {"dropout": 0.2}},
    "weight-decay-0.05": {"weight_decay": 0.05},
    "noise-0.05": {"noise": 0.05},
    "geometric": {"signal": {"rotate": 15.0, "scale": 0.1, "translate": 0.1}},  # exact INR-level transforms
    "depth-6": {"model_args": {"num_layers": 6}},
    "depth-8": {"model_args": {"num_layers": 8}},
    "width-128-depth-2": {"model_args": {"hidden_channels": 128, "num_layers": 2}},  # ScaleGMN-B's shape
    # validation and test read a moving average of the weights over about 1 or 3 epochs of steps
    "ema-1": {"ema_epochs": 1.0},
    "ema-3": {"ema_epochs": 3.0},
    # training targets 90% label, 10% uniform: the default since 2026-12-07 (the rows before it name it)
    "label-smoothing-0.1": {"task_options": {"label_smoothing": 0.1}},
    "label-smoothing-0.2": {"task_options": {"label_smoothing": 0.2}},
    "no-label-smoothing": {"task_options": {"label_smoothing": 0.0}},  # the plain cross-entropy, as before
    # the sign-equivariant model's learning rate was the top of its grid (1e-3, 2e-3, 4e-3): one step above it
    "lr-8e-3": {"lr": 8e-3},
    "batch-64": {"batch_size": 64},  # twice the steps per epoch, noisier gradients
    "weight-decay-0": {"weight_decay": 0.0},
}


def run_variant(zoo: str, name: str, args: argparse.Namespace) -> dict[str, Any]:
    from dwsnets.training import TrainConfig, Trainer

    settings = dict(VARIANTS[name])
    settings.setdefault("amp_cpu", args.bf16)
    settings.setdefault("compile", args.compile)
    settings.setdefault("batch_size", args.batch_size)
    config = TrainConfig(model=args.model, task="classify", epochs=args.epochs, seed=args.seed,
                         max_train=args.max_train, **settings)  # fmt: skip
    trainer = Trainer(zoo, Path(args.out) / name, config, progress=False)
    t0 = time.perf_counter()
    history = trainer.fit()["history"]
    test = trainer.evaluate("test")
    return {
        "variant": name,
        "best_val": max(h["val_accuracy"] for h in history),
        "last_val": history[-1]["val_accuracy"],
        "test": test["accuracy"],
        "train_seconds": sum(h["epoch_seconds"] for h in history),
        "wall_seconds": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> None:
    from dwsnets.baselines import MODELS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo", required=True, help="an image INR zoo (dwsnets fit-inrs)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-train", type=int, help="the first N training INRs only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the variants")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's choice)")
    parser.add_argument("--model", default="dwsnet", choices=list(MODELS),
                        help="the registry's model every variant starts from")  # fmt: skip
    parser.add_argument("--bf16", action="store_true", help="every variant with bf16 autocast (dwsnets train --bf16)")
    parser.add_argument("--compile", action="store_true", help="every variant with --compile")
    parser.add_argument("--out", default="runs/recipe-proxy", help="where the runs are kept (resumed)")
    args = parser.parse_args(argv)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if "default" not in names:
        names.insert(0, "default")  # every comparison is against the default of the same invocation

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name in names:
        row = run_variant(args.zoo, name, args)
        rows.append(row)
        print(json.dumps(row), flush=True)
    base = rows[0]
    print(f"\nmodel {args.model}{', bf16' if args.bf16 else ''}{', compiled' if args.compile else ''}, "
          f"{args.epochs} epochs, batch {args.batch_size}, seed {args.seed}, zoo {args.zoo}"
          + (f", first {args.max_train} training INRs" if args.max_train else "")
          + f", {torch.get_num_threads()} torch threads\n")  # fmt: skip
    print("| variant | best validation (%) | vs default (validation) | last validation (%) | test (%) | "
          "vs default (test) | training time |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        val_delta, delta = (row["best_val"] - base["best_val"]) * 100, (row["test"] - base["test"]) * 100
        print(
            f"| {row['variant']} | {row['best_val'] * 100:.2f} | {val_delta:+.2f} | {row['last_val'] * 100:.2f} | "
            f"{row['test'] * 100:.2f} | {delta:+.2f} | {row['train_seconds']:.0f} s |"
        )


if __name__ == "__main__":
    main()
