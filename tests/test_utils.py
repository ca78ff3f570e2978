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
