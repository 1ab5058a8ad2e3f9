"""Bounded decoding: the worst uploads of each accepted format, and files in other formats, timed and measured.

    python benchmarks/bench_decode.py [--cases png_bomb,gif_comments] [--root CHECKOUT] [--keep DIR]

Each case is a file built here (deterministic): a small file declaring a huge size, a decompression bomb at the
largest accepted size and over it, a progressive JPEG with many or repeated scans, files stuffed with chunks,
comments or extension blocks, animations with many frames, the largest accepted file (50 MB), and files in formats
that are refused. Each is given to ``vae_hub.preprocess.to_mnist`` as a path (as the app receives an upload) in a
fresh Python process, which first imports the modules and reads a small PNG (the baseline); the process reports the
decode's wall time, its CPU time (user and system: what the decode costs, whatever else the shared machine runs;
the decode is single-threaded) and the rise of its peak resident memory (``ru_maxrss``) over that baseline. Targets
(issue 19): at most 2 s of CPU time and 300 MB for any input up to 50 MB; the result a digit or a one-line message
without a path.
``--root`` runs the cases against another checkout (e.g. an older commit exported with ``git archive``), for a
before/after comparison.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
TIME_LIMIT, MEMORY_LIMIT = 2.0, 300  # CPU seconds, MB
MB = 2**20

CHILD = r"""
import io, json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from PIL import Image
from vae_hub.preprocess import InputError, to_mnist
buf = io.BytesIO()
Image.fromarray((np.eye(28) * 255).astype(np.uint8)).save(buf, "PNG")
to_mnist(buf.getvalue())  # every lazily imported module and plugin is in the baseline
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cpu = resource.getrusage(resource.RUSAGE_SELF)
cpu = cpu.ru_utime + cpu.ru_stime
start = time.perf_counter()
try:
    out = to_mnist(sys.argv[2])
    result = "a digit" if out.shape == (1, 28, 28) else "?"
except InputError as e:
    result = "InputError: " + str(e)
except BaseException as e:
    result = "crash: " + type(e).__name__ + ": " + str(e)[:200]
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime + after.ru_stime - cpu
print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": (after.ru_maxrss - base) / 1024, "result": result}))
"""


# --- building files -------------------------------------------------------------------------------------------


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def digit_image(size: int = 200) -> Image.Image:
    """A plain dark '7' on light paper."""
    a = np.full((size, size), 230, np.uint8)
    a[size // 5 : size // 5 + size // 12, size // 4 : 3 * size // 4] = 20
    for i in range(size // 5, 4 * size // 5):
        x = 3 * size // 4 - (i - size // 5) * size // (2 * size)
        a[i, max(0, x - size // 24) : x + size // 24] = 20
    return Image.fromarray(a)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(w: int, h: int, colour: int = 0, depth: int = 8, row: bytes | None = None, chunks: bytes = b"",
        interlace: int = 0) -> bytes:  # fmt: skip
    """A PNG of identical rows (zeros unless ``row``: a decompression bomb), compressed row by row."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    line = b"\0" + (row if row is not None else bytes(-(-w * channels * depth // 8)))
    z = zlib.compressobj(9)
    data = b"".join(z.compress(line) for _ in range(h)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace)
    plte = png_chunk(b"PLTE", bytes(range(256)) * 3) if colour == 3 else b""
    sig = b"\x89PNG\r\n\x1a\n"
    return sig + png_chunk(b"IHDR", ihdr) + plte + chunks + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def png_second_ihdr(side: int, colour: int = 6) -> bytes:
    """A side×side PNG bomb whose first IHDR declares 100×100: Pillow alone would take the second, larger one."""
    big = png(side, side, colour)
    return big[:8] + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100, 100, 8, colour, 0, 0, 0)) + big[8:]


def png_many_idat(n: int) -> bytes:
    """A real 200×200 digit whose image data is split into ``n`` IDAT chunks."""
    raw = encode(digit_image(), "PNG")
    data = zlib.decompress(b"".join(raw[p + 8 : p + 8 + struct.unpack(">I", raw[p : p + 4])[0]]
                                    for p in _png_chunks(raw, b"IDAT")))  # fmt: skip
    comp = zlib.compress(data)
    parts = [comp[i * len(comp) // n : (i + 1) * len(comp) // n] for i in range(n)]
    ihdr = raw[8:33]
    return raw[:8] + ihdr + b"".join(png_chunk(b"IDAT", p) for p in parts) + png_chunk(b"IEND", b"")


def _png_chunks(data: bytes, kind: bytes) -> list[int]:
    pos, out = 8, []
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        if data[pos + 4 : pos + 8] == kind:
            out.append(pos)
        pos += 12 + length
    return out


def png_stuffed(n: int, body: bytes = b"") -> bytes:
    """The digit with ``n`` tEXt chunks (``body`` each) before its image data."""
    raw = encode(digit_image(), "PNG")
    return raw[:33] + png_chunk(b"tEXt", b"k\0" + body) * n + raw[33:]


def png_ztxt(n: int) -> bytes:
    """The digit with ``n`` zTXt chunks of 1 MB of text each (Pillow's own limit per chunk) before its data."""
    text = b"k\0\0" + zlib.compress(b"a" * (MB - 64), 9)
    raw = encode(digit_image(), "PNG")
    return raw[:33] + png_chunk(b"zTXt", text) * n + raw[33:]


def png_noise(mb: float) -> bytes:
    """Incompressible RGB noise filling ``mb`` MB: the largest PNG worth its size."""
    side = int((mb * MB / 3) ** 0.5)
    rng = np.random.default_rng(0)
    return encode(Image.fromarray(rng.integers(0, 256, (side, side, 3), np.uint8)), "PNG", compress_level=1)


def apng(frames: int) -> bytes:
    first = digit_image(100)
    others = [Image.new("L", (100, 100), (i * 37) % 256) for i in range(frames - 1)]
    return encode(first, "PNG", save_all=True, append_images=others, duration=10)


def jpeg_scans(side: int, repeats: int, mode: str = "L") -> bytes:
    """A progressive JPEG whose AC scan (a few bytes: every block one end-of-band run) is repeated ``repeats``
    times more: each repetition makes the decoder walk every block again."""
    im = Image.new(mode, (side, side), 200 if mode == "L" else (200, 200, 200))
    data = encode(im, "JPEG", progressive=True, quality=90)
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xDA]
    head, scans = data[: starts[0]], [data[a:b] for a, b in zip(starts, starts[1:] + [len(data) - 2])]
    i = 2 if mode == "L" else 3
    return head + b"".join(scans[:i]) + scans[i] * (repeats + 1) + b"".join(scans[i + 1 :]) + b"\xff\xd9"


def jpeg_declared(w: int, h: int) -> bytes:
    """A small JPEG whose frame header declares w×h."""
    data = bytearray(encode(digit_image(64), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def jpeg_large(side: int, progressive: bool, subsampling: int = 2, noise: bool = False, quality: int = 90) -> bytes:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (side, side, 3), np.uint8) if noise else np.asarray(digit_image(side).convert("RGB"))
    return encode(Image.fromarray(a), "JPEG", progressive=progressive, subsampling=subsampling, quality=quality)


def jpeg_frame_byte(offset: int, value: int) -> bytes:
    """The digit as a JPEG whose frame header has ``value`` at ``offset`` (9: its components, 11: the first one's
    sampling factors)."""
    data = bytearray(encode(digit_image(64), "JPEG"))
    data[data.index(b"\xff\xc0") + offset] = value
    return bytes(data)


def jpeg_comments(n: int, where: str = "head") -> bytes:
    """The digit as JPEG with ``n`` empty comment segments before its frame header, or between its scans."""
    data = encode(digit_image(), "JPEG", progressive=where == "scans")
    com = b"\xff\xfe\x00\x02" * n
    if where == "head":
        return data[:2] + com + data[2:]
    second = data.index(b"\xff\xda", data.index(b"\xff\xda") + 2)
    return data[:second] + com + data[second:]


def webp_declared(w: int, h: int) -> bytes:
    """A 2 KB lossless WebP whose header declares w×h (at most 16384 a side)."""
    data = bytearray(encode(digit_image(40).convert("RGB"), "WEBP", lossless=True))
    bits = int.from_bytes(data[21:25], "little")
    bits = (bits & ~0x0FFFFFFF) | (w - 1) | (h - 1) << 14
    data[21:25] = bits.to_bytes(4, "little")
    return bytes(data)


def webp_noise(side: int) -> bytes:
    rng = np.random.default_rng(0)
    return encode(Image.fromarray(rng.integers(0, 256, (side, side, 3), np.uint8)), "WEBP", lossless=True, method=0)


def webp_animated(frames: int) -> bytes:
    first = digit_image(100).convert("RGB")
    others = [Image.new("RGB", (100, 100), ((i * 37) % 256,) * 3) for i in range(frames - 1)]
    return encode(first, "WEBP", save_all=True, append_images=others, duration=10, lossless=True, method=0)


def webp_stuffed(n: int) -> bytes:
    """The digit as an extended WebP with ``n`` empty unknown chunks before its image."""
    still = encode(digit_image(100).convert("RGB"), "WEBP", lossless=True)
    image = still[12:]
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (99).to_bytes(3, "little") * 2
    body = b"WEBP" + vp8x + b"JUNK\0\0\0\0" * n + image
    return b"RIFF" + struct.pack("<I", len(body)) + body


def gif(w: int, h: int, frame: tuple[int, int] | None = None, comments: int = 0) -> bytes:
    """A one-colour GIF: a w×h screen, the frame ``frame`` (w, h) at the origin, ``comments`` empty comment blocks
    before it. Its image data is a clear code and an end code: Pillow fills the frame with colour 0."""
    fw, fh = frame or (w, h)
    head = b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, fw, fh, 0) + b"\x02\x02\x44\x01\x00"
    return head + b"\x21\xfe\x00" * comments + image + b"\x3b"


def gif_real(side: int, noise: bool = False, frames: int = 1) -> bytes:
    rng = np.random.default_rng(0)
    first = Image.fromarray(rng.integers(0, 256, (side, side), np.uint8)) if noise else digit_image(side)
    others = [Image.new("L", (side, side), (i * 37) % 256) for i in range(frames - 1)]
    return encode(first, "GIF", save_all=frames > 1, append_images=others, duration=10)


def bmp_header(w: int, h: int, bits: int = 24, compression: int = 0, data: bytes = b"") -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, bits, compression, len(data), 2835, 2835, 0, 0)
    palette = bytes(4 * 256) if bits <= 8 else b""
    offset = 14 + 40 + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + info + palette + data


CASES: dict[str, tuple[str, Callable[[], bytes]]] = {
    # name: (what it is, how to build it)
    "png_declared_huge": ("PNG declaring 100000×100000, 80 bytes", lambda: png(100_000, 100_000, row=b"")),
    "png_bomb_64mp": ("PNG bomb, 8000×8000 RGBA zeros", lambda: png(8000, 8000, 6)),
    "png_bomb_49mp_rgba": ("PNG bomb, 7000×7000 RGBA zeros (accepted)", lambda: png(7000, 7000, 6)),
    "png_bomb_49mp_grey": ("PNG bomb, 7000×7000 grey (accepted)", lambda: png(7000, 7000, 0)),
    "png_interlaced_49mp": ("interlaced PNG, 7000×7000 RGB zeros", lambda: png(7000, 7000, 2, interlace=1)),
    "png_text_200k": ("PNG with 200,000 empty tEXt chunks (2.4 MB)", lambda: png_stuffed(200_000)),
    "png_text_90k": ("PNG with 90,000 tEXt chunks (accepted)", lambda: png_stuffed(90_000)),
    "png_ztxt_60": ("PNG with 60 zTXt chunks of 1 MB of text", lambda: png_ztxt(60)),
    "png_idat_90k": ("PNG split into 90,000 IDAT chunks", lambda: png_many_idat(90_000)),
    "png_apng_2000": ("APNG, 2000 frames", lambda: apng(2000)),
    "png_50mb": ("PNG of RGB noise, 50 MB (17 MP)", lambda: png_noise(49.5)),
    "png_second_ihdr": ("PNG bomb, 11000×11000 RGBA behind a 100×100 IHDR", lambda: png_second_ihdr(11_000)),
    "jpeg_declared_huge": ("JPEG declaring 65000×65000", lambda: jpeg_declared(65_000, 65_000)),
    "jpeg_repeated_scan_1mb": ("progressive JPEG, a scan repeated 30,000×, 1 MB", lambda: jpeg_scans(2000, 30_000)),
    "jpeg_scans_under_cap": ("progressive JPEG 2000×2000, 350 scans", lambda: jpeg_scans(2000, 340)),
    "jpeg_progressive_49mp": ("progressive JPEG 7000×7000, 4:2:0", lambda: jpeg_large(7000, True)),
    "jpeg_progressive_49mp_444": ("progressive JPEG 7000×7000, 4:4:4", lambda: jpeg_large(7000, True, 0)),
    "jpeg_baseline_49mp": ("baseline JPEG 7000×7000", lambda: jpeg_large(7000, False)),
    "jpeg_comments_head": ("JPEG with 200,000 comments before its frame", lambda: jpeg_comments(200_000)),
    "jpeg_comments_scans": ("JPEG with 2,000,000 comments between scans", lambda: jpeg_comments(2_000_000, "scans")),
    "jpeg_50mb": ("JPEG of noise at quality 100, 50 MB", lambda: jpeg_large(3550, False, 0, True, 100)),
    "jpeg_fill_50mb": ("JPEG of 50 MB of fill bytes (0xFF)", lambda: b"\xff\xd8" + b"\xff" * (50 * MB - 3)),
    "jpeg_no_components": ("JPEG whose frame header has no components", lambda: jpeg_frame_byte(9, 0)),
    "jpeg_zero_sampling": ("JPEG whose first component has 0×0 sampling", lambda: jpeg_frame_byte(11, 0)),
    "webp_declared_50mp": ("WebP declaring 16383×3052, 2 KB", lambda: webp_declared(16383, 3052)),
    "webp_declared_12mp": ("WebP declaring 3500×3500, 2 KB (accepted)", lambda: webp_declared(3500, 3500)),
    "webp_noise_12mp": ("lossless WebP of noise, 3500×3500", lambda: webp_noise(3500)),
    "webp_bomb_49mp": ("lossless WebP 7000×7000 of one colour", lambda: encode(Image.new("RGB", (7000, 7000)), "WEBP",
                                                                                lossless=True)),
    "webp_bomb_13mp": ("lossless WebP 3600×3600 of one colour (accepted)",
                       lambda: encode(Image.new("RGB", (3600, 3600)), "WEBP", lossless=True)),
    "webp_animated_2000": ("animated WebP, 2000 frames", lambda: webp_animated(2000)),
    "webp_chunks_200k": ("WebP with 200,000 unknown chunks", lambda: webp_stuffed(200_000)),
    "gif_declared_huge": ("GIF screen 65535×65535", lambda: gif(65535, 65535)),
    "gif_frame_outside": ("GIF screen 10×10, frame 60000×60000", lambda: gif(10, 10, (60000, 60000))),
    "gif_bomb_49mp": ("GIF 7000×7000 of one colour (accepted)", lambda: encode(Image.new("L", (7000, 7000)), "GIF")),
    "gif_comments_3mb": ("GIF with 1,000,000 empty comment blocks (3 MB)", lambda: gif(100, 100, comments=1_000_000)),
    "gif_comments_90k": ("GIF with 90,000 empty comment blocks", lambda: gif(100, 100, comments=90_000)),
    "gif_animated_5000": ("animated GIF, 5000 frames", lambda: gif_real(100, frames=5000)),
    "gif_50mb": ("GIF of noise, 50 MB", lambda: gif_real(5900, noise=True)),
    "bmp_declared_huge": ("BMP declaring 100000×100000", lambda: bmp_header(100_000, 100_000)),
    "bmp_truncated_49mp": ("BMP declaring 7000×7000 RGB, 1 KB of data", lambda: bmp_header(7000, 7000, data=bytes(99))),
    "bmp_rle_bomb": ("RLE8 BMP 7000×7000 of end-of-line codes", lambda: bmp_header(7000, 7000, 8, 1, b"\0\0" * 7000)),
    "bmp_50mb": ("BMP 24-bit 4090×4090, 50 MB", lambda: encode(Image.new("RGB", (4090, 4090), (230,) * 3), "BMP")),
    "eps": ("EPS (Pillow would call Ghostscript)", lambda: encode(digit_image(64).convert("RGB"), "EPS")),
    "tiff": ("TIFF", lambda: encode(digit_image(64), "TIFF")),
    "ico": ("ICO", lambda: encode(digit_image(64), "ICO")),
    "jpeg2000": ("JPEG 2000", lambda: encode(digit_image(64).convert("RGB"), "JPEG2000")),
    "avif": ("AVIF", lambda: encode(digit_image(64).convert("RGB"), "AVIF")),
    "qoi": ("QOI header", lambda: b"qoif" + struct.pack(">II", 64, 64) + b"\x03\x00" + bytes(64)),
    "icns": ("ICNS header", lambda: b"icns" + struct.pack(">I", 16) + bytes(8)),
    "pdf": ("PDF", lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"),
}


def run_case(path: Path, root: Path) -> dict:
    """Decode one file in a fresh process; its time, peak memory over the baseline, and result."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(root), str(path)], capture_output=True, text=True,
                          env=env, timeout=600)  # fmt: skip
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        failure = f"exit {proc.returncode}: {proc.stderr[-300:]}"
        return {"seconds": float("nan"), "cpu": float("nan"), "peak_mb": float("nan"), "result": failure}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated case names (default: all)")
    ap.add_argument("--root", type=Path, default=ROOT, help="the checkout whose vae_hub is measured")
    ap.add_argument("--keep", type=Path, default=None, help="write the files here (default: a temporary folder)")
    args = ap.parse_args(argv)
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    if unknown := [c for c in names if c not in CASES]:
        ap.error(f"unknown cases {unknown}")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_decode_"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"vae_hub from {args.root}; targets: ≤ {TIME_LIMIT} s of CPU and ≤ {MEMORY_LIMIT} MB per input up to 50 MB")
    print(f"load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print(f"{'case':28} {'file':>9} {'wall s':>7} {'cpu s':>6} {'peak MB':>8}  ok  result")
    missed = []
    for name in names:
        what, build = CASES[name]
        path = folder / f"{name}.bin"  # the extension says nothing: the format is read from the bytes
        path.write_bytes(build())
        size = path.stat().st_size
        r = run_case(path, args.root)
        clean = not r["result"].startswith(("crash", "exit")) and "\n" not in r["result"]
        ok = size > 50 * MB or (r["cpu"] <= TIME_LIMIT and r["peak_mb"] <= MEMORY_LIMIT and clean)
        if not ok:
            missed.append(name)
        cells = f"{size / MB:8.2f}M {r['seconds']:7.2f} {r['cpu']:6.2f} {r['peak_mb']:8.0f}"
        print(f"{name:28} {cells}  {'yes' if ok else 'NO '} {r['result'][:110]}", flush=True)
        if args.keep is None:
            path.unlink()
    print("\nAll targets met." if not missed else f"\nMissed on: {', '.join(missed)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
