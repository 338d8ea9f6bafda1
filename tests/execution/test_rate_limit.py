"""Issue 18 item 5: every order path is rate-limited (aiolimiter buckets on top of ccxt's own
limiter) and a 429/418 pauses every call for the exchange's Retry-After: the bot backs off and
never hammers. The limiter's arithmetic, then the bot's real order path on the venue."""

from __future__ import annotations

import asyncio
import time

import pytest

from kmg_autotrader.execution.manager import ExecutionManager
from kmg_autotrader.execution.rate_limit import RateLimiter, RateSpec, retry_after_seconds
from kmg_autotrader.venue import Fault

from .venue_path import venue_path

CREATE = {"binance": "POST /api/v3/order", "kraken": "POST /0/private/AddOrder"}


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_buckets_space_calls_per_kind_of_call() -> None:
    limiter = RateLimiter("binance", {"order": RateSpec(5, 0.25), "query": RateSpec(5, 0.25)})
    start = time.monotonic()
    for _ in range(5):  # the burst
        await limiter.acquire("order")
    assert time.monotonic() - start < 0.1
    await limiter.acquire("query")  # its own bucket: no wait
    assert time.monotonic() - start < 0.1
    for _ in range(5):  # five more orders: a quarter second's worth of leak
        await limiter.acquire("order")
    assert time.monotonic() - start >= 0.2
    assert await limiter.acquire("unknown") < 0.05  # an unknown kind only waits a pause


async def test_back_off_honours_retry_after_then_doubles_without_one() -> None:
    t = FakeTime()
    limiter = RateLimiter("binance", {}, monotonic=t.monotonic, sleep=t.sleep, base_backoff=1)
    assert limiter.back_off(7) == 7
    assert await limiter.acquire("order") == 7 and t.slept == [7]
    assert limiter.back_off(None) == 2  # the second refusal in a row: 1 s doubled
    assert limiter.back_off(0) == 4  # "0" is no answer: keep doubling
    assert await limiter.acquire("query") == 4  # every kind waits the pause
    limiter.succeeded()
    assert limiter.back_off(None) == 1 and limiter.back_offs == 4
    limiter.back_off(10_000)
    assert limiter.paused_until - t.now == limiter.max_backoff


def test_retry_after_from_the_header_or_binances_ban_message() -> None:
    assert retry_after_seconds({"Retry-After": "3"}) == 3
    assert retry_after_seconds({"retry-after": "0.5"}) == 0.5
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None
    until = int((time.time() + 30) * 1000)
    banned = (
        f'418 {{"code":-1003,"msg":"Way too much request weight used; IP banned until {until}."}}'
    )
    assert 28 < (retry_after_seconds(None, banned) or 0) <= 30
    assert retry_after_seconds(None, "no hint") is None


@pytest.mark.parametrize("exchange", ["binance", "kraken"])
async def test_429_on_create_waits_the_retry_after_then_sends_once_more(exchange: str) -> None:
    async with venue_path(exchange) as path:
        # built as the bot's wiring builds it: no limiter argument; the exchange limits itself
        manager = ExecutionManager(
            path.exchange, path.store, clock=path.clock, config=path.manager.config
        )
        path.venue.faults.add(Fault(kind="rate_limit", endpoint="create_order", retry_after=1))
        before = sum(path.venue.requests.values())
        start = time.monotonic()
        report = await manager.execute(path.intent())
        elapsed = time.monotonic() - start
        assert report.status in ("filled", "working"), report.message
        # refused, not accepted: no look-ups, one more create after the Retry-After
        assert path.venue.requests[CREATE[exchange]] == 2
        assert sum(path.venue.requests.values()) - before == 2
        assert elapsed >= 0.95, elapsed
        assert path.exchange.limiter.back_offs == 1
        assert len(path.books()["orders"]) == 1


@pytest.mark.parametrize("exchange", ["binance", "kraken"])
async def test_ban_is_waited_out_by_every_order_path_not_hammered(exchange: str) -> None:
    async with venue_path(exchange) as path:
        report = await path.manager.execute(path.intent())
        for _ in range(3):
            if not path.manager.working:
                break
            await path.manager.poll()
        (order,) = report.orders
        seen: list[float] = []  # when each request reached the venue
        gate = path.venue.gate

        async def recording_gate(endpoint: str) -> Fault | None:
            seen.append(time.monotonic())
            return await gate(endpoint)

        path.venue.gate = recording_gate  # type: ignore[method-assign]
        # a 418 ban (Kraken: a temporary lockout) of 1 s from the next request on
        path.venue.faults.add(Fault(kind="ban", endpoint="any", retry_after=1))

        async def later_call() -> list[dict[str, object]]:
            await asyncio.sleep(0.1)  # sent while the ban runs: must wait it out
            return await path.exchange.fetch_open_orders(order.symbol)

        looked_up, listed = await asyncio.gather(
            path.manager.orders.lookup(order.client_order_id, order.symbol), later_call()
        )
        assert looked_up is not None and looked_up["clientOrderId"] == order.client_order_id
        assert listed == []
        banned_at = seen[0]
        during = [t for t in seen if t - banned_at < 0.95]
        assert len(during) == 1, [round(t - banned_at, 3) for t in seen]  # only the refused one
        assert len(seen) >= 2  # both calls went through after the ban
