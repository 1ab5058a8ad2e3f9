"""Speed of the app: a reconstruct request's server time, a 25×25 latent grid, and start-up.

    python benchmarks/bench_app.py [--weights weights] [--repeats 50]

Server time is the handler's own work (decoding the upload, preprocessing, the four models, the scores, the
enlarged images) plus writing the output images as PNG files, as the app serves them, measured in process.
Each is also given as a ratio to a baseline measured in the same process (the four models reconstructing one
ready 28×28 digit), so that numbers from a loaded or a faster machine stay comparable. Start-up is measured
on a real ``app.py`` process: from launch until its page answers over HTTP. Targets: < 50 ms per request,
< 100 ms per grid, start-up in a few seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VARIANTS = ("sgvb", "kl_wo_e", "z4/sgvb", "z4/kl_wo_e")  # the four bundled models (webapp.handlers.VARIANTS)


def timeit(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def make_inputs(folder: Path) -> dict[str, str]:
    """Real files of the kinds people send: the MNIST example, a phone photo, a canvas drawing."""
    import numpy as np
    from PIL import Image

    d = np.asarray(Image.open(ROOT / "examples" / "7_0000.png"))
    paths = {"example 28×28 PNG": str(ROOT / "examples" / "7_0000.png")}
    rng = np.random.default_rng(0)
    for name, (w, h) in {"photo 1024×768 JPEG": (1024, 768), "photo 4000×3000 JPEG": (4000, 3000)}.items():
        sheet = Image.new("L", (w, h), 230)
        sheet.paste(Image.fromarray(255 - d).resize((h // 2, h // 2), Image.Resampling.BICUBIC), (w // 3, h // 4))
        noisy = np.asarray(sheet, np.float32) + rng.normal(0, 6, (h, w))
        path = folder / f"{w}x{h}.jpg"
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).convert("RGB").save(path, quality=85)
        paths[name] = str(path)
    drawing = np.zeros((800, 800, 4), np.uint8)
    drawing[100:700, 100:700, 3] = np.asarray(Image.fromarray(d).resize((600, 600)))
    Image.fromarray(drawing).save(folder / "drawing.png")
    paths["drawing 800×800 RGBA PNG"] = str(folder / "drawing.png")
    return paths


def startup_seconds(weights: Path, runs: int, map_cache: Path) -> list[float]:
    from webapp.launch import free_port

    times = []
    for _ in range(runs):
        port = free_port()
        cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port)]
        cmd += [f"--model={v}={weights / v}" for v in VARIANTS]
        t = time.perf_counter()
        env = {**os.environ, "VAE_HUB_MAP_CACHE": str(map_cache)}
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            import urllib.request

            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                        break
                except OSError:
                    if proc.poll() is not None or time.perf_counter() - t > 120:
                        raise RuntimeError("app.py did not start") from None
                    time.sleep(0.05)
            times.append(time.perf_counter() - t)
        finally:
            proc.terminate()
            proc.wait(15)
    return times


def report(results: dict[str, object], json_path: Path | None) -> None:
    """Print ``results`` as aligned lines; also write them to ``json_path`` when given."""
    width = max(map(len, results))
    for k, v in results.items():
        print(f"{k:<{width}}  {v}")
    if json_path:
        json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=ROOT / "weights", help="folder laid out like weights/")
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--startup-runs", type=int, default=3)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()

    t0 = time.perf_counter()
    import gradio  # noqa: F401  (timed: most of the start-up)
    import torch

    t_import_gradio = time.perf_counter() - t0
    from webapp import EXAMPLES_DIR, latent_map, ui
    from webapp.handlers import Handlers, load_models
    from webapp.outputs import images_as_files

    torch.set_num_threads(1)  # as app.main() does
    t1 = time.perf_counter()
    models = load_models({v: args.weights / v for v in VARIANTS})
    with tempfile.TemporaryDirectory() as tmp:
        # The shipped latent-map cache for the bundled weights; a scratch one (built once) for others.
        cache = Path(tmp) / "map"
        maps = {n: latent_map.load_or_build(m, EXAMPLES_DIR, cache_dir=cache) for n, m in models.items()}
        t_models = time.perf_counter() - t1
        handlers = Handlers(models, maps)
        t2 = time.perf_counter()
        ui.build(handlers)
        t_build = time.perf_counter() - t2

        # As served: the handlers wrapped as in webapp.ui.build, images written as PNG files (outputs.png_file).
        reconstruct = images_as_files(handlers.reconstruct)
        grid = images_as_files(handlers.grid)

        x = torch.rand(1, 1, 28, 28)
        baseline = timeit(lambda: [m.reconstruct(x) for m in models.values()], args.repeats * 4)
        results: dict[str, object] = {"baseline: the four models reconstruct one digit (ms)": round(baseline, 3)}
        for name, path in make_inputs(Path(tmp)).items():
            ms = timeit(lambda path=path: reconstruct(path), args.repeats)
            results[f"reconstruct request, {name} (ms)"] = round(ms, 2)
            results[f"reconstruct request, {name} (× baseline)"] = round(ms / baseline, 1)
        z = [0.0] * handlers.max_latent_dim
        decoded = timeit(lambda: handlers.grid("sgvb", 0, 1, "quantile", 2.0, 25, *z), args.repeats)
        as_png = timeit(lambda: grid("sgvb", 0, 1, "quantile", 2.0, 25, *z), args.repeats)
        results["25×25 grid decoded to an image (ms)"] = round(decoded, 2)
        results["25×25 grid decoded and written as PNG (ms)"] = round(as_png, 2)
        results["25×25 grid decoded and written as PNG (× baseline)"] = round(as_png / baseline, 1)
        results["latent map plot (ms)"] = round(timeit(lambda: handlers.latent_map("sgvb", 0, 1, None), 5), 1)
        startups = startup_seconds(args.weights, args.startup_runs, cache)
    results["start-up in process: import gradio+torch (s)"] = round(t_import_gradio, 2)
    results["start-up in process: load models + latent maps (s)"] = round(t_models, 3)
    results["start-up in process: build the Blocks (s)"] = round(t_build, 3)
    results["start-up: `python app.py` until the page answers (s, median)"] = round(statistics.median(startups), 2)
    results["start-up runs (s)"] = [round(s, 2) for s in startups]
    results["torch threads"] = torch.get_num_threads()
    report(results, args.json)


if __name__ == "__main__":
    main()
