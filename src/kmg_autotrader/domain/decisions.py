"""Decision values: signals, filter traces, candidates, advisor and risk decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kmg_autotrader.domain.enums import AdvisorAction, Regime, Side
from kmg_autotrader.domain.fast_init import fast_init


@fast_init
@dataclass(frozen=True, slots=True)
class Signal:
    """A rule firing on a closed candle.

    ``timestamp`` is the open time (UTC epoch ms) of the closed candle the rule looked at;
    ``price`` is that candle's close. ``strength`` is 0..1. ``indicators`` is the snapshot of
    indicator values the rule used, so the decision can be explained and re-checked later.
    """

    symbol: str
    timeframe: str
    timestamp: int
    side: Side
    rule: str
    strength: float
    price: float
    reason: str
    regime: Regime
    indicators: dict[str, float] = field(default_factory=dict)


@fast_init
@dataclass(frozen=True, slots=True)
class FilterStep:
    """One step of the pre-trade filter pipeline and its verdict."""

    name: str
    passed: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


@fast_init
@dataclass(frozen=True, slots=True)
class Candidate:
    """A trade candidate that passed the rule gates, ready for the advisor and the risk manager.

    ``stop_loss`` and ``take_profit`` are absolute prices (quote currency), usually ATR-based.
    ``expected_move`` is the fractional move the strategy expects (0.01 = 1 %).
    """

    symbol: str
    timeframe: str
    timestamp: int
    side: Side
    price: float
    stop_loss: float | None
    take_profit: float | None
    confidence: float
    expected_move: float
    strategy: str
    regime: Regime
    signals: tuple[Signal, ...] = ()
    trace: tuple[FilterStep, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class AdvisorDecision:
    """The LLM's validated second opinion, or an abstention.

    ``valid`` is False when the answer was missing or rejected; then ``action`` is None and the
    advisor mode decides what abstaining means. A rejected answer is never turned into a default.
    """

    valid: bool
    action: AdvisorAction | None
    confidence: float | None
    entry: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    horizon_minutes: int | None = None
    reasoning: str = ""
    risks: tuple[str, ...] = ()
    fallback: str | None = None  # e.g. "budget_exhausted", "unreachable", "invalid_answer"
    error: str | None = None
    call_id: int | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The risk manager's verdict on a candidate.

    When ``approved`` is False, ``reason_code`` is machine-readable (e.g. ``MAX_POSITIONS``)
    and ``message`` says why in words. ``adjustments`` lists every clamp that was applied.
    """

    approved: bool
    reason_code: str
    message: str
    symbol: str
    side: Side
    timestamp: int
    intent: Any = None  # OrderIntent when approved (typed in orders.py; Any avoids a cycle)
    adjustments: tuple[str, ...] = ()
    checks: dict[str, Any] = field(default_factory=dict)
