"""Dust prevention on entries: minimum amount and cost, and the optional adjust-up."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kmg_autotrader.risk import ReasonCode
from tests.risk.helpers import Rig, btc_market, build_rig, candidate, portfolio

D = Decimal


def tiny_risk(**params: Any) -> Rig:
    # 0.01 % of 10 000 = 1 USDT at risk, stop 1 000 below → 0.001 BTC = 50 USDT
    return build_rig(risk_per_trade_percent=0.01, **params)


def test_size_at_min_cost_is_approved() -> None:
    rig = tiny_risk()
    decision = rig.manager.evaluate(candidate(), portfolio(), btc_market(min_cost=D("50")))
    assert decision.approved
    assert decision.intent.amount == D("0.001")


def test_size_below_min_cost_is_rejected() -> None:
    rig = tiny_risk()
    decision = rig.manager.evaluate(candidate(), portfolio(), btc_market(min_cost=D("50.01")))
    assert decision.reason_code == ReasonCode.BELOW_MIN_COST


def test_size_below_min_amount_is_rejected() -> None:
    rig = tiny_risk()
    decision = rig.manager.evaluate(candidate(), portfolio(), btc_market(min_amount=D("0.00101")))
    assert decision.reason_code == ReasonCode.BELOW_MIN_AMOUNT


def test_adjust_up_to_the_minimum_when_every_cap_allows() -> None:
    rig = tiny_risk(allow_min_size_adjust=True)
    market = btc_market(min_cost=D("60"))
    decision = rig.manager.evaluate(candidate(), portfolio(), market)
    assert decision.approved
    assert decision.intent.amount == D("0.0012")  # 60 / 50 000, already on the step
    assert any("raised to the market minimum" in a for a in decision.adjustments)


def test_adjust_up_refused_when_the_minimum_breaks_a_cap() -> None:
    rig = tiny_risk(allow_min_size_adjust=True)
    # minimum 2 001 USDT > the 2 000 USDT position cap (20 % of 10 000)
    decision = rig.manager.evaluate(candidate(), portfolio(), btc_market(min_cost=D("2001")))
    assert decision.reason_code == ReasonCode.POSITION_CAP
    at_cap = rig.manager.evaluate(candidate(), portfolio(), btc_market(min_cost=D("2000")))
    assert at_cap.approved
    assert at_cap.intent.amount == D("0.04")


def test_adjust_up_refused_when_cash_is_short() -> None:
    rig = tiny_risk(allow_min_size_adjust=True)
    decision = rig.manager.evaluate(
        candidate(),
        portfolio(cash="59"),
        btc_market(min_cost=D("60")),
    )
    assert decision.reason_code == ReasonCode.INSUFFICIENT_CASH


def test_a_cap_that_forces_the_size_below_minimum_names_the_cap() -> None:
    rig = build_rig()
    decision = rig.manager.evaluate(candidate(), portfolio(cash="4"), btc_market())
    assert decision.reason_code == ReasonCode.INSUFFICIENT_CASH
    assert "below the market minimum" in decision.message
