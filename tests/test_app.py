"""The app over real HTTP: every endpoint with real files (raw calls and the documented gradio_client), the bundled
models and their shipped latent maps, and several clients at once."""

from __future__ import annotations

import base64
import html
import io
import re
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from app_server import VARIANTS, WEIGHTS, call, weights_present
from conftest import ROOT, require
from PIL import Image

pytestmark = pytest.mark.http
EXAMPLES = ROOT / "examples"
EXAMPLE = EXAMPLES / "7_0000.png"
TITLES = ["2-D · SGVB", "2-D · KL w/o E", "4-D · SGVB", "4-D · KL w/o E"]


def data_url(data: bytes | Path, kind: str = "png") -> str:
    data = data.read_bytes() if isinstance(data, Path) else data
    return f"data:image/{kind};base64," + base64.b64encode(data).decode()


def images(fragment: str) -> list[np.ndarray]:
    """The images of an HTML answer, as grey levels in [0, 1]."""
    urls = re.findall(r'src="data:image/png;base64,([^"]+)"', fragment)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(u))).convert("L")) / 255.0 for u in urls]


def corr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    a, b = (np.asarray(t, dtype=np.float64).ravel() for t in (a, b))
    return float(np.corrcoef(a, b)[0, 1])


def upload(url: str, path: Path, name: str = "digit.png") -> str:
    """Upload a file as the page does; the reference the app answers."""
    with httpx.Client(base_url=url, timeout=60) as http:
        r = http.post("gradio_api/upload", files={"files": (name, path.read_bytes(), "application/octet-stream")})
    assert r.status_code == 200, r.text
    (ref,) = r.json()
    assert re.fullmatch(r"upload:[0-9a-f]{32}", ref)  # an opaque reference, never a server path
    return ref


@pytest.fixture(scope="module")
def models() -> dict:
    require(weights_present(), f"the bundled weights in {WEIGHTS}")
    from vae_hub import VAE

    return {v: VAE.from_pretrained(WEIGHTS / v) for v in VARIANTS}


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JPEG photo of a dark 1 on grey paper, 900×700."""
    ink = np.asarray(Image.open(EXAMPLES / "1_0002.png"))
    sheet = Image.new("L", (900, 700), 235)
    sheet.paste(Image.fromarray(255 - ink).resize((420, 420), Image.Resampling.BICUBIC), (300, 120))
    path = tmp_path_factory.mktemp("files") / "photo.jpg"
    sheet.convert("RGB").save(path, quality=70)
    return path


def drawing() -> bytes:
    """The 7 as the canvas sends it: black ink in the alpha channel of a 280×280 PNG."""
    a = np.zeros((280, 280, 4), np.uint8)
    a[30:250, 30:250, 3] = np.asarray(Image.open(EXAMPLE).resize((220, 220)))
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def test_reconstruct_a_drawing_an_upload_and_an_example(app_url: str, models: dict, photo: Path) -> None:
    for value, digit in (
        (data_url(drawing()), EXAMPLE),
        (upload(app_url, photo, "photo.jpg"), EXAMPLES / "1_0002.png"),
        (data_url(EXAMPLE), EXAMPLE),
    ):
        event, out = call(app_url, "reconstruct", value)
        assert event == "complete", out
        view, *recs = images(out[0])
        original = np.asarray(Image.open(digit)) / 255.0
        assert view.shape == (28, 28) and corr(view, original) > 0.85 and len(recs) == 4
        for rec, model in zip(recs, models.values()):  # each model's own reconstruction of the digit shown
            assert corr(rec, model.reconstruct(torch.as_tensor(view, dtype=torch.float32))[0, 0]) > 0.99
        assert re.findall(r"<tr><td>([^<]+)</td><td>[\d.]+</td>", out[0]) == TITLES


def test_the_documented_client_works(app_url: str, models: dict) -> None:
    """gradio_client (one session: the digit of /reconstruct is the one /digit_code and /decode_point use)."""
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    fragment = client.predict(data_url(EXAMPLE), api_name="/reconstruct")
    view = images(fragment)[0]
    mu = models["z4/sgvb"].encode(torch.as_tensor(view, dtype=torch.float32))[0][0]
    code = client.predict("z4/sgvb", api_name="/digit_code")
    assert np.allclose(code, mu.clamp(-3, 3).numpy(), atol=0.01)
    assert list(client.predict("sgvb", api_name="/digit_code"))[2:] == [0, 0]
    decoded = client.predict("z4/sgvb", 1, 3, [float(mu[1]), float(mu[3])], api_name="/decode_point")
    rec = models["z4/sgvb"].reconstruct(torch.as_tensor(view, dtype=torch.float32))[0, 0]
    assert corr(images(decoded)[0], rec) > 0.99 and "(the other dimensions at your digit's μ)" in html.unescape(decoded)


@pytest.mark.parametrize("variant, dims", [("sgvb", (0, 1)), ("z4/kl_wo_e", (3, 1))])
def test_grid_and_samples(app_url: str, variant: str, dims: tuple[int, int]) -> None:
    for n in (5, 25):
        event, out = call(app_url, "grid", variant, *dims, "sigma", 2.5, n, 0, 0, 0.5, -0.5)
        assert event == "complete", out
        (grid,) = images(out[0])
        assert grid.shape == (30 * n + 2,) * 2 and grid.std() > 0.1
        assert f"z{dims[0]} →" in out[0] and out[0].count("<span style=") > 6  # the axes' coordinates
    event, out = call(app_url, "samples", variant, 15, 9)
    assert event == "complete" and "Random samples: 15×15 draws from the prior" in out[0]
    assert images(out[0])[0].shape == (452, 452)


def test_interpolate_between_two_uploads(app_url: str, models: dict, photo: Path) -> None:
    event, out = call(app_url, "interpolate", data_url(EXAMPLE), upload(app_url, photo, "photo.jpg"), 6)
    assert event == "complete", out
    ends, frames = images(out[0])[:2], images(out[0])[2:]
    assert len(frames) == 4 * 6
    for i, model in enumerate(models.values()):
        path = frames[6 * i : 6 * (i + 1)]
        a, b = (model.reconstruct(torch.as_tensor(e, dtype=torch.float32))[0, 0] for e in ends)
        assert corr(path[0], a) > 0.99 and corr(path[-1], b) > 0.99 and corr(path[0], b) < 0.9


def test_latent_map_and_decode_point(app_url: str) -> None:
    for variant, dims in (("sgvb", (0, 1)), ("z4/kl_wo_e", (1, 2))):
        event, (fragment, decoded) = call(app_url, "latent_map", variant, *dims)
        assert event == "complete" and decoded == ""  # a new map clears the point decoded on the last one
        plot = np.asarray(Image.open(io.BytesIO(base64.b64decode(re.search(r"base64,([^\"]+)", fragment)[1]))))
        assert plot.ndim == 3 and plot.shape[0] > 300 and len(np.unique(plot.reshape(-1, 3)[::7], axis=0)) > 50
        assert "5000 MNIST test digits" in fragment  # the shipped cache: no MNIST needed
        event, (point,) = call(app_url, "decode_point", variant, *dims, [0.5, -1.0])
        assert event == "complete" and f"z{dims[0]} = +0.50" in point and f"z{dims[1]} = −1.00" in point


def test_several_clients_at_once(app_url: str, photo: Path) -> None:
    """A small version of benchmarks/load_app.py: 4 clients × 3 requests at once, all answered correctly."""
    errors: list[BaseException] = []
    original = np.asarray(Image.open(EXAMPLE)) / 255.0

    def user(i: int) -> None:
        try:
            for _ in range(3):
                event, out = call(app_url, "reconstruct", data_url(drawing()) if i % 2 else data_url(EXAMPLE))
                assert event == "complete" and corr(images(out[0])[0], original) > 0.85
        except BaseException as e:  # collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not any(t.is_alive() for t in threads) and not errors, errors
