"""The paper ledger reads its file again only when it changed (issue 18, item 19): every closed
candle (and price tick) opens a session, and locking, reading and decoding the whole book each
time cost milliseconds per candle on the closed candle → order path. A change by another process
is still seen."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kmg_autotrader.execution.paper import FileLedger
from kmg_autotrader.execution.paper import ledger as ledger_module
from kmg_autotrader.storage.repositories import Repositories

from .test_file_ledger import open_engine

D = Decimal


def test_an_unchanged_book_is_not_read_again_and_a_change_elsewhere_is(
    repos: Repositories, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "paper_exchange.json"
    bot, other = open_engine(path, repos), open_engine(path, repos)  # e.g. bot + kmg flatten
    order = bot.create_order("BTC/USDT", "limit", "buy", D("0.1"), D(19000), client_order_id="a")
    bot.cancel_order(order["id"])  # nothing resting: a bar only looks at the book
    reads: list[Path] = []
    real_read = FileLedger.read

    def counting_read(self: FileLedger) -> object:
        reads.append(self.path)
        return real_read(self)

    monkeypatch.setattr(FileLedger, "read", counting_read)
    locks: list[str] = []
    real_lock = ledger_module.portalocker.Lock

    def counting_lock(path: str, *args: object, **kwargs: object) -> object:
        locks.append(path)
        return real_lock(path, *args, **kwargs)

    monkeypatch.setattr(ledger_module.portalocker, "Lock", counting_lock)
    for k in range(20):  # candles that fill nothing: sessions over an unchanged file
        bot.on_bar("BTC/USDT", 2_000 + k, D(20000), D(20100), D(19900), D(20000), D(1))
    assert reads == [] and locks == []  # nor a lock file opened for a look
    other.create_order("BTC/USDT", "limit", "buy", D("0.1"), D(19000), client_order_id="b")
    assert bot.fetch_order_by_client_id("b")["status"] == "open"  # another process's write: seen
    assert len(reads) >= 1
