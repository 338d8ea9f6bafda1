"""The strategy base class: write :meth:`Strategy.decide` once, get a backtest and a live path.

How to write your own strategy (a file anywhere, selected with ``STRATEGY=path/to/file.py`` or
``STRATEGY=package.module:MyStrategy``)::

    import numpy as np
    from kmg_autotrader.signals.strategies.base import Decisions, Strategy, STYLE_TREND
    from kmg_autotrader.signals.rules import SmaCross

    class MyStrategy(Strategy):
        name = "my_strategy"
        rule_types = (SmaCross,)
        entry_rules = ("sma_cross",)
        exit_rules = ("sma_cross",)

        def decide(self, bars, hits, regime):
            cross = hits["sma_cross"]
            entry = cross.buy & (bars["rsi"] < 65)
            return Decisions(
                entry=entry,
                exit=cross.sell,
                style=np.where(entry, STYLE_TREND, 0).astype(np.int8),
                confidence=cross.strength,
            )

Contract:

* ``decide`` is vectorised: it receives arrays (a whole history, or one row live) and must only
  combine the current row with ``bars.prev(...)`` and indicator columns — never look ahead.
* entry/exit masks do not depend on whether a position is open; the caller applies them
  (an entry counts only when flat, an exit only when a position is held).
* stops and targets come from :meth:`Strategy.levels` (ATR-based by default; NaN = none).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from kmg_autotrader.domain import Candle, Regime, Side, Signal
from kmg_autotrader.signals.bars import Bars, BoolArray
from kmg_autotrader.signals.indicators.engine import PRICE_COLUMNS, Frame, IndicatorEngine
from kmg_autotrader.signals.indicators.nodes import NAN, FloatArray
from kmg_autotrader.signals.params import SignalParams
from kmg_autotrader.signals.regimes import REGIMES, IntArray, classify
from kmg_autotrader.signals.rules import Rule, RuleHits

#: Entry styles (``Decisions.style``): which playbook an entry belongs to.
STYLE_NONE = 0
STYLE_TREND = 1
STYLE_MEAN_REVERSION = 2
STYLES: tuple[str, ...] = ("none", "trend_following", "mean_reversion")

Int64Array = np.ndarray[Any, np.dtype[np.int64]]
#: A rule that can sign on one side: name, rule, fired mask and strengths of its hits.
_SignalPlan = tuple[str, Rule, BoolArray, FloatArray]


@dataclass(frozen=True, slots=True)
class Decisions:
    """What a strategy decided on each row (before the orchestrator's filters).

    ``confidence`` is the strategy's base confidence for an entry (0..1); the confidence gate
    adds boosts and penalties on top.
    """

    entry: BoolArray
    exit: BoolArray
    style: np.ndarray[Any, np.dtype[np.int8]]
    confidence: FloatArray


@dataclass(slots=True)
class StrategyFrame:
    """A strategy run over rows of one symbol: indicators, regimes, rule hits and decisions.

    Produced for a whole history by :meth:`Strategy.evaluate_history` (the backtest asks
    :meth:`entry_indices` / :meth:`exit_indices`) and for one row by :meth:`Strategy.on_candle`.
    ``stop_loss``/``take_profit`` are absolute prices (NaN: none); ``expected_move`` is a fraction.
    """

    strategy: str
    symbol: str
    timeframe: str
    timestamp: Int64Array
    bars: Bars
    regime: IntArray
    hits: dict[str, RuleHits]
    rules: dict[str, Rule]
    decisions: Decisions
    stop_loss: FloatArray
    take_profit: FloatArray
    expected_move: FloatArray
    entry_rules: tuple[str, ...] = ()
    exit_rules: tuple[str, ...] = ()
    indicators: Frame = field(default_factory=dict)
    # per side, (name, rule, fired mask, strengths) of each rule that can sign on that side:
    # the same for every row, so looked up once per frame, not once per decision
    _plans: dict[Side, tuple[_SignalPlan, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __len__(self) -> int:
        return len(self.timestamp)

    def entry_indices(self) -> np.ndarray[Any, np.dtype[np.intp]]:
        """Rows with an entry candidate (before filters; valid only when flat)."""
        return np.flatnonzero(self.decisions.entry)

    def exit_indices(self) -> np.ndarray[Any, np.dtype[np.intp]]:
        """Rows with an exit signal (valid only while a position is held)."""
        return np.flatnonzero(self.decisions.exit)

    def regime_at(self, i: int) -> Regime:
        """Regime of row ``i``."""
        return REGIMES[self.regime.item(i)]

    def signals_at(
        self, i: int, side: Side, *, timestamp: int | None = None, regime: Regime | None = None
    ) -> tuple[Signal, ...]:
        """Signals of the rules that fired on ``side`` at row ``i`` (entry or exit rules).

        ``timestamp`` and ``regime`` are row ``i``'s, for a caller that has them already.
        """
        plan = self._plans.get(side)
        if plan is None:
            plan = self._plans[side] = self._plan(side)
        fired = [step for step in plan if step[2][i]]
        if not fired:
            return ()
        if timestamp is None:
            timestamp = self.timestamp.item(i)
        if regime is None:
            regime = self.regime_at(i)
        row = self.bars.row(i)  # converted once for every signal of the row
        prev = self.bars.prev_view(i)
        price = row["close"]
        out: list[Signal] = []
        for name, rule, _, strength in fired:
            out.append(
                Signal(
                    symbol=self.symbol,
                    timeframe=self.timeframe,
                    timestamp=timestamp,
                    side=side,
                    rule=name,
                    strength=strength.item(i),
                    price=price,
                    reason=rule.reason(side, row, prev),
                    regime=regime,
                    indicators=rule.snapshot(row),
                )
            )
        return tuple(out)

    def _plan(self, side: Side) -> tuple[_SignalPlan, ...]:
        names = self.entry_rules if side is Side.BUY else self.exit_rules
        return tuple(
            (name, self.rules[name], self.hits[name].fired(side), self.hits[name].strength)
            for name in names
        )


def _frame_input(candles: pd.DataFrame | Mapping[str, Any]) -> tuple[Int64Array, list[FloatArray]]:
    cols = [np.asarray(candles[name], dtype=np.float64) for name in PRICE_COLUMNS]
    if "timestamp" in candles:
        ts = np.asarray(candles["timestamp"], dtype=np.int64)
    elif isinstance(candles, pd.DataFrame) and "date" in candles:
        # unit-proof (pandas 3 may store µs or ns): count milliseconds since the epoch
        delta = pd.to_datetime(candles["date"], utc=True) - pd.Timestamp(0, tz="UTC")
        ts = np.asarray(delta // pd.Timedelta(milliseconds=1), dtype=np.int64)
    else:
        ts = np.arange(len(cols[0]), dtype=np.int64)
    return ts, cols


class Strategy(ABC):
    """Base class of every strategy; one instance holds the live state of one symbol.

    Subclasses set ``name``, ``rule_types`` (the rules they read), ``entry_rules`` and
    ``exit_rules`` (whose firings become the signals attached to a candidate), and implement
    :meth:`decide`. Set ``apply_gates = False`` for a strategy whose rules must run exactly as
    written (the orchestrator then skips the regime, fee and confidence gates and says so).
    """

    name: ClassVar[str] = "strategy"
    description: ClassVar[str] = ""
    rule_types: ClassVar[tuple[type[Rule], ...]] = ()
    entry_rules: ClassVar[tuple[str, ...]] = ()
    exit_rules: ClassVar[tuple[str, ...]] = ()
    apply_gates: ClassVar[bool] = True

    def __init__(
        self, params: SignalParams | None = None, *, symbol: str = "", timeframe: str = ""
    ) -> None:
        self.params = params or SignalParams()
        self.symbol = symbol
        self.timeframe = timeframe
        self.rules: dict[str, Rule] = {cls.name: cls(self.params) for cls in self.rule_types}
        self._engine = IndicatorEngine(self.params)
        self._last_row: dict[str, float] | None = None
        self._last_ts: int | None = None

    # ---- to implement -------------------------------------------------------------------------

    @abstractmethod
    def decide(self, bars: Bars, hits: Mapping[str, RuleHits], regime: IntArray) -> Decisions:
        """Entry/exit masks, entry style and base confidence for every row (vectorised)."""

    def levels(self, bars: Bars) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Stop-loss and take-profit prices and the expected move (fraction) for a long entry.

        Default: ATR multiples below/above the close; the expected move is the target distance.
        """
        p = self.params
        close, atr = bars["close"], bars["atr"]
        stop = close - p.atr_stop_mult * atr
        target = close + p.atr_target_mult * atr
        return stop, target, p.atr_target_mult * bars["atr_pct"]

    # ---- shared machinery ----------------------------------------------------------------------

    @property
    def warmup(self) -> int:
        """Candles of history the strategy needs before all indicators have values."""
        return self.params.warmup

    def _run(self, bars: Bars, timestamp: Int64Array, indicators: Frame) -> StrategyFrame:
        hits = {name: rule.evaluate(bars) for name, rule in self.rules.items()}
        regime = classify(bars, self.params)
        decisions = self.decide(bars, hits, regime)
        stop, target, move = self.levels(bars)
        return StrategyFrame(
            strategy=self.name,
            symbol=self.symbol,
            timeframe=self.timeframe,
            timestamp=timestamp,
            bars=bars,
            regime=regime,
            hits=hits,
            rules=self.rules,
            decisions=decisions,
            stop_loss=stop,
            take_profit=target,
            expected_move=move,
            entry_rules=self.entry_rules,
            exit_rules=self.exit_rules,
            indicators=indicators,
        )

    def evaluate_history(self, candles: pd.DataFrame | Mapping[str, Any]) -> StrategyFrame:
        """Vectorised path over a whole history of closed candles.

        Also leaves the live state at the last candle, so :meth:`on_candle` can continue.
        ``candles`` needs open/high/low/close/volume and ``timestamp`` (ms) or ``date``.
        """
        ts, cols = _frame_input(candles)
        frame = self._engine.warm_up(*cols)
        bars = Bars(frame)
        n = len(ts)
        self._last_row = bars.row(n - 1) if n else None
        self._last_ts = int(ts[-1]) if n else None
        return self._run(bars, ts, frame)

    def on_candle(self, candle: Candle) -> StrategyFrame:
        """Incremental path: advance by one closed candle; returns a one-row frame.

        Decisions equal those :meth:`evaluate_history` gives for the same row.
        """
        if self._last_ts is not None and candle.timestamp <= self._last_ts:
            raise ValueError(
                f"{self.symbol}: candle {candle.timestamp} is not after {self._last_ts}"
            )
        row = self._engine.update(candle.open, candle.high, candle.low, candle.close, candle.volume)
        bars = Bars.from_rows(row, self._last_row)
        self._last_row = row
        self._last_ts = candle.timestamp
        ts = np.array([candle.timestamp], dtype=np.int64)
        return self._run(bars, ts, {})

    def copy(self) -> Strategy:
        """An independent copy of this strategy and its live state."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._engine = self._engine.copy()
        clone._last_row = None if self._last_row is None else dict(self._last_row)
        return clone


def nan_levels(bars: Bars) -> tuple[FloatArray, FloatArray, FloatArray]:
    """No stop, no target, expected move NaN-free (ATR% based) — for exact-rule strategies."""
    none = np.full(bars.size, NAN)
    return none, none.copy(), np.nan_to_num(bars["atr_pct"], nan=0.0)
