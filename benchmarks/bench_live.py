"""The live latent map's latency in a real browser: pointer move → decoded digit drawn, per bundled model.

    python benchmarks/bench_live.py [--moves 200] [--interval-ms 16] [--runs 1]

Serves the standalone page (webapp/static/live.html, the bundled models) with :mod:`webapp.static.live` on
127.0.0.1 and drives it in headless Chromium (Debian's chromium) with Playwright. For each model it makes
``--moves`` synthetic pointer moves with Playwright's mouse over the plotted region (a Lissajous path, a new point
each move, ``--interval-ms`` apart: a mouse reporting at 60 Hz by default). The page's own clock times each move:

- **latency**: from the pointer event's ``timeStamp`` (when the browser created the event) to the moment the digit,
  the marker and the coordinates are drawn (the ``drawnTime`` of the map's ``vaehub:point`` event);
- **next frame**: from the same ``timeStamp`` to the start of the next animation frame, which shows the drawing.

Network requests made by the page during the moves are counted (Playwright's ``page.on("request")``). Also printed:
the bytes each model's files took over HTTP (with Range requests, as Gradio serves files), the time to decode one
digit and a 25×25 grid in the page, and the time to redraw the grid canvas. The target: a median latency ≤ 16 ms,
p95 ≤ 33 ms, and no request during the moves, for every model.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vae_hub.hub import BUNDLED  # noqa: E402
from webapp.static import live  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
TARGET_MEDIAN_MS, TARGET_P95_MS = 16.0, 33.0

# Collects every drawn point's timings; a rAF after the drawing marks the frame that shows it.
LISTEN_JS = """() => {
  window.__moves = [];
  if (window.__listening) return;
  window.__listening = true;
  document.getElementById('latent-map').addEventListener('vaehub:point', (e) => {
    const d = e.detail;
    if (d.eventTime == null) return;  // a redraw by a setter, not a pointer event
    const row = {latency: d.drawnTime - d.eventTime, handler: d.drawnTime - d.startTime, frame: null};
    window.__moves.push(row);
    requestAnimationFrame(() => { row.frame = performance.now() - d.eventTime; });
  });
}"""

# In-page timings of the decoder alone: one digit (many times, the median of batches) and a 25×25 grid.
DECODE_JS = """async (name) => {
  const m = await vaeHub.load(name);
  const z = new Float64Array(m.latentDim).fill(0.3);
  const out = new Float32Array(784);
  const perDigit = [];
  for (let b = 0; b < 15; b++) {
    const t0 = performance.now();
    for (let k = 0; k < 200; k++) { z[0] = k / 100 - 1; m.decoder.decode(z, out); }
    perDigit.push((performance.now() - t0) / 200);
  }
  const grid = [];
  for (let b = 0; b < 5; b++) {
    const t0 = performance.now();
    m.decoder.grid({n: 25});
    grid.push(performance.now() - t0);
  }
  const draw = [];
  for (let b = 0; b < 5; b++) {
    const t0 = performance.now();
    await liveGrid.set({model: name, n: 25, span: b % 2 ? 2 : 'quantile'});
    draw.push(performance.now() - t0);
  }
  const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
  return {digit: med(perDigit), grid: med(grid), gridDraw: med(draw)};
}"""


def percentile(values: list[float], q: float) -> float:
    """The q-quantile by linear interpolation (numpy's default)."""
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def measure(page, name: str, moves: int, interval_ms: float) -> dict:
    base = [0.0, 0.0, 0.5, -0.5] if name.startswith("z4/") else None
    page.evaluate("async ([m, base]) => { await liveMap.setModel(m); if (base) liveMap.setBase(base); }", [name, base])
    page.wait_for_timeout(300)  # let the redraw of the scatter settle
    r = page.evaluate("liveMap.plotRect()")
    page.evaluate(LISTEN_JS)
    requests: list[str] = []

    def listener(request) -> None:
        requests.append(request.url)

    page.on("request", listener)
    for k in range(moves):
        t = 2 * math.pi * k / moves
        fx, fy = 0.5 + 0.45 * math.sin(3 * t), 0.5 + 0.45 * math.sin(2 * t + 0.5)  # a new point at every step
        page.mouse.move(r["left"] + fx * r["width"], r["top"] + fy * r["height"])
        if interval_ms:
            page.wait_for_timeout(interval_ms)
    page.wait_for_timeout(100)  # the last frames
    page.remove_listener("request", listener)
    rows = page.evaluate("window.__moves")
    lat = [row["latency"] for row in rows]
    frames = [row["frame"] for row in rows if row["frame"] is not None]
    return {
        "events": len(rows),
        "median": statistics.median(lat),
        "p95": percentile(lat, 0.95),
        "max": max(lat),
        "handler_median": statistics.median(row["handler"] for row in rows),
        "frame_median": statistics.median(frames),
        "frame_p95": percentile(frames, 0.95),
        "requests": len(requests),
    }


COLUMNS = (  # (title, key, format): the latency table, in ms
    ("moves", "events", "5d"),
    ("median", "median", "7.2f"),
    ("p95", "p95", "7.2f"),
    ("max", "max", "7.2f"),
    ("frame med", "frame_median", "9.2f"),
    ("frame p95", "frame_p95", "9.2f"),
    ("ours med", "handler_median", "8.2f"),
    ("requests", "requests", "8d"),
)


def bytes_sent(server: live.LiveServer, name: str) -> dict[str, int]:
    """The body bytes the server sent for each of the model's files."""
    sent = dict.fromkeys(live.MODEL_URL_NAMES, 0)
    for kind, file in live.MODEL_URL_NAMES.items():
        sent[kind] = sum(r.sent for r in server.requests if r.path == f"/m/{name}/{file}")
    return sent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--moves", type=int, default=200)
    p.add_argument("--interval-ms", type=float, default=16.0, help="pause between moves (0: back to back)")
    p.add_argument("--runs", type=int, default=1, help="repeat the moves of every model this many times")
    args = p.parse_args(argv)

    from playwright.sync_api import sync_playwright

    ok = True
    with live.serve() as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1300})
        page.goto(server.page_url())
        page.wait_for_function("document.body.dataset.ready === '1'")
        for name in BUNDLED:  # every model loaded once: the bytes each took
            page.evaluate("(m) => liveMap.setModel(m).then(() => null)", name)
        page.evaluate("liveMap.setModel('sgvb').then(() => null)")

        print(f"chromium headless, {args.moves} moves per model, {args.interval_ms:g} ms apart, {args.runs} run(s)")
        print("bytes over HTTP per model (weights with Range: the decoder only; config; latent map):")
        for name in BUNDLED:
            b = bytes_sent(server, name)
            print(f"  {name:<11} weights {b['weights']:>8,d}  config {b['config']:>4,d}  map {b['map']:>7,d}", end="")
            print(f"  total {sum(b.values()):>8,d}")

        print("decoder in the page (median): one digit, a 25×25 grid (625 digits), the grid redrawn (decode + canvas):")
        for name in BUNDLED:
            t = page.evaluate(DECODE_JS, name)
            print(f"  {name:<11} {1000 * t['digit']:7.1f} µs/digit  {t['grid']:6.1f} ms/grid", end="")
            print(f"  {t['gridDraw']:6.1f} ms/redraw")

        print("pointer move → digit drawn (ms; 'ours': the map's own handler, the rest is the browser's input queue):")
        header = " ".join(f"{title:>{fmt[:-1].split('.')[0]}}" for title, _, fmt in COLUMNS)
        print(f"  {'model':<11} {header}  target: median ≤ {TARGET_MEDIAN_MS:g}, p95 ≤ {TARGET_P95_MS:g}, 0 requests")
        for _ in range(args.runs):
            for name in BUNDLED:
                m = measure(page, name, args.moves, args.interval_ms)
                holds = m["median"] <= TARGET_MEDIAN_MS and m["p95"] <= TARGET_P95_MS and m["requests"] == 0
                ok &= holds
                row = " ".join(format(m[key], fmt) for _, key, fmt in COLUMNS)
                print(f"  {name:<11} {row}  {'holds' if holds else 'MISSED'}")
        browser.close()
    print("the target holds for every model" if ok else "the target is MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
