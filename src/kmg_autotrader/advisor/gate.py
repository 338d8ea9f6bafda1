"""When the LLM may be asked: the hourly call budget and the per-symbol cooldown.

Both are read from the audit log (calls that reached the LLM), so they hold across restarts,
and both use the injected clock, so a backtest on simulated time budgets simulated hours.
"""

from __future__ import annotations

from typing import Protocol

from kmg_autotrader.domain.clock import Clock

HOUR_MS = 3_600_000


class CallCounter(Protocol):
    """The part of the audit log the gate reads (``AdvisorCallRepository`` fits)."""

    def count_since(self, since_ms: int, *, symbol: str | None = None) -> int:
        """Calls sent to an LLM since ``since_ms`` (optionally for one symbol)."""
        ...


class CallGate:
    """Rolling one-hour budget plus a per-symbol cooldown."""

    def __init__(
        self, calls: CallCounter, clock: Clock, *, per_hour: int, cooldown_minutes: int
    ) -> None:
        self._calls = calls
        self._clock = clock
        self.per_hour = per_hour
        self.cooldown_ms = cooldown_minutes * 60_000

    def calls_last_hour(self) -> int:
        """Calls sent in the rolling hour that ends now."""
        return self._calls.count_since(self._clock.now_ms() - HOUR_MS + 1)

    def blocked(self, symbol: str, *, pending: int = 0, pending_symbol: int = 0) -> str | None:
        """None when a call may be made now, else ``"<fallback>: <why>"``.

        ``pending`` / ``pending_symbol``: calls in flight (all symbols / this symbol) that are
        not in the audit log yet.
        """
        used = self.calls_last_hour() + pending
        if used >= self.per_hour:
            return f"budget_exhausted: {used} of {self.per_hour} calls in the last hour"
        if self.cooldown_ms > 0:
            if pending_symbol > 0:
                return f"cooldown: {symbol} is being reviewed right now"
            since = self._clock.now_ms() - self.cooldown_ms + 1
            if self._calls.count_since(since, symbol=symbol) > 0:
                minutes = self.cooldown_ms // 60_000
                return f"cooldown: {symbol} was reviewed less than {minutes} min ago"
        return None
