"""The app's surface and limits over real HTTP (issue 19): each class with hostile requests against the running app.

Run history and the owner's credentials · the endpoints the page uses and nothing else · uploads reach the decoder
undecoded · bodies, uploads and requests in flight capped, nothing held per session · one slow request holds one
slot · every file pruned, folders included, in a private folder · no server path and no existence oracle · bad
values answered with a sentence that names the field.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from app_server import WEIGHTS, App, call, free_port, serve, weights_present
from conftest import ROOT, require
from PIL import Image

pytestmark = pytest.mark.http
EXAMPLE = ROOT / "examples" / "7_0000.png"
OWNER_TOKEN = "hf_owner_token_that_must_never_leave_the_server"
ENDPOINTS = {"reconstruct", "samples", "interpolate"}  # the map and the grid decode in the page


def png_url(path: Path = EXAMPLE) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


class Recorder(ThreadingHTTPServer):
    """A stand-in for the Hub on 127.0.0.1 that answers everything and records every request it gets."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                recorder.seen.append((self.command, self.path, self.headers.get("Authorization", "")))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _any

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(scope="module")
def hub() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def own_app(hub: Recorder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """A second app: the owner logged in to a Hub (the stand-in), uploads kept 4 s, 5 sessions, one slot, and a
    custom model (a copy of the bundled KL w/o E weights in a folder named my_run) in the SGVB slot."""
    require(weights_present(), f"the bundled weights in {WEIGHTS}")
    custom = tmp_path_factory.mktemp("custom") / "my_run"
    shutil.copytree(WEIGHTS / "kl_wo_e", custom)
    env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": OWNER_TOKEN, "HF_HUB_OFFLINE": None}
    args = ("--keep-files", "4", "--sessions", "5", "--concurrency", "1", "--model", f"sgvb={custom}")
    with serve(*args, env=env) as url:
        yield url


def raw(url: str, request: bytes, read_s: float = 10.0) -> bytes:
    """Send bytes on a fresh connection; what comes back before the server closes it or ``read_s`` passes."""
    u = urllib.parse.urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=read_s) as s:
        s.sendall(request)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
                if b"\r\n\r\n" in out and len(out.partition(b"\r\n\r\n")[2]) >= _length(out):
                    break
        except TimeoutError:
            pass
    return out


def _length(response: bytes) -> int:
    m = re.search(rb"content-length: (\d+)", response, re.I)
    return int(m[1]) if m else 1 << 30


def post_head(url: str, path: str, length: int | None, kind: str = "application/json") -> bytes:
    host = urllib.parse.urlsplit(url).netloc
    size = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {kind}\r\n{size}\r\n".encode()


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def detail(response: bytes) -> str:
    return json.loads(response.partition(b"\r\n\r\n")[2])["detail"]


def indexes(url: str) -> dict[str, int]:
    deps = httpx.get(f"{url}config", timeout=30).json()["dependencies"]
    return {d["api_name"]: d["id"] for d in deps if d["backend_fn"]}


def join(url: str, fn_index: int, data: list, session: str) -> dict:
    """Call by index as the page does (/queue/join, then the session's event stream); the completion message."""
    with httpx.Client(base_url=url, timeout=120) as http:
        r = http.post("gradio_api/queue/join", json={"fn_index": fn_index, "data": data, "session_hash": session})
        assert r.status_code == 200, r.text
        with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:") and (msg := json.loads(line[5:]))["msg"] == "process_completed":
                    return msg
    raise AssertionError("no completion")


# --- run history and the owner's credentials ----------------------------------------------------------------


CONTROL = """
import sys, time, gradio as gr
with gr.Blocks() as demo:
    n, o = gr.Number(), gr.Number()
    n.submit(lambda x: x, n, o, api_name="echo")
demo.launch(server_port=int(sys.argv[1]), prevent_thread_lock=True, quiet=True)
while True:
    time.sleep(1)
"""


def test_run_history_is_off_and_never_reaches_the_hub(own_app: App, hub: Recorder, tmp_path: Path) -> None:
    """With the owner's token in the environment and a Hub that answers everything: the app never calls it. The
    same requests against a plain Gradio 6 app (run history on by default) do reach it with the token: the
    instrument works."""
    attempts = [
        ("GET", "gradio_api/runs", None),
        ("GET", "gradio_api/run-history/buckets", None),
        ("GET", "gradio_api/run-history/records?bucket=alice/runs", None),
        ("POST", "gradio_api/run-history/connect", {"bucket_id": "alice/runs"}),
    ]
    header = {"x-gradio-history-bucket": "alice/runs"}  # asks Gradio to store this run in a bucket

    def attack(url: str, call_name: str, data: list) -> list[int]:
        with httpx.Client(base_url=url, timeout=60, headers=header) as http:
            codes = [http.request(m, p, json=b).status_code for m, p, b in attempts]
            r = http.post(f"gradio_api/call/{call_name}", json={"data": data})
            http.get(f"gradio_api/call/{call_name}/{r.json()['event_id']}")
        time.sleep(3)  # history is written in the background
        return codes

    assert httpx.get(f"{own_app}config", timeout=30).json()["run_history"] is False
    assert attack(own_app, "samples", ["kl_wo_e", 5, 1]) == [404] * 4
    assert hub.seen == [], hub.seen

    port = free_port()
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": OWNER_TOKEN, "GRADIO_ANALYTICS_ENABLED": "False"}
    control = subprocess.Popen([sys.executable, "-c", CONTROL, str(port)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 120
        while not _answers(url):
            assert control.poll() is None and time.monotonic() < deadline, "the control app did not start"
            time.sleep(0.5)
        attack(url, "echo", [1])
    finally:
        control.terminate()
        control.wait(20)
    assert any(OWNER_TOKEN in auth for _, _, auth in hub.seen), hub.seen


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_custom_model_is_labelled_by_what_it_is(own_app: App) -> None:
    """KL w/o E weights served in the SGVB slot say so, and where they come from (a folder's name, not its path)."""
    config = httpx.get(f"{own_app}config", timeout=30).json()
    radios = [c["props"]["choices"] for c in config["components"] if c["props"].get("label") == "Model"]
    assert radios and all(r[0] == ["2-D · KL w/o E · custom: my_run", "sgvb"] for r in radios), radios
    assert str(own_app.tmp) not in json.dumps(config)


# --- only the endpoints the page uses ------------------------------------------------------------------------


def test_only_the_pages_endpoints_are_callable(app_url: App) -> None:
    config = httpx.get(f"{app_url}config", timeout=30).json()
    deps = config["dependencies"]
    served = {d["api_name"] for d in deps if d["backend_fn"]}
    assert served == ENDPOINTS and all(d["api_visibility"] == "public" for d in deps if d["backend_fn"])
    # one drawing widget, no editor, no file or image component that Gradio would decode, no blob channel
    kinds = {c["type"] for c in config["components"]}
    assert not kinds & {"imageeditor", "sketchpad", "image", "file", "gallery", "uploadbutton"}, kinds
    browser_only = [d["id"] for d in deps if not d["backend_fn"]]
    assert browser_only  # the page's own behaviour (clearing, showing controls) exists, and runs in the browser
    with httpx.Client(base_url=app_url, timeout=30) as http:
        for index in [*browser_only, max(d["id"] for d in deps) + 1, -1, "0", 0.0, None, True]:
            r = http.post("gradio_api/queue/join", json={"fn_index": index, "data": [], "session_hash": "s1"})
            assert r.status_code == 404 and r.json()["detail"].startswith("There is no endpoint with index"), index
        for name in ("predict", "js_fn", "lambda", "load_example", "v2/grid", "grid/x"):
            r = http.post(f"gradio_api/call/{name}", json={"data": []})
            assert r.status_code == 404 and "this app's endpoints are /reconstruct," in r.json()["detail"], name
        gradio_routes = [
            ("POST", "gradio_api/run/predict"), ("POST", "gradio_api/api/grid"), ("POST", "gradio_api/run/grid"),
            ("GET", "monitoring"), ("GET", "gradio_api/monitoring"), ("POST", "gradio_api/vibe-edit"),
            ("GET", "gradio_api/vibe-code"), ("POST", "gradio_api/process_recording"), ("POST", "gradio_api/reset"),
            ("GET", "gradio_api/proxy=http://127.0.0.1:9/x"), ("POST", "gradio_api/stream/abc"),
            ("GET", "gradio_api/file=/etc/passwd"), ("GET", f"gradio_api/file={EXAMPLE}"), ("GET", "gradio_api/mcp"),
            ("GET", "gradio_api/deep_link"), ("POST", "login"), ("GET", "gradio_api/token"), ("GET", "docs"),
            ("GET", f"gradio_api/file={WEIGHTS / 'sgvb' / 'model.safetensors'}"), ("GET", "live/sgvb/README.md"),
            ("GET", "live/sgvb/%2e%2e/sgvb/config.json"), ("GET", "live/"), ("POST", "live/sgvb/config.json"),
            ("GET", "gradio_api/openapi.json"), ("PUT", "config"), ("DELETE", "gradio_api/queue/join"),
            ("GET", "assets/" + "a" * 256), ("GET", "static/" + "a" * 256), ("GET", "assets/" + "a/" * 3000),
        ]  # fmt: skip
        for method, path in gradio_routes:
            r = http.request(method, path)
            assert r.status_code == 404 and r.json()["detail"].startswith("Not found"), (method, path)


# --- uploads reach the decoder undecoded ------------------------------------------------------------------------


def test_uploads_reach_the_decoder_as_sent(own_app: App, tmp_path: Path) -> None:
    """Gradio only stores an upload (byte for byte, in the app's private folder); the handler reads those bytes;
    a 400-megapixel PNG is refused by the app's decoder from its header, with its own message."""
    photo = tmp_path / "photo.jpg"
    Image.open(EXAMPLE).convert("RGB").resize((300, 300)).save(photo, quality=90, exif=_rotated_exif())
    with httpx.Client(base_url=own_app, timeout=60) as http:
        (ref,) = http.post("gradio_api/upload", files={"files": ("photo.jpg", photo.read_bytes())}).json()
    stored = [p for folder in own_app.folders() for p in folder.rglob("photo.jpg")]
    assert len(stored) == 1 and stored[0].read_bytes() == photo.read_bytes()
    as_upload, as_data = call(own_app, "reconstruct", ref), call(own_app, "reconstruct", _data(photo, "jpeg"))
    assert as_upload[0] == "complete" and as_upload == as_data  # the same bytes, the same answer
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(20000, 20000))
    with httpx.Client(base_url=own_app, timeout=60) as http:
        (ref,) = http.post("gradio_api/upload", files={"files": ("bomb.png", bomb.read_bytes())}).json()
    event, answer = call(own_app, "reconstruct", ref)
    assert event == "error" and answer["error"].startswith("Image: the image is 20000×20000")
    assert "megapixels" in answer["error"]


def _rotated_exif() -> bytes:
    exif = Image.Exif()
    exif[274] = 6  # EXIF orientation: rotate 90° when shown
    return exif.tobytes()


def _data(path: Path, kind: str) -> str:
    return f"data:image/{kind};base64," + base64.b64encode(path.read_bytes()).decode()


def _png_header(w: int, h: int) -> bytes:
    """A PNG signature and IHDR declaring w×h (no pixel data): what a decompression bomb's header says."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


# --- bounded work ---------------------------------------------------------------------------------------------


def test_bodies_are_capped_before_they_are_read(app_url: App) -> None:
    t = time.monotonic()
    big = raw(app_url, post_head(app_url, "/gradio_api/queue/join", 400_000_000) + b'{"fn_index": 0')
    assert status(big) == 413 and "at most 1024 KB" in detail(big)
    chunked = raw(app_url, post_head(app_url, "/gradio_api/call/samples", None) + b'4\r\n{"da\r\n')
    assert status(chunked) == 413 and "Content-Length" in detail(chunked)
    upload = raw(app_url, post_head(app_url, "/gradio_api/upload", 60 * 2**20, "multipart/form-data; boundary=x"))
    assert status(upload) == 413 and "at most 50 MB" in detail(upload)
    assert time.monotonic() - t < 5  # answered at once: nothing was read
    # A Content-Length beside chunked framing: the server reads the chunks, however many, so both are refused unread.
    for path, cap in (("/gradio_api/call/samples", "1024 KB"), ("/gradio_api/upload", "50 MB")):
        head = post_head(app_url, path, 20, "multipart/form-data; boundary=x")[:-2]
        head += b"Transfer-Encoding: chunked\r\n\r\n"
        both = raw(app_url, head + b"%x\r\n" % 2**21 + b"a" * 2**21 + b"\r\n0\r\n\r\n")
        assert status(both) == 413 and f"at most {cap}" in detail(both), both[:300]
    parts = b"".join(b'--x\r\nContent-Disposition: form-data; name="files"; filename="%d.png"\r\n\r\nabc\r\n' % i
                     for i in range(1001)) + b"--x--\r\n"  # fmt: skip
    r = httpx.post(f"{app_url}gradio_api/upload", content=parts, timeout=60,
                   headers={"Content-Type": "multipart/form-data; boundary=x"})  # fmt: skip
    assert r.status_code == 400 and "Too many files" in r.json()["detail"]


def test_a_call_names_its_session_briefly(app_url: App) -> None:
    """Gradio keeps a call's session_hash with its events: a long one would pile up in memory, call after call."""
    for extra, message in (({"session_hash": "x" * 1000}, "session_hash must be a short string"),
                           ({"session_hash": {"a": 1}}, "session_hash must be"),
                           ({"session_hash": "ab\u0663\u00e9"}, "session_hash must be"),  # \w: ASCII only
                           ({"trigger_id": "nope"}, 'trigger_id must be a whole number, not "nope".')):  # fmt: skip
        r = httpx.post(f"{app_url}gradio_api/call/samples", json={"data": ["sgvb", 5, 1], **extra}, timeout=30)
        assert r.status_code == 422 and message in r.json()["detail"], r.text


def test_requests_in_flight_are_capped_and_slow_bodies_dropped(app_url: App) -> None:
    """64 clients that announce a body and never finish it hold 64 places, no more: the next request is told the
    server is busy; each stalled body is dropped at its deadline, and the server serves again."""
    u = urllib.parse.urlsplit(app_url)
    stalled = []
    for _ in range(64):
        s = socket.create_connection((u.hostname, u.port), timeout=60)
        s.sendall(post_head(app_url, "/gradio_api/call/samples", 100) + b'{"data": ')
        stalled.append(s)
    time.sleep(1)
    busy = raw(app_url, f"GET /config HTTP/1.1\r\nHost: {u.netloc}\r\n\r\n".encode())
    assert status(busy) == 503 and "busy" in detail(busy)
    answers = []
    for s in stalled:
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        answers.append(status(data))
        s.close()
    assert answers == [408] * 64
    assert httpx.get(f"{app_url}config", timeout=30).status_code == 200


def test_a_session_holds_nothing(own_app: App) -> None:
    """The page keeps the user's digit itself (its code comes with the reconstructions, for the map and the grid):
    no endpoint reads a session's state, and the page has none, so a session costs only Gradio's bookkeeping
    (capped at --sessions, 5 here) and calls from different sessions answer alike."""
    config = httpx.get(f"{own_app}config", timeout=30).json()
    assert [c["type"] for c in config["components"] if c["type"] == "state"] == []
    ids = indexes(own_app)
    first = join(own_app, ids["reconstruct"], [png_url()], "first")
    for i in range(6):  # more sessions than are kept
        assert join(own_app, ids["samples"], ["kl_wo_e", 5, i], f"other{i}")["success"]
    again = join(own_app, ids["reconstruct"], [png_url()], "first")
    assert first["success"] and again["output"]["data"] == first["output"]["data"]


def test_a_slow_request_holds_one_slot_only(app_url: App, own_app: App, tmp_path: Path) -> None:
    """With two slots, quick requests pass a slow one (two 49-megapixel uploads to interpolate); with one slot
    (the second app) they wait for it: the measurement tells the two apart."""
    page = Image.new("L", (7000, 7000), 255)
    page.paste(Image.open(EXAMPLE).resize((4000, 4000)).point(lambda v: 255 - v), (1500, 1500))
    big = tmp_path / "big.png"
    page.convert("RGBA").save(big)  # RGBA: the costliest accepted decode per pixel

    def race(url: str) -> tuple[float, list[float]]:
        with httpx.Client(base_url=url, timeout=120) as http:
            refs = [http.post("gradio_api/upload", files={"files": ("big.png", big.read_bytes())}).json()[0]
                    for _ in range(2)]  # fmt: skip
        assert call(url, "samples", "kl_wo_e", 5, 99)[0] == "complete"  # warm: a first call pays one-off costs
        done: dict[str, object] = {}

        def slow_call() -> None:
            done["event"] = call(url, "interpolate", *refs, 5)[0]
            done["slow"] = time.monotonic()

        slow = threading.Thread(target=slow_call)
        start = time.monotonic()
        slow.start()
        time.sleep(0.3)  # the slow request takes its slot first
        quick = []
        for i in range(3):
            assert call(url, "samples", "kl_wo_e", 5, i)[0] == "complete"
            quick.append(time.monotonic())
        slow.join(120)
        assert done["event"] == "complete", done
        return float(done["slow"]) - start, [q - start for q in quick]  # type: ignore[arg-type]

    # The slow call's own clock stops when its client has read the answer, a little after the server freed the slot.
    slow, quick = race(app_url)
    assert quick[0] < slow - 0.25, (slow, quick)  # two slots: the first quick answer does not wait for the slow one
    slow, quick = race(own_app)
    assert quick[0] > slow - 0.25, (slow, quick)  # one slot: it does (the instrument sees the difference)


# --- disk --------------------------------------------------------------------------------------------------------


def test_every_file_is_pruned_folders_included(own_app: App) -> None:
    """Uploads, a part under another field name, and an aborted upload all land in the app's private folder, and
    all of it is gone once the 4 s they are kept have passed (and its folders with them)."""
    (folder,) = own_app.folders()
    st = os.lstat(folder)
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.getuid()
    assert re.fullmatch(r"vae-hub-app-\w+", folder.name)  # made by mkdtemp: a fresh, unpredictable name
    with httpx.Client(base_url=own_app, timeout=60) as http:
        for i in range(3):
            http.post("gradio_api/upload", files={"files": (f"{i}.png", EXAMPLE.read_bytes())})
        http.post("gradio_api/upload", files={"other": ("x.png", b"x" * 5000), "files": ("y.png", b"y" * 10)})
    head = post_head(own_app, "/gradio_api/upload", 2**20, "multipart/form-data; boundary=x")
    raw(own_app, head + b'--x\r\nContent-Disposition: form-data; name="files"; filename="z.png"\r\n\r\n' + bytes(9000),
        read_s=1)  # fmt: skip
    assert any(p.is_file() for p in folder.rglob("*"))
    deadline = time.monotonic() + 40
    while any(folder.iterdir()) and time.monotonic() < deadline:
        time.sleep(1)
    assert sorted(folder.rglob("*")) == []


def test_the_private_folder_goes_with_the_app(tmp_path: Path) -> None:
    require(weights_present(), f"the bundled weights in {WEIGHTS}")
    with serve() as url:
        (folder,) = url.folders()
        httpx.post(f"{url}gradio_api/upload", files={"files": ("a.png", EXAMPLE.read_bytes())}, timeout=60)
        assert any(folder.rglob("a.png"))
    assert not folder.exists()


# --- messages ------------------------------------------------------------------------------------------------------


def test_no_server_path_and_no_existence_oracle(app_url: App) -> None:
    """Paths and references a client names, existing or not, get one sentence per field, which names no path."""
    with httpx.Client(base_url=app_url, timeout=60) as http:
        (ref,) = http.post("gradio_api/upload", files={"files": ("mine.png", EXAMPLE.read_bytes())}).json()
    assert not re.search(r"/|\\", ref.removeprefix("upload:"))
    (folder,) = app_url.folders()
    (stored,) = folder.rglob("mine.png")
    names = [str(stored), str(EXAMPLE), "/etc/passwd", "/etc/nope", "../../etc/hostname", "examples/7_0000.png",
             f"{folder}/../../etc/passwd", "upload:" + "0" * 32, "upload:../../etc/passwd", ref + "x",
             "file=/etc/passwd"]  # fmt: skip
    for endpoint, make in (("reconstruct", lambda v: [v]), ("interpolate", lambda v: [png_url(), v, 5])):
        seen = {}
        for name in names:
            event, answer = call(app_url, endpoint, *make(name))
            assert event == "error", (endpoint, name, answer)
            seen[name] = answer["error"]
        for message in seen.values():
            for leak in (str(ROOT), str(folder), "/etc", "passwd", "nope", "7_0000", "not found", "exist"):
                assert leak not in message, (endpoint, message)
        assert len({m for n, m in seen.items() if not n.startswith("upload:")}) == 1, seen
        assert len({m for n, m in seen.items() if n.startswith("upload:")}) == 1, seen
    for name in (str(stored), "/etc/passwd", "/etc/nope"):  # Gradio's file route serves none of them
        r = httpx.get(f"{app_url}gradio_api/file={name}", timeout=30)
        assert r.status_code == 404 and r.json() == httpx.get(f"{app_url}gradio_api/file=/x", timeout=30).json()


BAD = [
    ("samples", ["sgvb", 5, None], "Seed must be a whole number from 0 to 4294967295 (got null); send e.g. 0."),
    ("samples", ["sgvb", "five", 1], 'Grid size must be a whole number from 5 to 25 (got "five"); send e.g. 15.'),
    ("samples", ["sgvb", 5, float("nan")], "Seed must be a whole number from 0 to 4294967295 (got NaN)"),
    ("samples", ["sgvb", 5, 1e30], "Seed must be a whole number from 0 to 4294967295 (got 1e+30)"),
    ("samples", ["sgvb", 5], 'takes 3 values in "data" (Model, Grid size, Seed); got 2 values'),
    ("samples", ["sgvb", 5, 1, 2], "takes 3 values"),
    ("samples", [], "takes 3 values"),
    ("samples", ["vae", 5, 1], "Model must be one of 'sgvb', 'kl_wo_e', 'z4/sgvb', 'z4/kl_wo_e' (got \"vae\")."),
    ("interpolate", [None, None, 5], "Digit A is missing: draw, upload or pick a digit"),
    ("interpolate", [png_url(), png_url(), "ten"], 'Steps must be a whole number from 2 to 25 (got "ten")'),
    ("interpolate", [png_url(), [1, 2], 5], "Digit B must be a string"),
    ("interpolate", [png_url(), {"path": "/etc/passwd"}, 5], "Digit B must be a string or a number, not dict"),
    ("reconstruct", [12], "Image must be a string"),
    ("reconstruct", ["data:image/png;base64,AAAA"], "Image: the upload "),
    ("samples", [None, 5, 1], "Model must be one of"),
    ("samples", [[0.5, 1.0], 5, 1], "Model must be a string or a number, not list"),
]


@pytest.mark.parametrize("endpoint, data, message", BAD, ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(BAD)])
def test_bad_values_get_a_sentence_that_names_the_field(app_url: App, endpoint: str, data: list, message: str) -> None:
    event, answer = call(app_url, endpoint, *data)
    text = answer.get("error") if event == "error" else answer.get("detail") if event.startswith("http") else None
    assert event == "error" or event.startswith("http 4"), (event, answer)
    assert isinstance(text, str) and message in text, (event, answer)
    assert "Traceback" not in text and "went wrong" not in text and text.endswith((".", ")"))
