"""A real browser (Debian's chromium, driven by Playwright) on the app: drawing, uploads, examples, every tab, at
desktop 1400×900 and phone 390×844; each of issue 20's rough edges has its check. Screenshots of every tab at both
sizes go to artifacts/browser/ (git-ignored)."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

pytestmark = pytest.mark.browser
ARTIFACTS = ROOT / "artifacts" / "browser"
ARTIFACTS.mkdir(parents=True, exist_ok=True)
TIMEOUT_MS = 60_000
DESKTOP, PHONE = {"width": 1400, "height": 900}, {"width": 390, "height": 844}
EXAMPLES = ROOT / "examples"


def open_page(browser, url: str, viewport: dict) -> tuple:
    """A fresh page on the app; and the list of fn_index values it sends to /queue/join."""
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(TIMEOUT_MS)
    joins: list[int] = []
    page.on("request", lambda r: joins.append(r.post_data_json["fn_index"]) if "/queue/join" in r.url else None)
    page.goto(url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
    page.locator("#pad canvas").wait_for(state="visible")
    # the page's decoder script may arrive after the canvas on a loaded machine; every live test needs it
    page.wait_for_function("() => window.vaeHub !== undefined")
    return page, joins


@pytest.fixture
def desktop(browser, app_url: str) -> Iterator:
    page, joins = open_page(browser, app_url, DESKTOP)
    yield page, joins
    page.close()


@pytest.fixture
def phone(browser, app_url: str) -> Iterator:
    page, joins = open_page(browser, app_url, PHONE)
    yield page, joins
    page.close()


def shown(page, selector: str) -> list[np.ndarray]:
    """The images (data URLs) inside ``selector``, as grey levels in [0, 1]."""
    srcs = page.locator(f"{selector} img").evaluate_all("(els) => els.map((e) => e.getAttribute('src'))")
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))).convert("L")) / 255.0
            for s in srcs if s and s.startswith("data:image/png")]  # fmt: skip


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.asarray(a, float).ravel(), np.asarray(b, float).ravel())[0, 1])


def digit(name: str) -> np.ndarray:
    return np.asarray(Image.open(EXAMPLES / name)) / 255.0


STATE = """(sel) => { const e = document.querySelector(sel); if (!e || !e.querySelector('img')) return '';
    return [...e.querySelectorAll('img, figcaption, .caption, table')].map((x) => x.src || x.textContent)
      .join('|'); }"""


def wait_results(page, selector: str, previous: str | None = None) -> str:
    """Wait until ``selector`` shows new results (images and captions: Gradio's own status markup, which changes as
    a request starts, does not count); what it shows."""
    page.wait_for_function(f"([sel, old]) => {{ const s = ({STATE})(sel); return s && s !== old; }}",
                           arg=[selector, previous or ""], timeout=TIMEOUT_MS)  # fmt: skip
    return page.evaluate(STATE, selector)


def draw_one(page, pad: str = "#pad") -> None:
    """Draw a "1" (a short flag, then straight down) on a digit widget."""
    box = page.locator(f"{pad} canvas").bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x0 + 0.40 * w, y0 + 0.30 * h)
    page.mouse.down()
    for t in range(1, 6):
        page.mouse.move(x0 + (0.40 + 0.02 * t) * w, y0 + (0.30 - 0.024 * t) * h)
    for t in range(1, 31):
        page.mouse.move(x0 + 0.50 * w, y0 + (0.18 + 0.64 * t / 30) * h)
    page.mouse.up()


def pick(page, gallery: str, label: str) -> None:
    page.locator(f"{gallery} button[title='example: {label}']").first.click()


def in_view(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return page.evaluate("window.scrollY") == 0 and box is not None and box["y"] >= 0 and \
        box["y"] + box["height"] <= size["height"] and box["x"] + box["width"] <= size["width"]  # fmt: skip


def uncovered(page, selector: str) -> bool:
    """Every image matched is the topmost element at its centre and at its top edge: no label or toolbar on it."""
    return page.evaluate(
        """(sel) => [...document.querySelectorAll(sel)].every((img) => { img.scrollIntoView({block: 'center'});
            const r = img.getBoundingClientRect();
            return [[r.left + r.width / 2, r.top + r.height / 2], [r.left + r.width / 2, r.top + 2]].every(
              ([x, y]) => document.elementFromPoint(x, y) === img); })""",
        selector,
    )


def tab(page, name: str) -> None:
    page.locator("#main_tabs").get_by_role("tab", name=name, exact=True).click()


# --- Reconstruct -------------------------------------------------------------------------------------------------


def test_draw_upload_and_pick_on_one_widget(desktop, tmp_path: Path) -> None:
    page, joins = desktop
    draw_one(page)
    html = wait_results(page, "#results")
    view, *recs = shown(page, "#results")
    rows, cols = np.nonzero(view > 0.3)
    assert rows.max() - rows.min() > 15 and cols.max() - cols.min() < 13, "the input is the drawn 1: tall and thin"
    assert len(recs) == 4 and all(corr(r, view) > 0.5 for r in recs)
    assert page.locator("#results table.scores").count() == 1
    # an example picked over the drawing: the widget shows the example, and the results are the example's
    pick(page, "#examples", "7")
    html = wait_results(page, "#results", html)
    got = shown(page, "#results")[0]
    assert corr(got, digit("7_0000.png")) > 0.9, (joins, corr(got, view))
    assert page.locator("#pad img").get_attribute("src").startswith("data:image/png")
    assert not page.locator("#pad img").is_hidden()
    page.screenshot(path=str(ARTIFACTS / "desktop_reconstruct.png"), full_page=True)
    # each upload, a replacement included, is sent once (one queue join per upload)
    photo = tmp_path / "photo.jpg"
    sheet = Image.new("L", (640, 480), 230)
    sheet.paste(Image.fromarray(255 - np.asarray(Image.open(EXAMPLES / "3_0018.png"))).resize((300, 300)), (170, 90))
    sheet.save(photo, quality=85)
    for expected in ("3_0018.png", "7_0000.png"):
        before = len(joins)
        page.locator("#pad input[type=file]").set_input_files(str(photo if expected[0] == "3" else EXAMPLES / expected))
        html = wait_results(page, "#results", html)
        page.wait_for_timeout(1000)  # anything sent twice would have left by now
        assert len(joins) - before == 1, joins[before:]
        assert corr(shown(page, "#results")[0], digit(expected)) > 0.85
    # after an error the results (scores included) clear, and the message says why
    text = tmp_path / "notes.png"
    text.write_text("shopping list: milk, eggs\n")
    page.locator("#pad input[type=file]").set_input_files(str(text))
    page.get_by_text("not an image in an accepted format").first.wait_for(state="visible")
    page.wait_for_function("() => !document.querySelector('#results img') && !document.querySelector('#results table')")
    assert "Traceback" not in page.locator("body").inner_text()


def test_drop_and_paste_a_picture(desktop) -> None:
    """A picture dropped on the widget, or pasted into it, is uploaded and read like a chosen file."""
    page, joins = desktop
    html = None
    for event, name in (("drop", "6_0011.png"), ("paste", "8_0061.png")):
        data = base64.b64encode((EXAMPLES / name).read_bytes()).decode()
        page.evaluate(
            """([event, data]) => { const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                const dt = new DataTransfer(); dt.items.add(new File([bytes], 'digit.png', {type: 'image/png'}));
                const pad = document.querySelector('#pad .pad');
                pad.dispatchEvent(event === 'drop' ? new DragEvent('drop', {dataTransfer: dt, bubbles: true})
                  : new ClipboardEvent('paste', {clipboardData: dt, bubbles: true})); }""",
            [event, data],
        )
        html = wait_results(page, "#results", html)
        assert corr(shown(page, "#results")[0], digit(name)) > 0.9, event


def test_no_veil_over_the_results_on_pen_up(desktop) -> None:
    """Between pen-up and the new results, the old results stay fully visible: no loading veil fades over them."""
    page, _ = desktop
    pick(page, "#examples", "2")
    html = wait_results(page, "#results")
    page.evaluate(
        """() => { window.veil = []; const tick = () => { const r = document.querySelector('#results');
             const over = [...r.parentElement.querySelectorAll('.wrap, .pending, .translucent')].filter((e) =>
               getComputedStyle(e).display !== 'none' && e.getBoundingClientRect().height > 0);
             window.veil.push(over.length + Number(getComputedStyle(r).opacity) * 0);
             if (window.veil.length < 200) requestAnimationFrame(tick); }; requestAnimationFrame(tick); }"""
    )
    draw_one(page)
    wait_results(page, "#results", html)
    assert max(page.evaluate("window.veil")) == 0


def test_phone_reconstructions_in_view_after_drawing_and_upload(phone) -> None:
    page, _ = phone
    for name in ("Reconstruct", "Latent grid", "Interpolate", "Latent map"):  # none behind a "•••" menu
        box = page.locator("#main_tabs").get_by_role("tab", name=name, exact=True).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], name
    draw_one(page)
    html = wait_results(page, "#results")
    assert all(in_view(page, f"#results figure >> nth={i}") for i in range(5)), "draw: results below the fold"
    page.screenshot(path=str(ARTIFACTS / "phone_reconstruct_draw.png"))
    page.locator("#pad input[type=file]").set_input_files(str(EXAMPLES / "4_0004.png"))
    wait_results(page, "#results", html)
    assert all(in_view(page, f"#results figure >> nth={i}") for i in range(5)), "upload: results below the fold"
    page.screenshot(path=str(ARTIFACTS / "phone_reconstruct.png"), full_page=True)


# --- Latent grid ---------------------------------------------------------------------------------------------------


def sliders_shown(page, dims: tuple[int, ...]) -> None:
    """Wait until exactly the 'other dimensions' sliders of ``dims`` are shown."""
    page.wait_for_function(
        """(want) => JSON.stringify([...document.querySelectorAll('input[type=range]')]
            .filter((e) => e.offsetParent !== null).map((e) => e.closest('.block').textContent)
            .map((t) => (t.match(/z(\\d) \\(when not swept\\)/) || [])[1]).filter(Boolean).sort()) === want""",
        arg=json.dumps([str(d) for d in dims], separators=(",", ":")), timeout=15_000,
    )


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the dropdown labelled ``label``."""
    page.get_by_label(label).click()
    page.get_by_role("option", name=option, exact=True).click()


GRID = "vaeHub.get('latent-grid')"


def wait_grid(page, caption: str) -> None:
    """Wait until the grid decoded in the page has the caption matching the regex ``caption``."""
    page.wait_for_function(f"(re) => {GRID} && {GRID}.images && new RegExp(re).test("
                           "document.querySelector('#grid .caption').textContent)", arg=caption)  # fmt: skip


def test_grid_axes_sliders_samples_and_same_dimension_twice(desktop) -> None:
    page, joins = desktop
    tab(page, "Latent grid")
    wait_grid(page, r"^2-D · SGVB: decoded over z0 and z1 \(Gaussian quantiles\)$")
    axis = page.evaluate(f"Array.from({GRID}.axis)")
    assert len(axis) == 15 and axis[0] < -1.5 and axis[-1] > 1.5  # the axes' coordinates, drawn beside the grid
    assert uncovered(page, "#latent-grid")
    # 2-D model: no axes to choose, no other dimensions, no "start from my digit's code"
    sliders_shown(page, ())
    assert page.get_by_role("button", name="Start from my digit's code").first.is_hidden()
    page.screenshot(path=str(ARTIFACTS / "desktop_grid.png"), full_page=True)
    page.locator("#grid_model").get_by_label("4-D · SGVB").check()
    wait_grid(page, r"^4-D · SGVB: decoded over z0 and z1 .*other dimensions at z2 = \+0\.00, z3 = \+0\.00\)$")
    sliders_shown(page, (2, 3))
    # the same dimension on both axes: the other axis moves away, and the grid never shows an error
    choose(page, "Sweep dimension →", "z1")
    wait_grid(page, r"decoded over z1 and z2 ")
    page.wait_for_timeout(1500)
    assert "Error" not in page.locator("#grid_col").inner_text()
    assert page.get_by_text("choose two different dimensions").count() == 0
    sliders_shown(page, (0, 3))
    # random samples (the server's: torch's generator) take the grid's place, and say what they are
    before = len(joins)
    page.get_by_role("button", name="Random samples").click()
    page.wait_for_function("document.querySelector('#samples .caption')?.textContent.startsWith('Random samples')")
    assert page.locator("#latent-grid").is_hidden() and len(joins) == before + 1
    page.screenshot(path=str(ARTIFACTS / "desktop_grid_samples.png"), full_page=True)
    choose(page, "Sweep dimension ↑", "z3")  # any control: the live grid again
    wait_grid(page, r"decoded over z1 and z3 ")
    assert page.locator("#latent-grid").is_visible() and page.locator("#samples img").count() == 0
    assert len(joins) == before + 1  # the grid itself never asks the server
    page.screenshot(path=str(ARTIFACTS / "desktop_grid_4d.png"), full_page=True)


def test_start_from_my_digits_code(desktop) -> None:
    page, _ = desktop
    pick(page, "#examples", "3")
    wait_results(page, "#results")
    tab(page, "Latent grid")
    wait_grid(page, "^2-D")
    page.locator("#grid_model").get_by_label("4-D · KL w/o E").check()
    wait_grid(page, "^4-D · KL w/o E")
    page.get_by_role("button", name="Start from my digit's code").first.click()
    mu = page.evaluate("vaeHubPage.codes['z4/kl_wo_e']")
    held = ", ".join(f"z{k} = {mu[k]:+.2f}".replace("-", "\u2212") for k in (2, 3))
    wait_grid(page, re.escape(f"other dimensions at {held})"))
    assert held != "z2 = +0.00, z3 = +0.00"


# --- Interpolate -----------------------------------------------------------------------------------------------


def test_interpolate_ends_drawn_uploaded_picked(desktop, tmp_path: Path) -> None:
    page, joins = desktop
    tab(page, "Interpolate")
    html = wait_results(page, "#interp")  # the tab opens with two examples at its ends
    page.locator("#pad_a input[type=file]").set_input_files(str(EXAMPLES / "5_0008.png"))
    html = wait_results(page, "#interp", html)
    draw_one(page, "#pad_b")
    html = wait_results(page, "#interp", html)
    a, b = shown(page, "#interp .ends")
    assert corr(a, digit("5_0008.png")) > 0.9 and b.shape == (28, 28)
    # a pick always wins over what was there (an upload in A, a drawing in B), and the result follows it
    pick(page, "#examples_a", "9")
    pick(page, "#examples_b", "2")
    ends = (digit("9_0007.png"), digit("2_0001.png"))
    for _ in range(150):
        page.wait_for_timeout(200)
        got = shown(page, "#interp .ends")
        if len(got) == 2 and all(corr(g, e) > 0.9 for g, e in zip(got, ends)):
            break
    else:
        raise AssertionError("the picked ends never showed")
    frames = shown(page, "#interp .frames")
    assert len(frames) == 4 * 10 and uncovered(page, "#interp .frames img")
    page.screenshot(path=str(ARTIFACTS / "desktop_interpolate.png"), full_page=True)


def test_phone_strips_are_readable(phone) -> None:
    page, _ = phone
    tab(page, "Interpolate")
    wait_results(page, "#interp")
    page.locator("#interp").scroll_into_view_if_needed()
    sizes = page.locator("#interp .frames img").evaluate_all("(els) => els.map((e) => e.getBoundingClientRect().width)")
    assert len(sizes) == 40 and min(sizes) >= 28, sizes  # a 28×28 digit at least 1:1
    assert uncovered(page, "#interp .frames img")
    page.screenshot(path=str(ARTIFACTS / "phone_interpolate.png"), full_page=True)
    tab(page, "Latent grid")
    wait_grid(page, "^2-D")
    assert uncovered(page, "#latent-grid") and in_view(page, "#latent-grid")
    page.screenshot(path=str(ARTIFACTS / "phone_grid.png"), full_page=True)


# --- Latent map --------------------------------------------------------------------------------------------------


MAP = "vaeHub.get('latent-map')"


def map_ready(page, model: str) -> dict:
    page.wait_for_function(f"(m) => {MAP} && {MAP}.model && {MAP}.model.name === m", arg=model)
    return page.evaluate(f"{MAP}.plotRect()")


def test_map_marks_clicks_inside_only_and_follows_a_new_model(desktop) -> None:
    """A click pins the point under it, with a marker; clicks in the margins or on the colour key pin the nearest
    point inside the plot; a new model decodes the same point again, with that model; none of it asks the
    server."""
    page, joins = desktop
    tab(page, "Latent map")
    r = map_ready(page, "sgvb")
    before = len(joins)
    x, y = r["left"] + 0.5 * r["width"], r["top"] + 0.5 * r["height"]
    page.mouse.click(x, y)
    assert page.evaluate(f"{MAP}.pinned") and "(pinned)" in page.locator("#latent-coords").inner_text()
    marker = page.evaluate(f"([x, y]) => {{ const o = {MAP}.overlay, b = o.getBoundingClientRect();"
                           " const s = o.width / b.width, c = o.getContext('2d');"
                           " return Array.from(c.getImageData((x - b.left) * s, (y - b.top) * s, 1, 1).data); }",
                           [x, y])  # fmt: skip
    assert marker[3] > 0, "a marker where the click was"
    extent = page.evaluate(f"{MAP}.extent")
    for u, v in ((1.12, 0.5), (-0.15, 0.5), (0.5, 1.08)):  # the colour key, the left margin, below the axes
        page.mouse.click(r["left"] + u * r["width"], r["top"] + v * r["height"])  # releases the pin
        page.mouse.click(r["left"] + u * r["width"], r["top"] + v * r["height"])  # pins there
        z = page.evaluate(f"{MAP}.z")
        assert extent[0] <= z[0] <= extent[1] and extent[2] <= z[1] <= extent[3], (u, v, z)
    page.screenshot(path=str(ARTIFACTS / "desktop_map.png"), full_page=True)
    drawn = "Array.from(document.getElementById('latent-decode').getContext('2d').getImageData(0, 0, 28, 28).data)"
    old = page.evaluate(drawn)
    z = page.evaluate(f"{MAP}.z")
    page.locator("#map_model").get_by_label("2-D · KL w/o E").check()
    map_ready(page, "kl_wo_e")
    assert page.evaluate(f"{MAP}.z") == z and page.evaluate(drawn) != old  # the same point, the new model's digit
    page.locator("#map_model").get_by_label("4-D · KL w/o E").check()
    map_ready(page, "z4/kl_wo_e")
    choose(page, "Dimension →", "z1")  # the same dimension on both axes: moved apart, no error
    page.wait_for_function(f"{MAP}.dims[0] === 1 && {MAP}.dims[1] === 2")
    page.wait_for_timeout(1000)
    assert "Error" not in page.locator("#map").locator("xpath=../..").inner_text()
    assert "μ1 →, μ2 ↑" in page.locator("#map .caption").inner_text()
    assert len(joins) == before
    page.screenshot(path=str(ARTIFACTS / "desktop_map_4d.png"), full_page=True)


def test_phone_map(phone) -> None:
    """On a phone the map comes before its controls, and the decoded digit is in view with it."""
    page, _ = phone
    tab(page, "Latent map")
    r = map_ready(page, "sgvb")
    page.mouse.click(r["left"] + 0.6 * r["width"], r["top"] + 0.4 * r["height"])
    top = page.locator("#latent-map").bounding_box()
    digit = page.locator("#latent-decode").bounding_box()
    assert top["width"] > 300 and digit["width"] >= 100
    assert digit["y"] + digit["height"] - top["y"] < PHONE["height"] - 40, "the map and its digit fit on one screen"
    assert top["y"] < page.locator("#map_model").bounding_box()["y"]
    page.screenshot(path=str(ARTIFACTS / "phone_map.png"), full_page=True)
