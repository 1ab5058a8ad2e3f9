"""The work behind each endpoint: plain functions of raw request values (JSON, as a client sent them; no Gradio)
that return the HTML the page shows. A bad value gets an :class:`InputError` whose message names the field and the
fix. Images come back inline (PNG data URLs), so a request writes no file.
"""

import base64
import binascii
import html
import io
import json
import os
import re
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from vae_hub.model import VAE
from vae_hub.preprocess import MAX_FILE_BYTES, InputError, to_mnist
from vae_hub.viz import image_grid, interpolate

from .gate import UPLOAD_PREFIX, shown

SCORE_SAMPLES = 64  # reparameterized draws averaged for the reconstruction term shown to the user
MAX_DATA_URL = 512 * 2**10  # characters: the 280×280 canvas's PNG is at most ~420 KB in base64; files are uploaded
DATA_URL = re.compile(r"data:image/(png|jpeg|webp|gif|bmp);base64,")
SEND_IMAGE = "send a data URL (data:image/png;base64,…) or the reference that POST /gradio_api/upload returned"
Lookup = Callable[[str], Path | None]  # an upload reference → its file, None when unknown or expired


def load_models(sources: Mapping[str, str | os.PathLike]) -> dict[str, VAE]:
    """Each named model from a ``save_pretrained`` folder or a Hub repo id (raises :class:`vae_hub.WeightsError`)."""
    return {name: VAE.from_pretrained(src) for name, src in sources.items()}


def integer(value: Any, field: str, lo: int, hi: int, example: int) -> int:
    """``value`` as an int in [lo, hi] (a float with no fraction is accepted: sliders send 15.0)."""
    whole = int(value) if isinstance(value, float) and value.is_integer() else value
    if isinstance(whole, bool) or not isinstance(whole, int) or not lo <= whole <= hi:
        raise InputError(f"{field} must be a whole number from {lo} to {hi} (got {shown(value)}); send e.g. {example}.")
    return whole


def image_source(value: Any, field: str, uploads: Lookup) -> bytes:
    """The bytes of an image sent as a data URL or as an upload reference, strictly checked before any decoding."""
    if value is None or value == "":
        raise InputError(f"{field} is missing: draw, upload or pick a digit ({SEND_IMAGE}).")
    if not isinstance(value, str):
        raise InputError(f"{field} must be a string: {SEND_IMAGE}.")
    if value.startswith(UPLOAD_PREFIX):
        if (path := uploads(value)) is not None:
            with suppress(OSError), open(path, "rb") as f:
                return f.read(MAX_FILE_BYTES + 1)  # to_mnist names the limit when this is over it
        # One message whether the reference never existed or has expired: no oracle, no path.
        raise InputError(f"{field} names no current upload (they expire): upload the picture again.")
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


def png(image: Tensor) -> str:
    """An image in [0, 1] (H×W, or 1×H×W) as a PNG data URL."""
    a = (np.clip(np.squeeze(image.detach().cpu().numpy()), 0, 1) * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure(image: Tensor, caption: str, cls: str = "digit", model: str = "", mu: Tensor | None = None) -> str:
    """One image with its caption above it (never over it), crisp pixels at any size; a reconstruction carries its
    model's name and the digit's code μ, for the page's latent map and grid."""
    attr = f' data-model="{html.escape(model)}"' if model else ""
    attr += f' data-mu="{json.dumps([round(float(v), 6) for v in mu])}"' if mu is not None else ""
    return (
        f'<figure class="{cls}"{attr}><figcaption>{html.escape(caption)}</figcaption>'
        f'<img src="{png(image)}" alt="{html.escape(caption)}"></figure>'
    )


@torch.no_grad()
def score(model: VAE, x: Tensor, samples: int = SCORE_SAMPLES, seed: int = 0) -> tuple[float, float, float, Tensor]:
    """nELBO, reconstruction term and KL of one digit in nats, and its μ. The reconstruction term is averaged over
    ``samples`` draws of z with a fixed seed (a digit always gets the same numbers); the KL is the exact one, the
    quantity both regularizers estimate in training."""
    terms = model.loss(x.reshape(1, -1).expand(samples, -1), "kl_wo_e", torch.Generator().manual_seed(seed))
    rec, kl = float(terms.rec.mean()), float(terms.kl[0])
    return rec + kl, rec, kl, model.encode(x)[0][0]


class Handlers:
    """The endpoints over named models (any latent sizes) and their titles; ``uploads``: a :class:`.gate.Uploads`."""

    def __init__(
        self, models: Mapping[str, VAE], titles: Mapping[str, str], uploads: Lookup = lambda ref: None
    ) -> None:
        self.models, self.titles, self.uploads = dict(models), dict(titles), uploads

    def digit(self, value: Any, field: str = "Image") -> Tensor:
        """The 28×28 digit (1, 28, 28) of an image value (see :func:`image_source`)."""
        data = image_source(value, field, self.uploads)
        try:
            return to_mnist(data)
        except InputError as e:
            raise InputError(f"{field}: {str(e)[:1].lower()}{str(e)[1:]}") from None

    def reconstruct(self, image: Any) -> str:
        """An image → the input as the models see it, each model's reconstruction (with μ), the scores."""
        x = self.digit(image)
        figures = [figure(x[0], "Input, 28×28")]
        rows = ["<tr><th>model</th><th>nELBO</th><th>reconstruction</th><th>KL</th></tr>"]
        for name, model in self.models.items():
            nelbo, rec, kl, mu = score(model, x)
            figures.append(figure(model.reconstruct(x)[0, 0], self.titles[name], "digit rec", name, mu))
            code = ", ".join(f"{v:+.2f}".replace("-", "−") for v in mu.tolist())
            rows.append(
                f"<tr><td>{html.escape(self.titles[name])}</td><td>{nelbo:.2f}</td><td>{rec:.2f}</td>"
                f'<td>{kl:.2f}</td></tr><tr><td class="mu" colspan="4">μ = ({code})</td></tr>'
            )
        return f'<div class="digits">{"".join(figures)}</div><table class="scores">{"".join(rows)}</table>'

    def samples(self, model: Any, n: Any, seed: Any) -> str:
        """n×n draws from the prior, decoded, for a reproducible seed."""
        if not isinstance(model, str) or model not in self.models:
            raise InputError(f"Model must be one of {', '.join(map(repr, self.models))} (got {shown(model)}).")
        n, seed = integer(n, "Grid size", 5, 25, 15), integer(seed, "Seed", 0, 2**32 - 1, 0)
        grid = png(image_grid(self.models[model].sample(n * n, torch.Generator().manual_seed(seed)), nrow=n))
        caption = html.escape(
            f"Random samples: {n}×{n} draws from the prior N(0, I), decoded by {self.titles[model]} (seed {seed})"
        )
        img = f'<img class="grid" src="{grid}" alt="{caption}">'
        return f'<div class="gridbox"><p class="caption">{caption}</p>{img}</div>'

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
