"""Process-level helpers shared by every layer of the package.

* :func:`rank_and_world` / :func:`world_size`: where this process stands in a
  torch.distributed job (or in a ``torchrun`` launch that has not joined its group yet);
* :func:`atomic_write_bytes` / :func:`atomic_torch_save`: files that are either complete
  or absent, never half written;
* :func:`tune_cpu_allocator`: keep freed tensor memory for reuse (glibc);
* :func:`share_cpu_fairly`: OpenMP threads that stop spinning soon when idle (the command
  line calls it before torch loads; importing dwsnets changes nothing);
* :func:`hardware`: one line saying where a run happened.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import os
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_torch_save",
    "atomic_write_bytes",
    "cpu_bf16_units",
    "gather_across_ranks",
    "hardware",
    "rank_and_world",
    "share_cpu_fairly",
    "tune_cpu_allocator",
    "world_size",
]

# OpenMP spin count between "spin forever" (GNU OpenMP's default of 300,000 iterations, which
# makes two jobs on the same cores 5 to 70 times slower each) and "sleep at once" (passive,
# which costs a lone job 1.5x); measured in docs/benchmarks.md
FAIR_SPINCOUNT = 1000


def pin_compiled_vector_width() -> int | None:
    """Name the vector width torch.compile generates CPU code for (``cpp.simdlen``), so that
    its on-disk cache keeps kernels of different widths apart; returns the width in bits.

    Left unset (torch 2.13's default), the width follows ATen's CPU capability
    (``ATEN_CPU_CAPABILITY``) but is not part of the cache key: a process held to AVX2 read
    graphs generated for AVX512 after a native run and ran their loops with 8 lanes where
    they were written for 16, leaving part of every output unwritten (NaNs and 1e-310 in the
    fitter's fused sine; 14 to 32 tests failed that way, and a native process reading AVX2
    graphs crashed with a double free). Naming the width the process would use anyway changes
    no kernel and puts the width in the key; the setting is the process's, so a program's own
    torch.compile calls get it too (the same kernels, and one cache miss for graphs compiled
    before it). A width the user set is left alone. Called before
    each torch.compile of the package (importing dwsnets changes nothing)."""
    try:
        import torch._inductor.config as config
        from torch._inductor.cpu_vec_isa import pick_vec_isa

        if config.cpp.simdlen is None:
            # no vector ISA (width 0): 1 names the scalar code, which pick_vec_isa maps to the same
            config.cpp.simdlen = pick_vec_isa().bit_width() or 1
        return config.cpp.simdlen
    except Exception:  # another torch's layout, or its ISA probe failing: compiling decides, as before
        return None


def share_cpu_fairly(environ: dict[str, str] | None = None) -> bool:
    """Set ``GOMP_SPINCOUNT=1000`` for torch's OpenMP threads, unless ``GOMP_SPINCOUNT`` or
    ``OMP_WAIT_POLICY`` is already set or torch is already loaded (OpenMP reads its settings
    once, when torch loads). Idle threads then spin briefly and sleep, instead of spinning
    for about a millisecond: on the 2-core development machine a lone training step is as
    fast as with the default, and two jobs sharing the cores each run at about half speed
    instead of 5 to 70 times slower. Returns whether it set the variable."""
    env = os.environ if environ is None else environ
    if "torch" in sys.modules or "GOMP_SPINCOUNT" in env or "OMP_WAIT_POLICY" in env:
        return False
    env["GOMP_SPINCOUNT"] = str(FAIR_SPINCOUNT)
    return True


def rank_and_world(from_environment: bool = False) -> tuple[int, int]:
    """``(rank, world size)`` of this process: from the initialised torch.distributed group,
    else (with ``from_environment``) from the ``RANK``/``WORLD_SIZE`` variables ``torchrun``
    sets, else ``(0, 1)``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if from_environment and "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return 0, 1


def gather_across_ranks(x: Any) -> Any:
    """Every rank's tensor ``x`` (``(n_r, ...)``, the rows may differ in number) concatenated
    in rank order, ``(sum n_r, ...)``, differentiable: each rank's gradient flows back to the
    rank that computed its rows.

    A loss computed from the gathered tensor is the same on every rank; the backward sums
    the ranks' gradients for each slice, and DistributedDataParallel's average over ranks
    then gives exactly the one-process gradient. Outside torchrun, ``x`` itself."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    # ranks may hold different numbers of rows (a batch that the world size does not divide):
    # pad every part to the longest, gather, then keep each rank's own rows
    counts = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, torch.tensor([x.shape[0]], dtype=torch.long, device=x.device))
    sizes = [int(c) for c in counts]
    longest = max(sizes)
    padded = torch.nn.functional.pad(x.contiguous(), (0, 0) * (x.dim() - 1) + (0, longest - x.shape[0]))
    return torch.cat([part[:n] for part, n in zip(all_gather(padded), sizes)], dim=0)


def world_size() -> int:
    """Processes in the initialised torch.distributed group (1 without one)."""
    return rank_and_world()[1]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over
    ``path``: a reader (or a resumed run) sees the old file or the new one, never a part."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """:func:`torch.save` through :func:`atomic_write_bytes`."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_tuned = False


def tune_cpu_allocator(keep_bytes: int = 1 << 30) -> bool:
    """Stop glibc from handing freed tensor memory straight back to the OS.

    By default glibc serves large blocks with ``mmap`` and trims the heap eagerly, so a
    tensor of a few MiB allocated in every training step page-faults on every step. That
    costs as much as the arithmetic for weight-space models (measured in
    ``benchmarks/bench_dwsnet.py --tuned-malloc``). This raises glibc's mmap and trim
    thresholds (``mallopt``) so freed blocks are reused, the remedy PyTorch's CPU
    performance guide gives with jemalloc or tcmalloc. The cost is that the process keeps
    up to ``keep_bytes`` of freed memory. It acts on the whole process, so the library
    never calls it on import; ``dwsnets`` commands call it.

    Returns True when the settings took effect (glibc only), False otherwise.
    """
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mmap_ok = mallopt(_M_MMAP_THRESHOLD, min(keep_bytes, 1 << 30) // 2 if keep_bytes > 0 else 0)
    trim_ok = mallopt(_M_TRIM_THRESHOLD, min(keep_bytes, (1 << 31) - 1))
    _tuned = bool(mmap_ok and trim_ok)
    return _tuned


def cpu_bf16_units() -> str | None:
    """The CPU's bf16 matrix units that torch's CPU kernels (oneDNN) may use: ``"AMX"``,
    ``"AVX512-BF16"``, or ``None`` when there are none, or when oneDNN is capped below them
    (``ONEDNN_MAX_CPU_ISA``). Without them bf16 autocast on the CPU converts every operand
    and runs several times slower than float32 (6.7x measured on an AVX2-only EPYC)."""
    import torch

    try:
        flags = torch._C._cpu._get_cpu_capability()
        usable = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):  # a torch without these probes: claim nothing
        return None
    if not usable:
        return None
    if flags.get("amx_bf16"):
        return "AMX"
    if flags.get("avx512_bf16"):
        return "AVX512-BF16"
    return None


def hardware(device: str) -> str:
    """A one-line description of where a run happened."""
    import platform

    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(torch.device(device))}, torch {torch.__version__}"
    try:
        cpu = torch._C._cpu._get_cpu_capability().get("cpu_name") or platform.machine()
    except AttributeError:
        cpu = platform.processor() or platform.machine()
    threads = torch.get_num_threads()
    bf16 = cpu_bf16_units() or "no bf16 units"
    return (f"{os.cpu_count()}-core {cpu} CPU ({bf16}), {threads} torch thread{'s' * (threads != 1)}, "
            f"torch {torch.__version__}")  # fmt: skip
