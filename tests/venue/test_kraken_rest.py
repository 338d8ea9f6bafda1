"""A real ccxt.pro.kraken against the venue's Kraken REST API: markets in Kraken's names, OHLC,
ticker, book, trades-based history, signatures and nonces, orders matched with Kraken's fees and
precision, exact balances, and the 50-a-page ClosedOrders / TradesHistory."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro as ccxt_pro
import pytest

from kmg_autotrader.exchange.adapter import ExchangeAdapter
from kmg_autotrader.exchange.capabilities import HistoryPath
from kmg_autotrader.exchange.urls import api_url_overrides, apply_url_overrides
from kmg_autotrader.venue import AccountSpec, FaultPlan, Venue, VenueError
from kmg_autotrader.venue.kraken import (
    _seconds,
    order_txid,
    paper_order_id,
    paper_trade_id,
    trade_txid,
)
from tests.venue.conftest import START_MS, make_venue, sample_frames

SYMBOL = "BTC/USDT"
TAKER = Decimal("0.004")  # the AssetPairs snapshot's first tier
MAKER = Decimal("0.0025")
STEP = 300_000
KR_KEY = "kraken-venue-test-key"
KR_SECRET = base64.b64encode(bytes(range(64))).decode()  # Kraken secrets are base64


def kraken_venue(**kwargs: Any) -> Venue:
    """A Kraken venue over the bundled sample (manual clock, fixed start, one account)."""
    kwargs.setdefault("accounts", [AccountSpec(KR_KEY, KR_SECRET)])
    return make_venue(exchange="kraken", **kwargs)


def kraken_client(venue: Venue, **config: Any) -> Any:
    """A real ``ccxt.pro.kraken`` pointed at ``venue`` (no client-side throttling)."""
    settings = {
        "apiKey": KR_KEY,
        "secret": KR_SECRET,
        "timeout": 3000,
        "enableRateLimit": False,
        **config,
    }
    client = ccxt_pro.kraken(settings)
    apply_url_overrides(client, venue.base_url)
    return client


def kraken_adapter(venue: Venue) -> ExchangeAdapter:
    """The bot's own adapter on the venue (its stream clients get the same URLs)."""
    urls = api_url_overrides(ccxt_pro.kraken().urls["api"], venue.base_url)
    return ExchangeAdapter(
        "kraken",
        api_key=KR_KEY,
        secret=KR_SECRET,
        config={"urls": {"api": urls}, "enableRateLimit": False, "timeout": 3000},
    )


@contextlib.asynccontextmanager
async def running_kraken_venue(**kwargs: Any) -> AsyncIterator[Venue]:
    """A started Kraken venue on port 0 (speed 0, btc-usdt sample as XBTUSDT)."""
    kwargs.setdefault("faults", FaultPlan())
    venue = kraken_venue(**kwargs)
    await venue.start(0)
    try:
        yield venue
    finally:
        await venue.stop()


@contextlib.asynccontextmanager
async def loaded_kraken_client(venue: Venue, **config: Any) -> AsyncIterator[Any]:
    """A real ccxt.pro.kraken of the venue's account, markets loaded, closed at the end."""
    client = kraken_client(venue, **config)
    try:
        await client.load_markets()
        yield client
    finally:
        await client.close()


@pytest.fixture
async def kvenue() -> AsyncIterator[Venue]:
    """A started Kraken venue."""
    async with running_kraken_venue() as venue:
        yield venue


@pytest.fixture
async def kclient(kvenue: Venue) -> AsyncIterator[Any]:
    """A ccxt.pro.kraken of the venue's account, markets loaded."""
    async with loaded_kraken_client(kvenue) as client:
        yield client


def book_balances(venue: Venue) -> dict[str, tuple[Decimal, Decimal]]:
    """(free, used) per currency from the venue's books: the truth."""
    return {
        c: (Decimal(v["free"]), Decimal(v["used"]))
        for c, v in venue.books(KR_KEY)["balances"].items()
    }


async def kraken_balances(client: Any) -> dict[str, tuple[Decimal, Decimal]]:
    """(balance, hold_trade) per Kraken asset id, exactly as BalanceEx printed them."""
    raw = (await client.fetch_balance())["info"]["result"]
    return {k: (Decimal(v["balance"]), Decimal(v["hold_trade"])) for k, v in raw.items()}


# ---- ids and times -------------------------------------------------------------------------


def test_txids_look_like_krakens_and_decode_back() -> None:
    seen = set()
    for n in (1, 2, 3, 999, 10**9):
        txid = order_txid(f"P{n}")
        assert len(txid) == 19 and txid[0] == "O" and txid[6] == txid[12] == "-"
        assert paper_order_id(txid) == f"P{n}"
        seen.add(txid)
        trade = trade_txid(f"P{n}-7")
        assert trade[0] == "T" and paper_trade_id(trade) == f"P{n}-7"
    assert len(seen) == 5
    assert paper_order_id("not-a-txid") is None and paper_trade_id(order_txid("P1")) is None
    # ccxt reads float seconds with int(float(x) * 1000): every ms must come back exactly
    for ms in range(START_MS, START_MS + 5000, 7):
        assert int(_seconds(ms) * 1000) == ms


# ---- public --------------------------------------------------------------------------------


async def test_markets_and_currencies_in_krakens_names(kvenue: Venue, kclient: Any) -> None:
    market = kclient.market(SYMBOL)
    assert market["id"] == "XBTUSDT" and market["altname"] == "XBTUSDT"
    assert market["base"] == "BTC" and market["quote"] == "USDT"
    assert market["precision"] == {"amount": 1e-08, "price": 0.1}
    assert market["limits"]["amount"]["min"] == 5e-05
    assert market["limits"]["cost"]["min"] == 0.5
    assert (market["taker"], market["maker"]) == (0.004, 0.0025)
    assert kclient.currencies["BTC"]["id"] == "XXBT"
    assert kvenue.rules[SYMBOL].taker_fee == TAKER and kvenue.rules[SYMBOL].maker_fee == MAKER
    assert kvenue.requests["GET /0/public/AssetPairs"] == 1
    assert kvenue.requests["GET /0/public/Assets"] == 1
    assert await kclient.fetch_time() == START_MS // 1000 * 1000
    assert (await kclient.fetch_status())["status"] == "ok"


def test_a_symbol_without_kraken_rules_is_refused_at_start() -> None:
    frames = {"ETH/USDT": sample_frames()[SYMBOL]}
    with pytest.raises(VenueError, match="no Kraken market rules for ETH/USDT"):
        kraken_venue(data=frames)


async def test_ohlc_is_the_most_recent_720_candles(kvenue: Venue, kclient: Any) -> None:
    await kvenue.advance(ms=100_000)
    now = kvenue.clock.now_ms()
    truth = kvenue.market.visible(SYMBOL, "5m", now, limit=720)
    rows = await kclient.fetch_ohlcv(SYMBOL, "5m")
    assert len(rows) == 720
    assert [r[0] for r in rows] == [c.ts for c in truth]
    assert [r[1:5] for r in rows] == [[c.open, c.high, c.low, c.close] for c in truth]
    assert [r[5] for r in rows[:-1]] == [c.volume for c in truth[:-1]]
    assert rows[-1][0] <= now < rows[-1][0] + STEP  # the forming candle, partial
    assert rows[-1][5] == pytest.approx(truth[-1].volume, abs=1e-8)
    # ``since`` older than 720 candles still gives only the latest 720 (Kraken's limit)
    old = await kclient.fetch_ohlcv(SYMBOL, "5m", since=truth[0].ts - 100 * STEP)
    assert old[0][0] == truth[0].ts
    recent = await kclient.fetch_ohlcv(SYMBOL, "5m", since=truth[-10].ts)
    assert [r[0] for r in recent] == [c.ts for c in truth[-10:]]
    hours = await kclient.fetch_ohlcv(SYMBOL, "1h")
    truth_h = kvenue.market.visible(SYMBOL, "1h", now, limit=720)
    assert [r[:5] for r in hours[:-1]] == [
        [c.ts, c.open, c.high, c.low, c.close] for c in truth_h[:-1]
    ]
    raw = await kclient.publicGetOHLC({"pair": "XBTUSDT", "interval": 5})
    assert raw["result"]["last"] == truth[-2].ts // 1000  # the last closed candle
    with pytest.raises(ccxt.ExchangeError, match="EGeneral:Invalid arguments:interval"):
        await kclient.fetch_ohlcv(SYMBOL, "1m")  # finer than the venue's 5m data


async def test_ticker_and_book_follow_the_replayed_price(kvenue: Venue, kclient: Any) -> None:
    await kvenue.advance(ms=120_000)
    now = kvenue.clock.now_ms()
    last = kvenue.market.last_price(SYMBOL, now)
    assert last is not None
    ticker = await kclient.fetch_ticker(SYMBOL)
    assert Decimal(str(ticker["last"])) == last
    assert Decimal(str(ticker["bid"])) == last
    assert Decimal(str(ticker["ask"])) == last + Decimal("0.1")
    day = kvenue.market.visible(SYMBOL, "5m", now, since=now - 86_400_000 + 1)
    assert ticker["high"] == max(c.high for c in day)
    assert ticker["low"] == min(c.low for c in day)
    book = await kclient.fetch_order_book(SYMBOL, 10)
    assert len(book["bids"]) == len(book["asks"]) == 10
    assert Decimal(str(book["bids"][0][0])) == last
    assert Decimal(str(book["asks"][0][0])) == last + Decimal("0.1")
    with pytest.raises(ccxt.ExchangeError, match="EQuery:Unknown asset pair"):
        await kclient.publicGetTicker({"pair": "XBTEUR"})
    with pytest.raises(ccxt.ExchangeError, match="EGeneral:Unknown method"):
        await kclient.publicGetSpread({"pair": "XBTUSDT"})  # a method the venue does not serve


async def test_history_beyond_720_candles_comes_from_trades_and_aggregates_back(
    kvenue: Venue, tmp_path: Path
) -> None:
    """The bot's own HistoryDownloader pages Trades with Kraken's nanosecond ``last`` cursor
    and rebuilds the candles: they are the venue's candles."""
    from kmg_autotrader.collector.history import HistoryDownloader
    from kmg_autotrader.storage.candle_store import CandleStore

    now = kvenue.clock.now_ms()
    since = (now // STEP - 900) * STEP
    adapter = kraken_adapter(kvenue)
    try:
        store = CandleStore(tmp_path)
        result = await HistoryDownloader(adapter, store, clock=kvenue.clock.now_ms).download(
            SYMBOL, "5m", since
        )
    finally:
        await adapter.close()
    assert result.path is HistoryPath.TRADES
    assert kvenue.requests["GET /0/public/Trades"] >= 4  # 3,600 trades, 1,000 a page
    stored = store.read("kraken", SYMBOL, "5m")
    truth = [c for c in kvenue.market.visible(SYMBOL, "5m", now, since=since) if c.ts + STEP <= now]
    assert len(truth) == 900 and len(stored) == 900
    assert stored["timestamp"].tolist() == [c.ts for c in truth]
    for col, attr in (("open", "open"), ("high", "high"), ("low", "low"), ("close", "close")):
        assert stored[col].tolist() == [getattr(c, attr) for c in truth]
    # the volume is split in 8-decimal trades that the bot adds back as floats: exact here too
    assert stored["volume"].tolist() == [c.volume for c in truth]


async def test_trades_pages_follow_the_nanosecond_cursor(kvenue: Venue, kclient: Any) -> None:
    now = kvenue.clock.now_ms()
    since = now - 600 * STEP
    first = await kclient.fetch_trades(SYMBOL, since=since)
    assert len(first) == 1000
    cursor = first[-1]["info"][-1]  # ccxt appends Kraken's ``last`` to the last raw row
    assert int(cursor) // 1_000_000 == first[-1]["timestamp"]
    second = await kclient.fetch_trades(SYMBOL, params={"since": cursor})
    assert second[0]["id"] == first[-1]["id"]  # inclusive: the cursor's trade comes again
    ids = [int(t["id"]) for t in first + second[1:]]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # nothing lost, nothing repeated
    stamps = [t["timestamp"] for t in first]
    assert stamps == sorted(stamps)


# ---- signatures and nonces -----------------------------------------------------------------


async def test_bad_key_signature_and_old_nonce_are_refused(kvenue: Venue, kclient: Any) -> None:
    wrong_key = kraken_client(kvenue, apiKey="no-such-key")
    wrong_secret = kraken_client(kvenue, secret=base64.b64encode(b"x" * 64).decode())
    stale = kraken_client(kvenue)
    try:
        with pytest.raises(ccxt.AuthenticationError, match="EAPI:Invalid key"):
            await wrong_key.fetch_balance()
        with pytest.raises(ccxt.ExchangeError, match="EAPI:Invalid signature"):
            await wrong_secret.fetch_balance()
        await kclient.fetch_balance()  # nonce = now in ms
        stale.markets, stale.markets_by_id = kclient.markets, kclient.markets_by_id
        stale.nonce = lambda: 1  # a nonce below the key's last one
        with pytest.raises(ccxt.InvalidNonce, match="EAPI:Invalid nonce"):
            await stale.create_order(SYMBOL, "market", "buy", 0.001)
    finally:
        for ex in (wrong_key, wrong_secret, stale):
            await ex.close()
    assert kvenue.books(KR_KEY)["orders"] == []  # nothing refused was placed
    await kclient.fetch_balance()  # the good client's nonces still go up


# ---- orders --------------------------------------------------------------------------------


async def test_market_order_fills_at_the_ask_with_the_taker_fee(
    kvenue: Venue, kclient: Any
) -> None:
    last = kvenue.market.last_price(SYMBOL, kvenue.clock.now_ms())
    assert last is not None
    placed = await kclient.create_order(
        SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "kr-buy-1"}
    )
    assert placed["id"][0] == "O" and placed["info"]["descr"]["order"] == (
        "buy 0.01000000 XBTUSDT @ market"
    )
    order = await kclient.fetch_order(placed["id"])
    ask = last + Decimal("0.1")
    cost = Decimal("0.01") * ask
    assert order["status"] == "closed" and order["clientOrderId"] == "kr-buy-1"
    assert Decimal(order["info"]["vol_exec"]) == Decimal("0.01")
    assert Decimal(order["info"]["price"]) == ask
    assert Decimal(order["info"]["fee"]) == cost * TAKER
    assert order["fee"]["currency"] == "USDT"
    balances = await kraken_balances(kclient)
    assert balances == {
        "USDT": (Decimal(10_000) - cost - cost * TAKER, Decimal(0)),
        "XXBT": (Decimal("0.01"), Decimal(0)),
    }
    truth = book_balances(kvenue)
    assert balances["USDT"][0] == sum(truth["USDT"]) and balances["XXBT"][0] == sum(truth["BTC"])
    trades = await kclient.fetch_my_trades(SYMBOL)
    assert len(trades) == 1 and trades[0]["takerOrMaker"] == "taker"
    assert trades[0]["order"] == placed["id"] and Decimal(trades[0]["info"]["fee"]) == cost * TAKER
    found = await kclient.fetch_open_orders(SYMBOL, params={"clientOrderId": "kr-buy-1"})
    assert found == []
    closed = await kclient.fetch_closed_orders(SYMBOL, params={"clientOrderId": "kr-buy-1"})
    assert [o["id"] for o in closed] == [placed["id"]]


async def test_resting_limit_holds_funds_then_fills_as_maker(kvenue: Venue, kclient: Any) -> None:
    await kclient.create_order(SYMBOL, "market", "buy", 0.01)
    now = kvenue.clock.now_ms()
    last = kvenue.market.last_price(SYMBOL, now)
    assert last is not None
    # a sell above the price that a coming candle (one not opened yet) trades through
    ahead = kvenue.market.base_candles(SYMBOL, now, now + 48 * STEP)
    hit = next(c for c in ahead if c.ts > now and Decimal(repr(c.high)) > last + Decimal("0.5"))
    price = last + Decimal("0.3")
    placed = await kclient.create_order(
        SYMBOL, "limit", "sell", 0.005, float(price), {"postOnly": True, "clientOrderId": "kr-s-1"}
    )
    opened = await kclient.fetch_open_orders(SYMBOL)
    assert [o["id"] for o in opened] == [placed["id"]]
    assert opened[0]["postOnly"] is True and opened[0]["price"] == float(price)
    assert (await kraken_balances(kclient))["XXBT"] == (Decimal("0.01"), Decimal("0.005"))
    await kvenue.advance(to=hit.ts + STEP)
    order = await kclient.fetch_order(placed["id"])
    assert order["status"] == "closed" and order["filled"] == 0.005
    proceeds = Decimal("0.005") * price
    assert Decimal(order["info"]["fee"]) == proceeds * MAKER
    trade = [t for t in await kclient.fetch_my_trades(SYMBOL) if t["order"] == placed["id"]]
    assert len(trade) == 1 and trade[0]["takerOrMaker"] == "maker"
    assert (await kraken_balances(kclient))["XXBT"] == (Decimal("0.005"), Decimal(0))
    books = book_balances(kvenue)
    assert (await kraken_balances(kclient))["USDT"][0] == sum(books["USDT"])


async def test_cancel_and_ioc(kvenue: Venue, kclient: Any) -> None:
    placed = await kclient.create_order(SYMBOL, "limit", "buy", 0.001, 10_000.0)
    assert (await kraken_balances(kclient))["USDT"][1] == Decimal("0.001") * 10_000 * (1 + TAKER)
    await kclient.cancel_order(placed["id"])
    order = await kclient.fetch_order(placed["id"])
    assert order["status"] == "canceled" and order["info"]["reason"] == "User requested"
    assert (await kraken_balances(kclient))["USDT"] == (Decimal(10_000), Decimal(0))
    with pytest.raises(ccxt.OrderNotFound, match="EOrder:Unknown order"):
        await kclient.cancel_order(placed["id"])
    ioc = await kclient.create_order(
        SYMBOL, "limit", "buy", 0.001, 10_000.0, {"timeInForce": "IOC"}
    )
    assert (await kclient.fetch_order(ioc["id"]))["status"] == "expired"
    by_client = await kclient.create_order(
        SYMBOL, "limit", "buy", 0.001, 10_000.0, {"clientOrderId": "kr-c-9"}
    )
    await kclient.cancel_order(None, SYMBOL, {"clientOrderId": "kr-c-9"})
    assert (await kclient.fetch_order(by_client["id"]))["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        await kclient.fetch_order(order_txid("P999"))  # well formed, unknown
    with pytest.raises(ccxt.InvalidOrder, match="EOrder:Invalid order"):
        await kclient.fetch_order("garbage")


async def test_refusals_in_krakens_words_change_nothing(kvenue: Venue, kclient: Any) -> None:
    last = kvenue.market.last_price(SYMBOL, kvenue.clock.now_ms())
    assert last is not None
    await kclient.create_order(SYMBOL, "limit", "buy", 0.001, 10_000.0, {"clientOrderId": "dup"})
    before = kvenue.books(KR_KEY)
    cases: list[tuple[type[Exception], str, Any]] = [
        (
            ccxt.InvalidOrder,
            "EOrder:Order minimum not met",
            kclient.create_order(SYMBOL, "market", "buy", 0.00001),
        ),
        (
            ccxt.ExchangeError,
            "EOrder:Cost minimum not met",
            kclient.create_order(SYMBOL, "limit", "buy", 0.0001, 1000.0),
        ),
        (
            ccxt.InsufficientFunds,
            "EOrder:Insufficient funds",
            kclient.create_order(SYMBOL, "market", "buy", 10),
        ),
        (
            ccxt.InsufficientFunds,
            "EOrder:Insufficient funds",
            kclient.create_order(SYMBOL, "market", "sell", 0.01),
        ),
        (
            ccxt.ExchangeError,
            "EOrder:Duplicate order",
            kclient.create_order(SYMBOL, "limit", "buy", 0.001, 10_000.0, {"clientOrderId": "dup"}),
        ),
        (
            ccxt.ExchangeError,
            "EOrder:Post only order",
            kclient.create_order(
                SYMBOL, "limit", "buy", 0.001, float(last + 5), {"postOnly": True}
            ),
        ),
        (
            ccxt.ExchangeError,
            "EOrder:Invalid price:XBTUSDT price can only be specified up to 1 d",
            kclient.privatePostAddOrder(
                {
                    "pair": "XBTUSDT",
                    "type": "buy",
                    "ordertype": "limit",
                    "volume": "0.001",
                    "price": "10000.05",
                }
            ),
        ),
        (
            ccxt.InvalidOrder,
            "EGeneral:Invalid arguments:volume",
            kclient.privatePostAddOrder(
                {"pair": "XBTUSDT", "type": "buy", "ordertype": "market", "volume": "0.000100001"}
            ),
        ),
        (
            ccxt.ExchangeError,
            "EGeneral:Invalid arguments:ordertype",
            kclient.privatePostAddOrder(
                {
                    "pair": "XBTUSDT",
                    "type": "sell",
                    "ordertype": "stop-loss",
                    "volume": "0.001",
                    "price": "10000",
                }
            ),
        ),
    ]
    for kind, text, call in cases:
        with pytest.raises(kind, match=text):
            await call
    validated = await kclient.privatePostAddOrder(
        {
            "pair": "XBTUSDT",
            "type": "buy",
            "ordertype": "limit",
            "volume": "0.001",
            "price": "10000.0",
            "validate": "true",
        }
    )
    assert validated["result"] == {"descr": {"order": "buy 0.00100000 XBTUSDT @ limit 10000.0"}}
    after = kvenue.books(KR_KEY)
    assert (after["orders"], after["trades"]) == (before["orders"], before["trades"])
    assert book_balances(kvenue)["USDT"] == (Decimal("9989.96"), Decimal("10.04"))


async def test_market_buy_by_cost_uses_viqc(kvenue: Venue, kclient: Any) -> None:
    last = kvenue.market.last_price(SYMBOL, kvenue.clock.now_ms())
    assert last is not None
    placed = await kclient.create_market_buy_order_with_cost(SYMBOL, 50)
    order = await kclient.fetch_order(placed["id"])
    expected = (Decimal(50) / (last + Decimal("0.1"))).quantize(Decimal("1e-8"), "ROUND_DOWN")
    assert Decimal(order["info"]["vol_exec"]) == expected


async def test_closed_orders_and_trades_history_page_50_at_a_time(
    kvenue: Venue, kclient: Any
) -> None:
    for i in range(55):
        await kclient.create_order(
            SYMBOL, "market", "buy", 0.0001, params={"clientOrderId": f"kr-p-{i}"}
        )
    truth = {order_txid(o["id"]) for o in kvenue.books(KR_KEY)["orders"]}
    assert len(truth) == 55
    first = (await kclient.privatePostClosedOrders({}))["result"]
    rest = (await kclient.privatePostClosedOrders({"ofs": 50}))["result"]
    assert first["count"] == rest["count"] == 55
    assert len(first["closed"]) == 50 and len(rest["closed"]) == 5
    assert set(first["closed"]) | set(rest["closed"]) == truth
    newest = await kclient.fetch_closed_orders(SYMBOL)  # what ccxt asks: the first page only
    assert len(newest) == 50 and newest[0]["clientOrderId"] == "kr-p-54"
    oldest = await kclient.fetch_closed_orders(SYMBOL, params={"ofs": 50})
    assert [o["clientOrderId"] for o in oldest] == [f"kr-p-{i}" for i in range(4, -1, -1)]
    one = await kclient.fetch_closed_orders(SYMBOL, params={"clientOrderId": "kr-p-3"})
    assert [o["clientOrderId"] for o in one] == ["kr-p-3"]
    trades = (await kclient.privatePostTradesHistory({}))["result"]
    more = (await kclient.privatePostTradesHistory({"ofs": 50}))["result"]
    assert trades["count"] == 55 and len(trades["trades"]) == 50 and len(more["trades"]) == 5
    mine = await kclient.fetch_my_trades(SYMBOL)
    assert len(mine) == 50
    assert {t["order"] for t in mine} | {t["ordertxid"] for t in more["trades"].values()} == truth
    by_id = await kclient.privatePostQueryTrades({"txid": ",".join(list(more["trades"])[:3])})
    assert set(by_id["result"]) == set(list(more["trades"])[:3])
