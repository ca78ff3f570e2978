"""Command-line interface: ``dwsnets <command>``.

Commands (one module per family):
    demo        the main job: fit a digits INR zoo, train DWSNet and the MLP baseline (:mod:`.demo`)
    fit-inrs    fit one SIREN per image (or sine wave), or train classifiers or CNNs, into a sharded,
                resumable zoo (alias fit-zoo; :mod:`.zoo`)
    zoo-info    verify a zoo and print its splits and PSNR statistics
    merge-zoos  join zoo parts fitted in separate directories
    train       train a model for a task (``dwsnets train classify|regress ...``) (:mod:`.train`)
    evaluate    the test metrics of a trained run
    table       every model over several seeds, as a markdown table beside the paper's numbers
    compare     training runs side by side: the settings they differ in, their curves (:mod:`.compare`)

User errors (bad arguments, missing or corrupt data, mismatched runs) are reported here,
once, as one line naming the problem and the fix, with exit status 2.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

__all__ = ["build_parser", "main", "user_errors"]


def user_errors() -> tuple[type[Exception], ...]:
    """Errors that mean bad input or state: reported in one line, never as a traceback."""
    from ..baselines import BaselineError
    from ..core.weight_space import WeightSpaceError
    from ..tasks import TaskError
    from ..training.config import TrainingError
    from ..zoo.errors import ZooError
    from ..zoo.sources import DataNotFoundError
    from .common import UsageError

    return (UsageError, TrainingError, ZooError, WeightSpaceError, DataNotFoundError, TaskError, BaselineError)


def build_parser() -> argparse.ArgumentParser:
    """The ``dwsnets`` parser; ``parser.commands`` maps each command's words
    (``"train classify"``, ``"table"``) to its parser."""
    from .. import __version__
    from . import compare, demo, train, zoo

    parser = argparse.ArgumentParser(prog="dwsnets", description="Learning on the weights of neural networks.")
    parser.add_argument("--version", action="version", version=f"dwsnets {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict[str, argparse.ArgumentParser] = {}
    demo.add_parsers(sub)
    zoo.add_parsers(sub)
    train.add_parsers(sub, commands)
    compare.add_parsers(sub)
    parser.commands = commands  # type: ignore[attr-defined]
    return parser


_SAVED = {
    "demo": "finished zoo shards and epoch checkpoints are kept",
    "fit-inrs": "every finished shard is kept; only the shard in progress is lost",
    "fit-zoo": "every finished shard is kept; only the shard in progress is lost",
    "train": "the run's last finished epoch is kept in last.pt",
    "table": "finished runs and each run's last finished epoch are kept",
}


def _config_file(words: list[str]) -> str | None:
    for i, word in enumerate(words):
        if word == "--config" and i + 1 < len(words):
            return words[i + 1]
        if word.startswith("--config="):
            return word.split("=", 1)[1]
    return None


def _apply_config(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """With ``--config FILE``: the file's flags become the defaults of the command they
    belong to (so flags on the command line win), every key checked against that command's
    options. ``dwsnets train --config RUN/config.toml`` takes the task from the file."""
    from ..experiments import read_flags_file
    from .common import UsageError

    path = _config_file(words)
    if path is None:
        return words
    flags = read_flags_file(path)
    commands: dict[str, argparse.ArgumentParser] = parser.commands  # type: ignore[attr-defined]
    if words[0] == "train" and (len(words) < 2 or f"train {words[1]}" not in commands):
        task = flags.get("task")
        if f"train {task}" not in commands:
            raise UsageError(f"--config {path}: name the task (dwsnets train TASK --config FILE) or set task = ...")
        words = ["train", str(task), *words[1:]]
    key = " ".join(words[:2]) if words[0] == "train" else words[0]
    if key not in commands:
        raise UsageError(f"--config works with train and table, not {words[0]}")
    command = commands[key]
    _check_config_keys(command, flags, path, key)
    for action in command._actions:
        if action.dest in flags:
            action.required = False  # the file gives it
    command.set_defaults(**{k: _as_default(k, v) for k, v in flags.items() if k != "task" or key == "table"})
    return words


def _as_default(key: str, value: Any) -> Any:
    if key == "model_args" and isinstance(value, dict):
        return [f"{k}={v}" for k, v in value.items()]
    return value


def _check_config_keys(command: argparse.ArgumentParser, flags: dict[str, Any], path: str, key: str) -> None:
    from .common import UsageError

    actions = {a.dest: a for a in command._actions if a.dest not in ("help", "config")}
    allowed = set(actions) | ({"task"} if key.startswith("train") else set())
    unknown = sorted(set(flags) - allowed)
    if unknown:
        raise UsageError(
            f"--config {path}: {key} has no setting {', '.join(unknown)} (it has {', '.join(sorted(allowed))})"
        )
    task = flags.get("task")
    if key.startswith("train") and task is not None and f"train {task}" != key:
        raise UsageError(f"--config {path} is for task {task!r}, the command says {key!r}")
    for dest, value in flags.items():
        choices = getattr(actions.get(dest), "choices", None)
        if choices is not None and value not in choices:
            raise UsageError(f"--config {path}: {dest} = {value!r} is not one of {', '.join(map(str, choices))}")


def main(argv: list[str] | None = None) -> int:
    from ..utils import share_cpu_fairly

    share_cpu_fairly()  # before torch loads (when dwsnets is run as a program): OpenMP reads it then
    from ..utils import tune_cpu_allocator

    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    errors = user_errors()
    try:
        words = _apply_config(parser, words) if words else words
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(words)
    tune_cpu_allocator()
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return status
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        saved = _SAVED.get(args.command, "nothing was half written")
        print(
            f"\ninterrupted: {saved}; to resume, run the same command again:\n  dwsnets {shlex.join(words)}",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:
        # the reader went away (`dwsnets zoo-info Z | head`): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
