"""The persistent paper ledger: shared between processes, balances mirrored to the database."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from kmg_autotrader.domain import Mode
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution.paper import FileLedger, PaperEngine, PaperSettings
from kmg_autotrader.storage.repositories import Repositories

from .helpers import MARKETS

D = Decimal


def open_engine(path: Path, repos: Repositories) -> PaperEngine:
    return PaperEngine(
        MARKETS,
        settings=PaperSettings(immediate_market=True),
        clock=SimulatedClock(1_000),
        ledger=FileLedger(path, repos.balances),
        balances={"USDT": D(10_000)},
    )


def test_two_engines_share_one_account(repos: Repositories, tmp_path: Path) -> None:
    path = tmp_path / "paper_exchange.json"
    bot, other = open_engine(path, repos), open_engine(path, repos)  # e.g. bot + kmg flatten
    bot.on_price("BTC/USDT", D(20000), 900)
    order = bot.create_order("BTC/USDT", "limit", "buy", D("0.1"), D(19000), client_order_id="a")
    assert other.fetch_order_by_client_id("a")["status"] == "open"
    other.cancel_order(order["id"])
    assert bot.fetch_order(order["id"])["status"] == "canceled"
    bot.create_order("BTC/USDT", "limit", "buy", D("0.1"), D(19500), client_order_id="b")
    other.on_price("BTC/USDT", D(19000), 2_000)  # the other process sees and fills it
    assert bot.fetch_order_by_client_id("b")["status"] == "closed"
    balances = {b.currency: b for b in repos.balances.all(Mode.PAPER)}
    assert balances["BTC"].free == D("0.1")
    assert balances["USDT"].free == D(10_000) - D(1950) - D("1.95")
    assert repos.balances.all(Mode.LIVE) == []
    # a restart reads the same account
    again = open_engine(path, repos)
    assert again.balance()["free"]["BTC"] == D("0.1")
    assert len(again.my_trades("BTC/USDT")) == 1
