"""Time from the user's action to the reconstructions on screen, in a real browser (Debian's chromium).

    python benchmarks/bench_browser.py [--runs 7]

Starts ``app.py`` (the bundled models) and, in headless Chromium driven by Playwright, measures several times each:

(a) **drawn digit**: mouse strokes on the digit widget's canvas; from the last pen-up (``pointerup``, the first
    event of a mouse-up) to the moment all four reconstruction images have new pictures loaded;
(b) **example**: a click on an example digit; from the click to the same moment.

Both times are taken with the page's own clock (``performance.now()``: a capture listener marks the pen-up or
click, a requestAnimationFrame loop marks the images), so Playwright's round trips do not count. The page is
reloaded before each run, so every run starts from empty images. Each run's network requests (the browser's
Resource Timing) give the breakdown: when the queue was joined and when the result stream ended, relative to the
action (the images come inline with the result). Printed: medians, the difference
(a) − (b), and the ratio (a) / (b) (the machine is shared, so the ratio is the comparable number).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "tests"))

from app_server import serve  # noqa: E402

from benchmarks.bench_app import report  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
REC_IDS = tuple(f"#results figure[data-model='{v}']" for v in ("sgvb", "kl_wo_e", "z4/sgvb", "z4/kl_wo_e"))
TIMEOUT_MS = 60_000
PAUSE_MS = 300  # after the first stroke's result: everything it started has settled

# Marks the user's action (capture phase: before any of the page's own handlers), records the page's requests.
INIT_JS = """
window.__bench = {t0: null};
for (const type of ['pointerup', 'click']) {
  document.addEventListener(type, (e) => { if (window.__bench.arm === type) {
    window.__bench.t0 = performance.now(); window.__bench.arm = null; } }, true);
}
"""

# Resolves (into window.__bench.t1) once every reconstruction shows a loaded picture other than the one before.
WATCH_JS = """(ids) => {
  const old = ids.map((s) => { const i = document.querySelector(s + ' img'); return i ? i.src : ''; });
  window.__bench.t1 = null;
  const tick = () => {
    const ok = ids.every((s, k) => { const i = document.querySelector(s + ' img');
      return i && i.src !== old[k] && i.complete && i.naturalWidth > 0; });
    if (ok) window.__bench.t1 = performance.now(); else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""

# The requests after the action, classified by Gradio's API path: [kind, start, end] in ms from the action.
NETWORK_JS = """() => {
  const t0 = window.__bench.t0, out = [];
  for (const e of performance.getEntriesByType('resource')) {
    if (e.startTime < t0 - 1) continue;
    const u = e.name;
    const kind = u.includes('/upload') ? 'upload' : u.includes('/component_server') ? 'component'
      : u.includes('/queue/join') ? 'join'
      : u.includes('/queue/data') ? 'stream' : u.includes('/file=') ? 'image' : 'other';
    out.push([kind, e.startTime - t0, e.responseEnd - t0]);
  }
  return out;
}"""


def breakdown(entries: list[list], total: float) -> dict[str, float]:
    """The phases of one run (ms after the action); a phase that did not happen is left out."""
    out: dict[str, float] = {}
    by = {k: [e for e in entries if e[0] == k] for k in ("upload", "component", "join", "stream", "image")}
    if by["component"]:  # Gradio's editor's own channel for its layers (accept_blobs), beside the uploads
        out["editor blobs sent"] = min(e[1] for e in by["component"])
    if by["upload"]:
        out["upload starts"] = min(e[1] for e in by["upload"])
        out["upload done"] = max(e[2] for e in by["upload"])
        out["upload requests"] = len(by["upload"])
    if by["join"]:
        out["queue joined (request sent)"] = min(e[1] for e in by["join"])
    if by["image"]:
        out["first image requested"] = min(e[1] for e in by["image"])
        out["last image received"] = max(e[2] for e in by["image"])
    out["result on screen"] = total
    return out


def run_once(page, url: str, action: str) -> tuple[float, dict[str, float]]:
    page.goto(url, wait_until="domcontentloaded")
    canvas = page.locator("#pad canvas")
    canvas.wait_for(state="visible")
    page.wait_for_timeout(300)  # the page's first requests are done
    if action == "draw":
        box = canvas.bounding_box()
        x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
        # A "7": the bar; once its result is on screen, the stroke down, timed from its pen-up (a person lifts
        # the pen between strokes; a stroke drawn while the last one is still on its way waits for it).
        page.evaluate(WATCH_JS, list(REC_IDS))
        page.mouse.move(x0 + 0.30 * w, y0 + 0.25 * h)
        page.mouse.down()
        for t in range(1, 16):
            page.mouse.move(x0 + (0.30 + 0.40 * t / 15) * w, y0 + 0.25 * h)
        page.mouse.up()
        page.wait_for_function("() => window.__bench.t1 !== null", timeout=TIMEOUT_MS)
        page.wait_for_timeout(PAUSE_MS)
        page.evaluate(WATCH_JS, list(REC_IDS))
        page.mouse.move(x0 + 0.70 * w, y0 + 0.25 * h)
        page.mouse.down()
        page.evaluate("() => { window.__bench.arm = 'pointerup'; }")
        for t in range(1, 21):
            page.mouse.move(x0 + (0.70 - 0.25 * t / 20) * w, y0 + (0.25 + 0.55 * t / 20) * h)
        page.mouse.up()
    else:
        example = page.locator("#examples button").nth(3)
        example.wait_for(state="visible")
        page.evaluate(WATCH_JS, list(REC_IDS))
        page.evaluate("() => { window.__bench.arm = 'click'; }")
        example.click()
    page.wait_for_function("() => window.__bench.t1 !== null", timeout=TIMEOUT_MS)
    t0, t1 = page.evaluate("() => [window.__bench.t0, window.__bench.t1]")
    return t1 - t0, breakdown(page.evaluate(NETWORK_JS), t1 - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=7, help="measured runs per action (after one warm-up each)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {"draw": [], "example": []}
    phases: dict[str, list[dict[str, float]]] = {"draw": [], "example": []}
    with serve() as url, tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS, viewport={"width": 1400, "height": 1000}
        )
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.add_init_script(INIT_JS)
            for action in ("draw", "example"):  # warm-up: the server's and the browser's first request
                run_once(page, url, action)
            for _ in range(args.runs):  # interleaved, so that the machine's load hits both alike
                for action in ("draw", "example"):
                    ms, ph = run_once(page, url, action)
                    times[action].append(ms)
                    phases[action].append(ph)
        finally:
            browser.close()

    med = {a: statistics.median(t) for a, t in times.items()}
    results: dict[str, object] = {
        "(a) pen-up to result, drawn digit (ms, median)": round(med["draw"]),
        "(b) click to result, example (ms, median)": round(med["example"]),
        "(a) − (b) (ms)": round(med["draw"] - med["example"]),
        "(a) / (b)": round(med["draw"] / med["example"], 2),
        "(a) runs (ms)": [round(t) for t in times["draw"]],
        "(b) runs (ms)": [round(t) for t in times["example"]],
    }
    for action in ("draw", "example"):
        keys = list(phases[action][0])
        results[f"{action}: phases (ms after the action, median)"] = {
            k: round(statistics.median(ph[k] for ph in phases[action] if k in ph)) for k in keys
        }
    report(results, args.json)


if __name__ == "__main__":
    main()
