"""Fixtures: a running fake exchange and adapters wired to it (no internet, 127.0.0.1 only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kmg_autotrader.exchange import ExchangeAdapter, RetryPolicy
from kmg_autotrader.storage.candle_store import CandleStore
from tests.data import KRAKEN_SNAPSHOT
from tests.fakes.fake_exchange import FakeExchange

FAST_RETRY = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05)


@pytest.fixture
async def fake() -> AsyncIterator[FakeExchange]:
    server = await FakeExchange().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def binance(fake: FakeExchange) -> AsyncIterator[ExchangeAdapter]:
    adapter = ExchangeAdapter("binance", config=fake.binance_config(), retry=FAST_RETRY)
    await adapter.load_markets()
    try:
        yield adapter
    finally:
        await adapter.close()


@pytest.fixture
async def kraken(fake: FakeExchange) -> AsyncIterator[ExchangeAdapter]:
    adapter = ExchangeAdapter("kraken", config=fake.kraken_config(), retry=FAST_RETRY)
    adapter.load_markets_snapshot(KRAKEN_SNAPSHOT)
    try:
        yield adapter
    finally:
        await adapter.close()


@pytest.fixture
def store(tmp_path: Path) -> CandleStore:
    return CandleStore(tmp_path)
