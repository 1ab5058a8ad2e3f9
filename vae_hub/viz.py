"""The latent space and its figures: grids, interpolations, reconstructions, samples and the posterior means.

Grids use ``torchvision``'s ``make_grid``. Figures are built with matplotlib's ``Figure`` API, which needs no
backend (no ``pyplot``, no ``matplotlib.use``), so importing this module changes no global state.
"""

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from .model import VAE


def image_grid(images: Tensor, nrow: int, padding: int = 2, pad_value: float = 1.0) -> Tensor:
    """(N, 1, 28, 28) images in [0, 1] → one (H, W) grid tensor on the CPU."""
    from torchvision.utils import make_grid  # imported here: importing torchvision sets torch's inductor env

    return make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, pad_value=pad_value)[0]


def grid_axis(n: int, span: str | float = "quantile", device: torch.device | str = "cpu") -> Tensor:
    """n values along one latent axis: by standard-normal quantiles for ``span="quantile"`` (equal prior mass
    between neighbours, as in Kingma & Welling's figure 4), else evenly over [−span, +span] standard deviations."""
    if span == "quantile":  # at the middle of n equal slices of mass: the 0 and 1 quantiles are infinite
        return torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.5 / n, 1 - 0.5 / n, n, device=device))
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
    """Decode an n×n sweep over two latent dimensions, the others held at ``base`` (default 0): images
    (n*n, 1, 28, 28), row-major, the rows sweeping ``dims[1]`` (top = high) and the columns ``dims[0]``."""
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


@torch.no_grad()
def interpolate(model: VAE, a: Any, b: Any, steps: int) -> Tensor:
    """Decode the straight path from μ(a) to μ(b) in ``steps`` points, ends included: (steps, 1, 28, 28)."""
    if not 2 <= steps <= 50:
        raise ValueError(f"the number of steps must be between 2 and 50, got {steps}")
    mu = model.encode(torch.cat([model.pixels(a), model.pixels(b)]))[0]
    t = torch.linspace(0, 1, steps, device=mu.device)[:, None]
    return model.decode((1 - t) * mu[0] + t * mu[1])


def _figure_from_grid(grid: Tensor, title: str, size: float) -> Figure:
    fig = Figure(figsize=(size, size * grid.shape[0] / grid.shape[1]))
    ax = fig.subplots()
    ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title)
    fig.tight_layout()
    return fig


def _save(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig


@torch.no_grad()
def evaluate_model(
    model: VAE, data: Tensor, n: int = 10, path: str | os.PathLike | None = None, title: str | None = None
) -> Figure:
    """The original API's figure: the first n images of ``data`` (any accepted shape, uint8 in [0, 255] or float in
    [0, 1]) in the top row, above their reconstructions, which decode the posterior mean μ (deterministic)."""
    x = model.pixels(data[:n]).cpu().reshape(-1, 1, 28, 28)
    grid = image_grid(torch.cat([x, model.reconstruct(x).cpu()]), nrow=len(x))
    return _save(_figure_from_grid(grid, title or "originals (top) and reconstructions (bottom)", 1.0 * len(x)), path)


@torch.no_grad()
def plot_latent_images(
    model: VAE,
    n: int = 20,
    dims: tuple[int, int] = (0, 1),
    span: str | float = 2.0,
    base: Tensor | Sequence[float] | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """The original API's figure of :func:`latent_grid` (``dims``, ``span`` and ``base`` as there). The default is
    its original view, 20×20 over z ∈ [−2, 2]²: for a 2-D model, the whole latent space (its decoded manifold)."""
    grid = image_grid(latent_grid(model, n, dims, span, base), nrow=n)
    whole = model.latent_dim == 2
    title = "the decoded latent space" if whole else f"latent sweep over z{dims[0]} (→) and z{dims[1]} (↑)"
    return _save(_figure_from_grid(grid, title, 8.0), path)


def plot_latent_scatter(
    mu: Tensor | np.ndarray,
    labels: Tensor | np.ndarray,
    dims: tuple[int, int] = (0, 1),
    title: str = "posterior means of test digits",
    marked: Sequence[float] | None = None,
    note: str = "",
    path: str | os.PathLike | None = None,
) -> Figure:
    """Posterior means μ (N, D) over two latent dimensions, coloured by class; ``marked`` (a code) is a star."""
    mu, labels = np.asarray(mu, dtype=np.float32), np.asarray(labels)
    i, j = check_dims(dims, mu.shape[1])
    fig = Figure(figsize=(6.4, 5.6), dpi=100)
    ax = fig.subplots()
    sc = ax.scatter(mu[:, i], mu[:, j], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5, s=4, alpha=0.7)
    fig.colorbar(sc, ax=ax, ticks=range(10), label="digit")
    if marked is not None:
        star = {"marker": "*", "s": 500, "c": "yellow", "edgecolors": "black", "linewidths": 1.5, "zorder": 5}
        ax.scatter([marked[i]], [marked[j]], label="your digit", **star)
        ax.legend(loc="upper right")
    ax.set(xlabel=f"μ{i}", ylabel=f"μ{j}", title=title)
    if note:
        ax.text(0.01, 0.01, note, transform=ax.transAxes, fontsize=8, color="0.3")
    fig.tight_layout()
    return _save(fig, path)


@torch.no_grad()
def plot_samples(model: VAE, n: int = 64, seed: int = 0, path: str | os.PathLike | None = None) -> Figure:
    """n samples from the prior, decoded."""
    grid = image_grid(model.sample(n, generator=torch.Generator().manual_seed(seed)), nrow=int(n**0.5 + 0.5))
    return _save(_figure_from_grid(grid, "samples from the prior", 6.0), path)
