"""The spec's default strategy: SMA cross + RSI + ATR volatility filter, with a range playbook.

* trend following: golden cross while RSI is below ``rsi_entry_max`` and ATR% sits inside
  ``[atr_pct_min, atr_pct_max]`` (too calm: fees eat the move; too wild: stops get hit);
* mean reversion (pullback): RSI climbs back above oversold while the close is still below the
  Bollinger middle band, same ATR filter;
* exits: death cross, or RSI falling back below overbought; ATR stop and target at entry.

Which of the two is allowed depends on the regime (the orchestrator's regime filter).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from kmg_autotrader.signals.bars import Bars
from kmg_autotrader.signals.regimes import IntArray
from kmg_autotrader.signals.rules import (
    AtrExpansion,
    RangeBreakout,
    RsiExtreme,
    RsiExtremeExit,
    RuleHits,
    SmaCross,
    VolumeSpike,
)
from kmg_autotrader.signals.strategies.base import (
    STYLE_MEAN_REVERSION,
    STYLE_NONE,
    STYLE_TREND,
    Decisions,
    Strategy,
)


class DefaultStrategy(Strategy):
    """SMA cross + RSI + ATR volatility filter (trend) and RSI snap-back (mean reversion)."""

    name = "default"
    description = "SMA cross + RSI + ATR volatility filter; RSI pullback entries in ranges"
    rule_types = (SmaCross, RsiExtreme, RsiExtremeExit, AtrExpansion, RangeBreakout, VolumeSpike)
    entry_rules = ("sma_cross", "rsi_extreme_exit", "range_breakout", "volume_spike")
    exit_rules = ("sma_cross", "rsi_extreme_exit")

    def decide(self, bars: Bars, hits: Mapping[str, RuleHits], regime: IntArray) -> Decisions:
        """Entries from the two playbooks, exits from death cross / RSI leaving overbought."""
        p = self.params
        atr_pct = bars["atr_pct"]
        atr_ok = (atr_pct >= p.atr_pct_min) & (atr_pct <= p.atr_pct_max)
        rsi_ok = bars["rsi"] < p.rsi_entry_max
        cross, snap = hits["sma_cross"], hits["rsi_extreme_exit"]
        trend = cross.buy & rsi_ok & atr_ok
        pullback = snap.buy & (bars["close"] < bars["bb_middle"]) & atr_ok & ~trend
        style = np.where(trend, STYLE_TREND, np.where(pullback, STYLE_MEAN_REVERSION, STYLE_NONE))
        confidence = np.where(trend, cross.strength, np.where(pullback, snap.strength, 0.0))
        return Decisions(
            entry=trend | pullback,
            exit=cross.sell | snap.sell,
            style=style.astype(np.int8),
            confidence=confidence,
        )
