"""A fake exchange on 127.0.0.1 speaking Binance and Kraken public REST and Binance WebSocket.

Real ccxt classes talk to it: point ``urls['api']`` at :meth:`FakeExchange.binance_config` /
:meth:`FakeExchange.kraken_config`. Responses use the venues' real formats (Binance klines,
exchangeInfo, 24hr ticker, kline/24hrTicker stream events; Kraken OHLC, Trades, AssetPairs).

Faults are injected per path: HTTP status (429, 5xx), delays (timeouts), truncated pages and
dropped connections; WebSockets can be refused, silenced (stall) or dropped.

Extending: subclass and add routes in :meth:`FakeExchange.add_routes` (e.g. orders), calling
``self.check_fault(request)`` first so fault injection works for new endpoints too.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from aiohttp import WSMsgType, web

from tests.data import KRAKEN_ASSET_PAIRS

INTERVAL_MS = {"1s": 1000, "1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000}


@dataclass
class Fault:
    """One injected fault for requests whose path contains ``path``.

    kind: ``status`` (answer ``status`` with the venue's error body), ``delay`` (sleep
    ``delay`` s before answering: a timeout for a short client timeout), ``truncate`` (serve
    only ``keep`` rows), ``disconnect`` (close the TCP connection without answering).
    ``times`` is how many requests it hits; ``after`` skips that many matching requests first.
    """

    path: str
    kind: str
    times: int = 1
    status: int = 500
    delay: float = 0.0
    keep: int = 1
    after: int = 0


def binance_symbol_info(market_id: str, base: str, quote: str) -> dict[str, Any]:
    """A Binance /api/v3/exchangeInfo symbol entry (shape of the live API, 2024-2025)."""
    return {
        "symbol": market_id,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": [
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
        ],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01000000",
                "maxPrice": "1000000.00000000",
                "tickSize": "0.01000000",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00001000",
                "maxQty": "9000.00000000",
                "stepSize": "0.00001000",
            },
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": "107.46608203",
                "stepSize": "0.00000000",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": "5.00000000",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def random_walk_candles(
    start_ms: int, count: int, step_ms: int, seed: int = 7, price: float = 20_000.0
) -> pd.DataFrame:
    """Seeded synthetic candles (valid OHLC) for pagination tests."""
    rng = np.random.default_rng(seed)
    closes = price * np.exp(np.cumsum(rng.normal(0, 0.002, count)))
    opens = np.r_[price, closes[:-1]]
    spread = np.abs(rng.normal(0, 0.001, count)) * closes
    return pd.DataFrame(
        {
            "timestamp": start_ms + np.arange(count, dtype="int64") * step_ms,
            "open": np.round(opens, 2),
            "high": np.round(np.maximum(opens, closes) + spread, 2),
            "low": np.round(np.minimum(opens, closes) - spread, 2),
            "close": np.round(closes, 2),
            "volume": np.round(rng.uniform(1, 100, count), 5),
        }
    )


class FakeExchange:
    """aiohttp server emulating the public parts of Binance and Kraken; see module docstring."""

    def __init__(self, now_ms: int | None = None) -> None:
        self.now_ms = now_ms  # virtual clock; None = serve everything
        self.klines: dict[tuple[str, str], pd.DataFrame] = {}  # (binance id, interval) → truth
        self.kraken_ohlc: dict[tuple[str, int], pd.DataFrame] = {}  # (pair, minutes) → truth
        self.kraken_trades: dict[str, list[list[Any]]] = {}  # pair → raw Kraken trade rows
        self.binance_markets: list[dict[str, Any]] = [
            binance_symbol_info("BTCUSDT", "BTC", "USDT"),
            binance_symbol_info("ETHUSDT", "ETH", "USDT"),
        ]
        self.faults: list[Fault] = []
        self.requests: list[str] = []
        self.ws_refuse = False
        self.ws_silent = False
        self.ws_clients: list[tuple[web.WebSocketResponse, set[str]]] = []
        self.ws_connects = 0
        self.ws_refused = 0  # handshakes answered 503 while ws_refuse was set
        self.app = web.Application()
        self.add_routes(self.app.router)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FakeExchange:
        """Listen on an ephemeral port of 127.0.0.1."""
        self._runner = web.AppRunner(self.app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        """Close sockets and the server."""
        await self.drop_ws()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"

    def binance_config(self, **extra: Any) -> dict[str, Any]:
        """ccxt config pointing Binance's REST and WS URLs here (fast rate limit, short timeout)."""
        ws = f"ws://127.0.0.1:{self.port}/stream/ws"
        api = {
            "public": f"{self.base}/api/v3",
            "private": f"{self.base}/api/v3",
            "v1": f"{self.base}/api/v1",
            "ws": {"spot": ws, "margin": ws},
        }
        return {"urls": {"api": api}, "rateLimit": 1, "timeout": 2000, **extra}

    def kraken_config(self, **extra: Any) -> dict[str, Any]:
        """ccxt config pointing Kraken's REST URLs here."""
        api = {"public": self.base, "private": self.base}
        return {"urls": {"api": api}, "rateLimit": 1, "timeout": 2000, **extra}

    # ---- routes ------------------------------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register endpoints; subclasses extend this (call super first)."""
        router.add_get("/api/v3/exchangeInfo", self.binance_exchange_info)
        router.add_get("/api/v3/klines", self.binance_klines)
        router.add_get("/api/v3/ticker/24hr", self.binance_ticker)
        router.add_get("/stream/ws/{n}", self.binance_ws)
        # where EXCHANGE_API_URL=http://127.0.0.1:PORT sends ccxt's wss://…/ws/<n>
        router.add_get("/ws/{n}", self.binance_ws)
        router.add_get("/0/public/OHLC", self.kraken_ohlc_handler)
        router.add_get("/0/public/Trades", self.kraken_trades_handler)
        router.add_get("/0/public/AssetPairs", self.kraken_asset_pairs)
        router.add_get("/0/public/Assets", self.kraken_assets)

    # ---- faults ------------------------------------------------------------------------------

    def inject(self, path: str, kind: str, **kwargs: Any) -> Fault:
        """Queue a fault for requests whose path contains ``path``."""
        fault = Fault(path=path, kind=kind, **kwargs)
        self.faults.append(fault)
        return fault

    async def check_fault(self, request: web.Request) -> Fault | None:
        """Apply the first matching fault: raise an HTTP error, sleep, or hand it back."""
        self.requests.append(request.path_qs)
        chosen: Fault | None = None
        for fault in self.faults:
            if fault.path in request.path and fault.times > 0:
                if fault.after > 0:
                    fault.after -= 1  # every matching request counts towards `after`
                elif chosen is None:
                    chosen = fault
        if chosen is None:
            return None
        chosen.times -= 1
        if chosen.kind == "status":
            raise self._error(request, chosen.status)
        if chosen.kind == "delay":
            await asyncio.sleep(chosen.delay)
            return None
        if chosen.kind == "disconnect":
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError
        return chosen

    @staticmethod
    def _error(request: web.Request, status: int) -> web.HTTPException:
        if request.path.startswith("/0/"):
            body = {"error": ["EAPI:Rate limit exceeded" if status == 429 else "EService:Busy"]}
        else:
            msg = "Too many requests" if status == 429 else "Internal error; unable to process"
            body = {"code": -1003 if status == 429 else -1001, "msg": msg}
        return _status_exc(status, body)

    # ---- truth helpers -----------------------------------------------------------------------

    def set_klines(self, market_id: str, interval: str, candles: pd.DataFrame) -> None:
        """Candles Binance will serve for ``market_id``/``interval``."""
        self.klines[(market_id, interval)] = candles.reset_index(drop=True)

    def _visible(self, frame: pd.DataFrame, step: int) -> pd.DataFrame:
        if self.now_ms is None:
            return frame
        return frame[frame["timestamp"].to_numpy() <= self.now_ms]

    def _row_values(self, row: Any, step: int) -> list[float]:
        """OHLCV of a row; the candle still open at ``now_ms`` gets partial values."""
        t, o, h, lo, c, v = (row[0], row[1], row[2], row[3], row[4], row[5])
        if self.now_ms is not None and t + step > self.now_ms:
            frac = (self.now_ms - t) / step
            c = round(o + (c - o) * frac, 2)
            h, lo, v = max(o, c), min(o, c), round(v * frac, 5)
        return [int(t), float(o), float(h), float(lo), float(c), float(v)]

    # ---- Binance REST ------------------------------------------------------------------------

    async def binance_exchange_info(self, request: web.Request) -> web.Response:
        await self.check_fault(request)
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": self.now_ms or 0,
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": 6000,
                    }
                ],
                "exchangeFilters": [],
                "symbols": self.binance_markets,
            }
        )

    async def binance_klines(self, request: web.Request) -> web.Response:
        fault = await self.check_fault(request)
        q = request.query
        interval = q["interval"]
        step = INTERVAL_MS[interval]
        frame = self._visible(self.klines.get((q["symbol"], interval), _empty()), step)
        ts = frame["timestamp"].to_numpy()
        mask = np.ones(len(frame), dtype=bool)
        if "startTime" in q:
            mask &= ts >= int(q["startTime"])
        if "endTime" in q:
            mask &= ts <= int(q["endTime"])
        limit = min(int(q.get("limit", 500)), 1000)
        rows = frame[mask].head(limit).to_numpy()
        if fault is not None and fault.kind == "truncate":
            rows = rows[: fault.keep]
        out = []
        for row in rows:
            t, o, h, lo, c, v = self._row_values(row, step)
            out.append(
                [
                    t,
                    f"{o:.8f}",
                    f"{h:.8f}",
                    f"{lo:.8f}",
                    f"{c:.8f}",
                    f"{v:.8f}",
                    t + step - 1,
                    f"{v * c:.8f}",
                    10,
                    f"{v / 2:.8f}",
                    f"{v * c / 2:.8f}",
                    "0",
                ]
            )
        return web.json_response(out)

    async def binance_ticker(self, request: web.Request) -> web.Response:
        await self.check_fault(request)
        market_id = request.query["symbol"]
        return web.json_response(self.binance_ticker_payload(market_id))

    def last_price(self, market_id: str) -> float:
        """Close of the latest visible 1m/any candle of ``market_id``."""
        for (mid, interval), frame in self.klines.items():
            if mid == market_id:
                visible = self._visible(frame, INTERVAL_MS[interval])
                if len(visible):
                    row = visible.iloc[-1].to_numpy()
                    return self._row_values(row, INTERVAL_MS[interval])[4]
        return 0.0

    def binance_ticker_payload(self, market_id: str) -> dict[str, Any]:
        """GET /api/v3/ticker/24hr body."""
        last = self.last_price(market_id)
        now = self.now_ms or 0
        return {
            "symbol": market_id,
            "priceChange": "0.00000000",
            "priceChangePercent": "0.000",
            "weightedAvgPrice": f"{last:.8f}",
            "prevClosePrice": f"{last:.8f}",
            "lastPrice": f"{last:.8f}",
            "lastQty": "0.01000000",
            "bidPrice": f"{last - 0.01:.8f}",
            "bidQty": "1.00000000",
            "askPrice": f"{last + 0.01:.8f}",
            "askQty": "1.00000000",
            "openPrice": f"{last:.8f}",
            "highPrice": f"{last:.8f}",
            "lowPrice": f"{last:.8f}",
            "volume": "100.00000000",
            "quoteVolume": f"{100 * last:.8f}",
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": 1,
            "lastId": 100,
            "count": 100,
        }

    # ---- Binance WebSocket -------------------------------------------------------------------

    async def binance_ws(self, request: web.Request) -> web.StreamResponse:
        if self.ws_refuse:
            self.ws_refused += 1
            raise _status_exc(503, {"code": -1001, "msg": "service unavailable"})
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.ws_connects += 1
        entry: tuple[web.WebSocketResponse, set[str]] = (ws, set())
        self.ws_clients.append(entry)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if data.get("method") == "SUBSCRIBE":
                    entry[1].update(data.get("params", []))
                    await ws.send_json({"result": None, "id": data.get("id")})
                    await self.on_subscribe(ws, data.get("params", []))
                elif data.get("method") == "UNSUBSCRIBE":
                    entry[1].difference_update(data.get("params", []))
                    await ws.send_json({"result": None, "id": data.get("id")})
        finally:
            if entry in self.ws_clients:
                self.ws_clients.remove(entry)
        return ws

    async def on_subscribe(self, ws: web.WebSocketResponse, streams: list[str]) -> None:
        """Hook: Binance sends nothing on subscribe; subclasses may push a snapshot."""

    async def broadcast(self, stream: str, payload: dict[str, Any]) -> int:
        """Send ``payload`` to every client subscribed to ``stream``; returns receivers."""
        if self.ws_silent:
            return 0
        sent = 0
        for ws, streams in list(self.ws_clients):
            if stream in streams and not ws.closed:
                try:
                    await ws.send_json(payload)
                    sent += 1
                except (ConnectionError, RuntimeError):
                    pass
        return sent

    async def push_kline(self, market_id: str, interval: str, ts: int, final: bool) -> int:
        """Send the kline event of candle ``ts`` (its state at ``now_ms``, or final)."""
        step = INTERVAL_MS[interval]
        frame = self.klines[(market_id, interval)]
        row = frame[frame["timestamp"] == ts].to_numpy()[0]
        saved = self.now_ms
        if final:
            self.now_ms = None
        t, o, h, lo, c, v = self._row_values(row, step)
        self.now_ms = saved
        event = {
            "e": "kline",
            "E": self.now_ms or t,
            "s": market_id,
            "k": {
                "t": t,
                "T": t + step - 1,
                "s": market_id,
                "i": interval,
                "f": 1,
                "L": 2,
                "o": f"{o:.8f}",
                "c": f"{c:.8f}",
                "h": f"{h:.8f}",
                "l": f"{lo:.8f}",
                "v": f"{v:.8f}",
                "n": 2,
                "x": final,
                "q": f"{v * c:.8f}",
                "V": f"{v / 2:.8f}",
                "Q": f"{v * c / 2:.8f}",
                "B": "0",
            },
        }
        return await self.broadcast(f"{market_id.lower()}@kline_{interval}", event)

    async def push_ticker(self, market_id: str) -> int:
        """Send a 24hrTicker event with the current last price."""
        p = self.binance_ticker_payload(market_id)
        event = {
            "e": "24hrTicker",
            "E": self.now_ms or 0,
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
            "F": 1,
            "L": 100,
            "n": 100,
        }
        mini = {
            "e": "24hrMiniTicker",
            "E": self.now_ms or 0,
            "s": market_id,
            "c": p["lastPrice"],
            "o": p["openPrice"],
            "h": p["highPrice"],
            "l": p["lowPrice"],
            "v": p["volume"],
            "q": p["quoteVolume"],
        }  # ccxt's watch_ticker subscribes to <id>@miniTicker by default
        sent = await self.broadcast(f"{market_id.lower()}@ticker", event)
        return sent + await self.broadcast(f"{market_id.lower()}@miniTicker", mini)

    async def advance(self, market_id: str, interval: str, to_ms: int) -> None:
        """Move the clock to ``to_ms``, sending kline events like Binance does.

        Crossing a candle boundary sends the final (``x: true``) event of the candle that just
        closed, then the first event of the new one.
        """
        step = INTERVAL_MS[interval]
        assert self.now_ms is not None
        old_open = self.now_ms // step * step
        self.now_ms = to_ms
        new_open = to_ms // step * step
        for ts in range(old_open, new_open, step):
            await self.push_kline(market_id, interval, ts, final=True)
        await self.push_kline(market_id, interval, new_open, final=False)

    async def drop_ws(self) -> None:
        """Close every WebSocket abruptly (like a network drop)."""
        for ws, _ in list(self.ws_clients):
            await ws.close(code=1006, message=b"dropped")
        self.ws_clients.clear()

    # ---- Kraken REST -------------------------------------------------------------------------

    async def kraken_asset_pairs(self, request: web.Request) -> web.Response:
        await self.check_fault(request)
        return web.json_response(json.loads(KRAKEN_ASSET_PAIRS.read_text()))

    async def kraken_assets(self, request: web.Request) -> web.Response:
        """Kraken /0/public/Assets in its documented shape (Kraken names bitcoin XXBT/XBT)."""
        await self.check_fault(request)
        result = {
            "XXBT": {
                "aclass": "currency",
                "altname": "XBT",
                "decimals": 10,
                "display_decimals": 5,
                "collateral_value": 1.0,
                "status": "enabled",
            },
            "USDT": {
                "aclass": "currency",
                "altname": "USDT",
                "decimals": 8,
                "display_decimals": 4,
                "collateral_value": 1.0,
                "status": "enabled",
            },
        }
        return web.json_response({"error": [], "result": result})

    async def kraken_ohlc_handler(self, request: web.Request) -> web.Response:
        """Like Kraken: only the most recent 720 candles, whatever ``since`` asks for."""
        await self.check_fault(request)
        pair = request.query["pair"]
        minutes = int(request.query.get("interval", 1))
        step = minutes * 60_000
        frame = self._visible(self.kraken_ohlc.get((pair, minutes), _empty()), step).tail(720)
        if "since" in request.query:
            frame = frame[frame["timestamp"] > int(request.query["since"]) * 1000]
        rows = []
        for row in frame.to_numpy():
            t, o, h, lo, c, v = self._row_values(row, step)
            rows.append(
                [
                    t // 1000,
                    f"{o:.1f}",
                    f"{h:.1f}",
                    f"{lo:.1f}",
                    f"{c:.1f}",
                    f"{c:.1f}",
                    f"{v:.8f}",
                    1,
                ]
            )
        last = rows[-1][0] if rows else 0
        return web.json_response({"error": [], "result": {pair: rows, "last": last}})

    async def kraken_trades_handler(self, request: web.Request) -> web.Response:
        """Kraken /0/public/Trades: ``since`` in seconds or nanoseconds, ``count`` ≤ 1000."""
        fault = await self.check_fault(request)
        pair = request.query["pair"]
        trades = self.kraken_trades.get(pair, [])
        since_raw = request.query.get("since", "0")
        since_ns = int(since_raw) if len(since_raw) >= 19 else int(since_raw) * 1_000_000_000
        count = min(int(request.query.get("count", 1000)), 1000)
        # Inclusive, so trades sharing the cursor's nanosecond are repeated, never lost
        # (several trades of one taker order share a timestamp); clients dedupe by trade id.
        times_ns = [round(float(t[2]) * 1e9) for t in trades]
        page = [t for t, ns in zip(trades, times_ns, strict=True) if ns >= since_ns]
        if self.now_ms is not None:
            page = [t for t in page if float(t[2]) * 1000 <= self.now_ms]
        page = page[:count]
        if fault is not None and fault.kind == "truncate":
            page = page[: fault.keep]
        last = str(round(float(page[-1][2]) * 1e9)) if page else since_raw
        return web.json_response({"error": [], "result": {pair: page, "last": last}})


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=["timestamp", "open", "high", "low", "close", "volume"])


def _status_exc(status: int, body: dict[str, Any]) -> web.HTTPException:
    text = json.dumps(body)
    classes: dict[int, type[web.HTTPException]] = {
        429: web.HTTPTooManyRequests,
        500: web.HTTPInternalServerError,
        502: web.HTTPBadGateway,
        503: web.HTTPServiceUnavailable,
        504: web.HTTPGatewayTimeout,
        400: web.HTTPBadRequest,
    }
    cls = classes.get(status, web.HTTPInternalServerError)
    return cls(text=text, content_type="application/json")
