"""The server's front door: an ASGI middleware in front of Gradio (:class:`Gate`), upload references, and the app's
private folder with its pruner. No Gradio here: Gradio is configured through its public arguments (``app.py``).

The gate lets through the routes the page and the documented API use and nothing else; for a call, only the app's
named endpoints (by name or by index) with one plain JSON value per field. Bodies must state their length, are capped
before they are read and must arrive before a deadline; requests and event streams in flight are capped; an upload
is answered with an opaque reference instead of its server path. The page decoder's files are served at their own
short URLs, with HTTP Range, and only those: a URL names no server path.
"""

import asyncio
import json
import os
import re
import secrets
import stat
import tempfile
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, NamedTuple

from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response

UPLOAD_PREFIX = "upload:"
# What the page and gradio_client fetch (GET or HEAD), besides a call's own stream.
PAGES = re.compile(
    r"/(config|theme\.css|favicon\.ico|robots\.txt|gradio_api/(info|theme\.css|startup-events|app_id))?"
    r"|/(assets|static|svelte)(/[^/]{1,255}){1,8}|/gradio_api/(heartbeat/[\w-]+|queue/data|upload_progress)"
)  # a name or path too long for the file system made Gradio's file routes fail with a 500
STREAMS = re.compile(r"/gradio_api/(heartbeat/|queue/data|upload_progress|call/)")  # answers that stay open
MAX_BODY = 2**20  # bytes of a call's body
BODY_S, UPLOAD_S = 20.0, 120.0  # seconds a call's body, and an upload, may take to arrive
LIMITS = {"request": 64, "stream": 256}  # requests and event streams in flight at once


class Endpoint(NamedTuple):  # one of the app's named endpoints
    name: str
    fields: tuple[str, ...]  # its inputs, in order


def private_folder(parent: str | os.PathLike | None = None) -> Path:
    """A new folder only this user can enter (mode 0700), under ``parent`` or the system's temporary folder."""
    path = Path(tempfile.mkdtemp(prefix="vae-hub-app-", dir=parent))
    st = os.lstat(path)
    if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) != 0o700:  # mkdtemp's promise, checked
        raise RuntimeError(f"{path} was not created private")
    return path


class Uploads:
    """Opaque references (``upload:<random>``) to uploaded files, each valid while its file is kept."""

    def __init__(self, root: Path, keep_s: float) -> None:
        self.root, self.keep_s, self.files, self.lock = root.resolve(), keep_s, {}, threading.Lock()

    def add(self, path: str) -> str:
        ref = UPLOAD_PREFIX + secrets.token_hex(16)
        with self.lock:
            now = time.time()
            self.files = {r: v for r, v in self.files.items() if now - v[1] <= self.keep_s} | {ref: (Path(path), now)}
        return ref

    def __call__(self, ref: str) -> Path | None:
        """The file of ``ref`` if it is current, a regular file and inside the app's folder; else None."""
        path, added = self.files.get(ref, (None, 0.0))
        with suppress(OSError):
            if path and time.time() - added <= self.keep_s and stat.S_ISREG(os.lstat(path).st_mode):
                return path if path.resolve().is_relative_to(self.root) else None
        return None


def prune(root: Path, keep_s: float, max_bytes: int, grace_s: float = 10.0) -> None:
    """Delete what lies under ``root``: files and links older than ``keep_s``, then the oldest beyond ``max_bytes``,
    then the folders left empty that had not changed for ``grace_s`` before this pass (one being filled stays).
    Never follows a link."""
    now, files, folders = time.time(), [], []
    for top, dirs, names in os.walk(root, topdown=False):  # deepest first; links to folders are listed, not entered
        for name in names + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            with suppress(OSError):
                st = os.lstat(os.path.join(top, name))
                files.append((st.st_mtime, st.st_size if stat.S_ISREG(st.st_mode) else 0, os.path.join(top, name)))
        with suppress(OSError):
            folders += [(os.lstat(top).st_mtime, top)] if Path(top) != root else []
    total = sum(f[1] for f in files)
    for mtime, size, path in sorted(files):
        if now - mtime > keep_s or total > max_bytes:
            with suppress(OSError):
                os.unlink(path)
                total -= size
    for mtime, folder in folders:
        with suppress(OSError):
            if now - mtime > grace_s:
                os.rmdir(folder)  # only when empty


def start_pruning(root: Path, keep_s: float, every_s: float, max_bytes: int) -> None:
    """Prune ``root`` every ``every_s`` seconds while the app runs (a daemon thread)."""

    def loop() -> None:
        while True:
            time.sleep(every_s)
            with suppress(Exception):  # a pruner that stopped would let the disk fill: go on
                prune(root, keep_s, max_bytes, grace_s=min(10.0, keep_s))

    threading.Thread(target=loop, name="vae-hub-pruner", daemon=True).start()


def plain(value: Any) -> bool:
    """A value one field can take: a JSON scalar."""
    return value is None or isinstance(value, (str, int, float, bool))


def shown(value: Any) -> str:
    return (json.dumps(value) if plain(value) else type(value).__name__)[:40]


async def answer(send: Any, status: int, detail: str | list) -> None:
    """A JSON answer: ``{"detail": …}`` (as FastAPI gives its own refusals), or a list as it is."""
    body = json.dumps(detail if isinstance(detail, list) else {"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Gate:
    """ASGI middleware: see the module's docstring. ``endpoints`` maps each named endpoint's index to it."""

    def __init__(
        self,
        app: Any,
        endpoints: Mapping[int, Endpoint],
        uploads: Uploads,
        max_upload: int,
        files: Mapping[str, os.PathLike | bytes] | None = None,
    ) -> None:
        self.app, self.endpoints, self.uploads, self.max_upload = app, endpoints, uploads, max_upload
        self.by_name = {e.name: e for e in endpoints.values()}
        self.active, self.files = dict.fromkeys(LIMITS, 0), dict(files or {})
        self.menu = f"this app's endpoints are {', '.join(f'/{n}' for n in self.by_name)} (see /gradio_api/info)"

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return None  # no websockets: the page uses none (returning without accepting refuses the handshake)
        kind = "stream" if STREAMS.match(scope["path"]) and scope["method"] != "POST" else "request"
        if self.active[kind] >= LIMITS[kind]:
            return await answer(send, 503, "The server is busy: try again in a few seconds.")
        self.active[kind] += 1
        try:
            await self.route(scope, receive, send)
        finally:
            self.active[kind] -= 1

    async def route(self, scope: dict, receive: Any, send: Any) -> None:
        method, path = scope["method"], scope["path"].rstrip("/") or "/"
        if method in ("GET", "HEAD"):
            call = re.fullmatch(r"/gradio_api/call/([\w-]+)/[\w-]+", path)
            if path in self.files:  # no-cache: revalidated on each load, so no page runs a stale script on new weights
                item, ext = self.files[path], os.path.splitext(path)[1]
                kind = {".js": "text/javascript", ".json": "application/json"}.get(ext, "application/octet-stream")
                make = Response if isinstance(item, bytes) else FileResponse  # a file: with Range, as Starlette serves
                return await make(item, headers={"Cache-Control": "no-cache"}, media_type=kind)(scope, receive, send)
            if PAGES.fullmatch(path) or (call and call[1] in self.by_name):
                return await self.app(scope, receive, send)
        elif method == "POST" and path in ("/gradio_api/queue/join", "/gradio_api/cancel"):
            return await self.call(scope, receive, send, None)
        elif method == "POST" and path.startswith("/gradio_api/call/"):
            return await self.call(scope, receive, send, path.removeprefix("/gradio_api/call/"))
        elif method == "POST" and path == "/gradio_api/upload":
            return await self.upload(scope, receive, send)
        return await answer(send, 404, f"Not found: this app serves no such route; {self.menu}.")

    def unstated(self, scope: dict, what: str, limit: int, size: str) -> str | None:
        """Why the body is refused unless it states its length, at most ``limit``, and is framed by it: with a
        Transfer-Encoding too, the server would read the chunks instead, however many."""
        headers = dict(scope["headers"])  # the server refuses a repeated Content-Length
        length = headers.get(b"content-length", b"")
        if b"transfer-encoding" not in headers and length.isdigit() and int(length) <= limit:
            return None
        return f"{what} must state its Content-Length (and no Transfer-Encoding) and be at most {size}."

    def deadline(self, receive: Any, seconds: float) -> Any:
        """``receive``, ending the request as if the client had left once ``seconds`` have passed."""
        end = time.monotonic() + seconds

        async def timed() -> dict:
            with suppress(TimeoutError):
                return await asyncio.wait_for(receive(), max(0.0, end - time.monotonic()))
            return {"type": "http.disconnect"}

        return timed

    async def call(self, scope: dict, receive: Any, send: Any, name: str | None) -> None:
        """A call of a named endpoint (``/queue/join`` by index, ``/call/<name>`` by name), or a cancel."""
        if why := self.unstated(scope, "A call's body", MAX_BODY, f"{MAX_BODY // 2**10} KB"):
            return await answer(send, 413, why)
        try:  # the server delivers no more than the stated length (see unstated)
            raw = await Request(scope, self.deadline(receive, BODY_S)).body()
        except ClientDisconnect:
            return await answer(send, 408, "The request body did not arrive in time: send it again.")
        try:
            problem = self.check(json.loads(raw), name, scope["path"].endswith("/cancel"))
        except (ValueError, RecursionError):
            problem = 'The request body must be JSON: {"data": [one value per field]}.'
        if problem:
            return await answer(send, 404 if problem.startswith("There is no") else 422, problem)
        body = iter([{"type": "http.request", "body": raw, "more_body": False}])

        async def replay() -> dict:  # the body read here, then the client's messages (a disconnect)
            return next(body, None) or await receive()

        await self.app(scope, replay, send)

    def check(self, body: Any, name: str | None, cancel: bool) -> str | None:
        """What is wrong with a call's JSON body, in a sentence; None when it may go through."""
        if not isinstance(body, dict):
            return 'The request body must be a JSON object: {"data": [one value per field]}.'
        index, by = body.get("fn_index"), self.by_name.get
        endpoint = by(name) if name is not None else self.endpoints.get(index) if type(index) is int else None
        if endpoint is None:
            which = f"/{name[:60]}" if name is not None else f"with index {shown(index)}"
            return f"There is no endpoint {which}: {self.menu}."
        session = body.get("session_hash")  # Gradio keeps it with every event: a long one would pile up in memory
        if session is not None and not (isinstance(session, str) and re.fullmatch(r"[\w-]{1,64}", session, re.ASCII)):
            return "session_hash must be a short string of letters, digits, - and _ (at most 64)."
        if type(body.get("trigger_id", 0)) not in (int, type(None)):
            return f"trigger_id must be a whole number, not {shown(body['trigger_id'])}."
        data, fields = body.get("data"), endpoint.fields
        if cancel:
            return None
        if not isinstance(data, list) or len(data) != len(fields):
            got = f"{len(data)} values" if isinstance(data, list) else shown(data)
            return (
                f'/{endpoint.name} takes {len(fields)} values in "data" ({", ".join(fields)}); got {got}: '
                "send one value per field, in this order."
            )
        for field, value in zip(fields, data):
            if not plain(value):
                return f"{field} must be a string or a number, not {type(value).__name__}: send a plain JSON value."
        return None

    async def upload(self, scope: dict, receive: Any, send: Any) -> None:
        """Gradio's upload route, its body capped and timed, each server path in its answer replaced by a reference."""
        if why := self.unstated(scope, "An upload", self.max_upload, f"{self.max_upload // 2**20} MB"):
            return await answer(send, 413, why)
        sent: list[dict] = []  # Gradio's answer: its start, then its body

        async def capture(message: dict) -> None:
            sent.append(message)

        try:
            await self.app(scope, self.deadline(receive, UPLOAD_S), capture)
        except ClientDisconnect:  # the client left, or missed the deadline, mid-upload: nothing to answer or log
            return None
        status, body = sent[0]["status"] if sent else 500, b"".join(m.get("body", b"") for m in sent[1:])
        if status != 200:
            return await answer(send, status, f"The upload was refused: {body.decode(errors='replace')[:200]}")
        await answer(send, 200, [self.uploads.add(p) for p in json.loads(body)])
