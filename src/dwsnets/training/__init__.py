"""Training any task on any data set of networks (augmentations: :mod:`dwsnets.core.augment`).

* :mod:`~dwsnets.training.trainer`: :class:`Trainer` and :class:`TrainConfig`;
* :mod:`~dwsnets.training.checkpoint`: exact-resume checkpoints;
* :mod:`~dwsnets.training.distributed`: torchrun data parallelism;
* :mod:`~dwsnets.training.logging`: metrics files, curves and confusion pictures.
"""

from ..core.augment import augment
from .distributed import init_distributed
from .logging import save_confusion_png
from .trainer import TrainConfig, Trainer, TrainingError

__all__ = ["TrainConfig", "Trainer", "TrainingError", "augment", "init_distributed", "save_confusion_png"]
