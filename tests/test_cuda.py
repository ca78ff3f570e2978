"""The CUDA path gives the same results as the CPU path (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dwsnets import DWSNet, WeightSpace
from dwsnets.baselines import MODELS
from helpers import build_registry_model

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
# every model of the registry that is a torch module (statnn-gbt is fitted by scikit-learn), by name:
# a model added to the registry must be added here (the test below fails until it is)
TORCH_MODELS = ["dwsnet", "mlp", "mlp-aug", "mlp-align", "transformer", "inr2vec", "deepsets", "sign-equivariant",
                "statnn", "probe", "probe-hybrid", "render-linear", "render-cnn"]  # fmt: skip


def test_the_cuda_tests_cover_every_model_of_the_registry():
    """Runs everywhere: a model added to the registry joins the CUDA comparison below."""
    assert set(TORCH_MODELS) == {n for n, s in MODELS.items() if s.fit is None}


def model_on(name: str, device: str, train: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Outputs and gradients of the registry's ``name`` (float64, seeded) on ``device``, in
    training mode (batch statistics; dropout off, its draws differ between devices) or eval."""
    sizes = (2, 6, 5, 3)
    torch.manual_seed(0)
    ws = WeightSpace.randn(sizes, 8, dtype=torch.float64)
    model = build_registry_model(name, ws.layout, 4).double()
    model.input_norm.fit(ws)
    ws = model.preprocess(ws)
    for module in model.modules():
        if isinstance(module, nn.Dropout) or (hasattr(module, "p") and isinstance(module.p, float)):
            module.p = 0.0
    model.to(device).train(train)
    out = model(ws.to(device))
    grads = torch.autograd.grad(out.square().sum(), [p for p in model.parameters() if p.requires_grad],
                                allow_unused=True)  # fmt: skip
    return out.detach().cpu(), [None if g is None else g.cpu() for g in grads]


@needs_cuda
@pytest.mark.parametrize("name", TORCH_MODELS)
@pytest.mark.parametrize("train", [True, False])
def test_every_registry_model_computes_on_cuda_what_it_computes_on_the_cpu(name, train):
    out_cpu, grads_cpu = model_on(name, "cpu", train)
    out_gpu, grads_gpu = model_on(name, "cuda", train)
    torch.testing.assert_close(out_gpu, out_cpu, atol=1e-9, rtol=1e-7)
    for a, b in zip(grads_gpu, grads_cpu):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-7)


@needs_cuda
@pytest.mark.parametrize("sizes", [(2, 16, 16, 1), (1, 8, 6, 5, 3)])
def test_cuda_matches_cpu(sizes):
    model = DWSNet(sizes, 5, hidden_channels=8, num_layers=3, norm="batch")
    ws = WeightSpace.randn(sizes, 6)
    labels = torch.randint(0, 5, (6,))
    out_cpu = model(ws)
    nn.functional.cross_entropy(out_cpu, labels).backward()
    grads_cpu = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.cuda()
    out_gpu = model(ws.to("cuda"))
    nn.functional.cross_entropy(out_gpu, labels.cuda()).backward()
    assert torch.allclose(out_gpu.cpu(), out_cpu, atol=1e-8)
    for g_cpu, p in zip(grads_cpu, model.parameters()):
        assert torch.allclose(p.grad.cpu(), g_cpu, atol=1e-8)
    perms = ws.random_permutations(per_network=True)
    model.eval()
    permuted = ws.permute(perms).to("cuda")
    assert torch.allclose(model(permuted), model(ws.to("cuda")), atol=1e-8)


@needs_cuda
@pytest.mark.parametrize("task, options", [("classify", {}), ("regress", {"targets": ["frequency"]})])
def test_trainer_on_cuda_matches_the_cpu(task, options, digits_zoo, sine_zoo, tmp_path):
    """The whole training path on the GPU (data on the device, checkpoints, evaluation,
    signal transforms) computes what the CPU computes: in float32 to rounding, with bf16
    autocast (CUDA's default) to bf16's precision. Not only finite numbers."""
    from dataclasses import replace

    from dwsnets.training import TrainConfig, Trainer

    torch.set_default_dtype(torch.float32)
    zoo = digits_zoo if task == "classify" else sine_zoo
    signal = {"rotate": 10, "flip": [1]} if task == "classify" else {}
    cfg = TrainConfig(model="dwsnet", task=task, task_options=options, epochs=2, batch_size=16, signal=signal,
                      model_args={"hidden_channels": 8, "num_layers": 2, "head_hidden": (16,)})  # fmt: skip
    runs = {}
    for name, device, amp in (("cpu", "cpu", False), ("cuda", "cuda", False), ("cuda-bf16", "cuda", True)):
        trainer = Trainer(zoo, tmp_path / name, replace(cfg, amp=amp), device=device, progress=False)
        runs[name] = (trainer.fit()["history"], trainer.evaluate("test"))
    metric = "accuracy" if task == "classify" else "mse"
    cpu_history, cpu_test = runs["cpu"]
    # float32: rounding only, which Adam turns into drift of about 0.1% over two epochs (as
    # between 1 and 2 CPU processes); bf16: its 8-bit mantissa. A wrong kernel is off by far more.
    for name, rel in (("cuda", 1e-2), ("cuda-bf16", 1e-1)):
        history, test = runs[name]
        for a, b in zip(history, cpu_history):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=rel), name
            assert a["val_loss"] == pytest.approx(b["val_loss"], rel=rel), name
        assert test["loss"] == pytest.approx(cpu_test["loss"], rel=rel), name
        assert test[metric] == pytest.approx(cpu_test[metric], rel=rel, abs=0.05 if metric == "accuracy" else 0), name
