"""The work behind each endpoint: plain functions of raw request values that return the HTML the page shows.

No Gradio here. The page (:mod:`webapp.ui`) wires these with ``preprocess=False``, so each handler receives the
JSON values exactly as a client sent them and checks them itself: a bad value gets an :class:`InputError` whose
message names the field and the fix. Images come back inline (PNG data URLs), so a request writes no file.
"""

from __future__ import annotations

import base64
import binascii
import html
import io
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from vae_hub.model import VAE
from vae_hub.preprocess import MAX_FILE_BYTES, InputError, to_mnist
from vae_hub.viz import grid_axis, image_grid, interpolate, latent_grid

from . import latent_map
from .gate import UPLOAD_PREFIX, shown

ESTIMATORS = {"sgvb": "SGVB", "kl_wo_e": "KL w/o E"}
SCORE_SAMPLES = 64  # reparameterized draws averaged for the reconstruction term shown to the user
MAX_DATA_URL = 512 * 2**10  # characters: the 280×280 canvas's PNG is at most ~420 KB in base64; files are uploaded
DATA_URL = re.compile(r"data:image/(png|jpeg|webp|gif|bmp);base64,")
SEND_IMAGE = "send a data URL (data:image/png;base64,…) or the reference that POST /gradio_api/upload returned"


def load_models(sources: Mapping[str, str | os.PathLike], local_files_only: bool = False) -> dict[str, VAE]:
    """Each named model from a ``save_pretrained`` folder or a Hub repo id (raises :class:`vae_hub.WeightsError`)."""
    return {name: VAE.from_pretrained(src, local_files_only=local_files_only) for name, src in sources.items()}


def integer(value: Any, field: str, lo: int, hi: int, example: int) -> int:
    """``value`` as an int in [lo, hi] (a float with no fraction is accepted: sliders send 15.0)."""
    whole = int(value) if isinstance(value, float) and value.is_integer() else value
    if isinstance(whole, bool) or not isinstance(whole, int) or not lo <= whole <= hi:
        got = shown(value)
        raise InputError(f"{field} must be a whole number from {lo} to {hi} (got {got}); send e.g. {example}.")
    return whole


def number(value: Any, field: str, lo: float, hi: float, example: float) -> float:
    """``value`` as a finite float in [lo, hi]."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and lo <= value <= hi
    if not ok:
        raise InputError(f"{field} must be a number from {lo:g} to {hi:g} (got {shown(value)}); send e.g. {example}.")
    return float(value)


def choice(value: Any, field: str, options: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in options:
        raise InputError(f"{field} must be one of {', '.join(map(repr, options))} (got {shown(value)}).")
    return value


def image_source(value: Any, field: str, uploads: Callable[[str], Path | None]) -> bytes:
    """The bytes of an image sent as a data URL or as an upload reference, strictly checked before any decoding."""
    if value is None or value == "":
        raise InputError(f"{field} is missing: draw, upload or pick a digit ({SEND_IMAGE}).")
    if not isinstance(value, str):
        raise InputError(f"{field} must be a string: {SEND_IMAGE}.")
    if value.startswith(UPLOAD_PREFIX):
        path = uploads(value)
        try:
            if path is None:
                raise FileNotFoundError
            with open(path, "rb") as f:
                return f.read(MAX_FILE_BYTES + 1)  # to_mnist names the limit when this is over it
        except OSError:
            # One message whether the reference never existed or has expired: no oracle, no path.
            raise InputError(f"{field} names no current upload (they expire): upload the picture again.") from None
    if not DATA_URL.match(value):
        raise InputError(f"{field} must be a PNG, JPEG, WebP, GIF or BMP image: {SEND_IMAGE}.")
    if len(value) > MAX_DATA_URL:
        raise InputError(
            f"{field} is {len(value) // 2**10} KB as a data URL; the limit is {MAX_DATA_URL // 2**10} KB: "
            "upload a larger picture as a file."
        )
    try:
        return base64.b64decode(value[value.index(",") + 1 :], validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{field}'s data URL is not valid base64: encode the file's bytes with base64.") from None


# --- HTML ---------------------------------------------------------------------------------------------------


def png(image: Tensor | np.ndarray) -> str:
    """A 2-D image in [0, 1] (or uint8, or RGB uint8) as a PNG data URL."""
    a = image.detach().cpu().numpy() if isinstance(image, Tensor) else np.asarray(image)
    a = np.squeeze(a)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure(image: Tensor | np.ndarray, caption: str, cls: str = "digit", model: str = "") -> str:
    """One image with its caption above it (never over it), crisp pixels at any size."""
    attr = f' data-model="{html.escape(model)}"' if model else ""
    return (
        f'<figure class="{cls}"{attr}><figcaption>{html.escape(caption)}</figcaption>'
        f'<img src="{png(image)}" alt="{html.escape(caption)}"></figure>'
    )


def signed(v: float) -> str:
    return f"{v:+.2f}".replace("-", "−")


def ticks(values: Tensor, n: int, axis: str) -> str:
    """Labels at the cells' centres of a make_grid image (30 px per cell, 2 px border); every k-th when crowded."""
    every = 1 if n <= 9 else 2 if n <= 17 else 4
    side = "left" if axis == "x" else "top"
    spans = [
        f'<span style="{side}:{(2 + 30 * i + 14) / (30 * n + 2) * 100:.2f}%">{signed(float(v))}</span>'
        for i, v in enumerate(values)
        if i % every == 0 or i == n - 1
    ]
    return f'<div class="{axis}ticks">{"".join(spans)}</div>'


def grid_html(images: Tensor, n: int, caption: str, axes: tuple[str, Tensor, str, Tensor] | None = None) -> str:
    """An n×n grid of digits (one image, white separators), its caption above, and its axes' coordinates."""
    img = f'<img class="grid" src="{png(image_grid(images, nrow=n))}" alt="{html.escape(caption)}">'
    if axes is None:
        return f'<div class="gridbox"><p class="caption">{html.escape(caption)}</p>{img}</div>'
    x_name, x_values, y_name, y_values = axes
    return (
        f'<div class="gridbox"><p class="caption">{html.escape(caption)}</p><div class="axes">'
        f'<span class="yname">{y_name} ↑</span>{ticks(y_values, n, "y")}<div class="plot">{img}'
        f'{ticks(x_values, n, "x")}</div></div><p class="xname">{x_name} →</p></div>'
    )


@torch.no_grad()
def score(model: VAE, x: Tensor, samples: int = SCORE_SAMPLES, seed: int = 0) -> tuple[float, float, float, Tensor]:
    """nELBO, reconstruction term and KL of one digit in nats, and its μ. The reconstruction term is averaged over
    ``samples`` draws of z with a fixed seed (a digit always gets the same numbers); the KL is the exact one, the
    quantity both regularizers estimate in training."""
    terms = model.loss(x.reshape(1, -1).expand(samples, -1), "kl_wo_e", torch.Generator().manual_seed(seed))
    rec, kl = float(terms.rec.mean()), float(terms.kl[0])
    return rec + kl, rec, kl, model.encode(x)[0][0]


# --- the handlers -------------------------------------------------------------------------------------------


class Handlers:
    """The endpoints over named models (any latent sizes), their titles and latent maps.

    ``uploads`` turns an upload reference into its file (None when unknown or expired): :class:`webapp.gate.Uploads`.
    """

    def __init__(
        self,
        models: Mapping[str, VAE],
        titles: Mapping[str, str],
        maps: Mapping[str, latent_map.LatentMap],
        uploads: Callable[[str], Path | None] = lambda ref: None,
    ) -> None:
        self.models, self.titles, self.maps, self.uploads = dict(models), dict(titles), dict(maps), uploads
        self.max_latent_dim = max(m.latent_dim for m in self.models.values())
        self._plots: dict[tuple[str, int, int], tuple[str, dict]] = {}  # rendered scatter plots, by model and axes

    def _model(self, value: Any) -> tuple[str, VAE]:
        name = choice(value, "Model", list(self.models))
        return name, self.models[name]

    def _dims(self, model: VAE, x: Any, y: Any, names: tuple[str, str] = ("Dimension →", "Dimension ↑")) -> tuple:
        d = model.latent_dim
        dims = tuple(integer(v, name, 0, d - 1, i) for i, (v, name) in enumerate(zip((x, y), names)))
        if dims[0] == dims[1]:
            raise InputError(f"{names[0]} and {names[1]} are both z{dims[0]}: choose two different dimensions.")
        return dims

    def _base(self, model: VAE, digit: np.ndarray | None) -> list[float]:
        """The code the other dimensions are held at: the current digit's μ, else 0."""
        if digit is None:
            return [0.0] * model.latent_dim
        return [float(v) for v in model.encode(torch.as_tensor(digit, dtype=torch.float32))[0][0]]

    def digit(self, value: Any, field: str = "Image") -> Tensor:
        """The 28×28 digit (1, 28, 28) of an image value (see :func:`image_source`)."""
        data = image_source(value, field, self.uploads)
        try:
            return to_mnist(data)
        except InputError as e:
            raise InputError(f"{field}: {e}") from None

    def reconstruct(self, image: Any) -> tuple[str, np.ndarray]:
        """An image → the input as the models see it, each model's reconstruction, the scores; and the digit."""
        x = self.digit(image)
        figures = [figure(x[0], "Input, 28×28")]
        rows = []
        for name, model in self.models.items():
            figures.append(figure(model.reconstruct(x)[0, 0], self.titles[name], "digit rec", name))
            nelbo, rec, kl, mu = score(model, x)
            rows.append(
                f"<tr><td>{html.escape(self.titles[name])}</td><td>{nelbo:.2f}</td><td>{rec:.2f}</td><td>{kl:.2f}</td>"
                f'</tr><tr><td class="mu" colspan="4">μ = ({", ".join(signed(float(v)) for v in mu)})</td></tr>'
            )
        table = (
            '<table class="scores"><tr><th>model</th><th>nELBO</th><th>reconstruction</th><th>KL</th></tr>'
            f"{''.join(rows)}</table>"
        )
        return f'<div class="digits">{"".join(figures)}</div>{table}', x[0].numpy()

    def grid(self, model: Any, dim_x: Any, dim_y: Any, span: Any, k: Any, n: Any, *z: Any) -> str:
        """The decoded n×n sweep over two dimensions; ``span`` "quantile" or "sigma" (then ±k σ); the other
        dimensions held at ``z`` (a 2-D model's grid is its whole latent space)."""
        name, vae = self._model(model)
        span = choice(span, "Range", ("quantile", "sigma"))
        k = number(k, "k (for ± k σ)", 0.5, 4, 2)
        n = integer(n, "Grid size", 5, 25, 15)
        base = [number(v, f"z{i} (when not swept)", -3, 3, 0) for i, v in enumerate(z)]
        dims = self._dims(vae, dim_x, dim_y, ("Sweep dimension →", "Sweep dimension ↑"))
        spacing = "quantile" if span == "quantile" else k
        base = (base + [0.0] * vae.latent_dim)[: vae.latent_dim]
        axis = grid_axis(n, spacing)
        swept = "Gaussian quantiles" if span == "quantile" else f"±{k:g} σ"
        held = "" if vae.latent_dim == 2 else f"; other dimensions at ({', '.join(signed(v) for v in base)})"
        caption = f"{self.titles[name]}: decoded over z{dims[0]} and z{dims[1]} ({swept}{held})"
        images = latent_grid(vae, n, dims, spacing, base)
        return grid_html(images, n, caption, (f"z{dims[0]}", axis, f"z{dims[1]}", axis.flip(0)))

    def samples(self, model: Any, n: Any, seed: Any) -> str:
        """n×n draws from the prior, decoded, for a reproducible seed."""
        name, vae = self._model(model)
        n = integer(n, "Grid size", 5, 25, 15)
        seed = integer(seed, "Seed", 0, 2**32 - 1, 0)
        images = vae.sample(n * n, torch.Generator().manual_seed(seed))
        caption = f"Random samples: {n}×{n} draws from the prior N(0, I), decoded by {self.titles[name]} (seed {seed})"
        return grid_html(images, n, caption)

    def digit_code(self, model: Any, digit: np.ndarray | None) -> list[float]:
        """The grid's sliders set to the current digit's μ (clamped to ±3; zeros beyond the model's size)."""
        _, vae = self._model(model)
        if digit is None:
            raise InputError("There is no digit yet: draw, upload or pick one in the Reconstruct tab first.")
        mu = [round(min(3.0, max(-3.0, v)), 2) for v in self._base(vae, digit)]
        return mu + [0.0] * (self.max_latent_dim - len(mu))

    def interpolate(self, a: Any, b: Any, steps: Any) -> str:
        """Two images → their 28×28 digits and, per model, the decoded straight path between their codes."""
        steps = integer(steps, "Steps", 2, 25, 10)
        ends = [self.digit(a, "Digit A"), self.digit(b, "Digit B")]
        parts = [f'<div class="digits ends">{figure(ends[0][0], "A, 28×28")}{figure(ends[1][0], "B, 28×28")}</div>']
        for name, model in self.models.items():
            path = interpolate(model, *ends, steps)
            frames = "".join(f'<img src="{png(f)}" alt="step {i + 1}">' for i, f in enumerate(path))
            parts.append(
                f'<section class="strip" data-model="{name}"><p class="caption">{html.escape(self.titles[name])}: '
                f'A → B in {steps} steps</p><div class="frames" style="--n:{steps}">{frames}</div></section>'
            )
        return "".join(parts)

    def latent_map(self, model: Any, dim_x: Any, dim_y: Any, digit: np.ndarray | None) -> tuple[str, str]:
        """The test digits' posterior means over two dimensions, ★ at the current digit; and an empty decoded
        digit (the one decoded before belongs to the previous map)."""
        name, vae = self._model(model)
        dims = self._dims(vae, dim_x, dim_y)
        key = (name, *dims)
        if key not in self._plots:  # drawing a plot is slow (matplotlib): each is drawn once
            image, view = latent_map.render(self.maps[name], dims, self.titles[name])
            self._plots[key] = png(image), view
        url, view = self._plots[key]
        (x0, x1), (y0, y1) = view["xlim"], view["ylim"]
        star = ""
        if digit is not None:
            mu = self._base(vae, digit)
            u, v = (mu[dims[0]] - x0) / (x1 - x0), (y1 - mu[dims[1]]) / (y1 - y0)
            if 0 <= u <= 1 and 0 <= v <= 1:
                left, top = view["box"][0] + u * view["box"][2], view["box"][1] + v * view["box"][3]
                place = f"left:{left * 100:.2f}%;top:{top * 100:.2f}%"
                star = f'<span class="star" style="{place}" title="your digit">★</span>'
        data = " ".join(f'data-{k}="{" ".join(f"{x:.6g}" for x in view[k])}"' for k in ("box", "xlim", "ylim"))
        caption = html.escape(f"{self.titles[name]}: μ{dims[0]} →, μ{dims[1]} ↑ ({self.maps[name].source})")
        return (
            f'<div class="map" data-model="{name}" {data}><p class="caption">{caption}</p><div class="plot">'
            f'<img src="{url}" alt="{caption}">{star}<span class="marker" hidden></span></div></div>',
            "",
        )

    def decode_point(self, model: Any, dim_x: Any, dim_y: Any, point: Any, digit: np.ndarray | None) -> str:
        """Decode the latent point with z[dim_x], z[dim_y] = ``point``; other dimensions at the digit's μ, else 0."""
        name, vae = self._model(model)
        dims = self._dims(vae, dim_x, dim_y)
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise InputError(f"Point must be a list of two numbers [z{dims[0]}, z{dims[1]}] (got {shown(point)}).")
        z = self._base(vae, digit)
        for d, v, i in zip(dims, point, "xy"):
            z[d] = number(v, f"Point's {i} (z{d})", -10, 10, 0.5)
        held = ""
        if vae.latent_dim > 2:
            held = " (the other dimensions at your digit's μ)" if digit is not None else " (the other dimensions at 0)"
        coords = ", ".join(f"z{i} = {signed(v)}" for i, v in enumerate(z))
        return figure(vae.decode(torch.tensor([z]))[0, 0], f"Decoded at {coords}{held}", "digit decoded", name)
