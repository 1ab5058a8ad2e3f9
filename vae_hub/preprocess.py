"""Turn people's digits (photos, scans, drawings, uploads of any size) into MNIST-style 28×28 inputs.

MNIST digits are light on black, cropped to their ink, fitted into 20×20 keeping the aspect ratio and centred by
mass in 28×28. :func:`to_mnist` finds the ink (a canvas's alpha, or the luminance against a surface fitted to the
paper, so that grey, noisy or unevenly lit paper drops out), keeps soft edges, redraws strokes far thinner or
thicker than MNIST's at a usual width, and raises :class:`InputError` with a message for the person who sent it.
"""

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from .images import MAX_FILE_BYTES as MAX_FILE_BYTES  # re-exported: the app's upload limit
from .images import WORK_SIDE, InputError, to_float_array

BLANK_CONTRAST = 0.08  # ink must differ from the paper by 8% of the full range
NOISE_SIGMAS = 4  # ink must stand out from the paper by more than 4 standard deviations of its noise
MIN_FLOOR = 0.05  # and by 5% of the ink's contrast (JPEG ringing)
# Stroke widths in output pixels (see stroke_width). MNIST's: median 2.4; 2% of digits below 1.5, 10% above 3.3.
THIN, THICK = 1.5, 3.4  # strokes outside this range (a fine pen, a marker) are redrawn (see mnist_recipe)
PEN_WIDTH = 2.5  # 300 MNIST training digits reduced to 0.75-pixel centre lines and widened to it: 0.99× their ink
MARKER_WIDTH = 2.6  # 1.1× MNIST's median
SOFT_EDGE = 2.0  # edges wider than this many pixels are blurred, not drawn with a marker
FINE, RAMP = 3, 0.3  # strokes are redrawn at 3× the output's scale, with edges soft over 0.3 of the ink's range
STRAY, FRINGE = 0.01, 0.002  # left out of the crop: specks beyond a gap (1% of the ink), a halo (0.2%)
BOX, CANVAS = 20, 28
# A sheet (_find_sheet, docs/robustness.md): nearly a rectangle, holding strokes, not a blob (a 0's inside is about half
# as wide as long), that span a fifth of its width, ink along half a side of the picture; less its blurred EDGE.
RECTANGLE, STROKE_EXTENT, HELD_EXTENT, FRAME, EDGE = 0.9, 0.3, 0.2, 0.5, 6
SHEET_SIDE = 140  # sheets and clutter are looked for on a copy at most this large
NEAR = 0.25  # ink farther than this many times the digit's extent from it is clutter (if it holds less ink)

CROP_MESSAGE = "The digit cannot be told apart from what surrounds it: crop the picture to the digit and try again."
CROP_FRAME = 0.8  # ink along this much of three sides of the picture may be a frame around the digit (_framed)
BLANK_MESSAGE = "No digit found: the image is blank or almost uniform. Draw a digit first, or upload a clearer picture."


def to_mnist(image: Any) -> torch.Tensor:
    """A digit as MNIST shows it: a float tensor (1, 28, 28) in [0, 1], light ink on black, from a PIL image, an array
    or tensor (H×W, H×W×1…4; uint8, uint16, int, bool or float), or an upload's path or bytes (PNG, JPEG, WebP, GIF or
    BMP: :mod:`vae_hub.images`). Raises :class:`InputError` if unusable (blank, unreadable, too large or too small)."""
    return torch.from_numpy(mnist_recipe(find_ink(to_float_array(image)))).unsqueeze(0)


def _resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Resize a float 2-D array (area-averaging when shrinking, bilinear when enlarging)."""
    if a.shape == (h, w):
        return a
    shrink = h <= a.shape[0] and w <= a.shape[1]
    im = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F")
    return np.asarray(im.resize((w, h), Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR))


def _sized(x: np.ndarray, side: int = WORK_SIDE, enlarge: bool = False) -> np.ndarray:
    """A 2-D map resized to ``side`` pixels on its longer side (unless shorter and not ``enlarge``)."""
    scale = side / max(x.shape) if enlarge else min(1.0, side / max(x.shape))
    return _resize(x, *(max(1, round(n * scale)) for n in x.shape))


def _luminance(a: np.ndarray) -> np.ndarray:
    return a[..., 0] if a.shape[2] <= 2 else a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114


def _surfaces(shape: tuple[int, ...]) -> np.ndarray:
    """The terms of a quadratic surface (1, x, y, x², xy, y²; its first 1 or 3: flat, a plane) at each pixel."""
    y, x = np.mgrid[-1 : 1 : complex(0, shape[0]), -1 : 1 : complex(0, shape[1])]
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], -1).reshape(-1, 6)


def _robust_fit(basis: np.ndarray, z: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Least squares' coefficients, refitted without outliers (beyond 3 robust standard deviations)."""
    coef = np.linalg.lstsq(basis, z, rcond=None)[0]
    for _ in range(4):
        if keep.sum() < 2 * basis.shape[1]:  # too few points left to refit
            break
        coef = np.linalg.lstsq(basis[keep], z[keep], rcond=None)[0]
        r = z - basis @ coef
        keep = np.abs(r) < 3 * 1.4826 * float(np.median(np.abs(r[keep]))) + 1e-4
    return coef


def _paper(v: np.ndarray, light: bool) -> np.ndarray:
    """The paper: a flat, plane or quadratic surface fitted to what is not ink (not sinking into bold strokes)."""
    g = max(1, int(np.ceil(max(v.shape) / 64)))  # fit on at most 64×64 points: the paper is smooth
    small = _resize(v, max(1, v.shape[0] // g), max(1, v.shape[1] // g))
    diffs = [np.abs(np.diff(small, axis=i)).ravel() for i in (0, 1)]  # lower quartile, missing edges: 0.3186 √2 σ
    grain = float(np.percentile(np.concatenate(diffs), 25)) / (0.3186 * np.sqrt(2)) if min(small.shape) > 1 else 0.0
    # Flipped so that the paper is the high side. Light multiplies the paper's brightness: fit its log.
    if light:
        grain /= max(float(np.percentile(small, 90)), 0.05)  # in the log's units, near the paper
        small = np.log(np.maximum(small, 1e-3))
    else:
        small = -small
    # The first guess at the paper: the brightest tenth of coarse cells, each the median of its neighbours.
    cells = max(1, min(8, min(small.shape) // 6))
    ch, cw = small.shape[0] // cells, small.shape[1] // cells
    level = np.percentile(small[: cells * ch, : cells * cw].reshape(cells, ch, cells, cw), 90, axis=(1, 3))
    level = ndimage.median_filter(level, 3, mode="nearest")  # a cell inside a bold stroke takes its neighbours' median
    first = _resize(level.astype(np.float32), *small.shape)
    keep = (small >= first - 0.1 * np.abs(first) - 0.02).ravel()
    # Candidates, simplest first: flat at the brightest tenth (a tight crop), flat, a plane and a quadratic fitted to
    # the paper, flat at the brightest hundredth (mostly ink: a small scan enlarged). A surface leaving many pixels
    # far above it has bent into the ink; of the rest, take the simplest that holds nearly the most paper.
    terms, zs = _surfaces(small.shape), small.ravel()
    margin = max(3 * grain, 0.02)
    fitted = [_robust_fit(terms[:, :k], zs, keep) for k in (1, 3, 6)]
    coefs = [np.percentile(zs, [90]), *fitted, np.percentile(zs, [99])]
    fits = [terms[:, : len(c)] @ c for c in coefs]
    held = np.array([np.mean(np.abs(zs - f) < margin) for f in fits])
    held[[np.mean(zs - f > margin) > 0.05 for f in fits]] = -1
    coef = coefs[int(np.flatnonzero(held >= held.max() - 0.03)[0])]
    full = (_surfaces(v.shape)[:, : len(coef)] @ coef).reshape(v.shape)
    return (np.exp(full) if light else -full).astype(np.float32)


def _visible(a: np.ndarray) -> tuple[np.ndarray, bool]:
    """The working-size picture, and whether it is a canvas's alpha (ink); a transparent margin is cropped off."""
    if a.shape[2] not in (2, 4) or float(a[..., -1].max()) - float(a[..., -1].min()) <= 0.5:
        return _sized(_luminance(a)), False
    alpha = a[..., -1]
    seen = alpha > 0.5
    box = ndimage.find_objects(seen, 1)[0]  # the bounding box of what is seen (label 1: True), as slices
    colours = _luminance(a[seen][None])[0]
    spread = float(np.percentile(colours, 98) - np.percentile(colours, 2))
    if seen[box].mean() > 0.75 and spread >= BLANK_CONTRAST:  # a picture with ink of its own
        return _sized(_luminance(a[box]) * alpha[box] + float(np.median(colours)) * (1 - alpha[box])), False
    return _sized(alpha), True


def _sides(a: np.ndarray) -> tuple[np.ndarray, ...]:
    """The picture's four edges: its first and last row and column."""
    return a[0], a[-1], a[:, 0], a[:, -1]


def _light_paper(v: np.ndarray) -> bool:
    """Whether the ink is darker than the paper: the border lies nearer the paper's end of the range; the ink is a
    long tail on one side of the most common values (which survives uneven lighting); paper is usually lighter."""
    lo, hi = np.percentile(v, [0.1, 99.9])
    if hi - lo < 1e-6:  # uniform: nothing to tell them apart
        return float(v.mean()) > 0.5
    border = float(np.median(np.concatenate(_sides(v))))
    by_border = (border - (lo + hi) / 2) / (hi - lo)  # in [-0.5, 0.5]
    by_tail = (2 * float(np.median(v)) - lo - hi) / (hi - lo)  # in [-1, 1]
    return by_border + 0.5 * by_tail + 0.5 * (border - 0.5) > 0


def _pooled_max(d: np.ndarray) -> float:
    """The maximum of 2×2 means: a level that single bright pixels (noise, JPEG ringing) do not set."""
    pooled = d if min(d.shape) < 2 else (d[:-1, :-1] + d[1:, :-1] + d[:-1, 1:] + d[1:, 1:]) / 4
    return float(pooled.max())


def find_ink(a: np.ndarray) -> np.ndarray:
    """Float H×W×C image in [0, 1] → ink map in [0, 1] at the working size: only a sheet's, without clutter."""
    v, is_ink = _visible(a)
    n = _ink_map(v, "alpha" if is_ink else None)
    sheet = None if is_ink else _find_sheet(_sized(v, SHEET_SIDE), _sized(n, SHEET_SIDE))
    if sheet is not None:
        inside = np.asarray(Image.fromarray(sheet[0]).resize(n.shape[::-1], Image.Resampling.NEAREST))
        if sheet[1]:
            # A light note read as ink on a dark desk is read again as dark ink on light paper, the desk replaced by the
            # note's paper as lit: a quadratic fitted to the log of its paper (a flat level left bands at lit edges).
            terms, step = _surfaces(v.shape), max(1, v.size // 4096)  # a few thousand pixels fix a smooth surface
            z, paper = np.log(np.maximum(v, 1e-3)).ravel(), (inside & (v > _otsu(v[inside]))).ravel()
            lit = np.exp(terms @ _robust_fit(terms[::step], z[::step], paper[::step])).reshape(v.shape)
            n = _ink_map(np.where(inside, v, lit.astype(np.float32)), True)
        n = n * inside
    n = _without_clutter(n)
    if not is_ink and _framed(_sized(n, SHEET_SIDE) > 0):
        raise InputError(CROP_MESSAGE)
    return n


def _ink_map(v: np.ndarray, light: bool | str | None) -> np.ndarray:
    """The ink map of a working-size picture whose paper is ``light`` (None: find out; "alpha": it is ink already)."""
    if light == "alpha":
        d = diff = v  # a canvas's alpha has no grain: nothing lies below its paper
    elif light if light is not None else _light_paper(v):
        # Dark ink on light paper. Lighting multiplies, so divide by the paper (flat-fielding): the ink's darkness
        # relative to the paper around it, the same in a bright corner and a shadow.
        paper = _paper(v, light=True)
        diff = paper - v
        d = diff / np.maximum(paper, 1e-3)
    else:  # light ink on dark ground, as in MNIST: subtract the ground
        diff = d = v - _paper(v, light=False)
    # The paper's noise: ink never lies below the paper, so what does is paper, at a median distance of 0.674 σ.
    below = -d[d < 0]
    sigma = 1.4826 * float(np.median(below)) if below.size else 0.0
    if _pooled_max(diff) < BLANK_CONTRAST:  # in the picture's own units: a dim photo's grain is no digit
        raise InputError(BLANK_MESSAGE)
    d = np.clip(d, 0.0, 1.0)
    contrast = _pooled_max(d)
    # Paper grain and JPEG ringing: drop what noise alone could explain, and a small fraction of the contrast.
    floor = max(NOISE_SIGMAS * sigma, MIN_FLOOR * contrast)
    # And a large area at one faint level (a table around a note, a shadow): ink's edges and a halo spread over many.
    faint = d[(d > floor) & (d < 0.5 * contrast)]
    level, width = float(np.median(faint)) if faint.size else 0.0, 2 * sigma + 0.01 * contrast
    if faint.size >= 0.05 * d.size and np.mean(np.abs(faint - level) < width) >= 0.5:
        floor = max(floor, level + 2 * width)
    # A gate, not a subtraction: ink well above the floor keeps its value (strokes their mass), ink near it fades.
    n = np.clip(d / contrast, 0.0, 1.0) * np.clip(d / floor - 1, 0.0, 1.0)
    # Drop specks without an inked neighbour (diagonals count: a 1-pixel diagonal stroke is ink): they would stretch
    # the bounding box.
    inked = F.avg_pool2d(torch.from_numpy(n > 0).float()[None], 3, 1, 1)[0].numpy() * 9
    n = n * ((n > 0) & (inked > 1.5))
    if float(n.max()) < BLANK_CONTRAST / 2:
        raise InputError(BLANK_MESSAGE)
    return (n / n.max()).astype(np.float32)


def _largest(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of ``mask``."""
    labels = ndimage.label(mask)[0]
    return labels == np.bincount(labels[mask]).argmax() if mask.any() else mask


def _rectangularity(mask: np.ndarray) -> float:
    """A region's pixels over those of the smallest turned rectangle around it: 1 for a sheet, π/4 for a filled 0."""
    rows = np.flatnonzero(mask.any(1))  # the outline: each row's first and last pixel
    x = np.r_[mask[rows].argmax(1), mask.shape[1] - 1 - mask[rows, ::-1].argmax(1)]
    y = np.r_[rows, rows]
    turn = np.radians(np.arange(0, 90, 0.25))[:, None]  # the rectangle's turn, to within an eighth of a degree
    w = np.ptp(x * np.cos(turn) + y * np.sin(turn), axis=1)
    h = np.ptp(y * np.cos(turn) - x * np.sin(turn), axis=1)
    return float(mask.sum()) / float((w * h + w + h + 1).min())  # through pixel centres: Pick's theorem


def _framed(ink: np.ndarray) -> bool:
    """Whether ink lines three sides around paper that holds ink and, unlike a tight crop's, never reaches a side."""
    if sum(side.mean() >= CROP_FRAME for side in _sides(ink)) < 3:
        return False
    paper = _largest(~ink)
    return not any(side.any() for side in _sides(paper)) and bool((ndimage.binary_fill_holes(paper) & ink).any())


def _without_clutter(n: np.ndarray) -> np.ndarray:
    """The ink map less regions far from the largest with less than half its ink (a toolbar's icons, specks)."""
    small = _sized(n, SHEET_SIDE)
    ink = _dilate(small, 1.0) > 0  # grown by a pixel, so that strokes touching only at corners are one region
    labels, count = ndimage.label(ink)
    if count < 2:
        return n
    ids = np.arange(1, count + 1)
    mass = ndimage.sum_labels(small, labels, ids)
    boxes = ndimage.find_objects(labels)  # each region's bounding box, as slices
    top, bottom, left, right = np.array([(r.start, r.stop - 1, c.start, c.stop - 1) for r, c in boxes]).T
    main = int(mass.argmax())
    extent = max(bottom[main] - top[main], right[main] - left[main]) + 1
    gap = np.maximum.reduce([top - bottom[main], top[main] - bottom, left - right[main], left[main] - right])
    far = (gap > NEAR * extent) & (mass < 0.5 * mass[main])
    if not far.any():
        return n
    clutter = _dilate(np.isin(labels, ids[far]).astype(np.float32), 1.0) > 0  # a pixel more: its fine edge too
    return n * ~np.asarray(Image.fromarray(clutter).resize(n.shape[::-1], Image.Resampling.NEAREST))


def _find_sheet(v: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, bool] | None:
    """The sheet (:func:`_is_sheet`) holding the digit, or None: the largest light region, read as ink (a note on a
    dark desk: then True, to read it again) or lying inside a desk, or the largest paper region inside ink (chrome)."""
    ink = n > 0  # around a sheet, even faint ink (a light grey title bar) is not paper
    if not ink.any() or ink.all():
        return None
    light = v > _otsu(v)  # a note is lighter than the desk and than its own ink, however unevenly lit
    note = _largest(light)
    filled = ndimage.binary_fill_holes(note)
    held = filled & ~light  # the note's own ink
    big = filled.sum() >= 0.05 * v.size and note.sum() >= 0.5 * filled.sum() and held.sum() >= 0.005 * filled.sum()
    is_note = big and float(v[note].mean()) > float(v[held].mean()) and _is_sheet(filled, held)  # paper over ink
    as_ink = is_note and float(n[note].mean()) > 0.25  # the ink map took the note for ink (on paper, it is about 0)
    # Or a note read as paper with its desk all around it, part of which was read as ink (wood grain, a cloth's pattern)
    if as_ink or (is_note and not any(side.any() for side in _sides(filled)) and (ink & ~filled).any()):
        return ndimage.binary_erosion(filled, iterations=EDGE), as_ink
    if max(side.mean() for side in _sides(ink)) < FRAME:
        return None  # no ink along most of a side: no frame (a desk, a title bar, a border) around a sheet
    filled = ndimage.binary_fill_holes(_largest(~ink))
    held = filled & ink
    if held.any() and _extent(held) >= HELD_EXTENT * _extent(filled, min) and _is_sheet(filled, held):
        return ndimage.binary_erosion(filled, iterations=EDGE), False
    return None


def _otsu(values: np.ndarray) -> float:
    """The level that splits values into two groups with the most variance between them (Otsu's method)."""
    counts, edges = np.histogram(values, 64)
    sums = counts * (edges[:-1] + edges[1:]) / 2
    below, below_sum = np.cumsum(counts)[:-1], np.cumsum(sums)[:-1]  # splitting after each bin but the last
    above, above_sum = counts.sum() - below, sums.sum() - below_sum
    between = below * above * (below_sum / np.maximum(below, 1) - above_sum / np.maximum(above, 1)) ** 2
    return float(edges[1 + int(between.argmax())])


def _extent(mask: np.ndarray, side: Any = max) -> int:
    """The longer (or, with ``side=min``, shorter) side of the region's bounding box."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return side(rows[-1] - rows[0], cols[-1] - cols[0]) + 1


def _is_sheet(filled: np.ndarray, held: np.ndarray) -> bool:
    """Whether a region with all it encloses (``filled``) is a rectangle, and what it holds are strokes, not a blob."""
    strokes = stroke_width(held.astype(np.float32)) <= STROKE_EXTENT * _extent(held)
    return strokes and _rectangularity(filled) >= RECTANGLE


def stroke_width(digit: np.ndarray) -> float:
    """The strokes' mean width in pixels: twice the ink's mass over their edges' length (its total variation)."""
    gy, gx = np.diff(digit, axis=0, append=0), np.diff(digit, axis=1, append=0)
    return 2 * float(digit.sum()) / max(float(np.hypot(gx, gy).sum()), 1e-6)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with zero padding, as two small matrix products (the arrays here are about 100 pixels)."""
    k0, k1 = (np.exp(-0.5 * ((np.arange(n)[:, None] - np.arange(n)[None, :]) / sigma) ** 2) for n in a.shape)
    return (k0 @ a @ k1.T / (k0.sum(1).max() * k1.sum(1).max())).astype(np.float32)  # the centre's weights sum to 1


def _dilate(a: np.ndarray, r: float) -> np.ndarray:
    """Grey dilation by a disc of radius ``r`` whose rim fades over one pixel, so that strokes widen smoothly."""
    k = int(np.ceil(r + 0.5))
    y, x = np.mgrid[-k : k + 1, -k : k + 1]
    weight = torch.from_numpy(np.minimum(1.0, r + 0.5 - np.hypot(y, x)).astype(np.float32)).reshape(-1, 1)
    weight[weight.shape[0] // 2] = 1.0  # the pixel itself
    patches = F.unfold(torch.tensor(a)[None, None], 2 * k + 1, padding=k)[0]  # each pixel's square around it
    return (patches * weight).amax(0).reshape(a.shape).numpy()


def _redraw(crop: np.ndarray, width: float, target: float) -> np.ndarray:
    """The digit's strokes, ``width`` output pixels wide, redrawn ``target`` wide: thin ones grown alike on either side
    (a dilation), so that strokes that nearly touch (a 4's open top) stay apart, as under a blur they would not; wide
    ones shaved by a level of the blurred, locally normalised ink."""
    # FINE times the output's size, with a margin for strokes to grow into
    fine = np.pad(np.clip(_sized(crop, FINE * BOX, enlarge=True), 0, 1), round(FINE * max(target, 1.0)))
    if width < target:
        # Every stroke to full ink, each against its own peak.
        fine = fine / np.maximum(ndimage.maximum_filter(fine, 4 * FINE + 1), 0.3 * float(fine.max()))

        def draw(r: float) -> np.ndarray | None:  # r: the radius in fine pixels; the width grows with it
            return _fit(_dilate(fine, r))

        lo, hi, grid, steps = 0.0, FINE * target, [], 8
    else:
        # Blur by half the excess, for the level to shave, but at most a pixel: a larger excess means loops the marker
        # closed, whose faint remains a wider blur would erase (8s came out as blobs).
        sigma = FINE * min(1.0, max(0.4, (width - target) / 2))
        b = _blur(fine, sigma)
        # Each stroke against its own peak, so that a faint thin stroke beside a dark crossing survives the level.
        b = b / np.maximum(ndimage.maximum_filter(b, 2 * round(FINE * target + 2 * sigma) + 1), 0.3 * float(b.max()))

        def draw(t: float) -> np.ndarray | None:
            ramp = min(RAMP, 2 * t)  # a soft edge, as MNIST's, that never lifts the background above zero
            return _fit(np.clip((b - t) / ramp + 0.5, 0.0, 1.0))

        # The width falls as the level rises until the darkest blob alone, fitted into the box, looks wide again:
        # take the first level on a grid that is thin enough, then bisect.
        lo, hi, grid, steps = 0.0, 1.0, np.linspace(0.02, 0.98, 17), 5

    def short(p: float) -> bool:  # short of the target: still too thin (widening) or too wide (thinning)
        out = draw(p)
        return out is not None and (stroke_width(out) - target) * (width - target) > 0

    for p in grid:
        if not short(p):
            hi = p
            break
        lo = p
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if short(mid) else (lo, mid)
    out = draw(hi if width < target else min(max(hi, 0.02), 0.98))
    return out if out is not None else _fit(fine)


def _span(profile: np.ndarray) -> tuple[int, int]:
    """The ink's first and last row (or column), less STRAY specks past a gap and a FRINGE of halo on either side."""
    filled = profile > 0
    starts = np.flatnonzero(filled & ~np.r_[False, filled[:-1]])
    ends = np.flatnonzero(filled & ~np.r_[filled[1:], False])
    runs = np.array([profile[a : b + 1].sum() for a, b in zip(starts, ends)])
    budget = STRAY * runs.sum()  # spent on runs from the start, then what is left on runs from the end
    first = min(int(np.searchsorted(np.cumsum(runs), budget, side="right")), len(runs) - 1)
    last = len(runs) - 1 - int(np.searchsorted(np.cumsum(runs[:first:-1]), budget - runs[:first].sum(), side="right"))
    c = np.cumsum(profile[starts[first] : ends[last] + 1], dtype=np.float64)
    top = int(np.searchsorted(c, FRINGE * c[-1], side="right"))
    return int(starts[first]) + top, int(starts[first]) + int(np.searchsorted(c, (1 - FRINGE) * c[-1]))


def _fit(ink: np.ndarray) -> np.ndarray | None:
    """MNIST's layout: crop to the ink, fit into 20×20 keeping the aspect ratio, centre the mass in 28×28."""
    if not ink.any():
        return None
    crop = ink[ndimage.find_objects(ink != 0, 1)[0]]  # to the ink's bounding box (label 1: True)
    small = np.clip(_sized(crop, BOX, enlarge=True), 0.0, None)
    h, w = small.shape
    if float(small.max()) <= 0:
        return None
    small = np.clip(small / float(small.max()), 0.0, 1.0)  # MNIST's strokes reach full intensity
    mass = [(small.sum(1 - axis) * np.arange(small.shape[axis])).sum() / small.sum() for axis in (0, 1)]
    # MNIST's centres of mass sit at pixel (14, 14)
    top, left = (min(max(round(CANVAS // 2 - c), 0), CANVAS - side) for c, side in zip(mass, (h, w)))
    out = np.zeros((CANVAS, CANVAS), np.float32)
    out[top : top + h, left : left + w] = small
    return out


def mnist_recipe(ink: np.ndarray) -> np.ndarray:
    """:func:`_fit`, with crisp strokes far thinner or thicker than MNIST's redrawn at a usual width: float32 28×28."""
    if not ink.any():
        raise InputError(BLANK_MESSAGE)
    (top, bottom), (left, right) = _span(ink.sum(1)), _span(ink.sum(0))
    crop = ink[top : bottom + 1, left : right + 1]
    out = _fit(crop)
    if out is None:
        raise InputError(BLANK_MESSAGE)
    width = stroke_width(out)
    if width < THIN:
        # A fine pen: widened beyond MNIST's median width, as a bare centre line lacks the ink of ends and crossings.
        return _redraw(crop, width, PEN_WIDTH)
    # Pixels the edges take to rise from 10% to 90% (their area over length): about 1 on MNIST, 2 or more blurred.
    if width > THICK and ((out > 0.1) & (out < 0.9)).sum() * width / (1.6 * float(out.sum())) < SOFT_EDGE:
        # A marker. Wide strokes with soft edges (a blurred photo, a small scan enlarged) stay: thinning them breaks
        # their loops and thin parts, and they are read well as they are, with about MNIST's ink.
        return _redraw(crop, width, MARKER_WIDTH)
    return out
