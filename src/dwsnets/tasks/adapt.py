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

from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ..core.weight_space import WeightSpace
from ..zoo.classifiers import Corruption, classifier_forward, thumbnails
from ..zoo.sources import ClassifierSource, get_source
from ..zoo.split import ZooSplit
from .base import Task, TaskError, TaskOption

__all__ = ["Adapt", "finetune_classifiers"]

# the image set a split's networks are scored on (any other split: the corrupted test part)
IMAGE_SETS = {"train": "shots", "val": "val"}
VAL_IMAGES = 2000


def finetune_classifiers(ws: WeightSpace, x: Tensor, y: Tensor, *, steps: int = 200, lr: float = 1e-3,
                         batch: int = 128, seed: int = 0) -> WeightSpace:  # fmt: skip
    """Each classifier of ``ws`` trained on its own with Adam on ``(x, y)`` (all at once,
    independent: the sum of their losses has per-network gradients)."""
    params = [p.detach().clone().requires_grad_() for p in ws.to_parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(seed)
    with torch.enable_grad():
        for _ in range(steps):
            idx = torch.randint(0, len(x), (len(params[0]), min(batch, len(x))), generator=g).to(x.device)
            logits = classifier_forward(x[idx], params)
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), y[idx].flatten(), reduction="sum") / idx.shape[1]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return WeightSpace.from_parameters([p.detach() for p in params])


class Adapt(Task):
    """Adapt classifiers to the corrupted target domain by updating their weights.

    Args:
        shots: labelled target-domain images the training loss sees.
        images_per_step: of those, how many each training step uses (the same for every
            classifier of the batch).
        contrast, shift, noise: the target domain (:class:`Corruption`).
        finetune_steps: Adam steps of the per-classifier fine-tuning reference (test only).
        data_dir: where the zoo's source images are, when not in the default place.
    """

    name = "adapt"
    help = "update trained classifiers for a shifted input domain (weights in, weights out)"
    options = (
        TaskOption("shots", 1000, "labelled target-domain images the training loss sees", int),
        TaskOption("contrast", 0.7, "target domain: contrast around 0.5", float),
        TaskOption("shift", 0.0, "target domain: brightness shift", float),
        TaskOption("noise", 0.2, "target domain: Gaussian noise per pixel", float, flag="--pixel-noise"),
        TaskOption("finetune_steps", 200, "Adam steps of the reference that fine-tunes each test classifier on the "
                   "shots", int),
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
                 noise: float = 0.2, finetune_steps: int = 200, data_dir: str | None = None) -> None:  # fmt: skip
        if shots < 1 or images_per_step < 1 or finetune_steps < 0:
            raise TaskError("shots and images_per_step must be positive, finetune_steps not negative")
        if not 0 < contrast <= 1 or noise < 0:
            raise TaskError(f"the corruption needs contrast in (0, 1] and noise >= 0, got {contrast}, {noise}")
        self.shots, self.images_per_step, self.finetune_steps = int(shots), int(images_per_step), int(finetune_steps)
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
            if self.finetune_steps:
                tuned = finetune_classifiers(ws, self.images["shots"][0].to(ws.device, ws.dtype),
                                             self.images["shots"][1].to(ws.device), steps=self.finetune_steps)  # fmt: skip
                out["accuracy_finetuned"] = float(self.accuracies(tuned, x, y).mean())
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
            refs[f"Each classifier fine-tuned on the {self.shots} images ({self.finetune_steps} Adam steps)"] = metrics[
                "accuracy_finetuned"
            ]
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
                "finetune_steps": self.finetune_steps}  # fmt: skip
