"""The latent map: the posterior means μ of MNIST test digits, cached per set of weights, and its scatter plot.

Computing it needs MNIST, which a deployed app (a Space) may not have. So the means are cached in a small
safetensors file named after a sha256 of the weights. The repository ships the caches of the bundled weights in
``assets/latent_map`` (read only; refresh them with ``python -m webapp.latent_map``); the caches of any other
weights are written to a user cache folder, never into the checkout. Without a cache and without MNIST, the map
falls back to the example digits shipped with the app.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import Tensor

from vae_hub.data import DataError, load_mnist, to_unit
from vae_hub.files import atomic_write_bytes
from vae_hub.model import VAE
from vae_hub.viz import figure_to_array, plot_latent_scatter

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DIR = ROOT / "assets" / "latent_map"  # the bundled weights' caches, shipped with the app (and a Space)
MAP_SIZE = 5000  # test digits on the map: enough to see the classes' shapes, a 45 kB cache per variant


@dataclass
class LatentMap:
    mu: Tensor  # (N, D) float32 posterior means
    labels: Tensor  # (N,) int64 classes
    source: str  # where the digits came from, said under the plot


def user_cache_dir() -> Path:
    """Where the caches of other weights go: ``$VAE_HUB_MAP_CACHE``, else ``$VAE_HUB_CACHE/latent_map``, else
    ``~/.cache/vae_hub/latent_map`` (``$XDG_CACHE_HOME`` respected)."""
    if os.environ.get("VAE_HUB_MAP_CACHE"):
        return Path(os.environ["VAE_HUB_MAP_CACHE"]).expanduser()
    base = os.environ.get("VAE_HUB_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "vae_hub")
    return Path(base).expanduser() / "latent_map"


def fingerprint(model: VAE) -> str:
    """sha256 of the model's tensors (names, shapes and bytes): the cache key, whatever the weights' origin."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_path(model: VAE, cache_dir: str | os.PathLike) -> Path:
    """The cache file of ``model``'s map in ``cache_dir``."""
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
    images = []
    for f in files:
        with Image.open(f) as im:
            images.append(np.asarray(im.convert("L").resize((28, 28))))
    labels = [int(f.name.split("_")[0]) for f in files]
    return torch.from_numpy(np.stack(images)), torch.tensor(labels)


def _read(path: Path) -> LatentMap | None:
    try:
        t = load_file(path)
        return LatentMap(t["mu"].float(), t["labels"].long(), f"{len(t['labels'])} MNIST test digits")
    except (SafetensorError, OSError, KeyError):
        return None  # missing or damaged: rebuilt by the caller


def write(lmap: LatentMap, path: str | os.PathLike) -> Path:
    """Write a map's cache (float16 means, uint8 labels) atomically."""
    return atomic_write_bytes(path, save({"mu": lmap.mu.half(), "labels": lmap.labels.to(torch.uint8)}))


def from_mnist(model: VAE, data_root: str | os.PathLike | None = None, size: int = MAP_SIZE) -> LatentMap:
    """The map of the first ``size`` MNIST test digits (raises :class:`vae_hub.DataError` without MNIST)."""
    images, labels = load_mnist("test", data_root, download=False)
    return compute(model, images[:size], labels[:size], f"{min(size, len(labels))} MNIST test digits")


def load_or_build(
    model: VAE,
    examples_dir: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    size: int = MAP_SIZE,
    shipped_dir: str | os.PathLike = SHIPPED_DIR,
    cache_dir: str | os.PathLike | None = None,
) -> LatentMap:
    """The map for ``model``: from the shipped caches, else the user cache, else from MNIST test (then written to
    the user cache, :func:`user_cache_dir` by default), else from the example digits."""
    cache_dir = Path(cache_dir) if cache_dir is not None else user_cache_dir()
    for folder in (shipped_dir, cache_dir):
        lmap = _read(cache_path(model, folder))
        if lmap is not None:
            return lmap
    try:
        lmap = from_mnist(model, data_root, size)
    except DataError:
        images, labels = example_digits(examples_dir)
        return compute(model, images, labels, f"the {len(labels)} example digits (MNIST was not available)")
    try:
        write(lmap, cache_path(model, cache_dir))
    except OSError:
        pass  # a read-only deployment simply recomputes at the next start
    return lmap


def render(
    lmap: LatentMap, dims: tuple[int, int], current: Sequence | None = None, title: str = ""
) -> tuple[np.ndarray, dict]:
    """Scatter of μ over two latent dimensions coloured by class, with ``current`` (a code) marked: an RGB uint8
    image, and its geometry: the axes box in pixels (origin at the bottom left), the axes' limits, the image height
    and the dimensions, which is all it takes to map a pixel back to latent coordinates exactly."""
    fig = plot_latent_scatter(
        lmap.mu, lmap.labels, dims, title or "posterior means of test digits", marked=current, note=lmap.source
    )
    image = figure_to_array(fig)  # draws the figure: the axes' position and limits are final
    ax = fig.axes[0]  # the scatter (the colour bar comes after it)
    box = ax.get_window_extent()
    view = {
        "dims": [int(d) for d in dims],
        "box": [float(box.x0), float(box.y0), float(box.width), float(box.height)],
        "xlim": [float(v) for v in ax.get_xlim()],
        "ylim": [float(v) for v in ax.get_ylim()],
        "height": int(image.shape[0]),
    }
    return image, view


def refresh_shipped(names: Sequence[str], data_root: str | os.PathLike | None = None) -> list[Path]:
    """Rewrite the shipped caches of the bundled models ``names`` from MNIST test; drop caches of no bundled model."""
    from vae_hub import bundled_weights

    written = []
    for name in names:
        model = VAE.from_pretrained(bundled_weights(name)).eval()
        written.append(write(from_mnist(model, data_root), cache_path(model, SHIPPED_DIR)))
    for stale in set(SHIPPED_DIR.glob("latent_map_*.safetensors")) - set(written):
        stale.unlink()
    return written


def main(argv: list[str] | None = None) -> None:
    from vae_hub.hub import BUNDLED

    p = argparse.ArgumentParser(
        prog="python -m webapp.latent_map", description="Refresh the shipped latent-map caches of the bundled models."
    )
    p.add_argument("--data", default=None, help="MNIST root (default $VAE_HUB_DATA, else ./data)")
    args = p.parse_args(argv)
    for path in refresh_shipped(list(BUNDLED), args.data):
        print(f"{path.stat().st_size:>8,d}  {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
