"""The browser's decoder (webapp/static/vaehub.js) against the Python one, and the live latent map and grid.

Everything is real: the files are served over HTTP on 127.0.0.1 (webapp.static.live's server), the page is
live.html in Debian's chromium driven by Playwright, and the reference is the bundled weights decoded by torch.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require
from safetensors.torch import save

from vae_hub import VAE, Config, bundled_weights
from vae_hub.config import ACTIVATIONS
from vae_hub.hub import BUNDLED
from vae_hub.viz import grid_axis, image_grid, latent_grid
from webapp import EXAMPLES_DIR, latent_map
from webapp.static import live

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
TOL = 1e-4  # per pixel probability, the contract with the Python decoder
TIMEOUT_MS = 30_000


def _has(name: str) -> bool:
    try:
        bundled_weights(name)
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small random model per activation, its decoder's weights scaled up so that the hidden units reach the
    activations' curved parts (at PyTorch's initial scale every activation is nearly linear)."""
    folders = {}
    for k, act in enumerate(ACTIVATIONS):
        torch.manual_seed(k)
        model = VAE(Config(hidden_dims=[16, 8, 4], act_fun=act))
        with torch.no_grad():
            for p in model.decoder.parameters():
                p.mul_(3)
        folders[act] = tmp_path_factory.mktemp("tiny") / act
        model.save_pretrained(folders[act])
    return folders


@pytest.fixture(scope="module")
def server(tiny_models: dict[str, Path]) -> Iterator[live.LiveServer]:
    require(all(_has(n) for n in BUNDLED), "the bundled weights in weights/")
    models = {**live.bundled_files(), **{f"tiny/{a}": live.model_files(f) for a, f in tiny_models.items()}}
    with live.serve(models) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator:
    require(Path(CHROMIUM).is_file(), f"Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        require(False, "playwright (pip install playwright; the browser is Debian's chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


def open_page(browser, url: str, **context: object):
    """live.html at ``url`` in a new context, once it has loaded its first model; page errors fail the test."""
    ctx = browser.new_context(viewport={"width": 1100, "height": 1400}, **context)
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("document.body.dataset.ready === '1' || document.getElementById('live-error').textContent")
    assert not page.locator("#live-error").inner_text(), page.locator("#live-error").inner_text()
    return page


@pytest.fixture
def page(browser, server: live.LiveServer) -> Iterator:
    pg = open_page(browser, server.page_url())
    yield pg
    errors = pg.errors
    pg.context.close()
    assert not errors, errors


_MODELS: dict[str, VAE] = {}


def reference(folder: Path | str) -> VAE:
    key = str(folder)
    if key not in _MODELS:
        _MODELS[key] = VAE.from_pretrained(folder)
    return _MODELS[key]


@torch.no_grad()
def py_decode(model: VAE, zs) -> np.ndarray:
    """torch.sigmoid(model.decoder(z)) for a batch of codes: (N, 784)."""
    return torch.sigmoid(model.decoder(torch.as_tensor(np.asarray(zs), dtype=torch.float32))).numpy()


def js_decode(page, name: str, zs) -> np.ndarray:
    out = page.evaluate(
        "async ([m, zs]) => { const r = []; for (const z of zs) r.push(await vaeHub.decode(m, z)); return r; }",
        [name, np.asarray(zs).tolist()],
    )
    return np.asarray(out, dtype=np.float64)


def codes(d: int, n: int = 50, seed: int = 0) -> np.ndarray:
    """n codes: mostly from N(0, 1.5²), a few far out, to cover the decoder's saturated corners too."""
    z = np.random.default_rng(seed).normal(0, 1.5, (n, d))
    z[:4] = [[5.0] * d, [-5.0] * d, [0.0] * d, [6.0, -6.0] * (d // 2)]
    return z


# --- the decoder -------------------------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("name", BUNDLED)
def test_decode_matches_python_for_bundled_models(page, name: str) -> None:
    model = reference(bundled_weights(name))
    zs = codes(model.latent_dim, seed=len(name))
    want = py_decode(model, zs)
    got = js_decode(page, name, zs)
    assert got.shape == (50, 784)
    assert want.std() > 0.2, "the codes should decode to digits, not a flat grey"
    assert np.abs(got - want).max() <= TOL


@pytest.mark.browser
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_decode_matches_python_for_every_activation(page, tiny_models: dict[str, Path], act: str) -> None:
    model = reference(tiny_models[act])
    zs = codes(2, seed=7)
    want = py_decode(model, zs)
    assert np.abs(js_decode(page, f"tiny/{act}", zs) - want).max() <= TOL
    # The comparison can tell the activations apart: the same weights under any other one decode differently.
    for other in ACTIVATIONS:
        if other != act:
            twin = VAE(Config(hidden_dims=[16, 8, 4], act_fun=other))
            twin.load_state_dict(model.state_dict())
            assert np.abs(py_decode(twin, zs) - want).max() > 10 * TOL, (act, other)


@pytest.mark.browser
def test_erf_is_exact(page) -> None:
    """GELU is exact (erf-based) in torch; the page's erf must be too, not a tanh approximation."""
    xs = np.linspace(-7, 7, 1401).tolist() + [1e-9, -1e-9, 2.4999999, 2.5, 6.4999, 6.5, 30.0]
    got = page.evaluate("(xs) => xs.map(vaeHub.erf)", xs)
    assert max(abs(g - math.erf(x)) for g, x in zip(got, xs)) < 1e-13


@pytest.mark.browser
def test_decoder_fetches_only_its_bytes(page, server: live.LiveServer) -> None:
    """With HTTP Range the page reads the header and the decoder's tensors only (they come first in the file)."""
    start = len(server.requests)  # the server is shared: earlier pages fetched this model too
    page.evaluate("vaeHub.load('z4/sgvb').then(() => null)")
    weights = bundled_weights("z4/sgvb") / "model.safetensors"
    raw = weights.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    need = 8 + n + max(v["data_offsets"][1] for k, v in header.items() if k.startswith("decoder."))
    fetched = [r for r in server.requests[start:] if r.path == "/m/z4/sgvb/model.safetensors"]
    assert {r.status for r in fetched} == {206}
    assert sum(r.sent for r in fetched) == need < 0.55 * len(raw)


@pytest.mark.browser
def test_a_server_without_ranges_works_too(browser) -> None:
    """A plain static server answers a Range request with the whole file: the page uses it as it is."""
    with live.serve({"sgvb": live.model_files(bundled_weights("sgvb"))}, ranges=False) as plain:
        pg = open_page(browser, plain.page_url())
        try:
            zs = codes(2, n=10)
            assert np.abs(js_decode(pg, "sgvb", zs) - py_decode(reference(bundled_weights("sgvb")), zs)).max() <= TOL
            fetched = [r for r in plain.requests if r.path == "/m/sgvb/model.safetensors"]
            size = (bundled_weights("sgvb") / "model.safetensors").stat().st_size
            assert [(r.status, r.sent) for r in fetched] == [(200, size)]
        finally:
            pg.context.close()


@pytest.mark.browser
def test_a_model_held_in_memory(browser, tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """export_files: what the page needs for a model loaded from the Hub, with the map the app built from the
    example digits (a model with no map cache)."""
    model = reference(tiny_models["silu"])
    lmap = latent_map.compute(model, *latent_map.example_digits(EXAMPLES_DIR), "the example digits")
    files = live.export_files(model, lmap, tmp_path / "exported")
    assert sorted(files) == ["config", "map", "weights"]
    with live.serve({"mine": files}) as s:
        pg = open_page(browser, s.page_url())
        try:
            count, labels = pg.evaluate("[liveMap.map.count, Array.from(liveMap.map.labels)]")
            assert count == len(lmap.labels) > 0 and labels == lmap.labels.tolist()
            zs = codes(2, n=10)
            assert np.abs(js_decode(pg, "mine", zs) - py_decode(model, zs)).max() <= TOL
        finally:
            pg.context.close()


@pytest.mark.browser
def test_latent_map_file_is_read_exactly(page) -> None:
    """The float16 means and uint8 labels of the shipped cache, as Python reads them."""
    from safetensors.torch import load_file

    got = page.evaluate(
        "async () => { const m = await vaeHub.loadMap('z4/kl_wo_e'); "
        "return [Array.from(m.mu), Array.from(m.labels), m.count, m.dim]; }"
    )
    want = load_file(live.bundled_files()["z4/kl_wo_e"]["map"])
    assert (got[2], got[3]) == tuple(want["mu"].shape)
    assert np.array_equal(np.asarray(got[0], dtype=np.float32), want["mu"].float().numpy().ravel())
    assert got[1] == want["labels"].tolist()


@pytest.mark.browser
def test_safetensors_parser(page) -> None:
    """Every float type the page converts (F64, F32, F16, BF16) and U8, read as Python wrote them; broken files are
    refused with a message."""
    tensors = {
        "a_f64": torch.randn(3, 2, dtype=torch.float64),
        "b_bf16": torch.randn(5).to(torch.bfloat16),
        "c_f16": torch.tensor([0.0, -0.0, 1e-7, 65504.0, -2.5, float("inf")], dtype=torch.float16),
        "d_u8": torch.arange(7, dtype=torch.uint8),
        "e_f32": torch.randn(4, 3),
    }
    blob = save(tensors, metadata={"x": "y"})
    got = page.evaluate(
        """(b64) => { const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const st = vaeHub.parseSafetensors(bytes);
            return [st.metadata, Object.fromEntries(st.names().map((k) => { const t = st.get(k);
              return [k, [t.dtype, t.shape, Array.from(t.data, (v) => v === Infinity ? 'inf' : v)]]; }))]; }""",
        base64.b64encode(blob).decode(),
    )
    meta, parsed = got
    assert meta == {"x": "y"}
    for name, t in tensors.items():
        dtype, shape, data = parsed[name]
        assert shape == list(t.shape), name
        want = [("inf" if math.isinf(v) else v) for v in t.double().ravel().tolist()]
        assert data == want, name
    assert [parsed[k][0] for k in sorted(parsed)] == ["F64", "BF16", "F16", "U8", "F32"]

    errors = page.evaluate(
        """() => { const bad = [];
            const tryParse = (bytes) => { try { vaeHub.parseSafetensors(bytes); bad.push(null); }
                                          catch (e) { bad.push(e.message); } };
            const header = (obj, extra = 0) => { const h = new TextEncoder().encode(JSON.stringify(obj));
              const out = new Uint8Array(8 + h.length + extra);
              new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
              out.set(h, 8); return out; };
            tryParse(new Uint8Array(4));
            const huge = new Uint8Array(16); new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true); tryParse(huge);
            tryParse(header({t: {dtype: 'F32', shape: [2], data_offsets: [0, 4]}}, 8));
            tryParse(header({t: {dtype: 'F32', shape: [2], data_offsets: [0, 8]}}, 4));
            tryParse(header({t: {dtype: 'Q4', shape: [2], data_offsets: [0, 8]}}, 8));
            tryParse(header({t: {dtype: 'F32', shape: [2], data_offsets: [0, 8]}}, 8));
            return bad; }"""
    )
    assert all(errors[:5]) and errors[5] is None, errors


# --- the latent grid ---------------------------------------------------------------------------------------------


GRIDS = [  # (model, n, dims, span, base): Python's latent_grid arguments
    ("sgvb", 25, (0, 1), "quantile", None),
    ("kl_wo_e", 7, (1, 0), 2.5, None),
    ("z4/kl_wo_e", 9, (2, 0), 1.5, [0.3, -0.7, 1.1, 0.4]),
    ("z4/sgvb", 5, (3, 1), "quantile", [-1.0, 0.5, 2.0, 0.0]),
]


@pytest.mark.browser
def test_grid_matches_python(page) -> None:
    for name, n, dims, span, base in GRIDS:
        got = page.evaluate(
            """async (o) => { const g = await liveGrid.set(o);
                const grey = Array.from(g.pixels.data.filter((_, i) => i % 4 === 0));
                return [Array.from(g.images), Array.from(g.axis), grey, g.pixels.width]; }""",
            {"model": name, "n": n, "dims": list(dims), "span": span, "base": base},
        )
        model = reference(bundled_weights(name))
        want = latent_grid(model, n, dims, span, base)
        assert np.abs(np.asarray(got[0]) - want.numpy().ravel()).max() <= TOL, name
        assert np.abs(np.asarray(got[1]) - grid_axis(n, span).numpy()).max() < 1e-5, name
        # The drawn grid is make_grid's picture of those images (2 px white padding), rounded to 8 bits.
        picture = (image_grid(want, nrow=n).numpy() * 255 + 0.5).astype(int)
        assert got[3] == picture.shape[1] == n * 30 + 2
        assert np.abs(np.asarray(got[2]).reshape(picture.shape) - picture).max() <= 1, name
    assert page.locator("#latent-grid").bounding_box()["width"] > 200


# --- the live map ------------------------------------------------------------------------------------------------


def geometry(page) -> dict:
    return page.evaluate(
        "() => ({rect: liveMap.plotRect(), extent: liveMap.extent, "
        "map: document.getElementById('latent-map').getBoundingClientRect().toJSON()})"
    )


def expected_z(g: dict, x: float, y: float) -> tuple[float, float]:
    """The latent point under the page pixel (x, y), clamped to the plotted region."""
    r, (x0, x1, y0, y1) = g["rect"], g["extent"]
    fx = min(1.0, max(0.0, (x - r["left"]) / r["width"]))
    fy = min(1.0, max(0.0, (y - r["top"]) / r["height"]))
    return x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)


def shown(page) -> tuple[list[float], np.ndarray, bool, str]:
    """The code decoded, the digit drawn in #latent-decode (grey levels 0–255), the pin, the coordinates' text."""
    z, pixels, pinned = page.evaluate(
        """() => { const c = document.getElementById('latent-decode');
            const d = c.getContext('2d').getImageData(0, 0, 28, 28).data;
            return [liveMap.z, Array.from(d.filter((_, i) => i % 4 === 0)), liveMap.pinned]; }"""
    )
    return z, np.asarray(pixels).reshape(28, 28), pinned, page.locator("#latent-coords").inner_text()


def check_drawn(model: VAE, z: list[float], pixels: np.ndarray) -> None:
    want = (py_decode(model, [z])[0].reshape(28, 28) * 255).round()
    assert np.abs(pixels - want).max() <= 1  # the pixel probabilities agree to 1e-4, then round to 8 bits
    assert want.max() > 100, "a digit, not an empty picture"


def one_pixel(g: dict) -> tuple[float, float]:
    (x0, x1, y0, y1), r = g["extent"], g["rect"]
    return (x1 - x0) / r["width"], (y1 - y0) / r["height"]


@pytest.mark.browser
@pytest.mark.parametrize("name", ["sgvb", "z4/sgvb"])
def test_pointer_moves_decode_live_without_requests(page, name: str) -> None:
    base = [0.0, 0.0, -0.8, 1.3] if name.startswith("z4") else None
    page.evaluate("async ([m, base]) => { await liveMap.setModel(m); if (base) liveMap.setBase(base); }", [name, base])
    model = reference(bundled_weights(name))
    g = geometry(page)
    r = g["rect"]
    requests = []
    page.on("request", lambda req: requests.append(req.url))
    page.evaluate(
        "window.events = []; document.getElementById('latent-map').addEventListener('vaehub:point', "
        "(e) => window.events.push(e.detail))"
    )
    seen = []
    for fx, fy in [(0.2, 0.3), (0.5, 0.5), (0.8, 0.7), (0.35, 0.85), (0.65, 0.15)]:
        x, y = r["left"] + fx * r["width"], r["top"] + fy * r["height"]
        page.mouse.move(x, y)
        z, pixels, pinned, text = shown(page)
        assert not pinned
        ex, ey = expected_z(g, x, y)
        px, py = one_pixel(g)
        assert abs(z[0] - ex) <= px and abs(z[1] - ey) <= py, (z, ex, ey)
        if base:
            assert z[2:] == base[2:]
        assert text == ", ".join(f"z{k} = {v:+.2f}".replace("-", "\u2212") for k, v in enumerate(z))
        check_drawn(model, z, pixels)
        seen.append(z)
    assert requests == [], "moving over the map must not fetch anything"
    events = page.evaluate("window.events")
    assert [e["z"] for e in events][-1] == seen[-1] and len(events) >= len(seen)
    assert all(e["drawnTime"] >= e["eventTime"] for e in events)


@pytest.mark.browser
def test_margin_and_colour_key_stay_inside_the_plotted_region(page) -> None:
    model = reference(bundled_weights("sgvb"))
    g = geometry(page)
    r, m, (x0, x1, y0, y1) = g["rect"], g["map"], g["extent"]
    right = r["left"] + r["width"]
    places = {  # page pixel → the clamped point's expected coordinates (None: inside, from the position)
        "left margin (y tick labels)": (m["left"] + 5, r["top"] + 0.4 * r["height"], x0, None),
        "bottom margin (x tick labels)": (r["left"] + 0.6 * r["width"], m["bottom"] - 3, None, y0),
        "colour key": (right + 30, r["top"] + 0.5 * r["height"], x1, None),
        "top right corner": (m["right"] - 2, m["top"] + 2, x1, y1),
        "bottom left corner": (m["left"] + 2, m["bottom"] - 2, x0, y0),
    }
    for where, (x, y, want_x, want_y) in places.items():
        page.mouse.click(x, y)
        z, pixels, pinned, text = shown(page)
        assert pinned and text.endswith("(pinned)"), where
        assert x0 <= z[0] <= x1 and y0 <= z[1] <= y1, where
        ex, ey = expected_z(g, x, y)
        assert z[0] == pytest.approx(want_x if want_x is not None else ex, abs=one_pixel(g)[0]), where
        assert z[1] == pytest.approx(want_y if want_y is not None else ey, abs=one_pixel(g)[1]), where
        if want_x is not None:
            assert z[0] == want_x, where  # exactly the edge
        if want_y is not None:
            assert z[1] == want_y, where
        check_drawn(model, z, pixels)
        page.mouse.click(x, y)  # release the pin
        assert not shown(page)[2]
    # Moving (not clicking) over the margins clamps too.
    page.mouse.move(m["left"] + 1, m["top"] + 1)
    assert shown(page)[0] == [x0, y1]
    page.mouse.move(m["right"] - 1, m["bottom"] - 1)
    assert shown(page)[0] == [x1, y0]
    # A region the page sets: the same clamping to it.
    page.evaluate("liveMap.setExtent([-1, 1, -0.5, 0.5])")
    page.mouse.move(m["left"] + 1, m["top"] + 1)
    assert shown(page)[0] == [-1, 0.5]
    with pytest.raises(Exception, match="x0 < x1"):
        page.evaluate("liveMap.setExtent([1, -1, 0, 1])")


@pytest.mark.browser
def test_pinned_point_stays_until_the_next_click(page) -> None:
    model = reference(bundled_weights("kl_wo_e"))
    page.evaluate("liveMap.setModel('kl_wo_e')")
    g = geometry(page)
    r = g["rect"]
    at = lambda fx, fy: (r["left"] + fx * r["width"], r["top"] + fy * r["height"])  # noqa: E731
    page.mouse.click(*at(0.3, 0.4))
    z_pin, pixels_pin, pinned, text = shown(page)
    assert pinned and "(pinned)" in text
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


@pytest.mark.browser
def test_setters_for_larger_latents(page) -> None:
    """A 4-D model: the other dimensions come from setBase; setDims changes the two shown; pin() takes a point."""
    model = reference(bundled_weights("z4/kl_wo_e"))
    page.evaluate(
        "async () => { await liveMap.setModel('z4/kl_wo_e'); liveMap.setDims([3, 1]); "
        "liveMap.setBase([0.5, 9, -1.25, 9]); liveMap.pin([0.7, -0.4]); }"
    )
    z, pixels, pinned, _ = shown(page)
    assert pinned and z == [0.5, -0.4, -1.25, 0.7]
    check_drawn(model, z, pixels)
    page.evaluate("liveMap.setBase([-1.5, 0, 0.25, 0])")  # the digit follows the new values at once
    z, pixels, _, _ = shown(page)
    assert z == [-1.5, -0.4, 0.25, 0.7]
    check_drawn(model, z, pixels)
    assert page.evaluate("vaeHub.get('latent-map') === liveMap")
    # setMarked: a yellow star on the map's base layer, at the user's code.
    g = geometry(page)
    (x0, x1, y0, y1), r, m = g["extent"], g["rect"], g["map"]
    mark = [0.2, 0.9, -0.3, -0.6]  # shown: z3 → (−0.6), z1 ↑ (0.9)
    px = r["left"] - m["left"] + (mark[3] - x0) / (x1 - x0) * r["width"]
    py = r["top"] - m["top"] + (y1 - mark[1]) / (y1 - y0) * r["height"]
    colour = "([x, y]) => Array.from(liveMap.base.getContext('2d').getImageData(x, y, 1, 1).data)"
    assert page.evaluate(colour, [round(px), round(py)])[:3] != [255, 255, 0]
    page.evaluate("(code) => liveMap.setMarked(code)", mark)
    assert page.evaluate(colour, [round(px), round(py)]) == [255, 255, 0, 255]
    with pytest.raises(Exception, match="two different latent dimensions"):
        page.evaluate("liveMap.setDims([1, 1])")
    # One set of sliders serves every latent size (as the app's handlers): extra values ignored, missing ones 0.
    page.evaluate("liveMap.setBase([0.75, 5, 0.5, 5, 9, 9])")
    assert shown(page)[0] == [0.75, -0.4, 0.5, 0.7]
    page.evaluate("liveMap.setBase([0.25])")
    z, pixels, _, _ = shown(page)
    assert z == [0.25, -0.4, 0.0, 0.7]
    check_drawn(model, z, pixels)
    with pytest.raises(Exception, match="not a finite number"):
        page.evaluate("liveMap.setBase([0, NaN])")


@pytest.mark.browser
def test_finger_and_pen(browser, server: live.LiveServer) -> None:
    """A tap pins the point under the finger (the map takes touches itself: touch-action none); a pen decodes."""
    pg = open_page(browser, server.page_url(), has_touch=True)
    try:
        assert pg.evaluate("getComputedStyle(document.getElementById('latent-map')).touchAction") == "none"
        g = geometry(pg)
        r = g["rect"]
        x, y = r["left"] + 0.55 * r["width"], r["top"] + 0.45 * r["height"]
        pg.touchscreen.tap(x, y)
        z, pixels, pinned, _ = shown(pg)
        assert pinned
        assert z[0] == pytest.approx(expected_z(g, x, y)[0], abs=one_pixel(g)[0])
        check_drawn(reference(bundled_weights("sgvb")), z, pixels)
        pg.touchscreen.tap(x, y)
        assert not shown(pg)[2]

        pg.evaluate(
            "window.kinds = []; document.getElementById('latent-map').addEventListener('pointermove', "
            "(e) => window.kinds.push(e.pointerType))"
        )
        cdp = pg.context.new_cdp_session(pg)
        x, y = r["left"] + 0.25 * r["width"], r["top"] + 0.7 * r["height"]
        cdp.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "pointerType": "pen"})
        assert pg.evaluate("window.kinds") == ["pen"]
        z, pixels, _, _ = shown(pg)
        assert z[0] == pytest.approx(expected_z(g, x, y)[0], abs=one_pixel(g)[0])
        check_drawn(reference(bundled_weights("sgvb")), z, pixels)
    finally:
        pg.context.close()
