"""Clocks. Stages are handed a clock so a backtest can run on simulated time."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Anything that says what time it is, in UTC epoch milliseconds."""

    def now_ms(self) -> int:
        """Current time in UTC epoch ms."""
        ...


class WallClock:
    """The real clock."""

    def now_ms(self) -> int:
        """Current wall time in UTC epoch ms."""
        return time.time_ns() // 1_000_000


class SimulatedClock:
    """A clock a replay moves forward by hand (backtests, demo, tests)."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        """The simulated time in UTC epoch ms."""
        return self._now

    def set(self, now_ms: int) -> None:
        """Move the clock; it never goes backwards."""
        if now_ms < self._now:
            raise ValueError(f"simulated clock cannot go back from {self._now} to {now_ms}")
        self._now = now_ms


def now_ms() -> int:
    """Wall-clock time in UTC epoch ms (for record timestamps outside a simulated run)."""
    return time.time_ns() // 1_000_000


def ms_to_datetime(ms: int) -> datetime:
    """UTC datetime for an epoch-ms timestamp."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def ms_to_iso(ms: int) -> str:
    """ISO 8601 UTC text for an epoch-ms timestamp (e.g. ``2024-01-01T00:05:00Z``)."""
    return ms_to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%SZ")
