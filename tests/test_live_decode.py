"""The browser's decoder (webapp/static/vaehub.js) against the Python one: every activation, exact erf, the
safetensors reader, the map's file and the latent grid.

Real parts throughout: the files are served over HTTP on 127.0.0.1 by Python's plain static server (which ignores
Range requests, as many do: the script then reads the whole file), the page runs in Debian's chromium driven by
Playwright, and the reference is torch. The same script inside the app (its own server, Range, the live map) is
tested in tests/test_live_app.py.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require
from safetensors.torch import save

from vae_hub import VAE, VAEConfig
from vae_hub.config import ACTIVATIONS
from vae_hub.viz import grid_axis, image_grid, latent_grid
from webapp import VARIANTS, WEIGHTS_DIR, latent_map
from webapp.static import live

pytestmark = pytest.mark.browser
TOL = 1e-4  # per pixel probability, the contract with the Python decoder
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small random model per activation, its decoder's weights scaled up so that the hidden units reach the
    activations' curved parts (at PyTorch's initial scale every activation is nearly linear)."""
    folders = {}
    for k, act in enumerate(ACTIVATIONS):
        torch.manual_seed(k)
        model = VAE(VAEConfig(hidden_dims=[16, 8, 4], act_fun=act))
        with torch.no_grad():
            for p in model.decoder.parameters():
                p.mul_(3)
        folders[act] = tmp_path_factory.mktemp("tiny") / act
        model.save_pretrained(folders[act])
    return folders


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A folder served as it is: a page that loads vaehub.js and registers the bundled and the tiny models, each
    with config.json, model.safetensors and the latent map's file at m/<name>/."""
    require(all((WEIGHTS_DIR / v / "model.safetensors").is_file() for v in VARIANTS), "the bundled weights")
    root = tmp_path_factory.mktemp("static")
    shutil.copy(live.SCRIPT, root / live.SCRIPT.name)
    folders = {**{v: WEIGHTS_DIR / v for v in VARIANTS}, **{f"tiny/{a}": f for a, f in tiny_models.items()}}
    for name, folder in folders.items():
        (root / "m" / name).mkdir(parents=True)
        for file in ("config.json", "model.safetensors"):
            shutil.copy(folder / file, root / "m" / name / file)
        lmap = latent_map.load_or_build(VAE.from_pretrained(folder), user_dir=root / "cache")
        (root / "m" / name / "latent_map.safetensors").write_bytes(latent_map.to_bytes(lmap))
    manifest = {n: {k: f"m/{n}/{f}" for k, f in live.NAMES.items()} for n in folders}
    (root / "index.html").write_text(
        f'<!doctype html><meta charset="utf-8"><script src="{live.SCRIPT.name}"></script><body><script>'
        f"for (const [n, urls] of Object.entries({json.dumps(manifest)})) vaeHub.register(n, urls);</script>"
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def page(browser, server: str) -> Iterator:
    pg = browser.new_page(viewport={"width": 1100, "height": 1000})
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server)
    pg.wait_for_function("window.vaeHub")
    yield pg
    pg.close()
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


@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_decode_matches_python_for_every_activation(page, tiny_models: dict[str, Path], act: str) -> None:
    model = reference(tiny_models[act])
    zs = codes(2, seed=7)
    want = py_decode(model, zs)
    assert np.abs(js_decode(page, f"tiny/{act}", zs) - want).max() <= TOL
    # The comparison can tell the activations apart: the same weights under any other one decode differently.
    for other in ACTIVATIONS:
        if other != act:
            twin = VAE(VAEConfig(hidden_dims=[16, 8, 4], act_fun=other))
            twin.load_state_dict(model.state_dict())
            assert np.abs(py_decode(twin, zs) - want).max() > 10 * TOL, (act, other)


def test_erf_is_exact(page) -> None:
    """GELU is exact (erf-based) in torch; the page's erf must be too, not a tanh approximation."""
    xs = np.linspace(-7, 7, 1401).tolist() + [1e-9, -1e-9, 2.4999999, 2.5, 6.4999, 6.5, 30.0]
    got = page.evaluate("(xs) => xs.map(vaeHub.erf)", xs)
    assert max(abs(g - math.erf(x)) for g, x in zip(got, xs)) < 1e-13


def test_a_whole_file_from_a_server_without_ranges(page) -> None:
    """This server answers the script's Range request with the whole file (200): the page reads it as it is."""
    statuses = []
    page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("/z4/sgvb/model.safetensors") else None)
    zs = codes(4, n=10)
    want = py_decode(reference(WEIGHTS_DIR / "z4/sgvb"), zs)
    assert np.abs(js_decode(page, "z4/sgvb", zs) - want).max() <= TOL
    assert statuses == [200]


def test_latent_map_file_is_read_exactly(page) -> None:
    """The float16 means and uint8 labels of the shipped cache, as Python reads them."""
    from safetensors.torch import load_file

    got = page.evaluate(
        "async () => { const m = await vaeHub.loadMap('z4/kl_wo_e'); "
        "return [Array.from(m.mu), Array.from(m.labels), m.count, m.dim]; }"
    )
    want = load_file(latent_map.cache_path(reference(WEIGHTS_DIR / "z4/kl_wo_e"), latent_map.SHIPPED_DIR))
    assert (got[2], got[3]) == tuple(want["mu"].shape)
    assert np.array_equal(np.asarray(got[0], dtype=np.float32), want["mu"].float().numpy().ravel())
    assert got[1] == want["labels"].tolist()


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


def test_grid_matches_python(page) -> None:
    for name, n, dims, span, base in GRIDS:
        got = page.evaluate(
            """async (o) => { const g = await (window.liveGrid ||= vaeHub.mountLatentGrid(document.body, {})).set(o);
                const grey = Array.from(g.pixels.data.filter((_, i) => i % 4 === 0));
                return [Array.from(g.images), Array.from(g.axis), grey, g.pixels.width]; }""",
            {"model": name, "n": n, "dims": list(dims), "span": span, "base": base},
        )
        model = reference(WEIGHTS_DIR / name)
        want = latent_grid(model, n, dims, span, base)
        assert np.abs(np.asarray(got[0]) - want.numpy().ravel()).max() <= TOL, name
        assert np.abs(np.asarray(got[1]) - grid_axis(n, span).numpy()).max() < 1e-5, name
        # The drawn grid is make_grid's picture of those images (2 px white padding), rounded to 8 bits.
        picture = (image_grid(want, nrow=n).numpy() * 255 + 0.5).astype(int)
        assert got[3] == picture.shape[1] == n * 30 + 2
        assert np.abs(np.asarray(got[2]).reshape(picture.shape) - picture).max() <= 1, name
    assert page.locator("#latent-grid").bounding_box()["width"] > 200
