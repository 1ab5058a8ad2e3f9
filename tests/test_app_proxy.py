"""docs/app.md's nginx configuration, as written there, in front of the running app (Debian's nginx): the app works
through it, and it does what the app cannot do itself: half-open connections closed, connections per client capped,
oversized bodies refused before they reach the app."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from app_server import WEIGHTS, App, call, free_port
from conftest import ROOT, require

pytestmark = pytest.mark.http
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture(scope="module")
def proxy(app_url: App, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require(Path(NGINX).is_file(), f"Debian's nginx at {NGINX} (apt-get install nginx-light)")
    (conf,) = re.findall(r"```nginx\n(.*?)```", (ROOT / "docs" / "app.md").read_text(), re.S)
    port, app_port = free_port(), app_url.rstrip("/").rsplit(":", 1)[1]
    assert "listen 80;" in conf and "server 127.0.0.1:7860;" in conf
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{port};").replace("127.0.0.1:7860", f"127.0.0.1:{app_port}")
    d = tmp_path_factory.mktemp("nginx")
    temps = "".join(f"{k}_temp_path {d}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (d / "nginx.conf").write_text(
        ("user root;\n" if os.getuid() == 0 else "")  # workers as the test user: they write in its folder
        + f"daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 512; }}\n"
        + f"http {{\naccess_log off;\n{temps}{conf}\n}}\n"
    )
    proc = subprocess.Popen([NGINX, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")])
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                httpx.get(url, timeout=5)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, (d / "error.log").read_text()
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


def test_the_app_works_through_the_proxy(proxy: str) -> None:
    assert httpx.get(proxy, timeout=30).status_code == 200
    event, answer = call(proxy, "samples", "sgvb", 5, 1)
    assert event == "complete" and "Random samples" in answer[0]
    # the page's decoder reads the weights with Range requests: they pass the proxy as they are
    weights = httpx.get(f"{proxy}live/sgvb/model.safetensors", headers={"Range": "bytes=8-99"}, timeout=30)
    assert weights.status_code == 206 and weights.content == (WEIGHTS / "sgvb/model.safetensors").read_bytes()[8:100]


def test_oversized_bodies_stop_at_the_proxy(proxy: str) -> None:
    port = int(proxy.rstrip("/").rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 80000000\r\n\r\n")
        assert s.recv(200).startswith(b"HTTP/1.1 413")


def test_half_open_connections_are_closed(proxy: str) -> None:
    port = int(proxy.rstrip("/").rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line that ends the headers
        t = time.monotonic()
        while s.recv(4096):
            pass
        assert time.monotonic() - t < 15  # closed after client_header_timeout (10 s)


def test_connections_per_client_are_capped(proxy: str) -> None:
    """40 event streams at once from one address: 32 are served, the others refused."""
    port = int(proxy.rstrip("/").rsplit(":", 1)[1])
    sockets, statuses = [], []
    try:
        for i in range(40):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(f"GET /gradio_api/heartbeat/s{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            sockets.append(s)
            time.sleep(0.05)
        for s in sockets:
            statuses.append(int(s.recv(64).split(b" ")[1]))
    finally:
        for s in sockets:
            s.close()
    assert statuses.count(200) == 32 and statuses.count(503) == 8, statuses
