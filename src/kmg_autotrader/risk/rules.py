"""The rules: one small function per rule, each returning a :class:`Rejection` or None.

``check_candidate`` and ``check_minimums`` apply to every order; the others are entry gates
only. Exits are never blocked by an entry gate: leaving a position is always allowed
(see ``exits``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from kmg_autotrader.domain import Candidate, MarketInfo, Side
from kmg_autotrader.domain.clock import ms_to_iso
from kmg_autotrader.domain.fee_edge import FeeEdge
from kmg_autotrader.risk.params import RiskParams, param_decimals
from kmg_autotrader.risk.portfolio_state import PortfolioState
from kmg_autotrader.risk.reasons import ReasonCode
from kmg_autotrader.risk.state import RiskState
from kmg_autotrader.risk.units import percent_text

_MINUTE_MS = 60_000
_SELL = Side.SELL  # an enum member read through its class costs a __getattr__ hook each time


@dataclass(frozen=True, slots=True)
class Rejection:
    """A "no", with its machine-readable code and the reason in words."""

    code: ReasonCode
    message: str


def check_candidate(
    candidate: Candidate,
    portfolio: PortfolioState,
    market: MarketInfo,
    *,
    stop_required: bool = True,
) -> Rejection | None:
    """Refuse inputs that cannot be reasoned about (wrong market, bad prices, no stop).

    An entry needs a stop-loss to be sized by risk; with a fixed stake it may have none.
    """
    problem = _candidate_problem(candidate, portfolio, market, stop_required)
    return Rejection(ReasonCode.INVALID_CANDIDATE, problem) if problem else None


def _candidate_problem(
    candidate: Candidate, portfolio: PortfolioState, market: MarketInfo, stop_required: bool
) -> str | None:
    if market.symbol != candidate.symbol:
        return f"market info is for {market.symbol}, candidate is for {candidate.symbol}"
    if market.amount_step <= 0:
        return f"market amount step {market.amount_step} is not positive"
    if not _positive(candidate.price):
        return f"price {candidate.price} is not a positive number"
    if candidate.side is _SELL:
        return None  # an exit needs nothing more: it is sized to what is held
    if not portfolio.equity > 0:
        return f"equity {portfolio.equity} is not positive"
    if not 0 <= candidate.confidence <= 1 or not math.isfinite(candidate.expected_move):
        return "confidence must be within 0..1 and expected_move a number"
    if candidate.stop_loss is None:
        return "an entry needs a stop-loss price to be sized by risk" if stop_required else None
    if not _positive(candidate.stop_loss):
        return f"stop-loss {candidate.stop_loss} is not a positive number"
    if candidate.stop_loss >= candidate.price:
        return f"stop-loss {candidate.stop_loss} is not below the entry price {candidate.price}"
    if candidate.take_profit is not None and not candidate.take_profit > candidate.price:
        return f"take-profit {candidate.take_profit} is not above the entry price"
    return None


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def check_drawdown_breaker(state: RiskState) -> Rejection | None:
    """No entry while the drawdown breaker is tripped (it clears only by ``kmg resume`` or the
    dashboard's Clear breaker)."""
    if not state.breaker_tripped:
        return None
    return Rejection(
        ReasonCode.DRAWDOWN_BREAKER,
        f"drawdown breaker tripped: {state.breaker_reason}; clear it (kmg resume, or the "
        "dashboard's Clear breaker) to resume new entries",
    )


def check_daily_kill_switch(state: RiskState) -> Rejection | None:
    """No entry for the rest of the UTC day once the daily loss limit was hit."""
    if not state.kill_switch_tripped:
        return None
    return Rejection(
        ReasonCode.DAILY_LOSS_KILL_SWITCH,
        "daily loss kill-switch tripped; new entries resume at 00:00 UTC or when it is cleared "
        "(kmg resume)",
    )


def check_daily_trade_limit(state: RiskState, params: RiskParams) -> Rejection | None:
    """At most ``max_trades_per_day`` entries per UTC day."""
    if state.trades_today < params.max_trades_per_day:
        return None
    return Rejection(
        ReasonCode.DAILY_TRADE_LIMIT,
        f"{state.trades_today} entries today reached max_trades_per_day "
        f"{params.max_trades_per_day}",
    )


def check_not_in_position(
    symbol: str, portfolio: PortfolioState, state: RiskState, params: RiskParams, now_ms: int
) -> Rejection | None:
    """One position per symbol: no entry while one is open or an approved entry is pending.

    A pending entry (approved, fill not yet recorded) blocks for ``pending_entry_minutes``, so
    an order the exchange refused does not lock the symbol for the whole day.
    """
    if symbol in portfolio.positions:
        return Rejection(ReasonCode.ALREADY_IN_POSITION, f"a position in {symbol} is open")
    approved_at = state.pending_entries.get(symbol)
    if approved_at is not None and now_ms < approved_at + params.pending_entry_minutes * _MINUTE_MS:
        return Rejection(
            ReasonCode.ALREADY_IN_POSITION,
            f"an entry in {symbol} was approved at {ms_to_iso(state.pending_entries[symbol])} "
            "and is not yet recorded",
        )
    return None


def pending_entries(
    state: RiskState, portfolio: PortfolioState, params: RiskParams, now_ms: int
) -> dict[str, Decimal]:
    """Approved entries not yet in the portfolio (symbol → approved cost), still in flight.

    They count as open positions and as exposure, so two candidates approved in the same
    tick cannot together break ``max_open_positions`` or the exposure cap.
    """
    if not state.pending_entries:
        return {}  # the usual case: nothing approved and unfilled
    ttl = params.pending_entry_minutes * _MINUTE_MS
    return {
        symbol: state.pending_costs.get(symbol, Decimal(0))
        for symbol, approved_at in state.pending_entries.items()
        if symbol not in portfolio.positions and now_ms < approved_at + ttl
    }


def orphaned_entries(state: RiskState, held: set[str]) -> list[str]:
    """Pending entries with no position behind them (``held``: symbols with a position,
    opening or open, once reconciled): at start-up, approvals whose process died before the
    entry's position and order were recorded. No order exists for them, and none will."""
    return sorted(symbol for symbol in state.pending_entries if symbol not in held)


def release_entry(state: RiskState, symbol: str) -> None:
    """Undo an approval that never became an order: it frees its slot and exposure, and is
    not a trade (today's count and the symbol's cooldown are what they were before it)."""
    approved_at = state.pending_entries.pop(symbol, None)
    state.pending_costs.pop(symbol, None)
    if approved_at is None:
        return
    if state.day == approved_at // (24 * 60 * _MINUTE_MS) and state.trades_today > 0:
        state.trades_today -= 1
    if state.last_entry_ms.get(symbol) == approved_at:
        # the approval set it; the entry before it is older than the last exit (or none)
        del state.last_entry_ms[symbol]


def check_max_positions(open_count: int, params: RiskParams) -> Rejection | None:
    """At most ``max_open_positions`` open positions (approved entries in flight included)."""
    if open_count < params.max_open_positions:
        return None
    return Rejection(
        ReasonCode.MAX_POSITIONS,
        f"{open_count} open positions (with entries in flight) reached max_open_positions "
        f"{params.max_open_positions}",
    )


def check_loss_cooldown(
    symbol: str, state: RiskState, params: RiskParams, now_ms: int
) -> Rejection | None:
    """No entry in a symbol for ``cooldown_after_loss_minutes`` after a losing trade."""
    return _cooldown(
        ReasonCode.LOSS_COOLDOWN,
        "a losing trade",
        state.last_loss_ms.get(symbol),
        params.cooldown_after_loss_minutes,
        symbol,
        now_ms,
    )


def check_symbol_cooldown(
    symbol: str, state: RiskState, params: RiskParams, now_ms: int
) -> Rejection | None:
    """No entry in a symbol for ``cooldown_minutes`` after its last entry or exit."""
    # the later of the two times that are set (non-zero); None when neither is
    entered = state.last_entry_ms.get(symbol) or 0
    exited = state.last_exit_ms.get(symbol) or 0
    last = entered if entered >= exited else exited
    return _cooldown(
        ReasonCode.SYMBOL_COOLDOWN,
        "the last trade",
        last or None,
        params.cooldown_minutes,
        symbol,
        now_ms,
    )


def cooldown_until(since_ms: int | None, minutes: int) -> int | None:
    """When a cooldown that started at ``since_ms`` ends (None when there is none)."""
    return None if since_ms is None else since_ms + minutes * _MINUTE_MS


def _cooldown(
    code: ReasonCode, what: str, since_ms: int | None, minutes: int, symbol: str, now_ms: int
) -> Rejection | None:
    # cooldown_until, inlined: this runs twice for every entry
    if since_ms is None:
        return None
    until = since_ms + minutes * _MINUTE_MS
    if now_ms >= until:
        return None
    return Rejection(
        code,
        f"{symbol} is cooling down for {minutes} min after {what}: "
        f"no entry before {ms_to_iso(until)}",
    )


def check_fee_edge(expected_move: Decimal, edge: FeeEdge) -> Rejection | None:
    """The expected move must exceed round-trip fees + slippage + the safety margin."""
    if edge.passes(expected_move):
        return None
    return Rejection(ReasonCode.FEE_EDGE, edge.message(expected_move))


def check_exposure_room(equity: Decimal, exposure: Decimal, params: RiskParams) -> Rejection | None:
    """No entry when open positions (and entries in flight) fill the exposure cap."""
    cap = equity * param_decimals(params).max_total_exposure_percent
    if exposure < cap:
        return None
    return Rejection(
        ReasonCode.MAX_EXPOSURE,
        f"open exposure {exposure:.2f} reached max_total_exposure_percent "
        f"{percent_text(params.max_total_exposure_percent)} of equity ({cap:.2f})",
    )


def check_minimums(amount: Decimal, price: Decimal, market: MarketInfo) -> Rejection | None:
    """Dust: an amount below the market's minimum amount (or zero) or minimum cost."""
    if amount <= 0 or amount < market.min_amount:
        return Rejection(
            ReasonCode.BELOW_MIN_AMOUNT,
            f"{amount} {market.base} is below the market minimum {market.min_amount} "
            f"(step {market.amount_step})",
        )
    cost = amount * price
    if cost < market.min_cost:
        return Rejection(
            ReasonCode.BELOW_MIN_COST,
            f"cost {cost:.8g} {market.quote} is below the market minimum {market.min_cost}",
        )
    return None
