"""The risk manager's status as a plain dict, for the dashboard, health checks and the chat."""

from __future__ import annotations

from typing import Any

from kmg_autotrader.domain import Mode
from kmg_autotrader.risk import rules, tracking
from kmg_autotrader.risk.params import RiskParams
from kmg_autotrader.risk.state import RiskState


def build_status(
    mode: Mode, version: int, params: RiskParams, state: RiskState, now: int
) -> dict[str, Any]:
    """Breaker, kill-switch, daily counters, equity tracking and active cooldowns."""
    equity = state.last_equity
    breaker, kill_switch = tracking.trips(state, now)
    return {
        "mode": mode.value,
        "params_version": version,
        "equity": {
            "last": equity,
            "last_at": state.last_equity_at,
            "peak": state.peak_equity,
            "drawdown_percent": (
                tracking.drawdown_percent(state.peak_equity, equity) if equity is not None else None
            ),
        },
        "breaker": {
            "tripped": breaker,
            "tripped_at": state.breaker_tripped_at,
            "reason": state.breaker_reason,
            "limit_percent": params.max_drawdown_percent,
            "cleared_at": state.breaker_cleared_at,
            "cleared_by": state.breaker_cleared_by,
        },
        "kill_switch": {
            "tripped": kill_switch,
            "tripped_at": state.kill_switch_at,
            "flatten_requested": state.flatten_requested,
            "limit_percent": params.daily_loss_limit_percent,
            "cleared_at": state.kill_switch_cleared_at,
            "cleared_by": state.kill_switch_cleared_by,
        },
        "daily": {
            "day_start_ms": state.day * tracking.DAY_MS if state.day is not None else None,
            "start_equity": state.day_start_equity,
            "trades": state.trades_today,
            "max_trades": params.max_trades_per_day,
            "realized_pnl": state.realized_pnl_today,
            "entries_in_flight": sorted(state.pending_entries),
        },
        "cooldowns": active_cooldowns(state, params, now),
    }


def active_cooldowns(state: RiskState, params: RiskParams, now: int) -> dict[str, dict[str, Any]]:
    """Symbols still cooling down: ``{symbol: {"until": ms, "after_loss": bool}}``."""
    out: dict[str, dict[str, Any]] = {}
    symbols = set(state.last_entry_ms) | set(state.last_exit_ms) | set(state.last_loss_ms)
    for symbol in sorted(symbols):
        last = max(state.last_entry_ms.get(symbol, 0), state.last_exit_ms.get(symbol, 0))
        until = rules.cooldown_until(last or None, params.cooldown_minutes)
        loss_until = rules.cooldown_until(
            state.last_loss_ms.get(symbol), params.cooldown_after_loss_minutes
        )
        ends = max(t for t in (until, loss_until, 0) if t is not None)
        if ends > now:
            out[symbol] = {"until": ends, "after_loss": bool(loss_until and loss_until > now)}
    return out
