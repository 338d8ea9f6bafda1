"""Every fault kind on the Kraken venue, rendered in Kraken's format and seen by a real
ccxt.pro.kraken as the exception the bot maps (stream faults on the v2 socket)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt
import pytest

from kmg_autotrader.venue import Venue
from kmg_autotrader.venue.faults import parse_fault_spec
from kmg_autotrader.venue.kraken import order_txid
from tests.venue.test_kraken_rest import (
    KR_KEY,
    SYMBOL,
    kraken_client,
    loaded_kraken_client,
    running_kraken_venue,
)


@pytest.fixture
async def kvenue() -> AsyncIterator[Venue]:
    """A started Kraken venue (manual clock)."""
    async with running_kraken_venue() as venue:
        yield venue


@pytest.fixture
async def kclient(kvenue: Venue) -> AsyncIterator[Any]:
    """A ccxt.pro.kraken of the venue's account, markets loaded."""
    async with loaded_kraken_client(kvenue) as client:
        yield client


def orders(venue: Venue) -> list[dict[str, Any]]:
    return list(venue.books(KR_KEY)["orders"])


async def raw_get(venue: Venue, path: str) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as session, session.get(venue.base_url + path) as resp:
        return resp.status, dict(resp.headers), await resp.text()


async def test_rate_limit_and_lockout_in_krakens_words(kvenue: Venue, kclient: Any) -> None:
    kvenue.faults.add(parse_fault_spec("rate_limit:balance,retry_after=3"))
    with pytest.raises(ccxt.DDoSProtection, match="EAPI:Rate limit exceeded"):
        await kclient.fetch_balance()
    await kclient.fetch_balance()  # times=1
    kvenue.faults.add(parse_fault_spec("rate_limit:ticker"))
    status, headers, body = await raw_get(kvenue, "/0/public/Ticker?pair=XBTUSDT")
    assert status == 429 and headers["Retry-After"] == "1"
    assert json.loads(body) == {"error": ["EAPI:Rate limit exceeded"]}
    kvenue.faults.add(parse_fault_spec("ban,retry_after=30"))
    with pytest.raises(ccxt.DDoSProtection, match="EGeneral:Temporary lockout"):
        await kclient.fetch_ohlcv(SYMBOL, "5m")
    status, _, body = await raw_get(kvenue, "/0/public/Time")  # locked out for a while
    assert status == 200 and json.loads(body) == {"error": ["EGeneral:Temporary lockout"]}
    with pytest.raises(ccxt.DDoSProtection):
        await kclient.create_order(SYMBOL, "market", "buy", 0.001)
    assert orders(kvenue) == []
    kvenue.faults.clear()  # lifts the lockout
    await kclient.fetch_ticker(SYMBOL)


async def test_server_errors(kvenue: Venue, kclient: Any) -> None:
    expected = {
        500: (ccxt.ExchangeNotAvailable, "EGeneral:Internal error"),
        503: (ccxt.ExchangeNotAvailable, "EService:Unavailable"),
        502: (ccxt.ExchangeNotAvailable, "502"),  # Cloudflare's HTML page
        504: (ccxt.RequestTimeout, "504"),
    }
    for status, (kind, text) in expected.items():
        kvenue.faults.add(parse_fault_spec(f"server_error:ohlcv,status={status}"))
        with pytest.raises(kind, match=text):
            await kclient.fetch_ohlcv(SYMBOL, "5m")
    kvenue.faults.add(parse_fault_spec("server_error:ohlcv,status=502"))
    status, headers, body = await raw_get(kvenue, "/0/public/OHLC?pair=XBTUSDT&interval=5")
    assert status == 502 and headers["Content-Type"].startswith("text/html")
    assert "cloudflare" in body
    assert len(await kclient.fetch_ohlcv(SYMBOL, "5m")) == 720


async def test_latency_delays_the_answer(kvenue: Venue, kclient: Any) -> None:
    kvenue.faults.add(parse_fault_spec("latency:balance,delay=0.3"))
    began = time.monotonic()
    await kclient.fetch_balance()
    assert time.monotonic() - began >= 0.3
    began = time.monotonic()
    await kclient.fetch_balance()
    assert time.monotonic() - began < 0.3


async def test_timeout_after_accept_places_the_order(kvenue: Venue) -> None:
    async with loaded_kraken_client(kvenue, timeout=400) as ex:
        kvenue.faults.add(parse_fault_spec("timeout_after_accept,delay=1.0"))
        with pytest.raises(ccxt.RequestTimeout):
            await ex.create_order(SYMBOL, "market", "buy", 0.001, params={"clientOrderId": "t-1"})
        placed = [o for o in orders(kvenue) if o["client_order_id"] == "t-1"]
        assert len(placed) == 1 and placed[0]["status"] == "closed"  # ccxt gave up, not Kraken
        # the bot finds a Kraken order by its cl_ord_id in the order lists
        found = await ex.fetch_closed_orders(SYMBOL, params={"clientOrderId": "t-1"})
        assert [o["id"] for o in found] == [order_txid(placed[0]["id"])]
        kvenue.faults.add(parse_fault_spec("timeout_after_accept"))  # delay 0: dropped
        with pytest.raises(ccxt.NetworkError):
            await ex.create_order(SYMBOL, "limit", "buy", 0.001, 10_000.0, {"clientOrderId": "t-2"})
        assert [o["client_order_id"] for o in orders(kvenue)] == ["t-1", "t-2"]
        with pytest.raises(ccxt.ExchangeError, match="EOrder:Duplicate order"):  # blind retry
            await ex.create_order(SYMBOL, "limit", "buy", 0.001, 10_000.0, {"clientOrderId": "t-2"})
        assert len(orders(kvenue)) == 2


async def test_not_found_for_the_first_lookups(kvenue: Venue, kclient: Any) -> None:
    kvenue.faults.add(parse_fault_spec("not_found,lookups=3"))
    placed = await kclient.create_order(
        SYMBOL, "market", "buy", 0.001, params={"clientOrderId": "n-1"}
    )
    for _ in range(2):
        with pytest.raises(ccxt.OrderNotFound):
            await kclient.fetch_order(placed["id"])  # QueryOrders leaves it out
    hidden = await kclient.fetch_closed_orders(SYMBOL, params={"clientOrderId": "n-1"})
    assert hidden == []  # the third look-up, through the list
    assert (await kclient.fetch_order(placed["id"]))["status"] == "closed"
    assert kvenue.faults.counts["not_found_lookup"] == 3


async def test_partial_fill_now_rest_later(kvenue: Venue, kclient: Any) -> None:
    kvenue.faults.add(parse_fault_spec("partial_fill,fraction=0.5"))
    placed = await kclient.create_order(
        SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "p-1"}
    )
    order = await kclient.fetch_order(placed["id"])
    assert order["status"] == "open" and order["filled"] == 0.005
    await kvenue.advance(ms=1_000)  # the next tick fills the rest
    done = await kclient.fetch_order(placed["id"])
    assert done["status"] == "closed" and done["filled"] == 0.01
    assert len(done["trades"]) == 2 and len(await kclient.fetch_my_trades(SYMBOL)) == 2
    balance = (await kclient.fetch_balance())["info"]["result"]
    assert Decimal(balance["XXBT"]["balance"]) == Decimal("0.01")


async def test_restart_closes_sockets_and_keeps_books(kvenue: Venue, kclient: Any) -> None:
    await kclient.create_order(SYMBOL, "market", "buy", 0.002, params={"clientOrderId": "r-1"})
    before = kvenue.books(KR_KEY)
    await asyncio.wait_for(kclient.watch_ohlcv(SYMBOL, "5m"), 5)
    pending = asyncio.ensure_future(kclient.watch_ohlcv(SYMBOL, "5m"))
    await asyncio.sleep(0.1)
    kvenue.faults.add(parse_fault_spec("restart:balance"))
    with pytest.raises(ccxt.NetworkError):
        await kclient.fetch_balance()
    with pytest.raises(ccxt.NetworkError):
        await asyncio.wait_for(pending, 5)  # the stream was closed too
    for _ in range(50):
        await asyncio.sleep(0.05)
        if kvenue.restarts and kvenue.listening:
            break
    balance = (await kclient.fetch_balance())["info"]["result"]
    assert Decimal(balance["XXBT"]["balance"]) == Decimal("0.002")
    assert kvenue.books(KR_KEY) == before
    # nonces are per key and survive the restart: the client's keep going up
    again = kraken_client(kvenue)
    try:
        await again.fetch_balance()
    finally:
        await again.close()


async def _drain(ws: aiohttp.ClientWebSocketResponse, into: list[dict[str, Any]]) -> None:
    while True:
        try:
            msg = await ws.receive(timeout=0.15)
        except TimeoutError:
            return
        if msg.type != aiohttp.WSMsgType.TEXT:
            into.append({"closed": True})
            return
        into.append(json.loads(msg.data))


async def test_ws_duplicate_reorder_stall_and_drop_on_v2(kvenue: Venue) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{kvenue.ws_url}/v2") as ws,
    ):
        sub = {"channel": "ohlc", "symbol": [SYMBOL], "interval": 5, "snapshot": False}
        await ws.send_json({"method": "subscribe", "params": sub, "req_id": 1})
        await _drain(ws, [])
        got: list[dict[str, Any]] = []
        kvenue.faults.add(parse_fault_spec("ws_duplicate:ws"))
        await kvenue.advance(ms=60_000)  # one update, sent twice
        await _drain(ws, got)
        assert len(got) == 2 and got[0] == got[1] and got[0]["channel"] == "ohlc"
        got.clear()
        kvenue.faults.add(parse_fault_spec("ws_reorder:ws"))
        await kvenue.advance(ms=60_000)  # held back…
        await kvenue.advance(ms=60_000)  # …and sent after the next one
        await _drain(ws, got)
        closes = [m["data"][-1]["close"] for m in got]
        assert len(got) == 2
        assert closes[1] != closes[0] and got[1]["timestamp"] < got[0]["timestamp"]
        got.clear()
        kvenue.faults.add(parse_fault_spec("ws_stall:ws,delay=0.5"))
        await kvenue.advance(ms=60_000)
        await _drain(ws, got)
        assert got == [] and not ws.closed  # silent, yet open
        await asyncio.sleep(0.5)
        kvenue.faults.add(parse_fault_spec("ws_drop:ws"))
        await kvenue.advance(ms=60_000)
        await _drain(ws, got)
        assert got == [{"closed": True}]
    assert kvenue.dialect.hub.connections == []


async def test_ccxt_watch_reconnects_after_a_drop(kvenue: Venue, kclient: Any) -> None:
    await asyncio.wait_for(kclient.watch_ohlcv(SYMBOL, "5m"), 5)
    kvenue.faults.add(parse_fault_spec("ws_drop:ws"))
    pending = asyncio.ensure_future(kclient.watch_ohlcv(SYMBOL, "5m"))
    await kvenue.advance(step=1)
    with pytest.raises(ccxt.NetworkError):
        await asyncio.wait_for(pending, 5)
    rows = await asyncio.wait_for(kclient.watch_ohlcv(SYMBOL, "5m"), 5)  # a fresh snapshot
    assert rows[-1][0] == kvenue.clock.now_ms() // 300_000 * 300_000
    assert kvenue.dialect.hub.connects == 2


async def test_seeded_chaos_speaks_krakens_errors_and_places_what_it_acknowledges() -> None:
    """Under chaos every failure is a ccxt error the bot maps, and the books hold exactly the
    orders that were acknowledged plus those placed before their answer was lost."""
    from kmg_autotrader.venue import FaultPlan

    async with running_kraken_venue(faults=FaultPlan(chaos_seed=2, chaos_rate=0.35)) as venue:
        ex = kraken_client(venue, timeout=2000)
        failures: list[type[Exception]] = []
        acknowledged = 0
        try:
            for attempt in range(5):
                try:
                    await ex.load_markets()
                    break
                except ccxt.BaseError:
                    assert attempt < 4
            for n in range(30):
                try:
                    if n % 3 == 0:
                        await ex.create_order(
                            SYMBOL, "market", "buy", 0.0001, params={"clientOrderId": f"c-{n}"}
                        )
                        acknowledged += 1
                    elif n % 3 == 1:
                        await ex.fetch_ticker(SYMBOL)
                    else:
                        await ex.fetch_balance()
                except ccxt.BaseError as exc:
                    failures.append(type(exc))
        finally:
            await ex.close()
        kinds = [e.kind for e in venue.faults.events]
        assert {"rate_limit", "server_error", "timeout_after_accept"} <= set(kinds)
        assert all(issubclass(f, (ccxt.NetworkError, ccxt.ExchangeError)) for f in failures)
        assert any(issubclass(f, ccxt.DDoSProtection) for f in failures)  # rate limits
        assert len(orders(venue)) == acknowledged + kinds.count("timeout_after_accept")
