"""Live updates: an in-process event bus and a watcher that turns new records into events.

The bot (same process) may publish on the bus directly; the watcher polls a few cheap
``max(id)`` markers while at least one browser is listening, so ``kmg web`` alone also streams.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from loguru import logger

from kmg_autotrader.domain import Mode
from kmg_autotrader.storage.database import Database
from kmg_autotrader.webui import queries

QUEUE_SIZE = 256


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One server-sent event: its type and JSON-ready data."""

    kind: str
    data: dict[str, Any]


class EventBus:
    """Fan-out of live events to every connected stream. ``publish`` is thread-safe."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[LiveEvent]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def subscriber_count(self) -> int:
        """How many streams are listening."""
        return len(self._subscribers)

    def subscribe(self) -> asyncio.Queue[LiveEvent]:
        """A new queue that receives every event published from now on."""
        self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[LiveEvent]) -> None:
        """Stop delivering to ``queue``."""
        self._subscribers.discard(queue)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Send an event to every subscriber (from any thread; a full queue drops it)."""
        event = LiveEvent(kind, data)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(event)
        else:
            loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: LiveEvent) -> None:
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):  # a stalled browser loses events
                queue.put_nowait(event)


class ChangeWatcher:
    """Polls the records while someone listens and publishes what is new."""

    def __init__(
        self,
        db: Database,
        mode: Mode,
        bus: EventBus,
        *,
        interval_seconds: float = 2.0,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.mode = mode
        self.bus = bus
        self.interval_seconds = interval_seconds
        self.on_change = on_change  # told first (e.g. to drop cached answers) when records moved
        self._markers: dict[str, int] | None = None

    async def run(self) -> None:
        """Poll until cancelled; a failing poll is logged and retried."""
        while True:
            await asyncio.sleep(self.interval_seconds)
            if self.bus.subscriber_count == 0:
                self._markers = None  # start fresh when someone connects again
                continue
            try:
                await to_thread.run_sync(self.poll_once)
            except Exception as exc:  # the stream must survive a busy or restarting database
                logger.warning("live update poll failed: {}: {}", type(exc).__name__, exc)

    def poll_once(self) -> None:
        """Compare the markers with the last poll and publish the differences."""
        markers = queries.change_markers(self.db, self.mode)
        previous, self._markers = self._markers, markers
        if previous is None:
            return
        if markers != previous and self.on_change is not None:
            self.on_change()
        if markers["equity"] > previous["equity"]:
            points = queries.equity_since_id(self.db, self.mode, previous["equity"])
            self.bus.publish("equity", {"points": points})
        if markers["order"] > previous["order"]:
            orders = queries.orders_updated_since(self.db, self.mode, previous["order"])
            self.bus.publish(
                "orders",
                {
                    "orders": [
                        {
                            "client_order_id": o["client_order_id"],
                            "symbol": o["symbol"],
                            "side": o["side"],
                            "status": o["status"],
                            "purpose": o["purpose"],
                            "updated_at": o["updated_at"],
                        }
                        for o in orders
                    ]
                },
            )
        if markers["signal"] > previous["signal"]:
            self.bus.publish("signals", {"latest_id": markers["signal"]})
        if markers["closed_positions"] != previous["closed_positions"]:
            self.bus.publish("trades", {"closed": markers["closed_positions"]})
        if (markers["position"], markers["open_positions"]) != (
            previous["position"],
            previous["open_positions"],
        ):
            self.bus.publish("positions", {"open": markers["open_positions"]})
