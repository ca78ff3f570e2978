"""DWSNet training steps when several processes share the CPU.

    python benchmarks/bench_sharing.py [--processes 1,2,3] [--threads 0] [--passive | --spincount N]
        [--batch 32] [--norm none|batch] [--steps 25]

Runs the same training step (input MLPs 2-32-32-1, 5 equivariant layers of 32 channels,
batch 32, no normalisation, cross-entropy, backward and an AdamW update) in P processes at once and prints each
process's median step time. With a fair share of the cores, P processes each take about P
times the single-process time on a machine with fewer cores than threads in use.
``--passive`` sets ``OMP_WAIT_POLICY=PASSIVE`` in the workers (before torch loads), so idle
OpenMP threads sleep instead of spinning; ``--spincount N`` sets ``GOMP_SPINCOUNT`` (how
long an idle thread of torch's GNU OpenMP spins before it sleeps; the default policy spins
for 300,000 iterations, passive for none); ``--threads N`` sets torch's thread count (0: its
default). ``--batch`` and ``--norm batch`` make the step the classifier's training step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def worker(threads: int, steps: int, batch: int, norm: str) -> None:
    import torch
    from torch import nn

    from dwsnets import DWSNet, WeightSpace
    from dwsnets.utils import tune_cpu_allocator

    tune_cpu_allocator()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    ws = WeightSpace.randn((2, 32, 32, 1), batch)
    labels = torch.randint(0, 10, (batch,))
    model = DWSNet((2, 32, 32, 1), 10, hidden_channels=32, num_layers=5, norm=None if norm == "none" else norm)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(ws), labels).backward()
        optimizer.step()

    for _ in range(5):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    print(f"{statistics.median(times) * 1e3:.1f} {min(times) * 1e3:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default="1,2,3", help="comma-separated process counts to try")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per process (0: torch's default)")
    parser.add_argument("--passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE in every worker")
    parser.add_argument("--spincount", type=int, help="GOMP_SPINCOUNT in every worker")
    parser.add_argument("--batch", type=int, default=32, help="networks per step")
    parser.add_argument("--norm", choices=["none", "batch"], default="none", help="DWSNet normalisation")
    parser.add_argument("--steps", type=int, default=25, help="timed steps per process")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.threads, args.steps, args.batch, args.norm)
        return
    env = dict(os.environ)
    if args.passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    if args.spincount is not None:
        env["GOMP_SPINCOUNT"] = str(args.spincount)
    waiting = (
        "passive" if args.passive else f"GOMP_SPINCOUNT={args.spincount}" if args.spincount is not None else "default"
    )
    load = os.getloadavg()[0]
    print(f"# {os.cpu_count()} cores, load average {load:.2f} before starting, threads per process "
          f"{args.threads or 'default'}, OpenMP waiting {waiting}, batch {args.batch}, norm {args.norm}")  # fmt: skip
    command = [sys.executable, __file__, "--worker", "--threads", str(args.threads), "--steps", str(args.steps),
               "--batch", str(args.batch), "--norm", args.norm]  # fmt: skip
    for count in (int(x) for x in args.processes.split(",")):
        procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(count)]
        results = [p.communicate()[0].split() for p in procs]
        medians = ", ".join(f"{float(r[0]):.1f} ms" for r in results)
        print(f"{count} process(es) at once: median step {medians}")


if __name__ == "__main__":
    main()
