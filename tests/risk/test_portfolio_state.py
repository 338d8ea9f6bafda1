"""PortfolioState built from balances, positions and last prices."""

from __future__ import annotations

from decimal import Decimal

from kmg_autotrader.domain import Balance, Mode, Position
from kmg_autotrader.risk import PortfolioState

D = Decimal


def test_from_account_marks_to_market_and_counts_reserved_holdings() -> None:
    balances = [
        Balance(Mode.PAPER, "USDT", D("5000"), D("1000")),  # 1 000 reserved by a buy order
        Balance(Mode.PAPER, "BTC", D("0.05"), D("0.05")),  # 0.05 reserved by a take-profit
        Balance(Mode.PAPER, "XYZ", D("10")),  # no price: cannot be valued
    ]
    positions = [
        Position(Mode.PAPER, "BTC/USDT", D("0.1"), D("40000"), opened_at=1),
        Position(Mode.PAPER, "ETH/USDT", D("1"), D("2000"), opened_at=1, closed_at=2),
    ]
    state = PortfolioState.from_account(balances, positions, {"BTC/USDT": D("50000")}, "USDT")
    assert state.cash == D("5000")  # free quote only
    assert state.equity == D("6000") + D("0.1") * D("50000")
    assert state.holdings["BTC"] == D("0.1")
    assert list(state.positions) == ["BTC/USDT"]  # the closed one is not open
    assert state.positions["BTC/USDT"].last_price == D("50000")
    assert state.exposure == D("5000")


def test_a_position_without_a_price_is_valued_at_entry() -> None:
    positions = [Position(Mode.PAPER, "SOL/USDT", D("2"), D("100"), opened_at=1)]
    state = PortfolioState.from_account([], positions, {}, "USDT")
    assert state.exposure == D("200")
    assert state.equity == 0 and state.cash == 0
