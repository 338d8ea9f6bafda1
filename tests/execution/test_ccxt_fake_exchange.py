"""The real ccxt Binance class against the local fake exchange: orders end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from kmg_autotrader.domain import Mode, OrderStatus
from kmg_autotrader.domain.clock import WallClock
from kmg_autotrader.exchange import ExchangeAdapter, RetryPolicy
from kmg_autotrader.exchange.errors import (
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    PermanentExchangeError,
)
from kmg_autotrader.execution.ccxt_orders import CcxtExchange
from kmg_autotrader.execution.manager import ExecutionConfig, ExecutionManager
from kmg_autotrader.execution.ports import ExchangePort
from kmg_autotrader.execution.store_memory import MemoryStore
from tests.fakes.fake_exchange_orders import FakeOrderExchange

from .helpers import NO_WAIT, intent

D = Decimal


@pytest.fixture
async def fake() -> AsyncIterator[FakeOrderExchange]:
    server = await FakeOrderExchange().start()
    server.trade(D(20000))
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def exchange(fake: FakeOrderExchange) -> AsyncIterator[CcxtExchange]:
    adapter = ExchangeAdapter(
        "binance",
        config=fake.binance_config(timeout=1000),
        retry=RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02),
    )
    await adapter.load_markets()
    try:
        yield CcxtExchange(adapter)
    finally:
        await adapter.close()


async def test_create_fetch_by_client_id_trades_and_balance(
    fake: FakeOrderExchange, exchange: CcxtExchange
) -> None:
    assert isinstance(exchange, ExchangePort)
    market = exchange.market("BTC/USDT")
    assert market.amount_step == D("0.00001") and market.min_cost == D(5)
    order = await exchange.create_order(
        "BTC/USDT", "market", "buy", D("0.1"), None, {"clientOrderId": "kmgtest1"}
    )
    assert order["clientOrderId"] == "kmgtest1" and order["status"] == "closed"
    assert order["filled"] == pytest.approx(0.1)
    fetched = await exchange.fetch_order_by_client_id("kmgtest1", "BTC/USDT")
    assert fetched["id"] == order["id"] and fetched["average"] == pytest.approx(20000)
    (trade,) = await exchange.fetch_my_trades("BTC/USDT")
    assert trade["order"] == order["id"] and trade["fee"]["cost"] == pytest.approx(2.0)
    balance = await exchange.fetch_balance()
    assert balance["free"]["BTC"] == pytest.approx(0.1)


async def test_limit_open_cancel_and_error_mapping(
    fake: FakeOrderExchange, exchange: CcxtExchange
) -> None:
    order = await exchange.create_order(
        "BTC/USDT", "limit", "buy", D("0.1"), D(19000), {"clientOrderId": "kmgl1", "postOnly": True}
    )
    assert order["status"] == "open"
    (listed,) = await exchange.fetch_open_orders("BTC/USDT")
    assert listed["clientOrderId"] == "kmgl1"
    canceled = await exchange.cancel_order(order["id"], "BTC/USDT")
    assert canceled["status"] == "canceled"
    with pytest.raises(PermanentExchangeError):  # -2011 Unknown order sent.
        await exchange.cancel_order(order["id"], "BTC/USDT")
    with pytest.raises(OrderNotFoundError):  # -2013 Order does not exist.
        await exchange.fetch_order_by_client_id("nobody", "BTC/USDT")
    with pytest.raises(InsufficientFundsError):
        await exchange.create_order("BTC/USDT", "market", "buy", D(5), None, {"clientOrderId": "x"})
    with pytest.raises(InvalidOrderError):  # post-only would take
        await exchange.create_order(
            "BTC/USDT", "limit", "buy", D("0.1"), D(20500), {"clientOrderId": "y", "postOnly": True}
        )
    with pytest.raises(InvalidOrderError):  # duplicate client id
        await exchange.create_order(
            "BTC/USDT", "limit", "buy", D("0.1"), D(19000), {"clientOrderId": "kmgl1"}
        )


async def test_timeout_after_accept_creates_exactly_one_order(
    fake: FakeOrderExchange, exchange: CcxtExchange
) -> None:
    fake.delay_after_accept = 2.0  # longer than the client's 1 s timeout
    store = MemoryStore(Mode.LIVE)
    manager = ExecutionManager(
        exchange, store, clock=WallClock(), config=ExecutionConfig(retry=NO_WAIT)
    )
    report = await manager.execute(intent(mode=Mode.LIVE))
    assert report.status == "filled", report.message
    assert fake.creates == 1 and len(fake.engine.orders) == 1
    (order,) = report.orders
    assert order.status is OrderStatus.FILLED and order.exchange_order_id is not None
    (fill,) = store.fills_for_order(order.client_order_id)
    assert fill.amount == D("0.1") and fill.fee == D(2)
    assert store.open_positions()[0].amount == D("0.1")


async def test_server_error_on_create_is_looked_up_then_resent_once(
    fake: FakeOrderExchange, exchange: CcxtExchange
) -> None:
    fake.inject("/api/v3/order", "status", status=503)
    store = MemoryStore(Mode.LIVE)
    manager = ExecutionManager(
        exchange, store, clock=WallClock(), config=ExecutionConfig(retry=NO_WAIT)
    )
    report = await manager.execute(intent(mode=Mode.LIVE))
    assert report.status == "filled"
    assert len(fake.engine.orders) == 1
    posts = [r for r in fake.requests if r.startswith("/api/v3/order")]
    assert len(posts) >= 3  # failed create, look-up (not found), the one real create
