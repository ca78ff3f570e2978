"""The experiment layer: tasks defined outside the package, configurable models, runs that
reproduce from their saved config, TensorBoard logs, and a trainer that still computes
exactly what it did before its steps were named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from dwsnets import WeightSpace
from dwsnets.cli import main
from dwsnets.experiments import config_from_flags, flags_from_config
from dwsnets.tasks import TASKS, SupervisedTask, TaskOption, register_task


class _WeightNorm(SupervisedTask):
    """A task defined outside the package: regress each network's log weight norm raised
    to ``power`` (an option the command line learns from the task alone)."""

    name = "weight-norm"
    help = "regress the log of each network's weight norm"
    options = (TaskOption("power", 1.0, "predict the log norm times this", float),)
    metric = "mae"
    higher_is_better = False
    table_metrics = ("mse",)

    def __init__(self, power: float = 1.0) -> None:
        self.power = power

    def prepare(self, train):
        pass

    @property
    def output_size(self):
        return 1

    def targets(self, split):
        norms = torch.stack([t.flatten(1).square().sum(1) for t in split.weights.tensors]).sum(0).sqrt()
        return (self.power * norms.log())[:, None].float()

    def loss(self, output, target):
        return nn.functional.mse_loss(output.float(), target)

    def metrics(self, output, target):
        error = output.double() - target.double()
        return {"loss": float(error.square().mean()), "mse": float(error.square().mean()),
                "mae": float(error.abs().mean())}  # fmt: skip

    def config(self):
        return {"task": self.name, "power": self.power}


@pytest.fixture
def weight_norm_task(monkeypatch):
    registry = dict(TASKS)  # registered for this test only
    monkeypatch.setattr("dwsnets.tasks.TASKS", registry)
    monkeypatch.setattr("dwsnets.cli.train.TASKS", registry)  # the command line's own reference to it
    register_task(_WeightNorm)
    yield _WeightNorm


def test_a_task_defined_outside_the_package_trains_evaluates_and_tabulates(weight_norm_task, digits_zoo, tmp_path,
                                                                           capsys):  # fmt: skip
    torch.set_default_dtype(torch.float32)
    run = tmp_path / "run"
    small = ["--model-arg", "hidden_channels=8", "--model-arg", "num_layers=2", "--epochs", "2", "--batch-size", "16"]
    assert main(["train", "weight-norm", "--zoo", str(digits_zoo), "--power", "2", *small, "--out", str(run)]) == 0
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["task_options"] == {"power": 2.0} and record["task"] == {
        "task": "weight-norm",
        "power": 2.0,
    }
    assert "test mae" in capsys.readouterr().out.replace("best validation mae", "")
    assert main(["evaluate", "--run", str(run)]) == 0
    assert "dwsnet on test: mae" in capsys.readouterr().out
    table = tmp_path / "table"
    args = ["table", "--task", "weight-norm", "--zoo", str(digits_zoo), "--models", "dwsnet,mlp", "--seeds", "1"]
    assert main([*args, "--epochs", "1", "--batch-size", "16", "--out", str(table)]) == 0
    md = (table / "table.md").read_text()
    assert md.startswith("weight-norm (power 1.0) on digits")
    assert "| test MAE, mean ± std over seeds | 95% interval over test networks | test MSE |" in md
    assert "| DWSNet |" in md and "| MLP |" in md and "Told apart" in md


def test_model_args_and_a_saved_config_reproduce_a_run(digits_zoo, tmp_path):
    torch.set_default_dtype(torch.float32)
    first, again = tmp_path / "first", tmp_path / "again"
    args = ["train", "classify", "--zoo", str(digits_zoo), "--epochs", "2", "--batch-size", "16", "--rotate", "5",
            "--flip", "lr", "--model", "dwsnet", "--model-arg", "hidden_channels=8", "--model-arg", "head_hidden=(16,)",
            "--model-arg", "norm=None", "--seed", "3", "--threads", "1"]  # fmt: skip
    assert main([*args, "--out", str(first)]) == 0
    saved = json.loads((first / "config.json").read_text())["config"]
    assert saved["model_args"] == {"hidden_channels": 8, "head_hidden": [16], "norm": None}
    assert saved["signal"] == {"rotate": 5.0, "flip": [1]} and saved["seed"] == 3
    # the saved flags reproduce the run: no task named, the file's own out replaced on the command line
    assert main(["train", "--config", str(first / "config.toml"), "--out", str(again), "--threads", "1"]) == 0
    assert json.loads((again / "config.json").read_text())["config"] == saved

    def curve(run: Path) -> list[tuple[float, float]]:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [(json.loads(x)["train_loss"], json.loads(x)["val_loss"]) for x in lines]

    assert curve(again) == curve(first)
    # a flag on the command line wins over the file
    assert main(["train", "--config", str(first / "config.toml"), "--out", str(tmp_path / "e1"), "--epochs", "1"]) == 0
    assert json.loads((tmp_path / "e1" / "config.json").read_text())["config"]["epochs"] == 1


def test_bad_model_args_and_config_files_get_one_line_errors(digits_zoo, tmp_path, capsys):
    base = ["train", "classify", "--zoo", str(digits_zoo), "--epochs", "1", "--out", str(tmp_path / "r")]
    cases = [
        (["--model-arg", "width=3"], "model 'sign-equivariant' takes no argument 'width'; it takes"),  # the default
        (["--model-arg", "hidden_channels"], "--model-arg takes KEY=VALUE"),
        (["--model", "mlp", "--model-arg", "num_layers=2"], "model 'mlp' takes no argument 'num_layers'"),
    ]
    for extra, message in cases:
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    files = {
        "epochz = 3\n": "classify has no setting epochz",
        "flip = 'sideways'\n": "flip must be one of none, lr, ud, both or input axes such as 0,2, got 'sideways'",
        "epochs = [\n": "is not valid TOML",
        "task = 'regress'\n": "is for task 'regress', the command says 'train classify'",
    }
    for text, message in files.items():
        path = tmp_path / "c.toml"
        path.write_text(text)
        assert main([*base, "--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert main(["train", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_tensorboard_logs_every_epoch(digits_zoo, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.set_default_dtype(torch.float32)
    run = tmp_path / "tb"
    args = ["train", "classify", "--zoo", str(digits_zoo), "--epochs", "2", "--batch-size", "16", "--model", "mlp"]
    assert main([*args, "--tensorboard", "--out", str(run)]) == 0
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "val/accuracy", "val/loss", "run/lr"} <= set(scalars)
    assert [e.step for e in events.Scalars("val/accuracy")] == [1, 2]
    assert (run / "metrics.jsonl").exists() and (run / "curves.png").exists()  # the other outputs stay


def test_flags_and_train_config_map_both_ways():
    flags = {"task": "regress", "target": "frequency,amplitude", "model": "mlp-aug", "epochs": 7, "lr": 3e-3,
             "augment": "off", "rotate": 4.0, "flip": "both", "intensity_shift": 0.1, "bf16": True, "compile": True,
             "model_args": ["hidden=(64, 64)", "dropout=0.1"], "max_train": 100}  # fmt: skip
    config = config_from_flags(flags)
    assert config.task_options == {"targets": ["frequency", "amplitude"]}
    assert config.signal == {"rotate": 4.0, "intensity_shift": 0.1, "flip": [0, 1]}
    assert config.model_args == {"hidden": (64, 64), "dropout": 0.1} and config.amp_cpu and not config.augment_permute
    back = flags_from_config(config)
    assert back["target"] == "frequency,amplitude" and back["flip"] == "both" and back["augment"] == "off"
    again = config_from_flags({**back, "model_args": [f"{k}={v}" for k, v in back["model_args"].items()]})
    assert again == config


def test_every_setting_survives_the_flags_and_config_toml(digits_zoo, tmp_path):
    """Non-default warm-up, clipping, precision and any flip axes that TrainConfig accepts
    write to config.toml and read back to the same settings; a finished run's config.toml
    is written even for flips that have no name."""
    from dataclasses import replace

    from dwsnets.experiments.flags import read_flags_file, write_run_flags
    from dwsnets.training import TrainConfig

    config = TrainConfig(model="dwsnet", warmup_fraction=0.2, clip_grad=0.5, amp=False, amp_cpu=True, task_options={"label_smoothing": 0.1},
                         weight_decay=0.03, signal={"flip": [1, 0], "rotate": 3.0})  # fmt: skip
    for flip in ([1, 0], [0], [1], [0, 2], []):
        resolved = replace(config, signal={**config.signal, "flip": flip}).resolved()
        path = tmp_path / f"config-{'-'.join(map(str, flip)) or 'none'}.toml"
        write_run_flags(path, resolved, "zoo", "out")  # (raised StopIteration for [1, 0] and [0, 2])
        stored = read_flags_file(path)
        assert (stored["warmup_fraction"], stored["clip_grad"], stored["amp"]) == (0.2, 0.5, False)
        expected = {k: v for k, v in {**resolved.signal, "flip": sorted(flip)}.items() if v}
        assert config_from_flags(stored).resolved() == replace(resolved, signal=expected)
    # the command line's defaults are TrainConfig's: set in one place
    from dwsnets.cli import build_parser

    args = build_parser().parse_args(["train", "classify", "--zoo", str(digits_zoo)])
    assert args.weight_decay is None and args.warmup_fraction is None and args.clip_grad is None
    parsed = config_from_flags(vars(args))
    assert (parsed.weight_decay, parsed.warmup_fraction, parsed.clip_grad, parsed.amp) == (
        TrainConfig.weight_decay, TrainConfig.warmup_fraction, TrainConfig.clip_grad, TrainConfig.amp)  # fmt: skip
    assert config_from_flags({"flip": "0,2"}).signal["flip"] == [0, 2]


# float32 keeps 24 bits (6e-8 relative). A run of a few dozen steps on another CPU (other
# instruction sets order the sums of every matrix product differently) moved the recorded
# losses by 5e-8 relative (a 2-core Intel Xeon with AVX512 but no BF16, 2.3169251680 against
# 2.3169250488). 1e-5 leaves two orders of magnitude for rounding grown over the steps and
# stays far below what any change of the computation moved (1e-3 and up): tolerances of
# rounding, not of behaviour. An accuracy may change by one network whose two largest logits
# tie to within rounding.
_RELATIVE = 1e-5


def _agree(got, want, networks: int, path: str = "") -> None:
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for key in want:
            _agree(got[key], want[key], networks, f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            _agree(g, w, networks, f"{path}[{i}]")
    elif "accuracy" in path:
        assert abs(got - want) <= 1 / networks + 1e-12, (path, got, want)
    else:
        assert got == pytest.approx(want, rel=_RELATIVE), (path, got, want)


def _random_regression_zoo():
    """120 random ReLU MLPs 1-16-16-1 from torch's seeded generator (the same numbers on every
    CPU), each with a 'frequency' target that scales its first layer."""
    from dwsnets.zoo.dataset import InMemoryZoo
    from dwsnets.zoo.split import ZooSplit

    generator = torch.Generator().manual_seed(7)
    splits = {}
    for name, n in (("train", 96), ("val", 12), ("test", 12)):
        ws = WeightSpace.randn((1, 16, 16, 1), n, generator=generator)
        scale = torch.rand(n, generator=generator) * 2 + 0.5
        ws = WeightSpace([ws.weights[0] * scale[:, None, None, None], *ws.weights[1:]], list(ws.biases))
        splits[name] = ZooSplit(ws, torch.full((n,), -1), {"frequency": 3 * scale})
    return InMemoryZoo(splits, name="random-regression", activations="relu")


def test_the_trainer_computes_what_it_computed_before_its_steps_were_named(tmp_path, monkeypatch):
    """Losses and metrics of two small runs, to the last digit, against recordings.

    The classification (exact signal transforms, noise, entry dropout, one view drawn per
    image and epoch) is recorded from before the trainer was split into named steps, on a
    digits zoo fitted with the fitter's eager sine and cosine, the arithmetic of the
    recording (its fused pass differs by rounding, and this test compares exactly).
    The regression with permutation augmentation was recorded then on a fitted sine zoo;
    that zoo turned out to depend on the CPU (Adam turns the sine's last-ulp differences
    into weights 2e-4 apart: an Intel Xeon with AVX512-FP16 moved the losses by 4e-4 and
    the test loss by 1.3e-2). Since 2026-12-08 it runs on random networks drawn from torch's
    seeded generator, the same on every CPU, and its recording was made then from the
    current trainer (which gave the old classification recording back to 5e-7 on that
    Xeon); its numbers agreed to 1e-8 with torch, oneDNN and MKL held to AVX2."""
    from dwsnets.inr import fitting
    from dwsnets.training import TrainConfig, Trainer
    from dwsnets.zoo.reader import Zoo
    from dwsnets.zoo.store import ZooConfig, build_zoo

    monkeypatch.setattr(fitting, "_fused_failed", True)

    recorded = json.loads((Path(__file__).parent / "data" / "recorded_runs.json").read_text())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    try:
        build_zoo(tmp_path / "digits", ZooConfig(source="digits", max_per_split=40, views=2, views_in="train",
                                                 shard_size=40, max_steps=40, target_psnr=30.0))  # fmt: skip
        runs = {
            "classify": ("digits", TrainConfig(model="dwsnet", task="classify", epochs=2, batch_size=16,
                                               train_views="one", noise=0.05, entry_dropout=0.05,
                                               signal={"rotate": 10.0, "flip": [1]}, seed=3, sign_flips=False,
                                               model_args={"hidden_channels": 8, "num_layers": 2},
                                               task_options={"label_smoothing": 0.0})),  # the recording's loss
            "regress": (_random_regression_zoo(), TrainConfig(model="mlp-aug", task="regress", epochs=2, batch_size=16,
                                                              seed=1)),
        }  # fmt: skip
        for name, (zoo, cfg) in runs.items():
            data = tmp_path / zoo if isinstance(zoo, str) else zoo
            trainer = Trainer(data, tmp_path / f"run-{name}", cfg, progress=False)
            history = trainer.fit()["history"]
            test = trainer.evaluate("test")
            # the recording was made on one CPU; another's kernels order sums differently, so the
            # numbers agree to float32 rounding grown over the run's steps, not bit for bit
            val_networks, test_networks = ((Zoo(data) if isinstance(zoo, str) else data).split_size(s)
                                           for s in ("val", "test"))  # fmt: skip
            _agree([h["train_loss"] for h in history], recorded[name]["train_loss"], val_networks)
            _agree([{k: v for k, v in h.items() if k.startswith("val_")} for h in history], recorded[name]["val"],
                   val_networks)  # fmt: skip
            _agree({k: v for k, v in test.items() if isinstance(v, float)}, recorded[name]["test"], test_networks)
    finally:
        torch.set_num_threads(threads)


def test_compare_ignores_exactly_the_settings_that_never_change_a_result():
    """One list (``NO_EFFECT``) serves the trainer's resume check and ``compare``: two runs
    that differ only in compiling, checkpoint interval or TensorBoard differ in nothing."""
    from dwsnets.experiments.compare import differing_settings
    from dwsnets.training.config import NO_EFFECT

    base = {"lr": 1e-3, "compile": False, "checkpoint_minutes": 5.0, "tensorboard": False}
    other = {"lr": 1e-3, "compile": True, "checkpoint_minutes": 1.0, "tensorboard": True}
    assert {"compile", "checkpoint_minutes", "tensorboard"} <= NO_EFFECT
    assert differing_settings([{"config": base}, {"config": other}]) == []
    assert differing_settings([{"config": base}, {"config": {**other, "lr": 3e-3}}]) == ["lr"]  # control


def test_ensembles_average_probabilities_or_predictions_with_controls():
    """A classifier ensemble is the log of the members' mean probabilities; a regressor's
    the mean prediction; one member is itself (control: two different members move it)."""
    from dwsnets.tasks.classify import Classify

    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    classify = Classify(3)
    mixed = classify.ensemble([a, b])
    assert torch.allclose(mixed.exp(), (a.softmax(1) + b.softmax(1)) / 2, atol=1e-6)
    assert torch.allclose(mixed.exp().sum(1), torch.ones(5), atol=1e-6)
    assert torch.allclose(classify.ensemble([a]), a.log_softmax(1), atol=1e-6)
    assert not torch.allclose(mixed, a.log_softmax(1), atol=1e-3)  # control
    # the reported cross-entropy reads the log-probabilities as they are
    target = torch.tensor([0, 1, 2, 0, 1])
    assert classify.metrics(mixed, target)["loss"] == pytest.approx(float(nn.functional.nll_loss(mixed, target)))
    assert torch.allclose(_WeightNorm().ensemble([a, b]), (a + b) / 2)


def test_an_ensemble_of_runs_from_the_command_line(digits_zoo, tmp_path, capsys):
    from dwsnets.experiments import evaluate_ensemble
    from dwsnets.training import TrainConfig, Trainer

    torch.set_default_dtype(torch.float32)
    runs = []
    for seed, model in ((0, "mlp"), (1, "mlp"), (0, "dwsnet")):
        runs.append(tmp_path / f"{model}-{seed}")
        cfg = TrainConfig(epochs=2, batch_size=16, model=model, seed=seed,
                          model_args={"hidden_channels": 4, "num_layers": 1} if model == "dwsnet" else {})  # fmt: skip
        Trainer(digits_zoo, runs[-1], cfg, progress=False).fit()
    result = evaluate_ensemble(runs, split="val")
    assert result.zoo == str(digits_zoo) and len(result.members) == 3
    # each member as evaluated alone, and the ensemble as the mean of their probabilities
    probabilities = 0
    for run, config, metrics in result.members:
        trainer = Trainer(digits_zoo, run, config, progress=False)
        assert metrics["accuracy"] == trainer.evaluate("val")["accuracy"]
        probabilities = probabilities + trainer.task.outputs(trainer.model, trainer.inputs("val")[0]).softmax(1)
    truth = trainer.inputs("val")[1]
    assert result.metrics["accuracy"] == pytest.approx(float((probabilities.argmax(1) == truth).double().mean()))
    # the command: every member, then the ensemble, and its files under --out
    args = ["evaluate", *(a for run in runs for a in ("--run", str(run))), "--split", "val"]
    assert main([*args, "--out", str(tmp_path / "ens")]) == 0
    out = capsys.readouterr().out
    assert (
        out.count("  MLP") + out.count("  mlp") == 2
        and f"ensemble: accuracy {result.metrics['accuracy'] * 100:.2f}%" in out
    )
    saved = json.loads((tmp_path / "ens" / "ensemble-val.json").read_text())
    assert saved["ensemble"]["accuracy"] == result.metrics["accuracy"] and len(saved["members"]) == 3
    assert (tmp_path / "ens" / "confusion-val.png").exists()
    # what an ensemble cannot be
    assert main(["evaluate", "--run", str(runs[0]), "--run", str(runs[0])]) == 2
    assert "named twice" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(runs[0]), "--out", str(tmp_path / "x")]) == 2
    assert "--out is for ensembles" in capsys.readouterr().err
    editor = tmp_path / "edit"
    Trainer(digits_zoo, editor, TrainConfig(task="edit", epochs=1, batch_size=16, model="mlp"), progress=False).fit()
    assert main(["evaluate", "--run", str(runs[0]), "--run", str(editor)]) == 2
    assert "no per-network outputs to average" in capsys.readouterr().err


def test_table_tunes_every_model_alike_on_validation_and_reads_the_test_once(digits_zoo, tmp_path, capsys):
    from dwsnets.experiments.tuning import apply_overrides, candidates, draw_configurations, read_grid_file
    from dwsnets.training import TrainConfig, TrainingError

    space = {"lr": [1e-3, 2e-3, 4e-3], "batch_size": [16, 32]}
    drawn = draw_configurations(space, 4)
    assert drawn[0] == {} and drawn == draw_configurations(space, 4)  # the defaults first; the same draw every time
    assert draw_configurations(space, 7, seed=1) != draw_configurations(space, 7, seed=0)  # control
    base = TrainConfig(model="mlp", lr=2e-3, batch_size=32)
    kept = candidates(base, space, 6, "mlp")  # the grid point equal to the defaults is not tried twice
    assert len(kept) == 6 and len({json.dumps(vars(c), sort_keys=True, default=str) for _, c in kept}) == 6
    with pytest.raises(TrainingError, match="holds 6 distinct configurations, fewer than --tune 7"):
        candidates(base, space, 7, "mlp")  # the same budget for every model, or a one-line refusal
    with pytest.raises(TrainingError, match="cannot be tuned"):
        apply_overrides(TrainConfig(), {"eval_views": "all"})  # the data is never tuned
    with pytest.raises(TrainingError, match="does not make a valid run"):
        candidates(base, {"lr": ["fast"]}, 2, "mlp")
    assert apply_overrides(TrainConfig(), {"lr": 0.1, "model_args.hidden_channels": 4}).model_args == {
        "hidden_channels": 4}  # fmt: skip
    with pytest.raises(TrainingError, match="cannot be tuned"):
        apply_overrides(TrainConfig(), {"learning_rate": 0.1})
    grid = tmp_path / "grid.toml"
    grid.write_text('[mlp]\nlr = [1e-3, 3e-3]\n\n[dwsnet]\nlr = [2e-3, 8e-3]\n"model_args.hidden_channels" = [4]\n')
    assert read_grid_file(grid)["dwsnet"]["lr"] == [2e-3, 8e-3]
    torch.set_default_dtype(torch.float32)
    out = tmp_path / "tuned"
    args = ["table", "--zoo", str(digits_zoo), "--models", "mlp,dwsnet", "--seeds", "2", "--epochs", "1",
            "--batch-size", "16", "--tune", "2", "--tune-grid", str(grid), "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    record = json.loads((out / "tuning.json").read_text())
    assert record["budget"] == 2 and set(record["models"]) == {"mlp", "dwsnet"}
    for model, entry in record["models"].items():
        assert len(entry["tried"]) == 2 and entry["tried"][0]["overrides"] == {}  # the defaults, then one draw
        # the test split is never read for a tuning run; the seeds train the chosen one afresh
        assert not any((out / f"{model}-tune{k}" / "test.json").exists() for k in (0, 1))
        assert all((out / f"{model}-seed{s}" / "test.json").exists() for s in (0, 1))
        chosen = entry["chosen"]["overrides"]
        saved = json.loads((out / f"{model}-seed1" / "config.json").read_text())["config"]
        assert all(saved[k] == v for k, v in chosen.items() if not k.startswith("model_args."))
        best = max(e["val_accuracy"] for e in entry["tried"])
        assert entry["chosen"]["val_accuracy"] == best
    assert "every model tuned alike: 2 configurations each" in (out / "table.md").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text("[nosuchmodel]\nlr = [1]\n")
    assert main([*args[:-2], "--tune-grid", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "not a model of the registry" in capsys.readouterr().err
