"""Reaching the exchange at start-up (``kmg run``): retried with backoff while it cannot be
reached, and said so — in the log, as an error event the dashboard's health reads, and as an
alert — until it answers or :attr:`Settings.exchange_unreachable_exit_seconds` pass (then
:class:`ExchangeUnreachableError`: ``kmg run`` exits 1 so a supervisor can act).

Only transient failures (network, timeouts, maintenance, rate limits) are retried: a symbol the
exchange does not list or refused keys will not get better by waiting, and stop the start now.
The bot never trades made-up or sample data instead (that is ``kmg demo``'s job).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from loguru import logger

from kmg_autotrader.config import Settings
from kmg_autotrader.domain import Mode
from kmg_autotrader.exchange.errors import ExchangeAdapterError
from kmg_autotrader.storage.repositories import Repositories

T = TypeVar("T")

# Seconds between start-up attempts: doubling from 2 s, then every 60 s.
CONNECT_BACKOFF_S = (2.0, 4.0, 8.0, 16.0, 32.0, 60.0)
# A still unreachable exchange is recorded (event, alert) again at most this often.
REPORT_EVERY_S = 600.0
UNREACHABLE = "exchange_unreachable"
CONNECTED = "exchange_connected"


class ExchangeUnreachableError(RuntimeError):
    """The exchange stayed unreachable at start-up for longer than allowed."""


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return CONNECT_BACKOFF_S[min(attempt, len(CONNECT_BACKOFF_S)) - 1]


class StartupReport:
    """Tells people that the exchange cannot be reached (and when it can again).

    The alert service and, with ``web``, a dashboard reading health from the records (as ``kmg
    web`` does) run only while the exchange is unreachable: the bot's own take over once it is
    reached.
    """

    def __init__(self, settings: Settings, repos: Repositories, mode: Mode, *, web: bool) -> None:
        self.settings = settings
        self.repos = repos
        self.mode = mode
        self.web = web
        self.alerts: Any = None
        self._web_task: asyncio.Task[None] | None = None
        self._reported_at: float | None = None

    async def unreachable(self, exc: Exception, attempt: int, delay: float, down_s: float) -> None:
        """Attempt ``attempt`` failed with ``exc``; the next one is in ``delay`` s."""
        where = self.settings.exchange_api_url or self.settings.exchange
        message = (
            f"exchange {self.settings.exchange} unreachable ({where}): {exc}; retrying in "
            f"{delay:g} s (attempt {attempt}, unreachable for {down_s:.0f} s)"
        )
        logger.warning(message)
        now = time.monotonic()
        if self._reported_at is not None and now - self._reported_at < REPORT_EVERY_S:
            return
        self._reported_at = now
        self.repos.events.add(self.mode, UNREACHABLE, message, level="error", source="autopilot")
        if self.alerts is None:
            from kmg_autotrader.alerts import AlertService

            self.alerts = AlertService.from_settings(self.settings, self.repos.alerts)
            self.alerts.start()
        self.alerts.send(
            "feed_degraded", feed="exchange", status="unreachable, retrying", detail=message
        )
        if self.web and self._web_task is None:
            self._start_web()

    async def connected(self, down_s: float) -> None:
        """The exchange answered after being unreachable for ``down_s`` seconds."""
        message = f"exchange {self.settings.exchange} reachable again after {down_s:.0f} s"
        logger.info(message)
        self.repos.events.add(self.mode, CONNECTED, message, source="autopilot")
        if self.alerts is not None:
            self.alerts.send("feed_degraded", feed="exchange", status="reachable", detail=message)

    def _start_web(self) -> None:
        from kmg_autotrader.webui.server import serve

        self._web_task = asyncio.create_task(serve(self.settings, self.repos), name="kmg-web-start")

    async def close(self) -> None:
        """Stop the start-up dashboard and flush the alerts (each bounded)."""
        if self._web_task is not None:
            self._web_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._web_task, timeout=5)
            self._web_task = None
        if self.alerts is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.alerts.stop(timeout=2), timeout=4)
            self.alerts = None


async def connect_with_retry(
    attempt: Callable[[], Awaitable[T]],
    report: StartupReport,
    *,
    give_up_after_s: float,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> T:
    """``attempt()``'s result, retried with :func:`backoff` while it fails transiently.

    Raises :class:`ExchangeUnreachableError` once the exchange has been unreachable for
    ``give_up_after_s`` seconds (0: never gives up); a permanent error is raised at once.
    """
    started = time.monotonic()
    failures = 0
    try:
        while True:
            try:
                result = await attempt()
            except ExchangeAdapterError as exc:
                if not exc.transient:
                    raise
                failures += 1
                down_s = time.monotonic() - started
                if give_up_after_s and down_s >= give_up_after_s:
                    raise ExchangeUnreachableError(
                        f"{report.settings.exchange} "
                        f"({report.settings.exchange_api_url or 'its public API'}) unreachable "
                        f"for {down_s:.0f} s (EXCHANGE_UNREACHABLE_EXIT_SECONDS="
                        f"{give_up_after_s:g}): {exc}"
                    ) from exc
                delay = backoff(failures)
                if give_up_after_s:
                    delay = max(0.0, min(delay, give_up_after_s - down_s))
                await report.unreachable(exc, failures, delay, down_s)
                await sleep(delay)
                continue
            if failures:
                await report.connected(time.monotonic() - started)
            return result
    finally:
        await report.close()
