"""The measurement classifier (trained on MNIST's training set, cached under runs/) and what evaluate reports
with it: how often the bundled models' reconstructions still read as the right digit."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.classifier import load_classifier, predict
from training.evaluate import classifier_accuracy
from vae_hub import VAE, MNISTBatches, bundled_weights

pytestmark = [pytest.mark.slow, pytest.mark.mnist]


@pytest.fixture(scope="module")
def classifier(mnist_root: Path):
    return load_classifier(mnist_root, progress=False)  # trains once (about a minute), then loads from the cache


def test_the_classifier_reads_clean_test_digits(classifier, mnist_test) -> None:
    images, labels = mnist_test
    assert (predict(classifier, images[:2000]) == labels[:2000]).float().mean() > 0.985


def test_reconstructions_read_worse_with_a_2d_latent_than_with_a_4d_one(classifier, mnist_test) -> None:
    images, labels = mnist_test
    loader = MNISTBatches(images[:2000], labels[:2000], batch_size=1000, shuffle=False)
    two, four = (
        classifier_accuracy(VAE.from_pretrained(bundled_weights(n)), classifier, loader) for n in ("sgvb", "z4/sgvb")
    )
    assert two["originals"] == four["originals"] > 0.985
    assert 0.7 < two["reconstructions"] < four["reconstructions"] < two["originals"]
