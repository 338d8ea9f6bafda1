"""Drawdown breaker and daily kill-switch, in memory."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kmg_autotrader.risk import ReasonCode, RiskEventKind
from tests.risk.helpers import MINUTE, T0, btc_market, build_rig, candidate, portfolio

D = Decimal
DAY = 24 * 60 * MINUTE


@pytest.mark.parametrize(("equity", "tripped"), [("9500.01", False), ("9500", True)])
def test_drawdown_breaker_trips_at_the_limit(equity: str, tripped: bool) -> None:
    rig = build_rig(max_drawdown_percent=5.0, daily_loss_limit_percent=50.0)
    rig.manager.update_equity(D(10_000), T0)
    rig.manager.update_equity(D(equity), T0 + MINUTE)
    assert rig.manager.status()["breaker"]["tripped"] is tripped
    assert [e.kind for e in rig.events] == ([RiskEventKind.BREAKER_TRIPPED] if tripped else [])


def test_drawdown_is_from_the_marked_to_market_peak() -> None:
    rig = build_rig(max_drawdown_percent=5.0, daily_loss_limit_percent=50.0)
    rig.manager.update_equity(D(10_000), T0)
    rig.manager.update_equity(D(12_000), T0 + MINUTE)  # unrealised gain raises the peak
    rig.manager.update_equity(D(11_500), T0 + 2 * MINUTE)  # 4.17 % down: still fine
    assert not rig.manager.status()["breaker"]["tripped"]
    rig.manager.update_equity(D(11_400), T0 + 3 * MINUTE)  # exactly 5 % below 12 000
    assert rig.manager.status()["breaker"]["tripped"]


def test_breaker_blocks_entries_until_an_explicit_resume() -> None:
    rig = build_rig(max_drawdown_percent=5.0, daily_loss_limit_percent=50.0)
    rig.manager.update_equity(D(10_000), T0)
    rig.manager.update_equity(D(9_000), T0 + MINUTE)
    blocked = rig.manager.evaluate(candidate(), portfolio(equity="9000"), btc_market())
    assert blocked.reason_code == ReasonCode.DRAWDOWN_BREAKER
    assert "resume" in blocked.message
    # recovering equity and a new day do not clear it
    rig.clock.set(T0 + 2 * DAY)
    rig.manager.update_equity(D(10_500), T0 + 2 * DAY)
    again = rig.manager.evaluate(candidate(), portfolio(equity="10500"), btc_market())
    assert again.reason_code == ReasonCode.DRAWDOWN_BREAKER
    assert rig.manager.resume("dashboard:alice") is True
    assert rig.manager.resume("dashboard:alice") is False
    status = rig.manager.status()["breaker"]
    assert status["tripped"] is False and status["cleared_by"] == "dashboard:alice"
    assert rig.manager.evaluate(candidate(), portfolio(equity="10500"), btc_market()).approved
    assert rig.events[-1].kind is RiskEventKind.BREAKER_CLEARED


def test_resume_rebaselines_the_peak_so_it_does_not_trip_again_at_once() -> None:
    rig = build_rig(max_drawdown_percent=5.0, daily_loss_limit_percent=50.0)
    rig.manager.update_equity(D(10_000), T0)
    rig.manager.update_equity(D(9_000), T0 + 1)
    rig.manager.resume("cli")
    rig.manager.update_equity(D(8_600), T0 + 2)  # 4.4 % below the new 9 000 baseline
    assert not rig.manager.status()["breaker"]["tripped"]
    rig.manager.update_equity(D(8_550), T0 + 3)  # 5 % below 9 000
    assert rig.manager.status()["breaker"]["tripped"]


def test_clear_clears_the_kill_switch_and_restarts_the_days_loss_from_there() -> None:
    rig = build_rig(daily_loss_limit_percent=3.0, max_drawdown_percent=50.0)
    rig.manager.update_equity(D(10_000), T0)
    rig.manager.update_equity(D(9_600), T0 + MINUTE)  # -4 %: kill-switch
    assert rig.manager.status()["kill_switch"]["tripped"]
    rig.clock.set(T0 + 2 * MINUTE)
    assert rig.manager.clear("cli:alice") == ["kill_switch"]
    status = rig.manager.status()
    assert status["kill_switch"]["tripped"] is False
    assert status["kill_switch"]["cleared_by"] == "cli:alice"
    assert status["kill_switch"]["cleared_at"] == T0 + 2 * MINUTE
    assert status["daily"]["start_equity"] == D(9_600)
    assert rig.events[-1].kind is RiskEventKind.KILL_SWITCH_CLEARED
    assert rig.events[-1].details["by"] == "cli:alice"
    assert rig.manager.evaluate(candidate(), portfolio(equity="9600"), btc_market()).approved
    # the same day, 3 % below the new start: it trips again
    rig.manager.update_equity(D(9_312), T0 + 3 * MINUTE)
    assert rig.manager.status()["kill_switch"]["tripped"]


def test_clear_with_nothing_tripped_changes_nothing() -> None:
    rig = build_rig()
    rig.manager.update_equity(D(10_000), T0)
    before = rig.manager.status()
    assert rig.manager.clear("cli:alice") == []
    assert rig.manager.status() == before
    assert rig.events == []


def test_a_second_clear_in_the_same_millisecond_is_not_lost() -> None:
    rig = build_rig(max_drawdown_percent=5.0, daily_loss_limit_percent=50.0)
    rig.manager.update_equity(D(10_000), T0)
    rig.manager.update_equity(D(9_000), T0 + 1)
    assert rig.manager.clear("web:session") == ["breaker"]
    rig.manager.update_equity(D(8_500), T0 + 1)  # 5.6 % below 9 000, same clock time
    assert rig.manager.clear("cli:bob", kill_switch=False) == ["breaker"]
    status = rig.manager.status()
    assert not status["breaker"]["tripped"] and status["equity"]["peak"] == D(8_500)
    assert status["breaker"]["cleared_by"] == "cli:bob"


def test_evaluate_marks_equity_itself_so_the_breaker_cannot_be_skipped() -> None:
    rig = build_rig(max_drawdown_percent=5.0, daily_loss_limit_percent=50.0)
    assert rig.manager.evaluate(candidate(), portfolio(equity="10000"), btc_market()).approved
    rig.advance(60)
    decision = rig.manager.evaluate(
        candidate(symbol="BTC/USDT"), portfolio(equity="9400"), btc_market()
    )
    assert decision.reason_code == ReasonCode.DRAWDOWN_BREAKER


@pytest.mark.parametrize(("equity", "tripped"), [("9700.01", False), ("9700", True)])
def test_daily_kill_switch_trips_at_the_limit(equity: str, tripped: bool) -> None:
    rig = build_rig(daily_loss_limit_percent=3.0, max_drawdown_percent=50.0)
    rig.manager.update_equity(D(10_000), T0)
    rig.manager.update_equity(D(equity), T0 + MINUTE)
    assert rig.manager.status()["kill_switch"]["tripped"] is tripped


def test_kill_switch_uses_the_utc_days_starting_equity_and_clears_next_day() -> None:
    rig = build_rig(daily_loss_limit_percent=3.0, max_drawdown_percent=50.0)
    rig.manager.update_equity(D(12_000), T0)  # the day starts at 12 000 (10:00 is the first mark)
    rig.manager.update_equity(D(11_640), T0 + MINUTE)  # -3 %
    status = rig.manager.status()
    assert status["kill_switch"]["tripped"]
    assert status["daily"]["start_equity"] == D(12_000)
    blocked = rig.manager.evaluate(candidate(), portfolio(equity="11640"), btc_market())
    assert blocked.reason_code == ReasonCode.DAILY_LOSS_KILL_SWITCH
    midnight = (T0 // DAY + 1) * DAY
    rig.clock.set(midnight - 1)
    still = rig.manager.evaluate(candidate(), portfolio(equity="11640"), btc_market())
    assert still.reason_code == ReasonCode.DAILY_LOSS_KILL_SWITCH
    rig.clock.set(midnight)
    decision = rig.manager.evaluate(candidate(), portfolio(equity="11640"), btc_market())
    assert decision.approved, decision.message
    assert rig.manager.status()["daily"]["start_equity"] == D(11_640)


def test_kill_switch_can_ask_to_flatten() -> None:
    rig = build_rig(daily_loss_limit_percent=2.0, flatten_on_daily_loss=True)
    rig.manager.update_equity(D(10_000), T0)
    rig.manager.update_equity(D(9_800), T0 + MINUTE)
    event = rig.events[-1]
    assert event.kind is RiskEventKind.KILL_SWITCH and event.flatten is True
    assert rig.manager.status()["kill_switch"]["flatten_requested"] is True


def test_kill_switch_without_flatten_does_not_ask() -> None:
    rig = build_rig(daily_loss_limit_percent=2.0)
    rig.manager.update_equity(D(10_000), T0)
    rig.manager.update_equity(D(9_000), T0 + MINUTE)
    kill = [e for e in rig.events if e.kind is RiskEventKind.KILL_SWITCH]
    assert len(kill) == 1 and kill[0].flatten is False


def test_events_are_raised_once() -> None:
    rig = build_rig(daily_loss_limit_percent=2.0, max_drawdown_percent=4.0)
    rig.manager.update_equity(D(10_000), T0)
    for step in range(1, 5):
        rig.manager.update_equity(D(9_000), T0 + step)
    kinds = [e.kind for e in rig.events]
    assert kinds.count(RiskEventKind.BREAKER_TRIPPED) == 1
    assert kinds.count(RiskEventKind.KILL_SWITCH) == 1


def test_a_failing_event_handler_does_not_undo_the_trip() -> None:
    rig = build_rig(max_drawdown_percent=5.0)

    def explode(_: object) -> None:
        raise RuntimeError("alert channel down")

    rig.manager._on_event = explode
    rig.manager.update_equity(D(10_000), T0)
    rig.manager.update_equity(D(9_000), T0 + 1)
    assert rig.manager.status()["breaker"]["tripped"]


def test_daily_counters_reset_at_midnight_utc() -> None:
    rig = build_rig()
    rig.manager.record_entry("BTC/USDT", T0)
    rig.manager.record_trade_closed("BTC/USDT", D("-3.5"), T0 + MINUTE)
    daily = rig.manager.status()["daily"]
    assert daily["trades"] == 1 and daily["realized_pnl"] == D("-3.5")
    rig.manager.record_entry("ETH/USDT", (T0 // DAY + 1) * DAY)
    daily = rig.manager.status()["daily"]
    assert daily["trades"] == 1 and daily["realized_pnl"] == 0
