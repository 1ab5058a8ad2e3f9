"""MNIST digits given the way people give them to the app: the robustness benchmark's kinds of input.

Each kind is two steps: ``ink(d, rng)``, the digit as the person's pen, lens or scanner made it (a float map in
MNIST's framing, at any size), and ``show(ink, rng)``, how it reaches the app (paper, lighting, a canvas, a file).
Used by ``benchmarks/bench_robustness.py`` (which reads them back with :mod:`training.classifier`) and by the
preprocessing tests; measurement tooling, not part of the library.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageFilter

Maker = Callable[[np.ndarray, np.random.Generator], Any]

# ``d`` is an MNIST digit, uint8 (28, 28), light ink on black.


def enlarge(d: np.ndarray, h: int, w: int | None = None, resample: int = Image.Resampling.BICUBIC) -> np.ndarray:
    """The digit's ink, smoothly enlarged to h×w: float32 in [0, 1]."""
    im = Image.fromarray(d).resize((w or h, h), resample)
    return np.asarray(im, np.float32) / 255.0


def on_paper(ink: np.ndarray, rng: np.random.Generator, paper: float = 225, dark: float = 35, noise: float = 4):
    """Dark ink on light paper with sensor noise: uint8."""
    v = paper - (paper - dark) * ink + rng.normal(0, noise, ink.shape)
    return v.clip(0, 255).astype(np.uint8)


def place(ink: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Put an ink map at a random position on an empty h×w sheet."""
    sheet = np.zeros((h, w), np.float32)
    y, x = int(rng.integers(0, h - ink.shape[0] + 1)), int(rng.integers(0, w - ink.shape[1] + 1))
    sheet[y : y + ink.shape[0], x : x + ink.shape[1]] = ink
    return sheet


def encode(im: Image.Image, fmt: str = "PNG", **kw: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def ink_box(d: np.ndarray) -> np.ndarray:
    """The digit cropped to its ink."""
    rows, cols = np.flatnonzero(d.any(1)), np.flatnonzero(d.any(0))
    return d[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang–Suen thinning of a boolean mask to one-pixel-wide strokes (a pen's path)."""
    m = np.pad(mask, 1).astype(np.uint8)
    while True:
        changed = False
        for step in (0, 1):
            p = [np.roll(np.roll(m, -dy, 0), -dx, 1) for dy, dx in
                 ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))]  # fmt: skip
            b = sum(p)
            a = sum((p[i] == 0) & (p[(i + 1) % 8] == 1) for i in range(8))
            if step == 0:
                c1, c2 = p[0] * p[2] * p[4], p[2] * p[4] * p[6]
            else:
                c1, c2 = p[0] * p[2] * p[6], p[0] * p[4] * p[6]
            drop = (m == 1) & (b >= 2) & (b <= 6) & (a == 1) & (c1 == 0) & (c2 == 0)
            if drop.any():
                m[drop], changed = 0, True
        if not changed:
            return m[1:-1, 1:-1].astype(bool)


def as_image(ink: np.ndarray) -> Image.Image:
    return Image.fromarray((ink.clip(0, 1) * 255).round().astype(np.uint8))


# The classifier's reading of the ink alone, shrunk to 28×28, is the kind's ceiling: what preprocessing can keep.


def blurred_ink(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Out of focus: a Gaussian blur of 0.5, 1 or 1.5 MNIST pixels."""
    size = int(rng.integers(200, 320))
    sigma = float(rng.choice([0.5, 1.0, 1.5])) * size / 28
    return np.asarray(as_image(enlarge(d, size)).filter(ImageFilter.GaussianBlur(sigma)), np.float32) / 255


def scanned_ink(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scanned at low resolution (the digit 8–16 pixels tall), then enlarged smoothly by an image viewer."""
    s = int(rng.integers(8, 17))
    frame = round(28 * s / 20)  # MNIST's digit fills 20 of its 28 pixels: the digit ends up s pixels tall
    scan = Image.fromarray(d).resize((frame, frame), Image.Resampling.BOX)  # a sensor averages its area
    big = int(rng.integers(200, 320))
    smooth = rng.choice([Image.Resampling.BILINEAR, Image.Resampling.BICUBIC])
    return np.asarray(scan.resize((big, big), smooth), np.float32) / 255


def marker_ink(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A thick marker: strokes about 1.6 times MNIST's width, crisp edges."""
    mask = as_image(enlarge(d, 112) > 0.5).filter(ImageFilter.MaxFilter(7))
    return np.asarray(mask.resize((336, 336), Image.Resampling.BILINEAR), np.float32) / 255


def pen_ink(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A fine pen: the digit's centre line, about a third of MNIST's stroke width."""
    mask = as_image(thin(enlarge(d, 112) > 0.5)).filter(ImageFilter.MaxFilter(3))
    return np.asarray(mask.resize((336, 336), Image.Resampling.BILINEAR), np.float32) / 255


def slanted_ink(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Written at a slant: rotated by 5–15 degrees either way."""
    angle = float(rng.uniform(5, 15) * rng.choice([-1, 1]))
    return np.asarray(as_image(enlarge(d, 240)).rotate(angle, Image.Resampling.BICUBIC), np.float32) / 255


def sized_ink(lo: int, hi: int) -> Maker:
    """The digit as it is, smoothly enlarged to a random size in [lo, hi)."""
    return lambda d, rng: enlarge(d, int(rng.integers(lo, hi)))


def on_white(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """On white paper, a little noise, as PNG."""
    return encode(Image.fromarray(on_paper(ink, rng, paper=245, dark=20, noise=2)))


def photo_jpeg(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """A photo: somewhere on a sheet a little larger than the digit, with sensor noise, as JPEG."""
    h, w = ink.shape
    photo = on_paper(place(ink, h + 80, w + 120, rng), rng)
    return encode(Image.fromarray(photo), "JPEG", quality=90)


def scan_png(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """A scan: dark on white, as PNG."""
    return encode(as_image(1 - ink))


def uneven_paper(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """Dark ink on grey, noisy, unevenly lit paper (light falls to 40%), saved as JPEG at quality 60."""
    sheet = place(ink, 480, 640, rng)
    light = np.linspace(1.0, 0.4, 640)[None, :] * np.linspace(1.0, 0.8, 480)[:, None]
    if rng.random() < 0.5:
        light = light[:, ::-1]
    v = (190 - 150 * sheet) * light + rng.normal(0, 8, sheet.shape)
    return encode(Image.fromarray(v.clip(0, 255).astype(np.uint8)), "JPEG", quality=60)


def sketchpad(ink: np.ndarray, rng: np.random.Generator) -> dict:
    """Sketchpad strokes: black, the ink in the alpha channel of a transparent 800×800 canvas (an editor value)."""
    canvas = np.zeros((800, 800, 4), np.uint8)
    canvas[..., 3] = (place(ink, 800, 800, rng) * 255).astype(np.uint8)
    return {"background": None, "layers": [canvas], "composite": canvas}


def editor_photo(ink: np.ndarray, rng: np.random.Generator) -> dict:
    """A non-square photo (dark ink on light paper) that the image editor put on its transparent 800×800 canvas."""
    short = int(ink.shape[0] / rng.uniform(0.6, 0.9))
    h, w = (short, int(short * rng.uniform(1.3, 1.7)))[:: int(rng.choice([1, -1]))]
    photo = on_paper(place(ink, h, w, rng), rng, paper=float(rng.uniform(170, 235)))
    canvas = np.zeros((800, 800, 4), np.uint8)
    y, x = (800 - h) // 2, (800 - w) // 2  # the editor centres what it is given
    canvas[y : y + h, x : x + w, :3] = photo[..., None]
    canvas[y : y + h, x : x + w, 3] = 255
    return {"background": canvas, "layers": [np.zeros_like(canvas)], "composite": canvas}


def small_on_sheet(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """A small digit anywhere on a large sheet (640×480), as JPEG."""
    return encode(Image.fromarray(on_paper(place(ink, 480, 640, rng), rng)), "JPEG", quality=85)


def tight_crop(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cropped to the ink, no margin, at any zoom (1–12×); dark on light or light on dark; a uint8 array."""
    box = ink_box((ink * 255).round().astype(np.uint8))
    z = max(float(rng.uniform(1, 12)), 8 / min(box.shape))  # at least 8 pixels a side, as to_mnist requires
    big = (enlarge(box, round(box.shape[0] * z), round(box.shape[1] * z)) * 255).astype(np.uint8)
    return 255 - big if rng.random() < 0.5 else big


class Kind(NamedTuple):
    ink: Maker
    show: Callable[[np.ndarray, np.random.Generator], Any]


KINDS: dict[str, Kind] = {
    "mnist": Kind(lambda d, rng: d / 255.0, lambda ink, rng: (ink * 255).round().astype(np.uint8)),
    "blur": Kind(blurred_ink, photo_jpeg),
    "lowres": Kind(scanned_ink, scan_png),
    "thick": Kind(marker_ink, on_white),
    "thin_pen": Kind(pen_ink, on_white),
    "paper": Kind(sized_ink(280, 281), uneven_paper),
    "sketch": Kind(sized_ink(300, 600), sketchpad),
    "editor_photo": Kind(sized_ink(180, 280), editor_photo),
    "rotated": Kind(slanted_ink, photo_jpeg),
    "offcentre": Kind(sized_ink(120, 240), small_on_sheet),
    "tight": Kind(lambda d, rng: d / 255.0, tight_crop),
}
