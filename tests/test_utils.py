"""Process-level helpers: the OpenMP spin default that lets jobs share the CPU."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest
import torch

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


@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64") or torch.backends.cpu.get_cpu_capability() == "AVX2",
    reason="needs an x86 CPU with a vector width above AVX2's, to hold torch to a narrower one",
)
def test_compiled_kernels_of_one_vector_width_are_never_read_at_another(tmp_path):
    """torch.compile's disk cache keyed kernels without their vector width: after a native
    (AVX512) run, a process held to ATEN_CPU_CAPABILITY=avx2 read AVX512 graphs and left part
    of every output unwritten. With the width pinned in the compile config, both processes
    compute what the eager kernels compute from one shared cache (control: the widths differ)."""
    import os
    import subprocess
    import sys

    script = (
        "import torch\n"
        "import torch._inductor.config as config\n"
        "from dwsnets.inr.fitting import sine_with_cosine_, _sine_with_cosine_eager\n"
        "bad = 0\n"
        "for shape in [(6, 50, 8), (4, 784, 32), (5, 17, 3), (2, 10, 7)]:\n"
        "    z = torch.randn(*shape) * 20; c = torch.empty_like(z); z2 = z.clone(); c2 = torch.empty_like(z)\n"
        "    sine_with_cosine_(z, c); _sine_with_cosine_eager(z2, c2)\n"
        "    bad += not (torch.allclose(z, z2, atol=1e-5) and torch.allclose(c, c2, atol=1e-5))\n"
        "print(bad, config.cpp.simdlen, torch.backends.cpu.get_cpu_capability())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    env["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path / "cache")  # one cache, shared by both
    seen = []
    for capability in (None, "avx2"):  # the native one first: its graphs were the ones misread
        run_env = env if capability is None else {**env, "ATEN_CPU_CAPABILITY": capability}
        done = subprocess.run([sys.executable, "-c", script], env=run_env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        bad, width, used = done.stdout.split()
        assert bad == "0", (capability, done.stderr[-2000:])
        assert "could not be compiled" not in done.stderr  # compiled, not the eager fallback
        seen.append((int(width), used))
    (native_width, native), (avx2_width, avx2) = seen
    assert avx2 == "AVX2" and avx2_width == 256
    assert (native_width == avx2_width) == (native == "AVX2")  # this CPU's native width, unless it is AVX2
