"""vae_hub.preprocess.to_mnist on real-looking inputs made from real MNIST test digits, and on bad inputs."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw, ImageFilter

from benchmarks.degrade import on_white, pen_ink
from vae_hub.preprocess import (
    BLANK_MESSAGE,
    THICK,
    THIN,
    InputError,
    stroke_width,
    to_float_array,
    to_mnist,
)

N_DIGITS = 40


def corr(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Pearson correlation of two images' pixels."""
    a, b = (torch.as_tensor(np.asarray(t), dtype=torch.float64).flatten() for t in (a, b))
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / (a.norm() * b.norm()))


@pytest.fixture(scope="module")
def digits(mnist_test) -> tuple[np.ndarray, np.ndarray]:
    """The first test digits as uint8 (N, 28, 28), with their labels."""
    images, labels = mnist_test
    return images[:N_DIGITS].numpy(), labels[:N_DIGITS].numpy()


def assert_valid(x: torch.Tensor) -> None:
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1


def shifted_corr(a: torch.Tensor, b: np.ndarray) -> float:
    """The best correlation over shifts of up to one pixel: a thin stroke one pixel off correlates poorly."""
    return max(corr(torch.roll(a, (dy, dx), (0, 1)), b) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def assert_matches(outs: list[torch.Tensor], originals: np.ndarray, mean: float, worst: float = 0.75) -> None:
    """Each result is a valid digit that correlates with its original digit (not merely with 'a digit')."""
    cs, best = [], []
    for out, d in zip(outs, originals):
        assert_valid(out)
        cs.append(corr(out[0], d / 255.0))
        best.append(shifted_corr(out[0], d / 255.0))
    assert np.mean(cs) > mean and min(best) > worst, (np.mean(cs), min(best))
    # And a result resembles its own original far more than the other digits (pairs 0↔1, 1↔2, …).
    others = [corr(out[0], originals[(i + 1) % len(originals)] / 255.0) for i, out in enumerate(outs)]
    assert np.mean(cs) > np.mean(others) + 0.3


def png_bytes(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


# --- real-looking inputs ------------------------------------------------------------------------------------


def test_mnist_digits_come_back_unchanged(digits) -> None:
    images, _ = digits
    # The few MNIST digits with strokes thinner than THIN or thicker than THICK (2 of these 40) are redrawn at a
    # usual width, as a fine pen's or a marker's would be; every other one must come back as it was.
    usual = np.array([THIN <= stroke_width(d / 255.0) <= THICK for d in images])
    assert usual.sum() >= 36
    outs = [to_mnist(d) for d in images]
    assert_matches([o for o, u in zip(outs, usual) if u], images[usual], mean=0.97, worst=0.9)
    assert_matches([o for o, u in zip(outs, usual) if not u], images[~usual], mean=0.5, worst=0.5)
    for out in outs:  # the MNIST recipe: a 20-pixel box, the centre of mass at (14, 14)
        m = out[0] > 0
        rows, cols = torch.nonzero(m.any(1)).flatten(), torch.nonzero(m.any(0)).flatten()
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20
        w = out[0] / out[0].sum()
        ar = torch.arange(28.0)
        assert abs(float((w.sum(1) * ar).sum()) - 14) <= 1 and abs(float((w.sum(0) * ar).sum()) - 14) <= 1


def on_paper(ink: np.ndarray) -> np.ndarray:
    """Ink in [0, 1] as dark ink on light paper, uint8."""
    return (225 - 190 * ink).round().astype(np.uint8)


def assert_keeps_ink(outs: list[torch.Tensor], originals: np.ndarray) -> None:
    """The strokes keep MNIST's ink: the mean pixel value within 15% of the originals' (thinned strokes gave 60–75%)."""
    ratio = float(torch.stack(outs).mean()) / (originals.mean() / 255)
    assert 0.85 < ratio < 1.15, ratio


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.5])
def test_out_of_focus_photo_keeps_its_strokes(digits, sigma: float) -> None:
    """A Gaussian blur of 0.5, 1 or 1.5 MNIST pixels (5 to 15 pixels on a 280-pixel photo)."""
    images, _ = digits
    outs = []
    for d in images:
        big = Image.fromarray(d).resize((280, 280), Image.Resampling.BICUBIC)
        outs.append(to_mnist(on_paper(np.asarray(big.filter(ImageFilter.GaussianBlur(10 * sigma))) / 255.0)))
    assert_keeps_ink(outs, images)
    assert_matches(outs, images, mean=(0.89, 0.83, 0.76)[int(2 * sigma) - 1], worst=0.55)


@pytest.mark.parametrize("sizes", [(8, 9, 10, 11), (12, 13, 14, 15, 16)])
def test_low_resolution_scan_keeps_its_strokes(digits, sizes: tuple[int, ...]) -> None:
    """The digit scanned 8 to 16 pixels tall (box-averaged, as a sensor does), enlarged smoothly to 280 pixels."""
    images, _ = digits
    outs = []
    for i, d in enumerate(images):
        frame = round(28 * sizes[i % len(sizes)] / 20)  # MNIST's digit is 20 of its 28 pixels tall
        scan = Image.fromarray(d).resize((frame, frame), Image.Resampling.BOX)
        smooth = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC)[i % 2]
        outs.append(to_mnist(on_paper(np.asarray(scan.resize((280, 280), smooth)) / 255.0)))
    assert_keeps_ink(outs, images)
    assert_matches(outs, images, mean=0.8 if sizes[0] < 12 else 0.86, worst=0.6)


@pytest.mark.parametrize("pen", [4, 90])
def test_fine_pen_and_marker_get_mnist_strokes(pen: int) -> None:
    """A 3 and a 7 drawn with a 4-pixel pen and a 90-pixel marker on a 500-pixel sheet come out with strokes
    of a usual MNIST width (a fine pen's would otherwise be under 1 pixel, a marker's about 4)."""
    for path in ([(150, 100), (330, 80), (230, 230), (340, 330), (150, 400)], [(120, 90), (360, 90), (200, 420)]):
        sheet = Image.new("L", (500, 500), 240)
        ImageDraw.Draw(sheet).line(path, fill=20, width=pen, joint="curve")
        out = to_mnist(sheet)[0].numpy()
        assert 2.0 < stroke_width(out) < 3.4, (pen, stroke_width(out))


def test_fine_pen_digits_keep_their_shape(digits) -> None:
    """Each digit reduced to its centre line (the benchmark's thin_pen: about 0.75 pixels) on white paper: widened to
    MNIST's strokes, loops and gaps stay as drawn. A blur and a level closed them (mean correlation 0.80, worst
    0.49); a dilation keeps them (0.90, 0.71)."""
    images, _ = digits
    rng = np.random.default_rng(0)
    outs = [to_mnist(on_white(pen_ink(d, rng), rng)) for d in images]
    assert_keeps_ink(outs, images)
    assert_matches(outs, images, mean=0.85, worst=0.65)


def test_photo_of_dark_ink_on_grey_noisy_paper_as_jpeg(digits) -> None:
    """Inverted, upscaled 10×, shifted on a larger grey sheet with noise, then JPEG-compressed at quality 60."""
    images, _ = digits
    rng = np.random.default_rng(0)
    outs = []
    for d in images:
        sheet = Image.new("L", (640, 480), 255)
        sheet.paste(Image.fromarray(255 - d).resize((280, 280), Image.Resampling.BICUBIC),
                    (int(rng.integers(0, 360)), int(rng.integers(0, 200))))  # fmt: skip
        paper = np.asarray(sheet, np.float32) * 0.75 + 40 + rng.normal(0, 8, (480, 640))
        outs.append(to_mnist(png_bytes(Image.fromarray(paper.clip(0, 255).astype(np.uint8)), "JPEG", quality=60)))
    assert_matches(outs, images, mean=0.9)


def test_unevenly_lit_paper(digits) -> None:
    """Light falling off from 100% to 35% across the sheet: the ink's contrast varies threefold."""
    images, _ = digits
    light = np.linspace(1.0, 0.35, 600)[None, :] * np.linspace(1.0, 0.8, 500)[:, None]
    outs = []
    for i, d in enumerate(images):
        sheet = np.ones((500, 600), np.float32)
        big = np.asarray(Image.fromarray(255 - d).resize((300, 300), Image.Resampling.BICUBIC)) / 255.0
        x0 = 20 + 6 * i  # across the gradient
        sheet[100:400, x0 : x0 + 300] = big
        outs.append(to_mnist(sheet * light))
    assert_matches(outs, images, mean=0.9)


@pytest.mark.parametrize("desk", [235, 150])
def test_note_on_a_darker_desk(digits, desk: int) -> None:
    """A white note (the digit's own white square) on a slightly or much darker desk, as JPEG: the desk is not ink."""
    images, _ = digits
    outs = []
    for i, d in enumerate(images[:12]):
        sheet = Image.new("L", (900, 700), desk)
        sheet.paste(Image.fromarray(255 - d).resize((420, 420), Image.Resampling.BICUBIC), (60 + 30 * i, 120))
        outs.append(to_mnist(png_bytes(sheet.convert("RGB"), "JPEG", quality=70)))
    assert_matches(outs, images[:12], mean=0.9)


def test_strokes_on_the_transparent_drawing_canvas(digits) -> None:
    """A drawing as the app's canvas sends it: a PNG of black strokes, the ink only in the alpha channel."""
    images, _ = digits
    outs = []
    for i, d in enumerate(images):
        canvas = np.zeros((280, 280, 4), np.uint8)
        size = 120 + 3 * i
        canvas[20 : 20 + size, 40 : 40 + size, 3] = np.asarray(
            Image.fromarray(d).resize((size, size), Image.Resampling.BICUBIC)
        )
        outs.append(to_mnist(png_bytes(Image.fromarray(canvas))))
    assert_matches(outs, images, mean=0.92)


def test_a_drawn_one_is_a_centred_vertical_bar() -> None:
    im = Image.new("RGBA", (800, 800), (0, 0, 0, 0))
    ImageDraw.Draw(im).line([(300, 100), (300, 700)], fill=(0, 0, 0, 255), width=50)
    out = to_mnist(im)[0]
    assert_valid(out[None])
    cols = out.sum(0)
    assert cols.argmax() in (13, 14, 15) and cols[:10].sum() == 0 and cols[19:].sum() == 0
    assert int((out.sum(1) > 0).sum()) == 20  # 20 rows tall


def test_rgba_upload_with_a_transparent_margin_reads_as_the_picture(digits) -> None:
    """A picture of dark ink on light paper with a transparent margin around it (a window capture's shadow, a
    sticker): it is read as the picture, not as the outline of its opaque part."""
    images, _ = digits
    rng = np.random.default_rng(1)
    outs = []
    for d in images[:12]:
        ink = np.asarray(Image.fromarray(d).resize((300, 300)), np.float32) / 255
        photo = (float(rng.uniform(170, 235)) - 150 * ink + rng.normal(0, 4, ink.shape)).clip(0, 255).astype(np.uint8)
        canvas = np.zeros((400, 500, 4), np.uint8)
        canvas[50:350, 100:400, :3] = photo[..., None]
        canvas[50:350, 100:400, 3] = 255
        canvas[30:370, 80:420, 3] = np.maximum(canvas[30:370, 80:420, 3], 60)  # a faint shadow around it
        out = to_mnist(png_bytes(Image.fromarray(canvas)))
        assert shifted_corr(out[0], to_mnist(photo)[0].numpy()) > 0.9  # the same digit, give or take a pixel
        outs.append(out)
    assert_matches(outs, images[:12], mean=0.9)


def test_a_wide_brush_stroke_on_a_transparent_canvas_is_ink() -> None:
    """A single wide stroke straight down, or a thick bar from edge to edge, is ink (a "1"), not a blank photo."""
    for size, (rows, columns) in ((800, (slice(150, 650), slice(380, 440))), (320, (slice(None), slice(120, 200)))):
        stroke = np.zeros((size, size, 4), np.uint8)
        stroke[rows, columns, 3] = 255
        out = to_mnist(stroke)[0].numpy()
        cols = out.sum(0)
        assert out.mean() > 0.05 and cols[cols > 0.5].size < 10, size  # a vertical bar of ink, a few pixels wide


def test_coloured_strokes_on_a_transparent_canvas_are_ink(digits) -> None:
    """A red brush on the transparent canvas: the strokes' alpha is the ink, as for black strokes."""
    d = digits[0][0]
    canvas = np.zeros((800, 800, 4), np.uint8)
    canvas[100:600, 150:650, 0] = 220
    canvas[100:600, 150:650, 3] = np.asarray(Image.fromarray(d).resize((500, 500), Image.Resampling.BICUBIC))
    assert corr(to_mnist(canvas)[0], d / 255.0) > 0.9


def test_one_pixel_diagonal_strokes_are_ink() -> None:
    """A '7' drawn with 1-pixel strokes on a 30×30 canvas: its diagonal's pixels touch only at corners, yet
    they are a stroke, not isolated specks."""
    a = np.zeros((30, 30), np.uint8)
    a[3, 5:25] = 255
    a[np.arange(4, 26), np.arange(24, 2, -1)] = 255
    out = to_mnist(a)[0]
    assert int((out.sum(1) > 0).sum()) == 20 and int((out > 0.5).sum()) > 30


@pytest.mark.parametrize("kind", ["pil", "path", "bytes", "tensor", "rgb", "rgba_opaque", "uint16", "float", "bool"])
def test_input_types(digits, kind: str, tmp_path: Path) -> None:
    d = digits[0][0]
    value = {
        "pil": Image.fromarray(d),
        "path": str(tmp_path / "d.png"),
        "bytes": png_bytes(Image.fromarray(d)),
        "tensor": torch.from_numpy(d).float() / 255,
        "rgb": np.repeat(d[..., None], 3, 2),
        "rgba_opaque": np.dstack([255 - d, 255 - d, 255 - d, np.full_like(d, 255)]),
        "uint16": d.astype(np.uint16) * 257,
        "float": d / 255.0,
        "bool": d > 127,
    }[kind]
    Image.fromarray(d).save(tmp_path / "d.png")
    assert corr(to_mnist(value)[0], d / 255.0) > 0.85


# --- special files --------------------------------------------------------------------------------------


def test_animated_gif_uses_the_first_frame(digits, tmp_path: Path) -> None:
    (a, b), _ = digits[0][:2], None
    path = tmp_path / "anim.gif"
    Image.fromarray(a).save(path, save_all=True, append_images=[Image.fromarray(b)], duration=100, loop=0)
    out = to_mnist(str(path))[0]
    assert corr(out, a / 255.0) > 0.85 > corr(out, b / 255.0)


def test_16_bit_png(digits, tmp_path: Path) -> None:
    d = digits[0][1]
    path = tmp_path / "deep.png"
    Image.fromarray(d.astype(np.uint16) * 257).save(path)
    assert Image.open(path).mode.startswith("I")
    assert corr(to_mnist(str(path))[0], d / 255.0) > 0.85


@pytest.mark.parametrize("mode", ["CMYK", "P", "1", "LA", "I", "F"])
def test_other_colour_modes(digits, mode: str) -> None:
    d = digits[0][2]
    im = Image.fromarray(255 - d).resize((112, 112)).convert(mode)
    data = png_bytes(im, "JPEG") if mode == "CMYK" else None
    out = to_mnist(data if data is not None else im)
    assert corr(out[0], d / 255.0) > 0.75


def test_exif_rotated_phone_photo(digits) -> None:
    d = digits[0][3]
    upright = Image.fromarray(255 - d).resize((300, 300)).convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # the camera's sensor orientation
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    data = png_bytes(stored, "JPEG", exif=exif.tobytes(), quality=90)
    good = corr(to_mnist(data)[0], d / 255.0)
    assert good > 0.85
    assert corr(to_mnist(stored)[0], d / 255.0) < good - 0.2  # without the orientation, it is another picture


def traced_peak(fn) -> tuple[object, int]:
    """fn()'s result and the peak of memory allocated meanwhile, as tracemalloc sees it (numpy reports its
    arrays to it; PIL's own buffers it does not see)."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_large_inputs_are_reduced_before_they_are_converted(digits, tmp_path: Path) -> None:
    """A 49-megapixel 1-bit PNG (a file of a few KB) and a 25-megapixel RGBA array: converted at full size to
    float32 RGBA they took 1.2 to 1.5 GB; reduced band by band, a few MB. The digit still comes out right."""
    d = digits[0][5]
    sheet = Image.new("1", (7000, 7000), 1)
    big = Image.fromarray(255 - d).resize((5000, 5000), Image.Resampling.BICUBIC)
    sheet.paste(big.point(lambda v: 255 * (v > 127), mode="1"), (1000, 1200))
    path = tmp_path / "huge.png"
    sheet.save(path, optimize=True)
    del sheet, big
    assert path.stat().st_size < 200_000
    out, peak = traced_peak(lambda: to_mnist(str(path)))
    assert peak < 40 * 2**20, peak / 2**20
    assert corr(out[0], d / 255.0) > 0.85
    canvas = np.zeros((5000, 5000, 4), np.uint8)  # a drawing: the ink in the alpha channel
    canvas[500:4500, 700:4700, 3] = np.asarray(Image.fromarray(d).resize((4000, 4000), Image.Resampling.BICUBIC))
    out, peak = traced_peak(lambda: to_mnist(canvas))
    assert peak < 40 * 2**20, peak / 2**20
    assert corr(out[0], d / 255.0) > 0.9
    small = to_float_array(canvas)
    assert small.shape == (294, 294, 4) and small.dtype == np.float32  # box-reduced by 5000 // 280 = 17


# --- bad inputs: every one gets a clear InputError --------------------------------------------------------


def png_header_only(width: int, height: int, mode: int = 0) -> bytes:
    """A PNG that declares width×height but holds almost no data: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _bad_inputs(tmp_path: Path, digit: np.ndarray) -> dict[str, tuple[object, str]]:
    good_png = png_bytes(Image.fromarray(digit).resize((200, 200)))
    good_jpg = png_bytes(Image.fromarray(digit).resize((200, 200)), "JPEG")
    files = {
        "truncated.png": good_png[: len(good_png) // 2],
        "truncated.jpg": good_jpg[: len(good_jpg) // 2],
        "text.png": b"this is not an image, just text\n" * 10,
        "empty.png": b"",
        "bomb.png": png_header_only(20000, 20000),
        "megabomb.png": png_header_only(100000, 100000),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    canvas = np.zeros((800, 800, 4), np.uint8)
    return {
        "blank canvas": (canvas, "draw a digit first"),
        "all white": (np.full((300, 300, 3), 255, np.uint8), "draw a digit first"),
        "all black": (np.zeros((300, 300), np.uint8), "draw a digit first"),
        "uniform grey": (np.full((300, 300), 0.5), "draw a digit first"),
        "faint noise only": (np.random.default_rng(0).normal(0.5, 0.01, (300, 300)).clip(0, 1), "draw a digit first"),
        "1×1": (np.ones((1, 1), np.uint8), "too small"),
        "3×500": (np.random.default_rng(0).integers(0, 255, (500, 3), dtype=np.uint8), "too small"),
        "20000×20000 array": (np.broadcast_to(np.zeros(1, np.uint8), (20000, 20000)), "megapixels"),
        "20000×20000 PNG": (str(tmp_path / "bomb.png"), "megapixels"),
        "decompression bomb": (str(tmp_path / "megabomb.png"), "megapixels"),
        "truncated PNG": (str(tmp_path / "truncated.png"), "truncated or corrupt"),
        "truncated JPEG": (str(tmp_path / "truncated.jpg"), "truncated or corrupt"),
        "text file named .png": (str(tmp_path / "text.png"), "not an image in an accepted format"),
        "empty file": (str(tmp_path / "empty.png"), "empty"),
        "missing file": (str(tmp_path / "nope.png"), "could not be read"),
        "a folder": (str(tmp_path), "could not be read"),
        "NaN": (np.full((50, 50), np.nan), "NaN"),
        "inf": (np.where(np.eye(50) > 0, np.inf, 0.0), "infinite"),
        "complex dtype": (np.zeros((50, 50), np.complex64), "Unsupported array type"),
        "object dtype": (np.empty((50, 50), object), "Unsupported array type"),
        "string dtype": (np.full((50, 50), "a"), "Unsupported array type"),
        "1-D array": (np.zeros(784), "shape"),
        "4-D array": (np.zeros((1, 28, 28, 1)), "shape"),
        "5 channels": (np.zeros((28, 28, 5)), "shape"),
        "blank drawing": (png_bytes(Image.fromarray(canvas)), BLANK_MESSAGE),
        "None": (None, "No image"),
        "a list": ([[0, 1], [1, 0]], "Unsupported input"),
    }


def test_bad_inputs_get_clear_messages(tmp_path: Path, digits) -> None:
    for name, (value, message) in _bad_inputs(tmp_path, digits[0][0]).items():
        with pytest.raises(InputError) as info:
            to_mnist(value)
        text = str(info.value)
        assert message.lower() in text.lower(), (name, text)
        assert "\n" not in text and str(tmp_path) not in text, (name, text)  # one line, and never a server path


# --- property test: a valid digit or a clear error, never anything else -----------------------------------

DTYPES = [np.uint8, np.uint16, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_]


@st.composite
def images(draw: st.DrawFn) -> object:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    h, w = draw(st.integers(1, 70)), draw(st.integers(1, 70))
    shape = draw(st.sampled_from([(h, w), (h, w, 1), (h, w, 2), (h, w, 3), (h, w, 4), (h,), (h, w, 5)]))
    if dtype.kind == "f":
        bits = dtype.itemsize * 8
        elements = st.one_of(st.floats(0, 1, width=bits), st.floats(allow_nan=True, allow_infinity=True, width=bits))
        a = draw(hnp.arrays(dtype, shape, elements=elements))
    else:
        a = draw(hnp.arrays(dtype, shape))
    kind = draw(st.sampled_from(["array", "pil", "tensor"]))
    if kind == "pil" and a.ndim in (2, 3) and a.dtype == np.uint8 and (a.ndim == 2 or a.shape[2] in (3, 4)):
        return Image.fromarray(a)
    if kind == "tensor" and a.dtype.kind in "uif" and a.dtype != np.uint16:
        return torch.from_numpy(a.copy())
    return a


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images())
def test_property_valid_digit_or_clear_error(image: object) -> None:
    try:
        out = to_mnist(image)
    except InputError as e:
        assert str(e)  # a message, never an empty one
        return
    assert_valid(out)
    assert out.max() == 1.0  # a found digit reaches full intensity, as MNIST's do
