"""The venue's Binance streams: kline events closed exactly once per candle and in order (raw
socket and ccxt.pro's watch_ohlcv), tickers following the replayed price."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from kmg_autotrader.venue import Venue
from tests.venue.conftest import make_venue

SYMBOL = "BTC/USDT"
STEP = 300_000


async def _drain(ws: aiohttp.ClientWebSocketResponse, into: list[dict[str, Any]]) -> None:
    while True:
        try:
            msg = await ws.receive(timeout=0.15)
        except TimeoutError:
            return
        if msg.type != aiohttp.WSMsgType.TEXT:
            return
        into.append(json.loads(msg.data))


async def _subscribe(ws: aiohttp.ClientWebSocketResponse, *streams: str) -> list[dict[str, Any]]:
    await ws.send_json({"method": "SUBSCRIBE", "params": list(streams), "id": 1})
    got: list[dict[str, Any]] = []
    await _drain(ws, got)
    assert {"result": None, "id": 1} in got
    return got


async def test_klines_close_exactly_once_per_candle_in_order(venue: Venue, client: Any) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{venue.ws_url}/ws/0") as ws:
        messages = await _subscribe(ws, "btcusdt@kline_5m", "btcusdt@kline_1h")
        start = venue.clock.now_ms()
        # uneven jumps: one candle, several at once, mid-candle, exactly on a boundary
        for jump in (STEP, 7 * STEP + 12_345, 1_000, 2 * STEP - 13_345, 15 * STEP):
            await venue.advance(ms=jump)
            await _drain(ws, messages)
        end = venue.clock.now_ms()
    klines = [m["k"] for m in messages if m.get("e") == "kline"]
    closed_5m = [k for k in klines if k["x"] and k["i"] == "5m"]
    expected = list(range((start // STEP + 1) * STEP - STEP, end - STEP + 1, STEP))
    expected = [t for t in expected if start < t + STEP <= end]
    assert [k["t"] for k in closed_5m] == expected  # each candle once, in order, none missing
    rest = await client.fetch_ohlcv(SYMBOL, "5m", since=expected[0], limit=len(expected))
    assert [
        [k["t"], float(k["o"]), float(k["h"]), float(k["l"]), float(k["c"])] for k in closed_5m
    ] == [r[:5] for r in rest]
    closed_1h = [k["t"] for k in klines if k["x"] and k["i"] == "1h"]
    hours = [
        t
        for t in range(start // 3_600_000 * 3_600_000, end, 3_600_000)
        if start < t + 3_600_000 <= end
    ]
    assert closed_1h == hours
    # after each final candle the next forming update belongs to a later candle
    times = [k["t"] for k in klines if k["i"] == "5m"]
    assert times == sorted(times)


async def test_watch_ohlcv_sees_every_closed_candle_once(venue: Venue, client: Any) -> None:
    first = await asyncio.wait_for(client.watch_ohlcv(SYMBOL, "5m"), 5)
    assert first[-1][0] <= venue.clock.now_ms() < first[-1][0] + STEP
    start = venue.clock.now_ms()
    for _ in range(12):
        await venue.advance(step=1)
        await asyncio.wait_for(client.watch_ohlcv(SYMBOL, "5m"), 5)
        await asyncio.sleep(0.02)
    cached = [c for c in client.ohlcvs[SYMBOL]["5m"] if c[0] + STEP <= venue.clock.now_ms()]
    cached = [c for c in cached if c[0] + STEP > start]
    rest = await client.fetch_ohlcv(SYMBOL, "5m", since=cached[0][0], limit=len(cached))
    assert len(cached) == 12
    assert [c[0] for c in cached] == [r[0] for r in rest]
    assert [c[1:5] for c in cached] == [r[1:5] for r in rest]
    assert venue.dialect.hub.connects == 1  # one socket, no reconnects


async def test_watch_ticker_follows_the_replay(venue: Venue, client: Any) -> None:
    task = asyncio.ensure_future(client.watch_ticker(SYMBOL))
    await asyncio.sleep(0.2)
    now = await venue.advance(ms=90_000)
    ticker = await asyncio.wait_for(task, 5)
    assert str(ticker["last"]) == str(float(venue.market.last_price(SYMBOL, now) or 0))
    assert ticker["timestamp"] == now


async def test_the_replay_runs_by_itself_at_speed() -> None:
    # speed 600: a 5m candle every 0.5 s of wall time
    v = make_venue(speed=600, start_ms=None, tick_interval=0.05)
    await v.start(0)
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{v.ws_url}/ws") as ws:
            await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@kline_5m"], "id": 1})
            closed: list[int] = []
            deadline = asyncio.get_running_loop().time() + 5
            while len(closed) < 2 and asyncio.get_running_loop().time() < deadline:
                msg = await ws.receive_json(timeout=5)
                if msg.get("e") == "kline" and msg["k"]["x"]:
                    closed.append(msg["k"]["t"])
        assert len(closed) == 2 and closed[1] - closed[0] == STEP
    finally:
        await v.stop()


async def test_combined_stream_endpoint_wraps_events(venue: Venue) -> None:
    url = f"{venue.ws_url}/stream?streams=btcusdt@kline_5m"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await venue.advance(step=1)
        got: list[dict[str, Any]] = []
        await _drain(ws, got)
    assert got and all(m["stream"] == "btcusdt@kline_5m" for m in got)
    assert any(m["data"]["k"]["x"] for m in got)


async def test_unknown_streams_are_refused(venue: Venue) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{venue.ws_url}/ws") as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["dogeusdt@kline_5m"], "id": 7})
        reply = await ws.receive_json(timeout=2)
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 8})
        finer = await ws.receive_json(timeout=2)
    assert reply["id"] == 7 and "error" in reply
    assert finer["id"] == 8 and "error" in finer  # finer than the replayed 5m candles
