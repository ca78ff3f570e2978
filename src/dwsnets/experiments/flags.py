"""The settings of a run as flags: one mapping between ``dwsnets train`` flags and
:class:`~dwsnets.training.TrainConfig`, in both directions, and ``config.toml`` files.

Every run directory holds a ``config.toml`` written by :func:`write_run_flags`: the flags
that reproduce it (``dwsnets train --config RUN/config.toml``). A flag is named by its
long option with dashes turned to underscores (``--batch-size`` is ``batch_size``); model
arguments form a ``[model_args]`` table.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..baselines import MODELS, PROTOCOLS
from ..tasks import get_task
from ..training.config import TrainConfig, TrainingError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "FLIPS",
    "config_from_flags",
    "flags_from_config",
    "flip_flag",
    "parse_flip",
    "parse_model_args",
    "read_flags_file",
    "write_run_flags",
]

FLIPS = {"none": (), "lr": (1,), "ud": (0,), "both": (0, 1)}
SIGNAL = ("rotate", "scale", "shear", "translate", "intensity_scale", "intensity_shift")
# flags whose TrainConfig field has the same name and meaning
SAME = ("model", "task", "epochs", "batch_size", "lr", "weight_decay", "warmup_fraction", "clip_grad", "amp",
        "noise", "ema_epochs", "entry_dropout", "sign_flips",
        "canonical_signs", "activation_symmetries", "seed",
        "max_train",
        "epoch_size", "train_views", "eval_views", "checkpoint_minutes", "compile", "tensorboard")  # fmt: skip


def parse_flip(text: str | None) -> tuple[int, ...]:
    """``--flip``: a name of :data:`FLIPS`, or input axes as comma-separated numbers (``0,2``)."""
    text = (text or "none").strip()
    if text in FLIPS:
        return FLIPS[text]
    try:
        axes = tuple(sorted({int(a) for a in text.split(",")}))
    except ValueError:
        raise TrainingError(f"flip must be one of {', '.join(FLIPS)} or input axes such as 0,2, got {text!r}") from None
    if any(a < 0 for a in axes):
        raise TrainingError(f"flip axes must not be negative, got {text!r}")
    return axes


def flip_flag(axes: Any) -> str:
    """The ``--flip`` flag of mirrored input axes: its name where :data:`FLIPS` has one, else
    the axes (``0,2``), so every flip a config holds writes and reads back."""
    axes = tuple(sorted({int(a) for a in axes}))
    return next((name for name, known in FLIPS.items() if known == axes), ",".join(map(str, axes)))


def parse_model_args(items: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    """``["hidden_channels=64", "head_hidden=(512,)", "norm=None"]`` -> keyword arguments;
    values are Python literals where they parse as one, else strings. A dict passes through."""
    if not items:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise TrainingError(f"--model-arg takes KEY=VALUE (for example hidden_channels=64), got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = text.strip()
    return out


def config_from_flags(flags: dict[str, Any]) -> TrainConfig:
    """The (unresolved) :class:`TrainConfig` that ``dwsnets train`` flags describe; the
    task's own options are read by the names its :class:`~dwsnets.tasks.TaskOption` give."""
    task = get_task(flags.get("task", "classify"))
    augment = flags.get("augment")
    flip = parse_flip(flags.get("flip"))
    signal = {key: flags.get(key) for key in SIGNAL} | {"flip": list(flip)}
    return TrainConfig(
        **{key: flags[key] for key in SAME if key in flags and flags[key] is not None},
        task_options={opt.name: opt.parsed(flags.get(opt.dest, opt.default)) for opt in task.options},
        augment_permute=None if augment is None else augment == "on",
        signal={key: value for key, value in signal.items() if value},
        model_args=parse_model_args(flags.get("model_args")),
        amp_cpu=bool(flags.get("bf16", False)),
    )


def flags_from_config(config: TrainConfig) -> dict[str, Any]:
    """The ``dwsnets train`` flags of a :class:`TrainConfig` (the inverse of
    :func:`config_from_flags`; settings at ``None`` are left out)."""
    cfg = asdict(config)
    flags: dict[str, Any] = {key: cfg[key] for key in SAME if cfg[key] is not None}
    task = get_task(config.task)
    for opt in task.options:
        value = config.task_options.get(opt.name, opt.default)
        if value is not None:
            flags[opt.dest] = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value
    if config.augment_permute is not None:
        flags["augment"] = "on" if config.augment_permute else "off"
    for key in SIGNAL:
        if config.signal.get(key):
            flags[key] = config.signal[key]
    flags["flip"] = flip_flag(config.signal.get("flip", ()))
    flags["bf16"] = config.amp_cpu
    if config.model_args:
        flags["model_args"] = {k: _toml_value(v) for k, v in config.model_args.items()}
    return flags


def _toml_value(value: Any) -> Any:
    """A model argument as TOML holds it: numbers, booleans and strings as they are, anything
    else (``None``, tuples) as its Python literal, which :func:`parse_model_args` reads back."""
    if isinstance(value, (bool, int, float)) or (isinstance(value, str) and not _is_literal(value)):
        return value
    return repr(value)


def _is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return False
    return True


def write_run_flags(path: Path, config: TrainConfig, zoo: str, out: str) -> None:
    """``config.toml``: the flags that reproduce a run (``dwsnets train --config PATH``)."""
    import tomli_w

    flags = {"zoo": zoo, "out": out, **flags_from_config(config)}
    text = "# dwsnets train --config THIS_FILE reproduces this run; flags given beside it win\n"
    if config.model is not None and config.model in MODELS:
        protocol = MODELS[config.model].protocol
        text += f"# protocol: {protocol} ({PROTOCOLS[protocol]})\n"
    path.write_text(text + tomli_w.dumps(flags))


def read_flags_file(path: str | Path) -> dict[str, Any]:
    """The flags of a ``--config`` TOML file; :class:`TrainingError` naming the problem."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise TrainingError(f"--config {path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TrainingError(f"--config {path} is not valid TOML ({exc})") from None
