"""Command-line interface: ``dwsnets <command>``.

Commands (one module per family):
    demo        the main job: fit a digits INR zoo, train DWSNet and the MLP baseline (:mod:`.demo`)
    fit-inrs    fit one SIREN per image (or sine wave) into a sharded, resumable zoo (:mod:`.zoo`)
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

from .. import __version__
from ..baselines import BaselineError
from ..core.weight_space import WeightSpaceError
from ..tasks import TaskError
from ..training.trainer import TrainingError
from ..zoo.sources import DataNotFoundError
from ..zoo.store import ZooError
from . import compare, demo, train, zoo
from .common import UsageError

__all__ = ["USER_ERRORS", "build_parser", "main"]

# errors that mean bad input or state: reported in one line, never as a traceback
USER_ERRORS = (UsageError, TrainingError, ZooError, WeightSpaceError, DataNotFoundError, TaskError, BaselineError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dwsnets", description="Learning on the weights of neural networks.")
    parser.add_argument("--version", action="version", version=f"dwsnets {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo.add_parsers(sub)
    zoo.add_parsers(sub)
    train.add_parsers(sub)
    compare.add_parsers(sub)
    return parser


_SAVED = {
    "demo": "finished zoo shards and epoch checkpoints are kept",
    "fit-inrs": "every finished shard is kept; only the shard in progress is lost",
    "train": "the run's last finished epoch is kept in last.pt",
    "table": "finished runs and each run's last finished epoch are kept",
}


def main(argv: list[str] | None = None) -> int:
    from ..utils import tune_cpu_allocator

    words = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(words)
    tune_cpu_allocator()
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return status
    except USER_ERRORS as exc:
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
