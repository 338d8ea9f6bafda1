"""Token buckets per exchange and endpoint class, on top of ccxt's own limiter.

ccxt spaces requests evenly; this adds a budget per kind of call (orders, queries), so a burst
of cancels during a flatten cannot starve the order-status look-ups that make retries safe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """``rate`` tokens per second, at most ``capacity`` saved up."""

    rate: float
    capacity: float


DEFAULT_BUCKETS: Mapping[str, BucketSpec] = MappingProxyType(
    {
        "order": BucketSpec(rate=5.0, capacity=10.0),  # create / cancel
        "query": BucketSpec(rate=10.0, capacity=20.0),  # fetch order / trades / balance
        "market_data": BucketSpec(rate=10.0, capacity=20.0),  # book / ticker
    }
)


class TokenBucket:
    """A classic token bucket with an injectable time source and sleep (for tests)."""

    def __init__(
        self,
        spec: BucketSpec,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.spec = spec
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = spec.capacity
        self._stamp = monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._monotonic()
        self._tokens = min(self.spec.capacity, self._tokens + (now - self._stamp) * self.spec.rate)
        self._stamp = now

    async def acquire(self, tokens: float = 1.0) -> float:
        """Wait until ``tokens`` are available and take them; returns seconds waited."""
        waited = 0.0
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= tokens:
                    self._tokens -= tokens
                    return waited
                delay = (tokens - self._tokens) / self.spec.rate
                waited += delay
                await self._sleep(delay)


class RateLimiter:
    """One bucket per ``(exchange, endpoint class)``."""

    def __init__(
        self,
        exchange_id: str,
        buckets: Mapping[str, BucketSpec] = DEFAULT_BUCKETS,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.exchange_id = exchange_id
        self._buckets = {
            name: TokenBucket(spec, monotonic=monotonic, sleep=sleep)
            for name, spec in buckets.items()
        }

    async def acquire(self, endpoint_class: str) -> float:
        """Take one token for ``endpoint_class`` (unknown classes are not limited)."""
        bucket = self._buckets.get(endpoint_class)
        return await bucket.acquire() if bucket is not None else 0.0


class NoRateLimit:
    """A limiter that never waits (backtests)."""

    async def acquire(self, endpoint_class: str) -> float:
        """Return at once."""
        return 0.0
