"""Editing INRs: weights in, weights out, judged by what the edited INR renders.

Given the INR of an image, a model outputs new weights; the edited INR must render an
edited image (morphological dilation of the source image, erosion, a contrast increase
or the morphological gradient). The loss is the pixel MSE between what the edited INR
renders on the image grid and the edited source image, differentiable through the
batched SIREN forward (:func:`dwsnets.inr.siren_forward`). The model is an equivariant
DWSNet that adds an update to the weights (it starts as the identity edit); baselines are
MLPs on the flattened weights that predict the update (``mlp``; ``mlp-aug`` with
permutation augmentation). Every evaluation also reports the unedited INR's MSE against
the edited image (the "no edit" baseline).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..core.weight_space import WeightSpace
from ..inr.siren import siren_forward
from ..zoo.split import ZooSplit
from .base import Task, TaskError, TaskOption

__all__ = ["EDITS", "Edit", "edit_images"]

EDITS = ("dilate", "erode", "contrast", "gradient")


def edit_images(images: Tensor, edit: str, size: int = 3) -> Tensor:
    """Edit a batch of images ``(n, C, H, W)`` in [0, 1]."""
    pad = size // 2

    def dilate(x: Tensor) -> Tensor:
        return nn.functional.max_pool2d(x, size, stride=1, padding=pad)

    if edit == "dilate":
        return dilate(images)
    if edit == "erode":
        return -dilate(-images)
    if edit == "gradient":
        return dilate(images) + dilate(-images)  # dilation minus erosion
    if edit == "contrast":
        return ((images - 0.5) * 2.0 + 0.5).clamp(0.0, 1.0)
    raise TaskError(f"unknown edit {edit!r}; choose from {', '.join(EDITS)}")


class Edit(Task):
    """Edit image INRs so that they render the edited image.

    Args:
        edit: ``dilate``, ``erode``, ``contrast`` or ``gradient``.
        size: the structuring element of the morphological edits (``size x size``).
        data_dir: where the zoo's source images are, when not in the default place.
    """

    name = "edit"
    help = "edit image INRs so that they render an edited image (weights in, weights out)"
    options = (
        TaskOption("edit", "dilate", "what the edited INR must render", choices=EDITS),
        TaskOption("size", 3, "structuring element of the morphological edits", int),
        TaskOption("data_dir", None, "where the zoo's source images are (IDX / CIFAR-10 sources)"),
    )
    models = ("dwsnet", "mlp", "mlp-aug")
    outputs_networks = True
    model_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "dwsnet": {"hidden_channels": 32, "num_layers": 4, "norm": None}
    }
    metric = "mse"
    higher_is_better = False
    loss_name = "pixel MSE"
    signal_transforms_ok = False  # the targets are the edited original pictures

    def __init__(self, edit: str = "dilate", size: int = 3, data_dir: str | None = None) -> None:
        if edit not in EDITS:
            raise TaskError(f"unknown edit {edit!r}; choose from {', '.join(EDITS)}")
        if size < 1 or size % 2 == 0:
            raise TaskError(f"the structuring element must have an odd size, got {size}")
        self.edit, self.size, self.data_dir = edit, int(size), data_dir
        self.data: Any = None
        self._signals: dict[str, Tensor] = {}
        self.coords: Tensor | None = None

    def bind(self, data: Any) -> None:
        shape = getattr(data, "manifest", {}).get("image_shape")
        if not hasattr(data, "signals") or not shape:
            raise TaskError("editing needs a zoo of image INRs (fit-inrs with an image source)")
        self.data, self.image_shape, self.w0 = data, tuple(shape), float(data.config.get("w0", 30.0))

    def prepare(self, train: ZooSplit) -> None:
        if "row" not in train.info or not train.name:
            raise TaskError("editing needs splits read from a zoo on disk (their rows name their source images)")

    @property
    def output_size(self) -> int:
        return 1

    def targets(self, split: ZooSplit) -> Tensor:
        """The edited source images of the split's INRs, ``(n, H*W, C)``."""
        if split.name not in self._signals:
            coords, values = self.data.signals(split.name, self.data_dir)
            self.coords = coords
            self._signals[split.name] = values
        values = self._signals[split.name][split.info["row"].cpu()]
        h, w, c = self.image_shape
        images = values.reshape(-1, h, w, c).permute(0, 3, 1, 2)
        return edit_images(images, self.edit, self.size).permute(0, 2, 3, 1).reshape(-1, h * w, c).float()

    def render(self, ws: WeightSpace) -> Tensor:
        """What INRs render on the image grid, ``(n, H*W, C)``."""
        if self.coords is None:
            raise TaskError("Edit.targets() has not been called yet")
        return siren_forward(self.coords.to(ws.device, ws.dtype), ws, self.w0)

    def batch_loss(self, model: nn.Module, ws: WeightSpace, target: Tensor) -> Tensor:
        """Pixel MSE between what the edited INRs render and the edited images."""
        return nn.functional.mse_loss(self.render(model(ws)).float(), target.float())

    @torch.no_grad()
    def evaluate(self, model: nn.Module, ws: WeightSpace, target: Any, split: str = "test",
                 batch: int = 512) -> dict[str, Any]:  # fmt: skip
        model.eval()
        edited, unedited = [], []
        for i in range(0, len(ws), batch):
            part = ws[i : i + batch]
            edited.append(self.render(model(part)).float().cpu())
            unedited.append(self.render(part).float().cpu())
        target = target.float().cpu()
        mse = float(nn.functional.mse_loss(torch.cat(edited), target))
        return {"loss": mse, "mse": mse, "mse_unedited": float(nn.functional.mse_loss(torch.cat(unedited), target))}

    @torch.no_grad()
    def pictures(self, model: nn.Module, ws: WeightSpace, target: Any, path: Any, split: str = "test",
                 count: int = 8) -> Any:  # fmt: skip
        """Source rendering, edited target and edited rendering for the first ``count`` INRs."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        model.eval()
        n = min(count, len(ws))
        h, w, c = self.image_shape
        rows = {
            "source INR": self.render(ws[:n]),
            f"target ({self.edit})": target[:n],
            "edited INR": self.render(model(ws[:n])),
        }
        fig, axes = plt.subplots(3, n, figsize=(1.5 * n, 4.8), squeeze=False)
        for r, (title, images) in enumerate(rows.items()):
            for i in range(n):
                image = images[i].float().cpu().reshape(h, w, c).clamp(0, 1).numpy()
                axes[r, i].imshow(image[..., 0] if c == 1 else image, cmap="gray", vmin=0, vmax=1)
                axes[r, i].axis("off")
            axes[r, 0].set_title(title, fontsize=8, loc="left")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    def references(self, metrics: dict[str, Any]) -> dict[str, float]:
        return {"No edit (the source INR)": metrics["mse_unedited"]} if "mse_unedited" in metrics else {}

    def describe(self, metrics: dict[str, Any]) -> str:
        extra = f" (unedited {metrics['mse_unedited']:.4g})" if "mse_unedited" in metrics else ""
        return f"pixel MSE {metrics['mse']:.4g}{extra}"

    def config(self) -> dict[str, Any]:
        return {"task": self.name, "edit": self.edit, "size": self.size}
