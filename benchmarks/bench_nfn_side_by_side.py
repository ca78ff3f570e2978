"""dwsnets' defaults beside NFN-HNP in its authors' configuration, on the same zoo.

    pip install -e ".[nfn-benchmark]"    # nfn and einops: the benchmark's own, optional dependencies
    python benchmarks/bench_nfn_side_by_side.py --zoo zoos/fm2k --epochs 20 [--seed 0]

NFN-HNP is built from the ``nfn`` package's layers (Zhou et al. 2023) in the configuration
its authors used for INR classification: Gaussian Fourier features of every weight value
(128 frequencies, scale 10), three HNP layers of 512 channels with ReLU, HNP pooling, an
MLP head 1000 wide with dropout 0.5; AdamW, lr 1e-4, weight decay 0.01, batch 32. DWSNet,
and the model that the plain ``dwsnets train classify`` command trains on the zoo
(``default``: the sign-equivariant model on SIREN zoos), train through ``dwsnets``' own
``Trainer`` with the registry's defaults. All train for the same epochs on the same
training networks, keep the checkpoint with the best validation accuracy and report its
test accuracy. The script prints one markdown row per model: validation and test
accuracy, training time and parameters, so the comparison is re-run whenever the
defaults change. ``--max-train`` cuts the training data for a quick check; validation and test are
always whole. Every run is kept under ``--out`` and resumed by the same command: dwsnets'
models by their trainer, NFN-HNP's after every epoch (5 to 8 minutes each on the shared 2-core
CPU where it was first run), so an interrupted run loses at most the epoch in progress.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

FOURIER_FREQUENCIES, FOURIER_SCALE = 128, 10.0
HNP_CHANNELS, HNP_LAYERS = 512, 3
HEAD_WIDTH, HEAD_DROPOUT = 1000, 0.5
LR, WEIGHT_DECAY, BATCH = 1e-4, 0.01, 32


def nfn_hnp(weights: Any, classes: int) -> nn.Module:
    """NFN-HNP as its authors configured it for INR classification, from ``nfn``'s layers."""
    try:
        from nfn.common import network_spec_from_wsfeat
        from nfn.layers import HNPLinear, HNPPool, TupleOp
        from nfn.layers.encoding import GaussianFourierFeatureTransform
    except ImportError as exc:
        raise SystemExit(f"this benchmark needs the nfn package: pip install -e '.[nfn-benchmark]' ({exc})") from None
    spec = network_spec_from_wsfeat(weights)
    layers: list[nn.Module] = [GaussianFourierFeatureTransform(spec, 1, FOURIER_FREQUENCIES, FOURIER_SCALE)]
    channels = 2 * FOURIER_FREQUENCIES
    for _ in range(HNP_LAYERS):
        layers += [HNPLinear(spec, channels, HNP_CHANNELS), TupleOp(nn.ReLU())]
        channels = HNP_CHANNELS
    pooled = HNPPool.get_num_outs(spec) * channels
    head = [HNPPool(spec), nn.Flatten(start_dim=-2), nn.Linear(pooled, HEAD_WIDTH), nn.ReLU(),
            nn.Dropout(HEAD_DROPOUT), nn.Linear(HEAD_WIDTH, classes)]  # fmt: skip
    return nn.Sequential(*layers, *head)


def _features(split: Any, limit: int | None = None) -> tuple[Any, torch.Tensor]:
    from nfn.common import WeightSpaceFeatures

    ws = split.weights if limit is None else split.weights[:limit]
    labels = split.labels if limit is None else split.labels[:limit]
    return WeightSpaceFeatures(list(ws.weights), list(ws.biases)), labels


def _rows(features: Any, index: torch.Tensor) -> Any:
    from nfn.common import WeightSpaceFeatures

    return WeightSpaceFeatures([w[index] for w in features.weights], [b[index] for b in features.biases])


@torch.no_grad()
def _accuracy(model: nn.Module, features: Any, labels: torch.Tensor) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(labels), 256):
        index = torch.arange(start, min(start + 256, len(labels)))
        correct += int((model(_rows(features, index)).argmax(-1) == labels[index]).sum())
    return correct / len(labels)


def train_nfn(zoo: str, args: argparse.Namespace) -> dict[str, Any]:
    """NFN-HNP's own recipe; the best validation epoch's model is tested. The run is kept
    after every epoch in ``OUT/nfn-hnp-seedS/state.pt`` and resumed from there."""
    from dwsnets.zoo.reader import Zoo

    data = Zoo(zoo)
    train = _features(data.load("train").first_views(), args.max_train)
    val, test = (_features(data.load(split).first_views()) for split in ("val", "test"))
    torch.manual_seed(args.seed)
    model = nfn_hnp(train[0], int(train[1].max()) + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    gen = torch.Generator().manual_seed(args.seed)
    run = _NFNRun(Path(args.out) / f"nfn-hnp-seed{args.seed}", args)
    start = run.resume(model, opt, gen)
    for epoch in range(start, args.epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(train[1]), generator=gen)
        for first in range(0, len(order) - BATCH + 1, BATCH):
            index = order[first : first + BATCH]
            loss = nn.functional.cross_entropy(model(_rows(train[0], index)), train[1][index])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - t0
        val_acc = _accuracy(model, *val)
        print(f"nfn-hnp epoch {epoch + 1}: loss {float(loss.detach()):.3f}, validation {val_acc:.4f}", flush=True)
        run.end_epoch(epoch, val_acc, seconds, model, opt, gen)
    model.load_state_dict(run.best_state)
    return {"model": "NFN-HNP (nfn package, authors' configuration)", "best_val": run.best,
            "test": _accuracy(model, *test), "train_seconds": run.seconds, "parameters": _count(model)}  # fmt: skip


class _NFNRun:
    """NFN-HNP's training state on disk: written whole after every epoch (to a temporary
    file, then renamed), so an interrupted run loses at most the epoch in progress."""

    def __init__(self, directory: Path, args: argparse.Namespace) -> None:
        self.path = directory / "state.pt"
        self.setup = {"epochs": args.epochs, "seed": args.seed, "max_train": args.max_train, "zoo": str(args.zoo)}
        self.best, self.best_state, self.seconds = -1.0, None, 0.0

    def resume(self, model: nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator) -> int:
        """Load a kept run of the same setup; the first epoch still to train."""
        if not self.path.exists():
            return 0
        state = torch.load(self.path, map_location="cpu", weights_only=False)
        kept = {k: v for k, v in state["setup"].items() if k != "epochs"}
        if kept != {k: v for k, v in self.setup.items() if k != "epochs"}:
            raise SystemExit(f"{self.path} holds a run of another setup ({state['setup']}); pass another --out")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        self.best, self.best_state, self.seconds = state["best"], state["best_state"], state["seconds"]
        print(f"nfn-hnp: resumed after epoch {state['epoch'] + 1} from {self.path}", flush=True)
        return state["epoch"] + 1

    def end_epoch(self, epoch: int, val_acc: float, seconds: float, model: nn.Module, opt: torch.optim.Optimizer,
                  gen: torch.Generator) -> None:  # fmt: skip
        self.seconds += seconds
        if val_acc > self.best:
            self.best, self.best_state = val_acc, copy.deepcopy(model.state_dict())
        state = {"setup": self.setup, "epoch": epoch, "best": self.best, "best_state": self.best_state,
                 "seconds": self.seconds, "model": model.state_dict(), "optimizer": opt.state_dict(),
                 "generator": gen.get_state()}  # fmt: skip
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        torch.save(state, partial)
        partial.replace(self.path)


def train_ours(model: str, zoo: str, args: argparse.Namespace) -> dict[str, Any]:
    """A ``dwsnets`` model with the registry's defaults, through the package's Trainer."""
    from dwsnets.baselines import model_spec
    from dwsnets.training import TrainConfig, Trainer

    config = TrainConfig(model=model, task="classify", epochs=args.epochs, seed=args.seed, max_train=args.max_train)
    trainer = Trainer(zoo, Path(args.out) / f"{model}-seed{args.seed}", config, progress=False)
    history = trainer.fit()["history"]
    test = trainer.evaluate("test")
    return {"model": f"{model_spec(model).label} (dwsnets defaults)", "best_val": max(h["val_accuracy"] for h in history),
            "test": test["accuracy"], "train_seconds": sum(h["epoch_seconds"] for h in history),
            "parameters": _count(trainer.model)}  # fmt: skip


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo", required=True, help="an image INR zoo (dwsnets fit-inrs)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-train", type=int, help="the first N training INRs only (quick checks)")
    parser.add_argument("--models", default="dwsnet,default,nfn-hnp",
                        help="comma-separated: dwsnet, sign-equivariant, default (what the plain dwsnets train "
                             "classify command trains on this zoo), nfn-hnp")  # fmt: skip
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's choice)")
    parser.add_argument(
        "--out", default="runs/nfn-side-by-side", help="where both runs are kept (resumed with the same command)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    choices = ("dwsnet", "sign-equivariant", "default", "nfn-hnp")
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if unknown := [m for m in names if m not in choices]:
        parser.error(f"unknown models {', '.join(unknown)}; choose from {', '.join(choices)}")
    from dwsnets.experiments import default_model_for

    names = list(dict.fromkeys(default_model_for(args.zoo, "classify") if m == "default" else m for m in names))
    rows = [train_nfn(args.zoo, args) if name == "nfn-hnp" else train_ours(name, args.zoo, args) for name in names]
    for row in rows:
        print(json.dumps(row))
    print(f"\n{args.epochs} epochs, seed {args.seed}, zoo {args.zoo}, {torch.get_num_threads()} torch threads\n")
    print("| model | best validation (%) | test (%) | training time | parameters |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {100 * row['best_val']:.2f} | {100 * row['test']:.2f} | "
              f"{row['train_seconds']:.0f} s | {row['parameters']:,} |")  # fmt: skip


if __name__ == "__main__":
    main()
