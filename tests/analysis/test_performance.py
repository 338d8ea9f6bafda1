"""Metrics checked against quantstats on the same equity series, and by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from kmg_autotrader.analysis import TradeRecord, analyze, periods_per_year

FIVE_MIN = 300_000


def _equity(seed: int = 7, n: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.00005, 0.002, n)
    equity = 10_000 * np.cumprod(1 + returns)
    timestamps = 1_672_531_200_000 + np.arange(n, dtype=np.int64) * FIVE_MIN
    return timestamps, equity


def test_crypto_calendar_annualisation() -> None:
    assert periods_per_year(FIVE_MIN) == 105_120
    assert periods_per_year(86_400_000) == 365


def test_ratios_match_quantstats() -> None:
    ts, eq = _equity()
    report = analyze(ts, eq, [], timeframe_ms=FIVE_MIN)
    index = pd.to_datetime(ts, unit="ms", utc=True).tz_localize(None)
    returns = pd.Series(eq, index=index).pct_change().dropna()
    ppy = int(periods_per_year(FIVE_MIN))
    assert report.sharpe == pytest.approx(qs.stats.sharpe(returns, periods=ppy), rel=1e-9)
    assert report.sortino == pytest.approx(qs.stats.sortino(returns, periods=ppy), rel=1e-9)
    assert report.max_drawdown == pytest.approx(-qs.stats.max_drawdown(returns), rel=1e-9)
    assert report.annualized_return == pytest.approx(qs.stats.cagr(returns, periods=ppy), rel=1e-9)
    assert report.calmar == pytest.approx(qs.stats.calmar(returns, periods=ppy), rel=1e-9)
    assert report.total_return == pytest.approx(eq[-1] / eq[0] - 1, rel=1e-12)


def test_trade_statistics_by_hand() -> None:
    ts = np.array([0, 1, 2, 3, 4], dtype=np.int64) * FIVE_MIN
    eq = np.array([100.0, 110.0, 99.0, 99.0, 121.0])
    trades = [
        TradeRecord("BTC/USDT", 0, 10.0, 1 * FIVE_MIN, 11.0, 10.0, 0.5, 10.0),
        TradeRecord("BTC/USDT", 1 * FIVE_MIN, 11.0, 2 * FIVE_MIN, 9.9, 10.0, 0.5, -11.0),
        TradeRecord("ETH/USDT", 3 * FIVE_MIN, 5.0, 4 * FIVE_MIN, 7.2, 10.0, 0.2, 22.0),
    ]
    report = analyze(ts, eq, trades, timeframe_ms=FIVE_MIN, buy_and_hold={"BTC/USDT": (10.0, 12.0)})
    assert report.trades == 3 and report.wins == 2 and report.losses == 1
    assert report.win_rate == pytest.approx(2 / 3)
    assert report.profit_factor == pytest.approx(32 / 11)
    assert report.expectancy == pytest.approx(21 / 3)
    assert report.win_loss_ratio == pytest.approx(16 / 11)
    assert report.fees_paid == pytest.approx(1.2)
    assert report.max_drawdown == pytest.approx(0.1)  # 110 → 99
    assert report.max_drawdown_duration_ms == 3 * FIVE_MIN  # peak at t1, recovered at t4
    assert report.exposure == pytest.approx(0.75)  # flat between t2 and t3
    assert report.average_hold_ms == FIVE_MIN
    assert report.buy_and_hold_return == pytest.approx(0.2)
    assert report.total_return == pytest.approx(0.21)


def test_no_trades_and_flat_equity_are_well_defined() -> None:
    ts = np.arange(10, dtype=np.int64) * FIVE_MIN
    report = analyze(ts, np.full(10, 1000.0), [], timeframe_ms=FIVE_MIN)
    data = report.to_dict()
    assert data["sharpe"] == 0.0 and data["max_drawdown"] == 0.0 and data["trades"] == 0
    assert all(math.isfinite(float(v)) for v in data.values())


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        analyze([0, 1], [1.0], [], timeframe_ms=FIVE_MIN)
    with pytest.raises(ValueError):
        analyze([0, 1], [1.0, 0.0], [], timeframe_ms=FIVE_MIN)
