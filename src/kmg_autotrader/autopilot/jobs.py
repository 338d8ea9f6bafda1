"""Scheduled jobs driven by the injected clock (so a replay at 300x still gets its daily
summaries): daily summary at 00:00 UTC, weekly summary on Monday 00:00 UTC, state snapshots
every N minutes, and the daily ML hook (a no-op until the trainer lands).

``tick()`` is called on every candle and by a heartbeat task; a job whose time has come runs
once, and a failing job is logged and never stops trading.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from loguru import logger

from kmg_autotrader.domain.clock import Clock

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
# 1970-01-01 was a Thursday: Monday 00:00 UTC is 4 days after the epoch, modulo a week
_MONDAY_OFFSET_MS = 4 * DAY_MS

Job = Callable[[int, int], Awaitable[None]]  # (period start ms, period end ms)
Hook = Callable[[int], Awaitable[None]]  # (now ms)


def day_start(ms: int) -> int:
    """00:00 UTC of the day containing ``ms``."""
    return ms - ms % DAY_MS


def week_start(ms: int) -> int:
    """Monday 00:00 UTC of the week containing ``ms``."""
    return ms - (ms - _MONDAY_OFFSET_MS) % WEEK_MS


@dataclass
class _Last:
    day: int | None = None
    week: int | None = None
    snapshot: int | None = None


async def _no_ml(_now: int) -> None:
    """The daily ML job: nothing to do until the ML trainer issue lands."""


class ScheduledJobs:
    """Runs the bot's periodic jobs when the clock crosses their boundaries."""

    def __init__(
        self,
        clock: Clock,
        *,
        daily: Job,
        weekly: Job,
        snapshot: Hook,
        snapshot_every_ms: int = 15 * 60_000,
        ml_daily: Hook = _no_ml,
        snapshot_clock: Clock | None = None,
    ) -> None:
        self.clock = clock
        # snapshots follow the wall clock in a fast replay (one per 15 replayed minutes would
        # be hundreds per real minute); summaries follow the market's clock
        self.snapshot_clock = snapshot_clock or clock
        self.daily = daily
        self.weekly = weekly
        self.snapshot = snapshot
        self.ml_daily = ml_daily
        self.snapshot_every_ms = snapshot_every_ms
        self._last = _Last()

    async def tick(self) -> list[str]:
        """Run every job that is due now; return the names of the jobs that ran."""
        now = self.clock.now_ms()
        ran: list[str] = []
        today, this_week = day_start(now), week_start(now)
        if self._last.day is None:
            self._last.day, self._last.week = today, this_week
        if today > self._last.day:
            previous = self._last.day
            self._last.day = today
            if await self._run("daily summary", self.daily(previous, today)):
                ran.append("daily")
            if await self._run("daily ML job", self.ml_daily(now)):
                ran.append("ml")
        if self._last.week is not None and this_week > self._last.week:
            previous = self._last.week
            self._last.week = this_week
            if await self._run("weekly summary", self.weekly(previous, this_week)):
                ran.append("weekly")
        snap_now = self.snapshot_clock.now_ms()
        if self._last.snapshot is None or snap_now - self._last.snapshot >= self.snapshot_every_ms:
            self._last.snapshot = snap_now
            if await self._run("snapshot", self.snapshot(now)):
                ran.append("snapshot")
        return ran

    @staticmethod
    async def _run(name: str, job: Awaitable[None]) -> bool:
        try:
            await job
        except Exception as exc:  # a failing job must never stop trading
            logger.exception("scheduled job {} failed: {}", name, exc)
            return False
        return True
