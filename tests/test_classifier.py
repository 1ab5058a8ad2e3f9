"""The measurement classifier (trained on MNIST's training set, cached under runs/) and what evaluate reports
with it: how often the bundled models' reconstructions still read as the right digit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from benchmarks.classifier import augment, load_classifier, predict
from vae_hub import VAE

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.mnist]


@pytest.fixture(scope="module")
def classifier(mnist_root: Path):
    return load_classifier(mnist_root, progress=False)  # trains once per checkout, then loads from the cache


def test_the_classifier_reads_clean_test_digits(classifier, mnist_test) -> None:
    images, labels = mnist_test
    assert (predict(classifier, images) == labels).float().mean() >= 0.99


def _each(images: torch.Tensor, change: Callable[[Image.Image], Image.Image]) -> torch.Tensor:
    """Each uint8 (28, 28) digit changed as a PIL image, as floats (N, 1, 28, 28)."""
    out = [np.asarray(change(Image.fromarray(d)), np.float32) / 255 for d in images.numpy()]
    return torch.from_numpy(np.stack(out))[:, None]


def test_the_classifier_reads_slanted_and_thick_test_digits(classifier, mnist_test) -> None:
    """The instrument must not set a ceiling of its own on digits written at a slant or with a marker. The changes
    are made with PIL, not with the training augmentation; trained on shifts alone it read 96.6% and 93.8%."""
    images, labels = mnist_test[0][:2000], mnist_test[1][:2000]
    slanted = torch.cat([_each(images, lambda im, a=a: im.rotate(a, Image.Resampling.BICUBIC)) for a in (15, -15)])
    thick = _each(  # strokes 2 pixels wider: a 5×5 maximum on a 2× copy
        images,
        lambda im: (
            im.resize((56, 56), Image.Resampling.BICUBIC)
            .filter(ImageFilter.MaxFilter(5))
            .resize((28, 28), Image.Resampling.BOX)
        ),
    )
    assert (predict(classifier, slanted) == labels.repeat(2)).float().mean() > 0.97
    assert (predict(classifier, thick) == labels).float().mean() > 0.97


def test_augmentation_is_seeded_and_keeps_digits_in_range(mnist_test) -> None:
    x = mnist_test[0][:64, None].float() / 255
    a, b = (augment(x, torch.Generator().manual_seed(3)) for _ in range(2))
    assert torch.equal(a, b) and a.shape == x.shape and 0 <= a.min() and a.max() <= 1
    assert not torch.equal(a, augment(x, torch.Generator().manual_seed(4)))
    assert 0.5 < a.sum() / x.sum() < 2  # varied, not erased or flooded


def test_reconstructions_read_worse_with_a_2d_latent_than_with_a_4d_one(classifier, mnist_test) -> None:
    images, labels = mnist_test[0][:2000], mnist_test[1][:2000]
    originals = (predict(classifier, images) == labels).float().mean()
    two, four = (
        (predict(classifier, VAE.from_pretrained(ROOT / "weights" / n).reconstruct(images)) == labels).float().mean()
        for n in ("sgvb", "z4/sgvb")
    )
    assert originals > 0.985
    assert 0.7 < two < four < originals
