"""Start ``app.py`` in a subprocess on a free port, for the HTTP, browser and load tests (and the benchmarks)."""

from __future__ import annotations

import json
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
from typing import Any

import pytest
from conftest import ROOT, require

VARIANTS = ("sgvb", "kl_wo_e", "z4/sgvb", "z4/kl_wo_e")  # the four bundled models, as the app serves them
# The weights the app serves: the bundled ones, or a folder laid out like weights/ (for work in progress).
WEIGHTS = Path(os.environ.get("VAE_HUB_TEST_WEIGHTS") or ROOT / "weights")


def weights_present() -> bool:
    return all((WEIGHTS / v / "model.safetensors").is_file() for v in VARIANTS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App(str):
    """The URL of a running app (a str), with its process and the folder its private folder is made in."""

    proc: subprocess.Popen
    tmp: Path

    def folders(self) -> list[Path]:
        return sorted(self.tmp.glob("vae-hub-app-*"))


@contextmanager
def serve(*args: str, env: dict[str, str | None] | None = None, log_path: Path | None = None,
          timeout: float = 240.0, app_dir: Path = ROOT) -> Iterator[App]:  # fmt: skip
    """Run ``python app.py --port <free> <args>`` (from ``app_dir``) until the page answers; yield its URL (an
    :class:`App`); stop it. An ``env`` value of None removes that variable; the output goes to ``log_path``."""
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        cmd = [sys.executable, str(app_dir / "app.py"), "--port", str(port), "--tmp", str(tmp), *args]
        if os.environ.get("VAE_HUB_TEST_WEIGHTS"):
            cmd += [f"--model={v}={WEIGHTS / v}" for v in VARIANTS]
        merged = {**os.environ, "PYTHONUNBUFFERED": "1", "VAE_HUB_CACHE": str(tmp / "cache"), **(env or {})}
        log = open(log_path or os.devnull, "wb")
        proc = subprocess.Popen(cmd, cwd=app_dir, env={k: v for k, v in merged.items() if v is not None},
                                stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        app = App(f"http://127.0.0.1:{port}/")
        app.proc, app.tmp = proc, tmp
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"app.py exited with code {proc.returncode} before serving")
                try:
                    with urllib.request.urlopen(app, timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"app.py did not serve {app} within {timeout:.0f} s")
                time.sleep(0.25)
            yield app
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def call(url: str, endpoint: str, *data: Any, timeout: float = 120) -> tuple[str, Any]:
    """POST /gradio_api/call/<endpoint> with raw JSON (NaN written as JSON's extension, as sent) and read its stream:
    ("complete", outputs) or ("error", the answer), or ("http <status>", the refusal's body)."""
    import httpx

    body = json.dumps({"data": list(data)})
    with httpx.Client(base_url=url, timeout=timeout) as http:
        r = http.post(f"gradio_api/call/{endpoint}", content=body, headers={"Content-Type": "application/json"})
        if r.status_code != 200:
            return f"http {r.status_code}", r.json() if "json" in r.headers.get("content-type", "") else r.text
        event = answer = None
        with http.stream("GET", f"gradio_api/call/{endpoint}/{r.json()['event_id']}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    answer = json.loads(line.split(":", 1)[1])
                    break
    return event or "none", answer


@pytest.fixture(scope="session")
def app_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's app server writes its output (stdout and stderr)."""
    return tmp_path_factory.mktemp("app") / "app.log"


@pytest.fixture(scope="session")
def app_url(app_log: Path) -> Iterator[App]:
    """One app server (the bundled models) for the whole test session: the HTTP and the browser tests share it."""
    require(weights_present(), f"the bundled weights in {WEIGHTS}")
    with serve(log_path=app_log) as url:
        yield url
