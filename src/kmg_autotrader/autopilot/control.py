"""Pause and resume: trading stops, data keeps flowing. Stored, so every process agrees.

The state lives in ``risk_state`` under the mode-scoped key ``control`` as
``{"paused": bool, "by": source, "at": ms, "reason": text}``; the dashboard (even when started
alone with ``kmg web``) and the chat write it through the same functions, and the running bot
reads it before every decision.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from kmg_autotrader.domain import Mode
from kmg_autotrader.domain.clock import now_ms
from kmg_autotrader.storage.repositories import RiskStateRepository

CONTROL_KEY = "control"


class TradingControl:
    """Pause/resume for one mode, persisted in the database."""

    def __init__(self, state: RiskStateRepository, mode: Mode) -> None:
        self.state = state
        self.mode = mode

    def status(self) -> dict[str, Any]:
        """The stored control state (not paused when nothing was ever stored)."""
        return self.state.get(self.mode, CONTROL_KEY) or {"paused": False}

    def is_paused(self) -> bool:
        """True while new trading decisions are suspended."""
        return bool(self.status().get("paused", False))

    def pause(self, source: str, reason: str = "") -> dict[str, Any]:
        """Stop taking new trades (open positions keep their stops; data keeps flowing)."""
        value = {"paused": True, "by": source, "at": now_ms(), "reason": reason}
        self.state.set(self.mode, CONTROL_KEY, value)
        logger.warning("trading paused by {}{}", source, f": {reason}" if reason else "")
        return value

    def resume(self, source: str) -> dict[str, Any]:
        """Take new trades again."""
        value = {"paused": False, "by": source, "at": now_ms(), "reason": ""}
        self.state.set(self.mode, CONTROL_KEY, value)
        logger.info("trading resumed by {}", source)
        return value
