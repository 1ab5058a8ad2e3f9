"""The app's event handlers: plain functions of images, arrays and numbers (no Gradio here).

The UI (:mod:`webapp.ui`) wires them to widgets; the tests and the benchmarks call them directly.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from vae_hub.hub import BUNDLED
from vae_hub.latent import interpolate
from vae_hub.model import VAE
from vae_hub.preprocess import InputError, to_mnist
from vae_hub.viz import grid_axis, latent_grid

from . import latent_map
from .editor import EMPTY_SKETCH_MESSAGE, editor_image
from .outputs import grid_to_uint8, to_uint8

# The bundled models, the original 2-D pair first; a variant's name ends with its regularizer.
VARIANTS = BUNDLED
ESTIMATORS = {"sgvb": "SGVB (sampled KL)", "kl_wo_e": "KL w/o E (closed-form KL)"}
SCORE_SAMPLES = 64  # reparameterized draws averaged for the reconstruction term shown to the user
VIEW_SCALE = 8  # 28×28 digits are shown at 224×224, nearest neighbour
PNG_DATA_URL = "data:image/png;base64,"
MAX_DATA_URL = 2 * 2**20  # characters: the drawing canvas's PNG is a few KB; anything far larger is not from it


class Score(NamedTuple):
    """One digit under one model, in nats: nelbo = rec + kl."""

    nelbo: float
    rec: float
    kl: float
    mu: list[float]


def load_models(sources: Mapping[str, str | os.PathLike], local_files_only: bool = False) -> dict[str, VAE]:
    """Load each variant from a ``save_pretrained`` folder or a Hub repo id (any latent size)."""
    return {name: VAE.from_pretrained(src, local_files_only=local_files_only).eval() for name, src in sources.items()}


def title(variant: str, model: VAE) -> str:
    """What a person reads for a model: its latent size (from the weights) and its regularizer."""
    regularizer = ESTIMATORS.get(variant.rsplit("/", 1)[-1], variant)
    return f"{model.latent_dim}-D latent · {regularizer}"


def digit(value: Any) -> Tensor:
    """The 28×28 digit of an input as the app receives it: a file, or an editor's value (a dict)."""
    return to_mnist(editor_image(value) if isinstance(value, dict) else value)


def element_id(variant: str) -> str:
    """A variant's name as an HTML id fragment ("z4/sgvb" → "z4_sgvb")."""
    return variant.replace("/", "_")


@torch.no_grad()
def score(model: VAE, x: Tensor, samples: int = SCORE_SAMPLES, seed: int = 0) -> Score:
    """nELBO of one digit ``x`` (1, 28, 28): the reconstruction term averaged over ``samples`` draws of z (with a
    fixed seed, so a digit always gets the same numbers) plus the exact KL (the quantity both regularizers
    estimate during training)."""
    terms = model.loss(x.reshape(1, -1).expand(samples, -1), "kl_wo_e", torch.Generator().manual_seed(seed))
    rec, kl = float(terms.rec.mean()), float(terms.kl[0])
    mu = model.encode(x.reshape(1, -1))[0][0]
    return Score(rec + kl, rec, kl, [round(float(v), 2) for v in mu])


def drawing_bytes(url: Any) -> bytes:
    """The PNG bytes of a drawing sent as a data URL (``canvas.toDataURL("image/png")``), strictly checked.

    An empty value (a cleared canvas) gets the empty-sketch message; a canvas with nothing drawn, to_mnist's blank one.
    """
    if url is None or url == "":
        raise InputError(EMPTY_SKETCH_MESSAGE)
    if not isinstance(url, str) or not url.startswith(PNG_DATA_URL):
        raise InputError("The drawing must be a PNG data URL (data:image/png;base64,…).")
    if len(url) > MAX_DATA_URL:
        raise InputError(
            f"The drawing is {len(url) / 2**20:.1f} MB as a data URL; the limit is {MAX_DATA_URL // 2**20} MB."
        )
    try:
        return base64.b64decode(url[len(PNG_DATA_URL) :], validate=True)
    except (binascii.Error, ValueError):
        raise InputError("The drawing's data URL is not valid base64.") from None


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


def check_axes(model: VAE, dim_x: int, dim_y: int) -> tuple[int, int]:
    """Two different latent dimensions of ``model``, or a message in words."""
    dims = (int(dim_x), int(dim_y))
    if dims[0] == dims[1]:
        raise InputError(f"Choose two different dimensions for the two axes (both are z{dims[0]}).")
    if not all(0 <= d < model.latent_dim for d in dims):
        raise InputError(f"This model has {model.latent_dim} latent dimensions (z0 to z{model.latent_dim - 1}).")
    return dims


def pixel_to_latent(view: Mapping[str, Any], x: float, y: float) -> tuple[float, float]:
    """A pixel of a rendered latent map (from the top left, as a browser reports a click) → the latent coordinates
    under it, from the axes box and limits kept when the map was drawn (see :func:`webapp.latent_map.render`)."""
    x0, y0, w, h = view["box"]  # the axes in display pixels, origin at the bottom left
    (xmin, xmax), (ymin, ymax) = view["xlim"], view["ylim"]
    u, v = (x - x0) / w, ((view["height"] - y) - y0) / h
    return xmin + u * (xmax - xmin), ymin + v * (ymax - ymin)


class Handlers:
    """The app's event handlers, over a set of named models (any latent sizes) and their latent maps."""

    def __init__(self, models: Mapping[str, VAE], maps: Mapping[str, latent_map.LatentMap]) -> None:
        self.models, self.maps = dict(models), dict(maps)
        self.titles = {name: title(name, m) for name, m in self.models.items()}
        self.max_latent_dim = max(m.latent_dim for m in self.models.values())

    def _model(self, variant: str) -> VAE:
        if variant not in self.models:
            raise InputError(f"unknown model {variant!r}; choose one of {sorted(self.models)}")
        return self.models[variant]

    def scores(self, x: Tensor) -> list[list[str]]:
        """One row per model: title, nELBO, reconstruction, KL (fixed 2 decimals, nats) and μ (signed)."""
        rows = []
        for name, model in self.models.items():
            s = score(model, x)
            mu = " ".join(f"{v:+.2f}" for v in s.mu).replace("-", "−")
            rows.append([self.titles[name], f"{s.nelbo:.2f}", f"{s.rec:.2f}", f"{s.kl:.2f}", mu])
        return rows

    def reconstruct(self, image: Any) -> tuple:
        """Any image → (the 28×28 input, one reconstruction per model, the scores table, the digit)."""
        if image is None:  # the input was cleared
            return (None, *([None] * len(self.models)), [], None)
        x = digit(image)
        recs = [to_uint8(model.reconstruct(x)[0, 0], VIEW_SCALE) for model in self.models.values()]
        return (to_uint8(x[0], VIEW_SCALE), *recs, self.scores(x), x[0].numpy())

    def reconstruct_drawing(self, url: str | None) -> tuple:
        """:meth:`reconstruct` of a drawing sent as a PNG data URL (see :func:`drawing_bytes`)."""
        return self.reconstruct(drawing_bytes(url))

    @torch.no_grad()
    def code(self, variant: str, digit: np.ndarray) -> list[float]:
        """μ of a 28×28 digit under ``variant``."""
        mu = self._model(variant).encode(torch.as_tensor(digit, dtype=torch.float32).reshape(1, -1))[0][0]
        return [float(v) for v in mu]

    def digit_code(self, variant: str, digit: np.ndarray | None) -> list[float]:
        """The grid's sliders set to the current digit's μ under ``variant`` (clamped to their ±3; one value per
        slider, zeros beyond the model's latent size)."""
        if digit is None:
            raise InputError("There is no digit yet: upload or draw one in the Reconstruct tab first.")
        mu = [round(min(3.0, max(-3.0, v)), 2) for v in self.code(variant, digit)]
        return mu + [0.0] * (self.max_latent_dim - len(mu))

    def grid(self, variant: str, dim_x: int, dim_y: int, span: str, k: float, n: int, *z: float) -> np.ndarray:
        """The decoded n×n sweep over (dim_x, dim_y); ``span`` is "quantile" or "sigma" (then ±k σ). The other
        dimensions are held at ``z`` (extra values are ignored: a 2-D model's grid is its whole latent space)."""
        if span not in ("quantile", "sigma"):
            raise InputError(f"the range must be 'quantile' or 'sigma', got {span!r}")
        model = self._model(variant)
        dims = check_axes(model, dim_x, dim_y)
        base = ([float(v) for v in z] + [0.0] * model.latent_dim)[: model.latent_dim]
        return decode_grid(model, int(n), dims, span if span == "quantile" else k, base)

    def samples(self, variant: str, n: int, seed: float) -> np.ndarray:
        """n×n draws from the prior, decoded, for a given seed."""
        return sample_grid(self._model(variant), int(n), int(seed))

    def interpolate(self, a: Any, b: Any, steps: int) -> tuple:
        """Two images → the decoded straight path between their codes, one strip per model."""
        ends = []
        for side, image in (("A", a), ("B", b)):
            if image is None:
                raise InputError(f"Digit {side} is missing: upload, draw or pick one.")
            try:
                ends.append(digit(image))
            except InputError as e:
                raise InputError(f"Digit {side}: {e}") from None
        strips = []
        for model in self.models.values():
            path = interpolate(model, *ends, int(steps))  # (steps, 1, 28, 28)
            strips.append(to_uint8(torch.cat(list(path[:, 0]), dim=1), 4))
        return tuple(strips)

    def latent_map(self, variant: str, dim_x: int, dim_y: int, digit: np.ndarray | None) -> tuple:
        """The test digits' posterior means over (dim_x, dim_y) under ``variant``, the current digit marked; and
        the map's geometry, to turn a click into latent coordinates (:func:`pixel_to_latent`)."""
        model = self._model(variant)
        dims = check_axes(model, dim_x, dim_y)
        current = None if digit is None else self.code(variant, digit)
        image, view = latent_map.render(self.maps[variant], dims, current, self.titles[variant])
        return image, {**view, "variant": variant}

    @torch.no_grad()
    def decode_point(
        self, variant: str, dim_x: int, dim_y: int, zx: float, zy: float, digit: np.ndarray | None
    ) -> tuple[np.ndarray, str]:
        """Decode the latent point with z[dim_x] = zx and z[dim_y] = zy; any other dimensions are held at the
        current digit's μ (else 0). Returns the digit (224×224) and a line saying which point it is."""
        model = self._model(variant)
        dims = check_axes(model, dim_x, dim_y)
        z = self.code(variant, digit) if digit is not None else [0.0] * model.latent_dim
        z[dims[0]], z[dims[1]] = float(zx), float(zy)
        image = to_uint8(model.decode(torch.tensor([z]))[0, 0], VIEW_SCALE)
        point = ", ".join(f"z{i} = {v:+.2f}".replace("-", "−") for i, v in enumerate(z))
        held = ""
        if model.latent_dim > 2:
            held = " (the other dimensions at your digit's μ)" if digit is not None else " (the other dimensions at 0)"
        return image, f"Decoded at {point}{held}."

    def decode_click(self, view: Mapping[str, Any] | None, x: float, y: float, digit: np.ndarray | None) -> tuple:
        """A click at pixel (x, y) of the map described by ``view`` → :meth:`decode_point` there."""
        if not view:
            raise InputError("Open the latent map first.")
        zx, zy = pixel_to_latent(view, x, y)
        return self.decode_point(view["variant"], *view["dims"], zx, zy, digit)
