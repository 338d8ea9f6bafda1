"""Regressions R3 found in the candle stream (collector/stream.py), against the local venue.

* REST fallback judged "closed" by our clock alone: a clock running ahead of the exchange's (a
  sync seconds old, a replaying venue that pauses) made the still-forming candle "closed", so
  a partial candle was stored and decided on, and the real one was then skipped as already
  handed over. A candle is now closed for REST when the answer also shows a later one.
* A socket that was streaming and drops is reconnected at once (no second of backoff and REST
  polling per drop), and the reconnect backfills what closed meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kmg_autotrader.collector.events import Backoff
from kmg_autotrader.collector.stream import CandleStream
from kmg_autotrader.domain import Candle
from kmg_autotrader.exchange import ExchangeAdapter
from kmg_autotrader.venue import Fault, FaultPlan, Venue
from tests.venue.conftest import START_MS, make_venue

TF = 300_000


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    v = make_venue(faults=FaultPlan())
    await v.start(0)
    try:
        yield v
    finally:
        await v.stop()


@pytest.fixture
async def adapter(venue: Venue) -> AsyncIterator[ExchangeAdapter]:
    a = ExchangeAdapter("binance", api_url=venue.base_url)
    await a.load_markets()
    try:
        yield a
    finally:
        await a.close()


def _row(c: list[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in c[:6])


async def _venue_candle(adapter: ExchangeAdapter, ts: int) -> tuple[float, ...]:
    (row,) = [r for r in await adapter.fetch_ohlcv("BTC/USDT", "5m", since=ts) if r[0] == ts]
    return _row(row)


async def test_rest_fallback_never_hands_over_a_forming_candle_when_our_clock_is_ahead(
    venue: Venue, adapter: ExchangeAdapter
) -> None:
    forming = START_MS // TF * TF  # the venue's candle still forming (2m30s into it)
    ahead = {"ms": 4 * 60_000}  # our clock runs 4 minutes ahead: "closed" by our clock
    got: list[Candle] = []

    async def consumer(symbol: str, candle: Candle) -> None:
        got.append(candle)

    stream = CandleStream(
        adapter,
        "BTC/USDT",
        "5m",
        start_after=forming - TF,
        clock=lambda: venue.clock.now_ms() + ahead["ms"],
        use_websocket=False,
    )
    await stream._poll_rest_once(consumer)
    assert got == []  # the exchange's newest candle may be forming: not handed over
    await venue.advance(ms=TF)  # it closed; the next one forms
    ahead["ms"] = 0
    await stream._poll_rest_once(consumer)
    assert [c.timestamp for c in got] == [forming]
    c = got[0]
    assert (c.timestamp, c.open, c.high, c.low, c.close, c.volume) == await _venue_candle(
        adapter, forming
    )


async def test_a_dropped_socket_is_reconnected_at_once_and_nothing_is_missed(
    venue: Venue, adapter: ExchangeAdapter
) -> None:
    first = START_MS // TF * TF
    got: list[Candle] = []
    events: list[str] = []

    async def consumer(symbol: str, candle: Candle) -> None:
        got.append(candle)

    async def on_event(kind: str, message: str, details: dict[str, object]) -> None:
        events.append(kind)

    stream = CandleStream(
        adapter,
        "BTC/USDT",
        "5m",
        start_after=first - TF,
        on_event=on_event,
        clock=venue.clock.now_ms,
        backoff=Backoff(base=30.0),  # a backoff would outlast the test: none may be taken
    )
    task = asyncio.create_task(stream.run(consumer))
    try:
        for _ in range(40):  # until the socket streams
            if "ws_connected" in events:
                break
            await venue.advance(ms=1_000)
            await asyncio.sleep(0.05)
        for minute in range(15):  # three candles, a drop in every minute
            await venue.advance(ms=30_000)
            await asyncio.sleep(0.05)
            venue.faults.add(Fault(kind="ws_drop", endpoint="ws"))
            await venue.advance(ms=30_000)
            for _ in range(100):
                if venue.dialect.hub.connections and not venue.faults.faults:
                    break
                await asyncio.sleep(0.01)
            assert not venue.faults.faults, f"minute {minute}: the drop never fired"
        await venue.advance(ms=TF)
        for _ in range(100):
            if got and got[-1].timestamp >= first + 3 * TF:
                break
            await venue.advance(ms=1_000)
            await asyncio.sleep(0.02)
    finally:
        stream.stop()
        await asyncio.wait_for(task, 10)
    assert venue.faults.counts["ws_drop"] == 15
    # every drop was met by an immediate reconnect (ours, or ccxt's own when the socket
    # closed between two watches): no backoff, no REST polling
    assert stream.drops > 0 and not {"ws_failed", "rest_fallback"} & set(events), events
    stamps = [c.timestamp for c in got]
    assert stamps == list(range(first, stamps[-1] + TF, TF))  # each once, in order
    assert stamps[-1] >= first + 3 * TF
    for c in got:
        assert (c.timestamp, c.open, c.high, c.low, c.close, c.volume) == await _venue_candle(
            adapter, c.timestamp
        )


async def test_a_socket_ccxt_reopens_by_itself_does_not_hand_over_a_stale_candle(
    venue: Venue, adapter: ExchangeAdapter
) -> None:
    """The socket closes while the stream is busy handing over a candle (not watching): ccxt
    opens a new one at the next watch without an error, and the updates in between are gone.
    The candle that was forming must not be handed over with the values seen before the drop."""
    first = START_MS // TF * TF  # forming at the start
    got: list[Candle] = []
    busy, release = asyncio.Event(), asyncio.Event()

    async def consumer(symbol: str, candle: Candle) -> None:
        got.append(candle)
        if candle.timestamp == first:  # handed over when the next one starts: stay busy
            busy.set()
            await release.wait()

    stream = CandleStream(
        adapter, "BTC/USDT", "5m", start_after=first - TF, clock=venue.clock.now_ms
    )
    task = asyncio.create_task(stream.run(consumer))
    try:
        await asyncio.sleep(0.3)
        await venue.advance(to=first + TF + 60_000)  # `first` closes, the next one forms
        for _ in range(200):
            if busy.is_set():
                break
            await venue.advance(ms=1_000)
            await asyncio.sleep(0.01)
        assert busy.is_set()
        await venue.dialect.hub.close_all()  # the drop, while the stream is not watching
        await venue.advance(to=first + 2 * TF + 60_000)  # the candle it held closes unseen
        await asyncio.sleep(0.1)
        release.set()
        await asyncio.sleep(0.1)
        await venue.advance(to=first + 3 * TF + 30_000)
        for _ in range(200):
            if got and got[-1].timestamp >= first + 2 * TF:
                break
            await venue.advance(ms=1_000)
            await asyncio.sleep(0.01)
    finally:
        stream.stop()
        await asyncio.wait_for(task, 10)
    assert [c.timestamp for c in got][:3] == [first, first + TF, first + 2 * TF]
    for c in got:
        assert (c.timestamp, c.open, c.high, c.low, c.close, c.volume) == await _venue_candle(
            adapter, c.timestamp
        )


async def test_a_candle_forming_when_the_socket_joined_is_taken_from_rest_at_its_close(
    venue: Venue, adapter: ExchangeAdapter
) -> None:
    """After a reconnect the new socket shows the forming candle as it stands; if the socket
    then misses that candle's closing update (R3 saw it, a drop a minute), its view is stale:
    the closed candle must come from REST, not from the socket."""
    first = START_MS // TF * TF
    got: list[Candle] = []
    events: list[str] = []

    async def consumer(symbol: str, candle: Candle) -> None:
        got.append(candle)

    async def on_event(kind: str, message: str, details: dict[str, object]) -> None:
        events.append(kind)

    stream = CandleStream(
        adapter,
        "BTC/USDT",
        "5m",
        start_after=first - TF,
        on_event=on_event,
        clock=venue.clock.now_ms,
    )
    task = asyncio.create_task(stream.run(consumer))
    try:
        await asyncio.sleep(0.3)
        await venue.advance(to=first + TF + 60_000)  # `first` closed; `first + TF` forming
        for _ in range(100):
            if events.count("ws_connected") and got:
                break
            await asyncio.sleep(0.02)
        await venue.dialect.hub.close_all()  # a drop: the new socket joins mid-candle
        for _ in range(200):
            if events.count("ws_connected") >= 2:
                break
            await asyncio.sleep(0.01)
        assert events.count("ws_connected") >= 2
        # the socket misses the closing update (the venue holds its stream back meanwhile)
        venue.faults.add(Fault(kind="ws_stall", endpoint="ws", delay=0.3))
        await venue.advance(to=first + 2 * TF + 1_000)
        await asyncio.sleep(0.4)
        for _ in range(100):  # the next candle forms on the socket: `first + TF` is closed
            if any(c.timestamp == first + TF for c in got):
                break
            await venue.advance(ms=1_000)
            await asyncio.sleep(0.02)
    finally:
        stream.stop()
        await asyncio.wait_for(task, 10)
    assert [c.timestamp for c in got][:2] == [first, first + TF]
    for c in got:
        assert (c.timestamp, c.open, c.high, c.low, c.close, c.volume) == await _venue_candle(
            adapter, c.timestamp
        )
