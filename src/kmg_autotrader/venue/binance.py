"""The Binance dialect: Binance spot's REST API (public and signed) and its WebSocket streams.

What real ``ccxt.binance`` / ``ccxt.pro.binance`` classes request for everything the bot does
(markets with keys, balance, create / fetch / cancel order, open orders, my trades, OHLCV,
ticker, order book, ``watch_ohlcv``, ``watch_ticker``), answered in Binance's wire format:

* public: ``/api/v3/ping|time|exchangeInfo|klines|uiKlines|ticker/24hr|ticker/price|
  ticker/bookTicker|avgPrice|depth|trades|aggTrades``; ``/fapi|/dapi|/eapi .../exchangeInfo``
  answer no markets (a ccxt without ``fetchMarkets: spot`` asks them);
* signed (``X-MBX-APIKEY`` + HMAC-SHA256 ``signature`` of the query string and body,
  ``timestamp`` within ``recvWindow``): ``/api/v3/account``, ``/api/v3/order`` (POST, GET,
  DELETE), ``/api/v3/openOrders`` (GET, DELETE), ``/api/v3/allOrders``, ``/api/v3/myTrades``,
  and the ``/sapi/v1/...`` endpoints ccxt's ``load_markets`` / ``fetch_balance`` touch with keys
  (margin pairs, currencies, trade fees), answered empty;
* WebSocket at ``/ws`` and ``/ws/{n}`` (ccxt.pro appends a stream index), ``/stream``: the
  ``SUBSCRIBE``/``UNSUBSCRIBE``/``LIST_SUBSCRIPTIONS`` protocol, ``<id>@kline_<tf>``,
  ``<id>@ticker``, ``<id>@miniTicker``, ``<id>@bookTicker``, ``<id>@depth…`` (snapshots).

Errors use Binance's codes: -1021 stale timestamp, -1022 bad signature, -2015 unknown key,
-1121 unknown symbol, -1120 interval the venue cannot serve, -1013 filter failures, -2010
order rejected (insufficient balance, duplicate client id, post-only taking), -2011 cancel of
an unknown or finished order, -2013 order does not exist, -1003 rate limit / ban, -1001
internal error. Fees are charged in the quote currency (the venue's paper engine does so).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from kmg_autotrader.domain import MarketInfo
from kmg_autotrader.exchange.errors import (
    ExchangeAdapterError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
)
from kmg_autotrader.execution.fees import FeeSchedule
from kmg_autotrader.venue.accounts import Account
from kmg_autotrader.venue.faults import Fault
from kmg_autotrader.venue.market import Candle, UnsupportedTimeframe
from kmg_autotrader.venue.server import Dialect, VenueError, WsConnection, http_error

SNAPSHOT = "binance_exchange_info.json"
DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = 60_000
_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_STATUS = {"closed": "FILLED", "canceled": "CANCELED", "expired": "EXPIRED"}
_Q8 = Decimal("0.00000001")
_SIG = re.compile(r"(^|&)signature=[^&]*")


def _fmt(value: Any) -> str:
    """A number as Binance prints it: fixed point with 8 decimals."""
    if value is None:
        return "0.00000000"
    if isinstance(value, float):
        value = Decimal(repr(value))
    try:
        return format(Decimal(value).quantize(_Q8, ROUND_DOWN), "f")
    except InvalidOperation:
        return format(Decimal(value), "f")


def _order_int(paper_id: str) -> int:
    return int(paper_id.lstrip("P"))


def _trade_int(paper_trade_id: str) -> int:
    order, _, n = paper_trade_id.partition("-")
    return int(order.lstrip("P")) * 1000 + int(n)


class BinanceError(Exception):
    """A Binance error answer: HTTP ``status`` with ``{"code": code, "msg": msg}``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status

    def response(self) -> web.HTTPException:
        """The aiohttp exception answering it."""
        return http_error(self.status, {"code": self.code, "msg": self.msg})


def load_snapshot() -> list[dict[str, Any]]:
    """The packaged exchangeInfo ``symbols`` entries (see snapshots/PROVENANCE.md)."""
    text = resources.files("kmg_autotrader.venue.snapshots").joinpath(SNAPSHOT).read_text()
    return list(json.loads(text)["symbols"])


def _filters(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["filterType"]: f for f in entry.get("filters", [])}


def market_info(entry: dict[str, Any], fees: FeeSchedule) -> MarketInfo:
    """The venue's market rules from one exchangeInfo symbol entry."""
    filters = _filters(entry)
    notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
    return MarketInfo(
        symbol=f"{entry['baseAsset']}/{entry['quoteAsset']}",
        base=entry["baseAsset"],
        quote=entry["quoteAsset"],
        amount_step=Decimal(filters["LOT_SIZE"]["stepSize"]).normalize(),
        price_step=Decimal(filters["PRICE_FILTER"]["tickSize"]).normalize(),
        min_amount=Decimal(filters["LOT_SIZE"]["minQty"]).normalize(),
        min_cost=Decimal(notional.get("minNotional", notional.get("notional", "0"))),
        maker_fee=fees.maker,
        taker_fee=fees.taker,
    )


class BinanceDialect(Dialect):
    """Binance spot on the venue (fees 0.1 % maker and taker, the base tier)."""

    name = "binance"
    fees = FeeSchedule(maker=Decimal("0.001"), taker=Decimal("0.001"))
    default_quote = "USDT"

    def __init__(self, venue: Any) -> None:
        super().__init__(venue)
        self.entries: dict[str, dict[str, Any]] = {}  # market id → exchangeInfo entry
        self.ids: dict[str, str] = {}  # unified symbol → market id
        self.symbols: dict[str, str] = {}  # market id → unified symbol

    # ---- setup ------------------------------------------------------------------------------

    def market_rules(self, symbols: Sequence[str]) -> dict[str, MarketInfo]:
        """Rules of the data's symbols from the packaged snapshot (others refused)."""
        by_symbol = {f"{e['baseAsset']}/{e['quoteAsset']}": e for e in load_snapshot()}
        missing = [s for s in symbols if s not in by_symbol]
        if missing:
            raise VenueError(
                f"no Binance market rules for {', '.join(missing)} in the packaged snapshot "
                f"(it has {', '.join(sorted(by_symbol))})"
            )
        rules: dict[str, MarketInfo] = {}
        for symbol in symbols:
            entry = by_symbol[symbol]
            self.entries[entry["symbol"]] = entry
            self.ids[symbol] = entry["symbol"]
            self.symbols[entry["symbol"]] = symbol
            rules[symbol] = market_info(entry, self.fees)
        return rules

    def wire_order_id(self, paper_id: str) -> str:
        """Binance's numeric ``orderId``."""
        return str(_order_int(paper_id))

    def wire_trade_id(self, paper_id: str) -> str:
        """Binance's numeric trade ``id``."""
        return str(_trade_int(paper_id))

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Binance's REST paths, the SAPI stubs ccxt touches, and the stream endpoints."""
        get, post, delete = router.add_get, router.add_post, router.add_delete
        get("/api/v3/ping", self.ping)
        get("/api/v3/time", self.server_time)
        get("/api/v3/exchangeInfo", self.exchange_info)
        get("/api/v3/klines", self.klines)
        get("/api/v3/uiKlines", self.klines)
        get("/api/v3/ticker/24hr", self.ticker_24hr)
        get("/api/v3/ticker/price", self.ticker_price)
        get("/api/v3/ticker/bookTicker", self.book_ticker)
        get("/api/v3/avgPrice", self.avg_price)
        get("/api/v3/depth", self.depth)
        get("/api/v3/trades", self.public_trades)
        get("/api/v3/aggTrades", self.agg_trades)
        get("/api/v3/account", self.account)
        post("/api/v3/order", self.create_order)
        get("/api/v3/order", self.get_order)
        delete("/api/v3/order", self.cancel_order)
        get("/api/v3/openOrders", self.open_orders)
        delete("/api/v3/openOrders", self.cancel_all)
        get("/api/v3/allOrders", self.all_orders)
        get("/api/v3/myTrades", self.my_trades)
        for family in ("fapi", "dapi", "eapi"):
            get(f"/{family}/v1/exchangeInfo", self.other_exchange_info)
        get("/sapi/v1/asset/tradeFee", self.trade_fee)
        get("/sapi/{tail:.*}", self.sapi_empty)
        get("/ws", self.ws)
        get("/ws/{n}", self.ws)
        get("/stream", self.ws)

    # ---- errors -----------------------------------------------------------------------------

    def error_response(self, fault: Fault, retry_after: int | None = None) -> web.HTTPException:
        """429 / 418 / 5xx in Binance's format (with Retry-After on 429 and 418)."""
        wait = retry_after if retry_after is not None else fault.retry_after
        if fault.kind == "rate_limit":
            body = {
                "code": -1003,
                "msg": "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per "
                "minute. Please use the websocket for live updates to avoid polling the API.",
            }
            return http_error(429, body, {"Retry-After": str(wait)})
        if fault.kind == "ban":
            until = int(time.time() * 1000) + wait * 1000
            body = {
                "code": -1003,
                "msg": f"Way too much request weight used; IP banned until {until}. Please use "
                "WebSocket Streams for live updates to avoid bans.",
            }
            return http_error(418, body, {"Retry-After": str(wait)})
        if fault.status == 500:
            body = {
                "code": -1001,
                "msg": "Internal error; unable to process your request. Please try again.",
            }
            return http_error(500, body)
        # 502/503/504 come from Binance's gateway as an HTML page, not the API's JSON
        reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
        text = reason.get(fault.status, "Error")
        exc = web.HTTPException(
            text=f"<html><body><h1>{fault.status} {text}</h1></body></html>",
            content_type="text/html",
        )
        exc.set_status(fault.status)
        return exc

    # ---- request helpers --------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, str]:
        params = dict(request.query)
        if request.can_read_body:
            body = await request.text()
            params.update(dict(parse_qsl(body, keep_blank_values=True)))
        return params

    def _now(self) -> int:
        return self.venue.clock.now_ms()

    def _market_id(self, params: dict[str, str], required: bool = True) -> str | None:
        market_id = params.get("symbol")
        if market_id is None:
            if required:
                raise BinanceError(
                    -1102,
                    "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
                )
            return None
        if market_id not in self.entries:
            raise BinanceError(-1121, "Invalid symbol.")
        return market_id

    async def _signed(self, request: web.Request) -> tuple[Account, dict[str, str]]:
        """Check key, timestamp and signature like Binance; returns (account, params)."""
        key = request.headers.get("X-MBX-APIKEY", "")
        account = self.venue.accounts.get(key) if key else None
        if account is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        raw_query = request.rel_url.raw_query_string
        raw_body = await request.text() if request.can_read_body else ""
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        params.update(dict(parse_qsl(raw_body, keep_blank_values=True)))
        if "timestamp" not in params:
            raise BinanceError(
                -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            )
        try:
            stamp = int(params["timestamp"])
            window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW))
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in a parameter.") from None
        if window > MAX_RECV_WINDOW:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
        # Fresh against the wall clock (what a client stamps with), or against venue time
        # (a client that synchronised with /api/v3/time at a speed other than 1).
        fresh = any(
            stamp <= now + 1000 and now - stamp <= window
            for now in (int(time.time() * 1000), self._now())
        )
        if not fresh:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
        signature = params.get("signature", "")
        payload = _SIG.sub("", raw_query).lstrip("&") + _SIG.sub("", raw_body).lstrip("&")
        expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not signature or not hmac.compare_digest(signature.lower(), expected):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        return account, params

    async def _handle(self, endpoint: str, request: web.Request, work: Any) -> web.Response:
        """Run the fault gate, then ``work``; Binance errors become their answers."""
        await self.venue.gate(endpoint)
        try:
            return web.json_response(await work())
        except BinanceError as exc:
            raise exc.response() from None

    # ---- public REST ------------------------------------------------------------------------

    async def ping(self, request: web.Request) -> web.Response:
        """GET /api/v3/ping."""
        return await self._handle("markets", request, self._empty_object)

    async def _empty_object(self) -> dict[str, Any]:
        return {}

    async def server_time(self, request: web.Request) -> web.Response:
        """GET /api/v3/time: venue time."""

        async def work() -> Any:
            return {"serverTime": self._now()}

        return await self._handle("markets", request, work)

    async def exchange_info(self, request: web.Request) -> web.Response:
        """GET /api/v3/exchangeInfo (the packaged snapshot's entries of the replayed symbols)."""

        async def work() -> Any:
            wanted = self._wanted_ids(request)
            symbols = [e for mid, e in self.entries.items() if wanted is None or mid in wanted]
            return {
                "timezone": "UTC",
                "serverTime": self._now(),
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": 6000,
                    },
                    {
                        "rateLimitType": "ORDERS",
                        "interval": "SECOND",
                        "intervalNum": 10,
                        "limit": 100,
                    },
                    {
                        "rateLimitType": "RAW_REQUESTS",
                        "interval": "MINUTE",
                        "intervalNum": 5,
                        "limit": 61000,
                    },
                ],
                "exchangeFilters": [],
                "symbols": symbols,
            }

        return await self._handle("markets", request, work)

    def _wanted_ids(self, request: web.Request) -> set[str] | None:
        q = request.query
        if "symbol" in q:
            self._market_id(dict(q))
            return {q["symbol"]}
        if "symbols" in q:
            try:
                ids = set(json.loads(q["symbols"]))
            except ValueError:
                raise BinanceError(
                    -1100, "Illegal characters found in parameter 'symbols'."
                ) from None
            for mid in ids:
                self._market_id({"symbol": mid})
            return ids
        return None

    async def other_exchange_info(self, request: web.Request) -> web.Response:
        """Futures/options exchangeInfo: the venue is spot only, no markets there."""

        async def work() -> Any:
            return {
                "timezone": "UTC",
                "serverTime": self._now(),
                "rateLimits": [],
                "exchangeFilters": [],
                "assets": [],
                "symbols": [],
                "optionSymbols": [],
            }

        return await self._handle("markets", request, work)

    async def klines(self, request: web.Request) -> web.Response:
        """GET /api/v3/klines: closed candles plus the forming one, up to 1000 (default 500)."""

        async def work() -> Any:
            q = dict(request.query)
            market_id = self._market_id(q)
            assert market_id is not None
            interval = q.get("interval", "")
            try:
                limit = min(max(int(q.get("limit", 500)), 1), 1000)
                since = int(q["startTime"]) if "startTime" in q else None
                until = int(q["endTime"]) if "endTime" in q else None
            except ValueError:
                raise BinanceError(-1100, "Illegal characters found in a parameter.") from None
            try:
                tf_ms = self.venue.market.check_timeframe(interval)
                rows = self.venue.market.visible(
                    self.symbols[market_id],
                    interval,
                    self._now(),
                    since=since,
                    until=until,
                    limit=limit,
                )
            except UnsupportedTimeframe as exc:
                raise BinanceError(-1120, f"Invalid interval. {exc}") from None
            return [self._kline_row(r, tf_ms) for r in rows]

        return await self._handle("ohlcv", request, work)

    @staticmethod
    def _kline_row(row: Candle, tf_ms: int) -> list[Any]:
        quote = row.volume * row.close
        return [
            row.ts,
            _fmt(row.open),
            _fmt(row.high),
            _fmt(row.low),
            _fmt(row.close),
            _fmt(row.volume),
            row.ts + tf_ms - 1,
            _fmt(quote),
            4,
            _fmt(row.volume / 2),
            _fmt(quote / 2),
            "0",
        ]

    def _ticker_payload(self, market_id: str) -> dict[str, Any]:
        """The 24hr ticker of ``market_id`` at venue time (window: the last 24 hours)."""
        symbol = self.symbols[market_id]
        market = self.venue.market
        now = self._now()
        rows = market.visible(symbol, f"{market.step_ms // 60_000}m", now, since=now - 86_400_000)
        last = market.last_price(symbol, now) or Decimal(0)
        step = self.venue.rules[symbol].price_step
        if rows:
            open_ = Decimal(repr(rows[0].open))
            high = Decimal(repr(max(r.high for r in rows)))
            low = Decimal(repr(min(r.low for r in rows)))
            volume = sum(r.volume for r in rows)
            quote_volume = sum(r.volume * r.close for r in rows)
            first_ts = rows[0].ts
        else:
            open_ = high = low = last
            volume = quote_volume = 0.0
            first_ts = now - 86_400_000
        change = last - open_
        percent = (change / open_ * 100) if open_ else Decimal(0)
        weighted = Decimal(repr(quote_volume / volume)) if volume else last
        return {
            "symbol": market_id,
            "priceChange": _fmt(change),
            "priceChangePercent": format(percent.quantize(Decimal("0.001")), "f"),
            "weightedAvgPrice": _fmt(weighted),
            "prevClosePrice": _fmt(open_),
            "lastPrice": _fmt(last),
            "lastQty": "0.01000000",
            "bidPrice": _fmt(last),
            "bidQty": "1.00000000",
            "askPrice": _fmt(last + step),
            "askQty": "1.00000000",
            "openPrice": _fmt(open_),
            "highPrice": _fmt(high),
            "lowPrice": _fmt(low),
            "volume": _fmt(volume),
            "quoteVolume": _fmt(quote_volume),
            "openTime": first_ts,
            "closeTime": now,
            "firstId": 1,
            "lastId": max(1, len(rows) * 4),
            "count": len(rows) * 4,
        }

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        """GET /api/v3/ticker/24hr (one symbol, a list, or all)."""

        async def work() -> Any:
            wanted = self._wanted_ids(request)
            if "symbol" in request.query:
                return self._ticker_payload(request.query["symbol"])
            return [self._ticker_payload(m) for m in self.entries if wanted is None or m in wanted]

        return await self._handle("ticker", request, work)

    async def ticker_price(self, request: web.Request) -> web.Response:
        """GET /api/v3/ticker/price."""

        async def work() -> Any:
            wanted = self._wanted_ids(request)
            rows = [
                {"symbol": m, "price": _fmt(self.venue.market.last_price(s, self._now()))}
                for m, s in self.symbols.items()
                if wanted is None or m in wanted
            ]
            return rows[0] if "symbol" in request.query else rows

        return await self._handle("ticker", request, work)

    def _book_ticker(self, market_id: str) -> dict[str, Any]:
        book = self.venue.market.order_book(self.symbols[market_id], self._now(), depth=1)
        bid = book["bids"][0] if book["bids"] else [Decimal(0), Decimal(0)]
        ask = book["asks"][0] if book["asks"] else [Decimal(0), Decimal(0)]
        return {
            "symbol": market_id,
            "bidPrice": _fmt(bid[0]),
            "bidQty": _fmt(bid[1]),
            "askPrice": _fmt(ask[0]),
            "askQty": _fmt(ask[1]),
        }

    async def book_ticker(self, request: web.Request) -> web.Response:
        """GET /api/v3/ticker/bookTicker."""

        async def work() -> Any:
            wanted = self._wanted_ids(request)
            rows = [self._book_ticker(m) for m in self.entries if wanted is None or m in wanted]
            return rows[0] if "symbol" in request.query else rows

        return await self._handle("ticker", request, work)

    async def avg_price(self, request: web.Request) -> web.Response:
        """GET /api/v3/avgPrice (the last price: the venue has no 5-minute trade average)."""

        async def work() -> Any:
            market_id = self._market_id(dict(request.query))
            assert market_id is not None
            price = self.venue.market.last_price(self.symbols[market_id], self._now())
            return {"mins": 5, "price": _fmt(price), "closeTime": self._now()}

        return await self._handle("ticker", request, work)

    async def depth(self, request: web.Request) -> web.Response:
        """GET /api/v3/depth: the venue's book around the last price."""

        async def work() -> Any:
            market_id = self._market_id(dict(request.query))
            assert market_id is not None
            limit = min(int(request.query.get("limit", 100)), 5000)
            book = self.venue.market.order_book(
                self.symbols[market_id], self._now(), depth=min(limit, 20)
            )
            return {
                "lastUpdateId": self._now(),
                "bids": [[_fmt(p), _fmt(q)] for p, q in book["bids"]],
                "asks": [[_fmt(p), _fmt(q)] for p, q in book["asks"]],
            }

        return await self._handle("order_book", request, work)

    def _synth_trades(self, request: web.Request) -> list[Any]:
        q = dict(request.query)
        market_id = self._market_id(q)
        assert market_id is not None
        now = self._now()
        since = int(q.get("startTime", now - 3_600_000))
        until = min(int(q.get("endTime", now)), now)
        limit = min(int(q.get("limit", 500)), 1000)
        trades = self.venue.market.trades(self.symbols[market_id], since, until)
        if "fromId" in q:
            trades = [t for t in trades if t.id >= int(q["fromId"])]
        return trades[:limit] if "startTime" in q or "fromId" in q else trades[-limit:]

    async def public_trades(self, request: web.Request) -> web.Response:
        """GET /api/v3/trades (synthesised from the candles: 4 per candle)."""

        async def work() -> Any:
            return [
                {
                    "id": t.id,
                    "price": _fmt(t.price),
                    "qty": _fmt(t.amount),
                    "quoteQty": _fmt(t.price * t.amount),
                    "time": t.ts,
                    "isBuyerMaker": t.side == "sell",
                    "isBestMatch": True,
                }
                for t in self._synth_trades(request)
            ]

        return await self._handle("ohlcv", request, work)

    async def agg_trades(self, request: web.Request) -> web.Response:
        """GET /api/v3/aggTrades (ccxt's fetch_trades): the same trades, aggregated format."""

        async def work() -> Any:
            return [
                {
                    "a": t.id,
                    "p": _fmt(t.price),
                    "q": _fmt(t.amount),
                    "f": t.id,
                    "l": t.id,
                    "T": t.ts,
                    "m": t.side == "sell",
                    "M": True,
                }
                for t in self._synth_trades(request)
            ]

        return await self._handle("ohlcv", request, work)

    # ---- SAPI stubs -------------------------------------------------------------------------

    async def sapi_empty(self, request: web.Request) -> web.Response:
        """Margin pairs, currencies, …: the venue has none (a list; ccxt accepts it)."""

        async def work() -> Any:
            await self._signed(request) if "signature" in request.query else None
            return []

        return await self._handle("markets", request, work)

    async def trade_fee(self, request: web.Request) -> web.Response:
        """GET /sapi/v1/asset/tradeFee: the venue's fees for every replayed symbol."""

        async def work() -> Any:
            await self._signed(request)
            return [
                {
                    "symbol": m,
                    "makerCommission": str(self.fees.maker),
                    "takerCommission": str(self.fees.taker),
                }
                for m in self.entries
            ]

        return await self._handle("markets", request, work)

    # ---- signed REST ------------------------------------------------------------------------

    async def account(self, request: web.Request) -> web.Response:
        """GET /api/v3/account: balances (free and locked)."""

        async def work() -> Any:
            account, params = await self._signed(request)
            balance = account.engine.balance()
            rows = [
                {"asset": c, "free": _fmt(balance["free"][c]), "locked": _fmt(balance["used"][c])}
                for c in balance["free"]
            ]
            if params.get("omitZeroBalances") == "true":
                rows = [r for r in rows if Decimal(r["free"]) or Decimal(r["locked"])]
            maker, taker = _fmt(self.fees.maker), _fmt(self.fees.taker)
            return {
                "makerCommission": int(self.fees.maker * 10_000),
                "takerCommission": int(self.fees.taker * 10_000),
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": maker,
                    "taker": taker,
                    "buyer": "0.00000000",
                    "seller": "0.00000000",
                },
                "canTrade": True,
                "canWithdraw": False,
                "canDeposit": False,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self._now(),
                "accountType": "SPOT",
                "balances": rows,
                "permissions": ["SPOT"],
                "uid": 1,
            }

        return await self._handle("balance", request, work)

    def _order_json(self, order: dict[str, Any]) -> dict[str, Any]:
        status = order["status"]
        if status == "open":
            binance_status = "PARTIALLY_FILLED" if order["filled"] else "NEW"
        else:
            binance_status = _STATUS[status]
        kind = "LIMIT_MAKER" if order["postOnly"] else str(order["type"]).upper()
        return {
            "symbol": self.ids[order["symbol"]],
            "orderId": _order_int(order["id"]),
            "orderListId": -1,
            "clientOrderId": order["clientOrderId"],
            "price": _fmt(order["price"] or 0),
            "origQty": _fmt(order["amount"]),
            "executedQty": _fmt(order["filled"]),
            "cummulativeQuoteQty": _fmt(order["cost"]),
            "status": binance_status,
            "timeInForce": "GTC",
            "type": kind,
            "side": str(order["side"]).upper(),
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": order["timestamp"],
            "updateTime": order["lastUpdateTimestamp"],
            "isWorking": True,
            "workingTime": order["timestamp"],
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def _trade_json(self, trade: dict[str, Any]) -> dict[str, Any]:
        return {
            "symbol": self.ids[trade["symbol"]],
            "id": _trade_int(trade["id"]),
            "orderId": _order_int(trade["order"]),
            "orderListId": -1,
            "price": _fmt(trade["price"]),
            "qty": _fmt(trade["amount"]),
            "quoteQty": _fmt(trade["cost"]),
            "commission": _fmt(trade["fee"]["cost"]),
            "commissionAsset": trade["fee"]["currency"],
            "time": trade["timestamp"],
            "isBuyer": trade["side"] == "buy",
            "isMaker": trade["takerOrMaker"] == "maker",
            "isBestMatch": True,
        }

    def _decimal(self, params: dict[str, str], name: str) -> Decimal:
        try:
            value = Decimal(params[name])
        except KeyError:
            raise BinanceError(
                -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
            ) from None
        except InvalidOperation:
            raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.") from None
        if not value.is_finite() or value <= 0:
            raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.")
        return value

    def _check_filters(self, market_id: str, quantity: Decimal, price: Decimal | None) -> None:
        """LOT_SIZE and PRICE_FILTER as Binance applies them (the engine would round)."""
        filters = _filters(self.entries[market_id])
        lot = filters["LOT_SIZE"]
        step, min_qty, max_qty = (Decimal(lot[k]) for k in ("stepSize", "minQty", "maxQty"))
        if quantity < min_qty or quantity > max_qty or (step and quantity % step):
            raise BinanceError(-1013, "Filter failure: LOT_SIZE")
        if price is not None:
            pf = filters["PRICE_FILTER"]
            tick, min_p, max_p = (Decimal(pf[k]) for k in ("tickSize", "minPrice", "maxPrice"))
            if price < min_p or price > max_p or (tick and price % tick):
                raise BinanceError(-1013, "Filter failure: PRICE_FILTER")

    async def create_order(self, request: web.Request) -> web.Response:
        """POST /api/v3/order: MARKET, LIMIT (GTC/IOC/FOK) and LIMIT_MAKER."""
        fault = await self.venue.gate("create_order")
        try:
            account, p = await self._signed(request)
            body = self._place(account, p, fault)
        except BinanceError as exc:
            self.venue.faults.order_creation_failed()
            raise exc.response() from None
        if fault is not None and fault.kind == "timeout_after_accept":
            await self.venue.late_answer(fault)
        return web.json_response(body)

    def _place(self, account: Account, p: dict[str, str], fault: Fault | None) -> dict[str, Any]:
        market_id = self._market_id(p)
        assert market_id is not None
        symbol = self.symbols[market_id]
        kind = p.get("type", "").upper()
        side = p.get("side", "").upper()
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1100, "Illegal characters found in parameter 'side'.")
        if kind not in ("MARKET", "LIMIT", "LIMIT_MAKER"):
            raise BinanceError(-1116, "Invalid orderType.")
        client_id = p.get("newClientOrderId")
        if client_id is not None and not _CLIENT_ID.match(client_id):
            raise BinanceError(-1100, "Illegal characters found in parameter 'newClientOrderId'.")
        tif = p.get("timeInForce", "GTC").upper()
        if kind == "LIMIT" and "timeInForce" not in p:
            raise BinanceError(
                -1102,
                "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
            )
        now = self._now()
        book = self.venue.market.order_book(symbol, now)
        price: Decimal | None = None
        if kind == "MARKET":
            if "quantity" not in p and "quoteOrderQty" in p:
                quote_qty = self._decimal(p, "quoteOrderQty")
                levels = book["asks"] if side == "BUY" else book["bids"]
                if not levels:
                    raise BinanceError(-1013, "Filter failure: NOTIONAL")
                step = self.venue.rules[symbol].amount_step
                quantity = (quote_qty / levels[0][0] / step).to_integral_value(ROUND_DOWN) * step
            else:
                quantity = self._decimal(p, "quantity")
        else:
            quantity = self._decimal(p, "quantity")
            price = self._decimal(p, "price")
        self._check_filters(market_id, quantity, price)
        partial = Decimal(str(fault.fraction)) if fault and fault.kind == "partial_fill" else None
        try:
            order = self.venue.accounts.place(
                account,
                symbol,
                "market" if kind == "MARKET" else "limit",
                side.lower(),
                quantity,
                price,
                client_order_id=client_id,
                post_only=kind == "LIMIT_MAKER",
                book=book,
                partial=partial,
            )
        except InsufficientFundsError:
            raise BinanceError(
                -2010, "Account has insufficient balance for requested action."
            ) from None
        except InvalidOrderError as exc:
            text = str(exc)
            if "duplicate" in text:
                raise BinanceError(-2010, "Duplicate order sent.") from None
            if "post-only" in text:
                raise BinanceError(-2010, "Order would immediately match and take.") from None
            if "value" in text:
                raise BinanceError(-1013, "Filter failure: NOTIONAL") from None
            raise BinanceError(-1013, "Filter failure: LOT_SIZE") from None
        except ExchangeAdapterError as exc:
            raise BinanceError(-1013, f"Filter failure: {exc}") from None
        if kind == "LIMIT" and tif in ("IOC", "FOK") and order["status"] == "open":
            # IOC keeps what filled at once; FOK fills whole or not at all (the venue's
            # book is deep enough that a crossing FOK fills whole)
            order = self.venue.accounts.cancel(account, order["id"], expire=True)
        self.venue.faults.order_created(account.api_key, order["id"])
        body = self._order_json(order)
        body["transactTime"] = order["timestamp"]
        body["timeInForce"] = tif if kind == "LIMIT" else "GTC"
        resp_type = p.get("newOrderRespType", "FULL").upper()
        if resp_type == "ACK":
            return {
                k: body[k]
                for k in ("symbol", "orderId", "orderListId", "clientOrderId", "transactTime")
            }
        if resp_type == "FULL":
            body["fills"] = [
                {
                    "price": _fmt(t["price"]),
                    "qty": _fmt(t["amount"]),
                    "commission": _fmt(t["fee"]["cost"]),
                    "commissionAsset": t["fee"]["currency"],
                    "tradeId": _trade_int(t["id"]),
                }
                for t in order["trades"]
            ]
        return body

    def _find(self, account: Account, p: dict[str, str], *, cancel: bool) -> dict[str, Any]:
        """The order named by ``orderId`` or ``origClientOrderId`` (a ``not_found`` fault
        hides it for its first look-ups)."""
        missing = (
            BinanceError(-2011, "Unknown order sent.")
            if cancel
            else BinanceError(-2013, "Order does not exist.")
        )
        engine = account.engine
        try:
            if "orderId" in p:
                order = engine.fetch_order(f"P{int(p['orderId'])}")
            elif "origClientOrderId" in p:
                order = engine.fetch_order_by_client_id(p["origClientOrderId"])
            else:
                raise BinanceError(
                    -1102,
                    "Param 'origClientOrderId' or 'orderId' must be sent, but both were "
                    "empty/null!",
                )
        except (OrderNotFoundError, ValueError):
            raise missing from None
        if order["symbol"] != self.symbols.get(p.get("symbol", ""), None):
            raise missing
        if not cancel and self.venue.faults.hidden(account.api_key, order["id"]):
            raise missing
        return order

    async def get_order(self, request: web.Request) -> web.Response:
        """GET /api/v3/order by orderId or origClientOrderId."""

        async def work() -> Any:
            account, p = await self._signed(request)
            self._market_id(p)
            return self._order_json(self._find(account, p, cancel=False))

        return await self._handle("fetch_order", request, work)

    async def cancel_order(self, request: web.Request) -> web.Response:
        """DELETE /api/v3/order: -2011 for an unknown or finished order."""

        async def work() -> Any:
            account, p = await self._signed(request)
            self._market_id(p)
            order = self._find(account, p, cancel=True)
            try:
                canceled = self.venue.accounts.cancel(account, order["id"])
            except OrderNotFoundError:
                raise BinanceError(-2011, "Unknown order sent.") from None
            body = self._order_json(canceled)
            body["origClientOrderId"] = body["clientOrderId"]
            body["transactTime"] = self._now()
            return body

        return await self._handle("cancel_order", request, work)

    async def open_orders(self, request: web.Request) -> web.Response:
        """GET /api/v3/openOrders (one symbol or all)."""

        async def work() -> Any:
            account, p = await self._signed(request)
            market_id = self._market_id(p, required=False)
            symbol = self.symbols[market_id] if market_id else None
            return [self._order_json(o) for o in account.engine.open_orders(symbol)]

        return await self._handle("open_orders", request, work)

    async def cancel_all(self, request: web.Request) -> web.Response:
        """DELETE /api/v3/openOrders?symbol=: cancel every open order of a symbol."""

        async def work() -> Any:
            account, p = await self._signed(request)
            market_id = self._market_id(p)
            assert market_id is not None
            out = []
            for order in account.engine.open_orders(self.symbols[market_id]):
                canceled = self.venue.accounts.cancel(account, order["id"])
                body = self._order_json(canceled)
                body["origClientOrderId"] = body["clientOrderId"]
                out.append(body)
            if not out:
                raise BinanceError(-2011, "Unknown order sent.")
            return out

        return await self._handle("cancel_order", request, work)

    async def all_orders(self, request: web.Request) -> web.Response:
        """GET /api/v3/allOrders?symbol=&startTime=&orderId=&limit= (oldest first)."""

        async def work() -> Any:
            account, p = await self._signed(request)
            market_id = self._market_id(p)
            assert market_id is not None
            symbol = self.symbols[market_id]
            engine = account.engine
            rows = [engine.fetch_order(o.id) for o in engine.orders.values() if o.symbol == symbol]
            if "orderId" in p:
                rows = [o for o in rows if _order_int(o["id"]) >= int(p["orderId"])]
            if "startTime" in p:
                rows = [o for o in rows if o["timestamp"] >= int(p["startTime"])]
            if "endTime" in p:
                rows = [o for o in rows if o["timestamp"] <= int(p["endTime"])]
            limit = min(int(p.get("limit", 500)), 1000)
            rows = rows[:limit] if "orderId" in p or "startTime" in p else rows[-limit:]
            return [self._order_json(o) for o in rows]

        return await self._handle("open_orders", request, work)

    async def my_trades(self, request: web.Request) -> web.Response:
        """GET /api/v3/myTrades?symbol=&orderId=&startTime=&endTime=&fromId=&limit=."""

        async def work() -> Any:
            account, p = await self._signed(request)
            market_id = self._market_id(p)
            assert market_id is not None
            since = int(p["startTime"]) if "startTime" in p else None
            rows = account.engine.my_trades(self.symbols[market_id], since)
            if "endTime" in p:
                rows = [t for t in rows if t["timestamp"] <= int(p["endTime"])]
            if "orderId" in p:
                rows = [t for t in rows if _order_int(t["order"]) == int(p["orderId"])]
            if "fromId" in p:
                rows = [t for t in rows if _trade_int(t["id"]) >= int(p["fromId"])]
            rows.sort(key=lambda t: _trade_int(t["id"]))
            limit = min(int(p.get("limit", 500)), 1000)
            keep_first = "fromId" in p or "startTime" in p
            rows = rows[:limit] if keep_first else rows[-limit:]
            return [self._trade_json(t) for t in rows]

        return await self._handle("my_trades", request, work)

    # ---- WebSocket --------------------------------------------------------------------------

    async def ws(self, request: web.Request) -> web.StreamResponse:
        """The stream endpoint: ``/ws``, ``/ws/{n}``, ``/stream?streams=a/b`` (combined)."""
        combined = request.path.startswith("/stream")
        initial: list[str] = []
        if combined and request.query.get("streams"):
            initial = request.query["streams"].split("/")
        elif request.path.startswith("/ws/") and "@" in request.match_info.get("n", ""):
            initial = [request.match_info["n"]]

        async def on_open(conn: WsConnection) -> None:
            conn.state["combined"] = combined
            self._subscribe(conn, initial)

        return await self.hub.serve(request, self._on_ws_message, on_open)

    def _subscribe(self, conn: WsConnection, streams: list[str]) -> None:
        for stream in streams:
            conn.topics.add(stream)

    async def _on_ws_message(self, conn: WsConnection, data: Any) -> None:
        if not isinstance(data, dict):
            return
        method, ident = data.get("method"), data.get("id")
        params = data.get("params") or []
        if method == "SUBSCRIBE":
            bad = [s for s in params if not self._valid_stream(s)]
            if bad:
                await self.hub.send(
                    conn,
                    {
                        "error": {"code": 2, "msg": f"Invalid request: unknown stream {bad[0]}"},
                        "id": ident,
                    },
                )
                return
            self._subscribe(conn, list(params))
            await self.hub.send(conn, {"result": None, "id": ident})
            for stream in params:  # a fresh subscriber sees the forming candle at once
                await self._push_current(conn, stream)
        elif method == "UNSUBSCRIBE":
            conn.topics.difference_update(params)
            await self.hub.send(conn, {"result": None, "id": ident})
        elif method == "LIST_SUBSCRIPTIONS":
            await self.hub.send(conn, {"result": sorted(conn.topics), "id": ident})
        else:
            await self.hub.send(
                conn, {"error": {"code": 2, "msg": "Invalid request: unknown method"}, "id": ident}
            )

    def _split_stream(self, stream: str) -> tuple[str, str] | None:
        lower_id, _, channel = stream.partition("@")
        market_id = lower_id.upper()
        if market_id not in self.symbols or not channel:
            return None
        return market_id, channel

    def _valid_stream(self, stream: str) -> bool:
        parts = self._split_stream(stream)
        if parts is None:
            return False
        channel = parts[1]
        if channel.startswith("kline_"):
            try:
                self.venue.market.check_timeframe(channel[len("kline_") :])
            except UnsupportedTimeframe:
                return False
            return True
        return channel in ("ticker", "miniTicker", "bookTicker", "trade", "aggTrade") or (
            channel.startswith("depth")
        )

    async def _push_current(self, conn: WsConnection, stream: str) -> None:
        parts = self._split_stream(stream)
        if parts is None:
            return
        market_id, channel = parts
        symbol = self.symbols[market_id]
        now = self._now()
        event: dict[str, Any] | None = None
        if channel.startswith("kline_"):
            tf = channel[len("kline_") :]
            tf_ms = self.venue.market.check_timeframe(tf)
            row = self.venue.market.bucket(symbol, tf, now // tf_ms * tf_ms, now)
            if row is not None:
                event = self._kline_event(market_id, tf, tf_ms, row, final=False)
        if event is not None:
            await self.hub.send(conn, self._wrap(conn, stream, event))

    @staticmethod
    def _wrap(conn: WsConnection, stream: str, event: dict[str, Any]) -> dict[str, Any]:
        return {"stream": stream, "data": event} if conn.state.get("combined") else event

    async def _publish(self, stream: str, event: dict[str, Any]) -> None:
        """Broadcast to raw (``/ws``) and combined (``/stream``) subscribers alike."""
        await self.hub.broadcast(stream, event, render=lambda c, e: self._wrap(c, stream, e))

    def _kline_event(
        self, market_id: str, tf: str, tf_ms: int, row: Candle, final: bool
    ) -> dict[str, Any]:
        quote = row.volume * row.close
        return {
            "e": "kline",
            "E": self._now(),
            "s": market_id,
            "k": {
                "t": row.ts,
                "T": row.ts + tf_ms - 1,
                "s": market_id,
                "i": tf,
                "f": 1,
                "L": 4,
                "o": _fmt(row.open),
                "c": _fmt(row.close),
                "h": _fmt(row.high),
                "l": _fmt(row.low),
                "v": _fmt(row.volume),
                "n": 4,
                "x": final,
                "q": _fmt(quote),
                "V": _fmt(row.volume / 2),
                "Q": _fmt(quote / 2),
                "B": "0",
            },
        }

    def _streams_of(self, market_id: str) -> set[str]:
        prefix = market_id.lower() + "@"
        return {t for c in self.hub.connections for t in c.topics if t.startswith(prefix)}

    async def on_candle(self, symbol: str, row: Candle, final: bool) -> None:
        """Kline events for every subscribed timeframe; tickers after each replay step."""
        market_id = self.ids.get(symbol)
        if market_id is None:
            return
        streams = self._streams_of(market_id)
        if not streams:
            return
        market = self.venue.market
        now = self._now()
        for stream in sorted(streams):
            channel = stream.partition("@")[2]
            if channel.startswith("kline_"):
                tf = channel[len("kline_") :]
                tf_ms = market.check_timeframe(tf)
                if final:
                    end = row.ts + market.step_ms
                    if end % tf_ms == 0:  # the base candle closes its bucket
                        bucket = market.bucket(symbol, tf, end - tf_ms, end)
                        if bucket is not None:
                            event = self._kline_event(market_id, tf, tf_ms, bucket, final=True)
                            await self._publish(stream, event)
                else:
                    bucket = market.bucket(symbol, tf, now // tf_ms * tf_ms, now)
                    if bucket is not None:
                        event = self._kline_event(market_id, tf, tf_ms, bucket, final=False)
                        await self._publish(stream, event)
            elif not final:
                await self._publish_ticker(stream, market_id, channel)

    async def _publish_ticker(self, stream: str, market_id: str, channel: str) -> None:
        now = self._now()
        if channel == "bookTicker":
            bt = self._book_ticker(market_id)
            event = {
                "u": now,
                "s": market_id,
                "b": bt["bidPrice"],
                "B": bt["bidQty"],
                "a": bt["askPrice"],
                "A": bt["askQty"],
            }
            await self._publish(stream, event)
            return
        if channel not in ("ticker", "miniTicker"):
            return
        p = self._ticker_payload(market_id)
        if channel == "miniTicker":
            event = {
                "e": "24hrMiniTicker",
                "E": now,
                "s": market_id,
                "c": p["lastPrice"],
                "o": p["openPrice"],
                "h": p["highPrice"],
                "l": p["lowPrice"],
                "v": p["volume"],
                "q": p["quoteVolume"],
            }
        else:
            event = {
                "e": "24hrTicker",
                "E": now,
                "s": market_id,
                "p": p["priceChange"],
                "P": p["priceChangePercent"],
                "w": p["weightedAvgPrice"],
                "x": p["prevClosePrice"],
                "c": p["lastPrice"],
                "Q": p["lastQty"],
                "b": p["bidPrice"],
                "B": p["bidQty"],
                "a": p["askPrice"],
                "A": p["askQty"],
                "o": p["openPrice"],
                "h": p["highPrice"],
                "l": p["lowPrice"],
                "v": p["volume"],
                "q": p["quoteVolume"],
                "O": p["openTime"],
                "C": p["closeTime"],
                "F": p["firstId"],
                "L": p["lastId"],
                "n": p["count"],
            }
        await self._publish(stream, event)
