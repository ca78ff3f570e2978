"""The command line: train, evaluate, table; user errors reported in one line."""

from __future__ import annotations

import json
import math

import pytest
import torch

from dwsnets.cli import main


@pytest.fixture(autouse=True)
def _float32():
    torch.set_default_dtype(torch.float32)
    yield


def _one_line_error(capsys, needle: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and needle in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err


def _cli(*words: object) -> list[str]:
    """Command-line words from a compact spelling: ``_cli("table", zoo=Z, seeds=2)``."""
    return [str(w) for w in words]


def _opts(**options: object) -> list[str]:
    out: list[str] = []
    for key, value in options.items():
        out += [f"--{key.replace('_', '-')}", str(value)]
    return out


def test_table_command(digits_zoo, tmp_path, capsys, monkeypatch):
    from dwsnets.experiments import table as table_module

    drawn = []
    plot = table_module.plot_table_curves
    monkeypatch.setattr(table_module, "plot_table_curves", lambda *a, **k: drawn.append(plot(*a, **k)))
    common = {"zoo": digits_zoo, "batch_size": 16, "out": tmp_path / "t", "device": "cpu"}
    args = _cli("table", *_opts(models="mlp, deepsets", seeds=2, epochs=1, **common))
    assert main(args) == 0
    # the chance line of the curves: the table's own task object never saw the data, so it
    # reads the number of classes from the first run (10 digits)
    assert drawn == [pytest.approx(0.1)]
    table = (tmp_path / "t" / "table.md").read_text()
    assert "| MLP |" in table and "DeepSets" in table and "± " in table
    assert "Hardware:" in table and " s |" in table and "test accuracy (%)" in table
    assert "95% interval over test networks" in table and "resamples of the" in table  # over the test set too
    assert "1 epoch," in table and "0.0 min" not in table
    assert (tmp_path / "t" / "curves.png").exists()
    saved = json.loads((tmp_path / "t" / "mlp-seed1" / "test.json").read_text())
    assert saved["train_seconds"] > 0 and "CPU" in saved["hardware"] and 0 <= saved["test_accuracy"] <= 1
    # a second invocation reuses the finished runs: same rows, same recorded training time
    assert main(args) == 0
    again = (tmp_path / "t" / "table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert [line for line in again.splitlines() if line.startswith("| ")] == rows
    # and refuses to mix settings into a finished run directory
    assert main(_cli("table", *_opts(models="mlp", seeds=1, epochs=2, **common))) == 2
    capsys.readouterr()
    assert main(["evaluate", "--run", str(tmp_path / "t" / "mlp-seed0")]) == 0
    out = capsys.readouterr().out
    accuracy = json.loads((tmp_path / "t" / "mlp-seed0" / "test.json").read_text())["test_accuracy"]
    assert f"accuracy {accuracy * 100:.2f}%" in out
    assert (tmp_path / "t" / "mlp-seed0" / "confusion-test.png").exists()


def test_regression_through_the_command_line(sine_zoo, tmp_path, capsys):
    out = tmp_path / "reg"
    common = {"zoo": sine_zoo, "batch_size": 16, "device": "cpu"}
    assert main(_cli("train", "regress", *_opts(target="frequency", epochs=2, out=out, model="mlp", **common))) == 0
    assert "test MSE" in capsys.readouterr().out
    assert main(["evaluate", "--run", str(out)]) == 0
    assert "MSE" in capsys.readouterr().out
    table = _opts(task="regress", models="mlp", seeds=1, epochs=1, out=tmp_path / "t", **common)
    assert main(_cli("table", *table)) == 0
    assert "test MSE" in (tmp_path / "t" / "table.md").read_text()


def test_every_task_runs_from_the_table_command(digits_zoo, sine_zoo, classifier_zoo, tmp_path):
    for task, zoo in (("edit", digits_zoo), ("contrastive", sine_zoo), ("adapt", classifier_zoo)):
        out = tmp_path / task
        args = _opts(task=task, zoo=zoo, models="mlp", seeds=1, epochs=1, batch_size=16, out=out, device="cpu")
        if task == "adapt":
            args += _opts(shots=200, finetune_steps=10)
        assert main(_cli("table", *args)) == 0
        assert "| MLP |" in (out / "table.md").read_text()
        assert (out / f"{task}-test.png").exists()  # the task's picture of the first run


def test_user_errors_are_one_line_and_come_before_any_work(digits_zoo, tmp_path, capsys):
    assert main(["train", "classify", "--zoo", str(tmp_path / "missing")]) == 2
    _one_line_error(capsys, "no zoo at")
    assert main(["table", "--zoo", str(tmp_path / "missing")]) == 2
    _one_line_error(capsys, "fit-inrs --out")
    base = ["train", "classify", "--zoo", str(digits_zoo), "--out", str(tmp_path / "r"), "--device", "cpu"]
    assert main([*base, "--epochs", "0"]) == 2
    _one_line_error(capsys, "epochs must be at least 1")
    assert main([*base, "--batch-size", "0"]) == 2
    _one_line_error(capsys, "batch size must be at least 1")
    assert main([*base, "--lr", "-1"]) == 2
    _one_line_error(capsys, "learning rate must be positive")
    assert main(["table", "--zoo", str(digits_zoo), "--models", "mlp,bogus", "--out", str(tmp_path / "t")]) == 2
    _one_line_error(capsys, "unknown model 'bogus'")
    assert not (tmp_path / "t" / "mlp-seed0").exists()  # nothing trained before the check
    assert main(["table", "--zoo", str(digits_zoo), "--seeds", "0", "--out", str(tmp_path / "t")]) == 2
    _one_line_error(capsys, "--seeds must be at least 1")
    assert main(["fit-inrs", "--out", str(tmp_path / "z"), "--hidden", "16,x"]) == 2
    _one_line_error(capsys, "--hidden must be comma-separated")
    assert main(["fit-inrs", "--out", str(tmp_path / "z"), "--max-per-split", "0"]) == 2
    _one_line_error(capsys, "--max-per-split must be at least 1")
    assert main(["evaluate", "--run", str(tmp_path / "nothing")]) == 2
    _one_line_error(capsys, "not a training run")
    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0 and "dwsnets" in capsys.readouterr().out


def test_every_option_explains_itself():
    from dwsnets.cli import build_parser

    parser = build_parser()
    stack = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                stack += list(action.choices.values())
            elif action.option_strings and action.dest not in ("help", "version"):
                assert action.help, f"{p.prog} {action.option_strings[0]} has no help text"


@pytest.mark.parametrize(
    "command, target",
    [
        (["fit-inrs", "--out", "Z", "--max-per-split", "2"], "dwsnets.cli.zoo.build_zoo"),
        (["train", "classify", "--zoo", "Z", "--epochs", "1"], "dwsnets.training.trainer.Trainer.fit"),
        (["demo", "--zoo-dir", "Z"], "dwsnets.cli.demo.build_zoo"),
    ],
)
def test_ctrl_c_says_what_was_kept_and_how_to_resume(command, target, digits_zoo, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(target, interrupted)
    words = [
        str(digits_zoo) if w == "Z" and command[0] == "train" else str(tmp_path / w) if w == "Z" else w for w in command
    ]
    assert main([*words, "--device", "cpu"]) == 130
    err = capsys.readouterr().err
    assert "interrupted:" in err and "kept" in err and "Traceback" not in err
    assert "run the same command again" in err and f"dwsnets {words[0]}" in err


def test_broken_pipe_ends_quietly(digits_zoo):
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "dwsnets.cli", "zoo-info", str(digits_zoo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader goes away before anything is written, as `| head -0` would
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "Exception ignored" not in err and "BrokenPipe" not in err, err


def test_runs_can_be_retried_and_evaluated_elsewhere(digits_zoo, tmp_path, capsys):
    from dwsnets.zoo.store import ZooConfig, build_zoo

    run = tmp_path / "r"
    run.mkdir()
    # a run that failed before its first epoch left only its settings behind
    (run / "config.json").write_text(json.dumps({"data_id": "elsewhere", "config": {"model": "transformer"}}))
    base = [
        "train",
        "classify",
        "--zoo",
        str(digits_zoo),
        "--model",
        "mlp",
        "--batch-size",
        "16",
        "--out",
        str(run),
        "--device",
        "cpu",
    ]
    assert main([*base, "--epochs", "1"]) == 0
    capsys.readouterr()
    # a finished run asked for more epochs says why it cannot just continue
    assert main([*base, "--epochs", "3"]) == 2
    _one_line_error(capsys, "could not match a run trained for 3 epochs")
    # a new test set of the same architecture
    other = tmp_path / "other"
    build_zoo(other, ZooConfig(source="digits", seed=7, max_per_split=6, shard_size=6, max_steps=10))
    assert main(["evaluate", "--run", str(run), "--zoo", str(other)]) == 0
    assert "correct: " in capsys.readouterr().out


def test_damaged_zoos_are_never_silent(tmp_path, capsys):
    zoo = tmp_path / "z"
    fit = [
        "fit-inrs",
        "--out",
        str(zoo),
        "--max-per-split",
        "6",
        "--shard-size",
        "6",
        "--steps",
        "10",
        "--no-preview",
        "--device",
        "cpu",
    ]
    assert main(fit) == 0
    shard = zoo / "shards" / "train-00000.safetensors"
    blob = bytearray(shard.read_bytes())
    blob[-1] ^= 0xFF  # same size, one bit pattern changed
    shard.write_bytes(bytes(blob))
    capsys.readouterr()
    assert main(["zoo-info", str(zoo), "--no-verify"]) == 0
    assert "checksums not verified" in capsys.readouterr().err
    assert main(["zoo-info", str(zoo)]) == 2
    _one_line_error(capsys, "is corrupt")
    shard.write_bytes(bytes(blob[:-10]))  # truncated: caught even without checksums
    assert main(["zoo-info", str(zoo), "--no-verify"]) == 2
    _one_line_error(capsys, "is corrupt")
    assert main(fit) == 0
    assert "train-00000 was finished but its size differs from its record: refitting it" in capsys.readouterr().out
    assert main(["zoo-info", str(zoo)]) == 0


def test_table_over_training_set_sizes(sine_zoo, tmp_path, capsys):
    args = _opts(task="regress", zoo=sine_zoo, models="mlp,deepsets", seeds=2, epochs=1, batch_size=16,
                 out=tmp_path / "sweep", device="cpu", train_sizes="30,1000")  # fmt: skip
    assert main(["table", *args]) == 0
    table = (tmp_path / "sweep" / "table.md").read_text()
    assert "| model | n = 30 | n = 120 |" in table and "| MLP |" in table and "±" in table
    # the unclipped MSE beside the clipped one, from the same runs' test metrics
    assert table.count("| model | n = 30 | n = 120 |") == 2 and "Test MSE unclipped, the same runs:" in table
    unclipped = [json.loads((tmp_path / "sweep" / "n30" / f"mlp-seed{s}" / "test.json").read_text())["test_mse_unclipped"]
                 for s in (0, 1)]  # fmt: skip
    row = next(line for line in table.split("unclipped")[1].splitlines() if line.startswith("| MLP |"))
    assert row.split("|")[2].strip().startswith(f"{sum(unclipped) / 2:.4g}"[:4])
    assert (tmp_path / "sweep" / "sweep.png").exists()
    saved = json.loads((tmp_path / "sweep" / "n30" / "mlp-seed1" / "config.json").read_text())
    assert saved["config"]["max_train"] == 30
    capsys.readouterr()
    assert main(["table", *args[:-2], "--train-sizes", "0,10"]) == 2
    _one_line_error(capsys, "--train-sizes must be positive")


def test_runs_from_an_earlier_version_are_refused_clearly(digits_zoo, tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text(json.dumps({"zoo": str(digits_zoo), "zoo_id": "x", "config": {"model": "mlp"}}))
    (old / "last.pt").write_bytes(b"")
    assert main(["evaluate", "--run", str(old)]) == 2
    _one_line_error(capsys, "earlier version of dwsnets")
    assert main(["train", "classify", "--zoo", str(digits_zoo), "--out", str(old), "--device", "cpu"]) == 2
    _one_line_error(capsys, "earlier version of dwsnets")


def test_compare_names_what_differs_between_runs(digits_zoo, tmp_path, capsys):
    base = _cli("train", "classify", *_opts(zoo=digits_zoo, model="mlp", batch_size=16, epochs=1, device="cpu"))
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    assert main([*base, "--out", str(tmp_path / "b"), "--lr", "0.01", "--rotate", "10"]) == 0
    capsys.readouterr()
    plot = tmp_path / "cmp.png"
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--plot", str(plot)]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = lines[0]
    # the columns are exactly the settings that differ, and the identical ones stay out
    assert "| lr | signal.rotate |" in head and "batch_size" not in head and "model" not in head
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert len(rows) == 2 and "| 0.01 | 10.0 |" in rows[1] and "| - |" in rows[0]
    saved = json.loads((tmp_path / "a" / "test.json").read_text())
    assert f"| {saved['test_accuracy'] * 100:.2f} |" in rows[0] and "1 of 1" in rows[0]
    assert plot.exists()
    # bad input: one run, labels that do not match, a run with no finished epoch
    assert main(["compare", str(tmp_path / "a")]) == 2
    _one_line_error(capsys, "at least two run directories")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--labels", "x"]) == 2
    _one_line_error(capsys, "--labels names 1 runs")
    (tmp_path / "b" / "metrics.jsonl").unlink()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    _one_line_error(capsys, "no finished epoch yet")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "nowhere")]) == 2
    _one_line_error(capsys, "not a training run")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path)]) == 2  # the directory holding both runs
    _one_line_error(capsys, "holds several runs")


def test_the_demo_on_a_tiny_budget(tmp_path, capsys):
    """The main job's code path end to end (zoo fit, DWSNet, MLP, the probe, report), on 30
    digit images per split and 1 epoch; the full demo only changes these numbers."""
    args = ["demo", "--views", "1", "--max-per-split", "30", "--epochs", "1", "--batch-size", "8",
            "--zoo-dir", str(tmp_path / "zoo"), "--out", str(tmp_path / "runs"), "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "[4/4] training" in out and "Digit classification from INR weights (30 test INRs)" in out
    rows = {line.split("%")[0].rsplit(" ", 1)[0].strip(): float(line.split()[-1].rstrip("%"))
            for line in out.splitlines() if line.startswith("  ") and line.endswith("%")}  # fmt: skip
    probe = "Probes (ProbeGen-style generator)"
    assert set(rows) == {"DWSNet", "MLP", probe, "(chance)"} and rows["(chance)"] == 10.0
    for model, label in (("dwsnet", "DWSNet"), ("mlp", "MLP"), ("probe", probe)):
        saved = json.loads((tmp_path / "runs" / f"{model}-seed0" / "test.json").read_text())
        assert f"{saved['test_accuracy'] * 100:.2f}" == f"{rows[label]:.2f}"


def test_the_demo_takes_other_models(tmp_path, capsys):
    """``demo --models``: the sign-equivariant model beside DWSNet and the MLP, one step each;
    an unknown name is a one-line error before any fitting."""
    args = ["demo", "--views", "1", "--max-per-split", "20", "--epochs", "1", "--batch-size", "8",
            "--zoo-dir", str(tmp_path / "zoo"), "--out", str(tmp_path / "runs"), "--threads", "1"]  # fmt: skip
    assert main([*args, "--models", "dwsnet,bogus"]) == 2
    _one_line_error(capsys, "unknown model 'bogus'")
    for text, message in ((",", "names no model; give a comma-separated list, for example"), ("all", "not all")):
        assert main([*args, "--models", text]) == 2
        _one_line_error(capsys, message)  # the demo's list: no suggestion of 'all', which it refuses
    assert not (tmp_path / "zoo").exists()
    assert main([*args, "--models", "dwsnet,sign-equivariant,mlp"]) == 0
    out = capsys.readouterr().out
    assert "[1/4] fitting" in out and "[4/4] training MLP" in out
    assert "Sign-equivariant messages" in out and (tmp_path / "runs" / "sign-equivariant-seed0" / "test.json").exists()


def test_the_synthetic_demo(tmp_path, capsys):
    """``demo --synthetic``: ReLU MLPs fitted to sine waves, classified by frequency; the
    zoo's networks really compute their sines (fit MSE), and the chance line is the
    majority class of the test networks."""
    from dwsnets.zoo.synthetic import make_sine_mlp_zoo

    made = make_sine_mlp_zoo(64, hidden=8, n_classes=3, steps=300, seed=1)
    assert made.weights.layer_sizes == (1, 8, 8, 1) and set(made.labels.tolist()) == {0, 1, 2}
    x = torch.linspace(-math.pi, math.pi, 128)
    h = x[None, :, None].expand(64, 128, 1)
    for m, (w, b) in enumerate(zip(made.weights.weights, made.weights.biases)):
        h = torch.baddbmm(b[:, 0, None, :], h, w[:, 0].transpose(1, 2))
        h = torch.relu(h) if m < 2 else h
    target = made.amplitudes[:, None] * torch.sin((made.labels[:, None] + 1).float() * x)
    assert torch.allclose(((h[..., 0] - target) ** 2).mean(1), made.mse, rtol=1e-3, atol=1e-6)
    assert float(made.mse.median()) < 0.05  # fitted, not just initialised (a sine's power is about a^2 / 2)
    args = ["demo", "--synthetic", "--networks", "200", "--hidden", "8", "--classes", "3", "--epochs", "2",
            "--batch-size", "16", "--out", str(tmp_path / "runs"), "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Frequency classification from weights (140 train / 40 test networks, 2 epochs)" in out
    assert "(chance)" in out and (tmp_path / "runs" / "dwsnet-seed0" / "test.json").exists()
    assert (tmp_path / "runs" / "probe-seed0" / "test.json").exists()  # the synthetic zoo says how its networks run
