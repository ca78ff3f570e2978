"""One tuning protocol for every model of a table: the same number of validation-scored
configurations each (``dwsnets table --tune N``).

Each model has a search space: the training settings and model arguments to try, as lists
of values. ``--tune N`` draws N configurations per model from it (the model's defaults
first, then distinct draws from a fixed seed), trains each once (seed 0), scores it on the
validation split only, and keeps the best; the table's seeds then train with that
configuration, and the test split is read once per chosen configuration. Without a grid of
its own (``--tune-grid FILE``: a TOML table per model), a model's space is the same shape
for all: its default learning rate times 1/4 to 4, batch 64 or 128, weight decay 0 to
5e-3. Models fitted in one call (``statnn-gbt``) choose on validation with their own grid.
"""

from __future__ import annotations

import itertools
import json
import random
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..baselines import MODELS, model_spec
from ..training.config import TrainConfig, TrainingError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["TUNABLE", "apply_overrides", "candidates", "default_space", "draw_configurations", "read_grid_file"]

# the optimisation settings a search may change (never the data, the epochs or the precision, which
# would make the models' tables incomparable)
TUNABLE = ("lr", "batch_size", "weight_decay", "warmup_fraction", "clip_grad", "noise", "entry_dropout",
           "ema_epochs", "augment_permute")  # fmt: skip


def default_space(model: str, lr: float | None = None) -> dict[str, list[Any]]:
    """The search space a model gets without a grid of its own, the same shape for all: its
    learning rate (``lr``, else the model's default) times 1/4 to 4, batch 64 or 128,
    weight decay 0 to 5e-3."""
    lr = model_spec(model).lr if lr is None else lr
    return {"lr": [lr * f for f in (0.25, 0.5, 1.0, 2.0, 4.0)], "batch_size": [64, 128],
            "weight_decay": [0.0, 5e-4, 5e-3]}  # fmt: skip


def draw_configurations(space: dict[str, list[Any]], count: int, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` distinct configurations of ``space`` (``{setting: values}``): the defaults
    (no overrides) first, then draws without repetition from a seeded shuffle of the grid."""
    if count < 1:
        raise TrainingError(f"--tune needs at least one configuration, got {count}")
    names = sorted(space)
    grid = [dict(zip(names, values)) for values in itertools.product(*(space[n] for n in names))]
    random.Random(seed).shuffle(grid)
    return [{}, *grid]  # the caller keeps the first ``count`` that differ once applied (candidates)


def candidates(base: TrainConfig, space: dict[str, list[Any]], count: int, model: str,
               seed: int = 0) -> list[tuple[dict[str, Any], TrainConfig]]:  # fmt: skip
    """The first ``count`` configurations of ``space`` that differ once applied to ``base``
    and resolved (the defaults first; a grid point equal to them, or to another, is skipped),
    every one checked now; a :class:`TrainingError` when the space holds fewer, so every
    model gets the same budget."""
    kept: list[tuple[dict[str, Any], TrainConfig]] = []
    for overrides in draw_configurations(space, count, seed):
        try:
            config = apply_overrides(base, overrides).resolved()
        except (TypeError, ValueError) as exc:
            raise TrainingError(f"tuning grid of {model}: {overrides} does not make a valid run ({exc})") from None
        if all(config != other for _, other in kept):
            kept.append((overrides, config))
        if len(kept) == count:
            return kept
    raise TrainingError(f"the search space of {model} holds {len(kept)} distinct configurations, fewer than "
                        f"--tune {count}: every model gets the same budget, so use --tune {len(kept)} or a larger grid")  # fmt: skip


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """``config`` with a configuration's settings: TrainConfig fields by name, model
    arguments as ``model_args.NAME``; anything else is refused in one line."""
    plain = {k: v for k, v in overrides.items() if not k.startswith("model_args.")}
    unknown = sorted(set(plain) - set(TUNABLE))
    if unknown:
        raise TrainingError(f"tuning grid: setting(s) {unknown} cannot be tuned; tune {', '.join(TUNABLE)} or "
                            "model_args.NAME")  # fmt: skip
    args = {k.removeprefix("model_args."): v for k, v in overrides.items() if k.startswith("model_args.")}
    return replace(config, **plain, model_args={**config.model_args, **args})


def read_grid_file(path: str | Path) -> dict[str, dict[str, list[Any]]]:
    """``--tune-grid FILE``: ``[MODEL]`` tables whose keys are settings and values lists."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise TrainingError(f"--tune-grid {path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TrainingError(f"--tune-grid {path} is not valid TOML ({exc})") from None
    for model, space in data.items():
        if model not in MODELS or not isinstance(space, dict):
            raise TrainingError(f"--tune-grid {path}: [{model}] is not a model of the registry")
        if MODELS[model].fit is not None:
            raise TrainingError(f"--tune-grid {path}: [{model}] is fitted in one call and chooses on validation with "
                                "its own grid")  # fmt: skip
        bad = [k for k, v in space.items() if not isinstance(v, list) or not v]
        if bad:
            raise TrainingError(f"--tune-grid {path}: [{model}] {bad} must be non-empty lists of values")
    return data


def write_tuning_record(path: Path, record: dict[str, Any]) -> None:
    """``tuning.json``: every configuration tried per model, its validation metric, the choice."""
    path.write_text(
        json.dumps(record, indent=1, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o))
    )
