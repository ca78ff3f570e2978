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
    return out.stdout.strip()


def test_importing_dwsnets_first_sets_a_short_openmp_spin():
    show = "import os; print(os.environ.get('GOMP_SPINCOUNT', 'unset'))"
    assert _spincount_after("import dwsnets; " + show) == str(FAIR_SPINCOUNT)
    # never over a user's own choice, and never after torch has loaded (too late to matter)
    assert _spincount_after("import dwsnets; " + show, GOMP_SPINCOUNT="7") == "7"
    assert _spincount_after("import dwsnets; " + show, OMP_WAIT_POLICY="PASSIVE") == "unset"
    assert _spincount_after("import torch, dwsnets; " + show) == "unset"
