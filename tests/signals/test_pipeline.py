"""Strategies, registry, params, filters and the orchestrator (live == history)."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import talib
from pydantic import ValidationError

from kmg_autotrader.domain import Candle, ExecutionMode, Regime, Side
from kmg_autotrader.signals.bars import Bars
from kmg_autotrader.signals.engine import SignalEngine
from kmg_autotrader.signals.fees import FeeSchedule
from kmg_autotrader.signals.filters import PreTradeFilters
from kmg_autotrader.signals.params import SignalParams
from kmg_autotrader.signals.regimes import CODE
from kmg_autotrader.signals.strategies import (
    DefaultStrategy,
    SmaCrossRsi,
    StrategyLoadError,
    load_strategy_class,
)


def candle(row) -> Candle:
    return Candle(int(row.timestamp), row.open, row.high, row.low, row.close, row.volume)


def test_sma_cross_rsi_is_exactly_the_spec(btc) -> None:
    run = SignalEngine("sma_cross_rsi").run_history("BTC/USDT", btc)
    c = btc["close"].to_numpy(float)
    f, s, rsi = talib.SMA(c, 20), talib.SMA(c, 50), talib.RSI(c, 14)
    pf, ps = np.r_[np.nan, f[:-1]], np.r_[np.nan, s[:-1]]
    entry = (f > s) & (pf <= ps) & (rsi < 70)
    exit_ = ((f < s) & (pf >= ps)) | (rsi > 80)
    assert np.array_equal(run.entry_indices(), np.flatnonzero(entry))
    assert np.array_equal(run.exit_indices(), np.flatnonzero(exit_))
    d = run.decision_at(int(run.entry_indices()[0]))
    assert d.candidate is not None and d.candidate.stop_loss is None
    assert d.candidate.take_profit is None
    assert all(step.passed for step in d.trace)
    assert [s.rule for s in d.candidate.signals] == ["sma_cross"]


@pytest.mark.parametrize("strategy", ["default", "sma_cross_rsi"])
def test_live_equals_history(btc, strategy) -> None:
    df = btc.iloc[:3000]
    engine = SignalEngine(strategy)
    run = engine.run_history("BTC/USDT", df)
    engine.warm_up("BTC/USDT", df.iloc[:300])
    for i, row in enumerate(df.iloc[300:].itertuples(index=False), start=300):
        held = bool(i % 2)
        live = engine.on_candle("BTC/USDT", candle(row), position_open=held)
        assert live == run.decision_at(i, position_open=held), i


def test_decided_at_is_the_close(btc) -> None:
    run = SignalEngine("sma_cross_rsi").run_history("BTC/USDT", btc)
    i = int(run.entry_indices()[0])
    d = run.decision_at(i)
    assert d.decided_at == int(btc["timestamp"].iloc[i]) + 300_000


def test_exit_only_when_held_entry_only_when_flat(btc) -> None:
    run = SignalEngine("sma_cross_rsi").run_history("BTC/USDT", btc)
    i = int(run.exit_indices()[0])
    assert run.decision_at(i, position_open=False).exit is None
    d = run.decision_at(i, position_open=True)
    assert d.exit is not None and d.exit.side is Side.SELL and d.exit.signals
    j = int(run.entry_indices()[0])
    assert run.decision_at(j, position_open=True).candidate is None


def test_params_validation() -> None:
    with pytest.raises(ValidationError, match="sma_fast"):
        SignalParams(sma_fast=50, sma_slow=20)
    with pytest.raises(ValidationError):
        SignalParams(rsi_period=1)
    with pytest.raises(ValidationError, match="oversold"):
        SignalParams(rsi_oversold=80, rsi_overbought=70)
    env = {"SIGNAL_SMA_FAST": "10", "SIGNAL_SYMBOL_BLOCKLIST": "doge/usdt, XRP/USDT"}
    p = SignalParams.from_env(env)
    assert p.sma_fast == 10 and p.symbol_blocklist == ("DOGE/USDT", "XRP/USDT")

    class Flat:
        signal_sma_fast = 5
        signal_sma_slow = 30

    assert SignalParams.from_settings(Flat()).sma_slow == 30


def _filters(**kw):
    return PreTradeFilters(SignalParams(**kw.pop("params", {})), **kw)


def _rows(regime: Regime, style: int, conf: float, move: float, *, rsi=50.0, adx=20.0, vz=0.0):
    bars = Bars({k: np.array([v]) for k, v in {"rsi": rsi, "adx": adx, "volume_z": vz}.items()})
    return (
        bars,
        np.array([CODE[regime]], dtype=np.int8),
        np.array([style], dtype=np.int8),
        np.array([conf]),
        np.array([move]),
    )


def test_symbol_filter() -> None:
    f = _filters(params={"symbol_blocklist": ("DOGE/USDT",)})
    rep = f.evaluate("DOGE/USDT", *_rows(Regime.TREND_UP, 1, 0.9, 0.05))
    assert not rep.passed[0] and rep.rejected_by(0) == "symbol"
    allow = _filters(params={"symbol_allowlist": ("BTC/USDT",)})
    assert not allow.evaluate("ETH/USDT", *_rows(Regime.TREND_UP, 1, 0.9, 0.05)).passed[0]
    assert allow.evaluate("BTC/USDT", *_rows(Regime.TREND_UP, 1, 0.9, 0.05)).passed[0]


def test_regime_filter() -> None:
    f = _filters()
    assert f.evaluate("X/USDT", *_rows(Regime.TREND_UP, 1, 0.9, 0.05)).passed[0]
    assert f.evaluate("X/USDT", *_rows(Regime.RANGE, 2, 0.9, 0.05)).passed[0]
    for regime, style in [
        (Regime.RANGE, 1),
        (Regime.TREND_DOWN, 1),
        (Regime.CHOP, 2),
        (Regime.UNKNOWN, 1),
        (Regime.HIGH_VOLATILITY, 1),
    ]:
        rep = f.evaluate("X/USDT", *_rows(regime, style, 0.99, 0.05))
        assert rep.rejected_by(0) == "regime", regime


def test_fee_gate_per_exchange_and_mode() -> None:
    assert FeeSchedule.for_exchange("binance").round_trip(ExecutionMode.MARKET_ONLY) == 0.002
    kraken = FeeSchedule.for_exchange("kraken")
    assert kraken.round_trip(ExecutionMode.LIMIT_BRACKET) == pytest.approx(0.0065)
    # the risk parameters' default costs: slippage 5 bps per fill (0.1 % both ways) + 0.1 %
    binance = _filters(exchange="binance")
    assert binance.evaluate("X/USDT", *_rows(Regime.TREND_UP, 1, 0.9, 0.0041)).passed[0]
    rep = binance.evaluate("X/USDT", *_rows(Regime.TREND_UP, 1, 0.9, 0.0039))
    assert rep.rejected_by(0) == "fee_gate" and "required edge 0.400%" in rep.trace(0)[2].reason
    k = _filters(exchange="kraken")
    assert (
        k.evaluate("X/USDT", *_rows(Regime.TREND_UP, 1, 0.9, 0.0036)).rejected_by(0) == "fee_gate"
    )


def test_confidence_gate_threshold_boosts_penalties_override() -> None:
    f = _filters(params={"playbook_high_volatility": "trend_following"})
    assert f.evaluate("X/USDT", *_rows(Regime.TREND_UP, 1, 0.55, 0.05)).passed[0]
    rep = f.evaluate("X/USDT", *_rows(Regime.TREND_UP, 1, 0.50, 0.05))
    assert rep.rejected_by(0) == "confidence_gate"
    boosted = f.evaluate("X/USDT", *_rows(Regime.TREND_UP, 1, 0.50, 0.05, vz=5.0, adx=45))
    assert boosted.passed[0] and boosted.confidence[0] == pytest.approx(0.70)
    stretched = f.evaluate("X/USDT", *_rows(Regime.TREND_UP, 1, 0.60, 0.05, rsi=68))
    assert stretched.confidence[0] == pytest.approx(0.50) and not stretched.passed[0]
    # high-volatility override 0.75 plus its penalty 0.15
    hv = f.evaluate("X/USDT", *_rows(Regime.HIGH_VOLATILITY, 1, 0.85, 0.05))
    assert hv.threshold[0] == 0.75 and hv.confidence[0] == pytest.approx(0.70)
    assert hv.rejected_by(0) == "confidence_gate"


def test_default_strategy_gates_and_traces(btc) -> None:
    run = SignalEngine("default").run_history("BTC/USDT", btc)
    assert len(run.entry_rows) > len(run.entry_indices()) > 0
    for i in run.entry_indices()[:5]:
        d = run.decision_at(int(i))
        c = d.candidate
        assert c is not None and c.regime in (Regime.TREND_UP, Regime.RANGE)
        assert c.stop_loss < c.price < c.take_profit
        assert [s.name for s in c.trace] == ["symbol", "regime", "fee_gate", "confidence_gate"]
        assert c.signals and all(s.regime is c.regime for s in c.signals)
    for i in run.rejected_indices()[:5]:
        d = run.decision_at(int(i))
        assert d.candidate is None and d.rejected_by and d.entry_signals


def test_registry_builtin_file_and_module(tmp_path) -> None:
    assert load_strategy_class("default") is DefaultStrategy
    assert load_strategy_class("sma_cross_rsi") is SmaCrossRsi
    src = textwrap.dedent(
        """
        import numpy as np
        from kmg_autotrader.signals.rules import SmaCross
        from kmg_autotrader.signals.strategies.base import Decisions, Strategy, STYLE_TREND

        class Mine(Strategy):
            name = "mine"
            rule_types = (SmaCross,)
            entry_rules = ("sma_cross",)
            exit_rules = ("sma_cross",)
            apply_gates = False

            def decide(self, bars, hits, regime):
                c = hits["sma_cross"]
                return Decisions(c.buy, c.sell, np.where(c.buy, STYLE_TREND, 0).astype(np.int8),
                                 c.strength)
        """
    )
    path = tmp_path / "mine.py"
    path.write_text(src)
    cls = load_strategy_class(str(path))
    assert cls.name == "mine"
    assert load_strategy_class(f"{path}:Mine").name == "mine"
    assert (
        load_strategy_class("kmg_autotrader.signals.strategies.default:DefaultStrategy")
        is DefaultStrategy
    )
    for bad in ("nope", str(tmp_path / "missing.py"), "json:loads", f"{path}:Other"):
        with pytest.raises(StrategyLoadError):
            load_strategy_class(bad)
    engine = SignalEngine(str(path))
    c = np.r_[np.linspace(200, 100, 120), np.linspace(100, 200, 120)]
    from .conftest import candles_from_close

    assert len(engine.run_history("X/USDT", candles_from_close(c)).entry_indices()) == 1
