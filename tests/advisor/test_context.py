"""CandleSummary on real candles."""

from __future__ import annotations

import dataclasses

import pytest

from kmg_autotrader.advisor import CandleSummary
from kmg_autotrader.domain import Candle
from tests.advisor.conftest import FIVE_MIN


def test_summary_of_real_candles(candles: list[Candle]) -> None:
    window = candles[:700]
    summary = CandleSummary.from_candles(window, FIVE_MIN)
    last = window[-1]
    assert summary.bars == 700 and summary.last_close == last.close
    assert summary.change_1h == pytest.approx((last.close - window[-13].close) / window[-13].close)
    day = window[-288:]  # one day of 5m candles: the 24h change spans the day window
    assert summary.change_24h == pytest.approx((last.close - day[0].close) / day[0].close)
    assert summary.high == max(c.high for c in window[-288:])
    assert 0 < summary.avg_range < 0.05 and summary.volume_ratio is not None
    assert summary.closes == tuple(c.close for c in window[-12:])


def test_short_history_has_no_long_changes(candles: list[Candle]) -> None:
    summary = CandleSummary.from_candles(candles[:20], FIVE_MIN)
    assert summary.change_1h is not None and summary.change_4h is None
    assert summary.change_24h is None
    with pytest.raises(ValueError):
        CandleSummary.from_candles([], FIVE_MIN)


def test_summary_reads_only_the_last_day(candles: list[Candle]) -> None:
    # the live loop remembers 400 candles, a backtest hands over exactly one day (288)
    live = CandleSummary.from_candles(candles[:700], FIVE_MIN)
    backtest = CandleSummary.from_candles(candles[700 - 288 : 700], FIVE_MIN)
    assert dataclasses.replace(live, bars=0) == dataclasses.replace(backtest, bars=0)
    assert live.change_24h is not None
