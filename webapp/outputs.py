"""The images the app sends back: uint8 arrays, written as PNG files named by their content."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch import Tensor

from vae_hub.files import atomic_write_bytes
from vae_hub.viz import image_grid


def output_dir() -> Path:
    """Where the returned images are written (``$VAE_HUB_APP_OUTPUTS``, else ``<tmp>/vae_hub_app``)."""
    return Path(os.environ.get("VAE_HUB_APP_OUTPUTS") or Path(tempfile.gettempdir()) / "vae_hub_app")


def to_uint8(img: Tensor | np.ndarray, scale: int = 1) -> np.ndarray:
    """A 2-D image in [0, 1] → uint8, enlarged ``scale`` times by nearest neighbour (crisp pixels)."""
    a = img.detach().cpu().numpy() if isinstance(img, Tensor) else np.asarray(img)
    a = np.squeeze(a)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {a.shape}")
    a = (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
    return a.repeat(scale, 0).repeat(scale, 1) if scale > 1 else a


def grid_to_uint8(images: Tensor, nrow: int, min_side: int = 600) -> np.ndarray:
    """(N, 1, 28, 28) → one uint8 grid image (white separators), enlarged by an integer factor to ≥ ``min_side``."""
    grid = image_grid(images, nrow=nrow)
    return to_uint8(grid, max(1, -(-min_side // max(grid.shape))))


def grid_side(n: int, min_side: int = 600) -> int:
    """The side in pixels of :func:`grid_to_uint8`'s image of an n×n grid."""
    side = n * 30 + 2  # make_grid: 28 px cells with 2 px padding around each
    return side * max(1, -(-min_side // side))


def png_file(img: np.ndarray) -> str:
    """Write an image as a PNG named by its content, atomically, and return its path.

    Gradio writes returned arrays into its cache by rewriting the file in place. Two requests with the same
    output (two users sending the same example) then race, and one may be served a truncated file. A file written
    under a temporary name and renamed into place is never seen half-written, and Gradio copies it into its
    cache atomically.
    """
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    data = buf.getvalue()
    path = output_dir() / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
    if not path.exists():
        atomic_write_bytes(path, data)
    return str(path)


def images_as_files(fn: Callable) -> Callable:
    """Return a handler's images (uint8 arrays) as PNG files (see :func:`png_file`); other values unchanged."""

    def convert(value: Any) -> Any:
        return png_file(value) if isinstance(value, np.ndarray) and value.dtype == np.uint8 else value

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        return tuple(convert(v) for v in out) if isinstance(out, tuple) else convert(out)

    return wrapper


def prune_outputs(max_age_s: float = 3600) -> None:
    """Delete output files older than ``max_age_s`` (Gradio's own cache is pruned by ``delete_cache``)."""
    now = time.time()
    for f in output_dir().glob("*.png"):
        try:
            if now - f.stat().st_mtime > max_age_s:
                f.unlink()
        except OSError:
            pass  # another process pruned it first
