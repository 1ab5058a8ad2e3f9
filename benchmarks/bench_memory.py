"""Peak memory of the app's server process: the worst accepted image, requests at once, and many sessions.

    python benchmarks/bench_memory.py [--megapixels 49] [--parallel 4 8] [--sessions 300] [--json out.json]

It starts ``app.py`` (queue concurrency 2) on 127.0.0.1 and reads the server's peak resident memory from
``/proc/<pid>/status`` (VmHWM, reset before each case through ``/proc/<pid>/clear_refs``):

- a 49-megapixel 1-bit PNG (7000×7000, about 14 KB) uploaded and sent to ``/reconstruct``, and two of them to
  ``/interpolate``, once and then ``--parallel`` at once: the rise over the resident memory before the case, per
  request alone (target ≤ 300 MB) and in total (bounded by the concurrency: more requests at once wait, and add
  nothing while they wait);
- a baseline: the same for a 28×28 example;
- ``--sessions`` calls, each from a new session (an API call without one is a session of its own): the resident
  memory after them, which the app's session cap (``--sessions`` of app.py, 200) bounds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from load_app import status_mb  # noqa: E402


def big_bilevel_png(path: Path, megapixels: float) -> None:
    """A square 1-bit PNG of ``megapixels``: a dark MNIST 7 on white paper (compresses to a few KB)."""
    side = int((megapixels * 1e6) ** 0.5)
    digit = Image.open(ROOT / "examples" / "7_0000.png").resize((side * 2 // 3,) * 2, Image.Resampling.NEAREST)
    page = Image.new("L", (side, side), 255)
    page.paste(Image.fromarray(np.where(np.asarray(digit) > 127, 0, 255).astype(np.uint8)), (side // 6, side // 6))
    page.convert("1", dither=Image.Dither.NONE).save(path, optimize=True)


def measure(pid: int, send: Callable[[], str], parallel: int, timeout: float) -> dict[str, object]:
    """Reset the peak, send ``parallel`` requests at once; the answers, the peak (MB) and its rise over before."""
    time.sleep(0.5)
    before = status_mb(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(send()), daemon=True) for _ in range(parallel)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, timeout - (time.perf_counter() - t0)))
    peak = status_mb(pid, "VmHWM")
    return {
        "requests": parallel,
        "answers": sorted(set(results)) + (["timed out"] if len(results) < parallel else []),
        "seconds": round(time.perf_counter() - t0, 1),
        "RSS before (MB)": round(before),
        "rise (MB)": round(peak - before),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--megapixels", type=float, default=49.0)
    p.add_argument("--parallel", type=int, nargs="+", default=[4, 8], help="requests sent at once")
    p.add_argument("--sessions", type=int, default=300, help="calls, each from a new session")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per case")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    import httpx
    from app_server import call, serve

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big_1bit.png"
        big_bilevel_png(big, args.megapixels)
        with Image.open(big) as im:
            size = f"{im.width}×{im.height} mode {im.mode}, {big.stat().st_size / 1024:.0f} KB"
        result: dict[str, object] = {"image": size}
        with serve("--concurrency", "2") as url:
            pid = url.proc.pid

            def upload(path: Path) -> str:
                with httpx.Client(base_url=url, timeout=120) as http:
                    return http.post("gradio_api/upload", files={"files": (path.name, path.read_bytes())}).json()[0]

            def sender(endpoint: str, path: Path) -> Callable[[], str]:
                def send() -> str:
                    refs = [upload(path) for _ in range(1 if endpoint == "reconstruct" else 2)]
                    event, answer = call(url, endpoint, *refs, *([] if endpoint == "reconstruct" else [5]))
                    return event if event == "complete" else f"{event}: {str(answer)[:80]}"

                return send

            small = ROOT / "examples" / "7_0000.png"
            for endpoint in ("reconstruct", "interpolate"):  # warm every path first
                sender(endpoint, small)()
            result["idle RSS (MB)"] = round(status_mb(pid, "VmRSS"))
            result["baseline: a 28×28 example to /reconstruct"] = measure(pid, sender("reconstruct", small), 1, 60)
            for endpoint in ("reconstruct", "interpolate"):
                for n in (1, *args.parallel):
                    result[f"/{endpoint} ×{n}"] = measure(pid, sender(endpoint, big), n, args.timeout)
            rss = {"0": round(status_mb(pid, "VmRSS"))}
            for i in range(1, args.sessions + 1):
                call(url, "samples", "sgvb", 5, i)
                if i % max(1, args.sessions // 6) == 0:
                    rss[str(i)] = round(status_mb(pid, "VmRSS"))
            result["RSS (MB) after N calls, each a new session"] = rss
    for k, v in result.items():
        print(f"{k:<42} {v}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
