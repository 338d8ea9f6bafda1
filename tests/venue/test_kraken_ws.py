"""Kraken's WebSocket v2 on the venue (``/v2``): the subscribe protocol on the wire, and real
ccxt.pro.kraken ``watch_ohlcv`` / ``watch_ticker`` — closed candles reach the bot's own
CandleStream exactly once and in order, tickers follow every trade price."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from kmg_autotrader.collector.stream import CandleStream
from kmg_autotrader.domain import Candle
from kmg_autotrader.venue import Venue
from tests.venue.test_kraken_rest import (
    STEP,
    SYMBOL,
    kraken_adapter,
    loaded_kraken_client,
    running_kraken_venue,
)


@pytest.fixture
async def kvenue() -> AsyncIterator[Venue]:
    """A started Kraken venue (manual clock)."""
    async with running_kraken_venue() as venue:
        yield venue


@pytest.fixture
async def kclient(kvenue: Venue) -> AsyncIterator[Any]:
    """A ccxt.pro.kraken of the venue's account, markets loaded."""
    async with loaded_kraken_client(kvenue) as client:
        yield client


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait (briefly polling) until ``condition()`` holds; fail after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out waiting for the stream"
        await asyncio.sleep(0.01)


async def receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = 2.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return dict(json.loads(msg.data))


async def test_v2_protocol_on_the_wire(kvenue: Venue) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{kvenue.ws_url}/v2") as ws,
    ):
        status = await receive(ws)
        assert status["channel"] == "status" and status["data"][0]["api_version"] == "v2"
        await ws.send_json({"method": "ping", "req_id": 7})
        pong = await receive(ws)
        assert pong["method"] == "pong" and pong["req_id"] == 7 and "time_out" in pong
        sub = {"channel": "ohlc", "symbol": [SYMBOL, "ETH/USDT"], "interval": 5}
        await ws.send_json({"method": "subscribe", "params": sub, "req_id": 1})
        ack = await receive(ws)
        assert ack["success"] is True and ack["req_id"] == 1
        assert ack["result"] == {
            "channel": "ohlc",
            "interval": 5,
            "snapshot": True,
            "symbol": SYMBOL,
            "warnings": [],
        }
        snapshot = await receive(ws)
        assert snapshot["channel"] == "ohlc" and snapshot["type"] == "snapshot"
        now = kvenue.clock.now_ms()
        truth = kvenue.market.visible(SYMBOL, "5m", now, limit=720)
        assert len(snapshot["data"]) == 720
        last = snapshot["data"][-1]
        assert last["interval_begin"] == "2030-01-01T00:00:00.000000000Z" and last["interval"] == 5
        assert [d["close"] for d in snapshot["data"]] == [c.close for c in truth]
        refused = await receive(ws)
        assert refused["success"] is False and refused["symbol"] == "ETH/USDT"
        assert refused["error"] == "Currency pair not supported ETH/USDT"
        fine = {"channel": "ohlc", "symbol": [SYMBOL], "interval": 1}
        await ws.send_json({"method": "subscribe", "params": fine, "req_id": 2})
        assert (await receive(ws))["success"] is False  # finer than the venue's 5m data
        # one step, one update: the closed candle's final values, then the new candle so far
        await kvenue.advance(step=1)
        update = await receive(ws)
        assert update["type"] == "update" and len(update["data"]) == 2
        final, forming = update["data"]
        closed = kvenue.market.visible(SYMBOL, "5m", kvenue.clock.now_ms())[-2]
        assert final["interval_begin"].startswith("2030-01-01T00:00:00")
        assert [final[k] for k in ("open", "high", "low", "close")] == [
            closed.open,
            closed.high,
            closed.low,
            closed.close,
        ]
        assert forming["interval_begin"].startswith("2030-01-01T00:05:00")
        await ws.send_json({"method": "unsubscribe", "params": {**sub, "symbol": [SYMBOL]}})
        assert (await receive(ws))["method"] == "unsubscribe"
        await kvenue.advance(step=1)
        tick = {"channel": "ticker", "symbol": [SYMBOL]}
        await ws.send_json({"method": "subscribe", "params": tick, "req_id": 3})
        ack = await receive(ws)  # no ohlc update came in between: unsubscribed
        assert ack["result"]["channel"] == "ticker" and ack["success"] is True
        ticker = await receive(ws)
        assert ticker["type"] == "snapshot"
        price = kvenue.market.last_price(SYMBOL, kvenue.clock.now_ms())
        assert ticker["data"][0]["last"] == float(price)  # type: ignore[arg-type]
        assert ticker["data"][0]["ask"] == float(price + kvenue.rules[SYMBOL].price_step)  # type: ignore[operator]


async def test_ticker_updates_carry_every_trade_price_of_a_candle(kvenue: Venue) -> None:
    """A stop monitor sees a candle's low and high: one ticker update per trade price."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{kvenue.ws_url}/v2") as ws,
    ):
        await receive(ws)
        sub = {"channel": "ticker", "symbol": [SYMBOL], "snapshot": False}
        await ws.send_json({"method": "subscribe", "params": sub})
        assert (await receive(ws))["success"] is True
        await kvenue.advance(step=2)
        prices: list[float] = []
        while True:
            try:
                msg = await receive(ws, timeout=0.3)
            except TimeoutError:
                break
            prices.append(msg["data"][0]["last"])
    candle = kvenue.market.visible(SYMBOL, "5m", kvenue.clock.now_ms())[-2]
    assert candle.high in prices and candle.low in prices and candle.close in prices


async def test_watch_ohlcv_feeds_the_bots_candle_stream_exactly_once_in_order(
    kvenue: Venue,
) -> None:
    adapter = kraken_adapter(kvenue)
    got: list[Candle] = []
    events: list[str] = []

    async def consumer(symbol: str, candle: Candle) -> None:
        got.append(candle)

    def on_event(kind: str, message: str, details: dict[str, Any]) -> None:
        events.append(kind)

    start = kvenue.clock.now_ms() // STEP * STEP  # the forming candle at start
    stream = CandleStream(
        adapter,
        SYMBOL,
        "5m",
        start_after=start - 3 * STEP,
        on_event=on_event,
        stall_timeout=5,
        clock=kvenue.clock.now_ms,
    )
    task = asyncio.create_task(stream.run(consumer))
    try:
        await until(lambda: "ws_connected" in events and len(got) >= 2)
        rest_calls = kvenue.requests["GET /0/public/OHLC"]
        for steps in (1, 1, 3, 1, 2):  # single steps and jumps over several candles
            await kvenue.advance(step=steps)
            now = kvenue.clock.now_ms()
            await until(lambda now=now: got[-1].timestamp == now // STEP * STEP - STEP)
    finally:
        stream.stop()
        await asyncio.wait_for(task, 5)
        await adapter.close()
    now = kvenue.clock.now_ms()
    visible = kvenue.market.visible(SYMBOL, "5m", now)
    truth = [c for c in visible if start - 2 * STEP <= c.ts and c.ts + STEP <= now]  # closed
    assert [c.timestamp for c in got] == [c.ts for c in truth]  # once each, in order, no gap
    assert [(c.open, c.high, c.low, c.close) for c in got] == [
        (c.open, c.high, c.low, c.close) for c in truth
    ]
    assert [c.volume for c in got] == [c.volume for c in truth]
    # all through the socket but the candle that was forming when it joined: the stream reads
    # that one from REST at its close (the socket's view of it may lack its closing update)
    assert kvenue.requests["GET /0/public/OHLC"] == rest_calls + 1
    assert "ws_failed" not in events and "rest_fallback" not in events


async def test_watch_ohlcv_of_a_coarser_interval_and_watch_ticker(
    kvenue: Venue, kclient: Any
) -> None:
    rows = await kclient.watch_ohlcv(SYMBOL, "15m")
    assert rows[-1][0] % 900_000 == 0
    for _ in range(6):
        await kvenue.advance(step=1)
        await asyncio.sleep(0.05)
    # ccxt's cache holds the latest values of every candle its updates touched
    seen = {r[0]: r for r in kclient.ohlcvs[SYMBOL]["15m"]}
    now = kvenue.clock.now_ms()
    truth = kvenue.market.visible(SYMBOL, "15m", now)
    closed = [c for c in truth if c.ts + 900_000 <= now][-2:]
    assert [seen[c.ts][:5] for c in closed] == [
        [c.ts, c.open, c.high, c.low, c.close] for c in closed
    ]
    ticker = await kclient.watch_ticker(SYMBOL)
    price = kvenue.market.last_price(SYMBOL, now)
    assert ticker["last"] == float(price)  # type: ignore[arg-type]
    await kvenue.advance(ms=7 * 60_000)
    target = float(kvenue.market.last_price(SYMBOL, kvenue.clock.now_ms()))  # type: ignore[arg-type]
    # one update per trade price: ccxt returns the one it was waiting for and caches the rest
    await until(lambda: kclient.tickers[SYMBOL]["last"] == target)
    ticker = kclient.tickers[SYMBOL]
    assert ticker["symbol"] == SYMBOL
    assert ticker["ask"] == round(target + 0.1, 1) and ticker["bid"] == target
