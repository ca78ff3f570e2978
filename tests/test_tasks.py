"""Tasks: targets, losses and metrics, checked against hand computations."""

from __future__ import annotations

import pytest
import torch

from dwsnets import WeightSpace
from dwsnets.tasks import Classify, Regress, Task, TaskError, TaskOption, comma_list, make_task
from dwsnets.zoo.store import ZooSplit


def _split(n: int = 6, labels=None, **info) -> ZooSplit:
    labels = torch.arange(n) % 3 if labels is None else labels
    return ZooSplit(WeightSpace.randn((2, 3, 1), n), labels, {k: torch.as_tensor(v) for k, v in info.items()})


def test_classification_metrics_match_a_hand_count():
    task = Classify()
    task.prepare(_split())
    assert task.output_size == 3
    output = torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [2.0, 0, 0], [0, 0, 2.0]])
    target = torch.tensor([0, 1, 2, 2])
    metrics = task.metrics(output, target)
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["confusion"].tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert metrics["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(output, target)))
    assert task.better(0.8, 0.75) and not task.better(0.7, 0.75)
    with pytest.raises(TaskError, match="no class labels"):
        Classify().prepare(_split(labels=torch.full((6,), -1)))
    with pytest.raises(TaskError, match="more than the 2 classes"):
        Classify(num_classes=2).prepare(_split())


def test_task_options_parse_text_and_know_what_unrecorded_runs_used():
    listed = TaskOption("probe", "a,b", "help", comma_list)
    assert listed.parsed("x, y") == ["x", "y"] and listed.parsed(["z"]) == ["z"]
    assert listed.unrecorded_value == ["a", "b"]  # unless given: the current default, parsed
    changed = TaskOption("label_smoothing", 0.1, "help", float, unrecorded=0.0)
    assert changed.parsed("0.3") == 0.3 and changed.unrecorded_value == 0.0  # not the current default
    assert TaskOption("name", "text", "help").parsed("7") == "7"  # plain text stays text


def test_label_smoothing_trains_on_softened_targets_and_reports_the_plain_loss():
    output = torch.tensor([[3.0, 0, 0], [0, 1.0, 0]])
    target = torch.tensor([0, 2])
    plain, smooth = Classify(3, label_smoothing=0.0), make_task("classify", label_smoothing=0.3)
    smooth.prepare(_split())
    # hand computation: 0.7 on the label, 0.1 on every class
    logp = output.log_softmax(1)
    by_hand = -(0.7 * logp[torch.arange(2), target] + 0.1 * logp.sum(1)).mean()
    assert float(smooth.loss(output, target)) == pytest.approx(float(by_hand))
    assert float(smooth.loss(output, target)) != pytest.approx(float(plain.loss(output, target)))  # control
    assert smooth.metrics(output, target)["loss"] == pytest.approx(plain.metrics(output, target)["loss"])
    assert smooth.config() == {"task": "classify", "label_smoothing": 0.3}
    assert plain.config() == {"task": "classify", "label_smoothing": 0.0}  # off the default: named in titles
    assert Classify().label_smoothing == 0.1 and Classify().config() == {"task": "classify"}
    with pytest.raises(TaskError, match="label smoothing must be in"):
        Classify(label_smoothing=1.0)


def test_regression_standardises_on_train_and_reports_in_target_units():
    freq = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    task = make_task("regress", targets=["frequency"])
    train = _split(frequency=freq, amplitude=freq * 0)
    task.prepare(train)
    targets = task.targets(train)
    assert torch.allclose(targets.double().mean(0), torch.zeros(1), atol=1e-6)
    assert torch.allclose(targets.double().std(0), torch.ones(1), atol=1e-6)
    # a prediction off by exactly 1 (in frequency units) everywhere, inside the training range
    sign = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])[:, None]
    output = targets + sign * float(1.0 / freq.std())
    metrics = task.metrics(output, targets)
    assert metrics["mse"] == pytest.approx(1.0, rel=1e-5) and metrics["mae"] == pytest.approx(1.0, rel=1e-5)
    assert torch.allclose(task.predictions(targets)[:, 0], freq.double(), atol=1e-5)
    # a wild prediction is clipped to the training range [1, 6] (reported unclipped beside it)
    wild = targets.clone()
    wild[0, 0] = (100.0 - float(freq.mean())) / float(freq.std())  # frequency 100 for a true 1
    metrics = task.metrics(wild, targets)
    assert metrics["mse"] == pytest.approx(25.0 / 6, rel=1e-5) and task.predictions(wild)[0, 0] == pytest.approx(6.0)
    assert metrics["mse_unclipped"] == pytest.approx(99.0**2 / 6, rel=1e-5)
    old_run = Regress()  # control: a run saved before the range was recorded is not clipped
    old_run.load_state_dict({k: v for k, v in task.state_dict().items() if k not in ("low", "high")})
    assert old_run.metrics(wild, targets)["mse"] == pytest.approx(99.0**2 / 6, rel=1e-5)
    assert task.better(0.5, 1.0) and not task.better(2.0, 1.0)
    again = Regress()
    again.load_state_dict(task.state_dict())
    assert torch.equal(again.targets(train), targets)
    with pytest.raises(TaskError, match="no phase to regress.*available: amplitude, frequency"):
        Regress(["phase"]).prepare(train)
    with pytest.raises(TaskError, match="unknown task"):
        make_task("segment")


class _Amplify(Task):
    """A task defined outside the package, with networks as outputs: map each network to
    one computing twice its function (an equivariant map of the weights)."""

    name = "amplify"
    metric = "mse"
    higher_is_better = False

    def prepare(self, train):
        pass

    @property
    def output_size(self):
        return 1

    def targets(self, split):
        from dwsnets.core.transforms import transform_outputs

        return transform_outputs(split.weights, 2.0)  # a WeightSpace target, one row per network

    outputs_networks = True  # the trainer builds the registry model's editor form (a residual EquivariantDWSNet)
    model_defaults = {"dwsnet": {"hidden_channels": 8, "num_layers": 2}}  # noqa: RUF012

    @staticmethod
    def _mse(output, target):
        return sum(((o - t) ** 2).mean() for o, t in zip(output.tensors, target.tensors)) / len(output.tensors)

    def batch_loss(self, model, ws, target):
        return self._mse(model(ws), target)

    @torch.no_grad()
    def evaluate(self, model, ws, target, split="test"):
        model.eval()
        value = float(self._mse(WeightSpace.cat([model(ws[i : i + 16]) for i in range(0, len(ws), 16)]), target))
        return {"loss": value, "mse": value}


def test_a_task_with_network_outputs_plugs_into_the_trainer(tmp_path, monkeypatch):
    """The protocol's hooks let a task whose model returns networks train through the
    same trainer, checkpoints and evaluation, registered like the built-in tasks."""
    from dwsnets import tasks
    from dwsnets.training import TrainConfig, Trainer
    from dwsnets.zoo.dataset import InMemoryZoo

    monkeypatch.setitem(tasks.TASKS, "amplify", _Amplify)
    torch.set_default_dtype(torch.float32)
    ws = WeightSpace.randn((2, 6, 6, 1), 48)
    split = ZooSplit(ws, torch.zeros(48, dtype=torch.long), {})
    data = InMemoryZoo({"train": split[:32], "val": split[32:40], "test": split[40:]})
    # permutation augmentation is on (the dwsnet default): the targets must move with the inputs
    cfg = TrainConfig(model="dwsnet", task="amplify", epochs=10, batch_size=8, lr=1e-2)
    trainer = Trainer(data, tmp_path / "amplify", cfg, progress=False)
    history = trainer.fit()["history"]
    assert cfg.resolved().augment_permute
    assert history[-1]["train_loss"] < 0.2 * history[0]["train_loss"]
    assert history[-1]["val_mse"] < 0.2 * history[0]["val_mse"]
    assert set(trainer.evaluate("test")) == {"loss", "mse"}
    assert (tmp_path / "amplify" / "curves.png").exists()


def test_contrastive_embeddings_train_and_the_probe_sees_only_training_networks(sine_zoo, tmp_path, monkeypatch):
    from dwsnets.tasks import contrastive
    from dwsnets.testing import assert_invariant
    from dwsnets.training import TrainConfig, Trainer

    torch.set_default_dtype(torch.float32)
    fitted_rows = []
    original = contrastive.Contrastive.probe

    def spy(self, train_emb, train_y, emb, y):
        fitted_rows.append(len(train_emb))
        return original(self, train_emb, train_y, emb, y)

    monkeypatch.setattr(contrastive.Contrastive, "probe", spy)
    cfg = TrainConfig(model="dwsnet", task="contrastive", task_options={"embedding": 16}, epochs=4, batch_size=24,
                      lr=3e-3, model_args={"hidden_channels": 8, "num_layers": 2, "head_hidden": (32,)})  # fmt: skip
    trainer = Trainer(sine_zoo, tmp_path / "ssl", cfg, progress=False)
    history = trainer.fit()["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert all(h["val_probe_mse"] > 0 for h in history) and "val_probe_mse_frequency" in history[0]
    assert set(fitted_rows) == {120}  # every probe was fitted on the 120 training networks only
    test = trainer.evaluate("test")
    assert test["probe_mse"] > 0 and fitted_rows[-1] == 120
    # a run evaluated from its directory alone (dwsnets evaluate) gives the same numbers
    again = Trainer(sine_zoo, tmp_path / "ssl", cfg, progress=False).evaluate("test")
    assert again["probe_mse"] == pytest.approx(test["probe_mse"], rel=1e-9)
    trainer.model.eval()
    assert_invariant(trainer.model, trainer.inputs("test")[0], atol=1e-4)
    ws, target = trainer.inputs("test")
    # the probe reads the encoder's embeddings, not the projection head's output the loss compares
    assert isinstance(trainer.model, contrastive.ContrastiveModel)
    with torch.no_grad():
        encoded, projected = trainer.model.encoder(ws), trainer.model(ws)
    assert torch.allclose(trainer.task.embed(trainer.model, ws), encoded, atol=1e-6)
    assert not torch.allclose(encoded, projected, atol=1e-3)
    assert trainer.task.pictures(trainer.model, ws, target, tmp_path / "pca.png").exists()
    # the probe can fail: a constant embedding predicts no better than the training mean
    task = contrastive.Contrastive()
    y = torch.randn(50, 2, dtype=torch.float64)
    constant = task.probe(torch.zeros(50, 4), y, torch.zeros(50, 4), y)["probe_mse"]
    informative = task.probe(y.float(), y, y.float(), y)["probe_mse"]
    assert informative < 0.01 * constant


def test_contrastive_probe_sees_training_networks_as_the_model_does(sine_zoo, tmp_path, monkeypatch):
    """The alignment baseline's probe is fitted on aligned training networks, as its test
    networks are aligned (fitting it on raw ones gave probe errors above chance)."""
    from dwsnets.tasks import contrastive
    from dwsnets.training import TrainConfig, Trainer

    torch.set_default_dtype(torch.float32)
    seen = []
    original = contrastive.Contrastive.probe
    monkeypatch.setattr(
        contrastive.Contrastive, "probe", lambda self, a, *rest: seen.append(a) or original(self, a, *rest)
    )
    cfg = TrainConfig(model="mlp-align", task="contrastive", task_options={"embedding": 8}, epochs=1, batch_size=24)
    trainer = Trainer(sine_zoo, tmp_path / "align", cfg, progress=False)
    trainer.fit()
    aligned = trainer.task.embed(trainer.model, trainer.inputs("train")[0])
    raw = trainer.task.embed(trainer.model, trainer.split("train").weights)
    assert torch.allclose(seen[-1], aligned, atol=1e-5) and not torch.allclose(seen[-1], raw, atol=1e-3)


def test_contrastive_second_view_is_aligned_for_the_alignment_baseline():
    """A model that aligns its inputs sees the second view aligned as well: a permuted
    aligned network comes back to the first view (control: a model without alignment
    gets the permuted weights)."""
    from dwsnets.baselines import build_model
    from dwsnets.tasks.contrastive import Contrastive

    torch.manual_seed(0)
    torch.set_default_dtype(torch.float32)
    task = Contrastive(noise=0.0, entry_dropout=0.0)
    model = build_model("mlp-align", (1, 8, 8, 1), 4)
    aligned = model.preprocess(WeightSpace.randn((1, 8, 8, 1), 6))
    second = task._as_model_input(model, task.second_view(aligned))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(second.tensors, aligned.tensors))
    plain = task._as_model_input(build_model("mlp", (1, 8, 8, 1), 4), task.second_view(aligned))
    assert not torch.allclose(plain.tensors[0], aligned.tensors[0])


def test_morphological_edits():
    from dwsnets.tasks.edit import edit_images

    image = torch.zeros(1, 1, 7, 7)
    image[0, 0, 3, 3] = 1.0
    dilated = edit_images(image, "dilate")
    assert int(dilated.sum()) == 9 and float(dilated[0, 0, 2:5, 2:5].min()) == 1.0
    assert torch.equal(edit_images(dilated, "erode"), image)
    assert torch.equal(
        edit_images(dilated, "gradient"), edit_images(dilated, "dilate") - image
    )  # a 5x5 block without its centre
    assert float(edit_images(torch.full((1, 1, 2, 2), 0.75), "contrast").max()) == 1.0


def _window_extremes(images):
    """Each pixel's 3x3 neighbourhood's minimum and maximum, written independently of the
    task (edge pixels replicated: for a 3x3 window the same as leaving them out)."""
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1), mode="replicate")
    windows = padded.unfold(2, 3, 1).unfold(3, 3, 1)  # (n, c, h, w, 3, 3)
    return windows.amin(dim=(-2, -1)), windows.amax(dim=(-2, -1))


@pytest.mark.parametrize("edit", ["erode", "gradient", "contrast"])
def test_every_edit_trains_against_its_own_target(edit, digits_zoo, tmp_path):
    """Each edit besides dilation, through the trainer: the targets are the source digits
    edited as the edit's definition says (computed here independently), and the metric
    compares renderings with them."""
    from dwsnets.training import TrainConfig, Trainer
    from dwsnets.zoo.store import Zoo

    torch.set_default_dtype(torch.float32)
    cfg = TrainConfig(model="mlp", task="edit", task_options={"edit": edit}, epochs=1, batch_size=16)
    trainer = Trainer(digits_zoo, tmp_path / edit, cfg, progress=False)
    trainer.fit()
    _, images = Zoo(digits_zoo).signals("test")
    source = images.reshape(-1, 1, 8, 8).double()
    low, high = _window_extremes(source)
    expected = {"erode": low, "gradient": high - low, "contrast": (2 * source - 0.5).clamp(0, 1)}[edit]
    target = trainer.inputs("test")[1]
    assert torch.allclose(target.double(), expected.reshape(-1, 64, 1), atol=1e-6)
    assert not torch.allclose(target.double(), source.reshape(-1, 64, 1), atol=1e-2)  # an edit, not the identity
    result = trainer.evaluate("test")
    with torch.no_grad():
        unedited = trainer.task.render(Zoo(digits_zoo).load("test").weights).double()
    assert result["mse_unedited"] == pytest.approx(float(((unedited - expected.reshape(-1, 64, 1)) ** 2).mean()),
                                                   rel=1e-4)  # fmt: skip


def test_editing_inrs_through_the_trainer(digits_zoo, tmp_path, capsys):
    """An equivariant model edits digit INRs so that they render the dilated digit; the
    metric comes from rendering, the model is equivariant, and evaluate draws the edits."""
    from dwsnets.cli import main
    from dwsnets.inr import siren_forward
    from dwsnets.testing import assert_equivariant
    from dwsnets.training import TrainConfig, Trainer, TrainingError
    from dwsnets.zoo.store import Zoo

    torch.set_default_dtype(torch.float32)
    cfg = TrainConfig(model="dwsnet", task="edit", task_options={"edit": "dilate"}, epochs=4, batch_size=16, lr=3e-3,
                      model_args={"hidden_channels": 8, "num_layers": 2})  # fmt: skip
    trainer = Trainer(digits_zoo, tmp_path / "edit", cfg, progress=False)
    history = trainer.fit()["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    result = trainer.evaluate("test")
    assert result["mse"] < result["mse_unedited"]  # better than not editing at all
    # the metric is what the edited INRs render against the dilated source images
    test = Zoo(digits_zoo).load("test")
    coords, images = Zoo(digits_zoo).signals("test")
    dilated = torch.nn.functional.max_pool2d(images.reshape(-1, 1, 8, 8), 3, 1, 1).reshape(-1, 64, 1)
    with torch.no_grad():
        rendered = siren_forward(coords, trainer.model(test.weights), 30.0)
    assert result["mse"] == pytest.approx(float(((rendered - dilated) ** 2).mean()), rel=1e-4)
    trainer.model.eval()
    assert_equivariant(trainer.model, test.weights[:6], atol=1e-4)
    assert main(["evaluate", "--run", str(tmp_path / "edit"), "--device", "cpu"]) == 0
    assert "pixel MSE" in capsys.readouterr().out and (tmp_path / "edit" / "edit-test.png").exists()
    with pytest.raises(TrainingError, match="do not follow signal transforms"):
        Trainer(digits_zoo, tmp_path / "e2", TrainConfig(task="edit", signal={"rotate": 5}), progress=False).fit()


def test_adapting_classifiers_through_the_trainer(classifier_zoo, tmp_path, capsys):
    """Weights in, weights out for classifiers: the metric is what the adapted classifiers
    predict on target-domain images, the model is equivariant, losses fall."""
    from dwsnets.cli import main
    from dwsnets.tasks.adapt import Adapt, finetune_classifiers
    from dwsnets.testing import assert_equivariant
    from dwsnets.training import TrainConfig, Trainer
    from dwsnets.zoo.classifiers import classifier_forward

    torch.set_default_dtype(torch.float32)
    options = {"shots": 300, "finetune_steps": 30}
    cfg = TrainConfig(model="dwsnet", task="adapt", task_options=options, epochs=4, batch_size=12, lr=3e-3,
                      model_args={"hidden_channels": 4, "num_layers": 2})  # fmt: skip
    trainer = Trainer(classifier_zoo, tmp_path / "adapt", cfg, progress=False)
    history = trainer.fit()["history"]
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    result = trainer.evaluate("test")
    task = trainer.task
    x, y = task.images["test"]
    test = trainer.inputs("test")[0]
    # the metric runs the adapted classifiers on the corrupted test images (recounted here)
    with torch.no_grad():
        adapted = trainer.model(test)
        hits = (classifier_forward(x, adapted).argmax(-1) == y).float().mean()
        unadapted = (classifier_forward(x, test).argmax(-1) == y).float().mean()
    assert result["accuracy"] == pytest.approx(float(hits), abs=1e-6)
    assert result["accuracy_unadapted"] == pytest.approx(float(unadapted), abs=1e-6)
    assert 0 < result["accuracy_finetuned"] <= 1 and "accuracy_source_domain" in result
    # fine-tuning on the shots raises target accuracy: the reference is a real optimisation
    tuned = finetune_classifiers(test, *task.images["shots"], steps=60, lr=1e-2)
    assert float(Adapt.accuracies(tuned, x, y).mean()) > result["accuracy_unadapted"]
    trainer.model.eval()
    assert_equivariant(trainer.model, test, atol=1e-4)
    assert main(["evaluate", "--run", str(tmp_path / "adapt"), "--device", "cpu"]) == 0
    assert "target accuracy" in capsys.readouterr().out and (tmp_path / "adapt" / "adapt-test.png").exists()
    with pytest.raises(TaskError, match="classifier zoo"):
        Adapt().bind(object())
    with pytest.raises(TaskError, match="adapt task has models dwsnet, mlp, mlp-aug and mlp-align, not 'deepsets'"):
        task.model_arguments("deepsets")


def test_the_finetuning_reference_is_tuned_on_validation(classifier_zoo, monkeypatch):
    """With no steps or learning rate given, the per-classifier fine-tuning reference takes
    the grid point that scores best on the validation classifiers and images, searched once
    per zoo and settings; given both, there is no search."""
    from dwsnets.tasks import adapt
    from dwsnets.zoo.reader import Zoo

    torch.set_default_dtype(torch.float32)
    monkeypatch.setattr(adapt, "FINETUNE_LRS", (1e-4, 1e-2))
    monkeypatch.setattr(adapt, "FINETUNE_STEPS", (5, 60))
    monkeypatch.setattr(adapt, "_TUNED", {})
    task = adapt.Adapt(shots=300)
    task.bind(Zoo(classifier_zoo))
    choice = task.finetune_setting()
    assert set(choice.grid) == {(1e-4, 5), (1e-4, 60), (1e-2, 5), (1e-2, 60)}
    assert choice.grid[(choice.lr, choice.steps)] == max(choice.grid.values())
    # the search can tell settings apart: 60 steps at 1e-2 move the classifiers, 5 at 1e-4 hardly
    assert choice.grid[(1e-2, 60)] > choice.grid[(1e-4, 5)]
    val = Zoo(classifier_zoo).load("val").weights
    path = dict(adapt.finetune_path(val, *task.images["shots"], [5, 60], lr=1e-2))
    assert adapt.Adapt.accuracies(path[60], *task.images["val"]).mean() == pytest.approx(choice.grid[(1e-2, 60)])

    def no_search(*args, **kwargs):
        raise AssertionError("searched again")

    monkeypatch.setattr(adapt, "tune_finetuning", no_search)
    again = adapt.Adapt(shots=300)
    again.bind(Zoo(classifier_zoo))
    assert again.finetune_setting() == choice  # remembered for this zoo and settings
    fixed = adapt.Adapt(shots=300, finetune_steps=7, finetune_lr=1e-3)
    fixed.bind(Zoo(classifier_zoo))
    assert (fixed.finetune_setting().steps, fixed.finetune_setting().lr) == (7, 1e-3)


def test_contrastive_validation_touches_no_global_generator(sine_zoo, tmp_path, monkeypatch):
    """The validation loss draws its fixed second views from a generator of its own:
    reseeding torch's global generators (``torch.manual_seed`` reseeds every CUDA device,
    and a fork of the CPU state restores only the CPU) would make training's dropout masks
    on a GPU repeat every epoch. Control: the same fixed views every time."""
    from dwsnets.training import TrainConfig, Trainer

    torch.set_default_dtype(torch.float32)
    cfg = TrainConfig(model="dwsnet", task="contrastive", task_options={"embedding": 8}, epochs=1, batch_size=24,
                      model_args={"hidden_channels": 4, "num_layers": 1})  # fmt: skip
    trainer = Trainer(sine_zoo, tmp_path / "ssl", cfg, progress=False)
    trainer.fit()

    def reseed(*args):
        raise AssertionError("evaluation reseeded a global generator")

    monkeypatch.setattr(torch, "manual_seed", reseed)
    monkeypatch.setattr(torch.cuda, "manual_seed_all", reseed)
    state = torch.get_rng_state()
    ws, target = trainer.inputs("val")
    first = trainer.task.evaluate(trainer.model, ws, target, "val")
    assert torch.equal(torch.get_rng_state(), state)
    torch.rand(5)  # training goes on drawing
    assert trainer.task.evaluate(trainer.model, ws, target, "val")["loss"] == first["loss"]


def test_generalization_predicts_each_classifiers_accuracy(classifier_zoo, digits_zoo, tmp_path):
    """The generalization task on a classifier zoo: its metric is Kendall's tau between
    the predicted and the stored test accuracies (recomputed here with scipy), the best
    checkpoint is chosen on it, and a zoo without accuracies gets a clear error."""
    from scipy.stats import kendalltau

    from dwsnets.training import TrainConfig, Trainer, TrainingError
    from dwsnets.zoo.store import Zoo

    torch.set_default_dtype(torch.float32)
    cfg = TrainConfig(model="dwsnet", task="generalization", epochs=3, batch_size=12, lr=3e-3,
                      model_args={"hidden_channels": 4, "num_layers": 2})  # fmt: skip
    trainer = Trainer(classifier_zoo, tmp_path / "gen", cfg, progress=False)
    history = trainer.fit()["history"]
    assert {"val_kendall_tau", "val_r2", "val_mae"} <= set(history[0])
    result = trainer.evaluate("test")
    test = Zoo(classifier_zoo).load("test")
    with torch.no_grad():
        predicted = torch.sigmoid(trainer.model(trainer.inputs("test")[0])[:, 0].double())
    truth = test.info["accuracy"].double()
    assert result["kendall_tau"] == pytest.approx(kendalltau(predicted.numpy(), truth.numpy()).statistic, abs=1e-9)
    assert result["mae"] == pytest.approx(float((predicted - truth).abs().mean()), rel=1e-5)
    assert trainer.task.metrics(torch.zeros(len(truth), 1), truth.float())["kendall_tau"] == 0.0  # no ranking
    perfect = torch.logit(truth.clamp(1e-4, 1 - 1e-4))[:, None].float()
    assert trainer.task.metrics(perfect, truth.float())["kendall_tau"] == pytest.approx(1.0)  # control
    with pytest.raises(TrainingError, match="no accuracy to predict"):
        Trainer(digits_zoo, tmp_path / "x", TrainConfig(task="generalization", epochs=1), progress=False).fit()
