"""The event loop: the live pipeline, run only on the candles where something can happen.

Per symbol, the strategy's entries and exits are known for the whole history (vectorised).
The loop keeps a heap of each symbol's next *event* and walks them in time order across
symbols, on a simulated clock:

* a **close** event on candle ``k`` (time: ``k``'s close) when ``k`` has an entry candidate
  while flat, an exit signal or a stop/target touch while a position is held, or when orders
  rest for the symbol. It gives the position tracker the candle's low/high (mental SL/TP) and
  hands the signals ``Decision`` of ``k`` to :class:`~kmg_autotrader.pipeline.DecisionPipeline`
  — the same object and call the live autopilot makes on every closed candle;
* an **open** event on candle ``k`` while orders rest for the symbol: the candle is fed to the
  paper exchange (market orders fill at its open, limits when its range crosses them) and the
  execution manager advances its working orders.

At equal times closes come first, so an order decided on candle ``t`` fills at ``t+1``'s open
at the earliest. Between events nothing can happen to a symbol — its position, orders and
signals are unchanged — so skipping those candles changes no decision, only the run time.

One thing does change between events: the account's marked equity, which the live loop hands
the risk manager on every candle (drawdown breaker, daily kill-switch). A
:class:`~kmg_autotrader.backtest.breakers.BreakerWatch` finds, vectorised, the candles whose
mark changes the risk state, and the loop makes a **mark** event of each (after the closes of
its time, before the opens).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from kmg_autotrader.backtest.breakers import BreakerWatch
from kmg_autotrader.backtest.tracks import NONE, SymbolTrack
from kmg_autotrader.domain import Position
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution.manager import TP_ORDER, ExecutionManager
from kmg_autotrader.execution.paper import PaperExchange
from kmg_autotrader.execution.tracker import PositionTracker
from kmg_autotrader.pipeline import DecisionPipeline, PipelineOutcome

CLOSE, OPEN = 0, 1  # at equal times a close (decision) comes before an open (fill)
Progress = Callable[[int], None]  # called with the simulated time reached (ms)


def _d(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _watched(position: Position) -> bool:
    """True when the tracker has something to check on this position (a level, a trailing
    stop, a resting take-profit, or an entry still working); otherwise it would do nothing."""
    return (
        position.stop_loss is not None
        or position.take_profit is not None
        or position.trailing_stop_pct is not None
        or bool(position.extra.get(TP_ORDER))
        or position.extra.get("state") != "open"
    )


@dataclass(slots=True)
class LoopStats:
    """What the loop did: events by kind, pipeline calls and their outcomes."""

    close_events: int = 0
    open_events: int = 0
    decisions: int = 0
    executed: int = 0
    tracker_exits: int = 0
    mark_events: int = 0


class EventLoop:
    """Replays ``tracks`` through the tracker and the decision pipeline, event by event."""

    def __init__(
        self,
        tracks: Sequence[SymbolTrack],
        *,
        exchange: PaperExchange,
        manager: ExecutionManager,
        tracker: PositionTracker,
        pipeline: DecisionPipeline,
        clock: SimulatedClock,
        timeframe_ms: int,
        progress: Progress | None = None,
        on_outcome: Callable[[PipelineOutcome], None] | None = None,
        after_event: Callable[[str, int, int], None] | None = None,
        dense: bool = False,
        watch: BreakerWatch | None = None,
        mark: Callable[[int], None] | None = None,
    ) -> None:
        self.tracks = list(tracks)
        self.exchange = exchange
        # the paper engine itself: the loop feeds it directly, as PaperExchange.feed_bar and
        # on_price only forward to it (one call less per event)
        self.paper = exchange.engine
        self.manager = manager
        self.store = manager.store
        self.tracker = tracker
        self.pipeline = pipeline
        self.clock = clock
        self.tf = timeframe_ms
        self.progress = progress
        self.on_outcome = on_outcome
        self.after_event = after_event
        self.dense = dense  # every candle is an event (the slow reference the tests compare to)
        self.watch = watch if mark is not None else None  # equity marks between events
        self.mark = mark
        self.stats = LoopStats()
        self._markets = {t.symbol: exchange.market(t.symbol) for t in self.tracks}

    # ---- scheduling ---------------------------------------------------------------------------

    def _next_event(self, track: SymbolTrack) -> tuple[int, int, int] | None:
        """(time, phase, candle) of the symbol's next event, None when nothing can happen."""
        k = track.cursor
        ts = track.timestamp
        if k >= len(ts):
            return None
        if self.paper.open_by_symbol.get(track.symbol):
            # an order rests for the symbol: it may fill on any candle
            if track.fed < k:
                return ts.item(k), OPEN, k
            return ts.item(k) + self.tf, CLOSE, k
        if self.dense:
            return ts.item(k) + self.tf, CLOSE, k
        positions = self.store.open_positions(track.symbol)
        if positions:
            nxt = track.next_exit(k)
            for p in positions:
                if p.trailing_stop_pct is not None or p.extra.get("state") != "open":
                    return ts.item(k) + self.tf, CLOSE, k  # moving levels: check every candle
                if p.stop_loss is None and p.take_profit is None:
                    continue  # no level to touch (next_touch would answer NONE)
                stop = None if p.stop_loss is None else float(p.stop_loss)
                target = None if p.take_profit is None else float(p.take_profit)
                touch = track.next_touch(k, stop, target)
                if touch != NONE and (nxt == NONE or touch < nxt):
                    nxt = touch
        else:
            nxt = track.next_entry(k)
        if nxt == NONE:
            return None
        return ts.item(nxt) + self.tf, CLOSE, nxt

    # ---- events -------------------------------------------------------------------------------

    def _feed(self, track: SymbolTrack, k: int) -> None:
        """Give candle ``k`` to the paper exchange, once."""
        self.paper.on_bar(
            track.symbol,
            track.timestamp.item(k),
            track.open[k],
            track.high[k],
            track.low[k],
            track.close[k],
            track.volume[k],
            report=False,  # fills are read through the orders: no trade dicts
        )
        track.fed = k

    def _on_open(self, track: SymbolTrack, k: int) -> None:
        """Candle ``k`` opens: the exchange fills what it reaches (the loop then polls the
        execution manager; a plain method, not a coroutine, as the poll is its only await)."""
        self.stats.open_events += 1
        self.clock.set(track.timestamp.item(k))
        self._feed(track, k)

    async def _on_close(self, track: SymbolTrack, k: int) -> None:
        self.stats.close_events += 1
        symbol = track.symbol
        opened = track.timestamp.item(k)
        self.clock.set(opened + self.tf)
        close: Decimal | None = None  # the candle's close as a Decimal, made once if needed
        if track.fed < k:
            # nothing rests for the symbol: the candle only tells the exchange its last price
            close = track.close_decimal(k)  # kept: the equity mark prices the candle too
            self.paper.on_price(symbol, close, opened)
            track.fed = k
        positions = self.store.open_positions(symbol)
        for p in positions:  # a loop, not any() over a generator: most hold one position
            if _watched(p):
                if close is None:
                    close = track.close_decimal(k)
                exits = await self.tracker.on_price(
                    symbol, close, low=_d(track.low[k]), high=_d(track.high[k])
                )
                self.stats.tracker_exits += len(exits)
                positions = self.store.open_positions(symbol)
                break
        held = bool(positions)
        wanted = track.is_exit(k) if held else track.is_entry(k)
        if wanted:
            decision = track.decision_at(k, position_open=held)
            outcome = await self.pipeline.process(
                decision, market=self._markets[symbol], now_ms=self.clock.now_ms()
            )
            self.stats.decisions += 1
            self.stats.executed += outcome.stage in ("executed", "exit")
            if self.on_outcome is not None:
                self.on_outcome(outcome)
        track.cursor = k + 1

    # ---- the loop -----------------------------------------------------------------------------

    async def run(self) -> LoopStats:
        """Process every event in time order; returns the counts."""
        heap: list[tuple[int, int, int, int]] = []
        for i, track in enumerate(self.tracks):
            event = self._next_event(track)
            if event is not None:
                heap.append((event[0], event[1], i, event[2]))
        heapq.heapify(heap)
        done = 0
        after_closes = len(self.tracks)  # a mark sorts after every close of its time
        # attributes read on every event, as locals (tens of thousands of events)
        tracks, clock, after_event, manager = (
            self.tracks,
            self.clock,
            self.after_event,
            self.manager,
        )
        progress = self.progress
        watch = self.watch if self.mark is not None else None
        while heap:
            if watch is not None and self.mark is not None:
                at = watch.next_mark(clock.now_ms())
                if at is not None and (at, CLOSE, after_closes) < heap[0][:3]:
                    self.stats.mark_events += 1
                    clock.set(at)
                    self.mark(at)
                    watch.marked()
                    continue
            when, phase, i, k = heap[0]  # handled in place: its successor replaces it below
            track = tracks[i]
            if phase == OPEN:
                self._on_open(track, k)
                if manager.working:  # the execution manager advances its orders
                    await manager.poll()
            else:
                await self._on_close(track, k)
            if after_event is not None:
                after_event(track.symbol, clock.now_ms(), phase)
            event = self._next_event(track)
            if event is None:
                heapq.heappop(heap)
            else:  # one sift instead of a pop and a push
                heapq.heapreplace(heap, (event[0], event[1], i, event[2]))
            done += 1
            if progress is not None and done % 512 == 0:
                progress(when)
        return self.stats
