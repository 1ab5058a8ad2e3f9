"""The latent space, live in the app's own page (issue 20, items 1-3): every served model decodes in the browser as
Python does; the map decodes under the pointer with no request; pins, margins, the other dimensions of a 4-D model
(sliders, the digit's code) and the grid, all in the page.

Real parts throughout: ``app.py`` over HTTP (the bundled models, and an app with a ``--model`` folder and a
``--model`` Hub repo read from a Hub cache), Debian's chromium driven by Playwright, the weights decoded by torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from app_server import VARIANTS, WEIGHTS, App, serve, weights_present
from conftest import ROOT, require

from vae_hub import VAE
from vae_hub.viz import latent_grid

pytestmark = pytest.mark.browser
TOL = 1e-4  # per pixel probability, the contract with the Python decoder
TIMEOUT_MS = 60_000
HUB_REPO = "vae-hub-test/perturbed-z4"  # a Hub model, read from a Hub cache made by the test (offline)
MAP = "vaeHub.get('latent-map')"

_MODELS: dict[str, VAE] = {}


def reference(folder: Path | str) -> VAE:
    if str(folder) not in _MODELS:
        _MODELS[str(folder)] = VAE.from_pretrained(folder)
    return _MODELS[str(folder)]


@torch.no_grad()
def py_decode(model: VAE, zs) -> np.ndarray:
    return torch.sigmoid(model.decoder(torch.as_tensor(np.asarray(zs), dtype=torch.float32))).numpy()


def codes(d: int, n: int = 50, seed: int = 0) -> np.ndarray:
    """n codes: mostly from N(0, 1.5²), a few far out, to cover the decoder's saturated corners too."""
    z = np.random.default_rng(seed).normal(0, 1.5, (n, d))
    z[:4] = [[5.0] * d, [-5.0] * d, [0.0] * d, [6.0, -6.0] * (d // 2)]
    return z


def js_decode(page, name: str, zs) -> np.ndarray:
    out = page.evaluate("([m, zs]) => Promise.all(zs.map((z) => vaeHub.decode(m, z)))", [name, np.asarray(zs).tolist()])
    return np.asarray(out, dtype=np.float64)


# --- the apps and the browser ------------------------------------------------------------------------------------


def perturbed(variant: str, folder: Path, seed: int) -> Path:
    """The bundled model with its decoder's weights moved by 5 %: digits still, but not the bundled ones."""
    model = VAE.from_pretrained(WEIGHTS / variant)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(1 + 0.05 * torch.randn(p.shape, generator=g))
    model.save_pretrained(folder)
    shutil.copy(WEIGHTS / variant / "training_args.json", folder)
    return folder


def hub_cache(root: Path, repo: str, files: Path) -> Path:
    """A Hugging Face Hub cache holding ``repo`` at one commit, laid out as huggingface_hub writes it: the files in
    blobs/ under their hashes, linked from snapshots/<commit>/, refs/main naming the commit."""
    repo_dir = root / f"models--{repo.replace('/', '--')}"
    commit = hashlib.sha1(repo.encode()).hexdigest()
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    for f in files.iterdir():
        blob = repo_dir / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        blob.parent.mkdir(exist_ok=True)
        shutil.copy(f, blob)
        link = repo_dir / "snapshots" / commit / f.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return repo_dir / "snapshots" / commit


@pytest.fixture(scope="module")
def custom_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """An app whose 2-D SGVB slot is a ``save_pretrained`` folder and whose 4-D SGVB slot is a Hub repo, read from
    the Hub cache offline; a README lies beside the Hub model's weights (it must not be served)."""
    require(weights_present(), f"the bundled weights in {WEIGHTS}")
    tmp = tmp_path_factory.mktemp("custom")
    folder = perturbed("kl_wo_e", tmp / "my_run", seed=1)
    staged = perturbed("z4/sgvb", tmp / "staged", seed=2)
    (staged / "README.md").write_text("secret notes beside the weights\n")
    snapshot = hub_cache(tmp / "hub", HUB_REPO, staged)
    env = {"HF_HUB_CACHE": str(tmp / "hub"), "HF_HUB_OFFLINE": "1", "VAE_HUB_TEST_WEIGHTS": None}
    with serve("--model", f"sgvb={folder}", "--model", f"z4/sgvb={HUB_REPO}", env=env) as url:
        url.sources = {"sgvb": folder, "z4/sgvb": snapshot}
        yield url


def open_app(browser, url: str, **context: object):
    """The app's page, once its decoder is loaded and the models are registered; page errors fail the test."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, **context)
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function("window.vaeHub && window.vaeHubPage && vaeHubPage.live")
    return page


@pytest.fixture
def page(browser, app_url: App) -> Iterator:
    pg = open_app(browser, app_url)
    yield pg
    errors = pg.errors
    pg.context.close()
    assert not errors, errors


def tab(page, name: str) -> None:
    page.locator("#main_tabs").get_by_role("tab", name=name, exact=True).click()


def show_map(page, model: str) -> None:
    """The Latent map tab with ``model`` chosen on its radio, drawn."""
    tab(page, "Latent map")
    page.wait_for_function(f"{MAP} && {MAP}.model")
    title = page.evaluate("(m) => vaeHubPage.live.titles[m]", model)
    page.locator("#map_model").get_by_label(title).check()
    page.wait_for_function(f"(m) => {MAP}.model.name === m && {MAP}.plotRect().width > 100", arg=model)


def geometry(page) -> dict:
    return page.evaluate(
        f"() => ({{rect: {MAP}.plotRect(), extent: {MAP}.extent, "
        "map: document.getElementById('latent-map').getBoundingClientRect().toJSON()})"
    )


def expected_z(g: dict, x: float, y: float) -> tuple[float, float]:
    """The latent point under the page pixel (x, y), clamped to the plotted region."""
    r, (x0, x1, y0, y1) = g["rect"], g["extent"]
    fx = min(1.0, max(0.0, (x - r["left"]) / r["width"]))
    fy = min(1.0, max(0.0, (y - r["top"]) / r["height"]))
    return x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)


def one_pixel(g: dict) -> tuple[float, float]:
    (x0, x1, y0, y1), r = g["extent"], g["rect"]
    return (x1 - x0) / r["width"], (y1 - y0) / r["height"]


def shown(page) -> tuple[list[float], np.ndarray, bool, str]:
    """The code decoded, the digit drawn in #latent-decode (grey levels 0-255), the pin, the coordinates' text."""
    z, pixels, pinned = page.evaluate(
        f"""() => {{ const d = document.getElementById('latent-decode').getContext('2d').getImageData(0, 0, 28, 28);
            return [{MAP}.z, Array.from(d.data.filter((_, i) => i % 4 === 0)), {MAP}.pinned]; }}"""
    )
    return z, np.asarray(pixels).reshape(28, 28), pinned, page.locator("#latent-coords").inner_text()


def coordinates(z: list[float]) -> str:
    return ", ".join(f"z{k} = {v:+.2f}".replace("-", "\u2212") for k, v in enumerate(z))


def check_drawn(model: VAE, z: list[float], pixels: np.ndarray) -> None:
    """The digit drawn is Python's decode of the code shown (the probabilities agree to 1e-4, then 8-bit)."""
    want = (py_decode(model, [z])[0].reshape(28, 28) * 255).round()
    assert np.abs(pixels - want).max() <= 1
    assert want.max() > 100, "a digit, not an empty picture"


def set_slider(page, elem_id: str, value: float) -> None:
    number = page.locator(f"#{elem_id} input[type=number]")
    number.fill(str(value))
    number.press("Enter")


# --- the decoder in the page ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VARIANTS)
def test_decode_in_the_page_equals_python(page, name: str) -> None:
    model = reference(WEIGHTS / name)
    zs = codes(model.latent_dim, seed=len(name))
    want = py_decode(model, zs)
    assert want.std() > 0.2, "the codes decode to digits, not a flat grey"
    assert np.abs(js_decode(page, name, zs) - want).max() <= TOL


def test_the_decoder_fetches_only_its_bytes(page, app_url: App) -> None:
    """The app serves the weights with HTTP Range (through its gate, not Gradio): the page takes the header and the
    decoder's tensors only (they come first in the file), in two requests."""
    responses: list = []
    page.on("response", lambda r: responses.append(r) if r.url.endswith("/z4/sgvb/model.safetensors") else None)
    page.evaluate("vaeHub.load('z4/sgvb').then(() => null)")
    got = [(r.status, len(r.body())) for r in responses]
    raw = (WEIGHTS / "z4/sgvb" / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    need = 8 + n + max(v["data_offsets"][1] for k, v in header.items() if k.startswith("decoder."))
    assert {s for s, _ in got} == {206} and len(got) == 2
    assert sum(size for _, size in got) == need < 0.55 * len(raw)


def test_custom_models_decode_from_their_own_files(browser, custom_app: App) -> None:
    """A ``--model`` folder and a ``--model`` Hub repo: the page decodes each as Python loads it (not as the bundled
    model of its slot), from the very weights file it was loaded from; nothing else of the folder or the Hub cache
    is served, and no server path is in the page."""
    pg = open_app(browser, custom_app)
    try:
        for name, source in custom_app.sources.items():
            model, bundled = reference(source), reference(WEIGHTS / name)
            zs = codes(model.latent_dim, n=30, seed=3)
            got, want = js_decode(pg, name, zs), py_decode(model, zs)
            assert np.abs(got - want).max() <= TOL and np.abs(py_decode(bundled, zs) - want).max() > 100 * TOL, name
        assert not pg.errors, pg.errors
    finally:
        pg.context.close()
    with httpx.Client(base_url=custom_app, timeout=30) as http:
        snapshot = custom_app.sources["z4/sgvb"]
        served = http.get("live/z4/sgvb/model.safetensors").content
        assert served == (snapshot / "model.safetensors").read_bytes()  # the Hub cache's file, whole
        for path in ("live/z4/sgvb/README.md", "live/z4/sgvb/training_args.json", "live/sgvb/training_args.json",
                     "live/z4/sgvb/", "live/", "live/../app.py", "live/z4/sgvb/model.safetensors/x",
                     f"gradio_api/file={snapshot / 'README.md'}", f"gradio_api/file={snapshot / 'model.safetensors'}"):
            r = http.get(path)
            assert r.status_code == 404 and r.json()["detail"].startswith("Not found"), path
        page_text = http.get("").text + http.get("config").text
    for secret in (str(custom_app.sources["sgvb"]), str(snapshot.parents[2]), str(ROOT), "secret notes"):
        assert secret not in page_text, secret


# --- the live map ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VARIANTS)
def test_pointer_moves_decode_live_without_requests(page, name: str) -> None:
    """Moving over #latent-map draws, at every move, Python's decode of the point under the pointer into
    #latent-decode, with the marker and its coordinates, and sends nothing to the server."""
    model = reference(WEIGHTS / name)
    show_map(page, name)
    g = geometry(page)
    r = g["rect"]
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    for fx, fy in [(0.2, 0.3), (0.5, 0.5), (0.8, 0.7), (0.35, 0.85), (0.65, 0.15)]:
        x, y = r["left"] + fx * r["width"], r["top"] + fy * r["height"]
        page.mouse.move(x, y)
        z, pixels, pinned, text = shown(page)
        (ex, ey), (px, py) = expected_z(g, x, y), one_pixel(g)
        assert not pinned and abs(z[0] - ex) <= px and abs(z[1] - ey) <= py, (z, ex, ey)
        assert z[2:] == [0.0] * (model.latent_dim - 2)  # the sliders' values: 0 until moved
        assert text == coordinates(z)
        check_drawn(model, z, pixels)
    assert requests == [], "moving over the map must not ask the server anything"


def test_a_pinned_point_stays_until_the_next_click(page) -> None:
    model = reference(WEIGHTS / "kl_wo_e")
    show_map(page, "kl_wo_e")
    g = geometry(page)
    r = g["rect"]
    at = lambda fx, fy: (r["left"] + fx * r["width"], r["top"] + fy * r["height"])  # noqa: E731
    page.mouse.click(*at(0.3, 0.4))
    z_pin, pixels_pin, pinned, text = shown(page)
    assert pinned and text == coordinates(z_pin) + " (pinned)"
    check_drawn(model, z_pin, pixels_pin)
    for f in [(0.7, 0.6), (0.1, 0.9), (0.5, 0.5)]:
        page.mouse.move(*at(*f))
        z, pixels, pinned, _ = shown(page)
        assert pinned and z == z_pin and np.array_equal(pixels, pixels_pin)
    page.mouse.click(*at(0.8, 0.2))  # the next click releases it: live again from there
    z, pixels, pinned, text = shown(page)
    assert not pinned and "(pinned)" not in text
    assert z[0] == pytest.approx(expected_z(g, *at(0.8, 0.2))[0], abs=one_pixel(g)[0])
    page.mouse.move(*at(0.6, 0.6))
    z2, pixels2, _, _ = shown(page)
    assert z2 != z and not np.array_equal(pixels2, pixels)
    check_drawn(model, z2, pixels2)


def test_margins_and_colour_key_never_decode_outside(page) -> None:
    """Clicks and moves over the axes' margins, the colour key and the corners decode the nearest point of the
    plotted region, never one outside it."""
    model = reference(WEIGHTS / "sgvb")
    show_map(page, "sgvb")
    g = geometry(page)
    r, m, (x0, x1, y0, y1) = g["rect"], g["map"], g["extent"]
    places = {  # page pixel → the clamped point's expected coordinates (None: inside, from the position)
        "left margin (y tick labels)": (m["left"] + 5, r["top"] + 0.4 * r["height"], x0, None),
        "bottom margin (x tick labels)": (r["left"] + 0.6 * r["width"], m["bottom"] - 3, None, y0),
        "colour key": (r["left"] + r["width"] + 30, r["top"] + 0.5 * r["height"], x1, None),
        "top right corner": (m["right"] - 2, m["top"] + 2, x1, y1),
        "bottom left corner": (m["left"] + 2, m["bottom"] - 2, x0, y0),
    }
    for where, (x, y, want_x, want_y) in places.items():
        page.mouse.click(x, y)
        z, pixels, pinned, text = shown(page)
        assert pinned and text.endswith("(pinned)"), where
        ex, ey = expected_z(g, x, y)
        assert z[0] == (want_x if want_x is not None else pytest.approx(ex, abs=one_pixel(g)[0])), where
        assert z[1] == (want_y if want_y is not None else pytest.approx(ey, abs=one_pixel(g)[1])), where
        check_drawn(model, z, pixels)
        page.mouse.click(x, y)  # release the pin
        assert not shown(page)[2]
    page.mouse.move(m["left"] + 1, m["top"] + 1)
    assert shown(page)[0] == [x0, y1]
    page.mouse.move(m["right"] - 1, m["bottom"] - 1)
    assert shown(page)[0] == [x1, y0]


def test_other_dimensions_from_sliders_and_from_my_digit(page) -> None:
    """A 4-D model: the sliders set the dimensions not shown and the digit follows in the page; "Start from my
    digit's code" sets them to the picked digit's μ (from the reconstructions, no request), which the star marks."""
    page.locator("#examples button[title='example: 3']").first.click()
    page.wait_for_function("Object.keys(vaeHubPage.codes).length === 4")
    mu = page.evaluate("vaeHubPage.codes['z4/kl_wo_e']")
    model = reference(WEIGHTS / "z4/kl_wo_e")
    digit = page.evaluate(
        "() => { const c = document.createElement('canvas'); const i = document.querySelector("
        "'#results figure img'); c.width = c.height = 28; const x = c.getContext('2d'); x.drawImage(i, 0, 0);"
        " return Array.from(x.getImageData(0, 0, 28, 28).data.filter((_, k) => k % 4 === 0)); }"
    )
    want = model.encode(torch.tensor(digit, dtype=torch.float32).reshape(28, 28) / 255)[0][0]
    assert np.allclose(mu, want.numpy(), atol=2e-3)  # the model's μ of the digit shown (from its 8-bit picture)
    show_map(page, "z4/kl_wo_e")
    r = geometry(page)["rect"]
    page.mouse.click(r["left"] + 0.4 * r["width"], r["top"] + 0.6 * r["height"])  # pinned: the sliders still apply
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    set_slider(page, "map_z2", 1.5)
    set_slider(page, "map_z3", -0.75)
    page.wait_for_function(f"{MAP}.z[2] === 1.5 && {MAP}.z[3] === -0.75")
    z, pixels, pinned, text = shown(page)
    assert pinned and text == coordinates(z) + " (pinned)"
    check_drawn(model, z, pixels)
    page.get_by_role("button", name="Start from my digit's code").last.click()
    code = [round(min(3, max(-3, v)), 2) for v in mu]
    page.wait_for_function(f"(c) => {MAP}.z[2] === c[2] && {MAP}.z[3] === c[3]", arg=code)
    check_drawn(model, *shown(page)[:2])
    assert requests == []
    star = page.evaluate(f"{MAP}._marked && Array.from({MAP}._marked)")
    assert np.allclose(star, mu)


def test_finger_and_pen(browser, app_url: App) -> None:
    """A tap pins the point under the finger (the map takes touches itself: touch-action none); a pen decodes."""
    page = open_app(browser, app_url, has_touch=True)
    try:
        show_map(page, "sgvb")
        assert page.evaluate("getComputedStyle(document.getElementById('latent-map')).touchAction") == "none"
        g = geometry(page)
        r = g["rect"]
        x, y = r["left"] + 0.55 * r["width"], r["top"] + 0.45 * r["height"]
        page.touchscreen.tap(x, y)
        z, pixels, pinned, _ = shown(page)
        assert pinned and z[0] == pytest.approx(expected_z(g, x, y)[0], abs=one_pixel(g)[0])
        check_drawn(reference(WEIGHTS / "sgvb"), z, pixels)
        page.touchscreen.tap(x, y)
        assert not shown(page)[2]
        page.evaluate("window.kinds = []; document.getElementById('latent-map').addEventListener('pointermove', "
                      "(e) => window.kinds.push(e.pointerType))")  # fmt: skip
        cdp = page.context.new_cdp_session(page)
        x, y = r["left"] + 0.25 * r["width"], r["top"] + 0.7 * r["height"]
        cdp.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "pointerType": "pen"})
        assert page.evaluate("window.kinds") == ["pen"]
        z, pixels, _, _ = shown(page)
        assert z[0] == pytest.approx(expected_z(g, x, y)[0], abs=one_pixel(g)[0])
        check_drawn(reference(WEIGHTS / "sgvb"), z, pixels)
        assert not page.errors, page.errors
    finally:
        page.context.close()


# --- the live grid -----------------------------------------------------------------------------------------------


def test_the_grid_redraws_in_the_page_as_a_slider_moves(page) -> None:
    tab(page, "Latent grid")
    page.wait_for_function("vaeHub.get('latent-grid') && vaeHub.get('latent-grid').images")
    page.locator("#grid_model").get_by_label("4-D · SGVB").check()
    page.wait_for_function("vaeHub.get('latent-grid').options.model === 'z4/sgvb'")
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    set_slider(page, "grid_z3", -1.2)
    page.wait_for_function("vaeHub.get('latent-grid').options.base[3] === -1.2")
    images = np.asarray(page.evaluate("Array.from(vaeHub.get('latent-grid').images)"))
    want = latent_grid(reference(WEIGHTS / "z4/sgvb"), 15, (0, 1), "quantile", [0, 0, 0, -1.2])
    assert np.abs(images - want.numpy().ravel()).max() <= TOL
    caption = page.locator("#grid .caption").inner_text()
    assert re.fullmatch(r"4-D · SGVB: decoded over z0 and z1 \(Gaussian quantiles; other dimensions at "
                        r"z2 = \+0\.00, z3 = −1\.20\)", caption), caption  # fmt: skip
    assert requests == []
