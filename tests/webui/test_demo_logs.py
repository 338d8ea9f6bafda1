"""The Logs page's rows (issue 19 item 7): a demo's rows read in the replay's simulated time,
not the wall-clock minute the fast replay ran in; events about one market fill the Symbol column.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from kmg_autotrader.autopilot.runner import run_demo
from kmg_autotrader.autopilot.web import start_web
from kmg_autotrader.autopilot.wiring import BotRuntime
from kmg_autotrader.config import Settings
from kmg_autotrader.domain import Mode, Order, OrderStatus, OrderType, Side
from kmg_autotrader.domain.clock import SimulatedClock, now_ms
from kmg_autotrader.execution.orders import OrderClient
from kmg_autotrader.execution.store_db import RepositoryStore
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from tests.webui.conftest import AUTH, make_settings

DAY_MS = 86_400_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_demo_log_rows_carry_the_simulated_time(tmp_path: Path) -> None:
    port = _free_port()
    settings = make_settings(tmp_path / "data", web_port=port, advisor_mode="off")
    ready = asyncio.Event()
    box: dict[str, Any] = {}

    async def web(
        settings: Settings, repos: Repositories, runtime: BotRuntime
    ) -> Callable[[], Awaitable[None]]:
        box["clock"] = runtime.bot.p.clock
        stop_web = await start_web(settings, repos, runtime)
        ready.set()
        return stop_web

    stop = asyncio.Event()
    run = asyncio.create_task(run_demo(settings, speed=300, web=web, limit=6000, stop=stop))
    try:
        await asyncio.wait_for(ready.wait(), 60)

        def client() -> dict[str, Any]:
            out: dict[str, Any] = {}
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=30
            ) as http:
                out["pause"] = http.post("/control/pause").status_code
                time.sleep(0.3)  # the replay moves on: the next row is on a later candle
                out["resume"] = http.post("/control/resume").status_code
                out["risk"] = http.put(
                    "/risk", json={"changes": {"max_open_positions": 4}}
                ).status_code
                out["events"] = http.get("/logs", params={"kind": "event"}).json()["items"]
            return out

        out = await asyncio.to_thread(client)
        assert not run.done(), "the replay ended before the test finished: raise the limit"
    finally:
        stop.set()
        await asyncio.wait_for(run, 60)
    assert (out["pause"], out["resume"], out["risk"]) == (200, 200, 200)
    simulated = box["clock"]
    assert isinstance(simulated, SimulatedClock)
    wall = now_ms()
    # the packaged candles are years old: a row stamped on the wall clock is within a day of now
    by_kind = {row["title"].split(" ")[0]: row["time"] for row in out["events"]}
    assert {"paused", "resumed", "risk_params_changed"} <= set(by_kind), by_kind
    for kind in ("paused", "resumed", "risk_params_changed"):
        assert by_kind[kind] <= simulated.now_ms() < wall - DAY_MS, (kind, by_kind[kind])
    assert by_kind["paused"] < by_kind["resumed"], "the replay's time moved between the two"
    # the alerts of the run (started, daily summaries, stopped) too
    database = open_database(f"sqlite:///{tmp_path / 'data' / 'demo.sqlite'}")
    try:
        alerts = Repositories(database).alerts.recent(Mode.PAPER, limit=100)
    finally:
        database.dispose()
    assert alerts and all(a["created_at"] < wall - DAY_MS for a in alerts), alerts


def test_events_about_a_symbol_fill_the_symbol_column(
    client: TestClient, repos: Repositories
) -> None:
    store = RepositoryStore(repos, Mode.PAPER)
    order = Order(
        Mode.PAPER,
        "kmg-u-1",
        "BTC/USDT",
        Side.BUY,
        OrderType.MARKET,
        Decimal("0.01"),
        OrderStatus.OPEN,
        1_717_200_000_000,
    )
    store.add_order(order)
    # the order client's own path when an order's outcome cannot be known
    OrderClient(None, store, clock=SimulatedClock(1_717_200_000_000))._unresolve(  # type: ignore[arg-type]
        order, "timeout"
    )
    repos.events.add(Mode.PAPER, "feed", "switched to REST polling")  # about no market
    items = client.get("/logs", params={"kind": "event"}, headers=AUTH).json()["items"]
    symbols = {row["title"].split(" ")[0]: row["symbol"] for row in items}
    assert symbols == {"order_unresolved": "BTC/USDT", "feed": None}, symbols
