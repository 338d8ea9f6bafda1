"""The paper exchange behind :class:`~kmg_autotrader.execution.ports.ExchangePort`.

A thin async face over :class:`PaperEngine`. With a ``market_data`` source (the live ccxt
adapter) market orders fill against the live order book (``fetch_order_book``), so a large
order pays the depth it would really eat; without one (backtests) they wait for the next
price the caller feeds in.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from loguru import logger

from kmg_autotrader.domain import MarketInfo
from kmg_autotrader.exchange.errors import ExchangeAdapterError
from kmg_autotrader.execution.paper.engine import PaperEngine


class MarketDataSource(Protocol):
    """Live public data the paper exchange may use (the ccxt adapter satisfies it)."""

    async def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        """ccxt order book."""
        ...

    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        """ccxt ticker."""
        ...


class PaperExchange:
    """Simulated exchange with the same interface as the ccxt-backed one."""

    def __init__(self, engine: PaperEngine, *, market_data: MarketDataSource | None = None) -> None:
        self.engine = engine
        self.market_data = market_data
        self.id = f"paper-{engine.settings.exchange_id}"
        self.simulated = True  # a LIVE execution manager refuses a simulated exchange

    def on_price(self, symbol: str, price: Decimal, timestamp: int | None = None) -> list[Any]:
        """Feed a trade price (paper-live ticker); see :meth:`PaperEngine.on_price`."""
        return self.engine.on_price(symbol, price, timestamp)

    def on_bar(
        self,
        symbol: str,
        timestamp: int,
        open: Decimal | float,
        high: Decimal | float,
        low: Decimal | float,
        close: Decimal | float,
        volume: Decimal | float | None = None,
    ) -> list[Any]:
        """Feed a candle (backtest); see :meth:`PaperEngine.on_bar`."""
        return self.engine.on_bar(symbol, timestamp, open, high, low, close, volume)

    def feed_bar(
        self,
        symbol: str,
        timestamp: int,
        open: Decimal | float,
        high: Decimal | float,
        low: Decimal | float,
        close: Decimal | float,
        volume: Decimal | float | None = None,
    ) -> None:
        """:meth:`on_bar` for a caller that ignores its answer (a backtest reads fills through
        its orders): the same fills, without building the new trades' ccxt dicts."""
        self.engine.on_bar(symbol, timestamp, open, high, low, close, volume, report=False)

    def market(self, symbol: str) -> MarketInfo:
        """Precision, limits and fees of ``symbol``."""
        try:  # the order client asks on every sync: one look-up, no second call
            return self.engine.markets[symbol]
        except KeyError:
            return self.engine.market(symbol)  # raises UnknownSymbolError

    async def _refresh_book(self, symbol: str) -> dict[str, Any] | None:
        if self.market_data is None:
            return None
        try:
            book = await self.market_data.fetch_order_book(symbol)
        except ExchangeAdapterError as exc:  # fall back to the last price and the slippage model
            logger.warning("paper: order book for {} unavailable: {}", symbol, exc)
            return None
        self.engine.set_book(symbol, book)
        return book

    async def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Decimal,
        price: Decimal | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Accept an order (see :meth:`PaperEngine.create_order`)."""
        extra = params or {}  # only read
        # without a market-data source there is no book to fetch (backtests): skip the await
        book = None if self.market_data is None else await self._refresh_book(symbol)
        return self.engine.create_order(  # the engine converts amount and price
            symbol,
            type,
            side,
            amount,
            price,
            client_order_id=extra.get("clientOrderId"),
            post_only=bool(extra.get("postOnly", False)),
            book=book,
        )

    async def fetch_order(self, order_id: str, symbol: str) -> dict[str, Any]:
        """One order by exchange id."""
        return self.engine.fetch_order(order_id)

    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> dict[str, Any]:
        """One order by client order id."""
        return self.engine.fetch_order_by_client_id(client_order_id)

    async def cancel_order(self, order_id: str, symbol: str) -> dict[str, Any]:
        """Cancel one open order."""
        return self.engine.cancel_order(order_id)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """Open orders."""
        return self.engine.open_orders(symbol)

    async def fetch_my_trades(
        self, symbol: str, since: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Our executions."""
        return self.engine.my_trades(symbol, since, limit)

    async def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        """The live book when there is a source, else the simulated one."""
        book = await self._refresh_book(symbol)
        return book if book is not None else self.engine.order_book(symbol)

    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        """Best bid/ask and last price."""
        if self.market_data is not None:
            try:
                ticker = await self.market_data.fetch_ticker(symbol)
                if ticker.get("last") is not None:
                    self.engine.last_price[symbol] = Decimal(str(ticker["last"]))
                return ticker
            except ExchangeAdapterError as exc:
                logger.warning("paper: ticker for {} unavailable: {}", symbol, exc)
        book = self.engine.order_book(symbol)
        bid = book["bids"][0][0] if book["bids"] else None
        ask = book["asks"][0][0] if book["asks"] else None
        return {
            "symbol": symbol,
            "bid": bid,
            "ask": ask,
            "last": self.engine.last_price.get(symbol),
        }

    async def fetch_balance(self) -> dict[str, Any]:
        """ccxt balance structure."""
        return self.engine.balance()
