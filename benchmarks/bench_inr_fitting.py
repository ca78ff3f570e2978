"""INR-steps per second of the batched SIREN fitter against the usual alternatives.

    python benchmarks/bench_inr_fitting.py [--threads 2] [--inrs 256] [--steps 30] [--repeats 5]

All three fit SIRENs 2-32-32-1 (w0 = 30) to 28x28 images with Adam, no early stop, and
are measured in the same run, each after the same warm-up (a short fit of its own), then
``--repeats`` times in turn (so that a change in the machine's load reaches every method
alike); the medians are compared:

* per-INR loop: one ``nn.Module`` and one ``torch.optim.Adam`` per image, stepped one at a
  time (how public projects fit INRs);
* batched autograd: every INR's parameters stacked into ``(N, ...)`` tensors, a ``bmm``
  forward, ``loss.sum().backward()`` and ``torch.optim.Adam`` (the straightforward way to
  batch);
* ``dwsnets.inr.fit_sirens``: hand-written batched forward/backward, flat Adam, chunked
  active set and reused workspaces.

Images: Fashion-MNIST when installed (``apt-get install dataset-fashion-mnist``),
otherwise random images of the same size (throughput does not depend on content).
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from dwsnets.inr import Siren, coordinate_grid, fit_sirens, fitting, siren_init
from dwsnets.utils import hardware, tune_cpu_allocator


def images(n: int) -> tuple[torch.Tensor, str]:
    path = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
    if path.exists():
        with gzip.open(path) as f:
            data = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
        return torch.tensor(data[:n], dtype=torch.float32).div(255).reshape(n, 784, 1), "Fashion-MNIST"
    return torch.rand(n, 784, 1), "random images"


def per_inr_loop(coords: torch.Tensor, targets: torch.Tensor, steps: int, lr: float) -> float:
    t0 = time.perf_counter()
    for i in range(targets.shape[0]):
        net = Siren((2, 32, 32, 1))
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            loss = ((net(coords) - targets[i]) ** 2).mean()
            loss.backward()
            opt.step()
    return targets.shape[0] * steps / (time.perf_counter() - t0)


def batched_autograd(coords: torch.Tensor, targets: torch.Tensor, steps: int, lr: float, w0: float = 30.0) -> float:
    n = targets.shape[0]
    params = [p.requires_grad_() for p in siren_init((2, 32, 32, 1), n, w0)]
    opt = torch.optim.Adam(params, lr=lr)
    x = coords.unsqueeze(0).expand(n, -1, -1)
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        h = x
        for m in range(3):
            z = torch.baddbmm(params[2 * m + 1].unsqueeze(1), h, params[2 * m].transpose(1, 2))
            h = torch.sin(w0 * z) if m < 2 else z
        loss = ((h - targets) ** 2).mean(dim=(1, 2)).sum()
        loss.backward()
        opt.step()
    return n * steps / (time.perf_counter() - t0)


def ours(coords: torch.Tensor, targets: torch.Tensor, steps: int, lr: float, chunk: int) -> float:
    n = targets.shape[0]
    t0 = time.perf_counter()
    fit_sirens(coords, targets, range(n), lr=lr, max_steps=steps, target_psnr=None, chunk=chunk)
    return n * steps / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--inrs", type=int, default=256, help="INRs for the batched methods")
    parser.add_argument("--loop-inrs", type=int, default=8, help="INRs for the per-INR loop")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--chunk", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each method (medians reported)")
    parser.add_argument("--default-malloc", action="store_true", help="do not call tune_cpu_allocator()")
    parser.add_argument("--eager-sine", action="store_true",
                        help="the fitter's separate eager sine and cosine, not its fused pass (as before 2026-11-29)")  # fmt: skip
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.default_malloc:
        tune_cpu_allocator()
    if args.eager_sine:
        fitting._fused_failed = True  # the eager pair, exactly as when no compiler is available
    targets, name = images(args.inrs)
    coords = coordinate_grid(28, 28)
    print(
        f"# torch {torch.__version__}, {torch.get_num_threads()} threads, SIREN 2-32-32-1 on 28x28 {name}, "
        f"{args.steps} steps, chunk {args.chunk}, allocator {'default' if args.default_malloc else 'tuned'}, "
        f"{'eager' if args.eager_sine else 'fused'} sine; {hardware('cpu')}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    methods = {
        "per-INR loop": lambda steps: per_inr_loop(coords, targets[: args.loop_inrs], steps, args.lr),
        "batched autograd": lambda steps: batched_autograd(coords, targets, steps, args.lr),
        "dwsnets fit_sirens": lambda steps: ours(coords, targets, steps, args.lr, args.chunk),
    }
    for method in methods.values():  # the same warm-up for every method
        method(3)
    rates: dict[str, list[float]] = {label: [] for label in methods}
    for _ in range(args.repeats):
        for label, method in methods.items():
            rates[label].append(method(args.steps))
    mine = statistics.median(rates["dwsnets fit_sirens"])
    for label, runs in rates.items():
        rate = statistics.median(runs)
        print(f"{label:<20} {rate:10,.0f} INR-steps/s (median of {len(runs)}, range {min(runs):,.0f} to "
              f"{max(runs):,.0f})   dwsnets is {mine / rate:5.2f}x")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
