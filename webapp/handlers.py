"""The app's event handlers: plain functions of images, arrays and numbers (no Gradio here).

The UI (:mod:`webapp.ui`) wires them to widgets; the tests and the benchmarks call them directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from vae_hub.hub import WeightsError
from vae_hub.latent import interpolate
from vae_hub.model import VAE
from vae_hub.preprocess import InputError, to_mnist
from vae_hub.viz import grid_axis, latent_grid

from . import latent_map
from .outputs import grid_to_uint8, to_uint8

VARIANTS = ("sgvb", "kl_wo_e")
TITLES = {"sgvb": "SGVB (sampled KL)", "kl_wo_e": "KL w/o E (closed-form KL)"}
SCORE_SAMPLES = 64  # reparameterized draws averaged for the reconstruction term shown to the user
VIEW_SCALE = 8  # 28×28 digits are shown at 224×224, nearest neighbour


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


class Handlers:
    """The app's event handlers, over a set of named models and their latent maps."""

    def __init__(self, models: Mapping[str, VAE], maps: Mapping[str, latent_map.LatentMap]) -> None:
        self.models, self.maps = dict(models), dict(maps)
        self.latent_dim = next(iter(self.models.values())).latent_dim

    def _model(self, variant: str) -> VAE:
        if variant not in self.models:
            raise InputError(f"unknown variant {variant!r}; choose one of {sorted(self.models)}")
        return self.models[variant]

    def reconstruct(self, image: Any) -> tuple:
        """Any image → (the 28×28 input, one reconstruction per variant, the scores table, the digit)."""
        if image is None:  # the input was cleared
            return (None, *([None] * len(self.models)), [], None)
        x = to_mnist(image)
        recs, rows = [], []
        for name, model in self.models.items():
            recs.append(to_uint8(model.reconstruct(x)[0, 0], VIEW_SCALE))
            s = score(model, x)
            rows.append([TITLES.get(name, name), round(s.nelbo, 2), round(s.rec, 2), round(s.kl, 2), str(s.mu)])
        return (to_uint8(x[0], VIEW_SCALE), *recs, rows, x[0].numpy())

    @torch.no_grad()
    def digit_code(self, variant: str, digit: np.ndarray | None) -> list[float]:
        """μ of the current digit under ``variant``, clamped to the sliders' ±3 (zeros if there is none yet)."""
        if digit is None:
            return [0.0] * self.latent_dim
        mu = self._model(variant).encode(torch.as_tensor(digit, dtype=torch.float32).reshape(1, -1))[0][0]
        return [round(float(v), 2) for v in mu.clamp(-3, 3)]

    def grid(self, variant: str, dim_x: int, dim_y: int, span: str, k: float, n: int, *z: float) -> np.ndarray:
        """The decoded n×n sweep over (dim_x, dim_y); ``span`` is "quantile" or "sigma" (then ±k σ)."""
        if span not in ("quantile", "sigma"):
            raise InputError(f"the range must be 'quantile' or 'sigma', got {span!r}")
        base = list(z) if z else None
        return decode_grid(
            self._model(variant), int(n), (int(dim_x), int(dim_y)), span if span == "quantile" else k, base
        )

    def samples(self, variant: str, n: int, seed: float) -> np.ndarray:
        """n×n draws from the prior, decoded, for a given seed."""
        return sample_grid(self._model(variant), int(n), int(seed))

    def interpolate(self, a: Any, b: Any, steps: int) -> tuple:
        """Two images → the decoded straight path between their codes, one strip per variant."""
        if a is None or b is None:
            raise InputError("Give two digits: upload, draw or pick one on each side.")
        xa, xb = to_mnist(a), to_mnist(b)
        strips = []
        for model in self.models.values():
            path = interpolate(model, xa, xb, int(steps))  # (steps, 1, 28, 28)
            strips.append(to_uint8(torch.cat(list(path[:, 0]), dim=1), 4))
        return tuple(strips)

    def latent_map(self, variant: str, dim_x: int, dim_y: int, digit: np.ndarray | None) -> np.ndarray:
        """The test digits' posterior means over (dim_x, dim_y) under ``variant``, the current digit marked."""
        self._model(variant)  # a clear message for an unknown variant
        current = None if digit is None else self.digit_code(variant, digit)
        return latent_map.render(self.maps[variant], (int(dim_x), int(dim_y)), current, TITLES.get(variant, variant))
