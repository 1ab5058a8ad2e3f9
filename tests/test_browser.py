"""A real browser (Debian's chromium, driven by Playwright) uploads a digit, draws one, and gets all reconstructions.

The screenshots are saved under artifacts/browser/ (git-ignored) as test artefacts.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from app_server import ROOT, weights_present
from conftest import require

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts" / "browser"
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
TIMEOUT_MS = 60_000
REC_IDS = ("#rec_sgvb", "#rec_kl_wo_e", "#rec_z4_sgvb", "#rec_z4_kl_wo_e")
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def page(request: pytest.FixtureRequest) -> Iterator:
    require(Path(CHROMIUM).is_file(), f"Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    require(weights_present(), "the bundled weights in weights/ (sgvb, kl_wo_e, z4/sgvb, z4/kl_wo_e)")
    try:
        from playwright import sync_api
    except ImportError:
        require(False, "playwright (pip install playwright; the browser is Debian's chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url = request.getfixturevalue("app_url")
    with tempfile.TemporaryDirectory() as profile, sync_api.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            pg = browser.pages[0] if browser.pages else browser.new_page()
            pg.set_default_timeout(TIMEOUT_MS)
            pg.goto(url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
            pg.locator("#upload").wait_for(state="visible")  # the app has rendered
            yield pg
        finally:
            browser.close()


def _sources(page) -> list[str | None]:
    return [page.locator(f"{i} img").first.get_attribute("src") for i in REC_IDS]


def _image(page, src: str) -> np.ndarray:
    """An image the page shows, fetched with the page's own session, as grey levels in [0, 1]."""
    from PIL import Image

    body = page.request.get(src).body()
    return np.asarray(Image.open(io.BytesIO(body)).convert("L"), dtype=np.float64) / 255.0


def _wait_for_new_outputs(page, before: list[str | None]) -> list[str]:
    """Wait until both reconstruction images show (new) pictures; return their URLs."""
    for sel, old in zip(REC_IDS, before):
        page.wait_for_function(
            """([sel, old]) => { const img = document.querySelector(sel + ' img');
                return img && img.complete && img.naturalWidth > 0 && img.src !== old; }""",
            arg=[sel, old or ""],
            timeout=TIMEOUT_MS,
        )
    return _sources(page)


@pytest.mark.browser
def test_upload_and_draw_reconstruct(page) -> None:
    # 1. Upload a digit image: both variants' reconstructions appear.
    page.locator("#upload input[type=file]").set_input_files(str(ROOT / "examples" / "7_0000.png"))
    after_upload = _wait_for_new_outputs(page, [None] * len(REC_IDS))
    assert page.locator("#view img").first.get_attribute("src")
    page.screenshot(path=str(ARTIFACTS / "upload.png"), full_page=True)

    # 2. Draw a "1" (a short flag, then straight down) on the canvas: new reconstructions of that stroke appear.
    page.get_by_role("tab", name="Draw").click()
    canvas = page.locator("#sketch canvas").first
    canvas.wait_for(state="visible")
    box = canvas.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x0 + 0.40 * w, y0 + 0.30 * h)
    page.mouse.down()
    for t in range(1, 21):  # up-right flag, then straight down
        page.mouse.move(x0 + (0.40 + 0.10 * min(t, 5) / 5) * w, y0 + (0.30 - 0.12 * min(t, 5) / 5) * h)
    for t in range(1, 31):
        page.mouse.move(x0 + 0.50 * w, y0 + (0.18 + 0.64 * t / 30) * h)
    page.mouse.up()
    after_draw = _wait_for_new_outputs(page, after_upload)
    assert after_draw != after_upload
    # The input as the model saw it is a tall, thin stroke: its ink spans most of the height in a narrow band of
    # columns; and every reconstruction is that shape too (a "1"), not the "7" uploaded before.
    view = _image(page, page.locator("#view img").first.get_attribute("src"))
    rows, cols = np.nonzero(view > 0.3)
    assert rows.max() - rows.min() > 0.55 * view.shape[0], "the stroke should span most of the height"
    assert cols.max() - cols.min() < 0.45 * view.shape[1], "the stroke should be narrow"
    for src in after_draw:
        rec = _image(page, src)
        assert np.corrcoef(rec.ravel(), view.ravel())[0, 1] > 0.5, "the reconstruction should look like the stroke"
    page.wait_for_timeout(500)  # let the table and images settle before the picture
    page.screenshot(path=str(ARTIFACTS / "draw.png"), full_page=True)
    scores = page.locator("#scores").inner_text()
    assert "SGVB" in scores and "KL w/o E" in scores

    # 3. Clear: the canvas is empty again, and so are the results (no error message for an emptied canvas).
    page.locator("#sketch button.clear").click()
    page.wait_for_function("() => !document.querySelector('#rec_sgvb img') && !document.querySelector('#view img')")
    ink = page.evaluate(
        """() => { const c = document.querySelector('#sketch canvas');
            return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v); }"""
    )
    assert not ink, "the canvas should be empty after Clear"
    assert page.get_by_text("draw a digit first").count() == 0


@pytest.mark.browser
def test_bad_upload_shows_a_message(page, tmp_path) -> None:
    """A text file named .png: the user sees the library's message in an error toast, and the page keeps working."""
    bad = tmp_path / "notes.png"
    bad.write_text("shopping list: milk, eggs\n")
    page.get_by_role("tab", name="Reconstruct").click()
    page.get_by_role("tab", name="Upload").click()
    clear = page.locator("#upload button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.locator("#upload input[type=file]").set_input_files(str(bad))
    toast = page.get_by_text("is not an image that can be read")
    toast.first.wait_for(state="visible", timeout=TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / "bad_upload.png"), full_page=True)
    assert "Traceback" not in page.locator("body").inner_text()


@pytest.mark.browser
def test_other_tabs(page) -> None:
    """The latent grid, the interpolation (between two clicked examples) and the latent map all render."""
    page.get_by_role("tab", name="Latent grid").click()
    # No button to press: the tab opens with the whole 2-D latent space decoded.
    page.locator("#grid img").first.wait_for(state="visible")
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "grid.png"), full_page=True)

    page.get_by_role("tab", name="Interpolate").click()
    for side, example in (("a", 0), ("b", 4)):
        page.locator(f"#interp_{side}").wait_for(state="visible")
        page.locator(f"#examples_{side} button, #examples_{side} td").nth(example).click()
    page.get_by_role("button", name="Interpolate").click()
    page.locator("#interp_out_sgvb img").first.wait_for(state="visible")
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "interpolate.png"), full_page=True)

    page.get_by_role("tab", name="Latent map").click()
    page.locator("#map img").first.wait_for(state="visible")
    page.wait_for_timeout(300)
    # Click the map: the decoded digit appears beside it, with the point's coordinates.
    assert page.locator("#map_decoded img").count() == 0
    box = page.locator("#map img").first.bounding_box()
    page.mouse.click(box["x"] + 0.45 * box["width"], box["y"] + 0.5 * box["height"])
    page.wait_for_function(
        "() => { const i = document.querySelector('#map_decoded img'); return i && i.complete && i.naturalWidth > 0; }"
    )
    page.get_by_text("Decoded at z0 = ").first.wait_for(state="visible")
    page.screenshot(path=str(ARTIFACTS / "map.png"), full_page=True)


@pytest.mark.browser
def test_phone_layout(page) -> None:
    """At 390×844 the result of an upload is on screen right after the input, above the examples."""
    page.set_viewport_size(PHONE)
    try:
        page.reload(wait_until="domcontentloaded")
        for name in ("Reconstruct", "Latent grid", "Interpolate", "Latent map"):  # none hidden behind a "•••" menu
            tab = page.locator("#main_tabs").get_by_role("tab", name=name, exact=True)
            tab.wait_for(state="visible")
            box = tab.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], name
        page.locator("#upload input[type=file]").set_input_files(str(ROOT / "examples" / "3_0018.png"))
        _wait_for_new_outputs(page, [None] * len(REC_IDS))
        results = page.locator("#rec_sgvb").bounding_box()
        examples = page.locator("#examples").bounding_box()
        assert results["y"] < examples["y"], "the results must come before the examples"
        assert results["y"] + results["height"] < 2 * PHONE["height"], "the results are far below the input"
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / "phone_upload.png"), full_page=True)
        page.get_by_role("tab", name="Draw").click()
        canvas = page.locator("#sketch canvas").first
        canvas.wait_for(state="visible")
        page.wait_for_timeout(500)
        box = canvas.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], "the canvas must fit the phone's width"
        page.screenshot(path=str(ARTIFACTS / "phone_draw.png"), full_page=False)
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
