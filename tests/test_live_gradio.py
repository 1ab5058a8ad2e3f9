"""vaehub.js inside a real Gradio 6 page, wired as docs/live.md tells the app to: the script in a ``gr.HTML``'s
``head``, the map mounted by its ``js_on_load``, the files served by Gradio's file route (``gr.set_static_paths``),
which honours the script's HTTP Range requests, and Gradio sliders setting the other dimensions of a 4-D model
with a browser-only listener (``js=``, no Python function)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require

from vae_hub import VAE, bundled_weights
from vae_hub.hub import BUNDLED
from webapp.launch import free_port
from webapp.static import live

MODEL = "z4/sgvb"  # a 4-D model: the sliders of z2 and z3 matter, those of the two shown do not
SET_BASE_JS = "(...v) => { vaeHub.get('latent-map').setBase(v); }"  # as docs/live.md has it
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


def mount_js(manifest: dict) -> str:
    """The js_on_load of the map's gr.HTML: register the models, mount the map in the component's element."""
    return f"""
for (const [name, urls] of Object.entries({json.dumps(manifest)})) vaeHub.register(name, urls);
window.liveMap = vaeHub.mountLatentMap(element, {{model: "{MODEL}"}});
"""


@pytest.fixture(scope="module")
def gradio_url() -> Iterator[str]:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio as gr
    except ImportError:
        require(False, "gradio (pip install -r requirements.txt)")
    files = live.bundled_files()
    gr.set_static_paths(live.static_files(files))
    head = f'<script src="{live.gradio_url(live.SCRIPT)}"></script>'
    with gr.Blocks() as demo:
        with gr.Tab("Other"):
            gr.Markdown("another tab, open first: the map's tab is mounted later")
        with gr.Tab("Live map"):
            gr.HTML("", head=head, js_on_load=mount_js(live.manifest(files, live.gradio_url)), elem_id="live-host")
            sliders = [gr.Slider(-3, 3, value=0, step=0.05, label=f"z{d}", elem_id=f"z{d}") for d in range(4)]
            gr.on([s.change for s in sliders], None, sliders, None, js=SET_BASE_JS)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture
def page(gradio_url: str) -> Iterator:
    require(Path(CHROMIUM).is_file(), f"Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        require(False, "playwright (pip install playwright; the browser is Debian's chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            pg = browser.new_page(viewport={"width": 1200, "height": 1000})
            pg.set_default_timeout(60_000)
            errors: list[str] = []
            pg.on("pageerror", lambda e: errors.append(str(e)))
            pg.responses = []
            pg.on("response", lambda r: pg.responses.append((r.url, r.status, r.request.headers.get("range"))))
            pg.goto(gradio_url, wait_until="domcontentloaded")
            pg.get_by_role("tab", name="Live map").click()
            pg.wait_for_function("window.liveMap && liveMap.model !== null")
            yield pg
            assert not errors, errors
        finally:
            browser.close()


def check_drawn(page, model: VAE) -> None:
    """The digit in #latent-decode is Python's decode of the map's code (to 8-bit rounding)."""
    z, pixels = page.evaluate(
        """() => [liveMap.z, Array.from(document.getElementById('latent-decode').getContext('2d')
                   .getImageData(0, 0, 28, 28).data.filter((_, i) => i % 4 === 0))]"""
    )
    with torch.no_grad():
        want = (torch.sigmoid(model.decoder(torch.tensor([z]))).numpy().reshape(28, 28) * 255).round()
    assert np.abs(np.asarray(pixels).reshape(28, 28) - want).max() <= 1


@pytest.mark.browser
def test_the_map_runs_in_a_gradio_page(page) -> None:
    model = VAE.from_pretrained(bundled_weights(MODEL))
    box = page.locator("#latent-map").bounding_box()
    assert box and box["width"] > 300
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    for fx, fy in [(0.3, 0.4), (0.5, 0.6), (0.6, 0.3)]:
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        check_drawn(page, model)
    assert requests == []
    # The sliders set the dimensions the map does not show: the digit follows, decoded in the page.
    for d, value in ((2, "1.5"), (3, "-0.75")):
        number = page.locator(f"#z{d} input[type=number]")
        number.fill(value)
        number.press("Enter")
    page.wait_for_function("liveMap.z[2] === 1.5 && liveMap.z[3] === -0.75")
    check_drawn(page, model)
    # Gradio's file route answered the weights' Range requests: the page took the decoder's bytes only.
    weights = [(status, rng) for url, status, rng in page.responses if url.endswith(f"/{MODEL}/model.safetensors")]
    assert weights and all(status == 206 and rng for status, rng in weights), weights


@pytest.mark.browser
def test_every_bundled_model_decodes_through_gradio(page) -> None:
    for name in BUNDLED:
        model = VAE.from_pretrained(bundled_weights(name))
        zs = np.random.default_rng(1).normal(0, 1.5, (10, model.latent_dim))
        got = page.evaluate("async ([m, zs]) => Promise.all(zs.map((z) => vaeHub.decode(m, z)))", [name, zs.tolist()])
        with torch.no_grad():
            want = torch.sigmoid(model.decoder(torch.tensor(zs, dtype=torch.float32))).numpy()
        assert np.abs(np.asarray(got) - want).max() <= 1e-4, name
