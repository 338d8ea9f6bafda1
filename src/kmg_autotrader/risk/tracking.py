"""Equity tracking: the UTC day, the marked-to-market peak, the breaker and the kill-switch.

Pure functions over :class:`RiskState`; each returns the sections it changed and the events
it raised, so the manager can save and announce exactly that.
"""

from __future__ import annotations

from decimal import Decimal

from kmg_autotrader.risk.events import RiskEvent, RiskEventKind
from kmg_autotrader.risk.params import ParamDecimals, RiskParams, param_decimals
from kmg_autotrader.risk.state import RiskState

DAY_MS = 86_400_000
_HUNDRED = Decimal(100)
_ZERO = Decimal(0)


def utc_day(at_ms: int) -> int:
    """Days since the epoch of a UTC timestamp (the day starts at 00:00 UTC)."""
    return at_ms // DAY_MS


def drawdown_percent(peak: Decimal | None, equity: Decimal) -> Decimal:
    """How far ``equity`` is below ``peak``, in percent (0 when at or above it)."""
    if peak is None or peak <= 0 or equity >= peak:
        return _ZERO
    return (peak - equity) / peak * _HUNDRED


def daily_loss_percent(day_start: Decimal | None, equity: Decimal) -> Decimal:
    """Loss since the day's starting equity, in percent (0 when not down)."""
    return drawdown_percent(day_start, equity)


def roll_day(state: RiskState, at_ms: int, equity: Decimal | None) -> set[str]:
    """Start a new UTC day when ``at_ms`` is past the stored one: counters and kill-switch reset.

    The day's starting equity is ``equity`` if given, else the last equity seen.
    """
    day = utc_day(at_ms)
    if state.day is not None and day <= state.day:
        return set()
    state.day = day
    state.day_start_equity = equity if equity is not None else state.last_equity
    state.trades_today = 0
    state.realized_pnl_today = Decimal(0)
    state.kill_switch_tripped = False
    state.kill_switch_at = None
    state.flatten_requested = False
    state.pending_entries = {}
    state.pending_costs = {}
    return {"day"}


def absorb_clears(state: RiskState, equity: Decimal | None) -> set[str]:
    """Apply manual clears (``clears`` section) that the equity and day sections have not yet.

    A breaker clear untrips the breaker and restarts the peak at ``equity`` (else the last
    equity seen), without which the next mark would trip it again; a kill-switch clear untrips
    the kill-switch and restarts the day's loss measure the same way. Each clear is absorbed
    once: its time is copied beside the new baseline. Returns the sections changed.
    """
    changed: set[str] = set()
    base = equity if equity is not None else state.last_equity
    if state.breaker_cleared_at != state.peak_reset_at:
        state.peak_reset_at = state.breaker_cleared_at
        state.peak_equity = base
        changed.add("equity")
        if state.breaker_tripped:
            state.breaker_tripped = False
            changed.add("breaker")
    if state.kill_switch_cleared_at != state.day_reset_at:
        state.day_reset_at = state.kill_switch_cleared_at
        state.day_start_equity = base
        state.kill_switch_tripped = False
        state.flatten_requested = False
        changed.add("day")
    return changed


def trips(state: RiskState, now: int) -> tuple[bool, bool]:
    """Whether the drawdown breaker and the daily kill-switch block entries at ``now``.

    A clear not yet absorbed counts as done (the next mark absorbs it before any gate), and a
    kill-switch of an earlier UTC day is over even if nothing rolled the day yet.
    """
    breaker = state.breaker_tripped and state.breaker_cleared_at == state.peak_reset_at
    kill_switch = (
        state.kill_switch_tripped
        and state.kill_switch_cleared_at == state.day_reset_at
        and state.day == utc_day(now)
    )
    return breaker, kill_switch


#: What :func:`observe_equity` changed (sections) and raised (events), then the drawdown from
#: the peak and the loss from the day's start it measured, in percent (None when not measured:
#: the breaker, or the kill-switch, was already tripped).
Observation = tuple[set[str], list[RiskEvent], Decimal | None, Decimal | None]


def observe_equity(
    state: RiskState, equity: Decimal, at_ms: int, params: RiskParams
) -> Observation:
    """Record a marked-to-market equity; trip the breaker or the kill-switch when due."""
    # This runs on every candle: the usual case (same day, no new peak, nothing tripped)
    # costs a few comparisons, and a drawdown is only computed when equity is below its base.
    day = state.day
    changed = roll_day(state, at_ms, equity) if day is None or at_ms // DAY_MS > day else set()
    if (
        state.breaker_cleared_at != state.peak_reset_at
        or state.kill_switch_cleared_at != state.day_reset_at
    ):
        changed |= absorb_clears(state, equity)
    events: list[RiskEvent] = []
    day_start = state.day_start_equity
    if day_start is None:
        day_start = state.day_start_equity = equity
        changed.add("day")
    if state.last_equity != equity or state.last_equity_at != at_ms:
        state.last_equity, state.last_equity_at = equity, at_ms
        changed.add("equity")
    peak = state.peak_equity
    if peak is None or equity > peak:
        peak = state.peak_equity = equity
        changed.add("equity")
    drawdown = loss = None
    if state.breaker_tripped and state.kill_switch_tripped:
        return changed, events, drawdown, loss
    decimals = param_decimals(params)
    # drawdown_percent inlined below (both bases are set by now): 0 at or above the base
    if not state.breaker_tripped:
        drawdown = (peak - equity) / peak * _HUNDRED if peak > _ZERO and equity < peak else _ZERO
        if drawdown >= decimals.max_drawdown_percent:
            events.append(_trip_breaker(state, equity, at_ms, drawdown, decimals))
            changed.add("breaker")
    if not state.kill_switch_tripped:
        loss = (
            (day_start - equity) / day_start * _HUNDRED
            if day_start > _ZERO and equity < day_start
            else _ZERO
        )
        if loss >= decimals.daily_loss_limit_percent:
            events.append(_trip_kill_switch(state, equity, at_ms, loss, params, decimals))
            changed.add("day")
    return changed, events, drawdown, loss


def _trip_breaker(
    state: RiskState, equity: Decimal, at_ms: int, drawdown: Decimal, decimals: ParamDecimals
) -> RiskEvent:
    """Trip the drawdown breaker: the drawdown from the peak reached the limit."""
    limit = decimals.max_drawdown_percent
    state.breaker_tripped = True
    state.breaker_tripped_at = at_ms
    state.breaker_reason = (
        f"drawdown {drawdown:.2f}% from peak {state.peak_equity} to {equity} "
        f"reached MAX_DRAWDOWN {limit}%"
    )
    return RiskEvent(
        RiskEventKind.BREAKER_TRIPPED,
        f"Drawdown breaker tripped: {state.breaker_reason}. New entries stop until it is "
        "cleared (kmg resume or the dashboard).",
        at_ms,
        details={"peak": state.peak_equity, "equity": equity, "drawdown_percent": drawdown},
    )


def _trip_kill_switch(
    state: RiskState,
    equity: Decimal,
    at_ms: int,
    loss: Decimal,
    params: RiskParams,
    decimals: ParamDecimals,
) -> RiskEvent:
    """Trip the daily kill-switch: today's loss reached the limit."""
    limit = decimals.daily_loss_limit_percent
    state.kill_switch_tripped = True
    state.kill_switch_at = at_ms
    state.flatten_requested = params.flatten_on_daily_loss
    flatten = " Closing every position." if params.flatten_on_daily_loss else ""
    return RiskEvent(
        RiskEventKind.KILL_SWITCH,
        f"Daily loss kill-switch tripped: down {loss:.2f}% from the day's start "
        f"{state.day_start_equity} (limit {limit}%). No new entries until 00:00 UTC or a "
        f"clear (kmg resume).{flatten}",
        at_ms,
        flatten=params.flatten_on_daily_loss,
        details={"day_start": state.day_start_equity, "equity": equity, "loss_percent": loss},
    )
