"""`kmg run` as a user runs it, against `kmg venue` (two processes, real ccxt, real sockets).

For Binance and for Kraken (whose 1,000-candle warm-up goes through its trades history: its
OHLC endpoint serves 720 candles at most):

* PAPER on live data: warm-up download, stream, decisions, paper orders and fills in our
  database, and not one order nor one signed request at the venue;
* LIVE (``--live``): orders at the venue under our client ids, every venue fill matched by
  exactly one of ours and back, a position closed by a mental stop or an exit signal (the
  venue sells), SIGTERM ends the run with exit 0 within 5 s, our balances table equals the
  venue's balances, LIVE equity is the venue's balances at the last price, and
  ``kmg flatten --live`` sells what is held.

The venue replays a slice of the packaged btc-usdt sample (rows ``ROWS``) at high speed, with
settings that make the default strategy trade every few candles (``harness.TRADE_SOON``); when
the slice ends prices stand still, so the end of every run is quiet and exact. The books the
venue keeps are the truth every assertion compares with.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kmg_autotrader.domain import Mode
from kmg_autotrader.storage.candle_store import CandleStore
from tests.e2e.harness import (
    HarnessError,
    Rehearsal,
    VenueConfig,
    balance_mismatches,
    fill_mismatches,
)

# Sample rows replayed: the venue starts with row ROWS[0] forming and 1,100 candles before it,
# and ends when row ROWS[1] - 1 closes. The strategy (TRADE_SOON settings) enters at 3,854,
# 3,859, 3,881 and 3,888 there; stops and exit signals close all but the last, which is still
# open when the data ends (flatten has something to sell).
ROWS = {"binance": (3_840, 3_891), "kraken": (3_862, 3_891)}
WARMUP = 1_100
# Kraken's ccxt client throttles private calls (one every 3 s; its trades history costs 6 s),
# so a Kraken order takes ~15 s to confirm: its venue runs slower, for realistic timing.
SPEED = {"binance": 600.0, "kraken": 120.0}
EXCHANGES = ["binance", "kraken"]
CLOSED_BY = {"stop_loss", "take_profit", "signal"}
PRIVATE = ("/api/v3/order", "/api/v3/account", "/api/v3/myTrades", "/api/v3/openOrders", "/sapi/")


def _rehearsal(tmp_path: Path, exchange: str, *, speed: float | None = None) -> Rehearsal:
    config = VenueConfig(
        exchange=exchange,
        speed=speed or SPEED[exchange],
        warmup=WARMUP,
        rows=ROWS[exchange],
    )
    return Rehearsal(tmp_path, config)


async def _until_quiet(r: Rehearsal, mode: Mode, timeout: float) -> None:
    """Until the data ended and our records caught up with the venue (nothing in flight)."""
    why: list[str] = ["not checked yet"]

    async def quiet() -> bool:
        state = await r.state()
        books = await r.books()
        why[:] = [] if state["finished"] else ["the venue is still replaying"]
        if mode is Mode.LIVE:
            why.extend(fill_mismatches(books["trades"], r.db.fills(mode)))
            why.extend(balance_mismatches(await r.venue_totals(), r.db.balances(mode)))
        why.extend(f"open order {o.client_order_id}" for o in r.db.repos.orders.open_orders(mode))
        return not why

    try:
        await r.wait_for(quiet, "the end of the data with our records caught up", timeout)
    except HarnessError as exc:
        raise HarnessError(f"{'; '.join(why)}\n{exc}") from None


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_paper_run_on_the_venues_live_data_trades_on_paper_only(
    exchange: str, tmp_path: Path
) -> None:
    async with _rehearsal(tmp_path, exchange, speed=600.0) as r:
        r.set_risk()
        r.start_bot(live=False)
        await r.wait_db()
        await r.wait_for(
            lambda: [p for p in r.db.closed_positions(Mode.PAPER) if p.exit_reason in CLOSED_BY],
            "a PAPER position opened and closed by a stop or an exit signal",
            timeout=60,
        )
        await _until_quiet(r, Mode.PAPER, timeout=40)
        stop_seconds = await r.stop_bot()
        state = await r.state()
        books = await r.books()

        assert stop_seconds < 5
        # not one order, trade or signed request reached the venue; keys were set all along
        assert books["orders"] == [] and books["trades"] == []
        assert state["signed_requests"] == {}
        assert not [p for p in state["requests"] if any(x in p for x in PRIVATE)]
        assert not [p for p in state["requests"] if "/0/private/" in p]
        # warm-up download of 1,000 candles, then the stream
        store = CandleStore(r.data_dir)
        assert len(store.read(exchange, "BTC/USDT", "5m")) >= 1_000
        if exchange == "kraken":  # 4 trades a candle, 1,000 a page: the trades history path
            assert state["requests"].get("GET /0/public/Trades", 0) >= 4
            assert state["requests"].get("GET /v2", 0) >= 1
        else:
            assert state["requests"].get("GET /api/v3/klines", 0) >= 1
            assert sum(v for k, v in state["requests"].items() if k.startswith("GET /ws")) >= 1
        assert r.db.events(Mode.PAPER, "ws_connected")
        # decisions, paper orders and fills in our database, nothing LIVE
        assert r.db.signals(Mode.PAPER)
        orders = r.db.orders(Mode.PAPER)
        fills = r.db.fills(Mode.PAPER)
        assert {o.side.value for o in orders} == {"buy", "sell"}
        assert {f.client_order_id for f in fills} <= {o.client_order_id for o in orders}
        assert sum(f.amount for f in fills if f.side.value == "sell") > 0
        assert r.db.orders(Mode.LIVE) == [] and r.db.fills(Mode.LIVE) == []


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_live_rehearsal_trades_at_the_venue_and_our_books_equal_its_books(
    exchange: str, tmp_path: Path
) -> None:
    async with _rehearsal(tmp_path, exchange) as r:
        r.set_risk()
        r.start_bot(live=True)
        await r.wait_db()
        closed = await r.wait_for(
            lambda: [p for p in r.db.closed_positions(Mode.LIVE) if p.exit_reason in CLOSED_BY],
            "a LIVE position closed by a mental stop, a target or an exit signal",
            timeout=120,
        )
        await _until_quiet(r, Mode.LIVE, timeout=90)
        stop_seconds = await r.stop_bot()
        assert stop_seconds < 5

        books = await r.books()
        state = await r.state()
        venue = await r.venue_totals()
        fills = r.db.fills(Mode.LIVE)
        orders = {o.client_order_id: o for o in r.db.orders(Mode.LIVE)}
        # every order at the venue is one of ours, under our client id and its id, and back
        at_venue = {(o["client_order_id"], o["exchange_id"]) for o in books["orders"]}
        assert at_venue == {(c, o.exchange_order_id) for c, o in orders.items()}
        assert len(books["trades"]) >= 3
        assert fill_mismatches(books["trades"], fills) == []
        # the closed position's exit was a sell at the venue, of what the entry bought
        exit_orders = [o for o in orders.values() if o.side.value == "sell"]
        assert exit_orders and closed[0].realized_pnl is not None
        sold = {t["client_order_id"] for t in books["trades"] if t["side"] == "sell"}
        assert {o.client_order_id for o in exit_orders} == sold
        # balances: the table equals the venue's; LIVE equity is them at the last price
        assert balance_mismatches(venue, r.db.balances(Mode.LIVE)) == []
        point = r.db.repos.equity.latest(Mode.LIVE)
        assert point is not None
        last = Decimal(state["symbols"]["BTC/USDT"]["last"])  # still since the data ended
        assert abs(point.cash - venue.get("USDT", Decimal(0))) <= Decimal("1e-8")
        assert abs(point.positions_value - venue.get("BTC", Decimal(0)) * last) <= Decimal("1e-6")
        assert not r.db.orders(Mode.PAPER)

        # flatten sells what is held
        held = r.db.open_positions(Mode.LIVE)
        assert held and venue.get("BTC", Decimal(0)) > 0, "the slice should end with a position"
        result = r.kmg("flatten", "--live", live=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{len(held)} positions closed" in result.stdout, result.stdout
        after = await r.venue_totals()
        assert after.get("BTC", Decimal(0)) < Decimal("0.0001")  # dust below the amount step
        assert r.db.open_positions(Mode.LIVE) == []
        assert fill_mismatches((await r.books())["trades"], r.db.fills(Mode.LIVE)) == []


async def test_sigterm_while_an_order_awaits_its_answer_exits_in_5_s_and_a_restart_adopts_it(
    tmp_path: Path,
) -> None:
    """Regression: the stop waited for a stuck order answer (5 s for the streams, then more),
    so SIGTERM took over 5 s. Now in-flight handling gets 2 s and is cut short like a crash;
    the next start reconciles the order with the exchange."""
    async with _rehearsal(tmp_path, "binance") as r:
        r.set_risk()
        # the first order IS placed, its answer comes 8 s late
        await r.client.add_faults(
            {"kind": "timeout_after_accept", "endpoint": "create_order", "delay": 8}
        )
        r.start_bot(live=True)
        await r.wait_db()

        async def placed_unanswered() -> bool:
            trades = (await r.books())["trades"]
            return bool(trades) and not r.db.fills(Mode.LIVE)

        await r.wait_for(placed_unanswered, "an order placed at the venue, unanswered", 60)
        try:
            stop_seconds = await r.stop_bot()
        except HarnessError as exc:
            pytest.fail(str(exc).splitlines()[0])
        assert stop_seconds < 5

        r.start_bot(live=True)  # the start-up reconciliation adopts the order's fill
        await r.wait_for(
            lambda: r.db.fills(Mode.LIVE), "the restarted bot adopting the fill", timeout=30
        )
        await _until_quiet(r, Mode.LIVE, timeout=60)
        assert await r.stop_bot() < 5
        assert fill_mismatches((await r.books())["trades"], r.db.fills(Mode.LIVE)) == []


async def test_sigterm_during_the_start_up_exits_0_quickly(tmp_path: Path) -> None:
    """Regression: the signal handlers were installed only once the warm-up, the start-up
    reconciliation and the wiring were done (~20 s on Kraken), so a SIGTERM before (a
    service manager stopping the bot while it starts) killed it: exit -15, no clean stop."""
    async with _rehearsal(tmp_path, "kraken", speed=600.0) as r:
        r.start_bot(live=True)

        async def downloading() -> bool:  # the warm-up through Kraken's trades history
            return (await r.state())["requests"].get("GET /0/public/Trades", 0) >= 1

        await r.wait_for(downloading, "the warm-up download under way", timeout=30)
        assert await r.stop_bot() < 5
        assert (await r.books())["orders"] == []
