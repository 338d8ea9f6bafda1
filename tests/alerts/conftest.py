"""Loopback HTTP endpoints for alert delivery tests (nothing leaves 127.0.0.1)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Received:
    """One request the fake endpoint got."""

    path: str
    body: dict[str, Any]


@dataclass
class FakeEndpoint:
    """A loopback HTTP server that records JSON posts and answers ``status``."""

    port: int
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def endpoint() -> Iterator[FakeEndpoint]:
    """A recording HTTP server on 127.0.0.1."""
    state = FakeEndpoint(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            state.requests.append(Received(self.path, body))
            self.send_response(state.status)
            payload = b'{"ok": true, "result": {}}'
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            state.arrived.set()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def refused_port() -> int:
    """A loopback port nobody listens on (connection refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


@pytest.fixture
def hanging_port() -> Iterator[int]:
    """A loopback port that accepts connections (kernel backlog) but never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield int(sock.getsockname()[1])
    sock.close()
