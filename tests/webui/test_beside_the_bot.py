"""The dashboard beside the running bot (issue 18 item 20: the dashboard slowed the bot).

The real bot replays the packaged candles (``run_demo``, PAPER, SQLite) with the dashboard
started as ``kmg demo`` starts it; a real HTTP client reads and acts on it from another thread.
The dashboard must serve from its own thread and loop: a request that holds its event loop
(here: one response whose rendering takes 1.5 s) must not stop the bot's candles, while every
action on the bot (pause, resume, flatten, health, risk edits) still runs on the bot's loop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from kmg_autotrader.autopilot.runner import run_demo
from kmg_autotrader.autopilot.web import start_web
from kmg_autotrader.autopilot.wiring import BotRuntime
from kmg_autotrader.config import Settings
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.webui import context as web_context
from tests.webui.conftest import AUTH, make_settings

READS = ("/metrics", "/equity", "/signals", "/trades")
SLOW_RENDER_S = 1.5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spy(calls: list[tuple[str, threading.Thread]], name: str, fn: Callable[..., Any]) -> Any:
    """``fn``, noting the thread of each call."""

    def spied(*args: Any, **kwargs: Any) -> Any:
        calls.append((name, threading.current_thread()))
        return fn(*args, **kwargs)

    return spied


class SlowRender:
    """The next JSON response armed takes ``SLOW_RENDER_S`` to render, holding its event loop
    (as a heavy serialisation would); notes where it ran."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        self.redact = redact
        self.armed = threading.Event()
        self.started = threading.Event()
        self.where: tuple[threading.Thread, asyncio.AbstractEventLoop] | None = None

    def __call__(self, text: str) -> str:
        if self.armed.is_set():
            self.armed.clear()
            self.where = (threading.current_thread(), asyncio.get_running_loop())
            self.started.set()
            time.sleep(SLOW_RENDER_S)  # blocks the loop this response renders on
        return self.redact(text)


async def test_the_dashboard_serves_off_the_bots_loop_and_acts_on_the_bot_through_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = SlowRender(web_context.redact)
    monkeypatch.setattr(web_context, "redact", slow)
    port = _free_port()
    settings = make_settings(tmp_path / "data", web_port=port, advisor_mode="off")
    bot_loop = asyncio.get_running_loop()
    bot_thread = threading.current_thread()
    calls: list[tuple[str, threading.Thread]] = []
    ready = asyncio.Event()
    box: dict[str, Any] = {}

    async def web(
        settings: Settings, repos: Repositories, runtime: BotRuntime
    ) -> Callable[[], Awaitable[None]]:
        bot = runtime.bot
        for name in ("pause", "resume", "flatten", "refresh_health"):
            setattr(bot, name, _spy(calls, name, getattr(bot, name)))
        runtime.params.update = _spy(calls, "risk.update", runtime.params.update)  # type: ignore[method-assign]
        box["runtime"] = runtime
        stop_web = await start_web(settings, repos, runtime)
        ready.set()
        return stop_web

    feeds: list[Any] = []

    def on_feed(feed: Any) -> Callable[[], None]:
        feeds.append(feed)
        return lambda: None

    stop = asyncio.Event()
    run = asyncio.create_task(
        run_demo(settings, speed=300, web=web, limit=6000, stop=stop, on_feed=on_feed)
    )
    lags: list[tuple[float, float]] = []  # (when, how late a 10 ms timer fired) on the bot loop

    async def watch_lag() -> None:
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append((t0, time.monotonic() - t0 - 0.01))

    watcher = asyncio.create_task(watch_lag())
    try:
        await asyncio.wait_for(ready.wait(), 60)
        feed = feeds[0]
        base = f"http://127.0.0.1:{port}"

        def client() -> dict[str, Any]:
            out: dict[str, Any] = {"statuses": []}
            with httpx.Client(base_url=base, headers=AUTH, timeout=30) as http:
                # sustained reads while the bot trades
                deadline = time.monotonic() + 2.0
                while time.monotonic() < deadline:
                    for path in READS:
                        out["statuses"].append(http.get(path).status_code)
                # one response holds the dashboard's loop: the bot must keep going meanwhile
                before = feed.steps_done
                slow.armed.set()
                t0 = time.monotonic()
                # (a URL not asked before: computed, not answered from the read cache)
                out["slow_status"] = http.get("/equity?max_points=499").status_code
                out["slow_window"] = (t0, time.monotonic())
                out["steps_during_slow"] = feed.steps_done - before
                # actions reach the bot and run on its loop
                out["pause"] = http.post("/control/pause").json()
                out["paused_health"] = http.get("/health").json()
                out["resume"] = http.post("/control/resume").json()
                out["flatten"] = http.post("/control/flatten", json={"confirm": True}).json()
                out["risk"] = http.put(
                    "/risk", json={"changes": {"max_open_positions": 4}, "comment": "from the test"}
                )
            return out

        out = await asyncio.to_thread(client)
        assert not run.done(), "the replay ended before the test finished: raise the limit"
    finally:
        watcher.cancel()
        stop.set()
        t_stop = time.monotonic()
        summary = await asyncio.wait_for(run, 60)
        stop_seconds = time.monotonic() - t_stop

    assert set(out["statuses"]) == {200} and len(out["statuses"]) >= 8

    assert out["slow_status"] == 200 and slow.where is not None
    # behavioural: while that loop was held for 1.5 s the bot handled candles and its loop
    # stayed responsive (before: no candle, and a 1.5 s stall of the bot's loop)
    assert out["steps_during_slow"] >= 20, out["steps_during_slow"]
    start, end = out["slow_window"]
    during = [lag for when, lag in lags if start <= when <= end]
    assert during and max(during) < SLOW_RENDER_S / 2, max(during, default=None)
    # structural: the response rendered on the dashboard's own thread and loop, not the bot's
    thread, loop = slow.where
    assert loop is not bot_loop and thread is not bot_thread

    # actions: done on the bot's loop (its thread), with their effect read back
    assert out["pause"]["ok"] and out["pause"]["paused"] is True
    assert out["paused_health"]["paused"] is True
    assert out["resume"]["ok"] and out["resume"]["paused"] is False
    assert out["flatten"]["ok"] and out["flatten"]["paused"] is True
    assert out["risk"].status_code == 200, out["risk"].text
    assert out["risk"].json()["params"]["max_open_positions"] == 4
    runtime: BotRuntime = box["runtime"]
    assert runtime.params.current()[1].max_open_positions == 4  # the store the bot reads
    names = {name for name, _ in calls}
    assert {"pause", "resume", "flatten", "refresh_health", "risk.update"} <= names
    assert all(thread is bot_thread for _, thread in calls), calls
    assert runtime.bot.is_paused()  # flatten pauses

    # shutdown: quick, and the dashboard's thread and port are gone
    assert summary.candles > 0
    assert stop_seconds < 15
    assert not [t for t in threading.enumerate() if t.name == "kmg-web"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/health", timeout=2)
