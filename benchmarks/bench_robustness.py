"""Robustness of preprocessing: MNIST test digits given the way people give them, read back by a classifier.

    python benchmarks/bench_robustness.py [--n 500] [--kinds blur,lowres] [--weights weights] [--seed 0]

For each kind of input made from a fixed, seeded subset of MNIST's *test* digits (blurred photos, low-resolution
scans, thick marker, thin pen, uneven paper as JPEG, sketchpad strokes, a photo on the editor's transparent
canvas, rotations, off-centre and tight crops) it prints how often a small classifier trained on MNIST's
*training* set (``training.classifier``, cached under ``runs/classifier/``, never shipped) reads correctly
  - "drawn": the digit as the pen, lens or scanner made it, shrunk to 28×28 in MNIST's framing, before paper,
    lighting, canvas or file format: the ceiling for preprocessing (a marker that closes a loop lowers it);
  - "input": the 28×28 digit ``vae_hub.preprocess.to_mnist`` makes of the input, read as the app reads it
    (``webapp.handlers.digit``: an editor's value is first made one image), and
  - each bundled model's reconstruction of it (every folder under ``--weights`` holding ``model.safetensors``),
and the mean pixel value of the preprocessed digits against that of the same MNIST digits. Targets (issue 11):
input accuracy ≥ 97.5% on every sharp kind and ≥ 93% on the blurred and low-resolution ones; mean pixel value
within 15% of MNIST's on every kind. Inputs that ``to_mnist`` refuses count as misread (column "err").
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from training.classifier import load_classifier, predict  # noqa: E402
from vae_hub import VAE, DataError, WeightsError, load_mnist  # noqa: E402
from vae_hub.preprocess import InputError  # noqa: E402
from webapp.handlers import digit  # noqa: E402

Maker = Callable[[np.ndarray, np.random.Generator], Any]
SOFT = ("blur", "lowres")  # the kinds whose target is 93% (the others are sharp: 97.5%)
SHARP_TARGET, SOFT_TARGET, MEAN_TOLERANCE = 0.975, 0.93, 0.15


# --- making inputs: ``d`` is an MNIST digit, uint8 (28, 28), light ink on black --------------------------------


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


# Each kind is two steps: ``ink(d, rng)``, the digit as the person's pen, lens or scanner made it (a float map in
# MNIST's framing, at any size), and ``show(ink, rng)``, how it reaches the app (paper, lighting, a canvas, a file).
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


# --- measuring -----------------------------------------------------------------------------------------------


def make_all(kind: Kind, digits: np.ndarray, seed: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Each digit as drawn (shrunk to 28×28: the ceiling) and as the app reads it once shown; inputs it refuses
    become blank (misread) digits. Returns (drawn, preprocessed, refused)."""
    rng = np.random.default_rng(seed)
    drawn, out, errors = torch.zeros(len(digits), 1, 28, 28), torch.zeros(len(digits), 1, 28, 28), 0
    for i, d in enumerate(digits):
        ink = kind.ink(d, rng)
        small = Image.fromarray(ink.astype(np.float32), "F").resize((28, 28), Image.Resampling.BOX)
        drawn[i, 0] = torch.from_numpy(np.asarray(small).clip(0, 1))
        try:
            out[i] = digit(kind.show(ink, rng))  # as the app reads it: an editor's value (a dict) too
        except InputError:
            errors += 1
    return drawn, out, errors


def bundled_models(weights: Path) -> dict[str, VAE]:
    """Every ``save_pretrained`` folder under ``weights``, by its relative path."""
    folders = sorted(p.parent for p in weights.rglob("model.safetensors"))
    return {str(f.relative_to(weights)): VAE.from_pretrained(str(f)).eval() for f in folders}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500, help="test digits per kind (a fixed, seeded subset)")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, from: {', '.join(KINDS)}")
    ap.add_argument("--weights", type=Path, default=ROOT / "weights")
    ap.add_argument("--data-dir", default=None, help="MNIST root (default: $VAE_HUB_DATA, else ./data)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if unknown := [k for k in kinds if k not in KINDS]:
        ap.error(f"unknown kinds {unknown}; choose from {', '.join(KINDS)}")
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    try:
        clf = load_classifier(args.data_dir)
        models = bundled_models(args.weights)
        images, labels = load_mnist("test", args.data_dir)
    except (DataError, WeightsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    pick = torch.from_numpy(np.random.default_rng(args.seed).permutation(len(images))[: args.n])
    digits, labels = images[pick].numpy(), labels[pick]
    mnist_mean = float(digits.mean() / 255)
    clean = float((predict(clf, images[pick]) == labels).float().mean())
    print(f"{len(digits)} MNIST test digits per kind (seed {args.seed}); classifier on the raw digits: {clean:.1%}")
    print(f"models: {', '.join(models) or 'none found under ' + str(args.weights)}\n")

    cols = ["kind", "drawn", "input", *models, "mean px", "/MNIST", "err", "s"]
    widths = [12, 6, 6, *(max(8, len(m)) for m in models), 7, 7, 4, 5]
    print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths))))
    failed = []
    for k in kinds:
        t = time.perf_counter()
        drawn, x, errors = make_all(KINDS[k], digits, args.seed * 1000 + list(KINDS).index(k))
        ceiling = float((predict(clf, drawn) == labels).float().mean())
        acc = float((predict(clf, x) == labels).float().mean())
        recon = [float((predict(clf, m.reconstruct(x)) == labels).float().mean()) for m in models.values()]
        mean = float(x.mean())
        row = [k, f"{ceiling:.1%}", f"{acc:.1%}", *(f"{r:.1%}" for r in recon), f"{mean:.3f}"]
        row += [f"{mean / mnist_mean:.2f}", str(errors), f"{time.perf_counter() - t:.0f}"]
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))), flush=True)
        if acc < (SOFT_TARGET if k in SOFT else SHARP_TARGET) or abs(mean / mnist_mean - 1) > MEAN_TOLERANCE:
            failed.append(f"{k} (drawn {ceiling:.1%})")
    print(f"\nMNIST mean pixel value of these digits: {mnist_mean:.3f}. Total {time.perf_counter() - start:.0f} s.")
    print(f"Targets: input ≥ {SHARP_TARGET:.1%} (sharp), ≥ {SOFT_TARGET:.0%} ({', '.join(SOFT)}); mean within "
          f"±{MEAN_TOLERANCE:.0%}. " + (f"Missed on: {', '.join(failed)}." if failed else "All met."))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
