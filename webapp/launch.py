"""Start ``app.py`` in a subprocess on a free port and wait until it serves: for the tests and the benchmarks.

Imports neither torch nor Gradio, so a test or benchmark can start the app before loading anything heavy.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import ROOT


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(
    *args: str,
    timeout: float = 180.0,
    env: dict[str, str | None] | None = None,
    app_dir: Path = ROOT,
    quiet: bool = False,
    log_path: Path | None = None,
) -> Iterator[str]:
    """Run ``python app.py --port <free> <args>`` (from ``app_dir``) until the page answers; yield its URL; stop it
    afterwards. An ``env`` value of None removes that variable; ``quiet`` drops the app's output, ``log_path``
    writes it (stdout and stderr) to that file instead."""
    port = free_port()
    cmd = [sys.executable, str(app_dir / "app.py"), "--port", str(port), *args]
    merged = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env = {k: v for k, v in merged.items() if v is not None}
    scratch = tempfile.TemporaryDirectory()  # the latent-map caches of unshipped weights: not the user's own cache
    full_env.setdefault("VAE_HUB_MAP_CACHE", scratch.name)
    log = open(log_path, "wb") if log_path is not None else open(os.devnull, "wb") if quiet else None
    proc = subprocess.Popen(cmd, cwd=app_dir, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with code {proc.returncode} before serving")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"app.py did not serve {url} within {timeout:.0f} s")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log is not None:
            log.close()
        scratch.cleanup()
