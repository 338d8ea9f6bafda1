"""Flow control for alerts: a token bucket (rate limit) and a de-duplication window.

Both take a monotonic ``clock`` returning seconds so tests can move time by hand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MonotonicClock = Callable[[], float]


class TokenBucket:
    """At most ``per_minute`` alerts a minute on average, with bursts up to ``burst``."""

    def __init__(
        self, per_minute: float, burst: int | None = None, clock: MonotonicClock = time.monotonic
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be > 0")
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, int(per_minute)))
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def try_take(self) -> bool:
        """Take one token if there is one."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def seconds_until_token(self) -> float:
        """How long until :meth:`try_take` would succeed (0 when it would now)."""
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.rate)


class Deduper:
    """Says whether a key was already let through within the last ``window`` seconds.

    Thread-safe: :meth:`AlertService.send` may be called from scheduler threads.
    """

    def __init__(
        self, window: float, clock: MonotonicClock = time.monotonic, max_keys: int = 10_000
    ) -> None:
        self.window = window
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._max_keys = max_keys
        self._lock = threading.Lock()

    def first_seen(self, key: str) -> bool:
        """True (and remember the key) unless ``key`` passed within the window."""
        if self.window <= 0:
            return True
        now = self._clock()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last < self.window:
                return False
            self._seen[key] = now
            if len(self._seen) > self._max_keys:
                self._prune(now)
            return True

    def _prune(self, now: float) -> None:
        self._seen = {k: t for k, t in self._seen.items() if now - t < self.window}
        while len(self._seen) > self._max_keys:  # still too many: forget the oldest
            self._seen.pop(next(iter(self._seen)))
