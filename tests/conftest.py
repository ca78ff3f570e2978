import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _float64_and_seed():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(scope="session")
def digits_zoo(tmp_path_factory) -> Path:
    """48 digit INRs per split, fitted briefly (shared by the training and CLI tests)."""
    from dwsnets.zoo.store import ZooConfig, build_zoo

    path = tmp_path_factory.mktemp("zoo") / "digits"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    build_zoo(path, ZooConfig(source="digits", max_per_split=48, shard_size=48, max_steps=60, target_psnr=30.0))
    torch.set_default_dtype(previous)
    return path


@pytest.fixture(scope="session")
def sine_zoo(tmp_path_factory) -> Path:
    """150 sine INRs a sin(b x), fitted briefly: 120 train / 15 val / 15 test."""
    from dwsnets.zoo.store import ZooConfig, build_zoo

    path = tmp_path_factory.mktemp("zoo") / "sine"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    build_zoo(path, ZooConfig(source="sine", count=150, shard_size=150, max_steps=40, target_psnr=None))
    torch.set_default_dtype(previous)
    return path


@pytest.fixture(scope="session")
def classifier_zoo(tmp_path_factory) -> Path:
    """60 small digit classifiers (16-8-8-10), briefly trained: 48 train / 6 val / 6 test."""
    from dwsnets.zoo.store import ZooConfig, build_zoo

    path = tmp_path_factory.mktemp("zoo") / "classifiers"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    build_zoo(
        path,
        ZooConfig(source="digits-classifiers", count=60, hidden=(8, 8), shard_size=30, max_steps=200, lr=1e-2),
    )
    torch.set_default_dtype(previous)
    return path
