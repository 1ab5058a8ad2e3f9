"""Shared fixtures. In CI (CI=true) a test whose real resource is missing fails instead of skipping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, what: str) -> None:
    """Skip locally, fail in CI: a skipped test is not a passed test."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI but missing: {what}")
    pytest.skip(f"missing: {what}")


def _mnist_root() -> Path:
    for cand in (os.environ.get("VAE_HUB_DATA"), ROOT.parent / "shared" / "data", ROOT / "data"):
        if cand and (Path(cand) / "MNIST" / "raw").is_dir():
            return Path(cand)
    return Path(os.environ.get("VAE_HUB_DATA") or ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    root = _mnist_root()
    require((root / "MNIST" / "raw").is_dir(), f"the real MNIST at {root}/MNIST/raw (set VAE_HUB_DATA)")
    return root


@pytest.fixture(scope="session")
def mnist_test(mnist_root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    from vae_hub import load_mnist

    return load_mnist("test", mnist_root)


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Extraction of a read-only data root goes to a cache; keep it out of the user's home during tests.
    monkeypatch.setenv("VAE_HUB_CACHE", str(tmp_path_factory.getbasetemp() / "vae_hub_cache"))
