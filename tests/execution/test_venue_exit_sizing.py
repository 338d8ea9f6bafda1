"""Issue 18 item 3: an exit sells what the exchange holds, not what our fills say, and a refused
exit backs off instead of being re-sent on every price tick. Against the local venue through
real ccxt classes; the venue's books and request counts are the truth."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from kmg_autotrader.domain import Mode, Position
from kmg_autotrader.execution.manager import ExecutionConfig
from kmg_autotrader.execution.store_memory import MemoryStore
from kmg_autotrader.execution.tracker import PositionTracker
from kmg_autotrader.venue import Fault

from .venue_path import FAST, SYMBOL, VenuePath, venue_path

CREATE = "POST /api/v3/order"
CONFIG = ExecutionConfig(retry=FAST, exit_backoff_ms=10_000, exit_backoff_max_ms=120_000)


async def _settle(path: VenuePath) -> None:
    """Poll working orders as the bot's loop does (Kraken's create answer has no status)."""
    for _ in range(5):
        if not path.manager.working:
            return
        await path.manager.poll()
    raise AssertionError(f"still working: {path.manager.working}")


async def _open(path: VenuePath) -> Position:
    report = await path.manager.execute(path.intent("0.002"))
    assert report.status in ("filled", "working"), report.message
    await _settle(path)
    (position,) = path.store.open_positions()
    return position


def _take_coins(path: VenuePath, amount: Decimal | None = None) -> Decimal:
    """Coins leave the account outside the bot (a withdrawal, a manual sale); what stays free."""
    free = path.venue.default_account.engine.balances["BTC"]
    free[0] = Decimal(0) if amount is None else free[0] - amount
    return free[0]


def _sells(path: VenuePath) -> list[dict[str, object]]:
    return [o for o in path.books()["orders"] if o["side"] == "sell"]


@pytest.mark.parametrize("exchange", ["binance", "kraken"])
async def test_exit_sells_at_most_the_free_balance(exchange: str) -> None:
    async with venue_path(exchange, config=CONFIG) as path:
        position = await _open(path)
        left = _take_coins(path, Decimal("0.0008"))
        assert left < position.amount
        tracker = PositionTracker(path.manager)
        assert position.stop_loss is not None
        (signal,) = await tracker.on_price(SYMBOL, position.stop_loss - 1)
        assert signal.report is not None
        # before the fix: a sell of the position's 0.002 the venue refused (insufficient)
        assert signal.report.status in ("filled", "working"), signal.report.message
        await _settle(path)
        (sell,) = _sells(path)
        assert Decimal(str(sell["amount"])) == left and sell["status"] == "closed"
        assert path.venue.default_account.engine.balances["BTC"][0] == 0


async def test_a_refused_exit_backs_off_instead_of_resending_every_tick() -> None:
    store = MemoryStore(Mode.LIVE)
    async with venue_path(config=CONFIG, store=store) as path:
        position = await _open(path)
        _take_coins(path)  # every coin is gone
        # and the balance cannot be read: the exit goes out sized to the position, refused
        path.venue.faults.add(Fault(kind="server_error", endpoint="balance", times=-1))
        tracker = PositionTracker(path.manager)
        assert position.stop_loss is not None
        creates = path.venue.requests[CREATE]
        errors = []
        sent_at = []
        for _ in range(60):  # a minute of ticks, one a second, all below the stop
            before = path.venue.requests[CREATE]
            for signal in await tracker.on_price(SYMBOL, position.stop_loss - 1):
                errors.append(signal.error)
            if path.venue.requests[CREATE] > before:
                sent_at.append(path.clock.now_ms())
            path.venue.clock.advance_to(path.clock.now_ms() + 1_000)
        # before the fix: 60 market sells, every one refused by the venue
        sent = path.venue.requests[CREATE] - creates
        assert sent == len(sent_at) == 3, sent  # at 0 s, 10 s, 30 s: 10 s doubling
        assert [b - a for a, b in itertools.pairwise(sent_at)] == [10_000, 20_000]
        assert _sells(path) == []  # the venue accepted none
        assert len(errors) == 3 and all(errors), errors
        refusals = [e for e in store.events if e["kind"] == "exit_rejected"]
        assert [e["refusals"] for e in refusals] == [1, 2, 3]
        assert all(e["level"] == "error" for e in refusals)
        (still,) = path.store.open_positions()  # open, unclaimed: a later try may succeed
        assert still.id == position.id and not path.store.is_exiting(still.id or 0)


async def test_flatten_does_not_wait_for_the_back_off() -> None:
    async with venue_path(config=CONFIG) as path:
        position = await _open(path)
        _take_coins(path)
        assert position.id is not None
        first = await path.manager.exit_position(position.id, "stop_loss")
        assert first.status == "rejected"  # nothing free: not even sent
        waiting = await path.manager.exit_position(position.id, "stop_loss")
        assert waiting.status == "skipped" and waiting.message.startswith("backing off")
        again = await path.manager.exit_position(position.id, "flatten", force=True)
        assert again.status == "rejected"  # tried at once (and refused again)
        assert _sells(path) == []
