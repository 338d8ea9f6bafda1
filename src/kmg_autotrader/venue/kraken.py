"""The Kraken dialect: Kraken spot's REST API (public and private) and its WebSocket v2.

What real ``ccxt.kraken`` / ``ccxt.pro.kraken`` classes request for everything the bot does,
answered in Kraken's wire format (checked against ccxt 4.5.90's parsers):

* public (GET ``/0/public/...``): ``Time``, ``SystemStatus``, ``Assets`` and ``AssetPairs``
  (``load_markets``), ``Ticker``, ``OHLC`` (only the most recent 720 candles, ``since`` in
  seconds, exclusive; ``last`` = the open time of the last closed candle), ``Depth``, and
  ``Trades`` (``since`` in seconds or Kraken's nanosecond cursor, at most 1,000 a page,
  ``last`` = the cursor of the page's last trade): 4 trades per candle synthesised by
  :meth:`MarketState.trades`, so a client paging history beyond 720 candles aggregates them
  back to the candles;
* private (POST ``/0/private/...``, form body with ``nonce``, headers ``API-Key`` and
  ``API-Sign`` = base64(HMAC-SHA512(base64decode(secret), path + SHA256(nonce + body)))):
  ``Balance``, ``BalanceEx``, ``TradeVolume``, ``AddOrder`` (``market``/``limit``, ``cl_ord_id``,
  ``oflags`` ``post``/``fciq``/``viqc``, ``timeinforce`` GTC/IOC, ``validate``),
  ``CancelOrder`` (txid or ``cl_ord_id``), ``CancelAll``, ``QueryOrders``, ``OpenOrders``,
  ``ClosedOrders`` and ``TradesHistory`` (newest first, 50 a page, ``ofs`` and ``count``),
  ``QueryTrades``. A wrong key answers ``EAPI:Invalid key``, a wrong signature
  ``EAPI:Invalid signature``, a nonce not above the key's last one ``EAPI:Invalid nonce``;
* WebSocket v2 at ``/v2`` (``urls.api.ws.publicV2``): ``subscribe``/``unsubscribe`` with one
  acknowledgement per symbol, ``ohlc`` (a snapshot of the latest 720 candles, then one update
  per replay step: the final values of the candles that closed, then the forming one) and
  ``ticker`` (snapshot, then an update per trade price), ``ping``/``pong``; v2 names symbols
  ``BTC/USDT``. Unserved ``/0/...`` methods answer ``EGeneral:Unknown method``.

Kraken names bitcoin ``XBT`` (pairs, ``XBTUSDT``) and ``XXBT`` (assets): balances, pairs and
order descriptions use Kraken's names, which ccxt maps back to ``BTC``/``BTC/USDT``. Errors are
``{"error": ["EOrder:Insufficient funds"]}`` with HTTP 200, like Kraken; faults render as
``EAPI:Rate limit exceeded`` (429), ``EGeneral:Temporary lockout`` (a ban),
``EGeneral:Internal error`` (500), ``EService:Unavailable`` (503) and Cloudflare's HTML pages
(502, 504). Order and trade ids look like Kraken's (``OXXXXX-XXXXX-XXXXXX``): a reversible
encoding of the paper engine's ids, so they survive a venue restart without a table.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from loguru import logger

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

PAIRS_SNAPSHOT = "kraken_asset_pairs.json"
ASSETS_SNAPSHOT = "kraken_assets.json"
OHLC_LIMIT = 720  # Kraken's OHLC endpoint serves only the most recent 720 candles
TRADES_LIMIT = 1000  # Trades: at most 1,000 a page
PAGE = 50  # ClosedOrders and TradesHistory: 50 a page, newest first
WS_OHLC_SNAPSHOT = 720  # candles in the v2 ohlc snapshot
INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)  # minutes Kraken serves
# Kraken's alternative names of a few currencies (its assets table says XBT, ccxt says BTC)
_ALT_CODES = {"XBT": "BTC", "XDG": "DOGE"}
_POSTXID = "TKH2SE-M7IF5-CFI7LT"  # the position txid Kraken prints on spot trades
_CLOUDFLARE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)

# ---- ids -----------------------------------------------------------------------------------

_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_MOD = 1 << 80  # 16 base-32 digits
_MUL = 0x9E3779B97F4A7C15F39D  # odd, so multiplying modulo 2**80 is a bijection
_INV = pow(_MUL, -1, _MOD)
_TXID = re.compile(r"^([OT])([A-Z2-7]{5})-([A-Z2-7]{5})-([A-Z2-7]{6})$")
_PAPER_ORDER = re.compile(r"^P(\d+)$")
_PAPER_TRADE = re.compile(r"^P(\d+)-(\d+)$")
_CL_ORD_ID = re.compile(
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32}|[\x21-\x7e]{1,18})$"
)


def _encode(prefix: str, n: int) -> str:
    x = (n * _MUL) % _MOD
    digits = "".join(_B32[(x >> (5 * i)) & 31] for i in range(15, -1, -1))
    return f"{prefix}{digits[:5]}-{digits[5:10]}-{digits[10:]}"


def _decode(txid: str) -> tuple[str, int] | None:
    match = _TXID.match(txid)
    if match is None:
        return None
    x = 0
    for ch in "".join(match.groups()[1:]):
        x = x * 32 + _B32.index(ch)
    return match.group(1), (x * _INV) % _MOD


def order_txid(paper_id: str) -> str:
    """Kraken's order id (``OXXXXX-XXXXX-XXXXXX``) for a paper engine order id."""
    match = _PAPER_ORDER.match(paper_id)
    return _encode("O", int(match.group(1))) if match else paper_id


def paper_order_id(txid: str) -> str | None:
    """Inverse of :func:`order_txid` (None: not a well-formed order txid)."""
    decoded = _decode(txid)
    if decoded is not None and decoded[0] == "O":
        return f"P{decoded[1]}"
    return txid if _PAPER_ORDER.match(txid) else None


def trade_txid(paper_id: str) -> str:
    """Kraken's trade id (``TXXXXX-XXXXX-XXXXXX``) for a paper engine trade id."""
    match = _PAPER_TRADE.match(paper_id)
    if match is None:
        return paper_id
    return _encode("T", (int(match.group(1)) << 20) | int(match.group(2)))


def paper_trade_id(txid: str) -> str | None:
    """Inverse of :func:`trade_txid` (None: not a well-formed trade txid)."""
    decoded = _decode(txid)
    if decoded is None or decoded[0] != "T":
        return None
    return f"P{decoded[1] >> 20}-{decoded[1] & 0xFFFFF}"


def _trade_number(paper_id: str) -> int:
    """Kraken's integer ``trade_id`` of one of our executions."""
    match = _PAPER_TRADE.match(paper_id)
    return int(match.group(1)) * 1000 + int(match.group(2)) if match else 0


# ---- numbers and times ---------------------------------------------------------------------


def _dec(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


_Q8 = Decimal("1e-8")


def _num(value: Any) -> str:
    """A number as plain text, exactly (no exponent, no float noise)."""
    if value is None:
        return "0"
    d = _dec(value)
    if d == 0:
        return "0"
    return format(d.normalize(), "f")


def _fixed(value: Any, places: int) -> str:
    """``places`` decimals when that is exact (Kraken's style), else every digit."""
    d = _dec(value if value is not None else 0)
    try:
        q = d.quantize(Decimal(1).scaleb(-places))
    except InvalidOperation:  # more digits than Decimal's precision holds
        return _num(d)
    return format(q, "f") if q == d else _num(d)


def _lots(value: Any) -> str:
    """A volume with Kraken's 8 decimals (a forming candle's share carries float noise)."""
    return format(_dec(value).quantize(_Q8), "f")


def _seconds(ms: int) -> float:
    """Kraken's float seconds for a ms timestamp, a 50 µs margin above it so that ccxt's
    ``int(float(x) * 1000)`` gives ``ms`` back (a bare ``ms / 1000`` can land an ulp below)."""
    return float(f"{ms // 1000}.{ms % 1000:03d}05")


def _cursor(ms: int) -> int:
    """The nanosecond time of a trade at ``ms`` (consistent with :func:`_seconds`)."""
    return ms * 1_000_000 + 50_000


def _rfc3339(ms: int, nanos: bool = False) -> str:
    stamp = datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ms % 1000:03d}{'000000' if nanos else '000'}Z"


def _wall_rfc3339() -> str:
    return _rfc3339(time.time_ns() // 1_000_000)


def _flag(params: dict[str, Any], key: str) -> bool:
    value = params.get(key)
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1", "yes") if value is not None else False


class KrakenError(Exception):
    """A Kraken error answer: ``{"error": [...]}`` (HTTP 200 unless ``status`` says)."""

    def __init__(self, *errors: str, status: int = 200) -> None:
        super().__init__(", ".join(errors))
        self.errors, self.status = list(errors), status

    def response(self) -> web.Response:
        """The aiohttp response answering it."""
        return web.json_response({"error": self.errors}, status=self.status)


# ---- snapshots -----------------------------------------------------------------------------


def _snapshot(name: str) -> dict[str, Any]:
    text = resources.files("kmg_autotrader.venue.snapshots").joinpath(name).read_text()
    return dict(json.loads(text)["result"])


def load_asset_pairs() -> dict[str, dict[str, Any]]:
    """The packaged AssetPairs entries, by pair id (see snapshots/PROVENANCE.md)."""
    return _snapshot(PAIRS_SNAPSHOT)


def load_assets() -> dict[str, dict[str, Any]]:
    """The packaged Assets entries, by asset id (see snapshots/PROVENANCE.md)."""
    return _snapshot(ASSETS_SNAPSHOT)


def _tier0(entry: dict[str, Any], key: str) -> Decimal:
    return Decimal(str(entry[key][0][1])) / 100


def market_info(symbol: str, base: str, quote: str, entry: dict[str, Any]) -> MarketInfo:
    """The venue's market rules from one AssetPairs entry (fees: its first tier)."""
    return MarketInfo(
        symbol=symbol,
        base=base,
        quote=quote,
        amount_step=Decimal(1).scaleb(-int(entry["lot_decimals"])),
        price_step=Decimal(
            str(entry.get("tick_size") or Decimal(1).scaleb(-int(entry["pair_decimals"])))
        ),
        min_amount=Decimal(str(entry.get("ordermin", "0"))),
        min_cost=Decimal(str(entry.get("costmin", "0"))),
        maker_fee=_tier0(entry, "fees_maker"),
        taker_fee=_tier0(entry, "fees"),
    )


# ---- the dialect ---------------------------------------------------------------------------


class KrakenDialect(Dialect):
    """Kraken spot on the venue (fees 0.25 % maker / 0.40 % taker: the snapshot's first tier,
    the same as :data:`kmg_autotrader.execution.fees.DEFAULT_FEES`)."""

    name = "kraken"
    fees = FeeSchedule(maker=Decimal("0.0025"), taker=Decimal("0.004"))
    default_quote = "USDT"

    def __init__(self, venue: Any) -> None:
        super().__init__(venue)
        self.assets = load_assets()
        self.code_to_asset: dict[str, str] = {}  # unified code → Kraken asset id
        for asset_id, entry in self.assets.items():
            alt = str(entry.get("altname", asset_id))
            self.code_to_asset.setdefault(_ALT_CODES.get(alt, alt), asset_id)
        self.entries: dict[str, dict[str, Any]] = {}  # pair id → AssetPairs entry
        self.ids: dict[str, str] = {}  # unified symbol → pair id
        self.symbols: dict[str, str] = {}  # pair id, altname or wsname → unified symbol
        self.nonces: dict[str, int] = {}  # API key → last nonce accepted
        self._closed: dict[str, list[Candle]] = {}  # ohlc topic → closed candles not sent yet

    def code(self, asset_id: str) -> str:
        """Unified currency code of a Kraken asset id (``XXBT`` → ``BTC``)."""
        entry = self.assets.get(asset_id)
        alt = str(entry["altname"]) if entry else asset_id
        return _ALT_CODES.get(alt, alt)

    def asset(self, code: str) -> str:
        """Kraken's asset id of a unified code (``BTC`` → ``XXBT``)."""
        return self.code_to_asset.get(code, code)

    # ---- setup ------------------------------------------------------------------------------

    def market_rules(self, symbols: Sequence[str]) -> dict[str, MarketInfo]:
        """Rules of the data's symbols from the packaged AssetPairs (others refused)."""
        by_symbol: dict[str, tuple[str, dict[str, Any]]] = {}
        for pair_id, entry in load_asset_pairs().items():
            unified = f"{self.code(entry['base'])}/{self.code(entry['quote'])}"
            by_symbol.setdefault(unified, (pair_id, entry))
        missing = [s for s in symbols if s not in by_symbol]
        if missing:
            raise VenueError(
                f"no Kraken market rules for {', '.join(missing)} in the packaged snapshot "
                f"(it has {', '.join(sorted(by_symbol))})"
            )
        rules: dict[str, MarketInfo] = {}
        for symbol in symbols:
            pair_id, entry = by_symbol[symbol]
            self.entries[pair_id] = entry
            self.ids[symbol] = pair_id
            for name in (pair_id, entry.get("altname"), entry.get("wsname")):
                if name:
                    self.symbols[str(name)] = symbol
            base, quote = symbol.split("/")
            rules[symbol] = market_info(symbol, base, quote, entry)
        return rules

    def wire_order_id(self, paper_id: str) -> str:
        """Kraken's order txid."""
        return order_txid(paper_id)

    def wire_trade_id(self, paper_id: str) -> str:
        """Kraken's trade txid."""
        return trade_txid(paper_id)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Kraken's REST paths and the WebSocket v2 endpoint."""
        public = {
            "Time": self.server_time,
            "SystemStatus": self.system_status,
            "Assets": self.assets_info,
            "AssetPairs": self.asset_pairs,
            "Ticker": self.ticker,
            "OHLC": self.ohlc,
            "Depth": self.depth,
            "Trades": self.trades,
        }
        for name, handler in public.items():
            router.add_get(f"/0/public/{name}", handler)
            router.add_post(f"/0/public/{name}", handler)
        private = {
            "Balance": ("balance", self.balance),
            "BalanceEx": ("balance", self.balance_ex),
            "TradeVolume": ("balance", self.trade_volume),
            "AddOrder": ("create_order", self.add_order),
            "CancelOrder": ("cancel_order", self.cancel_order),
            "CancelAll": ("cancel_order", self.cancel_all),
            "QueryOrders": ("fetch_order", self.query_orders),
            "OpenOrders": ("open_orders", self.open_orders),
            "ClosedOrders": ("open_orders", self.closed_orders),
            "TradesHistory": ("my_trades", self.trades_history),
            "QueryTrades": ("my_trades", self.query_trades),
        }
        for name, (endpoint, work) in private.items():
            router.add_post(f"/0/private/{name}", self._private(endpoint, work))
        router.add_get("/v2", self.ws)
        router.add_route("*", "/0/{api:public|private}/{method}", self.unknown_method)

    async def unknown_method(self, request: web.Request) -> web.Response:
        """Any other ``/0/public|private/<method>``: Kraken's own refusal, not a 404 page."""
        return KrakenError("EGeneral:Unknown method").response()

    # ---- errors -----------------------------------------------------------------------------

    def error_response(self, fault: Fault, retry_after: int | None = None) -> web.HTTPException:
        """Rate limit, ban and server errors as Kraken (and its Cloudflare front) answer them."""
        wait = str(retry_after if retry_after is not None else fault.retry_after)
        if fault.kind == "rate_limit":
            return http_error(429, {"error": ["EAPI:Rate limit exceeded"]}, {"Retry-After": wait})
        if fault.kind == "ban":
            # Kraken has no 418: a client that keeps hammering is locked out for a while
            return http_error(200, {"error": ["EGeneral:Temporary lockout"]}, {"Retry-After": wait})
        if fault.status == 500:
            return http_error(500, {"error": ["EGeneral:Internal error"]})
        if fault.status == 503:
            return http_error(503, {"error": ["EService:Unavailable"]})
        reason = {502: "Bad Gateway", 504: "Gateway Time-out"}.get(fault.status, "Error")
        exc = web.HTTPException(
            text=_CLOUDFLARE.format(status=fault.status, reason=reason), content_type="text/html"
        )
        exc.set_status(fault.status)
        return exc

    # ---- request helpers --------------------------------------------------------------------

    def _now(self) -> int:
        return int(self.venue.clock.now_ms())

    async def _public_params(self, request: web.Request) -> dict[str, str]:
        params = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            params.update(dict(parse_qsl(await request.text(), keep_blank_values=True)))
        return params

    def _pair(self, params: dict[str, Any], required: bool = True) -> str | None:
        """The unified symbol named by ``pair`` (id, altname or wsname)."""
        name = params.get("pair")
        if not name:
            if required:
                raise KrakenError("EGeneral:Invalid arguments:pair")
            return None
        symbol = self.symbols.get(str(name))
        if symbol is None:
            raise KrakenError("EQuery:Unknown asset pair")
        return symbol

    async def _public(
        self,
        endpoint: str,
        request: web.Request,
        work: Callable[[dict[str, str]], Any],
    ) -> web.Response:
        await self.venue.gate(endpoint)
        try:
            result = work(await self._public_params(request))
        except KrakenError as exc:
            return exc.response()
        return web.json_response({"error": [], "result": result})

    async def _signed(self, request: web.Request) -> tuple[Account, dict[str, Any]]:
        """Check API-Key, API-Sign and the nonce like Kraken; returns (account, params)."""
        key = request.headers.get("API-Key", "")
        account = self.venue.accounts.get(key) if key else None
        if account is None:
            raise KrakenError("EAPI:Invalid key")
        raw = await request.read() if request.can_read_body else b""
        body = raw.decode("utf-8", errors="replace")
        try:
            if body.startswith("{"):
                params: dict[str, Any] = dict(json.loads(body))
            else:
                params = dict(parse_qsl(body, keep_blank_values=True))
        except ValueError:
            raise KrakenError("EGeneral:Invalid arguments") from None
        nonce_text = str(params.get("nonce", ""))
        try:
            secret = base64.b64decode(account.secret, validate=True)
        except (binascii.Error, ValueError):
            # Kraken secrets are base64 (ccxt signs with the decoded bytes): this one cannot sign
            logger.error("venue account {}…: its secret is not base64", key[:6])
            raise KrakenError("EAPI:Invalid key") from None
        digest = hashlib.sha256((nonce_text + body).encode()).digest()
        expected = base64.b64encode(
            hmac.new(secret, request.path.encode() + digest, hashlib.sha512).digest()
        ).decode()
        signature = request.headers.get("API-Sign", "")
        if not signature or not hmac.compare_digest(signature, expected):
            raise KrakenError("EAPI:Invalid signature")
        try:
            nonce = int(nonce_text)
        except ValueError:
            raise KrakenError("EAPI:Invalid nonce") from None
        if nonce <= self.nonces.get(key, 0):
            raise KrakenError("EAPI:Invalid nonce")
        self.nonces[key] = nonce
        return account, params

    def _private(
        self, endpoint: str, work: Callable[[Account, dict[str, Any], Fault | None], Awaitable[Any]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            fault = await self.venue.gate(endpoint)
            try:
                account, params = await self._signed(request)
                result = await work(account, params, fault)
            except KrakenError as exc:
                if endpoint == "create_order":
                    self.venue.faults.order_creation_failed()
                return exc.response()
            if fault is not None and fault.kind == "timeout_after_accept":
                await self.venue.late_answer(fault)
            return web.json_response({"error": [], "result": result})

        handler.__name__ = f"kraken_{work.__name__}"
        return handler

    # ---- public REST ------------------------------------------------------------------------

    async def server_time(self, request: web.Request) -> web.Response:
        """GET /0/public/Time: venue time."""

        def work(params: dict[str, str]) -> Any:
            now = self._now()
            stamp = datetime.fromtimestamp(now / 1000, tz=UTC)
            return {
                "unixtime": now // 1000,
                "rfc1123": stamp.strftime("%a, %d %b %y %H:%M:%S +0000"),
            }

        return await self._public("markets", request, work)

    async def system_status(self, request: web.Request) -> web.Response:
        """GET /0/public/SystemStatus."""

        def work(params: dict[str, str]) -> Any:
            return {"status": "online", "timestamp": _rfc3339(self._now())[:19] + "Z"}

        return await self._public("markets", request, work)

    async def assets_info(self, request: web.Request) -> web.Response:
        """GET /0/public/Assets (the packaged snapshot; ``asset=`` filters)."""

        def work(params: dict[str, str]) -> Any:
            wanted = params.get("asset")
            if not wanted:
                return self.assets
            out: dict[str, Any] = {}
            for name in wanted.split(","):
                asset_id = name if name in self.assets else self.asset(self.code(name))
                if asset_id not in self.assets:
                    raise KrakenError("EQuery:Unknown asset")
                out[asset_id] = self.assets[asset_id]
            return out

        return await self._public("markets", request, work)

    async def asset_pairs(self, request: web.Request) -> web.Response:
        """GET /0/public/AssetPairs: the replayed pairs' packaged entries (``pair=`` filters)."""

        def work(params: dict[str, str]) -> Any:
            wanted = params.get("pair")
            if not wanted:
                return dict(self.entries)
            out: dict[str, Any] = {}
            for name in wanted.split(","):
                symbol = self.symbols.get(name)
                if symbol is None:
                    raise KrakenError("EQuery:Unknown asset pair")
                pair_id = self.ids[symbol]
                out[pair_id] = self.entries[pair_id]
            return out

        return await self._public("markets", request, work)

    def _day_stats(self, symbol: str, now: int) -> dict[str, Any]:
        """Today's (since UTC midnight) and the last 24 h's volume, VWAP, trades, low, high,
        and today's open, from the base candles seen at ``now``."""
        market = self.venue.market
        base_tf = f"{market.step_ms // 60_000}m"
        rows = market.visible(symbol, base_tf, now, since=now - 86_400_000 + 1)
        midnight = now // 86_400_000 * 86_400_000

        def stats(part: list[Candle]) -> tuple[Decimal, Decimal, int, Decimal, Decimal]:
            if not part:
                last = market.last_price(symbol, now) or Decimal(0)
                return Decimal(0), last, 0, last, last
            volume = sum((_dec(r.volume) for r in part), Decimal(0))
            turnover = sum(
                (_dec(r.volume) * (_dec(r.high) + _dec(r.low) + _dec(r.close)) / 3 for r in part),
                Decimal(0),
            )
            vwap = (turnover / volume) if volume else _dec(part[-1].close)
            low = min(_dec(r.low) for r in part)
            high = max(_dec(r.high) for r in part)
            return volume, vwap, 4 * len(part), low, high

        today = [r for r in rows if r.ts >= midnight]
        return {
            "today": stats(today),
            "day": stats(rows),
            "open": _dec(today[0].open) if today else market.last_price(symbol, now),
            "first": _dec(rows[0].open) if rows else None,
        }

    async def ticker(self, request: web.Request) -> web.Response:
        """GET /0/public/Ticker?pair=a,b (all replayed pairs without ``pair``)."""

        def work(params: dict[str, str]) -> Any:
            names = params["pair"].split(",") if params.get("pair") else list(self.entries)
            out: dict[str, Any] = {}
            for name in names:
                symbol = self._pair({"pair": name})
                assert symbol is not None
                out[self.ids[symbol]] = self._ticker_json(symbol)
            return out

        return await self._public("ticker", request, work)

    def _ticker_json(self, symbol: str) -> dict[str, Any]:
        now = self._now()
        market = self.venue.market
        book = market.order_book(symbol, now, depth=1)
        last = market.last_price(symbol, now) or Decimal(0)
        s = self._day_stats(symbol, now)
        (tv, tp, tt, tl, th), (dv, dp, dt, dl, dh) = s["today"], s["day"]
        ask = book["asks"][0] if book["asks"] else [last, Decimal(0)]
        bid = book["bids"][0] if book["bids"] else [last, Decimal(0)]
        forming = market.forming(symbol, now)
        last_qty = _dec(forming.volume) / 4 if forming is not None else Decimal(0)
        return {
            "a": [_fixed(ask[0], 5), "1", _fixed(ask[1], 3)],
            "b": [_fixed(bid[0], 5), "1", _fixed(bid[1], 3)],
            "c": [_fixed(last, 5), _lots(last_qty)],
            "v": [_lots(tv), _lots(dv)],
            "p": [_fixed(tp.quantize(Decimal("1e-5")), 5), _fixed(dp.quantize(Decimal("1e-5")), 5)],
            "t": [tt, dt],
            "l": [_fixed(tl, 5), _fixed(dl, 5)],
            "h": [_fixed(th, 5), _fixed(dh, 5)],
            "o": _fixed(s["open"] or last, 5),
        }

    def _interval(self, params: dict[str, str]) -> tuple[int, str]:
        try:
            minutes = int(params.get("interval", "1"))
        except ValueError:
            raise KrakenError("EGeneral:Invalid arguments:interval") from None
        if minutes not in INTERVALS:
            raise KrakenError("EGeneral:Invalid arguments:interval")
        timeframe = f"{minutes}m"
        try:
            self.venue.market.check_timeframe(timeframe)
        except UnsupportedTimeframe as exc:
            raise KrakenError(f"EGeneral:Invalid arguments:interval ({exc})") from None
        return minutes, timeframe

    async def ohlc(self, request: web.Request) -> web.Response:
        """GET /0/public/OHLC?pair=&interval=&since=: the most recent 720 candles (the forming
        one last), those after ``since`` (seconds); ``last`` = the last closed candle's time."""

        def work(params: dict[str, str]) -> Any:
            symbol = self._pair(params)
            assert symbol is not None
            minutes, timeframe = self._interval(params)
            now = self._now()
            rows = self.venue.market.visible(symbol, timeframe, now, limit=OHLC_LIMIT)
            tf_ms = minutes * 60_000
            closed = [r for r in rows if r.ts + tf_ms <= now]
            last = closed[-1].ts // 1000 if closed else (rows[0].ts // 1000 if rows else 0)
            if params.get("since"):
                try:
                    since = int(Decimal(params["since"]))
                except InvalidOperation:
                    raise KrakenError("EGeneral:Invalid arguments:since") from None
                rows = [r for r in rows if r.ts // 1000 > since]
            decimals = int(self.entries[self.ids[symbol]]["pair_decimals"])
            return {self.ids[symbol]: [self._ohlc_row(r, decimals) for r in rows], "last": last}

        return await self._public("ohlcv", request, work)

    @staticmethod
    def _ohlc_row(row: Candle, decimals: int) -> list[Any]:
        vwap = (_dec(row.high) + _dec(row.low) + _dec(row.close)) / 3
        return [
            row.ts // 1000,
            _fixed(row.open, decimals),
            _fixed(row.high, decimals),
            _fixed(row.low, decimals),
            _fixed(row.close, decimals),
            _fixed(vwap.quantize(Decimal(1).scaleb(-decimals)), decimals),
            _lots(row.volume),
            4 if row.volume > 0 else 0,
        ]

    async def depth(self, request: web.Request) -> web.Response:
        """GET /0/public/Depth?pair=&count= (default 100 levels a side, at most 500)."""

        def work(params: dict[str, str]) -> Any:
            symbol = self._pair(params)
            assert symbol is not None
            try:
                count = int(params.get("count", "100"))
            except ValueError:
                raise KrakenError("EGeneral:Invalid arguments:count") from None
            count = max(1, min(count, 500))
            now = self._now()
            book = self.venue.market.order_book(symbol, now, depth=count)
            stamp = now // 1000
            decimals = int(self.entries[self.ids[symbol]]["pair_decimals"])
            side = {
                k: [[_fixed(p, decimals), _fixed(q, 8), stamp] for p, q in book[k][:count]]
                for k in ("asks", "bids")
            }
            return {self.ids[symbol]: side}

        return await self._public("order_book", request, work)

    async def trades(self, request: web.Request) -> web.Response:
        """GET /0/public/Trades?pair=&since=&count=: trades at or after ``since`` (seconds, or
        Kraken's nanosecond cursor), oldest first, at most 1,000; ``last`` is the cursor of the
        page's last trade."""

        def work(params: dict[str, str]) -> Any:
            symbol = self._pair(params)
            assert symbol is not None
            now = self._now()
            raw = params.get("since") or "0"
            try:
                since_value = int(Decimal(raw))
                count = int(params.get("count", str(TRADES_LIMIT)))
            except (InvalidOperation, ValueError):
                raise KrakenError("EGeneral:Invalid arguments") from None
            # Kraken's cursor is in nanoseconds; a plain ``since`` in seconds
            since_ns = since_value if since_value >= 10**14 else since_value * 1_000_000_000
            count = max(1, min(count, TRADES_LIMIT))
            start_ms = since_ns // 1_000_000
            page: list[list[Any]] = []
            last = str(since_ns)
            # 4 trades a candle: a page never needs more candles than this
            until = min(now, start_ms + (count // 4 + 2) * self.venue.market.step_ms)
            for trade in self.venue.market.trades(symbol, start_ms, until):
                if _cursor(trade.ts) < since_ns:
                    continue
                page.append(
                    [
                        _num(trade.price),
                        _fixed(trade.amount, 8),
                        _seconds(trade.ts),
                        "b" if trade.side == "buy" else "s",
                        "m",
                        "",
                        trade.id,
                    ]
                )
                last = str(_cursor(trade.ts))
                if len(page) >= count:
                    break
            return {self.ids[symbol]: page, "last": last}

        return await self._public("ohlcv", request, work)

    # ---- private: balances ------------------------------------------------------------------

    async def balance(
        self, account: Account, params: dict[str, Any], fault: Fault | None = None
    ) -> Any:
        """POST /0/private/Balance: totals by Kraken asset id."""
        totals = account.engine.balance()["total"]
        return {self.asset(c): _num(v) for c, v in totals.items()}

    async def balance_ex(
        self, account: Account, params: dict[str, Any], fault: Fault | None = None
    ) -> Any:
        """POST /0/private/BalanceEx: ``balance`` (total) and ``hold_trade`` (in orders)."""
        b = account.engine.balance()
        return {
            self.asset(c): {"balance": _num(b["total"][c]), "hold_trade": _num(b["used"][c])}
            for c in b["total"]
        }

    async def trade_volume(
        self, account: Account, params: dict[str, Any], fault: Fault | None = None
    ) -> Any:
        """POST /0/private/TradeVolume: the first fee tier of the asked pairs."""
        out: dict[str, Any] = {"currency": "ZUSD", "volume": "0.0000"}
        pairs = str(params.get("pair") or "")
        if pairs:
            fees: dict[str, Any] = {}
            makers: dict[str, Any] = {}
            for name in pairs.split(","):
                symbol = self._pair({"pair": name})
                assert symbol is not None
                pair_id = self.ids[symbol]
                entry = self.entries[pair_id]
                fees[pair_id] = self._fee_tier(entry["fees"])
                makers[pair_id] = self._fee_tier(entry["fees_maker"])
            out["fees"], out["fees_maker"] = fees, makers
        return out

    @staticmethod
    def _fee_tier(tiers: list[list[Any]]) -> dict[str, str]:
        first, second = tiers[0], tiers[1] if len(tiers) > 1 else tiers[0]
        return {
            "fee": f"{Decimal(str(first[1])):.4f}",
            "minfee": f"{Decimal(str(tiers[-1][1])):.4f}",
            "maxfee": f"{Decimal(str(first[1])):.4f}",
            "nextfee": f"{Decimal(str(second[1])):.4f}",
            "tiervolume": "0.0000",
            "nextvolume": f"{Decimal(str(second[0])):.4f}",
        }

    # ---- private: orders --------------------------------------------------------------------

    def _client_id(self, order: dict[str, Any]) -> str | None:
        """The order's ``cl_ord_id`` (None when it was placed without one)."""
        coid = order.get("clientOrderId")
        if not coid or coid == f"paper-{str(order['id']).lstrip('P')}":
            return None
        return str(coid)

    def _order_json(self, order: dict[str, Any], with_trades: bool = False) -> dict[str, Any]:
        symbol = order["symbol"]
        pair_id = self.ids[symbol]
        entry = self.entries[pair_id]
        altname = str(entry.get("altname", pair_id))
        decimals = int(entry["pair_decimals"])
        lot = int(entry["lot_decimals"])
        kind, side = str(order["type"]), str(order["side"])
        price = order.get("price")
        volume = _fixed(order["amount"], lot)
        if kind == "limit" and price is not None:
            descr_price = _fixed(price, decimals)
            text = f"{side} {volume} {altname} @ limit {descr_price}"
        else:
            descr_price = "0"
            text = f"{side} {volume} {altname} @ market"
        status = str(order["status"])
        flags = ["fciq"] + (["post"] if order.get("postOnly") else [])
        average = order.get("average")
        out: dict[str, Any] = {
            "refid": None,
            "userref": None,
            "status": status,
            "reason": None,
            "opentm": _seconds(int(order["timestamp"])),
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": altname,
                "type": side,
                "ordertype": kind,
                "price": descr_price,
                "price2": "0",
                "leverage": "none",
                "order": text,
                "close": "",
            },
            "vol": volume,
            "vol_exec": _fixed(order["filled"], lot),
            "cost": _num(order["cost"]),
            "fee": _num((order.get("fee") or {}).get("cost")),
            "price": _num(average) if average else "0.00000",
            "stopprice": "0.00000",
            "limitprice": "0.00000",
            "misc": "",
            "oflags": ",".join(flags),
        }
        coid = self._client_id(order)
        if coid is not None:
            out["cl_ord_id"] = coid
        if status != "open":
            out["closetm"] = _seconds(int(order.get("lastUpdateTimestamp") or order["timestamp"]))
            reason = (order.get("info") or {}).get("reason")
            out["reason"] = reason or ("User requested" if status == "canceled" else None)
        if with_trades and order.get("trades"):
            out["trades"] = [trade_txid(str(t["id"])) for t in order["trades"]]
        return out

    def _volume(self, params: dict[str, Any]) -> Decimal:
        try:
            volume = Decimal(str(params["volume"]))
        except KeyError:
            raise KrakenError("EGeneral:Invalid arguments:volume") from None
        except InvalidOperation:
            raise KrakenError("EGeneral:Invalid arguments:volume") from None
        if not volume.is_finite() or volume <= 0:
            raise KrakenError("EGeneral:Invalid arguments:volume")
        return volume

    def _price(self, params: dict[str, Any], symbol: str) -> Decimal:
        entry = self.entries[self.ids[symbol]]
        try:
            price = Decimal(str(params["price"]))
        except (KeyError, InvalidOperation):
            raise KrakenError("EGeneral:Invalid arguments:price") from None
        if not price.is_finite() or price <= 0:
            raise KrakenError("EGeneral:Invalid arguments:price")
        step = self.venue.rules[symbol].price_step
        if price % step:
            decimals = int(entry["pair_decimals"])
            raise KrakenError(
                f"EOrder:Invalid price:{entry.get('altname', self.ids[symbol])} price can only "
                f"be specified up to {decimals} decimals."
            )
        return price

    async def add_order(
        self, account: Account, params: dict[str, Any], fault: Fault | None = None
    ) -> Any:
        """POST /0/private/AddOrder (``fault``: a ``partial_fill`` drawn for this request)."""
        symbol = self._pair(params)
        assert symbol is not None
        rules = self.venue.rules[symbol]
        side = str(params.get("type", ""))
        kind = str(params.get("ordertype", ""))
        if side not in ("buy", "sell"):
            raise KrakenError("EGeneral:Invalid arguments:type")
        if kind not in ("market", "limit"):
            # stop-loss, take-profit, trailing-stop, iceberg…: the venue matches only these two
            raise KrakenError(f"EGeneral:Invalid arguments:ordertype ({kind} is not served)")
        flags = {f.strip() for f in str(params.get("oflags") or "").split(",") if f.strip()}
        unknown = flags - {"post", "fciq", "nompp", "viqc"}
        if unknown:
            raise KrakenError(f"EGeneral:Invalid arguments:oflags ({','.join(sorted(unknown))})")
        tif = str(params.get("timeinforce") or "GTC").upper()
        if tif not in ("GTC", "IOC"):
            raise KrakenError("EGeneral:Invalid arguments:timeinforce")
        coid = params.get("cl_ord_id")
        if coid is not None and (not _CL_ORD_ID.match(str(coid))):
            raise KrakenError("EGeneral:Invalid arguments:cl_ord_id")
        now = self._now()
        book = self.venue.market.order_book(symbol, now)
        volume = self._volume(params)
        if "viqc" in flags:
            if kind != "market" or side != "buy":
                raise KrakenError("EGeneral:Invalid arguments:viqc")
            asks = book["asks"]
            if not asks:
                raise KrakenError("EOrder:Insufficient liquidity")
            volume = (volume / _dec(asks[0][0])).quantize(rules.amount_step, ROUND_DOWN)
        elif volume != volume.quantize(rules.amount_step, ROUND_DOWN):
            raise KrakenError("EGeneral:Invalid arguments:volume")
        price = self._price(params, symbol) if kind == "limit" else None
        if volume < rules.min_amount:
            raise KrakenError("EOrder:Order minimum not met")
        reference = (
            price
            if price is not None
            else (
                _dec(book["asks"][0][0])
                if side == "buy" and book["asks"]
                else _dec(book["bids"][0][0])
                if book["bids"]
                else None
            )
        )
        if reference is not None and rules.min_cost and volume * reference < rules.min_cost:
            raise KrakenError("EOrder:Cost minimum not met")
        descr = self._order_json(
            {
                "id": "P0",
                "symbol": symbol,
                "type": kind,
                "side": side,
                "price": price,
                "amount": volume,
                "filled": 0,
                "cost": 0,
                "status": "open",
                "timestamp": now,
            }
        )["descr"]["order"]
        if _flag(params, "validate"):
            return {"descr": {"order": descr}}
        if coid is not None and any(
            o.get("clientOrderId") == coid for o in account.engine.open_orders()
        ):
            raise KrakenError("EOrder:Duplicate order")
        partial = Decimal(str(fault.fraction)) if fault and fault.kind == "partial_fill" else None
        try:
            order = self.venue.accounts.place(
                account,
                symbol,
                kind,
                side,
                volume,
                price,
                client_order_id=str(coid) if coid is not None else None,
                post_only="post" in flags and kind == "limit",
                book=book,
                partial=partial,
            )
        except InsufficientFundsError:
            raise KrakenError("EOrder:Insufficient funds") from None
        except InvalidOrderError as exc:
            text = str(exc)
            if "duplicate" in text:
                raise KrakenError("EOrder:Duplicate order") from None
            if "post-only" in text:
                raise KrakenError("EOrder:Post only order") from None
            if "value" in text:
                raise KrakenError("EOrder:Cost minimum not met") from None
            if "minimum" in text or "positive" in text:
                raise KrakenError("EOrder:Order minimum not met") from None
            raise KrakenError(f"EOrder:Invalid order ({text})") from None
        except ExchangeAdapterError as exc:
            raise KrakenError(f"EOrder:Invalid order ({exc})") from None
        if tif == "IOC" and order["status"] == "open":
            order = self.venue.accounts.cancel(account, order["id"], expire=True)
        self.venue.faults.order_created(account.api_key, order["id"])
        return {"descr": {"order": descr}, "txid": [order_txid(str(order["id"]))]}

    def _find_by_txid(self, account: Account, txid: str) -> dict[str, Any] | None:
        paper_id = paper_order_id(txid)
        if paper_id is None:
            return None
        try:
            return account.engine.fetch_order(paper_id)
        except OrderNotFoundError:
            return None

    def _find_by_client_id(self, account: Account, coid: str) -> dict[str, Any] | None:
        try:
            order = account.engine.fetch_order_by_client_id(coid)
        except OrderNotFoundError:
            return None
        return order if self._client_id(order) == coid else None

    async def cancel_order(
        self, account: Account, params: dict[str, Any], fault: Fault | None = None
    ) -> Any:
        """POST /0/private/CancelOrder (``txid`` or ``cl_ord_id``); an unknown or finished
        order answers ``EOrder:Unknown order``."""
        if params.get("cl_ord_id"):
            order = self._find_by_client_id(account, str(params["cl_ord_id"]))
        elif params.get("txid"):
            txid = str(params["txid"])
            if paper_order_id(txid) is None and not txid.lstrip("-").isdigit():
                raise KrakenError("EOrder:Invalid order")
            order = self._find_by_txid(account, txid)
        else:
            raise KrakenError("EGeneral:Invalid arguments:txid")
        if order is None or order["status"] != "open":
            raise KrakenError("EOrder:Unknown order")
        try:
            self.venue.accounts.cancel(account, order["id"])
        except OrderNotFoundError:
            raise KrakenError("EOrder:Unknown order") from None
        return {"count": 1, "pending": False}

    async def cancel_all(
        self, account: Account, params: dict[str, Any], fault: Fault | None = None
    ) -> Any:
        """POST /0/private/CancelAll."""
        count = 0
        for order in account.engine.open_orders():
            self.venue.accounts.cancel(account, order["id"])
            count += 1
        return {"count": count}

    def _visible(self, account: Account, order: dict[str, Any]) -> bool:
        """False while a ``not_found`` fault hides ``order`` (each answer counts a look-up)."""
        return not self.venue.faults.hidden(account.api_key, str(order["id"]))

    async def query_orders(
        self, account: Account, params: dict[str, Any], fault: Fault | None = None
    ) -> Any:
        """POST /0/private/QueryOrders?txid=a,b&trades=: a malformed txid answers
        ``EOrder:Invalid order``; an unknown one is left out (ccxt: OrderNotFound)."""
        txids = [t for t in str(params.get("txid") or "").split(",") if t]
        if not txids:
            raise KrakenError("EGeneral:Invalid arguments:txid")
        if len(txids) > 50:
            raise KrakenError("EGeneral:Invalid arguments:txid")
        with_trades = _flag(params, "trades")
        out: dict[str, Any] = {}
        for txid in txids:
            if paper_order_id(txid) is None:
                raise KrakenError("EOrder:Invalid order")
            order = self._find_by_txid(account, txid)
            if order is None or not self._visible(account, order):
                continue
            out[txid] = self._order_json(order, with_trades)
        return out

    def _orders(
        self, account: Account, params: dict[str, Any], open_: bool
    ) -> list[dict[str, Any]]:
        engine = account.engine
        coid = params.get("cl_ord_id")
        rows: list[dict[str, Any]] = []
        for order in list(engine.orders.values()):
            if (order.status == "open") != open_:
                continue
            view = engine.fetch_order(order.id)
            if coid is not None and self._client_id(view) != str(coid):
                continue
            rows.append(view)
        return [o for o in rows if self._visible(account, o)]

    async def open_orders(
        self, account: Account, params: dict[str, Any], fault: Fault | None = None
    ) -> Any:
        """POST /0/private/OpenOrders (``cl_ord_id`` filters, ``trades`` adds trade ids)."""
        with_trades = _flag(params, "trades")
        rows = self._orders(account, params, open_=True)
        return {"open": {order_txid(o["id"]): self._order_json(o, with_trades) for o in rows}}

    @staticmethod
    def _bound(params: dict[str, Any], key: str) -> Decimal | None:
        value = params.get(key)
        if value in (None, ""):
            return None
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise KrakenError(f"EGeneral:Invalid arguments:{key}") from None

    @staticmethod
    def _offset(params: dict[str, Any]) -> int:
        try:
            return max(0, int(params.get("ofs") or 0))
        except ValueError:
            raise KrakenError("EGeneral:Invalid arguments:ofs") from None

    async def closed_orders(
        self, account: Account, params: dict[str, Any], fault: Fault | None = None
    ) -> Any:
        """POST /0/private/ClosedOrders: newest first, 50 a page from ``ofs``, ``count`` all;
        ``start`` (exclusive) and ``end`` (inclusive) in seconds on ``closetime``
        (open, close or both)."""
        with_trades = _flag(params, "trades")
        rows = self._orders(account, params, open_=False)
        start, end = self._bound(params, "start"), self._bound(params, "end")
        which = str(params.get("closetime") or "both")

        def times(o: dict[str, Any]) -> list[Decimal]:
            opened = Decimal(int(o["timestamp"])) / 1000
            closed = Decimal(int(o.get("lastUpdateTimestamp") or o["timestamp"])) / 1000
            return {"open": [opened], "close": [closed]}.get(which, [opened, closed])

        if start is not None:
            rows = [o for o in rows if any(t > start for t in times(o))]
        if end is not None:
            rows = [o for o in rows if any(t <= end for t in times(o))]
        rows.sort(
            key=lambda o: (int(o.get("lastUpdateTimestamp") or 0), int(str(o["id"]).lstrip("P"))),
            reverse=True,
        )
        ofs = self._offset(params)
        page = rows[ofs : ofs + PAGE]
        return {
            "closed": {order_txid(o["id"]): self._order_json(o, with_trades) for o in page},
            "count": len(rows),
        }

    def _trade_json(self, account: Account, trade: dict[str, Any]) -> dict[str, Any]:
        symbol = trade["symbol"]
        pair_id = self.ids[symbol]
        lot = int(self.entries[pair_id]["lot_decimals"])
        order = account.engine.orders.get(str(trade["order"]))
        return {
            "ordertxid": order_txid(str(trade["order"])),
            "postxid": _POSTXID,
            "pair": pair_id,
            "time": _seconds(int(trade["timestamp"])),
            "type": trade["side"],
            "ordertype": order.type if order is not None else "market",
            "price": _num(trade["price"]),
            "cost": _num(trade["cost"]),
            "fee": _num(trade["fee"]["cost"]),
            "vol": _fixed(trade["amount"], lot),
            "margin": "0.00000",
            "leverage": "0",
            "misc": "",
            "trade_id": _trade_number(str(trade["id"])),
            "maker": trade["takerOrMaker"] == "maker",
        }

    async def trades_history(
        self, account: Account, params: dict[str, Any], fault: Fault | None = None
    ) -> Any:
        """POST /0/private/TradesHistory: newest first, 50 a page from ``ofs``, ``count`` all;
        ``start`` (exclusive) and ``end`` (inclusive) in seconds."""
        rows = account.engine.my_trades()
        start, end = self._bound(params, "start"), self._bound(params, "end")
        if start is not None:
            rows = [t for t in rows if Decimal(int(t["timestamp"])) / 1000 > start]
        if end is not None:
            rows = [t for t in rows if Decimal(int(t["timestamp"])) / 1000 <= end]
        rows.sort(key=lambda t: (int(t["timestamp"]), _trade_number(str(t["id"]))), reverse=True)
        ofs = self._offset(params)
        page = rows[ofs : ofs + PAGE]
        return {
            "trades": {trade_txid(str(t["id"])): self._trade_json(account, t) for t in page},
            "count": len(rows),
        }

    async def query_trades(
        self, account: Account, params: dict[str, Any], fault: Fault | None = None
    ) -> Any:
        """POST /0/private/QueryTrades?txid=a,b (at most 20)."""
        txids = [t for t in str(params.get("txid") or "").split(",") if t]
        if len(txids) > 20:
            raise KrakenError("EGeneral:Invalid arguments:txid")
        trades = {str(t["id"]): t for t in account.engine.my_trades()}
        out: dict[str, Any] = {}
        for txid in txids:
            paper_id = paper_trade_id(txid)
            if paper_id is None:
                raise KrakenError("EGeneral:Invalid arguments:txid")
            trade = trades.get(paper_id)
            if trade is not None:
                out[txid] = self._trade_json(account, trade)
        return out

    # ---- WebSocket v2 -----------------------------------------------------------------------

    async def ws(self, request: web.Request) -> web.StreamResponse:
        """``/v2``: Kraken's WebSocket v2 (public channels ``ohlc`` and ``ticker``)."""

        async def on_open(conn: WsConnection) -> None:
            conn.state["connection_id"] = self.hub.connects
            await self.hub.send(
                conn,
                {
                    "channel": "status",
                    "type": "update",
                    "data": [
                        {
                            "api_version": "v2",
                            "connection_id": self.hub.connects,
                            "system": "online",
                            "version": "2.0.10",
                        }
                    ],
                },
            )

        return await self.hub.serve(request, self._on_ws_message, on_open)

    @staticmethod
    def _ack(
        method: str, req_id: Any, time_in: str, result: dict[str, Any] | None, error: str | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"method": method}
        if error is None:
            out["result"] = result or {}
            out["success"] = True
        else:
            out["error"] = error
            out["success"] = False
            if result and "symbol" in result:
                out["symbol"] = result["symbol"]
        out["time_in"] = time_in
        out["time_out"] = _wall_rfc3339()
        if req_id is not None:
            out["req_id"] = req_id
        return out

    async def _on_ws_message(self, conn: WsConnection, data: Any) -> None:
        time_in = _wall_rfc3339()
        if not isinstance(data, dict):
            return
        method = data.get("method")
        req_id = data.get("req_id")
        if method == "ping":
            pong: dict[str, Any] = {"method": "pong"}
            if req_id is not None:
                pong["req_id"] = req_id
            pong.update({"time_in": time_in, "time_out": _wall_rfc3339()})
            await self.hub.send(conn, pong)
            return
        if method not in ("subscribe", "unsubscribe"):
            await self.hub.send(
                conn, self._ack(str(method), req_id, time_in, None, "Method not found")
            )
            return
        raw = data.get("params")
        params: dict[str, Any] = raw if isinstance(raw, dict) else {}
        channel = params.get("channel")
        symbols = params.get("symbol")
        if channel not in ("ohlc", "ticker"):
            await self.hub.send(
                conn, self._ack(method, req_id, time_in, None, f"Channel {channel} not supported")
            )
            return
        if not isinstance(symbols, list) or not symbols:
            await self.hub.send(conn, self._ack(method, req_id, time_in, None, "Malformed request"))
            return
        interval = params.get("interval", 1)
        if channel == "ohlc":
            if interval not in INTERVALS:
                await self.hub.send(
                    conn,
                    self._ack(
                        method, req_id, time_in, None, "Subscription ohlc interval not supported"
                    ),
                )
                return
            try:
                self.venue.market.check_timeframe(f"{interval}m")
            except UnsupportedTimeframe as exc:
                await self.hub.send(conn, self._ack(method, req_id, time_in, None, str(exc)))
                return
        snapshot = params.get("snapshot", True) is not False
        for symbol in symbols:
            result: dict[str, Any] = {"channel": channel}
            if channel == "ohlc":
                result["interval"] = interval
            result.update({"snapshot": snapshot, "symbol": symbol})
            if symbol not in self.ids:
                await self.hub.send(
                    conn,
                    self._ack(
                        method, req_id, time_in, result, f"Currency pair not supported {symbol}"
                    ),
                )
                continue
            topic = f"ohlc:{symbol}:{interval}" if channel == "ohlc" else f"ticker:{symbol}"
            if method == "unsubscribe":
                conn.topics.discard(topic)
                result.pop("snapshot", None)
                await self.hub.send(conn, self._ack(method, req_id, time_in, result, None))
                continue
            if channel == "ohlc":
                result["warnings"] = []
            conn.topics.add(topic)
            await self.hub.send(conn, self._ack(method, req_id, time_in, result, None))
            if snapshot:
                await self._send_snapshot(conn, channel, symbol, int(interval))

    async def _send_snapshot(
        self, conn: WsConnection, channel: str, symbol: str, interval: int
    ) -> None:
        now = self._now()
        if channel == "ticker":
            price = self.venue.market.last_price(symbol, now)
            if price is not None:
                await self.hub.send(conn, self._ticker_message(symbol, price, "snapshot"))
            return
        rows = self.venue.market.visible(symbol, f"{interval}m", now, limit=WS_OHLC_SNAPSHOT)
        if rows:
            await self.hub.send(conn, self._ohlc_message(symbol, interval, rows, "snapshot"))

    def _ohlc_item(self, symbol: str, interval: int, row: Candle) -> dict[str, Any]:
        tf_ms = interval * 60_000
        vwap = (_dec(row.high) + _dec(row.low) + _dec(row.close)) / 3
        decimals = int(self.entries[self.ids[symbol]]["pair_decimals"])
        return {
            "symbol": symbol,
            "open": row.open,
            "high": row.high,
            "low": row.low,
            "close": row.close,
            "trades": 4 if row.volume > 0 else 0,
            "volume": float(_lots(row.volume)),
            "vwap": float(vwap.quantize(Decimal(1).scaleb(-decimals))),
            "interval_begin": _rfc3339(row.ts, nanos=True),
            "interval": interval,
            "timestamp": _rfc3339(row.ts + tf_ms),
        }

    def _ohlc_message(
        self, symbol: str, interval: int, rows: list[Candle], kind: str
    ) -> dict[str, Any]:
        return {
            "channel": "ohlc",
            "type": kind,
            "timestamp": _rfc3339(self._now(), nanos=True),
            "data": [self._ohlc_item(symbol, interval, r) for r in rows],
        }

    def _ticker_message(self, symbol: str, price: Decimal, kind: str) -> dict[str, Any]:
        now = self._now()
        step = self.venue.rules[symbol].price_step
        s = self._day_stats(symbol, now)
        volume, vwap, _, low, high = s["day"]
        first = s["first"] if s["first"] is not None else price
        change = price - first
        change_pct = (change / first * 100).quantize(Decimal("0.01")) if first else Decimal(0)
        depth = self.venue.market.order_book(symbol, now, depth=1)
        size = float(depth["bids"][0][1]) if depth["bids"] else 0.0
        return {
            "channel": "ticker",
            "type": kind,
            "data": [
                {
                    "symbol": symbol,
                    "bid": float(price),
                    "bid_qty": size,
                    "ask": float(price + step),
                    "ask_qty": size,
                    "last": float(price),
                    "volume": float(volume.quantize(Decimal("1e-8"))),
                    "vwap": float(vwap.quantize(Decimal("1e-5"))),
                    "low": float(min(low, price)),
                    "high": float(max(high, price)),
                    "change": float(change),
                    "change_pct": float(change_pct),
                    "timestamp": _rfc3339(now, nanos=False)[:-1] + "000Z",
                }
            ],
        }

    def _subscribed(self, prefix: str) -> set[str]:
        return {t for c in self.hub.connections for t in c.topics if t.startswith(prefix)}

    async def on_tick(self, symbol: str, price: Decimal, ts: int) -> None:
        """A trade price: a ticker update to its subscribers (Kraken sends one per trade)."""
        topic = f"ticker:{symbol}"
        if topic in self._subscribed(topic):
            await self.hub.broadcast(topic, self._ticker_message(symbol, price, "update"))

    async def on_candle(self, symbol: str, row: Candle, final: bool) -> None:
        """ohlc updates, one message per interval and replay step: the final values of every
        candle that closed in the step (a base candle closes a coarser one at its end), then
        the forming candle so far. One message, because a ccxt client reads a burst of messages
        only up to the first one it was waiting for: the rest would wait for the next trade."""
        topics = self._subscribed(f"ohlc:{symbol}:")
        if not topics:
            return
        market = self.venue.market
        now = self._now()
        last_of_data = final and row.ts + market.step_ms >= market.last_ms(symbol)
        for topic in sorted(topics, key=lambda t: int(t.rsplit(":", 1)[1])):
            interval = int(topic.rsplit(":", 1)[1])
            tf = f"{interval}m"
            tf_ms = interval * 60_000
            pending = self._closed.setdefault(topic, [])
            if final:
                end = row.ts + market.step_ms
                if end % tf_ms == 0:  # this base candle completes a candle of ``interval``
                    bucket = (
                        row
                        if tf_ms == market.step_ms
                        else market.bucket(symbol, tf, end - tf_ms, end)
                    )
                    if bucket is not None:
                        pending.append(bucket)
                if not last_of_data:
                    continue  # sent with the forming candle at the end of the step
                rows = pending
            else:
                forming = market.bucket(symbol, tf, now // tf_ms * tf_ms, now)
                rows = pending + ([forming] if forming is not None else [])
            self._closed.pop(topic, None)
            if rows:
                await self.hub.broadcast(
                    topic, self._ohlc_message(symbol, interval, rows, "update")
                )

    async def close(self) -> None:
        """Close the sockets; updates not sent yet are dropped with them."""
        self._closed.clear()
        await super().close()
