"""History download through real ccxt classes against the local fake exchange."""

from __future__ import annotations

import numpy as np
import pytest

from kmg_autotrader.collector.history import DownloadProgress, HistoryDownloader
from kmg_autotrader.exchange import ExchangeAdapter, HistoryPath, TransientExchangeError
from kmg_autotrader.storage.candle_store import CandleStore
from tests.fakes.fake_exchange import FakeExchange, random_walk_candles

HOUR = 3_600_000
START = 1_672_531_200_000  # 2023-01-01 00:00 UTC
YEAR_HOURS = 365 * 24


def _setup_year(fake: FakeExchange) -> None:
    truth = random_walk_candles(START, YEAR_HOURS + 5, HOUR)
    fake.set_klines("BTCUSDT", "1h", truth)
    # "now" is 30 minutes into the candle after the year: that candle is still open.
    fake.now_ms = START + YEAR_HOURS * HOUR + HOUR // 2


async def test_year_of_candles_paginated_each_stored_once(
    fake: FakeExchange, binance: ExchangeAdapter, store: CandleStore
) -> None:
    _setup_year(fake)
    seen: list[DownloadProgress] = []
    downloader = HistoryDownloader(
        binance, store, clock=lambda: fake.now_ms or 0, on_progress=seen.append
    )
    result = await downloader.download("BTC/USDT", "1h", START)
    frame = store.read("binance", "BTC/USDT", "1h")
    assert len(frame) == YEAR_HOURS  # the open candle at `now` is not stored
    assert frame["timestamp"].is_unique
    assert (np.diff(frame["timestamp"]) == HOUR).all()
    truth = fake.klines[("BTCUSDT", "1h")].head(YEAR_HOURS)
    assert np.allclose(frame[["open", "high", "low", "close", "volume"]], truth.iloc[:, 1:])
    kline_calls = [r for r in fake.requests if "klines" in r]
    assert len(kline_calls) == 9  # ceil(8760 / 1000) pages
    assert result.added == YEAR_HOURS and result.path is HistoryPath.OHLCV
    assert seen[-1].fraction == 1.0


async def test_resume_after_interrupted_download(
    fake: FakeExchange, binance: ExchangeAdapter, store: CandleStore
) -> None:
    _setup_year(fake)
    # Page 4 fails every retry: the first 3 pages are kept, nothing half-written.
    fake.inject("/klines", "status", status=503, times=10, after=3)
    downloader = HistoryDownloader(binance, store, clock=lambda: fake.now_ms or 0)
    with pytest.raises(TransientExchangeError):
        await downloader.download("BTC/USDT", "1h", START)
    assert len(store.read("binance", "BTC/USDT", "1h")) == 3000
    fake.faults.clear()
    fake.requests.clear()
    result = await downloader.download("BTC/USDT", "1h", START)
    assert result.added == YEAR_HOURS - 3000
    first_call = next(r for r in fake.requests if "klines" in r)
    assert f"startTime={START + 3000 * HOUR}" in first_call
    assert len(store.read("binance", "BTC/USDT", "1h")) == YEAR_HOURS


async def test_retries_429_5xx_timeouts_and_truncated_pages(
    fake: FakeExchange, binance: ExchangeAdapter, store: CandleStore
) -> None:
    _setup_year(fake)
    fake.inject("/klines", "status", status=429, times=1)
    fake.inject("/klines", "status", status=502, times=1, after=2)
    binance.client.timeout = 300  # ms; the delayed answer below times out
    fake.inject("/klines", "delay", delay=0.5, times=1, after=1)
    fake.inject("/klines", "truncate", keep=17, times=2, after=4)
    fake.inject("/klines", "disconnect", times=1, after=6)
    downloader = HistoryDownloader(binance, store, clock=lambda: fake.now_ms or 0)
    await downloader.download("BTC/USDT", "1h", START, until=START + 3000 * HOUR)
    frame = store.read("binance", "BTC/USDT", "1h")
    assert len(frame) == 3000 and frame["timestamp"].is_unique
    assert all(f.times == 0 for f in fake.faults)


async def test_gap_detected_and_refilled(
    fake: FakeExchange, binance: ExchangeAdapter, store: CandleStore
) -> None:
    _setup_year(fake)
    truth = fake.klines[("BTCUSDT", "1h")]
    # Stored history with a hole of 50 candles (e.g. a crash while a writer was off).
    holey = truth.head(2000).drop(index=range(500, 550))
    store.append("binance", "BTC/USDT", "1h", holey)
    downloader = HistoryDownloader(binance, store, clock=lambda: fake.now_ms or 0)
    result = await downloader.download("BTC/USDT", "1h", START, until=START + 2000 * HOUR)
    assert len(result.gaps_found) == 1 and result.gaps_found[0].missing == 50
    assert result.gaps_remaining == []
    assert len(store.read("binance", "BTC/USDT", "1h")) == 2000


async def test_gap_the_exchange_cannot_fill_is_reported(
    fake: FakeExchange, binance: ExchangeAdapter, store: CandleStore
) -> None:
    truth = random_walk_candles(START, 300, HOUR).drop(index=range(100, 110))
    fake.set_klines("BTCUSDT", "1h", truth)
    fake.now_ms = START + 300 * HOUR
    downloader = HistoryDownloader(binance, store, clock=lambda: fake.now_ms or 0)
    result = await downloader.download("BTC/USDT", "1h", START)
    assert [g.missing for g in result.gaps_remaining] == [10]
    assert len(store.read("binance", "BTC/USDT", "1h")) == 290
