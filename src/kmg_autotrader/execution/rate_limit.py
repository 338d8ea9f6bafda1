"""Rate limiting of the bot's calls to an exchange, on top of ccxt's own limiter.

ccxt (``enableRateLimit``) spaces the requests of one client by the exchange's ``rateLimit``.
On top of it every order path (create, cancel, order look-ups, order and trade lists, balances,
the book a limit entry is priced from) goes through one :class:`RateLimiter` per exchange
(:class:`~kmg_autotrader.execution.ccxt_orders.CcxtExchange` holds it):

* an ``aiolimiter.AsyncLimiter`` (a leaky bucket) per kind of call, so a burst of cancels during
  a flatten cannot starve the order look-ups that make retries safe;
* one shared pause: when the exchange answers 429/418 (or Kraken's rate-limit and lockout
  errors) :meth:`RateLimiter.back_off` is told the ``Retry-After`` and every call, of every
  kind, waits it out before anything else is sent; without a ``Retry-After`` the pause doubles
  from ``base_backoff`` with each refusal in a row. A rate-limited exchange is never hammered.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from aiolimiter import AsyncLimiter
from loguru import logger


@dataclass(frozen=True, slots=True)
class RateSpec:
    """At most ``max_rate`` calls per ``time_period`` seconds (a burst of ``max_rate``)."""

    max_rate: float
    time_period: float = 1.0


DEFAULT_RATES: Mapping[str, RateSpec] = MappingProxyType(
    {
        "order": RateSpec(10, 1.0),  # create / cancel (Binance: 10 orders per second)
        "query": RateSpec(20, 1.0),  # order look-ups, order and trade lists, balance
        "market_data": RateSpec(20, 1.0),  # book / ticker
    }
)

_BANNED_UNTIL = re.compile(r"banned until (\d{13})")


def retry_after_seconds(headers: Mapping[str, Any] | None, message: str = "") -> float | None:
    """The wait an exchange asked for: the ``Retry-After`` header (seconds), else Binance's
    "IP banned until <ms>" in the error text; None when it gave none."""
    for key, value in (headers or {}).items():
        if str(key).lower() == "retry-after":
            try:
                return max(float(value), 0.0)
            except (TypeError, ValueError):
                break  # an HTTP date: rare; the exponential back-off applies
    match = _BANNED_UNTIL.search(message)
    if match:
        return max(int(match.group(1)) / 1000 - time.time(), 0.0)
    return None


class RateLimiter:
    """Leaky buckets per kind of call plus a shared pause after rate-limit answers.

    ``monotonic`` and ``sleep`` drive the pause (tests inject them); the buckets run on the
    event loop's clock (aiolimiter's).
    """

    def __init__(
        self,
        exchange_id: str,
        rates: Mapping[str, RateSpec] = DEFAULT_RATES,
        *,
        base_backoff: float = 1.0,
        max_backoff: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.exchange_id = exchange_id
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self._monotonic = monotonic
        self._sleep = sleep
        self._buckets = {
            name: AsyncLimiter(spec.max_rate, spec.time_period) for name, spec in rates.items()
        }
        self.paused_until = 0.0
        self.strikes = 0  # rate-limit answers in a row
        self.back_offs = 0  # every one since start (for health and tests)

    async def acquire(self, endpoint_class: str) -> float:
        """Wait out a running pause, then take room in ``endpoint_class``'s bucket (unknown
        classes only wait the pause); returns the seconds waited."""
        start = self._monotonic()
        while (left := self.paused_until - self._monotonic()) > 0:
            await self._sleep(left)
        bucket = self._buckets.get(endpoint_class)
        if bucket is not None:
            await bucket.acquire()
        return self._monotonic() - start

    def back_off(self, retry_after: float | None) -> float:
        """The exchange refused a call for its rate: pause every call ``retry_after`` seconds,
        or (none given) ``base_backoff`` doubled per refusal in a row; returns the pause."""
        self.strikes += 1
        self.back_offs += 1
        if retry_after is not None and retry_after > 0:
            wait = min(retry_after, self.max_backoff)
        else:
            wait = min(self.base_backoff * 2 ** (self.strikes - 1), self.max_backoff)
        self.paused_until = max(self.paused_until, self._monotonic() + wait)
        logger.warning(
            "{}: rate limited (retry after {}); every call waits {:.1f} s",
            self.exchange_id,
            retry_after,
            wait,
        )
        return wait

    def succeeded(self) -> None:
        """A call went through: the next refusal starts the back-off afresh."""
        self.strikes = 0


class NoRateLimit:
    """A limiter that never waits (backtests, the paper exchange)."""

    async def acquire(self, endpoint_class: str) -> float:
        """Return at once."""
        return 0.0
