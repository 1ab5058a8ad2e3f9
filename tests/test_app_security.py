"""The app's limits over real HTTP: no endpoint opens a path the client names, numbers must be finite, one queue for
all listeners, and the app's files are pruned (webapp/guard.py, webapp/outputs.py)."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import httpx
import numpy as np
import pytest
from app_server import WEIGHTS, serve, weights_present
from conftest import require
from PIL import Image

import app
from webapp import EXAMPLES_DIR, guard, outputs

EXAMPLE = EXAMPLES_DIR / "7_0000.png"
META = {"_type": "gradio.FileData"}
IMAGE_ENDPOINTS = ("reconstruct", "reconstruct_drawing", "interpolate")


class Server:
    """The real app in a subprocess, with its own Gradio upload folder (to plant files in it)."""

    def __init__(self, url: str, upload_dir: Path) -> None:
        self.url, self.upload_dir = url.rstrip("/"), upload_dir
        self.http = httpx.Client(base_url=self.url, timeout=120)

    def call(self, endpoint: str, *data: object) -> tuple[str, object]:
        """POST /gradio_api/call/<endpoint> with raw JSON (no client-side processing); (event, data) of the answer."""
        body = json.dumps({"data": list(data)})  # NaN and Infinity are written as JSON's extensions, as sent
        r = self.http.post(f"/gradio_api/call/{endpoint}", content=body, headers={"Content-Type": "application/json"})
        r.raise_for_status()
        text = self.http.get(f"/gradio_api/call/{endpoint}/{r.json()['event_id']}").text
        event = data_line = None
        for line in text.splitlines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data_line = line.split(":", 1)[1].strip()
            if event in ("complete", "error") and data_line is not None:
                break
        return event, json.loads(data_line)

    def upload(self, path: Path) -> str:
        """Upload a file the way the page does; its path in Gradio's upload cache."""
        with open(path, "rb") as f:
            r = self.http.post("/gradio_api/upload", files={"files": (path.name, f, "image/png")})
        return r.raise_for_status().json()[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    require(weights_present(), f"the bundled weights in {WEIGHTS}/sgvb and {WEIGHTS}/kl_wo_e")
    upload_dir = tmp_path_factory.mktemp("gradio_uploads")
    outputs_dir = tmp_path_factory.mktemp("outputs")
    with serve(env={"GRADIO_TEMP_DIR": str(upload_dir), "VAE_HUB_APP_OUTPUTS": str(outputs_dir)}) as url:
        s = Server(url, upload_dir)
        yield s
        s.http.close()


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> dict[str, str]:
    """Paths a client might name: a real digit PNG outside the upload cache, a text file, a missing file, relative
    paths, a `..` escape out of the cache, and a symlink inside the cache pointing out of it."""
    folder = tmp_path_factory.mktemp("outside")
    digit = folder / "digit.png"
    Image.open(EXAMPLE).resize((200, 200)).save(digit)
    return {
        "existing png": str(digit),
        "existing text": "/etc/passwd",
        "missing": "/etc/nope",
        "relative": "../../../etc/hostname",
        "relative png": os.path.relpath(digit, app.ROOT),  # the app runs from its own folder
        "missing relative": "../../nope.png",
    }


def _planted(server: Server, outside: dict[str, str]) -> dict[str, str]:
    """Paths that start inside the upload cache but resolve outside it."""
    link = server.upload_dir / "planted" / "link.png"
    link.parent.mkdir(exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(outside["existing png"])
    return {
        "dotdot escape": f"{server.upload_dir}/../../../../../../etc/passwd",
        "dotdot to png": f"{server.upload_dir}/../{Path(outside['existing png']).parent.name}/digit.png",
        "symlink out": str(link),
    }


def _values(path: str, endpoint: str) -> list[tuple[str, list[object]]]:
    """Every shape in which ``path`` can reach ``endpoint``: plain, FileData without and with ``meta``, and each
    slot of an editor value."""
    shapes: list[tuple[str, object]] = [("FileData without meta", {"path": path}), ("plain string", path)]
    if endpoint == "reconstruct_drawing":  # takes a data URL; sent a path or a file value, it must not open it
        editor = {"background": None, "layers": [], "composite": {"path": path, "meta": META}}
        shapes += [("FileData with meta", {"path": path, "meta": META}), ("editor composite", editor)]
    elif endpoint != "reconstruct":
        shapes = [
            (f"editor {slot}, {name}", {"background": None, "layers": [], "composite": None} | {slot: v})
            for slot in ("background", "composite")
            for name, v in (
                ("FileData without meta", {"path": path}),
                ("FileData with meta", {"path": path, "meta": META}),
            )
        ] + [("editor layer", {"background": None, "layers": [{"path": path}], "composite": None})]
    else:
        shapes.append(("FileData with meta", {"path": path, "meta": META}))
    if endpoint == "interpolate":
        good = {"background": {"path": str(EXAMPLE), "meta": META}, "layers": [], "composite": None}
        return [(f"{name} as A", [v, good, 5]) for name, v in shapes] + [
            (f"{name} as B", [good, v, 5]) for name, v in shapes
        ]
    return [(name, [v]) for name, v in shapes]


@pytest.mark.http
@pytest.mark.parametrize("endpoint", IMAGE_ENDPOINTS)
def test_no_endpoint_opens_a_path_the_client_names(server: Server, outside: dict[str, str], endpoint: str) -> None:
    paths = outside | _planted(server, outside)
    messages: dict[str, set[str]] = {}  # per shape: the messages seen over all paths
    for what, path in paths.items():
        for shape, data in _values(path, endpoint):
            event, answer = server.call(endpoint, *data)
            assert event == "error", f"{endpoint} served {what} ({path}) sent as {shape}: {answer}"
            message = str(answer.get("error") if isinstance(answer, dict) else answer)
            for leak in ("not found", "passwd", "hostname", "not an image", "digit.png", "nope", "empty"):
                assert leak not in message.lower(), f"{endpoint}, {what} as {shape}: {message}"
            messages.setdefault(shape, set()).add(message)
    for shape, seen in messages.items():  # existing or missing, relative or absolute: the same refusal
        assert len(seen) == 1, f"{endpoint}, {shape}: different refusals {seen}"
    if endpoint == "reconstruct":  # its input is not processed by Gradio: the refusal is the app's own
        assert messages["FileData without meta"] == {guard.NOT_UPLOADED_MESSAGE}
    elif endpoint == "reconstruct_drawing":  # not a data URL: refused before anything is opened or decoded
        not_a_drawing = "The drawing must be a PNG data URL (data:image/png;base64,…)."
        assert messages["plain string"] == messages["FileData without meta"] == {not_a_drawing}
        assert set().union(*messages.values()) <= {not_a_drawing, "None"}  # Gradio refuses FileData with meta first
    else:  # Gradio's own checks (FileData must carry meta; then be an upload) refuse first, without details
        assert set().union(*messages.values()) == {"None"}


@pytest.mark.http
def test_uploads_and_examples_still_work(server: Server, tmp_path: Path) -> None:
    digit = tmp_path / "mine.png"
    Image.open(EXAMPLE).resize((300, 300)).save(digit)
    uploaded = server.upload(digit)
    assert Path(uploaded).resolve().is_relative_to(server.upload_dir.resolve())
    for value in ({"path": uploaded}, {"path": uploaded, "meta": META}, {"path": str(EXAMPLE)}):
        event, answer = server.call("reconstruct", value)
        assert event == "complete", (value, answer)
    editor = {"background": None, "layers": [], "composite": {"path": uploaded, "meta": META}}
    drawing = "data:image/png;base64," + base64.b64encode(digit.read_bytes()).decode("ascii")
    assert server.call("reconstruct_drawing", drawing)[0] == "complete"
    drawn = {"background": {"path": uploaded, "meta": META}, "layers": [{"path": uploaded, "meta": META}]}
    event, answer = server.call("interpolate", drawn | {"composite": None}, editor, 4)
    assert event == "complete", answer
    # a relative name that resolves into the upload cache is fine too: it names an upload
    relative = os.path.relpath(uploaded, app.ROOT)
    assert server.call("reconstruct", {"path": relative})[0] == "complete"


@pytest.mark.http
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_get_a_clear_message(server: Server, bad: float) -> None:
    z = [0.0] * 4  # one "other dimensions" slider per dimension of the largest (4-D) model
    cases = {
        "grid": (["sgvb", 0, 1, "sigma", bad, 5, *z], "k (for ± k σ) must be a finite number"),
        "samples": (["sgvb", 5, bad], "Seed must be a finite number"),
        "interpolate": ([None, None, bad], "Steps must be a finite number"),
    }
    for i in range(len(z)):  # the grid's "other dimensions" sliders
        args = ["z4/sgvb", 0, 1, "quantile", 2, 5, *z]
        args[6 + i] = bad
        cases[f"grid z{i}"] = (args, f"z{i} (when not swept) must be a finite number")
    for name, (data, message) in cases.items():
        event, answer = server.call(name.split()[0], *data)
        assert event == "error" and answer["error"].startswith(message), (name, answer)
    event, answer = server.call("samples", "sgvb", 5, 1e30)
    assert event == "error" and "Seed must be between" in answer["error"], answer


def test_all_listeners_share_one_queue(monkeypatch) -> None:
    """The total number of requests processed at once is the --concurrency the app is started with."""
    require(weights_present(), f"the bundled weights in {WEIGHTS}/sgvb and {WEIGHTS}/kl_wo_e")
    demo, _ = app.create(app.model_sources([]))
    demo.queue(default_concurrency_limit=3)
    queued = [fn for fn in demo.fns.values() if fn.fn is not None]
    assert {fn.api_name for fn in queued} >= {"reconstruct", "reconstruct_drawing", "grid", "interpolate", "samples"}
    for fn in queued:
        demo._queue.create_event_queue_for_fn(fn)
    queues = demo._queue.event_queue_per_concurrency_id
    assert list(queues) == [guard.CONCURRENCY_ID] and queues[guard.CONCURRENCY_ID].concurrency_limit == 3
    assert demo.delete_cache == outputs.UPLOAD_CACHE_DELETE


def _files(folder: Path, ages_s: list[float], size: int = 1000) -> list[Path]:
    files = []
    for i, age in enumerate(ages_s):
        f = folder / f"{i:02d}.png"
        f.write_bytes(b"x" * size)
        os.utime(f, (time.time() - age, time.time() - age))
        files.append(f)
    return files


def test_outputs_are_pruned_by_age_and_total_size(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VAE_HUB_APP_OUTPUTS", str(tmp_path))
    files = _files(tmp_path, [5000, 4000, 300, 200, 100, 50, 10])
    assert outputs.prune_outputs(max_age_s=3600, max_bytes=10_000) == 2  # the two older than an hour
    assert [f.exists() for f in files] == [False, False, True, True, True, True, True]
    assert outputs.prune_outputs(max_age_s=3600, max_bytes=3000) == 2  # then the oldest, down to 3 files
    assert [f.name for f in sorted(tmp_path.iterdir())] == ["04.png", "05.png", "06.png"]
    # A file written again is made the newest, so that it is pruned last.
    path = outputs.png_file(np.zeros((8, 8), np.uint8))
    os.utime(path, (time.time() - 500, time.time() - 500))
    assert outputs.png_file(np.zeros((8, 8), np.uint8)) == path and time.time() - os.path.getmtime(path) < 60


def test_gradio_cache_is_pruned_to_its_total_size(tmp_path: Path) -> None:
    with gr.Blocks() as demo:
        gr.Image()
    uploads = _files(tmp_path, [500, 400, 300, 200, 100])
    demo.upload_file_set.update(str(f) for f in uploads)
    kept = tmp_path / "example.png"  # Gradio's copies of examples are never deleted
    kept.write_bytes(b"x" * 1000)
    os.utime(kept, (time.time() - 9999, time.time() - 9999))
    demo.upload_file_set.add(str(kept))
    next(iter(demo.blocks.values())).keep_in_cache.add(str(kept))
    assert outputs.prune_gradio_cache(demo, max_bytes=2500) == 3
    assert [f.exists() for f in uploads] == [False, False, False, True, True] and kept.exists()
    assert demo.upload_file_set == {str(uploads[3]), str(uploads[4]), str(kept)}


def test_checked_image_rebuilds_editor_values(tmp_path: Path) -> None:
    """The guard's own rule, behind Gradio's checks for the editors: every slot of an editor value is checked."""
    roots = (tmp_path.resolve(),)
    inside = tmp_path / "up.png"
    inside.write_bytes(b"")
    value = {"background": {"path": str(inside)}, "layers": [str(inside), b"png"], "composite": None, "x": 1}
    assert guard.checked_image(value, roots) == {
        "background": str(inside.resolve()),
        "layers": [str(inside.resolve()), b"png"],
        "composite": None,
    }
    for bad in (
        {"background": None, "layers": ["/etc/passwd"], "composite": None},
        {"background": None, "layers": [], "composite": {"path": f"{tmp_path}/../x.png"}},
        {"layers": "/etc/passwd"},
        {"path": str(tmp_path)},  # the cache folder itself is not an upload
        {"path": f"{inside}\0.png"},
        42,
    ):
        with pytest.raises(gr.Error):
            guard.checked_image(bad, roots)


@pytest.mark.http
def test_a_client_leaving_mid_upload_logs_no_traceback(app_url: str, app_log: Path) -> None:
    """A browser that closes during an upload: the server keeps serving and logs nothing. Without app.py's
    ``DropClientDisconnect`` filter, uvicorn logs "Exception in ASGI application" with a ``ClientDisconnect``
    traceback here (checked by removing the filter)."""
    import socket
    import urllib.parse

    url = urllib.parse.urlsplit(app_url)
    before = app_log.stat().st_size
    with socket.create_connection((url.hostname, url.port)) as s:
        head = (
            f"POST /gradio_api/upload HTTP/1.1\r\nHost: {url.netloc}\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 1000000\r\n\r\n"
        )
        part = b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="d.png"\r\n'
        part += b"Content-Type: image/png\r\n\r\n\x89PNG" + bytes(5000)  # 5 KB of the 1 MB announced, then gone
        s.sendall(head.encode() + part)
        time.sleep(0.5)
    time.sleep(2)  # the server reads on, finds the connection closed, and (unfiltered) logs right away
    assert httpx.get(app_url, timeout=30).status_code == 200
    with app_log.open("rb") as f:
        f.seek(before)
        logged = f.read().decode(errors="replace")
    assert "ClientDisconnect" not in logged and "Traceback" not in logged, logged[-2000:]
