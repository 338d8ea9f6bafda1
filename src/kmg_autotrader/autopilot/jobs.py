"""Scheduled jobs driven by the injected clock (so a replay at 300x still gets its daily
summaries): daily summary at 00:00 UTC, weekly summary on Monday 00:00 UTC, state snapshots
every N minutes, and the daily ML hook (a no-op until the trainer lands).

``tick()`` is called on every candle and by a heartbeat task; a job whose time has come runs
once, and a failing job is logged and never stops trading.

The summaries are APScheduler jobs (cron triggers, UTC) kept in an APScheduler job store:
:meth:`ScheduledJobs.persist` puts them in a ``SQLAlchemyJobStore`` on the bot's own database
(table ``apscheduler_jobs``, one job per mode and summary), so their next run time survives a
restart. APScheduler decides *when* each job is next due (its trigger) and *remembers* it (its
store); the bot's clock decides *whether* it is due now: the scheduler is started paused and
never runs anything on its own wall-clock timer. ``tick()`` reads each job, and when the bot's
clock has passed its next run time, first stores the following run time, then runs the
summary of the period that ended. So ``kmg demo`` stays deterministic on its simulated clock,
``kmg run`` follows the exchange's clock, and a bot that was down across midnight sends that
day's summary at its first tick after the restart, once (a crash while a summary is being sent
loses that one summary rather than sending it twice). Missed periods are caught up oldest
first, at most :data:`MAX_CATCH_UP` of them per job, each claimed in the store before it runs.

Snapshots (and the ``watchers`` run with them) follow their own clock in memory: one is taken
at the first tick after a start anyway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.job import Job as SchedulerJob
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from loguru import logger
from sqlalchemy.engine import Engine

from kmg_autotrader.domain.clock import Clock

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
# 1970-01-01 was a Thursday: Monday 00:00 UTC is 4 days after the epoch, modulo a week
_MONDAY_OFFSET_MS = 4 * DAY_MS
#: table of the persistent job store (APScheduler's default name; created by migration 0004)
JOBS_TABLE = "apscheduler_jobs"
#: most missed periods of one job caught up at a start (older ones are skipped, and logged)
MAX_CATCH_UP = 7

Job = Callable[[int, int], Awaitable[None]]  # (period start ms, period end ms)
Hook = Callable[[int], Awaitable[None]]  # (now ms)
Watcher = Callable[[int], Any]  # (now ms), synchronous, run with the snapshots


def day_start(ms: int) -> int:
    """00:00 UTC of the day containing ``ms``."""
    return ms - ms % DAY_MS


def week_start(ms: int) -> int:
    """Monday 00:00 UTC of the week containing ``ms``."""
    return ms - (ms - _MONDAY_OFFSET_MS) % WEEK_MS


def scheduled_summary(name: str) -> None:
    """What the stored jobs reference (a persistent store keeps a textual reference to a
    callable). Never called: the bot runs its summaries itself when its clock says so."""


async def _no_ml(_now: int) -> None:
    """The daily ML job: nothing to do until the ML trainer issue lands."""


class _BotJobStore(SQLAlchemyJobStore):
    """APScheduler's SQLAlchemy store on the bot's engine; the engine is the bot's to close."""

    def shutdown(self) -> None:
        """Leave the bot's engine open (the stock store disposes it)."""


class ClockDrivenScheduler(BaseScheduler):
    """An APScheduler scheduler that never wakes on its own: started paused, it keeps the
    jobs (stores, triggers, next run times) while :class:`ScheduledJobs` decides on the bot's
    clock which are due."""

    def shutdown(self, wait: bool = True) -> None:
        """Stop (no executor ever started a job)."""
        super().shutdown(wait)

    def wakeup(self) -> None:
        """Nothing to wake: job processing is the bot's ``tick()``."""


@dataclass(frozen=True)
class _Summary:
    name: str  # "daily" | "weekly"
    period_ms: int
    trigger: CronTrigger


_SUMMARIES = (
    _Summary("daily", DAY_MS, CronTrigger(hour=0, minute=0, second=0, timezone=UTC)),
    _Summary(
        "weekly",
        WEEK_MS,
        CronTrigger(day_of_week="mon", hour=0, minute=0, second=0, timezone=UTC),
    ),
)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


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
        self.watchers: list[Watcher] = []  # e.g. the vault's version check
        self._store: BaseJobStore = MemoryJobStore()
        self._namespace = "bot"
        self._scheduler: ClockDrivenScheduler | None = None
        self._last_snapshot: int | None = None

    def persist(self, engine: Engine, *, namespace: str) -> None:
        """Keep the summaries' next run times in ``engine``'s database (before the first
        tick); ``namespace`` (the mode) keeps PAPER's and LIVE's jobs apart."""
        if self._scheduler is not None:
            raise RuntimeError("persist() must come before the first tick")
        self._store = _BotJobStore(engine=engine, tablename=JOBS_TABLE)
        self._namespace = namespace

    def job_id(self, name: str) -> str:
        """The stored id of the ``daily`` or ``weekly`` summary job."""
        return f"{self._namespace}:{name}_summary"

    def next_run_ms(self, name: str) -> int | None:
        """When the ``daily`` or ``weekly`` summary is next due (None before the first tick)."""
        if self._scheduler is None:
            return None
        job = self._scheduler.get_job(self.job_id(name))
        return None if job is None or job.next_run_time is None else _ms(job.next_run_time)

    def _start(self, now: int) -> ClockDrivenScheduler:
        scheduler = ClockDrivenScheduler(timezone=UTC)
        scheduler.add_jobstore(self._store, "default")
        scheduler.start(paused=True)
        for summary in _SUMMARIES:
            if scheduler.get_job(self.job_id(summary.name)) is None:
                # the first period starts now: the first summary is the one after this moment
                first = summary.trigger.get_next_fire_time(None, _dt(now + 1))
                scheduler.add_job(
                    scheduled_summary,
                    summary.trigger,
                    args=[summary.name],
                    id=self.job_id(summary.name),
                    name=f"{summary.name} summary",
                    next_run_time=first,
                    misfire_grace_time=None,
                    coalesce=False,
                )
        self._scheduler = scheduler
        return scheduler

    async def tick(self) -> list[str]:
        """Run every job that is due now; return the names of the jobs that ran."""
        now = self.clock.now_ms()
        ran: list[str] = []
        scheduler = self._scheduler or self._start(now)
        for summary in _SUMMARIES:
            runner = self.daily if summary.name == "daily" else self.weekly
            due, following = self._due(scheduler, summary, now)
            for index, end in enumerate(due):
                # store the next run time first: a restart must not send this one again
                after = _dt(due[index + 1]) if index + 1 < len(due) else following
                scheduler.modify_job(self.job_id(summary.name), next_run_time=after)
                if await self._run(f"{summary.name} summary", runner(end - summary.period_ms, end)):
                    ran.append(summary.name)
            if (
                summary.name == "daily"
                and "daily" in ran
                and await self._run("daily ML job", self.ml_daily(now))
            ):
                ran.append("ml")
        snap_now = self.snapshot_clock.now_ms()
        if self._last_snapshot is None or snap_now - self._last_snapshot >= self.snapshot_every_ms:
            self._last_snapshot = snap_now
            for watcher in self.watchers:
                try:
                    watcher(now)
                except Exception as exc:  # a watcher must never stop trading
                    logger.exception("scheduled watcher failed: {}", exc)
            if await self._run("snapshot", self.snapshot(now)):
                ran.append("snapshot")
        return ran

    def _due(
        self, scheduler: BaseScheduler, summary: _Summary, now: int
    ) -> tuple[list[int], datetime | None]:
        """End times (ms) of the periods of ``summary`` due at ``now``, oldest first, and the
        run time that follows them."""
        job: SchedulerJob | None = scheduler.get_job(self.job_id(summary.name))
        if job is None or job.next_run_time is None or _ms(job.next_run_time) > now:
            return [], None
        due: list[int] = []
        fire: datetime | None = job.next_run_time
        while fire is not None and _ms(fire) <= now:
            due.append(_ms(fire))
            fire = summary.trigger.get_next_fire_time(fire, _dt(_ms(fire) + 1))
        if len(due) > MAX_CATCH_UP:
            logger.warning(
                "{} summaries missed while the bot was down: {} skipped, the last {} sent",
                summary.name,
                len(due) - MAX_CATCH_UP,
                MAX_CATCH_UP,
            )
            due = due[-MAX_CATCH_UP:]
        return due, fire

    @staticmethod
    async def _run(name: str, job: Awaitable[None]) -> bool:
        try:
            await job
        except Exception as exc:  # a failing job must never stop trading
            logger.exception("scheduled job {} failed: {}", name, exc)
            return False
        return True
