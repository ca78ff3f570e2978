"""Training harness, baselines, alignment and the train/evaluate/table commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dwsnets import WeightSpace
from dwsnets.alignment import align_to_reference
from dwsnets.baselines import MODEL_DEFAULTS, build_model
from dwsnets.cli import main
from dwsnets.data.zoo import ZooConfig, build_zoo
from dwsnets.training import TrainConfig, Trainer, TrainingError
from helpers import swap_fixed_axis

SMALL_MODEL = {"hidden_channels": 4, "num_layers": 2, "head_hidden": (16,)}


@pytest.fixture(autouse=True)
def _float32():
    torch.set_default_dtype(torch.float32)
    yield


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("zoo") / "digits"
    torch.set_default_dtype(torch.float32)
    build_zoo(path, ZooConfig(source="digits", max_per_split=48, shard_size=48, max_steps=60, target_psnr=30.0))
    return path


def _states_equal(a: dict, b: dict, atol: float = 0.0) -> bool:
    return all(torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=0) for k in a)


def test_train_evaluate_and_resume_identically(zoo, tmp_path):
    cfg = TrainConfig(model="dwsnet", epochs=3, batch_size=16, model_args=SMALL_MODEL, noise=0.05, entry_dropout=0.05)
    full = Trainer(zoo, tmp_path / "full", cfg, progress=False)
    result = full.fit()
    assert len(result["history"]) == 3
    for name in ("last.pt", "best.pt", "metrics.jsonl", "metrics.csv", "curves.png", "config.json"):
        assert (tmp_path / "full" / name).exists(), name
    interrupted = Trainer(zoo, tmp_path / "resumed", cfg, progress=False)
    interrupted.fit(stop_after_epoch=1)
    Trainer(zoo, tmp_path / "resumed", cfg, progress=False).fit()
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)
    assert _states_equal(a["model"], b["model"])
    assert a["history"][-1]["val_accuracy"] == b["history"][-1]["val_accuracy"]
    test = full.evaluate("test")
    assert 0.0 <= test["accuracy"] <= 1.0 and test["confusion"].sum() == 48


def test_torchrun_two_processes_match_one(zoo, tmp_path):
    args = ["train", "classify", "--zoo", str(zoo), "--model", "dwsnet", "--epochs", "2", "--batch-size", "16",
            "--device", "cpu", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    one = subprocess.run([sys.executable, "-m", "dwsnets.cli", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "dwsnets.cli", *args, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a = torch.load(tmp_path / "one" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "two" / "last.pt", weights_only=False)
    # the same training up to float rounding: validation metrics agree closely; parameters
    # too, within a tolerance set by Adam, which turns the rounding noise in the (zero)
    # gradient of a bias that feeds batch norm into steps of learning-rate size
    for ha, hb in zip(a["history"], b["history"]):
        assert abs(ha["val_loss"] - hb["val_loss"]) < 1e-3 and abs(ha["train_loss"] - hb["train_loss"]) < 1e-3
    assert _states_equal(a["model"], b["model"], atol=2e-2)
    # control: the work really was split (with every rank on the whole batch, the results
    # would match too)
    assert a["history"][0]["world_size"] == 1 and b["history"][0]["world_size"] == 2
    assert b["history"][0]["samples_per_rank"] * 2 == a["history"][0]["samples_per_rank"]


def test_alignment_recovers_permuted_copies():
    torch.manual_seed(0)
    ref = WeightSpace.randn((2, 10, 8, 1), 1)
    copies = WeightSpace.cat([ref] * 6)
    permuted = copies.permute(copies.random_permutations(per_network=True))
    assert not permuted.allclose(copies)
    assert align_to_reference(permuted, ref).allclose(copies)


@pytest.mark.parametrize("name", list(MODEL_DEFAULTS))
def test_every_model_runs_and_invariant_ones_are_invariant(name):
    torch.manual_seed(0)
    sizes = (2, 8, 8, 1)
    model = build_model(name, sizes, 10)
    ws = WeightSpace.randn(sizes, 5)
    if hasattr(model, "preprocess"):
        ws = model.preprocess(ws)
    model.eval()
    out = model(ws)
    assert out.shape == (5, 10) and torch.isfinite(out).all()
    if name in ("dwsnet", "deepsets"):
        perms = ws.random_permutations(per_network=True)
        assert torch.allclose(model(ws.permute(perms)), out, atol=1e-5)
        assert not torch.allclose(model(swap_fixed_axis(ws)), out, atol=1e-5)


def test_bad_inputs_give_clear_errors(zoo, tmp_path):
    with pytest.raises(TrainingError, match="unknown model"):
        Trainer(zoo, tmp_path / "x", TrainConfig(model="resnet"))
    trainer = Trainer(zoo, tmp_path / "r", TrainConfig(epochs=1, batch_size=16, model_args=SMALL_MODEL), progress=False)
    with pytest.raises(TrainingError, match="no split 'holdout'"):
        trainer.split("holdout")
    with pytest.raises(TrainingError, match="no best checkpoint"):
        trainer.evaluate()
    trainer.fit()
    other = tmp_path / "other"
    build_zoo(other, ZooConfig(source="digits", hidden=(16, 16), max_per_split=8, shard_size=8, max_steps=20))
    with pytest.raises(TrainingError, match="layer sizes"):
        Trainer(other, tmp_path / "r", TrainConfig(epochs=1, batch_size=16, model_args=SMALL_MODEL),
                progress=False).evaluate()
    with pytest.raises(TrainingError, match="other settings"):
        Trainer(zoo, tmp_path / "r", TrainConfig(epochs=2, batch_size=16, model_args=SMALL_MODEL), progress=False).fit()
    sine = tmp_path / "sine"
    build_zoo(sine, ZooConfig(source="sine", sine_count=20, shard_size=20, max_steps=10))
    with pytest.raises(TrainingError, match="no class labels"):
        Trainer(sine, tmp_path / "s", TrainConfig())
    assert main(["evaluate", "--run", str(tmp_path / "nothing")]) == 2


def test_table_command(zoo, tmp_path, capsys):
    assert main(["table", "--zoo", str(zoo), "--models", "mlp,deepsets", "--seeds", "2", "--epochs", "1",
                 "--batch-size", "16", "--out", str(tmp_path / "t"), "--device", "cpu"]) == 0
    table = (tmp_path / "t" / "table.md").read_text()
    assert "| MLP |" in table and "DeepSets" in table and "± " in table
    assert "Hardware:" in table and " min |" in table
    saved = json.loads((tmp_path / "t" / "mlp-seed1" / "test.json").read_text())
    assert saved["train_seconds"] > 0 and "CPU" in saved["hardware"]
    # a second invocation reuses the finished runs: same rows, same recorded training time
    assert main(["table", "--zoo", str(zoo), "--models", "mlp,deepsets", "--seeds", "2", "--epochs", "1",
                 "--batch-size", "16", "--out", str(tmp_path / "t"), "--device", "cpu"]) == 0
    again = (tmp_path / "t" / "table.md").read_text()
    assert [l for l in again.splitlines() if l.startswith("| ")] == [l for l in table.splitlines() if l.startswith("| ")]
    # and refuses to mix settings into a finished run directory
    assert main(["table", "--zoo", str(zoo), "--models", "mlp", "--seeds", "1", "--epochs", "2",
                 "--batch-size", "16", "--out", str(tmp_path / "t"), "--device", "cpu"]) == 2
    assert main(["evaluate", "--run", str(tmp_path / "t" / "mlp-seed0")]) == 0
    assert (tmp_path / "t" / "mlp-seed0" / "confusion-test.png").exists()
