"""What the Gradio app shows, as plain functions of tensors and arrays: scores, reconstructions, grids, paths.

The app only wires these to widgets; the tests and the benchmarks call them directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from .hub import WeightsError
from .model import VAE
from .viz import grid_axis, image_grid, latent_grid

VARIANTS = ("sgvb", "kl_wo_e")
TITLES = {"sgvb": "SGVB (sampled KL)", "kl_wo_e": "KL w/o E (closed-form KL)"}
SCORE_SAMPLES = 64  # reparameterized draws averaged for the reconstruction term shown to the user


class Score(NamedTuple):
    """One digit under one model, in nats: nelbo = rec + kl."""

    nelbo: float
    rec: float
    kl: float
    mu: list[float]


def load_models(sources: Mapping[str, str | os.PathLike], local_files_only: bool = False) -> dict[str, VAE]:
    """Load each variant from a ``save_pretrained`` folder or a Hub repo id; all must share one latent size."""
    models = {name: VAE.from_pretrained(src, local_files_only=local_files_only).eval() for name, src in sources.items()}
    dims = {name: m.latent_dim for name, m in models.items()}
    if len(set(dims.values())) > 1:
        raise WeightsError(f"the variants must share one latent size to be compared, got {dims}")
    return models


@torch.no_grad()
def score(model: VAE, x: Tensor, samples: int = SCORE_SAMPLES, seed: int = 0) -> Score:
    """nELBO of one digit ``x`` (1, 28, 28): the reconstruction term averaged over ``samples`` draws of z (with a
    fixed seed, so a digit always gets the same numbers) plus the exact KL (the quantity both regularizers
    estimate during training)."""
    terms = model.loss(x.reshape(1, -1).expand(samples, -1), "kl_wo_e", torch.Generator().manual_seed(seed))
    rec, kl = float(terms.rec.mean()), float(terms.kl[0])
    mu = model.encode(x.reshape(1, -1))[0][0]
    return Score(rec + kl, rec, kl, [round(float(v), 2) for v in mu])


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


def parse_span(span: str | float) -> str | float:
    """``"quantile"`` or a positive number k (the range ±k σ)."""
    if span == "quantile":
        return span
    try:
        k = float(span)
    except (TypeError, ValueError):
        raise ValueError(f"the range must be 'quantile' or a number of standard deviations, got {span!r}") from None
    grid_axis(2, k)  # validates k > 0 with the library's message
    return k


@torch.no_grad()
def decode_grid(
    model: VAE, n: int, dims: tuple[int, int], span: str | float = "quantile", base: Sequence[float] | None = None
) -> np.ndarray:
    """An n×n decoded sweep over two latent dimensions (others fixed at ``base``), as a uint8 image."""
    if not 5 <= n <= 25:
        raise ValueError(f"the grid size must be between 5 and 25, got {n}")
    return grid_to_uint8(latent_grid(model, n, dims, parse_span(span), base), nrow=n)


@torch.no_grad()
def sample_grid(model: VAE, n: int, seed: int) -> np.ndarray:
    """n×n samples from the prior, decoded, with a reproducible seed, as a uint8 image."""
    if not 1 <= n <= 25:
        raise ValueError(f"the grid size must be between 1 and 25, got {n}")
    return grid_to_uint8(model.sample(n * n, torch.Generator().manual_seed(int(seed))), nrow=n)


@torch.no_grad()
def interpolate(model: VAE, xa: Tensor, xb: Tensor, steps: int) -> Tensor:
    """Decode the straight path from μ(xa) to μ(xb) in ``steps`` points (ends included): (steps, 1, 28, 28)."""
    if not 2 <= steps <= 50:
        raise ValueError(f"the number of steps must be between 2 and 50, got {steps}")
    mu = model.encode(torch.stack([xa.reshape(-1), xb.reshape(-1)]).to(model.device))[0]
    t = torch.linspace(0, 1, steps, device=mu.device)[:, None]
    return model.decode((1 - t) * mu[0] + t * mu[1])
