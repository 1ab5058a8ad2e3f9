"""The app: its handlers unit-tested in process, then every endpoint over real HTTP through gradio_client."""

from __future__ import annotations

import base64
import html
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from app_server import VARIANTS, WEIGHTS, weights_present
from conftest import require
from PIL import Image

import app
from vae_hub import VAE, Config
from vae_hub.preprocess import InputError, to_mnist
from webapp import EXAMPLES_DIR, latent_map, ui
from webapp.handlers import Handlers, load_models, pixel_to_latent, score
from webapp.outputs import grid_side

EXAMPLE = EXAMPLES_DIR / "7_0000.png"


def corr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    a, b = (torch.as_tensor(np.asarray(t), dtype=torch.float64).flatten() for t in (a, b))
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / (a.norm() * b.norm()))


def shrink(img: np.ndarray) -> np.ndarray:
    """A 224×224 (8× nearest) view back to 28×28 in [0, 1]."""
    return np.asarray(Image.fromarray(np.asarray(img)).convert("L"))[::8, ::8] / 255.0


@pytest.fixture(scope="module")
def models() -> dict[str, VAE]:
    require(weights_present(), f"the bundled weights in {WEIGHTS}: {', '.join(VARIANTS)}")
    return load_models({v: WEIGHTS / v for v in VARIANTS})


@pytest.fixture(scope="module")
def handlers(models, tmp_path_factory) -> Handlers:
    cache = tmp_path_factory.mktemp("map")  # the bundled weights' maps are shipped; others are built here
    maps = {n: latent_map.load_or_build(m, EXAMPLES_DIR, cache_dir=cache) for n, m in models.items()}
    return Handlers(models, maps)


def zeros(handlers: Handlers) -> list[float]:
    """The grid's 'other dimensions' sliders, all at 0."""
    return [0.0] * handlers.max_latent_dim


TITLES = [
    "2-D latent · SGVB (sampled KL)",
    "2-D latent · KL w/o E (closed-form KL)",
    "4-D latent · SGVB (sampled KL)",
    "4-D latent · KL w/o E (closed-form KL)",
]


# --- unit tests of the handlers ---------------------------------------------------------------------------


def test_reconstruct(handlers) -> None:
    view, *recs, rows, digit = handlers.reconstruct(str(EXAMPLE))
    original = np.asarray(Image.open(EXAMPLE)) / 255.0
    assert len(recs) == 4 and view.dtype == np.uint8
    assert all(img.shape == (224, 224) for img in (view, *recs))
    assert corr(shrink(view), original) > 0.9  # what the model sees is the digit
    for rec in recs:  # and every model's reconstruction resembles it
        assert corr(shrink(rec), original) > 0.6
    assert [r[0] for r in rows] == TITLES  # the original 2-D pair first, each labelled by size and estimator
    for (_, nelbo, rec, kl, mu), model in zip(rows, handlers.models.values()):
        assert all(re.fullmatch(r"\d+\.\d\d", v) for v in (nelbo, rec, kl))  # fixed decimals
        assert float(kl) > 0 and float(rec) > 0 and abs(float(nelbo) - float(rec) - float(kl)) < 0.02
        assert len(mu.split()) == model.latent_dim and all(re.fullmatch(r"[+−]\d\.\d\d", v) for v in mu.split())
    assert digit.shape == (28, 28)
    assert handlers.reconstruct(None) == (None, None, None, None, None, [], None)  # cleared input, cleared outputs


def test_scores_are_reproducible_and_consistent(models) -> None:
    x = to_mnist(str(EXAMPLE))
    m = models["kl_wo_e"]
    a, b = score(m, x), score(m, x)
    assert a == b
    with torch.no_grad():
        mu, logvar = m.encode(x.reshape(1, -1))
    assert abs(a.kl - float(0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum())) < 1e-4
    assert a.mu == [round(float(v), 2) for v in mu[0]]


@pytest.mark.parametrize("n", [5, 13, 25])
def test_grid_has_the_requested_size(handlers, n: int) -> None:
    img = handlers.grid("sgvb", 0, 1, "quantile", 2.0, n, *zeros(handlers))
    assert img.shape == (grid_side(n), grid_side(n)) and img.dtype == np.uint8
    img4 = handlers.grid("z4/sgvb", 2, 3, "quantile", 2.0, n, *zeros(handlers))
    assert img4.shape == img.shape
    cell = img.shape[0] // (n * 30 + 2)  # the integer enlargement
    cells = img[:: cell, :: cell][2 : 2 + 30 * n, 2 : 2 + 30 * n].reshape(n, 30, n, 30)[:, :28, :, :28]  # fmt: skip
    assert cells.std() > 10  # decoded digits, not a flat picture


def test_grid_options_matter(handlers) -> None:
    z = zeros(handlers)
    q = handlers.grid("sgvb", 0, 1, "quantile", 2.0, 7, *z)
    s = handlers.grid("sgvb", 0, 1, "sigma", 3.0, 7, *z)
    swapped = handlers.grid("sgvb", 1, 0, "quantile", 2.0, 7, *z)
    variant = handlers.grid("kl_wo_e", 0, 1, "quantile", 2.0, 7, *z)
    q4 = handlers.grid("z4/sgvb", 0, 1, "quantile", 2.0, 7, *z)
    based4 = handlers.grid("z4/sgvb", 0, 1, "quantile", 2.0, 7, 0, 0, 2.5, -2.5)  # the other dimensions matter
    for img in (s, swapped, variant, q4, based4):
        assert img.shape == q.shape and not np.array_equal(img, q)
    assert not np.array_equal(q4, based4)
    # the swept dimensions' sliders are ignored, and a 2-D grid is the whole space: no other dimensions
    assert np.array_equal(q4, handlers.grid("z4/sgvb", 0, 1, "quantile", 2.0, 7, 1.5, -1.5, 0, 0))
    assert np.array_equal(q, handlers.grid("sgvb", 0, 1, "quantile", 2.0, 7, 1.5, -1.5, 2.5, -2.5))
    with pytest.raises(InputError, match="Choose two different dimensions"):
        handlers.grid("z4/sgvb", 2, 2, "quantile", 2.0, 7, *z)
    with pytest.raises(InputError, match="2 latent dimensions"):
        handlers.grid("sgvb", 0, 3, "quantile", 2.0, 7, *z)


def test_code_and_samples(handlers) -> None:
    digit = handlers.reconstruct(str(EXAMPLE))[-1]
    for variant, d in (("sgvb", 2), ("z4/kl_wo_e", 4)):
        code = handlers.digit_code(variant, digit)
        assert len(code) == 4 and code[d:] == [0.0] * (4 - d) and any(code[:d]) and all(-3 <= v <= 3 for v in code)
    with pytest.raises(InputError, match="no digit yet"):
        handlers.digit_code("sgvb", None)
    a, b, c = (handlers.samples("sgvb", 6, seed) for seed in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c) and a.shape == (grid_side(6),) * 2


def test_interpolate(handlers) -> None:
    a, b = str(EXAMPLES_DIR / "0_0003.png"), str(EXAMPLES_DIR / "1_0002.png")
    strips = handlers.interpolate(a, b, 6)
    assert len(strips) == 4
    for strip, model in zip(strips, handlers.models.values()):
        assert strip.shape == (112, 6 * 112)
        cells = [strip[::4, i * 112 : (i + 1) * 112 : 4] / 255.0 for i in range(6)]
        ends = [model.reconstruct(to_mnist(p))[0, 0].numpy() for p in (a, b)]
        assert corr(cells[0], ends[0]) > 0.98 and corr(cells[-1], ends[1]) > 0.98
        assert corr(cells[0], ends[1]) < 0.9  # the path goes somewhere


def test_latent_map(handlers) -> None:
    plain, view = handlers.latent_map("sgvb", 0, 1, None)
    digit = handlers.reconstruct(str(EXAMPLE))[-1]
    marked, _ = handlers.latent_map("sgvb", 0, 1, digit)
    other, view4 = handlers.latent_map("z4/kl_wo_e", 3, 0, digit)
    assert plain.ndim == 3 and plain.shape[2] == 3 and plain.shape == marked.shape == other.shape
    assert not np.array_equal(plain, marked) and not np.array_equal(marked, other)
    colours = plain.reshape(-1, 3)
    assert len(np.unique(colours[::7], axis=0)) > 50  # a coloured scatter, not an empty axis
    assert view["variant"] == "sgvb" and view["dims"] == [0, 1] and view4["dims"] == [3, 0]
    with pytest.raises(InputError, match="Choose two different dimensions"):
        handlers.latent_map("z4/sgvb", 1, 1, None)


def _stars(img: np.ndarray) -> list[tuple[float, float]]:
    """The centres (x, y from the top left) of the yellow stars: the user's digit, and its legend entry."""
    yellow = (img[..., 0] > 220) & (img[..., 1] > 220) & (img[..., 2] < 60)
    seen, centres = np.zeros_like(yellow), []
    for start in zip(*np.nonzero(yellow)):
        if seen[start]:
            continue
        stack, blob = [start], []
        seen[start] = True
        while stack:  # flood fill one star
            y, x = stack.pop()
            blob.append((y, x))
            for n in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= n[0] < img.shape[0] and 0 <= n[1] < img.shape[1] and yellow[n] and not seen[n]:
                    seen[n] = True
                    stack.append(n)
        if len(blob) > 30:
            ys, xs = zip(*blob)
            centres.append((float(np.mean(xs)), float(np.mean(ys))))
    return centres


@pytest.mark.parametrize("variant, dims", [("sgvb", (0, 1)), ("kl_wo_e", (0, 1)), ("z4/sgvb", (2, 0))])
def test_a_click_on_the_map_decodes_that_point(handlers, variant: str, dims: tuple[int, int]) -> None:
    """Clicking the star (found in the pixels, not computed) decodes the digit's own code: its reconstruction."""
    digit = handlers.reconstruct(str(EXAMPLES_DIR / "3_0018.png"))[-1]
    img, view = handlers.latent_map(variant, *dims, digit)
    mu = handlers.code(variant, digit)
    (xmin, xmax), (ymin, ymax) = view["xlim"], view["ylim"]
    px = (xmax - xmin) / view["box"][2], (ymax - ymin) / view["box"][3]  # one pixel in latent units
    stars = _stars(img)
    assert len(stars) == 2  # the digit's and the legend's
    # the digit's star is where its μ is, to within 2 pixels (the legend's is in a fixed corner)
    errors = [(abs(zx - mu[dims[0]]) / px[0], abs(zy - mu[dims[1]]) / px[1]) for zx, zy in
              (pixel_to_latent(view, x, y) for x, y in stars)]  # fmt: skip
    best = min(range(2), key=lambda i: max(errors[i]))
    assert max(errors[best]) < 2, errors
    x, y = stars[best]
    decoded, text = handlers.decode_click(view, x, y, digit)
    model = handlers.models[variant]
    rec = model.reconstruct(torch.as_tensor(digit).reshape(1, 1, 28, 28))[0, 0].numpy()
    assert decoded.shape == (224, 224) and corr(shrink(decoded), rec) > 0.99
    assert text.startswith("Decoded at z0 = ") and ("other dimensions" in text) == (model.latent_dim > 2)
    # a click elsewhere decodes something else; a click before any map is said in words
    far, _ = handlers.decode_click(view, view["box"][0] + 2, view["height"] - view["box"][1] - 2, digit)
    assert corr(shrink(far), rec) < 0.9
    with pytest.raises(InputError, match="latent map first"):
        handlers.decode_click(None, x, y, digit)


def test_decode_point(handlers) -> None:
    a, text = handlers.decode_point("sgvb", 0, 1, 0.5, -1.0, None)
    b, _ = handlers.decode_point("sgvb", 1, 0, -1.0, 0.5, None)  # the same point, axes swapped
    assert np.array_equal(a, b) and text == "Decoded at z0 = +0.50, z1 = −1.00."
    c, text4 = handlers.decode_point("z4/sgvb", 2, 3, 0.5, -1.0, None)
    assert "z2 = +0.50, z3 = −1.00 (the other dimensions at 0)" in text4 and c.std() > 10


def test_latent_map_cache_and_fallback(models, mnist_root, tmp_path: Path) -> None:
    m = models["z4/sgvb"]
    none = tmp_path / "none"  # no shipped caches: the map is built from MNIST and written to the user cache
    built = latent_map.load_or_build(m, EXAMPLES_DIR, mnist_root, size=500, shipped_dir=none, cache_dir=tmp_path)
    path = latent_map.cache_path(m, tmp_path)
    assert path.is_file() and path.stat().st_size < 10_000 and "500 MNIST test digits" in built.source
    assert not none.exists()
    cached = latent_map.load_or_build(m, EXAMPLES_DIR, tmp_path / "no-mnist", shipped_dir=none, cache_dir=tmp_path)
    assert torch.allclose(cached.mu, built.mu, atol=2e-3) and torch.equal(cached.labels, built.labels)
    empty = tmp_path / "empty"
    fallback = latent_map.load_or_build(m, EXAMPLES_DIR, tmp_path / "no-mnist", shipped_dir=none, cache_dir=empty)
    assert len(fallback.labels) == len(ui.EXAMPLES) and "example digits" in fallback.source
    other = VAE(Config())
    assert latent_map.fingerprint(other) != latent_map.fingerprint(m)


def test_latent_map_cache_goes_to_the_user_cache(models, mnist_root, tmp_path: Path, monkeypatch) -> None:
    """Weights without a shipped cache get theirs in $VAE_HUB_CACHE/latent_map, never in the checkout."""
    monkeypatch.delenv("VAE_HUB_MAP_CACHE", raising=False)
    monkeypatch.setenv("VAE_HUB_CACHE", str(tmp_path / "cache"))
    other = VAE(Config()).eval()
    before = sorted(latent_map.SHIPPED_DIR.iterdir())
    latent_map.load_or_build(other, EXAMPLES_DIR, mnist_root, size=300)
    assert latent_map.cache_path(other, tmp_path / "cache" / "latent_map").is_file()
    assert sorted(latent_map.SHIPPED_DIR.iterdir()) == before


def test_shipped_latent_map_matches_the_bundled_weights(models) -> None:
    """A Space has no MNIST: the map of the bundled weights must ship (refresh it after retraining, docs/app.md)."""
    if os.environ.get("VAE_HUB_TEST_WEIGHTS"):
        pytest.skip("other weights than the bundled ones")
    for name, m in models.items():
        path = latent_map.cache_path(m, app.ROOT / "assets" / "latent_map")
        assert path.is_file(), f"no latent-map cache for the bundled {name} weights: {path} (see docs/app.md)"
        lmap = latent_map.load_or_build(m, EXAMPLES_DIR, "/nonexistent", cache_dir="/nonexistent")
        assert len(lmap.labels) == latent_map.MAP_SIZE


def test_user_errors() -> None:
    def bad_image() -> None:
        to_mnist(np.zeros((100, 100)))

    def bug() -> None:
        raise RuntimeError("internal detail")

    with pytest.raises(gr.Error, match="(?i)draw a digit first"):
        ui.user_errors(bad_image)()
    with pytest.raises(gr.Error) as info:
        ui.user_errors(bug)()
    assert "internal detail" not in str(info.value) and "went wrong" in str(info.value)


def test_model_sources(monkeypatch) -> None:
    monkeypatch.delenv("VAE_HUB_SGVB", raising=False)
    monkeypatch.setenv("VAE_HUB_KL_WO_E", "someone/vae-kl")
    monkeypatch.delenv("VAE_HUB_Z4_SGVB", raising=False)
    monkeypatch.delenv("VAE_HUB_Z4_KL_WO_E", raising=False)
    src = app.model_sources(["sgvb=/tmp/x", "z4/kl_wo_e=someone/vae-z4"])
    assert src == {
        "sgvb": "/tmp/x",
        "kl_wo_e": "someone/vae-kl",
        "z4/sgvb": str(app.ROOT / "weights" / "z4" / "sgvb"),
        "z4/kl_wo_e": "someone/vae-z4",
    }
    assert app.model_sources([])["sgvb"] == str(app.ROOT / "weights" / "sgvb")
    for bad in ("sgvb", "vae=/tmp/x", "sgvb="):
        with pytest.raises(SystemExit, match="VARIANT=DIR_OR_REPO"):
            app.model_sources([bad])


def test_titles_say_each_models_latent_size(tmp_path: Path) -> None:
    """The labels come from the weights, not from the variant's name: a 4-D model served as 'sgvb' says 4-D."""
    VAE(Config(hidden_dims=[64, 8])).save_pretrained(tmp_path / "a")
    VAE(Config(hidden_dims=[64, 12])).save_pretrained(tmp_path / "b")
    models = load_models({"sgvb": tmp_path / "a", "z4/kl_wo_e": tmp_path / "b"})
    handlers = Handlers(models, {})
    assert handlers.titles == {
        "sgvb": "4-D latent · SGVB (sampled KL)",
        "z4/kl_wo_e": "6-D latent · KL w/o E (closed-form KL)",
    }
    assert "4-D and 6-D" in ui.describe(handlers) and "2 models" in ui.describe(handlers)


# --- end to end over HTTP ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(models, request: pytest.FixtureRequest) -> Iterator:
    from gradio_client import Client

    yield Client(request.getfixturevalue("app_url"), verbose=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Real image files: a JPEG photo of dark ink on paper, an RGBA drawing, and bad files."""
    d = np.asarray(Image.open(EXAMPLE))
    folder = tmp_path_factory.mktemp("files")
    for name, example in (("photo", EXAMPLE), ("photo_1", EXAMPLES_DIR / "1_0002.png")):
        ink = np.asarray(Image.open(example))
        sheet = Image.new("L", (900, 700), 235)
        sheet.paste(Image.fromarray(255 - ink).resize((420, 420), Image.Resampling.BICUBIC), (300, 120))
        sheet.convert("RGB").save(folder / f"{name}.jpg", quality=70)
        sheet.convert("RGBA").save(folder / f"{name}_composite.png")  # the editor's flattened, opaque layer
    drawing = np.zeros((280, 280, 4), np.uint8)  # as the Draw tab's canvas sends it: black ink in the alpha channel
    drawing[30:250, 30:250, 3] = np.asarray(Image.fromarray(d).resize((220, 220)))
    Image.fromarray(drawing).save(folder / "drawing.png")
    Image.new("RGBA", (280, 280)).save(folder / "blank.png")
    png = (folder / "drawing.png").read_bytes()
    (folder / "truncated.png").write_bytes(png[: len(png) // 3])
    (folder / "text.png").write_text("not an image\n")
    (folder / "empty.png").write_bytes(b"")
    from test_preprocess import png_header_only

    (folder / "bomb.png").write_bytes(png_header_only(20000, 20000))
    return {p.stem: str(p) for p in folder.iterdir()}


def data_url(path: str) -> str:
    """A file as the drawing canvas sends its PNG: ``data:image/png;base64,…``."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _load(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def table_rows(table: str) -> list[list[str]]:
    """The scores table's rows (model, nELBO, reconstruction, KL) from its HTML."""
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", table)
    return [[html.unescape(c) for c in row] for row in rows]


@pytest.mark.http
def test_http_reconstruct_upload_and_drawing(client, files) -> None:
    from gradio_client import handle_file

    original = np.asarray(Image.open(EXAMPLE)) / 255.0
    for value, api in (
        (handle_file(str(EXAMPLE)), "/reconstruct"),
        (handle_file(files["photo"]), "/reconstruct"),
        (data_url(files["drawing"]), "/reconstruct_drawing"),
    ):
        view, *recs, table = client.predict(value, api_name=api)
        assert corr(shrink(_load(view)), original) > 0.85, api
        assert len(recs) == 4
        for rec in recs:
            assert corr(shrink(_load(rec)), original) > 0.6, api
        assert [row[0] for row in table_rows(table)] == TITLES and table.count("μ = ") == 4


@pytest.mark.http
def test_http_grid_samples_code_interpolate_map(client, handlers) -> None:
    from gradio_client import handle_file

    z = zeros(handlers)
    for variant, dims in (("sgvb", (0, 1)), ("z4/kl_wo_e", (3, 1))):
        for n in (5, 25):
            img = _load(client.predict(variant, *dims, "sigma", 2.5, n, *z, api_name="/grid"))
            assert img.shape == (grid_side(n), grid_side(n))
        img = _load(client.predict(variant, 15, 9, api_name="/samples"))
        assert img.shape == (grid_side(15),) * 2
    client.predict(handle_file(str(EXAMPLE)), api_name="/reconstruct")  # sets this session's current digit
    code = client.predict("z4/sgvb", api_name="/digit_code")
    assert len(code) == 4 and all(v != 0 for v in code)
    code = client.predict("sgvb", api_name="/digit_code")
    assert len(code) == 4 and any(code[:2]) and list(code[2:]) == [0, 0]
    ends = [{"background": handle_file(str(EXAMPLES_DIR / f)), "layers": [], "composite": None}
            for f in ("0_0003.png", "1_0002.png")]  # fmt: skip
    strips = client.predict(*ends, 8, api_name="/interpolate")
    assert [_load(s).shape for s in strips] == [(112, 8 * 112)] * 4
    for variant, dims in (("sgvb", (0, 1)), ("z4/kl_wo_e", (1, 2))):
        out = client.predict(variant, *dims, api_name="/latent_map")
        plot = np.asarray(Image.open(out[0] if isinstance(out, (list, tuple)) else out))
        assert plot.ndim == 3 and plot.shape[0] > 300


@pytest.mark.http
def test_http_decode_point(client, handlers) -> None:
    """The map's click-to-decode, by latent coordinates: the decoded digit at a digit's own μ is its reconstruction."""
    from gradio_client import handle_file

    client.predict(handle_file(str(EXAMPLE)), api_name="/reconstruct")
    digit = handlers.reconstruct(str(EXAMPLE))[-1]
    for variant, dims in (("kl_wo_e", (0, 1)), ("z4/sgvb", (0, 3))):
        mu = handlers.code(variant, digit)
        img, text = client.predict(variant, *dims, mu[dims[0]], mu[dims[1]], api_name="/decode_point")
        rec = handlers.models[variant].reconstruct(torch.as_tensor(digit).reshape(1, 1, 28, 28))[0, 0].numpy()
        assert corr(shrink(_load(img)), rec) > 0.99 and text.startswith("Decoded at z0 = "), variant
    far, _ = client.predict("kl_wo_e", 0, 1, 3.0, 3.0, api_name="/decode_point")
    rec = handlers.models["kl_wo_e"].reconstruct(torch.as_tensor(digit).reshape(1, 1, 28, 28))[0, 0].numpy()
    assert corr(shrink(_load(far)), rec) < 0.9  # another point, another digit


@pytest.mark.http
def test_http_interpolate_between_uploaded_photos(client, models, files) -> None:
    """Two photos uploaded into the editors (their real values: the photo as background and as composite): the
    path starts at the first digit and ends at the second."""
    from gradio_client import handle_file

    ends = []
    for name in ("photo", "photo_1"):
        f = handle_file(files[name])
        ends.append({"background": f, "layers": [], "composite": handle_file(files[name + "_composite"])})
    strips = client.predict(*ends, 6, api_name="/interpolate")
    for strip, model in zip(strips, models.values()):
        img = _load(strip)
        first, last = img[::4, :112:4] / 255.0, img[::4, -112::4] / 255.0
        a, b = (model.reconstruct(to_mnist(str(EXAMPLES_DIR / f)))[0, 0].numpy() for f in ("7_0000.png", "1_0002.png"))
        assert corr(first, a) > 0.8 and corr(last, b) > 0.8, "the path must go from the first photo to the second"


@pytest.mark.http
def test_http_bad_inputs_get_clear_messages(client, files, handlers) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    cases = {
        "text": "not an image",
        "empty": "empty",
        "truncated": "truncated or corrupt",
        "bomb": "megapixels",
        "blank": "(?i)draw a digit first",
    }
    assert len(client.predict(handle_file(str(EXAMPLE)), api_name="/reconstruct")) == 6
    for name, message in cases.items():
        with pytest.raises(AppError, match=message):
            client.predict(handle_file(files[name]), api_name="/reconstruct")
    # The Draw tab's canvas sends a PNG data URL: anything else is refused before decoding, with one line.
    drawings = {
        data_url(files["blank"]): "(?i)draw a digit first",  # a canvas with nothing drawn on it
        "": "sketchpad is empty",  # a cleared canvas
        "hello": "must be a PNG data URL",
        str(EXAMPLE): "must be a PNG data URL",  # a path names no file here: it is not a data URL
        "data:image/jpeg;base64,/9j/4AAQ": "must be a PNG data URL",
        "data:image/png;base64,iVBOR@@==": "not valid base64",
        "data:image/png;base64," + "A" * (2 * 2**20): "the limit is 2 MB",
        data_url(files["text"]): "not an image",  # valid base64 of something that is not a PNG
        data_url(files["truncated"]): "truncated or corrupt",
    }
    for value, message in drawings.items():
        with pytest.raises(AppError, match=message):
            client.predict(value, api_name="/reconstruct_drawing")
    with pytest.raises(AppError, match="maximum value 25"):  # Gradio checks the slider
        client.predict("sgvb", 0, 1, "quantile", 2, 40, *zeros(handlers), api_name="/grid")
    with pytest.raises(AppError, match="Choose two different dimensions"):
        client.predict("z4/sgvb", 1, 1, "quantile", 2, 5, *zeros(handlers), api_name="/grid")
    with pytest.raises(AppError, match="Digit B is missing"):
        client.predict({"background": handle_file(str(EXAMPLE)), "layers": [], "composite": None}, None, 5,
                       api_name="/interpolate")  # fmt: skip
    # and the server still serves
    assert len(client.predict(handle_file(str(EXAMPLE)), api_name="/reconstruct")) == 6


@pytest.mark.http
def test_http_concurrent_clients(client, files) -> None:
    """A small version of benchmarks/load_app.py: 4 clients × 3 requests at once, all answered correctly."""
    from gradio_client import Client, handle_file

    errors: list[BaseException] = []
    original = np.asarray(Image.open(EXAMPLE)) / 255.0

    def user(i: int) -> None:
        try:
            c = Client(client.src, verbose=False)
            for _ in range(3):
                source = files["photo"] if i % 2 else str(EXAMPLE)
                view = c.predict(handle_file(source), api_name="/reconstruct")[0]
                assert corr(shrink(_load(view)), original) > 0.85, source
        except BaseException as e:  # collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads) and not errors, errors
