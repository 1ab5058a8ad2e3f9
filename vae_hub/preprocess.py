"""Turn people's digits (photos, scans, drawings, uploads of any size) into MNIST-style 28×28 inputs.

MNIST digits are light on black, cropped to their ink, fitted into 20×20 keeping the aspect ratio and placed in
28×28 with the centre of mass at the centre. :func:`to_mnist` finds the ink first (the alpha channel of a
drawing on a transparent canvas; otherwise the luminance, inverted when the paper is light, minus a smooth
estimate of the paper so that grey, noisy or unevenly lit backgrounds drop out), then applies that recipe.
Anything it cannot use raises :class:`InputError` with a message meant for the person who sent it.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

MAX_PIXELS = 50_000_000  # refuse larger images before decoding them (a 20000×20000 PNG, a decompression bomb)
MAX_FILE_BYTES = 50 * 1024 * 1024
MIN_SIDE = 8  # below this an image cannot hold a recognisable digit
MAX_ASPECT = 20
WORK_SIDE = 280  # ink is found on a copy at most this large: 10× the output, and fast
BLANK_CONTRAST = 0.08  # ink must differ from the paper by 8% of the full range
NOISE_FLOOR = 0.25  # paper grain and JPEG ringing stay below a quarter of the ink's contrast
BOX, CANVAS = 20, 28

BLANK_MESSAGE = "No digit found: the image is blank or almost uniform. Draw a digit first, or upload a clearer picture."
EMPTY_SKETCH_MESSAGE = "The sketchpad is empty: draw a digit first."


class InputError(ValueError):
    """An input that cannot be turned into a digit; the message says why, in words meant for the user."""


def to_mnist(image: Any) -> Tensor:
    """A digit as MNIST shows it: a float tensor (1, 28, 28) in [0, 1], light ink on black.

    ``image`` is a PIL image, a numpy array or tensor (H×W, H×W×1…4; uint8, uint16, int, bool or float), a file
    path or bytes, or a Gradio Sketchpad/ImageEditor value (a dict with ``background``, ``layers``, ``composite``).
    Raises :class:`InputError` for anything unusable (blank, unreadable, too large or too small).
    """
    return torch.from_numpy(mnist_recipe(find_ink(to_float_array(image)))).unsqueeze(0)


# --- decoding --------------------------------------------------------------------------------------------


def open_image(source: str | os.PathLike | bytes) -> Image.Image:
    """Open and fully decode an image file safely: size-capped before decoding, first frame, EXIF orientation."""
    if isinstance(source, (bytes, bytearray)):
        name, size, fp = "the upload", len(source), io.BytesIO(source)
    else:
        name = os.path.basename(os.fspath(source)) or os.fspath(source)
        if not os.path.isfile(source):
            raise InputError(f"File not found: {os.fspath(source)}")
        size, fp = os.path.getsize(source), source
    if size == 0:
        raise InputError(f"{name} is empty (0 bytes): upload a PNG, JPEG or WebP image.")
    if size > MAX_FILE_BYTES:
        raise InputError(f"{name} is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own cap below is stricter
            im = Image.open(fp)  # reads the header only
    except UnidentifiedImageError:
        raise InputError(f"{name} is not an image that can be read: upload a PNG, JPEG, WebP, GIF or BMP.") from None
    except Image.DecompressionBombError:
        raise InputError(f"{name} declares an enormous size; the limit is {MAX_PIXELS // 10**6} megapixels.") from None
    except (OSError, SyntaxError, ValueError, struct.error) as e:
        raise InputError(f"{name} could not be read as an image ({e}).") from None
    _check_size(*im.size[::-1])
    try:
        if im.format == "JPEG" and max(im.size) > 2 * WORK_SIDE:
            # Let the JPEG decoder scale down by 2, 4 or 8 while decoding (no smaller than the working size):
            # a 12-megapixel phone photo then decodes in a few milliseconds instead of a hundred.
            s = WORK_SIDE / max(im.size)
            im.draft(im.mode, (int(im.width * s) + 1, int(im.height * s) + 1))
        im.seek(0)  # an animated GIF or WebP: its first frame
        im = ImageOps.exif_transpose(im)  # a phone photo: apply its orientation tag (this also decodes)
        im.load()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError) as e:
        raise InputError(f"{name} is truncated or corrupt ({e}); save it again and retry.") from None
    return im


def _check_size(h: int, w: int) -> None:
    if h * w > MAX_PIXELS:
        raise InputError(
            f"The image is {w}×{h} pixels ({h * w / 1e6:.0f} megapixels); the limit is {MAX_PIXELS // 10**6}. "
            "Shrink it first: a digit needs far fewer pixels."
        )
    if min(h, w) < MIN_SIDE:
        raise InputError(
            f"The image is {w}×{h} pixels: too small to hold a digit (each side needs at least {MIN_SIDE})."
        )
    if max(h, w) > MAX_ASPECT * min(h, w):
        raise InputError(f"The image is {w}×{h} pixels: too long and thin to hold one digit.")


def _pil_to_array(im: Image.Image) -> np.ndarray:
    _check_size(im.height, im.width)
    k = max(im.size) // WORK_SIDE
    if k >= 2 and im.mode in ("L", "LA", "RGB", "RGBA"):
        im = im.reduce(k)  # box-average large 8-bit images before converting them to floats; keeps ink mass
    if im.mode.startswith("I;16"):
        return _array_to_float(np.asarray(im).astype(np.uint16))
    if im.mode in ("I", "F", "L", "LA", "RGB", "RGBA"):
        return _array_to_float(np.asarray(im))
    has_alpha = "A" in im.getbands() or "transparency" in im.info
    try:
        return _array_to_float(np.asarray(im.convert("RGBA" if has_alpha else "RGB")))  # P, 1, CMYK, YCbCr, …
    except (ValueError, OSError) as e:
        raise InputError(f"Images in colour mode {im.mode!r} are not supported ({e}); save it as RGB.") from None


def _array_to_float(a: np.ndarray) -> np.ndarray:
    """Any numeric image array → float32 H×W×C (C = 1…4) in [0, 1]."""
    if a.dtype.kind not in "buif":
        raise InputError(f"Unsupported array type {a.dtype}: use uint8 values 0–255 or floats in [0, 1].")
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or not 1 <= a.shape[2] <= 4:
        raise InputError(f"Expected an image array of shape H×W, H×W×3 or H×W×4, got shape {tuple(a.shape)}.")
    _check_size(a.shape[0], a.shape[1])
    if a.dtype.kind == "b":
        return a.astype(np.float32)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise InputError("The image array contains NaN or infinite values.")
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0 and hi <= 1:
        scale, lo = 1.0, 0.0
    elif lo >= 0 and hi <= 255:
        scale, lo = 255.0, 0.0
    elif lo >= 0 and hi <= 65535 and a.dtype.kind in "ui":
        scale, lo = 65535.0, 0.0
    else:  # an unusual range (signed, huge): stretch it to [0, 1]
        scale = hi - lo if hi > lo else 1.0
    return ((a - lo) / scale).clip(0, 1).astype(np.float32)


def _editor_to_array(value: dict) -> np.ndarray:
    """A Sketchpad/ImageEditor value: the composite if present, else the layers over the background."""
    if "path" in value and not {"background", "layers", "composite"} & value.keys():
        return to_float_array(value["path"])  # a Gradio FileData dict
    if value.get("composite") is not None:
        return to_float_array(value["composite"])
    layers = [x for x in value.get("layers") or [] if x is not None]
    background = value.get("background")
    if not layers:
        if background is None:
            raise InputError(EMPTY_SKETCH_MESSAGE)
        return to_float_array(background)
    rgba = [_as_rgba(to_float_array(x)) for x in ([background] if background is not None else []) + layers]
    out = rgba[0]
    for layer in rgba[1:]:
        if layer.shape != out.shape:
            raise InputError(f"The sketch's layers differ in size ({layer.shape[:2]} vs {out.shape[:2]}).")
        alpha = layer[..., 3:]  # "over" compositing
        out_a = alpha + out[..., 3:] * (1 - alpha)
        rgb = (layer[..., :3] * alpha + out[..., :3] * out[..., 3:] * (1 - alpha)) / np.maximum(out_a, 1e-6)
        out = np.concatenate([rgb, out_a], axis=-1)
    return out


def _as_rgba(a: np.ndarray) -> np.ndarray:
    c = a.shape[2]
    rgb = a[..., :1].repeat(3, 2) if c <= 2 else a[..., :3]
    alpha = a[..., -1:] if c in (2, 4) else np.ones_like(a[..., :1])
    return np.concatenate([rgb, alpha], axis=-1)


def to_float_array(image: Any) -> np.ndarray:
    """Decode any accepted input to a float32 H×W×C array in [0, 1] (C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA)."""
    if image is None:
        raise InputError("No image: upload a picture or draw a digit first.")
    if isinstance(image, dict):
        return _editor_to_array(image)
    if isinstance(image, (str, os.PathLike, bytes, bytearray)):
        return _pil_to_array(open_image(image))
    if isinstance(image, Image.Image):
        return _pil_to_array(image)
    if isinstance(image, Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        return _array_to_float(image)
    raise InputError(
        f"Unsupported input of type {type(image).__name__}: pass a PIL image, a numpy array, a file path "
        "or a Sketchpad value."
    )


# --- finding the ink ---------------------------------------------------------------------------------------


def _resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Resize a float 2-D array (area-averaging when shrinking, bilinear when enlarging)."""
    if a.shape == (h, w):
        return a
    shrink = h <= a.shape[0] and w <= a.shape[1]
    im = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F")
    return np.asarray(im.resize((w, h), Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR))


def _paper(v: np.ndarray, light: bool, cells: int = 12) -> np.ndarray:
    """A smooth estimate of the paper: per cell, a value most of the paper is darker (lighter) than; then the
    median of each 3×3 block of cells, so that a cell lying inside a thick stroke takes its neighbours' value.
    """
    cells = max(1, min(cells, min(v.shape) // 10))  # cells of 10 pixels or more: wider than a stroke
    gh, gw = cells, cells
    ch, cw = v.shape[0] // gh, v.shape[1] // gw
    blocks = v[: gh * ch, : gw * cw].reshape(gh, ch, gw, cw).transpose(0, 2, 1, 3).reshape(gh, gw, -1)
    level = np.percentile(blocks, 90 if light else 10, axis=-1).astype(np.float32)
    padded = np.pad(level, 1, mode="edge")
    smooth = np.median([padded[i : i + gh, j : j + gw] for i in range(3) for j in range(3)], axis=0)
    return _resize(smooth.astype(np.float32), *v.shape)


def find_ink(a: np.ndarray) -> np.ndarray:
    """Float H×W×C image in [0, 1] → ink map (at most ``WORK_SIDE`` pixels a side) in [0, 1], ink = 1.

    Raises :class:`InputError` with :data:`BLANK_MESSAGE` when there is no ink to speak of.
    """
    h, w, c = a.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    wh, ww = max(1, round(h * scale)), max(1, round(w * scale))
    alpha = a[..., -1] if c in (2, 4) else None
    if alpha is not None and float(alpha.max()) - float(alpha.min()) > 0.5:
        v = _resize(alpha, wh, ww)  # strokes on a transparent canvas: the alpha channel is the ink
        d = v
    else:
        lum = a[..., 0] if c <= 2 else a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
        v = _resize(lum, wh, ww)
        border = np.concatenate([v[0], v[-1], v[:, 0], v[:, -1]])
        if np.median(border) > 0.5:
            # Dark ink on light paper. Lighting multiplies, so divide by the paper (flat-fielding): the ink's
            # darkness relative to the paper around it, the same in a bright corner and a shadow.
            d = np.clip(1.0 - v / np.maximum(_paper(v, light=True), 1e-3), 0.0, 1.0)
        else:  # light ink on dark ground, as in MNIST: subtract the ground
            d = np.maximum(v - _paper(v, light=False), 0.0)
    # The ink's level, robust to single bright pixels (noise, JPEG ringing): the maximum of 2×2 means.
    pooled = d if min(d.shape) < 2 else (d[:-1, :-1] + d[1:, :-1] + d[:-1, 1:] + d[1:, 1:]) / 4
    contrast = float(pooled.max())
    if contrast < BLANK_CONTRAST:
        raise InputError(BLANK_MESSAGE)
    n = np.clip((d / contrast - NOISE_FLOOR) / (1 - NOISE_FLOOR), 0.0, 1.0)
    # Drop isolated specks (no inked 4-neighbour) so that they do not stretch the bounding box.
    m = n > 0
    p = np.pad(m, 1)
    n = n * (m & (p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]))
    if not n.any():
        raise InputError(BLANK_MESSAGE)
    return n.astype(np.float32)


def mnist_recipe(ink: np.ndarray) -> np.ndarray:
    """Crop to the ink, fit into 20×20 keeping the aspect ratio, centre the mass in 28×28. Returns float32 (28, 28)."""
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    if len(rows) == 0:
        raise InputError(BLANK_MESSAGE)
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    s = BOX / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * s)), max(1, round(crop.shape[1] * s))
    small = np.clip(_resize(crop, h, w), 0.0, None)
    small = np.clip(small / max(float(small.max()), 1e-6), 0.0, 1.0)  # MNIST's strokes reach full intensity
    mass = small.sum()
    cy = float((small.sum(1) * np.arange(h)).sum() / mass)
    cx = float((small.sum(0) * np.arange(w)).sum() / mass)
    centre = CANVAS // 2  # MNIST's centres of mass sit at pixel (14, 14)
    top = min(max(round(centre - cy), 0), CANVAS - h)
    left = min(max(round(centre - cx), 0), CANVAS - w)
    out = np.zeros((CANVAS, CANVAS), np.float32)
    out[top : top + h, left : left + w] = small
    return out
