"""Kraken trades→candles path, file import of the real files (tests/data), corrupt input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kmg_autotrader.collector.aggregate import trades_to_candles
from kmg_autotrader.collector.history import HistoryDownloader
from kmg_autotrader.collector.importer import (
    ImportFormatError,
    meta_from_name,
    read_candle_file,
)
from kmg_autotrader.exchange import ExchangeAdapter, HistoryPath
from kmg_autotrader.storage.candle_store import CandleStore, InvalidCandlesError
from tests.data import BTC_PAIRS_DIR, BTC_USDT_CSV, KRAKEN_DIR
from tests.fakes.fake_exchange import FakeExchange

KRAKEN = KRAKEN_DIR


def _kraken_raw() -> tuple[list[list], list[list]]:
    trades = json.loads((KRAKEN / "http_trades.json").read_text())["result"]["XBTUSDT"]
    ohlc = json.loads((KRAKEN / "http_ohlc.json").read_text())["result"]["XBTUSDT"]
    return trades, ohlc


def test_trades_aggregate_to_krakens_own_candles() -> None:
    trades, ohlc = _kraken_raw()
    ts = np.array([int(float(t[2]) * 1000) for t in trades])
    candles = trades_to_candles(
        ts, np.array([float(t[0]) for t in trades]), np.array([float(t[1]) for t in trades]), 60_000
    )
    ref = {int(r[0]) * 1000: r for r in ohlc}
    inner = candles.iloc[1:-1]  # first/last minute are only partly covered by the sample
    assert len(inner) > 400
    for row in inner.itertuples():
        r = ref[row.timestamp]
        expected = [float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[6])]
        got = [row.open, row.high, row.low, row.close, row.volume]
        assert got == pytest.approx(expected, abs=1e-9), row.timestamp


async def test_kraken_download_uses_trades_path_and_matches_ohlc(
    fake: FakeExchange, kraken: ExchangeAdapter, store: CandleStore
) -> None:
    trades, ohlc = _kraken_raw()
    fake.kraken_trades["XBTUSDT"] = trades
    last_trade_ms = int(float(trades[-1][2]) * 1000)
    fake.now_ms = last_trade_ms + 1
    first_minute = int(float(trades[0][2])) // 60 * 60_000 + 60_000
    # A 60-candle OHLC window (Kraken's is 720) and 100-trade pages: 10+ pages via `last`.
    kraken.capabilities = replace(kraken.capabilities, ohlcv_recent_only=60, trades_page_limit=100)
    paths: list[HistoryPath] = []
    downloader = HistoryDownloader(
        kraken, store, clock=lambda: fake.now_ms or 0, on_progress=lambda p: paths.append(p.path)
    )
    # Older than Kraken's 720-candle OHLC window → the capability record picks trades.
    assert downloader.plan_path(first_minute, "1m") is HistoryPath.TRADES
    result = await downloader.download("BTC/USDT", "1m", first_minute)
    assert set(paths) == {HistoryPath.TRADES} and result.path is HistoryPath.TRADES
    stored = store.read("kraken", "BTC/USDT", "1m")
    trade_calls = [r for r in fake.requests if "Trades" in r]
    assert len(trade_calls) >= 10
    assert any(len(r.split("since=")[1].split("&")[0]) >= 19 for r in trade_calls[1:])
    ref = {int(r[0]) * 1000: r for r in ohlc}
    for row in stored.itertuples():
        r = ref[row.timestamp]
        assert [row.open, row.high, row.low, row.close, row.volume] == pytest.approx(
            [float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[6])], abs=1e-9
        )
    assert stored["timestamp"].iat[-1] < last_trade_ms // 60_000 * 60_000  # open minute dropped
    assert len(stored) >= 400


def test_import_real_csv_and_feather(store: CandleStore) -> None:
    csv = read_candle_file(BTC_USDT_CSV, timeframe="5m")
    assert len(csv.frame) == 10_999 and csv.kind == "csv"
    assert csv.frame["timestamp"].iat[0] == 1_672_677_900_000
    store.append("binance", "BTC/USDT", "5m", csv.frame)
    ada = read_candle_file(BTC_PAIRS_DIR / "ADA_BTC-5m.feather")
    assert (ada.symbol, ada.timeframe, len(ada.frame)) == ("ADA/BTC", "5m", 5720)
    raw = pd.read_feather(BTC_PAIRS_DIR / "ADA_BTC-5m.feather")
    assert ada.frame["timestamp"].iat[0] == int(raw["date"].iat[0].timestamp() * 1000)
    assert np.array_equal(ada.frame["close"].to_numpy(), raw["close"].to_numpy())
    info = store.list_series()
    assert [(i.symbol, i.count, i.gaps) for i in info] == [("BTC/USDT", 10_999, ())]


def test_import_kraken_trades_csv_and_ohlcvt(tmp_path: Path) -> None:
    imported = read_candle_file(KRAKEN / "trades_BCHEUR.csv", timeframe="15m")
    assert imported.kind == "kraken-trades" and imported.exchange == "kraken"
    raw = pd.read_csv(KRAKEN / "trades_BCHEUR.csv", header=None)
    assert imported.frame["volume"].sum() == pytest.approx(raw[2].sum())
    ohlcvt = tmp_path / "XBTUSD_5.csv"
    ohlcvt.write_text(
        "1672531200,16500.1,16510,16490,16505,1.5,12\n1672531500,16505,16520,16500,16515,2.0,9\n"
    )
    got = read_candle_file(ohlcvt)
    assert (got.symbol, got.timeframe, got.exchange, got.kind) == (
        "BTC/USD",
        "5m",
        "kraken",
        "kraken-ohlcvt",
    )
    assert got.frame["timestamp"].tolist() == [1_672_531_200_000, 1_672_531_500_000]


def test_freqtrade_json_and_name_meta(tmp_path: Path) -> None:
    folder = tmp_path / "binance"
    folder.mkdir()
    path = folder / "ETH_USDT-1h.json"
    path.write_text(
        json.dumps(
            [
                [1_672_531_200_000, 1200, 1210, 1190, 1205, 10.5],
                [1_672_534_800_000, 1205, 1206, 1201, 1202, 3.25],
            ]
        )
    )
    got = read_candle_file(path)
    assert (got.exchange, got.symbol, got.timeframe, len(got.frame)) == (
        "binance",
        "ETH/USDT",
        "1h",
        2,
    )
    assert meta_from_name(Path("x/BTC_USDT-5m.feather")).symbol == "BTC/USDT"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            "timestamp,open,high,low,close,volume\n1000,1,2,0.5,1.5,1\n1000,1,2,0.5,1.5,1\n",
            "row 2 (timestamp 1000",
        ),
        (
            "timestamp,open,high,low,close,volume\n2000,1,2,0.5,1.5,1\n1000,1,2,0.5,1.5,1\n",
            "row 2 (timestamp 1000",
        ),
        (
            "timestamp,open,high,low,close,volume\n1000,1,2,0.5,1.5,1\n2000,1,1.2,0.5,1.5,1\n",
            "row 2 (timestamp 2000",
        ),
        (
            "timestamp,open,high,low,close,volume\n2023-01-01T00:00:00Z,1,2,0.5,1.5,-1\n",
            "volume is negative",
        ),
        (
            "timestamp,open,high,low,close,volume\nyesterday,1,2,0.5,1.5,1\n",
            "neither epoch ms nor ISO",
        ),
    ],
)
def test_bad_files_refused_naming_first_bad_row(
    tmp_path: Path, store: CandleStore, body: str, needle: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(InvalidCandlesError) as err:
        read_candle_file(path)
    assert needle in str(err.value) and str(path) in str(err.value)
    assert list(store.iter_paths()) == []


def test_iso_timestamps_and_unknown_layout(tmp_path: Path) -> None:
    ok = tmp_path / "iso.csv"
    ok.write_text("date,open,high,low,close,volume\n2023-01-01T00:05:00+00:00,1,2,0.5,1.5,1\n")
    assert read_candle_file(ok).frame["timestamp"].iat[0] == 1_672_531_500_000
    odd = tmp_path / "odd.csv"
    odd.write_text("1,2,3,4\n")
    with pytest.raises(ImportFormatError):
        read_candle_file(odd)


async def test_truncated_trades_page_is_not_mistaken_for_the_end(
    fake: FakeExchange, kraken: ExchangeAdapter, tmp_path: Path
) -> None:
    """A short page in the middle of history must not end the download: the minutes after it
    would otherwise be filled with flat, zero-volume candles."""
    trades, _ = _kraken_raw()
    fake.kraken_trades["XBTUSDT"] = trades
    fake.now_ms = int(float(trades[-1][2]) * 1000) + 1
    first_minute = int(float(trades[0][2])) // 60 * 60_000 + 60_000
    kraken.capabilities = replace(kraken.capabilities, ohlcv_recent_only=60, trades_page_limit=100)

    async def run(store: CandleStore) -> pd.DataFrame:
        downloader = HistoryDownloader(kraken, store, clock=lambda: fake.now_ms or 0)
        await downloader.download("BTC/USDT", "1m", first_minute)
        return store.read("kraken", "BTC/USDT", "1m")

    undisturbed = await run(CandleStore(tmp_path / "a"))
    calls = len(fake.requests)
    # a short page with new trades in it, then one holding only trades already seen
    fake.inject("/0/public/Trades", "truncate", keep=40, times=1, after=2)
    fake.inject("/0/public/Trades", "truncate", keep=7, times=1, after=5)
    disturbed = await run(CandleStore(tmp_path / "b"))
    assert len(undisturbed) >= 400
    pd.testing.assert_frame_equal(disturbed, undisturbed)
    assert len(fake.requests) - calls <= calls + 3  # a retry or two, not a storm
