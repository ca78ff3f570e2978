"""Forward + backward time and peak memory of a 5-layer DWSNet classifier.

    python benchmarks/bench_dwsnet.py [--device cpu|cuda] [--threads 2] [--repeats 20]

Cases: input MLPs 2-32-32-1 and 2-128-128-128-1, 32 channels, batch 32, 5 equivariant
layers, 10 classes, cross-entropy loss. Beside DWSNet it times a *bare channel-mixing
stack* of the same size (one dense channel map per tensor and layer, ReLU, mean pooling,
the same head; no equivariant structure): the floor that any model of this width pays. ``--models dwsnet,sign-equivariant`` times
the sign-equivariant model (:mod:`dwsnets.nn.sign_equivariant`, same width and depth)
against DWSNet instead.

``--norm batch`` puts :class:`~dwsnets.WSBatchNorm` after every equivariant layer, as the
classifier of ``dwsnets train`` does. ``--optimizer`` times the whole training step (an
AdamW step included) and ``--bf16`` runs it under bf16 autocast (``dwsnets train --bf16``),
for both models. ``--tuned-malloc`` applies :func:`dwsnets.utils.tune_cpu_allocator` (glibc keeps freed
memory instead of page-faulting it back in every step) in both models' processes.

Each (case, model) runs in a fresh subprocess, so one model's allocator state does not
slow or speed the other; the ratio column compares the two from the same invocation.
Peak memory: on CPU the growth of the process's resident set during one training step
(sampled), on CUDA ``torch.cuda.max_memory_allocated`` above the resident model and data.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import torch
from torch import nn

CASES = [(2, 32, 32, 1), (2, 128, 128, 128, 1)]
MODELS = ["dwsnet", "bare-stack"]
EXTRA_MODELS = ["sign-equivariant"]  # timed only when named in --models


class BareChannelStack(nn.Module):
    """Per tensor and layer one channel-mixing matmul + ReLU, then mean pooling and the
    same MLP head as DWSNet: no equivariant terms at all."""

    def __init__(self, n_tensors: int, channels: int, layers: int, classes: int) -> None:
        super().__init__()
        self.first = nn.ParameterList([nn.Parameter(torch.randn(1, channels)) for _ in range(n_tensors)])
        self.rest = nn.ParameterList(
            [nn.Parameter(torch.randn(channels, channels) / channels**0.5) for _ in range(n_tensors * (layers - 1))]
        )
        self.n, self.layers = n_tensors, layers
        self.head = nn.Sequential(nn.Linear(n_tensors * channels, 256), nn.ReLU(), nn.Linear(256, classes))

    def forward(self, ws) -> torch.Tensor:
        pooled = []
        for i, t in enumerate(ws.tensors):
            x = t.movedim(1, -1)  # channels last
            x = torch.relu(x @ self.first[i])
            for layer in range(self.layers - 1):
                x = torch.relu(x @ self.rest[layer * self.n + i])
            pooled.append(x.reshape(x.shape[0], -1, x.shape[-1]).mean(1))
        return self.head(torch.cat(pooled, 1))


class PeakRSS:
    """Peak growth of this process's resident memory during a block (sampled every 0.5 ms)."""

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self.base = self.peak = self._rss()
        self._stop = False
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.0005)

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def worker(sizes: tuple[int, ...], name: str, args: argparse.Namespace) -> dict:
    from dwsnets import DWSNet, WeightSpace
    from dwsnets.utils import tune_cpu_allocator

    if args.tuned_malloc:
        tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = args.device
    ws = WeightSpace.randn(sizes, args.batch, device=device)
    labels = torch.randint(0, 10, (args.batch,), device=device)
    if name == "sign-equivariant":
        from dwsnets.nn.sign_equivariant import SignEquivariantNet

        model = SignEquivariantNet(sizes, 10, hidden_channels=args.channels, num_layers=args.layers)
    elif name == "dwsnet":
        model = DWSNet(
            sizes,
            10,
            hidden_channels=args.channels,
            num_layers=args.layers,
            norm=None if args.norm == "none" else args.norm,
        )
    else:
        model = BareChannelStack(len(ws.tensors), args.channels, args.layers, 10)
    if args.compile:
        from dwsnets.nn import compile_kernels

        compile_kernels(model)
    model.to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3) if args.optimizer else None
    amp_device = "cuda" if device.startswith("cuda") else "cpu"

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with torch.autocast(amp_device, dtype=torch.bfloat16, enabled=args.bf16):
            loss = loss_fn(model(ws), labels)
        loss.backward()
        if optimizer is not None:
            optimizer.step()

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    # peak memory of one step, measured first while the allocator is fresh
    if device.startswith("cuda"):
        step()
        model.zero_grad(set_to_none=True)
        sync()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        sync()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        with PeakRSS() as meter:
            step()
        peak = meter.peak - meter.base
    for _ in range(2):
        step()
    sync()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return {"median": statistics.median(times), "best": min(times), "peak": peak}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--cases",
        default=",".join("-".join(map(str, c)) for c in CASES),
        help="comma-separated input MLP sizes, e.g. 2-32-32-1",
    )
    parser.add_argument(
        "--norm",
        choices=["none", "batch"],
        default="none",
        help="DWSNet normalisation (batch: WSBatchNorm after every layer, as in `dwsnets train`)",
    )
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument(
        "--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS + EXTRA_MODELS)
    )
    parser.add_argument(
        "--tuned-malloc",
        action="store_true",
        help="apply dwsnets.utils.tune_cpu_allocator() in both models' processes (CPU)",
    )
    parser.add_argument(
        "--optimizer", action="store_true", help="include an AdamW step: the whole training step (both models)"
    )
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (both models), as `dwsnets train --bf16`")
    parser.add_argument(
        "--compile", action="store_true", help="batch norm's fused compiled kernels (dwsnets train --compile)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        sizes_text, name = args.worker.split(":")
        print(json.dumps(worker(tuple(int(s) for s in sizes_text.split("-")), name, args)))
        return
    print(
        f"# torch {torch.__version__}, device {args.device}, threads {args.threads}, batch {args.batch}, "
        f"channels {args.channels}, {args.layers} equivariant layers, median of {args.repeats}, "
        f"allocator {'tuned' if args.tuned_malloc else 'default'}, dwsnet norm {args.norm}, "
        f"{'bf16 autocast' if args.bf16 else 'float32'}{', AdamW step included' if args.optimizer else ''}"
        f"{', compiled batch-norm kernels' if args.compile else ''}"
    )
    passthrough = [
        f"--{k}={getattr(args, k)}" for k in ("device", "threads", "repeats", "batch", "channels", "layers", "norm")
    ]
    passthrough += [
        f"--{flag}"
        for flag in ("tuned-malloc", "optimizer", "bf16", "compile")
        if getattr(args, flag.replace("-", "_"))
    ]
    for sizes in [tuple(int(d) for d in case.split("-")) for case in args.cases.split(",")]:
        results = {}
        for name in args.models.split(","):
            tag = "-".join(map(str, sizes))
            proc = subprocess.run(
                [sys.executable, __file__, f"--worker={tag}:{name}", *passthrough],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                print(f"{tag:>18}  {name:<16}  FAILED\n{proc.stderr[-2000:]}", flush=True)
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results[name] = r
            extra = ""
            if name == "bare-stack" and "dwsnet" in results:
                extra = f"  dwsnet/bare {results['dwsnet']['median'] / r['median']:.2f}x"
            elif name == "sign-equivariant" and "dwsnet" in results:
                extra = f"  sign-equivariant/dwsnet {r['median'] / results['dwsnet']['median']:.2f}x"
            print(
                f"{tag:>18}  {name:<16}  {'step' if args.optimizer else 'fwd+bwd'} median {r['median'] * 1e3:8.1f} ms "
                f"(best {r['best'] * 1e3:8.1f} ms, {args.batch / r['median']:7.0f} INRs/s)  peak mem {r['peak'] / 2**20:7.1f} MiB{extra}",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])
