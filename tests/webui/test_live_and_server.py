"""Server-Sent Events, the event bus, serve() as a task, ``kmg web`` and the stored health."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from kmg_autotrader.domain import EquityPoint, Mode
from kmg_autotrader.domain.clock import now_ms
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.webui import BackgroundServer, EventBus, WebStartError, serve
from kmg_autotrader.webui.cli_commands import web
from kmg_autotrader.webui.health import DatabaseHealth
from tests.webui.conftest import AUTH, make_settings
from tests.webui.seed import START, STEP


def read_events(response: httpx.Response, wanted: set[str], timeout: float = 8.0) -> dict:
    """Read SSE frames until every kind in ``wanted`` was seen; return kind → data."""
    seen: dict[str, dict] = {}
    kind = None
    deadline = time.monotonic() + timeout
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind:
            seen[kind] = json.loads(line[6:])
            if wanted <= set(seen):
                break
        if time.monotonic() > deadline:
            break
    return seen


def test_stream_pushes_new_equity_orders_and_control(live_server: BackgroundServer) -> None:
    repos: Repositories = live_server.repos  # type: ignore[attr-defined]
    url = f"{live_server.url}/events/stream"
    assert httpx.get(url, timeout=5).status_code == 401
    with httpx.stream("GET", url, headers=AUTH, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")

        def write() -> None:
            time.sleep(0.6)  # the watcher takes its first markers first
            repos.equity.add(
                EquityPoint(Mode.PAPER, START + 500 * STEP, Decimal(10_800), Decimal(1), Decimal(2))
            )
            httpx.post(f"{live_server.url}/control/pause", headers=AUTH, timeout=5)

        threading.Thread(target=write, daemon=True).start()
        events = read_events(response, {"hello", "equity", "control"})
    assert events["hello"]["mode"] == "paper"
    assert events["equity"]["points"][-1]["equity"] == pytest.approx(10_800)
    assert events["control"]["paused"] is True
    httpx.post(f"{live_server.url}/control/resume", headers=AUTH, timeout=5)


async def test_bus_delivers_from_another_thread() -> None:
    bus = EventBus()
    queue = bus.subscribe()
    thread = threading.Thread(target=bus.publish, args=("orders", {"n": 1}))
    thread.start()
    thread.join()
    event = await asyncio.wait_for(queue.get(), 2)
    assert (event.kind, event.data) == ("orders", {"n": 1})
    bus.unsubscribe(queue)
    bus.publish("orders", {"n": 2})
    assert queue.empty() and bus.subscriber_count == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.db
async def test_serve_runs_as_a_task_beside_the_bot(tmp_path: Path, repos: Repositories) -> None:
    port = _free_port()
    settings = make_settings(tmp_path / "data", web_port=port)
    task = asyncio.create_task(serve(settings, repos))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(100):
            try:
                response = await client.get("/health")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
        assert response.status_code == 200
        # a browser still listening must not hold the bot's shutdown
        async with client.stream("GET", "/events/stream", headers=AUTH) as stream:
            assert stream.status_code == 200
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert time.monotonic() - started < 8


@pytest.mark.db
async def test_serve_on_a_taken_port_raises_instead_of_exiting(
    tmp_path: Path, repos: Repositories
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = make_settings(tmp_path / "data", web_port=taken.getsockname()[1])
        # uvicorn alone would sys.exit() and take the bot's event loop down with it
        with pytest.raises(WebStartError, match=r"cannot listen on 127\.0\.0\.1"):
            await serve(settings, repos)


def test_kmg_web_reports_a_taken_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = typer.Typer()
    app.command()(web)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("API_TOKEN", "a-token-long-enough-for-the-test")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = CliRunner().invoke(app, ["--port", str(taken.getsockname()[1])])
    assert result.exit_code == 1
    assert "cannot listen" in result.output and "Traceback" not in result.output


def test_kmg_web_refuses_a_public_host_without_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = typer.Typer()
    app.command()(web)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["--host", "0.0.0.0", "--port", str(_free_port())])
    assert result.exit_code == 2
    assert "API_TOKEN" in result.output


@pytest.mark.db
def test_stored_health_reports_the_breaker_and_feed(tmp_path: Path, repos: Repositories) -> None:
    health = DatabaseHealth(make_settings(tmp_path), repos)
    assert health()["status"] == "unknown"
    now = now_ms()
    repos.equity.add(EquityPoint(Mode.PAPER, now, Decimal(1), Decimal(1), Decimal(0)))
    data = health()
    assert data["status"] == "ok" and data["feed_status"] == "ok" and data["breaker_state"] == "ok"
    repos.risk_state.set(Mode.PAPER, "risk.breaker", {"breaker_tripped": True})
    assert health()["breaker_state"] == "tripped:drawdown" and health()["status"] == "degraded"
    repos.risk_state.set(Mode.PAPER, "risk.breaker", {"breaker_tripped": False})
    repos.risk_state.set(
        Mode.PAPER, "risk.day", {"kill_switch_tripped": True, "day": now // 86_400_000}
    )
    assert health()["breaker_state"] == "tripped:daily_loss"
    repos.risk_state.set(
        Mode.PAPER, "risk.day", {"kill_switch_tripped": True, "day": now // 86_400_000 - 1}
    )
    assert health()["breaker_state"] == "ok"


def test_stored_health_says_the_advisor_is_off_without_an_llm(
    tmp_path: Path, repos: Repositories, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LLM_PROVIDER", "ADVISOR_MODE"):
        monkeypatch.delenv(name, raising=False)

    def status(**overrides: object) -> str:
        return str(DatabaseHealth(make_settings(tmp_path, **overrides), repos)()["advisor_status"])

    assert status().startswith("off (no OPENAI_API_KEY")
    # configured and nothing failed lately (issue 18.16: the real state, not the mode)
    assert status(openai_base_url="http://127.0.0.1:9/v1") == "ok"
    assert status(llm_provider="local", advisor_mode="required") == "ok"
    assert status(advisor_mode="off", openai_base_url="http://127.0.0.1:9/v1") == "off"


def test_kmg_web_demo_needs_a_demo_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = typer.Typer()
    app.command()(web)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["--demo", "--port", str(_free_port())])
    assert result.exit_code == 1
    assert "run `kmg demo` first" in result.output


def test_kmg_web_demo_serves_the_demo_database(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from kmg_autotrader.storage.database import Database
    from tests.webui.conftest import TOKEN
    from tests.webui.seed import seed

    data = tmp_path / "data"
    data.mkdir()
    database = Database(f"sqlite:///{data / 'demo.sqlite'}")
    database.upgrade()
    seeded = seed(Repositories(database))
    database.dispose()
    port = _free_port()
    env = {**os.environ, "DATA_DIR": str(data), "API_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "kmg_autotrader", "web", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        response = None
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/trades", headers=AUTH, timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        assert response is not None and response.status_code == 200, response
        assert response.json()["items"], seeded
        assert not (data / "kmg.sqlite").exists(), "the demo view must not create kmg.sqlite"
    finally:
        process.terminate()
        process.communicate(timeout=20)
