"""Rules: named, explainable conditions on closed candles, evaluated over many rows at once.

A rule's :meth:`Rule.evaluate` returns boolean masks of where it fires on the buy and sell side
and a strength (0..1) per row; :meth:`Rule.reason` turns one firing into a sentence. Only the
rows that matter are ever explained, so building signals stays cheap in a backtest.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, ClassVar

import numpy as np

from kmg_autotrader.domain import Side
from kmg_autotrader.signals.bars import Bars, BoolArray
from kmg_autotrader.signals.indicators.nodes import FloatArray
from kmg_autotrader.signals.params import SignalParams


@dataclass(frozen=True, slots=True)
class RuleHits:
    """Where a rule fired (per side) and how strongly, one entry per row."""

    buy: BoolArray
    sell: BoolArray
    strength: FloatArray

    def fired(self, side: Side) -> BoolArray:
        """Mask of rows where the rule fired on ``side``."""
        return self.buy if side is Side.BUY else self.sell


def _clip01(values: FloatArray) -> FloatArray:
    return np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0)


def _money(value: float) -> str:
    """Prices for humans: thousands separators, more decimals for small prices."""
    if value != value:  # NaN
        return "n/a"
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 1:
        return f"{value:,.2f}"
    return f"{value:.8g}"


class Rule(ABC):
    """Base class of a rule. Subclasses set ``name`` and ``inputs`` and implement two methods.

    ``inputs`` are the indicator columns copied into the signal's snapshot.
    """

    name: ClassVar[str]
    inputs: ClassVar[tuple[str, ...]]

    def __init__(self, params: SignalParams) -> None:
        self.params = params
        self._snapshot_keys = ("close", *self.inputs)  # built once, read for every signal
        # reads every snapshot value in one C call (a tuple: two keys at least)
        self._snapshot_get: Any = (
            itemgetter(*self._snapshot_keys) if len(self._snapshot_keys) > 1 else None
        )

    @abstractmethod
    def evaluate(self, bars: Bars) -> RuleHits:
        """Masks and strengths for every row of ``bars`` (must only read this and prior rows)."""

    @abstractmethod
    def reason(self, side: Side, row: Mapping[str, float], prev: Mapping[str, float]) -> str:
        """One human sentence explaining why the rule fired on ``side`` at ``row``."""

    def snapshot(self, row: Mapping[str, float]) -> dict[str, float]:
        """The indicator values this rule used, for the signal record."""
        if self._snapshot_get is not None:
            try:  # the usual case: the row has every key
                return dict(zip(self._snapshot_keys, self._snapshot_get(row), strict=True))
            except KeyError:
                pass
        return {k: row[k] for k in self._snapshot_keys if k in row}


# Two averages closer than this fraction of the price are equal. What tells them apart then is
# float noise, not the market: TA-Lib's SMA keeps a running sum, so on a market standing still
# the fast and slow averages of the same price differ by ~1e-15 of it, either way. Real
# differences on the bundled sample are 2e-7 of the price and more; the noise of a long history
# stays far below 1e-9.
CROSS_TOLERANCE = 1e-9


class SmaCross(Rule):
    """Golden cross (fast SMA crosses above slow: buy) and death cross (below: sell)."""

    name = "sma_cross"
    inputs = ("sma_fast", "sma_slow", "rsi", "adx")
    _heads: tuple[SignalParams | None, str, str] = (None, "", "")

    def evaluate(self, bars: Bars) -> RuleHits:
        """Cross on this candle: fast - slow changed sign since the previous candle.

        "Above" means above by more than :data:`CROSS_TOLERANCE` of the price: averages equal
        but for float noise are equal, so a flat market gives no cross (fast == slow, then slow
        a hair above, was a death cross). Each candle is compared with its own and the previous
        candle's values only (no look-ahead).
        """
        fast, slow = bars["sma_fast"], bars["sma_slow"]
        pslow = bars.prev("sma_slow")
        gap = fast - slow
        pgap = bars.prev("sma_fast") - pslow
        tol = CROSS_TOLERANCE * np.abs(slow)
        ptol = CROSS_TOLERANCE * np.abs(pslow)
        buy = (gap > tol) & (pgap <= ptol)
        sell = (gap < -tol) & (pgap >= -ptol)
        # a cross in an already directional market (higher ADX) is worth more
        adx = np.nan_to_num(bars["adx"], nan=0.0)  # unknown ADX: a plain cross
        strength = _clip01(0.5 + np.minimum(adx, 50.0) / 100.0)
        return RuleHits(buy, sell, strength)

    def reason(self, side: Side, row: Mapping[str, float], prev: Mapping[str, float]) -> str:
        """E.g. ``SMA20 crossed above SMA50 at 64,210; RSI 41``."""
        p = self.params
        heads = self._heads
        if heads[0] is not p:  # the text before the price depends on the params alone
            heads = self._heads = (
                p,
                f"SMA{p.sma_fast} crossed above SMA{p.sma_slow} at ",
                f"SMA{p.sma_fast} crossed below SMA{p.sma_slow} at ",
            )
        head = heads[1] if side is Side.BUY else heads[2]
        return f"{head}{_money(row['close'])}; RSI {row['rsi']:.0f}"


class RsiExtreme(Rule):
    """RSI below the oversold level (buy side) or above the overbought level (sell side)."""

    name = "rsi_extreme"
    inputs = ("rsi",)

    def evaluate(self, bars: Bars) -> RuleHits:
        """Fires on every candle spent in an extreme; deeper is stronger."""
        p = self.params
        rsi = bars["rsi"]
        buy = rsi < p.rsi_oversold
        sell = rsi > p.rsi_overbought
        depth = np.where(
            buy, (p.rsi_oversold - rsi) / p.rsi_oversold, (rsi - p.rsi_overbought) / 30.0
        )
        return RuleHits(buy, sell, _clip01(0.5 + depth))

    def reason(self, side: Side, row: Mapping[str, float], prev: Mapping[str, float]) -> str:
        """E.g. ``RSI 24.3 below oversold 30``."""
        p = self.params
        if side is Side.BUY:
            return f"RSI {row['rsi']:.1f} below oversold {p.rsi_oversold:g}"
        return f"RSI {row['rsi']:.1f} above overbought {p.rsi_overbought:g}"


class RsiExtremeExit(Rule):
    """RSI leaving an extreme: back above oversold (buy) or back below overbought (sell)."""

    name = "rsi_extreme_exit"
    inputs = ("rsi",)

    def evaluate(self, bars: Bars) -> RuleHits:
        """Fires on the candle where RSI crosses back out of the extreme zone."""
        p = self.params
        rsi, prsi = bars["rsi"], bars.prev("rsi")
        buy = (prsi < p.rsi_oversold) & (rsi >= p.rsi_oversold)
        sell = (prsi > p.rsi_overbought) & (rsi <= p.rsi_overbought)
        # the deeper the previous extreme, the stronger the snap back
        depth = np.where(buy, p.rsi_oversold - prsi, prsi - p.rsi_overbought) / 20.0
        return RuleHits(buy, sell, _clip01(0.6 + depth))

    def reason(self, side: Side, row: Mapping[str, float], prev: Mapping[str, float]) -> str:
        """E.g. ``RSI back above oversold 30 (27.9 → 33.0)``."""
        p = self.params
        level = p.rsi_oversold if side is Side.BUY else p.rsi_overbought
        way = "above oversold" if side is Side.BUY else "below overbought"
        return f"RSI back {way} {level:g} ({prev['rsi']:.1f} → {row['rsi']:.1f})"


class RsiLevel(Rule):
    """RSI strictly above ``rsi_exit_above`` (sell side only): the sma_cross_rsi exit."""

    name = "rsi_level"
    inputs = ("rsi",)

    def evaluate(self, bars: Bars) -> RuleHits:
        """Sell side fires while RSI is above the exit level."""
        rsi = bars["rsi"]
        sell = rsi > self.params.rsi_exit_above
        buy = np.zeros_like(sell)
        return RuleHits(buy, sell, _clip01(0.6 + (rsi - self.params.rsi_exit_above) / 50.0))

    def reason(self, side: Side, row: Mapping[str, float], prev: Mapping[str, float]) -> str:
        """E.g. ``RSI 83.2 above 80``."""
        return f"RSI {row['rsi']:.1f} above {self.params.rsi_exit_above:g}"


def _candle_up(bars: Bars) -> BoolArray:
    return bars["close"] >= bars["open"]


class AtrExpansion(Rule):
    """Volatility expansion: ATR% crosses above ``atr_expansion_ratio`` × its baseline.

    Volatility has no direction, so the side follows the candle's body (up candle: buy).
    """

    name = "atr_expansion"
    inputs = ("atr", "atr_pct", "atr_pct_base", "vol_ratio")

    def evaluate(self, bars: Bars) -> RuleHits:
        """Fires on the candle where the ratio crosses the threshold."""
        p = self.params
        ratio, pratio = bars["vol_ratio"], bars.prev("vol_ratio")
        fired = (ratio >= p.atr_expansion_ratio) & (pratio < p.atr_expansion_ratio)
        up = _candle_up(bars)
        strength = _clip01((ratio - 1.0) / (p.high_vol_ratio - 1.0))
        return RuleHits(fired & up, fired & ~up, strength)

    def reason(self, side: Side, row: Mapping[str, float], prev: Mapping[str, float]) -> str:
        """E.g. ``ATR% 0.42% is 1.6× its baseline 0.26%``."""
        return (
            f"ATR% {row['atr_pct'] * 100:.2f}% is {row['vol_ratio']:.1f}× its baseline "
            f"{row['atr_pct_base'] * 100:.2f}% ({'up' if side is Side.BUY else 'down'} candle)"
        )


class RangeBreakout(Rule):
    """Close above the highest high (buy) or below the lowest low (sell) of the prior candles."""

    name = "range_breakout"
    inputs = ("hh_prev", "ll_prev", "atr")

    def evaluate(self, bars: Bars) -> RuleHits:
        """Breakout measured against the ``breakout_period`` candles before this one."""
        close, atr = bars["close"], bars["atr"]
        buy = close > bars["hh_prev"]
        sell = close < bars["ll_prev"]
        excess = np.where(buy, close - bars["hh_prev"], bars["ll_prev"] - close) / atr
        return RuleHits(buy, sell, _clip01(0.5 + excess))

    def reason(self, side: Side, row: Mapping[str, float], prev: Mapping[str, float]) -> str:
        """E.g. ``close 64,500 broke the 20-candle high 64,210``."""
        n = self.params.breakout_period
        if side is Side.BUY:
            return (
                f"close {_money(row['close'])} broke the {n}-candle high {_money(row['hh_prev'])}"
            )
        return f"close {_money(row['close'])} broke the {n}-candle low {_money(row['ll_prev'])}"


class VolumeSpike(Rule):
    """Volume z-score at or above ``volume_spike_z``; side follows the candle's body."""

    name = "volume_spike"
    inputs = ("volume_z",)

    def evaluate(self, bars: Bars) -> RuleHits:
        """Fires on every spike candle."""
        z = bars["volume_z"]
        fired = z >= self.params.volume_spike_z
        up = _candle_up(bars)
        strength = _clip01(
            0.5 + (z - self.params.volume_spike_z) / (2 * self.params.volume_spike_z)
        )
        return RuleHits(fired & up, fired & ~up, strength)

    def reason(self, side: Side, row: Mapping[str, float], prev: Mapping[str, float]) -> str:
        """E.g. ``volume z-score 4.2 (spike ≥ 3) on an up candle``."""
        way = "up" if side is Side.BUY else "down"
        return (
            f"volume z-score {row['volume_z']:.1f} (spike ≥ {self.params.volume_spike_z:g}) "
            f"on a{'n' if way == 'up' else ''} {way} candle"
        )


#: Every built-in rule by name.
BUILTIN_RULES: dict[str, type[Rule]] = {
    cls.name: cls
    for cls in (
        SmaCross,
        RsiExtreme,
        RsiExtremeExit,
        RsiLevel,
        AtrExpansion,
        RangeBreakout,
        VolumeSpike,
    )
}
