"""MNIST loading through torchvision: a tiny IDX dataset written here, the real files, and clear errors."""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import struct
from pathlib import Path

import pytest
import torch

from vae_hub import DataError, MNISTBatches, load_mnist, mnist_batches
from vae_hub.data import RAW_FILES


def _idx_images(images: torch.Tensor) -> bytes:
    n, h, w = images.shape
    return struct.pack(">IIII", 2051, n, h, w) + images.numpy().tobytes()


def _idx_labels(labels: torch.Tensor) -> bytes:
    return struct.pack(">II", 2049, len(labels)) + labels.to(torch.uint8).numpy().tobytes()


def write_tiny_mnist(root: Path, n_train: int = 20, n_test: int = 10, gz: bool = True) -> dict[str, torch.Tensor]:
    """Write a tiny dataset in the official IDX format (gzip-compressed, as distributed)."""
    g = torch.Generator().manual_seed(0)
    data = {
        "train-images-idx3-ubyte": torch.randint(0, 256, (n_train, 28, 28), generator=g, dtype=torch.uint8),
        "train-labels-idx1-ubyte": torch.randint(0, 10, (n_train,), generator=g),
        "t10k-images-idx3-ubyte": torch.randint(0, 256, (n_test, 28, 28), generator=g, dtype=torch.uint8),
        "t10k-labels-idx1-ubyte": torch.randint(0, 10, (n_test,), generator=g),
    }
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, t in data.items():
        payload = _idx_images(t) if t.dim() == 3 else _idx_labels(t)
        if gz:
            with gzip.open(raw / f"{name}.gz", "wb") as f:
                f.write(payload)
        else:
            (raw / name).write_bytes(payload)
    return data


def test_tiny_gz_dataset_loads(tmp_path: Path) -> None:
    data = write_tiny_mnist(tmp_path)
    images, labels = load_mnist("train", tmp_path, download=False)
    assert images.dtype == torch.uint8 and images.shape == (20, 28, 28)
    assert torch.equal(images, data["train-images-idx3-ubyte"])
    assert torch.equal(labels, data["train-labels-idx1-ubyte"])
    test_images, _ = load_mnist("test", tmp_path, download=False)
    assert torch.equal(test_images, data["t10k-images-idx3-ubyte"])


def test_read_only_root_is_extracted_to_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_tiny_mnist(tmp_path / "ro")
    raw = tmp_path / "ro" / "MNIST" / "raw"
    os.chmod(raw, stat.S_IRUSR | stat.S_IXUSR)
    monkeypatch.setenv("VAE_HUB_CACHE", str(tmp_path / "cache"))
    try:
        images, _ = load_mnist("test", tmp_path / "ro", download=False)
        assert torch.equal(images, data["t10k-images-idx3-ubyte"])
        assert sorted(os.listdir(raw)) == sorted(f"{n}.gz" for n in RAW_FILES)  # nothing written there
        assert (tmp_path / "cache" / "data" / "MNIST" / "raw" / RAW_FILES[0]).is_file()
    finally:
        os.chmod(raw, stat.S_IRWXU)


def test_root_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tiny_mnist(tmp_path, gz=False)
    monkeypatch.setenv("VAE_HUB_DATA", str(tmp_path))
    assert load_mnist("train", download=False)[0].shape == (20, 28, 28)


def test_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        load_mnist("train", tmp_path / "nowhere", download=False)
    msg = str(e.value)
    assert str((tmp_path / "nowhere" / "MNIST" / "raw").resolve()) in msg
    assert "VAE_HUB_DATA" in msg and "train-images-idx3-ubyte" in msg


def test_corrupt_files_are_a_clear_error(tmp_path: Path) -> None:
    write_tiny_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    gz = raw / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:30])  # truncated download
    with pytest.raises(DataError, match="cannot decompress"):
        load_mnist("train", tmp_path, download=False)
    assert not any(p.name.startswith(".") for p in raw.iterdir())  # no half-extracted temp file left

    shutil.rmtree(tmp_path / "MNIST")
    write_tiny_mnist(tmp_path, gz=False)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(DataError, match="unreadable or corrupt"):
        load_mnist("test", tmp_path, download=False)


def test_batches_cover_the_split_and_are_reproducible(tmp_path: Path) -> None:
    data = write_tiny_mnist(tmp_path)
    images, labels = load_mnist("train", tmp_path, download=False)
    b1 = MNISTBatches(images, labels, batch_size=8, generator=torch.Generator().manual_seed(1))
    batches = list(b1)
    assert len(b1) == len(batches) == 3 and [len(x) for x, _ in batches] == [8, 8, 4]
    x = torch.cat([x for x, _ in batches])
    assert x.dtype == torch.float32 and x.shape == (20, 784) and 0 <= x.min() and x.max() <= 1
    # every image exactly once, with its own label
    flat = data["train-images-idx3-ubyte"].reshape(20, -1).float() / 255
    order = [int((flat == row).all(1).nonzero()) for row in x]
    assert sorted(order) == list(range(20))
    assert torch.equal(torch.cat([y for _, y in batches]), labels[order])
    b2 = MNISTBatches(images, labels, batch_size=8, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, b2))
    assert [len(x) for x, _ in MNISTBatches(images, batch_size=8, drop_last=True)] == [8, 8]
    unshuffled = next(iter(MNISTBatches(images, batch_size=4, shuffle=False)))[0]
    assert torch.equal(unshuffled, flat[:4])


def test_real_mnist(mnist_root: Path) -> None:
    train_x, train_y = load_mnist("train", mnist_root)
    test_x, test_y = load_mnist("test", mnist_root)
    assert train_x.shape == (60000, 28, 28) and test_x.shape == (10000, 28, 28)
    assert train_y.shape == (60000,) and test_y[:5].tolist() == [7, 2, 1, 0, 4]
    assert abs(train_x.float().mean().item() / 255 - 0.1307) < 1e-3
    batches = mnist_batches("test", mnist_root, batch_size=256)
    assert len(batches) == 40 and next(iter(batches))[0].shape == (256, 784)
