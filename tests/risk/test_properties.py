"""Property tests: whatever the inputs, an approved intent respects every cap and the market."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kmg_autotrader.domain import MarketInfo, Side
from kmg_autotrader.risk import OpenPosition, PortfolioState, RiskParams
from tests.risk.helpers import build_rig, candidate

D = Decimal
STEPS = [D("0.00000001"), D("0.00001"), D("0.001"), D("0.1"), D("1")]


def decimals(low: str, high: str, places: int = 8) -> st.SearchStrategy[Decimal]:
    return st.decimals(D(low), D(high), places=places, allow_nan=False, allow_infinity=False)


@st.composite
def params(draw: st.DrawFn) -> dict[str, Any]:
    position = draw(st.floats(0.01, 1.0))
    return {
        "max_position_percent": position,
        "max_total_exposure_percent": draw(st.floats(position, 1.0)),
        "risk_per_trade_percent": draw(st.floats(0.01, 10.0)),
        "max_open_positions": draw(st.integers(1, 10)),
        "allow_min_size_adjust": draw(st.booleans()),
        "slippage_bps": draw(st.floats(0, 50)),
        "fee_safety_margin": 0.0,
        "cooldown_minutes": 0,
        "cooldown_after_loss_minutes": 0,
        "max_drawdown_percent": 100.0,
        "daily_loss_limit_percent": 100.0,
    }


@st.composite
def markets(draw: st.DrawFn) -> MarketInfo:
    step = draw(st.sampled_from(STEPS))
    return MarketInfo(
        symbol="BTC/USDT",
        base="BTC",
        quote="USDT",
        amount_step=step,
        price_step=D("0.01"),
        min_amount=step * draw(st.sampled_from([0, 1, 2, 10, 100])),
        min_cost=draw(decimals("0", "100", 2)),
        maker_fee=draw(decimals("0", "0.005", 4)),
        taker_fee=draw(decimals("0", "0.006", 4)),
    )


@st.composite
def portfolios(draw: st.DrawFn, side: Side) -> PortfolioState:
    cash = draw(decimals("0", "1000000", 2))
    others = {
        f"C{i}/USDT": OpenPosition(f"C{i}/USDT", draw(decimals("0.001", "100")), D(1), D(100))
        for i in range(draw(st.integers(0, 2)))
    }
    # mostly no BTC position before a buy, mostly one before a sell; the rest probes the gates
    holds = draw(st.integers(0, 9)) < (8 if side is Side.SELL else 1)
    btc = draw(decimals("0.00000001", "10")) if holds else None
    positions = dict(others)
    holdings: dict[str, Decimal] = {}
    if btc is not None:
        positions["BTC/USDT"] = OpenPosition("BTC/USDT", btc, D(30_000), D(30_000))
        # free BTC may be less than the position (some reserved by a resting order)
        holdings["BTC"] = btc * draw(st.one_of(st.just(D(1)), decimals("0", "1", 4)))
    equity = cash + sum((p.value for p in positions.values()), D(0))
    return PortfolioState(equity=equity, cash=cash, positions=positions, holdings=holdings)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    params(),
    markets(),
    st.sampled_from([Side.BUY, Side.SELL]).flatmap(lambda s: st.tuples(st.just(s), portfolios(s))),
    st.floats(0.0001, 1_000_000),
    st.floats(0.001, 0.5),
)
def test_an_approved_intent_never_breaks_a_cap(
    values: dict[str, Any],
    market: MarketInfo,
    side_and_portfolio: tuple[Side, PortfolioState],
    price: float,
    stop_fraction: float,
) -> None:
    side, portfolio = side_and_portfolio
    rig = build_rig(**values)
    limits = RiskParams(**values)
    cand = candidate(
        side,
        price=price,
        stop_loss=price * (1 - stop_fraction),
        take_profit=None,
        expected_move=0.5,
    )
    decision = rig.manager.evaluate(cand, portfolio, market)
    event(f"{side.value} {decision.reason_code}")
    if not decision.approved:
        assert decision.reason_code != "APPROVED" and decision.message
        assert decision.intent is None
        return
    intent = decision.intent
    amount, price_d = intent.amount, intent.price
    cost = amount * price_d
    # market precision and minimums
    assert amount > 0
    assert amount % market.amount_step == 0
    assert amount >= market.min_amount
    assert cost >= market.min_cost
    if side is Side.SELL:
        held = portfolio.holdings.get("BTC", D(0))
        assert amount <= held
        assert amount <= portfolio.positions["BTC/USDT"].amount
        return
    # entries: one position, all positions together, and free cash (with fee and slippage)
    assert "BTC/USDT" not in portfolio.positions
    assert len(portfolio.positions) < limits.max_open_positions
    assert cost <= portfolio.equity * D(str(limits.max_position_percent))
    assert portfolio.exposure + cost <= portfolio.equity * D(str(limits.max_total_exposure_percent))
    entry_rate = market.taker_fee + D(str(limits.slippage_bps)) / 10_000
    assert cost * (1 + entry_rate) <= portfolio.cash
    if not limits.allow_min_size_adjust:
        # without the adjust-up the risk at the stop never exceeds the set percentage
        risk = amount * (price_d - D(str(cand.stop_loss)))
        assert risk <= portfolio.equity * D(str(limits.risk_per_trade_percent)) / 100 * (
            1 + D("1e-20")
        )
