"""Sending, looking up, syncing and cancelling single orders — idempotently.

The rules that keep money safe live here:

* an order is recorded (PENDING, with a fresh client order id) *before* it is sent;
* a create is never simply retried: after an ambiguous error (timeout, dropped connection, 5xx)
  the order is looked up by client id, and re-sent (with the same id) only once its absence is
  *proven*: ``absent_answers`` "not found" answers in a row spread over ``absent_window_s``
  (exchanges show a new order late), the open orders do not list it, and the account's trades
  since it was sent hold none of its side that is not one of our known orders. One "not found"
  proves nothing: Binance and Kraken keep a client id unique among *open* orders only, so a
  blind re-send of a market order that filled trades twice;
* when the exchange cannot tell, the order becomes UNRESOLVED and nothing is re-sent;
* every trade the exchange reports is stored once, and the order's position is recomputed;
* a cancel is always followed by a look-up, so a fill that lands during the cancel is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from loguru import logger
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from kmg_autotrader.domain import Fill, Order, OrderStatus, OrderType, Side
from kmg_autotrader.domain.clock import Clock
from kmg_autotrader.exchange.errors import (
    ExchangeAdapterError,
    OrderNotFoundError,
    PermanentExchangeError,
    RateLimitedError,
    TransientExchangeError,
)
from kmg_autotrader.execution.book import PositionBook
from kmg_autotrader.execution.errors import OrderRejectedError, UnresolvedOrderError
from kmg_autotrader.execution.fees import FeeValuer, slippage_bps
from kmg_autotrader.execution.ids import new_client_order_id
from kmg_autotrader.execution.ports import (
    ExchangePort,
    OrderDict,
    TradingStore,
    dec,
    listed_trade_ids,
    to_decimal,
)
from kmg_autotrader.execution.rate_limit import NoRateLimit, RateLimiter

Hook = Callable[[str, str], None]  # (stage, client_order_id); a test may kill the process here

_STATUS = {
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}
# module globals: reading ``OrderStatus.OPEN`` goes through ``EnumType.__getattr__``
_OPEN, _PARTIALLY_FILLED = OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """How hard to try before calling an outcome unknown (waits in seconds).

    ``absent_answers`` "not found" answers spread over ``absent_window_s`` (plus the open
    orders and the trades since ``trade_lookback_ms`` before the order) prove that an order
    whose create failed ambiguously was never placed; only then is it re-sent.
    """

    create_attempts: int = 3
    lookup_attempts: int = 4
    initial_wait: float = 0.5
    max_wait: float = 8.0
    absent_answers: int = 3
    absent_window_s: float = 3.0
    trade_lookback_ms: int = 60_000


def status_from_exchange(raw: OrderDict) -> OrderStatus:
    """Our status for a ccxt order dict."""
    text = raw.get("status")
    if text != "open":  # "open" needs no look-up (the most frequent answer of all)
        status = _STATUS.get(str(text or "open").lower())
        if status is not None:
            return status
    return _PARTIALLY_FILLED if dec(raw.get("filled")) > 0 else _OPEN


class OrderClient:
    """Single-order operations against one exchange, recorded in one store.

    ``limiter``: an extra limiter for an exchange port that has none of its own (a
    :class:`~.ccxt_orders.CcxtExchange` rate-limits every call itself; the paper exchange
    needs none).
    """

    def __init__(
        self,
        exchange: ExchangePort,
        store: TradingStore,
        *,
        clock: Clock,
        limiter: RateLimiter | NoRateLimit | None = None,
        retry: RetrySettings | None = None,
        hook: Hook | None = None,
    ) -> None:
        self.exchange = exchange
        self.store = store
        self.clock = clock
        self.limiter = limiter or NoRateLimit()
        self.retry = retry or RetrySettings()
        self.hook = hook
        self.book = PositionBook(store)
        self.intended: dict[str, Decimal] = {}  # client id → price the decision was made at
        self.unresolved_listeners: list[Callable[[str], None]] = []  # e.g. the reconciler
        self.fee_values: FeeValuer | None = None  # values fees paid in a third currency (BNB)

    # ---- create -----------------------------------------------------------------------------

    async def place(
        self,
        *,
        symbol: str,
        side: Side,
        type: OrderType,
        amount: Decimal,
        price: Decimal | None = None,
        post_only: bool = False,
        purpose: str,
        intent_id: str | None = None,
        position_id: int | None = None,
        intended_price: Decimal | None = None,
    ) -> Order:
        """Record, send and sync one order; never creates it twice.

        Raises :class:`OrderRejectedError` when the exchange refuses it and
        :class:`UnresolvedOrderError` when its outcome cannot be established.
        """
        coid = new_client_order_id(
            self.store.mode, getattr(self.exchange, "client_id_max_length", 28)
        )
        now = self.clock.now_ms()
        order = Order(
            mode=self.store.mode,
            client_order_id=coid,
            symbol=symbol,
            side=side,
            type=type,
            amount=amount,
            status=OrderStatus.PENDING,
            created_at=now,
            price=price,
            purpose=purpose,
            intent_id=intent_id,
            updated_at=now,
        )
        self.store.add_order(order, position_id=position_id)
        if intended_price is not None:
            self.intended[coid] = intended_price
        if self.hook is not None:  # a test may kill the process at either stage
            self.hook("recorded", coid)
        raw = await self._send(order, post_only)
        if self.hook is not None:
            self.hook("accepted", coid)
        return await self.sync(coid, raw)

    async def _send(self, order: Order, post_only: bool) -> OrderDict:
        coid = order.client_order_id
        params: dict[str, Any] = {"clientOrderId": coid}
        if post_only:
            params["postOnly"] = True
        last_error: Exception | None = None
        for attempt in range(1, self.retry.create_attempts + 1):
            await self.limiter.acquire("order")
            try:
                return await self.exchange.create_order(
                    order.symbol,
                    order.type._value_,  # ``.value`` is a property: two Python calls
                    order.side._value_,
                    order.amount,
                    order.price,
                    params,
                )
            except RateLimitedError as exc:
                # refused for the rate, not accepted: the exchange's limiter pauses every call
                # for its Retry-After, so the next attempt is not sent before that
                last_error = exc
                logger.warning("create {} attempt {}: {}", coid, attempt, exc)
            except TransientExchangeError as exc:
                last_error = exc
                logger.warning("create {} attempt {}: {}; looking it up", coid, attempt, exc)
                found = await self._find_or_prove_absent(order, exc)
                if found is not None:
                    return found
                # proven absent: back off, then re-send under the same client id (an exchange
                # that still has the first one open refuses it as a duplicate)
                wait = self.retry.initial_wait * 2 ** (attempt - 1)
                await asyncio.sleep(min(wait, self.retry.max_wait))
            except PermanentExchangeError as exc:
                if attempt > 1:  # e.g. "duplicate client id": an earlier attempt may have landed
                    found = await self._lookup_or_unresolve(order, exc)
                    if found is not None:
                        return found
                    if "duplicate" in str(exc).lower():  # it exists, yet cannot be seen
                        message = f"re-send refused as a duplicate, order not visible: {exc}"
                        self._unresolve(order, message)
                        raise UnresolvedOrderError(message, coid) from exc
                self.store.update_order(coid, status=OrderStatus.REJECTED, error=str(exc)[:500])
                raise OrderRejectedError(f"{order.symbol} {order.side} refused: {exc}") from exc
        # every attempt failed and every look-up said "unknown": it may still appear later
        message = f"create {coid} failed {self.retry.create_attempts} times: {last_error}"
        self._unresolve(order, message)
        raise UnresolvedOrderError(message, coid)

    async def _find_or_prove_absent(self, order: Order, cause: Exception) -> OrderDict | None:
        """After an ambiguous create: the order if the exchange has it, None once its absence
        is proven (see :class:`RetrySettings`); raises :class:`UnresolvedOrderError` (and
        marks it UNRESOLVED) when neither can be established."""
        answers = max(self.retry.absent_answers, 1)
        gap = self.retry.absent_window_s / max(answers - 1, 1)
        for answer in range(answers):
            if answer:
                await asyncio.sleep(gap)
            found = await self._lookup_or_unresolve(order, cause)
            if found is not None:
                return found
        try:
            listed = await self._listed_open(order)
            if listed is not None:
                return listed
            unexplained = await self.unexplained_trades(order)
        except TransientExchangeError as exc:
            message = f"outcome unknown after {cause}; not found, and the proof failed: {exc}"
            self._unresolve(order, message)
            raise UnresolvedOrderError(message, order.client_order_id) from exc
        if unexplained:
            message = (
                f"outcome unknown after {cause}: not found {answers} times, but "
                f"{len(unexplained)} {order.side.value} trade(s) of {order.symbol} since it was "
                "sent belong to no order we know"
            )
            self._unresolve(order, message)
            raise UnresolvedOrderError(message, order.client_order_id)
        logger.info(
            "order {} proven absent ({} look-ups over {}s, no open order, no unknown trade)",
            order.client_order_id,
            answers,
            self.retry.absent_window_s,
        )
        return None

    async def _listed_open(self, order: Order) -> OrderDict | None:
        """The order among the exchange's open orders of its symbol, if listed there."""
        await self.limiter.acquire("query")
        for raw in await self.exchange.fetch_open_orders(order.symbol):
            if raw.get("clientOrderId") == order.client_order_id:
                return raw
        return None

    async def unexplained_trades(self, order: Order) -> list[dict[str, Any]]:
        """The account's trades of ``order``'s symbol and side since shortly before it was
        sent that belong to no order we recorded and could be (part of) it."""
        await self.limiter.acquire("query")
        since = order.created_at - self.retry.trade_lookback_ms
        trades = await self.exchange.fetch_my_trades(order.symbol, since=since)
        side = order.side._value_
        candidates = [
            t
            for t in trades
            if t.get("side") == side
            and int(t.get("timestamp") or since) >= since
            and dec(t.get("amount")) <= order.amount
        ]
        if not candidates:
            return []
        known = self.store.known_exchange_ids(str(t.get("order")) for t in candidates)
        return [t for t in candidates if str(t.get("order")) not in known]

    async def _lookup_or_unresolve(self, order: Order, cause: Exception) -> OrderDict | None:
        try:
            return await self.lookup(order.client_order_id, order.symbol)
        except TransientExchangeError as exc:
            message = f"outcome unknown after {cause}; look-up failed: {exc}"
            self._unresolve(order, message)
            raise UnresolvedOrderError(message, order.client_order_id) from exc

    def _unresolve(self, order: Order, message: str) -> None:
        self.store.update_order(
            order.client_order_id, status=OrderStatus.UNRESOLVED, error=message[:500]
        )
        self.store.add_event(
            "order_unresolved",
            f"order {order.client_order_id} ({order.symbol} {order.side}) is unresolved",
            level="warning",
            details={
                "client_order_id": order.client_order_id,
                "symbol": order.symbol,
                "error": message[:500],
            },
        )
        for listener in self.unresolved_listeners:
            listener(order.client_order_id)

    async def lookup(self, client_order_id: str, symbol: str) -> OrderDict | None:
        """The exchange's view of an order, or None when the exchange does not know it.

        Transient errors are retried; if they persist they propagate (outcome unknown).
        """
        await self.limiter.acquire("query")
        try:  # the common case without building a retry loop (backtests call this a lot)
            return await self.exchange.fetch_order_by_client_id(client_order_id, symbol)
        except OrderNotFoundError:
            return None
        except TransientExchangeError as exc:
            logger.warning("look-up of {} failed: {}; retrying", client_order_id, exc)
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(max(self.retry.lookup_attempts - 1, 1)),
            wait=wait_exponential(multiplier=self.retry.initial_wait, max=self.retry.max_wait),
            retry=retry_if_exception_type(TransientExchangeError),
            reraise=True,
        ):
            with attempt:
                await self.limiter.acquire("query")
                try:
                    return await self.exchange.fetch_order_by_client_id(client_order_id, symbol)
                except OrderNotFoundError:
                    return None
        raise AssertionError("unreachable")  # pragma: no cover

    # ---- sync -------------------------------------------------------------------------------

    async def sync(self, client_order_id: str, raw: OrderDict | None = None) -> Order:
        """Bring a stored order up to date with the exchange (``raw`` if already fetched):
        store new fills, update status/filled/average/fee, recompute its position."""
        order = self.store.get_order(client_order_id)
        if order is None:
            raise KeyError(f"no stored order {client_order_id}")
        if raw is None:
            raw = await self._fetch(order)
            if raw is None:
                raise OrderNotFoundError(f"exchange does not know order {client_order_id}")
        store = self.store
        get = raw.get
        listed = get("trades")
        listed_any = False  # whether the order lists trade dicts (not only trade ids)
        if listed:
            for trade in listed:  # a loop, not a filtered copy: usually none or one trade
                # a trade id, or a stub without its numbers (ccxt's Kraken orders), is no fill
                if isinstance(trade, dict) and trade.get("amount") is not None:
                    listed_any = True
                    store.add_fill(self._fill(order, trade))
        if not listed_any and dec(get("filled")) > 0:
            for trade in await self._fetch_trades(order, raw):
                store.add_fill(self._fill(order, trade))
        filled = get("filled")
        average = get("average")
        fee_info = get("fee") or {}
        fee = fee_info.get("cost")
        # to_decimal() only for what is not a Decimal yet (a paper order's numbers all are)
        if type(filled) is not Decimal:
            filled = to_decimal(filled)
        if type(average) is not Decimal:
            average = to_decimal(average)
        if type(fee) is not Decimal:
            fee = to_decimal(fee)
        fee_currency = fee_info.get("currency")
        if filled is None or average is None or fee is None or not fee_currency:
            # what the exchange left out is taken from the stored fills
            fills = store.fills_for_order(client_order_id)
            if filled is None:
                filled = sum((f.amount for f in fills), Decimal(0))
            if average is None and fills:
                average = sum((f.amount * f.price for f in fills), Decimal(0)) / sum(
                    (f.amount for f in fills), Decimal(0)
                )
            if fee is None:
                fee = sum((f.fee for f in fills), Decimal(0))
            if not fee_currency:
                fee_currency = fills[0].fee_currency if fills else None
        exchange_id = get("id")
        now = self.clock.now_ms()  # one moment for the update and the refresh it causes
        store.update_order(
            client_order_id,
            status=status_from_exchange(raw),
            exchange_order_id=None if exchange_id is None else str(exchange_id),
            filled=filled,
            average_price=average,
            fee=fee,
            fee_currency=fee_currency,
            updated_at=now,
        )
        position_id = store.order_position_id(client_order_id)
        if position_id is not None:
            self.book.refresh(position_id, self.exchange.market(order.symbol), now)
        updated = store.get_order(client_order_id)
        assert updated is not None
        return updated

    async def _fetch(self, order: Order) -> OrderDict | None:
        """The exchange's view of a stored order, None when it does not know it.

        By exchange id when we have it: one call everywhere (Kraken's QueryOrders, which also
        lists the order's trade ids), where a look-up by client id costs Kraken two order lists
        (OpenOrders, ClosedOrders: 6 s of ccxt's throttle). By client id otherwise, or when
        the exchange id is not found (then the client id decides, as it always did).
        """
        exchange_id = order.exchange_order_id
        if exchange_id is not None:
            await self.limiter.acquire("query")
            try:
                return await self.exchange.fetch_order(exchange_id, order.symbol)
            except OrderNotFoundError:
                logger.info("order {} not found by id {}", order.client_order_id, exchange_id)
        return await self.lookup(order.client_order_id, order.symbol)

    async def _fetch_trades(self, order: Order, raw: OrderDict) -> list[dict[str, Any]]:
        # some exchanges (Kraken) list trade ids, not trades, in a filled order: fetch those,
        # by the order's id where the exchange can (a page of the account's trades may not
        # reach an older order's: its fills would be lost)
        await self.limiter.acquire("query")
        order_id = str(raw.get("id"))
        by_order = getattr(self.exchange, "fetch_order_trades", None)
        if by_order is not None and raw.get("id") is not None:
            # the trade ids the order already lists spare the exchange a look-up of them
            ids = listed_trade_ids(raw)
            trades: list[dict[str, Any]] | None = (
                await by_order(order_id, order.symbol, trade_ids=ids)
                if ids
                else await by_order(order_id, order.symbol)
            )
            if trades is not None:
                return trades
        since = int(raw.get("timestamp") or order.created_at) - 60_000
        mine = await self.exchange.fetch_my_trades(order.symbol, since=since)
        return [t for t in mine if str(t.get("order")) == order_id]

    def _fill(self, order: Order, trade: dict[str, Any]) -> Fill:
        get = trade.get
        fee_info = get("fee") or {}
        price, amount, fee = get("price"), get("amount"), fee_info.get("cost")
        # dec() only for what is not a Decimal yet (a paper trade's numbers all are)
        if type(price) is not Decimal:
            price = dec(price)
        if type(amount) is not Decimal:
            amount = dec(amount)
        if type(fee) is not Decimal:
            fee = dec(fee)
        coid = order.client_order_id
        intended = self.intended.get(coid) or order.price
        timestamp = int(get("timestamp") or self.clock.now_ms())
        latency = timestamp - order.created_at
        fee_currency = str(fee_info.get("currency") or self.exchange.market(order.symbol).quote)
        valued = None
        if self.fee_values is not None:  # a fee in neither currency of the pair: value it now
            market = self.exchange.market(order.symbol)
            if fee_currency != market.quote and fee_currency != market.base:
                key = f"{coid}/{get('id')}"
                valued = self.fee_values.value(key, fee, fee_currency, market.quote, timestamp)
        return Fill(
            mode=self.store.mode,
            client_order_id=coid,
            symbol=order.symbol,
            side=order.side,
            amount=amount,
            price=price,
            fee=fee,
            fee_currency=fee_currency,
            timestamp=timestamp,
            trade_id=str(get("id")),
            is_maker=get("takerOrMaker") == "maker",
            intended_price=intended,
            slippage_bps=slippage_bps(order.side, price, intended),
            latency_ms=latency if latency > 0 else 0,
            fee_quote=None if valued is None else valued[0],
            fee_rate=None if valued is None else valued[1],
        )

    # ---- cancel -----------------------------------------------------------------------------

    async def safe_cancel(self, client_order_id: str) -> Order:
        """Cancel an order and record whatever filled before the cancel took effect.

        Whatever the cancel call answers (done, already filled, not found, timeout), the order
        is then looked up and synced, so no fill is lost and the stored status is the
        exchange's.
        """
        order = self.store.get_order(client_order_id)
        if order is None:
            raise KeyError(f"no stored order {client_order_id}")
        if order.status.is_terminal:
            return order
        raw: OrderDict | None = None
        exchange_id = order.exchange_order_id
        if exchange_id is None:  # accepted but not synced yet (e.g. unresolved): find it first
            found = await self.lookup(client_order_id, order.symbol)
            if found is None:
                return order  # never reached the exchange; reconciliation decides its fate
            exchange_id = str(found.get("id"))
            if status_from_exchange(found).is_terminal:
                return await self.sync(client_order_id, found)
        if exchange_id is not None:
            await self.limiter.acquire("order")
            try:
                raw = await self.exchange.cancel_order(exchange_id, order.symbol)
            except ExchangeAdapterError as exc:  # filled meanwhile, or unknown: the look-up decides
                logger.info("cancel {}: {}; checking its state", client_order_id, exc)
        fresh = await self.lookup(client_order_id, order.symbol)
        if fresh is None:
            raise OrderNotFoundError(f"exchange does not know order {client_order_id}")
        if raw is not None and not fresh.get("trades") and raw.get("trades"):
            fresh = {**fresh, "trades": raw["trades"]}
        return await self.sync(client_order_id, fresh)
