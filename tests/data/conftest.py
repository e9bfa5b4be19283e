"""Fixtures for the data tests: the real Fashion-MNIST folder, and a local HTTP server.

`fashion_mnist_dir` is TINYDEEP_DATA/fashion-mnist, or a skip that names the missing folder
(through `data_root` in tests/conftest.py). `local_server` serves bytes from memory on
127.0.0.1, so the download code is tested end to end without touching any other address;
it also clears the proxy settings, which could otherwise route a loopback request elsewhere.
`offline_url` is an address on 127.0.0.1 that nothing answers: the offline case.
"""

from __future__ import annotations

import http.server
import socket
import threading
from pathlib import Path

import pytest

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy")


@pytest.fixture
def fashion_mnist_dir(data_root) -> Path:
    """The folder holding the four real Fashion-MNIST .gz files (or a skip)."""
    return data_root("fashion-mnist")


class LocalServer:
    """An HTTP server on 127.0.0.1 with files held in memory.

    files: URL path ("/a.bin") -> bytes served with a correct Content-Length.
    cut: URL path -> how many bytes to send before dropping the connection (a broken download).
    requests: the paths asked for, in order.
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.requests: list[str] = []
        state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                state.requests.append(self.path)
                body = state.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))  # the full length, even if cut
                self.end_headers()
                self.wfile.write(body[: state.cut.get(self.path, len(body))])
                self.close_connection = True

            def log_message(self, *args):  # keep pytest's output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # A short poll interval: shutdown() waits for the next poll, once per test.
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def url(self, path: str) -> str:
        return self.base + path


def no_proxies(monkeypatch) -> None:
    """Switch proxies off for the test's duration: 127.0.0.1 means this machine."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture
def offline_url(monkeypatch) -> str:
    """A base URL ending in "/" that nothing answers (a closed port on 127.0.0.1), proxies
    off: every download from it fails at once, as with no network."""
    no_proxies(monkeypatch)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


@pytest.fixture
def local_server(monkeypatch):
    """A running LocalServer; proxies are switched off for the test's duration."""
    no_proxies(monkeypatch)
    server = LocalServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
