"""The experiment layer: runs, tables, sweeps and comparisons, from typed settings.

* :mod:`~dwsnets.experiments.flags`: the one mapping between ``dwsnets train`` flags and
  :class:`~dwsnets.training.TrainConfig`; ``config.toml`` files that reproduce a run;
* :mod:`~dwsnets.experiments.table`: :class:`ExperimentConfig` and :func:`run_experiment`
  (every model over seeds, training-set sizes, views per image), :func:`train_and_test`;
* :mod:`~dwsnets.experiments.compare`: runs side by side;
* :mod:`~dwsnets.experiments.ensemble`: finished runs evaluated as one ensemble;
* :mod:`~dwsnets.experiments.report`: formatting and plots.

The command line (:mod:`dwsnets.cli`) only turns arguments into these settings.
"""

from .compare import compare_runs, differing_settings
from .ensemble import EnsembleResult, evaluate_ensemble
from .flags import config_from_flags, flags_from_config, parse_model_args, read_flags_file, write_run_flags
from .table import (
    ExperimentConfig,
    RunResult,
    default_model_for,
    evaluate_run,
    markdown_table,
    run_experiment,
    run_table,
    train_and_test,
)

__all__ = [
    "EnsembleResult",
    "ExperimentConfig",
    "RunResult",
    "compare_runs",
    "config_from_flags",
    "default_model_for",
    "differing_settings",
    "evaluate_ensemble",
    "evaluate_run",
    "flags_from_config",
    "markdown_table",
    "parse_model_args",
    "read_flags_file",
    "run_experiment",
    "run_table",
    "train_and_test",
    "write_run_flags",
]
