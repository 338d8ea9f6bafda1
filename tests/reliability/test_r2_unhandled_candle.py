"""R2 follow-up: a candle that the bot was handling when ``kill -9`` came must be handed over
again after the restart.

``run_live`` resumes the stream after the candle store's last candle. ``LiveFeed`` used to
append each closed candle to the store *before* the bot handled it: killed in between, the
restarted bot never checked that candle's stops (its low may have gone through a stop) nor
decided on it. Here the handler never finishes one candle (the process "dies" while handling
it); the store, the restart point, must not hold it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kmg_autotrader.autopilot.feeds import ClosedCandle, LiveFeed
from kmg_autotrader.exchange import ExchangeAdapter
from kmg_autotrader.storage.candle_store import CandleStore
from kmg_autotrader.venue import FaultPlan, Venue
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


async def test_a_candle_killed_mid_handling_is_not_marked_as_handled(
    venue: Venue, tmp_path: Path
) -> None:
    adapter = ExchangeAdapter("binance", api_url=venue.base_url)
    await adapter.load_markets()
    store = CandleStore(tmp_path / "data")
    first = START_MS // TF * TF
    handled: list[int] = []
    dying, dead = asyncio.Event(), asyncio.Event()

    async def on_candle(event: ClosedCandle) -> None:
        if handled:  # the second candle: the process dies while handling it
            dying.set()
            await dead.wait()
            raise RuntimeError("killed")  # nothing of this candle's handling completes
        handled.append(event.candle.timestamp)

    async def on_price(symbol: str, price: float, ts: int) -> None:
        return None

    feed = LiveFeed(
        adapter,
        ["BTC/USDT"],
        "5m",
        start_after={"BTC/USDT": first - TF},
        store=store,
        clock=venue.clock.now_ms,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(on_candle, on_price, stop))
    try:
        for _ in range(200):
            if dying.is_set():
                break
            await venue.advance(ms=30_000)
            await asyncio.sleep(0.02)
        assert dying.is_set() and handled == [first]
    finally:
        dead.set()
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await adapter.close()
    stored = store.read("binance", "BTC/USDT", "5m")["timestamp"].tolist()
    # the restart resumes after the last stored candle: it must be the last one handled
    assert stored[-1] == handled[-1], f"stored {stored}, handled {handled}"
