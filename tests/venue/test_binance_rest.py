"""A real ccxt.pro.binance against the venue's Binance REST API: every endpoint the bot uses,
signatures, and orders matched against the replayed prices with Binance's fees and filters."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from kmg_autotrader.venue import Venue
from tests.venue.conftest import START_MS, sample_frames

SYMBOL = "BTC/USDT"
FEE = Decimal("0.001")


def books(venue: Venue) -> dict[str, Any]:
    return venue.books()


def balances(venue: Venue) -> dict[str, tuple[Decimal, Decimal]]:
    return {
        c: (Decimal(v["free"]), Decimal(v["used"])) for c, v in books(venue)["balances"].items()
    }


async def test_markets_with_keys_come_from_the_snapshot(venue: Venue, client: Any) -> None:
    market = client.market(SYMBOL)
    assert market["id"] == "BTCUSDT" and market["spot"]
    assert market["precision"]["amount"] == 0.00001 and market["precision"]["price"] == 0.01
    assert market["limits"]["cost"]["min"] == 5.0
    # load_markets with keys touched the SAPI margin/currency endpoints: answered, not 404
    assert venue.requests["GET /api/v3/exchangeInfo"] == 1
    assert venue.requests["GET /sapi/v1/capital/config/getall"] == 1
    assert venue.requests["GET /sapi/v1/margin/allPairs"] >= 1


async def test_ohlcv_is_the_replayed_data_with_the_forming_candle(
    venue: Venue, client: Any
) -> None:
    frame = sample_frames()[SYMBOL]
    rows = await client.fetch_ohlcv(SYMBOL, "5m", limit=1000)
    assert len(rows) == 1000
    shift = venue.market.shift_ms
    closed = rows[:-1]
    first = int(frame.index[frame["timestamp"] == closed[0][0] - shift][0])
    expected = frame.iloc[first : first + len(closed)]
    assert [r[0] - shift for r in closed] == expected["timestamp"].tolist()
    assert [r[4] for r in closed] == expected["close"].tolist()
    assert [r[5] for r in closed] == pytest.approx(expected["volume"].tolist())
    forming = rows[-1]
    assert forming[0] <= START_MS < forming[0] + 300_000
    # pagination by since: the first 3 candles of the whole replay
    head = await client.fetch_ohlcv(SYMBOL, "5m", since=venue.market.first_ms(SYMBOL), limit=3)
    assert [r[1] for r in head] == frame["open"].iloc[:3].tolist()
    hours = await client.fetch_ohlcv(SYMBOL, "1h", limit=5)
    assert all(r[0] % 3_600_000 == 0 for r in hours)
    with pytest.raises(ccxt.BadRequest, match="-1120"):
        await client.fetch_ohlcv(SYMBOL, "1m")


async def test_ticker_book_and_trades(venue: Venue, client: Any) -> None:
    last = venue.market.last_price(SYMBOL, START_MS)
    ticker = await client.fetch_ticker(SYMBOL)
    assert Decimal(str(ticker["last"])) == last
    assert Decimal(str(ticker["ask"])) - Decimal(str(ticker["bid"])) == Decimal("0.01")
    book = await client.fetch_order_book(SYMBOL, 5)
    assert Decimal(str(book["bids"][0][0])) == last
    assert Decimal(str(book["asks"][0][0])) == last + Decimal("0.01")
    trades = await client.fetch_trades(SYMBOL, limit=8)
    assert len(trades) == 8 and trades[-1]["timestamp"] <= START_MS


async def test_signatures_keys_and_timestamps_are_checked(venue: Venue, make_client: Any) -> None:
    wrong_secret = make_client(secret="not-the-secret")
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        await wrong_secret.fetch_balance()
    unknown_key = make_client(apiKey="nobody")
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        await unknown_key.fetch_balance()
    stale = make_client()
    stale.milliseconds = lambda: int(time.time() * 1000) - 3_600_000  # an hour-old clock
    with pytest.raises(ccxt.InvalidNonce, match="-1021"):
        await stale.fetch_balance()
    assert balances(venue) == {"USDT": (Decimal(10_000), Decimal(0))}  # nothing changed


async def test_market_buy_then_sell_move_balances_exactly(venue: Venue, client: Any) -> None:
    last = venue.market.last_price(SYMBOL, START_MS)
    assert last is not None
    ask = last + Decimal("0.01")
    order = await client.create_order(
        SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "b-1"}
    )
    assert order["status"] == "closed" and order["clientOrderId"] == "b-1"
    assert Decimal(str(order["average"])) == ask
    cost = ask * Decimal("0.01")
    assert Decimal(str(order["fee"]["cost"])) == cost * FEE
    assert balances(venue) == {
        "USDT": (Decimal(10_000) - cost - cost * FEE, Decimal(0)),
        "BTC": (Decimal("0.01"), Decimal(0)),
    }
    balance = await client.fetch_balance()
    assert Decimal(str(balance["USDT"]["free"])) == Decimal(10_000) - cost * (1 + FEE)
    await venue.advance(step=2)
    price = venue.market.last_price(SYMBOL, venue.clock.now_ms())
    assert price is not None
    sell = await client.create_order(
        SYMBOL, "market", "sell", 0.01, params={"clientOrderId": "s-1"}
    )
    assert Decimal(str(sell["average"])) == price  # the best bid
    proceeds = price * Decimal("0.01")
    free_usdt, _ = balances(venue)["USDT"]
    assert free_usdt == Decimal(10_000) - cost * (1 + FEE) + proceeds - proceeds * FEE
    assert balances(venue)["BTC"] == (Decimal(0), Decimal(0))
    mine = await client.fetch_my_trades(SYMBOL)
    assert [t["side"] for t in mine] == ["buy", "sell"]
    assert [t["order"] for t in mine] == [order["id"], sell["id"]]
    assert len(books(venue)["trades"]) == 2


async def test_limit_rests_then_fills_when_the_replay_crosses_it(venue: Venue, client: Any) -> None:
    frame = sample_frames()[SYMBOL]
    now = venue.clock.now_ms()
    last = venue.market.last_price(SYMBOL, now)
    assert last is not None
    ts = frame["timestamp"].to_numpy() + venue.market.shift_ms
    nxt = int((ts <= now).sum())  # the first candle after the forming one
    lows = frame["low"].to_numpy()[nxt : nxt + 30]
    target = Decimal(repr(float(lows.min()))) + Decimal("0.5")  # crossed by the lowest candle
    assert target < last
    crossing = nxt + int(
        next(k for k, low in enumerate(lows) if Decimal(repr(float(low))) < target)
    )
    order = await client.create_order(
        SYMBOL, "limit", "buy", 0.002, float(target), params={"clientOrderId": "lim-1"}
    )
    assert order["status"] == "open" and order["filled"] == 0
    reserved = target * Decimal("0.002") * (1 + FEE)
    assert balances(venue)["USDT"] == (Decimal(10_000) - reserved, reserved)
    assert [o["id"] for o in await client.fetch_open_orders(SYMBOL)] == [order["id"]]
    await venue.advance(to=int(ts[crossing]))  # up to the crossing candle's open: not yet
    assert (await client.fetch_order(order["id"], SYMBOL))["status"] == "open"
    await venue.advance(to=int(ts[crossing]) + 300_000)
    done = await client.fetch_order(None, SYMBOL, {"clientOrderId": "lim-1"})
    assert done["status"] == "closed" and Decimal(str(done["average"])) == target
    trade = (await client.fetch_my_trades(SYMBOL))[-1]
    assert ts[crossing] <= trade["timestamp"] < ts[crossing] + 300_000
    assert trade["takerOrMaker"] == "maker"
    cost = target * Decimal("0.002")
    assert balances(venue)["USDT"] == (Decimal(10_000) - cost - cost * FEE, Decimal(0))
    assert await client.fetch_open_orders(SYMBOL) == []


async def test_cancel_and_fetch_by_either_id(venue: Venue, client: Any) -> None:
    last = venue.market.last_price(SYMBOL, START_MS)
    assert last is not None
    order = await client.create_order(
        SYMBOL, "limit", "buy", 0.001, float(last - 1000), params={"clientOrderId": "c-1"}
    )
    canceled = await client.cancel_order(order["id"], SYMBOL)
    assert canceled["status"] == "canceled"
    assert (await client.fetch_order(None, SYMBOL, {"clientOrderId": "c-1"}))[
        "status"
    ] == "canceled"
    assert balances(venue)["USDT"] == (Decimal(10_000), Decimal(0))
    with pytest.raises(ccxt.OrderNotFound):
        await client.cancel_order(order["id"], SYMBOL)  # -2011: already finished
    with pytest.raises(ccxt.OrderNotFound):
        await client.fetch_order("999", SYMBOL)


async def test_duplicate_client_ids_filters_and_funds_are_refused(
    venue: Venue, client: Any
) -> None:
    # like Binance, a client id is unique among OPEN orders: refused while its order rests...
    await client.create_order(SYMBOL, "limit", "buy", 0.001, 10_000, {"clientOrderId": "dup-1"})
    before = books(venue)
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        await client.create_order(SYMBOL, "market", "buy", 0.001, params={"clientOrderId": "dup-1"})
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):  # 0.0001 BTC ≈ 1.7 USDT < 5
        await client.create_order(SYMBOL, "market", "buy", 0.0001)
    with pytest.raises(ccxt.InsufficientFunds):
        await client.create_order(SYMBOL, "market", "buy", 5)
    # raw requests that ccxt would have rounded: Binance's filters refuse them
    base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        await client.privatePostOrder({**base, "quantity": "0.000015", "price": "16000.00"})
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        await client.privatePostOrder({**base, "quantity": "0.001", "price": "16000.005"})
    with pytest.raises(ccxt.BadRequest, match="-1100"):
        await client.privatePostOrder(
            {**base, "quantity": "0.001", "price": "16000", "newClientOrderId": "bad id!"}
        )
    assert books(venue) == before  # refusals change nothing
    # ...and free again once it is closed: the id then names the new order
    await client.cancel_order(None, SYMBOL, {"clientOrderId": "dup-1"})
    again = await client.create_order(
        SYMBOL, "market", "buy", 0.001, params={"clientOrderId": "dup-1"}
    )
    assert again["status"] == "closed"
    found = await client.fetch_order(None, SYMBOL, {"clientOrderId": "dup-1"})
    assert found["id"] == again["id"]
