"""State, parameters and decisions in the database (SQLite and PostgreSQL): restarts keep them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kmg_autotrader.domain import Mode, Side
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.risk import (
    DbRiskStateStore,
    ReasonCode,
    RiskManager,
    RiskParams,
    RiskParamsStore,
)
from kmg_autotrader.storage.repositories import Repositories
from tests.risk.helpers import MINUTE, T0, btc_market, candidate, portfolio

pytestmark = pytest.mark.db
D = Decimal
DAY = 24 * 60 * MINUTE


def boot(repos: Repositories, clock: SimulatedClock, mode: Mode = Mode.PAPER) -> RiskManager:
    """A manager as the autopilot builds it at start-up."""
    return RiskManager(
        mode=mode,
        params=RiskParamsStore(repos.risk_params, RiskParams()),
        state=DbRiskStateStore(repos.risk_state, mode),
        decisions=repos.risk_decisions,
        clock=clock,
    )


def test_breaker_survives_a_restart(repos: Repositories) -> None:
    clock = SimulatedClock(T0)
    boot(repos, clock).update_equity(D(10_000), T0)
    boot(repos, clock).update_equity(D(9_400), T0 + MINUTE)
    restarted = boot(repos, clock)
    assert restarted.status()["breaker"]["tripped"]
    decision = restarted.evaluate(candidate(), portfolio(equity="9400"), btc_market())
    assert decision.reason_code == ReasonCode.DRAWDOWN_BREAKER
    assert restarted.resume("test") is True
    assert not boot(repos, clock).status()["breaker"]["tripped"]
    assert boot(repos, clock).status()["equity"]["peak"] == D(9_400)


def test_kill_switch_and_daily_counters_survive_a_restart(repos: Repositories) -> None:
    clock = SimulatedClock(T0)
    first = boot(repos, clock)
    first.update_equity(D(10_000), T0)
    first.record_entry("ETH/USDT", T0)
    first.record_trade_closed("ETH/USDT", D("-120.5"), T0 + MINUTE)
    first.update_equity(D(9_600), T0 + 2 * MINUTE)  # -4 %: kill-switch (limit 3 %)
    clock.set(T0 + 3 * MINUTE)
    status = boot(repos, clock).status()
    assert status["kill_switch"]["tripped"]
    assert status["daily"]["trades"] == 1
    assert status["daily"]["realized_pnl"] == D("-120.5")
    assert status["daily"]["start_equity"] == D(10_000)
    assert "ETH/USDT" in status["cooldowns"]
    blocked = boot(repos, clock).evaluate(candidate(), portfolio(equity="9600"), btc_market())
    assert blocked.reason_code == ReasonCode.DAILY_LOSS_KILL_SWITCH
    # the next UTC day clears the kill-switch (the drawdown breaker needs 5 %: not tripped)
    clock.set((T0 // DAY + 1) * DAY)
    assert boot(repos, clock).evaluate(candidate(), portfolio(equity="9600"), btc_market()).approved


def test_cooldowns_survive_a_restart(repos: Repositories) -> None:
    clock = SimulatedClock(T0)
    boot(repos, clock).record_trade_closed("BTC/USDT", D("-1"), T0)
    clock.set(T0 + 60 * MINUTE)
    decision = boot(repos, clock).evaluate(candidate(), portfolio(), btc_market())
    assert decision.reason_code == ReasonCode.LOSS_COOLDOWN


def test_state_is_kept_per_mode(repos: Repositories) -> None:
    clock = SimulatedClock(T0)
    paper = boot(repos, clock, Mode.PAPER)
    paper.update_equity(D(10_000), T0)
    paper.update_equity(D(9_000), T0 + 1)
    assert not boot(repos, clock, Mode.LIVE).status()["breaker"]["tripped"]


def test_every_decision_is_stored_and_linked_to_its_intent(repos: Repositories) -> None:
    clock = SimulatedClock(T0)
    manager = boot(repos, clock)
    approved = manager.evaluate(candidate(), portfolio(), btc_market(), signal_id=None)
    rejected = manager.evaluate(candidate(), portfolio(), btc_market())  # pending entry
    sold = manager.evaluate(candidate(Side.SELL), portfolio(), btc_market())
    rows = repos.risk_decisions.recent(Mode.PAPER, limit=10)
    assert len(rows) == 3
    by_code = {row["reason_code"]: row for row in rows}
    assert by_code["APPROVED"]["id"] == approved.intent.risk_decision_id
    assert D(str(by_code["APPROVED"]["amount"])) == approved.intent.amount
    assert by_code["APPROVED"]["params_version"] == 0
    assert by_code["APPROVED"]["adjustments"] == list(approved.adjustments)
    assert by_code["APPROVED"]["checks"]["required_edge"] == "0.0040"
    assert by_code[rejected.reason_code]["message"] == rejected.message
    assert sold.reason_code == ReasonCode.NO_HOLDINGS
    assert repos.risk_decisions.rejection_counts(Mode.PAPER) == {
        "ALREADY_IN_POSITION": 1,
        "NO_HOLDINGS": 1,
    }


def test_a_parameter_change_applies_to_the_next_decision(repos: Repositories) -> None:
    clock = SimulatedClock(T0)
    manager = boot(repos, clock)
    # the dashboard runs its own store over the same table
    dashboard = RiskParamsStore(repos.risk_params, RiskParams())
    dashboard.update({"max_position_percent": 0.1}, source="webui", comment="kraken profile")
    decision = manager.evaluate(candidate(), portfolio(), btc_market())
    assert decision.intent.amount == D("0.02")
    assert decision.checks["params_version"] == 1
    row = repos.risk_decisions.recent(Mode.PAPER, limit=1)[0]
    assert row["params_version"] == 1


def test_a_resume_by_another_process_is_seen_by_the_trading_loop(repos: Repositories) -> None:
    clock = SimulatedClock(T0)
    RiskParamsStore(repos.risk_params, RiskParams()).update(
        {"daily_loss_limit_percent": 50.0}, source="test"
    )
    loop = boot(repos, clock)
    loop.update_equity(D(10_000), T0)
    loop.update_equity(D(9_000), T0 + 1)
    assert boot(repos, clock).resume("dashboard") is True
    assert loop.evaluate(candidate(), portfolio(equity="9000"), btc_market()).approved


def test_a_clear_survives_a_save_of_the_trading_loop_that_crossed_it(repos: Repositories) -> None:
    """The trading loop reads its state, another process clears, the loop saves what it read:
    the clear still holds (the loop re-applies it) and the next entry is approved."""
    clock = SimulatedClock(T0)
    loop = boot(repos, clock)
    loop.update_equity(D(10_000), T0)
    loop.update_equity(D(9_000), T0 + 1)  # -10 %: breaker and kill-switch
    stale = DbRiskStateStore(repos.risk_state, Mode.PAPER).load()
    clock.set(T0 + MINUTE)
    assert boot(repos, clock).clear("cli:alice") == ["breaker", "kill_switch"]
    DbRiskStateStore(repos.risk_state, Mode.PAPER).save(stale, ("equity", "breaker", "day"))
    decision = loop.evaluate(candidate(), portfolio(equity="9000"), btc_market())
    assert decision.approved, decision.message
    status = boot(repos, clock).status()
    assert not status["breaker"]["tripped"] and not status["kill_switch"]["tripped"]
    assert status["breaker"]["cleared_by"] == "cli:alice"
    assert status["breaker"]["cleared_at"] == T0 + MINUTE
    assert status["equity"]["peak"] == D(9_000)
    assert status["daily"]["start_equity"] == D(9_000)


def test_a_clear_is_stored_as_events_with_who(repos: Repositories) -> None:
    clock = SimulatedClock(T0)
    manager = RiskManager(
        mode=Mode.PAPER,
        params=RiskParamsStore(repos.risk_params, RiskParams()),
        state=DbRiskStateStore(repos.risk_state, Mode.PAPER),
        decisions=None,
        clock=clock,
        event_log=repos.events,
    )
    manager.update_equity(D(10_000), T0)
    manager.update_equity(D(9_000), T0 + MINUTE)
    assert manager.clear("web:session") == ["breaker", "kill_switch"]
    cleared = {
        row["kind"]: row
        for row in repos.events.recent(Mode.PAPER, limit=10)
        if row["kind"].endswith("_cleared")
    }
    assert set(cleared) == {"breaker_cleared", "kill_switch_cleared"}
    assert all(row["level"] == "info" for row in cleared.values())
    assert cleared["breaker_cleared"]["details"]["by"] == "web:session"
    assert "cleared by web:session" in cleared["kill_switch_cleared"]["message"]
    # the live mode's state is another row: nothing of it changed
    assert not boot(repos, clock, Mode.LIVE).status()["breaker"]["cleared_by"]


def test_breaker_and_kill_switch_are_stored_as_events(repos: Repositories) -> None:
    clock = SimulatedClock(T0)
    manager = RiskManager(
        mode=Mode.PAPER,
        params=RiskParamsStore(repos.risk_params, RiskParams(flatten_on_daily_loss=True)),
        state=DbRiskStateStore(repos.risk_state, Mode.PAPER),
        decisions=None,
        clock=clock,
        event_log=repos.events,
    )
    manager.update_equity(D(10_000), T0)
    manager.update_equity(D(9_000), T0 + MINUTE)
    manager.resume("dashboard")
    rows = repos.events.recent(Mode.PAPER, limit=10)
    kinds = sorted(row["kind"] for row in rows)
    assert kinds == ["breaker_cleared", "breaker_tripped", "kill_switch"]
    kill = next(row for row in rows if row["kind"] == "kill_switch")
    assert kill["level"] == "critical" and kill["source"] == "risk"
    assert kill["details"]["flatten"] is True


def test_entries_in_flight_survive_a_restart(repos: Repositories) -> None:
    clock = SimulatedClock(T0)
    RiskParamsStore(repos.risk_params, RiskParams()).update(
        {"max_open_positions": 1}, source="test"
    )
    assert boot(repos, clock).evaluate(candidate(), portfolio(), btc_market()).approved
    eth = candidate(symbol="ETH/USDT", price=2_000.0, stop_loss=1_960.0, take_profit=2_100.0)
    eth_market = btc_market(symbol="ETH/USDT", base="ETH")
    blocked = boot(repos, clock).evaluate(eth, portfolio(), eth_market)
    assert blocked.reason_code == ReasonCode.MAX_POSITIONS
    assert blocked.checks["exposure_with_in_flight"] == D("2000.000")
    boot(repos, clock).cancel_entry("BTC/USDT")
    assert boot(repos, clock).evaluate(eth, portfolio(), eth_market).approved


def test_re_reporting_open_positions_after_a_restart_does_not_inflate_counters(
    repos: Repositories,
) -> None:
    clock = SimulatedClock(T0 + 60 * MINUTE)
    boot(repos, clock).record_entry("ETH/USDT", T0)
    boot(repos, clock).record_entry("ETH/USDT", T0)  # the same entry, reported again
    boot(repos, clock).record_entry("SOL/USDT", T0 - DAY)  # opened yesterday
    assert boot(repos, clock).status()["daily"]["trades"] == 1


def test_a_close_reported_twice_adds_its_pnl_once(repos: Repositories) -> None:
    clock = SimulatedClock(T0 + 60 * MINUTE)
    boot(repos, clock).record_trade_closed("ETH/USDT", D("-10"), T0)
    boot(repos, clock).record_trade_closed("ETH/USDT", D("-10"), T0)
    boot(repos, clock).record_trade_closed("SOL/USDT", D("5"), T0 - DAY)  # closed yesterday
    assert boot(repos, clock).status()["daily"]["realized_pnl"] == D("-10")
