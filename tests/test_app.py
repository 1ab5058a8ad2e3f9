"""The app over real HTTP: every endpoint with real files (raw calls and the documented gradio_client), the bundled
models, and several clients at once. The latent map and grid decode in the page: tests/test_live_app.py."""

from __future__ import annotations

import base64
import io
import json
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
        x = torch.as_tensor(view, dtype=torch.float32)
        codes = dict(re.findall(r'data-model="([^"]+)" data-mu="([^"]+)"', out[0]))
        for (name, model), rec in zip(models.items(), recs):  # each model's own reconstruction and code
            assert corr(rec, model.reconstruct(x)[0, 0]) > 0.99
            assert np.allclose(json.loads(codes[name]), model.encode(x)[0][0].numpy(), atol=0.02)  # from 8-bit view
        assert re.findall(r"<tr><td>([^<]+)</td><td>[\d.]+</td>", out[0]) == TITLES


def test_the_documented_client_works(app_url: str, models: dict) -> None:
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    view = images(client.predict(data_url(EXAMPLE), api_name="/reconstruct"))[0]
    assert corr(view, np.asarray(Image.open(EXAMPLE)) / 255.0) > 0.9
    samples = client.predict("z4/sgvb", 5, 2, api_name="/samples")
    assert "Random samples: 5×5 draws" in samples and images(samples)[0].shape == (152, 152)
    assert set(client.view_api(return_format="dict", print_info=False)["named_endpoints"]) == {
        "/reconstruct", "/samples", "/interpolate"}  # fmt: skip


def test_samples(app_url: str) -> None:
    for variant in ("sgvb", "z4/kl_wo_e"):
        event, out = call(app_url, "samples", variant, 15, 9)
        assert event == "complete" and "Random samples: 15×15 draws from the prior" in out[0]
        assert images(out[0])[0].shape == (452, 452) and images(out[0])[0].std() > 0.1
        assert out == call(app_url, "samples", variant, 15, 9)[1]  # a seed gives the same samples


def test_interpolate_between_two_uploads(app_url: str, models: dict, photo: Path) -> None:
    event, out = call(app_url, "interpolate", data_url(EXAMPLE), upload(app_url, photo, "photo.jpg"), 6)
    assert event == "complete", out
    ends, frames = images(out[0])[:2], images(out[0])[2:]
    assert len(frames) == 4 * 6
    for i, model in enumerate(models.values()):
        path = frames[6 * i : 6 * (i + 1)]
        a, b = (model.reconstruct(torch.as_tensor(e, dtype=torch.float32))[0, 0] for e in ends)
        assert corr(path[0], a) > 0.99 and corr(path[-1], b) > 0.99 and corr(path[0], b) < 0.9


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
