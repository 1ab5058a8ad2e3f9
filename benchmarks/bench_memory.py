"""Peak memory of the app's server process for the worst accepted image: a 49-megapixel 1-bit PNG (about 12 KB).

    python benchmarks/bench_memory.py [--app-dir DIR] [--megapixels 49] [--parallel 4] [--json out.json]

It starts ``app.py`` (from ``--app-dir``: this checkout, or an export of an older commit to compare with) on
127.0.0.1, uploads the PNG through ``gradio_client`` to each endpoint that takes an image (``/reconstruct``, the
drawing's ``/reconstruct_drawing`` and ``/interpolate``), once and then ``--parallel`` times at once, and reads the
server's peak resident memory from ``/proc/<pid>/status`` (VmHWM, reset before each case through
``/proc/<pid>/clear_refs``). It reports the peak and its rise over the resident memory just before the case; the
target is a rise of at most 300 MB per request. A baseline in the same process: the same for an ordinary upload
(a 28×28 MNIST example). Everything stops by itself: each request has a time limit, and the server is stopped.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # run from a checkout without installing
MB = 2**20


def big_bilevel_png(path: Path, megapixels: float) -> None:
    """A square 1-bit PNG of ``megapixels``: a dark MNIST 7 on white paper (compresses to a few KB)."""
    side = int((megapixels * 1e6) ** 0.5)
    digit = Image.open(ROOT / "examples" / "7_0000.png").resize((side * 2 // 3,) * 2, Image.Resampling.NEAREST)
    page = Image.new("L", (side, side), 255)
    page.paste(Image.fromarray(np.where(np.asarray(digit) > 127, 0, 255).astype(np.uint8)), (side // 6, side // 6))
    page.convert("1", dither=Image.Dither.NONE).save(path, optimize=True)


def server_pid(port: int) -> int:
    """The pid of the ``app.py`` process serving ``port`` (found through /proc: no extra package needed)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(a.endswith(b"app.py") for a in argv) and str(port).encode() in argv:
                return int(entry.name)
    raise RuntimeError(f"no app.py process serves port {port}")


def status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def measure(pid: int, send, parallel: int, timeout: float) -> dict[str, object]:
    """Reset the peak, send ``parallel`` requests at once, and read the peak (MB) and the rise over the RSS before."""
    time.sleep(0.5)
    before = status_mb(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    results: list[str] = []

    def one() -> None:
        try:
            send()
            results.append("ok")
        except Exception as e:  # reported, not raised: the peak is the point
            results.append(f"{type(e).__name__}: {str(e)[:100]}")

    threads = [threading.Thread(target=one, daemon=True) for _ in range(parallel)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, timeout - (time.perf_counter() - t0)))
    peak = status_mb(pid, "VmHWM")
    answers = sorted(set(results)) + (["timed out"] if len(results) < parallel else [])
    return {
        "requests": parallel,
        "answers": answers,
        "seconds": round(time.perf_counter() - t0, 1),
        "RSS before (MB)": round(before),
        "peak RSS (MB)": round(peak),
        "rise (MB)": round(peak - before),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--app-dir", type=Path, default=ROOT, help="folder holding the app.py to measure")
    p.add_argument("--megapixels", type=float, default=49.0)
    p.add_argument("--parallel", type=int, default=4, help="requests sent at once in the second case of each")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds allowed per case")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()

    from gradio_client import Client, handle_file

    from webapp.launch import serve

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big_1bit.png"
        big_bilevel_png(big, args.megapixels)
        with Image.open(big) as im:
            size = f"{im.width}×{im.height} mode {im.mode}, {big.stat().st_size / 1024:.0f} KB on disk"
        small = ROOT / "examples" / "7_0000.png"
        example_b = {"background": handle_file(str(ROOT / "examples" / "0_0003.png")), "layers": [], "composite": None}
        env = {"GRADIO_TEMP_DIR": str(Path(tmp) / "gradio"), "VAE_HUB_APP_OUTPUTS": str(Path(tmp) / "out")}
        result: dict[str, object] = {"app": str(args.app_dir.resolve()), "image": size}
        with serve(app_dir=args.app_dir, env=env, quiet=True) as url:
            pid = server_pid(int(url.rstrip("/").rsplit(":", 1)[1]))
            client = Client(url, verbose=False, download_files=False)

            def sender(endpoint: str, path: Path):
                def send() -> None:
                    c = Client(url, verbose=False, download_files=False)
                    if endpoint == "/reconstruct":
                        c.predict(handle_file(str(path)), api_name=endpoint)
                    elif endpoint == "/reconstruct_drawing":  # the Draw tab's canvas sends a PNG data URL
                        drawn = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
                        c.predict(drawn, api_name=endpoint)
                    else:
                        editor = {"background": handle_file(str(path)), "layers": [], "composite": None}
                        c.predict(editor, example_b, 5, api_name=endpoint)

                return send

            for endpoint in ("/reconstruct", "/reconstruct_drawing", "/interpolate"):  # warm every path first
                sender(endpoint, small)()
            result["idle RSS (MB)"] = round(status_mb(pid, "VmRSS"))
            result["baseline: 28×28 upload to /reconstruct"] = measure(pid, sender("/reconstruct", small), 1, 60)
            for endpoint in ("/reconstruct", "/reconstruct_drawing", "/interpolate"):
                for n in (1, args.parallel):
                    result[f"{endpoint} ×{n}"] = measure(pid, sender(endpoint, big), n, args.timeout)
            del client
    for k, v in result.items():
        print(f"{k:<40} {v}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
