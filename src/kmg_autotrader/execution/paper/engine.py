"""The paper exchange's synchronous core: balances, resting orders and fill simulation.

Pure in-memory and cheap, so a backtest can drive it candle by candle. It never decides on its
own when time passes: the caller feeds prices with :meth:`PaperEngine.on_bar` (backtest:
market orders fill at the next candle's open, limits when the candle's range crosses them) or
:meth:`PaperEngine.on_price` (paper-live: ticker updates). With ``immediate_market`` a market
order fills at once against the current price (walking a given order book when there is one).
An order never fills on a price older than itself, so an order decided on candle t fills no
earlier than candle t+1's open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from itertools import islice
from typing import Any

from kmg_autotrader.domain import MarketInfo, OrderType, Side
from kmg_autotrader.domain.clock import Clock, WallClock
from kmg_autotrader.exchange.errors import (
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    UnknownSymbolError,
)
from kmg_autotrader.execution.fees import FeeSchedule, SlippageModel, fee_schedule, walk_book
from kmg_autotrader.execution.paper.ledger import MemoryLedger, PaperLedger
from kmg_autotrader.execution.paper.model import (
    CANCELED,
    CLOSED,
    EXPIRED,
    OPEN,
    PaperOrder,
    PaperTrade,
)
from kmg_autotrader.execution.precision import (
    check_limits,
    round_amount,
    round_price,
    round_step,
)

ZERO = Decimal(0)
MAX_CLOSED_ORDERS = 5000  # the persisted book keeps this many finished orders for look-ups
# a relative margin far above Decimal's rounding error (1e-28 at the default precision)
_ROUNDING_ROOM = Decimal("1.000000001")

# orders keep side and type as plain text: compare with these, not with enum members (whose
# ``.value`` is a property call, and ``Side(x)`` a class call, on every fill)
BUY, SELL = Side.BUY.value, Side.SELL.value
MARKET, LIMIT = OrderType.MARKET.value, OrderType.LIMIT.value
_SIDES = {BUY: BUY, SELL: SELL}
_TYPES = {MARKET: MARKET, LIMIT: LIMIT}
# precision.adverse_price's rounding by side (buys up, sells down), for fills to look up
# without its two calls (adverse_price and is_buy); an order's side is always one of these
_ADVERSE = {BUY: ROUND_CEILING, SELL: ROUND_FLOOR}


def _to_decimal(x: Decimal | float) -> Decimal:
    """A candle value as Decimal: a float (numpy's float64 too) by its shortest repr.

    ``float.__repr__`` gives the same digits as ``str()`` of a float or float64 (checked on
    millions of bit patterns) without numpy's slower formatting.
    """
    if isinstance(x, float):  # the usual case first: candles hold floats
        return Decimal(float.__repr__(x))
    return x if isinstance(x, Decimal) else Decimal(str(x))


@dataclass(frozen=True, slots=True)
class PaperSettings:
    """How the paper exchange simulates.

    ``immediate_market``: fill market orders at once on the current price (paper-live); when
    False they wait for the next price (backtest). ``fill_on_touch``: a limit fills when the
    price touches it; by default the price must trade through it (conservative).
    ``max_fill_fraction``: at most this share of a limit order's amount fills per price update
    (1 = all; lower values simulate partial fills). ``volume_participation``: at most this share
    of a candle's volume fills our limit orders on that candle (None = no cap).
    """

    exchange_id: str = "binance"
    fees: FeeSchedule | None = None
    slippage: SlippageModel = field(default_factory=SlippageModel)
    immediate_market: bool = False
    fill_on_touch: bool = False
    max_fill_fraction: Decimal = Decimal(1)
    volume_participation: Decimal | None = Decimal("0.1")


class PaperEngine:
    """A simulated spot exchange account. Not thread-safe; one per process and mode."""

    def __init__(
        self,
        markets: Mapping[str, MarketInfo],
        *,
        settings: PaperSettings | None = None,
        clock: Clock | None = None,
        ledger: PaperLedger | None = None,
        balances: Mapping[str, Decimal] | None = None,
    ) -> None:
        self.settings = settings or PaperSettings()
        self.fees = fee_schedule(self.settings.exchange_id, self.settings.fees)
        self.clock: Clock = clock or WallClock()
        self.ledger: PaperLedger = ledger or MemoryLedger()
        # a shared ledger may hold orders another process placed: always look at it
        self._in_memory = isinstance(self.ledger, MemoryLedger)
        # a plain memory ledger's sessions do nothing: the hot operations skip entering them
        self._no_sessions = type(self.ledger) is MemoryLedger
        # what a taker buy pays per unit of value, and a resting buy reserves (fees included)
        self._taker_factor = 1 + self.fees.taker
        self._reserve_factor = 1 + max(self.fees.maker, self.fees.taker)
        self._ample_factor = self._taker_factor * _ROUNDING_ROOM
        self.markets: dict[str, MarketInfo] = dict(markets)
        self.balances: dict[str, list[Decimal]] = {}
        self.orders: dict[str, PaperOrder] = {}
        self.trades: dict[str, PaperTrade] = {}
        self.by_client: dict[str, str] = {}
        self.open_by_symbol: dict[str, list[str]] = {}
        self.last_price: dict[str, Decimal] = {}
        self.books: dict[str, dict[str, Any]] = {}
        self.seq = 0
        self.version = ""  # the ledger's change token of the state held in memory
        with self.ledger.session(self, write=False):
            pass
        if balances is not None and not self.balances:
            with self.ledger.session(self, write=True):
                self.reset(balances)

    # ---- state ------------------------------------------------------------------------------

    def reset(self, balances: Mapping[str, Decimal]) -> None:
        """Forget every order and trade and start from ``balances`` (all free)."""
        self.balances = {cur: [Decimal(amount), ZERO] for cur, amount in balances.items()}
        self.orders.clear()
        self.trades.clear()
        self.by_client.clear()
        self.open_by_symbol.clear()

    def snapshot(self) -> dict[str, Any]:
        """Everything that must survive a restart, JSON-safe."""
        finished = [o for o in self.orders.values() if o.status != OPEN]
        keep = {o.id for o in finished[-MAX_CLOSED_ORDERS:]} | {
            o.id for o in self.orders.values() if o.status == OPEN
        }
        orders = [o for o in self.orders.values() if o.id in keep]
        trade_ids = {t for o in orders for t in o.trade_ids}
        return {
            "exchange": self.settings.exchange_id,
            "seq": self.seq,
            "balances": {c: [str(f), str(u)] for c, (f, u) in self.balances.items()},
            "orders": [o.to_json() for o in orders],
            "trades": [t.to_json() for t in self.trades.values() if t.id in trade_ids],
            "last_price": {s: str(p) for s, p in self.last_price.items()},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load a :meth:`snapshot` (replacing the in-memory state)."""
        self.seq = int(state.get("seq", 0))
        self.balances = {
            c: [Decimal(f), Decimal(u)] for c, (f, u) in dict(state.get("balances", {})).items()
        }
        self.orders = {}
        self.by_client = {}
        self.open_by_symbol = {}
        for raw in state.get("orders", []):
            order = PaperOrder.from_json(raw)
            self.orders[order.id] = order
            self.by_client[order.client_order_id] = order.id
            if order.status == OPEN:
                self.open_by_symbol.setdefault(order.symbol, []).append(order.id)
        self.trades = {t["id"]: PaperTrade.from_json(t) for t in state.get("trades", [])}
        for symbol, price in dict(state.get("last_price", {})).items():
            self.last_price.setdefault(symbol, Decimal(price))

    def _write(self) -> Any:
        """The ledger's write session (a context manager) around one operation."""
        return self.ledger.session(self, write=True)

    # ---- reads ------------------------------------------------------------------------------

    def market(self, symbol: str) -> MarketInfo:
        """The market of ``symbol`` (raises :class:`UnknownSymbolError`)."""
        try:
            return self.markets[symbol]
        except KeyError:
            raise UnknownSymbolError(f"paper exchange has no market {symbol!r}") from None

    def balance(self) -> dict[str, Any]:
        """ccxt balance structure."""
        with self.ledger.session(self, write=False):
            free = {c: v[0] for c, v in self.balances.items()}
            used = {c: v[1] for c, v in self.balances.items()}
            total = {c: v[0] + v[1] for c, v in self.balances.items()}
            out: dict[str, Any] = {"free": free, "used": used, "total": total}
            for currency in self.balances:
                out[currency] = {"free": free[currency], "used": used[currency]}
                out[currency]["total"] = total[currency]
            return out

    def _view(self, order: PaperOrder) -> dict[str, Any]:
        ids = order.trade_ids
        if not ids:  # a fresh order: no list comprehension to run
            return order.to_ccxt([])
        trades = self.trades
        if len(ids) == 1:  # a filled market order: one trade, no comprehension (a call) either
            return order.to_ccxt([trades[ids[0]].to_ccxt()])
        return order.to_ccxt([trades[t].to_ccxt() for t in ids])

    def fetch_order(self, order_id: str) -> dict[str, Any]:
        """One order by exchange id."""
        if self._no_sessions:
            return self._order_view(order_id)
        with self.ledger.session(self, write=False):
            return self._order_view(order_id)

    def _order_view(self, order_id: str) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise OrderNotFoundError(f"paper exchange: order {order_id} does not exist")
        return self._view(order)

    def fetch_order_by_client_id(self, client_order_id: str) -> dict[str, Any]:
        """One order by client order id."""
        if self._no_sessions:  # the usual case: _client_view inlined (a call less)
            order_id = self.by_client.get(client_order_id)
            if order_id is not None:
                return self._view(self.orders[order_id])
            return self._client_view(client_order_id)  # raises OrderNotFoundError
        with self.ledger.session(self, write=False):
            return self._client_view(client_order_id)

    def _client_view(self, client_order_id: str) -> dict[str, Any]:
        order_id = self.by_client.get(client_order_id)
        if order_id is None:
            raise OrderNotFoundError(f"paper exchange: no order with client id {client_order_id}")
        return self._view(self.orders[order_id])

    def open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """Open orders of one symbol or all."""
        with self.ledger.session(self, write=False):
            symbols = [symbol] if symbol else list(self.open_by_symbol)
            return [
                self._view(self.orders[oid])
                for s in symbols
                for oid in self.open_by_symbol.get(s, [])
            ]

    def my_trades(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Our executions, oldest first."""
        with self.ledger.session(self, write=False):
            rows = [
                t.to_ccxt()
                for t in self.trades.values()
                if (symbol is None or t.symbol == symbol)
                and (since is None or t.timestamp >= since)
            ]
        rows.sort(key=lambda t: (t["timestamp"], t["id"]))
        return rows[-limit:] if limit else rows

    def order_book(self, symbol: str) -> dict[str, Any]:
        """The last book given for ``symbol``, else one tick either side of the last price."""
        if symbol in self.books:
            return self.books[symbol]
        market = self.market(symbol)
        last = self.last_price.get(symbol)
        if last is None:
            return {"symbol": symbol, "bids": [], "asks": []}
        depth = Decimal(10**9)
        return {
            "symbol": symbol,
            "bids": [[last - market.price_step, depth]],
            "asks": [[last + market.price_step, depth]],
        }

    # ---- orders -----------------------------------------------------------------------------

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Decimal,
        price: Decimal | None = None,
        *,
        client_order_id: str | None = None,
        post_only: bool = False,
        book: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Accept (or refuse) an order; with ``immediate_market`` a market order fills now."""
        # a look-up first: :meth:`market` (a call) only to raise for an unknown symbol
        market = self.markets.get(symbol) or self.market(symbol)
        # the enum calls only for what the look-ups miss: they raise ValueError as before
        order_type = _TYPES.get(type) or OrderType(type).value
        order_side = _SIDES.get(side) or Side(side).value
        if self._no_sessions:  # the usual case, spelled out: a ``*args`` call is slower
            return self._create(
                symbol,
                market,
                order_type,
                order_side,
                amount,
                price,
                client_order_id,
                post_only,
                book,
            )
        args = (symbol, market, order_type, order_side, amount, price, client_order_id)
        with self._write():
            return self._create(*args, post_only, book)

    def _create(
        self,
        symbol: str,
        market: MarketInfo,
        order_type: str,
        order_side: str,
        amount: Decimal,
        price: Decimal | None,
        client_order_id: str | None,
        post_only: bool,
        book: dict[str, Any] | None,
    ) -> dict[str, Any]:
        if book is not None:
            self.books[symbol] = book
        self.seq += 1
        order_id = f"P{self.seq}"
        coid = client_order_id or f"paper-{self.seq}"
        if coid in self.by_client:
            raise InvalidOrderError(f"duplicate clientOrderId {coid}")
        # Decimal(x) of a Decimal only copies it: convert other types alone; round_amount
        # spelled as its round_step call (one call less per order)
        amount = round_step(
            amount if type(amount) is Decimal else Decimal(amount), market.amount_step, ROUND_DOWN
        )
        if order_type == LIMIT:
            if price is None:
                raise InvalidOrderError("a limit order needs a price")
            price = round_price(market, Decimal(price), order_side)
            reference: Decimal | None = price
        else:
            price = None
            # without a book the reference is the last price: no _reference call for that
            if symbol in self.books:
                reference = self._reference(symbol, order_side)
            else:
                reference = self.last_price.get(symbol)
        check_limits(market, amount, reference)
        now = self.clock.now_ms()
        # positional: a class called with keywords builds a kwargs dict (twice the cost)
        order = PaperOrder(
            order_id,  # id
            coid,  # client_order_id
            symbol,
            order_side,
            order_type,
            amount,
            price,
            post_only,
            OPEN,  # status
            now,  # timestamp
            now,  # updated_at
            market.quote,  # fee_currency
        )
        if order_type == LIMIT:
            assert price is not None
            self._accept_limit(order, market, book)
        else:
            self._accept_market(order, market, reference)
        self.orders[order_id] = order
        self.by_client[coid] = order_id
        if order.status == OPEN:
            waiting = self.open_by_symbol.get(symbol)
            if waiting is None:
                waiting = self.open_by_symbol[symbol] = []
            waiting.append(order_id)
            if order_type == MARKET and self.settings.immediate_market:
                self._fill_market_now(order, market)
        return self._view(order)

    def _reference(self, symbol: str, side: str) -> Decimal | None:
        book = self.books.get(symbol)
        levels = book and (book.get("asks") if side == BUY else book.get("bids"))
        if levels:
            return Decimal(str(levels[0][0]))
        return self.last_price.get(symbol)

    def _balance(self, currency: str) -> list[Decimal]:
        """``[free, used]`` of ``currency``, created empty on first use."""
        # get first: setdefault would build a throw-away list on every call
        balance = self.balances.get(currency)
        if balance is None:
            balance = self.balances[currency] = [ZERO, ZERO]
        return balance

    def _reserve(self, currency: str, amount: Decimal) -> None:
        balance = self.balances.get(currency) or self._balance(currency)  # see _fill
        if balance[0] < amount:
            raise InsufficientFundsError(
                f"paper exchange: insufficient {currency}: need {amount}, free {balance[0]}"
            )
        balance[0] -= amount
        balance[1] += amount

    def _release(self, order: PaperOrder, market: MarketInfo) -> None:
        if order.reserved:
            balance = self._balance(market.quote if order.side == BUY else market.base)
            balance[0] += order.reserved
            balance[1] -= order.reserved
            order.reserved = ZERO

    def _accept_limit(
        self, order: PaperOrder, market: MarketInfo, book: dict[str, Any] | None
    ) -> None:
        assert order.price is not None
        buy = order.side == BUY
        best = self._reference(order.symbol, order.side)
        crosses = best is not None and (order.price >= best if buy else order.price <= best)
        if crosses and order.post_only:
            raise InvalidOrderError(
                f"post-only {order.side} at {order.price} would take liquidity (best {best})"
            )
        if buy:
            order.reserved = order.amount * order.price * self._reserve_factor
            self._reserve(market.quote, order.reserved)
        else:
            order.reserved = order.amount
            self._reserve(market.base, order.reserved)
        if crosses and best is not None:
            # a marketable limit takes at the book, never worse than its own price
            self._fill(order, market, order.amount, best, is_maker=False)

    def _accept_market(
        self, order: PaperOrder, market: MarketInfo, reference: Decimal | None
    ) -> None:
        if order.side == SELL:
            order.reserved = order.amount
            self._reserve(market.base, order.reserved)
        elif reference is not None:
            need = order.amount * reference * self._taker_factor
            free = (self.balances.get(market.quote) or self._balance(market.quote))[0]  # see _fill
            if free < need:
                raise InsufficientFundsError(
                    f"paper exchange: insufficient {market.quote}: need about {need}, free {free}"
                )

    def _fill_market_now(self, order: PaperOrder, market: MarketInfo) -> None:
        book = self.books.get(order.symbol)
        levels = book and (book.get("asks") if order.side == BUY else book.get("bids"))
        if levels:
            price, _ = walk_book(order.side, order.remaining, levels)
            self._fill_market(order, market, price, None, slip=False)
            return
        last = self.last_price.get(order.symbol)
        if last is not None:
            self._fill_market(order, market, last, None, slip=True)
        # no price known yet: the order waits for the next price

    def _fill_market(
        self,
        order: PaperOrder,
        market: MarketInfo,
        price: Decimal,
        volume: Decimal | None,
        *,
        slip: bool,
    ) -> None:
        side = order.side
        amount = order.amount - order.filled  # .remaining, without the property call
        if slip:
            price = self.settings.slippage.fill_price(side, amount, price, volume)
        price = round_step(price, market.price_step, _ADVERSE[side])  # adverse_price
        if side == BUY:
            # a look-up first: _balance (a call) only for a currency not held yet
            free = (self.balances.get(market.quote) or self._balance(market.quote))[0]
            # the division and rounding below can only cut the amount when cash is nearly
            # short: with one step more than the order (and room for Decimal rounding)
            # covered, the order is surely affordable, and the usual fill skips them
            ample = (amount + market.amount_step) * price * self._ample_factor
            if free < ample:
                affordable = round_amount(market, free / (price * self._taker_factor))
                if affordable < amount:
                    amount = affordable
                    order.reason = "insufficient funds at fill"
        if amount > ZERO and not (market.min_amount and amount < market.min_amount):
            self._fill(order, market, amount, price, is_maker=False)
        if order.status == OPEN:  # a market order never rests
            self._finish(order, market, EXPIRED)

    def _fill(
        self,
        order: PaperOrder,
        market: MarketInfo,
        amount: Decimal,
        price: Decimal,
        *,
        is_maker: bool,
    ) -> None:
        """Execute ``amount`` of ``order`` at ``price`` and move the balances."""
        now = self.clock.now_ms()
        if now < order.timestamp:  # an if, not max(): a builtin call on every fill
            now = order.timestamp
        cost = amount * price
        fee = cost * (self.fees.maker if is_maker else self.fees.taker)
        # look-ups first, _balance (a call) only for a currency not held yet
        balances = self.balances
        quote = balances.get(market.quote) or self._balance(market.quote)
        base = balances.get(market.base) or self._balance(market.base)
        reserved = order.reserved
        # what the order's reservation covers: min() spelled as ifs (a builtin call per fill)
        if order.side == BUY:
            spend = cost + fee
            from_reserve = spend if spend < reserved else reserved
            quote[1] -= from_reserve
            order.reserved -= from_reserve
            quote[0] -= spend - from_reserve
            base[0] += amount
        else:
            from_reserve = amount if amount < reserved else reserved
            base[1] -= from_reserve
            order.reserved -= from_reserve
            base[0] -= amount - from_reserve
            quote[0] += cost - fee
        order.filled += amount
        order.cost += cost
        order.fee += fee
        order.updated_at = now
        trade_ids = order.trade_ids
        # positional: a class called with keywords builds a kwargs dict (twice the cost)
        trade = PaperTrade(
            f"{order.id}-{len(trade_ids) + 1}",  # id
            order.id,  # order_id
            order.client_order_id,
            order.symbol,
            order.side,
            amount,
            price,
            fee,
            market.quote,  # fee_currency
            now,  # timestamp
            is_maker,
        )
        self.trades[trade.id] = trade
        trade_ids.append(trade.id)
        if order.filled >= order.amount:
            self._finish(order, market, CLOSED)

    def _finish(self, order: PaperOrder, market: MarketInfo, status: str) -> None:
        order.status = status
        now = self.clock.now_ms()
        order.updated_at = now if now >= order.timestamp else order.timestamp  # max(), no call
        if order.reserved:  # a filled market order holds nothing: skip the call
            self._release(order, market)
        ids = self.open_by_symbol.get(order.symbol)
        if ids and order.id in ids:
            ids.remove(order.id)

    def cancel_order(self, order_id: str) -> dict[str, Any]:
        """Cancel an open order; a finished or unknown one raises :class:`OrderNotFoundError`."""
        with self._write():
            order = self.orders.get(order_id)
            if order is None or order.status != OPEN:
                state = "unknown" if order is None else order.status
                raise OrderNotFoundError(f"paper exchange: cannot cancel {order_id} ({state})")
            self._finish(order, self.market(order.symbol), CANCELED)
            return self._view(order)

    # ---- prices -----------------------------------------------------------------------------

    def set_book(self, symbol: str, book: dict[str, Any]) -> None:
        """Use ``book`` (ccxt order book) for the next fills and post-only checks."""
        self.books[symbol] = book

    def on_price(
        self, symbol: str, price: Decimal, timestamp: int | None = None
    ) -> list[dict[str, Any]]:
        """A new trade price: fill waiting market orders and crossed limits. Returns new trades."""
        price = price if type(price) is Decimal else Decimal(price)  # Decimal(d) copies d
        if self._in_memory and not self.open_by_symbol.get(symbol):
            # the usual tick (and a backtest's close without resting orders): only the price
            # is news, so skip :meth:`_on_path`'s call and arguments
            self.last_price[symbol] = price
            return []
        ts = self.clock.now_ms() if timestamp is None else timestamp
        return self._on_path(symbol, ts, price, price, price, price, None)

    def on_bar(
        self,
        symbol: str,
        timestamp: int,
        open: Decimal | float,
        high: Decimal | float,
        low: Decimal | float,
        close: Decimal | float,
        volume: Decimal | float | None = None,
        *,
        report: bool = True,
    ) -> list[dict[str, Any]]:
        """A candle opening at ``timestamp``: market orders fill at its open, limits when its
        range crosses them. Only orders created at or before ``timestamp`` take part.

        Returns the new trades (ccxt dicts); with ``report=False`` an empty list instead, for a
        caller that reads fills through its orders (the fills are the same)."""
        # _to_decimal inlined for the usual float
        last = Decimal(float.__repr__(close)) if isinstance(close, float) else _to_decimal(close)
        if self._no_sessions:  # no ledger to look at or lock: straight to the fills
            return self._fill_path(symbol, timestamp, open, high, low, last, volume, report)
        return self._on_path(symbol, timestamp, open, high, low, last, volume, report)

    def _on_path(
        self,
        symbol: str,
        ts: int,
        open_: Decimal | float,
        high: Decimal | float,
        low: Decimal | float,
        close: Decimal,
        volume: Decimal | float | None,
        report: bool = True,
    ) -> list[dict[str, Any]]:
        """Fill what the prices ``open_`` → ``high``/``low`` → ``close`` reach. Candle values
        may still be floats: each becomes a Decimal only when an order needs it (most candles
        only set the last price)."""
        if not self._in_memory:  # a shared ledger: look (cheaply) before locking to write
            with self.ledger.session(self, write=False):
                waiting = self.open_by_symbol.get(symbol)
        else:
            waiting = self.open_by_symbol.get(symbol)
        if not waiting:
            self.last_price[symbol] = close  # nothing can fill: no write, no I/O
            return []
        if self._no_sessions:
            return self._fill_path(symbol, ts, open_, high, low, close, volume, report)
        with self._write():
            return self._fill_path(symbol, ts, open_, high, low, close, volume, report)

    def _fill_path(
        self,
        symbol: str,
        ts: int,
        open_: Decimal | float,
        high: Decimal | float,
        low: Decimal | float,
        close: Decimal,
        volume: Decimal | float | None,
        report: bool,
    ) -> list[dict[str, Any]]:
        orders = self.orders
        due: list[PaperOrder] = []  # a loop, not a comprehension (a call of its own)
        for oid in self.open_by_symbol.get(symbol, ()):
            order = orders[oid]
            if order.timestamp <= ts:
                due.append(order)
        if not due:
            self.last_price[symbol] = close
            return []
        market = self.markets.get(symbol) or self.market(symbol)  # see create_order
        settings = self.settings
        before = len(self.trades)
        # _to_decimal inlined for the usual floats (a call less per value)
        if isinstance(open_, float):
            opening = Decimal(float.__repr__(open_))
        else:
            opening = _to_decimal(open_)
        if isinstance(volume, float):
            volume = Decimal(float.__repr__(volume))
        elif volume is not None:
            volume = _to_decimal(volume)
        # a fill only changes its own order, so the resting limits are known before any fill
        limits: list[PaperOrder] = []
        for order in due:
            if order.type == MARKET:
                self._fill_market(order, market, opening, volume, slip=True)
            elif order.type == LIMIT and order.status == OPEN:
                limits.append(order)
        budget: Decimal | None = None
        if limits:  # the candle's range and the volume cap only matter to resting limits
            low, high = _to_decimal(low), _to_decimal(high)
            if volume is not None and settings.volume_participation is not None:
                budget = volume * settings.volume_participation
        for order in limits:
            assert order.price is not None
            if order.side == BUY:
                crossed = low <= order.price if settings.fill_on_touch else low < order.price
            else:
                crossed = high >= order.price if settings.fill_on_touch else high > order.price
            if not crossed:
                continue
            take = self._limit_take(order, market, budget)
            if take > 0:
                if budget is not None:
                    budget -= take
                self._fill(order, market, take, order.price, is_maker=True)
        self.last_price[symbol] = close
        if not report:
            return []
        # the newest trades are the dict's last entries: walk back over those only (a
        # slice of the whole dict made a year-long backtest quadratic in its trade count)
        added = len(self.trades) - before
        new = list(islice(reversed(self.trades.values()), added))
        return [t.to_ccxt() for t in reversed(new)]

    def _limit_take(self, order: PaperOrder, market: MarketInfo, budget: Decimal | None) -> Decimal:
        remaining = order.remaining
        cap = remaining
        if self.settings.max_fill_fraction < 1:
            share = round_amount(market, order.amount * self.settings.max_fill_fraction)
            cap = min(cap, max(share, market.amount_step))
        if budget is not None:
            cap = min(cap, round_amount(market, max(budget, ZERO)))
        if remaining - cap < market.amount_step:  # never leave unfillable dust behind
            cap = remaining if cap > 0 else cap
        return cap
