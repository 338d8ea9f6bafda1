"""The strategy orchestrator: strategy → regime → pre-trade filters → candidate + trace.

Two entry points that give the same :class:`Decision` for the same candle:

* :meth:`SignalEngine.run_history` (backtest): one vectorised pass over a symbol's history,
  filters applied to the few entry rows; the backtester asks :meth:`HistoryRun.entry_indices`
  and :meth:`HistoryRun.exit_indices` and builds a full decision only where it needs one with
  :meth:`HistoryRun.decision_at`;
* :meth:`SignalEngine.on_candle` (live): one closed candle of one symbol, O(1).

Decisions are made on the close of candle t: ``Decision.decided_at`` is t's close time, and no
order for it may fill before the first price after that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from loguru import logger

from kmg_autotrader.domain import Candidate, Candle, ExecutionMode, FilterStep, Regime, Side, Signal
from kmg_autotrader.domain.fast_init import fast_init
from kmg_autotrader.domain.fee_edge import EdgeCosts
from kmg_autotrader.signals.fees import FeeSchedule
from kmg_autotrader.signals.filters import FilterReport, PreTradeFilters
from kmg_autotrader.signals.params import SignalParams
from kmg_autotrader.signals.strategies.base import Strategy, StrategyFrame
from kmg_autotrader.signals.strategies.registry import load_strategy_class

_TF_MINUTES = {"m": 1, "h": 60, "d": 1440, "w": 10080}


def _timeframe_ms(timeframe: str) -> int:
    try:
        return int(timeframe[:-1]) * _TF_MINUTES[timeframe[-1]] * 60_000
    except (KeyError, ValueError, IndexError):
        raise ValueError(f"unknown timeframe {timeframe!r}") from None


def _price(value: float) -> float | None:
    return None if value != value else value  # NaN → None


@fast_init  # one per entry or exit decision: the slot-setter __init__ of the domain values
@dataclass(frozen=True, slots=True)
class Decision:
    """What the signal stage decided on one closed candle of one symbol.

    ``candidate`` is an entry that passed every filter (side BUY). ``entry_signals`` and
    ``trace`` are also filled when an entry was rejected, so the rejection can be stored and
    shown (``rejected_by`` names the first failed filter). ``exit`` is a SELL candidate for a
    held position. ``decided_at`` is the candle's close time (ms): nothing fills before it.
    """

    symbol: str
    timeframe: str
    timestamp: int
    decided_at: int
    regime: Regime
    candidate: Candidate | None = None
    exit: Candidate | None = None
    entry_signals: tuple[Signal, ...] = ()
    trace: tuple[FilterStep, ...] = ()
    rejected_by: str | None = None

    @property
    def is_empty(self) -> bool:
        """True when nothing fired (nothing worth storing)."""
        return self.candidate is None and self.exit is None and not self.entry_signals


def _build_decision(
    frame: StrategyFrame,
    i: int,
    report: FilterReport | None,
    j: int,
    position_open: bool,
    timeframe_ms: int,
) -> Decision:
    """The decision at row ``i`` of ``frame`` (``report`` row ``j`` holds its filter verdicts)."""
    # ``array.item(i)`` gives the Python scalar directly: ``float(array[i])`` first builds a
    # numpy scalar, and a backtest builds ~20 of these per decision
    ts = frame.timestamp.item(i)
    regime = frame.regime_at(i)
    if position_open:
        if not frame.decisions.exit[i]:
            return Decision(frame.symbol, frame.timeframe, ts, ts + timeframe_ms, regime)
        signals = frame.signals_at(i, Side.SELL, timestamp=ts, regime=regime)
        step = FilterStep("exit", True, "position open: exits bypass the entry gates")
        exit_candidate = Candidate(
            symbol=frame.symbol,
            timeframe=frame.timeframe,
            timestamp=ts,
            side=Side.SELL,
            price=frame.bars["close"].item(i),
            stop_loss=None,
            take_profit=None,
            confidence=max([s.strength for s in signals], default=1.0),
            expected_move=0.0,
            strategy=frame.strategy,
            regime=regime,
            signals=signals,
            trace=(step,),
        )
        return Decision(
            frame.symbol,
            frame.timeframe,
            ts,
            ts + timeframe_ms,
            regime,
            exit=exit_candidate,
            trace=(step,),
        )
    if report is None or not frame.decisions.entry[i]:
        return Decision(frame.symbol, frame.timeframe, ts, ts + timeframe_ms, regime)
    signals = frame.signals_at(i, Side.BUY, timestamp=ts, regime=regime)
    trace = report.trace(j)
    rejected_by = None
    for step in trace:  # the first failed filter (a loop: no generator per decision)
        if not step.passed:
            rejected_by = step.name
            break
    candidate = None
    if rejected_by is None:
        candidate = Candidate(
            symbol=frame.symbol,
            timeframe=frame.timeframe,
            timestamp=ts,
            side=Side.BUY,
            price=frame.bars["close"].item(i),
            stop_loss=_price(frame.stop_loss.item(i)),
            take_profit=_price(frame.take_profit.item(i)),
            confidence=report.confidence.item(j),
            expected_move=report.expected_move.item(j),
            strategy=frame.strategy,
            regime=regime,
            signals=signals,
            trace=trace,
        )
    return Decision(
        frame.symbol,
        frame.timeframe,
        ts,
        ts + timeframe_ms,
        regime,
        candidate=candidate,
        entry_signals=signals,
        trace=trace,
        rejected_by=rejected_by,
    )


@dataclass(slots=True)
class HistoryRun:
    """One symbol's history through the strategy and the filters (the backtest's view).

    ``entry_rows`` are the raw entry rows; ``report`` holds the filter verdicts aligned with
    them. Arrays indexed by candle: ``frame.stop_loss``, ``frame.take_profit``,
    ``frame.expected_move``; :attr:`confidence` is the gated confidence per candle (0 elsewhere).
    """

    frame: StrategyFrame
    entry_rows: np.ndarray[Any, np.dtype[np.intp]]
    report: FilterReport
    timeframe_ms: int
    # candle index -> position in ``entry_rows`` (a dict look-up per decision, not a search);
    # rebuilt from ``entry_rows`` by __post_init__, so ``dataclasses.replace`` keeps it right
    _entry_pos: dict[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._entry_pos = {row: j for j, row in enumerate(self.entry_rows.tolist())}

    def entry_indices(self) -> np.ndarray[Any, np.dtype[np.intp]]:
        """Candle indices with an entry candidate that passed every filter."""
        return self.entry_rows[self.report.passed]

    def rejected_indices(self) -> np.ndarray[Any, np.dtype[np.intp]]:
        """Candle indices whose entry was rejected by a filter."""
        return self.entry_rows[~self.report.passed]

    def exit_indices(self) -> np.ndarray[Any, np.dtype[np.intp]]:
        """Candle indices with an exit signal (act on them only while holding a position)."""
        return self.frame.exit_indices()

    @property
    def entry_mask(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Per-candle mask of accepted entries."""
        mask = np.zeros(len(self.frame), dtype=bool)
        mask[self.entry_indices()] = True
        return mask

    @property
    def confidence(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Per-candle gated confidence (0 where there is no entry row)."""
        out = np.zeros(len(self.frame))
        out[self.entry_rows] = self.report.confidence
        return out

    def decision_at(self, i: int, *, position_open: bool = False) -> Decision:
        """The full decision (candidate or rejection, signals, trace) at candle ``i``."""
        j = self._entry_pos.get(i)
        if j is None:
            return _build_decision(self.frame, i, None, 0, position_open, self.timeframe_ms)
        return _build_decision(self.frame, i, self.report, j, position_open, self.timeframe_ms)


class SignalEngine:
    """Runs one strategy over many symbols, vectorised (history) or per closed candle (live)."""

    def __init__(
        self,
        strategy: str | type[Strategy] = "default",
        params: SignalParams | None = None,
        *,
        timeframe: str = "5m",
        exchange: str = "binance",
        execution_mode: ExecutionMode = ExecutionMode.MARKET_ONLY,
        fees: FeeSchedule | None = None,
        costs: EdgeCosts | Callable[[], EdgeCosts] | None = None,
    ) -> None:
        self.params = params or SignalParams()
        self.strategy_cls = load_strategy_class(strategy) if isinstance(strategy, str) else strategy
        self.timeframe = timeframe
        self.timeframe_ms = _timeframe_ms(timeframe)
        self.filters = PreTradeFilters(
            self.params, fees=fees, exchange=exchange, execution_mode=execution_mode, costs=costs
        )
        self._live: dict[str, Strategy] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        *,
        fees: FeeSchedule | None = None,
        costs: EdgeCosts | Callable[[], EdgeCosts] | None = None,
    ) -> SignalEngine:
        """Build from the app settings (STRATEGY, TIMEFRAME, EXCHANGE, EXECUTION_MODE, signals);
        ``costs``: the fee gate's slippage and margin (the risk limits'), or what reads them."""
        return cls(
            settings.strategy,
            SignalParams.from_settings(settings),
            timeframe=settings.timeframe,
            exchange=settings.exchange,
            execution_mode=settings.execution_mode,
            fees=fees,
            costs=costs,
        )

    def new_strategy(self, symbol: str) -> Strategy:
        """A fresh strategy instance for ``symbol``."""
        return self.strategy_cls(self.params, symbol=symbol, timeframe=self.timeframe)

    def _filter(self, frame: StrategyFrame, rows: np.ndarray[Any, Any]) -> FilterReport:
        d = frame.decisions
        return self.filters.evaluate(
            frame.symbol,
            frame.bars.take(rows),
            frame.regime[rows],
            d.style[rows],
            d.confidence[rows],
            frame.expected_move[rows],
            gated=self.strategy_cls.apply_gates,
        )

    # ---- backtest -----------------------------------------------------------------------------

    def run_history(self, symbol: str, candles: pd.DataFrame | Any) -> HistoryRun:
        """Vectorised pass over ``symbol``'s closed candles (does not touch live state)."""
        frame = self.new_strategy(symbol).evaluate_history(candles)
        rows = frame.entry_indices()
        return HistoryRun(frame, rows, self._filter(frame, rows), self.timeframe_ms)

    # ---- live ---------------------------------------------------------------------------------

    def warm_up(self, symbol: str, candles: pd.DataFrame | Any) -> StrategyFrame:
        """Start (or restart) live state for ``symbol`` from its history of closed candles."""
        strategy = self.new_strategy(symbol)
        frame = strategy.evaluate_history(candles)
        self._live[symbol] = strategy
        logger.debug("signals: {} warmed up on {} candles", symbol, len(frame))
        return frame

    def reset(self, symbol: str) -> None:
        """Forget ``symbol``'s live state: after a gap in the data the indicators must not
        bridge the hole as if it were one candle, so the strategy warms up again."""
        self._live.pop(symbol, None)

    def is_warm(self, symbol: str) -> bool:
        """True when ``symbol`` has live state (warmed up or fed candles)."""
        return symbol in self._live

    def on_candle(self, symbol: str, candle: Candle, *, position_open: bool = False) -> Decision:
        """Decide on one newly closed candle (``position_open``: a long is held for ``symbol``)."""
        strategy = self._live.get(symbol)
        if strategy is None:
            strategy = self._live[symbol] = self.new_strategy(symbol)
        frame = strategy.on_candle(candle)
        rows = np.flatnonzero(frame.decisions.entry)
        report = self._filter(frame, rows) if rows.size and not position_open else None
        decision = _build_decision(frame, 0, report, 0, position_open, self.timeframe_ms)
        if decision.candidate is not None:
            logger.info(
                "signals: {} entry candidate conf {:.2f} ({})",
                symbol,
                decision.candidate.confidence,
                "; ".join(s.reason for s in decision.entry_signals),
            )
        elif decision.rejected_by is not None:
            logger.debug("signals: {} entry rejected by {}", symbol, decision.rejected_by)
        if decision.exit is not None:
            reasons = "; ".join(s.reason for s in decision.exit.signals)
            logger.info("signals: {} exit signal ({})", symbol, reasons)
        return decision
