"""When the LLM may be asked: the hourly request budget and the per-symbol cooldown.

Every HTTP request that leaves counts — each retry, each repair, and calls that got no answer
(a dead or hanging server is the case a budget is for). The audit log holds one row per
consultation and counts only the answered ones, which is what survives a restart; this process
also keeps its own ledger of every request it sent, and the gate adds the two without counting
an answered call twice. Both use the injected clock, so a backtest budgets simulated hours.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Protocol

from kmg_autotrader.domain.clock import Clock

HOUR_MS = 3_600_000


class CallCounter(Protocol):
    """The part of the audit log the gate reads (``AdvisorCallRepository`` fits)."""

    def count_since(self, since_ms: int, *, symbol: str | None = None) -> int:
        """Answered calls recorded since ``since_ms`` (optionally for one symbol)."""
        ...


class BudgetExhausted(Exception):
    """Raised before a request would exceed the hourly budget; nothing was sent."""


class CallGate:
    """Rolling one-hour request budget plus a per-symbol cooldown."""

    def __init__(
        self, calls: CallCounter, clock: Clock, *, per_hour: int, cooldown_minutes: int
    ) -> None:
        self._calls = calls
        self._clock = clock
        self.per_hour = per_hour
        self.cooldown_ms = cooldown_minutes * 60_000
        # (time, symbol) of every HTTP request this process sent, and of the audit rows it
        # wrote that the log counts (so those calls are not counted twice)
        self._sent: deque[tuple[int, str]] = deque()
        self._logged: deque[tuple[int, str]] = deque()
        # status() may be read from the dashboard's thread while the loop appends
        self._lock = threading.Lock()

    # ---- what was used -------------------------------------------------------------------------

    def _prune(self) -> None:
        oldest = self._clock.now_ms() - max(HOUR_MS, self.cooldown_ms)
        for ledger in (self._sent, self._logged):
            while ledger and ledger[0][0] <= oldest:
                ledger.popleft()

    @staticmethod
    def _since(ledger: deque[tuple[int, str]], since_ms: int, symbol: str | None = None) -> int:
        return sum(1 for at, sym in ledger if at >= since_ms and (symbol is None or sym == symbol))

    def _used_since(self, since_ms: int, symbol: str | None = None) -> int:
        logged = self._calls.count_since(since_ms, symbol=symbol)
        with self._lock:
            self._prune()
            own_logged = self._since(self._logged, since_ms, symbol)
            sent = self._since(self._sent, since_ms, symbol)
        # rows written by an earlier process, plus every request this one sent
        return max(0, logged - own_logged) + sent

    def calls_last_hour(self) -> int:
        """HTTP requests sent in the rolling hour that ends now."""
        return self._used_since(self._clock.now_ms() - HOUR_MS + 1)

    # ---- decisions -------------------------------------------------------------------------------

    def _over_budget(self) -> str | None:
        used = self.calls_last_hour()
        if used >= self.per_hour:
            return f"{used} of {self.per_hour} requests in the last hour"
        return None

    def blocked(self, symbol: str, *, pending_symbol: int = 0) -> str | None:
        """None when a consultation may start now, else ``"<fallback>: <why>"``.

        ``pending_symbol``: reviews of ``symbol`` in flight (they may not have sent yet).
        """
        over = self._over_budget()
        if over is not None:
            return f"budget_exhausted: {over}"
        if self.cooldown_ms > 0:
            if pending_symbol > 0:
                return f"cooldown: {symbol} is being reviewed right now"
            since = self._clock.now_ms() - self.cooldown_ms + 1
            if self._used_since(since, symbol) > 0:
                minutes = self.cooldown_ms // 60_000
                return f"cooldown: {symbol} was asked about less than {minutes} min ago"
        return None

    def take(self, symbol: str) -> None:
        """Account for one HTTP request about to leave for ``symbol``; raises
        :class:`BudgetExhausted` (and counts nothing) when the budget is used up.

        Check and count happen with no await in between, so concurrent reviews on one event
        loop cannot both take the last request.
        """
        over = self._over_budget()
        if over is not None:
            raise BudgetExhausted(over)
        with self._lock:
            self._sent.append((self._clock.now_ms(), symbol))

    def logged(self, symbol: str, created_at: int) -> None:
        """An audit row the log counts (an answered call) was written at ``created_at``."""
        with self._lock:
            self._logged.append((created_at, symbol))
