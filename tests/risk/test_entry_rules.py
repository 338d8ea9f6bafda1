"""One test (or two) per entry rule, with the boundaries: exactly at a limit, one unit over."""

from __future__ import annotations

from decimal import Decimal
from typing import cast

import pytest

from kmg_autotrader.domain import Candidate, MarketInfo, Side
from kmg_autotrader.risk import PortfolioState, ReasonCode
from tests.risk.helpers import MINUTE, T0, Rig, btc_market, build_rig, candidate, portfolio

D = Decimal


def test_approved_entry_is_sized_by_risk_and_rounded_down(rig: Rig) -> None:
    # 1 % of 10 000 = 100 USDT at risk; stop 1 000 below → 0.1 BTC, capped to 20 % = 0.04 BTC
    decision = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    assert decision.approved, decision.message
    assert decision.reason_code == ReasonCode.APPROVED
    assert decision.intent.amount == D("0.04")
    assert decision.intent.side is Side.BUY
    assert decision.intent.stop_loss == D("49000.0")
    assert any("MAX_POSITION_PERCENT 20 %" in a for a in decision.adjustments)
    assert decision.checks["risk_based_amount"] == D("0.1")


def test_risk_sizing_below_every_cap_is_not_clamped() -> None:
    rig = build_rig(risk_per_trade_percent=0.5)
    # 50 USDT at risk, stop 5 000 below → 0.01 BTC = 500 USDT, far under every cap
    decision = rig.manager.evaluate(candidate(stop_loss=45_000.0), portfolio(), btc_market())
    assert decision.approved
    assert decision.intent.amount == D("0.01")
    assert decision.adjustments == ()


def test_size_rounded_down_to_the_step_is_recorded() -> None:
    rig = build_rig(risk_per_trade_percent=0.5)
    # 50 / 3 000 = 0.016666… BTC → 0.01666 at step 0.00001
    decision = rig.manager.evaluate(candidate(stop_loss=47_000.0), portfolio(), btc_market())
    assert decision.intent.amount == D("0.01666")
    assert any("rounded down" in a for a in decision.adjustments)


@pytest.mark.parametrize(
    ("risk_percent", "capped"),
    [(0.4, False), (0.40001, True)],  # 0.4 % risk → exactly 0.04 BTC = 20 % of equity
)
def test_position_cap_boundary(risk_percent: float, capped: bool) -> None:
    rig = build_rig(risk_per_trade_percent=risk_percent)
    decision = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    assert decision.approved
    assert decision.intent.amount == D("0.04")
    assert any("MAX_POSITION_PERCENT" in a for a in decision.adjustments) is capped


def test_kraken_profile_position_cap_is_ten_percent() -> None:
    rig = build_rig(max_position_percent=0.1)
    decision = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    assert decision.intent.amount == D("0.02")
    assert decision.intent.amount * decision.intent.price <= D("1000")


@pytest.mark.parametrize(("open_count", "code"), [(2, ReasonCode.APPROVED), (3, "MAX_POSITIONS")])
def test_max_open_positions_boundary(open_count: int, code: str) -> None:
    rig = build_rig(max_open_positions=3, max_total_exposure_percent=1.0)
    positions = {f"C{i}/USDT": ("1", "10", "10") for i in range(open_count)}
    decision = rig.manager.evaluate(candidate(), portfolio(positions=positions), btc_market())
    assert decision.reason_code == code


def test_already_in_position_is_rejected(rig: Rig) -> None:
    held = portfolio(positions={"BTC/USDT": ("0.01", "50000", "50000")})
    decision = rig.manager.evaluate(candidate(), held, btc_market())
    assert decision.reason_code == ReasonCode.ALREADY_IN_POSITION


def test_pending_approved_entry_blocks_its_symbol_until_it_expires() -> None:
    rig = build_rig(cooldown_minutes=0, cooldown_after_loss_minutes=0, pending_entry_minutes=10)
    assert rig.manager.evaluate(candidate(), portfolio(), btc_market()).approved
    rig.advance(9.99)
    again = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    assert again.reason_code == ReasonCode.ALREADY_IN_POSITION
    rig.advance(0.01)
    assert rig.manager.evaluate(candidate(), portfolio(), btc_market()).approved


def test_total_exposure_clamps_the_size_to_the_room_left() -> None:
    rig = build_rig(max_total_exposure_percent=0.5, max_open_positions=5)
    # 4 000 USDT already out of a 5 000 cap → 1 000 USDT room = 0.02 BTC
    held = portfolio(cash="6000", positions={"ETH/USDT": ("2", "2000", "2000")})
    decision = rig.manager.evaluate(candidate(), held, btc_market())
    assert decision.approved
    assert decision.intent.amount == D("0.02")
    assert any("max_total_exposure_percent" in a for a in decision.adjustments)


@pytest.mark.parametrize(("eth_value", "code"), [("4999.99", "APPROVED"), ("5000", "MAX_EXPOSURE")])
def test_total_exposure_boundary(eth_value: str, code: str) -> None:
    rig = build_rig(max_total_exposure_percent=0.5, allow_min_size_adjust=False)
    held = portfolio(cash="5000", positions={"ETH/USDT": ("1", eth_value, eth_value)})
    # no market minimums here, so the 0.01 USDT of room left just under the cap is tradeable
    market = btc_market(min_cost=D("0"), min_amount=D("0"), amount_step=D("0.00000001"))
    decision = rig.manager.evaluate(candidate(), held, market)
    assert decision.reason_code == code
    if decision.approved:
        assert decision.intent.amount * decision.intent.price <= D("0.01")


def test_exposure_uses_last_prices_not_entry_prices() -> None:
    rig = build_rig(max_total_exposure_percent=0.5)
    # bought at 1 000, now worth 5 000 → the cap is full
    held = portfolio(cash="5000", positions={"ETH/USDT": ("1", "1000", "5000")})
    decision = rig.manager.evaluate(candidate(), held, btc_market())
    assert decision.reason_code == ReasonCode.MAX_EXPOSURE


def test_cash_caps_the_size_including_fee_and_slippage(rig: Rig) -> None:
    decision = rig.manager.evaluate(candidate(), portfolio(cash="1000"), btc_market())
    assert decision.approved
    amount = decision.intent.amount
    # 1000 / (50 000 × 1.0015) = 0.019970… → 0.01997
    assert amount == D("0.01997")
    assert amount * D(50_000) * D("1.0015") <= D(1000)
    assert any("free cash" in a for a in decision.adjustments)


def test_no_cash_is_insufficient_cash(rig: Rig) -> None:
    decision = rig.manager.evaluate(candidate(), portfolio(cash="0"), btc_market())
    assert decision.reason_code == ReasonCode.INSUFFICIENT_CASH


def test_symbol_cooldown_boundary() -> None:
    rig = build_rig(cooldown_minutes=30, cooldown_after_loss_minutes=120)
    rig.manager.record_trade_closed("BTC/USDT", D("12.5"), T0)
    rig.advance(30 - 1 / 60_000)  # one millisecond before the end
    early = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    assert early.reason_code == ReasonCode.SYMBOL_COOLDOWN
    rig.advance(1 / 60_000)
    assert rig.manager.evaluate(candidate(), portfolio(), btc_market()).approved


def test_cooldown_applies_per_symbol() -> None:
    rig = build_rig(cooldown_minutes=30, cooldown_after_loss_minutes=120)
    rig.manager.record_trade_closed("ETH/USDT", D("-5"), T0)
    assert rig.manager.evaluate(candidate(), portfolio(), btc_market()).approved


def test_loss_cooldown_is_longer() -> None:
    rig = build_rig(cooldown_minutes=30, cooldown_after_loss_minutes=120)
    rig.manager.record_trade_closed("BTC/USDT", D("-1"), T0)
    rig.advance(30)
    mid = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    assert mid.reason_code == ReasonCode.LOSS_COOLDOWN
    rig.advance(90 - 1 / 60_000)
    late = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    assert late.reason_code == ReasonCode.LOSS_COOLDOWN
    rig.advance(1 / 60_000)
    assert rig.manager.evaluate(candidate(), portfolio(), btc_market()).approved


def test_cooldown_after_an_entry() -> None:
    rig = build_rig(cooldown_minutes=30, cooldown_after_loss_minutes=30, pending_entry_minutes=1)
    rig.manager.record_entry("BTC/USDT", T0)
    rig.advance(10)
    decision = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    assert decision.reason_code == ReasonCode.SYMBOL_COOLDOWN


# MARKET_ONLY: taker 0.1 % × 2 + slippage 5 bps × 2 + margin 0.1 % = 0.4 %
@pytest.mark.parametrize(
    ("expected_move", "code"),
    [(0.004, ReasonCode.FEE_EDGE), (0.0041, ReasonCode.APPROVED)],
)
def test_fee_edge_boundary(rig: Rig, expected_move: float, code: str) -> None:
    decision = rig.manager.evaluate(
        candidate(expected_move=expected_move), portfolio(), btc_market()
    )
    assert decision.reason_code == code
    assert decision.checks["required_edge"] == D("0.0040")


def test_fee_edge_uses_maker_fee_for_limit_entries() -> None:
    from kmg_autotrader.domain import ExecutionMode

    market = btc_market(maker_fee=D("0.0025"), taker_fee=D("0.004"))  # Kraken base tier
    limit = build_rig(execution_mode=ExecutionMode.LIMIT_BRACKET)
    market_only = build_rig(execution_mode=ExecutionMode.MARKET_ONLY)
    move = 0.0085  # LIMIT: .0025+.004+.001+.001 = .0085; MARKET: .008+.002 = .010
    assert limit.manager.evaluate(
        candidate(expected_move=move + 1e-6), portfolio(), market
    ).approved
    rejected = market_only.manager.evaluate(candidate(expected_move=move), portfolio(), market)
    assert rejected.reason_code == ReasonCode.FEE_EDGE
    assert rejected.checks["required_edge"] == D("0.0100")


def test_fee_edge_falls_back_to_take_profit_distance(rig: Rig) -> None:
    near = candidate(expected_move=0.0, take_profit=50_100.0)  # 0.2 %
    assert rig.manager.evaluate(near, portfolio(), btc_market()).reason_code == "FEE_EDGE"
    far = candidate(expected_move=0.0, take_profit=51_000.0)  # 2 %
    assert rig.manager.evaluate(far, portfolio(), btc_market()).approved


@pytest.mark.parametrize(
    "bad",
    [
        candidate(stop_loss=None),
        candidate(stop_loss=50_000.0),
        candidate(stop_loss=-1.0),
        candidate(price=float("nan")),
        candidate(price=0.0),
        candidate(take_profit=49_999.0),
        candidate(confidence=1.5),
        candidate(symbol="ETH/USDT"),
    ],
)
def test_invalid_candidates_are_rejected(rig: Rig, bad: Candidate) -> None:
    decision = rig.manager.evaluate(bad, portfolio(), btc_market())
    assert decision.reason_code == ReasonCode.INVALID_CANDIDATE
    assert decision.message


def test_non_positive_equity_is_invalid(rig: Rig) -> None:
    decision = rig.manager.evaluate(candidate(), portfolio(equity="0"), btc_market())
    assert decision.reason_code == ReasonCode.INVALID_CANDIDATE


def test_daily_trade_limit_boundary() -> None:
    rig = build_rig(max_trades_per_day=2, cooldown_minutes=0, cooldown_after_loss_minutes=0)
    for symbol in ("ETH/USDT", "SOL/USDT"):
        rig.manager.record_entry(symbol, rig.clock.now_ms())
    decision = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    assert decision.reason_code == ReasonCode.DAILY_TRADE_LIMIT
    rig.clock.set(T0 + 14 * 60 * MINUTE)  # 00:00 UTC next day
    assert rig.manager.evaluate(candidate(), portfolio(), btc_market()).approved


def test_approval_counts_as_a_trade_and_its_fill_is_not_counted_twice() -> None:
    rig = build_rig(max_trades_per_day=5)
    assert rig.manager.evaluate(candidate(), portfolio(), btc_market()).approved
    rig.manager.record_entry("BTC/USDT", rig.clock.now_ms())
    assert rig.manager.status()["daily"]["trades"] == 1


def test_internal_error_fails_closed(rig: Rig) -> None:
    class Broken:
        equity = D(10_000)
        cash = D(10_000)

        @property
        def positions(self) -> dict[str, object]:
            raise RuntimeError("boom")

        @property
        def exposure(self) -> Decimal:
            raise RuntimeError("boom")

    decision = rig.manager.evaluate(candidate(), cast(PortfolioState, Broken()), btc_market())
    assert not decision.approved
    assert decision.reason_code == ReasonCode.INTERNAL_ERROR


def eth_candidate() -> Candidate:
    return candidate(symbol="ETH/USDT", price=2_000.0, stop_loss=1_960.0, take_profit=2_100.0)


def eth_market() -> MarketInfo:
    return btc_market(symbol="ETH/USDT", base="ETH", amount_step=D("0.0001"))


def test_entries_in_flight_count_as_open_positions() -> None:
    rig = build_rig(max_open_positions=2)
    one_open = portfolio(positions={"SOL/USDT": ("1", "100", "100")})
    assert rig.manager.evaluate(candidate(), one_open, btc_market()).approved
    # the BTC order is not filled yet: the portfolio still shows one position
    second = rig.manager.evaluate(eth_candidate(), one_open, eth_market())
    assert second.reason_code == ReasonCode.MAX_POSITIONS
    assert second.checks["entries_in_flight"] == 1


def test_entries_in_flight_count_as_exposure() -> None:
    rig = build_rig(max_total_exposure_percent=0.3, max_open_positions=5)
    first = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    assert first.intent.amount * first.intent.price == D("2000")  # 20 % of equity
    second = rig.manager.evaluate(eth_candidate(), portfolio(), eth_market())
    assert second.approved
    assert second.intent.amount * second.intent.price <= D("1000")  # the 10 % left


def test_a_cancelled_entry_frees_its_slot_but_still_counts_today() -> None:
    rig = build_rig(max_open_positions=1, cooldown_minutes=0, cooldown_after_loss_minutes=0)
    assert rig.manager.evaluate(candidate(), portfolio(), btc_market()).approved
    blocked = rig.manager.evaluate(eth_candidate(), portfolio(), eth_market())
    assert blocked.reason_code == ReasonCode.MAX_POSITIONS
    rig.manager.cancel_entry("BTC/USDT")
    assert rig.manager.evaluate(eth_candidate(), portfolio(), eth_market()).approved
    assert rig.manager.status()["daily"]["trades"] == 2


def test_float_pnl_and_equity_are_accepted() -> None:
    rig = build_rig()
    rig.manager.record_trade_closed("BTC/USDT", -1.25, T0)
    rig.manager.update_equity(10_000.5, T0)
    status = rig.manager.status()
    assert status["daily"]["realized_pnl"] == D("-1.25")
    assert status["equity"]["last"] == D("10000.5")


def test_fixed_stake_sizes_the_entry_and_allows_no_stop() -> None:
    rig = build_rig(stake_amount=500.0)
    decision = rig.manager.evaluate(candidate(stop_loss=None), portfolio(), btc_market())
    assert decision.approved, decision.message
    assert decision.intent.amount == D("0.01")  # 500 / 50 000
    assert decision.intent.stop_loss is None
    assert decision.checks["stake_amount"] == D("500.0")


def test_fixed_stake_is_still_capped() -> None:
    rig = build_rig(stake_amount=5_000.0)
    decision = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    assert decision.intent.amount == D("0.04")  # 20 % of 10 000, not 5 000
    assert any("MAX_POSITION_PERCENT" in a for a in decision.adjustments)


@pytest.mark.parametrize(("done", "code"), [(2, "APPROVED"), (3, "DAILY_TRADE_LIMIT")])
def test_daily_trade_limit_exact_boundary(done: int, code: str) -> None:
    rig = build_rig(max_trades_per_day=3, max_open_positions=10)
    for i in range(done):
        rig.manager.record_entry(f"C{i}/USDT", T0)
    assert rig.manager.evaluate(candidate(), portfolio(), btc_market()).reason_code == code
