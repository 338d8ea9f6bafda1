"""Clearing a tripped drawdown breaker or daily kill-switch by hand (``kmg resume``, dashboard).

Both callers build a :class:`RiskManager` over the stored state of one mode, as the bot does,
clear through it, then read the state back with a fresh store: the answer says what the
stored state is after the change, never what was merely asked for. The running bot (maybe in
another process) reads the same rows before its next decision.

Pausing and resuming trading is a different switch (``autopilot.control``); nothing here
touches it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kmg_autotrader.domain import Mode
from kmg_autotrader.domain.clock import Clock, WallClock, ms_to_iso
from kmg_autotrader.risk.manager import BREAKER, KILL_SWITCH, RiskManager
from kmg_autotrader.risk.params import RiskParamsStore
from kmg_autotrader.risk.state import DbRiskStateStore

if TYPE_CHECKING:
    from kmg_autotrader.config import Settings
    from kmg_autotrader.storage.repositories import Repositories

NAMES = {BREAKER: "drawdown breaker", KILL_SWITCH: "daily loss kill-switch"}


def stored_manager(
    settings: Settings, repos: Repositories, mode: Mode, clock: Clock | None = None
) -> RiskManager:
    """A risk manager over the stored parameters and state of ``mode`` (clears become events)."""
    params = RiskParamsStore.from_settings(repos.risk_params, settings, mode)
    return RiskManager(
        mode=mode,
        params=params,
        state=DbRiskStateStore(repos.risk_state, mode),
        decisions=None,
        clock=clock or WallClock(),
        event_log=repos.events,
    )


@dataclass(frozen=True)
class ClearOutcome:
    """What a clear did: asked (``cleared``) and read back afterwards (``status``)."""

    mode: Mode
    cleared: list[str]
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def still_tripped(self) -> list[str]:
        """The switches the read-back state shows tripped."""
        return tripped(self.status)

    @property
    def ok(self) -> bool:
        """True when something was cleared and the read-back shows none of it tripped."""
        return bool(self.cleared) and not set(self.cleared) & set(self.still_tripped)

    def lines(self) -> list[str]:
        """The outcome in plain words (cleared what, by whom, when, new baseline; read back)."""
        mode = self.mode.value.upper()
        if not self.cleared:
            return [f"Nothing was cleared: {nothing_tripped(mode)}"]
        out = []
        for name in self.cleared:
            part = self.status.get(name) or {}
            at = part.get("cleared_at")
            when = ms_to_iso(int(at)) if at else "?"
            if name == BREAKER:
                base = f"the peak restarts at {_figure(self.status, 'equity', 'peak')}"
            else:
                base = f"today's loss counts from {_figure(self.status, 'daily', 'start_equity')}"
            out.append(
                f"Cleared the {mode} {NAMES[name]} (by {part.get('cleared_by')} at {when}); {base}."
            )
        left = self.still_tripped
        if left:
            out.append(f"Read back: still tripped: {', '.join(NAMES[n] for n in left)}.")
        else:
            out.append(f"Read back: neither the breaker nor the kill-switch of {mode} is tripped.")
        return out


def _figure(status: dict[str, Any], part: str, key: str) -> Any:
    """``status[part][key]``, or None."""
    return (status.get(part) or {}).get(key)


def tripped(status: dict[str, Any]) -> list[str]:
    """The switches a :meth:`RiskManager.status` dict shows tripped, breaker first."""
    return [name for name in (BREAKER, KILL_SWITCH) if (status.get(name) or {}).get("tripped")]


def describe_trips(status: dict[str, Any]) -> list[str]:
    """One line per tripped switch: what, since when, why."""
    lines = []
    breaker = status.get(BREAKER) or {}
    if breaker.get("tripped"):
        at = breaker.get("tripped_at")
        since = f" since {ms_to_iso(int(at))}" if at else ""
        lines.append(f"drawdown breaker tripped{since}: {breaker.get('reason') or 'no reason'}")
    kill = status.get(KILL_SWITCH) or {}
    if kill.get("tripped"):
        at = kill.get("tripped_at")
        since = f" since {ms_to_iso(int(at))}" if at else ""
        lines.append(
            f"daily loss kill-switch tripped{since} (limit {kill.get('limit_percent')} % a day)"
        )
    return lines


def nothing_tripped(mode: str) -> str:
    """The refusal when there is nothing to clear."""
    return (
        f"neither the drawdown breaker nor the daily kill-switch of {mode} is tripped. "
        "(Pausing and resuming trading is a separate switch: Pause/Resume on the dashboard.)"
    )


def clear_trips(
    settings: Settings,
    repos: Repositories,
    mode: Mode,
    by: str,
    *,
    breaker: bool = True,
    kill_switch: bool = True,
) -> ClearOutcome:
    """Clear what is tripped of ``mode``; the outcome holds the state read back afterwards."""
    cleared = stored_manager(settings, repos, mode).clear(
        by, breaker=breaker, kill_switch=kill_switch
    )
    # a fresh manager and store: nothing of the clearing one's memory
    status = stored_manager(settings, repos, mode).status()
    return ClearOutcome(mode, cleared, status)
