"""Pictures people take of a digit, made from real MNIST test digits (benchmarks/degrade.py's kinds): a note on a
desk, a window's screenshot, a small scan enlarged by a viewer. Each result must resemble its own original digit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from test_preprocess import assert_matches, corr, png_bytes

from benchmarks.degrade import centred, desk_photo, enlarge, ink_box, window_screenshot
from vae_hub.preprocess import CROP_MESSAGE, InputError, to_mnist

N = 24


@pytest.fixture(scope="module")
def digits(mnist_test) -> np.ndarray:
    return mnist_test[0][:N].numpy()


def test_a_note_on_a_desk_is_read_alone(digits) -> None:
    """A light note on wood, a dark desk or a patterned cloth, its edges in the picture: the note used to be read
    as ink, the digit a hole in a box."""
    rng = np.random.default_rng(0)
    outs = [to_mnist(desk_photo(enlarge(d, 200), rng)) for d in digits]
    assert_matches(outs, digits, mean=0.7, worst=0.2)  # notes are turned by up to 12°: lower correlations


def test_a_note_lit_from_one_side_is_read_without_bands(digits) -> None:
    """A white note on a dark desk, the light falling to 55% across the picture: the note is read again as dark ink
    on light paper. The desk used to be replaced by one level of the note's paper, and the dimmer side of the note
    came out as a band beside the digit (mean correlation 0.88, the worst 0.61)."""
    rng = np.random.default_rng(0)
    outs = []
    for d in digits:
        a = np.full((480, 640), 45.0)
        a[90:390, 170:470] = 235.0
        a[120:360, 200:440] -= 200 / 255 * np.asarray(Image.fromarray(d).resize((240, 240), Image.Resampling.BICUBIC))
        a *= np.linspace(1.0, 0.55, 640)[None, :: 1 if rng.random() < 0.5 else -1]
        a += rng.normal(0, 3, a.shape)
        outs.append(to_mnist(png_bytes(Image.fromarray(a.clip(0, 255).astype(np.uint8)), "JPEG", quality=85)))
    assert_matches(outs, digits, mean=0.92, worst=0.8)


def test_a_window_screenshot_is_read_without_its_chrome(digits) -> None:
    """A drawing app's window: title bar, toolbar, borders, scroll and status bars, light or dark theme. The title
    bar used to be read as ink and the digit shrank to a third."""
    rng = np.random.default_rng(0)
    outs = [to_mnist(window_screenshot(enlarge(d, 200), rng)) for d in digits]
    assert_matches(outs, digits, mean=0.8, worst=-1)


@pytest.mark.parametrize("resample", [Image.Resampling.BILINEAR, Image.Resampling.BICUBIC])
def test_a_small_scan_enlarged_smoothly_keeps_its_strokes(digits, resample: int) -> None:
    """The digit scanned 8 pixels tall, cropped to its ink and enlarged 25× by a viewer: mostly ink, soft
    everywhere. Its paper's noise used to be taken from the ink's slopes, and the strokes were cut (bicubic: mean
    correlation 0.73 with the plain recipe; bilinear already passed and guards); now it reads as the plain recipe
    (crop, scale, centre) reads the scan."""
    outs, plains = [], []
    for d in digits:
        box = ink_box(d)
        scan = Image.fromarray(box).resize((max(1, round(8 * box.shape[1] / box.shape[0])), 8), Image.Resampling.BOX)
        big = scan.resize((scan.width * 25, scan.height * 25), resample)
        outs.append(to_mnist(png_bytes(Image.fromarray(255 - np.asarray(big))))[0].numpy())
        plains.append(centred(np.asarray(scan) / 255.0))
    ratio = np.sum(outs) / np.sum(plains)
    assert 0.8 < ratio < 1.25, ratio
    assert np.mean([corr(o, p) for o, p in zip(outs, plains)]) > 0.85


def test_a_digit_on_an_oval_sheet_framed_by_a_grey_desk_gets_the_crop_message() -> None:
    """An oval sheet on a textured grey desk that lines every side of the picture, a 7 on it: the desk is read as
    ink all around, and there is no rectangle of paper to read alone. Better to ask for a crop than to read the
    frame as the digit (it came out as a ring)."""
    rng = np.random.default_rng(0)
    oval = Image.new("L", (640, 480), 0)
    ImageDraw.Draw(oval).ellipse((30, 20, 610, 460), fill=255)
    sheet = np.asarray(oval) > 0
    a = np.where(sheet, 245 + rng.normal(0, 2, sheet.shape), 150 + rng.normal(0, 12, sheet.shape))
    im = Image.fromarray(a.clip(0, 255).astype(np.uint8))
    ImageDraw.Draw(im).line([(250, 150), (390, 150), (300, 350)], fill=20, width=18)
    with pytest.raises(InputError) as info:
        to_mnist(png_bytes(im))
    assert str(info.value) == CROP_MESSAGE
