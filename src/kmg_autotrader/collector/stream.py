"""Live candles and prices: WebSocket first, REST fallback, no missed or repeated candle.

:class:`CandleStream` watches one symbol with ``watch_ohlcv`` (ccxt.pro) and hands every
*closed* candle, exactly once and in order, to an async consumer. A candle is closed when the
stream shows the next one has started. A socket that was streaming and drops (exchanges close
sockets routinely) is reconnected at once (event ``ws_dropped``). When the socket cannot be
(re)opened, fails before it streamed, or stalls (no message within ``stall_timeout``), the
stream polls REST at the timeframe's cadence and retries the socket with exponential backoff
and jitter. On every (re)connect (ours, or one ccxt makes by itself) it first backfills over
REST the candles between the last emitted one and the first one the socket shows, and the
candle that was forming when the socket joined is taken from REST at its close: the socket's
view of it may lack an update. REST alone calls a candle closed only when its answer shows a
later one (our clock may run ahead of the exchange's).

:class:`PriceStream` does the same for last prices (``watch_ticker`` / ``fetch_ticker``), for
the stop monitor. Every switch is logged and passed to ``on_event(kind, message, details)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import ccxt
from loguru import logger

from kmg_autotrader.collector.events import Backoff, EventCallback, emit_event
from kmg_autotrader.collector.history import Clock, wall_clock_ms
from kmg_autotrader.domain import Candle
from kmg_autotrader.exchange.adapter import ExchangeAdapter, timeframe_ms
from kmg_autotrader.exchange.errors import ExchangeAdapterError

CandleConsumer = Callable[[str, Candle], Awaitable[None]]

# What a failing socket can raise: ccxt errors, our mapped errors, a stall timeout.
_WS_FAILURES = (ccxt.BaseError, ExchangeAdapterError, TimeoutError, OSError)


@dataclass(frozen=True, slots=True)
class PriceTick:
    """Last traded price of a symbol at ``timestamp`` (UTC epoch ms)."""

    symbol: str
    price: float
    timestamp: int
    source: str  # "ws" | "rest"


PriceConsumer = Callable[[PriceTick], Awaitable[None]]


async def wait_or_stop(watch: Awaitable[Any], stop: asyncio.Event, timeout: float) -> Any:
    """Await ``watch`` unless ``stop`` is set first (→ None) or ``timeout`` passes (→ raise)."""
    task = asyncio.ensure_future(watch)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {task, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopper.cancel()
    if task in done:
        return task.result()
    task.cancel()
    if stop.is_set():
        return None
    raise TimeoutError(f"no message within {timeout}s")


def _sockets(client: Any) -> tuple[Any, ...]:
    """The socket connections a ccxt.pro client holds now (to notice one it replaced)."""
    return tuple(getattr(client, "clients", {}).values())


def _candle(row: list[Any]) -> Candle:
    return Candle(
        timestamp=int(row[0]),
        open=float(row[1]),
        high=float(row[2]),
        low=float(row[3]),
        close=float(row[4]),
        volume=float(row[5]),
    )


class _Closer:
    """Closes ccxt clients in the background: ccxt's ``close()`` lingers a quarter of a second
    (``timeout_on_exit``), which a reconnect after a drop must not wait for."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._tasks: set[asyncio.Task[None]] = set()

    def close(self, client: Any) -> None:
        """Start closing ``client``."""
        task = asyncio.ensure_future(self._close(client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, client: Any) -> None:
        try:
            await client.close()
        except Exception as exc:  # closing a broken socket may itself fail
            logger.debug("closing {}: {}", self.what, exc)

    async def wait(self) -> None:
        """Until every client being closed is closed."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class CandleStream:
    """Closed candles of one symbol from a WebSocket with REST fallback; see module docstring.

    ``start_after`` is the open time of the last candle the consumer already has (e.g. the
    last stored one): the stream backfills from there. ``poll_interval`` defaults to the
    timeframe (REST cadence); timeouts and backoff are injectable for tests.
    """

    def __init__(
        self,
        adapter: ExchangeAdapter,
        symbol: str,
        timeframe: str,
        *,
        start_after: int | None = None,
        on_event: EventCallback | None = None,
        stall_timeout: float = 90.0,
        poll_interval: float | None = None,
        backoff: Backoff | None = None,
        clock: Clock = wall_clock_ms,
        use_websocket: bool = True,
    ) -> None:
        self.adapter = adapter
        self.symbol = symbol
        self.timeframe = timeframe
        self.tf_ms = timeframe_ms(timeframe)
        self.last_emitted = start_after
        self.on_event = on_event
        self.stall_timeout = stall_timeout
        self.poll_interval = poll_interval if poll_interval is not None else self.tf_ms / 1000
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.use_websocket = use_websocket and adapter.has_websocket
        self.mode = "idle"
        self._stop = asyncio.Event()
        self._ws_client: Any = None
        self._closing = _Closer("WebSocket client")
        self._streamed = False  # whether the current socket session delivered candles
        self.drops = 0  # sockets that dropped after streaming (reconnected at once)

    def stop(self) -> None:
        """Ask :meth:`run` to return soon."""
        self._stop.set()

    async def _event(self, kind: str, message: str, **details: Any) -> None:
        details = {"symbol": self.symbol, "timeframe": self.timeframe, **details}
        await emit_event(self.on_event, kind, f"{self.symbol} {self.timeframe}: {message}", details)

    # ---- emitting ----------------------------------------------------------------------------

    async def _emit(self, consumer: CandleConsumer, candle: Candle) -> None:
        if self.last_emitted is not None and candle.timestamp <= self.last_emitted:
            return  # already handed over
        if self.last_emitted is not None and candle.timestamp > self.last_emitted + self.tf_ms:
            await self._backfill(consumer, before=candle.timestamp)
            if candle.timestamp > (self.last_emitted or 0) + self.tf_ms:
                missing = (candle.timestamp - (self.last_emitted or 0)) // self.tf_ms - 1
                await self._event(
                    "gap",
                    f"{missing} candle(s) missing before {candle.timestamp}",
                    missing=missing,
                    before=candle.timestamp,
                )
        logger.debug(
            "{} {}: candle {} closed ({})", self.symbol, self.timeframe, candle.timestamp, self.mode
        )
        await consumer(self.symbol, candle)
        self.last_emitted = candle.timestamp

    async def _backfill(
        self, consumer: CandleConsumer, before: int, *, by_clock: bool = False
    ) -> None:
        """Emit REST candles after the last emitted one and before ``before`` (all closed).

        ``by_clock``: ``before`` comes from our clock, not from the exchange (a socket showing
        a later candle): then a candle also needs a later one in the answer, since our clock
        may run ahead of the exchange's (a sync is seconds old, a replaying venue pauses) and
        the exchange's newest candle may still be forming.
        """
        if self.last_emitted is None:
            return
        since = self.last_emitted + self.tf_ms
        while since < before:
            rows = await self.adapter.fetch_ohlcv(self.symbol, self.timeframe, since=since)
            until = before
            if by_clock and rows:
                until = min(until, max(int(r[0]) for r in rows))
            rows = [r for r in rows if since <= int(r[0]) < until]
            if not rows:
                return
            for row in rows:
                candle = _candle(row)
                if candle.timestamp > (self.last_emitted or -1):
                    logger.debug(
                        "{} {}: candle {} closed (rest)",
                        self.symbol,
                        self.timeframe,
                        candle.timestamp,
                    )
                    await consumer(self.symbol, candle)
                    self.last_emitted = candle.timestamp
            since = int(rows[-1][0]) + self.tf_ms

    async def _poll_rest_once(self, consumer: CandleConsumer) -> None:
        """Emit every candle REST shows as closed: closed by our clock, and followed by a
        later candle in the exchange's answer."""
        now = self.clock()
        closed_before = now // self.tf_ms * self.tf_ms  # open time of the still-open candle
        if self.last_emitted is None:
            rows = await self.adapter.fetch_ohlcv(self.symbol, self.timeframe, limit=2)
            newest = max((int(r[0]) for r in rows), default=0)
            closed = [r for r in rows if int(r[0]) < min(closed_before, newest)]
            if closed:
                await self._emit(consumer, _candle(closed[-1]))
            return
        await self._backfill(consumer, before=closed_before, by_clock=True)

    # ---- modes -------------------------------------------------------------------------------

    async def _ws_session(self, consumer: CandleConsumer) -> None:
        """Run the socket until stopped; raises on failure or stall."""
        self._ws_client = self.adapter.new_stream_client()
        pending: Candle | None = None
        connected = False
        joined = 0  # open time of the candle that was forming when this socket joined
        sockets: tuple[Any, ...] | None = None
        self._streamed = False
        try:
            while not self._stop.is_set():
                rows = await self._next_message(
                    self._ws_client.watch_ohlcv(self.symbol, self.timeframe)
                )
                if rows is None:
                    return  # stopped
                candles = sorted((_candle(r) for r in rows), key=lambda c: c.timestamp)
                if not candles:
                    continue
                current = _sockets(self._ws_client)
                if connected and sockets is not None and current != sockets:
                    # ccxt opened a new socket by itself (the old one closed while we were not
                    # watching): updates were lost, what we hold may be stale. Resync as on a
                    # reconnect: everything before the newest candle shown comes from REST.
                    self.drops += 1
                    await self._event("ws_dropped", "WebSocket reopened by the client; resyncing")
                    connected, pending = False, None
                    candles = candles[-1:]
                sockets = current
                if not connected:
                    connected = self._streamed = True
                    joined = candles[-1].timestamp
                    self.backoff.reset()
                    self.mode = "ws"
                    # Everything before the first candle the socket shows has closed.
                    await self._backfill(consumer, before=candles[0].timestamp)
                    await self._event(
                        "ws_connected", "WebSocket streaming", first=candles[0].timestamp
                    )
                for candle in candles:
                    if pending is not None and candle.timestamp > pending.timestamp + self.tf_ms:
                        # Whole candles went by unseen: the pending values may be stale,
                        # so take every closed candle from REST instead.
                        pending = None
                        await self._backfill(consumer, before=candle.timestamp)
                    if pending is not None and candle.timestamp > pending.timestamp:
                        if pending.timestamp <= joined:
                            # it was forming when this socket joined (at start, after a drop):
                            # the socket's view of it may lack an update (R3 saw its close go
                            # missing after reconnects), so take the closed candle from REST
                            pending = None
                            await self._backfill(consumer, before=candle.timestamp)
                        else:
                            await self._emit(consumer, pending)
                    if pending is None or candle.timestamp >= pending.timestamp:
                        pending = candle
        finally:
            await self._close_ws()

    async def _next_message(self, watch: Awaitable[Any]) -> Any:
        """The socket's next message; None when stopped; TimeoutError when it stalls."""
        return await wait_or_stop(watch, self._stop, self.stall_timeout)

    async def _close_ws(self, *, wait: bool = False) -> None:
        """Close the session's client in the background (``wait``: and every one closing)."""
        client, self._ws_client = self._ws_client, None
        if client is not None:
            self._closing.close(client)
        if wait:
            await self._closing.wait()

    async def _rest_until(self, consumer: CandleConsumer, deadline: float) -> None:
        """Poll REST at the cadence until ``deadline`` (loop time) or stop."""
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            try:
                await self._poll_rest_once(consumer)
            except ExchangeAdapterError as exc:
                await self._event("rest_error", f"REST poll failed: {exc}", error=str(exc))
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await self._sleep(min(self.poll_interval, remaining))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def run(self, consumer: CandleConsumer) -> None:
        """Stream closed candles to ``consumer`` until :meth:`stop`."""
        loop = asyncio.get_running_loop()
        try:
            while not self._stop.is_set():
                if not self.use_websocket:
                    self.mode = "rest"
                    await self._rest_until(consumer, deadline=float("inf"))
                    return
                try:
                    await self._ws_session(consumer)
                except _WS_FAILURES as exc:
                    stalled = isinstance(exc, TimeoutError)
                    if self._streamed and not stalled and not self._stop.is_set():
                        # a working socket dropped: reconnect at once; the new session
                        # backfills over REST whatever closed meanwhile
                        self.drops += 1
                        await self._event(
                            "ws_dropped", f"WebSocket dropped ({exc}); reconnecting", error=str(exc)
                        )
                        continue
                    kind = "ws_stalled" if stalled else "ws_failed"
                    why = f"no message for {self.stall_timeout}s" if stalled else str(exc)
                    await self._event(kind, f"WebSocket down ({why})", error=why)
                if self._stop.is_set():
                    break
                delay = self.backoff.next_delay()
                if self.mode != "rest":
                    self.mode = "rest"
                    await self._event("rest_fallback", "polling REST", retry_in=delay)
                await self._rest_until(consumer, deadline=loop.time() + delay)
                if not self._stop.is_set():
                    await self._event(
                        "ws_retry", "retrying WebSocket", attempt=self.backoff.attempt
                    )
        finally:
            await self._close_ws(wait=True)
            self.mode = "stopped"


class PriceStream:
    """Last prices of several symbols (``watch_ticker``), with REST fallback, for stop checks."""

    def __init__(
        self,
        adapter: ExchangeAdapter,
        symbols: list[str],
        *,
        on_event: EventCallback | None = None,
        stall_timeout: float = 30.0,
        poll_interval: float = 2.0,
        backoff: Backoff | None = None,
        use_websocket: bool = True,
    ) -> None:
        self.adapter = adapter
        self.symbols = list(symbols)
        self.on_event = on_event
        self.stall_timeout = stall_timeout
        self.poll_interval = poll_interval
        self.backoff = backoff or Backoff()
        self.use_websocket = use_websocket and adapter.has_websocket
        self.mode = "idle"
        self._stop = asyncio.Event()
        self._closing = _Closer("price WebSocket")
        self._streamed = False  # whether the current socket session delivered a price
        self.drops = 0  # sockets that dropped after streaming (reconnected at once)

    def stop(self) -> None:
        """Ask :meth:`run` to return soon."""
        self._stop.set()

    async def _ws_session(self, consumer: PriceConsumer) -> None:
        client = self.adapter.new_stream_client()
        tasks: list[asyncio.Task[None]] = []
        self._streamed = False
        try:

            async def watch(symbol: str) -> None:
                first = True
                while not self._stop.is_set():
                    ticker = await wait_or_stop(
                        client.watch_ticker(symbol), self._stop, self.stall_timeout
                    )
                    if ticker is None:
                        return
                    if first:
                        first = False
                        self._streamed = True
                        self.backoff.reset()
                        if self.mode != "ws":
                            self.mode = "ws"
                            await emit_event(
                                self.on_event,
                                "price_ws_connected",
                                "price WebSocket streaming",
                                {"symbols": self.symbols},
                            )
                    await self._deliver(consumer, symbol, ticker, "ws")

            tasks = [asyncio.create_task(watch(s)) for s in self.symbols]
            stopper = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            for task in done:
                if task is not stopper and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._closing.close(client)

    async def _deliver(
        self, consumer: PriceConsumer, symbol: str, ticker: dict[str, Any], source: str
    ) -> None:
        price = ticker.get("last") or ticker.get("close")
        if price is None:
            return
        ts = ticker.get("timestamp") or wall_clock_ms()
        await consumer(PriceTick(symbol, float(price), int(ts), source))

    async def _rest_until(self, consumer: PriceConsumer, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            for symbol in self.symbols:
                try:
                    await self._deliver(
                        consumer, symbol, await self.adapter.fetch_ticker(symbol), "rest"
                    )
                except ExchangeAdapterError as exc:
                    await emit_event(
                        self.on_event, "price_rest_error", str(exc), {"symbol": symbol}
                    )
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stop.wait(), timeout=min(self.poll_interval, remaining)
                )

    async def run(self, consumer: PriceConsumer) -> None:
        """Deliver price ticks to ``consumer`` until :meth:`stop`."""
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            if not self.use_websocket:
                self.mode = "rest"
                await self._rest_until(consumer, float("inf"))
                return
            try:
                await self._ws_session(consumer)
            except _WS_FAILURES as exc:
                stalled = isinstance(exc, TimeoutError)
                if self._streamed and not stalled and not self._stop.is_set():
                    self.drops += 1  # a working socket dropped: reconnect at once
                    await emit_event(
                        self.on_event,
                        "price_ws_dropped",
                        f"price WebSocket dropped ({exc}); reconnecting",
                        {"symbols": self.symbols, "error": str(exc)},
                    )
                    continue
                why = f"no message for {self.stall_timeout}s" if stalled else str(exc)
                await emit_event(
                    self.on_event,
                    "price_ws_failed",
                    f"price WebSocket down ({why})",
                    {"symbols": self.symbols, "error": why},
                )
            if self._stop.is_set():
                break
            delay = self.backoff.next_delay()
            if self.mode != "rest":
                self.mode = "rest"
                await emit_event(
                    self.on_event,
                    "price_rest_fallback",
                    "polling REST for prices",
                    {"symbols": self.symbols, "retry_in": delay},
                )
            await self._rest_until(consumer, loop.time() + delay)
        await self._closing.wait()
        self.mode = "stopped"
