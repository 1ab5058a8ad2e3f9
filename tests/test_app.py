"""The app: its handlers unit-tested in process, then every endpoint over real HTTP through gradio_client."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from app_server import WEIGHTS, serve, weights_present
from conftest import require
from PIL import Image

import app
from vae_hub import VAE, Config, WeightsError
from vae_hub.preprocess import to_mnist
from webapp import EXAMPLES_DIR, latent_map, ui
from webapp.handlers import Handlers, load_models, score
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
    require(weights_present(), f"the bundled weights in {WEIGHTS}/sgvb and {WEIGHTS}/kl_wo_e")
    return load_models({v: WEIGHTS / v for v in ("sgvb", "kl_wo_e")})


@pytest.fixture(scope="module")
def handlers(models, tmp_path_factory) -> Handlers:
    cache = tmp_path_factory.mktemp("map")  # the bundled weights' maps are shipped; others are built here
    maps = {n: latent_map.load_or_build(m, EXAMPLES_DIR, cache_dir=cache) for n, m in models.items()}
    return Handlers(models, maps)


def zeros(handlers: Handlers) -> list[float]:
    """The grid's 'other dimensions' sliders, all at 0."""
    return [0.0] * handlers.latent_dim


# --- unit tests of the handlers ---------------------------------------------------------------------------


def test_reconstruct(handlers) -> None:
    view, rec_a, rec_b, rows, digit = handlers.reconstruct(str(EXAMPLE))
    original = np.asarray(Image.open(EXAMPLE)) / 255.0
    assert view.shape == rec_a.shape == rec_b.shape == (224, 224) and view.dtype == np.uint8
    assert corr(shrink(view), original) > 0.9  # what the model sees is the digit
    for rec in (rec_a, rec_b):  # and both reconstructions resemble it
        assert corr(shrink(rec), original) > 0.7
    assert [r[0] for r in rows] == ["SGVB (sampled KL)", "KL w/o E (closed-form KL)"]
    for _, nelbo, rec, kl, mu in rows:
        assert kl > 0 and rec > 0 and abs(nelbo - (rec + kl)) < 0.02
        assert len(eval(mu)) == handlers.latent_dim  # μ, printed as a list
    assert digit.shape == (28, 28)
    assert handlers.reconstruct(None) == (None, None, None, [], None)  # a cleared input clears the outputs


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
    cell = img.shape[0] // (n * 30 + 2)  # the integer enlargement
    cells = img[:: cell, :: cell][2 : 2 + 30 * n, 2 : 2 + 30 * n].reshape(n, 30, n, 30)[:, :28, :, :28]  # fmt: skip
    assert cells.std() > 10  # decoded digits, not a flat picture


def test_grid_options_matter(handlers) -> None:
    z = zeros(handlers)
    q = handlers.grid("sgvb", 0, 1, "quantile", 2.0, 7, *z)
    s = handlers.grid("sgvb", 0, 1, "sigma", 3.0, 7, *z)
    swapped = handlers.grid("sgvb", 1, 0, "quantile", 2.0, 7, *z)
    variant = handlers.grid("kl_wo_e", 0, 1, "quantile", 2.0, 7, *z)
    changed = [s, swapped, variant]
    if handlers.latent_dim > 2:  # the other dimensions' sliders matter
        changed.append(handlers.grid("sgvb", 0, 1, "quantile", 2.0, 7, 0, 0, *[2.5] * (handlers.latent_dim - 2)))
    for img in changed:
        assert img.shape == q.shape and not np.array_equal(img, q)
    # the swept dimensions' sliders are ignored
    assert np.array_equal(q, handlers.grid("sgvb", 0, 1, "quantile", 2.0, 7, 1.5, -1.5, *z[2:]))


def test_code_and_samples(handlers) -> None:
    digit = handlers.reconstruct(str(EXAMPLE))[-1]
    code = handlers.digit_code("sgvb", digit)
    assert len(code) == handlers.latent_dim and code != zeros(handlers) and all(-3 <= v <= 3 for v in code)
    assert handlers.digit_code("sgvb", None) == zeros(handlers)
    a, b, c = (handlers.samples("sgvb", 6, seed) for seed in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c) and a.shape == (grid_side(6),) * 2


def test_interpolate(handlers) -> None:
    a, b = str(EXAMPLES_DIR / "0_0003.png"), str(EXAMPLES_DIR / "1_0002.png")
    strips = handlers.interpolate(a, b, 6)
    assert len(strips) == 2
    for strip, model in zip(strips, handlers.models.values()):
        assert strip.shape == (112, 6 * 112)
        cells = [strip[::4, i * 112 : (i + 1) * 112 : 4] / 255.0 for i in range(6)]
        ends = [model.reconstruct(to_mnist(p))[0, 0].numpy() for p in (a, b)]
        assert corr(cells[0], ends[0]) > 0.98 and corr(cells[-1], ends[1]) > 0.98
        assert corr(cells[0], ends[1]) < 0.9  # the path goes somewhere


def test_latent_map(handlers) -> None:
    plain = handlers.latent_map("sgvb", 0, 1, None)
    digit = handlers.reconstruct(str(EXAMPLE))[-1]
    marked = handlers.latent_map("sgvb", 0, 1, digit)
    other = handlers.latent_map("kl_wo_e", handlers.latent_dim - 1, 0, digit)
    assert plain.ndim == 3 and plain.shape[2] == 3 and plain.shape == marked.shape == other.shape
    assert not np.array_equal(plain, marked) and not np.array_equal(marked, other)
    colours = plain.reshape(-1, 3)
    assert len(np.unique(colours[::7], axis=0)) > 50  # a coloured scatter, not an empty axis


def test_latent_map_cache_and_fallback(models, mnist_root, tmp_path: Path) -> None:
    m = models["sgvb"]
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
    src = app.model_sources(["sgvb=/tmp/x"])
    assert src == {"sgvb": "/tmp/x", "kl_wo_e": "someone/vae-kl"}
    assert app.model_sources([])["sgvb"] == str(app.ROOT / "weights" / "sgvb")
    for bad in ("sgvb", "vae=/tmp/x", "sgvb="):
        with pytest.raises(SystemExit, match="VARIANT=DIR_OR_REPO"):
            app.model_sources([bad])


def test_models_must_share_a_latent_size(tmp_path: Path) -> None:
    VAE(Config()).save_pretrained(tmp_path / "a")
    VAE(Config(hidden_dims=[64, 8])).save_pretrained(tmp_path / "b")
    with pytest.raises(WeightsError, match="latent size"):
        load_models({"sgvb": tmp_path / "a", "kl_wo_e": tmp_path / "b"})


# --- end to end over HTTP ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(models) -> Iterator:
    from gradio_client import Client

    with serve() as url:
        yield Client(url, verbose=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Real image files: a JPEG photo of dark ink on paper, an RGBA drawing, and bad files."""
    d = np.asarray(Image.open(EXAMPLE))
    folder = tmp_path_factory.mktemp("files")
    sheet = Image.new("L", (900, 700), 235)
    sheet.paste(Image.fromarray(255 - d).resize((420, 420), Image.Resampling.BICUBIC), (300, 120))
    sheet.convert("RGB").save(folder / "photo.jpg", quality=70)
    drawing = np.zeros((800, 800, 4), np.uint8)
    drawing[100:700, 100:700, 3] = np.asarray(Image.fromarray(d).resize((600, 600)))
    Image.fromarray(drawing).save(folder / "drawing.png")
    Image.new("RGBA", (800, 800)).save(folder / "blank.png")
    png = (folder / "drawing.png").read_bytes()
    (folder / "truncated.png").write_bytes(png[: len(png) // 3])
    (folder / "text.png").write_text("not an image\n")
    (folder / "empty.png").write_bytes(b"")
    from test_preprocess import png_header_only

    (folder / "bomb.png").write_bytes(png_header_only(20000, 20000))
    return {p.stem: str(p) for p in folder.iterdir()}


def _load(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def test_http_reconstruct_upload_and_drawing(client, files) -> None:
    from gradio_client import handle_file

    original = np.asarray(Image.open(EXAMPLE)) / 255.0
    for value, api in (
        (handle_file(str(EXAMPLE)), "/reconstruct"),
        (handle_file(files["photo"]), "/reconstruct"),
        ({"background": None, "layers": [], "composite": handle_file(files["drawing"])}, "/reconstruct_drawing"),
    ):
        view, rec_a, rec_b, table = client.predict(value, api_name=api)
        assert corr(shrink(_load(view)), original) > 0.85, api
        for rec in (rec_a, rec_b):
            assert corr(shrink(_load(rec)), original) > 0.7, api
        assert [row[0] for row in table["data"]] == ["SGVB (sampled KL)", "KL w/o E (closed-form KL)"]


def test_http_grid_samples_code_interpolate_map(client, handlers) -> None:
    from gradio_client import handle_file

    z = zeros(handlers)

    for n in (5, 25):
        img = _load(client.predict("sgvb", 0, 1, "sigma", 2.5, n, *z, api_name="/grid"))
        assert img.shape == (grid_side(n), grid_side(n))
    img = _load(client.predict("kl_wo_e", 15, 9, api_name="/samples"))
    assert img.shape == (grid_side(15),) * 2
    client.predict(handle_file(str(EXAMPLE)), api_name="/reconstruct")  # sets this session's current digit
    code = client.predict("sgvb", api_name="/digit_code")
    assert len(code) == handlers.latent_dim and any(v != 0 for v in code)
    ends = [{"background": handle_file(str(EXAMPLES_DIR / f)), "layers": [], "composite": None}
            for f in ("0_0003.png", "1_0002.png")]  # fmt: skip
    strips = client.predict(*ends, 8, api_name="/interpolate")
    assert [_load(s).shape for s in strips] == [(112, 8 * 112)] * 2
    plot = np.asarray(Image.open(client.predict("kl_wo_e", 1, 0, api_name="/latent_map")))
    assert plot.ndim == 3 and plot.shape[0] > 300


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
    for name, message in cases.items():
        with pytest.raises(AppError, match=message):
            client.predict(handle_file(files[name]), api_name="/reconstruct")
    blank_sketch = {"background": None, "layers": [], "composite": handle_file(files["blank"])}
    with pytest.raises(AppError, match="(?i)draw a digit first"):
        client.predict(blank_sketch, api_name="/reconstruct_drawing")
    with pytest.raises(AppError, match="sketchpad is empty"):
        client.predict({"background": None, "layers": [], "composite": None}, api_name="/reconstruct_drawing")
    with pytest.raises(AppError, match="maximum value 25"):  # Gradio checks the slider
        client.predict("sgvb", 0, 1, "quantile", 2, 40, *zeros(handlers), api_name="/grid")
    with pytest.raises(AppError, match="two different latent dimensions"):
        client.predict("sgvb", 1, 1, "quantile", 2, 5, *zeros(handlers), api_name="/grid")
    # and the server still serves
    assert len(client.predict(handle_file(str(EXAMPLE)), api_name="/reconstruct")) == 4


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
