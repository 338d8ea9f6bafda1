"""The alert service: a non-blocking front door and one background worker.

``send()`` formats, de-duplicates and enqueues; it never blocks and never raises, so trading
code can call it anywhere. The worker applies the rate limit, delivers through the notifier
and records every outcome in the ``alerts`` table (database calls run in a thread too).

Statuses stored: ``queued`` → ``sent`` / ``failed`` for delivered attempts; ``suppressed``
for duplicates, rate-limited alerts (later coalesced into one digest) and alerts raised when no
target is configured ("no targets": they are still recorded so the dashboard shows them);
``dropped`` when the bounded queue was full or the service had stopped. Duplicates and drops
are tallied and written as one row per (status, reason, event) rather than one row each, so a
storm of identical alerts cannot flood the database either.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from loguru import logger

from kmg_autotrader.alerts.events import AlertEvent, AlertMessage
from kmg_autotrader.alerts.limits import Deduper, MonotonicClock, TokenBucket
from kmg_autotrader.alerts.messages import digest, format_alert, generic, is_advisor_skip
from kmg_autotrader.alerts.sender import AppriseNotifier, DeliveryReport, Notifier
from kmg_autotrader.alerts.targets import targets_from_settings
from kmg_autotrader.config import Settings
from kmg_autotrader.domain import Mode
from kmg_autotrader.domain.clock import now_ms
from kmg_autotrader.storage.repositories import AlertRepository

_IDLE_POLL = 0.5  # seconds between worker wake-ups when idle (to write tallies promptly)
_MAX_HELD_TITLES = 50


@dataclass
class AlertStats:
    """Counters since start (all alerts that reached :meth:`AlertService.send`)."""

    enqueued: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0  # duplicates and "no targets"
    rate_limited: int = 0  # held back, then coalesced into a digest
    dropped: int = 0  # queue full, or sent after stop()


@dataclass
class _Tally:
    count: int
    title: str
    dedupe_key: str


def default_dedupe_key(message: AlertMessage) -> str:
    """The key used when a message has none: its event and a hash of its text."""
    digest_ = hashlib.sha1(f"{message.title}\n{message.body}".encode()).hexdigest()[:16]
    return f"{message.event.value}:{digest_}"


class AlertService:
    """Queue + worker in front of a :class:`Notifier`; see the module docstring."""

    def __init__(
        self,
        mode: Mode | str,
        notifier: Notifier,
        repository: AlertRepository | None = None,
        *,
        queue_size: int = 256,
        per_minute: float = 20.0,
        burst: int | None = None,
        dedupe_window: float = 300.0,
        clock: MonotonicClock = time.monotonic,
    ) -> None:
        self.mode = Mode(mode)
        self.notifier = notifier
        self.repository = repository
        self.stats = AlertStats()
        self._queue: asyncio.Queue[tuple[AlertMessage, str]] = asyncio.Queue(queue_size)
        self._bucket = TokenBucket(per_minute, burst, clock)
        self._deduper = Deduper(dedupe_window, clock)
        self._lock = threading.Lock()
        self._tallies: dict[tuple[str, str, str], _Tally] = {}
        self._held_titles: list[str] = []
        self._held_total = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._worker_busy = False  # the worker is handling an item or a digest

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        repository: AlertRepository | None = None,
        *,
        notifier_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> AlertService:
        """Build the service from ``TELEGRAM_*``, ``DISCORD_WEBHOOK_URL`` and ``ALERT_URLS``."""
        targets, problems = targets_from_settings(settings)
        notifier = AppriseNotifier(targets, **(notifier_options or {}))
        for problem in (*problems, *notifier.problems):
            logger.warning("alerts: {}", problem)
        if notifier.labels:
            logger.info("alerts: sending to {}", ", ".join(notifier.labels))
        else:
            logger.info("alerts: no targets configured; alerts are only recorded")
        return cls(settings.trading_mode, notifier, repository, **options)

    # ---- the front door (any thread, never blocks, never raises) --------------------------

    def send(
        self, event: AlertEvent | str, /, *, dedupe_key: str | None = None, **fields: Any
    ) -> bool:
        """Format and enqueue an alert; True when queued (False: duplicate, full, stopped, or
        an advisor skip such as a cooldown or the hourly budget, which is not a failure)."""
        try:
            if is_advisor_skip(event, fields):
                logger.debug("no alert for an advisor skip: {}", fields.get("reason"))
                return False
            try:
                message = format_alert(event, self.mode, **fields)
            except Exception:
                message = generic(self.mode, event, fields)
            if dedupe_key is not None:
                message = replace(message, dedupe_key=dedupe_key)
            return self.send_message(message)
        except Exception as exc:  # an alert must never break the caller
            logger.warning("alert could not be queued: {}", type(exc).__name__)
            return False

    def send_message(self, message: AlertMessage) -> bool:
        """Enqueue an already formatted message (same guarantees as :meth:`send`)."""
        try:
            key = message.dedupe_key or default_dedupe_key(message)
            if not self._deduper.first_seen(key):
                self._tally("suppressed", "duplicate within the dedupe window", message, key)
                return False
            loop = self._loop
            if (
                loop is not None
                and not loop.is_closed()
                and threading.get_ident() != self._loop_thread
            ):
                # asyncio queues are not thread-safe: hand over to the loop's thread
                loop.call_soon_threadsafe(self._enqueue, message, key)
                return True
            return self._enqueue(message, key)
        except Exception as exc:
            logger.warning("alert could not be queued: {}", type(exc).__name__)
            return False

    def _enqueue(self, message: AlertMessage, key: str) -> bool:
        if self._closed:
            self._tally("dropped", "alert service stopped", message, key)
            return False
        try:
            self._queue.put_nowait((message, key))
        except asyncio.QueueFull:
            self._tally("dropped", "alert queue full", message, key)
            return False
        with self._lock:
            self.stats.enqueued += 1
        return True

    def _tally(self, status: str, reason: str, message: AlertMessage, key: str) -> None:
        with self._lock:
            if status == "dropped":
                self.stats.dropped += 1
            else:
                self.stats.suppressed += 1
            slot = (status, reason, message.event.value)
            if slot in self._tallies:
                self._tallies[slot].count += 1
            else:
                self._tallies[slot] = _Tally(1, message.title, key)

    # ---- life cycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the worker task runs."""
        return self._task is not None and not self._task.done()

    @property
    def pending(self) -> int:
        """Alerts waiting in the queue."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the worker on the running event loop (idempotent)."""
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._closed = False
        self._task = asyncio.create_task(self._run(), name="alert-worker")

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the queue is empty and tallies are written; False on timeout."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            return False
        await self._write_tallies()
        return True

    async def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout`` seconds), then stop the worker."""
        self._closed = True
        flushed = self.running and await self.flush(timeout)
        if flushed and self._held_total:  # last chance for alerts held by the rate limit
            try:
                await asyncio.wait_for(self._maybe_send_digest(force=True), timeout)
            except TimeoutError:
                logger.warning("alerts: the final digest did not go out before stopping")
        if self._task is not None:
            # let a delivery the worker started on its own (a digest) finish and record its
            # status, so nothing is left "queued" after stop() returns
            deadline = asyncio.get_running_loop().time() + timeout
            while self._worker_busy and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        while not self._queue.empty():  # left behind by a timeout (or never started)
            message, key = self._queue.get_nowait()
            self._queue.task_done()
            self._tally("dropped", "alert service stopped", message, key)
        if not flushed or self._tallies:
            try:
                await asyncio.wait_for(self._write_tallies(), 2.0)
            except TimeoutError:
                logger.warning("alerts: could not record dropped alerts before stopping")
        self._loop = None

    # ---- the worker ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            item: tuple[AlertMessage, str] | None
            try:
                item = await asyncio.wait_for(self._queue.get(), self._wake_after())
            except TimeoutError:
                item = None
            self._worker_busy = True
            try:
                if item is not None:
                    await self._process(*item)
                await self._write_tallies()
                await self._maybe_send_digest()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the worker alive whatever happens
                logger.error("alert worker error: {}: {}", type(exc).__name__, exc)
            finally:
                self._worker_busy = False
                if item is not None:
                    self._queue.task_done()

    def _wake_after(self) -> float:
        if self._held_total:
            return min(_IDLE_POLL, max(0.01, self._bucket.seconds_until_token()))
        return _IDLE_POLL

    async def _process(self, message: AlertMessage, key: str) -> None:
        if not self.notifier.labels:
            await self._record(message, key, "suppressed", error="no targets")
            with self._lock:
                self.stats.suppressed += 1
            return
        if not self._bucket.try_take() and not message.critical:
            self._held_titles = [*self._held_titles, message.title][-_MAX_HELD_TITLES:]
            self._held_total += 1
            with self._lock:
                self.stats.rate_limited += 1
            await self._record(
                message, key, "suppressed", error="rate limited; coalesced into a digest"
            )
            return
        await self._deliver(message, key)

    async def _maybe_send_digest(self, *, force: bool = False) -> None:
        if not self._held_total or not (self._bucket.try_take() or force):
            return
        message = digest(self.mode, titles=self._held_titles, total=self._held_total)
        self._held_titles, self._held_total = [], 0
        await self._deliver(message, default_dedupe_key(message))

    async def _deliver(self, message: AlertMessage, key: str) -> None:
        alert_id = await self._record(message, key, "queued")
        try:
            report = await self.notifier.deliver(message)
        except asyncio.CancelledError:  # stop() gave up waiting: don't leave it "queued"
            if alert_id is not None and self.repository is not None:
                with contextlib.suppress(Exception):
                    self.repository.set_status(alert_id, "failed", error="cancelled at shutdown")
            raise
        except Exception as exc:  # a notifier must not raise, but be sure
            report = DeliveryReport(failed={"notifier": type(exc).__name__})
        error = report.error_text()
        if report.ok:
            status, sent_at = "sent", now_ms()
            with self._lock:
                self.stats.sent += 1
            if error:
                logger.warning("alert {} partly failed: {}", message.event.value, error)
        else:
            status, sent_at = "failed", None
            with self._lock:
                self.stats.failed += 1
            logger.warning("alert {} failed: {}", message.event.value, error)
        if alert_id is not None:
            await self._store(self._set_status, alert_id, status, error, sent_at)

    # ---- records (never fatal) -------------------------------------------------------------

    async def _record(
        self, message: AlertMessage, key: str, status: str, *, error: str | None = None
    ) -> int | None:
        if self.repository is None:
            return None
        result = await self._store(
            self.repository.add,
            self.mode,
            event=message.event.value,
            title=message.title,
            body=message.body,
            status=status,
            dedupe_key=key[:128],
            error=error,
        )
        return result if isinstance(result, int) else None

    def _set_status(
        self, alert_id: int, status: str, error: str | None, sent_at: int | None
    ) -> None:
        assert self.repository is not None
        self.repository.set_status(alert_id, status, error=error, sent_at=sent_at)

    async def _store(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(func, *args, **kwargs)
        except Exception as exc:
            logger.warning("alerts: could not record an alert: {}", type(exc).__name__)
            return None

    async def _write_tallies(self) -> None:
        with self._lock:
            tallies, self._tallies = self._tallies, {}
        if self.repository is None:
            return
        for (status, reason, event), tally in tallies.items():
            await self._store(
                self.repository.add,
                self.mode,
                event=event,
                title=tally.title,
                body=f"{tally.count} alert(s) {status}: {reason}",
                status=status,
                dedupe_key=tally.dedupe_key[:128],
                error=reason,
            )
