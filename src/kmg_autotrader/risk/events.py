"""Events the risk manager raises (breaker tripped, kill-switch, cleared) for alerts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RiskEventKind(StrEnum):
    """Kinds of risk events. The first two match ``alerts.AlertEvent`` values on purpose."""

    BREAKER_TRIPPED = "breaker_tripped"
    KILL_SWITCH = "kill_switch"
    BREAKER_CLEARED = "breaker_cleared"
    KILL_SWITCH_CLEARED = "kill_switch_cleared"


#: The kinds a person's clear raises (stored at level ``info``; the others are ``critical``).
CLEARED_KINDS = frozenset({RiskEventKind.BREAKER_CLEARED, RiskEventKind.KILL_SWITCH_CLEARED})


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """Something the owner must hear about. ``flatten`` asks the caller to close every position."""

    kind: RiskEventKind
    message: str
    at_ms: int
    flatten: bool = False
    details: dict[str, Any] = field(default_factory=dict)


RiskEventHandler = Callable[[RiskEvent], None]
