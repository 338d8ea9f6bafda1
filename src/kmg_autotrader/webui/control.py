"""Pause / resume / flatten from the dashboard.

The running bot passes its own :class:`BotController`. Without one (``kmg web`` on its own),
:class:`DatabaseController` records the request where the bot looks: pause state in the stored
control key the autopilot reads before every decision. It cannot trade, so a flatten pauses,
records a ``flatten_requested`` event (an audit line) and tells the user to run ``kmg flatten``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol, runtime_checkable

from loguru import logger

from kmg_autotrader.autopilot.control import TradingControl
from kmg_autotrader.domain import Mode
from kmg_autotrader.domain.clock import now_ms
from kmg_autotrader.storage.repositories import Repositories

FLATTEN_REQUESTED = "flatten_requested"

ControlSummary = dict[str, Any]


@runtime_checkable
class BotController(Protocol):
    """What the dashboard needs from the bot. Methods may be sync or return an awaitable."""

    def pause(self, source: str) -> ControlSummary | Awaitable[ControlSummary]:
        """Stop opening new trades (open positions keep their exits)."""
        ...

    def resume(self, source: str) -> ControlSummary | Awaitable[ControlSummary]:
        """Open new trades again."""
        ...

    def flatten(self, source: str) -> ControlSummary | Awaitable[ControlSummary]:
        """Cancel every open order and close every position of the current mode."""
        ...

    def is_paused(self) -> bool:
        """True while new trades are paused."""
        ...


class DatabaseController:
    """A controller for a dashboard running without the bot in its process."""

    def __init__(self, repos: Repositories, mode: Mode) -> None:
        self.repos = repos
        self.mode = mode
        self.control = TradingControl(repos.risk_state, mode)

    def status(self) -> dict[str, Any]:
        """The stored control state."""
        return self.control.status()

    def is_paused(self) -> bool:
        """True while new trades are paused."""
        return self.control.is_paused()

    def pause(self, source: str) -> ControlSummary:
        """Store the pause; the bot reads it before every decision."""
        state = self.control.pause(source, reason="requested from the dashboard")
        return {"message": "Trading paused: no new trades will open.", **state}

    def resume(self, source: str) -> ControlSummary:
        """Store the resume (un-pause; a tripped risk breaker is not cleared by this)."""
        state = self.control.resume(source)
        return {"message": "Trading resumed (no longer paused).", **state}

    def flatten(self, source: str) -> ControlSummary:
        """Pause (so nothing new opens) and record a flatten request for the running bot."""
        self.control.pause(source, reason="flatten requested")
        requested_at = now_ms()
        event_id = self.repos.events.add(
            self.mode,
            FLATTEN_REQUESTED,
            "flatten requested from the dashboard",
            level="warning",
            source=source,
            details={"requested_at": requested_at},
        )
        logger.warning("flatten requested by {} (event {})", source, event_id)
        return {
            "message": (
                "Flatten requested and trading paused: no new trades will open. This dashboard "
                "runs without the bot, so it cannot trade: run `kmg flatten` on the bot's "
                "machine to close every position and cancel every order now."
            ),
            "status": "requested",
            "event_id": event_id,
            "requested_at": requested_at,
        }
