"""The server's front door and its files: an ASGI middleware in front of Gradio, the upload references, and the
app's private folder with its pruner. No Gradio import: Gradio is configured through its public arguments
(``app.py``), and this only decides which requests reach it.

:class:`Gate` lets through only the routes the page and the documented API use, and, for a call, only the app's
named endpoints (by name or by index) with one JSON value per field. It caps request bodies before they are read
(``Content-Length`` is required), gives each body a deadline, caps requests and event streams in flight, and hands
out an opaque reference for each uploaded file instead of its server path (:class:`Uploads`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

UPLOAD_PREFIX = "upload:"
Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

# What the page and gradio_client fetch (GET or HEAD), besides a call's own stream.
PAGES = re.compile(
    r"/(config|theme\.css|favicon\.ico|robots\.txt|gradio_api/(info|theme\.css|startup-events|app_id))?/?"
    r"|/(assets|static|svelte)/[^?]*|/gradio_api/(heartbeat/[\w-]+|queue/data|upload_progress)"
)
STREAMS = re.compile(r"/gradio_api/(heartbeat/|queue/data|upload_progress|call/)")  # long-lived answers


class Endpoint(NamedTuple):
    """A named endpoint of the page: its input fields in order, and those an API call sends (no session state)."""

    name: str
    fields: tuple[str, ...]
    api_fields: tuple[str, ...]


def private_folder(parent: str | os.PathLike | None = None) -> Path:
    """A new folder only this user can enter (mode 0700), under ``parent`` or the system's temporary folder."""
    path = Path(tempfile.mkdtemp(prefix="vae-hub-app-", dir=parent))
    st = os.lstat(path)
    if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) != 0o700:  # mkdtemp's promise, checked, not assumed
        raise RuntimeError("the app's private folder was not created private")
    return path


class Uploads:
    """Opaque references (``upload:<random>``) for uploaded files, each valid while its file is kept."""

    def __init__(self, root: Path, keep_s: float) -> None:
        self.root, self.keep_s = root.resolve(), keep_s
        self._files: dict[str, tuple[Path, float]] = {}
        self._lock = threading.Lock()

    def add(self, path: str) -> str:
        ref = UPLOAD_PREFIX + secrets.token_hex(16)
        with self._lock:
            self._files[ref] = (Path(path), time.time())
        return ref

    def __call__(self, ref: str) -> Path | None:
        """The file of ``ref``, if it is current, a regular file, and inside the app's folder (else None)."""
        with self._lock:
            path, added = self._files.get(ref, (None, 0.0))
        if path is None or time.time() - added > self.keep_s:
            return None
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode) or not path.resolve().is_relative_to(self.root):
                return None
        except OSError:
            return None
        return path

    def expire(self) -> None:
        now = time.time()
        with self._lock:
            self._files = {r: v for r, v in self._files.items() if now - v[1] <= self.keep_s}


def prune(root: Path, keep_s: float, max_bytes: int, grace_s: float = 10.0) -> int:
    """Delete what lies under ``root``: files (and links) older than ``keep_s``, then the oldest beyond ``max_bytes``,
    then the folders left empty that had not changed for ``grace_s`` before this pass (one being filled now stays).
    Never follows a link. Returns how many entries were deleted."""
    now, files, folders = time.time(), [], []
    for dirpath, dirnames, filenames in os.walk(root, topdown=False, followlinks=False):  # deepest first
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
                files.append((st.st_mtime, st.st_size if stat.S_ISREG(st.st_mode) else 0, path))
            except OSError:
                pass
        if Path(dirpath) != root:
            try:
                folders.append((os.lstat(dirpath).st_mtime, dirpath))
            except OSError:
                pass
    files.sort()
    total, deleted = sum(f[1] for f in files), 0
    for mtime, size, path in files:
        if now - mtime <= keep_s and total <= max_bytes:
            continue
        try:
            os.unlink(path)
            deleted, total = deleted + 1, total - size
        except OSError:
            pass
    for mtime, folder in folders:
        if now - mtime > grace_s:
            try:
                os.rmdir(folder)  # only if empty
                deleted += 1
            except OSError:
                pass
    return deleted


def start_pruning(root: Path, uploads: Uploads, every_s: float, max_bytes: int) -> threading.Thread:
    """Prune ``root`` every ``every_s`` seconds while the app runs (a daemon thread that never dies)."""

    def loop() -> None:
        while True:
            time.sleep(every_s)
            try:
                prune(root, uploads.keep_s, max_bytes, grace_s=min(10.0, uploads.keep_s))
                uploads.expire()
            except Exception:  # a pruner that stopped would let the disk fill: go on
                pass

    thread = threading.Thread(target=loop, name="vae-hub-pruner", daemon=True)
    thread.start()
    return thread


def remove(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


async def answer(send: Callable[[Message], Awaitable[None]], status: int, detail: str) -> None:
    """A JSON answer ``{"detail": …}``, as FastAPI gives its own refusals."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def plain(value: Any) -> bool:
    """A value one field can take: a JSON scalar, or a short list of numbers (a latent point)."""
    if isinstance(value, list):
        return len(value) <= 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


class Gate:
    """ASGI middleware: see the module's docstring. ``endpoints`` maps each named endpoint's index to it."""

    def __init__(
        self,
        app: ASGIApp,
        endpoints: Mapping[int, Endpoint],
        uploads: Uploads,
        max_upload: int,
        max_body: int = 2**20,
        max_active: int = 64,
        max_streams: int = 256,
        upload_s: float = 120.0,
        body_s: float = 20.0,
        static_files: Iterable[str | os.PathLike] = (),
    ) -> None:
        self.app, self.endpoints, self.uploads = app, dict(endpoints), uploads
        self.by_name = {e.name: e for e in self.endpoints.values()}
        self.max_upload, self.max_body, self.upload_s, self.body_s = max_upload, max_body, upload_s, body_s
        self.limits = {"request": max_active, "stream": max_streams}
        self.active = {"request": 0, "stream": 0}
        self.static_files = {os.path.realpath(p) for p in static_files}
        names = ", ".join(f"/{n}" for n in self.by_name)
        self.menu = f"this app's endpoints are {names} (see /gradio_api/info)"

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return None  # no websockets: the page uses none; returning without accepting refuses the handshake
        kind = "stream" if STREAMS.match(scope["path"]) and scope["method"] != "POST" else "request"
        if self.active[kind] >= self.limits[kind]:
            return await answer(send, 503, "The server is busy: try again in a few seconds.")
        self.active[kind] += 1
        try:
            await self.route(scope, receive, send)
        finally:
            self.active[kind] -= 1

    async def route(self, scope: Scope, receive: Any, send: Any) -> None:
        method, path = scope["method"], scope["path"].rstrip("/") or "/"
        if method in ("GET", "HEAD"):
            call = re.fullmatch(r"/gradio_api/call/([\w-]+)/[\w-]+", path)
            if PAGES.fullmatch(path) or (call and call[1] in self.by_name) or self.static(path):
                return await self.app(scope, receive, send)
        elif method == "POST" and path in ("/gradio_api/queue/join", "/gradio_api/cancel"):
            return await self.call(scope, receive, send, None)
        elif method == "POST" and path.startswith("/gradio_api/call/"):
            return await self.call(scope, receive, send, path.removeprefix("/gradio_api/call/"))
        elif method == "POST" and path == "/gradio_api/upload":
            return await self.upload(scope, receive, send)
        return await answer(send, 404, f"Not found: this app serves no such route; {self.menu}.")

    def static(self, path: str) -> bool:
        return path.startswith("/gradio_api/file=") and os.path.realpath(unquote(path[17:])) in self.static_files

    def length(self, scope: Scope) -> int | None:
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit():
                return int(value)
        return None

    async def read(self, receive: Any, limit: int) -> bytes | None:
        """The whole body (at most ``limit`` bytes), or None if the client left or missed the deadline."""
        chunks, size, deadline = [], 0, time.monotonic() + self.body_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                return None
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return None
            if not message.get("more_body"):
                return b"".join(chunks)

    async def call(self, scope: Scope, receive: Any, send: Any, name: str | None) -> None:
        """A call of a named endpoint (``/queue/join`` by index, ``/call/<name>`` by name), or a cancel."""
        size = self.length(scope)
        if size is None or size > self.max_body:
            limit = f"{self.max_body // 2**10} KB"
            return await answer(send, 413, f"A call's body must state its Content-Length and be at most {limit}.")
        raw = await self.read(receive, size)
        if raw is None:
            return await answer(send, 408, "The request body did not arrive in time: send it again.")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return await answer(send, 400, "The request body must be JSON: {\"data\": [one value per field]}.")
        problem = self.check(body, name, scope["path"].endswith("/cancel"))
        if problem:
            return await answer(send, 404 if problem.startswith("There is no") else 422, problem)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        await self.app(scope, replay, send)

    def check(self, body: Any, name: str | None, cancel: bool) -> str | None:
        """What is wrong with a call's JSON body, in a sentence; None when it may go through."""
        if not isinstance(body, dict):
            return 'The request body must be a JSON object: {"data": [one value per field]}.'
        index = body.get("fn_index")
        if name is not None:
            endpoint = self.by_name.get(name)
            if endpoint is None:
                return f"There is no endpoint /{name[:60]}: {self.menu}."
        else:
            endpoint = self.endpoints.get(index) if type(index) is int else None
            if endpoint is None:
                return f"There is no endpoint with index {_short(index)}: {self.menu}."
        if cancel:
            return None
        data = body.get("data")
        counts = {len(endpoint.fields)} | ({len(endpoint.api_fields)} if name is not None else set())
        if not isinstance(data, list) or len(data) not in counts:
            got = f"{len(data)} values" if isinstance(data, list) else _short(data)
            return (
                f"/{endpoint.name} takes {len(endpoint.api_fields)} values in \"data\" "
                f"({', '.join(endpoint.api_fields)}); got {got}: send one value per field, in this order."
            )
        fields = endpoint.fields if len(data) == len(endpoint.fields) else endpoint.api_fields
        for field, value in zip(fields, data):
            if not plain(value):
                return f"{field} must be a string or a number, not {type(value).__name__}: send a plain JSON value."
        return None

    async def upload(self, scope: Scope, receive: Any, send: Any) -> None:
        """Gradio's upload route with its body capped and timed, and each server path in its answer replaced by
        an upload reference (:class:`Uploads`)."""
        size = self.length(scope)
        if size is None or size > self.max_upload:
            limit = f"{self.max_upload // 2**20} MB"
            return await answer(send, 413, f"An upload must state its Content-Length and be at most {limit}.")
        deadline = time.monotonic() + self.upload_s

        async def timed() -> Message:
            try:
                return await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                return {"type": "http.disconnect"}

        start: Message = {}
        body = bytearray()

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        try:
            await self.app(scope, timed, capture)
        except Exception as e:  # the client left, or missed the deadline, mid-upload: nothing to answer or log
            if type(e).__name__ != "ClientDisconnect":
                raise
            return None
        status, payload = start.get("status", 500), bytes(body)
        if status == 200:
            try:
                payload = json.dumps([self.uploads.add(p) for p in json.loads(payload)]).encode()
            except (ValueError, TypeError):
                return await answer(send, 500, "The upload could not be stored: try again.")
        else:
            return await answer(send, status, f"The upload was refused: {payload.decode(errors='replace')[:200]}")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _short(value: Any) -> str:
    text = json.dumps(value) if value is None or isinstance(value, (bool, int, float, str)) else type(value).__name__
    return text[:40]
