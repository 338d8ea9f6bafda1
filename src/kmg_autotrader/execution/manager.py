"""The execution manager: approved intents in, orders and positions out.

``MARKET_ONLY``: one market order. ``LIMIT_BRACKET``: a post-only limit at the best bid (buy)
or ask (sell), re-priced after a timeout up to ``max_reprices`` times, then an optional market
fallback; once the entry is done a take-profit limit rests on the exchange while the stop is
watched by the :class:`~kmg_autotrader.execution.tracker.PositionTracker` (synthetic OCO).

Work that waits for the market (a resting entry, a market order a backtest fills on the next
candle) is kept in a small in-memory working set that :meth:`ExecutionManager.poll` advances;
live loops call it every few seconds, a backtest after every candle it feeds the exchange.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from loguru import logger

from kmg_autotrader.domain import (
    ExecutionMode,
    Mode,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Position,
    Side,
)
from kmg_autotrader.domain.clock import Clock
from kmg_autotrader.exchange.errors import (
    ExchangeAdapterError,
    InsufficientFundsError,
    InvalidOrderError,
)
from kmg_autotrader.execution.book import OPEN, OPENING, WORKING
from kmg_autotrader.execution.errors import (
    IntentBlockedError,
    LiveTradingRefusedError,
    OrderRejectedError,
    UnresolvedOrderError,
)
from kmg_autotrader.execution.ids import intent_key
from kmg_autotrader.execution.orders import Hook, OrderClient, RetrySettings
from kmg_autotrader.execution.ports import ExchangePort, TradingStore, dec
from kmg_autotrader.execution.precision import check_limits, round_amount, round_price
from kmg_autotrader.execution.rate_limit import NoRateLimit, RateLimiter

TP_ORDER = "tp_order"  # position.extra key: client id of the resting take-profit
BACKING_OFF = "backing off"  # how a skipped exit says it waits after a refusal


@dataclass(frozen=True, slots=True)
class ExecutionConfig:
    """How intents are executed. Times are milliseconds of the injected clock."""

    execution_mode: ExecutionMode = ExecutionMode.MARKET_ONLY
    limit_timeout_ms: int = 30_000
    max_reprices: int = 3
    market_fallback: bool = True
    trailing_stop_pct: Decimal | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)
    # after a refused exit, the next try waits this long, doubling up to the maximum
    exit_backoff_ms: int = 10_000
    exit_backoff_max_ms: int = 15 * 60_000


class ExecutionReport(NamedTuple):
    """What happened to one intent (or exit) so far.

    ``status``: ``filled`` | ``partial`` | ``working`` (waiting for the market) | ``rejected``
    | ``unresolved`` | ``duplicate`` | ``blocked`` | ``skipped``.

    A named tuple, not a frozen dataclass: several are made per order, and a frozen dataclass
    stores each field through ``object.__setattr__`` (several times a tuple's cost).
    """

    status: str
    intent_id: str | None = None
    position_id: int | None = None
    orders: tuple[Order, ...] = ()
    filled: Decimal = Decimal(0)
    average_price: Decimal | None = None
    message: str = ""


@dataclass(slots=True)
class _Working:
    client_order_id: str
    kind: str  # entry_market | entry_limit | exit | take_profit
    intent_id: str | None
    position_id: int | None
    deadline: int = 0
    reprices: int = 0
    target: Decimal = Decimal(0)  # total amount the entry wants
    intended: Decimal | None = None
    resumed: bool = False  # adopted after a restart: no re-price, no fallback


_ZERO = Decimal(0)
_UNFINISHED = (OrderStatus.CANCELED, OrderStatus.EXPIRED)  # ended before filling in full
_UNACKNOWLEDGED = (OrderStatus.PENDING, OrderStatus.UNRESOLVED)


def _report(
    status: str,
    orders: list[Order],
    *,
    intent_id: str | None = None,
    position_id: int | None = None,
    message: str = "",
) -> ExecutionReport:
    if len(orders) == 1:  # the usual case: the same sums without the generators
        order = orders[0]
        filled = _ZERO + order.filled
        value = _ZERO + order.filled * (order.average_price or 0)
    else:
        filled = sum((o.filled for o in orders), _ZERO)
        value = sum((o.filled * (o.average_price or 0) for o in orders), _ZERO)
    # positional, in field order: cheaper than keywords through the named tuple's __new__
    return ExecutionReport(
        status,
        intent_id,
        position_id,
        tuple(orders),
        filled,
        value / filled if filled else None,
        message,
    )


class ExecutionManager:
    """Runs approved intents in the configured execution mode on one exchange and store."""

    def __init__(
        self,
        exchange: ExchangePort,
        store: TradingStore,
        *,
        clock: Clock,
        config: ExecutionConfig | None = None,
        limiter: RateLimiter | NoRateLimit | None = None,
        hook: Hook | None = None,
    ) -> None:
        simulated = getattr(exchange, "simulated", None)
        if simulated is not None and simulated != (store.mode is Mode.PAPER):
            # PAPER never reaches a real exchange, LIVE never trades on a simulated one
            raise LiveTradingRefusedError(
                f"a {store.mode.value} execution manager cannot use exchange {exchange.id}"
            )
        self.exchange = exchange
        self.store = store
        self.clock = clock
        self.config = config or ExecutionConfig()
        self.orders = OrderClient(
            exchange, store, clock=clock, limiter=limiter, retry=self.config.retry, hook=hook
        )
        self.working: dict[str, _Working] = {}
        # calls that may have changed orders or positions: a reader compares it with the count
        # at its last store read instead of reading the store on every price tick
        self.actions = 0
        self._intents: dict[str, OrderIntent] = {}  # resting limit entry → its intent
        # position id → (refused exits in a row, clock ms before which no exit is tried)
        self._exit_backoff: dict[int, tuple[int, int]] = {}

    # ---- intents ----------------------------------------------------------------------------

    async def execute(self, intent: OrderIntent) -> ExecutionReport:
        """Run one approved intent. A buy opens a position; a sell exits the symbol's position.

        The same intent is never executed twice, and an unresolved order for it blocks it.
        """
        self.actions += 1
        if intent.mode is not self.store.mode:
            raise IntentBlockedError(
                f"intent is {intent.mode}, this manager runs {self.store.mode}"
            )
        key = intent_key(intent)
        previous = self.store.orders_for_intent(key)
        if previous:  # usually none: a new intent
            if any(o.status in (OrderStatus.UNRESOLVED, OrderStatus.PENDING) for o in previous):
                return _report("blocked", previous, intent_id=key, message="an order is unresolved")
            if any(o.status not in (OrderStatus.REJECTED,) for o in previous):
                return _report("duplicate", previous, intent_id=key, message="already executed")
        if intent.side is Side.SELL:
            return await self._sell_intent(intent)
        market = self.exchange.market(intent.symbol)
        amount = round_amount(market, intent.amount)
        try:
            check_limits(market, amount, intent.price)
        except InvalidOrderError as exc:
            return _report("rejected", [], intent_id=key, message=str(exc))
        position_id = self.store.open_position(
            Position(
                mode=self.store.mode,
                symbol=intent.symbol,
                amount=Decimal(0),
                entry_price=intent.price,
                opened_at=self.clock.now_ms(),
                stop_loss=intent.stop_loss,
                take_profit=intent.take_profit,
                trailing_stop_pct=self.config.trailing_stop_pct,
                highest_price=intent.price,
                extra={
                    "state": OPENING,
                    "intent_id": key,
                    "execution_mode": self.config.execution_mode._value_,  # no property call
                },
            )
        )
        if self.config.execution_mode is ExecutionMode.LIMIT_BRACKET:
            return await self._limit_entry(intent, key, position_id, amount, amount, 0)
        return await self._market(
            intent.symbol, Side.BUY, amount, "entry", key, position_id, intent.price, amount
        )

    async def _market(
        self,
        symbol: str,
        side: Side,
        amount: Decimal,
        purpose: str,
        intent_id: str | None,
        position_id: int | None,
        intended: Decimal | None,
        target: Decimal,
    ) -> ExecutionReport:
        try:
            order = await self.orders.place(
                symbol=symbol,
                side=side,
                type=OrderType.MARKET,
                amount=amount,
                purpose=purpose,
                intent_id=intent_id,
                position_id=position_id,
                intended_price=intended,
            )
        except OrderRejectedError as exc:
            if purpose == "entry" and position_id is not None:
                self.orders.book.finish_entry(
                    position_id, self.exchange.market(symbol), self.clock.now_ms()
                )
            else:
                self._refresh(position_id, symbol)
            return _report(
                "rejected", [], intent_id=intent_id, position_id=position_id, message=str(exc)
            )
        except UnresolvedOrderError as exc:
            return _report(
                "unresolved", [], intent_id=intent_id, position_id=position_id, message=str(exc)
            )
        kind = "entry_market" if purpose == "entry" else "exit"
        return await self._after(
            order,
            _Working(
                order.client_order_id,
                kind,
                intent_id,
                position_id,
                target=target,
                intended=intended,
            ),
        )

    async def _limit_entry(
        self,
        intent: OrderIntent,
        key: str,
        position_id: int,
        amount: Decimal,
        target: Decimal,
        reprices: int,
    ) -> ExecutionReport:
        market = self.exchange.market(intent.symbol)
        await self.orders.limiter.acquire("market_data")
        book = await self.exchange.fetch_order_book(intent.symbol)
        bids = book.get("bids") or []
        price = round_price(market, dec(bids[0][0]) if bids else intent.price, Side.BUY)
        try:
            order = await self.orders.place(
                symbol=intent.symbol,
                side=Side.BUY,
                type=OrderType.LIMIT,
                amount=amount,
                price=price,
                post_only=True,
                purpose="entry",
                intent_id=key,
                position_id=position_id,
                intended_price=intent.price,
            )
        except OrderRejectedError as exc:
            if isinstance(exc.__cause__, InsufficientFundsError):
                self._finish_entry(key, position_id, intent.symbol)
                return _report(
                    "rejected", [], intent_id=key, position_id=position_id, message=str(exc)
                )
            # post-only refused (the book moved): count it as a re-price, or fall back
            logger.info("limit entry {} refused: {}", intent.symbol, exc)
            return await self._next_limit_step(intent, key, position_id, target, reprices + 1)
        except UnresolvedOrderError as exc:
            return _report(
                "unresolved", [], intent_id=key, position_id=position_id, message=str(exc)
            )
        work = _Working(
            order.client_order_id,
            "entry_limit",
            key,
            position_id,
            deadline=self.clock.now_ms() + self.config.limit_timeout_ms,
            reprices=reprices,
            target=target,
            intended=intent.price,
        )
        self._intents[order.client_order_id] = intent
        return await self._after(order, work)

    async def _next_limit_step(
        self, intent: OrderIntent, key: str, position_id: int, target: Decimal, reprices: int
    ) -> ExecutionReport:
        market = self.exchange.market(intent.symbol)
        done = sum((o.filled for o in self.store.orders_for_intent(key)), Decimal(0))
        remaining = round_amount(market, target - done)
        too_small = remaining <= 0 or (market.min_amount and remaining < market.min_amount)
        if not too_small:
            try:
                check_limits(market, remaining, intent.price)
            except InvalidOrderError:
                too_small = True
        if too_small:
            return self._finish_entry(key, position_id, intent.symbol)
        if reprices <= self.config.max_reprices:
            return await self._limit_entry(intent, key, position_id, remaining, target, reprices)
        if self.config.market_fallback:
            return await self._market(
                intent.symbol, Side.BUY, remaining, "entry", key, position_id, intent.price, target
            )
        return self._finish_entry(key, position_id, intent.symbol)

    def _finish_entry(self, key: str, position_id: int, symbol: str) -> ExecutionReport:
        position = self.orders.book.finish_entry(
            position_id, self.exchange.market(symbol), self.clock.now_ms()
        )
        orders = self.store.orders_for_intent(key)
        status = "filled" if position is not None and position.closed_at is None else "rejected"
        if len(orders) == 1:  # the usual case: the same sum and test without generators
            order = orders[0]
            filled = _ZERO + order.filled
            if status == "filled" and order.status in _UNFINISHED and order.filled < order.amount:
                status = "partial"
        else:
            filled = sum((o.filled for o in orders), _ZERO)
            if status == "filled" and any(
                o.status in _UNFINISHED and o.filled < o.amount for o in orders
            ):
                status = "partial"
        return _report(
            status,
            orders,
            intent_id=key,
            position_id=position_id,
            message=f"entry done: {filled} filled",
        )

    def _refresh(self, position_id: int | None, symbol: str) -> Position | None:
        if position_id is None:
            return None
        return self.orders.book.refresh(
            position_id, self.exchange.market(symbol), self.clock.now_ms()
        )

    async def _after(self, order: Order, work: _Working) -> ExecutionReport:
        """Decide what follows a synced order: keep waiting, re-price, bracket, or finish."""
        if order.status in WORKING and order.status is not OrderStatus.UNRESOLVED:
            if work.kind == "entry_limit" and self.clock.now_ms() >= work.deadline:
                order = await self.orders.safe_cancel(order.client_order_id)
                if order.status in WORKING:
                    self.working[order.client_order_id] = work
                    return _report(
                        "working", [order], intent_id=work.intent_id, position_id=work.position_id
                    )
            else:
                self.working[order.client_order_id] = work
                return _report(
                    "working", [order], intent_id=work.intent_id, position_id=work.position_id
                )
        self.working.pop(order.client_order_id, None)
        if work.resumed and work.kind.startswith("entry"):
            assert work.intent_id is not None and work.position_id is not None
            report = self._finish_entry(work.intent_id, work.position_id, order.symbol)
            await self._bracket(work.position_id)
            return report
        if work.kind == "entry_limit":
            intent = self._intents.pop(order.client_order_id)
            assert work.intent_id is not None and work.position_id is not None
            if order.filled < order.amount:
                return await self._next_limit_step(
                    intent, work.intent_id, work.position_id, work.target, work.reprices + 1
                )
            report = self._finish_entry(work.intent_id, work.position_id, order.symbol)
            await self._bracket(work.position_id)
            return report
        if work.kind == "entry_market":
            assert work.intent_id is not None and work.position_id is not None
            report = self._finish_entry(work.intent_id, work.position_id, order.symbol)
            await self._bracket(work.position_id)
            return report
        if work.kind in ("exit", "take_profit") and work.position_id is not None:
            position = self._refresh(work.position_id, order.symbol)
            if position is not None and position.closed_at is None and work.kind == "exit":
                # the exit order ended but the position is not flat: let the next check retry
                self.store.release_exit(work.position_id)
        status = "filled" if order.status is OrderStatus.FILLED else order.status.value
        return _report(status, [order], intent_id=work.intent_id, position_id=work.position_id)

    async def _bracket(self, position_id: int) -> None:
        """LIMIT_BRACKET: rest a take-profit limit for the whole position once the entry is in."""
        if self.config.execution_mode is not ExecutionMode.LIMIT_BRACKET:
            return
        position = self.store.get_position(position_id)
        if position is None or position.closed_at is not None or position.take_profit is None:
            return
        market = self.exchange.market(position.symbol)
        amount = round_amount(market, position.amount)
        price = round_price(market, position.take_profit, Side.SELL)
        try:
            check_limits(market, amount, price)
            order = await self.orders.place(
                symbol=position.symbol,
                side=Side.SELL,
                type=OrderType.LIMIT,
                amount=amount,
                price=price,
                purpose="take_profit",
                position_id=position_id,
                intended_price=price,
            )
        except (OrderRejectedError, InvalidOrderError, UnresolvedOrderError) as exc:
            # the mental take-profit in the tracker still protects the position
            logger.warning("take-profit for position {} not placed: {}", position_id, exc)
            self.store.add_event(
                "bracket_failed",
                str(exc),
                level="warning",
                details={"position_id": position_id, "symbol": position.symbol},
            )
            return
        extra = dict(position.extra)
        extra[TP_ORDER] = order.client_order_id
        self.store.update_position(position_id, extra=extra)

    async def _sell_intent(self, intent: OrderIntent) -> ExecutionReport:
        positions = self.store.open_positions(intent.symbol)
        if not positions:
            return _report(
                "rejected",
                [],
                intent_id=intent_key(intent),
                message=f"no open {intent.symbol} position to sell",
            )
        reports = [await self.exit_position(p.id or 0, "signal") for p in positions]
        orders = [o for r in reports for o in r.orders]
        status = "filled" if all(r.status == "filled" for r in reports) else reports[0].status
        return _report(status, orders, intent_id=intent_key(intent))

    # ---- exits ------------------------------------------------------------------------------

    async def exit_position(
        self,
        position_id: int,
        reason: str,
        *,
        intended_price: Decimal | None = None,
        force: bool = False,
    ) -> ExecutionReport:
        """Close a position at market, once: the exit is claimed atomically first, so of two
        processes (the bot and ``kmg flatten``) only one ever sends an exit.

        The sell is sized to what the exchange says is free (never more than the position):
        coins that left the account cannot be sold, and a sell of them is refused. After a
        refused exit the next one waits (``exit_backoff_ms``, doubling per refusal up to
        ``exit_backoff_max_ms``) instead of being re-sent on every price tick; ``force`` (a
        flatten asked for by a human) tries at once.
        """
        self.actions += 1
        backoff = self._exit_backoff.get(position_id)
        if backoff is not None and not force and self.clock.now_ms() < backoff[1]:
            return ExecutionReport(
                "skipped",
                position_id=position_id,
                message=f"{BACKING_OFF} after {backoff[0]} refused exit(s), next try at "
                f"{backoff[1]}",
            )
        if not self.store.claim_exit(position_id):
            return ExecutionReport(
                "skipped", position_id=position_id, message="already exiting or closed"
            )
        try:
            position = self.store.get_position(position_id)
            assert position is not None
            extra = dict(position.extra)
            extra["exit_reason"] = reason
            extra["exit_claimed_at"] = str(self.clock.now_ms())
            self.store.update_position(position_id, extra=extra)
            for order in self.store.orders_for_position(position_id):
                if order.status in WORKING and order.status is not OrderStatus.UNRESOLVED:
                    try:
                        await self.orders.safe_cancel(order.client_order_id)  # OCO: the TP
                    except ExchangeAdapterError as exc:
                        # never let a protective order block the exit: on spot a TP still
                        # live holds the coins, so the exit below cannot oversell
                        logger.error("cancel {} before exit: {}", order.client_order_id, exc)
                        self.store.add_event(
                            "cancel_failed",
                            f"could not cancel {order.client_order_id} before exit: {exc}",
                            level="error",
                            details={"position_id": position_id, "symbol": position.symbol},
                        )
                    self.working.pop(order.client_order_id, None)
            position = self._refresh(position_id, position.symbol)
            if position is None or position.closed_at is not None:
                self._exit_backoff.pop(position_id, None)
                return ExecutionReport(
                    "filled", position_id=position_id, message="closed while cancelling its orders"
                )
            market = self.exchange.market(position.symbol)
            amount = round_amount(market, position.amount)
            try:
                check_limits(market, amount, intended_price or position.entry_price)
            except InvalidOrderError as exc:
                figures = self.orders.book.figures(position_id, market)
                self.store.close_position(
                    position_id,
                    closed_at=self.clock.now_ms(),
                    exit_price=intended_price or position.entry_price,
                    exit_reason=f"{reason}_dust",
                    realized_pnl=figures.realized_pnl,
                    fees_paid=figures.fees_paid,
                )
                self._exit_backoff.pop(position_id, None)
                return ExecutionReport(
                    "skipped", position_id=position_id, message=f"left as dust: {exc}"
                )
            free = await self._free(market.base)
            if free is not None and free < amount:
                held = round_amount(market, free)
                logger.warning(
                    "exit of position {}: {} {} free on the exchange, the position holds {}",
                    position_id,
                    free,
                    market.base,
                    amount,
                )
                try:
                    check_limits(market, held, intended_price or position.entry_price)
                except InvalidOrderError as exc:
                    self.store.release_exit(position_id)
                    message = (
                        f"exit of position {position_id} not sent: {free} {market.base} free on "
                        f"the exchange, the position holds {amount} ({exc})"
                    )
                    self._exit_refused(position_id, position.symbol, message)
                    return _report("rejected", [], position_id=position_id, message=message)
                amount = held
            report = await self._market(
                position.symbol,
                Side.SELL,
                amount,
                reason,
                None,
                position_id,
                intended_price,
                amount,
            )
        except (ExchangeAdapterError, UnresolvedOrderError):
            self.store.release_exit(position_id)
            raise
        if report.status == "rejected":
            self.store.release_exit(position_id)
            self._exit_refused(position_id, position.symbol, report.message)
        else:
            self._exit_backoff.pop(position_id, None)
        return report

    async def _free(self, currency: str) -> Decimal | None:
        """What the exchange says is free of ``currency``; None when it cannot be read (the
        exit then goes out sized to the position: a failed read must not block a stop)."""
        try:
            await self.orders.limiter.acquire("query")
            balance = await self.exchange.fetch_balance()
        except ExchangeAdapterError as exc:
            logger.warning("balance before an exit could not be read: {}", exc)
            return None
        free = (balance.get("free") or {}).get(currency)
        # not listed: unknown rather than zero (a currency code the client maps differently
        # must never keep a stop from firing; a refused sell then backs off)
        return None if free is None else dec(free)

    def _exit_refused(self, position_id: int, symbol: str, message: str) -> None:
        """Count a refused exit, schedule the next try (exponential back-off), record it."""
        count = self._exit_backoff.get(position_id, (0, 0))[0] + 1
        wait = min(self.config.exit_backoff_ms * 2 ** (count - 1), self.config.exit_backoff_max_ms)
        retry_at = self.clock.now_ms() + wait
        self._exit_backoff[position_id] = (count, retry_at)
        logger.error(
            "exit of position {} ({}) refused ({} in a row), next try in {} s: {}",
            position_id,
            symbol,
            count,
            wait // 1000,
            message,
        )
        self.store.add_event(
            "exit_rejected",
            f"exit of position {position_id} ({symbol}) refused, next try in {wait // 1000} s: "
            f"{message}"[:1000],
            level="error",
            details={
                "position_id": position_id,
                "symbol": symbol,
                "refusals": count,
                "retry_at": retry_at,
            },
        )

    # ---- waiting work -----------------------------------------------------------------------

    async def poll(self) -> list[ExecutionReport]:
        """Advance every working order: sync fills, re-price timed-out limits, bracket entries."""
        reports: list[ExecutionReport] = []
        for coid, work in list(self.working.items()):
            try:
                order = await self.orders.sync(coid)
            except ExchangeAdapterError as exc:
                logger.warning("poll {}: {}", coid, exc)
                continue
            reports.append(await self._after(order, work))
        self.actions += bool(reports)
        return reports

    def resume(self) -> int:
        """After a restart, watch again every order still open in the store.

        Run :func:`~kmg_autotrader.execution.recovery.recover` (reconciliation first, then
        this) so their state is current. Each order is handed to :meth:`adopt`. Returns how
        many orders are watched.
        """
        for order in self.store.open_orders():
            self.adopt(order)
        return len(self.working)

    def adopt(self, order: Order) -> bool:
        """Watch a working order this process is not watching (after a restart, or once
        reconciliation resolved it); True when it is now in the working set.

        A resting or partly filled entry gets a fresh timeout, then is cancelled and the entry
        finished with what filled: the position opens with its stop and bracket (its intent is
        gone, so no re-price and no market fallback). An exit (any purpose: a stop, a signal,
        a take-profit at market) is polled until it ends. A resting take-profit limit is the
        tracker's, through its position (linked again if the link was lost). Orders the
        exchange never acknowledged (PENDING, UNRESOLVED) are left to reconciliation: polling
        one would ask the exchange about an order it may not know on every price tick.
        """
        coid = order.client_order_id
        if coid in self.working or order.status in _UNACKNOWLEDGED or order.status.is_terminal:
            return coid in self.working
        position_id = self.store.order_position_id(coid)
        if position_id is None:
            return False  # not ours to finish (reconciliation reports it)
        if order.side is Side.SELL and order.type is OrderType.LIMIT:
            position = self.store.get_position(position_id)
            if (
                position is not None
                and position.closed_at is None
                and TP_ORDER not in position.extra
            ):
                extra = dict(position.extra)
                extra[TP_ORDER] = coid  # died between placing it and linking it
                self.store.update_position(position_id, extra=extra)
            return False
        if order.side is Side.BUY:
            kind = "entry_limit" if order.type is OrderType.LIMIT else "entry_market"
        else:
            kind = "exit"
        self.working[coid] = _Working(
            coid,
            kind,
            order.intent_id,
            position_id,
            deadline=self.clock.now_ms() + self.config.limit_timeout_ms,
            target=order.amount,
            resumed=True,
        )
        self.actions += 1
        return True

    def working_count(self) -> int:
        """How many orders are waiting for the market."""
        return len(self.working)


__all__ = ["OPEN", "ExecutionConfig", "ExecutionManager", "ExecutionReport"]
