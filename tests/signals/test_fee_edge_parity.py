"""The signal filter's fee gate and the risk manager's fee-edge rule are one computation: the same
signal gets the same verdict, the same required edge and the same message from both.

Regression: the gate counted slippage 0.05 % per round trip, the risk rule 5 bps per fill (0.1 %),
so a 0.37 % move passed the gate ("round-trip cost … = 0.350 %") and was refused by risk
("does not exceed … 0.4000 %").
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from kmg_autotrader.domain import ExecutionMode, Regime
from kmg_autotrader.domain.fee_edge import EdgeCosts
from kmg_autotrader.risk import ReasonCode
from kmg_autotrader.signals.bars import Bars
from kmg_autotrader.signals.fees import FeeSchedule
from kmg_autotrader.signals.filters import PreTradeFilters
from kmg_autotrader.signals.params import SignalParams
from kmg_autotrader.signals.regimes import CODE
from tests.risk.helpers import btc_market, build_rig, candidate, portfolio

D = Decimal


def _gate(filters: PreTradeFilters, move: float) -> tuple[bool, str, dict[str, object]]:
    bars = Bars({k: np.array([v]) for k, v in {"rsi": 50.0, "adx": 20.0, "volume_z": 0.0}.items()})
    report = filters.evaluate(
        "BTC/USDT",
        bars,
        np.array([CODE[Regime.TREND_UP]], dtype=np.int8),
        np.array([1], dtype=np.int8),
        np.array([0.9]),
        np.array([move]),
    )
    step = report.trace(0)[2]
    assert step.name == "fee_gate"
    return step.passed, step.reason, dict(step.details)


@pytest.mark.parametrize("mode", [ExecutionMode.MARKET_ONLY, ExecutionMode.LIMIT_BRACKET])
@pytest.mark.parametrize(
    ("maker", "taker", "costs"),
    [
        ("0.001", "0.001", {}),  # Binance base tier, default costs: 0.400 % to clear
        ("0.0025", "0.004", {}),  # Kraken base tier
        ("0.001", "0.001", {"slippage_bps": 10.0, "fee_safety_margin": 0.002}),
    ],
)
@pytest.mark.parametrize("move", [0.0035, 0.0037, 0.004, 0.0041, 0.0084, 0.0086, 0.0101, 0.02])
def test_same_signal_same_verdict_figure_and_message(
    mode: ExecutionMode, maker: str, taker: str, costs: dict[str, float], move: float
) -> None:
    market = btc_market(maker_fee=D(maker), taker_fee=D(taker))
    rig = build_rig(execution_mode=mode, **costs)
    edge_costs = EdgeCosts.of(costs.get("slippage_bps", 5.0), costs.get("fee_safety_margin", 0.001))
    filters = PreTradeFilters(
        SignalParams(), fees=FeeSchedule.from_market(market), execution_mode=mode, costs=edge_costs
    )
    passed, reason, details = _gate(filters, move)
    decision = rig.manager.evaluate(candidate(expected_move=move), portfolio(), market)
    assert passed is (decision.reason_code != ReasonCode.FEE_EDGE), (reason, decision.message)
    assert D(str(details["required"])) == decision.checks["required_edge"]
    if not passed:
        assert reason == decision.message  # one message, word for word


def test_the_default_gate_and_the_default_risk_rule_agree_at_0_37_percent() -> None:
    """The issue's case: Binance fees, every default: both refuse, both say 0.400 %."""
    passed, reason, _ = _gate(PreTradeFilters(SignalParams(), exchange="binance"), 0.0037)
    decision = build_rig().manager.evaluate(
        candidate(expected_move=0.0037), portfolio(), btc_market()
    )
    assert not passed and decision.reason_code == ReasonCode.FEE_EDGE
    assert "required edge 0.400%" in reason and reason == decision.message


def test_the_live_gate_follows_a_risk_editor_change_of_the_costs() -> None:
    """The bot's gate reads the risk limits in effect (as autopilot/wiring.py builds it): after
    a dashboard edit of fee_safety_margin both the gate and the risk rule ask for the new edge."""
    from kmg_autotrader.risk.params import RiskParams, RiskParamsStore

    store = RiskParamsStore(None, RiskParams())
    filters = PreTradeFilters(
        SignalParams(),
        exchange="binance",
        costs=lambda: EdgeCosts.of_params(store.current()[1]),
    )
    assert _gate(filters, 0.0045)[0]  # 0.45 % > 0.400 %
    store.update({"fee_safety_margin": 0.002}, source="web:session")  # 0.2 %: 0.500 % to clear
    passed, reason, details = _gate(filters, 0.0045)
    assert not passed and "required edge 0.500%" in reason
    assert details["required"] == 0.005
