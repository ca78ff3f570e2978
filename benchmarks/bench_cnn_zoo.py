"""Batched CNN-zoo training against a per-network PyTorch loop: same networks, one run.

Both train the same networks (the Small CNN Zoo architecture, each with its drawn
activation, dropout, L2 weight, optimiser and learning rate: dwsnets.zoo.cnns) for the
same number of steps on mini-batches of 32 Fashion-MNIST images (random images stand in
when the data set is not installed). The loop is what a user would write: one
``torch.nn`` CNN and one ``torch.optim`` optimiser per network, trained one after another.
The batched trainer runs the networks of one activation together as grouped convolutions.

Prints network-steps per second of each and their ratio, and the batched trainer's
image-steps per second. Run on an idle machine (``uptime``)::

    python benchmarks/bench_cnn_zoo.py --networks 32 --steps 40
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from dwsnets.zoo.cnns import BATCH, _train_group, draw_settings


def images() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from dwsnets.zoo.sources import load_images

        data = load_images("fashion-mnist", "train")
        x = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous() * 2 - 1
        return x, torch.from_numpy(data.labels)
    except Exception as exc:  # the data set is not installed: the speed does not depend on the pixels
        print(f"(random images: {exc})")
        return torch.rand(60000, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (60000,))


def loop_network(settings) -> tuple[nn.Module, torch.optim.Optimizer]:
    act = nn.ReLU if settings.activation == "relu" else nn.Tanh
    layers: list[nn.Module] = []
    for c_in in (1, 16, 16):
        layers += [nn.Conv2d(c_in, 16, 3, stride=2, padding=1), act(), nn.Dropout(settings.dropout)]
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    opt = {"adam": lambda p: torch.optim.Adam(p, settings.lr, eps=1e-7),
           "sgd": lambda p: torch.optim.SGD(p, settings.lr, momentum=0.9),
           "rmsprop": lambda p: torch.optim.RMSprop(p, settings.lr, alpha=0.9, eps=1e-7)}[settings.optimizer]  # fmt: skip
    return net, opt(net.parameters())


def run_loop(x: torch.Tensor, y: torch.Tensor, seeds: list[int], steps: int) -> float:
    start = time.perf_counter()
    for seed in seeds:
        settings, g = draw_settings(seed)
        net, opt = loop_network(settings)
        subset = torch.randperm(len(x), generator=g)[: int(len(x) * settings.train_fraction)]
        kernels = [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        for _ in range(steps):
            idx = subset[torch.randint(len(subset), (BATCH,), generator=g)]
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            loss = loss + settings.l2 * sum(k.square().sum() for k in kernels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return time.perf_counter() - start


def run_batched(x: torch.Tensor, y: torch.Tensor, seeds: list[int], steps: int, chunk: int) -> float:
    drawn = [draw_settings(s) for s in seeds]
    start = time.perf_counter()
    for activation in ("relu", "tanh"):
        group = [d for d in drawn if d[0].activation == activation]
        for i in range(0, len(group), chunk):
            part = group[i : i + chunk]
            _train_group(x, y, [d[0] for d in part], [d[1] for d in part], steps, None)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="alternating timings; medians are reported")
    args = parser.parse_args()
    x, y = images()
    seeds = list(range(args.networks))
    run_loop(x, y, seeds[:2], 5)  # warm-up of both paths
    run_batched(x, y, seeds[:2], 5, args.chunk)
    loop, batched = [], []
    for _ in range(args.repeats):
        loop.append(run_loop(x, y, seeds, args.steps))
        batched.append(run_batched(x, y, seeds, args.steps, args.chunk))
    work = args.networks * args.steps
    t_loop, t_batched = sorted(loop)[len(loop) // 2], sorted(batched)[len(batched) // 2]
    print(f"{args.networks} networks x {args.steps} steps, batch {BATCH}, torch threads {torch.get_num_threads()}")
    print(f"per-network loop: {t_loop:.2f} s, {work / t_loop:,.0f} network-steps/s")
    print(f"batched (chunk {args.chunk}): {t_batched:.2f} s, {work / t_batched:,.0f} network-steps/s, "
          f"{work * BATCH / t_batched:,.0f} image-steps/s")  # fmt: skip
    print(f"batched / loop: {t_loop / t_batched:.2f}x")


if __name__ == "__main__":
    main()
