"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse

import torch

from ..utils import hardware

__all__ = [
    "DefaultsFormatter",
    "UsageError",
    "add_runtime_args",
    "default_device",
    "hardware",
    "progress",
    "setup_runtime",
]


class DefaultsFormatter(argparse.HelpFormatter):
    """Shows an option's default after its help, unless the help already speaks of it or
    there is none worth showing (``None``, ``False``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or not action.option_strings or action.default in (None, False, argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


class UsageError(ValueError):
    """A command-line argument that cannot work (reported before any work starts)."""


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=default_device(), help="cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default 0: torch's own choice)")


def setup_runtime(args: argparse.Namespace) -> None:
    if args.threads < 0:
        raise UsageError(f"--threads must be 0 (torch's choice) or positive, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {args.device}: this torch build sees no CUDA device; use --device cpu")


def progress(iterable=None, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
