"""Figures: reconstructions, latent grids and samples. Grids are built with ``torchvision.utils.make_grid``."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # figures are rendered to files and arrays, never to a window

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from .data import to_unit  # noqa: E402
from .model import VAE  # noqa: E402


def image_grid(images: Tensor, nrow: int, padding: int = 2, pad_value: float = 1.0) -> Tensor:
    """(N, 1, 28, 28) images in [0, 1] → one (H, W) grid tensor on the CPU."""
    return make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, pad_value=pad_value)[0]


def grid_axis(n: int, span: str | float = "quantile", device: torch.device | str = "cpu") -> Tensor:
    """n values along one latent axis.

    ``span="quantile"`` spaces them by standard-normal quantiles (equal prior mass between neighbours, as in
    Kingma & Welling's figure 4); a number k spaces them evenly over [−k, +k] standard deviations.
    """
    if span == "quantile":
        p = torch.linspace(0.5 / n, 1 - 0.5 / n, n, device=device)  # avoid the infinite 0 and 1 quantiles
        return torch.distributions.Normal(0.0, 1.0).icdf(p)
    k = float(span)
    if not k > 0:
        raise ValueError(f"span must be 'quantile' or a positive number of standard deviations, got {span!r}")
    return torch.linspace(-k, k, n, device=device)


def check_dims(dims: tuple[int, int], latent_dim: int) -> tuple[int, int]:
    """Two different latent dimensions in [0, latent_dim), or a ValueError saying so."""
    i, j = dims
    if not (0 <= i < latent_dim and 0 <= j < latent_dim) or i == j:
        raise ValueError(f"dims must be two different latent dimensions in [0, {latent_dim - 1}], got {dims}")
    return i, j


@torch.no_grad()
def latent_grid(
    model: VAE,
    n: int = 15,
    dims: tuple[int, int] = (0, 1),
    span: str | float = "quantile",
    base: Tensor | Sequence[float] | None = None,
) -> Tensor:
    """Decode an n×n sweep over two latent dimensions, the others held at ``base`` (default 0).

    Returns images (n*n, 1, 28, 28), row-major: rows sweep ``dims[1]`` (top = high), columns ``dims[0]``.
    """
    d = model.latent_dim
    i, j = check_dims(dims, d)
    if not 1 <= n <= 100:
        raise ValueError(f"grid size must be between 1 and 100, got {n}")
    z0 = torch.zeros(d) if base is None else torch.as_tensor(base, dtype=torch.float32).flatten().cpu()
    if z0.numel() != d:
        raise ValueError(f"base code must have {d} values, got {z0.numel()}")
    axis = grid_axis(n, span)
    z = z0.repeat(n * n, 1)
    z[:, i] = axis.repeat(n)  # columns
    z[:, j] = axis.flip(0).repeat_interleave(n)  # rows, top = high
    return model.decode(z.to(model.device))


def _figure_from_grid(grid: Tensor, title: str | None, size: float) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(size, size * grid.shape[0] / grid.shape[1]))
    ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _save(fig: plt.Figure, path: str | os.PathLike | None) -> plt.Figure:
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig


@torch.no_grad()
def evaluate_model(
    model: VAE, data: Tensor, n: int = 10, path: str | os.PathLike | None = None, title: str | None = None
) -> plt.Figure:
    """Originals (top row) above their deterministic reconstructions (bottom row), for the first n images.

    ``data`` is a batch of images in any accepted shape, uint8 in [0, 255] or float in [0, 1].
    """
    x = data[:n]
    x = to_unit(x).reshape(-1, 1, 28, 28)
    rec = model.reconstruct(x.to(model.device)).cpu()
    grid = image_grid(torch.cat([x, rec]), nrow=len(x))
    return _save(_figure_from_grid(grid, title or "originals (top) and reconstructions (bottom)", 1.0 * len(x)), path)


@torch.no_grad()
def plot_latent_images(
    model: VAE,
    n: int = 15,
    dims: tuple[int, int] = (0, 1),
    span: str | float = "quantile",
    base: Tensor | Sequence[float] | None = None,
    path: str | os.PathLike | None = None,
) -> plt.Figure:
    """Figure of :func:`latent_grid`: an n×n decoded sweep over latent ``dims``, others fixed at ``base`` or 0."""
    grid = image_grid(latent_grid(model, n, dims, span, base), nrow=n)
    return _save(_figure_from_grid(grid, f"latent sweep over z{dims[0]} (→) and z{dims[1]} (↑)", 8.0), path)


@torch.no_grad()
def plot_samples(model: VAE, n: int = 64, seed: int = 0, path: str | os.PathLike | None = None) -> plt.Figure:
    """n samples from the prior, decoded."""
    images = model.sample(n, generator=torch.Generator().manual_seed(seed))
    grid = image_grid(images, nrow=int(n**0.5 + 0.5))
    return _save(_figure_from_grid(grid, "samples from the prior", 6.0), path)
