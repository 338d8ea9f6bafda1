"""Fixtures of the venue tests: a Binance venue on 127.0.0.1 with a manual clock, and real
ccxt clients pointed at it with :func:`~kmg_autotrader.exchange.urls.apply_url_overrides`.

The venue replays the bundled ``btc-usdt`` sample with ``speed=0``: venue time moves only when
a test calls ``venue.advance(...)``, so every test is deterministic. Its start is a fixed
instant (not the wall clock) so prices at a given step are the same on every run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import cache
from typing import TYPE_CHECKING, Any

import ccxt.pro as ccxt_pro
import pytest

from kmg_autotrader.exchange.urls import apply_url_overrides
from kmg_autotrader.sample_data import load_sample_set
from kmg_autotrader.venue import AccountSpec, FaultPlan, Venue, VenueClient

if TYPE_CHECKING:
    import pandas as pd

API_KEY = "venue-test-key"
SECRET = "venue-test-secret"
TOKEN = "venue-test-token"
# 2030-01-01 00:02:30 UTC: not on a candle boundary, so the forming candle is partial
START_MS = 1_893_456_150_000


@cache
def sample_frames() -> dict[str, pd.DataFrame]:
    """The bundled btc-usdt candles (read once per test session)."""
    return load_sample_set("btc-usdt")


def make_venue(**kwargs: Any) -> Venue:
    """A Binance venue over the bundled sample, manual clock, one known account."""
    options: dict[str, Any] = {
        "speed": 0,
        "warmup": 1000,
        "accounts": [AccountSpec(API_KEY, SECRET)],
        "control_token": TOKEN,
        "start_ms": START_MS,
    }
    options.update(kwargs)
    exchange = options.pop("exchange", "binance")
    data = options.pop("data", None) or sample_frames()
    return Venue(exchange, data, **options)


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    """A started Binance venue on port 0 (speed 0, btc-usdt sample)."""
    v = make_venue(faults=FaultPlan())
    await v.start(0)
    try:
        yield v
    finally:
        await v.stop()


def binance_client(venue: Venue, **config: Any) -> Any:
    """A real ``ccxt.pro.binance`` pointed at ``venue`` (spot only, as the bot configures it)."""
    options = {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}}
    options.update(config.pop("options", {}))
    settings = {
        "apiKey": API_KEY,
        "secret": SECRET,
        "timeout": 3000,
        "enableRateLimit": False,
        "options": options,
        **config,
    }
    client = ccxt_pro.binance(settings)
    apply_url_overrides(client, venue.base_url)
    return client


@pytest.fixture
async def client(venue: Venue) -> AsyncIterator[Any]:
    """A real ccxt.pro.binance client of the venue's account, markets loaded."""
    ex = binance_client(venue)
    try:
        await ex.load_markets()
        yield ex
    finally:
        await ex.close()


@pytest.fixture
async def make_client(venue: Venue) -> AsyncIterator[Callable[..., Any]]:
    """Factory of further ccxt clients of the venue (all closed at teardown)."""
    made: list[Any] = []

    def factory(**config: Any) -> Any:
        ex = binance_client(venue, **config)
        made.append(ex)
        return ex

    try:
        yield factory
    finally:
        for ex in made:
            await ex.close()


@pytest.fixture
async def control(venue: Venue) -> AsyncIterator[VenueClient]:
    """The venue's control endpoint client."""
    async with VenueClient(venue.base_url, TOKEN) as c:
        yield c
