"""Any accepted image input as a small float array, with bounded work: uploads, arrays and PIL images.

An upload (PNG, JPEG, WebP, GIF or BMP, known by its bytes) is walked to its first frame in at most :data:`MAX_CHUNKS`
steps, refused if its header promises too much work (pixels, memory, a JPEG's scans), and decoded from a minimal copy:
the first frame, what it needs, its EXIF orientation. Messages say "the upload", never a path. See docs/robustness.md.
"""

import io
import os
import re
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image, ImageOps
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
BAND_BYTES = 8 << 20  # large images are converted and reduced in horizontal bands of about this size
ACCEPTED = "PNG, JPEG, WebP, GIF or BMP"
_SIGNATURES = re.compile(
    rb"(?P<PNG>\x89PNG\r\n\x1a\n)|(?P<JPEG>\xff\xd8\xff)|(?P<GIF>GIF8[79]a)|(?P<BMP>BM)|(?P<WEBP>RIFF(?s:....)WEBP)"
)
# Modes to convert before PIL's box reduction and numpy, beyond those they read (L, LA, RGB, RGBA, I, F).
_CONVERT = {"1": "L", "La": "LA", "RGBa": "RGBA", "PA": "RGBA", "I;16": "I", "I;16L": "I", "I;16B": "I"}
_FILL = re.compile(rb"\xff*(?=\xff)|")  # a JPEG marker's fill bytes: up to the last 0xFF before the marker


class InputError(ValueError):
    """An input that cannot be turned into a digit; the message says why, in one line meant for the user."""


def corrupt(detail: object = "") -> InputError:
    text = re.sub(r" ?<[^>]* at 0x\w+>", "", str(detail)).splitlines()[0][:120] if str(detail) else ""  # no reprs
    return InputError(f"The upload is truncated or corrupt{f' ({text})' if text else ''}; save it again and retry.")


def check_size(w: int, h: int, fmt: str = "", bytes_per_pixel: float = 0) -> None:
    """Refuse an image too large, small or thin for a digit, or over :data:`DECODE_BYTES` at ``bytes_per_pixel``."""
    size, shrink = f"The image is {w}×{h} pixels", "Shrink it first: a digit needs far fewer pixels."
    if h * w > MAX_PIXELS:
        raise InputError(f"{size} ({h * w / 1e6:.0f} megapixels); the limit is {MAX_PIXELS // 10**6}. {shrink}")
    if min(h, w) < MIN_SIDE:
        raise InputError(f"{size}: too small to hold a digit (each side needs at least {MIN_SIDE}).")
    if max(h, w) > MAX_ASPECT * min(h, w):
        raise InputError(f"{size}: too long and thin to hold one digit.")
    if w * h * bytes_per_pixel > DECODE_BYTES:
        limit = DECODE_BYTES / bytes_per_pixel / 1e6
        raise InputError(f"{size} ({w * h / 1e6:.0f} megapixels); the limit for this {fmt} is {limit:.0f}. {shrink}")


def _steps() -> Iterator[int]:
    """A walk's steps: one more than :data:`MAX_CHUNKS` refuses the upload."""
    yield from range(MAX_CHUNKS)
    raise InputError(f"The upload holds too many blocks of data (over {MAX_CHUNKS}); save it again and retry.")


def _png(data: bytes) -> bytes:
    """The first IHDR, the palette and transparency, the EXIF orientation and the image data: no text, no frames."""
    if data[12:16] != b"IHDR":
        raise corrupt("no IHDR chunk")
    w, h, depth, colour = struct.unpack_from(">IIBB", data, 16)
    check_size(w, h, "PNG", {0: 2 if depth == 16 else 1, 3: 1}.get(colour, 4))  # Pillow's bytes per pixel
    pos, kept = 8, [data[:8]]
    for _ in _steps():
        if pos + 8 > len(data):
            break
        length, kind = struct.unpack_from(">I4s", data, pos)
        if pos == 8 or kind in (b"PLTE", b"tRNS", b"IDAT", b"IEND") or (kind == b"eXIf" and length <= EXIF_BYTES):
            kept.append(memoryview(data)[pos : pos + 12 + length])
        pos += 12 + length
        if kind == b"IEND":  # the last chunk counts as one of the MAX_CHUNKS steps, and ends the walk
            break
    return b"".join(kept)


def _gif(data: bytes) -> bytes:
    """The screen and colour table, the first frame's graphic control (its transparency), the first frame on."""
    w, h, flags = struct.unpack_from("<HHB", data, 6)
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    head, control, steps = data[:pos], b"", _steps()
    while data[pos] == 0x21:  # an extension before the first image: it and each of its sub-blocks is a step
        next(steps)
        start, pos = pos, pos + 2
        while data[pos]:
            pos += data[pos] + 1
            next(steps)
        pos += 1
        control = data[start:pos] if data[start + 1] == 0xF9 else control  # the graphic control: transparency
    if data[pos] != 0x2C:
        raise corrupt("no image in the GIF")
    x, y, fw, fh = struct.unpack_from("<HHHH", data, pos + 1)
    check_size(max(w, x + fw), max(h, y + fh), "GIF", 1)  # Pillow grows the canvas to hold the frame
    return head + control + data[pos:]


def _jpeg(data: bytes) -> bytes:
    """The tables, the frame header, the Adobe marker (colour transform) and the first EXIF block; then every scan.
    Refuses lossless, hierarchical and arithmetic-coded frames, and more scans × blocks than a second's work."""
    pos, kept, sof, exif = 2, [data[:2]], None, False
    for _ in _steps():
        pos = _FILL.match(data, pos).end()
        if data[pos] != 0xFF:
            raise corrupt("bad marker")
        marker = data[pos + 1]
        if marker == 0xDA:
            break
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        seg = data[pos:end]
        if 0xC3 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            raise InputError(
                "The upload is a lossless, hierarchical or arithmetic-coded JPEG: save it as a standard JPEG or a PNG."
            )
        first_exif = marker == 0xE1 and seg[4:10] == b"Exif\0\0" and not exif
        if marker in (0xC0, 0xC1, 0xC2, 0xC4, 0xDB, 0xDD, 0xEE) or first_exif:  # 0xEE: Adobe's colour transform
            kept.append(seg)
            exif = exif or first_exif
        sof = seg if 0xC0 <= marker <= 0xC2 else sof  # a frame Pillow decodes with scaling
        pos = end
    if sof is None:
        raise corrupt("no frame header")
    h, w, n = struct.unpack_from(">HHB", sof, 5)
    factors = sof[11 : 11 + 3 * n : 3]  # each component's sampling factors: horizontal << 4 | vertical
    hs, vs = [f >> 4 for f in factors], [f & 15 for f in factors]
    if not 0 < n == len(hs) or 0 in hs + vs:
        raise corrupt("bad frame header")
    blocks = sum(-(-w * a // (8 * max(hs))) * -(-h * b // (8 * max(vs))) for a, b in zip(hs, vs))
    scans = data.count(b"\xff\xda", pos)  # 0xFF 0xDA never occurs inside a scan's data (0xFF is stuffed)
    check_size(w, h)
    if scans * blocks > MAX_SCAN_BLOCKS:
        raise InputError(
            f"The upload is a JPEG with {scans} scans of {w}×{h} pixels: too much work to decode. Save it again as "
            "a standard JPEG or a PNG."
        )
    if sof[1] == 0xC2 or scans > 1:  # the decoder keeps every coefficient: 64 of 2 bytes a block
        check_size(w, h, "JPEG", 128 * blocks / (w * h))
    return b"".join([*kept, memoryview(data)[pos:]])


def _webp(data: bytes) -> bytes:
    """The canvas header, the still image's chunks or the first frame of an animation, and the EXIF block."""
    kind = data[12:16]
    if kind == b"VP8X":
        w, h = 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    elif kind == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        w, h = 1 + (bits & 0x3FFF), 1 + (bits >> 14 & 0x3FFF)
    elif kind == b"VP8 ":
        w, h = (int.from_bytes(data[i : i + 2], "little") & 0x3FFF for i in (26, 28))
    else:
        raise corrupt("no WebP header")
    check_size(w, h, "WebP", 4 * WEBP_COPIES)
    pos, kept, frame = 12, [], False
    for _ in _steps():
        if pos + 8 > len(data):
            break
        kind, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        end = pos + 8 + size + (size & 1)
        first_frame = kind == b"ANMF" and not frame
        if kind == b"VP8X" and pos == 12:  # no colour profile or XMP any more
            kept.append(data[pos : pos + 8] + bytes([data[pos + 8] & ~0x24]) + data[pos + 9 : end])
        elif kind in (b"ANIM", b"ALPH", b"VP8 ", b"VP8L") or (kind == b"EXIF" and size <= EXIF_BYTES) or first_frame:
            kept.append(data[pos:end])
            frame = frame or first_frame
        pos = end
    return b"RIFF" + struct.pack("<I", 4 + sum(map(len, kept))) + b"WEBP" + b"".join(kept)


def _bmp(data: bytes) -> bytes:
    """The file as it is, once checked; RLE BMPs are refused (Pillow decodes them in Python, pixel by pixel)."""
    os2 = int.from_bytes(data[14:18], "little") == 12  # an OS/2 header: 16-bit sizes, never compressed
    w, h, _, bits, compression = struct.unpack_from("<HHHHI" if os2 else "<iiHHI", data, 18)
    if compression in (1, 2) and not os2:
        raise InputError("The upload is a compressed (RLE) BMP: save it as a PNG or an uncompressed BMP.")
    check_size(abs(w), abs(h), "BMP", 1 if bits <= 8 else 4)
    return data


def open_image(source: str | os.PathLike | bytes) -> Image.Image:
    """Read, check and decode an upload's first frame with bounded work (see the module's docstring)."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        try:
            with open(source, "rb") as f:
                # At most one byte more than the limit, and no more than the file's size: read(n) allocates n.
                data = f.read(min(os.fstat(f.fileno()).st_size, MAX_FILE_BYTES) + 1)
        except (OSError, ValueError):
            raise InputError("The upload could not be read: upload the picture again.") from None
    if not data:
        raise InputError(f"The upload is empty (0 bytes): upload a {ACCEPTED} image.")
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"The upload is larger than {MAX_FILE_BYTES // 2**20} MB, the limit: shrink it first.")
    if not (signature := _SIGNATURES.match(data[:12])):  # a match keeps its string alive: not the upload
        raise InputError(f"The upload is not an image in an accepted format: upload a {ACCEPTED} file.")
    fmt = signature.lastgroup  # the format's name in Pillow
    try:
        data = {"PNG": _png, "GIF": _gif, "JPEG": _jpeg, "WEBP": _webp, "BMP": _bmp}[fmt](data)
    except (struct.error, IndexError):
        raise corrupt() from None
    try:
        im = Image.open(io.BytesIO(data), formats=[fmt])  # our caps are below Pillow's decompression-bomb warning
        if fmt == "JPEG":  # the decoder scales down by 2, 4 or 8 while decoding (no smaller than the working size)
            im.draft(im.mode, tuple(int(side * (WORK_SIDE / max(im.size))) + 1 for side in im.size))
        im.load()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError) as e:
        raise corrupt(e) from None
    return im


def _array_to_float(a: np.ndarray) -> np.ndarray:
    """Any numeric image array → float32 H×W×C (C = 1…4) in [0, 1]; large arrays box-reduced on the way."""
    if a.dtype.kind not in "buif":
        raise InputError(f"Unsupported array type {a.dtype}: use uint8 values 0–255 or floats in [0, 1].")
    a = a[..., None] if a.ndim == 2 else a
    if a.ndim != 3 or not 1 <= a.shape[2] <= 4:
        raise InputError(f"Expected an image array of shape H×W, H×W×3 or H×W×4, got shape {tuple(a.shape)}.")
    check_size(a.shape[1], a.shape[0])
    if a.dtype.kind == "b" or a.dtype in (np.uint8, np.uint16):  # the type's range, whatever the values
        lo, scale = 0.0, 0.5 if a.dtype.kind == "b" else np.iinfo(a.dtype).max / 2
    else:  # 0…1, 0…255 or (integers) 0…65535 as they are; an unusual range (signed, huge) stretched to [0, 1]
        lo, hi = float(a.min()), float(a.max())  # NaN anywhere makes these NaN; inf makes them infinite
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise InputError("The image array contains NaN or infinite values.")
        top = next((t for t in (1, 255, 65535) if lo >= 0 and hi <= t and (t < 65535 or a.dtype.kind in "ui")), 0)
        lo, scale = (0.0, top / 2) if top else (lo, hi * 0.5 - lo * 0.5 if hi > lo else 1.0)

    def unit(x: np.ndarray) -> np.ndarray:
        if x.dtype.kind in "bu" and x.itemsize <= 2:
            return x.astype(np.float32) / np.float32(2 * scale)  # exact in float32; no float64 copy
        # In halves: a range from -1.8e308 to 1.8e308 overflows float64, half of it does not.
        return ((x.astype(np.float64) * 0.5 - lo * 0.5) / scale).clip(0, 1).astype(np.float32)

    k = max(a.shape[:2]) // WORK_SIDE
    if k < 2:
        return unit(a)
    # Box-average k×k blocks, a band of rows at a time, so that only a band is ever converted to floats. With alpha,
    # colours are weighted by it (premultiplied), as PIL does: a transparent pixel's colour does not bleed.
    h, w, c = a.shape[0] // k, a.shape[1] // k, a.shape[2]
    out = np.empty((h, w, c), np.float32)
    rows = max(1, BAND_BYTES // (8 * w * k * k * c))
    for y in range(0, h, rows):
        band = unit(a[y * k : (y + rows) * k, : w * k])
        if c in (2, 4):
            band[..., :-1] *= band[..., -1:]
        blocks = band.reshape(-1, k, w, k, c).mean(axis=(1, 3))
        if c in (2, 4):
            blocks[..., :-1] = np.where(blocks[..., -1:] > 0, blocks[..., :-1] / np.maximum(blocks[..., -1:], 1e-12), 0)
        out[y : y + rows] = blocks
    return out


def to_float_array(image: Any) -> np.ndarray:
    """Decode any accepted input to a float32 H×W×C array in [0, 1] (C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA),
    box-reduced towards :data:`WORK_SIDE` when large. Raises :class:`InputError` for anything unusable."""
    if image is None:
        raise InputError("No image: upload a picture or draw a digit first.")
    if isinstance(image, Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        return _array_to_float(image)
    im = open_image(image) if isinstance(image, (str, os.PathLike, bytes, bytearray)) else image
    if not isinstance(im, Image.Image):
        raise InputError(
            f"Unsupported input of type {type(image).__name__}: pass a PIL image, a numpy array, a file path or bytes."
        )
    check_size(im.width, im.height)
    mode = _CONVERT.get(im.mode, im.mode)
    if mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):  # P, CMYK, YCbCr, LAB, HSV, …
        mode = "RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB"
    k = max(1, max(im.size) // WORK_SIDE)
    out = Image.new(mode, (-(-im.width // k), -(-im.height // k)))
    rows = k * max(1, BAND_BYTES // (4 * im.width * k))
    # Box-averaged (it keeps the ink's mass) band by band: no full-size RGBA or float copy of a 49-MP, 12 KB PNG.
    try:
        for y in range(0, im.height, rows):
            band = im.crop((0, y, im.width, min(y + rows, im.height)))
            out.paste((band if band.mode == mode else band.convert(mode)).reduce(k), (0, y // k))
    except (ValueError, OSError) as e:
        raise InputError(f"Images in colour mode {im.mode!r} are not supported ({e}); save it as RGB.") from None
    out.getexif()[0x0112] = im.getexif().get(0x0112, 1)  # the orientation, for ImageOps
    a = np.asarray(ImageOps.exif_transpose(out))
    return _array_to_float(a.astype(np.uint16) if im.mode.startswith("I;16") else a)
