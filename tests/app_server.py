"""Start ``app.py`` in a subprocess on a free port, for the HTTP, browser and load tests."""

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

import pytest
from conftest import require

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `import app` in the tests, under a plain `pytest` as well as `python -m pytest`
    sys.path.insert(0, str(ROOT))
# The weights the app serves: the bundled ones, or a folder laid out like weights/ (for work in progress).
WEIGHTS = Path(os.environ.get("VAE_HUB_TEST_WEIGHTS") or ROOT / "weights")
VARIANTS = ("sgvb", "kl_wo_e", "z4/sgvb", "z4/kl_wo_e")  # as webapp.handlers.VARIANTS (not imported: no torch here)


def weights_present() -> bool:
    return all((WEIGHTS / v / "model.safetensors").is_file() for v in VARIANTS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(
    *args: str, timeout: float = 180.0, env: dict[str, str | None] | None = None, app_dir: Path = ROOT
) -> Iterator[str]:
    """Run ``python app.py --port <free> <args>`` (from ``app_dir``) until the page answers; yield its URL; stop it
    afterwards. An ``env`` value of None removes that variable."""
    port = free_port()
    cmd = [sys.executable, str(app_dir / "app.py"), "--port", str(port), *args]
    merged = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env = {k: v for k, v in merged.items() if v is not None}
    if os.environ.get("VAE_HUB_TEST_WEIGHTS"):
        cmd += [f"--model={v}={WEIGHTS / v}" for v in VARIANTS]
    scratch = tempfile.TemporaryDirectory()  # the latent-map caches of unshipped weights: not the user's own cache
    full_env.setdefault("VAE_HUB_MAP_CACHE", scratch.name)
    log = open(os.devnull, "wb") if os.environ.get("VAE_HUB_QUIET_APP") else None
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


@pytest.fixture(scope="session")
def app_url() -> Iterator[str]:
    """One app server (the bundled models) for the whole test session: the HTTP and the browser tests share it.

    conftest.py registers this module as a plugin, so every module gets the same server.
    """
    require(weights_present(), f"the bundled weights in {WEIGHTS}")
    with serve() as url:
        yield url
