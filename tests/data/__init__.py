"""Every data file the tests read lives in the repository (issue 19): paths to them.

* The real candle sets are the ones packaged for ``kmg demo`` (``kmg_autotrader/sample_data``,
  byte-for-byte copies of the workplace's shared data, provenance in its README.md).
* Everything else the tests need sits here, beside ``PROVENANCE.md`` (source, date, what was
  cut). Tests never read a folder outside the checkout: ``tests/conftest.py`` fails a test that
  tries.
"""

from __future__ import annotations

from pathlib import Path

import kmg_autotrader

HERE = Path(__file__).resolve().parent
PACKAGE = Path(kmg_autotrader.__file__).resolve().parent
SAMPLE_DATA = PACKAGE / "sample_data"

# BTC/USDT 5m, 10,999 candles, 2023-01-02 → 2023-02-09 (timestamp ms, OHLC, volume)
BTC_USDT_CSV = SAMPLE_DATA / "btc_usdt" / "BTCUSDT_5m_20230102_20230209.csv"
# six BTC-quoted pairs, 5m, 2018-01-10 → 2018-01-30, freqtrade's feather layout
BTC_PAIRS_DIR = SAMPLE_DATA / "btc_pairs"
# raw Kraken REST answers (XBTUSDT), a Kraken trades CSV export and ccxt's Kraken market snapshot
KRAKEN_DIR = HERE / "kraken"
KRAKEN_SNAPSHOT = KRAKEN_DIR / "markets_snapshot_ccxt.json"
# Kraken AssetPairs answer packaged for `kmg venue` (the shared http_asset_pairs.json, as is)
KRAKEN_ASSET_PAIRS = PACKAGE / "venue" / "snapshots" / "kraken_asset_pairs.json"
