"""The exchange's clock as the bot sees it: server time, extrapolated between syncs.

A bot that trades on an exchange's candles must judge "has this candle closed?" and "is this
decision late?" by the exchange's time, not its own: on a real exchange the two differ by a
small offset, and a local venue replaying history at ``--speed 60`` runs sixty times faster
than the wall. :class:`ExchangeClock` samples the server time (ccxt ``fetch_time``) now and
then, measures how fast it runs against the local monotonic clock (a rate within
``RATE_SNAP`` of 1 is taken as exactly 1: a real exchange), and extrapolates in between. It
never goes backwards, and never reads earlier than a timestamp the exchange has already shown
(``observe``), so a candle that the stream calls closed is never "in the future".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable

from loguru import logger

RATE_SNAP = 0.05  # |rate - 1| below this is network jitter: the exchange runs in real time
MIN_BASELINE_S = 0.5  # seconds between the samples a rate is measured over, at least
SAMPLES = 6  # the rate is measured over the last few samples (a venue may change speed)


class ExchangeClock:
    """UTC epoch ms on the exchange's clock; see the module docstring.

    ``fetch_time`` returns the server time in ms; ``monotonic`` (seconds) is injectable for
    tests. Call :meth:`start` once (two samples, ``probe_s`` apart), then run :meth:`run` as a
    background task to keep it in step. If the server time cannot be read, it falls back to
    the local wall clock (offset 0, rate 1) and says so once.
    """

    def __init__(
        self,
        fetch_time: Callable[[], Awaitable[int]],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        probe_s: float = 1.0,
        interval_s: float = 10.0,
    ) -> None:
        self._fetch_time = fetch_time
        self._monotonic = monotonic
        self._wall_ms = wall_ms
        self.probe_s = probe_s
        self.interval_s = interval_s
        self._samples: deque[tuple[float, int]] = deque(maxlen=SAMPLES)
        self.rate = 1.0
        self._floor = 0  # the latest exchange timestamp seen, or time already returned

    # ---- reading ---------------------------------------------------------------------------

    def now_ms(self) -> int:
        """The exchange's time now (never earlier than a value returned or observed before)."""
        if self._samples:
            at, server = self._samples[-1]
            estimate = server + int((self._monotonic() - at) * 1000 * self.rate)
        else:
            estimate = self._wall_ms()
        if estimate < self._floor:
            return self._floor
        self._floor = estimate
        return estimate

    def observe(self, exchange_ms: int) -> None:
        """The exchange has shown ``exchange_ms`` (a candle's close, a tick): now is not before."""
        if exchange_ms > self._floor:
            self._floor = exchange_ms

    @property
    def offset_ms(self) -> int:
        """Exchange time minus local wall time (positive: the exchange is ahead)."""
        return self.now_ms() - self._wall_ms()

    # ---- syncing ---------------------------------------------------------------------------

    async def sync(self) -> bool:
        """Take one sample of the server time; False when it could not be read."""
        try:
            server = await self._fetch_time()
        except Exception as exc:  # any failure: keep extrapolating from what we have
            logger.warning("exchange clock: server time not available ({})", exc)
            return False
        # stamped on arrival, not mid-call: ccxt's rate limiter may hold the request before it
        # leaves, and the server reads its clock just before answering
        self._samples.append((self._monotonic(), int(server)))
        self._measure_rate()
        return True

    def _measure_rate(self) -> None:
        (first_at, first_server), (last_at, last_server) = self._samples[0], self._samples[-1]
        span = last_at - first_at
        if span < MIN_BASELINE_S:
            return
        rate = max((last_server - first_server) / (span * 1000), 0.0)
        self.rate = 1.0 if abs(rate - 1.0) < RATE_SNAP else rate

    async def start(self) -> None:
        """Two samples ``probe_s`` apart: the offset and the rate before trading starts."""
        if not await self.sync():
            logger.warning("exchange clock: using the local clock")
            return
        await asyncio.sleep(self.probe_s)
        await self.sync()
        if self.rate != 1.0:
            logger.info(
                "exchange clock runs at {:.2f}x real time (a replaying venue); following it",
                self.rate,
            )
        else:
            logger.info("exchange clock: offset {} ms from the local clock", self.offset_ms)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Re-sync every ``interval_s`` until cancelled or ``stop`` is set."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
            if not stop.is_set():
                await self.sync()
