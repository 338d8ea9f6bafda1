"""The live loop: on every closed candle, run the one decision pipeline; on every price, check
the mental stops; keep equity, risk state, health, alerts, the vault and snapshots current.

The same :class:`Bot` runs ``kmg run`` (live feed, wall clock) and ``kmg demo`` / the parity
test (replay feed, simulated clock): only the feed, the clock and the exchange differ.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from loguru import logger

from kmg_autotrader.autopilot.control import TradingControl
from kmg_autotrader.autopilot.feeds import ClosedCandle, Feed, LiveFeed
from kmg_autotrader.autopilot.health import HealthState
from kmg_autotrader.autopilot.history import CandleHistory
from kmg_autotrader.autopilot.jobs import ScheduledJobs
from kmg_autotrader.autopilot.reports import period_summary, snapshot_state, summary_line
from kmg_autotrader.domain import Balance, Candle, EquityPoint, MarketInfo, Mode, Position, Side
from kmg_autotrader.domain.clock import Clock, WallClock
from kmg_autotrader.execution.flatten import FlattenSummary, flatten
from kmg_autotrader.execution.manager import ExecutionManager, ExecutionReport
from kmg_autotrader.execution.paper import PaperExchange
from kmg_autotrader.execution.tracker import PositionTracker
from kmg_autotrader.pipeline.decision import DecisionPipeline, PendingEntry, PipelineOutcome
from kmg_autotrader.pipeline.feedback import PositionFeedback
from kmg_autotrader.portfolio.balances import ExchangeBalances
from kmg_autotrader.portfolio.equity import mark_equity
from kmg_autotrader.risk.portfolio_state import PortfolioState
from kmg_autotrader.signals.engine import SignalEngine
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.vault import SnapshotWriter, VaultKind, VaultWriter

DAY_MS = 86_400_000
RISK_MARK_EVERY_MS = 3_600_000  # an unchanged equity is re-marked to the risk manager hourly
# Wall seconds the last look at working orders and balances may take when the bot stops
# (a throttled exchange client may queue each call for seconds; the next start reconciles).
FINAL_SYNC_S = 1.0

# Risk rejections worth an alert (the routine ones — cooldowns, fee edge — are only recorded).
NOTABLE_REJECTIONS = frozenset(
    {"DRAWDOWN_BREAKER", "DAILY_LOSS_KILL_SWITCH", "INSUFFICIENT_CASH", "INTERNAL_ERROR"}
)


@dataclass
class BotSummary:
    """What a run did (printed by ``kmg demo`` when the data ends)."""

    candles: int = 0
    decisions: int = 0
    candidates: int = 0
    entries: int = 0
    exits: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    paused_skips: int = 0
    review_skips: int = 0  # candidates skipped: the advisor still reviewed one of the symbol
    advisor_calls: int = 0  # candidates the advisor reviewed (answers, fallbacks, replays)
    advisor_vetoes: int = 0
    gaps: int = 0
    first_equity: Decimal | None = None
    last_equity: Decimal | None = None


@dataclass
class BotParts:
    """Everything the bot is wired from (built by :mod:`kmg_autotrader.autopilot.wiring`)."""

    mode: Mode
    quote: str
    clock: Clock
    repos: Repositories
    engine: SignalEngine
    pipeline: DecisionPipeline
    manager: ExecutionManager
    tracker: PositionTracker
    risk: Any  # RiskManager: update_equity / record_entry / record_trade_closed / status
    markets: dict[str, MarketInfo]
    control: TradingControl
    health: HealthState
    paper: PaperExchange | None = None
    alerts: Any = None  # AlertService
    vault: VaultWriter | None = None
    snapshots: SnapshotWriter | None = None
    settings_view: dict[str, Any] = field(default_factory=dict)
    advisor_status: Callable[[], dict[str, Any]] | None = None
    snapshot_every_ms: int = 15 * 60_000
    history: CandleHistory = field(default_factory=CandleHistory)
    feedback: PositionFeedback | None = None  # tells the risk manager about fills and exits
    # LIVE: the account as the exchange reports it (PAPER's account is the paper exchange)
    balances: ExchangeBalances | None = None


class Bot:
    """One trading bot over one mode, exchange and set of symbols."""

    def __init__(self, parts: BotParts) -> None:
        self.p = parts
        self.summary = BotSummary()
        self.last_prices: dict[str, Decimal] = {}
        self._open_ids: set[int] = {p.id for p in self._open_positions() if p.id is not None}
        # symbols with a position (opening or open) as of the last _after_fills: every path that
        # changes positions (decisions, stops, fills, flatten) runs _after_fills right after
        self._held: set[str] = {p.symbol for p in self.p.manager.store.open_positions()}
        self._seen_actions = self.p.manager.actions  # the manager's count at the last store read
        # (id, amount) of the open positions when the exchange's balances were last asked for
        self._balance_marks = self._position_marks(self.p.manager.store.open_positions())
        self._equity_step: int | None = None
        self._risk_marked: tuple[Decimal, int] | None = None  # last equity told to risk, when
        self._step_closes: dict[str, tuple[int, Decimal]] = {}  # replayed closes not yet due
        self._fed: dict[str, int] = {}  # symbol → open time of the last bar given to the paper book
        self._stopping = False
        self.pending_flatten: list[Any] = []  # risk events asking to close everything
        # one decision at a time: candles and prices interleave. Never held across the advisor's
        # review (a network call of up to minutes): stops, exits and stopping must not wait on it
        self._lock = asyncio.Lock()
        self._reviewing: set[str] = set()  # symbols whose candidate is with the advisor
        self._review_tasks: dict[str, asyncio.Task[PipelineOutcome | PendingEntry]] = {}
        self._flattens = 0  # flattens so far: a candidate reviewed across one is dropped
        # live, a review goes on in the background and the symbol's next candles are handled
        # meanwhile (a replay awaits it: its decisions must not depend on the LLM's speed)
        self._detach_reviews = False
        self._detached: set[asyncio.Task[PipelineOutcome | None]] = set()
        self.jobs = ScheduledJobs(
            parts.clock,
            daily=self._daily_summary,
            weekly=self._weekly_summary,
            snapshot=self._snapshot,
            snapshot_every_ms=parts.snapshot_every_ms,
            snapshot_clock=WallClock(),
        )

    # ---- public controls (the API and the chat call these) -----------------------------------

    def pause(self, source: str, reason: str = "") -> dict[str, Any]:
        """Stop new trades; data, stops and exits keep running."""
        return self.p.control.pause(source, reason)

    def resume(self, source: str) -> dict[str, Any]:
        """Take new trades again."""
        return self.p.control.resume(source)

    def is_paused(self) -> bool:
        """True while new trades are suspended."""
        return self.p.control.is_paused()

    async def flatten(self, source: str) -> FlattenSummary:
        """Cancel every open order and close every position of this mode."""
        async with self._lock:
            return await self._flatten(source)

    async def _flatten(self, source: str) -> FlattenSummary:
        logger.warning("flatten requested by {}", source)
        self._flattens += 1
        summary = await flatten(self.p.manager)
        self.p.repos.events.add(
            self.p.mode,
            "flatten",
            "; ".join(summary.lines()) or "nothing to flatten",
            level="warning",
            source=source,
        )
        await self._after_fills()
        return summary

    # ---- the loop ---------------------------------------------------------------------------

    async def run(self, feed: Feed, stop: asyncio.Event) -> BotSummary:
        """Drive the bot from ``feed`` until the data ends or ``stop`` is set."""
        self.p.health.feed_status = "starting"
        self._detach_reviews = isinstance(feed, LiveFeed)
        heartbeat = asyncio.create_task(self._heartbeat(stop))
        watcher = asyncio.create_task(self._stop_reviews_on(stop))
        try:
            await feed.run(self.on_candle, self.on_price, stop, on_open=self.on_open)
        finally:
            self._stop_reviews()
            if self._detached:  # cancelled reviews: their candidates are dropped at once
                await asyncio.wait(self._detached, timeout=FINAL_SYNC_S)
            logger.info("stopping: no new decisions; finishing in-flight order handling")
            for task in (heartbeat, watcher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            try:  # finish in-flight order handling, bounded: SIGTERM must end the run soon
                await asyncio.wait_for(self._final_sync(), timeout=FINAL_SYNC_S)
            except TimeoutError:
                logger.warning(
                    "stopping: the last look at orders and balances took over {:g} s; cut short "
                    "(the next start reconciles with the exchange)",
                    FINAL_SYNC_S,
                )
            self._mark_equity(self.p.clock.now_ms())
            logger.debug("stopping: fills and equity recorded")
        return self.summary

    async def _stop_reviews_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stop_reviews()

    def _stop_reviews(self) -> None:
        """Stopping: no new decisions, and the advisor's reviews in flight are cancelled (a
        hanging LLM must not hold the exit; their candidates are dropped)."""
        self._stopping = True
        for task in self._review_tasks.values():
            task.cancel()

    async def _final_sync(self) -> None:
        async with self._lock:
            await self._after_fills()

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        """Polls working orders and runs due jobs even when no candle arrives."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=5)
            async with self._lock:
                try:
                    await self._after_fills()
                    await self.jobs.tick()
                except Exception as exc:  # the heartbeat must never die
                    self._error(f"heartbeat: {exc}")

    async def on_price(self, symbol: str, price: float, timestamp: int) -> None:
        """A price tick (live): fill what it crosses, check the mental stops."""
        if self._stopping:
            return
        async with self._lock:
            value = Decimal(str(price))
            self.last_prices[symbol] = value
            fills = (
                None if self.p.paper is None else self.p.paper.on_price(symbol, value, timestamp)
            )
            # a paper tick that filled nothing, with no order working and no feedback due,
            # changed no position: no store read on every tick (as for candles)
            if fills or self.p.paper is None or self._store_may_have_changed():
                await self._after_fills()
            await self._check_stops(symbol, value, value, value)

    async def on_open(self, event: ClosedCandle) -> None:
        """A replayed candle at its open time: orders decided on earlier closes fill at its
        open (or within its range, for limits), stamped with the open time. Its close, the
        stops and the decision come later, in :meth:`on_candle`."""
        if self._stopping:
            return
        async with self._lock:
            try:
                self._start_step(event.closed_at)
                # its close is known at closed_at, for every symbol of the step at once
                self._step_closes[event.symbol] = (
                    event.closed_at,
                    Decimal(str(event.candle.close)),
                )
                fills = self._feed_bar(event.symbol, event.candle)
                if fills or self._store_may_have_changed():
                    await self._after_fills()
            except Exception as exc:  # one bad candle must not kill the bot
                self._error(f"{event.symbol} candle {event.candle.timestamp} open: {exc!r}")
                logger.exception("candle open handling failed")

    async def on_candle(self, event: ClosedCandle) -> PipelineOutcome | None:
        """A closed candle: fills at its prices, stops, then the decision on its close.

        An entry candidate the advisor must review leaves the lock for the review and takes it
        again for the risk gate and the order, after checking that the candidate still holds.
        A replay awaits every candle in turn, so its decisions do not depend on this split;
        live, the review goes on in the background (None is returned at once).
        """
        if self._stopping:
            return None
        async with self._lock:
            try:
                staged = await self._on_candle(event)
            except Exception as exc:  # one bad candle must not kill the bot
                self._error(f"{event.symbol} candle {event.candle.timestamp}: {exc!r}")
                logger.exception("candle handling failed")
                return None
            if not isinstance(staged, PendingEntry):
                return staged
            self._reviewing.add(event.symbol)  # (under the lock: no second review of it)
        if self._detach_reviews:
            task = asyncio.create_task(self._review_and_finish(event, staged))
            self._detached.add(task)
            task.add_done_callback(self._detached.discard)
            return None
        return await self._review_and_finish(event, staged)

    async def _review_and_finish(
        self, event: ClosedCandle, pending: PendingEntry
    ) -> PipelineOutcome | None:
        try:
            return await self._reviewed_entry(event, pending)
        finally:
            self._reviewing.discard(event.symbol)

    async def _reviewed_entry(
        self, event: ClosedCandle, pending: PendingEntry
    ) -> PipelineOutcome | None:
        """The advisor's review of ``pending`` (outside the lock), then, under the lock, the
        candidate checked against the state as it is now, the risk gate and the order."""
        symbol = event.symbol
        flattens = self._flattens
        try:
            reviewed = await self._review(pending)
        except Exception as exc:  # an advisor stage bug must not kill the bot
            self._error(f"{symbol} candle {event.candle.timestamp} advisor: {exc!r}")
            logger.exception("advisor review failed")
            return None
        if reviewed is None:  # stopping: cancelled, no lock needed to drop it
            outcome = self.p.pipeline.reject(
                pending, "STOPPING", "the bot stopped while the advisor reviewed the candidate"
            )
            self._after_outcome(outcome)
            return outcome
        async with self._lock:
            try:
                if isinstance(reviewed, PipelineOutcome):  # vetoed
                    outcome = reviewed
                else:
                    stale = self._stale(reviewed, flattens)
                    if stale is not None:
                        outcome = self.p.pipeline.reject(reviewed, *stale)
                    else:
                        outcome = await self.p.pipeline.finish(
                            reviewed, market=self.p.markets[symbol], now_ms=self.p.clock.now_ms()
                        )
                await self._settle(outcome)
                await self._after_decision()
                return outcome
            except Exception as exc:  # one bad candle must not kill the bot
                self._error(f"{symbol} candle {event.candle.timestamp}: {exc!r}")
                logger.exception("candle handling failed")
                return None

    async def _review(self, pending: PendingEntry) -> PipelineOutcome | PendingEntry | None:
        """The advisor's review as a task stopping can cancel; None when it was cancelled."""
        symbol = pending.candidate.symbol
        if self._stopping:
            return None
        task = asyncio.create_task(self.p.pipeline.review(pending), name=f"review {symbol}")
        self._review_tasks[symbol] = task
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:  # our caller is cancelled: so is the review
            task.cancel()
            raise
        finally:
            self._review_tasks.pop(symbol, None)
        if task.cancelled():
            return None
        return task.result()

    def _stale(self, pending: PendingEntry, flattens: int) -> tuple[str, str] | None:
        """Why a reviewed candidate no longer holds (reason code, message), or None.

        The review took a while: the bot may be stopping or paused, everything may have been
        flattened, the symbol may be held, or the price may have left the candidate's range.
        The risk gate then judges the rest (breakers, cooldowns, cash) on the state as of now.
        """
        candidate = pending.candidate
        symbol = candidate.symbol
        if self._stopping:
            return "STOPPING", "the bot is stopping"
        if self._flattens != flattens:
            return "FLATTENED", "every position was flattened while the advisor reviewed"
        if self.is_paused():
            return "PAUSED", "trading was paused while the advisor reviewed"
        if symbol in self._held:
            return "POSITION_HELD", f"{symbol} is held now"
        price = self.last_prices.get(symbol)
        if price is None:
            return None
        low, high = candidate.stop_loss, candidate.take_profit
        if candidate.side is Side.SELL:
            low, high = high, low
        if (low is not None and price <= Decimal(str(low))) or (
            high is not None and price >= Decimal(str(high))
        ):
            return (
                "PRICE_MOVED",
                f"{symbol} price {price} left the candidate's range "
                f"({low}..{high}) while the advisor reviewed",
            )
        return None

    def _start_step(self, closed_at: int) -> None:
        """Entering the time step closing at ``closed_at``: mark the previous step's equity
        (its closes, before anything of this step fills)."""
        if closed_at != self._equity_step and self._equity_step is not None:
            self._mark_equity(self._equity_step)
        self._equity_step = closed_at

    def _store_may_have_changed(self) -> bool:
        """Orders or positions may differ from the last store read: an order is working,
        feedback is due, or the manager acted since (an order placed, adopted or exited from
        outside the bot's own decision, too): a stop is never checked against a stale view."""
        return (
            bool(self.p.manager.working)
            or self._feedback_pending()
            or self.p.manager.actions != self._seen_actions
        )

    def _feedback_pending(self) -> bool:
        return self.p.feedback is not None and bool(self.p.feedback.pending)

    def _feed_bar(self, symbol: str, candle: Candle) -> list[Any] | None:
        """Give ``candle`` to the paper exchange, once (market orders fill at its open).

        Returns the fills it caused; None when there is no paper exchange or it had the bar.
        """
        if self.p.paper is None or self._fed.get(symbol) == candle.timestamp:
            return None
        self._fed[symbol] = candle.timestamp
        return self.p.paper.on_bar(
            symbol,
            candle.timestamp,
            Decimal(str(candle.open)),
            Decimal(str(candle.high)),
            Decimal(str(candle.low)),
            Decimal(str(candle.close)),
            Decimal(str(candle.volume)),
        )

    async def _on_candle(self, event: ClosedCandle) -> PipelineOutcome | PendingEntry | None:
        symbol, candle = event.symbol, event.candle
        self.summary.candles += 1
        self.p.health.last_candle_at = event.closed_at
        self.p.health.feed_status = (
            "ok" if self.p.health.feed_status == "starting" else (self.p.health.feed_status)
        )
        self._start_step(event.closed_at)
        # every candle of a replayed step has closed now: value the account at all their closes
        # (as the backtester does), not only at those of symbols handled so far
        for closed_symbol, (closed_at, close) in list(self._step_closes.items()):
            if closed_at <= event.closed_at:
                self.last_prices[closed_symbol] = close
                del self._step_closes[closed_symbol]
        # 1. the market moved through this candle: fill what was waiting (decided earlier),
        #    unless the feed already gave the bar at its open
        fills = self._feed_bar(symbol, candle)
        self.last_prices[symbol] = Decimal(str(candle.close))
        # fed at its open: on_open checked. Live, a bar that filled nothing, with no order
        # working and no feedback due, left positions as the last _after_fills saw them
        if self.p.paper is None or (
            fills is not None and (fills or self._store_may_have_changed())
        ):
            await self._after_fills()
        # 2. mental stop-loss / take-profit against the candle's range
        await self._check_stops(
            symbol,
            Decimal(str(candle.close)),
            Decimal(str(candle.low)),
            Decimal(str(candle.high)),
        )
        # 3. a decision on the close, never bridging a gap in the data
        if event.gap_before:
            self.summary.gaps += 1
            self.p.engine.reset(symbol)
            self.p.history.clear(symbol)
            self.p.repos.events.add(
                self.p.mode,
                "data_gap",
                f"{symbol}: candles missing before {candle.timestamp}; strategy warms up again",
                level="warning",
                source="autopilot",
                details={"symbol": symbol},
                created_at=event.closed_at,
            )
        self.p.history.add(symbol, candle)
        outcome = await self._decide(symbol, candle, event.closed_at)
        await self._after_decision()
        return outcome

    async def _after_decision(self) -> None:
        """Due jobs, then what the risk manager asked for (the daily kill-switch: flatten)."""
        await self.jobs.tick()
        while self.pending_flatten:  # the daily kill-switch asked to close everything
            event_ = self.pending_flatten.pop(0)
            await self._flatten(f"risk:{getattr(event_, 'kind', 'kill_switch')}")

    async def _decide(
        self, symbol: str, candle: Candle, closed_at: int
    ) -> PipelineOutcome | PendingEntry | None:
        """The signal engine's decision on ``candle``, acted on; an entry candidate the advisor
        must review comes back as a :class:`PendingEntry` (see :meth:`on_candle`)."""
        held = symbol in self._held
        decision = self.p.engine.on_candle(symbol, candle, position_open=held)
        if decision.is_empty:
            return None
        self.summary.decisions += 1
        if decision.candidate is not None and self.is_paused():
            self.summary.paused_skips += 1
            logger.info("{}: entry candidate skipped, trading is paused", symbol)
            return None
        if decision.candidate is not None and symbol in self._reviewing:
            self.summary.review_skips += 1
            logger.info("{}: entry candidate skipped, the advisor still reviews the last", symbol)
            return None
        self.summary.candidates += decision.candidate is not None
        now = self.p.clock.now_ms()
        staged = await self.p.pipeline.begin(decision, now_ms=now)
        if isinstance(staged, PendingEntry):
            if self.p.pipeline.reviews:
                return staged  # reviewed outside the lock
            staged = await self.p.pipeline.finish(staged, market=self.p.markets[symbol], now_ms=now)
        return await self._settle(staged)

    async def _settle(self, outcome: PipelineOutcome) -> PipelineOutcome:
        """Count and alert on what ``outcome`` did, then notice the positions it changed."""
        if outcome.risk is not None:
            self._risk_marked = None  # the verdict observed equity: mark the next one
        self._after_outcome(outcome)
        # an outcome that sent no order, with no order working and no feedback due (a rejected
        # or vetoed candidate, a recorded signal), changed no position: nothing to look at
        if outcome.orders or self._store_may_have_changed():
            await self._after_fills()
        return outcome

    def _after_outcome(self, outcome: PipelineOutcome) -> None:
        if outcome.advice is not None:
            self.summary.advisor_calls += 1
            self.summary.advisor_vetoes += outcome.stage == "advisor"
        if outcome.advice is not None and not outcome.advice.valid and self.p.alerts:
            self.p.alerts.send(
                "llm_failure",
                reason=outcome.advice.fallback or "invalid answer",
                symbol=outcome.decision.symbol,
                detail=outcome.advice.error or "",
            )
        risk = outcome.risk
        if risk is not None and not risk.approved:
            self.summary.rejections[risk.reason_code] = (
                self.summary.rejections.get(risk.reason_code, 0) + 1
            )
            if risk.reason_code in NOTABLE_REJECTIONS and self.p.alerts:
                self.p.alerts.send(
                    "risk_rejection",
                    symbol=risk.symbol,
                    side=risk.side.value,
                    reason_code=risk.reason_code,
                    message=risk.message,
                )
        for report in (outcome.execution, *outcome.exits):
            if report is not None and report.status in {"rejected", "unresolved"}:
                self._trade_error(outcome.decision.symbol, report)

    # ---- fills, exits, equity -----------------------------------------------------------------

    async def _check_stops(self, symbol: str, price: Decimal, low: Decimal, high: Decimal) -> None:
        if symbol not in self._held:
            return  # no position of the symbol: nothing to check
        for signal in await self.p.tracker.on_price(symbol, price, low=low, high=high):
            if signal.error:
                self._error(f"{symbol} exit ({signal.reason}) failed: {signal.error}")
        await self._after_fills()

    async def _after_fills(self) -> None:
        """Advance working orders, then notice positions that opened or closed."""
        for report in await self.p.manager.poll():
            if report.status in {"rejected", "unresolved"}:
                self._trade_error(None, report)
        self._seen_actions = self.p.manager.actions
        open_now = self.p.manager.store.open_positions()  # one read for every symbol
        if self.p.feedback is not None:  # the same risk bookkeeping the backtester does
            now = self.p.clock.now_ms()
            for symbol in self.p.markets:
                self.p.feedback.sync(
                    symbol, now, positions=[p for p in open_now if p.symbol == symbol]
                )
        self._held = {p.symbol for p in open_now}
        if self.p.balances is not None:
            marks = self._position_marks(open_now)
            if marks != self._balance_marks:  # something filled or exited: ask the exchange
                self._balance_marks = marks
                await self.refresh_balances()
        current = {p.id: p for p in open_now if p.id is not None and p.amount > 0}
        for pid, position in current.items():
            if pid not in self._open_ids and position.amount > 0:
                self._open_ids.add(pid)
                self._on_entry_filled(position)
        for pid in list(self._open_ids - current.keys()):
            self._open_ids.discard(pid)
            closed = self.p.manager.store.get_position(pid)
            if closed is not None and closed.closed_at is not None:
                self._on_position_closed(closed)

    @staticmethod
    def _position_marks(positions: list[Position]) -> frozenset[tuple[int | None, Decimal]]:
        return frozenset((p.id, p.amount) for p in positions)

    async def refresh_balances(self, *, strict: bool = False) -> None:
        """LIVE: read the balances from the exchange (into the table and the equity).

        A failure is recorded and the last known balances stay in use, unless ``strict``
        (start-up: trading on balances never read would be trading blind), then it raises.
        """
        if self.p.balances is None:
            return
        try:
            await self.p.balances.refresh()
        except Exception as exc:
            if strict:
                raise
            self._error(f"balances could not be read from the exchange: {exc}")

    def _account_balances(self) -> list[Balance]:
        """The account's balances: the paper exchange's, the exchange's (LIVE), else the table."""
        if self.p.paper is not None:
            return self._balances()
        if self.p.balances is not None:
            return self.p.balances.current()
        return self.p.repos.balances.all(self.p.mode)

    def _open_positions(self) -> list[Position]:
        return [p for p in self.p.manager.store.open_positions() if p.amount > 0]

    def _on_entry_filled(self, position: Position) -> None:
        self.summary.entries += 1
        logger.info(
            "{} entry filled: {} at {}", position.symbol, position.amount, position.entry_price
        )
        if self.p.alerts:
            self.p.alerts.send(
                "order_filled",
                symbol=position.symbol,
                side="buy",
                amount=position.amount,
                price=position.entry_price,
                purpose="entry",
            )

    def _on_position_closed(self, position: Position) -> None:
        self.summary.exits += 1
        closed_at = position.closed_at or self.p.clock.now_ms()
        record = {
            "mode": self.p.mode.value,
            "position_id": position.id,
            "symbol": position.symbol,
            "entry_time": position.opened_at,
            "entry_price": position.entry_price,
            "exit_time": closed_at,
            "exit_price": position.exit_price,
            "amount": position.amount,
            "fees": position.fees_paid,
            "pnl": position.realized_pnl,
            "exit_reason": position.exit_reason,
        }
        if self.p.vault is not None:
            self.p.vault.try_append(VaultKind.TRADES, record, ts_ms=closed_at)
        logger.info(
            "{} closed ({}): PnL {} {}",
            position.symbol,
            position.exit_reason,
            position.realized_pnl,
            self.p.quote,
        )
        if self.p.alerts:
            self.p.alerts.send(
                "position_exited",
                symbol=position.symbol,
                amount=position.amount,
                entry_price=position.entry_price,
                exit_price=position.exit_price or Decimal(0),
                pnl=position.realized_pnl,
                reason=position.exit_reason or "",
                fees=position.fees_paid,
                position_id=position.id,
            )

    def portfolio_state(self, now_ms: int) -> PortfolioState:
        """The account as the risk manager judges it: balances and positions at last prices."""
        return PortfolioState.from_account(
            self._account_balances(),
            self.p.manager.store.open_positions(),
            self.last_prices,
            self.p.quote,
        )

    def _balances(self) -> list[Balance]:
        assert self.p.paper is not None
        raw = self.p.paper.engine.balance()
        out = []
        for currency, free in raw.get("free", {}).items():
            used = raw.get("used", {}).get(currency, 0)
            out.append(Balance(self.p.mode, currency, Decimal(str(free)), Decimal(str(used or 0))))
        return out

    def _risk_needs_mark(self, equity: Decimal, at_ms: int) -> bool:
        """False when telling the risk manager ``equity`` again could change nothing: the same
        value as its last mark, the same UTC day, no risk verdict in between (a verdict
        observes equity too, and may have moved the peak), and less than an hour since.

        A flat account then costs no risk-state write per candle; the peak, the day's start,
        the breaker and the kill-switch see exactly the values they would have seen.
        """
        last = self._risk_marked
        if last is None:
            return True
        equity_then, at_then = last
        return (
            equity != equity_then
            or at_ms // DAY_MS != at_then // DAY_MS
            or at_ms - at_then >= RISK_MARK_EVERY_MS
        )

    def _mark_equity(self, at_ms: int) -> EquityPoint | None:
        if not self.last_prices:
            return None
        point = mark_equity(
            self.p.mode, at_ms, self._account_balances(), self.last_prices, self.p.quote
        )
        self.p.repos.equity.add(point)
        if self._risk_needs_mark(point.equity, at_ms):
            if self.p.feedback is not None:
                self.p.feedback.mark(point.equity, at_ms)
            else:
                self.p.risk.update_equity(point.equity, at_ms)
            self._risk_marked = (point.equity, at_ms)
        if self.summary.first_equity is None:
            self.summary.first_equity = point.equity
        self.summary.last_equity = point.equity
        return point

    def refresh_health(self) -> dict[str, Any]:
        """Health with the breaker state read from the risk manager (for the API)."""
        self.p.health.breaker_state = _breaker_text(self.p.risk.status())
        data = self.p.health.to_dict(self.p.clock.now_ms())
        if self.p.advisor_status is not None:
            data["advisor"] = self.p.advisor_status()
        data["paused"] = self.is_paused()
        return data

    # ---- errors and jobs -------------------------------------------------------------------

    def _error(self, message: str) -> None:
        logger.error(message)
        self.p.health.record_error(message, self.p.clock.now_ms())
        self.p.repos.events.add(self.p.mode, "error", message, level="error", source="autopilot")

    def _trade_error(self, symbol: str | None, report: ExecutionReport) -> None:
        message = f"{report.status}: {report.message}"
        self._error(f"{symbol or 'order'} {message}")
        if self.p.alerts:
            self.p.alerts.send("trade_error", error=message, symbol=symbol or "")

    async def _daily_summary(self, start: int, end: int) -> None:
        summary = period_summary(self.p.repos, self.p.mode, start, end, quote=self.p.quote)
        logger.info("{} summary of the {}", self.p.mode.value.upper(), summary_line(summary))
        if self.p.vault is not None:
            self.p.vault.try_append(VaultKind.DAILY_SUMMARIES, summary, ts_ms=end)
        if self.p.alerts:
            self.p.alerts.send("daily_summary", **_alert_fields(summary))

    async def _weekly_summary(self, start: int, end: int) -> None:
        summary = period_summary(self.p.repos, self.p.mode, start, end, quote=self.p.quote)
        summary["week"] = summary.pop("day")
        logger.info(
            "{} summary of the {}", self.p.mode.value.upper(), summary_line(summary, key="week")
        )
        if self.p.alerts:
            self.p.alerts.send("weekly_summary", **_alert_fields(summary, key="week"))

    async def _snapshot(self, now: int) -> None:
        if self.p.snapshots is None:
            return
        advisor = self.p.advisor_status() if self.p.advisor_status else {}
        state = snapshot_state(
            self.p.repos,
            self.p.mode,
            now=now,
            risk={"status": self.p.risk.status(), "control": self.p.control.status()},
            health={**self.refresh_health(), "advisor": advisor},
            settings_view=self.p.settings_view,
        )
        await asyncio.to_thread(self.p.snapshots.write, state)


def _alert_fields(summary: dict[str, Any], key: str = "day") -> dict[str, Any]:
    fields = {
        key: summary[key],
        "pnl": summary["pnl"],
        "trades": summary["trades"],
        "wins": summary["wins"],
        "losses": summary["losses"],
        "fees": summary["fees"],
        "currency": summary["currency"],
        "max_drawdown_pct": summary["max_drawdown_pct"],
    }
    if summary.get("equity") is not None:
        fields["equity"] = summary["equity"]
    if summary.get("pnl_pct") is not None:
        fields["pnl_pct"] = summary["pnl_pct"]
    return fields


def _breaker_text(status: dict[str, Any]) -> str:
    breaker = status.get("breaker") or {}
    kill = status.get("kill_switch") or {}
    if isinstance(breaker, dict) and breaker.get("tripped"):
        return "tripped:drawdown"
    if isinstance(kill, dict) and (kill.get("tripped") or kill.get("active")):
        return "tripped:daily_loss"
    return "ok"
