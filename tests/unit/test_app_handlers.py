"""The app's handlers and its front door's own logic, without Gradio: tiny random models, real files, real PNGs."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vae_hub import VAE, VAEConfig
from vae_hub.preprocess import InputError
from webapp import EXAMPLES_DIR, gate
from webapp.handlers import Handlers, image_source, integer

EXAMPLE = EXAMPLES_DIR / "7_0000.png"


def data_url(path: Path, kind: str = "png") -> str:
    return f"data:image/{kind};base64," + base64.b64encode(path.read_bytes()).decode()


def images(fragment: str) -> list[np.ndarray]:
    """The images of an HTML answer, decoded from their data URLs."""
    urls = re.findall(r'src="data:image/png;base64,([^"]+)"', fragment)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(u)))) for u in urls]


@pytest.fixture(scope="module")
def handlers() -> Handlers:
    torch.manual_seed(0)
    models = {"sgvb": VAE(VAEConfig(hidden_dims=[32, 4])), "z4/kl_wo_e": VAE(VAEConfig(hidden_dims=[32, 8]))}
    return Handlers(models, {"sgvb": "2-D · SGVB", "z4/kl_wo_e": "4-D · KL w/o E"})


@pytest.mark.parametrize(
    "value, shown", [(None, "null"), ("abc", '"abc"'), (float("nan"), "NaN"), (True, "true"), (26, "26"), (2.5, "2.5")]
)
def test_numbers_are_refused_with_the_field_and_the_fix(value: object, shown: str) -> None:
    with pytest.raises(InputError, match=re.escape(f"Grid size must be a whole number from 5 to 25 (got {shown}); "
                                                   "send e.g. 15.")):  # fmt: skip
        integer(value, "Grid size", 5, 25, 15)
    assert integer(15.0, "Grid size", 5, 25, 15) == 15


def test_image_values_are_checked_before_decoding(tmp_path: Path) -> None:
    png = EXAMPLE.read_bytes()
    assert image_source(data_url(EXAMPLE), "Image", lambda r: None) == png
    assert image_source(data_url(EXAMPLE, "jpeg"), "Image", lambda r: None) == png  # the bytes decide, not the label
    uploads = gate.Uploads(tmp_path, keep_s=60)
    (tmp_path / "up.png").write_bytes(png)
    assert image_source(uploads.add(str(tmp_path / "up.png")), "Image", uploads) == png
    cases = {
        None: "Image is missing: draw, upload or pick a digit",
        "": "Image is missing",
        42: "Image must be a string",
        str(EXAMPLE): "Image must be a PNG, JPEG, WebP, GIF or BMP image",  # a path names no file here
        "/etc/passwd": "Image must be a PNG, JPEG, WebP, GIF or BMP image",
        "data:text/html;base64,PGI+": "Image must be a PNG",
        "data:image/png;base64,iVBOR@@==": "Image's data URL is not valid base64",
        "data:image/png;base64," + "A" * (512 * 1024): "the limit is 512 KB: upload a larger picture as a file",
    }
    for value, message in cases.items():
        with pytest.raises(InputError, match=re.escape(message)):
            image_source(value, "Image", uploads)
    # an unknown reference and an expired one get the same sentence: no oracle, no path
    expired = gate.Uploads(tmp_path, keep_s=0)
    old = expired.add(str(tmp_path / "up.png"))
    time.sleep(0.01)
    messages = set()
    for ref, source in (("upload:" + "0" * 32, uploads), (old, expired)):
        with pytest.raises(InputError) as e:
            image_source(ref, "Digit A", source)
        messages.add(str(e.value))
    assert messages == {"Digit A names no current upload (they expire): upload the picture again."}


def test_upload_references_name_only_regular_files_inside_the_folder(tmp_path: Path) -> None:
    folder, outside = tmp_path / "app", tmp_path / "secret.txt"
    folder.mkdir()
    outside.write_text("HF_TOKEN=hf_secret")
    (folder / "ok.png").write_bytes(b"png")
    (folder / "link.png").symlink_to(outside)
    (folder / "sub").mkdir()
    uploads = gate.Uploads(folder, keep_s=60)
    assert uploads(uploads.add(str(folder / "ok.png"))) == folder / "ok.png"
    for bad in (folder / "link.png", outside, folder / "sub", folder / "missing.png", folder / ".." / "secret.txt"):
        assert uploads(uploads.add(str(bad))) is None, bad
    assert uploads("upload:guess") is None


def test_pruning_deletes_old_files_and_empty_folders_without_following_links(tmp_path: Path) -> None:
    root, keep = gate.private_folder(tmp_path), tmp_path / "keep.txt"
    assert oct(os.lstat(root).st_mode & 0o777) == "0o700" and gate.private_folder(tmp_path) != root
    keep.write_text("outside: must survive")
    old = time.time() - 100
    for rel in ("a/old.png", "a/b/old.bin", "fresh/new.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x" * 1000)
    (root / "a" / "link").symlink_to(keep)
    (root / "linkdir").symlink_to(tmp_path)
    for path in (root / "a/old.png", root / "a/b/old.bin", root / "a/b", root / "a"):
        os.utime(path, (old, old))
    for link in (root / "a" / "link", root / "linkdir"):
        os.utime(link, (old, old), follow_symlinks=False)
    gate.prune(root, keep_s=50, max_bytes=10**9, grace_s=50)
    left = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    assert left == ["fresh", "fresh/new.png"] and keep.read_text() == "outside: must survive"
    gate.prune(root, keep_s=50, max_bytes=500, grace_s=50)  # over the size bound: the oldest go first
    assert not (root / "fresh" / "new.png").exists()


def test_reconstruct(handlers: Handlers) -> None:
    fragment = handlers.reconstruct(data_url(EXAMPLE))
    shown = images(fragment)
    assert len(shown) == 3 and all(a.shape == (28, 28) for a in shown)
    assert np.corrcoef(shown[0].ravel(), np.asarray(Image.open(EXAMPLE)).ravel())[0, 1] > 0.9
    assert fragment.count("<figcaption>") == 3 and "2-D · SGVB" in fragment and "4-D · KL w/o E" in fragment
    rows = re.findall(r"<tr><td>[^<]+</td><td>([\d.]+)</td><td>([\d.]+)</td><td>([\d.]+)</td></tr>", fragment)
    assert len(rows) == 2 and all(abs(float(n) - float(r) - float(k)) < 0.02 for n, r, k in rows)
    assert re.search(r"μ = \([+−]\d\.\d\d, [+−]\d\.\d\d, [+−]\d\.\d\d, [+−]\d\.\d\d\)", fragment)
    # each reconstruction carries its model's code of the digit (as the models see it), for the page's map and grid
    codes = dict(re.findall(r'data-model="([^"]+)" data-mu="([^"]+)"', fragment))
    x = handlers.digit(data_url(EXAMPLE))
    assert sorted(codes) == sorted(handlers.models)
    for name, mu in codes.items():
        assert np.allclose(json.loads(mu), handlers.models[name].encode(x)[0][0].numpy(), atol=1e-5), name


def test_samples_say_what_they_are(handlers: Handlers) -> None:
    samples = handlers.samples("sgvb", 5, 3)
    assert samples.startswith('<div class="gridbox"><p class="caption">Random samples: 5×5 draws from the prior')
    assert images(samples)[0].shape == (5 * 30 + 2,) * 2
    assert samples == handlers.samples("sgvb", 5, 3) != handlers.samples("sgvb", 5, 4)
    with pytest.raises(InputError, match=r"Model must be one of 'sgvb', 'z4/kl_wo_e' \(got null\)"):
        handlers.samples(None, 5, 0)


def test_interpolate_shows_its_ends_and_one_strip_per_model(handlers: Handlers) -> None:
    a, b = data_url(EXAMPLES_DIR / "0_0003.png"), data_url(EXAMPLES_DIR / "1_0002.png")
    fragment = handlers.interpolate(a, b, 7)
    assert len(images(fragment)) == 2 + 2 * 7 and fragment.count('class="strip"') == 2
    with pytest.raises(InputError, match="Digit B is missing"):
        handlers.interpolate(a, None, 7)
    with pytest.raises(InputError, match="^Digit A: the upload is not an image in an accepted format"):
        handlers.interpolate(data_url(EXAMPLE).replace(data_url(EXAMPLE)[30:], "iVBORw0KGgo="), b, 7)


def test_the_gate_checks_what_a_call_sends() -> None:
    ep = gate.Endpoint("samples", ("Model", "Grid size", "Seed"))
    g = gate.Gate(lambda *a: None, {3: ep}, gate.Uploads(Path("."), 1), max_upload=1)
    assert g.check({"fn_index": 3, "data": ["sgvb", 5, 0]}, None, False) is None
    assert g.check({"data": ["sgvb", 5, 0]}, "samples", False) is None
    unknown = g.check({"fn_index": 4}, None, False)
    assert unknown.startswith("There is no endpoint with index 4: this app's endpoints are /samples")
    assert "There is no endpoint with index true" in g.check({"fn_index": True}, None, False)
    assert "There is no endpoint /grid" in g.check({"data": []}, "grid", False)
    assert g.check({"data": ["sgvb", 5]}, "samples", False).startswith(
        '/samples takes 3 values in "data" (Model, Grid size, Seed); got 2 values'
    )
    assert g.check({"data": ["sgvb", {"path": "/etc/passwd"}, 0]}, "samples", False).startswith(
        "Grid size must be a string or a number, not dict"
    )
    assert g.check([], "samples", False).startswith("The request body must be a JSON object")


def test_the_page_decoder_files(tmp_path: Path) -> None:
    """What the gate serves for the page's decoder: the script, and per model its config, the very weights file it
    was loaded from, and its latent map (the cache's format); the manifest names exactly those URLs."""
    from safetensors.torch import load

    from webapp import latent_map
    from webapp.static import live

    model = VAE(VAEConfig(hidden_dims=[32, 8]))
    model.save_pretrained(tmp_path / "m")
    lmap = latent_map.LatentMap(torch.randn(7, 4), torch.arange(7) % 10, "seven")
    files = live.files({"z4/x": model}, {"z4/x": tmp_path / "m"}, {"z4/x": lmap})
    urls = {"/" + url for urls in live.manifest(["z4/x"]).values() for url in urls.values()}
    assert set(files) == urls | {"/live/vaehub.js"} and files["/live/vaehub.js"] == live.SCRIPT
    assert files["/live/z4/x/model.safetensors"] == tmp_path / "m" / "model.safetensors"
    assert VAEConfig.from_dict(json.loads(files["/live/z4/x/config.json"])) == model.config
    stored = load(files["/live/z4/x/latent_map.safetensors"])
    assert torch.equal(stored["mu"], lmap.mu.half()) and stored["labels"].tolist() == lmap.labels.tolist()
