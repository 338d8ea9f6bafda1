"""ExchangeClock: the bot follows the exchange's time — a real exchange's small offset, and a
venue replaying at speed (the clock measures the rate through the real ccxt fetch_time)."""

from __future__ import annotations

import asyncio

import pytest

from kmg_autotrader.exchange import ExchangeAdapter
from kmg_autotrader.exchange.clock import ExchangeClock
from kmg_autotrader.exchange.urls import apply_url_overrides
from kmg_autotrader.venue import Venue
from tests.venue.conftest import make_venue


class _Times:
    """A server clock and a local monotonic clock the test moves by hand."""

    def __init__(self, server_ms: int, rate: float) -> None:
        self.mono = 100.0
        self.server_ms = server_ms
        self.rate = rate
        self.fail = False

    def tick(self, seconds: float) -> None:
        self.mono += seconds
        self.server_ms += int(seconds * 1000 * self.rate)

    async def fetch_time(self) -> int:
        if self.fail:
            raise ConnectionError("down")
        return self.server_ms


async def test_real_time_exchange_has_rate_one_and_its_offset() -> None:
    t = _Times(server_ms=5_000_000, rate=1.0)
    clock = ExchangeClock(t.fetch_time, monotonic=lambda: t.mono, wall_ms=lambda: 4_990_000)
    await clock.sync()
    t.tick(1.0)
    await clock.sync()
    assert clock.rate == 1.0
    t.tick(2.5)
    assert clock.now_ms() == t.server_ms


async def test_fast_venue_rate_is_measured_and_time_never_goes_back() -> None:
    t = _Times(server_ms=1_000_000, rate=60.0)
    clock = ExchangeClock(t.fetch_time, monotonic=lambda: t.mono)
    await clock.sync()
    t.tick(1.0)
    await clock.sync()
    assert clock.rate == pytest.approx(60.0)
    t.tick(0.5)
    assert clock.now_ms() == t.server_ms  # extrapolated at 60x between syncs
    shown = clock.now_ms()
    t.rate = 0.0  # the venue paused: the next sample is behind the extrapolation
    t.tick(1.0)
    await clock.sync()
    assert clock.now_ms() >= shown  # never backwards
    clock.observe(shown + 300_000)  # the stream showed a candle that closed later
    assert clock.now_ms() == shown + 300_000


async def test_unreadable_server_time_falls_back_to_the_local_clock() -> None:
    t = _Times(server_ms=0, rate=1.0)
    t.fail = True
    clock = ExchangeClock(t.fetch_time, monotonic=lambda: t.mono, wall_ms=lambda: 42_000)
    await clock.start()
    assert clock.now_ms() == 42_000


@pytest.mark.parametrize("exchange", ["binance", "kraken"])
async def test_follows_a_venue_replaying_at_speed(exchange: str) -> None:
    venue: Venue = make_venue(exchange=exchange, speed=60, start_ms=None)
    await venue.start(0)
    adapter = ExchangeAdapter(exchange, config={"timeout": 3000})
    apply_url_overrides(adapter.client, venue.base_url)
    try:
        clock = ExchangeClock(adapter.fetch_time, probe_s=1.0)
        await clock.start()
        # Kraken tells its time in whole seconds: +-1 s of venue time over a 60 s probe
        assert clock.rate == pytest.approx(60.0, rel=0.05)
        await asyncio.sleep(0.5)
        # within 3 s of venue time (= 50 ms of wall time at 60x)
        assert abs(clock.now_ms() - venue.clock.now_ms()) < 3_000
    finally:
        await adapter.close()
        await venue.stop()
