"""Training any task on any data set of networks (augmentations: :mod:`dwsnets.core.augment`).

* :mod:`~dwsnets.training.config`: :class:`TrainConfig`, the run record;
* :mod:`~dwsnets.training.trainer`: :class:`Trainer`, whose ``fit`` is named steps
  (start, epoch, step, end of epoch, checkpoint, report);
* :mod:`~dwsnets.training.checkpoint`: exact-resume checkpoints;
* :mod:`~dwsnets.training.distributed`: torchrun data parallelism;
* :mod:`~dwsnets.training.logging`: metrics files, curves, confusion pictures, TensorBoard.
"""

from ..core.augment import augment
from .config import TrainConfig, TrainingError
from .distributed import init_distributed
from .logging import save_confusion_png
from .trainer import Trainer

__all__ = ["TrainConfig", "Trainer", "TrainingError", "augment", "init_distributed", "save_confusion_png"]
