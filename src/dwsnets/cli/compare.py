"""``dwsnets compare``: training runs side by side (:mod:`dwsnets.experiments.compare`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..experiments import compare_runs
from .common import DefaultsFormatter

__all__ = ["add_parsers", "cmd_compare"]


def cmd_compare(args: argparse.Namespace) -> int:
    labels = args.labels.split(",") if args.labels else None
    plot = Path(args.plot) if args.plot else None
    print(compare_runs([Path(r) for r in args.runs], labels, plot), end="")
    if plot is not None:
        print(f"picture: {plot}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="training runs side by side: the settings they differ in, best validation, test",
        formatter_class=DefaultsFormatter,
    )
    p.add_argument("runs", nargs="+", help="run directories (dwsnets train / table), two or more")
    p.add_argument(
        "--labels", help="comma-separated names for the runs in the plot (default: their differing settings)"
    )
    p.add_argument("--plot", help="write the runs' loss and validation curves to this PNG")
    p.set_defaults(func=cmd_compare)
