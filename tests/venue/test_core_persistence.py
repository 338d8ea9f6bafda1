"""The venue's books survive a restart of the process (``--state``), and bad state files are
refused with one clear line."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kmg_autotrader.venue import AccountSpec
from tests.venue.conftest import API_KEY, SECRET, binance_client, make_venue

SYMBOL = "BTC/USDT"


async def test_restart_keeps_the_books(tmp_path: Path) -> None:
    state = tmp_path / "venue" / "binance-state.json"
    first = make_venue(state_path=state)
    await first.start(0)
    ex = binance_client(first)
    try:
        await ex.load_markets()
        await ex.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "keep-1"})
        last = first.market.last_price(SYMBOL, first.clock.now_ms())
        assert last is not None
        await ex.create_order(
            SYMBOL, "limit", "sell", 0.004, float(last + 2000), params={"clientOrderId": "keep-2"}
        )
    finally:
        await ex.close()
        await first.stop()
    books: dict[str, Any] = first.books()
    saved = json.loads(state.read_text())
    assert saved["accounts"][API_KEY]["engine"]["balances"]  # written as it changed
    assert state.stat().st_mode & 0o777 == 0o600

    second = make_venue(state_path=state, accounts=[])  # the state file re-opens the account
    await second.start(0)
    ex = binance_client(second)
    try:
        assert second.books() == books
        open_orders = await ex.fetch_open_orders(SYMBOL)
        assert [o["clientOrderId"] for o in open_orders] == ["keep-2"]
        balance = await ex.fetch_balance()
        assert Decimal(str(balance["BTC"]["used"])) == Decimal("0.004")
        with pytest.raises(Exception, match="Duplicate"):  # keep-2 still rests: its id is taken
            await ex.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "keep-2"})
    finally:
        await ex.close()
        await second.stop()


def test_a_state_file_with_another_secret_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    make_venue(state_path=state)
    with pytest.raises(ValueError, match="another secret"):
        make_venue(state_path=state, accounts=[AccountSpec(API_KEY, SECRET + "x")])


def test_bad_state_files_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read the venue state file"):
        make_venue(state_path=broken)
    other = tmp_path / "kraken.json"
    other.write_text(json.dumps({"version": 1, "exchange": "kraken", "accounts": {}}))
    with pytest.raises(ValueError, match="books of a kraken venue"):
        make_venue(state_path=other)
    assert other.read_text().startswith('{"version": 1, "exchange": "kraken"')  # untouched


async def test_a_restarted_venue_resumes_its_timeline(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = make_venue(state_path=state, start_ms=None)  # starts at the wall clock
    await first.start(0)
    stopped_at = await first.advance(step=10)  # venue time is now 50 minutes ahead
    price = first.market.last_price(SYMBOL, stopped_at)
    await first.stop()
    second = make_venue(state_path=state, start_ms=None)
    assert second.resumed
    assert second.market.shift_ms == first.market.shift_ms
    assert second.clock.now_ms() == stopped_at  # not back at the wall clock
    assert second.market.last_price(SYMBOL, second.clock.now_ms()) == price
