"""Pictures of a zoo: source images beside what their INRs reconstruct."""

from __future__ import annotations

import math
from pathlib import Path

import torch

__all__ = ["save_reconstruction_grid"]


def save_reconstruction_grid(
    zoo_dir: str | Path, out_path: str | Path | None = None, count: int = 8, data_dir: str | None = None
) -> Path:
    """Write a PNG: for the first ``count`` INRs of the first finished shard, the source
    image (or sine wave) beside the INR's reconstruction, titled with the stored PSNR.
    ``data_dir``: where the zoo's source images are (as given to ``fit-inrs``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..inr.siren import siren_forward
    from .build import plan_zoo, shard_targets
    from .reader import Zoo
    from .sources import get_source

    zoo = Zoo(zoo_dir)
    if zoo.quality != "psnr":
        raise ValueError(f"zoo {zoo.path} holds {zoo.source} networks, not INRs: there are no reconstructions to show")
    records = zoo.records()
    if not records:
        raise ValueError(f"zoo {zoo.path} has no finished shard to show")
    shard = next(s for s in zoo.shards if s.name == records[0]["shard"])
    tensors = zoo.open_shard(shard)
    n = min(count, shard.count)
    config = zoo.zoo_config(data_dir)
    plan, data = plan_zoo(config)
    coords, targets, _ = shard_targets(plan, data, shard)
    src = targets[:n]
    params = [p[:n] for p in zoo.shard_parameters(tensors)]
    out_path = Path(out_path) if out_path else zoo.path / "reconstructions.png"
    with torch.no_grad():
        recon = siren_forward(coords, params, config.w0)
    if not get_source(config.source).is_image:
        x = coords[:, 0]
        amp, freq = tensors["amplitude"][:n], tensors["frequency"][:n]
        fig, axes = plt.subplots(2, math.ceil(n / 2), figsize=(3 * math.ceil(n / 2), 5), squeeze=False)
        for i, ax in enumerate(axes.flat[:n]):
            ax.plot(x, src[i, :, 0], label="target", lw=2)
            ax.plot(x, recon[i, :, 0], "--", label="INR")
            ax.set_title(
                f"{float(amp[i]):.2f} sin({float(freq[i]):.2f} x)  {float(tensors['psnr'][i]):.1f} dB", fontsize=8
            )
        axes.flat[0].legend(fontsize=7)
    else:
        h, w, c = zoo.manifest["image_shape"]
        fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.6), squeeze=False)
        for i in range(n):
            for row, img in ((0, src[i]), (1, recon[i])):
                arr = img.reshape(h, w, c).clamp(0, 1).numpy()
                axes[row, i].imshow(arr[..., 0] if c == 1 else arr, cmap="gray" if c == 1 else None, vmin=0, vmax=1)
                axes[row, i].axis("off")
            axes[0, i].set_title(f"label {int(tensors['label'][i])}", fontsize=8)
            axes[1, i].set_title(f"{float(tensors['psnr'][i]):.1f} dB", fontsize=8)
        axes[0, 0].text(-0.3, 0.5, "source", transform=axes[0, 0].transAxes, rotation=90, va="center")
        axes[1, 0].text(-0.3, 0.5, "INR", transform=axes[1, 0].transAxes, rotation=90, va="center")
    fig.suptitle(f"{config.source} INR zoo, shard {shard.name}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
