"""Process-level helpers: the OpenMP spin default that lets jobs share the CPU."""

from __future__ import annotations

import os
import subprocess
import sys

from dwsnets.utils import FAIR_SPINCOUNT


def _spincount_after(code: str, **extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env.update(extra)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]  # the last line: what the code printed after the command


def test_importing_dwsnets_changes_nothing_and_the_command_line_sets_a_short_openmp_spin():
    show = "import os, sys; print(os.environ.get('GOMP_SPINCOUNT', 'unset'), 'torch' in sys.modules)"
    # no side effect on import, and torch is not even loaded until a name needs it
    assert _spincount_after("import dwsnets; " + show) == "unset False"
    assert _spincount_after("import dwsnets; dwsnets.WeightSpace; " + show) == "unset True"
    cli = "from dwsnets.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
    assert _spincount_after(cli + show) == f"{FAIR_SPINCOUNT} True"
    # never over a user's own choice, and never after torch has loaded (too late to matter)
    assert _spincount_after(cli + show, GOMP_SPINCOUNT="7") == "7 True"
    assert _spincount_after(cli + show, OMP_WAIT_POLICY="PASSIVE") == "unset True"
    assert _spincount_after("import torch\n" + cli + show) == "unset True"


def test_compiled_kernels_are_cached_apart_per_cpu_capability(tmp_path):
    """torch.compile's disk cache mixed kernels built under ATen's AVX512 and AVX2
    capabilities, and a process held to AVX2 then computed garbage from the others'
    (tests/test_inr.py failed with NaNs after a native run). Each capability gets its own
    directory, and both compute what the eager kernels compute."""
    import os
    import subprocess
    import sys

    script = (
        "import torch, os\n"
        "from dwsnets.inr.fitting import sine_with_cosine_, _sine_with_cosine_eager\n"
        "bad = 0\n"
        "for shape in [(4, 784, 32), (3, 64, 8), (5, 17, 3), (2, 10, 7)]:\n"
        "    z = torch.randn(*shape) * 3; c = torch.empty_like(z); z2 = z.clone(); c2 = torch.empty_like(z)\n"
        "    sine_with_cosine_(z, c); _sine_with_cosine_eager(z2, c2)\n"
        "    bad += not (torch.allclose(z, z2, atol=1e-5) and torch.allclose(c, c2, atol=1e-5))\n"
        "print(bad, os.environ['TORCHINDUCTOR_CACHE_DIR'], torch.backends.cpu.get_cpu_capability())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TORCHINDUCTOR_CACHE_DIR", "ATEN_CPU_CAPABILITY")}
    env["TMPDIR"] = str(tmp_path)  # torch's default cache lies under the temporary directory
    seen = []
    for capability in (None, "avx2"):  # the native one first: its kernels were the ones misread
        run_env = env if capability is None else {**env, "ATEN_CPU_CAPABILITY": capability}
        done = subprocess.run([sys.executable, "-c", script], env=run_env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        bad, directory, used = done.stdout.split()
        assert bad == "0", (capability, done.stderr[-2000:])
        seen.append((directory, used))
    (native_dir, native), (avx2_dir, avx2) = seen
    assert native_dir.startswith(str(tmp_path)) and avx2_dir.endswith("dwsnets-avx2") and avx2 == "AVX2"
    assert (native_dir == avx2_dir) == (native == avx2)  # apart unless this CPU's native capability is AVX2
