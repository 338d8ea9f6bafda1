"""The events that raise an alert, and the message value the service sends."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AlertEvent(StrEnum):
    """Everything the bot alerts about. Values are stored in ``alerts.event``."""

    ORDER_FILLED = "order_filled"
    POSITION_EXITED = "position_exited"
    TRADE_ERROR = "trade_error"
    LLM_FAILURE = "llm_failure"
    RISK_REJECTION = "risk_rejection"
    BREAKER_TRIPPED = "breaker_tripped"
    KILL_SWITCH = "kill_switch"
    FEED_DEGRADED = "feed_degraded"
    DAILY_SUMMARY = "daily_summary"
    WEEKLY_SUMMARY = "weekly_summary"
    SYSTEM = "system"  # start-up, shutdown and other plain notices
    DIGEST = "digest"  # alerts held back by the rate limit, sent as one message


class Severity(StrEnum):
    """How loud an alert is; maps onto Apprise's notify types."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"


# These are never held back by the rate limit: a tripped breaker must reach the owner.
CRITICAL_EVENTS = frozenset({AlertEvent.BREAKER_TRIPPED, AlertEvent.KILL_SWITCH})


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """One formatted alert, ready to send and to store."""

    event: AlertEvent
    title: str
    body: str
    severity: Severity = Severity.INFO
    dedupe_key: str | None = None

    @property
    def critical(self) -> bool:
        """True for events that bypass the rate limit."""
        return self.event in CRITICAL_EVENTS
