"""Venue time: the wall clock at start, then running at ``speed`` × wall time (or by hand).

The venue replays recorded candles as if they were happening now. Its clock says what "now" is
for every dialect, the matching engines and the replay loop. ``speed=0`` is manual: nothing
moves until a test (or the control endpoint) calls :meth:`VenueClock.advance_to` or
:meth:`VenueClock.step`, so tests are deterministic. Time never goes backwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wall_ms() -> int:
    """Wall-clock time in UTC epoch ms."""
    return time.time_ns() // 1_000_000


class VenueClock:
    """The venue's clock (UTC epoch ms).

    ``start_ms``: venue time at start (default: the wall clock). ``speed``: venue ms per wall
    ms (60 = a 5m candle every 5 s); 0 = manual. ``step_ms``: the data's base timeframe, the
    unit of :meth:`step`. ``wall``: the wall clock (tests may pass their own).
    """

    def __init__(
        self,
        start_ms: int | None = None,
        speed: float = 1.0,
        step_ms: int = 300_000,
        wall: Callable[[], int] = wall_ms,
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0, not {speed}")
        if step_ms <= 0:
            raise ValueError(f"step_ms must be positive, not {step_ms}")
        self._wall = wall
        self.speed = float(speed)
        self.step_ms = int(step_ms)
        self.start_ms = wall() if start_ms is None else int(start_ms)
        self._anchor_venue = self.start_ms  # venue time at _anchor_wall
        self._anchor_wall = wall()
        self._last = self.start_ms  # the latest time handed out: never go below it

    @property
    def manual(self) -> bool:
        """True when only :meth:`advance_to` / :meth:`step` move the clock (``speed=0``)."""
        return self.speed == 0

    def now_ms(self) -> int:
        """The venue's current time in UTC epoch ms (monotonic)."""
        if not self.manual:
            elapsed = self._wall() - self._anchor_wall
            now = self._anchor_venue + int(elapsed * self.speed)
            if now > self._last:
                self._last = now
        return self._last

    def advance_to(self, ms: int) -> int:
        """Move venue time forward to ``ms`` (an earlier ``ms`` is refused); returns now.

        Also allowed at ``speed > 0``: a jump forward, after which time keeps running.
        """
        current = self.now_ms()
        if ms < current:
            raise ValueError(f"venue time cannot go back from {current} to {ms}")
        self._last = int(ms)
        self._anchor_venue = self._last
        self._anchor_wall = self._wall()
        return self._last

    def step(self, count: int = 1) -> int:
        """Advance to the ``count``-th next boundary of the base timeframe; returns now."""
        if count < 1:
            raise ValueError(f"step count must be >= 1, not {count}")
        now = self.now_ms()
        boundary = (now // self.step_ms + count) * self.step_ms
        return self.advance_to(boundary)

    def wall_seconds_until(self, ms: int) -> float | None:
        """Wall seconds until venue time reaches ``ms`` (None when manual: it never will alone)."""
        if self.manual:
            return None
        return max(0.0, (ms - self.now_ms()) / self.speed / 1000.0)
