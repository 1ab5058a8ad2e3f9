"""Any accepted image input as a small float array, with bounded work: uploads, arrays and PIL images.

An upload is read as bytes and checked before any decoder sees it. Only PNG, JPEG, WebP, GIF and BMP are accepted,
recognised from their first bytes, never from a name. Each file's structure is walked up to its first frame (at most
:data:`MAX_CHUNKS` chunks, blocks or segments), its cost is estimated from its header (pixels, the decoder's memory
for that format, a progressive JPEG's scans) and refused over budget, and Pillow is handed a minimal copy: the first
frame and what it needs, without text, comments, extra frames, or metadata beyond the EXIF orientation. So any
accepted upload up to :data:`MAX_FILE_BYTES` decodes in bounded time and memory (``benchmarks/bench_decode.py``,
``docs/robustness.md``). Large JPEGs decode at reduced size (draft mode), and large images are box-reduced band by
band before anything is converted to floats. Messages speak of "the upload", never of a path.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from typing import Any

import numpy as np
from PIL import Image
from torch import Tensor

MAX_FILE_BYTES = 50 * 2**20
MAX_PIXELS = 50_000_000  # refuse larger images before decoding them (a 20000×20000 PNG, a decompression bomb)
DECODE_BYTES = 200 * 2**20  # the decoder's memory for one image: with the upload itself, under 300 MB a request
MAX_CHUNKS = 100_000  # chunks, blocks or segments walked before a file is refused: legitimate files have far fewer
MAX_SCAN_BLOCKS = 25_000_000  # a JPEG's scans × its 8×8 blocks: each scan walks every block (about 1 s in all)
WEBP_COPIES = 4  # RGBA copies of a WebP canvas while it decodes: libwebp's canvas and previous one, Pillow's two
EXIF_BYTES = 65535  # an EXIF block kept for the orientation (a JPEG segment's maximum)
MIN_SIDE = 8  # below this an image cannot hold a recognisable digit
MAX_ASPECT = 20
WORK_SIDE = 280  # images are reduced towards this size (10× the output) before any float conversion
ACCEPTED = "PNG, JPEG, WebP, GIF or BMP"
NOT_ACCEPTED = f"The upload is not an image in an accepted format: upload a {ACCEPTED} file."
UNREADABLE = "The upload could not be read: upload the picture again."


class InputError(ValueError):
    """An input that cannot be turned into a digit; the message says why, in one line meant for the user."""


def corrupt(detail: object = "") -> InputError:
    text = str(detail).splitlines()[0][:120] if str(detail) else ""
    return InputError(f"The upload is truncated or corrupt{f' ({text})' if text else ''}; save it again and retry.")


# --- reading and checking uploads ---------------------------------------------------------------------------


def read_upload(source: str | os.PathLike | bytes) -> bytes:
    """An upload's bytes (a path is read here), at most :data:`MAX_FILE_BYTES`; the same message whether a path is
    missing, a folder or unreadable."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        try:
            with open(source, "rb") as f:
                # At most one byte more than the limit, and no more than the file's size: read(n) allocates n.
                data = f.read(min(os.fstat(f.fileno()).st_size, MAX_FILE_BYTES) + 1)
        except (OSError, ValueError):
            raise InputError(UNREADABLE) from None
    if not data:
        raise InputError(f"The upload is empty (0 bytes): upload a {ACCEPTED} image.")
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"The upload is larger than {MAX_FILE_BYTES // 2**20} MB, the limit: shrink it first.")
    return data


def sniff(data: bytes) -> str:
    """The upload's format from its first bytes (Pillow's name for it), or :class:`InputError`."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for signature, fmt in ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"),
                           (b"GIF89a", "GIF"), (b"BM", "BMP")):  # fmt: skip
        if data.startswith(signature):
            return fmt
    raise InputError(NOT_ACCEPTED)


def check_size(h: int, w: int) -> None:
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


def _budget(fmt: str, w: int, h: int, bytes_per_pixel: float) -> None:
    """Refuse, from the header, an image too large in pixels or in the memory its decoder would take."""
    check_size(h, w)
    if w * h * bytes_per_pixel > DECODE_BYTES:
        limit = DECODE_BYTES / bytes_per_pixel / 1e6
        raise InputError(
            f"The image is {w}×{h} pixels ({w * h / 1e6:.0f} megapixels); the limit for this {_NAMES[fmt]} is "
            f"{limit:.0f}. Shrink it first: a digit needs far fewer pixels."
        )


_NAMES = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "GIF": "GIF", "BMP": "BMP"}


def _too_many() -> InputError:
    return InputError(f"The upload holds too many blocks of data (over {MAX_CHUNKS}); save it again and retry.")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(data: bytes) -> bytes:
    """IHDR, the palette and transparency, the EXIF orientation, and the image data in one IDAT chunk (text,
    an animation's frames and everything else are left out)."""
    pos, kept, idat = 8, [data[:8]], []
    for _ in range(MAX_CHUNKS):
        if pos + 8 > len(data):
            break
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if pos == 8:
            if kind != b"IHDR":
                raise corrupt("no IHDR chunk")
            w, h, depth, colour = struct.unpack_from(">IIBB", data, pos + 8)
            _budget("PNG", w, h, {0: 2 if depth == 16 else 1, 3: 1}.get(colour, 4))  # Pillow's bytes per pixel
        if kind == b"IDAT":
            idat.append(memoryview(data)[pos + 8 : pos + 8 + length])
        elif kind in (b"IHDR", b"PLTE", b"tRNS") or (kind == b"eXIf" and length <= EXIF_BYTES):
            kept.append(data[pos:end])
        elif kind == b"IEND":
            break
        pos = end
    else:
        raise _too_many()
    crc = zlib.crc32(b"IDAT")
    for part in idat:
        crc = zlib.crc32(part, crc)
    header = struct.pack(">I", sum(len(p) for p in idat)) + b"IDAT"
    return b"".join([*kept, header, *idat, struct.pack(">I", crc), _png_chunk(b"IEND", b"")])


def _gif(data: bytes) -> bytes:
    """The screen descriptor and colour table, the first frame's graphic control (its transparency), and the
    first frame onwards (Pillow decodes only the first frame)."""
    w, h, flags = struct.unpack_from("<HHB", data, 6)
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    head, control, steps = data[:pos], b"", 0
    while steps < MAX_CHUNKS:
        kind = data[pos]
        if kind == 0x2C:  # the first image
            x, y, fw, fh = struct.unpack_from("<HHHH", data, pos + 1)
            _budget("GIF", max(w, x + fw), max(h, y + fh), 1)  # Pillow grows the canvas to hold the frame
            return head + control + data[pos:]
        if kind != 0x21:
            raise corrupt("no image in the GIF")
        start, pos = pos, pos + 2
        while data[pos] and steps < MAX_CHUNKS:  # the extension's sub-blocks
            pos += data[pos] + 1
            steps += 1
        pos += 1
        steps += 1
        if data[start + 1] == 0xF9:
            control = data[start:pos]
    raise _too_many()


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


_SOF = {0xC0: False, 0xC1: False, 0xC2: True}  # frame markers Pillow decodes with scaling: progressive or not


def _jpeg(data: bytes) -> bytes:
    """The tables, the frame header, the Adobe marker (colour transform) and the first EXIF block; then every scan.
    Refuses lossless, hierarchical and arithmetic-coded frames, and more scans × blocks than a second's work."""
    pos, kept, frame, exif = 2, [data[:2]], None, False
    for _ in range(MAX_CHUNKS):
        while data[pos] == 0xFF and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        if data[pos] != 0xFF:
            raise corrupt("bad marker")
        marker = data[pos + 1]
        if marker == 0xDA:
            break
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        segment = data[pos:end]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if marker not in _SOF:
                raise InputError("The upload is a lossless, hierarchical or arithmetic-coded JPEG: save it as a "
                                 "standard JPEG or a PNG.")  # fmt: skip
            frame = marker, segment
        first_exif = marker == 0xE1 and segment[4:10] == b"Exif\0\0" and not exif
        if marker in (0xC0, 0xC1, 0xC2, 0xC4, 0xDB, 0xDD, 0xEE) or first_exif:  # 0xEE: Adobe's colour transform
            kept.append(segment)
            exif = exif or first_exif
        pos = end
    else:
        raise _too_many()
    if frame is None:
        raise corrupt("no frame header")
    marker, sof = frame
    h, w, n = struct.unpack_from(">HHB", sof, 5)
    sampling = [(sof[11 + 3 * i] >> 4, sof[11 + 3 * i] & 15) for i in range(n)]
    hmax, vmax = max(s[0] for s in sampling), max(s[1] for s in sampling)
    blocks = sum(_ceil(_ceil(w * sh, hmax), 8) * _ceil(_ceil(h * sv, vmax), 8) for sh, sv in sampling)
    scans = data.count(b"\xff\xda", pos)  # 0xFF 0xDA never occurs inside a scan's data (0xFF is stuffed)
    check_size(h, w)
    if scans * blocks > MAX_SCAN_BLOCKS:
        raise InputError(
            f"The upload is a JPEG with {scans} scans of {w}×{h} pixels: too much work to decode. Save it again as "
            "a standard JPEG or a PNG."
        )
    if _SOF[marker] or scans > 1:  # the decoder keeps every coefficient: 64 of 2 bytes a block
        _budget("JPEG", w, h, 128 * blocks / (w * h))
    return b"".join([*kept, memoryview(data)[pos:]])


def _webp(data: bytes) -> bytes:
    """The canvas header, the still image's chunks or the first frame of an animation, and the EXIF block."""
    pos, kept, frame = 12, [], False
    for _ in range(MAX_CHUNKS):
        if pos + 8 > len(data):
            break
        kind, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        end = pos + 8 + size + (size & 1)
        if pos == 12:
            if kind == b"VP8X":
                w, h = 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
            elif kind == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                w, h = 1 + (bits & 0x3FFF), 1 + (bits >> 14 & 0x3FFF)
            elif kind == b"VP8 ":
                w, h = (int.from_bytes(data[i : i + 2], "little") & 0x3FFF for i in (26, 28))
            else:
                raise corrupt("no WebP header")
            _budget("WEBP", w, h, 4 * WEBP_COPIES)
        if kind == b"VP8X":  # no colour profile or XMP any more
            kept.append(data[pos : pos + 8] + bytes([data[pos + 8] & ~0x24]) + data[pos + 9 : end])
        elif kind in (b"ANIM", b"ALPH", b"VP8 ", b"VP8L") or (kind == b"EXIF" and size <= EXIF_BYTES):
            kept.append(data[pos:end])
        elif kind == b"ANMF" and not frame:
            kept.append(data[pos:end])
            frame = True
        pos = end
    else:
        raise _too_many()
    body = b"WEBP" + b"".join(kept)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _bmp(data: bytes) -> bytes:
    """The file as it is, once its size is checked; run-length-encoded BMPs are refused (Pillow decodes them in
    Python, pixel by pixel)."""
    if int.from_bytes(data[14:18], "little") == 12:  # an OS/2 header
        w, h, _, bits = struct.unpack_from("<HHHH", data, 18)
        compression = 0
    else:
        w, h, _, bits, compression = struct.unpack_from("<iiHHI", data, 18)
    if compression in (1, 2):
        raise InputError("The upload is a compressed (RLE) BMP: save it as a PNG or an uncompressed BMP.")
    _budget("BMP", abs(w), abs(h), 1 if bits <= 8 else 4)
    return data


_MINIMAL = {"PNG": _png, "GIF": _gif, "JPEG": _jpeg, "WEBP": _webp, "BMP": _bmp}


def open_image(source: str | os.PathLike | bytes) -> Image.Image:
    """Read, check and decode an upload's first frame with bounded work (see the module's docstring)."""
    data = read_upload(source)
    fmt = sniff(data)
    try:
        data = _MINIMAL[fmt](data)
    except (struct.error, IndexError):
        raise corrupt() from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own caps are stricter
            im = Image.open(io.BytesIO(data), formats=[fmt])
            if fmt == "JPEG" and max(im.size) > 2 * WORK_SIDE:
                # The decoder scales down by 2, 4 or 8 while decoding (no smaller than the working size).
                s = WORK_SIDE / max(im.size)
                im.draft(im.mode, (int(im.width * s) + 1, int(im.height * s) + 1))
            im.load()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError) as e:
        raise corrupt(e) from None
    return im


# --- to floats, reduced ---------------------------------------------------------------------------------------

# Modes that PIL's box reduction and numpy read directly, and what to convert the others to first.
_READABLE = ("L", "LA", "RGB", "RGBA", "I", "F")
_CONVERT = {"1": "L", "La": "LA", "RGBa": "RGBA", "PA": "RGBA", "I;16": "I", "I;16L": "I", "I;16B": "I"}
BAND_BYTES = 8 << 20  # large images are converted and reduced in horizontal bands of about this size
# EXIF orientations (tag 0x0112) and the transposition that shows the picture upright, as ImageOps.exif_transpose.
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}  # fmt: skip


def _pil_to_array(im: Image.Image) -> np.ndarray:
    """A decoded image → float array, upright; large ones are box-reduced first, band by band, so that no
    full-size RGBA or float copy is ever made (a 49-megapixel 1-bit PNG is a 12 KB file), and the EXIF
    orientation is applied to the reduced copy."""
    check_size(im.height, im.width)
    upright = _UPRIGHT.get(im.getexif().get(0x0112))
    deep = im.mode.startswith("I;16")
    mode = im.mode if im.mode in _READABLE else _CONVERT.get(im.mode)
    if mode is None:  # P, CMYK, YCbCr, LAB, HSV, …
        mode = "RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB"
    k = max(im.size) // WORK_SIDE
    try:
        if k >= 2:
            # Box-average before converting to floats: it keeps the ink's mass, and memory stays small.
            out = Image.new(mode, (-(-im.width // k), -(-im.height // k)))
            rows = k * max(1, BAND_BYTES // (4 * im.width * k))
            for y in range(0, im.height, rows):
                band = im.crop((0, y, im.width, min(y + rows, im.height)))
                out.paste((band if band.mode == mode else band.convert(mode)).reduce(k), (0, y // k))
            im = out
        elif im.mode != mode:
            im = im.convert(mode)
    except (ValueError, OSError) as e:
        raise InputError(f"Images in colour mode {im.mode!r} are not supported ({e}); save it as RGB.") from None
    if upright is not None:
        im = im.transpose(upright)
    a = np.asarray(im)
    return _array_to_float(a.astype(np.uint16) if deep else a)


def _value_range(a: np.ndarray) -> tuple[float, float]:
    """(offset, half the span) that map the array's values to [0, 1], found without full-size temporaries."""
    if a.dtype.kind == "b":
        return 0.0, 0.5
    if a.dtype == np.uint8:
        return 0.0, 127.5
    if a.dtype == np.uint16:
        return 0.0, 32767.5
    lo, hi = float(a.min()), float(a.max())  # NaN anywhere makes these NaN; inf makes them infinite
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputError("The image array contains NaN or infinite values.")
    if lo >= 0 and hi <= 1:
        return 0.0, 0.5
    if lo >= 0 and hi <= 255:
        return 0.0, 127.5
    if lo >= 0 and hi <= 65535 and a.dtype.kind in "ui":
        return 0.0, 32767.5
    return lo, (hi * 0.5 - lo * 0.5 if hi > lo else 1.0)  # an unusual range (signed, huge): stretch it to [0, 1]


def _array_to_float(a: np.ndarray) -> np.ndarray:
    """Any numeric image array → float32 H×W×C (C = 1…4) in [0, 1]; large arrays box-reduced on the way."""
    if a.dtype.kind not in "buif":
        raise InputError(f"Unsupported array type {a.dtype}: use uint8 values 0–255 or floats in [0, 1].")
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or not 1 <= a.shape[2] <= 4:
        raise InputError(f"Expected an image array of shape H×W, H×W×3 or H×W×4, got shape {tuple(a.shape)}.")
    check_size(a.shape[0], a.shape[1])
    lo, scale = _value_range(a)

    def unit(x: np.ndarray) -> np.ndarray:
        if x.dtype.kind in "bu" and x.itemsize <= 2:
            return x.astype(np.float32) / np.float32(2 * scale)  # exact in float32; no float64 copy
        # In halves: a range from -1.8e308 to 1.8e308 overflows float64, half of it does not.
        return ((x.astype(np.float64) * 0.5 - lo * 0.5) / scale).clip(0, 1).astype(np.float32)

    k = max(a.shape[:2]) // WORK_SIDE
    if k < 2:
        return unit(a)
    # Box-average k×k blocks, a band of rows at a time, so that only a band is ever converted to floats.
    # With alpha, colours are averaged weighted by it (premultiplied), as PIL does: a transparent pixel's
    # colour does not bleed into its visible neighbours.
    h, w, c = a.shape[0] // k, a.shape[1] // k, a.shape[2]
    out = np.empty((h, w, c), np.float32)
    rows = max(1, BAND_BYTES // (8 * w * k * k * c))
    for y in range(0, h, rows):
        band = unit(a[y * k : (y + rows) * k, : w * k])
        if c in (2, 4):
            band[..., :-1] *= band[..., -1:]
        blocks = band.reshape(-1, k, w, k, c).mean(axis=(1, 3))
        if c in (2, 4):
            alpha = blocks[..., -1:]
            blocks[..., :-1] = np.where(alpha > 0, blocks[..., :-1] / np.maximum(alpha, 1e-12), 0.0)
        out[y : y + rows] = blocks
    return out


def as_rgba(a: np.ndarray) -> np.ndarray:
    """A float H×W×C image (C = 1…4) as RGBA: grey is repeated, a missing alpha is opaque."""
    c = a.shape[2]
    rgb = a[..., :1].repeat(3, 2) if c <= 2 else a[..., :3]
    alpha = a[..., -1:] if c in (2, 4) else np.ones_like(a[..., :1])
    return np.concatenate([rgb, alpha], axis=-1)


def to_float_array(image: Any) -> np.ndarray:
    """Decode any accepted input to a float32 H×W×C array in [0, 1] (C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA),
    box-reduced towards :data:`WORK_SIDE` when large. Raises :class:`InputError` for anything unusable."""
    if image is None:
        raise InputError("No image: upload a picture or draw a digit first.")
    if isinstance(image, (str, os.PathLike, bytes, bytearray)):
        return _pil_to_array(open_image(image))
    if isinstance(image, Image.Image):
        return _pil_to_array(image)
    if isinstance(image, Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        return _array_to_float(image)
    raise InputError(
        f"Unsupported input of type {type(image).__name__}: pass a PIL image, a numpy array, a file path or bytes."
    )
