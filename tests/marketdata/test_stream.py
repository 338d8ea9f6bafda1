"""Live stream: WebSocket → REST fallback → WebSocket, against the fake Binance socket."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from kmg_autotrader.collector.events import Backoff
from kmg_autotrader.collector.stream import CandleStream, PriceStream, PriceTick
from kmg_autotrader.domain import Candle
from kmg_autotrader.exchange import ExchangeAdapter
from tests.fakes.fake_exchange import FakeExchange, random_walk_candles

MIN = 60_000
T0 = 1_700_000_040_000 // MIN * MIN


async def _until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


async def _until_ticking(
    fake: FakeExchange, cond: Callable[[], bool], timeout: float = 30.0
) -> None:
    """Wait for ``cond`` with the virtual clock frozen while the open candle keeps ticking.

    Binance pushes an update of the open candle every ~2 s, and the stream only counts as
    connected once a message arrived, so a wait for a WebSocket state must keep the socket fed
    (a silent or refusing fake still drops the updates). The clock does not move, so the candle
    sequence does not depend on how long the wait took: on a loaded machine the stream may need
    more wall time to reconnect or to notice a stall, but it sees exactly the same market.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        open_ts = (fake.now_ms or 0) // MIN * MIN
        await fake.push_kline("BTCUSDT", "1m", open_ts, final=False)
        await asyncio.sleep(0.01)


async def _run(
    fake: FakeExchange, adapter: ExchangeAdapter, disturb: bool
) -> tuple[list[Candle], list[tuple[str, str, dict[str, Any]]]]:
    fake.set_klines("BTCUSDT", "1m", random_walk_candles(T0, 400, MIN, seed=3))
    fake.now_ms = T0 + 10 * MIN + 5_000
    emitted: list[Candle] = []
    events: list[tuple[str, str, dict[str, Any]]] = []

    async def consumer(symbol: str, candle: Candle) -> None:
        assert symbol == "BTC/USDT"
        emitted.append(candle)

    def on_event(kind: str, message: str, details: dict[str, Any]) -> None:
        events.append((kind, message, details))

    stream = CandleStream(
        adapter,
        "BTC/USDT",
        "1m",
        start_after=T0 + 4 * MIN,
        on_event=on_event,
        stall_timeout=1.0,
        poll_interval=0.02,
        backoff=Backoff(base=0.05, cap=0.15, rng=random.Random(1)),
        clock=lambda: fake.now_ms or 0,
    )
    task = asyncio.create_task(stream.run(consumer))
    # Each phase starts once the stream has really reached the state the previous one aims
    # at (waits tick the open candle with the clock frozen, see _until_ticking), never after
    # a wall-clock guess: under load a reconnect or a stall check takes longer in wall time.
    await _until_ticking(fake, lambda: stream.mode == "ws")
    for step in range(90):
        if disturb and step == 15:
            await _until_ticking(fake, lambda: stream.mode == "ws")
            await fake.drop_ws()
            fake.ws_refuse = True
        if disturb and step == 35:
            # The drop was noticed (REST carries the candles) and a reconnect was refused.
            await _until_ticking(fake, lambda: stream.mode == "rest" and fake.ws_refused > 0)
            fake.ws_refuse = False
        if disturb and step == 55:
            await _until_ticking(fake, lambda: stream.mode == "ws")  # back on the socket
            fake.ws_silent = True
        if disturb and step == 75:
            await _until_ticking(fake, lambda: stream.mode == "rest")  # the stall was noticed
            fake.ws_silent = False
        await fake.advance("BTCUSDT", "1m", (fake.now_ms or 0) + 20_000)
        await asyncio.sleep(0.02)
    current = (fake.now_ms or 0) // MIN * MIN
    # ccxt.pro hands over a message when the next one arrives: keep the open candle ticking
    # (Binance pushes kline updates every ~2 s) until the last closed candle is out.
    await _until_ticking(fake, lambda: stream.last_emitted == current - MIN)
    stream.stop()
    await asyncio.wait_for(task, 5)
    return emitted, events


async def test_ws_drop_rest_fallback_and_back_gives_identical_sequence(
    fake: FakeExchange, binance: ExchangeAdapter
) -> None:
    calm, calm_events = await _run(fake, binance, disturb=False)
    fake.requests.clear()
    stormy, events = await _run(fake, binance, disturb=True)
    truth = fake.klines[("BTCUSDT", "1m")]
    expected = [
        Candle(int(r[0]), r[1], r[2], r[3], r[4], r[5])
        for r in truth.to_numpy()
        if T0 + 4 * MIN < r[0] <= calm[-1].timestamp
    ]
    assert calm == expected  # every closed candle once, in order, with its final values
    assert stormy == calm
    kinds = [k for k, _, _ in events]
    assert "ws_failed" in kinds and "ws_stalled" in kinds
    assert kinds.count("rest_fallback") >= 2 and kinds.count("ws_connected") >= 3
    assert fake.ws_refused > 0  # a reconnect was refused and the stream still came back
    assert [k for k, _, _ in calm_events] == ["ws_connected"]
    assert any("klines" in r for r in fake.requests)  # REST really carried the gap


async def test_rest_only_stream_emits_closed_candles(
    fake: FakeExchange, binance: ExchangeAdapter
) -> None:
    fake.set_klines("BTCUSDT", "1m", random_walk_candles(T0, 100, MIN))
    fake.now_ms = T0 + 5 * MIN + 1
    got: list[Candle] = []

    async def consumer(symbol: str, candle: Candle) -> None:
        got.append(candle)

    stream = CandleStream(
        binance,
        "BTC/USDT",
        "1m",
        start_after=T0,
        poll_interval=0.01,
        clock=lambda: fake.now_ms or 0,
        use_websocket=False,
    )
    task = asyncio.create_task(stream.run(consumer))
    await _until(lambda: stream.last_emitted == T0 + 4 * MIN)
    fake.now_ms = T0 + 7 * MIN + 30_000
    await _until(lambda: stream.last_emitted == T0 + 6 * MIN)
    stream.stop()
    await task
    assert [c.timestamp for c in got] == [T0 + i * MIN for i in range(1, 7)]


async def test_price_stream_ws_then_rest_fallback(
    fake: FakeExchange, binance: ExchangeAdapter
) -> None:
    fake.set_klines("BTCUSDT", "1m", random_walk_candles(T0, 100, MIN))
    fake.now_ms = T0 + 5 * MIN
    ticks: list[PriceTick] = []
    kinds: list[str] = []

    async def consumer(tick: PriceTick) -> None:
        ticks.append(tick)

    stream = PriceStream(
        binance,
        ["BTC/USDT"],
        stall_timeout=1.0,
        poll_interval=0.01,
        backoff=Backoff(base=0.2, cap=0.2),
        on_event=lambda k, m, d: kinds.append(k),
    )
    task = asyncio.create_task(stream.run(consumer))
    deadline = asyncio.get_running_loop().time() + 30
    while not any(t.source == "ws" for t in ticks):  # push until the socket delivers one
        assert asyncio.get_running_loop().time() < deadline, "no WebSocket tick in time"
        await fake.push_ticker("BTCUSDT")
        await asyncio.sleep(0.01)
    fake.ws_refuse = True
    await fake.drop_ws()
    await _until(lambda: any(t.source == "rest" for t in ticks))
    stream.stop()
    await asyncio.wait_for(task, 5)
    assert ticks[0].price == fake.last_price("BTCUSDT")
    assert "price_ws_failed" in kinds and "price_rest_fallback" in kinds
