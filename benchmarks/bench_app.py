"""Speed of the app: each endpoint's own work in process, each endpoint's round trip over HTTP, and start-up.

    python benchmarks/bench_app.py [--repeats 20] [--json out.json]

In process: the handlers (webapp.handlers) on real inputs, as served (images encoded as PNG data URLs), one torch
thread as in the app; each also as a ratio to a baseline measured in the same process (the four models
reconstructing one ready 28×28 digit), so that numbers from a loaded or a faster machine compare. Over HTTP: a real
``app.py``, one client, the median of ``POST /gradio_api/call/<endpoint>`` until its answer has arrived. Start-up:
from launching ``app.py`` until its page answers.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
VARIANTS = ("sgvb", "kl_wo_e", "z4/sgvb", "z4/kl_wo_e")


def timeit(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def make_inputs(folder: Path) -> dict[str, Path]:
    """Real files of the kinds people send: the MNIST example, phone photos, a canvas drawing."""
    import numpy as np
    from PIL import Image

    d = np.asarray(Image.open(ROOT / "examples" / "7_0000.png"))
    paths = {"example 28×28 PNG": ROOT / "examples" / "7_0000.png"}
    rng = np.random.default_rng(0)
    for name, (w, h) in {"photo 1024×768 JPEG": (1024, 768), "photo 4000×3000 JPEG": (4000, 3000)}.items():
        sheet = Image.new("L", (w, h), 230)
        sheet.paste(Image.fromarray(255 - d).resize((h // 2, h // 2), Image.Resampling.BICUBIC), (w // 3, h // 4))
        noisy = np.asarray(sheet, np.float32) + rng.normal(0, 6, (h, w))
        paths[name] = folder / f"{w}x{h}.jpg"
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).convert("RGB").save(paths[name], quality=85)
    drawing = np.zeros((280, 280, 4), np.uint8)
    drawing[30:250, 30:250, 3] = np.asarray(Image.fromarray(d).resize((220, 220)))
    paths["canvas drawing 280×280 RGBA PNG"] = folder / "drawing.png"
    Image.fromarray(drawing).save(paths["canvas drawing 280×280 RGBA PNG"])
    return paths


def data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def report(results: dict[str, object], json_path: Path | None) -> None:
    """Print ``results`` as aligned lines; also write them to ``json_path`` when given."""
    width = max(map(len, results))
    for k, v in results.items():
        print(f"{k:<{width}}  {v}")
    if json_path:
        json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False))


def in_process(inputs: dict[str, Path], repeats: int, folder: Path) -> dict[str, object]:
    import torch

    from webapp import WEIGHTS_DIR, gate
    from webapp.handlers import Handlers, load_models

    torch.set_num_threads(1)  # as app.py does
    t = time.perf_counter()
    models = load_models({v: WEIGHTS_DIR / v for v in VARIANTS})
    out: dict[str, object] = {"load the four models (s)": round(time.perf_counter() - t, 2)}
    uploads = gate.Uploads(folder, keep_s=3600)  # files too large for a data URL are sent as uploads
    handlers = Handlers(models, {v: v for v in VARIANTS}, uploads)
    x = torch.rand(1, 1, 28, 28)
    base = timeit(lambda: [m.reconstruct(x) for m in models.values()], repeats * 4)
    out["baseline: the four models reconstruct one digit (ms)"] = round(base, 3)
    cases: dict[str, Callable[[], object]] = {}
    for name, path in inputs.items():
        value = data_url(path) if path.stat().st_size < 300_000 else uploads.add(str(folder / path.name))
        cases[f"reconstruct, {name}"] = lambda value=value: handlers.reconstruct(value)
    cases["samples 25×25"] = lambda: handlers.samples("z4/sgvb", 25, 1)
    a, b = data_url(ROOT / "examples" / "0_0003.png"), data_url(ROOT / "examples" / "1_0002.png")
    cases["interpolate, 10 steps × 4 models"] = lambda: handlers.interpolate(a, b, 10)
    for name, fn in cases.items():
        ms = timeit(fn, repeats)
        out[f"{name} (ms)"] = round(ms, 2)
        out[f"{name} (× baseline)"] = round(ms / base, 1)
    return out


def over_http(inputs: dict[str, Path], repeats: int, startups: int) -> dict[str, object]:
    import httpx
    from app_server import call, serve

    out: dict[str, object] = {}
    starts = []
    for i in range(max(1, startups)):
        t = time.perf_counter()
        with serve() as url:
            starts.append(time.perf_counter() - t)
            if i:
                continue
            with httpx.Client(base_url=url, timeout=60) as http:
                photo = inputs["photo 1024×768 JPEG"].read_bytes()
                ref = http.post("gradio_api/upload", files={"files": ("photo.jpg", photo)}).json()[0]
            drawing = data_url(inputs["canvas drawing 280×280 RGBA PNG"])
            example = data_url(ROOT / "examples" / "0_0003.png")
            cases = {
                "reconstruct, canvas drawing": ("reconstruct", drawing),
                "reconstruct, uploaded 1024×768 JPEG": ("reconstruct", ref),
                "samples 15×15": ("samples", "sgvb", 15, 3),
                "interpolate, 10 steps": ("interpolate", example, drawing, 10),
            }
            for name, (endpoint, *data) in cases.items():
                def one(endpoint: str = endpoint, data: list = data) -> None:
                    assert call(url, endpoint, *data)[0] == "complete"
                out[f"HTTP round trip, {name} (ms, median)"] = round(timeit(one, repeats), 1)
    out["start-up: `python app.py` until the page answers (s, median)"] = round(statistics.median(starts), 1)
    out["start-up runs (s)"] = [round(s, 1) for s in starts]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--startup-runs", type=int, default=3)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_inputs(Path(tmp))
        results = in_process(inputs, args.repeats, Path(tmp)) | over_http(inputs, args.repeats, args.startup_runs)
    report(results, args.json)


if __name__ == "__main__":
    main()
