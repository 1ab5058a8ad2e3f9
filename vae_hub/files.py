"""The artefact file names, in one place, and the one atomic-write helper that every writer uses."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

# A model folder (``save_pretrained`` plus what training and evaluation add beside it).
CONFIG_NAME = "config.json"  # the architecture
WEIGHTS_NAME = "model.safetensors"
TRAINING_ARGS_NAME = "training_args.json"  # the training settings
METRICS_NAME = "metrics.json"  # per-epoch metrics, written by training.train
EVAL_NAME = "eval.json"  # written by training.evaluate --save
CARD_NAME = "README.md"
FIGURES = {
    "samples": "samples.png",
    "reconstructions": "reconstructions.png",
    "latent": "latent.png",
    "latent_means": "latent_means.png",
    "curves": "curves.png",
}
CKPT_NAME = "checkpoint.safetensors"  # a training run's checkpoint, in its own folder
PICKLE_NAMES = ("pytorch_model.bin", "model.bin", "model.pt", "model.pth", "model.ckpt")  # refused, never read


@contextmanager
def atomic_writer(path: str | os.PathLike, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on success it is fsynced and renamed over ``path``.

    Readers only ever see the old file or the complete new one: a crash at any point leaves at worst a stray
    ``.<name>.*.tmp`` beside the intact previous version, never a half-written ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)  # mkstemp's 0600 would make README.md etc. private to their writer
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))
