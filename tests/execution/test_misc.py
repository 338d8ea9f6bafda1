"""ATR levels, equity marking, ids."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kmg_autotrader.domain import Balance, Mode
from kmg_autotrader.execution.ids import intent_key, new_client_order_id
from kmg_autotrader.portfolio import atr_levels, mark_equity
from kmg_autotrader.portfolio.positions import trailed_stop

from .helpers import intent

D = Decimal


def test_atr_levels_and_trailing() -> None:
    assert atr_levels(D(100), D(2)) == (D(96), D(106))
    assert atr_levels(D(100), D(2), stop_multiple=D("1.5"), take_profit_multiple=D(4)) == (
        D(97),
        D(108),
    )
    with pytest.raises(ValueError):
        atr_levels(D(100), D(0))
    assert trailed_stop(D(90), D(110), D("0.05")) == D("104.50")
    assert trailed_stop(D(105), D(110), D("0.05")) == D(105)
    assert trailed_stop(D(90), D(110), None) == D(90)


def test_mark_equity() -> None:
    balances = [
        Balance(Mode.PAPER, "USDT", D(1000), D(100)),
        Balance(Mode.PAPER, "BTC", D("0.5")),
        Balance(Mode.PAPER, "DOGE", D(10)),
    ]
    point = mark_equity(Mode.PAPER, 5, balances, {"BTC/USDT": D(20000)}, "USDT")
    assert point.cash == D(1100) and point.positions_value == D(10000)
    assert point.equity == D(11100) and point.details == {"unpriced:DOGE": "10"}


def test_ids() -> None:
    a, b = new_client_order_id(Mode.LIVE), new_client_order_id(Mode.LIVE)
    assert a != b and a.startswith("kmgl") and len(a) <= 36
    assert intent_key(intent()) == intent_key(intent())
    assert intent_key(intent()) != intent_key(intent(created_at=2))


def test_paper_and_live_never_mix() -> None:
    from kmg_autotrader.domain.clock import SimulatedClock
    from kmg_autotrader.exchange import ExchangeAdapter
    from kmg_autotrader.execution import (
        ExecutionManager,
        LiveTradingRefusedError,
        MemoryStore,
        PaperExchange,
    )
    from kmg_autotrader.execution.ccxt_orders import CcxtExchange

    from .helpers import engine

    clock = SimulatedClock(0)
    with pytest.raises(LiveTradingRefusedError):
        ExecutionManager(PaperExchange(engine()), MemoryStore(Mode.LIVE), clock=clock)
    real = CcxtExchange(ExchangeAdapter("binance"))  # never used: refused at construction
    with pytest.raises(LiveTradingRefusedError):
        ExecutionManager(real, MemoryStore(Mode.PAPER), clock=clock)


async def test_kraken_client_ids_are_short_and_found_in_order_lists() -> None:
    from types import SimpleNamespace

    from kmg_autotrader.exchange.errors import OrderNotFoundError
    from kmg_autotrader.execution.ccxt_orders import CcxtExchange

    class Client:  # an exchange that ignores the cl_ord_id filter: the answer is checked
        async def fetch_open_orders(
            self, symbol: str, since: object, limit: object, params: dict[str, str]
        ) -> list[dict[str, object]]:
            assert params == {"clientOrderId": params["clientOrderId"]}
            return [{"id": "O1", "clientOrderId": "kmglaaaa"}]

        async def fetch_closed_orders(
            self, symbol: str, since: object, limit: object, params: dict[str, str]
        ) -> list[dict[str, object]]:
            return [{"id": "O2", "clientOrderId": "kmglbbbb", "status": "closed"}]

    kraken = CcxtExchange(SimpleNamespace(id="kraken", client=Client()))  # type: ignore[arg-type]
    assert kraken.client_id_max_length == 18
    assert len(new_client_order_id(Mode.LIVE, kraken.client_id_max_length)) == 18
    assert (await kraken.fetch_order_by_client_id("kmglbbbb", "BTC/USDT"))["id"] == "O2"
    with pytest.raises(OrderNotFoundError):
        await kraken.fetch_order_by_client_id("kmglzzzz", "BTC/USDT")
