"""Pictures of a zoo: source images beside what their INRs reconstruct; how accurate a
classifier zoo's networks are."""

from __future__ import annotations

import math
from pathlib import Path

import torch

__all__ = ["save_accuracy_histogram", "save_reconstruction_grid"]


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


def save_accuracy_histogram(zoo_dir: str | Path, out_path: str | Path | None = None) -> Path:
    """Write a PNG: the histogram of a classifier (or CNN) zoo's test accuracies, every
    finished shard, one colour per split, with the chance level marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .reader import Zoo

    zoo = Zoo(zoo_dir)
    if zoo.quality != "accuracy":
        raise ValueError(f"zoo {zoo.path} holds INRs, not classifiers: there are no accuracies to show")
    by_split: dict[str, list[torch.Tensor]] = {}
    for shard in zoo.shards:
        if (zoo.path / "shards" / f"{shard.name}.json").exists():
            by_split.setdefault(shard.split, []).append(zoo.open_shard(shard, verify=False)["accuracy"])
    if not by_split:
        raise ValueError(f"zoo {zoo.path} has no finished shard to show")
    fig, ax = plt.subplots(figsize=(6, 3.6))
    values = {s: torch.cat(v).double() * 100 for s, v in by_split.items()}
    bins = torch.linspace(0, 100, 51).tolist()
    ax.hist([v.numpy() for v in values.values()], bins=bins, stacked=True, label=[f"{s} ({len(v)})" for s, v in
            values.items()])  # fmt: skip
    ax.axvline(10, color="0.5", linestyle="--", linewidth=1, label="chance (10 classes)")
    everything = torch.cat(list(values.values()))
    ax.set_xlabel("test accuracy (%)")
    ax.set_ylabel("networks")
    ax.set_title(f"{zoo.source}: {len(everything)} networks, median {float(everything.median()):.1f}%, "
                 f"10-90% {float(torch.quantile(everything, 0.1)):.1f}-{float(torch.quantile(everything, 0.9)):.1f}%",
                 fontsize=9)  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    out_path = Path(out_path) if out_path else zoo.path / "accuracies.png"
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
