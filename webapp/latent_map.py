"""The latent map: the posterior means μ of MNIST test digits, cached per set of weights (the page draws it).

The cache is a small safetensors file named after a sha256 of the weights, so a deployed app (a Space) needs no
MNIST: the bundled weights' caches ship in ``assets/latent_map`` (refresh them with ``python -m webapp.latent_map``).
"""

import argparse
import hashlib
import os
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import Tensor

from vae_hub.data import DataError, cache_dir, load_mnist
from vae_hub.model import VAE

from . import EXAMPLES_DIR, ROOT, VARIANTS, WEIGHTS_DIR

SHIPPED_DIR = ROOT / "assets" / "latent_map"
MAP_SIZE = 5000  # test digits on the map: enough to see the classes' shapes


@dataclass
class LatentMap:
    mu: Tensor  # (N, D) float32 posterior means
    labels: Tensor  # (N,) int64 classes
    source: str  # where the digits came from, said under the plot


def cache_path(model: VAE, folder: str | os.PathLike) -> Path:
    """The cache file of ``model``'s map in ``folder``: named after a sha256 of its tensors (names, shapes, bytes)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return Path(folder) / f"latent_map_{h.hexdigest()[:16]}.safetensors"


def compute(model: VAE, images: Tensor, labels: Tensor, source: str) -> LatentMap:
    return LatentMap(model.encode(images)[0].float().cpu(), labels.long().cpu(), source)


def to_bytes(lmap: LatentMap) -> bytes:
    """A map in the cache's format: safetensors with ``mu`` (float16, (N, D)) and ``labels`` (uint8, (N,))."""
    return save({"mu": lmap.mu.half().contiguous(), "labels": lmap.labels.to(torch.uint8)})


def write(lmap: LatentMap, path: Path) -> Path:
    """Write a map's cache under a temporary name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(to_bytes(lmap))
    os.replace(tmp, path)
    return path


def from_mnist(model: VAE, data_root: str | os.PathLike | None = None) -> LatentMap:
    """The map of the first :data:`MAP_SIZE` MNIST test digits (raises :class:`vae_hub.DataError` without MNIST)."""
    images, labels = load_mnist("test", data_root, download=False)
    return compute(model, images[:MAP_SIZE], labels[:MAP_SIZE], f"{len(labels[:MAP_SIZE])} MNIST test digits")


def load_or_build(model: VAE, user_dir: str | os.PathLike | None = None) -> LatentMap:
    """The map for ``model``: the shipped cache, else the user cache (``user_dir``, by default
    ``vae_hub.data.cache_dir()/latent_map``: never the checkout), else built from MNIST test and written there, else
    the example digits shipped with the app."""
    user_dir = Path(user_dir) if user_dir is not None else cache_dir() / "latent_map"
    for folder in (SHIPPED_DIR, user_dir):
        with suppress(SafetensorError, OSError, KeyError):  # missing or damaged: the next source
            t = load_file(cache_path(model, folder))
            return LatentMap(t["mu"].float(), t["labels"].long(), f"{len(t['labels'])} MNIST test digits")
    try:
        lmap = from_mnist(model)
    except DataError:
        files = sorted(EXAMPLES_DIR.glob("*.png"))
        images = torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("L")) for f in files]))
        labels = torch.tensor([int(f.name.split("_")[0]) for f in files])
        return compute(model, images, labels, f"the {len(files)} example digits (MNIST was not available)")
    with suppress(OSError):  # a read-only deployment recomputes at the next start
        write(lmap, cache_path(model, user_dir))
    return lmap


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m webapp.latent_map", description="Refresh the shipped latent-map caches of the bundled models."
    )
    p.add_argument("--data", default=None, help="MNIST root (default $VAE_HUB_DATA, else ./data)")
    args = p.parse_args(argv)
    written = []
    for name in VARIANTS:
        model = VAE.from_pretrained(WEIGHTS_DIR / name)
        written.append(write(from_mnist(model, args.data), cache_path(model, SHIPPED_DIR)))
        print(f"{written[-1].stat().st_size:>8,d}  {written[-1].relative_to(ROOT)}")
    for stale in set(SHIPPED_DIR.glob("latent_map_*.safetensors")) - set(written):
        stale.unlink()


if __name__ == "__main__":
    main()
