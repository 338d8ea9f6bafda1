"""The fake exchange extended with Binance's spot order endpoints (private REST).

Matching is done by the paper engine (immediate market fills, resting limits that fill when
:meth:`FakeOrderExchange.trade` moves the price through them); this module only speaks
Binance's wire format: ``POST/GET/DELETE /api/v3/order``, ``GET /api/v3/openOrders``,
``/api/v3/myTrades``, ``/api/v3/account`` and ``/api/v3/depth``, with Binance's error codes
(-2010 rejected, -2011 unknown order on cancel, -2013 order does not exist).

``delay_after_accept`` makes the next create accept the order and then answer too late (the
client times out: the order exists but the client does not know it).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from aiohttp import web

from kmg_autotrader.domain import MarketInfo
from kmg_autotrader.exchange.errors import (
    ExchangeAdapterError,
    InsufficientFundsError,
    OrderNotFoundError,
)
from kmg_autotrader.execution.fees import SlippageModel
from kmg_autotrader.execution.paper import PaperEngine, PaperSettings
from tests.fakes.fake_exchange import FakeExchange, _status_exc

MARKETS = {
    "BTC/USDT": MarketInfo(
        symbol="BTC/USDT",
        base="BTC",
        quote="USDT",
        amount_step=Decimal("0.00001"),
        price_step=Decimal("0.01"),
        min_amount=Decimal("0.00001"),
        min_cost=Decimal("5"),
    ),
}
_STATUS = {"open": "NEW", "closed": "FILLED", "canceled": "CANCELED", "expired": "EXPIRED"}


def _num(value: Any) -> str:
    return format(Decimal(str(value)), "f") if value is not None else "0"


def _binance_id(paper_id: str) -> int:
    return int(paper_id.lstrip("P"))


def _trade_id(paper_trade_id: str) -> int:
    order, _, n = paper_trade_id.partition("-")
    return int(order.lstrip("P")) * 1000 + int(n)


class FakeOrderExchange(FakeExchange):
    """Binance public + spot order endpoints on 127.0.0.1."""

    def __init__(self, now_ms: int | None = None, usdt: Decimal = Decimal(10_000)) -> None:
        super().__init__(now_ms)
        self.engine = PaperEngine(
            MARKETS,
            settings=PaperSettings(
                immediate_market=True, slippage=SlippageModel(Decimal(0), Decimal(0))
            ),
            balances={"USDT": usdt},
        )
        self.delay_after_accept = 0.0
        self.creates = 0

    def binance_config(self, **extra: Any) -> dict[str, Any]:
        """Point every Binance API family here, so nothing can leave 127.0.0.1."""
        config = super().binance_config(**extra)
        api = config["urls"]["api"]
        for family in ("sapi", "sapiV2", "sapiV3", "sapiV4", "fapiPublic", "dapiPublic"):
            api.setdefault(family, f"{self.base}/sapi/v1")
        config.setdefault("options", {})["fetchCurrencies"] = False
        config.setdefault("apiKey", "fake-key")
        config.setdefault("secret", "fake-secret")
        return config

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Public routes plus the order endpoints."""
        super().add_routes(router)
        router.add_post("/api/v3/order", self.create_order)
        router.add_get("/api/v3/order", self.get_order)
        router.add_delete("/api/v3/order", self.delete_order)
        router.add_get("/api/v3/openOrders", self.open_orders)
        router.add_get("/api/v3/myTrades", self.my_trades)
        router.add_get("/api/v3/account", self.account)
        router.add_get("/api/v3/depth", self.depth)
        # with keys, ccxt's load_markets also asks for margin pairs: there are none here
        router.add_get("/sapi/v1/margin/{tail:.*}", self.empty_list)
        # and, unless options say otherwise, the coins (fetchCurrencies); none listed here
        router.add_get("/sapi/v1/capital/config/getall", self.empty_list)

    async def empty_list(self, request: web.Request) -> web.Response:
        """An empty JSON list."""
        await self.check_fault(request)
        return web.json_response([])

    # ---- helpers ------------------------------------------------------------------------------

    def trade(self, price: Decimal) -> None:
        """The market trades at ``price`` (fills crossed limits)."""
        self.engine.on_price("BTC/USDT", price)

    @staticmethod
    def _symbol(market_id: str) -> str:
        return f"{market_id[:-4]}/{market_id[-4:]}"

    @staticmethod
    async def _params(request: web.Request) -> dict[str, str]:
        params = dict(request.query)
        if request.can_read_body:
            params.update({k: str(v) for k, v in (await request.post()).items()})
        return params

    @staticmethod
    def _error(code: int, msg: str) -> web.HTTPException:
        return _status_exc(400, {"code": code, "msg": msg})

    def _order_json(self, order: dict[str, Any]) -> dict[str, Any]:
        market_id = order["symbol"].replace("/", "")
        return {
            "symbol": market_id,
            "orderId": _binance_id(order["id"]),
            "orderListId": -1,
            "clientOrderId": order["clientOrderId"],
            "price": _num(order["price"]),
            "origQty": _num(order["amount"]),
            "executedQty": _num(order["filled"]),
            "cummulativeQuoteQty": _num(order["cost"]),
            "status": _STATUS[order["status"]],
            "timeInForce": "GTC",
            "type": ("LIMIT_MAKER" if order["postOnly"] else order["type"]).upper(),
            "side": order["side"].upper(),
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": order["timestamp"],
            "updateTime": order["lastUpdateTimestamp"],
            "isWorking": True,
            "workingTime": order["timestamp"],
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "NONE",
        }

    def _trade_json(self, trade: dict[str, Any]) -> dict[str, Any]:
        return {
            "symbol": trade["symbol"].replace("/", ""),
            "id": _trade_id(trade["id"]),
            "orderId": _binance_id(trade["order"]),
            "orderListId": -1,
            "price": _num(trade["price"]),
            "qty": _num(trade["amount"]),
            "quoteQty": _num(trade["cost"]),
            "commission": _num(trade["fee"]["cost"]),
            "commissionAsset": trade["fee"]["currency"],
            "time": trade["timestamp"],
            "isBuyer": trade["side"] == "buy",
            "isMaker": trade["takerOrMaker"] == "maker",
            "isBestMatch": True,
        }

    def _find(self, params: dict[str, str]) -> dict[str, Any]:
        try:
            if "origClientOrderId" in params:
                return self.engine.fetch_order_by_client_id(params["origClientOrderId"])
            return self.engine.fetch_order(f"P{params['orderId']}")
        except (OrderNotFoundError, KeyError):
            raise self._error(-2013, "Order does not exist.") from None

    # ---- endpoints ----------------------------------------------------------------------------

    async def create_order(self, request: web.Request) -> web.Response:
        """POST /api/v3/order (MARKET, LIMIT, LIMIT_MAKER)."""
        await self.check_fault(request)
        p = await self._params(request)
        self.creates += 1
        kind = p["type"].upper()
        try:
            order = self.engine.create_order(
                self._symbol(p["symbol"]),
                "market" if kind == "MARKET" else "limit",
                p["side"].lower(),
                Decimal(p["quantity"]),
                Decimal(p["price"]) if "price" in p else None,
                client_order_id=p.get("newClientOrderId"),
                post_only=kind == "LIMIT_MAKER",
            )
        except InsufficientFundsError:
            raise self._error(
                -2010, "Account has insufficient balance for requested action."
            ) from None
        except ExchangeAdapterError as exc:
            if "duplicate" in str(exc):
                raise self._error(-2010, "Duplicate order sent.") from None
            if "post-only" in str(exc):
                raise self._error(-2010, "Order would immediately match and take.") from None
            raise self._error(-1013, f"Filter failure: {exc}") from None
        if self.delay_after_accept:
            delay, self.delay_after_accept = self.delay_after_accept, 0.0
            await asyncio.sleep(delay)
        body = self._order_json(order)
        body["transactTime"] = order["timestamp"]
        body["fills"] = [
            {
                "price": _num(t["price"]),
                "qty": _num(t["amount"]),
                "commission": _num(t["fee"]["cost"]),
                "commissionAsset": t["fee"]["currency"],
                "tradeId": _trade_id(t["id"]),
            }
            for t in order["trades"]
        ]
        return web.json_response(body)

    async def get_order(self, request: web.Request) -> web.Response:
        """GET /api/v3/order by orderId or origClientOrderId."""
        await self.check_fault(request)
        return web.json_response(self._order_json(self._find(await self._params(request))))

    async def delete_order(self, request: web.Request) -> web.Response:
        """DELETE /api/v3/order: -2011 when the order is not open."""
        await self.check_fault(request)
        order = self._find(await self._params(request))
        try:
            canceled = self.engine.cancel_order(order["id"])
        except OrderNotFoundError:
            raise self._error(-2011, "Unknown order sent.") from None
        return web.json_response(self._order_json(canceled))

    async def open_orders(self, request: web.Request) -> web.Response:
        """GET /api/v3/openOrders."""
        await self.check_fault(request)
        symbol = request.query.get("symbol")
        rows = self.engine.open_orders(self._symbol(symbol) if symbol else None)
        return web.json_response([self._order_json(o) for o in rows])

    async def my_trades(self, request: web.Request) -> web.Response:
        """GET /api/v3/myTrades."""
        await self.check_fault(request)
        q = request.query
        since = int(q["startTime"]) if "startTime" in q else None
        rows = self.engine.my_trades(self._symbol(q["symbol"]), since)
        if "orderId" in q:
            rows = [t for t in rows if _binance_id(t["order"]) == int(q["orderId"])]
        return web.json_response([self._trade_json(t) for t in rows])

    async def account(self, request: web.Request) -> web.Response:
        """GET /api/v3/account (balances)."""
        await self.check_fault(request)
        balance = self.engine.balance()
        return web.json_response(
            {
                "makerCommission": 10,
                "takerCommission": 10,
                "canTrade": True,
                "accountType": "SPOT",
                "updateTime": 0,
                "balances": [
                    {
                        "asset": c,
                        "free": _num(balance["free"][c]),
                        "locked": _num(balance["used"][c]),
                    }
                    for c in balance["free"]
                ],
                "permissions": ["SPOT"],
            }
        )

    async def depth(self, request: web.Request) -> web.Response:
        """GET /api/v3/depth."""
        await self.check_fault(request)
        book = self.engine.order_book(self._symbol(request.query["symbol"]))
        return web.json_response(
            {
                "lastUpdateId": 1,
                "bids": [[_num(p), _num(q)] for p, q in book["bids"]],
                "asks": [[_num(p), _num(q)] for p, q in book["asks"]],
            }
        )
