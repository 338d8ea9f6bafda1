"""Exits: always allowed for what is held, sized to it, refused only for nothing or dust."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from kmg_autotrader.domain import Candidate, Side
from kmg_autotrader.risk import PortfolioState, ReasonCode
from tests.risk.helpers import T0, Rig, btc_market, build_rig, candidate, portfolio

D = Decimal


def sell() -> Candidate:
    return candidate(Side.SELL, stop_loss=None, take_profit=None, expected_move=0.0)


def holding(
    amount: str = "0.0123456", held: str | None = None, last: str = "50000"
) -> PortfolioState:
    return portfolio(
        cash="9000",
        positions={"BTC/USDT": (amount, "49000", last)},
        holdings={"BTC": held if held is not None else amount},
    )


def test_exit_sells_the_whole_position_rounded_down(rig: Rig) -> None:
    decision = rig.manager.evaluate(sell(), holding(), btc_market())
    assert decision.approved, decision.message
    assert decision.intent.side is Side.SELL
    assert decision.intent.amount == D("0.01234")
    assert decision.intent.stop_loss is None
    assert any("rounded down" in a for a in decision.adjustments)


def test_exit_never_sells_more_than_is_held(rig: Rig) -> None:
    decision = rig.manager.evaluate(sell(), holding(held="0.005"), btc_market())
    assert decision.intent.amount == D("0.005")
    assert any("BTC held" in a for a in decision.adjustments)


def test_exit_ignores_entry_only_gates() -> None:
    rig = build_rig(
        max_trades_per_day=1,
        max_open_positions=1,
        cooldown_minutes=600,
        cooldown_after_loss_minutes=600,
        max_drawdown_percent=1.0,
        daily_loss_limit_percent=1.0,
    )
    rig.manager.update_equity(D(10_000), T0)
    rig.manager.update_equity(D(9_000), T0 + 1)  # trips the breaker and the kill-switch
    rig.manager.record_entry("BTC/USDT", T0 + 2)  # trade limit and cooldown reached
    rig.manager.record_trade_closed("BTC/USDT", D("-50"), T0 + 3)  # loss cooldown
    status = rig.manager.status()
    assert status["breaker"]["tripped"] and status["kill_switch"]["tripped"]
    decision = rig.manager.evaluate(sell(), holding(), btc_market())
    assert decision.approved, decision.message
    entry = rig.manager.evaluate(candidate(), holding(), btc_market())
    assert not entry.approved


def test_exit_without_a_position_is_no_holdings(rig: Rig) -> None:
    decision = rig.manager.evaluate(sell(), portfolio(holdings={"BTC": "1"}), btc_market())
    assert decision.reason_code == ReasonCode.NO_HOLDINGS


def test_exit_with_nothing_free_is_no_holdings(rig: Rig) -> None:
    decision = rig.manager.evaluate(sell(), holding(held="0"), btc_market())
    assert decision.reason_code == ReasonCode.NO_HOLDINGS


def test_dust_below_min_amount_is_rejected(rig: Rig) -> None:
    market = btc_market(min_amount=D("0.0001"))
    at_min = rig.manager.evaluate(sell(), holding("0.0001"), market)
    assert at_min.approved
    below = rig.manager.evaluate(sell(), holding("0.00009"), market)
    assert below.reason_code == ReasonCode.BELOW_MIN_AMOUNT
    assert below.message.startswith("dust")


def test_dust_below_min_cost_is_rejected(rig: Rig) -> None:
    # 0.0001 BTC × 50 000 = 5 USDT: exactly the minimum cost; one step less is below
    assert rig.manager.evaluate(sell(), holding("0.0001"), btc_market()).approved
    below = rig.manager.evaluate(sell(), holding("0.00009"), btc_market())
    assert below.reason_code == ReasonCode.BELOW_MIN_COST


def test_holding_below_one_step_is_dust(rig: Rig) -> None:
    decision = rig.manager.evaluate(sell(), holding("0.000009"), btc_market(min_cost=D(0)))
    assert decision.reason_code == ReasonCode.BELOW_MIN_AMOUNT


def test_exit_still_works_when_parameters_and_state_are_unreadable(rig: Rig) -> None:
    class Down:
        def current(self) -> object:
            raise ConnectionError("database down")

        def load(self) -> object:
            raise ConnectionError("database down")

    rig.manager._params = cast(Any, Down())
    rig.manager._state = cast(Any, Down())
    assert rig.manager.evaluate(sell(), holding(), btc_market()).approved
    entry = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    assert entry.reason_code == ReasonCode.INTERNAL_ERROR
    assert "database down" in entry.message
