"""The figures that go beside a trained model: samples, reconstructions, a latent sweep, training curves."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor

from vae_hub import VAE
from vae_hub.data import to_unit
from vae_hub.files import FIGURES
from vae_hub.viz import evaluate_model, plot_latent_images, plot_latent_scatter, plot_samples


def save_compact(fig: Figure, path: str | Path, dpi: int = 72, gray: bool = True) -> Path:
    """Save ``fig`` as a small PNG (grayscale or a 64-colour palette), so that model folders stay light."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    image = Image.open(buf)
    image = image.convert("L") if gray else image.convert("RGB").quantize(colors=64)
    image.save(path, optimize=True)
    return Path(path)


def plot_curves(history: list[dict[str, Any]], path: str | Path | None = None, title: str = "") -> Figure:
    """Per-epoch nELBO, reconstruction and KL (closed form), train (running mean) and test."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(11, 3.2))
    axes = fig.subplots(1, 3)
    for ax, key, label in zip(axes, ("nelbo", "rec", "kl"), ("nELBO", "reconstruction", "KL (closed form)")):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], label="train")
        if f"test_{key}" in history[0]:
            ax.plot(epochs, [h[f"test_{key}"] for h in history], label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats / image")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    if len(history) > 5:  # the first epochs dwarf the rest; show the interesting range
        tail = [h.get("test_nelbo", h["train_nelbo"]) for h in history[2:]] + [h["train_nelbo"] for h in history[2:]]
        axes[0].set_ylim(min(tail) - 2, max(tail) + 2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        save_compact(fig, path, gray=False)
    return fig


def write_figures(
    model: VAE,
    test_images: Tensor,
    folder: str | Path,
    history: list[dict[str, Any]] | None = None,
    test_labels: Tensor | None = None,
) -> list[Path]:
    """Write the model's figures into ``folder`` (names from :data:`training.card.FIGURES`); return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / file for name, file in FIGURES.items()}
    figs = {
        "samples": plot_samples(model, n=64, seed=0),
        "reconstructions": evaluate_model(model, test_images, n=12),
        "latent": plot_latent_images(model, n=20, dims=(0, 1)),
    }
    for name, fig in figs.items():
        save_compact(fig, paths[name])
    written = [paths[name] for name in figs]
    if test_labels is not None:
        with torch.no_grad():
            mu = model.encode(to_unit(test_images).reshape(len(test_images), -1).to(model.device))[0].cpu()
        n = len(mu)
        fig = plot_latent_scatter(mu, test_labels, (0, 1), note=f"{n:,} MNIST test digits")
        save_compact(fig, paths["latent_means"], gray=False)
        written.append(paths["latent_means"])
    if history:
        plot_curves(history, paths["curves"], title=model.config.regularizer)
        written.append(paths["curves"])
    return written
