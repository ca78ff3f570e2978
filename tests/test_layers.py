"""The package's folders import downward only: each layer may use the layers below it and
nothing above or beside it (models and tasks meet in the training layer)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1] / "src" / "dwsnets"
# each layer, and what it may import (besides itself); the top-level package's own modules
# (utils, testing, __init__) are at the bottom
BELOW = {
    "utils": set(),
    "core": {"utils"},
    "testing": {"core", "utils"},
    "nn": {"core", "utils"},
    "inr": {"core", "utils"},
    "zoo": {"core", "inr", "utils"},
    "baselines": {"core", "nn", "zoo", "utils"},
    "tasks": {"core", "nn", "inr", "zoo", "utils"},
    "training": {"core", "nn", "inr", "zoo", "baselines", "tasks", "utils"},
    "experiments": {"core", "nn", "inr", "zoo", "baselines", "tasks", "training", "utils"},
    "cli": {"core", "nn", "inr", "zoo", "baselines", "tasks", "training", "experiments", "utils", "__version__"},
}


def imports_between_layers() -> list[tuple[str, str, str]]:
    """``(layer, imported layer, file)`` for every relative import across layers, lazy and
    type-checking imports included."""
    found = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts == ("__init__.py",):
            continue  # the package's face re-exports every layer
        layer = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                base = list(rel.parts[:-1])
                base = base[: len(base) - (node.level - 1)]
                target = [*base, *(node.module or "").split(".")]
                other = target[0] if target and target[0] else node.names[0].name
                if other != layer:
                    found.append((layer, other, str(rel)))
    return found


def test_layers_import_downward_only():
    upward = [(a, b, f) for a, b, f in imports_between_layers() if b not in BELOW.get(a, set())]
    assert not upward, f"imports against the layering: {upward}"


def test_the_check_sees_imports_inside_functions():  # control: the scan can fail
    tree = ast.parse("def f():\n    from ..tasks import Task\n")
    assert any(isinstance(n, ast.ImportFrom) and n.module == "tasks" for n in ast.walk(tree))
    assert ("baselines", "zoo", "baselines/gbt.py") in imports_between_layers()
