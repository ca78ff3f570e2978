"""The trainer: any task, resume, data parallelism, model preprocessing, CNN zoos."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from dwsnets.baselines import build_model
from dwsnets.baselines.alignment import align_to_reference
from dwsnets.core.weight_space import WeightSpace
from dwsnets.testing import assert_invariant
from dwsnets.training import TrainConfig, Trainer, TrainingError
from dwsnets.training.config import read_run_record
from dwsnets.zoo.dataset import InMemoryZoo
from dwsnets.zoo.store import Zoo, ZooConfig, ZooSplit, build_zoo
from helpers import cnn_zoo

SMALL_MODEL = {"hidden_channels": 4, "num_layers": 2, "head_hidden": (16,)}


@pytest.fixture(autouse=True)
def _float32():
    torch.set_default_dtype(torch.float32)
    yield


def _states_equal(a: dict, b: dict, atol: float = 0.0) -> bool:
    return all(torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=0) for k in a)


def test_train_evaluate_and_resume_identically(digits_zoo, tmp_path):
    cfg = TrainConfig(model="dwsnet", epochs=3, batch_size=16, model_args=SMALL_MODEL, noise=0.05, entry_dropout=0.05)
    full = Trainer(digits_zoo, tmp_path / "full", cfg, progress=False)
    result = full.fit()
    assert len(result["history"]) == 3 and result["metric"] == "accuracy"
    for name in ("last.pt", "best.pt", "metrics.jsonl", "metrics.csv", "curves.png", "config.json"):
        assert (tmp_path / "full" / name).exists(), name
    interrupted = Trainer(digits_zoo, tmp_path / "resumed", cfg, progress=False)
    interrupted.fit(stop_after_epoch=1)
    Trainer(digits_zoo, tmp_path / "resumed", cfg, progress=False).fit()
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)
    assert _states_equal(a["model"], b["model"])
    assert a["history"][-1]["val_accuracy"] == b["history"][-1]["val_accuracy"]
    # the reported accuracy is what the best checkpoint predicts, counted independently
    test = full.evaluate("test")
    model = build_model("dwsnet", (2, 32, 32, 1), 10, **SMALL_MODEL)
    model.load_state_dict(torch.load(tmp_path / "full" / "best.pt", weights_only=False)["model"])
    model.eval()
    split = Zoo(digits_zoo).load("test")
    with torch.no_grad():
        pred = model(split.weights).argmax(1)
    correct = int((pred == split.labels).sum())
    assert test["accuracy"] == pytest.approx(correct / 48, abs=1e-12)
    assert int(test["confusion"].trace()) == correct and int(test["confusion"].sum()) == 48
    assert test["confusion"][3].sum() == int((split.labels == 3).sum())


def test_throughput_counts_only_the_networks_trained_on(digits_zoo, tmp_path):
    """48 training networks in batches of 20: the loader drops the last 8, so the rate
    is 40 networks over the epoch's time (it was 48, 20% too high)."""
    cfg = TrainConfig(model="dwsnet", epochs=1, batch_size=20, model_args=SMALL_MODEL)
    record = Trainer(digits_zoo, tmp_path / "r", cfg, progress=False).fit()["history"][0]
    assert record["samples_per_rank"] == 40
    assert record["inrs_per_second"] * record["epoch_seconds"] == pytest.approx(40, rel=1e-9)


def test_regression_is_a_task_of_the_same_trainer(sine_zoo, tmp_path):
    """Frequency regression on sine INRs: same trainer, checkpoints and resume; the loss
    falls; the reported MSE is in the target's own units."""
    cfg = TrainConfig(
        model="dwsnet",
        task="regress",
        task_options={"targets": ["frequency"]},
        epochs=4,
        batch_size=16,
        model_args=SMALL_MODEL,
        lr=3e-3,
    )
    full = Trainer(sine_zoo, tmp_path / "full", cfg, progress=False)
    history = full.fit()["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert "val_mse" in history[0] and "val_mae" in history[0]
    Trainer(sine_zoo, tmp_path / "resumed", cfg, progress=False).fit(stop_after_epoch=2)
    Trainer(sine_zoo, tmp_path / "resumed", cfg, progress=False).fit()
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)
    assert _states_equal(a["model"], b["model"])
    test = Trainer(sine_zoo, tmp_path / "full", cfg, progress=False).evaluate("test")
    model = build_model("dwsnet", (1, 32, 32, 1), 1, **SMALL_MODEL)
    model.load_state_dict(torch.load(tmp_path / "full" / "best.pt", weights_only=False)["model"])
    model.eval()
    split = Zoo(sine_zoo).load("test")
    train_freq = Zoo(sine_zoo).load("train").info["frequency"].double()
    with torch.no_grad():
        predicted = model(split.weights)[:, 0].double() * train_freq.std() + train_freq.mean()
    truth = split.info["frequency"].double()
    clipped = predicted.clamp(train_freq.min(), train_freq.max())
    assert test["mse"] == pytest.approx(float((clipped - truth).square().mean()), rel=1e-5)
    assert test["mse_unclipped"] == pytest.approx(float((predicted - truth).square().mean()), rel=1e-5)
    # where clipping acts: outputs beyond the training range (a network far outside the
    # training distribution) count at the range's edge in mse, as they are in mse_unclipped
    task = full.task
    outputs = torch.tensor([[-40.0], [0.0], [40.0]])
    targets = task.targets(split[:3]).double()
    values = outputs[:, 0].double() * train_freq.std() + train_freq.mean()
    edge = values.clamp(train_freq.min(), train_freq.max())
    metrics = task.metrics(outputs, targets.float())
    assert metrics["mse"] == pytest.approx(float((edge - truth[:3]).square().mean()), rel=1e-5)
    assert metrics["mse_unclipped"] == pytest.approx(float((values - truth[:3]).square().mean()), rel=1e-5)
    assert metrics["mse_unclipped"] > 100 * metrics["mse"]


def _one_and_two_processes(args: list[str], tmp_path, even: bool = True) -> tuple[dict, dict]:
    """The last checkpoints of the same training in one process and under torchrun with 2
    gloo processes (``even``: each rank takes exactly half of every batch)."""
    args = [*args, "--device", "cpu", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    launchers = {
        "one": [sys.executable, "-m", "dwsnets.cli"],
        "two": [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "dwsnets.cli",
        ],
    }
    for name, launcher in launchers.items():
        done = subprocess.run(
            [*launcher, *args, "--out", str(tmp_path / name)], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
    a, b = (torch.load(tmp_path / name / "last.pt", weights_only=False) for name in launchers)
    # control: the work really was split (with every rank on the whole batch, the results
    # would match too)
    assert a["history"][0]["world_size"] == 1 and b["history"][0]["world_size"] == 2
    if even:
        assert b["history"][0]["samples_per_rank"] * 2 == a["history"][0]["samples_per_rank"]
    return a, b


def test_torchrun_two_processes_match_one(digits_zoo, tmp_path):
    args = ["train", "classify", "--zoo", str(digits_zoo), "--model", "dwsnet", "--epochs", "2", "--batch-size", "16"]
    a, b = _one_and_two_processes(args, tmp_path)
    # the same training up to float rounding: validation metrics agree closely; parameters
    # too, within a tolerance set by Adam, which turns the rounding noise in the (zero)
    # gradient of a bias that feeds batch norm into steps of learning-rate size
    # (measured: 4e-4 here, 1.0046e-3 on a 2-core Intel Xeon without BF16; the rounding of the
    # ranks' summed gradients grows through Adam's steps, so the bound is 5e-3 relative).
    # The states: on a 2-core Intel Xeon with AVX512-FP16 the last batch norm's running
    # variance ended 0.0201 apart, and exactly as far (0.0201) between two one-process runs
    # that differ only in rounding (one with torch, oneDNN and MKL held to AVX2): what two
    # epochs of Adam make of last-bit differences, not a difference between the runs. The
    # bound is 0.05, 2.5 times that floor (it was 0.02, under the floor on that CPU).
    for ha, hb in zip(a["history"], b["history"]):
        assert ha["val_loss"] == pytest.approx(hb["val_loss"], rel=5e-3)
        assert ha["train_loss"] == pytest.approx(hb["train_loss"], rel=5e-3)
    assert _states_equal(a["model"], b["model"], atol=5e-2)


def test_torchrun_contrastive_loss_sees_every_rank_as_negatives(sine_zoo, tmp_path):
    """InfoNCE under torchrun gathers both ranks' embeddings: each network is contrasted
    with the whole batch, as in one process. (Each rank alone would see half the negatives:
    a lower loss, about log(12) against log(24) at the start.) The second view is a pure
    permutation here, to which DWSNet is invariant, so both runs see the same views."""
    # batches of 25: the ranks hold 13 and 12 networks, and the gather still rebuilds the batch
    args = ["train", "contrastive", "--zoo", str(sine_zoo), "--model", "dwsnet", "--epochs", "2",
            "--batch-size", "25", "--view-noise", "0", "--view-dropout", "0", "--embedding", "8"]  # fmt: skip
    a, b = _one_and_two_processes(args, tmp_path, even=False)
    assert b["history"][0]["samples_per_rank"] == 52  # rank 0: 13 of each of the 4 batches
    # the training losses agree to rounding (4e-6 in the first epoch), the validation losses
    # within the drift Adam makes of rounding noise (see the test above); each rank on its
    # own half would be far off (1.81 against 2.45 in the first epoch)
    for ha, hb in zip(a["history"], b["history"]):
        assert hb["train_loss"] == pytest.approx(ha["train_loss"], rel=2e-3)
        assert hb["val_loss"] == pytest.approx(ha["val_loss"], rel=1e-2)


def test_alignment_reaches_splits_loaded_before_the_model(digits_zoo, tmp_path):
    """mlp-align preprocesses every split with the built model, including a split that
    was read before the model existed."""
    cfg = TrainConfig(model="mlp-align", epochs=1, batch_size=16)
    trainer = Trainer(digits_zoo, tmp_path / "a", cfg, progress=False)
    raw_val = trainer.split("val").weights  # read early, before any model is built
    trainer.fit()
    used = trainer.inputs("val")[0]
    reference = WeightSpace.from_flat(trainer.model.reference[None], (2, 32, 32, 1))
    assert used.allclose(align_to_reference(raw_val, reference), atol=1e-6)
    assert not used.allclose(raw_val, atol=1e-3)  # control: alignment changed the weights


def test_cnn_weight_space_zoo_trains_and_the_model_is_invariant(tmp_path):
    """A DWSNet classifier learns which task each small CNN was trained for, from its
    weights (trained here), through the same trainer; it is invariant to hidden-channel
    permutations, with a control."""
    ws, labels = cnn_zoo(64)
    assert ws.kernel_shapes == ((3, 3), (3, 3), ())
    everything = ZooSplit(ws, labels, {})
    data = InMemoryZoo({"train": everything[:40], "val": everything[40:52], "test": everything[52:]}, name="cnns")
    cfg = TrainConfig(model="dwsnet", epochs=12, batch_size=8, lr=3e-3, model_args=SMALL_MODEL)
    trainer = Trainer(data, tmp_path / "cnn", cfg, progress=False)
    history = trainer.fit()["history"]
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    test = trainer.evaluate("test")
    assert test["accuracy"] >= 0.75
    trainer.model.eval()
    assert_invariant(trainer.model, everything[52:].weights)


def test_bad_inputs_give_clear_errors(digits_zoo, tmp_path):
    with pytest.raises(TrainingError, match="unknown model"):
        Trainer(digits_zoo, tmp_path / "x", TrainConfig(model="resnet"))
    with pytest.raises(TrainingError, match="epochs must be at least 1.*batch size must be at least 1"):
        TrainConfig(epochs=0, batch_size=0).resolved()
    with pytest.raises(TrainingError, match="learning rate must be positive"):
        TrainConfig(lr=-1).resolved()
    with pytest.raises(TrainingError, match="unknown task"):
        Trainer(digits_zoo, tmp_path / "x", TrainConfig(task="segment"))
    trainer = Trainer(
        digits_zoo, tmp_path / "r", TrainConfig(epochs=1, batch_size=16, model_args=SMALL_MODEL), progress=False
    )
    with pytest.raises(TrainingError, match="no split 'holdout'"):
        trainer.split("holdout")
    with pytest.raises(TrainingError, match="no best checkpoint"):
        trainer.evaluate()
    trainer.fit()
    other = tmp_path / "other"
    build_zoo(other, ZooConfig(source="digits", hidden=(16, 16), max_per_split=8, shard_size=8, max_steps=20))
    with pytest.raises(TrainingError, match=r"layer_sizes=\(2, 32, 32, 1\).*layer_sizes=\(2, 16, 16, 1\)"):
        Trainer(
            other, tmp_path / "r", TrainConfig(epochs=1, batch_size=16, model_args=SMALL_MODEL), progress=False
        ).evaluate()
    with pytest.raises(TrainingError, match="--epochs 1, this command asks for --epochs 2.*could not match"):
        Trainer(
            digits_zoo, tmp_path / "r", TrainConfig(epochs=2, batch_size=16, model_args=SMALL_MODEL), progress=False
        ).fit()
    sine = tmp_path / "sine"
    build_zoo(sine, ZooConfig(source="sine", count=20, shard_size=20, max_steps=10))
    with pytest.raises(TrainingError, match="no class labels.*regress"):
        Trainer(sine, tmp_path / "s", TrainConfig()).fit()
    with pytest.raises(TrainingError, match="no amplitude_of_b to regress"):
        Trainer(sine, tmp_path / "s2", TrainConfig(task="regress", task_options={"targets": ["amplitude_of_b"]})).fit()


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_a_damaged_checkpoint_is_named_and_the_other_one_takes_over(digits_zoo, tmp_path, capsys):
    """A run directory damaged from outside (a copy cut short): a truncated last.pt resumes
    from best.pt, a full training state too, to the same result; a truncated best.pt names
    the file and the intact last.pt; both damaged say to start again. Never a traceback."""
    from dwsnets.cli import main

    cfg = TrainConfig(epochs=3, batch_size=16, model_args=SMALL_MODEL)
    full = Trainer(digits_zoo, tmp_path / "full", cfg, progress=False)
    full.fit()
    run = tmp_path / "run"
    Trainer(digits_zoo, run, cfg, progress=False).fit(stop_after_epoch=2)
    best_epoch = torch.load(run / "best.pt", weights_only=False)["epoch"]
    _truncate(run / "last.pt")
    with pytest.warns(UserWarning, match=rf"last.pt is damaged.*resuming from best.pt \(epoch {best_epoch + 1}\)"):
        Trainer(digits_zoo, run, cfg, progress=False).fit()
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=False)
    b = torch.load(run / "last.pt", weights_only=False)
    assert _states_equal(a["model"], b["model"]) and len(b["history"]) == 3
    # evaluation of a damaged best.pt names it and the intact last.pt
    _truncate(run / "best.pt")
    with pytest.raises(TrainingError, match=r"best.pt is damaged.*last.pt is intact.*--checkpoint last"):
        Trainer(digits_zoo, run, cfg, progress=False).evaluate()
    assert main(["evaluate", "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert "best.pt is damaged" in err and "Traceback" not in err
    assert main(["evaluate", "--run", str(run), "--checkpoint", "last"]) == 0
    # both damaged: nothing to resume from
    _truncate(run / "last.pt", keep=0.1)
    with pytest.raises(TrainingError, match=r"last.pt is damaged.*best.pt is damaged.*delete"):
        Trainer(digits_zoo, run, cfg, progress=False).fit()
    # a best.pt that holds a model only (as runs before this change wrote it) cannot resume
    torch.save({"model": a["model"], "epoch": 3}, run / "best.pt")
    with pytest.raises(TrainingError, match=r"best.pt holds a model only.*training cannot resume"):
        Trainer(digits_zoo, run, cfg, progress=False).fit()


def test_evaluate_on_another_zoo_with_the_same_layout(digits_zoo, tmp_path):
    cfg = TrainConfig(model="mlp", epochs=1, batch_size=16)
    Trainer(digits_zoo, tmp_path / "r", cfg, progress=False).fit()
    other = tmp_path / "other"
    build_zoo(other, ZooConfig(source="digits", seed=3, max_per_split=10, shard_size=10, max_steps=20))
    result = Trainer(other, tmp_path / "r", cfg, progress=False).evaluate("test")
    assert int(result["confusion"].sum()) == 10


def test_mid_epoch_checkpoints_resume_identically_and_report_progress(digits_zoo, tmp_path):
    """With a checkpoint after every step, a run stopped inside an epoch resumes from that
    step and ends exactly where an uninterrupted run ends; progress.txt says where it is."""
    cfg = TrainConfig(model="dwsnet", epochs=2, batch_size=16, model_args=SMALL_MODEL, noise=0.05,
                      checkpoint_minutes=1e-9)  # fmt: skip
    Trainer(digits_zoo, tmp_path / "full", cfg, progress=False).fit()
    Trainer(digits_zoo, tmp_path / "cut", cfg, progress=False).fit(stop_after_step=4)  # 3 steps per epoch
    saved = torch.load(tmp_path / "cut" / "last.pt", weights_only=False)
    assert saved["partial"]["batch"] == 0 and saved["epoch"] == 1  # inside the second epoch
    Trainer(digits_zoo, tmp_path / "cut", cfg, progress=False).fit()
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=False)
    assert _states_equal(a["model"], b["model"])
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    progress = (tmp_path / "cut" / "progress.txt").read_text()
    assert "finished epoch 2 of 2" in progress and "validation accuracy" in progress
    # the checkpoint interval never changes a result, so a run may resume with another one
    other = TrainConfig(**{**cfg.__dict__, "checkpoint_minutes": 10.0})
    Trainer(digits_zoo, tmp_path / "cut", other, progress=False).fit()


def test_a_moving_average_of_the_weights_is_validated_kept_tested_and_resumed(digits_zoo, tmp_path):
    """--ema-epochs: validation and best.pt read the average, evaluate loads it (control:
    the live weights differ and score otherwise), and an interrupted run resumes to the
    same average as an uninterrupted one."""
    cfg = TrainConfig(model="dwsnet", epochs=3, batch_size=16, model_args=SMALL_MODEL, ema_epochs=1.0,
                      checkpoint_minutes=1e-9)  # fmt: skip
    trainer = Trainer(digits_zoo, tmp_path / "full", cfg, progress=False)
    history = trainer.fit()["history"]
    best = torch.load(tmp_path / "full" / "best.pt", weights_only=False)
    assert best["averaged_steps"] == 3 * (best["epoch"] + 1)  # 3 steps per epoch, every one averaged
    assert not _states_equal(best["averaged_model"], best["model"])  # control: the average moved on its own
    model = trainer.load_model("best")
    assert _states_equal(model.state_dict(), best["averaged_model"])
    assert (
        trainer.evaluate("val")["accuracy"]
        == history[best["epoch"]]["val_accuracy"]
        == max(h["val_accuracy"] for h in history)
    )
    model.load_state_dict(best["model"])
    live = trainer.task.evaluate(model, *trainer.inputs("val"))
    assert live["loss"] != trainer.evaluate("val")["loss"]
    # resumed from a mid-epoch checkpoint: the same average as the uninterrupted run
    Trainer(digits_zoo, tmp_path / "cut", cfg, progress=False).fit(stop_after_step=4)
    Trainer(digits_zoo, tmp_path / "cut", cfg, progress=False).fit()
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=False)
    assert _states_equal(a["averaged_model"], b["averaged_model"]) and a["averaged_steps"] == b["averaged_steps"] == 9
    with pytest.raises(TrainingError, match="ema_epochs must not be negative"):
        TrainConfig(ema_epochs=-1.0).resolved()


def test_the_moving_average_is_evaluated_with_normalisation_statistics_of_its_own_weights(digits_zoo, tmp_path):
    import copy

    from dwsnets.nn.norm import WSBatchNorm

    cfg = TrainConfig(model="dwsnet", epochs=2, batch_size=16, model_args=SMALL_MODEL, ema_epochs=1.0)
    trainer = Trainer(digits_zoo, tmp_path / "ema", cfg, progress=False)
    trainer.fit()
    last = torch.load(tmp_path / "ema" / "last.pt", weights_only=False)
    average = trainer.build()
    average.load_state_dict(last["averaged_model"])
    # the whole training set through the averaged weights in one batch: its batch norms' means
    fresh = copy.deepcopy(average).train()
    norms = [m for m in fresh.modules() if isinstance(m, WSBatchNorm)]
    for m in norms:
        m.momentum = 1.0
    with torch.no_grad():
        fresh(trainer.inputs("train")[0])
    # (the first batch norm's inputs do not depend on batch statistics, so its means are exact)
    mine = next(m for m in average.modules() if isinstance(m, WSBatchNorm))
    torch.testing.assert_close(mine.running_mean, norms[0].running_mean, atol=1e-5, rtol=1e-4)
    # control: the live weights' statistics, which the average was evaluated with before, differ
    live = last["model"]
    name = next(k for k in live if k.endswith("running_mean"))
    assert not torch.allclose(live[name], last["averaged_model"][name], atol=1e-3)


def test_a_run_recorded_without_a_task_option_resumes_with_the_value_it_was_made_with(digits_zoo, tmp_path):
    """Runs record every task option; a config.json written before that (label smoothing
    missing) is read as label smoothing 0, the value such runs trained with, not as today's
    default, so the plain command refuses to continue it."""
    cfg = TrainConfig(model="mlp", epochs=1, batch_size=16)
    Trainer(digits_zoo, tmp_path / "r", cfg, progress=False).fit()
    record = json.loads((tmp_path / "r" / "config.json").read_text())
    assert record["config"]["task_options"] == {"label_smoothing": 0.1}  # the default, recorded
    record["config"]["task_options"] = {}  # as written before
    (tmp_path / "r" / "config.json").write_text(json.dumps(record))
    assert read_run_record(tmp_path / "r")["config"]["task_options"] == {"label_smoothing": 0.0}
    with pytest.raises(TrainingError, match="label_smoothing': 0.0} there, {'label_smoothing': 0.1} now"):
        Trainer(digits_zoo, tmp_path / "r", cfg, progress=False).fit()
    same = TrainConfig(model="mlp", epochs=1, batch_size=16, task_options={"label_smoothing": 0.0})
    assert len(Trainer(digits_zoo, tmp_path / "r", same, progress=False).fit()["history"]) == 1


def test_several_inrs_per_image(tmp_path):
    """One random view per image per epoch; validation and test on each image's first INR
    unless all are asked for."""
    zoo = tmp_path / "views"
    build_zoo(zoo, ZooConfig(source="digits", views=3, max_per_split=10, shard_size=30, max_steps=15))
    one = TrainConfig(model="mlp", epochs=2, batch_size=5, train_views="one")
    trainer = Trainer(zoo, tmp_path / "one", one, progress=False)
    history = trainer.fit()["history"]
    assert history[0]["samples_per_rank"] == 10  # 10 images, one INR each
    assert len(trainer.split("val")) == 10 and bool((trainer.split("val").info["view"] == 0).all())
    everything = Trainer(zoo, tmp_path / "all", TrainConfig(model="mlp", epochs=1, batch_size=5, eval_views="all"),
                         progress=False)  # fmt: skip
    assert everything.fit()["history"][0]["samples_per_rank"] == 30 and len(everything.split("val")) == 30
    # draws cover the views: the rows used in an epoch are one per image, views vary
    groups = trainer._view_groups()
    picked = Trainer._epoch_order(10, 10, groups, torch.Generator().manual_seed(0))
    info = trainer.split("train").info
    assert sorted(info["image_index"][picked].tolist()) == sorted(set(info["image_index"].tolist()))
    assert len(set(info["view"][picked].tolist())) > 1
    first = Trainer(zoo, tmp_path / "first", TrainConfig(model="mlp", epochs=1, batch_size=5, train_views="first"),
                    progress=False)  # fmt: skip
    assert first.fit()["history"][0]["samples_per_rank"] == 10
    assert bool((first.split("train").info["view"] == 0).all())  # control: "all" trains on views 1 and 2 too
    # the table puts 1 view and K views side by side
    from dwsnets.cli import main

    out = tmp_path / "views-table"
    assert main(["table", "--zoo", str(zoo), "--models", "mlp", "--seeds", "1", "--epochs", "1", "--batch-size", "5",
                 "--train-views", "first,all", "--out", str(out), "--device", "cpu"]) == 0  # fmt: skip
    md = (out / "table.md").read_text()
    assert "1 view (each image's first INR)" in md and "3 views (all, every epoch)" in md and "| MLP |" in md
    plain = ZooSplit(WeightSpace.randn((2, 4, 1), 8), torch.arange(8) % 2, {})  # no image or view information
    with pytest.raises(TrainingError, match="several INRs per image"):
        Trainer(InMemoryZoo({"train": plain, "val": plain}), tmp_path / "x", one, progress=False).fit()


def test_epoch_size_cycles_a_small_training_set(digits_zoo, tmp_path):
    """``epoch_size`` larger than the training set: several reshuffled passes per epoch, so
    a small set gets the optimiser steps of a large one (training-set size sweeps)."""
    gen = torch.Generator().manual_seed(0)
    order = Trainer._epoch_order(5, 12, None, gen)
    assert len(order) == 12
    assert sorted(order[:5].tolist()) == sorted(order[5:10].tolist()) == list(range(5))
    assert len(set(order[10:].tolist())) == 2
    # control: passes are shuffled independently
    passes = [Trainer._epoch_order(5, 10, None, gen) for _ in range(4)]
    assert any(not torch.equal(p[:5], p[5:]) for p in passes)
    # one view per image and pass: rows come from the right image, views vary across passes
    groups = torch.arange(12).reshape(4, 3)  # 4 images, 3 views each
    rows = Trainer._epoch_order(4, 40, groups, torch.Generator().manual_seed(1))
    assert sorted((rows // 3)[:4].tolist()) == [0, 1, 2, 3] and len(set((rows % 3).tolist())) == 3
    cfg = TrainConfig(model="mlp", epochs=2, batch_size=8, max_train=8, epoch_size=40)
    history = Trainer(digits_zoo, tmp_path / "cycled", cfg, progress=False).fit()["history"]
    assert [h["samples_per_rank"] for h in history] == [40, 40]  # 5 steps of 8, not 1
    with pytest.raises(TrainingError, match="epoch_size"):
        TrainConfig(epoch_size=0).resolved()


def test_signal_transforms_through_the_trainer(digits_zoo, sine_zoo, tmp_path):
    cfg = TrainConfig(model="dwsnet", epochs=1, batch_size=16, model_args=SMALL_MODEL,
                      signal={"rotate": 15, "translate": 0.1, "flip": [1], "intensity_scale": 0.1})  # fmt: skip
    plain = TrainConfig(model="dwsnet", epochs=1, batch_size=16, model_args=SMALL_MODEL)
    a = Trainer(digits_zoo, tmp_path / "aug", cfg, progress=False).fit()["history"][0]["train_loss"]
    b = Trainer(digits_zoo, tmp_path / "plain", plain, progress=False).fit()["history"][0]["train_loss"]
    assert a != b  # the transforms reached the batches
    with pytest.raises(TrainingError, match="rotation and shear need 2-D inputs"):
        Trainer(sine_zoo, tmp_path / "s", TrainConfig(task="regress", signal={"rotate": 10}), progress=False).fit()
    with pytest.raises(TrainingError, match="unknown signal transform"):
        TrainConfig(signal={"spin": 1}).resolved()


def test_bf16_on_a_cpu_without_bf16_units_falls_back_to_float32(digits_zoo, tmp_path, monkeypatch):
    """--bf16 on a CPU without AVX512-BF16 or AMX (6.7x slower than float32 there) warns and
    trains in float32, and the run records float32; with bf16 units (control) or
    DWSNETS_BF16=force it stays on."""
    from dwsnets import utils

    cfg = TrainConfig(epochs=1, batch_size=16, model_args=SMALL_MODEL, amp_cpu=True)
    monkeypatch.setattr(utils, "cpu_bf16_units", lambda: None)
    with pytest.warns(UserWarning, match="no bf16 units.*training in float32"):
        trainer = Trainer(digits_zoo, tmp_path / "a", cfg, progress=False)
    assert not trainer.config.amp_cpu
    trainer.fit()
    assert json.loads((tmp_path / "a" / "config.json").read_text())["config"]["amp_cpu"] is False
    monkeypatch.setenv("DWSNETS_BF16", "force")
    assert Trainer(digits_zoo, tmp_path / "b", cfg, progress=False).config.amp_cpu
    monkeypatch.delenv("DWSNETS_BF16")
    monkeypatch.setattr(utils, "cpu_bf16_units", lambda: "AVX512-BF16")
    assert Trainer(digits_zoo, tmp_path / "c", cfg, progress=False).config.amp_cpu


def test_sign_flips_and_canonical_signs_train_on_sirens_and_are_refused_for_relu_classifiers(
    digits_zoo, classifier_zoo, tmp_path
):
    cfg = TrainConfig(epochs=1, batch_size=16, model_args=SMALL_MODEL, sign_flips=True)
    history = Trainer(digits_zoo, tmp_path / "a", cfg, progress=False).fit()["history"]
    assert len(history) == 1 and json.loads((tmp_path / "a" / "config.json").read_text())["config"]["sign_flips"]
    adapt = TrainConfig(task="adapt", task_options={"shots": 100, "finetune_steps": 0}, epochs=1, sign_flips=True)
    with pytest.raises(TrainingError, match="--sign-flips needs every hidden activation odd.*these networks have relu"):
        Trainer(classifier_zoo, tmp_path / "b", adapt, progress=False).fit()
    # the canonical form instead: every split read in it, once
    from dwsnets.core.signs import canonical_signs

    canon = TrainConfig(epochs=1, batch_size=16, model_args=SMALL_MODEL, canonical_signs=True)
    trainer = Trainer(digits_zoo, tmp_path / "c", canon, progress=False)
    trainer.fit()
    for split in ("train", "val", "test"):
        assert all(bool((s == 1).all()) for s in canonical_signs(trainer.split(split).weights))
    assert not all(bool((s == 1).all()) for s in canonical_signs(Zoo(digits_zoo).load("test").weights))  # control
    with pytest.raises(TrainingError, match="would undo --canonical-signs"):
        Trainer(digits_zoo, tmp_path / "d", TrainConfig(sign_flips=True, canonical_signs=True), progress=False).fit()
    # models blind to the flips: refused for ReLU networks, accepted for SIRENs (control)
    for model, args in (("sign-equivariant", {"hidden_channels": 4, "num_layers": 1}),
                        ("dwsnet", {**SMALL_MODEL, "input_encoding": "fourier-even"})):  # fmt: skip
        blind = TrainConfig(task="generalization", epochs=1, batch_size=16, model=model, model_args=args)
        with pytest.raises(TrainingError, match=f"the {model} model .blind to the sign.* odd.*have relu"):
            Trainer(classifier_zoo, tmp_path / f"e-{model}", blind, progress=False).fit()
        sirens = TrainConfig(epochs=1, batch_size=16, model=model, model_args=args)
        assert len(Trainer(digits_zoo, tmp_path / f"f-{model}", sirens, progress=False).fit()["history"]) == 1


def test_sign_flips_default_to_on_for_dwsnet_classifying_sirens_only(digits_zoo, classifier_zoo, tmp_path):
    """The plain command gets the sine's sign flips where they won on validation (DWSNet,
    classification, a SIREN zoo) and nowhere else; an explicit choice always stands."""

    def resolved(data, name, **kwargs):
        return Trainer(data, tmp_path / name, TrainConfig(**kwargs), progress=False).config.sign_flips

    assert resolved(digits_zoo, "a", model="dwsnet") is True
    assert resolved(digits_zoo, "b", model="dwsnet", sign_flips=False) is False
    assert resolved(digits_zoo, "c", model="mlp") is False
    assert resolved(digits_zoo, "d", model="dwsnet", canonical_signs=True) is False
    assert resolved(digits_zoo, "e", model="dwsnet", task="contrastive") is False
    adapt = TrainConfig(task="adapt", task_options={"shots": 100})
    assert not Trainer(classifier_zoo, tmp_path / "f", adapt, progress=False).group.sign_flips  # ReLU networks
    assert resolved(classifier_zoo, "g", task="adapt", task_options={"shots": 100}, sign_flips=True) is True
