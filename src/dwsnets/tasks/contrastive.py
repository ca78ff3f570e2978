"""Self-supervised embeddings of networks: contrastive learning between augmented views.

Each training batch is embedded twice, once as the trainer's (augmented) batch and once
under a second, independent draw of weight-space augmentations (hidden permutations,
Gaussian noise scaled by each tensor's spread, entry dropout). The InfoNCE loss asks each
network's two embeddings to be closer to each other than to any other network's.
A symmetric model (DWSNet) sees the same network under any permutation, so for it
permutations are free positives; a non-invariant encoder must learn them.

Evaluation fits a linear probe (ridge regression, scikit-learn) from frozen embeddings of
the training split to per-network quantities (``amplitude`` and ``frequency`` of sine
INRs) and reports its mean squared error on the evaluated split: the probe never sees
the split it is scored on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from ..core.augment import augment
from ..core.symmetry_policy import SymmetryPolicy
from ..core.weight_space import WeightSpace
from ..nn.models import WeightSpaceModel
from ..nn.norm import InputNormalization
from ..utils import gather_across_ranks
from ..zoo.split import ZooSplit
from .base import Task, TaskError, TaskOption, comma_list, split_quantities

__all__ = ["Contrastive", "ContrastiveModel"]


class ContrastiveModel(WeightSpaceModel):
    """An encoder (any registry model: networks -> ``embedding`` features) followed by a
    projection head ``Linear, ReLU, Linear``. InfoNCE is computed on the projections;
    the probe reads the encoder's embeddings, before the head (the head's output keeps
    little beyond what tells the two views of a network from the others).

    Shapes: ``WeightSpace (B, ...)`` -> ``(B, projection)``; :meth:`embed` -> ``(B, embedding)``.
    Symmetry contract: invariant exactly when the encoder is.
    """

    def __init__(self, encoder: nn.Module, embedding: int, projection: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.projection = nn.Sequential(nn.Linear(embedding, embedding), nn.ReLU(), nn.Linear(embedding, projection))

    def embed(self, ws: WeightSpace) -> Tensor:
        return self.encoder(ws)

    def forward(self, ws: WeightSpace) -> Tensor:
        return self.projection(self.encoder(ws))

    @property
    def input_norm(self) -> InputNormalization:  # type: ignore[override]
        """The encoder's input normalisation (the trainer fits it)."""
        return self.encoder.input_norm

    @property
    def sign_invariant(self) -> bool:  # type: ignore[override]
        """Blind to hidden neurons' signs exactly when the encoder is."""
        return bool(getattr(self.encoder, "sign_invariant", False))

    def preprocess(self, ws: WeightSpace) -> WeightSpace:
        return self.encoder.preprocess(ws)


class Contrastive(Task):
    """InfoNCE between two augmented views; scored by a linear probe on frozen embeddings.

    Args:
        probe: keys of :attr:`ZooSplit.info` the probe predicts from the embeddings.
        embedding: size of the embedding (the encoder's output, which the probe reads;
            the projection head maps it to as many features for the loss).
        temperature: InfoNCE temperature.
        noise, entry_dropout: strength of the second view's generic augmentations
            (noise as a fraction of each tensor's spread over the batch).
        probe_networks: at most this many training networks fit the probe.
    """

    name = "contrastive"
    help = "self-supervised embeddings, scored by a linear probe"
    options = (
        TaskOption("probe", "amplitude,frequency",
                   "comma-separated per-network quantities the linear probe predicts from the embeddings", comma_list),
        TaskOption("embedding", 32, "embedding size", int),
        TaskOption("temperature", 0.1, "InfoNCE temperature", float),
        TaskOption("noise", 0.1, "second view: Gaussian noise, as a fraction of each tensor's spread", float,
                   flag="--view-noise"),
        TaskOption("entry_dropout", 0.1, "second view: fraction of weight entries set to zero", float,
                   flag="--view-dropout"),
    )  # fmt: skip
    metric = "probe_mse"
    higher_is_better = False
    loss_name = "InfoNCE"
    evaluates_with_training_split = True  # the probe is fitted on training embeddings

    def __init__(
        self,
        probe: Sequence[str] = ("amplitude", "frequency"),
        embedding: int = 32,
        temperature: float = 0.1,
        noise: float = 0.1,
        entry_dropout: float = 0.1,
        probe_networks: int = 5000,
    ) -> None:
        if isinstance(probe, str):
            probe = (probe,)
        if not probe:
            raise TaskError("the probe needs at least one quantity to predict")
        if not temperature > 0 or embedding < 2 or probe_networks < 2:
            raise TaskError("temperature must be positive, embedding at least 2, probe_networks at least 2")
        if noise < 0 or not 0 <= entry_dropout < 1:
            raise TaskError(f"the second view needs noise >= 0 and dropout in [0, 1), got {noise}, {entry_dropout}")
        self.keys = tuple(probe)
        self.embedding, self.temperature = int(embedding), float(temperature)
        self.noise, self.entry_dropout, self.probe_networks = float(noise), float(entry_dropout), int(probe_networks)
        self._probe_train: ZooSplit | None = None
        self._policy: SymmetryPolicy | None = None

    # ---------------------------------------------------------------- data

    def _quantities(self, split: ZooSplit) -> Tensor:
        return split_quantities(split, self.keys, "for the probe")

    def prepare(self, train: ZooSplit) -> None:
        self._quantities(train)
        if len(train) < 4:
            raise TaskError("contrastive learning needs at least four training networks")
        self._probe_train = train[: self.probe_networks]

    @property
    def output_size(self) -> int:
        return self.embedding

    def targets(self, split: ZooSplit) -> Tensor:
        return self._quantities(split).float()

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """The registry's model as the encoder, with a projection head for the loss."""
        return ContrastiveModel(model, self.embedding, self.embedding)

    def use_symmetry(self, policy: SymmetryPolicy) -> None:
        """The second view draws from the run's symmetry group, as the first does (always
        with permutations; each network's own activation symmetry stays the first view's)."""
        self._policy = replace(policy, permute=True, activation_symmetries=False)

    # ---------------------------------------------------------------- training

    def info_nce(self, a: Tensor, b: Tensor) -> Tensor:
        """Symmetric InfoNCE of two batches of embeddings (row ``i`` of each: one network)."""
        a = nn.functional.normalize(a.float(), dim=1)
        b = nn.functional.normalize(b.float(), dim=1)
        logits = a @ b.T / self.temperature
        labels = torch.arange(len(a), device=a.device)
        return 0.5 * (nn.functional.cross_entropy(logits, labels) + nn.functional.cross_entropy(logits.T, labels))

    def second_view(self, ws: WeightSpace, generator: torch.Generator | None = None) -> WeightSpace:
        """An independent augmentation of ``ws``, drawn from ``generator``, or else seeded
        from torch's global generator (which checkpoints save, so resumed runs draw the same
        views)."""
        if generator is None:
            generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
        scale = [t.detach().float().std(dim=[0, *range(2, t.dim())]).cpu() for t in ws.tensors]
        if self._policy is not None:
            return self._policy.augment(ws, generator, noise=self.noise, entry_dropout=self.entry_dropout, scale=scale)
        return augment(ws, generator, permute=True, noise=self.noise, entry_dropout=self.entry_dropout, scale=scale)

    @staticmethod
    def _as_model_input(model: nn.Module, view: WeightSpace) -> WeightSpace:
        """A second view as the model consumes it: models that canonicalise their inputs
        (alignment to a reference) see it canonicalised, as they saw the first view."""
        inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        return inner.preprocess(view).to(view.device)

    def batch_loss(self, model: nn.Module, ws: WeightSpace, target: Any) -> Tensor:
        """InfoNCE over the whole batch: under torchrun every rank gathers all ranks'
        embeddings (with their gradients), so each network meets every other network of the
        batch as a negative, exactly as in one process."""
        first, second = model(ws), model(self._as_model_input(model, self.second_view(ws)))
        return self.info_nce(gather_across_ranks(first), gather_across_ranks(second))

    # ---------------------------------------------------------------- evaluation

    @torch.no_grad()
    def embed(self, model: nn.Module, ws: WeightSpace, batch: int = 1024, projected: bool = False) -> Tensor:
        """What the probe reads (the encoder's embeddings), or with ``projected`` what the
        loss compares, for a whole split in eval mode."""
        model.eval()
        inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        encode = inner if projected else inner.embed
        return torch.cat([encode(ws[i : i + batch]).float() for i in range(0, len(ws), batch)]).cpu()

    @torch.no_grad()
    def evaluate(self, model: nn.Module, ws: WeightSpace, target: Any, split: str = "test",
                 batch: int = 1024) -> dict[str, Any]:  # fmt: skip
        if self._probe_train is None:
            raise TaskError("Contrastive.prepare() has not seen a training split yet")
        device = ws.device
        train = self._probe_train
        # the training networks as the model consumes them (aligned, for the alignment baseline)
        train_emb = self.embed(model, self._as_model_input(model, train.weights.to(device)), batch)
        emb = self.embed(model, ws, batch)
        # the validation loss always sees the same second views, from a generator of its own:
        # no device's global generator is touched, so training draws continue unchanged
        second = self._as_model_input(model, self.second_view(ws, torch.Generator().manual_seed(0)))
        loss = float(self.info_nce(self.embed(model, ws, batch, True), self.embed(model, second, batch, True)))
        out = self.probe(train_emb, self._quantities(train), emb, target.double().cpu())
        return {"loss": loss, **out}

    def probe(self, train_emb: Tensor, train_y: Tensor, emb: Tensor, y: Tensor) -> dict[str, float]:
        """Ridge regression fitted on ``train_emb -> train_y`` only, scored on ``(emb, y)``."""
        from sklearn.linear_model import RidgeCV

        fitted = RidgeCV(alphas=(1e-3, 1e-2, 1e-1, 1.0, 10.0)).fit(train_emb.double().numpy(), train_y.numpy())
        predicted = torch.from_numpy(fitted.predict(emb.double().numpy())).reshape(y.shape)
        error = (predicted - y).square()
        out = {"probe_mse": float(error.mean())}
        for i, key in enumerate(self.keys):
            out[f"probe_mse_{key}"] = float(error[:, i].mean())
        return out

    @torch.no_grad()
    def pictures(self, model: nn.Module, ws: WeightSpace, target: Any, path: Any, split: str = "test") -> Any:
        """The split's embeddings projected on their two principal components, one panel
        per probed quantity, coloured by it."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from sklearn.decomposition import PCA

        emb = self.embed(model, ws).double().numpy()
        points = PCA(n_components=2).fit_transform(emb)
        values = target.double().cpu().numpy()
        fig, axes = plt.subplots(1, len(self.keys), figsize=(4.2 * len(self.keys), 3.8), squeeze=False)
        for i, key in enumerate(self.keys):
            ax = axes[0, i]
            dots = ax.scatter(points[:, 0], points[:, 1], c=values[:, i], s=6, cmap="viridis")
            fig.colorbar(dots, ax=ax, fraction=0.046)
            ax.set_title(f"coloured by {key}", fontsize=9)
            ax.set_xlabel("PC 1")
            ax.set_ylabel("PC 2")
        fig.suptitle(f"{len(emb)} embeddings, first two principal components", fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    def describe(self, metrics: dict[str, Any]) -> str:
        parts = [f"{key} {metrics[f'probe_mse_{key}']:.4g}" for key in self.keys if f"probe_mse_{key}" in metrics]
        return f"probe MSE {metrics['probe_mse']:.4g}" + (f" ({', '.join(parts)})" if len(parts) > 1 else "")

    def config(self) -> dict[str, Any]:
        return {"task": self.name, "probe": list(self.keys), "embedding": self.embedding,
                "temperature": self.temperature, "noise": self.noise, "entry_dropout": self.entry_dropout}  # fmt: skip
