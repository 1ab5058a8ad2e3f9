"""The latent map: the posterior means μ of MNIST test digits, cached per set of weights, and its scatter plot.

Computing it needs MNIST, which a deployed app (a Space) may not have. So the means are cached in a small
safetensors file named after a sha256 of the weights; the repository ships the cache for the bundled weights.
Without a cache and without MNIST, the map falls back to the example digits shipped with the app.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors import SafetensorError  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from torch import Tensor  # noqa: E402

from .data import DataError, load_mnist, to_unit  # noqa: E402
from .model import VAE  # noqa: E402
from .viz import check_dims  # noqa: E402

MAP_SIZE = 5000  # test digits on the map: enough to see the classes' shapes, a 45 kB cache per variant


@dataclass
class LatentMap:
    mu: Tensor  # (N, D) float32 posterior means
    labels: Tensor  # (N,) int64 classes
    source: str  # where the digits came from, said under the plot


def fingerprint(model: VAE) -> str:
    """sha256 of the model's tensors (names, shapes and bytes): the cache key, whatever the weights' origin."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_path(model: VAE, cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir) / f"latent_map_{fingerprint(model)[:16]}.safetensors"


@torch.no_grad()
def compute(model: VAE, images: Tensor, labels: Tensor, source: str) -> LatentMap:
    """Encode uint8 (N, 28, 28) images (or floats in [0, 1]) to their posterior means."""
    x = to_unit(images)
    mu = model.encode(x.reshape(len(x), -1).to(model.device))[0].float().cpu()
    return LatentMap(mu, labels.long().cpu(), source)


def example_digits(folder: str | os.PathLike) -> tuple[Tensor, Tensor]:
    """The shipped example digits ``<label>_<index>.png`` as (uint8 (N, 28, 28), labels (N,))."""
    files = sorted(Path(folder).glob("*.png"))
    images = [np.asarray(Image.open(f).convert("L").resize((28, 28))) for f in files]
    labels = [int(f.name.split("_")[0]) for f in files]
    return torch.from_numpy(np.stack(images)), torch.tensor(labels)


def load_or_build(
    model: VAE,
    cache_dir: str | os.PathLike,
    examples_dir: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    size: int = MAP_SIZE,
) -> LatentMap:
    """The map for ``model``: from the cache, else from MNIST test (then cached), else from the examples."""
    path = cache_path(model, cache_dir)
    if path.is_file():
        try:
            t = load_file(path)
            return LatentMap(t["mu"].float(), t["labels"].long(), f"{len(t['labels'])} MNIST test digits")
        except (SafetensorError, OSError, KeyError):
            pass  # a damaged cache is rebuilt below
    try:
        images, labels = load_mnist("test", data_root, download=False)
    except DataError:
        images, labels = example_digits(examples_dir)
        return compute(model, images, labels, f"the {len(labels)} example digits (MNIST was not available)")
    lmap = compute(model, images[:size], labels[:size], f"{min(size, len(labels))} MNIST test digits")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file({"mu": lmap.mu.half(), "labels": lmap.labels.to(torch.uint8)}, tmp)
        os.chmod(tmp, 0o644)  # a cache to ship and share, not a private file
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only deployment simply recomputes at the next start
    return lmap


def render(lmap: LatentMap, dims: tuple[int, int], current: Sequence | None = None, title: str = "") -> np.ndarray:
    """Scatter of μ over two latent dimensions coloured by class, with ``current`` (a code) marked. RGB uint8."""
    i, j = check_dims(dims, lmap.mu.shape[1])
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=100)
    try:
        mu, labels = lmap.mu.numpy(), lmap.labels.numpy()
        sc = ax.scatter(mu[:, i], mu[:, j], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5, s=4, alpha=0.7)
        fig.colorbar(sc, ax=ax, ticks=range(10), label="digit")
        if current is not None:
            ax.scatter(
                [current[i]],
                [current[j]],
                marker="*",
                s=500,
                c="yellow",
                edgecolors="black",
                linewidths=1.5,
                label="your digit",
                zorder=5,
            )
            ax.legend(loc="upper right")
        ax.set_xlabel(f"μ{i}")
        ax.set_ylabel(f"μ{j}")
        ax.set_title(title or "posterior means of test digits")
        ax.text(0.01, 0.01, lmap.source, transform=ax.transAxes, fontsize=8, color="0.3")
        fig.tight_layout()
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    finally:
        plt.close(fig)
