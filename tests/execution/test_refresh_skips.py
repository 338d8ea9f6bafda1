"""Skipped position refreshes (unchanged figures' inputs) leave exactly what full ones leave."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal

import pytest

from kmg_autotrader.domain import (
    ExecutionMode,
    Fill,
    Mode,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
)
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution import book, ids, store_memory
from kmg_autotrader.execution.book import PositionBook
from kmg_autotrader.execution.fees import SlippageModel
from kmg_autotrader.execution.store_memory import MemoryStore
from kmg_autotrader.execution.tracker import PositionTracker

from .helpers import BTC, FlakyExchange, engine, intent, manager

D = Decimal


def test_open_statuses_are_the_non_terminal_ones() -> None:
    assert {s for s in OrderStatus if not s.is_terminal} == store_memory._OPEN


async def _replay(
    monkeypatch: pytest.MonkeyPatch,
    *,
    versioned: bool,
    mode: ExecutionMode,
    seed: int,
    immediate: bool,
    fraction: str,
) -> tuple[list[str], int]:
    """A random walk of entries, polls, stops, take-profits and exits: everything it left,
    and how many times figures were computed."""
    counter = itertools.count()
    computed = itertools.count()
    figures_from_fills = book.figures_from_fills

    def counted(*args: object) -> object:
        next(computed)
        return figures_from_fills(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(book, "figures_from_fills", counted)
    monkeypatch.setattr(ids, "_uuid4_hex", lambda: f"{next(counter):012x}{0:020x}")
    clock = SimulatedClock(1_000)
    paper = engine(
        clock=clock,
        immediate_market=immediate,
        max_fill_fraction=D(fraction),
        volume_participation=None,
        slippage=SlippageModel(D(0), D(0)),
    )
    price = D(20000)
    paper.on_price("BTC/USDT", price, 900)
    store = MemoryStore()
    exchange = FlakyExchange(paper)
    mgr = manager(
        exchange,
        store=store,
        clock=clock,
        execution_mode=mode,
        limit_timeout_ms=2_000,
        max_reprices=1,
        trailing_stop_pct=D("0.01") if seed % 2 else None,
    )
    if not versioned:
        mgr.orders.book._versions = None  # every refresh recomputes
    tracker = PositionTracker(mgr, tp_sync_interval_ms=3_000)
    rng = random.Random(seed)
    log: list[str] = []
    for step in range(300):
        now = 2_000 + step * 1_000
        clock.set(now)
        price = max(price + D(rng.randint(-60, 60)), D(1000))
        paper.on_price("BTC/USDT", price, now)
        log.append(repr(await mgr.poll()))
        log.append(repr(await tracker.on_price("BTC/USDT", price)))
        roll = rng.random()
        if roll < 0.15:
            sl, tp = price - D(rng.randint(20, 150)), price + D(rng.randint(20, 150))
            amount = str(D(rng.randint(1, 30)) / 100)
            log.append(
                repr(
                    await mgr.execute(
                        intent(amount, str(price), sl=str(sl), tp=str(tp), created_at=now)
                    )
                )
            )
        elif roll < 0.2:
            for position in store.open_positions():
                log.append(repr(await mgr.exit_position(position.id or 0, "signal")))
        log.append(repr(store.open_positions()))
    log.append(repr(store.positions))
    log.append(repr(store.orders))
    log.append(repr(store.fills))
    log.append(repr(store.events))
    return log, next(computed)


@pytest.mark.parametrize("mode", list(ExecutionMode))
@pytest.mark.parametrize(
    ("seed", "immediate", "fraction"), [(1, False, "1"), (2, True, "0.4"), (3, False, "0.3")]
)
async def test_skipped_refreshes_change_nothing(
    monkeypatch: pytest.MonkeyPatch, mode: ExecutionMode, seed: int, immediate: bool, fraction: str
) -> None:
    args = {"mode": mode, "seed": seed, "immediate": immediate, "fraction": fraction}
    full, recomputed = await _replay(monkeypatch, versioned=False, **args)  # type: ignore[arg-type]
    fast, computed = await _replay(monkeypatch, versioned=True, **args)  # type: ignore[arg-type]
    assert fast == full
    assert full[-4].count("exit_reason='") >= 5  # it traded
    assert computed < recomputed * 0.8  # and skipped refreshes


def _fill(coid: str, trade: str, side: Side = Side.BUY, amount: str = "0.1") -> Fill:
    return Fill(
        mode=Mode.PAPER,
        client_order_id=coid,
        symbol="BTC/USDT",
        side=side,
        amount=D(amount),
        price=D(20000),
        fee=D(0),
        fee_currency="USDT",
        timestamp=5,
        trade_id=trade,
    )


def _order(coid: str, side: Side = Side.BUY, status: OrderStatus = OrderStatus.OPEN) -> Order:
    return Order(
        mode=Mode.PAPER,
        client_order_id=coid,
        symbol="BTC/USDT",
        side=side,
        type=OrderType.MARKET,
        amount=D("0.1"),
        status=status,
        created_at=1,
    )


def test_figures_version_changes_only_with_the_figures_inputs() -> None:
    store = MemoryStore()
    pid = store.open_position(
        Position(mode=Mode.PAPER, symbol="BTC/USDT", amount=D(0), entry_price=D(1), opened_at=1)
    )
    seen = [store.figures_version(pid)]

    def changed() -> bool:
        seen.append(store.figures_version(pid))
        return seen[-1] != seen[-2]

    store.add_order(_order("a"), position_id=pid)
    assert not changed()  # a working order without fills adds nothing
    store.update_order("a", status=OrderStatus.PARTIALLY_FILLED, updated_at=3)
    assert not changed()
    store.add_fill(_fill("a", "t1"))
    assert changed()
    assert not store.add_fill(_fill("a", "t1")) and not changed()  # a duplicate is not stored
    store.update_order("a", status=OrderStatus.FILLED)
    assert changed()  # it stopped working
    store.update_order("a", status="filled", updated_at=4)
    assert not changed()
    store.add_order(_order("b", status=OrderStatus.CANCELED), position_id=pid)
    assert changed()
    store.add_fill(_fill("c", "t2"))
    store.add_order(_order("c"), position_id=pid)  # its fill was stored before
    assert changed()
    store.update_order("c", position_id=None)
    assert changed()
    store.update_position(pid, amount=D(5))
    assert not changed()


def test_refresh_recomputes_after_figures_are_rewritten() -> None:
    store = MemoryStore()
    book = PositionBook(store)
    pid = store.open_position(
        Position(mode=Mode.PAPER, symbol="BTC/USDT", amount=D(0), entry_price=D(1), opened_at=1)
    )
    store.add_order(_order("a", status=OrderStatus.FILLED), position_id=pid)
    store.add_fill(_fill("a", "t1"))
    first = book.refresh(pid, BTC, 10)
    assert first is not None and first.amount == D("0.1")
    assert book.refresh(pid, BTC, 11) is first  # nothing changed: nothing written
    store.update_position(pid, amount=D("0.10"))
    again = book.refresh(pid, BTC, 12)
    assert again is not None and str(again.amount) == "0.1"
    store.update_position(pid, extra={})
    assert book.refresh(pid, BTC, 13).extra == {"gross_pnl": "0"}  # type: ignore[union-attr]
    store.add_order(_order("s", side=Side.SELL), position_id=pid)
    store.add_fill(_fill("s", "t2", Side.SELL))
    assert book.refresh(pid, BTC, 14).closed_at is None  # type: ignore[union-attr]  # working
    assert book.refresh(pid, BTC, 15).closed_at is None  # type: ignore[union-attr]
    store.update_order("s", status=OrderStatus.FILLED, filled=D("0.1"), purpose="exit")
    closed = book.refresh(pid, BTC, 16)
    assert closed is not None and closed.closed_at == 16 and closed.exit_reason == "exit"
