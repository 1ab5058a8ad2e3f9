"""The images the app sends back: uint8 arrays, written as PNG files named by their content."""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch import Tensor

from vae_hub.files import atomic_write_bytes
from vae_hub.viz import image_grid

# Disk bounds (docs/app.md, "Security and limits"). Each distinct output image is about 200 KB.
OUTPUT_MAX_AGE_S = 1800
OUTPUT_MAX_BYTES = 200 * 2**20
UPLOAD_CACHE_MAX_BYTES = 1024 * 2**20  # Gradio's cache: uploads (each ≤ MAX_FILE_BYTES) and copies of outputs
UPLOAD_CACHE_DELETE = (300, 1800)  # Gradio's delete_cache: every 5 min, delete its files older than 30 min
PRUNE_EVERY_S = 30.0

log = logging.getLogger("vae_hub.app")


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
    try:
        os.utime(path)  # already there: mark it fresh, so that the pruner deletes it last
    except FileNotFoundError:
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


def _prune(files: Iterable[Path], max_age_s: float, max_bytes: int) -> list[Path]:
    """Delete the files older than ``max_age_s``, then the oldest until they total at most ``max_bytes``.

    Returns the files deleted. A file that vanished meanwhile (another pruner, Gradio's own) is skipped.
    """
    now, stats = time.time(), []
    for f in files:
        try:
            stats.append((f.stat().st_mtime, f.stat().st_size, f))
        except OSError:
            pass
    stats.sort(key=lambda s: s[0])  # oldest first
    total, deleted = sum(size for _, size, _ in stats), []
    for mtime, size, f in stats:
        if now - mtime <= max_age_s and total <= max_bytes:
            break
        try:
            f.unlink()
            deleted.append(f)
        except OSError:
            pass
        total -= size
    return deleted


def prune_outputs(max_age_s: float = OUTPUT_MAX_AGE_S, max_bytes: int = OUTPUT_MAX_BYTES) -> int:
    """Bound the output folder: delete files older than ``max_age_s``, then the oldest beyond ``max_bytes``.

    Returns how many files were deleted.
    """
    return len(_prune(output_dir().glob("*.png"), max_age_s, max_bytes))


def prune_gradio_cache(demo: Any, max_bytes: int = UPLOAD_CACHE_MAX_BYTES) -> int:
    """Bound the files Gradio keeps for ``demo`` (uploads, and the copies of returned images) to ``max_bytes``,
    oldest first. Gradio's own ``delete_cache`` deletes them by age only. Returns how many files were deleted."""
    sets = list(demo.temp_file_sets)
    keep = set().union(*(getattr(b, "keep_in_cache", set()) for b in list(demo.blocks.values())))
    for _ in range(5):  # the server adds files while we copy the sets: retry on "changed size during iteration"
        try:
            files = {f for s in sets for f in list(s)} - keep
            break
        except RuntimeError:
            continue
    else:
        return 0
    deleted = {str(f) for f in _prune((Path(f) for f in files), math.inf, max_bytes)}
    for s in sets:
        s.difference_update(deleted)
    return len(deleted)


def start_pruning(demo: Any, every_s: float = PRUNE_EVERY_S) -> threading.Thread:
    """Prune the output folder and Gradio's cache every ``every_s`` seconds while the app runs (a daemon thread)."""

    def loop() -> None:
        while True:
            try:
                prune_outputs()
                prune_gradio_cache(demo)
            except Exception:  # never let the pruner die: log and go on
                log.exception("pruning the app's files failed")
            time.sleep(every_s)

    thread = threading.Thread(target=loop, name="vae-hub-pruner", daemon=True)
    thread.start()
    return thread
