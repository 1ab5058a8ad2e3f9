"""Shared fixtures. In CI (CI=true) a test whose real resource is missing fails instead of skipping."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["app_server"]  # one app server for the whole session (its app_url fixture); imports no gradio
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
            return Path(cand).resolve()  # absolute: tests may change the working directory
    return Path(os.environ.get("VAE_HUB_DATA") or ROOT.parent / "shared" / "data")


def checkpoint_epoch(ckpt: Path) -> int:
    """The epoch a training checkpoint holds, 0 before the first; one that exists must always be complete."""
    from training.trainer import load_checkpoint

    return load_checkpoint(ckpt)["epoch"] if ckpt.exists() else 0


def write_fake_mnist(root: Path, n_train: int = 64, n_test: int = 32, gz: bool = True, seed: int = 0) -> dict:
    """A small dataset in MNIST's own IDX format (gzip-compressed, as distributed): squares of ink on black, so
    that there is something to learn. Returns the tensors by file name."""
    import gzip
    import struct

    g = torch.Generator().manual_seed(seed)

    def digits(n: int) -> torch.Tensor:
        x = torch.zeros(n, 28, 28, dtype=torch.uint8)
        corners = torch.randint(4, 18, (n, 2), generator=g)
        for i, (r, c) in enumerate(corners.tolist()):
            x[i, r : r + 7, c : c + 7] = torch.randint(128, 256, (7, 7), generator=g, dtype=torch.uint8)
        return x

    data = {
        "train-images-idx3-ubyte": digits(n_train),
        "train-labels-idx1-ubyte": torch.randint(0, 10, (n_train,), generator=g),
        "t10k-images-idx3-ubyte": digits(n_test),
        "t10k-labels-idx1-ubyte": torch.randint(0, 10, (n_test,), generator=g),
    }
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, t in data.items():
        header = struct.pack(">IIII", 2051, *t.shape) if t.dim() == 3 else struct.pack(">II", 2049, len(t))
        payload = header + t.to(torch.uint8).numpy().tobytes()
        if gz:
            with gzip.open(raw / f"{name}.gz", "wb") as f:
                f.write(payload)
        else:
            (raw / name).write_bytes(payload)
    return data


@pytest.fixture(scope="session")
def fake_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with a small MNIST-format dataset (64 training, 32 test images), for fast runs of the CLIs."""
    root = tmp_path_factory.mktemp("fake_mnist")
    write_fake_mnist(root)
    return root


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


TOKEN, OTHER_TOKEN = "hf_alice_write_token_0123456789", "hf_bob_token_9876543210"


@pytest.fixture(scope="module")
def hub():
    """A Hub-compatible server on 127.0.0.1 (tests/hub_server.py) with two users, alice and bob."""
    from hub_server import HubServer

    with HubServer({TOKEN: "alice", OTHER_TOKEN: "bob"}) as server:
        yield server


@pytest.fixture
def hub_env(hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point the in-process client at the local hub, with an empty HF home and cache and no token anywhere."""
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    # huggingface_hub.constants read these at import time; hf_hub_url and get_token read the constants per call.
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return hub


# Markers that follow from a test's fixtures, so that they cannot be forgotten: `make test-fast` leaves out the
# slow, http and browser tests (see pyproject.toml for the list).
FIXTURE_MARKS = {"mnist_root": "mnist", "mnist_test": "mnist", "hub": "http", "hub_env": "http"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, mark in FIXTURE_MARKS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(mark)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Debian's chromium driven by Playwright (its own browsers are never installed)."""
    require(Path(CHROMIUM).is_file(), f"Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        require(False, "playwright (pip install playwright; the browser is Debian's chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield b
        finally:
            b.close()
