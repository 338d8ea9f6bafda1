"""``sma_cross_rsi``: the reference strategy the backtester compares with other tools.

Exactly: on the close of candle t, enter long when SMA(20) crosses above SMA(50) and
RSI(14) < 70; exit when SMA(20) crosses below SMA(50) or RSI(14) > 80. No ATR stops, no
targets, one position per symbol, and no regime/fee/confidence gate (``apply_gates = False``).
The periods and levels are read from :class:`SignalParams`, whose defaults are these numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from kmg_autotrader.signals.bars import Bars
from kmg_autotrader.signals.indicators.nodes import FloatArray
from kmg_autotrader.signals.regimes import IntArray
from kmg_autotrader.signals.rules import RsiLevel, RuleHits, SmaCross
from kmg_autotrader.signals.strategies.base import (
    STYLE_NONE,
    STYLE_TREND,
    Decisions,
    Strategy,
    nan_levels,
)


class SmaCrossRsi(Strategy):
    """Golden cross with RSI < 70 in; death cross or RSI > 80 out."""

    name = "sma_cross_rsi"
    description = "SMA(20)/SMA(50) cross with RSI(14) < 70 entry filter and RSI > 80 exit"
    rule_types = (SmaCross, RsiLevel)
    entry_rules = ("sma_cross",)
    exit_rules = ("sma_cross", "rsi_level")
    apply_gates = False

    def decide(self, bars: Bars, hits: Mapping[str, RuleHits], regime: IntArray) -> Decisions:
        """The two rules, nothing else."""
        cross = hits["sma_cross"]
        entry = cross.buy & (bars["rsi"] < self.params.rsi_entry_max)
        exit_ = cross.sell | hits["rsi_level"].sell
        return Decisions(
            entry=entry,
            exit=exit_,
            style=np.where(entry, STYLE_TREND, STYLE_NONE).astype(np.int8),
            confidence=np.where(entry, 1.0, 0.0),
        )

    def levels(self, bars: Bars) -> tuple[FloatArray, FloatArray, FloatArray]:
        """No stop, no target."""
        return nan_levels(bars)
