"""Uploads are decoded with bounded work: hostile files of every kind get a one-line InputError, quickly, or give
the right digit (their builders are benchmarks/bench_decode.py's, which measures them)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image

from benchmarks import bench_decode as files
from vae_hub.images import ACCEPTED, DECODE_BYTES, MAX_CHUNKS, WEBP_COPIES, InputError, open_image
from vae_hub.preprocess import to_mnist

QUICK = 1.0  # seconds: a refusal comes from the header, a stuffed file's walk is linear


def refused(data: bytes, message: str, tmp_path: Path) -> str:
    """The message ``to_mnist`` gives for these bytes, read from a file as the app does: one line, no path."""
    path = tmp_path / "upload.png"  # the name says nothing: the format is read from the bytes
    path.write_bytes(data)
    start = time.perf_counter()
    with pytest.raises(InputError) as info:
        to_mnist(str(path))
    text = str(info.value)
    assert time.perf_counter() - start < QUICK, text
    assert message.lower() in text.lower(), text
    assert "\n" not in text and str(tmp_path) not in text and "upload.png" not in text, text
    assert " at 0x" not in text, text  # no Python object's repr
    return text


def reads_the_digit(data: bytes, size: int = 100) -> None:
    """The upload gives the same digit as the plain picture it was made from (``size`` pixels a side)."""
    expected = to_mnist(files.digit_image(size))[0].numpy()
    out = to_mnist(data)[0].numpy()
    assert np.corrcoef(out.ravel(), expected.ravel())[0, 1] > 0.9


@pytest.mark.parametrize("name", ["eps", "tiff", "ico", "jpeg2000", "avif", "qoi", "icns", "pdf"])
def test_other_formats_are_refused_from_their_bytes(name: str, tmp_path: Path, monkeypatch) -> None:
    """TIFF, ICO and the rest are not decoded at all, and EPS never reaches Ghostscript (Pillow's EPS plugin)."""

    def never(*args: object) -> None:
        raise AssertionError("Pillow's EPS plugin was asked to open an upload")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", never)
    text = refused(files.CASES[name][1](), "not an image in an accepted format", tmp_path)
    assert ACCEPTED in text


@pytest.mark.parametrize(
    "name", ["png_declared_huge", "jpeg_declared_huge", "webp_declared_50mp", "gif_frame_outside", "bmp_declared_huge"]
)
def test_huge_declared_sizes_are_refused_before_decoding(name: str, tmp_path: Path) -> None:
    refused(files.CASES[name][1](), "megapixels", tmp_path)


def test_each_format_has_a_memory_budget(tmp_path: Path) -> None:
    """A 2 KB WebP declaring 16 megapixels is under the pixel limit, but libwebp and Pillow would hold four RGBA
    copies of its canvas: over the decoder's budget, so it is refused from its header."""
    side = 4000
    assert side * side * 4 * WEBP_COPIES > DECODE_BYTES
    refused(files.webp_declared(side, side), "limit for this WebP", tmp_path)
    refused(files.jpeg_large(7000, True, 0), "limit for this JPEG", tmp_path)  # a progressive 4:4:4's coefficients


def test_a_jpeg_with_repeated_scans_is_refused(tmp_path: Path) -> None:
    """1 MB, 30,000 repetitions of a scan of a 2000×2000 picture: each walks all 62,500 blocks again."""
    refused(files.jpeg_scans(2000, 30_000), "too much work", tmp_path)


@pytest.mark.parametrize(
    "build",
    [
        lambda: files.png_stuffed(200_000),
        lambda: files.gif(100, 100, comments=1_000_000),
        lambda: files.jpeg_comments(200_000),
        lambda: files.webp_stuffed(200_000),
    ],
    ids=["png_text_chunks", "gif_comment_blocks", "jpeg_comments", "webp_unknown_chunks"],
)
def test_files_stuffed_with_blocks_are_refused_quickly(build, tmp_path: Path) -> None:
    refused(build(), "too many blocks", tmp_path)


def test_stuffing_within_bounds_still_reads_the_digit() -> None:
    """Text, comments and unknown chunks below the cap are skipped, not refused."""
    reads_the_digit(files.png_stuffed(1000, b"some text"), 200)
    reads_the_digit(files.png_ztxt(2), 200)
    reads_the_digit(files.webp_stuffed(1000))
    digit = files.encode(files.digit_image(100), "GIF")
    table = 13 + (3 << ((digit[10] & 7) + 1) if digit[10] & 0x80 else 0)  # the header and global colour table
    reads_the_digit(digit[:table] + b"\x21\xfe\x03abc\x00" * 1000 + digit[table:])


def test_the_block_cap_counts_every_png_chunk_iend_included(tmp_path: Path) -> None:
    """Exactly MAX_CHUNKS chunks are read; one more is refused."""
    raw, own, pos = files.png_stuffed(0), 0, 8
    while pos < len(raw):  # the digit's own chunks: IHDR, IDAT…, IEND
        own, pos = own + 1, pos + 12 + int.from_bytes(raw[pos : pos + 4], "big")
    assert open_image(files.png_stuffed(MAX_CHUNKS - own)).size == (200, 200)
    refused(files.png_stuffed(MAX_CHUNKS - own + 1), "too many blocks", tmp_path)


@pytest.mark.parametrize("build", [files.apng, files.webp_animated, lambda n: files.gif_real(100, frames=n)],
                         ids=["apng", "webp", "gif"])  # fmt: skip
def test_animations_give_their_first_frame(build) -> None:
    start = time.perf_counter()
    reads_the_digit(build(300))
    assert time.perf_counter() - start < QUICK


def test_only_the_checked_png_header_reaches_pillow() -> None:
    """Pillow takes the last IHDR it meets: a 121-megapixel bomb behind a 100×100 header decodes at 100×100."""
    assert open_image(files.png_second_ihdr(11_000, colour=0)).size == (100, 100)


def test_malformed_jpeg_headers_are_refused_quickly(tmp_path: Path) -> None:
    """50 MB of fill bytes are skipped at C speed; a frame with no components or zero sampling factors is corrupt."""
    refused(files.CASES["jpeg_fill_50mb"][1](), "truncated or corrupt", tmp_path)
    refused(files.jpeg_frame_byte(9, 0), "truncated or corrupt (bad frame header)", tmp_path)
    refused(files.jpeg_frame_byte(11, 0), "truncated or corrupt (bad frame header)", tmp_path)
    png = tmp_path / "whole.png"
    Image.new("L", (50, 50), 255).save(png)
    refused(png.read_bytes()[:40], "truncated or corrupt (cannot identify image file)", tmp_path)  # no repr in it


def test_run_length_encoded_bmps_are_refused(tmp_path: Path) -> None:
    """Pillow decodes them in Python, a pixel at a time (its BmpRleDecoder), so their cost is not bounded by the
    file's size."""
    refused(files.bmp_header(7000, 7000, 8, 1, b"\0\0" * 7000), "compressed (RLE) BMP", tmp_path)


def test_missing_files_and_folders_get_the_same_message(tmp_path: Path) -> None:
    """Whether a path exists is never told, nor the path itself."""
    texts = set()
    for source in (tmp_path / "nope.png", tmp_path, Path("/etc/passwd-nope")):
        with pytest.raises(InputError) as info:
            to_mnist(str(source))
        texts.add(str(info.value))
    assert texts == {"The upload could not be read: upload the picture again."}


def test_an_accepted_image_still_reads_at_every_format() -> None:
    im = files.digit_image(300)
    for fmt, kw in (("PNG", {}), ("JPEG", {"progressive": True}), ("WEBP", {}), ("GIF", {}), ("BMP", {})):
        reads_the_digit(files.encode(im.convert("RGB") if fmt == "WEBP" else im, fmt, **kw), 300)
