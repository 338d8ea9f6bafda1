"""After its recorded data the venue's market is quiet, not silent (real ccxt clients).

Regression: the replay stopped at the last recorded candle. No candle opened after it, so a
stream client (which calls a candle closed when the next one opens) never saw the last one
close, tickers stopped, and a LIVE rehearsal left running past the data fell back to REST with
"feed degraded" alerts while its equity stayed marked at a stale price. An exchange shows a
market nobody trades as flat candles at the last price with no volume, and no trades.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kmg_autotrader.venue import Venue
from tests.e2e.harness import TRADE_SOON
from tests.venue.conftest import binance_client, make_venue, sample_frames
from tests.venue.test_kraken_rest import kraken_client, kraken_venue

STEP = 300_000
ROWS = 1_400  # the first 1,400 sample candles; 1,000 to 1,287 lie in the past at the start


def _slice() -> dict[str, pd.DataFrame]:
    return {"BTC/USDT": sample_frames()["BTC/USDT"].iloc[:ROWS].reset_index(drop=True)}


@pytest.fixture(params=["binance", "kraken"])
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[Venue]:
    """A venue (manual clock) over a short slice, moved 3 candles past the data's end."""
    make = kraken_venue if request.param == "kraken" else make_venue
    v = make(data=_slice(), warmup=1_000)
    await v.start(0)
    try:
        end = v.market.end_ms("BTC/USDT")
        await v.advance(to=end + 3 * STEP + STEP // 2)
        yield v
    finally:
        await v.stop()


def _client(venue: Venue) -> Any:
    return kraken_client(venue) if venue.exchange == "kraken" else binance_client(venue)


async def test_after_the_data_candles_keep_opening_flat_at_the_last_close_and_nobody_trades(
    venue: Venue,
) -> None:
    last_close = float(_slice()["BTC/USDT"]["close"].iloc[-1])
    end = venue.market.end_ms("BTC/USDT")
    client = _client(venue)
    try:
        await client.load_markets()
        rows = await client.fetch_ohlcv("BTC/USDT", "5m", since=end - STEP)
        ticker = await client.fetch_ticker("BTC/USDT")
        trades = await client.fetch_trades("BTC/USDT", since=end)
    finally:
        await client.close()
    opens = [int(r[0]) for r in rows]
    # the last recorded candle, then 3 quiet ones closed and the 4th forming
    assert opens == [end - STEP, end, end + STEP, end + 2 * STEP, end + 3 * STEP]
    for row in rows[1:]:
        assert row[1:5] == [last_close] * 4 and row[5] == 0
    assert float(ticker["last"]) == last_close
    assert trades == []  # nobody traded
    state = venue.state()
    assert state["finished"] and state["symbols"]["BTC/USDT"]["end_ms"] == end
    assert venue.market.last_ms("BTC/USDT") > end


def test_a_market_standing_still_gives_no_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    # Regression: SmaCross counted float noise as a cross once both averages reached the same
    # flat price (fast == slow, then slow a hair above): a death cross on a market standing
    # still, 28 flat candles after the data (see also tests/signals/test_rules_regimes.py).
    from kmg_autotrader.config import load_settings
    from kmg_autotrader.signals.engine import SignalEngine

    for name, value in TRADE_SOON.items():
        monkeypatch.setenv(name, value)
    assert os.environ["SIGNAL_SMA_SLOW"] == "30"
    engine = SignalEngine.from_settings(load_settings(None))
    frame = sample_frames()["BTC/USDT"].iloc[3_729:4_729].reset_index(drop=True)
    last = float(frame["close"].iloc[-1])
    flat = pd.DataFrame(
        {
            "timestamp": int(frame["timestamp"].iloc[-1]) + STEP * np.arange(1, 61),
            **{k: last for k in ("open", "high", "low", "close")},
            "volume": 0.0,
        }
    )
    run = engine.new_strategy("BTC/USDT").evaluate_history(
        pd.concat([frame, flat], ignore_index=True)
    )
    after = [int(i) - len(frame) for i in run.exit_indices() if i >= len(frame)]
    after += [int(i) - len(frame) for i in run.entry_indices() if i >= len(frame)]
    assert after == [], f"signals on flat candles {after} after the data"
