"""Every fault kind of the venue, observed by a real ccxt client (or a raw socket for the
stream faults), the control endpoint, restarts and seeded chaos."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt
import pytest

from kmg_autotrader.venue import FaultPlan, Venue, VenueClient
from kmg_autotrader.venue.faults import FaultError, parse_fault_spec
from tests.venue.conftest import TOKEN, binance_client, make_venue

SYMBOL = "BTC/USDT"


def orders(venue: Venue) -> list[dict[str, Any]]:
    return venue.books()["orders"]


async def test_latency_delays_the_answer(client: Any, control: VenueClient) -> None:
    await control.add_faults({"kind": "latency", "endpoint": "ticker", "delay": 0.3})
    began = time.monotonic()
    await client.fetch_ticker(SYMBOL)
    assert time.monotonic() - began >= 0.3
    began = time.monotonic()
    await client.fetch_ticker(SYMBOL)  # times=1: the next one is quick again
    assert time.monotonic() - began < 0.3


async def test_timeout_after_accept_places_the_order(venue: Venue, make_client: Any) -> None:
    ex = make_client(timeout=400)
    await ex.load_markets()
    await VenueClient(venue.base_url, TOKEN).add_faults(
        {"kind": "timeout_after_accept", "delay": 1.0}
    )
    with pytest.raises(ccxt.RequestTimeout):
        await ex.create_order(SYMBOL, "market", "buy", 0.001, params={"clientOrderId": "t-1"})
    placed = [o for o in orders(venue) if o["client_order_id"] == "t-1"]
    assert len(placed) == 1 and placed[0]["status"] == "closed"  # ccxt gave up, the venue did not
    found = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "t-1"})
    assert found["status"] == "closed"
    # delay 0: the connection is dropped without an answer
    venue.faults.add(parse_fault_spec("timeout_after_accept"))
    with pytest.raises(ccxt.NetworkError):
        await ex.create_order(SYMBOL, "market", "buy", 0.001, params={"clientOrderId": "t-2"})
    assert [o["client_order_id"] for o in orders(venue)] == ["t-1", "t-2"]
    # like Binance, the id of a filled order is free again: a blind retry trades twice
    await ex.create_order(SYMBOL, "market", "buy", 0.001, params={"clientOrderId": "t-2"})
    assert [o["client_order_id"] for o in orders(venue)] == ["t-1", "t-2", "t-2"]


async def test_not_found_for_the_first_lookups(venue: Venue, client: Any) -> None:
    venue.faults.add(parse_fault_spec("not_found,lookups=2"))
    order = await client.create_order(
        SYMBOL, "market", "buy", 0.001, params={"clientOrderId": "n-1"}
    )
    for _ in range(2):
        with pytest.raises(ccxt.OrderNotFound):
            await client.fetch_order(None, SYMBOL, {"clientOrderId": "n-1"})
    assert (await client.fetch_order(order["id"], SYMBOL))["status"] == "closed"
    assert venue.faults.counts["not_found_lookup"] == 2


async def test_rate_limit_and_ban_answer_with_retry_after(venue: Venue, client: Any) -> None:
    venue.faults.add(parse_fault_spec("rate_limit:balance,retry_after=3"))
    with pytest.raises(ccxt.DDoSProtection, match="429"):
        await client.fetch_balance()
    await client.fetch_balance()
    venue.faults.add(parse_fault_spec("ban,retry_after=30"))
    with pytest.raises(ccxt.DDoSProtection, match="418"):
        await client.fetch_ticker(SYMBOL)
    # the ban lasts: every request is refused
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{venue.base_url}/api/v3/time") as resp,
    ):
        assert resp.status == 418
        assert 1 <= int(resp.headers["Retry-After"]) <= 30
        assert (await resp.json())["code"] == -1003
    async with VenueClient(venue.base_url, TOKEN) as control:
        await control.clear_faults()  # lifts the ban
    await client.fetch_ticker(SYMBOL)
    assert venue.faults.counts["rate_limit"] == 1 and venue.faults.counts["ban"] == 1


async def test_server_errors(venue: Venue, client: Any) -> None:
    venue.faults.add(parse_fault_spec("server_error:ohlcv,status=503"))
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await client.fetch_ohlcv(SYMBOL, "5m", limit=2)
    venue.faults.add(parse_fault_spec("server_error:ohlcv,status=500"))
    with pytest.raises(ccxt.OperationFailed, match="-1001"):
        await client.fetch_ohlcv(SYMBOL, "5m", limit=2)
    assert len(await client.fetch_ohlcv(SYMBOL, "5m", limit=2)) == 2


async def test_partial_fill_now_rest_later(venue: Venue, client: Any) -> None:
    venue.faults.add(parse_fault_spec("partial_fill,fraction=0.5"))
    order = await client.create_order(
        SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "p-1"}
    )
    assert order["status"] == "open" and order["filled"] == 0.005
    assert len(venue.books()["trades"]) == 1
    await venue.advance(ms=1_000)  # the next tick fills the rest
    done = await client.fetch_order(order["id"], SYMBOL)
    assert done["status"] == "closed" and done["filled"] == 0.01
    trades = venue.books()["trades"]
    assert [Decimal(t["amount"]) for t in trades] == [Decimal("0.005"), Decimal("0.005")]
    assert Decimal(venue.books()["balances"]["BTC"]["free"]) == Decimal("0.01")


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


async def _kline_socket(venue: Venue, session: aiohttp.ClientSession) -> Any:
    ws = await session.ws_connect(f"{venue.ws_url}/ws/0")
    await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@kline_5m"], "id": 1})
    await _drain(ws, [])
    return ws


async def test_ws_duplicate_and_reorder(venue: Venue) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await _kline_socket(venue, session)
        got: list[dict[str, Any]] = []
        venue.faults.add(parse_fault_spec("ws_duplicate:ws"))
        await venue.advance(ms=60_000)  # one forming update, sent twice
        await _drain(ws, got)
        assert len(got) == 2 and got[0] == got[1]
        got.clear()
        venue.faults.add(parse_fault_spec("ws_reorder:ws"))
        await venue.advance(step=1)  # final of this candle, then the next one's first update
        await _drain(ws, got)
        times = [m["k"]["t"] for m in got]
        assert len(got) == 2 and times[0] > times[1]  # swapped: the final arrives second
        assert got[1]["k"]["x"] is True
        await ws.close()


async def test_ws_stall_then_drop(venue: Venue) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await _kline_socket(venue, session)
        got: list[dict[str, Any]] = []
        venue.faults.add(parse_fault_spec("ws_stall:ws,delay=0.6"))
        await venue.advance(step=1)
        await venue.advance(step=1)
        await _drain(ws, got)
        assert got == []  # silent, yet open
        assert not ws.closed
        await asyncio.sleep(0.6)
        await venue.advance(step=1)
        await _drain(ws, got)
        assert got and "k" in got[0]
        venue.faults.add(parse_fault_spec("ws_drop:ws"))
        await venue.advance(step=1)
        got.clear()
        await _drain(ws, got)
        assert got == [{"closed": True}]
        assert venue.dialect.hub.connections == []


async def test_ccxt_watch_survives_a_ws_drop(venue: Venue, client: Any) -> None:
    await asyncio.wait_for(client.watch_ohlcv(SYMBOL, "5m"), 5)
    venue.faults.add(parse_fault_spec("ws_drop:ws"))
    pending = asyncio.ensure_future(client.watch_ohlcv(SYMBOL, "5m"))
    await venue.advance(step=1)
    with pytest.raises(ccxt.NetworkError):
        await asyncio.wait_for(pending, 5)
    again = asyncio.ensure_future(client.watch_ohlcv(SYMBOL, "5m"))  # ccxt reconnects
    await asyncio.sleep(0.3)
    await venue.advance(step=1)
    assert await asyncio.wait_for(again, 5)
    assert venue.dialect.hub.connects == 2


async def test_restart_closes_sockets_and_keeps_books(venue: Venue, client: Any) -> None:
    await client.create_order(SYMBOL, "market", "buy", 0.002, params={"clientOrderId": "r-1"})
    before = venue.books()
    watch = asyncio.ensure_future(client.watch_ohlcv(SYMBOL, "5m"))
    await asyncio.wait_for(watch, 5)
    pending = asyncio.ensure_future(client.watch_ohlcv(SYMBOL, "5m"))
    await asyncio.sleep(0.1)
    venue.faults.add(parse_fault_spec("restart:balance"))
    with pytest.raises(ccxt.NetworkError):
        await client.fetch_balance()
    with pytest.raises(ccxt.NetworkError):
        await asyncio.wait_for(pending, 5)  # the stream was closed too
    for _ in range(50):  # the venue listens again on the same port
        await asyncio.sleep(0.05)
        if venue.restarts and venue.listening:
            break
    balance = await client.fetch_balance()
    assert Decimal(str(balance["BTC"]["total"])) == Decimal("0.002")
    assert venue.books() == before and venue.restarts == 1


async def test_control_endpoint_checks_token_and_input(venue: Venue) -> None:
    async with VenueClient(venue.base_url, "wrong-token") as bad:
        with pytest.raises(Exception, match="401"):
            await bad.state()
    async with VenueClient(venue.base_url, TOKEN) as control:
        with pytest.raises(Exception, match="unknown fault kind 'meteor'"):
            await control.add_faults({"kind": "latency"}, {"kind": "meteor"})
        assert venue.faults.faults == []  # all or nothing
        added = await control.add_faults({"kind": "rate_limit", "endpoint": "ticker", "times": 2})
        assert added[0]["id"] >= 1
        state = await control.state()
        assert state["symbols"][SYMBOL]["last"] and state["accounts"]
        now = await control.advance(step=2)
        assert now == venue.clock.now_ms() and now % 300_000 == 0
        assert (await control.faults())["queued"][0]["times"] == 2
        assert await control.clear_faults() == 1
        await control.restart()
        for _ in range(40):
            await asyncio.sleep(0.05)
            if venue.restarts == 1 and venue.listening:
                break
        assert (await control.state())["restarts"] == 1  # listening again, same port
    with pytest.raises(FaultError, match="applies to create_order only"):
        parse_fault_spec("partial_fill:ticker")


async def _chaos_run(seed: int) -> list[tuple[str, str]]:
    v = make_venue(faults=FaultPlan(chaos_seed=seed, chaos_rate=0.3))
    await v.start(0)
    ex = binance_client(v, timeout=2000)
    try:
        for attempt in range(5):
            try:
                await ex.load_markets()
                break
            except ccxt.BaseError:
                assert attempt < 4
        for n in range(24):
            try:
                if n % 3 == 0:
                    await ex.create_order(
                        SYMBOL, "market", "buy", 0.001, params={"clientOrderId": f"x-{n}"}
                    )
                elif n % 3 == 1:
                    await ex.fetch_ticker(SYMBOL)
                else:
                    await ex.fetch_balance()
            except ccxt.BaseError:
                pass
    finally:
        await ex.close()
        await v.stop()
    return [(e.kind, e.endpoint) for e in v.faults.events]


async def test_chaos_is_reproducible_with_a_seed() -> None:
    first = await _chaos_run(11)
    again = await _chaos_run(11)
    other = await _chaos_run(12)
    assert len(first) >= 3
    assert first == again
    assert first != other


async def test_ccxt_stream_through_duplicates_and_reorders(venue: Venue, client: Any) -> None:
    await asyncio.wait_for(client.watch_ohlcv(SYMBOL, "5m"), 5)
    start = venue.clock.now_ms()
    venue.faults.add(parse_fault_spec("ws_duplicate:ws,times=3"))
    venue.faults.add(parse_fault_spec("ws_reorder:ws,times=3,after=3"))
    for _ in range(8):
        await venue.advance(step=1)
        await asyncio.sleep(0.05)
    assert venue.faults.counts["ws_duplicate"] == 3 and venue.faults.counts["ws_reorder"] == 3
    now = venue.clock.now_ms()
    cached = [c for c in client.ohlcvs[SYMBOL]["5m"] if start < c[0] + 300_000 <= now]
    rest = await client.fetch_ohlcv(SYMBOL, "5m", since=cached[0][0], limit=len(cached))
    assert len(cached) == 8  # every closed candle once, in order, final values
    assert [c[:6] for c in cached] == [r[:6] for r in rest]
