"""Concurrent load on the app: many gradio_client users sending a mix of requests with real image files.

    python benchmarks/load_app.py [--clients 50] [--requests 20] [--concurrency 2] [--weights weights]

It starts ``app.py`` on 127.0.0.1 (queue concurrency ``--concurrency``), then each of ``--clients`` threads opens
its own ``gradio_client.Client`` and sends ``--requests`` requests, cycling through three kinds: a reconstruct of a
real file (MNIST examples, a JPEG photo of a digit on paper, an RGBA canvas drawing), a 15×15 latent grid, and an
interpolation between two uploaded digits. Every answer is checked: the image it returns is fetched, and a
reconstruct's 28×28 view must resemble the digit sent, a grid and an interpolation must have their size. Latency
counts the request and that fetch. It reports errors (target 0), p50 / p99 latency (overall and per kind),
throughput, and the server's peak resident memory (VmHWM from /proc). It stops by itself: the run is bounded by
``--clients × --requests`` and by ``--time-limit``.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # run from a checkout without installing


def make_files(folder: Path) -> list[tuple[str, np.ndarray]]:
    """(path, the 28×28 digit it shows) for a few real files."""
    files = []
    for name in ("7_0000.png", "2_0001.png", "0_0003.png", "4_0004.png"):
        d = np.asarray(Image.open(ROOT / "examples" / name))
        files.append((str(ROOT / "examples" / name), d))
        sheet = Image.new("L", (1024, 768), 225)
        sheet.paste(Image.fromarray(255 - d).resize((400, 400), Image.Resampling.BICUBIC), (300, 180))
        sheet.convert("RGB").save(folder / f"photo_{name}.jpg", quality=80)
        files.append((str(folder / f"photo_{name}.jpg"), d))
        drawing = np.zeros((800, 800, 4), np.uint8)
        drawing[100:700, 100:700, 3] = np.asarray(Image.fromarray(d).resize((600, 600)))
        Image.fromarray(drawing).save(folder / f"drawing_{name}")
        files.append((str(folder / f"drawing_{name}"), d))
    return files


def corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel() - a.mean(), b.astype(np.float64).ravel() - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


KINDS = ("reconstruct", "grid", "interpolate")
GRID_N, STEPS = 15, 8


def run(
    url: str, files: list[tuple[str, np.ndarray]], clients: int, requests: int, time_limit: float = 1800.0
) -> dict[str, object]:
    import httpx
    from gradio_client import Client, handle_file

    from webapp.outputs import grid_side

    latencies: list[float] = []
    per_kind: dict[str, list[float]] = {k: [] for k in KINDS}
    deadline = time.monotonic() + time_limit
    errors: list[str] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(clients)

    def user(i: int) -> None:
        try:
            # Outputs are not downloaded by the client: each user fetches only the 28×28 view, which it checks.
            # (gradio_client's own downloads cost more CPU than the server's work, on the same two cores.)
            c = Client(url, verbose=False, download_files=False)
        except Exception as e:  # counted, not raised: the report is the point
            with lock:
                errors.extend([f"client {i}: connect: {e}"] * requests)
            start_gate.wait()
            return
        start_gate.wait()  # all users start together
        z = [0.0] * latent_dim
        for r in range(requests):
            if time.monotonic() > deadline:
                with lock:
                    errors.append(f"client {i} request {r}: not sent, the time limit was reached")
                continue
            kind = KINDS[(i + r) % len(KINDS)]
            path, digit = files[(i + r) % len(files)]
            t = time.perf_counter()
            phase = "request"
            try:
                if kind == "reconstruct":
                    out = c.predict(handle_file(path), api_name="/reconstruct")[0]
                elif kind == "grid":
                    out = c.predict("sgvb", 0, 1, "quantile", 2, GRID_N, *z, api_name="/grid")
                else:
                    a, b = ({"background": handle_file(p), "layers": [], "composite": None}
                            for p, _ in (files[(i + r) % len(files)], files[(i + r + 1) % len(files)]))  # fmt: skip
                    out = c.predict(a, b, STEPS, api_name="/interpolate")[0]
                phase = "fetching the image"  # on a fresh connection: a kept-alive one may time out between requests
                png = httpx.get(out["url"]).raise_for_status().content
                dt = time.perf_counter() - t
                img = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
                if kind == "reconstruct" and corr(img[::8, ::8], digit) < 0.8:
                    raise AssertionError(f"the answer does not show the digit sent ({Path(path).name})")
                if kind == "grid" and img.shape != (grid_side(GRID_N),) * 2:
                    raise AssertionError(f"a {GRID_N}×{GRID_N} grid came back as {img.shape}")
                if kind == "interpolate" and img.shape != (112, STEPS * 112):
                    raise AssertionError(f"an interpolation of {STEPS} steps came back as {img.shape}")
                with lock:
                    latencies.append(dt)
                    per_kind[kind].append(dt)
            except Exception as e:
                with lock:
                    errors.append(f"client {i} request {r} ({kind}), {phase}: {type(e).__name__}: {e}")

    grid_api = Client(url, verbose=False, download_files=False).view_api(print_info=False, return_format="dict")
    latent_dim = len(grid_api["named_endpoints"]["/grid"]["parameters"]) - 6  # variant, dims, span, k, n; then z
    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    for t in threads:
        t.join(max(1.0, deadline + 60 - time.monotonic()))  # a request under way when the limit passes may finish
    wall = time.perf_counter() - t0
    if any(t.is_alive() for t in threads):
        errors.append("some clients were still waiting after the time limit")
    lat = sorted(latencies)

    def pct(q: float, values: list[float] = lat) -> float | None:
        v = sorted(values)
        return round(v[min(len(v) - 1, int(q * len(v)))] * 1e3, 1) if v else None

    return {
        "clients": clients,
        "requests per client": requests,
        "requests": clients * requests,
        "errors": len(errors),
        "first errors": errors[:5],
        "latency p50 (ms)": pct(0.50),
        "latency p99 (ms)": pct(0.99),
        "latency mean (ms)": round(statistics.mean(lat) * 1e3, 1) if lat else None,
        **{f"{k} p50 / p99 (ms)": (pct(0.5, v), pct(0.99, v)) for k, v in per_kind.items()},
        "throughput (requests/s)": round(len(lat) / wall, 1),
        "wall time (s)": round(wall, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--concurrency", type=int, help="the app's queue concurrency (default: the app's own default)")
    p.add_argument("--weights", type=Path, help="a folder laid out like weights/ (default: the bundled weights)")
    p.add_argument("--time-limit", type=float, default=1800.0, help="seconds after which no request is sent")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()

    import app
    from webapp.handlers import VARIANTS
    from webapp.launch import serve

    extra = [] if args.concurrency is None else ["--concurrency", str(args.concurrency)]
    if args.weights:  # a folder laid out like weights/
        extra += [f"--model={v}={args.weights.resolve() / v}" for v in VARIANTS]
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(Path(tmp))
        with serve(*extra, quiet=True) as url:
            from bench_memory import server_pid, status_mb

            pid = server_pid(int(url.rstrip("/").rsplit(":", 1)[1]))
            result = {"queue concurrency": args.concurrency or app.DEFAULT_CONCURRENCY}
            result["server RSS at start (MB)"] = round(status_mb(pid, "VmRSS"))
            result |= run(url, files, args.clients, args.requests, args.time_limit)
            result["server peak RSS (MB)"] = round(status_mb(pid, "VmHWM"))
    for k, v in result.items():
        print(f"{k:<26} {v}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    sys.exit(1 if result["errors"] else 0)


if __name__ == "__main__":
    main()
