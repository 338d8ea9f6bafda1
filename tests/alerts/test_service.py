"""AlertService flow control with a fake notifier: dedupe, rate limit, overflow, failures."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from kmg_autotrader.alerts import AlertEvent, AlertMessage, AlertService, DeliveryReport
from kmg_autotrader.domain import Mode
from kmg_autotrader.storage.repositories import Repositories


class FakeClock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeNotifier:
    """Records what it is asked to deliver; can be told to fail or to blow up."""

    def __init__(self, labels: list[str] | None = None) -> None:
        self._labels = ["fake"] if labels is None else labels
        self.messages: list[AlertMessage] = []
        self.fail: str | None = None
        self.explode = False

    @property
    def labels(self) -> list[str]:
        return self._labels

    async def deliver(self, message: AlertMessage) -> DeliveryReport:
        if self.explode:
            raise RuntimeError("plug-in bug")
        if self.fail:
            return DeliveryReport(failed={"fake": self.fail})
        self.messages.append(message)
        return DeliveryReport(delivered=["fake"])


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait for ``condition`` (the worker runs in the background)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def make(
    repos: Repositories | None = None, notifier: FakeNotifier | None = None, **options: Any
) -> tuple[AlertService, FakeNotifier, FakeClock]:
    clock = FakeClock()
    notifier = notifier or FakeNotifier()
    options.setdefault("dedupe_window", 60.0)
    service = AlertService(
        Mode.PAPER, notifier, repos.alerts if repos else None, clock=clock, **options
    )
    return service, notifier, clock


def statuses(repos: Repositories) -> list[tuple[str, str]]:
    rows = reversed(repos.alerts.recent(Mode.PAPER, limit=100))
    return [(r["event"], r["status"]) for r in rows]


async def test_duplicates_within_the_window_are_suppressed_and_tallied(
    repos: Repositories,
) -> None:
    service, notifier, clock = make(repos)
    service.start()
    fields = {"feed": "websocket", "status": "stale", "detail": "no candle for 3 min"}
    assert service.send(AlertEvent.FEED_DEGRADED, **fields)
    assert not service.send(AlertEvent.FEED_DEGRADED, **fields)
    assert not service.send(AlertEvent.FEED_DEGRADED, **{**fields, "detail": "4 min"})
    await service.flush()
    assert len(notifier.messages) == 1
    clock.t += 61  # window over: the next one goes out
    assert service.send(AlertEvent.FEED_DEGRADED, **fields)
    await service.stop()

    assert len(notifier.messages) == 2
    assert service.stats.suppressed == 2
    assert statuses(repos) == [
        ("feed_degraded", "sent"),
        ("feed_degraded", "suppressed"),
        ("feed_degraded", "sent"),
    ]
    tally = repos.alerts.recent(Mode.PAPER, limit=100)[1]
    assert tally["body"] == "2 alert(s) suppressed: duplicate within the dedupe window"


async def test_explicit_dedupe_key_and_distinct_alerts() -> None:
    service, notifier, _ = make()
    service.start()
    assert service.send(AlertEvent.SYSTEM, message="a", dedupe_key="k")
    assert not service.send(AlertEvent.SYSTEM, message="b", dedupe_key="k")
    assert service.send(AlertEvent.SYSTEM, message="c")
    await service.stop()
    assert [m.body for m in notifier.messages] == ["a", "c"]


async def test_rate_limit_holds_back_excess_and_sends_one_digest(repos: Repositories) -> None:
    service, notifier, clock = make(repos, per_minute=2, burst=2)
    service.start()
    for i in range(5):
        service.send(AlertEvent.TRADE_ERROR, symbol="BTC/USDT", error=f"e{i}")
    await service.flush()
    assert len(notifier.messages) == 2
    assert service.stats.rate_limited == 3

    clock.t += 30  # one token back
    await until(lambda: len(notifier.messages) == 3)
    digest = notifier.messages[-1]
    assert digest.event is AlertEvent.DIGEST
    assert digest.title == "[PAPER] 3 alert(s) held back by the rate limit"
    assert digest.body.count("Trade error BTC/USDT") == 3
    await service.stop()
    assert statuses(repos).count(("trade_error", "suppressed")) == 3
    assert ("digest", "sent") in statuses(repos)


async def test_stop_sends_the_pending_digest() -> None:
    service, notifier, _ = make(per_minute=1, burst=1)
    service.start()
    service.send(AlertEvent.SYSTEM, message="first")
    service.send(AlertEvent.SYSTEM, message="held")
    await service.stop()
    assert [m.event for m in notifier.messages] == [AlertEvent.SYSTEM, AlertEvent.DIGEST]
    assert "held" in notifier.messages[1].body


async def test_critical_alerts_bypass_the_rate_limit() -> None:
    service, notifier, _ = make(per_minute=1, burst=1)
    service.start()
    service.send(AlertEvent.SYSTEM, message="uses the only token")
    service.send(AlertEvent.KILL_SWITCH, reason="max drawdown")
    service.send(AlertEvent.BREAKER_TRIPPED, breaker="loss_streak", reason="5 losses")
    await service.stop()
    assert [m.event for m in notifier.messages] == [
        AlertEvent.SYSTEM,
        AlertEvent.KILL_SWITCH,
        AlertEvent.BREAKER_TRIPPED,
    ]


async def test_full_queue_drops_and_counts(repos: Repositories) -> None:
    service, notifier, _ = make(repos, queue_size=3)
    results = [service.send(AlertEvent.SYSTEM, message=f"m{i}") for i in range(5)]
    assert results == [True, True, True, False, False]
    assert service.stats.dropped == 2
    service.start()
    await service.stop()
    assert len(notifier.messages) == 3
    dropped = [r for r in repos.alerts.recent(Mode.PAPER) if r["status"] == "dropped"]
    assert len(dropped) == 1
    assert dropped[0]["body"] == "2 alert(s) dropped: alert queue full"


async def test_no_targets_records_suppressed_and_sends_nothing(repos: Repositories) -> None:
    service, notifier, _ = make(repos, notifier=FakeNotifier(labels=[]))
    service.start()
    service.send(AlertEvent.DAILY_SUMMARY, day="2026-11-23", pnl=12.5, trades=4)
    await service.stop()
    assert notifier.messages == []
    rows = repos.alerts.recent(Mode.PAPER)
    assert [(r["status"], r["error"]) for r in rows] == [("suppressed", "no targets")]
    assert rows[0]["title"] == "[PAPER] Daily PnL 2026-11-23: +12.5 USDT"


async def test_failed_delivery_is_stored_and_a_broken_notifier_does_not_kill_the_worker(
    repos: Repositories,
) -> None:
    service, notifier, _ = make(repos)
    service.start()
    notifier.fail = "HTTP 500"
    service.send(AlertEvent.SYSTEM, message="one")
    await service.flush()
    notifier.fail = None
    notifier.explode = True
    service.send(AlertEvent.SYSTEM, message="two")
    await service.flush()
    notifier.explode = False
    service.send(AlertEvent.SYSTEM, message="three")
    await service.stop()

    rows = list(reversed(repos.alerts.recent(Mode.PAPER)))
    assert [(r["body"], r["status"]) for r in rows] == [
        ("one", "failed"),
        ("two", "failed"),
        ("three", "sent"),
    ]
    assert rows[0]["error"] == "fake: HTTP 500"
    assert rows[1]["error"] == "notifier: RuntimeError"
    assert service.stats.failed == 2 and service.stats.sent == 1


async def test_a_broken_repository_never_stops_delivery() -> None:
    class BrokenRepo:
        def add(self, *args: Any, **kwargs: Any) -> int:
            raise OSError("disk full")

        def set_status(self, *args: Any, **kwargs: Any) -> None:
            raise OSError("disk full")

    notifier = FakeNotifier()
    service = AlertService(Mode.PAPER, notifier, BrokenRepo())  # type: ignore[arg-type]
    service.start()
    service.send(AlertEvent.SYSTEM, message="still delivered")
    await service.stop()
    assert [m.body for m in notifier.messages] == ["still delivered"]


async def test_send_from_another_thread() -> None:
    service, notifier, _ = make()
    service.start()
    results: list[bool] = []
    thread = threading.Thread(
        target=lambda: results.append(service.send(AlertEvent.SYSTEM, message="from a thread"))
    )
    thread.start()
    thread.join()
    await until(lambda: len(notifier.messages) == 1)
    await service.stop()
    assert results == [True]
    assert notifier.messages[0].body == "from a thread"


async def test_send_never_raises() -> None:
    service, notifier, _ = make()
    service.start()
    # wrong fields and an unknown event still produce an alert rather than an exception
    assert service.send(AlertEvent.ORDER_FILLED, symbol="BTC/USDT", oops=1)
    assert service.send("something_new", detail="x")
    await service.stop()
    assert service.send(AlertEvent.SYSTEM, message="after stop") is False
    assert service.stats.dropped == 1
    assert [m.title for m in notifier.messages] == [
        "[PAPER] order filled",
        "[PAPER] something new",
    ]
    assert "symbol: BTC/USDT" in notifier.messages[0].body


@pytest.mark.parametrize("n", [2000])
async def test_send_is_cheap(n: int) -> None:
    service, _, _ = make(queue_size=10)  # mostly overflowing: the worst case for the caller
    started = time.perf_counter()
    for i in range(n):
        service.send(AlertEvent.SYSTEM, message=f"m{i}")
    per_call = (time.perf_counter() - started) / n
    assert per_call < 0.001  # well under a millisecond each, measured loosely
    await service.stop()
