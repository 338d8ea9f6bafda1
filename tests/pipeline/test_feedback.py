"""Position feedback tells the risk manager about fills, failed entries and closed trades."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from kmg_autotrader.domain import Mode, Position
from kmg_autotrader.pipeline import PositionFeedback
from tests.pipeline.test_decision_pipeline import FakeStore


class Book:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def record_entry(self, symbol: str, at_ms: int) -> None:
        self.calls.append(("entry", symbol, str(at_ms)))

    def record_trade_closed(self, symbol: str, pnl: Decimal, at_ms: int) -> None:
        self.calls.append(("closed", symbol, str(pnl), str(at_ms)))

    def update_equity(self, equity: Decimal, at_ms: int) -> None:
        self.calls.append(("equity", str(equity)))

    def cancel_entry(self, symbol: str) -> None:
        self.calls.append(("cancel", symbol))


def test_fill_then_close() -> None:
    opening = Position(Mode.PAPER, "X/USDT", Decimal(0), Decimal(10), 1, id=1)
    store = FakeStore([opening])
    book = Book()
    feedback = PositionFeedback(book, store)
    feedback.entry_sent("X/USDT", 1, "working")
    feedback.sync("X/USDT", 5)
    assert book.calls == []  # nothing filled yet
    store.positions[0] = replace(opening, amount=Decimal(2))
    feedback.sync("X/USDT", 10)
    # recorded at the position's open time, not when sync happened to notice the fill
    assert book.calls == [("entry", "X/USDT", "1")]
    store.positions[0] = replace(
        opening, amount=Decimal(0), closed_at=20, realized_pnl=Decimal("-1.5")
    )
    feedback.sync("X/USDT", 20)
    assert book.calls[-1] == ("closed", "X/USDT", "-1.5", "20")


def test_entry_that_never_fills_is_cancelled() -> None:
    opening = Position(Mode.PAPER, "X/USDT", Decimal(0), Decimal(10), 1, id=1)
    store = FakeStore([opening])
    book = Book()
    feedback = PositionFeedback(book, store)
    feedback.entry_sent("X/USDT", 1, "working")
    store.positions[0] = replace(opening, closed_at=5, exit_reason="entry_failed")
    feedback.sync("X/USDT", 5)
    assert book.calls == [("cancel", "X/USDT")]
    feedback.mark(Decimal(100), 6)
    assert book.calls[-1] == ("equity", "100")


def test_entry_time_does_not_depend_on_when_sync_runs() -> None:
    """The cooldown and daily counters start at the entry, however late the fill is noticed
    (after a restart, or by a loop that syncs less often): the live bot and the backtester
    must feed the risk manager the same times."""
    opened = Position(Mode.PAPER, "X/USDT", Decimal(2), Decimal(10), 1_000, id=7)
    store = FakeStore([opened])
    book = Book()
    PositionFeedback(book, store).sync("X/USDT", 900_000)
    assert book.calls == [("entry", "X/USDT", "1000")]


def test_sync_with_positions_already_read() -> None:
    opened = Position(Mode.PAPER, "X/USDT", Decimal(2), Decimal(10), 3, id=1)
    store = FakeStore([])  # the caller's list is used, not the store's
    book = Book()
    feedback = PositionFeedback(book, store)
    feedback.sync("X/USDT", 4, positions=[opened])
    assert book.calls == [("entry", "X/USDT", "3")]
    feedback.sync("X/USDT", 5, positions=[opened])
    assert book.calls == [("entry", "X/USDT", "3")]  # reported once
