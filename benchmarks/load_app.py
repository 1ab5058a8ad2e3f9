"""Concurrent load on the app: many clients sending a mix of real requests over HTTP, every answer checked.

    python benchmarks/load_app.py [--clients 50] [--requests 20] [--concurrency 2] [--time-limit 1800]

It starts ``app.py`` on 127.0.0.1 (queue concurrency ``--concurrency``). Each of ``--clients`` threads sends
``--requests`` requests, cycling through: a reconstruct of a real input (an MNIST example or a canvas drawing sent
as a PNG data URL, or a JPEG photo uploaded first, as the page does), 15×15 random samples, and an interpolation
between two digits (8 steps). Every answer is checked: a reconstruct's 28×28 input must resemble the digit sent,
samples and an interpolation must have their sizes (the latent grid and map decode in the page: no request). It
reports errors (target 0), p50 / p99 latency (overall and per kind), throughput, and the server's peak resident
memory (VmHWM). The run is bounded by ``--clients × --requests`` and by ``--time-limit``.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
KINDS = ("reconstruct", "samples", "interpolate")
GRID_N, STEPS = 15, 8


def make_inputs(folder: Path) -> list[tuple[str, str | Path, np.ndarray]]:
    """(kind, data URL or file to upload, the 28×28 digit it shows) for a few real inputs."""
    inputs = []
    for name in ("7_0000.png", "2_0001.png", "0_0003.png", "4_0004.png"):
        d = np.asarray(Image.open(ROOT / "examples" / name))
        example = base64.b64encode((ROOT / "examples" / name).read_bytes()).decode()
        inputs.append(("url", "data:image/png;base64," + example, d))
        sheet = Image.new("L", (1024, 768), 225)
        sheet.paste(Image.fromarray(255 - d).resize((400, 400), Image.Resampling.BICUBIC), (300, 180))
        sheet.convert("RGB").save(folder / f"photo_{name}.jpg", quality=80)
        inputs.append(("upload", folder / f"photo_{name}.jpg", d))
        drawing = np.zeros((280, 280, 4), np.uint8)
        drawing[30:250, 30:250, 3] = np.asarray(Image.fromarray(d).resize((220, 220)))
        buf = io.BytesIO()
        Image.fromarray(drawing).save(buf, "PNG")
        inputs.append(("url", "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(), d))
    return inputs


def images(fragment: str) -> list[np.ndarray]:
    urls = re.findall(r'src="data:image/png;base64,([^"]+)"', fragment)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(u))).convert("L")) for u in urls]


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(float).ravel(), b.astype(float).ravel())[0, 1])


def run(url: str, inputs: list, clients: int, requests: int, time_limit: float) -> dict[str, object]:
    import httpx
    from app_server import call

    latencies: list[float] = []
    per_kind: dict[str, list[float]] = {k: [] for k in KINDS}
    deadline = time.monotonic() + time_limit
    errors: list[str] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(clients)

    def value(i: int) -> tuple[str, np.ndarray]:
        how, source, digit = inputs[i % len(inputs)]
        if how == "url":
            return source, digit
        with httpx.Client(base_url=url, timeout=120) as http:  # as the page does: upload, then call
            return http.post("gradio_api/upload", files={"files": (source.name, source.read_bytes())}).json()[0], digit

    def user(i: int) -> None:
        start_gate.wait()  # all users start together
        for r in range(requests):
            if time.monotonic() > deadline:
                with lock:
                    errors.append(f"client {i} request {r}: not sent, the time limit was reached")
                continue
            kind = KINDS[(i + r) % len(KINDS)]
            t = time.perf_counter()
            try:
                if kind == "reconstruct":
                    image, digit = value(i + r)
                    event, out = call(url, "reconstruct", image)
                    if event != "complete" or corr(images(out[0])[0], digit) < 0.8:
                        raise AssertionError(f"{event}: the answer does not show the digit sent")
                elif kind == "samples":
                    event, out = call(url, "samples", "sgvb", GRID_N, i + r)
                    if event != "complete" or images(out[0])[0].shape != (30 * GRID_N + 2,) * 2:
                        raise AssertionError(f"{event}: not {GRID_N}×{GRID_N} samples")
                else:
                    event, out = call(url, "interpolate", value(i + r)[0], value(i + r + 1)[0], STEPS)
                    if event != "complete" or len(images(out[0])) != 2 + 4 * STEPS:
                        raise AssertionError(f"{event}: not {STEPS} steps for each of the four models")
                dt = time.perf_counter() - t
                with lock:
                    latencies.append(dt)
                    per_kind[kind].append(dt)
            except Exception as e:  # counted, not raised: the report is the point
                with lock:
                    errors.append(f"client {i} request {r} ({kind}): {type(e).__name__}: {str(e)[:200]}")

    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    for t in threads:
        t.join(max(1.0, deadline + 60 - time.monotonic()))
    wall = time.perf_counter() - t0
    if any(t.is_alive() for t in threads):
        errors.append("some clients were still waiting after the time limit")

    def pct(q: float, values: list[float] = latencies) -> float | None:
        v = sorted(values)
        return round(v[min(len(v) - 1, int(q * len(v)))] * 1e3) if v else None

    return {
        "clients": clients,
        "requests": clients * requests,
        "errors": len(errors),
        "first errors": errors[:5],
        "latency p50 (ms)": pct(0.50),
        "latency p99 (ms)": pct(0.99),
        "latency mean (ms)": round(statistics.mean(latencies) * 1e3) if latencies else None,
        **{f"{k} p50 / p99 (ms)": (pct(0.5, v), pct(0.99, v)) for k, v in per_kind.items()},
        "throughput (requests/s)": round(len(latencies) / wall, 1),
        "wall time (s)": round(wall, 1),
    }


def status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--concurrency", type=int, default=2, help="the app's queue concurrency")
    p.add_argument("--time-limit", type=float, default=1800.0, help="seconds after which no request is sent")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    from app_server import serve

    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_inputs(Path(tmp))
        with serve("--concurrency", str(args.concurrency)) as url:
            pid = url.proc.pid
            result: dict[str, object] = {"queue concurrency": args.concurrency}
            result["server RSS at start (MB)"] = round(status_mb(pid, "VmRSS"))
            result |= run(url, inputs, args.clients, args.requests, args.time_limit)
            result["server peak RSS (MB)"] = round(status_mb(pid, "VmHWM"))
    for k, v in result.items():
        print(f"{k:<26} {v}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    sys.exit(1 if result["errors"] else 0)


if __name__ == "__main__":
    main()
