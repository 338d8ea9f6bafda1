"""Every order amount and price is rounded with ccxt's precision helpers before it is sent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kmg_autotrader.exchange import ExchangeAdapter
from kmg_autotrader.exchange.errors import InvalidOrderError
from tests.data import KRAKEN_SNAPSHOT

D = Decimal


class Recorder:
    """Stands in for ccxt's ``create_order``: records what would go on the wire."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def __call__(self, *args: Any) -> dict[str, Any]:
        self.calls.append(args)
        return {"id": "1", "status": "open"}


@pytest.fixture
async def kraken() -> Any:
    adapter = ExchangeAdapter("kraken")
    adapter.load_markets_snapshot(KRAKEN_SNAPSHOT)  # BTC/USDT: amount 1e-8, price tick 0.1
    recorder = Recorder()
    adapter.client.create_order = recorder
    try:
        yield adapter, recorder
    finally:
        await adapter.close()


async def test_amount_truncated_and_price_on_the_tick_before_sending(kraken: Any) -> None:
    adapter, recorder = kraken
    await adapter.create_order(
        "BTC/USDT", "buy", "limit", D("0.123456789999"), D("65000.1234"), client_order_id="k1"
    )
    ((symbol, order_type, side, amount, price, params),) = recorder.calls
    assert (symbol, order_type, side) == ("BTC/USDT", "limit", "buy")
    assert amount == 0.12345678  # truncated, never rounded up
    assert price == 65000.1
    assert params == {"clientOrderId": "k1"}


async def test_market_order_has_no_price_and_on_grid_values_pass_unchanged(kraken: Any) -> None:
    adapter, recorder = kraken
    await adapter.create_order("BTC/USDT", "sell", "market", D("0.5"))
    ((_, _, _, amount, price, _),) = recorder.calls
    assert amount == 0.5 and price is None


async def test_amount_below_one_step_is_refused_and_nothing_is_sent(kraken: Any) -> None:
    adapter, recorder = kraken
    with pytest.raises(InvalidOrderError):
        await adapter.create_order("BTC/USDT", "buy", "market", D("0.000000001"))
    assert recorder.calls == []
