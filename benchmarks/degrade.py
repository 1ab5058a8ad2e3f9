"""Digits given the way people give them to the app: the robustness benchmark's kinds of input.

Each kind is two steps: ``ink(d, rng)``, the digit as the person's pen, lens or scanner made it (a float map in
MNIST's framing, at any size), and ``show(ink, rng)``, how it reaches the app (paper, lighting, a canvas, a window,
a file). Most kinds start from MNIST *test* digits; ``optdigits`` starts from real 8×8 scans of other writers.
Used by ``benchmarks/bench_robustness.py`` (which reads them back with :mod:`benchmarks.classifier`) and by the
preprocessing tests; measurement tooling, not part of the library.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

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


def canvas_png(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """The app's drawing canvas: black strokes, the ink in the alpha channel of a transparent 280×280 PNG."""
    canvas = np.zeros((CANVAS_SIDE, CANVAS_SIDE, 4), np.uint8)
    canvas[..., 3] = (place(ink, CANVAS_SIDE, CANVAS_SIDE, rng) * 255).round().astype(np.uint8)
    return encode(Image.fromarray(canvas))


CANVAS_SIDE = 280  # the Draw tab's canvas (docs/app.md)


def surface(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A desk or cloth under a note, float RGB (h, w, 3) in [0, 255]: wood grain, a dark desk, or a checked or
    striped cloth, all darker than paper or patterned."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.choice(["wood", "dark", "cloth"])
    if kind == "wood":  # long, wavy bands of lighter and darker grain, and fine streaks along them
        base = rng.uniform([90, 55, 25], [175, 120, 70])
        along, across = (x, y) if rng.random() < 0.5 else (y, x)
        wave = across / rng.uniform(12, 40) + 0.6 * np.sin(along / rng.uniform(60, 200) + rng.uniform(0, 6))
        streaks = rng.normal(0, 0.06, max(h, w))[across.astype(int)]  # constant along the grain
        grain = 1 + 0.18 * np.sin(2 * np.pi * wave) + streaks
        rgb = base * grain[..., None]
    elif kind == "dark":  # a dark desk, lit a little unevenly
        rgb = rng.uniform(15, 80) * np.ones((h, w, 3)) * rng.uniform(0.8, 1.2, 3)
        rgb *= (1 + 0.2 * (x / w - 0.5) * rng.choice([-1, 1]))[..., None]
    else:  # a cloth: checks or stripes of two colours, with a weave
        a, b = rng.uniform(20, 150, 3), rng.uniform(20, 150, 3)
        period = rng.uniform(12, 50)
        checks = ((x // period).astype(int) + (y // period).astype(int) * int(rng.random() < 0.6)) % 2
        rgb = np.where(checks[..., None] == 1, a, b)
        rgb = rgb * (1 + 0.08 * np.sin(x * 1.7)[..., None] * np.sin(y * 1.3)[..., None])
    return np.clip(rgb, 0, 255)


def desk_photo(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """A note (light paper with the digit in pen) photographed on a desk or cloth, its edges inside the frame:
    turned a little, lit unevenly, slightly out of focus, with sensor noise, as JPEG."""
    h, w = (480, 640) if rng.random() < 0.6 else (640, 480)
    photo = surface(h, w, rng)
    nh = int(min(h, w) * rng.uniform(0.45, 0.8))  # the note's size in the photo
    nw = int(nh * rng.uniform(0.8, 1.4))
    paper = rng.uniform([215, 210, 190], [250, 250, 240])  # white to cream; a yellow note is lighter than the desk
    pen = rng.uniform(10, 70, 3) * np.array([1, 1, rng.uniform(1, 2.5)])  # black or blue
    size = int(min(nh, nw) * rng.uniform(0.6, 0.95))  # the digit's frame on the note (28 px, the digit 20 of them)
    sheet = np.zeros((nh, nw), np.float32)
    sheet[(nh - size) // 2 :][:size, (nw - size) // 2 :][:, :size] = enlarge((ink * 255).round().astype(np.uint8), size)
    note = paper * (1 - sheet[..., None]) + pen * sheet[..., None]
    angle = float(rng.uniform(-12, 12))
    note_im = Image.fromarray(note.clip(0, 255).astype(np.uint8)).rotate(angle, Image.Resampling.BICUBIC, expand=True)
    mask = Image.new("L", (nw, nh), 255).rotate(angle, Image.Resampling.BICUBIC, expand=True)
    margin = 10
    top = int(rng.integers(margin, max(margin + 1, h - note_im.height - margin)))
    left = int(rng.integers(margin, max(margin + 1, w - note_im.width - margin)))
    base = Image.fromarray(photo.astype(np.uint8))
    shadow = Image.new("RGB", note_im.size, (0, 0, 0))
    base.paste(Image.blend(base.crop((left + 4, top + 5, left + 4 + note_im.width, top + 5 + note_im.height)), shadow,
                           0.35), (left + 4, top + 5), mask.filter(ImageFilter.GaussianBlur(4)))  # fmt: skip
    base.paste(note_im, (left, top), mask)
    yy, xx = np.mgrid[0:h, 0:w]
    light = 1 - rng.uniform(0, 0.3) * (((xx - rng.uniform(0, w)) / w) ** 2 + ((yy - rng.uniform(0, h)) / h) ** 2)
    v = np.asarray(base.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2))), np.float32) * light[..., None]
    v += rng.normal(0, rng.uniform(1.5, 5), v.shape)
    return encode(Image.fromarray(v.clip(0, 255).astype(np.uint8)), "JPEG", quality=int(rng.integers(70, 93)))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size)


def window_screenshot(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """A screenshot of a drawing app's window with the digit on its canvas, as PNG: a title bar with a title and
    buttons, often a toolbar with labels and icons, sometimes a border, a status bar or a scroll bar; light or dark
    theme. A quarter are macOS window captures: rounded corners and a soft shadow on a transparent margin (RGBA)."""
    w, h = int(rng.integers(360, 900)), int(rng.integers(300, 700))
    dark = rng.random() < 0.25
    content = rng.uniform(20, 45) if dark else rng.uniform(240, 255)
    im = Image.new("RGB", (w, h), (int(content),) * 3)
    draw = ImageDraw.Draw(im)

    def grey(lo: float, hi: float) -> tuple[int, int, int]:
        return (int(rng.uniform(lo, hi)),) * 3

    mac = rng.random() < 0.5
    bar_h = int(rng.integers(22, 40))
    bar = grey(45, 75) if dark else [grey(215, 240), (0, 103, 192), grey(60, 80)][int(rng.integers(3))]
    text = (235, 235, 235) if sum(bar) < 380 else (30, 30, 30)
    draw.rectangle((0, 0, w, bar_h), fill=bar)
    title = ["Untitled - Paint", "digit.png", "Sketch 1", "Drawing — Preview", "canvas (100%)"][int(rng.integers(5))]
    font = _font(int(bar_h * 0.5))
    if mac:
        for i, colour in enumerate([(255, 95, 87), (255, 189, 46), (40, 200, 64)]):
            cx, r = 14 + 20 * i, bar_h // 5 + 2
            draw.ellipse((cx - r, bar_h // 2 - r, cx + r, bar_h // 2 + r), fill=colour)
        draw.text((w // 2, bar_h // 2), title, fill=text, font=font, anchor="mm")
    else:
        draw.text((10, bar_h // 2), title, fill=text, font=font, anchor="lm")
        for i, glyph in enumerate(["\u2013", "\u25a1", "\u00d7"]):
            cx = w - 20 - 40 * (2 - i)
            if i == 2 and rng.random() < 0.5:
                draw.rectangle((cx - 20, 0, cx + 20, bar_h), fill=(196, 43, 28))
            draw.text((cx, bar_h // 2), glyph, fill=text, font=font, anchor="mm")
    top, bottom, right = bar_h, h, w
    if rng.random() < 0.7:  # a toolbar: labels and icons on a slightly different grey, a line under it
        tool_h = int(rng.integers(24, 56))
        tool = grey(50, 65) if dark else grey(225, 248)
        draw.rectangle((0, top, w, top + tool_h), fill=tool)
        x = 8
        for label in ["File", "Edit", "View", "Image", "Help"][: int(rng.integers(2, 6))]:
            draw.text((x, top + tool_h // 2), label, fill=text if dark else (40, 40, 40), font=_font(12), anchor="lm")
            x += 12 + 8 * len(label)
        for _ in range(int(rng.integers(2, 9))):  # icons: small coloured squares and circles
            s = int(rng.integers(10, min(22, tool_h - 4)))
            colour = tuple(int(c) for c in rng.integers(0, 230, 3))
            y0 = top + (tool_h - s) // 2
            (draw.rectangle if rng.random() < 0.5 else draw.ellipse)((x, y0, x + s, y0 + s), fill=colour)
            x += s + int(rng.integers(4, 14))
        if rng.random() < 0.8:
            draw.line((0, top + tool_h, w, top + tool_h), fill=grey(70, 90) if dark else grey(180, 215))
        top += tool_h + 1
    if rng.random() < 0.3:  # a status bar
        status_h = int(rng.integers(18, 28))
        draw.rectangle((0, h - status_h, w, h), fill=grey(45, 60) if dark else grey(225, 240))
        draw.text((8, h - status_h // 2), "100%   280 x 280 px", fill=text if dark else (60, 60, 60), font=_font(11),
                  anchor="lm")  # fmt: skip
        bottom -= status_h
    if rng.random() < 0.3:  # a vertical scroll bar
        sw = int(rng.integers(10, 18))
        draw.rectangle((w - sw, top, w, bottom), fill=grey(50, 60) if dark else grey(230, 242))
        t0 = int(rng.integers(top, max(top + 1, bottom - 80)))
        draw.rounded_rectangle((w - sw + 2, t0, w - 3, t0 + 60), 4, fill=grey(90, 120) if dark else grey(150, 195))
        right -= sw
    ch, cw = bottom - top, right
    size = int(min(ch, cw) * rng.uniform(0.5, 0.95))
    pen = rng.uniform(200, 255) if dark else rng.uniform(0, 50)
    y0 = top + int(rng.integers(0, ch - size + 1))
    x0 = int(rng.integers(0, cw - size + 1))
    a = np.asarray(im, np.float32)
    digit = enlarge((ink * 255).round().astype(np.uint8), size)[..., None]
    a[y0 : y0 + size, x0 : x0 + size] = a[y0 : y0 + size, x0 : x0 + size] * (1 - digit) + pen * digit
    im = Image.fromarray(a.round().clip(0, 255).astype(np.uint8))
    if rng.random() < 0.5:  # a 1-pixel window border
        ImageDraw.Draw(im).rectangle((0, 0, w - 1, h - 1), outline=grey(60, 90) if dark else grey(150, 200))
    if rng.random() < 0.25:  # a macOS window capture: rounded corners, a shadow on a transparent margin
        m, r = 40, 10
        shape = Image.new("L", (w, h), 0)
        ImageDraw.Draw(shape).rounded_rectangle((0, 0, w - 1, h - 1), r, fill=255)
        alpha = Image.new("L", (w + 2 * m, h + 2 * m), 0)
        alpha.paste(int(rng.uniform(90, 140)), (m, m + 12), shape)
        alpha = alpha.filter(ImageFilter.GaussianBlur(14))
        out = Image.new("RGBA", alpha.size, (0, 0, 0, 0))
        out.putalpha(alpha)
        out.paste(im.convert("RGBA"), (m, m), shape)
        return encode(out)
    return encode(im)


# --- real low-resolution digits: optdigits ---------------------------------------------------------------


def optdigits() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 8×8 digits scikit-learn ships (UCI optdigits: NIST forms of 43 writers, 32×32 bitmaps counted in
    4×4 blocks, 17 grey levels), as uint8 (N, 8, 8) light ink on black (0–16 scaled to 0–255), with labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("the optdigits kind needs scikit-learn: pip install -r requirements.txt") from None
    data = load_digits()
    return (data.images * 255 / 16).round().astype(np.uint8), data.target.astype(np.int64)


def centred(ink: np.ndarray) -> np.ndarray:
    """The plain MNIST recipe, as a reference: crop to the ink, enlarge smoothly into 20×20 keeping the aspect
    ratio, put the centre of mass at the centre of 28×28. Float (28, 28) in [0, 1]."""
    box = ink_box((ink * 255).round().astype(np.uint8))
    s = 20 / max(box.shape)
    h, w = max(1, round(box.shape[0] * s)), max(1, round(box.shape[1] * s))
    small = np.asarray(Image.fromarray(box).resize((w, h), Image.Resampling.BILINEAR), np.float32) / 255
    ys, xs = np.mgrid[0:h, 0:w]
    cy, cx = (small * ys).sum() / small.sum(), (small * xs).sum() / small.sum()
    top, left = min(max(round(14 - cy), 0), 28 - h), min(max(round(14 - cx), 0), 28 - w)
    out = np.zeros((28, 28), np.float32)
    out[top : top + h, left : left + w] = small
    return out


def viewer_png(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """A small scan as an image viewer shows it: enlarged 8–40× (pixelated or smoothed), dark on light, as PNG."""
    z = int(rng.integers(8, 41))
    resample = [Image.Resampling.NEAREST, Image.Resampling.BILINEAR, Image.Resampling.BICUBIC][int(rng.integers(3))]
    big = as_image(1 - ink).resize((ink.shape[1] * z, ink.shape[0] * z), resample)
    return encode(big)


def small_on_sheet(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """A small digit anywhere on a large sheet (640×480), as JPEG."""
    return encode(Image.fromarray(on_paper(place(ink, 480, 640, rng), rng)), "JPEG", quality=85)


def tight_crop(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cropped to the ink, no margin, at any zoom (1–12×); dark on light or light on dark; a uint8 array."""
    box = ink_box((ink * 255).round().astype(np.uint8))
    z = max(float(rng.uniform(1, 12)), 8 / min(box.shape))  # at least 8 pixels a side, as to_mnist requires
    big = (enlarge(box, round(box.shape[0] * z), round(box.shape[1] * z)) * 255).astype(np.uint8)
    return 255 - big if rng.random() < 0.5 else big


def shrink(ink: np.ndarray) -> np.ndarray:
    """Ink in MNIST's framing, at any size, area-averaged to 28×28."""
    return np.asarray(Image.fromarray(ink.astype(np.float32), "F").resize((28, 28), Image.Resampling.BOX)).clip(0, 1)


def mnist_test(data_root: Any = None) -> tuple[np.ndarray, np.ndarray]:
    from vae_hub import load_mnist

    images, labels = load_mnist("test", data_root)
    return images.numpy(), labels.numpy()


class Kind(NamedTuple):
    ink: Maker
    show: Callable[[np.ndarray, np.random.Generator], Any]
    drawn: Callable[[np.ndarray], np.ndarray] = shrink  # the ink as MNIST would frame it: the kind's ceiling
    source: Callable[..., tuple[np.ndarray, np.ndarray]] = mnist_test  # the digits (uint8 N×h×w) and labels


KINDS: dict[str, Kind] = {
    "mnist": Kind(lambda d, rng: d / 255.0, lambda ink, rng: (ink * 255).round().astype(np.uint8)),
    "blur": Kind(blurred_ink, photo_jpeg),
    "lowres": Kind(scanned_ink, scan_png),
    "thick": Kind(marker_ink, on_white),
    "thin_pen": Kind(pen_ink, on_white),
    "paper": Kind(sized_ink(280, 281), uneven_paper),
    "sketch": Kind(sized_ink(140, 280), canvas_png),
    "rotated": Kind(slanted_ink, photo_jpeg),
    "offcentre": Kind(sized_ink(120, 240), small_on_sheet),
    "tight": Kind(lambda d, rng: d / 255.0, tight_crop),
    "desk": Kind(sized_ink(200, 201), desk_photo),
    "screenshot": Kind(sized_ink(200, 201), window_screenshot),
    "optdigits": Kind(lambda d, rng: d / 255.0, viewer_png, centred, lambda data_root=None: optdigits()),
}
