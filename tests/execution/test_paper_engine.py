"""Fill simulation, fee and slippage math, precision, partial fills, balances."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from kmg_autotrader.domain import OrderType, Side
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.exchange.errors import (
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
)
from kmg_autotrader.execution.fees import (
    DEFAULT_FEES,
    FeeSchedule,
    SlippageModel,
    fee_schedule,
    slippage_bps,
    walk_book,
)
from kmg_autotrader.execution.paper.engine import _to_decimal
from kmg_autotrader.execution.precision import is_buy, round_amount, round_price, round_step

from .helpers import BTC, engine

D = Decimal


def test_fee_schedules_default_and_override() -> None:
    assert fee_schedule("binance") == FeeSchedule(D("0.001"), D("0.001"))
    assert fee_schedule("KRAKEN").taker == D("0.004")
    custom = FeeSchedule(D("0"), D("0.002"))
    assert fee_schedule("binance", custom) is custom
    assert set(DEFAULT_FEES) == {"binance", "kraken"}


def test_slippage_model_math() -> None:
    model = SlippageModel(base_bps=D(2), impact_bps=D(20), reference_notional=D(1_000_000))
    # 0.1 BTC at 20,000 = 2,000 notional → participation 0.002 → 2.04 bps
    assert model.bps(D("0.1"), D(20000)) == D("2.04")
    # with volume: 1 of 10 → 10 % participation → 2 + 2 = 4 bps
    assert model.bps(D(1), D(20000), D(10)) == D(4)
    # capped at 100 % participation
    assert model.bps(D(100), D(20000), D(10)) == D(22)
    assert model.fill_price("buy", D(1), D(20000), D(10)) == D(20000) * (1 + D(4) / 10_000)
    assert model.fill_price("sell", D(1), D(20000), D(10)) == D(20000) * (1 - D(4) / 10_000)
    assert slippage_bps("buy", D(20010), D(20000)) == pytest.approx(5.0)
    assert slippage_bps("sell", D(20010), D(20000)) == pytest.approx(-5.0)


def test_walk_book_pays_the_depth() -> None:
    asks = [[100, 1], [101, 1], [102, 10]]
    price, exhausted = walk_book("buy", D(3), asks)
    assert price == (D(100) + D(101) + D(102)) / 3 and not exhausted
    price, exhausted = walk_book("sell", D(2), [[99, 1]], overflow_bps=D(100))
    assert exhausted and price == (D(99) + D(99) * D("0.99")) / 2


def test_precision_rounding() -> None:
    assert round_amount(BTC, D("0.123456789")) == D("0.12345")
    assert round_price(BTC, D("20000.129"), "buy") == D("20000.12")
    assert round_price(BTC, D("20000.121"), "sell") == D("20000.13")
    assert round_step(D("7"), D("2")) == D("6")
    assert round_step(D("0.000001"), D("0.00001")) == 0


def test_sides_and_types_are_validated_like_the_enums() -> None:
    assert is_buy("buy") and is_buy(Side.BUY) and not is_buy("sell") and not is_buy(Side.SELL)
    with pytest.raises(ValueError):
        is_buy("BUY")
    paper = engine()
    with pytest.raises(ValueError):
        paper.create_order("BTC/USDT", "stop", "buy", D("0.1"))
    with pytest.raises(ValueError):
        paper.create_order("BTC/USDT", "market", "long", D("0.1"))
    paper.on_price("BTC/USDT", D(20000), 900)
    order = paper.create_order("BTC/USDT", OrderType.LIMIT, Side.BUY, D("0.1"), D(19000))
    assert type(order["side"]) is str and type(order["type"]) is str  # plain text, as before
    assert (order["side"], order["type"]) == ("buy", "limit")


@pytest.mark.parametrize(
    "value", [0.1, 19999.99, 1e16, 9.99e-05, 1e-4, 123456.789012, 5e-324, 0.0, 1.797e308]
)
def test_candle_floats_convert_by_their_shortest_repr(value: float) -> None:
    # the same Decimal (digits and exponent) as Decimal(str(x)), for floats and numpy float64
    for x in (value, np.float64(value)):
        assert repr(_to_decimal(x)) == repr(Decimal(str(x)))
    assert _to_decimal(D("1.50")) == D("1.50") and _to_decimal(7) == D(7)


def test_limit_fills_when_the_candle_range_is_given_as_floats() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, volume_participation=None)
    paper.on_price("BTC/USDT", D(20100), 900)
    paper.create_order("BTC/USDT", "limit", "buy", D("0.1"), D(20000))
    assert paper.on_bar("BTC/USDT", 1_000, 20050.5, 20060.25, 20000.0, 20010.0) == []  # touch
    (trade,) = paper.on_bar("BTC/USDT", 1_100, np.float64(20050.5), 20060.0, 19999.99, 20010.0)
    assert trade["price"] == D(20000) and trade["takerOrMaker"] == "maker"
    assert paper.last_price["BTC/USDT"] == D("20010.0")


def test_market_order_waits_for_next_bar_open() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, slippage=SlippageModel(D(0), D(0)))
    paper.on_bar("BTC/USDT", 0, 19000, 19100, 18900, 19050, 5)  # candle t, before the order
    order = paper.create_order("BTC/USDT", "market", "buy", D("0.1"))
    assert order["status"] == "open" and order["filled"] == 0
    assert paper.on_bar("BTC/USDT", 500, 1, 1, 1, 1, 5) == []  # older than the order: ignored
    trades = paper.on_bar("BTC/USDT", 1_000, 20000, 20100, 19900, 20050, 5)
    assert len(trades) == 1 and trades[0]["price"] == D(20000)
    done = paper.fetch_order(order["id"])
    assert done["status"] == "closed" and done["filled"] == D("0.1")
    assert done["fee"]["cost"] == D("2.000")  # 0.1 % taker of 2,000
    balance = paper.balance()
    assert balance["free"]["BTC"] == D("0.1")
    assert balance["free"]["USDT"] == D(10000) - D(2000) - D(2)


def test_market_order_slippage_and_precision_against_us() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, slippage=SlippageModel(D(10), D(0)))
    paper.create_order("BTC/USDT", "market", "buy", D("0.1234567"))
    (trade,) = paper.on_bar("BTC/USDT", 1_000, 20000, 20000, 20000, 20000)
    assert trade["amount"] == D("0.12345")
    assert trade["price"] == D("20020.00")  # +10 bps, rounded up to the tick


def test_immediate_market_walks_the_book() -> None:
    paper = engine(immediate_market=True)
    book = {"bids": [[19990, 5]], "asks": [[20000, "0.05"], [20010, "0.05"], [20100, 1]]}
    order = paper.create_order("BTC/USDT", "market", "buy", D("0.1"), book=book)
    assert order["status"] == "closed"
    assert order["average"] == D("20005.00")


def test_limit_rests_then_fills_as_maker_with_partial_fills() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, max_fill_fraction=D("0.4"), volume_participation=None)
    paper.on_price("BTC/USDT", D(20100), 900)
    order = paper.create_order("BTC/USDT", "limit", "buy", D("0.1"), D(20000), post_only=True)
    reserved = D("0.1") * D(20000) * D("1.001")
    assert paper.balance()["used"]["USDT"] == reserved
    assert paper.on_price("BTC/USDT", D(20000), 1_100) == []  # touch is not a cross
    first = paper.on_price("BTC/USDT", D("19999.99"), 1_200)
    assert first[0]["amount"] == D("0.04") and first[0]["takerOrMaker"] == "maker"
    assert first[0]["price"] == D(20000)
    assert paper.fetch_order(order["id"])["status"] == "open"
    paper.on_price("BTC/USDT", D(19990), 1_300)
    paper.on_price("BTC/USDT", D(19990), 1_400)
    done = paper.fetch_order(order["id"])
    assert done["status"] == "closed" and done["filled"] == D("0.1")
    assert len(done["trades"]) == 3
    assert done["fee"]["cost"] == D("0.1") * D(20000) * D("0.001")
    balance = paper.balance()
    assert balance["used"]["USDT"] == 0
    assert balance["free"]["USDT"] == D(10000) - D(2000) - D(2)


def test_limit_on_bar_and_volume_cap() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, usdt="20000", volume_participation=D("0.1"))
    paper.on_price("BTC/USDT", D(20100), 900)
    order = paper.create_order("BTC/USDT", "limit", "buy", D("0.5"), D(20000))
    trades = paper.on_bar("BTC/USDT", 1_000, 20050, 20060, 19900, 19950, volume=2)
    assert trades[0]["amount"] == D("0.2")  # 10 % of the candle's volume
    assert paper.fetch_order(order["id"])["remaining"] == D("0.3")


def test_post_only_that_would_take_is_rejected() -> None:
    paper = engine()
    paper.on_price("BTC/USDT", D(20000), 900)
    with pytest.raises(InvalidOrderError, match="post-only"):
        paper.create_order("BTC/USDT", "limit", "buy", D("0.1"), D(20000), post_only=True)


def test_limits_funds_and_duplicates() -> None:
    paper = engine(usdt="100")
    paper.on_price("BTC/USDT", D(20000), 900)
    with pytest.raises(InvalidOrderError, match="below the minimum"):
        paper.create_order("BTC/USDT", "limit", "buy", D("0.0002"), D(19000))  # 3.8 < 5 USDT
    with pytest.raises(InsufficientFundsError):
        paper.create_order("BTC/USDT", "limit", "buy", D("0.1"), D(19000))
    with pytest.raises(InsufficientFundsError):
        paper.create_order("BTC/USDT", "market", "sell", D("0.001"))
    paper.create_order("BTC/USDT", "limit", "buy", D("0.001"), D(19000), client_order_id="a")
    with pytest.raises(InvalidOrderError, match="duplicate"):
        paper.create_order("BTC/USDT", "limit", "buy", D("0.001"), D(19000), client_order_id="a")


def test_cancel_releases_reservation_and_finished_orders_cannot_be_cancelled() -> None:
    paper = engine()
    paper.on_price("BTC/USDT", D(20100), 900)
    order = paper.create_order("BTC/USDT", "limit", "buy", D("0.1"), D(20000))
    canceled = paper.cancel_order(order["id"])
    assert canceled["status"] == "canceled"
    assert paper.balance()["free"]["USDT"] == D(10000)
    with pytest.raises(OrderNotFoundError):
        paper.cancel_order(order["id"])
    with pytest.raises(OrderNotFoundError):
        paper.fetch_order_by_client_id("nope")


def test_sell_limit_and_round_trip_balances() -> None:
    paper = engine(immediate_market=True, slippage=SlippageModel(D(0), D(0)))
    paper.on_price("BTC/USDT", D(20000), 900)
    paper.create_order("BTC/USDT", "market", "buy", D("0.1"))
    tp = paper.create_order("BTC/USDT", "limit", "sell", D("0.1"), D(21000))
    assert paper.balance()["used"]["BTC"] == D("0.1")
    paper.on_price("BTC/USDT", D(21001), 2_000)
    assert paper.fetch_order(tp["id"])["status"] == "closed"
    balance = paper.balance()
    assert balance["total"]["BTC"] == 0
    expected = D(10000) - D(2000) * D("1.001") + D(2100) * D("0.999")
    assert balance["free"]["USDT"] == expected


def test_snapshot_round_trip() -> None:
    paper = engine()
    paper.on_price("BTC/USDT", D(20100), 900)
    paper.create_order("BTC/USDT", "limit", "buy", D("0.1"), D(20000), client_order_id="x")
    paper.on_price("BTC/USDT", D(19000), 1_100)
    clone = engine()
    clone.restore(paper.snapshot())
    assert clone.fetch_order_by_client_id("x") == paper.fetch_order_by_client_id("x")
    assert clone.balance() == paper.balance()
