"""Finding 3 of issue 20: a large or unauthenticated body never reaches the bot's event loop.

The server caps bodies at 64 KB and authenticates before anything reads a body, so a 50 MB
``PUT /risk`` without a token is answered at once, unread, and ``/health`` stays responsive.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from kmg_autotrader.domain import Mode
from kmg_autotrader.webui import BackgroundServer
from tests.webui.conftest import AUTH

FIFTY_MB = 50 * 1024 * 1024
MAX_BODY_BYTES = 64 * 1024  # the documented cap


def _address(server: BackgroundServer) -> tuple[str, int]:
    parts = urlsplit(server.url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _read_head(sock: socket.socket, timeout: float) -> str:
    """The status line and headers the server sent within ``timeout`` ('' if none)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        pass
    return data.decode("latin-1")


def _risk_version(server: BackgroundServer) -> int:
    latest = server.repos.risk_params.latest(Mode.PAPER)  # type: ignore[attr-defined]
    return 0 if latest is None else int(latest["version"])


@pytest.fixture
def raw(live_server: BackgroundServer) -> Iterator[socket.socket]:
    sock = socket.create_connection(_address(live_server), timeout=5)
    yield sock
    sock.close()


def test_a_50_mb_unauthenticated_put_is_refused_unread_and_health_stays_up(
    live_server: BackgroundServer, raw: socket.socket
) -> None:
    host, port = _address(live_server)
    before = _risk_version(live_server)
    head = (
        f"PUT /risk HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {FIFTY_MB}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    raw.sendall(head + b'{"changes": {"max_open_positions": 2}, "comment": "' + b"x" * 65536)
    stop = threading.Event()
    health_times: list[float] = []

    def poll_health() -> None:  # the bot's loop answers others while the big body waits
        with httpx.Client(base_url=live_server.url, timeout=5) as client:
            while not stop.is_set():
                t0 = time.monotonic()
                assert client.get("/health").status_code == 200
                health_times.append(time.monotonic() - t0)
                time.sleep(0.05)

    poller = threading.Thread(target=poll_health)
    poller.start()
    try:
        answer = _read_head(raw, timeout=3)
    finally:
        time.sleep(0.3)
        stop.set()
        poller.join()
    assert answer.startswith("HTTP/1.1 413"), answer or "no answer within 3 s"
    assert "connection: close" in answer.lower()
    assert time.monotonic() - started < 3
    assert health_times and max(health_times) < 1.0
    # the server closes the connection instead of reading the other 50 MB
    raw.settimeout(3)
    closed_at = time.monotonic()
    try:
        while raw.recv(65536):
            pass
    except ConnectionResetError:
        pass
    assert time.monotonic() - closed_at < 3
    assert _risk_version(live_server) == before


def test_an_unauthenticated_body_is_refused_before_it_is_sent(
    live_server: BackgroundServer, raw: socket.socket
) -> None:
    """401 without waiting for the (small, declared) body: the server never reads it."""
    host, port = _address(live_server)
    raw.sendall(
        f"PUT /risk HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: 1000\r\n\r\n".encode()
    )
    answer = _read_head(raw, timeout=2)
    assert answer.startswith("HTTP/1.1 401"), answer or "no answer: the server waited for the body"
    assert "www-authenticate: bearer" in answer.lower()


def test_a_wrong_token_is_refused_before_the_body_too(
    live_server: BackgroundServer, raw: socket.socket
) -> None:
    host, port = _address(live_server)
    raw.sendall(
        f"POST /control/flatten HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Authorization: Bearer not-the-token\r\nContent-Type: application/json\r\n"
        "Content-Length: 500\r\n\r\n".encode()
    )
    assert _read_head(raw, timeout=2).startswith("HTTP/1.1 401")


def _padded_change(size: int) -> bytes:
    body = json.dumps({"changes": {"max_open_positions": 4}, "comment": "big"}).encode()
    return body[:-1] + b" " * size + b"}"  # valid JSON, just long


def test_an_authenticated_body_over_the_cap_is_refused(live_server: BackgroundServer) -> None:
    body = _padded_change(MAX_BODY_BYTES)
    before = _risk_version(live_server)
    headers = {**AUTH, "Content-Type": "application/json"}
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        declared = client.put("/risk", content=body, headers=headers)
        assert declared.status_code == 413, declared.text
        assert declared.json()["detail"].startswith("request body too large")

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            for start in range(0, len(body), 8192):
                yield body[start : start + 8192]

        streamed = client.put("/risk", content=chunks(), headers=headers)
        assert streamed.status_code == 413, streamed.text
        assert _risk_version(live_server) == before
        # under the cap the same change is accepted
        small = client.put("/risk", content=_padded_change(1000), headers=headers)
        assert small.status_code == 200, small.text
        assert small.json()["params"]["max_open_positions"] == 4
