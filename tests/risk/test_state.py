"""RiskState sections: every field survives the JSON round trip the database store uses."""

from __future__ import annotations

import json
from decimal import Decimal

from kmg_autotrader.risk.state import SECTIONS, InMemoryRiskStateStore, RiskState


def test_every_section_round_trips_through_json() -> None:
    state = RiskState(
        peak_equity=Decimal("10500.25"),
        last_equity=Decimal("10000.5"),
        last_equity_at=123,
        peak_reset_at=50,
        breaker_tripped=True,
        breaker_tripped_at=100,
        breaker_reason="drawdown",
        breaker_cleared_at=50,
        breaker_cleared_by="cli:alice",
        kill_switch_cleared_at=60,
        kill_switch_cleared_by="web:session",
        day_reset_at=60,
        day=19_783,
        day_start_equity=Decimal("10200"),
        trades_today=3,
        realized_pnl_today=Decimal("-12.345"),
        kill_switch_tripped=True,
        kill_switch_at=99,
        flatten_requested=True,
        pending_entries={"BTC/USDT": 5},
        pending_costs={"BTC/USDT": Decimal("2000.5")},
        last_entry_ms={"BTC/USDT": 1},
        last_exit_ms={"ETH/USDT": 2},
        last_loss_ms={"ETH/USDT": 2},
    )
    restored = RiskState()
    for name in SECTIONS:
        restored.load_section(name, json.loads(json.dumps(state.section(name))))
    assert restored == state


def test_in_memory_store_keeps_one_live_object() -> None:
    store = InMemoryRiskStateStore()
    state = store.load()
    state.trades_today = 7
    store.save(state, ["day"])
    assert store.load() is state and store.load().trades_today == 7
