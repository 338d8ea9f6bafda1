"""Market feeds for the live loop: closed candles (each once, in order) and price ticks.

``ReplayFeed`` replays stored or packaged candles on a simulated clock (``kmg demo``, the parity
test); ``LiveFeed`` wraps the collector's WebSocket-with-REST-fallback streams (``kmg run``).
Both call the same two handlers, so the bot cannot tell them apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from loguru import logger

from kmg_autotrader.domain import Candle
from kmg_autotrader.domain.clock import SimulatedClock


@dataclass(frozen=True, slots=True)
class ClosedCandle:
    """A closed candle of ``symbol``; ``gap_before`` is True when candles are missing before it
    (the bot must not treat the hole as one candle)."""

    symbol: str
    candle: Candle
    closed_at: int
    gap_before: bool = False


# Wall seconds the streams' in-flight work (a decision whose order waits for the exchange's
# answer) may take after a stop, then it is cut short like a crash would: the order is on
# record before it is sent, and the next start reconciles it with the exchange. An exchange
# whose client throttles hard (ccxt allows Kraken one private call every 3 s) would otherwise
# hold a SIGTERM for many seconds.
STOP_GRACE_S = 2.0
CandleHandler = Callable[[ClosedCandle], Awaitable[object]]
PriceHandler = Callable[[str, float, int], Awaitable[None]]


class Feed(Protocol):
    """Anything that drives the bot with closed candles and prices until stopped.

    ``on_open`` (optional) is called with a candle at its *open* time, before its close is
    handed to ``on_candle``: a replay knows the bar ahead and lets orders waiting for the market
    fill at the open, when and where they would have. A live feed has no such moment (price
    ticks play that part) and never calls it.
    """

    async def run(
        self,
        on_candle: CandleHandler,
        on_price: PriceHandler,
        stop: asyncio.Event,
        *,
        on_open: CandleHandler | None = None,
    ) -> None:
        """Call the handlers until the data ends or ``stop`` is set."""
        ...


class ReplayFeed:
    """Replays candles of several symbols in time order on a simulated clock.

    ``speed`` is time steps (one candle of every symbol) per second; 0 means as fast as
    possible. The clock is set to each candle's close time before ``on_candle`` runs, so
    cooldowns, budgets and order times follow the replayed market, not the wall clock. With
    ``on_open``, every step first sets the clock to the candles' open time and hands each
    candle to ``on_open``: orders decided on the previous close fill at this open, stamped
    with its time — exactly as the backtester fills them.
    """

    def __init__(
        self,
        frames: Mapping[str, pd.DataFrame],
        timeframe_ms: int,
        *,
        clock: SimulatedClock,
        speed: float = 1.0,
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0 (0 = as fast as possible)")
        self.stop_grace_s = stop_grace_s
        self.frames = dict(frames)
        self.timeframe_ms = timeframe_ms
        self.clock = clock
        self.speed = speed
        self.total_steps = len(
            np.unique(np.concatenate([f["timestamp"].to_numpy() for f in frames.values()]))
            if frames
            else np.array([])
        )
        self.steps_done = 0

    def _rows(self) -> list[tuple[int, str, int]]:
        """(timestamp, symbol, row index) for every candle, merged in time order."""
        streams = [
            [(int(ts), symbol, i) for i, ts in enumerate(frame["timestamp"].to_numpy())]
            for symbol, frame in self.frames.items()
        ]
        return list(heapq.merge(*streams))

    async def run(
        self,
        on_candle: CandleHandler,
        on_price: PriceHandler,
        stop: asyncio.Event,
        *,
        on_open: CandleHandler | None = None,
    ) -> None:
        """Replay every candle (or until ``stop``)."""
        columns = {
            symbol: {
                name: frame[name].to_numpy()
                for name in ("timestamp", "open", "high", "low", "close", "volume")
            }
            for symbol, frame in self.frames.items()
        }
        previous: dict[str, int] = {}
        delay = 1.0 / self.speed if self.speed > 0 else 0.0
        rows = self._rows()
        i = 0
        while i < len(rows) and not stop.is_set():
            step_ts = rows[i][0]
            closed_at = step_ts + self.timeframe_ms
            step: list[ClosedCandle] = []
            while i < len(rows) and rows[i][0] == step_ts:
                _, symbol, row = rows[i]
                i += 1
                col = columns[symbol]
                candle = Candle(
                    timestamp=step_ts,
                    open=float(col["open"][row]),
                    high=float(col["high"][row]),
                    low=float(col["low"][row]),
                    close=float(col["close"][row]),
                    volume=float(col["volume"][row]),
                )
                gap = symbol in previous and step_ts - previous[symbol] > self.timeframe_ms
                previous[symbol] = step_ts
                step.append(ClosedCandle(symbol, candle, closed_at, gap_before=gap))
            if on_open is not None:
                if step_ts > self.clock.now_ms():
                    self.clock.set(step_ts)
                for event in step:
                    if not await self._handle(on_open(event), stop):
                        return
            if closed_at > self.clock.now_ms():
                self.clock.set(closed_at)
            for event in step:
                if not await self._handle(on_candle(event), stop):
                    return
            self.steps_done += 1
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
            else:
                await asyncio.sleep(0)  # let the web server and alerts breathe

    async def _handle(self, work: Awaitable[object], stop: asyncio.Event) -> bool:
        """Await one handler; once ``stop`` is set it gets ``stop_grace_s`` more seconds, then
        it is cancelled and False returned (an advisor call or an order waiting for an answer
        must not hold a SIGTERM: a resumed demo replays that step again)."""
        task = asyncio.ensure_future(work)
        if not stop.is_set():
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
        if not task.done():
            await asyncio.wait({task}, timeout=self.stop_grace_s)
        if not task.done():
            logger.warning(
                "stopping: candle handling still busy after {:g} s (an advisor call or an order "
                "waiting for an answer?); cut short",
                self.stop_grace_s,
            )
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
            return False
        task.result()
        return True


def _row(candle: Candle) -> dict[str, float | int]:
    return {
        "timestamp": candle.timestamp,
        "open": candle.open,
        "high": candle.high,
        "low": candle.low,
        "close": candle.close,
        "volume": candle.volume,
    }


class LiveFeed:
    """The collector's live streams: one candle stream per symbol plus the price stream."""

    def __init__(
        self,
        adapter: Any,
        symbols: list[str],
        timeframe: str,
        *,
        start_after: Mapping[str, int | None],
        on_event: Callable[..., Any] | None = None,
        store: Any = None,
        clock: Callable[[], int] | None = None,
        observe: Callable[[int], None] | None = None,
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        self.store = store  # CandleStore: live candles are appended so history stays complete
        self.clock = clock  # epoch ms for the REST fallback's "closed by now" (default: wall)
        # told every exchange time the streams show (ExchangeClock.observe): a candle the
        # stream calls closed is then never "in the future" of the bot's clock
        self.observe = observe
        self.stop_grace_s = stop_grace_s
        self.adapter = adapter
        self.symbols = symbols
        self.timeframe = timeframe
        self.start_after = dict(start_after)
        self.on_event = on_event
        self._streams: list[Any] = []

    async def run(
        self,
        on_candle: CandleHandler,
        on_price: PriceHandler,
        stop: asyncio.Event,
        *,
        on_open: CandleHandler | None = None,
    ) -> None:
        """Run every stream until ``stop`` is set (``on_open`` is unused: ticks fill orders)."""
        from kmg_autotrader.collector.history import wall_clock_ms
        from kmg_autotrader.collector.stream import CandleStream, PriceStream, PriceTick
        from kmg_autotrader.exchange.adapter import timeframe_ms as to_ms

        timeframe_ms = to_ms(self.timeframe)  # a module function: the adapter has no such method
        last_seen: dict[str, int | None] = dict(self.start_after)

        async def candle_consumer(symbol: str, candle: Candle) -> None:
            previous = last_seen.get(symbol)
            gap = previous is not None and candle.timestamp - previous > timeframe_ms
            last_seen[symbol] = candle.timestamp
            closed_at = candle.timestamp + timeframe_ms
            if self.observe is not None:
                self.observe(closed_at)
            await on_candle(ClosedCandle(symbol, candle, closed_at, gap_before=gap))
            # stored only once handled: a restart resumes after the last stored candle, so a
            # process killed mid-handling gets this candle again (its stops checked, decided)
            # rather than skipping it; it also keeps the disk write off the candle → order path
            if self.store is not None:
                frame = pd.DataFrame([_row(candle)])
                await asyncio.to_thread(
                    self.store.append, self.adapter.id, symbol, self.timeframe, frame
                )

        async def price_consumer(tick: PriceTick) -> None:
            if self.observe is not None and tick.source == "ws":
                self.observe(tick.timestamp)
            await on_price(tick.symbol, tick.price, tick.timestamp)

        self._streams = [
            CandleStream(
                self.adapter,
                symbol,
                self.timeframe,
                start_after=self.start_after.get(symbol),
                on_event=self.on_event,
                clock=self.clock or wall_clock_ms,
            )
            for symbol in self.symbols
        ]
        prices = PriceStream(self.adapter, self.symbols, on_event=self.on_event)
        self._streams.append(prices)
        tasks = [asyncio.create_task(s.run(candle_consumer)) for s in self._streams[:-1]]
        tasks.append(asyncio.create_task(prices.run(price_consumer)))
        try:
            await stop.wait()
        finally:
            for stream in self._streams:
                stream.stop()
            done, pending = await asyncio.wait(tasks, timeout=self.stop_grace_s)
            if pending:
                logger.warning(
                    "stopping: candle handling still busy after {:g} s (an order waiting for the "
                    "exchange?); cut short, the next start reconciles it with the exchange",
                    self.stop_grace_s,
                )
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=0.5)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    logger.error("stream ended with {}", task.exception())
