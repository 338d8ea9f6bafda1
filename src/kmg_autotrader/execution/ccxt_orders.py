"""The ccxt adapter behind :class:`~kmg_autotrader.execution.ports.ExchangePort`.

The market-data adapter (:class:`~kmg_autotrader.exchange.ExchangeAdapter`) owns the ccxt
client, its markets and the precision rounding of orders; this face gives execution the calls
it needs, every one through the exchange's :class:`~.rate_limit.RateLimiter` (on top of ccxt's
own limiter). A 429/418 answer (or Kraken's rate-limit and lockout errors) pauses every call
for the ``Retry-After`` the exchange sent. Read-only calls and cancels are retried here with
back-off, each attempt through the limiter (never the adapter's own retries, which know
nothing of a Retry-After); ``create_order`` is sent once: a timeout raises
``AmbiguousOrderError`` and the execution layer looks the order up by client id before anything
else, while a rate-limit refusal (the order was not accepted) raises ``RateLimitedError``;
``fetch_order_by_client_id`` is tried once (the caller retries).
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, TypeVar

import ccxt
from loguru import logger

from kmg_autotrader.domain import MarketInfo
from kmg_autotrader.exchange import ExchangeAdapter, OrderNotFoundError, RetryPolicy
from kmg_autotrader.exchange.adapter import mapped_error, scrub
from kmg_autotrader.exchange.errors import (
    AmbiguousOrderError,
    ExchangeAdapterError,
    RateLimitedError,
)
from kmg_autotrader.execution.ports import listed_trade_ids
from kmg_autotrader.execution.rate_limit import RateLimiter, retry_after_seconds

T = TypeVar("T")
_RATE_LIMITED = (ccxt.DDoSProtection, ccxt.RateLimitExceeded)  # 418, 429, Kraken's EAPI/lockout


@dataclass(frozen=True, slots=True)
class OrderQuirks:
    """Per-exchange order quirks, kept as data."""

    client_id_max_length: int = 28
    fetch_by_client_id: bool = True  # False: find the order among open and closed orders
    # how the trades of one order are fetched: "order_id" (ccxt fetchOrderTrades by the order's
    # id), "trade_ids" (the order lists its trade ids, fetched by id), None (the account's
    # trades, filtered by order id: a first page may not reach an older order's)
    order_trades: str | None = "order_id"


ORDER_QUIRKS: Mapping[str, OrderQuirks] = MappingProxyType(
    {
        # cl_ord_id free text is at most 18 characters, and ccxt's fetchOrder only takes the
        # integer userref, so an order is found by its cl_ord_id in the order lists instead
        # (OpenOrders / ClosedOrders with the cl_ord_id filter)
        "kraken": OrderQuirks(
            client_id_max_length=18, fetch_by_client_id=False, order_trades="trade_ids"
        ),
    }
)


class CcxtExchange:
    """An :class:`ExchangeAdapter` (ccxt async) seen as an :class:`ExchangePort`, rate-limited.

    ``limiter``: default one :class:`RateLimiter` for this exchange. ``retry``: attempts and
    back-off of read-only calls and cancels (default: the adapter's policy).
    """

    def __init__(
        self,
        adapter: ExchangeAdapter,
        *,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.adapter = adapter
        self.id = adapter.id
        self.simulated = False  # a PAPER execution manager refuses a real exchange
        self.quirks = ORDER_QUIRKS.get(self.id, OrderQuirks())
        self.client_id_max_length = self.quirks.client_id_max_length
        self.limiter = limiter or RateLimiter(self.id)
        self.retry = retry or getattr(adapter, "retry", None) or RetryPolicy()
        # told every balance fetched through this exchange, by anyone (e.g. the reconciler):
        # the LIVE balance view (portfolio.balances.ExchangeBalances) stays current for free
        self.balance_listeners: list[Callable[[dict[str, Any]], object]] = []

    # ---- the one way to the exchange ----------------------------------------------------------

    def _rate_limited(self, exc: BaseException, context: str) -> RateLimitedError:
        """Pause every call as the exchange asked; the error to raise."""
        headers = getattr(self.adapter.client, "last_response_headers", None)
        self.limiter.back_off(retry_after_seconds(headers, str(exc)))
        scrub(exc)
        return RateLimitedError(f"{self.id} {context}: rate limited: {exc}", cause=exc)

    async def _call(
        self,
        kind: str,
        context: str,
        func: Callable[[], Awaitable[T]],
        *,
        attempts: int = 1,
    ) -> T:
        """Run one ccxt call through the limiter; transient failures are retried up to
        ``attempts`` times (each attempt waits for the limiter, so a Retry-After holds)."""
        for attempt in range(1, attempts + 1):
            await self.limiter.acquire(kind)
            try:
                result = await func()
            except _RATE_LIMITED as exc:
                error: ExchangeAdapterError = self._rate_limited(exc, context)
                cause: BaseException = exc
            except (ccxt.BaseError, TimeoutError) as exc:
                error, cause = mapped_error(exc, f"{self.id} {context}"), exc
            else:
                self.limiter.succeeded()
                return result
            if not error.transient or attempt >= attempts:
                raise error from cause
            wait = min(self.retry.initial_wait * 2 ** (attempt - 1), self.retry.max_wait)
            logger.warning("{} {}: {} (attempt {}/{})", self.id, context, error, attempt, attempts)
            await asyncio.sleep(random.uniform(0, wait))  # full jitter; the limiter adds any pause
        raise AssertionError("unreachable")  # pragma: no cover

    def market(self, symbol: str) -> MarketInfo:
        """Precision, limits and fees of ``symbol`` (markets must be loaded)."""
        return self.adapter.market_info(symbol)

    async def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Decimal,
        price: Decimal | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send one order; ``params`` may hold ``clientOrderId`` and ``postOnly``.

        Raises ``RateLimitedError`` when the exchange refused it for its rate (not placed;
        every call then waits the Retry-After) and ``AmbiguousOrderError`` when the outcome is
        unknown.
        """
        extra = dict(params or {})
        client_order_id = extra.pop("clientOrderId", None)
        if not extra.get("postOnly"):
            extra.pop("postOnly", None)
        await self.limiter.acquire("order")
        try:
            order = await self.adapter.create_order(
                symbol,
                side,
                type,
                amount,
                price,
                client_order_id=client_order_id,
                params=extra,
            )
        except AmbiguousOrderError as exc:
            # the adapter calls every network-level error ambiguous; a rate-limit answer is a
            # refusal before the order was accepted
            if isinstance(exc.cause, _RATE_LIMITED):
                raise self._rate_limited(exc.cause, f"create_order {symbol}") from exc.cause
            raise
        self.limiter.succeeded()
        return order

    async def fetch_order(self, order_id: str, symbol: str) -> dict[str, Any]:
        """One order by exchange id."""
        order = await self._call(
            "query",
            f"fetch_order {order_id}",
            lambda: self.adapter.client.fetch_order(order_id, symbol),
            attempts=self.retry.attempts,
        )
        return dict(order)

    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> dict[str, Any]:
        """One order by our client order id (``OrderNotFoundError`` when it does not exist).

        Tried once: the execution layer retries look-ups and counts "not found" answers.
        """
        client = self.adapter.client
        context = f"fetch_order client id {client_order_id}"
        if self.quirks.fetch_by_client_id:
            order = await self._call(
                "query",
                context,
                lambda: client.fetch_order(None, symbol, {"clientOrderId": client_order_id}),
            )
            return dict(order)
        # Kraken: the order lists filtered by ``cl_ord_id`` (ccxt maps ``clientOrderId`` to it),
        # not a scan of their first page (50 orders, newest first: an older order was "not
        # found", and a "not found" order is one the bot may call lost)
        by_client_id = {"clientOrderId": client_order_id}
        for method in ("fetch_open_orders", "fetch_closed_orders"):
            rows = await self._call(
                "query",
                f"{method} {symbol} client id {client_order_id}",
                functools.partial(getattr(client, method), symbol, None, None, by_client_id),
            )
            for row in rows:  # checked again: the answer must be this order
                if row.get("clientOrderId") == client_order_id:
                    return dict(row)
        raise OrderNotFoundError(f"{self.id}: no order with client id {client_order_id}")

    async def cancel_order(self, order_id: str, symbol: str) -> dict[str, Any]:
        """Cancel one order (retried when transient: cancelling twice is safe)."""
        order = await self._call(
            "order",
            f"cancel_order {order_id}",
            lambda: self.adapter.client.cancel_order(order_id, symbol),
            attempts=self.retry.attempts,
        )
        return dict(order)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """Open orders of ``symbol`` (all symbols when None, if the exchange allows it)."""
        rows = await self._call(
            "query",
            f"fetch_open_orders {symbol}",
            lambda: self.adapter.client.fetch_open_orders(symbol),
            attempts=self.retry.attempts,
        )
        return [dict(r) for r in rows]

    async def fetch_my_trades(
        self, symbol: str, since: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Our executions of ``symbol``."""
        rows = await self._call(
            "query",
            f"fetch_my_trades {symbol}",
            lambda: self.adapter.client.fetch_my_trades(symbol, since, limit),
            attempts=self.retry.attempts,
        )
        return list(rows)

    async def fetch_order_trades(
        self, order_id: str, symbol: str, *, trade_ids: list[str] | None = None
    ) -> list[dict[str, Any]] | None:
        """Every trade of one order (by exchange id), whatever its age; None when this exchange
        cannot say (the caller then filters the account's trades). ``trade_ids``: the trade
        ids the order lists, when the caller has them (Kraken then skips QueryOrders)."""
        client = self.adapter.client
        kind = self.quirks.order_trades
        context = f"fetch_order_trades {order_id}"
        if kind == "order_id" and client.has.get("fetchOrderTrades") is True:
            rows = await self._call(
                "query",
                context,
                lambda: client.fetch_order_trades(order_id, symbol),
                attempts=self.retry.attempts,
            )
        elif kind == "trade_ids":
            # Kraken: QueryOrders with trades=true lists the order's trade ids (ccxt makes
            # empty stubs of them), QueryTrades returns those trades
            ids = list(trade_ids or ())
            if not ids:
                raw = await self._call(
                    "query",
                    f"fetch_order {order_id} with trades",
                    lambda: client.fetch_order(order_id, symbol, {"trades": True}),
                    attempts=self.retry.attempts,
                )
                ids = listed_trade_ids(raw)
            if not ids:
                return []
            rows = await self._call(
                "query",
                context,
                lambda: client.fetch_order_trades(order_id, symbol, None, None, {"trades": ids}),
                attempts=self.retry.attempts,
            )
        else:
            return None
        return [dict(r) for r in rows if str(r.get("order")) == str(order_id)]

    async def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        """ccxt order book."""
        book = await self._call(
            "market_data",
            f"fetch_order_book {symbol}",
            lambda: self.adapter.client.fetch_order_book(symbol, limit),
            attempts=self.retry.attempts,
        )
        return dict(book)

    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        """ccxt ticker."""
        ticker = await self._call(
            "market_data",
            f"fetch_ticker {symbol}",
            lambda: self.adapter.client.fetch_ticker(symbol),
            attempts=self.retry.attempts,
        )
        return dict(ticker)

    async def fetch_balance(self) -> dict[str, Any]:
        """ccxt balance (handed to every balance listener first)."""
        balance = dict(
            await self._call(
                "query",
                "fetch_balance",
                lambda: self.adapter.client.fetch_balance(),
                attempts=self.retry.attempts,
            )
        )
        for listener in self.balance_listeners:
            try:
                listener(balance)
            except Exception as exc:  # a listener (e.g. a database write) must not fail the call
                logger.warning("balance listener failed: {!r}", exc)
        return balance
