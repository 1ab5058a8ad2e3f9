"""What the browser's decoder (``vaehub.js``) fetches for a model, the manifest that names the URLs, and a small
server of exactly those files for the standalone page ``live.html``.

For each model the page needs three files, all served as they are (no conversion step):

- ``config.json``: the architecture;
- ``model.safetensors``: the weights (the script fetches only the decoder's bytes where the server honours HTTP
  Range requests, as Gradio's file route does);
- the latent-map cache of :mod:`webapp.latent_map`: safetensors with ``mu`` (float16, (N, D)) and ``labels``
  (uint8, (N,)), the posterior means of test digits for the scatter.

:func:`manifest` turns them into the ``{name: {config, weights, map}}`` object that the page passes to
``vaeHub.register``; :func:`static_files` lists every file a server must expose for it (and nothing else).

    python -m webapp.static.live [--port 8000]    # the standalone page with the bundled models
"""

from __future__ import annotations

import argparse
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from vae_hub.files import CONFIG_NAME, WEIGHTS_NAME
from vae_hub.model import VAE
from webapp import latent_map

STATIC_DIR = Path(__file__).resolve().parent
SCRIPT = STATIC_DIR / "vaehub.js"  # the one file of the browser side
PAGE = STATIC_DIR / "live.html"  # the standalone page

ModelFiles = dict[str, Path]  # {"config": …, "weights": …, "map": …}; "map" is left out when there is none
MODEL_URL_NAMES = {"config": CONFIG_NAME, "weights": WEIGHTS_NAME, "map": "latent_map.safetensors"}  # file names


def map_file(model: VAE, folders: Iterable[str | os.PathLike] | None = None) -> Path | None:
    """``model``'s latent-map cache: the shipped one, else the user cache's; None when neither exists yet (then
    write one with ``latent_map.write(lmap, latent_map.cache_path(model, folder))``)."""
    for folder in folders if folders is not None else (latent_map.SHIPPED_DIR, latent_map.user_cache_dir()):
        path = latent_map.cache_path(model, folder)
        if path.is_file():
            return path.resolve()
    return None


def model_files(folder: str | os.PathLike, model: VAE | None = None) -> ModelFiles:
    """The files of the model saved in ``folder`` (``save_pretrained``'s layout); ``model`` spares loading it again
    to find its map's name."""
    folder = Path(folder).resolve()
    files = {"config": folder / CONFIG_NAME, "weights": folder / WEIGHTS_NAME}
    for path in files.values():
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing")
    found = map_file(model if model is not None else VAE.from_pretrained(folder))
    if found is not None:
        files["map"] = found
    return files


def export_files(model: VAE, lmap: latent_map.LatentMap | None, folder: str | os.PathLike) -> ModelFiles:
    """Write what the page fetches for a model held in memory into ``folder``, and return the files: for a model
    loaded from the Hub (its files are in the Hub's cache, under names of its own) or one without a map cache (the
    map the app built, e.g. from the example digits). ``config.json`` and ``model.safetensors`` as
    ``save_pretrained`` writes them, and ``latent_map.safetensors`` in the cache's format (left out for no map)."""
    folder = Path(folder).resolve()
    model.save_pretrained(folder)
    files = {"config": folder / CONFIG_NAME, "weights": folder / WEIGHTS_NAME}
    if lmap is not None:
        files["map"] = latent_map.write(lmap, folder / MODEL_URL_NAMES["map"])
    return files


def manifest(models: Mapping[str, ModelFiles], url_for: Callable[[Path], str]) -> dict[str, dict[str, str]]:
    """``{name: {config, weights, map}}`` with each file turned into a URL by ``url_for``."""
    return {name: {kind: url_for(path) for kind, path in files.items()} for name, files in models.items()}


def static_files(models: Mapping[str, ModelFiles]) -> list[Path]:
    """Every file the page fetches: the script and each model's files (for ``gradio.set_static_paths``)."""
    return [SCRIPT, *(path for files in models.values() for path in files.values())]


def gradio_url(path: str | os.PathLike) -> str:
    """The URL of a file under Gradio's file route (the file must be in ``set_static_paths`` or ``allowed_paths``)."""
    return "/gradio_api/file=" + quote(str(Path(path).resolve()))


# --- A server of the standalone page --------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    path: str
    range: str | None  # the Range header, if any
    status: int
    sent: int  # body bytes


RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class LiveServer:
    """Serves ``live.html``, ``vaehub.js``, ``/manifest.json`` and the models' files (nothing else) on 127.0.0.1.

    A model ``name``'s files are at ``/m/<name>/config.json``, ``/m/<name>/model.safetensors`` and
    ``/m/<name>/latent_map.safetensors``. ``ranges=False`` ignores Range headers (answers 200 with the whole file),
    as a plain static server does. Every request is kept in :attr:`requests`.
    """

    def __init__(self, models: Mapping[str, ModelFiles], port: int = 0, ranges: bool = True) -> None:
        self.files: dict[str, Path] = {"/live.html": PAGE, "/vaehub.js": SCRIPT}
        self.models: dict[str, ModelFiles] = {}
        self.ranges = ranges
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self.add(models)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def add(self, models: Mapping[str, ModelFiles]) -> None:
        """Serve more models (their files and their entries in the manifest)."""
        for name, files in models.items():
            self.models[name] = dict(files)
            for kind, path in files.items():
                self.files[f"/m/{name}/{MODEL_URL_NAMES[kind]}"] = Path(path)

    def manifest(self) -> dict[str, dict[str, str]]:
        return {
            name: {kind: f"/m/{name}/{MODEL_URL_NAMES[kind]}" for kind in files} for name, files in self.models.items()
        }

    def page_url(self) -> str:
        return f"{self.url}/live.html?manifest=/manifest.json"

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()

    def _log(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass  # the requests are kept in server.requests

            def do_GET(self) -> None:
                path = unquote(urlsplit(self.path).path)
                range_header = self.headers.get("Range")
                if path == "/manifest.json":
                    body, ctype = json.dumps(server.manifest()).encode(), "application/json"
                elif path in server.files:
                    body = server.files[path].read_bytes()
                    ctype = {".html": "text/html", ".js": "text/javascript", ".json": "application/json"}.get(
                        Path(path).suffix, "application/octet-stream"
                    )
                else:
                    self.send_error(404)
                    server._log(Request(path, range_header, 404, 0))
                    return
                status, extra = 200, {}
                m = RANGE.match(range_header or "")
                if server.ranges and m:
                    start = int(m.group(1))
                    end = min(int(m.group(2)) if m.group(2) else len(body) - 1, len(body) - 1)
                    if start > end:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        server._log(Request(path, range_header, 416, 0))
                        return
                    status, extra = 206, {"Content-Range": f"bytes {start}-{end}/{len(body)}"}
                    body = body[start : end + 1]
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")  # every run fetches what it measures
                if server.ranges:
                    self.send_header("Accept-Ranges", "bytes")
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                server._log(Request(path, range_header, status, len(body)))

        return Handler


def bundled_files() -> dict[str, ModelFiles]:
    """The files of the four bundled models."""
    from vae_hub import bundled_weights
    from vae_hub.hub import BUNDLED

    return {name: model_files(bundled_weights(name)) for name in BUNDLED}


@contextmanager
def serve(models: Mapping[str, ModelFiles] | None = None, port: int = 0, ranges: bool = True) -> Iterator[LiveServer]:
    """A running :class:`LiveServer` (the bundled models by default)."""
    with LiveServer(bundled_files() if models is None else models, port, ranges) as server:
        yield server


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m webapp.static.live", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=8000)
    args = p.parse_args(argv)
    with serve(port=args.port) as server:
        print(f"the live latent space with the bundled models: {server.page_url()}  (Ctrl+C to stop)")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
