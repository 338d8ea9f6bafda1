"""The ccxt adapter behind :class:`~kmg_autotrader.execution.ports.ExchangePort`.

The market-data adapter (:class:`~kmg_autotrader.exchange.ExchangeAdapter`) already maps every
ccxt error and retries its read-only calls; this thin face gives it the argument order and the
two calls execution needs that it does not have (open orders, ``MarketInfo`` by symbol).
``create_order`` is sent once: a timeout raises ``AmbiguousOrderError`` and the execution
layer looks the order up by client id before anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import ccxt
from loguru import logger

from kmg_autotrader.domain import MarketInfo
from kmg_autotrader.exchange import ExchangeAdapter, OrderNotFoundError
from kmg_autotrader.exchange.adapter import mapped_error


@dataclass(frozen=True, slots=True)
class OrderQuirks:
    """Per-exchange order quirks, kept as data."""

    client_id_max_length: int = 28
    fetch_by_client_id: bool = True  # False: find the order among open and closed orders


ORDER_QUIRKS: Mapping[str, OrderQuirks] = MappingProxyType(
    {
        # cl_ord_id free text is at most 18 characters, and ccxt's fetchOrder only takes the
        # integer userref, so an order is found by its cl_ord_id in the order lists instead
        "kraken": OrderQuirks(client_id_max_length=18, fetch_by_client_id=False),
    }
)


class CcxtExchange:
    """An :class:`ExchangeAdapter` (ccxt async) seen as an :class:`ExchangePort`."""

    def __init__(self, adapter: ExchangeAdapter) -> None:
        self.adapter = adapter
        self.id = adapter.id
        self.simulated = False  # a PAPER execution manager refuses a real exchange
        self.quirks = ORDER_QUIRKS.get(self.id, OrderQuirks())
        self.client_id_max_length = self.quirks.client_id_max_length
        # told every balance fetched through this exchange, by anyone (e.g. the reconciler):
        # the LIVE balance view (portfolio.balances.ExchangeBalances) stays current for free
        self.balance_listeners: list[Callable[[dict[str, Any]], object]] = []

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
        """Send one order; ``params`` may hold ``clientOrderId`` and ``postOnly``."""
        extra = dict(params or {})
        client_order_id = extra.pop("clientOrderId", None)
        if not extra.get("postOnly"):
            extra.pop("postOnly", None)
        return await self.adapter.create_order(
            symbol,
            side,
            type,
            amount,
            price,
            client_order_id=client_order_id,
            params=extra,
        )

    async def fetch_order(self, order_id: str, symbol: str) -> dict[str, Any]:
        """One order by exchange id."""
        return await self.adapter.fetch_order(order_id, symbol)

    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> dict[str, Any]:
        """One order by our client order id (``OrderNotFoundError`` when it does not exist)."""
        if self.quirks.fetch_by_client_id:
            return await self.adapter.fetch_order_by_client_id(client_order_id, symbol)
        for method in ("fetch_open_orders", "fetch_closed_orders"):
            try:
                rows = await getattr(self.adapter.client, method)(symbol)
            except (ccxt.BaseError, TimeoutError) as exc:
                raise mapped_error(exc, f"{self.id} {method} {symbol}") from exc
            for row in rows:
                if row.get("clientOrderId") == client_order_id:
                    return dict(row)
        raise OrderNotFoundError(f"{self.id}: no order with client id {client_order_id}")

    async def cancel_order(self, order_id: str, symbol: str) -> dict[str, Any]:
        """Cancel one order."""
        return await self.adapter.cancel_order(order_id, symbol)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """Open orders of ``symbol`` (all symbols when None, if the exchange allows it)."""
        try:
            rows = await self.adapter.client.fetch_open_orders(symbol)
        except (ccxt.BaseError, TimeoutError) as exc:
            raise mapped_error(exc, f"{self.id} fetch_open_orders {symbol}") from exc
        return [dict(r) for r in rows]

    async def fetch_my_trades(
        self, symbol: str, since: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Our executions of ``symbol``."""
        return await self.adapter.fetch_my_trades(symbol, since, limit)

    async def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        """ccxt order book."""
        return await self.adapter.fetch_order_book(symbol, limit)

    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        """ccxt ticker."""
        return await self.adapter.fetch_ticker(symbol)

    async def fetch_balance(self) -> dict[str, Any]:
        """ccxt balance (handed to every balance listener first)."""
        balance = await self.adapter.fetch_balance()
        for listener in self.balance_listeners:
            try:
                listener(balance)
            except Exception as exc:  # a listener (e.g. a database write) must not fail the call
                logger.warning("balance listener failed: {!r}", exc)
        return balance
