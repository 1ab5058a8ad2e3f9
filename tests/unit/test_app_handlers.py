"""The app's handlers and its front door's own logic, without Gradio: tiny random models, real files, real PNGs."""

from __future__ import annotations

import base64
import io
import math
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
from webapp import EXAMPLES_DIR, gate, latent_map
from webapp.handlers import Handlers, image_source, integer, number

EXAMPLE = EXAMPLES_DIR / "7_0000.png"


def data_url(path: Path, kind: str = "png") -> str:
    return f"data:image/{kind};base64," + base64.b64encode(path.read_bytes()).decode()


def images(fragment: str) -> list[np.ndarray]:
    """The images of an HTML answer, decoded from their data URLs."""
    urls = re.findall(r'src="data:image/png;base64,([^"]+)"', fragment)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(u)))) for u in urls]


@pytest.fixture(scope="module")
def handlers(tmp_path_factory: pytest.TempPathFactory) -> Handlers:
    torch.manual_seed(0)
    models = {"sgvb": VAE(VAEConfig(hidden_dims=[32, 4])), "z4/kl_wo_e": VAE(VAEConfig(hidden_dims=[32, 8]))}
    none = tmp_path_factory.mktemp("none")  # no caches, no MNIST: the maps of the example digits
    maps = {n: latent_map.load_or_build(m, none, shipped_dir=none, user_dir=none) for n, m in models.items()}
    return Handlers(models, {"sgvb": "2-D · SGVB", "z4/kl_wo_e": "4-D · KL w/o E"}, maps)


@pytest.mark.parametrize(
    "value, shown", [(None, "null"), ("abc", '"abc"'), (float("nan"), "NaN"), (True, "true"), (26, "26"), (2.5, "2.5")]
)
def test_numbers_are_refused_with_the_field_and_the_fix(value: object, shown: str) -> None:
    with pytest.raises(InputError, match=re.escape(f"Grid size must be a whole number from 5 to 25 (got {shown}); "
                                                   "send e.g. 15.")):  # fmt: skip
        integer(value, "Grid size", 5, 25, 15)
    assert integer(15.0, "Grid size", 5, 25, 15) == 15
    if not isinstance(value, float) or not math.isfinite(value) or value > 4:
        with pytest.raises(InputError, match=r"^k must be a number from 0\.5 to 4 \(got .*\); send e\.g\. 2\.$"):
            number(value if value != 2.5 else math.inf, "k", 0.5, 4, 2)


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
    fragment, digit = handlers.reconstruct(data_url(EXAMPLE))
    shown = images(fragment)
    assert len(shown) == 3 and all(a.shape == (28, 28) for a in shown) and digit.shape == (28, 28)
    assert np.corrcoef(shown[0].ravel(), np.asarray(Image.open(EXAMPLE)).ravel())[0, 1] > 0.9
    assert fragment.count("<figcaption>") == 3 and "2-D · SGVB" in fragment and "4-D · KL w/o E" in fragment
    rows = re.findall(r"<tr><td>[^<]+</td><td>([\d.]+)</td><td>([\d.]+)</td><td>([\d.]+)</td></tr>", fragment)
    assert len(rows) == 2 and all(abs(float(n) - float(r) - float(k)) < 0.02 for n, r, k in rows)
    assert re.search(r"μ = \([+−]\d\.\d\d, [+−]\d\.\d\d, [+−]\d\.\d\d, [+−]\d\.\d\d\)", fragment)


def test_grid_has_its_axes_and_samples_say_what_they_are(handlers: Handlers) -> None:
    fragment = handlers.grid("z4/kl_wo_e", 2, 0, "sigma", 2.0, 9, 0, 0, 0, 0)
    (grid,) = images(fragment)
    assert grid.shape == (9 * 30 + 2,) * 2
    assert "decoded over z2 and z0 (±2 σ" in fragment and "z2 →" in fragment and "z0 ↑" in fragment
    x = re.search(r'<div class="xticks">(.*?)</div>', fragment)[1]
    assert re.findall(r">([^<]+)</span>", x) == ["−2.00", "−1.50", "−1.00", "−0.50", "+0.00", "+0.50", "+1.00",
                                                   "+1.50", "+2.00"]  # fmt: skip
    first = float(re.search(r'left:([\d.]+)%', x)[1])
    assert abs(first - 16 / 272 * 100) < 0.01  # the first cell's centre: 2 px border + 14 px
    samples = handlers.samples("sgvb", 5, 3)
    assert samples.startswith('<div class="gridbox"><p class="caption">Random samples: 5×5 draws from the prior')
    assert samples == handlers.samples("sgvb", 5, 3) != handlers.samples("sgvb", 5, 4)
    with pytest.raises(InputError, match="Sweep dimension → and Sweep dimension ↑ are both z1: choose two"):
        handlers.grid("z4/kl_wo_e", 1, 1, "quantile", 2, 5, 0, 0, 0, 0)
    with pytest.raises(InputError, match=r"Sweep dimension ↑ must be a whole number from 0 to 1 \(got 3\)"):
        handlers.grid("sgvb", 0, 3, "quantile", 2, 5, 0, 0, 0, 0)
    with pytest.raises(InputError, match=r"Model must be one of 'sgvb', 'z4/kl_wo_e' \(got null\)"):
        handlers.samples(None, 5, 0)


def test_interpolate_shows_its_ends_and_one_strip_per_model(handlers: Handlers) -> None:
    a, b = data_url(EXAMPLES_DIR / "0_0003.png"), data_url(EXAMPLES_DIR / "1_0002.png")
    fragment = handlers.interpolate(a, b, 7)
    assert len(images(fragment)) == 2 + 2 * 7 and fragment.count('class="strip"') == 2
    with pytest.raises(InputError, match="Digit B is missing"):
        handlers.interpolate(a, None, 7)
    with pytest.raises(InputError, match="^Digit A: the upload is not an image that can be read"):
        handlers.interpolate(data_url(EXAMPLE).replace(data_url(EXAMPLE)[30:], "iVBORw0KGgo="), b, 7)


def test_map_marks_the_digit_and_decodes_points(handlers: Handlers) -> None:
    digit = handlers.reconstruct(data_url(EXAMPLE))[1]
    plain, cleared = handlers.latent_map("sgvb", 0, 1, None)
    marked, _ = handlers.latent_map("sgvb", 0, 1, digit)
    assert cleared == "" and "★" not in plain and marked.count("★") == 1
    box = [float(v) for v in re.search(r'data-box="([^"]+)"', marked)[1].split()]
    assert len(box) == 4 and all(0 <= v <= 1 for v in box)
    one = handlers.decode_point("z4/kl_wo_e", 0, 3, [0.5, -1.0], None)
    assert "Decoded at z0 = +0.50, z1 = +0.00, z2 = +0.00, z3 = −1.00 (the other dimensions at 0)" in one
    cases = {
        (0.5,): "Point must be a list of two numbers",
        (float("nan"), 0): r"Point's x \(z0\) must be a number .* \(got NaN\)",
        (0, 11): r"Point's y \(z3\) must be a number from -10 to 10",
    }
    for point, message in cases.items():
        with pytest.raises(InputError, match=message):
            handlers.decode_point("z4/kl_wo_e", 0, 3, list(point), None)


def test_the_gate_checks_what_a_call_sends() -> None:
    ep = gate.Endpoint("samples", ("Model", "Grid size", "Seed"), ("Model", "Grid size", "Seed"))
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
