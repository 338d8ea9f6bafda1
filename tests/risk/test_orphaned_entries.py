"""Issue 20 item 4: an approval whose process died before its order is released at start-up.

Left pending it rejected the symbol's candidates as ``ALREADY_IN_POSITION`` for
``pending_entry_minutes`` although no position existed (and counted as a trade, and started
the symbol's cooldown). Released, the same candidate is approved again at once."""

from __future__ import annotations

from kmg_autotrader.risk import ReasonCode

from .helpers import btc_market, build_rig, candidate, portfolio


def test_an_approval_with_no_position_is_released_and_is_no_trade() -> None:
    rig = build_rig(cooldown_minutes=30, pending_entry_minutes=60, max_trades_per_day=1)
    first = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    assert first.approved
    # the process dies before the order; a new one starts a minute later
    rig.advance(1)
    blocked = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    assert not blocked.approved  # what the restart met (pending, cooling down, 1 trade today)
    assert rig.manager.release_orphaned_entries(held=set()) == ["BTC/USDT"]
    again = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    # not ALREADY_IN_POSITION, not SYMBOL_COOLDOWN, not DAILY_TRADE_LIMIT (1 a day)
    assert again.approved, again.message
    assert rig.manager.release_orphaned_entries(held=set()) == ["BTC/USDT"]


def test_an_approval_with_its_position_is_kept() -> None:
    rig = build_rig(pending_entry_minutes=60)
    assert rig.manager.evaluate(candidate(), portfolio(), btc_market()).approved
    assert rig.manager.release_orphaned_entries(held={"BTC/USDT"}) == []
    blocked = rig.manager.evaluate(candidate(), portfolio(), btc_market())
    assert blocked.reason_code == ReasonCode.ALREADY_IN_POSITION
    assert rig.manager.release_orphaned_entries(held=set()) == ["BTC/USDT"]
    assert rig.manager.release_orphaned_entries(held=set()) == []
