"""MNIST loading through torchvision: a tiny IDX dataset written here, the real files, and clear errors."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
import torch
from conftest import write_fake_mnist

from vae_hub import DataError, MNISTBatches, load_mnist
from vae_hub.data import RAW_FILES, binarize


def test_tiny_gz_dataset_loads(tmp_path: Path) -> None:
    data = write_fake_mnist(tmp_path, 20, 10)
    images, labels = load_mnist("train", tmp_path, download=False)
    assert images.dtype == torch.uint8 and images.shape == (20, 28, 28)
    assert torch.equal(images, data["train-images-idx3-ubyte"])
    assert torch.equal(labels, data["train-labels-idx1-ubyte"])
    test_images, _ = load_mnist("test", tmp_path, download=False)
    assert torch.equal(test_images, data["t10k-images-idx3-ubyte"])


def test_read_only_root_is_extracted_to_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_fake_mnist(tmp_path / "ro", 20, 10)
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
    write_fake_mnist(tmp_path, 20, 10, gz=False)
    monkeypatch.setenv("VAE_HUB_DATA", str(tmp_path))
    assert load_mnist("train", download=False)[0].shape == (20, 28, 28)


def test_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        load_mnist("train", tmp_path / "nowhere", download=False)
    msg = str(e.value)
    assert str((tmp_path / "nowhere" / "MNIST" / "raw").resolve()) in msg
    assert "VAE_HUB_DATA" in msg and "train-images-idx3-ubyte" in msg


def test_corrupt_files_are_a_clear_error(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path, 20, 10)
    raw = tmp_path / "MNIST" / "raw"
    gz = raw / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:30])  # truncated download
    with pytest.raises(DataError, match="cannot decompress"):
        load_mnist("train", tmp_path, download=False)
    assert not any(p.name.startswith(".") for p in raw.iterdir())  # no half-extracted temp file left

    shutil.rmtree(tmp_path / "MNIST")
    write_fake_mnist(tmp_path, 20, 10, gz=False)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(DataError, match="are corrupt"):
        load_mnist("test", tmp_path, download=False)


def test_batches_cover_the_split_and_are_reproducible(tmp_path: Path) -> None:
    data = write_fake_mnist(tmp_path, 20, 10)
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
    unshuffled = next(iter(MNISTBatches(images, batch_size=4, shuffle=False)))[0]
    assert torch.equal(unshuffled, flat[:4])


def test_dynamic_binarization_draws_afresh_each_epoch_reproducibly_and_shards_agree() -> None:
    images = torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))

    def epochs(**kw) -> list[torch.Tensor]:
        batches = MNISTBatches(
            images, batch_size=64, shuffle=False, binarize=True, generator=torch.Generator().manual_seed(3), **kw
        )
        return [torch.cat([x for x, _ in batches]) for _ in range(2)]

    first, second = epochs()
    assert set(first.unique().tolist()) == {0.0, 1.0} and not torch.equal(first, second)  # a fresh draw per epoch
    assert all(torch.equal(a, b) for a, b in zip(epochs(), (first, second)))  # the same seed, the same draws
    assert abs(first.mean().item() - images.float().mean().item() / 255) < 0.01  # Bernoulli(x): mean x
    shuffled = MNISTBatches(images, batch_size=8, binarize=True, generator=torch.Generator().manual_seed(3))
    a, b = (
        MNISTBatches(images, batch_size=8, generator=torch.Generator().manual_seed(3), rank=r, world_size=2)
        for r in (0, 1)
    )
    assert len(a) == len(b) == 4 and len(shuffled) == 8
    ranks = torch.cat([torch.cat([x for x, _ in a]), torch.cat([x for x, _ in b])])
    assert ranks.shape == (64, 784) and len(torch.unique(ranks, dim=0)) == 64  # the two shares cover the epoch
    fixed = binarize(images)
    assert torch.equal(fixed, binarize(images)) and not torch.equal(fixed, binarize(images, seed=1))
