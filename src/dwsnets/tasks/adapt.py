"""Domain adaptation in weight space: update trained classifiers for a shifted input domain.

The networks are classifiers of a classifier zoo (``fit-inrs --source
fashion-mnist-classifiers``), trained on clean Fashion-MNIST thumbnails. The target
domain is the same images corrupted (:class:`~dwsnets.zoo.classifiers.Corruption`:
lower contrast and pixel noise), where they lose accuracy. A model maps each
classifier's weights to adapted weights; the loss is the cross-entropy of the adapted
classifiers on a few labelled target-domain images (``shots``, drawn once with a fixed
seed from the training part of the images), through the batched classifier forward.
Validation networks are scored on up to 2,000 other target-domain training-part images,
test networks on the whole corrupted test part: held-out classifiers on held-out images.

Models: an equivariant DWSNet that adds an update to the weights (it starts as the
identity); MLPs on the flattened weights predicting the update (``mlp``, ``mlp-aug``
with permutation augmentation, ``mlp-align`` on weights aligned to a reference network).
Test evaluation also reports the unadapted classifiers and, as a reference that needs
no model but optimises every classifier on its own, each classifier fine-tuned directly
on the same ``shots`` images.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..core.weight_space import WeightSpace
from ..zoo.classifiers import Corruption, classifier_forward, thumbnails
from ..zoo.sources import ClassifierSource, get_source
from ..zoo.split import ZooSplit
from .base import Task, TaskError, TaskOption

__all__ = ["Adapt", "FinetuneChoice", "finetune_classifiers", "finetune_path", "tune_finetuning"]

# the image set a split's networks are scored on (any other split: the corrupted test part)
IMAGE_SETS = {"train": "shots", "val": "val"}
# fine-tuning settings chosen on validation, by zoo and task settings (one search per table)
_TUNED: dict[tuple[str, str], FinetuneChoice] = {}
# the reference's results, by the same key and a fingerprint of the classifiers (every run
# of a table tests the same classifiers: fine-tune them once)
_REFERENCE: dict[tuple[Any, ...], dict[str, Any]] = {}
VAL_IMAGES = 2000


# the reference's grid, searched on the validation classifiers and images: learning rates,
# and the step counts at which each path is scored (the longest path holds every shorter one)
# (on the Fashion-MNIST classifier zoo the validation optimum, 75.95%, lies inside it, at
# 1e-4 and 6,400 steps; 3e-4 peaks at 3,200 steps, faster rates earlier: docs/results.md)
FINETUNE_LRS = (1e-4, 3e-4, 1e-3, 3e-3)
FINETUNE_STEPS = (200, 400, 800, 1600, 3200, 6400)


def finetune_path(ws: WeightSpace, x: Tensor, y: Tensor, steps: Sequence[int], *, lr: float = 1e-3,
                  batch: int = 128, seed: int = 0) -> Iterator[tuple[int, WeightSpace]]:  # fmt: skip
    """Each classifier of ``ws`` trained on its own with Adam on ``(x, y)`` (all at once,
    independent: the sum of their losses has per-network gradients); yields ``(step,
    classifiers)`` after each of ``steps`` Adam steps, in increasing order."""
    params = [p.detach().clone().requires_grad_() for p in ws.to_parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(seed)
    marks = sorted(set(int(s) for s in steps))
    done = 0
    with torch.enable_grad():
        for mark in marks:
            for _ in range(mark - done):
                idx = torch.randint(0, len(x), (len(params[0]), min(batch, len(x))), generator=g).to(x.device)
                logits = classifier_forward(x[idx], params)
                loss = nn.functional.cross_entropy(logits.flatten(0, 1), y[idx].flatten(), reduction="sum")
                opt.zero_grad(set_to_none=True)
                (loss / idx.shape[1]).backward()
                opt.step()
            done = mark
            yield mark, WeightSpace.from_parameters([p.detach().clone() for p in params])


def finetune_classifiers(ws: WeightSpace, x: Tensor, y: Tensor, *, steps: int = 200, lr: float = 1e-3,
                         batch: int = 128, seed: int = 0) -> WeightSpace:  # fmt: skip
    """Each classifier of ``ws`` fine-tuned on its own: ``steps`` Adam steps at ``lr`` on
    ``(x, y)`` (:func:`finetune_path`)."""
    if steps == 0:
        return ws
    return list(finetune_path(ws, x, y, [steps], lr=lr, batch=batch, seed=seed))[-1][1]


@dataclass(frozen=True)
class FinetuneChoice:
    """The reference's steps and learning rate, and the validation accuracy of every
    ``(lr, steps)`` of the grid it was chosen from."""

    steps: int
    lr: float
    grid: dict[tuple[float, int], float]


def tune_finetuning(ws: WeightSpace, shots: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor],
                    lrs: Sequence[float] = FINETUNE_LRS, steps: Sequence[int] = FINETUNE_STEPS,
                    progress: bool = False) -> FinetuneChoice:  # fmt: skip
    """Fine-tune the classifiers ``ws`` (validation classifiers) on ``shots`` with every
    learning rate of ``lrs`` and score them on the held-out ``val`` images after each of
    ``steps``; the best mean accuracy wins (ties: fewer steps, then the smaller rate)."""
    grid: dict[tuple[float, int], float] = {}
    for lr in tqdm(lrs, desc="tuning the fine-tuning reference", disable=not progress, leave=False):
        for step, tuned in finetune_path(ws, *shots, steps, lr=lr):
            grid[(float(lr), step)] = float(Adapt.accuracies(tuned, *val).mean())
    best = max(grid, key=lambda k: (grid[k], -k[1], -k[0]))
    return FinetuneChoice(steps=best[1], lr=best[0], grid=grid)


class Adapt(Task):
    """Adapt classifiers to the corrupted target domain by updating their weights.

    Args:
        shots: labelled target-domain images the training loss sees.
        images_per_step: of those, how many each training step uses (the same for every
            classifier of the batch).
        contrast, shift, noise: the target domain (:class:`Corruption`).
        finetune_steps, finetune_lr: Adam steps and learning rate of the reference that
            fine-tunes each test classifier on its own (test only; ``finetune_steps=0``
            leaves it out). Either left at ``None`` is chosen on the validation classifiers
            and images (:func:`tune_finetuning`), once per zoo and task settings.
        data_dir: where the zoo's source images are, when not in the default place.
    """

    name = "adapt"
    help = "update trained classifiers for a shifted input domain (weights in, weights out)"
    options = (
        TaskOption("shots", 1000, "labelled target-domain images the training loss sees", int),
        TaskOption("contrast", 0.7, "target domain: contrast around 0.5", float),
        TaskOption("shift", 0.0, "target domain: brightness shift", float),
        TaskOption("noise", 0.2, "target domain: Gaussian noise per pixel", float, flag="--pixel-noise"),
        TaskOption("finetune_steps", None, "Adam steps of the reference that fine-tunes each test classifier on the "
                   "shots (0: no reference; default: chosen on the validation classifiers and images)", int),
        TaskOption("finetune_lr", None, "the reference's Adam learning rate (default: chosen on validation)", float),
        TaskOption("data_dir", None, "where the zoo's source images are"),
    )  # fmt: skip
    models = ("dwsnet", "mlp", "mlp-aug", "mlp-align")
    outputs_networks = True
    model_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "dwsnet": {"hidden_channels": 16, "num_layers": 4, "norm": None}
    }
    metric = "accuracy"
    higher_is_better = True
    percent = True
    loss_name = "target-domain cross-entropy"
    signal_transforms_ok = False

    def __init__(self, shots: int = 1000, images_per_step: int = 256, contrast: float = 0.7, shift: float = 0.0,
                 noise: float = 0.2, finetune_steps: int | None = None, finetune_lr: float | None = None,
                 data_dir: str | None = None) -> None:  # fmt: skip
        if (
            shots < 1
            or images_per_step < 1
            or (finetune_steps or 0) < 0
            or (finetune_lr is not None and finetune_lr <= 0)
        ):
            raise TaskError("shots and images_per_step must be positive, finetune_steps not negative, finetune_lr "
                            "positive")  # fmt: skip
        if not 0 < contrast <= 1 or noise < 0:
            raise TaskError(f"the corruption needs contrast in (0, 1] and noise >= 0, got {contrast}, {noise}")
        self.shots, self.images_per_step = int(shots), int(images_per_step)
        self.finetune_steps = None if finetune_steps is None else int(finetune_steps)
        self.finetune_lr = None if finetune_lr is None else float(finetune_lr)
        self._data: Any = None
        self.corruption = Corruption(contrast=contrast, shift=shift, noise=noise)
        self.data_dir = data_dir
        self.images: dict[str, tuple[Tensor, Tensor]] = {}
        self.clean_test: tuple[Tensor, Tensor] | None = None

    # ---------------------------------------------------------------- data

    def bind(self, data: Any) -> None:
        name = getattr(data, "source", "")
        source = get_source(name) if name else None
        if not isinstance(source, ClassifierSource):
            raise TaskError("domain adaptation needs a classifier zoo (fit-inrs --source fashion-mnist-classifiers)")
        self._data = data
        parts = source.image_parts(self.data_dir)
        (train, labels), (test, test_labels) = parts["train"], parts["test"]
        val_images = min(VAL_IMAGES, len(train) - self.shots)
        if val_images < 1:
            raise TaskError(f"{source.images} has {len(train)} training images: too few for {self.shots} shots "
                            "and validation images")  # fmt: skip
        order = torch.from_numpy(np.random.default_rng(8_000).permutation(len(train)))
        shifted = thumbnails(self.corruption.apply(train, "train"), source.pool)
        labels_t = torch.from_numpy(labels)
        shots, val = order[: self.shots], order[self.shots : self.shots + val_images]
        self.images = {
            "shots": (shifted[shots], labels_t[shots]),
            "val": (shifted[val], labels_t[val]),
            "test": (thumbnails(self.corruption.apply(test, "test"), source.pool), torch.from_numpy(test_labels)),
        }
        self.clean_test = (thumbnails(test, source.pool), torch.from_numpy(test_labels))

    def prepare(self, train: ZooSplit) -> None:
        if not self.images:
            raise TaskError("Adapt.bind() has not seen the classifier zoo yet")
        d_in = train.weights.layout.tensors[0].shape[-1]
        if d_in != self.images["shots"][0].shape[1]:
            raise TaskError(
                f"the classifiers read {d_in} inputs, the thumbnails have {self.images['shots'][0].shape[1]}"
            )

    @property
    def output_size(self) -> int:
        return 1

    def targets(self, split: ZooSplit) -> Tensor:
        """No per-network target (``(N, 0)``): every classifier is scored on the same
        target-domain images, the training split on the shots (:meth:`images_of`)."""
        return torch.zeros(len(split), 0)

    def images_of(self, split: str) -> tuple[Tensor, Tensor]:
        """The target-domain images and labels that a split's classifiers are scored on:
        the shots (training), validation images, or the corrupted test part (any other split)."""
        return self.images[IMAGE_SETS.get(split, "test")]

    # ---------------------------------------------------------------- training

    def batch_loss(self, model: nn.Module, ws: WeightSpace, target: Any) -> Tensor:
        x, y = self.images["shots"]
        idx = torch.randint(0, len(x), (min(self.images_per_step, len(x)),))
        logits = classifier_forward(x[idx].to(ws.device, ws.dtype), model(ws))  # (N, P, classes)
        labels = y[idx].to(ws.device)
        return nn.functional.cross_entropy(logits.float().flatten(0, 1), labels.repeat(logits.shape[0]))

    # ---------------------------------------------------------------- evaluation

    @staticmethod
    @torch.no_grad()
    def scores(ws: WeightSpace, x: Tensor, y: Tensor, chunk: int = 2500) -> tuple[Tensor, Tensor]:
        """Each classifier's accuracy and mean cross-entropy on ``(x, y)``, both ``(N,)``."""
        correct = torch.zeros(len(ws), dtype=torch.float64)
        loss = torch.zeros(len(ws), dtype=torch.float64)
        for i in range(0, len(x), chunk):
            logits = classifier_forward(x[i : i + chunk].to(ws.device, ws.dtype), ws).float().cpu()
            labels = y[i : i + chunk]
            correct += (logits.argmax(-1) == labels).double().sum(1)
            ce = nn.functional.cross_entropy(logits.flatten(0, 1), labels.repeat(len(ws)), reduction="none")
            loss += ce.view(len(ws), -1).double().sum(1)
        return correct / len(x), loss / len(x)

    @classmethod
    def accuracies(cls, ws: WeightSpace, x: Tensor, y: Tensor) -> Tensor:
        """Each classifier's accuracy on ``(x, y)``, ``(N,)``."""
        return cls.scores(ws, x, y)[0]

    @torch.no_grad()
    def adapted(self, model: nn.Module, ws: WeightSpace, batch: int = 512) -> WeightSpace:
        model.eval()
        return WeightSpace.cat([model(ws[i : i + batch]) for i in range(0, len(ws), batch)])

    @torch.no_grad()
    def evaluate(self, model: nn.Module, ws: WeightSpace, target: Any, split: str = "test",
                 batch: int = 512) -> dict[str, Any]:  # fmt: skip
        x, y = self.images_of(split)
        adapted = self.adapted(model, ws, batch)
        (after, loss), before = self.scores(adapted, x, y), self.accuracies(ws, x, y)
        out: dict[str, Any] = {
            "loss": float(loss.mean()),
            "accuracy": float(after.mean()),
            "accuracy_unadapted": float(before.mean()),
            "improved_fraction": float((after > before).double().mean()),
        }
        if split not in ("train", "val") and self.clean_test is not None:
            out["accuracy_source_domain"] = float(self.accuracies(adapted, *self.clean_test).mean())
            out["accuracy_source_domain_unadapted"] = float(self.accuracies(ws, *self.clean_test).mean())
            if self.finetune_steps != 0:
                out.update(self.finetuned_reference(ws, x, y))
        return out

    def finetune_setting(self, device: torch.device | str = "cpu") -> FinetuneChoice:
        """The reference's steps and learning rate: as given, or chosen on the validation
        classifiers (each image's first network) and validation images; remembered for the
        zoo and these settings, so a table's runs tune it once."""
        fixed = (self.finetune_steps, self.finetune_lr)
        if None not in fixed:
            return FinetuneChoice(steps=int(fixed[0]), lr=float(fixed[1]), grid={})
        key = self._tuning_key()
        if key not in _TUNED:
            val = self._data.load("val").first_views().weights.to(device)
            lrs = FINETUNE_LRS if self.finetune_lr is None else (self.finetune_lr,)
            steps = FINETUNE_STEPS if self.finetune_steps is None else (self.finetune_steps,)
            shots = tuple(t.to(device) for t in self.images["shots"])
            images = tuple(t.to(device) for t in self.images["val"])
            _TUNED[key] = tune_finetuning(val, shots, images, lrs, steps, progress=True)  # type: ignore[arg-type]
        return _TUNED[key]

    def _tuning_key(self) -> tuple[str, str]:
        return (str(getattr(self._data, "path", id(self._data))), json.dumps(self.config(), sort_keys=True))

    def finetuned_reference(self, ws: WeightSpace, x: Tensor, y: Tensor) -> dict[str, Any]:
        """Each classifier of ``ws`` fine-tuned on its own on the shots with
        :meth:`finetune_setting`; its accuracy on ``(x, y)`` and the setting."""
        choice = self.finetune_setting(ws.device)
        fingerprint = (len(ws), len(x), *(float(t.double().sum()) for t in ws.tensors), float(x.double().sum()))
        key = (self._tuning_key(), choice.steps, choice.lr, fingerprint)
        if key not in _REFERENCE:
            _REFERENCE[key] = self._finetuned_reference(ws, x, y, choice)
        return dict(_REFERENCE[key])

    def _finetuned_reference(self, ws: WeightSpace, x: Tensor, y: Tensor, choice: FinetuneChoice) -> dict[str, Any]:
        shots_x, shots_y = self.images["shots"]
        tuned = finetune_classifiers(ws, shots_x.to(ws.device, ws.dtype), shots_y.to(ws.device), steps=choice.steps,
                                     lr=choice.lr)  # fmt: skip
        out: dict[str, Any] = {"accuracy_finetuned": float(self.accuracies(tuned, x, y).mean()),
                               "finetune_steps": choice.steps, "finetune_lr": choice.lr}  # fmt: skip
        if choice.grid:
            out["finetune_validation"] = {f"lr={lr:g} steps={st}": acc for (lr, st), acc in choice.grid.items()}
        return out

    @torch.no_grad()
    def pictures(self, model: nn.Module, ws: WeightSpace, target: Any, path: Any, split: str = "test") -> Any:
        """Every classifier's target-domain accuracy before and after adaptation."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        x, y = self.images_of(split)
        which = IMAGE_SETS.get(split, "test")
        before = self.accuracies(ws, x, y).numpy() * 100
        after = self.accuracies(self.adapted(model, ws), x, y).numpy() * 100
        fig, ax = plt.subplots(figsize=(4.6, 4.4))
        ax.scatter(before, after, s=8, alpha=0.7)
        low, high = min(before.min(), after.min()) - 2, max(before.max(), after.max()) + 2
        ax.plot([low, high], [low, high], color="0.5", linestyle="--", linewidth=1, label="no change")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_xlabel("target-domain accuracy before (%)")
        ax.set_ylabel("after adaptation (%)")
        ax.set_title(f"{len(before)} classifiers, {len(x):,} {which} images: mean {before.mean():.1f}% -> "
                     f"{after.mean():.1f}%", fontsize=9)  # fmt: skip
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    def references(self, metrics: dict[str, Any]) -> dict[str, float]:
        refs = {}
        if "accuracy_unadapted" in metrics:
            refs["Unadapted classifiers"] = metrics["accuracy_unadapted"]
        if "accuracy_finetuned" in metrics:
            setting = f"{metrics['finetune_steps']} Adam steps at lr {metrics['finetune_lr']:g}"
            if self.finetune_steps is None or self.finetune_lr is None:
                setting += ", chosen on validation"
            refs[f"Each classifier fine-tuned on the {self.shots} images ({setting})"] = metrics["accuracy_finetuned"]
        return refs

    def chance(self) -> float | None:
        return 0.1

    def describe(self, metrics: dict[str, Any]) -> str:
        text = f"target accuracy {metrics['accuracy'] * 100:.2f}% (unadapted {metrics['accuracy_unadapted'] * 100:.2f}%"
        if "accuracy_finetuned" in metrics:
            text += f", fine-tuned {metrics['accuracy_finetuned'] * 100:.2f}%"
        return text + ")"

    def config(self) -> dict[str, Any]:
        return {"task": self.name, "shots": self.shots, "images_per_step": self.images_per_step,
                **{k: v for k, v in self.corruption.as_dict().items() if k != "seed"},
                "finetune_steps": self.finetune_steps, "finetune_lr": self.finetune_lr}  # fmt: skip
