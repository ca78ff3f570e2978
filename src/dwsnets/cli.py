"""Command-line interface: ``dwsnets <command>``.

Commands:
    demo    fit a synthetic zoo of MLPs and train DWSNet beside a flattened-weight MLP
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import nn

__all__ = ["main"]


def _progress(iterable, **kwargs):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional for the library, used when present
        return iterable
    return tqdm(iterable, **kwargs)


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


def cmd_demo(args: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dwsnets", description="Learning on the weights of neural networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train DWSNet on a synthetic zoo of MLPs (about a minute on a CPU)")
    demo.add_argument("--networks", type=int, default=2000)
    demo.add_argument("--hidden", type=int, default=16)
    demo.add_argument("--classes", type=int, default=4)
    demo.add_argument("--epochs", type=int, default=25)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .utils import tune_cpu_allocator

    args = build_parser().parse_args(argv)
    tune_cpu_allocator()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
